"""Shared fixtures: profiles, an in-memory keyring, the built-in server, and a real X display.

GUI fixtures start Xvfb, the trayer tray host and a private D-Bus session bus, and skip with
a reason naming the Debian packages when a tool is missing (`.ci/run` installs them, and
fails when a test that CI can run was skipped).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from bench.xvfb import start_xvfb, stop

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GUI_PACKAGES = "xvfb xdotool trayer x11-utils dbus"


# -- keyring ----------------------------------------------------------------------------


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring for unit tests; never touches the OS."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile folder of its own, and no key leaking in from the environment."""
    profile = tmp_path / "profile"
    monkeypatch.setenv("TRAY_SYNC_HOME", str(profile))
    monkeypatch.delenv("IMMICH_API_KEY", raising=False)
    return profile


# -- the built-in server ----------------------------------------------------------------


@pytest.fixture(params=["3", "2"], ids=["immich3", "immich2"])
def server_mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def demo_server(server_mode: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import DemoServer

    server = DemoServer(mode=server_mode, storage_dir=tmp_path / "server-storage")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def demo_library(demo_server):  # type: ignore[no-untyped-def]
    from tray_sync.demo.library import build_demo_library

    return build_demo_library(demo_server, photos_per_album=6, seed=1)


# -- a real display ----------------------------------------------------------------------


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"GUI tools missing ({', '.join(missing)}): apt install {GUI_PACKAGES}")


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


_stop = stop  # the GUI tests' name for it


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[str]:
    """A private Xvfb display (``:N``); DISPLAY is set for the whole session while it runs."""
    if not sys.platform.startswith("linux"):
        pytest.skip("platform: GUI tests run under Xvfb on Linux")
    _need("Xvfb", "xdpyinfo")
    xvfb, display = start_xvfb("-screen", "0", "1280x800x24", "-nolisten", "tcp", "-dpi", "96")
    env = {**os.environ, "DISPLAY": display}
    _wait_for(
        lambda: subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0,
        15, "Xvfb",
    )
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    os.environ["NO_AT_BRIDGE"] = "1"
    try:
        yield display
    finally:
        _stop(xvfb)
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous


@pytest.fixture(scope="session")
def session_bus() -> Iterator[str]:
    """A private D-Bus session bus; DBUS_SESSION_BUS_ADDRESS points at it."""
    _need("dbus-daemon")
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().decode().strip()
    previous = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    try:
        yield address
    finally:
        _stop(daemon)
        if previous is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = previous


@pytest.fixture(scope="session")
def tray_host(xdisplay: str) -> Iterator[subprocess.Popen[bytes]]:
    """trayer, an X11 system tray host, docked top right; waits until it owns the tray selection."""
    _need("trayer")
    from Xlib import display as xlib_display

    trayer = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "32",
         "--SetDockType", "true", "--transparent", "false", "--tint", "0x303030"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    connection = xlib_display.Display(xdisplay)
    selection = connection.intern_atom("_NET_SYSTEM_TRAY_S0")
    try:
        _wait_for(lambda: connection.get_selection_owner(selection) != 0, 15, "trayer to own the tray")
        yield trayer
    finally:
        connection.close()
        _stop(trayer)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def screenshot(path: Path, window: str = "root") -> Path:
    """Save a PNG of the display (or one X window id) with ImageMagick's import."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["import", "-window", window, str(path)], check=True, timeout=20)
    return path
