"""The command-line contract of issue 2 (section 5), row by row: exit codes, one-line errors,
`--debug` tracebacks (redacted), and the fields of `albums --json`, `status --json`, `sync --json`.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e_helpers import album_listing, cli, connect, files_in
from tray_sync import __version__

pytestmark = [pytest.mark.usefixtures("memory_keyring"),
              pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])]


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stopped server is retried as usual, without the real back-off pauses."""
    from tray_sync.sync.client import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, retry_after: 0.01)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    assert lines[0].startswith("tray-sync: ")
    return lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- tray-sync, --version, usage ------------------------------------------------------------


def test_no_command_without_a_display_is_2_and_names_tray_sync_sync(
    home: Path, monkeypatch: pytest.MonkeyPatch, server_mode: str
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    result = cli(home)
    assert result.code == 2
    assert "`tray-sync sync`" in one_line(result.err)


def test_version_and_usage_errors(home: Path, capsys: pytest.CaptureFixture[str], server_mode: str) -> None:
    from tray_sync.cli import main

    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    assert capsys.readouterr().out.strip() == f"tray-sync {__version__}"
    for args in (["frobnicate"], ["sync", "--no-such-flag"], ["add", "only-one-argument"]):
        with pytest.raises(SystemExit) as usage:
            main(["--home", str(home), *args])
        assert usage.value.code == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "tray-sync --help" in err, err


# -- connect: 0 saved, 1 check failed ----------------------------------------------------------


def test_connect_exit_codes(home: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    for address in ("ftp://photos.example.com", "   "):
        typo = cli(home, "connect", address, stdin="")  # no key given: the address is checked first
        assert typo.code == 1
        assert "address" in one_line(typo.err) and "API key" not in typo.err
    down = cli(home, "connect", f"http://127.0.0.1:{free_port()}", "--api-key-stdin", stdin="key-123456789\n")
    assert down.code == 1
    one_line(down.err)
    wrong = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin="wrong-key-123456\n")
    assert wrong.code == 1
    one_line(wrong.err)
    lacking = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin=demo_library.album_only_key + "\n")
    assert lacking.code == 1
    line = one_line(lacking.err)
    assert "asset.read" in line and "asset.download" in line and "album.read, " not in line.split("lacks")[1][:12]
    assert "Not connected yet" in cli(home, "status").out, "a failed check saves nothing"
    ok = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin=demo_library.download_key + "\n")
    assert ok.code == 0 and ok.err == ""


# -- albums: 0 / 1, and the JSON fields --------------------------------------------------------


