"""A hostile or broken server: what it says is untrusted input, and nothing it says can hurt.

* File names that try to escape the album folder (``../``, absolute, Windows paths), carry NUL
  or control characters, are reserved on Windows, are far too long, or collide after Unicode
  normalisation or case folding: every file lands inside the album folder under a legal name,
  each asset exactly once, and the names stay the same on the next sync.
* Absurd sizes and counts, endless paging, bodies far longer than announced: refused with a
  clear message, without filling the disk or looping forever.
* Wrong checksums: the file is rejected, reported, retried exactly once, never published.
* Invalid JSON, an HTML page instead of JSON: one clear line, never a traceback.
* Redirects to another host (another port on 127.0.0.2 here, a plain ``http.server`` that
  records every header it sees): the API key is never sent there.
"""

from __future__ import annotations

import json
import os
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from tests.e2e_helpers import cli, connect
from tests.reliability_helpers import (
    add,
    assert_consistent,
    assert_converged,
    expected_checksums,
    final_files,
    originals_requested,
    partial_files,
    sha1_b64,
    small_filesystem,
)

pytestmark = pytest.mark.usefixtures("memory_keyring")


@pytest.fixture
def server_mode() -> str:
    return "3"


HOSTILE_NAMES = [
    "../../escaped.jpg",
    "../../../../../../../../tmp/escaped-too.jpg",
    "/etc/passwd",
    "/absolute/path.jpg",
    "..\\..\\windows-escape.jpg",
    "C:\\Windows\\System32\\evil.jpg",
    "sub/dir/nested.jpg",
    "nul\x00byte.jpg",
    "control\x01\x1f\x7fchars.jpg",
    "CON.jpg",
    "nul",
    "aux.txt.jpg",
    "COM1.jpg",
    "lpt9",
    "x" * 600 + ".jpg",
    "é" * 200 + ".jpg",  # 400 bytes of UTF-8
    "café.jpg",  # NFC ...
    unicodedata.normalize("NFD", "café.jpg"),  # ... and NFD: the same name on macOS
    "Photo.JPG",
    "photo.jpg",  # the same name on Windows and macOS
    ".",
    "..",
    "",
    "   ",
    "trailing dots...",
    ".~tray-sync-00000000.partial",  # the app's own hidden names
    ".tray-sync-trash",
    "\u202egnp.exe",  # right-to-left override
    "emoji 📷.heic",
]


