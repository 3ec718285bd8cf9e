"""A built-in Immich-compatible server for the demo, the end-to-end tests and the benchmarks.

It speaks the part of the Immich HTTP API a download-only album client uses, in 3.x mode
(Immich 3.1.0) or 2.x mode (Immich 2.7.5), and answers the way the real servers were observed
to answer (``../shared/immich/OBSERVED.md`` and ``OBSERVED-2.7.5.md``): auth and permission
errors, paging, ranges (a range past the end is 404 on 3.x and 500 on 2.x), the 2.x inline
album assets and its owner-only search, ZIP archives, error body shapes and headers.

Originals live in files under the storage folder and go out with ``socket.sendfile`` so the
server is not the bottleneck of a benchmark. :class:`Fault` entries perturb answers (drop a
connection mid-body, stall, throttle, answer 503 or HTML, redirect elsewhere) for tests.

Standard library ``http.server`` only; it listens on 127.0.0.1 unless told otherwise.

Use from tests and benchmarks::

    with DemoServer(mode="2", storage_dir=tmp / "srv") as server:      # or mode="3"
        lib = build_demo_library(server)                                 # tray_sync.demo.library
        owner = server.add_user("Ann", "ann@example.com")
        key = server.add_key(owner, ["album.read", "asset.read", "asset.download"])
        album = server.add_album(owner, "Trip", shared_with=[(lib.bob, "viewer")])
        photo = server.add_asset(owner, "IMG_1.jpg", albums=[album], live_video_name="IMG_1.mov")
        ids = server.add_assets_bulk(owner, 100_000, 50_000, album, seed=1)  # fast, one file on disk
        server.faults.add(Fault(path=r"/original$", drop_after_bytes=4096, times=3))
        server.faults.add(Fault(path=r"/albums$", status=503, headers={"Retry-After": "1"}))
        server.requests                                                  # RequestRecord log
        server.stop(); server.start()                                    # down, then back on the same port

Changes made through the methods (add/remove/trash/replace/rename/unshare/delete) move the
album's ``updatedAt``, ``assetCount`` and ``lastModifiedAssetTimestamp`` as the real server does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import gzip
import hashlib
import io
import json
import logging
import mimetypes
import os
import posixpath
import random
import re
import secrets
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

log = logging.getLogger(__name__)

VERSIONS: dict[str, tuple[int, int, int]] = {"3": (3, 1, 0), "2": (2, 7, 5)}
BODY_LIMIT = 10 * 1024 * 1024
SEND_CHUNK = 256 * 1024
ALL_PERMISSIONS = "all"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ZOD_UUID_PATTERN = (
    "/^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
    "|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/"
)
_CACHE_CONTROL = "private, max-age=86400, no-transform, stale-while-revalidate=2592000, stale-if-error=2592000"
_MIME_EXTRA = {
    ".heic": "image/heic", ".heif": "image/heif", ".dng": "image/x-adobe-dng", ".mov": "video/quicktime",
    ".mp4": "video/mp4", ".webp": "image/webp", ".avif": "image/avif", ".jxl": "image/jxl",
}


# -- records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoUser:
    id: str
    name: str
    email: str
    created_at: datetime = field(compare=False, default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class RequestRecord:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int
    body: bytes = b""
    response: bytes | None = None  # the JSON answer, when the server records answers

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def response_json(self) -> Any:
        return json.loads(self.response) if self.response else None


@dataclass
class Fault:
    """Perturbs or replaces the answer to requests whose URL path matches ``path`` (a regex).

    With ``status``, ``body``, ``raw_body`` or ``redirect_to`` the normal answer is replaced;
    otherwise it is produced and then perturbed: ``delay_seconds`` before answering, the
    connection dropped after ``drop_after_bytes`` body bytes, a stall of ``stall_seconds``
    after ``stall_after_bytes``, a rate limit, extra ``headers`` (e.g. Retry-After).
    ``times`` is how many requests it applies to (None: forever).
    """

    path: str
    method: str | None = None
    status: int | None = None
    body: Any = None
    headers: dict[str, str] | None = None
    times: int | None = 1
    drop_after_bytes: int | None = None
    stall_after_bytes: int | None = None
    stall_seconds: float = 0
    delay_seconds: float = 0
    rate_bytes_per_s: float | None = None
    raw_body: bytes | None = None
    content_type: str | None = None
    redirect_to: str | None = None
    hits: int = 0

    @property
    def replaces_answer(self) -> bool:
        return self.status is not None or self.body is not None or self.raw_body is not None or bool(self.redirect_to)


class FaultList:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        re.compile(fault.path)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method.upper() != method:
                    continue
                if not re.search(fault.path, path):
                    continue
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None


@dataclass
class _Key:
    id: str
    secret: str
    name: str
    user: DemoUser
    permissions: list[str]
    created_at: datetime

    def allows(self, permission: str) -> bool:
        return ALL_PERMISSIONS in self.permissions or permission in self.permissions


@dataclass
class _Asset:
    id: str
    owner: DemoUser
    file_name: str
    path: Path
    offset: int
    size: int
    checksum: str
    file_created_at: datetime
    file_modified_at: datetime
    created_at: datetime
    updated_at: datetime
    type: str
    mime: str
    width: int | None = None
    height: int | None = None
    live_photo_video_id: str | None = None
    visibility: str = "timeline"
    is_trashed: bool = False
    library_id: str | None = None
    seq: int = 0


@dataclass
class _Album:
    id: str
    owner: DemoUser
    name: str
    created_at: datetime
    updated_at: datetime
    members: list[tuple[DemoUser, str]] = field(default_factory=list)
    asset_ids: dict[str, None] = field(default_factory=dict)  # ordered set: storage order
    thumbnail_id: str | None = None
    description: str = ""


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | None = None
    file: tuple[Path, int, int] | None = None  # path, offset, length
    chunks: Iterable[bytes] | None = None  # sent with Transfer-Encoding: chunked
    plain_json: bytes | None = None  # the JSON before any Content-Encoding

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class _HttpError(Exception):
    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


# -- time formats -----------------------------------------------------------------------


def iso_z(moment: datetime) -> str:
    """``2026-11-23T21:30:46.991Z``: how Immich serialises most timestamps."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_pg(moment: datetime) -> str:
    """``2026-11-23T21:30:46.991917+00:00``: PostgreSQL's form (2.x inline album assets)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += ("." + f"{moment.microsecond:06d}").rstrip("0")
    return text + "+00:00"


def iso_offset(moment: datetime) -> str:
    """``2025-03-01T16:00:00+00:00`` (exif dates)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT00:00:00.000Z")


def _mime_of(name: str) -> str:
    ext = posixpath.splitext(name)[1].lower()
    return _MIME_EXTRA.get(ext) or mimetypes.types_map.get(ext) or "application/octet-stream"


def _sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def _strip_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# -- payloads ---------------------------------------------------------------------------


def placeholder_jpeg(label: str, seq: int) -> bytes:
    """A small real JPEG, deterministic for (label, seq), different for each."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(f"{label}\0{seq}".encode()).digest()
    image = Image.new("RGB", (64, 48), (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(image)
    draw.rectangle((digest[3] % 32, digest[4] % 24, 32 + digest[5] % 32, 24 + digest[6] % 24),
                   fill=(digest[7], digest[8], digest[9]))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, comment=digest[:8].hex().encode())
    return out.getvalue()


def placeholder_movie(label: str, seq: int) -> bytes:
    """A tiny QuickTime-looking payload for a live photo's motion part (not playable)."""
    digest = hashlib.sha256(f"motion\0{label}\0{seq}".encode()).digest()
    body = digest * 64
    return struct.pack(">I", 20) + b"ftypqt  \x00\x00\x02\x00qt  " + struct.pack(">I", 8 + len(body)) + b"mdat" + body


# -- ZIP (stored, streamed, data descriptors), as Immich writes it ----------------------


