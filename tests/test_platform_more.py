"""Platform contract details of issue 5 and the secrets part of issue 2.

The keyring's "no backend" line names both ways out, keyrings.alt (a plaintext store) is never a
runtime dependency, and `tray-sync connect` takes the key from IMMICH_API_KEY or from a hidden
prompt on a real terminal (a pty), never echoing it.
"""

from __future__ import annotations

import json
import os
import re
import select
import struct
import subprocess
import sys
import time
import tomllib
from importlib.metadata import requires
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from tests.conftest import REPO, MemoryKeyring
from tests.e2e_helpers import cli
from tray_sync.secrets import ENV_OVERRIDE, SERVICE, SecretStore, account_for
from tray_sync.sync.errors import SecretStoreError

KEY = "k3y-platform-0123456789"


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """What a headless Linux box has: keyring's fail backend, and no override in the environment."""
    monkeypatch.delenv(ENV_OVERRIDE, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


# -- "no backend": one line naming PYTHON_KEYRING_BACKEND and IMMICH_API_KEY ------------------


@pytest.mark.usefixtures("no_keyring")
def test_no_backend_line_names_both_ways_out_for_every_action() -> None:
    store = SecretStore()
    for action in (lambda: store.get("a@b"), lambda: store.set("a@b", KEY), lambda: store.delete("a@b")):
        with pytest.raises(SecretStoreError) as caught:
            action()
        message = caught.value.message
        assert "\n" not in message
        assert "PYTHON_KEYRING_BACKEND" in message and "IMMICH_API_KEY" in message, message
        assert KEY not in message


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_sync_without_a_keyring_is_one_line_naming_both_ways_out(
    tmp_path: Path, demo_server, demo_library, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Connected while IMMICH_API_KEY was set; a later run without it says what to do, in one line."""
    home = tmp_path / "profile"
    monkeypatch.setenv(ENV_OVERRIDE, demo_library.download_key)
    assert cli(home, "connect", demo_server.url).code == 0
    assert cli(home, "add", "Family 2024", str(tmp_path / "Family")).code == 0
    monkeypatch.delenv(ENV_OVERRIDE)
    result = cli(home, "albums")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "PYTHON_KEYRING_BACKEND" in lines[0] and "IMMICH_API_KEY" in lines[0]
    assert "Traceback" not in result.err


def test_keyrings_alt_is_never_a_runtime_dependency() -> None:
    """A plaintext keyring must never be installed (and silently used) along with the app."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in project["dependencies"]]
    assert "keyring" in runtime
    assert not [r for r in runtime if r.replace("_", ".").replace("-", ".").startswith("keyrings")], runtime
    for extra, reqs in project.get("optional-dependencies", {}).items():
        assert not [r for r in reqs if r.lower().replace("_", ".").replace("-", ".").startswith("keyrings")], extra
    # What is installed says the same (requires() lists extras with a marker; none may be keyrings.*).
    installed = requires("immich-tray-sync") or []
    assert not [r for r in installed if r.lower().replace("_", ".").replace("-", ".").startswith("keyrings")]
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "tray_sync").rglob("*.py"))
    assert "keyrings.alt" not in source.replace("Do not install `keyrings.alt`", "")


