"""What `doops assess` reads of the API besides what status reads: the settings that say how a resource is
deployed (firewall rules, private network, standby nodes, app instance counts and health checks, Spaces keys'
grants), built once from pydo's dicts here, as clients/models.py does for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FirewallRule:
    """One trusted source of a database cluster: ``type`` is ip_addr, droplet, k8s, tag or app."""

    type: str
    value: str
    description: str = ""

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> FirewallRule:
        return cls(type=str(d.get("type", "")), value=str(d.get("value", "")),
                   description=str(d.get("description") or ""))


@dataclass
class ClusterPosture:
    """A database cluster's deployment: nodes, private network, whether its connections require TLS."""

    id: str
    name: str
    engine: str
    region: str
    num_nodes: int
    private_network_uuid: str
    ssl: bool | None  # the connection object's ``ssl``; None when the API gives no connection
    standby_running: bool  # ``standby_connection`` present: a standby node really runs
    rules: list[FirewallRule] = field(default_factory=list)  # the cluster object's own copy of its firewall

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ClusterPosture:
        conn = d.get("connection") or None
        return cls(id=str(d.get("id", "")), name=str(d.get("name", "")), engine=str(d.get("engine", "")),
                   region=str(d.get("region", "")), num_nodes=int(d.get("num_nodes") or 0),
                   private_network_uuid=str(d.get("private_network_uuid") or ""),
                   ssl=bool(conn.get("ssl")) if isinstance(conn, dict) and "ssl" in conn else None,
                   standby_running=bool(d.get("standby_connection")),
                   rules=[FirewallRule.from_api(r) for r in d.get("rules") or [] if isinstance(r, dict)])


@dataclass
class ServicePosture:
    """One component of an app spec: how many instances serve it and whether App Platform health-checks it."""

    name: str
    kind: str  # service | worker | static_site | job | function
    instance_count: int | None  # None: not a running component (static sites, jobs, functions)
    health_check: bool


@dataclass
class AppPosture:
    id: str
    name: str
    region: str
    live_url: str | None
    repo: str | None  # the source repository of its first service (a standby deploys the same one)
    components: list[ServicePosture] = field(default_factory=list)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> AppPosture:
        spec = d.get("spec") or {}
        region = d.get("region") or {}
        comps: list[ServicePosture] = []
        repo: str | None = None
        for key, kind in (("services", "service"), ("workers", "worker"), ("static_sites", "static_site"),
                          ("jobs", "job"), ("functions", "function")):
            for c in spec.get(key) or []:
                running = kind in ("service", "worker")
                comps.append(ServicePosture(
                    name=str(c.get("name", "")), kind=kind,
                    instance_count=int(c.get("instance_count") or 1) if running else None,
                    health_check=bool(c.get("health_check")) if kind == "service" else True))
                source = c.get("github") or c.get("gitlab") or c.get("git") or {}
                if repo is None and isinstance(source, dict):
                    repo = source.get("repo") or source.get("repo_clone_url") or None
        return cls(id=str(d.get("id", "")), name=str(spec.get("name", "")),
                   region=str(region.get("slug", "")) if isinstance(region, dict) else str(region or ""),
                   live_url=d.get("live_url") or None, repo=repo, components=comps)


@dataclass
class SpacesKey:
    """A Spaces access key (never its secret): its name and grants, ``bucket`` "" meaning every bucket."""

    name: str
    access_key: str
    grants: list[tuple[str, str]] = field(default_factory=list)  # (bucket, permission)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> SpacesKey:
        return cls(name=str(d.get("name", "")), access_key=str(d.get("access_key", "")),
                   grants=[(str(g.get("bucket") or ""), str(g.get("permission") or ""))
                           for g in d.get("grants") or [] if isinstance(g, dict)])
