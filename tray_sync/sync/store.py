"""Sync state in SQLite: the seed's three tables, plus what the engine needs.

One connection, opened once, in WAL mode, shared by every thread behind a lock (the
engine's download workers record finished files through it). The API key is never stored
here: ``connections.api_token`` holds only the keyring account that names it.

Migrations are numbered by ``PRAGMA user_version``; each step runs in one transaction.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tray_sync.sync.errors import ConfigError, TraySyncError
from tray_sync.sync.fsops import crash_point

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0

_MIGRATIONS: list[str] = [
    # 1: the seed's data model (connections, album_syncs, synced_assets) and its indexes,
    # plus the columns the engine needs, and settings.
    """
    CREATE TABLE connections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        server_url TEXT NOT NULL,
        api_token TEXT NOT NULL,              -- keyring account, never the key itself
        api_url TEXT NOT NULL,
        server_version TEXT NOT NULL DEFAULT '',
        new_album_policy TEXT NOT NULL DEFAULT 'ignore',
        new_album_root TEXT,
        ca_bundle TEXT,
        created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
        updated_at DATETIME DEFAULT CURRENT_TIMESTAMP
    );
    CREATE INDEX idx_connections_name ON connections(name);

    CREATE TABLE album_syncs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        connection_id INTEGER NOT NULL,
        album_id TEXT NOT NULL,
        album_name TEXT NOT NULL,
        local_path TEXT NOT NULL,
        last_sync_at DATETIME,
        created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
        fingerprint TEXT,
        last_full_listing_at DATETIME,
        last_attempt_at DATETIME,
        state TEXT NOT NULL DEFAULT 'new',
        last_error TEXT,
        last_error_kind TEXT,
        mirror_removals INTEGER NOT NULL DEFAULT 0,
        folder_template TEXT NOT NULL DEFAULT '',
        remote_asset_count INTEGER,
        confirm_removals INTEGER NOT NULL DEFAULT 0,
        FOREIGN KEY (connection_id) REFERENCES connections(id) ON DELETE CASCADE,
        UNIQUE (connection_id, album_id)
    );
    CREATE INDEX idx_album_syncs_connection ON album_syncs(connection_id);
    CREATE INDEX idx_album_syncs_album_id ON album_syncs(album_id);

    CREATE TABLE synced_assets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        album_sync_id INTEGER NOT NULL,
        asset_id TEXT NOT NULL,
        filename TEXT NOT NULL,
        file_size INTEGER,
        checksum TEXT,
        local_path TEXT NOT NULL,             -- relative to the album's folder, '/'-separated
        synced_at DATETIME DEFAULT CURRENT_TIMESTAMP,
        name_key TEXT NOT NULL,               -- casefolded NFC path: collisions across OSes
        mtime_ns INTEGER,                     -- as written by us: tells a user edit apart
        state TEXT NOT NULL DEFAULT 'synced', -- synced | changed_locally | removal_held | removed
        remote_updated_at TEXT,
        is_external INTEGER NOT NULL DEFAULT 0, -- checksum is of the path: verify size only
        FOREIGN KEY (album_sync_id) REFERENCES album_syncs(id) ON DELETE CASCADE,
        UNIQUE (album_sync_id, asset_id)
    );
    CREATE INDEX idx_synced_assets_album_sync ON synced_assets(album_sync_id);
    CREATE INDEX idx_synced_assets_asset_id ON synced_assets(asset_id);
    CREATE INDEX idx_synced_assets_filename ON synced_assets(filename);
    CREATE UNIQUE INDEX idx_synced_assets_name_key ON synced_assets(album_sync_id, name_key);

    CREATE TABLE seen_albums (
        connection_id INTEGER NOT NULL,
        album_id TEXT NOT NULL,
        album_name TEXT NOT NULL,
        first_seen_at DATETIME DEFAULT CURRENT_TIMESTAMP,
        offered INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (connection_id, album_id),
        FOREIGN KEY (connection_id) REFERENCES connections(id) ON DELETE CASCADE
    );

    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]

