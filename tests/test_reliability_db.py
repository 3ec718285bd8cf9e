"""The database under pressure: two syncs at once, a writer holding SQLite's lock, a damaged file.

* Two syncs of one profile (the tray's and a command line's, or two command lines) never run
  together: both take the same OS lock (``sync.lock``); the second says so in one line and
  changes nothing, the first finishes normally.
* A process holding SQLite's write lock makes the app wait (busy timeout), not fail; one held
  for longer than that gives one clear line, never a traceback.
* A damaged or unreadable database is detected when opened, moved aside (kept, never deleted),
  rebuilt from the configuration backup, and the next sync recognises every file already on
  disk by checksum instead of downloading it again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e_helpers import cli, connect
from tests.reliability_helpers import (
    add,
    assert_converged,
    expected_checksums,
    final_files,
    originals_requested,
    partial_files,
)

pytestmark = [pytest.mark.usefixtures("memory_keyring"), pytest.mark.parametrize("server_mode", ["3"])]

IS_ROOT = os.name == "posix" and os.geteuid() == 0


@pytest.fixture
def synced(home: Path, tmp_path: Path, demo_server, demo_library):  # type: ignore[no-untyped-def]
    key = demo_library.download_key
    connect(home, demo_server, key)
    family, holidays = tmp_path / "Family", tmp_path / "Holidays"
    add(home, "Family 2024", family)
    add(home, "Holidays 2023", holidays)
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.err
    wanted = {
        family: expected_checksums(demo_server, key, demo_library.albums["Family 2024"]),
        holidays: expected_checksums(demo_server, key, demo_library.albums["Holidays 2023"]),
    }
    return home, wanted


def sync_process(home: Path, key: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMMICH_API_KEY": key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.Popen([sys.executable, "-m", "tray_sync", "--home", str(home), "sync", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_sync_of_the_same_profile_says_so_and_the_first_finishes(home, tmp_path, demo_server,  # type: ignore[no-untyped-def]
                                                                        demo_library) -> None:
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    demo_server.faults.add(Fault(path=r"/original$", delay_seconds=0.3, times=None))
    first = sync_process(home, key)  # the tray's sync (it takes the very same lock)
    deadline = time.monotonic() + 20
    while not partial_files(dest) and not final_files(dest):
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.02)
    second = cli(home, "sync")
    assert second.code == 1
    assert "Another tray-sync is syncing" in second.err
    assert second.err.count("\n") == 1 and "Traceback" not in second.err
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    demo_server.faults.clear()
    assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))
    report = json.loads(out)
    assert report["ok"] is True


HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES('held_by_test', '1')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def hold_write_lock(db_path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(db_path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_writer_holding_the_database_makes_the_sync_wait(synced, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    home, wanted = synced
    shutil.rmtree(next(iter(wanted)))  # something to write: a folder's worth of records
    next(iter(wanted)).mkdir()
    holder = hold_write_lock(home / "tray-sync.sqlite3", 1.5)
    started = time.monotonic()
    result = cli(home, "sync", "--json")
    waited = time.monotonic() - started
    holder.wait(10)
    assert result.code == 0, result.err
    assert waited >= 1.0  # it waited for the lock instead of failing
    for dest, checksums in wanted.items():
        assert_converged(home, dest, checksums)


def test_a_writer_holding_the_database_too_long_is_one_clear_line(synced, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.sync import store as store_module

    home, wanted = synced
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.5)  # instead of waiting 30 s in a test
    dest = next(iter(wanted))
    shutil.rmtree(dest)
    dest.mkdir()
    holder = hold_write_lock(home / "tray-sync.sqlite3", 4)
    try:
        result = cli(home, "sync")
    finally:
        holder.wait(10)
    assert result.code != 0
    assert "Traceback" not in result.err and "unexpected error" not in result.err, result.err
    assert "busy" in result.err, result.err
    busy_lines = [line for line in result.err.splitlines() if "busy" in line]
    assert len(busy_lines) == 1, result.err  # said once, not once per file
    again = cli(home, "sync", "--json")  # the lock is gone: all is well
    assert again.code == 0, again.err
    for folder, checksums in wanted.items():
        assert_converged(home, folder, checksums)


def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    if how == "garbage":
        db.write_bytes(os.urandom(len(data)))
    elif how == "truncated":
        db.write_bytes(bytes(data[: len(data) // 3 + 100]))
    elif how == "bad-header":
        data[:16] = b"not a database!!"
        db.write_bytes(bytes(data))
    elif how == "zeroed-pages":
        page = 4096
        for start in range(page, len(data), page * 2):  # every other page after the first
            data[start:start + page] = b"\0" * min(page, len(data) - start)
        db.write_bytes(bytes(data))
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["garbage", "truncated", "bad-header", "zeroed-pages"])
def test_damaged_database_is_moved_aside_and_rebuilt_without_downloading_again(synced, demo_server, how) -> None:  # type: ignore[no-untyped-def]
    home, wanted = synced
    db = home / "tray-sync.sqlite3"
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    before = {dest: final_files(dest) for dest in wanted}
    _damage(db, how)
    demo_server.clear_requests()
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.err
    assert "damaged and has been rebuilt" in result.err and "2 synced albums restored" in result.err, result.err
    assert "Traceback" not in result.err
    assert originals_requested(demo_server) == [], "files already on disk were downloaded again"
    report = result.json()
    assert sorted(a["album_name"] for a in report["albums"]) == ["Family 2024", "Holidays 2023"]  # type: ignore[index]
    assert all(a["downloaded"] == 0 and a["skipped"] > 0 for a in report["albums"])  # type: ignore[index]
    aside = [p for p in home.iterdir() if ".corrupt-" in p.name]
    assert aside, "the damaged database must be kept"
    for dest, checksums in wanted.items():
        assert final_files(dest) == before[dest]
        assert_converged(home, dest, checksums)
    again = cli(home, "sync", "--json")
    assert again.code == 0 and "damaged" not in again.err


def test_damaged_database_without_a_backup_keeps_every_file(synced, demo_server) -> None:  # type: ignore[no-untyped-def]
    home, wanted = synced
    (home / "tray-sync.sqlite3.config.json").unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{home / 'tray-sync.sqlite3'}{suffix}").unlink(missing_ok=True)
    _damage(home / "tray-sync.sqlite3", "garbage")
    before = {dest: final_files(dest) for dest in wanted}
    result = cli(home, "status")
    assert "damaged and has been rebuilt" in result.err and "0 synced albums restored" in result.err
    assert "Traceback" not in result.err
    for dest in wanted:
        assert final_files(dest) == before[dest]


@pytest.mark.skipif(os.name != "posix", reason="platform: POSIX permission bits")
def test_unreadable_database_is_set_aside_not_lost(synced, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """A database the user cannot read (restored from a backup as another user, say)."""
    home, wanted = synced
    db = home / "tray-sync.sqlite3"
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    original = db.read_bytes()
    db.chmod(0o000)
    command = [sys.executable, "-m", "tray_sync", "--home", str(home), "sync", "--json"]
    if IS_ROOT:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *command]
    env = {**os.environ, "IMMICH_API_KEY": demo_library.download_key,
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    demo_server.clear_requests()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rebuilt" in done.stderr and "Traceback" not in done.stderr
    assert originals_requested(demo_server) == []
    aside = [p for p in home.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1
    aside[0].chmod(0o600)
    assert aside[0].read_bytes() == original  # set aside untouched, not deleted
    for dest, checksums in wanted.items():
        assert_converged(home, dest, checksums)


def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_tray_sync_while_the_command_line_syncs_waits_its_turn(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """The tray app's scheduled sync finds the command line syncing: it backs off (BUSY) and says so."""
    from tray_sync.app import TrayApp
    from tray_sync.context import Context
    from tray_sync.demo.server import Fault
    from tray_sync.paths import AppPaths
    from tray_sync.scheduler import RunOutcome

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    demo_server.faults.add(Fault(path=r"/original$", delay_seconds=0.4, times=None))
    command_line = sync_process(home, key)
    _wait(lambda: bool(partial_files(dest) or final_files(dest)) or command_line.poll() is not None)
    ctx = Context(paths=AppPaths.resolve(home))
    app = TrayApp(ctx, first_delay_s=0)
    try:
        app.scheduler.start()
        _wait(lambda: app.scheduler.status().last_outcome is not None)
        assert app.scheduler.status().last_outcome is RunOutcome.BUSY
        assert any("Another tray-sync" in entry.text for entry in app.model.snapshot().activity)
    finally:
        assert app.scheduler.stop(10)
        ctx.close()
    _out, err = command_line.communicate(timeout=120)
    assert command_line.returncode == 0, err
    demo_server.faults.clear()
    assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))


def test_command_line_sync_while_the_tray_syncs_says_so(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.app import TrayApp
    from tray_sync.context import Context
    from tray_sync.demo.server import Fault
    from tray_sync.paths import AppPaths
    from tray_sync.scheduler import RunOutcome

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    demo_server.faults.add(Fault(path=r"/original$", delay_seconds=0.3, times=None))
    ctx = Context(paths=AppPaths.resolve(home))
    app = TrayApp(ctx, first_delay_s=0)
    try:
        app.scheduler.start()
        _wait(lambda: bool(partial_files(dest) or final_files(dest)))
        second = cli(home, "sync")
        assert second.code == 1 and "Another tray-sync is syncing" in second.err, second.err
        assert "Traceback" not in second.err
        _wait(lambda: app.scheduler.status().last_outcome is not None, timeout=120)
        assert app.scheduler.status().last_outcome is RunOutcome.SUCCESS
    finally:
        assert app.scheduler.stop(10)
        ctx.close()
    demo_server.faults.clear()
    assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))
