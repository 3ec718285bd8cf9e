"""The secret store against an in-memory keyring: layout, cache, override, and one-line errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from keyring.errors import KeyringLocked, PasswordSetError

from tests.conftest import MemoryKeyring
from tests.e2e_helpers import cli
from tray_sync.logs import redact
from tray_sync.secrets import ENV_OVERRIDE, SERVICE, SecretStore, account_for
from tray_sync.sync.errors import SecretStoreError

KEY = "k3y-0123456789abcdef"


class CountingKeyring(MemoryKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.reads += 1
        time.sleep(0.05)  # like a keyring prompt: other threads arrive while this read is under way
        return super().get_password(service, username)


@pytest.fixture
def counting_keyring() -> CountingKeyring:
    previous = keyring.get_keyring()
    backend = CountingKeyring()
    keyring.set_keyring(backend)
    yield backend  # type: ignore[misc]
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring():  # type: ignore[no-untyped-def]
    """What a headless Linux box has: keyring's fail backend."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_OVERRIDE, raising=False)


@pytest.mark.parametrize(("name", "url", "account"), [
    ("home", "https://photos.example.com/api", "home@https://photos.example.com"),
    ("nas", "http://192.168.1.5:2283/api/", "nas@http://192.168.1.5:2283"),
    ("Zoë's", "https://example.org/immich/api", "Zoë's@https://example.org"),
])
def test_account_is_the_connection_name_at_the_server_origin(name: str, url: str, account: str) -> None:
    assert account_for(name, url) == account


