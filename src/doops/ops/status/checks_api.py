"""Apps, Functions and Monitoring checks: judged from the DigitalOcean API and the live URLs."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from doops.clients.models import App, Trigger
from doops.ops.status.engine import Runner, Verdict
from doops.ops.status.model import CheckResult, Status
from doops.units import format_duration

OK, WARN, CRIT, UNKNOWN = Status.OK, Status.WARN, Status.CRIT, Status.UNKNOWN
DONE_PHASES = {"ACTIVE", "SUPERSEDED", "ERROR", "CANCELED"}


def apps_in_scope(r: Runner) -> tuple[list[App], list[str]]:
    """The apps to judge (configured ones, else all) and configured names the API does not know."""
    apps = r.shared("apps", r.app.do.list_apps)
    wanted = [a.name for a in r.app.config.apps]
    if not wanted:
        return apps, []
    by_name = {a.name: a for a in apps}
    return [by_name[n] for n in wanted if n in by_name], [n for n in wanted if n not in by_name]


def collect_apps(r: Runner) -> list[CheckResult]:
    try:
        apps, missing = apps_in_scope(r)
    except Exception as exc:
        return [r.failed("apps", "*", "list", exc)]
    results = [r.verdict("apps", name, "present", CRIT, f"app {name} not found in the account") for name in missing]
    health_paths = {a.name: a.health_path for a in r.app.config.apps}
    default_path = r.app.config.thresholds.default_health_path
    jobs: list[Any] = []
    for a in apps:
        jobs.append(("apps", a.name, "deployment", partial(_deployment, r, a)))
        jobs.append(("apps", a.name, "health", partial(_health, r, a)))
        jobs.append(("apps", a.name, "live-url", partial(_live, r, a, health_paths.get(a.name, default_path))))
    return results + r.fan_out(jobs)


def _deployment(r: Runner, a: App) -> Verdict:
    stuck_after = float(r.app.config.thresholds.deployment_stuck_after)
    active = a.active_deployment
    details: dict[str, Any] = {"active": active.id if active else None}
    for dep in (a.in_progress_deployment, a.pending_deployment):
        if dep is None:
            continue
        details["in_progress"] = dep.id
        if dep.phase == "ERROR":
            return CRIT, f"deployment {dep.id[:8]} failed (ERROR)", details
        age = (r.now - dep.created_at).total_seconds() if dep.created_at else 0.0
        if age > stuck_after:
            return WARN, f"deployment {dep.id[:8]} stuck in {dep.phase} for {format_duration(age)}", details
    if active is None:
        return CRIT, "no active deployment", details
    newest = a.last_deployment_created_at
    if (newest and active.created_at and newest > active.created_at
            and a.in_progress_deployment is None and a.pending_deployment is None):
        # The newest deployment is neither active nor running: find out how it ended (one call, only here).
        latest = r.app.do.latest_deployment(a.id)
        if latest is not None and latest.phase in ("ERROR", "CANCELED"):
            details["latest"] = {"id": latest.id, "phase": latest.phase}
            status = CRIT if latest.phase == "ERROR" else WARN
            return status, f"latest deployment {latest.id[:8]} {latest.phase}; {active.id[:8]} still serves", details
    if active.phase != "ACTIVE":
        return WARN, f"active deployment in phase {active.phase}", details
    return OK, f"deployment {active.id[:8]} ACTIVE", details


def _health(r: Runner, a: App) -> Verdict:
    comps = r.app.do.app_health(a.id)
    details = {c.name: {"state": c.state, "ready": c.replicas_ready, "desired": c.replicas_desired,
                        "cpu_percent": c.cpu_percent, "memory_percent": c.memory_percent} for c in comps}
    if not comps:
        return UNKNOWN, "no component health reported", details
    down = [c for c in comps if c.replicas_ready == 0 and c.replicas_desired > 0]
    short = [c for c in comps if 0 < c.replicas_ready < c.replicas_desired]
    unhealthy = [c for c in comps if c.state not in ("HEALTHY", "UNKNOWN")]
    hot = [c for c in comps if (c.cpu_percent or 0) >= 90 or (c.memory_percent or 0) >= 90]
    if down:
        return CRIT, "no ready replica: " + ", ".join(f"{c.name} 0/{c.replicas_desired}" for c in down), details
    if short or unhealthy:
        names = ", ".join(f"{c.name} {c.replicas_ready}/{c.replicas_desired} {c.state}" for c in short + unhealthy)
        return WARN, "degraded: " + names, details
    if hot:
        return WARN, "saturated: " + ", ".join(
            f"{c.name} cpu {c.cpu_percent}% mem {c.memory_percent}%" for c in hot), details
    ready = ", ".join(f"{c.name} {c.replicas_ready}/{c.replicas_desired}" for c in comps)
    return OK, f"replicas ready {ready}", details


def _live(r: Runner, a: App, path: str) -> Verdict:
    if not a.live_url:
        return WARN, "app has no live URL", {}
    url = a.live_url.rstrip("/") + (path if path.startswith("/") else "/" + path)
    resp = r.app.web.get(url)
    if resp.status is None:
        return CRIT, f"{url} unreachable: {resp.error}", {"url": url}
    details = {"url": url, "status": resp.status, "ms": resp.elapsed_ms}
    if resp.status >= 500:
        return CRIT, f"{url} answered {resp.status}", details
    if resp.status >= 400:
        return WARN, f"{url} answered {resp.status}", details
    return OK, f"{url} answered {resp.status} in {details['ms']}ms", details


# -- Functions ------------------------------------------------------------------------------------------


def collect_functions(r: Runner) -> list[CheckResult]:
    try:
        namespaces = r.app.do.list_namespaces()
    except Exception as exc:
        return [r.failed("functions", "*", "list", exc)]
    wanted = [f.namespace for f in r.app.config.functions]
    by_label = {n.label: n for n in namespaces}
    results = [r.verdict("functions", w, "present", CRIT, f"namespace {w} not found")
               for w in wanted if w not in by_label]
    scope = [by_label[w] for w in wanted if w in by_label] if wanted else namespaces

    def triggers_of(ns: Any) -> list[CheckResult]:
        try:
            triggers = r.app.do.list_triggers(ns.id)
        except Exception as exc:
            return [r.failed("functions", ns.label, "triggers", exc)]
        if any(t.type == "SCHEDULED" and t.cron for t in triggers):
            r.need("croniter")  # judging a schedule imports it: let the background import finish first
        return [r.run_check("functions", f"{ns.label}/{t.name}", "trigger", partial(_trigger, r, t))
                for t in triggers]

    for chunk in r.pool.map(triggers_of, scope):
        results.extend(chunk)
    if not results:
        results.append(r.verdict("functions", "*", "present", OK, "no namespaces in scope"))
    return results


def _trigger(r: Runner, t: Trigger) -> Verdict:
    details: dict[str, Any] = {"type": t.type, "cron": t.cron,
                               "last_run_at": t.last_run_at.isoformat() if t.last_run_at else None}
    if not t.enabled:
        return WARN, "trigger disabled", details
    if t.type != "SCHEDULED" or not t.cron:
        return OK, "enabled", details
    from croniter import croniter

    it = croniter(t.cron, r.now)
    prev: datetime = it.get_prev(datetime)
    before: datetime = it.get_prev(datetime)
    period = (prev - before).total_seconds()
    grace = timedelta(seconds=max(120.0, 0.05 * period))
    # A run is late only once the grace after its fire time has passed; until then the one before counts.
    expected = prev if r.now - prev > grace else before
    details["expected_last_run"] = expected.isoformat()
    if t.last_run_at is None:
        return (WARN, f"never ran; expected at {expected:%Y-%m-%d %H:%M}Z", details) if r.now - prev > grace \
            else (OK, "enabled, first run pending", details)
    if t.last_run_at >= expected - timedelta(seconds=5):
        return OK, f"last run {format_duration((r.now - t.last_run_at).total_seconds())} ago ({t.cron})", details
    missed = 1 + int((expected - t.last_run_at).total_seconds() // period) if period else 1
    status = CRIT if missed >= 2 else WARN
    return status, f"missed {missed} run(s): last {t.last_run_at:%Y-%m-%d %H:%M}Z, expected {expected:%H:%M}Z", details


# -- Monitoring -----------------------------------------------------------------------------------------


def collect_monitoring(r: Runner) -> list[CheckResult]:
    def policies_cover_databases() -> Verdict:
        policies = r.shared("alert_policies", r.app.do.list_alert_policies)
        from doops.ops.status.checks_data import database_clusters

        clusters = database_clusters(r)
        covered = {e for p in policies if p.enabled for e in p.entities}
        missing = [c.name for c in clusters if c.id not in covered]
        details = {"policies": len(policies), "enabled": sum(p.enabled for p in policies), "uncovered": missing}
        if missing:
            return WARN, "no enabled alert policy for database " + ", ".join(missing), details
        return OK, f"{len(clusters)} databases covered by {details['enabled']} enabled policies", details

    def app_alerts() -> Verdict:
        apps, _ = apps_in_scope(r)
        missing = [a.name for a in apps if "DEPLOYMENT_FAILED" not in a.alert_rules]
        details = {a.name: a.alert_rules for a in apps}
        if missing:
            return WARN, "no DEPLOYMENT_FAILED alert on app " + ", ".join(missing), details
        return OK, f"{len(apps)} apps alert on failed deployments", details

    results = [r.run_check("monitoring", "databases", "alert-policies", policies_cover_databases),
               r.run_check("monitoring", "apps", "app-alerts", app_alerts)]
    try:
        checks = r.app.do.list_uptime_checks()
    except Exception as exc:
        return [*results, r.failed("monitoring", "uptime", "list", exc)]

    def uptime(check: Any) -> Verdict:
        if not check.enabled:
            return WARN, "uptime check disabled", {"target": check.target}
        regions = r.app.do.uptime_state(check.id)
        down = sorted(reg for reg, st in regions.items() if st == "DOWN")
        details = {"target": check.target, "regions": regions}
        if down:
            return CRIT, f"DOWN in {', '.join(down)}", details
        if not regions:
            return UNKNOWN, "no region state reported", details
        return OK, f"UP in {len(regions)} regions", details

    results += r.fan_out([("monitoring", f"uptime:{c.name}", "uptime", partial(uptime, c)) for c in checks])
    return results
