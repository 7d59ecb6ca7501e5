"""`doops failover db`: promote a read replica with pre-checks, proof of writes and a measured RTO.

DigitalOcean's promote call (PUT .../replicas/{name}/promote, 204) detaches the replica into a cluster
of its own. The operation checks before it acts, asks, sends that one write, then polls the API and the
server itself until the new primary takes a write, and times each step on the platform's clock.

It returns a ``FailoverResult`` whose ``outcome`` says how it ended (refused, declined, objective missed...):
expected endings are values; exceptions are left for bad input and faults nobody expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops import journal
from doops.clients import pg
from doops.clients.models import DatabaseCluster, DatabaseReplica
from doops.errors import ApiError, UnknownStateError, UsageError
from doops.ops.audit import Identity
from doops.ops.dbtarget import db_target
from doops.ops.seam import Cancel, Emitter, EventSink, Level, Outcome, ignore, wait_until
from doops.platform import Platform
from doops.serialize import to_data
from doops.times import parse_or_none
from doops.units import format_bytes, format_duration

OPERATION = "failover db"
CANARY_TABLE = "doops_canary"
PROMOTION_EVENT_SKEW = 300.0  # the two clusters' events of one promotion are logged moments apart

# After a promotion: what DigitalOcean does not move by itself (docs/failover.md shows the same list).
REPOINT = (
    "Repoint application connection strings (App Platform env vars or bindings) to {new} at {host}: "
    "the {old} host does not move.",
    "Recreate connection pools on {new}: pools belong to a cluster.",
    "Check the firewall (trusted sources) of {new} allows the apps and droplets.",
    "Create read replicas of {new}: the other replicas still follow {old}.",
    "Add {new} to alert policies and Uptime checks (`doops status monitoring` reports it uncovered).",
    "Update the doops config: databases.primary: {new}, and remove {new} from {old}'s replicas.",
    "Backups and PITR start anew on {new}: its history begins at the promotion.",
)


@dataclass
class FailoverOptions:
    cluster: str | None
    region: str
    replica: str | None = None
    max_lag_bytes: int | None = None  # None: the config's thresholds, the numbers `doops status` judges by
    max_lag_seconds: float | None = None
    accept_data_loss: bool = False
    rto_seconds: float | None = None  # None: the config's objectives.database_rto
    timeout_seconds: float = 600.0
    dry_run: bool = False
    detected_at: datetime | None = None


@dataclass
class Precheck:
    """One pre-check. ``ok`` is what it found; a non-``blocking`` check informs and never refuses (a down
    primary is the usual reason to fail over)."""

    name: str
    ok: bool
    value: Any
    detail: str
    blocking: bool = True

    @property
    def refuses(self) -> bool:
        return self.blocking and not self.ok


@dataclass
class Member:
    member: str
    region: str
    role: str
    status: str
    host: str
    lag: dict[str, Any] | None = None


@dataclass
class Timings:
    promote_sent: datetime | None = None
    api_online: datetime | None = None
    writable: datetime | None = None


@dataclass
class NewPrimary:
    id: str
    name: str
    host: str
    port: int


@dataclass
class FailoverResult:
    cluster: str
    replica: str
    region: str
    dry_run: bool
    rto_target_seconds: float
    outcome: Outcome = Outcome.OK
    state: str = "planned"  # planned | refused | promoted | verified | failed | interrupted | aborted
    message: str = ""  # one line: why it ended as it did (stderr when not ok)
    hint: str | None = None
    prechecks: list[Precheck] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    rto_seconds: float | None = None
    met: bool | None = None
    new_primary: NewPrimary | None = None
    data_loss: dict[str, Any] = field(default_factory=dict)
    already_promoted: bool = False
    promoted_at: datetime | None = None  # when an earlier run (or someone) promoted it, if known
    topology_before: list[Member] = field(default_factory=list)
    topology_after: list[Member] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    audit_file: str = ""

    def to_data(self) -> dict[str, Any]:
        data = {f: to_data(getattr(self, f)) for f in (
            "cluster", "replica", "region", "dry_run", "prechecks", "timings", "rto_seconds", "rto_target_seconds",
            "met", "new_primary", "data_loss")}
        data["outcome"] = self.state  # the documented vocabulary of this command
        data["result"] = self.outcome.value  # the seam's outcome, shared by every operation
        data.update({f: to_data(getattr(self, f)) for f in (
            "message", "already_promoted", "promoted_at", "topology_before", "topology_after", "warnings",
            "next_steps")})
        return data

    def end(self, outcome: Outcome, state: str, message: str, hint: str | None = None) -> FailoverResult:
        self.outcome, self.state, self.message, self.hint = outcome, state, message, hint
        return self


class _Run:
    """One run's context: the platform, its clock, events and cancel token, and (fetched once, when first
    needed) the platform's identity for audit lines and per-platform lock keys."""

    def __init__(self, platform: Platform, opts: FailoverOptions, emit: Emitter, cancel: Cancel) -> None:
        self.platform, self.opts, self.emit, self.cancel = platform, opts, emit, cancel
        self.clock = platform.clock
        thresholds = platform.config.thresholds
        self.max_lag_bytes = opts.max_lag_bytes if opts.max_lag_bytes is not None \
            else int(thresholds.replica_lag_bytes)
        self.max_lag_seconds = opts.max_lag_seconds if opts.max_lag_seconds is not None \
            else float(thresholds.replica_lag_seconds)
        self.detected_at = opts.detected_at
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = Identity.of(self.platform)
        return self._identity

    def key(self, cluster: DatabaseCluster) -> str:
        return self.identity.key(cluster.id)

    def audit(self, result: FailoverResult) -> FailoverResult:
        result.audit_file = str(journal.audit(OPERATION, result.to_data(), platform=self.identity))
        return result

    def target(self, cluster: DatabaseCluster, conn: Any) -> pg.Target:
        return db_target(self.platform, cluster, conn)


