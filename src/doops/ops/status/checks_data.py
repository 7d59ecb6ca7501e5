"""PostgreSQL and Valkey/Redis checks: the API's view plus what the servers themselves say."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from doops.clients import pg
from doops.clients.models import Connection, ConnectionPool, DatabaseCluster, DatabaseEvent, DatabaseReplica
from doops.errors import ApiNotFound, DoopsError, UnknownStateError
from doops.ops.dbtarget import db_target
from doops.ops.status.engine import Runner, Verdict
from doops.ops.status.model import CheckResult, Status
from doops.units import format_bytes, format_duration

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


def target_for(r: Runner, cluster: DatabaseCluster, conn: Any, cfg_name: str | None = None) -> pg.Target:
    """The shared connection rule, with the cluster's CA fetched once per run.

    ``cfg_name`` connects with another config entry's settings: a promoted replica keeps its lineage's
    database, user and sslmode until the config names it (its CA is still its own, by id).
    """
    named = replace(cluster, name=cfg_name) if cfg_name and cfg_name != cluster.name else cluster
    target = db_target(r.app, named, conn,
                       ca=lambda cid: str(r.shared(f"ca:{cid}", lambda: r.app.do.database_ca(cid))))
    r.need("psycopg")  # every connection is made with a target from here: let the background import finish
    return target


PROMOTION_EVENT = "cluster_master_promotion"


@dataclass
class Promotion:
    """A configured replica now standing as its own cluster, promoted out of its configured primary."""

    source: DatabaseCluster  # the old primary: names the lineage
    promoted: DatabaseCluster
    at: datetime | None  # the source's newest cluster_master_promotion event
    cfg_index: int  # the source's position in databases.clusters, to name the exact config change

    @property
    def when(self) -> str:
        return self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if self.at else "an unknown time"


def collect_databases(r: Runner) -> list[CheckResult]:
    try:
        clusters = database_clusters(r)
    except Exception as exc:
        return [r.failed("databases", "*", "list", exc)]
    by_name = {c.name: c for c in clusters}
    cfgs = {c.name: c for c in r.app.config.databases.clusters}
    scope, results = _scope(r, clusters, list(cfgs), ("pg",), "databases")
    jobs: list[Any] = []
    replica_lists: dict[str, Any] = {}
    event_lists: dict[str, Any] = {}
    for c in scope:
        jobs += [
            ("databases", c.name, "status", partial(_status, c)),
            ("databases", c.name, "maintenance", partial(_maintenance, c)),
            ("databases", c.name, "backups", partial(_backups, r, c)),
            ("databases", c.name, "connections", partial(_connections, r, c)),
            ("databases", c.name, "pools", partial(_pools, r, c)),
        ]
        replica_lists[c.name] = r.pool.submit(r.app.do.list_replicas, c.id)
        cfg = cfgs.get(c.name)
        if cfg and any(n in by_name and by_name[n].id != c.id for n in cfg.replicas):
            # A configured replica's name is a cluster of its own: only then ask whether it was promoted
            # (one events call per such primary, in parallel with its replica list; none in steady state).
            event_lists[c.name] = r.pool.submit(r.app.do.list_database_events, c.id)
    results += r.fan_out(jobs)
    lag_jobs: list[Any] = []
    promotions: list[Promotion] = []
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
            standalone = by_name.get(name)
            if standalone is None or standalone.id == c.id or c.name not in event_lists:
                results.append(r.verdict("databases", name, "replica", CRIT, f"replica {name} of {c.name} not found"))
                continue
            try:
                events: list[DatabaseEvent] = event_lists[c.name].result()
            except Exception as exc:
                results.append(r.failed("databases", name, "replica", exc))
                continue
            event = next((e for e in events if e.event_type == PROMOTION_EVENT), None)  # newest first
            if event is None:
                results.append(r.verdict(
                    "databases", name, "replica", CRIT,
                    f"replica {name} of {c.name} not found: a cluster named {name} stands alone, but the events "
                    f"of {c.name} show no {PROMOTION_EVENT}"))
                continue
            index = [d.name for d in r.app.config.databases.clusters].index(c.name)
            promotions.append(Promotion(c, standalone, event.create_time, index))
    scoped = {c.name for c in scope}
    for p in promotions:
        lag_jobs += _promotion_jobs(r, p, judge_as_primary=p.promoted.name not in scoped)
    return results + r.fan_out(lag_jobs)


def _promotion_jobs(r: Runner, p: Promotion, judge_as_primary: bool) -> list[Any]:
    """The promoted cluster judged as the primary it now is, the old one for split-brain, the config."""
    new, old = p.promoted, p.source
    jobs: list[Any] = []
    if judge_as_primary:  # unless the config already names it (then it is in scope and judged already)
        jobs += [
            ("databases", new.name, "status", partial(_promoted_status, p)),
            ("databases", new.name, "maintenance", partial(_maintenance, new)),
            ("databases", new.name, "backups", partial(_backups, r, new, p)),
            ("databases", new.name, "connections", partial(_connections, r, new, old.name)),
            ("databases", new.name, "pools", partial(_pools, r, new, old.name)),
        ]
    jobs += [
        ("databases", new.name, "writable", partial(_writable, r, p)),
        ("databases", old.name, "split-brain", partial(_split_brain, r, p)),
        ("databases", new.name, "config", partial(_config_change, r, p)),
    ]
    return jobs


def _promoted_status(p: Promotion) -> Verdict:
    status, text, details = _status(p.promoted)
    details.update({"role": "primary", "promoted_from": p.source.name,
                    "promoted_at": p.at.isoformat() if p.at else None})
    return status, f"{text}, primary promoted from {p.source.name} at {p.when}", details


def _probe(r: Runner, cluster: DatabaseCluster, cfg_name: str | None = None) -> pg.Writability | None:
    """Whether the server takes writes, read once per run; None when it refuses connections (an answer)."""
    def run() -> pg.Writability | None:
        try:
            return pg.writability(target_for(r, cluster, cluster.connection, cfg_name))
        except UnknownStateError as exc:
            if "Connection refused" in exc.message:
                return None
            raise

    result: pg.Writability | None = r.shared(f"writability:{cluster.id}", run)
    return result


def _writable(r: Runner, p: Promotion) -> Verdict:
    w = _probe(r, p.promoted, p.source.name)
    if w is None:
        return CRIT, f"promoted primary {p.promoted.name} not accepting connections", {}
    details = {"in_recovery": w.in_recovery, "read_only": w.read_only}
    if w.in_recovery:
        return CRIT, ("still in recovery (pg_is_in_recovery() = true): promoted by the API, but the server "
                      "takes no writes yet"), details
    if w.read_only:
        return CRIT, "default_transaction_read_only is on: the promoted primary refuses writes", details
    return OK, "accepts writes (pg_is_in_recovery() = false)", details


def _split_brain(r: Runner, p: Promotion) -> Verdict:
    """Two writable primaries of one lineage: writes to the old one never reach the new one."""
    old, new = p.source.name, p.promoted.name
    details: dict[str, Any] = {"lineage": old, "old_primary": old, "new_primary": new,
                               "promoted_at": p.at.isoformat() if p.at else None}
    old_w = _probe(r, p.source)
    if old_w is None:
        details["old_writable"] = None
        return WARN, (f"old primary {old} refuses connections: it takes no writes now, but would come back as a "
                      f"second primary of lineage {old}; fix: delete {old} (or keep it fenced) once apps use "
                      f"{new}"), details
    details["old_writable"] = old_w.writable
    if old_w.in_recovery:
        return OK, f"old primary {old} is in recovery: {new} is the only writable primary of lineage {old}", details
    if old_w.read_only:
        return WARN, (f"old primary {old} is only soft-fenced (default_transaction_read_only on; a session can "
                      f"still write): delete {old} once apps use {new}"), details
    new_w = _probe(r, p.promoted, p.source.name)
    details["new_writable"] = new_w.writable if new_w else None
    if new_w is None or not new_w.writable:
        return OK, f"one writable primary of lineage {old}: {old} ({new} takes no writes)", details
    details["fix"] = f"repoint apps to {new}, then fence or delete {old}"
    return CRIT, (f"split-brain risk: two writable primaries of lineage {old} ({old}, {new}): writes that reach "
                  f"{old} are lost to {new} (promoted at {p.when}); fix: {details['fix']}"), details


def _config_change(r: Runner, p: Promotion) -> Verdict:
    """The exact edit that makes the config name the topology that now exists."""
    old, new, i = p.source.name, p.promoted.name, p.cfg_index
    cfg = r.app.config.databases.clusters[i]
    names_primary = r.app.config.databases.primary == old
    said = (f"config names {old} as primary and {new} as its replica" if names_primary
            else f"config names {new} as a replica of {old}")
    change = (f"set databases.primary: {new} and remove" if names_primary else "remove")
    change += f" the replica entry {new} from databases.clusters[{i}].replicas"
    if [n for n in cfg.replicas if n != new]:
        entry = (f"add a databases.clusters entry named {new} (database, user and sslmode as "
                 f"databases.clusters[{i}])")
    else:
        entry = f"set databases.clusters[{i}].name: {new} (its database, user and sslmode now apply to {new})"
    details = {"file": r.app.config.source, "promoted_at": p.at.isoformat() if p.at else None,
               "change": [change, entry]}
    return WARN, f"{said}, but {new} was promoted at {p.when}: {change}; {entry}", details


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


def _backups(r: Runner, c: DatabaseCluster, promotion: Promotion | None = None) -> Verdict:
    backups = [b for b in r.app.do.list_backups(c.id) if b.created_at]
    limit = float(r.app.config.thresholds.backup_max_age)
    if not backups:
        promoted_at = promotion.at if promotion else _own_promotion(r, c)
        if promoted_at is None:
            return CRIT, "no backup", {}
        # A promoted cluster has no backup of its own until its first one: the promotion stands in for the
        # newest backup, by the same limits (history before it lies in the old primary's backups).
        age = max((r.now - promoted_at).total_seconds(), 0.0)
        details = {"count": 0, "promoted_at": promoted_at.isoformat(), "age_seconds": round(age)}
        text = f"no backup since the promotion {format_duration(age)} ago"
        if age > 2 * limit:
            return CRIT, text, details
        if age > limit:
            return WARN, f"{text} (limit {format_duration(limit)})", details
        history = f"{promotion.source.name}'s backups" if promotion else "the old primary's backups"
        return OK, f"{text}: first backup due within {format_duration(limit)} (earlier history: {history})", details
    latest = max(b.created_at for b in backups if b.created_at)
    age = (r.now - latest).total_seconds()
    details = {"latest": latest.isoformat(), "age_seconds": round(age), "count": len(backups)}
    if age > 2 * limit:
        return CRIT, f"latest backup {format_duration(age)} old", details
    if age > limit:
        return WARN, f"latest backup {format_duration(age)} old (limit {format_duration(limit)})", details
    return OK, f"latest backup {format_duration(age)} old, {len(backups)} kept", details


def _own_promotion(r: Runner, c: DatabaseCluster) -> datetime | None:
    """When a cluster without backups was promoted, from its own events (one call, only in that case)."""
    try:
        events = r.app.do.list_database_events(c.id)
    except DoopsError:
        return None  # "no backup" is what is known
    return next((e.create_time for e in events if e.event_type == PROMOTION_EVENT), None)


def _connections(r: Runner, c: DatabaseCluster, cfg_name: str | None = None) -> Verdict:
    th = r.app.config.thresholds
    try:
        use = pg.usage(target_for(r, c, c.connection, cfg_name))
    except UnknownStateError as exc:
        if "Connection refused" in exc.message:
            # A refusal is an answer: the API may still say online, but no server listens there.
            return CRIT, "primary not accepting connections: " + exc.message, {}
        raise
    pools = [p for p, _ in api_pools(r, c)]
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


def api_pools(r: Runner, c: DatabaseCluster) -> list[tuple[ConnectionPool, Connection | None]]:
    """The cluster's pools with the connection the API gives each (where its PgBouncer answers), fetched once
    per run for the connections and pools checks. In the caller's thread: a leaf never submits to the pool it
    runs in (no deadlock at -c 1)."""
    def fetch() -> list[tuple[ConnectionPool, Connection | None]]:
        # The raw call: ConnectionPool (clients/models.py) does not carry the pool's connection.
        body = r.app.do.call("databases.list_connection_pools", c.id) or {}
        return [(ConnectionPool.from_api(d), Connection.from_api(d.get("connection")))
                for d in body.get("pools") or []]

    pools: list[tuple[ConnectionPool, Connection | None]] = r.shared(f"pools:{c.id}", fetch)
    return pools


def _pools(r: Runner, c: DatabaseCluster, cfg_name: str | None = None) -> Verdict:
    """Each pool as PgBouncer counts it (SHOW POOLS on the pool's host and port, database ``pgbouncer``).

    PgBouncer is asked as the cluster's admin user (``doadmin``, a stats user on DigitalOcean), with the TLS
    rule of the connections check. When PgBouncer cannot be asked, the API's sizes are shown and the verdict
    is unknown: the API cannot say whether clients wait.
    """
    pools = api_pools(r, c)
    if not pools:
        return OK, "no connection pools", {"pools": {}}
    th = r.app.config.thresholds
    api = {p.name: {"size": p.size, "mode": p.mode, "db": p.db} for p, _ in pools}
    api_text = f"the API lists {len(pools)} pool(s) of {sum(p.size for p, _ in pools)} connections"
    endpoints = sorted({(conn.host, conn.port) for _, conn in pools if conn is not None and conn.host})
    if not endpoints:
        return UNKNOWN, f"the API gives no connection for the pools: cannot ask PgBouncer; {api_text}", {
            "source": "api", "pools": api}
    base = target_for(r, c, c.connection, cfg_name)
    if c.connection is not None and base.user != c.connection.user and c.connection.password:
        # The config names an application user: PgBouncer's stats user is the cluster's admin user.
        base = replace(base, user=c.connection.user, password=c.connection.password)
    measured: dict[tuple[str, int], dict[str, pg.PoolUsage]] = {}
    errors: dict[tuple[str, int], str] = {}
    for host, port in endpoints:  # one PgBouncer serves every pool of a cluster: one connection, in practice
        try:
            measured[(host, port)] = {u.name: u for u in pg.pgbouncer_pools(replace(base, host=host, port=port))}
        except UnknownStateError as exc:
            errors[(host, port)] = exc.message
    if not measured:
        return UNKNOWN, f"PgBouncer not reachable ({next(iter(errors.values()))}); {api_text}", {
            "source": "api", "pools": api, "error": next(iter(errors.values()))}
    details: dict[str, Any] = {"source": "pgbouncer", "pools": {}}
    status, parts = OK, []
    for p, conn in pools:
        where = (conn.host, conn.port) if conn is not None else None
        if where is None or where in errors:
            details["pools"][p.name] = {**api[p.name], "source": "api"}
            status = max(status, UNKNOWN, key=lambda s: s.rank)
            parts.append(f"{p.name}: PgBouncer not reachable, size {p.size} from the API")
            continue
        u = measured[where].get(p.name)
        if u is None or u.size is None:
            details["pools"][p.name] = {**api[p.name], "served": False}
            status = CRIT
            parts.append(f"{p.name}: not served by PgBouncer (clients cannot connect)")
            continue
        size = u.size or p.size
        d = {"size": size, "api_size": p.size, "mode": u.mode or p.mode, "db": p.db,
             "cl_active": u.cl_active, "cl_waiting": u.cl_waiting, "sv_active": u.sv_active,
             "sv_idle": u.sv_idle, "servers": u.servers, "maxwait_seconds": round(u.maxwait_seconds, 3),
             "ratio": round(u.ratio, 3)}
        details["pools"][p.name] = d
        text = f"{p.name}: {u.sv_active}/{size} servers busy, {u.cl_active} clients active, {u.cl_waiting} waiting"
        if u.cl_waiting or u.ratio >= th.pool_usage_warn:
            status = max(status, WARN, key=lambda s: s.rank)
            if u.cl_waiting:
                text += f" (longest {format_duration(u.maxwait_seconds)})" if u.maxwait_seconds else ""
            text += " (pool full: raise its size or find what holds connections)" if u.ratio >= 1 else ""
        parts.append(text)
    return status, "; ".join(parts), details


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
                 ("cache", c.name, "eviction-policy", partial(eviction, c)),
                 ("cache", c.name, "ping", partial(_cache_ping, r, c)),
                 ("cache", c.name, "memory", partial(_cache_memory, r, c)),
                 ("cache", c.name, "evictions", partial(_cache_evictions, r, c)),
                 ("cache", c.name, "clients", partial(_cache_clients, r, c))]
    return results + r.fan_out(jobs)


def cache_probe(r: Runner, c: DatabaseCluster) -> Any:
    """What the cache server says (clients/cache.py), asked once per run for the four checks that read it.

    TLS is verified against the cluster's CA when the API gives one, else against the system trust store.
    """
    def run() -> Any:
        if c.connection is None:
            raise UnknownStateError(f"the API gives no connection for {c.name}")

        def fetch_ca() -> str | None:
            try:
                pem = r.app.do.database_ca(c.id)
            except ApiNotFound:
                return None
            return pem if "-----BEGIN CERTIFICATE-----" in (pem or "") else None

        ca_pem: str | None = r.shared(f"ca:{c.id}", fetch_ca)
        r.need("redis")  # loaded in the background while the API calls wait (see engine.Imports)
        from doops.clients import cache

        return cache.probe(cache.CacheTarget.from_connection(c.connection, ca_pem=ca_pem))

    return r.shared(f"cache:{c.id}", run)


def _cache_ping(r: Runner, c: DatabaseCluster) -> Verdict:
    from doops.clients.cache import Refused

    try:
        p = cache_probe(r, c)
    except Refused as exc:
        return CRIT, "cache not accepting connections: " + exc.message, {}
    limit_ms = float(r.app.config.thresholds.cache_ping_warn) * 1000
    details = {"latency_ms": p.latency_ms, "limit_ms": limit_ms, "version": p.version}
    text = f"PING {p.latency_ms:.1f}ms"
    if p.latency_ms > limit_ms:
        return WARN, f"{text} (limit {limit_ms:.0f}ms)", details
    return OK, text, details


def _cache_memory(r: Runner, c: DatabaseCluster) -> Verdict:
    th = r.app.config.thresholds
    p = cache_probe(r, c)
    details = {"used_memory": p.used_memory, "maxmemory": p.maxmemory, "policy": p.maxmemory_policy}
    if not p.maxmemory:
        # DigitalOcean always sets one; without it the policy never applies and the server grows until the
        # node runs out of memory.
        return WARN, (f"{format_bytes(p.used_memory)} used, no maxmemory: eviction never happens, memory "
                      "grows until the node runs out"), details
    ratio = p.memory_ratio or 0.0
    details["ratio"] = round(ratio, 3)
    text = f"{format_bytes(p.used_memory)} of {format_bytes(p.maxmemory)} used ({ratio:.0%})"
    if ratio >= th.cache_memory_warn and p.maxmemory_policy == "noeviction":
        text += ": policy noeviction, writes fail once full"
    if ratio >= th.cache_memory_crit:
        return CRIT, text, details
    if ratio >= th.cache_memory_warn:
        return WARN, text, details
    return OK, text, details


def _cache_evictions(r: Runner, c: DatabaseCluster) -> Verdict:
    p = cache_probe(r, c)
    details = {"evicted_keys": p.evicted_keys, "policy": p.maxmemory_policy}
    if p.evicted_keys:
        return WARN, (f"{p.evicted_keys} key(s) evicted since the server started (policy {p.maxmemory_policy}): "
                      "the working set does not fit in maxmemory"), details
    return OK, "no key evicted", details


def _cache_clients(r: Runner, c: DatabaseCluster) -> Verdict:
    p = cache_probe(r, c)
    details = {"connected_clients": p.connected_clients, "maxclients": p.maxclients}
    if p.maxclients is None:
        return OK, f"{p.connected_clients} client(s) connected (the server does not report maxclients)", details
    ratio = p.clients_ratio or 0.0
    details["ratio"] = round(ratio, 3)
    text = f"{p.connected_clients}/{p.maxclients} clients connected ({ratio:.0%})"
    if ratio >= r.app.config.thresholds.cache_clients_warn:
        return WARN, text, details
    return OK, text, details
