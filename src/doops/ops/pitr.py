"""`doops db pitr`: restore a cluster as it was at a point in time into a new cluster, prove it with SQL, and
measure how long it took (RTO) and how close to the point it landed (RPO).

DigitalOcean restores with ``POST /v2/databases`` and a ``backup_restore`` of the source's name and the point
in time. The operation checks the point against the restore window first, asks, sends that one write, waits
on the platform's clock until the new cluster is online, then connects and verifies. It never touches the
source cluster; ``cleanup`` deletes only the cluster it created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from doops import journal
from doops.clients.models import DatabaseCluster
from doops.errors import ApiError, UnknownStateError, UsageError
from doops.ops.audit import Identity
from doops.ops.dbtarget import db_target
from doops.ops.seam import Cancel, Emitter, EventSink, Level, Outcome, ignore, wait_until
from doops.platform import Platform
from doops.serialize import to_data
from doops.units import format_duration

OPERATION = "db pitr"
PITR_DAYS = 7  # DigitalOcean keeps PostgreSQL backups (and so the restore window) for seven days

# List prices (USD a month, per node) of common managed PostgreSQL sizes, to say what a restored cluster
# costs while it runs; a size not listed is shown as unknown rather than guessed.
MONTHLY_USD = {
    "db-s-1vcpu-1gb": 15.0, "db-s-1vcpu-2gb": 30.0, "db-s-2vcpu-4gb": 60.0, "db-s-4vcpu-8gb": 120.0,
    "db-s-6vcpu-16gb": 240.0, "db-s-8vcpu-32gb": 480.0, "db-s-16vcpu-64gb": 960.0,
}


@dataclass
class PitrOptions:
    cluster: str | None
    to: datetime | None  # the point in time; None with latest
    latest: bool = False
    name: str | None = None  # default <cluster>-pitr-<yyyymmdd-hhmm>
    region: str | None = None
    size: str | None = None
    nodes: int | None = None
    verify_sql: list[str] = field(default_factory=list)
    rto_seconds: float | None = None  # default: objectives.database_rto
    rpo_seconds: float | None = None  # default: objectives.database_rpo
    timeout_seconds: float = 3600.0
    cleanup: bool = False
    dry_run: bool = False


@dataclass
class Precheck:
    name: str
    ok: bool
    value: Any
    detail: str
    blocking: bool = True

    @property
    def refuses(self) -> bool:
        return self.blocking and not self.ok


@dataclass
class Window:
    """The restore window: the oldest and latest points a restore can reach."""

    oldest: datetime | None
    latest: datetime
    backups: list[datetime] = field(default_factory=list)


@dataclass
class Plan:
    source: str
    point_in_time: datetime
    name: str
    region: str
    size: str
    nodes: int
    engine: str
    version: str
    monthly_usd: float | None


@dataclass
class NewCluster:
    id: str
    name: str
    region: str
    size: str
    host: str
    port: int


@dataclass
class Timings:
    requested: datetime | None = None
    online: datetime | None = None
    verified: datetime | None = None


@dataclass
class Verification:
    sql: str
    result: Any
    ok: bool


@dataclass
class PitrResult:
    source: str
    point_in_time: datetime | None
    dry_run: bool
    rto_target_seconds: float
    rpo_target_seconds: float
    outcome: Outcome = Outcome.OK
    message: str = ""
    hint: str | None = None
    prechecks: list[Precheck] = field(default_factory=list)
    window: Window | None = None
    plan: Plan | None = None
    new_cluster: NewCluster | None = None
    timings: Timings = field(default_factory=Timings)
    restore_seconds: float | None = None
    restore_point: datetime | None = None
    rpo_seconds: float | None = None
    verification: list[Verification] = field(default_factory=list)
    cleaned_up: bool = False
    met: bool | None = None
    resumed: bool = False
    connection: str | None = None  # the new cluster's URI, password masked
    next_steps: list[str] = field(default_factory=list)
    audit_file: str = ""

    def to_data(self) -> dict[str, Any]:
        data = {f: to_data(getattr(self, f)) for f in (
            "source", "point_in_time", "dry_run", "prechecks", "window", "plan", "new_cluster", "timings",
            "restore_seconds", "rto_target_seconds", "restore_point", "rpo_seconds", "rpo_target_seconds",
            "verification", "cleaned_up", "met", "resumed", "connection", "next_steps", "message")}
        data["outcome"] = self.outcome.value
        return data

    def end(self, outcome: Outcome, message: str, hint: str | None = None) -> PitrResult:
        self.outcome, self.message, self.hint = outcome, message, hint
        return self


@dataclass
class BackupsResult:
    """`doops db backups`: what a restore of the cluster can reach."""

    cluster: str
    created_at: datetime | None
    window: Window
    retention_days: int = PITR_DAYS


# -- the restore window --------------------------------------------------------------------------------------


def find_cluster(platform: Platform, name: str | None) -> tuple[DatabaseCluster, list[DatabaseCluster]]:
    wanted = name or platform.config.databases.primary
    if not wanted:
        raise UsageError("no cluster given", hint="pass CLUSTER or set databases.primary in the config")
    clusters = platform.do.list_database_clusters()
    for c in clusters:
        if c.name == wanted or c.id == wanted:
            return c, clusters
    raise UsageError(f"database cluster {wanted!r} not found",
                     hint="clusters: " + (", ".join(c.name for c in clusters) or "none"))


def restore_window(platform: Platform, cluster: DatabaseCluster) -> Window:
    """Oldest restorable point: the oldest backup kept (at most seven days back, not before the cluster was
    created); latest: now (WAL is archived continuously)."""
    now = platform.clock.now()
    backups = sorted(b.created_at for b in platform.do.list_backups(cluster.id) if b.created_at is not None)
    floor = now - timedelta(days=PITR_DAYS)
    oldest = backups[0] if backups else None
    if oldest is not None:
        oldest = max(oldest, floor)
        if cluster.created_at is not None:
            oldest = max(oldest, cluster.created_at)
    return Window(oldest, now, backups)


def backups(platform: Platform, cluster: str | None) -> BackupsResult:
    source, _ = find_cluster(platform, cluster)
    return BackupsResult(source.name, source.created_at, restore_window(platform, source))


# -- the operation -------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, platform: Platform, opts: PitrOptions, emit: Emitter, cancel: Cancel) -> None:
        self.platform, self.opts, self.emit, self.cancel = platform, opts, emit, cancel
        self.clock = platform.clock
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = Identity.of(self.platform)
        return self._identity

    def audit(self, result: PitrResult) -> PitrResult:
        result.audit_file = str(journal.audit(OPERATION, result.to_data(), platform=self.identity))
        return result


def default_name(source: str, when: datetime) -> str:
    return f"{source}-pitr-{when:%Y%m%d-%H%M}"


def pitr(platform: Platform, opts: PitrOptions, *, confirm: Callable[[str], bool], events: EventSink = ignore,
         cancel: Cancel | None = None) -> PitrResult:
    """Check, plan, confirm, restore, wait, verify, measure (and clean up). Bad input raises UsageError; every
    other ending is the result's ``outcome``."""
    if opts.to is None and not opts.latest:
        raise UsageError("no point in time", hint="pass --to TIME or --latest")
    run = _Run(platform, opts, Emitter(OPERATION, events, platform.clock), cancel or Cancel())
    objectives = platform.config.objectives
    rto = opts.rto_seconds if opts.rto_seconds is not None else float(objectives.database_rto)
    rpo = opts.rpo_seconds if opts.rpo_seconds is not None else float(objectives.database_rpo)
    source, clusters = find_cluster(platform, opts.cluster)
    requested_at = platform.clock.now()
    point = requested_at if opts.latest else opts.to
    assert point is not None
    name = opts.name or default_name(source.name, point)
    result = PitrResult(source.name, point, opts.dry_run, rto, rpo)

    # A re-run after an interruption: the cluster an earlier run created from this source is there (found by
    # the name it recorded, so a relative --to need not give the same name again): only wait and verify.
    pending = journal.read_pending("pitr", run.identity.key(source.id))
    existing = None
    if pending is not None and (opts.name is None or opts.name == pending.get("name")):
        existing = next((c for c in clusters if c.name == pending.get("name")), None)
        if existing is None:  # deleted since: nothing to resume
            journal.clear_pending("pitr", run.identity.key(source.id))
    if existing is not None and pending is not None:
        name = existing.name
        result.resumed = True
        result.point_in_time = point = _time(pending.get("point_in_time")) or point
        result.timings.requested = _time(pending.get("requested"))
        run.emit("resolve", f"{name} was created by an earlier run (requested "
                 f"{_stamp(result.timings.requested)}): waiting and verifying only, sending no create")
        result.plan = _plan(source, point, name, opts)
        if opts.dry_run:
            return run.audit(result.end(Outcome.DRY_RUN, f"dry run: would wait for {name} and verify it"))
        return _await_and_verify(run, source, existing, result)

    window = restore_window(platform, source)
    result.window = window
    result.prechecks = _prechecks(source, point, name, window, clusters, opts)
    for p in result.prechecks:
        run.emit("precheck", f"{p.name}: {p.detail}", Level.OK if p.ok else (Level.FAIL if p.blocking else Level.WARN),
                 check=p.name, ok=p.ok)
    result.plan = _plan(source, point, name, opts)
    failed = [p for p in result.prechecks if p.refuses]
    if failed:
        names = "; ".join(f"{p.name}: {p.detail}" for p in failed)
        return run.audit(result.end(Outcome.REFUSED, f"restore of {source.name} refused, nothing sent: {names}",
                                    "pick a point inside the restore window (`doops db backups`) or another --name"))
    if opts.dry_run:
        run.emit("plan", f"dry run: would restore {source.name} at {_stamp(point)} into {name}; nothing was sent",
                 Level.DONE)
        return run.audit(result.end(Outcome.DRY_RUN, "dry run: nothing was sent"))
    plan = result.plan
    question = (f"Restore {source.name} as it was at {_stamp(point)} into a NEW cluster {name} "
                f"({plan.size} x{plan.nodes}, {plan.region})?")
    if not confirm(question):
        return run.audit(result.end(Outcome.DECLINED, "declined at the confirmation; nothing was created"))
    if run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, "interrupted before the restore; nothing was created"))
    return _restore(run, source, point, result)


