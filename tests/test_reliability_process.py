"""kill -9 at random points of a sync, many times over: every run ends consistent and the next converges.

The sync runs as its own process (`python -m tray_sync sync`) and dies by SIGKILL: at a named
point (``TRAY_SYNC_TEST_CRASH_AT``: after a verified download but before its fsync, between the
link to the final name and the partial's removal, right after the rename to the final name,
inside a database transaction before COMMIT, each at its N-th pass) or after a random delay
while files stream in (throttled by the built-in server). After every run, however it ended:

* the database passes SQLite's integrity check and claims only files that are there, whole;
* a final name only ever holds a whole, verified file; no asset is on disk twice;
* the next run fetches nothing that is already complete (no duplicate downloads);
* a run without a crash converges: exactly the album's files, no partial files left.

The short loop is in the default suite; the long one is ``slow``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e_helpers import connect
from tests.reliability_helpers import (
    add,
    assert_consistent,
    assert_converged,
    expected_checksums,
    final_files,
    originals_requested,
    partial_files,
    sha1_b64,
)

pytestmark = [pytest.mark.usefixtures("memory_keyring"), pytest.mark.parametrize("server_mode", ["3"])]

CRASH_POINTS = ("before_fsync", "before_rename", "after_link", "after_rename", "before_commit")


@dataclass
class Rig:
    home: Path
    dest: Path
    server: object
    library: object
    album_id: str
    key: str

    def wanted(self) -> dict[str, str]:
        return expected_checksums(self.server, self.key, self.album_id)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "TRAY_SYNC_TEST_CRASH_AT"}
        env.update({"IMMICH_API_KEY": self.key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                    "TRAY_SYNC_HOME": str(self.home)})
        env.update(extra)
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "tray_sync", "--home", str(self.home), "sync", "--json"]

    def grow(self, rng: random.Random, round_no: int) -> None:
        """New photos on the server: small ones (fetched by ZIP archive) and big ones (one by one)."""
        server, library = self.server, self.library
        server.add_assets_bulk(library.admin, rng.randint(18, 40), rng.randint(800, 6000),  # type: ignore[attr-defined]
                               self.album_id, prefix=f"R{round_no}_S", seed=1000 + round_no)
        server.add_assets_bulk(library.admin, rng.randint(2, 5), rng.randint(1_100_000, 2_500_000),  # type: ignore[attr-defined]
                               self.album_id, prefix=f"R{round_no}_B", seed=2000 + round_no)


@pytest.fixture
def rig(home: Path, tmp_path: Path, demo_server, demo_library) -> Rig:  # type: ignore[no-untyped-def]
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)  # live photo and two same-name photos among them
    return Rig(home, dest, demo_server, demo_library, demo_library.albums["Family 2024"], key)


def present(dest: Path, wanted: dict[str, str]) -> set[str]:
    sums = {sha1_b64(d) for d in final_files(dest).values()}
    return {asset_id for asset_id, checksum in wanted.items() if checksum in sums}


def run_once(rig: Rig, rng: random.Random, *, crash: bool) -> str:
    """One sync process; returns how it ended. Checks the invariants after it."""
    from tray_sync.demo.server import Fault

    wanted = rig.wanted()
    before = present(rig.dest, wanted)
    rig.server.clear_requests()  # type: ignore[attr-defined]
    how = "clean"
    env = rig.env()
    delay = None
    if crash:
        how = rng.choice((*CRASH_POINTS, "timed", "timed"))
        if how == "timed":
            delay = rng.uniform(0.35, 1.6)
            rig.server.faults.add(Fault(path=r"/(original|download/archive)$",  # type: ignore[attr-defined]
                                        rate_bytes_per_s=1_000_000, times=None))
        else:
            missing = len(wanted) - len(before)
            limit = 2 if how in ("before_fsync", "after_link") else max(1, missing // 2)
            how = f"{how}:{rng.randint(1, limit)}"
            env["TRAY_SYNC_TEST_CRASH_AT"] = how
    process = subprocess.Popen(rig.command(), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if delay is not None:
            try:
                process.wait(delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        rig.server.faults.clear()  # type: ignore[attr-defined]
    code = process.returncode
    assert code in (0, -signal.SIGKILL), f"{how}: exit {code}\n{err[-2000:]}"
    if not crash:
        assert code == 0, err
    assert "Traceback" not in err, err
    assert_consistent(rig.home, rig.dest, wanted)
    fetched = originals_requested(rig.server)
    assert not set(fetched) & before, f"{how}: files already complete were downloaded again"
    return f"{how}->{'killed' if code else 'finished'}"


def crash_loop(rig: Rig, runs: int, clean_every: int, seed: int) -> list[str]:
    """``runs`` killed runs; new photos whenever everything is there; a clean, converging run every few."""
    rng = random.Random(seed)
    outcomes = []
    grown = 0
    for number in range(1, runs + 1):
        wanted = rig.wanted()
        if present(rig.dest, wanted) == set(wanted):
            grown += 1
            rig.grow(rng, grown)
        outcomes.append(run_once(rig, rng, crash=True))
        if number % clean_every == 0 or number == runs:
            outcomes.append(run_once(rig, rng, crash=False))
            assert_converged(rig.home, rig.dest, rig.wanted())
    return outcomes


def test_kill_loop_short(rig: Rig) -> None:
    rig.grow(random.Random(5), 0)
    outcomes = crash_loop(rig, runs=8, clean_every=4, seed=11)
    assert sum("killed" in o for o in outcomes) >= 5, outcomes


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_each_crash_point_kills_and_heals(rig: Rig, point: str) -> None:
    """Every named point is reached by a real sync and the run after it converges."""
    rig.grow(random.Random(3), 0)
    env = rig.env(TRAY_SYNC_TEST_CRASH_AT=f"{point}:2")
    done = subprocess.run(rig.command(), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stderr[-2000:])
    wanted = rig.wanted()
    assert_consistent(rig.home, rig.dest, wanted)
    before = present(rig.dest, wanted)
    rig.server.clear_requests()  # type: ignore[attr-defined]
    healed = subprocess.run(rig.command(), env=rig.env(), capture_output=True, text=True, timeout=120)
    assert healed.returncode == 0, healed.stderr
    leftovers = [p.name for p in partial_files(rig.dest)]
    assert not leftovers
    assert_converged(rig.home, rig.dest, wanted)
    assert not set(originals_requested(rig.server)) & before


def test_killed_sync_leaves_no_lock_behind(rig: Rig) -> None:
    """The sync lock dies with its process: the next run starts at once, no stale-lock message."""
    rig.grow(random.Random(9), 0)
    env = rig.env(TRAY_SYNC_TEST_CRASH_AT="after_rename:3")
    first = subprocess.run(rig.command(), env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == -signal.SIGKILL
    started = time.monotonic()
    second = subprocess.run(rig.command(), env=rig.env(), capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "Another tray-sync" not in second.stderr
    assert time.monotonic() - started < 60


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_loop_long(rig: Rig) -> None:
    rig.grow(random.Random(21), 0)
    outcomes = crash_loop(rig, runs=80, clean_every=8, seed=1234)
    killed = [o for o in outcomes if "killed" in o]
    assert len(killed) >= 50, outcomes
    for point in CRASH_POINTS:
        assert any(o.startswith(point) and "killed" in o for o in outcomes), (point, outcomes)
    assert any(o.startswith("timed") and "killed" in o for o in outcomes), outcomes
