"""`doops failover db`: promote a read replica with pre-checks, proof of writes and a measured RTO.

DigitalOcean's promote call (PUT .../replicas/{name}/promote, 204) detaches the replica into a cluster
of its own. This service checks before it acts, asks, sends that one write, then polls the API and the
server itself until the new primary takes a write, and times each step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from doops import journal
from doops.clients import pg
from doops.clients.models import DatabaseCluster, DatabaseReplica
from doops.context import AppContext
from doops.errors import ApiError, Interrupted, OperationFailed, UnknownStateError, UsageError
from doops.ops.audit import Identity
from doops.ops.dbtarget import db_target
from doops.output import TableSection
from doops.times import parse_or_none
from doops.units import format_duration

Events = Callable[[str, str], None]  # (kind, message): progress for the CLI to show on stderr
CANARY_TABLE = "doops_canary"

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
    rto_seconds: float | None = None
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

    @property
    def mark(self) -> str:
        if self.ok:
            return "ok"
        return "FAIL" if self.blocking else "no (info)"


@dataclass
class Member:
    member: str
    region: str
    role: str
    status: str
    host: str
    lag: str


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
    prechecks: list[Precheck]
    timings: Timings
    rto_seconds: float | None
    rto_target_seconds: float
    met: bool | None
    new_primary: NewPrimary | None
    data_loss: dict[str, Any]
    outcome: str  # planned | refused | promoted | verified | failed
    already_promoted: bool = False
    topology_before: list[Member] = field(default_factory=list)
    topology_after: list[Member] = field(default_factory=list)
    audit_file: str = ""
    promoted_at: datetime | None = None  # when an earlier run (or someone) promoted it, if known
    warnings: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    TABLE_COLUMNS: ClassVar[tuple[str, ...]] = (
        "check", "ok", "value", "detail", "member", "region", "role", "status", "host", "lag", "field",
        "warning", "step")

    def to_data(self) -> dict[str, Any]:
        from doops.output import to_data

        data = {f: to_data(getattr(self, f)) for f in (
            "cluster", "replica", "region", "dry_run", "prechecks", "timings", "rto_seconds", "rto_target_seconds",
            "met", "new_primary", "data_loss", "outcome", "already_promoted", "promoted_at", "topology_before",
            "topology_after", "warnings", "next_steps")}
        return data

    def table_sections(self) -> list[TableSection]:
        sections = [TableSection(
            title=f"pre-checks: promote {self.replica} ({self.region}) of {self.cluster}",
            columns=["check", "ok", "value", "detail"],
            rows=[[p.name, p.mark, _human(p.value), p.detail] for p in self.prechecks],
            styles={"ok": "green", "FAIL": "bold red", "no (info)": "yellow"},
        )]
        for title, members in (("topology before", self.topology_before), ("topology after", self.topology_after)):
            if members:
                sections.append(TableSection(
                    title=title, columns=["member", "region", "role", "status", "host", "lag"],
                    rows=[[m.member, m.region, m.role, m.status, m.host, m.lag] for m in members]))
        t = self.timings
        rows: list[list[Any]] = [["outcome", self.outcome]]
        if self.promoted_at is not None:
            rows.append(["promoted at", _stamp(self.promoted_at)])
        if not self.dry_run:
            rows += [["promote sent", _stamp(t.promote_sent)], ["API online", _stamp(t.api_online)],
                     ["writable", _stamp(t.writable)],
                     ["RTO", f"{self.rto_seconds:.2f}s" if self.rto_seconds is not None else "unknown"],
                     ["RTO target", f"{self.rto_target_seconds:.0f}s"],
                     ["met", "-" if self.met is None else ("yes" if self.met else "NO")]]
            if self.new_primary:
                rows.append(["new primary", f"{self.new_primary.name} {self.new_primary.host}:{self.new_primary.port}"])
            if self.data_loss:
                rows.append(["heartbeat rows missing", self.data_loss.get("heartbeat_rows_missing")])
        sections.append(TableSection(title="result", columns=["field", "value"], rows=rows,
                                     styles={"NO": "bold red", "yes": "green"}))
        if self.warnings:
            sections.append(TableSection(title="warnings", columns=["warning"], rows=[[w] for w in self.warnings]))
        if self.next_steps:
            sections.append(TableSection(title="next steps: what to repoint", columns=["step"],
                                         rows=[[s] for s in self.next_steps]))
        return sections


def _stamp(t: datetime | None) -> str | None:
    """Millisecond UTC timestamps: an RTO of 0.20 s beside times to the second says nothing."""
    return None if t is None else t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _human(value: Any) -> Any:
    """Table cells for humans (JSON keeps the structure)."""
    if isinstance(value, dict) and set(value) == {"bytes", "seconds"}:
        b = value["bytes"]
        return f"{'?' if b is None else _bytes(int(b))}, {value['seconds'] or 0:.1f}s behind"
    return value


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# -- resolution ---------------------------------------------------------------------------------------------


def _find_cluster(app: AppContext, name: str | None) -> tuple[DatabaseCluster, list[DatabaseCluster]]:
    wanted = name or app.config.databases.primary
    if not wanted:
        raise UsageError("no cluster given", hint="pass CLUSTER or set databases.primary in the config")
    clusters = app.do.list_database_clusters()
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


def _target(app: AppContext, cluster: DatabaseCluster, conn: Any) -> pg.Target:
    return db_target(app, cluster, conn)


def _heartbeat_table(app: AppContext, cluster: DatabaseCluster) -> str | None:
    cfg = app.config.database(cluster.name)
    return cfg.heartbeat_table if cfg else None


# -- the run ------------------------------------------------------------------------------------------------


class _Run:
    """What one run knows about where it acts: the platform identity (for audit lines and per-platform keys),
    fetched once and only when first needed."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = Identity.of(self.app)
        return self._identity

    def key(self, cluster: DatabaseCluster) -> str:
        return self.identity.key(cluster.id)

    def audit(self, result: FailoverResult) -> Any:
        return journal.audit("failover db", result.to_data(), platform=self.identity)


