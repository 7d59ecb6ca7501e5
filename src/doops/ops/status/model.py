"""Status results: one line per check, judged ok | warn | crit | unknown."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from doops.errors import ExitCode
from doops.output import TableSection

COMPONENTS = ("apps", "functions", "databases", "cache", "spaces", "cdn", "monitoring", "prometheus")


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    UNKNOWN = "unknown"
    CRIT = "crit"
    SKIPPED = "skipped"  # an integration that is not configured: shown, never a finding

    @property
    def rank(self) -> int:
        """Worst-first order: crit > unknown > warn > ok > skipped (an unknown may hide a crit, a warn never
        does; a skipped check judges nothing)."""
        return {"skipped": -1, "ok": 0, "warn": 1, "unknown": 2, "crit": 3}[self.value]

    @property
    def exit_code(self) -> ExitCode:
        return {"ok": ExitCode.OK, "warn": ExitCode.WARNING, "crit": ExitCode.CRITICAL,
                "unknown": ExitCode.UNKNOWN, "skipped": ExitCode.OK}[self.value]


def worst(statuses: list[Status]) -> Status:
    """The overall verdict: skipped checks do not count (a healthy platform without Prometheus is ok)."""
    return max((s for s in statuses if s is not Status.SKIPPED), key=lambda s: s.rank, default=Status.OK)


@dataclass
class CheckResult:
    component: str
    resource: str
    check: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0


STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red", "unknown": "magenta", "skipped": "dim"}


@dataclass
class StatusReport:
    TABLE_COLUMNS: ClassVar[tuple[str, ...]] = (
        "status", "resource", "check", "summary", "ms", "overall", "checks", "api_requests", "duration_ms")

    overall: Status
    generated_at: datetime
    checks: list[CheckResult]
    api_requests: int
    duration_ms: float

    def table_sections(self) -> list[TableSection]:
        """One table per component, the worst component first and the worst checks first within it."""
        by_comp: dict[str, list[CheckResult]] = {}
        for c in self.checks:
            by_comp.setdefault(c.component, []).append(c)
        order = sorted(by_comp, key=lambda k: (-worst([c.status for c in by_comp[k]]).rank, COMPONENTS.index(k)
                                                if k in COMPONENTS else 99))
        sections = []
        for comp in order:
            rows = sorted(by_comp[comp], key=lambda c: (-c.status.rank, c.resource, c.check))
            status = worst([c.status for c in rows])
            if all(c.status is Status.SKIPPED for c in rows):
                status = Status.SKIPPED
            sections.append(TableSection(
                title=f"{comp}: {status.value}",
                columns=["status", "resource", "check", "summary", "ms"],
                rows=[[c.status.value, c.resource, c.check, c.summary, round(c.duration_ms)] for c in rows],
                styles=STYLES,
            ))
        sections.append(TableSection(
            title="", columns=["overall", "checks", "api_requests", "duration_ms"],
            rows=[[self.overall.value, len(self.checks), self.api_requests, round(self.duration_ms)]],
            styles=STYLES,
        ))
        return sections
