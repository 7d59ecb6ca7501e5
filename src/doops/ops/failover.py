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
from typing import Any

from doops import journal
from doops.clients import pg
from doops.clients.models import DatabaseCluster, DatabaseReplica
from doops.context import AppContext
from doops.errors import ApiError, Interrupted, OperationFailed, UnknownStateError, UsageError
from doops.ops.dbtarget import db_target
from doops.output import TableSection
from doops.units import format_duration

Events = Callable[[str, str], None]  # (kind, message): progress for the CLI to show on stderr
CANARY_TABLE = "doops_canary"


@dataclass
class FailoverOptions:
    cluster: str | None
    region: str
    replica: str | None = None
    max_lag_bytes: int = 1024 * 1024
    max_lag_seconds: float = 5.0
    accept_data_loss: bool = False
    rto_seconds: float | None = None
    timeout_seconds: float = 600.0
    dry_run: bool = False
    detected_at: datetime | None = None


@dataclass
class Precheck:
    name: str
    ok: bool
    value: Any
    detail: str


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

    def to_data(self) -> dict[str, Any]:
        from doops.output import to_data

        data = {f: to_data(getattr(self, f)) for f in (
            "cluster", "replica", "region", "dry_run", "prechecks", "timings", "rto_seconds", "rto_target_seconds",
            "met", "new_primary", "data_loss", "outcome", "already_promoted", "topology_before", "topology_after")}
        return data

    def table_sections(self) -> list[TableSection]:
        sections = [TableSection(
            title=f"pre-checks: promote {self.replica} ({self.region}) of {self.cluster}",
            columns=["check", "ok", "value", "detail"],
            rows=[[p.name, "ok" if p.ok else "FAIL", p.value, p.detail] for p in self.prechecks],
            styles={"ok": "green", "FAIL": "bold red"},
        )]
        for title, members in (("topology before", self.topology_before), ("topology after", self.topology_after)):
            if members:
                sections.append(TableSection(
                    title=title, columns=["member", "region", "role", "status", "host", "lag"],
                    rows=[[m.member, m.region, m.role, m.status, m.host, m.lag] for m in members]))
        t = self.timings
        rows: list[list[Any]] = [["outcome", self.outcome]]
        if not self.dry_run:
            rows += [["promote sent", t.promote_sent], ["API online", t.api_online], ["writable", t.writable],
                     ["RTO", f"{self.rto_seconds:.2f}s" if self.rto_seconds is not None else "-"],
                     ["RTO target", f"{self.rto_target_seconds:.0f}s"],
                     ["met", "-" if self.met is None else ("yes" if self.met else "NO")]]
            if self.new_primary:
                rows.append(["new primary", f"{self.new_primary.name} {self.new_primary.host}:{self.new_primary.port}"])
            if self.data_loss:
                rows.append(["heartbeat rows missing", self.data_loss.get("heartbeat_rows_missing")])
        sections.append(TableSection(title="result", columns=["field", "value"], rows=rows,
                                     styles={"NO": "bold red", "yes": "green"}))
        return sections


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


def failover(app: AppContext, opts: FailoverOptions, confirm: Callable[[str], bool], events: Events) -> FailoverResult:
    """Plan, check, confirm, promote, verify, measure. Raises DoopsError with the exit code to use."""
    cluster, clusters = _find_cluster(app, opts.cluster)
    target_rto = opts.rto_seconds if opts.rto_seconds is not None else float(app.config.objectives.database_rto)
    pending = journal.read_pending("failover", cluster.id)
    replicas = app.do.list_replicas(cluster.id)
    replica = _pick_replica(opts, replicas, cluster.name)
    if replica is None:
        promoted = _already_promoted(opts, pending, clusters)
        if promoted is not None:
            return _verify_only(app, opts, cluster, promoted, pending or {}, target_rto, events)
        listing = ", ".join(f"{r.name} ({r.region})" for r in replicas) or "none"
        raise UsageError(f"no replica of {cluster.name} in region {opts.region}",
                         hint=f"replicas of {cluster.name}: {listing}")
    events("step", f"cluster {cluster.name} ({cluster.region}), replica {replica.name} ({replica.region})")
    try:
        with journal.exclusive(f"failover-{cluster.id}"):
            return _run_locked(app, opts, cluster, replica, replicas, target_rto, confirm, events)
    except journal.LockHeld as held:
        result = _refused(opts, cluster, replica, target_rto,
                          [Precheck("no other failover", False, held.holder,
                                    f"a doops failover of {cluster.name} is running ({held.holder})")])
        _audit(result)
        raise OperationFailed(f"another doops failover of {cluster.name} is running ({held.holder})",
                              hint="wait for it; the lock ends with its process") from None