def test_the_key_is_stored_under_the_documented_service(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    account = account_for("home", "https://photos.example.com/api")
    store.set(account, KEY)
    assert memory_keyring.passwords == {(SERVICE, "home@https://photos.example.com"): KEY}
    assert SERVICE == "immich-tray-sync"
    assert SecretStore().get(account) == KEY
    assert SecretStore().has(account)
    assert "MemoryKeyring" in store.backend_name()


def test_the_keyring_is_read_once_then_cached(counting_keyring: CountingKeyring) -> None:
    counting_keyring.set_password(SERVICE, "home@x", KEY)
    store = SecretStore()
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.get("home@x"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [KEY] * 8
    assert counting_keyring.reads == 1, "threads asking at once must not each make the keyring prompt"
    for _ in range(50):  # a day of scheduled syncs
        assert store.get("home@x") == KEY
    assert counting_keyring.reads == 1
    # A locked keyring after the first read does not matter: the cached key is used.
    counting_keyring.passwords.clear()
    assert store.get("home@x") == KEY


def test_set_fills_the_cache_and_delete_empties_it(counting_keyring: CountingKeyring) -> None:
    store = SecretStore()
    store.set("home@x", KEY)
    assert store.get("home@x") == KEY and counting_keyring.reads == 0
    assert store.delete("home@x") is True
    assert counting_keyring.passwords == {}
    assert store.delete("home@x") is False
    with pytest.raises(SecretStoreError):
        store.get("home@x")


def test_remember_never_reaches_the_keyring(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    store.remember("demo@http://127.0.0.1:1", KEY)
    assert store.get("demo@http://127.0.0.1:1") == KEY
    assert memory_keyring.passwords == {}


def test_environment_override_wins(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    memory_keyring.set_password(SERVICE, "home@x", KEY)
    monkeypatch.setenv(ENV_OVERRIDE, "  env-key-0123456789  ")
    assert SecretStore().get("home@x") == "env-key-0123456789"
    assert SecretStore().get("anyone@y") == "env-key-0123456789"
    assert SecretStore(use_environment=False).get("home@x") == KEY
    assert "env-key-0123456789" not in redact("header x-api-key: env-key-0123456789")


def test_keys_read_are_redacted_from_logs(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password(SERVICE, "home@x", "unique-secret-for-redaction-test")
    SecretStore().get("home@x")
    assert redact("failed with unique-secret-for-redaction-test inside") == "failed with [redacted] inside"


def _one_line(exc: SecretStoreError) -> str:
    message = exc.message
    assert "\n" not in message
    return message


def test_missing_key_says_what_to_do(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(SecretStoreError) as caught:
        SecretStore().get("home@https://photos.example.com")
    message = _one_line(caught.value)
    assert "home@https://photos.example.com" in message and "tray-sync connect" in message
    assert ENV_OVERRIDE in message
    assert caught.value.exit_code == 2


@pytest.mark.usefixtures("no_keyring")
def test_no_backend_gives_the_ways_out() -> None:
    store = SecretStore()
    for action in (lambda: store.get("a@b"), lambda: store.set("a@b", KEY), lambda: store.delete("a@b")):
        with pytest.raises(SecretStoreError) as caught:
            action()
        message = _one_line(caught.value)
        assert message.startswith("No keyring is available")
        assert "GNOME Keyring" in message and "Keychain" in message and ENV_OVERRIDE in message


def test_a_locked_or_refusing_keyring_is_one_line(memory_keyring: MemoryKeyring,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*_args: object) -> None:
        raise KeyringLocked("Failed to unlock the collection!\nprompt dismissed")

    def refuses(*_args: object) -> None:
        raise PasswordSetError("Failed to store the secret")

    monkeypatch.setattr(memory_keyring, "get_password", locked)
    monkeypatch.setattr(memory_keyring, "set_password", refuses)
    with pytest.raises(SecretStoreError) as caught:
        SecretStore().get("a@b")
    assert _one_line(caught.value) == (
        "The keyring refused to give the API key (Failed to unlock the collection!): "
        f"unlock it, or set {ENV_OVERRIDE}."
    )
    with pytest.raises(SecretStoreError) as caught:
        SecretStore().set("a@b", KEY)
    assert "refused to store" in _one_line(caught.value)


# -- through the command line --------------------------------------------------------------------


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_without_a_keyring_is_one_line_and_saves_nothing(
    tmp_path: Path, demo_server, demo_library  # type: ignore[no-untyped-def]
) -> None:
    home = tmp_path / "profile"
    result = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin=demo_library.download_key + "\n")
    assert result.code == 1  # connect: 0 saved, 1 not saved (the CLI contract)
    assert result.err.startswith("tray-sync: No keyring is available to store the API key")
    assert len(result.err.strip().splitlines()) == 1 and demo_library.download_key not in result.err
    assert "Not connected yet" in cli(home, "status").out


@pytest.mark.usefixtures("no_keyring")
@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_without_a_keyring_but_with_the_override_works(
    tmp_path: Path, demo_server, demo_library, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    home = tmp_path / "profile"
    monkeypatch.setenv(ENV_OVERRIDE, demo_library.download_key)
    result = cli(home, "connect", demo_server.url)
    assert result.code == 0, result.err
    assert "IMMICH_API_KEY must be set whenever tray-sync runs" in result.err
    assert "Key not stored (IMMICH_API_KEY)." in result.out
    assert len(result.err.strip().splitlines()) == 1 and "PYTHON_KEYRING_BACKEND" in result.err
    albums = cli(home, "albums")
    assert albums.code == 0, albums.err


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_connect_stores_the_key_in_the_keyring_not_the_database(
    tmp_path: Path, demo_server, demo_library, memory_keyring: MemoryKeyring  # type: ignore[no-untyped-def]
) -> None:
    home = tmp_path / "profile"
    result = cli(home, "connect", demo_server.url, "--name", "home", "--api-key-stdin",
                 stdin=demo_library.download_key + "\n")
    assert result.code == 0, result.err
    account = account_for("home", demo_server.api_url)
    assert memory_keyring.passwords == {(SERVICE, account): demo_library.download_key}
    key = demo_library.download_key.encode()
    for path in home.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), f"the key leaked into {path}"
