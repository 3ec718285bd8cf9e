"""What the tray shows, decided without a display: snapshot -> icon, tooltip and menu model.

Pure functions over :class:`~tray_sync.appstate.AppSnapshot`; :mod:`tray_sync.tray` turns the
result into pystray objects. The menu model is a tuple of frozen dataclasses, so "did the menu
change?" is a plain equality test: the tray rebuilds its menu only when that test says so, which
happens on state transitions, never on progress ticks (the syncing status line in the menu is
deliberately coarse; the tooltip carries the numbers).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import Enum

from tray_sync.appstate import AppSnapshot, OfferedAlbum, TrayState
from tray_sync.sync.engine import human_size
from tray_sync.sync.progress import Phase, Progress

TOOLTIP_LIMIT = 127  # Windows truncates longer tooltips (NOTIFYICONDATA.szTip is 128 with the NUL)
PRODUCT = "Immich Sync"
PROGRESS_STEPS = 12  # the icon's arc moves in 1/12 steps: few image updates, still visibly moving
MAX_NOTICE_ITEMS = 3
MAX_FOLDER_ITEMS = 15


class Action(str, Enum):
    NONE = "none"
    SYNC_NOW = "sync_now"
    PAUSE_HOUR = "pause_hour"
    PAUSE_TOMORROW = "pause_tomorrow"
    PAUSE_INDEFINITE = "pause_indefinite"
    RESUME = "resume"
    OPEN_FOLDER = "open_folder"
    ADD_OFFERED = "add_offered"
    DISMISS_OFFERED = "dismiss_offered"
    STATUS = "status"
    SETTINGS = "settings"
    SETUP = "setup"
    OPEN_LOG = "open_log"
    QUIT = "quit"


@dataclass(frozen=True)
class MenuEntry:
    label: str
    action: Action = Action.NONE
    enabled: bool = True
    default: bool = False  # the action of a plain click where the backend has one
    argument: str | OfferedAlbum | None = None  # a folder path or an offered album
    children: tuple[MenuEntry, ...] = ()

    @property
    def is_separator(self) -> bool:
        return self.label == "-"


SEPARATOR = MenuEntry("-", enabled=False)


@dataclass(frozen=True)
class TrayView:
    state: TrayState
    progress_step: int | None  # 0..PROGRESS_STEPS while syncing with a known total, else None
    tooltip: str
    menu: tuple[MenuEntry, ...]


# -- text -------------------------------------------------------------------------------


def _clock(moment: datetime, now: datetime) -> str:
    """A local time that reads naturally: '10:42', 'yesterday 18:03' or '3 Mar 09:15'."""
    local = moment.astimezone() if moment.tzinfo else moment
    today = (now.astimezone() if now.tzinfo else now).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if local.date() == today - timedelta(days=1):
        return "yesterday " + local.strftime("%H:%M")
    if local.date() == today + timedelta(days=1):
        return "tomorrow " + local.strftime("%H:%M")
    return f"{local.day} {local.strftime('%b %H:%M')}"


def _progress_text(progress: Progress | None) -> str:
    if progress is None or progress.phase in (Phase.CHECKING, Phase.DONE):
        return "syncing, checking the server"
    if progress.phase is Phase.LISTING:
        return f"syncing, checking {progress.album_name}" if progress.album_name else "syncing, checking albums"
    if progress.phase is Phase.FINISHING:
        return "syncing, finishing"
    text = f"syncing {progress.files_done}/{progress.files_total}"
    if progress.bytes_left:
        text += f", {human_size(progress.bytes_left)} left"
    return text


def utf16_len(text: str) -> int:
    """Length as Windows counts it (UTF-16 units): an emoji in an album name counts twice."""
    return len(text.encode("utf-16-le")) // 2


def fit_utf16(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 units, ending in "…" when cut; never splits a character.

    pystray hands the tooltip to a fixed ``WCHAR[128]`` on Windows, and ctypes refuses a longer
    string with ValueError, so the limit must hold in UTF-16 units, not in Python characters.
    """
    if utf16_len(text) <= limit:
        return text
    cut = text[:limit - 1]
    while utf16_len(cut) > limit - 1:
        cut = cut[:-1]
    return cut.rstrip() + "…"


def _fit(text: str, limit: int = TOOLTIP_LIMIT) -> str:
    return fit_utf16(" ".join(text.split()), limit)  # one line: tooltips and menu labels do not wrap


def status_line(snapshot: AppSnapshot, now: datetime, *, with_notices: bool = True) -> str:
    """The one-line truth, used for the tooltip (with progress numbers)."""
    state = snapshot.state
    if state is TrayState.NOT_SET_UP:
        text = "not set up yet, open Set up…"
    elif state is TrayState.SYNCING and snapshot.syncing_elsewhere:
        text = "another tray-sync (the command line) is syncing"
    elif state is TrayState.SYNCING:
        text = _progress_text(snapshot.progress)
    elif state is TrayState.PAUSED:
        text = f"paused until {_clock(snapshot.paused_until, now)}" if snapshot.paused_until else "paused"
    elif state is TrayState.OFFLINE:
        text = "offline, server not reachable"
        if snapshot.next_due_at:
            text += f"; retrying at {_clock(snapshot.next_due_at, now)}"
    elif state is TrayState.ERROR:
        text = f"needs attention: {snapshot.error or 'see Status…'}"
    elif snapshot.last_success_at:
        text = f"up to date, last sync {_clock(snapshot.last_success_at, now)}"
    elif snapshot.next_due_at and snapshot.next_due_at > now:
        text = f"not synced yet, first sync at {_clock(snapshot.next_due_at, now)}"
    else:
        text = "not synced yet, first sync starting"
    if with_notices and snapshot.notices and state is not TrayState.ERROR:
        text += f" ({_notice_summary(snapshot.notices)})"
    return _fit(f"{PRODUCT}: {text}")


