"""The API key in a REAL Secret Service: gnome-keyring-daemon on a private D-Bus session bus.

The key is stored by the app (SecretStore, and `tray-sync connect` in its own process) and read back
by another process through the Secret Service API (secretstorage), so the test does not trust the
app's own reading code. Headless recipe from ../shared/notes/linux-gui-testing.md: a temporary
XDG_DATA_HOME, and `gnome-keyring-daemon --unlock` fed a non-empty password on stdin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from tray_sync.secrets import SERVICE, SecretStore, account_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="platform: Secret Service is Linux")

KEYRING_PACKAGES = "gnome-keyring dbus"

READ_BACK = """
import sys, secretstorage
connection = secretstorage.dbus_init()
collection = secretstorage.get_default_collection(connection)
items = list(collection.search_items({"service": sys.argv[1], "username": sys.argv[2]}))
print(items[0].get_secret().decode() if items else "<none>", end="")
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _name_has_owner(address: str, name: str) -> bool:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(bus=address) as connection:
        reply = connection.send_and_get_reply(message_bus.NameHasOwner(name), timeout=2)
    return bool(reply.body[0])


class SecretService:
    def __init__(self, address: str, env: dict[str, str], data_home: Path) -> None:
        self.address = address
        self.env = env  # for child processes: this bus, these folders, no key override
        self.data_home = data_home

    def read_back(self, account: str) -> str:
        """The secret stored for ``account``, read by another process over D-Bus."""
        result = subprocess.run([sys.executable, "-c", READ_BACK, SERVICE, account], env=self.env,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretService]:
    """A private session bus with an unlocked gnome-keyring; DBUS_SESSION_BUS_ADDRESS points at it."""
    missing = [t for t in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"real keyring tools missing ({', '.join(missing)}): apt install {KEYRING_PACKAGES}")
    root = tmp_path_factory.mktemp("secret-service")
    data_home, runtime, home = root / "data", root / "runtime", root / "home"
    for folder in (data_home, runtime, home):
        folder.mkdir(mode=0o700)
    # Its own bus, not the shared session one: a keyring activated there by another test would be locked.
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert bus.stdout is not None
    address = bus.stdout.readline().decode().strip()
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address, "XDG_DATA_HOME": str(data_home),
           "XDG_RUNTIME_DIR": str(runtime), "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "NO_AT_BRIDGE": "1"}
    for name in ("IMMICH_API_KEY", "PYTHON_KEYRING_BACKEND", "TRAY_SYNC_HOME", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    daemon = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    assert daemon.stdin is not None
    daemon.stdin.write(b"test-keyring-password")  # an empty password fails with "Prompt dismissed"
    daemon.stdin.close()
    saved = {name: os.environ.get(name) for name in ("DBUS_SESSION_BUS_ADDRESS", "XDG_DATA_HOME")}
    try:
        deadline = time.monotonic() + 15
        while not _name_has_owner(address, "org.freedesktop.secrets"):
            assert daemon.poll() is None, "gnome-keyring-daemon exited"
            assert time.monotonic() < deadline, "gnome-keyring-daemon did not take org.freedesktop.secrets"
            time.sleep(0.05)
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
        os.environ["XDG_DATA_HOME"] = str(data_home)
        yield SecretService(address, env, data_home)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _stop(daemon)
        _stop(bus)


@pytest.fixture
def secret_service_keyring(secret_service: SecretService) -> Iterator[SecretService]:
    from keyring.backends.SecretService import Keyring

    previous = keyring.get_keyring()
    backend = Keyring()
    assert backend.priority > 0, "the Secret Service backend is not usable here"
    keyring.set_keyring(backend)
    try:
        yield secret_service
    finally:
        keyring.set_keyring(previous)


def test_secret_store_round_trip_in_gnome_keyring(
    secret_service_keyring: SecretService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMMICH_API_KEY", raising=False)
    account = account_for("home", "https://photos.example.com/api")
    key = "real-keyring-key-" + os.urandom(8).hex()
    store = SecretStore()
    assert "SecretService" in store.backend_name()

    store.set(account, key)
    assert secret_service_keyring.read_back(account) == key
    assert SecretStore().get(account) == key  # a fresh cache: really read from gnome-keyring
    stored = b"".join(p.read_bytes() for p in (secret_service_keyring.data_home / "keyrings").glob("*"))
    assert key.encode() not in stored, "gnome-keyring must keep the key encrypted on disk"

    assert store.delete(account) is True
    assert secret_service_keyring.read_back(account) == "<none>"
    assert store.delete(account) is False


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_then_uninstall_with_gnome_keyring(
    secret_service: SecretService, demo_server, demo_library, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """The app in its own processes picks the Secret Service by itself, as on a desktop."""
    profile = tmp_path / "profile"

    def tray_sync(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tray_sync", "--home", str(profile), *args],
                              input=stdin, env=secret_service.env, capture_output=True, text=True, timeout=60)

    key = demo_library.download_key
    connected = tray_sync("connect", demo_server.url, "--name", "home", "--api-key-stdin", stdin=key + "\n")
    assert connected.returncode == 0, connected.stderr
    assert "Key stored in the OS keyring" in connected.stdout
    account = account_for("home", demo_server.api_url)
    assert secret_service.read_back(account) == key
    for path in profile.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"the key leaked into {path}"

    albums = tray_sync("albums")  # a new process reads the key back from gnome-keyring
    assert albums.returncode == 0, albums.stderr
    assert "Family 2024" in albums.stdout

    removed = tray_sync("uninstall", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert f"API key of {account}: deleted." in removed.stdout
    assert secret_service.read_back(account) == "<none>"
    after = tray_sync("albums")
    assert after.returncode == 1  # albums: 0 listed, 1 failed (the CLI contract)
    assert after.stderr.startswith("tray-sync: No API key for") and "tray-sync connect" in after.stderr