class KeyRecorder(BaseHTTPRequestHandler):
    """Another host: remembers every request and every header, answers 200 with a tiny JSON."""

    seen: ClassVar[list[dict[str, str]]] = []

    def _answer(self) -> None:
        KeyRecorder.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test's output is not the place for this server's access log."""


@pytest.fixture
def other_host():  # type: ignore[no-untyped-def]
    KeyRecorder.seen = []
    try:
        httpd = ThreadingHTTPServer(("127.0.0.2", 0), KeyRecorder)
    except OSError:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeyRecorder)  # another port is another origin too
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{httpd.server_address[0]}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def outside_snapshot(root: Path, *skip: Path) -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(root):
        if any(Path(folder).is_relative_to(s) for s in skip):
            dirs[:] = []
            continue
        found.update(os.path.join(folder, f) for f in files)
    return found


def test_hostile_file_names_stay_inside_the_album_folder(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    key = demo_library.download_key
    album_id = demo_server.add_album(demo_library.admin, "Hostile")
    ids = [demo_server.add_asset(demo_library.admin, name, data=f"bytes of asset {n}".encode() * 50,
                                 albums=[album_id]) for n, name in enumerate(HOSTILE_NAMES)]
    connect(home, demo_server, key)
    dest = tmp_path / "albums" / "Hostile"
    add(home, "Hostile", dest)
    storage = tmp_path / "server-storage"
    before = outside_snapshot(tmp_path, dest, home, storage)
    passwd = os.stat("/etc/passwd").st_mtime_ns
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out + result.err
    assert outside_snapshot(tmp_path, dest, home, storage) == before, "a file was written outside the album"
    assert not Path("/tmp/escaped-too.jpg").exists() and not Path("/absolute/path.jpg").exists()
    assert os.stat("/etc/passwd").st_mtime_ns == passwd
    wanted = expected_checksums(demo_server, key, album_id)
    assert len(wanted) == len(ids)
    assert_converged(home, dest, wanted)
    names = list(final_files(dest))
    assert all("/" not in n for n in names), "no sub-folders from names"
    for name in names:
        assert "\x00" not in name and not any(ord(c) < 32 for c in name)
        assert len(name.encode()) <= 255
        assert (name not in (".", "..") and name.strip() == name.rstrip(". ")) or name.endswith(")")
        stem = name.split(".")[0].strip().lower()
        assert stem not in ("con", "nul", "aux", "com1", "lpt9"), name
        assert not name.startswith((".~tray-sync-", ".tray-sync-trash"))
    keys = [unicodedata.normalize("NFC", n).casefold() for n in names]
    assert len(keys) == len(set(keys)), "two names collide on Windows or macOS"
    again = cli(home, "sync", "--json")
    assert again.json()["albums"][0]["downloaded"] == 0  # type: ignore[index]
    assert list(final_files(dest)) == names


def _listing_json(server, key: str, album_id: str) -> dict:  # type: ignore[type-arg]
    response = requests.post(f"{server.api_url}/search/metadata", headers={"x-api-key": key}, timeout=10,
                             json={"albumIds": [album_id], "page": 1, "size": 1000, "withExif": True})
    return response.json()


def _serve_listing(server, data: dict, times: int | None = None) -> None:  # type: ignore[type-arg]
    from tray_sync.demo.server import Fault

    server.faults.add(Fault(path=r"/search/metadata$", raw_body=json.dumps(data).encode(),
                            content_type="application/json; charset=utf-8", times=times))


def test_absurd_size_is_refused_before_downloading(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    data = _listing_json(demo_server, key, demo_library.albums["Family 2024"])
    data["assets"]["items"][0]["exifInfo"]["fileSizeInByte"] = 10**18
    _serve_listing(demo_server, data)
    result = cli(home, "sync")
    assert result.code == 1
    assert "Not enough free space" in result.err and "Traceback" not in result.err
    assert originals_requested(demo_server) == []
    assert final_files(dest) == {}


def test_endless_paging_ends(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """A server that always says "there is a next page" (and repeats itself) cannot loop the app forever."""
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    data = _listing_json(demo_server, key, demo_library.albums["Family 2024"])
    data["assets"]["nextPage"] = "2"
    data["assets"]["total"] = 10**9
    _serve_listing(demo_server, data)
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.update(r=cli(home, "sync", "--json")), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the listing never ended"
    demo_server.faults.clear()
    outcome = result["r"]
    assert "Traceback" not in outcome.err  # type: ignore[attr-defined]
    pages = [r for r in demo_server.requests if r.path.endswith("/search/metadata")]
    assert len(pages) < 50
    assert_consistent(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))


def test_body_longer_than_announced_is_cut_off_not_written(home, tmp_path, demo_server, demo_library,  # type: ignore[no-untyped-def]
                                                           monkeypatch) -> None:
    """The listing says a few KB, the server streams megabytes: the disk must not fill up."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    victim = demo_library.assets["Family 2024"][0]
    with small_filesystem(tmp_path / "disk", 1024, monkeypatch) as _fs:
        dest = tmp_path / "disk" / "Family"
        add(home, "Family 2024", dest)
        from tests.reliability_helpers import set_setting

        set_setting(home, "free_space_reserve_mb", 0)
        demo_server.faults.add(Fault(path=rf"/assets/{victim}/original$", raw_body=os.urandom(4_000_000),
                                     content_type="image/jpeg", times=None))
        result = cli(home, "sync", "--json")
        album = result.json()["albums"][0]  # type: ignore[index]
        assert album["failed"] == 1, album
        assert len(album["errors"]) == 1 and "is full" not in album["errors"][0], album["errors"]
        assert "more than the" in album["errors"][0], album["errors"]
        wanted = expected_checksums(demo_server, key, demo_library.albums["Family 2024"])
        assert_consistent(home, dest, wanted)
        assert not partial_files(dest)
        demo_server.faults.clear()
        assert cli(home, "sync").code == 0
        assert_converged(home, dest, wanted)


