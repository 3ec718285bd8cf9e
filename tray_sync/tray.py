"""The pystray icon: built from :class:`TrayView`, run in its own thread, callbacks only post.

Threading: ``icon.run(setup)`` runs in a daemon thread on Linux and Windows; on macOS pystray
must share the main thread's Cocoa loop with Tk, so there it is ``run_detached()``. The icon's
picture, title and menu are changed only from the Tk thread (:meth:`TrayIcon.apply`); the gtk
and appindicator backends hand those changes to their own GLib loop and xorg to its own thread.
Menu callbacks run on the tray's thread and only call ``on_action``, which posts to the app's
queue. ``import pystray`` needs a display on Linux, so it happens in :meth:`TrayIcon.start`.

Linux without PyGObject gets pystray's xorg backend: no menu, no notifications, no working
click (``HAS_MENU`` is False). :attr:`TrayIcon.has_menu` tells the app, which then explains once
what to install and opens the status window instead.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from tray_sync import APP_ID, APP_NAME
from tray_sync.icons import state_icon
from tray_sync.tray_presenter import Action, MenuEntry, TrayView

log = logging.getLogger(__name__)

OnAction = Callable[[Action, Any], None]

LINUX_TRAY_HINT = (
    "The tray icon has no menu on this desktop because PyGObject is missing. Install it to get the "
    "menu and notifications:\n\n"
    "  sudo apt install gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1 python3-gi\n"
    "  (Fedora: sudo dnf install gtk3 libayatana-appindicator-gtk3 python3-gobject)\n\n"
    "and, in a pipx or venv install (building it needs libgirepository1.0-dev libcairo2-dev):\n"
    "  pipx inject immich-tray-sync 'PyGObject<3.51'   or   pip install 'immich-tray-sync[linux-tray]'\n\n"
    "Until then, click the icon (or start tray-sync again) to open the status window."
)


NO_TRAY_HINT = (
    "No system tray was found on this desktop, so the tray icon cannot show. On GNOME, install the "
    "'AppIndicator and KStatusNotifierItem Support' extension (Debian/Ubuntu: "
    "gnome-shell-extension-appindicator). The status window opens at start instead."
)


def tray_host_available() -> bool:
    """Is there anything on Linux to show the icon: a StatusNotifier host (D-Bus) or an X11 system tray?

    Without one (stock GNOME, for instance), pystray starts fine and the icon is simply invisible,
    so the app has to open its status window to be usable at all. Other platforms always have a tray.
    """
    if not sys.platform.startswith("linux"):
        return True
    return _status_notifier_watcher_running() or _x11_tray_owned()


def _status_notifier_watcher_running() -> bool:
    try:
        import gi

        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib

        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                              "NameHasOwner", GLib.Variant("(s)", ("org.kde.StatusNotifierWatcher",)),
                              GLib.VariantType("(b)"), Gio.DBusCallFlags.NONE, 2000, None)
        return bool(reply.unpack()[0])
    except Exception:  # no PyGObject, no session bus: no StatusNotifier host we could use
        return False


def _x11_tray_owned() -> bool:
    if not os.environ.get("DISPLAY"):
        return False
    try:
        from Xlib import display as xlib_display

        connection = xlib_display.Display()
        try:
            screen = connection.get_default_screen()
            atom = connection.intern_atom(f"_NET_SYSTEM_TRAY_S{screen}")
            return bool(connection.get_selection_owner(atom))
        finally:
            connection.close()
    except Exception:
        log.debug("cannot ask X for a system tray", exc_info=True)
        return False


def _name_the_gtk_program() -> None:
    """GTK names the menu windows and notifications after the program; make that us, not ``__main__.py``."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import gi

        gi.require_version("GLib", "2.0")
        from gi.repository import GLib
    except (ImportError, ValueError):
        return
    GLib.set_prgname(APP_ID)
    GLib.set_application_name(APP_NAME)


def _without_gdk_gl() -> str | None:
    """Keep GDK from loading OpenGL (Mesa with LLVM: about 50 MB) that a tray icon never uses.

    Measured by ``python -m bench``: the idle app was 78 MB above a bare tkinter+pystray process,
    55 MB of it libLLVM and swrast_dri. Returns the user's own GDK_GL setting, kept as it was.
    """
    previous = os.environ.get("GDK_GL")
    if previous is None and sys.platform.startswith("linux"):
        os.environ["GDK_GL"] = "disable"
    return previous


def _restore_gdk_gl(previous: str | None) -> None:
    """GDK has read it by now; programs the app starts (a file manager) get the user's setting."""
    if previous is None:
        os.environ.pop("GDK_GL", None)


