"""Disk trouble on real file systems: full, filled meanwhile, read-only, no permission, gone.

Each case stops only the album on the troubled disk with one clear line, leaves nothing
half-written under a final name and no corrupt state, lets the other albums finish, and the
next sync (once the disk is fine again) completes without fetching what is already there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e_helpers import Result, cli, connect
from tests.reliability_helpers import (
    add,
    assert_consistent,
    assert_converged,
    bulk_album,
    expected_checksums,
    final_files,
    originals_requested,
    partial_files,
    set_setting,
    sha1_b64,
    small_filesystem,
)

pytestmark = [pytest.mark.usefixtures("memory_keyring"), pytest.mark.parametrize("server_mode", ["3"])]

IS_ROOT = os.name == "posix" and os.geteuid() == 0


def by_album(result: Result) -> dict[str, dict]:  # type: ignore[type-arg]
    return {a["album_name"]: a for a in result.json()["albums"]}  # type: ignore[union-attr]


def present_ids(dest: Path, wanted: dict[str, str]) -> set[str]:
    sums = {sha1_b64(data) for data in final_files(dest).values()}
    return {asset_id for asset_id, checksum in wanted.items() if checksum in sums}


def assert_one_clear_line(result: Result, *needles: str) -> None:
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if any(n in line for n in needles)]
    assert lines, result.err
    assert all(len(line) < 400 for line in lines)


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


class BackgroundCli(threading.Thread):
    def __init__(self, home: Path, *args: str) -> None:
        super().__init__(daemon=True)
        self.home, self.args = home, args
        self.result: Result | None = None

    def run(self) -> None:
        self.result = cli(self.home, *self.args)

    def finish(self, timeout: float = 60) -> Result:
        self.join(timeout)
        assert self.result is not None, "the sync did not finish"
        return self.result


def test_disk_full_stops_only_that_album_and_resumes_after(home, tmp_path, demo_server, demo_library,  # type: ignore[no-untyped-def]
                                                             monkeypatch) -> None:
    """150 small files on a 256 KB file system: the disk fills up part way (each file takes a page)."""
    key = demo_library.download_key
    tiny = bulk_album(demo_server, demo_library, "Tiny", count=150, size=1000)
    connect(home, demo_server, key)
    family = tmp_path / "Family"
    add(home, "Family 2024", family)
    small = tmp_path / "small"
    wanted = expected_checksums(demo_server, key, tiny.album_id)
    family_wanted = expected_checksums(demo_server, key, demo_library.albums["Family 2024"])
    with small_filesystem(small, 256, monkeypatch) as fs:
        add(home, "Tiny", small)
        set_setting(home, "free_space_reserve_mb", 0)  # the files fit by size; the pages do not
        result = cli(home, "sync", "--json")
        assert result.code == 1
        albums = by_album(result)
        assert albums["Family 2024"]["state"] == "ok" and albums["Family 2024"]["failed"] == 0
        assert_converged(home, family, family_wanted)
        tiny_result = albums["Tiny"]
        assert tiny_result["state"] == "error"
        assert len(tiny_result["errors"]) == 1 and "is full" in tiny_result["errors"][0], tiny_result
        assert len(final_files(small)) < len(wanted), fs.kind
        assert_consistent(home, small, wanted)
        status = cli(home, "status", "--json").json()
        tiny_status = next(a for a in status["albums"] if a["album_name"] == "Tiny")  # type: ignore[union-attr]
        assert "is full" in str(tiny_status)

        text = cli(home, "sync")  # the same, as a person reads it (now the free-space check sees it)
        assert text.code == 1
        assert_one_clear_line(text, "is full", "Not enough free space")

        had = present_ids(small, wanted)
        fs.grow(4096)
        demo_server.clear_requests()
        result = cli(home, "sync", "--json")
        assert result.code == 0, result.out
        assert_converged(home, small, wanted)
        fetched = originals_requested(demo_server)
        assert not set(fetched) & had, "files already complete were downloaded again"
        assert len(fetched) == len(set(fetched)) == len(wanted) - len(had)


def test_disk_filled_by_someone_else_mid_download(home, tmp_path, demo_server, demo_library,  # type: ignore[no-untyped-def]
                                                   monkeypatch) -> None:
    """The free-space check passed, then another program fills the disk while a big file streams in."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    big = bulk_album(demo_server, demo_library, "Big", count=4, size=300_000)
    wanted = expected_checksums(demo_server, key, big.album_id)
    connect(home, demo_server, key)
    with small_filesystem(tmp_path / "disk", 2048, monkeypatch) as fs:
        dest = fs.path / "Big"  # the album's folder; the other program writes beside it
        add(home, "Big", dest)
        set_setting(home, "free_space_reserve_mb", 0)
        set_setting(home, "parallel_downloads", 1)
        demo_server.faults.add(Fault(path=r"/original$", rate_bytes_per_s=400_000, times=None))
        sync = BackgroundCli(home, "sync", "--json")
        sync.start()
        wait_for(lambda: bool(partial_files(dest)))  # the first file is on its way
        ballast = fs.fill()
        result = sync.finish()
        assert result.code == 1
        album = by_album(result)["Big"]
        assert album["state"] == "error"
        assert len(album["errors"]) == 1 and "is full" in album["errors"][0], album
        assert_consistent(home, dest, wanted)
        assert len(final_files(dest)) < len(wanted)
        demo_server.faults.clear()
        if ballast.exists():
            ballast.unlink()
        fs.used = 0
        result = cli(home, "sync", "--json")
        assert result.code == 0, result.out
        assert_converged(home, dest, wanted)


