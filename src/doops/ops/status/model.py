"""Status results: one line per check, judged ok | warn | crit | unknown."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops.errors import ExitCode
from doops.output import TableSection

COMPONENTS = ("apps", "functions", "databases", "cache", "spaces", "cdn", "monitoring", "prometheus")


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    UNKNOWN = "unknown"
    CRIT = "crit"

    @property
    def rank(self) -> int:
        """Worst-first order: crit > unknown > warn > ok (an unknown may hide a crit, a warn never does)."""
        return {"ok": 0, "warn": 1, "unknown": 2, "crit": 3}[self.value]

    @property
    def exit_code(self) -> ExitCode:
        return {"ok": ExitCode.OK, "warn": ExitCode.WARNING, "crit": ExitCode.CRITICAL,
                "unknown": ExitCode.UNKNOWN}[self.value]


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


@dataclass
class CheckResult:
    component: str
    resource: str
    check: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0


STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red", "unknown": "magenta"}


@dataclass
class StatusReport:
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