def failover(app: AppContext, opts: FailoverOptions, confirm: Callable[[str], bool], events: Events) -> FailoverResult:
    """Plan, check, confirm, promote, verify, measure. Raises DoopsError with the exit code to use."""
    run = _Run(app)
    thresholds = app.config.thresholds
    if opts.max_lag_bytes is None:
        opts.max_lag_bytes = int(thresholds.replica_lag_bytes)
    if opts.max_lag_seconds is None:
        opts.max_lag_seconds = float(thresholds.replica_lag_seconds)
    cluster, clusters = _find_cluster(app, opts.cluster)
    target_rto = opts.rto_seconds if opts.rto_seconds is not None else float(app.config.objectives.database_rto)
    pending = journal.read_pending("failover", run.key(cluster))
    replicas = app.do.list_replicas(cluster.id)
    replica = _pick_replica(opts, replicas, cluster.name)
    if replica is None:
        promoted = _already_promoted(app, opts, cluster, pending, clusters)
        if promoted is not None:
            return _verify_only(run, opts, cluster, promoted, pending or {}, target_rto, events)
        listing = ", ".join(f"{r.name} ({r.region})" for r in replicas) or "none"
        raise UsageError(f"no replica of {cluster.name} in region {opts.region}",
                         hint=f"replicas of {cluster.name}: {listing}")
    events("step", f"cluster {cluster.name} ({cluster.region}), replica {replica.name} ({replica.region})")
    try:
        with journal.exclusive(f"failover-{run.key(cluster)}"):
            return _run_locked(run, opts, cluster, replica, replicas, target_rto, confirm, events)
    except journal.LockHeld as held:
        result = _refused(opts, cluster, replica, target_rto,
                          [Precheck("no other failover", False, held.holder,
                                    f"a doops failover of {cluster.name} is running ({held.holder})")])
        run.audit(result)
        raise OperationFailed(f"another doops failover of {cluster.name} is running ({held.holder})",
                              hint="wait for it; the lock ends with its process") from None


def _refused(opts: FailoverOptions, cluster: DatabaseCluster, replica: DatabaseReplica, target_rto: float,
             prechecks: list[Precheck]) -> FailoverResult:
    return FailoverResult(cluster.name, replica.name, replica.region, opts.dry_run, prechecks, Timings(), None,
                          target_rto, None, None, {}, "refused")


