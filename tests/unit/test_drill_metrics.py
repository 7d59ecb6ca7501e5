"""doops.drill.metrics: the exact metrics a drill run becomes, and the push (PUT, its path and body, failures
reported with the URL masked), against a tiny HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from doops.drill.metrics import MetricsPushError, check_pushgateway_url, exposition, push_drill
from doops.drill.model import DrillRun, ObjectiveMeasure
from doops.errors import UsageError

STARTED = dt.datetime(2024, 5, 6, 3, 0, 0, tzinfo=dt.UTC)


def make_run(*, success: bool = True, runbook: str = "db-failover") -> DrillRun:
    return DrillRun(
        runbook=runbook, file="runbooks/db-failover.yaml", started_at=STARTED,
        ended_at=STARTED + dt.timedelta(seconds=95.5), outcome="ok" if success else "objective_missed",
        success=success,
        objectives=[ObjectiveMeasure("rto", 120.0, 80.25 if success else 150.0, success),
                    ObjectiveMeasure("rpo", 60.0, None, None),  # not measured: no measured series
                    ObjectiveMeasure("dns_rto", None, 12.0, None)])  # no target: no target series


EXPECTED = """\
# HELP doops_drill_success 1 when the runbook's last drill passed (steps and objectives), else 0
# TYPE doops_drill_success gauge
doops_drill_success{runbook="db-failover"} 1.0
# HELP doops_drill_last_run_timestamp_seconds When the runbook's last drill ended, Unix seconds
# TYPE doops_drill_last_run_timestamp_seconds gauge
doops_drill_last_run_timestamp_seconds{runbook="db-failover"} 1.7149644955e+09
# HELP doops_drill_duration_seconds How long the runbook's last drill ran
# TYPE doops_drill_duration_seconds gauge
doops_drill_duration_seconds{runbook="db-failover"} 95.5
# HELP doops_drill_objective_seconds Each objective's measured value in the last drill
# TYPE doops_drill_objective_seconds gauge
doops_drill_objective_seconds{objective="rto",runbook="db-failover"} 80.25
doops_drill_objective_seconds{objective="dns_rto",runbook="db-failover"} 12.0
# HELP doops_drill_objective_target_seconds Each objective's target in the last drill
# TYPE doops_drill_objective_target_seconds gauge
doops_drill_objective_target_seconds{objective="rto",runbook="db-failover"} 120.0
doops_drill_objective_target_seconds{objective="rpo",runbook="db-failover"} 60.0
"""


def test_exposition_of_a_known_run_is_exact() -> None:
    assert STARTED.timestamp() + 95.5 == 1714964495.5
    assert exposition(make_run()) == EXPECTED


def test_failed_run_pushes_success_zero() -> None:
    text = exposition(make_run(success=False))
    assert 'doops_drill_success{runbook="db-failover"} 0.0' in text
    assert 'doops_drill_objective_seconds{objective="rto",runbook="db-failover"} 150.0' in text


# -- push ------------------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    status: int = 200
    body: bytes = b""
    hang: bool = False
    requests: list[dict[str, object]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def gateway() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            rec.requests.append({"method": self.command, "path": self.path, "body": self.rfile.read(length),
                                 "content-type": self.headers.get("content-type"),
                                 "authorization": self.headers.get("authorization")})
            if rec.hang:
                rec.release.wait(10)
            self.send_response(rec.status)
            self.send_header("content-length", str(len(rec.body)))
            self.end_headers()
            self.wfile.write(rec.body)

        do_PUT = do_POST = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()


def test_push_puts_the_exposition_to_the_runbook_group(gateway: tuple[str, Recorder]) -> None:
    url, rec = gateway
    pushed = push_drill(make_run(), url)
    assert pushed == f"{url}/metrics/job/doops_drill/runbook/db-failover"
    assert len(rec.requests) == 1
    req = rec.requests[0]
    assert req["method"] == "PUT"  # replaces the runbook's group whole (see the module's docstring)
    assert req["path"] == "/metrics/job/doops_drill/runbook/db-failover"
    assert req["body"] == EXPECTED.encode()
    assert str(req["content-type"]).startswith("text/plain; version=0.0.4")


def test_push_accepts_host_port_and_escapes_a_slash_in_the_runbook(gateway: tuple[str, Recorder]) -> None:
    url, rec = gateway
    push_drill(make_run(runbook="dr/restore weekly"), url.removeprefix("http://"))
    encoded = base64.urlsafe_b64encode(b"dr/restore weekly").decode()
    assert rec.requests[0]["path"] == f"/metrics/job/doops_drill/runbook@base64/{encoded}"


def test_refused_push_is_reported_with_the_password_masked(gateway: tuple[str, Recorder]) -> None:
    url, rec = gateway
    rec.status, rec.body = 400, b"pushed metrics are invalid or inconsistent with existing metrics"
    secret_url = url.replace("http://", "http://drills:s3cr3t-pass-word@")
    with pytest.raises(MetricsPushError) as err:
        push_drill(make_run(), secret_url)
    text = f"{err.value.message} {err.value.hint}"
    assert "s3cr3t-pass-word" not in text
    assert "drills:***@127.0.0.1" in err.value.message
    assert "HTTP 400" in err.value.message and "inconsistent with existing metrics" in err.value.message
    assert "/-/ready" in (err.value.hint or "")
    assert err.value.exit_code == 3
    assert str(rec.requests[0]["authorization"]).startswith("Basic ")  # the credentials were sent, not printed


def test_unreachable_gateway_is_a_push_error(gateway: tuple[str, Recorder]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MetricsPushError) as err:
        push_drill(make_run(), f"http://u:hunter22hunter@127.0.0.1:{port}", timeout=2)
    assert f"cannot push drill metrics to http://u:***@127.0.0.1:{port}" in err.value.message
    assert "hunter22hunter" not in f"{err.value.message} {err.value.hint}"


def test_a_gateway_that_never_answers_times_out(gateway: tuple[str, Recorder]) -> None:
    url, rec = gateway
    rec.hang = True
    with pytest.raises(MetricsPushError, match=r"timed out after 0\.3s"):
        push_drill(make_run(), url, timeout=0.3)


@pytest.mark.parametrize(("bad", "problem"), [
    ("", "empty Pushgateway URL"),
    ("ftp://127.0.0.1:9091", "must be http:// or https://"),
    ("http://", "names no host"),
    ("http://127.0.0.1:99999", "invalid port"),
    ("http://127.0.0.1:9091/?token=abc", "query or fragment"),
])
def test_bad_url_is_usage_error_and_nothing_sent(gateway: tuple[str, Recorder], bad: str, problem: str) -> None:
    _url, rec = gateway
    with pytest.raises(UsageError, match=problem) as err:
        push_drill(make_run(), bad)
    assert err.value.exit_code == 4
    assert "abc" not in err.value.message  # a query (a token?) is never echoed
    assert rec.requests == []


def test_check_url_adds_the_scheme_and_keeps_a_route_prefix() -> None:
    assert check_pushgateway_url("127.0.0.1:9091") == "http://127.0.0.1:9091"
    assert check_pushgateway_url(" https://gw.example/prefix ") == "https://gw.example/prefix"


def test_run_without_runbook_name_or_bad_timeout_is_refused(gateway: tuple[str, Recorder]) -> None:
    url, rec = gateway
    with pytest.raises(UsageError, match="without a runbook name"):
        push_drill(make_run(runbook=""), url)
    with pytest.raises(UsageError, match="timeout must be positive"):
        push_drill(make_run(), url, timeout=0)
    assert rec.requests == []
