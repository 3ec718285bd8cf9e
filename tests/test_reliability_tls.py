"""TLS and the network environment, against the built-in server speaking https.

* Verification is on by default: a self-signed certificate is refused with one clear line
  that says what to do, and nothing is saved.
* ``connect --ca-bundle FILE`` trusts a self-signed certificate or a private CA; later syncs
  use it; a different certificate later (a man in the middle) is refused again.
* A certificate for another name is refused even with the right CA.
* Plain http to a host that is not local is warned about; to a local one it is not.
* The environment is honoured (requests' ``trust_env`` is left on): ``HTTP_PROXY`` (a real
  forwarding proxy here, which records what passed through it), ``NO_PROXY`` and
  ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e_helpers import cli
from tests.reliability_helpers import add, assert_converged, expected_checksums, final_files

pytestmark = pytest.mark.usefixtures("memory_keyring")


# -- certificates ------------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def make_cert(folder: Path, stem: str, *, names: tuple[str, ...] = ("localhost", "127.0.0.1"),
              issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
              ca: bool = False) -> tuple[str, str, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = _name(f"tray-sync test {stem}")
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    cert_path, key_path = _write(folder, stem, cert, key)
    return cert_path, key_path, cert, key


@pytest.fixture
def https_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The built-in server with a self-signed certificate (for localhost and 127.0.0.1)."""
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key, _, _ = make_cert(certs, "self-signed")
    server = DemoServer(mode="3", storage_dir=tmp_path / "server-storage", tls=(cert, key))
    server.start()
    library = build_demo_library(server, photos_per_album=3, seed=4)
    try:
        yield server, library, cert, certs
    finally:
        server.stop()


def _connect(home: Path, url: str, key: str, *extra: str):  # type: ignore[no-untyped-def]
    return cli(home, "connect", url, "--name", "home", "--api-key-stdin", *extra, stdin=key + "\n")


