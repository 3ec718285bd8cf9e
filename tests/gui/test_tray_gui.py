"""The tray app for real: Xvfb, the trayer tray host, a private session bus, the built-in server.

The app runs as a subprocess (``tray-sync --home H`` with no command, as a user starts it),
against a DemoServer run by the test, with IMMICH_API_KEY standing in for the keyring. The test
finds the icon's X window (its name is the tooltip), reads its pixels, opens the real menu with
a click and drives it with the keyboard (xdotool), and records notifications with a fake
``org.freedesktop.Notifications`` service on the test's bus.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the
method annotations at class creation, so they must stay plain strings.
"""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.conftest import REPO, screenshot
from tests.e2e_helpers import cli

pytestmark = [pytest.mark.gui, pytest.mark.timeout(150)]

SCREENSHOTS = REPO / "docs" / "screenshots"
ICON_NAME = "^Immich Sync: "
STATUS_WINDOW = "Immich Tray Sync .+ Status"  # an em dash in the title; xdotool takes a regex


# -- a fake notification service on the test's bus ---------------------------------------------


class FakeBusService(ABC):
    """Owns a well-known name on the test's bus from a thread of its own; subclasses make the interface."""

    name = ""
    path = ""

    def __init__(self, address: str) -> None:
        self.address = address
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name=self.name, daemon=True)

    def start(self) -> "FakeBusService":
        self._thread.start()
        assert self._ready.wait(10), f"the fake {self.name} did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    @abstractmethod
    def interface(self) -> Any:
        """The dbus-fast ServiceInterface this fake exports."""

    async def _serve(self) -> None:
        from dbus_fast.aio import MessageBus

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        bus = await MessageBus(bus_address=self.address).connect()
        bus.export(self.path, self.interface())
        await bus.request_name(self.name)
        self._ready.set()
        await self._stop.wait()
        bus.disconnect()


class NotificationRecorder(FakeBusService):
    """org.freedesktop.Notifications that records each Notify call."""

    name = "org.freedesktop.Notifications"
    path = "/org/freedesktop/Notifications"

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.calls: list[dict[str, Any]] = []

    def interface(self) -> Any:
        from dbus_fast.service import ServiceInterface, method

        recorder = self

        class Notifications(ServiceInterface):
            def __init__(self) -> None:
                super().__init__("org.freedesktop.Notifications")

            @method()
            def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: F821
                       actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F722, F821
                recorder.calls.append({"app_name": app_name, "icon": app_icon, "summary": summary, "body": body})
                return len(recorder.calls)

            @method()
            def GetCapabilities(self) -> "as":  # noqa: F722
                return ["body"]

            @method()
            def GetServerInformation(self) -> "ssss":  # noqa: F821
                return ["fake-notifications", "tests", "1.0", "1.2"]

            @method()
            def CloseNotification(self, notification_id: "u") -> None:  # noqa: F821
                return None

        return Notifications()


class StatusNotifierWatcher(FakeBusService):
    """What KDE Plasma or GNOME's AppIndicator extension run: items register here, hosts show them."""

    name = "org.kde.StatusNotifierWatcher"
    path = "/StatusNotifierWatcher"

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.items: list[str] = []

    def interface(self) -> Any:
        from dbus_fast import PropertyAccess
        from dbus_fast.service import ServiceInterface, dbus_property, method

        watcher = self

        class Watcher(ServiceInterface):
            def __init__(self) -> None:
                super().__init__("org.kde.StatusNotifierWatcher")

            @method()
            def RegisterStatusNotifierItem(self, service: "s") -> None:  # noqa: F821
                watcher.items.append(service)

            @method()
            def RegisterStatusNotifierHost(self, service: "s") -> None:  # noqa: F821
                return None

            @dbus_property(access=PropertyAccess.READ)
            def RegisteredStatusNotifierItems(self) -> "as":  # noqa: F722
                return list(watcher.items)

            @dbus_property(access=PropertyAccess.READ)
            def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: F821
                return True

            @dbus_property(access=PropertyAccess.READ)
            def ProtocolVersion(self) -> "i":  # noqa: F821
                return 0

        return Watcher()


# -- a StatusNotifier host's view of the icon (D-Bus) ------------------------------------------------


SNI_ITEM = "/org/ayatana/NotificationItem/immich_tray_sync"


