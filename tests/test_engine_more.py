"""Engine requirements of issue 2 that the end-to-end suite did not prove on its own.

External-library assets (size-only check), the free-space check, the new-album policy "auto",
the folder template, pause/cancel while the server stalls mid-body, and the no-op sync: the
album's contents are fetched only when its fingerprint changed (2.x: the inlined album; 3.x:
the search), yet relisted at least daily.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e_helpers import album_listing, cli, connect, files_in, no_partials, original_bytes
from tray_sync.context import Context
from tray_sync.paths import AppPaths
from tray_sync.sync.progress import CancelToken

pytestmark = pytest.mark.usefixtures("memory_keyring")


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def originals(server) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path.split("/")[-2] for r in server.requests if r.path.endswith("/original")]


def set_setting(home: Path, key: str, value: object) -> None:
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        ctx.store.set_setting(key, value)
    finally:
        ctx.close()


# -- external libraries: the checksum is of the path, so only the size can be checked -----------


def test_external_library_assets_are_checked_by_size_only(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    admin = demo_library.admin
    album = demo_server.add_album(admin, "NAS import")
    ext = [demo_server.add_asset(admin, f"scan_{n}.jpg", data=bytes([n]) * (3000 + n), albums=[album],
                                 external=True) for n in range(3)]
    own = demo_server.add_asset(admin, "phone.jpg", albums=[album])
    key = demo_library.download_key
    listing = {a["id"]: a for a in album_listing(demo_server, key, album)}
    for asset_id in ext:  # what makes them "external": the checksum does not match the bytes
        assert listing[asset_id]["checksum"] != sha1_b64(original_bytes(demo_server, key, asset_id))
    connect(home, demo_server, key)
    dest = tmp_path / "NAS"
    assert cli(home, "add", "NAS import", str(dest)).code == 0

    first = cli(home, "sync", "--json")
    assert first.code == 0, first.out + first.err
    assert first.json()["albums"][0]["downloaded"] == 4  # type: ignore[index]
    local = files_in(dest)
    assert sorted(local) == ["phone.jpg", "scan_0.jpg", "scan_1.jpg", "scan_2.jpg"]
    for n, asset_id in enumerate(ext):
        assert local[f"scan_{n}.jpg"] == original_bytes(demo_server, key, asset_id)
    assert local["phone.jpg"] == original_bytes(demo_server, key, own)

    # Re-sync after the album changed (so it is relisted): nothing downloaded again.
    demo_server.rename_album(album, "NAS import")
    demo_server.clear_requests()
    again = cli(home, "sync", "--json")
    assert again.code == 0 and originals(demo_server) == []

    # New bytes of another size on the server: the size tells, and our untouched copy is replaced.
    demo_server.replace_asset_bytes(ext[1], b"new scan" * 1000)
    demo_server.clear_requests()
    replaced = cli(home, "sync", "--json")
    assert replaced.code == 0, replaced.out
    assert originals(demo_server) == [ext[1]]
    assert (dest / "scan_1.jpg").read_bytes() == b"new scan" * 1000
    assert no_partials(dest)

    # A body of the wrong size is refused even without a usable checksum.
    from tray_sync.demo.server import Fault

    (dest / "scan_2.jpg").unlink()
    demo_server.faults.add(Fault(path=rf"/assets/{ext[2]}/original$", raw_body=b"short", times=None))
    short = cli(home, "sync", "--json")
    assert short.code == 1
    assert not (dest / "scan_2.jpg").exists() and no_partials(dest)


# -- free space ---------------------------------------------------------------------------------


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_free_space_check_stops_the_album_before_downloading(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    set_setting(home, "free_space_reserve_mb", 1024 ** 3)  # a petabyte in reserve: never free
    demo_server.clear_requests()
    result = cli(home, "sync")
    assert result.code == 1
    assert "Not enough free space" in result.err and "reserve" in result.err
    lines = [line for line in result.err.splitlines() if "Not enough free space" in line]
    assert lines and all("Free some space or choose a folder on another disk" in line for line in lines), result.err
    assert originals(demo_server) == [] and files_in(dest) == {}
    assert not [r for r in demo_server.requests if r.path.endswith("/download/archive")]
    status = cli(home, "status", "--json").json()["albums"][0]  # type: ignore[index]
    assert "Not enough free space" in status["last_error"]

    set_setting(home, "free_space_reserve_mb", 1)
    assert cli(home, "sync").code == 0
    assert len(files_in(dest)) == len(album_listing(demo_server, demo_library.download_key,
                                                      demo_library.albums["Family 2024"])) + 1  # + motion


# -- new albums: policy "auto" ------------------------------------------------------------------


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_new_album_policy_auto_adds_and_syncs_it_in_the_same_pass(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    root = tmp_path / "New albums"
    result = cli(home, "connect", demo_server.url, "--name", "home", "--api-key-stdin",
                 "--new-albums", "auto", "--new-album-root", str(root), stdin=demo_library.download_key + "\n")
    assert result.code == 0, result.err
    assert cli(home, "add", "Family 2024", str(tmp_path / "Family")).code == 0
    assert cli(home, "sync").code == 0
    assert not root.exists() or list(root.iterdir()) == [], "albums that existed at connect are not new"

    admin, bob = demo_library.admin, demo_library.bob
    created = demo_server.add_album(admin, "Wedding: 2025/06")
    photos = [demo_server.add_asset(admin, f"W{n}.jpg", albums=[created]) for n in range(3)]
    shared = demo_server.add_album(bob, "Bob's Trip", shared_with=[(admin, "viewer")])
    demo_server.add_asset(bob, "trip.jpg", albums=[shared])
    report = cli(home, "sync", "--json")
    assert report.code == 0, report.out + report.err
    names = {a["album_name"]: a for a in report.json()["albums"]}  # type: ignore[index]
    assert set(names) == {"Family 2024", "Wedding: 2025/06", "Bob's Trip"}
    wedding = Path(names["Wedding: 2025/06"]["path"])
    assert wedding.parent == root.resolve() and "/" not in wedding.name and ":" not in wedding.name
    assert names["Wedding: 2025/06"]["downloaded"] == 3
    key = demo_library.download_key
    assert sorted(files_in(wedding).values()) == sorted(original_bytes(demo_server, key, p) for p in photos)
    assert names["Bob's Trip"]["downloaded"] == 1


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_new_album_policy_ignore_is_the_default(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    connect(home, demo_server, demo_library.download_key)
    assert cli(home, "add", "Family 2024", str(tmp_path / "Family")).code == 0
    assert cli(home, "sync").code == 0
    demo_server.add_album(demo_library.admin, "Ignored")
    report = cli(home, "sync", "--json")
    assert [a["album_name"] for a in report.json()["albums"]] == ["Family 2024"]  # type: ignore[index]


# -- folder template ----------------------------------------------------------------------------


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_folder_template_by_capture_date(home: Path, tmp_path: Path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    admin = demo_library.admin
    album = demo_server.add_album(admin, "Years")
    dates = [datetime(2023, 12, 31, 23, 30, tzinfo=UTC), datetime(2024, 2, 3, 8, 0, tzinfo=UTC),
             datetime(2024, 2, 20, 8, 0, tzinfo=UTC)]
    ids = [demo_server.add_asset(admin, f"P{n}.jpg", file_created_at=d, albums=[album]) for n, d in enumerate(dates)]
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Years"
    bad = cli(home, "add", "Years", str(dest), "--template", "{year}/../{nope}")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1
    assert cli(home, "add", "Years", str(dest), "--template", "{year}/{month}").code == 0
    assert cli(home, "sync").code == 0
    local = files_in(dest)
    key = demo_library.download_key
    assert local == {
        "2023/12/P0.jpg": original_bytes(demo_server, key, ids[0]),
        "2024/02/P1.jpg": original_bytes(demo_server, key, ids[1]),
        "2024/02/P2.jpg": original_bytes(demo_server, key, ids[2]),
    }
    assert (dest / "2024/02/P1.jpg").stat().st_mtime == dates[1].timestamp()
    demo_server.rename_album(album, "Years")  # relisted: the names stick, nothing downloaded again
    demo_server.clear_requests()
    assert cli(home, "sync").code == 0 and originals(demo_server) == []
    assert files_in(dest) == local


# -- pause / cancel while the server stalls mid-body --------------------------------------------


def _pause_once_started(ctx: Context, started: Callable[[], bool], what: str, settle: float):  # type: ignore[no-untyped-def]
    """Run a sync in a thread; once ``started()`` holds (within 20 s) and ``settle`` seconds more,
    pause it. Returns the report and how long the sync took to return after the pause; the sync
    must end within 5 s whatever happens (the caller asserts the bound it cares about)."""
    token = CancelToken()
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["report"] = ctx.engine().sync(cancel=token)
        outcome["returned"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    try:
        worker.start()
        deadline = time.monotonic() + 20
        while not started():
            assert time.monotonic() < deadline, what
            time.sleep(0.02)
        time.sleep(settle)
        cancelled_at = time.monotonic()
        token.cancel("paused")
        worker.join(5)
        assert not worker.is_alive(), "the sync did not stop"
        return outcome["report"], float(outcome["returned"]) - cancelled_at  # type: ignore[arg-type]
    finally:
        token.cancel("test over")
        worker.join(5)


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_cancel_takes_effect_within_a_second_while_the_server_stalls_mid_body(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    stall = demo_server.faults.add(Fault(path=r"/(original|download/archive)$", stall_after_bytes=2000,
                                         stall_seconds=60, times=None))
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        # A body has started, then stopped; the pause comes well into the stall.
        report, took = _pause_once_started(
            ctx, lambda: stall.hits > 0 and bool(list(dest.glob(".~tray-sync-*"))), "no download started", 0.3)
        assert took < 1.0, f"cancel took {took:.2f} s"
        assert [a.state.value for a in report.albums] == ["cancelled"]
        assert [p for p in dest.iterdir() if not p.name.startswith(".~tray-sync-")] == [], \
            "nothing half-written under a final name"
    finally:
        ctx.close()
    demo_server.faults.clear()
    resumed = cli(home, "sync", "--json")
    assert resumed.code == 0, resumed.out
    listing = album_listing(demo_server, key, demo_library.albums["Family 2024"])
    wanted = {a["id"] for a in listing} | {a["livePhotoVideoId"] for a in listing if a.get("livePhotoVideoId")}
    assert sorted(files_in(dest).values()) == sorted(original_bytes(demo_server, key, i) for i in wanted)
    assert no_partials(dest)


# -- a no-op sync does not fetch the album's contents; a daily relist does ----------------------


def _content_requests(server, album_id: str) -> int:  # type: ignore[no-untyped-def]
    """Requests that list the album's assets: the search (3.x) or the inlined album (2.x).

    (3.x removed the assets from ``GET /albums/{id}``, so there that request is only metadata.)
    """
    if server.is_v3:
        return sum(1 for r in server.requests
                   if r.path.endswith("/search/metadata") and album_id in r.body.decode(errors="replace"))
    return sum(1 for r in server.requests
               if r.path.endswith(f"/albums/{album_id}") and "withoutAssets=true" not in r.query)


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_album_contents_are_fetched_only_when_the_fingerprint_changed(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Family"
    album_id = demo_library.albums["Family 2024"]
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    demo_server.clear_requests()
    assert cli(home, "sync").code == 0
    assert _content_requests(demo_server, album_id) >= 1

    demo_server.clear_requests()
    assert cli(home, "sync").code == 0
    assert _content_requests(demo_server, album_id) == 0, "unchanged album listed again"
    assert originals(demo_server) == []

    victim = sorted(dest.iterdir())[0]
    victim.unlink()  # noticed without a listing: a stat per file
    demo_server.clear_requests()
    assert cli(home, "sync").code == 0
    assert _content_requests(demo_server, album_id) == 0 and len(originals(demo_server)) == 1
    assert victim.exists()

    new = demo_server.add_asset(demo_library.admin, "late.jpg", albums=[album_id])
    demo_server.clear_requests()
    assert cli(home, "sync").code == 0
    assert _content_requests(demo_server, album_id) == 1 and originals(demo_server) == [new]

    # A day later the album is relisted even though nothing seems to have changed.
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        from tray_sync.sync.engine import SyncEngine

        demo_server.clear_requests()
        SyncEngine(ctx.store, ctx.key_for).sync()
        assert _content_requests(demo_server, album_id) == 0
        tomorrow = SyncEngine(ctx.store, ctx.key_for, clock=lambda: datetime.now(UTC) + timedelta(hours=25))
        report = tomorrow.sync()
        assert report.ok and _content_requests(demo_server, album_id) == 1
        assert originals(demo_server) == []
    finally:
        ctx.close()


# -- bounded parallel downloads ------------------------------------------------------------------


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_downloads_run_in_a_pool_bounded_by_the_setting(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    from tray_sync.sync.client import ImmichClient

    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    if workers != 4:
        set_setting(home, "parallel_downloads", workers)  # 4 is the default
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    real_download = ImmichClient.download

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(0.1)  # long enough for the others to start, if the pool lets them
            return real_download(self, *args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(ImmichClient, "download", counting)
    result = cli(home, "sync", "--json")
    assert result.code == 0, result.out
    files = result.json()["albums"][0]["downloaded"]  # type: ignore[index]
    assert files > 4
    assert state["peak"] == workers


# -- a partial that is already complete is never asked for with a range past its end -------------


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_complete_or_overlong_partials_are_never_resumed_past_the_end(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    from tray_sync.sync.fsops import partial_path

    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    assert cli(home, "sync").code == 0
    listing = album_listing(demo_server, key, demo_library.albums["Family 2024"])
    complete_id, overlong_id = (a["id"] for a in listing[:2])
    by_bytes = {data: name for name, data in files_in(dest).items()}
    for asset_id, extra in ((complete_id, b""), (overlong_id, b"junk after the end")):
        data = original_bytes(demo_server, key, asset_id)
        name = by_bytes[data]
        (dest / name).unlink()
        partial_path(dest / name, asset_id).write_bytes(data + extra)  # what a crash before the rename leaves
    demo_server.clear_requests()
    assert cli(home, "sync").code == 0
    asked = [r for r in demo_server.requests if r.path.endswith("/original")]
    assert [r.path.split("/")[-2] for r in asked] == [overlong_id], "the complete partial needs no request"
    assert all(not r.headers.get("Range") for r in asked), "never a range for a partial at or past its size"
    assert sorted(files_in(dest).values()) == sorted(by_bytes)
    assert no_partials(dest)


# -- a file that appears (or changes) at the final name during the download wins -------------------


def _stalled_sync(home: Path, dest: Path, demo_server, asset_id: str, meddle) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Sync while ``asset_id``'s download is held mid-body; ``meddle()`` runs during the stall."""
    from tray_sync.demo.server import Fault

    stall = demo_server.faults.add(Fault(path=rf"/assets/{asset_id}/original$", stall_after_bytes=500,
                                         stall_seconds=1.0, times=1))
    outcome: dict[str, object] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=cli(home, "sync", "--json")), daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while stall.hits == 0 or not list(dest.rglob(f".~tray-sync-{asset_id}*")):
        assert time.monotonic() < deadline, "the download did not start"
        time.sleep(0.01)
    meddle()
    worker.join(60)
    result = outcome["result"]
    return result.code, result.out  # type: ignore[attr-defined]


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_a_file_that_appears_at_the_name_during_the_download_is_never_overwritten(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    key = demo_library.download_key
    album_id = demo_library.albums["Holidays 2023"]
    connect(home, demo_server, key)
    dest = tmp_path / "Holidays"
    assert cli(home, "add", "Holidays 2023", str(dest)).code == 0
    assert cli(home, "sync").code == 0
    late = demo_server.add_asset(demo_library.admin, "late.jpg", albums=[album_id])
    code, out = _stalled_sync(home, dest, demo_server, late,
                              lambda: (dest / "late.jpg").write_bytes(b"the user's own file"))
    assert code == 1, out
    assert (dest / "late.jpg").read_bytes() == b"the user's own file"
    assert "appeared" in out and no_partials(dest)
    # The next run gives the asset a name of its own beside the user's file.
    assert cli(home, "sync").code == 0
    assert (dest / "late.jpg").read_bytes() == b"the user's own file"
    assert original_bytes(demo_server, key, late) in files_in(dest).values()


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_a_file_the_user_edits_while_its_new_version_downloads_is_kept(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Holidays"
    assert cli(home, "add", "Holidays 2023", str(dest)).code == 0
    assert cli(home, "sync").code == 0
    victim = demo_library.assets["Holidays 2023"][0]
    name = next(n for n, d in files_in(dest).items() if d == original_bytes(demo_server, key, victim))
    demo_server.replace_asset_bytes(victim, b"new version on the server" * 100)
    code, out = _stalled_sync(home, dest, demo_server, victim,
                              lambda: (dest / name).write_bytes(b"edited by the user meanwhile"))
    assert code == 1, out
    assert (dest / name).read_bytes() == b"edited by the user meanwhile"
    assert no_partials(dest)
    demo_server.clear_requests()
    again = cli(home, "sync", "--json")
    assert again.code == 0 and originals(demo_server) == []
    assert (dest / name).read_bytes() == b"edited by the user meanwhile"
    status = cli(home, "status", "--json").json()["albums"][0]  # type: ignore[index]
    assert status["changed_locally"] == [name]


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_new_albums_with_the_same_name_get_folders_of_their_own_and_a_missing_root_waits(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    root = tmp_path / "drive" / "New albums"
    root.mkdir(parents=True)
    result = cli(home, "connect", demo_server.url, "--name", "home", "--api-key-stdin",
                 "--new-albums", "auto", "--new-album-root", str(root), stdin=demo_library.download_key + "\n")
    assert result.code == 0, result.err
    assert cli(home, "sync").code == 0
    admin = demo_library.admin
    first, second = (demo_server.add_album(admin, "Party") for _ in range(2))
    for album_id, name in ((first, "one.jpg"), (second, "two.jpg")):
        demo_server.add_asset(admin, name, albums=[album_id])
    report = cli(home, "sync", "--json")
    assert report.code == 0, report.out
    paths = sorted(a["path"] for a in report.json()["albums"])  # type: ignore[index]
    assert paths == [str((root / "Party").resolve()), str((root / "Party (2)").resolve())]
    assert {name for p in paths for name in files_in(Path(p))} == {"one.jpg", "two.jpg"}

    # The drive with the root is not mounted: nothing is created underneath, and the album waits.
    (root.parent).rename(tmp_path / "unplugged")
    late = demo_server.add_album(admin, "Late")
    demo_server.add_asset(admin, "late.jpg", albums=[late])
    waiting = cli(home, "sync", "--json")
    assert not root.exists(), "the folder for new albums was created on the mount point"
    assert "Late" not in [a["album_name"] for a in waiting.json()["albums"]]  # type: ignore[index]
    (tmp_path / "unplugged").rename(tmp_path / "drive")  # plugged in again
    arrived = cli(home, "sync", "--json")
    assert arrived.code == 0, arrived.out
    late_album = next(a for a in arrived.json()["albums"] if a["album_name"] == "Late")  # type: ignore[index]
    assert late_album["path"] == str((root / "Late").resolve()) and late_album["downloaded"] == 1


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_setup_with_policy_auto_creates_the_root_so_new_albums_arrive(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wizard saves the root for new albums; a sync never creates it, so the wizard does."""
    from tests.test_dialog_presenters import make_setup

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        presenter, view, _controller = make_setup(ctx, tmp_path)
        presenter.run_check(demo_server.url, demo_library.download_key)
        presenter.next()
        presenter.toggle_album(demo_library.albums["Family 2024"])
        presenter.set_album_folder(demo_library.albums["Family 2024"], str(tmp_path / "Elsewhere" / "Family"))
        presenter.next()
        presenter.set_options(interval_minutes=60, new_album_policy="auto", autostart=False)
        presenter.next()
        assert view.closed
        root = tmp_path / "Photos"
        assert root.is_dir()
        assert ctx.engine().sync().ok
        fresh = demo_server.add_album(demo_library.admin, "Fresh")
        demo_server.add_asset(demo_library.admin, "fresh.jpg", albums=[fresh])
        report = ctx.engine().sync()
        assert report.ok and {a.album_name: a.path for a in report.albums}["Fresh"] == str((root / "Fresh").resolve())
        assert list(files_in(root / "Fresh")) == ["fresh.jpg"]
    finally:
        ctx.close()


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_settings_switching_to_auto_creates_the_root_so_new_albums_arrive(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dialog_presenters import make_settings

    monkeypatch.setattr("tray_sync.dialogs.common.pictures_folder", lambda: tmp_path / "Pictures")
    connect(home, demo_server, demo_library.download_key)  # policy "ignore", no folder for new albums
    assert cli(home, "add", "Family 2024", str(tmp_path / "Family")).code == 0
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        [connection] = ctx.store.connections()
        assert connection.new_album_root is None
        presenter, _view, _controller = make_settings(ctx)
        presenter.set_new_album_policy(connection.id, "auto")
        presenter.save()
        root = tmp_path / "Pictures" / "Immich"
        assert root.is_dir()
        assert ctx.store.connection(connection.id).new_album_root == str(root)
        fresh = demo_server.add_album(demo_library.admin, "Fresh")
        demo_server.add_asset(demo_library.admin, "fresh.jpg", albums=[fresh])
        report = ctx.engine().sync()
        assert report.ok and "Fresh" in [a.album_name for a in report.albums]
        assert list(files_in(root / "Fresh")) == ["fresh.jpg"]
    finally:
        ctx.close()


# -- mirrored removals: never after a pass with errors, never from a short listing ----------------


@pytest.mark.parametrize("server_mode", ["3"], ids=["immich3"])
def test_mirrored_removals_wait_for_a_clean_pass_and_a_complete_listing(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    album_id = demo_library.albums["Holidays 2023"]
    connect(home, demo_server, key)
    dest = tmp_path / "Holidays"
    assert cli(home, "add", "Holidays 2023", str(dest), "--mirror-removals").code == 0
    assert cli(home, "sync").code == 0
    listing = album_listing(demo_server, key, album_id)
    gone = listing[0]
    # A pass with an error (a new photo whose bytes never match): the removal waits.
    demo_server.remove_from_album(album_id, [gone["id"]])
    broken = demo_server.add_asset(demo_library.admin, "broken.jpg", albums=[album_id])
    demo_server.corrupt_asset(broken)
    failing = cli(home, "sync", "--json")
    assert failing.code == 1
    album = failing.json()["albums"][0]  # type: ignore[index]
    assert album["failed"] == 1 and album["removed"] == 0
    assert (dest / gone["originalFileName"]).exists(), "removed after a pass with errors"

    # A listing that comes back short of assetCount (one item missing): nothing removed either.
    demo_server.remove_from_album(album_id, [broken])
    items = album_listing(demo_server, key, album_id)
    short = {"albums": {"total": 0, "count": 0, "items": [], "facets": []},
             "assets": {"total": len(items) - 1, "count": len(items) - 1, "items": items[1:], "facets": [],
                        "nextPage": None}}
    demo_server.faults.add(Fault(path=r"/search/metadata$", body=short, status=200, times=1))
    partial = cli(home, "sync", "--json")
    assert partial.code == 0, partial.out
    album = partial.json()["albums"][0]  # type: ignore[index]
    assert album["removed"] == 0
    assert (dest / gone["originalFileName"]).exists()
    assert (dest / items[0]["originalFileName"]).exists(), "the item the short listing left out was removed"

    # A clean pass with the whole listing: now it goes to the album's trash folder.
    clean = cli(home, "sync", "--json")
    assert clean.code == 0 and clean.json()["albums"][0]["removed"] == 1  # type: ignore[index]
    assert not (dest / gone["originalFileName"]).exists()
    assert (dest / ".tray-sync-trash" / gone["originalFileName"]).exists()


# -- same names after case folding and Unicode normalisation -------------------------------------


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_names_equal_after_case_folding_or_normalisation_get_distinct_files(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    """A folder synced on Linux must survive a move to Windows or macOS: no two names may fold together."""
    import unicodedata

    admin = demo_library.admin
    album = demo_server.add_album(admin, "Cafés")
    names = ["Café.jpg", "Cafe\u0301.jpg", "CAFÉ.JPG", "café.jpg"]
    ids = [demo_server.add_asset(admin, name, albums=[album]) for name in names]
    key = demo_library.download_key
    connect(home, demo_server, key)
    dest = tmp_path / "Cafes"
    assert cli(home, "add", "Cafés", str(dest)).code == 0
    assert cli(home, "sync").code == 0
    local = files_in(dest)
    assert len(local) == 4
    folded = {unicodedata.normalize("NFC", name).casefold() for name in local}
    assert len(folded) == 4, sorted(local)
    assert sorted(local.values()) == sorted(original_bytes(demo_server, key, i) for i in ids)
    demo_server.rename_album(album, "Cafés")  # relisted: the same names again, nothing fetched
    demo_server.clear_requests()
    assert cli(home, "sync").code == 0 and originals(demo_server) == []
    assert files_in(dest) == local


@pytest.mark.parametrize("raw", ["0\x85..", "a \x85. .", "abc. \x85 .", "x\u3000.jpg", " . ", "\x85"])
def test_safe_names_are_idempotent_when_dots_hide_white_space(raw: str) -> None:
    """Found by the hypothesis test: '0\\x85..' became '0\\x85', which a second pass turned into '0'."""
    from tray_sync.sync.names import safe_component

    once = safe_component(raw)
    assert safe_component(once) == once
    assert once == once.strip() and not once.endswith((".", " "))


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
def test_cancel_within_a_second_while_an_archive_of_small_files_stalls(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library
) -> None:
    """Small files come as one ZIP archive: a stall there must not delay a pause either."""
    from tray_sync.demo.server import Fault

    admin = demo_library.admin
    album = demo_server.add_album(admin, "Many small")
    demo_server.add_assets_bulk(admin, 40, 2000, album, prefix="S_", seed=5)
    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Small"
    assert cli(home, "add", "Many small", str(dest)).code == 0
    stall = demo_server.faults.add(Fault(path=r"/(download/archive|original)$", stall_after_bytes=3000,
                                         stall_seconds=60, times=None))
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        _report, took = _pause_once_started(ctx, lambda: stall.hits > 0, "no download started", 0.5)
        assert took < 1.0, f"cancel took {took:.2f} s"
        assert any(r.path.endswith("/download/archive") for r in demo_server.requests), "no archive asked for"
    finally:
        ctx.close()
    whole = {a["checksum"] for a in album_listing(demo_server, demo_library.download_key, album)}
    for path in dest.rglob("*"):  # what has a final name after the pause is a whole, verified photo
        if path.is_file() and not path.name.startswith(".~tray-sync-"):
            assert sha1_b64(path.read_bytes()) in whole, path
    demo_server.faults.clear()
    assert cli(home, "sync").code == 0
    assert len(files_in(dest)) == 40 and no_partials(dest)


@pytest.mark.parametrize("server_mode", ["3", "2"], ids=["immich3", "immich2"])
@pytest.mark.parametrize("how", ["silent", "mid-body"])
def test_cancel_within_a_second_while_the_album_listing_stalls(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, demo_server, demo_library, how: str
) -> None:
    """Not only downloads: a listing the server stops answering must not hold a pause for a minute."""
    from tray_sync.demo.server import Fault

    connect(home, demo_server, demo_library.download_key)
    dest = tmp_path / "Family"
    assert cli(home, "add", "Family 2024", str(dest)).code == 0
    listing = r"/search/metadata$" if demo_server.is_v3 else rf"/albums/{demo_library.albums['Family 2024']}$"
    fault = (Fault(path=listing, delay_seconds=30, times=None) if how == "silent"
             else Fault(path=listing, stall_after_bytes=200, stall_seconds=30, times=None))
    stall = demo_server.faults.add(fault)
    ctx = Context(paths=AppPaths.resolve(str(home)))
    try:
        report, took = _pause_once_started(ctx, lambda: stall.hits > 0, "the listing was not asked for", 0.4)
        assert took < 1.0, f"cancel took {took:.2f} s"
        assert [a.state.value for a in report.albums] == ["cancelled"]
    finally:
        ctx.close()
    assert files_in(dest) == {}
