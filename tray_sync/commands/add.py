"""`tray-sync add ALBUM DEST`: start syncing an album into a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from tray_sync.commands._common import add_connection_option
from tray_sync.commands.albums import remote_albums
from tray_sync.context import Context
from tray_sync.sync.connect import add_album
from tray_sync.sync.errors import ConfigError

# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1, 2)

def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("add", help="sync an album (id or exact name) into a folder")
    parser.add_argument("album", help="album id or exact name")
    parser.add_argument("dest", help="folder to sync into (created if missing)")
    add_connection_option(parser)
    parser.add_argument("--mirror-removals", action="store_true",
                        help="move files removed from the album on the server to a trash folder inside DEST")
    parser.add_argument("--template", default="", metavar="TEMPLATE",
                        help="sub-folders by capture date, e.g. {year}/{month}")


def run(args: argparse.Namespace, ctx: Context) -> int:
    connection, albums = remote_albums(ctx, args.connection)
    matches = [a for a in albums if a.id == args.album] or [a for a in albums if a.name == args.album]
    if not matches:
        raise ConfigError(f"No album {args.album!r} on {connection.name}; `tray-sync albums` lists them.")  # type: ignore[attr-defined]
    if len(matches) > 1:
        ids = ", ".join(a.id for a in matches)
        raise ConfigError(f"Several albums are named {args.album!r}; use the id ({ids}).")
    album = matches[0]
    sync = add_album(ctx.store, connection, album, Path(args.dest),  # type: ignore[arg-type]
                     mirror_removals=args.mirror_removals, folder_template=args.template)
    ctx.out(f"Syncing {album.name!r} ({album.asset_count} items) into {sync.local_path}. "
            "Run `tray-sync sync` to fetch it now.")
    return 0
