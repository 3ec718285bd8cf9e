"""`tray-sync sync`: one sync now, with a progress bar on a terminal."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tray_sync.commands._common import find_album_sync, is_tty
from tray_sync.context import Context
from tray_sync.sync.engine import human_size
from tray_sync.sync.lock import ProcessLock
from tray_sync.sync.progress import CancelToken, Phase, Progress, SyncReport

# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1, 2)  # and 130 when interrupted

def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sync", help="sync now (all albums, or the ones named)")
    parser.add_argument("albums", nargs="*", metavar="ALBUM", help="album ids or exact names (default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--confirm-removals", action="append", default=[], metavar="ALBUM",
                        help="release the held removals of ALBUM (move them to its trash folder)")


class _Bar:
    """tqdm on a terminal, silence otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._bar = None
        self._enabled = enabled
        self._lock = threading.Lock()

    def __call__(self, event: Progress) -> None:
        if not self._enabled:
            return
        with self._lock:
            if self._bar is None and event.phase is Phase.DOWNLOADING and event.bytes_total:
                from tqdm import tqdm

                self._bar = tqdm(total=event.bytes_total, unit="B", unit_scale=True, unit_divisor=1000,
                                 dynamic_ncols=True, leave=False)
            if self._bar is not None:
                if event.bytes_total != self._bar.total:
                    self._bar.total = event.bytes_total
                self._bar.n = event.bytes_done
                self._bar.set_description(f"{event.album_name[:24]} {event.files_done}/{event.files_total}",
                                          refresh=False)
                self._bar.refresh()

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


@contextmanager
def _cancel_on_interrupt(token: CancelToken) -> Iterator[None]:
    """First Ctrl-C stops cleanly (partials kept for resume); the engine returns soon after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        token.cancel("interrupted")
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: argparse.Namespace, ctx: Context) -> int:
    selected = [find_album_sync(ctx, ref).id for ref in args.albums] or None
    confirm = [find_album_sync(ctx, ref).id for ref in args.confirm_removals]
    # With the new-album policy "auto" a sync has work even before the first album: looking for new ones.
    if not ctx.store.album_syncs() and not any(c.new_album_policy == "auto" for c in ctx.store.connections()):
        ctx.err("Nothing to sync yet: `tray-sync albums` lists albums, `tray-sync add ALBUM FOLDER` adds one.")
        if args.json:
            ctx.out(json.dumps(SyncReport().to_json()))
        return 0
    token = CancelToken()
    bar = _Bar(is_tty() and not args.json)
    with ProcessLock(ctx.paths.runtime_dir / "sync.lock"), _cancel_on_interrupt(token):
        try:
            report = ctx.engine().sync(album_sync_ids=selected, confirm_removals=confirm, cancel=token,
                                       progress=bar)
        finally:
            bar.close()
    if args.json:
        ctx.out(json.dumps(report.to_json(), indent=2))
    else:
        print_report(ctx, report)
    if token.cancelled:
        return 130
    return 0 if report.ok else 1


def print_report(ctx: Context, report: SyncReport) -> None:
    for line in report.errors:
        ctx.err(line)
    for line in report.notices:  # not a failure (the exit code stays 0), but the user must hear of it
        ctx.err(line)
    for album in report.albums:
        if album.errors and not (album.downloaded or album.skipped or album.failed or album.removed):
            # Stopped before it started (server down, folder gone, ...): "0 downloaded, 0 up to date"
            # would read as if the album were empty.
            if all(any(line.endswith(error) for line in report.errors) for error in album.errors):
                # The connection failed: said once above, not once per album.
                ctx.out(f"{album.album_name}: not synced (see the error above) -> {album.path}")
                continue
            ctx.out(f"{album.album_name}: not synced -> {album.path}")
            for error in album.errors[:10]:
                ctx.err(f"  {album.album_name}: {error}")
            continue
        parts = [f"{album.downloaded} downloaded", f"{album.skipped} up to date"]
        if album.failed:
            parts.append(f"{album.failed} failed")
        if album.removed:
            parts.append(f"{album.removed} moved to trash")
        ctx.out(f"{album.album_name}: {', '.join(parts)} ({human_size(album.bytes)}) -> {album.path}")
        if album.changed_locally:
            ctx.out(f"  {len(album.changed_locally)} changed locally, left untouched: "
                    + ", ".join(album.changed_locally[:5]) + (" …" if len(album.changed_locally) > 5 else ""))
        for error in album.errors[:10]:
            ctx.err(f"  {album.album_name}: {error}")
