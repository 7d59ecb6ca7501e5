"""App Platform twin: one real HTTP server per app (its live URL) with health toggles and /metrics.

Why: `doops` checks that live URLs answer, that health endpoints pass and that Prometheus scrapes the
services; Uptime checks probe the live URL; drills flip components unhealthy. One server plays both the app's
ingress (its live URL) and its components' containers. Endpoints:
- ``/healthz`` 200 ``{"status":"ok"}`` or 503 ``{"status":"unhealthy","unhealthy":[...]}``;
  ``/healthz/<component>`` the same for one component (doops' default health path);
- each component's health check path (the app spec's ``health_check.http_path``, ``/health`` by default),
  as App Platform and a load balancer probe an instance: the health of the components that declare it;
- the ingress: a path under a component's route (``/api/...``) goes to that component with the route prefix
  stripped (App Platform's default), so ``/api/health`` is the ``api`` component's ``/health``. A component
  answers 503 on every path while it is unhealthy (no ready instance); its health path answers its health, its
  ``/`` 200, any other path 404;
- ``/`` when no component is routed there: 200 text while every component is healthy, else 503;
- a bad release (``release_broken``, set by the supervisor to ask the API twin whether the app's active
  deployment runs one) makes every component unhealthy, as a release that fails its health checks;
- ``/metrics`` Prometheus text format 0.0.4: ``http_requests_total`` (counter),
  ``http_request_duration_seconds`` (histogram), ``learnhub_component_up`` /
  ``learnhub_component_replicas`` (gauges per component),
  ``learnhub_app_healthy``, ``process_start_time_seconds``. (``up`` itself is Prometheus' own series, so
  the per-component liveness gauge is ``learnhub_component_up``.)

HTTPS (:meth:`AppServer.enable_tls`): a second port serves the same answers over TLS with a certificate signed
by the sandbox CA for 127.0.0.1, localhost and the app's ingress host name; TLS 1.2 and 1.3 offered, every
HTTPS answer carries ``Strict-Transport-Security``. The plain HTTP live URL stays as it is. The tls fault
(:meth:`AppServer.set_tls`) caps the version at 1.2, swaps in a certificate about to expire, or drops HSTS.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from doops.sandbox.loopback import KeepAliveHandler, LoopbackServer

if TYPE_CHECKING:
    from doops.sandbox.tls import SandboxCA

log = logging.getLogger(__name__)

DEFAULT_HEALTH_PATH = "/health"  # App Platform's health check path when the spec names none
HSTS = "max-age=31536000"  # the Strict-Transport-Security value of every HTTPS answer (one year)
TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class TlsSettings:
    """What an app's HTTPS port offers: the highest TLS version, the certificate's lifetime (None: the normal
    825-day one; else seconds from when it was set) and whether answers carry HSTS. The default is healthy."""

    max_version: str = "1.3"
    expires_in: float | None = None
    hsts: bool = True

    def __post_init__(self) -> None:
        if self.max_version not in TLS_VERSIONS:
            raise ValueError(f"max_version must be one of {', '.join(TLS_VERSIONS)}")
        if self.expires_in is not None and self.expires_in <= 0:
            raise ValueError("expires_in must be > 0 seconds")

    @property
    def is_default(self) -> bool:
        return self == TlsSettings()


@dataclass(frozen=True)
class Component:
    """One component as the live server plays it: where the ingress routes it and what its health check asks.

    ``route`` is the ingress path prefix (``/api``; ``/`` for the root); ``health_path`` the path App Platform
    and load balancers probe on the instance (None: no health check, as for static sites and workers).
    """

    name: str
    route: str | None = None
    health_path: str | None = DEFAULT_HEALTH_PATH

    @classmethod
    def named(cls, name: str) -> Component:
        """A component known only by name: routed at ``/<name>``, health checked on ``/health``."""
        return cls(name, "/" + name, DEFAULT_HEALTH_PATH)


def components_from_spec(spec: Mapping[str, Any]) -> list[Component]:
    """The components of a scenario's app entry (``services`` with ``route`` and ``health_path``,
    ``static_sites`` with ``route``, ``workers``), as :func:`doops.sandbox.api.state_build` puts them in the
    app spec: a service's route defaults to ``/<name>`` and its health path to ``/health``."""
    out = [Component(s["name"], s.get("route", "/" + s["name"]), s.get("health_path", DEFAULT_HEALTH_PATH))
           for s in spec.get("services") or []]
    out += [Component(s["name"], s.get("route", "/" + s["name"]), None) for s in spec.get("static_sites") or []]
    out += [Component(s["name"], None, None) for s in spec.get("workers") or []]
    return out


