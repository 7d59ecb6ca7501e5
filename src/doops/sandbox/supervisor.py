"""The sandbox supervisor: one detached process that owns every server of a sandbox.

Started by `doops sandbox up` (``python -m doops.sandbox.supervisor --dir DIR``). It makes the sandbox's CA
(``DIR/tls/ca.crt``, which signs every server certificate), starts the real servers (PostgreSQL fleet, its
PgBouncer, the cache, the database metrics endpoints, S3, CDN proxies, app servers, the authoritative DNS
server of the twin's domains, Prometheus and the Pushgateway when installed)
and the API twin,
writes ``DIR/sandbox.json`` (ready marker, URLs, secrets; mode 0600), ``DIR/env.sh`` and ``DIR/doops.yaml``,
then serves a small loopback control API (faults, status) until SIGTERM or its time to live runs out.
Every child process has a pid file so `doops sandbox down` can clean up even after a crash of this one.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from doops.ops import seam
from doops.sandbox import faults_spec, pidfiles
from doops.sandbox.control import CONFIG_FILE, ENV_FILE, STATE_FILE
from doops.sandbox.loopback import LoopbackServer

log = logging.getLogger("doops.sandbox")

DB_CLUSTER = "learnhub-db"
DB_STANDBY = "learnhub-db-standby"
EXPORTER_ENV = "DOOPS_SANDBOX_EXPORTER"  # "1": run `doops exporter` beside the sandbox (sandbox up --exporter)
SCALED_APPS_SERVER = "scaled-apps"  # one loopback server answering for every API-only (scaled) app
ADMIN_HEADER = "x-doops-admin"


def pg_base_dir(d: Path) -> Path:
    """Where the PostgreSQL fleet keeps its data: ``DIR/pg``.

    As root the servers run as an unprivileged user, who must be able to traverse every ancestor of their
    data. Rather than opening up the user's own directories (``/root``...), the data then lives in a fresh
    directory under the system temp dir and ``DIR/pg`` is a symlink to it (removed by `down`).
    """
    link = d / pidfiles.PG_DIR
    if os.geteuid() != 0 or link.exists():
        return link
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="doops-sandbox-pg-"))
    os.chmod(target, 0o711)
    link.symlink_to(target, target_is_directory=True)
    return link


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class Supervisor:
    def __init__(self, d: Path, scenario_path: str | None, latency_ms: int, ttl: float) -> None:
        self.dir = d
        self.scenario_path = scenario_path
        self.latency_ms = latency_ms
        self.ttl = ttl
        self.stop_event = threading.Event()
        self.token = "dop_v1_" + secrets.token_hex(32)
        self.readonly_token = "dop_v1_" + secrets.token_hex(32)  # read scope only: writes answer 403
        self.admin_secret = secrets.token_urlsafe(24)
        self.db_password = "AVNS_" + secrets.token_urlsafe(18)
        self.spaces_key = "DO" + secrets.token_hex(9).upper()
        self.spaces_secret = secrets.token_urlsafe(30)
        # Seeds every resource id of this sandbox's world (see state.stable_id): ids stay the same for the
        # sandbox's life (kept in sandbox.json) and differ from every other sandbox's and from real ones.
        self.id_seed = secrets.token_hex(16)
        self.fleet: Any = None
        self.ca: Any = None
        self.base_dir: Path | None = None
        self.db_users: dict[str, str] = {}  # role -> password, roles the scenario's PostgreSQL cluster has
        self.bouncers: dict[str, Any] = {}  # cluster -> PgBouncer
        self.caches: dict[str, Any] = {}  # cache cluster -> CacheServer
        self.metrics: Any = None  # MetricsEndpoints
        self.spaces: Any = None
        self.apps: Any = None
        self.cdn: dict[str, Any] = {}  # endpoint id -> CdnProxy
        self.prom: Any = None
        self.pushgateway: Any = None  # Pushgateway, where drills push their metrics (scraped by self.prom)
        # `doops sandbox up --exporter` (env DOOPS_SANDBOX_EXPORTER=1) or the scenario's sandbox.exporter: true
        self.with_exporter = os.environ.get(EXPORTER_ENV) == "1"
        self.exporter: Any = None  # the `doops exporter` child (ExporterChild), scraped by self.prom as job "doops"
        self.twin: Any = None
        self.world: Any = None
        self.dns: Any = None  # DnsServer: authoritative for the twin's domains
        self.control: LoopbackServer | None = None
        self.started_at = time.time()
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self._paused: set[str] = set()  # replicas whose WAL replay a db-lag fault paused
        # One handler per fault kind, by spec class (every kind of faults_spec.ALL has one).
        self._fault_handlers: dict[type[faults_spec.FaultSpec], Callable[[Any], dict[str, Any]]] = {
            faults_spec.Latency: self._twin_fault,
            faults_spec.HttpError: self._twin_fault,
            faults_spec.Throttle: self._twin_fault,
            faults_spec.DbStop: self._db_stop,
            faults_spec.DbLag: self._db_lag,
            faults_spec.AppUnhealthy: self._app_unhealthy,
            faults_spec.BadRelease: self._bad_release,
            faults_spec.Tls: self._tls_fault,
            faults_spec.SpacesReplication: self._spaces_replication,
            faults_spec.Clear: self._clear_faults,
        }

    # -- start ------------------------------------------------------------------------------------

    def _timed(self, name: str, fn: Any) -> Any:
        t0 = time.monotonic()
        result = fn()
        self.timings[name] = round(time.monotonic() - t0, 3)
        return result

    def start(self) -> None:
        from doops.sandbox.api.scenario import load_scenario
        from doops.sandbox.tls import SandboxCA

        scenario = load_scenario(self.scenario_path)
        overrides = scenario.data.get("sandbox") or {}
        self.with_exporter = self.with_exporter or bool(overrides.get("exporter"))
        replication_delay = float(overrides.get("spaces_replication_delay", 2.0))
        self.ca = SandboxCA.create(self.dir / "tls", label=self.id_seed[:8])
        self.base_dir = pg_base_dir(self.dir)
        # The database fleet is the slow part: run it beside the rest.
        with ThreadPoolExecutor(max_workers=4) as pool:
            db_future = pool.submit(self._timed, "postgres", lambda: self._start_postgres(scenario))
            cache_future = pool.submit(self._timed, "cache", lambda: self._start_caches(scenario))
            spaces_future = pool.submit(self._timed, "spaces", lambda: self._start_spaces(replication_delay))
            # Prometheus only needs the apps, and takes ~5 s to discover its targets: start it early. The
            # Pushgateway just before it (~0.1 s): Prometheus' first config then names it, no reload needed.
            apps_future = pool.submit(lambda: (self._timed("apps", lambda: self._start_apps(scenario)),
                                               self._timed("pushgateway", self._start_pushgateway),
                                               self._timed("prometheus", self._start_prometheus)))
            spaces_future.result()
            apps_future.result()
            cache_future.result()
            db_future.result()
        self._timed("twin", lambda: self._start_twin(scenario))
        self._timed("app_tls", self._start_app_tls)
        self._timed("dns", self._start_dns)
        self._timed("cdn", self._start_cdn)
        self._timed("prometheus_targets", self._wait_prometheus_targets)
        self._start_control()
        if self.with_exporter:
            self._timed("exporter", self._start_exporter)
        self._write_files()

    def _start_postgres(self, scenario: Any) -> None:
        """The primary with the scenario's roles, then in parallel its base backup, standby, read replica and
        PgBouncer (one serving every pool of the cluster); the metrics endpoint last."""
        from doops import masking
        from doops.sandbox.db_metrics import MetricsCredentials, MetricsEndpoints
        from doops.sandbox.pg import ADMIN_USER, PgFleet
        from doops.sandbox.pgbouncer import PgBouncer, Pool

        spec = _scenario_database(scenario, DB_CLUSTER)
        pools = [Pool(str(p["name"]), str(p.get("db", "defaultdb")), str(p.get("user", ADMIN_USER)),
                      str(p.get("mode", "transaction")), int(p.get("size", 10))) for p in spec.get("pools") or []]
        assert self.base_dir is not None
        self.fleet = PgFleet(self.base_dir, self.db_password, ca=self.ca)
        self.fleet.start_cluster(DB_CLUSTER, region="nyc3")
        for user in dict.fromkeys([*(spec.get("users") or []), *(p.user for p in pools)]):
            if user != ADMIN_USER:
                password = "AVNS_" + secrets.token_urlsafe(18)
                masking.register(password)
                self.fleet.create_role(DB_CLUSTER, str(user), password)
                self.db_users[str(user)] = password
        bouncer = PgBouncer(self.fleet, DB_CLUSTER, pools, sandbox_dir=self.dir) if pools else None
        if bouncer is not None:
            self.bouncers[DB_CLUSTER] = bouncer  # before start: whatever fails next, shutdown stops it
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(self.fleet.take_base_backup, DB_CLUSTER),
                pool.submit(self.fleet.add_standby, DB_CLUSTER, DB_STANDBY, "nyc3"),
                pool.submit(self.fleet.add_standby, DB_CLUSTER, "learnhub-db-ams3", "ams3", replica=True),
            ]
            if bouncer is not None:
                futures.append(pool.submit(bouncer.start))
            for f in futures:
                f.result()
        self.fleet.start_heartbeat(DB_CLUSTER)
        credentials = MetricsCredentials()
        masking.register(credentials.get()[1])
        self.metrics = MetricsEndpoints(self.fleet, credentials, self.dir / "tls")
        self.metrics.endpoint(DB_CLUSTER)

    def _start_caches(self, scenario: Any) -> None:
        """A real TLS server with a password for each cache cluster (Valkey/Redis engine) of the scenario."""
        from doops import masking
        from doops.sandbox.api.resources import REDIS_ENGINES
        from doops.sandbox.cache import CacheServer
        from doops.sandbox.pg_util import resolve_run_as

        specs = [d for d in scenario.data.get("databases") or [] if d.get("engine") in REDIS_ENGINES]
        if not specs:
            return
        assert self.base_dir is not None
        run_as = resolve_run_as()
        for spec in specs:
            password = "AVNS_" + secrets.token_urlsafe(18)
            masking.register(password)
            server = CacheServer(str(spec["name"]), self.base_dir.resolve(), self.ca, run_as, password,
                                 eviction_policy=str(spec.get("eviction_policy") or "noeviction"),
                                 engine=str(spec["engine"]), sandbox_dir=self.dir)
            self.caches[server.name] = server  # before start: a failed start is still stopped at shutdown
            server.start()

    def _start_spaces(self, delay: float) -> None:
        from doops.sandbox.spaces import SpacesTwin

        self.spaces = SpacesTwin(self.spaces_key, self.spaces_secret, replication_delay=delay).start()

    def _start_apps(self, scenario: Any) -> None:
        """A server per app of the scenario, each component with the route and health path of its app spec; one
        more answering for every scaled (API-only) app, laid out as their spec is."""
        from doops.sandbox.api.state_build import scaled_app
        from doops.sandbox.apps import AppFleet

        self.apps = AppFleet()
        for spec in scenario.data.get("apps") or []:
            self.apps.add_spec(spec)
        if int(scenario.scale.get("apps") or 0) > 0:
            self.apps.add_spec(scaled_app(SCALED_APPS_SERVER))

    def _start_twin(self, scenario: Any) -> None:
        from doops.sandbox.adapters import FleetAppBackend, PgDatabaseBackend, ProxyCdnBackend
        from doops.sandbox.api.server import TwinServer
        from doops.sandbox.api.state import World

        self.world = World.from_scenario(
            scenario,
            db=PgDatabaseBackend(self.fleet, self.db_password, users=self.db_users, bouncers=self.bouncers,
                                 caches=self.caches, metrics=self.metrics),
            cdn=ProxyCdnBackend(self.cdn.get),
            apps=FleetAppBackend(self.apps, shared=SCALED_APPS_SERVER),
            id_seed=self.id_seed,
        )
        if self.latency_ms:
            self.world.faults.latency(self.latency_ms)
        self._wire_releases()
        self.twin = TwinServer(
            self.world, tokens={"sandbox": self.token, "readonly": self.readonly_token},
            admin_secret=self.admin_secret,
            request_log_path=self.dir / "twin-requests.jsonl",
        ).start()

    def _start_app_tls(self) -> None:
        """Every app server also serves HTTPS, its certificate (sandbox CA) naming the app's ingress host."""
        for name, server in self.apps.apps.items():
            app = self.world.find_app_by_name(name)
            server.enable_tls(self.ca, self.dir / "tls", [app.hostname] if app is not None else [])

    def _wire_releases(self) -> None:
        """Each app's live server asks the twin whether its active deployment runs a bad release."""
        import functools

        for name, server in self.apps.apps.items():
            app = self.world.find_app_by_name(name)
            if app is not None:
                server.release_broken = functools.partial(self.world.app_platform.bad_release_active, app)

    def _start_dns(self) -> None:
        """The authoritative name server of the twin's domains (UDP and TCP on one free loopback port)."""
        from doops.sandbox.dns import DnsServer

        self.dns = DnsServer(self.world).start()

    def _start_cdn(self) -> None:
        from doops.sandbox.cdn import CdnProxy

        for ep_id, ep in self.world.cdn_endpoints.items():
            bucket = str(ep["origin"]).split(".", 1)[0]
            if bucket not in self.spaces.buckets:
                continue  # scaled endpoints are API-only
            self.cdn[ep_id] = CdnProxy(
                self.spaces.endpoint_url, bucket, float(ep.get("ttl", 3600)),
                access_key=self.spaces_key, secret_key=self.spaces_secret,
                region=self.spaces.buckets[bucket],
            ).start()

    def _start_prometheus(self) -> None:
        from doops.sandbox.prom import PrometheusRunner, find_prometheus
        from doops.sandbox.pushgateway import SCRAPE_JOB

        if not find_prometheus():
            self.notes.append("prometheus not found: running without it (install the prometheus package, "
                              "or put the binary on PATH or in DOOPS_PROMETHEUS_BIN)")
            log.warning(self.notes[-1])
            return
        targets, options = self.apps.scrape_targets(), {}
        if self.pushgateway is not None:  # honor_labels: keep the pushed job="doops_drill" and runbook labels
            targets[SCRAPE_JOB] = [f"127.0.0.1:{self.pushgateway.port}"]
            options[SCRAPE_JOB] = {"honor_labels": True}
        try:
            prom = PrometheusRunner(self.dir / "prom", targets, job_options=options).start()
        except (OSError, RuntimeError) as exc:  # a broken install must not stop the sandbox
            self.notes.append(f"prometheus did not start, running without it: {exc}")
            log.warning(self.notes[-1])
            return
        if prom.pid:
            pidfiles.record_child(self.dir, "prometheus", prom.pid, "prometheus")
        self.prom = prom

    def _start_pushgateway(self) -> None:
        """The Pushgateway drills push to; without the binary (or when it fails) the sandbox notes it and goes on."""
        from doops.sandbox.children import ServerNotFoundError
        from doops.sandbox.pg_util import resolve_run_as
        from doops.sandbox.pushgateway import Pushgateway, find_pushgateway

        try:
            if not find_pushgateway():
                self.notes.append("prometheus-pushgateway not found: running without it (run "
                                  "`bash scripts/install-system-deps.sh`, or put the binary on PATH or in "
                                  "DOOPS_PUSHGATEWAY_BIN)")
                log.warning(self.notes[-1])
                return
            assert self.base_dir is not None
            gateway = Pushgateway(self.base_dir.resolve(), resolve_run_as(), sandbox_dir=self.dir)
            self.pushgateway = gateway  # before start: whatever fails next, shutdown stops it
            gateway.start()
        except (OSError, RuntimeError) as exc:  # ServerNotFoundError too: a broken install must not stop the sandbox
            self.pushgateway = None
            kind = "not found" if isinstance(exc, ServerNotFoundError) else "did not start"
            self.notes.append(f"pushgateway {kind}, running without it: {exc}")
            log.warning(self.notes[-1])

    def _wait_prometheus_targets(self, timeout: float = 30.0) -> None:
        """Ready means scraped: wait until Prometheus reports every app target, the Pushgateway and itself up (a
        target not scraped yet is ``unknown``, which `doops status` would judge down)."""
        if self.prom is None:
            return
        prom = self.prom
        jobs = prom.job_names if prom.scrape_targets else set()

        def all_up() -> bool:
            if not jobs:  # nothing to scrape: ready whether or not Prometheus answers yet
                return True
            return jobs <= {t["labels"]["job"] for t in prom.active_targets() if t.get("health") == "up"}

        # Any error means "not answering yet".
        if seam.wait_until(all_up, timeout=timeout, clock=seam.SystemClock(), interval=0.1, max_interval=0.1,
                           backoff=1.0, errors=(Exception,)).done:
            return
        self.notes.append("prometheus has not scraped every app yet")
        log.warning(self.notes[-1])

    def _start_exporter(self) -> None:
        """`doops exporter` as a child, with this sandbox's config and token, scraped by its Prometheus (job
        "doops"); a failure is a note, as for Prometheus."""
        from doops.sandbox.exporter_child import SCRAPE_JOB, ExporterChild

        state = self.state()
        _write_private(self.dir / CONFIG_FILE, self._config_yaml(state))  # the exporter reads it at start
        env = {"DIGITALOCEAN_API_URL": state["api_url"], "DIGITALOCEAN_ACCESS_TOKEN": self.token,
               "DOOPS_CONFIG": str(self.dir / CONFIG_FILE), "AWS_ENDPOINT_URL_S3": self.spaces.endpoint_url,
               "SPACES_ACCESS_KEY_ID": self.spaces_key, "SPACES_SECRET_ACCESS_KEY": self.spaces_secret}
        if self.prom:
            env["PROMETHEUS_URL"] = self.prom.url
        try:
            child = ExporterChild(self.dir / "exporter", env, sandbox_dir=self.dir).start()
        except (OSError, RuntimeError) as exc:
            self.notes.append(f"doops exporter did not start, running without it: {exc}")
            log.warning(self.notes[-1])
            return
        self.exporter = child
        if self.prom:
            self.prom.set_targets({**self.prom.scrape_targets, SCRAPE_JOB: [child.address]})
            self._wait_prometheus_targets()

    def _start_control(self) -> None:
        sup = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                if not secrets.compare_digest(self.headers.get(ADMIN_HEADER, "").encode(),
                                              sup.admin_secret.encode()):
                    self._reply(403, {"message": "admin secret required"})
                    return
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    status, answer = sup.dispatch(method, self.path, body)
                except ValueError as exc:
                    status, answer = 400, {"message": str(exc)}
                except Exception as exc:
                    log.exception("control %s %s failed", method, self.path)
                    status, answer = 500, {"message": f"{type(exc).__name__}: {exc}"}
                self._reply(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.control = LoopbackServer(Handler, "control").start()

    # -- state files --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        assert self.control is not None
        return {
            "ready": True,
            "pid": os.getpid(),
            "dir": str(self.dir),
            "started_at": dt.datetime.fromtimestamp(self.started_at, dt.UTC).isoformat(),
            "ready_seconds": round(time.time() - self.started_at, 3),
            "timings": self.timings,
            "ttl_seconds": self.ttl,
            "id_seed": self.id_seed,
            "api_url": self.twin.url,
            "control_url": self.control.url,
            "admin_secret": self.admin_secret,
            "token": self.token,
            "readonly_token": self.readonly_token,
            "spaces": {"endpoint_url": self.spaces.endpoint_url, "access_key": self.spaces_key,
                       "secret_key": self.spaces_secret},
            "prometheus_url": self.prom.url if self.prom else None,
            "pushgateway_url": self.pushgateway.url if self.pushgateway else None,
            "exporter_url": self.exporter.url if self.exporter else None,
            "ca_cert": str(self.ca.cert_path),
            "cdn": {ep_id: proxy.url for ep_id, proxy in self.cdn.items()},
            "apps": {name: app.url for name, app in self.apps.apps.items()},
            "apps_tls": self.apps.tls_urls(),  # the same servers over HTTPS (sandbox CA, HSTS; the tls fault)
            "dns": {"nameservers": [self.dns.address]} if self.dns else None,
            "notes": self.notes,
        }

    def _write_files(self) -> None:
        state = self.state()
        env = {
            "DIGITALOCEAN_API_URL": state["api_url"],
            "DIGITALOCEAN_ACCESS_TOKEN": self.token,
            "DOOPS_CONFIG": str(self.dir / CONFIG_FILE),
            "AWS_ENDPOINT_URL_S3": self.spaces.endpoint_url,
            "SPACES_ACCESS_KEY_ID": self.spaces_key,
            "SPACES_SECRET_ACCESS_KEY": self.spaces_secret,
            "DOOPS_SANDBOX_DIR": str(self.dir),
            "DOOPS_CA_FILE": str(self.ca.cert_path),  # the CA of every TLS server of the sandbox
        }
        if self.prom:
            env["PROMETHEUS_URL"] = self.prom.url
        if self.pushgateway:
            env["DOOPS_PUSHGATEWAY_URL"] = self.pushgateway.url
        lines = ["# doops sandbox: source this file (or eval \"$(doops sandbox env)\")"]
        lines += [f"export {k}='{v}'" for k, v in env.items()]
        _write_private(self.dir / ENV_FILE, "\n".join(lines) + "\n")
        _write_private(self.dir / CONFIG_FILE, self._config_yaml(state))
        _write_private(self.dir / STATE_FILE, json.dumps(state, indent=2))

    def _config_yaml(self, state: dict[str, Any]) -> str:
        import yaml

        origins = {ep_id: str(self.world.cdn_endpoints[ep_id]["origin"]) for ep_id in state["cdn"]}
        cfg = sandbox_config(state, origins)
        return "# doops config for the sandbox in " + str(self.dir) + "\n" + yaml.safe_dump(cfg, sort_keys=False)

    # -- control ------------------------------------------------------------------------------------

    def dispatch(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and path == "/status":
            return 200, {"components": self.components(), "faults": self.fault_list()}
        if method == "POST" and path == "/fault":
            return 200, self.apply_fault(body)
        if method == "POST" and path == "/shutdown":
            self.stop_event.set()
            return 200, {"stopping": True}
        return 404, {"message": f"no control route {method} {path}"}

    def fault_list(self) -> list[dict[str, Any]]:
        faults = [f.to_dict() for f in self.world.faults.list()]
        for name, app in self.apps.apps.items():
            faults += [{"kind": "app-unhealthy", "app": name, "component": comp} for comp in app.toggled_unhealthy()]
            if (tls := app.tls_fault()) is not None:
                faults.append(tls)
        if self.spaces.replicator is not None and self.spaces.replicator.paused:
            lag = self.spaces.replicator.replication_lag()
            overdue = lag.pending_copies if (lag.oldest_pending_seconds or 0) > lag.delay_seconds else 0
            faults.append({"kind": "spaces-replication", "state": "paused", "overdue": overdue})
        for name, srv in self.fleet.servers.items():
            if srv.state == "killed":
                faults.append({"kind": "db-stop", "server": name})
        servers = self.fleet.servers
        faults += [{"kind": "db-lag", "server": n} for n in sorted(self._paused) if n in servers]  # not deleted
        return faults

    def apply_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault from its JSON form; ValueError (a 400) names what is wrong."""
        spec = faults_spec.from_wire(body)
        return self._fault_handlers[type(spec)](spec)

    def _twin_fault(self, spec: faults_spec.FaultSpec) -> dict[str, Any]:
        """Latency, HTTP errors and throttling are the API twin's own."""
        return {"applied": self.world.faults.add_spec(spec).to_dict()}

    def _db_stop(self, spec: faults_spec.DbStop) -> dict[str, Any]:
        try:
            server = self.fleet.primary(spec.cluster)
        except KeyError:
            raise ValueError(f"unknown database cluster {spec.cluster!r}; known: {self._cluster_names()}") from None
        self.fleet.kill(server.name)
        return {"applied": {**spec.to_wire(), "server": server.name}}

    def _db_lag(self, spec: faults_spec.DbLag) -> dict[str, Any]:
        replica = spec.replica
        if replica not in self.fleet.servers or self.fleet.servers[replica].role not in ("standby", "replica"):
            standbys = [n for n, s in self.fleet.servers.items() if s.role in ("standby", "replica")]
            raise ValueError(f"unknown replica {replica!r}; known: {', '.join(standbys)}")
        self.fleet.pause_replay(replica)
        self._paused = self._paused | {replica}
        return {"applied": spec.to_wire()}

    def _app_unhealthy(self, spec: faults_spec.AppUnhealthy) -> dict[str, Any]:
        """The app's live server fails its health check; API health and Uptime follow what it answers."""
        if spec.app not in self.apps:
            raise ValueError(f"unknown app {spec.app!r}; known: {', '.join(self.apps.apps)}")
        comps = self.apps.apps[spec.app].component_health()
        if spec.component is not None and spec.component not in comps:
            raise ValueError(f"app {spec.app} has no component {spec.component!r}; known: {', '.join(comps)}")
        self.apps.apps[spec.app].set_unhealthy(spec.component, True)
        return {"applied": spec.to_wire()}

    def _bad_release(self, spec: faults_spec.BadRelease) -> dict[str, Any]:
        """The twin marks the app's next deployment; the live server asks it whether its release is broken."""
        if self.world.find_app_by_name(spec.app) is None:
            known = ", ".join(sorted(a.name for a in self.world.apps.values()))
            raise ValueError(f"unknown app {spec.app!r}; known: {known}")
        return self._twin_fault(spec)

    def _tls_fault(self, spec: faults_spec.Tls) -> dict[str, Any]:
        """The app's HTTPS port offers what the spec says to new connections (replacing an earlier tls fault)."""
        from doops.sandbox.apps import TlsSettings

        server = self.apps.apps.get(spec.app)
        if server is None or server.tls_url is None:
            known = ", ".join(n for n, a in self.apps.apps.items() if a.tls_url)
            raise ValueError(f"unknown app {spec.app!r}; known: {known}")
        not_after = server.set_tls(TlsSettings(spec.max_version or "1.3", spec.expires_in, spec.hsts))
        return {"applied": {**spec.to_wire(), "url": server.tls_url,
                            "not_after": not_after.isoformat() if not_after else None}}

    def _spaces_replication(self, spec: faults_spec.SpacesReplication) -> dict[str, Any]:
        if spec.action == "pause":
            self.spaces.replicator.pause()
        else:
            self.spaces.replicator.resume()
        return {"applied": spec.to_wire()}

    def _clear_faults(self, spec: faults_spec.Clear) -> dict[str, Any]:
        from doops.sandbox.apps import TlsSettings

        self.world.faults.clear()
        self.world.reset_limits()
        for app in self.apps.apps.values():
            app.set_unhealthy(None, False)
            if app.tls_fault() is not None:
                app.set_tls(TlsSettings())  # the defaults: TLS 1.3, the normal certificate, HSTS
        if self.spaces.replicator is not None:
            self.spaces.replicator.resume()
        for name in sorted(self._paused):
            with contextlib.suppress(Exception):
                self.fleet.resume_replay(name)
        self._paused = set()
        return {"applied": spec.to_wire(), "note": "a stopped database server stays stopped"}

    def _cluster_names(self) -> str:
        return ", ".join(sorted({s.cluster for s in self.fleet.servers.values()}))

    def components(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"name": "supervisor", "kind": "process", "pid": os.getpid(),
             "port": self.control.port if self.control else None, "healthy": True},
            {"name": "api-twin", "kind": "http", "pid": os.getpid(), "port": self.twin.port,
             "healthy": _port_open(self.twin.port)},
        ]
        for name, srv in sorted(self.fleet.servers.items()):
            out.append({"name": f"postgres:{name}", "kind": f"postgres {srv.role}", "pid": srv.pid,
                        "port": srv.port, "healthy": srv.state == "running" and _port_open(srv.port),
                        "region": srv.region})
        for name, bouncer in sorted(self.bouncers.items()):
            out.append({"name": f"pgbouncer:{name}", "kind": "pgbouncer", "pid": bouncer.pid, "port": bouncer.port,
                        "healthy": bouncer.running and _port_open(bouncer.port)})
        for name, cache in sorted(self.caches.items()):
            out.append({"name": f"cache:{name}", "kind": f"{cache.engine} (redis-server {cache.version})",
                        "pid": cache.pid, "port": cache.port, "healthy": cache.running and _port_open(cache.port)})
        for name, endpoint in sorted((self.metrics.running() if self.metrics else {}).items()):
            out.append({"name": f"db-metrics:{name}", "kind": "https", "pid": os.getpid(), "port": endpoint.port,
                        "healthy": _port_open(endpoint.port)})
        s3_port = int(self.spaces.endpoint_url.rsplit(":", 1)[1])
        out.append({"name": "spaces", "kind": "s3", "pid": os.getpid(), "port": s3_port,
                    "healthy": _port_open(s3_port)})
        for ep_id, proxy in self.cdn.items():
            port = int(proxy.url.rsplit(":", 1)[1])
            out.append({"name": f"cdn:{ep_id[:8]}", "kind": "cdn proxy", "pid": os.getpid(), "port": port,
                        "healthy": _port_open(port)})
        for name, app in sorted(self.apps.apps.items()):
            port = int(app.url.rsplit(":", 1)[1])
            health = app.component_health()
            out.append({"name": f"app:{name}", "kind": "app", "pid": os.getpid(), "port": port,
                        "healthy": _port_open(port) and all(health.values())})
        if self.dns:
            out.append({"name": "dns", "kind": "dns (udp, tcp)", "pid": os.getpid(), "port": self.dns.port,
                        "healthy": self.dns.answers()})
        if self.prom:
            port = int(self.prom.url.rsplit(":", 1)[1])
            out.append({"name": "prometheus", "kind": "prometheus", "pid": self.prom.pid, "port": port,
                        "healthy": _port_open(port)})
        if self.pushgateway:
            gw = self.pushgateway
            out.append({"name": "pushgateway", "kind": f"pushgateway {gw.version or ''}".strip(), "pid": gw.pid,
                        "port": gw.port, "healthy": gw.running and _port_open(gw.port)})
        if self.exporter:
            ex = self.exporter
            out.append({"name": "exporter", "kind": f"doops exporter {ex.url}/metrics", "pid": ex.pid,
                        "port": ex.port, "healthy": ex.running and _port_open(ex.port)})
        return out

    # -- stop ---------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        steps: list[tuple[str, Any]] = [
            ("control", lambda: self.control.stop() if self.control else None),
            ("exporter", lambda: self.exporter.stop() if self.exporter else None),
            ("dns", lambda: self.dns.stop() if self.dns else None),
            ("twin", lambda: self.twin.stop() if self.twin else None),
            ("cdn", lambda: [p.stop() for p in self.cdn.values()]),
            ("prometheus", lambda: self.prom.stop() if self.prom else None),
            ("pushgateway", lambda: self.pushgateway.stop() if self.pushgateway else None),
            ("apps", lambda: self.apps.stop() if self.apps else None),
            ("spaces", lambda: self.spaces.stop() if self.spaces else None),
            ("db-metrics", lambda: self.metrics.stop() if self.metrics else None),
            ("pgbouncer", lambda: [b.stop() for b in self.bouncers.values()]),
            ("cache", lambda: [c.stop() for c in self.caches.values()]),
            ("postgres", lambda: self.fleet.close() if self.fleet else None),
        ]
        for name, fn in steps:
            try:
                fn()
            except Exception as exc:  # keep stopping the rest
                log.error("stopping %s failed: %s", name, exc)


