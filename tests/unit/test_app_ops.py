"""`doops app` on a fake clock: App Platform (API and the live URL) faked behind respx, deployments walking
their phases in fake time. Validation refusals, a rollback followed to verified healthy, RTO met and missed,
a timeout with the revert offered, declined and dry runs that send no write, bad input that sends nothing, a
re-run that only verifies, redeploy and restart, and the deployment history."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from doops.clients.models import AppInfo
from doops.config import Config
from doops.errors import UsageError
from doops.ops import app as ops
from doops.ops.seam import Cancel, Clock, FakeClock, Level, Outcome, RecordingSink, SystemClock
from doops.platform import Platform
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
LIVE = "https://learnhub-api-3eb14.ondigitalocean.app"
APP_ID = "3eb14f11-6367-50c5-ba9c-586feb90a5da"
PHASES = ("PENDING_BUILD", "BUILDING", "DEPLOYING")
SPEC = {"name": "learnhub-api", "region": "nyc",
        "services": [{"name": "api", "instance_count": 2, "health_check": {"http_path": "/health"}},
                     {"name": "ws", "instance_count": 2, "health_check": {"http_path": "/health"}}],
        "ingress": {"rules": [{"component": {"name": "api"}, "match": {"path": {"prefix": "/api"}}},
                              {"component": {"name": "ws"}, "match": {"path": {"prefix": "/ws"}}}]}}


@dataclass
class Dep:
    id: str
    created: float  # fake monotonic seconds
    cause: str
    release: str  # "good" or "bad": a bad release fails its health checks while active
    cloned_from: str | None = None


@dataclass
class FakeAppPlatform:
    """App Platform as doops sees it: deployments, pinning, health, and the live URL's health paths."""

    clock: Clock
    phase_seconds: float = 10.0
    valid: bool = True
    warnings: list[dict[str, Any]] = field(default_factory=list)
    rollback_release: str | None = None  # force the release a rollback deploys (e.g. "bad")
    redeploy_release: str = "good"  # the release POST .../deployments deploys
    deps: list[Dep] = field(default_factory=list)
    pinned: str | None = None
    calls: list[str] = field(default_factory=list)
    bodies: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deps = [Dep("d-old-1111", -9000.0, "commit aaa", "good"),
                     Dep("d-good-2222", -6000.0, "commit bbb", "good"),
                     Dep("d-bad-33333", -3000.0, "commit ccc", "bad")]

    def now(self) -> float:
        return self.clock.monotonic()

    def done(self, d: Dep) -> bool:
        return self.now() - d.created >= 3 * self.phase_seconds

    def active(self) -> Dep | None:
        done = [d for d in self.deps if self.done(d)]
        return max(done, key=lambda d: d.created) if done else None

    def phase(self, d: Dep) -> str:
        step = int((self.now() - d.created) // self.phase_seconds)
        if step < 3:
            return PHASES[step]
        return "ACTIVE" if self.active() is d else "SUPERSEDED"

    def stamp(self, t: float) -> str:
        return (self.clock.now() - timedelta(seconds=self.now() - t)).isoformat().replace("+00:00", "Z")

    def dep_json(self, d: Dep) -> dict[str, Any]:
        step = self.phase_seconds
        steps = []
        for i, name in enumerate(("initialize", "build", "deploy")):
            start, end = d.created + i * step, d.created + (i + 1) * step
            if self.now() >= end:
                steps.append({"name": name, "status": "SUCCESS", "started_at": self.stamp(start),
                              "ended_at": self.stamp(end)})
            else:
                steps.append({"name": name, "status": "RUNNING" if self.now() >= start else "PENDING"})
        out: dict[str, Any] = {
            "id": d.id, "cause": d.cause, "phase": self.phase(d), "created_at": self.stamp(d.created),
            "phase_last_updated_at": self.stamp(d.created),
            "progress": {"success_steps": sum(s["status"] == "SUCCESS" for s in steps), "total_steps": 3,
                         "steps": steps}}
        if d.cloned_from:
            out["cloned_from"] = d.cloned_from
        return out

    def healthy(self) -> bool:
        a = self.active()
        return a is not None and a.release == "good"

    def app_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": APP_ID, "spec": SPEC, "live_url": LIVE}
        a = self.active()
        if a is not None:
            out["active_deployment"] = self.dep_json(a)
        going = [d for d in self.deps if not self.done(d)]
        if going:
            out["in_progress_deployment"] = self.dep_json(going[-1])
        if self.pinned:
            out["pinned_deployment"] = self.dep_json(self.find(self.pinned))
        return out

    def find(self, dep_id: str) -> Dep:
        return next(d for d in self.deps if d.id == dep_id)

    def new(self, cause: str, release: str, cloned_from: str | None = None) -> Dep:
        d = Dep(f"d-new-{len(self.deps)}", self.now(), cause, release, cloned_from)
        self.deps.append(d)
        return d

    # -- the routes ----------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.calls.append(f"{method} {path}")
        body = json.loads(request.content) if request.content else None
        self.bodies[f"{method} {path}"] = body
        base = f"/v2/apps/{APP_ID}"
        if path == "/v2/account":
            return httpx.Response(200, json={"account": {"uuid": "acc", "email": "sre@example.com",
                                                         "status": "active"}})
        if path == "/v2/apps":
            return httpx.Response(200, json={"apps": [self.app_json()], "links": {}, "meta": {"total": 1}})
        if path == base and method == "GET":
            return httpx.Response(200, json={"app": self.app_json()})
        if path == base + "/deployments" and method == "GET":
            deps = sorted(self.deps, key=lambda d: d.created, reverse=True)
            return httpx.Response(200, json={"deployments": [self.dep_json(d) for d in deps], "links": {},
                                             "meta": {"total": len(deps)}})
        if path.startswith(base + "/deployments/") and method == "GET":
            dep_id = path.rsplit("/", 1)[1]
            if not any(d.id == dep_id for d in self.deps):
                return httpx.Response(404, json={"id": "not_found", "message": "deployment not found"})
            return httpx.Response(200, json={"deployment": self.dep_json(self.find(dep_id))})
        if path == base + "/health":
            ok = self.healthy()
            return httpx.Response(200, json={"app_health": {"components": [
                {"name": n, "state": "HEALTHY" if ok else "UNHEALTHY", "replicas_desired": 2,
                 "replicas_ready": 2 if ok else 0} for n in ("api", "ws")]}})
        if path == base + "/rollback/validate":
            if not self.valid:
                return httpx.Response(200, json={"valid": False, "error": {
                    "code": "incompatible_result", "message": 'deployment result "failed" is unsuitable'}})
            return httpx.Response(200, json={"valid": True, "warnings": self.warnings})
        if path == base + "/rollback":
            assert body is not None
            target = self.find(body["deployment_id"])
            d = self.new(f"manual rollback to {target.id}", self.rollback_release or target.release, target.id)
            self.pinned = d.id
            return httpx.Response(200, json={"deployment": self.dep_json(d)})
        if path == base + "/rollback/commit":
            self.pinned = None
            return httpx.Response(200)
        if path == base + "/rollback/revert":
            self.pinned = None
            d = self.new("rollback reverted", "bad")
            return httpx.Response(200, json={"deployment": self.dep_json(d)})
        if path == base + "/deployments" and method == "POST":
            if self.pinned:
                return httpx.Response(400, json={"id": "bad_request", "message": "app is pinned"})
            return httpx.Response(200, json={"deployment": self.dep_json(self.new("manual", self.redeploy_release))})
        if path == base + "/restart":
            return httpx.Response(200, json={"deployment": self.dep_json(self.new("app restart", "good"))})
        return httpx.Response(404, json={"id": "not_found", "message": f"no route {method} {path}"})

    def live(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"LIVE {request.url.path}")
        return httpx.Response(200 if self.healthy() else 503)

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c.startswith("POST")]


