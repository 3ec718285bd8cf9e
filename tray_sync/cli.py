"""The command line: parse, hand the work to a command module, turn errors into exit codes.

Like pipx: each verb lives in ``tray_sync/commands/<verb>.py`` with ``register`` (its
arguments) and ``run`` (the use case). Domain errors (:class:`TraySyncError`) are caught
once, here, and become one line on stderr; a traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from tray_sync import __version__
from tray_sync.context import Context
from tray_sync.logs import redact, setup_logging
from tray_sync.paths import HOME_ENV, AppPaths
from tray_sync.sync.errors import ConfigError, TraySyncError

log = logging.getLogger(__name__)

COMMANDS = ("connect", "albums", "add", "remove", "sync", "status", "demo", "autostart", "uninstall", "diagnose")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line and exit 2, like every other usage error.
        self.exit(2, f"tray-sync: {message} (see `tray-sync --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tray-sync",
        description="Keep Immich albums mirrored into local folders. Without a command, starts the tray app.",
    )
    parser.add_argument("--version", action="version", version=f"tray-sync {__version__}")
    parser.add_argument("--home", metavar="DIR", help=f"keep settings, database and logs in DIR (env {HOME_ENV})")
    parser.add_argument("--debug", action="store_true", help="log everything and show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = import_module(f"tray_sync.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tray_sync.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    paths = AppPaths.resolve(args.home)
    ctx = Context(paths=paths, home_arg=args.home, debug=args.debug)
    try:
        setup_logging(paths, debug=args.debug)
    except OSError as exc:
        print(f"tray-sync: cannot write logs in {paths.log_dir}: {exc.strerror}; choose another --home.",
              file=sys.stderr)
        return 2
    log.debug("tray-sync %s, command %s", __version__, args.command)
    allowed: tuple[int, ...] = (0, 1, 2)
    try:
        if args.command is None:
            return _start_app(ctx)
        module = import_module(f"tray_sync.commands.{args.command}")
        allowed = getattr(module, "EXIT_CODES", allowed)
        return int(module.run(args, ctx) or 0)
    except TraySyncError as exc:
        log.debug("command failed", exc_info=True)
        log.error("%s", exc.message)
        if args.debug:
            _print_traceback(exc)
        print(f"tray-sync: {redact(exc.message)}", file=sys.stderr)
        # The documented exit codes are a contract: a command whose table row has no 2 (albums,
        # remove, ...) fails with 1, whatever kind of error it was. Usage errors from argparse stay 2.
        return exc.exit_code if exc.exit_code in allowed else 1
    except KeyboardInterrupt:
        print("tray-sync: interrupted; nothing half-written was left behind.", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: still one line, the details in the log
        log.exception("unexpected error")
        if args.debug:
            _print_traceback(exc)  # redacted: a library's message may quote a request's headers
            return 1
        print(
            f"tray-sync: unexpected error ({exc.__class__.__name__}); details are in {paths.log_file}. "
            "Run again with --debug to see them here.",
            file=sys.stderr,
        )
        return 1
    finally:
        ctx.close()


def _print_traceback(exc: BaseException) -> None:
    import traceback

    print(redact("".join(traceback.format_exception(exc))), file=sys.stderr)


def _start_app(ctx: Context) -> int:
    if not has_display():
        raise ConfigError(
            "No display found: the tray app needs a desktop session. On a server, use "
            "`tray-sync sync` (from cron or a systemd timer)."
        )
    try:
        app = import_module("tray_sync.app")
    except ModuleNotFoundError as exc:
        if exc.name != "tray_sync.app":
            raise
        raise ConfigError("The tray app is not part of this build yet; use `tray-sync sync`.") from None
    return int(app.run_app(ctx))


def gui_main() -> int:
    """Entry point of the windowed ``tray-sync-app`` script (no console on Windows)."""
    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
