"""The only code that writes into an album's folder.

Every write goes partial file -> verify -> fsync -> close -> rename-without-overwrite ->
directory fsync (the order rclone and restic use), so a final name only ever holds a
complete, verified file, and nothing is written outside the album's folder.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import threading
from pathlib import Path

from tray_sync.sync.errors import LocalDiskError
from tray_sync.sync.names import PARTIAL_PREFIX, TRASH_DIR

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"
_CRASH_ENV = "TRAY_SYNC_TEST_CRASH_AT"


_crash_hits: dict[str, int] = {}
_crash_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Named places where the crash tests kill the process (kill -9 semantics).

    ``TRAY_SYNC_TEST_CRASH_AT=name`` kills at the first pass, ``name:N`` at the N-th, so a
    crash loop can hit the middle of a sync rather than always its first file.
    """
    wanted = os.environ.get(_CRASH_ENV)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    with _crash_lock:
        _crash_hits[name] = _crash_hits.get(name, 0) + 1
        hit = _crash_hits[name]
    if hit >= (int(count) if count.isdigit() else 1):
        log.warning("test crash at %s (pass %d)", name, hit)
        os.kill(os.getpid(), 9)


def inside(root: Path, relative: str) -> Path:
    """``root/relative``, refusing anything that would land outside ``root``."""
    if _plainly_inside(root, relative):
        return root / relative
    candidate = (root / relative).resolve(strict=False)
    resolved_root = root.resolve(strict=False)
    if candidate != resolved_root and resolved_root not in candidate.parents:
        raise LocalDiskError(f"Refusing to write outside the album folder: {relative!r}.")
    return root / relative


def _plainly_inside(root: Path, relative: str) -> bool:
    """The quick answer for the usual case, with an lstat per component instead of a realpath.

    Plain names (no '..', '.', empty or absolute parts) of which none is a symbolic link
    resolve to ``realpath(root)/relative``, which is inside the root. Anything else takes the
    full check. Planning a 100,000-file album calls this once per file.
    """
    if not relative or relative.startswith("/") or any(c in relative for c in ("\\", ":", "\x00")):
        return False
    path = os.fspath(root)
    for part in relative.split("/"):
        if part in ("", ".", ".."):
            return False
        path = os.path.join(path, part)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return False
        except FileNotFoundError:
            return True  # nothing below a missing name can be a link
        except OSError:
            return False
    return True


def partial_path(final: Path, asset_id: str) -> Path:
    return final.parent / f"{PARTIAL_PREFIX}{asset_id}{PARTIAL_SUFFIX}"


def is_partial_name(name: str) -> bool:
    return name.startswith(PARTIAL_PREFIX) and name.endswith(PARTIAL_SUFFIX)


def fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Pages further back than this are left to the kernel: each call then looks at a bounded range.
_WRITEBACK_WINDOW = 64 * 1024 * 1024
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)


def start_writeback(fd: int, written: int) -> None:
    """Hand the bytes written so far to the disk now, and drop from the page cache what reached it.

    On Linux ``POSIX_FADV_DONTNEED`` starts the writeback of the range's dirty pages and frees
    its clean ones. Called after every chunk of a download, the disk works while the network
    does, the fsync before the rename waits for little, and the kernel spends far less time
    allocating and reclaiming page cache (profiled: about a third of the system time of a
    large-file sync). It also keeps a sync of many gigabytes from pushing everything else out
    of the cache. Only a hint: the fsync before the final name still makes the file durable.
    """
    if _DONTNEED is None:
        return
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, max(0, written - _WRITEBACK_WINDOW), 0, _DONTNEED)


def publish(
    partial: Path, final: Path, *, replace_expected: tuple[int, int] | None = None, sync_dir: bool = True
) -> None:
    """Give the finished ``partial`` its ``final`` name.

    Without ``replace_expected`` it never overwrites: a file that appeared at ``final`` after
    planning wins and this raises ``FileExistsError``. With ``(size, mtime_ns)`` it replaces
    ``final`` only while that file is still exactly what the app wrote. ``sync_dir=False``
    leaves the directory fsync to a caller that publishes a batch (one fsync per folder).
    """
    if replace_expected is not None:
        try:
            st = final.stat()
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_size, st.st_mtime_ns) != replace_expected:
            raise FileExistsError(errno.EEXIST, "changed since planning", str(final))
        os.replace(partial, final)
    else:
        try:
            os.link(partial, final)  # atomic and fails if the name is taken
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            # Some file systems (FAT, exFAT, some network shares) have no hard links.
            if os.path.lexists(final):
                raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
            os.rename(partial, final)
        else:
            crash_point("after_link")  # kill -9 tests: both names exist for a moment
            os.unlink(partial)
    if sync_dir:
        fsync_dir(final.parent)


def disk_error(exc: OSError, folder: Path) -> LocalDiskError:
    """One line a user understands for an OS error while writing into ``folder``."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return LocalDiskError(f"The disk holding {folder} is full: free some space, then sync again.")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return LocalDiskError(f"No permission to write in {folder}: check the folder's permissions.")
    if exc.errno == errno.EROFS:
        return LocalDiskError(f"{folder} is on a read-only disk: choose another folder.")
    if exc.errno == errno.ENOENT:
        return LocalDiskError(f"The folder {folder} disappeared during the sync (unmounted drive?).")
    if exc.errno == errno.ENAMETOOLONG:
        return LocalDiskError(f"A file name is too long for the disk holding {folder}.")
    return LocalDiskError(f"Cannot write in {folder}: {exc.strerror or exc}.")


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def move_to_trash(root: Path, relative: str) -> Path:
    """Move an app-written file into the album's own trash folder (never deletes)."""
    source = inside(root, relative)
    target = inside(root, f"{TRASH_DIR}/{relative}")
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate = target
    counter = 1
    while candidate.exists():
        counter += 1
        candidate = target.with_name(f"{target.stem} ({counter}){target.suffix}")
    os.rename(source, candidate)
    return candidate
