"""A drill run as the history keeps it: what ran, when, where, by whom, and what it measured.

The one record every part of `doops drill` shares: the history stores (SQLite, PostgreSQL) write and read it,
`history`/`report`/`due` judge it, the Pushgateway metrics are made from it. Built from a runbook run's
result (``from_runbook``), so a drill is a runbook run plus this record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops.times import parse_rfc3339


@dataclass
class ObjectiveMeasure:
    name: str  # "rto", "rpo", ...
    target_seconds: float | None
    measured_seconds: float | None
    met: bool | None  # None: not measured (the run ended before the marker)


@dataclass
class StepSummary:
    id: str
    kind: str  # action | probe | wait_until | pause
    name: str  # the action/probe name
    status: str  # passed | failed | skipped | ...
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    error: str | None = None


@dataclass
class DrillRun:
    runbook: str  # the runbook's name (``name:`` in its file)
    file: str
    started_at: datetime
    ended_at: datetime
    outcome: str  # the runbook result's Outcome value
    success: bool  # every step passed and every objective met
    objectives: list[ObjectiveMeasure] = field(default_factory=list)
    steps: list[StepSummary] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # secrets already masked
    host: str = ""  # the machine that ran it
    user: str = ""
    api_host: str = ""  # which DigitalOcean API (or sandbox) it ran against
    sandbox: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def objective(self, name: str) -> ObjectiveMeasure | None:
        return next((o for o in self.objectives if o.name == name), None)

    @classmethod
    def from_runbook(cls, data: dict[str, Any], *, host: str = "", user: str = "", api_host: str = "",
                     sandbox: bool = False) -> DrillRun:
        """From a runbook result's JSON form (``RunbookResult.to_data()``)."""

        def time(value: Any) -> datetime | None:
            return parse_rfc3339(value) if isinstance(value, str) and value else None

        objectives = [ObjectiveMeasure(str(o.get("name")), o.get("target_seconds"), o.get("measured_seconds"),
                                       o.get("met")) for o in data.get("objectives") or []]
        steps = [StepSummary(str(s.get("id")), str(s.get("kind", "")), str(s.get("name") or ""),
                             str(s.get("status", "")), time(s.get("started_at")), time(s.get("ended_at")),
                             s.get("duration_seconds"), s.get("error")) for s in data.get("steps") or []]
        started = time(data.get("started_at"))
        ended = time(data.get("ended_at")) or started
        if started is None or ended is None:
            raise ValueError("a runbook result without started_at/ended_at cannot be recorded")
        outcome = str(data.get("outcome", ""))
        success = outcome == "ok" and all(o.met is not False for o in objectives)
        return cls(runbook=str(data.get("runbook", "")), file=str(data.get("file", "")), started_at=started,
                   ended_at=ended, outcome=outcome, success=success, objectives=objectives, steps=steps,
                   inputs=dict(data.get("inputs") or {}), host=host, user=user, api_host=api_host,
                   sandbox=sandbox)
