"""`tray-sync albums`: what the key sees, owned and shared."""

from __future__ import annotations

import argparse
import json

from tray_sync.commands._common import add_connection_option
from tray_sync.context import Context
from tray_sync.sync.client import ImmichClient, RemoteAlbum

# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1)

def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("albums", help="list the albums the key sees (owned and shared)")
    add_connection_option(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def remote_albums(ctx: Context, connection_name: str | None) -> tuple[object, list[RemoteAlbum]]:
    connection = ctx.store.find_connection(connection_name)
    client = ImmichClient(connection.api_url, ctx.key_for(connection), verify=connection.ca_bundle or True)
    try:
        return connection, client.albums()
    finally:
        client.close()


def run(args: argparse.Namespace, ctx: Context) -> int:
    connection, albums = remote_albums(ctx, args.connection)
    synced = {a.album_id: a.local_path for a in ctx.store.album_syncs(connection.id)}  # type: ignore[attr-defined]
    albums.sort(key=lambda a: a.name.casefold())
    if args.json:
        ctx.out(json.dumps([
            {"id": a.id, "name": a.name, "asset_count": a.asset_count, "shared": a.shared,
             "updated_at": a.updated_at, "last_modified_asset_timestamp": a.last_modified_asset_timestamp,
             "local_folder": synced.get(a.id)}
            for a in albums
        ], indent=2))
        return 0
    if not albums:
        ctx.out("The key sees no albums.")
        return 0
    width = max(len(a.name) for a in albums)
    for a in albums:
        flag = "shared" if a.shared else "      "
        where = f"-> {synced[a.id]}" if a.id in synced else ""
        ctx.out(f"{a.id}  {a.name:<{width}}  {a.asset_count:>6} items  {flag}  {where}".rstrip())
    return 0