def test_self_signed_is_refused_by_default_with_a_clear_message(home, https_server, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    server, library, _, _ = https_server
    result = _connect(home, server.url, library.download_key)
    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    assert "certificate not trusted" in result.err and "CA bundle" in result.err, result.err
    assert not memory_keyring.passwords, "nothing is saved when the check fails"
    status = cli(home, "status", "--json").json()
    assert status["connections"] == []  # type: ignore[index]


def test_ca_bundle_trusts_a_self_signed_certificate_for_connect_and_sync(home, tmp_path, https_server,  # type: ignore[no-untyped-def]
                                                                         monkeypatch) -> None:
    import certifi

    server, library, cert, _ = https_server
    # A system-wide bundle in the environment (common on corporate machines) must not
    # override the certificate the user chose to trust.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    result = _connect(home, server.url, library.download_key, "--ca-bundle", cert)
    assert result.code == 0, result.err
    assert "Warning" not in result.err
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    synced = cli(home, "sync", "--json")
    assert synced.code == 0, synced.err
    assert_converged(home, dest, _checksums(server, library))


def _checksums(server, library) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The album's checksums, asked over https with verification off (the test's own look)."""
    import requests

    from tray_sync.demo.server import DemoServer

    assert isinstance(server, DemoServer)
    session = requests.Session()
    session.verify = False
    import urllib3

    urllib3.disable_warnings()
    album_id = library.albums["Family 2024"]
    items = session.post(f"{server.api_url}/search/metadata", headers={"x-api-key": library.download_key},
                         json={"albumIds": [album_id], "page": 1, "size": 1000, "withExif": True},
                         timeout=10, verify=False).json()["assets"]["items"]
    wanted = {i["id"]: i["checksum"] for i in items}
    from tests.reliability_helpers import sha1_b64

    for item in items:
        if item.get("livePhotoVideoId"):
            wanted[item["livePhotoVideoId"]] = sha1_b64(server.asset_bytes(item["livePhotoVideoId"]))
    return wanted


def test_private_ca_and_a_changed_certificate(home, tmp_path, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    """Trust a private CA; a server later showing a certificate from elsewhere is refused."""
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    certs = tmp_path / "certs"
    certs.mkdir()
    ca_path, _, ca_cert, ca_key = make_cert(certs, "ca", ca=True)
    leaf, leaf_key, _, _ = make_cert(certs, "leaf", issuer=(ca_cert, ca_key))
    storage = tmp_path / "server-storage"
    server = DemoServer(mode="3", storage_dir=storage, tls=(leaf, leaf_key)).start()
    library = build_demo_library(server, photos_per_album=3, seed=4)
    dest = tmp_path / "Family"
    try:
        assert _connect(home, server.url, library.download_key, "--ca-bundle", ca_path).code == 0
        add(home, "Family 2024", dest)
        assert cli(home, "sync").code == 0
        wanted = _checksums(server, library)
        assert_converged(home, dest, wanted)
        port = server.port
    finally:
        server.stop()
    # The same address now answers with a certificate the CA never signed.
    other, other_key, _, _ = make_cert(certs, "impostor")
    impostor = DemoServer(mode="3", storage_dir=tmp_path / "impostor-storage", port=port, tls=(other, other_key))
    impostor.start()
    try:
        build_demo_library(impostor, photos_per_album=3, seed=4)
        before = final_files(dest)
        result = cli(home, "sync", "--json")
        assert result.code == 1
        report = result.json()
        assert "certificate not trusted" in report["errors"][0]  # type: ignore[index]
        assert not [r for r in impostor.requests if "x-api-key" in {k.lower() for k in r.headers}], \
            "the key must not be sent before the certificate is trusted"
        assert final_files(dest) == before
    finally:
        impostor.stop()


def test_certificate_for_another_name_is_refused(home, tmp_path, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    from tray_sync.demo.library import build_demo_library
    from tray_sync.demo.server import DemoServer

    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key, _, _ = make_cert(certs, "wrong-name", names=("photos.example.org",))
    server = DemoServer(mode="3", storage_dir=tmp_path / "storage", tls=(cert, key)).start()
    try:
        library = build_demo_library(server, photos_per_album=1, seed=4)
        result = _connect(home, server.url, library.download_key, "--ca-bundle", cert)
        assert result.code == 1 and result.err.count("\n") == 1, result.err
        assert "secure connection" in result.err and "Traceback" not in result.err
        assert not memory_keyring.passwords
    finally:
        server.stop()


def test_requests_ca_bundle_from_the_environment_is_honoured(home, https_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, library, cert, _ = https_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)
    result = _connect(home, server.url, library.download_key)
    assert result.code == 0, result.err


# -- plain http and proxies --------------------------------------------------------------------


class ForwardingProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: absolute-form requests go to ``target``; each is recorded."""

    target: ClassVar[tuple[str, int]] = ("127.0.0.1", 0)
    seen: ClassVar[list[tuple[str, str]]] = []
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        ForwardingProxy.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(*self.target, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream.request(self.command, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                         headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    do_GET = do_POST = do_HEAD = _forward

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the proxy records what passed through it in ``seen``, not in the test's output."""


@pytest.fixture
def proxy(demo_server):  # type: ignore[no-untyped-def]
    ForwardingProxy.target = ("127.0.0.1", demo_server.port)
    ForwardingProxy.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ForwardingProxy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server_mode() -> str:
    return "3"


def _proxy_env(monkeypatch: pytest.MonkeyPatch, proxy_url: str, no_proxy: str = "") -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
        monkeypatch.setenv("no_proxy", no_proxy)


def test_proxy_from_the_environment_and_plain_http_warning(home, tmp_path, demo_server, demo_library, proxy,  # type: ignore[no-untyped-def]
                                                           monkeypatch, memory_keyring) -> None:
    """A host only the proxy knows (photos.example.test): reachable only if HTTP_PROXY is honoured;
    plain http to it is warned about, because it is not a local address."""
    _proxy_env(monkeypatch, proxy)
    result = _connect(home, "http://photos.example.test", demo_library.download_key)
    assert result.code == 0, result.err
    assert "plain http" in result.err and "unencrypted" in result.err
    seen = ForwardingProxy.seen
    assert seen and all(url.startswith("http://photos.example.test/") for _, url in seen)
    dest = tmp_path / "Family"
    add(home, "Family 2024", dest)
    ForwardingProxy.seen.clear()
    assert cli(home, "sync").code == 0
    assert any(url.endswith("/original") or "download/archive" in url for _, url in ForwardingProxy.seen)
    assert_converged(home, dest, expected_checksums(demo_server, demo_library.download_key,
                                                    demo_library.albums["Family 2024"]))


def test_no_proxy_and_no_warning_for_a_local_address(home, demo_server, demo_library, proxy, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _proxy_env(monkeypatch, proxy, no_proxy="127.0.0.1,localhost")
    result = _connect(home, demo_server.url, demo_library.download_key)
    assert result.code == 0, result.err
    assert "plain http" not in result.err
    assert ForwardingProxy.seen == [], "NO_PROXY must be honoured"


def test_the_client_session_keeps_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables are read once per client (requests' per-request scan is off), with their meaning:
    a proxy unless NO_PROXY names the host, the CA bundle unless the connection has its own."""
    from tray_sync.sync.client import ImmichClient

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    def client_for(url: str, **options: object) -> tuple[dict[str, str], object]:
        client = ImmichClient(url, "k" * 20, **options)  # type: ignore[arg-type]
        try:
            return dict(client.session.proxies), client.session.verify
        finally:
            client.close()

    assert client_for("https://photos.example.org/api") == ({}, True)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.net:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corporate-ca.pem"))
    proxies, verify = client_for("https://photos.example.org/api")
    assert proxies.get("https") == "http://proxy.example.net:3128"
    assert verify == str(tmp_path / "corporate-ca.pem")
    own_ca = str(tmp_path / "this-server.pem")
    assert client_for("https://photos.example.org/api", verify=own_ca)[1] == own_ca  # connect --ca-bundle wins
    monkeypatch.setenv("NO_PROXY", "example.org")
    assert client_for("https://photos.example.org/api")[0] == {}
