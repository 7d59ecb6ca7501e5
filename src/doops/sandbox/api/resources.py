"""The twin's resources: the records every concern of the world shares, and the ids, times and lookups they use.

:class:`Store` holds one world's resources plus what every concern reads (the clock, the scenario's durations,
the backends, the faults); :class:`~doops.sandbox.api.state.World` is the front that builds and serves it.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from doops.sandbox.api.backends import (
    AppBackend,
    CdnBackend,
    ConnectionInfo,
    DatabaseBackend,
    FakeAppBackend,
    FakeCdnBackend,
    FakeDatabaseBackend,
)
from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.faults import Faults
from doops.sandbox.api.scenario import Durations, Scenario
from doops.times import parse_rfc3339

_NS = uuid.UUID("6f1c1a9e-2b7d-4c55-9a55-1e4b7c1d0d00")
PITR_DAYS = 7
REGIONS = [
    ("nyc1", "New York 1"), ("nyc3", "New York 3"), ("ams3", "Amsterdam 3"), ("sfo3", "San Francisco 3"),
    ("sgp1", "Singapore 1"), ("lon1", "London 1"), ("fra1", "Frankfurt 1"), ("tor1", "Toronto 1"),
    ("blr1", "Bangalore 1"), ("syd1", "Sydney 1"),
]
APP_REGIONS = {
    "nyc": ("New York", "us", "North America", ["nyc1", "nyc3"]),
    "ams": ("Amsterdam", "nl", "Europe", ["ams3"]),
    "sfo": ("San Francisco", "us", "North America", ["sfo3"]),
    "fra": ("Frankfurt", "de", "Europe", ["fra1"]),
    "lon": ("London", "gb", "Europe", ["lon1"]),
}
REDIS_ENGINES = ("redis", "valkey")
# Storage a database size slug comes with (MiB), from DigitalOcean's Managed Database pricing: what a new
# cluster (a restored one too) has unless the request adds storage (``storage_size_mib``).
DB_SIZE_STORAGE_MIB = {
    "db-s-1vcpu-1gb": 10 * 1024, "db-s-1vcpu-2gb": 30 * 1024, "db-s-2vcpu-4gb": 60 * 1024,
    "db-s-4vcpu-8gb": 140 * 1024, "db-s-6vcpu-16gb": 290 * 1024, "db-s-8vcpu-32gb": 580 * 1024,
    "db-s-16vcpu-64gb": 1120 * 1024,
}


def stable_id(kind: str, name: str, seed: str = "") -> str:
    """A realistic uuid derived from the resource's name, so it stays the same for the same world.

    ``seed`` (a sandbox's random id seed) makes ids unique per sandbox: two sandboxes, or a sandbox and a
    real account, never share a cluster or app uuid, so nothing keyed by uuid (locks, pending promotions)
    collides. Without a seed the ids are the same in every world (unit tests rely on that).
    """
    return str(uuid.uuid5(_NS, f"{seed}/{kind}:{name}" if seed else f"{kind}:{name}"))


def iso(ts: float) -> str:
    """DigitalOcean's timestamp format (RFC 3339, seconds, Z)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from a request (``Z`` or offset; naive means UTC): doops's one parser,
    :func:`doops.times.parse_rfc3339`, so the twin accepts exactly what the client sends. ValueError on bad input."""
    return parse_rfc3339(value)


def synthetic_secret(seed: str, prefix: str = "AVNS_") -> str:
    return prefix + base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()[:20].lower()


# ---------------------------------------------------------------------------------------------------
# Databases


@dataclass
class Replica:
    """A read replica of a cluster."""

    id: str
    name: str
    region: str
    size: str
    created_at: float
    ready_at: float
    storage_size_mib: int = 0
    tags: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    """A managed database cluster."""

    id: str
    name: str
    engine: str
    version: str
    region: str
    size: str
    num_nodes: int
    storage_size_mib: int
    created_at: float
    ready_at: float
    db_names: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    maintenance: dict[str, Any] = field(default_factory=dict)
    firewall: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    replicas: dict[str, Replica] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    eviction_policy: str | None = None
    backup_hour: int = 2
    awaiting_backend: bool = False  # restored: creating until the backend has a connection
    planned: ConnectionInfo | None = None  # restored: the connection it will have, given out from the 201 on
    restored_from: str | None = None
    private_network_uuid: str = ""
    project_id: str = ""

    def add_event(self, event_type: str, ts: float) -> None:
        """Append a cluster event (GET .../events)."""
        self.events.append(
            {"id": str(uuid.uuid4()), "cluster_name": self.name, "event_type": event_type,
             "create_time": iso(ts)}
        )


# ---------------------------------------------------------------------------------------------------
# Apps


@dataclass
class Deployment:
    """One App Platform deployment; its phase is derived from ``created_at`` unless ``fixed_phase``."""

    id: str
    created_at: float
    cause: str
    spec: dict[str, Any]
    cloned_from: str | None = None
    fixed_phase: str | None = None  # ERROR / CANCELED, or None to progress by time
    bad_release: str | None = None  # id of the bad-release fault whose broken release this deployment runs


@dataclass
class App:
    """An App Platform app."""

    id: str
    name: str
    region: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    deployments: list[Deployment] = field(default_factory=list)  # oldest first
    pinned: str | None = None
    pre_rollback_spec: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def hostname(self) -> str:
        """The ``*.ondigitalocean.app`` host DigitalOcean assigns."""
        return f"{self.name}-{self.id[:5]}.ondigitalocean.app"

    def components(self) -> list[tuple[str, str, int]]:
        """(name, kind, desired replicas) for every component of the current spec."""
        out: list[tuple[str, str, int]] = []
        for svc in self.spec.get("services", []):
            out.append((svc["name"], "service", int(svc.get("instance_count", 1))))
        for wrk in self.spec.get("workers", []):
            out.append((wrk["name"], "worker", int(wrk.get("instance_count", 1))))
        for site in self.spec.get("static_sites", []):
            out.append((site["name"], "static_site", 1))
        return out


@dataclass
class Check:
    """An Uptime check with its alerts."""

    id: str
    name: str
    type: str
    target: str
    regions: list[str]
    enabled: bool
    app_name: str | None
    created_at: float
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RequestRecord:
    """One line of the request log (never a token, never a body)."""

    time: str
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    token: str | None
    request_id: str
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


def region(slug: str) -> dict[str, Any]:
    """A region object as /v2/regions shows it."""
    name = dict(REGIONS).get(slug, slug)
    return {"name": name, "slug": slug, "available": True,
            "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
            "sizes": ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"]}


def regions() -> list[dict[str, Any]]:
    """All regions."""
    return [region(slug) for slug, _ in REGIONS]


# ---------------------------------------------------------------------------------------------------


class Store:
    """One world's resources, and what every concern reads: the clock, durations, backends and faults.

    The concerns (databases, App Platform, monitoring, the scenario build) each take the store they work on;
    none of them holds state of its own.
    """

    def __init__(
        self,
        scenario: Scenario,
        db: DatabaseBackend | None,
        cdn: CdnBackend | None,
        apps: AppBackend | None,
        clock: Callable[[], float],
        id_seed: str,
    ) -> None:
        self.scenario = scenario
        self.id_seed = id_seed
        self.clock = clock
        self.durations: Durations = scenario.durations
        self.db_backend: DatabaseBackend = db if db is not None else FakeDatabaseBackend(clock=clock)
        self.cdn_backend: CdnBackend = cdn if cdn is not None else FakeCdnBackend()
        self.app_backend: AppBackend = apps if apps is not None else FakeAppBackend()
        self.faults = Faults()
        self.account: dict[str, Any] = {}
        self.project_id = ""
        self.vpc_uuid = ""
        self.clusters: dict[str, Cluster] = {}
        self.cdn_endpoints: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, App] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.alert_policies: dict[str, dict[str, Any]] = {}
        self.checks: dict[str, Check] = {}
        self.spaces_keys: list[dict[str, Any]] = []
        self.buckets: list[dict[str, Any]] = []
        self.load_balancers: dict[str, dict[str, Any]] = {}
        self.domains: dict[str, dict[str, Any]] = {}

    def new_id(self, kind: str, name: str) -> str:
        """This world's uuid for a resource (see :func:`stable_id`)."""
        return stable_id(kind, name, self.id_seed)

    def hex_id(self, name: str) -> str:
        """A 40-hex-digit id (DigitalOcean's account uuid form), seeded like :meth:`new_id`."""
        return hashlib.sha1((self.id_seed + name).encode()).hexdigest()

    def find_app_by_name(self, name: str) -> App | None:
        """The app with this name, if any."""
        return next((a for a in self.apps.values() if a.name == name), None)

    def find_cluster_by_name(self, name: str) -> Cluster | None:
        """The cluster with this name, if any."""
        return next((c for c in self.clusters.values() if c.name == name), None)

    def cluster(self, cluster_id: str) -> Cluster:
        """The cluster with this uuid or a 404."""
        c = self.clusters.get(cluster_id)
        if c is None:
            raise ApiError.not_found()
        return c

    def app(self, app_id: str) -> App:
        """The app with this id or a 404."""
        a = self.apps.get(app_id)
        if a is None:
            raise ApiError.not_found()
        return a