def setup(**kw: Any) -> tuple[Platform, FakeAppPlatform, FakeClock]:
    clock = FakeClock()
    fake = FakeAppPlatform(clock, **kw)
    p = Platform(access_token="t", api_url=API, clock=clock)
    p._config = Config()
    return p, fake, clock


def mocked(fake: FakeAppPlatform) -> respx.MockRouter:
    router = respx.mock(assert_all_called=False)
    router.route(host="api.digitalocean.com").mock(side_effect=fake.handle)
    router.route(host=LIVE.split("://")[1]).mock(side_effect=fake.live)
    return router


def rollback(p: Platform, fake: FakeAppPlatform, answers: list[bool] | None = None, cancel: Cancel | None = None,
             **opts: Any) -> tuple[ops.AppResult, RecordingSink, list[str]]:
    sink = RecordingSink()
    asked: list[str] = []
    replies = list(answers) if answers is not None else None

    def confirm(question: str) -> bool:
        asked.append(question)
        return True if replies is None else replies.pop(0)

    with mocked(fake):
        result = ops.rollback(p, ops.RollbackOptions(app="learnhub-api", **opts), confirm=confirm, events=sink,
                              cancel=cancel)
    return result, sink, asked


# -- rollback ---------------------------------------------------------------------------------------------------


