"""`tray-sync remove ALBUM`: stop syncing; local files are never deleted."""

from __future__ import annotations

import argparse

from tray_sync.commands._common import find_album_sync
from tray_sync.context import Context

# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1)

def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("remove", help="stop syncing an album (its files stay where they are)")
    parser.add_argument("album", help="album id, exact name")


def run(args: argparse.Namespace, ctx: Context) -> int:
    album = find_album_sync(ctx, args.album)
    ctx.store.remove_album_sync(album.id)
    ctx.out(f"Stopped syncing {album.album_name!r}; its files stay in {album.local_path}.")
    return 0
