"""The API key never leaks, and the app's own files are private to the user.

The key is hunted for byte by byte in everything the app writes or shows: the database (and
its WAL), the configuration backup, every log file, the output of every command with and
without ``--debug`` (tracebacks included), the diagnostics bundle, and the tray's tooltip and
menu text. The server is made hostile for it: it echoes the key back inside its error
messages, which then travel through exceptions, reports, the database's last error and the
tray's status line.

On POSIX the profile's folders are 0700 and its files 0600 (even after a log rotation), while
synced photos keep the user's umask: they are the user's files.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_helpers import cli, connect
from tests.reliability_helpers import add

pytestmark = pytest.mark.usefixtures("memory_keyring")


@pytest.fixture
def server_mode() -> str:
    return "3"  # the leak paths are the app's, not the server version's

POSIX = os.name == "posix"


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def assert_nowhere(key: str, home: Path, *texts: str) -> None:
    raw = key.encode()
    for path in every_file(home):
        assert raw not in path.read_bytes(), f"the key is in {path}"
    for text in texts:
        assert key not in text, text


def hostile_faults(server, library, key: str) -> None:  # type: ignore[no-untyped-def]
    """The server echoes the key in the messages of its errors: one file refused for good (400),
    one failing once (500, retried: the retry goes to the log), every archive refused."""
    from tray_sync.demo.server import Fault

    first, second = library.assets["Family 2024"][:2]
    server.faults.add(Fault(path=rf"/assets/{first}/original$", status=400, times=None,
                            body={"message": f"storage failed for x-api-key {key}", "statusCode": 400}))
    server.faults.add(Fault(path=rf"/assets/{second}/original$", status=500, times=1,
                            body={"message": f"hiccup for {key}"}))
    server.faults.add(Fault(path=r"/download/archive$", status=400, times=None,
                            body={"message": f"no archive for {key}"}))


def test_key_never_leaks_through_errors_output_logs_database_or_bundle(home, tmp_path, demo_server,  # type: ignore[no-untyped-def]
                                                                       demo_library) -> None:
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    add(home, "Family 2024", tmp_path / "Family")
    hostile_faults(demo_server, demo_library, key)
    outputs = []
    for args in (("sync",), ("sync", "--json"), ("--debug", "sync"), ("status",), ("status", "--json"),
                 ("--debug", "status", "--json")):
        result = cli(home, *args)
        outputs += [result.out, result.err]
    assert any("storage failed for x-api-key" in text for text in outputs), "the hostile message was not seen"

    # connection-level: the key rejected, with the key in the message
    demo_server.faults.clear()
    demo_server.faults.add(Fault(path=r"/albums$", status=401, times=None,
                                 body={"message": f"Invalid API key {key}", "error": "Unauthorized"}))
    for args in (("sync",), ("--debug", "sync"), ("sync", "--json"), ("albums",), ("--debug", "albums")):
        result = cli(home, *args)
        assert result.code != 0
        outputs += [result.out, result.err]
    assert any("rejected the API key" in text for text in outputs)

    bundle = tmp_path / "bundle.zip"
    result = cli(home, "diagnose", "--output", str(bundle))
    assert result.code == 0, result.err
    with zipfile.ZipFile(bundle) as archive:
        members = {name: archive.read(name).decode() for name in archive.namelist()}
    host = f"127.0.0.1:{demo_server.port}"
    for name, text in members.items():
        assert key not in text, name
        assert host not in text and demo_server.url not in text, name
    assert "storage failed" in members["log-tail.txt"] or "rejected" in members["log-tail.txt"]
    outputs += list(members.values())
    assert_nowhere(key, home, *outputs)


def test_key_from_the_environment_never_leaks_in_debug_tracebacks(home, tmp_path, demo_server,  # type: ignore[no-untyped-def]
                                                                   demo_library) -> None:
    """A separate process, the key only in IMMICH_API_KEY, --debug on: tracebacks are redacted too."""
    from tray_sync.demo.server import Fault

    key = demo_library.download_key
    connect(home, demo_server, key)
    add(home, "Family 2024", tmp_path / "Family")
    demo_server.faults.add(Fault(path=r"/albums$", status=403, times=None,
                                 body={"message": f"Missing required permission: album.read ({key})"}))
    env = {**os.environ, "IMMICH_API_KEY": key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    texts = []
    for args in (("--debug", "sync"), ("--debug", "albums"), ("--debug", "status")):
        done = subprocess.run([sys.executable, "-m", "tray_sync", "--home", str(home), *args],
                              capture_output=True, text=True, env=env, timeout=120)
        texts += [done.stdout, done.stderr]
    assert any("album.read" in t for t in texts)
    assert any("Traceback" in t for t in texts), "--debug shows tracebacks (redacted)"
    assert_nowhere(key, home, *texts)


def test_key_never_in_tooltip_menu_or_notification(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """What the tray would show after a sync whose server errors carried the key."""
    from tray_sync.app import AppModel, album_notices, classify
    from tray_sync.context import Context
    from tray_sync.notify import report_notices, summarise
    from tray_sync.paths import AppPaths
    from tray_sync.sync.status import collect_status
    from tray_sync.tray_presenter import build_menu, tooltip

    key = demo_library.download_key
    connect(home, demo_server, key)
    add(home, "Family 2024", tmp_path / "Family")
    hostile_faults(demo_server, demo_library, key)
    ctx = Context(paths=AppPaths.resolve(home))
    try:
        report = ctx.engine().sync()
        verdict = classify(report, cancelled=False)
        model = AppModel()
        model.update(set_up=True, last_report=report, verdict=verdict,
                     albums=collect_status(ctx.store).albums)
        model.note(verdict.error or "", is_error=True)
        snapshot = model.snapshot()
    finally:
        ctx.close()
    now = datetime.now(UTC)
    shown = [tooltip(snapshot, now), verdict.error or "", summarise(report) or "",
             *report_notices(report), *album_notices(snapshot.albums), *(e.text for e in snapshot.activity),
             *(str(getattr(entry, "label", entry)) for entry in build_menu(snapshot, now)),
             *(a.last_error or "" for a in snapshot.albums)]
    assert verdict.error and "storage failed" in verdict.error
    assert_nowhere(key, home, *shown)


# -- file permissions ---------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(not POSIX, reason="platform: POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_profile_is_private_and_photos_follow_the_umask(home, tmp_path, demo_server, demo_library,  # type: ignore[no-untyped-def]
                                                        umask) -> None:
    key = demo_library.download_key
    dest = tmp_path / "Family"
    old = os.umask(umask)
    try:
        connect(home, demo_server, key)
        add(home, "Family 2024", dest)
        env = {**os.environ, "IMMICH_API_KEY": key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
        done = subprocess.run([sys.executable, "-m", "tray_sync", "--home", str(home), "sync"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        bundle = home / "bundle.zip"
        assert cli(home, "diagnose", "--output", str(bundle)).code == 0
    finally:
        os.umask(old)
    assert _mode(home) == 0o700
    assert _mode(home / "logs") == 0o700
    private = [home / "tray-sync.sqlite3", home / "tray-sync.sqlite3.config.json", home / "logs" / "tray-sync.log",
               home / "sync.lock"]
    private += [p for p in (Path(f"{home / 'tray-sync.sqlite3'}-wal"), Path(f"{home / 'tray-sync.sqlite3'}-shm"))
                if p.exists()]
    for path in private:
        assert path.exists(), path
        assert _mode(path) == 0o600, (path, oct(_mode(path)))
    photos = [p for p in dest.rglob("*") if p.is_file()]
    assert photos
    for photo in photos:
        assert _mode(photo) == 0o666 & ~umask, (photo, oct(_mode(photo)))
    assert _mode(dest) == 0o777 & ~umask


@pytest.mark.skipif(not POSIX, reason="platform: POSIX permission bits")
def test_rotated_logs_stay_private(home) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.logs import setup_logging
    from tray_sync.paths import AppPaths

    paths = AppPaths.resolve(home)
    old = os.umask(0o022)
    try:
        setup_logging(paths)
        logger = logging.getLogger("tray_sync.test")
        logger.warning("before rotation")
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
        assert handlers
        handlers[0].doRollover()  # what happens after 2 MB of log
        logger.warning("after rotation")
        handlers[0].flush()
    finally:
        os.umask(old)
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    logs = sorted((home / "logs").glob("tray-sync.log*"))
    assert len(logs) >= 2
    for path in logs:
        assert _mode(path) == 0o600, (path, oct(_mode(path)))


def test_redacting_filter_covers_messages_arguments_and_exceptions(home, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Whatever shape a secret takes on its way into a log record, the file never holds it."""
    from tray_sync.logs import register_secret, setup_logging
    from tray_sync.paths import AppPaths

    secret = "k3y-" + os.urandom(12).hex()
    register_secret(secret)
    paths = AppPaths.resolve(home)
    stream = io.StringIO()
    try:
        setup_logging(paths, debug=True)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.setStream(stream)
        log = logging.getLogger("tray_sync.test")
        log.info("plain %s", secret)
        log.info(f"formatted {secret}")
        log.info("header {'x-api-key': '%s'}", "another-secret-not-registered-1234")
        try:
            raise RuntimeError(f"boom with {secret}")
        except RuntimeError:
            log.exception("failed")
        log.info("dict %s", {"headers": {"x-api-key": secret}})
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    text = paths.log_file.read_text() + stream.getvalue()
    assert "boom with" in text and "plain" in text
    assert secret not in text
    assert "another-secret-not-registered-1234" not in text