# -- the operation -------------------------------------------------------------------------------------------


def failover(platform: Platform, opts: FailoverOptions, *, confirm: Callable[[str], bool],
             events: EventSink = ignore, cancel: Cancel | None = None) -> FailoverResult:
    """Plan, check, confirm, promote, verify, measure. Bad input raises UsageError; every other ending is
    the result's ``outcome``."""
    run = _Run(platform, opts, Emitter(OPERATION, events, platform.clock), cancel or Cancel())
    cluster, clusters = _find_cluster(platform, opts.cluster)
    target_rto = opts.rto_seconds if opts.rto_seconds is not None else float(platform.config.objectives.database_rto)
    pending = journal.read_pending("failover", run.key(cluster))
    replicas = platform.do.list_replicas(cluster.id)
    replica = _pick_replica(opts, replicas, cluster.name)
    if replica is None:
        promoted = _already_promoted(platform, opts, cluster, pending, clusters)
        if promoted is not None:
            return _verify_only(run, cluster, promoted, pending or {}, target_rto)
        listing = ", ".join(f"{r.name} ({r.region})" for r in replicas) or "none"
        raise UsageError(f"no replica of {cluster.name} in region {opts.region}",
                         hint=f"replicas of {cluster.name}: {listing}")
    run.emit("resolve", f"cluster {cluster.name} ({cluster.region}), replica {replica.name} ({replica.region})")
    result = FailoverResult(cluster.name, replica.name, replica.region, opts.dry_run, target_rto)
    try:
        with journal.exclusive(f"failover-{run.key(cluster)}"):
            return _run_locked(run, cluster, replica, replicas, result, confirm)
    except journal.LockHeld as held:
        result.prechecks = [Precheck("no other failover", False, held.holder,
                                     f"a doops failover of {cluster.name} is running ({held.holder})")]
        run.emit("precheck", result.prechecks[0].detail, Level.FAIL)
        result.end(Outcome.REFUSED, "refused", f"another doops failover of {cluster.name} is running "
                   f"({held.holder})", "wait for it; the lock ends with its process")
        return run.audit(result)


