"""`tray-sync uninstall`: autostart off, keys out of the keyring, profile reported (or purged), photos kept."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tests.conftest import MemoryKeyring
from tray_sync import autostart
from tray_sync.cli import main
from tray_sync.paths import AppPaths
from tray_sync.secrets import SERVICE, account_for
from tray_sync.sync.store import open_store


@pytest.fixture
def desktop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME with its own XDG folders, so autostart and platformdirs stay inside tmp_path."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_STATE_HOME", ".local/state"), ("XDG_CACHE_HOME", ".cache")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("IMMICH_API_KEY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    return home


def _set_up(paths: AppPaths, keyring_backend: MemoryKeyring, photo_folders: list[Path]) -> list[str]:
    """Two connections with keys, one synced album per folder (each with a photo), autostart on."""
    paths.ensure()
    store = open_store(paths.db_path)
    accounts = []
    try:
        for index, name in enumerate(("home", "family")):
            url = f"https://photos{index}.example.com"
            account = account_for(name, url + "/api")
            accounts.append(account)
            connection = store.save_connection(name=name, server_url=url, api_url=url + "/api",
                                               account=account, server_version="2.7.5")
            keyring_backend.set_password(SERVICE, account, f"key-{name}-0123456789")
            if index < len(photo_folders):
                folder = photo_folders[index]
                folder.mkdir(parents=True)
                (folder / "IMG_0001.jpg").write_bytes(b"\xff\xd8 the only copy")
                store.add_album_sync(connection.id, f"album-{index}", f"Album {index}", str(folder))
    finally:
        store.close()
    autostart.enable(home=None)
    assert autostart.is_enabled()
    return accounts


def test_uninstall_turns_autostart_off_deletes_keys_and_says_where_the_profile_is(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = AppPaths.resolve(home)
    photos = [desktop / "Pictures" / "Holidays", desktop / "Pictures" / "Family"]
    accounts = _set_up(paths, memory_keyring, photos)

    assert main(["uninstall", "--yes"]) == 0
    out = capsys.readouterr().out
    assert not autostart.is_enabled()
    assert memory_keyring.passwords == {}
    for account in accounts:
        assert f"API key of {account}: deleted." in out
    assert "Synced photos are never touched" in out
    for folder in photos:
        assert str(folder) in out
        assert (folder / "IMG_0001.jpg").read_bytes() == b"\xff\xd8 the only copy"
    assert f"database: {paths.db_path}" in out and f"logs:     {paths.log_dir}" in out
    assert f"settings: {paths.config_dir}" in out
    assert paths.db_path.exists(), "without --purge-profile the profile stays"
    assert "key-home" not in out

    # Running it again finds nothing left to do, and says so.
    assert main(["uninstall", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Autostart: was already off." in out and "was not in the keyring" in out


def test_purge_in_a_chosen_home_removes_only_the_apps_files(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = AppPaths.resolve(home)
    inside = home / "Immich Albums" / "Holidays"  # an album folder inside the profile folder
    _set_up(paths, memory_keyring, [inside])
    (home / "notes.txt").write_text("the user's own file")
    (home / "certificates").mkdir()
    (home / "certificates" / "home.pem").write_text("-----BEGIN CERTIFICATE-----")

    assert main(["uninstall", "--yes", "--purge-profile"]) == 0
    out = capsys.readouterr().out
    assert (inside / "IMG_0001.jpg").read_bytes() == b"\xff\xd8 the only copy"
    assert (home / "notes.txt").exists()
    assert not list(home.glob("tray-sync.sqlite3*")), "database, WAL and config backup are gone"
    assert not paths.log_dir.exists() and not (home / "certificates").exists()
    assert sorted(p.name for p in home.iterdir()) == ["Immich Albums", "notes.txt"]
    assert "kept what else is there" in out
    assert memory_keyring.passwords == {} and not autostart.is_enabled()


def test_purge_of_the_default_profile_deletes_the_app_folders(
    desktop: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TRAY_SYNC_HOME", raising=False)
    paths = AppPaths.resolve(None)
    assert desktop in paths.config_dir.parents and desktop in paths.log_dir.parents
    photos = desktop / "Pictures" / "Holidays"
    _set_up(paths, memory_keyring, [photos])

    assert main(["uninstall", "--yes", "--purge-profile"]) == 0
    capsys.readouterr()
    for folder in (paths.config_dir, paths.data_dir, paths.log_dir):
        assert not folder.exists(), folder
    # platformdirs puts logs in <state>/immich-tray-sync/log: the app's parent folder goes too.
    assert not (desktop / ".local" / "state" / "immich-tray-sync").exists()
    assert (photos / "IMG_0001.jpg").exists()
    assert memory_keyring.passwords == {}


def test_the_default_profile_keeps_an_album_folder_inside_it(
    desktop: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TRAY_SYNC_HOME", raising=False)
    paths = AppPaths.resolve(None)
    photos = paths.data_dir / "Immich Demo" / "Holidays"
    _set_up(paths, memory_keyring, [photos])
    assert main(["uninstall", "--yes", "--purge-profile"]) == 0
    capsys.readouterr()
    assert (photos / "IMG_0001.jpg").read_bytes() == b"\xff\xd8 the only copy"
    assert not paths.db_path.exists() and not paths.config_dir.exists()


def test_without_yes_and_no_terminal_nothing_changes(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _set_up(AppPaths.resolve(home), memory_keyring, [])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["uninstall"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("tray-sync: Not a terminal, so nothing was changed: "
                           "run `tray-sync uninstall --yes` to go ahead.")
    assert autostart.is_enabled() and len(memory_keyring.passwords) == 2


@pytest.mark.parametrize(("answer", "code"), [("n\n", 1), ("\n", 1), ("yes\n", 0)])
def test_the_question_decides(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], answer: str, code: int,
) -> None:
    _set_up(AppPaths.resolve(home), memory_keyring, [])
    stdin = io.StringIO(answer)
    stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["uninstall"]) == code
    out = capsys.readouterr().out
    if code:
        assert "Nothing was changed." in out
        assert autostart.is_enabled() and len(memory_keyring.passwords) == 2
    else:
        assert not autostart.is_enabled() and memory_keyring.passwords == {}


def test_a_keyring_that_refuses_is_reported_and_the_rest_still_done(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from keyring.errors import KeyringLocked

    accounts = _set_up(AppPaths.resolve(home), memory_keyring, [])
    real_delete = memory_keyring.delete_password

    def locked_for_home(service: str, username: str) -> None:
        if username == accounts[0]:
            raise KeyringLocked("Collection is locked")
        real_delete(service, username)

    monkeypatch.setattr(memory_keyring, "delete_password", locked_for_home)
    assert main(["uninstall", "--yes"]) == 1
    captured = capsys.readouterr()
    assert f"Could not delete the key of {accounts[0]}" in captured.err and "Traceback" not in captured.err
    assert f"API key of {accounts[1]}: deleted." in captured.out
    assert not autostart.is_enabled()
    assert list(memory_keyring.passwords) == [(SERVICE, accounts[0])]


def test_nothing_set_up_is_fine_and_creates_no_database(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["uninstall", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "no saved connections" in out and "Autostart: was already off." in out
    assert not AppPaths.resolve(home).db_path.exists()


def test_a_running_tray_app_blocks_the_purge_and_is_mentioned_otherwise(
    desktop: Path, home: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    from tray_sync.sync.lock import ProcessLock

    paths = AppPaths.resolve(home)
    _set_up(paths, memory_keyring, [])
    with ProcessLock(paths.lock_file, what="running"):  # what the tray app holds while it runs
        assert main(["uninstall", "--yes", "--purge-profile"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tray-sync: The tray app is running with this profile: quit it first")
        assert paths.db_path.exists() and autostart.is_enabled() and len(memory_keyring.passwords) == 2

        assert main(["uninstall", "--yes"]) == 0
        out = capsys.readouterr().out
        assert "The tray app is running: quit it from the tray menu" in out
        assert not autostart.is_enabled() and memory_keyring.passwords == {}
    assert main(["uninstall", "--yes", "--purge-profile"]) == 0
    assert not paths.db_path.exists()
