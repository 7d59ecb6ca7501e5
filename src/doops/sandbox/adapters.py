"""Adapters from the API twin's backend protocols to the sandbox's real servers."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from doops.ops import seam
from doops.sandbox.api.backends import BackupInfo, ConnectionInfo
from doops.sandbox.cache import USER as CACHE_USER
from doops.sandbox.db_metrics import MetricsCredentials

if TYPE_CHECKING:
    from doops.sandbox.apps import AppFleet
    from doops.sandbox.cache import CacheServer
    from doops.sandbox.cdn import CdnProxy
    from doops.sandbox.db_metrics import MetricsEndpoints
    from doops.sandbox.pg import PgFleet
    from doops.sandbox.pgbouncer import PgBouncer

log = logging.getLogger(__name__)

# PostgreSQL setting -> (the API's config name, how the API shows its value)
PG_CONFIG: dict[str, tuple[str, Callable[[str], Any]]] = {
    "max_connections": ("max_connections", int),
    "jit": ("jit", lambda v: v == "on"),
    "TimeZone": ("timezone", str),
    "work_mem": ("work_mem", lambda v: max(1, int(v) // 1024)),  # kB -> MB
    "idle_in_transaction_session_timeout": ("idle_in_transaction_session_timeout", int),
    "log_min_duration_statement": ("log_min_duration_statement", int),
}


class PgDatabaseBackend:
    """Managed databases answered by the sandbox's real servers: the PostgreSQL fleet (connections, standby,
    promotion, PITR, backups, users' passwords, version, CA), its PgBouncers (pools), the cache servers and the
    metrics endpoints.

    ``users``: password of each role the sandbox created besides doadmin; every PostgreSQL cluster of the fleet
    descends from one primary (standbys, promoted replicas, restores), so each holds the same roles.

    ``bouncers`` and ``caches`` are the supervisor's own maps (not copies): a deleted cluster's entry leaves them,
    so the sandbox's status stops listing a server the API no longer has.
    """

    def __init__(self, fleet: PgFleet, password: str, database: str = "learnhub", *,
                 users: dict[str, str] | None = None, bouncers: dict[str, PgBouncer] | None = None,
                 caches: dict[str, CacheServer] | None = None, metrics: MetricsEndpoints | None = None,
                 credentials: MetricsCredentials | None = None) -> None:
        self.fleet = fleet
        self._password = password
        self._database = database
        self._users = dict(users or {})
        self._bouncers = bouncers if bouncers is not None else {}
        self._caches = caches if caches is not None else {}
        self._metrics = metrics
        self._credentials = credentials or (metrics.credentials if metrics else MetricsCredentials())
        self._lock = threading.Lock()
        self._restoring: dict[str, threading.Thread] = {}
        self._cancels: dict[str, seam.Cancel] = {}  # restore under way -> its cancel
        self._planned: dict[str, ConnectionInfo] = {}
        self._failed: dict[str, str] = {}
        self._dropping: dict[str, threading.Thread] = {}  # deleted cluster -> the thread destroying its servers

    def _gone(self, cluster_name: str) -> bool:
        """Whether the cluster was deleted and its servers are still being destroyed: nothing of it is answered."""
        with self._lock:
            return cluster_name in self._dropping and cluster_name not in self._restoring

    def _conn(self, host: str, port: int) -> ConnectionInfo:
        return ConnectionInfo(host, port, "doadmin", self._password, self._database, ssl=True)

    def _info(self, server_name: str) -> ConnectionInfo | None:
        try:
            srv = self.fleet.get(server_name)
        except KeyError:
            return None
        return self._conn(srv.host, srv.port)

    def _runs_pg(self, cluster_name: str) -> bool:
        """Whether the cluster is one of the fleet's (its primary runs, or a restore of it is under way)."""
        if self._gone(cluster_name):
            return False
        with self._lock:
            if cluster_name in self._planned:
                return True
        try:
            self.fleet.primary(cluster_name)
        except KeyError:
            return False
        return True

    def connection(self, cluster_name: str, replica_name: str | None = None) -> ConnectionInfo | None:
        if self._gone(cluster_name):
            return None
        if replica_name is not None:
            return self._info(replica_name)
        cache = self._caches.get(cluster_name)
        if cache is not None:
            return ConnectionInfo("127.0.0.1", cache.port, CACHE_USER, cache.password, "", ssl=True)
        with self._lock:
            thread = self._restoring.get(cluster_name)
            if thread is not None and thread.is_alive():
                return None
        try:
            srv = self.fleet.primary(cluster_name)
        except KeyError:
            return self._info(cluster_name)  # a promoted replica is its own cluster
        return self._conn(srv.host, srv.port)

    def promote(self, cluster_name: str, replica_name: str) -> None:
        self.fleet.promote(replica_name)

    def restore(self, source_cluster_name: str, target_time: dt.datetime | None, new_name: str) -> ConnectionInfo:
        """Start the restore on a port reserved now: the connection answered at creation is the final one."""
        when = target_time or dt.datetime.now(dt.UTC)
        port = self.fleet.reserve_port()
        info = self._conn("127.0.0.1", port)
        cancel = seam.Cancel()
        with self._lock:
            dropping = self._dropping.get(new_name)  # an earlier cluster of that name, still being destroyed

        def run() -> None:
            if dropping is not None:
                dropping.join()
            try:
                self.fleet.restore_pitr(source_cluster_name, when, new_name, port=port, cancel=cancel)
            except seam.Cancelled:
                log.info("restore of %s into %s stopped: the cluster was deleted", source_cluster_name, new_name)
            except Exception as exc:  # reported through the cluster status, never lost
                log.error("restore of %s into %s failed: %s", source_cluster_name, new_name, exc)
                with self._lock:
                    self._failed[new_name] = str(exc)

        thread = threading.Thread(target=run, name=f"restore-{new_name}", daemon=True)
        with self._lock:
            self._restoring[new_name] = thread
            self._cancels[new_name] = cancel
            self._planned[new_name] = info
        thread.start()
        return info

    def drop(self, cluster_name: str) -> None:
        """Forget the cluster now and destroy its servers in a thread (the API answers 204 meanwhile): a restore
        into it is cancelled, then its PgBouncer, its metrics endpoint, its cache server and its PostgreSQL
        servers stop and their files go (:meth:`PgFleet.drop_cluster`)."""
        with self._lock:
            restore = self._restoring.pop(cluster_name, None)
            cancel = self._cancels.pop(cluster_name, None)
            self._planned.pop(cluster_name, None)
            self._failed.pop(cluster_name, None)
            if cancel is not None:
                cancel.cancel(f"cluster {cluster_name} deleted")
            if cluster_name in self._dropping:
                # a restore made while an earlier cluster of that name is destroyed has not begun (it waits for
                # that): its cancel is all it takes
                return
            bouncer = self._bouncers.pop(cluster_name, None)
            cache = self._caches.pop(cluster_name, None)
            thread = threading.Thread(target=self._destroy, args=(cluster_name, restore, bouncer, cache),
                                      name=f"drop-{cluster_name}", daemon=True)
            self._dropping[cluster_name] = thread
        thread.start()

    def _destroy(self, cluster_name: str, restore: threading.Thread | None, bouncer: PgBouncer | None,
                 cache: CacheServer | None) -> None:
        """The slow part of :meth:`drop`, off the request thread. Errors are logged: the API has answered."""
        try:
            if bouncer is not None:
                bouncer.stop()
                shutil.rmtree(bouncer.dir, ignore_errors=True)
            if self._metrics is not None:
                self._metrics.drop(cluster_name)
            stopped: list[str] = []
            if cache is not None:
                cache.stop()
                shutil.rmtree(cache.dir, ignore_errors=True)
            else:
                stopped = self.fleet.drop_cluster(cluster_name)
            if restore is not None:
                restore.join()  # cancelled: it ends at its next step, leaving nothing behind
            log.info("database cluster %s destroyed (servers: %s)", cluster_name,
                     ", ".join(stopped) or ("cache" if cache is not None else "none"))
        except Exception:
            log.exception("destroying the servers of deleted cluster %s failed", cluster_name)
        finally:
            with self._lock:
                self._dropping.pop(cluster_name, None)

    def list_backups(self, cluster_name: str) -> list[BackupInfo] | None:
        if self._gone(cluster_name):
            return None
        try:
            backups = self.fleet.list_backups(cluster_name)
        except KeyError:
            return None
        return [BackupInfo(b.created_at, round(b.size_bytes / 1024**3, 6)) for b in backups]

    def standby_connection(self, cluster_name: str) -> ConnectionInfo | None:
        if self._gone(cluster_name):
            return None
        srv = self.fleet.standby(cluster_name)
        return self._conn(srv.host, srv.port) if srv is not None else None

    def pool_connection(self, cluster_name: str, pool_name: str) -> ConnectionInfo | None:
        bouncer = self._bouncers.get(cluster_name)
        pool = bouncer.pool(pool_name) if bouncer is not None else None
        if bouncer is None or pool is None:
            return None
        bouncer.follow_primary()
        password = self._password if pool.user == "doadmin" else self._users.get(pool.user)
        if password is None:
            return None
        return ConnectionInfo("127.0.0.1", bouncer.port, pool.user, password, pool.name, ssl=True)

    def user_password(self, cluster_name: str, user: str) -> str | None:
        if cluster_name in self._caches or not self._runs_pg(cluster_name):
            return None
        return self._password if user == "doadmin" else self._users.get(user)

    def engine_version(self, engine: str) -> str | None:
        if engine == "pg":
            return str(self.fleet.semver)
        if engine in ("valkey", "redis") and self._caches:
            return next(iter(self._caches.values())).version
        return None

    def ca_certificate(self) -> str | None:
        return self.fleet.ca.pem

    def metrics_endpoint(self, cluster_name: str) -> tuple[str, int] | None:
        if self._metrics is None or cluster_name in self._caches or self._gone(cluster_name):
            return None
        endpoint = self._metrics.endpoint(cluster_name)
        return ("127.0.0.1", endpoint.port) if endpoint is not None else None

    def metrics_credentials(self) -> tuple[str, str]:
        return self._credentials.get()

    def set_metrics_credentials(self, username: str, password: str) -> None:
        self._credentials.set(username, password)

    def set_eviction_policy(self, cluster_name: str, policy: str) -> None:
        cache = self._caches.get(cluster_name)
        if cache is not None:
            cache.set_eviction_policy(policy)

    def engine_config(self, cluster_name: str) -> dict[str, Any] | None:
        if self._gone(cluster_name):
            return None
        cache = self._caches.get(cluster_name)
        if cache is not None:
            live = cache.live_policy()
            prefix = cache.engine
            if live is None:
                return None
            return {f"{prefix}_maxmemory_policy": live if prefix == "valkey" else live.replace("_", "-")}
        try:
            srv = self.fleet.primary(cluster_name)
            with self.fleet.connect_admin(srv.name, "postgres", timeout=2) as conn:
                rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                                    (list(PG_CONFIG),)).fetchall()
        except (KeyError, psycopg.Error):
            return None
        return {PG_CONFIG[name][0]: PG_CONFIG[name][1](value) for name, value in rows}


