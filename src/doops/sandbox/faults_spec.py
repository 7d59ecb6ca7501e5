"""Typed fault specs: one class per fault kind, shared by the CLI, the supervisor and the API twin.

A spec checks its values when it is made (a bad one raises ValueError naming it) and converts to and from
the JSON the supervisor's control API (``POST /fault``) and the twin's ``POST /_twin/faults`` take
(``to_wire``/``from_wire``), so each kind's fields and rules are written once. Whoever
applies a spec dispatches on its class, never on the kind string.

Light imports only: the CLI imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class FaultSpec:
    """A fault to inject. ``kind`` is its name on the wire and on the command line."""

    kind: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        """The JSON form: ``{"kind": ..., <fields in order>}``."""
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Self:
        """The spec from its JSON form; ValueError naming a missing or bad field."""
        try:
            return cls._parse(data)
        except KeyError as exc:
            raise ValueError(f"fault {cls.kind}: missing {exc}") from exc
        except TypeError as exc:
            raise ValueError(f"fault {cls.kind}: {exc}") from exc

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        """The fields from ``data`` (KeyError for a missing one); kinds with fields override this."""
        return cls()


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Latency(FaultSpec):
    """Delay API answers (matching ``route``, every one when None) by ``ms`` milliseconds."""

    kind: ClassVar[str] = "latency"
    ms: int
    route: str | None = None

    def __post_init__(self) -> None:
        if self.ms < 0:
            raise ValueError("latency must be >= 0 ms")

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(int(data["ms"]), _opt_str(data.get("route")))


@dataclass(frozen=True)
class HttpError(FaultSpec):
    """Answer API requests (matching ``route``) with ``status`` for a share ``rate`` of them."""

    kind: ClassVar[str] = "http-error"
    status: int
    rate: float = 1.0
    route: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError("http-error status must be 4xx or 5xx")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within 0..1")

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(int(data["status"]), float(data.get("rate", 1.0)), _opt_str(data.get("route")))


@dataclass(frozen=True)
class Throttle(FaultSpec):
    """Lower every token's per-minute API budget."""

    kind: ClassVar[str] = "throttle"
    per_minute: int

    def __post_init__(self) -> None:
        if self.per_minute < 0:
            raise ValueError("per_minute must be >= 0")

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(int(data["per_minute"]))


@dataclass(frozen=True)
class DbStop(FaultSpec):
    """Kill the primary server of a database cluster (a crash)."""

    kind: ClassVar[str] = "db-stop"
    cluster: str

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data["cluster"]))


@dataclass(frozen=True)
class DbLag(FaultSpec):
    """Pause WAL replay on a standby or read replica."""

    kind: ClassVar[str] = "db-lag"
    replica: str

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data["replica"]))


@dataclass(frozen=True)
class AppUnhealthy(FaultSpec):
    """Make an app (or one ``component``, every one when None) unhealthy."""

    kind: ClassVar[str] = "app-unhealthy"
    app: str
    component: str | None = None

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data["app"]), _opt_str(data.get("component")))


@dataclass(frozen=True)
class BadRelease(FaultSpec):
    """Make the app's next deployment a bad release: it goes ACTIVE, but while it is the active deployment the
    live server fails its health checks and App Platform health reports no replica ready, so a rollback to the
    deployment before it has something real to fix."""

    kind: ClassVar[str] = "bad-release"
    app: str

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data["app"]))


@dataclass(frozen=True)
class Tls(FaultSpec):
    """Degrade an app's HTTPS live URL: offer at most TLS ``max_version`` ("1.2": a TLS 1.3 handshake fails),
    serve a certificate from the same CA that expires ``expires_in`` seconds from now, drop HSTS (``hsts``
    False). Each tls fault on an app replaces the one before; ``clear`` restores TLS 1.3, the normal
    certificate and HSTS."""

    kind: ClassVar[str] = "tls"
    MAX_VERSIONS: ClassVar[tuple[str, ...]] = ("1.2", "1.3")
    app: str
    max_version: str | None = None
    expires_in: float | None = None
    hsts: bool = True

    def __post_init__(self) -> None:
        if self.max_version is not None and self.max_version not in self.MAX_VERSIONS:
            raise ValueError(f"tls max_version must be one of {', '.join(self.MAX_VERSIONS)}")
        if self.expires_in is not None and not 0 < self.expires_in <= 825 * 86400:
            raise ValueError("tls expires_in must be within 0..825 days")
        if self.max_version is None and self.expires_in is None and self.hsts:
            raise ValueError("a tls fault needs max_version, expires_in or hsts false")

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        hsts = data.get("hsts", True)
        if not isinstance(hsts, bool):
            raise TypeError("hsts must be true or false")
        expires = data.get("expires_in")
        return cls(str(data["app"]), _opt_str(data.get("max_version")),
                   None if expires is None else float(expires), hsts)


@dataclass(frozen=True)
class SpacesReplication(FaultSpec):
    """Pause or resume the bucket replicator."""

    kind: ClassVar[str] = "spaces-replication"
    ACTIONS: ClassVar[tuple[str, ...]] = ("pause", "resume")
    action: str

    def __post_init__(self) -> None:
        if self.action not in self.ACTIONS:
            raise ValueError("spaces-replication needs action pause or resume")

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Self:
        return cls(str(data.get("action")))


@dataclass(frozen=True)
class Clear(FaultSpec):
    """Remove every fault and reset the rate budgets."""

    kind: ClassVar[str] = "clear"


ALL: tuple[type[FaultSpec], ...] = (Latency, HttpError, Throttle, DbStop, DbLag, AppUnhealthy, BadRelease, Tls,
                                     SpacesReplication, Clear)
# what the API twin applies itself
TWIN: tuple[type[FaultSpec], ...] = (Latency, HttpError, Throttle, AppUnhealthy, BadRelease)


def from_wire(data: Mapping[str, Any], accept: Sequence[type[FaultSpec]] = ALL) -> FaultSpec:
    """The spec a JSON body describes, if its kind is one of ``accept``; ValueError naming what is wrong."""
    kind = data.get("kind")
    spec_cls = next((c for c in accept if c.kind == kind), None)
    if spec_cls is None:
        raise ValueError(f"unknown fault kind {kind!r} (one of {', '.join(c.kind for c in accept)})")
    return spec_cls.from_wire(data)
