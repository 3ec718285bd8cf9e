"""Packaging: the icon assets, the Linux desktop files, the wheel's contents, the PyInstaller spec per
platform, and (slow) a real Linux bundle that runs."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

from tray_sync import __version__
from tray_sync.autostart import FROZEN_GUI_NAME, RDNS_ID

REPO = Path(__file__).resolve().parents[1]
LINUX = REPO / "packaging" / "linux"
DESKTOP = LINUX / f"{RDNS_ID}.desktop"
METAINFO = LINUX / f"{RDNS_ID}.metainfo.xml"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: apt install {package}"
    return path


def desktop_file_validate(path: Path) -> None:
    result = subprocess.run([_tool("desktop-file-validate", "desktop-file-utils"), str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def desktop_entries(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if line and not line.startswith("#"))


# -- Linux desktop integration ----------------------------------------------------------------------


def test_desktop_file_is_valid_and_starts_the_gui_script() -> None:
    desktop_file_validate(DESKTOP)
    entries = desktop_entries(DESKTOP)
    assert "tray-sync-app" in PYPROJECT["project"]["gui-scripts"]
    assert PYPROJECT["project"]["gui-scripts"]["tray-sync-app"] == "tray_sync.cli:gui_main"
    assert entries["Exec"] == entries["TryExec"] == "tray-sync-app"
    assert entries["Icon"] == RDNS_ID and entries["Terminal"] == "false"


def test_metainfo_is_valid_and_matches_the_app() -> None:
    result = subprocess.run([_tool("appstreamcli", "appstream"), "validate", "--no-net", str(METAINFO)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert not problems, result.stdout
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == RDNS_ID
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("project_license") == PYPROJECT["project"]["license"]["text"]
    assert root.find("releases/release").get("version") == __version__  # type: ignore[union-attr]
    binaries = {b.text for b in root.findall("provides/binary")}
    assert binaries == set(PYPROJECT["project"]["scripts"]) | set(PYPROJECT["project"]["gui-scripts"])


def test_install_script_puts_entry_metainfo_and_icons_in_a_prefix(tmp_path: Path) -> None:
    bundle_program = "/opt/immich-tray-sync/immich-tray-sync"
    subprocess.run(["sh", str(LINUX / "install-desktop-files.sh"), str(tmp_path), bundle_program],
                   check=True, capture_output=True, timeout=60)
    share = tmp_path / "share"
    installed = share / "applications" / DESKTOP.name
    desktop_file_validate(installed)
    assert desktop_entries(installed)["Exec"] == bundle_program
    assert (share / "metainfo" / METAINFO.name).read_bytes() == METAINFO.read_bytes()
    for size in SIZES:
        with Image.open(share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{RDNS_ID}.png") as icon:
            assert icon.size == (size, size)
    refused = subprocess.run(["sh", str(LINUX / "install-desktop-files.sh"), str(tmp_path), "/opt/my app/x"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "plain path" in refused.stderr


def test_install_script_finds_the_gui_script_and_removes_what_it_installed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "pipx bin"
    bin_dir.mkdir()
    (bin_dir / "tray-sync-app").write_text("#!/bin/sh\n")
    (bin_dir / "tray-sync-app").chmod(0o755)
    prefix = tmp_path / "prefix"
    script = str(LINUX / "install-desktop-files.sh")
    entry = prefix / "share" / "applications" / DESKTOP.name
    # A path with a space would need quoting in Exec=: the script keeps the plain name then.
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", script, str(prefix)], env=env, check=True, capture_output=True, timeout=60)
    assert desktop_entries(entry)["Exec"] == "tray-sync-app"
    plain_bin = tmp_path / "bin"
    bin_dir.rename(plain_bin)
    env["PATH"] = f"{plain_bin}:{os.environ['PATH']}"
    subprocess.run(["sh", script, str(prefix)], env=env, check=True, capture_output=True, timeout=60)
    assert desktop_entries(entry)["Exec"] == str(plain_bin / "tray-sync-app")
    assert len(list((prefix / "share").rglob("*"))) > 10

    subprocess.run(["sh", script, "--remove", str(prefix)], check=True, capture_output=True, timeout=60)
    assert [p for p in (prefix / "share").rglob(f"{RDNS_ID}*") if p.is_file()] == []
    assert len(list((prefix / "share").rglob("*.png"))) == 0


# -- icons ------------------------------------------------------------------------------------------


def _load_make_assets(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("make_assets", REPO / "assets" / "make_assets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_assets", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _max_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    extrema = ImageChops.difference(a.convert("RGBA"), b.convert("RGBA")).getextrema()
    return max(high for _low, high in extrema)  # type: ignore[union-attr]


def test_committed_icons_are_what_the_script_draws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_assets = _load_make_assets(monkeypatch)
    runtime = tmp_path / "runtime" / "icon.png"
    written = make_assets.make_all(tmp_path, runtime)
    assert runtime in written
    pairs = [(tmp_path / "icon-source.png", REPO / "assets" / "icon-source.png"),
             (runtime, REPO / "tray_sync" / "resources" / "icon.png")]
    pairs += [(tmp_path / "icons" / f"icon-{s}.png", REPO / "assets" / "icons" / f"icon-{s}.png") for s in SIZES]
    for fresh, committed in pairs:
        with Image.open(fresh) as new, Image.open(committed) as old:
            # A little slack for resampling changes between Pillow versions; a redesign is far above it.
            assert _max_difference(new, old) <= 12, f"{committed} is stale: run python assets/make_assets.py"


def test_icon_files_have_every_size_and_a_clean_shape() -> None:
    for size in SIZES:
        with Image.open(REPO / "assets" / "icons" / f"icon-{size}.png") as icon:
            assert icon.mode == "RGBA" and icon.size == (size, size)
            centre = icon.getpixel((size // 2, size // 2))
            assert centre[3] == 255  # type: ignore[index]
            if size >= 64:  # rounded corners: transparent, so it sits on light and dark panels
                assert icon.getpixel((0, 0))[3] == 0  # type: ignore[index]
    with Image.open(REPO / "assets" / "icon.ico") as ico:
        assert {(16, 16), (24, 24), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
        ico.size = (16, 16)  # type: ignore[misc]
        ico.load()
        with Image.open(REPO / "assets" / "icons" / "icon-16.png") as small:
            # The .ico's 16 px is the simplified drawing, not the 256 px one shrunk.
            assert _max_difference(ico, small) == 0
    with Image.open(REPO / "assets" / "icon.icns") as icns:
        assert (512, 512, 2) in icns.info["sizes"] and (16, 16, 2) in icns.info["sizes"]
    with Image.open(REPO / "tray_sync" / "resources" / "icon.png") as runtime:
        assert runtime.size == (256, 256)
    from tray_sync.resources import icon_path, load_icon

    assert icon_path() == REPO / "tray_sync" / "resources" / "icon.png"
    loaded = load_icon()
    assert loaded.mode == "RGBA" and loaded.size == (256, 256)


def test_state_icons_are_exported_for_every_tray_state() -> None:
    from tray_sync.appstate import TrayState

    pictures = {}
    for state in TrayState:
        with Image.open(REPO / "assets" / "states" / f"state-{state.value}.png") as icon:
            assert icon.size == (64, 64) and icon.mode == "RGBA"
            pictures[state] = icon.tobytes()
    assert len(set(pictures.values())) == len(TrayState), "two states look exactly alike"
    assert (REPO / "assets" / "previews" / "states-on-panels.png").is_file()


def test_the_runtime_icon_is_package_data_in_the_wheel(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    shutil.copytree(REPO / "tray_sync", source / "tray_sync", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheels"), str(source)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("immich_tray_sync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = archive.read(entry_points).decode()
    assert "tray_sync/resources/icon.png" in names
    assert "tray_sync/commands/autostart.py" in names and "tray_sync/commands/uninstall.py" in names
    assert "[gui_scripts]\ntray-sync-app = tray_sync.cli:gui_main" in text
    assert "[console_scripts]\ntray-sync = tray_sync.cli:main" in text


# -- the PyInstaller spec, per platform -------------------------------------------------------------


class _Recorder:
    """Stands in for PyInstaller's build classes and records what the spec asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def factory(self, kind: str) -> Any:
        recorder = self

        class Target:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                recorder.calls.append((kind, args, kwargs))
                self.pure = self.scripts = self.binaries = self.datas = []

        return Target

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [kwargs for k, _args, kwargs in self.calls if k == kind]


