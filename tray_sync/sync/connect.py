"""Checking and saving a server connection: shared by `tray-sync connect` and the setup wizard."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from tray_sync.sync.client import (
    Discovery,
    ImmichClient,
    RemoteAlbum,
    RetryPolicy,
    discover,
    is_local_host,
)
from tray_sync.sync.engine import check_destination
from tray_sync.sync.errors import ConfigError, PermissionMissingError
from tray_sync.sync.names import safe_component
from tray_sync.sync.store import AlbumSync, Connection, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionCheck:
    discovery: Discovery
    permissions: tuple[str, ...]
    albums: tuple[RemoteAlbum, ...]

    @property
    def summary(self) -> str:
        count = len(self.albums)
        return (f"Immich {self.discovery.version} at {self.discovery.api_url}: "
                f"the key sees {count} album{'s' if count != 1 else ''}.")

    @property
    def insecure_warning(self) -> str | None:
        url = self.discovery.api_url
        if urlsplit(url).scheme == "http" and not is_local_host(url):
            return ("Warning: this server is reached over plain http, so the API key and photos travel "
                    "unencrypted; use https if the server is reachable from outside your home.")
        return None


def check_connection(url: str, key: str, *, verify: bool | str = True) -> ConnectionCheck:
    """Discovery, version, key and permissions, album count. Raises a TraySyncError naming the problem."""
    if not key or not key.strip():
        raise ConfigError("The API key is empty: paste the key created in Immich (Account settings > API keys).")
    found = discover(url, verify=verify)
    client = ImmichClient(found.api_url, key.strip(), verify=verify, retry=RetryPolicy(attempts=2))
    try:
        client._version = found.version
        check = client.check_key()
        if check.missing:
            missing = ", ".join(check.missing)
            raise PermissionMissingError(
                f"This API key lacks {missing}: create a key with album.read, asset.read and "
                "asset.download (Account settings > API keys).",
                check.missing,
            )
        albums = tuple(client.albums())
        owned = client.owned_album_ids()  # "mine" or "shared with me" in the setup wizard
        if owned is not None:
            albums = tuple(replace(album, owned=album.id in owned) for album in albums)
    finally:
        client.close()
    return ConnectionCheck(found, check.permissions, albums)


def default_connection_name(server_url: str) -> str:
    return urlsplit(server_url).hostname or "immich"


def add_album(
    store: Store,
    connection: Connection,
    album: RemoteAlbum,
    destination: Path,
    *,
    mirror_removals: bool = False,
    folder_template: str = "",
) -> AlbumSync:
    """Start syncing ``album`` into ``destination`` (created if missing)."""
    if any(a.album_id == album.id for a in store.album_syncs(connection.id)):
        raise ConfigError(f"{album.name!r} is already synced; `tray-sync status` shows where.")
    target = destination.expanduser().resolve()
    check_destination(store, target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file, not a folder.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Cannot create the folder {target}: {exc.strerror}.") from None
    if folder_template:
        from tray_sync.sync.names import validate_template

        validate_template(folder_template)
    return store.add_album_sync(connection.id, album.id, album.name, str(target),
                                mirror_removals=mirror_removals, folder_template=folder_template)


def default_album_folder(root: Path, album_name: str) -> Path:
    return root / safe_component(album_name)
