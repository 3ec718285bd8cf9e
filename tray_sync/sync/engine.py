"""The sync engine: plan (server listing vs database vs disk), then execute.

Safety rules, in the order they are enforced:

* Only files the app wrote are ever replaced or moved, and only while they are byte-for-byte
  what the app wrote (size and mtime as recorded). A file the user changed is left alone and
  reported as "changed locally"; a file the user deleted is downloaded again.
* Every download goes to a hidden partial file beside its final name, is verified against
  the server's size and SHA-1, closed, made durable (in batches, see :mod:`publisher`) and
  only then linked to its final name without overwriting (see :mod:`fsops`). The database
  records it only after that, so it never claims a file that is not there; a crash in
  between is healed by adoption (a file at the planned name with the asset's exact bytes is
  recorded without downloading it again).
* Removals are off by default; when mirrored they go to a trash folder inside the album's
  folder, never after a pass with errors or an incomplete listing, and never more than the
  mass-removal threshold without the user's confirmation.
* An album whose server count says it has assets but whose listing is empty is an error,
  never a reason to remove anything (how other tools broke on Immich 3.0).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tray_sync.sync import archive, fsops
from tray_sync.sync.client import ImmichClient, RemoteAlbum, RemoteAsset, RetryPolicy
from tray_sync.sync.errors import (
    CancelledError,
    ErrorKind,
    IntegrityError,
    LocalDiskError,
    NotFoundError,
    ServerError,
    TraySyncError,
)
from tray_sync.sync.names import (
    TRASH_DIR,
    name_key,
    safe_component,
    split_extension,
    template_folder,
    with_suffix,
)
from tray_sync.sync.progress import (
    AlbumResult,
    AlbumState,
    CancelToken,
    Phase,
    Progress,
    ProgressCallback,
    SyncReport,
    command_line_confirm_route,
    held_removals_note,
)
from tray_sync.sync.publisher import BATCH_WAIT_S, BatchPublisher, StagedFile
from tray_sync.sync.store import AlbumSync, Connection, Store, StoreError, SyncedAsset, utc_now
from tray_sync.sync.timeparse import parse_timestamp, to_epoch_ns

log = logging.getLogger(__name__)

HASH_BLOCK = 1024 * 1024
PROGRESS_INTERVAL_S = 0.1
_UTIME_FD = os.utime in os.supports_fd
# Planning looks at a pause every this many assets: a stat each, so a few hundred take well
# under a second even on a slow network drive, and the check costs nothing next to the stat.
PLAN_CANCEL_EVERY = 256

KeyProvider = Callable[[Connection], str]
ClientFactory = Callable[[Connection, str, int, CancelToken], ImmichClient]


@dataclass(frozen=True)
class EngineOptions:
    workers: int = 4
    reserve_bytes: int = 500 * 1024 * 1024
    removal_threshold_percent: float = 10.0
    removal_threshold_files: int = 50
    full_relist_hours: float = 24.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Files up to this size go through POST /download/archive in batches (0: never), because
    # for small files the server's cost per request, not bandwidth, is the limit.
    archive_max_file_bytes: int = 1024 * 1024
    archive_min_files: int = 16  # fewer small files than this: one request each is as quick
    archive_batch_files: int = 1000
    archive_batch_bytes: int = 256 * 1024 * 1024
    # Archives streamed at once. Each is cheap for the server but costs this process CPU
    # (parse, SHA-1, one file each) under one interpreter lock: more than two only contend.
    archive_streams: int = 2

    @classmethod
    def from_settings(cls, settings: dict[str, object]) -> EngineOptions:
        def number(key: str, default: float) -> float:
            value = settings.get(key)
            return float(value) if isinstance(value, int | float) else default

        return cls(
            workers=max(1, min(16, int(number("parallel_downloads", 4)))),
            reserve_bytes=int(number("free_space_reserve_mb", 500) * 1024 * 1024),
            removal_threshold_percent=number("removal_threshold_percent", 10.0),
            removal_threshold_files=int(number("removal_threshold_files", 50)),
            full_relist_hours=number("full_relist_hours", 24.0),
        )


def default_client_factory(retry: RetryPolicy) -> ClientFactory:
    def make(connection: Connection, key: str, workers: int, cancel: CancelToken) -> ImmichClient:
        return ImmichClient(
            connection.api_url,
            key,
            workers=workers,
            verify=connection.ca_bundle or True,
            retry=retry,
            cancel=cancel,
        )

    return make


# -- planning records -------------------------------------------------------------------


@dataclass(slots=True)
class Wanted:
    """One file the album should have, with where it goes and what to do."""

    asset_id: str
    name: str  # the server's original file name (for messages and the database)
    relpath: str  # '/'-separated, relative to the album's folder
    checksum: str
    size: int | None
    mtime_ns: int | None
    updated_at: str | None
    is_external: bool
    replace: tuple[int, int] | None = None  # (size, mtime_ns) of our copy being replaced


@dataclass
class AlbumPlan:
    downloads: list[Wanted] = field(default_factory=list)
    skipped: int = 0
    changed_locally: list[str] = field(default_factory=list)
    adopted: int = 0
    wanted_ids: set[str] = field(default_factory=set)


class _ProgressMeter:
    """Thread-safe counters across a whole run, throttled into :class:`Progress` events."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.files_total = self.files_done = 0
        self.bytes_total = self.bytes_done = 0
        self.album = ""
        self.current = ""
        self.phase = Phase.CHECKING
        self._last_emit = 0.0
        self._window: list[tuple[float, int]] = []

    def set(self, *, phase: Phase | None = None, album: str | None = None) -> None:
        with self._lock:
            if phase is not None:
                self.phase = phase
            if album is not None:
                self.album = album
        self._emit(force=True)

    def plan(self, files: int, size: int) -> None:
        with self._lock:
            self.files_total += files
            self.bytes_total += size
        self._emit(force=True)

    def bytes(self, count: int, current: str) -> None:
        with self._lock:
            self.bytes_done += count
            self.current = current
        self._emit()

    def file_done(self, size_unfetched: int = 0) -> None:
        with self._lock:
            self.files_done += 1
            self.bytes_done += size_unfetched
        # Throttled like bytes: thousands of small files a second must not become thousands of
        # status updates for the tray (the last count is sent by the phase change after them).
        self._emit()

    def _rate(self, now: float) -> float:
        self._window.append((now, self.bytes_done))
        while len(self._window) > 2 and now - self._window[0][0] > 5.0:
            self._window.pop(0)
        first_t, first_b = self._window[0]
        return (self.bytes_done - first_b) / (now - first_t) if now > first_t else 0.0

    def _emit(self, force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_emit < PROGRESS_INTERVAL_S:
                return
            self._last_emit = now
            event = Progress(
                phase=self.phase,
                album_name=self.album,
                files_done=self.files_done,
                files_total=self.files_total,
                bytes_done=min(self.bytes_done, self.bytes_total) if self.bytes_total else self.bytes_done,
                bytes_total=self.bytes_total,
                current_file=self.current,
                rate_bytes_per_s=self._rate(now),
            )
        try:
            self._callback(event)
        except Exception:  # a broken progress display must never break a sync
            log.exception("progress callback failed")


# -- the engine -------------------------------------------------------------------------


class SyncEngine:
    def __init__(
        self,
        store: Store,
        key_provider: KeyProvider,
        *,
        options: EngineOptions | None = None,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.key_provider = key_provider
        self.options = options or EngineOptions.from_settings(store.settings())
        self.client_factory = client_factory or default_client_factory(self.options.retry)
        self.clock = clock
        self._run_lock = threading.Lock()

    # -- entry point --

    def sync(
        self,
        *,
        album_sync_ids: Iterable[int] | None = None,
        confirm_removals: Iterable[int] = (),
        cancel: CancelToken | None = None,
        progress: ProgressCallback | None = None,
    ) -> SyncReport:
        """One pass over the chosen albums (all when None). Never raises for server trouble."""
        cancel = cancel or CancelToken()
        if not self._run_lock.acquire(blocking=False):
            raise TraySyncError("A sync is already running in this process.")
        try:
            chosen = set(album_sync_ids) if album_sync_ids is not None else None
            confirm = set(confirm_removals)
            meter = _ProgressMeter(progress)
            results: list[AlbumResult] = []
            errors: list[str] = []
            notices: list[str] = []
            error_kind: str | None = None
            for connection in self.store.connections():
                albums = [a for a in self.store.album_syncs(connection.id) if chosen is None or a.id in chosen]
                if not albums and chosen is not None:
                    continue
                outcome = self._sync_connection(connection, albums, confirm, cancel, meter,
                                                include_new=chosen is None)
                results.extend(outcome.albums)
                errors.extend(outcome.errors)
                notices.extend(outcome.notices)
                error_kind = error_kind or outcome.error_kind
                if cancel.cancelled:
                    break
            meter.set(phase=Phase.DONE)
            return SyncReport(tuple(results), tuple(errors), error_kind, notices=tuple(notices))
        finally:
            self._run_lock.release()

    def _sync_connection(
        self,
        connection: Connection,
        albums: list[AlbumSync],
        confirm: set[int],
        cancel: CancelToken,
        meter: _ProgressMeter,
        include_new: bool = True,
    ) -> SyncReport:
        meter.set(phase=Phase.CHECKING, album="")
        client: ImmichClient | None = None
        try:
            key = self.key_provider(connection)
            client = self.client_factory(connection, key, self.options.workers, cancel)
            version = client.server_version()
            if str(version) != connection.server_version:
                self.store.update_connection(connection.id, server_version=str(version))
            remote = {a.id: a for a in client.albums()}
            notices = self._handle_new_albums(connection, remote)
            if include_new:  # a full pass: albums the new-album policy just added are synced now, not next time
                albums = self.store.album_syncs(connection.id)
        except TraySyncError as exc:
            if client is not None:
                client.close()
            if isinstance(exc, CancelledError):
                return SyncReport(tuple(self._cancelled(a) for a in albums))
            state = AlbumState.OFFLINE if exc.kind is ErrorKind.OFFLINE else AlbumState.ERROR
            message = f"{connection.name}: {exc.message}"
            log.warning("%s", message)
            results = []
            for album in albums:
                self.store.update_album_sync(
                    album.id, last_attempt_at=utc_now(), state=state.value,
                    last_error=exc.message, last_error_kind=exc.kind.value,
                )
                results.append(self._result(album, state=state, errors=(exc.message,), error_kind=exc.kind.value))
            return SyncReport(tuple(results), (message,), exc.kind.value)
        try:
            results = []
            for album in albums:
                if cancel.cancelled:
                    results.append(self._cancelled(album))
                    continue
                results.append(
                    self._sync_album(client, album, remote.get(album.album_id), album.id in confirm, cancel, meter)
                )
            return SyncReport(tuple(results), notices=tuple(notices))
        finally:
            client.close()

    def _handle_new_albums(self, connection: Connection, remote: dict[str, RemoteAlbum]) -> list[str]:
        """Apply the new-album policy; returns notices for new albums that could not be added yet."""
        seen = self.store.seen_album_ids(connection.id)
        fresh = [a for a in remote.values() if a.id not in seen]
        notices: list[str] = []
        if not fresh:
            return notices
        if not seen:
            self.store.mark_albums_seen(connection.id, [(a.id, a.name) for a in fresh])
            return notices  # first look at this server: a baseline, not "new" albums
        policy = connection.new_album_policy
        synced = {a.album_id for a in self.store.album_syncs(connection.id)}
        handled: list[RemoteAlbum] = []
        for album in fresh:
            if album.id in synced:
                handled.append(album)  # added by hand already: it is only marked as seen
                continue
            if policy == "ask":
                self.store.set_album_offered(connection.id, album.id, True)
            elif policy == "auto" and connection.new_album_root:
                try:
                    target = self._new_album_folder(Path(connection.new_album_root), album)
                except LocalDiskError as exc:
                    log.warning("%s", exc.message)
                    notices.append(exc.message)  # the user sees it, not only the log
                    continue  # not marked as seen: tried again at the next sync
                self.store.add_album_sync(connection.id, album.id, album.name, str(target))
                log.info("New album %r added automatically at %s", album.name, target)
            handled.append(album)
        self.store.mark_albums_seen(connection.id, [(a.id, a.name) for a in handled])
        return notices

    def _new_album_folder(self, root: Path, album: RemoteAlbum) -> Path:
        """A folder of its own under ``root`` for an album the policy adds: "Name", else "Name (2)", ...

        The root must exist: when it is on a drive that is not mounted, nothing is created on the
        mount point underneath, and the album is tried again at the next sync. Raises
        :class:`LocalDiskError` with the line for the user when the album cannot be added yet.
        """
        if not root.is_dir():
            raise LocalDiskError(
                f"New album {album.name!r} not added yet: the folder for new albums {root} is missing; "
                "plug the drive in or choose another folder in Settings."
            )
        base = safe_component(album.name)
        for number in range(1, 100):
            target = root / (base if number == 1 else safe_component(f"{base} ({number})"))
            if target.exists() and not target.is_dir():
                continue
            try:
                check_destination(self.store, target)  # another album's folder (same name): the next number
            except TraySyncError:
                continue
            try:
                target.mkdir(exist_ok=True)
            except OSError as exc:
                raise LocalDiskError(f"New album {album.name!r} not added yet: "
                                     f"{fsops.disk_error(exc, target).message}") from exc
            return target
        raise LocalDiskError(f"New album {album.name!r} not added yet: no free folder name for it in {root}; "
                             "choose another folder for new albums in Settings.")

    # -- one album --

    def _result(self, album: AlbumSync, **fields: object) -> AlbumResult:
        return AlbumResult(
            album_sync_id=album.id, album_id=album.album_id, album_name=album.album_name,
            path=album.local_path, **fields,  # type: ignore[arg-type]
        )

    def _cancelled(self, album: AlbumSync) -> AlbumResult:
        return self._result(album, state=AlbumState.CANCELLED, errors=("Sync was paused or stopped.",),
                            error_kind=ErrorKind.CANCELLED.value)

    def _sync_album(
        self,
        client: ImmichClient,
        album: AlbumSync,
        remote: RemoteAlbum | None,
        confirm_removals: bool,
        cancel: CancelToken,
        meter: _ProgressMeter,
    ) -> AlbumResult:
        meter.set(phase=Phase.LISTING, album=album.album_name)
        root = album.path
        now = utc_now()
        if remote is None:
            message = "Album no longer available on the server (deleted or unshared); local files kept."
            self.store.update_album_sync(album.id, state=AlbumState.UNAVAILABLE.value, last_error=message,
                                         last_error_kind=ErrorKind.NOT_FOUND.value, last_attempt_at=now)
            return self._result(album, state=AlbumState.UNAVAILABLE, errors=(message,),
                                error_kind=ErrorKind.NOT_FOUND.value)
        if remote.name != album.album_name:
            album = self.store.update_album_sync(album.id, album_name=remote.name)
        if not root.is_dir():
            message = (f"The folder {root} is missing (unmounted drive?). Reconnect it, or choose "
                       "another folder in the settings; nothing was downloaded.")
            self.store.update_album_sync(album.id, state=AlbumState.FOLDER_GONE.value, last_error=message,
                                         last_error_kind=ErrorKind.DISK.value, last_attempt_at=now)
            return self._result(album, state=AlbumState.FOLDER_GONE, errors=(message,),
                                error_kind=ErrorKind.DISK.value)
        try:
            return self._sync_album_unguarded(client, album, remote, confirm_removals, cancel, meter)
        except CancelledError:
            self.store.update_album_sync(album.id, last_attempt_at=now)
            return self._cancelled(album)
        except TraySyncError as exc:
            state = AlbumState.OFFLINE if exc.kind is ErrorKind.OFFLINE else AlbumState.ERROR
            self.store.update_album_sync(album.id, state=state.value, last_error=exc.message,
                                         last_error_kind=exc.kind.value, last_attempt_at=now,
                                         fingerprint=None)
            return self._result(album, state=state, errors=(exc.message,), error_kind=exc.kind.value,
                                failed=1 if isinstance(exc, LocalDiskError) else 0)
        except OSError as exc:
            error = fsops.disk_error(exc, root)
            self.store.update_album_sync(album.id, state=AlbumState.ERROR.value, last_error=error.message,
                                         last_error_kind=error.kind.value, last_attempt_at=now,
                                         fingerprint=None)
            return self._result(album, state=AlbumState.ERROR, errors=(error.message,),
                                error_kind=error.kind.value)

    def _needs_relist(self, album: AlbumSync, remote: RemoteAlbum) -> bool:
        if album.fingerprint != remote.fingerprint or not album.last_full_listing_at:
            return True
        try:
            listed = parse_timestamp(album.last_full_listing_at)
        except ValueError:
            return True
        return self.clock() - listed > timedelta(hours=self.options.full_relist_hours)

    def _sync_album_unguarded(
        self,
        client: ImmichClient,
        album: AlbumSync,
        remote: RemoteAlbum,
        confirm_removals: bool,
        cancel: CancelToken,
        meter: _ProgressMeter,
    ) -> AlbumResult:
        known = self.store.synced_assets(album.id)
        # Confirming held removals needs a fresh listing: the fingerprint was saved when they were held.
        relist = confirm_removals or album.confirm_removals or self._needs_relist(album, remote)
        prefetch = self._prefetcher(client, album, remote, cancel) if relist else None
        try:
            return self._sync_album_planned(client, album, remote, confirm_removals, cancel, meter, known, relist,
                                            prefetch)
        finally:
            if prefetch is not None:
                prefetch.close()

    def _sync_album_planned(
        self,
        client: ImmichClient,
        album: AlbumSync,
        remote: RemoteAlbum,
        confirm_removals: bool,
        cancel: CancelToken,
        meter: _ProgressMeter,
        known: dict[str, SyncedAsset],
        relist: bool,
        prefetch: _Prefetcher | None,
    ) -> AlbumResult:
        root = album.path
        complete = True
        remote_ids: set[str] = set()
        if relist:
            plan = AlbumPlan()
            retained: list[RemoteAsset] = []  # new, or part of a live photo: planned after the listing
            listed = 0
            for asset in client.iter_album_assets(remote):
                listed += 1
                _stop_if_cancelled(cancel, listed)
                record = known.get(asset.id)
                if record is not None and not asset.live_photo_video_id:
                    # Planned as it arrives and dropped: a relist never holds 100,000 listed assets.
                    plan.wanted_ids.add(asset.id)
                    self._plan_known(root, asset, record, plan)
                else:
                    retained.append(asset)
                    if record is None and prefetch is not None:
                        prefetch.offer(asset)
            if remote.asset_count > 0 and not listed:
                raise ServerError(
                    f"The server says {remote.name!r} has {remote.asset_count} items but listed none; "
                    "nothing was changed locally. Check the key's permissions, or update the app."
                )
            after = client.album(remote.id)
            if after.fingerprint != remote.fingerprint or listed < remote.asset_count:
                complete = False  # changed while listing, or items missing: no removals this time
                log.info("Listing of %r may be incomplete (changed meanwhile or short)", remote.name)
            retained = self._with_motion_parts(client, retained, known, plan.wanted_ids)
            self._plan_from_listing(root, album, retained, known, plan, cancel=cancel)
            remote_ids = plan.wanted_ids  # every listed id: one set of 100,000 ids is enough
            del retained  # the plan holds what the downloads need; the rest is free before they start
        else:
            plan = self._plan_from_records(root, known, cancel)
        if plan.changed_locally:
            changed_ids = [a.asset_id for a in known.values()
                           if a.local_path in set(plan.changed_locally) and a.state != "changed_locally"]
            self.store.set_asset_state(album.id, changed_ids, "changed_locally")

        meter.plan(len(plan.downloads), sum(w.size or 0 for w in plan.downloads))
        meter.set(phase=Phase.DOWNLOADING)
        self._check_free_space(root, plan.downloads)
        # What was fetched during the listing is named while the rest downloads.
        early = prefetch.start_publishing(plan.downloads, meter) if prefetch is not None else None
        downloaded, failed, fetched_bytes, errors, disk_failure = self._execute(
            client, album, early.remaining if early is not None else plan.downloads, cancel, meter
        )
        if early is not None:
            early.finished()
            downloaded += early.downloaded
            failed += early.failed
            fetched_bytes += early.bytes
            errors = early.errors + errors
            disk_failure = disk_failure or early.disk_failure
        if cancel.cancelled:
            raise CancelledError("Cancelled.")

        meter.set(phase=Phase.FINISHING)
        removed = held = 0
        removal_note: list[str] = []
        if relist:
            clean_pass = complete and failed == 0 and disk_failure is None
            removed, held, removal_note = self._removals(album, root, known, remote_ids, clean_pass, confirm_removals)
            if complete:
                self._clean_stale_partials(root, plan.wanted_ids)
        ok = failed == 0 and disk_failure is None
        all_errors = tuple(errors) + tuple(removal_note if held else ())
        state = AlbumState.OK if ok else AlbumState.ERROR
        finished = utc_now()
        fields: dict[str, object] = {
            "state": state.value,
            "last_attempt_at": finished,
            "last_error": None if ok else (errors[0] if errors else None),
            "last_error_kind": None if ok else (disk_failure.kind.value if disk_failure else ErrorKind.SERVER.value),
            "remote_asset_count": remote.asset_count,
            "confirm_removals": False,
        }
        if ok:
            fields["last_sync_at"] = finished
            if relist and complete:
                fields["fingerprint"] = remote.fingerprint
                fields["last_full_listing_at"] = finished
        else:
            fields["fingerprint"] = None
        self.store.update_album_sync(album.id, **fields)
        changed = tuple(sorted(set(plan.changed_locally)))
        return self._result(
            album,
            state=state,
            downloaded=downloaded,
            skipped=plan.skipped + plan.adopted,
            failed=failed + (1 if disk_failure and failed == 0 else 0),
            bytes=fetched_bytes,
            removed=removed,
            held_removals=held,
            changed_locally=changed,
            errors=all_errors,
            error_kind=None if ok else (disk_failure.kind.value if disk_failure else ErrorKind.SERVER.value),
            relisted=relist,
        )

    def _prefetcher(
        self, client: ImmichClient, album: AlbumSync, remote: RemoteAlbum, cancel: CancelToken
    ) -> _Prefetcher | None:
        """Small new files start downloading while a long listing goes on (see :class:`_Prefetcher`)."""
        options = self.options
        limit = min(options.archive_batch_files, archive.descriptor_budget())
        if options.archive_max_file_bytes <= 0 or remote.asset_count <= limit or limit < options.archive_min_files:
            return None  # the listing will end soon anyway
        if not fsops.unnamed_files_in(os.fspath(album.path)):
            return None  # files without names are how their names can wait
        return _Prefetcher(self.store, client, album, cancel, limit, options.archive_max_file_bytes)

    def _with_motion_parts(
        self, client: ImmichClient, assets: list[RemoteAsset], known: dict[str, SyncedAsset],
        also_listed: set[str] | frozenset[str] = frozenset(),
    ) -> list[RemoteAsset]:
        """Live photos: the motion part is not in album listings; ask for it by id."""
        listed = {a.id for a in assets}
        extra: list[RemoteAsset] = []
        for asset in assets:
            motion_id = asset.live_photo_video_id
            if not motion_id or motion_id in listed or motion_id in also_listed:
                continue
            record = known.get(motion_id)
            if record is not None and record.checksum:
                extra.append(RemoteAsset(
                    id=motion_id, original_file_name=record.filename, checksum=record.checksum,
                    file_created_at=asset.file_created_at, updated_at=record.remote_updated_at or "",
                    size=record.file_size, type="VIDEO", live_photo_video_id=None,
                    is_external=record.is_external,
                ))
                continue
            try:
                extra.append(client.asset(motion_id))
            except NotFoundError:
                log.warning("Motion part %s of a live photo is gone; skipping it", motion_id)
            listed.add(motion_id)
        return assets + extra

    # -- planning --

    def _plan_from_listing(
        self, root: Path, album: AlbumSync, assets: list[RemoteAsset], known: dict[str, SyncedAsset],
        plan: AlbumPlan | None = None, *, cancel: CancelToken | None = None,
    ) -> AlbumPlan:
        """Plan the listed ``assets``, consuming the list: each one is dropped once planned, so a
        100,000-asset listing turns into the plan instead of living beside it (peak memory)."""
        plan = AlbumPlan() if plan is None else plan
        cancel = cancel or CancelToken()
        claimed = {r.name_key for r in known.values()}
        stills_final: dict[str, str] = {}  # motion id -> its still's relpath
        fresh: list[RemoteAsset] = []
        for index, asset in enumerate(assets, 1):
            _stop_if_cancelled(cancel, index)
            plan.wanted_ids.add(asset.id)
            record = known.get(asset.id)
            if record is None:
                fresh.append(asset)
                continue
            if asset.live_photo_video_id:
                stills_final[asset.live_photo_video_id] = record.local_path
            self._plan_known(root, asset, record, plan)
        # New assets get names in a stable order (oldest first, then id) so two same-name
        # assets get the same names on every machine; motion parts follow their stills.
        motion_ids = {a.live_photo_video_id for a in assets if a.live_photo_video_id}
        assets.clear()
        fresh.sort(key=lambda a: (a.id in motion_ids, a.file_created_at, a.id), reverse=True)
        while fresh:
            _stop_if_cancelled(cancel, len(fresh))
            asset = fresh.pop()  # oldest first, and no longer held once planned
            folder = template_folder(album.folder_template, asset.file_created_at)
            base = safe_component(asset.original_file_name)
            if asset.id in stills_final:
                still_stem, _ = split_extension(stills_final[asset.id].rsplit("/", 1)[-1])
                _, ext = split_extension(base)
                base = safe_component(still_stem + ext)
            relpath = self._claim_name(album.id, root, folder, base, asset, claimed, plan, cancel)
            if relpath is None:
                continue  # adopted an existing identical file
            if asset.live_photo_video_id:
                stills_final[asset.live_photo_video_id] = relpath
            plan.downloads.append(self._wanted(asset, relpath))
        return plan

    def _claim_name(
        self,
        album_sync_id: int,
        root: Path,
        folder: str,
        base: str,
        asset: RemoteAsset,
        claimed: set[str],
        plan: AlbumPlan,
        cancel: CancelToken,
    ) -> str | None:
        # Lazily: almost every name is free at the first try.
        candidates = (base if tag is None else with_suffix(base, tag) for tag in (None, asset.id[:8], asset.id))
        for candidate in candidates:
            relpath = f"{folder}/{candidate}" if folder else candidate
            key = name_key(relpath)
            if key in claimed:
                continue
            try:
                target = fsops.inside(root, relpath)
            except LocalDiskError:
                if os.path.islink(root / relpath):
                    continue  # the user's link to somewhere else: never followed, never replaced
                raise
            if os.path.lexists(target):
                if self._adopt(album_sync_id, relpath, target, asset, cancel):
                    claimed.add(key)
                    plan.adopted += 1
                    return None
                continue  # somebody else's file: never overwritten
            claimed.add(key)
            return relpath
        raise ServerError(f"No free file name for {asset.original_file_name!r}.")

    def _adopt(
        self, album_sync_id: int, relpath: str, target: Path, asset: RemoteAsset, cancel: CancelToken | None = None,
    ) -> bool:
        """A file already at the planned name with exactly the asset's bytes is ours.

        This is what a crash between rename and database commit, or a rebuilt database,
        leaves behind: recording it avoids downloading it again.
        """
        try:
            st = target.stat()
        except OSError:
            return False
        if not target.is_file() or (asset.size is not None and st.st_size != asset.size):
            return False
        if asset.is_external:
            return False  # cannot tell its bytes apart: download beside it instead
        if _sha1_file(target, cancel) != asset.checksum:
            return False
        self.store.record_asset(
            album_sync_id, asset_id=asset.id, filename=asset.original_file_name,
            file_size=st.st_size, checksum=asset.checksum, local_path=relpath, name_key=name_key(relpath),
            mtime_ns=st.st_mtime_ns, remote_updated_at=asset.updated_at, is_external=asset.is_external,
        )
        # A kill -9 between the link to the final name and the partial's unlink leaves both.
        _unlink_quietly(fsops.partial_path(target, asset.id))
        log.info("Adopted existing identical file %s", relpath)
        return True

    def _plan_known(self, root: Path, asset: RemoteAsset, record: SyncedAsset, plan: AlbumPlan) -> None:
        try:
            target = fsops.inside(root, record.local_path)
        except LocalDiskError:
            if not os.path.islink(root / record.local_path):
                raise
            plan.changed_locally.append(record.local_path)  # the user made it a link elsewhere: theirs now
            return
        try:
            st = target.stat()
        except FileNotFoundError:
            st = None
        if st is None:
            plan.downloads.append(self._wanted(asset, record.local_path))  # the user deleted it: download again
            return
        ours = (st.st_size, st.st_mtime_ns) == (record.file_size, record.mtime_ns)
        if record.state == "changed_locally" or not ours:
            if ours:  # back to what we wrote (restored from a backup, say)
                self.store.set_asset_state(record.album_sync_id, [record.asset_id], "synced")
                plan.skipped += 1
            else:
                plan.changed_locally.append(record.local_path)
            return
        server_changed = (
            asset.checksum != record.checksum
            if not asset.is_external
            else (asset.size is not None and asset.size != record.file_size)
        )
        if server_changed:
            wanted = self._wanted(asset, record.local_path)
            wanted.replace = (st.st_size, st.st_mtime_ns)
            plan.downloads.append(wanted)
            return
        if record.state != "synced":
            self.store.set_asset_state(record.album_sync_id, [record.asset_id], "synced")
        plan.skipped += 1

    def _plan_from_records(
        self, root: Path, known: dict[str, SyncedAsset], cancel: CancelToken | None = None,
    ) -> AlbumPlan:
        """Fingerprint unchanged: no listing, just a stat per file we wrote."""
        plan = AlbumPlan()
        cancel = cancel or CancelToken()
        for index, record in enumerate(known.values(), 1):
            _stop_if_cancelled(cancel, index)
            if record.state in ("removed", "removal_held"):
                continue
            plan.wanted_ids.add(record.asset_id)
            asset = RemoteAsset(
                id=record.asset_id, original_file_name=record.filename, checksum=record.checksum or "",
                file_created_at="", updated_at=record.remote_updated_at or "", size=record.file_size,
                type="IMAGE", live_photo_video_id=None, is_external=record.is_external,
            )
            wanted_mtime = record.mtime_ns
            before = len(plan.downloads)
            self._plan_known(root, asset, record, plan)
            if len(plan.downloads) > before:
                plan.downloads[-1].mtime_ns = wanted_mtime
        return plan

    @staticmethod
    def _wanted(asset: RemoteAsset, relpath: str) -> Wanted:
        return Wanted(
            asset_id=asset.id, name=asset.original_file_name, relpath=relpath, checksum=asset.checksum,
            size=asset.size, mtime_ns=to_epoch_ns(asset.file_created_at), updated_at=asset.updated_at,
            is_external=asset.is_external,
        )

    def _check_free_space(self, root: Path, downloads: list[Wanted]) -> None:
        need = sum(w.size or 0 for w in downloads)
        if need == 0:
            return
        free = fsops.free_bytes(root)
        if need > free - self.options.reserve_bytes:
            raise LocalDiskError(
                f"Not enough free space in {root}: {len(downloads)} files need {_human(need)}, "
                f"{_human(free)} is free and {_human(self.options.reserve_bytes)} is kept in reserve. "
                "Free some space or choose a folder on another disk."
            )

    # -- execution --

    def _execute(
        self,
        client: ImmichClient,
        album: AlbumSync,
        downloads: list[Wanted],
        cancel: CancelToken,
        meter: _ProgressMeter,
    ) -> tuple[int, int, int, list[str], LocalDiskError | None]:
        if not downloads:
            return 0, 0, 0, [], None
        stop = threading.Event()
        archive_off = threading.Event()  # an archive delivered nothing: the rest go one by one
        lock = threading.Lock()
        tally = {"downloaded": 0, "failed": 0, "bytes": 0}
        errors: list[str] = []
        disk_failure: list[LocalDiskError] = []

        def disk_trouble(error: LocalDiskError) -> None:
            with lock:
                if not disk_failure:
                    disk_failure.append(error)
                    errors.append(error.message)
            stop.set()

        def archive_work(batch: list[Wanted]) -> list[Wanted]:
            """One archive of small files; returns what it did not deliver, for ``work``."""
            if stop.is_set() or cancel.cancelled or archive_off.is_set():
                return batch
            try:
                outcome = archive.fetch_batch(client, self.store, album.id, album.path, batch,
                                              cancel=cancel, meter=meter, stop=stop)
            except CancelledError:
                return []
            except LocalDiskError as exc:
                disk_trouble(exc)
                return []
            except OSError as exc:
                disk_trouble(fsops.disk_error(exc, album.path))
                return []
            with lock:
                tally["downloaded"] += outcome.downloaded
                tally["bytes"] += outcome.bytes
                for item, message in outcome.failures:
                    tally["failed"] += 1
                    if len(errors) < 20:
                        errors.append(f"{item.relpath}: {message}")
            if outcome.error and outcome.downloaded == 0:
                archive_off.set()
            return outcome.leftovers

        def published(entry: StagedFile) -> None:
            with lock:
                tally["downloaded"] += 1
                tally["bytes"] += entry.fetched
            meter.file_done()

        def refused(entry: StagedFile, message: str) -> None:
            log.warning("%s: %s", entry.item.relpath, message)
            with lock:
                tally["failed"] += 1
                if len(errors) < 20:
                    errors.append(f"{entry.item.relpath}: {message}")
            meter.file_done()

        def unrecorded(entries: list[StagedFile], exc: StoreError) -> None:
            log.warning("%d files published but not recorded: %s", len(entries), exc.message)
            with lock:  # the database, not these files: said once; the next sync adopts them
                tally["failed"] += len(entries)
                if exc.message not in errors:
                    errors.append(exc.message)
            for _ in entries:
                meter.file_done()
            stop.set()

        publisher = BatchPublisher(
            self.store, album.id, album.path, on_published=published, on_refused=refused,
            on_disk_error=lambda exc: disk_trouble(fsops.disk_error(exc, album.path)),
            on_store_error=unrecorded, should_hold=lambda: cancel.cancelled or bool(disk_failure),
        )

        def work(item: Wanted) -> None:
            if stop.is_set() or cancel.cancelled:
                return
            try:
                staged = self._fetch(client, album, item, cancel, meter)
            except CancelledError:
                return
            except LocalDiskError as exc:
                disk_trouble(exc)
                return
            except OSError as exc:
                disk_trouble(fsops.disk_error(exc, album.path))
                return
            except TraySyncError as exc:
                log.warning("%s: %s", item.relpath, exc.message)
                database = isinstance(exc, StoreError)  # the database, not this file: said once
                with lock:
                    tally["failed"] += 1
                    if database and exc.message not in errors:
                        errors.append(exc.message)
                    elif not database and len(errors) < 20:
                        errors.append(f"{item.relpath}: {exc.message}")
                meter.file_done(item.size or 0)
                if database or exc.kind in (ErrorKind.AUTH, ErrorKind.PERMISSION, ErrorKind.OFFLINE):
                    stop.set()  # every other file would fail the same way
                return
            publisher.stage(staged)  # named (and counted) when its batch is published

        batches, singles = self._archive_batches(downloads)
        streams = max(1, min(self.options.workers, self.options.archive_streams))
        with ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="download") as pool:
            archives: set[Future[list[Wanted]]] = {pool.submit(archive_work, batch) for batch in batches[:streams]}
            queued = batches[streams:]  # the next archive starts when one ends
            running: set[Future[None]] = {pool.submit(work, item) for item in singles}
            # The timeouts let a batch whose oldest file has waited long enough be published while
            # every worker is busy with a large download. Only the few archives are waited for one
            # at a time: a wait looks at every future it is given, so waiting for the first of
            # thousands of single files after each one cost this thread more than the downloads.
            while archives:
                done, archives = wait(archives, timeout=BATCH_WAIT_S / 2, return_when=FIRST_COMPLETED)
                if not stop.is_set():
                    publisher.publish_due()
                for future in done:
                    running.update(pool.submit(work, item) for item in future.result())
                    if queued:
                        archives.add(pool.submit(archive_work, queued.pop(0)))
            while running:
                done, running = wait(running, timeout=BATCH_WAIT_S / 2)
                if not stop.is_set():
                    publisher.publish_due()
                for future in done:
                    future.result()
        if not disk_failure:
            # Verified files still waiting get their names, unless the run was cancelled (they
            # stay partial files that the next sync re-hashes and reuses) or the disk or the
            # database failed (nothing more is written).
            publisher.finish()
        not_attempted = len(downloads) - tally["downloaded"] - tally["failed"]
        if (stop.is_set() or cancel.cancelled) and not_attempted:
            tally["failed"] += 0 if cancel.cancelled else not_attempted
        return tally["downloaded"], tally["failed"], tally["bytes"], errors, (disk_failure[0] if disk_failure else None)

    def _archive_batches(self, downloads: list[Wanted]) -> tuple[list[list[Wanted]], list[Wanted]]:
        """Split into archive batches of small files (as many as workers, at least) and the rest."""
        options = self.options
        small: list[Wanted] = []
        singles: list[Wanted] = []
        for item in downloads:
            # The archive is matched by checksum: external files (path hash) cannot be.
            fits = (options.archive_max_file_bytes > 0 and item.size is not None
                    and item.size <= options.archive_max_file_bytes and bool(item.checksum) and not item.is_external)
            (small if fits else singles).append(item)
        if len(small) < max(1, options.archive_min_files):
            return [], downloads
        total = sum(item.size or 0 for item in small)
        count = max(
            -(-len(small) // max(1, options.archive_batch_files)),
            -(-total // max(1, options.archive_batch_bytes)),
            min(options.workers, options.archive_streams, -(-len(small) // max(1, options.archive_min_files))),
        )
        step = -(-len(small) // count)
        return [small[i:i + step] for i in range(0, len(small), step)], singles

    def _fetch(
        self, client: ImmichClient, album: AlbumSync, item: Wanted, cancel: CancelToken, meter: _ProgressMeter
    ) -> StagedFile:
        """Download and verify one file into its partial file, for the publisher to name and record."""
        if not item.is_external and not item.checksum:
            # Every file is verified before it gets a name; without a checksum that cannot be done.
            raise IntegrityError("the server sent no checksum for it, so it could not be verified; not downloaded")
        root = album.path
        final = fsops.inside(root, item.relpath)
        _make_folder(root, final.parent)
        partial = fsops.partial_path(final, item.asset_id)
        integrity_retries = 1
        network_attempt = 0
        fetched = 0
        while True:
            try:
                written, st = self._download_verified(client, item, partial, meter)
                fetched += written
                break
            except IntegrityError:
                _unlink_quietly(partial)
                if integrity_retries == 0:
                    raise
                integrity_retries -= 1
            except ServerError as exc:
                network_attempt += 1
                if not exc.retryable or network_attempt >= self.options.retry.attempts:
                    raise
                if cancel.wait(self.options.retry.delay(network_attempt, exc.retry_after)):
                    raise CancelledError("Cancelled.") from None
        return StagedFile(item, partial, final, st.st_size, st.st_mtime_ns, fetched)

    def _download_verified(
        self, client: ImmichClient, item: Wanted, partial: Path, meter: _ProgressMeter
    ) -> tuple[int, os.stat_result]:
        """Download (or resume) into the named ``partial`` and verify it; returns the bytes fetched
        and its fstat after the capture time was set. No fsync: the publisher flushes a batch."""
        fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o666)
        with os.fdopen(fd, "r+b") as sink:
            have = os.fstat(sink.fileno()).st_size
            prefix = hashlib.sha1()
            if item.size is not None and have > item.size:
                have = 0
            if have:
                sink.seek(0)
                remaining = have
                while remaining:
                    block = sink.read(min(HASH_BLOCK, remaining))
                    if not block:
                        break
                    prefix.update(block)
                    remaining -= len(block)
            fetched = 0
            if item.size is not None and have == item.size:
                hasher = prefix  # complete already: never ask for a range past the end
                sink.seek(have)
            else:
                state = {"hasher": prefix}

                def on_start(start: int) -> None:
                    if start == 0:
                        state["hasher"] = hashlib.sha1()
                    meter.bytes(start, item.relpath)

                def on_chunk(chunk: bytes) -> None:
                    nonlocal fetched
                    state["hasher"].update(chunk)
                    fetched += len(chunk)
                    meter.bytes(len(chunk), item.relpath)
                    fsops.start_writeback(sink.fileno(), sink.tell())

                if have == 0:
                    sink.truncate(0)
                client.download(item.asset_id, sink, offset=have, on_start=on_start, on_chunk=on_chunk,
                                max_size=item.size)
                hasher = state["hasher"]
            sink.flush()
            size = sink.tell()
            if item.size is not None and size != item.size:
                raise IntegrityError(f"size {size} does not match the server's {item.size}")
            if not item.is_external and item.checksum:
                digest = base64.b64encode(hasher.digest()).decode("ascii")
                if digest != item.checksum:
                    raise IntegrityError("the downloaded bytes do not match the server's checksum")
            fsops.crash_point("before_fsync")  # verified, not yet durable: the next sync re-hashes it
            if _UTIME_FD:
                if item.mtime_ns is not None:
                    os.utime(sink.fileno(), ns=(item.mtime_ns, item.mtime_ns))
                # What the file system made of the time (FAT keeps 2 s): the final name is this inode.
                return fetched, os.fstat(sink.fileno())
        # Without utime by descriptor (Windows) the time is set once the file is closed, so that
        # closing it cannot move the time again.
        if item.mtime_ns is not None:
            os.utime(partial, ns=(item.mtime_ns, item.mtime_ns))
        return fetched, os.stat(partial)

    # -- removals --

    def _removals(
        self,
        album: AlbumSync,
        root: Path,
        known: dict[str, SyncedAsset],
        remote_ids: set[str],
        clean_pass: bool,
        confirmed: bool,
    ) -> tuple[int, int, list[str]]:
        gone = [r for r in known.values() if r.asset_id not in remote_ids and r.state != "removed"]
        back = [r for r in known.values() if r.asset_id in remote_ids and r.state in ("removed", "removal_held")]
        if back:
            self.store.set_asset_state(album.id, [r.asset_id for r in back], "synced")
        if not gone or not clean_pass:
            return 0, 0, []
        if not album.mirror_removals:
            self.store.set_asset_state(album.id, [r.asset_id for r in gone], "removed")
            return 0, 0, []
        total = max(1, sum(1 for r in known.values() if r.state != "removed"))
        over = len(gone) > self.options.removal_threshold_files or (
            len(gone) > 1 and len(gone) * 100.0 / total > self.options.removal_threshold_percent
        )
        if over and not (confirmed or album.confirm_removals):
            self.store.set_asset_state(album.id, [r.asset_id for r in gone], "removal_held")
            note = held_removals_note(len(gone), album.album_name, command_line_confirm_route(album.album_id))
            return 0, len(gone), [note]
        moved: list[str] = []
        kept: list[str] = []
        for record in gone:
            target = fsops.inside(root, record.local_path)
            try:
                st = target.stat()
            except FileNotFoundError:
                moved.append(record.asset_id)
                continue
            if (st.st_size, st.st_mtime_ns) != (record.file_size, record.mtime_ns):
                kept.append(record.asset_id)  # changed by the user: theirs now
                continue
            fsops.move_to_trash(root, record.local_path)
            moved.append(record.asset_id)
        self.store.forget_assets(album.id, moved)
        self.store.set_asset_state(album.id, kept, "removed")
        return len(moved), 0, []

    def _clean_stale_partials(self, root: Path, wanted_ids: set[str]) -> None:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != TRASH_DIR]
            for name in files:
                if not fsops.is_partial_name(name):
                    continue
                asset_id = name[len(".~tray-sync-"):-len(fsops.PARTIAL_SUFFIX)]
                if asset_id not in wanted_ids:
                    _unlink_quietly(Path(folder) / name)


# -- fetching before the names are known ----------------------------------------------------


@dataclass
class _EarlyFiles:
    remaining: list[Wanted]  # what the ordinary download step still has to do
    downloaded: int = 0
    failed: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    disk_failure: LocalDiskError | None = None
    thread: threading.Thread | None = None  # naming them, while the rest downloads

    def finished(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None


class _Prefetcher:
    """The first small new files of a long listing, fetched through one archive while it goes on.

    Listing a large album takes a while (a few hundred milliseconds per 5,000 assets on the
    built-in server, seconds on a real one), and names cannot be planned before its end: two
    assets with one name are told apart in an order that needs all of them. The bytes need no
    name, though: they are verified and kept in unnamed files (:func:`fsops.open_unnamed`),
    and named, flushed and recorded like any archive batch once planning is done
    (:meth:`publish`). Only assets whose plain name is free are taken, so a folder that
    already holds the files (a rebuilt database) is not downloaded for nothing; whatever
    planning decides otherwise is closed unnamed, and a crash leaves nothing at all.
    """

    def __init__(self, store: Store, client: ImmichClient, album: AlbumSync, cancel: CancelToken, limit: int,
                 max_file_bytes: int) -> None:
        self._store = store
        self._client = client
        self._album = album
        self._cancel = cancel
        self._limit = limit
        self._max_bytes = max_file_bytes
        self._root = os.fspath(album.path)
        self._items: list[Wanted] = []
        # Its own token, cancelled with the sync's and also when the album's sync ends without
        # it (a failed listing): that aborts the archive's connection at once, even mid-stall.
        self._abandon = CancelToken()
        self._unhook = cancel.add_callback(lambda: self._abandon.cancel(cancel.reason))
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[archive.BatchOutcome] | None = None
        self._publishing: _EarlyFiles | None = None

    def offer(self, asset: RemoteAsset) -> None:
        if self._pool is not None or self._cancel.cancelled:
            return
        if (asset.size is None or asset.size > self._max_bytes or not asset.checksum or asset.is_external
                or asset.live_photo_video_id):
            return
        folder = template_folder(self._album.folder_template, asset.file_created_at)
        if os.path.lexists(os.path.join(self._root, folder, safe_component(asset.original_file_name))):
            return  # planning may adopt what is there, or pick another name: not guessed here
        self._items.append(SyncEngine._wanted(asset, ""))
        if len(self._items) >= self._limit:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
            self._future = self._pool.submit(
                archive.fetch_batch, self._client, self._store, self._album.id, self._album.path, self._items,
                cancel=self._abandon, meter=_UNREPORTED, name_later=True,
            )

    def start_publishing(self, downloads: list[Wanted], meter: _ProgressMeter) -> _EarlyFiles:
        """Name, flush and record (in a thread) what arrived and is planned; the rest of
        ``downloads`` is returned in ``remaining`` for the ordinary download step meanwhile."""
        fetched = self._collect()
        if self._cancel.cancelled:  # (the archive may have seen its connection aborted before its token)
            archive.discard_prefetched(list(fetched.values()))
            return _EarlyFiles(downloads)
        if not fetched:
            return _EarlyFiles(downloads)
        matched: list[tuple[archive.StagedEntry, Wanted]] = []
        remaining: list[Wanted] = []
        for wanted in downloads:
            entry = fetched.pop(wanted.asset_id, None)
            if entry is not None and wanted.replace is None and wanted.checksum == entry.item.checksum:
                matched.append((entry, wanted))
            else:
                remaining.append(wanted)
                if entry is not None:
                    archive.discard_prefetched([entry])
        archive.discard_prefetched(list(fetched.values()))  # planned otherwise (adopted, say)
        early = _EarlyFiles(remaining)
        early.thread = threading.Thread(target=self._publish, args=(early, matched, meter), name="prefetch-publish",
                                        daemon=True)
        self._publishing = early
        early.thread.start()
        return early

    def _publish(self, early: _EarlyFiles, matched: list[tuple[archive.StagedEntry, Wanted]],
                 meter: _ProgressMeter) -> None:
        try:
            outcome = archive.publish_prefetched(self._store, self._album.id, self._album.path, matched, meter)
        except OSError as exc:
            early.disk_failure = fsops.disk_error(exc, self._album.path)
            early.errors.append(early.disk_failure.message)
            return
        except LocalDiskError as exc:
            early.disk_failure = exc
            early.errors.append(exc.message)
            return
        except StoreError as exc:  # named, not recorded: the next sync adopts them
            early.failed = len(matched)
            early.errors.append(exc.message)
            return
        early.downloaded, early.bytes = outcome.downloaded, outcome.bytes
        early.failed = len(outcome.failures)
        early.errors.extend(f"{item.relpath}: {message}" for item, message in outcome.failures[:20])
        log.info("%d files fetched while the album was listed", outcome.downloaded)

    def close(self) -> None:
        """Stop an unfinished prefetch and free what was never named (idempotent)."""
        self._abandon.cancel("the album's sync ended")
        archive.discard_prefetched(list(self._collect().values()))
        self._unhook()
        if self._publishing is not None:
            self._publishing.finished()  # (an exception in the download step: its names still end cleanly)

    def _collect(self) -> dict[str, archive.StagedEntry]:
        if self._future is None:
            return {}
        future, self._future = self._future, None
        try:
            outcome = future.result()
        except (TraySyncError, OSError) as exc:  # the ordinary download step meets it again, and says so
            log.info("Fetching during the listing failed (%s); downloading the usual way", exc)
            return {}
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
        return {entry.item.asset_id: entry for entry in outcome.staged}


class _Unreported:
    """Progress of a prefetch is reported when its files are named (the plan is not known before)."""

    def bytes(self, count: int, current: str) -> None:
        del count, current

    def file_done(self, size_unfetched: int = 0) -> None:
        del size_unfetched


_UNREPORTED = _Unreported()


# -- helpers ----------------------------------------------------------------------------


def check_destination(store: Store, destination: Path, *, ignore_album_sync_id: int | None = None) -> None:
    """Two synced albums may not share or nest folders."""
    from tray_sync.sync.errors import ConfigError

    target = destination.expanduser().resolve()
    for album in store.album_syncs():
        if album.id == ignore_album_sync_id:
            continue
        other = Path(album.local_path).resolve()
        if target == other or other in target.parents or target in other.parents:
            raise ConfigError(
                f"{target} overlaps the folder of the synced album {album.album_name!r} ({other}); "
                "each album needs a folder of its own."
            )


def _stop_if_cancelled(cancel: CancelToken, index: int) -> None:
    """During planning: raise at the ``index``-th asset if a pause came meanwhile (every few hundred)."""
    if index % PLAN_CANCEL_EVERY == 0 and cancel.cancelled:
        raise CancelledError("Cancelled.")


def _sha1_file(path: Path, cancel: CancelToken | None = None) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            if cancel is not None and cancel.cancelled:  # a multi-gigabyte video takes seconds
                raise CancelledError("Cancelled.")
            digest.update(block)
    return base64.b64encode(digest.digest()).decode("ascii")


def _make_folder(root: Path, folder: Path) -> None:
    """Create ``folder`` and its parents up to, never including, the album's folder ``root``.

    A vanished album folder (an unplugged drive) raises ``FileNotFoundError`` instead of being
    created again on the disk underneath; a file waiting for its batch no longer stops the
    worker from starting the next download, so this is checked here rather than by a failure.
    """
    if folder == root:
        return
    try:
        os.mkdir(folder)
    except FileExistsError:
        return
    except FileNotFoundError:
        if folder.parent == root:
            raise
        _make_folder(root, folder.parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


human_size = _human
