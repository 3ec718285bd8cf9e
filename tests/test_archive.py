"""The archive path for small files: POST /download/archive, streamed, matched by SHA-1, with fallback.

Against the built-in server in 3.x and 2.x mode, plus the ZIP reader on its own. Crafted
archives (served through the demo server's fault injection) check what a real server never
sends on purpose: entries out of order under misleading or hostile names, junk entries,
missing entries, oversized entries, and a stream that breaks off or stalls.
"""

from __future__ import annotations

import io
import random
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.album_rig import AlbumRig
from tests.e2e_helpers import no_partials
from tray_sync.demo.server import DemoServer, Fault, zip_stream
from tray_sync.sync import archive, fsops
from tray_sync.sync.archive import ArchiveError, StreamingZipReader
from tray_sync.sync.engine import SyncEngine
from tray_sync.sync.progress import AlbumState, CancelToken
from tray_sync.sync.store import Store

ARCHIVE = r"/download/archive$"
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# -- helpers ------------------------------------------------------------------------------------


def immich_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A ZIP as Immich writes it: stored, data descriptors, sizes 0 in the local headers."""
    return b"".join(zip_stream((name, WHEN, iter([data])) for name, data in entries))


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    position, index = 0, 0
    while position < len(data):
        step = sizes[index % len(sizes)]
        yield data[position:position + step]
        position += step
        index += 1


def read_all(
    data: bytes, sizes: list[int], *, max_entry: int = 1 << 20, max_entries: int = 100
) -> list[tuple[bytes, bytes]]:
    reader = StreamingZipReader(chunked(data, sizes), max_entry_size=max_entry, max_entries=max_entries)
    return [(entry.raw_name, entry.data) for entry in reader]


def Setup(server: DemoServer, tmp_path: Path, **options: object) -> AlbumRig:
    """The archive tests' album: one download worker, archives from 4 files up."""
    return AlbumRig(server, tmp_path, workers=1, archive_min_files=4, **options)  # type: ignore[arg-type]


@pytest.fixture
def setup(demo_server: DemoServer, tmp_path: Path) -> AlbumRig:
    return Setup(demo_server, tmp_path)


