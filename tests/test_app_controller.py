"""The app controller without a display: fake tray, fake windows, scripted engine, real store.

The controller's Tk-thread side is driven by calling ``pump()`` (what ``after()`` does in the app);
the scheduler runs in its real thread, and waits are bounded polls on observable state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tray_sync.app import TrayApp, classify
from tray_sync.appstate import AppSnapshot, OfferedAlbum, TrayState
from tray_sync.context import Context
from tray_sync.notify import Notification, NotificationPolicy, Notifier
from tray_sync.paths import AppPaths
from tray_sync.scheduler import RunOutcome
from tray_sync.single_instance import InstanceGuard
from tray_sync.sync.lock import ProcessLock
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
from tray_sync.tray_presenter import Action, TrayView

# -- fakes ------------------------------------------------------------------------------------


class FakeTray:
    has_menu = True

    def __init__(self) -> None:
        self.views: list[TrayView] = []
        self.stopped = False

    def apply(self, view: TrayView) -> None:
        self.views.append(view)

    def stop(self, timeout: float = 3.0) -> bool:
        self.stopped = True
        return True


class FakeDialogs:
    def __init__(self) -> None:
        self.opened: list[str] = []
        self.closed = False

    def open_setup(self) -> None:
        self.opened.append("setup")

    def open_settings(self) -> None:
        self.opened.append("settings")

    def open_status(self) -> None:
        self.opened.append("status")

    def close_all(self) -> None:
        self.closed = True


def album_result(name: str = "Family 2024", **fields: Any) -> AlbumResult:
    return AlbumResult(album_sync_id=1, album_id="album-1", album_name=name, path="/x", **fields)


class ScriptedEngine:
    """Plays the scripted reports in turn; ``block`` makes a run wait for its cancel token."""

    def __init__(self, *reports: SyncReport) -> None:
        self.reports = list(reports)
        self.runs = 0
        self.block = False
        self.gate: threading.Event | None = None  # when set: hold the run until the test opens it
        self.started = threading.Event()
        self.cancelled_after: list[float] = []

    def __call__(self) -> ScriptedEngine:  # the engine factory
        return self

    def sync(self, *, cancel: CancelToken, progress: Callable[[Progress], None], **_: Any) -> SyncReport:
        self.runs += 1
        progress(Progress(Phase.DOWNLOADING, "Family 2024", files_done=1, files_total=4, bytes_done=10,
                          bytes_total=40))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.block:
            began = time.monotonic()
            cancel.wait(20)
            self.cancelled_after.append(time.monotonic() - began)
        return self.reports.pop(0) if self.reports else SyncReport((album_result(),))


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def __call__(self, notification: Notification, icon: Path | None) -> None:
        self.sent.append(notification)


@pytest.fixture
def ctx(home: Path, memory_keyring: Any) -> Context:
    context = Context(paths=AppPaths.resolve(home))
    yield context  # type: ignore[misc]
    context.close()


def set_up_profile(ctx: Context, tmp_path: Path) -> None:
    store = ctx.store
    connection = store.save_connection(name="home", server_url="http://immich.test", api_url="http://immich.test/api",
                                       account="home@immich.test", server_version="3.1.0")
    store.add_album_sync(connection.id, "album-1", "Family 2024", str(tmp_path / "photos" / "Family 2024"))


def make_app(ctx: Context, engine: ScriptedEngine | None = None, *, sender: RecordingSender | None = None,
             first_delay_s: float = 3600) -> tuple[TrayApp, FakeTray, FakeDialogs]:
    tray, dialogs = FakeTray(), FakeDialogs()
    notifier = Notifier(senders=[sender] if sender else [])
    app = TrayApp(ctx, tray=tray, notifier=notifier, engine_factory=engine or ScriptedEngine(),
                  first_delay_s=first_delay_s)
    app.dialogs = dialogs
    return app, tray, dialogs


def pump_until(app: TrayApp, predicate: Callable[[AppSnapshot], bool], timeout: float = 5.0) -> AppSnapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.pump()
        if predicate(app.snapshot):
            return app.snapshot
        time.sleep(0.01)
    raise AssertionError(f"timed out; last snapshot {app.snapshot}")


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


# -- tests ----------------------------------------------------------------------------------------


def test_a_profile_not_set_up_shows_not_set_up_and_sync_now_opens_setup(ctx: Context) -> None:
    app, tray, dialogs = make_app(ctx)
    try:
        app.start()
        assert app.snapshot.state is TrayState.NOT_SET_UP
        assert tray.views[-1].state is TrayState.NOT_SET_UP
        app.post_action(Action.SYNC_NOW)
        app.pump()
        assert dialogs.opened == ["setup"]
    finally:
        app.shutdown()


def test_a_sync_goes_syncing_then_synced_and_notifies_once(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    engine = ScriptedEngine(SyncReport((album_result(downloaded=12, bytes=1000),)), SyncReport((album_result(),)))
    engine.gate = threading.Event()
    sender = RecordingSender()
    app, tray, _ = make_app(ctx, engine, sender=sender, first_delay_s=0)
    seen: list[AppSnapshot] = []
    app.subscribe(seen.append)
    try:
        app.start()
        syncing = pump_until(app, lambda s: s.state is TrayState.SYNCING and s.progress is not None
                             and s.progress.phase is Phase.DOWNLOADING)
        assert syncing.progress is not None and syncing.progress.files_total == 4
        assert tray.views[-1].state is TrayState.SYNCING
        assert tray.views[-1].tooltip == "Immich Sync: syncing 1/4, 30 B left"
        engine.gate.set()
        pump_until(app, lambda s: s.state is TrayState.SYNCED and s.last_report is not None)
        assert seen[0].state is TrayState.SYNCED and TrayState.SYNCING in [s.state for s in seen]
        assert tray.views[-1].tooltip.startswith("Immich Sync: up to date, last sync")
        assert app.snapshot.last_success_at is not None
        assert ctx.store.get_setting("last_success_at") is not None
        assert app.snapshot.activity[0].text == "12 new photos in Family 2024"
        wait_for(lambda: len(sender.sent) == 1)
        assert sender.sent[0].body == "12 new photos in Family 2024"

        app.sync_now()  # a no-op sync: no notification
        pump_until(app, lambda s: s.state is TrayState.SYNCED and engine.runs == 2
                   and s.activity[0].text == "Up to date")
        time.sleep(0.1)
        assert len(sender.sent) == 1
    finally:
        app.shutdown()
    assert tray.stopped


def test_pause_stops_a_running_sync_within_a_second_and_resume_continues(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    engine = ScriptedEngine()
    engine.block = True
    app, _, _ = make_app(ctx, engine, first_delay_s=0)
    try:
        app.start()
        assert engine.started.wait(5)
        pump_until(app, lambda s: s.state is TrayState.SYNCING)
        app.handle_action(Action.PAUSE_HOUR)
        wait_for(lambda: bool(engine.cancelled_after), timeout=1.0)
        assert engine.cancelled_after[0] < 1.0
        paused = pump_until(app, lambda s: s.state is TrayState.PAUSED and not app.scheduler.status().running)
        assert paused.paused_until is not None
        assert paused.paused_until - datetime.now(UTC) > timedelta(minutes=59)
        assert ctx.store.get_setting("paused") is True
        engine.block = False
        engine.started.clear()
        app.handle_action(Action.RESUME)
        assert engine.started.wait(5), "the interrupted sync did not continue after resume"
        pump_until(app, lambda s: s.state is TrayState.SYNCED and s.last_report is not None)
    finally:
        app.shutdown()


def test_quit_during_a_sync_cancels_it_within_a_second(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    engine = ScriptedEngine()
    engine.block = True
    quits: list[bool] = []
    app, tray, _ = make_app(ctx, engine, first_delay_s=0)
    app._on_quit = lambda: quits.append(True)
    app.start()
    assert engine.started.wait(5)
    began = time.monotonic()
    app.quit()
    assert time.monotonic() - began < 1.5
    assert engine.cancelled_after and engine.cancelled_after[0] < 1.0
    assert quits == [True] and tray.stopped and not app.scheduler.alive


def test_an_error_is_shown_and_notified_once_while_it_persists(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    bad_key = "The server rejected the API key (401): create a new key in Immich under Account settings."
    report = SyncReport((album_result(state=AlbumState.ERROR, errors=(bad_key,), error_kind="auth"),),
                        errors=(f"home: {bad_key}",), error_kind="auth")
    engine = ScriptedEngine(report, report)
    sender = RecordingSender()
    app, tray, _ = make_app(ctx, engine, sender=sender, first_delay_s=0)
    try:
        app.start()
        error = pump_until(app, lambda s: s.state is TrayState.ERROR)
        assert error.error == f"home: {bad_key}"
        assert tray.views[-1].tooltip.startswith("Immich Sync: needs attention: home: The server rejected")
        app.sync_now()
        pump_until(app, lambda s: s.state is TrayState.ERROR and engine.runs == 2)
        wait_for(lambda: len(sender.sent) >= 1)
        time.sleep(0.1)
        assert [n.is_error for n in sender.sent] == [True]
    finally:
        app.shutdown()


def test_offline_is_its_own_state_and_not_notified(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    report = SyncReport((album_result(state=AlbumState.OFFLINE, errors=("cannot reach",), error_kind="offline"),),
                        errors=("home: cannot reach http://immich.test",), error_kind="offline")
    sender = RecordingSender()
    app, _, _ = make_app(ctx, ScriptedEngine(report), sender=sender, first_delay_s=0)
    try:
        app.start()
        offline = pump_until(app, lambda s: s.state is TrayState.OFFLINE)
        assert offline.next_due_at is not None
        assert app.scheduler.status().offline_retries == 1
        assert sender.sent == []
    finally:
        app.shutdown()


def test_offline_shows_its_retry_and_recovers_by_itself(ctx: Context, tmp_path: Path) -> None:
    """The scheduler stepped by the test on a fake clock (no thread, no sleeps): offline, backoff, back to normal."""
    from tray_sync.scheduler import BACKOFF_START

    set_up_profile(ctx, tmp_path)
    offline = SyncReport((album_result(state=AlbumState.OFFLINE, errors=("timed out",), error_kind="offline"),),
                         errors=("home: cannot reach http://immich.test",), error_kind="offline")
    engine = ScriptedEngine(offline, SyncReport((album_result(downloaded=2),)))
    now = [datetime.now(UTC).replace(microsecond=0)]
    mono = [1000.0]

    def advance(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)
        mono[0] += seconds

    tray = FakeTray()
    app = TrayApp(ctx, tray=tray, engine_factory=engine, first_delay_s=5, clock=lambda: now[0],
                  monotonic=lambda: mono[0])
    try:
        advance(5)
        assert app.scheduler.step()
        app.pump()
        retry_at = now[0] + BACKOFF_START
        assert app.snapshot.state is TrayState.OFFLINE and app.snapshot.next_due_at == retry_at
        tooltip = tray.views[-1].tooltip  # (around midnight the time reads "tomorrow 00:00")
        assert tooltip.startswith("Immich Sync: offline, server not reachable; retrying at ")
        assert tooltip.endswith(f"{retry_at.astimezone():%H:%M}")
        assert tray.views[-1].state is TrayState.OFFLINE
        advance(BACKOFF_START.total_seconds() - 1)
        assert not app.scheduler.step()
        advance(1)
        assert app.scheduler.step()  # nobody clicked anything
        app.pump()
        assert app.snapshot.state is TrayState.SYNCED and app.scheduler.status().offline_retries == 0
        tooltip = tray.views[-1].tooltip
        assert tooltip.startswith("Immich Sync: up to date, last sync ")
        assert tooltip.endswith(f"{now[0].astimezone():%H:%M}")
        assert app.snapshot.next_due_at == now[0] + timedelta(minutes=30)
    finally:
        app.shutdown()


def test_the_command_line_holding_the_sync_lock_makes_the_app_wait(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    engine = ScriptedEngine()
    app, tray, _ = make_app(ctx, engine)
    with ProcessLock(ctx.paths.runtime_dir / "sync.lock"):
        assert app._run_sync(CancelToken()) is RunOutcome.BUSY
        app.post_changed()
        app.pump()
        # Photos are arriving through the command line: the icon must not claim "up to date" meanwhile.
        assert app.snapshot.state is TrayState.SYNCING and app.snapshot.syncing_elsewhere
        assert tray.views[-1].tooltip == "Immich Sync: another tray-sync (the command line) is syncing"
        assert tray.views[-1].menu[0].label == tray.views[-1].tooltip
        assert app._run_sync(CancelToken()) is RunOutcome.BUSY
        app.post_changed()
        app.pump()
        assert [e.text for e in app.snapshot.activity].count(
            "Another tray-sync (the command line?) is syncing; trying again in a minute") == 1  # said once
    assert engine.runs == 0
    assert app._run_sync(CancelToken()) is RunOutcome.SUCCESS
    app.post_changed()
    app.pump()
    assert app.snapshot.state is TrayState.SYNCED and not app.snapshot.syncing_elsewhere
    app.shutdown()


def test_menu_actions_reach_the_controller(ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_up_profile(ctx, tmp_path)
    opened: list[Path] = []
    monkeypatch.setattr("tray_sync.app.open_path", opened.append)
    quits: list[bool] = []
    app, tray, dialogs = make_app(ctx)
    app._on_quit = lambda: quits.append(True)
    app.start()
    for action, argument in [(Action.STATUS, None), (Action.SETTINGS, None), (Action.OPEN_FOLDER, "/photos/x"),
                             (Action.OPEN_LOG, None)]:
        app.post_action(action, argument)
    app.pump()
    assert dialogs.opened == ["status", "settings"]
    assert opened[0] == Path("/photos/x") and opened[1] in (ctx.paths.log_file, ctx.paths.log_dir)
    app.post_action(Action.PAUSE_INDEFINITE)
    app.pump()
    assert app.snapshot.state is TrayState.PAUSED and app.snapshot.paused_until is None
    assert tray.views[-1].menu[2].label == "Sync now" and not tray.views[-1].menu[2].enabled
    app.post_action(Action.QUIT)
    app.pump()
    assert quits == [True] and tray.stopped and dialogs.closed
    assert not app.scheduler.alive
    shown = len(tray.views)
    app.post_changed()  # a worker's last word after Quit must not reach the stopped icon
    assert not app.pump() and len(tray.views) == shown


def test_new_albums_offered_from_the_menu_can_be_added_or_dismissed(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    store = ctx.store
    connection = store.connections()[0]
    # Offered albums go to the folder chosen for new albums in setup, not next to some other album.
    store.update_connection(connection.id, new_album_policy="ask", new_album_root=str(tmp_path / "photos"))
    store.mark_albums_seen(connection.id, [("album-2", "Summer 2026"), ("album-3", "Work")])
    store.set_album_offered(connection.id, "album-2", True)
    store.set_album_offered(connection.id, "album-3", True)
    engine = ScriptedEngine()
    app, tray, _ = make_app(ctx, engine)
    app.start()
    offers = app.snapshot.offered_albums
    assert [o.name for o in offers] == ["Summer 2026", "Work"]
    assert any(e.label == "New albums on the server (2)" for e in tray.views[-1].menu)
    app.post_action(Action.ADD_OFFERED, offers[0])
    app.post_action(Action.DISMISS_OFFERED, offers[1])
    app.pump()
    added = [a for a in store.album_syncs() if a.album_id == "album-2"]
    assert added and Path(added[0].local_path) == (tmp_path / "photos" / "Summer 2026").resolve()
    assert Path(added[0].local_path).is_dir()
    assert app.snapshot.offered_albums == ()
    wait_for(lambda: engine.runs == 1)  # the new album syncs right away
    app.shutdown()


def test_offers_name_their_server_when_there_are_two(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    store = ctx.store
    home = store.connections()[0]
    parents = store.save_connection(name="parents", server_url="https://photos.parents.example",
                                    api_url="https://photos.parents.example/api", account="parents", server_version="")
    for connection, album_id, name in ((home, "h-1", "Summer 2026"), (parents, "p-1", "Summer 2026")):
        store.update_connection(connection.id, new_album_policy="ask")
        store.mark_albums_seen(connection.id, [(album_id, name)])
        store.set_album_offered(connection.id, album_id, True)
    app, _, _ = make_app(ctx, ScriptedEngine())
    app.start()
    assert sorted(o.label for o in app.snapshot.offered_albums) == [
        f"Summer 2026 (on {home.name})", "Summer 2026 (on parents)"]
    app.shutdown()


def test_adding_an_offered_album_into_another_albums_folder_is_refused(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    app, _, _ = make_app(ctx)
    app.start()
    inside = tmp_path / "photos" / "Family 2024" / "nested"
    app.add_offered_album(OfferedAlbum(1, "album-9", "Nested"), str(inside))
    app.pump()
    assert all(a.album_id != "album-9" for a in ctx.store.album_syncs())
    assert app.snapshot.activity[0].is_error and "Nested not added" in app.snapshot.activity[0].text
    app.shutdown()


def test_an_unhandled_exception_shows_the_error_state(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    app, tray, _ = make_app(ctx)
    app.start()
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        threading.Thread(target=app.report_crash, args=("thread worker", exc)).start()
    snapshot = pump_until(app, lambda s: s.state is TrayState.ERROR)
    assert "internal error in thread worker (RuntimeError)" in (snapshot.error or "")
    assert tray.views[-1].state is TrayState.ERROR
    app.shutdown()


def test_a_listener_that_fails_does_not_stop_the_others(ctx: Context) -> None:
    app, _, _ = make_app(ctx)
    got: list[AppSnapshot] = []

    def broken(snapshot: AppSnapshot) -> None:
        if got:
            raise ValueError("window gone")

    app.subscribe(broken)
    unsubscribe = app.subscribe(got.append)
    assert len(got) == 1  # the current snapshot, at once
    app.publish()
    assert len(got) == 2
    unsubscribe()
    app.publish()
    assert len(got) == 2
    app.shutdown()


def test_settings_changed_starts_the_first_sync_once_set_up(ctx: Context, tmp_path: Path) -> None:
    engine = ScriptedEngine()
    app, _, _ = make_app(ctx, engine)
    app.start()
    assert app.snapshot.state is TrayState.NOT_SET_UP
    set_up_profile(ctx, tmp_path)
    app.settings_changed()
    app.pump()
    assert app.snapshot.state is not TrayState.NOT_SET_UP
    wait_for(lambda: engine.runs == 1)
    pump_until(app, lambda s: s.state is TrayState.SYNCED and s.last_report is not None)
    app.shutdown()


def test_held_removals_changed_files_and_a_gone_album_reach_the_menu_and_one_notification(
        ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    store = ctx.store
    connection = store.connections()[0]
    family = store.album_syncs()[0]
    trips = store.add_album_sync(connection.id, "album-2", "Trips", str(tmp_path / "photos" / "Trips"))
    for number, state in enumerate(("removal_held", "removal_held", "changed_locally", "synced")):
        store.record_asset(family.id, asset_id=f"a{number}", filename=f"IMG_{number}.jpg", file_size=10,
                           checksum="x", local_path=f"IMG_{number}.jpg", name_key=f"img_{number}.jpg", mtime_ns=1,
                           remote_updated_at=None, state=state)
    gone = "The album is no longer available on the server (deleted, or no longer shared with you)."
    store.update_album_sync(trips.id, state=AlbumState.UNAVAILABLE.value, last_error=gone)
    report = SyncReport((
        album_result(held_removals=2, changed_locally=("IMG_2.jpg",)),
        AlbumResult(album_sync_id=trips.id, album_id="album-2", album_name="Trips", path="/t",
                    state=AlbumState.UNAVAILABLE, errors=(gone,)),
    ))
    engine = ScriptedEngine(report, SyncReport(report.albums))  # equal, not the same: a new sync
    sender = RecordingSender()
    app, tray, _ = make_app(ctx, engine, sender=sender, first_delay_s=0)
    try:
        app.start()
        done = pump_until(app, lambda s: s.state is TrayState.SYNCED and s.last_report is not None)
        assert done.notices == ("2 removals held in Family 2024: confirm them in Status…",
                                "1 file changed locally in Family 2024, left untouched",
                                "Album Trips is no longer available on the server")
        view = tray.views[-1]
        assert [e.label for e in view.menu[1:4]] == list(done.notices)  # a line each, under the status line
        assert not any(e.enabled for e in view.menu[:4])
        assert view.tooltip.endswith("(3 things to check)") and len(view.tooltip) <= 127
        wait_for(lambda: len(sender.sent) == 1)
        (note,) = sender.sent
        assert note.title == "Immich Tray Sync: please check" and not note.is_error
        assert note.body.splitlines() == list(done.notices)  # the menu and the notification say the same
        app.sync_now()  # the same notices again: still in the menu, not notified again
        pump_until(app, lambda s: s.last_report is not report and s.last_report is not None)
        time.sleep(0.1)
        assert len(sender.sent) == 1 and app.snapshot.notices == done.notices
    finally:
        app.shutdown()


# -- classification and notification policy ---------------------------------------------------------


def test_classify() -> None:
    assert classify(SyncReport((album_result(downloaded=3),)), False).outcome is RunOutcome.SUCCESS
    assert classify(SyncReport((album_result(),)), True).outcome is RunOutcome.CANCELLED
    gone = album_result(state=AlbumState.UNAVAILABLE, errors=("album gone",))
    assert classify(SyncReport((gone,)), False).outcome is RunOutcome.SUCCESS  # a notice, not an error
    full = album_result(state=AlbumState.ERROR, errors=("Disk full: free 2 GB on /photos",), error_kind="disk")
    verdict = classify(SyncReport((full, album_result("Trips", failed=2))), False)
    assert verdict.state is TrayState.ERROR
    assert verdict.error == "Family 2024: Disk full: free 2 GB on /photos (and 1 more problems, see Status…)"
    offline = album_result(state=AlbumState.OFFLINE, errors=("timed out",), error_kind="offline")
    assert classify(SyncReport((offline,)), False).state is TrayState.OFFLINE
    # Held removals: the engine's line names the command line's route; the app names its own button.
    engine_note = held_removals_note(3, "Family 2024", command_line_confirm_route("album-1"))
    held = album_result(held_removals=3, errors=(engine_note,))
    verdict = classify(SyncReport((held,)), False)
    assert verdict.state is TrayState.SYNCED and verdict.error is None  # a notice, not an error
    other = album_result(held_removals=3, failed=1, errors=("IMG_1.jpg: checksum mismatch",
                                                            held_removals_note(3, "Family 2024", "x")))
    assert classify(SyncReport((other,)), False).error == "Family 2024: IMG_1.jpg: checksum mismatch"


def held_removals_report() -> SyncReport:
    """What the engine reports when the mass-removal guard holds 3 removals (see test_e2e_sync)."""
    note = held_removals_note(3, "Family 2024", command_line_confirm_route("album-1"))
    return SyncReport((album_result(downloaded=1, held_removals=3, errors=(note,)),))


def test_held_removals_point_to_the_review_button_in_menu_notification_and_activity_not_the_command_line(
        ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    sender = RecordingSender()
    app, tray, _ = make_app(ctx, ScriptedEngine(held_removals_report()), sender=sender, first_delay_s=0)
    try:
        app.start()
        # Held removals are a notice like "changed locally": the icon stays synced, the menu has the line,
        # and exactly one notification says it (not a second "needs attention" for the same thing).
        done = pump_until(app, lambda s: s.last_report is not None and s.state is TrayState.SYNCED)
        assert done.error is None
        view = tray.views[-1]
        menu_text = " ".join(e.label.strip() for e in view.menu)  # its notice line comes from the database
        wait_for(lambda: len(sender.sent) >= 1)
        time.sleep(0.3)  # a second notification, if any, would be on its way by now
        assert len(sender.sent) == 1 and not sender.sent[0].is_error
        assert "3 removals held in Family 2024" in sender.sent[0].body
        shown = [menu_text, view.tooltip, *(n.body for n in sender.sent), *(entry.text for entry in done.activity)]
        assert not [text for text in shown if "tray-sync" in text or "--confirm-removals" in text], shown
    finally:
        app.shutdown()


def test_notification_policy_settings_and_notices() -> None:
    settings: dict[str, Any] = {"notifications": True, "notify_on_success": True, "notify_on_error": True}
    policy = NotificationPolicy(lambda: settings)
    held = SyncReport((album_result(held_removals=60, changed_locally=("a.jpg",)),))
    out = policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=held))
    assert len(out) == 1
    assert "60 removals held in Family 2024" in out[0].body and "1 file changed locally" in out[0].body
    again = SyncReport((album_result(held_removals=60, changed_locally=("a.jpg",)),))
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=again)) == []  # same notices
    settings["notify_on_success"] = False
    quiet = SyncReport((album_result(downloaded=5),))
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=quiet)) == []
    settings["notifications"] = False
    assert policy.on_snapshot(AppSnapshot(TrayState.ERROR, error="bad key")) == []
    settings["notifications"] = True
    assert policy.on_snapshot(AppSnapshot(TrayState.ERROR, error="bad key")) == []  # already seen while off
    assert len(policy.on_snapshot(AppSnapshot(TrayState.ERROR, error="disk full"))) == 1
    policy.on_snapshot(AppSnapshot(TrayState.SYNCED))
    assert len(policy.on_snapshot(AppSnapshot(TrayState.ERROR, error="disk full"))) == 1  # back after a fix


def test_a_notice_resolved_and_back_later_in_the_same_words_is_notified_again() -> None:
    policy = NotificationPolicy(lambda: {"notifications": True})
    notice = "1 file changed locally in Family 2024, left untouched"
    edited = SyncReport((album_result(changed_locally=("IMG_1.jpg",)),))
    assert len(policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=edited, notices=(notice,)))) == 1
    # Syncs without a full listing do not repeat the notice; the database still shows it: not news.
    quiet = SyncReport((album_result(),))
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=quiet, notices=(notice,))) == []
    again = SyncReport((album_result(changed_locally=("IMG_1.jpg",)),))
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=again, notices=(notice,))) == []
    # The user put the file back: the notice is gone. Weeks later another file is edited: news again.
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=SyncReport((album_result(),)))) == []
    other = SyncReport((album_result(changed_locally=("IMG_7.jpg",)),))
    (note,) = policy.on_snapshot(AppSnapshot(TrayState.SYNCED, last_report=other, notices=(notice,)))
    assert note.body == notice


def test_notifier_failures_are_logged_and_the_next_sender_tried(caplog: pytest.LogCaptureFixture) -> None:
    def broken(notification: Notification, icon: Path | None) -> None:
        raise OSError("no notification service")

    recorder = RecordingSender()
    notifier = Notifier(senders=[broken, recorder])
    notifier.send(Notification("t", "b"))
    wait_for(lambda: bool(recorder.sent))
    notifier.close()
    assert "no notification service" in caplog.text
    Notifier(senders=[]).send(Notification("t", "b"))  # nothing to send with: logged, no error


def test_pystray_notifications_stay_on_the_callers_thread(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Windows and macOS notify through pystray's icon, which only the Tk thread may touch."""
    monkeypatch.setattr("tray_sync.notify.sys.platform", "darwin")
    calls: list[tuple[str, str, str]] = []

    def pystray_notify(message: str, title: str) -> None:
        calls.append((message, title, threading.current_thread().name))
        if len(calls) == 2:
            raise RuntimeError("the shell refused the balloon")

    notifier = Notifier(pystray_notify=pystray_notify)
    notifier.send(Notification("Immich Tray Sync: sync finished", "12 new photos in Family 2024"))
    assert calls == [("12 new photos in Family 2024", "Immich Tray Sync: sync finished",
                      threading.current_thread().name)]  # delivered before send returned, on this thread
    notifier.send(Notification("t", "b"))  # a failure is logged, never raised
    assert "the shell refused the balloon" in caplog.text
    # Windows copies body and title into WCHAR[256] and WCHAR[64]: longer is refused, so they are cut.
    notifier.send(Notification("Immich Tray Sync: new albums on the server 🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉", "🎄 Xmas " * 60))
    message, title, _ = calls[-1]
    assert len(message.encode("utf-16-le")) // 2 <= 255 and len(title.encode("utf-16-le")) // 2 <= 63
    assert message.endswith("…") and title.startswith("Immich Tray Sync: new albums")
    notifier.close()
    assert notifier.sent[0].body == "12 new photos in Family 2024" and len(notifier.sent) == 2


