"""`doops exporter` on fake time: snapshot to exposition text, no overlap, budget stretching, health, stop."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.utils import floatToGoString as go

from doops.drill.model import DrillRun, ObjectiveMeasure
from doops.exporter_http import ExporterServer, parse_listen, serve, wsgi_app
from doops.ops.exporter import (
    ApiStatusCounter,
    Exporter,
    ExporterOptions,
    Waiter,
    stretched_interval,
)
from doops.ops.status.model import CheckResult, Status, StatusReport
from tests.helpers import CANARY_TOKEN, run_doops, wait_for

T0 = 1_800_000_000.0


class FakeWaiter(Waiter):
    """Time moves only when the loop waits or an evaluation says it took long."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return T0 + self.t

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.t += max(0.0, seconds)
        return self.stop.is_set()


def checks() -> list[CheckResult]:
    return [
        CheckResult("databases", "learnhub-db-ams3", "replica", Status.OK, "lag 0 bytes",
                    {"region": "ams3", "lag_bytes": 128, "lag_seconds": 0.5, "in_recovery": True}, 12.0),
        CheckResult("databases", "learnhub-db", "connections", Status.WARN, "80%", {"ratio": 0.8}, 3.0),
        CheckResult("apps", "learnhub-api", "health", Status.CRIT, "no ready replica", {}, 250.0),
        CheckResult("prometheus", "*", "configured", Status.SKIPPED, "not configured"),
        CheckResult("spaces", "learnhub-media", "replication", Status.CRIT, "2 missing",
                    {"missing": ["a", "b"], "stale": [], "in_flight": 1, "oldest_at_risk_seconds": 42.0}),
        CheckResult("cdn", "o.example/static/app.js", "cache-control", Status.WARN, "max-age 60", {}),
        CheckResult("cdn", "o.example/api/x.json", "cache-control", Status.OK, "ok", {}),
        CheckResult("cdn", "o.example/gone", "cache-control", Status.UNKNOWN, "timeout", {}),
        CheckResult("monitoring", "uptime:learnhub-api", "uptime", Status.CRIT, "DOWN in ams3",
                    {"regions": {"us_east": "UP", "ams3": "DOWN"}}),
    ]


def report(requests: int = 10, got: list[CheckResult] | None = None) -> StatusReport:
    got = checks() if got is None else got
    return StatusReport(Status.CRIT, datetime.now(UTC), got, requests, 1.0)


def exposition(ex: Exporter) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ex)
    return generate_latest(registry).decode()


def make(interval: float = 60.0, took: float = 0.0, requests: int = 10, share: float = 0.5,
         fail: bool = False) -> tuple[Exporter, FakeWaiter, list[float]]:
    waiter = FakeWaiter()
    starts: list[float] = []

    def evaluate() -> StatusReport:
        starts.append(waiter.t)
        waiter.t += took
        if fail:
            raise RuntimeError("config vanished")
        return report(requests)

    ex = Exporter(ExporterOptions(components=[], interval=interval, budget_share=share), evaluate, waiter=waiter)
    return ex, waiter, starts


def test_snapshot_becomes_exposition_text_with_exact_names_labels_and_values() -> None:
    ex, _, _ = make(took=2.0)
    ex.evaluate_once()
    text = exposition(ex)
    expected = [
        'doops_check_status{check="replica",component="databases",resource="learnhub-db-ams3"} 0.0',
        'doops_check_status{check="connections",component="databases",resource="learnhub-db"} 1.0',
        'doops_check_status{check="health",component="apps",resource="learnhub-api"} 2.0',
        'doops_check_status{check="cache-control",component="cdn",resource="o.example/gone"} 3.0',
        'doops_check_duration_seconds{check="health",component="apps",resource="learnhub-api"} 0.25',
        f'doops_check_last_run_timestamp_seconds{{check="health",component="apps",resource="learnhub-api"}} '
        f'{go(T0 + 2.0)}',
        'doops_db_replica_lag_seconds{region="ams3",resource="learnhub-db-ams3"} 0.5',
        'doops_db_replica_lag_bytes{region="ams3",resource="learnhub-db-ams3"} 128.0',
        'doops_db_connections_used_ratio{resource="learnhub-db"} 0.8',
        'doops_spaces_replication_objects_at_risk{resource="learnhub-media"} 3.0',
        'doops_spaces_replication_oldest_at_risk_seconds{resource="learnhub-media"} 42.0',
        'doops_cdn_cache_policy_ok{resource="o.example/static/app.js"} 0.0',
        'doops_cdn_cache_policy_ok{resource="o.example/api/x.json"} 1.0',
        'doops_uptime_up{check="learnhub-api",region="ams3"} 0.0',
        'doops_uptime_up{check="learnhub-api",region="us_east"} 1.0',
        "doops_exporter_evaluations_total 1.0",
        "doops_exporter_evaluation_seconds 2.0",
        "doops_exporter_evaluations_in_flight 0.0",
        "doops_exporter_last_evaluation_success 1.0",
        "doops_exporter_api_requests_per_evaluation 10.0",
    ]
    lines = text.splitlines()
    for line in expected:
        assert line in lines, f"{line} missing from:\n{text}"
    # skipped is not exported; an unknown CDN check has no policy verdict
    assert 'component="prometheus"' not in text
    assert 'doops_cdn_cache_policy_ok{resource="o.example/gone"}' not in text