def _run_locked(run: _Run, cluster: DatabaseCluster, replica: DatabaseReplica, replicas: list[DatabaseReplica],
                result: FailoverResult, confirm: Callable[[str], bool]) -> FailoverResult:
    opts = run.opts
    result.prechecks, lag = _prechecks(run, cluster, replica)
    result.topology_before = _topology(cluster, replicas, lag)
    if any(p.name == "primary reachable" and not p.ok for p in result.prechecks) and run.detected_at is None:
        result.warnings.append(
            f"{cluster.name} was unreachable before the promote: the outage began earlier than the RTO measured "
            "here (from the promote call); pass --detected-at TIME (RFC 3339) for the real RTO")
    failed = [p for p in result.prechecks if p.refuses]
    if failed:
        names = "; ".join(f"{p.name}: {p.detail}" for p in failed)
        result.end(Outcome.REFUSED, "refused", f"failover of {cluster.name} refused, nothing sent: {names}",
                   "fix the cause, or see --max-lag / --accept-data-loss")
        return run.audit(result)
    if opts.dry_run:
        run.emit("plan", f"dry run: every pre-check passed; would promote {replica.name}; nothing was sent",
                 Level.DONE)
        return run.audit(result.end(Outcome.DRY_RUN, "planned", "dry run: nothing was sent"))
    question = (f"Promote replica {replica.name} ({replica.region}) to a standalone primary, detaching it from "
                f"{cluster.name} ({cluster.region})?")
    if not confirm(question):
        return run.audit(result.end(Outcome.DECLINED, "aborted", "aborted at the confirmation; nothing was changed"))
    if run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, "interrupted", "interrupted before the promote; "
                                    "nothing was changed"))
    return _promote_and_verify(run, cluster, replica, result)


def _find_cluster(platform: Platform, name: str | None) -> tuple[DatabaseCluster, list[DatabaseCluster]]:
    wanted = name or platform.config.databases.primary
    if not wanted:
        raise UsageError("no cluster given", hint="pass CLUSTER or set databases.primary in the config")
    clusters = platform.do.list_database_clusters()
    for c in clusters:
        if c.name == wanted or c.id == wanted:
            return c, clusters
    raise UsageError(f"database cluster {wanted!r} not found",
                     hint="clusters: " + (", ".join(c.name for c in clusters) or "none"))


def _pick_replica(opts: FailoverOptions, replicas: list[DatabaseReplica], cluster: str) -> DatabaseReplica | None:
    listing = ", ".join(f"{r.name} ({r.region})" for r in replicas) or "none"
    if opts.replica:
        match = [r for r in replicas if r.name == opts.replica]
        if match and match[0].region != opts.region:
            raise UsageError(f"replica {opts.replica} is in {match[0].region}, not {opts.region}",
                             hint=f"replicas of {cluster}: {listing}")
        return match[0] if match else None
    in_region = [r for r in replicas if r.region == opts.region]
    if len(in_region) > 1:
        raise UsageError(f"{len(in_region)} replicas of {cluster} in {opts.region}",
                         hint="pick one with --replica: " + ", ".join(r.name for r in in_region))
    return in_region[0] if in_region else None


def _prechecks(run: _Run, cluster: DatabaseCluster,
               replica: DatabaseReplica) -> tuple[list[Precheck], pg.ReplicaLag | None]:
    """Each check with its measured value. The promote itself is the first write: a token without write
    scope is refused by it, and changes nothing (no probe is sent to find out first)."""
    opts, db = run.opts, run.platform.db
    checks: list[Precheck] = []
    checks.append(Precheck("replica online", replica.status == "online", replica.status,
                           f"{replica.name} in {replica.region} is {replica.status}"))
    primary_target: pg.Target | None = None
    try:
        primary_target = run.target(cluster, cluster.connection)
        lsn, _ = db.primary_lsn(primary_target)
        checks.append(Precheck("primary reachable", True, "yes",
                               f"reachable at {primary_target.host}:{primary_target.port}, LSN {lsn}", blocking=False))
    except UnknownStateError as exc:
        primary_target = None
        checks.append(Precheck("primary reachable", False, "no",
                               f"{exc.message} (informational: a down primary does not block a failover)",
                               blocking=False))
    lag: pg.ReplicaLag | None = None
    if primary_target is not None:
        try:
            lag = db.replica_lag(run.target(cluster, replica.connection), primary_target)
        except UnknownStateError as exc:
            checks.append(Precheck("replica lag", False, None, f"cannot measure: {exc.message}"))
        else:
            b, s = lag.lag_bytes or 0, lag.lag_seconds or 0.0
            ok = b <= run.max_lag_bytes and s <= run.max_lag_seconds
            detail = (f"{format_bytes(b)}, {s:.1f}s behind (max {format_bytes(run.max_lag_bytes)}, "
                      f"{run.max_lag_seconds:g}s)" + ("; replay is paused" if lag.replay_paused else ""))
            value = {"bytes": b, "seconds": round(s, 3)}
            if not ok and opts.accept_data_loss:
                checks.append(Precheck("replica lag", True, value,
                                       detail + "; over the limit, accepted with --accept-data-loss"))
            else:
                checks.append(Precheck("replica lag", ok, value, detail))
    elif opts.accept_data_loss:
        checks.append(Precheck("replica lag", True, None,
                               "primary down: lag cannot be measured; writes not yet replicated will be lost "
                               "(accepted with --accept-data-loss)"))
    else:
        checks.append(Precheck("replica lag", False, None,
                               "primary down: lag cannot be measured, so data loss is unknown; "
                               "pass --accept-data-loss to promote anyway"))
    checks.append(Precheck("no other failover", True, "lock held", "this run holds the cluster's failover lock"))
    for p in checks:
        run.emit("precheck", f"{p.name}: {p.detail}", Level.OK if p.ok else (Level.FAIL if p.blocking else Level.WARN),
                 check=p.name, ok=p.ok, value=p.value)
    return checks, lag


