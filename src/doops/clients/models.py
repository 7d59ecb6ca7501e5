"""Typed models of DigitalOcean answers, built once from pydo's dicts in the client layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops.times import parse_or_none


def parse_time(value: Any) -> datetime | None:
    """API times: the one RFC 3339 parser (doops.times); a missing or malformed field is None."""
    return parse_or_none(value) if isinstance(value, str) else None


@dataclass
class Account:
    uuid: str
    email: str
    status: str
    droplet_limit: int | None = None
    team: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Account:
        a = d.get("account", d)
        team = a.get("team") or {}
        return cls(
            uuid=str(a.get("uuid", "")),
            email=str(a.get("email", "")),
            status=str(a.get("status", "")),
            droplet_limit=a.get("droplet_limit"),
            team=team.get("name") if isinstance(team, dict) else None,
        )


@dataclass
class Connection:
    """A database connection object. ``password`` is kept for connecting, never rendered."""

    host: str
    port: int
    user: str
    database: str
    ssl: bool = True
    password: str = field(default="", repr=False)

    @classmethod
    def from_api(cls, d: dict[str, Any] | None) -> Connection | None:
        if not d:
            return None
        from doops import masking

        password = str(d.get("password") or "")
        masking.register(password)
        return cls(
            host=str(d.get("host", "")),
            port=int(d.get("port") or 25060),
            user=str(d.get("user", "")),
            database=str(d.get("database", "")),
            ssl=bool(d.get("ssl", True)),
            password=password,
        )

    def to_data(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "database": self.database, "ssl": self.ssl}


@dataclass
class DatabaseReplica:
    id: str
    name: str
    region: str
    status: str
    size: str = ""
    created_at: datetime | None = None
    connection: Connection | None = None
    private_connection: Connection | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseReplica:
        return cls(
            id=str(d.get("id", "")),
            name=str(d.get("name", "")),
            region=str(d.get("region", "")),
            status=str(d.get("status", "")),
            size=str(d.get("size", "")),
            created_at=parse_time(d.get("created_at")),
            connection=Connection.from_api(d.get("connection")),
            private_connection=Connection.from_api(d.get("private_connection")),
        )


@dataclass
class DatabaseCluster:
    id: str
    name: str
    engine: str
    version: str
    region: str
    status: str
    num_nodes: int
    size: str = ""
    tags: list[str] = field(default_factory=list)
    db_names: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    connection: Connection | None = None
    maintenance_pending: bool = False
    maintenance_description: list[str] = field(default_factory=list)
    eviction_policy: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseCluster:
        mw = d.get("maintenance_window") or {}
        return cls(
            id=str(d.get("id", "")),
            name=str(d.get("name", "")),
            engine=str(d.get("engine", "")),
            version=str(d.get("version", "")),
            region=str(d.get("region", "")),
            status=str(d.get("status", "")),
            num_nodes=int(d.get("num_nodes") or 0),
            size=str(d.get("size", "")),
            tags=list(d.get("tags") or []),
            db_names=list(d.get("db_names") or []),
            created_at=parse_time(d.get("created_at")),
            connection=Connection.from_api(d.get("connection")),
            maintenance_pending=bool(mw.get("pending", False)),
            maintenance_description=list(mw.get("description") or []),
        )


@dataclass
class DatabaseBackup:
    created_at: datetime | None
    size_gigabytes: float

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseBackup:
        return cls(created_at=parse_time(d.get("created_at")), size_gigabytes=float(d.get("size_gigabytes") or 0))


@dataclass
class Deployment:
    id: str
    phase: str
    created_at: datetime | None
    updated_at: datetime | None = None
    cause: str = ""

    @classmethod
    def from_api(cls, d: dict[str, Any] | None) -> Deployment | None:
        if not d:
            return None
        return cls(id=str(d.get("id", "")), phase=str(d.get("phase", "UNKNOWN")),
                   created_at=parse_time(d.get("created_at")), updated_at=parse_time(d.get("updated_at")),
                   cause=str(d.get("cause", "")))


@dataclass
class App:
    id: str
    name: str
    live_url: str | None
    region: str
    components: list[str]
    alert_rules: list[str]
    active_deployment: Deployment | None
    in_progress_deployment: Deployment | None
    pending_deployment: Deployment | None
    last_deployment_created_at: datetime | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> App:
        spec = d.get("spec") or {}
        comps = [c.get("name", "") for key in ("services", "static_sites", "workers", "jobs", "functions")
                 for c in spec.get(key) or []]
        region = d.get("region") or {}
        return cls(
            id=str(d.get("id", "")),
            name=str(spec.get("name", "")),
            live_url=d.get("live_url"),
            region=str(region.get("slug", "")) if isinstance(region, dict) else str(region),
            components=comps,
            alert_rules=[str(a.get("rule")) for a in spec.get("alerts") or [] if not a.get("disabled")],
            active_deployment=Deployment.from_api(d.get("active_deployment")),
            in_progress_deployment=Deployment.from_api(d.get("in_progress_deployment")),
            pending_deployment=Deployment.from_api(d.get("pending_deployment")),
            last_deployment_created_at=parse_time(d.get("last_deployment_created_at")),
        )


@dataclass
class ComponentHealth:
    name: str
    state: str
    replicas_desired: int
    replicas_ready: int
    cpu_percent: float | None
    memory_percent: float | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ComponentHealth:
        return cls(name=str(d.get("name", "")), state=str(d.get("state", "UNKNOWN")),
                   replicas_desired=int(d.get("replicas_desired") or 0),
                   replicas_ready=int(d.get("replicas_ready") or 0),
                   cpu_percent=d.get("cpu_usage_percent"), memory_percent=d.get("memory_usage_percent"))


@dataclass
class FunctionsNamespace:
    id: str  # the namespace id used in API paths
    label: str
    region: str

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> FunctionsNamespace:
        return cls(id=str(d.get("namespace", "")), label=str(d.get("label", "")), region=str(d.get("region", "")))


@dataclass
class Trigger:
    name: str
    type: str
    enabled: bool
    cron: str | None
    last_run_at: datetime | None
    function: str = ""

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Trigger:
        sched = d.get("scheduled_details") or {}
        runs = d.get("scheduled_runs") or {}
        return cls(name=str(d.get("name", "")), type=str(d.get("type", "")), enabled=bool(d.get("is_enabled")),
                   cron=sched.get("cron"), last_run_at=parse_time(runs.get("last_run_at")),
                   function=str(d.get("function", "")))


@dataclass
class UptimeCheck:
    id: str
    name: str
    target: str
    enabled: bool
    regions: list[str]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> UptimeCheck:
        return cls(id=str(d.get("id", "")), name=str(d.get("name", "")), target=str(d.get("target", "")),
                   enabled=bool(d.get("enabled", True)), regions=list(d.get("regions") or []))


@dataclass
class AlertPolicy:
    uuid: str
    type: str
    enabled: bool
    entities: list[str]
    tags: list[str]
    description: str = ""

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> AlertPolicy:
        return cls(uuid=str(d.get("uuid", "")), type=str(d.get("type", "")), enabled=bool(d.get("enabled")),
                   entities=list(d.get("entities") or []), tags=list(d.get("tags") or []),
                   description=str(d.get("description", "")))


@dataclass
class CdnEndpoint:
    id: str
    origin: str
    endpoint: str
    ttl: int
    custom_domain: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> CdnEndpoint:
        return cls(id=str(d.get("id", "")), origin=str(d.get("origin", "")), endpoint=str(d.get("endpoint", "")),
                   ttl=int(d.get("ttl") or 0), custom_domain=d.get("custom_domain") or None)


@dataclass
class ConnectionPool:
    name: str
    size: int
    mode: str
    db: str

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ConnectionPool:
        return cls(name=str(d.get("name", "")), size=int(d.get("size") or 0), mode=str(d.get("mode", "")),
                   db=str(d.get("db", "")))


@dataclass
class DatabaseEvent:
    """One entry of GET /v2/databases/{uuid}/events: a promotion shows up here as ``cluster_master_promotion``."""

    id: str
    cluster_name: str
    event_type: str
    create_time: datetime | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseEvent:
        return cls(id=str(d.get("id", "")), cluster_name=str(d.get("cluster_name", "")),
                   event_type=str(d.get("event_type", "")), create_time=parse_time(d.get("create_time")))


# -- App Platform operations (`doops app`) ---------------------------------------------------------------------


@dataclass
class AppDeployment:
    """One deployment as `doops app` follows it: its phase, what caused it, and when it became ACTIVE (the end
    of its last progress step: the API has no field for it)."""

    id: str
    phase: str
    cause: str
    created_at: datetime | None
    phase_last_updated_at: datetime | None
    cloned_from: str | None = None
    steps_done: int = 0
    steps_total: int = 0
    active_at: datetime | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> AppDeployment:
        phase = str(d.get("phase") or "UNKNOWN")
        progress = d.get("progress") or {}
        steps = progress.get("steps") or []
        ends = [t for s in steps if isinstance(s, dict) and (t := parse_time(s.get("ended_at"))) is not None]
        changed = parse_time(d.get("phase_last_updated_at")) or parse_time(d.get("updated_at"))
        active_at = None
        if phase in ("ACTIVE", "SUPERSEDED"):
            active_at = max(ends) if ends else (changed if phase == "ACTIVE" else None)
        return cls(id=str(d.get("id", "")), phase=phase, cause=str(d.get("cause") or ""),
                   created_at=parse_time(d.get("created_at")), phase_last_updated_at=changed,
                   cloned_from=d.get("cloned_from") or None, steps_done=int(progress.get("success_steps") or 0),
                   steps_total=int(progress.get("total_steps") or 0), active_at=active_at)


@dataclass
class RollbackIssue:
    """A warning or the error of POST /v2/apps/{id}/rollback/validate."""

    code: str
    message: str
    components: list[str] = field(default_factory=list)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> RollbackIssue:
        return cls(code=str(d.get("code") or ""), message=str(d.get("message") or ""),
                   components=[str(c) for c in d.get("components") or []])


@dataclass
class RollbackCheck:
    """POST /v2/apps/{id}/rollback/validate: whether the rollback may go ahead, and what to know if it does."""

    valid: bool
    error: RollbackIssue | None
    warnings: list[RollbackIssue]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> RollbackCheck:
        err = d.get("error")
        return cls(valid=bool(d.get("valid")), error=RollbackIssue.from_api(err) if isinstance(err, dict) else None,
                   warnings=[RollbackIssue.from_api(w) for w in d.get("warnings") or [] if isinstance(w, dict)])


@dataclass
class AppInfo:
    """An app as `doops app` acts on it: its deployments of note and where its health is seen from outside.

    ``health_paths``: the paths on the live URL that reach each service's health check (the ingress route's
    prefix, stripped by App Platform, then the spec's ``health_check.http_path``); ``/`` when no service
    declares one."""

    id: str
    name: str
    live_url: str | None
    components: list[str]
    health_paths: list[str]
    active_deployment: AppDeployment | None
    in_progress_deployment: AppDeployment | None
    pinned_deployment: AppDeployment | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> AppInfo:
        spec = d.get("spec") or {}
        comps = [str(c.get("name", "")) for key in ("services", "static_sites", "workers", "jobs", "functions")
                 for c in spec.get(key) or []]

        def dep(key: str) -> AppDeployment | None:
            v = d.get(key)
            return AppDeployment.from_api(v) if isinstance(v, dict) and v.get("id") else None

        return cls(id=str(d.get("id", "")), name=str(spec.get("name", "")), live_url=d.get("live_url") or None,
                   components=comps, health_paths=_health_paths(spec),
                   active_deployment=dep("active_deployment"), in_progress_deployment=dep("in_progress_deployment"),
                   pinned_deployment=dep("pinned_deployment"))


def _health_paths(spec: dict[str, Any]) -> list[str]:
    prefixes: dict[str, tuple[str, bool]] = {}
    for rule in (spec.get("ingress") or {}).get("rules") or []:
        comp = rule.get("component") or {}
        prefix = ((rule.get("match") or {}).get("path") or {}).get("prefix")
        if comp.get("name") and isinstance(prefix, str) and comp["name"] not in prefixes:
            preserve = str(comp.get("preserve_path_prefix", "")).lower() == "true"
            prefixes[comp["name"]] = (prefix, preserve)
    paths: list[str] = []
    for svc in spec.get("services") or []:
        http_path = (svc.get("health_check") or {}).get("http_path")
        if not isinstance(http_path, str) or not http_path:
            continue
        http_path = http_path if http_path.startswith("/") else "/" + http_path
        legacy = [r.get("path") for r in svc.get("routes") or [] if isinstance(r.get("path"), str)]
        prefix, preserve = prefixes.get(str(svc.get("name")), (legacy[0] if legacy else "/", False))
        path = http_path if preserve else prefix.rstrip("/") + http_path
        if path not in paths:
            paths.append(path)
    return paths or ["/"]


# -- DNS failover (`doops failover app`, `doops dns check`) ----------------------------------------------------


@dataclass
class DomainRecord:
    """A domain record as the API holds it: ``data`` of a host-name record ends with a dot (DigitalOcean
    refuses it without one), ``name`` is relative to the domain (``@`` for the apex)."""

    id: int
    type: str
    name: str
    data: str
    ttl: int

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DomainRecord:
        return cls(id=int(d.get("id") or 0), type=str(d.get("type", "")).upper(), name=str(d.get("name", "")),
                   data=str(d.get("data", "")), ttl=int(d.get("ttl") or 0))


@dataclass
class AppEndpoint:
    """An app as a DNS failover sees it: where it runs (App Platform region slug and its data centers), the
    host a record points at (``default_ingress``, ``<app>-<id5>.ondigitalocean.app``), how to reach it
    (``live_url``) and the health path to ask (the spec's health check through its ingress route)."""

    id: str
    name: str
    region: str
    data_centers: list[str]
    ingress_host: str | None
    live_url: str | None
    active_phase: str | None
    health_paths: list[str]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> AppEndpoint:
        from urllib.parse import urlsplit

        spec = d.get("spec") or {}
        region = d.get("region") or {}
        slug = str(region.get("slug", "")) if isinstance(region, dict) else str(region or "")
        dcs = [str(x) for x in (region.get("data_centers") or [])] if isinstance(region, dict) else []
        ingress = str(d.get("default_ingress") or "")
        host = urlsplit(ingress).hostname if "://" in ingress else (ingress or None)
        active = d.get("active_deployment") or {}
        return cls(id=str(d.get("id", "")), name=str(spec.get("name", "")), region=slug, data_centers=dcs,
                   ingress_host=host.lower() if host else None, live_url=d.get("live_url") or None,
                   active_phase=str(active.get("phase")) if isinstance(active, dict) and active else None,
                   health_paths=_health_paths(spec))

    def in_region(self, region: str) -> bool:
        """``ams3`` (a data center) or ``ams`` (the App Platform region slug)."""
        r = region.lower()
        return r == self.region.lower() or r in (dc.lower() for dc in self.data_centers)