# -- connect: where the key comes from ---------------------------------------------------------


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_takes_the_key_from_the_environment_and_stores_it(
    tmp_path: Path, demo_server, demo_library, memory_keyring: MemoryKeyring,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "profile"
    monkeypatch.setenv(ENV_OVERRIDE, demo_library.download_key)
    result = cli(home, "connect", demo_server.url, "--name", "home")
    assert result.code == 0, result.err
    assert memory_keyring.passwords == {(SERVICE, account_for("home", demo_server.api_url)): demo_library.download_key}
    assert demo_library.download_key not in result.out + result.err


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_without_any_key_source_is_one_line(
    tmp_path: Path, demo_server, memory_keyring: MemoryKeyring,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No flag, no environment, not a terminal: nothing to prompt on, so say how to give the key."""
    monkeypatch.delenv(ENV_OVERRIDE, raising=False)
    result = cli(tmp_path / "profile", "connect", demo_server.url, stdin="")
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "--api-key-stdin" in lines[0] and "IMMICH_API_KEY" in lines[0], result.err
    assert memory_keyring.passwords == {}


_FILE_KEYRING = '''
import json, os
from keyring.backend import KeyringBackend

class FileKeyring(KeyringBackend):
    """Test-only backend for a child process: what it stores, the test can read."""
    priority = 1

    def _load(self):
        try:
            with open(os.environ["TEST_KEYRING_FILE"]) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def get_password(self, service, username):
        return self._load().get(f"{service}|{username}")

    def set_password(self, service, username, password):
        data = self._load()
        data[f"{service}|{username}"] = password
        with open(os.environ["TEST_KEYRING_FILE"], "w") as f:
            json.dump(data, f)

    def delete_password(self, service, username):
        data = self._load()
        data.pop(f"{service}|{username}", None)
        with open(os.environ["TEST_KEYRING_FILE"], "w") as f:
            json.dump(data, f)
'''


def _read_until(fd: int, pattern: bytes, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while pattern not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {pattern!r}; got {seen!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.skipif(sys.platform == "win32", reason="platform: pty is POSIX only")
@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_asks_for_the_key_on_a_terminal_without_echoing_it(
    tmp_path: Path, demo_server, demo_library  # type: ignore[no-untyped-def]
) -> None:
    import pty

    key = demo_library.download_key
    backend_dir = tmp_path / "backend"
    backend_dir.mkdir()
    (backend_dir / "test_file_keyring.py").write_text(_FILE_KEYRING, encoding="utf-8")
    store_file = tmp_path / "keyring.json"
    env = {k: v for k, v in os.environ.items() if k not in (ENV_OVERRIDE, "TRAY_SYNC_HOME")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(backend_dir), str(REPO)]),
        "PYTHON_KEYRING_BACKEND": "test_file_keyring.FileKeyring",
        "TEST_KEYRING_FILE": str(store_file),
    })
    home = tmp_path / "profile"
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "tray_sync", "--home", str(home), "connect", demo_server.url, "--name", "home"],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True,
        )
        os.close(slave)
        slave = -1
        before = _read_until(master, b"(input hidden): ", 30)
        os.write(master, key.encode() + b"\n")
        after = _read_until(master, b"tray-sync add", 60)
        assert child.wait(30) == 0, (before + after).decode(errors="replace")
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    transcript = (before + after).decode(errors="replace")
    assert key not in transcript, "the key was echoed on the terminal"
    assert "Connected 'home'" in transcript
    stored = json.loads(store_file.read_text(encoding="utf-8"))
    assert stored == {f"{SERVICE}|{account_for('home', demo_server.api_url)}": key}


@pytest.mark.skipif(sys.platform == "win32", reason="platform: pty is POSIX only")
@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_sync_shows_a_progress_bar_on_a_terminal_only(
    tmp_path: Path, demo_server, demo_library  # type: ignore[no-untyped-def]
) -> None:
    import fcntl
    import pty
    import termios

    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    home = tmp_path / "profile"
    env = {k: v for k, v in os.environ.items() if k != "TRAY_SYNC_HOME"}
    env.update({"IMMICH_API_KEY": key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
                "PYTHONPATH": str(REPO), "COLUMNS": "100"})
    base = [sys.executable, "-m", "tray_sync", "--home", str(home)]
    for args in (["connect", demo_server.url], ["add", "Family 2024", str(tmp_path / "Family")]):
        subprocess.run([*base, *args], env=env, check=True, capture_output=True, text=True, timeout=60)
    # Slow enough for the bar to be drawn more than once.
    demo_server.faults.add(Fault(path=r"/original$", rate_bytes_per_s=400_000, times=None))
    master, slave = pty.openpty()
    # A terminal 100 columns wide (a fresh pty is 0 x 0, where tqdm draws nothing, as in no real terminal).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        child = subprocess.Popen([*base, "sync"], stdin=slave, stdout=slave, stderr=slave, env=env,
                                 start_new_session=True, close_fds=True)
        os.close(slave)
        slave = -1
        transcript = _read_until(master, b"-> ", 90)
        transcript += _read_until(master, b"\n", 10)
        assert child.wait(30) == 0, transcript.decode(errors="replace")
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    text = transcript.decode(errors="replace")
    assert re.search(r"Family 2024 \d+/\d+: +\d+%\|", text), text  # tqdm's bar, with the album and files
    assert "Family 2024: " in text and "downloaded" in text

    (tmp_path / "Family" / sorted(p.name for p in (tmp_path / "Family").iterdir())[0]).unlink()
    piped = subprocess.run([*base, "sync"], env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "%|" not in piped.stderr + piped.stdout, "no bar when the output is not a terminal"
    assert "1 downloaded" in piped.stdout