def _run_spec(platform: str, monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package, **_: [f"{package}.stub"]  # type: ignore[attr-defined]
    hooks.collect_data_files = lambda package, **_: [("resources/icon.png", f"{package}/resources")]  # type: ignore[attr-defined]
    hooks.copy_metadata = lambda name: [(f"{name}.dist-info", f"{name}.dist-info")]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    recorder = _Recorder()
    spec = REPO / "packaging" / "tray-sync.spec"
    namespace = {name: recorder.factory(name) for name in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    namespace |= {"SPECPATH": str(spec.parent), "__file__": str(spec)}
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), namespace)
    return recorder


def test_spec_on_macos_makes_a_menu_bar_app_without_app_nap(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _run_spec("darwin", monkeypatch)
    (bundle,) = recorder.of("BUNDLE")
    assert bundle["name"] == "Immich Tray Sync.app" and bundle["bundle_identifier"] == RDNS_ID
    assert bundle["icon"].endswith("assets/icon.icns") and Path(bundle["icon"]).is_file()
    plist = bundle["info_plist"]
    assert plist["LSUIElement"] is True and plist["NSAppSleepDisabled"] is True
    assert plist["CFBundleShortVersionString"] == __version__
    analyses = recorder.of("Analysis")
    assert all("pystray._darwin" in a["hiddenimports"] for a in analyses)


def test_spec_on_windows_makes_a_windowed_app_and_a_console_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _run_spec("win32", monkeypatch)
    app, cli = recorder.of("EXE")
    assert app["name"] == FROZEN_GUI_NAME["win32"] and app["console"] is False
    assert cli["name"] == "tray-sync" and cli["console"] is True
    assert app["icon"].endswith("icon.ico") and Path(app["icon"]).is_file()
    assert recorder.of("BUNDLE") == []
    hidden = recorder.of("Analysis")[0]["hiddenimports"]
    assert "pystray._win32" in hidden and "tray_sync.stub" in hidden and "keyring.backends.stub" in hidden


def test_spec_on_linux_names_the_tray_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _run_spec("linux", monkeypatch)
    (collected,) = recorder.of("COLLECT")
    assert collected["name"] == "immich-tray-sync"
    app, _cli = recorder.of("EXE")
    assert app["name"] == FROZEN_GUI_NAME["linux"]
    hidden = recorder.of("Analysis")[0]["hiddenimports"]
    assert {"pystray._xorg", "pystray._gtk", "pystray._appindicator"} <= set(hidden)
    entries = {Path(args[0][0]).name for kind, args, _kw in recorder.calls if kind == "Analysis"}
    assert entries == {"launch_app.py", "launch_cli.py"}


# -- the real Linux bundle (slow) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def linux_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the Linux bundle once for the slow tests; the folder with both programs."""
    if not sys.platform.startswith("linux"):
        pytest.skip("platform: the Linux bundle is built on Linux")
    pytest.importorskip("PyInstaller", reason="pip install -e '.[packaging]' (also part of the test extra)")
    root = tmp_path_factory.mktemp("bundle")
    dist, work = root / "dist", root / "work"
    build = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(dist), "--workpath", str(work), str(REPO / "packaging" / "tray-sync.spec")],
        capture_output=True, text=True, timeout=840, cwd=root,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    folder = dist / "immich-tray-sync"
    for name in ("tray-sync", FROZEN_GUI_NAME["linux"]):
        assert os.access(folder / name, os.X_OK), name
    return folder


