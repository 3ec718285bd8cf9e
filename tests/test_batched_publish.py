"""Downloads of one request per file are made durable in batches (tray_sync/sync/publisher.py).

Against the built-in server with the archive path off (or files over its size limit), so every
file takes the one-by-one path: far fewer flush passes than files, each before any of its
batch gets a final name; a name taken meanwhile is left alone; a cancel publishes nothing
more and the next sync reuses the complete partial files; a kill -9 between the renames and
the database record (or before the renames) is healed without downloading anything again; a
disk error in the flush pass is the usual one-line disk error.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.album_rig import AlbumRig
from tests.e2e_helpers import connect, no_partials, sha1_b64
from tests.reliability_helpers import (
    add,
    assert_consistent,
    assert_converged,
    expected_checksums,
    final_files,
    originals_requested,
    partial_files,
)
from tray_sync.demo.server import DemoServer, Fault
from tray_sync.sync import archive, engine, fsops
from tray_sync.sync.progress import AlbumState, CancelToken, Progress
from tray_sync.sync.publisher import NAME_TAKEN, BatchPublisher, StagedFile
from tray_sync.sync.store import Store, StoreError

pytestmark = pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])


def Album(server: DemoServer, tmp_path: Path, *, count: int, size: int = 3000) -> AlbumRig:
    """Small files one request each (archives off), three workers."""
    return AlbumRig(server, tmp_path, count=count, size=size, seed=5, workers=3, archive_max_file_bytes=0)


def tuned_publisher(monkeypatch: pytest.MonkeyPatch, made: list[BatchPublisher], **limits: object) -> None:
    """The engine's publisher with other batch limits (and a list of the ones made)."""

    class Tuned(BatchPublisher):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.update(limits)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr(engine, "BatchPublisher", Tuned)


# -- in-process -----------------------------------------------------------------------------------


