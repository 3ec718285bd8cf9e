"""The scheduler on a fake clock: first run, interval, coalescing, backoff, pause, sleep/wake."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tray_sync.scheduler import (
    BACKOFF_START,
    BUSY_RETRY,
    FIRST_SYNC_DELAY,
    WAKE_DELAY,
    RunOutcome,
    ScheduleStatus,
    SyncScheduler,
    from_iso,
)
from tray_sync.sync.progress import CancelToken
from tray_sync.sync.store import DEFAULT_SETTINGS

START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.wall = START
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.wall += step
        self.mono += step.total_seconds()

    def suspend(self, **delta: float) -> None:
        """The machine sleeps: wall time moves, monotonic time does not."""
        self.wall += timedelta(**delta)


class FakeSettings:
    def __init__(self, **values: Any) -> None:
        self.values: dict[str, Any] = {**DEFAULT_SETTINGS, **values}

    def get_setting(self, key: str) -> Any:
        return self.values.get(key)

    def set_setting(self, key: str, value: Any) -> None:
        self.values[key] = value


class FakeRun:
    """Returns the scripted outcomes in turn (then SUCCESS); ``during`` runs inside the sync."""

    def __init__(self, *outcomes: RunOutcome) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.during: Callable[[CancelToken], None] | None = None

    def __call__(self, token: CancelToken) -> RunOutcome:
        self.calls += 1
        if self.during:
            during, self.during = self.during, None
            during(token)
        return self.outcomes.pop(0) if self.outcomes else RunOutcome.SUCCESS


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, run: FakeRun, settings: FakeSettings | None = None,
         statuses: list[ScheduleStatus] | None = None) -> SyncScheduler:
    return SyncScheduler(run, settings or FakeSettings(), clock=clock.now, monotonic=clock.monotonic,
                         on_change=statuses.append if statuses is not None else None)


def test_first_sync_runs_shortly_after_start_then_on_the_interval(clock: FakeClock) -> None:
    run, settings = FakeRun(), FakeSettings()
    scheduler = make(clock, run, settings)
    assert not scheduler.step()
    clock.advance(seconds=FIRST_SYNC_DELAY.total_seconds())
    assert scheduler.step() and run.calls == 1
    assert scheduler.status().next_due_at == START + FIRST_SYNC_DELAY + timedelta(minutes=30)
    assert from_iso(settings.values["last_success_at"]) == START + FIRST_SYNC_DELAY
    assert from_iso(settings.values["next_due_at"]) == scheduler.status().next_due_at
    clock.advance(minutes=29, seconds=59)
    assert not scheduler.step() and run.calls == 1
    clock.advance(seconds=1)
    assert scheduler.step() and run.calls == 2


def test_interval_comes_from_the_settings_and_reloads(clock: FakeClock) -> None:
    run, settings = FakeRun(), FakeSettings(interval_minutes=10)
    scheduler = make(clock, run, settings)
    clock.advance(seconds=5)
    scheduler.step()
    assert scheduler.status().next_due_at == clock.now() + timedelta(minutes=10)
    settings.values["interval_minutes"] = 60
    scheduler.reload_settings()
    assert scheduler.status().next_due_at == clock.now() + timedelta(minutes=60)
    clock.advance(minutes=30)
    settings.values["interval_minutes"] = 15
    scheduler.reload_settings()  # already overdue under the new interval: runs now
    assert scheduler.status().next_due_at == clock.now()
    assert scheduler.step() and run.calls == 2


def test_sync_now_runs_at_once_and_requests_during_a_run_coalesce(clock: FakeClock) -> None:
    run = FakeRun()
    scheduler = make(clock, run)
    scheduler.sync_now()
    assert scheduler.step() and run.calls == 1

    def click_five_times(token: CancelToken) -> None:
        for _ in range(5):
            scheduler.sync_now()

    run.during = click_five_times
    scheduler.sync_now()
    assert scheduler.step() and run.calls == 2
    assert scheduler.step() and run.calls == 3  # the five clicks: one follow-up run
    assert not scheduler.step() and run.calls == 3


def test_offline_backs_off_then_returns_to_normal(clock: FakeClock) -> None:
    run = FakeRun(*[RunOutcome.OFFLINE] * 8)
    scheduler = make(clock, run)
    clock.advance(seconds=5)
    delays = []
    for _ in range(8):
        assert scheduler.step()
        status = scheduler.status()
        assert status.next_due_at is not None
        delays.append(status.next_due_at - clock.now())
        clock.wall = status.next_due_at
        clock.mono += delays[-1].total_seconds()
    assert delays[:4] == [BACKOFF_START, BACKOFF_START * 2, BACKOFF_START * 4, BACKOFF_START * 8]
    assert delays[-1] == timedelta(minutes=30)  # never slower than the normal interval
    assert scheduler.status().offline_retries == 8
    assert scheduler.step()  # back online
    assert scheduler.status().offline_retries == 0
    assert scheduler.status().next_due_at == clock.now() + timedelta(minutes=30)


def test_errors_and_a_busy_lock_have_their_own_delays(clock: FakeClock) -> None:
    run = FakeRun(RunOutcome.BUSY, RunOutcome.ERROR)
    settings = FakeSettings()
    scheduler = make(clock, run, settings)
    clock.advance(seconds=5)
    scheduler.step()
    assert scheduler.status().next_due_at == clock.now() + BUSY_RETRY
    clock.advance(minutes=1)
    scheduler.step()
    assert scheduler.status().last_outcome is RunOutcome.ERROR
    assert scheduler.status().next_due_at == clock.now() + timedelta(minutes=30)
    assert settings.values["last_success_at"] is None


def test_an_exception_in_the_sync_is_an_error_not_a_dead_worker(clock: FakeClock) -> None:
    def explode(token: CancelToken) -> RunOutcome:
        raise RuntimeError("boom")

    scheduler = SyncScheduler(explode, FakeSettings(), clock=clock.now, monotonic=clock.monotonic)
    clock.advance(seconds=5)
    assert scheduler.step()
    assert scheduler.status().last_outcome is RunOutcome.ERROR
    assert not scheduler.status().running


def test_pause_holds_runs_until_resumed_and_survives_a_restart(clock: FakeClock) -> None:
    run, settings = FakeRun(), FakeSettings()
    scheduler = make(clock, run, settings)
    scheduler.pause(None)
    clock.advance(hours=3)
    scheduler.sync_now()
    assert not scheduler.step() and run.calls == 0
    assert settings.values["paused"] is True
    restarted = make(clock, run, settings)
    clock.advance(seconds=5)
    assert restarted.status().paused and not restarted.step()
    restarted.resume()
    assert restarted.step() and run.calls == 1
    assert settings.values["paused"] is False


def test_pause_until_a_time_ends_by_itself(clock: FakeClock) -> None:
    run = FakeRun()
    statuses: list[ScheduleStatus] = []
    scheduler = make(clock, run, statuses=statuses)
    scheduler.pause(START + timedelta(hours=1))
    clock.advance(minutes=59)
    assert not scheduler.step()
    clock.advance(minutes=1)
    assert scheduler.step() and run.calls == 1
    assert not scheduler.status().paused
    assert any(s.paused for s in statuses) and not statuses[-1].paused


def test_pause_cancels_the_running_sync_which_resumes_later(clock: FakeClock) -> None:
    run = FakeRun()
    scheduler = make(clock, run)
    seen: list[bool] = []

    def pause_midway(token: CancelToken) -> None:
        scheduler.pause(None)
        seen.append(token.cancelled)

    run.during = pause_midway
    clock.advance(seconds=5)
    scheduler.step()
    assert seen == [True]
    assert scheduler.status().last_outcome is RunOutcome.CANCELLED
    clock.advance(hours=2)
    assert not scheduler.step()
    scheduler.resume()
    assert scheduler.step() and run.calls == 2  # the interrupted sync picks up at once
    assert scheduler.status().last_outcome is RunOutcome.SUCCESS


def test_wake_from_sleep_catches_up_the_missed_sync_after_a_short_delay(clock: FakeClock) -> None:
    run = FakeRun()
    scheduler = make(clock, run)
    clock.advance(seconds=5)
    scheduler.step()
    clock.advance(minutes=10)
    scheduler.step()
    clock.suspend(hours=5)  # laptop lid closed
    assert not scheduler.step()  # the network is not up yet right after waking
    assert scheduler.status().next_due_at == clock.now() + WAKE_DELAY
    clock.advance(seconds=WAKE_DELAY.total_seconds())
    assert scheduler.step() and run.calls == 2


def test_wake_from_sleep_resets_the_offline_backoff(clock: FakeClock) -> None:
    run = FakeRun(*[RunOutcome.OFFLINE] * 6)
    scheduler = make(clock, run)
    clock.advance(seconds=5)
    for _ in range(6):
        scheduler.step()
        due = scheduler.status().next_due_at
        assert due is not None
        clock.advance(seconds=(due - clock.now()).total_seconds())
    clock.advance(seconds=-1)
    clock.suspend(hours=1)
    scheduler.step()
    assert scheduler.status().offline_retries == 0
    assert scheduler.status().next_due_at == clock.now() + WAKE_DELAY


def test_a_clock_set_back_does_not_postpone_syncing_for_ages(clock: FakeClock) -> None:
    scheduler = make(clock, FakeRun())
    clock.advance(seconds=5)
    scheduler.step()
    clock.suspend(days=-2)
    scheduler.step()
    assert scheduler.status().next_due_at == clock.now() + timedelta(minutes=30)


# -- the real thread ----------------------------------------------------------------------


def test_thread_pause_stops_a_running_sync_within_a_second_and_stop_joins() -> None:
    started, finished = threading.Event(), threading.Event()
    cancelled_after: list[float] = []

    def slow_sync(token: CancelToken) -> RunOutcome:
        started.set()
        began = time.monotonic()
        token.wait(30)  # a long download, interrupted by the token
        cancelled_after.append(time.monotonic() - began)
        finished.set()
        return RunOutcome.SUCCESS

    scheduler = SyncScheduler(slow_sync, FakeSettings(), first_delay=timedelta(0))
    scheduler.start()
    try:
        assert started.wait(5), "the first sync did not start"
        scheduler.pause(None)
        assert finished.wait(1.0), "pause did not stop the sync within a second"
        assert cancelled_after[0] < 1.0
        deadline = time.monotonic() + 2
        while scheduler.status().running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scheduler.status().last_outcome is RunOutcome.CANCELLED
        assert scheduler.status().paused
    finally:
        assert scheduler.stop(timeout=3)
    assert not scheduler.alive


def test_thread_sync_now_wakes_the_worker() -> None:
    runs = threading.Semaphore(0)

    def quick(token: CancelToken) -> RunOutcome:
        runs.release()
        return RunOutcome.SUCCESS

    scheduler = SyncScheduler(quick, FakeSettings(), first_delay=timedelta(hours=1))
    scheduler.start()
    try:
        scheduler.sync_now()
        assert runs.acquire(timeout=3), "Sync now did not reach the worker"
        assert not runs.acquire(timeout=0.2)
    finally:
        assert scheduler.stop(timeout=3)


def test_thread_an_error_in_the_worker_itself_is_reported_and_the_worker_lives_on() -> None:
    """E.g. the database busy past its timeout while saving the last success: not a dead schedule."""

    class FailingSettings(FakeSettings):
        fail = True

        def set_setting(self, key: str, value: Any) -> None:
            if self.fail and key == "last_success_at":
                raise RuntimeError("database is locked")
            super().set_setting(key, value)

    runs = threading.Semaphore(0)
    errors: list[BaseException] = []
    reported = threading.Event()

    def quick(token: CancelToken) -> RunOutcome:
        runs.release()
        return RunOutcome.SUCCESS

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        reported.set()

    settings = FailingSettings()
    statuses: list[ScheduleStatus] = []
    scheduler = SyncScheduler(quick, settings, on_error=on_error, on_change=statuses.append, first_delay=timedelta(0))
    scheduler.start()
    try:
        assert runs.acquire(timeout=5) and reported.wait(5)
        assert [str(e) for e in errors] == ["database is locked"]
        deadline = time.monotonic() + 5
        while (not statuses or statuses[-1].running) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not statuses[-1].running  # the listener (the app) is told the run is over
        status = scheduler.status()
        assert scheduler.alive and not status.running
        assert status.next_due_at is not None and status.next_due_at > datetime.now(UTC)  # no tight retry loop
        settings.fail = False
        scheduler.sync_now()
        assert runs.acquire(timeout=5), "the worker did not survive the error"
        deadline = time.monotonic() + 5
        while settings.values["last_success_at"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert settings.values["last_success_at"] is not None
    finally:
        assert scheduler.stop(timeout=3)