class ProxyCdnBackend:
    """Purges go to the real caching proxy of the endpoint."""

    def __init__(self, resolve: Callable[[str], CdnProxy | None]) -> None:
        self._resolve = resolve

    def purge(self, endpoint_id: str, files: list[str]) -> None:
        proxy = self._resolve(endpoint_id)
        if proxy is not None:
            proxy.purge(files)

    def purge_after(self, endpoint_id: str, files: list[str], delay: float) -> None:
        """The edge keeps serving its cached copy for ``delay`` s, as DigitalOcean's while a purge propagates."""
        proxy = self._resolve(endpoint_id)
        if proxy is not None:
            proxy.purge(files, delay)


class FleetAppBackend:
    """App health and live URLs from the real app servers.

    Apps a scenario scales up (API-only) share one loopback server, ``shared``: their live URL must still
    answer on 127.0.0.1, never a made-up public host a check would try to reach.
    """

    def __init__(self, fleet: AppFleet, shared: str | None = None) -> None:
        self.fleet = fleet
        self.shared = shared

    def live_url(self, app_name: str) -> str | None:
        if app_name in self.fleet:
            return str(self.fleet.apps[app_name].url)
        return self.fleet.apps[self.shared].url if self.shared and self.shared in self.fleet else None

    def healthy(self, app_name: str, component: str) -> bool:
        if app_name not in self.fleet:
            return True  # scaled, API-only apps are healthy by definition
        return bool(self.fleet.apps[app_name].component_health().get(component, True))