def _prechecks(source: DatabaseCluster, point: datetime, name: str, window: Window, clusters: list[DatabaseCluster],
               opts: PitrOptions) -> list[Precheck]:
    checks = [Precheck("source exists", source.status == "online", source.status,
                       f"{source.name} ({source.engine} {source.version}, {source.region}) is {source.status}")]
    if opts.latest:
        checks.append(Precheck("point in window", window.oldest is not None, _stamp(point),
                               "latest: the newest point the archived WAL reaches"
                               if window.oldest is not None else "no backup yet: nothing to restore from"))
    elif point > window.latest:
        checks.append(Precheck("point in window", False, _stamp(point),
                               f"{_stamp(point)} is in the future (now {_stamp(window.latest)})"))
    elif window.oldest is None:
        checks.append(Precheck("point in window", False, _stamp(point), f"{source.name} has no backup yet"))
    elif point < window.oldest:
        checks.append(Precheck("point in window", False, _stamp(point),
                               f"{_stamp(point)} is before the restore window: it runs from {_stamp(window.oldest)} "
                               f"(oldest backup kept, {PITR_DAYS} days at most, not before the cluster's creation) "
                               f"to now"))
    else:
        checks.append(Precheck("point in window", True, _stamp(point),
                               f"inside the window {_stamp(window.oldest)} .. {_stamp(window.latest)}"))
    taken = next((c for c in clusters if c.name == name), None)
    checks.append(Precheck("name free", taken is None, name,
                           f"{name} is free" if taken is None else f"a cluster named {name} exists ({taken.region})"))
    checks.append(Precheck("cluster limit", True, "not exposed",
                           "the API does not expose the account's database limit; a create over it is refused "
                           "by DigitalOcean and reported", blocking=False))
    return checks