def _dos_time(moment: datetime) -> tuple[int, int]:
    moment = moment.astimezone(UTC)
    year = max(moment.year, 1980)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    clock = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return clock, date


_ZIP32_MAX = 0xFFFFFFFF


def zip_stream(entries: Iterable[tuple[str, datetime, Iterator[bytes]]]) -> Iterator[bytes]:
    """Stored entries with flag 0x08 and data descriptors; version 20, made by 0x032D.

    ZIP64 records appear only when needed (an entry or offset past 4 GiB, or more than 65,535
    entries), as a streaming writer does it: the local header cannot know, so the central
    directory and the data descriptor carry the 64-bit values.
    """
    central: list[bytes] = []
    offset = 0
    count = 0
    for name, moment, chunks in entries:
        encoded = name.encode("utf-8")
        flags = 0x08 | (0x800 if not name.isascii() else 0)
        clock, date = _dos_time(moment)
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, 0, clock, date, 0, 0, 0, len(encoded), 0) + encoded
        yield local
        crc = 0
        size = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            yield chunk
        big = size >= _ZIP32_MAX
        if big:
            descriptor = struct.pack("<IIQQ", 0x08074B50, crc, size, size)
        else:
            descriptor = struct.pack("<IIII", 0x08074B50, crc, size, size)
        yield descriptor
        attributes = (0o100644 << 16) | 0x20
        extra = b""
        if big:
            extra += struct.pack("<QQ", size, size)
        if offset >= _ZIP32_MAX:
            extra += struct.pack("<Q", offset)
        if extra:
            extra = struct.pack("<HH", 0x0001, len(extra)) + extra
        central.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x032D, 45 if extra else 20, flags, 0, clock, date, crc,
                        _ZIP32_MAX if big else size, _ZIP32_MAX if big else size, len(encoded), len(extra), 0, 0, 0,
                        attributes, min(offset, _ZIP32_MAX)) + encoded + extra
        )
        offset += len(local) + size + len(descriptor)
        count += 1
    directory = b"".join(central)
    yield directory
    if count >= 0xFFFF or offset >= _ZIP32_MAX or len(directory) >= _ZIP32_MAX:
        end64 = offset + len(directory)
        yield struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x032D, 45, 0, 0, count, count, len(directory), offset)
        yield struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
        yield struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                          min(len(directory), _ZIP32_MAX), min(offset, _ZIP32_MAX), 0)
        return
    yield struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), offset, 0)


_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


def sanitize_filename(name: str) -> str:
    """What the npm ``sanitize-filename`` package does (3.x archive entry names)."""
    cleaned = re.sub(r'[/?<>\\:*|"]', "", name)
    cleaned = re.sub(r"[\x00-\x1f\x80-\x9f]", "", cleaned)
    if re.fullmatch(r"\.+", cleaned) or _WINDOWS_RESERVED.match(cleaned):
        cleaned = ""
    cleaned = re.sub(r"[. ]+$", "", cleaned)
    encoded = cleaned.encode("utf-8")[:255]
    cleaned = encoded.decode("utf-8", "ignore")
    return cleaned or "unnamed"


# -- the server -------------------------------------------------------------------------


class _Http(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], demo: DemoServer) -> None:
        self.demo = demo
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.demo._tls_context is not None:
            sock = self.demo._tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.demo._track(sock, True)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        self.demo._track(request, False)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("demo server: connection error from %s", client_address, exc_info=True)


