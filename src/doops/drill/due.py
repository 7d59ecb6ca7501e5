"""Which scheduled drills are overdue, and which last failed: `doops drill due` and the status component.

The rule (docs/drills.md): for a schedule's cron expression (UTC) let ``fire`` be its last fire time at or
before now and ``previous`` the one before that. A drill is **overdue** when it has no successful run since
``previous``: it missed a whole period, not merely the run that may be in progress now. A drill that never
succeeded (never ran, or only failed) is overdue. It **failed** when its newest run (any outcome) did not
succeed; a failure outranks overdue (crit before warn).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from doops.config import DrillSchedule
from doops.drill.history import History
from doops.errors import ExitCode
from doops.ops.seam import Clock, SystemClock


class DueState(enum.Enum):
    OK = "ok"
    OVERDUE = "overdue"
    FAILED = "failed"

    @property
    def exit_code(self) -> ExitCode:
        return {"ok": ExitCode.OK, "overdue": ExitCode.WARNING, "failed": ExitCode.CRITICAL}[self.value]


@dataclass
class DueDrill:
    runbook: str
    cron: str
    state: DueState
    reason: str
    last_run: datetime | None
    last_outcome: str | None
    last_success: datetime | None
    fire: datetime  # the schedule's last fire time at or before now
    previous: datetime  # the fire time before that: a success since then is required
    overdue_at: datetime | None  # when the last success stops being enough (None: never succeeded)


@dataclass
class DueReport:
    checked_at: datetime
    history: str  # the store's URL, masked
    drills: list[DueDrill] = field(default_factory=list)

    @property
    def state(self) -> DueState:
        """The worst drill's: failed > overdue > ok."""
        order = [DueState.OK, DueState.OVERDUE, DueState.FAILED]
        return max((d.state for d in self.drills), key=order.index, default=DueState.OK)

    @property
    def exit_code(self) -> ExitCode:
        return self.state.exit_code

    def to_data(self) -> dict[str, object]:
        from doops.serialize import to_data

        return {"checked_at": to_data(self.checked_at), "history": self.history, "state": self.state.value,
                "drills": to_data(self.drills)}


def fire_times(cron: str, now: datetime) -> tuple[datetime, datetime]:
    """(last fire at or before ``now``, the one before it), UTC."""
    from croniter import croniter

    it = croniter(cron, now + timedelta(microseconds=1))  # get_prev is strictly before its start
    fire = it.get_prev(datetime)
    previous = it.get_prev(datetime)
    return fire, previous


def judge(schedule: DrillSchedule, history: History, now: datetime) -> DueDrill:
    """One schedule against the history, at ``now``."""
    fire, previous = fire_times(schedule.cron, now)
    newest = history.runs(schedule.runbook, limit=1)
    last = newest[0] if newest else None
    success = last if last is not None and last.success else history.last_success(schedule.runbook)
    when = f"{previous:%Y-%m-%d %H:%M}Z"
    if last is not None and not last.success:
        state = DueState.FAILED
        reason = f"last run {last.started_at:%Y-%m-%d %H:%M}Z failed ({last.outcome or 'no outcome'})"
    elif success is None:
        state = DueState.OVERDUE
        reason = "never succeeded" if last is not None else "never ran"
    elif success.started_at < previous:
        state = DueState.OVERDUE
        reason = f"no success since {when} (last {success.started_at:%Y-%m-%d %H:%M}Z)"
    else:
        state = DueState.OK
        reason = f"last success {success.started_at:%Y-%m-%d %H:%M}Z"
    overdue_at = overdue_from(schedule.cron, success.started_at) if success is not None else None
    if state is DueState.OK and overdue_at is not None:
        reason += f"; overdue from {overdue_at:%Y-%m-%d %H:%M}Z without another"
    return DueDrill(runbook=schedule.runbook, cron=schedule.cron, state=state, reason=reason,
                    last_run=last.started_at if last else None, last_outcome=last.outcome if last else None,
                    last_success=success.started_at if success else None, fire=fire, previous=previous,
                    overdue_at=overdue_at)


def overdue_from(cron: str, success: datetime) -> datetime:
    """When a drill whose last success was at ``success`` becomes overdue: the second fire time after it
    (from then on the fire time before the last one is later than the success)."""
    from croniter import croniter

    it = croniter(cron, success)
    it.get_next(datetime)
    second: datetime = it.get_next(datetime)
    return second


def due(schedules: list[DrillSchedule], history: History, clock: Clock | None = None) -> DueReport:
    """Every schedule judged at the clock's now (a ``FakeClock`` in tests)."""
    now = (clock or SystemClock()).now()
    return DueReport(checked_at=now, history=history.url,
                     drills=[judge(s, history, now) for s in schedules])
