"""Adapters from the API twin's backend protocols to the sandbox's real servers."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from doops.sandbox.api.backends import BackupInfo, ConnectionInfo

if TYPE_CHECKING:
    from doops.sandbox.apps import AppFleet
    from doops.sandbox.cdn import CdnProxy
    from doops.sandbox.pg import PgFleet

log = logging.getLogger(__name__)


class PgDatabaseBackend:
    """Managed PostgreSQL answers from the real fleet: connections, promotion, PITR, backups."""

    def __init__(self, fleet: PgFleet, password: str, database: str = "learnhub") -> None:
        self.fleet = fleet
        self._password = password
        self._database = database
        self._lock = threading.Lock()
        self._restoring: dict[str, threading.Thread] = {}
        self._failed: dict[str, str] = {}

    def _info(self, server_name: str) -> ConnectionInfo | None:
        try:
            srv = self.fleet.get(server_name)
        except KeyError:
            return None
        return ConnectionInfo(srv.host, srv.port, "doadmin", self._password, self._database, ssl=True)

    def connection(self, cluster_name: str, replica_name: str | None = None) -> ConnectionInfo | None:
        if replica_name is not None:
            return self._info(replica_name)
        with self._lock:
            thread = self._restoring.get(cluster_name)
            if thread is not None and thread.is_alive():
                return None
        try:
            srv = self.fleet.primary(cluster_name)
        except KeyError:
            return self._info(cluster_name)  # a promoted replica is its own cluster
        return ConnectionInfo(srv.host, srv.port, "doadmin", self._password, self._database, ssl=True)

    def promote(self, cluster_name: str, replica_name: str) -> None:
        self.fleet.promote(replica_name)

    def restore(self, source_cluster_name: str, target_time: dt.datetime | None, new_name: str) -> None:
        when = target_time or dt.datetime.now(dt.UTC)

        def run() -> None:
            try:
                self.fleet.restore_pitr(source_cluster_name, when, new_name)
            except Exception as exc:  # reported through the cluster status, never lost
                log.error("restore of %s into %s failed: %s", source_cluster_name, new_name, exc)
                with self._lock:
                    self._failed[new_name] = str(exc)

        thread = threading.Thread(target=run, name=f"restore-{new_name}", daemon=True)
        with self._lock:
            self._restoring[new_name] = thread
        thread.start()

    def list_backups(self, cluster_name: str) -> list[BackupInfo] | None:
        try:
            backups = self.fleet.list_backups(cluster_name)
        except KeyError:
            return None
        return [BackupInfo(b.created_at, round(b.size_bytes / 1024**3, 6)) for b in backups]


class ProxyCdnBackend:
    """Purges go to the real caching proxy of the endpoint."""

    def __init__(self, resolve: Callable[[str], CdnProxy | None]) -> None:
        self._resolve = resolve

    def purge(self, endpoint_id: str, files: list[str]) -> None:
        proxy = self._resolve(endpoint_id)
        if proxy is not None:
            proxy.purge(files)


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