async def _sni_objects(address: str) -> tuple[Any, Any, Any] | None:
    """(bus, item properties, dbusmenu) of the app's StatusNotifierItem, or None while it is not exported."""
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus
    from dbus_fast.errors import InterfaceNotFoundError

    bus = await MessageBus(bus_address=address).connect()
    names = await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                   interface="org.freedesktop.DBus", member="ListNames"))
    for name in names.body[0]:
        if not name.startswith(":"):
            continue
        try:
            node = await bus.introspect(name, SNI_ITEM)
        except Exception:
            continue
        if not any(i.name == "org.kde.StatusNotifierItem" for i in node.interfaces):
            continue
        properties = bus.get_proxy_object(name, SNI_ITEM, node).get_interface("org.freedesktop.DBus.Properties")
        menu_path = (await properties.call_get("org.kde.StatusNotifierItem", "Menu")).value
        menu_node = await bus.introspect(name, menu_path)
        try:
            menu = bus.get_proxy_object(name, menu_path, menu_node).get_interface("com.canonical.dbusmenu")
        except InterfaceNotFoundError:  # the item is exported a moment before its menu (seen on a loaded machine)
            break
        return bus, properties, menu
    bus.disconnect()
    return None


def sni_view(address: str) -> dict[str, Any] | None:
    """What a host would show: title, icon file and the menu as (id, label, enabled, children)."""

    async def read() -> dict[str, Any] | None:
        found = await _sni_objects(address)
        if found is None:
            return None
        bus, properties, menu = found
        try:
            title = (await properties.call_get("org.kde.StatusNotifierItem", "Title")).value
            icon = (await properties.call_get("org.kde.StatusNotifierItem", "IconName")).value
            _, layout = await menu.call_get_layout(0, -1, [])
        finally:
            bus.disconnect()

        def entry(node: list[Any]) -> tuple[int, str, bool, list[Any]]:
            ident, props, children = node
            label = props["label"].value if "label" in props else "-"
            enabled = props["enabled"].value if "enabled" in props else True
            return ident, label, enabled, [entry(child.value) for child in children]

        try:  # pystray writes a new temporary file for every picture and deletes the old one
            with Image.open(icon) as picture:
                image = picture.convert("RGB")
        except FileNotFoundError:
            return None
        return {"title": title, "icon": icon, "picture": image, "menu": entry(layout)[3]}

    return asyncio.run(read())


def sni_click(address: str, *labels: str) -> None:
    """Send the "clicked" event a host sends when the user picks the item at ``labels`` (a path)."""
    view = sni_view(address)
    assert view is not None, "the StatusNotifierItem is gone"
    items = view["menu"]
    for label in labels:
        ident, _, enabled, children = next(item for item in items if item[1] == label)
        items = children
    assert enabled, f"{labels} is disabled"

    async def click() -> None:
        from dbus_fast import Variant

        found = await _sni_objects(address)
        assert found is not None
        bus, _, menu = found
        try:
            await menu.call_event(ident, "clicked", Variant("s", ""), int(time.time()))
        finally:
            bus.disconnect()

    asyncio.run(click())


# -- X helpers ----------------------------------------------------------------------------------


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=10).stdout.strip()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def find_window(pattern: str) -> str | None:
    found = xdotool("search", "--name", pattern).split()
    return found[0] if found else None


def window_name(window: str) -> str:
    return xdotool("getwindowname", window)


def name_with(window: str, text: str) -> str | None:
    name = window_name(window)
    return name if text in name else None


def geometry(window: str) -> tuple[int, int, int, int]:
    """Absolute x, y, width, height; (-1, -1, 0, 0) for a window that is gone."""
    info = subprocess.run(["xwininfo", "-id", window], capture_output=True, text=True, timeout=10).stdout
    found = [re.search(rf"{key}:\s+(-?\d+)", info)
             for key in ("Absolute upper-left X", "Absolute upper-left Y", "Width", "Height")]
    if not all(found):
        return (-1, -1, 0, 0)
    x, y, width, height = (int(match.group(1)) for match in found if match)
    return (x, y, width, height)


def grab(window: str, path: Path) -> Image.Image:
    screenshot(path, window)
    with Image.open(path) as image:
        return image.convert("RGB")


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b.resize(a.size))).mean)


