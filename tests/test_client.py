"""Immich client against recorded answers (responses), for both API generations."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
import requests
import responses

from tray_sync.sync.client import (
    ImmichClient,
    RetryPolicy,
    ServerVersion,
    candidate_bases,
    discover,
)
from tray_sync.sync.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    OfflineError,
    PermissionMissingError,
    ServerError,
    UnsupportedServerError,
)
from tray_sync.sync.timeparse import parse_timestamp

API = "http://immich.test/api"
KEY = "k" * 43
FAST = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, max_retry_after=0.01)


def client(version: str = "3.1.0", **kwargs: object) -> ImmichClient:
    c = ImmichClient(API, KEY, **{"retry": FAST, **kwargs})  # type: ignore[arg-type]
    c._version = ServerVersion.parse(version)
    return c


def asset_json(asset_id: str, name: str = "a.jpg", data: bytes = b"x", **extra: object) -> dict[str, object]:
    return {
        "id": asset_id,
        "originalFileName": name,
        "checksum": base64.b64encode(hashlib.sha1(data).digest()).decode(),
        "fileCreatedAt": "2025-03-01T16:00:00.000Z",
        "updatedAt": "2025-03-01T16:00:00.000Z",
        "type": "IMAGE",
        "livePhotoVideoId": None,
        "exifInfo": {"fileSizeInByte": len(data)},
        **extra,
    }


ALBUM = {
    "id": "a1",
    "albumName": "Family",
    "assetCount": 2,
    "updatedAt": "2026-11-23T20:45:36.123Z",
    "lastModifiedAssetTimestamp": "2026-11-23T20:45:36.123Z",
    "shared": False,
    "albumUsers": [],
}


# -- URL handling -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("photos.example.com", ["https://photos.example.com", "http://photos.example.com"]),
        ("https://host:2283/", ["https://host:2283"]),
        ("https://host/api", ["https://host"]),
        ("https://host/api/", ["https://host"]),
        ("HTTP://Host/immich/api", ["http://Host/immich"]),
    ],
)
def test_candidate_bases(typed: str, expected: list[str]) -> None:
    assert candidate_bases(typed) == expected


@pytest.mark.parametrize("typed", ["", "   ", "ftp://host", "https://"])
def test_candidate_bases_refuses_nonsense(typed: str) -> None:
    with pytest.raises(ConfigError):
        candidate_bases(typed)


@responses.activate
def test_discover_uses_well_known_then_pings() -> None:
    responses.get("https://photos.example.com/.well-known/immich", json={"api": {"endpoint": "/api"}})
    responses.get("https://photos.example.com/api/server/ping", json={"res": "pong"})
    responses.get("https://photos.example.com/api/server/version",
                  json={"major": 3, "minor": 1, "patch": 0, "prerelease": None})
    found = discover("photos.example.com")
    assert found.api_url == "https://photos.example.com/api"
    assert found.version == ServerVersion(3, 1, 0)
    assert "x-api-key" not in responses.calls[0].request.headers


@responses.activate
def test_discover_falls_back_to_api_and_http() -> None:
    responses.get("https://nas.local:2283/.well-known/immich",
                  body=requests.exceptions.ConnectionError("Connection refused"))
    responses.get("https://nas.local:2283/api/server/ping",
                  body=requests.exceptions.ConnectionError("Connection refused"))
    responses.get("http://nas.local:2283/.well-known/immich", status=404, json={"message": "nope"})
    responses.get("http://nas.local:2283/api/server/ping", json={"res": "pong"})
    responses.get("http://nas.local:2283/api/server/version", json={"major": 2, "minor": 7, "patch": 5})
    found = discover("nas.local:2283")
    assert found.api_url == "http://nas.local:2283/api"
    assert found.version.inlines_album_assets


@responses.activate
def test_discover_refuses_another_host() -> None:
    responses.get("https://photos.example.com/.well-known/immich",
                  json={"api": {"endpoint": "https://evil.example.net/api"}})
    with pytest.raises(ServerError, match="another host"):
        discover("https://photos.example.com")


@responses.activate
def test_discover_refuses_old_server() -> None:
    responses.get("https://old.example.com/.well-known/immich", json={"api": {"endpoint": "/api"}})
    responses.get("https://old.example.com/api/server/ping", json={"res": "pong"})
    responses.get("https://old.example.com/api/server/version", json={"major": 1, "minor": 132, "patch": 3})
    with pytest.raises(UnsupportedServerError, match="too old"):
        discover("https://old.example.com")


@responses.activate
def test_discover_not_immich() -> None:
    responses.get("https://blog.example.com/.well-known/immich", status=404, body="<html>")
    responses.get("https://blog.example.com/api/server/ping", status=200, body="<html>hello</html>",
                  content_type="text/html")
    with pytest.raises(ServerError, match=r"^https://blog.example.com answered, but it is not an Immich server"):
        discover("https://blog.example.com")


# -- key and permissions -----------------------------------------------------------------


@responses.activate
def test_check_key_names_missing_permissions() -> None:
    responses.get(f"{API}/api-keys/me", json={"id": "1", "name": "k", "permissions": ["album.read"]})
    check = client().check_key()
    assert check.missing == ["asset.read", "asset.download"]
    assert responses.calls[0].request.headers["x-api-key"] == KEY
    assert responses.calls[0].request.headers["User-Agent"].startswith("immich-tray-sync/")


@responses.activate
def test_all_permission_misses_nothing() -> None:
    responses.get(f"{API}/api-keys/me", json={"id": "1", "name": "k", "permissions": ["all"]})
    assert client().check_key().missing == []


@pytest.mark.parametrize("body", [{"message": "Invalid API key"},
                                  {"message": "Invalid API key", "error": "Unauthorized", "statusCode": 401}])
@responses.activate
def test_invalid_key_is_auth_error(body: dict[str, object]) -> None:
    responses.get(f"{API}/api-keys/me", status=401, json=body)
    with pytest.raises(AuthError, match="rejected the API key") as info:
        client().check_key()
    assert KEY not in str(info.value)


@responses.activate
def test_missing_permission_is_named() -> None:
    responses.post(f"{API}/search/metadata", status=403,
                   json={"message": "Missing required permission: asset.read"})
    with pytest.raises(PermissionMissingError, match=r"asset\.read") as info:
        list(client()._search_album("a1"))
    assert info.value.missing == ["asset.read"]


# -- albums --------------------------------------------------------------------------------


@responses.activate
def test_albums_3x_one_request() -> None:
    responses.get(f"{API}/albums", json=[ALBUM])
    albums = client("3.1.0").albums()
    assert [a.name for a in albums] == ["Family"]
    assert len(responses.calls) == 1
    assert albums[0].fingerprint == "2026-11-23T20:45:36.123Z|2|2026-11-23T20:45:36.123Z"


@responses.activate
def test_albums_2x_merges_shared() -> None:
    shared = {**ALBUM, "id": "a2", "albumName": "Shared with me", "shared": True}
    own_shared = {**ALBUM, "shared": True}
    responses.get(f"{API}/albums", match=[responses.matchers.query_param_matcher({})], json=[ALBUM])
    responses.get(f"{API}/albums", match=[responses.matchers.query_param_matcher({"shared": "true"})],
                  json=[shared, own_shared])
    albums = client("2.7.5").albums()
    assert sorted(a.name for a in albums) == ["Family", "Shared with me"]


@responses.activate
def test_search_follows_next_page_and_dedupes() -> None:
    page1 = {"assets": {"items": [asset_json("1"), asset_json("2")], "nextPage": "2"}}
    page2 = {"assets": {"items": [asset_json("2"), asset_json("3")], "nextPage": None}}  # "2" shifted
    responses.post(f"{API}/search/metadata", json=page1)
    responses.post(f"{API}/search/metadata", json=page2)
    assets = client().album_assets(_album())
    assert [a.id for a in assets] == ["1", "2", "3"]
    bodies = [json.loads(c.request.body) for c in responses.calls]
    assert bodies[0] == {"albumIds": ["a1"], "page": 1, "size": 1000, "withExif": True}
    assert bodies[1]["page"] == 2


def _album():  # type: ignore[no-untyped-def]
    return ImmichClient._album(ALBUM)


@responses.activate
def test_2x_lists_inline_assets() -> None:
    album = {**ALBUM, "assets": [asset_json("1", fileCreatedAt="2025-03-01T16:00:00+00:00"),
                                 asset_json("2"), asset_json("1")]}
    responses.get(f"{API}/albums/a1", json=album)
    assets = client("2.7.5").album_assets(_album())
    assert [a.id for a in assets] == ["1", "2"]
    assert not [c for c in responses.calls if "search" in c.request.url]


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-23T21:30:46.991917+00:00", "2026-11-23T21:30:42.15687+00:00", "2025-03-01T16:00:00+00:00",
     "2026-11-23T20:45:36.123Z", "2026-11-23T00:00:00.000Z", "2026-11-23T20:45:36Z"],
)
def test_timestamps_in_every_form(stamp: str) -> None:
    parsed = parse_timestamp(stamp)
    assert parsed.tzinfo is not None and parsed.year in (2025, 2026)


# -- errors and retries --------------------------------------------------------------------


@responses.activate
def test_5xx_retried_then_succeeds() -> None:
    responses.get(f"{API}/albums", status=502, json={"message": "Bad gateway"})
    responses.get(f"{API}/albums", json=[ALBUM])
    assert len(client().albums()) == 1
    assert len(responses.calls) == 2


@responses.activate
def test_429_honours_retry_after() -> None:
    responses.get(f"{API}/albums", status=429, headers={"Retry-After": "0"}, json={"message": "slow down"})
    responses.get(f"{API}/albums", json=[ALBUM])
    assert len(client().albums()) == 1


@responses.activate
def test_5xx_gives_up_after_attempts() -> None:
    for _ in range(3):
        responses.get(f"{API}/albums", status=503, json={"message": "down"})
    with pytest.raises(ServerError, match="HTTP 503") as info:
        client().albums()
    assert info.value.retryable
    assert len(responses.calls) == 3


@responses.activate
def test_connection_error_is_offline() -> None:
    responses.get(f"{API}/albums", body=requests.exceptions.ConnectionError("[Errno 111] Connection refused"))
    with pytest.raises(OfflineError, match="Cannot reach"):
        client(retry=RetryPolicy(attempts=1)).albums()


@responses.activate
def test_html_instead_of_json() -> None:
    responses.get(f"{API}/albums", body="<html>login</html>", content_type="text/html")
    with pytest.raises(ServerError, match="did not answer with JSON"):
        client().albums()


@responses.activate
def test_asset_gone_3x_and_2x() -> None:
    responses.get(f"{API}/assets/x/original", status=404, json={"message": "Not Found"})
    with pytest.raises(NotFoundError):
        client("3.1.0").download("x", io.BytesIO())
    responses.get(f"{API}/assets/y/original", status=400,
                  json={"message": "Not found or no asset.download access", "error": "Bad Request",
                        "statusCode": 400})
    with pytest.raises(NotFoundError):
        client("2.7.5").download("y", io.BytesIO())


@responses.activate
def test_redirect_to_other_origin_never_carries_key() -> None:
    responses.get(f"{API}/albums", status=302, headers={"Location": "https://elsewhere.example/api/albums"})
    responses.get("https://elsewhere.example/api/albums", json=[ALBUM])
    with pytest.raises(ServerError, match="redirected to another address"):
        client().albums()
    assert all("elsewhere" not in c.request.url for c in responses.calls)


@responses.activate
def test_same_origin_redirect_followed_with_key() -> None:
    responses.get(f"{API}/albums", status=307, headers={"Location": "/api/albums2"})
    responses.get("http://immich.test/api/albums2", json=[ALBUM])
    assert len(client().albums()) == 1
    assert responses.calls[1].request.headers["x-api-key"] == KEY


# -- downloads -------------------------------------------------------------------------------


@responses.activate
def test_download_streams_without_gzip() -> None:
    responses.get(f"{API}/assets/a/original", body=b"hello world")
    sink = io.BytesIO()
    start = client().download("a", sink)
    assert start == 0 and sink.getvalue() == b"hello world"
    request = responses.calls[0].request
    assert request.headers["Accept-Encoding"] == "identity"
    assert "Range" not in request.headers


@responses.activate
def test_download_resumes_with_range() -> None:
    responses.get(f"{API}/assets/a/original", status=206, body=b"world",
                  headers={"Content-Range": "bytes 6-10/11"})
    sink = io.BytesIO(b"hello ")
    assert client().download("a", sink, offset=6) == 6
    assert sink.getvalue() == b"hello world"
    assert responses.calls[0].request.headers["Range"] == "bytes=6-"


@pytest.mark.parametrize("refusal", [404, 500])
@responses.activate
def test_refused_range_restarts_from_zero_once(refusal: int) -> None:
    responses.get(f"{API}/assets/a/original", status=refusal, json={"message": "Not Found"})
    responses.get(f"{API}/assets/a/original", body=b"hello world")
    sink = io.BytesIO(b"hello ")
    assert client().download("a", sink, offset=6) == 0
    assert sink.getvalue() == b"hello world"
    assert "Range" not in responses.calls[1].request.headers


@responses.activate
def test_ignored_range_restarts_from_zero() -> None:
    responses.get(f"{API}/assets/a/original", status=200, body=b"hello world")
    sink = io.BytesIO(b"hello ")
    assert client().download("a", sink, offset=6) == 0
    assert sink.getvalue() == b"hello world"


def test_repr_hides_key() -> None:
    assert KEY not in repr(client())