class DemoServer:
    """An in-memory Immich (3.1.0 with ``mode="3"``, 2.7.5 with ``mode="2"``) over real HTTP."""

    def __init__(
        self,
        mode: str = "3",
        storage_dir: Path | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: tuple[str, str] | None = None,
    ) -> None:
        mode = str(mode).split(".")[0]
        if mode not in VERSIONS:
            raise ValueError(f"mode must be '3' or '2', not {mode!r}")
        self.mode = mode
        self.version: tuple[int, int, int] = VERSIONS[mode]
        self._own_storage = storage_dir is None
        if storage_dir is None:
            storage_dir = Path(tempfile.mkdtemp(prefix="immich-demo-"))
        self.storage_dir = Path(storage_dir)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        if self._own_storage:  # a temporary folder goes when the server object does
            weakref.finalize(self, shutil.rmtree, str(self.storage_dir), True)
        self._originals = self.storage_dir / "originals"
        self._originals.mkdir(exist_ok=True)
        self.host = host
        self.port = port
        self._tls_context: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._tls_context = context
        self.faults = FaultList()
        self.requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        self._lock = threading.RLock()
        self._users: dict[str, DemoUser] = {}
        self._keys: dict[str, _Key] = {}
        self._albums: dict[str, _Album] = {}
        self._assets: dict[str, _Asset] = {}
        self._seq = 0
        self._bulk_calls = 0
        self._last_now = datetime(2000, 1, 1, tzinfo=UTC)
        self._revision = 0
        self._sorted_cache: dict[str, tuple[int, list[_Asset]]] = {}
        self._http: _Http | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()
        self.stopping = threading.Event()
        self.record_responses = False  # keep each JSON answer in .requests (contract tests)

    # -- lifecycle --

    def start(self) -> DemoServer:
        if self._http is not None:
            return self
        self.stopping.clear()
        self._http = _Http((self.host, self.port), self)
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"demo-immich-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every live connection now."""
        http, self._http = self._http, None
        if http is None:
            return
        self.stopping.set()
        http.shutdown()
        http.server_close()
        with self._connections_lock:
            live = list(self._connections)
            self._connections.clear()
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if self._thread is not None:
            self._thread.join(5)
        # The library and its files stay: start() again brings the same server back ("server was down").

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, sock: Any, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    @property
    def url(self) -> str:
        scheme = "https" if self._tls_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    @property
    def is_v3(self) -> bool:
        return self.mode == "3"

    # -- requests log --

    def record(self, entry: RequestRecord) -> None:
        with self._requests_lock:
            self.requests.append(entry)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self.requests.clear()

    # -- clock and ids --

    def _now(self) -> datetime:
        """Strictly increasing, millisecond precision: every change moves updatedAt."""
        with self._lock:
            now = _strip_ms(datetime.now(UTC))
            if now <= self._last_now:
                now = self._last_now + timedelta(milliseconds=1)
            self._last_now = now
            return now

    def _changed(self) -> None:
        self._revision += 1

    # -- building the library --

    def add_user(self, name: str, email: str) -> DemoUser:
        user = DemoUser(str(uuid.uuid4()), name, email, self._now())
        with self._lock:
            self._users[user.id] = user
        return user

    def add_key(self, user: DemoUser, permissions: list[str], name: str | None = None) -> str:
        secret = secrets.token_urlsafe(32)
        key = _Key(str(uuid.uuid4()), secret, name or f"{user.name}'s key", user, list(permissions), self._now())
        with self._lock:
            self._keys[secret] = key
        return secret

    def add_album(self, owner: DemoUser, name: str, shared_with: Iterable[tuple[DemoUser, str]] = (),
                  description: str = "") -> str:
        now = self._now()
        album = _Album(str(uuid.uuid4()), owner, name, now, now, [(u, r) for u, r in shared_with],
                       description=description)
        for _, role in album.members:
            if role not in ("viewer", "editor"):
                raise ValueError(f"role must be viewer or editor, not {role!r}")
        with self._lock:
            self._albums[album.id] = album
            self._changed()
        return album.id

    def _write_original(self, asset_id: str, data: bytes) -> Path:
        path = self._originals / f"{asset_id}.{secrets.token_hex(4)}"
        path.write_bytes(data)
        return path

    def add_asset(
        self,
        owner: DemoUser,
        file_name: str,
        data: bytes | None = None,
        file_created_at: datetime | None = None,
        albums: Iterable[str] = (),
        live_video_name: str | None = None,
        external: bool = False,
    ) -> str:
        with self._lock:
            self._seq += 1
            seq = self._seq
        if data is None:
            data = placeholder_jpeg(file_name, seq) if _mime_of(file_name).startswith("image/") or \
                _mime_of(file_name) == "application/octet-stream" else placeholder_movie(file_name, seq)
        taken = file_created_at or datetime(2024, 1, 1, 12, 0, tzinfo=UTC) + timedelta(hours=seq)
        if taken.tzinfo is None:
            taken = taken.replace(tzinfo=UTC)
        motion_id = None
        if live_video_name:
            motion_id = self._new_asset(owner, live_video_name, placeholder_movie(live_video_name, seq), taken,
                                        external=external, hidden=True)
        asset_id = self._new_asset(owner, file_name, data, taken, external=external, live=motion_id)
        album_ids = list(albums)
        if album_ids:
            for album_id in album_ids:
                self.add_to_album(album_id, [asset_id])
        return asset_id

    def _new_asset(self, owner: DemoUser, file_name: str, data: bytes, taken: datetime, *, external: bool,
                   hidden: bool = False, live: str | None = None) -> str:
        asset_id = str(uuid.uuid4())
        path = self._write_original(asset_id, data)
        mime = _mime_of(file_name)
        library_id = None
        original_path = self._original_path(owner, asset_id, file_name)
        checksum = _sha1_b64(data)
        if external:
            library_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"external:{owner.id}"))
            original_path = f"/mnt/external/{owner.name}/{file_name}"
            checksum = _sha1_b64(("path:" + original_path).encode())  # external: a hash of the path
        width = height = None
        if mime == "image/jpeg":
            width, height = _jpeg_size(data)
        now = self._now()
        asset = _Asset(
            id=asset_id, owner=owner, file_name=file_name, path=path, offset=0, size=len(data), checksum=checksum,
            file_created_at=_strip_ms(taken), file_modified_at=_strip_ms(taken), created_at=now, updated_at=now,
            type="VIDEO" if mime.startswith("video/") else "IMAGE", mime=mime, width=width, height=height,
            live_photo_video_id=live, visibility="hidden" if hidden else "timeline", library_id=library_id,
        )
        asset.original_path = original_path  # type: ignore[attr-defined]
        os.utime(path, (taken.timestamp(), taken.timestamp()))
        with self._lock:
            asset.seq = len(self._assets)
            self._assets[asset_id] = asset
            self._changed()
        return asset_id

    @staticmethod
    def _original_path(owner: DemoUser, asset_id: str, file_name: str) -> str:
        ext = posixpath.splitext(file_name)[1].lower()
        return f"/data/upload/{owner.id}/{asset_id[:2]}/{asset_id[2:4]}/{asset_id}{ext}"

    def add_assets_bulk(self, owner: DemoUser, count: int, size: int, album_id: str | None,
                        prefix: str = "IMG_", seed: int = 0) -> list[str]:
        """``count`` assets of ``size`` bytes each (unique bytes), stored in one file; fast."""
        size = max(size, 16)
        rng = random.Random(seed)
        base = rng.randbytes(size)
        with self._lock:
            self._bulk_calls += 1
            # ids are deterministic for (seed, how many bulk calls came before) and never collide
            id_rng = random.Random(f"{seed}:{self._bulk_calls}")
            taken_ids = set(self._assets)
        blob = self._originals / f"bulk-{uuid.uuid4().hex}.bin"
        ids: list[str] = []
        start = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(3000))
        records: list[_Asset] = []
        now = self._now()
        with blob.open("wb") as out:
            offset = 0
            for index in range(count):
                header = b"\xff\xd8\xff\xfe" + struct.pack(">QQ", seed, index)
                data = header + base[len(header):size - 2] + b"\xff\xd9"
                out.write(data)
                asset_id = str(uuid.UUID(int=id_rng.getrandbits(128), version=4))
                while asset_id in taken_ids:
                    asset_id = str(uuid.uuid4())
                taken_ids.add(asset_id)
                taken = start + timedelta(seconds=index * 37 + rng.randrange(30))
                record = _Asset(
                    id=asset_id, owner=owner, file_name=f"{prefix}{index:06d}.jpg", path=blob, offset=offset,
                    size=len(data), checksum=_sha1_b64(data), file_created_at=taken, file_modified_at=taken,
                    created_at=now, updated_at=now, type="IMAGE", mime="image/jpeg",
                )
                record.original_path = self._original_path(owner, asset_id, record.file_name)  # type: ignore[attr-defined]
                records.append(record)
                ids.append(asset_id)
                offset += len(data)
        with self._lock:
            for record in records:
                record.seq = len(self._assets)
                self._assets[record.id] = record
            self._changed()
        if album_id is not None:
            self.add_to_album(album_id, ids)
        return ids

    # -- changing the library (what the real server would do) --

    def _album(self, album_id: str) -> _Album:
        try:
            return self._albums[album_id]
        except KeyError:
            raise KeyError(f"no album {album_id}") from None

    def _asset(self, asset_id: str) -> _Asset:
        try:
            return self._assets[asset_id]
        except KeyError:
            raise KeyError(f"no asset {asset_id}") from None

    def add_to_album(self, album_id: str, asset_ids: Iterable[str]) -> None:
        with self._lock:
            album = self._album(album_id)
            for asset_id in asset_ids:
                self._asset(asset_id)
                album.asset_ids[asset_id] = None
                if album.thumbnail_id is None:
                    album.thumbnail_id = asset_id
            album.updated_at = self._now()
            self._changed()

    def remove_from_album(self, album_id: str, asset_ids: Iterable[str]) -> None:
        with self._lock:
            album = self._album(album_id)
            for asset_id in asset_ids:
                album.asset_ids.pop(asset_id, None)
                if album.thumbnail_id == asset_id:
                    album.thumbnail_id = next(iter(album.asset_ids), None)
            album.updated_at = self._now()
            self._changed()

    def trash_asset(self, asset_id: str) -> None:
        with self._lock:
            asset = self._asset(asset_id)
            asset.is_trashed = True
            asset.updated_at = self._now()
            self._changed()

    def replace_asset_bytes(self, asset_id: str, data: bytes) -> None:
        """New bytes, new checksum and size; the asset's updatedAt moves (album metadata follows)."""
        with self._lock:
            asset = self._asset(asset_id)
            asset.path = self._write_original(asset_id, data)
            asset.offset = 0
            asset.size = len(data)
            if asset.library_id is None:
                asset.checksum = _sha1_b64(data)
            if asset.mime == "image/jpeg":
                asset.width, asset.height = _jpeg_size(data)
            asset.updated_at = self._now()
            self._changed()

    def corrupt_asset(self, asset_id: str) -> None:
        """The served bytes stop matching the checksum (same size)."""
        with self._lock:
            asset = self._asset(asset_id)
            data = bytearray(self._read_bytes(asset))
            if not data:
                data = bytearray(b"\0")
            middle = len(data) // 2
            data[middle] ^= 0xFF
            asset.path = self._write_original(asset_id, bytes(data))
            asset.offset = 0
            asset.size = len(data)

    def delete_album(self, album_id: str) -> None:
        with self._lock:
            self._albums.pop(album_id)
            self._changed()

    def unshare(self, album_id: str, user: DemoUser) -> None:
        with self._lock:
            album = self._album(album_id)
            album.members = [(u, r) for u, r in album.members if u.id != user.id]
            album.updated_at = self._now()
            self._changed()

    def share(self, album_id: str, user: DemoUser, role: str = "viewer") -> None:
        with self._lock:
            album = self._album(album_id)
            album.members = [(u, r) for u, r in album.members if u.id != user.id] + [(user, role)]
            album.updated_at = self._now()
            self._changed()

    def rename_album(self, album_id: str, name: str) -> None:
        with self._lock:
            album = self._album(album_id)
            album.name = name
            album.updated_at = self._now()
            self._changed()

    def asset_bytes(self, asset_id: str) -> bytes:
        """The bytes the server serves for an asset (for tests)."""
        with self._lock:
            return self._read_bytes(self._asset(asset_id))

    @staticmethod
    def _read_bytes(asset: _Asset) -> bytes:
        with asset.path.open("rb") as handle:
            handle.seek(asset.offset)
            return handle.read(asset.size)

    # -- views used by the handler (hold self._lock) --

    def _album_assets(self, album: _Album) -> list[_Asset]:
        """Visible album members, newest fileCreatedAt first (cached per revision)."""
        cached = self._sorted_cache.get(album.id)
        if cached is not None and cached[0] == self._revision:
            return cached[1]
        members = [self._assets[i] for i in album.asset_ids if i in self._assets]
        visible = [a for a in members if not a.is_trashed and a.visibility != "hidden"]
        visible.sort(key=lambda a: (a.file_created_at, a.seq), reverse=True)
        self._sorted_cache[album.id] = (self._revision, visible)
        return visible

    def _can_see_album(self, user: DemoUser, album: _Album) -> bool:
        return album.owner.id == user.id or any(u.id == user.id for u, _ in album.members)

    def _can_see_asset(self, user: DemoUser, asset: _Asset) -> bool:
        if asset.owner.id == user.id:
            return True
        for album in self._albums.values():
            if not self._can_see_album(user, album):
                continue
            if asset.id in album.asset_ids:
                return True
            if asset.visibility == "hidden" and any(
                self._assets[i].live_photo_video_id == asset.id for i in album.asset_ids if i in self._assets
            ):
                return True
        return False

    def _user_json(self, user: DemoUser, pg: bool = False) -> dict[str, Any]:
        return {
            "id": user.id, "email": user.email, "name": user.name, "profileImagePath": "",
            "avatarColor": "primary", "profileChangedAt": iso_pg(user.created_at) if pg else iso_z(user.created_at),
        }

    def _asset_json(self, asset: _Asset, *, with_exif: bool, detail: bool = False, pg_dates: bool = False,
                    caller: DemoUser | None = None) -> dict[str, Any]:
        stamp = iso_pg if pg_dates else iso_z
        item: dict[str, Any] = {"id": asset.id, "createdAt": stamp(asset.created_at)}
        if not self.is_v3:
            item["deviceAssetId"] = f"web-{asset.file_name}-{int(asset.file_modified_at.timestamp() * 1000)}"
            item["ownerId"] = asset.owner.id
            item["deviceId"] = "WEB"
        else:
            item["ownerId"] = asset.owner.id
        item.update({
            "libraryId": asset.library_id,
            "type": asset.type,
            "originalPath": getattr(asset, "original_path", ""),
            "originalFileName": asset.file_name,
            "originalMimeType": asset.mime,
            "thumbhash": None,
            "fileCreatedAt": stamp(asset.file_created_at),
            "fileModifiedAt": stamp(asset.file_modified_at),
            "localDateTime": stamp(asset.file_created_at),
            "updatedAt": stamp(asset.updated_at),
            "isFavorite": False,
            "isArchived": False,
            "isTrashed": asset.is_trashed,
            "visibility": asset.visibility,
        })
        if self.is_v3:
            item["duration"] = 3000 if asset.type == "VIDEO" else None
        else:
            item["duration"] = "0:00:03.00000" if asset.type == "VIDEO" else "0:00:00.00000"
        if with_exif:
            item["exifInfo"] = {
                "make": None, "model": None, "exifImageWidth": asset.width, "exifImageHeight": asset.height,
                "fileSizeInByte": asset.size, "orientation": None,
                "dateTimeOriginal": iso_offset(asset.file_created_at), "modifyDate": iso_offset(asset.file_modified_at),
                "timeZone": "UTC", "lensModel": None, "fNumber": None, "focalLength": None, "iso": None,
                "exposureTime": None, "latitude": None, "longitude": None, "city": None, "state": None,
                "country": None, "description": "", "projectionType": None, "rating": None,
            }
        item.update({
            "livePhotoVideoId": asset.live_photo_video_id,
            "people": [],
            "checksum": asset.checksum,
            "isOffline": False,
            "hasMetadata": True,
            "duplicateId": None,
            "resized": asset.type == "IMAGE",
            "width": asset.width,
            "height": asset.height,
            "isEdited": False,
        })
        if detail:
            item["owner"] = self._user_json(asset.owner, pg=not self.is_v3)
            item["tags"] = []
            if not self.is_v3:
                item["unassignedFaces"] = []
            item["stack"] = None
        return item

    def _album_json(self, album: _Album, caller: DemoUser, *, inline_assets: bool, detail: bool) -> dict[str, Any]:
        assets = self._album_assets(album)
        shared = bool(album.members)
        data: dict[str, Any] = {
            "albumName": album.name,
            "description": album.description,
            "albumThumbnailAssetId": album.thumbnail_id if assets else None,
            "createdAt": iso_z(album.created_at),
            "updatedAt": iso_z(album.updated_at),
            "id": album.id,
        }
        members = [{"user": self._user_json(u, pg=not self.is_v3), "role": r} for u, r in album.members]
        if self.is_v3:
            data["albumUsers"] = [{"user": self._user_json(album.owner), "role": "owner"}, *members]
        else:
            data["ownerId"] = album.owner.id
            data["owner"] = self._user_json(album.owner, pg=True)
            data["albumUsers"] = members
        data["shared"] = shared
        data["hasSharedLink"] = False
        if assets:
            data["startDate"] = _day(min(a.file_created_at for a in assets))
            data["endDate"] = _day(max(a.file_created_at for a in assets))
        if not self.is_v3:
            inline = assets if inline_assets else []
            data["assets"] = [self._asset_json(a, with_exif=True, pg_dates=True) for a in inline]
        data["assetCount"] = len(assets)
        data["isActivityEnabled"] = True
        data["order"] = "desc"
        if assets:
            data["lastModifiedAssetTimestamp"] = iso_z(max(a.updated_at for a in assets))
        if detail and shared:
            counts: dict[str, int] = {}
            for asset in assets:
                counts[asset.owner.id] = counts.get(asset.owner.id, 0) + 1
            data["contributorCounts"] = [{"userId": uid, "assetCount": n} for uid, n in counts.items()]
        return data


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from a JPEG's SOF marker, or (None, None)."""
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None, None
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2:index + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height = int.from_bytes(data[index + 5:index + 7], "big")
            width = int.from_bytes(data[index + 7:index + 9], "big")
            return width, height
        index += 2 + length
    return None, None