def _run_locked(run: _Run, opts: FailoverOptions, cluster: DatabaseCluster, replica: DatabaseReplica,
                replicas: list[DatabaseReplica], target_rto: float, confirm: Callable[[str], bool],
                events: Events) -> FailoverResult:
    app = run.app
    prechecks, lag = _prechecks(app, opts, cluster, replica, events)
    before = _topology(app, cluster, replicas, lag)
    result = FailoverResult(cluster.name, replica.name, replica.region, opts.dry_run, prechecks, Timings(), None,
                            target_rto, None, None, {}, "planned", topology_before=before)
    primary_down = any(p.name == "primary reachable" and not p.ok for p in prechecks)
    if primary_down and opts.detected_at is None:
        result.warnings.append(
            f"{cluster.name} was unreachable before the promote: the outage began earlier than the RTO measured "
            "here (from the promote call); pass --detected-at TIME (RFC 3339) for the real RTO")
    failed = [p for p in prechecks if p.refuses]
    if failed:
        result.outcome = "refused"
        result.audit_file = str(run.audit(result))
        raise_refusal(result, failed)
    if opts.dry_run:
        events("done", f"dry run: every pre-check passed; would promote {replica.name}; nothing was sent")
        result.audit_file = str(run.audit(result))
        return result
    question = (f"Promote replica {replica.name} ({replica.region}) to a standalone primary, detaching it from "
                f"{cluster.name} ({cluster.region})?")
    if not confirm(question):
        result.outcome = "aborted"
        run.audit(result)
        raise Interrupted("aborted at the confirmation; nothing was changed")
    return _promote_and_verify(run, opts, cluster, replica, result, events)


def raise_refusal(result: FailoverResult, failed: list[Precheck]) -> None:
    names = "; ".join(f"{p.name}: {p.detail}" for p in failed)
    raise PrecheckFailed(f"failover of {result.cluster} refused, nothing sent: {names}", result)


class PrecheckFailed(OperationFailed):
    """Pre-checks failed: exit 2, and the checklist is still rendered."""

    def __init__(self, message: str, result: FailoverResult) -> None:
        super().__init__(message, hint="fix the cause, or see --max-lag / --accept-data-loss")
        self.result = result


def _prechecks(app: AppContext, opts: FailoverOptions, cluster: DatabaseCluster, replica: DatabaseReplica,
               events: Events) -> tuple[list[Precheck], pg.ReplicaLag | None]:
    checks: list[Precheck] = []
    checks.append(Precheck("replica online", replica.status == "online", replica.status,
                           f"{replica.name} in {replica.region} is {replica.status}"))
    primary_ok, primary_detail = True, "reachable"
    try:
        primary_target = _target(app, cluster, cluster.connection)
        lsn, _ = pg.primary_lsn(primary_target)
        primary_detail = f"reachable at {primary_target.host}:{primary_target.port}, LSN {lsn}"
    except UnknownStateError as exc:
        primary_ok = False
        primary_detail = f"{exc.message} (informational: a down primary does not block a failover)"
    checks.append(Precheck("primary reachable", primary_ok, "yes" if primary_ok else "no", primary_detail,
                           blocking=False))
    lag: pg.ReplicaLag | None = None
    if primary_ok:
        try:
            lag = pg.replica_lag(_target(app, cluster, replica.connection), primary_target)
        except UnknownStateError as exc:
            checks.append(Precheck("replica lag", False, None, f"cannot measure: {exc.message}"))
        else:
            b, s = lag.lag_bytes or 0, lag.lag_seconds or 0.0
            max_b, max_s = opts.max_lag_bytes or 0, opts.max_lag_seconds or 0.0
            ok = b <= max_b and s <= max_s
            detail = (f"{_bytes(b)}, {s:.1f}s behind (max {_bytes(max_b)}, {max_s:g}s)"
                      + ("; replay is paused" if lag.replay_paused else ""))
            if not ok and opts.accept_data_loss:
                checks.append(Precheck("replica lag", True, {"bytes": b, "seconds": round(s, 3)},
                                       detail + "; over the limit, accepted with --accept-data-loss"))
            else:
                checks.append(Precheck("replica lag", ok, {"bytes": b, "seconds": round(s, 3)}, detail))
    elif opts.accept_data_loss:
        checks.append(Precheck("replica lag", True, None,
                               "primary down: lag cannot be measured; writes not yet replicated will be lost "
                               "(accepted with --accept-data-loss)"))
    else:
        checks.append(Precheck("replica lag", False, None,
                               "primary down: lag cannot be measured, so data loss is unknown; "
                               "pass --accept-data-loss to promote anyway"))
    checks.append(Precheck("no other failover", True, "lock held", "this run holds the cluster's failover lock"))
    if opts.dry_run:
        checks.append(Precheck("token can write", True, "not probed",
                               "a dry run sends no write, not even the probe"))
    elif any(p.refuses for p in checks):
        checks.append(Precheck("token can write", True, "not probed",
                               "an earlier check failed: nothing is sent, not even the probe"))
    else:
        try:
            can, detail = app.do.can_write(cluster.id)
        except ApiError as exc:
            can, detail = False, exc.message
        checks.append(Precheck("token can write", can, "yes" if can else "no", detail))
    for p in checks:
        events("check" if p.ok else ("fail" if p.blocking else "warn"), f"{p.name}: {p.detail}")
    return checks, lag


