"""Prometheus checks with prometheus-api-client: targets up, alerts firing, SLO queries in bounds."""

from __future__ import annotations

from functools import partial
from typing import Any

from doops.clients.prom import PromClient, Sample
from doops.ops.status.engine import Runner, Verdict
from doops.ops.status.model import CheckResult, Status

OK, WARN, CRIT, UNKNOWN = Status.OK, Status.WARN, Status.CRIT, Status.UNKNOWN


def collect_prometheus(r: Runner) -> list[CheckResult]:
    cfg = r.app.config.prometheus
    url = cfg.resolved_url()
    if not url:
        return [r.verdict("prometheus", "*", "configured", Status.SKIPPED,
                          f"not configured (prometheus.url or ${cfg.url_env}): not checked")]

    def make() -> PromClient:
        r.need("prometheus_api_client.prometheus_connect")
        return PromClient(url, float(r.app.config.thresholds.http_timeout))

    def client() -> PromClient:
        return r.shared("prometheus", make)

    def query(expr: str) -> list[Sample]:
        return client().query(expr)

    def targets() -> Verdict:
        active = client().targets()
        down = [f"{t.job}@{t.instance}" for t in active if t.health != "up"]
        details = {"active": len(active), "down": down}
        if not active:
            return WARN, "no active scrape targets", details
        if down:
            return CRIT, f"{len(down)}/{len(active)} targets down: " + ", ".join(down[:5]), details
        return OK, f"{len(active)} targets up", details

    def alerts() -> Verdict:
        firing = query('ALERTS{alertstate="firing"}')
        names = [f"{a.labels.get('alertname')}({a.labels.get('severity', '-')})" for a in firing]
        details = {"firing": names}
        if any(a.labels.get("severity") in ("critical", "page") for a in firing):
            return CRIT, "firing: " + ", ".join(names), details
        if firing:
            return WARN, "firing: " + ", ".join(names), details
        return OK, "no alert firing", details

    def slo(name: str, expr: str, lo: float | None, hi: float | None) -> Verdict:
        values = [s.value for s in query(expr)]
        details: dict[str, Any] = {"query": expr, "values": values, "min": lo, "max": hi}
        if not values:
            return UNKNOWN, "query returned no data", details
        bad = [v for v in values if (lo is not None and v < lo) or (hi is not None and v > hi)]
        bounds = " ".join(x for x in (f">= {lo}" if lo is not None else "", f"<= {hi}" if hi is not None else "") if x)
        if bad:
            return CRIT, f"{bad[0]:g} out of bounds ({bounds})", details
        return OK, f"{values[0]:g} within bounds ({bounds})", details

    jobs: list[Any] = [("prometheus", url, "targets", targets), ("prometheus", url, "alerts", alerts)]
    for q in r.app.config.prometheus.slo_queries:
        jobs.append(("prometheus", q.name, "slo", partial(slo, q.name, q.query, q.min, q.max)))
    return r.fan_out(jobs)
