"""Batched durability for files downloaded one request each.

A download that has been verified waits in its hidden partial file (written, not yet fsynced)
until the :class:`BatchPublisher` publishes a batch of them, the way the archive path does:
one flush pass for the whole batch (``syncfs`` on Linux), each rename without overwrite, one
directory fsync per folder, then one database transaction. A per-file fsync of the file and of
its folder cost far more than the download of a small photo.

Safety is unchanged: a final name only ever gets a file whose bytes are durable (the flush
comes before any rename), and the database records a file only after its name is durable. A
kill before the flush leaves complete partial files that the next sync re-hashes and reuses;
a kill between the renames and the record is healed by adoption (a file at the planned name
with the asset's exact bytes is recorded without downloading it again).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tray_sync.sync import archive, fsops
from tray_sync.sync.store import Store, StoreError

if TYPE_CHECKING:
    from tray_sync.sync.engine import Wanted

log = logging.getLogger(__name__)

# A batch is published once it holds this many files or bytes, or its oldest file has waited
# this long: a flush pass costs about as much as a few small fsyncs, and files should not wait
# long for their names (progress, and what a Quit leaves to re-hash).
BATCH_FILES = 64
BATCH_BYTES = 64 * 1024 * 1024
BATCH_WAIT_S = 1.0

NAME_TAKEN = archive.NAME_TAKEN


@dataclass(slots=True)
class StagedFile:
    """A verified download in its partial file, waiting for its final name."""

    item: Wanted
    partial: Path
    final: Path
    size: int  # from an fstat of the partial: the final name is the same inode
    mtime_ns: int
    fetched: int  # bytes this run downloaded for it (the rest was resumed)


class BatchPublisher:
    """Publishes staged files in batches; shared by the download workers of one album's run.

    The worker whose file makes a batch due publishes it; the others keep staging meanwhile
    (the list is swapped out under a short lock). Outcomes go to the callbacks, each called
    once per file: ``on_published`` after the file is named and recorded, ``on_refused`` when
    the name was taken meanwhile (the partial is removed), ``on_disk_error`` once when the
    flush or a rename fails (nothing more is published after it) and ``on_store_error`` when
    the record fails (files published but unrecorded: the next sync adopts them).
    """

    def __init__(
        self,
        store: Store,
        album_sync_id: int,
        root: Path,
        *,
        on_published: Callable[[StagedFile], None],
        on_refused: Callable[[StagedFile, str], None],
        on_disk_error: Callable[[OSError], None],
        on_store_error: Callable[[list[StagedFile], StoreError], None],
        should_hold: Callable[[], bool] = lambda: False,
        max_files: int = BATCH_FILES,
        max_bytes: int = BATCH_BYTES,
        max_wait_s: float = BATCH_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._album_sync_id = album_sync_id
        self._root = root
        self._on_published = on_published
        self._on_refused = on_refused
        self._on_disk_error = on_disk_error
        self._on_store_error = on_store_error
        self._should_hold = should_hold  # a cancel: leave the partial files for the next sync
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._lock = threading.Lock()  # guards the staged list; held only briefly
        self._publishing = threading.Lock()  # one batch at a time
        self._staged: list[StagedFile] = []
        self._staged_bytes = 0
        self._oldest = 0.0
        self._halted = False  # a disk or database failure: nothing more is published
        self.batches = 0

    @property
    def halted(self) -> bool:
        return self._halted

    def stage(self, entry: StagedFile) -> None:
        """Hand over a verified partial file; publishes a batch if this made one due."""
        with self._lock:
            if not self._staged:
                self._oldest = self._clock()
            self._staged.append(entry)
            self._staged_bytes += entry.size
        self.publish_due()

    def publish_due(self) -> None:
        """Publish what is due, unless another thread is publishing (it looks again after)."""
        self._publish_while(force=False, block=False)

    def finish(self) -> None:
        """Publish everything still staged (the end of a run); nothing on a cancel or after a failure."""
        self._publish_while(force=True, block=True)

    def pending(self) -> int:
        with self._lock:
            return len(self._staged)

    def _due(self) -> bool:
        return (len(self._staged) >= self._max_files or self._staged_bytes >= self._max_bytes
                or self._clock() - self._oldest >= self._max_wait_s)

    def _publish_while(self, *, force: bool, block: bool) -> None:
        if not self._publishing.acquire(blocking=block):
            return
        try:
            while True:
                with self._lock:
                    if not self._staged or self._halted or self._should_hold():
                        return
                    if not force and not self._due():
                        return
                    batch, self._staged, self._staged_bytes = self._staged, [], 0
                self._publish(batch)
        finally:
            self._publishing.release()

    def _publish(self, batch: list[StagedFile]) -> None:
        self.batches += 1
        try:
            archive.flush_files([entry.partial for entry in batch], self._root)
        except OSError as exc:
            self._halt()
            self._on_disk_error(exc)
            return
        fsops.crash_point("before_rename")
        published: list[StagedFile] = []
        folders: set[Path] = set()
        failure: OSError | None = None
        for entry in batch:
            try:
                fsops.publish(entry.partial, entry.final, replace_expected=entry.item.replace, sync_dir=False)
            except FileExistsError:
                with contextlib.suppress(FileNotFoundError):
                    entry.partial.unlink()
                self._on_refused(entry, NAME_TAKEN)
                continue
            except OSError as exc:
                failure = exc  # the rest stay complete partial files for the next sync
                self._halt()
                break
            folders.add(entry.final.parent)
            published.append(entry)
        for folder in folders:
            fsops.fsync_dir(folder)
        for _ in published:  # a pass per file, so the crash tests' "N-th pass" falls mid-sync
            fsops.crash_point("after_rename")
        try:
            archive.record_published(self._store, self._album_sync_id,
                                     ((e.item, e.size, e.mtime_ns) for e in published))
        except StoreError as exc:
            self._halt()
            self._on_store_error(published, exc)
        else:
            for entry in published:
                self._on_published(entry)
        if failure is not None:
            self._on_disk_error(failure)

    def _halt(self) -> None:
        with self._lock:
            self._halted = True