DEFAULT_SETTINGS: dict[str, Any] = {
    "interval_minutes": 30,
    "parallel_downloads": 4,
    "notifications": True,
    "notify_on_success": True,
    "notify_on_error": True,
    "autostart": False,
    "log_level": "INFO",
    "free_space_reserve_mb": 500,
    "removal_threshold_percent": 10,
    "removal_threshold_files": 50,
    "full_relist_hours": 24,
    "paused_until": None,
    "last_success_at": None,
    "next_due_at": None,
}


_UPSERT_ASSET = """INSERT INTO synced_assets(album_sync_id, asset_id, filename, file_size, checksum,
        local_path, name_key, mtime_ns, state, remote_updated_at, is_external, synced_at)
    VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(album_sync_id, asset_id) DO UPDATE SET filename=excluded.filename,
      file_size=excluded.file_size, checksum=excluded.checksum, local_path=excluded.local_path,
      name_key=excluded.name_key, mtime_ns=excluded.mtime_ns, state=excluded.state,
      remote_updated_at=excluded.remote_updated_at, is_external=excluded.is_external,
      synced_at=excluded.synced_at"""


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Connection:
    id: int
    name: str
    server_url: str
    api_url: str
    account: str  # keyring account (the seed's api_token column)
    server_version: str
    new_album_policy: str
    new_album_root: str | None
    ca_bundle: str | None


@dataclass(frozen=True, slots=True)
class AlbumSync:
    id: int
    connection_id: int
    album_id: str
    album_name: str
    local_path: str
    last_sync_at: str | None
    fingerprint: str | None
    last_full_listing_at: str | None
    state: str
    last_error: str | None
    last_error_kind: str | None
    mirror_removals: bool
    folder_template: str
    remote_asset_count: int | None
    confirm_removals: bool
    last_attempt_at: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.local_path)


@dataclass(frozen=True, slots=True)
class SyncedAsset:
    id: int
    album_sync_id: int
    asset_id: str
    filename: str
    file_size: int | None
    checksum: str | None
    local_path: str
    name_key: str
    mtime_ns: int | None
    state: str
    remote_updated_at: str | None
    is_external: bool


@dataclass(frozen=True, slots=True)
class AlbumTotals:
    files: int
    bytes: int
    changed_locally: int
    held_removals: int


