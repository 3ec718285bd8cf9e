"""Contract tests: the built-in server and our client against ../shared/immich/.

1. Every JSON body the built-in server answers with is valid against the OpenAPI response
   schema of the matching Immich version (3.1.0 or 2.7.5), with `$ref`s resolved, `nullable`
   honoured and no property the schema does not name.
2. Every request our client sends (recorded by the server during real CLI runs) goes to an
   operation of that version's document, with only declared query parameters and a body
   valid against the request schema; every 2xx JSON answer it got is valid too.
3. A table replays what OBSERVED.md (3.1.0) and OBSERVED-2.7.5.md (2.7.5) recorded, row by
   row, against the built-in server in the matching mode: status, body, key sets, headers.
   Each row quotes the line it checks; the quote must still be in the document, so the table
   cannot drift away from it, and the server cannot drift toward the client's assumptions.

The reference folder sits beside the repository (REPO.parent / "shared"), as in CI.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.conftest import SHARED
from tests.e2e_helpers import cli, connect
from tray_sync.demo.library import build_demo_library
from tray_sync.demo.server import DemoServer

IMMICH = SHARED / "immich"
SPEC_FILES = {"3": "immich-openapi-specs-3.1.0.json", "2": "immich-openapi-specs-2.7.5.json"}
OBSERVED_FILES = {"3": "OBSERVED.md", "2": "OBSERVED-2.7.5.md"}
UNKNOWN_ID = "3f1b6a52-0d8e-4c3a-9b7e-2a4c6d8e0f12"


def _require_shared() -> None:
    # A clone elsewhere still passes; in CI ../shared is always there, and .ci/check_skips.py
    # fails the run on this skip, so the contract cannot silently go untested.
    if not IMMICH.is_dir():
        pytest.skip("../shared absent")


# -- the OpenAPI documents -----------------------------------------------------------------


def _strict(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` as null types, and no unnamed properties."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if "type" in out and "enum" not in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@cache
def spec(mode: str) -> dict[str, Any]:
    _require_shared()
    return json.loads((IMMICH / SPEC_FILES[mode]).read_text(encoding="utf-8"))


@cache
def _registry(mode: str) -> Registry:
    return Registry().with_resource("urn:immich", Resource(_strict(spec(mode)), DRAFT7))


def validate(mode: str, schema: dict[str, Any], instance: Any, what: str) -> None:
    if "$ref" in schema:
        schema = {"$ref": "urn:immich" + schema["$ref"]}
    else:
        schema = json.loads(json.dumps(_strict(schema)).replace('"$ref": "#/', '"$ref": "urn:immich#/'))
    validator = Draft7Validator(schema, registry=_registry(mode), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, f"{what}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}" for e in errors[:5])


def operation(mode: str, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The OpenAPI operation for an /api/... URL path (the template and its definition)."""
    assert path.startswith("/api/"), path
    api_path = path[len("/api"):]
    for template, item in spec(mode)["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, api_path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {api_path} is not an operation of Immich {spec(mode)['info']['version']}")


def response_schema(mode: str, method: str, path: str, status: int) -> dict[str, Any] | None:
    _, op = operation(mode, method, path)
    answer = op["responses"].get(str(status))
    assert answer is not None, f"{method} {path}: status {status} is not documented ({sorted(op['responses'])})"
    content = answer.get("content", {})
    return content.get("application/json", {}).get("schema")


# -- servers shared by a module's tests (read-only use) ------------------------------------


@dataclass
class World:
    mode: str
    server: DemoServer
    lib: Any
    ids: dict[str, str]

    @property
    def v3(self) -> bool:
        return self.mode == "3"

    def key(self, name: str | None) -> str | None:
        return {None: None, "all": self.lib.admin_key, "download": self.lib.download_key,
                "album": self.lib.album_only_key, "bob": self.lib.bob_key, "wrong": "wrong-key-0123456789"}[name]


def _make_world(mode: str) -> World:
    server = DemoServer(mode=mode).start()
    lib = build_demo_library(server, photos_per_album=4, seed=3)
    family = lib.albums["Family 2024"]
    listing = server._album_assets(server._albums[family])  # storage-independent view for ids
    still = next(a for a in listing if a.live_photo_video_id)
    plain = next(a for a in listing if not a.live_photo_video_id and a.file_name != "IMG_0001.jpg")
    dups = [a.id for a in listing if a.file_name == "IMG_0001.jpg"]
    weird = [server.add_asset(lib.admin, name) for name in ("a:b*c?.jpg", "CON.jpg")]
    big = server.add_album(lib.admin, "Big")
    server.add_assets_bulk(lib.admin, 260, 64, big, seed=5)
    ids = {
        "family": family, "holidays": lib.albums["Holidays 2023"], "garden": lib.albums["Grandma's Garden"],
        "bikes": lib.albums["Bob's Bikes"], "big": big, "asset": plain.id, "still": still.id,
        "motion": still.live_photo_video_id or "", "dup1": dups[0], "dup2": dups[1], "unknown": UNKNOWN_ID,
        "holiday_asset": lib.assets["Holidays 2023"][0], "colon": weird[0], "con": weird[1],
        "size": str(plain.size), "last": str(plain.size - 1),
    }
    return World(mode, server, lib, ids)


@pytest.fixture(scope="module")
def worlds() -> Iterator[dict[str, World]]:
    _require_shared()
    made: dict[str, World] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, mode: str) -> World:
            made[mode] = self[mode] = _make_world(mode)
            return made[mode]

    yield Lazy()
    for world in made.values():
        world.server.stop()


def call(world: World, method: str, path: str, key: str | None = "download", *, json_body: Any = None,
         data: bytes | None = None, params: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         stream: bool = False) -> requests.Response:
    request_headers = {"Accept-Encoding": "identity", **(headers or {})}
    secret = world.key(key)
    if secret is not None:
        request_headers["x-api-key"] = secret
    url = (world.server.url if path.startswith("/.well-known") or path == "/" else world.server.api_url) + path
    return requests.request(method, url, headers=request_headers, json=json_body, data=data, params=params,
                            timeout=30, stream=stream, allow_redirects=False)


# -- 1. response schemas -------------------------------------------------------------------