# -- the request handler ------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Http
    server_version = "demo-immich"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("demo server: " + format, *args)

    @property
    def demo(self) -> DemoServer:
        return self.server.demo

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # one entry point for every method
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = split.query
        body = b""
        status = 500
        response: bytes | None = None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        too_big = length > BODY_LIMIT
        if length:
            body = self._read_body(length)
        fault = self.demo.faults.take(self.command, path)
        cid = secrets.token_hex(4)
        recorded = False
        try:
            if fault is not None and fault.delay_seconds and self.demo.stopping.wait(fault.delay_seconds):
                self.close_connection = True
                return
            if fault is not None and fault.replaces_answer:
                answer = self._fault_answer(fault)
            elif too_big:
                answer = self._error(500, "Internal server error", cid, http_error=False)
            else:
                try:
                    answer = self._route(self.command, path, parse_qs(query, keep_blank_values=True), body, cid)
                except _HttpError as exc:
                    answer = exc.answer
                except Exception:  # a bug here must not look like a network failure
                    log.exception("demo server: %s %s failed", self.command, path)
                    answer = self._error(500, "Internal server error", cid, http_error=False)
            if self.demo.record_responses:
                response = answer.plain_json
            if fault is not None and fault.headers and not fault.replaces_answer:
                answer.headers.extend(fault.headers.items())
            status = answer.status
            # Logged before the answer goes out: a client that has the whole answer can count on
            # the log holding the request (logged after, a test that clears the log right after a
            # sync could see that sync's last download a moment later).
            recorded = self._record(path, query, status, body, response)
            self._send(answer, fault, cid)
        except (ConnectionError, OSError, ssl.SSLError):
            self.close_connection = True
        finally:
            if not recorded:
                self._record(path, query, status, body, response)

    def _record(self, path: str, query: str, status: int, body: bytes, response: Any) -> bool:
        headers = {k: v for k, v in self.headers.items()}
        self.demo.record(RequestRecord(self.command, path, query, headers, status, body[:1_000_000], response))
        return True

    def _read_body(self, length: int) -> bytes:
        if length > 64 * BODY_LIMIT:
            self.close_connection = True
            return b""
        chunks = []
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        return b"" if length > BODY_LIMIT else data

    # -- answers --

    def _base_headers(self, cid: str, *, correlation: bool = True) -> list[tuple[str, str]]:
        headers = [("X-Powered-By", "Express")]
        if correlation:
            headers.append(("X-Correlation-ID", cid) if self.demo.is_v3 else ("x-immich-cid", cid))
        return headers

    def _json(self, status: int, data: Any, cid: str, *, correlation: bool = True,
              extra: Iterable[tuple[str, str]] = ()) -> _Answer:
        body = plain = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        headers = self._base_headers(cid, correlation=correlation)
        headers.extend(extra)
        headers.append(("Content-Type", "application/json; charset=utf-8"))
        etag = f'"{len(body):x}-{base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]}"'
        headers.append(("ETag", etag))
        if self.command != "HEAD" and len(body) > 1024 and "gzip" in self._accepted_encodings():
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        return _Answer(status, headers, body, plain_json=plain if self.demo.record_responses else None)

    def _accepted_encodings(self) -> set[str]:
        value = self.headers.get("Accept-Encoding") or ""
        return {part.split(";")[0].strip().lower() for part in value.split(",") if part.strip()}

    def _error(self, status: int, message: Any, cid: str, *, http_error: bool = True,
               errors: list[dict[str, Any]] | None = None, extra: Iterable[tuple[str, str]] = (),
               correlation_in_body: bool = True) -> _Answer:
        if self.demo.is_v3:
            data: dict[str, Any] = {"message": message}
            if errors is not None:
                data["errors"] = errors
        else:
            data = {"message": message}
            if http_error:
                data["error"] = HTTPStatus(status).phrase
            data["statusCode"] = status
            if correlation_in_body:
                data["correlationId"] = cid
        return self._json(status, data, cid, extra=extra)

    def _validation(self, cid: str, v3_issues: list[dict[str, Any]], v2_messages: list[str]) -> _HttpError:
        if self.demo.is_v3:
            return _HttpError(self._error(400, "Validation failed", cid, errors=v3_issues))
        return _HttpError(self._error(400, v2_messages, cid))

    def _fault_answer(self, fault: Fault) -> _Answer:
        headers = list((fault.headers or {}).items())
        if fault.redirect_to:
            headers.append(("Location", fault.redirect_to))
            return _Answer(fault.status or 302, [*headers, ("Content-Type", "text/plain")], b"Found")
        status = fault.status or 200
        if fault.raw_body is not None:
            body = fault.raw_body
            content_type = fault.content_type or "application/octet-stream"
        elif fault.body is not None and not isinstance(fault.body, bytes | str):
            body = json.dumps(fault.body).encode()
            content_type = fault.content_type or "application/json; charset=utf-8"
        elif fault.body is not None:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            content_type = fault.content_type or "text/plain; charset=utf-8"
        else:
            data = {"message": HTTPStatus(status).phrase}
            if not self.demo.is_v3:
                data.update({"error": HTTPStatus(status).phrase, "statusCode": status})
            body = json.dumps(data).encode()
            content_type = fault.content_type or "application/json; charset=utf-8"
        headers.append(("Content-Type", content_type))
        return _Answer(status, headers, body)

    def _send(self, answer: _Answer, fault: Fault | None, cid: str) -> None:
        head_only = self.command == "HEAD"
        self.send_response_only(answer.status)
        self.send_header("Date", self.date_time_string())
        for name, value in answer.headers:
            self.send_header(name, value)
        chunked = answer.chunks is not None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif answer.file is not None:
            self.send_header("Content-Length", str(answer.file[2]))
        else:
            self.send_header("Content-Length", str(len(answer.body or b"")))
        if self.close_connection or (fault is not None and fault.drop_after_bytes is not None):
            self.send_header("Connection", "close" if self.close_connection else "keep-alive")
        else:
            self.send_header("Connection", "keep-alive")
        self.end_headers()
        if head_only:
            return
        perturbed = fault is not None and (
            fault.drop_after_bytes is not None or fault.stall_after_bytes is not None or fault.rate_bytes_per_s
        )
        if answer.file is not None and not perturbed:
            path, offset, length = answer.file
            if length:
                with path.open("rb") as handle:
                    self.connection.sendfile(handle, offset, length)
            return
        if chunked:
            pieces = self._chunked(answer.chunks or ())
        elif answer.file is not None:
            pieces = self._file_pieces(*answer.file)
        else:
            pieces = iter([answer.body or b""])
        if not perturbed:
            for piece in pieces:
                if piece:
                    self.wfile.write(piece)
            return
        assert fault is not None
        self._send_perturbed(pieces, fault)

    @staticmethod
    def _file_pieces(path: Path, offset: int, length: int) -> Iterator[bytes]:
        with path.open("rb") as handle:
            handle.seek(offset)
            remaining = length
            while remaining > 0:
                chunk = handle.read(min(SEND_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    @staticmethod
    def _chunked(chunks: Iterable[bytes]) -> Iterator[bytes]:
        buffer = bytearray()
        for chunk in chunks:
            buffer += chunk
            if len(buffer) >= SEND_CHUNK:
                yield b"%x\r\n" % len(buffer) + bytes(buffer) + b"\r\n"
                buffer.clear()
        if buffer:
            yield b"%x\r\n" % len(buffer) + bytes(buffer) + b"\r\n"
        yield b"0\r\n\r\n"

    def _send_perturbed(self, pieces: Iterator[bytes], fault: Fault) -> None:
        sent = 0
        stalled = False
        started = time.monotonic()
        for piece in pieces:
            view = memoryview(piece)
            while view:
                step = min(len(view), 16 * 1024)
                limits = []
                if fault.drop_after_bytes is not None:
                    limits.append(fault.drop_after_bytes - sent)
                if fault.stall_after_bytes is not None and not stalled:
                    limits.append(fault.stall_after_bytes - sent)
                if fault.rate_bytes_per_s:
                    step = min(step, max(1024, int(fault.rate_bytes_per_s / 20)))
                if limits:
                    step = max(0, min(step, *limits))
                if fault.rate_bytes_per_s and step:
                    # pace before writing: the last byte leaves at size / rate
                    pause = started + (sent + step) / fault.rate_bytes_per_s - time.monotonic()
                    if pause > 0 and self.demo.stopping.wait(pause):
                        self.close_connection = True
                        return
                if step:
                    self.wfile.write(view[:step])
                    view = view[step:]
                    sent += step
                if fault.drop_after_bytes is not None and sent >= fault.drop_after_bytes:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.stall_after_bytes is not None and not stalled and sent >= fault.stall_after_bytes:
                    stalled = True
                    if self.demo.stopping.wait(fault.stall_seconds):
                        self.close_connection = True
                        return

    # -- routing --

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes, cid: str) -> _Answer:
        demo = self.demo
        if path == "/.well-known/immich" and method in ("GET", "HEAD"):
            return self._json(200, {"api": {"endpoint": "/api"}}, cid, correlation=False)
        if path == "/" and method in ("GET", "HEAD"):
            accept = self.headers.get("Accept") or ""
            if "text/html" in accept or not accept or ("*/*" in accept and "json" not in accept):
                page = (f"<!doctype html><title>Immich demo server</title><p>Immich {'.'.join(map(str, demo.version))}"
                        " compatible demo server (tray-sync). The API is at /api.</p>").encode()
                return _Answer(200, [*self._base_headers(cid), ("Content-Type", "text/html; charset=utf-8")], page)
            message = "The route / was requested as application/json, but only returns text/html"
            if demo.is_v3:
                return self._json(406, {"message": message}, cid)
            return self._json(406, {"message": message, "error": "Not Acceptable", "statusCode": 406}, cid)
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"/api/server/ping", self._ping),
            ("GET", r"/api/server/version", self._server_version),
            ("GET", r"/api/server/about", self._server_about),
            ("GET", r"/api/users/me", self._users_me),
            ("GET", r"/api/api-keys/me", self._api_key_me),
            ("GET", r"/api/albums", self._albums),
            ("GET", r"/api/albums/(?P<id>[^/]+)", self._album),
            ("POST", r"/api/search/metadata", self._search_metadata),
            ("GET", r"/api/assets/(?P<id>[^/]+)", self._asset_info),
            ("GET", r"/api/assets/(?P<id>[^/]+)/original", self._original),
            ("POST", r"/api/download/info", self._download_info),
            ("POST", r"/api/download/archive", self._download_archive),
        ]
        lookup_method = "GET" if method == "HEAD" else method
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == lookup_method:
                return handler(cid=cid, query=query, body=body, **match.groupdict())
        message = f"Cannot {method} {path}"
        if demo.is_v3:
            return self._json(404, {"message": message}, cid)
        return self._error(404, message, cid)

    # -- auth --

    def _auth(self, cid: str, permission: str | None, query: dict[str, list[str]]) -> _Key:
        demo = self.demo
        secret = self.headers.get("x-api-key")
        if secret is None and not demo.is_v3 and query.get("apiKey"):
            secret = query["apiKey"][0]
        authorization = self.headers.get("Authorization") or ""
        cookie = self.headers.get("Cookie") or ""
        if "immich_access_token=" in cookie or (secret is None and authorization.lower().startswith("bearer ")):
            raise _HttpError(self._error(401, "Invalid user token", cid))
        if secret is None:
            raise _HttpError(self._error(401, "Authentication required", cid))
        with demo._lock:
            key = demo._keys.get(secret)
        if key is None:
            raise _HttpError(self._error(401, "Invalid API key", cid))
        if permission is not None and not key.allows(permission):
            raise _HttpError(self._error(403, f"Missing required permission: {permission}", cid))
        return key

    def _check_uuid(self, value: str, cid: str, name: str = "id") -> None:
        if not _UUID.match(value):
            raise self._validation(
                cid,
                [{"origin": "string", "code": "invalid_format", "format": "uuid", "pattern": _ZOD_UUID_PATTERN,
                  "path": [name], "message": "Invalid UUID"}],
                [f"{name} must be a UUID"],
            )

    def _bool_param(self, query: dict[str, list[str]], name: str, cid: str) -> bool | None:
        values = query.get(name)
        if not values:
            return None
        value = values[-1]
        if value in ("true", "false"):
            return value == "true"
        if self.demo.is_v3:
            return None
        raise _HttpError(self._error(400, [f"{name} must be a boolean value"], cid))

    # -- server --

    def _ping(self, cid: str, **_: Any) -> _Answer:
        return self._json(200, {"res": "pong"}, cid)

    def _server_version(self, cid: str, **_: Any) -> _Answer:
        major, minor, patch = self.demo.version
        data: dict[str, Any] = {"major": major, "minor": minor, "patch": patch}
        if self.demo.is_v3:
            data["prerelease"] = None
        return self._json(200, data, cid)

    def _server_about(self, cid: str, query: dict[str, list[str]], **_: Any) -> _Answer:
        self._auth(cid, "server.about", query)
        version = "v" + ".".join(map(str, self.demo.version))
        return self._json(200, {
            "version": version,
            "versionUrl": f"https://github.com/immich-app/immich/releases/tag/{version}",
            "licensed": False, "nodejs": "v24.15.0", "exiftool": "13.59" if self.demo.is_v3 else "13.53",
            "ffmpeg": "5.1.9", "libvips": "8.17.3", "imagemagick": "",
        }, cid)

    def _users_me(self, cid: str, query: dict[str, list[str]], **_: Any) -> _Answer:
        key = self._auth(cid, "user.read", query)
        user = self.demo._user_json(key.user)
        user.update({"isAdmin": key.user.email.startswith("admin"), "shouldChangePassword": False,
                     "createdAt": iso_z(key.user.created_at), "updatedAt": iso_z(key.user.created_at),
                     "deletedAt": None, "oauthId": "", "storageLabel": None, "quotaSizeInBytes": None,
                     "quotaUsageInBytes": 0, "status": "active", "license": None})
        return self._json(200, user, cid)

    def _api_key_me(self, cid: str, query: dict[str, list[str]], **_: Any) -> _Answer:
        key = self._auth(cid, None, query)
        return self._json(200, {"id": key.id, "name": key.name, "createdAt": iso_z(key.created_at),
                                "updatedAt": iso_z(key.created_at), "permissions": list(key.permissions)}, cid)

    # -- albums --

    def _albums(self, cid: str, query: dict[str, list[str]], **_: Any) -> _Answer:
        key = self._auth(cid, "album.read", query)
        demo = self.demo
        user = key.user
        asset_filter = (query.get("assetId") or [None])[-1]
        if asset_filter is not None:
            self._check_uuid(asset_filter, cid, "assetId")
        with demo._lock:
            visible = [a for a in demo._albums.values() if demo._can_see_album(user, a)]
            if demo.is_v3:
                is_owned = self._bool_param(query, "isOwned", cid)
                if is_owned is not None:
                    visible = [a for a in visible if (a.owner.id == user.id) == is_owned]
                name = (query.get("name") or [None])[-1]
                if name is not None:
                    visible = [a for a in visible if a.name == name]
            else:
                shared = self._bool_param(query, "shared", cid)
                if asset_filter is None:
                    if shared is None:
                        visible = [a for a in visible if a.owner.id == user.id]
                    elif shared:
                        visible = [a for a in visible if a.members]
                    else:
                        visible = [a for a in visible if a.owner.id == user.id and not a.members]
            if asset_filter is not None:
                visible = [a for a in visible if asset_filter in a.asset_ids]
            visible.sort(key=lambda a: a.created_at, reverse=True)
            data = [demo._album_json(a, user, inline_assets=False, detail=False) for a in visible]
        return self._json(200, data, cid)

    def _album(self, cid: str, query: dict[str, list[str]], id: str, **_: Any) -> _Answer:
        key = self._auth(cid, "album.read", query)
        demo = self.demo
        self._check_uuid(id, cid)
        without_assets = self._bool_param(query, "withoutAssets", cid)
        with demo._lock:
            album = demo._albums.get(id)
            if album is None or not demo._can_see_album(key.user, album):
                raise _HttpError(self._error(400, "Not found or no album.read access", cid))
            data = demo._album_json(album, key.user, inline_assets=not without_assets, detail=True)
        return self._json(200, data, cid)

    # -- search --

    def _search_metadata(self, cid: str, query: dict[str, list[str]], body: bytes, **_: Any) -> _Answer:
        key = self._auth(cid, "asset.read", query)
        demo = self.demo
        dto = self._json_body(body, cid)
        size, page, order, album_ids, with_exif = self._search_params(dto, cid)
        with demo._lock:
            if demo.is_v3:
                for album_id in album_ids:
                    album = demo._albums.get(album_id)
                    if album is None or not demo._can_see_album(key.user, album):
                        raise _HttpError(self._error(400, "Not found or no album.read access", cid))
            if album_ids:
                pools = [set(demo._albums[a].asset_ids) if a in demo._albums else set() for a in album_ids]
                first = demo._albums.get(album_ids[0])
                candidates = demo._album_assets(first) if first is not None else []
                candidates = [a for a in candidates if all(a.id in pool for pool in pools)]
                if not demo.is_v3:
                    candidates = [a for a in candidates if a.owner.id == key.user.id]
            else:
                candidates = [a for a in demo._assets.values()
                              if a.owner.id == key.user.id and not a.is_trashed and a.visibility != "hidden"]
                candidates.sort(key=lambda a: (a.file_created_at, a.seq), reverse=True)
            if order == "asc":
                candidates = list(reversed(candidates))
            start = (page - 1) * size
            chosen = candidates[start:start + size]
            has_next = len(candidates) > start + size
            items = [demo._asset_json(a, with_exif=with_exif) for a in chosen]
        return self._json(200, {
            "albums": {"total": 0, "count": 0, "items": [], "facets": []},
            "assets": {"total": len(items), "count": len(items), "items": items, "facets": [],
                       "nextPage": str(page + 1) if has_next else None},
        }, cid)

    def _json_body(self, body: bytes, cid: str) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except ValueError as exc:
            message = _v8_json_error(exc)
            if self.demo.is_v3:
                raise _HttpError(self._error(400, message, cid)) from None
            raise _HttpError(self._error(400, message, cid, correlation_in_body=False)) from None
        if not isinstance(data, dict):
            return {}
        return data

    def _search_params(self, dto: dict[str, Any], cid: str) -> tuple[int, int, str, list[str], bool]:
        v3 = self.demo.is_v3
        issues: list[dict[str, Any]] = []
        messages: list[str] = []

        def number(name: str, default: int, maximum: int | None) -> int:
            if name not in dto:
                return default
            value = dto[name]
            if not v3:
                if isinstance(value, bool):
                    value = int(value)
                elif isinstance(value, str):
                    try:
                        value = float(value) if value.strip() else float("nan")
                    except ValueError:
                        value = float("nan")
                elif value is None:
                    value = float("nan")
                field_messages = []
                if not isinstance(value, int | float) or value != value:
                    field_messages = ([f"{name} must not be greater than {maximum}"] if maximum else []) + [
                        f"{name} must not be less than 1", f"{name} must be an integer number"]
                else:
                    if maximum is not None and value > maximum:
                        field_messages.append(f"{name} must not be greater than {maximum}")
                    if value < 1:
                        field_messages.append(f"{name} must not be less than 1")
                    if value != int(value):
                        field_messages.append(f"{name} must be an integer number")
                messages.extend(field_messages)
                return int(value) if not field_messages else default
            if isinstance(value, bool) or not isinstance(value, int | float):
                issues.append({"expected": "number", "code": "invalid_type", "path": [name],
                               "message": f"Invalid input: expected number, received {_js_type(value)}"})
                return default
            if value != int(value):
                issues.append({"expected": "int", "format": "safeint", "code": "invalid_type", "path": [name],
                               "message": "Invalid input: expected int, received number"})
                return default
            if value < 1:
                issues.append({"origin": "number", "code": "too_small", "minimum": 1, "inclusive": True,
                               "path": [name], "message": "Too small: expected number to be >=1"})
                return default
            if maximum is not None and value > maximum:
                issues.append({"origin": "number", "code": "too_big", "maximum": maximum, "inclusive": True,
                               "path": [name], "message": f"Too big: expected number to be <={maximum}"})
                return default
            return int(value)

        page = number("page", 1, None)
        size = number("size", 250 if v3 else 1_000_000, 1000)
        order = dto.get("order", "desc")
        if order not in ("asc", "desc"):
            issues.append({"code": "invalid_value", "values": ["asc", "desc"], "path": ["order"],
                           "message": 'Invalid option: expected one of "asc"|"desc"'})
            messages.append("order must be one of the following values: asc, desc")
        album_ids = dto.get("albumIds", [])
        if not isinstance(album_ids, list):
            issues.append({"expected": "array", "code": "invalid_type", "path": ["albumIds"],
                           "message": f"Invalid input: expected array, received {_js_type(album_ids)}"})
            messages.append("albumIds must be an array")
            album_ids = []
        elif not all(isinstance(a, str) and _UUID.match(a) for a in album_ids):
            for index, value in enumerate(album_ids):
                if not (isinstance(value, str) and _UUID.match(value)):
                    issues.append({"origin": "string", "code": "invalid_format", "format": "uuid",
                                   "pattern": _ZOD_UUID_PATTERN, "path": ["albumIds", index],
                                   "message": "Invalid UUID"})
            messages.append("each value in albumIds must be a UUID")
        kind = dto.get("type")
        if kind is not None and kind not in ("IMAGE", "VIDEO", "AUDIO", "OTHER"):
            issues.append({"code": "invalid_value", "values": ["IMAGE", "VIDEO", "AUDIO", "OTHER"], "path": ["type"],
                           "message": 'Invalid option: expected one of "IMAGE"|"VIDEO"|"AUDIO"|"OTHER"'})
            messages.append("type must be one of the following values: IMAGE, VIDEO, AUDIO, OTHER")
        with_exif = dto.get("withExif", False)
        if not v3 and with_exif in ("true", "false"):
            with_exif = with_exif == "true"
        if not isinstance(with_exif, bool):
            issues.append({"expected": "boolean", "code": "invalid_type", "path": ["withExif"],
                           "message": f"Invalid input: expected boolean, received {_js_type(with_exif)}"})
            messages.append("withExif must be a boolean value")
            with_exif = False
        if issues if v3 else messages:
            raise self._validation(cid, issues, messages)
        return size, page, order, [str(a) for a in album_ids], with_exif

    # -- assets --

    def _asset_info(self, cid: str, query: dict[str, list[str]], id: str, **_: Any) -> _Answer:
        key = self._auth(cid, "asset.read", query)
        demo = self.demo
        self._check_uuid(id, cid)
        with demo._lock:
            asset = demo._assets.get(id)
            if asset is None or not demo._can_see_asset(key.user, asset):
                raise _HttpError(self._error(400, "Not found or no asset.read access", cid))
            data = demo._asset_json(asset, with_exif=True, detail=True)
        return self._json(200, data, cid)

    def _original(self, cid: str, query: dict[str, list[str]], id: str, **_: Any) -> _Answer:
        key = self._auth(cid, "asset.download", query)
        demo = self.demo
        self._check_uuid(id, cid)
        with demo._lock:
            asset = demo._assets.get(id)
            visible = asset is not None and demo._can_see_asset(key.user, asset)
            if visible:
                assert asset is not None
                path, offset, size = asset.path, asset.offset, asset.size
                mime, name, modified = asset.mime, asset.file_name, asset.file_modified_at
        if not visible:
            if demo.is_v3:
                raise _HttpError(self._error(404, "Not Found", cid))
            raise _HttpError(self._error(400, "Not found or no asset.download access", cid,
                                         extra=[("Cache-Control", "none")]))
        mtime_ms = int(modified.timestamp() * 1000)
        etag = f'W/"{size:x}-{mtime_ms:x}"'
        headers = [
            *self._base_headers(cid),
            ("Content-Type", mime),
            ("Content-Disposition", f"inline; filename*=UTF-8''{quote(name, safe='')}"),
            ("Accept-Ranges", "bytes"),
            ("Last-Modified", email.utils.formatdate(modified.timestamp(), usegmt=True)),
            ("ETag", etag),
            ("Cache-Control", _CACHE_CONTROL),
        ]
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return _Answer(304, [h for h in headers if h[0] != "Content-Type"], b"")
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if range_header and if_range and if_range.strip() != etag:
            range_header = None
        if range_header:
            span = _parse_range(range_header, size)
            if span is None:
                extra = [("Content-Range", f"bytes */{size}")]
                if demo.is_v3:
                    raise _HttpError(self._error(404, "Not Found", cid, extra=extra))
                answer = self._error(500, "Internal server error", cid, http_error=False,
                                     extra=[*extra, ("Cache-Control", "none")])
                answer.headers = [(k, "image/jpeg; charset=utf-8" if k == "Content-Type" else v)
                                  for k, v in answer.headers if k != "Cache-Control"] + [("Cache-Control", "none")]
                answer.headers = [h for h in answer.headers if h[0] != "ETag"]
                raise _HttpError(answer)
            elif span != "ignore":  # "ignore": a Range the real server ignores, so the whole file (below)
                first, last = span
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
                return _Answer(206, headers, file=(path, offset + first, last - first + 1))
        return _Answer(200, headers, file=(path, offset, size))

    # -- downloads --

    def _download_info(self, cid: str, query: dict[str, list[str]], body: bytes, **_: Any) -> _Answer:
        key = self._auth(cid, "asset.download", query)
        demo = self.demo
        dto = self._json_body(body, cid)
        archive_size = dto.get("archiveSize", 4 * 1024**3)
        if not isinstance(archive_size, int) or isinstance(archive_size, bool) or archive_size < 1:
            raise self._validation(
                cid,
                [{"origin": "number", "code": "too_small", "minimum": 1, "inclusive": True, "path": ["archiveSize"],
                  "message": "Too small: expected number to be >=1"}],
                ["archiveSize must be a positive number"],
            )
        asset_ids = dto.get("assetIds")
        album_id = dto.get("albumId")
        if isinstance(asset_ids, list):
            self._check_uuid_list(asset_ids, "assetIds", cid)
        elif album_id is not None:
            self._check_uuid(str(album_id), cid, "albumId")
        with demo._lock:
            if isinstance(asset_ids, list):
                chosen = []
                for asset_id in asset_ids:
                    asset = demo._assets.get(asset_id)
                    if asset is None or not demo._can_see_asset(key.user, asset):
                        raise _HttpError(self._error(400, "Not found or no asset.download access", cid))
                    chosen.append(asset)
                chosen = [a for a in chosen if not a.is_trashed]
            elif album_id is not None:
                album = demo._albums.get(str(album_id))
                if album is None or not demo._can_see_album(key.user, album):
                    raise _HttpError(self._error(400, "Not found or no album.download access", cid))
                members = [demo._assets[i] for i in album.asset_ids if i in demo._assets]
                chosen = [a for a in members if not a.is_trashed and a.visibility != "hidden"]
                chosen.sort(key=lambda a: a.seq)
            else:
                raise _HttpError(self._error(400, "assetIds, albumId, or userId is required", cid))
            motions = [demo._assets[a.live_photo_video_id] for a in chosen
                       if a.live_photo_video_id and a.live_photo_video_id in demo._assets]
            archives: list[dict[str, Any]] = []
            current: dict[str, Any] = {"size": 0, "assetIds": []}
            for asset in [*chosen, *motions]:
                current["assetIds"].append(asset.id)
                current["size"] += asset.size
                if current["size"] > archive_size:
                    archives.append(current)
                    current = {"size": 0, "assetIds": []}
            if current["assetIds"]:
                archives.append(current)
        return self._json(201, {"totalSize": sum(a["size"] for a in archives), "archives": archives}, cid)

    def _check_uuid_list(self, values: list[Any], name: str, cid: str) -> None:
        for index, value in enumerate(values):
            if not (isinstance(value, str) and _UUID.match(value)):
                raise self._validation(
                    cid,
                    [{"origin": "string", "code": "invalid_format", "format": "uuid", "pattern": _ZOD_UUID_PATTERN,
                      "path": [name, index], "message": "Invalid UUID"}],
                    [f"each value in {name} must be a UUID"],
                )

    def _download_archive(self, cid: str, query: dict[str, list[str]], body: bytes, **_: Any) -> _Answer:
        key = self._auth(cid, "asset.download", query)
        demo = self.demo
        dto = self._json_body(body, cid)
        asset_ids = dto.get("assetIds")
        if not isinstance(asset_ids, list):
            raise self._validation(
                cid,
                [{"expected": "array", "code": "invalid_type", "path": ["assetIds"],
                  "message": "Invalid input: expected array, received undefined"}],
                ["each value in assetIds must be a UUID", "assetIds should not be empty", "assetIds must be an array"],
            )
        self._check_uuid_list(asset_ids, "assetIds", cid)
        with demo._lock:
            chosen = []
            for asset_id in asset_ids:
                asset = demo._assets.get(asset_id)
                if asset is None or not demo._can_see_asset(key.user, asset):
                    raise _HttpError(self._error(400, "Not found or no asset.download access", cid))
                chosen.append((asset.file_name, asset.file_modified_at, asset.path, asset.offset, asset.size))
        if not chosen:
            raise _HttpError(self._error(500, "Failed to download archive", cid))
        used: dict[str, int] = {}
        entries = []
        for file_name, modified, path, offset, size in chosen:
            name = sanitize_filename(file_name) if demo.is_v3 else re.sub(r"^[A-Za-z]:", "", file_name)
            count = used.get(name, 0)
            used[name] = count + 1
            if count:
                stem, ext = posixpath.splitext(name)
                name = f"{stem}+{count}{ext}"
            entries.append((name, modified, _Handler._file_pieces(path, offset, size)))
        stream: Iterable[bytes] = zip_stream(entries)
        headers = [*self._base_headers(cid), ("Content-Type", "application/octet-stream"), ("Vary", "Accept-Encoding")]
        if "gzip" in self._accepted_encodings():
            headers.append(("Content-Encoding", "gzip"))
            stream = _gzip_stream(stream)
        return _Answer(200, headers, chunks=stream)


