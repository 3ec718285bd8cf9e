"""Small files in bulk: one ``POST /download/archive`` instead of one request per file.

Immich streams a ZIP of the assets asked for (see ``shared/immich/OBSERVED*.md``): entries
*stored*, in request order, with data descriptors (CRC and sizes only after the data), no
``Content-Length``, and compressed on the fly unless asked for ``Accept-Encoding: identity``.
Per file the server's cost is what limits small downloads, so one archive of a few hundred
files beats as many separate requests.

What this module trusts of the archive: nothing. Entry names are renamed on collisions
(``dup.jpg``, ``dup+1.jpg``) and, on 2.x, not even sanitised, so they are never used as
paths: each entry is matched to an asset by the SHA-1 of its bytes, the same check that
verifies it. An entry is never larger than the largest asset asked for, and there are never
more entries than assets (plus a little slack), so a hostile server cannot fill the disk or
memory. Anything missing, unmatched or broken is handed back to the caller, which downloads
it the ordinary way, one file at a time.

Writes follow the engine's rules with durability batched: each verified entry goes to a file
with no name yet (Linux ``O_TMPFILE``; elsewhere, and on file systems without it, the asset's
hidden partial file); after a batch of them, one flush (``syncfs`` on Linux, an fsync per file
elsewhere), then the names, never over an existing file (``linkat`` of the unnamed file, or
:func:`fsops.publish` of the partial), one flush of the names, and only then the database
records. A crash before the names leaves nothing behind (an unnamed file dies with its
descriptor); after them, the next sync adopts the files by checksum.

With ``name_later`` (see the engine's ``_Prefetcher``) an archive is fetched while the album
is still being listed: its files stay unnamed until planning has named them.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import os
import queue
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tray_sync.sync import fsops
from tray_sync.sync.client import _abort_response
from tray_sync.sync.errors import CancelledError, LocalDiskError, ServerError, TraySyncError
from tray_sync.sync.names import name_key
from tray_sync.sync.progress import CancelToken
from tray_sync.sync.store import Store, StoreError

if TYPE_CHECKING:
    from tray_sync.sync.client import ImmichClient
    from tray_sync.sync.engine import Wanted

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
FLUSH_FILES = 1000  # durability pass after this many staged files, at most
FLUSH_BYTES = 64 * 1024 * 1024  # ...or this many bytes
WRITER_THREADS = 3
WRITES_IN_FLIGHT = 32
ENTRY_SLACK = 16  # entries beyond the number asked for before the archive counts as hostile
NAME_TAKEN = "another file appeared at this name during the sync; it was left alone"

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_END = b"PK\x05\x06"
_END64 = b"PK\x06\x06"
_DESCRIPTOR = b"PK\x07\x08"
_NEXT_RECORDS = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # signature .. extra length: 30 bytes
_FLAG_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_STORED, _DEFLATED = 0, 8


class ArchiveError(ServerError):
    """The archive is not what was asked for; the caller falls back to single downloads."""


class _Meter(Protocol):
    def bytes(self, count: int, current: str) -> None: ...

    def file_done(self, size_unfetched: int = 0) -> None: ...


# -- reading the stream ----------------------------------------------------------------------


@dataclass(slots=True)
class ZipEntry:
    raw_name: bytes
    data: bytes
    utf8: bool

    @property
    def display_name(self) -> str:
        """For log lines only; never a path."""
        text = self.raw_name.decode("utf-8" if self.utf8 else "cp437", errors="replace")
        return repr(text[:80])


class StreamingZipReader:
    """Entries of a ZIP read front to back from a stream of chunks, one entry in memory.

    Handles what Immich sends (stored entries with data descriptors, whose length is only
    known when the descriptor is found) and, for robustness, entries with sizes in the local
    header and deflated entries. Stops at the central directory.
    """

    def __init__(self, chunks: Iterator[bytes], *, max_entry_size: int, max_entries: int,
                 on_bytes: Callable[[int], None] | None = None, size_hints: list[int] | None = None) -> None:
        self._chunks = chunks
        self._hints = size_hints or []  # the sizes asked for, in order: where each entry probably ends
        self._buf = bytearray()
        self._pos = 0
        self._max_entry = max_entry_size
        self._max_entries = max_entries
        self._on_bytes = on_bytes
        self.entries_read = 0

    # -- buffer --

    def _more(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buf += chunk
                if self._on_bytes is not None:
                    self._on_bytes(len(chunk))
                return True
        return False

    def _fill_to(self, length: int) -> None:
        """Read until the buffer holds ``length`` bytes or the stream ends (the caller checks which)."""
        while len(self._buf) < length:
            if not self._more():
                return

    def _need(self, count: int) -> None:
        while len(self._buf) - self._pos < count:
            if not self._more():
                raise ArchiveError("The archive ended in the middle of a file.")

    def _take(self, count: int) -> bytes:
        self._need(count)
        data = bytes(self._buf[self._pos: self._pos + count])
        self._pos += count
        return data

    # -- entries --

    def __iter__(self) -> Iterator[ZipEntry]:
        while True:
            if self._pos:  # positions stay fixed within an entry; drop what is behind it
                del self._buf[: self._pos]
                self._pos = 0
            while len(self._buf) - self._pos < 4:
                if not self._more():
                    if len(self._buf) == self._pos and self.entries_read == 0:
                        raise ArchiveError("The archive is empty.")
                    raise ArchiveError("The archive ended without its directory.")
            signature = bytes(self._buf[self._pos: self._pos + 4])
            if signature in (_CENTRAL, _END, _END64):
                return  # the directory repeats what the local headers said; not needed
            if signature != _LOCAL:
                raise ArchiveError("The archive is not a ZIP file (or is corrupt).")
            self.entries_read += 1
            if self.entries_read > self._max_entries:
                raise ArchiveError("The archive has more files than were asked for.")
            yield self._entry()

    def _entry(self) -> ZipEntry:
        (_, _, flags, method, _, _, crc, csize, usize, name_len, extra_len) = _LOCAL_HEADER.unpack(
            self._take(_LOCAL_HEADER.size)
        )
        raw_name = self._take(name_len)
        self._take(extra_len)
        if flags & 0x01:
            raise ArchiveError("The archive is encrypted.")
        deferred = bool(flags & _FLAG_DESCRIPTOR)
        if method == _STORED and not deferred:
            if csize != usize or csize > self._max_entry:
                raise ArchiveError("An archive entry is larger than any file asked for.")
            data = self._take(csize)
        elif method == _STORED:
            hint = self._hints[self.entries_read - 1] if self.entries_read <= len(self._hints) else None
            data = self._stored_until_descriptor(hint)
        elif method == _DEFLATED:
            data = self._inflate()
            if deferred:
                self._skip_descriptor(len(data))
        else:
            raise ArchiveError(f"The archive uses an unsupported compression method ({method}).")
        if not deferred and zlib.crc32(data) != crc:
            raise ArchiveError("An archive entry is corrupt (CRC mismatch).")
        return ZipEntry(raw_name, data, bool(flags & _FLAG_UTF8))

    def _stored_until_descriptor(self, hint: int | None = None) -> bytes:
        """Stored data of unknown length: up to the descriptor that agrees with it.

        The signature can occur inside a photo by chance, so a candidate counts only when the
        sizes it records equal the bytes before it and another ZIP record (or the end) follows.
        No CRC: every entry's SHA-1 is checked against the server's anyway, so a boundary found
        in the wrong place only makes an entry that matches nothing, which is downloaded again.
        """
        start = self._pos
        if hint is not None and 0 <= hint <= self._max_entry:
            # Entries come in the order asked, so the size asked for is where this one most likely
            # ends: check there first instead of scanning every byte for the signature.
            self._fill_to(start + hint + 20)
            end = self._descriptor_end(start, start + hint)
            if end is not None:
                return end
        scan = start
        while True:
            found = self._buf.find(_DESCRIPTOR, scan)
            if found < 0:
                scan = max(start, len(self._buf) - 3)
                if len(self._buf) - start > self._max_entry + 24:
                    raise ArchiveError("An archive entry is larger than any file asked for.")
                if not self._more():
                    raise ArchiveError("The archive ended in the middle of a file.")
                continue
            length = found - start
            if length > self._max_entry:
                raise ArchiveError("An archive entry is larger than any file asked for.")
            self._fill_to(found + 28)
            end = self._descriptor_end(start, found)
            if end is not None:
                return end
            scan = found + 1

    def _descriptor_end(self, start: int, found: int) -> bytes | None:
        """The entry's data if a descriptor that agrees with it sits at ``found``, else None."""
        if self._buf[found: found + 4] != _DESCRIPTOR:
            return None
        length = found - start
        tail = bytes(self._buf[found + 4: found + 28])
        for layout, size in (("<4xII", 16), ("<4xQQ", 24)):
            if len(tail) < size - 4:
                continue
            d_csize, d_usize = struct.unpack_from(layout, tail)
            following = tail[size - 4: size]
            if d_csize == length == d_usize and (following in _NEXT_RECORDS or not following):
                return self._finish_stored(start, found, size)
        return None

    def _finish_stored(self, start: int, found: int, descriptor: int) -> bytes:
        data = bytes(self._buf[start:found])
        self._pos = found + descriptor
        return data

    def _inflate(self) -> bytes:
        inflater = zlib.decompressobj(-15)
        out = bytearray()
        while True:
            if self._pos == len(self._buf) and not self._more():
                raise ArchiveError("The archive ended in the middle of a file.")
            piece = bytes(self._buf[self._pos:])
            out += inflater.decompress(piece, self._max_entry + 1 - len(out))
            if len(out) > self._max_entry:
                raise ArchiveError("An archive entry is larger than any file asked for.")
            used = len(piece) - len(inflater.unused_data) - len(inflater.unconsumed_tail)
            self._pos += used
            if inflater.eof:
                return bytes(out)
            if inflater.unconsumed_tail:
                continue

    def _skip_descriptor(self, usize: int) -> None:
        self._need(4)
        if bytes(self._buf[self._pos: self._pos + 4]) == _DESCRIPTOR:
            self._pos += 4
        self._need(12)
        _, _, size32 = struct.unpack_from("<III", self._buf, self._pos)
        self._pos += 12 if size32 == usize & 0xFFFFFFFF and usize < 0xFFFFFFFF else 20


