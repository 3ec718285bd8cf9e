"""`tray-sync demo --headless`: a newcomer sees real photos in a real folder, with no Immich and no keyring."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e_helpers import cli_process


def _demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "TMPDIR": str(tmp_path / "tmp"),
        "HOME": str(tmp_path / "user-home"),
        "XDG_CONFIG_HOME": str(tmp_path / "user-home" / ".config"),
        "XDG_DATA_HOME": str(tmp_path / "user-home" / ".local" / "share"),
        # No keyring at all: the demo keeps its key in memory and must not need one.
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        **extra,
    }
    (tmp_path / "tmp").mkdir()
    return env


def _run_demo(tmp_path: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if k not in ("TRAY_SYNC_HOME", "DISPLAY", "WAYLAND_DISPLAY")}
    full_env.update(_demo_env(tmp_path, **env))
    return subprocess.run([sys.executable, "-m", "tray_sync", "demo", "--headless", *args],
                          capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.parametrize("mode", ["3", "2"])
def test_headless_demo_puts_real_photos_in_a_real_folder(tmp_path: Path, mode: str) -> None:
    result = _run_demo(tmp_path, "--mode", mode, "--photos", "4")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    match = re.search(r"Done\. Open (.+?) to see the photos", result.stdout)
    assert match, result.stdout
    root = Path(match.group(1))
    assert root.is_dir() and str(root).startswith(str(tmp_path)), "the demo stays in its throwaway profile"
    albums = [p for p in root.iterdir() if p.is_dir()]
    assert len(albums) >= 3, albums
    photos = [p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")]
    assert len(photos) >= 3 * 4
    for photo in photos[:5]:
        with Image.open(photo) as image:
            assert image.format == "JPEG" and image.width > 100
    assert any(p.suffix.lower() == ".mov" for p in root.rglob("*")), "the live photo's motion part"
    assert not [p for p in root.rglob(".~tray-sync-*")], "no partial files left"
    # Every album's line in the report says what it did.
    assert result.stdout.count("downloaded") >= len(albums)


def test_demo_ignores_a_real_key_in_the_environment_and_never_writes_it(tmp_path: Path) -> None:
    result = _run_demo(tmp_path, "--photos", "2", IMMICH_API_KEY="someone-elses-real-key-123")
    assert result.returncode == 0, result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".sqlite3", ".json", ".log", ""):
            assert b"someone-elses-real-key-123" not in path.read_bytes()


def test_demo_with_an_explicit_home_reuses_it(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    first = cli_process(home, "demo", "--headless", "--photos", "2",
                        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "DISPLAY": ""})
    assert first.returncode == 0, first.stderr
    second = cli_process(home, "demo", "--headless", "--photos", "2",
                         env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "DISPLAY": ""})
    assert second.returncode == 0, second.stderr
    # A new demo server (new port, same photos): the files already there are adopted, not duplicated.
    photos = sorted(p.name for p in (home / "Immich Demo").rglob("*") if p.is_file())
    assert photos and len(photos) == len(set(photos))
    assert not [n for n in photos if re.search(r" \([0-9a-f]{8}\)\.", n) and "IMG_0001" not in n]
