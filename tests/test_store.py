"""The SQLite store: schema, migrations, WAL, privacy, settings, seed tables."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tray_sync.sync.errors import ConfigError
from tray_sync.sync.store import Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "db.sqlite3")


def test_seed_tables_and_indexes_exist(store: Store) -> None:
    names = {r[0] for r in store._query("SELECT name FROM sqlite_master")}
    assert {"connections", "album_syncs", "synced_assets", "settings"} <= names
    assert {"idx_connections_name", "idx_album_syncs_connection", "idx_album_syncs_album_id",
            "idx_synced_assets_album_sync", "idx_synced_assets_asset_id", "idx_synced_assets_filename"} <= names
    assert store._query("PRAGMA journal_mode")[0][0] == "wal"
    assert store._query("PRAGMA foreign_keys")[0][0] == 1
    assert store._query("PRAGMA user_version")[0][0] == 1


def test_database_is_private(store: Store) -> None:
    if os.name == "posix":
        assert store.path.stat().st_mode & 0o077 == 0


def test_connection_roundtrip_and_no_secret(store: Store) -> None:
    conn = store.save_connection(name="home", server_url="https://h", api_url="https://h/api",
                                 account="home@https://h", server_version="3.1.0")
    assert store.find_connection(None) == conn
    assert store.find_connection("home").account == "home@https://h"
    with pytest.raises(ConfigError, match="No connection named"):
        store.find_connection("other")
    store.save_connection(name="work", server_url="https://w", api_url="https://w/api",
                          account="work@https://w", server_version="2.7.5")
    with pytest.raises(ConfigError, match="--connection"):
        store.find_connection(None)


def test_assets_cascade_and_name_keys_unique(store: Store) -> None:
    conn = store.save_connection(name="h", server_url="u", api_url="u/api", account="a", server_version="3")
    album = store.add_album_sync(conn.id, "alb", "Album", "/tmp/x")
    common = {"file_size": 1, "checksum": "c", "mtime_ns": 1, "remote_updated_at": None}
    store.record_asset(album.id, asset_id="1", filename="a.jpg", local_path="a.jpg", name_key="a.jpg", **common)
    with pytest.raises(sqlite3.IntegrityError):
        store.record_asset(album.id, asset_id="2", filename="A.JPG", local_path="A.JPG", name_key="a.jpg", **common)
    assert store.album_totals(album.id).files == 1
    store.delete_connection(conn.id)
    assert store._query("SELECT COUNT(*) FROM synced_assets")[0][0] == 0


def test_settings_defaults_and_persist(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    assert store.get_setting("interval_minutes") == 30
    store.set_setting("interval_minutes", 15)
    store.close()
    assert Store(tmp_path / "db.sqlite3").settings()["interval_minutes"] == 15


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_corrupt_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot be read"):
        Store(path)
