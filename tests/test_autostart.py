"""Start at login: the Linux entry for real in a temporary HOME, the macOS plist and the Windows Run key
by injecting the platform (and a fake registry), so every case runs on Linux."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tray_sync import __version__, autostart
from tray_sync.autostart import (
    RDNS_ID,
    RUN_KEY,
    RUN_VALUE,
    STARTUP_APPROVED_KEY,
    LaunchAgent,
    WindowsRunKey,
    XdgAutostart,
    desktop_exec,
    launch_command,
    login_item,
    parse_desktop_exec,
    parse_windows_command_line,
    windows_command_line,
)
from tray_sync.cli import main

HOSTILE_HOME = "/tmp/My Photos/it's \"100%\" $HOME `x` \\ ; & (tray)"


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary HOME and XDG_CONFIG_HOME: the real code path writes only here."""
    home = tmp_path / "home"
    config = tmp_path / "xdg config"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setattr(sys, "platform", "linux")
    return config


def glib_exec_argv(desktop_file: Path) -> list[str]:
    """How GLib (what GNOME and most desktops use) reads the entry's Exec= line: an independent oracle."""
    gi = pytest.importorskip("gi", reason="PyGObject comes with the linux-tray extra")
    gi.require_version("GLib", "2.0")
    from gi.repository import GLib

    keyfile = GLib.KeyFile()
    keyfile.load_from_file(str(desktop_file), GLib.KeyFileFlags.NONE)
    value = keyfile.get_string("Desktop Entry", "Exec")
    ok, argv = GLib.shell_parse_argv(value)
    assert ok
    return [arg.replace("%%", "%") for arg in argv]


