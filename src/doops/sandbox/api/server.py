"""The HTTP side of the DigitalOcean API twin: auth, rate limits, faults, request log, admin routes.

It only wires: the routes come from the ``routes_*`` modules (built on :mod:`~doops.sandbox.api.routing`),
the state from :class:`~doops.sandbox.api.state.World`.

Every answer is JSON and carries ``ratelimit-limit``/``ratelimit-remaining``/``ratelimit-reset`` and
``x-request-id``; every error uses DigitalOcean's body ``{"id", "message", "request_id"}``.
Admin routes live under ``/_twin/`` and need the ``X-Twin-Admin-Secret`` header, not a DO token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from doops.sandbox.api import routes_apps, routes_databases, routes_misc
from doops.sandbox.api.errors import RATE_LIMIT_MESSAGE, UNAUTHORIZED_MESSAGE, ApiError, error_id
from doops.sandbox.api.limits import RateDecision
from doops.sandbox.api.resources import RequestRecord
from doops.sandbox.api.routing import Context, Response, Router
from doops.sandbox.api.state import World
from doops.sandbox.loopback import LoopbackServer

log = logging.getLogger(__name__)

ADMIN_HEADER = "X-Twin-Admin-Secret"
FORBIDDEN_MESSAGE = "You do not have access for the attempted action."
ADMIN_PREFIX = "/_twin"
def build_router() -> Router:
    """The router with every DigitalOcean route the twin serves."""
    router = Router()
    for module in (routes_databases, routes_apps, routes_misc):
        module.register(router)
    return router


def _token_labels(tokens: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
    """token -> label, from either label->token mapping or a plain list of tokens."""
    if isinstance(tokens, Mapping):
        return {str(tok): str(label) for label, tok in tokens.items()}
    return {tok: "token-" + hashlib.sha256(tok.encode()).hexdigest()[:8] for tok in tokens}


class TwinServer:
    """The DigitalOcean API twin on 127.0.0.1.

    ``tokens`` maps label -> accepted bearer token (or is a list of tokens); default: the scenario's.
    ``admin_secret`` guards ``/_twin/*`` (random when None; read it back from ``.admin_secret``).
    ``request_log_path`` additionally appends each request log entry as a JSON line.
    """

    def __init__(
        self,
        world: World,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Mapping[str, str] | Iterable[str] | None = None,
        admin_secret: str | None = None,
        request_log_path: str | Path | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the twin only binds loopback")  # checked here too: before any state is built
        self.world = world
        self.host = host
        self.port = port
        self.tokens = _token_labels(tokens if tokens is not None else world.scenario.tokens)
        if not self.tokens:
            raise ValueError("no API token configured")
        self.admin_secret = admin_secret or secrets.token_urlsafe(24)
        self.request_log_path = Path(request_log_path) if request_log_path else None
        self.router = build_router()
        self._server: LoopbackServer | None = None
        self._log_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:PORT``); valid after ``start()``."""
        if self._server is None or not self._server.running:
            raise RuntimeError("twin not started")
        return self._server.url

    def start(self) -> TwinServer:
        """Bind and serve in a daemon thread; returns self."""
        handler = type("TwinHandler", (_Handler,), {"twin": self})
        self._server = LoopbackServer(handler, "do-twin", self.host, self.port, poll_interval=0.05).start()
        self.port = self._server.port
        log.info("DigitalOcean API twin listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> TwinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request processing (called from handler threads) --------------------------------------------

    def _log_request(self, rec: RequestRecord) -> None:
        self.world.record(rec)
        if self.request_log_path is not None:
            with self._log_lock, self.request_log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec.to_dict()) + "\n")

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes) -> Response:
        """Process one request into a Response (no I/O besides the backends)."""
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            resp = self._admin(method, path, query, headers, raw_body)
            resp.headers.setdefault("x-request-id", request_id)
            return resp
        label: str | None = None
        decision: RateDecision | None = None
        try:
            auth = headers.get("authorization") or ""
            scheme, _, token = auth.partition(" ")
            label = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if label is None:
                decision = self.world.rate_limiter.peek("anonymous")
                raise ApiError(401, UNAUTHORIZED_MESSAGE, "unauthorized")
            decision = self.world.rate_limiter.hit(label, self.world.faults.per_minute())
            if not decision.allowed:
                raise ApiError(429, RATE_LIMIT_MESSAGE, "too_many_requests", decision.retry_after)
            if method not in ("GET", "HEAD") and label.startswith("readonly"):
                # A read-scoped token (label "readonly*"), as DigitalOcean's read-only tokens: no writes.
                raise ApiError(403, FORBIDDEN_MESSAGE, "forbidden")
            delay = self.world.faults.latency_ms(method, path)
            if delay:
                time.sleep(delay / 1000.0)
            injected = self.world.faults.error_status(method, path)
            if injected is not None:
                msg = RATE_LIMIT_MESSAGE if injected == 429 else f"injected fault: HTTP {injected}"
                raise ApiError(injected, msg, error_id(injected), 1 if injected == 429 else None)
            route, params = self.router.match(method, path)
            body: Any = None
            if raw_body.strip():
                try:
                    body = json.loads(raw_body)
                except ValueError as exc:
                    raise ApiError.bad_request("request body is not valid JSON") from exc
            host = headers.get("host") or f"{self.host}:{self.port}"
            ctx = Context(self.world, method, path, params, query, body, f"http://{host}", label)
            with self.world.lock:
                resp = route.handler(ctx)
        except ApiError as err:
            resp = Response(err.status, {"id": err.error, "message": err.message, "request_id": request_id})
            if err.retry_after is not None:
                resp.headers["retry-after"] = str(err.retry_after)
        except Exception:
            log.exception("twin handler failed for %s %s", method, path)
            resp = Response(500, {"id": "server_error", "message": "Server Error", "request_id": request_id})
        if decision is None:
            decision = self.world.rate_limiter.peek(label or "anonymous")
        for k, v in decision.headers().items():
            if k != "retry-after":
                resp.headers.setdefault(k, v)
        resp.headers["x-request-id"] = request_id
        self._log_request(RequestRecord(
            time=datetime.now(UTC).isoformat(timespec="milliseconds"), method=method, path=path, query=query,
            status=resp.status, token=label, request_id=request_id,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
        ))
        return resp

    def _admin(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
               raw_body: bytes) -> Response:
        """``/_twin/*``: request log, state, faults (admin secret required)."""
        given = headers.get(ADMIN_HEADER.lower()) or ""
        if not secrets.compare_digest(given.encode(), self.admin_secret.encode()):
            return Response(403, {"id": "forbidden", "message": f"missing or wrong {ADMIN_HEADER} header"})
        world = self.world
        sub = path[len(ADMIN_PREFIX):]
        try:
            body = json.loads(raw_body) if raw_body.strip() else {}
        except ValueError:
            return Response(400, {"id": "bad_request", "message": "body is not valid JSON"})
        if sub == "/requests" and method == "GET":
            since = int((query.get("since") or ["0"])[0])
            return Response(200, {"requests": world.request_log()[since:]})
        if sub == "/requests" and method == "DELETE":
            with world.lock:
                world.requests.clear()
            return Response(204)
        if sub == "/state" and method == "GET":
            return Response(200, world.snapshot())
        if sub == "/faults" and method == "GET":
            return Response(200, {"faults": [f.to_dict() for f in world.faults.list()]})
        if sub == "/faults" and method == "POST":
            try:
                fault = world.faults.add(body if isinstance(body, dict) else {})
            except (ValueError, TypeError) as exc:
                return Response(400, {"id": "bad_request", "message": str(exc)})
            return Response(201, {"fault": fault.to_dict()})
        if sub == "/faults" and method == "DELETE":
            world.faults.clear()
            world.reset_limits()
            return Response(204)
        if sub.startswith("/faults/") and method == "DELETE":
            if world.faults.remove(sub[len("/faults/"):]):
                return Response(204)
            return Response(404, {"id": "not_found", "message": "no such fault"})
        if sub == "/ratelimit" and method == "DELETE":
            world.reset_limits()
            return Response(204)
        return Response(404, {"id": "not_found", "message": f"no admin route {method} {path}"})


class _Handler(BaseHTTPRequestHandler):
    """Bridges http.server to ``TwinServer.handle``."""

    twin: TwinServer
    protocol_version = "HTTP/1.1"
    server_version = "doops-do-twin/1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        resp = self.twin.handle(self.command, self.path, hdrs, raw)
        payload = b"" if resp.body is None or resp.status == 204 else json.dumps(resp.body).encode()
        self.send_response(resp.status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
