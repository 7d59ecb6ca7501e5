"""`doops exporter` on the sandbox: values, faults turning into metrics, throttling, latency, stop, and
`doops sandbox up --exporter` scraped by the sandbox's Prometheus."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from doops.sandbox import control
from doops.sandbox.pg_util import free_port
from tests.helpers import wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration]

INTERVAL = 2.0
HEALTH = {"component": "apps", "resource": "learnhub-api", "check": "health"}


class Running:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc, self.url = proc, url

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return [(s.name, dict(s.labels), s.value) for fam in text_string_to_metric_families(text)
                for s in fam.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample's value; None when absent or while the exporter does not answer yet."""
        try:
            samples = self.samples()
        except httpx.TransportError:
            return None
        for n, got, v in samples:
            if n == name and all(got.get(k) == want for k, want in labels.items()):
                return v
        return None


@contextlib.contextmanager
def running_exporter(sandbox: Sandbox, tmp_path: Path, *extra: str) -> Iterator[Running]:
    port = free_port()
    log = (tmp_path / "exporter.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "doops", "exporter", "--listen", f"127.0.0.1:{port}",
                             "--interval", f"{INTERVAL:g}s", *extra],
                            env={**os.environ, **sandbox.env}, stdout=log, stderr=subprocess.STDOUT)
    running = Running(proc, f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: running.value("doops_exporter_evaluations_total"), timeout=60,
                 what="the first evaluation")
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def exporter(sandbox: Sandbox, tmp_path: Path) -> Iterator[Running]:
    with running_exporter(sandbox, tmp_path) as running:
        yield running


def test_metrics_have_the_right_values(exporter: Running) -> None:
    assert exporter.value("doops_check_status", **HEALTH) == 0
    assert exporter.value("doops_check_status", component="databases", resource="learnhub-db-ams3",
                          check="replica") == 0
    lag = exporter.value("doops_db_replica_lag_seconds", resource="learnhub-db-ams3", region="ams3")
    assert lag is not None and lag >= 0
    assert exporter.value("doops_db_replica_lag_bytes", resource="learnhub-db-ams3") is not None
    ratio = exporter.value("doops_db_connections_used_ratio", resource="learnhub-db")
    assert ratio is not None and 0 < ratio < 1
    assert exporter.value("doops_uptime_up", check="learnhub-api") == 1
    assert exporter.value("doops_exporter_last_evaluation_success") == 1
    assert (exporter.value("doops_api_requests_total", status="200") or 0) > 0
    assert httpx.get(f"{exporter.url}/healthz", timeout=5).status_code == 200


def test_app_unhealthy_turns_the_health_metric_crit_then_back(sandbox: Sandbox, exporter: Running) -> None:
    sandbox.fault(kind="app-unhealthy", app="learnhub-api")
    wait_for(lambda: exporter.value("doops_check_status", **HEALTH) == 2, timeout=2 * INTERVAL + 10,
             what="apps health 2 within two intervals (plus an evaluation)")
    sandbox.clear()
    wait_for(lambda: exporter.value("doops_check_status", **HEALTH) == 0, timeout=2 * INTERVAL + 10,
             what="apps health back to 0")


def test_a_throttled_api_slows_it_without_failing_evaluations(sandbox: Sandbox, tmp_path: Path) -> None:
    """Honest under 429: evaluations keep finishing (success stays 1), the 429s are counted, and checks the
    API would not answer in time (--timeout 8s per evaluation) say unknown rather than ok."""
    with running_exporter(sandbox, tmp_path, "--timeout", "8s") as exporter:
        sandbox.fault(kind="throttle", per_minute=5)
        try:
            wait_for(lambda: (exporter.value("doops_api_requests_total", status="429") or 0) > 0, timeout=60,
                     what="429 answers counted")
            before = exporter.value("doops_exporter_evaluations_total") or 0
            wait_for(lambda: (exporter.value("doops_exporter_evaluations_total") or 0) >= before + 2, timeout=60,
                     what="evaluations continuing under throttling")
            assert exporter.value("doops_exporter_last_evaluation_success") == 1
            statuses = [v for n, _, v in exporter.samples() if n == "doops_check_status"]
            assert 3 in statuses and 2 not in statuses, statuses  # unknown where unanswered, never a false crit
            assert exporter.proc.poll() is None
        finally:
            sandbox.clear()


def test_no_overlap_under_3s_latency(sandbox: Sandbox, exporter: Running) -> None:
    sandbox.fault(kind="latency", ms=3000)
    start = exporter.value("doops_exporter_evaluations_total") or 0
    t0 = time.monotonic()
    wait_for(lambda: (exporter.value("doops_exporter_evaluation_seconds") or 0) >= 3, timeout=120,
             what="a slow evaluation")
    seen_in_flight: list[float] = []
    durations: list[float] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen_in_flight.append(exporter.value("doops_exporter_evaluations_in_flight") or 0)
        durations.append(exporter.value("doops_exporter_evaluation_seconds") or 0)
        time.sleep(0.2)  # sampling rate of the observation, not a wait for a condition
    done = (exporter.value("doops_exporter_evaluations_total") or 0) - start
    elapsed = time.monotonic() - t0
    assert max(seen_in_flight) <= 1
    slowest_first = min(d for d in durations if d > 0)
    assert done <= elapsed / slowest_first + 1, (done, elapsed, durations)


def test_sigterm_stops_it_within_a_second(exporter: Running) -> None:
    exporter.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    wait_for(lambda: exporter.proc.poll() is not None, timeout=1.0, what="exit within 1 s of SIGTERM",
             interval=0.02)
    assert exporter.proc.returncode == 0
    assert time.monotonic() - t0 < 1.0


def test_sandbox_up_exporter_is_scraped_by_its_prometheus(sandbox_root: Path) -> None:
    from tests.helpers import run_doops

    d = sandbox_root / "with-exporter"
    res = run_doops(["sandbox", "up", "--exporter", "--dir", str(d)])
    try:
        assert res.exit_code == 0, res.stderr
        state = control.running_state(d)
        assert state is not None and state.get("exporter_url"), state
        if not state.get("prometheus_url"):
            pytest.fail("the sandbox runs without Prometheus: install it (scripts/install-system-deps.sh)")
        prom = str(state["prometheus_url"])

        def scraped() -> bool:
            r = httpx.get(f"{prom}/api/v1/query", params={"query": 'up{job="doops"} == 1'}, timeout=5).json()
            return bool(r["data"]["result"])

        wait_for(scraped, timeout=60, what='up{job="doops"} == 1')

        def has_checks() -> bool:
            r = httpx.get(f"{prom}/api/v1/query", params={"query": 'doops_check_status{job="doops"}'},
                          timeout=5).json()
            return bool(r["data"]["result"])

        wait_for(has_checks, timeout=60, what="doops_check_status in Prometheus")
        status = run_doops(["-o", "json", "sandbox", "status", "--dir", str(d)])
        assert any(c["name"] == "exporter" and c["healthy"] for c in status.json["components"]), status.stdout
    finally:
        control.stop(d, keep=False)
