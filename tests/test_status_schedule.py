"""`tray-sync status` tells what the tray app's schedule last recorded: last success, next check, pause."""

from __future__ import annotations

from pathlib import Path

from tests.e2e_helpers import cli
from tray_sync.paths import AppPaths
from tray_sync.sync.store import open_store


def _record(home: Path, **values: object) -> None:
    store = open_store(AppPaths.resolve(home).ensure().db_path)
    try:
        store.save_connection(name="home", server_url="https://photos.example.com",
                              api_url="https://photos.example.com/api", account="home@https://photos.example.com",
                              server_version="3.1.0")
        for key, value in values.items():
            store.set_setting(key, value)
    finally:
        store.close()


def test_status_shows_the_schedule(home: Path) -> None:
    _record(home, last_success_at="2026-11-25T09:30:00+00:00", next_due_at="2026-11-25T10:00:00+00:00")
    status = cli(home, "status", "--json").json()
    assert status["schedule"] == {"last_success_at": "2026-11-25T09:30:00+00:00",
                                  "next_due_at": "2026-11-25T10:00:00+00:00", "paused": False, "paused_until": None}
    text = cli(home, "status").out
    assert "Tray app: last successful sync 2026-11-25" in text and "next check 2026-11-25" in text


def test_status_shows_a_pause(home: Path) -> None:
    _record(home, paused=True, paused_until="2026-11-26T07:00:00+00:00")
    text = cli(home, "status").out
    assert "Tray app: paused until 2026-11-26" in text
    _record(home, paused=True, paused_until=None)
    assert "paused until resumed" in cli(home, "status").out


def test_status_without_the_tray_app_says_nothing_about_a_schedule(home: Path) -> None:
    _record(home)
    assert "Tray app" not in cli(home, "status").out
    assert cli(home, "status", "--json").json()["schedule"]["last_success_at"] is None
