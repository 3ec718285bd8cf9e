"""The first-run setup wizard's logic: connect, pick albums, choose options, finish or cancel.

Three pages: 0 the server and key (checked live, in the background), 1 the albums with sizes
against the free space of the chosen disk, 2 schedule and behaviour. Nothing is written until
Finish; Finish writes the key to the keyring and everything else to the store, and undoes what it
wrote when a later step fails, so Cancel or a failure never leaves a half-saved connection.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from tray_sync.appstate import AppController
from tray_sync.context import Context
from tray_sync.dialogs.common import (
    Post,
    Worker,
    describe_error,
    disk_id,
    folder_key,
    folder_problem,
    free_album_folder,
    free_space,
    human_size,
    pictures_folder,
    plural,
)
from tray_sync.sync.client import RemoteAlbum
from tray_sync.sync.connect import ConnectionCheck, check_connection, default_album_folder, default_connection_name
from tray_sync.sync.errors import ConfigError, TraySyncError

log = logging.getLogger(__name__)

PAGE_CONNECT, PAGE_ALBUMS, PAGE_OPTIONS = 0, 1, 2
# Closing the wizard while Finish is saving (the app quits) waits this long for the save to end,
# so a quitting process never cuts it off halfway (key in the keyring, rows missing).
FINISH_WAIT_SECONDS = 30.0
PAGE_TITLES = ("Connect to your Immich server", "Choose the albums to keep on this computer",
               "How and when to sync")

KEY_HINT = ("In Immich open Account settings > API keys > New API key, and give it the permissions "
            "album.read, asset.read and asset.download (or \"all\"). Copy the key and paste it here.")

INTERVAL_CHOICES: tuple[tuple[int, str], ...] = (
    (15, "Every 15 minutes"), (30, "Every 30 minutes"), (60, "Every hour"),
    (180, "Every 3 hours"), (720, "Every 12 hours"), (1440, "Once a day"),
)
NEW_ALBUM_CHOICES: tuple[tuple[str, str], ...] = (
    ("ignore", "Ignore them (I add albums myself)"),
    ("ask", "Ask me whether to sync them"),
    ("auto", "Sync them automatically into the photos folder"),
)


@dataclass(frozen=True)
class AlbumChoice:
    album: RemoteAlbum
    folder: Path
    selected: bool = False
    size: int | None = None  # bytes from /download/info; None while unknown
    size_failed: bool = False
    already_synced: bool = False
    custom_folder: bool = False  # chosen by the user; otherwise a default under the root folder
    error: str | None = None  # blocks Finish (not writable, overlaps another album)
    warning: str | None = None  # informs (folder holds other files)

    @property
    def album_id(self) -> str:
        return self.album.id

    @property
    def owner_text(self) -> str:
        if self.album.owned is False or (self.album.owned is None and self.album.shared):
            return "Shared with me"
        return "Mine (shared)" if self.album.shared else "Mine"

    @property
    def size_text(self) -> str:
        if self.size_failed:
            return "unknown"
        return human_size(self.size)

    @property
    def note(self) -> str:
        if self.already_synced:
            return "Already synced"
        return self.error or self.warning or ""


@dataclass(frozen=True)
class CertificateOffer:
    host: str
    fingerprint: str  # SHA-256, colon-separated hex
    pem: str


@dataclass
class SetupOptions:
    interval_minutes: int = 30
    autostart: bool = True
    notifications: bool = True
    new_album_policy: str = "ask"


class SetupView(Protocol):
    def show_page(self, page: int, title: str) -> None: ...

    def set_nav(self, *, back: bool, next_label: str, next_enabled: bool, cancel: bool = True) -> None:
        """``cancel`` False while Finish saves: the save ends in full (or undoes itself) either way."""

    def set_busy(self, busy: bool, text: str = "") -> None: ...

    def show_check_result(self, text: str, *, ok: bool) -> None: ...

    def show_certificate(self, offer: CertificateOffer | None) -> None: ...

    def show_albums(self, rows: list[AlbumChoice]) -> None: ...

    def show_selection_summary(self, text: str, *, problem: bool) -> None: ...

    def show_root_folder(self, path: str) -> None: ...

    def show_options(self, options: SetupOptions, *, autostart_available: bool) -> None: ...

    def show_error(self, text: str) -> None: ...

    def show_credentials(self, url: str, key: str) -> None: ...

    def close(self) -> None: ...


CheckFunction = Callable[[str, str, bool | str], ConnectionCheck]
SizeFunction = Callable[[ConnectionCheck, str, bool | str, list[str], Post, Callable[[str, int | None], None]], None]
CertFetcher = Callable[[str], CertificateOffer]


def _default_check(url: str, key: str, verify: bool | str) -> ConnectionCheck:
    return check_connection(url, key, verify=verify)


def _default_sizes(check: ConnectionCheck, key: str, verify: bool | str, album_ids: list[str],
                   post: Post, report: Callable[[str, int | None], None]) -> None:
    """Ask the server for each album's download size, reporting each one as it arrives."""
    from tray_sync.sync.client import ImmichClient, RetryPolicy

    client = ImmichClient(check.discovery.api_url, key, verify=verify, retry=RetryPolicy(attempts=2))
    client._version = check.discovery.version
    try:
        for album_id in album_ids:
            try:
                size: int | None = client.download_info_size(album_id)
            except TraySyncError as exc:
                log.info("Could not size album %s: %s", album_id, exc.message)
                size = None
            post(lambda a=album_id, s=size: report(a, s))  # type: ignore[misc]
    finally:
        client.close()