def docked_icon() -> str | None:
    """The tray icon's window once trayer has embedded it (top right; before that it is off screen)."""
    window = find_window(ICON_NAME)
    if window is None:
        return None
    x, y, width, _ = geometry(window)
    return window if x > 600 and 0 <= y < 40 and width > 8 else None


def hidden(window: str) -> bool:
    return window not in visible_windows()


def visible_windows() -> set[str]:
    return set(xdotool("search", "--onlyvisible", "--name", "").split())


def open_menu(icon: str) -> str:
    """Click the icon and wait for its menu (a new visible window taller than a menu item)."""
    before = visible_windows()
    x, y, width, height = geometry(icon)
    xdotool("mousemove", str(x + width // 2), str(y + height // 2), "click", "1")

    def menu() -> str | None:
        for window in visible_windows() - before:
            if geometry(window)[3] > 100:
                return window
        return None

    window = wait_until(menu, 10, "the tray menu to open")
    # Keys sent before GTK holds the keyboard grab are lost: wait for the grab, not for a fixed time
    # (on a loaded 2-core machine a fixed 0.2 s was sometimes too short).
    wait_until(keyboard_grabbed, 10, "the tray menu to take the keyboard")
    return window


def keyboard_grabbed() -> bool:
    """Does another client (the open menu) hold the keyboard grab? Asked by trying to grab it ourselves.

    Only called once the menu is mapped, when GTK already holds its grab; if ours succeeds nobody
    holds one yet, and it is given back at once.
    """
    from Xlib import X
    from Xlib import display as xlib_display

    connection = xlib_display.Display()
    try:
        status = connection.screen().root.grab_keyboard(False, X.GrabModeAsync, X.GrabModeAsync, X.CurrentTime)
        if status == X.GrabSuccess:
            connection.ungrab_keyboard(X.CurrentTime)
            connection.sync()
        return bool(status == X.AlreadyGrabbed)
    finally:
        connection.close()


def menu_keys(*keys: str) -> None:
    for key in keys:
        xdotool("key", key)
        time.sleep(0.15)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def gui_env(xdisplay: str, tray_host: Any, session_bus: str) -> Iterator[dict[str, str]]:
    for tool in ("xdotool", "import", "xwininfo"):
        if shutil.which(tool) is None:
            pytest.skip(f"GUI tools missing ({tool}): apt install xdotool imagemagick x11-utils")
    yield {**os.environ, "DISPLAY": xdisplay, "DBUS_SESSION_BUS_ADDRESS": session_bus, "NO_AT_BRIDGE": "1"}


@pytest.fixture
def notifications(session_bus: str) -> Iterator[NotificationRecorder]:
    recorder = NotificationRecorder(session_bus).start()
    yield recorder
    recorder.stop()


@pytest.fixture
def demo_profile(tmp_path: Path, memory_keyring: Any) -> Iterator[tuple[Path, Any, str]]:
    """A profile connected to a running DemoServer with two albums; downloads throttled to take seconds."""
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer, Fault

    server = DemoServer(mode="3", storage_dir=tmp_path / "server")
    server.start()
    try:
        library = build_demo_library(server, photos_per_album=6, seed=1)
        home = tmp_path / "profile"
        result = cli(home, "connect", server.url, "--name", "demo", "--api-key-stdin",
                     stdin=library.download_key + "\n")
        assert result.code == 0, result.err
        for album in ("Family 2024", "Holidays 2023"):
            result = cli(home, "add", album, str(tmp_path / "photos" / album))
            assert result.code == 0, result.err
        # about 3 s per sync, so the test (and a screenshot) can see "syncing" with its arc
        server.faults.add(Fault(path=r"/api/(assets/[^/]+/original|download/archive)", rate_bytes_per_s=50_000,
                                times=None))
        yield home, server, library.download_key
    finally:
        server.stop()


class App:
    def __init__(self, home: Path, env: dict[str, str], key: str, **extra_env: str) -> None:
        self.log = home / "app-output.txt"
        self._out = open(self.log, "wb")  # noqa: SIM115  (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tray_sync", "--home", str(home)],
            env={**env, "IMMICH_API_KEY": key, "PYTHONFAULTHANDLER": "1", **extra_env}, stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to the output
                try:
                    self.process.wait(3)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
        self._out.close()


@pytest.fixture
def start_app(gui_env: dict[str, str]) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def start(home: Path, key: str, **extra_env: str) -> App:
        app = App(home, gui_env, key, **extra_env)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()


# -- tests --------------------------------------------------------------------------------------


def test_tray_icon_states_menu_notifications_second_launch_and_quit(
    demo_profile: tuple[Path, Any, str], start_app: Callable[..., App], notifications: NotificationRecorder,
    gui_env: dict[str, str], tmp_path: Path,
) -> None:
    home, _server, key = demo_profile
    app = start_app(home, key)
    icon = wait_until(docked_icon, 20, "the tray icon to dock")
    shots = tmp_path / "shots"

    # Docked in trayer's panel, at the top right of the screen.
    x, y, width, height = geometry(icon)
    assert x > 1000 and y < 40 and 16 <= width <= 48, (x, y, width, height)
    assert window_name(icon).startswith("Immich Sync: not synced yet, first sync at")  # set up, never synced
    synced_before = grab(icon, shots / "start.png")

    # Sync now from the real menu: the first sensitive item (the status line above it is disabled).
    open_menu(icon)
    menu_keys("Down", "Return")
    name = wait_until(lambda: name_with(icon, "syncing"), 10, "syncing")
    wait_until(lambda: re.search(r"syncing \d+/\d+", window_name(icon)), 10, "download progress in the tooltip")

    def grab_while_downloading() -> Image.Image | None:
        image = grab(icon, shots / "syncing.png")
        # Still downloading once the picture is taken: the picture shows the syncing state.
        downloading = re.search(r"syncing \d+/\d+", window_name(icon))
        return image if downloading and difference(image, synced_before) > 3 else None

    syncing = wait_until(grab_while_downloading, 10, "the icon to change while syncing")
    # The arc fills up as the download proceeds (a loaded machine may only see the end of it).
    wait_until(lambda: _past_half(window_name(icon)) or name_with(icon, "last sync"), 30, "the sync to pass half way")
    wait_until(lambda: difference(grab(icon, shots / "syncing-later.png"), syncing) > 0.3, 5, "the arc to grow")
    screenshot(shots / "syncing-screen.png")
    assert len(name) <= 127

    done = wait_until(lambda: name_with(icon, "last sync"), 30, "the sync to finish")
    assert done.startswith("Immich Sync: up to date, last sync")
    synced = grab(icon, shots / "synced.png")
    assert difference(synced, syncing) > 3
    photos = [p for p in (tmp_path / "photos").rglob("*") if p.is_file() and not p.name.startswith(".")]

    # One summary notification, on the fake service of the test's bus.
    wait_until(lambda: notifications.calls, 10, "a notification")
    (first,) = notifications.calls
    assert first["app_name"] == "Immich Tray Sync" and first["summary"] == "Immich Tray Sync: sync finished"
    assert first["body"] == f"{len(photos)} new photos in 2 albums"

    # A photo edited on disk is left alone, and said so in the tooltip, the menu and one notification.
    edited = sorted(photos)[0]
    edited.write_bytes(edited.read_bytes() + b"edited")
    open_menu(icon)
    screenshot(shots / "menu.png")
    menu_keys("Down", "Return")
    notice = wait_until(lambda: name_with(icon, "changed locally"), 20, "the changed-locally notice")
    assert notice.startswith("Immich Sync: up to date, last sync") and "(1 file changed locally in" in notice
    wait_until(lambda: len(notifications.calls) == 2, 10, "the notice's notification")
    assert notifications.calls[1]["summary"] == "Immich Tray Sync: please check"
    assert notifications.calls[1]["body"] == f"1 file changed locally in {edited.parent.name}, left untouched"
    assert edited.read_bytes().endswith(b"edited")

    # Pause for an hour from the submenu: the icon goes grey with a pause badge.
    open_menu(icon)
    menu_keys("Down", "Down", "Right")
    screenshot(shots / "menu-pause.png")
    menu_keys("Return")
    wait_until(lambda: "paused until" in window_name(icon), 10, "paused")
    paused = grab(icon, shots / "paused.png")
    assert difference(paused, synced) > 3
    grey = ImageStat.Stat(paused.convert("HSV")).mean[1]
    assert grey < ImageStat.Stat(synced.convert("HSV")).mean[1]

    # A second launch hands over to this one, which opens its status window, and exits 0.
    second = subprocess.run([sys.executable, "-m", "tray_sync", "--home", str(home)], cwd=REPO,
                            env=gui_env,
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    status = wait_until(lambda: find_window(STATUS_WINDOW), 10, "the status window")
    time.sleep(0.8)
    screenshot(shots / "status.png")
    assert geometry(status)[2] > 400
    assert len(notifications.calls) == 2  # none for the pause

    # Quit from the menu (the last item): the process ends by itself, cleanly, within seconds.
    open_menu(icon)
    menu_keys("Up", "Return")
    started = time.monotonic()
    code = app.process.wait(10)
    assert code == 0, app.output()
    assert time.monotonic() - started < 5
    assert not find_window(ICON_NAME)
    assert "Traceback" not in app.output()
    log = (home / "logs" / "tray-sync.log").read_text()
    assert "Tray backend appindicator" in log or "Tray backend gtk" in log
    assert "CRITICAL" not in log
    _keep_screenshots(shots)


def test_on_a_status_notifier_desktop_the_menu_works_over_dbus(
    demo_profile: tuple[Path, Any, str], start_app: Callable[..., App], session_bus: str,
    notifications: NotificationRecorder,
) -> None:
    """KDE Plasma, GNOME with the AppIndicator extension, ...: no X11 tray icon, a D-Bus item and menu."""
    home, _, key = demo_profile
    watcher = StatusNotifierWatcher(session_bus).start()
    try:
        app = start_app(home, key)
        view = wait_until(lambda: sni_view(session_bus), 20, "the StatusNotifierItem")
        assert watcher.items, "the icon did not register with the watcher"
        assert not find_window(ICON_NAME), "an X11 tray icon as well"
        labels = [item[1] for item in view["menu"]]
        assert labels == [view["title"], "-", "Sync now", "Pause", "Open folder", "-", "Status…", "Settings…",
                          "Open log", "-", "Quit"]
        assert view["title"].startswith("Immich Sync: not synced yet")  # the status line, for hosts without tooltips
        folders = next(item for item in view["menu"] if item[1] == "Open folder")[3]
        assert [f[1] for f in folders] == ["Family 2024", "Holidays 2023"]
        assert view["picture"].size == (64, 64)

        sni_click(session_bus, "Sync now")
        synced = wait_until(lambda: (v := sni_view(session_bus)) and "last sync" in v["title"] and v, 30,
                            "the sync started from the D-Bus menu to finish")
        assert synced["menu"][0][1].startswith("Immich Sync: up to date, last sync")
        assert synced["icon"] != view["icon"]  # pictures went by for the syncing state in between
        wait_until(lambda: notifications.calls, 10, "the summary notification")

        sni_click(session_bus, "Pause", "Until I resume")
        paused = wait_until(lambda: (v := sni_view(session_bus)) and v["title"] == "Immich Sync: paused" and v, 10,
                            "paused")
        assert "Resume syncing" in [item[1] for item in paused["menu"]]
        sync_now = next(item for item in paused["menu"] if item[1] == "Sync now")
        assert sync_now[2] is False
        assert difference(paused["picture"], synced["picture"]) > 3
        saturation = ImageStat.Stat(paused["picture"].convert("HSV")).mean[1]
        assert saturation < ImageStat.Stat(synced["picture"].convert("HSV")).mean[1]  # greyed out

        sni_click(session_bus, "Quit")
        assert app.process.wait(10) == 0, app.output()
    finally:
        watcher.stop()


def test_pause_stops_a_running_sync_within_a_second_and_resume_finishes_it(
    demo_profile: tuple[Path, Any, str], start_app: Callable[..., App], tmp_path: Path,
) -> None:
    from tray_sync.demo.server import Fault
    from tray_sync.sync.fsops import is_partial_name

    home, server, key = demo_profile
    server.faults.clear()
    server.faults.add(Fault(path=r"/api/(assets/[^/]+/original|download/archive)", rate_bytes_per_s=6_000,
                            times=None))  # a sync of about half a minute
    app = start_app(home, key)
    icon = wait_until(docked_icon, 20, "the tray icon to dock")
    open_menu(icon)
    menu_keys("Down", "Return")  # Sync now
    wait_until(lambda: re.search(r"syncing \d+/\d+", window_name(icon)), 15, "the download to start")
    time.sleep(1.5)  # well inside some downloads
    open_menu(icon)
    menu_keys("Down", "Down", "Right", "Down", "Down", "Return")  # Pause > Until I resume
    wait_until(lambda: window_name(icon) == "Immich Sync: paused", 10, "paused")
    log = home / "logs" / "tray-sync.log"
    lines = wait_until(lambda: _log_times(log, "Paused until resumed", "sync cancelled;"), 10, "the cancelled sync")
    assert lines[1] - lines[0] < 1.0, f"the sync took {lines[1] - lines[0]:.2f} s to stop"
    photos = tmp_path / "photos"

    def final_files() -> list[Path]:
        return sorted(p for p in photos.rglob("*") if p.is_file() and not is_partial_name(p.name))

    for path in final_files():  # nothing half-written under a final name (a cut JPEG fails to verify)
        if path.suffix.lower() == ".jpg":
            with Image.open(path) as image:
                image.verify()
    held = final_files()
    time.sleep(2)
    assert final_files() == held, "files kept arriving while paused"

    server.faults.clear()
    open_menu(icon)
    menu_keys("Down", "Return")  # Resume syncing (Sync now above it is disabled while paused)
    wait_until(lambda: name_with(icon, "up to date, last sync"), 30, "the resumed sync to finish")
    assert not [p for p in photos.rglob("*") if is_partial_name(p.name)]
    assert len(final_files()) > len(held)
    app.process.send_signal(signal.SIGTERM)
    assert app.process.wait(10) == 0


def test_quit_during_a_sync_and_a_crash_leave_no_partial_file_and_no_stale_lock(
    demo_profile: tuple[Path, Any, str], start_app: Callable[..., App], tmp_path: Path,
) -> None:
    """Quit from the menu mid-download: the sync stops within a second and the app exits 0. Then
    kill -9 mid-download: the next start is not blocked (instance lock, sync lock) and finishes the job."""
    from tray_sync.demo.server import Fault
    from tray_sync.sync.fsops import is_partial_name

    home, server, key = demo_profile
    server.faults.clear()
    server.faults.add(Fault(path=r"/api/(assets/[^/]+/original|download/archive)", rate_bytes_per_s=6_000,
                            times=None))  # a sync of about half a minute
    photos = tmp_path / "photos"
    log = home / "logs" / "tray-sync.log"

    def downloading(icon: str) -> None:
        wait_until(lambda: re.search(r"syncing \d+/\d+", window_name(icon)), 20, "the download to start")
        wait_until(lambda: any(is_partial_name(p.name) for p in photos.rglob("*")), 10, "a download in flight")

    app = start_app(home, key)
    icon = wait_until(docked_icon, 20, "the tray icon to dock")
    open_menu(icon)
    menu_keys("Down", "Return")  # Sync now
    downloading(icon)
    open_menu(icon)
    menu_keys("Up", "Return")  # Quit
    started = time.monotonic()
    assert app.process.wait(10) == 0, app.output()
    assert time.monotonic() - started < 5
    quitting, cancelled = wait_until(lambda: _log_times(log, "Quitting", "sync cancelled;"), 5, "the cancelled sync")
    assert cancelled - quitting < 1.0, f"the sync took {cancelled - quitting:.2f} s to stop"
    assert "Traceback" not in app.output()
    _assert_final_files_are_whole(home, photos)

    crashed = start_app(home, key)
    icon = wait_until(docked_icon, 20, "the tray icon after a clean quit")
    open_menu(icon)
    menu_keys("Down", "Return")  # Sync now: it continues where the quit stopped it
    downloading(icon)
    crashed.process.kill()  # kill -9: no cleanup at all, the lock files stay behind
    assert crashed.process.wait(10) == -signal.SIGKILL
    _assert_final_files_are_whole(home, photos)

    server.faults.clear()
    again = start_app(home, key)
    icon = wait_until(docked_icon, 20, "the tray icon after a crash")
    wait_until(lambda: name_with(icon, "up to date, last sync"), 40, "the sync after the crash to finish")
    assert "already running" not in again.output()
    again.process.send_signal(signal.SIGTERM)
    assert again.process.wait(10) == 0, again.output()
    assert not [p for p in photos.rglob("*") if is_partial_name(p.name)], "partial files left after a full sync"
    synced, recorded = _assert_final_files_are_whole(home, photos)
    assert synced == recorded and len(synced) > 12  # both albums, every photo (and the demo's name clash, live photo)
    assert "CRITICAL" not in log.read_text()


def _assert_final_files_are_whole(home: Path, photos: Path) -> tuple[list[Path], list[Path]]:
    """Every file under a final name is one the store recorded, with the server's checksum: no partial."""
    import base64
    import hashlib

    from tray_sync.context import Context
    from tray_sync.paths import AppPaths
    from tray_sync.sync.fsops import is_partial_name

    context = Context(paths=AppPaths.resolve(home))
    try:
        expected = {Path(album.local_path) / record.local_path: record.checksum
                    for album in context.store.album_syncs()
                    for record in context.store.synced_assets(album.id).values()}
    finally:
        context.close()
    finals = sorted(p for p in photos.rglob("*") if p.is_file() and not is_partial_name(p.name))
    for path in finals:
        assert path in expected, f"{path} is under a final name but was never recorded as synced"
        digest = base64.b64encode(hashlib.sha1(path.read_bytes()).digest()).decode("ascii")
        assert digest == expected[path], f"{path} does not match the server's checksum"
    return finals, sorted(expected)


def _log_times(log: Path, *needles: str) -> list[float] | None:
    """The times of the first log lines containing each needle, in seconds (None until all are there)."""
    from datetime import datetime as dt

    times = []
    text = log.read_text(errors="replace") if log.exists() else ""
    for needle in needles:
        line = next((line for line in text.splitlines() if needle in line), None)
        if line is None:
            return None
        times.append(dt.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return times


def test_a_rejected_key_turns_the_icon_to_error_and_notifies_once(
    demo_profile: tuple[Path, Any, str], start_app: Callable[..., App], notifications: NotificationRecorder,
    tmp_path: Path,
) -> None:
    home, _, _ = demo_profile
    start_app(home, "not-the-right-key-0123456789")
    icon = wait_until(docked_icon, 20, "the tray icon to dock")
    before = grab(icon, tmp_path / "before.png")
    open_menu(icon)
    menu_keys("Down", "Return")  # Sync now
    name = wait_until(lambda: name_with(icon, "needs attention"), 20, "the error state")
    assert len(name) <= 127 and "key" in name.lower()
    error = grab(icon, tmp_path / "error.png")
    assert difference(error, before) > 3
    red = error.crop((error.width // 2, error.height // 2, error.width, error.height))
    r, g, b = ImageStat.Stat(red).mean
    assert r > g + 30 and r > b + 30, "the error badge is not red"
    wait_until(lambda: notifications.calls, 10, "the error notification")
    (call,) = notifications.calls
    assert call["summary"] == "Immich Tray Sync: needs attention" and "key" in call["body"].lower()
    open_menu(icon)
    if os.environ.get("TRAY_SYNC_SCREENSHOTS"):
        with Image.open(screenshot(tmp_path / "error-menu.png")) as shot:
            shot.crop((shot.width - 720, 0, shot.width, 310)).save(SCREENSHOTS / "tray-menu-error.png")
    log = home / "logs" / "tray-sync.log"
    errors_before = log.read_text().count("sync error;")  # the scheduled first sync may have run as well
    menu_keys("Down", "Return")  # the same error again: no second notification
    wait_until(lambda: log.read_text().count("sync error;") > errors_before, 20, "the second sync")
    time.sleep(0.5)
    assert len(notifications.calls) == 1


def test_without_pygobject_the_xorg_icon_explains_itself_and_opens_the_status_window(
    demo_profile: tuple[Path, Any, str], start_app: Callable[..., App], tmp_path: Path,
) -> None:
    home, _, key = demo_profile
    app = start_app(home, key, PYSTRAY_BACKEND="xorg")
    icon = wait_until(docked_icon, 20, "the xorg tray icon to dock")
    hint = wait_until(lambda: find_window("tray menu unavailable"), 10, "the 'what to install' window")
    status = wait_until(lambda: find_window(STATUS_WINDOW), 10, "the status window")
    assert hint and status
    time.sleep(0.5)
    screenshot(tmp_path / "xorg.png")
    grab(icon, tmp_path / "xorg-icon.png")
    log = (home / "logs" / "tray-sync.log").read_text()
    assert "Tray backend xorg (menu: no)" in log
    assert "gir1.2-ayatanaappindicator3-0.1" in log
    app.process.send_signal(signal.SIGTERM)
    assert app.process.wait(10) == 0
    # Told once: the next start opens only the status window.
    app2 = start_app(home, key, PYSTRAY_BACKEND="xorg")
    status = wait_until(lambda: find_window(STATUS_WINDOW), 20, "the status window again")
    time.sleep(0.5)
    assert not find_window("tray menu unavailable")
    # Closed, it comes back with a left click on the icon (pystray's xorg icon ignores clicks by itself).
    xdotool("windowfocus", "--sync", status, "key", "Escape")
    wait_until(lambda: hidden(status), 10, "the status window to close")
    icon = wait_until(docked_icon, 20, "the xorg tray icon to dock again")
    x, y, width, height = geometry(icon)
    xdotool("mousemove", str(x + width // 2), str(y + height // 2), "click", "1")
    wait_until(lambda: status in visible_windows() or find_window(STATUS_WINDOW) in visible_windows(), 10,
               "the status window after a click on the icon")
    app2.process.send_signal(signal.SIGTERM)
    assert app2.process.wait(10) == 0


def test_with_no_system_tray_at_all_the_status_window_opens(
    demo_profile: tuple[Path, Any, str], gui_env: dict[str, str], tmp_path: Path,
) -> None:
    """Stock GNOME has neither an X11 tray nor a StatusNotifier host: the icon would be invisible."""
    from tests.conftest import _stop, start_xvfb

    xvfb, display = start_xvfb("-screen", "0", "1024x700x24", "-nolisten", "tcp")
    env = {**gui_env, "DISPLAY": display}
    home, _, key = demo_profile
    app = None
    try:
        wait_until(lambda: subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0, 15, "Xvfb")
        app = subprocess.Popen([sys.executable, "-m", "tray_sync", "--home", str(home)], cwd=REPO,
                               env={**env, "IMMICH_API_KEY": key}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def status_window() -> bool:
            found = subprocess.run(["xdotool", "search", "--name", STATUS_WINDOW], env=env, capture_output=True,
                                   text=True, timeout=10)
            return bool(found.stdout.strip())

        wait_until(status_window, 20, "the status window on a desktop without a tray")
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=15)
        assert app.returncode == 0, err
        assert "No system tray was found" in err.decode()
    finally:
        if app is not None and app.poll() is None:
            app.kill()
            app.wait(5)
        _stop(xvfb)


def test_a_profile_not_set_up_opens_the_setup_wizard(gui_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    process = subprocess.Popen([sys.executable, "-m", "tray_sync", "--home", str(home)], env=gui_env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        icon = wait_until(docked_icon, 20, "the tray icon")
        assert "not set up" in window_name(icon)
        wait_until(lambda: find_window("^Set up Immich Tray Sync$"), 10, "the setup wizard")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


def _past_half(name: str) -> bool:
    found = re.search(r"syncing (\d+)/(\d+)", name)
    return bool(found) and 2 * int(found.group(1)) >= int(found.group(2))  # type: ignore[union-attr]


def _keep_screenshots(shots: Path) -> None:
    """Refresh docs/screenshots when asked (TRAY_SYNC_SCREENSHOTS=1), cropped to the interesting part."""
    if not os.environ.get("TRAY_SYNC_SCREENSHOTS"):
        return
    from PIL import ImageDraw

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in ("menu", "menu-pause"):
        with Image.open(shots / f"{name}.png") as menu:
            menu.crop((menu.width - 720, 0, menu.width, 280)).save(SCREENSHOTS / f"tray-{name}.png")
    # The icon as trayer showed it, state by state, enlarged 3x without smoothing.
    states = [("syncing", "syncing"), ("syncing-later", "syncing, later"), ("synced", "up to date"),
              ("paused", "paused")]
    tiles = []
    for file, label in states:
        with Image.open(shots / f"{file}.png") as icon:
            tiles.append((icon.convert("RGB").resize((icon.width * 3, icon.height * 3), Image.Resampling.NEAREST),
                          label))
    width = sum(max(t.width, 90) + 16 for t, _ in tiles) + 16
    strip = Image.new("RGB", (width, tiles[0][0].height + 44), (48, 48, 48))
    draw = ImageDraw.Draw(strip)
    x = 16
    for tile, label in tiles:
        slot = max(tile.width, 90)
        strip.paste(tile, (x + (slot - tile.width) // 2, 10))
        draw.text((x + slot // 2, tile.height + 26), label, fill=(230, 230, 230), anchor="mm")
        x += slot + 16
    strip.save(SCREENSHOTS / "tray-states.png")
