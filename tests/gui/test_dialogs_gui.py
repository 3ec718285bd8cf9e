"""The three dialogs for real: ttk widgets under Xvfb, in-process, against the built-in demo server.

Each test builds one Tk root on the test display, opens a window through DialogHost (as the tray
app does), drives it with widget events (typing, paste, clicks on table cells, Enter), waits for
the background work with the Tk loop running, and checks what the user sees and what was saved.
Screenshots go to docs/screenshots/ (the README shows them); one test runs on a 192-DPI display.
"""

from __future__ import annotations

import gc
import os
import subprocess
import tempfile
import time
import tkinter as tk
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, _stop, _wait_for, start_xvfb
from tests.test_dialog_presenters import FakeController, album_status, saved_keys
from tray_sync.appstate import ActivityEntry, AppSnapshot, OfferedAlbum, TrayState
from tray_sync.context import Context
from tray_sync.dialogs import DialogHost
from tray_sync.paths import AppPaths
from tray_sync.secrets import account_for
from tray_sync.sync.connect import add_album, check_connection, default_album_folder
from tray_sync.sync.progress import Phase, Progress

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]

SCREENSHOTS = REPO / "docs" / "screenshots"


# -- helpers --------------------------------------------------------------------------------


def pump(root: tk.Misc, until: Callable[[], bool], timeout: float = 20, what: str = "the window") -> None:
    """Run the Tk loop until ``until()`` holds; fail after ``timeout`` seconds (hangs are real)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root.update()
        if until():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def settle(root: tk.Misc, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        root.update()
        time.sleep(0.01)


def shoot(window: tk.Misc, name: str, display: str | None = None, *, docs: bool = True) -> Path:
    """Screenshot the window (checked: right size, not blank) with ImageMagick's import.

    It goes to docs/screenshots/<name>.png only when asked (TRAY_SYNC_SCREENSHOTS=1), so a plain
    test run leaves the checkout clean; otherwise (and for shots only to look at: ``docs=False``)
    to a scratch folder.
    """
    settle(window)
    wanted = docs and os.environ.get("TRAY_SYNC_SCREENSHOTS")
    folder = SCREENSHOTS if wanted else Path(tempfile.gettempdir()) / "tray-sync-shots"
    target = folder / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    command = ["import", "-window", str(window.winfo_id())]
    if display:
        command[1:1] = ["-display", display]
    from PIL import Image

    # Shot into a file of this process first: two test runs at once (several people share the
    # machine) write the same scratch names, and one read the other's half-written PNG.
    mine = target.with_name(f".{name}.{os.getpid()}.png")
    for _attempt in range(3):  # a window still settling into its size (a loaded machine) is shot again
        size = (window.winfo_width(), window.winfo_height())
        subprocess.run([*command, str(mine)], check=True, timeout=20)
        with Image.open(mine) as image:
            matches = image.size == size == (window.winfo_width(), window.winfo_height())
            colours = len(image.convert("RGB").getcolors(1 << 16) or ())
        if matches:
            assert colours > 8, "a blank screenshot"
            os.replace(mine, target)
            return target
        settle(window)
    mine.unlink(missing_ok=True)
    raise AssertionError(f"{name}: the screenshot never matched the window's size {size}")


def label_text(widget: tk.Misc) -> str:
    return str(widget.cget("text"))


@pytest.fixture
def root(xdisplay: str) -> Iterator[tk.Tk]:
    window = tk.Tk()
    window.withdraw()
    try:
        yield window
    finally:
        window.destroy()
        del window
        # Free the Tcl interpreters here, on the thread that made them: left to a later garbage
        # collection that happens to run on a worker thread, Tcl aborts the process.
        gc.collect()


@pytest.fixture
def ctx(home: Path, memory_keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # default folders (and screenshots) under ~/Pictures
    context = Context(paths=AppPaths.resolve(home))
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    demo = DemoServer(mode="3", storage_dir=tmp_path / "server")
    demo.start()
    try:
        demo.library = build_demo_library(demo, photos_per_album=3, seed=5)  # type: ignore[attr-defined]
        yield demo
    finally:
        demo.stop()


def type_into(entry: tk.Misc, text: str) -> None:
    """Type like a user: one key event per character into the focused entry."""
    entry.focus_force()
    entry.update()
    for char in text:
        keysym = {"/": "slash", ":": "colon", ".": "period", "-": "minus", "_": "underscore"}.get(char, char)
        entry.event_generate("<KeyPress>", keysym=keysym, when="tail")
    entry.update()


def paste_into(root: tk.Tk, entry: tk.Misc, text: str) -> None:
    root.clipboard_clear()
    root.clipboard_append(text)
    entry.focus_force()
    entry.event_generate("<<Paste>>")
    entry.update()


def click_cell(tree: Any, row: str, column: str) -> None:
    x, y, width, height = tree.bbox(row, column)
    tree.event_generate("<Button-1>", x=x + width // 2, y=y + height // 2)
    tree.event_generate("<ButtonRelease-1>", x=x + width // 2, y=y + height // 2)


# -- setup wizard ---------------------------------------------------------------------------------


def test_setup_wizard_from_wrong_key_to_first_sync(root: tk.Tk, ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   memory_keyring) -> None:
    controller = FakeController()
    host = DialogHost(root, controller, ctx)
    host.open_setup()
    host.open_setup()  # a second click only raises the same window
    presenter = host.presenter("setup")
    view = presenter.view
    view.window.geometry("+0+0")
    pump(root, lambda: view.window.winfo_ismapped(), what="the setup window")
    assert view.window.title() == "Set up Immich Tray Sync"
    assert label_text(view.title_label) == "Connect to your Immich server"
    assert str(view.key_entry.cget("show")) == "•"
    assert getattr(root, "_tray_sync_icon", None) is not None, "the app icon is the window icon"
    # Tab goes address -> key -> Show -> Check, in reading order
    order = [view.url_entry]
    while len(order) < 4:
        order.append(order[-1].tk_focusNext())
    assert order[1:] == [view.key_entry, view.show_key, view.check_button]

    def check_with(key: str) -> str:
        view.key_var.set("")
        paste_into(root, view.key_entry, key)
        view.key_entry.event_generate("<Return>")
        # the answer comes back through the Tk loop, so right now the window must show it is busy
        assert presenter.checking and label_text(view.busy_label).startswith(f"Checking {server.url}")
        assert str(view.next_button.cget("state")) == "disabled" and str(view.window.cget("cursor")) == "watch"
        pump(root, lambda: not presenter.checking and label_text(view.result_label) != "", what="the check")
        assert label_text(view.busy_label) == ""
        return label_text(view.result_label)

    type_into(view.url_entry, server.url)
    assert view.url_var.get() == server.url
    text = check_with("this-is-not-a-key")
    assert text == ("The server rejected the API key (Invalid API key): create a key in Immich (Account settings > "
                    "API keys) and connect again.")
    assert str(view.result_label.cget("style")) == "Error.TLabel"
    assert str(view.next_button.cget("text")) == "Check"

    no_download = server.add_key(server.library.admin, ["album.read", "asset.read"], name="no download")
    text = check_with(no_download)
    assert text == ("This API key lacks asset.download: create a key with album.read, asset.read and "
                    "asset.download (Account settings > API keys).")
    shoot(view.window, "setup-missing-permission")

    view.show_key.invoke()  # "Show" reveals what was pasted
    assert str(view.key_entry.cget("show")) == ""
    view.show_key.invoke()
    text = check_with(server.library.download_key)
    assert text == (f"Connected to Immich 3.1.0 at {server.url}. "
                    "This key can see 4 albums: choose them on the next page.")
    assert str(view.next_button.cget("text")) == "Next"
    shoot(view.window, "setup-connect")

    view.next_button.invoke()
    photos = tmp_path / "home" / "Pictures" / "Immich"
    assert view.root_var.get() == "~/Pictures/Immich"
    presenter.set_root_folder(str(photos / "Albums"))  # what the folder chooser hands over
    photos = photos / "Albums"
    assert view.root_var.get() == "~/Pictures/Immich/Albums"
    tree = view.tree
    pump(root, lambda: all(tree.set(iid, "size") not in ("…", "") for iid in tree.get_children()),
         what="album sizes from /download/info")
    assert label_text(view.title_label) == "Choose the albums to keep on this computer"
    assert str(view.next_button.cget("state")) == "disabled"
    names = {tree.set(iid, "album"): iid for iid in tree.get_children()}
    assert set(names) == {"Bob's Bikes", "Family 2024", "Grandma's Garden", "Holidays 2023"}
    assert tree.set(names["Bob's Bikes"], "owner") == "Shared with me"

    click_cell(tree, names["Family 2024"], "#1")
    tree.selection_set(names["Bob's Bikes"])
    tree.focus(names["Bob's Bikes"])
    tree.event_generate("<space>")
    settle(root, 0.1)
    assert tree.set(names["Family 2024"], "sync") == "☑" and tree.set(names["Bob's Bikes"], "sync") == "☑"
    assert tree.set(names["Holidays 2023"], "sync") == "☐"
    items = int(tree.set(names["Family 2024"], "items")) + int(tree.set(names["Bob's Bikes"], "items"))
    assert label_text(view.summary_label).startswith(f"2 albums, {items} items, ")
    assert label_text(view.summary_label).endswith("free on that disk.")
    assert str(view.next_button.cget("state")) == "normal"
    view.filter_var.set("garden")
    settle(root, 0.1)
    assert [tree.set(iid, "album") for iid in tree.get_children()] == ["Grandma's Garden"]
    view.filter_var.set("")
    settle(root, 0.1)
    tree.selection_set(names["Family 2024"])
    shoot(view.window, "setup-albums")
    assert not view.tree_xscroll.winfo_ismapped(), "the columns fit the window's first size"

    view.next_button.invoke()
    settle(root, 0.1)
    assert label_text(view.title_label) == "How and when to sync"
    assert view.interval_box.get() == "Every 30 minutes"
    view.interval_box.set("Every hour")
    view.interval_box.event_generate("<<ComboboxSelected>>")
    view.autostart_check.invoke()  # off: do not touch the login items in a test
    view.policy_buttons["ask"].invoke()
    assert str(view.next_button.cget("text")) == "Finish"
    shoot(view.window, "setup-options")

    view.next_button.invoke()
    pump(root, lambda: host.window("setup") is None, what="Finish to save and close")
    assert controller.names() == ["settings_changed", "sync_now"]
    [connection] = ctx.store.connections()
    rows = {a.album_name: a.local_path for a in ctx.store.album_syncs()}
    assert rows == {name: str((photos / name).resolve()) for name in ("Bob's Bikes", "Family 2024")}
    assert all(Path(path).is_dir() for path in rows.values())
    assert saved_keys(memory_keyring) == {account_for(connection.name, connection.api_url): server.library.download_key}
    assert ctx.store.get_setting("interval_minutes") == 60 and ctx.store.get_setting("autostart") is False
    assert connection.new_album_policy == "ask"


def test_setup_escape_cancels_without_saving(root: tk.Tk, ctx: Context, server, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    host = DialogHost(root, FakeController(), ctx)
    host.open_setup()
    view = host.presenter("setup").view
    window = view.window
    pump(root, lambda: window.winfo_ismapped())
    view.url_var.set(server.url)
    view.key_var.set(server.library.download_key)
    view.next_button.invoke()
    pump(root, lambda: host.presenter("setup").check is not None, what="the check")
    view.next_button.invoke()
    settle(root, 0.1)
    view.window.event_generate("<Escape>")
    pump(root, lambda: host.window("setup") is None, what="Escape to close the wizard")
    assert ctx.store.connections() == [] and saved_keys(memory_keyring) == {}
    # A closed window is freed at once, on this thread, not by a later garbage collection
    # (which may run on a worker thread, where Tcl objects must not be touched).
    gone = weakref.ref(view)
    del view
    gc.disable()
    try:
        settle(root, 0.1)
        assert gone() is None, gc.get_referrers(gone())
    finally:
        gc.enable()


# -- settings ---------------------------------------------------------------------------------------


@pytest.fixture
def connected(ctx: Context, server, tmp_path: Path):  # type: ignore[no-untyped-def]
    check = check_connection(server.url, server.library.download_key)
    account = account_for("home", check.discovery.api_url)
    ctx.secrets.set(account, server.library.download_key)
    connection = ctx.store.save_connection(name="home", server_url=check.discovery.server_url,
                                           api_url=check.discovery.api_url, account=account,
                                           server_version=str(check.discovery.version))
    albums = {a.name: a for a in check.albums}
    for name in ("Family 2024", "Holidays 2023", "Bob's Bikes"):
        add_album(ctx.store, connection, albums[name], default_album_folder(tmp_path / "home" / "Pictures", name))
    return connection


def test_settings_change_a_setting_and_save(root: tk.Tk, ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    controller = FakeController(AppSnapshot(TrayState.SYNCED))
    host = DialogHost(root, controller, ctx)
    host.open_settings()
    view = host.presenter("settings").view
    view.window.geometry("+0+0")
    pump(root, lambda: view.window.winfo_ismapped(), what="the settings window")
    assert view.vars["interval_minutes"].get() == "30"
    shoot(view.window, "settings")

    spin = view.interval_box
    spin.focus_force()
    spin.selection_range(0, "end")
    spin.event_generate("<KeyPress>", keysym="2")
    settle(root, 0.1)
    assert spin.get() == "2"
    assert label_text(view.error_labels["interval_minutes"]) == "Choose between 5 and 1440 minutes."
    assert view.error_labels["interval_minutes"].winfo_ismapped()
    assert str(view.save_button.cget("state")) == "disabled" and spin.instate(["invalid"])
    shoot(view.window, "settings-validation")
    spin.event_generate("<KeyPress>", keysym="5")
    settle(root, 0.1)
    assert spin.get() == "25" and str(view.save_button.cget("state")) == "normal"
    assert not view.error_labels["interval_minutes"].winfo_ismapped() and not spin.instate(["invalid"])
    assert view.log_box.get() == "Normal"
    view.log_box.set("Detailed (for bug reports)")
    view.log_box.event_generate("<<ComboboxSelected>>")

    view.notebook.select(view.albums_tab)
    settle(root, 0.1)
    assert [view.album_tree.set(i, "album") for i in view.album_tree.get_children()] == [
        "Bob's Bikes", "Family 2024", "Holidays 2023"]
    shoot(view.window, "settings-albums")
    assert not view.album_xscroll.winfo_ismapped(), "the columns fit the window's first size"
    view.notebook.select(view.connections_tab)
    settle(root, 0.1)
    assert view.connection_tree.set(view.connection_tree.get_children()[0], "version") == "3.1.0"
    shoot(view.window, "settings-connections")

    # change the key: checked against the server before anything is saved
    view.edit_connection_button.invoke()
    edit = view.edit_dialog
    assert edit is not None and edit.url_var.get() == connected.server_url
    dialog = edit.window
    type_into(edit.key_entry, "a-wrong-key")
    assert edit.key_var.get() == "a-wrong-key" and str(edit.key_entry.cget("show")) == "•"
    edit.show_key.invoke()
    assert str(edit.key_entry.cget("show")) == ""
    edit.show_key.invoke()
    edit.key_entry.event_generate("<Return>")
    assert label_text(edit.result) == "Checking…"
    pump(root, lambda: label_text(edit.result).startswith(("Not saved", "Saved")), what="the key check")
    assert label_text(edit.result).startswith("Not saved. The server rejected the API key")
    shoot(dialog, "settings-change-key")
    dialog.event_generate("<Escape>")
    settle(root, 0.1)
    assert not dialog.winfo_exists()

    view.window.event_generate("<Return>")  # Enter saves
    pump(root, lambda: host.window("settings") is None, what="Save to close the window")
    assert ctx.store.get_setting("interval_minutes") == 25 and ctx.store.get_setting("log_level") == "DEBUG"
    assert controller.names() == ["settings_changed"]


# -- status -------------------------------------------------------------------------------------------


def test_status_window_follows_snapshots(root: tk.Tk, ctx: Context) -> None:
    now = datetime.now(UTC)
    albums = (
        album_status(1, "Family 2024", last_sync_at=(now - timedelta(minutes=3)).isoformat(), files=31,
                     bytes=96_500_000, path=str(Path.home() / "Pictures/Immich/Family 2024")),
        album_status(2, "Holidays 2023", last_sync_at=(now - timedelta(minutes=3)).isoformat(), files=240,
                     bytes=1_240_000_000, path=str(Path.home() / "Pictures/Immich/Holidays 2023")),
        album_status(3, "Bob's Bikes", state="folder_gone", files=12, bytes=40_100_000,
                     last_sync_at=(now - timedelta(days=1)).isoformat(), path="/media/usb/Bikes",
                     last_error="The folder /media/usb/Bikes is missing: plug the drive in or choose another."),
    )
    activity = (
        ActivityEntry(now - timedelta(minutes=3), "Downloaded 5 new files into Family 2024 (14.2 MB)"),
        ActivityEntry(now - timedelta(minutes=3), "Bob's Bikes: the folder /media/usb/Bikes is missing", True),
        ActivityEntry(now - timedelta(hours=2), "Downloaded 240 files into Holidays 2023 (1.2 GB)"),
    )
    syncing = AppSnapshot(
        TrayState.SYNCING, albums=albums, activity=activity, last_success_at=now - timedelta(minutes=33),
        progress=Progress(Phase.DOWNLOADING, "Holidays 2023", files_done=60, files_total=240,
                          bytes_done=310_000_000, bytes_total=1_240_000_000, rate_bytes_per_s=11_800_000))
    controller = FakeController(syncing)
    host = DialogHost(root, controller, ctx)
    host.open_status()
    view = host.presenter("status").view
    view.window.geometry("+0+0")
    pump(root, lambda: view.window.winfo_ismapped(), what="the status window")
    assert view.window.title() == "Immich Tray Sync — Status"
    assert label_text(view.headline) == "Syncing…"
    assert view.progress_frame.winfo_ismapped() and float(view.progress.cget("value")) == 250
    assert label_text(view.progress_text).startswith("60 of 240 files · 310 MB of 1.2 GB · 11.8 MB/s · about ")
    rows = [view.albums.item(i, "values") for i in view.albums.get_children()]
    assert [r[0] for r in rows] == ["Family 2024", "Holidays 2023", "Bob's Bikes"]
    assert rows[1][2:5] == ("3 minutes ago", "240", "1.2 GB")
    assert str(rows[2][5]).startswith("Folder missing: The folder /media/usb/Bikes is missing")
    assert "problem" in view.albums.item("3", "tags")
    assert view.activity.set(view.activity.get_children()[0], "what").startswith("Downloaded 5")
    assert str(view.sync_button.cget("state")) == "disabled"
    view.albums.selection_set("3")
    settle(root, 0.1)
    assert label_text(view.album_detail).startswith("Bob's Bikes: Folder missing")
    shoot(view.window, "status")
    assert not view.albums_xscroll.winfo_ismapped(), "the columns fit the window's first size"

    view.pause_button.invoke()
    controller.publish(AppSnapshot(TrayState.PAUSED, albums=albums, activity=activity,
                                   last_success_at=now - timedelta(minutes=33)))
    settle(root, 0.1)
    assert label_text(view.headline) == "Paused" and str(view.pause_button.cget("text")) == "Resume"
    assert not view.progress_frame.winfo_ismapped()
    view.pause_button.invoke()
    view.folder_button.invoke()
    controller.publish(AppSnapshot(TrayState.SYNCED, albums=albums, activity=activity,
                                   last_success_at=now - timedelta(seconds=20),
                                   next_due_at=now + timedelta(minutes=30)))
    settle(root, 0.1)
    assert label_text(view.headline) == "Up to date"
    assert label_text(view.detail).startswith("Last synced just now. Next check in ")
    view.sync_button.invoke()
    view.log_button.invoke()
    view.albums.selection_set("1")
    settle(root, 0.1)
    shoot(view.window, "status-synced")
    assert controller.names() == ["pause", "resume", "open_folder", "sync_now", "open_log"]
    assert controller.calls[2] == ("open_folder", ("/media/usb/Bikes",))

    offer = OfferedAlbum(1, "new-album", "Summer 2025")
    offered = AppSnapshot(TrayState.SYNCED, albums=albums, activity=activity, offered_albums=(offer,),
                          notices=("Grandma's Garden: 2 removals wait for your OK in Settings.",))
    controller.publish(offered)
    settle(root, 0.1)
    [row] = view._offer_widgets
    controller.publish(offered)  # the next snapshot must not rebuild the buttons under the pointer
    settle(root, 0.1)
    assert view._offer_widgets == [row] and label_text(view.notice_label).startswith("Grandma's Garden: 2")
    sync_it = next(child for child in row.winfo_children() if str(child.cget("text")) == "Sync it")
    sync_it.invoke()
    assert controller.calls[-1] == ("add_offered_album",
                                    (offer, str(Path.home() / "Pictures" / "Immich" / "Summer 2025")))

    host.close_all()
    settle(root, 0.1)
    assert host.window("status") is None and controller.listeners == []


# -- 2x DPI -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hidpi_display(xdisplay: str) -> Iterator[str]:
    """A second Xvfb at 192 DPI: the dialogs must scale (fonts, padding, rows, check boxes).

    Session-wide: Tk keeps its connection to a display after the root on it is destroyed, and a
    display that goes away under it makes Xlib end the whole process at the next event.
    """
    process, display = start_xvfb("-screen", "0", "2400x1600x24", "-nolisten", "tcp", "-dpi", "192")
    env = {**os.environ, "DISPLAY": display}
    try:
        _wait_for(lambda: subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0, 15,
                  "Xvfb at 192 DPI")
        yield display
    finally:
        _stop(process)


def test_dialogs_scale_at_twice_the_dpi(hidpi_display: str, root: tk.Tk, ctx: Context, server) -> None:  # type: ignore[no-untyped-def]
    from tkinter import font as tkfont

    from tray_sync.dialogs import theme

    session_display = os.environ["DISPLAY"]
    big = tk.Tk(screenName=hidpi_display)
    # Tk writes the display it opened into the C environment (os.environ does not see it): put it
    # back, or every program this session starts later (trayer, the app) opens the 192-DPI display.
    os.environ["DISPLAY"] = session_display
    big.withdraw()
    try:
        host_1x = DialogHost(root, FakeController(), ctx)
        host_2x = DialogHost(big, FakeController(AppSnapshot(TrayState.SYNCED)), ctx)
        assert theme.scale_of(root) == pytest.approx(1.0, abs=0.05)
        assert theme.scale_of(big) == pytest.approx(2.0, abs=0.05)
        line_1x = tkfont.nametofont("TkDefaultFont", root=root).metrics("linespace")
        line_2x = tkfont.nametofont("TkDefaultFont", root=big).metrics("linespace")
        assert line_2x >= 1.8 * line_1x, (line_1x, line_2x)

        host_1x.open_setup()
        host_2x.open_setup()
        small_view, view = host_1x.presenter("setup").view, host_2x.presenter("setup").view
        view.window.geometry("+0+0")
        pump(big, lambda: view.window.winfo_ismapped(), what="the 2x window")
        settle(root, 0.2)
        assert view.window.winfo_width() >= 1.9 * small_view.window.winfo_width()
        assert view.next_button.winfo_height() >= 1.7 * small_view.next_button.winfo_height()
        assert int(theme.ttk.Style(big).lookup("Treeview", "rowheight")) >= 1.8 * int(
            theme.ttk.Style(root).lookup("Treeview", "rowheight"))

        view.url_var.set(server.url)
        view.key_var.set(server.library.download_key)
        view.next_button.invoke()
        pump(big, lambda: host_2x.presenter("setup").check is not None, what="the check at 2x")
        view.next_button.invoke()
        tree = view.tree
        pump(big, lambda: all(tree.set(i, "size") not in ("…", "") for i in tree.get_children()), what="sizes")
        host_2x.presenter("setup").toggle_album(tree.get_children()[0])
        shoot(view.window, "setup-albums-2x", display=hidpi_display)
        host_1x.close_all()

        # the other windows at 2x, at their smallest: every button still whole
        for name in ("status", "settings"):
            getattr(host_2x, f"open_{name}")()
            small = host_2x.presenter(name).view
            width, _ = shrink_to_minimum(big, small.window)
            assert width >= 1.8 * theme.px(root, 600), "the minimum size scales too"
            buttons = (small.sync_button, small.close_button) if name == "status" else (small.save_button,
                                                                                          small.cancel_button)
            assert all(fully_inside(button, small.window) for button in buttons)
            shoot(small.window, f"{name}-minimum-2x", display=hidpi_display, docs=False)
            host_2x.close_all()
    finally:
        big.destroy()


def test_setup_offers_a_self_signed_certificate(root: tk.Tk, ctx: Context, tmp_path: Path) -> None:
    from tests.test_dialog_presenters import self_signed_certificate
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    cert, key = self_signed_certificate(tmp_path)
    server = DemoServer(mode="3", storage_dir=tmp_path / "tls-server", tls=(str(cert), str(key)))
    server.start()
    try:
        library = build_demo_library(server, photos_per_album=1, seed=4)
        host = DialogHost(root, FakeController(), ctx)
        host.open_setup()
        presenter = host.presenter("setup")
        view = presenter.view
        view.window.geometry("+0+0")
        pump(root, lambda: view.window.winfo_ismapped(), what="the setup window")
        view.url_var.set(server.url)
        view.key_var.set(library.download_key)
        view.check_button.invoke()
        pump(root, lambda: view.cert_frame.winfo_ismapped(), what="the certificate offer")
        assert label_text(view.result_label).endswith("presents a certificate this computer does not trust.")
        assert label_text(view.fingerprint_label).replace("\n", "") == presenter.certificate.fingerprint
        shoot(view.window, "setup-certificate")
        view.trust_button.invoke()
        pump(root, lambda: presenter.check is not None, what="the check with the trusted certificate")
        assert not view.cert_frame.winfo_ismapped()
        assert label_text(view.result_label).startswith(f"Connected to Immich 3.1.0 at {server.url}. This key can see")
        host.close_all()
    finally:
        server.stop()


def test_settings_add_albums_runs_the_wizard_for_the_saved_connection(root: tk.Tk, ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                      server) -> None:
    controller = FakeController(AppSnapshot(TrayState.SYNCED))
    host = DialogHost(root, controller, ctx)
    host.open_settings()
    settings = host.presenter("settings").view
    pump(root, lambda: settings.window.winfo_ismapped(), what="the settings window")
    settings.notebook.select(settings.albums_tab)
    settings.add_album_button.invoke()
    wizard = host.presenter("setup")
    assert wizard is not None, "Add albums… opens the wizard"
    pump(root, lambda: wizard.page == 1 and all(
        wizard.view.tree.set(i, "size") not in ("…", "") for i in wizard.view.tree.get_children()),
         what="the wizard to check the saved key and list the albums")
    tree = wizard.view.tree
    by_name = {tree.set(i, "album"): i for i in tree.get_children()}
    assert tree.set(by_name["Family 2024"], "sync") == "✓" and tree.set(by_name["Family 2024"], "folder") == (
        "Already synced")
    click_cell(tree, by_name["Grandma's Garden"], "#1")
    wizard.view.next_button.invoke()
    wizard.view.next_button.invoke()
    pump(root, lambda: host.window("setup") is None, what="the wizard to finish")
    names = [settings.album_tree.set(i, "album") for i in settings.album_tree.get_children()]
    assert names == ["Bob's Bikes", "Family 2024", "Grandma's Garden", "Holidays 2023"], "settings shows it at once"
    assert [c.name for c in ctx.store.connections()] == ["home"]
    assert controller.names() == ["settings_changed", "sync_now"]
    host.close_all()


# -- minimum sizes and the keyboard ----------------------------------------------------------------


def fully_inside(widget: tk.Misc, window: tk.Misc) -> bool:
    """Mapped and not clipped by the window's edges (what a user at the minimum size still sees)."""
    if not widget.winfo_ismapped():
        return False
    left, top = widget.winfo_rootx() - window.winfo_rootx(), widget.winfo_rooty() - window.winfo_rooty()
    return (left >= 0 and top >= 0 and left + widget.winfo_width() <= window.winfo_width()
            and top + widget.winfo_height() <= window.winfo_height())


