"""The contract between the sync worker, the tray icon and the dialogs.

Thread rule (one rule for the whole app):

* Tk owns the main thread: one withdrawn ``Tk()``; every window is a ``Toplevel``.
* The pystray icon runs in its own daemon thread (``run_detached()`` on macOS).
* Workers (scheduler, sync) never import tkinter or pystray. They publish immutable
  :class:`AppSnapshot` objects to one queue; the Tk thread drains it with ``after()`` and is
  the only thread that touches widgets, the icon's image, title and menu, or notifications.
* pystray menu callbacks only post commands; they never act themselves.

Dialogs talk to the app only through :class:`AppController` and receive snapshots through
``AppController.subscribe``; that keeps them testable with a fake controller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol

from tray_sync.sync.progress import Progress, SyncReport
from tray_sync.sync.status import AlbumStatus


class TrayState(str, Enum):
    NOT_SET_UP = "not_set_up"
    SYNCED = "synced"
    SYNCING = "syncing"
    PAUSED = "paused"
    OFFLINE = "offline"  # server unreachable: not an error, retried by itself
    ERROR = "error"  # needs the user: bad key, missing permission, disk full, folder gone


@dataclass(frozen=True)
class ActivityEntry:
    at: datetime
    text: str
    is_error: bool = False


@dataclass(frozen=True)
class OfferedAlbum:
    connection_id: int
    album_id: str
    name: str
    server: str = ""  # the connection's name, given when there is more than one

    @property
    def label(self) -> str:
        """How the album is named to the user: with its server when several are set up."""
        return f"{self.name} (on {self.server})" if self.server else self.name


@dataclass(frozen=True)
class AppSnapshot:
    state: TrayState
    progress: Progress | None = None
    last_success_at: datetime | None = None
    next_due_at: datetime | None = None
    paused_until: datetime | None = None
    error: str | None = None  # the one line that explains ERROR or OFFLINE
    last_report: SyncReport | None = None
    albums: tuple[AlbumStatus, ...] = ()
    notices: tuple[str, ...] = ()  # held removals, changed locally, album no longer available
    offered_albums: tuple[OfferedAlbum, ...] = ()
    activity: tuple[ActivityEntry, ...] = field(default_factory=tuple)
    # SYNCING because another tray-sync process (the command line) holds the profile's sync lock
    syncing_elsewhere: bool = False


class AppController(Protocol):
    """What windows and the tray may ask of the running app. Safe to call from the Tk thread."""

    def sync_now(self) -> None: ...

    def pause(self, until: datetime | None) -> None:
        """Pause syncing until ``until`` (None: until resumed); stops a running sync within a second."""

    def resume(self) -> None: ...

    def open_folder(self, path: str) -> None: ...

    def open_log(self) -> None: ...

    def open_status(self) -> None: ...

    def open_settings(self) -> None: ...

    def settings_changed(self) -> None:
        """Settings were saved: reload interval, workers, notifications, autostart."""

    def add_offered_album(self, offer: OfferedAlbum, destination: str) -> None: ...

    def dismiss_offered_album(self, offer: OfferedAlbum) -> None: ...

    def subscribe(self, listener: Callable[[AppSnapshot], None]) -> Callable[[], None]:
        """Call ``listener`` on the Tk thread with every new snapshot (and the current one now)."""

    def quit(self) -> None: ...
