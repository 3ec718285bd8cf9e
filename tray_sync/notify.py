"""Desktop notifications: what deserves one (pure policy) and how it reaches the desktop.

Policy (:class:`NotificationPolicy`): one summary per sync that changed something ("12 new
photos in Family 2024"), with what needs the user's eye (held removals, files changed locally,
albums gone) folded into it; one notification per *new* error, not repeated while the same error
persists; one when the server offers new albums (policy "ask"); nothing for syncs that changed
nothing, and nothing for "offline", which fixes itself.
The settings ``notifications``, ``notify_on_success`` and ``notify_on_error`` switch them off.

Delivery (:class:`Notifier`): on Windows and macOS, pystray's own ``notify``, called right away
on the caller's thread, which is the Tk thread (the thread rule: nothing but the Tk thread touches
the icon; on macOS pystray's icon lives on the main thread's loop). On Linux pystray's
notification is fire-and-forget inside GTK's loop (a failure is invisible to us) and its xorg
backend has none, so we call the freedesktop ``org.freedesktop.Notifications`` service over
D-Bus ourselves (Gio, when PyGObject is installed) or fall back to ``notify-send``; that delivery
runs on a small daemon thread (it touches neither Tk nor pystray) so a slow or missing
notification service never blocks the Tk thread. Every failure is logged and never fatal.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tray_sync import APP_NAME
from tray_sync.appstate import AppSnapshot, TrayState
from tray_sync.sync.progress import AlbumState, SyncReport
from tray_sync.tray_presenter import fit_utf16

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_MS = 8000
BODY_LIMIT = 300
PYSTRAY_BODY_LIMIT = 255  # NOTIFYICONDATAW.szInfo is WCHAR[256], szInfoTitle WCHAR[64] (with the NUL)
PYSTRAY_TITLE_LIMIT = 63


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    is_error: bool = False


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summarise(report: SyncReport) -> str | None:
    """One line about what a sync changed, or None when it changed nothing."""
    changed = [a for a in report.albums if a.downloaded or a.removed]
    if not changed:
        return None
    downloaded = sum(a.downloaded for a in changed)
    removed = sum(a.removed for a in changed)
    where = changed[0].album_name if len(changed) == 1 else plural(len(changed), "album")
    parts = []
    if downloaded:
        parts.append(f"{plural(downloaded, 'new photo')}")
    if removed:
        parts.append(f"{removed} moved to the trash folder")
    return f"{' and '.join(parts)} in {where}"


def report_notices(report: SyncReport) -> list[str]:
    """What the user should look at even though the sync itself went fine."""
    notices = list(report.notices)  # connection-level: a new album not added yet
    for album in report.albums:
        if album.held_removals:
            notices.append(f"{plural(album.held_removals, 'removal')} held in {album.album_name}: "
                           "confirm them in Status…")
        if album.changed_locally:
            notices.append(f"{plural(len(album.changed_locally), 'file')} changed locally in "
                           f"{album.album_name}, left untouched")
        if album.state is AlbumState.UNAVAILABLE:
            notices.append(f"Album {album.album_name} is no longer available on the server")
    return notices


class NotificationPolicy:
    """Decides, snapshot by snapshot, which notifications to show. Runs on the Tk thread."""

    def __init__(self, settings: Callable[[], dict[str, Any]]) -> None:
        self._settings = settings
        self._last_report: SyncReport | None = None
        self._notified_error: str | None = None
        self._notified_notices: set[str] = set()
        self._known_offers: set[tuple[int, str]] | None = None  # None until the first snapshot: a baseline

    def on_snapshot(self, snapshot: AppSnapshot) -> list[Notification]:
        settings = self._settings()
        enabled = bool(settings.get("notifications", True))
        out: list[Notification] = []
        report = snapshot.last_report
        if report is not None and report is not self._last_report:
            self._last_report = report
            summary = summarise(report)
            notices = report_notices(report)
            fresh = [n for n in notices if n not in self._notified_notices]
            # Remember only what is still true (in this report or, between full listings, in the database's
            # notices): a condition that was resolved and comes back later in the same words is news again.
            self._notified_notices = (self._notified_notices & set(snapshot.notices)) | set(notices)
            if enabled and settings.get("notify_on_success", True) and (summary or fresh):
                title = f"{APP_NAME}: sync finished" if summary else f"{APP_NAME}: please check"
                body = "\n".join([*([summary] if summary else []), *fresh])
                out.append(Notification(title, _clip(body)))
        offers = {(offer.connection_id, offer.album_id): offer.label for offer in snapshot.offered_albums}
        if self._known_offers is None:
            self._known_offers = set(offers)
        fresh_offers = [name for key, name in offers.items() if key not in self._known_offers]
        self._known_offers.update(offers)
        if fresh_offers and enabled:
            more = f" and {len(fresh_offers) - 3} more" if len(fresh_offers) > 3 else ""
            names = ", ".join(fresh_offers[:3]) + more
            out.append(Notification(f"{APP_NAME}: new album on the server" if len(fresh_offers) == 1
                                    else f"{APP_NAME}: new albums on the server",
                                    _clip(f"{names}: sync from the tray menu (New albums on the server)")))
        if snapshot.state is TrayState.ERROR and snapshot.error:
            if snapshot.error != self._notified_error:
                self._notified_error = snapshot.error
                if enabled and settings.get("notify_on_error", True):
                    out.append(Notification(f"{APP_NAME}: needs attention", _clip(snapshot.error), is_error=True))
        elif snapshot.state is TrayState.SYNCED:
            self._notified_error = None  # fixed: the same error coming back is news again
        return out


def _clip(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 1] + "…"


# -- delivery -----------------------------------------------------------------------------


Sender = Callable[[Notification, Path | None], None]


class Notifier:
    """Sends notifications off the caller's thread; ``send`` never raises."""

    def __init__(self, *, pystray_notify: Callable[[str, str], None] | None = None,
                 icon_path: Path | None = None, senders: list[Sender] | None = None) -> None:
        self._icon_path = icon_path
        self._inline = False  # deliver on the caller's (Tk) thread instead of the delivery thread
        if senders is not None:
            self._senders = senders
        elif sys.platform.startswith("linux") or pystray_notify is None:
            self._senders = [s for s in (_gio_sender(), _notify_send_sender()) if s is not None]
        else:
            notify = pystray_notify
            # Windows copies them into fixed WCHAR[256]/[64] fields, refusing anything longer.
            self._senders = [lambda n, icon: notify(fit_utf16(n.body, PYSTRAY_BODY_LIMIT),
                                                    fit_utf16(n.title, PYSTRAY_TITLE_LIMIT))]
            self._inline = True  # pystray's icon is the Tk thread's to touch, never a worker's
        self._queue: queue.Queue[Notification | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.sent: list[Notification] = []  # delivered, for the log and the status window

    @property
    def available(self) -> bool:
        return bool(self._senders)

    def send(self, notification: Notification) -> None:
        if not self._senders:
            log.info("Not shown (no notification service): %s: %s", notification.title, notification.body)
            return
        if self._inline:
            self._deliver(notification)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_loop, name="notifier", daemon=True)
            self._thread.start()
        self._queue.put(notification)

    def close(self, timeout: float = 1.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _deliver_loop(self) -> None:
        while (notification := self._queue.get()) is not None:
            self._deliver(notification)

    def _deliver(self, notification: Notification) -> None:
        for sender in self._senders:
            try:
                sender(notification, self._icon_path)
            except Exception as exc:  # a missing notification daemon is not our failure
                log.warning("Notification not shown (%s): %s", exc, notification.title)
                continue
            self.sent.append(notification)
            log.info("Notified: %s: %s", notification.title, notification.body.replace("\n", " / "))
            return


def _gio_sender() -> Sender | None:
    try:
        import gi

        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
    except (ImportError, ValueError):
        return None

    def send(notification: Notification, icon: Path | None) -> None:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        hints = {"urgency": GLib.Variant("y", 2 if notification.is_error else 1)}
        bus.call_sync(
            "org.freedesktop.Notifications", "/org/freedesktop/Notifications", "org.freedesktop.Notifications",
            "Notify",
            GLib.Variant("(susssasa{sv}i)", (APP_NAME, 0, str(icon or ""), notification.title,
                                              notification.body, [], hints, NOTIFY_TIMEOUT_MS)),
            GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, 5000, None,
        )

    return send


def _notify_send_sender() -> Sender | None:
    program = shutil.which("notify-send")
    if program is None:
        return None

    def send(notification: Notification, icon: Path | None) -> None:
        command = [program, "--app-name", APP_NAME, "--expire-time", str(NOTIFY_TIMEOUT_MS),
                   "--urgency", "critical" if notification.is_error else "normal"]
        if icon:
            command += ["--icon", str(icon)]
        result = subprocess.run([*command, notification.title, notification.body], capture_output=True,
                                timeout=10, text=True)
        if result.returncode != 0:
            raise OSError(result.stderr.strip() or f"notify-send exited with {result.returncode}")

    return send