def shrink_to_minimum(root: tk.Tk, window: tk.Toplevel) -> tuple[int, int]:
    window.geometry("+0+0")
    pump(root, lambda: window.winfo_ismapped(), what=window.title())
    window.geometry("200x150")  # smaller than allowed: Tk holds the window at its minimum size
    settle(root, 0.2)
    size = (window.winfo_width(), window.winfo_height())
    assert size == tuple(window.minsize()), (size, window.minsize())
    return size


def test_every_window_is_usable_at_its_minimum_size_and_by_keyboard(root: tk.Tk, ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                    server) -> None:
    controller = FakeController(AppSnapshot(TrayState.SYNCED))
    host = DialogHost(root, controller, ctx)

    host.open_status()
    status = host.presenter("status").view
    controller.publish(AppSnapshot(TrayState.SYNCED, albums=(
        album_status(1, "Family 2024", path=str(Path.home() / "Pictures/Immich/Family 2024")),)))
    shrink_to_minimum(root, status.window)
    shoot(status.window, "status-minimum", docs=False)
    for button in (status.sync_button, status.pause_button, status.folder_button, status.log_button,
                   status.settings_button, status.close_button):
        assert fully_inside(button, status.window), str(button.cget("text"))
    status.window.event_generate("<Escape>")
    pump(root, lambda: host.window("status") is None, what="Escape to close the status window")

    host.open_settings()
    settings = host.presenter("settings").view
    shrink_to_minimum(root, settings.window)
    shoot(settings.window, "settings-minimum", docs=False)
    assert fully_inside(settings.save_button, settings.window) and fully_inside(settings.cancel_button,
                                                                                 settings.window)
    assert fully_inside(settings.log_box, settings.window), "the last General setting is not cut off"
    # Tab walks the General tab top to bottom
    order = [settings.interval_box]
    while len(order) < 5:
        order.append(order[-1].tk_focusNext())
    assert order[1] == settings.inputs["parallel_downloads"] and order[2] == settings.autostart_check
    settings.notebook.select(settings.albums_tab)
    settle(root, 0.1)
    shoot(settings.window, "settings-albums-minimum", docs=False)
    for button in (settings.add_album_button, settings.folder_button, settings.held_button,
                   settings.remove_album_button, settings.undo_button):
        assert fully_inside(button, settings.window), str(button.cget("text"))
    settings.notebook.select(settings.general)
    settings.vars["interval_minutes"].set("45")
    settle(root, 0.1)
    settings.window.event_generate("<Escape>")  # Escape is Cancel: nothing saved
    pump(root, lambda: host.window("settings") is None, what="Escape to close the settings")
    assert ctx.store.get_setting("interval_minutes") == 30 and controller.names() == []

    host.open_setup()
    setup = host.presenter("setup")
    wizard = setup.view
    shrink_to_minimum(root, wizard.window)
    for widget in (wizard.next_button, wizard.cancel_button, wizard.back_button, wizard.check_button,
                   wizard.url_entry, wizard.key_entry, wizard.show_key):
        assert fully_inside(widget, wizard.window), widget
    wizard.url_var.set(server.url)
    wizard.key_var.set(server.library.download_key)
    wizard.url_entry.focus_force()
    wizard.url_entry.event_generate("<Return>")  # Enter checks, then goes on
    pump(root, lambda: setup.check is not None, what="the check")
    wizard.url_entry.event_generate("<Return>")
    pump(root, lambda: setup.page == 1 and all(wizard.tree.set(i, "size") not in ("…", "")
                                                for i in wizard.tree.get_children()), what="the albums")
    for widget in (wizard.next_button, wizard.cancel_button, wizard.folder_button, wizard.summary_label):
        assert fully_inside(widget, wizard.window), widget
    assert wizard.window.focus_get() == wizard.tree, "the album list has the focus: Space ticks"
    assert fully_inside(wizard.tree_xscroll, wizard.window), "narrower than its columns: the list scrolls sideways"
    shoot(wizard.window, "setup-albums-minimum", docs=False)
    wizard.window.event_generate("<Escape>")
    pump(root, lambda: host.window("setup") is None, what="Escape to cancel the wizard")
    assert [c.name for c in ctx.store.connections()] == ["home"] and len(ctx.store.album_syncs()) == 3


