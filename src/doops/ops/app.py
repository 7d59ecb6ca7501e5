"""`doops app`: undo a bad release with an App Platform rollback, redeploy, restart components, and read the
deployment history; each action followed to ACTIVE and verified the way users meet the app, with its compute
RTO (request to verified healthy) judged against the objective.

Verification, the same for every action: the deployment reaches ACTIVE; App Platform health says every
component has all its replicas ready; each health path of the live URL (the app spec's
``health_check.http_path`` under its ingress route, else ``/``) answers 200 three times in a row.

A rollback is validated first (``valid: false`` refuses it, warnings are shown), then sent; App Platform pins
the app to the rollback deployment until it is committed (doops does when verified, unless ``--no-commit``)
or reverted (offered when verification fails). A re-run while the app is pinned follows and verifies that
rollback instead of sending a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from doops import journal
from doops.clients.models import AppDeployment, AppInfo
from doops.errors import ApiError, UsageError
from doops.ops.audit import Identity
from doops.ops.seam import Cancel, Emitter, EventSink, Level, Outcome, ignore, wait_until
from doops.platform import Platform
from doops.serialize import to_data
from doops.units import format_duration

LIVE_OK_IN_A_ROW = 3  # a flapping release can answer once; three answers in a row is "serving"
HISTORY_LIMIT = 50  # deployments read for the history and to find a rollback target
FAILED_PHASES = ("ERROR", "CANCELED", "SUPERSEDED")  # a followed deployment ending here never becomes ours
PROGRESS_EVERY = 10.0  # seconds between progress lines while nothing changes


# -- options and result ---------------------------------------------------------------------------------------


@dataclass
class RollbackOptions:
    app: str
    to: str | None = None  # a deployment id (or a unique prefix of 6+ characters); None: the previous one
    commit: bool = True
    rto_seconds: float | None = None  # default: objectives.compute_rto
    timeout_seconds: float = 600.0
    dry_run: bool = False


@dataclass
class RedeployOptions:
    app: str
    force_build: bool = False
    rto_seconds: float | None = None
    timeout_seconds: float = 600.0


@dataclass
class RestartOptions:
    app: str
    components: list[str] = field(default_factory=list)  # empty: every component
    rto_seconds: float | None = None
    timeout_seconds: float = 600.0


@dataclass
class PhaseSeen:
    phase: str
    at: datetime


@dataclass
class ComponentState:
    name: str
    state: str
    replicas_ready: int
    replicas_desired: int

    @property
    def ready(self) -> bool:
        return self.replicas_desired > 0 and self.replicas_ready >= self.replicas_desired and \
            self.state != "UNHEALTHY"

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "replicas_ready": self.replicas_ready,
                "replicas_desired": self.replicas_desired, "ready": self.ready}


@dataclass
class LiveCheck:
    """The live URL's health paths, probed as a user would reach them."""

    url: str | None = None
    paths: list[str] = field(default_factory=list)
    required: int = LIVE_OK_IN_A_ROW
    in_a_row: int = 0
    last_status: dict[str, int | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.in_a_row >= self.required

    def to_data(self) -> dict[str, Any]:
        return {"url": self.url, "paths": self.paths, "ok": self.ok, "answers_200_in_a_row": self.in_a_row,
                "required": self.required, "last_status": self.last_status}


@dataclass
class Health:
    components: list[ComponentState] = field(default_factory=list)
    live_url: LiveCheck = field(default_factory=LiveCheck)


@dataclass
class Timings:
    requested: datetime | None = None
    active: datetime | None = None
    healthy: datetime | None = None


@dataclass
class AppResult:
    """What `doops app rollback|redeploy|restart` did, saw and measured."""

    action: str  # rollback, redeploy, restart
    app: str
    rto_target_seconds: float
    timeout_seconds: float
    dry_run: bool = False
    app_id: str = ""
    from_deployment: str | None = None  # active before the action
    to_deployment: str | None = None  # rollback: the deployment rolled back to; else the new deployment
    deployment: str | None = None  # the deployment this run created (or, resumed, followed)
    components: list[str] = field(default_factory=list)  # restart: the components asked for (empty: all)
    force_build: bool = False
    warnings: list[str] = field(default_factory=list)
    phases: list[PhaseSeen] = field(default_factory=list)
    health: Health = field(default_factory=Health)
    timings: Timings = field(default_factory=Timings)
    rto_seconds: float | None = None
    met: bool | None = None
    committed: bool = False
    pinned: bool = False  # rollback: the app is still pinned to it when the run ends
    reverted: bool = False
    revert_deployment: str | None = None
    resumed: bool = False
    outcome: Outcome = Outcome.OK
    message: str = ""
    hint: str | None = None
    next_steps: list[str] = field(default_factory=list)
    audit_file: str = ""

    def to_data(self) -> dict[str, Any]:
        data = {f: to_data(getattr(self, f)) for f in (
            "action", "app", "app_id", "dry_run", "from_deployment", "to_deployment", "deployment", "components",
            "force_build", "warnings", "phases", "health", "timings", "rto_seconds", "rto_target_seconds", "met",
            "committed", "pinned", "reverted", "revert_deployment", "resumed", "next_steps", "message")}
        data["outcome"] = self.outcome.value
        return data

    def end(self, outcome: Outcome, message: str, hint: str | None = None) -> AppResult:
        self.outcome, self.message, self.hint = outcome, message, hint
        return self


@dataclass
class DeploymentRow:
    id: str
    cause: str
    phase: str
    created: datetime | None
    active_at: datetime | None
    active_seconds: float | None  # how long it was (or has been) the active deployment
    cloned_from: str | None = None
    pinned: bool = False


@dataclass
class DeploymentsResult:
    app: str
    app_id: str
    pinned_deployment: str | None
    deployments: list[DeploymentRow]


# -- shared ---------------------------------------------------------------------------------------------------


def find_app(platform: Platform, name: str) -> AppInfo:
    """The app by name or id; an unknown one is bad input (exit 4), found by reading only."""
    if not name:
        raise UsageError("no app given", hint="pass APP, e.g. learnhub-api")
    app = platform.do.find_app(name)
    if app is None:
        names = sorted(a.name for a in platform.do.list_apps())
        raise UsageError(f"app {name!r} not found", hint="apps: " + (", ".join(names) or "none"))
    return app


class _Run:
    def __init__(self, platform: Platform, operation: str, events: EventSink, cancel: Cancel | None) -> None:
        self.platform, self.operation = platform, operation
        self.clock = platform.clock
        self.emit = Emitter(operation, events, platform.clock)
        self.cancel = cancel or Cancel()
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = Identity.of(self.platform)
        return self._identity

    def key(self, app: AppInfo) -> str:
        return self.identity.key(app.id)

    def audit(self, result: AppResult) -> AppResult:
        record = {k: v for k, v in result.to_data().items() if k != "action"}  # the journal's own "action" wins
        result.audit_file = str(journal.audit(self.operation, record, platform=self.identity))
        return result

    def locked(self, app: AppInfo, result: AppResult, body: Callable[[], AppResult]) -> AppResult:
        """One doops action per app at a time, across processes (the lock ends with its holder)."""
        try:
            with journal.exclusive(f"app-{self.key(app)}"):
                return body()
        except journal.LockHeld as held:
            result.end(Outcome.REFUSED, f"another doops app action on {app.name} is running ({held.holder}); "
                       "nothing was sent", "wait for it; the lock ends with its process")
            self.emit("precheck", result.message, Level.FAIL)
            return self.audit(result)


def _rto_target(platform: Platform, given: float | None) -> float:
    return float(given) if given is not None else float(platform.config.objectives.compute_rto)


def _short(dep_id: str | None) -> str:
    return (dep_id or "?")[:8]


def _stamp(t: datetime | None) -> str:
    return "?" if t is None else t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _follow_and_verify(run: _Run, app: AppInfo, dep_id: str, result: AppResult, started: float) -> str:
    """Follow ``dep_id`` through its phases to ACTIVE, then wait until App Platform health has every replica
    ready and the live URL's health paths answer 200 three times in a row. Returns ``healthy``, ``failed``
    (the deployment ended without becoming ACTIVE), ``timeout`` or ``cancelled``. ``started``: the clock's
    monotonic time the timeout counts from (the request)."""
    platform, clock, opts_timeout = run.platform, run.clock, result.timeout_seconds
    live = result.health.live_url
    live.url, live.paths = app.live_url, list(app.health_paths)
    stage = "deploy"
    last: dict[str, Any] = {"phase": None, "not_ready": None, "live": None, "line": None, "said": 0.0}

    def elapsed() -> str:
        return f"{format_duration(clock.monotonic() - started)} elapsed (timeout {format_duration(opts_timeout)})"

    def probe() -> str | None:
        nonlocal stage
        if stage == "deploy":
            dep = platform.do.get_app_deployment(app.id, dep_id)
            if dep.phase != last["phase"]:
                last["phase"] = dep.phase
                result.phases.append(PhaseSeen(dep.phase, clock.now()))
            steps = f", {dep.steps_done}/{dep.steps_total} steps" if dep.steps_total else ""
            line = (dep.phase, steps)
            if line != last["line"] or clock.monotonic() - last["said"] >= PROGRESS_EVERY:
                progress: dict[str, Any] = {"done": dep.steps_done, "total": dep.steps_total} \
                    if dep.steps_total else {}
                run.emit("deploy", f"deployment {_short(dep_id)}: {dep.phase}{steps}, {elapsed()}", Level.STEP,
                         state=dep.phase, **progress)
                last["line"], last["said"] = line, clock.monotonic()
            if dep.phase in FAILED_PHASES:
                return "failed"
            if dep.phase != "ACTIVE":
                return None
            result.timings.active = clock.now()
            run.emit("deploy", f"deployment {_short(dep_id)} is ACTIVE", Level.OK)
            stage = "health"
        if stage == "health":
            comps = [ComponentState(c.name, c.state, c.replicas_ready, c.replicas_desired)
                     for c in platform.do.app_health(app.id)]
            result.health.components = comps
            not_ready = [f"{c.name} {c.replicas_ready}/{c.replicas_desired} ready ({c.state})"
                         for c in comps if not c.ready]
            if not comps:
                not_ready = ["no component reported"]
            if not_ready:
                if not_ready != last["not_ready"]:
                    run.emit("health", f"App Platform health: {'; '.join(not_ready)}, {elapsed()}", Level.WARN)
                last["not_ready"] = not_ready
                return None
            run.emit("health", "App Platform health: " + ", ".join(
                f"{c.name} {c.replicas_ready}/{c.replicas_desired} ready" for c in comps), Level.OK)
            stage = "live"
        if not live.url:
            live.in_a_row = live.required  # nothing public to probe (a worker-only app): health decides
            result.warnings.append("the app has no live URL: only App Platform health was verified")
            return "healthy"
        base = live.url.rstrip("/")
        statuses = {path: platform.web.get(base + path).status for path in live.paths}
        live.last_status = statuses
        if all(s == 200 for s in statuses.values()):
            live.in_a_row += 1
        else:
            live.in_a_row = 0
        seen = ", ".join(f"{p} {s if s is not None else 'no answer'}" for p, s in statuses.items())
        if live.ok:
            run.emit("live", f"{base}: {seen} ({live.in_a_row} in a row)", Level.OK)
            return "healthy"
        if (seen, live.in_a_row) != last["live"]:
            run.emit("live", f"{base}: {seen} ({live.in_a_row}/{live.required} in a row), {elapsed()}",
                     Level.STEP if live.in_a_row else Level.WARN)
        last["live"] = (seen, live.in_a_row)
        return None

    left = max(0.0, opts_timeout - (clock.monotonic() - started))
    waited = wait_until(probe, timeout=left, clock=clock, cancel=run.cancel, interval=0.25, max_interval=2.0,
                        errors=(ApiError,))
    if waited.cancelled or run.cancel.cancelled:
        return "cancelled"
    if not waited.done:
        if waited.last_error:
            result.warnings.append(f"last API error while waiting: {waited.last_error}")
        return "timeout"
    if waited.value == "failed":
        return "failed"
    result.timings.healthy = clock.now()
    return "healthy"


def _measure(result: AppResult) -> None:
    t = result.timings
    if t.requested is not None and t.healthy is not None:
        result.rto_seconds = round((t.healthy - t.requested).total_seconds(), 3)
    result.met = result.rto_seconds is None or result.rto_seconds <= result.rto_target_seconds


def _not_verified(result: AppResult, status: str, what: str) -> str:
    last = result.phases[-1].phase if result.phases else "unknown"
    if status == "failed":
        return f"{what} ended {last} without becoming ACTIVE"
    within = f"within {format_duration(result.timeout_seconds)}"
    if result.timings.active is None:
        return f"{what} not ACTIVE {within} (last phase {last})"
    not_ready = [c.name for c in result.health.components if not c.ready]
    if not_ready or not result.health.components:
        return f"{what} is ACTIVE but App Platform health did not have every replica ready {within} " \
               f"(not ready: {', '.join(not_ready) or 'no component reported'})"
    live = result.health.live_url
    seen = ", ".join(f"{p} {s if s is not None else 'no answer'}" for p, s in live.last_status.items())
    return f"{what} is ACTIVE but the live URL did not answer 200 {live.required} times in a row {within} " \
           f"(last: {seen or 'not probed'})"


def _resolve_deployment(platform: Platform, app: AppInfo, deployments: list[AppDeployment],
                        wanted: str) -> AppDeployment:
    """``--to``: a deployment id or a unique prefix (6+ characters) of one of the app's; else bad input."""
    exact = [d for d in deployments if d.id == wanted]
    if exact:
        return exact[0]
    if len(wanted) >= 6:
        prefixed = [d for d in deployments if d.id.startswith(wanted)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise UsageError(f"deployment prefix {wanted!r} matches {len(prefixed)} deployments of {app.name}",
                             hint="give more of the id (`doops app deployments " + app.name + "`)")
    try:
        return platform.do.get_app_deployment(app.id, wanted)
    except ApiError as exc:
        if exc.status in (400, 404, 422):
            raise UsageError(f"deployment {wanted!r} not found in app {app.name}",
                             hint=f"see `doops app deployments {app.name}`") from None
        raise


def _previous(deployments: list[AppDeployment], active: AppDeployment | None) -> AppDeployment | None:
    """The deployment that was active before the current one: the newest older one that reached ACTIVE."""
    if active is None:
        return None
    older = [d for d in deployments if d.id != active.id and d.active_at is not None and d.phase == "SUPERSEDED"
             and (active.created_at is None or d.created_at is None or d.created_at < active.created_at)]
    return max(older, key=lambda d: d.created_at or datetime.min.replace(tzinfo=UTC)) if older else None


def _describe(d: AppDeployment) -> str:
    return f"{d.id} ({d.phase}, created {_stamp(d.created_at)}{', ' + d.cause if d.cause else ''})"


def _time(value: Any) -> datetime | None:
    from doops.times import parse_or_none

    return parse_or_none(value) if isinstance(value, str) else None


# -- rollback -------------------------------------------------------------------------------------------------


def rollback(platform: Platform, opts: RollbackOptions, *, confirm: Callable[[str], bool],
             events: EventSink = ignore, cancel: Cancel | None = None) -> AppResult:
    """Validate, confirm, roll back, follow, verify, measure, commit (or offer a revert). Bad input (an unknown
    app or deployment) raises UsageError before any write; every other ending is an outcome, audited."""
    run = _Run(platform, "app rollback", events, cancel)
    rto = _rto_target(platform, opts.rto_seconds)
    app = find_app(platform, opts.app)
    deployments = platform.do.list_app_deployments(app.id, HISTORY_LIMIT)
    target = _resolve_deployment(platform, app, deployments, opts.to) if opts.to else None
    result = AppResult("rollback", app.name, rto, opts.timeout_seconds, opts.dry_run, app_id=app.id)
    return run.locked(app, result, lambda: _rollback_locked(run, opts, app, deployments, target, result, confirm))


def _rollback_locked(run: _Run, opts: RollbackOptions, app: AppInfo, deployments: list[AppDeployment],
                     target: AppDeployment | None, result: AppResult, confirm: Callable[[str], bool]) -> AppResult:
    platform = run.platform
    app = platform.do.get_app(app.id)  # the pin as it is now, under the lock
    if app.pinned_deployment is not None:
        return _resume_rollback(run, opts, app, target, result, confirm)
    active = app.active_deployment
    result.from_deployment = active.id if active else None
    if target is None:
        target = _previous(deployments, active)
        if target is None:
            return run.audit(result.end(
                Outcome.REFUSED, f"{app.name} has no earlier deployment that was ACTIVE to roll back to; nothing "
                "was sent", f"pick one with --to (`doops app deployments {app.name}`)"))
    result.to_deployment = target.id
    run.emit("plan", f"roll {app.name} back from {_describe(active) if active else 'no active deployment'} "
             f"to {_describe(target)}")
    if opts.dry_run:
        result.end(Outcome.DRY_RUN, f"dry run: would validate and roll {app.name} back to {_short(target.id)}, "
                   "follow it, verify it" + (" and commit it" if opts.commit else "") + "; nothing was sent")
        run.emit("plan", result.message, Level.DONE)
        return run.audit(result)

    try:
        check = platform.do.validate_app_rollback(app.id, target.id)
    except ApiError as exc:
        if 400 <= exc.status < 500:
            return run.audit(result.end(Outcome.REFUSED, f"DigitalOcean refused to validate the rollback "
                                        f"({exc.status}): {exc.api_message}; nothing was changed"))
        raise
    for w in check.warnings:
        text = f"{w.code}: {w.message}" + (f" ({', '.join(w.components)})" if w.components else "")
        result.warnings.append(text)
        run.emit("validate", f"warning: {text}", Level.WARN)
    if not check.valid:
        why = f"{check.error.code}: {check.error.message}" if check.error else "no reason given"
        run.emit("validate", f"App Platform says the rollback is not valid: {why}", Level.FAIL)
        return run.audit(result.end(
            Outcome.REFUSED, f"rollback of {app.name} to {_short(target.id)} refused by App Platform's validation "
            f"({why}); nothing was changed", f"pick another deployment (`doops app deployments {app.name}`)"))
    run.emit("validate", f"App Platform validates the rollback to {_short(target.id)}", Level.OK)

    question = (f"Roll {app.name} back from {_short(result.from_deployment)} to {_describe(target)}? App "
                "Platform pins the app to the rollback until it is committed or reverted.")
    if not confirm(question):
        return run.audit(result.end(Outcome.DECLINED, "declined at the confirmation; nothing was changed"))
    if run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, "interrupted before the rollback; nothing was changed"))

    key = run.key(app)
    started = run.clock.monotonic()
    result.timings.requested = run.clock.now()
    journal.write_pending("app-rollback", key, {"app": app.name, "from": result.from_deployment,
                                                "to": target.id, "requested": result.timings.requested})
    run.emit("rollback", f"requesting the rollback of {app.name} to {_short(target.id)}")
    try:
        dep = platform.do.rollback_app(app.id, target.id)
    except ApiError as exc:
        journal.clear_pending("app-rollback", key)
        if 400 <= exc.status < 500:
            result.end(Outcome.REFUSED, f"DigitalOcean refused the rollback ({exc.status}): {exc.api_message}; "
                       "nothing was changed", "use a token with write scope (app:update)"
                       if exc.status in (401, 403) else None)
            run.emit("rollback", result.message, Level.FAIL)
            return run.audit(result)
        raise
    result.deployment = dep.id
    result.pinned = True
    journal.write_pending("app-rollback", key, {"app": app.name, "from": result.from_deployment, "to": target.id,
                                                "requested": result.timings.requested, "deployment": dep.id})
    run.emit("rollback", f"rollback deployment {dep.id} created ({dep.phase}); following it", Level.OK,
             deployment=dep.id)
    return _finish_rollback(run, opts, app, dep.id, result, started, confirm)


