"""Pluggable backends: where the twin gets facts it cannot invent.

The twin answers the DigitalOcean API from in-memory state, but a few answers must come from the real
local servers the sandbox runs (PostgreSQL, PgBouncer, the cache, the metrics endpoints, the CDN cache, the
app processes). Each such fact goes
through one of the small protocols below; the lead writes adapters to the real servers, and the
in-memory fakes here are used by the twin's own tests (and when no real server is plugged in).

Contract shared by all protocols:
- Methods are called from the HTTP server's request threads while the twin holds its world lock:
  implementations must be thread-safe and fast (every API request waits meanwhile). Long work (a
  restore) is started, not awaited; ``connection`` is called on every cluster read, so cache it.
- Returning ``None`` where allowed means "I do not know this resource": the twin then synthesises a
  plausible DigitalOcean-looking value (e.g. a ``*.db.ondigitalocean.com`` host).
- Exceptions raised by a backend become a DigitalOcean 500 error answer (logged, never swallowed).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AppBackend",
    "BackupInfo",
    "CdnBackend",
    "ConnectionInfo",
    "DatabaseBackend",
    "FakeAppBackend",
    "FakeCdnBackend",
    "FakeDatabaseBackend",
]


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a cluster (or replica) really listens; the password is never logged by the twin."""

    host: str
    port: int
    user: str
    password: str
    database: str
    ssl: bool = False

    def masked(self) -> str:
        """A loggable form of the connection (password masked)."""
        return f"{self.user}:***@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class BackupInfo:
    """One backup as the API lists it."""

    created_at: datetime
    size_gb: float


@runtime_checkable
class DatabaseBackend(Protocol):
    """The real database servers behind the managed clusters.

    Names, not uuids: the backend knows clusters by their DigitalOcean name (``learnhub-db``) and replicas
    by (cluster name, replica name).
    """

    def connection(self, cluster_name: str, replica_name: str | None = None) -> ConnectionInfo | None:
        """Connection of a cluster (replica_name None) or of one of its read replicas.

        ``None`` means "not known / not ready": for a cluster being restored the twin reports status
        ``creating`` until this returns a value, then ``online`` with this connection.
        After ``promote(c, r)`` the twin asks for the promoted cluster as ``connection(r)``.
        """
        ...

    def promote(self, cluster_name: str, replica_name: str) -> None:
        """Promote a read replica to a standalone primary (synchronously; raise on failure)."""
        ...

    def restore(self, source_cluster_name: str, target_time: datetime | None, new_name: str) -> ConnectionInfo | None:
        """Start a point-in-time restore of ``source_cluster_name`` at ``target_time`` (None = latest
        backup) into a new cluster ``new_name``; return at once. Readiness is reported by ``connection``.

        Returns the connection the new cluster will have once online (``None``: not known in advance): the
        twin answers it from the ``201`` on, since on DigitalOcean the connection given at creation never
        changes, so a client that keeps it connects once the cluster is online.
        """
        ...

    def list_backups(self, cluster_name: str) -> list[BackupInfo] | None:
        """Backups of a cluster, any order; ``None`` = unknown cluster (the twin synthesises daily ones)."""
        ...

    def standby_connection(self, cluster_name: str) -> ConnectionInfo | None:
        """Connection of the cluster's running standby node (``None``: none runs, or unknown cluster)."""
        ...

    def pool_connection(self, cluster_name: str, pool_name: str) -> ConnectionInfo | None:
        """Where the cluster's pool really answers (its PgBouncer; database = the pool's name, user = the
        pool's user); ``None``: no real pooler for it (the twin synthesises one)."""
        ...

    def user_password(self, cluster_name: str, user: str) -> str | None:
        """The real password of a database user of a cluster the backend runs (``None``: unknown)."""
        ...

    def engine_version(self, engine: str) -> str | None:
        """Full version (``15.18``) of the servers the backend runs for an engine (``pg``, ``valkey``...),
        ``None`` when it runs none: the API reports the version the servers really run."""
        ...

    def ca_certificate(self) -> str | None:
        """PEM of the CA that signed the servers' certificates (``GET .../ca``); ``None``: no TLS to verify."""
        ...

    def metrics_endpoint(self, cluster_name: str) -> tuple[str, int] | None:
        """(host, port) of the cluster's real metrics endpoint (``None``: none, the twin synthesises one for
        clusters it does not run, and lists none for a real cluster without one)."""
        ...

    def metrics_credentials(self) -> tuple[str, str]:
        """The account's (username, password) for every metrics endpoint."""
        ...

    def set_metrics_credentials(self, username: str, password: str) -> None:
        """Change them (``PUT /v2/databases/metrics/credentials``): the endpoints check the new pair at once."""
        ...

    def set_eviction_policy(self, cluster_name: str, policy: str) -> None:
        """Apply an eviction policy the API was given to the cache's server (no-op for one not run)."""
        ...

    def engine_config(self, cluster_name: str) -> dict[str, Any] | None:
        """Settings read from the cluster's server, in the API's config names (``None``: not run)."""
        ...

    def drop(self, cluster_name: str) -> None:
        """The cluster was deleted (``DELETE /v2/databases/{uuid}``): destroy what the backend runs of it, as
        DigitalOcean does: its servers (primary, standby, read replicas; a restore still under way is
        cancelled), their data, pools and metrics endpoint. Return at once: the API answers 204 meanwhile;
        from now on the backend knows the name no more (a new cluster may take it). No-op for one not run."""
        ...


