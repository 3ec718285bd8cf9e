"""Helpers shared by several commands."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from tray_sync.context import Context
from tray_sync.sync.errors import ConfigError
from tray_sync.sync.store import AlbumSync


def add_connection_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connection", metavar="NAME", help="which server (needed only with several)")


def find_album_sync(ctx: Context, ref: str) -> AlbumSync:
    """A synced album by Immich id, exact name or local folder."""
    albums = ctx.store.album_syncs()
    by_id = [a for a in albums if a.album_id == ref]
    if by_id:
        return by_id[0]
    by_name = [a for a in albums if a.album_name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(a.album_id for a in by_name)
        raise ConfigError(f"Several synced albums are named {ref!r}; use the id ({ids}).")
    raise ConfigError(f"{ref!r} is not a synced album; `tray-sync status` lists them.")


def local_time(stamp: str | None) -> str:
    if not stamp:
        return "never"
    from tray_sync.sync.timeparse import parse_timestamp

    try:
        return parse_timestamp(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def is_tty() -> bool:
    return sys.stderr.isatty()


def relative_time(stamp: str | None, now: datetime | None = None) -> str:
    return local_time(stamp)