def _resume_rollback(run: _Run, opts: RollbackOptions, app: AppInfo, target: AppDeployment | None,
                     result: AppResult, confirm: Callable[[str], bool]) -> AppResult:
    """The app is pinned: a rollback is already under way (or done and not committed). Follow and verify it;
    never send a second one."""
    pinned = app.pinned_deployment
    assert pinned is not None
    key = run.key(app)
    pending = journal.read_pending("app-rollback", key) or {}
    if pending.get("deployment") not in (None, pinned.id):
        pending = {}  # a record of an older rollback: not this one
    rolled_to = pinned.cloned_from or pending.get("to")
    result.deployment, result.to_deployment, result.pinned = pinned.id, rolled_to, True
    result.from_deployment = pending.get("from")
    if target is not None and rolled_to is not None and target.id != rolled_to:
        return run.audit(result.end(
            Outcome.REFUSED, f"{app.name} is pinned to rollback deployment {_short(pinned.id)} (to "
            f"{_short(rolled_to)}), not to {_short(target.id)}; nothing was sent",
            "commit or revert that rollback first (re-run without --to to follow and commit it)"))
    result.resumed = True
    result.timings.requested = _time(pending.get("requested")) or pinned.created_at
    run.emit("resolve", f"{app.name} is pinned to rollback deployment {pinned.id} ({pinned.phase}, to "
             f"{_short(rolled_to)}), requested {_stamp(result.timings.requested)}: following and verifying it, "
             "sending no second rollback")
    if opts.dry_run:
        return run.audit(result.end(Outcome.DRY_RUN, f"dry run: would follow and verify rollback deployment "
                                    f"{_short(pinned.id)}" + (" and commit it" if opts.commit else "")))
    if opts.commit and not confirm(f"Follow the rollback of {app.name} already under way (deployment "
                                   f"{_short(pinned.id)}), verify it and commit it when verified?"):
        return run.audit(result.end(Outcome.DECLINED, "declined at the confirmation; nothing was sent"))
    return _finish_rollback(run, opts, app, pinned.id, result, run.clock.monotonic(), confirm)