def _gzip_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def _v8_json_error(exc: ValueError) -> str:
    """Node's (V8's) wording for a JSON syntax error, which Immich passes on as the message."""
    if not isinstance(exc, json.JSONDecodeError):
        return "Unexpected token in JSON at position 0"
    where = f"at position {exc.pos} (line {exc.lineno} column {exc.colno})"
    if exc.msg.startswith("Expecting property name"):
        return f"Expected property name or '}}' in JSON {where}"
    if exc.msg.startswith("Expecting ',' delimiter"):
        return f"Expected ',' or '}}' after property value in JSON {where}"
    if exc.msg.startswith("Expecting ':' delimiter"):
        return f"Expected ':' after property name in JSON {where}"
    if exc.pos >= len(exc.doc):
        return "Unexpected end of JSON input"
    return f"Unexpected token '{exc.doc[exc.pos]}', \"{exc.doc[:30]}\" is not valid JSON"


def _js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(first, last) for one satisfiable range, "ignore" for a header to ignore, None if unsatisfiable."""
    text = header.strip()
    if not text.startswith("bytes="):
        return "ignore"  # another unit, or BYTES=: served whole
    spec = text[len("bytes="):]
    if "," in spec:
        return "ignore"
    match = re.fullmatch(r"\s*(\d*)-(\d*)\s*", spec)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first_text, last_text = match.groups()
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return None
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size or first > last:
        return None
    return first, min(last, size - 1)


# -- python -m tray_sync.demo.server ------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tray_sync.demo.server",
                                     description="Run an Immich-compatible demo server with a demo library.")
    parser.add_argument("--mode", choices=("3", "2"), default="3", help="Immich 3.1.0 (3) or 2.7.5 (2) behaviour")
    parser.add_argument("--port", type=int, default=2283)
    parser.add_argument("--storage", type=Path, default=None, help="folder for the originals (default: temporary)")
    parser.add_argument("--photos", type=int, default=12, help="photos per demo album")
    args = parser.parse_args(argv)
    from tray_sync.demo.library import build_demo_library

    # loopback only: the demo keys are printed and the library is public test data
    server = DemoServer(mode=args.mode, storage_dir=args.storage, port=args.port)
    server.start()
    try:
        library = build_demo_library(server, photos_per_album=args.photos)
        print(f"Immich {'.'.join(map(str, server.version))} compatible demo server at {server.url}")
        print(f"  admin key (all):            {library.admin_key}")
        print(f"  download key (3 perms):     {library.download_key}")
        print(f"  album.read only key:        {library.album_only_key}")
        print(f"  Bob's key (3 perms):        {library.bob_key}")
        for name, album_id in library.albums.items():
            print(f"  album {name!r}: {album_id}")
        print("Ctrl+C stops it.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
