"""Pause and cancel take effect within a second while the engine is still *planning* a large album.

Planning is a file system look per asset (a stat, a name check, or the SHA-1 of a file found at a
planned name): on a slow network drive a 20,000-photo album takes many seconds of it, with no
network request for the client's abort to cut short. The drive is made slow here (a fraction of a
millisecond per look), so that planning the whole album would take several seconds; a pause in
the middle must end the sync within a second, having looked at no more than a few hundred more
assets, written nothing, and left a database the next sync carries on from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e_helpers import album_listing, cli, connect, files_in, no_partials, sha1_b64
from tray_sync.context import Context
from tray_sync.paths import AppPaths
from tray_sync.sync import engine as engine_module
from tray_sync.sync.engine import SyncEngine
from tray_sync.sync.progress import CancelToken, SyncReport

# The in-memory keyring: once a GUI test has put a session bus in the environment, the real
# Secret Service would be activated there and wait for ever for someone to unlock it.
pytestmark = pytest.mark.usefixtures("memory_keyring")

ASSETS = 4_000  # enough that planning spans many cancel checks; kept small so the follow-up sync is quick
SLOW_DRIVE_S = 0.001  # per file system look: a network share or a USB hard disk far away
PLANNING_STARTED_AFTER = 600  # assets planned before the pause comes


class SlowPlanning:
    """Wraps one planning step of the engine: slow, counted, and counted again after the pause."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, method: str, token: CancelToken) -> None:
        self.calls = 0
        self.after_cancel = 0
        self.started = threading.Event()
        original: Callable[..., object] = getattr(SyncEngine, method)

        def slow(engine: SyncEngine, *args: object, **kwargs: object) -> object:
            self.calls += 1
            if token.cancelled:
                self.after_cancel += 1
            if self.calls == PLANNING_STARTED_AFTER:
                self.started.set()
            time.sleep(SLOW_DRIVE_S)
            return original(engine, *args, **kwargs)

        monkeypatch.setattr(SyncEngine, method, slow)


def _pause_while_planning(ctx: Context, token: CancelToken, planning: SlowPlanning) -> tuple[SyncReport, float]:
    """Start a sync, pause it once planning is well under way; the report and cancel -> return seconds."""
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["report"] = ctx.engine().sync(cancel=token)
        outcome["returned"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        assert planning.started.wait(60), "planning never got going"
        cancelled_at = time.monotonic()
        token.cancel("paused")
        worker.join(10)
        assert not worker.is_alive(), "the sync did not stop"
    finally:
        token.cancel("test over")
        worker.join(10)
    return outcome["report"], float(outcome["returned"]) - cancelled_at  # type: ignore[return-value,arg-type]


def _requests_for_bytes(server) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path for r in server.requests if r.path.endswith(("/original", "/download/archive"))]


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_a_pause_while_planning_a_large_album_ends_the_sync_within_a_second(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    admin, key = demo_library.admin, demo_library.download_key
    album = demo_server.add_album(admin, "Everything")
    demo_server.add_assets_bulk(admin, ASSETS, 64, album, prefix="E_", seed=11)
    connect(home, demo_server, key)
    dest = tmp_path / "Everything"
    assert cli(home, "add", "Everything", str(dest)).code == 0
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        album_sync = ctx.store.album_syncs()[0]

        # 1. First sync: 4,000 new assets, each needs a free name on the (slow) drive.
        token = CancelToken()
        with pytest.MonkeyPatch.context() as patch:
            planning = SlowPlanning(patch, "_claim_name", token)
            demo_server.clear_requests()
            report, took = _pause_while_planning(ctx, token, planning)
        assert took < 1.0, f"the pause took {took:.2f} s"
        assert planning.calls < ASSETS and planning.after_cancel <= engine_module.PLAN_CANCEL_EVERY, \
            f"{planning.after_cancel} assets were still planned after the pause"
        assert [a.state.value for a in report.albums] == ["cancelled"]
        assert files_in(dest) == {} and no_partials(dest), "nothing is named while planning"
        # The first small files may be fetched while the album is listed (kept unnamed, closed
        # by the pause); nothing is downloaded one by one before planning ends.
        assert [path for path in _requests_for_bytes(demo_server) if path.endswith("/original")] == []
        stored = ctx.store.album_sync(album_sync.id)
        assert ctx.store.synced_assets(album_sync.id) == {}
        assert stored.fingerprint is None and stored.last_full_listing_at is None, \
            "a paused listing must not count as a complete one"

        # The next sync carries on from there: every photo, whole.
        finished = ctx.engine().sync()
        assert finished.ok and finished.downloaded == ASSETS
        listing = album_listing(demo_server, key, album)
        assert sorted(sha1_b64(data) for data in files_in(dest).values()) == sorted(a["checksum"] for a in listing)
        before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in dest.rglob("*") if p.is_file()}

        # 2. Nothing changed on the server: planned from the records, a stat per file we wrote.
        # 3. The album changed (renamed): relisted, each listed asset checked against its record.
        for step, method in (("records", "_plan_known"), ("relist", "_plan_known")):
            if step == "relist":
                demo_server.rename_album(album, "Everything, renamed")
            token = CancelToken()
            with pytest.MonkeyPatch.context() as patch:
                planning = SlowPlanning(patch, method, token)
                demo_server.clear_requests()
                report, took = _pause_while_planning(ctx, token, planning)
            assert took < 1.0, f"{step}: the pause took {took:.2f} s"
            assert planning.calls < ASSETS and planning.after_cancel <= engine_module.PLAN_CANCEL_EVERY, \
                f"{step}: {planning.after_cancel} assets were still planned after the pause"
            assert [a.state.value for a in report.albums] == ["cancelled"], step
            assert _requests_for_bytes(demo_server) == [], step
            after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in dest.rglob("*") if p.is_file()}
            assert after == before, f"{step}: files changed by a paused sync"
            records = ctx.store.synced_assets(album_sync.id)
            assert len(records) == ASSETS and {r.state for r in records.values()} == {"synced"}, step

        again = ctx.engine().sync()
        assert again.ok and again.downloaded == 0 and again.albums[0].relisted
        assert ctx.store.album_sync(album_sync.id).album_name == "Everything, renamed"
    finally:
        ctx.close()
