"""`doops drill history` and `doops drill due`: read the drill history (SQLite or PostgreSQL); send nothing to
DigitalOcean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.render import TableSection, View, render

HISTORY_URL_HELP = ("Drill history store: postgresql://user@host/db or sqlite:///path (default: drills.history_url, "
                    "then $DOOPS_DRILL_HISTORY_URL, then $XDG_STATE_HOME/doops/drills.db).")


def _history_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checked while Click parses; a password in it is registered for masking before anything prints it."""
    if value is None:
        return None
    from urllib.parse import unquote, urlsplit

    from doops import masking
    from doops.config import history_url_problem

    try:
        password = urlsplit(value).password if "://" in value else None
    except ValueError:
        password = None
    if password:
        masking.register(password)
        masking.register(unquote(password))
    problem = history_url_problem(value)
    if problem:
        raise click.BadParameter(masking.mask(problem) + " (give postgresql://user@host:5432/db, sqlite:///path or "
                                 "a file path)")
    return value


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A duration back from now (90d, 12h) or an RFC 3339 time."""
    if value is None:
        return None
    from doops.times import parse_rfc3339
    from doops.units import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except (ValueError, OverflowError):
        pass
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a duration back from now (e.g. 90d, 12h) nor an RFC 3339 time") from None


def _stamp(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _secs(v: float | None) -> str | None:
    from doops.units import format_duration

    return None if v is None else format_duration(v)


def _objectives_cell(run: Any) -> str:
    """``rto 45.1s/2.0m ok`` per objective: measured against target, and the verdict."""
    parts = []
    for o in run.objectives:
        verdict = {True: "ok", False: "MISSED", None: "not measured"}[o.met]
        parts.append(f"{o.name} {_secs(o.measured_seconds) or '-'}/{_secs(o.target_seconds) or '-'} {verdict}")
    return "; ".join(parts) or "-"


def _where(run: Any) -> str:
    who = f"{run.user}@{run.host}" if run.user or run.host else "-"
    return who + (f" -> {run.api_host}" if run.api_host else "") + (" (sandbox)" if run.sandbox else "")


RUN_COLUMNS = ("started", "runbook", "outcome", "success", "duration", "objectives", "where")
TREND_COLUMNS = ("runbook", "runs", "pass_rate", "rto_p50", "rto_p95", "rto_max", "rto_target", "last_success",
                 "rto_trend")


def _history_tables(h: Any) -> list[TableSection]:
    scope = f" of {h.runbook}" if h.runbook else ""
    since = f" since {_stamp(h.since)}" if h.since else ""
    runs = TableSection(
        title=f"drill runs{scope}{since} ({h.history})", columns=list(RUN_COLUMNS),
        rows=[[_stamp(r.started_at), r.runbook, r.outcome, r.success, _secs(r.duration_seconds), _objectives_cell(r),
               _where(r)] for r in h.runs],
        styles={"ok": "green", "failed": "bold red", "no": "bold red"})
    trends = TableSection(
        title="trend per runbook (oldest to newest RTO, · not measured)", columns=list(TREND_COLUMNS),
        rows=[[t.runbook, t.runs, f"{t.pass_rate:.0%}" if t.pass_rate is not None else None, _secs(t.rto_p50),
               _secs(t.rto_p95), _secs(t.rto_max), _secs(t.rto_target), _stamp(t.last_success), t.sparkline or None]
              for t in h.trends])
    return [runs, trends]


HISTORY = View(RUN_COLUMNS + tuple(c for c in TREND_COLUMNS if c not in RUN_COLUMNS), _history_tables)

DUE_COLUMNS = ("runbook", "state", "cron", "last_run", "last_outcome", "last_success", "overdue_at", "reason")


def _due_tables(report: Any) -> list[TableSection]:
    title = (f"drills due at {_stamp(report.checked_at)} ({report.history})" if report.drills
             else "no drills scheduled (drills.schedules in the config)")
    return [TableSection(
        title=title, columns=list(DUE_COLUMNS),
        rows=[[d.runbook, d.state.value, d.cron, _stamp(d.last_run), d.last_outcome, _stamp(d.last_success),
               _stamp(d.overdue_at), d.reason] for d in report.drills],
        styles={"ok": "green", "overdue": "yellow", "failed": "bold red"})]


DUE = View(DUE_COLUMNS, _due_tables)


def _store_url(app: Cli, given: str | None) -> str | None:
    """--history-url, else the config's (drills.history_url, then the env var it names); None: the default."""
    return given if given is not None else app.platform.config.drills.resolved_history_url()


@renders(HISTORY)
@click.command("history")
@click.argument("runbook", required=False)
@click.option("--since", default="90d", show_default=True, callback=_since, metavar="DURATION|TIME",
              help="Only runs started since (90d, or RFC 3339); the trend covers the same window.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="List only the newest N runs (the trend "
                                                                          "still covers every run since --since).")
@click.option("--history-url", callback=_history_url, metavar="URL", help=HISTORY_URL_HELP)
@click.pass_obj
def history(app: Cli, runbook: str | None, since: datetime | None, limit: int | None,
            history_url: str | None) -> None:
    """Show recorded drill runs (when, who and where, outcome, each objective measured against its target)
    and per runbook the trend: pass rate, p50/p95/max RTO, last success, an RTO sparkline.

    RUNBOOK: a runbook's name or the file it was run from. Reads the history store only.

    \b
    Example:
      doops drill history
      doops drill history db-failover --since 30d --limit 10
      doops drill history --history-url postgresql://drills@db.internal/drills -o json
    """
    from doops.drill.history import open_history
    from doops.drill.trends import read_history

    url = _store_url(app, history_url)
    with open_history(url) as store:
        result = read_history(store, runbook, since=since, limit=limit)
    render(result, app.output, HISTORY)


@renders(DUE)
@click.command("due")
@click.option("--history-url", callback=_history_url, metavar="URL", help=HISTORY_URL_HELP)
@click.pass_obj
def due(app: Cli, history_url: str | None) -> None:
    """Show the scheduled drills (drills.schedules) that are overdue or whose last run failed.

    Overdue: no successful run since the schedule's fire time before the last one (a whole period missed),
    or never succeeded. Cron expressions are UTC. Exit 0 none overdue, 1 some overdue (warn), 2 a last run
    failed (crit).

    \b
    Example:
      doops drill due
      doops drill due -o json | jq '.drills[] | select(.state != "ok")'
    """
    from doops.drill.due import due as judge_due
    from doops.drill.history import open_history

    schedules = app.platform.config.drills.schedules
    url = _store_url(app, history_url)
    if not schedules:  # nothing to judge: the store is not opened (nor created)
        from doops.drill.due import DueReport

        report = DueReport(checked_at=app.platform.clock.now(), history="-")
    else:
        with open_history(url) as store:
            report = judge_due(schedules, store, app.platform.clock)
    render(report, app.output, DUE)
    raise click.exceptions.Exit(report.exit_code)
