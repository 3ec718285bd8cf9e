"""Local file names for assets. Server names are untrusted input.

A name that comes out of :func:`safe_component` is a single path component that is legal on
Linux, macOS and Windows alike (so one synced folder can move between them), at most 255
UTF-8 bytes, and never one of the app's own hidden names. :func:`name_key` is how two names
are compared for collisions: case-insensitively and after Unicode normalisation, because
Windows and macOS file systems compare that way.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import PurePosixPath

MAX_NAME_BYTES = 255
PARTIAL_PREFIX = ".~tray-sync-"
TRASH_DIR = ".tray-sync-trash"
_ILLEGAL = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$", re.IGNORECASE)


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def _trim(text: str) -> str:
    """Without surrounding white space or trailing dots (Windows drops those), until nothing changes:
    one pass is not enough for "0\x85.." (the dots hide white space that ``strip`` removes next time)."""
    while True:
        trimmed = text.strip().rstrip(".")
        if trimmed == text:
            return text
        text = trimmed


def split_extension(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    # An extension is short and plain; "archive.2024 holiday" has none.
    if dot and stem and 0 < len(ext) <= 10 and re.fullmatch(r"[A-Za-z0-9]+", ext):
        return stem, "." + ext
    return name, ""


def safe_component(raw: str, *, reserve_bytes: int = 0) -> str:
    """One safe path component for ``raw``; idempotent; never empty, never '.' or '..'."""
    # JSON can carry lone surrogates ("\ud800"); no file system can store them.
    name = raw.encode("utf-8", "replace").decode("utf-8")
    name = unicodedata.normalize("NFC", name)
    name = _ILLEGAL.sub("_", name)
    name = _trim(name)
    if not name or set(name) <= {"."}:
        name = "unnamed"
    stem, ext = split_extension(name)
    if _RESERVED.match(stem.split(".")[0].rstrip(" ")):
        stem = "_" + stem
    if (stem + ext).startswith((PARTIAL_PREFIX, TRASH_DIR)):
        stem = "_" + stem
    budget = MAX_NAME_BYTES - reserve_bytes
    ext = _truncate_utf8(ext, 16)
    stem = _truncate_utf8(stem, max(1, budget - len(ext.encode("utf-8"))))
    stem = _trim(stem) or "unnamed"
    result = stem + ext
    return raw if result == raw else result  # the same object: 100,000 planned names stay one copy each


def with_suffix(name: str, tag: str) -> str:
    """``IMG_0001.jpg`` + ``ab12cd34`` -> ``IMG_0001 (ab12cd34).jpg``, still within the limit."""
    suffix = f" ({tag})"
    stem, ext = split_extension(name)
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8")) - len(ext.encode("utf-8"))
    stem = _truncate_utf8(stem, budget).rstrip(". ") or "unnamed"
    return f"{stem}{suffix}{ext}"


def name_key(relative_path: str) -> str:
    return unicodedata.normalize("NFC", relative_path).casefold()


def template_folder(template: str, file_created_at: str) -> str:
    """Sub-folder for an asset from a template such as ``{year}/{month}`` ('' for none)."""
    if not template:
        return ""
    from tray_sync.sync.timeparse import parse_timestamp

    try:
        moment = parse_timestamp(file_created_at)
    except ValueError:
        moment = datetime(1970, 1, 1)
    values = {"year": f"{moment.year:04d}", "month": f"{moment.month:02d}", "day": f"{moment.day:02d}"}
    parts = []
    for piece in PurePosixPath(template).parts:
        try:
            rendered = piece.format(**values)
        except (KeyError, IndexError, ValueError):
            rendered = piece
        parts.append(safe_component(rendered))
    return "/".join(p for p in parts if p)


def validate_template(template: str) -> None:
    from tray_sync.sync.errors import ConfigError

    try:
        template.format(year="2024", month="01", day="01")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(
            f"The folder template {template!r} is not valid: "
            "use {year}, {month} and {day}, e.g. {year}/{month}."
        ) from None