def open_files_in(folder: Path) -> list[str]:
    """This process's open files inside ``folder`` (an unnamed file shows as ``folder/#123 (deleted)``)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return []
    found = []
    for entry in fd_dir.iterdir():
        try:
            target = str(entry.readlink())
        except OSError:
            continue
        if target.startswith(str(folder) + "/"):
            found.append(target)
    return found


unnamed_files = pytest.mark.skipif(
    fsops._O_TMPFILE is None or not Path("/proc/self/fd").is_dir(), reason="platform: no O_TMPFILE (Linux only)")


# -- the reader on its own -------------------------------------------------------------------------


def test_reader_finds_entry_ends_despite_descriptor_lookalikes() -> None:
    # Entry bytes that contain the data-descriptor signature, even followed by a plausible CRC and
    # sizes of the wrong values: only the descriptor that agrees with the bytes ends an entry.
    tricky = b"abc" + b"PK\x07\x08" + struct.pack("<III", 0, 3, 3) + b"more" + b"PK\x07\x08" * 3 + b"end"
    entries = [("a.jpg", tricky), ("b.jpg", b""), ("c.jpg", bytes(range(256)) * 40), ("PK\x07\x08.jpg", b"PK\x07\x08")]
    data = immich_zip(entries)
    expected = [(name.encode(), content) for name, content in entries]
    for sizes in ([1], [7, 3, 1], [4096], [len(data)]):
        assert read_all(data, sizes) == expected


def test_reader_uses_size_hints_and_survives_wrong_ones() -> None:
    entries = [(f"{i}.jpg", bytes([i]) * (1000 + i) + b"PK\x07\x08" + bytes(12)) for i in range(6)]
    data = immich_zip(entries)
    expected = [(name.encode(), content) for name, content in entries]
    right = [len(content) for _, content in entries]
    for hints in (right, [h + 1 for h in right], list(reversed(right)), right[:2], [-1] * 6):
        reader = StreamingZipReader(chunked(data, [333]), max_entry_size=1 << 20, max_entries=10, size_hints=hints)
        assert [(e.raw_name, e.data) for e in reader] == expected, hints


def test_reader_reads_deflated_and_sized_entries() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # seekable: sizes in the local headers
        archive.writestr("stored.bin", b"s" * 5000, compress_type=zipfile.ZIP_STORED)
        archive.writestr("deflated.txt", b"hello world " * 2000, compress_type=zipfile.ZIP_DEFLATED)
    assert read_all(buffer.getvalue(), [13]) == [(b"stored.bin", b"s" * 5000),
                                                 (b"deflated.txt", b"hello world " * 2000)]


@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        (immich_zip([("big.jpg", b"x" * 5000)]), {"max_entry": 4000}, "larger than any file"),
        (immich_zip([(f"{i}.jpg", b"x") for i in range(5)]), {"max_entries": 3}, "more files than"),
        (immich_zip([("a.jpg", b"x" * 1000)])[:500], {}, "ended"),
        (b"<html>not a zip</html>", {}, "not a ZIP"),
        (b"", {}, "empty"),
    ],
    ids=["oversized-entry", "too-many-entries", "truncated", "not-a-zip", "empty"],
)
def test_reader_refuses_hostile_archives(data: bytes, limits: dict[str, int], message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        read_all(data, [100], **limits)


def test_reader_refuses_a_deflate_bomb() -> None:
    payload = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = payload.compress(b"\0" * 10_000_000) + payload.flush()
    name = b"bomb.jpg"
    header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, zlib.crc32(b"\0" * 10_000_000),
                         len(bomb), 10_000_000, len(name), 0)
    with pytest.raises(ArchiveError, match="larger than any file"):
        read_all(header + name + bomb + b"PK\x05\x06" + bytes(18), [65536], max_entry=100_000)


# -- against the built-in server -----------------------------------------------------------------


def test_small_files_arrive_through_archives(setup: AlbumRig) -> None:
    report = setup.engine(workers=2).sync()
    assert report.ok, report
    assert report.albums[0].downloaded == len(setup.ids)
    setup.assert_complete()
    assert setup.requests("/original") == 0
    archives = [r for r in setup.server.requests if r.path.endswith("/download/archive")]
    assert len(archives) == 2  # one batch per worker
    assert all(r.headers.get("Accept-Encoding") == "identity" for r in archives)
    asked = [asset_id for r in archives for asset_id in r.json()["assetIds"]]
    assert sorted(asked) == sorted(setup.ids)
    # The files carry the capture time, like single downloads do.
    listing_times = {p.stat().st_mtime_ns for p in setup.dest.iterdir()}
    assert len(listing_times) > 1


def test_threshold_zero_downloads_one_by_one(setup: AlbumRig) -> None:
    assert setup.engine(archive_max_file_bytes=0).sync().ok
    setup.assert_complete()
    assert setup.requests("/download/archive") == 0
    assert setup.requests("/original") == len(setup.ids)


def test_duplicate_names_are_matched_by_checksum(demo_server: DemoServer, tmp_path: Path) -> None:
    # The server renames repeats dup.jpg, dup+1.jpg, ... (and the engine names them its own way).
    setup = Setup(demo_server, tmp_path, names=["dup.jpg"] * 8 + ["other.jpg"] * 2, size=2000)
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert setup.requests("/original") == 0


def test_entries_out_of_order_under_wrong_names_and_junk(setup: AlbumRig) -> None:
    # Shuffled entries, each under another asset's name, a junk entry, one asset missing
    # entirely: everything present is matched by its bytes, the junk is ignored and the
    # missing one is downloaded on its own.
    shuffled = list(setup.ids)
    random.Random(3).shuffle(shuffled)
    missing = shuffled.pop()
    names = [f"IMG_{i:06d}.jpg" for i in range(len(shuffled))]
    entries = [(names[-1 - i], setup.bytes_of(asset_id)) for i, asset_id in enumerate(shuffled)]
    entries.insert(5, ("junk.jpg", b"not a photo of this album"))
    setup.server.faults.add(Fault(path=ARCHIVE, raw_body=immich_zip(entries)))
    report = setup.engine().sync()
    assert report.ok, report
    setup.assert_complete()
    originals = [r.path for r in setup.server.requests if r.path.endswith("/original")]
    assert originals == [f"/api/assets/{missing}/original"]


def test_hostile_entry_names_are_never_paths(demo_server: DemoServer, tmp_path: Path) -> None:
    hostile = ["../../escape.jpg", "/etc/passwd.jpg", "..\\..\\windows.jpg", "a/b/c.jpg", "CON.jpg",
               ".~tray-sync-x.partial", "nul\x00byte.jpg", "C:evil.jpg"]
    setup = Setup(demo_server, tmp_path, names=hostile, size=1500)
    # What the server's archive would say, and worse: absolute and climbing entry names.
    crafted = [(name, setup.bytes_of(asset_id)) for name, asset_id in zip(
        ["../../../../outside.jpg", "/tmp/absolute.jpg", "..\\..\\x.jpg", "dest/../../y.jpg",
         "\x00.jpg", "a" * 300 + ".jpg", "sub/dir/z.jpg", ".."], setup.ids, strict=True)]
    setup.server.faults.add(Fault(path=ARCHIVE, raw_body=immich_zip(crafted)))
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert setup.requests("/original") == 0
    outside = [p for p in tmp_path.rglob("*")
               if p.is_file() and setup.dest not in p.parents and p.parent != tmp_path
               and "server-storage" not in p.parts]
    assert outside == []
    assert not (tmp_path / "outside.jpg").exists() and not Path("/tmp/absolute.jpg").exists()
    # And through the server's own archive (2.x keeps names as they are).
    second = tmp_path / "again"
    second.mkdir()
    setup.dest = second / "Small"
    setup.dest.mkdir()
    setup.store = Store(second / "state.sqlite3")
    connection = setup.store.save_connection(name="home", server_url=demo_server.url, api_url=demo_server.api_url,
                                             account="home", server_version="")
    setup.album = setup.store.add_album_sync(connection.id, setup.album_id, "Small", str(setup.dest))
    assert setup.engine().sync().ok
    setup.assert_complete()


@pytest.mark.parametrize(
    "fault",
    [
        Fault(path=ARCHIVE, drop_after_bytes=20_000),
        Fault(path=ARCHIVE, status=500, times=None),
        Fault(path=ARCHIVE, raw_body=b"<html>proxy error page</html>", content_type="text/html"),
        Fault(path=ARCHIVE, raw_body=immich_zip([("big.jpg", b"x" * 10_000)])),
    ],
    ids=["broken-off", "server-error", "not-a-zip", "oversized-entry"],
)
def test_broken_archive_falls_back_to_single_downloads(setup: AlbumRig, fault: Fault) -> None:
    setup.server.faults.add(fault)
    report = setup.engine().sync()
    assert report.ok, report
    setup.assert_complete()
    assert 0 < setup.requests("/original") <= len(setup.ids)


def test_entries_before_a_break_are_kept(setup: AlbumRig) -> None:
    whole = immich_zip([(f"{i}.jpg", setup.bytes_of(asset_id)) for i, asset_id in enumerate(setup.ids)])
    setup.server.faults.add(Fault(path=ARCHIVE, raw_body=whole[: len(whole) // 2]))
    assert setup.engine().sync().ok
    setup.assert_complete()
    single = [r.path.split("/")[-2] for r in setup.server.requests if r.path.endswith("/original")]
    assert 0 < len(single) < len(setup.ids)
    kept = len(setup.ids) - len(single)
    assert kept >= len(setup.ids) // 2 - 1
    assert set(single) == set(setup.ids[kept:])  # what came before the break came from the archive


def test_cancel_mid_archive_leaves_nothing_half_done(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Big enough that the server's first chunk (256 KiB) holds several whole entries, which the
    # engine writes to partial files before the stream stalls.
    setup = Setup(demo_server, tmp_path, count=40, size=20_000)
    setup.server.faults.add(Fault(path=ARCHIVE, stall_after_bytes=400_000, stall_seconds=60))
    token = CancelToken()
    engine = setup.engine()
    outcome: list[object] = []
    staged = threading.Semaphore(0)
    real_fill, real_write = archive._fill, archive._write_partial

    def fill(*args: object) -> tuple[int, int]:
        try:
            return real_fill(*args)  # type: ignore[arg-type]
        finally:
            staged.release()

    def write_partial(*args: object) -> tuple[int, int]:
        try:
            return real_write(*args)  # type: ignore[arg-type]
        finally:
            staged.release()

    monkeypatch.setattr(archive, "_fill", fill)
    monkeypatch.setattr(archive, "_write_partial", write_partial)
    worker = threading.Thread(target=lambda: outcome.append(engine.sync(cancel=token)))
    worker.start()
    for _ in range(3):  # several entries staged (unnamed files here, partial files elsewhere)
        assert staged.acquire(timeout=30), "the archive never started streaming"
    token.cancel("paused")
    worker.join(20)
    assert not worker.is_alive(), "cancel did not interrupt the stalled archive"
    report = outcome[0]
    assert report.albums[0].state is AlbumState.CANCELLED  # type: ignore[attr-defined]
    assert no_partials(setup.dest)
    records = setup.store.synced_assets(setup.album.id)
    on_disk = {p.name for p in setup.dest.iterdir()}
    assert on_disk == {r.local_path for r in records.values()}  # nothing unrecorded, nothing half-written
    assert not open_files_in(setup.dest), "staged files were left open"
    setup.server.faults.clear()
    assert setup.engine().sync().ok
    setup.assert_complete()


def test_archive_into_template_folders_and_replacing_changed_photos(demo_server: DemoServer, tmp_path: Path) -> None:
    setup = Setup(demo_server, tmp_path, count=12, size=2500)
    setup.store.update_album_sync(setup.album.id, folder_template="{year}/{month}")
    assert setup.engine().sync().ok
    setup.assert_complete()
    records = setup.store.synced_assets(setup.album.id)
    assert all(r.local_path.count("/") == 2 for r in records.values())  # year/month/name
    assert setup.requests("/original") == 0

    # The server's bytes change for some photos (an edit): they come again through an archive and
    # replace the app's own copies; a file the user deleted comes back the same way.
    changed = setup.ids[:5]
    for index, asset_id in enumerate(changed):
        demo_server.replace_asset_bytes(asset_id, bytes([index]) * 3000 + b"edited")
    (setup.dest / records[setup.ids[6]].local_path).unlink()
    demo_server.clear_requests()
    report = setup.engine().sync()
    assert report.ok, report
    assert report.albums[0].downloaded == len(changed) + 1
    setup.assert_complete()
    assert setup.requests("/original") == 0 and setup.requests("/download/archive") == 1


# -- staging in unnamed files (Linux O_TMPFILE) ------------------------------------------------------


@unnamed_files
def test_archived_files_are_staged_unnamed_and_named_only_after_the_flush(
    setup: AlbumRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No partial name is ever created: the data is flushed while the files have no name, and each
    gets its final name only after that; at no moment is a final name incomplete."""
    seen: list[tuple[int, int, int]] = []  # (staged unnamed, staged named, final names) at each flush
    real_flush = archive.flush_files

    def flush(paths: list[Path], folder: Path, fds: list[int] | None = None) -> None:
        finals = [p for p in setup.dest.iterdir() if not p.name.startswith(".~tray-sync-")]
        seen.append((len(fds or []), len(paths), len(finals)))
        for fd in fds or []:
            assert str(Path(f"/proc/self/fd/{fd}").readlink()).startswith(str(setup.dest) + "/#")
        real_flush(paths, folder, fds)

    monkeypatch.setattr(archive, "flush_files", flush)
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert seen and all(named == 0 for _, named, _ in seen), seen
    assert sum(unnamed for unnamed, _, _ in seen) == len(setup.ids)
    assert seen[0][2] == 0  # the first flush came before any final name existed
    assert not open_files_in(setup.dest)


