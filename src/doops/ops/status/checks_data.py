"""PostgreSQL and Valkey/Redis checks: the API's view plus what the servers themselves say."""

from __future__ import annotations

from functools import partial
from typing import Any

from doops.clients import pg
from doops.clients.models import DatabaseCluster, DatabaseReplica
from doops.errors import UnknownStateError
from doops.ops.dbtarget import db_target
from doops.ops.status.engine import Runner, Verdict
from doops.ops.status.model import CheckResult, Status
from doops.units import format_duration

OK, WARN, CRIT, UNKNOWN = Status.OK, Status.WARN, Status.CRIT, Status.UNKNOWN
CACHE_ENGINES = ("redis", "valkey")


def database_clusters(r: Runner) -> list[DatabaseCluster]:
    tag = r.app.config.discover_tag  # resources the config does not name are discovered by this tag
    return list(r.shared("db_clusters", lambda: r.app.do.list_database_clusters(tag)))


def _scope(r: Runner, clusters: list[DatabaseCluster], wanted: list[str], engines: tuple[str, ...],
           component: str) -> tuple[list[DatabaseCluster], list[CheckResult]]:
    by_name = {c.name: c for c in clusters}
    missing = [r.verdict(component, n, "present", CRIT, f"cluster {n} not found") for n in wanted if n not in by_name]
    if wanted:
        return [by_name[n] for n in wanted if n in by_name], missing
    return [c for c in clusters if c.engine in engines], missing


def target_for(r: Runner, cluster: DatabaseCluster, conn: Any) -> pg.Target:
    """The shared connection rule, with the cluster's CA fetched once per run."""
    return db_target(r.app, cluster, conn,
                     ca=lambda cid: str(r.shared(f"ca:{cid}", lambda: r.app.do.database_ca(cid))))


def collect_databases(r: Runner) -> list[CheckResult]:
    try:
        clusters = database_clusters(r)
    except Exception as exc:
        return [r.failed("databases", "*", "list", exc)]
    cfgs = {c.name: c for c in r.app.config.databases.clusters}
    scope, results = _scope(r, clusters, list(cfgs), ("pg",), "databases")
    jobs: list[Any] = []
    replica_lists: dict[str, Any] = {}
    for c in scope:
        jobs += [
            ("databases", c.name, "status", partial(_status, c)),
            ("databases", c.name, "maintenance", partial(_maintenance, c)),
            ("databases", c.name, "backups", partial(_backups, r, c)),
            ("databases", c.name, "connections", partial(_connections, r, c)),
        ]
        replica_lists[c.name] = r.pool.submit(r.app.do.list_replicas, c.id)
    results += r.fan_out(jobs)
    lag_jobs: list[Any] = []
    for c in scope:
        try:
            replicas = replica_lists[c.name].result()
        except Exception as exc:
            results.append(r.failed("databases", c.name, "replicas", exc))
            continue
        cfg = cfgs.get(c.name)
        for rep in replicas:
            lag_jobs.append(("databases", rep.name, "replica", partial(_replica, r, c, rep)))
        expected = set(cfg.replicas) if cfg else set()
        for name in sorted(expected - {rep.name for rep in replicas}):
            results.append(r.verdict("databases", name, "replica", CRIT, f"replica {name} of {c.name} not found"))
    return results + r.fan_out(lag_jobs)


def _status(c: DatabaseCluster) -> Verdict:
    details = {"engine": c.engine, "version": c.version, "region": c.region, "nodes": c.num_nodes, "size": c.size}
    if c.status == "online":
        return OK, f"online, {c.num_nodes} node(s) in {c.region}", details
    if c.status in ("creating", "migrating", "resizing", "forking"):
        return WARN, f"status {c.status}", details
    return CRIT, f"status {c.status}", details


def _maintenance(c: DatabaseCluster) -> Verdict:
    if c.maintenance_pending:
        return WARN, "maintenance pending: " + ("; ".join(c.maintenance_description) or "update waiting"), {}
    return OK, "no pending maintenance", {}


