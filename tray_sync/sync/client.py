"""The Immich HTTP API, as a download-only album client needs it (2.x and 3.x).

Contract: ``../shared/immich/`` (OpenAPI documents and what real servers answered). Errors are
classified here, once: every failure leaves this module as a :class:`ServerError` subclass
whose ``retryable`` flag and message the engine and the CLI use as they are.

The API key travels only in the ``x-api-key`` header, only to the server's own origin:
redirects are followed by hand and only within that origin, because requests strips
``Authorization`` on a cross-host redirect but not ``x-api-key``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import json
import logging
import math
import os
import random
import re
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import pool_classes_by_scheme as _URLLIB3_POOLS

from tray_sync import __version__
from tray_sync.logs import redact, register_secret
from tray_sync.sync.errors import (
    AuthError,
    CancelledError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    OfflineError,
    PermissionMissingError,
    ServerError,
    UnsupportedServerError,
)
from tray_sync.sync.progress import CancelToken

log = logging.getLogger(__name__)

USER_AGENT = f"immich-tray-sync/{__version__}"
REQUIRED_PERMISSIONS = ("album.read", "asset.read", "asset.download")
SEARCH_PAGE_SIZE = 1000
CHUNK_SIZE = 1024 * 1024
DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read
MAX_REDIRECTS = 5
_MISSING_PERMISSION = re.compile(r"Missing required permission: ([\w.]+)")


# -- records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class ServerVersion:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def inlines_album_assets(self) -> bool:
        """2.x: ``GET /albums/{id}`` inlines the assets and search sees only own assets."""
        return self.major < 3

    @classmethod
    def parse(cls, text: str) -> ServerVersion:
        parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
        while len(parts) < 3:
            parts.append(0)
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class RemoteAlbum:
    id: str
    name: str
    asset_count: int
    updated_at: str
    last_modified_asset_timestamp: str | None
    shared: bool
    owned: bool | None = None  # None when the answer does not say

    @property
    def fingerprint(self) -> str:
        return f"{self.updated_at}|{self.asset_count}|{self.last_modified_asset_timestamp or ''}"


@dataclass(frozen=True, slots=True)
class RemoteAsset:
    id: str
    original_file_name: str
    checksum: str  # base64 SHA-1 of the bytes (of the path, for external libraries)
    file_created_at: str
    updated_at: str
    size: int | None  # exifInfo.fileSizeInByte; None when the server did not say
    type: str
    live_photo_video_id: str | None
    is_external: bool  # external library: checksum cannot verify the bytes
    is_trashed: bool = False

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RemoteAsset:
        exif = item.get("exifInfo") or {}
        size = exif.get("fileSizeInByte")
        return cls(
            id=str(item["id"]),
            original_file_name=str(item.get("originalFileName") or item["id"]),
            checksum=str(item.get("checksum") or ""),
            file_created_at=str(item.get("fileCreatedAt") or item.get("createdAt") or ""),
            updated_at=str(item.get("updatedAt") or ""),
            size=int(size) if isinstance(size, int | float) and size >= 0 else None,
            type=sys.intern(str(item.get("type") or "IMAGE")),  # one copy, not one per asset
            live_photo_video_id=item.get("livePhotoVideoId") or None,
            is_external=bool(item.get("libraryId")),
            is_trashed=bool(item.get("isTrashed")),
        )


@dataclass(frozen=True, slots=True)
class AlbumListing:
    album: RemoteAlbum
    assets: tuple[RemoteAsset, ...]


@dataclass(frozen=True, slots=True)
class KeyCheck:
    permissions: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        if "all" in self.permissions:
            return []
        return [p for p in REQUIRED_PERMISSIONS if p not in self.permissions]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * (0.75 + random.random() * 0.5)  # jitter: many clients, one server


# -- URL handling -----------------------------------------------------------------------


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def candidate_bases(user_input: str) -> list[str]:
    """Site roots to try for what the user typed, most likely first.

    ``photos.example.com`` (no scheme) tries https, then http; ``https://host/api`` and
    ``https://host/api/`` mean the site ``https://host``.
    """
    text = user_input.strip()
    if not text:
        raise ConfigError("The server address is empty: type the address you open Immich at.")
    if "://" not in text:
        bare = text.lstrip("/")
        return [b for s in ("https", "http") for b in candidate_bases(f"{s}://{bare}")]
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{user_input!r} is not a web address; it should look like https://photos.example.com.")
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return [urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))]


def is_local_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in ("localhost", "::1") or host.endswith(".local") or host.startswith("127."):
        return True
    return bool(re.match(r"^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)", host))


# -- errors -----------------------------------------------------------------------------


def _body_message(response: requests.Response) -> str:
    """The server's own words, which become part of messages, reports and the database:
    redacted, because a server may echo the key back (it must never travel further)."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        message = data.get("message")
        if isinstance(message, list):
            return redact("; ".join(str(m) for m in message))[:500]
        if message is not None:
            return redact(str(message))[:500]
    return ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def classify_response(response: requests.Response, what: str) -> ServerError:
    """Turn a non-2xx answer into the one error a user can act on."""
    status = response.status_code
    message = _body_message(response)
    if status == 401:
        return AuthError(
            "The server rejected the API key"
            + (f" ({message})" if message else "")
            + ": create a key in Immich (Account settings > API keys) and connect again.",
            status=status,
        )
    if status == 403:
        match = _MISSING_PERMISSION.search(message)
        if match:
            permission = match.group(1)
            return PermissionMissingError(
                f"The API key lacks the {permission} permission needed to {what}: "
                f"create a key with album.read, asset.read and asset.download.",
                [permission],
            )
        return PermissionMissingError(f"The server refused to {what} ({message or 'forbidden'}).", [])
    if status == 404 or (status == 400 and message.lower().startswith("not found")):
        detail = f" ({message})." if message else "."
        return NotFoundError(f"Not found on the server while trying to {what}{detail}", status=status)
    if status == 429:
        return ServerError(
            f"The server is busy (too many requests) while trying to {what}.",
            status=status,
            retryable=True,
            retry_after=_retry_after(response),
        )
    if status >= 500:
        return ServerError(
            f"The server failed (HTTP {status}) while trying to {what}"
            + (f": {message}" if message else "")
            + "; it will be retried.",
            status=status,
            retryable=True,
            retry_after=_retry_after(response),
        )
    return ServerError(
        f"The server answered HTTP {status} while trying to {what}" + (f": {message}" if message else "."),
        status=status,
    )


