"""The built-in Immich-compatible server itself, in 3.x and 2.x mode (fixtures in conftest.py).

What it must do is what the real servers did (../shared/immich/OBSERVED*.md); the contract
tests replay those rows. These tests cover the server's own behaviour and its test hooks.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.e2e_helpers import sha1_b64
from tray_sync.demo.server import DemoServer, Fault, sanitize_filename, zip_stream


def v3(server: DemoServer) -> bool:
    return server.version[0] >= 3


def api(server: DemoServer, method: str, path: str, key: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["x-api-key"] = key
    return requests.request(method, server.api_url + path, headers=headers, timeout=10, **kwargs)


def search(server: DemoServer, key: str, album_id: str, **body: object) -> requests.Response:
    return api(server, "POST", "/search/metadata", key, json={"albumIds": [album_id], **body})


def all_pages(server: DemoServer, key: str, album_id: str, size: int) -> list[dict]:
    items: list[dict] = []
    page: object = 1
    while page:
        data = search(server, key, album_id, page=int(page), size=size, withExif=True).json()["assets"]
        assert data["total"] == data["count"] == len(data["items"])
        assert data["nextPage"] is None or isinstance(data["nextPage"], str)
        items.extend(data["items"])
        page = data["nextPage"]
    return items


def album_assets(server: DemoServer, key: str, album_id: str) -> list[dict]:
    if v3(server):
        return all_pages(server, key, album_id, 1000)
    return api(server, "GET", f"/albums/{album_id}", key).json()["assets"]


def error_message(response: requests.Response) -> object:
    return response.json()["message"]


def check_error_shape(server: DemoServer, response: requests.Response, status: int) -> None:
    body = response.json()
    assert response.status_code == status
    if v3(server):
        assert set(body) <= {"message", "errors"}
        assert re.fullmatch(r"[0-9a-f]{8}", response.headers["X-Correlation-ID"])
    else:
        assert body["statusCode"] == status and "X-Correlation-ID" not in response.headers
        assert re.fullmatch(r"[0-9a-f]{8}", body["correlationId"])


# -- discovery and auth --------------------------------------------------------------------


def test_discovery_ping_and_version(demo_server) -> None:  # type: ignore[no-untyped-def]
    known = requests.get(demo_server.url + "/.well-known/immich", timeout=5)
    assert known.json() == {"api": {"endpoint": "/api"}}
    assert "X-Correlation-ID" not in known.headers
    assert api(demo_server, "GET", "/server/ping").json() == {"res": "pong"}
    version = api(demo_server, "GET", "/server/version", "not-a-key").json()
    if v3(demo_server):
        assert version == {"major": 3, "minor": 1, "patch": 0, "prerelease": None}
    else:
        assert version == {"major": 2, "minor": 7, "patch": 5}
    assert demo_server.url.startswith("http://127.0.0.1:") and demo_server.api_url == demo_server.url + "/api"


def test_json_headers(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    response = api(demo_server, "GET", "/albums", demo_library.download_key, headers={"Accept-Encoding": "identity"})
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["X-Powered-By"] == "Express"
    assert re.fullmatch(r'"[0-9a-f]+-.+"', response.headers["ETag"])


def test_auth_errors(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    missing = api(demo_server, "GET", "/api-keys/me")
    check_error_shape(demo_server, missing, 401)
    assert error_message(missing) == "Authentication required"
    wrong = api(demo_server, "GET", "/api-keys/me", "wrong-key")
    check_error_shape(demo_server, wrong, 401)
    assert error_message(wrong) == "Invalid API key"
    if not v3(demo_server):
        assert wrong.json()["error"] == "Unauthorized"
        bearer = api(demo_server, "GET", "/albums", headers={"Authorization": "Bearer garbage"})
        assert bearer.status_code == 401 and error_message(bearer) == "Invalid user token"
        by_query = api(demo_server, "GET", "/albums", params={"apiKey": demo_library.download_key})
        assert by_query.status_code == 200


def test_key_permissions(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    assert api(demo_server, "GET", "/api-keys/me", lib.album_only_key).json()["permissions"] == ["album.read"]
    assert api(demo_server, "GET", "/api-keys/me", lib.download_key).json()["permissions"] == [
        "album.read", "asset.read", "asset.download"]
    assert api(demo_server, "GET", "/api-keys/me", lib.admin_key).json()["permissions"] == ["all"]
    family = lib.albums["Family 2024"]
    assert api(demo_server, "GET", "/albums", lib.album_only_key).status_code == 200
    refused = search(demo_server, lib.album_only_key, family)
    check_error_shape(demo_server, refused, 403)
    assert error_message(refused) == "Missing required permission: asset.read"
    asset_id = lib.assets["Family 2024"][0]
    refused = api(demo_server, "GET", f"/assets/{asset_id}/original", lib.album_only_key)
    assert refused.status_code == 403 and error_message(refused) == "Missing required permission: asset.download"
    for path, permission in (("/users/me", "user.read"), ("/server/about", "server.about")):
        refused = api(demo_server, "GET", path, lib.download_key)
        assert refused.status_code == 403 and error_message(refused) == f"Missing required permission: {permission}"
        assert api(demo_server, "GET", path, lib.admin_key).status_code == 200


def test_unknown_route_and_root(demo_server) -> None:  # type: ignore[no-untyped-def]
    response = api(demo_server, "GET", "/nonexistent")
    assert response.status_code == 404 and error_message(response) == "Cannot GET /api/nonexistent"
    root = requests.get(demo_server.url + "/", headers={"Accept": "application/json"}, timeout=5)
    assert root.status_code == 406 and "only returns text/html" in error_message(root)


# -- albums ----------------------------------------------------------------------------


def test_album_lists_by_version(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    bob_plain = [a["albumName"] for a in api(demo_server, "GET", "/albums", lib.bob_key).json()]
    bob_shared = [a["albumName"] for a in api(demo_server, "GET", "/albums", lib.bob_key,
                                               params={"shared": "true"}).json()]
    admin = api(demo_server, "GET", "/albums", lib.download_key).json()
    created = [a["createdAt"] for a in admin]
    assert created == sorted(created, reverse=True), "newest createdAt first"
    if v3(demo_server):
        assert sorted(bob_plain) == ["Bob's Bikes", "Grandma's Garden"]
        assert bob_shared == bob_plain, "?shared is ignored by 3.x"
        owned = api(demo_server, "GET", "/albums", lib.bob_key, params={"isOwned": "true"}).json()
        assert [a["albumName"] for a in owned] == ["Bob's Bikes"]
        assert len(admin) == 4
        for album in admin:
            assert "assets" not in album and "owner" not in album and "ownerId" not in album
            assert album["albumUsers"][0]["role"] == "owner"
    else:
        assert bob_plain == ["Bob's Bikes"], "2.x lists only owned albums without ?shared=true"
        assert sorted(bob_shared) == ["Bob's Bikes", "Grandma's Garden"]
        assert len(admin) == 3
        for album in admin:
            assert album["assets"] == [] and album["ownerId"] == lib.admin.id
            assert all(member["role"] != "owner" for member in album["albumUsers"])
        bad = api(demo_server, "GET", "/albums", lib.bob_key, params={"shared": "yes"})
        assert bad.status_code == 400 and error_message(bad) == ["shared must be a boolean value"]


def test_album_detail(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    family = lib.albums["Family 2024"]
    album = api(demo_server, "GET", f"/albums/{family}", lib.download_key).json()
    assert album["assetCount"] == 8  # 6 photos, the second IMG_0001.jpg and the live photo's still
    assert album["lastModifiedAssetTimestamp"].endswith("Z") and album["updatedAt"].endswith("Z")
    if v3(demo_server):
        assert "assets" not in album
    else:
        assets = album["assets"]
        assert len(assets) == 8
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", assets[0]["fileCreatedAt"])
        taken = [a["fileCreatedAt"] for a in assets]
        assert taken == sorted(taken, reverse=True)
        slim = api(demo_server, "GET", f"/albums/{family}", lib.download_key, params={"withoutAssets": "true"})
        assert slim.json()["assets"] == [] and slim.json()["assetCount"] == 8
    garden = lib.albums["Grandma's Garden"]
    shared = api(demo_server, "GET", f"/albums/{garden}", lib.bob_key).json()
    assert shared["shared"] is True and shared["contributorCounts"] == [{"userId": lib.admin.id, "assetCount": 6}]
    hidden = api(demo_server, "GET", f"/albums/{lib.albums['Holidays 2023']}", lib.bob_key)
    assert hidden.status_code == 400 and error_message(hidden) == "Not found or no album.read access"
    malformed = api(demo_server, "GET", "/albums/nope", lib.download_key)
    assert malformed.status_code == 400
    if v3(demo_server):
        assert malformed.json()["errors"][0]["message"] == "Invalid UUID"
    else:
        assert error_message(malformed) == ["id must be a UUID"]


def test_album_metadata_moves_like_the_real_server(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    family = lib.albums["Family 2024"]

    def album() -> dict:
        return api(demo_server, "GET", f"/albums/{family}", lib.download_key,
                   params=None if v3(demo_server) else {"withoutAssets": "true"}).json()

    before = album()
    new = demo_server.add_asset(lib.admin, "NEW.jpg", albums=[family])
    added = album()
    assert added["assetCount"] == before["assetCount"] + 1 and added["updatedAt"] > before["updatedAt"]
    assert added["lastModifiedAssetTimestamp"] > before["lastModifiedAssetTimestamp"]
    demo_server.replace_asset_bytes(new, b"\xff\xd8changed\xff\xd9")
    replaced = album()
    assert replaced["lastModifiedAssetTimestamp"] > added["lastModifiedAssetTimestamp"]
    detail = api(demo_server, "GET", f"/assets/{new}", lib.download_key).json()
    assert detail["checksum"] == sha1_b64(b"\xff\xd8changed\xff\xd9")
    assert detail["exifInfo"]["fileSizeInByte"] == len(b"\xff\xd8changed\xff\xd9")
    demo_server.trash_asset(new)
    trashed = album()
    assert trashed["assetCount"] == before["assetCount"]
    assert new not in {a["id"] for a in album_assets(demo_server, lib.download_key, family)}
    assert api(demo_server, "GET", f"/assets/{new}", lib.download_key).json()["isTrashed"] is True
    assert api(demo_server, "GET", f"/assets/{new}/original", lib.download_key).status_code == 200
    demo_server.rename_album(family, "Family")
    assert album()["albumName"] == "Family"
    demo_server.unshare(lib.albums["Grandma's Garden"], lib.bob)
    names = {a["albumName"] for a in api(demo_server, "GET", "/albums", lib.bob_key, params={"shared": "true"}).json()}
    assert "Grandma's Garden" not in names
    demo_server.delete_album(family)
    assert api(demo_server, "GET", f"/albums/{family}", lib.download_key).status_code == 400


# -- search ----------------------------------------------------------------------------


def test_search_paging(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    family = lib.albums["Family 2024"]
    first = search(demo_server, lib.download_key, family, page=1, size=3, withExif=True).json()
    assert first["albums"] == {"total": 0, "count": 0, "items": [], "facets": []}
    assert first["assets"]["nextPage"] == "2" and first["assets"]["total"] == 3
    items = all_pages(demo_server, lib.download_key, family, 3)
    assert len(items) == len({i["id"] for i in items}) == 8
    taken = [i["fileCreatedAt"] for i in items]
    assert taken == sorted(taken, reverse=True)
    ascending = search(demo_server, lib.download_key, family, size=1000, order="asc").json()["assets"]["items"]
    assert [i["id"] for i in ascending] == [i["id"] for i in reversed(items)]
    assert "exifInfo" not in ascending[0] and items[0]["exifInfo"]["fileSizeInByte"] > 0
    past = search(demo_server, lib.download_key, family, page=50, size=3).json()["assets"]
    assert past["items"] == [] and past["nextPage"] is None
    assert items[0]["id"] and "owner" not in items[0] and "tags" not in items[0]
    for item in items:
        data = api(demo_server, "GET", f"/assets/{item['id']}/original", lib.download_key).content
        assert sha1_b64(data) == item["checksum"] and len(data) == item["exifInfo"]["fileSizeInByte"]
    if v3(demo_server):
        assert all(i["duration"] is None for i in items)
    else:
        assert all(i["duration"] == "0:00:00.00000" and "deviceAssetId" in i for i in items)


def test_search_validation(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    family = lib.albums["Family 2024"]
    for size, v3_code, v2_message in ((0, "too_small", "size must not be less than 1"),
                                      (1001, "too_big", "size must not be greater than 1000")):
        response = search(demo_server, lib.download_key, family, size=size)
        assert response.status_code == 400
        if v3(demo_server):
            assert error_message(response) == "Validation failed"
            assert response.json()["errors"][0]["code"] == v3_code
            assert response.json()["errors"][0]["path"] == ["size"]
        else:
            assert error_message(response) == [v2_message]
    if not v3(demo_server):
        both = search(demo_server, lib.download_key, family, page=0, size=0)
        assert error_message(both) == ["page must not be less than 1", "size must not be less than 1"]
        text = search(demo_server, lib.download_key, family, size="abc")
        assert error_message(text) == ["size must not be greater than 1000", "size must not be less than 1",
                                       "size must be an integer number"]
        assert search(demo_server, lib.download_key, family, size="5").status_code == 200
        bad_order = search(demo_server, lib.download_key, family, order="ASC")
        assert error_message(bad_order) == ["order must be one of the following values: asc, desc"]
        bad_ids = api(demo_server, "POST", "/search/metadata", lib.download_key, json={"albumIds": ["nope"]})
        assert error_message(bad_ids) == ["each value in albumIds must be a UUID"]


def test_search_scope_differs_by_version(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    garden = lib.albums["Grandma's Garden"]
    holidays = lib.albums["Holidays 2023"]
    viewer = search(demo_server, lib.bob_key, garden, size=100)
    other = search(demo_server, lib.bob_key, holidays, size=100)
    bikes = search(demo_server, lib.bob_key, lib.albums["Bob's Bikes"], size=100).json()["assets"]["items"]
    if v3(demo_server):
        assert len(viewer.json()["assets"]["items"]) == 6
        assert other.status_code == 400 and error_message(other) == "Not found or no album.read access"
        assert len(bikes) == 7, "3.x lists every asset of the album, also the admin's"
    else:
        assert viewer.status_code == 200 and viewer.json()["assets"]["items"] == [], "2.x searches own assets only"
        assert other.status_code == 200 and other.json()["assets"]["items"] == []
        assert len(bikes) == 6, "2.x leaves out the admin's photo in Bob's album"
        inline = api(demo_server, "GET", f"/albums/{garden}", lib.bob_key).json()["assets"]
        assert len(inline) == 6, "a 2.x viewer lists the shared album through GET /albums/{id}"


# -- assets and originals ----------------------------------------------------------------


def test_asset_detail_and_unknown_ids(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    asset_id = lib.assets["Family 2024"][0]
    detail = api(demo_server, "GET", f"/assets/{asset_id}", lib.download_key).json()
    assert detail["owner"]["id"] == lib.admin.id and detail["tags"] == [] and detail["stack"] is None
    unknown = "3f1b6a52-0d8e-4c3a-9b7e-2a4c6d8e0f12"
    response = api(demo_server, "GET", f"/assets/{unknown}", lib.download_key)
    assert response.status_code == 400 and error_message(response) == "Not found or no asset.read access"
    original = api(demo_server, "GET", f"/assets/{unknown}/original", lib.download_key)
    # Bob asking for an asset of an album he cannot see answers the same as an unknown id
    hidden = api(demo_server, "GET", f"/assets/{lib.assets['Holidays 2023'][0]}/original", lib.bob_key)
    if v3(demo_server):
        assert original.status_code == 404 and original.json() == {"message": "Not Found"}
        assert hidden.status_code == 404
    else:
        assert original.status_code == 400 and error_message(original) == "Not found or no asset.download access"
        assert original.headers["Cache-Control"] == "none" and hidden.status_code == 400


def test_original_headers_and_ranges(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    asset_id = lib.assets["Family 2024"][1]
    path = f"/assets/{asset_id}/original"
    whole = api(demo_server, "GET", path, lib.download_key)
    data = whole.content
    size = len(data)
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "image/jpeg"
    assert whole.headers["Accept-Ranges"] == "bytes" and int(whole.headers["Content-Length"]) == size
    assert whole.headers["Content-Disposition"] == "inline; filename*=UTF-8''IMG_0002.jpg"
    etag = whole.headers["ETag"]
    assert re.fullmatch(rf'W/"{size:x}-[0-9a-f]+"', etag)
    assert whole.headers["Cache-Control"].startswith("private, max-age=86400")

    def ranged(spec: str, **headers: str) -> requests.Response:
        return api(demo_server, "GET", path, lib.download_key, headers={"Range": spec, **headers})

    part = ranged("bytes=10-19")
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{size}" and part.headers["Content-Length"] == "10"
    tail = ranged("bytes=100-")
    assert tail.status_code == 206 and tail.content == data[100:]
    assert tail.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    suffix = ranged("bytes=-50")
    assert suffix.status_code == 206 and suffix.content == data[-50:]
    assert ranged(f"bytes=0-{size * 10}").content == data
    for ignored in ("bytes=0-1,5-6", "items=0-5", "BYTES=0-4"):
        assert ranged(ignored).status_code == 200
    for unsatisfiable in (f"bytes={size}-", "bytes=999999-", "bytes=5-2"):
        past = ranged(unsatisfiable)
        assert past.headers["Content-Range"] == f"bytes */{size}"
        if v3(demo_server):
            assert past.status_code == 404 and past.json() == {"message": "Not Found"}
        else:
            assert past.status_code == 500 and error_message(past) == "Internal server error"
            assert "error" not in past.json() and past.headers["Content-Type"].startswith("image/jpeg")
    assert ranged("bytes=0-9", **{"If-Range": etag}).status_code == 206
    assert ranged("bytes=0-9", **{"If-Range": 'W/"stale"'}).status_code == 200
    assert api(demo_server, "GET", path, lib.download_key, headers={"If-None-Match": etag}).status_code == 304
    head = api(demo_server, "HEAD", path, lib.download_key)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == size


def test_live_photo_motion_part(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    listing = album_assets(demo_server, lib.download_key, lib.albums["Family 2024"])
    stills = [a for a in listing if a["livePhotoVideoId"]]
    assert len(stills) == 1 and stills[0]["originalFileName"].endswith(".jpg")
    motion_id = stills[0]["livePhotoVideoId"]
    assert motion_id not in {a["id"] for a in listing}, "the motion part is not an album member"
    motion = api(demo_server, "GET", f"/assets/{motion_id}", lib.download_key).json()
    assert motion["visibility"] == "hidden" and motion["type"] == "VIDEO"
    assert motion["originalFileName"].endswith(".mov")
    data = api(demo_server, "GET", f"/assets/{motion_id}/original", lib.download_key)
    assert data.headers["Content-Type"] == "video/quicktime" and sha1_b64(data.content) == motion["checksum"]


def test_external_asset_checksum_is_not_of_the_bytes(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    asset_id = demo_server.add_asset(lib.admin, "EXT.jpg", external=True, albums=[lib.albums["Family 2024"]])
    detail = api(demo_server, "GET", f"/assets/{asset_id}", lib.download_key).json()
    data = api(demo_server, "GET", f"/assets/{asset_id}/original", lib.download_key).content
    assert detail["libraryId"] and detail["checksum"] != sha1_b64(data)
    assert detail["exifInfo"]["fileSizeInByte"] == len(data)


def test_corrupt_asset_serves_other_bytes(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    asset_id = lib.assets["Holidays 2023"][0]
    detail = api(demo_server, "GET", f"/assets/{asset_id}", lib.download_key).json()
    demo_server.corrupt_asset(asset_id)
    data = api(demo_server, "GET", f"/assets/{asset_id}/original", lib.download_key).content
    assert len(data) == detail["exifInfo"]["fileSizeInByte"] and sha1_b64(data) != detail["checksum"]


def test_bulk_assets(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    album_id = demo_server.add_album(lib.admin, "Bulk")
    ids = demo_server.add_assets_bulk(lib.admin, 1200, 2048, album_id, prefix="B_", seed=7)
    assert len(ids) == len(set(ids)) == 1200
    items = all_pages(demo_server, lib.download_key, album_id, 1000)
    assert len(items) == 1200 and len({i["checksum"] for i in items}) == 1200
    assert all(i["originalFileName"].startswith("B_") for i in items)
    with requests.Session() as session:  # keep-alive: one connection for many originals
        for item in items[::200]:
            data = session.get(f"{demo_server.api_url}/assets/{item['id']}/original",
                               headers={"x-api-key": lib.download_key}, timeout=10).content
            assert len(data) == 2048 and sha1_b64(data) == item["checksum"]
    again = DemoServer(mode=demo_server.mode)
    try:
        user = again.add_user("x", "x@example.com")
        other = again.add_album(user, "x")
        same = again.add_assets_bulk(user, 3, 2048, other, seed=7)
        assert [again.asset_bytes(i) for i in same] == [demo_server.asset_bytes(i) for i in ids[:3]]
        assert same == ids[:3], "ids are deterministic for a seed too"
    finally:
        again.stop()
    twice = demo_server.add_assets_bulk(lib.admin, 5, 64, album_id, seed=7)
    assert not set(twice) & set(ids), "a second call with the same seed adds new assets"


# -- downloads ---------------------------------------------------------------------------


def test_download_info(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    family = lib.albums["Family 2024"]
    info = api(demo_server, "POST", "/download/info", lib.download_key, json={"albumId": family})
    assert info.status_code == 201
    data = info.json()
    ids = data["archives"][0]["assetIds"]
    assert len(ids) == 9, "8 album assets then the live photo's motion part"
    listing = {a["id"]: a for a in album_assets(demo_server, lib.download_key, family)}
    motion = next(a["livePhotoVideoId"] for a in listing.values() if a["livePhotoVideoId"])
    assert ids[-1] == motion and set(ids[:-1]) == set(listing)
    sizes = {i: len(demo_server.asset_bytes(i)) for i in ids}
    assert data["totalSize"] == data["archives"][0]["size"] == sum(sizes.values())
    split = api(demo_server, "POST", "/download/info", lib.download_key,
                json={"albumId": family, "archiveSize": 1}).json()
    assert [len(a["assetIds"]) for a in split["archives"]] == [1] * 9
    still = next(i for i, a in listing.items() if a["livePhotoVideoId"])
    one = api(demo_server, "POST", "/download/info", lib.download_key, json={"assetIds": [still]}).json()
    assert one["archives"][0]["assetIds"] == [still, motion]
    empty = api(demo_server, "POST", "/download/info", lib.download_key, json={"assetIds": []})
    assert empty.status_code == 201 and empty.json() == {"totalSize": 0, "archives": []}
    nothing = api(demo_server, "POST", "/download/info", lib.download_key, json={})
    assert nothing.status_code == 400 and error_message(nothing) == "assetIds, albumId, or userId is required"
    unknown = api(demo_server, "POST", "/download/info", lib.download_key,
                  json={"assetIds": [still, "3f1b6a52-0d8e-4c3a-9b7e-2a4c6d8e0f12"]})
    assert unknown.status_code == 400 and error_message(unknown) == "Not found or no asset.download access"
    refused = api(demo_server, "POST", "/download/info", lib.album_only_key, json={"albumId": family})
    assert refused.status_code == 403


def read_zip_entries(data: bytes) -> list[tuple[str, bytes, zipfile.ZipInfo]]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return [(info.filename, archive.read(info), info) for info in archive.infolist()]


def test_download_archive(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    family = lib.albums["Family 2024"]
    listing = album_assets(demo_server, lib.download_key, family)
    dups = [a for a in listing if a["originalFileName"] == "IMG_0001.jpg"]
    assert len(dups) == 2
    ids = [dups[0]["id"], dups[1]["id"], dups[0]["id"]]
    response = api(demo_server, "POST", "/download/archive", lib.download_key, json={"assetIds": ids},
                   headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in response.headers
    assert "Content-Disposition" not in response.headers
    entries = read_zip_entries(response.content)
    assert [name for name, _, _ in entries] == ["IMG_0001.jpg", "IMG_0001+1.jpg", "IMG_0001+2.jpg"]
    assert [sha1_b64(data) for _, data, _ in entries] == [dups[0]["checksum"], dups[1]["checksum"],
                                                           dups[0]["checksum"]]
    for _, _, info in entries:
        assert info.compress_type == zipfile.ZIP_STORED and info.flag_bits & 0x08
        assert info.create_version == 0x2D and info.create_system == 3 and info.extract_version == 20
        assert info.external_attr >> 16 == 0o100644 and info.extra == b""
    taken = datetime.fromisoformat(dups[0]["fileModifiedAt"].replace("Z", "+00:00")).astimezone(UTC)
    assert entries[0][2].date_time == (taken.year, taken.month, taken.day, taken.hour, taken.minute,
                                       taken.second // 2 * 2)
    compressed = api(demo_server, "POST", "/download/archive", lib.download_key, json={"assetIds": ids[:1]},
                     headers={"Accept-Encoding": "gzip"}, stream=True)
    assert compressed.headers["Content-Encoding"] == "gzip"
    raw = compressed.raw.read(decode_content=False)
    assert read_zip_entries(gzip.decompress(raw))[0][0] == "IMG_0001.jpg"
    empty = api(demo_server, "POST", "/download/archive", lib.download_key, json={"assetIds": []})
    assert empty.status_code == 500 and error_message(empty) == "Failed to download archive"
    assert api(demo_server, "POST", "/download/archive", lib.download_key, json={}).status_code == 400
    assert api(demo_server, "GET", "/download/archive", lib.download_key).status_code == 404


def test_archive_entry_names_by_version(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    ids = [demo_server.add_asset(lib.admin, name) for name in ("a:b*c?.jpg", "CON.jpg")]
    response = api(demo_server, "POST", "/download/archive", lib.download_key, json={"assetIds": ids})
    names = [name for name, _, _ in read_zip_entries(response.content)]
    assert names == (["abc.jpg", "unnamed"] if v3(demo_server) else ["b*c?.jpg", "CON.jpg"])


def test_zip_writer_and_sanitizer_units() -> None:
    moment = datetime(2025, 4, 2, 8, 30, 1, tzinfo=UTC)
    data = b"".join(zip_stream([("x.jpg", moment, iter([b"ab", b"cd"])), ("é.jpg", moment, iter([]))]))
    entries = read_zip_entries(data)
    assert [(n, d) for n, d, _ in entries] == [("x.jpg", b"abcd"), ("é.jpg", b"")]
    assert entries[0][2].date_time == (2025, 4, 2, 8, 30, 0)
    many = b"".join(zip_stream((f"{i}.txt", moment, iter([b"%d" % i])) for i in range(66_000)))
    archive = zipfile.ZipFile(io.BytesIO(many))  # past 65,535 entries: ZIP64 end records
    assert len(archive.infolist()) == 66_000 and archive.read("65999.txt") == b"65999"
    assert sanitize_filename("..") == "unnamed" and sanitize_filename("a/b\\c") == "abc"
    assert sanitize_filename("name. ") == "name" and len(sanitize_filename("x" * 400).encode()) == 255


def test_body_limit(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    padded = b'{"assetIds":[]' + b" " * (10 * 1024 * 1024 + 100) + b"}"
    response = api(demo_server, "POST", "/download/info", demo_library.download_key, data=padded,
                   headers={"Content-Type": "application/json"})
    assert response.status_code == 500 and error_message(response) == "Internal server error"


# -- faults, the request log, lifecycle ---------------------------------------------------


def test_faults_replace_and_perturb(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    demo_server.faults.add(Fault(path=r"/api/albums$", status=503, headers={"Retry-After": "7"}))
    busy = api(demo_server, "GET", "/albums", lib.download_key)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "7"
    assert api(demo_server, "GET", "/albums", lib.download_key).status_code == 200, "times=1 by default"
    demo_server.faults.add(Fault(path=r"/server/ping", raw_body=b"<html>login</html>", content_type="text/html",
                                 times=None))
    for _ in range(2):
        html = api(demo_server, "GET", "/server/ping")
        assert html.headers["Content-Type"] == "text/html" and html.text == "<html>login</html>"
    demo_server.faults.clear()
    assert api(demo_server, "GET", "/server/ping").json() == {"res": "pong"}
    demo_server.faults.add(Fault(path=r"/api-keys/me", redirect_to="http://elsewhere.example/api/api-keys/me"))
    moved = api(demo_server, "GET", "/api-keys/me", lib.download_key, allow_redirects=False)
    assert moved.status_code == 302 and moved.headers["Location"] == "http://elsewhere.example/api/api-keys/me"
    asset_id = lib.assets["Family 2024"][0]
    demo_server.faults.add(Fault(path=r"/original$", drop_after_bytes=100))
    with pytest.raises(requests.exceptions.RequestException):
        api(demo_server, "GET", f"/assets/{asset_id}/original", lib.download_key).content  # noqa: B018
    whole = api(demo_server, "GET", f"/assets/{asset_id}/original", lib.download_key)
    demo_server.faults.add(Fault(path=r"/original$", rate_bytes_per_s=len(whole.content) * 4))
    started = time.monotonic()
    throttled = api(demo_server, "GET", f"/assets/{asset_id}/original", lib.download_key).content
    assert throttled == whole.content and time.monotonic() - started >= 0.2
    demo_server.faults.add(Fault(path=r"/original$", stall_after_bytes=50, stall_seconds=0.3))
    assert api(demo_server, "GET", f"/assets/{asset_id}/original", lib.download_key).content == whole.content
    demo_server.faults.add(Fault(path=r"/server/version", method="POST", status=500))
    assert api(demo_server, "GET", "/server/version").status_code == 200, "the method must match too"


def test_request_log(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    demo_server.clear_requests()
    search(demo_server, demo_library.download_key, demo_library.albums["Family 2024"], page=1, size=5)
    api(demo_server, "GET", "/albums", "bad-key", params={"shared": "true"})
    first, second = demo_server.requests
    assert (first.method, first.path, first.status) == ("POST", "/api/search/metadata", 200)
    assert first.json()["size"] == 5 and first.headers["x-api-key"] == demo_library.download_key
    assert (second.path, second.query, second.status) == ("/api/albums", "shared=true", 401)
    demo_server.clear_requests()
    assert demo_server.requests == []


def test_stop_closes_live_connections_promptly(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    lib = demo_library
    asset_id = lib.assets["Family 2024"][0]
    session = requests.Session()
    assert session.get(f"{demo_server.api_url}/server/ping", timeout=5).status_code == 200  # idle keep-alive
    demo_server.faults.add(Fault(path=r"/original$", stall_after_bytes=10, stall_seconds=60))
    outcome: list[object] = []

    def stalled_download() -> None:
        try:
            outcome.append(requests.get(f"{demo_server.api_url}/assets/{asset_id}/original",
                                        headers={"x-api-key": lib.download_key}, timeout=30).content)
        except requests.exceptions.RequestException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=stalled_download)
    worker.start()
    time.sleep(0.3)
    demo_server.stop()
    worker.join(10)
    assert not worker.is_alive() and isinstance(outcome[0], requests.exceptions.RequestException)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{demo_server.api_url}/server/ping", timeout=5)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", demo_server.port), timeout=2):
        pass


def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with DemoServer(mode="3", tls=(str(cert), str(key))) as server:
        assert server.url.startswith("https://")
        assert requests.get(server.api_url + "/server/ping", verify=str(cert), timeout=5).json() == {"res": "pong"}
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.api_url + "/server/ping", timeout=5)


def test_storage_dir_is_used_and_kept(tmp_path: Path) -> None:
    storage = tmp_path / "store"
    with DemoServer(mode="2", storage_dir=storage) as server:
        user = server.add_user("u", "u@example.com")
        asset_id = server.add_asset(user, "x.jpg", data=b"\xff\xd8abc\xff\xd9")
        assert any(storage.rglob(f"{asset_id}*"))
        assert hashlib.sha1(server.asset_bytes(asset_id)).digest() == hashlib.sha1(b"\xff\xd8abc\xff\xd9").digest()
    assert storage.is_dir(), "a storage folder the caller chose is not deleted"


def test_module_runs_a_demo_server(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tray_sync.demo.server", "--mode", "2", "--port", str(port),
                                "--photos", "2", "--storage", str(tmp_path / "s")],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first and "2.7.5" in first
        download_key = process.stdout.readline().split()[-1]
        download_key = process.stdout.readline().split()[-1]
        albums = requests.get(f"http://127.0.0.1:{port}/api/albums", headers={"x-api-key": download_key}, timeout=5)
        assert "Family 2024" in {a["albumName"] for a in albums.json()}
    finally:
        process.terminate()
        process.wait(10)


# -- the command line over this server: an album holding another user's assets --------------


@pytest.mark.usefixtures("memory_keyring")
@pytest.mark.parametrize("who", ["bob", "admin"])
def test_sync_album_holding_another_users_assets(who: str, home: Path, tmp_path: Path, demo_server,  # type: ignore[no-untyped-def]
                                                 demo_library) -> None:
    """Bob's Bikes (Bob's) holds one of the admin's photos; the admin is an editor of it.

    On 2.x a search covers only the caller's own assets, so either user would miss part of the
    album through search: the client must list it through GET /albums/{id} there.
    """
    from tests.e2e_helpers import cli, connect, files_in

    lib = demo_library
    key = lib.bob_key if who == "bob" else lib.download_key
    connect(home, demo_server, key)
    album_id = lib.albums["Bob's Bikes"]
    dest = tmp_path / "Bikes"
    assert cli(home, "add", album_id, str(dest)).code == 0
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out + result.err
    listing = album_assets(demo_server, lib.admin_key, album_id)
    owners = {a["ownerId"] for a in listing}
    assert owners == {lib.admin.id, lib.bob.id}
    local = files_in(dest)
    assert len(local) == len(listing) == 7
    assert {sha1_b64(data) for data in local.values()} == {a["checksum"] for a in listing}
    assert "PXL_20211001.jpg" in local


def test_stopped_server_comes_back_on_the_same_port(demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    asset_id = demo_library.assets["Family 2024"][0]
    before = api(demo_server, "GET", f"/assets/{asset_id}/original", demo_library.download_key).content
    port = demo_server.port
    demo_server.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        api(demo_server, "GET", "/server/ping")
    demo_server.start()
    assert demo_server.port == port
    assert api(demo_server, "GET", f"/assets/{asset_id}/original", demo_library.download_key).content == before


def test_temporary_storage_goes_with_the_server() -> None:
    import gc

    server = DemoServer(mode="3").start()
    storage = server.storage_dir
    user = server.add_user("u", "u@example.com")
    server.add_asset(user, "x.jpg")
    server.stop()
    assert storage.is_dir()
    del server
    gc.collect()
    assert not storage.exists()


@pytest.mark.usefixtures("memory_keyring")
def test_sync_as_viewer_of_a_shared_album(home: Path, tmp_path: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """Bob only views Grandma's Garden: every asset is the admin's (2.x search would list none)."""
    from tests.e2e_helpers import cli, connect, files_in

    lib = demo_library
    connect(home, demo_server, lib.bob_key)
    albums = {a["name"]: a for a in cli(home, "albums", "--json").json()}
    garden = albums["Grandma's Garden"]
    assert garden["shared"] is True and garden["asset_count"] == 6
    dest = tmp_path / "Garden"
    assert cli(home, "add", "Grandma's Garden", str(dest)).code == 0
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out + result.err
    assert result.json()["albums"][0]["downloaded"] == 6
    listing = album_assets(demo_server, lib.admin_key, lib.albums["Grandma's Garden"])
    assert {a["ownerId"] for a in listing} == {lib.admin.id}
    assert {sha1_b64(data) for data in files_in(dest).values()} == {a["checksum"] for a in listing}
