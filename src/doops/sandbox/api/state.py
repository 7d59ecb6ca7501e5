"""The twin's world: every resource the DigitalOcean API twin serves, built from a scenario.

State is computed lazily from timestamps (no background threads): a cluster created at ``t`` is
``creating`` until ``t + durations.cluster_create``, a deployment walks its phases by elapsed time.
All mutation happens under ``World.lock`` (the server takes it around each handler).

Spec-silent choices (what the OpenAPI spec does not say, and what the twin does):

- Promoting a replica (PUT .../replicas/{name}/promote, 204) turns it into a standalone cluster: it keeps
  the replica's uuid (so it is a uuid distinct from the source's), its name, region and size; it copies
  the source's engine, version, db_names, users, firewall rules and maintenance window; ``num_nodes`` 1;
  status ``online`` at once; it disappears from the source's replicas list; the source stays ``online``.
  Both clusters record a ``cluster_master_promotion`` event. The backend is called first; if it raises,
  the answer is a 500 and nothing changes. Its connection is then asked as ``connection(replica_name)``.
- Point-in-time restore (POST /v2/databases with ``backup_restore``) creates a new cluster with status
  ``creating`` until ``DatabaseBackend.connection(new_name)`` returns a value, then ``online``.
  ``backup_created_at`` must lie within the last 7 days, not in the future and not before the source
  cluster existed, else 422 ``unprocessable_entity``; an unknown source cluster name is 404. Omitted
  ``backup_created_at`` restores the latest backup (``target_time`` None to the backend). The source's
  engine must match the requested engine (422 otherwise).
- A cluster created without ``backup_restore`` (and a new replica) has synthetic DigitalOcean-looking
  connections and goes ``creating`` -> ``online`` after ``durations.cluster_create`` (``replica_create``).
- Backups: from ``DatabaseBackend.list_backups``; when it returns None the twin lists one daily backup at
  the cluster's ``backup_hour`` for each of the last 7 days (none before the cluster existed), newest first.
- A cluster or replica name already in use is 422. Deleting a cluster deletes its replicas.
- Eviction policy routes on a cluster that is not redis/valkey answer 422.
- Deployments: PENDING_BUILD -> BUILDING -> DEPLOYING -> ACTIVE, ``durations.deployment_phase`` each. Of
  the deployments that reached ACTIVE, the newest is ACTIVE and every older one SUPERSEDED. A new
  deployment (create, restart, rollback, revert) clones the current app spec (rollback: the target's).
- Rollback pins the app to the rollback deployment (``pinned_deployment``); while pinned, creating a
  deployment or a second rollback is 400 ``bad_request``; commit unpins (200, empty body); revert
  creates a deployment from the spec in force before the rollback and unpins; commit/revert without a
  rollback in progress is 400. Validate answers ``valid: false`` with ``incompatible_phase`` for a
  deployment that never became ACTIVE, or the current active one, and 404 for an unknown one.
- App health lists services and static sites as components (static sites: 1 replica desired).
  A component is UNHEALTHY (0 replicas ready) when an app-unhealthy fault covers it or
  ``AppBackend.healthy`` says no; otherwise HEALTHY with every replica ready.
- Uptime checks whose target is an app's live URL report DOWN in every region while that app has an
  unhealthy component, UP otherwise.
- Functions triggers: ``last_run_at`` is the latest cron time before now (a few seconds after it),
  ``next_run_at`` the next; a scenario may set ``last_run_ago`` (seconds) to make a trigger look stale.
- Errors: an unknown path is 404 ``not_found``; a known path with another method is 405
  ``method_not_allowed``; a body that is not JSON is 400 ``bad_request``; a backend exception is 500
  ``server_error``. A 401 carries ratelimit-* headers of an "anonymous" budget it does not spend; refused
  (429) requests do not spend budget either. ``retry-after`` is sent on per-minute and CDN 429s only.
- The request log holds every /v2 request (including 401/429), never admin (``/_twin``) calls; its
  ``token`` field is the token's label from the scenario (``tokens: {label: token}``).
- Clearing all faults (``DELETE /_twin/faults``) also resets the rate-limit budgets.
- Pagination: ``per_page`` is clamped to 1..200, ``page`` below 1 is 1; ``links.pages`` holds
  ``first``/``prev`` only after page 1 and ``next``/``last`` only before the last page (so a single
  page answers ``"links": {}``); a page past the end is an empty list.
- The CDN call limit (5 per 10 s) and purge limit (50 file strings per 20 s per endpoint; a wildcard
  counts as one string) are per token; exceeding either is 429 ``too_many_requests`` with ``retry-after``.
- Monitoring alert policy types in the spec cover databases and load balancers only, so app alerts are
  served as App Platform alerts (GET /v2/apps/{app_id}/alerts).
- App metrics (cpu/memory percentage) are deterministic synthetic series, one point per 5 minutes
  (step grows so a range has at most 300 points); unhealthy components read 0.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from doops.sandbox.api.backends import (
    AppBackend,
    BackupInfo,
    CdnBackend,
    ConnectionInfo,
    DatabaseBackend,
    FakeAppBackend,
    FakeCdnBackend,
    FakeDatabaseBackend,
)
from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.faults import Faults
from doops.sandbox.api.limits import RateLimiter, SlidingWindow
from doops.sandbox.api.scenario import Durations, Limits, Scenario

log = logging.getLogger(__name__)

_NS = uuid.UUID("6f1c1a9e-2b7d-4c55-9a55-1e4b7c1d0d00")
PITR_DAYS = 7
ACCOUNT_TEAM_UUID = "5df3e3004a5f5ee1b3fe1c8e2e3c5a4d"
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
    """Parse an RFC 3339 / ISO 8601 time (``Z`` or offset; naive means UTC)."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _secret(seed: str, prefix: str = "AVNS_") -> str:
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


# ---------------------------------------------------------------------------------------------------


