"""`tray-sync status`: per album, where it goes and how the last sync went."""

from __future__ import annotations

import argparse
import json

from tray_sync.commands._common import local_time
from tray_sync.context import Context
from tray_sync.sync.engine import human_size
from tray_sync.sync.status import collect_status

# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1)

def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("status", help="show the synced albums and their last sync")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, ctx: Context) -> int:
    status = collect_status(ctx.store)
    if args.json:
        ctx.out(json.dumps(status.to_json(), indent=2))
        return 0
    if not status.connections:
        ctx.out("Not connected yet: run `tray-sync connect URL` (or `tray-sync demo` to try it out).")
        return 0
    for conn in status.connections:
        ctx.out(f"{conn.name}: {conn.server_url} (Immich {conn.server_version or '?'})")
    schedule = status.schedule
    if schedule.paused:
        until = f"until {local_time(schedule.paused_until)}" if schedule.paused_until else "until resumed"
        ctx.out(f"Tray app: paused {until}; last successful sync {local_time(schedule.last_success_at)}.")
    elif schedule.last_success_at or schedule.next_due_at:
        ctx.out(f"Tray app: last successful sync {local_time(schedule.last_success_at)}, "
                f"next check {local_time(schedule.next_due_at)}.")
    if not status.albums:
        ctx.out("No albums are synced yet: `tray-sync add ALBUM FOLDER`.")
    for album in status.albums:
        ctx.out(f"{album.album_name} [{album.connection}] -> {album.path}")
        ctx.out(f"  last sync {local_time(album.last_sync_at)}, {album.files} files, {human_size(album.bytes)}, "
                f"state {album.state}")
        if album.changed_locally:
            ctx.out(f"  {len(album.changed_locally)} changed locally: " + ", ".join(album.changed_locally[:5]))
        if album.held_removals:
            ctx.out(f"  {album.held_removals} removals held: tray-sync sync --confirm-removals {album.album_id}")
        if album.last_error:
            ctx.out(f"  last error: {album.last_error}")
    return 0