# -- single instance -------------------------------------------------------------------------------


def test_a_second_launch_asks_the_first_to_show_its_status_window(home: Path) -> None:
    paths = AppPaths.resolve(home)
    first, second = InstanceGuard(paths), InstanceGuard(paths)
    shown = threading.Event()
    try:
        assert first.claim()
        first.listen(shown.set)
        assert not second.claim()
        assert second.signal_show()
        assert shown.wait(2)
    finally:
        first.close()
    third = InstanceGuard(paths)
    assert third.claim(), "the lock must be free once the first instance ends"
    third.listen(lambda: None)  # a socket file left behind does not block a new instance
    third.close()


def test_a_second_launch_waits_for_a_first_one_still_starting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first holds the lock but listens only once Tk and the tray are up (seconds on a slow machine)."""
    from types import SimpleNamespace

    paths = AppPaths.resolve(home)
    first, second = InstanceGuard(paths), InstanceGuard(paths)
    shown = threading.Event()
    clock = [0.0]
    starting = [True]

    def fake_sleep(seconds: float) -> None:  # simulated waiting: the test takes no real seconds
        clock[0] += seconds
        if starting[0] and clock[0] >= 3.0:  # three seconds in (the old limit was two): the first is ready
            starting[0] = False
            first.listen(shown.set)

    monkeypatch.setattr("tray_sync.single_instance.time", SimpleNamespace(monotonic=lambda: clock[0],
                                                                          sleep=fake_sleep))
    try:
        assert first.claim()
        assert second.signal_show() and shown.wait(2)
    finally:
        first.close()
    nobody = InstanceGuard(paths)
    assert nobody.claim()
    clock[0] = 0.0
    assert not starting[0]
    assert not InstanceGuard(paths).signal_show()  # never listening: gives up after its wait, does not hang
    assert 9.9 < clock[0] < 10.5
    nobody.close()


def test_single_instance_over_tcp_where_unix_sockets_are_missing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(InstanceGuard, "_use_unix", lambda self: False)
    paths = AppPaths.resolve(home)
    first, second = InstanceGuard(paths), InstanceGuard(paths)
    shown = threading.Event()
    try:
        assert first.claim()
        first.listen(shown.set)
        assert second.signal_show() and shown.wait(2)
        assert len(first.port_file.read_text().split()) == 2
    finally:
        first.close()


def test_albums_synced_earlier_by_the_command_line_count_as_the_last_success(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    app, tray, _ = make_app(ctx)
    app.start()
    assert app.snapshot.last_success_at is None
    assert tray.views[-1].tooltip.startswith("Immich Sync: not synced yet, first sync at")
    album = ctx.store.album_syncs()[0]
    ctx.store.update_album_sync(album.id, last_sync_at="2026-03-14T09:30:00.000000Z", state="ok")
    app.refresh_from_store()
    app.post_changed()
    app.pump()
    assert app.snapshot.last_success_at == datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    assert "up to date, last sync" in tray.views[-1].tooltip
    app.shutdown()


def test_a_crashed_instance_leaves_nothing_that_blocks_the_next_start(home: Path) -> None:
    """kill -9 of the first instance: the OS drops its lock; its socket file stays behind and is replaced."""
    import subprocess
    import sys

    crash = (
        "import os, sys\n"
        "from tray_sync.paths import AppPaths\n"
        "from tray_sync.single_instance import InstanceGuard\n"
        "guard = InstanceGuard(AppPaths.resolve(sys.argv[1]))\n"
        "assert guard.claim()\n"
        "guard.listen(lambda: None)\n"
        "os._exit(9)\n"
    )
    result = subprocess.run([sys.executable, "-c", crash, str(home)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 9, result.stderr
    paths = AppPaths.resolve(home)
    guard = InstanceGuard(paths)
    assert guard.socket_path.exists()  # the crashed instance's socket file
    shown = threading.Event()
    try:
        assert guard.claim()
        guard.listen(shown.set)
        assert InstanceGuard(paths).signal_show() and shown.wait(2)
    finally:
        guard.close()


def test_the_crash_hooks_catch_a_dying_thread(ctx: Context, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tray_sync.app import _install_crash_hooks, _restore_crash_hooks

    set_up_profile(ctx, tmp_path)
    app, tray, dialogs = make_app(ctx)
    app.start()
    root = SimpleNamespace()
    hooks = _install_crash_hooks(app, root)  # type: ignore[arg-type]
    try:
        def die() -> None:
            raise KeyError("lost")

        worker = threading.Thread(target=die, name="doomed")
        worker.start()
        worker.join(5)
        snapshot = pump_until(app, lambda s: s.state is TrayState.ERROR)
        assert "internal error in thread doomed (KeyError)" in (snapshot.error or "")
        root.report_callback_exception(ValueError, ValueError("window"), None)
        pump_until(app, lambda s: "a window" in (s.error or ""))
        assert dialogs.opened == []
        icon_thread = threading.Thread(target=die, name="tray")  # pystray's loop dying takes the icon with it
        icon_thread.start()
        icon_thread.join(5)
        pump_until(app, lambda s: "thread tray" in (s.error or ""))
        app.pump()
        assert dialogs.opened == ["status"]
    finally:
        _restore_crash_hooks(hooks)
        app.shutdown()
    assert tray.views[-1].state is TrayState.ERROR


def test_a_pause_until_a_naive_local_time_works(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    app, _, _ = make_app(ctx)
    app.start()
    until = datetime.now() + timedelta(minutes=5)  # naive, as a window might pass it
    app.pause(until)
    app.pump()
    assert app.snapshot.state is TrayState.PAUSED
    assert app.snapshot.paused_until == until.astimezone()
    assert not app.scheduler.step()  # compares with the aware clock without a TypeError
    app.shutdown()


def test_new_albums_offered_on_the_server_are_notified_once() -> None:
    policy = NotificationPolicy(lambda: {"notifications": True})
    old = OfferedAlbum(1, "a", "Old offer")
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, offered_albums=(old,))) == []  # known at start
    new = OfferedAlbum(1, "b", "Summer 2026")
    (note,) = policy.on_snapshot(AppSnapshot(TrayState.SYNCED, offered_albums=(old, new)))
    assert note.title == "Immich Tray Sync: new album on the server"
    assert note.body.startswith("Summer 2026: sync from the tray menu")
    assert policy.on_snapshot(AppSnapshot(TrayState.SYNCED, offered_albums=(old, new))) == []
    # With two servers set up, the notification says which one has the new album.
    other = OfferedAlbum(2, "c", "Trip", server="parents")
    (note,) = policy.on_snapshot(AppSnapshot(TrayState.SYNCED, offered_albums=(old, new, other)))
    assert note.body.startswith("Trip (on parents): sync from the tray menu")


def test_an_offered_album_named_like_a_synced_one_gets_a_folder_of_its_own(ctx: Context, tmp_path: Path) -> None:
    set_up_profile(ctx, tmp_path)
    store = ctx.store
    connection = store.connections()[0]
    store.update_connection(connection.id, new_album_policy="ask", new_album_root=str(tmp_path / "photos"))
    app, _, _ = make_app(ctx)
    target = app.default_destination(OfferedAlbum(connection.id, "album-7", "Family 2024"))
    assert target == tmp_path / "photos" / "Family 2024 (2)"