def _topology(cluster: DatabaseCluster, replicas: list[DatabaseReplica], lag: pg.ReplicaLag | None,
              focus: str | None = None) -> list[Member]:
    conn = cluster.connection
    members = [Member(cluster.name, cluster.region, "primary", cluster.status,
                      f"{conn.host}:{conn.port}" if conn else "-")]
    if cluster.num_nodes > 1:
        members.append(Member(f"{cluster.name} (standby x{cluster.num_nodes - 1})", cluster.region, "standby node",
                              cluster.status, "managed"))
    for r in replicas:
        host = f"{r.connection.host}:{r.connection.port}" if r.connection else "-"
        measured = None
        if lag is not None and (focus is None or r.name == focus):
            measured = {"bytes": lag.lag_bytes, "seconds": lag.lag_seconds}
        members.append(Member(r.name, r.region, "replica", r.status, host, measured))
    return members


def _promote_and_verify(run: _Run, cluster: DatabaseCluster, replica: DatabaseReplica,
                        result: FailoverResult) -> FailoverResult:
    sent = run.clock.now()
    journal.write_pending("failover", run.key(cluster), {
        "cluster": cluster.name, "cluster_id": cluster.id, "replica": replica.name, "replica_id": replica.id,
        "region": replica.region, "promote_sent": sent, "detected_at": run.detected_at,
        "api_host": run.identity.api_host})
    run.emit("promote", f"sending promote for {replica.name}")
    try:
        run.platform.do.promote_replica(cluster.id, replica.name)
    except ApiError as exc:
        journal.clear_pending("failover", run.key(cluster))
        if exc.status in (401, 403):
            result.end(Outcome.REFUSED, "refused",
                       f"DigitalOcean refused the promote of {replica.name} ({exc.status}): the token lacks write "
                       f"access to databases; nothing was changed",
                       "use a token with write scope (full access, or the custom scope database:update)")
            run.emit("promote", result.message, Level.FAIL)
            return run.audit(result)
        raise
    result.timings.promote_sent = sent
    run.emit("promote", f"promote accepted (204) at {format_stamp(sent)}", Level.OK)
    return _await_writable(run, cluster, replica.id, replica.name, sent, sent, result)


