"""The actions a runbook step can run: each one calls an operation of ``doops.ops`` with the step's context.

Why a thin layer: the CLI, a runbook and a scheduled drill must run the same code, so an action only maps the
step's ``with`` to the operation's options, passes the run's confirm/events/cancel and dry-run through, and
turns the result into plain data (``doops.serialize.to_data``). ``ok`` is the operation's outcome ``ok`` (or
``dry_run`` in a dry run); any other outcome fails the step with the result's one-line message.

Bad input found only when the step runs (an unknown cluster, app or endpoint; a bad fault spec) ends the step
with outcome ``refused`` and nothing sent; another doops error (unreachable API) with outcome ``error``.
Operations are imported when their step runs, so ``runbook validate`` loads none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import datetime
from typing import Any

from doops.errors import ApiNotFound, DoopsError, UsageError
from doops.ops.seam import Outcome
from doops.runbook.registry import Action, ActionResult, Param, StepContext
from doops.serialize import to_data

# -- shared --------------------------------------------------------------------------------------------------


def with_defaults(params: tuple[Param, ...], given: dict[str, Any]) -> dict[str, Any]:
    """The step's values over each parameter's default (the engine fills them too; a direct call need not)."""
    out = {p.name: p.default for p in params}
    out.update({k: v for k, v in given.items() if v is not None})
    return out


def seconds(value: Any) -> float | None:
    """A duration the engine has already made seconds, or a "90s"-style string from a direct call."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    from doops.units import parse_duration

    return parse_duration(str(value))


def _error_line(exc: DoopsError) -> str:
    return exc.message + (f" ({exc.hint})" if exc.hint else "")


