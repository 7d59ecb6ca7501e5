"""`doops drill run`: run runbooks as drills (doops.drill.run does the work); progress on stderr, the result on
stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from doops.cli.context import Cli
from doops.cli.drill_history import HISTORY_URL_HELP, _history_url
from doops.cli.params import duration, renders
from doops.cli.render import TableSection, View, render
from doops.cli.runbook import _inputs, _reports

if TYPE_CHECKING:
    from doops.drill.run import DrillRunResult

COLUMNS = ("runbook", "outcome", "success", "duration", "objectives", "history_id", "pushed", "reports")


def _objectives_cell(objectives: list[Any]) -> str:
    from doops.units import format_duration

    def secs(v: float | None) -> str:
        return "-" if v is None else format_duration(v)

    parts = [f"{o.name} {secs(o.measured_seconds)}/{secs(o.target_seconds)} "
             f"{ {True: 'ok', False: 'MISSED', None: 'not measured'}[o.met] }" for o in objectives]
    return "; ".join(parts) or "-"


def _tables(r: DrillRunResult) -> list[TableSection]:
    from doops.units import format_duration

    runs = TableSection(
        title=f"drills against {r.api_host}", columns=list(COLUMNS),
        rows=[[d.runbook, d.outcome, "yes" if d.success else "NO",
               None if d.duration_seconds is None else format_duration(d.duration_seconds),
               _objectives_cell(d.objectives), d.history_id, "yes" if d.pushed else "no",
               ", ".join(d.reports) or None] for d in r.drills],
        styles={"ok": "green", "yes": "green", "NO": "bold red", "not_run": "dim", "interrupted": "yellow"})
    summary = [["outcome", r.outcome.value], ["message", r.message], ["history", r.history],
               ["pushgateway", r.pushgateway or "none (no --pushgateway, no drills.pushgateway_url)"]]
    if r.lock_holder:
        summary.append(["lock held by", r.lock_holder])
    summary += [["warning", w] for w in r.warnings]
    return [runs, TableSection(title="", columns=["field", "value"], rows=summary)]


RESULT = View((*COLUMNS, "field", "value"), _tables)


@renders(RESULT)
@click.command("run")
@click.argument("runbooks", nargs=-1, required=True, metavar="RUNBOOK...")
@click.option("--input", "inputs", multiple=True, callback=_inputs, metavar="NAME=VALUE",
              help="A runbook input (repeatable); overrides the drills.schedules inputs. With several runbooks it "
                   "goes to each runbook that declares it.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before the destructive steps (for schedulers).")
@click.option("--report", "reports", multiple=True, callback=_reports, metavar="FORMAT=PATH",
              help="Also write a report per runbook: json, junit or markdown (repeatable); with several runbooks "
                   "put {runbook} in the file name.")
@click.option("--pushgateway", "pushgateway", metavar="URL",
              help="Push each drill's metrics to this Prometheus Pushgateway (default: drills.pushgateway_url; "
                   "neither: no push).")
@click.option("--history-url", "history_url", callback=_history_url, metavar="URL", help=HISTORY_URL_HELP)
@click.option("--wait-lock", "wait_lock", callback=duration, metavar="DURATION",
              help="When another drill is running against the same API, wait up to DURATION for it (default: "
                   "refuse at once, exit 2).")
@click.pass_obj
def run(app: Cli, runbooks: tuple[str, ...], inputs: dict[str, str], yes: bool, reports: list[tuple[str, Path]],
        pushgateway: str | None, history_url: str | None, wait_lock: float | None) -> DrillRunResult:
    """Run runbooks as DR drills, one after another: each run recorded in the drill history, its metrics pushed
    to a Pushgateway, its reports written.

    RUNBOOK is a runbook file, or a name (`name:` or file stem) under runbooks/ or the config's runbooks.paths.
    The runbook's drills.schedules entry gives default inputs (--input overrides them) and objective targets
    (they replace the runbook's). One drill at a time per API: a second one is refused (exit 2) naming who
    holds the lock, unless --wait-lock. Everything is checked before the first request.

    Exit 0 every drill passed and met its objectives; 2 a drill failed, missed an objective, or another drill
    holds the lock; 3 the history store cannot be reached; 4 bad input (nothing recorded); 130 interrupted
    (the interrupted drill is recorded as interrupted, the rest do not run). A failed metrics push is a
    warning and leaves the exit code alone.

    \b
    Example:
      doops drill run runbooks/db-restore-drill.yaml --yes --report junit=drill.xml
      doops drill run storage-replication cdn-release --yes --report markdown='drill-{runbook}.md'
    """
    from doops.cli.progress import StderrSink, cancel_on_interrupt
    from doops.drill.run import DrillRunOptions, drill_run, prepare
    from doops.errors import UsageError
    from doops.runbook.engine import destructive_steps
    from doops.runbook.validate import Catalog

    options = DrillRunOptions(runbooks=list(runbooks), inputs=inputs, reports=reports, pushgateway_url=pushgateway,
                              history_url=history_url, wait_lock=wait_lock)
    catalog = Catalog.default()
    if not (yes or sys.stdin.isatty()):  # no one to ask: refuse destructive drills before anything runs
        prepared = prepare(app.platform, options, catalog)
        destructive = [f"{p.rb.name}: {s.id}" for p in prepared for s in destructive_steps(p.rb, catalog)]
        if destructive:
            raise UsageError(f"refusing to run {len(destructive)} destructive step(s) ({', '.join(destructive)}) "
                             "without confirmation: no terminal to ask on", hint="pass --yes")

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    sink = StderrSink(app.output.color)
    try:
        with cancel_on_interrupt() as cancel:
            result = drill_run(app.platform, options, confirm=confirm, events=sink, cancel=cancel, registry=catalog)
    finally:
        sink.close()
    render(result, app.output, RESULT)
    return result