def test_rollback_is_followed_through_its_phases_to_verified_healthy_and_committed(isolated_env: Path) -> None:
    p, fake, _clock = setup(phase_seconds=10, warnings=[{"code": "static_site_requires_rebuild",
                                                        "message": "the site is rebuilt", "components": ["web"]}])
    result, sink, asked = rollback(p, fake)
    assert result.outcome is Outcome.OK and result.met is True and result.committed and not result.pinned
    assert result.from_deployment == "d-bad-33333" and result.to_deployment == "d-good-2222"
    assert fake.writes == [f"POST /v2/apps/{APP_ID}/rollback/validate", f"POST /v2/apps/{APP_ID}/rollback",
                           f"POST /v2/apps/{APP_ID}/rollback/commit"]
    assert fake.bodies[f"POST /v2/apps/{APP_ID}/rollback"] == {"deployment_id": "d-good-2222", "skip_pin": False}
    assert [ph.phase for ph in result.phases] == ["PENDING_BUILD", "BUILDING", "DEPLOYING", "ACTIVE"]
    assert all(a.at <= b.at for a, b in zip(result.phases, result.phases[1:], strict=False))
    # the warning was shown before the question, and the question names both deployments
    assert "static_site_requires_rebuild: the site is rebuilt (web)" in result.warnings
    assert len(asked) == 1 and "d-bad-33" in asked[0] and "d-good-2222" in asked[0]
    # verification: every replica ready, both health paths 200 three times in a row
    assert all(c.ready for c in result.health.components) and len(result.health.components) == 2
    live = result.health.live_url
    assert live.paths == ["/api/health", "/ws/health"] and live.in_a_row == 3
    assert fake.calls.count("LIVE /api/health") == 3 and fake.calls.count("LIVE /ws/health") == 3
    t = result.timings
    assert t.requested is not None and t.active is not None and t.healthy is not None
    assert t.requested < t.active <= t.healthy
    assert result.rto_seconds is not None
    assert 30 <= result.rto_seconds <= 40 and result.rto_target_seconds == 300  # three phases of 10 s + probes
    progress = [e for e in sink.events if e.phase == "deploy" and e.data.get("total")]
    assert progress and progress[-1].data["done"] == 3  # the live progress line counts the steps
    assert sink.events[-1].level is Level.DONE


def test_rto_missed_is_an_outcome_yet_the_healthy_rollback_is_committed(isolated_env: Path) -> None:
    p, fake, _ = setup(phase_seconds=30)
    result, _, _ = rollback(p, fake, rto_seconds=60)
    assert result.outcome is Outcome.OBJECTIVE_MISSED and result.outcome.exit_code == 2
    assert result.rto_seconds is not None
    assert result.met is False and result.rto_seconds > 90 and result.committed
    assert "slower than the compute RTO objective (60s)" in result.message