def _backups(r: Runner, c: DatabaseCluster) -> Verdict:
    backups = [b for b in r.app.do.list_backups(c.id) if b.created_at]
    if not backups:
        return CRIT, "no backup", {}
    latest = max(b.created_at for b in backups if b.created_at)
    age = (r.now - latest).total_seconds()
    limit = float(r.app.config.thresholds.backup_max_age)
    details = {"latest": latest.isoformat(), "age_seconds": round(age), "count": len(backups)}
    if age > 2 * limit:
        return CRIT, f"latest backup {format_duration(age)} old", details
    if age > limit:
        return WARN, f"latest backup {format_duration(age)} old (limit {format_duration(limit)})", details
    return OK, f"latest backup {format_duration(age)} old, {len(backups)} kept", details


def _connections(r: Runner, c: DatabaseCluster) -> Verdict:
    th = r.app.config.thresholds
    try:
        use = pg.usage(target_for(r, c, c.connection))
    except UnknownStateError as exc:
        if "Connection refused" in exc.message:
            # A refusal is an answer: the API may still say online, but no server listens there.
            return CRIT, "primary not accepting connections: " + exc.message, {}
        raise
    pools = r.app.do.list_pools(c.id)  # a leaf never submits to the pool it runs in (no deadlock at -c 1)
    details = {"connections": use.connections, "max_connections": use.max_connections,
               "reserved": use.reserved, "ratio": round(use.ratio, 3),
               "pools": {p.name: {"size": p.size, "mode": p.mode, "db": p.db} for p in pools},
               "pool_size_total": sum(p.size for p in pools)}
    text = f"{use.connections}/{use.max_connections - use.reserved} connections ({use.ratio:.0%})"
    if pools:
        text += f", {len(pools)} pool(s) of {details['pool_size_total']}"
    if use.ratio >= th.connection_usage_crit:
        return CRIT, text, details
    if use.ratio >= th.connection_usage_warn:
        return WARN, text, details
    return OK, "primary reachable, " + text, details


def _replica(r: Runner, c: DatabaseCluster, rep: DatabaseReplica) -> Verdict:
    th = r.app.config.thresholds
    details: dict[str, Any] = {"region": rep.region, "status": rep.status}
    if rep.status != "online":
        return (WARN if rep.status == "creating" else CRIT), f"replica status {rep.status}", details
    replica_target = target_for(r, c, rep.connection)
    try:
        primary_target: pg.Target | None = target_for(r, c, c.connection)
        lag = pg.replica_lag(replica_target, primary_target)
    except UnknownStateError as exc:
        if "cannot connect to" in exc.message and replica_target.masked() not in exc.message:
            # The primary is down: the replica may be fine, but its lag cannot be measured.
            return UNKNOWN, "primary unreachable: lag cannot be measured", details
        raise
    details.update({"lag_bytes": lag.lag_bytes, "lag_seconds": lag.lag_seconds, "replay_paused": lag.replay_paused,
                    "in_recovery": lag.in_recovery})
    if not lag.in_recovery:
        return CRIT, "replica is not in recovery (promoted or detached)", details
    max_b, max_s = int(th.replica_lag_bytes), float(th.replica_lag_seconds)
    b, s = lag.lag_bytes or 0, lag.lag_seconds or 0.0
    text = f"lag {b} bytes, {s:.1f}s in {rep.region}" + (" (replay paused)" if lag.replay_paused else "")
    if b > 3 * max_b or s > 3 * max_s:
        return CRIT, text, details
    if b > max_b or s > max_s or lag.replay_paused:
        return WARN, text, details
    return OK, text, details


def collect_cache(r: Runner) -> list[CheckResult]:
    try:
        clusters = database_clusters(r)
    except Exception as exc:
        return [r.failed("cache", "*", "list", exc)]
    cfgs = {c.name: c for c in r.app.config.databases.caches}
    scope, results = _scope(r, clusters, list(cfgs), CACHE_ENGINES, "cache")

    def eviction(c: DatabaseCluster) -> Verdict:
        policy = r.app.do.eviction_policy(c.id)
        want = cfgs[c.name].eviction_policy if c.name in cfgs else None
        if want and policy != want:
            return WARN, f"eviction policy {policy}, configured {want}", {"policy": policy, "expected": want}
        return OK, f"eviction policy {policy}", {"policy": policy}

    jobs: list[Any] = []
    for c in scope:
        jobs += [("cache", c.name, "status", partial(_status, c)),
                 ("cache", c.name, "eviction-policy", partial(eviction, c))]
    return results + r.fan_out(jobs)