def _offline(exc: Exception, url: str) -> OfflineError:
    host = urlsplit(url).netloc
    if isinstance(exc, requests.exceptions.SSLError):
        err = OfflineError(
            f"The secure connection to {host} failed ({_short_reason(exc)}). If the server uses a "
            "self-signed certificate, trust it in the settings or pass its CA bundle."
        )
        err.retryable = False
        err.kind = ServerError.kind
        return err
    if isinstance(exc, requests.exceptions.Timeout):
        return OfflineError(f"{host} did not answer in time; is the server up?")
    return OfflineError(f"Cannot reach {host} ({_short_reason(exc)}); check the address and your network.")


def _short_reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Name or service not known", "nodename nor servname", "Temporary failure in name resolution",
                   "Connection refused", "No route to host", "Network is unreachable",
                   "CERTIFICATE_VERIFY_FAILED", "Connection reset", "Connection aborted",
                   "RemoteDisconnected", "IncompleteRead", "timed out"):
        if marker in text:
            return {"Name or service not known": "unknown host name",
                    "nodename nor servname": "unknown host name",
                    "Temporary failure in name resolution": "unknown host name",
                    "CERTIFICATE_VERIFY_FAILED": "certificate not trusted"}.get(marker, marker.lower())
    return exc.__class__.__name__


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise ServerError(
            f"The server did not answer with JSON while trying to {what} (got {kind}); "
            "is this address an Immich server?",
            status=response.status_code,
        ) from None


# -- the client -------------------------------------------------------------------------


