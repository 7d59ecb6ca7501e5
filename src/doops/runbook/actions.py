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
    Param("detected_at", doc="RFC 3339 time the outage was detected (RTO counted from it)"),
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
    return from_result(result, ctx.dry_run)


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
    return from_result(redeploy(ctx.platform, opts, confirm=ctx.confirm, events=ctx.events, cancel=ctx.cancel),
                       False)


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
    Action("sandbox.fault", FAULT_PARAMS, run_fault, outputs=FAULT_OUTPUTS,
           doc="Inject a fault into the running sandbox (`doops sandbox fault`), or clear them all with "
               "`fault: clear`. Outputs: {kind, applied, note}."),
)

ACTIONS: dict[str, Action] = {a.name: a for a in _ALL}
