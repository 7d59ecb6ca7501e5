"""The database metrics endpoint DigitalOcean advertises in a cluster's ``metrics_endpoints``, for real.

One HTTPS server per PostgreSQL cluster (127.0.0.1, a free port, a certificate signed by the sandbox CA) that
answers ``GET /metrics`` in Prometheus' text format with the current primary's own statistics, read from
``pg_stat_*`` at each scrape, behind the basic-auth credentials of ``GET /v2/databases/metrics/credentials``
(one pair for the account, as on DigitalOcean; ``PUT`` changes them and the servers check the new pair at once).
Anything else is 404; a wrong or missing credential is 401 with a ``WWW-Authenticate`` challenge.

Metrics (labels ``cluster`` on every sample): ``pg_up``, ``pg_in_recovery``, ``pg_settings_max_connections``,
``pg_stat_activity_count{datname,state}`` (client connections by state), ``pg_stat_database_numbackends``,
``pg_stat_database_xact_commit_total`` and ``_xact_rollback_total`` (counters), ``pg_database_size_bytes``
(per database), ``pg_replication_lag_bytes`` and ``pg_replication_lag_seconds`` (per standby or replica
streaming from the primary, by ``application_name``), ``pg_replication_slots_active``.
"""

from __future__ import annotations

import base64
import logging
import secrets
import ssl
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doops.sandbox.loopback import LoopbackServer