# -- durability ----------------------------------------------------------------------------


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNCFS = _load_syncfs()


def flush_files(paths: list[Path], folder: Path, fds: list[int] | None = None) -> None:
    """Make the data of ``paths`` and of the open files ``fds`` durable: one ``syncfs`` on Linux,
    an fsync per file elsewhere."""
    if not paths and not fds:
        return
    if _syncfs(folder):
        return
    for fd in fds or ():
        os.fsync(fd)
    for path in paths:
        fd = os.open(path, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def flush_names(folders: set[Path], root: Path) -> None:
    """Make the new names in ``folders`` durable: one ``syncfs`` on Linux (which also writes the
    linked files' inodes, as a directory fsync may not on ext4 without a journal), a directory
    fsync per folder elsewhere."""
    if not folders or _syncfs(root):
        return
    for folder in folders:
        fsops.fsync_dir(folder)


def _syncfs(folder: Path) -> bool:
    if _SYNCFS is None:
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return _SYNCFS(fd) == 0
    finally:
        os.close(fd)


def descriptor_budget() -> int:
    """How many unnamed files one archive may hold open before it publishes them.

    Each stays open until its name is given; the soft limit on open files is raised towards
    the hard one once (1,024 is a common soft limit; two streams of a few hundred fit), and a
    quarter of what is left after a reserve is this archive's share.
    """
    global _BUDGET
    if _BUDGET is not None:
        return _BUDGET
    try:
        import resource
    except ImportError:  # Windows: no unnamed files there anyway
        _BUDGET = FLUSH_FILES
        return _BUDGET
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    usable = FLUSH_FILES if soft == resource.RLIM_INFINITY else (soft - 256) // 4
    _BUDGET = max(16, min(FLUSH_FILES, usable))
    return _BUDGET


_BUDGET: int | None = None


# -- one batch ---------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    downloaded: int = 0
    bytes: int = 0
    leftovers: list[Wanted] = field(default_factory=list)  # to download one by one
    failures: list[tuple[Wanted, str]] = field(default_factory=list)  # gave up on these
    error: str | None = None  # why the archive was abandoned, if it was
    staged: list[StagedEntry] = field(default_factory=list)  # name_later: delivered, still unnamed


@dataclass(slots=True)
class StagedEntry:
    """A verified archive entry on disk, waiting for its final name (in an unnamed file or a partial one)."""

    item: Wanted
    folder: str  # the final name's folder
    final: str
    size: int = 0
    mtime_ns: int = 0
    fd: int = -1  # an unnamed file holding the data until it is named; -1: written to ``partial``

    @property
    def partial(self) -> Path:
        return fsops.partial_path(Path(self.final), self.item.asset_id)


class _Writers:
    """A few threads writing staged entries while the reader parses the next ones.

    Creating a file costs the kernel more than parsing, hashing and everything else here, and
    it needs no interpreter lock. Lighter than an executor (no future per entry: at thousands
    of entries a second, their locks showed in the profile). The first failure is kept and
    raised by :meth:`wait`; entries after it are dropped unwritten.
    """

    def __init__(self, threads: int, in_flight: int, write: Callable[[StagedEntry, bytes], None]) -> None:
        self._write = write
        self._jobs: queue.SimpleQueue[tuple[StagedEntry, bytes] | None] = queue.SimpleQueue()
        self._room = threading.BoundedSemaphore(in_flight)  # bounds the entries held in memory
        self._idle = threading.Condition()
        self._outstanding = 0
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._run, name=f"archive-write_{index}", daemon=True)
                         for index in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, entry: StagedEntry, data: bytes) -> None:
        self._room.acquire()
        with self._idle:
            self._outstanding += 1
        self._jobs.put((entry, data))

    def wait(self) -> None:
        """Until every entry handed out is written; raises the first failure."""
        with self._idle:
            while self._outstanding:
                self._idle.wait()
            error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            entry, data = job
            try:
                if self._error is None:
                    self._write(entry, data)
            except BaseException as exc:  # handed to the reader thread by wait()
                with self._idle:
                    self._error = self._error or exc
            finally:
                del job, data
                self._room.release()
                with self._idle:
                    self._outstanding -= 1
                    if not self._outstanding:
                        self._idle.notify_all()