class StoreError(TraySyncError):
    def __init__(self, message: str, *, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


CONFIG_BACKUP_SUFFIX = ".config.json"


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


def _open_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """Why the database could not be opened. Only a damaged or unreadable file counts as corrupt
    (moved aside and rebuilt); a full or failing disk must never cost the user their setup."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if _is_busy(exc):
        return StoreError(f"The database {path} is busy (another tray-sync is writing); try again.")
    if name == "SQLITE_FULL" or "disk is full" in str(exc).lower() or (
            name.startswith("SQLITE_IOERR") and _free_bytes(path.parent) < 1024 * 1024):
        return StoreError(f"The disk holding {path.parent} is full: free some space, then try again.")
    if name.startswith(("SQLITE_IOERR", "SQLITE_READONLY")):
        return StoreError(f"The database {path} cannot be written ({exc}): check that its disk is "
                          "mounted, writable and healthy.")
    return StoreError(f"The database {path} cannot be read ({exc}).", corrupt=True)


class Store:
    """The one SQLite handle of a process. Methods are atomic and thread-safe."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_S,
                check_same_thread=False,
                isolation_level=None,  # explicit transactions only
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            with suppress(Exception):
                self._db.close()
            raise _open_error(self.path, exc) from exc
        if os.name == "posix":
            for suffix in ("", "-wal", "-shm"):
                candidate = Path(f"{self.path}{suffix}")
                if candidate.exists():
                    os.chmod(candidate, 0o600)

    # -- plumbing -----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                # Another process held the write lock for longer than the busy timeout.
                raise StoreError(
                    f"The database {self.path} is busy (another program has held it for over "
                    f"{BUSY_TIMEOUT_S:g} s); try again in a moment." if _is_busy(exc) else
                    f"The database {self.path} cannot be written ({exc}).",
                ) from exc
            try:
                yield self._db
                crash_point("before_commit")  # kill -9 tests: the transaction is written, not committed
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_MIGRATIONS):
                raise StoreError(
                    f"The database {self.path} was written by a newer Immich Tray Sync "
                    f"(schema {version}); update the app."
                )
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                log.info("Migrating database to schema %d", number)
                self._db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")

    # -- configuration backup -----------------------------------------------------------
    # Connections and album choices are also kept in a small private JSON file beside the
    # database, so a corrupt database can be rebuilt without asking the user again; the
    # files on disk are then adopted by checksum instead of downloaded again.

    @property
    def config_backup_path(self) -> Path:
        return self.path.with_name(self.path.name + CONFIG_BACKUP_SUFFIX)

    def export_config(self) -> dict[str, Any]:
        connections = self.connections()
        names = {c.id: c.name for c in connections}
        return {
            "version": 1,
            "connections": [
                {"name": c.name, "server_url": c.server_url, "api_url": c.api_url, "account": c.account,
                 "server_version": c.server_version, "new_album_policy": c.new_album_policy,
                 "new_album_root": c.new_album_root, "ca_bundle": c.ca_bundle}
                for c in connections
            ],
            "albums": [
                {"connection": names[a.connection_id], "album_id": a.album_id, "album_name": a.album_name,
                 "local_path": a.local_path, "mirror_removals": a.mirror_removals,
                 "folder_template": a.folder_template}
                for a in self.album_syncs()
            ],
            "settings": {k: v for k, v in self.settings().items()
                         if k not in ("last_success_at", "next_due_at", "paused_until")},
        }

    def _write_config_backup(self) -> None:
        target = self.config_backup_path
        temporary = target.with_name(target.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.export_config(), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError:
            log.warning("Could not write the configuration backup %s", target, exc_info=True)

    def import_config(self, data: dict[str, Any]) -> int:
        """Restore connections, album choices and settings from :meth:`export_config` output."""
        restored = 0
        for c in data.get("connections", []):
            conn = self.save_connection(name=c["name"], server_url=c["server_url"], api_url=c["api_url"],
                                        account=c["account"], server_version=c.get("server_version", ""),
                                        ca_bundle=c.get("ca_bundle"))
            self.update_connection(conn.id, new_album_policy=c.get("new_album_policy", "ignore"),
                                   new_album_root=c.get("new_album_root"))
        by_name = {c.name: c.id for c in self.connections()}
        for a in data.get("albums", []):
            if a["connection"] in by_name:
                self.add_album_sync(by_name[a["connection"]], a["album_id"], a["album_name"], a["local_path"],
                                    mirror_removals=bool(a.get("mirror_removals")),
                                    folder_template=a.get("folder_template", ""))
                restored += 1
        for key, value in (data.get("settings") or {}).items():
            self.set_setting(key, value)
        return restored

    # -- settings -----------------------------------------------------------------------

    def get_setting(self, key: str) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key=?", (key,))
        if rows:
            return json.loads(rows[0]["value"])
        return DEFAULT_SETTINGS.get(key)

    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO settings(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def settings(self) -> dict[str, Any]:
        merged = dict(DEFAULT_SETTINGS)
        for row in self._query("SELECT key, value FROM settings"):
            merged[row["key"]] = json.loads(row["value"])
        return merged

    # -- connections --------------------------------------------------------------------

    @staticmethod
    def _connection(row: sqlite3.Row) -> Connection:
        return Connection(
            id=row["id"],
            name=row["name"],
            server_url=row["server_url"],
            api_url=row["api_url"],
            account=row["api_token"],
            server_version=row["server_version"],
            new_album_policy=row["new_album_policy"],
            new_album_root=row["new_album_root"],
            ca_bundle=row["ca_bundle"],
        )

    def connections(self) -> list[Connection]:
        return [self._connection(r) for r in self._query("SELECT * FROM connections ORDER BY id")]

    def connection(self, connection_id: int) -> Connection:
        rows = self._query("SELECT * FROM connections WHERE id=?", (connection_id,))
        if not rows:
            raise ConfigError(f"No connection with id {connection_id}.")
        return self._connection(rows[0])

    def find_connection(self, name: str | None) -> Connection:
        """The named connection, or the only one. ``--connection`` is needed only with several."""
        connections = self.connections()
        if not connections:
            raise ConfigError("No server is connected yet: run `tray-sync connect URL` first.")
        if name is None:
            if len(connections) == 1:
                return connections[0]
            names = ", ".join(c.name for c in connections)
            raise ConfigError(f"Several connections exist ({names}): choose one with --connection NAME.")
        for conn in connections:
            if conn.name == name:
                return conn
        raise ConfigError(f"No connection named {name!r}; `tray-sync status` lists them.")

    def save_connection(
        self,
        *,
        name: str,
        server_url: str,
        api_url: str,
        account: str,
        server_version: str,
        ca_bundle: str | None = None,
    ) -> Connection:
        with self.transaction() as db:
            db.execute(
                """INSERT INTO connections(name, server_url, api_token, api_url, server_version, ca_bundle)
                   VALUES(?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET server_url=excluded.server_url,
                     api_token=excluded.api_token, api_url=excluded.api_url,
                     server_version=excluded.server_version, ca_bundle=excluded.ca_bundle,
                     updated_at=CURRENT_TIMESTAMP""",
                (name, server_url, account, api_url, server_version, ca_bundle),
            )
            row = db.execute("SELECT * FROM connections WHERE name=?", (name,)).fetchone()
        self._write_config_backup()
        return self._connection(row)

    def update_connection(self, connection_id: int, **fields: Any) -> Connection:
        allowed = {"name", "server_url", "api_url", "server_version", "new_album_policy",
                   "new_album_root", "ca_bundle"}
        columns = {k: v for k, v in fields.items() if k in allowed}
        if "account" in fields:
            columns["api_token"] = fields["account"]
        if unknown := set(fields) - allowed - {"account"}:
            raise ValueError(f"unknown connection fields {sorted(unknown)}")
        if columns:
            assignments = ", ".join(f"{k}=?" for k in columns)
            with self.transaction() as db:
                db.execute(
                    f"UPDATE connections SET {assignments}, updated_at=CURRENT_TIMESTAMP WHERE id=?",
                    (*columns.values(), connection_id),
                )
        self._write_config_backup()
        return self.connection(connection_id)

    def delete_connection(self, connection_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM connections WHERE id=?", (connection_id,))
        self._write_config_backup()

    # -- album syncs --------------------------------------------------------------------

    @staticmethod
    def _album(row: sqlite3.Row) -> AlbumSync:
        return AlbumSync(
            id=row["id"],
            connection_id=row["connection_id"],
            album_id=row["album_id"],
            album_name=row["album_name"],
            local_path=row["local_path"],
            last_sync_at=row["last_sync_at"],
            fingerprint=row["fingerprint"],
            last_full_listing_at=row["last_full_listing_at"],
            state=row["state"],
            last_error=row["last_error"],
            last_error_kind=row["last_error_kind"],
            mirror_removals=bool(row["mirror_removals"]),
            folder_template=row["folder_template"],
            remote_asset_count=row["remote_asset_count"],
            confirm_removals=bool(row["confirm_removals"]),
            last_attempt_at=row["last_attempt_at"],
        )

    def album_syncs(self, connection_id: int | None = None) -> list[AlbumSync]:
        if connection_id is None:
            rows = self._query("SELECT * FROM album_syncs ORDER BY album_name COLLATE NOCASE, id")
        else:
            rows = self._query(
                "SELECT * FROM album_syncs WHERE connection_id=? ORDER BY album_name COLLATE NOCASE, id",
                (connection_id,),
            )
        return [self._album(r) for r in rows]

    def album_sync(self, album_sync_id: int) -> AlbumSync:
        rows = self._query("SELECT * FROM album_syncs WHERE id=?", (album_sync_id,))
        if not rows:
            raise ConfigError(f"No synced album with id {album_sync_id}.")
        return self._album(rows[0])

    def add_album_sync(
        self,
        connection_id: int,
        album_id: str,
        album_name: str,
        local_path: str,
        *,
        mirror_removals: bool = False,
        folder_template: str = "",
    ) -> AlbumSync:
        with self.transaction() as db:
            cur = db.execute(
                """INSERT INTO album_syncs(connection_id, album_id, album_name, local_path,
                                          mirror_removals, folder_template)
                   VALUES(?, ?, ?, ?, ?, ?)""",
                (connection_id, album_id, album_name, local_path, int(mirror_removals), folder_template),
            )
            row = db.execute("SELECT * FROM album_syncs WHERE id=?", (cur.lastrowid,)).fetchone()
        self._write_config_backup()
        return self._album(row)

    def update_album_sync(self, album_sync_id: int, **fields: Any) -> AlbumSync:
        allowed = {"album_name", "local_path", "last_sync_at", "fingerprint", "last_full_listing_at",
                   "last_attempt_at", "state", "last_error", "last_error_kind", "mirror_removals",
                   "folder_template", "remote_asset_count", "confirm_removals"}
        if unknown := set(fields) - allowed:
            raise ValueError(f"unknown album fields {sorted(unknown)}")
        if fields:
            assignments = ", ".join(f"{k}=?" for k in fields)
            values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
            with self.transaction() as db:
                db.execute(f"UPDATE album_syncs SET {assignments} WHERE id=?", (*values, album_sync_id))
            if {"album_name", "local_path", "mirror_removals", "folder_template"} & set(fields):
                self._write_config_backup()
        return self.album_sync(album_sync_id)

    def remove_album_sync(self, album_sync_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM album_syncs WHERE id=?", (album_sync_id,))
        self._write_config_backup()

    # -- synced assets ------------------------------------------------------------------

    @staticmethod
    def _asset(row: sqlite3.Row) -> SyncedAsset:
        return SyncedAsset(
            id=row["id"],
            album_sync_id=row["album_sync_id"],
            asset_id=row["asset_id"],
            filename=row["filename"],
            file_size=row["file_size"],
            checksum=row["checksum"],
            local_path=row["local_path"],
            name_key=row["name_key"],
            mtime_ns=row["mtime_ns"],
            state=sys.intern(row["state"]),  # a handful of values over 100,000 rows
            remote_updated_at=row["remote_updated_at"],
            is_external=bool(row["is_external"]),
        )

    def synced_assets(self, album_sync_id: int) -> dict[str, SyncedAsset]:
        # Row by row, not fetchall(): 100,000 rows at once would double the memory this needs.
        with self._lock:
            cursor = self._db.execute("SELECT * FROM synced_assets WHERE album_sync_id=?", (album_sync_id,))
            return {r["asset_id"]: self._asset(r) for r in cursor}

    def record_asset(
        self,
        album_sync_id: int,
        *,
        asset_id: str,
        filename: str,
        file_size: int,
        checksum: str | None,
        local_path: str,
        name_key: str,
        mtime_ns: int,
        remote_updated_at: str | None,
        is_external: bool = False,
        state: str = "synced",
    ) -> None:
        with self.transaction() as db:
            db.execute(
                _UPSERT_ASSET,
                (album_sync_id, asset_id, filename, file_size, checksum, local_path, name_key,
                 mtime_ns, state, remote_updated_at, int(is_external), utc_now()),
            )

    def record_assets(self, album_sync_id: int, records: Iterable[dict[str, Any]]) -> None:
        """Many :meth:`record_asset` calls (same keywords) in one transaction."""
        now = utc_now()
        rows = [
            (album_sync_id, r["asset_id"], r["filename"], r["file_size"], r["checksum"], r["local_path"],
             r["name_key"], r["mtime_ns"], r.get("state", "synced"), r["remote_updated_at"],
             int(r.get("is_external", False)), now)
            for r in records
        ]
        if rows:
            with self.transaction() as db:
                db.executemany(_UPSERT_ASSET, rows)

    def set_asset_state(self, album_sync_id: int, asset_ids: Iterable[str], state: str) -> None:
        ids = list(asset_ids)
        if not ids:
            return
        with self.transaction() as db:
            db.executemany(
                "UPDATE synced_assets SET state=? WHERE album_sync_id=? AND asset_id=?",
                [(state, album_sync_id, a) for a in ids],
            )

    def forget_assets(self, album_sync_id: int, asset_ids: Iterable[str]) -> None:
        ids = list(asset_ids)
        if not ids:
            return
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM synced_assets WHERE album_sync_id=? AND asset_id=?",
                [(album_sync_id, a) for a in ids],
            )

    def album_totals(self, album_sync_id: int) -> AlbumTotals:
        row = self._query(
            """SELECT COUNT(*) AS files, COALESCE(SUM(file_size), 0) AS bytes,
                      SUM(state='changed_locally') AS changed, SUM(state='removal_held') AS held
               FROM synced_assets WHERE album_sync_id=? AND state != 'removed'""",
            (album_sync_id,),
        )[0]
        return AlbumTotals(row["files"], row["bytes"], row["changed"] or 0, row["held"] or 0)

    # -- albums seen on the server (new-album policy) ------------------------------------

    def seen_album_ids(self, connection_id: int) -> set[str]:
        rows = self._query("SELECT album_id FROM seen_albums WHERE connection_id=?", (connection_id,))
        return {r["album_id"] for r in rows}

    def mark_albums_seen(self, connection_id: int, albums: Iterable[tuple[str, str]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO seen_albums(connection_id, album_id, album_name) VALUES(?, ?, ?)",
                [(connection_id, album_id, name) for album_id, name in albums],
            )

    def albums_to_offer(self, connection_id: int) -> list[tuple[str, str]]:
        """New albums waiting for the user's decision when the policy is 'ask'."""
        rows = self._query(
            """SELECT s.album_id, s.album_name FROM seen_albums s
               WHERE s.connection_id=? AND s.offered=1
                 AND NOT EXISTS (SELECT 1 FROM album_syncs a
                                 WHERE a.connection_id=s.connection_id AND a.album_id=s.album_id)
               ORDER BY s.album_name""",
            (connection_id,),
        )
        return [(r["album_id"], r["album_name"]) for r in rows]

    def set_album_offered(self, connection_id: int, album_id: str, offered: bool) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE seen_albums SET offered=? WHERE connection_id=? AND album_id=?",
                (int(offered), connection_id, album_id),
            )


def open_store(path: Path, *, warn: Callable[[str], None] | None = None) -> Store:
    """Open the database; a corrupt one is moved aside and rebuilt from the config backup.

    Nothing is lost: the synced files stay, and the next sync recognises them by checksum
    (adoption) instead of downloading them again.
    """
    try:
        return Store(path)
    except StoreError as exc:
        if not exc.corrupt:
            raise
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                os.replace(source, Path(f"{aside}{suffix}"))
        log.error("%s Moved aside to %s and rebuilt.", exc.message, aside)
        store = Store(path)
        backup = store.config_backup_path
        restored = 0
        if backup.exists():
            try:
                restored = store.import_config(json.loads(backup.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                log.exception("The configuration backup %s could not be read", backup)
        message = (f"The database was damaged and has been rebuilt ({restored} synced albums restored; "
                   f"the damaged copy is {aside.name}). Files already synced are recognised, not downloaded again.")
        if warn is not None:
            warn(message)
        return store