class World:
    """Every resource the twin serves, plus limits, faults and the request log."""

    def __init__(
        self,
        scenario: Scenario,
        db: DatabaseBackend | None = None,
        cdn: CdnBackend | None = None,
        apps: AppBackend | None = None,
        clock: Callable[[], float] = time.time,
        id_seed: str = "",
    ) -> None:
        self.scenario = scenario
        self.id_seed = id_seed
        self.clock = clock
        self.lock = threading.RLock()
        self.durations: Durations = scenario.durations
        self.limits: Limits = scenario.limits
        self.db_backend: DatabaseBackend = db if db is not None else FakeDatabaseBackend(clock=clock)
        self.cdn_backend: CdnBackend = cdn if cdn is not None else FakeCdnBackend()
        self.app_backend: AppBackend = apps if apps is not None else FakeAppBackend()
        self.faults = Faults()
        self.rate_limiter = RateLimiter(self.limits.per_minute, self.limits.per_hour, clock)
        self.cdn_calls = SlidingWindow(self.limits.cdn_calls, self.limits.cdn_calls_window, clock)
        self.cdn_purges = SlidingWindow(self.limits.cdn_purge_files, self.limits.cdn_purge_window, clock)
        self.requests: list[RequestRecord] = []
        self.account: dict[str, Any] = {}
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
        self._build(scenario.data)

    # -- construction --------------------------------------------------------------------------------

    @classmethod
    def from_scenario(
        cls,
        scenario: Scenario,
        db: DatabaseBackend | None = None,
        cdn: CdnBackend | None = None,
        apps: AppBackend | None = None,
        clock: Callable[[], float] = time.time,
        id_seed: str = "",
    ) -> World:
        """Build the world a scenario describes, with the given backends (fakes when None).

        ``id_seed``: see :func:`stable_id`; a scenario's explicit ``id``/``uuid`` still wins.
        """
        return cls(scenario, db=db, cdn=cdn, apps=apps, clock=clock, id_seed=id_seed)

    def _id(self, kind: str, name: str) -> str:
        return stable_id(kind, name, self.id_seed)

    def _hex_id(self, name: str) -> str:
        """A 40-hex-digit id (DigitalOcean's account uuid form), seeded like :meth:`_id`."""
        return hashlib.sha1((self.id_seed + name).encode()).hexdigest()

    def _build(self, data: dict[str, Any]) -> None:
        now = self.clock()
        acct = data.get("account") or {}
        email = str(acct.get("email", "sre@learnhub.example"))
        self.account = {
            "droplet_limit": 25, "floating_ip_limit": 3, "email": email, "name": acct.get("name", "SRE"),
            "uuid": self._hex_id(email), "email_verified": True, "status": "active",
            "status_message": "",
            "team": {"uuid": self._id("team", str(acct.get("team", "team"))),
                     "name": str(acct.get("team", "My Team"))},
        }
        self.project_id = self._id("project", str(acct.get("team", "team")))
        self.vpc_uuid = self._id("vpc", "default-nyc3")
        # apps first: firewall rules, checks and records refer to them by name
        for spec in data.get("apps") or []:
            self._add_app(spec, now)
        for spec in data.get("databases") or []:
            self._add_cluster_from_scenario(spec, now)
        for spec in data.get("cdn_endpoints") or []:
            self._add_cdn_endpoint(spec, now)
        spaces = data.get("spaces") or {}
        self.buckets = [dict(b) for b in spaces.get("buckets") or []]
        for spec in spaces.get("keys") or []:
            self.spaces_keys.append({
                "name": spec["name"],
                "access_key": spec.get("access_key") or "DO00" + self._hex_id(spec["name"])[:16].upper(),
                "grants": [dict(g) for g in spec.get("grants", [])],
                "created_at": iso(now - 90 * 86400),
            })
        for spec in data.get("functions") or []:
            self._add_namespace(spec, now)
        for spec in data.get("load_balancers") or []:
            self._add_lb(spec, now)
        for i, spec in enumerate(data.get("alert_policies") or []):
            self._add_alert_policy(spec, i)
        for spec in data.get("uptime_checks") or []:
            self._add_check(spec, now)
        for spec in data.get("domains") or []:
            self._add_domain(spec)
        self._scale(self.scenario.scale, now)

    def _scale(self, scale: dict[str, int], now: float) -> None:
        n = 0
        while len(self.apps) < scale.get("apps", 0):
            n += 1
            self._add_app({"name": f"scale-app-{n:03d}", "region": "nyc",
                           "services": [{"name": "web", "instance_count": 1, "http_port": 8080}],
                           "deployments": 1}, now)
        n = 0
        while len(self.cdn_endpoints) < scale.get("cdn_endpoints", 0):
            n += 1
            self._add_cdn_endpoint({"origin": f"scale-bucket-{n:03d}.nyc3.digitaloceanspaces.com",
                                    "ttl": 3600}, now)
        n = 0
        while len(self.checks) < scale.get("uptime_checks", 0):
            n += 1
            self._add_check({"name": f"scale-check-{n:03d}", "target": f"https://scale-{n:03d}.learnhub.example",
                             "regions": ["us_east", "eu_west"]}, now)
        n = 0
        while len(self.alert_policies) < scale.get("alert_policies", 0):
            n += 1
            self._add_alert_policy({"type": "v1/dbaas/alerts/cpu_alerts", "entity": "database:learnhub-db",
                                    "compare": "GreaterThan", "value": 70 + n % 25, "window": "5m",
                                    "description": f"scale policy {n:03d}"}, len(self.alert_policies))

    def _add_cluster_from_scenario(self, spec: dict[str, Any], now: float) -> Cluster:
        created = now - float(spec.get("age_days", 120)) * 86400
        c = Cluster(
            id=spec.get("id") or self._id("database", spec["name"]), name=spec["name"],
            engine=spec.get("engine", "pg"), version=str(spec.get("version", "16")),
            region=spec.get("region", "nyc3"), size=spec.get("size", "db-s-1vcpu-1gb"),
            num_nodes=int(spec.get("num_nodes", 1)), storage_size_mib=int(spec.get("storage_size_mib", 10240)),
            created_at=created, ready_at=created, db_names=list(spec.get("db_names", ["defaultdb"])),
            users=list(spec.get("users", ["doadmin"])), tags=list(spec.get("tags", [])),
            eviction_policy=spec.get("eviction_policy"), backup_hour=int(spec.get("backup_hour", 2)),
            private_network_uuid=self.vpc_uuid, project_id=self.project_id,
        )
        if c.engine in REDIS_ENGINES:
            c.eviction_policy = c.eviction_policy or "noeviction"
            c.db_names, c.users = [], ["default"]
        mw = spec.get("maintenance_window") or {"day": "tuesday", "hour": "04:00:00"}
        c.maintenance = {"day": mw["day"], "hour": str(mw["hour"]), "pending": bool(mw.get("pending", False)),
                         "description": list(mw.get("description", []))}
        c.firewall = [self._firewall_rule(c.id, r, created) for r in spec.get("firewall", [])]
        c.pools = [dict(p) for p in spec.get("pools", [])]
        c.add_event("cluster_create", created)
        for r in spec.get("replicas", []):
            rid = r.get("id") or self._id("replica", f"{c.name}/{r['name']}")
            c.replicas[r["name"]] = Replica(rid, r["name"], r.get("region", c.region), r.get("size", c.size),
                                            created + 3600, created + 3600, c.storage_size_mib,
                                            list(r.get("tags", [])))
        self.clusters[c.id] = c
        return c

    def _firewall_rule(self, cluster_id: str, rule: dict[str, Any], ts: float) -> dict[str, Any]:
        value = str(rule["value"])
        if rule["type"] == "app":
            app = self.find_app_by_name(value)
            value = app.id if app else value
        out = {"uuid": rule.get("uuid") or self._id("fwrule", f"{cluster_id}/{rule['type']}/{value}"),
               "cluster_uuid": cluster_id, "type": rule["type"], "value": value, "created_at": iso(ts)}
        if rule.get("description"):
            out["description"] = rule["description"]
        return out

    def _add_cdn_endpoint(self, spec: dict[str, Any], now: float) -> dict[str, Any]:
        origin = spec["origin"]
        ep = {
            "id": spec.get("id") or self._id("cdn", origin), "origin": origin,
            "endpoint": origin.replace(".digitaloceanspaces.com", ".cdn.digitaloceanspaces.com"),
            "created_at": iso(now - 60 * 86400), "ttl": int(spec.get("ttl", 3600)),
        }
        if spec.get("custom_domain"):
            ep["custom_domain"] = spec["custom_domain"]
            ep["certificate_id"] = spec.get("certificate_id") or self._id("cert", spec["custom_domain"])
        self.cdn_endpoints[ep["id"]] = ep
        return ep

    def _app_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        name = spec["name"]
        out: dict[str, Any] = {"name": name, "region": spec.get("region", "nyc")}
        services = []
        for s in spec.get("services", []):
            svc: dict[str, Any] = {
                "name": s["name"], "instance_count": int(s.get("instance_count", 1)),
                "instance_size_slug": s.get("instance_size_slug", "apps-s-1vcpu-1gb"),
                "http_port": int(s.get("http_port", 8080)), "environment_slug": s.get("environment_slug", "node-js"),
                "github": {"repo": f"learnhub/{name}", "branch": "main", "deploy_on_push": True},
                "health_check": {"http_path": s.get("health_path", "/health")},
            }
            services.append(svc)
        if services:
            out["services"] = services
        sites = []
        for s in spec.get("static_sites", []):
            sites.append({"name": s["name"], "build_command": "npm run build", "output_dir": "dist",
                          "github": {"repo": f"learnhub/{name}", "branch": "main", "deploy_on_push": True}})
        if sites:
            out["static_sites"] = sites
        rules = []
        for s in [*spec.get("services", []), *spec.get("static_sites", [])]:
            rules.append({"component": {"name": s["name"]},
                          "match": {"path": {"prefix": s.get("route", "/" + s["name"])}}})
        out["ingress"] = {"rules": rules}
        if spec.get("alerts"):
            # App-level alert rules live in the app spec (as on DigitalOcean), so a list call carries them.
            out["alerts"] = [{"rule": rule, "disabled": False} for rule in spec["alerts"]]
        return out

    def _add_app(self, spec: dict[str, Any], now: float) -> App:
        app_id = spec.get("id") or self._id("app", spec["name"])
        created = now - 200 * 86400
        app_spec = self._app_spec(spec)
        app = App(app_id, spec["name"], spec.get("region", "nyc"), app_spec, created, now - 86400)
        count = max(1, int(spec.get("deployments", 3)))
        for i in range(count):
            ts = now - (count - i) * 3 * 86400
            app.deployments.append(Deployment(
                self._id("deployment", f"{app.name}/{i}"), ts,
                f"commit {hashlib.sha1(f'{app.name}{i}'.encode()).hexdigest()[:7]} pushed to github/learnhub/"
                f"{app.name}", dict(app_spec)))
        for rule in spec.get("alerts", []):
            app.alerts.append({
                "id": self._id("app-alert", f"{app.name}/{rule}"), "phase": "ACTIVE",
                "spec": {"rule": rule, "disabled": False, "operator": "GREATER_THAN" if "UTIL" in rule else
                         "UNSPECIFIED_OPERATOR", "value": 80 if "UTIL" in rule else 0,
                         "window": "FIVE_MINUTES" if "UTIL" in rule else "UNSPECIFIED_WINDOW"},
                "emails": [self.account.get("email", "sre@learnhub.example")], "slack_webhooks": [],
            })
        self.apps[app.id] = app
        return app

    def _add_namespace(self, spec: dict[str, Any], now: float) -> None:
        nid = spec.get("uuid") or self._id("fn-namespace", spec["label"])
        ns_name = f"fn-{nid}"
        region = spec.get("region", "nyc1")
        ns = {
            "api_host": f"https://faas-{region}-{nid[:8]}.doserverless.co", "uuid": nid, "namespace": ns_name,
            "label": spec["label"], "region": region, "key": f"dof_v1_{hashlib.sha1(nid.encode()).hexdigest()[:24]}",
            "created_at": iso(now - 100 * 86400), "updated_at": iso(now - 10 * 86400), "triggers": {},
        }
        for t in spec.get("triggers", []):
            ns["triggers"][t["name"]] = {
                "name": t["name"], "function": t["function"], "cron": t["cron"],
                "is_enabled": bool(t.get("enabled", True)), "last_run_ago": t.get("last_run_ago"),
                "created_at": iso(now - 100 * 86400), "updated_at": iso(now - 10 * 86400),
            }
        self.namespaces[ns_name] = ns

    def _add_lb(self, spec: dict[str, Any], now: float) -> None:
        lb_id = spec.get("id") or self._id("lb", spec["name"])
        lb: dict[str, Any] = {
            "id": lb_id, "name": spec["name"], "ip": spec.get("ip", "203.0.113.10"), "ipv6": "",
            "size_unit": 1, "status": "active", "created_at": iso(now - 150 * 86400), "algorithm": "round_robin",
            "forwarding_rules": [
                {"entry_protocol": "https", "entry_port": 443, "target_protocol": "http", "target_port": 8080,
                 "certificate_id": self._id("cert", spec["name"]), "tls_passthrough": False},
                {"entry_protocol": "http", "entry_port": 80, "target_protocol": "http", "target_port": 8080,
                 "certificate_id": "", "tls_passthrough": False},
            ],
            "health_check": {"protocol": "http", "port": 8080, "path": "/health", "check_interval_seconds": 10,
                             "response_timeout_seconds": 5, "healthy_threshold": 3, "unhealthy_threshold": 5},
            "sticky_sessions": {"type": "none"}, "redirect_http_to_https": True, "enable_proxy_protocol": False,
            "enable_backend_keepalive": False, "http_idle_timeout_seconds": 60, "vpc_uuid": self.vpc_uuid,
            "project_id": self.project_id, "disable_lets_encrypt_dns_records": False,
            "firewall": {"allow": [], "deny": []}, "network": "EXTERNAL", "network_stack": "IPV4",
            "type": "REGIONAL", "tls_cipher_policy": "DEFAULT",
            "region": self.region(spec.get("region", "nyc3")),
            "tag": spec.get("tag", ""), "droplet_ids": [],
        }
        self.load_balancers[lb_id] = lb

    def _resolve_entity(self, ref: str) -> str:
        kind, _, name = ref.partition(":")
        if kind == "database":
            c = self.find_cluster_by_name(name)
            return c.id if c else name
        if kind == "load_balancer":
            for lb in self.load_balancers.values():
                if lb["name"] == name:
                    return str(lb["id"])
        if kind == "app":
            a = self.find_app_by_name(name)
            return a.id if a else name
        return ref

    def _add_alert_policy(self, spec: dict[str, Any], index: int) -> None:
        entity = self._resolve_entity(str(spec.get("entity", "")))
        pid = spec.get("uuid") or self._id("alert-policy", f"{index}/{spec['type']}/{entity}")
        what = str(spec["type"]).rsplit("/", 1)[-1].replace("_", " ")
        name = str(spec.get("entity", "")).partition(":")[2]
        self.alert_policies[pid] = {
            "uuid": pid, "type": spec["type"],
            "description": spec.get("description") or f"{name}: {what} {spec['compare']} {spec['value']}",
            "compare": spec["compare"], "value": float(spec["value"]), "window": spec.get("window", "5m"),
            "entities": [entity] if entity else [], "tags": list(spec.get("tags", ["learnhub"])),
            "alerts": {"email": [self.account["email"]], "slack": []},
            "enabled": bool(spec.get("enabled", True)),
        }

    def _resolve_target(self, target: str) -> tuple[str, str | None]:
        if target.startswith("app:"):
            name = target[4:]
            app = self.find_app_by_name(name)
            return (self.live_url(app) if app else f"https://{name}.ondigitalocean.app"), name
        return target, None

    def _add_check(self, spec: dict[str, Any], now: float) -> None:
        target, app_name = self._resolve_target(str(spec["target"]))
        if spec.get("path"):
            target = target.rstrip("/") + str(spec["path"])
        cid = spec.get("id") or self._id("uptime", spec["name"])
        check = Check(cid, spec["name"], spec.get("type", "https" if target.startswith("https") else "http"),
                      target, list(spec.get("regions", ["us_east", "eu_west"])), bool(spec.get("enabled", True)),
                      app_name, now - 90 * 86400)
        for a in spec.get("alerts") or [{"type": "down_global", "period": "2m"},
                                          {"type": "latency", "threshold": 1000, "period": "5m"}]:
            aid = self._id("uptime-alert", f"{cid}/{a['type']}")
            check.alerts[aid] = {
                "id": aid, "name": a.get("name", f"{check.name} {a['type']}"), "type": a["type"],
                "threshold": int(a.get("threshold", 0)), "comparison": a.get("comparison", "greater_than"),
                "notifications": {"email": [self.account["email"]], "slack": []},
                "period": a.get("period", "2m"),
            }
        self.checks[cid] = check

    def _add_domain(self, spec: dict[str, Any]) -> None:
        name = spec["name"]
        records = []
        base = [
            {"type": "NS", "name": "@", "data": "ns1.digitalocean.com", "ttl": 1800},
            {"type": "NS", "name": "@", "data": "ns2.digitalocean.com", "ttl": 1800},
            {"type": "NS", "name": "@", "data": "ns3.digitalocean.com", "ttl": 1800},
            {"type": "SOA", "name": "@", "data": "1800", "ttl": 1800},
        ]
        for i, r in enumerate([*base, *spec.get("records", [])]):
            data = str(r["data"])
            if data.startswith("app:"):
                app = self.find_app_by_name(data[4:])
                data = f"{app.hostname}." if app else data[4:]
            elif data.startswith("cdn:"):
                ep = next((e for e in self.cdn_endpoints.values() if e["origin"] == data[4:]), None)
                data = f"{ep['endpoint']}." if ep else data[4:]
            records.append({
                "id": int(r.get("id", 3_000_000 + int(hashlib.sha1(name.encode()).hexdigest()[:5], 16) + i)),
                "type": r["type"], "name": r["name"], "data": data, "priority": r.get("priority"),
                "port": r.get("port"), "ttl": int(r.get("ttl", 1800)), "weight": r.get("weight"),
                "flags": r.get("flags"), "tag": r.get("tag"),
            })
        self.domains[name] = {"name": name, "ttl": int(spec.get("ttl", 1800)), "records": records}

    # -- lookups -------------------------------------------------------------------------------------

    def reset_limits(self) -> None:
        """Fresh budgets: per-token rate limits and the CDN call and purge windows."""
        self.rate_limiter.reset()
        self.cdn_calls.reset()
        self.cdn_purges.reset()

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

    def region(self, slug: str) -> dict[str, Any]:
        """A region object as /v2/regions shows it."""
        name = dict(REGIONS).get(slug, slug)
        return {"name": name, "slug": slug, "available": True,
                "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
                "sizes": ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"]}

    def regions(self) -> list[dict[str, Any]]:
        """All regions."""
        return [self.region(slug) for slug, _ in REGIONS]

    # -- databases -----------------------------------------------------------------------------------

    def cluster_status(self, c: Cluster) -> str:
        """``creating`` or ``online``, from timestamps or (restores) the backend."""
        if c.awaiting_backend:
            if self.db_backend.connection(c.name) is None:
                return "creating"
            c.awaiting_backend = False
            c.add_event("cluster_create", self.clock())
        return "creating" if self.clock() < c.ready_at else "online"

    def _synthetic_connection(self, name: str, engine: str, kind: str = "") -> ConnectionInfo:
        host = f"{kind}{name}-do-user-{int(self.account['uuid'][:6], 16) % 10_000_000}-0.j.db.ondigitalocean.com"
        if engine in REDIS_ENGINES:
            return ConnectionInfo(host, 25061, "default", _secret(name), "", True)
        return ConnectionInfo(host, 25060, "doadmin", _secret(name), "defaultdb", True)

    @staticmethod
    def _conn_json(info: ConnectionInfo, engine: str) -> dict[str, Any]:
        if engine in REDIS_ENGINES:
            scheme = "rediss" if info.ssl else "redis"
            uri = f"{scheme}://{info.user}:{info.password}@{info.host}:{info.port}"
        else:
            scheme = {"mysql": "mysql", "mongodb": "mongodb+srv"}.get(engine, "postgresql")
            mode = "require" if info.ssl else "disable"
            uri = f"{scheme}://{info.user}:{info.password}@{info.host}:{info.port}/{info.database}?sslmode={mode}"
        return {"uri": uri, "database": info.database, "host": info.host, "port": info.port, "user": info.user,
                "password": info.password, "ssl": info.ssl}

    def cluster_connection(self, c: Cluster) -> ConnectionInfo:
        """The cluster's connection: the backend's when it knows the cluster, else synthetic."""
        return self.db_backend.connection(c.name) or self._synthetic_connection(c.name, c.engine)

    def cluster_json(self, c: Cluster) -> dict[str, Any]:
        """A database cluster as the API shows it."""
        status = self.cluster_status(c)
        real = self.db_backend.connection(c.name)
        info = real or self._synthetic_connection(c.name, c.engine)
        conn = self._conn_json(info, c.engine)
        if real is not None:
            private = dict(conn)
        else:
            private = self._conn_json(self._synthetic_connection(c.name, c.engine, "private-"), c.engine)
        out: dict[str, Any] = {
            "id": c.id, "name": c.name, "engine": c.engine, "version": c.version,
            "semantic_version": f"{c.version}.4" if c.engine == "pg" else f"{c.version}.0.2",
            "num_nodes": c.num_nodes, "size": c.size, "region": c.region, "status": status,
            "created_at": iso(c.created_at), "private_network_uuid": c.private_network_uuid,
            "tags": list(c.tags) or None, "db_names": list(c.db_names) or None,
            "connection": conn, "private_connection": private,
            "users": [{"name": u, "role": "primary" if u in ("doadmin", "default") else "normal",
                       "password": info.password if u == info.user else _secret(f"{c.name}/{u}")}
                      for u in c.users] or None,
            "maintenance_window": dict(c.maintenance), "project_id": c.project_id,
            "rules": [dict(r) for r in c.firewall], "storage_size_mib": c.storage_size_mib,
            "metrics_endpoints": [{"host": info.host, "port": 9273}],
        }
        if c.num_nodes > 1:
            out["standby_connection"] = dict(conn) if real is not None else \
                self._conn_json(self._synthetic_connection(c.name, c.engine, "replica-"), c.engine)
            out["standby_private_connection"] = dict(out["standby_connection"])
        return out

    def replica_json(self, c: Cluster, r: Replica) -> dict[str, Any]:
        """A read replica as the API shows it."""
        backend = self.db_backend.connection(c.name, r.name)
        info = backend or self._synthetic_connection(r.name, c.engine)
        conn = self._conn_json(info, c.engine)
        private = dict(conn) if backend else self._conn_json(
            self._synthetic_connection(r.name, c.engine, "private-"), c.engine)
        return {
            "id": r.id, "name": r.name, "region": r.region, "size": r.size,
            "status": "creating" if self.clock() < r.ready_at else "online", "created_at": iso(r.created_at),
            "connection": conn, "private_connection": private, "private_network_uuid": c.private_network_uuid,
            "tags": list(r.tags), "storage_size_mib": r.storage_size_mib,
        }

    def _name_taken(self, name: str) -> bool:
        return any(c.name == name or name in c.replicas for c in self.clusters.values())

    def create_cluster(self, body: dict[str, Any]) -> Cluster:
        """POST /v2/databases, including point-in-time restore (``backup_restore``)."""
        for key in ("name", "engine", "num_nodes", "size", "region"):
            if key not in body:
                raise ApiError.unprocessable(f"{key} is required")
        name = str(body["name"])
        if self._name_taken(name):
            raise ApiError.unprocessable(f"a database cluster named {name} already exists")
        now = self.clock()
        restore = body.get("backup_restore")
        source: Cluster | None = None
        target: datetime | None = None
        if restore is not None:
            source = self.find_cluster_by_name(str(restore.get("database_name", "")))
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
            storage_size_mib=int(body.get("storage_size_mib") or (source.storage_size_mib if source else 10240)),
            created_at=now, ready_at=now + self.durations.cluster_create, tags=list(body.get("tags") or []),
            private_network_uuid=str(body.get("private_network_uuid") or self.vpc_uuid),
            project_id=str(body.get("project_id") or self.project_id),
        )
        if c.engine in REDIS_ENGINES:
            c.users, c.eviction_policy = ["default"], "noeviction"
        else:
            c.users = ["doadmin"]
            c.db_names = list(body.get("db_names") or (source.db_names if source else ["defaultdb"]))
        c.maintenance = {"day": "tuesday", "hour": "04:00:00", "pending": False, "description": []}
        c.firewall = [self._firewall_rule(cid, r, now) for r in body.get("rules") or []]
        if source is not None:
            c.restored_from = source.name
            c.users = list(source.users)
            c.pools = [dict(p) for p in source.pools]
            c.awaiting_backend = True
            self.db_backend.restore(source.name, target, name)
            log.info("restore of %s at %s into %s started", source.name, target or "latest backup", name)
        else:
            c.add_event("cluster_create", now)
        self.clusters[cid] = c
        return c

    def delete_cluster(self, cluster_id: str) -> None:
        """DELETE /v2/databases/{uuid}."""
        self.cluster(cluster_id)
        del self.clusters[cluster_id]

    def create_replica(self, c: Cluster, body: dict[str, Any]) -> Replica:
        """POST /v2/databases/{uuid}/replicas."""
        name = body.get("name")
        if not name:
            raise ApiError.unprocessable("name is required")
        if self._name_taken(str(name)):
            raise ApiError.unprocessable(f"a database cluster or replica named {name} already exists")
        now = self.clock()
        r = Replica(str(uuid.uuid4()), str(name), str(body.get("region") or c.region), str(body.get("size") or c.size),
                    now, now + self.durations.replica_create, int(body.get("storage_size_mib") or c.storage_size_mib),
                    list(body.get("tags") or []))
        c.replicas[r.name] = r
        return r

    def replica(self, c: Cluster, name: str) -> Replica:
        """The replica or a 404."""
        r = c.replicas.get(name)
        if r is None:
            raise ApiError.not_found()
        return r

    def promote_replica(self, c: Cluster, name: str) -> Cluster:
        """PUT .../replicas/{name}/promote: the replica becomes a standalone cluster (see module doc)."""
        r = self.replica(c, name)
        self.db_backend.promote(c.name, r.name)
        now = self.clock()
        del c.replicas[name]
        new = Cluster(
            id=r.id, name=r.name, engine=c.engine, version=c.version, region=r.region, size=r.size, num_nodes=1,
            storage_size_mib=r.storage_size_mib, created_at=r.created_at, ready_at=now,
            db_names=list(c.db_names), users=list(c.users), tags=list(r.tags), maintenance=dict(c.maintenance),
            pools=[dict(p) for p in c.pools], eviction_policy=c.eviction_policy, backup_hour=c.backup_hour,
            private_network_uuid=c.private_network_uuid, project_id=c.project_id,
        )
        new.firewall = [{**rule, "cluster_uuid": new.id,
                         "uuid": self._id("fwrule", f"{new.id}/{rule['type']}/{rule['value']}")}
                        for rule in c.firewall]
        new.add_event("cluster_master_promotion", now)
        c.add_event("cluster_master_promotion", now)
        self.clusters[new.id] = new
        log.info("replica %s of %s promoted to standalone cluster %s", r.name, c.name, new.id)
        return new

    def backups(self, c: Cluster) -> list[BackupInfo]:
        """The cluster's backups, newest first (backend's, or synthetic daily ones)."""
        got = self.db_backend.list_backups(c.name)
        if got is None:
            now = datetime.fromtimestamp(self.clock(), UTC)
            day = now.replace(hour=c.backup_hour, minute=13, second=7, microsecond=0)
            if day > now:
                day -= timedelta(days=1)
            got = []
            for i in range(PITR_DAYS):
                ts = day - timedelta(days=i)
                if ts.timestamp() >= c.created_at:
                    got.append(BackupInfo(ts, round(c.storage_size_mib / 1024 * 0.04 + 0.05 * (i % 3), 2)))
        return sorted(got, key=lambda b: b.created_at, reverse=True)

    def set_firewall(self, c: Cluster, rules: Iterable[dict[str, Any]]) -> None:
        """PUT .../firewall: replace the rules."""
        now = self.clock()
        new = []
        for r in rules:
            if "type" not in r or "value" not in r:
                raise ApiError.unprocessable("each rule needs type and value")
            new.append(self._firewall_rule(c.id, r, now))
        c.firewall = new

    # -- apps ----------------------------------------------------------------------------------------

    def deployment_phase(self, app: App, dep: Deployment) -> str:
        """The deployment's phase now (see module doc for SUPERSEDED)."""
        if dep.fixed_phase:
            return dep.fixed_phase
        elapsed = self.clock() - dep.created_at
        step = self.durations.deployment_phase
        if elapsed < step:
            return "PENDING_BUILD"
        if elapsed < 2 * step:
            return "BUILDING"
        if elapsed < 3 * step:
            return "DEPLOYING"
        active = self.active_deployment(app)
        return "ACTIVE" if active is not None and active.id == dep.id else "SUPERSEDED"

    def _done(self, dep: Deployment) -> bool:
        return dep.fixed_phase is None and self.clock() - dep.created_at >= 3 * self.durations.deployment_phase

    def active_deployment(self, app: App) -> Deployment | None:
        """The newest deployment that finished."""
        done = [d for d in app.deployments if self._done(d)]
        return max(done, key=lambda d: d.created_at) if done else None

    def in_progress_deployment(self, app: App) -> Deployment | None:
        """The newest deployment still on its way."""
        going = [d for d in app.deployments if d.fixed_phase is None and not self._done(d)]
        return max(going, key=lambda d: d.created_at) if going else None

    def deployment(self, app: App, dep_id: str) -> Deployment:
        """The deployment or a 404."""
        for d in app.deployments:
            if d.id == dep_id:
                return d
        raise ApiError.not_found()

    def deployment_json(self, app: App, dep: Deployment) -> dict[str, Any]:
        """A deployment as the API shows it."""
        phase = self.deployment_phase(app, dep)
        step = self.durations.deployment_phase
        order = ["PENDING_BUILD", "BUILDING", "DEPLOYING"]
        done_steps = 3 if phase in ("ACTIVE", "SUPERSEDED") else (order.index(phase) if phase in order else 0)
        changed = dep.created_at + step * min(done_steps, 3)
        commit = hashlib.sha1(dep.id.encode()).hexdigest()
        out: dict[str, Any] = {
            "id": dep.id, "cause": dep.cause, "phase": phase, "created_at": iso(dep.created_at),
            "updated_at": iso(changed), "phase_last_updated_at": iso(changed), "spec": dep.spec,
            "tier_slug": "basic",
            "progress": {
                "success_steps": done_steps, "total_steps": 3, "error_steps": 1 if phase == "ERROR" else 0,
                "pending_steps": 0 if done_steps == 3 else 3 - done_steps - 1,
                "running_steps": 0 if done_steps == 3 or phase in ("ERROR", "CANCELED") else 1,
                "steps": [{"name": n, "status": "SUCCESS" if i < done_steps else
                           ("RUNNING" if i == done_steps else "PENDING")}
                          for i, n in enumerate(("build", "deploy", "finalize"))],
            },
            "services": [{"name": s["name"], "source_commit_hash": commit} for s in dep.spec.get("services", [])],
            "static_sites": [{"name": s["name"], "source_commit_hash": commit}
                             for s in dep.spec.get("static_sites", [])],
        }
        if dep.cloned_from:
            out["cloned_from"] = dep.cloned_from
        return out

    def live_url(self, app: App) -> str:
        """The app's live URL (the backend's real one when it has it)."""
        return self.app_backend.live_url(app.name) or f"https://{app.hostname}"

    def app_json(self, app: App) -> dict[str, Any]:
        """An app as the API shows it."""
        label, flag, continent, dcs = APP_REGIONS.get(app.region, (app.region, "us", "North America", []))
        url = self.live_url(app)
        out: dict[str, Any] = {
            "id": app.id, "owner_uuid": self.account["uuid"], "spec": app.spec,
            "default_ingress": f"https://{app.hostname}", "created_at": iso(app.created_at),
            "updated_at": iso(app.updated_at), "live_url": url, "live_url_base": url,
            "live_domain": url.split("://", 1)[-1].split("/", 1)[0], "tier_slug": "basic",
            "project_id": self.project_id,
            "region": {"slug": app.region, "label": label, "flag": flag, "continent": continent,
                       "data_centers": dcs, "default": app.region == "nyc"},
        }
        active = self.active_deployment(app)
        if active is not None:
            out["active_deployment"] = self.deployment_json(app, active)
        going = self.in_progress_deployment(app)
        if going is not None:
            out["in_progress_deployment"] = self.deployment_json(app, going)
        if app.deployments:
            out["last_deployment_created_at"] = iso(max(d.created_at for d in app.deployments))
        if app.pinned:
            out["pinned_deployment"] = self.deployment_json(app, self.deployment(app, app.pinned))
        return out

    def new_deployment(self, app: App, cause: str, spec: dict[str, Any] | None = None,
                       cloned_from: str | None = None) -> Deployment:
        """Start a deployment of ``spec`` (default: the app's current spec)."""
        now = self.clock()
        dep = Deployment(str(uuid.uuid4()), now, cause, dict(spec or app.spec), cloned_from)
        app.deployments.append(dep)
        app.spec = dict(dep.spec)
        app.updated_at = now
        return dep

    def create_deployment(self, app: App, force_build: bool = False) -> Deployment:
        """POST /v2/apps/{id}/deployments."""
        if app.pinned:
            raise ApiError.bad_request("app is pinned to a rollback deployment; commit or revert it first")
        return self.new_deployment(app, "manual" + (" (force build)" if force_build else ""))

    def validate_rollback(self, app: App, dep_id: str) -> dict[str, Any]:
        """POST .../rollback/validate."""
        target = self.deployment(app, dep_id)
        active = self.active_deployment(app)
        if app.pinned:
            return {"valid": False, "error": {"code": "app_pinned", "message": "app is pinned"}, "warnings": []}
        if not self._done(target) or (active is not None and active.id == target.id):
            return {"valid": False, "warnings": [],
                    "error": {"code": "incompatible_phase",
                              "message": f"deployment {dep_id} is not a previous successful deployment"}}
        return {"valid": True, "warnings": []}

    def rollback(self, app: App, dep_id: str, skip_pin: bool = False) -> Deployment:
        """POST .../rollback: a new deployment from the target's spec; pins the app unless skip_pin."""
        verdict = self.validate_rollback(app, dep_id)
        if not verdict["valid"]:
            raise ApiError.bad_request(verdict["error"]["message"])
        target = self.deployment(app, dep_id)
        before = dict(app.spec)
        dep = self.new_deployment(app, f"manual rollback to {dep_id}", target.spec, cloned_from=dep_id)
        if not skip_pin:
            app.pinned, app.pre_rollback_spec = dep.id, before
        return dep

    def commit_rollback(self, app: App) -> None:
        """POST .../rollback/commit."""
        if not app.pinned:
            raise ApiError.bad_request("no rollback in progress")
        app.pinned, app.pre_rollback_spec = None, None

    def revert_rollback(self, app: App) -> Deployment:
        """POST .../rollback/revert."""
        if not app.pinned:
            raise ApiError.bad_request("no rollback in progress")
        spec = app.pre_rollback_spec or app.spec
        app.pinned, app.pre_rollback_spec = None, None
        return self.new_deployment(app, "rollback reverted", spec)

    def restart(self, app: App, components: list[str] | None) -> Deployment:
        """POST .../restart: a rolling restart is a new deployment of the same spec."""
        names = {n for n, _, _ in app.components()}
        unknown = set(components or []) - names
        if unknown:
            raise ApiError.bad_request(f"unknown components: {', '.join(sorted(unknown))}")
        what = ", ".join(components) if components else "all components"
        return self.new_deployment(app, f"app restart ({what})")

    def component_healthy(self, app: App, component: str) -> bool:
        """Fault-injected or backend-reported health of one component."""
        if self.faults.app_is_unhealthy(app.name, component):
            return False
        return self.app_backend.healthy(app.name, component)

    def app_health(self, app: App) -> dict[str, Any]:
        """GET /v2/apps/{id}/health."""
        comps = []
        for name, _kind, desired in app.components():
            ok = self.component_healthy(app, name)
            seed = int(hashlib.sha1(f"{app.id}/{name}".encode()).hexdigest()[:4], 16)
            comps.append({
                "name": name, "state": "HEALTHY" if ok else "UNHEALTHY", "replicas_desired": desired,
                "replicas_ready": desired if ok else 0,
                "cpu_usage_percent": round(12.0 + seed % 20, 2) if ok else 0.0,
                "memory_usage_percent": round(35.0 + seed % 25, 2) if ok else 0.0,
            })
        return {"app_health": {"components": comps, "functions_components": []}}

    def app_healthy(self, app: App) -> bool:
        """Whether every component is healthy."""
        return all(self.component_healthy(app, n) for n, _, _ in app.components())

    def app_metrics(self, app: App, component: str | None, start: int, end: int, kind: str) -> dict[str, Any]:
        """GET /v2/monitoring/metrics/apps/{cpu,memory}_percentage: synthetic matrix series."""
        if end < start:
            raise ApiError.bad_request("end must not be before start")
        step = max(300, math.ceil((end - start) / 300))
        result = []
        for name, _kind, _desired in app.components():
            if component and name != component:
                continue
            ok = self.component_healthy(app, name)
            seed = int(hashlib.sha1(f"{app.id}/{name}/{kind}".encode()).hexdigest()[:4], 16) % 20
            base = 15.0 + seed if kind == "cpu" else 40.0 + seed
            values: list[list[int | str]] = []
            t = start - start % step
            while t <= end:
                v = base + 8.0 * math.sin(t / 3600.0) if ok else 0.0
                values.append([t, f"{max(v, 0.0):.3f}"])
                t += step
            result.append({"metric": {"app_component": name, "app_uuid": app.id}, "values": values})
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    # -- functions -----------------------------------------------------------------------------------

    def namespace(self, ns_id: str) -> dict[str, Any]:
        """The namespace (by its ``fn-...`` id or uuid) or a 404."""
        ns = self.namespaces.get(ns_id) or next((n for n in self.namespaces.values() if n["uuid"] == ns_id), None)
        if ns is None:
            raise ApiError.not_found()
        return ns

    @staticmethod
    def namespace_json(ns: dict[str, Any]) -> dict[str, Any]:
        """A namespace as the API shows it."""
        return {k: v for k, v in ns.items() if k != "triggers"}

    def trigger_json(self, ns: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
        """A SCHEDULED trigger with plausible last and next runs."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        it = croniter(t["cron"], now)
        nxt = it.get_next(datetime)
        prev = croniter(t["cron"], now).get_prev(datetime)
        last = prev + timedelta(seconds=2)
        if t.get("last_run_ago") is not None:
            last = now - timedelta(seconds=float(t["last_run_ago"]))
        if last > now:
            last = prev
        return {
            "namespace": ns["namespace"], "name": t["name"], "function": t["function"], "type": "SCHEDULED",
            "is_enabled": t["is_enabled"], "created_at": t["created_at"], "updated_at": t["updated_at"],
            "scheduled_details": {"cron": t["cron"], "body": {}},
            "scheduled_runs": {"last_run_at": last.strftime("%Y-%m-%dT%H:%M:%SZ") if t["is_enabled"] else None,
                               "next_run_at": nxt.strftime("%Y-%m-%dT%H:%M:%SZ") if t["is_enabled"] else None},
        }

    # -- uptime --------------------------------------------------------------------------------------

    def check(self, check_id: str) -> Check:
        """The check or a 404."""
        c = self.checks.get(check_id)
        if c is None:
            raise ApiError.not_found()
        return c

    @staticmethod
    def check_json(c: Check) -> dict[str, Any]:
        """An Uptime check as the API shows it."""
        return {"id": c.id, "name": c.name, "type": c.type, "target": c.target, "regions": list(c.regions),
                "enabled": c.enabled}

    def check_up(self, c: Check) -> bool:
        """Whether the check's target is up (only app targets can go down in the twin)."""
        if c.app_name is None:
            return True
        app = self.find_app_by_name(c.app_name)
        return app is None or self.app_healthy(app)

    def check_state(self, c: Check) -> dict[str, Any]:
        """GET /v2/uptime/checks/{id}/state."""
        up = self.check_up(c)
        now = self.clock()
        changed = iso(now - 5 * 86400) if up else iso(now - 30)
        regions = {r: {"status": "UP" if up else "DOWN", "status_changed_at": changed,
                       "thirty_day_uptime_percentage": 99.98 if up else 99.2} for r in c.regions}
        return {"state": {"regions": regions, "previous_outage": {
            "region": c.regions[0] if c.regions else "us_east", "started_at": iso(now - 12 * 86400),
            "ended_at": iso(now - 12 * 86400 + 240), "duration_seconds": 240}}}

    # -- request log ---------------------------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        """Append to the in-memory request log."""
        with self.lock:
            self.requests.append(rec)

    def request_log(self) -> list[dict[str, Any]]:
        """The request log as JSON-able dicts."""
        with self.lock:
            return [r.to_dict() for r in self.requests]

    def snapshot(self) -> dict[str, Any]:
        """A summary of the world for ``GET /_twin/state`` (no secrets)."""
        with self.lock:
            return {
                "scenario": self.scenario.name,
                "clusters": [{"id": c.id, "name": c.name, "engine": c.engine, "region": c.region,
                              "status": self.cluster_status(c), "restored_from": c.restored_from,
                              "eviction_policy": c.eviction_policy,
                              "replicas": [{"id": r.id, "name": r.name, "region": r.region,
                                            "status": "creating" if self.clock() < r.ready_at else "online"}
                                           for r in c.replicas.values()]} for c in self.clusters.values()],
                "apps": [{"id": a.id, "name": a.name, "live_url": self.live_url(a),
                          "active_deployment": (d.id if (d := self.active_deployment(a)) else None),
                          "in_progress_deployment": (p.id if (p := self.in_progress_deployment(a)) else None),
                          "pinned_deployment": a.pinned, "healthy": self.app_healthy(a)}
                         for a in self.apps.values()],
                "cdn_endpoints": [{"id": e["id"], "origin": e["origin"]} for e in self.cdn_endpoints.values()],
                "namespaces": [{"namespace": n["namespace"], "label": n["label"],
                                "triggers": sorted(n["triggers"])} for n in self.namespaces.values()],
                "buckets": list(self.buckets),
                "counts": {"alert_policies": len(self.alert_policies), "uptime_checks": len(self.checks),
                           "load_balancers": len(self.load_balancers), "domains": len(self.domains),
                           "spaces_keys": len(self.spaces_keys), "requests": len(self.requests)},
                "faults": [f.to_dict() for f in self.faults.list()],
            }
