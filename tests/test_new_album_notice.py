"""A new album the "auto" policy cannot add yet (its folder's drive is unplugged) is told to the user.

Before, it was only in the log: `tray-sync sync` said nothing and the tray showed "up to date"
while the album silently waited. Now the report carries one notice line: the command line prints
it (and still exits 0, the other albums synced), the tray puts it in its menu and notifies it once,
and nothing is created on the mount point. Plugged in again, the album arrives and the notice goes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_helpers import cli, files_in
from tests.test_app_controller import RecordingSender, make_app, pump_until, wait_for
from tray_sync.appstate import TrayState
from tray_sync.context import Context
from tray_sync.paths import AppPaths


def _notice(name: str, root: Path) -> str:
    return (f"New album {name!r} not added yet: the folder for new albums {root} is missing; "
            "plug the drive in or choose another folder in Settings.")


def _connect_auto(home: Path, tmp_path: Path, server, library) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """Policy auto, new albums under a drive; one album chosen and synced. Returns (drive, root)."""
    drive = tmp_path / "drive"
    root = drive / "New albums"
    root.mkdir(parents=True)
    result = cli(home, "connect", server.url, "--name", "home", "--api-key-stdin",
                 "--new-albums", "auto", "--new-album-root", str(root), stdin=library.download_key + "\n")
    assert result.code == 0, result.err
    assert cli(home, "add", "Family 2024", str(tmp_path / "Family")).code == 0
    assert cli(home, "sync").code == 0
    return drive, root


def _stored_root(home: Path) -> Path:
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        return Path(ctx.store.connections()[0].new_album_root or "")
    finally:
        ctx.close()


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_the_command_line_says_in_one_line_why_a_new_album_was_not_added(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, memory_keyring: Any
) -> None:
    drive, root = _connect_auto(home, tmp_path, demo_server, demo_library)
    stored = _stored_root(home)
    assert stored.name == "New albums"
    admin = demo_library.admin
    drive.rename(tmp_path / "unplugged")
    late = demo_server.add_album(admin, "Late")
    demo_server.add_asset(admin, "late.jpg", albums=[late])
    demo_server.add_asset(admin, "more.jpg", albums=[demo_library.albums["Family 2024"]])

    result = cli(home, "sync")
    assert result.code == 0, "a notice, not a failure: the chosen albums synced"
    assert result.err.strip().splitlines() == [_notice("Late", stored)], result.err
    assert "Traceback" not in result.err
    assert next(line for line in result.out.splitlines() if line.startswith("Family 2024:")).startswith(
        "Family 2024: 1 downloaded"), result.out
    assert not root.exists(), "nothing is created on the mount point"

    as_json = cli(home, "sync", "--json")
    assert as_json.code == 0
    body = as_json.json()
    assert body["ok"] is True and body["errors"] == []  # type: ignore[index]
    assert body["notices"] == [_notice("Late", stored)]  # type: ignore[index]
    assert [a["album_name"] for a in body["albums"]] == ["Family 2024"]  # type: ignore[index]

    (tmp_path / "unplugged").rename(drive)  # plugged in again: the album arrives, the notice goes
    arrived = cli(home, "sync", "--json")
    assert arrived.code == 0 and arrived.json()["notices"] == []  # type: ignore[index]
    late_album = next(a for a in arrived.json()["albums"] if a["album_name"] == "Late")  # type: ignore[index]
    assert late_album["downloaded"] == 1 and list(files_in(root / "Late")) == ["late.jpg"]


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_the_tray_shows_the_new_album_notice_in_its_menu_and_notifies_it_once(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, memory_keyring: Any
) -> None:
    drive, root = _connect_auto(home, tmp_path, demo_server, demo_library)
    drive.rename(tmp_path / "unplugged")
    late = demo_server.add_album(demo_library.admin, "Late")
    demo_server.add_asset(demo_library.admin, "late.jpg", albums=[late])
    notice = _notice("Late", _stored_root(home))

    ctx = Context(paths=AppPaths.resolve(str(home)))
    sender = RecordingSender()
    app, tray, _dialogs = make_app(ctx, ctx.engine, sender=sender, first_delay_s=0)  # type: ignore[arg-type]
    try:
        app.start()
        done = pump_until(app, lambda s: s.state is TrayState.SYNCED and s.last_report is not None, timeout=30)
        assert done.notices == (notice,) and done.error is None, "up to date otherwise: not an error"
        view = tray.views[-1]
        assert view.state is TrayState.SYNCED
        lines = [e for e in view.menu if e.label.startswith("New album 'Late' not added yet")]
        assert len(lines) == 1 and not lines[0].enabled, [e.label for e in view.menu]  # a line of its own
        assert notice.startswith(lines[0].label.rstrip("…"))
        wait_for(lambda: len(sender.sent) == 1, timeout=10)
        (note,) = sender.sent
        assert not note.is_error and notice in note.body.splitlines()

        first = done.last_report
        app.sync_now()  # still unplugged: the same notice stays in the menu and is not notified again
        pump_until(app, lambda s: s.last_report is not None and s.last_report is not first
                   and s.state is TrayState.SYNCED, timeout=30)
        time.sleep(0.2)
        app.pump()
        assert len(sender.sent) == 1 and app.snapshot.notices == (notice,)

        (tmp_path / "unplugged").rename(drive)
        second = app.snapshot.last_report
        app.sync_now()
        arrived = pump_until(app, lambda s: s.last_report is not None and s.last_report is not second
                             and s.state is TrayState.SYNCED, timeout=30)
        assert arrived.notices == () and list(files_in(root / "Late")) == ["late.jpg"]
    finally:
        app.shutdown()
        ctx.close()
