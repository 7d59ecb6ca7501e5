"""Injected faults: latency, HTTP errors, a tighter rate limit, unhealthy apps.

Set from Python (``world.faults``) or over HTTP through the admin routes (``/_twin/faults``), which the
CLI uses. A route glob matches the request path (``/v2/databases*``) or, when it contains a space, the
method and path (``PUT /v2/databases/*/replicas/*/promote``).
"""

from __future__ import annotations

import fnmatch
import random
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("latency", "http-error", "throttle", "app-unhealthy")


@dataclass
class Fault:
    """One active fault."""

    id: str
    kind: str
    route: str | None = None
    ms: int = 0
    status: int = 0
    rate: float = 1.0
    per_minute: int = 0
    app: str = ""
    component: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if not self.route:
            return True
        subject = f"{method.upper()} {path}" if " " in self.route else path
        return fnmatch.fnmatchcase(subject, self.route)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (only the fields that mean something for the kind)."""
        keep = {
            "latency": ("ms", "route"),
            "http-error": ("status", "rate", "route"),
            "throttle": ("per_minute",),
            "app-unhealthy": ("app", "component"),
        }[self.kind]
        data = asdict(self)
        return {"id": self.id, "kind": self.kind, **{k: data[k] for k in keep}}


@dataclass
class Faults:
    """The set of active faults (thread-safe)."""

    seed: int | None = None
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def latency(self, ms: int, route: str | None = None) -> Fault:
        """Delay matching answers by ``ms`` milliseconds."""
        if ms < 0:
            raise ValueError("latency must be >= 0 ms")
        return self._add(Fault(_new_id(), "latency", route=route, ms=int(ms)))

    def http_error(self, status: int, rate: float = 1.0, route: str | None = None) -> Fault:
        """Answer matching requests with ``status`` (DO error body) with probability ``rate``."""
        if not 400 <= status <= 599:
            raise ValueError("http-error status must be 4xx or 5xx")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        return self._add(Fault(_new_id(), "http-error", route=route, status=int(status), rate=float(rate)))

    def throttle(self, per_minute: int) -> Fault:
        """Lower every token's per-minute budget to ``per_minute``."""
        if per_minute < 0:
            raise ValueError("per_minute must be >= 0")
        return self._add(Fault(_new_id(), "throttle", per_minute=int(per_minute)))

    def app_unhealthy(self, app: str, component: str | None = None) -> Fault:
        """Report ``app`` (or one component) UNHEALTHY in app health and Uptime state."""
        return self._add(Fault(_new_id(), "app-unhealthy", app=app, component=component))

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a fault from its JSON form (``{"kind": ..., ...}``), as the admin route receives it."""
        kind = spec.get("kind")
        try:
            if kind == "latency":
                return self.latency(int(spec["ms"]), spec.get("route"))
            if kind == "http-error":
                return self.http_error(int(spec["status"]), float(spec.get("rate", 1.0)), spec.get("route"))
            if kind == "throttle":
                return self.throttle(int(spec["per_minute"]))
            if kind == "app-unhealthy":
                return self.app_unhealthy(str(spec["app"]), spec.get("component"))
        except KeyError as exc:
            raise ValueError(f"fault {kind}: missing {exc}") from exc
        raise ValueError(f"unknown fault kind {kind!r} (one of {', '.join(KINDS)})")

    def remove(self, fault_id: str) -> bool:
        """Remove one fault; False if unknown."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        """The active faults, oldest first."""
        with self._lock:
            return list(self._faults)

    def latency_ms(self, method: str, path: str) -> int:
        """Total injected latency for a request."""
        return sum(f.ms for f in self.list() if f.kind == "latency" and f.matches(method, path))

    def error_status(self, method: str, path: str) -> int | None:
        """The injected error status for this request, if a matching fault fires."""
        for f in self.list():
            if f.kind == "http-error" and f.matches(method, path):
                with self._lock:
                    fire = self._rng.random() < f.rate
                if fire:
                    return f.status
        return None

    def per_minute(self) -> int | None:
        """The throttled per-minute budget, if a throttle fault is active (the lowest wins)."""
        values = [f.per_minute for f in self.list() if f.kind == "throttle"]
        return min(values) if values else None

    def app_is_unhealthy(self, app: str, component: str | None = None) -> bool:
        """Whether an app-unhealthy fault covers this app (and component, when given)."""
        for f in self.list():
            if f.kind == "app-unhealthy" and f.app == app and (
                f.component is None or component is None or f.component == component
            ):
                return True
        return False


def _new_id() -> str:
    return uuid.uuid4().hex[:12]
