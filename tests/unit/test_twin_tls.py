"""TLS the sandbox way: one CA signing every server certificate; doops verifying servers against the API's CA by
default; the metrics endpoint's basic auth and exposition."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from doops.clients.models import Connection, DatabaseCluster
from doops.config import DatabaseConfig, parse_config
from doops.errors import ApiNotFound, ConfigError
from doops.ops.dbtarget import db_target
from doops.sandbox.tls import SandboxCA


def test_ca_signs_server_certificates_for_loopback(tmp_path: Path) -> None:
    from cryptography import x509

    ca = SandboxCA.create(tmp_path / "tls", label="t")
    issued = ca.issue(tmp_path / "srv.crt", tmp_path / "srv.key")
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    root = x509.load_pem_x509_certificate(ca.pem.encode())
    cert.verify_directly_issued_by(root)  # raises when not signed by the CA
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    for key in (issued.key, tmp_path / "tls" / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = SandboxCA.load(tmp_path / "tls")
    assert again.pem == ca.pem


def test_a_python_client_verifies_a_server_certificate_against_the_ca(tmp_path: Path) -> None:
    """The chain an HTTPS client checks: CA -> server certificate for 127.0.0.1 (hostname checked)."""
    import socket
    import ssl
    import threading

    ca = SandboxCA.create(tmp_path / "tls")
    issued = ca.issue(tmp_path / "srv.crt", tmp_path / "srv.key")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(issued.cert), str(issued.key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.recv(2) == b"ok"
    thread.join(5)
    listener.close()


# -- doops: verify-full whenever the API gives a CA -----------------------------------------------------------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _app(cfg: DatabaseConfig | None, ca: Any) -> Any:
    calls: list[str] = []

    def database_ca(cid: str) -> str:
        calls.append(cid)
        return str(ca(cid)) if callable(ca) else str(ca)

    return SimpleNamespace(config=SimpleNamespace(database=lambda name: cfg),
                           do=SimpleNamespace(database_ca=database_ca), calls=calls)


CLUSTER = DatabaseCluster(id="c-1", name="learnhub-db", engine="pg", version="15", region="nyc3", status="online",
                          num_nodes=1)
CONN = Connection(host="127.0.0.1", port=5432, user="doadmin", database="defaultdb", password="pw")


def test_default_sslmode_is_auto() -> None:
    assert DatabaseConfig(name="x").sslmode == "auto"
    cfg = parse_config("databases:\n  clusters:\n    - name: learnhub-db\n")
    assert cfg.databases.clusters[0].sslmode == "auto"


def test_auto_verifies_full_with_the_apis_ca() -> None:
    """Before: the default was require, so doops never checked which server it reached."""
    app = _app(None, PEM)
    target = db_target(app, CLUSTER, CONN)
    assert (target.sslmode, target.ca_pem) == ("verify-full", PEM)
    assert app.calls == ["c-1"] and "sslmode=verify-full" in target.masked()


def test_auto_without_a_ca_requires_tls() -> None:
    def missing(cid: str) -> str:
        raise ApiNotFound(404, "not_found", "no CA", None)

    for ca in (missing, ""):
        target = db_target(_app(DatabaseConfig(name="learnhub-db"), ca), CLUSTER, CONN)
        assert (target.sslmode, target.ca_pem) == ("require", None)


def test_an_explicit_sslmode_wins() -> None:
    app = _app(DatabaseConfig(name="learnhub-db", sslmode="require"), PEM)
    assert db_target(app, CLUSTER, CONN).sslmode == "require" and app.calls == []
    app = _app(DatabaseConfig(name="learnhub-db", sslmode="verify-ca"), PEM)
    target = db_target(app, CLUSTER, CONN)
    assert (target.sslmode, target.ca_pem) == ("verify-ca", PEM)


def test_an_unknown_sslmode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sslmode"):
        db_target(_app(DatabaseConfig(name="learnhub-db", sslmode="strict"), PEM), CLUSTER, CONN)


# -- the metrics endpoint's credentials and text ----------------------------------------------------------------------


def test_metrics_credentials_check_basic_auth() -> None:
    from doops.sandbox.db_metrics import MetricsCredentials

    creds = MetricsCredentials("scraper", "s3cret")

    def header(user: str, pw: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    assert creds.check(header("scraper", "s3cret"))
    assert not creds.check(header("scraper", "wrong")) and not creds.check(header("other", "s3cret"))
    assert not creds.check(None) and not creds.check("Bearer x") and not creds.check("Basic !!notbase64")
    creds.set("new", "pw2")
    assert creds.check(header("new", "pw2")) and not creds.check(header("scraper", "s3cret"))
    with pytest.raises(ValueError):
        creds.set("", "x")


def test_metrics_text_escapes_labels_and_skips_unknown_values() -> None:
    from doops.sandbox.db_metrics import _Exposition

    out = _Exposition('a"b')
    out.family("pg_x", "gauge", "help", [({"datname": "new\nline"}, 1), ({"datname": "none"}, None)])
    assert out.text() == ('# HELP pg_x help\n# TYPE pg_x gauge\n'
                          'pg_x{cluster="a\\"b",datname="new\\nline"} 1\n')


def test_metrics_say_pg_up_0_when_the_primary_does_not_answer(tmp_path: Path) -> None:
    """Served over HTTPS with the CA, behind basic auth; a dead primary is ``pg_up 0``, not an error page."""
    import ssl

    import httpx

    from doops.sandbox.db_metrics import MetricsCredentials, PgMetricsEndpoint

    class NoPrimary:
        def primary(self, cluster: str) -> Any:
            raise KeyError(cluster)

    ca = SandboxCA.create(tmp_path / "tls")
    issued = ca.issue(tmp_path / "m.crt", tmp_path / "m.key")
    endpoint = PgMetricsEndpoint(NoPrimary(), "learnhub-db", MetricsCredentials("u", "p"),  # type: ignore[arg-type]
                                 issued.cert, issued.key).start()
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca.cert_path)), timeout=10) as http:
            assert http.get(endpoint.url).status_code == 401
            r = http.get(endpoint.url, auth=("u", "p"))
        assert r.status_code == 200 and 'pg_up{cluster="learnhub-db"} 0' in r.text
    finally:
        endpoint.stop()
