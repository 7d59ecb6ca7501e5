"""`doops status` end to end against the sandbox: all ok, then each fault turns the right check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from doops.ops.status.model import COMPONENTS
from tests.helpers import Result, run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]


def status(sb: Sandbox, *args: str) -> Result:
    res = run_doops(["status", "-o", "json", *args], env=sb.env, secrets=(sb.token, sb.state["spaces"]["secret_key"]))
    assert "Traceback" not in res.stderr
    return res


def upload_unreplicated(sb: Sandbox, prefix: str) -> str:
    """Pause replication and upload a new object to learnhub-media: the replica lacks it. Returns its key."""
    sb.fault(kind="spaces-replication", action="pause")
    s3 = boto3.client("s3", endpoint_url=sb.state["spaces"]["endpoint_url"], region_name="nyc3",
                      aws_access_key_id=sb.state["spaces"]["access_key"],
                      aws_secret_access_key=sb.state["spaces"]["secret_key"])
    key = f"uploads/{prefix}-{uuid.uuid4().hex}.bin"
    s3.put_object(Bucket="learnhub-media", Key=key, Body=b"lesson")
    return key


def not_ok(res: Result) -> list[tuple[str, str, str, str]]:
    return [(c["component"], c["resource"], c["check"], c["status"]) for c in res.json["checks"]
            if c["status"] not in ("ok", "skipped")]


def test_default_sandbox_all_ok(sandbox: Sandbox) -> None:
    res = status(sandbox)
    assert not_ok(res) == [], res.json
    assert res.exit_code == 0 and res.json["overall"] == "ok"
    comps = {c["component"] for c in res.json["checks"]}
    assert comps == {"apps", "functions", "databases", "cache", "spaces", "cdn", "monitoring", "prometheus", "dns",
                     "drills"}
    prom = [(c["check"], c["status"]) for c in res.json["checks"] if c["component"] == "prometheus"]
    if "PROMETHEUS_URL" in sandbox.env or "prometheus:" in Path(sandbox.env["DOOPS_CONFIG"]).read_text():
        assert prom and all(status == "ok" for _, status in prom), prom  # running: judged
    else:
        assert prom == [("configured", "skipped")]  # not installed here: shown, not a finding
    for c in res.json["checks"]:
        assert set(c) == {"component", "resource", "check", "status", "summary", "details", "duration_ms"}
    assert 0 < res.json["api_requests"] <= 20


def test_filter_and_table(sandbox: Sandbox) -> None:
    res = status(sandbox, "databases", "cache")
    assert {c["component"] for c in res.json["checks"]} == {"databases", "cache"}
    table = run_doops(["--no-color", "status", "cdn"], env=sandbox.env, secrets=(sandbox.token,))
    assert table.exit_code == 0 and "cdn: ok" in table.stdout and "cache-control" in table.stdout


def test_unknown_component_is_exit_4(sandbox: Sandbox) -> None:
    res = run_doops(["status", "databse"], env=sandbox.env, secrets=(sandbox.token,))
    assert res.exit_code == 4
    assert "databse" in res.stderr and "apps, functions, databases" in res.stderr


def test_app_unhealthy(sandbox: Sandbox) -> None:
    sandbox.fault(kind="app-unhealthy", app="learnhub-api", component="ws")
    res = status(sandbox)
    bad = not_ok(res)
    assert ("apps", "learnhub-api", "health", "crit") in bad
    assert ("apps", "learnhub-api", "live-url", "crit") in bad
    assert all(b[1] in ("learnhub-api", "uptime:learnhub-api") for b in bad), bad
    assert res.exit_code == 2


def test_db_lag(sandbox: Sandbox) -> None:
    sandbox.fault(kind="db-lag", replica="learnhub-db-ams3")

    def lagging() -> Any:
        res = status(sandbox, "databases")
        return res if not_ok(res) else None

    res = wait_for(lagging, 40, "replica lag to be reported", interval=0.5)
    assert not_ok(res) and all(b[1:3] == ("learnhub-db-ams3", "replica") for b in not_ok(res)), not_ok(res)
    check = next(c for c in res.json["checks"] if c["resource"] == "learnhub-db-ams3")
    assert check["details"]["replay_paused"] is True
    assert res.exit_code in (1, 2)
    full = status(sandbox)
    assert {b[0] for b in not_ok(full)} == {"databases"}


def test_http_error_on_apps(sandbox: Sandbox) -> None:
    sandbox.fault(kind="http-error", status=503, route="/v2/apps*")
    res = status(sandbox)
    bad = not_ok(res)
    assert ("apps", "*", "list", "unknown") in bad
    # dns's target check follows the record to its app through the same /v2/apps: unknown with it
    assert all(b[0] == "apps" or b[2] == "app-alerts" or b[:3] == ("dns", "api.learnhub.example", "target")
               for b in bad), bad
    assert res.exit_code == 3
    check = next(c for c in res.json["checks"] if c["component"] == "apps")
    assert "503" in check["summary"]


def test_spaces_replication_paused_with_new_uploads(sandbox: Sandbox) -> None:
    key = upload_unreplicated(sandbox, "status")

    def flagged() -> Any:
        res = status(sandbox, "spaces")
        return res if not_ok(res) else None

    res = wait_for(flagged, 30, "missing object past the allowance", interval=0.5)
    assert not_ok(res) == [("spaces", "learnhub-media", "replication", "crit")]
    check = next(c for c in res.json["checks"] if c["check"] == "replication")
    assert key in check["details"]["missing"]
    assert res.exit_code == 2


def test_db_stop(fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.fault(kind="db-stop", cluster="learnhub-db")
    res = status(fresh_sandbox)
    bad = not_ok(res)
    assert ("databases", "learnhub-db", "connections", "crit") in bad
    assert all(b[0] == "databases" for b in bad), bad
    assert res.exit_code == 2


def test_sequential_run_gives_the_same_verdicts(sandbox: Sandbox) -> None:
    """--concurrency 1 runs every call one after another (the benchmark's baseline) and must not deadlock."""
    par = status(sandbox)
    seq = status(sandbox, "--concurrency", "1")
    assert seq.exit_code == par.exit_code == 0
    key = lambda r: sorted((c["component"], c["resource"], c["check"], c["status"]) for c in r.json["checks"])  # noqa: E731
    assert key(seq) == key(par)


def test_a_cold_process_judges_spaces_and_prometheus_in_its_child(sandbox: Sandbox) -> None:
    """A fresh `doops status` forks the Spaces and Prometheus checks (ops/status/offload.py): the same
    verdicts, in component order, a fault seen through the child, nothing printed twice."""
    key = upload_unreplicated(sandbox, "cold")

    def cold() -> subprocess.CompletedProcess[str] | None:
        proc = subprocess.run([sys.executable, "-m", "doops", "--debug", "status", "-o", "json"],
                              env={**os.environ, **sandbox.env}, capture_output=True, text=True, timeout=120)
        data = json.loads(proc.stdout)
        media = [c for c in data["checks"] if c["resource"] == "learnhub-media" and c["check"] == "replication"]
        return proc if media and media[0]["status"] == "crit" else None

    proc = wait_for(cold, 40, "the replication gap seen by a cold process", interval=0.5)
    assert "in a child process" in proc.stderr and "spaces" in proc.stderr
    assert proc.stdout.count('"overall"') == 1  # the child printed nothing
    data = json.loads(proc.stdout)
    order = [c["component"] for c in data["checks"]]
    assert order == sorted(order, key=COMPONENTS.index)
    media = next(c for c in data["checks"] if c["resource"] == "learnhub-media" and c["check"] == "replication")
    assert key in media["details"]["missing"]
    assert proc.returncode == 2 and data["overall"] == "crit"
    assert sandbox.token not in proc.stderr + proc.stdout