@runtime_checkable
class CdnBackend(Protocol):
    """The local CDN cache in front of the Spaces origin."""

    def purge(self, endpoint_id: str, files: list[str]) -> None:
        """Purge ``files`` ("path", "dir/*" or "*") from the endpoint's cache (raise on failure)."""
        ...


@runtime_checkable
class AppBackend(Protocol):
    """The local processes playing the App Platform apps."""

    def live_url(self, app_name: str) -> str | None:
        """The URL the app really answers on (``None`` = unknown; the twin uses ``*.ondigitalocean.app``)."""
        ...

    def healthy(self, app_name: str, component: str) -> bool:
        """Whether the component's process answers its health check right now."""
        ...


# ---------------------------------------------------------------------------------------------------
# In-memory fakes (used by the twin's tests and when no real server is plugged in).


@dataclass
class _PendingRestore:
    source: str
    target_time: datetime | None
    ready_at: float
    info: ConnectionInfo


def self_signed_ca_pem(label: str = "doops twin") -> str:
    """A real CA certificate (PEM) with nothing signed by it: what a twin without servers serves on ``/ca``."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{label} CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class FakeDatabaseBackend:
    """A database backend with no server: connections point at 127.0.0.1 and a restore takes
    ``restore_seconds`` of the given clock. Records every call for assertions."""

    clusters: dict[str, ConnectionInfo] = field(default_factory=dict)
    replicas: dict[tuple[str, str], ConnectionInfo] = field(default_factory=dict)
    standbys: dict[str, ConnectionInfo] = field(default_factory=dict)
    pools: dict[tuple[str, str], ConnectionInfo] = field(default_factory=dict)
    passwords: dict[tuple[str, str], str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, tuple[str, int]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    backups: dict[str, list[BackupInfo]] = field(default_factory=dict)
    restore_seconds: float = 0.3
    clock: Callable[[], float] = time.time
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    fail_promote: bool = False
    ca_pem: str | None = None  # made on first ask
    credentials: tuple[str, str] = field(default_factory=lambda: ("metrics", secrets.token_urlsafe(12)))
    _restores: dict[str, _PendingRestore] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connection(self, cluster_name: str, replica_name: str | None = None) -> ConnectionInfo | None:
        """See DatabaseBackend.connection."""
        with self._lock:
            if replica_name is not None:
                return self.replicas.get((cluster_name, replica_name))
            pending = self._restores.get(cluster_name)
            if pending is not None:
                if self.clock() < pending.ready_at:
                    return None
                del self._restores[cluster_name]
                self.clusters[cluster_name] = pending.info
            return self.clusters.get(cluster_name)

    def promote(self, cluster_name: str, replica_name: str) -> None:
        """See DatabaseBackend.promote."""
        with self._lock:
            self.calls.append(("promote", (cluster_name, replica_name)))
            if self.fail_promote:
                raise RuntimeError("promotion failed (fake)")
            info = self.replicas.pop((cluster_name, replica_name), None)
            if info is not None:
                self.clusters[replica_name] = info

    def restore(self, source_cluster_name: str, target_time: datetime | None, new_name: str) -> ConnectionInfo | None:
        """See DatabaseBackend.restore: the new cluster's connection is fixed now (the source's user,
        password and database on a port of its own)."""
        with self._lock:
            self.calls.append(("restore", (source_cluster_name, target_time, new_name)))
            src = self.clusters.get(source_cluster_name)
            port = 15432 + len(self.clusters) + len(self._restores)
            info = (ConnectionInfo("127.0.0.1", port, src.user, src.password, src.database, src.ssl) if src
                    else ConnectionInfo("127.0.0.1", port, "doadmin", "fake", "defaultdb"))
            self._restores[new_name] = _PendingRestore(
                source_cluster_name, target_time, self.clock() + self.restore_seconds, info)
            return info

    def list_backups(self, cluster_name: str) -> list[BackupInfo] | None:
        """See DatabaseBackend.list_backups."""
        with self._lock:
            got = self.backups.get(cluster_name)
            return list(got) if got is not None else None

    def standby_connection(self, cluster_name: str) -> ConnectionInfo | None:
        """See DatabaseBackend.standby_connection."""
        return self.standbys.get(cluster_name)

    def pool_connection(self, cluster_name: str, pool_name: str) -> ConnectionInfo | None:
        """See DatabaseBackend.pool_connection."""
        return self.pools.get((cluster_name, pool_name))

    def user_password(self, cluster_name: str, user: str) -> str | None:
        """See DatabaseBackend.user_password."""
        return self.passwords.get((cluster_name, user))

    def engine_version(self, engine: str) -> str | None:
        """See DatabaseBackend.engine_version."""
        return self.versions.get(engine)

    def ca_certificate(self) -> str | None:
        """See DatabaseBackend.ca_certificate: a real CA certificate, made once."""
        with self._lock:
            if self.ca_pem is None:
                self.ca_pem = self_signed_ca_pem()
            return self.ca_pem

    def metrics_endpoint(self, cluster_name: str) -> tuple[str, int] | None:
        """See DatabaseBackend.metrics_endpoint."""
        return self.metrics.get(cluster_name)

    def metrics_credentials(self) -> tuple[str, str]:
        """See DatabaseBackend.metrics_credentials."""
        return self.credentials

    def set_metrics_credentials(self, username: str, password: str) -> None:
        """See DatabaseBackend.set_metrics_credentials."""
        with self._lock:
            self.calls.append(("set_metrics_credentials", (username,)))
            self.credentials = (username, password)

    def set_eviction_policy(self, cluster_name: str, policy: str) -> None:
        """See DatabaseBackend.set_eviction_policy."""
        with self._lock:
            self.calls.append(("set_eviction_policy", (cluster_name, policy)))

    def engine_config(self, cluster_name: str) -> dict[str, Any] | None:
        """See DatabaseBackend.engine_config."""
        got = self.configs.get(cluster_name)
        return dict(got) if got is not None else None

    def drop(self, cluster_name: str) -> None:
        """See DatabaseBackend.drop: forgets the cluster, its replicas, standby, pools and any pending restore."""
        with self._lock:
            self.calls.append(("drop", (cluster_name,)))
            self._restores.pop(cluster_name, None)
            for table in (self.clusters, self.standbys, self.metrics, self.configs, self.backups):
                table.pop(cluster_name, None)
            for pairs in (self.replicas, self.pools):
                for key in [k for k in pairs if k[0] == cluster_name]:
                    del pairs[key]

    def add_daily_backups(self, cluster_name: str, days: int = 7, size_gb: float = 1.5) -> None:
        """Test helper: daily backups for the last ``days`` days."""
        now = datetime.fromtimestamp(self.clock(), UTC).replace(minute=0, second=0, microsecond=0)
        self.backups[cluster_name] = [
            BackupInfo(now - timedelta(days=d, hours=1), size_gb) for d in range(days)
        ]


@dataclass
class FakeCdnBackend:
    """A CDN backend that only remembers what was purged."""

    purged: list[tuple[str, list[str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def purge(self, endpoint_id: str, files: list[str]) -> None:
        """See CdnBackend.purge."""
        with self._lock:
            self.purged.append((endpoint_id, list(files)))


@dataclass
class FakeAppBackend:
    """An app backend whose health is a set of (app, component) pairs marked unhealthy."""

    urls: dict[str, str] = field(default_factory=dict)
    unhealthy: set[tuple[str, str]] = field(default_factory=set)

    def live_url(self, app_name: str) -> str | None:
        """See AppBackend.live_url."""
        return self.urls.get(app_name)

    def healthy(self, app_name: str, component: str) -> bool:
        """See AppBackend.healthy."""
        return (app_name, component) not in self.unhealthy and (app_name, "*") not in self.unhealthy
