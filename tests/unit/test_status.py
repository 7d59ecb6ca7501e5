"""`doops status` edge cases with a mocked API: failures stay local, exit codes follow the worst check."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from doops.cli.watch import min_interval
from doops.ops.status.model import Status, worst
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"


def test_worst_order() -> None:
    assert worst([Status.OK, Status.WARN]) is Status.WARN
    assert worst([Status.WARN, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.CRIT]) is Status.CRIT
    assert worst([]) is Status.OK


def test_watch_interval_keeps_half_the_budget() -> None:
    assert min_interval(15, 250) == 60 * 15 / 125
    assert min_interval(250, 250) == 120


def _cfg(tmp_path: Path) -> str:
    p = tmp_path / "doops.yaml"
    p.write_text("functions:\n  - namespace: learnhub-jobs\n")
    return str(p)


def test_functions_checks_and_a_5xx_stays_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.ops.seam import SystemClock

    slept: list[float] = []  # the retries' backoff runs on the platform's clock: recorded, not waited out
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds, cancel=None: slept.append(seconds))
    now = "2099-01-01T00:00:00Z"
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/functions/namespaces").respond(200, json={"namespaces": [
            {"namespace": "fn-1", "label": "learnhub-jobs", "region": "nyc1"}]})
        router.get("/v2/functions/namespaces/fn-1/triggers").respond(200, json={"triggers": [
            {"name": "off", "type": "SCHEDULED", "is_enabled": False, "scheduled_details": {"cron": "* * * * *"}},
            {"name": "stale", "type": "SCHEDULED", "is_enabled": True,
             "scheduled_details": {"cron": "*/15 * * * *"}, "scheduled_runs": {"last_run_at": "2020-01-01T00:00:00Z"}},
            {"name": "fresh", "type": "SCHEDULED", "is_enabled": True,
             "scheduled_details": {"cron": "0 0 1 1 *"}, "scheduled_runs": {"last_run_at": now}},
        ]})
        router.get("/v2/cdn/endpoints").mock(side_effect=httpx.ConnectError("refused"))
        res = run_doops(["--config", _cfg(tmp_path), "status", "-o", "json", "functions", "cdn"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    checks = {(c["component"], c["resource"]): c for c in res.json["checks"]}
    assert checks[("functions", "learnhub-jobs/off")]["status"] == "warn"
    assert checks[("functions", "learnhub-jobs/stale")]["status"] == "crit"
    assert "missed" in checks[("functions", "learnhub-jobs/stale")]["summary"]
    assert checks[("cdn", "*")]["status"] == "unknown"
    assert res.json["overall"] == "crit" and res.exit_code == 2
    assert slept and all(s > 0 for s in slept)  # the connect failure was retried with backoff


def test_missing_configured_namespace_is_crit(tmp_path: Path) -> None:
    with respx.mock(base_url=API) as router:
        router.get("/v2/functions/namespaces").respond(200, json={"namespaces": []})
        res = run_doops(["--config", _cfg(tmp_path), "status", "-o", "json", "functions"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.json["checks"][0]["status"] == "crit" and "learnhub-jobs" in res.json["checks"][0]["summary"]


def test_no_token_makes_api_checks_unknown() -> None:
    res = run_doops(["status", "-o", "json", "cache"])
    assert res.exit_code == 3
    assert res.json["checks"][0]["status"] == "unknown"
    assert "no DigitalOcean token" in res.json["checks"][0]["summary"]


def test_apps_list_is_paginated_once_and_health_per_app(tmp_path: Path) -> None:
    apps = [{"id": f"a{i}", "spec": {"name": f"app{i}", "alerts": [{"rule": "DEPLOYMENT_FAILED"}]},
             "active_deployment": {"id": f"d{i}", "phase": "ACTIVE", "created_at": "2026-01-01T00:00:00Z"}}
            for i in range(3)]
    with respx.mock(base_url=API) as router:
        lst = router.get("/v2/apps").respond(200, json={"apps": apps, "links": {}, "meta": {"total": 3}})
        health = router.get(url__regex=r"/v2/apps/a\d/health").respond(200, json={"app_health": {"components": [
            {"name": "api", "state": "HEALTHY", "replicas_desired": 2, "replicas_ready": 1}]}})
        res = run_doops(["status", "-o", "json", "apps"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert lst.call_count == 1 and health.call_count == 3
    by = {(c["resource"], c["check"]): c["status"] for c in res.json["checks"]}
    assert by[("app0", "health")] == "warn" and by[("app0", "deployment")] == "ok"
    assert by[("app0", "live-url")] == "warn"  # no live URL
    assert res.json["api_requests"] == 4


def test_trigger_lateness_around_the_fire_time() -> None:
    """Just after a fire time (within the grace) the previous run still counts; after it, the new one."""
    from datetime import UTC, datetime

    from doops.clients.models import Trigger
    from doops.ops.status.checks_api import _trigger
    from doops.ops.status.engine import Runner

    class R:
        def __init__(self, now: datetime) -> None:
            self.now = now

    def at(now: datetime) -> Runner:
        return R(now)  # type: ignore[return-value]  # a stand-in Runner: _trigger reads only its .now

    t = Trigger("t", "SCHEDULED", True, "*/15 * * * *", datetime(2026, 1, 1, 12, 0, 3, tzinfo=UTC))
    assert _trigger(at(datetime(2026, 1, 1, 12, 15, 30, tzinfo=UTC)), t)[0].value == "ok"  # 12:15 run not due yet
    assert _trigger(at(datetime(2026, 1, 1, 12, 18, 0, tzinfo=UTC)), t)[0].value == "warn"  # 12:15 missed
    assert _trigger(at(datetime(2026, 1, 1, 12, 33, 0, tzinfo=UTC)), t)[0].value == "crit"  # 12:15, 12:30 missed
    stale = Trigger("s", "SCHEDULED", True, "*/15 * * * *", datetime(2020, 1, 1, tzinfo=UTC))
    assert _trigger(at(datetime(2026, 1, 1, 12, 15, 30, tzinfo=UTC)), stale)[0].value == "crit"


def test_missing_explicit_config_is_exit_4(tmp_path: Path) -> None:
    res = run_doops(["--config", str(tmp_path / "nope.yaml"), "status"],
                    env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4 and "nope.yaml" in res.stderr and res.stdout == ""


def test_deployment_error_and_stuck() -> None:
    base = {"spec": {"name": "x", "alerts": [{"rule": "DEPLOYMENT_FAILED"}]},
            "active_deployment": {"id": "act1", "phase": "ACTIVE", "created_at": "2026-01-01T00:00:00Z"}}
    apps = [
        {**base, "id": "a1", "spec": {"name": "failed-now"},
         "in_progress_deployment": {"id": "bad1", "phase": "ERROR", "created_at": "2026-01-02T00:00:00Z"}},
        {**base, "id": "a2", "spec": {"name": "stuck"},
         "in_progress_deployment": {"id": "slow1", "phase": "BUILDING", "created_at": "2020-01-01T00:00:00Z"}},
        {**base, "id": "a3", "spec": {"name": "failed-before"}, "last_deployment_created_at": "2026-01-03T00:00:00Z"},
    ]
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/apps").respond(200, json={"apps": apps, "links": {}, "meta": {"total": 3}})
        router.get(url__regex=r"/v2/apps/a\d/health").respond(200, json={"app_health": {"components": []}})
        latest = router.get("/v2/apps/a3/deployments").respond(200, json={"deployments": [
            {"id": "bad3", "phase": "ERROR", "created_at": "2026-01-03T00:00:00Z"}], "links": {}, "meta": {"total": 1}})
        res = run_doops(["status", "-o", "json", "apps"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    by = {(c["resource"], c["check"]): c for c in res.json["checks"]}
    assert by[("failed-now", "deployment")]["status"] == "crit"
    stuck = by[("stuck", "deployment")]
    assert stuck["status"] == "warn" and "stuck in BUILDING" in stuck["summary"]
    assert by[("failed-before", "deployment")]["status"] == "crit"
    assert latest.call_count == 1  # the extra call only for the app whose newest deployment is not active
    assert res.exit_code == 2