def test_setup_album_folder_chooser_marks_busy_and_unwritable_folders(root: tk.Tk, ctx: Context, server,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tray_sync.dialogs import common, setup_window

    host = DialogHost(root, FakeController(), ctx)
    host.open_setup()
    presenter = host.presenter("setup")
    view = presenter.view
    view.window.geometry("+0+0")
    pump(root, lambda: view.window.winfo_ismapped(), what="the setup window")
    view.url_var.set(server.url)
    view.key_var.set(server.library.download_key)
    view.next_button.invoke()
    pump(root, lambda: presenter.check is not None, what="the check")
    view.next_button.invoke()
    tree = view.tree
    pump(root, lambda: all(tree.set(i, "size") not in ("…", "") for i in tree.get_children()), what="sizes")
    names = {tree.set(iid, "album"): iid for iid in tree.get_children()}

    busy = tmp_path / "Shared drive" / "Family"
    busy.mkdir(parents=True)
    for name in ("notes.txt", "old scan.jpg", "2019"):
        (busy / name).write_text("the user's own")
    asked: list[dict[str, Any]] = []
    chosen = iter([str(busy), str(tmp_path / "locked" / "Holidays")])
    monkeypatch.setattr(setup_window.filedialog, "askdirectory", lambda **kw: asked.append(kw) or next(chosen))

    tree.selection_set(names["Family 2024"])
    view.folder_button.invoke()  # Change folder… for the selected album
    settle(root, 0.1)
    assert asked[0]["title"] == "Folder for Family 2024"
    assert tree.set(names["Family 2024"], "sync") == "☑", "choosing a folder ticks the album"
    assert tree.set(names["Family 2024"], "folder") == f"⚠ {busy}" and tree.item(names["Family 2024"], "tags") == (
        "warning",)
    summary = label_text(view.summary_label)
    assert "Note: Family already holds 3 items; they stay untouched" in summary
    assert str(view.next_button.cget("state")) == "normal", "a folder with other files is allowed"

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = common.os.access
    monkeypatch.setattr(common.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    tree.selection_set(names["Holidays 2023"])
    x, y, _w, _h = tree.bbox(names["Holidays 2023"], "#6")
    for _ in range(2):  # a double click on the folder cell opens the chooser too
        tree.event_generate("<ButtonPress-1>", x=x + 5, y=y + 5)
        tree.event_generate("<ButtonRelease-1>", x=x + 5, y=y + 5)
    settle(root, 0.1)
    assert asked[1]["title"] == "Folder for Holidays 2023"
    assert tree.set(names["Holidays 2023"], "folder") == f"{locked} is not writable: choose another folder."
    assert "problem" in tree.item(names["Holidays 2023"], "tags")
    assert str(view.next_button.cget("state")) == "disabled"
    assert label_text(view.summary_label) == f"Holidays 2023: {locked} is not writable: choose another folder."
    shoot(view.window, "setup-album-folders", docs=False)
    host.close_all()
    assert ctx.store.album_syncs() == [] and not (tmp_path / "locked" / "Holidays").exists()


def test_settings_saved_apply_at_once_in_the_running_app(root: tk.Tk, ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    """With the real app behind the window: a new interval re-plans the next check, the log level applies."""
    import logging

    from tray_sync.app import TrayApp

    app = TrayApp(ctx, first_delay_s=0)
    host = DialogHost(root, app, ctx)
    app.dialogs = host
    level_before = logging.getLogger().level
    try:
        app.start()

        def pump_app(until: Callable[[], bool], what: str) -> None:
            pump(root, lambda: (app.pump(), until())[1], what=what)

        pump_app(lambda: app.snapshot.state is TrayState.SYNCED and app.snapshot.last_success_at is not None,
                 "the first sync")
        last = app.snapshot.last_success_at
        assert last is not None and app.snapshot.next_due_at is not None
        assert abs((app.snapshot.next_due_at - last) - timedelta(minutes=30)) < timedelta(seconds=5)

        host.open_settings()
        view = host.presenter("settings").view
        pump(root, lambda: view.window.winfo_ismapped(), what="the settings window")
        view.vars["interval_minutes"].set("90")
        view.vars["parallel_downloads"].set("2")
        view.log_box.set("Detailed (for bug reports)")
        view.log_box.event_generate("<<ComboboxSelected>>")
        view.window.event_generate("<Return>")
        pump_app(lambda: host.window("settings") is None and app.snapshot.next_due_at is not None
                 and app.snapshot.next_due_at - last > timedelta(minutes=60), "the new interval to apply")
        assert abs((app.snapshot.next_due_at - last) - timedelta(minutes=90)) < timedelta(seconds=5)
        assert logging.getLogger().level == logging.DEBUG
        assert ctx.engine().options.workers == 2, "the next sync's engine downloads 2 at a time"
    finally:
        app.shutdown()
        logging.getLogger().setLevel(level_before)


def test_status_review_removals_opens_them_in_settings_and_releases_them(root: tk.Tk, ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tray_sync.dialogs.settings_window import SettingsWindow
    from tray_sync.sync.status import collect_status

    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    ctx.store.record_assets(family.id, [
        {"asset_id": f"gone-{n}", "filename": f"IMG_{n}.jpg", "file_size": 1, "checksum": None,
         "local_path": f"IMG_{n}.jpg", "name_key": f"img_{n}.jpg", "mtime_ns": 1, "remote_updated_at": None,
         "state": "removal_held"} for n in (1, 2)])
    controller = FakeController(AppSnapshot(TrayState.SYNCED, albums=collect_status(ctx.store).albums,
                                            notices=("2 removals held in Family 2024: confirm them in Status…",)))
    host = DialogHost(root, controller, ctx)
    host.open_status()
    status = host.presenter("status").view
    status.window.geometry("+0+0")
    pump(root, lambda: status.window.winfo_ismapped(), what="the status window")
    assert status.review_button.winfo_ismapped() and fully_inside(status.review_button, status.window)
    shoot(status.window, "status-review", docs=False)
    questions: list[str] = []
    monkeypatch.setattr(SettingsWindow, "confirm", lambda self, title, question: questions.append(question) or True)
    status.review_button.invoke()
    settings = host.presenter("settings").view
    pump(root, lambda: settings.window.winfo_ismapped(), what="the settings window")
    assert settings.notebook.select() == str(settings.albums_tab)
    assert settings.album_tree.selection() == (str(family.id),)
    assert questions[0].endswith("IMG_1.jpg\nIMG_2.jpg"), "the user sees which files"
    assert settings.album_tree.set(str(family.id), "pending") == "2 removals released on Save"
    settings.save_button.invoke()
    pump(root, lambda: host.window("settings") is None, what="Save")
    assert ctx.store.album_sync(family.id).confirm_removals
    assert controller.names() == ["settings_changed", "sync_now"]
    host.close_all()
