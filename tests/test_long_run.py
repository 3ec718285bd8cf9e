"""Long run: hundreds of scheduled sync cycles with faults injected, resources measured.

The real scheduler (tray_sync/scheduler.py) runs its worker thread and, for every cycle, the
same steps the tray app takes: the profile's sync lock, an engine from the one long-lived
context, the verdict. The built-in server meanwhile drops connections, answers 503, stalls,
goes away for a cycle, changes the album (new photos, removals, edited bytes) and serves a
corrupt file now and then.

Measured from /proc (Linux) every few cycles after a warm-up: resident memory, open file
descriptors, sockets among them, and threads. Asserted: none of them grows with the number of
cycles (no leaks), every cycle ends consistent, and the album converges at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import gc
import os
import random
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e_helpers import connect
from tests.reliability_helpers import (
    add,
    assert_consistent,
    bulk_album,
    expected_checksums,
)

pytestmark = [
    pytest.mark.usefixtures("memory_keyring"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="platform: resources are read from /proc"),
]


@pytest.fixture
def server_mode() -> str:
    return "3"


@dataclass
class Sample:
    cycle: int
    rss_kb: int
    fds: int
    sockets: int
    threads: int


def _trim_heap() -> None:
    """Hand the allocator's free pages back to the OS (glibc keeps them after a peak), so RSS
    measures memory in use: a peak that is freed is not a leak, memory still held is."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def sample(cycle: int) -> Sample:
    gc.collect()
    _trim_heap()
    rss = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = sockets = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        fds += 1
        sockets += target.startswith("socket:")
    return Sample(cycle, rss, fds, sockets, threading.active_count())


@dataclass
class Soak:
    home: Path
    dest: Path
    server: object
    library: object
    album_id: str
    key: str
    rng: random.Random
    outcomes: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    history: set[str] = field(default_factory=set)  # every checksum the album's assets ever had