def _notice_summary(notices: tuple[str, ...]) -> str:
    return notices[0] if len(notices) == 1 else f"{len(notices)} things to check"


def tooltip(snapshot: AppSnapshot, now: datetime) -> str:
    return status_line(snapshot, now)


def menu_status_line(snapshot: AppSnapshot, now: datetime) -> str:
    """The menu's first (disabled) item: the tooltip's text, minus per-tick numbers while syncing."""
    if snapshot.state is TrayState.SYNCING and not snapshot.syncing_elsewhere:
        return _fit(f"{PRODUCT}: syncing…", 80)
    return _fit(status_line(snapshot, now, with_notices=False), 80)  # the notices get lines of their own


def progress_step(progress: Progress | None) -> int | None:
    if progress is None or progress.phase is not Phase.DOWNLOADING:
        return None
    if progress.bytes_total > 0:
        fraction = progress.bytes_done / progress.bytes_total
    elif progress.files_total > 0:
        fraction = progress.files_done / progress.files_total
    else:
        return None
    return max(0, min(PROGRESS_STEPS, int(fraction * PROGRESS_STEPS)))


# -- menu -------------------------------------------------------------------------------


def build_menu(snapshot: AppSnapshot, now: datetime) -> tuple[MenuEntry, ...]:
    state = snapshot.state
    set_up = state is not TrayState.NOT_SET_UP
    if state is TrayState.ERROR and snapshot.error:
        # The whole explanation, wrapped: what is wrong *and* what to do must both be readable.
        items = [MenuEntry(f"{PRODUCT}: needs attention", enabled=False)]
        items.extend(MenuEntry(line, enabled=False) for line in _wrap(snapshot.error, 70, 3))
    else:
        items = [MenuEntry(menu_status_line(snapshot, now), enabled=False)]
    items.extend(MenuEntry(_fit(notice, 80), enabled=False) for notice in snapshot.notices[:MAX_NOTICE_ITEMS])
    if len(snapshot.notices) > MAX_NOTICE_ITEMS:
        items.append(MenuEntry(f"…and {len(snapshot.notices) - MAX_NOTICE_ITEMS} more in Status…", enabled=False))
    items.append(SEPARATOR)
    if not set_up:
        items.append(MenuEntry("Set up…", Action.SETUP, default=True))
    else:
        items.append(MenuEntry("Sync now", Action.SYNC_NOW, enabled=state is not TrayState.PAUSED))
        if state is TrayState.PAUSED:
            items.append(MenuEntry("Resume syncing", Action.RESUME))
        else:
            items.append(MenuEntry("Pause", children=(
                MenuEntry("For 1 hour", Action.PAUSE_HOUR),
                MenuEntry("Until tomorrow", Action.PAUSE_TOMORROW),
                MenuEntry("Until I resume", Action.PAUSE_INDEFINITE),
            )))
        folders = tuple(
            MenuEntry(_fit(album.album_name, 60), Action.OPEN_FOLDER, argument=album.path)
            for album in snapshot.albums[:MAX_FOLDER_ITEMS]
        )
        if len(snapshot.albums) > MAX_FOLDER_ITEMS:
            folders += (MenuEntry(f"…and {len(snapshot.albums) - MAX_FOLDER_ITEMS} more in Status…", enabled=False),)
        items.append(MenuEntry("Open folder", children=folders, enabled=bool(folders)))
        if snapshot.offered_albums:
            items.append(MenuEntry(
                f"New albums on the server ({len(snapshot.offered_albums)})",
                children=tuple(_offer_entry(offer) for offer in snapshot.offered_albums[:MAX_FOLDER_ITEMS]),
            ))
    items.append(SEPARATOR)
    items.append(MenuEntry("Status…", Action.STATUS, default=set_up))
    items.append(MenuEntry("Settings…", Action.SETTINGS, enabled=set_up))
    items.append(MenuEntry("Open log", Action.OPEN_LOG))
    items.append(SEPARATOR)
    items.append(MenuEntry("Quit", Action.QUIT))
    return tuple(items)


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), width) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], _fit(" ".join(lines[max_lines - 1:]), width)]
    return ["  " + line for line in lines]


def _offer_entry(offer: OfferedAlbum) -> MenuEntry:
    return MenuEntry(_fit(offer.label, 60), children=(
        MenuEntry("Sync this album", Action.ADD_OFFERED, argument=offer),
        MenuEntry("Not interested", Action.DISMISS_OFFERED, argument=offer),
    ))


def present(snapshot: AppSnapshot, now: datetime) -> TrayView:
    step = progress_step(snapshot.progress) if snapshot.state is TrayState.SYNCING else None
    icon_state = snapshot.state
    if icon_state is TrayState.SYNCED and snapshot.last_success_at is None:
        # Never synced yet: a green check would claim photos are here; an empty ring says "pending".
        icon_state, step = TrayState.SYNCING, 0
    return TrayView(icon_state, step, tooltip(snapshot, now), build_menu(snapshot, now))


def pause_until(action: Action, now: datetime) -> datetime | None:
    """When a pause chosen from the menu ends (None: until resumed). ``now`` is timezone-aware."""
    if action is Action.PAUSE_HOUR:
        return now + timedelta(hours=1)
    if action is Action.PAUSE_TOMORROW:
        tomorrow = now.astimezone().date() + timedelta(days=1)
        # A naive local time made aware by astimezone() gets tomorrow's UTC offset, so 07:00 stays
        # 07:00 across a daylight-saving change tonight (today's offset would make it 06:00 or 08:00).
        return datetime.combine(tomorrow, time(7)).astimezone()
    return None
