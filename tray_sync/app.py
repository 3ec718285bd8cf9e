"""The tray app's composition root: wires the tray icon, the scheduler, the sync worker and the windows.

Thread rule (see also :mod:`tray_sync.appstate`):

* Tk owns the main thread: one withdrawn ``Tk()`` root; every window is a ``Toplevel``.
* The pystray icon runs in its own daemon thread (``run_detached()`` on macOS).
* The scheduler thread runs the syncs. It and the engine's download threads never touch Tk or
  pystray: they update :class:`AppModel` (plain data under a lock) and post a "changed" marker
  to one queue. pystray menu callbacks post an action to the same queue.
* The Tk thread drains the queue every 50 ms (``after``): it builds one immutable
  :class:`AppSnapshot`, hands it to the tray (picture, tooltip, menu), to the notification policy
  and to the windows' listeners. Everything that acts (opening windows, pausing, quitting)
  happens there.
* An unhandled exception in any thread (``sys.excepthook``, ``threading.excepthook``, Tk
  callbacks) is logged and puts the icon in the error state: no silently dead thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tray_sync import APP_ID, APP_NAME
from tray_sync.appstate import ActivityEntry, AppSnapshot, OfferedAlbum, TrayState
from tray_sync.notify import NotificationPolicy, Notifier, plural, summarise
from tray_sync.scheduler import RunOutcome, ScheduleStatus, SyncScheduler, from_iso
from tray_sync.sync.errors import ConfigError, ErrorKind, TraySyncError
from tray_sync.sync.lock import BusyError, ProcessLock
from tray_sync.sync.progress import (
    AlbumResult,
    AlbumState,
    CancelToken,
    Phase,
    Progress,
    SyncReport,
    command_line_confirm_route,
    held_removals_note,
)
from tray_sync.sync.status import AlbumStatus, collect_status
from tray_sync.tray_presenter import Action, pause_until, present

if TYPE_CHECKING:
    import tkinter as tk

    from tray_sync.context import Context
    from tray_sync.sync.engine import SyncEngine

log = logging.getLogger(__name__)

PUMP_MS = 50
PROGRESS_POST_S = 0.25  # progress ticks reach the Tk thread at most 4 times a second
QUIT_JOIN_S = 2.0
ACTIVITY_KEPT = 50


# -- ports (what the controller drives; fakes in tests) ---------------------------------------


class TrayPort(Protocol):
    has_menu: bool

    def apply(self, view: Any) -> None: ...

    def stop(self, timeout: float = 3.0) -> bool: ...


class DialogPort(Protocol):
    def open_setup(self) -> None: ...

    def open_settings(self) -> None: ...

    def open_status(self) -> None: ...

    def close_all(self) -> None: ...


class _NoDialogs:
    """Until windows are attached (``TrayApp.dialogs``): a request to open one is logged, not lost silently."""

    def _missing(self, what: str) -> None:
        log.warning("The %s window was asked for before the windows were set up", what)

    def open_setup(self) -> None:
        self._missing("setup")

    def open_settings(self) -> None:
        self._missing("settings")

    def open_status(self) -> None:
        self._missing("status")

    def close_all(self) -> None:
        """No windows were ever opened."""


# -- classifying a finished sync ------------------------------------------------------------


@dataclass(frozen=True)
class RunVerdict:
    outcome: RunOutcome
    state: TrayState
    error: str | None = None


def classify(report: SyncReport, cancelled: bool) -> RunVerdict:
    """What a finished run means for the icon: synced, offline (not an error) or error (needs the user)."""
    if cancelled:
        return RunVerdict(RunOutcome.CANCELLED, TrayState.SYNCED)
    if report.errors:  # connection-level: the server, the key, the keyring
        if report.error_kind == ErrorKind.OFFLINE.value:
            return RunVerdict(RunOutcome.OFFLINE, TrayState.OFFLINE, report.errors[0])
        return RunVerdict(RunOutcome.ERROR, TrayState.ERROR, _with_more(report.errors[0], len(report.errors)))
    needs_user: list[str] = []
    offline: list[str] = []
    for album in report.albums:
        if album.state in (AlbumState.UNAVAILABLE, AlbumState.CANCELLED):
            continue  # an album gone from the server is a notice; cancelled is a pause
        # Held removals wait for the user's OK: like "changed locally", a notice (its own menu line and
        # one notification), not an error; an error as well would notify twice about one thing.
        held = held_removals_note(album.held_removals, album.album_name, GUI_CONFIRM_ROUTE)
        errors = tuple(error for error in gui_errors(album) if not (album.held_removals and error == held))
        if album.state is AlbumState.OFFLINE or album.error_kind == ErrorKind.OFFLINE.value:
            offline.append(f"{album.album_name}: {errors[0] if errors else 'server not reachable'}")
        elif album.state is not AlbumState.OK or album.failed or errors:
            detail = errors[0] if errors else f"{album.failed} files could not be downloaded"
            needs_user.append(f"{album.album_name}: {detail}")
    if needs_user:
        return RunVerdict(RunOutcome.ERROR, TrayState.ERROR, _with_more(needs_user[0], len(needs_user)))
    if offline:
        return RunVerdict(RunOutcome.OFFLINE, TrayState.OFFLINE, offline[0])
    return RunVerdict(RunOutcome.SUCCESS, TrayState.SYNCED)


# Where the app confirms removals the guard holds: the status window's button (the menu, the notification
# and the status window all show this, never the command line's --confirm-removals).
GUI_CONFIRM_ROUTE = "Review removals… in Status…"


def gui_errors(album: AlbumResult) -> tuple[str, ...]:
    """The album's errors as the app says them: held removals name the app's route, not the command line's."""
    if not album.held_removals:
        return album.errors
    for_cli = held_removals_note(album.held_removals, album.album_name, command_line_confirm_route(album.album_id))
    for_app = held_removals_note(album.held_removals, album.album_name, GUI_CONFIRM_ROUTE)
    return tuple(for_app if error == for_cli else error for error in album.errors)


