"""Shared by the reliability tests: real small file systems, consistency checks, library set-up.

Nothing here stands in for the app's own code: the app runs as it ships (in-process through
``cli()`` or as a subprocess), against the built-in server over real HTTP and real disks.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e_helpers import album_listing, cli

PARTIAL_PREFIX = ".~tray-sync-"
TRASH = ".tray-sync-trash"


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def originals_requested(server) -> list[str]:  # type: ignore[no-untyped-def]
    """Asset ids of every original the server was asked for, one by one or in a ZIP archive."""
    ids: list[str] = []
    for record in list(server.requests):
        if record.path.endswith("/original"):
            ids.append(record.path.split("/")[-2])
        elif record.path.endswith("/download/archive") and record.body:
            ids.extend(str(i) for i in (record.json() or {}).get("assetIds", []))
    return ids


@dataclass
class BulkAlbum:
    album_id: str
    name: str
    ids: list[str]


def bulk_album(server, library, name: str, count: int, size: int, seed: int = 7) -> BulkAlbum:  # type: ignore[no-untyped-def]
    album_id = server.add_album(library.admin, name)
    ids = server.add_assets_bulk(library.admin, count, size, album_id, seed=seed)
    return BulkAlbum(album_id, name, ids)


def add(home: Path, album: str, dest: Path, *extra: str) -> None:
    result = cli(home, "add", album, str(dest), *extra)
    assert result.code == 0, result.err


def set_setting(home: Path, key: str, value: object) -> None:
    """Change one setting the way the settings dialog does: through the app's store."""
    from tray_sync.sync.store import Store

    store = Store(home / "tray-sync.sqlite3")
    try:
        store.set_setting(key, value)
    finally:
        store.close()


def expected_checksums(server, key: str, album_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """asset id -> base64 SHA-1 for every file the album should produce (motion parts included)."""
    listing = album_listing(server, key, album_id)
    wanted = {str(a["id"]): str(a["checksum"]) for a in listing}
    for item in listing:
        motion = item.get("livePhotoVideoId")
        if motion:
            wanted[str(motion)] = sha1_b64(server.asset_bytes(str(motion)))
    return wanted


def final_files(dest: Path) -> dict[str, bytes]:
    """Every file under a final name (no partials, no trash) by relative path."""
    found = {}
    if not dest.exists():
        return found
    for path in sorted(dest.rglob("*")):
        if path.is_file() and TRASH not in path.parts and not path.name.startswith(PARTIAL_PREFIX):
            found[path.relative_to(dest).as_posix()] = path.read_bytes()
    return found


def partial_files(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.name.startswith(PARTIAL_PREFIX)] if dest.exists() else []


def assert_consistent(home: Path, dest: Path, wanted: dict[str, str], earlier: frozenset[str] = frozenset()) -> None:
    """What must hold after any run, however it ended (kill -9 included).

    * the database passes SQLite's integrity check;
    * every file under a final name holds exactly the bytes of one wanted asset: never a
      partial, never corrupt, and no asset twice (no duplicate downloads);
    * every row the database has for the album names a file that is there, with the size,
      and the bytes, the row claims;
    * partial files are only ever under the app's hidden partial names.

    ``earlier``: checksums the album's assets had before the server changed them (a copy of
    an earlier version, or of a photo since removed from the album, is not a stranger).
    """
    db = sqlite3.connect(home / "tray-sync.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute(
            "SELECT s.asset_id, s.local_path, s.file_size, s.checksum, s.state FROM synced_assets s "
            "JOIN album_syncs a ON a.id = s.album_sync_id WHERE a.local_path = ?",
            (str(dest.resolve()),),
        ).fetchall()
    finally:
        db.close()
    on_disk = final_files(dest)
    sums = [sha1_b64(data) for data in on_disk.values()]
    allowed = set(wanted.values()) | earlier
    strangers = [name for name, data in on_disk.items() if sha1_b64(data) not in allowed]
    assert not strangers, f"files under final names that are no asset's bytes: {strangers}"
    assert len(sums) == len(set(sums)), "an asset was written twice (duplicate download)"
    for asset_id, local_path, size, checksum, state in rows:
        assert local_path in on_disk, f"the database claims {local_path} but it is not there"
        data = on_disk[local_path]
        assert len(data) == size and sha1_b64(data) == checksum, local_path
        assert checksum == wanted.get(asset_id, checksum) or checksum in earlier, local_path
        assert state == "synced" or (earlier and state in ("removed", "changed_locally")), (local_path, state)
    for partial in partial_files(dest):
        assert partial.name.endswith(".partial"), partial


def assert_converged(home: Path, dest: Path, wanted: dict[str, str]) -> None:
    assert_consistent(home, dest, wanted)
    on_disk = final_files(dest)
    assert sorted(sha1_b64(d) for d in on_disk.values()) == sorted(wanted.values())
    assert not partial_files(dest)


# -- a small real file system ----------------------------------------------------------------


@contextmanager
def small_filesystem(path: Path, size_kb: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallFs]:
    """A real ``size_kb`` file system at ``path`` (tmpfs) where the machine allows mounting.

    Elsewhere (not root, a container without CAP_SYS_ADMIN) the same budget is enforced by
    an injected ``ENOSPC`` at the OS write layer for files opened below ``path`` in this
    process, which is what a full disk looks like to the app. Never skipped.
    """
    path.mkdir(parents=True, exist_ok=True)
    fs = SmallFs(path, size_kb * 1024, "injected")
    if os.name == "posix" and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(path)],
                                 capture_output=True, text=True)
        if mounted.returncode == 0:
            fs.kind = "tmpfs"
            try:
                yield fs
            finally:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)
            return
    fs.install_injection(monkeypatch)
    yield fs


class SmallFs:
    def __init__(self, path: Path, size: int, kind: str) -> None:
        self.path = path
        self.size = size
        self.kind = kind
        self.used = 0

    def grow(self, size_kb: int) -> None:
        """Make room: a bigger file system (the user freed space)."""
        self.size = size_kb * 1024
        if self.kind == "tmpfs":
            subprocess.run(["mount", "-o", f"remount,size={size_kb}k", str(self.path)], check=True)

    def fill(self) -> Path:
        """Somebody else fills the disk (a video copied meanwhile): write until it is full."""
        ballast = self.path / "ballast.bin"
        if self.kind != "tmpfs":
            self.used = self.size
            return ballast
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for block in (1 << 20, 4096):
                try:
                    while True:
                        os.write(fd, b"\0" * block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        return ballast

    def install_injection(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_fdopen = os.fdopen
        fs = self

        def fdopen(fd: int, *args, **kwargs):  # type: ignore[no-untyped-def]
            handle = real_fdopen(fd, *args, **kwargs)
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = ""
            if target.startswith(str(fs.path.resolve())) and isinstance(handle, io.BufferedIOBase):
                return _BudgetedFile(handle, fs)
            return handle

        monkeypatch.setattr(os, "fdopen", fdopen)


class _BudgetedFile:
    def __init__(self, inner, fs: SmallFs) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self._fs = fs

    def write(self, data: bytes) -> int:
        pages = max(4096, -(-len(data) // 4096) * 4096)  # like tmpfs: whole pages
        if self._fs.used + pages > self._fs.size:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._fs.used += pages
        return int(self._inner.write(data))

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._inner, name)

    def __enter__(self) -> _BudgetedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()
