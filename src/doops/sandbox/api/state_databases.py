"""Managed databases in the twin's world: clusters, replicas, pools, users, promotion, point-in-time restore,
backups, options.

What the spec leaves open (promote, restore, synthetic connections, backups) is listed in
:mod:`doops.sandbox.api.state`. For a cluster the backend runs, every connection, version, password, standby,
pool and metrics endpoint shown is the real server's; the rest is synthesised to look like DigitalOcean.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from doops.sandbox.api.backends import BackupInfo, ConnectionInfo
from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import (
    DB_SIZE_STORAGE_MIB,
    PITR_DAYS,
    REDIS_ENGINES,
    REGIONS,
    Cluster,
    Replica,
    Store,
    iso,
    parse_time,
    synthetic_secret,
)

log = logging.getLogger(__name__)

POOL_PORT = 25061  # DigitalOcean's PgBouncer port, for pools the backend does not run
# (end of availability, end of life) of PostgreSQL majors, from DigitalOcean's version_availability
PG_LIFECYCLE = {
    "13": ("2025-05-13T00:00:00Z", "2025-11-13T00:00:00Z"), "14": ("2026-05-12T00:00:00Z", "2026-11-12T00:00:00Z"),
    "15": ("2027-05-12T00:00:00Z", "2027-11-11T00:00:00Z"), "16": ("2028-05-09T00:00:00Z", "2028-11-09T00:00:00Z"),
    "17": ("2029-05-08T00:00:00Z", "2029-11-08T00:00:00Z"),
}
DEFAULT_VERSIONS = {"pg": "17", "valkey": "8"}  # what /options offers for an engine the backend runs none of
FIREWALL_RULE_TYPES = ("droplet", "k8s", "ip_addr", "tag", "app")  # the spec's enum
FIREWALL_MAX_RULES = 100  # "The firewall is limited to 100 rules (or trusted sources)."
TAG_NAME = re.compile(r"[A-Za-z0-9_:\-]{1,255}")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Databases:
    """Database clusters and their replicas, on a world's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def cluster_status(self, c: Cluster) -> str:
        """``creating`` or ``online``, from timestamps or (restores) the backend."""
        if c.awaiting_backend:
            if self.store.db_backend.connection(c.name) is None:
                return "creating"
            c.awaiting_backend = False
            c.add_event("cluster_create", self.store.clock())
        return "creating" if self.store.clock() < c.ready_at else "online"

    def synthetic_connection(self, name: str, engine: str, kind: str = "") -> ConnectionInfo:
        """A DigitalOcean-looking connection for a cluster the backend does not run (``kind``: host prefix)."""
        user_no = int(self.store.account["uuid"][:6], 16) % 10_000_000
        host = f"{kind}{name}-do-user-{user_no}-0.j.db.ondigitalocean.com"
        if engine in REDIS_ENGINES:
            return ConnectionInfo(host, 25061, "default", synthetic_secret(name), "", True)
        return ConnectionInfo(host, 25060, "doadmin", synthetic_secret(name), "defaultdb", True)

    @staticmethod
    def conn_json(info: ConnectionInfo, engine: str) -> dict[str, Any]:
        """A connection as the API shows it, with the URI the engine's clients take."""
        if engine in REDIS_ENGINES:
            scheme = "rediss" if info.ssl else "redis"
            uri = f"{scheme}://{info.user}:{info.password}@{info.host}:{info.port}"
        else:
            scheme = {"mysql": "mysql", "mongodb": "mongodb+srv"}.get(engine, "postgresql")
            mode = "require" if info.ssl else "disable"
            uri = f"{scheme}://{info.user}:{info.password}@{info.host}:{info.port}/{info.database}?sslmode={mode}"
        return {"uri": uri, "database": info.database, "host": info.host, "port": info.port, "user": info.user,
                "password": info.password, "ssl": info.ssl}

    def real_connection(self, c: Cluster) -> ConnectionInfo | None:
        """The connection of a cluster the backend runs: its own, or (being restored) the one it will have."""
        return self.store.db_backend.connection(c.name) or c.planned

    def cluster_connection(self, c: Cluster) -> ConnectionInfo:
        """The cluster's connection: the backend's when it runs the cluster, else synthetic."""
        return self.real_connection(c) or self.synthetic_connection(c.name, c.engine)

    def versions(self, c: Cluster, real: bool) -> tuple[str, str]:
        """(version, semantic_version): the servers' own for a cluster the backend runs."""
        full = self.store.db_backend.engine_version(c.engine) if real else None
        if full:
            return full.split(".", 1)[0], full
        return c.version, f"{c.version}.4" if c.engine == "pg" else f"{c.version}.0.2"

    def user_json(self, c: Cluster, user: str, info: ConnectionInfo, real: bool) -> dict[str, Any]:
        """A database user with its password (the server's real one for a cluster the backend runs)."""
        password = info.password if user == info.user else (
            (self.store.db_backend.user_password(c.name, user) if real else None)
            or synthetic_secret(f"{c.name}/{user}"))
        return {"name": user, "role": "primary" if user in ("doadmin", "default") else "normal", "password": password}

    def users_json(self, c: Cluster) -> list[dict[str, Any]]:
        """Every user of the cluster."""
        real = self.real_connection(c)
        info = real or self.synthetic_connection(c.name, c.engine)
        return [self.user_json(c, u, info, real is not None) for u in c.users]

    def cluster_json(self, c: Cluster) -> dict[str, Any]:
        """A database cluster as the API shows it."""
        status = self.cluster_status(c)
        real = self.real_connection(c)
        info = real or self.synthetic_connection(c.name, c.engine)
        conn = self.conn_json(info, c.engine)
        if real is not None:
            private = dict(conn)
        else:
            private = self.conn_json(self.synthetic_connection(c.name, c.engine, "private-"), c.engine)
        version, semantic = self.versions(c, real is not None)
        out: dict[str, Any] = {
            "id": c.id, "name": c.name, "engine": c.engine, "version": version, "semantic_version": semantic,
            "num_nodes": c.num_nodes, "size": c.size, "region": c.region, "status": status,
            "created_at": iso(c.created_at), "private_network_uuid": c.private_network_uuid,
            "tags": list(c.tags) or None, "db_names": list(c.db_names) or None,
            "connection": conn, "private_connection": private,
            "users": [self.user_json(c, u, info, real is not None) for u in c.users] or None,
            "maintenance_window": dict(c.maintenance), "project_id": c.project_id,
            "rules": [dict(r) for r in c.firewall], "storage_size_mib": c.storage_size_mib,
        }
        if real is None:
            out["metrics_endpoints"] = [{"host": info.host, "port": 9273}]
        elif (endpoint := self.store.db_backend.metrics_endpoint(c.name)) is not None:
            out["metrics_endpoints"] = [{"host": endpoint[0], "port": endpoint[1]}]
        if c.num_nodes > 1:
            standby = (self.store.db_backend.standby_connection(c.name) if real is not None
                       else self.synthetic_connection(c.name, c.engine, "replica-"))
            if standby is not None:  # a real cluster lists the standby that really runs, else none
                out["standby_connection"] = self.conn_json(standby, c.engine)
                out["standby_private_connection"] = dict(out["standby_connection"])
        return out

    def replica_json(self, c: Cluster, r: Replica) -> dict[str, Any]:
        """A read replica as the API shows it."""
        backend = self.store.db_backend.connection(c.name, r.name)
        info = backend or self.synthetic_connection(r.name, c.engine)
        conn = self.conn_json(info, c.engine)
        private = dict(conn) if backend else self.conn_json(
            self.synthetic_connection(r.name, c.engine, "private-"), c.engine)
        return {
            "id": r.id, "name": r.name, "region": r.region, "size": r.size,
            "status": "creating" if self.store.clock() < r.ready_at else "online", "created_at": iso(r.created_at),
            "connection": conn, "private_connection": private, "private_network_uuid": c.private_network_uuid,
            "tags": list(r.tags), "storage_size_mib": r.storage_size_mib,
        }

    def pool_json(self, c: Cluster, pool: dict[str, Any]) -> dict[str, Any]:
        """A connection pool: its real PgBouncer's connection when the backend runs one, else synthetic."""
        name, user = str(pool["name"]), str(pool.get("user", "doadmin"))
        real = self.real_connection(c)
        info = self.store.db_backend.pool_connection(c.name, name) if real is not None else None
        if info is None:
            base = self.synthetic_connection(c.name, c.engine)
            password = self.user_json(c, user, real or base, real is not None)["password"]
            info = ConnectionInfo(base.host, POOL_PORT, user, password, name, True)
        conn = self.conn_json(info, c.engine)
        return {"name": name, "mode": pool.get("mode", "transaction"), "size": int(pool.get("size", 10)),
                "db": pool.get("db", "defaultdb"), "user": user, "connection": conn, "private_connection": dict(conn)}

    def pool(self, c: Cluster, name: str) -> dict[str, Any]:
        """The pool or a 404."""
        found = next((p for p in c.pools if p["name"] == name), None)
        if found is None:
            raise ApiError.not_found()
        return found

    def config(self, c: Cluster) -> dict[str, Any]:
        """GET .../config: the engine's settings (read from the server the backend runs, when it runs it)."""
        out: dict[str, Any]
        if c.engine in REDIS_ENGINES:
            policy = c.eviction_policy or "noeviction"
            prefix = c.engine
            out = {f"{prefix}_maxmemory_policy": policy if prefix == "valkey" else policy.replace("_", "-"),
                   f"{prefix}_ssl": True, f"{prefix}_persistence": "off"}
        else:
            out = {"backup_hour": c.backup_hour, "backup_minute": 13}
        real = self.store.db_backend.engine_config(c.name) if self.real_connection(c) is not None else None
        return {**out, **(real or {})}

    def options(self) -> dict[str, Any]:
        """GET /v2/databases/options: the engines the twin serves, in the versions the sandbox really runs."""
        regions = [slug for slug, _ in REGIONS]
        sizes = list(DB_SIZE_STORAGE_MIB)
        options: dict[str, Any] = {}
        availability: dict[str, Any] = {}
        for engine, default in DEFAULT_VERSIONS.items():
            full = self.store.db_backend.engine_version(engine)
            version = full.split(".", 1)[0] if full else default
            options[engine] = {"regions": regions, "versions": [version],
                               "layouts": [{"num_nodes": n, "sizes": sizes if n == 1 else sizes[1:]}
                                           for n in (1, 2, 3)]}
            eoa, eol = PG_LIFECYCLE.get(version, (None, None)) if engine == "pg" else (None, None)
            availability[engine] = [{"version": version, "end_of_availability": eoa, "end_of_life": eol}]
        return {"options": options, "version_availability": availability}

    def _name_taken(self, name: str) -> bool:
        return any(c.name == name or name in c.replicas for c in self.store.clusters.values())

    def create_cluster(self, body: dict[str, Any]) -> Cluster:
        """POST /v2/databases, including point-in-time restore (``backup_restore``)."""
        for key in ("name", "engine", "num_nodes", "size", "region"):
            if key not in body:
                raise ApiError.unprocessable(f"{key} is required")
        name = str(body["name"])
        if self._name_taken(name):
            raise ApiError.unprocessable(f"a database cluster named {name} already exists")
        now = self.store.clock()
        restore = body.get("backup_restore")
        source: Cluster | None = None
        target: datetime | None = None
        if restore is not None:
            source = self.store.find_cluster_by_name(str(restore.get("database_name", "")))
            if source is None:
                raise ApiError.not_found(f"source database cluster {restore.get('database_name')} not found")
            if source.engine != body["engine"]:
                raise ApiError.unprocessable("engine must match the source cluster's engine")
            if restore.get("backup_created_at"):
                try:
                    target = parse_time(str(restore["backup_created_at"]))
                except ValueError as exc:
                    raise ApiError.unprocessable("backup_created_at must be an RFC 3339 time") from exc
                ts = target.timestamp()
                if ts > now or ts < now - PITR_DAYS * 86400 or ts < source.created_at:
                    raise ApiError.unprocessable(
                        f"backup_created_at must be within the last {PITR_DAYS} days of the source's backups")
        cid = str(uuid.uuid4())
        c = Cluster(
            id=cid, name=name, engine=str(body["engine"]),
            version=str(body.get("version") or (source.version if source else "16")), region=str(body["region"]),
            size=str(body["size"]), num_nodes=int(body["num_nodes"]),
            storage_size_mib=int(body.get("storage_size_mib") or (
                0 if str(body["engine"]) in REDIS_ENGINES else DB_SIZE_STORAGE_MIB.get(str(body["size"]), 10240))),
            created_at=now, ready_at=now + self.store.durations.cluster_create, tags=list(body.get("tags") or []),
            private_network_uuid=str(body.get("private_network_uuid") or self.store.vpc_uuid),
            project_id=str(body.get("project_id") or self.store.project_id),
        )
        if c.engine in REDIS_ENGINES:
            c.users, c.eviction_policy = ["default"], "noeviction"
        else:
            c.users = ["doadmin"]
            c.db_names = list(body.get("db_names") or (source.db_names if source else ["defaultdb"]))
        c.maintenance = {"day": "tuesday", "hour": "04:00:00", "pending": False, "description": []}
        c.firewall = [self.firewall_rule(cid, r, now) for r in body.get("rules") or []]
        if source is not None:
            c.restored_from = source.name
            c.users = list(source.users)  # roles are in the data; pools are the cluster's, not restored
            c.awaiting_backend = True
            c.planned = self.store.db_backend.restore(source.name, target, name)
            log.info("restore of %s at %s into %s started", source.name, target or "latest backup", name)
        else:
            c.add_event("cluster_create", now)
        self.store.clusters[cid] = c
        return c

    def delete_cluster(self, cluster_id: str) -> None:
        """DELETE /v2/databases/{uuid}: the cluster and its replicas leave the API and the backend destroys
        their servers (started here, finished after the 204, as on DigitalOcean). The backend first: if it
        raises, the answer is a 500 and the cluster stays."""
        c = self.store.cluster(cluster_id)
        self.store.db_backend.drop(c.name)
        del self.store.clusters[cluster_id]
        log.info("database cluster %s deleted", c.name)

    def create_replica(self, c: Cluster, body: dict[str, Any]) -> Replica:
        """POST /v2/databases/{uuid}/replicas."""
        name = body.get("name")
        if not name:
            raise ApiError.unprocessable("name is required")
        if self._name_taken(str(name)):
            raise ApiError.unprocessable(f"a database cluster or replica named {name} already exists")
        now = self.store.clock()
        r = Replica(str(uuid.uuid4()), str(name), str(body.get("region") or c.region), str(body.get("size") or c.size),
                    now, now + self.store.durations.replica_create,
                    int(body.get("storage_size_mib") or c.storage_size_mib), list(body.get("tags") or []))
        c.replicas[r.name] = r
        return r

    def replica(self, c: Cluster, name: str) -> Replica:
        """The replica or a 404."""
        r = c.replicas.get(name)
        if r is None:
            raise ApiError.not_found()
        return r

    def promote_replica(self, c: Cluster, name: str) -> Cluster:
        """PUT .../replicas/{name}/promote: the replica becomes a standalone cluster (see the state module)."""
        r = self.replica(c, name)
        self.store.db_backend.promote(c.name, r.name)
        now = self.store.clock()
        del c.replicas[name]
        new = Cluster(
            id=r.id, name=r.name, engine=c.engine, version=c.version, region=r.region, size=r.size, num_nodes=1,
            storage_size_mib=r.storage_size_mib, created_at=r.created_at, ready_at=now,
            db_names=list(c.db_names), users=list(c.users), tags=list(r.tags), maintenance=dict(c.maintenance),
            eviction_policy=c.eviction_policy, backup_hour=c.backup_hour,  # pools stay with the source
            private_network_uuid=c.private_network_uuid, project_id=c.project_id,
        )
        new.firewall = [{**rule, "cluster_uuid": new.id,
                         "uuid": self.store.new_id("fwrule", f"{new.id}/{rule['type']}/{rule['value']}")}
                        for rule in c.firewall]
        new.add_event("cluster_master_promotion", now)
        c.add_event("cluster_master_promotion", now)
        self.store.clusters[new.id] = new
        log.info("replica %s of %s promoted to standalone cluster %s", r.name, c.name, new.id)
        return new

    def backups(self, c: Cluster) -> list[BackupInfo]:
        """The cluster's backups, newest first (backend's, or synthetic daily ones)."""
        got = self.store.db_backend.list_backups(c.name)
        if got is None:
            now = datetime.fromtimestamp(self.store.clock(), UTC)
            day = now.replace(hour=c.backup_hour, minute=13, second=7, microsecond=0)
            if day > now:
                day -= timedelta(days=1)
            got = []
            for i in range(PITR_DAYS):
                ts = day - timedelta(days=i)
                if ts.timestamp() >= c.created_at:
                    got.append(BackupInfo(ts, round(c.storage_size_mib / 1024 * 0.04 + 0.05 * (i % 3), 2)))
        return sorted(got, key=lambda b: b.created_at, reverse=True)

    def set_firewall(self, c: Cluster, rules: Iterable[Any]) -> None:
        """PUT .../firewall: replace the rules, each checked first (a 422 changes nothing)."""
        now = self.store.clock()
        checked = [self.check_firewall_rule(r) for r in rules]
        if len(checked) > FIREWALL_MAX_RULES:
            raise ApiError.unprocessable(f"a firewall holds at most {FIREWALL_MAX_RULES} rules, not {len(checked)}")
        c.firewall = [self.firewall_rule(c.id, r, now) for r in checked]
        c.add_event("cluster_update", now)

    def check_firewall_rule(self, rule: Any) -> dict[str, Any]:
        """A rule of a PUT .../firewall body, checked as DigitalOcean does (the spec's enum and value forms);
        ApiError 422 naming what is wrong. An ``app`` rule may name the app (the scenario does) or give its id."""
        if not isinstance(rule, dict) or "type" not in rule or "value" not in rule:
            raise ApiError.unprocessable("each rule needs type and value")
        kind, value = rule["type"], rule["value"]
        if kind not in FIREWALL_RULE_TYPES:
            raise ApiError.unprocessable(f"rule type {kind!r} is not one of {', '.join(FIREWALL_RULE_TYPES)}")
        if not isinstance(value, str) or not value.strip():
            raise ApiError.unprocessable(f"rule value of a {kind} rule must be a non-empty string")
        if kind == "ip_addr":
            try:
                net = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ApiError.unprocessable(f"{value!r} is not an IPv4 address or CIDR range") from None
            if net.version != 4:
                raise ApiError.unprocessable(f"{value!r}: IPv6 addresses cannot be added as trusted sources")
        elif kind == "droplet" and not value.isdigit():
            raise ApiError.unprocessable(f"{value!r} is not a Droplet id (a number)")
        elif kind == "k8s" and not _is_uuid(value):
            raise ApiError.unprocessable(f"{value!r} is not a Kubernetes cluster id (a uuid)")
        elif kind == "tag" and not TAG_NAME.fullmatch(value):
            raise ApiError.unprocessable(f"{value!r} is not a tag name (letters, digits, '-', '_', ':')")
        elif kind == "app" and value not in self.store.apps and self.store.find_app_by_name(value) is None:
            raise ApiError.unprocessable(f"no app {value!r} in this account")
        out = {"type": kind, "value": value}
        if isinstance(rule.get("description"), str) and rule["description"]:
            out["description"] = rule["description"]
        return out

    def firewall_rule(self, cluster_id: str, rule: dict[str, Any], ts: float) -> dict[str, Any]:
        """A firewall rule as the API shows it (an ``app`` rule names the app; the API holds its id)."""
        value = str(rule["value"])
        if rule["type"] == "app":
            app = self.store.find_app_by_name(value)
            value = app.id if app else value
        out = {"uuid": rule.get("uuid") or self.store.new_id("fwrule", f"{cluster_id}/{rule['type']}/{value}"),
               "cluster_uuid": cluster_id, "type": rule["type"], "value": value, "created_at": iso(ts)}
        if rule.get("description"):
            out["description"] = rule["description"]
        return out
