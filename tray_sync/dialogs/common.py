"""Pieces the dialog presenters share, free of tkinter: background work and plain-language formats.

Presenters never start threads themselves: they hand slow jobs (talking to the server, sizing
albums, moving files) to a :class:`Worker`. The Tk implementation (``tk_worker.TkWorker``) runs
them on a daemon thread and brings the results back to the Tk thread through a queue drained
with ``after()``; tests use :class:`InlineWorker`, which runs everything at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tray_sync.sync.errors import TraySyncError

log = logging.getLogger(__name__)

T = TypeVar("T")

Post = Callable[[Callable[[], None]], None]


class Worker(Protocol):
    """Runs slow jobs off the UI thread; every callback it makes runs on the UI thread."""

    def run(
        self,
        job: Callable[[Post], T],
        done: Callable[[T], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        """Run ``job(post)`` in the background; ``post(fn)`` runs ``fn`` on the UI thread meanwhile."""

    def close(self) -> None:
        """Drop every result that has not been delivered yet (the window is going away)."""


class InlineWorker:
    """A :class:`Worker` that runs jobs at once on the calling thread (tests, scripts)."""

    def __init__(self) -> None:
        self.closed = False
        self.jobs = 0

    def run(
        self,
        job: Callable[[Post], T],
        done: Callable[[T], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        self.jobs += 1

        def post(fn: Callable[[], None]) -> None:
            if not self.closed:
                fn()

        try:
            result = job(post)
        except Exception as exc:
            if not self.closed:
                failed(exc)
            return
        if not self.closed:
            done(result)

    def close(self) -> None:
        self.closed = True


def describe_error(exc: BaseException) -> str:
    """One line a user can act on; unexpected exceptions are logged in full and named briefly."""
    if isinstance(exc, TraySyncError):
        return exc.message
    log.error("Unexpected error in a dialog job", exc_info=exc)
    return f"Something unexpected went wrong ({type(exc).__name__}: {exc}); the log file has the details."


# -- plain-language formats ---------------------------------------------------------------


def human_size(size: float | None) -> str:
    if size is None:
        return "…"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            if unit == "bytes":
                return f"{int(value)} byte{'s' if int(value) != 1 else ''}"
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def relative_time(value: str | datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 minutes ago', 'yesterday at 14:05', or a date; 'never' for None."""
    moment = parse_time(value)
    if moment is None:
        return "never"
    now = now or datetime.now(UTC)
    delta = (now - moment).total_seconds()
    if delta < 0:  # in the future: a due time
        ahead = -delta
        if ahead < 60:
            return "in less than a minute"
        if ahead < 3600:
            return f"in {plural(round(ahead / 60), 'minute')}"
        local = moment.astimezone()
        return f"at {local:%H:%M}" if ahead < 86400 else f"on {local:%d %b at %H:%M}"
    if delta < 45:
        return "just now"
    if delta < 3600:
        return f"{plural(max(1, round(delta / 60)), 'minute')} ago"
    if delta < 6 * 3600:
        return f"{plural(round(delta / 3600), 'hour')} ago"
    local = moment.astimezone()
    today = now.astimezone().date()
    if local.date() == today:
        return f"today at {local:%H:%M}"
    if (today - local.date()).days == 1:
        return f"yesterday at {local:%H:%M}"
    return f"{local:%d %b %Y at %H:%M}"


# -- folders ------------------------------------------------------------------------------


def pictures_folder() -> Path:
    """The platform's Pictures folder (XDG on Linux), falling back to ~/Pictures."""
    try:
        import platformdirs

        return Path(platformdirs.user_pictures_dir())
    except Exception:  # platformdirs knows every platform; a broken XDG file must not stop setup
        log.debug("No pictures folder from platformdirs", exc_info=True)
        return Path.home() / "Pictures"


def existing_ancestor(path: Path) -> Path:
    current = path.expanduser()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def free_space(path: Path) -> int | None:
    try:
        return shutil.disk_usage(existing_ancestor(path)).free
    except OSError:
        return None


def disk_id(path: Path) -> object:
    """Which disk ``path`` would be written to (its nearest existing folder's device)."""
    try:
        return existing_ancestor(path).stat().st_dev
    except OSError:
        return existing_ancestor(path).anchor


FOLDER_COUNT_LIMIT = 1000


def folder_problem(path: Path) -> tuple[str | None, str | None]:
    """(error, warning) about syncing into ``path``: an error blocks, a warning only informs."""
    target = path.expanduser()
    if not target.is_absolute():
        return "Choose a full folder path.", None
    if target.exists() and not target.is_dir():
        return f"{target} is a file, not a folder.", None
    anchor = existing_ancestor(target)
    if not os.access(anchor, os.W_OK | os.X_OK):
        return f"{anchor} is not writable: choose another folder.", None
    if target.is_dir():
        try:
            # counted up to a limit: this runs on the Tk thread, and a folder may hold a whole library
            with os.scandir(target) as entries:
                count = sum(1 for _ in itertools.islice(entries, FOLDER_COUNT_LIMIT + 1))
        except OSError as exc:
            return f"{target} cannot be read ({exc.strerror}).", None
        if count:
            amount = (f"more than {FOLDER_COUNT_LIMIT} items" if count > FOLDER_COUNT_LIMIT
                      else plural(count, "item"))
            return None, (f"{target.name} already holds {amount}; they stay untouched and the "
                          "album's photos are added beside them.")
    return None, None


def folder_key(path: Path) -> str:
    """One spelling per folder: resolved, and case-folded (one folder on Windows and macOS)."""
    return str(path.expanduser().resolve()).casefold()


def free_album_folder(root: Path, album_name: str, taken: set[str]) -> Path:
    """``root/<album name>``, or "<album name> (2)", (3)… when another album has that folder.

    ``taken`` holds :func:`folder_key` of the folders in use; the one returned is added to it.
    """
    from tray_sync.sync.connect import default_album_folder

    base = default_album_folder(root, album_name)
    folder, number = base, 2
    while folder_key(folder) in taken:
        folder, number = base.with_name(f"{base.name} ({number})"), number + 1
    taken.add(folder_key(folder))
    return folder


def offered_album_folder(store: Any, connection_id: int, album_name: str) -> Path:
    """Where an album the server offers goes: the connection's folder for new albums (chosen in
    setup), else Pictures/Immich; a folder of its own even when another album has the same name."""
    root = pictures_folder() / "Immich"
    try:
        chosen = store.connection(connection_id).new_album_root
    except TraySyncError:
        chosen = None
    if chosen:
        root = Path(chosen)
    return free_album_folder(root, album_name, {folder_key(Path(a.local_path)) for a in store.album_syncs()})


def first_line(text: Any, limit: int = 200) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