def _refused(opts: FailoverOptions, cluster: DatabaseCluster, replica: DatabaseReplica, target_rto: float,
             prechecks: list[Precheck]) -> FailoverResult:
    return FailoverResult(cluster.name, replica.name, replica.region, opts.dry_run, prechecks, Timings(), None,
                          target_rto, None, None, {}, "refused")


def _run_locked(app: AppContext, opts: FailoverOptions, cluster: DatabaseCluster, replica: DatabaseReplica,
                replicas: list[DatabaseReplica], target_rto: float, confirm: Callable[[str], bool],
                events: Events) -> FailoverResult:
    prechecks, lag = _prechecks(app, opts, cluster, replica, events)
    before = _topology(app, cluster, replicas, lag)
    result = FailoverResult(cluster.name, replica.name, replica.region, opts.dry_run, prechecks, Timings(), None,
                            target_rto, None, None, {}, "planned", topology_before=before)
    failed = [p for p in prechecks if not p.ok]
    if failed:
        result.outcome = "refused"
        result.audit_file = str(_audit(result))
        raise_refusal(result, failed)
    if opts.dry_run:
        events("done", f"dry run: every pre-check passed; would promote {replica.name}; nothing was sent")
        result.audit_file = str(_audit(result))
        return result
    question = (f"Promote replica {replica.name} ({replica.region}) to a standalone primary, detaching it from "
                f"{cluster.name} ({cluster.region})?")
    if not confirm(question):
        result.outcome = "aborted"
        _audit(result)
        raise Interrupted("aborted at the confirmation; nothing was changed")
    return _promote_and_verify(app, opts, cluster, replica, result, events)


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
        primary_ok, primary_detail = False, exc.message
    # Informational: a down primary is the usual reason to fail over; it only blocks the lag check.
    checks.append(Precheck("primary reachable", True, "yes" if primary_ok else "no", primary_detail))
    lag: pg.ReplicaLag | None = None
    if primary_ok:
        try:
            lag = pg.replica_lag(_target(app, cluster, replica.connection), primary_target)
        except UnknownStateError as exc:
            checks.append(Precheck("replica lag", False, None, f"cannot measure: {exc.message}"))
        else:
            b, s = lag.lag_bytes or 0, lag.lag_seconds or 0.0
            ok = b <= opts.max_lag_bytes and s <= opts.max_lag_seconds
            detail = (f"{b} bytes, {s:.1f}s behind (max {opts.max_lag_bytes} bytes, {opts.max_lag_seconds:g}s)"
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
    elif not all(p.ok for p in checks):
        checks.append(Precheck("token can write", True, "not probed",
                               "an earlier check failed: nothing is sent, not even the probe"))
    else:
        try:
            can, detail = app.do.can_write(cluster.id)
        except ApiError as exc:
            can, detail = False, exc.message
        checks.append(Precheck("token can write", can, "yes" if can else "no", detail))
    for p in checks:
        events("check" if p.ok else "fail", f"{p.name}: {p.detail}")
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
            lag_text = f"{lag.lag_bytes if lag.lag_bytes is not None else '?'} B / {lag.lag_seconds or 0:.1f}s"
        members.append(Member(r.name, r.region, "replica", r.status, host, lag_text))
    return members


def _promote_and_verify(app: AppContext, opts: FailoverOptions, cluster: DatabaseCluster,
                        replica: DatabaseReplica, result: FailoverResult, events: Events) -> FailoverResult:
    sent = datetime.now(UTC)
    journal.write_pending("failover", cluster.id, {
        "cluster": cluster.name, "cluster_id": cluster.id, "replica": replica.name, "replica_id": replica.id,
        "region": replica.region, "promote_sent": sent, "detected_at": opts.detected_at})
    promoted = False
    try:
        events("step", f"sending promote for {replica.name}")
        app.do.promote_replica(cluster.id, replica.name)
        promoted = True
        result.timings.promote_sent = sent
        events("check", f"promote accepted (204) at {sent:%H:%M:%S.%f}"[:-3] + "Z")
        return _await_writable(app, opts, cluster, replica.id, replica.name, sent, result, events)
    except KeyboardInterrupt:
        result.outcome = "interrupted"
        result.timings.promote_sent = sent
        _audit(result)
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


def _await_writable(app: AppContext, opts: FailoverOptions, cluster: DatabaseCluster, new_id: str, new_name: str,
                    sent: datetime, result: FailoverResult, events: Events) -> FailoverResult:
    """Poll the API and the server together, fast at first then backing off, until both say yes."""
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
    if writable is not None:
        result.rto_seconds = round((writable - start).total_seconds(), 3)
        result.met = result.rto_seconds <= result.rto_target_seconds
    result.data_loss = _data_loss(app, cluster, new_target, sent)
    try:
        result.topology_after = _after(app, cluster, new)
    except ApiError:
        result.topology_after = []
    if api_online is None or writable is None:
        result.outcome = "failed"
        result.audit_file = str(_audit(result))
        missing = "API online" if api_online is None else "a write accepted"
        raise FailoverFailed(
            f"promoted {new_name}, but no {missing} within {format_duration(opts.timeout_seconds)}: {last_error}",
            result)
    result.outcome = "verified" if result.already_promoted else "promoted"
    journal.clear_pending("failover", cluster.id)
    result.audit_file = str(_audit(result))
    if not result.met:
        raise FailoverFailed(
            f"RTO {result.rto_seconds:.1f}s missed the target of {result.rto_target_seconds:.0f}s", result)
    events("done", f"{new_name} is the new primary; RTO {result.rto_seconds:.2f}s "
                   f"(target {result.rto_target_seconds:.0f}s)")
    return result


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


def _data_loss(app: AppContext, old: DatabaseCluster, new: pg.Target | None, sent: datetime) -> dict[str, Any]:
    """Heartbeat rows the old primary wrote before the promotion that the new primary lacks."""
    table = _heartbeat_table(app, old)
    if not table or new is None:
        return {}
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


def _already_promoted(opts: FailoverOptions, pending: dict[str, Any] | None,
                      clusters: list[DatabaseCluster]) -> DatabaseCluster | None:
    """The replica this command would promote, found already standing as its own cluster (a re-run)."""
    name = opts.replica or (pending or {}).get("replica")
    if pending and pending.get("region") not in (None, opts.region):
        return None
    for c in clusters:
        if name and c.name == name and c.region == opts.region:
            return c
    return None


def _verify_only(app: AppContext, opts: FailoverOptions, cluster: DatabaseCluster, promoted: DatabaseCluster,
                 pending: dict[str, Any], target_rto: float, events: Events) -> FailoverResult:
    events("step", f"{promoted.name} is already a standalone cluster: verifying only, sending no write to the API")
    sent = _parse_time(pending.get("promote_sent"))
    detected = _parse_time(pending.get("detected_at"))
    if opts.detected_at is None and detected is not None:
        opts.detected_at = detected
    result = FailoverResult(cluster.name, promoted.name, promoted.region, opts.dry_run,
                            [Precheck("already promoted", True, promoted.status,
                                      f"{promoted.name} stands alone in {promoted.region}")],
                            Timings(promote_sent=sent), None, target_rto, None, None, {}, "verified",
                            already_promoted=True)
    if opts.dry_run:
        result.outcome = "planned"
        _audit(result)
        return result
    return _await_writable(app, opts, cluster, promoted.id, promoted.name, sent or datetime.now(UTC), result, events)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _audit(result: FailoverResult) -> Any:
    return journal.audit("failover db", result.to_data())