def test_validation_refusal_sends_no_rollback(isolated_env: Path) -> None:
    p, fake, _ = setup(valid=False)
    result, _, asked = rollback(p, fake)
    assert result.outcome is Outcome.REFUSED and result.outcome.exit_code == 2
    assert "incompatible_result" in result.message and "nothing was changed" in result.message
    assert fake.writes == [f"POST /v2/apps/{APP_ID}/rollback/validate"] and asked == []


def test_declined_confirmation_sends_no_rollback(isolated_env: Path) -> None:
    p, fake, _ = setup()
    result, _, asked = rollback(p, fake, answers=[False])
    assert result.outcome is Outcome.DECLINED and len(asked) == 1
    assert fake.writes == [f"POST /v2/apps/{APP_ID}/rollback/validate"]  # the check only; nothing changed
    assert fake.pinned is None and len(fake.deps) == 3


def test_dry_run_sends_no_post(isolated_env: Path) -> None:
    p, fake, _ = setup()
    result, _, asked = rollback(p, fake, dry_run=True)
    assert result.outcome is Outcome.DRY_RUN and result.to_deployment == "d-good-2222"
    assert fake.writes == [] and asked == [] and all(c.startswith("GET") for c in fake.calls)


def test_not_healthy_within_the_timeout_reverts_with_yes(isolated_env: Path) -> None:
    p, fake, clock = setup(rollback_release="bad")
    result, _sink, asked = rollback(p, fake, timeout_seconds=120)
    assert result.outcome is Outcome.VERIFICATION_FAILED and result.reverted and not result.committed
    assert fake.writes[-1] == f"POST /v2/apps/{APP_ID}/rollback/revert" and fake.pinned is None
    assert "every replica ready" in result.message and "reverted" in result.message
    assert len(asked) == 2 and "Revert the rollback" in asked[1]
    assert 120 <= clock.monotonic() < 130  # waited the timeout, on the fake clock


def test_declined_revert_leaves_the_rollback_pinned_for_a_re_run(isolated_env: Path) -> None:
    p, fake, _ = setup(rollback_release="bad")
    result, _, _ = rollback(p, fake, answers=[True, False], timeout_seconds=60)
    assert result.outcome is Outcome.VERIFICATION_FAILED and not result.reverted and result.pinned
    assert not any(w.endswith("/revert") or w.endswith("/commit") for w in fake.writes)
    assert fake.pinned == result.deployment


def test_live_url_failing_keeps_verification_from_passing(isolated_env: Path) -> None:
    p, fake, _ = setup()
    fake.live = lambda request: httpx.Response(500)  # type: ignore[method-assign]
    result, _, _ = rollback(p, fake, timeout_seconds=90, answers=[True, False])
    assert result.outcome is Outcome.VERIFICATION_FAILED
    assert "live URL did not answer 200 3 times in a row" in result.message and "/api/health 500" in result.message


def test_rerun_with_a_rollback_already_active_only_verifies_and_commits(isolated_env: Path) -> None:
    p, fake, clock = setup()
    rolled = fake.new("manual rollback to d-good-2222", "good", "d-good-2222")
    fake.pinned = rolled.id
    clock.advance(100)  # the earlier run's rollback is ACTIVE by now
    result, sink, _ = rollback(p, fake)
    assert result.outcome is Outcome.OK and result.resumed and result.committed
    assert fake.writes == [f"POST /v2/apps/{APP_ID}/rollback/commit"]  # no validate, no second rollback
    assert result.deployment == rolled.id and result.to_deployment == "d-good-2222"
    assert any("sending no second rollback" in m for m in sink.messages("resolve"))
    assert result.rto_seconds is not None
    assert 100 <= result.rto_seconds < 110  # measured from the rollback deployment's creation


