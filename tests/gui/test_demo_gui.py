"""`tray-sync demo` on a desktop: the icon docks, the status window shows the sync, Quit ends it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]


def _windows(display: str) -> dict[str, str]:
    found = subprocess.run(["xdotool", "search", "--name", "."], capture_output=True, text=True,
                           env={**os.environ, "DISPLAY": display}).stdout.split()
    names = {}
    for window in found:
        name = subprocess.run(["xdotool", "getwindowname", window], capture_output=True, text=True,
                              env={**os.environ, "DISPLAY": display}).stdout.strip()
        if name:
            names[window] = name
    return names


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_demo_on_a_desktop(xdisplay: str, tray_host, session_bus: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TRAY_SYNC_HOME", "IMMICH_API_KEY")}
    env.update(DISPLAY=xdisplay, DBUS_SESSION_BUS_ADDRESS=session_bus, TMPDIR=str(tmp_path / "tmp"),
               HOME=str(tmp_path / "home"), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    app = subprocess.Popen([sys.executable, "-m", "tray_sync", "demo", "--photos", "3"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(lambda: any(n.endswith("Status") for n in _windows(xdisplay).values()), 40,
              "the status window")
        _wait(lambda: any(n.startswith("Immich Sync: up to date") for n in _windows(xdisplay).values()), 40,
              "the icon's title to say the demo albums are up to date")
        photos = list((tmp_path / "tmp").rglob("*.jpg"))
        assert len(photos) >= 4 * 3, photos
        assert not list((tmp_path / "tmp").rglob(".~tray-sync-*"))
    finally:
        started = time.monotonic()
        app.send_signal(signal.SIGTERM)  # what Quit in the menu does, without driving the menu here
        out, err = app.communicate(timeout=20)
    assert app.returncode == 0, err.decode()
    assert time.monotonic() - started < 10
    assert "Traceback" not in err.decode()
    assert re.search(r"Demo server \(Immich 3\.\d+\.\d+ compatible\)", out.decode())