def test_many_files_take_few_flush_passes_each_before_any_name(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    album = Album(demo_server, tmp_path, count=200)
    flushed: set[Path] = set()
    passes: list[int] = []
    real_flush, real_publish, real_record = archive.flush_files, fsops.publish, Store.record_assets

    def flush(paths: list[Path], folder: Path) -> None:
        assert all(p.stat().st_size > 0 for p in paths)  # whole, verified files: never an empty one
        real_flush(paths, folder)
        flushed.update(paths)
        passes.append(len(paths))

    def publish(partial: Path, final: Path, **kwargs: object) -> None:
        assert partial in flushed, f"{final.name} got its name before its bytes were flushed"
        assert kwargs.get("sync_dir") is False  # one folder fsync per batch instead
        real_publish(partial, final, **kwargs)  # type: ignore[arg-type]

    def record(store: Store, album_sync_id: int, records: object) -> None:
        rows = list(records)  # type: ignore[call-overload]
        for row in rows:
            assert (album.dest / row["local_path"]).is_file(), "recorded before it had its name"
        real_record(store, album_sync_id, rows)

    monkeypatch.setattr(archive, "flush_files", flush)
    monkeypatch.setattr(fsops, "publish", publish)
    monkeypatch.setattr(Store, "record_assets", record)
    events: list[Progress] = []
    report = album.engine().sync(progress=events.append)
    assert report.ok, report
    result = report.albums[0]
    assert result.downloaded == 200 and result.failed == 0
    assert sum(passes) == 200 and max(passes) <= 64
    assert len(passes) <= 20, passes  # about one pass per 64 files, not one per file
    album.assert_complete()
    assert album.originals().count(album.ids[0]) == 1 and len(album.originals()) == 200
    assert events[-1].files_done == 200


def test_without_utime_by_descriptor_the_time_is_set_after_closing(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no utime on a descriptor: the recorded size and time still match the file."""
    album = Album(demo_server, tmp_path, count=10)
    monkeypatch.setattr(engine, "_UTIME_FD", False)
    assert album.engine().sync().ok
    album.assert_complete()
    times = {(album.dest / r.local_path).stat().st_mtime_ns for r in album.store.synced_assets(album.album.id).values()}
    assert len(times) == 10 and max(times) < time.time_ns() - 86400 * 10**9  # capture times, not "now"


def test_a_file_that_appears_at_the_name_before_its_batch_is_left_alone(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    album = Album(demo_server, tmp_path, count=30)
    intruded: list[StagedFile] = []
    once = threading.Lock()

    class Intruding(BatchPublisher):
        def stage(self, entry: StagedFile) -> None:
            with once:  # workers stage at once: only the first file's name is taken
                if not intruded:  # the user saves a file of their own under this name meanwhile
                    entry.final.write_bytes(b"the user's own file")
                    intruded.append(entry)
            super().stage(entry)

    monkeypatch.setattr(engine, "BatchPublisher", Intruding)
    report = album.engine().sync()
    result = report.albums[0]
    assert (result.downloaded, result.failed) == (29, 1), result
    assert result.errors == (f"{intruded[0].item.relpath}: {NAME_TAKEN}",)
    assert intruded[0].final.read_bytes() == b"the user's own file"
    assert not intruded[0].partial.exists() and no_partials(album.dest)
    records = album.store.synced_assets(album.album.id)
    assert set(records) == set(album.ids) - {intruded[0].item.asset_id}
    for asset_id, record in records.items():
        assert (album.dest / record.local_path).read_bytes() == demo_server.asset_bytes(asset_id)


def test_cancel_publishes_nothing_more_and_the_next_sync_reuses_complete_partials(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    album = Album(demo_server, tmp_path, count=40, size=20_000)
    made: list[BatchPublisher] = []
    tuned_publisher(monkeypatch, made, max_files=1000, max_wait_s=1000.0)  # nothing is due before the end
    stalled = album.ids[-1]
    demo_server.faults.add(Fault(path=rf"/assets/{stalled}/original$", stall_after_bytes=1000, stall_seconds=60))
    token = CancelToken()
    sync = album.engine(workers=2)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(sync.sync(cancel=token)))
    worker.start()
    deadline = time.monotonic() + 30
    while not (made and made[0].pending() == len(album.ids) - 1):
        assert time.monotonic() < deadline and worker.is_alive(), "the other files were never staged"
        time.sleep(0.01)
    token.cancel("paused")
    worker.join(10)
    assert not worker.is_alive(), "cancel did not end the sync"
    assert outcome[0].albums[0].state is AlbumState.CANCELLED  # type: ignore[attr-defined]
    # Nothing was published after the cancel, so nothing is under a name the database lacks.
    assert made[0].batches == 0 and album.store.synced_assets(album.album.id) == {}
    assert final_files(album.dest) == {}
    complete = {p.name.removeprefix(".~tray-sync-").removesuffix(".partial") for p in partial_files(album.dest)
                if p.stat().st_size == 20_000}
    assert complete == set(album.ids) - {stalled}

    demo_server.faults.clear()
    demo_server.clear_requests()
    monkeypatch.undo()
    report = album.engine().sync()
    assert report.ok, report
    assert report.albums[0].downloaded == len(album.ids)
    assert album.originals() == [stalled]  # the complete partial files were re-hashed, not fetched again
    album.assert_complete()


def test_a_disk_error_in_the_flush_pass_is_one_line_and_nothing_gets_a_name(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    album = Album(demo_server, tmp_path, count=20)
    real_flush = archive.flush_files

    def full(paths: list[Path], folder: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(archive, "flush_files", full)
    report = album.engine().sync()
    result = report.albums[0]
    assert result.state is AlbumState.ERROR and result.downloaded == 0
    assert result.errors == (f"The disk holding {album.dest} is full: free some space, then sync again.",)
    assert result.error_kind == "disk"
    assert final_files(album.dest) == {} and album.store.synced_assets(album.album.id) == {}

    monkeypatch.setattr(archive, "flush_files", real_flush)
    demo_server.clear_requests()
    assert album.engine().sync().ok
    album.assert_complete()
    reused = set(album.ids) - set(album.originals())
    assert reused, "no complete partial file was reused after the disk error"


def test_a_database_failure_at_the_record_is_said_once_and_the_next_sync_adopts(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    album = Album(demo_server, tmp_path, count=20)
    message = "The database is locked: close other copies of tray-sync, then sync again."
    real_record = Store.record_assets

    def locked(store: Store, album_sync_id: int, records: object) -> None:
        raise StoreError(message)

    monkeypatch.setattr(Store, "record_assets", locked)
    result = album.engine().sync().albums[0]
    assert result.downloaded == 0 and result.failed == 20
    assert result.errors == (message,)
    # Published but unrecorded: whole files under their names, which the next sync adopts.
    assert album.store.synced_assets(album.album.id) == {}
    sums = {sha1_b64(demo_server.asset_bytes(asset_id)): asset_id for asset_id in album.ids}
    named = {sums[sha1_b64(data)] for data in final_files(album.dest).values()}  # KeyError: not a whole asset
    assert named

    monkeypatch.setattr(Store, "record_assets", real_record)
    demo_server.clear_requests()
    assert album.engine().sync().ok
    album.assert_complete()
    assert not set(album.originals()) & named  # adopted, not fetched again


# -- a real process killed at a crash point -----------------------------------------------------------


@pytest.mark.usefixtures("memory_keyring")
@pytest.mark.parametrize("point", ["after_rename:5", "before_rename:1"])
def test_kill_during_a_batch_is_healed_without_downloading_again(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, point: str
) -> None:
    """Files over the archive limit (1 MB) go one by one, as shipped: killed after a batch's
    renames (before its record) or after its flush (before its renames), the next run adopts or
    re-hashes them: nothing is fetched twice, nothing partial is ever under a final name."""
    key = demo_library.download_key
    album_id = demo_server.add_album(demo_library.admin, "Big")
    demo_server.add_assets_bulk(demo_library.admin, 12, 1_100_000, album_id, prefix="BIG_", seed=3)
    connect(home, demo_server, key)
    dest = tmp_path / "Big"
    add(home, "Big", dest)
    env = {k: v for k, v in os.environ.items() if k != "TRAY_SYNC_TEST_CRASH_AT"}
    env.update({"IMMICH_API_KEY": key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "TRAY_SYNC_HOME": str(home)})
    command = [sys.executable, "-m", "tray_sync", "--home", str(home), "sync", "--json"]
    killed = subprocess.run(command, env={**env, "TRAY_SYNC_TEST_CRASH_AT": point}, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    wanted = expected_checksums(demo_server, key, album_id)
    assert_consistent(home, dest, wanted)  # every final name holds a whole asset; the database claims no more
    on_disk = {sha1_b64(data) for data in final_files(dest).values()}
    ready = {asset_id for asset_id, checksum in wanted.items() if checksum in on_disk}
    complete = {p.name.removeprefix(".~tray-sync-").removesuffix(".partial") for p in partial_files(dest)
                if p.stat().st_size == 1_100_000}
    if point.startswith("after_rename"):
        assert len(ready) >= 5, "the crash did not come after the renames"
    else:
        assert complete, "the crash did not come after the flush"

    demo_server.clear_requests()
    healed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert healed.returncode == 0, healed.stderr[-2000:]
    assert_converged(home, dest, wanted)
    fetched = set(originals_requested(demo_server))
    assert not fetched & ready, "a file already under its name was downloaded again"
    assert not fetched & complete, "a complete partial file was downloaded again"
