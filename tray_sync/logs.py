"""Logging: a rotating file in the profile's log folder, thread names, secrets redacted.

Every handler carries :class:`RedactingFilter`, so an API key that reaches a log message
(through an exception from a library, say) is replaced before it is written anywhere.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import threading

from tray_sync.paths import AppPaths

LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_HEADER = re.compile(r"(x-api-key['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)", re.IGNORECASE)


def register_secret(value: str | None) -> None:
    """Make sure ``value`` never reaches a log line (keys are at least 8 characters)."""
    if value and len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _secrets_lock:
        secrets = list(_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return _HEADER.sub(r"\1[redacted]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, so the handler does not print the raw one.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every log file it opens, the one after a rotation included, is private to the user (0600)."""

    def _open(self):  # type: ignore[no-untyped-def]
        if os.name == "posix":
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.close(fd)
            os.chmod(self.baseFilename, 0o600)
        return super()._open()


def setup_logging(paths: AppPaths, *, level: str = "INFO", debug: bool = False, console: bool = False) -> None:
    paths.ensure()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    file_handler = _PrivateRotatingFileHandler(
        paths.log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8", delay=True
    )
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    file_handler.addFilter(RedactingFilter())
    root.addHandler(file_handler)
    if os.name == "posix":
        try:
            paths.log_file.touch(exist_ok=True)
            os.chmod(paths.log_file, 0o600)
        except OSError:
            pass
    if debug or console:
        stream = logging.StreamHandler()
        stream.setLevel(logging.DEBUG if debug else logging.WARNING)
        stream.setFormatter(logging.Formatter(LOG_FORMAT))
        stream.addFilter(RedactingFilter())
        root.addHandler(stream)
    logging.getLogger("urllib3").setLevel(logging.INFO if debug else logging.WARNING)
    logging.getLogger("PIL").setLevel(logging.INFO)