def _plan(source: DatabaseCluster, point: datetime, name: str, opts: PitrOptions) -> Plan:
    size = opts.size or source.size
    nodes = opts.nodes or source.num_nodes or 1
    price = MONTHLY_USD.get(size)
    return Plan(source.name, point, name, opts.region or source.region, size, nodes, source.engine, source.version,
                round(price * nodes, 2) if price is not None else None)


def _restore(run: _Run, source: DatabaseCluster, point: datetime, result: PitrResult) -> PitrResult:
    plan = result.plan
    assert plan is not None
    body = {"name": plan.name, "engine": plan.engine, "version": plan.version, "region": plan.region,
            "size": plan.size, "num_nodes": plan.nodes,
            "backup_restore": {"database_name": source.name, "backup_created_at": _stamp(point)}}
    requested = run.clock.now()
    journal.write_pending("pitr", run.identity.key(source.id), {
        "source": source.name, "name": plan.name, "point_in_time": point, "requested": requested})
    run.emit("restore", f"requesting the restore of {source.name} at {_stamp(point)} into {plan.name}")
    try:
        created = run.platform.do.create_database_cluster(body)
    except ApiError as exc:
        journal.clear_pending("pitr", run.identity.key(source.id))
        if 400 <= exc.status < 500:
            result.end(Outcome.REFUSED, f"DigitalOcean refused the restore ({exc.status}): {exc.api_message}; "
                       "nothing was created",
                       "use a token with write scope (database:create)" if exc.status in (401, 403) else None)
            run.emit("restore", result.message, Level.FAIL)
            return run.audit(result)
        raise
    result.timings.requested = requested
    run.emit("restore", f"{created.name} created ({created.status}); waiting for it to be online", Level.OK,
             cluster_id=created.id)
    return _await_and_verify(run, source, created, result)


