"""`tray-sync diagnose`: a redacted bundle to attach to a bug report."""

from __future__ import annotations

import argparse
from pathlib import Path

from tray_sync.context import Context
from tray_sync.diagnostics import write_bundle


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("diagnose", help="write a diagnostics bundle (key and server address redacted)")
    parser.add_argument("--output", "-o", metavar="FILE", help="where to write the .zip (default: current folder)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    target = write_bundle(ctx.paths, ctx.store, Path(args.output) if args.output else None)
    ctx.out(f"Wrote {target}: versions, settings, a database summary and the recent log, with the API key "
            "and server address removed. Look inside before sharing it.")
    return 0