class _AbortableAdapter(HTTPAdapter):
    """An adapter that knows its connections, so that a cancel can shut them all down.

    A request blocked on a server that stopped answering (before the headers, or mid-body)
    then fails at once instead of after the read timeout: Pause and Quit take effect within a
    second during listings too, not only during downloads (which also abort their response).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        track = self._track

        class _Pool(HTTPConnectionPool):
            def _new_conn(self) -> Any:
                return track(super()._new_conn())

        class _TlsPool(HTTPSConnectionPool):
            def _new_conn(self) -> Any:
                return track(super()._new_conn())

        self._pool_classes = {"http": _Pool, "https": _TlsPool}
        super().__init__(*args, **kwargs)  # builds the pool manager (init_poolmanager below)

    def _track(self, connection: Any) -> Any:
        with self._connections_lock:
            self._connections.add(connection)
        return connection

    def _use_tracking_pools(self, manager: Any) -> None:
        # Only where urllib3's own pools would be used: a SOCKS proxy brings pools of its own.
        if manager.pool_classes_by_scheme == _URLLIB3_POOLS:
            manager.pool_classes_by_scheme = self._pool_classes

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._use_tracking_pools(self.poolmanager)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        self._use_tracking_pools(manager)
        return manager

    def abort_all(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class ImmichClient:
    """One server, one key, one pooled :class:`requests.Session`."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        workers: int = 4,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._key = api_key
        register_secret(api_key)  # whatever path it came by, it is redacted wherever it shows up
        if api_key is not None and not (api_key.isascii() and api_key.isprintable() and " " not in api_key):
            # HTTP headers carry plain ASCII only: such a key is mistyped or mis-pasted, never valid.
            raise ConfigError(
                "The API key contains characters an Immich key never has (spaces, accents, control "
                "characters): copy it again from Immich (Account settings > API keys)."
            )
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.cancel = cancel or CancelToken()
        self._origin = origin_of(self.api_url)
        self.session = requests.Session()
        # requests reads the proxy and CA-bundle variables again for every request (a scan of the
        # environment and a NO_PROXY match: a fifth of the interpreter time a small download
        # costs, profiled); they are read once here instead, with the same meaning.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(self.api_url))
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.verify = verify
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = _AbortableAdapter(pool_connections=2, pool_maxsize=max(4, workers + 2), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._release_abort = self.cancel.add_callback(adapter.abort_all)
        self._version: ServerVersion | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"ImmichClient({self.api_url!r})"

    def close(self) -> None:
        self._release_abort()
        self.session.close()

    # -- transport --

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        authenticated: bool = True,
        ok_statuses: tuple[int, ...] = (),
    ) -> requests.Response:
        """One request with same-origin redirects only; no retries here."""
        url = path if path.startswith(("http://", "https://")) else f"{self.api_url}{path}"
        request_headers = dict(headers or {})
        if authenticated and self._key:
            request_headers["x-api-key"] = self._key
        for _ in range(MAX_REDIRECTS + 1):
            if self.cancel.cancelled:
                raise CancelledError("Cancelled.")
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE override a trusted
                # certificate set only on the session, which would break a trusted self-signed server.
                response = self.session.request(
                    method, url, json=json_body, params=params, headers=request_headers,
                    stream=stream, timeout=self.timeout, allow_redirects=False, verify=self.session.verify,
                )
            except requests.exceptions.RequestException as exc:
                if self.cancel.cancelled:  # our own abort_all woke it: not the network's fault
                    raise CancelledError("Cancelled.") from None
                raise _offline(exc, url) from None
            if response.is_redirect or response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                response.close()
                target = urljoin(url, location)
                if origin_of(target) != self._origin:
                    raise ServerError(
                        f"The server redirected to another address ({urlsplit(target).netloc}); "
                        "the API key is not sent there. Use that address as the server URL if you trust it."
                    )
                url = target
                params = None
                if response.status_code == 303:
                    method, json_body = "GET", None
                continue
            if response.status_code < 300 or response.status_code in ok_statuses:
                return response
            error = classify_response(response, what)
            response.close()
            raise error
        raise ServerError(f"Too many redirects while trying to {what}.")

    def _call(self, method: str, path: str, *, what: str, **kwargs: Any) -> requests.Response:
        """:meth:`_send` with capped exponential backoff for retryable failures."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(method, path, what=what, **kwargs)
            except ServerError as exc:
                if not exc.retryable or attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt, exc.retry_after)
                log.info("%s; retry %d/%d in %.1fs", exc.message, attempt, self.retry.attempts - 1, delay)
                if self.cancel.wait(delay):
                    raise CancelledError("Cancelled.") from None

    def _get_json(self, path: str, *, what: str, **kwargs: Any) -> Any:
        response = self._call("GET", path, what=what, **kwargs)
        return _json(response, what)

    # -- server --

    def ping(self) -> None:
        try:
            data = self._get_json("/server/ping", what="reach the server", authenticated=False)
        except ServerError as exc:
            if exc.status is not None and 200 <= exc.status < 300:  # a web page (router, NAS login), not an API
                raise ServerError(
                    f"{self.api_url.removesuffix('/api')} answered, but it is not an Immich server "
                    "(a web page instead of Immich's answer): check the address you open Immich at.",
                    status=exc.status,
                ) from None
            raise
        if not isinstance(data, dict) or data.get("res") != "pong":
            raise ServerError("The address answered, but not like an Immich server (no pong).")

    def server_version(self) -> ServerVersion:
        data = self._get_json("/server/version", what="read the server version", authenticated=False)
        try:
            version = ServerVersion(int(data["major"]), int(data["minor"]), int(data["patch"]))
        except (KeyError, TypeError, ValueError):
            raise ServerError("The server's version answer is not Immich's; is this an Immich server?") from None
        if version.major < 2:
            raise UnsupportedServerError(
                f"This Immich server is {version}, which is too old: update it to 2.0 or newer."
            )
        if version.major > 3:
            log.warning("Immich %s is newer than this app knows (3.x); treating it as 3.x", version)
        self._version = version
        return version

    @property
    def version(self) -> ServerVersion:
        if self._version is None:
            return self.server_version()
        return self._version

    def check_key(self) -> KeyCheck:
        data = self._get_json("/api-keys/me", what="check the API key")
        permissions = data.get("permissions") if isinstance(data, dict) else None
        if not isinstance(permissions, list):
            raise ServerError("The server's answer about the API key is not Immich's.")
        return KeyCheck(tuple(str(p) for p in permissions))

    # -- albums --

    @staticmethod
    def _album(item: dict[str, Any], owner_id: str | None = None) -> RemoteAlbum:
        owned: bool | None = None
        if "ownerId" in item and owner_id:
            owned = item["ownerId"] == owner_id
        users = item.get("albumUsers") or []
        if users and isinstance(users[0], dict) and users[0].get("role") == "owner" and owner_id:
            owned = (users[0].get("user") or {}).get("id") == owner_id
        return RemoteAlbum(
            id=str(item["id"]),
            name=str(item.get("albumName") or item["id"]),
            asset_count=_count(item.get("assetCount")),
            updated_at=str(item.get("updatedAt") or ""),
            last_modified_asset_timestamp=item.get("lastModifiedAssetTimestamp"),
            shared=bool(item.get("shared")),
            owned=owned,
        )

    def albums(self) -> list[RemoteAlbum]:
        """Owned and shared-with-me albums (2.x needs two requests for that)."""
        what = "list albums"
        items = self._get_json("/albums", what=what)
        if not isinstance(items, list):
            raise ServerError("The server's album list is not a list; is this an Immich server?")
        items = [a for a in items if _is_album(a)]  # junk from a broken server is skipped
        if self.version.inlines_album_assets:
            shared = self._get_json("/albums", what=what, params={"shared": "true"})
            if isinstance(shared, list):
                seen = {a["id"] for a in items}
                items.extend(a for a in shared if _is_album(a) and a["id"] not in seen)
        return [self._album(a) for a in items]

    def owned_album_ids(self) -> set[str] | None:
        """The ids of the caller's own albums (None when the server does not say).

        A download-only key may not call /users/me, so ownership comes from the album list itself:
        on 2.x the list without parameters holds only the caller's albums; 3.x has ``isOwned``.
        """
        params = None if self.version.inlines_album_assets else {"isOwned": "true"}
        items = self._get_json("/albums", what="list albums", params=params)
        if not isinstance(items, list):
            return None
        return {str(item["id"]) for item in items if isinstance(item, dict) and "id" in item}

    def album(self, album_id: str) -> RemoteAlbum:
        params = {"withoutAssets": "true"} if self.version.inlines_album_assets else None
        data = self._get_json(f"/albums/{album_id}", what="read the album", params=params)
        if not _is_album(data) or data["id"] != album_id:
            raise ServerError("The server's answer about the album is not Immich's.")
        return self._album(data)

    def album_assets(self, album: RemoteAlbum) -> list[RemoteAsset]:
        """Every asset of the album, de-duplicated by id (order: newest first)."""
        if self.version.inlines_album_assets:
            return self._album_assets_inline(album.id)
        return list(self._search_album(album.id))

    def iter_album_assets(self, album: RemoteAlbum) -> Iterator[RemoteAsset]:
        """:meth:`album_assets` as it arrives (page by page on 3.x), for callers that keep little of it."""
        if self.version.inlines_album_assets:
            return iter(self._album_assets_inline(album.id))
        return self._search_album(album.id)

    def _search_album(self, album_id: str) -> Iterator[RemoteAsset]:
        seen: set[str] = set()
        page: int | None = 1
        while page is not None:
            body = {"albumIds": [album_id], "page": page, "size": SEARCH_PAGE_SIZE, "withExif": True}
            answer = self._call("POST", "/search/metadata", what="list the album", json_body=body)
            data = _json(answer, "list the album")
            try:
                assets = data["assets"]
                items = assets["items"]
                next_page = assets.get("nextPage")
            except (KeyError, TypeError):
                raise ServerError("The server's search answer is not Immich's.") from None
            if not isinstance(items, list):
                raise ServerError("The server's search answer is not Immich's.")
            fresh = 0
            for item in items:
                asset = _asset_or_none(item)
                # Offset paging shifts when the album changes mid-listing: the same asset
                # can appear on two pages.
                if asset is not None and asset.id not in seen:
                    seen.add(asset.id)
                    fresh += 1
                    yield asset
            if next_page in (None, "", "null") or not items:
                break
            try:
                following = int(next_page)
            except (TypeError, ValueError):
                raise ServerError(f"The server's next page ({next_page!r}) is not a number.") from None
            if following <= page or fresh == 0:
                # A hostile or broken server could page forever: going back, or a page of
                # nothing new, ends the listing as an error (so nothing is removed locally).
                raise ServerError(
                    f"The server's album listing does not end (page {following} after page {page} "
                    "brought nothing new); nothing was changed locally. Try again later."
                )
            page = following
            if self.cancel.cancelled:
                raise CancelledError("Cancelled.")

    def _album_assets_inline(self, album_id: str) -> list[RemoteAsset]:
        response = self._call("GET", f"/albums/{album_id}", what="list the album")
        raw = response.content
        response._content = b""  # drop requests' copy: one copy of a large album is enough
        try:
            text = raw.decode("utf-8")
            del raw
            # Each asset becomes a RemoteAsset as soon as it is parsed, so the big dictionaries
            # never exist all at once (100,000 assets: 340 MB peak instead of 610 MB).
            data = json.loads(text, object_hook=_inline_asset)
        except ValueError:
            raise ServerError("The server's album answer is not JSON; is this an Immich server?") from None
        del text
        items = data.get("assets") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ServerError("The server's album answer has no asset list.")
        result: list[RemoteAsset] = []
        seen: set[str] = set()
        items.reverse()  # pop() from the end keeps the server's order and frees as we go
        while items:
            item = items.pop()
            asset = item if isinstance(item, RemoteAsset) or item is None else _asset_or_none(item)
            if asset is not None and asset.id not in seen:
                seen.add(asset.id)
                result.append(asset)
        return result

    def asset(self, asset_id: str) -> RemoteAsset:
        data = self._get_json(f"/assets/{asset_id}", what="read a photo's details")
        asset = _asset_or_none(data)
        if asset is None or asset.id != asset_id:
            raise ServerError("The server's answer about a photo is not Immich's.")
        return asset

    def download_info_size(self, album_id: str) -> int:
        response = self._call("POST", "/download/info", what="size up the album", json_body={"albumId": album_id})
        data = _json(response, "size up the album")
        return int(data.get("totalSize") or 0)

    # -- downloads --

    def download_archive(self, asset_ids: list[str]) -> requests.Response:
        """``POST /download/archive``: a streamed ZIP of the originals, in the order asked.

        ``Accept-Encoding: identity`` because the server otherwise compresses the (already
        compressed) photos on the fly, which costs it about 4 times the time.
        """
        return self._call(
            "POST", "/download/archive", what="download photos as one archive",
            json_body={"assetIds": asset_ids}, headers={"Accept-Encoding": "identity"}, stream=True,
        )

    def download(
        self,
        asset_id: str,
        sink: BinaryIO,
        *,
        offset: int = 0,
        on_start: Callable[[int], None] | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
        max_size: int | None = None,
    ) -> int:
        """Stream an original into ``sink`` from ``offset``; returns the offset it started at.

        With ``max_size`` (the size the listing announced) a body that runs past it is cut off
        with an :class:`IntegrityError` before the extra bytes are written: a hostile server
        cannot fill the disk through one small-looking photo.

        The caller positions and truncates ``sink`` at the returned offset: a server that
        ignores the range (200) or refuses it (404 on 3.x, 500 on 2.x) restarts at zero.
        Never asks for a range when ``offset`` is 0. One attempt: the caller retries, resuming
        from what it already has (retrying here too would multiply the attempts).
        """
        what = "download a photo"
        path = f"/assets/{asset_id}/original"
        headers = {"Accept-Encoding": "identity"}
        start = offset
        if offset > 0:
            try:
                response = self._send("GET", path, what=what, stream=True,
                                      headers={**headers, "Range": f"bytes={offset}-"})
            except ServerError as exc:
                if exc.status not in (404, 500):
                    raise
                log.info("Server refused to resume %s (HTTP %s); starting over", asset_id, exc.status)
                start = 0
                response = self._send("GET", path, what=what, stream=True, headers=headers)
            else:
                if response.status_code != 206:
                    start = 0
        else:
            response = self._send("GET", path, what=what, stream=True, headers=headers)
        sink.seek(start)
        sink.truncate(start)
        if on_start is not None:
            on_start(start)
        release = self.cancel.add_callback(lambda: _abort_response(response))
        position = start
        try:
            for chunk in _body_chunks(response):
                if self.cancel.cancelled:
                    raise CancelledError("Cancelled.")
                position += len(chunk)
                if max_size is not None and position > max_size:
                    raise IntegrityError(f"the server sent more than the {max_size} bytes it announced")
                try:
                    sink.write(chunk)
                except OSError as exc:
                    raise _LocalWriteError(exc) from exc
                if on_chunk is not None:
                    on_chunk(chunk)
        except (CancelledError, IntegrityError):
            raise
        except _LocalWriteError as failure:
            # Disk full, folder gone: the local disk's trouble, for the caller to report as such
            # (not "the download broke off", which would be retried in vain).
            raise failure.error from None
        except Exception as exc:  # urllib3 raises several types for a broken body
            if self.cancel.cancelled:
                raise CancelledError("Cancelled.") from None
            raise OfflineError(f"The download broke off ({_short_reason(exc)}); it will be resumed.") from None
        finally:
            release()
            response.close()
        return start


def _body_chunks(response: requests.Response) -> Iterator[memoryview | bytes]:
    """The body as it arrives, undecoded, in chunks of up to ``CHUNK_SIZE``.

    Read straight into one reused buffer: urllib3's ``stream()`` allocates a new buffer and
    copies every chunk once more (profiled: the third largest cost of a large-file sync after
    SHA-1 and the disk write). Each chunk is only valid until the next one is asked for; the
    caller writes and hashes it at once. Falls back to ``stream()`` where the body has no
    ``readinto``.
    """
    raw = response.raw
    body = getattr(raw, "_fp", None)  # the http.client response urllib3 reads from
    if body is None or not hasattr(body, "readinto"):
        yield from raw.stream(CHUNK_SIZE, decode_content=False)
        return
    buffer = memoryview(bytearray(CHUNK_SIZE))
    while count := body.readinto(buffer):
        yield buffer[:count]
    if getattr(body, "length", None):  # http.client ends early, without an error, on a short body
        raise ConnectionError("IncompleteRead: the body ended before its announced length")
    if getattr(body, "isclosed", lambda: False)():
        raw.release_conn()  # read to the end: the connection goes back to the pool, as stream() does


class _LocalWriteError(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _is_album(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and bool(_SAFE_ID.fullmatch(item["id"]))


def _count(value: object) -> int:
    """An asset count as a server may send it (or mangle it): never negative, never absurd."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, min(value, 1 << 40))
    if isinstance(value, float) and math.isfinite(value):
        return max(0, min(int(value), 1 << 40))
    if isinstance(value, str) and value.strip().isdigit():
        return min(int(value.strip()), 1 << 40)
    return 0