SCHEMA_CALLS: list[tuple[str, str, str | None, Any, dict[str, str] | None]] = [
    ("GET", "/server/ping", None, None, None),
    ("GET", "/server/version", None, None, None),
    ("GET", "/server/about", "all", None, None),
    ("GET", "/users/me", "all", None, None),
    ("GET", "/api-keys/me", "download", None, None),
    ("GET", "/api-keys/me", "album", None, None),
    ("GET", "/albums", "download", None, None),
    ("GET", "/albums", "bob", None, None),
    ("GET", "/albums", "bob", None, {"shared": "true"}),
    ("GET", "/albums/{family}", "download", None, None),
    ("GET", "/albums/{garden}", "bob", None, None),
    ("GET", "/albums/{bikes}", "download", None, None),
    ("POST", "/search/metadata", "download", {"albumIds": ["{family}"], "page": 1, "size": 3, "withExif": True}, None),
    ("POST", "/search/metadata", "download", {"albumIds": ["{big}"], "page": 2, "size": 1000}, None),
    ("POST", "/search/metadata", "bob", {"albumIds": ["{garden}"], "withExif": True}, None),
    ("GET", "/assets/{asset}", "download", None, None),
    ("GET", "/assets/{still}", "download", None, None),
    ("GET", "/assets/{motion}", "download", None, None),
    ("POST", "/download/info", "download", {"albumId": "{family}"}, None),
    ("POST", "/download/info", "download", {"assetIds": ["{still}"], "archiveSize": 1}, None),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("mode", ["3", "2"], ids=["immich3", "immich2"])
def test_server_answers_match_the_openapi_schemas(worlds, mode: str) -> None:  # type: ignore[no-untyped-def]
    world = worlds[mode]
    for method, template, key, body, params in SCHEMA_CALLS:
        path = template.format(**world.ids)
        response = call(world, method, path, key, json_body=_fill(body, world.ids), params=params)
        assert response.status_code < 300, (path, response.status_code, response.text[:300])
        schema = response_schema(mode, method, "/api" + path, response.status_code)
        assert schema is not None, f"{method} {path}: no JSON schema documented"
        validate(mode, schema, response.json(), f"{method} {template} ({key})")


@pytest.mark.parametrize("mode", ["3", "2"], ids=["immich3", "immich2"])
def test_error_answers_are_documented_shapes(worlds, mode: str) -> None:  # type: ignore[no-untyped-def]
    """Error bodies are not in the documents' schemas; their shape is what OBSERVED shows."""
    world = worlds[mode]
    for response in (call(world, "GET", "/albums", "wrong"), call(world, "GET", "/assets/nope"),
                     call(world, "POST", "/search/metadata", "album", json_body={})):
        body = response.json()
        if world.v3:
            assert set(body) <= {"message", "errors"} and "X-Correlation-ID" in response.headers
        else:
            assert {"message", "error", "statusCode", "correlationId"} == set(body)
            assert body["statusCode"] == response.status_code


# -- 2. our client's requests ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["3", "2"], ids=["immich3", "immich2"])
def test_client_requests_match_the_openapi_documents(mode: str, tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                     memory_keyring) -> None:
    from tray_sync.sync.client import ImmichClient

    _require_shared()
    with DemoServer(mode=mode, storage_dir=tmp_path / "storage") as server:
        lib = build_demo_library(server, photos_per_album=2, seed=4)
        server.record_responses = True
        for name, key, album in (("owner", lib.download_key, "Family 2024"), ("bob", lib.bob_key, "Grandma's Garden")):
            home = tmp_path / name
            monkeypatch.setenv("TRAY_SYNC_HOME", str(home))
            connect(home, server, key)
            assert cli(home, "albums", "--json").code == 0
            assert cli(home, "add", album, str(tmp_path / f"{name}-dest")).code == 0
            result = cli(home, "sync", "--json")
            assert result.code == 0, result.out + result.err
        client = ImmichClient(server.api_url, lib.download_key)
        try:
            assert client.download_info_size(lib.albums["Family 2024"]) > 0
            family = next(a for a in client.albums() if a.id == lib.albums["Family 2024"])
            assert len(client.album_assets(family)) == family.asset_count
        finally:
            client.close()
        recorded = list(server.requests)
    used: set[str] = set()
    answers = 0
    for record in recorded:
        if record.path == "/.well-known/immich":
            continue
        template, op = operation(mode, record.method, record.path)
        used.add(f"{record.method} {template}")
        declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        sent = {part.split("=")[0] for part in record.query.split("&") if part}
        assert sent <= declared, f"{record.method} {template}: undeclared query parameters {sent - declared}"
        assert "apiKey" not in sent and "key" not in sent, "the key never travels in a URL"
        assert record.headers.get("User-Agent", "").startswith("immich-tray-sync/")
        if record.path.endswith("/original"):
            assert record.headers.get("Accept-Encoding") == "identity", "originals are never compressed on the fly"
        if record.body:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            validate(mode, schema, record.json(), f"request body of {record.method} {template}")
        if 200 <= record.status < 300 and record.response is not None:
            answer_schema = response_schema(mode, record.method, record.path, record.status)
            assert answer_schema is not None, f"{record.method} {template}: no JSON schema documented"
            validate(mode, answer_schema, record.response_json(), f"answer to {record.method} {template}")
            answers += 1
    assert {"GET /server/version", "GET /api-keys/me", "GET /albums", "GET /assets/{id}/original"} <= used
    assert ("POST /search/metadata" in used) if mode == "3" else ("GET /albums/{id}" in used)
    assert answers >= 10, "every 2xx JSON answer the client got was checked"


# -- 3. what the real servers answered, replayed -----------------------------------------------


Check = Callable[[requests.Response, World], None]


@dataclass
class Row:
    mode: str
    quote: str  # the OBSERVED line this row checks, verbatim
    method: str
    path: str
    key: str | None = "download"
    status: int = 200
    body: Any = None  # exact JSON (2.x correlationId checked and dropped)
    keys: set[str] | None = None  # exact key set of the JSON object (or of each item of a list)
    headers: dict[str, str] = field(default_factory=dict)  # name -> regex (fullmatch)
    absent: tuple[str, ...] = ()
    json_body: Any = None
    raw_body: bytes | None = None
    params: dict[str, str] | None = None
    req_headers: dict[str, str] | None = None
    check: Check | None = None

    @property
    def id(self) -> str:
        return f"{self.mode}:{self.method} {self.path} {self.key} {json.dumps(self.json_body or self.params)[:40]}"


def _error(mode: str, status: int, message: Any, error: str | None = None) -> dict[str, Any]:
    if mode == "3":
        return {"message": message}
    body: dict[str, Any] = {"message": message}
    if error:
        body["error"] = error
    body["statusCode"] = status
    return body


def _names(response: requests.Response) -> list[str]:
    return [a["albumName"] for a in response.json()]


def _zip(response: requests.Response) -> list[zipfile.ZipInfo]:
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    return archive.infolist()


def _sha1(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


# checks used by several rows
def check_album_keys_v3(r: requests.Response, w: World) -> None:
    expected = {"albumName", "description", "albumThumbnailAssetId", "createdAt", "updatedAt", "id", "albumUsers",
                "shared", "hasSharedLink", "startDate", "endDate", "assetCount", "isActivityEnabled", "order",
                "lastModifiedAssetTimestamp"}
    albums = r.json()
    assert albums and all(set(a) == expected for a in albums), [sorted(set(a) ^ expected) for a in albums]
    created = [a["createdAt"] for a in albums]
    assert created == sorted(created, reverse=True), "newest createdAt first"


def check_album_keys_v2(r: requests.Response, w: World) -> None:
    expected = {"albumName", "description", "albumThumbnailAssetId", "createdAt", "updatedAt", "id", "ownerId",
                "owner", "albumUsers", "shared", "hasSharedLink", "startDate", "endDate", "assets", "assetCount",
                "isActivityEnabled", "order", "lastModifiedAssetTimestamp"}
    albums = r.json()
    assert albums and all(set(a) == expected for a in albums), [sorted(set(a) ^ expected) for a in albums]
    assert all(a["assets"] == [] for a in albums)
    created = [a["createdAt"] for a in albums]
    assert created == sorted(created, reverse=True)


def check_owner_first(r: requests.Response, w: World) -> None:
    for album in r.json():
        first = album["albumUsers"][0]
        assert first["role"] == "owner" and first["user"]["profileImagePath"] == ""
        assert set(first["user"]) == {"id", "email", "name", "profileImagePath", "avatarColor", "profileChangedAt"}


def check_members(r: requests.Response, w: World) -> None:
    album = r.json()
    assert [(u["user"]["name"], u["role"]) for u in album["albumUsers"]] == [("Admin", "owner"), ("Bob", "viewer")]
    assert album["shared"] is True


def check_v2_members(r: requests.Response, w: World) -> None:
    for album in r.json():
        assert all(u["role"] != "owner" for u in album["albumUsers"])
        assert set(album["owner"]) == {"id", "email", "name", "profileImagePath", "avatarColor", "profileChangedAt"}
        assert album["albumUsers"] or not album["shared"]
        assert re.fullmatch(r"[\d-]+T[\d:]+(\.\d*[1-9])?\+00:00", album["owner"]["profileChangedAt"])


def expect_names(*names: str) -> Check:
    def check(r: requests.Response, w: World) -> None:
        assert sorted(_names(r)) == sorted(names)
    return check


def check_day_dates(r: requests.Response, w: World) -> None:
    for album in r.json():
        assert album["startDate"].endswith("T00:00:00.000Z") and album["endDate"].endswith("T00:00:00.000Z")
        assert re.fullmatch(r"[\d-]+T[\d:]+\.\d{3}Z", album["lastModifiedAssetTimestamp"])


def check_search_page(r: requests.Response, w: World) -> None:
    data = r.json()
    assert data["albums"] == {"total": 0, "count": 0, "items": [], "facets": []}
    assets = data["assets"]
    assert set(assets) == {"total", "count", "items", "facets", "nextPage"}
    assert assets["nextPage"] == "2" and assets["total"] == assets["count"] == len(assets["items"]) == 2


def check_last_page(r: requests.Response, w: World) -> None:
    assets = r.json()["assets"]
    assert assets["nextPage"] is None and assets["total"] == assets["count"] == len(assets["items"])


def check_desc(r: requests.Response, w: World) -> None:
    taken = [i["fileCreatedAt"] for i in r.json()["assets"]["items"]]
    assert len(taken) > 2 and taken == sorted(taken, reverse=True)


def check_asc(r: requests.Response, w: World) -> None:
    taken = [i["fileCreatedAt"] for i in r.json()["assets"]["items"]]
    assert len(taken) > 2 and taken == sorted(taken)


def check_default_size_250(r: requests.Response, w: World) -> None:
    assets = r.json()["assets"]
    assert len(assets["items"]) == 250 and assets["nextPage"] == "2"


def check_all_in_one(r: requests.Response, w: World) -> None:
    assets = r.json()["assets"]
    assert len(assets["items"]) == 260 and assets["nextPage"] is None


def check_search_items_v3(r: requests.Response, w: World) -> None:
    items = r.json()["assets"]["items"]
    for item in items:
        assert not {"owner", "tags", "stack"} & set(item)
        assert item["people"] == [] and item["duration"] is None
        assert item["exifInfo"]["fileSizeInByte"] > 0
        assert re.fullmatch(r"[\d-]+T[\d:]+\+00:00", item["exifInfo"]["dateTimeOriginal"])
        assert {"resized", "isEdited", "duplicateId", "checksum"} <= set(item)
    assert any(i["livePhotoVideoId"] is None for i in items)


def check_no_exif(r: requests.Response, w: World) -> None:
    assert all("exifInfo" not in i for i in r.json()["assets"]["items"])


def check_checksums(r: requests.Response, w: World) -> None:
    for item in r.json()["assets"]["items"]:
        original = call(w, "GET", f"/assets/{item['id']}/original")
        assert _sha1(original.content) == item["checksum"]
        assert len(original.content) == item["exifInfo"]["fileSizeInByte"]


def expect_items(count: int) -> Check:
    def check(r: requests.Response, w: World) -> None:
        assert len(r.json()["assets"]["items"]) == count
    return check


def check_asset_detail_v3(r: requests.Response, w: World) -> None:
    asset = r.json()
    assert asset["tags"] == [] and asset["stack"] is None and "exifInfo" in asset and asset["owner"]["id"]


def check_asset_detail_v2(r: requests.Response, w: World) -> None:
    asset = r.json()
    assert asset["tags"] == [] and asset["unassignedFaces"] == [] and asset["stack"] is None
    assert re.fullmatch(r"[\d-]+T[\d:]+(\.\d*[1-9])?\+00:00", asset["owner"]["profileChangedAt"])


ORIGINAL_HEADERS = {
    "Content-Type": "image/jpeg",
    "Content-Length": r"\d+",
    "Content-Disposition": r"inline; filename\*=UTF-8''IMG_\d{4}\.jpg",
    "Accept-Ranges": "bytes",
    "Last-Modified": r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT",
    "ETag": r'W/"[0-9a-f]+-[0-9a-f]+"',
    "Cache-Control": re.escape("private, max-age=86400, no-transform, stale-while-revalidate=2592000, "
                               "stale-if-error=2592000"),
}


def check_etag_is_size_mtime(r: requests.Response, w: World) -> None:
    size = int(r.headers["Content-Length"])
    assert r.headers["ETag"].startswith(f'W/"{size:x}-')


def check_range_10_19(r: requests.Response, w: World) -> None:
    assert r.headers["Content-Range"] == f"bytes 10-19/{w.ids['size']}" and r.headers["Content-Length"] == "10"
    assert r.content == w.server.asset_bytes(w.ids["asset"])[10:20]


def check_range_from_100(r: requests.Response, w: World) -> None:
    assert r.headers["Content-Range"] == f"bytes 100-{w.ids['last']}/{w.ids['size']}"


def check_range_suffix(r: requests.Response, w: World) -> None:
    size = int(w.ids["size"])
    assert r.headers["Content-Range"] == f"bytes {size - 50}-{size - 1}/{size}" and len(r.content) == 50


def check_one_byte(r: requests.Response, w: World) -> None:
    assert len(r.content) == 1


def check_whole_206(r: requests.Response, w: World) -> None:
    assert r.headers["Content-Range"] == f"bytes 0-{w.ids['last']}/{w.ids['size']}"


def check_unsatisfiable(r: requests.Response, w: World) -> None:
    assert r.headers["Content-Range"] == f"bytes */{w.ids['size']}"


def check_head(r: requests.Response, w: World) -> None:
    assert r.content == b"" and r.headers["Content-Length"] == w.ids["size"]


def check_info_album(r: requests.Response, w: World) -> None:
    data = r.json()
    ids = data["archives"][0]["assetIds"]
    members = [a.id for a in sorted(w.server._album_assets(w.server._albums[w.ids["family"]]), key=lambda a: a.seq)]
    assert ids == [*members, w.ids["motion"]], "storage order, then the motion parts"
    sizes = sum(len(w.server.asset_bytes(i)) for i in ids)
    assert data["totalSize"] == data["archives"][0]["size"] == sizes


def check_info_still(r: requests.Response, w: World) -> None:
    assert r.json()["archives"][0]["assetIds"] == [w.ids["still"], w.ids["motion"]]


def check_one_per_archive(r: requests.Response, w: World) -> None:
    assert all(len(a["assetIds"]) == 1 for a in r.json()["archives"]) and len(r.json()["archives"]) > 2


def check_stored_zip(r: requests.Response, w: World) -> None:
    infos = _zip(r)
    for info in infos:
        assert info.compress_type == zipfile.ZIP_STORED and info.flag_bits & 0x08 and info.extract_version == 20
        assert (info.create_system, info.create_version) == (3, 0x2D) and info.extra == b"" and info.comment == b""
        assert info.external_attr == (0o100644 << 16) | 0x20
    assert not any(i.is_dir() for i in infos)
    assert zipfile.ZipFile(io.BytesIO(r.content)).comment == b""


def expect_zip_names(*names: str) -> Check:
    def check(r: requests.Response, w: World) -> None:
        assert [i.filename for i in _zip(r)] == list(names)
    return check


def check_dup_bytes(r: requests.Response, w: World) -> None:
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    got = [archive.read(i) for i in archive.infolist()]
    assert got == [w.server.asset_bytes(w.ids["dup1"]), w.server.asset_bytes(w.ids["dup2"]),
                   w.server.asset_bytes(w.ids["dup1"])]


def check_zip_time(r: requests.Response, w: World) -> None:
    info = _zip(r)[0]
    modified = w.server._assets[w.ids["dup1"]].file_modified_at
    assert info.date_time == (modified.year, modified.month, modified.day, modified.hour, modified.minute,
                              modified.second // 2 * 2)


def check_gzip_zip(r: requests.Response, w: World) -> None:
    raw = r.raw.read(decode_content=False)
    assert zipfile.ZipFile(io.BytesIO(gzip.decompress(raw))).namelist() == ["IMG_0001.jpg"]


def check_many_entries(r: requests.Response, w: World) -> None:
    names = [i.filename for i in _zip(r)]
    assert len(names) == 3001 and names[0] == "IMG_0001.jpg" and names[-1] == "IMG_0001+3000.jpg"


def check_v2_validation_first(message: str) -> Check:
    def check(r: requests.Response, w: World) -> None:
        assert r.json()["message"][0] == message
    return check


def _rows() -> list[Row]:
    rows: list[Row] = []
    add = rows.append
    json_headers = {"Content-Type": re.escape("application/json; charset=utf-8"), "Content-Length": r"\d+",
                    "X-Powered-By": "Express"}

    # ---------------- 3.1.0 ----------------
    m = "3"
    add(Row(m, '| `GET /.well-known/immich` | 200 | `{"api":{"endpoint":"/api"}}` (no X-Correlation-ID header) |',
            "GET", "/.well-known/immich", None, body={"api": {"endpoint": "/api"}}, absent=("X-Correlation-ID",)))
    add(Row(m, '| `GET /api/server/ping` (no key) | 200 | `{"res":"pong"}` |', "GET", "/server/ping", None,
            body={"res": "pong"}))
    add(Row(m, '| `GET /api/server/version` (no key) | 200 | `{"major":3,"minor":1,"patch":0,"prerelease":null}` |',
            "GET", "/server/version", None, body={"major": 3, "minor": 1, "patch": 0, "prerelease": None}))
    add(Row(m, '| `GET /api/server/about` (all-key) | 200 | `{"version":"v3.1.0"', "GET", "/server/about", "all",
            keys={"version", "versionUrl", "licensed", "nodejs", "exiftool", "ffmpeg", "libvips", "imagemagick"},
            check=lambda r, w: _eq(r.json()["version"], "v3.1.0")))
    add(Row(m, '| `GET /` (Accept: application/json) | 406 | `{"message":"The route / was requested '
            'as application/json, '
            'but only returns text/html"}`', "GET", "/", None, 406, req_headers={"Accept": "application/json"},
            body={"message": "The route / was requested as application/json, but only returns text/html"}))
    add(Row(m, '| unknown `/api/nonexistent` | 404 | `{"message":"Cannot GET /api/nonexistent"}` |', "GET",
            "/nonexistent", None, 404, body={"message": "Cannot GET /api/nonexistent"}))
    add(Row(m, "Every JSON answer: `Content-Type: application/json; charset=utf-8`, `Content-Length`, a strong ETag",
            "GET", "/albums", headers={**json_headers, "ETag": r'"[0-9a-f]+-.+"', "X-Correlation-ID": r".{8}"}))
    for key, permissions in (("all", ["all"]), ("album", ["album.read"]),
                             ("download", ["album.read", "asset.read", "asset.download"])):
        add(Row(m, '`{"id","name","createdAt","updatedAt","permissions":[...]}`; `permissions` is exactly what was '
                "granted", "GET", "/api-keys/me", key, keys={"id", "name", "createdAt", "updatedAt", "permissions"},
                check=lambda r, w, p=permissions: _eq(r.json()["permissions"], p)))
    add(Row(m, "Keys seen: `albumName, description,", "GET", "/albums", check=check_album_keys_v3))
    add(Row(m, '`albumUsers[0]` = `{"user":{id,email,name,profileImagePath:"",avatarColor,profileChangedAt},'
            '"role":"owner"}`', "GET", "/albums", check=check_owner_first))
    add(Row(m, 'for a shared album the member follows (`("Admin","owner"),("Bob","viewer")`), `shared: true` for both',
            "GET", "/albums/{garden}", "bob", check=check_members))
    add(Row(m, "Bob (member, not owner) without parameters: gets the shared album", "GET", "/albums", "bob",
            check=expect_names("Grandma's Garden", "Bob's Bikes")))
    add(Row(m, "`?isOwned=false` → only shared-with-me", "GET", "/albums", "bob", params={"isOwned": "false"},
            check=expect_names("Grandma's Garden")))
    add(Row(m, "`?isOwned=true` → only owned", "GET", "/albums", "bob", params={"isOwned": "true"},
            check=expect_names("Bob's Bikes")))
    add(Row(m, "`?name=Seed%20album%202` → exact match", "GET", "/albums", params={"name": "Holidays 2023"},
            check=expect_names("Holidays 2023")))
    add(Row(m, "The 2.x parameter `?shared=true` is silently ignored (same list as\n  no parameter)", "GET", "/albums",
            "bob", params={"shared": "true"}, check=expect_names("Grandma's Garden", "Bob's Bikes")))
    add(Row(m, "`GET /api/albums/{id}?withoutAssets=true` is silently accepted (no assets either way)", "GET",
            "/albums/{family}", params={"withoutAssets": "true"}, check=lambda r, w: _eq("assets" in r.json(), False)))
    add(Row(m, "`startDate`/`endDate` came back date-truncated", "GET", "/albums", check=check_day_dates))
    add(Row(m, '`{"albumIds":[id],"page":1,"size":2,"withExif":true}` → `{"albums":{"total":0,"count":0,"items":[],'
            '"facets":[]},', "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "page": 1, "size": 2, "withExif": True}, check=check_search_page))
    add(Row(m, "`nextPage` is a **string** (`\"2\"`), `null` on the last page", "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "page": 2, "size": 4}, check=check_last_page))
    add(Row(m, "Default order is **desc** by `fileCreatedAt` (newest first)", "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"]}, check=check_desc))
    add(Row(m, '`"order":"asc"` reverses', "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "order": "asc"}, check=check_asc))
    add(Row(m, "Default `size` 250", "POST", "/search/metadata", json_body={"albumIds": ["{big}"]},
            check=check_default_size_250))
    add(Row(m, '`size:0` → 400 `{"message":"Validation failed","errors":[{"origin":"number","code":"too_small",'
            '"minimum":1,"inclusive":true,"path":["size"],"message":"Too small: expected number to be >=1"}]}`',
            "POST", "/search/metadata", status=400, json_body={"albumIds": ["{family}"], "size": 0},
            body={"message": "Validation failed", "errors": [
                {"origin": "number", "code": "too_small", "minimum": 1, "inclusive": True, "path": ["size"],
                 "message": "Too small: expected number to be >=1"}]}))
    add(Row(m, "`size:1001` → 400, same shape with `too_big … <=1000`", "POST", "/search/metadata", status=400,
            json_body={"albumIds": ["{family}"], "size": 1001}, body={"message": "Validation failed", "errors": [
                {"origin": "number", "code": "too_big", "maximum": 1000, "inclusive": True, "path": ["size"],
                 "message": "Too big: expected number to be <=1000"}]}))
    add(Row(m, "Items have no `owner`, `tags`, `stack`; `exifInfo` only with `withExif:true`", "POST",
            "/search/metadata", json_body={"albumIds": ["{family}"], "withExif": True}, check=check_search_items_v3))
    add(Row(m, "Items have no `owner`, `tags`, `stack`; `exifInfo` only with `withExif:true`", "POST",
            "/search/metadata", json_body={"albumIds": ["{family}"]}, check=check_no_exif))
    add(Row(m, "`checksum` = base64 SHA-1 of the bytes (verified)", "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "withExif": True}, check=check_checksums))
    add(Row(m, 'Album another user cannot see: 400 `{"message":"Not found or no album.read access"}`', "POST",
            "/search/metadata", "bob", 400, json_body={"albumIds": ["{holidays}"]},
            body={"message": "Not found or no album.read access"}))
    add(Row(m, "a viewer (Bob) can search the shared album", "POST", "/search/metadata", "bob",
            json_body={"albumIds": ["{garden}"]}, check=expect_items(4)))
    add(Row(m, "`GET /api/assets/{id}`: like a search item plus `owner`, `tags: []`, `stack: null`, `exifInfo`.",
            "GET", "/assets/{asset}", check=check_asset_detail_v3))
    add(Row(m, "**`Accept-Ranges: bytes`**", "GET", "/assets/{asset}/original",
            headers={**ORIGINAL_HEADERS, "X-Correlation-ID": ".{8}"}, check=check_etag_is_size_mtime))
    add(Row(m, "`Range: bytes=10-19` → **206**, `Content-Range: bytes 10-19/1481`, `Content-Length: 10`", "GET",
            "/assets/{asset}/original", status=206, req_headers={"Range": "bytes=10-19"}, check=check_range_10_19))
    add(Row(m, "`bytes=100-` → 206 `bytes 100-1480/1481`", "GET", "/assets/{asset}/original", status=206,
            req_headers={"Range": "bytes=100-"}, check=check_range_from_100))
    add(Row(m, '(`bytes=999999-`) → **404** `{"message":"Not Found"}` with `Content-Range: bytes */1481`', "GET",
            "/assets/{asset}/original", status=404, req_headers={"Range": "bytes=999999-"},
            body={"message": "Not Found"}, check=check_unsatisfiable))
    add(Row(m, "`HEAD …/original` → 200 with the same headers, no body.", "HEAD", "/assets/{asset}/original",
            headers=ORIGINAL_HEADERS, check=check_head))
    add(Row(m, '`GET /api/assets/{id}` → 400 `{"message":"Not found or no asset.read access"}`', "GET",
            "/assets/{unknown}", status=400, body={"message": "Not found or no asset.read access"}))
    add(Row(m, '`…/original` → **404 `{"message":"Not Found"}`**', "GET", "/assets/{unknown}/original",
            status=404, body={"message": "Not Found"}))
    add(Row(m, "(also for Bob asking for an asset of an album he cannot see)", "GET",
            "/assets/{holiday_asset}/original", "bob", 404, body={"message": "Not Found"}))
    add(Row(m, 'Malformed id: 400 `{"message":"Validation failed","errors":[{"origin":"string","code":"invalid_format",'
            '"format":"uuid","pattern":', "GET", "/assets/not-a-uuid", status=400,
            check=lambda r, w: _eq({k: v for k, v in r.json()["errors"][0].items() if k != "pattern"},
                                   {"origin": "string", "code": "invalid_format", "format": "uuid",
                                    "path": ["id"], "message": "Invalid UUID"})))
    for path in ("/api-keys/me", "/albums", "/assets/{asset}/original"):
        add(Row(m, '| wrong `x-api-key` (any route, also `/api-keys/me`) | 401 | `{"message":"Invalid API key"}` |',
                "GET", path, "wrong", 401, body={"message": "Invalid API key"}))
    add(Row(m, '| no credentials | 401 | `{"message":"Authentication required"}` |', "GET", "/albums", None, 401,
            body={"message": "Authentication required"}))
    add(Row(m, '| key `["album.read"]` → `POST /search/metadata` | 403 | `{"message":"Missing required permission: '
            'asset.read"}` |', "POST", "/search/metadata", "album", 403, json_body={"albumIds": ["{family}"]},
            body={"message": "Missing required permission: asset.read"}))
    add(Row(m, '| key `["album.read"]` → `GET …/original` | 403 | `{"message":"Missing required permission: '
            'asset.download"}` |', "GET", "/assets/{asset}/original", "album", 403,
            body={"message": "Missing required permission: asset.download"}))
    add(Row(m, '| 3-permission key → `GET /users/me` | 403 | `{"message":"Missing required permission: user.read"}` |',
            "GET", "/users/me", "download", 403, body={"message": "Missing required permission: user.read"}))
    add(Row(m, '| 3-permission key → `GET /server/about` | 403 | `{"message":"Missing required permission: '
            'server.about"}` |', "GET", "/server/about", "download", 403,
            body={"message": "Missing required permission: server.about"}))
    add(Row(m, '| key `["album.read"]` → `GET /server/version` | 200 | public |', "GET", "/server/version", "album"))
    add(Row(m, '| key `["album.read"]` → `GET /albums` | 200 | |', "GET", "/albums", "album"))
    add(Row(m, "`POST /api/download/info` (permission `asset.download`) → **201** (not 200)", "POST",
            "/download/info", status=201, json_body={"albumId": "{family}"}, keys={"totalSize", "archives"},
            headers={"Content-Type": re.escape("application/json; charset=utf-8")}))
    add(Row(m, "`{\"albumId\":id}` → every non-trashed album asset in storage order", "POST", "/download/info",
            status=201, json_body={"albumId": "{family}"}, check=check_info_album))
    add(Row(m, "(`[still]` → `[still, motion]`, size = both)", "POST", "/download/info", status=201,
            json_body={"assetIds": ["{still}"]}, check=check_info_still))
    add(Row(m, '`{"assetIds":[]}` → 201 `{"totalSize":0,"archives":[]}`', "POST", "/download/info", status=201,
            json_body={"assetIds": []}, body={"totalSize": 0, "archives": []}))
    add(Row(m, "`archiveSize:1` → one asset per\n  archive", "POST", "/download/info", status=201,
            json_body={"albumId": "{family}", "archiveSize": 1}, check=check_one_per_archive))
    add(Row(m, "`archiveSize:0` → 400 Validation failed\n  (`too_small`, `path:[\"archiveSize\"]`)", "POST",
            "/download/info", status=400, json_body={"albumId": "{family}", "archiveSize": 0},
            check=lambda r, w: _eq((r.json()["message"], r.json()["errors"][0]["code"], r.json()["errors"][0]["path"]),
                                   ("Validation failed", "too_small", ["archiveSize"]))))
    add(Row(m, '`{}` → 400 `{"message":"assetIds, albumId, or userId is required"}`', "POST", "/download/info",
            status=400, json_body={}, body={"message": "assetIds, albumId, or userId is required"}))
    add(Row(m, 'one unknown id among `assetIds` → 400\n  `{"message":"Not found or no asset.download access"}`', "POST",
            "/download/info", status=400, json_body={"assetIds": ["{asset}", "{unknown}"]},
            body={"message": "Not found or no asset.download access"}))
    add(Row(m, '`{"message":"Not found or no album.download access"}`', "POST", "/download/info", status=400,
            json_body={"albumId": "{unknown}"}, body={"message": "Not found or no album.download access"}))
    add(Row(m, '`assetIds:["nope"]` → 400 Validation failed\n  (`path:["assetIds",0]`, `"Invalid UUID"`)', "POST",
            "/download/info", status=400, json_body={"assetIds": ["nope"]},
            check=lambda r, w: _eq((r.json()["errors"][0]["path"], r.json()["errors"][0]["message"]),
                                   (["assetIds", 0], "Invalid UUID"))))
    add(Row(m, "key without `asset.download` → 403\n  `{\"message\":\"Missing required permission: asset.download\"}`",
            "POST", "/download/info", "album", 403, json_body={"albumId": "{family}"},
            body={"message": "Missing required permission: asset.download"}))
    archive_headers = {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked",
                       "Vary": "Accept-Encoding"}
    add(Row(m, "`POST /api/download/archive {\"assetIds\":[…]}` → **200** (not 201)", "POST", "/download/archive",
            json_body={"assetIds": ["{dup1}", "{dup2}", "{dup1}"]},
            headers={**archive_headers, "X-Correlation-ID": ".{8}"},
            absent=("Content-Length", "Content-Disposition", "ETag"), check=check_stored_zip))
    add(Row(m, "`gzip` → `Content-Encoding: gzip`", "POST", "/download/archive", json_body={"assetIds": ["{dup1}"]},
            req_headers={"Accept-Encoding": "gzip"}, headers={"Content-Encoding": "gzip"}, check=check_gzip_zip))
    add(Row(m, "Repeated names get `+N` before the extension, numbered in request order: `dup.jpg`, `dup+1.jpg`",
            "POST", "/download/archive", json_body={"assetIds": ["{dup1}", "{dup2}", "{dup1}"]},
            check=expect_zip_names("IMG_0001.jpg", "IMG_0001+1.jpg", "IMG_0001+2.jpg")))
    add(Row(m, "The same id twice → two entries `dup.jpg`,\n  `dup+1.jpg` with the same bytes", "POST",
            "/download/archive", json_body={"assetIds": ["{dup1}", "{dup2}", "{dup1}"]}, check=check_dup_bytes))
    add(Row(m, "3,001 copies of one id → `dup.jpg` … `dup+3000.jpg`", "POST", "/download/archive",
            json_body={"assetIds": ["{dup1}"] * 3001}, check=check_many_entries))
    add(Row(m, "(`a:b*c?.jpg` → `abc.jpg`, `CON.jpg` → `unnamed`)", "POST", "/download/archive",
            json_body={"assetIds": ["{colon}", "{con}"]}, check=expect_zip_names("abc.jpg", "unnamed")))
    add(Row(m, "rounded down to 2 s", "POST", "/download/archive", json_body={"assetIds": ["{dup1}"]},
            check=check_zip_time))
    add(Row(m, "Motion parts are in the ZIP only if their ids are sent.", "POST", "/download/archive",
            json_body={"assetIds": ["{still}"]}, check=lambda r, w: _eq(len(_zip(r)), 1)))
    add(Row(m, 'One unknown id in the list → 400 `{"message":"Not found or no asset.download access"}`', "POST",
            "/download/archive", status=400, json_body={"assetIds": ["{dup1}", "{unknown}"]},
            body={"message": "Not found or no asset.download access"}))
    add(Row(m, '**`{"assetIds":[]}` → 500 `{"message":"Failed to download archive"}`**', "POST", "/download/archive",
            status=500, json_body={"assetIds": []}, body={"message": "Failed to download archive"}))
    add(Row(m, '`{}` → 400 Validation failed\n  (`"Invalid input: expected array, received undefined"`)', "POST",
            "/download/archive", status=400, json_body={},
            check=lambda r, w: _eq(r.json()["errors"][0]["message"], "Invalid input: expected "
            "array, received undefined")))
    add(Row(m, "key without `asset.download` → 403 as above", "POST", "/download/archive", "album", 403,
            json_body={"assetIds": ["{dup1}"]}, body={"message": "Missing required permission: asset.download"}))
    add(Row(m, 'wrong key\n  → 401 `{"message":"Invalid API key"}`', "POST", "/download/archive", "wrong", 401,
            json_body={"assetIds": ["{dup1}"]}, body={"message": "Invalid API key"}))
    add(Row(m, '`GET /api/download/archive` → 404 `{"message":"Cannot GET /api/download/archive"}`', "GET",
            "/download/archive", status=404, body={"message": "Cannot GET /api/download/archive"}))
    add(Row(m, '10.1 MiB and 20 MiB → **500 `{"message":"Internal server error"}`** (not 413)', "POST",
            "/download/archive", status=500, raw_body=b'{"assetIds":[]' + b" " * int(10.1 * 1024 * 1024) + b"}",
            req_headers={"Content-Type": "application/json"}, body={"message": "Internal server error"}))

    # ---------------- 2.7.5 ----------------
    m = "2"

    def err(status: int, message: Any, error: str | None = None) -> dict[str, Any]:
        return _error("2", status, message, error)

    add(Row(m, '| `GET /.well-known/immich` | 200 | `{"api":{"endpoint":"/api"}}` |', "GET", "/.well-known/immich",
            None, body={"api": {"endpoint": "/api"}}))
    add(Row(m, '| `GET /api/server/ping` (no key) | 200 | `{"res":"pong"}` |', "GET", "/server/ping", None,
            body={"res": "pong"}))
    for key in (None, "download", "wrong"):
        add(Row(m, '| `GET /api/server/version` (no key, or any key, even a wrong one) | 200 | '
                '`{"major":2,"minor":7,"patch":5}` (no `prerelease` field) |', "GET", "/server/version", key,
                body={"major": 2, "minor": 7, "patch": 5}))
    add(Row(m, '| `GET /api/server/about` (all-key) | 200 | `{"version":"v2.7.5"', "GET", "/server/about", "all",
            keys={"version", "versionUrl", "licensed", "nodejs", "exiftool", "ffmpeg", "libvips", "imagemagick"},
            check=lambda r, w: _eq(r.json()["version"], "v2.7.5")))
    add(Row(m, '`{"message":"The route / was requested as application/json, but only returns text/html",'
            '"error":"Not Acceptable","statusCode":406}` (no web UI built)', "GET", "/", None, 406,
            req_headers={"Accept": "application/json"},
            body={"message": "The route / was requested as application/json, but only returns text/html",
                  "error": "Not Acceptable", "statusCode": 406}))
    add(Row(m, '| unknown `/api/nonexistent` | 404 | `{"message":"Cannot GET /api/nonexistent","error":"Not Found",'
            '"statusCode":404,"correlationId":"<8 chars>"}` |', "GET", "/nonexistent", None, 404,
            body=err(404, "Cannot GET /api/nonexistent", "Not Found")))
    add(Row(m, "**No `X-Correlation-ID` header** in 2.x", "GET", "/albums",
            headers={**json_headers, "ETag": r'"[0-9a-f]+-.+"'}, absent=("X-Correlation-ID",)))
    add(Row(m, '(e.g. `{"message":["id must be a UUID"],"error":"Bad Request","statusCode":400,"correlationId":"…"}`)',
            "GET", "/assets/not-a-uuid", status=400, body=err(400, ["id must be a UUID"], "Bad Request")))
    add(Row(m, "A body that is not valid JSON: 400 `{\"message\":\"Expected property name or '}' in JSON at position 1 "
            "(line 1 column 2)\",\"error\":\"Bad Request\",\"statusCode\":400}` (no `correlationId`)", "POST",
            "/search/metadata", status=400, raw_body=b"{x", req_headers={"Content-Type": "application/json"},
            body={"message": "Expected property name or '}' in JSON at position 1 (line 1 column 2)",
                  "error": "Bad Request", "statusCode": 400}))
    for path in ("/api-keys/me", "/albums", "/assets/{asset}/original"):
        add(Row(m, '| wrong `x-api-key` (any route, also `/api-keys/me` and `…/original`) | 401 | `{"message":"Invalid '
                'API key","error":"Unauthorized","statusCode":401}` |', "GET", path, "wrong", 401,
                body=err(401, "Invalid API key", "Unauthorized")))
    add(Row(m, '| no credentials | 401 | `{"message":"Authentication '
            'required","error":"Unauthorized","statusCode":401}` |',
            "GET", "/albums", None, 401, body=err(401, "Authentication required", "Unauthorized")))
    add(Row(m, '| `Authorization: Bearer <garbage>` | 401 | `{"message":"Invalid user token","error":"Unauthorized",'
            '"statusCode":401}` |', "GET", "/albums", None, 401, req_headers={"Authorization": "Bearer garbage"},
            body=err(401, "Invalid user token", "Unauthorized")))
    add(Row(m, '| key `["album.read"]` → `POST /search/metadata` | 403 | `{"message":"Missing required permission: '
            'asset.read","error":"Forbidden","statusCode":403}` |', "POST", "/search/metadata", "album", 403,
            json_body={"albumIds": ["{family}"]},
            body=err(403, "Missing required permission: asset.read", "Forbidden")))
    add(Row(m, '| key `["album.read"]` → `GET /assets/{id}` | 403 | `… asset.read` |', "GET",
            "/assets/{asset}", "album",
            403, body=err(403, "Missing required permission: asset.read", "Forbidden")))
    add(Row(m, '| key `["album.read"]` → `GET …/original` | 403 | `{"message":"Missing required permission: '
            'asset.download","error":"Forbidden","statusCode":403}` |', "GET", "/assets/{asset}/original", "album",
            403, body=err(403, "Missing required permission: asset.download", "Forbidden")))
    add(Row(m, '| 3-permission key → `GET /users/me` | 403 | `{"message":"Missing required '
            'permission: user.read",…}` |',
            "GET", "/users/me", "download", 403, body=err(403, "Missing required permission: user.read", "Forbidden")))
    add(Row(m, '| 3-permission key → `GET /server/about` | 403 | `{"message":"Missing required permission: '
            'server.about",…}` |', "GET", "/server/about", "download", 403,
            body=err(403, "Missing required permission: server.about", "Forbidden")))
    add(Row(m, '| key `["album.read"]` → `GET /albums`, `GET /albums/{id}` | 200 | the inline `assets` of '
            '`GET /albums/{id}` come back too', "GET", "/albums/{family}", "album",
            check=lambda r, w: _eq(len(r.json()["assets"]), r.json()["assetCount"])))
    add(Row(m, "| `?apiKey=<key>` query parameter instead of the header | 200 | works like `x-api-key` |", "GET",
            "/albums", None, params={"apiKey": "{download_key}"}, check=check_album_keys_v2))
    for key, permissions in (("all", ["all"]), ("album", ["album.read"]),
                             ("download", ["album.read", "asset.read", "asset.download"])):
        add(Row(m, '`{"id","name","createdAt","updatedAt","permissions":[...]}`; `permissions` is exactly what was '
                "granted", "GET", "/api-keys/me", key, keys={"id", "name", "createdAt", "updatedAt", "permissions"},
                check=lambda r, w, p=permissions: _eq(r.json()["permissions"], p)))
    add(Row(m, "Keys: `albumName, description, albumThumbnailAssetId, createdAt,", "GET", "/albums",
            check=check_album_keys_v2))
    add(Row(m, "**`albumUsers` lists only the\n  members, never the owner**", "GET", "/albums",
            params={"shared": "true"},
            check=check_v2_members))
    add(Row(m, "**Without parameters: only the albums the caller owns** (shared or not).", "GET", "/albums", "bob",
            check=expect_names("Bob's Bikes")))
    add(Row(m, "`?shared=true` → albums shared with the caller plus the caller's own albums that are shared", "GET",
            "/albums", "bob", params={"shared": "true"}, check=expect_names("Grandma's Garden", "Bob's Bikes")))
    add(Row(m, "`?shared=false` → the caller's own unshared albums.", "GET", "/albums", params={"shared": "false"},
            check=expect_names("Holidays 2023", "Family 2024", "Big")))
    for value in ("yes", "1", ""):
        add(Row(m, '`?shared=yes` / `?shared=1` / `?shared=` → 400 `{"message":["shared must be a boolean value"],…}`',
                "GET", "/albums", params={"shared": value}, status=400,
                body=err(400, ["shared must be a boolean value"], "Bad Request")))
    add(Row(m, "The 3.x parameters are ignored: `?isOwned=false` gives the same list as no parameter.", "GET",
            "/albums",
            "bob", params={"isOwned": "false"}, check=expect_names("Bob's Bikes")))
    add(Row(m, "`?assetId=<id>` → the albums (owned or shared with the caller) containing that asset.", "GET",
            "/albums",
            params={"assetId": "{asset}"}, check=expect_names("Family 2024")))
    add(Row(m, "`startDate`/`endDate` day-truncated", "GET", "/albums", check=check_day_dates))
    add(Row(m, "**Inlines the album's assets** in `assets` by default", "GET", "/albums/{family}",
            check=lambda r, w: _eq(len(r.json()["assets"]), 6)))
    add(Row(m, "`?withoutAssets=true` →\n  `assets: []`, everything else identical", "GET", "/albums/{family}",
            params={"withoutAssets": "true"}, check=lambda r, w: _eq((r.json()["assets"], r.json()["assetCount"]),
                                                                      ([], 6))))
    add(Row(m, "`withoutAssets=yes|1|` (empty) → 400\n  `{\"message\":[\"withoutAssets must be a boolean value\"],…}`",
            "GET", "/albums/{family}", params={"withoutAssets": "yes"}, status=400,
            body=err(400, ["withoutAssets must be a boolean value"], "Bad Request")))
    add(Row(m, "Inline assets: newest `fileCreatedAt` first", "GET", "/albums/{family}", check=check_inline_v2))
    add(Row(m, "A shared album (owner or viewer asking) also has `contributorCounts: [{\"userId\":<owner id>,"
            "\"assetCount\":3}]`", "GET", "/albums/{garden}", "bob", check=check_contributors))
    add(Row(m, "an unshared one has no such key", "GET", "/albums/{family}",
            check=lambda r, w: _eq("contributorCounts" in r.json(), False)))
    add(Row(m, "The viewer (Bob) gets the shared album with all its assets inlined", "GET", "/albums/{garden}", "bob",
            check=lambda r, w: _eq(len(r.json()["assets"]), 4)))
    add(Row(m, "Album another user cannot see, or unknown id: 400 `{\"message\":\"Not found or no album.read access\","
            "\"error\":\"Bad Request\",\"statusCode\":400}`", "GET", "/albums/{holidays}", "bob", 400,
            body=err(400, "Not found or no album.read access", "Bad Request")))
    add(Row(m, "Album another user cannot see, or unknown id: 400", "GET", "/albums/{unknown}", status=400,
            body=err(400, "Not found or no album.read access", "Bad Request")))
    add(Row(m, 'Malformed id: 400 `{"message":["id must be a UUID"],"error":"Bad Request","statusCode":400}`.', "GET",
            "/albums/nope", status=400, body=err(400, ["id must be a UUID"], "Bad Request")))
    add(Row(m, '`{"albumIds":[id],"page":1,"size":2,"withExif":true}` → `{"albums":{"total":0,"count":0,"items":[],'
            '"facets":[]},', "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "page": 1, "size": 2, "withExif": True}, check=check_search_page))
    add(Row(m, "a page past the end → 200 with `items: []`, `nextPage: null`", "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "page": 9, "size": 2},
            check=lambda r, w: _eq((r.json()["assets"]["items"], r.json()["assets"]["nextPage"]), ([], None))))
    add(Row(m, "`size` omitted returned all 5", "POST", "/search/metadata", json_body={"albumIds": ["{big}"]},
            check=check_all_in_one))
    add(Row(m, "`size:1000` accepted", "POST", "/search/metadata", json_body={"albumIds": ["{family}"], "size": 1000},
            check=check_last_page))
    add(Row(m, "Default order **desc** by `fileCreatedAt`", "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"]}, check=check_desc))
    add(Row(m, '`"order":"asc"` reverses', "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "order": "asc"}, check=check_asc))
    add(Row(m, "Bob searching the album shared with him (all assets owned by the sharer) →\n  200 with **0 items**",
            "POST", "/search/metadata", "bob", json_body={"albumIds": ["{garden}"]}, check=expect_items(0)))
    for album in ("{holidays}", "{unknown}"):
        add(Row(m, "an album he cannot see, or an unknown album id → 200 with 0 items", "POST", "/search/metadata",
                "bob", json_body={"albumIds": [album]}, check=expect_items(0)))
    validation = [
        ({"size": 0}, ["size must not be less than 1"]), ({"size": -1}, ["size must not be less than 1"]),
        ({"size": 1001}, ["size must not be greater than 1000"]), ({"size": 2.5}, ["size must be an integer number"]),
        ({"size": "abc"}, ["size must not be greater than 1000", "size must not be less than 1",
                           "size must be an integer number"]),
        ({"size": None}, ["size must not be greater than 1000", "size must not be less than 1",
                          "size must be an integer number"]),
        ({"page": 0}, ["page must not be less than 1"]), ({"page": 1.5}, ["page must be an integer number"]),
        ({"page": 0, "size": 0}, ["page must not be less than 1", "size must not be less than 1"]),
        ({"albumIds": ["nope"]}, ["each value in albumIds must be a UUID"]),
        ({"albumIds": UNKNOWN_ID}, ["albumIds must be an array"]),
        ({"order": "bad"}, ["order must be one of the following values: asc, desc"]),
        ({"order": "ASC"}, ["order must be one of the following values: asc, desc"]),
        ({"type": "FOO"}, ["type must be one of the following values: IMAGE, VIDEO, AUDIO, OTHER"]),
        ({"withExif": "yes"}, ["withExif must be a boolean value"]),
    ]
    for extra, messages in validation:
        add(Row(m, "Validation (400, `message` a list, failed constraints of one field in the order max, min, integer)",
                "POST", "/search/metadata", status=400, json_body={"albumIds": ["{family}"], **extra},
                body=err(400, messages, "Bad Request")))
    for extra in ({"size": "5"}, {"page": "2"}, {"size": True}, {"withExif": "true"}, {"unknownField": 1}):
        add(Row(m, 'Accepted by conversion: `size:"5"` (→ 5), `page:"2"`, `size:true` (→ 1), `withExif:"true"`; '
                "unknown fields ignored.", "POST", "/search/metadata", json_body={"albumIds": ["{family}"], **extra}))
    add(Row(m, "`size:true` (→ 1)", "POST", "/search/metadata", json_body={"albumIds": ["{family}"], "size": True},
            check=expect_items(1)))
    add(Row(m, "Items: the inline-asset keys above (incl. `deviceAssetId`, `deviceId`, `duration: "
            "\"0:00:00.00000\"` for an "
            "image),\n  timestamps `…000Z`", "POST", "/search/metadata",
            json_body={"albumIds": ["{family}"], "withExif": True}, check=check_search_items_v2))
    add(Row(m, "`GET /api/assets/{id}`: like a search item plus `owner` (with a PostgreSQL-form `profileChangedAt`), "
            "`tags: []`,\n  `unassignedFaces: []`, `stack: null`, `exifInfo`.", "GET", "/assets/{asset}",
            check=check_asset_detail_v2))
    add(Row(m, 'Unknown or not-visible id: 400 `{"message":"Not found or no asset.read access",…}`', "GET",
            "/assets/{unknown}", status=400, body=err(400, "Not found or no asset.read access", "Bad Request")))
    add(Row(m, "`GET …/original` → 200 with `Content-Type: image/jpeg`, `Content-Length: 642`", "GET",
            "/assets/{asset}/original", headers=ORIGINAL_HEADERS, absent=("X-Correlation-ID",),
            check=check_etag_is_size_mtime))
    add(Row(m, "Bob gets the originals of the album shared with him (200).", "GET",
            "/assets/{garden_asset}/original", "bob"))
    add(Row(m, "**Range works**: `bytes=10-19` → 206 `Content-Range: bytes 10-19/642`, `Content-Length: 10`", "GET",
            "/assets/{asset}/original", status=206, req_headers={"Range": "bytes=10-19"}, check=check_range_10_19))
    add(Row(m, "`bytes=100-` → 206\n  `bytes 100-641/642`", "GET", "/assets/{asset}/original", status=206,
            req_headers={"Range": "bytes=100-"}, check=check_range_from_100))
    add(Row(m, "`bytes=-50` → 206 `bytes 592-641/642`", "GET", "/assets/{asset}/original", status=206,
            req_headers={"Range": "bytes=-50"}, check=check_range_suffix))
    add(Row(m, "`bytes=641-` → 206 (1 byte)", "GET", "/assets/{asset}/original", status=206,
            req_headers={"Range": "bytes={last}-"}, check=check_one_byte))
    add(Row(m, "`bytes=0-999999` → 206 `bytes 0-641/642`", "GET", "/assets/{asset}/original", status=206,
            req_headers={"Range": "bytes=0-999999"}, check=check_whole_206))
    for spec_text in ("bytes={size}-", "bytes=999999-", "bytes=999990-999999", "bytes=5-2", "bytes=abc"):
        add(Row(m, "**Unsatisfiable range** (`bytes=642-`, `bytes=999999-`, `bytes=700-800`, `bytes=5-2`, `bytes=abc`) "
                "→ **500**", "GET", "/assets/{asset}/original", status=500, req_headers={"Range": spec_text},
                body={"message": "Internal server error", "statusCode": 500},
                headers={"Content-Type": re.escape("image/jpeg; charset=utf-8"), "Cache-Control": "none"},
                check=check_unsatisfiable))
    for spec_text in ("bytes=0-1,5-6", "items=0-5", "BYTES=0-4"):
        add(Row(m, "Ignored Range headers (200, whole file): several ranges `bytes=0-1,5-6`, another unit `items=0-5`, "
                "upper case `BYTES=0-4`.", "GET", "/assets/{asset}/original", req_headers={"Range": spec_text},
                check=lambda r, w: _eq(len(r.content), int(w.ids["size"]))))
    add(Row(m, "`If-Range` equal to the (weak) ETag + `Range: bytes=0-9` → 206", "GET", "/assets/{asset}/original",
            status=206, req_headers={"Range": "bytes=0-9", "If-Range": "{etag}"}))
    add(Row(m, "a stale `If-Range` → 200 whole file.", "GET", "/assets/{asset}/original",
            req_headers={"Range": "bytes=0-9", "If-Range": 'W/"1-1"'}))
    add(Row(m, "`If-None-Match: <etag>` → 304.", "GET", "/assets/{asset}/original", status=304,
            req_headers={"If-None-Match": "{etag}"}))
    add(Row(m, "`HEAD …/original` → 200 with the same headers, no body.", "HEAD", "/assets/{asset}/original",
            headers=ORIGINAL_HEADERS, check=check_head))
    add(Row(m, '**400 `{"message":"Not found or no asset.download access","error":"Bad Request","statusCode":400}`**\n'
            "  with `Cache-Control: none`", "GET", "/assets/{unknown}/original", status=400,
            body=err(400, "Not found or no asset.download access", "Bad Request"), headers={"Cache-Control": "none"}))
    add(Row(m, 'Malformed id: 400 `{"message":["id must be a UUID"],…}`.', "GET", "/assets/nope/original", status=400,
            body=err(400, ["id must be a UUID"], "Bad Request")))
    add(Row(m, "`POST /api/download/info` → **201**", "POST", "/download/info", status=201,
            json_body={"albumId": "{family}"}, check=check_info_album))
    add(Row(m, "(`[still]` → `[still, motion]`)", "POST", "/download/info", status=201,
            json_body={"assetIds": ["{still}"]}, check=check_info_still))
    add(Row(m, '`{"assetIds":[]}` → 201 `{"totalSize":0,"archives":[]}`', "POST", "/download/info", status=201,
            json_body={"assetIds": []}, body={"totalSize": 0, "archives": []}))
    add(Row(m, "`archiveSize:0` → 400 `[\"archiveSize must be a positive number\"]`", "POST", "/download/info",
            status=400, json_body={"albumId": "{family}", "archiveSize": 0},
            body=err(400, ["archiveSize must be a positive number"], "Bad Request")))
    add(Row(m, '`{}` → 400 `"assetIds, albumId, or userId is required"`', "POST", "/download/info", status=400,
            json_body={}, body=err(400, "assetIds, albumId, or userId is required", "Bad Request")))
    add(Row(m, 'unknown album → 400 `"Not found or no album.download access"`', "POST", "/download/info", status=400,
            json_body={"albumId": "{unknown}"}, body=err(400, "Not found or no album.download access", "Bad Request")))
    add(Row(m, '`assetIds:["nope"]` → 400\n  `["each value in assetIds must be a UUID"]`', "POST", "/download/info",
            status=400, json_body={"assetIds": ["nope"]},
            body=err(400, ["each value in assetIds must be a UUID"], "Bad Request")))
    add(Row(m, '`{"message":"Missing required permission: asset.download","error":"Forbidden","statusCode":403,…}`',
            "POST", "/download/info", "album", 403, json_body={"albumId": "{family}"},
            body=err(403, "Missing required permission: asset.download", "Forbidden")))
    add(Row(m, "`POST /api/download/archive {\"assetIds\":[…]}` → **200**, `Content-Type: application/octet-stream`",
            "POST", "/download/archive", json_body={"assetIds": ["{dup1}", "{dup2}", "{dup1}"]},
            headers={**archive_headers, "x-immich-cid": ".{8}"},
            absent=("Content-Length", "Content-Disposition", "X-Correlation-ID"), check=check_stored_zip))
    add(Row(m, "Repeats → `dup.jpg`, `dup+1.jpg`, `dup+2.jpg` in request\n  order", "POST", "/download/archive",
            json_body={"assetIds": ["{dup1}", "{dup2}", "{dup1}"]},
            check=expect_zip_names("IMG_0001.jpg", "IMG_0001+1.jpg", "IMG_0001+2.jpg")))
    add(Row(m, "(no sanitizing: `CON.jpg` stays `CON.jpg`)", "POST", "/download/archive",
            json_body={"assetIds": ["{colon}", "{con}"]}, check=expect_zip_names("b*c?.jpg", "CON.jpg")))
    add(Row(m, "Entry time = `fileModifiedAt` (server TZ=UTC), rounded down to 2 s.", "POST", "/download/archive",
            json_body={"assetIds": ["{dup1}"]}, check=check_zip_time))
    add(Row(m, "`Accept-Encoding: gzip` → `Content-Encoding: gzip`", "POST", "/download/archive",
            json_body={"assetIds": ["{dup1}"]}, req_headers={"Accept-Encoding": "gzip"},
            headers={"Content-Encoding": "gzip"}, check=check_gzip_zip))
    add(Row(m, "**`{\"assetIds\":[]}` → 500\n  `{\"message\":\"Failed to download "
            "archive\",\"error\":\"Internal Server Error\","
            "\"statusCode\":500,\"correlationId\":…}`**", "POST", "/download/archive", status=500,
            json_body={"assetIds": []}, body=err(500, "Failed to download archive", "Internal Server Error")))
    add(Row(m, '`{}` → 400 `["each value in assetIds must be a UUID","assetIds should not be '
            'empty","assetIds must be an '
            'array"]`', "POST", "/download/archive", status=400, json_body={},
            body=err(400, ["each value in assetIds must be a UUID", "assetIds should not be empty",
                           "assetIds must be an array"], "Bad Request")))
    add(Row(m, 'One unknown id → 400 `"Not found or no asset.download access"`', "POST", "/download/archive",
            status=400, json_body={"assetIds": ["{dup1}", "{unknown}"]},
            body=err(400, "Not found or no asset.download access", "Bad Request")))
    add(Row(m, "10.1 MiB → **500 `{\"message\":\"Internal server error\",\"statusCode\":500}`**", "POST",
            "/download/archive", status=500, raw_body=b'{"assetIds":[]' + b" " * int(10.1 * 1024 * 1024) + b"}",
            req_headers={"Content-Type": "application/json"}, body={"message": "Internal server error",
                                                                   "statusCode": 500}))
    return rows


def _squeeze(text: str) -> str:
    """Line wrapping in the documents does not matter to a quote."""
    return re.sub(r"\s+", " ", text)


def _eq(got: Any, expected: Any) -> None:
    assert got == expected, f"{got!r} != {expected!r}"


def check_inline_v2(r: requests.Response, w: World) -> None:
    expected = {"id", "createdAt", "deviceAssetId", "ownerId", "deviceId", "libraryId", "type", "originalPath",
                "originalFileName", "originalMimeType", "thumbhash", "fileCreatedAt", "fileModifiedAt",
                "localDateTime", "updatedAt", "isFavorite", "isArchived", "isTrashed", "visibility", "duration",
                "exifInfo", "livePhotoVideoId", "people", "checksum", "isOffline", "hasMetadata", "duplicateId",
                "resized", "width", "height", "isEdited"}
    assets = r.json()["assets"]
    assert assets and all(set(a) == expected for a in assets)
    pg = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?\+00:00"
    for asset in assets:
        for name in ("createdAt", "fileCreatedAt", "fileModifiedAt", "updatedAt"):
            assert re.fullmatch(pg, asset[name]), asset[name]
    taken = [a["fileCreatedAt"] for a in assets]
    assert taken == sorted(taken, reverse=True)
    assert re.fullmatch(r"[\d-]+T[\d:]+\.\d{3}Z", r.json()["updatedAt"]), "album-level dates are …Z"


def check_contributors(r: requests.Response, w: World) -> None:
    assert r.json()["contributorCounts"] == [{"userId": w.lib.admin.id, "assetCount": 4}]


def check_search_items_v2(r: requests.Response, w: World) -> None:
    for item in r.json()["assets"]["items"]:
        assert item["duration"] == "0:00:00.00000" and {"deviceAssetId", "deviceId"} <= set(item)
        assert re.fullmatch(r"[\d-]+T[\d:]+\.\d{3}Z", item["fileCreatedAt"])
        assert re.fullmatch(r"[\d-]+T[\d:]+\+00:00", item["exifInfo"]["dateTimeOriginal"])


ROWS = _rows()


@pytest.mark.parametrize("row", ROWS, ids=[f"{i:03d}-{r.id}" for i, r in enumerate(ROWS)])
def test_observed_row(worlds, row: Row) -> None:  # type: ignore[no-untyped-def]
    document = _squeeze((IMMICH / OBSERVED_FILES[row.mode]).read_text(encoding="utf-8"))
    assert _squeeze(row.quote) in document, (
        f"the quoted line is no longer in {OBSERVED_FILES[row.mode]}: {row.quote!r}")
    world = worlds[row.mode]
    ids = {**world.ids, "download_key": world.lib.download_key,
           "garden_asset": world.lib.assets["Grandma's Garden"][0]}
    if "{etag}" in json.dumps(row.req_headers or {}):
        ids["etag"] = call(world, "HEAD", f"/assets/{ids['asset']}/original").headers["ETag"]
    response = call(
        world, row.method, row.path.format(**ids), row.key,
        json_body=_fill(row.json_body, ids), data=row.raw_body, params=_fill(row.params, ids),
        headers=_fill(row.req_headers, ids), stream=row.check is check_gzip_zip,
    )
    assert response.status_code == row.status, (response.status_code, response.text[:300])
    for name, pattern in row.headers.items():
        assert name in response.headers, f"header {name} missing: {dict(response.headers)}"
        assert re.fullmatch(pattern, response.headers[name]), (name, response.headers[name])
    for name in row.absent:
        assert name not in response.headers, f"unexpected header {name}"
    if row.body is not None or row.keys is not None:
        body = response.json()
        if row.mode == "2" and isinstance(body, dict) and "statusCode" in body and "correlationId" in body:
            assert re.fullmatch(r"[0-9a-f]{8}", body.pop("correlationId"))
        if row.body is not None:
            assert body == row.body
        if row.keys is not None:
            for item in body if isinstance(body, list) else [body]:
                assert set(item) == row.keys
    if row.check is not None:
        row.check(response, world)


# -- rows that change the library: each on a server of its own ------------------------------


@pytest.mark.parametrize("mode", ["3", "2"], ids=["immich3", "immich2"])
def test_observed_trash_behaviour(mode: str) -> None:
    """3.1: "Album `assetCount` drops a trashed asset immediately (5 → 4)"; "A trashed asset disappears from the
    album search at once; `GET /api/assets/{id}` still returns it with `isTrashed: true`." 2.7.5: "a trashed asset
    is left out at once (`assetCount` matches: 5 → 4 right after trashing one)"; "A trashed asset still answers 200
    with `isTrashed: true`"; "A trashed asset's original still downloads (200)"; download info: "a trashed id is
    left out (`[trashed]` → 201 `{"totalSize":0,"archives":[]}`)"; archive: "a trashed asset's id is still served".
    """
    _require_shared()
    document = (IMMICH / OBSERVED_FILES[mode]).read_text(encoding="utf-8")
    assert "5 → 4" in document and "isTrashed: true" in document
    with DemoServer(mode=mode) as server:
        owner = server.add_user("Admin", "admin@example.com")
        key = server.add_key(owner, ["album.read", "asset.read", "asset.download"])
        album = server.add_album(owner, "Five")
        ids = [server.add_asset(owner, f"P{i}.jpg", albums=[album]) for i in range(5)]
        headers = {"x-api-key": key}
        base = server.api_url

        def count() -> int:
            return requests.get(f"{base}/albums/{album}", headers=headers, timeout=10).json()["assetCount"]

        assert count() == 5
        server.trash_asset(ids[0])
        assert count() == 4
        if mode == "3":
            listed = requests.post(f"{base}/search/metadata", headers=headers, json={"albumIds": [album]},
                                   timeout=10).json()["assets"]["items"]
        else:
            listed = requests.get(f"{base}/albums/{album}", headers=headers, timeout=10).json()["assets"]
        assert ids[0] not in {a["id"] for a in listed} and len(listed) == 4
        assert requests.get(f"{base}/assets/{ids[0]}", headers=headers, timeout=10).json()["isTrashed"] is True
        assert requests.get(f"{base}/assets/{ids[0]}/original", headers=headers, timeout=10).status_code == 200
        info = requests.post(f"{base}/download/info", headers=headers, json={"assetIds": [ids[0]]}, timeout=10)
        assert info.status_code == 201 and info.json() == {"totalSize": 0, "archives": []}
        archive = requests.post(f"{base}/download/archive", headers=headers, json={"assetIds": [ids[0]]}, timeout=10)
        assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == ["P0.jpg"]


def test_every_observed_section_has_rows() -> None:
    """A guard against silently dropping a section of the documents from the table."""
    covered = {(r.mode, r.path.split("/")[1] if r.path != "/" else "/") for r in ROWS}
    for mode in ("3", "2"):
        for area in (".well-known", "server", "api-keys", "albums", "search", "assets", "download", "users", "/"):
            assert (mode, area) in covered, (mode, area)
    assert len(ROWS) >= 150
    assert uuid.UUID(UNKNOWN_ID).version == 4