def sandbox_config(state: dict[str, Any], cdn_origins: dict[str, str]) -> dict[str, Any]:
    """The doops config describing a sandbox (written to DIR/doops.yaml).

    Prometheus is named only when it runs (``state["prometheus_url"]``): a config naming a Prometheus that
    does not exist would make every healthy sandbox judge ``warn``.
    """
    cdn = []
    for ep_id, url in state["cdn"].items():
        origin = cdn_origins[ep_id]
        cdn.append({
            "origin": origin, "bucket": origin.split(".", 1)[0], "endpoint_url": url,
            "sample_paths": ["static/app.js", "api/courses.json"],
            "cache_policy": [{"prefix": "static/", "max_age": "365d"}, {"prefix": "api/", "max_age": "5m"}],
        })
    cfg: dict[str, Any] = {
        "api_url": state["api_url"],
        "objectives": {"compute_rto": "5m", "database_rto": "2m", "storage_rpo": "60s", "dns_rto": "1m"},
        "databases": {
            "primary": DB_CLUSTER,
            # no sslmode: the default (auto) connects with verify-full against the CA the API serves
            "clusters": [{"name": DB_CLUSTER, "database": "learnhub", "user": "doadmin",
                          "heartbeat_table": "public.doops_heartbeat",
                          "replicas": ["learnhub-db-ams3"]}],
            "caches": [{"name": "learnhub-cache", "eviction_policy": "allkeys_lru"}],
        },
        "functions": [{"namespace": "learnhub-jobs"}],
        "spaces": {
            "endpoint_url": state["spaces"]["endpoint_url"],
            "access_key_env": "SPACES_ACCESS_KEY_ID", "secret_key_env": "SPACES_SECRET_ACCESS_KEY",
            "buckets": [{"name": "learnhub-media", "region": "nyc3", "replica": "learnhub-media-ams3",
                         "replica_region": "ams3", "replication_allowance": "5s",
                         "lifecycle_prefixes": ["uploads/"]}],
        },
        "cdn": cdn,
    }
    if state.get("dns"):
        # the sandbox's authoritative server; the api record fronts learnhub-api (standby: learnhub-api-ams3)
        cfg["dns"] = {"nameservers": list(state["dns"]["nameservers"]),
                      "failover_records": [{"domain": "learnhub.example", "name": "api", "type": "CNAME",
                                            "app": "learnhub-api"}]}
    if state.get("apps_tls"):
        # the live URLs are plain HTTP on loopback; TLS is served on ports of its own, signed by the sandbox CA
        cfg["tls"] = {"ca_file": state["ca_cert"], "urls": dict(state["apps_tls"])}
    if state.get("pushgateway_url"):  # named only when it runs, as Prometheus is
        cfg["drills"] = {"pushgateway_url": state["pushgateway_url"]}
    if state.get("prometheus_url"):
        cfg["prometheus"] = {"url_env": "PROMETHEUS_URL", "slo_queries": [
            {"name": "apps-scraped", "query": 'min(up{job=~"learnhub-.*"})', "min": 1},
        ]}
    return cfg


