"""Network trouble against the built-in server over real HTTP.

Dropped connections mid-body, 5xx, 429 with Retry-After, a slow server, the server going away
mid-sync, an unknown host, and an album that changes while it is being listed (offset paging
shifts). In every case: retries stay within :class:`RetryPolicy`'s bounds, a failure ends as a
clear per-album error, no partial file ever sits under a final name, and the next sync
completes, resuming what it had rather than starting over.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.e2e_helpers import cli, connect
from tests.reliability_helpers import (
    add,
    assert_consistent,
    assert_converged,
    bulk_album,
    expected_checksums,
    final_files,
    partial_files,
    set_setting,
    sha1_b64,
)

pytestmark = pytest.mark.usefixtures("memory_keyring")

ATTEMPTS = 5  # RetryPolicy().attempts


@pytest.fixture
def server_mode() -> str:
    return "3"


def family(home: Path, tmp_path: Path, server, library) -> tuple[Path, dict[str, str]]:  # type: ignore[no-untyped-def]
    connect(home, server, library.download_key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    return dest, expected_checksums(server, library.download_key, library.albums["Family 2024"])


def original_requests(server, asset_id: str) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [r for r in list(server.requests) if r.path.endswith(f"/assets/{asset_id}/original")]


class Background(threading.Thread):
    def __init__(self, home: Path, *args: str) -> None:
        super().__init__(daemon=True)
        self.home, self.args, self.result = home, args, None

    def run(self) -> None:
        self.result = cli(self.home, *self.args)  # type: ignore[assignment]


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("server_mode", ["3", "2"], indirect=False)
def test_connection_dropped_mid_body_is_resumed(home, tmp_path, demo_server, demo_library, server_mode) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    big = bulk_album(demo_server, demo_library, "Big", count=3, size=3_000_000)
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Big"
    add(home, "Big", dest)
    victim = big.ids[0]
    assert server_mode == demo_server.mode
    demo_server.faults.add(Fault(path=rf"/assets/{victim}/original$", drop_after_bytes=1_200_000, times=2))
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, expected_checksums(demo_server, demo_library.download_key, big.album_id))
    tries = original_requests(demo_server, victim)
    assert len(tries) == 3
    ranges = [r.headers.get("Range") for r in tries]
    assert ranges[0] is None and all(r and r.startswith("bytes=") and r != "bytes=0-" for r in ranges[1:]), ranges


def test_5xx_is_retried_then_succeeds(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    dest, wanted = family(home, tmp_path, demo_server, demo_library)
    victim = demo_library.assets["Family 2024"][1]
    demo_server.faults.add(Fault(path=rf"/assets/{victim}/original$", status=503, times=2))
    demo_server.faults.add(Fault(path=r"/albums$", status=502, times=1))
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, wanted)
    assert len(original_requests(demo_server, victim)) == 3


def test_persistent_5xx_stays_within_bounds_then_one_clear_error(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    dest, wanted = family(home, tmp_path, demo_server, demo_library)
    victim = demo_library.assets["Family 2024"][2]
    demo_server.faults.add(Fault(path=rf"/assets/{victim}/original$", status=503, times=None))
    result = cli(home, "sync", "--json")
    assert result.code == 1
    album = result.json()["albums"][0]  # type: ignore[index]
    assert album["failed"] == 1 and album["downloaded"] == len(wanted) - 1
    assert len(album["errors"]) == 1 and "HTTP 503" in album["errors"][0]
    assert len(original_requests(demo_server, victim)) == ATTEMPTS, "retries must stay within the policy"
    assert_consistent(home, dest, wanted)
    assert "Traceback" not in result.err
    demo_server.faults.clear()
    assert cli(home, "sync").code == 0
    assert_converged(home, dest, wanted)


def test_429_retry_after_is_honoured(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    dest, wanted = family(home, tmp_path, demo_server, demo_library)
    victim = demo_library.assets["Family 2024"][3]
    demo_server.faults.add(Fault(path=rf"/assets/{victim}/original$", status=429, times=1,
                                 headers={"Retry-After": "2"}))
    waited = _time_between_tries(demo_server, victim)
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, wanted)
    first, second = original_requests(demo_server, victim)
    assert first.status == 429 and second.status == 200
    assert waited[0] >= 1.9, "Retry-After: 2 was not honoured"


def _time_between_tries(server, asset_id: str) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds from the 429 to the next try of ``asset_id``, seen from the server's side."""
    waited: list[float] = []
    started: list[float] = []
    original_take = server.faults.take

    def take(method: str, path: str):  # type: ignore[no-untyped-def]
        if path.endswith(f"/assets/{asset_id}/original"):
            now = time.monotonic()
            if started:
                waited.append(now - started[0])
            else:
                started.append(now)
        return original_take(method, path)

    server.faults.take = take  # observe the server's side only; the app is untouched
    return waited


def test_slow_server_still_completes(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    dest, wanted = family(home, tmp_path, demo_server, demo_library)
    demo_server.faults.add(Fault(path=r"/albums", delay_seconds=0.5, times=2))
    demo_server.faults.add(Fault(path=r"/original$", rate_bytes_per_s=150_000, times=None))
    demo_server.faults.add(Fault(path=r"/original$", stall_after_bytes=5000, stall_seconds=2, times=1))
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, wanted)