@pytest.mark.parametrize("pasted", ["ключ-секрет-1234567890", "abc\x01def-1234567890", "two words 1234567890"])
def test_mis_pasted_key_is_one_clear_line_and_never_echoed(home, demo_server, demo_library, pasted) -> None:  # type: ignore[no-untyped-def]
    """A key with accents, control characters or spaces cannot travel in an HTTP header."""
    result = cli(home, "connect", demo_server.url, "--api-key-stdin", stdin=pasted + "\n")
    assert result.code != 0
    assert result.err.count("\n") == 1 and "Traceback" not in result.err and "unexpected" not in result.err
    assert "copy it again" in result.err, result.err
    assert_nowhere(pasted.strip(), home, result.out, result.err)


def test_crash_report_never_carries_the_key(home, tmp_path, demo_server, demo_library) -> None:  # type: ignore[no-untyped-def]
    """An unhandled exception whose message holds the key (a library quoting a header, say):
    the crash goes to the log with its traceback, redacted, and the tray shows only its type."""
    from tray_sync.app import TrayApp
    from tray_sync.context import Context
    from tray_sync.logs import setup_logging
    from tray_sync.paths import AppPaths
    from tray_sync.tray_presenter import tooltip

    key = demo_library.download_key
    connect(home, demo_server, key)
    paths = AppPaths.resolve(home)
    setup_logging(paths)
    ctx = Context(paths=paths)
    try:
        ctx.key_for(ctx.store.connections()[0])  # the app has read its key, as at every start
        app = TrayApp(ctx)
        app.model.update(set_up=True)
        try:
            raise RuntimeError(f"header x-api-key={key} rejected by a library")
        except RuntimeError as exc:
            app.report_crash("thread sync-worker", exc)
        snapshot = app.model.snapshot()
    finally:
        ctx.close()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    log_text = paths.log_file.read_text()
    assert "Unhandled error in thread sync-worker" in log_text and "Traceback" in log_text
    shown = [tooltip(snapshot, datetime.now(UTC)), snapshot.error or "", *(e.text for e in snapshot.activity)]
    assert snapshot.error and "RuntimeError" in snapshot.error
    assert_nowhere(key, home, log_text, *shown)