def test_interrupted_then_rerun_follows_the_same_rollback(isolated_env: Path) -> None:
    p, fake, _clock = setup()
    cancel = Cancel()
    orig = fake.handle

    def cancel_after_rollback(request: httpx.Request) -> httpx.Response:
        resp = orig(request)
        if request.url.path.endswith("/rollback"):
            cancel.cancel("test")
        return resp

    fake.handle = cancel_after_rollback  # type: ignore[method-assign]
    first, _, _ = rollback(p, fake, cancel=cancel)
    assert first.outcome is Outcome.INTERRUPTED and first.pinned and "run the same command again" in (first.hint or "")
    fake.handle = orig  # type: ignore[method-assign]
    second, _, _ = rollback(p, fake)
    assert second.outcome is Outcome.OK and second.resumed and second.deployment == first.deployment
    assert second.from_deployment == "d-bad-33333"  # remembered from the first run
    assert second.timings.requested == first.timings.requested
    assert [w.rsplit("/", 1)[1] for w in fake.writes] == ["validate", "rollback", "commit"]


def test_pinned_to_another_target_is_refused(isolated_env: Path) -> None:
    p, fake, clock = setup()
    fake.pinned = fake.new("manual rollback to d-old-1111", "good", "d-old-1111").id
    clock.advance(100)
    result, _, _ = rollback(p, fake, to="d-good-2222")
    assert result.outcome is Outcome.REFUSED and "pinned" in result.message and fake.writes == []


def test_to_takes_a_unique_prefix(isolated_env: Path) -> None:
    p, fake, _ = setup()
    result, _, _ = rollback(p, fake, to="d-old-1", dry_run=True)
    assert result.to_deployment == "d-old-1111"


@pytest.mark.parametrize("opts, message", [({"to": "nosuchdeployment"}, "deployment 'nosuchdeployment' not found"),
                                           ({"app": "nosuchapp"}, "app 'nosuchapp' not found")])