def _await_writable(run: _Run, cluster: DatabaseCluster, new_id: str, new_name: str, sent: datetime | None,
                    promoted_at: datetime | None, result: FailoverResult) -> FailoverResult:
    """Poll the API and the server together, fast at first then backing off, until both say yes.

    ``sent``: when this doops run (or the interrupted one it resumes) sent the promote; the RTO is measured from
    it (or --detected-at). None when doops did not see the promote: the RTO is then unknown, never invented.
    ``promoted_at``: the promotion time as best known (sent, or the API's event), for counting data loss.
    """
    platform, clock, emit = run.platform, run.clock, run.emit
    new: DatabaseCluster | None = None
    new_target: pg.Target | None = None  # built once: with verify-full it costs a CA call to the API
    errors: list[str] = []

    def ready() -> bool:
        nonlocal new, new_target
        if result.timings.api_online is None or new is None:
            try:
                new = platform.do.get_database_cluster(new_id)
                if new.status == "online" and result.timings.api_online is None:
                    result.timings.api_online = clock.now()
                    emit("verify", f"API shows {new.name} online", Level.OK)
            except ApiError as exc:
                errors.append(exc.message)
        if new_target is None and new is not None and new.connection is not None:
            new_target = run.target(new, new.connection)
        if result.timings.writable is None and new_target is not None:
            try:
                platform.db.prove_write(new_target, CANARY_TABLE)
                result.timings.writable = clock.now()
                emit("verify", f"{new_name} accepted a write (pg_is_in_recovery() = false, canary read back)",
                     Level.OK)
            except UnknownStateError as exc:
                errors.append(exc.message)
        return result.timings.api_online is not None and result.timings.writable is not None

    waited = wait_until(ready, timeout=run.opts.timeout_seconds, clock=clock, cancel=run.cancel)
    if new is not None and new.connection is not None:
        result.new_primary = NewPrimary(new.id, new.name, new.connection.host, new.connection.port)
    if waited.cancelled or run.cancel.cancelled:  # a Ctrl-C during the last probe counts too: stop now
        when = format_stamp(sent) or "earlier"
        result.end(Outcome.INTERRUPTED, "interrupted",
                   f"interrupted after promoting {new_name} of {cluster.name} (sent {when}); it is becoming a "
                   "standalone primary", "run the same command again: it only verifies and reports")
        return run.audit(result)
    start = run.detected_at or sent
    writable = result.timings.writable
    if writable is not None and start is not None:
        result.rto_seconds = round((writable - start).total_seconds(), 3)
        result.met = result.rto_seconds <= result.rto_target_seconds
    elif writable is not None:
        result.warnings.append(
            f"the promote of {new_name} was not sent by this doops (no record of it here): its RTO is unknown; "
            "pass --detected-at TIME to measure recovery from the failure")
    result.data_loss = _data_loss(run, cluster, new_target, promoted_at)
    try:
        result.topology_after = _after(platform, cluster, new)
    except ApiError:
        result.topology_after = []
    if not waited.done:
        missing = "API online" if result.timings.api_online is None else "a write accepted"
        last = errors[-1] if errors else "no answer"
        result.end(Outcome.VERIFICATION_FAILED, "failed",
                   f"promoted {new_name}, but no {missing} within {format_duration(run.opts.timeout_seconds)}: "
                   f"{last}", "see the topology and `doops status databases`")
        return run.audit(result)
    _after_promotion(run, cluster, new, result)
    state = "verified" if result.already_promoted else "promoted"
    journal.clear_pending("failover", run.key(cluster))
    for w in result.warnings:
        emit("verify", w, Level.WARN)
    if result.met is False:
        result.end(Outcome.OBJECTIVE_MISSED, state,
                   f"RTO {result.rto_seconds:.1f}s missed the target of {result.rto_target_seconds:.0f}s",
                   "see the timings: API online vs writable")
        return run.audit(result)
    rto = f"RTO {result.rto_seconds:.2f}s" if result.rto_seconds is not None else "RTO unknown"
    result.end(Outcome.OK, state, f"{new_name} is the new primary; {rto} (target {result.rto_target_seconds:.0f}s)")
    emit("done", result.message, Level.DONE, rto_seconds=result.rto_seconds)
    return run.audit(result)


def _after_promotion(run: _Run, old: DatabaseCluster, new: DatabaseCluster | None, result: FailoverResult) -> None:
    """Say what DigitalOcean leaves to the SRE: the old primary is not fenced, and nothing is repointed."""
    if new is None:
        return
    try:
        _, in_recovery = run.platform.db.primary_lsn(run.target(old, old.connection))
    except UnknownStateError:
        result.warnings.append(
            f"{old.name} is unreachable now; if it comes back it will accept writes beside {new.name} "
            "(split-brain risk): keep it fenced (firewall) or delete it before it returns")
    else:
        if not in_recovery:
            result.warnings.append(
                f"split-brain risk: {old.name} still accepts writes beside the new primary {new.name}; stop every "
                f"client writing to {old.name} (repoint them, restrict its firewall) or delete it")
    host = new.connection.host if new.connection else "its host"
    result.next_steps = [step.format(new=new.name, old=old.name, host=host) for step in REPOINT]