def _await_and_verify(run: _Run, source: DatabaseCluster, created: DatabaseCluster,
                      result: PitrResult) -> PitrResult:
    platform, clock, opts = run.platform, run.clock, run.opts
    cluster = created
    started = clock.monotonic()

    def online() -> DatabaseCluster | None:
        nonlocal cluster
        try:
            cluster = platform.do.get_database_cluster(created.id)
        except ApiError:
            return None
        run.emit("wait", f"{cluster.name}: {cluster.status}, {format_duration(clock.monotonic() - started)} "
                 f"elapsed (timeout {format_duration(opts.timeout_seconds)})", state=cluster.status)
        return cluster if cluster.status == "online" else None

    waited = wait_until(online, timeout=opts.timeout_seconds, clock=clock, cancel=run.cancel, interval=1.0,
                        max_interval=10.0)
    result.new_cluster = _new(cluster)
    if waited.cancelled or run.cancel.cancelled:
        return run.audit(result.end(
            Outcome.INTERRUPTED, f"interrupted while {cluster.name} was being restored; it exists and keeps "
            "restoring (it is billed while it runs)",
            f"run the same command again to wait and verify, or delete it: doctl databases delete {cluster.id}"))
    if not waited.done:
        return run.audit(result.end(
            Outcome.VERIFICATION_FAILED, f"{cluster.name} not online within {format_duration(opts.timeout_seconds)}"
            f" (last state {cluster.status})", f"it may still finish: run the same command again, or delete it "
            f"(doctl databases delete {cluster.id})"))
    result.timings.online = clock.now()
    run.emit("wait", f"{cluster.name} is online", Level.OK)
    outcome, message = _verify(run, source, cluster, result)
    journal.clear_pending("pitr", run.identity.key(source.id))
    if outcome is not Outcome.OK:
        _finish(run, cluster, result)
        return run.audit(result.end(outcome, message, "see the verification table; the restored cluster was "
                                    + ("deleted" if result.cleaned_up else "kept for inspection")))
    result.timings.verified = clock.now()
    if result.timings.requested is not None:
        result.restore_seconds = round((result.timings.verified - result.timings.requested).total_seconds(), 3)
    rto_ok = result.restore_seconds is None or result.restore_seconds <= result.rto_target_seconds
    rpo_ok = result.rpo_seconds is None or result.rpo_seconds <= result.rpo_target_seconds
    result.met = rto_ok and rpo_ok
    _finish(run, cluster, result)
    if not result.met:
        missed = []
        if not rto_ok:
            missed.append(f"restore took {result.restore_seconds:.1f}s (target {result.rto_target_seconds:.0f}s)")
        if not rpo_ok:
            missed.append(f"restore point {result.rpo_seconds:.1f}s before the target (objective "
                          f"{result.rpo_target_seconds:.0f}s)")
        return run.audit(result.end(Outcome.OBJECTIVE_MISSED, "; ".join(missed)))
    took = f"{result.restore_seconds:.1f}s" if result.restore_seconds is not None else "unknown time (resumed)"
    rpo = f", RPO {result.rpo_seconds:.1f}s" if result.rpo_seconds is not None else ""
    result.end(Outcome.OK, f"{cluster.name} restored at {_stamp(result.point_in_time)} and verified in {took}{rpo}")
    run.emit("done", result.message, Level.DONE, restore_seconds=result.restore_seconds, rpo_seconds=result.rpo_seconds)
    return run.audit(result)