# The default scenario's apps (default_scenario.yaml), as the supervisor and tests start them.
DEFAULT_APPS: dict[str, list[Component]] = {
    "learnhub-api": [Component("api", "/api"), Component("ws", "/ws")],
    "learnhub-web": [Component("web", "/", None)],
}
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


def _under(path: str, route: str) -> str | None:
    """The path a component sees for ``path`` under its ``route`` (prefix stripped), or None if not under it."""
    prefix = route.rstrip("/")
    if not prefix:
        return path
    if path == prefix:
        return "/"
    if path.startswith(prefix + "/"):
        return path[len(prefix):]
    return None


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kv.items()) + "}"


class _Server(ThreadingHTTPServer):
    app: AppServer
    tls: bool = False  # the HTTPS port (answers carry HSTS unless the tls fault dropped it)


class _Handler(KeepAliveHandler):
    server: _Server
    server_version = "doops-app-twin"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        t0 = time.perf_counter()
        self.drain_body()
        path = urlsplit(self.path).path
        status, ctype, body = self.server.app.respond(path)
        headers = {"Content-Type": ctype}
        if getattr(self.server, "tls", False) and self.server.app.tls_settings().hsts:
            headers["Strict-Transport-Security"] = HSTS
        self.reply(status, headers, body, head=head)
        self.server.app.observe(self.command, path, status, time.perf_counter() - t0)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("app %s: " + format, self.server.app.name, *args)


