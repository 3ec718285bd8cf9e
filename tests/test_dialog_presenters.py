"""The dialogs' logic without a display: presenters driven through fake views and a fake controller.

The setup presenter talks to the real built-in demo server (in-process HTTP), so the errors
checked here are exactly the ones a user sees.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tray_sync.appstate import ActivityEntry, AppSnapshot, OfferedAlbum, TrayState
from tray_sync.context import Context
from tray_sync.dialogs import common
from tray_sync.dialogs.common import InlineWorker, human_duration, human_size, relative_time
from tray_sync.dialogs.settings_presenter import SettingsPresenter
from tray_sync.dialogs.setup_presenter import (
    PAGE_ALBUMS,
    PAGE_CONNECT,
    PAGE_OPTIONS,
    SetupPresenter,
    fetch_certificate,
)
from tray_sync.dialogs.status_presenter import StatusPresenter, describe_progress
from tray_sync.paths import AppPaths
from tray_sync.secrets import SERVICE, account_for
from tray_sync.sync.connect import add_album, check_connection, default_album_folder
from tray_sync.sync.progress import Phase, Progress
from tray_sync.sync.status import AlbumStatus

# -- fakes --------------------------------------------------------------------------------


class FakeController:
    """Records what the dialogs ask of the app; hands out snapshots like the real one."""

    def __init__(self, snapshot: AppSnapshot | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.listeners: list[Callable[[AppSnapshot], None]] = []
        self.snapshot = snapshot

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def sync_now(self) -> None:
        self._record("sync_now")

    def pause(self, until: datetime | None) -> None:
        self._record("pause", until)

    def resume(self) -> None:
        self._record("resume")

    def open_folder(self, path: str) -> None:
        self._record("open_folder", path)

    def open_log(self) -> None:
        self._record("open_log")

    def open_status(self) -> None:
        self._record("open_status")

    def open_settings(self) -> None:
        self._record("open_settings")

    def settings_changed(self) -> None:
        self._record("settings_changed")

    def add_offered_album(self, offer: OfferedAlbum, destination: str) -> None:
        self._record("add_offered_album", offer, destination)

    def dismiss_offered_album(self, offer: OfferedAlbum) -> None:
        self._record("dismiss_offered_album", offer)

    def subscribe(self, listener: Callable[[AppSnapshot], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        if self.snapshot is not None:
            listener(self.snapshot)
        return lambda: self.listeners.remove(listener)

    def publish(self, snapshot: AppSnapshot) -> None:
        self.snapshot = snapshot
        for listener in list(self.listeners):
            listener(snapshot)

    def quit(self) -> None:
        self._record("quit")


@dataclass
class FakeSetupView:
    pages: list[int] = field(default_factory=list)
    nav: dict[str, Any] = field(default_factory=dict)
    busy: list[tuple[bool, str]] = field(default_factory=list)
    result: tuple[str, bool] = ("", True)
    certificate: Any = None
    albums: list[Any] = field(default_factory=list)
    summary: tuple[str, bool] = ("", False)
    root: str = ""
    errors: list[str] = field(default_factory=list)
    credentials: tuple[str, str] = ("", "")
    closed: bool = False
    cancel_enabled: bool = True

    def show_page(self, page: int, title: str) -> None:
        self.pages.append(page)

    def set_nav(self, *, back: bool, next_label: str, next_enabled: bool, cancel: bool = True) -> None:
        self.nav = {"back": back, "label": next_label, "enabled": next_enabled}
        self.cancel_enabled = cancel

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.append((busy, text))

    def show_check_result(self, text: str, *, ok: bool) -> None:
        self.result = (text, ok)

    def show_certificate(self, offer: Any) -> None:
        self.certificate = offer

    def show_albums(self, rows: list[Any]) -> None:
        self.albums = rows

    def show_selection_summary(self, text: str, *, problem: bool) -> None:
        self.summary = (text, problem)

    def show_root_folder(self, path: str) -> None:
        self.root = path

    def show_options(self, options: Any, *, autostart_available: bool) -> None:
        self.options = options

    def show_error(self, text: str) -> None:
        self.errors.append(text)

    def show_credentials(self, url: str, key: str) -> None:
        self.credentials = (url, key)

    def close(self) -> None:
        self.closed = True


class QueuedWorker(InlineWorker):
    """Holds jobs until released: lets a test change things while a check is 'running'."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Callable[[], None]] = []

    def run(self, job, done, failed) -> None:  # type: ignore[no-untyped-def, override]
        self.pending.append(lambda: InlineWorker.run(self, job, done, failed))

    def release(self) -> None:
        while self.pending:
            self.pending.pop(0)()


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def ctx(home: Path, memory_keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # autostart entries land here
    context = Context(paths=AppPaths.resolve(home))
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    demo = DemoServer(mode="3", storage_dir=tmp_path / "server")
    demo.start()
    try:
        demo.library = build_demo_library(demo, photos_per_album=2, seed=3)  # type: ignore[attr-defined]
        yield demo
    finally:
        demo.stop()


def make_setup(ctx: Context, tmp_path: Path, worker: InlineWorker | None = None,
               **kwargs: Any) -> tuple[SetupPresenter, FakeSetupView, FakeController]:
    view, controller = FakeSetupView(), FakeController()
    presenter = SetupPresenter(view, ctx, controller, worker or InlineWorker(), photos_root=tmp_path / "Photos",
                               **kwargs)
    presenter.start()
    return presenter, view, controller


def saved_keys(memory_keyring) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {user: key for (service, user), key in memory_keyring.passwords.items() if service == SERVICE}


# -- setup wizard ---------------------------------------------------------------------------


def test_setup_names_a_wrong_key_and_a_missing_permission(ctx: Context, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    presenter, view, _ = make_setup(ctx, tmp_path)
    assert view.pages == [PAGE_CONNECT] and view.nav["label"] == "Check"

    presenter.run_check(server.url, "not-a-key")
    text, ok = view.result
    assert not ok and text.startswith("The server rejected the API key") and "API keys" in text
    assert view.nav["label"] == "Check"  # cannot go on

    album_and_asset_read = server.add_key(server.library.admin, ["album.read", "asset.read"], name="no download")
    presenter.run_check(server.url, album_and_asset_read)
    text, ok = view.result
    assert not ok and text.startswith("This API key lacks asset.download:")

    presenter.run_check("http://127.0.0.1:9", server.library.download_key)
    text, ok = view.result
    assert not ok and text.startswith("Cannot reach 127.0.0.1:9")

    presenter.run_check(server.url, "")
    assert view.result == ("Paste the API key (Account settings > API keys in Immich).", False)


def test_setup_finish_saves_key_rows_and_starts_the_first_sync(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               memory_keyring) -> None:
    server.record_responses = True  # to compare the sizes shown with the server's totalSize answers
    presenter, view, controller = make_setup(ctx, tmp_path)
    presenter.run_check(server.url + "/", server.library.download_key)
    text, ok = view.result
    assert ok and text == (f"Connected to Immich 3.1.0 at {server.url}. "
                           "This key can see 4 albums: choose them on the next page.")
    assert view.nav == {"back": False, "label": "Next", "enabled": True}

    presenter.next()
    assert presenter.page == PAGE_ALBUMS
    names = {row.album.name: row for row in view.albums}
    assert set(names) == {"Holidays 2023", "Grandma's Garden", "Bob's Bikes", "Family 2024"}
    assert names["Bob's Bikes"].owner_text == "Shared with me"
    assert names["Grandma's Garden"].owner_text == "Mine (shared)", "my album that I share is still mine"
    assert names["Holidays 2023"].owner_text == "Mine"
    assert all(row.size and row.size > 0 for row in view.albums), "sizes come from /download/info"
    def asked_sizes() -> dict[str, Any]:
        return {r.json()["albumId"]: r for r in list(server.requests)
                if (r.method, r.path) == ("POST", "/api/download/info")}

    deadline = time.monotonic() + 5  # the server logs a request just after it has answered it
    while len(asked_sizes()) < len(server.library.albums) and time.monotonic() < deadline:
        time.sleep(0.01)
    asked = asked_sizes()
    assert set(asked) == set(server.library.albums.values()), "one POST /download/info {albumId} per album"
    assert {row.album_id: row.size for row in view.albums} == {
        album_id: json.loads(record.response or b"")["totalSize"] for album_id, record in asked.items()}
    assert view.nav["enabled"] is False  # nothing chosen yet

    presenter.set_filter("bik")
    assert [row.album.name for row in view.albums] == ["Bob's Bikes"]
    presenter.select_all_visible(True)
    presenter.set_filter("")
    presenter.toggle_album(server.library.albums["Family 2024"])
    custom = tmp_path / "Elsewhere" / "Family"
    presenter.set_album_folder(server.library.albums["Family 2024"], str(custom))
    summary, problem = view.summary
    assert not problem and summary.startswith("2 albums, ") and "free on that disk" in summary
    presenter.next()
    assert presenter.page == PAGE_OPTIONS and view.nav["label"] == "Finish"
    presenter.set_options(interval_minutes=60, new_album_policy="auto", autostart=False)
    presenter.next()

    assert view.closed and controller.names() == ["settings_changed", "sync_now"]
    [connection] = ctx.store.connections()
    assert connection.name == "127.0.0.1" and connection.server_version == "3.1.0"
    assert connection.new_album_policy == "auto" and connection.new_album_root == str(tmp_path / "Photos")
    rows = {a.album_name: a.local_path for a in ctx.store.album_syncs()}
    assert rows == {"Bob's Bikes": str((tmp_path / "Photos" / "Bob's Bikes").resolve()),
                    "Family 2024": str(custom.resolve())}
    assert saved_keys(memory_keyring) == {
        account_for("127.0.0.1", connection.api_url): server.library.download_key}
    assert connection.account == account_for("127.0.0.1", connection.api_url)
    assert ctx.store.get_setting("interval_minutes") == 60
    assert ctx.store.seen_album_ids(connection.id) == set(server.library.albums.values())
    assert server.library.download_key not in (ctx.paths.db_path.read_bytes().decode("latin-1"))


def test_setup_cancel_saves_nothing(ctx: Context, server, tmp_path: Path, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    presenter, view, controller = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, server.library.download_key)
    presenter.next()
    presenter.select_all_visible(True)
    presenter.next()
    presenter.cancel()
    assert view.closed and controller.calls == []
    assert ctx.store.connections() == [] and ctx.store.album_syncs() == []
    assert saved_keys(memory_keyring) == {}
    assert not (tmp_path / "Photos").exists()


def test_setup_failure_while_finishing_undoes_every_step(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         memory_keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    import tray_sync.sync.connect as connect

    real_add = connect.add_album
    calls = []

    def flaky_add(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(connect, "add_album", flaky_add)
    presenter, view, controller = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, server.library.download_key)
    presenter.next()
    presenter.select_all_visible(True)
    presenter.next()
    presenter.next()
    assert len(calls) == 2
    assert view.errors and view.errors[0].startswith("Nothing was saved.")
    assert not view.closed and presenter.page == PAGE_OPTIONS and view.nav["enabled"] and view.cancel_enabled
    assert controller.calls == []
    assert ctx.store.connections() == [] and ctx.store.album_syncs() == []
    assert saved_keys(memory_keyring) == {}
    assert not (tmp_path / "Photos").exists(), "folders created for the first album are removed again"


def test_setup_folder_checks_block_or_warn(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    presenter, view, _ = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, server.library.download_key)
    presenter.next()
    holidays, family = server.library.albums["Holidays 2023"], server.library.albums["Family 2024"]
    presenter.toggle_album(holidays)
    presenter.toggle_album(family)
    shared = tmp_path / "Same"
    presenter.set_album_folder(holidays, str(shared))
    presenter.set_album_folder(family, str(shared / "inside"))
    rows = {row.album_id: row for row in view.albums}
    assert rows[holidays].error and "each album needs its own folder" in rows[holidays].error
    assert view.summary[1] and view.nav["enabled"] is False

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    presenter.set_album_folder(family, str(a_file))
    assert {row.album_id: row for row in view.albums}[family].error == f"{a_file} is a file, not a folder."

    busy = tmp_path / "Busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("user file")
    presenter.set_album_folder(family, str(busy))
    rows = {row.album_id: row for row in view.albums}
    assert rows[family].error is None and "already holds 1 item" in (rows[family].warning or "")
    assert "Note: Busy already holds 1 item" in view.summary[0] and view.nav["enabled"] is True

    monkeypatch.setattr("tray_sync.dialogs.setup_presenter.free_space", lambda path: 10)
    presenter.toggle_album(family, True)
    assert view.summary[1] and "Not enough space" in view.summary[0] and view.nav["enabled"] is False


def test_setup_drops_a_check_that_finishes_after_the_key_changed(ctx: Context, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    worker = QueuedWorker()
    presenter, view, _ = make_setup(ctx, tmp_path, worker=worker)
    presenter.run_check(server.url, "wrong")
    assert view.busy[-1][0] is True and view.nav["enabled"] is False  # busy: Check cannot be pressed twice
    presenter.credentials_changed(server.url, server.library.download_key)
    worker.release()
    assert view.result == ("", True), "the stale 'wrong key' answer must not show"
    presenter.run_check()
    worker.release()
    assert view.result[1] and presenter.check is not None


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography comes with keyring's SecretStorage)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert, key = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert, key


def test_setup_offers_an_untrusted_certificate_and_uses_it_once_trusted(ctx: Context, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                      memory_keyring) -> None:
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    cert, key = self_signed_certificate(tmp_path)
    server = DemoServer(mode="3", storage_dir=tmp_path / "tls-server", tls=(str(cert), str(key)))
    server.start()
    try:
        library = build_demo_library(server, photos_per_album=1, seed=2)
        presenter, view, _controller = make_setup(ctx, tmp_path)
        presenter.run_check(server.url, library.download_key)
        text, ok = view.result
        assert not ok and text == f"127.0.0.1:{server.port} presents a certificate this computer does not trust."
        offer = view.certificate
        assert offer is not None and offer.fingerprint == fetch_certificate(server.url).fingerprint
        assert len(offer.fingerprint.split(":")) == 32

        presenter.trust_certificate()
        assert view.result[1] and presenter.check is not None, view.result
        presenter.next()
        presenter.select_all_visible(True)
        presenter.next()
        presenter.next()
        [connection] = ctx.store.connections()
        assert connection.ca_bundle and Path(connection.ca_bundle).read_text() == offer.pem
        assert Path(connection.ca_bundle).parent == ctx.paths.data_dir / "certificates"
        assert check_connection(server.url, library.download_key, verify=connection.ca_bundle).albums
    finally:
        server.stop()


def test_setup_for_a_saved_connection_shows_its_synced_albums_locked(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   memory_keyring) -> None:
    first, _, _ = make_setup(ctx, tmp_path)
    first.run_check(server.url, server.library.download_key)
    first.next()
    first.toggle_album(server.library.albums["Holidays 2023"])
    first.next()
    first.set_options(interval_minutes=180, new_album_policy="ignore", autostart=False, notifications=False)
    first.next()
    [connection] = ctx.store.connections()

    again, view, _controller = make_setup(ctx, tmp_path)
    again.start_for_connection(connection.id)
    assert view.credentials == (connection.server_url, server.library.download_key)
    assert again.page == PAGE_ALBUMS, "a saved connection goes straight to the albums"
    rows = {row.album.name: row for row in view.albums}
    assert rows["Holidays 2023"].already_synced and rows["Holidays 2023"].note == "Already synced"
    again.toggle_album(server.library.albums["Holidays 2023"])
    assert not {row.album.name: row for row in view.albums}["Holidays 2023"].selected
    again.toggle_album(server.library.albums["Family 2024"])
    again.next()
    assert (view.options.interval_minutes, view.options.new_album_policy, view.options.autostart,
            view.options.notifications) == (180, "ignore", False, False), "the choices made, not first-run defaults"
    again.next()
    assert [c.name for c in ctx.store.connections()] == [connection.name]
    assert ctx.store.get_setting("interval_minutes") == 180
    assert ctx.store.connection(connection.id).new_album_policy == "ignore"
    assert sorted(a.album_name for a in ctx.store.album_syncs()) == ["Family 2024", "Holidays 2023"]


def test_setup_autostart_choice_writes_the_login_item(ctx: Context, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tray_sync import autostart

    presenter, view, _ = make_setup(ctx, tmp_path)
    assert view.options.autostart is True  # on by default: a sync tool that does not start is no use
    presenter.run_check(server.url, server.library.download_key)
    presenter.next()
    presenter.toggle_album(server.library.albums["Family 2024"])
    presenter.next()
    presenter.next()
    assert autostart.is_enabled()
    assert str(tmp_path / "xdg-config") in str(autostart.login_item().location)
    assert ctx.store.get_setting("autostart") is True


# -- settings ---------------------------------------------------------------------------------


@dataclass
class FakeSettingsView:
    values: dict[str, Any] = field(default_factory=dict)
    field_errors: dict[str, str | None] = field(default_factory=dict)
    albums: list[Any] = field(default_factory=list)
    connections: list[Any] = field(default_factory=list)
    save_enabled: bool = True
    cancel_enabled: bool = True
    messages: list[tuple[str, bool]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)  # what confirm / ask_yes_no_cancel answer, in order
    questions: list[str] = field(default_factory=list)
    busy: list[tuple[bool, str]] = field(default_factory=list)
    closed: bool = False

    def show_values(self, values: dict[str, Any], *, autostart_available: bool) -> None:
        self.values = values

    def show_field_error(self, name: str, text: str | None) -> None:
        self.field_errors[name] = text

    def show_albums(self, rows: list[Any]) -> None:
        self.albums = rows

    def show_connections(self, rows: list[Any]) -> None:
        self.connections = rows

    def set_save_enabled(self, enabled: bool) -> None:
        self.save_enabled = enabled

    def set_cancel_enabled(self, enabled: bool) -> None:
        self.cancel_enabled = enabled

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.append((busy, text))

    def confirm(self, title: str, question: str) -> bool:
        self.questions.append(question)
        return bool(self.answers.pop(0))

    def ask_yes_no_cancel(self, title: str, question: str) -> bool | None:
        self.questions.append(question)
        return self.answers.pop(0)  # type: ignore[no-any-return]

    def show_message(self, text: str, *, error: bool) -> None:
        self.messages.append((text, error))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def connected(ctx: Context, server, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A profile with the demo server connected and two albums synced (files recorded)."""
    check = check_connection(server.url, server.library.download_key)
    account = account_for("home", check.discovery.api_url)
    ctx.secrets.set(account, server.library.download_key)
    connection = ctx.store.save_connection(name="home", server_url=check.discovery.server_url,
                                           api_url=check.discovery.api_url, account=account,
                                           server_version=str(check.discovery.version))
    albums = {a.name: a for a in check.albums}
    for name in ("Family 2024", "Holidays 2023"):
        add_album(ctx.store, connection, albums[name], default_album_folder(tmp_path / "Pictures", name))
    ctx.engine().sync()
    return connection


def make_settings(ctx: Context, snapshot: AppSnapshot | None = None, **kwargs: Any,
                  ) -> tuple[SettingsPresenter, FakeSettingsView, FakeController]:
    view, controller = FakeSettingsView(), FakeController(snapshot)
    presenter = SettingsPresenter(view, ctx, controller, InlineWorker(), **kwargs)
    presenter.start()
    return presenter, view, controller


def test_settings_validate_inline_and_save_takes_effect(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    presenter, view, controller = make_settings(ctx)
    assert view.values["interval_minutes"] == 30 and view.values["log_level"] == "INFO"
    presenter.field_changed("interval_minutes", "2")
    assert view.field_errors["interval_minutes"] == "Choose between 5 and 1440 minutes." and not view.save_enabled
    presenter.field_changed("parallel_downloads", "many")
    assert view.field_errors["parallel_downloads"] == "Type a whole number of downloads at a time (1 to 16)."
    presenter.save()
    assert ctx.store.get_setting("interval_minutes") == 30 and controller.calls == [], "invalid: not saved"

    presenter.field_changed("interval_minutes", " 45 ")
    presenter.field_changed("parallel_downloads", "2")
    presenter.field_changed("notify_on_success", False)
    assert view.field_errors["interval_minutes"] is None and view.save_enabled
    presenter.save()
    assert ctx.store.get_setting("interval_minutes") == 45
    assert ctx.store.get_setting("parallel_downloads") == 2
    assert ctx.store.get_setting("notify_on_success") is False
    assert controller.names() == ["settings_changed"] and view.closed


def test_settings_cancel_forgets_pending_changes(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    presenter, view, controller = make_settings(ctx)
    presenter.field_changed("interval_minutes", "90")
    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    view.answers.append(True)
    presenter.remove_album(family.id)
    assert next(r for r in view.albums if r.album_sync_id == family.id).pending == "stops syncing on Save"
    presenter.cancel()
    assert view.closed and controller.calls == []
    assert ctx.store.get_setting("interval_minutes") == 30 and len(ctx.store.album_syncs()) == 2


def test_settings_stop_syncing_keeps_the_files(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    presenter, view, _ = make_settings(ctx)
    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    files = sorted(p for p in family.path.rglob("*") if p.is_file())
    assert files
    view.answers.append(True)
    presenter.remove_album(family.id)
    presenter.save()
    assert [a.album_name for a in ctx.store.album_syncs()] == ["Holidays 2023"]
    assert sorted(p for p in family.path.rglob("*") if p.is_file()) == files


def test_settings_change_folder_moves_only_synced_files_while_paused(ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    presenter, view, controller = make_settings(ctx, AppSnapshot(TrayState.SYNCED))
    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    synced = {a.local_path for a in ctx.store.synced_assets(family.id).values()}
    (family.path / "my notes.txt").write_text("the user's own file")
    target = tmp_path / "Moved" / "Family"
    view.answers.append(True)  # yes, move the files
    presenter.change_album_folder(family.id, str(target))
    assert "moves its files on Save" in next(r for r in view.albums if r.album_sync_id == family.id).pending
    presenter.save()
    assert controller.names() == ["pause", "resume", "settings_changed", "sync_now"]
    moved = ctx.store.album_sync(family.id)
    assert moved.local_path == str(target.resolve())
    assert {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} == synced
    assert (family.path / "my notes.txt").read_text() == "the user's own file", "not ours: left alone"
    assert not any(p.is_file() and p.name != "my notes.txt" for p in family.path.rglob("*"))


def test_settings_folder_change_refuses_another_albums_folder(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    presenter, view, _ = make_settings(ctx)
    family, holidays = sorted(ctx.store.album_syncs(), key=lambda a: a.album_name)
    presenter.change_album_folder(family.id, str(holidays.path / "sub"))
    text, error = view.messages[-1]
    assert error and "overlaps the folder of the synced album 'Holidays 2023'" in text
    assert all(not row.pending for row in view.albums)


def test_settings_review_and_release_held_removals(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    presenter, view, controller = make_settings(ctx)
    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    held = sorted(ctx.store.synced_assets(family.id))[:2]
    ctx.store.set_asset_state(family.id, held, "removal_held")
    presenter.reload()
    row = next(r for r in view.albums if r.album_sync_id == family.id)
    assert row.held == 2
    view.answers.append(True)
    presenter.release_held(family.id)
    assert all(path in view.questions[-1] for path in presenter.held_files(family.id))
    presenter.set_removal_policy(family.id, True)
    presenter.save()
    album = ctx.store.album_sync(family.id)
    assert album.confirm_removals and album.mirror_removals
    assert controller.names() == ["settings_changed", "sync_now"]


def test_settings_new_album_policy_and_connection_removal(ctx: Context, connected, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    presenter, view, controller = make_settings(ctx)
    presenter.set_new_album_policy(connected.id, "ask")
    assert view.connections[0].new_album_policy == "ask"
    assert ctx.store.connection(connected.id).new_album_policy == "ignore", "pending until Save"
    view.answers.append(False)
    presenter.remove_connection(connected.id)
    assert ctx.store.connections() and saved_keys(memory_keyring)
    view.answers.append(True)
    presenter.remove_connection(connected.id)
    assert "stop syncing its 2 albums" in view.questions[-1]
    assert ctx.store.connections() == [] and ctx.store.album_syncs() == []
    assert saved_keys(memory_keyring) == {} and controller.names() == ["settings_changed"]
    assert view.connections == [] and view.albums == []


def test_settings_edit_connection_checks_the_new_key_first(ctx: Context, connected, server,  # type: ignore[no-untyped-def]
                                                           memory_keyring) -> None:
    presenter, _view, controller = make_settings(ctx)
    results: list[tuple[bool, str]] = []
    presenter.edit_connection(connected.id, "", "wrong-key", lambda ok, text: results.append((ok, text)))
    ok, text = results[-1]
    assert not ok and text.startswith("Not saved. The server rejected the API key")
    assert saved_keys(memory_keyring)[connected.account] == server.library.download_key

    presenter.edit_connection(connected.id, "http://127.0.0.1:9", "", lambda ok, text: results.append((ok, text)))
    ok, text = results[-1]
    assert not ok and text.startswith("Not saved. Cannot reach 127.0.0.1:9")
    assert ctx.store.connection(connected.id) == connected, "a wrong address changes nothing"

    new_key = server.add_key(server.library.admin, ["all"], name="replacement")
    presenter.edit_connection(connected.id, "", new_key, lambda ok, text: results.append((ok, text)))
    ok, text = results[-1]
    assert ok and text.startswith("Saved: home now uses")
    assert saved_keys(memory_keyring) == {connected.account: new_key}
    assert controller.names() == ["settings_changed"]


def test_settings_autostart_checkbox_switches_the_login_item(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    from tray_sync import autostart

    presenter, view, _ = make_settings(ctx)
    assert view.values["autostart"] is False and not autostart.is_enabled()
    presenter.field_changed("autostart", True)
    presenter.save()
    assert autostart.is_enabled() and ctx.store.get_setting("autostart") is True
    presenter, view, _ = make_settings(ctx)
    assert view.values["autostart"] is True
    presenter.field_changed("autostart", False)
    presenter.save()
    assert not autostart.is_enabled()


def test_settings_add_albums_opens_the_wizard_for_the_connection(ctx: Context, connected) -> None:  # type: ignore[no-untyped-def]
    opened: list[tuple[Any, ...]] = []
    presenter, _, _ = make_settings(ctx, open_setup=lambda *args: opened.append(args))
    presenter.add_albums(connected.id)
    presenter.add_albums(None)
    assert opened == [(connected.id,), ()]


# -- status --------------------------------------------------------------------------------


@dataclass
class FakeStatusView:
    state: tuple[str, str, str] = ("", "", "")
    progress: tuple[float | None, str] = (None, "")
    albums: list[Any] = field(default_factory=list)
    activity: list[Any] = field(default_factory=list)
    notices: tuple[list[str], list[OfferedAlbum]] = ([], [])
    actions: dict[str, Any] = field(default_factory=dict)
    review: bool = False
    closed: bool = False

    def show_state(self, headline: str, detail: str, level: str) -> None:
        self.state = (headline, detail, level)

    def show_progress(self, fraction: float | None, text: str) -> None:
        self.progress = (fraction, text)

    def show_albums(self, rows: list[Any]) -> None:
        self.albums = rows

    def show_activity(self, lines: list[Any]) -> None:
        self.activity = lines

    def show_notices(self, lines: list[str], offers: list[OfferedAlbum]) -> None:
        self.notices = (lines, offers)

    def show_review(self, visible: bool) -> None:
        self.review = visible

    def set_actions(self, *, sync_enabled: bool, pause_label: str, folder_enabled: bool,
                    sync_label: str = "Sync now") -> None:
        self.actions = {"sync": sync_enabled, "pause": pause_label, "folder": folder_enabled, "label": sync_label}

    def close(self) -> None:
        self.closed = True


NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def album_status(sync_id: int, name: str, **changes: Any) -> AlbumStatus:
    values: dict[str, Any] = dict(
        album_sync_id=sync_id, album_id=f"a{sync_id}", album_name=name, connection="home",
        path=f"/photos/{name}", last_sync_at="2026-05-04T11:55:00.000000Z", last_attempt_at=None, state="ok",
        last_error=None, files=12, bytes=3_400_000, changed_locally=(), held_removals=0, mirror_removals=False)
    values.update(changes)
    return AlbumStatus(**values)


def test_status_shows_progress_albums_and_activity_live() -> None:
    controller = FakeController(AppSnapshot(TrayState.SYNCED, last_success_at=NOW - timedelta(minutes=5),
                                            next_due_at=NOW + timedelta(minutes=25)))
    view = FakeStatusView()
    presenter = StatusPresenter(view, controller, now=lambda: NOW)
    presenter.start()
    headline, detail, level = view.state
    assert (headline, level) == ("Up to date", "ok")
    assert detail == "Last synced 5 minutes ago. Next check in 25 minutes."
    assert view.progress == (None, "")
    assert view.actions == {"sync": True, "pause": "Pause", "folder": False, "label": "Sync now"}

    albums = (album_status(1, "Family"), album_status(2, "Bikes", state="folder_gone", held_removals=3,
                                                      last_error="The folder /media/usb/Bikes is missing."))
    activity = (ActivityEntry(NOW - timedelta(hours=2), "Downloaded 3 new files into Family"),
                ActivityEntry(NOW - timedelta(minutes=1), "Bikes: the folder is missing", is_error=True))
    controller.publish(AppSnapshot(
        TrayState.SYNCING, albums=albums, activity=activity, last_success_at=NOW - timedelta(minutes=5),
        progress=Progress(Phase.DOWNLOADING, "Family", files_done=3, files_total=12, bytes_done=25_000_000,
                          bytes_total=100_000_000, rate_bytes_per_s=5_000_000)))
    assert view.state[0] == "Syncing…"
    fraction, text = view.progress
    assert fraction == pytest.approx(0.25)
    assert text == "3 of 12 files · 25.0 MB of 100 MB · 5.0 MB/s · about 15 s left · Family"
    family, bikes = view.albums
    assert (family.name, family.files, family.size, family.state, family.last_sync) == (
        "Family", "12", "3.4 MB", "Up to date", "5 minutes ago")
    assert bikes.problem and bikes.state == ("Folder missing: The folder /media/usb/Bikes is missing. "
                                             "(3 removals waiting for your OK)")
    assert [(line.when, line.is_error) for line in view.activity] == [("1 minute ago", True), ("2 hours ago", False)]
    assert view.actions == {"sync": False, "pause": "Pause", "folder": True, "label": "Sync now"}

    presenter.select_album("2")
    presenter.open_folder()
    presenter.sync_now()
    presenter.open_log()
    assert controller.calls == [("open_folder", ("/photos/Bikes",)), ("sync_now", ()), ("open_log", ())]


def test_status_pause_resume_error_and_close() -> None:
    controller = FakeController(AppSnapshot(TrayState.PAUSED, paused_until=None))
    view = FakeStatusView()
    presenter = StatusPresenter(view, controller, now=lambda: NOW)
    presenter.start()
    assert view.state[0] == "Paused" and "until you resume" in view.state[1]
    assert view.actions["pause"] == "Resume" and view.actions["sync"] is False
    presenter.toggle_pause()
    controller.publish(AppSnapshot(TrayState.ERROR, error="The server rejected the API key: create a key."))
    assert view.state[2] == "error" and view.state[1].startswith("The server rejected the API key")
    presenter.toggle_pause()
    assert controller.calls == [("resume", ()), ("pause", (None,))]
    controller.publish(AppSnapshot(TrayState.OFFLINE, error="Cannot reach photos.example.com."))
    assert view.state[0] == "Offline" and "tries again by itself" in view.state[1]

    offer = OfferedAlbum(1, "new-id", "Summer: 2025")
    controller.publish(AppSnapshot(TrayState.SYNCED, offered_albums=(offer,), notices=("2 files changed here",)))
    assert view.notices == (["2 files changed here"], [offer])
    presenter.add_offer(offer, "/photos/Summer")
    presenter.dismiss_offer(offer)
    assert controller.calls[-2:] == [("add_offered_album", (offer, "/photos/Summer")),
                                     ("dismiss_offered_album", (offer,))]
    presenter.close()
    assert view.closed and controller.listeners == []
    controller.publish(AppSnapshot(TrayState.SYNCED))  # after close: ignored, nothing raised


def test_progress_and_plain_formats() -> None:
    assert describe_progress(Progress(Phase.CHECKING)) == (-1.0, "Checking the server…")
    assert describe_progress(Progress(Phase.LISTING, "Family")) == (-1.0, "Looking for new photos in Family…")
    fraction, text = describe_progress(Progress(Phase.DOWNLOADING, files_done=1, files_total=4))
    assert fraction == 0.25 and text == "1 of 4 files"
    assert human_size(0) == "0 bytes" and human_size(1) == "1 byte" and human_size(1_500_000) == "1.5 MB"
    assert human_size(None) == "…" and human_size(250_000_000_000) == "250 GB"
    assert human_duration(59) == "59 s" and human_duration(125) == "2 min 05 s" and human_duration(7260) == "2 h 01 min"
    assert relative_time(None) == "never"
    assert relative_time(NOW - timedelta(seconds=10), NOW) == "just now"
    assert relative_time("2026-05-04T10:00:00Z", NOW) == "2 hours ago"
    assert relative_time(NOW - timedelta(days=40), NOW).endswith("2026 at " + (NOW - timedelta(days=40))
                                                                  .astimezone().strftime("%H:%M"))


def test_folder_problem_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert common.folder_problem(Path("relative/path")) == ("Choose a full folder path.", None)
    assert common.folder_problem(tmp_path / "new" / "deeper") == (None, None)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.jpg").write_bytes(b"x")
    (tmp_path / "full" / "b.jpg").write_bytes(b"x")
    error, warning = common.folder_problem(tmp_path / "full")
    assert error is None and warning and warning.startswith("full already holds 2 items")
    monkeypatch.setattr(common, "FOLDER_COUNT_LIMIT", 1)
    assert common.folder_problem(tmp_path / "full")[1].startswith("full already holds more than 1 items")
    monkeypatch.undo()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root may write anywhere, so ask the question the way a normal user's system would answer it
    monkeypatch.setattr(common.os, "access", lambda path, mode: Path(path) != locked)
    assert common.folder_problem(locked / "x")[0] == f"{locked} is not writable: choose another folder."


def test_setup_says_so_when_the_key_sees_no_albums(ctx: Context, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loner = server.add_user("Carol", "carol@example.com")
    key = server.add_key(loner, ["album.read", "asset.read", "asset.download"], name="carol")
    presenter, view, _ = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, key)
    assert view.result == (f"Connected to Immich 3.1.0 at {server.url}. This key can see 0 albums.", True)
    presenter.next()
    assert view.albums == [] and view.summary[1] and view.summary[0].startswith("This key sees no albums yet")
    assert view.nav["enabled"] is False


def test_status_before_setup_offers_set_up() -> None:
    opened: list[str] = []
    controller = FakeController(AppSnapshot(TrayState.NOT_SET_UP))
    view = FakeStatusView()
    presenter = StatusPresenter(view, controller, now=lambda: NOW, open_setup=lambda: opened.append("setup"))
    presenter.start()
    assert view.state == ("Not set up yet", "Connect to your Immich server to start: press Set up….", "muted")
    assert view.actions["label"] == "Set up…" and view.actions["sync"] is True
    presenter.sync_now()
    assert opened == ["setup"] and controller.calls == []



def test_setup_checks_free_space_on_the_disk_each_album_goes_to(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    presenter, view, _ = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, server.library.download_key)
    presenter.next()
    holidays, family = server.library.albums["Holidays 2023"], server.library.albums["Family 2024"]
    usb = tmp_path / "usb"
    usb.mkdir()
    # Two disks: the photos folder's (plenty of room) and a nearly full USB drive.
    monkeypatch.setattr("tray_sync.dialogs.setup_presenter.disk_id",
                        lambda path: "usb" if usb in (path, *path.parents) else "home")
    monkeypatch.setattr("tray_sync.dialogs.setup_presenter.free_space",
                        lambda path: 100 if usb in (path, *path.parents) else 10**12)
    presenter.toggle_album(holidays)
    presenter.toggle_album(family)
    text, problem = view.summary
    assert not problem and text.endswith("; 1.0 TB free on that disk."), text
    presenter.set_album_folder(family, str(usb / "Family"))
    family_size = next(a.size for a in presenter.albums if a.album_id == family)
    assert family_size and family_size > 100
    text, problem = view.summary
    assert problem and view.nav["enabled"] is False
    assert f"Not enough space: {human_size(family_size)} needed on the disk of {usb / 'Family'}, 100 bytes free" in text
    presenter.toggle_album(family, False)
    presenter.set_album_folder(holidays, str(usb / "Holidays"))
    presenter.toggle_album(holidays, True)
    assert view.summary[1], "the USB drive is too small for Holidays as well"
    presenter.set_album_folder(holidays, str(tmp_path / "Photos" / "Holidays 2023"))
    presenter.set_album_folder(family, str(usb / "Family"))
    presenter.toggle_album(family, False)
    assert view.summary == (view.summary[0], False) and view.nav["enabled"] is True


@pytest.fixture
def web_page_server() -> Iterator[Callable[[bool], str]]:
    """Plain web servers that are not Immich: one answers 404 under /api, one a page everywhere."""
    import http.server
    import threading

    servers: list[http.server.ThreadingHTTPServer] = []

    def start(page_everywhere: bool) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"<html><title>My router</title></html>"
                self.send_response(200 if page_everywhere or "/api" not in self.path else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                """Quiet: the test's output is not the place for this server's access log."""

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_setup_says_not_an_immich_server_and_server_too_old(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            web_page_server) -> None:
    presenter, view, _ = make_setup(ctx, tmp_path)
    router = web_page_server(False)
    presenter.run_check(router, "some-key")
    assert view.result == (f"{router} answered, but it is not an Immich server (no /api/server/ping).", False)
    nas_login = web_page_server(True)
    presenter.run_check(nas_login, "some-key")
    assert view.result == (f"{nas_login} answered, but it is not an Immich server (a web page instead of Immich's "
                           "answer): check the address you open Immich at.", False)
    assert presenter.check is None and view.nav["label"] == "Check"

    server.version = (1, 118, 2)  # an Immich from before 2.0
    presenter.run_check(server.url, server.library.download_key)
    assert view.result == ("This Immich server is 1.118.2, which is too old: update it to 2.0 or newer.", False)
    assert presenter.check is None and view.nav["label"] == "Check"


def _nothing_saved(ctx: Context, memory_keyring, tmp_path: Path, settings_before: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    assert ctx.store.connections() == [] and ctx.store.album_syncs() == []
    assert saved_keys(memory_keyring) == {}
    assert ctx.store.settings() == settings_before
    assert not (tmp_path / "Photos").exists(), "no album folder created"
    assert not (ctx.paths.data_dir / "certificates").exists()
    assert list(Path(tempfile.gettempdir()).glob("tray-sync-cert-*.pem")) == []


@pytest.mark.parametrize("where", ["typed", "checking", "checked", "albums", "options", "trusted certificate"])
def test_setup_cancel_at_any_step_saves_nothing(ctx: Context, server, tmp_path: Path, memory_keyring,  # type: ignore[no-untyped-def]
                                                where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where a trusted certificate waits
    settings_before = ctx.store.settings()
    worker = QueuedWorker()
    presenter, view, controller = make_setup(ctx, tmp_path, worker=worker)
    presenter.credentials_changed(server.url, server.library.download_key)
    if where == "trusted certificate":
        presenter.trusted_pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"  # as after "Trust"
        assert Path(str(presenter._verify())).is_file()
    if where != "typed":
        presenter.run_check()
    if where not in ("typed", "checking"):
        worker.release()
        assert presenter.check is not None or where == "trusted certificate"
    if where in ("albums", "options"):
        presenter.next()
        worker.release()  # album sizes
        presenter.select_all_visible(True)
        presenter.set_album_folder(server.library.albums["Family 2024"], str(tmp_path / "Photos" / "Fam"))
    if where == "options":
        presenter.next()
        presenter.set_options(interval_minutes=60, autostart=False, notifications=False)
    presenter.cancel()
    worker.release()  # a check still running when Cancel was pressed comes back to a closed wizard
    assert view.closed and controller.calls == []
    _nothing_saved(ctx, memory_keyring, tmp_path, settings_before)


class ThreadWorker(InlineWorker):
    """Jobs on a real thread, callbacks delivered when the test says (like TkWorker's after() queue)."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[Callable[[], None]] = []
        self.threads: list[Any] = []

    def run(self, job, done, failed) -> None:  # type: ignore[no-untyped-def, override]
        import threading

        def body() -> None:
            try:
                result = job(lambda fn: self.results.append(fn))
            except Exception as exc:
                error = exc
                self.results.append(lambda: failed(error))
            else:
                self.results.append(lambda: done(result))

        thread = threading.Thread(target=body, daemon=True)
        self.threads.append(thread)
        thread.start()

    def deliver(self) -> None:
        for thread in self.threads:
            thread.join(10)
        while self.results and not self.closed:
            self.results.pop(0)()


def test_setup_closed_by_quitting_while_finish_saves_is_all_or_nothing(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                       memory_keyring,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import tray_sync.sync.connect as connect

    real_add = connect.add_album

    def slow_add(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)  # a slow disk: the app quits while Finish is between two albums
        return real_add(*args, **kwargs)

    monkeypatch.setattr(connect, "add_album", slow_add)
    worker = ThreadWorker()
    presenter, view, controller = make_setup(ctx, tmp_path, worker=worker)
    presenter.run_check(server.url, server.library.download_key)
    worker.deliver()
    presenter.next()
    worker.deliver()
    presenter.select_all_visible(True)
    presenter.next()
    presenter.set_options(autostart=False)
    presenter.next()
    assert presenter.finishing and view.cancel_enabled is False and view.nav["back"] is False
    presenter.cancel()  # (Escape) does nothing while saving
    assert not view.closed
    presenter.close()  # DialogHost.close_all() when the app quits
    # Right when close() returns (the process may end now), the save is complete, not half-done.
    [connection] = ctx.store.connections()
    assert len(ctx.store.album_syncs(connection.id)) == 4
    assert saved_keys(memory_keyring) == {connection.account: server.library.download_key}
    assert view.closed
    worker.deliver()
    assert controller.calls == [], "a closed wizard is not called back"


def test_settings_mirror_policy_guard_holds_removals_until_released_then_sync_trashes_them(  # type: ignore[no-untyped-def]
        ctx: Context, connected, server) -> None:
    from tray_sync.sync.fsops import TRASH_DIR

    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    presenter, view, _ = make_settings(ctx)
    presenter.set_removal_policy(family.id, True)
    assert next(r for r in view.albums if r.album_sync_id == family.id).removal_policy == "Move to trash"
    presenter.save()
    assert ctx.store.album_sync(family.id).mirror_removals

    synced = ctx.store.synced_assets(family.id)
    files = {family.path / record.local_path for record in synced.values()}
    assert files and all(path.is_file() for path in files)
    server.remove_from_album(server.library.albums["Family 2024"], list(synced))  # everything at once
    ctx.engine().sync()
    assert all(path.is_file() for path in files), "the guard holds a mass removal"

    presenter, view, controller = make_settings(ctx)
    row = next(r for r in view.albums if r.album_sync_id == family.id)
    assert row.held == len(files)
    assert sorted(presenter.held_files(family.id)) == sorted(str(p.relative_to(family.path)) for p in files)
    view.answers.append(False)  # reviewed, not released: nothing changes
    presenter.release_held(family.id)
    assert not next(r for r in view.albums if r.album_sync_id == family.id).pending
    view.answers.append(True)
    presenter.release_held(family.id)
    presenter.save()
    assert controller.names() == ["settings_changed", "sync_now"]
    ctx.engine().sync()  # what sync_now starts
    assert not any(path.exists() for path in files)
    assert all((family.path / TRASH_DIR / path.relative_to(family.path)).is_file() for path in files)
    assert ctx.store.album_totals(family.id).held_removals == 0


def test_settings_moves_an_album_only_once_a_running_sync_lets_go(ctx: Context, connected, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import time

    from tray_sync.sync.lock import ProcessLock

    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    files = sorted(p.relative_to(family.path) for p in family.path.rglob("*") if p.is_file())
    worker = ThreadWorker()
    view, controller = FakeSettingsView(), FakeController(AppSnapshot(TrayState.SYNCING))
    presenter = SettingsPresenter(view, ctx, controller, worker)
    presenter.start()
    target = tmp_path / "Moved"
    view.answers.append(True)
    presenter.change_album_folder(family.id, str(target))

    running_sync = ProcessLock(ctx.paths.runtime_dir / "sync.lock").acquire()  # the command line, say
    try:
        presenter.save()
        assert controller.names() == ["pause"]
        time.sleep(0.4)
        assert not target.exists() and ctx.store.album_sync(family.id).path == family.path, "waits for the sync"
        worker.results.pop(0)()  # what the window shows meanwhile
        assert view.busy[-1] == (True, "Waiting for the running sync to stop before moving files…")
    finally:
        running_sync.release()
    worker.deliver()
    assert sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file()) == files
    assert ctx.store.album_sync(family.id).path == target.resolve()
    assert controller.names() == ["pause", "resume", "settings_changed", "sync_now"] and view.closed
    free_again = ProcessLock(ctx.paths.runtime_dir / "sync.lock").acquire()  # Save let go of the lock
    free_again.release()


def test_settings_closed_by_quitting_mid_move_finishes_the_move_and_resumes(ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                           tmp_path: Path) -> None:
    import threading

    from tray_sync.sync.lock import ProcessLock

    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    files = sorted(p.relative_to(family.path) for p in family.path.rglob("*") if p.is_file())
    worker = ThreadWorker()
    view, controller = FakeSettingsView(), FakeController(AppSnapshot(TrayState.SYNCED))
    presenter = SettingsPresenter(view, ctx, controller, worker)
    presenter.start()
    target = tmp_path / "Moved"
    view.answers.append(True)
    presenter.change_album_folder(family.id, str(target))
    running_sync = ProcessLock(ctx.paths.runtime_dir / "sync.lock").acquire()
    threading.Timer(0.3, running_sync.release).start()  # the sync stops while the app is quitting
    assert view.cancel_enabled
    presenter.save()
    assert not view.cancel_enabled and not view.save_enabled  # shown, not only ignored
    presenter.cancel()  # Cancel does nothing while saving
    assert not view.closed
    presenter.close()  # DialogHost.close_all() on Quit
    assert view.closed
    assert sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file()) == files, "moved in full"
    assert ctx.store.album_sync(family.id).path == target.resolve()
    assert controller.names() == ["pause", "resume"], "the pause (kept across restarts) is not left behind"
    worker.deliver()
    assert controller.names() == ["pause", "resume"]


def test_setup_says_when_the_login_item_could_not_be_made(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenAutostart:
        @staticmethod
        def is_enabled() -> bool:
            return False

        @staticmethod
        def enable(home: str | None = None) -> None:
            raise PermissionError(13, "Permission denied", "/home/me/.config/autostart/tray-sync.desktop")

        @staticmethod
        def disable() -> None:
            """Never enabled, so there is nothing to take away."""

    monkeypatch.setattr("tray_sync.dialogs.setup_presenter.autostart_module", lambda: BrokenAutostart)
    presenter, view, controller = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, server.library.download_key)
    presenter.next()
    presenter.toggle_album(server.library.albums["Family 2024"])
    presenter.next()
    presenter.next()
    assert view.closed and controller.names() == ["settings_changed", "sync_now"], "the rest is set up"
    [message] = view.errors
    assert message == ("Set up, but: Could not change starting at login: Permission denied "
                       "(/home/me/.config/autostart/tray-sync.desktop).")
    assert ctx.store.get_setting("autostart") is False, "the setting does not claim a login item that is not there"
    assert len(ctx.store.album_syncs()) == 1


def test_setup_gives_albums_of_the_same_name_folders_of_their_own(ctx: Context, server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 memory_keyring) -> None:
    library = server.library
    mine = server.add_album(library.admin, "Trips")
    theirs = server.add_album(library.bob, "Trips", shared_with=[(library.admin, "viewer")])
    lower = server.add_album(library.admin, "trips")  # one folder with "Trips" on Windows and macOS
    photos = tmp_path / "Photos"
    # an album of the same name already synced from another server keeps its folder
    other = ctx.store.save_connection(name="other", server_url="http://other.example", api_url="http://other.example/api",
                                      account="other", server_version="3.1.0")
    ctx.store.add_album_sync(other.id, "elsewhere", "Family 2024", str((photos / "Family 2024").resolve()))

    presenter, view, _ = make_setup(ctx, tmp_path)
    presenter.run_check(server.url, library.download_key)
    presenter.next()
    presenter.select_all_visible(True)
    folders = {row.album_id: row.folder for row in view.albums}
    assert folders[mine] == photos / "Trips" and folders[lower] == photos / "trips (2)"
    assert folders[theirs] == photos / "Trips (3)", "shared albums come after my own"
    assert folders[library.albums["Family 2024"]] == photos / "Family 2024 (2)"
    assert not any(row.error for row in view.albums) and view.nav["enabled"], view.summary

    presenter.set_album_folder(mine, str(photos / "trips (2)"))  # the user's choice wins; the default moves aside
    folders = {row.album_id: row.folder for row in view.albums}
    assert folders[mine] == photos / "trips (2)" and folders[lower] == photos / "trips"
    presenter.set_root_folder(str(tmp_path / "Elsewhere"))
    folders = {row.album_id: row.folder for row in view.albums}
    assert folders[mine] == photos / "trips (2)" and folders[lower] == tmp_path / "Elsewhere" / "trips"
    assert folders[theirs] == tmp_path / "Elsewhere" / "Trips (2)"
    presenter.next()
    presenter.set_options(autostart=False)
    presenter.next()
    assert len({a.local_path for a in ctx.store.album_syncs()}) == len(ctx.store.album_syncs()) == 8


@pytest.mark.parametrize("mode", ["2", "3"])
def test_check_tells_my_albums_from_those_shared_with_me_on_both_server_lines(tmp_path: Path, mode: str) -> None:
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    demo = DemoServer(mode=mode, storage_dir=tmp_path / "server")
    demo.start()
    try:
        library = build_demo_library(demo, photos_per_album=1, seed=1)
        owned = {a.name: a.owned for a in check_connection(demo.url, library.download_key).albums}
        # a download-only key cannot ask /users/me who it is: the album lists say it
        assert owned == {"Family 2024": True, "Holidays 2023": True, "Grandma's Garden": True, "Bob's Bikes": False}
        assert {a.name: a.owned for a in check_connection(demo.url, library.bob_key).albums} == {
            "Bob's Bikes": True, "Grandma's Garden": False}
    finally:
        demo.stop()


def test_an_offered_album_goes_where_setup_puts_new_albums_in_a_folder_of_its_own(ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                                    tmp_path: Path) -> None:
    from tray_sync.dialogs.common import offered_album_folder

    ctx.store.update_connection(connected.id, new_album_root=str(tmp_path / "New albums"))
    assert offered_album_folder(ctx.store, connected.id, "Summer: 2025") == tmp_path / "New albums" / "Summer_ 2025"
    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    ctx.store.update_connection(connected.id, new_album_root=str(family.path.parent))
    assert offered_album_folder(ctx.store, connected.id, "family 2024") == family.path.parent / "family 2024 (2)"
    assert offered_album_folder(ctx.store, 999, "Trips") == common.pictures_folder() / "Immich" / "Trips"

    controller = FakeController(AppSnapshot(TrayState.SYNCED))
    presenter = StatusPresenter(FakeStatusView(), controller, now=lambda: NOW,
                                offer_folder=lambda offer: str(offered_album_folder(ctx.store, offer.connection_id,
                                                                                    offer.name)))
    presenter.start()
    offer = OfferedAlbum(connected.id, "new-id", "Family 2024")
    presenter.add_offer(offer)
    assert controller.calls == [("add_offered_album", (offer, str(family.path.parent / "Family 2024 (2)")))]


def test_add_albums_for_a_connection_whose_key_is_gone_asks_for_it(ctx: Context, connected, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   memory_keyring) -> None:
    ctx.secrets.delete(connected.account)
    worker = QueuedWorker()
    presenter, view, _ = make_setup(ctx, tmp_path, worker=worker)
    presenter.start_for_connection(connected.id)
    assert view.busy[-1] == (True, "Reading the saved key…"), "the keyring is read off the Tk thread"
    worker.release()
    assert view.busy[-1] == (False, "")
    text, ok = view.result
    assert not ok and text == ("The API key saved for home is no longer in the keyring: paste it here again "
                               "(Account settings > API keys in Immich) and press Check.")
    assert view.credentials == (connected.server_url, "") and presenter.page == PAGE_CONNECT
    assert view.nav["label"] == "Check"


def test_settings_remove_connection_says_when_the_keyring_keeps_the_key(ctx: Context, connected,  # type: ignore[no-untyped-def]
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from tray_sync.secrets import SecretStoreError

    def locked(account: str) -> None:
        raise SecretStoreError("The keyring refused to delete the API key (locked)")

    monkeypatch.setattr(ctx.secrets, "delete", locked)
    worker = QueuedWorker()
    view, controller = FakeSettingsView(), FakeController()
    presenter = SettingsPresenter(view, ctx, controller, worker)
    presenter.start()
    view.answers.append(True)
    presenter.remove_connection(connected.id)
    assert view.busy[-1] == (True, "Removing home…") and ctx.store.connections(), "keyring: off the Tk thread"
    worker.release()
    assert ctx.store.connections() == [] and controller.names() == ["settings_changed"]
    assert view.messages[-1] == ("Removed 'home', but its API key stays in the keyring: The keyring refused to "
                                 "delete the API key (locked)", True)


def test_settings_moves_an_album_to_another_disk_safely_and_all_or_nothing(ctx: Context, connected, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os
    import shutil

    from tray_sync.dialogs import settings_presenter

    family = next(a for a in ctx.store.album_syncs() if a.album_name == "Family 2024")
    old_root = family.path
    before = {p.relative_to(old_root): p.read_bytes() for p in old_root.rglob("*") if p.is_file()}
    assert len(before) >= 2
    real_rename = os.rename

    def other_disk(source: Any, destination: Any) -> None:  # leaving the old folder crosses a disk boundary
        if Path(source).is_relative_to(old_root) != Path(destination).is_relative_to(old_root):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, destination)

    monkeypatch.setattr(settings_presenter.os, "rename", other_disk)
    # a FAT drive keeps neither nanoseconds nor the exact time: a plain copy stands in for it
    monkeypatch.setattr(settings_presenter.shutil, "copy2", shutil.copyfile)
    usb = tmp_path / "usb" / "Family"

    copies = 0
    real_copy = shutil.copyfile

    def full_after_one(source: Any, destination: Any) -> Any:
        nonlocal copies
        copies += 1
        if copies == 2:
            Path(destination).write_bytes(b"half a photo")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_copy(source, destination)

    monkeypatch.setattr(settings_presenter.shutil, "copy2", full_after_one)
    problems = settings_presenter.move_album(ctx.store, family, usb, move_files=True)
    [problem] = problems
    assert problem.startswith("Family 2024: could not move ")
    assert "(No space left on device); nothing was moved" in problem
    assert ctx.store.album_sync(family.id).path == old_root, "the album keeps its folder"
    assert {p.relative_to(old_root): p.read_bytes() for p in old_root.rglob("*") if p.is_file()} == before
    assert not usb.exists() or not any(p.is_file() for p in usb.rglob("*")), "no half photo left anywhere"

    monkeypatch.setattr(settings_presenter.shutil, "copy2", shutil.copyfile)
    assert settings_presenter.move_album(ctx.store, family, usb, move_files=True) == []
    assert ctx.store.album_sync(family.id).path == usb.resolve()
    assert {p.relative_to(usb): p.read_bytes() for p in usb.rglob("*") if p.is_file()} == before
    assert not old_root.exists()
    report = ctx.engine().sync()
    [result] = [r for r in report.albums if r.album_sync_id == family.id]
    assert (result.downloaded, result.changed_locally) == (0, ()), "moved files are neither fetched again nor 'changed'"


def test_setup_against_an_immich_2_server(ctx: Context, tmp_path: Path, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    demo = DemoServer(mode="2", storage_dir=tmp_path / "server-2")
    demo.start()
    try:
        library = build_demo_library(demo, photos_per_album=1, seed=6)
        presenter, view, controller = make_setup(ctx, tmp_path)
        presenter.run_check(demo.url, library.download_key)
        assert view.result == (f"Connected to Immich 2.7.5 at {demo.url}. This key can see 4 albums: choose them on "
                               "the next page.", True)
        presenter.next()
        rows = {row.album.name: row for row in view.albums}
        assert all(row.size and row.size > 0 for row in rows.values()), "2.x answers /download/info too"
        assert (rows["Bob's Bikes"].owner_text, rows["Grandma's Garden"].owner_text) == ("Shared with me",
                                                                                          "Mine (shared)")
        presenter.select_all_visible(True)
        presenter.next()
        presenter.set_options(autostart=False)
        presenter.next()
        assert view.closed and controller.names() == ["settings_changed", "sync_now"]
        assert ctx.store.connections()[0].server_version == "2.7.5" and len(ctx.store.album_syncs()) == 4
    finally:
        demo.stop()


def test_status_offers_to_review_held_removals_where_they_are() -> None:
    reviewed: list[int] = []
    albums = (album_status(1, "Family"), album_status(2, "Bikes", held_removals=3), album_status(3, "Garden",
                                                                                                  held_removals=1))
    controller = FakeController(AppSnapshot(TrayState.SYNCED, albums=albums[:1]))
    view = FakeStatusView()
    presenter = StatusPresenter(view, controller, now=lambda: NOW, review_removals=reviewed.append)
    presenter.start()
    assert view.review is False, "nothing held: no button"
    controller.publish(AppSnapshot(TrayState.SYNCED, albums=albums))
    assert view.review is True
    presenter.review_removals()
    presenter.select_album("3")
    presenter.review_removals()
    presenter.select_album("1")  # no removals held there: the first album that has some
    presenter.review_removals()
    assert reviewed == [2, 3, 2]


def test_status_headline_for_held_removals_names_the_review_button_not_the_command_line() -> None:
    from tray_sync.app import GUI_CONFIRM_ROUTE, album_notices, classify
    from tray_sync.sync.progress import AlbumResult, SyncReport, command_line_confirm_route, held_removals_note

    engine_note = held_removals_note(3, "Bikes", command_line_confirm_route("a2"))
    report = SyncReport((AlbumResult(album_sync_id=2, album_id="a2", album_name="Bikes", path="/photos/Bikes",
                                     held_removals=3, errors=(engine_note,)),))
    verdict = classify(report, False)
    albums = (album_status(1, "Family"), album_status(2, "Bikes", held_removals=3))
    # Held removals are a notice (like "changed locally"), not an error: the notices list says it and
    # the Review removals… button beside it is the route (GUI_CONFIRM_ROUTE names it).
    assert verdict.state is TrayState.SYNCED and verdict.error is None
    notice = album_notices(albums)
    assert notice == ("3 removals held in Bikes: confirm them in Status…",)
    controller = FakeController(AppSnapshot(verdict.state, error=verdict.error, albums=albums, last_report=report,
                                            last_success_at=NOW - timedelta(minutes=5), notices=notice))
    view = FakeStatusView()
    presenter = StatusPresenter(view, controller, now=lambda: NOW, review_removals=lambda _id: None)
    presenter.start()
    headline, detail, level = view.state
    assert level == "ok" and view.review is True, "the button the notice points at is there"
    assert view.notices[0] == list(notice)
    assert "Review removals" in GUI_CONFIRM_ROUTE
    assert "tray-sync" not in headline + detail and "--confirm-removals" not in detail
