"""`tray-sync uninstall`: undo what the app set up outside its own files, before removing the package.

Turns autostart off, deletes every connection's API key from the keyring, and says where the
settings, database and logs are. ``--purge-profile`` also deletes those. Synced photos are
never touched: not even when an album folder sits inside the profile folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from tray_sync import APP_ID, autostart
from tray_sync.context import Context
from tray_sync.sync.errors import ConfigError, SecretStoreError

log = logging.getLogger(__name__)

# What the app itself writes in a profile folder. A folder chosen with --home may hold other things,
# so there only these go; a folder named for the app (platformdirs) is deleted whole.
_OWN_PATTERNS = (
    "tray-sync.sqlite3*", "tray-sync.lock", "sync.lock", "tray-sync.sock", "tray-sync.port", "tray-sync.log*",
)
_OWN_SUBFOLDERS = {"certificates": "*.pem"}

def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "uninstall",
        help="turn autostart off and delete the saved API keys (run before removing the package)",
        description="Turns autostart off, deletes the API keys from the keyring and shows where the settings, "
        "database and logs are. Synced photos are never touched.",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--purge-profile", action="store_true",
                        help="also delete the app's settings, database and logs")


def run(args: argparse.Namespace, ctx: Context) -> int:
    paths = ctx.paths
    running = _busy(ctx)
    if running and args.purge_profile:
        raise ConfigError(f"{running} with this profile: quit it first (tray menu > Quit, or wait for the sync), "
                          "then run `tray-sync uninstall --purge-profile` again. Nothing was changed.")
    has_database = paths.db_path.exists()
    connections = ctx.store.connections() if has_database else []
    albums = ctx.store.album_syncs() if has_database else []
    item = autostart.login_item()

    ctx.out("This will:")
    ctx.out(f"  - turn autostart off ({item.location})")
    if connections:
        ctx.out(f"  - delete {len(connections)} API key(s) from the keyring: "
                + ", ".join(c.account for c in connections))
    else:
        ctx.out("  - (no saved connections, so no API keys to delete)")
    if args.purge_profile:
        ctx.out("  - delete the settings, database and logs: " + ", ".join(str(p) for p in _profile_dirs(ctx)))
    ctx.out("Synced photos are never touched" + (":" if albums else "."))
    for album in albums:
        ctx.out(f"  {album.path}")
    if not args.yes and not _confirm(ctx):
        ctx.out("Nothing was changed.")
        return 1

    failures = 0
    removed = autostart.disable(item)
    ctx.out(f"Autostart: {'removed ' + item.location if removed else 'was already off'}.")

    for connection in connections:
        try:
            deleted = ctx.secrets.delete(connection.account)
        except SecretStoreError as exc:
            failures += 1
            ctx.err(f"Could not delete the key of {connection.account}: {exc.message}")
            continue
        ctx.out(f"API key of {connection.account}: {'deleted' if deleted else 'was not in the keyring'}.")
    if os.environ.get("IMMICH_API_KEY"):
        ctx.out("IMMICH_API_KEY is set in your environment: remove it where you set it.")
    if running:
        ctx.out(f"{running}: quit it from the tray menu; it will not start at login again.")

    if args.purge_profile:
        ctx.close()  # the database must be closed before its files go
        failures += _purge(ctx, [a.path for a in albums])
    else:
        ctx.out("Your settings, database and logs are kept (remove them by hand, or run again with --purge-profile):")
        ctx.out(f"  settings: {paths.config_dir}")
        ctx.out(f"  database: {paths.db_path}")
        ctx.out(f"  logs:     {paths.log_dir}")
    ctx.out("Now remove the program itself, e.g. `pipx uninstall immich-tray-sync`.")
    return 1 if failures else 0


def _busy(ctx: Context) -> str | None:
    """What holds this profile right now (the tray app, a sync), or None."""
    from tray_sync.sync.lock import BusyError, ProcessLock

    for path, what in ((ctx.paths.lock_file, "The tray app is running"),
                       (ctx.paths.runtime_dir / "sync.lock", "A sync is running")):
        if not path.exists():
            continue
        lock = ProcessLock(path, what="running")
        try:
            lock.acquire()
        except BusyError:
            return what
        lock.release()
    return None


def _confirm(ctx: Context) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("Not a terminal, so nothing was changed: run `tray-sync uninstall --yes` to go ahead.")
    answer = input("Continue? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _profile_dirs(ctx: Context) -> list[Path]:
    paths = ctx.paths
    return sorted({paths.config_dir, paths.data_dir, paths.log_dir, paths.runtime_dir})


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _close_log_files(folders: list[Path]) -> None:
    # Windows cannot delete an open file, and a handler would re-create the log in a deleted folder.
    root = logging.getLogger()
    for handler in list(root.handlers):
        filename = getattr(handler, "baseFilename", None)
        if filename and any(_inside(Path(filename), folder) for folder in folders):
            root.removeHandler(handler)
            handler.close()


def _purge(ctx: Context, album_paths: list[Path]) -> int:
    """Delete the profile; 1 when something could not be deleted."""
    from tray_sync.paths import HOME_ENV

    chosen_home = bool(ctx.home_arg or os.environ.get(HOME_ENV))
    folders = [f for f in _profile_dirs(ctx) if f.exists()]
    _close_log_files(folders)
    failures = 0
    # Deepest first: the log folder may sit inside the data folder.
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        if not folder.exists():
            continue
        holds_photos = any(_inside(p, folder) for p in album_paths)
        app_owned = APP_ID in (folder.name, folder.parent.name)
        if app_owned and not chosen_home and not holds_photos:
            try:
                shutil.rmtree(folder)
            except OSError as exc:
                failures += 1
                ctx.err(f"Could not delete {folder}: {exc.strerror or exc}.")
                continue
            ctx.out(f"Deleted {folder}.")
            if folder.parent.name == APP_ID:
                _rmdir_if_empty(folder.parent)
            continue
        failures += _remove_own_files(ctx, folder)
    return failures


def _rmdir_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def _remove_own_files(ctx: Context, folder: Path) -> int:
    failures = 0
    targets: set[Path] = set()
    for pattern in _OWN_PATTERNS:
        targets.update(p for p in folder.glob(pattern) if p.is_file() or p.is_symlink() or p.is_socket())
    for name, pattern in _OWN_SUBFOLDERS.items():
        targets.update(p for p in (folder / name).glob(pattern) if p.is_file())
    for target in sorted(targets):
        try:
            target.unlink()
        except OSError as exc:
            failures += 1
            ctx.err(f"Could not delete {target}: {exc.strerror or exc}.")
    for name in _OWN_SUBFOLDERS:
        _rmdir_if_empty(folder / name)
    if _rmdir_if_empty(folder):
        ctx.out(f"Deleted {folder}.")
    elif folder.exists():
        left = sorted(p.name for p in folder.iterdir())
        more = ", ..." if len(left) > 5 else ""
        ctx.out(f"Deleted the app's files in {folder}; kept what else is there ({', '.join(left[:5])}{more}).")
    return failures
