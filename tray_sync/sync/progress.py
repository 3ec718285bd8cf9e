"""Immutable progress and result records shared by the engine, the CLI and the tray.

Workers create these and hand them over; nothing here is ever mutated after creation, so a
snapshot can cross threads (sync worker -> Tk queue) without locks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Phase(str, Enum):
    CHECKING = "checking"  # talking to the server, listing albums
    LISTING = "listing"  # listing one album's contents
    DOWNLOADING = "downloading"
    FINISHING = "finishing"  # removals, bookkeeping
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress tick. ``files_total``/``bytes_total`` cover the whole run so far planned."""

    phase: Phase
    album_name: str = ""
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    current_file: str = ""
    rate_bytes_per_s: float = 0.0

    @property
    def bytes_left(self) -> int:
        return max(0, self.bytes_total - self.bytes_done)

    @property
    def seconds_left(self) -> float | None:
        if self.rate_bytes_per_s <= 0 or self.bytes_left == 0:
            return None
        return self.bytes_left / self.rate_bytes_per_s


ProgressCallback = Callable[[Progress], None]


class AlbumState(str, Enum):
    OK = "ok"
    ERROR = "error"  # something failed; see errors
    OFFLINE = "offline"  # server unreachable
    UNAVAILABLE = "unavailable"  # album deleted or unshared on the server
    FOLDER_GONE = "folder_gone"  # destination folder missing (unmounted drive?)
    CANCELLED = "cancelled"


def held_removals_note(count: int, album_name: str, how_to_confirm: str) -> str:
    """The line for removals the mass-removal guard holds; ``how_to_confirm`` is the front end's route."""
    return (f"{count} files were removed from {album_name!r} on the server; they are "
            f"kept until you confirm ({how_to_confirm}).")


def command_line_confirm_route(album_id: str) -> str:
    """How the command line confirms held removals (the engine's reports speak to it and to --json)."""
    return f"tray-sync sync --confirm-removals {album_id}"


@dataclass(frozen=True, slots=True)
class AlbumResult:
    album_sync_id: int
    album_id: str
    album_name: str
    path: str
    state: AlbumState = AlbumState.OK
    downloaded: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    removed: int = 0  # files moved to trash by "mirror removals"
    held_removals: int = 0  # removals waiting for confirmation
    changed_locally: tuple[str, ...] = ()  # relative paths the user edited
    errors: tuple[str, ...] = ()
    error_kind: str | None = None  # an errors.ErrorKind value for the worst error
    relisted: bool = False  # False when the fingerprint said nothing changed

    @property
    def ok(self) -> bool:
        return self.state is AlbumState.OK and self.failed == 0 and not self.errors

    def to_json(self) -> dict[str, object]:
        return {
            "album_id": self.album_id,
            "album_name": self.album_name,
            "path": self.path,
            "state": self.state.value,
            "downloaded": self.downloaded,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes,
            "removed": self.removed,
            "held_removals": self.held_removals,
            "changed_locally": list(self.changed_locally),
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class SyncReport:
    albums: tuple[AlbumResult, ...] = ()
    errors: tuple[str, ...] = ()  # connection-level errors (server down, bad key)
    error_kind: str | None = None
    # Connection-level things to tell the user that do not make the sync fail (a new album that
    # the "auto" policy cannot add yet): printed by the CLI, shown in the menu and notified once.
    notices: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and all(a.ok for a in self.albums)

    @property
    def downloaded(self) -> int:
        return sum(a.downloaded for a in self.albums)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "albums": [a.to_json() for a in self.albums],
            "errors": list(self.errors),
            "notices": list(self.notices),
        }


@dataclass
class CancelToken:
    """Set by Pause/Quit from any thread; the engine checks it between chunks."""

    _event: threading.Event = field(default_factory=threading.Event)
    reason: str = "cancelled"
    _callbacks: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def add_callback(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on cancel (at once if already cancelled); returns its remover."""
        with self._lock:
            self._callbacks.append(callback)
        if self._event.is_set():
            callback()

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when cancelled meanwhile (an interruptible backoff)."""
        return self._event.wait(seconds)
