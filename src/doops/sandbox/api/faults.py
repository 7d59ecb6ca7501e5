"""Injected faults the API twin applies itself: latency, HTTP errors, a tighter rate limit, unhealthy apps, a bad
release (the app's next deployment; App Platform in :mod:`doops.sandbox.api.state_apps` marks it).

Set from Python (``world.faults``) or over HTTP through the admin routes (``/_twin/faults``), which the
supervisor uses. Each active fault holds its typed spec (:mod:`doops.sandbox.faults_spec`), which carries
the validation and the JSON form. A route glob matches the request path (``/v2/databases*``) or, when it
contains a space, the method and path (``PUT /v2/databases/*/replicas/*/promote``).
"""

from __future__ import annotations

import fnmatch
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from doops.sandbox.faults_spec import (
    TWIN,
    AppUnhealthy,
    BadRelease,
    FaultSpec,
    HttpError,
    Latency,
    Throttle,
    from_wire,
)

KINDS = tuple(spec.kind for spec in TWIN)
_S = TypeVar("_S", bound=FaultSpec)


def route_matches(route: str | None, method: str, path: str) -> bool:
    """Whether a route glob (None or empty: every request) covers a request."""
    if not route:
        return True
    subject = f"{method.upper()} {path}" if " " in route else path
    return fnmatch.fnmatchcase(subject, route)


@dataclass
class Fault:
    """One active fault: its id and what it does."""

    id: str
    spec: FaultSpec

    @property
    def kind(self) -> str:
        """The spec's kind (``latency``, ``http-error``...)."""
        return self.spec.kind

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request (only latency and http-error have a route)."""
        route = self.spec.route if isinstance(self.spec, Latency | HttpError) else None
        return route_matches(route, method, path)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the id and the spec's wire form."""
        return {"id": self.id, **self.spec.to_wire()}


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

    def add_spec(self, spec: FaultSpec) -> Fault:
        """Apply a spec of a kind the twin handles (:data:`faults_spec.TWIN`)."""
        if not isinstance(spec, TWIN):
            raise ValueError(f"unknown fault kind {spec.kind!r} (one of {', '.join(KINDS)})")
        fault = Fault(uuid.uuid4().hex[:12], spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def add(self, data: dict[str, Any]) -> Fault:
        """Add a fault from its JSON form (``{"kind": ..., ...}``), as the admin route receives it."""
        return self.add_spec(from_wire(data, TWIN))

    def latency(self, ms: int, route: str | None = None) -> Fault:
        """Delay matching answers by ``ms`` milliseconds."""
        return self.add_spec(Latency(int(ms), route))

    def http_error(self, status: int, rate: float = 1.0, route: str | None = None) -> Fault:
        """Answer matching requests with ``status`` (DO error body) with probability ``rate``."""
        return self.add_spec(HttpError(int(status), float(rate), route))

    def throttle(self, per_minute: int) -> Fault:
        """Lower every token's per-minute budget to ``per_minute``."""
        return self.add_spec(Throttle(int(per_minute)))

    def app_unhealthy(self, app: str, component: str | None = None) -> Fault:
        """Report ``app`` (or one component) UNHEALTHY in app health and Uptime state."""
        return self.add_spec(AppUnhealthy(app, component))

    def bad_release(self, app: str) -> Fault:
        """Make ``app``'s next deployment a bad release (ACTIVE, but failing its health checks)."""
        return self.add_spec(BadRelease(app))

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

    def _active(self, kind: type[_S]) -> Iterator[tuple[Fault, _S]]:
        for f in self.list():
            if isinstance(f.spec, kind):
                yield f, f.spec

    def latency_ms(self, method: str, path: str) -> int:
        """Total injected latency for a request."""
        return sum(spec.ms for f, spec in self._active(Latency) if f.matches(method, path))

    def error_status(self, method: str, path: str) -> int | None:
        """The injected error status for this request, if a matching fault fires."""
        for f, spec in self._active(HttpError):
            if f.matches(method, path):
                with self._lock:
                    fire = self._rng.random() < spec.rate
                if fire:
                    return spec.status
        return None

    def per_minute(self) -> int | None:
        """The throttled per-minute budget, if a throttle fault is active (the lowest wins)."""
        values = [spec.per_minute for _f, spec in self._active(Throttle)]
        return min(values) if values else None

    def app_is_unhealthy(self, app: str, component: str | None = None) -> bool:
        """Whether an app-unhealthy fault covers this app (and component, when given)."""
        return any(
            spec.app == app and (spec.component is None or component is None or spec.component == component)
            for _f, spec in self._active(AppUnhealthy)
        )

    def bad_release_ids(self, app: str) -> tuple[str, ...]:
        """Ids of the bad-release faults on ``app``, oldest first."""
        return tuple(f.id for f, spec in self._active(BadRelease) if spec.app == app)

    def is_active(self, fault_id: str) -> bool:
        """Whether the fault is still set (a cleared bad release heals the deployment it marked)."""
        return any(f.id == fault_id for f in self.list())