def _verify(run: _Run, source: DatabaseCluster, cluster: DatabaseCluster,
            result: PitrResult) -> tuple[Outcome, str]:
    """Connect with TLS, prove a write (rolled back), find the restore point, run the checks asked for."""
    platform, db = run.platform, run.platform.db
    try:
        target = db_target(platform, cluster, cluster.connection)
    except UnknownStateError as exc:
        return Outcome.VERIFICATION_FAILED, exc.message
    result.connection = target.masked()
    try:
        db.prove_write_rolled_back(target)
        result.verification.append(Verification("write in a transaction (rolled back)", "ok", True))
        run.emit("verify", f"{cluster.name} answers, is not in recovery and takes a write (rolled back)", Level.OK)
    except UnknownStateError as exc:
        result.verification.append(Verification("write in a transaction (rolled back)", exc.message, False))
        return Outcome.VERIFICATION_FAILED, f"{cluster.name} does not take writes: {exc.message}"
    cfg = platform.config.database(source.name)
    table = cfg.heartbeat_table if cfg else None
    point = result.point_in_time
    if table and point is not None:
        try:
            newest = db.newest_heartbeat(target, table)
        except UnknownStateError as exc:
            result.verification.append(Verification(f"newest row of {table}", exc.message, False))
            return Outcome.VERIFICATION_FAILED, f"cannot read {table} on {cluster.name}: {exc.message}"
        result.restore_point = newest
        if newest is None:
            result.verification.append(Verification(f"newest row of {table}", None, False))
            return Outcome.VERIFICATION_FAILED, f"{table} on {cluster.name} is empty: the restore point is unknown"
        result.rpo_seconds = round((point - newest).total_seconds(), 3)
        ok = newest <= point + timedelta(seconds=1)  # heartbeats are written each second: the one at the point
        result.verification.append(Verification(f"newest row of {table} at or before the point", _stamp(newest), ok))
        run.emit("verify", f"restore point {_stamp(newest)}: {result.rpo_seconds:.1f}s before {_stamp(point)}",
                 Level.OK if ok else Level.FAIL)
        if not ok:
            return Outcome.VERIFICATION_FAILED, (f"the restore holds rows newer than the point: {table} reaches "
                                                 f"{_stamp(newest)}, after {_stamp(point)}")
    failed = []
    for sql in run.opts.verify_sql:
        try:
            ok, value = db.check_query(target, sql)
        except UnknownStateError as exc:
            ok, value = False, exc.message
        result.verification.append(Verification(sql, value, ok))
        run.emit("verify", f"{sql} -> {value}", Level.OK if ok else Level.FAIL)
        if not ok:
            failed.append(sql)
    if failed:
        return Outcome.VERIFICATION_FAILED, f"verification failed on {cluster.name}: " + "; ".join(failed)
    return Outcome.OK, ""


def _finish(run: _Run, cluster: DatabaseCluster, result: PitrResult) -> None:
    """--cleanup deletes the cluster this run created (by its id, nothing else); without it, say how to use it."""
    if run.opts.cleanup:
        try:
            run.platform.do.delete_database_cluster(cluster.id)
            result.cleaned_up = True
            run.emit("cleanup", f"deleted {cluster.name} ({cluster.id}), the cluster this run created", Level.OK)
        except ApiError as exc:
            run.emit("cleanup", f"could not delete {cluster.name}: {exc.message}", Level.WARN)
            result.next_steps.append(f"Delete {cluster.name} by hand: doctl databases delete {cluster.id}")
        return
    result.next_steps = [
        f"{cluster.name} runs (and is billed) until deleted: doctl databases delete {cluster.id}",
        f"To use it, repoint application connection strings to {result.connection or cluster.name}.",
        f"Recreate connection pools, firewall rules and read replicas on {cluster.name}: a restore copies data, "
        "not the cluster's settings.",
    ]


def _new(c: DatabaseCluster) -> NewCluster:
    conn = c.connection
    return NewCluster(c.id, c.name, c.region, c.size, conn.host if conn else "", conn.port if conn else 0)


def _time(value: Any) -> datetime | None:
    from doops.times import parse_or_none

    return parse_or_none(value)


def _stamp(t: datetime | None) -> str | None:
    from datetime import UTC

    return None if t is None else t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

