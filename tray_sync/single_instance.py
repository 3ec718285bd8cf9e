"""One tray app per profile: a second launch asks the first to show its status window, then exits.

The first instance holds an OS file lock (:class:`ProcessLock`, released by the OS when the
process dies, so a crash never leaves a stale lock) and listens on a local socket in the
profile's runtime folder: a Unix socket where the platform has them (and the path is short
enough), otherwise a loopback TCP port written to a file next to the lock. A socket file left by
a crashed instance is removed by the next one, which can only get there by holding the lock.

The protocol is one line each way: ``show\\n`` -> ``ok\\n``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tray_sync.paths import AppPaths
from tray_sync.sync.lock import BusyError, ProcessLock

log = logging.getLogger(__name__)

SOCKET_NAME = "tray-sync.sock"
PORT_FILE = "tray-sync.port"
MAX_UNIX_PATH = 100  # sun_path is 104-108 bytes depending on the platform
CONNECT_WAIT_S = 10.0  # a first instance still starting up (Tk, the tray) on a slow or busy machine


class InstanceGuard:
    def __init__(self, paths: AppPaths) -> None:
        self.paths = paths
        self._lock = ProcessLock(paths.lock_file, what="running")
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._token = ""
        self._stopping = threading.Event()

    @property
    def socket_path(self) -> Path:
        return self.paths.runtime_dir / SOCKET_NAME

    @property
    def port_file(self) -> Path:
        return self.paths.runtime_dir / PORT_FILE

    def _use_unix(self) -> bool:
        return hasattr(socket, "AF_UNIX") and os.name == "posix" and len(str(self.socket_path)) <= MAX_UNIX_PATH

    def claim(self) -> bool:
        """True: we are the first instance. False: another one runs with this profile."""
        self.paths.ensure()
        try:
            self._lock.acquire()
        except BusyError:
            return False
        return True

    def listen(self, on_show: Callable[[], None]) -> None:
        """Serve ``show`` requests on a daemon thread; ``on_show`` must only post (any thread)."""
        if self._use_unix():
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # left by a crash; we hold the lock, so it is not in use
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(self.socket_path))
            os.chmod(self.socket_path, 0o600)
        else:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.bind(("127.0.0.1", 0))
            # A token in a file only this user can read keeps other local users from poking us.
            self._token = secrets.token_hex(16)
            self.port_file.write_text(f"{server.getsockname()[1]} {self._token}\n", encoding="ascii")
        server.listen(4)
        server.settimeout(0.5)
        self._server = server
        self._thread = threading.Thread(target=self._serve, args=(server, on_show), name="single-instance",
                                        daemon=True)
        self._thread.start()

    def _serve(self, server: socket.socket, on_show: Callable[[], None]) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            with client:
                try:
                    client.settimeout(2)
                    request = client.makefile("r", encoding="utf-8").readline().strip()
                    words = request.split()
                    if words and words[0] == "show" and (not self._token or words[1:] == [self._token]):
                        log.info("Another launch asked for the status window")
                        on_show()
                        client.sendall(b"ok\n")
                    else:
                        client.sendall(b"?\n")
                except OSError as exc:
                    log.debug("single-instance request failed: %s", exc)

    def signal_show(self) -> bool:
        """Ask the running instance to show its status window; True when it answered."""
        deadline = time.monotonic() + CONNECT_WAIT_S
        while True:  # it may still be starting up: holding the lock but not listening yet
            try:
                return self._ask("show")
            except (FileNotFoundError, ConnectionRefusedError, ValueError) as exc:
                log.debug("running instance not reachable yet: %s", exc)
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.1)
            except OSError as exc:  # listening but not answering: a hung instance; do not wait minutes
                log.warning("The running instance did not answer: %s", exc)
                return False

    def _ask(self, command: str) -> bool:
        if self._use_unix():
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = str(self.socket_path)
            line = command
        else:
            port, token = self.port_file.read_text(encoding="ascii").split()
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = ("127.0.0.1", int(port))
            line = f"{command} {token}"
        with client:
            client.settimeout(3)
            client.connect(address)
            client.sendall(f"{line}\n".encode())
            return client.makefile("r", encoding="utf-8").readline().strip() == "ok"

    def close(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            self._server = None
            if self._thread is not None:
                self._thread.join(2)
            with contextlib.suppress(OSError):
                (self.socket_path if self._use_unix() else self.port_file).unlink()
        self._lock.release()