def inject(soak: Soak, cycle: int) -> str:
    """One perturbation for this cycle, chosen at random (seeded)."""
    from tray_sync.demo.server import Fault

    server, library, rng = soak.server, soak.library, soak.rng
    server.faults.clear()  # type: ignore[attr-defined]
    soak.history |= set(expected_checksums(server, soak.key, soak.album_id).values())
    choice = rng.choice(["add", "add", "remove", "edit", "drop", "503", "stall", "offline", "corrupt", "quiet"])
    size = len(server._albums[soak.album_id].asset_ids)  # type: ignore[attr-defined]
    if choice == "add" and size > 120:
        choice = "remove"  # keep the album about the same size: growth must not pass for a leak
    if choice == "add":
        server.add_assets_bulk(library.admin, rng.randint(1, 25), rng.choice((900, 4000, 300_000)),  # type: ignore[attr-defined]
                               soak.album_id, prefix=f"C{cycle}_", seed=cycle)
    elif choice == "remove":
        listed = list(server._albums[soak.album_id].asset_ids)  # type: ignore[attr-defined]
        server.remove_from_album(soak.album_id, rng.sample(listed, min(len(listed) // 4, 25)))  # type: ignore[attr-defined]
    elif choice == "edit":
        listed = list(server._albums[soak.album_id].asset_ids)  # type: ignore[attr-defined]
        server.replace_asset_bytes(rng.choice(listed), os.urandom(rng.randint(100, 5000)))  # type: ignore[attr-defined]
    elif choice == "drop":
        server.faults.add(Fault(path=r"/(original|download/archive)$", drop_after_bytes=2000, times=2))  # type: ignore[attr-defined]
    elif choice == "503":
        server.faults.add(Fault(path=r"/(albums|original|search/metadata)", status=503, times=2))  # type: ignore[attr-defined]
    elif choice == "stall":
        server.faults.add(Fault(path=r"/original$", stall_after_bytes=1000, stall_seconds=0.5, times=1))  # type: ignore[attr-defined]
    elif choice == "offline":
        server.faults.add(Fault(path=r".*", status=502, times=None))  # type: ignore[attr-defined]
    elif choice == "corrupt":
        listed = list(server._albums[soak.album_id].asset_ids)  # type: ignore[attr-defined]
        victim = rng.choice(listed)
        server.corrupt_asset(victim)  # type: ignore[attr-defined]
        server.replace_asset_bytes(victim, os.urandom(777))  # type: ignore[attr-defined]  # repaired: new checksum
    if rng.random() < 0.3:  # and now and then the daily full relist
        _force_relist(soak.home)
    return choice


def _force_relist(home: Path) -> None:
    import sqlite3

    db = sqlite3.connect(home / "tray-sync.sqlite3")
    db.execute("UPDATE album_syncs SET last_full_listing_at='2000-01-01T00:00:00Z'")
    db.commit()
    db.close()


def run_soak(home: Path, tmp_path: Path, server, library, cycles: int, warmup: int, every: int) -> Soak:  # type: ignore[no-untyped-def]
    from tray_sync.app import classify
    from tray_sync.context import Context
    from tray_sync.paths import AppPaths
    from tray_sync.scheduler import RunOutcome, SyncScheduler
    from tray_sync.sync.client import RetryPolicy
    from tray_sync.sync.engine import EngineOptions, SyncEngine
    from tray_sync.sync.lock import BusyError, ProcessLock
    from tray_sync.sync.progress import CancelToken

    key = library.download_key
    album = bulk_album(server, library, "Soak", count=40, size=2000)
    connect(home, server, key)
    dest = tmp_path / "Soak"
    add(home, "Soak", dest)
    soak = Soak(home, dest, server, library, album.album_id, key, random.Random(4242))
    ctx = Context(paths=AppPaths.resolve(home))  # one for the app's whole life, as the tray app has
    finished = threading.Semaphore(0)

    def engine() -> SyncEngine:
        # The app's engine, with quick retries: hundreds of cycles of faults would otherwise
        # spend most of their time in backoff (the delays themselves are proven elsewhere).
        options = dataclasses.replace(EngineOptions.from_settings(ctx.store.settings()),
                                      retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
        return SyncEngine(ctx.store, ctx.key_for, options=options)

    def run_sync(token: CancelToken) -> RunOutcome:  # what TrayApp._run_sync does, minus the UI
        lock = ProcessLock(ctx.paths.runtime_dir / "sync.lock")
        try:
            lock.acquire()
        except BusyError:
            return RunOutcome.BUSY
        try:
            report = engine().sync(cancel=token)
        finally:
            lock.release()
        verdict = classify(report, token.cancelled)
        soak.outcomes.append(verdict.outcome.value)
        return verdict.outcome

    def counted(token: CancelToken) -> RunOutcome:
        try:
            return run_sync(token)
        finally:
            finished.release()

    scheduler = SyncScheduler(counted, ctx.store, first_delay=timedelta(0),
                              clock=lambda: datetime.now(UTC))
    scheduler.start()
    try:
        assert finished.acquire(timeout=120), "the first scheduled sync did not run"
        for cycle in range(1, cycles + 1):
            inject(soak, cycle)
            scheduler.sync_now()
            assert finished.acquire(timeout=120), f"cycle {cycle} did not finish"
            server.faults.clear()
            server.clear_requests()  # the test server's own log must not pass for the app's memory
            assert_consistent(home, dest, expected_checksums(server, key, album.album_id), frozenset(soak.history))
            if cycle >= warmup and cycle % every == 0:
                soak.samples.append(sample(cycle))
        # a last quiet cycle with a full listing: everything there, nothing half-done
        soak.rng = random.Random(0)
        _force_relist(home)
        scheduler.sync_now()
        assert finished.acquire(timeout=120)
        wanted = expected_checksums(server, key, album.album_id)
        assert_consistent(home, dest, wanted, frozenset(soak.history))
        from tests.reliability_helpers import final_files, partial_files, sha1_b64

        assert set(wanted.values()) <= {sha1_b64(d) for d in final_files(dest).values()}
        assert not partial_files(dest)
    finally:
        assert scheduler.stop(10), "the scheduler thread did not stop"
        ctx.close()
    return soak


def assert_stable(samples: list[Sample]) -> None:
    assert len(samples) >= 4
    first, last = samples[0], samples[-1]
    half = len(samples) // 2
    early, late = samples[:half], samples[half:]
    assert max(s.fds for s in late) <= max(s.fds for s in early) + 3, samples
    assert max(s.sockets for s in late) <= max(s.sockets for s in early) + 2, samples
    assert max(s.threads for s in late) <= max(s.threads for s in early) + 1, samples
    # Memory: the late half may not sit clearly above the early half (a leak grows with cycles).
    early_rss = sorted(s.rss_kb for s in early)[len(early) // 2]
    late_rss = sorted(s.rss_kb for s in late)[len(late) // 2]
    # The album's data grows a little (the server's own records, SQLite's cache): megabytes,
    # where a per-cycle leak of one download buffer would be hundreds.
    assert late_rss - early_rss < 8 * 1024, (first, last, samples)


def test_scheduled_cycles_short(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    soak = run_soak(home, tmp_path, demo_server, demo_library, cycles=12, warmup=2, every=2)
    assert len(soak.outcomes) == 14
    fds = [s.fds for s in soak.samples]
    assert max(fds) - min(fds) <= 3, soak.samples


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_hundreds_of_scheduled_cycles_with_faults_stay_stable(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    soak = run_soak(home, tmp_path, demo_server, demo_library, cycles=300, warmup=30, every=10)
    assert len(soak.outcomes) == 302
    assert {"success", "error"} <= set(soak.outcomes), soak.outcomes
    assert_stable(soak.samples)