@unnamed_files
def test_a_small_descriptor_budget_publishes_in_more_passes(setup: AlbumRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each unnamed file holds a descriptor until named: an archive never holds more than its budget."""
    monkeypatch.setattr(archive, "_BUDGET", 5)
    held: list[int] = []
    real_flush = archive.flush_files

    def flush(paths: list[Path], folder: Path, fds: list[int] | None = None) -> None:
        held.append(len(fds or []))
        real_flush(paths, folder, fds)

    monkeypatch.setattr(archive, "flush_files", flush)
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert max(held) <= 5 and sum(held) == len(setup.ids) and len(held) >= len(setup.ids) // 5


def test_without_unnamed_files_partial_files_are_used(setup: AlbumRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other systems, and file systems without O_TMPFILE (FAT, NFS): named partial files, same result."""
    created: list[str] = []
    real_write = archive._write_partial

    def write_partial(partial: Path, data: bytes, mtime_ns: int | None) -> tuple[int, int]:
        created.append(partial.name)
        return real_write(partial, data, mtime_ns)

    monkeypatch.setattr(fsops, "open_unnamed", lambda folder: None)
    monkeypatch.setattr(archive, "_write_partial", write_partial)
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert len(created) == len(setup.ids) and all(fsops.is_partial_name(name) for name in created)


@unnamed_files
def test_a_file_system_refusing_o_tmpfile_is_remembered(setup: AlbumRig, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    attempts: list[str] = []
    real_open = os.open

    def refusing_open(path: object, flags: int, *args: object) -> int:
        if flags & fsops._O_TMPFILE == fsops._O_TMPFILE:
            attempts.append(str(path))
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fsops, "_unnamed_refused", set())
    monkeypatch.setattr(os, "open", refusing_open)
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert attempts == [str(setup.dest)]  # asked once, then partial files for that folder


@unnamed_files
def test_naming_through_proc_refused_falls_back_to_a_partial_copy(
    setup: AlbumRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox may refuse linkat through /proc: the data is copied to a partial file and published."""
    def refuse(fd: int, final: Path) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(fsops, "_unnamed_refused", set())
    monkeypatch.setattr(fsops, "link_unnamed", refuse)
    assert setup.engine().sync().ok
    setup.assert_complete()
    assert str(setup.dest) in fsops._unnamed_refused  # the rest of the album used partial files
    assert not open_files_in(setup.dest)


@unnamed_files
def test_a_name_taken_while_staged_is_left_alone(setup: AlbumRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that appears at the final name after planning wins; the staged copy is dropped."""
    monkeypatch.setattr(archive, "_BUDGET", 5)  # several flush passes
    real_flush = archive.flush_files
    intruder = b"the user's own file"
    taken: list[Path] = []

    def flush(paths: list[Path], folder: Path, fds: list[int] | None = None) -> None:
        real_flush(paths, folder, fds)
        if not taken:  # a name planned for a file of the next pass, taken by somebody else meanwhile
            last = setup.dest / f"IMG_{len(setup.ids) - 1:06d}.jpg"
            last.write_bytes(intruder)
            taken.append(last)

    monkeypatch.setattr(archive, "flush_files", flush)
    report = setup.engine().sync()
    assert taken and taken[0].read_bytes() == intruder  # never overwritten
    album = report.albums[0]
    assert album.failed == 1 and any("another file appeared" in e for e in album.errors), album
    records = setup.store.synced_assets(setup.album.id)
    assert len(records) == len(setup.ids) - 1 and taken[0].name not in {r.local_path for r in records.values()}
    assert not open_files_in(setup.dest)
    assert no_partials(setup.dest)


# -- fetching while the album is still listed ---------------------------------------------------------


def spy_prefetch(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the archives fetched before names were planned (``name_later``)."""
    asked: list[int] = []
    real = archive.fetch_batch

    def fetch_batch(*args: object, **kwargs: object) -> archive.BatchOutcome:
        if kwargs.get("name_later"):
            asked.append(len(args[4]))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "fetch_batch", fetch_batch)
    return asked


def when_listed(monkeypatch: pytest.MonkeyPatch, then: Callable[[], None]) -> Callable[[], None]:
    """Once the album is listed and the early archive 0.3 s under way, ``then()`` (which raises, as a
    failing listing would, or cancels); returns what puts the ordinary planning back."""
    from tray_sync.sync.engine import SyncEngine

    real = SyncEngine._with_motion_parts

    def patched(self: SyncEngine, *args: object, **kwargs: object) -> object:
        time.sleep(0.3)
        then()
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SyncEngine, "_with_motion_parts", patched)
    return lambda: monkeypatch.setattr(SyncEngine, "_with_motion_parts", real)


def broken_listing() -> None:
    from tray_sync.sync.errors import ServerError

    raise ServerError("The server broke off the listing.")


@unnamed_files
def test_a_long_listing_starts_downloading_before_names_are_planned(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(demo_server, tmp_path, count=60, size=2500)
    asked = spy_prefetch(monkeypatch)
    published: list[int] = []
    real_publish = archive.publish_prefetched

    def publish(*args: object) -> archive.BatchOutcome:
        outcome = real_publish(*args)  # type: ignore[arg-type]
        published.append(outcome.downloaded)
        return outcome

    monkeypatch.setattr(archive, "publish_prefetched", publish)
    report = setup.engine(archive_batch_files=20).sync()
    assert report.ok, report
    # The first 20 new files at least (more if that archive ended while the listing went on),
    # named once planned
    assert asked[0] == 20 and all(n == 20 for n in asked) and sum(published) == sum(asked), (asked, published)
    assert report.albums[0].downloaded == 60
    setup.assert_complete()
    assert setup.requests("/original") == 0
    assert not open_files_in(setup.dest)


@unnamed_files
def test_what_is_already_in_the_folder_is_not_fetched_early(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuilt database: the files are there already. Nothing is downloaded for them, early or
    late; a user's different file at a planned name is left alone and the asset gets another name."""
    setup = Setup(demo_server, tmp_path, count=40, size=2500)
    assert setup.engine().sync().ok
    setup.store.forget_assets(setup.album.id, list(setup.ids))
    setup.store.update_album_sync(setup.album.id, fingerprint=None)  # listed again, as after a rebuild
    records_gone = sorted(p.name for p in setup.dest.iterdir())
    users_file = setup.dest / records_gone[0]
    users_file.write_bytes(b"the user's own edit")
    asked = spy_prefetch(monkeypatch)
    demo_server.clear_requests()
    report = setup.engine(archive_batch_files=20).sync()
    assert report.ok, report
    assert asked == []  # every name was taken: nothing to fetch before planning
    assert report.albums[0].downloaded == 1  # only the asset whose file the user changed
    assert users_file.read_bytes() == b"the user's own edit"
    assert len(setup.store.synced_assets(setup.album.id)) == 40
    assert not open_files_in(setup.dest)


@unnamed_files
def test_a_failure_after_the_early_fetch_names_nothing(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(demo_server, tmp_path, count=60, size=2500)
    asked = spy_prefetch(monkeypatch)
    restore = when_listed(monkeypatch, broken_listing)
    report = setup.engine(archive_batch_files=20).sync()
    assert not report.ok and asked == [20]
    assert list(setup.dest.iterdir()) == []  # fetched, verified, but never named: nothing to see
    assert not open_files_in(setup.dest)
    assert setup.store.synced_assets(setup.album.id) == {}
    restore()
    assert setup.engine(archive_batch_files=20).sync().ok
    setup.assert_complete()


@unnamed_files
def test_cancel_while_fetching_early_leaves_nothing(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(demo_server, tmp_path, count=60, size=20_000)
    setup.server.faults.add(Fault(path=ARCHIVE, stall_after_bytes=300_000, stall_seconds=60))
    asked = spy_prefetch(monkeypatch)
    token = CancelToken()
    restore = when_listed(monkeypatch, lambda: token.cancel("quit"))  # some entries delivered, then a stall
    started = time.monotonic()
    report = setup.engine(archive_batch_files=20).sync(cancel=token)
    assert time.monotonic() - started < 10, "the stalled early archive held the cancel up"
    assert asked == [20] and report.albums[0].state is AlbumState.CANCELLED
    assert list(setup.dest.iterdir()) == []
    assert not open_files_in(setup.dest)
    setup.server.faults.clear()
    restore()
    assert setup.engine(archive_batch_files=20).sync().ok
    setup.assert_complete()


@unnamed_files
def test_an_early_archive_that_fails_is_downloaded_after_planning(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(demo_server, tmp_path, count=60, size=2500)
    asked: list[int] = []
    real_fetch = archive.fetch_batch

    def fetch_batch(*args: object, **kwargs: object) -> archive.BatchOutcome:
        if kwargs.get("name_later"):  # the early archive breaks off before its first entry
            asked.append(len(args[4]))  # type: ignore[arg-type]
            return archive.BatchOutcome(leftovers=list(args[4]), error="the archive broke off")  # type: ignore[call-overload]
        return real_fetch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "fetch_batch", fetch_batch)
    ordinary: list[int] = []
    real_execute = SyncEngine._execute

    def execute(self: SyncEngine, client: object, album: object, downloads: list[object], *args: object) -> object:
        ordinary.append(len(downloads))
        return real_execute(self, client, album, downloads, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(SyncEngine, "_execute", execute)
    report = setup.engine(archive_batch_files=20).sync()
    assert report.ok, report
    assert asked and report.albums[0].downloaded == 60
    assert sum(ordinary) == 60, (asked, ordinary)  # what the early archive did not deliver, the ordinary way
    setup.assert_complete()
    assert not open_files_in(setup.dest)


@pytest.mark.parametrize("rounding_ns", [None, 7 * 3600 * 1_000_000_000], ids=["exact", "coarse"])
def test_recorded_size_and_time_are_what_the_file_system_kept(
    setup: AlbumRig, monkeypatch: pytest.MonkeyPatch, rounding_ns: int | None
) -> None:
    """Records hold each file's size and time as the disk keeps them (a later sync compares them to
    tell the user's edits from ours), also where the file system rounds times (exFAT, ext4 with
    small inodes: simulated here by a coarse rounding), after which no fstat is skipped."""
    import os

    if rounding_ns is not None:
        real_utime = os.utime

        def rounding_utime(target: object, *args: object, ns: tuple[int, int] | None = None, **kwargs: object) -> None:
            if ns is not None:
                ns = (ns[0] // rounding_ns * rounding_ns, ns[1] // rounding_ns * rounding_ns)
            real_utime(target, *args, ns=ns, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "utime", rounding_utime)
    assert setup.engine().sync().ok
    records = setup.store.synced_assets(setup.album.id)
    assert len(records) == len(setup.ids)
    for record in records.values():
        st = (setup.dest / record.local_path).stat()
        assert (st.st_size, st.st_mtime_ns) == (record.file_size, record.mtime_ns), record.local_path
    if rounding_ns is not None:
        assert all(r.mtime_ns % rounding_ns == 0 for r in records.values())
        created = {i: int(setup.server._assets[i].file_created_at.timestamp()) * 1_000_000_000 for i in setup.ids}
        assert any(records[i].mtime_ns != created[i] for i in setup.ids)  # the disk did keep other times


@unnamed_files
def test_a_failed_listing_aborts_a_stalled_early_archive_at_once(
    demo_server: DemoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The album's sync ends with its error without waiting for the early archive's read timeout."""
    setup = Setup(demo_server, tmp_path, count=60, size=20_000)
    setup.server.faults.add(Fault(path=ARCHIVE, stall_after_bytes=100_000, stall_seconds=60))
    asked = spy_prefetch(monkeypatch)
    when_listed(monkeypatch, broken_listing)  # the early archive has stalled by then
    started = time.monotonic()
    report = setup.engine(archive_batch_files=20).sync()
    assert time.monotonic() - started < 5, "the stalled early archive held the album's end up"
    assert asked == [20] and not report.ok
    assert "broke off the listing" in " ".join(report.albums[0].errors)
    assert list(setup.dest.iterdir()) == [] and not open_files_in(setup.dest)