class AppServer:
    """One app's live URL on 127.0.0.1 with per-component health and Prometheus metrics."""

    def __init__(self, name: str, components: Sequence[str | Component],
                 replicas: dict[str, int] | None = None) -> None:
        if not components:
            raise ValueError("an app needs at least one component")
        self.name = name
        self.layout = [c if isinstance(c, Component) else Component.named(c) for c in components]
        self.components = [c.name for c in self.layout]
        if len(set(self.components)) != len(self.components):
            raise ValueError(f"app {name} names a component twice: {self.components}")
        # longest route first, so /api/v2 wins over /api and / comes last
        self._routes = sorted((c for c in self.layout if c.route is not None),
                              key=lambda c: len(str(c.route).rstrip("/")), reverse=True)
        self._health_paths = {c.health_path for c in self.layout if c.health_path}
        self._known_paths = {"/", "/healthz", "/metrics", *self._health_paths, *self.health_urls().values()}
        self._lock = threading.Lock()
        self._healthy = dict.fromkeys(self.components, True)
        self._replicas = {c: (replicas or {}).get(c, 1) for c in self.components}
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._hist: dict[str, list[float]] = {}  # path -> per-bucket counts + [sum, count] at the end
        self._started_at = time.time()
        self._server = LoopbackServer(_Handler, f"app-{name}", app=self)
        self.start_seconds: float | None = None
        # Whether the release the app runs is broken (the API twin's bad-release fault); asked on each request,
        # outside this server's lock.
        self.release_broken: Callable[[], bool] | None = None
        self._tls: LoopbackServer | None = None  # the HTTPS port, once enable_tls ran
        self._tls_ca: SandboxCA | None = None
        self._tls_dir: Path | None = None
        self._tls_hosts: tuple[str, ...] = ()
        self._tls_settings = TlsSettings()
        self._tls_default_cert: tuple[Path, Path] | None = None
        self.tls_not_after: dt.datetime | None = None  # the certificate the HTTPS port serves now

    @property
    def url(self) -> str:
        """The live URL (http://127.0.0.1:<port>)."""
        return f"http://{self.address}"

    @property
    def address(self) -> str:
        """host:port, as a Prometheus scrape target."""
        if not self._server.running:
            raise RuntimeError(f"app {self.name} not started")
        return f"{self._server.host}:{self._server.port}"

    def start(self) -> AppServer:
        """Bind a free loopback port and serve in a thread. Returns self."""
        t0 = time.monotonic()
        self._server.start()
        self._started_at = time.time()
        self.start_seconds = time.monotonic() - t0
        log.info("app %s live on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the port (and the HTTPS one)."""
        self._server.stop()
        if self._tls is not None:
            self._tls.stop()

    # -- HTTPS ----------------------------------------------------------------------------------------

    def enable_tls(self, ca: SandboxCA, directory: Path, hosts: Sequence[str] = ()) -> str:
        """Serve HTTPS on a second free loopback port with a certificate ``ca`` signs for 127.0.0.1, localhost
        and ``hosts`` (the app's ingress host name); TLS 1.2 and 1.3, HSTS. Returns the HTTPS URL."""
        if self._tls is not None:
            raise RuntimeError(f"app {self.name} already serves HTTPS")
        self._tls_ca, self._tls_dir, self._tls_hosts = ca, directory, tuple(hosts)
        directory.mkdir(parents=True, exist_ok=True)
        self._tls_default_cert = self._issue(None)
        ctx = self._tls_context(TlsSettings())
        self._tls = LoopbackServer(_Handler, f"app-{self.name}-tls", ssl_context=ctx, app=self, tls=True).start()
        log.info("app %s serves HTTPS on %s", self.name, self.tls_url)
        return str(self.tls_url)

    @property
    def tls_url(self) -> str | None:
        """https://127.0.0.1:<port>, or None before enable_tls."""
        return self._tls.url if self._tls is not None and self._tls.running else None

    def tls_settings(self) -> TlsSettings:
        with self._lock:
            return self._tls_settings

    def set_tls(self, settings: TlsSettings) -> dt.datetime | None:
        """Offer ``settings`` to new connections (open ones are closed, as a server reload does); returns the
        served certificate's expiry. A short ``expires_in`` issues a new certificate from the same CA."""
        if self._tls is None:
            raise RuntimeError(f"app {self.name} serves no HTTPS")
        ctx = self._tls_context(settings)
        with self._lock:
            self._tls_settings = settings
        self._tls.set_ssl_context(ctx)
        return self.tls_not_after

    def _issue(self, valid_for: float | None) -> tuple[Path, Path]:
        from doops.sandbox.tls import SERVER_CERT_VALIDITY

        assert self._tls_ca is not None and self._tls_dir is not None
        stem = f"app-{self.name}" + ("" if valid_for is None else "-expiring")
        issued = self._tls_ca.issue(self._tls_dir / f"{stem}.crt", self._tls_dir / f"{stem}.key",
                                    common_name=self._tls_hosts[0] if self._tls_hosts else "127.0.0.1",
                                    hosts=self._tls_hosts,
                                    valid_for=SERVER_CERT_VALIDITY if valid_for is None
                                    else dt.timedelta(seconds=valid_for))
        return issued.cert, issued.key

    def _tls_context(self, settings: TlsSettings) -> ssl.SSLContext:
        from cryptography import x509

        if settings.expires_in is not None:
            cert, key = self._issue(settings.expires_in)
        else:
            assert self._tls_default_cert is not None, "enable_tls first"
            cert, key = self._tls_default_cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = TLS_VERSIONS[settings.max_version]
        ctx.load_cert_chain(cert, key)
        self.tls_not_after = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
        return ctx

    def tls_fault(self) -> dict[str, Any] | None:
        """The tls fault in force (for the fault list), or None while the HTTPS port offers the defaults."""
        settings = self.tls_settings()
        if settings.is_default:
            return None
        out: dict[str, Any] = {"kind": "tls", "app": self.name, **asdict(settings)}
        if self.tls_not_after is not None:
            out["not_after"] = self.tls_not_after.isoformat()
        return out

    @property
    def running(self) -> bool:
        """Whether the live URL is being served."""
        return self._server.running

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_unhealthy(self, component: str | None, unhealthy: bool = True) -> None:
        """Mark one component (or all, with None) unhealthy — or healthy again with unhealthy=False."""
        with self._lock:
            targets = self.components if component is None else [component]
            for c in targets:
                if c not in self._healthy:
                    raise KeyError(f"app {self.name} has no component {c!r}")
                self._healthy[c] = not unhealthy

    def component_health(self) -> dict[str, bool]:
        """{component: healthy}: what the server answers (a broken release fails every component)."""
        broken = self.release_broken is not None and self.release_broken()
        with self._lock:
            return dict.fromkeys(self._healthy, False) if broken else dict(self._healthy)

    def toggled_unhealthy(self) -> list[str]:
        """The components an app-unhealthy fault turned off (not those a bad release fails)."""
        with self._lock:
            return [c for c, ok in self._healthy.items() if not ok]

    def set_replicas(self, component: str, count: int) -> None:
        """Set the replica gauge (the API twin mirrors autoscaling / drills into it)."""
        with self._lock:
            if component not in self._replicas:
                raise KeyError(f"app {self.name} has no component {component!r}")
            self._replicas[component] = count

    def replicas(self) -> dict[str, int]:
        """{component: ready replicas}."""
        with self._lock:
            return dict(self._replicas)

    def health_urls(self) -> dict[str, str]:
        """{component: path on the live URL that reaches its health check through the ingress}."""
        out: dict[str, str] = {}
        for c in self.layout:
            if c.route is not None and c.health_path:
                out[c.name] = str(c.route).rstrip("/") + c.health_path
        return out

    @staticmethod
    def _health(health: Mapping[str, bool]) -> tuple[int, str, bytes]:
        bad = sorted(c for c, ok in health.items() if not ok)
        if not bad:
            return 200, _JSON, b'{"status":"ok"}'
        return 503, _JSON, json.dumps({"status": "unhealthy", "unhealthy": bad}).encode()

    def _route(self, path: str) -> tuple[Component, str] | None:
        for c in self._routes:
            sub = _under(path, str(c.route))
            if sub is not None:
                return c, sub
        return None

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """Route one request: (status, content type, body). See the module docstring for the order."""
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.render_metrics().encode()
        health = self.component_health()
        if path == "/healthz" or path.startswith("/healthz/"):
            wanted = path[len("/healthz/"):] if path.startswith("/healthz/") else None
            if wanted is not None:
                if wanted not in health:
                    return 404, _JSON, b'{"status":"unknown component"}'
                health = {wanted: health[wanted]}
            return self._health(health)
        if path in self._health_paths:  # an instance's health check (App Platform, a load balancer)
            return self._health({c.name: health[c.name] for c in self.layout if c.health_path == path})
        routed = self._route(path)
        if routed is not None:
            comp, sub = routed
            if comp.health_path and sub == comp.health_path:
                return self._health({comp.name: health[comp.name]})
            if not health[comp.name]:
                return 503, _TEXT, f"{self.name}/{comp.name}: no healthy instance\n".encode()
            if sub == "/":
                return 200, _TEXT, f"{self.name}/{comp.name}: ok\n".encode()
            return 404, _TEXT, b"not found\n"
        if path == "/":
            if all(health.values()):
                return 200, _TEXT, f"{self.name}: ok\n".encode()
            return self._health(health)
        return 404, _TEXT, b"not found\n"

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count a request and its duration."""
        label = path if path in self._known_paths or path.startswith("/healthz/") else "other"
        with self._lock:
            self._requests[(method, label, str(status))] += 1
            h = self._hist.setdefault(label, [0.0] * (len(BUCKETS) + 2))
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def render_metrics(self) -> str:
        """Prometheus text exposition of the app's metrics."""
        app = self.name
        out: list[str] = []
        health = self.component_health()
        with self._lock:
            out += ["# HELP http_requests_total HTTP requests handled.", "# TYPE http_requests_total counter"]
            for (method, path, code), n in sorted(self._requests.items()):
                out.append(f"http_requests_total{_labels(app=app, method=method, path=path, code=code)} {n}")
            out += ["# HELP http_request_duration_seconds HTTP request latency.",
                    "# TYPE http_request_duration_seconds histogram"]
            bucket = "http_request_duration_seconds_bucket"
            for path, h in sorted(self._hist.items()):
                for i, le in enumerate(BUCKETS):
                    out.append(f"{bucket}{_labels(app=app, path=path, le=str(le))} {int(h[i])}")
                out.append(f"{bucket}{_labels(app=app, path=path, le='+Inf')} {int(h[-1])}")
                out.append(f"http_request_duration_seconds_sum{_labels(app=app, path=path)} {h[-2]:.6f}")
                out.append(f"http_request_duration_seconds_count{_labels(app=app, path=path)} {int(h[-1])}")
            out += ["# HELP learnhub_component_up 1 if the component passes its health check.",
                    "# TYPE learnhub_component_up gauge"]
            out += [f"learnhub_component_up{_labels(app=app, component=c)} {int(ok)}"
                    for c, ok in health.items()]
            out += ["# HELP learnhub_component_replicas Ready replicas per component.",
                    "# TYPE learnhub_component_replicas gauge"]
            out += [f"learnhub_component_replicas{_labels(app=app, component=c)} {n}"
                    for c, n in self._replicas.items()]
            out += ["# HELP learnhub_app_healthy 1 if every component is healthy.",
                    "# TYPE learnhub_app_healthy gauge",
                    f"learnhub_app_healthy{_labels(app=app)} {int(all(health.values()))}"]
        out += ["# HELP process_start_time_seconds Start time of the app server since the epoch.",
                "# TYPE process_start_time_seconds gauge",
                f"process_start_time_seconds {self._started_at:.3f}"]
        return "\n".join(out) + "\n"


def _layout(app: str, components: Iterable[str | Component]) -> list[str | Component]:
    given = list(components)
    known = {c.name: c for c in DEFAULT_APPS.get(app, [])}
    if all(isinstance(c, str) for c in given) and set(map(str, given)) == set(known):
        return [known[str(c)] for c in given]
    return given


class AppFleet:
    """Several AppServers (the default scenario's apps); one place to start, find and stop them."""

    def __init__(self) -> None:
        self.apps: dict[str, AppServer] = {}

    def add(self, name: str, components: Sequence[str | Component],
            replicas: dict[str, int] | None = None) -> AppServer:
        """Create and start an app server. Components given by name only take the default scenario's layout
        when the app is one of its apps with those components (else ``Component.named``)."""
        if name in self.apps:
            raise ValueError(f"app {name} already running")
        server = AppServer(name, _layout(name, components), replicas).start()
        self.apps[name] = server
        return server

    def add_spec(self, spec: Mapping[str, Any]) -> AppServer:
        """Create and start the server of a scenario's app entry, with its routes and health paths."""
        return self.add(str(spec["name"]), components_from_spec(spec) or [Component("web", "/", None)])

    def start_default(self) -> AppFleet:
        """Start the default scenario's apps (learnhub-api: api, ws; learnhub-web: web)."""
        for name, components in DEFAULT_APPS.items():
            self.add(name, components)
        return self

    def __getitem__(self, name: str) -> AppServer:
        return self.apps[name]

    def __contains__(self, name: object) -> bool:
        return name in self.apps

    def tls_urls(self) -> dict[str, str]:
        """{app: https URL} of the apps serving HTTPS."""
        return {name: url for name, app in self.apps.items() if (url := app.tls_url)}

    def scrape_targets(self) -> dict[str, list[str]]:
        """{job: [host:port]} for PrometheusRunner — one job per app."""
        return {name: [app.address] for name, app in self.apps.items() if app.running}

    def remove(self, name: str) -> None:
        """Stop and forget one app."""
        self.apps.pop(name).stop()

    def stop(self) -> None:
        """Stop every app."""
        for app in self.apps.values():
            app.stop()
        self.apps.clear()

    def __enter__(self) -> AppFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