def test_unknown_app_or_deployment_is_bad_input_with_nothing_sent(isolated_env: Path, opts: dict[str, Any],
                                                                  message: str) -> None:
    p, fake, _ = setup()
    with mocked(fake), pytest.raises(UsageError, match=message):
        ops.rollback(p, ops.RollbackOptions(**{"app": "learnhub-api", **opts}), confirm=lambda q: True)
    assert fake.writes == []
    assert not (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["app", "rollback", "nosuchapp", "--yes"], "app 'nosuchapp' not found"),
    (["app", "rollback", "learnhub-api", "--to", "nosuchdeployment", "--yes"], "deployment 'nosuchdeployment'"),
    (["app", "rollback", "learnhub-api", "--to", "d-old-1111", "--previous", "--yes"], "at most one of --to"),
    (["app", "rollback", "learnhub-api", "--timeout", "0s", "--yes"], "--timeout"),
    (["app", "restart", "learnhub-api", "--component", "nope", "--yes"], "no component 'nope'"),
    (["app", "redeploy", "nosuchapp", "--yes"], "app 'nosuchapp' not found"),
    (["app", "deployments", "nosuchapp"], "app 'nosuchapp' not found"),
])
def test_cli_bad_input_exits_4_with_one_line_and_nothing_sent(isolated_env: Path, args: list[str],
                                                              message: str) -> None:
    fake = FakeAppPlatform(FakeClock())
    with mocked(fake):
        res = run_doops(args, env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert fake.writes == [] and res.stdout == ""


def test_cli_without_a_terminal_needs_yes(isolated_env: Path) -> None:
    fake = FakeAppPlatform(FakeClock())
    with mocked(fake):
        res = run_doops(["app", "rollback", "learnhub-api"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4 and "no terminal to ask on" in res.stderr and fake.calls == []


def test_cli_rollback_json_has_the_documented_shape(isolated_env: Path) -> None:
    fake = FakeAppPlatform(SystemClock(), phase_seconds=0.01)  # the CLI waits on the real clock: ~1 s here
    with mocked(fake):
        res = run_doops(["app", "rollback", "learnhub-api", "--yes", "-o", "json"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert {"app", "from_deployment", "to_deployment", "phases", "health", "timings", "rto_seconds",
            "rto_target_seconds", "met", "committed", "outcome"} <= set(out)
    assert set(out["health"]) == {"components", "live_url"} and set(out["timings"]) == {"requested", "active",
                                                                                         "healthy"}
    assert out["outcome"] == "ok" and out["committed"] is True and out["phases"][-1]["phase"] == "ACTIVE"
    audit = (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").read_text().splitlines()
    entry = json.loads(audit[-1])
    assert entry["action"] == "app rollback" and entry["app"] == "learnhub-api" and entry["outcome"] == "ok"


# -- redeploy, restart, history ---------------------------------------------------------------------------------


def test_redeploy_sends_force_build_and_verifies(isolated_env: Path) -> None:
    p, fake, _ = setup()
    fake.deps[-1].release = "good"
    with mocked(fake):
        result = ops.redeploy(p, ops.RedeployOptions("learnhub-api", force_build=True), confirm=lambda q: True)
    assert result.outcome is Outcome.OK and result.deployment == result.to_deployment
    assert fake.bodies[f"POST /v2/apps/{APP_ID}/deployments"] == {"force_build": True}
    assert [ph.phase for ph in result.phases][-1] == "ACTIVE" and result.rto_seconds is not None


def test_redeploy_of_a_bad_release_is_not_verified(isolated_env: Path) -> None:
    p, fake, _ = setup(redeploy_release="bad")
    with mocked(fake):
        result = ops.redeploy(p, ops.RedeployOptions("learnhub-api", timeout_seconds=60), confirm=lambda q: True)
    assert result.outcome is Outcome.VERIFICATION_FAILED and "doops app rollback learnhub-api" in (result.hint or "")


def test_redeploy_while_pinned_is_refused_before_anything_is_sent(isolated_env: Path) -> None:
    p, fake, clock = setup()
    fake.pinned = fake.new("manual rollback to d-good-2222", "good", "d-good-2222").id
    clock.advance(100)
    with mocked(fake):
        result = ops.redeploy(p, ops.RedeployOptions("learnhub-api"), confirm=lambda q: True)
    assert result.outcome is Outcome.REFUSED and "pinned" in result.message and fake.writes == []


def test_restart_of_one_component(isolated_env: Path) -> None:
    p, fake, _ = setup()
    fake.deps[-1].release = "good"
    asked: list[str] = []

    def confirm(q: str) -> bool:
        asked.append(q)
        return True

    with mocked(fake):
        result = ops.restart(p, ops.RestartOptions("learnhub-api", ["ws"]), confirm=confirm)
    assert result.outcome is Outcome.OK and result.components == ["ws"]
    assert fake.bodies[f"POST /v2/apps/{APP_ID}/restart"] == {"components": ["ws"]}
    assert "Restart ws of learnhub-api" in asked[0]


def test_restart_declined_sends_nothing(isolated_env: Path) -> None:
    p, fake, _ = setup()
    with mocked(fake):
        result = ops.restart(p, ops.RestartOptions("learnhub-api"), confirm=lambda q: False)
    assert result.outcome is Outcome.DECLINED and fake.writes == []


def test_history_says_how_long_each_deployment_was_active(isolated_env: Path) -> None:
    p, fake, _clock = setup(phase_seconds=10)
    with mocked(fake):
        h = ops.deployments(p, "learnhub-api")
    assert [d.id for d in h.deployments] == ["d-bad-33333", "d-good-2222", "d-old-1111"]
    assert [d.phase for d in h.deployments] == ["ACTIVE", "SUPERSEDED", "SUPERSEDED"]
    # active from the end of its last step until the next one's: 3000 s each; the newest until now
    assert [d.active_seconds for d in h.deployments] == [2970.0, 3000.0, 3000.0]


def test_health_paths_come_from_the_spec_routes_else_root() -> None:
    info = AppInfo.from_api({"id": "a", "spec": SPEC})
    assert info.health_paths == ["/api/health", "/ws/health"]
    legacy = AppInfo.from_api({"id": "a", "spec": {"name": "x", "services": [
        {"name": "s", "routes": [{"path": "/v1"}], "health_check": {"http_path": "healthz"}}]}})
    assert legacy.health_paths == ["/v1/healthz"]
    assert AppInfo.from_api({"id": "a", "spec": {"name": "x", "static_sites": [{"name": "w"}]}}).health_paths == ["/"]