def fetch_certificate(url: str) -> CertificateOffer:
    """The certificate the server presents, without trusting it: for the user to compare and accept."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = parts.hostname or ""
    port = parts.port or 443
    pem = ssl.get_server_certificate((host, port), timeout=10)
    der = ssl.PEM_cert_to_DER_cert(pem)
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    return CertificateOffer(host=f"{host}:{port}", fingerprint=fingerprint, pem=pem)


def _looks_like_certificate_problem(url: str, message: str) -> bool:
    text = message.lower()
    return (url.strip().lower().startswith("https://") and
            ("certificate" in text or "secure connection" in text))


def autostart_module() -> Any | None:
    """helper module tray_sync.autostart, when it exists on this install."""
    try:
        from tray_sync import autostart  # type: ignore[attr-defined]
    except ImportError:
        return None
    return autostart


class SetupPresenter:
    def __init__(
        self,
        view: SetupView,
        ctx: Context,
        controller: AppController,
        worker: Worker,
        *,
        check: CheckFunction = _default_check,
        sizes: SizeFunction = _default_sizes,
        fetch_cert: CertFetcher = fetch_certificate,
        photos_root: Path | None = None,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.view = view
        self.ctx = ctx
        self.controller = controller
        self.worker = worker
        self._check_fn = check
        self._sizes_fn = sizes
        self._fetch_cert = fetch_cert
        self._on_closed = on_closed
        self.page = PAGE_CONNECT
        self.url = ""
        self.key = ""
        self.check: ConnectionCheck | None = None
        self.checking = False
        self.finishing = False
        self._generation = 0
        self.certificate: CertificateOffer | None = None  # offered after a certificate failure
        self.trusted_pem: str | None = None  # the user accepted it
        self._trusted_file: Path | None = None
        self.root_folder = (photos_root or pictures_folder() / "Immich").expanduser()
        self.albums: list[AlbumChoice] = []
        self.filter_text = ""
        self.options = SetupOptions()
        self._sizes_started = False
        self._advance_after_check = False
        self._plan: _FinishPlan | None = None
        self.closed = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self.ctx.store.connections():
            # Not the first run: the options page starts from what is set, not from first-run defaults.
            settings = self.ctx.store.settings()
            self.options = SetupOptions(interval_minutes=int(settings["interval_minutes"]),
                                        autostart=bool(settings["autostart"]),
                                        notifications=bool(settings["notifications"]))
        if autostart_module() is None:
            self.options.autostart = False
        self.view.show_root_folder(str(self.root_folder))
        self.view.show_options(self.options, autostart_available=autostart_module() is not None)
        self._show_page()

    def start_for_connection(self, connection_id: int) -> None:
        """'Add albums' for a saved connection: fill in its address and key and check at once."""
        connection = self.ctx.store.connection(connection_id)
        self.options.new_album_policy = connection.new_album_policy
        self.view.show_options(self.options, autostart_available=autostart_module() is not None)
        if connection.new_album_root:
            self.set_root_folder(connection.new_album_root)
        if connection.ca_bundle and Path(connection.ca_bundle).is_file():
            self.trusted_pem = Path(connection.ca_bundle).read_text(encoding="ascii")
        self.view.show_credentials(connection.server_url, "")
        self.view.set_busy(True, "Reading the saved key…")

        # The keyring may be slow, or ask the desktop to unlock it: never on the Tk thread.
        def have_key(key: str) -> None:
            self.view.set_busy(False)
            self._advance_after_check = True
            self.view.show_credentials(connection.server_url, key)
            self.run_check(connection.server_url, key)

        def no_key(exc: BaseException) -> None:
            self.view.set_busy(False)
            self.credentials_changed(connection.server_url, "")
            message = describe_error(exc)
            if message.startswith("No API key for"):  # the command line's advice does not fit this window
                message = (f"The API key saved for {connection.name} is no longer in the keyring: paste it here "
                           "again (Account settings > API keys in Immich) and press Check.")
            self.view.show_check_result(message, ok=False)

        self.worker.run(lambda post: self.ctx.key_for(connection), have_key, no_key)

    def close(self) -> None:
        """Close now (the app is quitting); same as Cancel, nothing is saved."""
        self._close()

    def cancel(self) -> None:
        """Close without saving anything; a running check or sizing is dropped."""
        if self.finishing:
            return
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        plan = self._plan
        if self.finishing and plan is not None and not plan.ended.wait(FINISH_WAIT_SECONDS):
            log.warning("Setup was still saving after %.0f s while its window closed", FINISH_WAIT_SECONDS)
        self.worker.close()
        self._drop_trusted_file()
        self.view.close()
        if self._on_closed:
            self._on_closed()

    # -- page 0: server and key ----------------------------------------------------------

    def credentials_changed(self, url: str, key: str) -> None:
        """The user edited the URL or key: a previous check no longer holds."""
        url, key = url.strip(), key.strip()
        if (url, key) == (self.url, self.key):
            return
        if urlsplit(url).netloc != urlsplit(self.url).netloc:
            self.certificate = None
            self.trusted_pem = None
            self.view.show_certificate(None)
        self.url, self.key = url, key
        if self.check is not None or self.checking:
            self._generation += 1
            self.checking = False
            self.check = None
            self.albums = []
            self._sizes_started = False
            self.view.set_busy(False)
            self.view.show_check_result("", ok=True)
        self._update_nav()

    def run_check(self, url: str | None = None, key: str | None = None) -> None:
        if url is not None or key is not None:
            self.credentials_changed(url if url is not None else self.url, key if key is not None else self.key)
        if self.checking:
            return
        if not self.url:
            self.view.show_check_result("Type the address you open Immich at, e.g. https://photos.example.com.",
                                        ok=False)
            return
        if not self.key:
            self.view.show_check_result("Paste the API key (Account settings > API keys in Immich).", ok=False)
            return
        self.checking = True
        self._generation += 1
        generation = self._generation
        url_now, key_now, verify = self.url, self.key, self._verify()
        self.view.set_busy(True, f"Checking {url_now}…")
        self.view.show_check_result("", ok=True)
        self._update_nav()
        self.worker.run(
            lambda post: self._check_fn(url_now, key_now, verify),
            lambda result: self._checked(generation, result),
            lambda exc: self._check_failed(generation, url_now, exc),
        )

    def _verify(self) -> bool | str:
        if self.trusted_pem is None:
            return True
        if self._trusted_file is None:
            handle, name = tempfile.mkstemp(prefix="tray-sync-cert-", suffix=".pem")
            with os.fdopen(handle, "w", encoding="ascii") as out:
                out.write(self.trusted_pem)
            self._trusted_file = Path(name)
        return str(self._trusted_file)

    def _drop_trusted_file(self) -> None:
        if self._trusted_file is not None:
            self._trusted_file.unlink(missing_ok=True)
            self._trusted_file = None

    def _checked(self, generation: int, result: ConnectionCheck) -> None:
        if generation != self._generation or self.closed:
            return
        self.checking = False
        self.check = result
        self.view.set_busy(False)
        count = len(result.albums)
        text = (f"Connected to Immich {result.discovery.version} at {result.discovery.server_url}. "
                f"This key can see {plural(count, 'album')}" + (": choose them on the next page." if count else "."))
        if result.insecure_warning:
            text += "\n" + result.insecure_warning
        self.view.show_check_result(text, ok=True)
        self._build_albums(result)
        self._update_nav()
        if self._advance_after_check and self.page == PAGE_CONNECT:
            self._advance_after_check = False
            self.next()

    def _check_failed(self, generation: int, url: str, exc: BaseException) -> None:
        if generation != self._generation or self.closed:
            return
        self.checking = False
        self.check = None
        self.view.set_busy(False)
        message = describe_error(exc)
        self.view.show_check_result(message, ok=False)
        self._update_nav()
        if self.trusted_pem is None and _looks_like_certificate_problem(url, message):
            self.worker.run(lambda post: self._fetch_cert(url),
                            lambda offer: self._offer_certificate(generation, offer),
                            lambda err: log.info("Could not read the server certificate: %s", err))

    def _offer_certificate(self, generation: int, offer: CertificateOffer) -> None:
        if generation != self._generation or self.closed:
            return
        self.certificate = offer
        self.view.show_check_result(f"{offer.host} presents a certificate this computer does not trust.", ok=False)
        self.view.show_certificate(offer)

    def trust_certificate(self) -> None:
        """The user compared the fingerprint and trusts this certificate for this connection."""
        if self.certificate is None:
            return
        self.trusted_pem = self.certificate.pem
        self._drop_trusted_file()
        self.view.show_certificate(None)
        self.run_check()

    # -- page 1: albums ------------------------------------------------------------------

    def _existing_connection_name(self, api_url: str) -> str | None:
        for connection in self.ctx.store.connections():
            if connection.api_url.rstrip("/") == api_url.rstrip("/"):
                return connection.name
        return None

    def connection_name(self) -> str:
        assert self.check is not None
        existing = self._existing_connection_name(self.check.discovery.api_url)
        if existing:
            return existing
        base = default_connection_name(self.check.discovery.server_url)
        taken = {c.name for c in self.ctx.store.connections()}
        name, number = base, 2
        while name in taken:
            name, number = f"{base}-{number}", number + 1
        return name

    def _build_albums(self, check: ConnectionCheck) -> None:
        synced: set[str] = set()
        existing = self._existing_connection_name(check.discovery.api_url)
        if existing:
            connection = next(c for c in self.ctx.store.connections() if c.name == existing)
            synced = {a.album_id for a in self.ctx.store.album_syncs(connection.id)}
        previous = {a.album_id: a for a in self.albums}
        ordered = sorted(check.albums, key=lambda a: (a.owned is False, a.name.casefold(), a.name, a.id))
        self.albums = []
        for album in ordered:
            old = previous.get(album.id)
            self.albums.append(AlbumChoice(
                album=album,
                folder=old.folder if old else default_album_folder(self.root_folder, album.name),
                selected=bool(old and old.selected and album.id not in synced),
                size=old.size if old else None,
                already_synced=album.id in synced,
                custom_folder=bool(old and old.custom_folder),
            ))
        self._assign_default_folders()
        self._sizes_started = False
        self._validate_albums()

    def _assign_default_folders(self) -> None:
        """Give every album not placed by the user a folder of its own under the root folder.

        Two albums may share a name (one mine, one shared with me), differ only in case (one
        folder on Windows and macOS), or match an album synced from another server: the later
        one gets "Name (2)" instead of a conflict the user has to solve by hand.
        """
        taken = {folder_key(Path(a.local_path)) for a in self.ctx.store.album_syncs()}
        taken |= {folder_key(a.folder) for a in self.albums if a.custom_folder and not a.already_synced}
        updated = []
        for a in self.albums:
            if not a.custom_folder and not a.already_synced:
                a = replace(a, folder=free_album_folder(self.root_folder, a.album.name, taken))
            updated.append(a)
        self.albums = updated

    def _start_sizes(self) -> None:
        if self._sizes_started or self.check is None:
            return
        self._sizes_started = True
        generation = self._generation
        check, key, verify = self.check, self.key, self._verify()
        ids = [a.album_id for a in self.albums if a.size is None]
        if not ids:
            return

        def report(album_id: str, size: int | None) -> None:
            if generation == self._generation and not self.closed:
                self._set_size(album_id, size)

        self.worker.run(
            lambda post: self._sizes_fn(check, key, verify, ids, post, report),
            lambda _: None,
            lambda exc: log.info("Sizing albums failed: %s", describe_error(exc)),
        )

    def _set_size(self, album_id: str, size: int | None) -> None:
        self.albums = [replace(a, size=size, size_failed=size is None) if a.album_id == album_id else a
                       for a in self.albums]
        self._show_albums()

    def visible_albums(self) -> list[AlbumChoice]:
        needle = self.filter_text.casefold().strip()
        if not needle:
            return list(self.albums)
        return [a for a in self.albums if needle in a.album.name.casefold()]

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._show_albums()

    def toggle_album(self, album_id: str, selected: bool | None = None) -> None:
        updated = []
        for a in self.albums:
            if a.album_id == album_id and not a.already_synced:
                a = replace(a, selected=not a.selected if selected is None else selected)
            updated.append(a)
        self.albums = updated
        self._validate_albums()

    def select_all_visible(self, selected: bool) -> None:
        visible = {a.album_id for a in self.visible_albums()}
        self.albums = [replace(a, selected=selected) if a.album_id in visible and not a.already_synced else a
                       for a in self.albums]
        self._validate_albums()

    def set_album_folder(self, album_id: str, folder: str) -> None:
        self.albums = [replace(a, folder=Path(folder).expanduser(), custom_folder=True) if a.album_id == album_id else a
                       for a in self.albums]
        self._assign_default_folders()  # a default the user's choice now collides with moves aside
        self._validate_albums()

    def set_root_folder(self, folder: str) -> None:
        """Move every album still on its default folder under the new root."""
        new_root = Path(folder).expanduser()
        self.root_folder = new_root
        self._assign_default_folders()
        self.view.show_root_folder(str(new_root))
        self._validate_albums()

    def _validate_albums(self) -> None:
        from tray_sync.sync.engine import check_destination

        chosen = [a for a in self.albums if a.selected]
        updated = []
        for a in self.albums:
            error = warning = None
            if a.selected:
                error, warning = folder_problem(a.folder)
                if error is None:
                    try:
                        check_destination(self.ctx.store, a.folder)
                    except ConfigError as exc:
                        error = exc.message
                if error is None:
                    mine = a.folder.expanduser().resolve()
                    for other in chosen:
                        if other.album_id == a.album_id:
                            continue
                        theirs = other.folder.expanduser().resolve()
                        if mine == theirs or theirs in mine.parents or mine in theirs.parents:
                            error = f"Same folder as {other.album.name!r}: each album needs its own folder."
                            break
            updated.append(replace(a, error=error, warning=warning))
        self.albums = updated
        self._show_albums()
        self._update_nav()

    def _show_albums(self) -> None:
        self.view.show_albums(self.visible_albums())
        text, problem = self.selection_summary()
        self.view.show_selection_summary(text, problem=problem)

    def selection_summary(self) -> tuple[str, bool]:
        chosen = [a for a in self.albums if a.selected]
        if not self.albums:
            return ("This key sees no albums yet: create an album in Immich, or ask someone to share one "
                    "with you, then check again."), True
        if not chosen:
            return "Tick the albums to keep on this computer.", False
        errors = [a for a in chosen if a.error]
        if errors:
            return f"{errors[0].album.name}: {errors[0].error}", True
        known = [a.size for a in chosen if a.size is not None]
        total = sum(known)
        items = sum(a.album.asset_count for a in chosen)
        size_text = human_size(total) if len(known) == len(chosen) else (
            f"at least {human_size(total)}" if known else "size being measured")
        text = f"{plural(len(chosen), 'album')}, {plural(items, 'item')}, {size_text}"
        # Each chosen folder counts against the disk it lands on (an album may go to a USB drive).
        by_disk: dict[object, list[AlbumChoice]] = {}
        for a in chosen:
            by_disk.setdefault(disk_id(a.folder), []).append(a)
        problem = False
        short: list[str] = []
        free_texts: list[str] = []
        for group in by_disk.values():
            free = free_space(group[0].folder)
            if free is None:
                continue
            needed = sum(a.size or 0 for a in group)
            free_texts.append(human_size(free))
            if needed > free:
                short.append(f"{human_size(needed)} needed on the disk of {group[0].folder}, "
                             f"{human_size(free)} free")
        if len(by_disk) == 1 and free_texts:
            text += f"; {free_texts[0]} free on that disk"
        elif free_texts and not short:
            text += f"; enough free space on each of the {len(by_disk)} disks"
        if short:
            text += ". Not enough space: " + "; ".join(short) + ". Choose fewer albums or another disk"
            problem = True
        text += "."
        warnings = [a for a in chosen if a.warning]
        if len(warnings) == 1 and not problem:
            text += f" Note: {warnings[0].warning}"
        elif warnings and not problem:
            text += (f" Note: {len(warnings)} of the chosen folders (marked ⚠) already hold other files; they stay "
                     "untouched and the albums' photos are added beside them.")
        return text, problem

    # -- page 2: options ----------------------------------------------------------------

    def set_options(self, **changes: Any) -> None:
        for name, value in changes.items():
            if not hasattr(self.options, name):
                raise ValueError(f"unknown option {name}")
            setattr(self.options, name, value)
        self._update_nav()

    # -- navigation ----------------------------------------------------------------------

    def _page_ready(self) -> bool:
        if self.checking or self.finishing:
            return False
        if self.page == PAGE_CONNECT:
            return self.check is not None
        if self.page == PAGE_ALBUMS:
            chosen = [a for a in self.albums if a.selected]
            return bool(chosen) and not any(a.error for a in chosen) and not self.selection_summary()[1]
        return True

    def _update_nav(self) -> None:
        if self.closed:
            return
        label = "Finish" if self.page == PAGE_OPTIONS else "Next"
        if self.page == PAGE_CONNECT and self.check is None:
            label = "Check"
        enabled = self._page_ready() or (self.page == PAGE_CONNECT and not self.checking and not self.finishing)
        self.view.set_nav(back=self.page > PAGE_CONNECT and not self.finishing, next_label=label,
                          next_enabled=enabled, cancel=not self.finishing)

    def _show_page(self) -> None:
        self.view.show_page(self.page, PAGE_TITLES[self.page])
        if self.page == PAGE_ALBUMS:
            self._show_albums()
            self._start_sizes()
        self._update_nav()

    def next(self) -> None:
        """Next/Check/Finish (also Enter)."""
        if self.page == PAGE_CONNECT and self.check is None:
            self.run_check()
            return
        if not self._page_ready():
            return
        if self.page == PAGE_OPTIONS:
            self.finish()
            return
        self.page += 1
        self._show_page()

    def back(self) -> None:
        if self.page > PAGE_CONNECT and not self.finishing:
            self.page -= 1
            self._show_page()

    # -- finish --------------------------------------------------------------------------

    def finish(self) -> None:
        if self.finishing or self.check is None:
            return
        chosen = [a for a in self.albums if a.selected]
        self.finishing = True
        self.view.set_busy(True, "Saving…")
        self._update_nav()
        plan = self._plan = _FinishPlan(
            ctx=self.ctx, check=self.check, key=self.key, name=self.connection_name(),
            albums=chosen, options=replace(self.options), root=self.root_folder, trusted_pem=self.trusted_pem,
        )
        self.worker.run(lambda post: plan.execute(), self._finished, self._finish_failed)

    def _finished(self, problem: str | None) -> None:
        self.finishing = False
        self.view.set_busy(False)
        if problem:  # everything else is saved; say what did not work instead of hiding it
            self.view.show_error(f"Set up, but: {problem}")
        try:
            self.controller.settings_changed()
            self.controller.sync_now()
        finally:
            self._close()

    def _finish_failed(self, exc: BaseException) -> None:
        self.finishing = False
        self.view.set_busy(False)
        self.view.show_error(f"Nothing was saved. {describe_error(exc)}")
        self._update_nav()


@dataclass
class _FinishPlan:
    """Everything Finish writes, in an order that can be undone step by step."""

    ctx: Context
    check: ConnectionCheck
    key: str
    name: str
    albums: list[AlbumChoice]
    options: SetupOptions
    root: Path
    trusted_pem: str | None
    _undo: list[Callable[[], object]] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)  # written in full, or undone in full

    def execute(self) -> str | None:
        """Write everything or nothing; returns a problem with the optional login item, if any."""
        try:
            return self._write()
        except BaseException:
            for undo in reversed(self._undo):
                try:
                    undo()
                except Exception:
                    log.exception("Undoing a half-finished setup step failed")
            raise
        finally:
            self.ended.set()

    def _write(self) -> str | None:
        from tray_sync.secrets import account_for
        from tray_sync.sync.connect import add_album

        store, secrets = self.ctx.store, self.ctx.secrets
        discovery = self.check.discovery
        account = account_for(self.name, discovery.api_url)

        previous_key = None
        try:
            previous_key = secrets._read(account)
        except TraySyncError:
            previous_key = None
        secrets.set(account, self.key)
        if previous_key is None:
            self._undo.append(lambda: secrets.delete(account))
        else:
            self._undo.append(lambda: secrets.set(account, previous_key))

        ca_bundle = self._save_certificate() if self.trusted_pem else None
        existing = next((c for c in store.connections() if c.name == self.name), None)
        connection = store.save_connection(
            name=self.name, server_url=discovery.server_url, api_url=discovery.api_url, account=account,
            server_version=str(discovery.version), ca_bundle=ca_bundle or (existing.ca_bundle if existing else None),
        )
        if existing is None:
            self._undo.append(lambda: store.delete_connection(connection.id))
        else:
            old = existing
            self._undo.append(lambda: store.save_connection(
                name=old.name, server_url=old.server_url, api_url=old.api_url, account=old.account,
                server_version=old.server_version, ca_bundle=old.ca_bundle))
        store.update_connection(connection.id, new_album_policy=self.options.new_album_policy,
                                new_album_root=str(self.root.expanduser()))
        if self.options.new_album_policy == "auto":
            # Created now: a sync never creates it (on an unmounted drive it would land on the mount point).
            root_created = _missing_parents(self.root.expanduser())
            try:
                self.root.expanduser().mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("Folder for new albums %s not created: %s", self.root, exc)
            else:
                self._undo.append(lambda c=root_created: _remove_empty(c))  # type: ignore[misc]
        # Albums that exist now are not "new" later.
        store.mark_albums_seen(connection.id, [(a.id, a.name) for a in self.check.albums])

        for choice in self.albums:
            folder = choice.folder.expanduser()
            created = _missing_parents(folder)
            sync = add_album(store, connection, choice.album, folder)
            self._undo.append(lambda s=sync.id: store.remove_album_sync(s))  # type: ignore[misc]
            self._undo.append(lambda c=created: _remove_empty(c))  # type: ignore[misc]

        old_settings = store.settings()
        for key_name, value in (("interval_minutes", self.options.interval_minutes),
                                ("notifications", self.options.notifications),
                                ("autostart", self.options.autostart)):
            store.set_setting(key_name, value)
            self._undo.append(lambda k=key_name: store.set_setting(k, old_settings[k]))  # type: ignore[misc]
        problem = apply_autostart(self.options.autostart, self.ctx.home_arg)
        if problem is None or not (self.options.autostart or autostart_module() is not None):
            return None  # nothing asked of a login item this install does not have
        if self.options.autostart:
            store.set_setting("autostart", False)  # the setting says what is true: no login item
        return problem

    def _save_certificate(self) -> str:
        assert self.trusted_pem is not None
        folder = self.ctx.paths.data_dir / "certificates"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self.name}.pem"
        existed = target.read_text(encoding="ascii") if target.exists() else None
        target.write_text(self.trusted_pem, encoding="ascii")
        if existed is None:
            self._undo.append(lambda: target.unlink(missing_ok=True))
        else:
            self._undo.append(lambda: target.write_text(existed, encoding="ascii"))
        return str(target)


def apply_autostart(enabled: bool, home: str | None = None) -> str | None:
    """Turn the login item on or off; returns a problem text instead of raising (it is optional)."""
    module = autostart_module()
    if module is None:
        return "Starting at login is not available in this version."
    try:
        currently = bool(module.is_enabled())
        if enabled and not currently:
            module.enable(home)
        elif not enabled and currently:
            module.disable()
    except OSError as exc:
        log.warning("Could not change the login item: %s", exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return f"Could not change starting at login: {exc.strerror or exc}{where}."
    except Exception as exc:
        log.warning("Could not change the login item: %s", exc)
        return f"Could not change starting at login: {describe_error(exc)}"
    return None


def _missing_parents(folder: Path) -> list[Path]:
    """The folders that creating ``folder`` would create, deepest first."""
    missing = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


__all__ = [
    "INTERVAL_CHOICES",
    "KEY_HINT",
    "NEW_ALBUM_CHOICES",
    "PAGE_ALBUMS",
    "PAGE_CONNECT",
    "PAGE_OPTIONS",
    "AlbumChoice",
    "CertificateOffer",
    "SetupOptions",
    "SetupPresenter",
    "SetupView",
    "apply_autostart",
]