def _finish_rollback(run: _Run, opts: RollbackOptions, app: AppInfo, dep_id: str, result: AppResult,
                     started: float, confirm: Callable[[str], bool]) -> AppResult:
    platform, key = run.platform, run.key(app)
    status = _follow_and_verify(run, app, dep_id, result, started)
    if status == "cancelled":
        return run.audit(result.end(
            Outcome.INTERRUPTED, f"interrupted while following rollback deployment {_short(dep_id)}; it goes on and "
            f"{app.name} stays pinned to it", "run the same command again to follow, verify and commit it"))
    if status != "healthy":
        message = _not_verified(result, status, f"rollback deployment {_short(dep_id)}")
        run.emit("verify", message, Level.FAIL)
        if confirm(f"{message}. Revert the rollback (App Platform redeploys the release from before it and "
                   "unpins the app)?"):
            try:
                reverted = platform.do.revert_app_rollback(app.id)
            except ApiError as exc:
                run.emit("revert", f"the revert failed: {exc.message}", Level.FAIL)
                return run.audit(result.end(Outcome.VERIFICATION_FAILED, f"{message}; the revert failed: "
                                            f"{exc.api_message}", "revert it by hand in the control panel"))
            journal.clear_pending("app-rollback", key)
            result.reverted, result.revert_deployment, result.pinned = True, reverted.id, False
            run.emit("revert", f"reverted: deployment {reverted.id} redeploys the release from before the rollback",
                     Level.WARN)
            return run.audit(result.end(Outcome.VERIFICATION_FAILED, f"{message}; reverted (deployment "
                                        f"{_short(reverted.id)})", "the app runs the release it had before; "
                                        "investigate before rolling back again"))
        result.next_steps.append(f"{app.name} stays pinned to {dep_id}: re-run `doops app rollback {app.name}` to "
                                 "follow and commit it, or revert it")
        return run.audit(result.end(Outcome.VERIFICATION_FAILED, message + "; not reverted (still pinned)",
                                    f"re-run `doops app rollback {app.name}` to keep following it"))
    _measure(result)
    if opts.commit:
        try:
            platform.do.commit_app_rollback(app.id)
        except ApiError as exc:
            run.emit("commit", f"the commit failed: {exc.message}", Level.FAIL)
            return run.audit(result.end(Outcome.VERIFICATION_FAILED, f"rollback verified healthy but the commit "
                                        f"failed ({exc.status}): {exc.api_message}; {app.name} stays pinned",
                                        f"re-run `doops app rollback {app.name}` to commit it"))
        result.committed, result.pinned = True, False
        journal.clear_pending("app-rollback", key)
        run.emit("commit", f"rollback committed: {app.name} is unpinned and takes new deployments again", Level.OK)
    else:
        result.next_steps.append(f"{app.name} stays pinned to {dep_id} (--no-commit): commit it with `doops app "
                                 f"rollback {app.name} --commit`, or revert it")
    return _judged(run, result, f"{app.name} rolled back to {_short(result.to_deployment)}")


