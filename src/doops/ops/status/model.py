"""Status results: one line per check, judged ok | warn | crit | unknown."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops.errors import ExitCode

COMPONENTS = ("apps", "functions", "databases", "cache", "spaces", "cdn", "monitoring", "prometheus", "dns",
              "drills")


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




@dataclass
class StatusReport:
    overall: Status
    generated_at: datetime
    checks: list[CheckResult]
    api_requests: int
    duration_ms: float