def _data_loss(run: _Run, old: DatabaseCluster, new: pg.Target | None, sent: datetime | None) -> dict[str, Any]:
    """Heartbeat rows the old primary wrote before the promotion that the new primary lacks."""
    cfg = run.platform.config.database(old.name)
    table = cfg.heartbeat_table if cfg else None
    if not table or new is None:
        return {}
    if sent is None:
        return {"heartbeat_rows_missing": None, "table": table,
                "detail": "the promotion time is unknown: rows lost cannot be counted"}
    db = run.platform.db
    try:
        new_max = db.heartbeat_last_id(new, table, sent)
    except UnknownStateError as exc:
        return {"heartbeat_rows_missing": None, "detail": f"new primary: {exc.message}"}
    try:
        missing = db.heartbeat_rows_after(run.target(old, old.connection), table, sent, new_max)
    except UnknownStateError:
        return {"heartbeat_rows_missing": None, "table": table,
                "detail": "old primary unreachable: rows it wrote cannot be counted"}
    return {"heartbeat_rows_missing": missing, "table": table}


def _after(platform: Platform, old: DatabaseCluster, new: DatabaseCluster | None) -> list[Member]:
    refreshed = platform.do.get_database_cluster(old.id)
    members = _topology(refreshed, platform.do.list_replicas(old.id), None)
    if new is not None:
        c = new.connection
        members.append(Member(new.name, new.region, "primary (promoted)", new.status,
                              f"{c.host}:{c.port}" if c else "-"))
    return members


@dataclass
class Promoted:
    cluster: DatabaseCluster
    at: datetime | None


def _already_promoted(platform: Platform, opts: FailoverOptions, cluster: DatabaseCluster,
                      pending: dict[str, Any] | None, clusters: list[DatabaseCluster]) -> Promoted | None:
    """The replica this command would promote, found already standing as its own cluster (a re-run, or a
    promotion made elsewhere), with when it happened if the API's events say."""
    if pending and pending.get("region") not in (None, opts.region):
        pending = None
    name = opts.replica or (pending or {}).get("replica")
    candidates = [c for c in clusters if c.id != cluster.id and c.region == opts.region
                  and (c.name == name if name else True)]
    if not candidates:
        return None
    if name:
        found = candidates[0]
        return Promoted(found, promotion_time(platform, found) or promotion_time(platform, cluster))
    # No name: a cluster of the region that the API says was promoted, at the time the primary lost a replica.
    ours = promotion_time(platform, cluster)
    if ours is None:
        return None
    for c in candidates:
        theirs = promotion_time(platform, c)
        if theirs is not None and abs((theirs - ours).total_seconds()) <= PROMOTION_EVENT_SKEW:
            return Promoted(c, theirs)
    return None


def promotion_time(platform: Platform, cluster: DatabaseCluster) -> datetime | None:
    """The latest `cluster_master_promotion` event of a cluster, from the API."""
    try:
        found = [e.create_time for e in platform.do.list_database_events(cluster.id)
                 if e.event_type == "cluster_master_promotion" and e.create_time is not None]
    except ApiError:
        return None
    return max(found) if found else None


def _verify_only(run: _Run, cluster: DatabaseCluster, promoted: Promoted, pending: dict[str, Any],
                 target_rto: float) -> FailoverResult:
    new = promoted.cluster
    sent = parse_or_none(pending.get("promote_sent"))
    when = sent or promoted.at
    run.emit("resolve", f"{new.name} was already promoted" + (f" at {format_stamp(when)}" if when else "")
             + ": verifying only, sending no write to the API")
    detected = parse_or_none(pending.get("detected_at"))
    if run.detected_at is None and detected is not None:
        run.detected_at = detected
    result = FailoverResult(cluster.name, new.name, new.region, run.opts.dry_run, target_rto, state="verified",
                            already_promoted=True, promoted_at=when, timings=Timings(promote_sent=sent),
                            prechecks=[Precheck("already promoted", True, new.status,
                                                f"{new.name} stands alone in {new.region}"
                                                + (f" since {format_stamp(when)}" if when else ""))])
    if run.opts.dry_run:
        return run.audit(result.end(Outcome.DRY_RUN, "planned", "dry run: already promoted; nothing was sent"))
    return _await_writable(run, cluster, new.id, new.name, sent, when, result)


def format_stamp(t: datetime | None) -> str | None:
    """Millisecond UTC timestamps: an RTO of 0.20 s beside times to the second says nothing."""
    from datetime import UTC

    return None if t is None else t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
