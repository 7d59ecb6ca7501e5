"""The ``drills`` component: every scheduled drill judged like `doops drill due` (drill/due.py): ok, warn when
overdue, crit when its last run failed; skipped when the config schedules none."""

from __future__ import annotations

import functools

from doops.config import DrillSchedule
from doops.ops.status.engine import Runner, Verdict
from doops.ops.status.model import CheckResult, Status

NOT_CONFIGURED = "no drills scheduled (drills.schedules in the config)"
STATUS_OF = {"ok": Status.OK, "overdue": Status.WARN, "failed": Status.CRIT}


def collect_drills(r: Runner) -> list[CheckResult]:
    cfg = r.app.config.drills
    if not cfg.schedules:
        return [r.verdict("drills", "*", "configured", Status.SKIPPED, NOT_CONFIGURED)]
    url = cfg.resolved_history_url()
    r.need("croniter")
    if url is not None and url.split("://", 1)[0].lower() in ("postgresql", "postgres"):
        r.need("psycopg")
    from doops.drill.due import judge
    from doops.drill.history import History, open_history

    try:
        history: History = open_history(url)
    except Exception as exc:  # unreachable or unusable store: every schedule is unknown, with the reason
        return [r.failed("drills", s.runbook, "schedule", exc) for s in cfg.schedules]
    now = r.app.clock.now()
    try:
        def check(schedule: DrillSchedule) -> Verdict:
            d = judge(schedule, history, now)
            details = {"cron": d.cron, "state": d.state.value, "last_run": _stamp(d.last_run),
                       "last_outcome": d.last_outcome, "last_success": _stamp(d.last_success),
                       "overdue_at": _stamp(d.overdue_at), "history": history.url}
            return STATUS_OF[d.state.value], f"{d.state.value}: {d.reason}", details

        # One after another on this thread: a few indexed reads each, on one connection.
        return [r.run_check("drills", s.runbook, "schedule", functools.partial(check, s)) for s in cfg.schedules]
    finally:
        history.close()


def _stamp(t: object) -> str | None:
    from datetime import datetime

    from doops.serialize import to_data

    return to_data(t) if isinstance(t, datetime) else None