def test_albums_json_fields_and_exit_codes(home: Path, tmp_path: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    none_yet = cli(home, "albums")
    assert none_yet.code == 1
    assert "tray-sync connect" in one_line(none_yet.err)

    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    result = cli(home, "albums", "--json")
    assert result.code == 0, result.err
    albums = result.json()
    assert isinstance(albums, list) and albums
    by_name = {a["name"]: a for a in albums}  # type: ignore[index]
    for album in albums:  # type: ignore[union-attr]
        assert {"id", "name", "asset_count", "shared", "local_folder"} <= set(album), album
        assert isinstance(album["asset_count"], int) and isinstance(album["shared"], bool)
    family = by_name["Family 2024"]
    assert family["id"] == demo_library.albums["Family 2024"]
    assert family["local_folder"] == str(dest.resolve())
    assert family["asset_count"] == len(album_listing(demo_server, demo_library.download_key, family["id"]))
    assert by_name["Holidays 2023"]["local_folder"] is None
    assert by_name["Bob's Bikes"]["shared"] is True, "shared with the key's owner"

    # A second connection: --connection becomes necessary, and naming a missing one fails with 1.
    assert cli(home, "connect", demo_server.url, "--name", "second", "--api-key-stdin",
               stdin=demo_library.download_key + "\n").code == 0
    ambiguous = cli(home, "albums")
    assert ambiguous.code == 1 and "--connection" in one_line(ambiguous.err)
    assert cli(home, "albums", "--connection", "second").code == 0
    missing = cli(home, "albums", "--connection", "nope")
    assert missing.code == 1
    one_line(missing.err)

    demo_server.stop()
    down = cli(home, "albums", "--connection", "home")
    assert down.code == 1
    one_line(down.err)


# -- add: 0 / 1 / 2; remove: 0 / 1 -------------------------------------------------------------


def test_add_and_remove_exit_codes(home: Path, tmp_path: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "deep" / "new" / "Family"
    added = cli(home, "add", demo_library.albums["Family 2024"], str(dest))  # by id
    assert added.code == 0 and dest.is_dir(), "DEST is created when missing"
    unknown = cli(home, "add", "No Such Album", str(tmp_path / "x"))
    assert unknown.code == 2 and "tray-sync albums" in one_line(unknown.err)
    again = cli(home, "add", "Family 2024", str(tmp_path / "other"))
    assert again.code == 2
    one_line(again.err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "other").exists()
    demo_server.stop()
    offline = cli(home, "add", "Holidays 2023", str(tmp_path / "Holidays"))
    assert offline.code == 1
    one_line(offline.err)

    not_synced = cli(home, "remove", "Holidays 2023")
    assert not_synced.code == 1
    one_line(not_synced.err)
    (dest / "mine.txt").write_text("kept")
    removed = cli(home, "remove", "Family 2024")
    assert removed.code == 0 and str(dest.resolve()) in removed.out
    assert (dest / "mine.txt").read_text() == "kept"
    assert cli(home, "status", "--json").json()["albums"] == []  # type: ignore[index]


# -- sync: 0 all synced, 1 something failed (the rest synced), 2 usage or config ---------------


def test_sync_exit_codes_and_json(home: Path, tmp_path: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    connect(home, demo_server, demo_library.download_key)
    family, holidays = tmp_path / "Family", tmp_path / "Holidays"
    assert cli(home, "add", "Family 2024", str(family)).code == 0
    assert cli(home, "add", "Holidays 2023", str(holidays)).code == 0

    usage = cli(home, "sync", "Not Synced")
    assert usage.code == 2
    one_line(usage.err)
    assert files_in(family) == {}, "a usage error syncs nothing"

    first = cli(home, "sync", "--json")
    assert first.code == 0, first.err
    report = first.json()
    assert set(report) >= {"ok", "albums"} and report["ok"] is True  # type: ignore[operator,index]
    for album in report["albums"]:  # type: ignore[index]
        assert set(album) >= {"album_id", "album_name", "path", "downloaded", "skipped", "failed", "bytes", "errors"}
        assert isinstance(album["errors"], list) and album["failed"] == 0
        assert album["bytes"] == sum(len(d) for d in files_in(Path(album["path"])).values())

    # One album fails (its folder is gone), the other still syncs: exit 1, and its files arrive.
    family_files = files_in(family)
    for path in family.iterdir():
        path.unlink()
    family.rmdir()
    (holidays / next(iter(files_in(holidays)))).unlink()
    second = cli(home, "sync", "--json")
    assert second.code == 1
    report = second.json()
    assert report["ok"] is False  # type: ignore[index]
    albums = {a["album_name"]: a for a in report["albums"]}  # type: ignore[index]
    assert albums["Family 2024"]["errors"] and albums["Holidays 2023"]["downloaded"] == 1
    assert albums["Holidays 2023"]["errors"] == []
    assert not family.exists(), "only `add` creates a folder"
    assert family_files  # (what was there before)

    only = cli(home, "sync", "Holidays 2023")
    assert only.code == 0, only.err


# -- status: 0, and the fields a person or a script needs --------------------------------------


def test_status_json_fields(home: Path, tmp_path: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    empty = cli(home, "status", "--json")
    assert empty.code == 0 and empty.json() == {
        "connections": [], "albums": [],
        "schedule": {"last_success_at": None, "next_due_at": None, "paused": False, "paused_until": None},
    }
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    before = cli(home, "status", "--json").json()["albums"][0]  # type: ignore[index]
    assert before["last_sync_at"] is None and before["files"] == 0
    assert cli(home, "sync").code == 0
    result = cli(home, "status", "--json")
    assert result.code == 0
    status = result.json()
    assert status["connections"][0]["name"] == "home"  # type: ignore[index]
    album = status["albums"][0]  # type: ignore[index]
    for field in ("connection", "album_name", "album_id", "path", "last_sync_at", "files", "bytes", "last_error",
                  "state", "changed_locally", "held_removals"):
        assert field in album, field
    local = files_in(dest)
    assert album["connection"] == "home" and album["album_name"] == "Family 2024"
    assert album["path"] == str(dest.resolve())
    assert album["files"] == len(local) and album["bytes"] == sum(len(d) for d in local.values())
    assert album["last_sync_at"] and album["last_error"] is None and album["state"] == "ok"

    demo_server.stop()
    assert cli(home, "sync").code == 1
    after = cli(home, "status", "--json")
    assert after.code == 0
    failed = after.json()["albums"][0]  # type: ignore[index]
    assert failed["last_error"] and failed["last_sync_at"] == album["last_sync_at"]
    text = cli(home, "status")
    assert text.code == 0 and "last error:" in text.out


# -- --debug: tracebacks only on request, and redacted ------------------------------------------


def test_tracebacks_only_with_debug_and_never_with_the_key(
    home: Path, demo_server, demo_library, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    key = demo_library.download_key
    connect(home, demo_server, key)  # registers the key with the redactor, as every run does

    def explode(args: object, ctx: object) -> int:
        raise RuntimeError(f"library trouble while sending x-api-key: {key} to the server")

    with monkeypatch.context() as patch:
        patch.setattr("tray_sync.commands.status.run", explode)
        plain = cli(home, "status")
        assert plain.code == 1
        line = one_line(plain.err)
        assert "RuntimeError" in line and "--debug" in line and key not in line

        debug = cli(home, "--debug", "status")
        assert debug.code == 1
        assert "Traceback" in debug.err and "explode" in debug.err
        assert key not in debug.err + debug.out

    demo_server.stop()
    offline = cli(home, "--debug", "albums")
    assert offline.code == 1 and "Traceback" in offline.err and key not in offline.err
    assert offline.err.strip().splitlines()[-1].startswith("tray-sync: "), "the one line still ends the output"


def test_a_connection_failure_is_said_once_not_once_per_album(
    home: Path, tmp_path: Path, demo_server, demo_library  # type: ignore[no-untyped-def]
) -> None:
    connect(home, demo_server, demo_library.download_key)
    for name in ("Family 2024", "Holidays 2023"):
        assert cli(home, "add", name, str(tmp_path / name)).code == 0
    demo_server.stop()
    result = cli(home, "sync")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("home: Cannot reach"), result.err
    assert sorted(result.out.splitlines()) == [
        f"Family 2024: not synced (see the error above) -> {(tmp_path / 'Family 2024').resolve()}",
        f"Holidays 2023: not synced (see the error above) -> {(tmp_path / 'Holidays 2023').resolve()}",
    ]


def test_an_album_stopped_before_it_started_says_not_synced_and_why(
    home: Path, tmp_path: Path, demo_server, demo_library  # type: ignore[no-untyped-def]
) -> None:
    connect(home, demo_server, demo_library.download_key)
    family, holidays = tmp_path / "Family", tmp_path / "Holidays"
    assert cli(home, "add", "Family 2024", str(family)).code == 0
    assert cli(home, "add", "Holidays 2023", str(holidays)).code == 0
    family.rmdir()  # an unmounted drive
    result = cli(home, "sync")
    assert result.code == 1
    out = result.out.splitlines()
    assert f"Family 2024: not synced -> {family.resolve()}" in out
    assert any(line.startswith("Holidays 2023: ") and " downloaded" in line for line in out)
    errors = result.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].strip().startswith("Family 2024: The folder") and "missing" in errors[0]