@pytest.mark.parametrize("server_mode", ["3", "2"])
def test_wrong_checksum_is_rejected_reported_and_retried_once(home, tmp_path, demo_server, demo_library,  # type: ignore[no-untyped-def]
                                                              server_mode) -> None:
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    victim = demo_library.assets["Family 2024"][0]
    good = demo_server.asset_bytes(victim)
    demo_server.corrupt_asset(victim)
    result = cli(home, "sync", "--json")
    assert result.code == 1
    album = result.json()["albums"][0]  # type: ignore[index]
    assert album["failed"] == 1
    assert len(album["errors"]) == 1 and "checksum" in album["errors"][0]
    assert originals_requested(demo_server).count(victim) == 2, "retried exactly once"
    wanted = expected_checksums(demo_server, key, demo_library.albums["Family 2024"])
    assert_consistent(home, dest, wanted)
    assert sha1_b64(demo_server.asset_bytes(victim)) not in {sha1_b64(d) for d in final_files(dest).values()}
    assert not partial_files(dest)
    status = cli(home, "status", "--json").json()
    assert "checksum" in str(status)
    demo_server.replace_asset_bytes(victim, good)  # the server is repaired
    assert cli(home, "sync").code == 0
    assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))


@pytest.mark.parametrize("body,content_type,expect", [
    (b'{"broken": ', "application/json; charset=utf-8", "JSON"),
    (b"<!doctype html><html><body><h1>Please log in</h1></body></html>", "text/html; charset=utf-8", "text/html"),
    (b"", "application/json", "JSON"),
    (b'"just a string"', "application/json", "not a list"),
])
def test_invalid_json_or_html_is_one_clear_line(home, tmp_path, demo_server, demo_library, body, content_type,  # type: ignore[no-untyped-def]
                                                expect) -> None:
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    assert cli(home, "sync").code == 0
    before = final_files(dest)
    demo_server.faults.add(Fault(path=r"/albums$", raw_body=body, content_type=content_type, times=None))
    for args in (("sync",), ("albums",)):
        result = cli(home, *args)
        assert result.code == 1, result.err
        assert "Traceback" not in result.err and "unexpected error" not in result.err, result.err
        assert expect in result.err, result.err
        assert len([line for line in result.err.splitlines() if line.strip()]) <= 2, result.err
    assert final_files(dest) == before
    # inside one album's listing (3.x search): that album fails, cleanly
    demo_server.faults.clear()
    demo_server.faults.add(Fault(path=r"/search/metadata$", raw_body=body, content_type=content_type, times=None))
    sqlite_force_relist(home)
    result = cli(home, "sync", "--json")
    assert result.code == 1 and "Traceback" not in result.err
    assert result.json()["albums"][0]["errors"]  # type: ignore[index]
    assert final_files(dest) == before


def test_connect_to_a_web_page_is_one_line(home, demo_server) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    demo_server.faults.add(Fault(path=r".*", raw_body=b"<html><body>It works!</body></html>",
                                 content_type="text/html", times=None))
    result = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin="some-key-1234567890\n")
    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "Immich" in result.err


def sqlite_force_relist(home: Path) -> None:
    import sqlite3

    db = sqlite3.connect(home / "tray-sync.sqlite3")
    db.execute("UPDATE album_syncs SET last_full_listing_at='2000-01-01T00:00:00Z', fingerprint=NULL")
    db.commit()
    db.close()


@pytest.mark.parametrize("where", [r"/albums$", r"/original$", r"/search/metadata$", r"/server/version$"])
def test_redirect_to_another_host_never_carries_the_key(home, tmp_path, demo_server, demo_library, other_host,  # type: ignore[no-untyped-def]
                                                        where) -> None:
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    demo_server.faults.add(Fault(path=where, status=302, redirect_to=f"{other_host}/api/stolen", times=None))
    demo_server.faults.add(Fault(path=where, status=307, redirect_to=f"{other_host}/api/stolen", times=None))
    result = cli(home, "sync", "--json")
    assert result.code == 1
    text = json.dumps(result.json())
    assert "another address" in text and "not sent there" in text, text
    assert not [s for s in KeyRecorder.seen if "x-api-key" in s], KeyRecorder.seen
    assert key not in json.dumps(KeyRecorder.seen)


def test_same_origin_redirect_is_followed_with_the_key(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    victim = demo_library.assets["Family 2024"][0]
    demo_server.faults.add(Fault(path=rf"/assets/{victim}/original$", status=302, times=1,
                                 redirect_to=f"/api/assets/{victim}/original"))
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert_converged(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))


