"""A read-only summary of the store, for `status --json`, the tray and the status window."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tray_sync.sync.store import Store


@dataclass(frozen=True)
class ConnectionStatus:
    id: int
    name: str
    server_url: str
    server_version: str


@dataclass(frozen=True)
class AlbumStatus:
    album_sync_id: int
    album_id: str
    album_name: str
    connection: str
    path: str
    last_sync_at: str | None
    last_attempt_at: str | None
    state: str
    last_error: str | None
    files: int
    bytes: int
    changed_locally: tuple[str, ...]
    held_removals: int
    mirror_removals: bool


@dataclass(frozen=True)
class ScheduleStatus:
    """What the tray app's scheduler last recorded (ISO times; None when it never ran)."""

    last_success_at: str | None = None
    next_due_at: str | None = None
    paused: bool = False
    paused_until: str | None = None


@dataclass(frozen=True)
class StatusSummary:
    connections: tuple[ConnectionStatus, ...]
    albums: tuple[AlbumStatus, ...]
    schedule: ScheduleStatus = ScheduleStatus()

    def to_json(self) -> dict[str, object]:
        return {
            "connections": [asdict(c) for c in self.connections],
            "albums": [{**asdict(a), "changed_locally": list(a.changed_locally)} for a in self.albums],
            "schedule": asdict(self.schedule),
        }


def collect_status(store: Store) -> StatusSummary:
    connections = store.connections()
    names = {c.id: c.name for c in connections}
    albums = []
    for album in store.album_syncs():
        totals = store.album_totals(album.id)
        changed = tuple(sorted(a.local_path for a in store.synced_assets(album.id).values()
                               if a.state == "changed_locally")) if totals.changed_locally else ()
        albums.append(AlbumStatus(
            album_sync_id=album.id, album_id=album.album_id, album_name=album.album_name,
            connection=names.get(album.connection_id, "?"), path=album.local_path,
            last_sync_at=album.last_sync_at, last_attempt_at=album.last_attempt_at, state=album.state,
            last_error=album.last_error, files=totals.files, bytes=totals.bytes,
            changed_locally=changed, held_removals=totals.held_removals,
            mirror_removals=album.mirror_removals,
        ))
    return StatusSummary(
        tuple(ConnectionStatus(c.id, c.name, c.server_url, c.server_version) for c in connections),
        tuple(albums),
        _schedule(store),
    )


def _schedule(store: Store) -> ScheduleStatus:
    def text(key: str) -> str | None:
        value = store.get_setting(key)
        return str(value) if value else None

    return ScheduleStatus(
        last_success_at=text("last_success_at"),
        next_due_at=text("next_due_at"),
        paused=bool(store.get_setting("paused")),
        paused_until=text("paused_until"),
    )
