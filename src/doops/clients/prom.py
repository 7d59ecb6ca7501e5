"""Prometheus I/O through prometheus-api-client: scrape targets and instant queries, as typed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doops.errors import UnknownStateError


@dataclass
class ScrapeTarget:
    job: str | None
    instance: str | None
    health: str


@dataclass
class Sample:
    labels: dict[str, str] = field(default_factory=dict)
    value: float = 0.0


class PromClient:
    """One Prometheus server; any failure is an UnknownStateError naming the URL (never a traceback)."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        from prometheus_api_client import PrometheusConnect

        self.url = url
        self._prom = PrometheusConnect(url=url, disable_ssl=url.startswith("http://"), timeout=int(max(1.0, timeout)))

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # the library raises requests' and its own errors alike
            raise UnknownStateError(f"Prometheus at {self.url}: {type(exc).__name__}: {exc}") from None

    def targets(self) -> list[ScrapeTarget]:
        active = self._call(self._prom.get_targets).get("activeTargets") or []
        return [ScrapeTarget(t.get("labels", {}).get("job"), t.get("labels", {}).get("instance"),
                             str(t.get("health", ""))) for t in active]

    def query(self, expr: str) -> list[Sample]:
        return [Sample(dict(s.get("metric") or {}), float(s["value"][1]))
                for s in self._call(self._prom.custom_query, expr)]

    def first_value(self, expr: str) -> float | None:
        """The value of an instant query: a scalar's, or the first sample of a vector; None when it is empty.
        (``query`` handles vectors only: a scalar result such as ``1 + 1`` is a [time, value] pair.)"""
        result = self._call(self._prom.custom_query, expr)
        if not result:
            return None
        if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
            return float(result[1])  # resultType scalar (or string): [time, "value"]
        first = result[0]
        return float(first["value"][1]) if isinstance(first, dict) and "value" in first else None