class TrayIcon:
    def __init__(self, on_action: OnAction) -> None:
        self._on_action = on_action
        self._icon: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping = False
        self._image_key: tuple[object, ...] | None = None
        self._title = ""
        self._menu_model: tuple[MenuEntry, ...] | None = None
        self.has_menu = False
        self.has_notification = False
        self.backend = ""

    # -- lifecycle (Tk thread) --

    def start(self, view: TrayView) -> None:
        _name_the_gtk_program()
        gl_setting = _without_gdk_gl()
        import pystray

        self._pystray = pystray
        self._image_key = (view.state, view.progress_step)
        self._title = view.tooltip
        self._menu_model = view.menu
        options: dict[str, Any] = {}
        if sys.platform == "darwin":  # pragma: no cover - macOS only
            # Share the NSApplication whose loop Tk's mainloop runs (pystray's darwin integration).
            import AppKit

            options["darwin_nsapplication"] = AppKit.NSApplication.sharedApplication()
        self._icon = pystray.Icon(APP_ID, state_icon(view.state, view.progress_step), view.tooltip,
                                  self._build_menu(view.menu), **options)
        _restore_gdk_gl(gl_setting)
        self.backend = type(self._icon).__module__.rsplit(".", 1)[-1].lstrip("_")
        self.has_menu = bool(self._icon.HAS_MENU)
        self.has_notification = bool(getattr(self._icon, "HAS_NOTIFICATION", False)) and self.backend != "xorg"
        log.info("Tray backend %s (menu: %s)", self.backend, "yes" if self.has_menu else "no")
        if self.backend == "xorg":
            self._make_xorg_icon_clickable()
        if sys.platform == "darwin":
            self._icon.run_detached(self._setup)
        else:
            self._thread = threading.Thread(target=self._run, name="tray", daemon=True)
            self._thread.start()

    def _make_xorg_icon_clickable(self) -> None:
        """pystray 0.19.5's xorg icon handles clicks but never asks X for them (upstream issue #151).

        Asking for button presses on its window makes a left click run the default menu item
        (Status…), so the icon is not dead on desktops without PyGObject. Done before ``run``,
        while no other thread uses the icon's X connection.
        """
        try:
            from Xlib import X

            self._icon._window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask)
            self._icon._display.flush()
        except Exception:  # a later pystray may have moved things: clicks then stay as pystray made them
            log.debug("cannot enable clicks on the xorg tray icon", exc_info=True)

    def _run(self) -> None:
        try:
            self._icon.run(self._setup)
        except Exception:
            if self._stopping:
                # pystray's gtk backends withdraw their last notification while finalizing, and raise
                # when the desktop has no notification service: harmless once we are stopping.
                log.debug("the tray icon raised while stopping", exc_info=True)
                return
            log.exception("the tray icon stopped with an error")
            raise

    def _setup(self, icon: Any) -> None:
        icon.visible = True
        self._ready.set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 3.0) -> bool:
        """Remove the icon and end its thread; True when it ended within ``timeout``."""
        if self._icon is None:
            return True
        self._stopping = True
        # Stopping before setup ran can hang pystray: wait for setup (bounded) first.
        if self._ready.wait(min(timeout, 2.0)):
            try:
                self._icon.stop()
            except Exception:
                log.exception("stopping the tray icon failed")
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the tray thread did not end within %.0f s (no tray host?)", timeout)
                return False
        return True

    # -- updates (Tk thread) --

    def apply(self, view: TrayView) -> None:
        # Never after stop: pystray's xorg backend would wait forever for its finished loop to answer.
        if self._icon is None or self._stopping or (self._thread is not None and not self._thread.is_alive()):
            return
        key = (view.state, view.progress_step)
        if key != self._image_key:
            self._image_key = key
            self._icon.icon = state_icon(view.state, view.progress_step)
        if view.tooltip != self._title:
            self._title = view.tooltip
            self._icon.title = view.tooltip
        if view.menu != self._menu_model:  # only on transitions: equal models are not rebuilt
            self._menu_model = view.menu
            self._icon.menu = self._build_menu(view.menu)

    def notify(self, title: str, message: str) -> None:
        if self._icon is not None and self.has_notification and not self._stopping:
            self._icon.notify(message, title)

    # -- menus --

    def _build_menu(self, entries: tuple[MenuEntry, ...]) -> Any:
        pystray = self._pystray
        return pystray.Menu(*(self._build_item(entry) for entry in entries))

    def _build_item(self, entry: MenuEntry) -> Any:
        pystray = self._pystray
        if entry.is_separator:
            return pystray.Menu.SEPARATOR
        label = menu_label(entry.label)
        if entry.children:
            return pystray.MenuItem(label, self._build_menu(entry.children), enabled=entry.enabled)
        action, argument = entry.action, entry.argument

        def clicked(icon: Any, item: Any) -> None:  # on the tray thread: post, never act
            self._on_action(action, argument)

        return pystray.MenuItem(label, clicked, enabled=entry.enabled and action is not Action.NONE,
                                default=entry.default)


def menu_label(text: str) -> str:
    """Windows menus read "&" as a mnemonic marker ("Tom & Jerry" lost its "&"); "&&" shows one "&"."""
    return text.replace("&", "&&") if sys.platform == "win32" else text