def _scenario_database(scenario: Any, name: str) -> dict[str, Any]:
    """The scenario's entry for a database cluster ({} when a scenario leaves it out)."""
    return next((d for d in scenario.data.get("databases") or [] if d.get("name") == name), {})


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="doops-sandbox-supervisor")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--scenario")
    parser.add_argument("--latency", type=int, default=0)
    parser.add_argument("--ttl", type=float, default=4 * 3600)
    args = parser.parse_args(argv)
    d = Path(args.dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    from doops.masking import MaskingFilter

    for h in logging.getLogger().handlers:
        h.addFilter(MaskingFilter())
    pidfiles.write_supervisor(d)
    sup = Supervisor(d, args.scenario, args.latency, args.ttl)
    from doops import masking

    for s in (sup.token, sup.readonly_token, sup.admin_secret, sup.db_password, sup.spaces_secret):
        masking.register(s)

    def on_signal(signum: int, frame: Any) -> None:
        sup.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        sup.start()
        log.info("sandbox ready in %.2fs: %s", time.time() - sup.started_at, sup.timings)
        sup.stop_event.wait(timeout=args.ttl if args.ttl > 0 else None)
        if not sup.stop_event.is_set():
            log.warning("time to live of %.0fs reached: stopping the sandbox", args.ttl)
    except Exception as exc:
        log.exception("sandbox failed to start")
        with contextlib.suppress(OSError):
            _write_private(d / STATE_FILE, json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}))
        code = 1
    finally:
        sup.shutdown()
        with contextlib.suppress(FileNotFoundError):
            (d / pidfiles.SUPERVISOR_PID_FILE).unlink()
        if code == 0:
            with contextlib.suppress(FileNotFoundError):
                (d / STATE_FILE).unlink()
        log.info("sandbox stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