def _inline_asset(item: dict[str, Any]) -> Any:
    """``json.loads`` hook for a 2.x album answer: asset objects become RemoteAsset (or None)."""
    if "originalFileName" in item and "checksum" in item:
        return _asset_or_none(item)
    return item


def _asset_or_none(item: object) -> RemoteAsset | None:
    """One listed asset, or None for junk a broken or hostile server sent.

    Ids name the hidden partial files and go into URLs, so only plain ids (Immich's are UUIDs)
    are accepted: ``../../x`` must never become a path.
    """
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not _SAFE_ID.fullmatch(item["id"]):
        log.warning("Skipping a listing item that is not an asset: %.200r", item)
        return None
    try:
        asset = RemoteAsset.from_json(item)
    except (TypeError, ValueError, AttributeError, OverflowError):
        log.warning("Skipping a listing item that is not an asset: %.200r", item)
        return None
    motion = asset.live_photo_video_id
    if motion is not None and not (isinstance(motion, str) and _SAFE_ID.fullmatch(motion)):
        asset = dataclasses.replace(asset, live_photo_video_id=None)
    return asset


def _abort_response(response: requests.Response) -> None:
    """Wake a read blocked on a stalled server: shutting the socket down makes recv return."""
    raw = response.raw
    sock = None
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    if connection is not None:
        sock = getattr(connection, "sock", None)
    if sock is None:
        fp = getattr(raw, "_fp", None)
        sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# -- discovery ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discovery:
    server_url: str  # the site root the user meant
    api_url: str
    version: ServerVersion


