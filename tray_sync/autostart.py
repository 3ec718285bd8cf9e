"""Start the tray app at login on Linux (XDG autostart), macOS (LaunchAgent) and Windows (Run key).

The entry always launches what is really installed: the frozen bundle's executable, else the
``tray-sync-app`` GUI script that sits next to the running interpreter (pip, pipx, a venv),
else ``python -m tray_sync`` (``pythonw`` on Windows, so no console window opens). A profile
chosen with ``--home`` / ``TRAY_SYNC_HOME`` is passed on, or the login start would open another one.

Each platform is a small class behind :class:`LoginItem`; :func:`login_item` picks one for a
platform, a home folder and (on Windows) a registry adapter, which is how the tests drive the
macOS and Windows code on Linux. The settings checkbox and ``tray-sync autostart`` both use
:func:`is_enabled`, :func:`enable`, :func:`disable` and :func:`describe`.
"""

from __future__ import annotations

import logging
import os
import plistlib
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tray_sync import APP_NAME
from tray_sync.sync.errors import ConfigError

log = logging.getLogger(__name__)

# Reverse-DNS id shared with packaging/ (desktop file, AppStream metainfo, macOS bundle id).
RDNS_ID = "io.github.immich_tray_sync.ImmichTraySync"
GUI_SCRIPT = "tray-sync-app"
# The windowed program of the PyInstaller bundle (packaging/tray-sync.spec), beside the console ``tray-sync``.
FROZEN_GUI_NAME = {"win32": "Immich Tray Sync", "darwin": "Immich Tray Sync", "linux": "immich-tray-sync"}
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
STARTUP_APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
RUN_VALUE = APP_NAME


# -- the command to run -----------------------------------------------------------------------


def launch_command(
    *,
    home: str | os.PathLike[str] | None = None,
    platform: str | None = None,
    executable: str | None = None,
    frozen: bool | None = None,
) -> list[str]:
    """The argv that starts the tray app as it is installed right now."""
    platform = platform or sys.platform
    executable = executable or sys.executable
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    if not executable:
        raise ConfigError("Cannot tell which Python runs tray-sync, so it cannot be started at login.")
    if frozen:
        argv = [str(frozen_gui_beside(executable, platform) or executable)]
    elif script := gui_script_beside(executable, platform):
        argv = [str(script)]
    else:
        argv = [_windowless_python(executable, platform), "-m", "tray_sync"]
    if home is not None:
        argv += ["--home", str(Path(home).expanduser().absolute())]
    return argv


def gui_script_beside(executable: str, platform: str) -> Path | None:
    """``tray-sync-app`` installed with this interpreter (venv/pipx bin, or Windows ``Scripts``)."""
    # Not resolved: a venv's python is a symlink to the base interpreter, the script is beside the link.
    folder = Path(executable).absolute().parent
    if platform == "win32":
        candidates = [folder / f"{GUI_SCRIPT}.exe", folder / "Scripts" / f"{GUI_SCRIPT}.exe"]
    else:
        candidates = [folder / GUI_SCRIPT]
    for candidate in candidates:
        if candidate.is_file() and (platform == "win32" or os.access(candidate, os.X_OK)):
            return candidate
    return None


def frozen_gui_beside(executable: str, platform: str) -> Path | None:
    """The bundle's windowed program, so that `tray-sync autostart on` from the console one opens no console."""
    name = FROZEN_GUI_NAME.get(platform, FROZEN_GUI_NAME["linux"]) + (".exe" if platform == "win32" else "")
    candidate = Path(executable).absolute().parent / name
    return candidate if candidate.is_file() else None


def _windowless_python(executable: str, platform: str) -> str:
    if platform == "win32":
        path = Path(executable)
        if path.name.lower() == "python.exe" and (path.parent / "pythonw.exe").is_file():
            return str(path.parent / "pythonw.exe")
    return executable