def _judged(run: _Run, result: AppResult, what: str) -> AppResult:
    took = f"{result.rto_seconds:.1f}s" if result.rto_seconds is not None else "an unknown time"
    if not result.met:
        result.end(Outcome.OBJECTIVE_MISSED, f"{what} and verified healthy in {took}: slower than the compute RTO "
                   f"objective ({result.rto_target_seconds:.0f}s)")
        run.emit("done", result.message, Level.WARN)
        return run.audit(result)
    result.end(Outcome.OK, f"{what} and verified healthy in {took} (RTO target {result.rto_target_seconds:.0f}s)")
    run.emit("done", result.message, Level.DONE, rto_seconds=result.rto_seconds)
    return run.audit(result)


# -- redeploy and restart -------------------------------------------------------------------------------------


def redeploy(platform: Platform, opts: RedeployOptions, *, confirm: Callable[[str], bool],
             events: EventSink = ignore, cancel: Cancel | None = None) -> AppResult:
    """A new deployment of the app's current spec (``force_build``: rebuild from source), followed and
    verified like a rollback."""
    run = _Run(platform, "app redeploy", events, cancel)
    app = find_app(platform, opts.app)
    result = AppResult("redeploy", app.name, _rto_target(platform, opts.rto_seconds), opts.timeout_seconds,
                       app_id=app.id, force_build=opts.force_build)
    question = f"Redeploy {app.name}" + (" with a forced build from source" if opts.force_build else "") + "?"

    def send() -> AppDeployment:
        return platform.do.create_app_deployment(app.id, opts.force_build)

    return run.locked(app, result, lambda: _deploy_locked(run, app, result, question, send, confirm))