if TYPE_CHECKING:
    from doops.sandbox.pg import PgFleet

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsCredentials:
    """The account's one basic-auth pair for every metrics endpoint (thread safe)."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self._lock = threading.Lock()
        self._pair = (username or f"metrics-{secrets.token_hex(3)}", password or secrets.token_urlsafe(18))

    def get(self) -> tuple[str, str]:
        with self._lock:
            return self._pair

    def set(self, username: str, password: str) -> None:
        if not username or not password:
            raise ValueError("basic_auth_username and basic_auth_password must not be empty")
        with self._lock:
            self._pair = (username, password)

    def check(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the current pair (compared in constant time)."""
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        want_user, want_pw = self.get()
        return secrets.compare_digest(user.encode(), want_user.encode()) & secrets.compare_digest(
            pw.encode(), want_pw.encode())


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Exposition:
    """Prometheus text, one family at a time (HELP and TYPE before its samples)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, Any], float | int | None]]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            if value is None:
                continue
            pairs = ",".join(f'{k}="{_label(v)}"' for k, v in {"cluster": self.cluster, **labels}.items())
            self.lines.append(f"{name}{{{pairs}}} {float(value):g}" if isinstance(value, float)
                              else f"{name}{{{pairs}}} {int(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics(fleet: PgFleet, cluster: str) -> str:
    """The cluster's metrics read now from its current primary; ``pg_up 0`` alone when it does not answer."""
    import psycopg

    out = _Exposition(cluster)
    try:
        server = fleet.primary(cluster)
        with fleet.connect_admin(server.name, "postgres", timeout=2) as conn:
            in_recovery = bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])  # type: ignore[index]
            max_conn = int(conn.execute("SELECT current_setting('max_connections')::int").fetchone()[0])  # type: ignore[index]
            by_state = conn.execute(
                "SELECT coalesce(datname, ''), coalesce(state, 'unknown'), count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
            dbs = conn.execute(
                "SELECT d.datname, s.numbackends, s.xact_commit, s.xact_rollback, pg_database_size(d.datname) "
                "FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid "
                "WHERE NOT d.datistemplate ORDER BY 1").fetchall()
            replication = [] if in_recovery else conn.execute(
                "SELECT application_name, coalesce(state, ''), "
                "coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, "
                "coalesce(extract(epoch FROM replay_lag), 0)::float8 FROM pg_stat_replication ORDER BY 1").fetchall()
            slots = int(conn.execute("SELECT count(*) FROM pg_replication_slots WHERE active").fetchone()[0])  # type: ignore[index]
    except (psycopg.Error, KeyError, OSError) as exc:
        log.info("metrics of %s: primary not answering (%s)", cluster, type(exc).__name__)
        out.family("pg_up", "gauge", "Whether the cluster's primary answered this scrape.", [({}, 0)])
        return out.text()
    out.family("pg_up", "gauge", "Whether the cluster's primary answered this scrape.", [({}, 1)])
    out.family("pg_in_recovery", "gauge", "1 while the server is a standby (in recovery).", [({}, int(in_recovery))])
    out.family("pg_settings_max_connections", "gauge", "The server's max_connections.", [({}, max_conn)])
    out.family("pg_stat_activity_count", "gauge", "Client connections by database and state.",
               [({"datname": d, "state": s}, n) for d, s, n in by_state])
    out.family("pg_stat_database_numbackends", "gauge", "Backends connected to each database.",
               [({"datname": r[0]}, r[1]) for r in dbs])
    out.family("pg_stat_database_xact_commit_total", "counter", "Transactions committed in each database.",
               [({"datname": r[0]}, r[2]) for r in dbs])
    out.family("pg_stat_database_xact_rollback_total", "counter", "Transactions rolled back in each database.",
               [({"datname": r[0]}, r[3]) for r in dbs])
    out.family("pg_database_size_bytes", "gauge", "Disk space used by each database.",
               [({"datname": r[0]}, r[4]) for r in dbs])
    out.family("pg_replication_lag_bytes", "gauge", "WAL bytes each standby or replica has still to replay.",
               [({"application_name": a, "state": s}, b) for a, s, b, _ in replication])
    out.family("pg_replication_lag_seconds", "gauge", "Replay lag of each standby or replica, in seconds.",
               [({"application_name": a, "state": s}, float(sec)) for a, s, _, sec in replication])
    out.family("pg_replication_slots_active", "gauge", "Replication slots in use.", [({}, slots)])
    return out.text()


class _Handler(BaseHTTPRequestHandler):
    server_version = "doops-db-metrics"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle(self) -> None:
        """A client that leaves during the TLS handshake (a port probe, a plain-HTTP client) is no error."""
        try:
            super().handle()
        except (ssl.SSLError, OSError):
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        endpoint: PgMetricsEndpoint = self.server.endpoint  # type: ignore[attr-defined]
        if not endpoint.credentials.check(self.headers.get("Authorization")):
            self._send(401, b"unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="metrics"'})
            return
        if self.path.split("?", 1)[0] != "/metrics":
            self._send(404, b"not found: GET /metrics\n")
            return
        self._send(200, render_metrics(endpoint.fleet, endpoint.cluster).encode(), CONTENT_TYPE)


class PgMetricsEndpoint:
    """The HTTPS metrics server of one cluster."""

    def __init__(self, fleet: PgFleet, cluster: str, credentials: MetricsCredentials, cert: Path, key: Path) -> None:
        self.fleet = fleet
        self.cluster = cluster
        self.credentials = credentials
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        self._server = LoopbackServer(_Handler, f"db-metrics-{cluster}", ssl_context=ctx, endpoint=self)

    def start(self) -> PgMetricsEndpoint:
        self._server.start()
        log.info("metrics endpoint of %s on %s", self.cluster, self._server.url)
        return self

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url + "/metrics"

    def stop(self) -> None:
        self._server.stop()


class MetricsEndpoints:
    """The metrics endpoints of every PostgreSQL cluster of a fleet, each started the first time it is asked
    for (a cluster made by a restore or a promotion gets one too); one certificate for them all."""

    def __init__(self, fleet: PgFleet, credentials: MetricsCredentials, tls_dir: Path) -> None:
        self.fleet = fleet
        self.credentials = credentials
        tls_dir.mkdir(parents=True, exist_ok=True)
        self._cert, self._key = tls_dir / "db-metrics.crt", tls_dir / "db-metrics.key"
        fleet.ca.issue(self._cert, self._key)
        self._lock = threading.Lock()
        self._endpoints: dict[str, PgMetricsEndpoint] = {}

    def endpoint(self, cluster: str) -> PgMetricsEndpoint | None:
        """The cluster's endpoint (started now if needed); None when the fleet has no such cluster."""
        with self._lock:
            found = self._endpoints.get(cluster)
            if found is not None:
                return found
            try:
                self.fleet.primary(cluster)
            except KeyError:
                return None
            ep = PgMetricsEndpoint(self.fleet, cluster, self.credentials, self._cert, self._key).start()
            self._endpoints[cluster] = ep
            return ep

    def drop(self, cluster: str) -> None:
        """Stop the endpoint of a deleted cluster (its port closes); a cluster of that name made later gets a
        new one."""
        with self._lock:
            ep = self._endpoints.pop(cluster, None)
        if ep is not None:
            ep.stop()

    def running(self) -> dict[str, PgMetricsEndpoint]:
        with self._lock:
            return dict(self._endpoints)

    def stop(self) -> None:
        with self._lock:
            eps, self._endpoints = list(self._endpoints.values()), {}
        for ep in eps:
            ep.stop()
