"""The settings window's logic: validate inline, keep every change pending until Save.

General options, the synced albums (remove, change folder and offer to move what is already
synced, removal policy, release removals held by the mass-removal guard) and each connection's
new-album policy are pending until Save; Cancel forgets them. Connection edits (address or key)
and removals are checked and saved on the spot, because they need the server or the keyring.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tray_sync.appstate import AppController, AppSnapshot, TrayState
from tray_sync.context import Context
from tray_sync.dialogs.common import Post, Worker, describe_error, folder_problem, human_size, plural
from tray_sync.dialogs.setup_presenter import apply_autostart, autostart_module
from tray_sync.sync.errors import ConfigError, TraySyncError
from tray_sync.sync.lock import BusyError, ProcessLock
from tray_sync.sync.store import AlbumSync, Connection, Store, SyncedAsset

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NUMBER_FIELDS: dict[str, tuple[int, int, str]] = {
    "interval_minutes": (5, 1440, "minutes"),
    "parallel_downloads": (1, 16, "downloads at a time"),
    "removal_threshold_percent": (1, 100, "percent"),
    "removal_threshold_files": (1, 100_000, "files"),
}
# Moving or dropping albums waits this long for a running sync (the app's, paused, or the command
# line's) to let go of the profile's sync lock, so no sync writes into a folder while it moves.
SYNC_LOCK_WAIT_SECONDS = 60.0
# Closing the window while Save writes (the app quits) waits this long, so a quitting process does
# not cut a move of an album's files off halfway.
SAVE_WAIT_SECONDS = 120.0
BOOL_FIELDS = ("notifications", "notify_on_success", "notify_on_error", "autostart")
POLICY_LABELS = {"ignore": "Ignore", "ask": "Ask me", "auto": "Sync automatically"}


@dataclass(frozen=True)
class AlbumRow:
    album_sync_id: int
    name: str
    connection: str
    folder: str
    removal_policy: str  # "Keep" / "Move to trash"
    held: int
    pending: str  # what Save will do, in words; "" when nothing


@dataclass(frozen=True)
class ConnectionRow:
    connection_id: int
    name: str
    server: str
    version: str
    new_album_policy: str  # key of POLICY_LABELS (pending value)
    albums: int


@dataclass
class AlbumChange:
    remove: bool = False
    folder: Path | None = None
    move_files: bool = False
    mirror_removals: bool | None = None
    release_held: bool = False

    @property
    def empty(self) -> bool:
        return not (self.remove or self.folder or self.mirror_removals is not None or self.release_held)


class SettingsView(Protocol):
    def show_values(self, values: dict[str, Any], *, autostart_available: bool) -> None: ...

    def show_field_error(self, name: str, text: str | None) -> None: ...

    def show_albums(self, rows: list[AlbumRow]) -> None: ...

    def show_connections(self, rows: list[ConnectionRow]) -> None: ...

    def set_save_enabled(self, enabled: bool) -> None: ...

    def set_cancel_enabled(self, enabled: bool) -> None: ...

    def set_busy(self, busy: bool, text: str = "") -> None: ...

    def confirm(self, title: str, question: str) -> bool: ...

    def ask_yes_no_cancel(self, title: str, question: str) -> bool | None: ...

    def show_message(self, text: str, *, error: bool) -> None: ...

    def close(self) -> None: ...


class SettingsPresenter:
    def __init__(
        self,
        view: SettingsView,
        ctx: Context,
        controller: AppController,
        worker: Worker,
        *,
        open_setup: Callable[..., None] | None = None,
        on_closed: Callable[[], None] | None = None,
        check: Callable[[str, str, bool | str], Any] | None = None,
    ) -> None:
        self.view = view
        self.ctx = ctx
        self.controller = controller
        self.worker = worker
        self._open_setup = open_setup
        self._on_closed = on_closed
        self._check = check
        self.saved: dict[str, Any] = {}
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.album_changes: dict[int, AlbumChange] = {}
        self.policy_changes: dict[int, str] = {}
        self.snapshot: AppSnapshot | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.saving = False
        self._save_ended = threading.Event()
        self._resume_after_save = False  # Save paused syncing while album files move
        self.closed = False

    @property
    def store(self) -> Store:
        return self.ctx.store

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.saved = self.store.settings()
        if autostart_module() is not None:
            try:
                self.saved["autostart"] = bool(autostart_module().is_enabled())  # type: ignore[union-attr]
            except Exception:
                log.debug("Could not read the login item", exc_info=True)
        self.values = {k: self.saved.get(k) for k in (*NUMBER_FIELDS, *BOOL_FIELDS, "log_level")}
        self.view.show_values(dict(self.values), autostart_available=autostart_module() is not None)
        self.reload()
        self._unsubscribe = self.controller.subscribe(self._snapshot)

    def _snapshot(self, snapshot: AppSnapshot) -> None:
        self.snapshot = snapshot

    def reload(self) -> None:
        """Re-read albums and connections (the wizard may have added some meanwhile)."""
        live = {a.id for a in self.store.album_syncs()}
        self.album_changes = {k: v for k, v in self.album_changes.items() if k in live}
        self._show_albums()
        self._show_connections()
        self._update_save()

    def cancel(self) -> None:
        if self.saving:
            return
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.saving:
            if not self._save_ended.wait(SAVE_WAIT_SECONDS):
                log.warning("Settings were still being saved after %.0f s while the window closed", SAVE_WAIT_SECONDS)
            if self._resume_after_save:  # the pause is remembered across restarts: never leave it behind
                self._resume_after_save = False
                try:
                    self.controller.resume()
                except Exception:
                    log.exception("Could not resume syncing after the settings window closed")
        if self._unsubscribe:
            self._unsubscribe()
        self.worker.close()
        self.view.close()
        if self._on_closed:
            self._on_closed()

    # -- general -------------------------------------------------------------------------

    def field_changed(self, name: str, value: Any) -> None:
        error: str | None = None
        if name in NUMBER_FIELDS:
            low, high, unit = NUMBER_FIELDS[name]
            try:
                number = int(str(value).strip())
            except ValueError:
                error = f"Type a whole number of {unit} ({low} to {high})."
            else:
                if not low <= number <= high:
                    error = f"Choose between {low} and {high} {unit}."
                else:
                    self.values[name] = number
        elif name in BOOL_FIELDS:
            self.values[name] = bool(value)
        elif name == "log_level":
            if str(value).upper() not in LOG_LEVELS:
                error = f"Choose one of {', '.join(LOG_LEVELS)}."
            else:
                self.values[name] = str(value).upper()
        else:
            raise ValueError(f"unknown setting {name}")
        if error:
            self.errors[name] = error
        else:
            self.errors.pop(name, None)
        self.view.show_field_error(name, error)
        self._update_save()

    def _update_save(self) -> None:
        self.view.set_save_enabled(not self.errors and not self.saving)
        self.view.set_cancel_enabled(not self.saving)  # a save (moving files, say) is not cancelled halfway

    def has_changes(self) -> bool:
        return (any(self.values[k] != self.saved.get(k) for k in self.values)
                or any(not c.empty for c in self.album_changes.values()) or bool(self.policy_changes))

    # -- albums --------------------------------------------------------------------------

    def _change(self, album_sync_id: int) -> AlbumChange:
        return self.album_changes.setdefault(album_sync_id, AlbumChange())

    def album_rows(self) -> list[AlbumRow]:
        names = {c.id: c.name for c in self.store.connections()}
        rows = []
        for album in self.store.album_syncs():
            change = self.album_changes.get(album.id, AlbumChange())
            held = self.store.album_totals(album.id).held_removals
            mirror = album.mirror_removals if change.mirror_removals is None else change.mirror_removals
            pending = []
            if change.remove:
                pending.append("stops syncing on Save")
            if change.folder is not None:
                pending.append("moves its files on Save" if change.move_files else "new folder on Save")
            if change.release_held:
                pending.append(f"{plural(held, 'removal')} released on Save")
            rows.append(AlbumRow(
                album_sync_id=album.id, name=album.album_name, connection=names.get(album.connection_id, "?"),
                folder=str(change.folder) if change.folder else album.local_path,
                removal_policy="Move to trash" if mirror else "Keep", held=held, pending="; ".join(pending),
            ))
        return rows

    def _show_albums(self) -> None:
        self.view.show_albums(self.album_rows())

    def remove_album(self, album_sync_id: int) -> None:
        album = self.store.album_sync(album_sync_id)
        if self.view.confirm("Stop syncing", f"Stop syncing {album.album_name!r}? The files already on this "
                             "computer stay where they are."):
            self._change(album_sync_id).remove = True
            self._show_albums()

    def undo_album_changes(self, album_sync_id: int) -> None:
        self.album_changes.pop(album_sync_id, None)
        self._show_albums()

    def change_album_folder(self, album_sync_id: int, folder: str) -> None:
        from tray_sync.sync.engine import check_destination

        album = self.store.album_sync(album_sync_id)
        target = Path(folder).expanduser()
        if target.resolve() == album.path.resolve():
            self.album_changes.get(album_sync_id, AlbumChange()).folder = None
            self._show_albums()
            return
        error, warning = folder_problem(target)
        if error is None:
            try:
                check_destination(self.store, target, ignore_album_sync_id=album_sync_id)
            except ConfigError as exc:
                error = exc.message
        if error is None:
            for other_id, change in self.album_changes.items():
                if other_id != album_sync_id and change.folder is not None and not change.remove:
                    mine, theirs = target.resolve(), change.folder.resolve()
                    if mine == theirs or theirs in mine.parents or mine in theirs.parents:
                        error = "Another album is moving to that folder: each album needs its own folder."
        if error:
            self.view.show_message(error, error=True)
            return
        totals = self.store.album_totals(album_sync_id)
        move = True
        if totals.files:
            answer = self.view.ask_yes_no_cancel(
                "Change folder",
                f"Move the {plural(totals.files, 'file')} ({human_size(totals.bytes)}) already synced from "
                f"{album.local_path} to {target}? Choose No to leave them and download the album again there."
                + (f"\n\nNote: {warning}" if warning else ""),
            )
            if answer is None:
                return
            move = answer
        change = self._change(album_sync_id)
        change.folder, change.move_files = target, move and totals.files > 0
        self._show_albums()

    def set_removal_policy(self, album_sync_id: int, mirror: bool) -> None:
        album = self.store.album_sync(album_sync_id)
        self._change(album_sync_id).mirror_removals = None if mirror == album.mirror_removals else mirror
        self._show_albums()

    def held_files(self, album_sync_id: int) -> list[str]:
        return sorted(a.local_path for a in self.store.synced_assets(album_sync_id).values()
                      if a.state == "removal_held")

    def release_held(self, album_sync_id: int) -> None:
        album = self.store.album_sync(album_sync_id)
        files = self.held_files(album_sync_id)
        if not files:
            return
        listing = "\n".join(files[:15]) + (f"\n… and {len(files) - 15} more" if len(files) > 15 else "")
        if self.view.confirm("Removals waiting for your OK", (
                f"{plural(len(files), 'file')} of {album.album_name!r} were removed from the album on the server. "
                f"Move them to the album's trash folder too?\n\n{listing}")):
            self._change(album_sync_id).release_held = True
            self._show_albums()

    def add_albums(self, connection_id: int | None = None) -> None:
        if self._open_setup is not None:
            if connection_id is None:
                self._open_setup()
            else:
                self._open_setup(connection_id)

    # -- connections -----------------------------------------------------------------------

    def connection_rows(self) -> list[ConnectionRow]:
        rows = []
        for connection in self.store.connections():
            rows.append(ConnectionRow(
                connection_id=connection.id, name=connection.name, server=connection.server_url,
                version=connection.server_version,
                new_album_policy=self.policy_changes.get(connection.id, connection.new_album_policy),
                albums=len(self.store.album_syncs(connection.id)),
            ))
        return rows

    def _show_connections(self) -> None:
        self.view.show_connections(self.connection_rows())

    def set_new_album_policy(self, connection_id: int, policy: str) -> None:
        if policy not in POLICY_LABELS:
            raise ValueError(policy)
        current = self.store.connection(connection_id).new_album_policy
        if policy == current:
            self.policy_changes.pop(connection_id, None)
        else:
            self.policy_changes[connection_id] = policy
        self._show_connections()

    def remove_connection(self, connection_id: int) -> None:
        connection = self.store.connection(connection_id)
        count = len(self.store.album_syncs(connection_id))
        if not self.view.confirm("Remove connection", (
                f"Remove {connection.name!r} ({connection.server_url})"
                + (f" and stop syncing its {plural(count, 'album')}" if count else "")
                + "? The files already on this computer stay, and the API key is deleted from the keyring.")):
            return
        self.view.set_busy(True, f"Removing {connection.name}…")

        def job(post: Post) -> str | None:
            # The keyring may be slow or ask to be unlocked: off the Tk thread.
            problem = None
            try:
                self.ctx.secrets.delete(connection.account)
            except TraySyncError as exc:
                log.warning("Could not delete the key of %s: %s", connection.name, exc.message)
                problem = exc.message
            self.store.delete_connection(connection_id)
            return problem

        def done(problem: str | None) -> None:
            self.view.set_busy(False)
            self.policy_changes.pop(connection_id, None)
            self.controller.settings_changed()
            self.reload()
            if problem:
                self.view.show_message(f"Removed {connection.name!r}, but its API key stays in the keyring: {problem}",
                                       error=True)
            else:
                self.view.show_message(f"Removed {connection.name!r}.", error=False)

        def failed(exc: BaseException) -> None:
            self.view.set_busy(False)
            self.reload()
            self.view.show_message(f"Could not remove {connection.name!r}: {describe_error(exc)}", error=True)

        self.worker.run(job, done, failed)

    def edit_connection(self, connection_id: int, url: str, key: str,
                        done: Callable[[bool, str], None] | None = None) -> None:
        """Check a new address and/or key (blank key: keep the saved one), then save them."""
        from tray_sync.secrets import account_for
        from tray_sync.sync.connect import check_connection

        connection = self.store.connection(connection_id)
        url = url.strip() or connection.server_url
        key = key.strip()
        try:
            key_to_check = key or self.ctx.key_for(connection)
        except TraySyncError as exc:
            self._edit_result(done, False, exc.message)
            return
        check = self._check or (lambda u, k, v: check_connection(u, k, verify=v))
        verify: bool | str = connection.ca_bundle or True
        self.view.set_busy(True, f"Checking {url}…")

        def job(post: Post) -> Connection:
            result = check(url, key_to_check, verify)
            account = account_for(connection.name, result.discovery.api_url)
            if account != connection.account or key:
                self.ctx.secrets.set(account, key_to_check)
            updated = self.store.update_connection(
                connection_id, server_url=result.discovery.server_url, api_url=result.discovery.api_url,
                server_version=str(result.discovery.version), account=account)
            if account != connection.account:
                try:
                    self.ctx.secrets.delete(connection.account)
                except TraySyncError:
                    log.info("The old key entry of %s could not be deleted", connection.name)
            return updated

        def ok(updated: Connection) -> None:
            self.view.set_busy(False)
            self.controller.settings_changed()
            self.reload()
            self._edit_result(done, True, f"Saved: {updated.name} now uses {updated.server_url} "
                                          f"(Immich {updated.server_version}).")

        def failed(exc: BaseException) -> None:
            self.view.set_busy(False)
            self._edit_result(done, False, f"Not saved. {describe_error(exc)}")

        self.worker.run(job, ok, failed)

    def _edit_result(self, done: Callable[[bool, str], None] | None, ok: bool, text: str) -> None:
        if done is not None:
            done(ok, text)
        else:
            self.view.show_message(text, error=not ok)

    # -- save ------------------------------------------------------------------------------

    def save(self) -> None:
        if self.saving or self.errors:
            return
        self.saving = True
        self._update_save()
        changed = {k: v for k, v in self.values.items() if v != self.saved.get(k)}
        albums = {k: replace(v) for k, v in self.album_changes.items() if not v.empty}
        policies = dict(self.policy_changes)
        moving = any(c.folder is not None and c.move_files and not c.remove for c in albums.values())
        paused_here = moving and not (self.snapshot is not None and self.snapshot.state is TrayState.PAUSED)
        if paused_here:
            self.controller.pause(None)  # no sync may write into a folder while its files move
            self._resume_after_save = True
        self.view.set_busy(True, "Moving files…" if moving else "Saving…")

        ended = self._save_ended = threading.Event()

        def job(post: Post) -> list[str]:
            try:
                if not any(c.remove or c.folder is not None for c in albums.values()):
                    return _apply(self.ctx, changed, albums, policies)
                lock = _sync_lock(self.ctx, on_wait=lambda: post(lambda: self.view.set_busy(
                    True, "Waiting for the running sync to stop before moving files…")))
                try:
                    return _apply(self.ctx, changed, albums, policies)
                finally:
                    lock.release()
            finally:
                ended.set()

        def done(problems: list[str]) -> None:
            self.saving = False
            self.view.set_busy(False)
            if self._resume_after_save:
                self._resume_after_save = False
                self.controller.resume()
            self.controller.settings_changed()
            if any((c.release_held or c.folder is not None) and not c.remove for c in albums.values()):
                self.controller.sync_now()  # released removals and new folders: act on them now
            if problems:
                self.view.show_message("Saved, with problems:\n" + "\n".join(problems), error=True)
            self.close()

        def failed(exc: BaseException) -> None:
            self.saving = False
            self.view.set_busy(False)
            if self._resume_after_save:
                self._resume_after_save = False
                self.controller.resume()
            self.controller.settings_changed()
            self._update_save()
            self.album_changes = {}
            self.reload()
            self.view.show_message(f"Saving failed: {describe_error(exc)}", error=True)

        self.worker.run(job, done, failed)


def _sync_lock(ctx: Context, wait: float | None = None, on_wait: Callable[[], None] | None = None) -> ProcessLock:
    """The profile's sync lock, waited for: a running sync finishes its file (pause stops it within seconds).

    ``on_wait`` is called once if the lock is not free at once (to say what the window waits for).
    """
    lock = ProcessLock(ctx.paths.runtime_dir / "sync.lock", what="syncing")
    deadline = time.monotonic() + (SYNC_LOCK_WAIT_SECONDS if wait is None else wait)
    while True:
        try:
            return lock.acquire()
        except BusyError:
            if time.monotonic() >= deadline:
                raise
            if on_wait is not None:
                on_wait()
                on_wait = None
            time.sleep(0.1)


def _apply(ctx: Context, changed: dict[str, Any], albums: dict[int, AlbumChange],
           policies: dict[int, str]) -> list[str]:
    """Write the pending changes; returns problems that did not stop the rest."""
    store = ctx.store
    problems: list[str] = []
    for key, value in changed.items():
        if key == "autostart":
            problem = apply_autostart(bool(value), ctx.home_arg)
            if problem:
                problems.append(problem)
                continue
        store.set_setting(key, value)
    for connection_id, policy in policies.items():
        if policy == "auto":
            # New albums go to the folder chosen at setup (else Pictures/Immich). It must exist now:
            # a sync never creates it (on an unmounted drive it would land on the mount point).
            from tray_sync.dialogs.common import pictures_folder

            root = Path(store.connection(connection_id).new_album_root or pictures_folder() / "Immich")
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                problems.append(f"New albums cannot be added automatically: cannot create {root} "
                                f"({exc.strerror or exc}).")
                continue
            store.update_connection(connection_id, new_album_policy=policy, new_album_root=str(root))
            continue
        store.update_connection(connection_id, new_album_policy=policy)
    for album_sync_id, change in albums.items():
        album = store.album_sync(album_sync_id)
        if change.remove:
            store.remove_album_sync(album_sync_id)
            continue
        fields: dict[str, Any] = {}
        if change.mirror_removals is not None:
            fields["mirror_removals"] = change.mirror_removals
        if change.release_held:
            fields["confirm_removals"] = True
        if fields:
            store.update_album_sync(album_sync_id, **fields)
        if change.folder is not None:
            problems.extend(move_album(store, album, change.folder, move_files=change.move_files))
    return problems


def move_album(store: Store, album: AlbumSync, new_folder: Path, *, move_files: bool) -> list[str]:
    """Point the album at ``new_folder``; with ``move_files``, move the files this app wrote there.

    Only files recorded as synced move, each to the same relative place; a file already at the
    target is never overwritten (the old one stays and is reported). All or nothing: when one file
    cannot be moved (disk full, a drive pulled out) the moved ones go back and the album keeps its
    folder. To another disk a file is copied under a hidden name and renamed, so a cut-off copy is
    never left under a photo's name. Folders left empty are removed.
    """
    from tray_sync.sync.engine import check_destination

    target = new_folder.expanduser().resolve()
    check_destination(store, target, ignore_album_sync_id=album.id)
    target.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    old_root = album.path
    if move_files:
        kept = 0
        moved: list[tuple[Path, Path, os.stat_result]] = []
        restat: list[SyncedAsset] = []  # unchanged files: their new modification times are recorded
        for asset in store.synced_assets(album.id).values():
            if asset.state == "removed":
                continue
            source = old_root / asset.local_path
            destination = target / asset.local_path
            try:
                st = source.stat()
            except OSError:
                continue
            if not source.is_file():
                continue
            if destination.exists():
                kept += 1
                continue
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                _move_file(source, destination)
            except OSError as exc:
                undone = _move_back(moved)
                _prune_empty(target)
                return [f"{album.album_name}: could not move {asset.local_path} ({exc.strerror or exc}); "
                        f"nothing was moved and the album stays in {old_root}." + undone]
            moved.append((source, destination, st))
            if (st.st_size, st.st_mtime_ns) == (asset.file_size, asset.mtime_ns):
                restat.append(asset)
        _record_new_times(store, album.id, target, restat)
        if kept:
            problems.append(f"{album.album_name}: {plural(kept, 'file')} already existed in the new folder and "
                            f"were left in {old_root}.")
        _prune_empty(old_root)
    store.update_album_sync(album.id, local_path=str(target))
    return problems


def _move_file(source: Path, destination: Path) -> None:
    try:
        os.rename(source, destination)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    # Another disk: copy beside the target under a hidden name, then give it the real name.
    partial = destination.with_name(f".{destination.name}.tray-sync-moving")
    try:
        shutil.copy2(source, partial)
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        if destination.exists():
            raise FileExistsError(errno.EEXIST, "a file appeared at the target meanwhile", str(destination))
        os.rename(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    source.unlink()


def _move_back(moved: list[tuple[Path, Path, os.stat_result]]) -> str:
    stuck = []
    for source, destination, st in reversed(moved):
        try:
            _move_file(destination, source)
            os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))  # as it was: not "changed by the user"
        except OSError:
            log.exception("Could not move %s back to %s", destination, source)
            stuck.append(str(destination))
    if not stuck:
        return ""
    return f" {plural(len(stuck), 'file')} could not be moved back and are in the new folder: {', '.join(stuck[:3])}."


def _record_new_times(store: Store, album_sync_id: int, root: Path, assets: list[SyncedAsset]) -> None:
    """A copy to another disk may not keep the exact modification time (FAT keeps 2 s); the moved,
    untouched files must not look changed by the user afterwards."""
    records = []
    for asset in assets:
        try:
            mtime_ns = (root / asset.local_path).stat().st_mtime_ns
        except OSError:
            continue
        if mtime_ns != asset.mtime_ns:
            records.append({
                "asset_id": asset.asset_id, "filename": asset.filename, "file_size": asset.file_size,
                "checksum": asset.checksum, "local_path": asset.local_path, "name_key": asset.name_key,
                "mtime_ns": mtime_ns, "state": asset.state, "remote_updated_at": asset.remote_updated_at,
                "is_external": asset.is_external,
            })
    store.record_assets(album_sync_id, records)


def _prune_empty(root: Path) -> None:
    if not root.is_dir():
        return
    for folder, _dirs, _files in sorted(os.walk(root), key=lambda item: -len(item[0])):
        try:
            Path(folder).rmdir()
        except OSError:
            continue


__all__ = ["AlbumChange", "AlbumRow", "ConnectionRow", "SettingsPresenter", "SettingsView", "move_album"]