def _bundle_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "TRAY_SYNC_HOME")}
    return env | {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config")}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_linux_bundle_builds_and_runs(linux_bundle: Path, tmp_path: Path) -> None:
    cli, app = linux_bundle / "tray-sync", linux_bundle / FROZEN_GUI_NAME["linux"]
    env = _bundle_env(tmp_path)

    def run(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(program), *args], capture_output=True, text=True, timeout=120, env=env,
                              cwd=tmp_path)

    for program in (cli, app):
        version = run(program, "--version")
        assert version.returncode == 0 and version.stdout.strip() == f"tray-sync {__version__}", version.stderr
    sync_help = run(cli, "sync", "--help")
    assert sync_help.returncode == 0 and sync_help.stdout.startswith("usage: tray-sync sync"), sync_help.stderr

    # The bundle really works: the built-in demo server, a full sync with checksums, SQLite, Pillow.
    photos = tmp_path / "Demo Photos"
    demo = run(cli, "--home", str(tmp_path / "profile"), "demo", "--headless", "--photos", "2",
               "--folder", str(photos))
    assert demo.returncode == 0, demo.stderr
    assert "Family 2024" in demo.stdout and len(list(photos.rglob("*.jpg"))) >= 4

    # `autostart on` from the console program starts the windowed one at login, inside the bundle.
    on = run(cli, "--home", str(tmp_path / "profile"), "autostart", "on")
    assert on.returncode == 0, on.stderr
    entry = tmp_path / "home" / ".config" / "autostart" / f"{RDNS_ID}.desktop"
    desktop_file_validate(entry)
    assert desktop_entries(entry)["Exec"] == f"{app} --home {tmp_path / 'profile'}"
    icon = Path(desktop_entries(entry)["Icon"])
    assert icon.is_file() and linux_bundle in icon.parents