def _with_more(first: str, count: int) -> str:
    return first if count <= 1 else f"{first} (and {count - 1} more problems, see Status…)"


def album_notices(albums: tuple[AlbumStatus, ...]) -> tuple[str, ...]:
    """The menu's notice lines, from the database; worded as the notification words them (notify.report_notices)."""
    notices = []
    for album in albums:
        if album.held_removals:
            notices.append(f"{plural(album.held_removals, 'removal')} held in {album.album_name}: "
                           "confirm them in Status…")
        if album.changed_locally:
            notices.append(f"{plural(len(album.changed_locally), 'file')} changed locally in {album.album_name}, "
                           "left untouched")
        if album.state == AlbumState.UNAVAILABLE.value:
            notices.append(f"Album {album.album_name} is no longer available on the server")
    return tuple(notices)


# -- the model (any thread) -------------------------------------------------------------------


class AppModel:
    """Everything the snapshot is made of, behind one lock. No Tk, no pystray."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.set_up = False
        self.schedule: ScheduleStatus | None = None
        self.progress: Progress | None = None
        self.last_report: SyncReport | None = None
        self.verdict: RunVerdict | None = None
        self.albums: tuple[AlbumStatus, ...] = ()
        self.offered: tuple[OfferedAlbum, ...] = ()
        self.crash: str | None = None
        self.busy_elsewhere = False  # the command line (another process) holds the sync lock
        self.activity: deque[ActivityEntry] = deque(maxlen=ACTIVITY_KEPT)

    def update(self, **fields: Any) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self, name, value)

    def note(self, text: str, *, is_error: bool = False) -> None:
        with self._lock:
            self.activity.appendleft(ActivityEntry(datetime.now(UTC), text, is_error))

    def snapshot(self) -> AppSnapshot:
        with self._lock:
            schedule = self.schedule
            verdict = self.verdict
            error: str | None = None
            elsewhere = False
            if not self.set_up:
                state = TrayState.NOT_SET_UP
            elif self.crash:
                state, error = TrayState.ERROR, self.crash
            elif schedule is not None and schedule.paused:
                state = TrayState.PAUSED
            elif schedule is not None and schedule.running:
                state = TrayState.SYNCING
            elif self.busy_elsewhere:  # photos are arriving, just not through us: not "up to date"
                state, elsewhere = TrayState.SYNCING, True
            elif verdict is not None:
                state, error = verdict.state, verdict.error
            else:
                state, error = self._state_from_albums()
            return AppSnapshot(
                state=state,
                progress=self.progress if state is TrayState.SYNCING else None,
                last_success_at=(schedule.last_success_at if schedule else None) or self._last_album_sync(),
                next_due_at=None if schedule is None or schedule.paused else schedule.next_due_at,
                paused_until=schedule.paused_until if schedule else None,
                error=error,
                last_report=self.last_report,
                albums=self.albums,
                # The database's notices, then the last run's own (a new album that could not be added yet).
                notices=album_notices(self.albums) + (self.last_report.notices if self.last_report else ()),
                offered_albums=self.offered,
                activity=tuple(self.activity),
                syncing_elsewhere=elsewhere,
            )

    def _last_album_sync(self) -> datetime | None:
        """When every album has synced at least once (the command line may have done it): the latest."""
        moments = [from_iso(album.last_sync_at) for album in self.albums]
        if not moments or any(moment is None for moment in moments):
            return None
        return max(m for m in moments if m is not None)

    def _state_from_albums(self) -> tuple[TrayState, str | None]:
        """Before the first run of this session: what the database says about the last one."""
        for album in self.albums:
            if album.state in (AlbumState.ERROR.value, AlbumState.FOLDER_GONE.value):
                return TrayState.ERROR, f"{album.album_name}: {album.last_error or 'last sync failed'}"
        if any(album.state == AlbumState.OFFLINE.value for album in self.albums):
            return TrayState.OFFLINE, "server not reachable at the last sync"
        return TrayState.SYNCED, None


# -- the controller (Tk thread, except where noted) ----------------------------------------------


class TrayApp:
    """The running app: implements :class:`~tray_sync.appstate.AppController`."""

    def __init__(
        self,
        ctx: Context,
        *,
        tray: TrayPort | None = None,
        notifier: Notifier | None = None,
        engine_factory: Callable[[], SyncEngine] | None = None,
        on_quit: Callable[[], None] = lambda: None,
        first_delay_s: float | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """``clock``/``monotonic`` reach the scheduler: tests drive its steps on a fake clock."""
        self.ctx = ctx
        self.tray = tray
        self.dialogs: DialogPort = _NoDialogs()
        self.notifier = notifier or Notifier(senders=[])
        self.model = AppModel()
        self._engine_factory = engine_factory or ctx.engine
        self._on_quit = on_quit
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._listeners: list[Callable[[AppSnapshot], None]] = []
        self._snapshot = AppSnapshot(TrayState.NOT_SET_UP)
        self._settings = ctx.store.settings()  # re-read in settings_changed, not on every progress tick
        self._policy = NotificationPolicy(lambda: self._settings)
        self._last_progress_post = 0.0
        self._last_phase: Phase | None = None
        self._quitting = False
        self._shut_down = False
        self.quit_requested = threading.Event()
        kwargs: dict[str, Any] = {}
        if first_delay_s is not None:
            from datetime import timedelta

            kwargs["first_delay"] = timedelta(seconds=first_delay_s)
        if clock is not None:
            kwargs["clock"] = clock
        if monotonic is not None:
            kwargs["monotonic"] = monotonic
        self.scheduler = SyncScheduler(self._run_sync, ctx.store, on_change=self._schedule_changed,
                                       on_error=lambda exc: self.report_crash("the sync scheduler", exc), **kwargs)
        self.refresh_from_store()
        self.model.update(schedule=self.scheduler.status())
        self._snapshot = self.model.snapshot()

    # -- posting (any thread) --

    def post_changed(self) -> None:
        self._queue.put(("changed",))

    def post_action(self, action: Action, argument: Any = None) -> None:
        """For tray menu callbacks: queue the action for the Tk thread."""
        self._queue.put(("action", action, argument))

    def post_call(self, function: Callable[[], None]) -> None:
        self._queue.put(("call", function))

    # -- the Tk thread's pump --

    def pump(self) -> bool:
        """Handle everything queued; True when a new snapshot went out."""
        changed = False
        while not self._shut_down:  # after Quit, nothing may touch the stopped icon or the closed windows
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            kind = item[0]
            if kind == "changed":
                changed = True
            elif kind == "action":
                self._guarded(lambda item=item: self.handle_action(item[1], item[2]))
            elif kind == "call":
                self._guarded(item[1])
        if changed and not self._shut_down:
            self.publish()
        return changed and not self._shut_down

    def publish(self) -> AppSnapshot:
        snapshot = self.model.snapshot()
        self._snapshot = snapshot
        if self.tray is not None:
            self._guarded(lambda: self.tray.apply(present(snapshot, datetime.now(UTC))))  # type: ignore[union-attr]
        for notification in self._policy.on_snapshot(snapshot):
            self.notifier.send(notification)
        for listener in list(self._listeners):
            self._guarded(lambda listener=listener: listener(snapshot))
        return snapshot

    def _guarded(self, function: Callable[[], Any]) -> None:
        try:
            function()
        except Exception as exc:
            self.report_crash("the main thread", exc)

    @property
    def snapshot(self) -> AppSnapshot:
        return self._snapshot

    # -- menu actions (Tk thread) --

    def handle_action(self, action: Action, argument: Any = None) -> None:
        log.debug("menu action %s", action.value)
        if action is Action.SYNC_NOW:
            self.sync_now()
        elif action in (Action.PAUSE_HOUR, Action.PAUSE_TOMORROW, Action.PAUSE_INDEFINITE):
            self.pause(pause_until(action, datetime.now(UTC)))
        elif action is Action.RESUME:
            self.resume()
        elif action is Action.OPEN_FOLDER and isinstance(argument, str):
            self.open_folder(argument)
        elif action is Action.ADD_OFFERED and isinstance(argument, OfferedAlbum):
            self.add_offered_album(argument, str(self.default_destination(argument)))
        elif action is Action.DISMISS_OFFERED and isinstance(argument, OfferedAlbum):
            self.dismiss_offered_album(argument)
        elif action is Action.STATUS:
            self.open_status()
        elif action is Action.SETTINGS:
            self.open_settings()
        elif action is Action.SETUP:
            self.dialogs.open_setup()
        elif action is Action.OPEN_LOG:
            self.open_log()
        elif action is Action.QUIT:
            self.quit()

    # -- AppController --

    def sync_now(self) -> None:
        if not self.model.set_up:
            self.dialogs.open_setup()
            return
        self.scheduler.sync_now()

    def pause(self, until: datetime | None) -> None:
        if until is not None and until.tzinfo is None:
            until = until.astimezone()  # a naive time from a window means local time
        self.scheduler.pause(until)
        self.model.note(f"Paused until {until.astimezone():%a %H:%M}" if until else "Paused until resumed")
        self.post_changed()

    def resume(self) -> None:
        self.scheduler.resume()
        self.model.note("Resumed")
        self.post_changed()

    def open_folder(self, path: str) -> None:
        open_path(Path(path))

    def open_log(self) -> None:
        log_file = self.ctx.paths.log_file
        open_path(log_file if log_file.exists() else log_file.parent)

    def open_status(self) -> None:
        self.dialogs.open_status()

    def open_settings(self) -> None:
        self.dialogs.open_settings()

    def settings_changed(self) -> None:
        was_set_up = self.model.set_up
        self._settings = self.ctx.store.settings()
        self.refresh_from_store()
        self.scheduler.reload_settings()
        if not self.ctx.debug:
            level = str(self.ctx.store.get_setting("log_level") or "INFO").upper()
            logging.getLogger().setLevel(getattr(logging, level, logging.INFO))
        if self.model.set_up and not was_set_up:
            self.model.note("Set up: first sync starting")
            self.scheduler.sync_now()
        self.post_changed()

    def add_offered_album(self, offer: OfferedAlbum, destination: str) -> None:
        from tray_sync.sync.engine import check_destination

        store = self.ctx.store
        target = Path(destination).expanduser().resolve()
        try:
            check_destination(store, target)
            target.mkdir(parents=True, exist_ok=True)
        except (TraySyncError, OSError) as exc:
            message = exc.message if isinstance(exc, TraySyncError) else f"cannot create {target}: {exc.strerror}"
            self.model.note(f"{offer.label} not added: {message}", is_error=True)
            log.warning("Offered album %r not added: %s", offer.name, message)
        else:
            store.add_album_sync(offer.connection_id, offer.album_id, offer.name, str(target))
            store.set_album_offered(offer.connection_id, offer.album_id, False)
            self.model.note(f"Added {offer.label} -> {target}")
            self.refresh_from_store()
            self.scheduler.sync_now()
        self.post_changed()

    def dismiss_offered_album(self, offer: OfferedAlbum) -> None:
        self.ctx.store.set_album_offered(offer.connection_id, offer.album_id, False)
        self.refresh_from_store()
        self.post_changed()

    def subscribe(self, listener: Callable[[AppSnapshot], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        listener(self._snapshot)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def quit(self) -> None:
        """Cancel a running sync (within a second), stop the icon and the threads, end the main loop."""
        if self._quitting:
            return
        self._quitting = True
        log.info("Quitting")
        self.quit_requested.set()
        self.shutdown()
        self._on_quit()

    def shutdown(self) -> None:
        """Stop the worker, the windows and the icon (idempotent: Quit and the main loop's end both call it)."""
        if self._shut_down:
            return
        self._shut_down = True
        if not self.scheduler.stop(QUIT_JOIN_S):
            log.warning("the sync worker did not stop within %.0f s", QUIT_JOIN_S)
        try:
            self.dialogs.close_all()
        except Exception:
            log.exception("closing the windows failed")
        if self.tray is not None:
            self.tray.stop(QUIT_JOIN_S)
        self.notifier.close()

    # -- helpers --

    def start(self) -> None:
        self.scheduler.start()
        self.publish()

    def refresh_from_store(self) -> None:
        """Re-read albums, offers and whether there is anything to sync (store reads: any thread)."""
        store = self.ctx.store
        connections = store.connections()
        summary = collect_status(store)
        offered = tuple(
            OfferedAlbum(connection.id, album_id, name, connection.name if len(connections) > 1 else "")
            for connection in connections
            for album_id, name in store.albums_to_offer(connection.id)
        )
        self.model.update(set_up=bool(connections) and bool(summary.albums), albums=summary.albums, offered=offered)

    def default_destination(self, offer: OfferedAlbum) -> Path:
        """The folder chosen for new albums in setup (else Pictures/Immich), "Name (2)" when taken."""
        from tray_sync.dialogs.common import offered_album_folder

        return offered_album_folder(self.ctx.store, offer.connection_id, offer.name)

    def report_crash(self, where: str, exc: BaseException) -> None:
        """An unhandled exception anywhere: log it and show the error state (any thread)."""
        log.critical("Unhandled error in %s", where, exc_info=(type(exc), exc, exc.__traceback__))
        self.model.update(crash=f"internal error in {where} ({type(exc).__name__}); Open log shows the details")
        self.model.note(f"Internal error in {where}: {type(exc).__name__}", is_error=True)
        self.post_changed()

    # -- the worker side (scheduler thread) --

    def _schedule_changed(self, status: ScheduleStatus) -> None:
        self.model.update(schedule=status)
        self.post_changed()

    def _on_progress(self, progress: Progress) -> None:
        self.model.update(progress=progress)
        now = time.monotonic()
        if progress.phase is not self._last_phase or now - self._last_progress_post >= PROGRESS_POST_S:
            self._last_phase, self._last_progress_post = progress.phase, now
            self.post_changed()

    def _run_sync(self, token: CancelToken) -> RunOutcome:
        self.refresh_from_store()
        if not self.model.set_up:
            return RunOutcome.SKIPPED
        self.model.update(progress=Progress(Phase.CHECKING))
        lock = ProcessLock(self.ctx.paths.runtime_dir / "sync.lock")
        try:
            lock.acquire()
        except BusyError:
            if not self.model.busy_elsewhere:
                self.model.note("Another tray-sync (the command line?) is syncing; trying again in a minute")
            self.model.update(busy_elsewhere=True, progress=None)
            return RunOutcome.BUSY
        self.model.update(busy_elsewhere=False)
        try:
            report = self._engine_factory().sync(cancel=token, progress=self._on_progress)
        except TraySyncError as exc:
            report = SyncReport(errors=(exc.message,), error_kind=exc.kind.value)
        finally:
            lock.release()
        verdict = classify(report, token.cancelled)
        self.refresh_from_store()
        if verdict.outcome is RunOutcome.CANCELLED:
            self.model.note("Sync paused; it continues where it stopped")
            self.model.update(progress=None)
            return verdict.outcome
        self.model.update(last_report=report, verdict=verdict, progress=None,
                          crash=None if verdict.outcome is RunOutcome.SUCCESS else self.model.crash)
        if verdict.error:
            self.model.note(verdict.error, is_error=verdict.state is TrayState.ERROR)
        else:
            self.model.note(summarise(report) or "Up to date")
        return verdict.outcome


# -- desktop helpers ----------------------------------------------------------------------------


def open_path(path: Path) -> None:
    """Open a folder or file in the desktop's own app; failures are logged, never raised."""
    try:
        if sys.platform == "win32":
            os.startfile(path)  # type: ignore[attr-defined]
        elif sys.platform == "darwin":
            subprocess.Popen(["open", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            subprocess.Popen(["xdg-open", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        log.warning("Cannot open %s: %s", path, exc)


def _notification_icon(ctx: Context) -> Path | None:
    from tray_sync.icons import state_icon

    target = ctx.paths.runtime_dir / "notification-icon.png"
    try:
        state_icon(TrayState.SYNCED, None, 128).save(target)
    except OSError:
        return None
    return target


def _show_tray_hint_once(root: tk.Tk, app: TrayApp) -> None:
    """pystray's xorg backend has no menu: say once what to install (the status window opens too)."""
    from tray_sync.tray import LINUX_TRAY_HINT

    store = app.ctx.store
    log.warning("No tray menu on this desktop: %s", " ".join(LINUX_TRAY_HINT.split()))
    if store.get_setting("tray_hint_shown"):
        return
    store.set_setting("tray_hint_shown", True)
    import tkinter as tk
    from tkinter import ttk

    window = tk.Toplevel(root)
    window.title(f"{APP_NAME}: tray menu unavailable")
    window.geometry("+60+60")
    frame = ttk.Frame(window, padding=16)
    frame.pack(fill="both", expand=True)
    text = tk.Text(frame, width=80, height=13, wrap="word", relief="flat", borderwidth=0, font="TkDefaultFont",
                   background=ttk.Style(root).lookup("TFrame", "background") or "white")
    text.insert("1.0", LINUX_TRAY_HINT)
    text.configure(state="disabled")  # still selectable, so the commands can be copied
    text.pack(fill="both", expand=True)
    ttk.Button(frame, text="OK", command=window.destroy).pack(anchor="e", pady=(12, 0))


# -- the entry point ------------------------------------------------------------------------------


def run_app(ctx: Context, *, show_status: bool = False) -> int:
    """Start the tray app for ``ctx``'s profile (set up or not); returns the exit code.

    ``show_status`` opens the status window at start (the demo does, so a newcomer sees the sync).
    """
    from tray_sync.single_instance import InstanceGuard

    guard = InstanceGuard(ctx.paths)
    if not guard.claim():
        if guard.signal_show():
            ctx.out(f"{APP_NAME} is already running with this profile; its status window is now open.")
            return 0
        ctx.err(f"{APP_NAME} is already running with this profile but did not answer; see {ctx.paths.log_file}.")
        return 1
    try:
        return _run(ctx, guard, show_status)
    finally:
        guard.close()


def _run(ctx: Context, guard: Any, show_status: bool = False) -> int:
    import tkinter as tk

    from tray_sync.tray import NO_TRAY_HINT, TrayIcon, tray_host_available

    try:
        root = tk.Tk(className=APP_ID)
    except tk.TclError as exc:
        raise ConfigError(f"Cannot open a window on this display ({exc}). Check DISPLAY, or use "
                          "`tray-sync sync` without a desktop.") from None
    app: TrayApp | None = None
    hooks = previous_signals = None
    try:
        root.withdraw()
        root.title(APP_NAME)
        _set_window_icon(root)
        tray = TrayIcon(lambda action, argument: app.post_action(action, argument) if app else None)
        notifier = Notifier(pystray_notify=tray.notify, icon_path=_notification_icon(ctx))
        app = TrayApp(ctx, tray=tray, notifier=notifier, on_quit=root.quit)
        app.dialogs = _make_dialogs(root, app, ctx)
        hooks = _install_crash_hooks(app, root)
        previous_signals = _install_signal_handlers(app)
        try:
            tray.start(present(app.model.snapshot(), datetime.now(UTC)))
        except Exception as exc:  # no tray at all: the status window is still a way in
            log.exception("The tray icon could not be created")
            ctx.err(f"tray-sync: no tray icon ({type(exc).__name__}); the status window opens instead.")
            app.tray = None
        app.start()
        guard.listen(lambda: app.post_call(app.open_status) if app else None)
        host = tray_host_available()
        if not host:
            log.warning("%s", NO_TRAY_HINT)
            ctx.err(f"tray-sync: {NO_TRAY_HINT}")
        if not app.model.set_up:
            app.dialogs.open_setup()
        elif app.tray is None or not tray.has_menu or not host:
            if app.tray is not None and not tray.has_menu:
                _show_tray_hint_once(root, app)
            app.open_status()
        elif show_status:
            app.open_status()

        def pump() -> None:
            assert app is not None
            app.pump()
            if not app.quit_requested.is_set():
                root.after(PUMP_MS, pump)

        root.after(PUMP_MS, pump)
        root.mainloop()
    finally:
        if app is not None:
            app.quit_requested.set()
            app.shutdown()
        if previous_signals is not None:
            _restore_signal_handlers(previous_signals)
        if hooks is not None:
            _restore_crash_hooks(hooks)
        with contextlib.suppress(tk.TclError):
            root.destroy()
    log.info("Stopped")
    return 0


def _make_dialogs(root: tk.Tk, app: TrayApp, ctx: Context) -> DialogPort:
    from tray_sync.dialogs import DialogHost

    return DialogHost(root, app, ctx)  # type: ignore[no-any-return]


def _set_window_icon(root: tk.Tk) -> None:
    try:
        from PIL import ImageTk

        from tray_sync.icons import base_icon

        photos = [ImageTk.PhotoImage(base_icon().resize((size, size)), master=root) for size in (16, 32, 64)]
        root.iconphoto(True, *photos)
        root._tray_sync_icons = photos  # type: ignore[attr-defined]  # keep them alive
    except Exception:
        log.debug("window icon not set", exc_info=True)


def _install_crash_hooks(app: TrayApp, root: tk.Tk) -> tuple[Any, Any]:
    previous = (sys.excepthook, threading.excepthook)

    def on_exception(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            app.post_action(Action.QUIT)
            return
        app.report_crash("the main thread", exc.with_traceback(tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        app.report_crash(f"thread {name}", args.exc_value)
        if name == "tray":  # the icon is gone with its thread: the status window is the way in now
            app.post_call(app.open_status)

    def on_tk_exception(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        app.report_crash("a window", exc.with_traceback(tb))

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception
    root.report_callback_exception = on_tk_exception  # type: ignore[method-assign,assignment]
    return previous


def _restore_crash_hooks(previous: tuple[Any, Any]) -> None:
    sys.excepthook, threading.excepthook = previous


def _install_signal_handlers(app: TrayApp) -> dict[int, Any]:
    """SIGTERM/SIGINT quit cleanly (the 50 ms pump gives Python the chance to run the handler)."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for number in (signal.SIGTERM, signal.SIGINT):
        previous[number] = signal.getsignal(number)
        signal.signal(number, lambda signum, frame: app.post_action(Action.QUIT))
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