def test_budget_used_ratio_is_requests_per_minute_over_the_budget() -> None:
    ex, _, _ = make(interval=60.0, requests=25)
    ex.evaluate_once()
    lines = exposition(ex).splitlines()
    assert "doops_api_budget_used_ratio 0.1" in lines  # 25 per 60 s of 250/min
    assert "doops_api_budget_share_ratio 0.5" in lines


def test_drill_results_use_the_names_drill_run_pushes() -> None:
    run = DrillRun("db-failover", "runbooks/db.yaml", datetime(2026, 1, 1, tzinfo=UTC),
                   datetime(2026, 1, 1, 0, 2, tzinfo=UTC), "ok", True,
                   [ObjectiveMeasure("rto", 120.0, 95.0, True), ObjectiveMeasure("rpo", None, 3.0, None)])
    waiter = FakeWaiter()
    ex = Exporter(ExporterOptions(components=[]), lambda: report(), drills=lambda: [run], waiter=waiter)
    ex.evaluate_once()
    lines = exposition(ex).splitlines()
    assert 'doops_drill_success{runbook="db-failover"} 1.0' in lines
    assert 'doops_drill_duration_seconds{runbook="db-failover"} 120.0' in lines
    assert f'doops_drill_last_run_timestamp_seconds{{runbook="db-failover"}} {go(run.ended_at.timestamp())}' in lines
    assert 'doops_drill_objective_seconds{objective="rto",runbook="db-failover"} 95.0' in lines
    assert 'doops_drill_objective_target_seconds{objective="rto",runbook="db-failover"} 120.0' in lines
    assert 'doops_drill_objective_target_seconds{objective="rpo",runbook="db-failover"}' not in "\n".join(lines)


def test_a_broken_history_store_keeps_the_checks() -> None:
    def broken() -> list[DrillRun]:
        raise OSError("disk gone")

    ex = Exporter(ExporterOptions(components=[]), lambda: report(), drills=broken, waiter=FakeWaiter())
    ex.evaluate_once()
    assert ex.last_success is True and "disk gone" in ex.drill_error
    assert "doops_check_status{" in exposition(ex)


def test_a_slow_evaluation_delays_the_next_and_never_overlaps() -> None:
    ex, waiter, starts = make(interval=60.0, took=90.0)
    ex.run(max_evaluations=3)
    assert starts == [0.0, 90.0, 180.0]  # each right after the previous ended: never two at once
    assert waiter.waits == [0.0, 0.0]
    assert ex.max_in_flight == 1
    lines = exposition(ex).splitlines()
    # last_run shows the age: the last evaluation ended at 270 s, not at 3 x 60 s
    assert (f'doops_check_last_run_timestamp_seconds{{check="health",component="apps",resource="learnhub-api"}} '
            f"{go(T0 + 270.0)}") in lines


def test_a_fast_evaluation_waits_out_the_rest_of_the_interval() -> None:
    ex, waiter, starts = make(interval=60.0, took=5.0, requests=10)
    ex.run(max_evaluations=3)
    assert starts == [0.0, 60.0, 120.0]
    assert waiter.waits == [55.0, 55.0]


def test_interval_is_stretched_to_keep_within_the_budget_share() -> None:
    assert stretched_interval(60.0, 10, 0.5) == 60.0
    assert stretched_interval(60.0, 300, 0.5) == pytest.approx(144.0)  # 300 / (0.5 * 250 / 60)
    assert stretched_interval(60.0, 300, 0.25) == pytest.approx(288.0)
    ex, _, starts = make(interval=60.0, took=4.0, requests=300)
    ex.run(max_evaluations=2)
    assert starts == [0.0, pytest.approx(144.0)]
    assert "doops_exporter_interval_seconds 144.0" in exposition(ex).splitlines()
    assert "doops_api_budget_used_ratio 0.5" in exposition(ex).splitlines()


def test_a_failed_evaluation_keeps_the_last_snapshot_and_says_so() -> None:
    ex, _, _ = make()
    ex.evaluate_once()
    ex._evaluate = lambda: (_ for _ in ()).throw(RuntimeError("boom"))
    ex.evaluate_once()
    lines = exposition(ex).splitlines()
    assert "doops_exporter_last_evaluation_success 0.0" in lines
    assert "doops_exporter_evaluations_total 2.0" in lines
    assert "doops_exporter_evaluation_failures_total 1.0" in lines
    assert 'doops_check_status{check="health",component="apps",resource="learnhub-api"} 2.0' in lines