def _guarded(run: Callable[[StepContext, dict[str, Any]], ActionResult]) -> Callable[
        [StepContext, dict[str, Any]], ActionResult]:
    """An operation's bad input (UsageError) is a refused step, nothing sent; another doops error ends the step
    as ``error`` with its one line. Anything else is a bug and propagates."""

    def guarded(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
        try:
            return run(ctx, params)
        except UsageError as exc:
            return ActionResult(False, {}, "refused", _error_line(exc))
        except DoopsError as exc:
            return ActionResult(False, {}, "error", _error_line(exc))

    guarded.__name__ = getattr(run, "__name__", "run")
    guarded.__doc__ = run.__doc__
    return guarded


def from_result(result: Any, dry_run: bool) -> ActionResult:
    """An operation's result as an action's: ok on ``ok`` (or ``dry_run`` when dry-running)."""
    outcome = result.outcome.value
    ok = outcome == "ok" or (dry_run and outcome == "dry_run")
    data = to_data(result)
    outputs = data if isinstance(data, dict) else {"result": data}
    error = None if ok else (result.message or f"ended {outcome}")
    return ActionResult(ok, outputs, outcome, error)


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# -- db.failover ---------------------------------------------------------------------------------------------

FAILOVER_PARAMS = (
    Param("region", required=True, doc="region of the read replica to promote (e.g. ams3)"),
    Param("cluster", doc="the primary cluster (default: the config's databases.primary)"),
    Param("replica", doc="the replica, when the region has more than one"),
    Param("accept_data_loss", "boolean", default=False, doc="promote even when the replica lags"),
    Param("max_lag_bytes", "integer", doc="refuse above this lag (default: the config's thresholds)"),
    Param("max_lag_seconds", "duration", doc="refuse above this lag (default: the config's thresholds)"),
    Param("rto", "duration", doc="recovery-time objective (default: objectives.database_rto)"),
    Param("timeout", "duration", default=600.0, doc="how long to wait for the promoted cluster to take a write"),
    Param("detected_at", doc="RFC 3339 time the outage was detected (RTO counted from it; empty: from the promote)"),
)
FAILOVER_OUTPUTS = (
    "cluster", "replica", "region", "dry_run", "prechecks", "timings", "rto_seconds", "rto_target_seconds", "met",
    "new_primary", "data_loss", "outcome", "result", "message", "already_promoted", "promoted_at",
    "topology_before", "topology_after", "warnings", "next_steps")


@_guarded
def run_failover(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.failover import FailoverOptions, failover
    from doops.times import parse_rfc3339

    p = with_defaults(FAILOVER_PARAMS, params)
    detected = p["detected_at"]
    if isinstance(detected, str) and not detected.strip():
        detected = None  # an input left empty: not known, the RTO counts from the promote
    if isinstance(detected, str):
        try:
            detected = parse_rfc3339(detected)
        except ValueError:
            raise UsageError(f"detected_at {detected!r} is not an RFC 3339 time",
                             hint="e.g. 2026-11-26T05:00:00Z") from None
    opts = FailoverOptions(
        cluster=p["cluster"], region=str(p["region"]), replica=p["replica"],
        max_lag_bytes=int(p["max_lag_bytes"]) if p["max_lag_bytes"] is not None else None,
        max_lag_seconds=seconds(p["max_lag_seconds"]), accept_data_loss=bool(p["accept_data_loss"]),
        rto_seconds=seconds(p["rto"]), timeout_seconds=seconds(p["timeout"]) or 600.0, dry_run=ctx.dry_run,
        detected_at=detected if isinstance(detected, datetime) else None)
    result = failover(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel)
    action = from_result(result, ctx.dry_run)
    if action.error:
        action.error = in_step_terms(action.error, FAILOVER_FLAGS)
    return action


# The failover operation names the command line's flags in its refusals; in a runbook they are the step's
# parameters, so a refusal there says which parameter to set.
FAILOVER_FLAGS = {"--accept-data-loss": "accept_data_loss: true", "--max-lag": "max_lag_seconds/max_lag_bytes"}


def in_step_terms(message: str, flags: dict[str, str]) -> str:
    for flag, param in flags.items():
        message = message.replace(flag, f"{param} (the step's parameter)")
    return message


# -- db.pitr -------------------------------------------------------------------------------------------------

PITR_PARAMS = (
    Param("cluster", doc="the source cluster (default: the config's databases.primary)"),
    Param("to", doc="the point in time: RFC 3339 or relative (-15m); give this or latest"),
    Param("latest", "boolean", default=False, doc="restore to the newest point (now)"),
    Param("name", doc="the new cluster's name (default <cluster>-pitr-<yyyymmdd-hhmm>)"),
    Param("region", doc="the new cluster's region (default: the source's)"),
    Param("size", doc="the new cluster's size slug (default: the source's)"),
    Param("nodes", "integer", doc="the new cluster's node count (default: the source's)"),
    Param("verify_sql", "list", default=(), doc="queries whose first column must be true or non-zero"),
    Param("rto", "duration", doc="restore-time objective (default: objectives.database_rto)"),
    Param("rpo", "duration", doc="restore-point objective (default: objectives.database_rpo)"),
    Param("timeout", "duration", default=3600.0, doc="how long to wait for the new cluster to be online"),
    Param("cleanup", "boolean", default=False, doc="delete the new cluster once verified"),
)
PITR_OUTPUTS = (
    "source", "point_in_time", "dry_run", "prechecks", "window", "plan", "new_cluster", "timings",
    "restore_seconds", "rto_target_seconds", "restore_point", "rpo_seconds", "rpo_target_seconds", "verification",
    "cleaned_up", "met", "resumed", "connection", "next_steps", "message", "outcome")


@_guarded
def run_pitr(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.pitr import PitrOptions, pitr
    from doops.times import parse_point_in_time

    p = with_defaults(PITR_PARAMS, params)
    to = p["to"]
    if (to is None) == (not p["latest"]):
        raise UsageError("db.pitr needs exactly one of to and latest", hint="e.g. with: {latest: true}")
    if isinstance(to, str):
        try:
            to = parse_point_in_time(to, ctx.platform.clock.now())
        except ValueError as exc:
            raise UsageError(f"to: {exc}", hint="RFC 3339 (2026-11-26T14:01:00Z) or relative (-15m)") from None
    opts = PitrOptions(
        cluster=p["cluster"], to=to if isinstance(to, datetime) else None, latest=bool(p["latest"]), name=p["name"],
        region=p["region"], size=p["size"], nodes=int(p["nodes"]) if p["nodes"] is not None else None,
        verify_sql=_str_list(p["verify_sql"]), rto_seconds=seconds(p["rto"]), rpo_seconds=seconds(p["rpo"]),
        timeout_seconds=seconds(p["timeout"]) or 3600.0, cleanup=bool(p["cleanup"]), dry_run=ctx.dry_run)
    result = pitr(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel)
    made = result.new_cluster
    if made is not None and not result.cleaned_up and not result.dry_run \
            and not any(c.get("kind") == "cluster" and c.get("id") == made.id for c in ctx.created):
        # Recorded whatever the outcome: a restore that failed verification still left a cluster to delete.
        ctx.created.append({"kind": "cluster", "id": made.id, "name": made.name})
    return from_result(result, ctx.dry_run)


# -- db.delete -----------------------------------------------------------------------------------------------

DELETE_PARAMS = (Param("cluster", required=True, doc="name or id of a cluster this run created (db.pitr)"),)
DELETE_OUTPUTS = ("id", "name", "deleted", "already_gone")


def run_delete(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """Only a cluster of ``ctx.created``: a runbook can clean up after itself and never delete anything else."""
    wanted = str(params.get("cluster") or "")
    entry = next((c for c in ctx.created if c.get("kind") == "cluster" and wanted in (c.get("id"), c.get("name"))),
                 None)
    if entry is None:
        made = ", ".join(str(c.get("name")) for c in ctx.created if c.get("kind") == "cluster") or "none"
        return ActionResult(False, {}, "refused", f"refusing to delete cluster {wanted!r}: this run did not create "
                                                  f"it (clusters this run created: {made}); nothing was sent")
    outputs: dict[str, Any] = {"id": entry["id"], "name": entry.get("name"), "deleted": False, "already_gone": False}
    if entry.get("deleted"):
        return ActionResult(False, outputs, "refused", f"cluster {entry.get('name')} was already deleted by this run")
    if ctx.dry_run:
        return ActionResult(True, outputs, "dry_run")
    if not ctx.confirm(f"Delete cluster {entry.get('name')} ({entry['id']}), created by this run?"):
        return ActionResult(False, outputs, "declined", "declined at the confirmation; nothing was sent")
    if ctx.cancel.cancelled:
        return ActionResult(False, outputs, "interrupted", "interrupted before the delete; nothing was sent")
    try:
        ctx.platform.do.delete_database_cluster(str(entry["id"]))
    except ApiNotFound:
        outputs["already_gone"] = True
    except DoopsError as exc:
        return ActionResult(False, outputs, "refused" if getattr(exc, "status", 0) in (401, 403) else "error",
                            f"delete of {entry.get('name')} failed: {_error_line(exc)}")
    entry["deleted"] = outputs["deleted"] = True
    return ActionResult(True, outputs, "ok")


# -- cdn.purge -----------------------------------------------------------------------------------------------

PURGE_PARAMS = (
    Param("paths", "list", default=(), doc="object paths or dir/* wildcards (a string is one path)"),
    Param("endpoint", doc="endpoint id, origin, hostname, custom domain or bucket (default: the only one)"),
    Param("all", "boolean", default=False, doc="purge everything cached ('*')"),
    Param("fold", "integer", doc="more than this many paths in one directory: purge dir/* instead"),
    Param("verify", "boolean", default=True, doc="check each purged file is fresh at the edge"),
    Param("wait", "duration", default=60.0, doc="how long stale files are checked again"),
)
PURGE_OUTPUTS = ("endpoint", "requested", "folded", "batches", "verification", "duration_seconds", "outcome")


@_guarded
def run_purge(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.cdn import PurgeOptions, purge

    p = with_defaults(PURGE_PARAMS, params)
    wait = seconds(p["wait"])
    opts = PurgeOptions(paths=_str_list(p["paths"]), endpoint=p["endpoint"], purge_all=bool(p["all"]),
                        fold=int(p["fold"]) if p["fold"] is not None else None, verify=bool(p["verify"]),
                        wait_seconds=60.0 if wait is None else wait, dry_run=ctx.dry_run)
    result = purge(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel)
    return from_result(result, ctx.dry_run)


# -- app.rollback / app.redeploy / app.restart ---------------------------------------------------------------

_APP_COMMON = (
    Param("rto", "duration", doc="compute recovery-time objective (default: objectives.compute_rto)"),
    Param("timeout", "duration", default=600.0, doc="how long to follow the deployment and verify it"),
)
ROLLBACK_PARAMS = (
    Param("app", required=True, doc="app name or id"),
    Param("to", doc="deployment id (or a unique prefix of 6+) to roll back to (default: the previous one)"),
    Param("commit", "boolean", default=True, doc="commit the rollback once verified"),
    *_APP_COMMON,
)
REDEPLOY_PARAMS = (
    Param("app", required=True, doc="app name or id"),
    Param("force_build", "boolean", default=False, doc="rebuild from source"),
    Param("require_healthy", "boolean", default=True,
          doc="false: pass once the deployment is ACTIVE, healthy or not (a drill deploying a known-bad release "
              "it then recovers from); the outputs still say what health was seen"),
    *_APP_COMMON,
)
RESTART_PARAMS = (
    Param("app", required=True, doc="app name or id"),
    Param("components", "list", default=(), doc="components to restart (default: every one)"),
    *_APP_COMMON,
)
APP_OUTPUTS = (
    "action", "app", "app_id", "dry_run", "from_deployment", "to_deployment", "deployment", "components",
    "force_build", "warnings", "phases", "health", "timings", "rto_seconds", "rto_target_seconds", "met",
    "committed", "pinned", "reverted", "revert_deployment", "resumed", "next_steps", "message", "outcome")


@_guarded
def run_rollback(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.app import RollbackOptions, rollback

    p = with_defaults(ROLLBACK_PARAMS, params)
    to = str(p["to"]).strip() if p["to"] else None
    opts = RollbackOptions(app=str(p["app"]), to=to, commit=bool(p["commit"]), rto_seconds=seconds(p["rto"]),
                           timeout_seconds=seconds(p["timeout"]) or 600.0, dry_run=ctx.dry_run)
    return from_result(rollback(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel),
                       ctx.dry_run)


def _app_plan(ctx: StepContext, action: str, app_name: str, components: list[str], rto: float | None,
              timeout: float, force_build: bool = False) -> ActionResult:
    """A dry run of redeploy/restart (the operations have no dry-run mode of their own): find the app and its
    components by reading only, and say what would be sent."""
    from doops.ops.app import AppResult, find_app

    app = find_app(ctx.platform, app_name)
    target = rto if rto is not None else float(ctx.platform.config.objectives.compute_rto)
    unknown = [c for c in components if c not in app.components]
    if unknown:
        raise UsageError(f"app {app.name} has no component {', '.join(repr(c) for c in unknown)}",
                         hint="components: " + (", ".join(app.components) or "none"))
    result = AppResult(action, app.name, target, timeout, dry_run=True, app_id=app.id,
                       components=list(dict.fromkeys(components)), force_build=force_build)
    what = ", ".join(result.components) if result.components else "every component"
    detail = f"restart {what} of" if action == "restart" else "redeploy"
    result.end(Outcome.DRY_RUN, f"dry run: would {detail} {app.name}; nothing was sent")
    return from_result(result, True)


@_guarded
def run_redeploy(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.app import RedeployOptions, redeploy

    p = with_defaults(REDEPLOY_PARAMS, params)
    timeout = seconds(p["timeout"]) or 600.0
    if ctx.dry_run:
        return _app_plan(ctx, "redeploy", str(p["app"]), [], seconds(p["rto"]), timeout, bool(p["force_build"]))
    opts = RedeployOptions(app=str(p["app"]), force_build=bool(p["force_build"]), rto_seconds=seconds(p["rto"]),
                           timeout_seconds=timeout)
    result = redeploy(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel)
    out = from_result(result, False)
    if not out.ok and not p["require_healthy"] and result.outcome is Outcome.VERIFICATION_FAILED \
            and result.timings.active is not None:
        # Deployed and ACTIVE; only its health failed, which this step was told to expect.
        out = ActionResult(True, out.outputs, result.outcome.value)
    return out


@_guarded
def run_restart(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.app import RestartOptions, restart

    p = with_defaults(RESTART_PARAMS, params)
    components = [c.strip() for c in _str_list(p["components"])]
    timeout = seconds(p["timeout"]) or 600.0
    if ctx.dry_run:
        return _app_plan(ctx, "restart", str(p["app"]), components, seconds(p["rto"]), timeout)
    opts = RestartOptions(app=str(p["app"]), components=components, rto_seconds=seconds(p["rto"]),
                          timeout_seconds=timeout)
    return from_result(restart(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel),
                       False)


# -- app.failover --------------------------------------------------------------------------------------------

APP_FAILOVER_PARAMS = (
    Param("region", required=True, doc="region of the standby app (ams3 or an App Platform region)"),
    Param("app", doc="the app whose record moves (default: the app of the one dns.failover_records entry)"),
    Param("record", doc="the failover record, e.g. api.learnhub.example (default: the app's)"),
    Param("timeout", "duration", default=300.0, doc="how long to verify the name servers and the standby"),
)
APP_FAILOVER_OUTPUTS = (
    "app", "standby", "region", "record", "nameservers", "timings", "dns_switched_seconds",
    "dns_rto_target_seconds", "clients_switched_by_seconds", "compute_rto_target_seconds", "met", "warnings",
    "outcome", "message", "dry_run", "already_pointing", "prechecks", "standby_url")


@_guarded
def run_app_failover(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    from doops.ops.failover_app import AppFailoverOptions, failover_app

    p = with_defaults(APP_FAILOVER_PARAMS, params)
    opts = AppFailoverOptions(region=str(p["region"]).strip(), app=p["app"], record=p["record"],
                              timeout_seconds=seconds(p["timeout"]) or 300.0, dry_run=ctx.dry_run)
    return from_result(failover_app(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel),
                       ctx.dry_run)


# -- dns.switch ----------------------------------------------------------------------------------------------

DNS_SWITCH_PARAMS = (
    Param("name", required=True, doc="the record, fully qualified (api.learnhub.example)"),
    Param("value", required=True, doc="the new value (a host name for CNAME, an address for A)"),
    Param("type", default="CNAME", doc="the record's type", choices=("A", "AAAA", "CNAME", "TXT")),
    Param("domain", doc="the record's domain (default: its dns.failover_records entry, else the name's parent)"),
    Param("ttl", "integer", doc="a new TTL (default: keep the record's)"),
    Param("timeout", "duration", default=300.0, doc="how long to wait for every name server to answer it"),
)
DNS_SWITCH_OUTPUTS = ("name", "type", "domain", "id", "old", "new", "ttl", "changed", "nameservers",
                      "switched_seconds", "outcome")


def _domain_of(ctx: StepContext, fq: str, given: str | None) -> str:
    from doops.ops.dns_check import record_fqdn

    if given:
        return given.strip().rstrip(".").lower()
    for rec in ctx.platform.config.dns.failover_records:
        if record_fqdn(rec) == fq:
            return rec.domain.rstrip(".").lower()
    if fq.count(".") < 3:  # "example.com." is an apex: give its domain to make that explicit
        raise UsageError(f"no domain for {fq.rstrip('.')}", hint="give domain: in the step's with")
    return fq.split(".", 1)[1].rstrip(".")


@_guarded
def run_dns_switch(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """Point one record at a value (PUT, skipped when it already does), then ask every configured name server
    until each answers it: the cutover is done when clients can be told, not when the API said 200."""
    from doops.clients import dns
    from doops.ops.dns_check import ask_all
    from doops.ops.seam import wait_until

    p = with_defaults(DNS_SWITCH_PARAMS, params)
    rtype = str(p["type"]).upper()
    fq = dns.fqdn(str(p["name"]))
    domain = _domain_of(ctx, fq, p["domain"])
    hostname = rtype == "CNAME"
    new = dns.fqdn(str(p["value"])) if hostname else str(p["value"]).strip()
    found = ctx.platform.do.list_domain_records(domain, name=fq.rstrip("."), rtype=rtype)
    if not found:
        raise UsageError(f"no {rtype} record {fq.rstrip('.')} in domain {domain}",
                         hint="create it first; dns.switch only repoints an existing record")
    rec = found[0]
    old = dns.fqdn(rec.data) if hostname else rec.data
    ttl = int(p["ttl"]) if p["ttl"] is not None else rec.ttl
    out: dict[str, Any] = {"name": fq.rstrip("."), "type": rtype, "domain": domain, "id": rec.id, "old": old,
                           "new": new, "ttl": ttl, "changed": False, "nameservers": [], "switched_seconds": None}
    changing = old != new or ttl != rec.ttl
    if ctx.dry_run:
        return ActionResult(True, {**out, "outcome": "dry_run"}, "dry_run")
    clock = ctx.platform.clock
    started = clock.monotonic()
    if changing:
        if not ctx.confirm(f"Repoint {fq.rstrip('.')} {rtype} from {old} to {new}?"):
            return ActionResult(False, {**out, "outcome": "declined"}, "declined",
                                "declined at the confirmation; nothing was sent")
        if ctx.cancel.cancelled:
            return ActionResult(False, {**out, "outcome": "interrupted"}, "interrupted",
                                "interrupted before the PUT; nothing was sent")
        ctx.platform.do.update_domain_record(domain, rec.id, {"type": rtype, "name": rec.name, "data": new,
                                                              "ttl": ttl})
        out["changed"] = True
    servers: dict[str, dict[str, Any]] = {}

    def every_server_answers() -> bool:
        for a in ask_all(ctx.platform, dns.query, fq, rtype):
            seen = servers.setdefault(a.server, {"server": a.server, "answer": None, "error": None})
            if a.answer is None:
                seen["error"] = a.error
                continue
            seen["answer"], seen["error"] = a.answer.values(rtype, fq), None
            if not a.answer.authoritative:
                seen["error"] = "not authoritative (AA unset)"
        return bool(servers) and all(s["answer"] == [new] and s["error"] is None for s in servers.values())

    waited = wait_until(every_server_answers, timeout=seconds(p["timeout"]) or 300.0, clock=clock,
                        cancel=ctx.cancel)
    out["nameservers"] = list(servers.values())
    if waited.cancelled:
        return ActionResult(False, {**out, "outcome": "interrupted"}, "interrupted",
                            f"interrupted while verifying {fq.rstrip('.')}"
                            + (" (the record was updated)" if out["changed"] else ""))
    if not waited.done:
        lagging = ", ".join(f"{s['server']} ({s['error'] or ', '.join(s['answer'] or []) or 'no answer'})"
                            for s in servers.values() if s["answer"] != [new] or s["error"])
        return ActionResult(False, {**out, "outcome": "verification_failed"}, "verification_failed",
                            f"not every name server answers {new} for {fq.rstrip('.')}: {lagging}")
    out["switched_seconds"] = round(clock.monotonic() - started, 3)
    return ActionResult(True, {**out, "outcome": "ok"}, "ok")


# -- sandbox.fault -------------------------------------------------------------------------------------------


def _fault_classes() -> tuple[type[Any], ...]:
    from doops.sandbox import faults_spec

    return faults_spec.ALL


_TYPES = {"int": "integer", "float": "number", "bool": "boolean"}


def _fault_params() -> tuple[Param, ...]:
    """``fault`` (the kind), ``target`` (the kind's first field: the cluster, replica or app it breaks), then
    every field any kind has, typed from its annotation; each kind takes only its own."""
    specs = _fault_classes()
    out = [Param("fault", required=True, doc="the fault kind", choices=tuple(c.kind for c in specs)),
           Param("target", doc="the kind's first field: db-stop's cluster, db-lag's replica, app-unhealthy's and "
                               "bad-release's app"),
           Param("dir", doc="the sandbox directory (default $DOOPS_SANDBOX_DIR, as `doops sandbox`)")]
    seen = {p.name for p in out}
    for cls in specs:
        for f in fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            base = str(f.type).split("|")[0].strip()
            kinds = ", ".join(c.kind for c in specs if f.name in {g.name for g in fields(c)})
            out.append(Param(f.name, _TYPES.get(base, "string"), doc=f"field of {kinds}"))
    return tuple(out)


FAULT_PARAMS = _fault_params()
FAULT_OUTPUTS = ("kind", "applied", "note")


def fault_spec(params: dict[str, Any]) -> Any:
    """The typed spec a step's ``with`` describes; UsageError naming a field the kind does not take or a bad
    value (the spec's own check), so nothing is sent."""
    specs = _fault_classes()
    kind = str(params.get("fault") or "")
    cls = next((c for c in specs if c.kind == kind), None)
    if cls is None:
        raise UsageError(f"unknown fault {kind!r}", hint="faults: " + ", ".join(c.kind for c in specs))
    own = [f.name for f in fields(cls)]
    wire: dict[str, Any] = {"kind": kind}
    given = {k: v for k, v in params.items() if k not in ("fault", "dir") and v is not None}
    if "target" in given:
        if not own:
            raise UsageError(f"fault {kind} takes no target", hint="remove target:")
        if own[0] in given and given[own[0]] != given["target"]:
            raise UsageError(f"fault {kind}: target and {own[0]} disagree", hint=f"give only {own[0]}:")
        given.setdefault(own[0], given.pop("target"))
        given.pop("target", None)
    extra = sorted(set(given) - set(own))
    if extra:
        raise UsageError(f"fault {kind} does not take {', '.join(extra)}",
                         hint=f"{kind} takes: " + (", ".join(own) or "nothing"))
    wire.update(given)
    try:
        return cls.from_wire(wire)
    except ValueError as exc:
        raise UsageError(str(exc), hint=f"{kind} takes: " + (", ".join(own) or "nothing")) from None


@_guarded
def run_fault(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """Break (or, with ``fault: clear``, mend) the running sandbox; a dry run checks the spec and that the
    sandbox runs, and injects nothing."""
    from doops.ops import sandbox as ops
    from doops.sandbox.control import resolve_dir

    spec = fault_spec(params)
    d = resolve_dir(params.get("dir"))
    if ctx.dry_run:
        ops.require_running(d)
        return ActionResult(True, {"kind": spec.kind, "applied": {}, "note": "dry run: not injected"}, "dry_run")
    if ctx.cancel.cancelled:
        return ActionResult(False, {}, "interrupted", "interrupted before the fault was sent")
    applied = ops.fault(d, spec)
    return ActionResult(True, to_data(applied), "ok")


# -- writes for data: s3.put, s3.delete, sql.exec, cache.delete ----------------------------------------------
#
# Each is destructive (listed and confirmed before the run), sends nothing in a dry run (a delete by prefix or
# pattern lists what it would remove: a read), does its I/O through doops.clients, verifies what it did (the
# object reads back, the keys are gone) and appends one line per write to the audit journal (`doops audit`),
# so an erasure or a release leaves a record of who removed or wrote what, where, when.


def _audit(ctx: StepContext, action: str, record: dict[str, Any]) -> str:
    from doops import journal
    from doops.ops.audit import Identity

    return str(journal.audit(f"runbook {action}", record, platform=Identity.of(ctx.platform)))


def _s3_client(ctx: StepContext, bucket: str, region: str | None) -> tuple[Any, str]:
    from doops.clients import spaces
    from doops.runbook.probes import _bucket_region

    where = str(region or _bucket_region(ctx, bucket))
    return spaces.make_client(ctx.platform.config.spaces, where), where


S3_PUT_PARAMS = (
    Param("bucket", required=True, doc="the bucket"),
    Param("key", required=True, doc="the object's key"),
    Param("body", doc="the object's content as text (give body or file)"),
    Param("file", doc="a local file to upload (give body or file)"),
    Param("content_type", doc="Content-Type (default: guessed from the key, else application/octet-stream)"),
    Param("cache_control", doc="Cache-Control, e.g. public, max-age=31536000, immutable"),
    Param("region", doc="the bucket's region (default: its spaces.buckets entry, else nyc3)"),
    Param("stamp", "boolean", default=False,
          doc="append a line with the write time and a random token, so every run writes a new version (a "
              "canary whose arrival elsewhere can be told from an older copy); output `stamp`"),
)
S3_PUT_OUTPUTS = ("bucket", "key", "region", "etag", "size", "content_type", "cache_control", "stamp", "written_at",
                  "dry_run", "outcome", "audit_file")


@_guarded
def run_s3_put(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """PUT one object, then HEAD it: the step passes when the bucket serves the ETag the PUT answered."""
    import mimetypes
    import uuid
    from pathlib import Path

    from doops.clients import spaces

    p = with_defaults(S3_PUT_PARAMS, params)
    bucket, key = str(p["bucket"]).strip(), str(p["key"])
    if not bucket or not key or key.startswith("/"):
        raise UsageError(f"s3.put needs a bucket and a key not starting with '/' (got {bucket!r}, {key!r})",
                         hint="e.g. with: {bucket: learnhub-media, key: static/app.js, file: dist/app.js}")
    if (p["body"] is None) == (p["file"] is None):
        raise UsageError("s3.put needs exactly one of body and file", hint="e.g. with: {body: hello} or {file: a.js}")
    if p["file"] is not None:
        path = Path(str(p["file"])).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"s3.put cannot read file {str(path)!r}: {exc.strerror or exc}",
                             hint="give a readable local file") from None
    else:
        data = str(p["body"]).encode("utf-8")
    now = ctx.platform.clock.now()
    stamp = None
    if p["stamp"]:
        stamp = f"{to_data(now)} {uuid.uuid4().hex}"
        data = data + (b"" if not data or data.endswith(b"\n") else b"\n") + stamp.encode() + b"\n"
    ctype = p["content_type"] or mimetypes.guess_type(key)[0] or "application/octet-stream"
    client, region = _s3_client(ctx, bucket, p["region"])
    out: dict[str, Any] = {"bucket": bucket, "key": key, "region": region, "etag": None, "size": len(data),
                           "content_type": ctype, "cache_control": p["cache_control"], "stamp": stamp,
                           "written_at": None, "dry_run": ctx.dry_run, "audit_file": None}
    if ctx.dry_run:
        return ActionResult(True, {**out, "outcome": "dry_run"}, "dry_run")
    if not ctx.confirm(f"Write {bucket}/{key} ({len(data)} bytes)?"):
        return ActionResult(False, {**out, "outcome": "declined"}, "declined", "declined; nothing was sent")
    if ctx.cancel.cancelled:
        return ActionResult(False, {**out, "outcome": "interrupted"}, "interrupted", "interrupted; nothing was sent")
    put = spaces.put_object(client, bucket, key, data, content_type=ctype, cache_control=p["cache_control"])
    out["written_at"] = to_data(ctx.platform.clock.now())
    head = spaces.head_object(client, bucket, key)
    out["etag"] = head.etag or put.etag
    ok = head.exists and (put.etag is None or head.etag == put.etag)
    outcome = "ok" if ok else "verification_failed"
    out["audit_file"] = _audit(ctx, "s3.put", {"bucket": bucket, "key": key, "region": region, "etag": out["etag"],
                                               "size": len(data), "outcome": outcome})
    if not ok:
        return ActionResult(False, {**out, "outcome": outcome}, outcome,
                            f"{bucket}/{key} was written but does not read back with ETag {put.etag}")
    return ActionResult(True, {**out, "outcome": outcome}, outcome)


S3_DELETE_PARAMS = (
    Param("bucket", required=True, doc="the bucket"),
    Param("keys", "list", doc="the keys to delete (give keys or prefix; a string is one key)"),
    Param("prefix", doc="delete every object under this prefix, e.g. uploads/42/ (never empty)"),
    Param("region", doc="the bucket's region (default: its spaces.buckets entry, else nyc3)"),
    Param("max_objects", "integer", default=1000,
          doc="refuse, deleting nothing, when the prefix holds more objects than this"),
)
S3_DELETE_OUTPUTS = ("bucket", "region", "prefix", "matched", "deleted", "deleted_count", "errors", "remaining",
                     "cdn_paths", "cdn_prefix", "dry_run", "outcome", "audit_file")


@_guarded
def run_s3_delete(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """Delete keys, or everything under a prefix, then look again: the step passes when none is left."""
    from doops.clients import spaces

    p = with_defaults(S3_DELETE_PARAMS, params)
    bucket = str(p["bucket"]).strip()
    keys = [k for k in _str_list(p["keys"]) if k]
    prefix = p["prefix"]
    if (prefix is None) == (not keys):
        raise UsageError("s3.delete needs exactly one of keys and prefix",
                         hint="e.g. with: {bucket: learnhub-media, prefix: uploads/42/}")
    if prefix is not None and not str(prefix).strip("/ "):
        raise UsageError(f"s3.delete refuses the prefix {prefix!r}: it names the whole bucket",
                         hint="give a prefix such as uploads/42/")
    limit = int(p["max_objects"])
    if limit < 1:
        raise UsageError(f"max_objects must be at least 1, not {limit}", hint="e.g. max_objects: 1000")
    client, region = _s3_client(ctx, bucket, p["region"])
    out: dict[str, Any] = {"bucket": bucket, "region": region, "prefix": prefix, "matched": [], "deleted": [],
                           "deleted_count": 0, "errors": [], "remaining": [], "cdn_paths": [], "cdn_prefix": None,
                           "dry_run": ctx.dry_run,
                           "audit_file": None}
    if prefix is not None:
        matched, more = spaces.list_prefix(client, bucket, str(prefix), limit)
        if more:
            return ActionResult(False, {**out, "matched": matched, "outcome": "refused"}, "refused",
                                f"{bucket}/{prefix} holds more than {limit} object(s): refusing to delete them; "
                                "nothing was sent (raise max_objects if that is meant)")
    else:
        matched = list(dict.fromkeys(keys))
        if len(matched) > limit:
            return ActionResult(False, {**out, "matched": matched, "outcome": "refused"}, "refused",
                                f"{len(matched)} keys given, more than max_objects {limit}; nothing was sent")
    out["matched"] = matched
    # What a CDN in front of the bucket must purge: each deleted key (so that a purge can verify each is gone
    # from the edge), or, when nothing was deleted, the prefix's wildcard (a copy an edge still holds of an
    # object deleted earlier); ``cdn_prefix`` is that wildcard (a CDN path may only end a directory in '*').
    wildcard = f"{prefix}*" if prefix is not None and str(prefix).endswith("/") else None
    out["cdn_prefix"] = wildcard
    if ctx.dry_run:
        paths = matched or ([wildcard] if wildcard else [])
        return ActionResult(True, {**out, "cdn_paths": paths, "outcome": "dry_run"}, "dry_run")
    if not ctx.confirm(f"Delete {len(matched)} object(s) of {bucket}?"):
        return ActionResult(False, {**out, "outcome": "declined"}, "declined", "declined; nothing was sent")
    if ctx.cancel.cancelled:
        return ActionResult(False, {**out, "outcome": "interrupted"}, "interrupted", "interrupted; nothing was sent")
    deleted, errors = spaces.delete_objects(client, bucket, matched) if matched else ([], [])
    out["deleted"], out["deleted_count"] = deleted, len(deleted)
    out["errors"] = [{"key": k, "error": e} for k, e in errors]
    out["cdn_paths"] = deleted or ([wildcard] if wildcard else [])
    if prefix is not None:
        out["remaining"] = spaces.list_prefix(client, bucket, str(prefix), limit)[0]
    else:
        out["remaining"] = [k for k in matched if spaces.head_object(client, bucket, k).exists]
    outcome = "ok" if not errors and not out["remaining"] else "verification_failed"
    out["audit_file"] = _audit(ctx, "s3.delete", {"bucket": bucket, "region": region, "prefix": prefix,
                                                  "deleted": deleted, "errors": out["errors"],
                                                  "remaining": out["remaining"], "outcome": outcome})
    if outcome != "ok":
        left = out["remaining"] or [k for k, _ in errors]
        return ActionResult(False, {**out, "outcome": outcome}, outcome,
                            f"{len(left)} object(s) of {bucket} still there after the delete (e.g. {left[0]})"
                            + (f": {errors[0][1]}" if errors else ""))
    return ActionResult(True, {**out, "outcome": outcome}, outcome)


SQL_EXEC_PARAMS = (
    Param("cluster", required=True, doc="cluster name or id (its connection as the sql probe makes it)"),
    Param("statement", required=True, doc="one SQL statement, run in its own transaction; %(name)s placeholders"),
    Param("params", "object", default={}, doc="values of the placeholders, sent as parameters (never spliced in)"),
    Param("database", doc="the database to connect to (default: the config's, else the API's)"),
    Param("max_rows", "integer", doc="roll back, and fail the step, when the statement touches more rows"),
    Param("timeout", "duration", default=60.0, doc="the statement's timeout on the server"),
)
SQL_EXEC_OUTPUTS = ("cluster", "database", "rowcount", "row", "committed", "dry_run", "outcome", "audit_file")


@_guarded
def run_sql_exec(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """A write (DELETE, UPDATE, INSERT, DDL) on a cluster, committed unless it touched more than ``max_rows``.
    Outputs ``rowcount`` and ``row`` (the first row a RETURNING gave, by column name)."""
    from dataclasses import replace

    from doops.clients import pg
    from doops.ops.dbtarget import db_target
    from doops.ops.pitr import find_cluster

    p = with_defaults(SQL_EXEC_PARAMS, params)
    statement = str(p["statement"]).strip()
    if not statement:
        raise UsageError("sql.exec needs a statement", hint="e.g. statement: delete from t where id = %(id)s")
    values = p["params"] or {}
    if not isinstance(values, dict):
        raise UsageError("sql.exec params must be a mapping of placeholder names to values",
                         hint="e.g. params: {id: 42} with %(id)s in the statement")
    max_rows = int(p["max_rows"]) if p["max_rows"] is not None else None
    if max_rows is not None and max_rows < 0:
        raise UsageError(f"max_rows must be 0 or more, not {max_rows}", hint="e.g. max_rows: 1")
    cluster, _ = find_cluster(ctx.platform, str(p["cluster"]))
    out: dict[str, Any] = {"cluster": cluster.name, "database": None, "rowcount": None, "row": None,
                           "committed": False, "dry_run": ctx.dry_run, "audit_file": None}
    if ctx.dry_run:
        return ActionResult(True, {**out, "database": p["database"], "outcome": "dry_run"}, "dry_run")
    target = db_target(ctx.platform, cluster, cluster.connection)
    if p["database"]:
        target = replace(target, dbname=str(p["database"]))
    out["database"] = target.dbname
    if not ctx.confirm(f"Run on {cluster.name}/{target.dbname}: {statement}?"):
        return ActionResult(False, {**out, "outcome": "declined"}, "declined", "declined; nothing was sent")
    if ctx.cancel.cancelled:
        return ActionResult(False, {**out, "outcome": "interrupted"}, "interrupted", "interrupted; nothing was sent")
    timeout_ms = int((seconds(p["timeout"]) or 60.0) * 1000)
    try:
        done = pg.execute(target, statement, values, max_rows=max_rows, statement_timeout_ms=timeout_ms)
    except DoopsError as exc:
        _audit(ctx, "sql.exec", {"cluster": cluster.name, "database": target.dbname, "statement": statement,
                                 "params": values, "outcome": "error", "error": exc.message})
        raise
    from doops.runbook.probes import _plain

    out.update(rowcount=done.rowcount, committed=done.committed,
               row={k: _plain(v) for k, v in done.row.items()} if done.row is not None else None)
    outcome = "ok" if done.committed else "refused"
    out["audit_file"] = _audit(ctx, "sql.exec", {"cluster": cluster.name, "database": target.dbname,
                                                 "statement": statement, "params": values,
                                                 "rowcount": done.rowcount, "committed": done.committed,
                                                 "outcome": outcome})
    if not done.committed:
        return ActionResult(False, {**out, "outcome": outcome}, outcome,
                            f"the statement touched {done.rowcount} row(s), more than max_rows {max_rows}: rolled "
                            "back, nothing changed")
    return ActionResult(True, {**out, "outcome": outcome}, outcome)


CACHE_DELETE_PARAMS = (
    Param("cache", required=True, doc="the Valkey/Redis cluster's name or id"),
    Param("keys", "list", doc="the keys to delete (give one of keys, prefix and pattern)"),
    Param("prefix", doc="delete every key starting with this text, taken literally (safe with an id in it)"),
    Param("pattern", doc="delete every key matching this glob (SCAN MATCH syntax: * ? [...])"),
    Param("max_keys", "integer", default=10000, doc="refuse, deleting nothing, when more keys match"),
)
CACHE_DELETE_OUTPUTS = ("cache", "pattern", "matched", "keys", "deleted", "remaining", "dry_run", "outcome",
                        "audit_file")


@_guarded
def run_cache_delete(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    """Delete keys of a cache, found with SCAN (never KEYS: it blocks the server), then look again: the step
    passes when none of them is left."""
    from doops.clients import cache
    from doops.ops.pitr import find_cluster

    p = with_defaults(CACHE_DELETE_PARAMS, params)
    keys = [k for k in _str_list(p["keys"]) if k]
    given = [n for n, v in (("keys", keys), ("prefix", p["prefix"]), ("pattern", p["pattern"])) if v]
    if len(given) != 1:
        raise UsageError("cache.delete needs exactly one of keys, prefix and pattern"
                         + (f" (got {', '.join(given)})" if given else ""),
                         hint="e.g. with: {cache: learnhub-cache, prefix: 'learner:42:'}")
    pattern = (cache.glob_escape(str(p["prefix"])) + "*") if p["prefix"] else (str(p["pattern"]) if p["pattern"]
                                                                               else None)
    if pattern is not None and pattern.strip("*") == "":
        raise UsageError(f"cache.delete refuses the pattern {pattern!r}: it matches every key",
                         hint="give a prefix such as 'learner:42:'")
    limit = int(p["max_keys"])
    if limit < 1:
        raise UsageError(f"max_keys must be at least 1, not {limit}", hint="e.g. max_keys: 1000")
    cluster, _ = find_cluster(ctx.platform, str(p["cache"]))
    if cluster.connection is None:
        raise UsageError(f"the API gives no connection for {cluster.name}", hint="is it a cache cluster?")
    try:
        pem = ctx.platform.do.database_ca(cluster.id)
    except ApiNotFound:
        pem = None
    target = cache.CacheTarget.from_connection(
        cluster.connection, ca_pem=pem if "-----BEGIN CERTIFICATE-----" in (pem or "") else None)
    out: dict[str, Any] = {"cache": cluster.name, "pattern": pattern, "matched": 0, "keys": [], "deleted": 0,
                           "remaining": [], "dry_run": ctx.dry_run, "audit_file": None}
    if pattern is not None:
        matched, more = cache.scan_keys(target, pattern, limit)
        if more:
            return ActionResult(False, {**out, "matched": len(matched), "outcome": "refused"}, "refused",
                                f"more than {limit} key(s) of {cluster.name} match {pattern!r}: refusing to delete "
                                "them; nothing was sent (raise max_keys if that is meant)")
    else:
        matched = list(dict.fromkeys(keys))
        if len(matched) > limit:
            return ActionResult(False, {**out, "outcome": "refused"}, "refused",
                                f"{len(matched)} keys given, more than max_keys {limit}; nothing was sent")
    out["matched"], out["keys"] = len(matched), matched
    if ctx.dry_run:
        return ActionResult(True, {**out, "outcome": "dry_run"}, "dry_run")
    if not ctx.confirm(f"Delete {len(matched)} key(s) of {cluster.name}?"):
        return ActionResult(False, {**out, "outcome": "declined"}, "declined", "declined; nothing was sent")
    if ctx.cancel.cancelled:
        return ActionResult(False, {**out, "outcome": "interrupted"}, "interrupted", "interrupted; nothing was sent")
    out["deleted"] = cache.delete_keys(target, matched)
    out["remaining"] = (cache.scan_keys(target, pattern, limit)[0] if pattern is not None
                        else cache.existing(target, matched))
    outcome = "ok" if not out["remaining"] else "verification_failed"
    out["audit_file"] = _audit(ctx, "cache.delete", {"cache": cluster.name, "pattern": pattern, "keys": matched,
                                                     "deleted": out["deleted"], "remaining": out["remaining"],
                                                     "outcome": outcome})
    if out["remaining"]:
        return ActionResult(False, {**out, "outcome": outcome}, outcome,
                            f"{len(out['remaining'])} key(s) of {cluster.name} still there after the delete (e.g. "
                            f"{out['remaining'][0]}): written again meanwhile?")
    return ActionResult(True, {**out, "outcome": outcome}, outcome)


# -- the table -----------------------------------------------------------------------------------------------

_ALL = (
    Action("db.failover", FAILOVER_PARAMS, run_failover, outputs=FAILOVER_OUTPUTS,
           doc="Promote the read replica in `region` (`doops failover db`): pre-checks, proof of writes, RTO. "
               "Outputs: the failover result: new_primary {id, name, host, port}, rto_seconds, met, data_loss "
               "{...}, timings, prechecks, topology_before/after, result (the outcome), outcome (its state)."),
    Action("db.pitr", PITR_PARAMS, run_pitr, outputs=PITR_OUTPUTS,
           doc="Restore a cluster at a point in time into a new cluster (`doops db pitr`), verify, measure; the "
               "new cluster is recorded as made by this run (db.delete may remove it). Outputs: new_cluster "
               "{id, name, region, size, host, port}, restore_seconds, rpo_seconds, met, verification[], plan."),
    Action("db.delete", DELETE_PARAMS, run_delete, outputs=DELETE_OUTPUTS,
           doc="Delete a cluster this run created (db.pitr), and nothing else. Outputs: {id, name, deleted, "
               "already_gone}."),
    Action("cdn.purge", PURGE_PARAMS, run_purge, outputs=PURGE_OUTPUTS,
           doc="Purge CDN paths within DigitalOcean's limits and verify the edge is fresh (`doops cdn purge`). "
               "Outputs: endpoint {id, origin, endpoint, custom_domain}, requested, batches[], verification[] "
               "{path, fresh, state, ...}, duration_seconds."),
    Action("app.rollback", ROLLBACK_PARAMS, run_rollback, outputs=APP_OUTPUTS,
           doc="Roll an app back to a deployment, follow it to ACTIVE, verify healthy, commit (`doops app "
               "rollback`). Outputs: deployment, to_deployment, from_deployment, rto_seconds, met, health, "
               "committed, pinned, reverted."),
    Action("app.redeploy", REDEPLOY_PARAMS, run_redeploy, outputs=APP_OUTPUTS,
           doc="Redeploy an app's current spec, followed and verified (`doops app redeploy`). Outputs as "
               "app.rollback."),
    Action("app.restart", RESTART_PARAMS, run_restart, outputs=APP_OUTPUTS,
           doc="Rolling restart of an app's components, followed and verified (`doops app restart`). Outputs as "
               "app.rollback."),
    Action("app.failover", APP_FAILOVER_PARAMS, run_app_failover, outputs=APP_FAILOVER_OUTPUTS,
           doc="Repoint the app's DNS record at its standby in `region`, verified at every authoritative name "
               "server (`doops failover app`). Outputs: standby, record {domain, name, type, ttl, old, new, id}, "
               "nameservers[], dns_switched_seconds, clients_switched_by_seconds, met, standby_url."),
    Action("dns.switch", DNS_SWITCH_PARAMS, run_dns_switch, outputs=DNS_SWITCH_OUTPUTS,
           doc="Point one DNS record at a value and wait until every configured name server answers it. "
               "Outputs: {name, type, domain, id, old, new, ttl, changed, nameservers[{server, answer, error}], "
               "switched_seconds}."),
    Action("s3.put", S3_PUT_PARAMS, run_s3_put, outputs=S3_PUT_OUTPUTS,
           doc="Write one Spaces object (text body or a local file) and read it back; audited. Outputs: {bucket, "
               "key, region, etag, size, content_type, cache_control, stamp, written_at}."),
    Action("s3.delete", S3_DELETE_PARAMS, run_s3_delete, outputs=S3_DELETE_OUTPUTS,
           doc="Delete Spaces objects by key or prefix (bounded by max_objects), then check none is left; audited. "
               "Outputs: {bucket, region, prefix, matched[], deleted[], deleted_count, errors[], remaining[], "
               "cdn_paths[] (the deleted keys, else PREFIX*: what to purge from a CDN), cdn_prefix (PREFIX*)}."),
    Action("sql.exec", SQL_EXEC_PARAMS, run_sql_exec, outputs=SQL_EXEC_OUTPUTS,
           doc="Run one write statement in a transaction, with parameters; rolled back when it touches more than "
               "max_rows; audited. Outputs: {cluster, database, rowcount, row (RETURNING's first row), committed}."),
    Action("cache.delete", CACHE_DELETE_PARAMS, run_cache_delete, outputs=CACHE_DELETE_OUTPUTS,
           doc="Delete Valkey/Redis keys given, or found by SCAN under a literal prefix or a glob (bounded by "
               "max_keys), then check none is left; audited. Outputs: {cache, pattern, matched, keys[], deleted "
               "(how many existed), remaining[]}."),
    Action("sandbox.fault", FAULT_PARAMS, run_fault, outputs=FAULT_OUTPUTS,
           doc="Inject a fault into the running sandbox (`doops sandbox fault`), or clear them all with "
               "`fault: clear`. Outputs: {kind, applied, note}."),
)

ACTIONS: dict[str, Action] = {a.name: a for a in _ALL}