LEAKY_BACKEND = '''
from keyring.backend import KeyringBackend


class LeakyKeyring(KeyringBackend):
    """A third-party backend with a careless error message: it quotes the password."""

    priority = 1

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        raise TypeError(f"cannot store {password!r} for {username}")

    def delete_password(self, service, username):
        """It never stores anything (set_password refuses), so there is nothing to delete."""
'''


def test_unexpected_error_quoting_the_key_is_redacted_with_and_without_debug(home, tmp_path, demo_server,  # type: ignore[no-untyped-def]
                                                                            demo_library) -> None:
    """An unexpected exception (not ours) whose message holds the key: the one-line error, the
    --debug traceback and the log all show it redacted."""
    key = demo_library.download_key
    (tmp_path / "leaky").mkdir()
    (tmp_path / "leaky" / "leaky_keyring.py").write_text(LEAKY_BACKEND)
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "leaky_keyring.LeakyKeyring",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "leaky"), os.environ.get("PYTHONPATH", "")])}
    env.pop("IMMICH_API_KEY", None)
    texts = []
    for debug in ((), ("--debug",)):
        done = subprocess.run([sys.executable, "-m", "tray_sync", "--home", str(home), *debug, "connect",
                               demo_server.url, "--api-key-stdin"], input=key + "\n", capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode != 0
        texts += [done.stdout, done.stderr]
    assert "TypeError" in texts[1] and "Traceback" in texts[3] and "cannot store" in texts[3]
    assert_nowhere(key, home, *texts)
