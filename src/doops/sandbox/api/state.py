"""The twin's world: every resource the DigitalOcean API twin serves, built from a scenario.

State is computed lazily from timestamps (no background threads): a cluster created at ``t`` is
``creating`` until ``t + durations.cluster_create``, a deployment walks its phases by elapsed time.
All mutation happens under ``World.lock`` (the server takes it around each handler).

:class:`World` is the one front: it owns the lock, the clock, the rate limits and the request log, and hands
each call to the concern that knows it, each on the same :class:`~doops.sandbox.api.resources.Store`:
:mod:`~doops.sandbox.api.state_build` (the scenario), :mod:`~doops.sandbox.api.state_databases`,
:mod:`~doops.sandbox.api.state_apps` (App Platform), :mod:`~doops.sandbox.api.state_monitoring`
(metrics, Uptime, Functions triggers) and :mod:`~doops.sandbox.api.state_domains` (domain records, which the
sandbox's DNS server answers from).

Spec-silent choices (what the OpenAPI spec does not say, and what the twin does):

- Promoting a replica (PUT .../replicas/{name}/promote, 204) turns it into a standalone cluster: it keeps
  the replica's uuid (so it is a uuid distinct from the source's), its name, region and size; it copies
  the source's engine, version, db_names, users, firewall rules and maintenance window; ``num_nodes`` 1;
  status ``online`` at once; it disappears from the source's replicas list; the source stays ``online``.
  Both clusters record a ``cluster_master_promotion`` event. The backend is called first; if it raises,
  the answer is a 500 and nothing changes. Its connection is then asked as ``connection(replica_name)``.
- Point-in-time restore (POST /v2/databases with ``backup_restore``) creates a new cluster with status
  ``creating`` until ``DatabaseBackend.connection(new_name)`` returns a value, then ``online``. Its
  connection is the one ``DatabaseBackend.restore`` says it will have, from the ``201`` on (on DigitalOcean
  the connection given at creation never changes). Its storage is its size slug's (``DB_SIZE_STORAGE_MIB``),
  not the source's; it has the source's users but no pools (a pool is the cluster's PgBouncer config, not
  data), and a promoted replica has none either (doops's failover says to recreate them).
  ``backup_created_at`` must lie within the last 7 days, not in the future and not before the source
  cluster existed, else 422 ``unprocessable_entity``; an unknown source cluster name is 404. Omitted
  ``backup_created_at`` restores the latest backup (``target_time`` None to the backend). The source's
  engine must match the requested engine (422 otherwise).
- A cluster created without ``backup_restore`` (and a new replica) has synthetic DigitalOcean-looking
  connections and goes ``creating`` -> ``online`` after ``durations.cluster_create`` (``replica_create``).
- A cluster the backend runs shows the servers' own version (``engine_version``), users' passwords, standby
  (``standby_connection`` only while a standby really runs), pools (their PgBouncer) and metrics endpoint
  (none listed when it has none); one the backend does not run shows synthetic ones. ``GET .../ca`` serves the
  backend's CA (a fake backend makes a real, unused CA). ``GET /v2/databases/metrics/credentials`` answers
  the flat ``{"credentials": {"basic_auth_username", "basic_auth_password"}}`` of the spec's example (its
  schema nests a second ``credentials``; godo and doctl read the flat form).
- Backups: from ``DatabaseBackend.list_backups``; when it returns None the twin lists one daily backup at
  the cluster's ``backup_hour`` for each of the last 7 days (none before the cluster existed), newest first.
- A cluster or replica name already in use is 422. Deleting a cluster deletes its replicas, and
  ``DatabaseBackend.drop`` destroys the servers the backend runs for them (after the 204).
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
  A purge is in progress for ``limits.cdn_purge_propagation`` seconds (the edge serves its cached copy until
  then); an identical purge (same endpoint and files, order, duplicates and a leading "/" ignored) meanwhile is
  429 with the seconds left as ``retry-after`` and spends no purge budget. See docs/sandbox.md.
- Monitoring alert policy types in the spec cover databases and load balancers only, so app alerts are
  served as App Platform alerts (GET /v2/apps/{app_id}/alerts).
- App metrics (cpu/memory percentage) are deterministic synthetic series, one point per 5 minutes
  (step grows so a range has at most 300 points); unhealthy components read 0.
- Domain records: see :mod:`doops.sandbox.api.state_domains` (422 checks, PUT/PATCH change only the
  attributes named, the SOA serial moves on every change).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from doops.sandbox.api.backends import AppBackend, BackupInfo, CdnBackend, ConnectionInfo, DatabaseBackend
from doops.sandbox.api.limits import PurgesInProgress, RateLimiter, SlidingWindow
from doops.sandbox.api.resources import (
    App,
    Check,
    Cluster,
    Deployment,
    Replica,
    RequestRecord,
    Store,
    region,
    regions,
)
from doops.sandbox.api.scenario import Limits, Scenario
from doops.sandbox.api.state_apps import AppPlatform
from doops.sandbox.api.state_build import ScenarioBuilder
from doops.sandbox.api.state_databases import Databases
from doops.sandbox.api.state_domains import Domains
from doops.sandbox.api.state_monitoring import Monitoring


class World(Store):
    """Every resource the twin serves (the store), plus the lock, the rate limits and the request log.

    The resources are the store's attributes (``clusters``, ``apps``...); the operations below hand over
    to the concern that owns them (``databases``, ``app_platform``, ``monitoring``).
    """

    def __init__(
        self,
        scenario: Scenario,
        db: DatabaseBackend | None = None,
        cdn: CdnBackend | None = None,
        apps: AppBackend | None = None,
        clock: Callable[[], float] = time.time,
        id_seed: str = "",
    ) -> None:
        super().__init__(scenario, db, cdn, apps, clock, id_seed)
        self.lock = threading.RLock()
        self.limits: Limits = scenario.limits
        self.rate_limiter = RateLimiter(self.limits.per_minute, self.limits.per_hour, clock)
        self.cdn_calls = SlidingWindow(self.limits.cdn_calls, self.limits.cdn_calls_window, clock)
        self.cdn_purges = SlidingWindow(self.limits.cdn_purge_files, self.limits.cdn_purge_window, clock)
        self.cdn_in_progress = PurgesInProgress(clock)
        self.requests: list[RequestRecord] = []
        self.databases = Databases(self)
        self.app_platform = AppPlatform(self)
        self.monitoring = Monitoring(self, self.app_platform)
        self.dns = Domains(self)
        ScenarioBuilder(self, self.databases, self.app_platform).build(scenario.data)

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

        ``id_seed``: see :func:`~doops.sandbox.api.resources.stable_id`; a scenario's explicit ``id``/``uuid``
        still wins.
        """
        return cls(scenario, db=db, cdn=cdn, apps=apps, clock=clock, id_seed=id_seed)

    # -- limits and regions --------------------------------------------------------------------------

    def reset_limits(self) -> None:
        """Fresh budgets: per-token rate limits, the CDN call and purge windows, and no purge in progress (the
        edge still evicts what was purged when its time comes)."""
        self.rate_limiter.reset()
        self.cdn_calls.reset()
        self.cdn_purges.reset()
        self.cdn_in_progress.reset()

    @staticmethod
    def region(slug: str) -> dict[str, Any]:
        """A region object as /v2/regions shows it."""
        return region(slug)

    @staticmethod
    def regions() -> list[dict[str, Any]]:
        """All regions."""
        return regions()

    # -- databases (state_databases) -----------------------------------------------------------------

    def cluster_status(self, c: Cluster) -> str:
        """``creating`` or ``online``."""
        return self.databases.cluster_status(c)

    def cluster_connection(self, c: Cluster) -> ConnectionInfo:
        """The cluster's connection (the backend's, else synthetic)."""
        return self.databases.cluster_connection(c)

    def cluster_json(self, c: Cluster) -> dict[str, Any]:
        """A database cluster as the API shows it."""
        return self.databases.cluster_json(c)

    def replica_json(self, c: Cluster, r: Replica) -> dict[str, Any]:
        """A read replica as the API shows it."""
        return self.databases.replica_json(c, r)

    def create_cluster(self, body: dict[str, Any]) -> Cluster:
        """POST /v2/databases, including point-in-time restore."""
        return self.databases.create_cluster(body)

    def delete_cluster(self, cluster_id: str) -> None:
        """DELETE /v2/databases/{uuid}."""
        self.databases.delete_cluster(cluster_id)

    def create_replica(self, c: Cluster, body: dict[str, Any]) -> Replica:
        """POST /v2/databases/{uuid}/replicas."""
        return self.databases.create_replica(c, body)

    def replica(self, c: Cluster, name: str) -> Replica:
        """The replica or a 404."""
        return self.databases.replica(c, name)

    def promote_replica(self, c: Cluster, name: str) -> Cluster:
        """PUT .../replicas/{name}/promote."""
        return self.databases.promote_replica(c, name)

    def backups(self, c: Cluster) -> list[BackupInfo]:
        """The cluster's backups, newest first."""
        return self.databases.backups(c)

    def pool(self, c: Cluster, name: str) -> dict[str, Any]:
        """The cluster's pool (as the scenario has it) or a 404."""
        return self.databases.pool(c, name)

    def pool_json(self, c: Cluster, pool: dict[str, Any]) -> dict[str, Any]:
        """A connection pool as the API shows it."""
        return self.databases.pool_json(c, pool)

    def users_json(self, c: Cluster) -> list[dict[str, Any]]:
        """The cluster's database users as the API shows them."""
        return self.databases.users_json(c)

    def cluster_config(self, c: Cluster) -> dict[str, Any]:
        """GET .../config."""
        return self.databases.config(c)

    def database_options(self) -> dict[str, Any]:
        """GET /v2/databases/options."""
        return self.databases.options()

    def set_firewall(self, c: Cluster, rules: Iterable[dict[str, Any]]) -> None:
        """PUT .../firewall: replace the rules."""
        self.databases.set_firewall(c, rules)

    # -- App Platform (state_apps) -------------------------------------------------------------------

    def deployment_phase(self, app: App, dep: Deployment) -> str:
        """The deployment's phase now."""
        return self.app_platform.deployment_phase(app, dep)

    def active_deployment(self, app: App) -> Deployment | None:
        """The newest deployment that finished."""
        return self.app_platform.active_deployment(app)

    def in_progress_deployment(self, app: App) -> Deployment | None:
        """The newest deployment still on its way."""
        return self.app_platform.in_progress_deployment(app)

    def deployment(self, app: App, dep_id: str) -> Deployment:
        """The deployment or a 404."""
        return self.app_platform.deployment(app, dep_id)

    def deployment_json(self, app: App, dep: Deployment) -> dict[str, Any]:
        """A deployment as the API shows it."""
        return self.app_platform.deployment_json(app, dep)

    def live_url(self, app: App) -> str:
        """The app's live URL."""
        return self.app_platform.live_url(app)

    def app_json(self, app: App) -> dict[str, Any]:
        """An app as the API shows it."""
        return self.app_platform.app_json(app)

    def create_deployment(self, app: App, force_build: bool = False) -> Deployment:
        """POST /v2/apps/{id}/deployments."""
        return self.app_platform.create_deployment(app, force_build)

    def validate_rollback(self, app: App, dep_id: str) -> dict[str, Any]:
        """POST .../rollback/validate."""
        return self.app_platform.validate_rollback(app, dep_id)

    def rollback(self, app: App, dep_id: str, skip_pin: bool = False) -> Deployment:
        """POST .../rollback."""
        return self.app_platform.rollback(app, dep_id, skip_pin)

    def commit_rollback(self, app: App) -> None:
        """POST .../rollback/commit."""
        self.app_platform.commit_rollback(app)

    def revert_rollback(self, app: App) -> Deployment:
        """POST .../rollback/revert."""
        return self.app_platform.revert_rollback(app)

    def restart(self, app: App, components: list[str] | None) -> Deployment:
        """POST .../restart."""
        return self.app_platform.restart(app, components)

    def component_healthy(self, app: App, component: str) -> bool:
        """Fault-injected or backend-reported health of one component."""
        return self.app_platform.component_healthy(app, component)

    def app_health(self, app: App) -> dict[str, Any]:
        """GET /v2/apps/{id}/health."""
        return self.app_platform.app_health(app)

    def app_healthy(self, app: App) -> bool:
        """Whether every component is healthy."""
        return self.app_platform.app_healthy(app)

    # -- Monitoring, Uptime, Functions (state_monitoring) ---------------------------------------------

    def app_metrics(self, app: App, component: str | None, start: int, end: int, kind: str) -> dict[str, Any]:
        """GET /v2/monitoring/metrics/apps/{cpu,memory}_percentage."""
        return self.monitoring.app_metrics(app, component, start, end, kind)

    def namespace(self, ns_id: str) -> dict[str, Any]:
        """The Functions namespace or a 404."""
        return self.monitoring.namespace(ns_id)

    @staticmethod
    def namespace_json(ns: dict[str, Any]) -> dict[str, Any]:
        """A namespace as the API shows it."""
        return Monitoring.namespace_json(ns)

    def trigger_json(self, ns: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
        """A SCHEDULED trigger with plausible last and next runs."""
        return self.monitoring.trigger_json(ns, t)

    def check(self, check_id: str) -> Check:
        """The Uptime check or a 404."""
        return self.monitoring.check(check_id)

    @staticmethod
    def check_json(c: Check) -> dict[str, Any]:
        """An Uptime check as the API shows it."""
        return Monitoring.check_json(c)

    def check_up(self, c: Check) -> bool:
        """Whether the check's target is up."""
        return self.monitoring.check_up(c)

    def check_state(self, c: Check) -> dict[str, Any]:
        """GET /v2/uptime/checks/{id}/state."""
        return self.monitoring.check_state(c)

    # -- request log and summary ---------------------------------------------------------------------

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