def test_discovery_pointing_at_another_host_is_refused(home, demo_server, other_host) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.server import Fault

    demo_server.faults.add(Fault(path=r"/\.well-known/immich$", body={"api": {"endpoint": f"{other_host}/api"}},
                                 times=None))
    result = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin="secret-key-abcdef123456\n")
    assert result.code == 1 and "another host" in result.err, result.err
    assert not [s for s in KeyRecorder.seen if "x-api-key" in s]


def test_listing_with_duplicates_and_junk_items(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """The same asset twice on a page, items without an id or not objects at all, a null exifInfo,
    an infinite size: skipped or handled, nothing doubled, no traceback."""
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    album_id = demo_library.albums["Family 2024"]
    data = _listing_json(demo_server, key, album_id)
    items = data["assets"]["items"]
    items.append(dict(items[0]))
    items[1]["exifInfo"] = None
    items[2]["exifInfo"] = "not an object"
    items += [{"originalFileName": "no-id.jpg"}, "a string", 42, None, {"id": {"nested": 1}}]
    raw = json.dumps(data).replace('"fileSizeInByte": ' + str(items[3]["exifInfo"]["fileSizeInByte"]),
                                   '"fileSizeInByte": Infinity', 1)
    from tray_sync.demo.server import Fault

    demo_server.faults.add(Fault(path=r"/search/metadata$", raw_body=raw.encode(),
                                 content_type="application/json; charset=utf-8", times=1))
    result = cli(home, "sync", "--json")
    assert "Traceback" not in result.err and "unexpected" not in result.err, result.err
    wanted = expected_checksums(demo_server, key, album_id)
    assert_consistent(home, dest, wanted)
    assert cli(home, "sync").code == 0
    assert_converged(home, dest, wanted)


@pytest.mark.parametrize("hostile_id", ["../../../../../../tmp/escaped-by-id", "..", "a/b", "x\\..\\y"])
def test_hostile_asset_ids_never_become_paths(home, tmp_path, demo_server, demo_library, hostile_id) -> None:  # type: ignore[no-untyped-def]
    """Asset ids name the hidden partial files: an id like ``../../x`` must not write anywhere."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "deep" / "er" / "Family"
    add(home, "Family 2024", dest)
    album_id = demo_library.albums["Family 2024"]
    wanted = expected_checksums(demo_server, key, album_id)
    data = _listing_json(demo_server, key, album_id)
    payload = b"\xff\xd8 planted by a hostile server \xff\xd9"
    planted = dict(data["assets"]["items"][0])
    planted.update({"id": hostile_id, "originalFileName": "planted.jpg", "checksum": sha1_b64(payload),
                    "livePhotoVideoId": "../../motion"})
    planted["exifInfo"] = {**(planted.get("exifInfo") or {}), "fileSizeInByte": len(payload)}
    data["assets"]["items"].append(planted)
    plain = next(i for i in data["assets"]["items"] if not i.get("livePhotoVideoId"))
    plain["livePhotoVideoId"] = "../../../etc/motion"  # a motion part that is not one
    _serve_listing(demo_server, data, times=None)
    demo_server.faults.add(Fault(path=r"(escaped|\.\.|a/b|motion).*/original$", raw_body=payload,
                                 content_type="image/jpeg", times=None))
    before = outside_snapshot(tmp_path, dest, home, tmp_path / "server-storage")
    result = cli(home, "sync", "--json")
    assert "Traceback" not in result.err and "unexpected" not in result.err, result.err
    after = outside_snapshot(tmp_path, dest, home, tmp_path / "server-storage")
    assert after == before, after - before
    assert not [p for p in Path("/tmp").glob("*escaped-by-id*")]
    assert not [n for n, d in final_files(dest).items() if d == payload]
    assert_converged(home, dest, wanted)  # the junk item is skipped; the album itself syncs


def test_files_already_in_the_folder_are_never_overwritten(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """The user's own IMG_0002.jpg (other bytes) stays as it is; the asset takes another name."""
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    dest.mkdir()
    mine = b"the user's own picture, not the server's"
    (dest / "IMG_0002.jpg").write_bytes(mine)
    (dest / "IMG_0003.jpg").symlink_to(tmp_path / "elsewhere.jpg")  # a dangling link of theirs
    add(home, "Family 2024", dest)
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert (dest / "IMG_0002.jpg").read_bytes() == mine
    assert (dest / "IMG_0003.jpg").is_symlink() and not (tmp_path / "elsewhere.jpg").exists()
    on_disk = {sha1_b64(d) for d in final_files(dest).values()}
    assert set(expected_checksums(demo_server, key, demo_library.albums["Family 2024"]).values()) <= on_disk


def test_symlinked_subfolder_never_leads_outside(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """With a {year} template, a year folder that is a link to somewhere else is not followed."""
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    outside = tmp_path / "outside"
    outside.mkdir()
    dest.mkdir()
    (dest / "2024").symlink_to(outside, target_is_directory=True)
    add(home, "Family 2024", dest, "--template", "{year}")
    result = cli(home, "sync", "--json")
    assert "Traceback" not in result.err
    assert list(outside.iterdir()) == [], "files were written through the link"
    if result.code:
        assert "outside the album folder" in json.dumps(result.json())


def test_our_file_replaced_by_a_link_elsewhere_is_left_alone(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """The user replaces a synced photo by a link to another folder: theirs now, never written through."""
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    assert cli(home, "sync").code == 0
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(b"kept elsewhere by the user")
    (dest / "IMG_0002.jpg").unlink()
    (dest / "IMG_0002.jpg").symlink_to(elsewhere)
    sqlite_force_relist(home)
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    assert result.json()["albums"][0]["changed_locally"] == ["IMG_0002.jpg"]  # type: ignore[index]
    assert elsewhere.read_bytes() == b"kept elsewhere by the user"
    assert (dest / "IMG_0002.jpg").is_symlink()


def test_junk_in_the_album_list_is_survived(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """Album counts that are not counts, albums without usable ids, nulls: one clear outcome, no crash."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    albums = requests.get(f"{demo_server.api_url}/albums", headers={"x-api-key": key}, timeout=10).json()
    junk_counts = ["lots", -5, 1e30, None, [1], {"n": 1}, True]
    for number, album in enumerate(albums):
        album["assetCount"] = junk_counts[number % len(junk_counts)]
    albums += [{"id": "../../x", "albumName": None}, {"albumName": "no id"}, None, "album", 7]
    demo_server.faults.add(Fault(path=r"/albums$", raw_body=json.dumps(albums).encode(),
                                 content_type="application/json", times=None))
    for args in (("sync", "--json"), ("albums",), ("status",)):
        result = cli(home, *args)
        assert "Traceback" not in result.err and "unexpected" not in result.err, (args, result.err)
    listed = cli(home, "albums", "--json").json()
    assert sorted(a["name"] for a in listed) == sorted(demo_library.albums)  # type: ignore[union-attr,index]
    assert_consistent(home, dest, expected_checksums(demo_server, key, demo_library.albums["Family 2024"]))


def test_absurd_capture_dates_are_survived(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """Year 1 at +14:00, year 9999 at -14:00, garbage, month 13: no crash, every photo arrives."""
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest, "--template", "{year}/{month}")
    album_id = demo_library.albums["Family 2024"]
    wanted = expected_checksums(demo_server, key, album_id)
    data = _listing_json(demo_server, key, album_id)
    stamps = ["", "garbage", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z",
              "9999-12-31T23:59:59Z", "12345", "2024-13-45T99:99:99Z", "1950-06-01T12:00:00Z"]
    for item, stamp in zip(data["assets"]["items"], stamps, strict=False):
        item["fileCreatedAt"] = stamp
    _serve_listing(demo_server, data, times=None)
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out + result.err
    assert "Traceback" not in result.err
    assert_converged(home, dest, wanted)


def test_asset_without_checksum_is_never_written_unverified(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    album_id = demo_library.albums["Family 2024"]
    data = _listing_json(demo_server, key, album_id)
    victim = next(i for i in data["assets"]["items"] if not i.get("livePhotoVideoId"))
    victim["checksum"] = None
    _serve_listing(demo_server, data, times=1)
    result = cli(home, "sync", "--json")
    album = result.json()["albums"][0]  # type: ignore[index]
    assert result.code == 1 and album["failed"] == 1
    assert len(album["errors"]) == 1 and "no checksum" in album["errors"][0]
    assert victim["id"] not in originals_requested(demo_server)
    assert cli(home, "sync").code == 0  # the server's next answer is whole again
    assert_converged(home, dest, expected_checksums(demo_server, key, album_id))