def _topology(app: AppContext, cluster: DatabaseCluster, replicas: list[DatabaseReplica],
              lag: pg.ReplicaLag | None, focus: str | None = None) -> list[Member]:
    conn = cluster.connection
    members = [Member(cluster.name, cluster.region, "primary", cluster.status,
                      f"{conn.host}:{conn.port}" if conn else "-", "")]
    if cluster.num_nodes > 1:
        members.append(Member(f"{cluster.name} (standby x{cluster.num_nodes - 1})", cluster.region, "standby node",
                              cluster.status, "managed", ""))
    for r in replicas:
        host = f"{r.connection.host}:{r.connection.port}" if r.connection else "-"
        lag_text = ""
        if lag is not None and (focus is None or r.name == focus):
            lag_text = _human({"bytes": lag.lag_bytes, "seconds": lag.lag_seconds})
        members.append(Member(r.name, r.region, "replica", r.status, host, lag_text))
    return members


def _promote_and_verify(run: _Run, opts: FailoverOptions, cluster: DatabaseCluster,
                        replica: DatabaseReplica, result: FailoverResult, events: Events) -> FailoverResult:
    app = run.app
    sent = datetime.now(UTC)
    journal.write_pending("failover", run.key(cluster), {
        "cluster": cluster.name, "cluster_id": cluster.id, "replica": replica.name, "replica_id": replica.id,
        "region": replica.region, "promote_sent": sent, "detected_at": opts.detected_at,
        "api_host": run.identity.api_host})
    promoted = False
    try:
        events("step", f"sending promote for {replica.name}")
        app.do.promote_replica(cluster.id, replica.name)
        promoted = True
        result.timings.promote_sent = sent
        events("check", f"promote accepted (204) at {_stamp(sent)}")
        return _await_writable(run, opts, cluster, replica.id, replica.name, sent, sent, result, events)
    except KeyboardInterrupt:
        result.outcome = "interrupted"
        result.timings.promote_sent = sent
        run.audit(result)
        if not promoted:
            # The request may or may not have reached DigitalOcean: say so, and how to find out.
            raise Interrupted(
                f"interrupted while sending the promote of {replica.name}; it may have been applied",
                hint=f"run the same command again: it sees whether {replica.name} was promoted and verifies it",
            ) from None
        raise Interrupted(
            f"interrupted after promoting {replica.name} of {cluster.name} (sent {sent:%H:%M:%S}Z); "
            "it is becoming a standalone primary",
            hint="run the same command again: it only verifies and reports",
        ) from None