def fetch_batch(
    client: ImmichClient,
    store: Store,
    album_sync_id: int,
    root: Path,
    items: list[Wanted],
    *,
    cancel: CancelToken,
    meter: _Meter,
    stop: threading.Event | None = None,
    flush_files_every: int = FLUSH_FILES,
    name_later: bool = False,
) -> BatchOutcome:
    """Download ``items`` through one archive; whatever it does not deliver comes back as leftovers.

    Raises :class:`CancelledError` (after removing its unpublished partial files) and
    ``OSError`` for local disk trouble; every server or archive problem is a fallback instead.

    ``name_later``: the files' names are not planned yet (the album is still being listed). What
    arrives is kept in unnamed files only, returned in ``outcome.staged`` for
    :func:`publish_prefetched`; nothing is published or recorded. Where there are no unnamed
    files nothing is kept: everything comes back as a leftover.
    """
    outcome = BatchOutcome()
    pending: dict[str, list[Wanted]] = {}
    for item in items:
        pending.setdefault(item.checksum, []).append(item)
    staged: list[StagedEntry] = []
    staged_bytes = 0

    def write(entry: StagedEntry, data: bytes) -> None:
        # A replacement goes through the named partial: os.replace needs a name to move.
        fd = fsops.open_unnamed(entry.folder) if entry.item.replace is None else None
        if fd is None and name_later:
            return  # no name to write a partial file under: left for the planned download
        if fd is None:
            entry.size, entry.mtime_ns = _write_partial(entry.partial, data, entry.item.mtime_ns)
            return
        try:
            entry.size, entry.mtime_ns = _fill(fd, data, entry.item.mtime_ns, exact_times.get(entry.folder, False))
        except BaseException:
            os.close(fd)
            raise
        entry.fd = fd
        if entry.folder not in exact_times and entry.item.mtime_ns is not None:
            exact_times[entry.folder] = _keeps_exact_times(fd, entry.item.mtime_ns)

    exact_times: dict[str, bool] = {}  # folder -> its file system keeps times to the nanosecond

    writers = _Writers(WRITER_THREADS, WRITES_IN_FLIGHT, write)
    written = writers.wait
    largest = max((item.size or 0) for item in items)
    publish_every = max(1, min(flush_files_every, descriptor_budget() // 2))  # one batch staging, one publishing
    root_name = os.fspath(root)
    label = f"{len(items)} files as one archive"

    # A batch is flushed, named and recorded by another thread while this one stages the next
    # (a flush waits for the disk: a tenth of a second per thousand small files, measured).
    publishing = _Publishing(lambda batch: _publish(store, album_sync_id, root, batch, outcome, meter))

    def publish_staged(*, wait: bool = False) -> None:
        nonlocal staged_bytes
        written()
        if staged:
            batch = staged[:]
            staged.clear()  # handed over: published (or refused) there, never discarded here
            staged_bytes = 0
            publishing.start(batch)
        if wait:
            publishing.wait()

    response = None
    release: Callable[[], None] = lambda: None  # noqa: E731
    try:
        try:
            response = client.download_archive([item.asset_id for item in items])
            release = cancel.add_callback(lambda: _abort_response(response))
            encoding = response.headers.get("Content-Encoding", "identity").lower()
            chunks = response.raw.stream(READ_SIZE, decode_content=encoding not in ("", "identity"))
            reader = StreamingZipReader(
                _guarded(chunks, cancel), max_entry_size=largest, max_entries=len(items) + ENTRY_SLACK,
                on_bytes=lambda count: meter.bytes(count, label),
                size_hints=[item.size if item.size is not None else -1 for item in items],
            )
            for entry in reader:
                if cancel.cancelled:
                    raise CancelledError("Cancelled.")
                if stop is not None and stop.is_set():
                    break
                digest = base64.b64encode(hashlib.sha1(entry.data).digest()).decode("ascii")
                candidates = pending.get(digest)
                if not candidates:
                    log.info("Archive entry %s matches no file asked for; ignored", entry.display_name)
                    continue
                item = candidates.pop()
                if not candidates:
                    del pending[digest]
                if item.size is not None and len(entry.data) != item.size:
                    pending.setdefault(digest, []).append(item)  # same hash, other size: not it
                    continue
                try:
                    # A plain name needs no second check: the partial is opened with O_NOFOLLOW and
                    # link() never follows the final name. Sub-folders may have changed since planning.
                    if name_later:
                        staged.append(StagedEntry(item, root_name, ""))
                        writers.submit(staged[-1], entry.data)
                        outcome.bytes += len(entry.data)
                        continue
                    if "/" in item.relpath:
                        final = fsops.inside(root, item.relpath)
                        final.parent.mkdir(parents=True, exist_ok=True)
                        staged.append(StagedEntry(item, str(final.parent), str(final)))
                    else:
                        staged.append(StagedEntry(item, root_name, os.path.join(root_name, item.relpath)))
                    writers.submit(staged[-1], entry.data)
                    staged_bytes += len(entry.data)
                    outcome.bytes += len(entry.data)
                    if len(staged) >= publish_every or staged_bytes >= FLUSH_BYTES:
                        publish_staged()
                except (OSError, LocalDiskError) as exc:
                    raise _DiskFailure(exc) from exc
        except (CancelledError, _DiskFailure, StoreError):
            raise  # a database that cannot be written is not the archive's fault: no fallback
        except TraySyncError as exc:
            if cancel.cancelled:
                raise CancelledError("Cancelled.") from None
            outcome.error = exc.message
            log.info("Archive download of %d files failed (%s); downloading them one by one",
                     len(items), exc.message)
        except Exception as exc:  # urllib3 raises several types for a broken body
            if cancel.cancelled:
                raise CancelledError("Cancelled.") from None
            outcome.error = f"the archive broke off ({exc.__class__.__name__})"
            log.info("Archive download of %d files broke off (%s); downloading them one by one",
                     len(items), exc)
        finally:
            release()
            if response is not None:
                response.close()
        if name_later:
            written()
            for entry in staged:
                if entry.fd >= 0:
                    outcome.staged.append(entry)
                else:
                    outcome.bytes -= entry.item.size or 0
                    pending.setdefault(entry.item.checksum, []).append(entry.item)
            staged.clear()
        else:
            publish_staged(wait=True)
    except _DiskFailure as failure:
        _settle(writers)  # no write may create a partial after it was discarded
        _discard(staged)
        publishing.abandon()
        raise failure.error from None
    except BaseException:
        _settle(writers)
        _discard(staged)
        publishing.abandon()
        raise
    finally:
        writers.close()
    for leftover in pending.values():
        outcome.leftovers.extend(leftover)
    return outcome


class _Publishing:
    """At most one batch being published, by a thread of its own; its failure is raised by the
    next :meth:`start` or :meth:`wait`, in the reader's thread."""

    def __init__(self, publish: Callable[[list[StagedEntry]], None]) -> None:
        self._publish = publish
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, batch: list[StagedEntry]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(batch,), name="archive-publish", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def abandon(self) -> None:
        """The archive is being given up: let a publish under way finish (its files are durable and
        named, or left whole), and forget its failure, which the caller's own error supersedes."""
        with contextlib.suppress(BaseException):
            self.wait()

    def _run(self, batch: list[StagedEntry]) -> None:
        try:
            self._publish(batch)
        except BaseException as exc:  # handed to the reader thread
            self._error = exc


def _publish(store: Store, album_sync_id: int, root: Path, staged: list[StagedEntry], outcome: BatchOutcome,
             meter: _Meter) -> None:
    """Durability for a batch: one flush, the names (never over another file), the names' flush,
    then the database records in one transaction. Every unnamed file's descriptor is closed at
    the end, whatever happens (one left unnamed by a failure is freed with it)."""
    try:
        _publish_batch(store, album_sync_id, root, staged, outcome, meter)
    finally:
        discard_prefetched(staged)


def _publish_batch(store: Store, album_sync_id: int, root: Path, staged: list[StagedEntry], outcome: BatchOutcome,
                   meter: _Meter) -> None:
    if not staged:
        return
    flush_files([s.partial for s in staged if s.fd < 0], root, [s.fd for s in staged if s.fd >= 0])
    fsops.crash_point("before_rename")  # kill -9 tests: flushed, not one name given yet
    folders: set[str] = set()
    done: list[StagedEntry] = []
    for entry in staged:
        try:
            _name(entry)
        except FileExistsError:
            _unlink_quietly(entry.partial)
            outcome.failures.append((entry.item, NAME_TAKEN))
            meter.file_done()
            continue
        folders.add(entry.folder)
        done.append(entry)
    flush_names({Path(folder) for folder in folders}, root)
    fsops.crash_point("after_rename")
    record_published(store, album_sync_id, ((e.item, e.size, e.mtime_ns) for e in done))
    for _ in done:
        outcome.downloaded += 1
        meter.file_done()


def record_published(store: Store, album_sync_id: int, published: Iterable[tuple[Wanted, int, int]]) -> None:
    """One transaction recording files just named: (what was planned, size and mtime_ns on disk)."""
    store.record_assets(album_sync_id, (
        {"asset_id": item.asset_id, "filename": item.name, "file_size": size, "checksum": item.checksum,
         "local_path": item.relpath, "name_key": name_key(item.relpath), "mtime_ns": mtime_ns,
         "remote_updated_at": item.updated_at, "is_external": item.is_external}
        for item, size, mtime_ns in published
    ))


def publish_prefetched(
    store: Store, album_sync_id: int, root: Path, entries: list[tuple[StagedEntry, Wanted]], meter: _Meter
) -> BatchOutcome:
    """Name and record files fetched with ``name_later`` now that planning gave them names.

    Takes ownership of every entry's descriptor (closed whatever happens). ``OSError`` for
    disk trouble, like :func:`fetch_batch`.
    """
    outcome = BatchOutcome()
    staged: list[StagedEntry] = []
    try:
        for entry, planned in entries:
            entry.item = planned
            if "/" in planned.relpath:
                final = fsops.inside(root, planned.relpath)
                final.parent.mkdir(parents=True, exist_ok=True)
                entry.folder, entry.final = str(final.parent), str(final)
            else:
                entry.final = os.path.join(entry.folder, planned.relpath)
            staged.append(entry)
            meter.bytes(entry.size, planned.relpath)
            outcome.bytes += entry.size
        _publish(store, album_sync_id, root, staged, outcome, meter)
    finally:
        discard_prefetched([entry for entry, _ in entries])
    return outcome


def discard_prefetched(entries: list[StagedEntry]) -> None:
    """Close what was fetched but not named (it was planned otherwise, or the sync stopped)."""
    for entry in entries:
        if entry.fd >= 0:
            os.close(entry.fd)
            entry.fd = -1


def _guarded(chunks: Iterator[bytes], cancel: CancelToken) -> Iterator[bytes]:
    for chunk in chunks:
        if cancel.cancelled:
            raise CancelledError("Cancelled.")
        yield chunk


class _DiskFailure(Exception):
    """A local write failed: the caller's disk error, never a reason to fall back."""

    def __init__(self, error: OSError | TraySyncError) -> None:
        super().__init__(str(error))
        self.error = error


def _settle(writers: _Writers) -> None:
    with contextlib.suppress(Exception):
        writers.wait()


def _name(entry: StagedEntry) -> None:
    """Give a staged file its final name without overwriting (``FileExistsError`` if taken)."""
    if entry.fd < 0:
        fsops.publish(entry.partial, Path(entry.final), replace_expected=entry.item.replace, sync_dir=False)
        return
    try:
        try:
            fsops.link_unnamed(entry.fd, entry.final)
        except FileExistsError:
            raise
        except OSError as exc:
            # /proc refused the link (a sandbox, say): through the named partial instead.
            log.info("Naming an unnamed file failed (%s); using partial files", exc)
            fsops.refuse_unnamed(entry.folder)
            fsops.name_unnamed_as(entry.fd, entry.partial)
            fsops.publish(entry.partial, Path(entry.final), sync_dir=False)
    finally:
        os.close(entry.fd)
        entry.fd = -1


def _discard(staged: list[StagedEntry]) -> None:
    for entry in staged:
        if entry.fd >= 0:
            os.close(entry.fd)  # unnamed: closing frees it
            entry.fd = -1
        elif entry.final:  # (a file fetched to be named later has no partial file)
            _unlink_quietly(entry.partial)
    staged.clear()


def _write_partial(partial: Path, data: bytes, mtime_ns: int | None) -> tuple[int, int]:
    """Write ``data`` to ``partial`` (no fsync: that is batched); returns its (size, mtime_ns)."""
    # O_NOFOLLOW: a link planted at the partial's name must not redirect the write elsewhere.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(partial, flags, 0o666)
    if _UTIME_FD:
        try:
            return _fill(fd, data, mtime_ns)
        finally:
            os.close(fd)
    try:  # Windows: no times set through a descriptor
        _write_all(fd, data)
    finally:
        os.close(fd)
    if mtime_ns is not None:
        os.utime(partial, ns=(mtime_ns, mtime_ns))
    st = os.stat(partial)
    return st.st_size, st.st_mtime_ns


def _fill(fd: int, data: bytes, mtime_ns: int | None, exact: bool = False) -> tuple[int, int]:
    """Write ``data`` to the open file ``fd`` and set its time; returns its (size, mtime_ns).

    ``exact``: the file system is known to keep both as written, so they need no fstat.
    """
    _write_all(fd, data)
    if mtime_ns is not None:
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        if exact:
            return len(data), mtime_ns
    # What the file system made of it (FAT keeps 2 s): the final name, after the rename,
    # has the same size and time, so the record needs no stat after publishing.
    st = os.fstat(fd)
    return st.st_size, st.st_mtime_ns


def _keeps_exact_times(fd: int, mtime_ns: int) -> bool:
    """Whether the file system of the open file keeps a time to the nanosecond, as set.

    Asked once per folder with a time whose every digit counts (photo times are whole
    milliseconds at best, which a file system keeping seconds, 10 ms or 100 ns would also
    keep); if so, the times of the next files need no fstat. The file's own time is set back.
    """
    probe = mtime_ns - mtime_ns % 1_000_000_000 + 123_456_789
    try:
        os.utime(fd, ns=(probe, probe))
        kept = os.fstat(fd).st_mtime_ns == probe
    finally:
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    return kept


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_UTIME_FD = os.utime in os.supports_fd


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
