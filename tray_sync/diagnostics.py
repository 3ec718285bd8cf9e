"""A diagnostics bundle for bug reports: versions, settings, database summary, recent log.

Everything passes through :func:`scrub`: API keys (the log's redaction list, plus anything
shaped like an ``x-api-key`` header) and server addresses are replaced, so the bundle can be
attached to a public issue.
"""

from __future__ import annotations

import io
import json
import platform
import re
import sys
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from tray_sync import __version__
from tray_sync.logs import redact
from tray_sync.paths import AppPaths
from tray_sync.sync.store import Store

LOG_TAIL_LINES = 400
_URL = re.compile(r"https?://[^\s'\"<>)]+")


def scrub(text: str, hosts: Iterable[str]) -> str:
    text = redact(text)
    for host in sorted({h for h in hosts if h}, key=len, reverse=True):
        text = text.replace(host, "<server>")
    return _URL.sub(lambda m: "<url>" if "<server>" not in m.group(0) else m.group(0), text)


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in ("pystray", "Pillow", "requests", "urllib3", "schedule", "keyring", "platformdirs", "tqdm",
                 "PyGObject"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _keyring_backend() -> str:
    try:
        import keyring

        backend = keyring.get_keyring()
        return f"{backend.__class__.__module__}.{backend.__class__.__name__}"
    except Exception as exc:  # diagnostics must not fail on a broken keyring
        return f"unavailable ({exc.__class__.__name__})"


def database_summary(store: Store) -> dict[str, object]:
    albums = []
    for album in store.album_syncs():
        totals = store.album_totals(album.id)
        states = dict(store._query(
            "SELECT state, COUNT(*) FROM synced_assets WHERE album_sync_id=? GROUP BY state", (album.id,)))
        albums.append({
            "album": f"album #{album.id}", "state": album.state, "files": totals.files, "bytes": totals.bytes,
            "asset_states": states, "last_sync_at": album.last_sync_at, "last_error": album.last_error,
            "mirror_removals": album.mirror_removals, "folder_template": album.folder_template,
        })
    return {
        "schema_version": store._query("PRAGMA user_version")[0][0],
        "integrity": store._query("PRAGMA quick_check")[0][0],
        "connections": [{"name": f"connection #{c.id}", "server_version": c.server_version,
                         "new_album_policy": c.new_album_policy, "tls": urlsplit(c.api_url).scheme,
                         "custom_ca": bool(c.ca_bundle)} for c in store.connections()],
        "albums": albums,
    }


def build_bundle(paths: AppPaths, store: Store) -> tuple[bytes, list[str]]:
    """The zip's bytes and the names of its members."""
    hosts = set()
    for conn in store.connections():
        for url in (conn.server_url, conn.api_url):
            parts = urlsplit(url)
            hosts.update({parts.netloc, parts.hostname or ""})
    settings = {k: v for k, v in store.settings().items()}
    about = {
        "app": __version__,
        "python": sys.version,
        "platform": platform.platform(),
        "packages": _package_versions(),
        "keyring_backend": _keyring_backend(),
        "created_at": datetime.now(UTC).isoformat(),
    }
    log_text = ""
    for candidate in sorted(paths.log_dir.glob("tray-sync.log*"), reverse=True):
        try:
            log_text += candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
    tail = "\n".join(log_text.splitlines()[-LOG_TAIL_LINES:])
    members = {
        "about.json": json.dumps(about, indent=2),
        "settings.json": json.dumps(settings, indent=2, default=str),
        "database.json": json.dumps(database_summary(store), indent=2, default=str),
        "log-tail.txt": tail,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, text in members.items():
            bundle.writestr(name, scrub(text, hosts))
    return buffer.getvalue(), list(members)


def write_bundle(paths: AppPaths, store: Store, target: Path | None = None) -> Path:
    data, _ = build_bundle(paths, store)
    if target is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        target = Path.cwd() / f"tray-sync-diagnostics-{stamp}.zip"
    target.write_bytes(data)
    return target
