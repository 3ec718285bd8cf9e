"""`tray-sync connect URL`: check a server and a key, then save them."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

from tray_sync.context import Context
from tray_sync.logs import register_secret
from tray_sync.sync.connect import check_connection, default_connection_name
from tray_sync.sync.errors import ConfigError, SecretStoreError

log = logging.getLogger(__name__)

# Exit codes of the command-line contract (README / issue table); cli.main maps any other to 1.
EXIT_CODES = (0, 1)  # 0 saved, 1 the check (or saving) failed


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("connect", help="check and save an Immich server and API key")
    parser.add_argument("url", help="the address you open Immich at, e.g. https://photos.example.com")
    parser.add_argument("--name", help="a name for this connection (default: the host name)")
    parser.add_argument("--api-key-stdin", action="store_true", help="read the API key from standard input")
    parser.add_argument("--ca-bundle", metavar="FILE", help="trust this CA bundle / self-signed certificate")
    parser.add_argument("--new-albums", choices=("ignore", "ask", "auto"), default=None,
                        help="what to do with albums created or shared later (default: ignore)")
    parser.add_argument("--new-album-root", metavar="DIR", help="where new albums go with --new-albums auto")


def _read_key(args: argparse.Namespace) -> str:
    if args.api_key_stdin:
        key = sys.stdin.readline().strip()
    elif os.environ.get("IMMICH_API_KEY"):
        key = os.environ["IMMICH_API_KEY"].strip()
    elif sys.stdin.isatty():
        key = getpass.getpass("API key (input hidden): ").strip()
    else:
        raise ConfigError("No API key given: use --api-key-stdin, set IMMICH_API_KEY, or run in a terminal.")
    if not key:
        raise ConfigError("The API key is empty.")
    return key


def run(args: argparse.Namespace, ctx: Context) -> int:
    from tray_sync.secrets import account_for
    from tray_sync.sync.client import candidate_bases

    candidate_bases(args.url)  # a mistyped address is said before anyone types the key for it
    key = _read_key(args)
    register_secret(key)
    verify: bool | str = args.ca_bundle or True
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        raise ConfigError(f"The CA bundle {args.ca_bundle} does not exist.")
    if args.new_albums == "auto" and not args.new_album_root:
        raise ConfigError("--new-albums auto needs --new-album-root DIR.")
    root = Path(args.new_album_root).expanduser().resolve() if args.new_album_root else None
    if root is not None and root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file, not a folder: choose a folder for new albums.")
    check = check_connection(args.url, key, verify=verify)
    if check.insecure_warning:
        ctx.err(check.insecure_warning)
    if root is not None:
        # Created now, like `add` creates its folder; later syncs never create it (an unmounted drive).
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"Cannot create the folder for new albums {root}: {exc.strerror}.") from None
    name = args.name or default_connection_name(check.discovery.server_url)
    account = account_for(name, check.discovery.api_url)
    stored_in_keyring = True
    try:
        ctx.secrets.set(account, key)
    except SecretStoreError as exc:
        if os.environ.get("IMMICH_API_KEY", "").strip() != key:
            raise
        stored_in_keyring = False
        log.warning("%s", exc.message)
        ctx.err("No keyring is available, so the key was saved nowhere: IMMICH_API_KEY must be set whenever "
                "tray-sync runs (or name a working keyring backend in PYTHON_KEYRING_BACKEND and connect again).")
    connection = ctx.store.save_connection(
        name=name, server_url=check.discovery.server_url, api_url=check.discovery.api_url,
        account=account, server_version=str(check.discovery.version),
        ca_bundle=os.path.abspath(args.ca_bundle) if args.ca_bundle else None,
    )
    if args.new_albums:
        ctx.store.update_connection(
            connection.id, new_album_policy=args.new_albums,
            new_album_root=str(root) if root is not None else None,
        )
    # Albums that exist now are not "new" later.
    ctx.store.mark_albums_seen(connection.id, [(a.id, a.name) for a in check.albums])
    kept = "Key stored in the OS keyring." if stored_in_keyring else "Key not stored (IMMICH_API_KEY)."
    ctx.out(f"Connected {name!r}: {check.summary} {kept}")
    ctx.out("Next: `tray-sync albums` to see them, `tray-sync add ALBUM FOLDER` to sync one.")
    return 0