def _await_writable(run: _Run, opts: FailoverOptions, cluster: DatabaseCluster, new_id: str, new_name: str,
                    sent: datetime | None, promoted_at: datetime | None, result: FailoverResult,
                    events: Events) -> FailoverResult:
    """Poll the API and the server together, fast at first then backing off, until both say yes.

    ``sent``: when this doops run (or the interrupted one it resumes) sent the promote; the RTO is measured from
    it (or --detected-at). None when doops did not see the promote: the RTO is then unknown, never invented.
    ``promoted_at``: the promotion time as best known (sent, or the API's event), for counting data loss.
    """
    app = run.app
    deadline = time.monotonic() + opts.timeout_seconds
    delay = 0.05
    new: DatabaseCluster | None = None
    new_target: pg.Target | None = None  # built once: with verify-full it costs a CA call to the API
    api_online: datetime | None = result.timings.api_online
    writable: datetime | None = result.timings.writable
    last_error = ""
    while time.monotonic() < deadline and (api_online is None or writable is None):
        if api_online is None or new is None:
            try:
                new = app.do.get_database_cluster(new_id)
                if new.status == "online" and api_online is None:
                    api_online = datetime.now(UTC)
                    events("check", f"API shows {new.name} online")
            except ApiError as exc:
                last_error = exc.message
        if new_target is None and new is not None and new.connection is not None:
            new_target = _target(app, new, new.connection)
        if writable is None and new_target is not None:
            try:
                writable = _prove_write(new_target)
                events("check", f"{new_name} accepted a write (pg_is_in_recovery() = false, canary read back)")
            except UnknownStateError as exc:
                last_error = exc.message
        if api_online is None or writable is None:
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
    result.timings.api_online, result.timings.writable = api_online, writable
    if new is not None and new.connection is not None:
        result.new_primary = NewPrimary(new.id, new.name, new.connection.host, new.connection.port)
    start = opts.detected_at or sent
    if writable is not None and start is not None:
        result.rto_seconds = round((writable - start).total_seconds(), 3)
        result.met = result.rto_seconds <= result.rto_target_seconds
    elif writable is not None:
        result.warnings.append(
            f"the promote of {new_name} was not sent by this doops (no record of it here): its RTO is unknown; "
            "pass --detected-at TIME to measure recovery from the failure")
    result.data_loss = _data_loss(app, cluster, new_target, promoted_at)
    try:
        result.topology_after = _after(app, cluster, new)
    except ApiError:
        result.topology_after = []
    if api_online is None or writable is None:
        result.outcome = "failed"
        result.audit_file = str(run.audit(result))
        missing = "API online" if api_online is None else "a write accepted"
        raise FailoverFailed(
            f"promoted {new_name}, but no {missing} within {format_duration(opts.timeout_seconds)}: {last_error}",
            result)
    _after_promotion(app, cluster, new, result)
    result.outcome = "verified" if result.already_promoted else "promoted"
    journal.clear_pending("failover", run.key(cluster))
    result.audit_file = str(run.audit(result))
    for w in result.warnings:
        events("warn", w)
    if result.met is False:
        raise FailoverFailed(
            f"RTO {result.rto_seconds:.1f}s missed the target of {result.rto_target_seconds:.0f}s", result)
    rto = f"RTO {result.rto_seconds:.2f}s" if result.rto_seconds is not None else "RTO unknown"
    events("done", f"{new_name} is the new primary; {rto} (target {result.rto_target_seconds:.0f}s)")
    return result


def _after_promotion(app: AppContext, old: DatabaseCluster, new: DatabaseCluster | None,
                     result: FailoverResult) -> None:
    """Say what DigitalOcean leaves to the SRE: the old primary is not fenced, and nothing is repointed."""
    if new is None:
        return
    try:
        _, in_recovery = pg.primary_lsn(_target(app, old, old.connection))
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


class FailoverFailed(OperationFailed):
    def __init__(self, message: str, result: FailoverResult) -> None:
        super().__init__(message, hint="see the topology and `doops status databases`")
        self.result = result


def _prove_write(target: pg.Target) -> datetime:
    """The server itself takes a write: not in recovery, and a canary row written in a transaction reads back."""
    token = uuid.uuid4().hex
    with pg.connect(target, autocommit=False) as conn:
        row = conn.execute("select pg_is_in_recovery()").fetchone()
        if not row or row[0]:
            conn.rollback()
            raise UnknownStateError(f"{target.masked()} is still in recovery")
        conn.execute(f"create table if not exists {CANARY_TABLE} (id bigserial primary key, "
                     "written_at timestamptz not null default clock_timestamp(), token text not null)")
        conn.execute(f"insert into {CANARY_TABLE} (token) values (%s)", (token,))
        conn.commit()
        back = conn.execute(f"select count(*) from {CANARY_TABLE} where token = %s", (token,)).fetchone()
        conn.commit()
    if not back or back[0] != 1:
        raise UnknownStateError(f"canary written to {target.masked()} did not read back")
    return datetime.now(UTC)


