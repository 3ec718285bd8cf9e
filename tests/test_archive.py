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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_helpers import no_partials, sha1_b64
from tray_sync.demo.server import DemoServer, Fault, zip_stream
from tray_sync.sync.archive import ArchiveError, StreamingZipReader
from tray_sync.sync.client import RetryPolicy
from tray_sync.sync.engine import EngineOptions, SyncEngine
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


class Setup:
    def __init__(self, server: DemoServer, tmp_path: Path, *, count: int = 24, size: int = 3000,
                 names: list[str] | None = None) -> None:
        self.server = server
        self.user = server.add_user("admin", "admin@example.com")
        self.key = server.add_key(self.user, ["album.read", "asset.read", "asset.download"])
        self.album_id = server.add_album(self.user, "Small")
        if names is None:
            self.ids = server.add_assets_bulk(self.user, count, size, self.album_id, prefix="IMG_", seed=7)
        else:
            rng = random.Random(11)
            self.ids = [server.add_asset(self.user, name, rng.randbytes(size - 50) + bytes([i]) * 50,
                                         albums=[self.album_id]) for i, name in enumerate(names)]
        self.dest = tmp_path / "dest" / "Small"
        self.dest.mkdir(parents=True)
        self.store = Store(tmp_path / "state.sqlite3")
        connection = self.store.save_connection(name="home", server_url=server.url, api_url=server.api_url,
                                                account="home", server_version="")
        self.album = self.store.add_album_sync(connection.id, self.album_id, "Small", str(self.dest))

    def engine(self, **options: object) -> SyncEngine:
        settings: dict[str, object] = {"workers": 1, "archive_min_files": 4,
                                        "retry": RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)}
        settings.update(options)
        return SyncEngine(self.store, lambda _connection: self.key, options=EngineOptions(**settings))  # type: ignore[arg-type]

    def bytes_of(self, asset_id: str) -> bytes:
        return self.server.asset_bytes(asset_id)

    def assert_complete(self) -> None:
        """Every asset on disk under the name the database gives it, with exactly its bytes."""
        records = self.store.synced_assets(self.album.id)
        assert set(records) == set(self.ids)
        for asset_id, record in records.items():
            expected = self.bytes_of(asset_id)
            path = self.dest / record.local_path
            assert path.read_bytes() == expected, record.local_path
            assert record.checksum == sha1_b64(expected)
        assert no_partials(self.dest)
        on_disk = sorted(p.relative_to(self.dest).as_posix() for p in self.dest.rglob("*") if p.is_file())
        assert on_disk == sorted(r.local_path for r in records.values())

    def requests(self, suffix: str) -> int:
        return sum(1 for r in self.server.requests if r.path.endswith(suffix))


@pytest.fixture
def setup(demo_server: DemoServer, tmp_path: Path) -> Setup:
    return Setup(demo_server, tmp_path)


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


def test_small_files_arrive_through_archives(setup: Setup) -> None:
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


def test_threshold_zero_downloads_one_by_one(setup: Setup) -> None:
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


def test_entries_out_of_order_under_wrong_names_and_junk(setup: Setup) -> None:
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
def test_broken_archive_falls_back_to_single_downloads(setup: Setup, fault: Fault) -> None:
    setup.server.faults.add(fault)
    report = setup.engine().sync()
    assert report.ok, report
    setup.assert_complete()
    assert 0 < setup.requests("/original") <= len(setup.ids)


def test_entries_before_a_break_are_kept(setup: Setup) -> None:
    whole = immich_zip([(f"{i}.jpg", setup.bytes_of(asset_id)) for i, asset_id in enumerate(setup.ids)])
    setup.server.faults.add(Fault(path=ARCHIVE, raw_body=whole[: len(whole) // 2]))
    assert setup.engine().sync().ok
    setup.assert_complete()
    single = [r.path.split("/")[-2] for r in setup.server.requests if r.path.endswith("/original")]
    assert 0 < len(single) < len(setup.ids)
    kept = len(setup.ids) - len(single)
    assert kept >= len(setup.ids) // 2 - 1
    assert set(single) == set(setup.ids[kept:])  # what came before the break came from the archive


def test_cancel_mid_archive_leaves_nothing_half_done(demo_server: DemoServer, tmp_path: Path) -> None:
    # Big enough that the server's first chunk (256 KiB) holds several whole entries, which the
    # engine writes to partial files before the stream stalls.
    setup = Setup(demo_server, tmp_path, count=40, size=20_000)
    setup.server.faults.add(Fault(path=ARCHIVE, stall_after_bytes=400_000, stall_seconds=60))
    token = CancelToken()
    engine = setup.engine()
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(engine.sync(cancel=token)))
    worker.start()
    deadline = time.monotonic() + 30
    while not any(p.name.startswith(".~tray-sync-") for p in setup.dest.iterdir()):
        assert time.monotonic() < deadline, "the archive never started streaming"
        time.sleep(0.01)
    token.cancel("paused")
    worker.join(20)
    assert not worker.is_alive(), "cancel did not interrupt the stalled archive"
    report = outcome[0]
    assert report.albums[0].state is AlbumState.CANCELLED  # type: ignore[attr-defined]
    assert no_partials(setup.dest)
    records = setup.store.synced_assets(setup.album.id)
    on_disk = {p.name for p in setup.dest.iterdir()}
    assert on_disk == {r.local_path for r in records.values()}  # nothing unrecorded, nothing half-written
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
