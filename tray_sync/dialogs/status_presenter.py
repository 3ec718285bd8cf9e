"""The status window's logic (the seed's dashboard): snapshots in, plain words and numbers out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tray_sync.appstate import AppController, AppSnapshot, OfferedAlbum, TrayState
from tray_sync.dialogs.common import first_line, human_duration, human_size, plural, relative_time
from tray_sync.sync.progress import Phase, Progress
from tray_sync.sync.status import AlbumStatus

log = logging.getLogger(__name__)

HEADLINES = {
    TrayState.NOT_SET_UP: "Not set up yet",
    TrayState.SYNCED: "Up to date",
    TrayState.SYNCING: "Syncing…",
    TrayState.PAUSED: "Paused",
    TrayState.OFFLINE: "Offline",
    TrayState.ERROR: "Needs your attention",
}
LEVELS = {
    TrayState.NOT_SET_UP: "muted", TrayState.SYNCED: "ok", TrayState.SYNCING: "busy",
    TrayState.PAUSED: "muted", TrayState.OFFLINE: "warning", TrayState.ERROR: "error",
}
ALBUM_STATES = {
    "new": "Waiting for the first sync",
    "ok": "Up to date",
    "synced": "Up to date",
    "syncing": "Syncing",
    "error": "Failed",
    "offline": "Server unreachable",
    "unavailable": "No longer on the server",
    "folder_gone": "Folder missing",
    "cancelled": "Stopped",
}
MAX_ACTIVITY = 200


@dataclass(frozen=True)
class StatusRow:
    key: str  # album_sync_id as text
    name: str
    folder: str
    last_sync: str
    files: str
    size: str
    state: str
    problem: bool


@dataclass(frozen=True)
class ActivityLine:
    when: str
    text: str
    is_error: bool


class StatusView(Protocol):
    def show_state(self, headline: str, detail: str, level: str) -> None: ...

    def show_progress(self, fraction: float | None, text: str) -> None:
        """``fraction`` None: no sync running (hide); -1: running, amount unknown (indeterminate)."""

    def show_albums(self, rows: list[StatusRow]) -> None: ...

    def show_activity(self, lines: list[ActivityLine]) -> None: ...

    def show_notices(self, lines: list[str], offers: list[OfferedAlbum]) -> None: ...

    def show_review(self, visible: bool) -> None:
        """The "Review removals…" button beside the notices: removals held by the guard wait for the user."""

    def set_actions(self, *, sync_enabled: bool, pause_label: str, folder_enabled: bool,
                    sync_label: str = "Sync now") -> None: ...

    def close(self) -> None: ...


def describe_progress(progress: Progress) -> tuple[float, str]:
    """(fraction or -1, one line) for a running sync."""
    if progress.phase in (Phase.CHECKING, Phase.LISTING) or (progress.files_total == 0 and progress.bytes_total == 0):
        where = f" {progress.album_name}" if progress.album_name else ""
        verb = "Looking for new photos in" if progress.phase is Phase.LISTING and where else "Checking the server"
        return -1.0, f"{verb}{where}…" if where or progress.phase is not Phase.LISTING else f"{verb}…"
    if progress.bytes_total > 0:
        fraction = min(1.0, progress.bytes_done / progress.bytes_total)
    else:
        fraction = min(1.0, progress.files_done / max(1, progress.files_total))
    parts = [f"{progress.files_done} of {plural(progress.files_total, 'file')}"]
    if progress.bytes_total > 0:
        parts.append(f"{human_size(progress.bytes_done)} of {human_size(progress.bytes_total)}")
    if progress.rate_bytes_per_s > 0:
        parts.append(f"{human_size(progress.rate_bytes_per_s)}/s")
    left = progress.seconds_left
    if left is not None and progress.phase is Phase.DOWNLOADING:
        parts.append(f"about {human_duration(left)} left")
    text = " · ".join(parts)
    if progress.phase is Phase.FINISHING:
        text += " · finishing up"
    elif progress.album_name:
        text += f" · {progress.album_name}"
    return fraction, text


class StatusPresenter:
    def __init__(
        self,
        view: StatusView,
        controller: AppController,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_closed: Callable[[], None] | None = None,
        open_settings: Callable[[], None] | None = None,
        open_setup: Callable[[], None] | None = None,
        offer_folder: Callable[[OfferedAlbum], str] | None = None,
        review_removals: Callable[[int], None] | None = None,
    ) -> None:
        self.view = view
        self.controller = controller
        self._now = now
        self._on_closed = on_closed
        self._open_settings = open_settings
        self._open_setup = open_setup
        self._offer_folder = offer_folder
        self._review_removals = review_removals
        self.snapshot: AppSnapshot | None = None
        self.selected_album: str | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.closed = False

    def start(self) -> None:
        self._unsubscribe = self.controller.subscribe(self.update)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.view.close()
        if self._on_closed:
            self._on_closed()

    # -- snapshots ---------------------------------------------------------------------

    def update(self, snapshot: AppSnapshot) -> None:
        if self.closed:
            return
        self.snapshot = snapshot
        self.refresh()

    def refresh(self) -> None:
        """Redraw from the last snapshot (also every so often, so 'minutes ago' stays true)."""
        snapshot = self.snapshot
        if snapshot is None or self.closed:
            return
        now = self._now()
        self.view.show_state(HEADLINES[snapshot.state], self._detail(snapshot, now), LEVELS[snapshot.state])
        if snapshot.state is TrayState.SYNCING:
            fraction, text = describe_progress(snapshot.progress) if snapshot.progress else (-1.0, "Starting…")
            self.view.show_progress(fraction, text)
        else:
            self.view.show_progress(None, "")
        self.view.show_albums([self._row(a, now) for a in snapshot.albums])
        self.view.show_activity([
            ActivityLine(relative_time(entry.at, now), first_line(entry.text, 300), entry.is_error)
            for entry in sorted(snapshot.activity, key=lambda e: e.at, reverse=True)[:MAX_ACTIVITY]
        ])
        self.view.show_notices(list(snapshot.notices), list(snapshot.offered_albums))
        self.view.show_review(self._review_removals is not None and self._album_with_held_removals() is not None)
        self._update_actions()

    def _detail(self, snapshot: AppSnapshot, now: datetime) -> str:
        state = snapshot.state
        if state is TrayState.NOT_SET_UP:
            return "Connect to your Immich server to start: press Set up…."
        last = (f"Last synced {relative_time(snapshot.last_success_at, now)}."
                if snapshot.last_success_at else "Not synced yet.")
        if state is TrayState.PAUSED:
            until = (f" until {relative_time(snapshot.paused_until, now).removeprefix('at ').removeprefix('on ')}"
                     if snapshot.paused_until else " until you resume")
            return f"Syncing is paused{until}. {last}"
        if state is TrayState.ERROR:
            return f"{snapshot.error or 'The last sync failed.'} {last}"
        if state is TrayState.OFFLINE:
            return (f"{snapshot.error or 'The server cannot be reached.'} Tray Sync tries again by itself. {last}")
        if state is TrayState.SYNCING:
            return last
        nxt = f" Next check {relative_time(snapshot.next_due_at, now)}." if snapshot.next_due_at else ""
        report = snapshot.last_report
        got = ""
        if report is not None:
            downloaded = report.downloaded
            if downloaded:
                got = f" The last sync brought {plural(downloaded, 'new file')}."
        return f"{last}{got}{nxt}"

    @staticmethod
    def _row(album: AlbumStatus, now: datetime) -> StatusRow:
        problem = bool(album.last_error) or album.state in ("error", "unavailable", "folder_gone")
        state = ALBUM_STATES.get(album.state, album.state.replace("_", " ").capitalize())
        if album.last_error:
            state = f"{state}: {first_line(album.last_error, 160)}"
        extra = []
        if album.held_removals:
            extra.append(f"{plural(album.held_removals, 'removal')} waiting for your OK")
        if album.changed_locally:
            extra.append(f"{plural(len(album.changed_locally), 'file')} changed here")
        if extra:
            state += " (" + "; ".join(extra) + ")"
        return StatusRow(
            key=str(album.album_sync_id), name=album.album_name, folder=album.path,
            last_sync=relative_time(album.last_sync_at, now), files=str(album.files),
            size=human_size(album.bytes), state=state, problem=problem,
        )

    def _update_actions(self) -> None:
        snapshot = self.snapshot
        state = snapshot.state if snapshot else TrayState.NOT_SET_UP
        paused = state is TrayState.PAUSED
        not_set_up = state is TrayState.NOT_SET_UP
        self.view.set_actions(
            sync_enabled=state not in (TrayState.SYNCING, TrayState.PAUSED),
            pause_label="Resume" if paused else "Pause",
            folder_enabled=bool(snapshot and snapshot.albums),
            sync_label="Set up…" if not_set_up else "Sync now",
        )

    # -- actions -------------------------------------------------------------------------

    def select_album(self, key: str | None) -> None:
        self.selected_album = key

    def sync_now(self) -> None:
        """The main button: Sync now, or Set up… before anything is connected."""
        if self.snapshot is not None and self.snapshot.state is TrayState.NOT_SET_UP:
            if self._open_setup is not None:
                self._open_setup()
            return
        self.controller.sync_now()

    def toggle_pause(self) -> None:
        if self.snapshot is not None and self.snapshot.state is TrayState.PAUSED:
            self.controller.resume()
        else:
            self.controller.pause(None)

    def open_folder(self) -> None:
        path = self.folder_to_open()
        if path:
            self.controller.open_folder(path)

    def folder_to_open(self) -> str | None:
        if self.snapshot is None or not self.snapshot.albums:
            return None
        for album in self.snapshot.albums:
            if str(album.album_sync_id) == self.selected_album:
                return album.path
        return self.snapshot.albums[0].path

    def open_log(self) -> None:
        self.controller.open_log()

    def _album_with_held_removals(self) -> AlbumStatus | None:
        """The selected album if removals wait in it, else the first album where they do."""
        held = [a for a in (self.snapshot.albums if self.snapshot else ()) if a.held_removals]
        chosen = [a for a in held if str(a.album_sync_id) == self.selected_album]
        return (chosen or held or [None])[0]

    def review_removals(self) -> None:
        """Show the held removals (in Settings, where they are released) of the album that has them."""
        album = self._album_with_held_removals()
        if album is not None and self._review_removals is not None:
            self._review_removals(album.album_sync_id)

    def open_settings(self) -> None:
        if self._open_settings is not None:
            self._open_settings()
        else:
            self.controller.open_settings()

    def add_offer(self, offer: OfferedAlbum, destination: str | None = None) -> None:
        """Sync an offered new album, by default where the wizard puts new albums (``offer_folder``)."""
        if destination is None and self._offer_folder is not None:
            destination = self._offer_folder(offer)
        if destination is None:
            from tray_sync.dialogs.common import pictures_folder
            from tray_sync.sync.connect import default_album_folder

            destination = str(default_album_folder(pictures_folder() / "Immich", offer.name))
        self.controller.add_offered_album(offer, destination)

    def dismiss_offer(self, offer: OfferedAlbum) -> None:
        self.controller.dismiss_offered_album(offer)