def restart(platform: Platform, opts: RestartOptions, *, confirm: Callable[[str], bool],
            events: EventSink = ignore, cancel: Cancel | None = None) -> AppResult:
    """A rolling restart of some components (every one when none is named), followed and verified."""
    run = _Run(platform, "app restart", events, cancel)
    app = find_app(platform, opts.app)
    unknown = [c for c in opts.components if c not in app.components]
    if unknown:
        raise UsageError(f"app {app.name} has no component {', '.join(repr(c) for c in unknown)}",
                         hint="components: " + (", ".join(app.components) or "none"))
    comps = list(dict.fromkeys(opts.components))
    result = AppResult("restart", app.name, _rto_target(platform, opts.rto_seconds), opts.timeout_seconds,
                       app_id=app.id, components=comps)
    question = f"Restart {', '.join(comps) if comps else 'every component'} of {app.name} (a rolling restart)?"

    def send() -> AppDeployment:
        return platform.do.restart_app(app.id, comps or None)

    return run.locked(app, result, lambda: _deploy_locked(run, app, result, question, send, confirm))


def _deploy_locked(run: _Run, app: AppInfo, result: AppResult, question: str, send: Callable[[], AppDeployment],
                   confirm: Callable[[str], bool]) -> AppResult:
    platform, kind = run.platform, f"app-{result.action}"
    key = run.key(app)
    app = platform.do.get_app(app.id)
    result.from_deployment = app.active_deployment.id if app.active_deployment else None
    going = app.in_progress_deployment
    pending = journal.read_pending(kind, key) or {}
    if going is not None and pending.get("deployment") == going.id:
        # A re-run after an interruption: the deployment an earlier run asked for is still on its way.
        result.resumed = True
        result.deployment = result.to_deployment = going.id
        result.timings.requested = _time(pending.get("requested")) or going.created_at
        run.emit("resolve", f"deployment {going.id} was requested by an earlier run: following and verifying it, "
                 "sending no second one")
        return _finish_deploy(run, app, going.id, result, run.clock.monotonic())
    if app.pinned_deployment is not None and result.action == "redeploy":
        return run.audit(result.end(
            Outcome.REFUSED, f"{app.name} is pinned to rollback deployment {_short(app.pinned_deployment.id)}: App "
            "Platform refuses new deployments until it is committed or reverted; nothing was sent",
            f"commit it with `doops app rollback {app.name}`, or revert it"))
    if going is not None:
        return run.audit(result.end(
            Outcome.REFUSED, f"deployment {going.id} of {app.name} is already in progress ({going.phase}, "
            f"{going.cause or 'no cause given'}); nothing was sent", "wait for it (`doops app deployments "
            f"{app.name}`), then run this again"))
    if not confirm(question):
        return run.audit(result.end(Outcome.DECLINED, "declined at the confirmation; nothing was sent"))
    if run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, "interrupted before anything was sent"))
    started = run.clock.monotonic()
    result.timings.requested = run.clock.now()
    run.emit(result.action, f"requesting the {result.action} of {app.name}")
    try:
        dep = send()
    except ApiError as exc:
        if 400 <= exc.status < 500:
            result.end(Outcome.REFUSED, f"DigitalOcean refused the {result.action} ({exc.status}): "
                       f"{exc.api_message}; nothing was changed")
            run.emit(result.action, result.message, Level.FAIL)
            return run.audit(result)
        raise
    result.deployment = result.to_deployment = dep.id
    journal.write_pending(kind, key, {"app": app.name, "deployment": dep.id, "requested": result.timings.requested})
    run.emit(result.action, f"deployment {dep.id} created ({dep.phase}); following it", Level.OK, deployment=dep.id)
    return _finish_deploy(run, app, dep.id, result, started)


