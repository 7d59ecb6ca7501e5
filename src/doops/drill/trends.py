"""Per-runbook trends over recorded drill runs: pass rate, RTO percentiles, last success, an RTO sparkline.

Computed in Python from ``History.runs()``, so SQLite and PostgreSQL give the same figures for the same runs.
RTO is the objective named ``rto`` (the runbook convention, docs/runbooks.md); every objective also gets its
own figures in ``Trend.objectives`` for the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from doops.drill.model import DrillRun


class HistoryReader(Protocol):
    """The part of ``drill.history.History`` trends read (kept small so a test can hand in a list)."""

    url: str

    def runs(self, runbook: str | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[DrillRun]: ...

RTO = "rto"
BLOCKS = "▁▂▃▄▅▆▇█"
NOT_MEASURED = "·"
SPARK_WIDTH = 20  # the newest runs a table cell shows


@dataclass
class ObjectiveTrend:
    name: str
    measured: int  # runs that measured it
    met: int  # runs that met it
    p50: float | None
    p95: float | None
    max: float | None
    target_seconds: float | None  # the newest run's target (overrides change it over time)


@dataclass
class Trend:
    runbook: str
    runs: int
    passed: int
    pass_rate: float | None  # passed / runs, 0..1
    last_run: datetime | None
    last_outcome: str | None
    last_success: datetime | None
    rto_p50: float | None
    rto_p95: float | None
    rto_max: float | None
    rto_target: float | None
    sparkline: str  # RTO of the newest SPARK_WIDTH runs, oldest left; · a run that did not measure it
    objectives: list[ObjectiveTrend] = field(default_factory=list)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default; ``statistics.quantiles`` inclusive)."""
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def sparkline(values: list[float | None]) -> str:
    """One block per value, scaled from zero to the largest (heights compare across the line); None: ·."""
    top = max((v for v in values if v is not None), default=None)
    out = []
    for v in values:
        if v is None:
            out.append(NOT_MEASURED)
        elif not top or top <= 0:
            out.append(BLOCKS[0])
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, max(0, round(v / top * (len(BLOCKS) - 1))))])
    return "".join(out)


def _measured(run: DrillRun, name: str) -> float | None:
    o = run.objective(name)
    return o.measured_seconds if o is not None else None


def _objective_trend(name: str, runs: list[DrillRun]) -> ObjectiveTrend:
    measures = [o for r in runs if (o := r.objective(name)) is not None]
    values = [o.measured_seconds for o in measures if o.measured_seconds is not None]
    target = next((o.target_seconds for o in measures if o.target_seconds is not None), None)
    return ObjectiveTrend(name, len(values), sum(1 for o in measures if o.met), percentile(values, 0.5),
                          percentile(values, 0.95), max(values) if values else None, target)


def trend(runbook: str, runs: list[DrillRun]) -> Trend:
    """The trend of one runbook's runs (any order; newest first as ``History.runs`` gives them)."""
    mine = sorted((r for r in runs if r.runbook == runbook), key=lambda r: (r.started_at, r.id), reverse=True)
    names = list(dict.fromkeys(o.name for r in mine for o in r.objectives))
    objectives = [_objective_trend(n, mine) for n in names]
    rto = next((o for o in objectives if o.name == RTO), None)
    last_ok = next((r for r in mine if r.success), None)
    spark = sparkline([_measured(r, RTO) for r in reversed(mine[:SPARK_WIDTH])]) if rto and rto.measured else ""
    passed = sum(1 for r in mine if r.success)
    return Trend(
        runbook=runbook, runs=len(mine), passed=passed, pass_rate=passed / len(mine) if mine else None,
        last_run=mine[0].started_at if mine else None, last_outcome=mine[0].outcome if mine else None,
        last_success=last_ok.started_at if last_ok else None,
        rto_p50=rto.p50 if rto else None, rto_p95=rto.p95 if rto else None, rto_max=rto.max if rto else None,
        rto_target=rto.target_seconds if rto else None, sparkline=spark, objectives=objectives)


def trends(runs: list[DrillRun]) -> list[Trend]:
    """One trend per runbook among ``runs``, by runbook name."""
    return [trend(name, runs) for name in sorted({r.runbook for r in runs})]


@dataclass
class DrillHistory:
    """What `doops drill history` shows: the runs (newest first, at most ``limit``) and the trend of every
    runbook over all runs since ``since`` (the limit narrows the list, not the trend)."""

    history: str  # the store's URL, masked
    runbook: str | None
    since: datetime | None
    runs: list[DrillRun]
    trends: list[Trend]


def read_history(store: HistoryReader, runbook: str | None = None, since: datetime | None = None,
                 limit: int | None = None) -> DrillHistory:
    window = store.runs(runbook, since=since)
    return DrillHistory(history=store.url, runbook=runbook, since=since,
                        runs=window[:limit] if limit is not None else window, trends=trends(window))
