"""App Platform twin: one real HTTP server per app (its live URL) with health toggles and /metrics.

Why: `doops` checks that live URLs answer, that health endpoints pass and that Prometheus scrapes the
services; drills flip components unhealthy. Endpoints:
- ``/`` 200 text; ``/healthz`` 200 ``{"status":"ok"}`` or 503 ``{"status":"unhealthy","unhealthy":[...]}``;
  ``/healthz/<component>`` the same for one component;
- ``/metrics`` Prometheus text format 0.0.4: ``http_requests_total`` (counter),
  ``http_request_duration_seconds`` (histogram), ``learnhub_component_up`` /
  ``learnhub_component_replicas`` (gauges per component),
  ``learnhub_app_healthy``, ``process_start_time_seconds``. (``up`` itself is Prometheus' own series, so
  the per-component liveness gauge is ``learnhub_component_up``.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from doops.sandbox.loopback import LoopbackServer

log = logging.getLogger(__name__)

DEFAULT_APPS: dict[str, list[str]] = {"learnhub-api": ["api", "ws"], "learnhub-web": ["web"]}
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_KNOWN_PATHS = ("/", "/healthz", "/metrics")


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kv.items()) + "}"


class _Server(ThreadingHTTPServer):
    app: AppServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "doops-app-twin"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        t0 = time.perf_counter()
        path = urlsplit(self.path).path
        status, ctype, body = self.server.app.respond(path)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.server.app.observe(self.command, path, status, time.perf_counter() - t0)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("app %s: " + format, self.server.app.name, *args)


class AppServer:
    """One app's live URL on 127.0.0.1 with per-component health and Prometheus metrics."""

    def __init__(self, name: str, components: list[str], replicas: dict[str, int] | None = None) -> None:
        if not components:
            raise ValueError("an app needs at least one component")
        self.name = name
        self.components = list(components)
        self._lock = threading.Lock()
        self._healthy = dict.fromkeys(self.components, True)
        self._replicas = {c: (replicas or {}).get(c, 1) for c in self.components}
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._hist: dict[str, list[float]] = {}  # path -> per-bucket counts + [sum, count] at the end
        self._started_at = time.time()
        self._server = LoopbackServer(_Handler, f"app-{name}", app=self)
        self.start_seconds: float | None = None

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
        """Stop serving and close the port."""
        self._server.stop()

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
        """{component: healthy}."""
        with self._lock:
            return dict(self._healthy)

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

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """Route one request: (status, content type, body)."""
        if path == "/":
            return 200, "text/plain; charset=utf-8", f"{self.name}: ok\n".encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.render_metrics().encode()
        if path == "/healthz" or path.startswith("/healthz/"):
            health = self.component_health()
            wanted = path[len("/healthz/"):] if path.startswith("/healthz/") else None
            if wanted is not None:
                if wanted not in health:
                    return 404, "application/json", b'{"status":"unknown component"}'
                health = {wanted: health[wanted]}
            bad = sorted(c for c, ok in health.items() if not ok)
            if not bad:
                return 200, "application/json", b'{"status":"ok"}'
            return 503, "application/json", json.dumps({"status": "unhealthy", "unhealthy": bad}).encode()
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        """Count a request and its duration."""
        label = path if path in _KNOWN_PATHS or path.startswith("/healthz/") else "other"
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
                    for c, ok in self._healthy.items()]
            out += ["# HELP learnhub_component_replicas Ready replicas per component.",
                    "# TYPE learnhub_component_replicas gauge"]
            out += [f"learnhub_component_replicas{_labels(app=app, component=c)} {n}"
                    for c, n in self._replicas.items()]
            out += ["# HELP learnhub_app_healthy 1 if every component is healthy.",
                    "# TYPE learnhub_app_healthy gauge",
                    f"learnhub_app_healthy{_labels(app=app)} {int(all(self._healthy.values()))}"]
        out += ["# HELP process_start_time_seconds Start time of the app server since the epoch.",
                "# TYPE process_start_time_seconds gauge",
                f"process_start_time_seconds {self._started_at:.3f}"]
        return "\n".join(out) + "\n"


class AppFleet:
    """Several AppServers (the default scenario's apps); one place to start, find and stop them."""

    def __init__(self) -> None:
        self.apps: dict[str, AppServer] = {}

    def add(self, name: str, components: list[str], replicas: dict[str, int] | None = None) -> AppServer:
        """Create and start an app server."""
        if name in self.apps:
            raise ValueError(f"app {name} already running")
        server = AppServer(name, components, replicas).start()
        self.apps[name] = server
        return server

    def start_default(self) -> AppFleet:
        """Start the default scenario's apps (learnhub-api: api, ws; learnhub-web: web)."""
        for name, components in DEFAULT_APPS.items():
            self.add(name, components)
        return self

    def __getitem__(self, name: str) -> AppServer:
        return self.apps[name]

    def __contains__(self, name: object) -> bool:
        return name in self.apps

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