def discover(
    user_input: str,
    *,
    verify: bool | str = True,
    timeout: tuple[float, float] = (5.0, 15.0),
) -> Discovery:
    """From what the user typed to a checked API URL and server version."""
    last_error: ServerError | None = None
    for base in candidate_bases(user_input):
        probe = ImmichClient(base, None, timeout=timeout, verify=verify, retry=RetryPolicy(attempts=1))
        try:
            api_url = _well_known_api(probe, base) or f"{base}/api"
            client = ImmichClient(api_url, None, timeout=timeout, verify=verify, retry=RetryPolicy(attempts=2))
            try:
                client.ping()
                version = client.server_version()
            finally:
                client.close()
            return Discovery(base, api_url, version)
        except UnsupportedServerError:
            raise
        except NotFoundError:
            last_error = ServerError(f"{base} answered, but it is not an Immich server (no /api/server/ping).")
        except ServerError as exc:
            last_error = exc
        finally:
            probe.close()
    assert last_error is not None
    raise last_error


def _well_known_api(probe: ImmichClient, base: str) -> str | None:
    """The API endpoint ``/.well-known/immich`` names, refusing another host."""
    site = urlunsplit((*urlsplit(base)[:2], "", "", ""))
    try:
        response = probe._send("GET", f"{site}/.well-known/immich", what="discover the API", authenticated=False)
    except (NotFoundError, PermissionMissingError, AuthError):
        return None
    except ServerError as exc:
        if isinstance(exc, OfflineError):
            raise
        return None
    try:
        endpoint = response.json()["api"]["endpoint"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(endpoint, str) or not endpoint:
        return None
    target = urljoin(site + "/", endpoint)
    if origin_of(target) != origin_of(base):
        raise ServerError(
            f"The server's discovery answer points at another host ({urlsplit(target).netloc}); "
            "refusing it. Type the API address directly if you trust it."
        )
    return target.rstrip("/")