def _sync_with_read_only_folder(home: Path, key: str, folder: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """`tray-sync sync` in a private mount namespace where ``folder`` is a read-only bind mount.

    As root ``unshare -m`` is enough; a normal user gets the same through a user namespace
    (``unshare -rm``). The host's mounts are never touched. Where neither is allowed the
    folder is made read-only by its permission bits instead (and the message says so).
    """
    script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"')
    command = [sys.executable, "-m", "tray_sync", "--home", str(home), "sync", "--json"]
    env = {**os.environ, "IMMICH_API_KEY": key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    for unshare in (["unshare", "-m"], ["unshare", "-rm"]):
        if not shutil.which("unshare") or (unshare == ["unshare", "-m"] and not IS_ROOT):
            continue
        probe = subprocess.run([*unshare, "sh", "-c", script, "sh", str(folder), "true"], capture_output=True)
        if probe.returncode == 0:
            done = subprocess.run([*unshare, "sh", "-c", script, "sh", str(folder), *command],
                                  capture_output=True, text=True, env=env, timeout=120)
            return done, "read-only"
    folder.chmod(0o555)
    try:
        return _sync_without_root_powers(home, key), "No permission to write"
    finally:
        folder.chmod(0o755)


def test_read_only_destination(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    import json

    key = demo_library.download_key
    connect(home, demo_server, key)
    family, holidays = tmp_path / "Family", tmp_path / "Holidays"
    add(home, "Family 2024", family)
    add(home, "Holidays 2023", holidays)
    done, expected = _sync_with_read_only_folder(home, key, holidays)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    albums = {a["album_name"]: a for a in json.loads(done.stdout)["albums"]}
    assert albums["Family 2024"]["state"] == "ok"
    assert len(albums["Holidays 2023"]["errors"]) == 1
    assert expected in albums["Holidays 2023"]["errors"][0], albums["Holidays 2023"]
    assert final_files(holidays) == {}
    result = cli(home, "sync", "--json")  # writable again (outside the namespace it always was)
    assert result.code == 0
    assert_converged(home, holidays, expected_checksums(demo_server, key, demo_library.albums["Holidays 2023"]))


def _sync_without_root_powers(home: Path, key: str) -> subprocess.CompletedProcess[str]:
    """`tray-sync sync` as a process that file permissions apply to.

    As root the capabilities that bypass permissions are dropped (setpriv); as a normal
    user nothing is needed.
    """
    command = [sys.executable, "-m", "tray_sync", "--home", str(home), "sync", "--json"]
    if IS_ROOT:
        assert shutil.which("setpriv"), "setpriv (util-linux) is needed to drop root's powers"
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", *command]
    env = {**os.environ, "IMMICH_API_KEY": key}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(os.name != "posix", reason="platform: POSIX permission bits")
def test_permission_denied_on_destination(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    key = demo_library.download_key
    connect(home, demo_server, key)
    family, holidays = tmp_path / "Family", tmp_path / "Holidays"
    add(home, "Family 2024", family)
    add(home, "Holidays 2023", holidays)
    holidays.chmod(0o555)
    try:
        done = _sync_without_root_powers(home, key)
        assert done.returncode == 1, done.stderr
        import json

        albums = {a["album_name"]: a for a in json.loads(done.stdout)["albums"]}
        assert albums["Family 2024"]["state"] == "ok"
        errors = albums["Holidays 2023"]["errors"]
        assert len(errors) == 1 and "No permission to write" in errors[0], errors
        assert final_files(holidays) == {}
        assert "Traceback" not in done.stderr
    finally:
        holidays.chmod(0o755)
    result = cli(home, "sync", "--json")
    assert result.code == 0
    assert_converged(home, holidays, expected_checksums(demo_server, key, demo_library.albums["Holidays 2023"]))


def test_destination_deleted_during_sync_is_not_recreated(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """An unmounted drive mid-sync: the app must not write into the bare mount point instead."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest, family = tmp_path / "Holidays", tmp_path / "Family"
    add(home, "Holidays 2023", dest, "--template", "{year}/{month}")
    add(home, "Family 2024", family)
    set_setting(home, "parallel_downloads", 2)
    holidays = "|".join(demo_library.assets["Holidays 2023"])
    demo_server.faults.add(Fault(path=rf"/assets/({holidays})/original$", stall_after_bytes=1000,
                                 stall_seconds=1.0, times=None))
    sync = BackgroundCli(home, "sync", "--json")
    sync.start()
    wait_for(lambda: bool(partial_files(dest)))
    dest.rename(tmp_path / "unplugged")  # the drive goes away, all at once
    result = sync.finish()
    assert result.code == 1
    albums = by_album(result)
    errors = albums["Holidays 2023"]["errors"]
    assert errors and ("disappeared" in errors[0] or "missing" in errors[0]), errors
    assert not dest.exists(), "the album folder was created again on the disk underneath"
    assert albums["Family 2024"]["state"] == "ok"
    dest.mkdir()  # the drive is back
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Holidays 2023"]))


def test_destination_gone_after_planning_is_not_recreated(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """The drive goes away while the album is being listed: no sub-folders on the disk underneath."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Holidays"
    add(home, "Holidays 2023", dest, "--template", "{year}/{month}")
    listing = r"/search/metadata$" if demo_server.is_v3 else r"/albums/[0-9a-f-]+$"
    demo_server.faults.add(Fault(path=listing, delay_seconds=1.5, times=1))
    sync = BackgroundCli(home, "sync", "--json")
    sync.start()
    time.sleep(0.7)  # the folder was checked; the listing is on its way
    shutil.rmtree(dest)
    result = sync.finish()
    assert result.code == 1
    errors = by_album(result)["Holidays 2023"]["errors"]
    assert len(errors) == 1 and "disappeared" in errors[0], errors
    assert not dest.exists(), "the album folder was created again on the disk underneath"


def test_profile_on_a_full_disk_keeps_its_setup(tmp_path, demo_server, demo_library, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The app's own database on the disk that filled up (often the same disk as the photos):
    one clear line from every command, nothing moved aside as "corrupt", and once space is
    freed everything is as it was."""
    key = demo_library.download_key
    with small_filesystem(tmp_path / "disk", 1024, monkeypatch) as fs:
        home = fs.path / "profile"
        connect(home, demo_server, key)
        dest = fs.path / "Family"
        add(home, "Family 2024", dest)
        set_setting(home, "free_space_reserve_mb", 0)
        ballast = fs.fill()
        for args in (("sync",), ("status",), ("albums",)):
            result = cli(home, *args)
            assert "Traceback" not in result.err and "unexpected" not in result.err, result.err
            if fs.kind == "tmpfs":  # SQLite's own writes fail only on a real full disk
                assert result.code != 0 and "is full" in result.err, (args, result.err)
        assert not [p for p in home.iterdir() if ".corrupt-" in p.name], "a full disk is not a damaged database"
        ballast.unlink(missing_ok=True)
        fs.used = 0
        result = cli(home, "sync", "--json")
        assert result.code == 0, result.err
        assert "damaged" not in result.err
        assert [a["album_name"] for a in result.json()["albums"]] == ["Family 2024"]  # type: ignore[index]
        assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))