def _data_loss(app: AppContext, old: DatabaseCluster, new: pg.Target | None,
               sent: datetime | None) -> dict[str, Any]:
    """Heartbeat rows the old primary wrote before the promotion that the new primary lacks."""
    table = _heartbeat_table(app, old)
    if not table or new is None:
        return {}
    if sent is None:
        return {"heartbeat_rows_missing": None, "table": table,
                "detail": "the promotion time is unknown: rows lost cannot be counted"}
    try:
        with pg.connect(new) as conn:
            row = conn.execute(f"select coalesce(max(id), 0) from {table} where written_at <= %s", (sent,)).fetchone()
        new_max = int(row[0]) if row else 0
    except UnknownStateError as exc:
        return {"heartbeat_rows_missing": None, "detail": f"new primary: {exc.message}"}
    try:
        with pg.connect(_target(app, old, old.connection)) as conn:
            row = conn.execute(f"select count(*) from {table} where written_at <= %s and id > %s",
                               (sent, new_max)).fetchone()
        return {"heartbeat_rows_missing": int(row[0]) if row else 0, "table": table}
    except UnknownStateError:
        return {"heartbeat_rows_missing": None, "table": table,
                "detail": "old primary unreachable: rows it wrote cannot be counted"}


def _after(app: AppContext, old: DatabaseCluster, new: DatabaseCluster | None) -> list[Member]:
    refreshed = app.do.get_database_cluster(old.id)
    members = _topology(app, refreshed, app.do.list_replicas(old.id), None)
    if new is not None:
        c = new.connection
        members.append(Member(new.name, new.region, "primary (promoted)", new.status,
                              f"{c.host}:{c.port}" if c else "-", "detached"))
    return members


def _already_promoted(app: AppContext, opts: FailoverOptions, cluster: DatabaseCluster,
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
        return Promoted(found, promotion_time(app, found) or promotion_time(app, cluster))
    # No name: a cluster of the region that the API says was promoted, at the time the primary lost a replica.
    ours = promotion_time(app, cluster)
    if ours is None:
        return None
    for c in candidates:
        theirs = promotion_time(app, c)
        if theirs is not None and abs((theirs - ours).total_seconds()) <= PROMOTION_EVENT_SKEW:
            return Promoted(c, theirs)
    return None


PROMOTION_EVENT_SKEW = 300.0  # the two clusters' events of one promotion are logged moments apart


@dataclass
class Promoted:
    cluster: DatabaseCluster
    at: datetime | None


def promotion_time(app: AppContext, cluster: DatabaseCluster) -> datetime | None:
    """The latest `cluster_master_promotion` event of a cluster, from the API."""
    try:
        found = [e.create_time for e in app.do.list_database_events(cluster.id)
                 if e.event_type == "cluster_master_promotion" and e.create_time is not None]
    except ApiError:
        return None
    return max(found) if found else None


def _verify_only(run: _Run, opts: FailoverOptions, cluster: DatabaseCluster, promoted: Promoted,
                 pending: dict[str, Any], target_rto: float, events: Events) -> FailoverResult:
    new = promoted.cluster
    sent = parse_or_none(pending.get("promote_sent"))
    when = sent or promoted.at
    events("step", f"{new.name} was already promoted" + (f" at {_stamp(when)}" if when else "")
           + ": verifying only, sending no write to the API")
    detected = parse_or_none(pending.get("detected_at"))
    if opts.detected_at is None and detected is not None:
        opts.detected_at = detected
    result = FailoverResult(cluster.name, new.name, new.region, opts.dry_run,
                            [Precheck("already promoted", True, new.status,
                                      f"{new.name} stands alone in {new.region}"
                                      + (f" since {_stamp(when)}" if when else ""))],
                            Timings(promote_sent=sent), None, target_rto, None, None, {}, "verified",
                            already_promoted=True, promoted_at=when)
    if opts.dry_run:
        result.outcome = "planned"
        run.audit(result)
        return result
    return _await_writable(run, opts, cluster, new.id, new.name, sent, when, result, events)