def profile_home(home_arg: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The profile folder to pass on: ``--home`` or ``TRAY_SYNC_HOME``, None for the default one."""
    from tray_sync.paths import HOME_ENV

    environ = os.environ if environ is None else environ
    return home_arg or environ.get(HOME_ENV) or None


# -- quoting ----------------------------------------------------------------------------------

_DESKTOP_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def desktop_exec(argv: Sequence[str]) -> str:
    """An ``Exec=`` value per the Desktop Entry spec: quote, escape ``%``, then string-escape."""
    quoted = []
    for arg in argv:
        if any((ord(ch) < 0x20 and ch not in "\t\n") or ch == "\x7f" for ch in arg):
            raise ValueError(f"{arg!r} has control characters, which a desktop entry cannot hold")
        if arg == "" or any(ch in _DESKTOP_RESERVED for ch in arg):
            inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
            arg = f'"{inner}"'
        quoted.append(arg.replace("%", "%%"))
    # The general string escapes apply on top of the quoting (so a literal backslash is 4 of them).
    value = " ".join(quoted)
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def parse_desktop_exec(value: str) -> list[str]:
    """The argv a desktop environment gets from an ``Exec=`` value (the inverse of :func:`desktop_exec`)."""
    unescaped: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            unescaped.append({"n": "\n", "t": "\t", "r": "\r", "s": " ", "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            unescaped.append(ch)
    text = "".join(unescaped)
    argv: list[str] = []
    current: list[str] = []
    in_arg = in_quotes = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"`$\\':
                current.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                current.append(ch)
        elif ch == '"':
            in_quotes = in_arg = True
        elif ch == " ":
            if in_arg:
                argv.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(ch)
            in_arg = True
        i += 1
    if in_quotes:
        raise ValueError("unterminated quote in Exec=")
    if in_arg:
        argv.append("".join(current))
    return [arg.replace("%%", "%") for arg in argv]


def windows_command_line(argv: Sequence[str]) -> str:
    """A Run-key command line: the program always in quotes, arguments as the MS C runtime parses them."""
    program, *rest = argv
    # The program is parsed by CreateProcess (no backslash escapes; a path cannot contain a quote).
    line = f'"{program}"'
    if rest:
        line += " " + subprocess.list2cmdline(rest)
    return line


# -- the platforms ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AutostartState:
    enabled: bool
    location: str  # the file or registry value that holds the entry
    command: list[str] | None  # what it starts, when there is an entry
    problem: str | None = None  # why the entry would not work, e.g. its program is gone
    command_line: str | None = None  # the entry's own text of the command, where it has one (Windows)

    def describe(self) -> str:
        if not self.enabled:
            reason = f" ({self.problem})" if self.problem else ""
            return f"{APP_NAME} does not start at login{reason}. Entry: {self.location}."
        command = self.command_line or shlex.join(self.command or [])
        line = f"{APP_NAME} starts at login: {self.location} runs {command}"
        if self.problem:
            line += f". Warning: {self.problem}; run `tray-sync autostart on` to repair it"
        return line + "."


class LoginItem(Protocol):
    location: str

    def state(self) -> AutostartState: ...

    def enable(self, argv: Sequence[str]) -> None: ...

    def disable(self) -> bool: ...


def _missing_program(argv: Sequence[str] | None) -> str | None:
    if not argv:
        return None
    program = argv[0]
    if os.path.isabs(program) and not os.path.exists(program):
        return f"{program} no longer exists"
    return None


class XdgAutostart:
    """``$XDG_CONFIG_HOME/autostart/<id>.desktop`` (freedesktop Desktop Application Autostart spec)."""

    def __init__(self, config_home: Path, icon: str | None = None) -> None:
        self.path = config_home / "autostart" / f"{RDNS_ID}.desktop"
        self.location = str(self.path)
        self.icon = icon

    def read(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        group = None
        for line in self.path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                group = line[1:-1]
            elif group == "Desktop Entry" and "=" in line:
                key, _, value = line.partition("=")
                entries[key.strip()] = value.strip()
        return entries

    def state(self) -> AutostartState:
        if not self.path.exists():
            return AutostartState(False, self.location, None)
        try:
            entries = self.read()
            argv = parse_desktop_exec(entries.get("Exec", ""))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return AutostartState(False, self.location, None, f"the entry cannot be read: {exc}")
        if entries.get("Hidden", "").lower() == "true":
            return AutostartState(False, self.location, argv, "the entry is marked Hidden")
        if entries.get("X-GNOME-Autostart-enabled", "true").lower() == "false":
            return AutostartState(False, self.location, argv, "turned off in the desktop's startup settings")
        return AutostartState(True, self.location, argv, _missing_program(argv))

    def enable(self, argv: Sequence[str]) -> None:
        lines = [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.4",
            f"Name={APP_NAME}",
            "Comment=Keep Immich albums mirrored into local folders",
            f"Exec={desktop_exec(argv)}",
            f"Icon={self.icon or 'image-x-generic'}",
            "Terminal=false",
            "Categories=Graphics;Photography;",
            "StartupNotify=false",
            "X-GNOME-Autostart-enabled=true",
            "X-GNOME-Autostart-Delay=5",
        ]
        _write_atomically(self.path, ("\n".join(lines) + "\n").encode("utf-8"))

    def disable(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class LaunchAgent:
    """``~/Library/LaunchAgents/<id>.plist`` with RunAtLoad: launchd starts it at the next login."""

    def __init__(self, home: Path) -> None:
        self.path = home / "Library" / "LaunchAgents" / f"{RDNS_ID}.plist"
        self.location = str(self.path)

    def plist(self, argv: Sequence[str]) -> dict[str, object]:
        return {
            "Label": RDNS_ID,
            "ProgramArguments": list(argv),
            "RunAtLoad": True,
            # Not KeepAlive: Quit in the menu must mean quit, not "restart in 10 seconds".
            "KeepAlive": False,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }

    def state(self) -> AutostartState:
        if not self.path.exists():
            return AutostartState(False, self.location, None)
        try:
            with self.path.open("rb") as handle:
                data = plistlib.load(handle)
        except (OSError, plistlib.InvalidFileException, ValueError) as exc:
            return AutostartState(False, self.location, None, f"the plist cannot be read: {exc}")
        argv = [str(a) for a in data.get("ProgramArguments", [])] or None
        if not data.get("RunAtLoad") or data.get("Disabled"):
            return AutostartState(False, self.location, argv, "the plist does not run at load")
        return AutostartState(True, self.location, argv, _missing_program(argv))

    def enable(self, argv: Sequence[str]) -> None:
        _write_atomically(self.path, plistlib.dumps(self.plist(argv), fmt=plistlib.FMT_XML))

    def disable(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class Registry(Protocol):
    """The few HKEY_CURRENT_USER operations the Run key needs (a fake one in tests)."""

    def get(self, key: str, name: str) -> str | bytes | None: ...

    def set_string(self, key: str, name: str, value: str) -> None: ...

    def delete(self, key: str, name: str) -> bool: ...


class WinRegistry:
    """:class:`Registry` on the real HKEY_CURRENT_USER."""

    def get(self, key: str, name: str) -> str | bytes | None:
        import winreg  # type: ignore[import-not-found]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_READ) as handle:
                value, _kind = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return value  # type: ignore[no-any-return]

    def set_string(self, key: str, name: str, value: str) -> None:
        import winreg  # type: ignore[import-not-found]

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def delete(self, key: str, name: str) -> bool:
        import winreg  # type: ignore[import-not-found]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
                winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            return False
        return True


class WindowsRunKey:
    """``HKCU\\...\\CurrentVersion\\Run``; honours "Disabled" in Task Manager's Startup tab."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.location = f"HKCU\\{RUN_KEY}\\{RUN_VALUE}"

    def state(self) -> AutostartState:
        value = self.registry.get(RUN_KEY, RUN_VALUE)
        if not isinstance(value, str) or not value.strip():
            return AutostartState(False, self.location, None)
        argv = parse_windows_command_line(value)
        approved = self.registry.get(STARTUP_APPROVED_KEY, RUN_VALUE)
        # Task Manager writes 12 bytes: first byte 2 = enabled, 3 = disabled by the user.
        if isinstance(approved, bytes) and approved[:1] and approved[0] & 1:
            return AutostartState(False, self.location, argv, "disabled in Task Manager's Startup tab")
        return AutostartState(True, self.location, argv, _missing_program(argv), command_line=value)

    def enable(self, argv: Sequence[str]) -> None:
        self.registry.set_string(RUN_KEY, RUN_VALUE, windows_command_line(argv))
        # Turning it on here must also undo "Disabled" in Task Manager, or the checkbox would lie.
        self.registry.delete(STARTUP_APPROVED_KEY, RUN_VALUE)

    def disable(self) -> bool:
        removed = self.registry.delete(RUN_KEY, RUN_VALUE)
        self.registry.delete(STARTUP_APPROVED_KEY, RUN_VALUE)
        return removed


def parse_windows_command_line(value: str) -> list[str]:
    """Split a Run-key command line the way CreateProcess + the MS C runtime would."""
    value = value.strip()
    if value.startswith('"'):
        end = value.find('"', 1)
        if end < 0:
            return [value[1:]]
        program, rest = value[1:end], value[end + 1 :]
    else:
        program, _, rest = value.partition(" ")
    return [program, *_split_msvcrt(rest)]


def _split_msvcrt(text: str) -> list[str]:
    args: list[str] = []
    current: list[str] = []
    in_arg = in_quotes = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            run = 0
            while i < len(text) and text[i] == "\\":
                run += 1
                i += 1
            if i < len(text) and text[i] == '"':
                current.append("\\" * (run // 2))
                if run % 2:
                    current.append('"')
                    i += 1
            else:
                current.append("\\" * run)
            in_arg = True
            continue
        if ch == '"':
            in_quotes = not in_quotes
            in_arg = True
        elif ch in " \t" and not in_quotes:
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
        else:
            current.append(ch)
            in_arg = True
        i += 1
    if in_arg:
        args.append("".join(current))
    return args


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# -- choosing one -----------------------------------------------------------------------------


def login_item(
    *,
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    registry: Registry | None = None,
) -> LoginItem:
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    home = home or Path(environ.get("HOME") or Path.home())
    if platform == "win32":
        return WindowsRunKey(registry or WinRegistry())
    if platform == "darwin":
        return LaunchAgent(home)
    config_home = environ.get("XDG_CONFIG_HOME", "")
    # The spec: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(config_home) if config_home and os.path.isabs(config_home) else home / ".config"
    return XdgAutostart(base, icon=_installed_icon())


def _installed_icon() -> str | None:
    try:
        from tray_sync.resources import icon_path

        path = icon_path()
    except (ImportError, OSError):
        return None
    return str(path) if path.is_file() else None


def is_enabled(item: LoginItem | None = None) -> bool:
    """True when the app will really start at login: an entry that runs a program that exists.

    An entry left pointing at a deleted venv or a moved app counts as off, so the settings checkbox
    shows it unticked and ticking it writes a working entry.
    """
    state = (item or login_item()).state()
    return state.enabled and state.problem is None


def enable(home: str | os.PathLike[str] | None = None, item: LoginItem | None = None) -> AutostartState:
    """Start the app at login from now on; returns the new state (whose ``command`` is what runs).

    ``home`` is the profile folder to start with; by default the one this process uses if it was
    chosen with ``TRAY_SYNC_HOME`` (a ``--home`` argument must be passed in).
    """
    item = item or login_item()
    argv = launch_command(home=profile_home(None) if home is None else home)
    try:
        item.enable(argv)
    except OSError as exc:
        raise ConfigError(f"Could not write the login item {item.location}: {exc.strerror or exc}.") from exc
    except ValueError as exc:
        raise ConfigError(f"Cannot start at login: {exc}; move tray-sync or the profile to a plainer path.") from exc
    log.info("autostart on: %s runs %s", item.location, argv)
    return item.state()


def disable(item: LoginItem | None = None) -> bool:
    """Stop starting at login; True when there was an entry to remove."""
    item = item or login_item()
    try:
        removed = item.disable()
    except OSError as exc:
        raise ConfigError(f"Could not remove the login item {item.location}: {exc.strerror or exc}.") from exc
    log.info("autostart off: %s %s", item.location, "removed" if removed else "was not there")
    return removed


def describe(item: LoginItem | None = None) -> str:
    return (item or login_item()).state().describe()