def desktop_file_validate(path: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    assert tool, "desktop-file-validate missing: apt install desktop-file-utils"
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# -- the command that is started ---------------------------------------------------------------


def _fake_venv(root: Path, *, gui_script: bool, windows: bool = False) -> Path:
    bin_dir = root / ("Scripts" if windows else "bin")
    bin_dir.mkdir(parents=True)
    python = bin_dir / ("python.exe" if windows else "python")
    python.write_text("")
    if windows:
        (bin_dir / "pythonw.exe").write_text("")
    if gui_script:
        script = bin_dir / ("tray-sync-app.exe" if windows else "tray-sync-app")
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    return python


def test_the_gui_script_beside_the_interpreter_is_started(tmp_path: Path) -> None:
    python = _fake_venv(tmp_path / "venv", gui_script=True)
    argv = launch_command(executable=str(python), frozen=False, platform="linux")
    assert argv == [str(tmp_path / "venv" / "bin" / "tray-sync-app")]


def test_without_the_gui_script_python_dash_m_is_started(tmp_path: Path) -> None:
    python = _fake_venv(tmp_path / "venv", gui_script=False)
    assert launch_command(executable=str(python), frozen=False, platform="linux") == [str(python), "-m", "tray_sync"]


def test_a_frozen_bundle_starts_its_own_executable(tmp_path: Path) -> None:
    bundle = tmp_path / "Immich Tray Sync" / "tray-sync"
    argv = launch_command(executable=str(bundle), frozen=True, platform="linux", home=tmp_path / "profile")
    assert argv == [str(bundle), "--home", str(tmp_path / "profile")]


@pytest.mark.parametrize(("platform", "gui", "cli"), [
    ("linux", "immich-tray-sync", "tray-sync"),
    ("win32", "Immich Tray Sync.exe", "tray-sync.exe"),
    ("darwin", "Immich Tray Sync", "tray-sync"),
])
def test_a_frozen_bundle_starts_its_windowed_program_not_the_console_one(
    tmp_path: Path, platform: str, gui: str, cli: str
) -> None:
    (tmp_path / gui).write_bytes(b"")
    (tmp_path / cli).write_bytes(b"")
    assert launch_command(executable=str(tmp_path / cli), frozen=True, platform=platform) == [str(tmp_path / gui)]
    assert launch_command(executable=str(tmp_path / gui), frozen=True, platform=platform) == [str(tmp_path / gui)]


def test_windows_prefers_the_gui_script_then_pythonw(tmp_path: Path) -> None:
    with_script = _fake_venv(tmp_path / "a", gui_script=True, windows=True)
    assert launch_command(executable=str(with_script), frozen=False, platform="win32") == [
        str(tmp_path / "a" / "Scripts" / "tray-sync-app.exe")
    ]
    without = _fake_venv(tmp_path / "b", gui_script=False, windows=True)
    argv = launch_command(executable=str(without), frozen=False, platform="win32")
    assert argv == [str(tmp_path / "b" / "Scripts" / "pythonw.exe"), "-m", "tray_sync"]


def test_the_command_for_this_installation_really_starts_tray_sync() -> None:
    argv = launch_command()
    assert Path(argv[0]).is_file()
    result = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tray-sync {__version__}"


def test_the_profile_is_passed_on_from_home_or_the_environment() -> None:
    assert autostart.profile_home("/p", {"TRAY_SYNC_HOME": "/q"}) == "/p"
    assert autostart.profile_home(None, {"TRAY_SYNC_HOME": "/q"}) == "/q"
    assert autostart.profile_home(None, {}) is None


def test_enable_without_a_home_keeps_the_profile_from_the_environment(
    xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settings checkbox of an app started with TRAY_SYNC_HOME must start that profile at login.
    monkeypatch.setenv("TRAY_SYNC_HOME", str(tmp_path / "portable profile"))
    state = autostart.enable()
    assert state.command == [*launch_command(), "--home", str(tmp_path / "portable profile")]
    monkeypatch.delenv("TRAY_SYNC_HOME")
    assert autostart.enable().command == launch_command()


# -- Linux: XDG autostart, for real ------------------------------------------------------------


def test_linux_entry_is_written_validated_and_removed(xdg: Path) -> None:
    item = login_item()
    assert isinstance(item, XdgAutostart)
    entry = xdg / "autostart" / f"{RDNS_ID}.desktop"
    assert item.path == entry
    assert not autostart.is_enabled()

    state = autostart.enable(home=HOSTILE_HOME)
    assert entry.is_file()
    desktop_file_validate(entry)
    expected = launch_command(home=HOSTILE_HOME)
    assert glib_exec_argv(entry) == expected
    assert state.enabled and state.command == expected and state.problem is None
    assert autostart.is_enabled()
    described = autostart.describe()
    assert "starts at login" in described and str(entry) in described

    text = entry.read_text(encoding="utf-8")
    assert "Type=Application" in text and "X-GNOME-Autostart-enabled=true" in text
    assert "Icon=" + str(Path(autostart.__file__).parent / "resources" / "icon.png") in text

    assert autostart.disable() is True
    assert not entry.exists()
    assert not autostart.is_enabled()
    assert autostart.disable() is False
    assert "does not start at login" in autostart.describe()


def test_the_desktop_launches_the_entry_with_the_profile_intact(
    xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GLib's launcher (what GNOME and most session managers use) starts the entry for real.

    Without a display the app stops at once with its one-line message, but it creates its profile
    first: the folder appearing under the hostile name proves every argument arrived unchanged.
    """
    gi = pytest.importorskip("gi", reason="PyGObject comes with the linux-tray extra")
    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "TRAY_SYNC_HOME"):
        monkeypatch.delenv(name, raising=False)
    profile = tmp_path / "My Photos" / "it's \"100%\" $HOME `x` \\ ; & (tray)"
    state = autostart.enable(home=profile)
    info = Gio.DesktopAppInfo.new_from_filename(state.location)
    assert info is not None and info.get_name() == "Immich Tray Sync"
    pids: list[int] = []
    flags = GLib.SpawnFlags.SEARCH_PATH | GLib.SpawnFlags.DO_NOT_REAP_CHILD
    assert info.launch_uris_as_manager([], None, flags, None, None, lambda _info, pid, *_: pids.append(pid), None)
    (pid,) = pids
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2  # "No display found": the expected one-line refusal
    assert (profile / "logs" / "tray-sync.log").is_file()
    assert sorted(p.name for p in (tmp_path / "My Photos").iterdir()) == [profile.name]


def test_linux_without_xdg_config_home_uses_dot_config(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    item = login_item()
    assert isinstance(item, XdgAutostart)
    assert item.path == Path(os.environ["HOME"]) / ".config" / "autostart" / f"{RDNS_ID}.desktop"
    # A relative XDG_CONFIG_HOME is invalid per the base directory spec and ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/config")
    assert login_item().path == item.path  # type: ignore[attr-defined]


@pytest.mark.parametrize(("line", "problem"), [
    ("Hidden=true", "Hidden"),
    ("X-GNOME-Autostart-enabled=false", "startup settings"),
])
def test_linux_entry_turned_off_by_the_desktop_counts_as_off(xdg: Path, line: str, problem: str) -> None:
    autostart.enable()
    entry = xdg / "autostart" / f"{RDNS_ID}.desktop"
    text = entry.read_text(encoding="utf-8").replace("X-GNOME-Autostart-enabled=true\n", "")
    entry.write_text(text + line + "\n", encoding="utf-8")
    state = login_item().state()
    assert not state.enabled and problem in (state.problem or "")
    autostart.enable()
    assert autostart.is_enabled()


def test_an_entry_whose_program_is_gone_is_reported_and_repaired(xdg: Path) -> None:
    item = login_item()
    item.enable(["/nonexistent/old venv/bin/tray-sync-app"])
    state = item.state()
    assert state.enabled and state.problem == "/nonexistent/old venv/bin/tray-sync-app no longer exists"
    assert "tray-sync autostart on" in state.describe()
    assert not autostart.is_enabled()  # the settings checkbox shows it off, and ticking it repairs it
    assert autostart.enable().problem is None
    assert autostart.is_enabled()


def test_autostart_command_on_status_off(xdg: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = xdg / "autostart" / f"{RDNS_ID}.desktop"
    assert main(["autostart", "status"]) == 0
    assert "does not start at login" in capsys.readouterr().out

    assert main(["autostart", "on"]) == 0
    out = capsys.readouterr().out
    assert "starts at login" in out and str(entry) in out
    desktop_file_validate(entry)
    # The profile of this run (TRAY_SYNC_HOME, set by the `home` fixture) is the one started at login.
    assert glib_exec_argv(entry) == launch_command(home=home)

    assert main(["autostart"]) == 0
    assert "starts at login" in capsys.readouterr().out
    assert main(["autostart", "off"]) == 0
    assert "Autostart is off: removed" in capsys.readouterr().out
    assert not entry.exists()
    assert main(["autostart", "off"]) == 0
    assert "already off" in capsys.readouterr().out


def test_unwritable_autostart_folder_is_one_clear_line(
    xdg: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xdg.mkdir(parents=True)
    (xdg / "autostart").write_text("a file where the folder should be")
    assert main(["autostart", "on"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tray-sync: Could not write the login item") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# Control characters other than tab and newline cannot appear in a desktop entry at all (the spec).
_ARG = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ARG, min_size=1, max_size=4))
def test_exec_quoting_round_trips_through_glib(argv: list[str]) -> None:
    gi = pytest.importorskip("gi", reason="PyGObject comes with the linux-tray extra")
    gi.require_version("GLib", "2.0")
    from gi.repository import GLib

    value = desktop_exec(argv)
    assert "\n" not in value
    assert parse_desktop_exec(value) == argv
    keyfile = GLib.KeyFile()
    data = f"[Desktop Entry]\nExec={value}\n"
    keyfile.load_from_data(data, len(data.encode()), GLib.KeyFileFlags.NONE)
    ok, parsed = GLib.shell_parse_argv(keyfile.get_string("Desktop Entry", "Exec"))
    assert ok and [a.replace("%%", "%") for a in parsed] == argv


def test_control_characters_are_refused_with_one_line(xdg: Path, home: Path) -> None:
    with pytest.raises(ValueError, match="control characters"):
        desktop_exec(["/bin/tray-sync-app", "a\x1bb"])
    with pytest.raises(autostart.ConfigError, match="plainer path"):
        autostart.enable(home="/tmp/bell\x07")
    assert not autostart.is_enabled()


# -- macOS: LaunchAgent plist ------------------------------------------------------------------


def test_macos_launch_agent_plist(tmp_path: Path) -> None:
    item = login_item(platform="darwin", home=tmp_path)
    assert isinstance(item, LaunchAgent)
    plist_path = tmp_path / "Library" / "LaunchAgents" / f"{RDNS_ID}.plist"
    assert not item.state().enabled
    argv = ["/Applications/Immich Tray Sync.app/Contents/MacOS/Immich Tray Sync", "--home", HOSTILE_HOME]

    item.enable(argv)
    state = item.state()
    raw = plist_path.read_bytes()
    assert raw.startswith(b"<?xml") and b"<!DOCTYPE plist" in raw
    data = plistlib.loads(raw)
    assert data == {
        "Label": RDNS_ID,
        "ProgramArguments": argv,
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    assert state.enabled and state.command == argv
    assert state.problem is not None and "no longer exists" in state.problem  # no /Applications here
    assert not autostart.is_enabled(item), "an entry whose program is missing would not start anything"
    assert str(plist_path) in autostart.describe(item)

    assert autostart.disable(item) is True
    assert not plist_path.exists() and not autostart.is_enabled(item)


def test_macos_plist_with_run_at_load_off_is_off(tmp_path: Path) -> None:
    item = login_item(platform="darwin", home=tmp_path)
    autostart.enable(item=item)
    assert item.state().enabled and item.state().problem is None
    path = Path(item.location)
    data = plistlib.loads(path.read_bytes())
    assert data["ProgramArguments"] == launch_command(home=autostart.profile_home(None))
    data["RunAtLoad"] = False
    path.write_bytes(plistlib.dumps(data))
    assert not item.state().enabled


# -- Windows: HKCU Run through a fake registry -------------------------------------------------


class FakeRegistry:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str | bytes] = {}

    def get(self, key: str, name: str) -> str | bytes | None:
        return self.values.get((key, name))

    def set_string(self, key: str, name: str, value: str) -> None:
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> bool:
        return self.values.pop((key, name), None) is not None


WINDOWS_ARGV = [
    r"C:\Program Files\Immich Tray Sync\tray-sync-app.exe",
    "--home",
    'C:\\Users\\Zoë\\My "profile"\\',
]


def test_windows_run_value_quoting() -> None:
    line = windows_command_line(WINDOWS_ARGV)
    assert line == (r'"C:\Program Files\Immich Tray Sync\tray-sync-app.exe" --home '
                    r'"C:\Users\Zoë\My \"profile\"\\"')
    assert parse_windows_command_line(line) == WINDOWS_ARGV
    assert windows_command_line([r"C:\Python311\pythonw.exe", "-m", "tray_sync"]) == (
        r'"C:\Python311\pythonw.exe" -m tray_sync'
    )


def test_windows_run_key_on_off_and_task_manager(tmp_path: Path) -> None:
    registry = FakeRegistry()
    item = login_item(platform="win32", registry=registry)
    assert isinstance(item, WindowsRunKey)
    assert not item.state().enabled

    item.enable(WINDOWS_ARGV)
    assert registry.values[(RUN_KEY, RUN_VALUE)] == windows_command_line(WINDOWS_ARGV)
    state = item.state()
    assert state.enabled and state.command == WINDOWS_ARGV
    described = autostart.describe(item)
    assert "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run" in described
    assert windows_command_line(WINDOWS_ARGV) in described  # shown as Windows reads it, not in shell quoting

    # "Disable" in Task Manager's Startup tab: the Run value stays, StartupApproved says no.
    registry.values[(STARTUP_APPROVED_KEY, RUN_VALUE)] = b"\x03" + b"\x00" * 11
    state = item.state()
    assert not state.enabled and "Task Manager" in (state.problem or "")
    item.enable(WINDOWS_ARGV)
    assert item.state().enabled and (STARTUP_APPROVED_KEY, RUN_VALUE) not in registry.values
    registry.values[(STARTUP_APPROVED_KEY, RUN_VALUE)] = b"\x02" + b"\x00" * 11
    assert item.state().enabled

    assert autostart.disable(item) is True
    assert registry.values == {}
    assert autostart.disable(item) is False