def _docked_icons(display: str) -> list[str]:
    """WM_CLASS instance names of the windows docked in trayer's panel."""
    from Xlib import display as xlib_display

    connection = xlib_display.Display(display)
    try:
        found: list[str] = []

        def walk(window, in_panel: bool) -> None:  # type: ignore[no-untyped-def]
            try:
                wm_class = window.get_wm_class()
                children = window.query_tree().children
            except Exception:  # a window that went away meanwhile
                return
            if in_panel and wm_class:
                found.append(wm_class[0])
            for child in children:
                walk(child, in_panel or wm_class == ("panel", "trayer"))

        walk(connection.screen().root, False)
        return found
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.gui
@pytest.mark.timeout(900)
def test_linux_bundle_tray_app_docks_its_icon(
    linux_bundle: Path, tmp_path: Path, xdisplay: str, tray_host: subprocess.Popen[bytes], session_bus: str
) -> None:
    """The windowed program starts the real tray app (pystray, Tk dialogs, Pillow's Tk bridge)."""
    import time

    profile = tmp_path / "profile"
    env = _bundle_env(tmp_path) | {"DISPLAY": xdisplay, "DBUS_SESSION_BUS_ADDRESS": session_bus, "NO_AT_BRIDGE": "1"}
    log = tmp_path / "app-output.txt"
    with log.open("wb") as output:
        app = subprocess.Popen([str(linux_bundle / FROZEN_GUI_NAME["linux"]), "--home", str(profile), "demo",
                                "--photos", "2", "--folder", str(tmp_path / "photos")],
                               stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while FROZEN_GUI_NAME["linux"] not in _docked_icons(xdisplay):
            assert app.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "no icon docked in the tray: " + log.read_text(errors="replace")
            time.sleep(0.2)
        time.sleep(1)  # the first dialogs and the first sync run now: the app must still be alive after them
        assert app.poll() is None, log.read_text(errors="replace")
    finally:
        app.terminate()
        try:
            app.wait(10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait(10)
    app_log = (profile / "logs" / "tray-sync.log").read_text(encoding="utf-8", errors="replace")
    assert " ERROR " not in app_log and "Traceback" not in app_log, app_log[-3000:]
