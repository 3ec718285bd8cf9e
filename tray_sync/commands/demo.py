"""`tray-sync demo`: see the app work in one command, against a built-in Immich-compatible server.

The demo never touches the user's real profile or keyring: it runs on a throwaway profile (a
temporary folder, unless ``--home`` names one), keeps the demo key in memory only, and puts the
photos in a folder it prints. With a desktop it starts the tray app; without one (or with
``--headless``) it syncs once and prints what it did.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tray_sync.context import Context
from tray_sync.logs import setup_logging
from tray_sync.paths import HOME_ENV, AppPaths

if TYPE_CHECKING:
    from tray_sync.demo.server import DemoServer

log = logging.getLogger(__name__)

DEMO_CONNECTION = "demo"


# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="try the app against a built-in demo server (no Immich needed)")
    parser.add_argument("--headless", action="store_true",
                        help="no tray icon: sync once, print the result and exit")
    parser.add_argument("--mode", choices=("3", "2"), default="3",
                        help="behave like Immich 3.x (default) or 2.x")
    parser.add_argument("--folder", metavar="DIR",
                        help="where the demo albums are synced (default: a folder in the demo profile)")
    parser.add_argument("--photos", type=int, default=12, metavar="N", help="photos per demo album (default 12)")


@dataclass
class DemoSession:
    """A running demo server and a profile connected to it, with every demo album added."""

    ctx: Context
    server: DemoServer
    photo_root: Path
    album_names: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.ctx.close()
        self.server.stop()


def _demo_context(ctx: Context) -> Context:
    """The user's own profile only when they asked for one; otherwise a throwaway one."""
    if ctx.home_arg or os.environ.get(HOME_ENV):
        return ctx
    home = Path(tempfile.mkdtemp(prefix="tray-sync-demo-"))
    paths = AppPaths.resolve(home)
    setup_logging(paths, debug=ctx.debug)
    return Context(paths=paths, home_arg=str(home), debug=ctx.debug, out=ctx.out, err=ctx.err)


def start_demo(ctx: Context, *, mode: str = "3", folder: str | None = None, photos: int = 12) -> DemoSession:
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer
    from tray_sync.secrets import SecretStore, account_for
    from tray_sync.sync.connect import add_album, check_connection, default_album_folder

    demo_ctx = _demo_context(ctx)
    demo_ctx.paths.ensure()
    server = DemoServer(mode=mode, storage_dir=demo_ctx.paths.data_dir / "demo-server")
    server.start()
    try:
        library = build_demo_library(server, photos_per_album=photos)
        key = library.download_key
        check = check_connection(server.url, key)
        # The demo key lives in memory only, and a real IMMICH_API_KEY must not replace it.
        secrets = SecretStore(use_environment=False)
        demo_ctx.__dict__["secrets"] = secrets
        account = account_for(DEMO_CONNECTION, check.discovery.api_url)
        secrets.remember(account, key)
        store = demo_ctx.store
        existing = [c for c in store.connections() if c.name == DEMO_CONNECTION]
        for old in existing:  # a demo profile reused with --home: the old demo server is gone
            store.delete_connection(old.id)
        connection = store.save_connection(
            name=DEMO_CONNECTION, server_url=check.discovery.server_url, api_url=check.discovery.api_url,
            account=account, server_version=str(check.discovery.version), ca_bundle=None,
        )
        store.mark_albums_seen(connection.id, [(a.id, a.name) for a in check.albums])
        photo_root = Path(folder).expanduser().resolve() if folder else demo_ctx.paths.data_dir / "Immich Demo"
        names = []
        for album in check.albums:
            add_album(store, connection, album, default_album_folder(photo_root, album.name))
            names.append(album.name)
    except BaseException:
        server.stop()
        raise
    return DemoSession(demo_ctx, server, photo_root, names)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from tray_sync.cli import has_display

    session = start_demo(ctx, mode=args.mode, folder=args.folder, photos=args.photos)
    try:
        ctx.out(f"Demo server (Immich {'.'.join(map(str, session.server.version))} compatible) at "
                f"{session.server.url}; demo profile in {session.ctx.paths.data_dir}.")
        ctx.out(f"Albums {', '.join(session.album_names)} sync into {session.photo_root}.")
        if args.headless or not has_display():
            if not args.headless:
                ctx.out("No display found: running the demo headless (one sync, then exit).")
            return _run_headless(session)
        from tray_sync.app import run_app

        ctx.out("The tray icon is up, and the status window shows the sync. The icon's menu has Sync now, "
                "Status… and Settings…; Quit there ends the demo.")
        return int(run_app(session.ctx, show_status=True))
    finally:
        session.close()


def _run_headless(session: DemoSession) -> int:
    from tray_sync.commands._common import is_tty
    from tray_sync.commands.sync import _Bar, print_report
    from tray_sync.sync.progress import CancelToken

    ctx = session.ctx
    bar = _Bar(is_tty())
    try:
        report = ctx.engine().sync(cancel=CancelToken(), progress=bar)
    finally:
        bar.close()
    print_report(ctx, report)
    ctx.out(f"Done. Open {session.photo_root} to see the photos; run `tray-sync demo` on a desktop for the tray app.")
    return 0 if report.ok else 1
