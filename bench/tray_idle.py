"""The tray app at rest: RSS and PSS against a bare process that loads the same GUI toolkits; idle CPU.

Runs the real app (``python -m tray_sync``) on a private Xvfb display with the trayer tray host
and a private D-Bus session bus, connected to the built-in server, lets it finish its first sync,
then samples it while it sits idle. The baseline is a process that imports tkinter, pystray and
Pillow, opens a withdrawn Tk root and shows a pystray icon in the same tray: what any tray app
written with these toolkits costs before doing anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.xvfb import start_xvfb, stop

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("Xvfb", "trayer", "dbus-daemon")

BARE = r"""
import sys, threading, time, tkinter
import pystray
from PIL import Image
root = tkinter.Tk()
root.withdraw()
icon = pystray.Icon("bare", Image.new("RGBA", (32, 32), (40, 120, 200, 255)), "bare",
                    menu=pystray.Menu(pystray.MenuItem("Quit", lambda: None)))
threading.Thread(target=icon.run, daemon=True).start()
print("ready", flush=True)
root.mainloop()
"""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _memory(pid: int) -> tuple[float, float]:
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return info.rss / 2**20, getattr(info, "pss", info.rss) / 2**20


def _cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(workdir: Path, idle_seconds: float = 10.0) -> dict[str, float]:
    """Start the desktop, the server, the app and the bare baseline; return the figures."""
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    workdir.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[Any]] = []
    server = DemoServer(mode="3", storage_dir=workdir / "tray-server").start()
    try:
        xvfb, display = start_xvfb("-screen", "0", "1280x800x24", "-nolisten", "tcp")
        started.append(xvfb)
        env = {**os.environ, "DISPLAY": display, "NO_AT_BRIDGE": "1"}
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        started.append(bus)
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        started.append(subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)

        library = build_demo_library(server, photos_per_album=6, seed=1)
        home = workdir / "tray-home"
        # The key from the environment, and no keyring: on this private bus D-Bus would start
        # gnome-keyring, which waits (for ever, headless) for someone to unlock it.
        app_env = {**env, "IMMICH_API_KEY": library.download_key,
                   "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        for args in (["connect", server.url, "--name", "demo"], ["add", "Family 2024", str(workdir / "tray-photos")]):
            subprocess.run([sys.executable, "-m", "tray_sync", "--home", str(home), *args], env=app_env, cwd=REPO,
                           check=True, capture_output=True, text=True, timeout=60)

        app = subprocess.Popen([sys.executable, "-m", "tray_sync", "--home", str(home)], env=app_env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(app)
        deadline = time.monotonic() + 60
        while not any(r.path.endswith(("/original", "/download/archive")) for r in server.requests):
            if time.monotonic() > deadline or app.poll() is not None:
                raise RuntimeError("the tray app did not start its first sync")
            time.sleep(0.2)
        time.sleep(3.0)  # the first sync of a small album is over; the app is idle until the next one
        cpu_before = _cpu_seconds(app.pid)
        time.sleep(idle_seconds)
        idle_cpu = (_cpu_seconds(app.pid) - cpu_before) / idle_seconds * 100
        app_rss, app_pss = _memory(app.pid)

        # Without GL, like the app (GDK otherwise may map Mesa and LLVM, ~50 MB, into any GTK process).
        bare = subprocess.Popen([sys.executable, "-c", BARE], env={**env, "GDK_GL": "disable"}, stdout=subprocess.PIPE,
                                text=True)
        started.append(bare)
        assert bare.stdout is not None
        bare.stdout.readline()
        time.sleep(3.0)
        bare_rss, bare_pss = _memory(bare.pid)
        return {"app_rss_mb": app_rss, "app_pss_mb": app_pss, "bare_rss_mb": bare_rss, "bare_pss_mb": bare_pss,
                "idle_cpu_percent": idle_cpu, "idle_seconds": idle_seconds}
    finally:
        for process in reversed(started):
            stop(process, wait=10)
        server.stop()


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tray-idle-") as scratch:
        print(json.dumps(measure(Path(scratch)), indent=2))