def _finish_deploy(run: _Run, app: AppInfo, dep_id: str, result: AppResult, started: float) -> AppResult:
    key, kind = run.key(app), f"app-{result.action}"
    status = _follow_and_verify(run, app, dep_id, result, started)
    if status == "cancelled":
        return run.audit(result.end(
            Outcome.INTERRUPTED, f"interrupted while following deployment {_short(dep_id)}; it goes on",
            "run the same command again to follow and verify it"))
    if status != "timeout" or result.timings.active is not None:
        journal.clear_pending(kind, key)  # still on its way after a timeout: a re-run follows it
    if status != "healthy":
        message = _not_verified(result, status, f"deployment {_short(dep_id)}")
        run.emit("verify", message, Level.FAIL)
        return run.audit(result.end(Outcome.VERIFICATION_FAILED, message,
                                    f"to undo a bad release: `doops app rollback {app.name}`"))
    _measure(result)
    what = {"redeploy": f"{app.name} redeployed", "restart": f"{app.name} restarted"}[result.action]
    return _judged(run, result, what)


# -- history --------------------------------------------------------------------------------------------------


def deployments(platform: Platform, name: str, limit: int = HISTORY_LIMIT) -> DeploymentsResult:
    """The app's deployments, newest first, with how long each was the active one."""
    app = find_app(platform, name)
    deps = platform.do.list_app_deployments(app.id, limit)
    now = platform.clock.now()
    pinned = app.pinned_deployment.id if app.pinned_deployment else None
    rows: list[DeploymentRow] = []
    newer_active: datetime | None = None  # when the next newer deployment became ACTIVE (this one's end)
    for d in sorted(deps, key=lambda d: d.created_at or datetime.min.replace(tzinfo=UTC), reverse=True):
        seconds = None
        if d.active_at is not None:
            end = now if d.phase == "ACTIVE" else (newer_active or d.phase_last_updated_at)
            if end is not None:
                seconds = round(max(0.0, (end - d.active_at).total_seconds()), 3)
            newer_active = d.active_at
        rows.append(DeploymentRow(d.id, d.cause, d.phase, d.created_at, d.active_at, seconds, d.cloned_from,
                                  d.id == pinned))
    return DeploymentsResult(app.name, app.id, pinned, rows)
