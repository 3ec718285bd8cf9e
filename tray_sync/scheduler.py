"""When to sync: a worker thread driven by `schedule`, with pause, catch-up after sleep and backoff.

One thread does everything here, including running the sync itself, so two syncs can never
overlap: a "Sync now" that arrives during a run is remembered as one follow-up run (however
many times it was asked for), not started beside it.

Timing rules:

* the first sync runs shortly after start; then every ``interval_minutes`` (settings, default 30)
  after the previous run *finished*;
* offline (server unreachable) retries with a growing delay, 30 s doubling up to the interval,
  and falls back to the normal rhythm by itself on the next success;
* pause cancels a running sync through its :class:`CancelToken` (the engine stops between chunks,
  well within a second, and keeps verified partials for resume) and holds every run until resumed
  or until the pause ends; a pause survives a restart (it is in the settings);
* sleep/wake: the thread compares how far the wall clock moved with how far the monotonic clock
  moved; a jump means the machine slept (or the clock was set), and an overdue or offline-pending
  sync is caught up a few seconds later, once the network is back;
* last success and next due are written to the settings so the status window and
  `tray-sync status` can show them after a restart.

The worker never imports tkinter or pystray: it reports :class:`ScheduleStatus` records through
``on_change``, which the app turns into snapshots for the Tk thread.

Time is injected (``clock`` for wall time, ``monotonic`` for elapsed time), so the tests drive
:meth:`SyncScheduler.step` with a fake clock and never sleep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

import schedule

from tray_sync.sync.progress import CancelToken

log = logging.getLogger(__name__)

FIRST_SYNC_DELAY = timedelta(seconds=5)
WAKE_DELAY = timedelta(seconds=10)  # give the network a moment after resume from sleep
BUSY_RETRY = timedelta(minutes=1)  # the command line holds the sync lock
BACKOFF_START = timedelta(seconds=30)
CLOCK_JUMP = timedelta(seconds=90)
POLL_SECONDS = 15.0  # longest wait between checks, so a wake from sleep is noticed soon
FAULT_RETRY = timedelta(minutes=1)  # after an unexpected error in the worker itself (not in a sync)
DEFAULT_INTERVAL_MINUTES = 30


class RunOutcome(str, Enum):
    SUCCESS = "success"  # finished; may still carry notices (changed locally, held removals)
    ERROR = "error"  # needs the user; retried on the normal interval
    OFFLINE = "offline"  # server unreachable; retried with backoff
    CANCELLED = "cancelled"  # paused or quitting
    BUSY = "busy"  # another process (the CLI) is syncing this profile
    SKIPPED = "skipped"  # nothing to sync yet (not set up)


class SettingsStore(Protocol):
    def get_setting(self, key: str) -> Any: ...

    def set_setting(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class ScheduleStatus:
    running: bool
    paused: bool
    paused_until: datetime | None
    next_due_at: datetime | None
    last_success_at: datetime | None
    last_outcome: RunOutcome | None
    offline_retries: int


RunSync = Callable[[CancelToken], RunOutcome]


def utc_clock() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def from_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- `schedule`, on an injected clock ------------------------------------------------------


class _ClockedJob(schedule.Job):
    """A ``schedule`` job that asks our clock for the time, and lets the job say its next delay.

    The job function returns a :class:`timedelta` (run again after that long, counted from when
    it finished) or None (the job's own interval).
    """

    def __init__(self, interval: int, scheduler: _ClockedScheduler) -> None:
        super().__init__(interval, scheduler)
        self._clock = scheduler.clock

    @property
    def should_run(self) -> bool:
        return self.next_run is not None and self._clock() >= self.next_run

    def run(self) -> Any:
        delay = self.job_func() if self.job_func else None
        self.last_run = self._clock()
        self.next_run = self.last_run + (delay if isinstance(delay, timedelta) else self.period)
        return None

    @property
    def period(self) -> timedelta:
        return timedelta(**{self.unit or "minutes": self.interval})

    def _schedule_next_run(self) -> None:
        self.next_run = self._clock() + self.period


class _ClockedScheduler(schedule.Scheduler):
    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.clock = clock

    def every(self, interval: int = 1) -> _ClockedJob:
        return _ClockedJob(interval, self)


# -- the scheduler ---------------------------------------------------------------------------


class SyncScheduler:
    def __init__(
        self,
        run_sync: RunSync,
        settings: SettingsStore,
        *,
        on_change: Callable[[ScheduleStatus], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        clock: Callable[[], datetime] = utc_clock,
        monotonic: Callable[[], float] = time.monotonic,
        first_delay: timedelta = FIRST_SYNC_DELAY,
    ) -> None:
        self._run_sync = run_sync
        self._settings = settings
        self._on_change = on_change or (lambda status: None)
        self._on_error = on_error
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._cancel: CancelToken | None = None
        self._manual = False
        self._running = False
        self._last_outcome: RunOutcome | None = None
        self._offline_retries = 0
        self._last_finished: datetime | None = None
        self._last_success = from_iso(settings.get_setting("last_success_at"))
        self._paused = bool(settings.get_setting("paused"))
        self._paused_until = from_iso(settings.get_setting("paused_until"))
        if self._paused_until is not None:
            self._paused = True
        self._jobs = _ClockedScheduler(clock)
        self._job = self._jobs.every(self._interval_minutes()).minutes.do(self._run_once)
        self._job.next_run = clock() + first_delay
        self._mark_wall, self._mark_mono = clock(), monotonic()
        self._persist_next_due()

    # -- asked from other threads (the Tk thread, through the controller) --

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Cancel a running sync and end the thread; True when it ended within ``timeout``."""
        self._stopping.set()
        with self._lock:
            if self._cancel is not None:
                self._cancel.cancel("quitting")
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def sync_now(self) -> None:
        with self._lock:
            if self._paused:
                log.info("Sync now ignored: syncing is paused")
                return
            self._manual = True  # one flag, so clicks during a run coalesce into one follow-up
        self._wake.set()

    def pause(self, until: datetime | None) -> None:
        with self._lock:
            self._paused, self._paused_until = True, until
            if self._cancel is not None:  # first: stopping the sync must not wait on (or fail with) the database
                self._cancel.cancel("paused")
            self._settings.set_setting("paused", True)
            self._settings.set_setting("paused_until", to_iso(until))
            log.info("Paused %s", f"until {to_iso(until)}" if until else "until resumed")
        self._changed()
        self._wake.set()

    def resume(self) -> None:
        with self._lock:
            self._resume_locked()
        self._changed()
        self._wake.set()

    def reload_settings(self) -> None:
        """The interval may have changed: re-plan the next run from the last one."""
        with self._lock:
            minutes = self._interval_minutes()
            self._job.interval = minutes
            if not self._running and self._offline_retries == 0 and self._last_finished is not None:
                self._job.next_run = max(self._clock(), self._last_finished + timedelta(minutes=minutes))
            self._persist_next_due()
        self._changed()
        self._wake.set()

    def status(self) -> ScheduleStatus:
        with self._lock:
            return ScheduleStatus(
                running=self._running, paused=self._paused, paused_until=self._paused_until,
                next_due_at=self._job.next_run, last_success_at=self._last_success,
                last_outcome=self._last_outcome, offline_retries=self._offline_retries,
            )

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the worker thread --

    def _loop(self) -> None:
        log.debug("scheduler started")
        while not self._stopping.is_set():
            self._wake.clear()  # before the step: a Sync now or Resume that arrives during it is not lost
            try:
                self.step()
            except Exception as exc:
                self._survive(exc)
            self._wake.wait(self._seconds_to_wait())
        log.debug("scheduler stopped")

    def _survive(self, exc: Exception) -> None:
        """An error in the worker itself (the database busy past its timeout, say): said, not fatal.

        A dead worker would leave the icon claiming a schedule that no longer runs; instead the
        error is reported (the app shows its error state until a sync succeeds) and the due run
        is retried a minute later rather than in a tight loop.
        """
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                log.exception("the scheduler's error listener failed")
        else:
            log.error("the scheduler hit an unexpected error", exc_info=exc)
        with self._lock:
            self._running, self._cancel = False, None
            retry = self._clock() + FAULT_RETRY
            if self._job.next_run is None or self._job.next_run < retry:
                self._job.next_run = retry
        self._changed()  # the app still holds the "running" status posted when the run began

    def step(self) -> bool:
        """One look at the clock: catch a jump, end an expired pause, run a due sync. True if it ran."""
        if self._stopping.is_set():
            return False
        now = self._clock()
        self._detect_clock_jump(now)
        with self._lock:
            if self._paused and self._paused_until is not None and now >= self._paused_until:
                log.info("Pause ended")
                self._resume_locked()
                changed = True
            else:
                changed = False
            if self._paused:
                due = False
            else:
                if self._manual:
                    self._job.next_run = now
                due = self._job.should_run
        if changed:
            self._changed()
        if not due:
            return False
        self._jobs.run_pending()
        self._changed()
        return True

    def _seconds_to_wait(self) -> float:
        with self._lock:
            if self._manual and not self._paused:
                return 0.0
            next_run = self._job.next_run
            if self._paused and self._paused_until is not None:
                next_run = self._paused_until
            elif self._paused:
                return POLL_SECONDS
        if next_run is None:
            return POLL_SECONDS
        return max(0.0, min(POLL_SECONDS, (next_run - self._clock()).total_seconds()))

    def _run_once(self) -> timedelta:
        """The job ``schedule`` runs: one sync, then how long until the next."""
        with self._lock:
            self._manual = False  # a request made before this run started is served by it
            self._cancel = token = CancelToken()
            self._running = True
        self._changed()
        try:
            outcome = self._run_sync(token)
        except Exception:  # the worker must not die with the app still showing "syncing"
            log.exception("sync run failed unexpectedly")
            outcome = RunOutcome.ERROR
        if token.cancelled:
            outcome = RunOutcome.CANCELLED
        now = self._clock()
        with self._lock:
            self._cancel = None
            self._running = False
            self._last_outcome = outcome
            self._last_finished = now
            delay = self._delay_after(outcome, now)
            if self._manual and not self._paused:
                delay = timedelta(0)
        log.info("sync %s; next in %s", outcome.value, delay)
        return delay

    def _delay_after(self, outcome: RunOutcome, now: datetime) -> timedelta:
        interval = timedelta(minutes=self._interval_minutes())
        if outcome is RunOutcome.OFFLINE:
            self._offline_retries += 1
            return min(interval, BACKOFF_START * 2 ** (self._offline_retries - 1))
        if outcome is RunOutcome.CANCELLED:
            return timedelta(0)  # held by the pause; resumes where it stopped
        if outcome is RunOutcome.BUSY:
            return BUSY_RETRY
        self._offline_retries = 0
        if outcome is RunOutcome.SUCCESS:
            self._last_success = now
            self._settings.set_setting("last_success_at", to_iso(now))
        return interval

    def _detect_clock_jump(self, now: datetime) -> None:
        mono = self._monotonic()
        with self._lock:
            wall_moved = now - self._mark_wall
            mono_moved = timedelta(seconds=mono - self._mark_mono)
            self._mark_wall, self._mark_mono = now, mono
            drift = wall_moved - mono_moved
            if abs(drift) < CLOCK_JUMP or self._running:
                return
            next_run = self._job.next_run
            if drift > timedelta(0):
                log.info("Clock jumped %s ahead (woke from sleep?)", drift)
                if next_run is None or next_run <= now or self._offline_retries:
                    self._offline_retries = 0
                    self._job.next_run = now + WAKE_DELAY  # catch up the missed sync
            else:
                log.info("Clock was set back by %s", -drift)
                interval = timedelta(minutes=self._interval_minutes())
                if next_run is None or next_run > now + interval:
                    self._job.next_run = now + interval
            self._persist_next_due()
        self._changed()

    # -- helpers --

    def _resume_locked(self) -> None:
        self._paused, self._paused_until = False, None
        self._settings.set_setting("paused", False)
        self._settings.set_setting("paused_until", None)
        log.info("Resumed")

    def _interval_minutes(self) -> int:
        value = self._settings.get_setting("interval_minutes")
        try:
            return max(1, int(value))
        except (TypeError, ValueError):
            return DEFAULT_INTERVAL_MINUTES

    def _persist_next_due(self) -> None:
        self._settings.set_setting("next_due_at", to_iso(self._job.next_run))

    def _changed(self) -> None:
        with self._lock:
            try:
                self._persist_next_due()
            except Exception:  # the schedule in memory is still right; the database catches up next time
                log.warning("could not save the next sync time", exc_info=True)
        try:
            self._on_change(self.status())
        except Exception:
            log.exception("schedule status listener failed")