def test_server_gone_mid_sync_then_back(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    big = bulk_album(demo_server, demo_library, "Big", count=4, size=2_000_000)
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Big"
    add(home, "Big", dest)
    set_setting(home, "parallel_downloads", 2)
    demo_server.faults.add(Fault(path=r"/original$", rate_bytes_per_s=1_000_000, times=None))
    sync = Background(home, "sync", "--json")
    sync.start()
    wait_for(lambda: any(p.stat().st_size > 0 for p in partial_files(dest) if p.exists()))
    demo_server.stop()
    sync.join(120)
    result = sync.result
    assert result is not None and result.code == 1
    album = result.json()["albums"][0]  # type: ignore[index]
    assert album["state"] in ("offline", "error")
    assert album["errors"] and all(len(e) < 300 for e in album["errors"])
    assert "Traceback" not in result.err
    wanted = expected_checksums_offline(demo_server, big)
    assert_consistent(home, dest, wanted)
    kept = sum(p.stat().st_size for p in partial_files(dest))
    assert kept > 0, "verified bytes are kept for resuming"
    demo_server.faults.clear()
    demo_server.start()  # same port, same library
    demo_server.clear_requests()
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, wanted)
    assert any(r.headers.get("Range") for r in demo_server.requests if r.path.endswith("/original")), \
        "the next sync resumes instead of starting over"


def expected_checksums_offline(server, album) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {asset_id: sha1_b64(server.asset_bytes(asset_id)) for asset_id in album.ids}


def test_unknown_host_is_one_line(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.sync.store import Store

    dest, _ = family(home, tmp_path, demo_server, demo_library)
    before = final_files(dest)
    result = cli(home, "connect", "http://photos.does-not-exist.invalid", "--api-key-stdin",
                 stdin=demo_library.download_key + "\n")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "unknown host name" in result.err and "Traceback" not in result.err
    store = Store(home / "tray-sync.sqlite3")
    try:
        connection = store.connections()[0]
        store.update_connection(connection.id, api_url="http://photos.does-not-exist.invalid/api")
    finally:
        store.close()
    result = cli(home, "sync", "--json")
    assert result.code == 1
    report = result.json()
    assert report["errors"] and "unknown host name" in report["errors"][0]  # type: ignore[index]
    assert report["albums"][0]["state"] == "offline"  # type: ignore[index]
    assert final_files(dest) == before


@pytest.mark.parametrize("change", ["removed", "added"])
def test_album_changing_while_it_is_listed(home, tmp_path, demo_server, demo_library, change) -> None:  # type: ignore[no-untyped-def]
    """Offset paging shifts when the album changes between pages: nothing may be lost or removed."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    big = bulk_album(demo_server, demo_library, "Paged", count=1100, size=16)
    connect(home, demo_server, key)
    dest = tmp_path / "Paged"
    add(home, "Paged", dest, "--mirror-removals")
    assert cli(home, "sync").code == 0
    assert_converged(home, dest, expected_checksums(demo_server, key, big.album_id))
    before = expected_checksums(demo_server, key, big.album_id)
    newest_first = [a["id"] for a in _listing(demo_server, key, big.album_id)]
    # Relist now (as the daily full listing would), with page 2 held back while the album changes.
    _force_relist(home)
    demo_server.clear_requests()
    demo_server.faults.add(Fault(path=r"/search/metadata$", times=1))  # page 1: as is
    demo_server.faults.add(Fault(path=r"/search/metadata$", delay_seconds=1.5, times=1))  # page 2: late
    sync = Background(home, "sync", "--json")
    sync.start()
    wait_for(lambda: any(r.path.endswith("/search/metadata") for r in demo_server.requests))
    if change == "removed":
        demo_server.remove_from_album(big.album_id, newest_first[:20])  # page 2 slides up by 20
    else:
        extra = demo_server.add_assets_bulk(demo_library.admin, 20, 32, big.album_id, prefix="NEW_", seed=99)
        assert extra
    sync.join(60)
    assert sync.result is not None and sync.result.code == 0, sync.result
    album = sync.result.json()["albums"][0]  # type: ignore[union-attr,index]
    assert album["removed"] == 0, "a listing that changed under it must never remove anything"
    assert not (dest / ".tray-sync-trash").exists()
    sums_now = {sha1_b64(d) for d in final_files(dest).values()}
    assert set(before.values()) <= sums_now, "files were lost"
    assert_consistent(home, dest, {**before, **expected_checksums(demo_server, key, big.album_id)})
    # The next pass sees the album as it is now: the 20 removed go to the album's trash folder
    # (mirror removals is on), the 20 added arrive.
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert result.json()["albums"][0]["removed"] == (20 if change == "removed" else 0)  # type: ignore[index]
    assert_converged(home, dest, expected_checksums(demo_server, key, big.album_id))


def _listing(server, key: str, album_id: str) -> list[dict]:  # type: ignore[type-arg]
    from tests.e2e_helpers import album_listing

    return album_listing(server, key, album_id)


def _force_relist(home: Path) -> None:
    import sqlite3

    db = sqlite3.connect(home / "tray-sync.sqlite3")
    db.execute("UPDATE album_syncs SET last_full_listing_at='2000-01-01T00:00:00Z'")
    db.commit()
    db.close()
