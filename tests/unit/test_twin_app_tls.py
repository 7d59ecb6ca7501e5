"""Live URLs over TLS: an app server's HTTPS port (sandbox CA, TLS 1.2 and 1.3, HSTS) beside its unchanged HTTP
one, what the tls fault changes for new connections, the fault's spec and CLI checks, and the single-instance
scenario."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from doops.sandbox import faults_spec as fs
from doops.sandbox.apps import HSTS, AppServer, Component, TlsSettings
from doops.sandbox.tls import SandboxCA
from tests.helpers import run_doops

ROOT = Path(__file__).resolve().parents[2]
HOST = "learnhub-api-1a2b3.ondigitalocean.app"


@pytest.fixture
def ca(tmp_path: Path) -> SandboxCA:
    return SandboxCA.create(tmp_path / "tls", label="t")


@pytest.fixture
def app(ca: SandboxCA, tmp_path: Path) -> Iterator[AppServer]:
    server = AppServer("learnhub-api", [Component("api", "/api"), Component("ws", "/ws")]).start()
    server.enable_tls(ca, tmp_path / "tls", [HOST])
    yield server
    server.stop()


def _trust(ca: SandboxCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert_path))


def _handshake(url: str, ca: SandboxCA, *, max_version: ssl.TLSVersion | None = None,
               min_version: ssl.TLSVersion | None = None, server_hostname: str = "127.0.0.1") -> tuple[str, dict]:
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    if max_version is not None:
        ctx.maximum_version = max_version
    if min_version is not None:
        ctx.minimum_version = min_version
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
        return str(tls.version()), dict(tls.getpeercert() or {})


def _not_after(cert: dict) -> dt.datetime:
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)


def test_https_port_serves_the_same_answers_with_hsts_and_http_is_unchanged(app: AppServer, ca: SandboxCA) -> None:
    assert app.url.startswith("http://127.0.0.1:") and app.tls_url and app.tls_url.startswith("https://127.0.0.1:")
    assert app.url != app.tls_url.replace("https", "http")
    secure = httpx.get(app.tls_url + "/api/health", verify=_trust(ca))
    plain = httpx.get(app.url + "/api/health")
    assert secure.status_code == plain.status_code == 200 and secure.json() == plain.json() == {"status": "ok"}
    assert secure.headers["strict-transport-security"] == HSTS == "max-age=31536000"
    assert "strict-transport-security" not in plain.headers
    app.set_unhealthy("api")
    assert httpx.get(app.tls_url + "/api/health", verify=_trust(ca)).status_code == 503


def test_certificate_is_the_cas_for_loopback_and_the_ingress_host_tls13_and_12_offered(
        app: AppServer, ca: SandboxCA) -> None:
    assert app.tls_url is not None
    version, cert = _handshake(app.tls_url, ca)
    assert version == "TLSv1.3"
    names = {v for k, v in cert["subjectAltName"]}
    assert {"127.0.0.1", "localhost", HOST} <= names
    assert _handshake(app.tls_url, ca, server_hostname=HOST)[0] == "TLSv1.3"  # the host name verifies too
    assert _handshake(app.tls_url, ca, max_version=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    assert _not_after(cert) - dt.datetime.now(dt.UTC) > dt.timedelta(days=800)


def test_tls_fault_caps_the_version_swaps_the_certificate_and_drops_hsts_then_clear_restores(
        app: AppServer, ca: SandboxCA) -> None:
    assert app.tls_url is not None and app.tls_fault() is None
    with httpx.Client(verify=_trust(ca)) as kept:  # a kept-alive connection is closed by the change
        assert kept.get(app.tls_url + "/").headers.get("strict-transport-security") == HSTS
        app.set_tls(TlsSettings(max_version="1.2", expires_in=5 * 86400, hsts=False))
        assert "strict-transport-security" not in kept.get(app.tls_url + "/").headers
    with pytest.raises(ssl.SSLError):
        _handshake(app.tls_url, ca, min_version=ssl.TLSVersion.TLSv1_3)
    version, cert = _handshake(app.tls_url, ca)  # still verifies: same CA
    assert version == "TLSv1.2"
    left = _not_after(cert) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=4, hours=23) < left <= dt.timedelta(days=5)
    fault = app.tls_fault()
    assert fault is not None and fault["kind"] == "tls" and fault["max_version"] == "1.2" and fault["hsts"] is False
    app.set_tls(TlsSettings())
    version, cert = _handshake(app.tls_url, ca, min_version=ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3" and _not_after(cert) - dt.datetime.now(dt.UTC) > dt.timedelta(days=800)
    assert httpx.get(app.tls_url + "/", verify=_trust(ca)).headers["strict-transport-security"] == HSTS
    assert app.tls_fault() is None


def test_stop_closes_both_ports(ca: SandboxCA, tmp_path: Path) -> None:
    server = AppServer("x", ["web"]).start()
    server.enable_tls(ca, tmp_path / "tls")
    assert server.tls_url is not None
    port = int(server.tls_url.rsplit(":", 1)[1])
    server.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(("make", "message"), [
    (lambda: fs.Tls("learnhub-api"), "a tls fault needs max_version, expires_in or hsts false"),
    (lambda: fs.Tls("learnhub-api", "1.1"), "tls max_version must be one of 1.2, 1.3"),
    (lambda: fs.Tls("learnhub-api", expires_in=0), "tls expires_in must be within 0..825 days"),
    (lambda: TlsSettings(max_version="1.0"), "max_version must be one of"),
])
def test_tls_spec_checks_its_values(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_tls_spec_wire_round_trip() -> None:
    spec = fs.Tls("learnhub-api", "1.2", 432000.0, False)
    wire = {"kind": "tls", "app": "learnhub-api", "max_version": "1.2", "expires_in": 432000.0, "hsts": False}
    assert spec.to_wire() == wire and fs.from_wire(wire) == spec
    with pytest.raises(ValueError, match="hsts must be true or false"):
        fs.from_wire({"kind": "tls", "app": "a", "hsts": "no"})


@pytest.mark.parametrize(("args", "problem"), [
    (["learnhub-api"], "needs at least one of --max-version, --expires-in, --no-hsts"),
    (["learnhub-api", "--max-version", "1.1"], "--max-version"),
    (["learnhub-api", "--expires-in", "soon"], "--expires-in"),
    (["learnhub-api", "--expires-in", "900d"], "at most 825d"),
])
def test_cli_refuses_bad_tls_options_with_exit_4_before_anything_is_sent(
        tmp_path: Path, args: list[str], problem: str) -> None:
    # no sandbox runs in tmp_path: a check that came after the request would fail with "not running" instead
    res = run_doops(["sandbox", "fault", "tls", "--dir", str(tmp_path), *args])
    assert res.exit_code == 4, res.stderr
    assert problem in res.stderr and "not running" not in res.stderr


def test_single_instance_scenario_runs_one_instance_of_the_api_services() -> None:
    from doops.sandbox.api import World, load_scenario

    default = World.from_scenario(load_scenario())
    single = World.from_scenario(load_scenario(ROOT / "tests" / "data" / "scenarios" / "single-instance.yaml"))

    def counts(world: World, name: str) -> dict[str, int]:
        app = world.find_app_by_name(name)
        assert app is not None
        return {s["name"]: s["instance_count"] for s in world.app_json(app)["spec"]["services"]}

    assert counts(default, "learnhub-api") == counts(default, "learnhub-api-ams3") == {"api": 2, "ws": 2}
    assert counts(single, "learnhub-api") == {"api": 1, "ws": 1}
    assert counts(single, "learnhub-api-ams3") == {"api": 2, "ws": 2}
    assert sorted(a.name for a in single.apps.values()) == sorted(a.name for a in default.apps.values())
