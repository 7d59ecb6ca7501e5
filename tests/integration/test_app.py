"""`doops app` against the sandbox: a bad release (the twin's bad-release fault) deployed, found unhealthy on the
live server, rolled back to healthy with the RTO measured and the rollback committed; a rollback the
validation refuses; a redeploy; a restart of one component; bad input that sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Result, run_doops
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

APP = "learnhub-api"


def api(sb: Sandbox, method: str, path: str) -> Any:
    resp = httpx.request(method, sb.state["api_url"] + path, headers={"Authorization": f"Bearer {sb.token}"},
                         timeout=10)
    resp.raise_for_status()
    return resp.json() if resp.content else None


def app_json(sb: Sandbox) -> dict[str, Any]:
    return next(a for a in api(sb, "GET", "/v2/apps?per_page=200")["apps"] if a["spec"]["name"] == APP)


def doops(sb: Sandbox, *args: str) -> Result:
    res = run_doops(["app", *args], env=sb.env, secrets=(sb.token,))
    assert "Traceback" not in res.stderr
    return res


def writes_since(sb: Sandbox, index: int) -> list[str]:
    return [f"{r['method']} {r['path'].rsplit('/', 1)[-1]}" for r in sb.requests()[index:]
            if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]


@pytest.fixture
def app_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox; whatever a test did, the app is left unpinned (a pin would refuse later deploys)."""
    yield sandbox
    app = app_json(sandbox)
    if app.get("pinned_deployment"):
        api(sandbox, "POST", f"/v2/apps/{app['id']}/rollback/commit")


def test_bad_release_is_rolled_back_to_healthy_with_rto_and_committed(app_sandbox: Sandbox,
                                                                       isolated_env: Path) -> None:
    sb = app_sandbox
    live = sb.state["apps"][APP]
    before = doops(sb, "deployments", APP, "-o", "json")
    assert before.exit_code == 0, before.stderr
    good = before.json["deployments"][0]
    assert good["phase"] == "ACTIVE" and httpx.get(live + "/api/health", timeout=5).status_code == 200

    fault = run_doops(["sandbox", "fault", "bad-release", APP, "--dir", str(sb.dir)])
    assert fault.exit_code == 0, fault.stderr
    deployed = doops(sb, "redeploy", APP, "--yes", "--timeout", "4s", "-o", "json")
    assert deployed.exit_code == 2, deployed.stderr
    out = deployed.json
    assert out["outcome"] == "verification_failed" and out["phases"][-1]["phase"] == "ACTIVE"
    assert {c["replicas_ready"] for c in out["health"]["components"]} == {0}
    assert httpx.get(live + "/api/health", timeout=5).status_code == 503  # what users hit is broken

    start = len(sb.requests())
    res = doops(sb, "rollback", APP, "--yes", "-o", "json")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["outcome"] == "ok" and out["app"] == APP
    assert out["from_deployment"] == deployed.json["deployment"] and out["to_deployment"] == good["id"]
    assert [p["phase"] for p in out["phases"]][-1] == "ACTIVE" and out["committed"] is True
    assert all(c["ready"] for c in out["health"]["components"])
    assert out["health"]["live_url"]["url"] == live and out["health"]["live_url"]["answers_200_in_a_row"] == 3
    assert set(out["health"]["live_url"]["last_status"]) == {"/api/health", "/ws/health"}
    t = out["timings"]
    assert t["requested"] < t["active"] <= t["healthy"]
    assert 0 < out["rto_seconds"] < out["rto_target_seconds"] == 300 and out["met"] is True
    assert writes_since(sb, start) == ["POST validate", "POST rollback", "POST commit"]
    assert httpx.get(live + "/api/health", timeout=5).status_code == 200
    assert "pinned_deployment" not in app_json(sb)
    history = doops(sb, "deployments", APP, "-o", "json").json["deployments"]
    assert history[0]["id"] == out["deployment"] and history[0]["cloned_from"] == good["id"]
    assert history[1]["id"] == deployed.json["deployment"] and history[1]["phase"] == "SUPERSEDED"
    assert history[1]["active_seconds"] is not None and history[1]["active_seconds"] > 0


def test_rollback_that_fails_validation_is_refused_and_changes_nothing(app_sandbox: Sandbox) -> None:
    sb = app_sandbox
    active = app_json(sb)["active_deployment"]["id"]
    start = len(sb.requests())
    res = doops(sb, "rollback", APP, "--to", active, "--yes", "-o", "json")
    assert res.exit_code == 2, res.stderr
    assert res.json["outcome"] == "refused" and "incompatible_phase" in res.json["message"]
    assert "refused by App Platform's validation" in res.stderr
    assert writes_since(sb, start) == ["POST validate"]
    assert app_json(sb)["active_deployment"]["id"] == active and "pinned_deployment" not in app_json(sb)


def test_redeploy_is_followed_and_verified(app_sandbox: Sandbox) -> None:
    sb = app_sandbox
    start = len(sb.requests())
    res = doops(sb, "redeploy", APP, "--force-build", "--yes", "-o", "json")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["outcome"] == "ok" and out["force_build"] is True and out["met"] is True
    assert app_json(sb)["active_deployment"]["id"] == out["deployment"]
    assert writes_since(sb, start) == ["POST deployments"]


def test_restart_of_one_component(app_sandbox: Sandbox) -> None:
    sb = app_sandbox
    start = len(sb.requests())
    res = doops(sb, "restart", APP, "--component", "ws", "--yes", "-o", "json")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["outcome"] == "ok" and out["components"] == ["ws"]
    active = app_json(sb)["active_deployment"]
    assert active["id"] == out["deployment"] and "ws" in active["cause"]
    assert writes_since(sb, start) == ["POST restart"]


@pytest.mark.parametrize("args, message", [
    (["rollback", "no-such-app", "--yes"], "app 'no-such-app' not found"),
    (["rollback", APP, "--to", "00000000-0000-4000-8000-000000000000", "--yes"], "not found in app learnhub-api"),
    (["redeploy", "no-such-app", "--yes"], "app 'no-such-app' not found"),
    (["restart", APP, "--component", "nope", "--yes"], "no component 'nope'"),
    (["deployments", "no-such-app"], "app 'no-such-app' not found"),
])
def test_bad_input_exits_4_with_nothing_sent(app_sandbox: Sandbox, args: list[str], message: str) -> None:
    sb = app_sandbox
    start = len(sb.requests())
    res = doops(sb, *args)
    assert res.exit_code == 4 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert writes_since(sb, start) == [] and res.stdout == ""


def test_bad_release_of_an_unknown_app_is_bad_input(app_sandbox: Sandbox) -> None:
    res = run_doops(["sandbox", "fault", "bad-release", "no-such-app", "--dir", str(app_sandbox.dir)])
    assert res.exit_code == 4 and APP in res.stderr
