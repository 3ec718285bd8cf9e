"""The only code that writes into an album's folder.

Every write goes partial file -> verify -> fsync -> close -> rename-without-overwrite ->
directory fsync (the order rclone and restic use), so a final name only ever holds a
complete, verified file, and nothing is written outside the album's folder. Batches make the
fsyncs one flush per batch (before any name is given); small files from archives are written
to files with no name at all until then (:func:`open_unnamed`), where the system has them.
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


# -- unnamed files (Linux O_TMPFILE) -------------------------------------------------------------

_O_TMPFILE = getattr(os, "O_TMPFILE", None)
_PROC_FD = "/proc/self/fd"
_unnamed_refused: set[str] = set()  # folders whose file system has no unnamed files
_unnamed_lock = threading.Lock()
_proc_available: bool | None = None


def open_unnamed(folder: str) -> int | None:
    """A new file in ``folder`` with no name yet (Linux ``O_TMPFILE``), or None where there is none.

    The file system allocates it without taking the folder's lock, so several threads create
    files at once (with named partial files they queue on that lock), and a crash leaves
    nothing behind: an unnamed file is freed when its last descriptor closes. It gets its name
    with :func:`link_unnamed`, only once its data is durable. None on other systems, on file
    systems without it (FAT, exFAT, NFS, most FUSE) and where ``/proc`` is missing; the caller
    then writes a named partial file as usual.
    """
    global _proc_available
    if _O_TMPFILE is None or folder in _unnamed_refused:
        return None
    if _proc_available is None:
        _proc_available = os.path.isdir(_PROC_FD)
    if not _proc_available:
        return None
    try:
        return os.open(folder, _O_TMPFILE | os.O_RDWR, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            refuse_unnamed(folder)
            log.info("No unnamed files on the file system of %s (%s); using named partial files", folder, exc)
            return None
        raise


def unnamed_files_in(folder: str) -> bool:
    """Whether :func:`open_unnamed` works in ``folder`` (tried once, with a file closed at once)."""
    fd = open_unnamed(folder)
    if fd is None:
        return False
    os.close(fd)
    return True


def link_unnamed(fd: int, final: Path) -> None:
    """Give the unnamed file ``fd`` the name ``final``; never overwrites (``FileExistsError``).

    ``linkat(.., AT_SYMLINK_FOLLOW)`` through ``/proc/self/fd`` (the ``AT_EMPTY_PATH`` form
    needs a privilege): like the named path's ``link``, atomic, and it fails if the name is
    taken. A directory descriptor is passed on purpose: without one Python calls plain
    ``link()``, which links the /proc entry itself and fails with EXDEV.
    """
    os.link(str(fd), final, src_dir_fd=_proc_fd_dir(), follow_symlinks=True)


def refuse_unnamed(folder: str) -> None:
    """Named partial files from now on in ``folder`` (its file system refused an unnamed file)."""
    with _unnamed_lock:
        _unnamed_refused.add(folder)


_proc_dir: int | None = None


def _proc_fd_dir() -> int:
    global _proc_dir
    with _unnamed_lock:
        if _proc_dir is None:
            _proc_dir = os.open(_PROC_FD, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        return _proc_dir


def name_unnamed_as(fd: int, partial: Path) -> None:
    """Fallback when ``final`` cannot be linked directly: the unnamed file becomes ``partial``
    (by link, or by a copy where linking through ``/proc`` is refused), for :func:`publish`."""
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)  # a leftover partial of this very asset: ours, stale
        link_unnamed(fd, partial)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.ENOENT, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    out = os.open(partial, flags, 0o666)
    try:
        size = os.fstat(fd).st_size
        offset = 0
        while offset < size:
            sent = os.copy_file_range(fd, out, size - offset, offset, offset) if hasattr(os, "copy_file_range") else 0
            if sent <= 0:
                data = os.pread(fd, min(1 << 20, size - offset), offset)
                if not data:
                    break
                os.pwrite(out, data, offset)
                sent = len(data)
            offset += sent
        st = os.fstat(fd)
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.fsync(out)
    finally:
        os.close(out)


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