def _get(app: object, path: str) -> tuple[str, bytes]:
    got: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"] = status

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""},  # type: ignore[operator]
                        start_response))
    return got["status"], body


def test_healthz_is_200_within_three_intervals_of_the_last_evaluation_else_503() -> None:
    ex, waiter, _ = make(interval=60.0)
    app = wsgi_app(ex)
    assert _get(app, "/healthz")[0].startswith("200")  # starting: within three intervals of the start
    waiter.t = 181.0
    status, body = _get(app, "/healthz")
    assert status.startswith("503") and b"no evaluation finished yet" in body
    ex.evaluate_once()
    assert _get(app, "/healthz")[0].startswith("200")
    waiter.t += 180.0
    assert _get(app, "/healthz")[0].startswith("200")
    waiter.t += 1.0
    status, body = _get(app, "/healthz")
    assert status.startswith("503") and b"181s ago" in body
    assert _get(app, "/nope")[0].startswith("404")


def test_a_scrape_never_evaluates() -> None:
    calls: list[int] = []

    def evaluate() -> StatusReport:
        calls.append(1)
        return report()

    ex = Exporter(ExporterOptions(components=[]), evaluate, waiter=FakeWaiter())
    ex.evaluate_once()
    server = ExporterServer(ex, "127.0.0.1", 0).start()
    try:
        for _ in range(3):
            resp = httpx.get(f"{server.url}/metrics", timeout=5)
            assert resp.status_code == 200 and "doops_check_status{" in resp.text
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()
    assert len(calls) == 1


def test_sigterm_stops_serving_within_a_second_even_mid_evaluation() -> None:
    from doops.cli.exporter import _install_stop, _restore

    entered, release = threading.Event(), threading.Event()

    def evaluate() -> StatusReport:
        entered.set()
        release.wait(30)  # an API call that hangs
        return report()

    ex = Exporter(ExporterOptions(components=[], interval=1.0), evaluate)
    server = ExporterServer(ex, "127.0.0.1", 0)
    port = server.port
    previous = _install_stop(ex.stop)
    thread = threading.Thread(target=serve, args=(ex, server), daemon=True)
    try:
        thread.start()
        wait_for(entered.is_set, timeout=10, what="the evaluation to start")
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 1.0
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), "serve() still running a second after SIGTERM"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "still listening after the stop"
    finally:
        _restore(previous)
        release.set()


@pytest.mark.parametrize("value, problem", [
    ("nohost", "is not HOST:PORT"), ("example.com:9877", "is not an IP address"),
    ("127.0.0.1:0", "not within 1-65535"), ("127.0.0.1:http", "not within 1-65535"),
])
def test_parse_listen_rejects_bad_addresses(value: str, problem: str) -> None:
    from doops.errors import UsageError

    with pytest.raises(UsageError, match=problem):
        parse_listen(value)
    assert parse_listen("[::1]:9877") == ("::1", 9877)


@pytest.mark.parametrize("args, problem", [
    (["--listen", "localhost"], "is not HOST:PORT"),
    (["--interval", "0.5s"], "shorter than 1s"),
    (["--budget-share", "1.5"], "not within (0, 1]"),
    (["nosuchcomponent"], "unknown component"),
])
def test_bad_input_is_exit_4_before_any_request(args: list[str], problem: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().respond(500)
        res = run_doops(["exporter", *args], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4, res.stderr
    assert problem in res.stderr and res.stderr.count("\n") == 1
    assert catch_all.call_count == 0


def test_a_taken_port_is_exit_4_naming_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with respx.mock(assert_all_called=False) as router:
            catch_all = router.route().respond(500)
            res = run_doops(["exporter", "--listen", f"127.0.0.1:{port}"],
                            env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4, res.stderr
    assert f"127.0.0.1:{port}: the address is in use" in res.stderr
    assert catch_all.call_count == 0 and res.stdout == ""


def test_api_answers_are_counted_by_status() -> None:
    from doops.platform import Platform

    platform = Platform(access_token=CANARY_TOKEN, api_url="https://api.digitalocean.com")
    counter = ApiStatusCounter()
    assert counter.install(platform)
    with respx.mock() as router:
        router.get("https://api.digitalocean.com/v2/account").mock(side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}, json={"id": "too_many_requests", "message": "slow"}),
            httpx.Response(200, json={"account": {}}),
        ])
        platform.do.http.send("GET", "https://api.digitalocean.com/v2/account", {}, None)
    platform.close()
    assert counter.items() == [("200", 1), ("429", 1)]
    ex = Exporter(ExporterOptions(components=[]), lambda: report(), waiter=FakeWaiter(), api_statuses=counter)
    lines = exposition(ex).splitlines()
    assert 'doops_api_requests_total{status="429"} 1.0' in lines
    assert 'doops_api_requests_total{status="200"} 1.0' in lines
