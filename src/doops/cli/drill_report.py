"""`doops drill report`: the drill history as an HTML page (charts) or a Markdown file, for an auditor.

Thin: check the options (the output file's directory first: a report that cannot be written is known before
the history is read), read the runs from the history store, hand them to ``doops.drill.report`` and write the
file atomically. matplotlib is imported only by the HTML chart, so nothing else in doops loads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.render import TableSection, View, render
from doops.errors import UsageError


@dataclass
class DrillReportResult:
    """What was written: the file, its format, how many runs of which runbooks, from when."""

    path: str
    format: str  # html | markdown
    runs: int
    runbooks: list[str] = field(default_factory=list)
    since: datetime | None = None
    generated_at: datetime | None = None


def _tables(r: DrillReportResult) -> list[TableSection]:
    since = r.since.isoformat(timespec="seconds").replace("+00:00", "Z") if r.since else "-"
    return [TableSection(columns=["path", "format", "runs", "runbooks", "since"],
                         rows=[[r.path, r.format, r.runs, ", ".join(r.runbooks) or "-", since]])]


DRILL_REPORT = View(("path", "format", "runs", "runbooks", "since"), _tables)


def writable_target(path: str, option: str) -> Path:
    """The report's path, refused (exit 4) unless its directory exists and this user can write there."""
    target = Path(path).expanduser()
    parent = target.parent
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a directory", hint=f"give a file path, e.g. {option} {path}/drills"
                         + (".html" if option == "--html" else ".md"))
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: directory {parent} does not exist", hint=f"create it: mkdir -p {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: directory {parent} is not writable by this user",
                         hint="choose a directory you can write to")
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{option} {path}: the file exists and is not writable", hint="choose another path")
    return target


def _history_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """The URL's form is checked while parsing (exit 4), before any store is opened."""
    if value is None:
        return None
    from doops.config import history_url_problem
    from doops.masking import mask

    problem = history_url_problem(value)
    if problem:
        raise click.BadParameter(mask(problem))
    return value


@renders(DRILL_REPORT)
@click.command("report")
@click.argument("runbook", required=False)
@click.option("--since", default="90d", show_default=True, callback=duration, metavar="DURATION",
              help="How far back: runs started in the last DURATION (e.g. 30d, 12h).")
@click.option("--html", "html_path", metavar="PATH", help="Write an HTML page with charts to PATH.")
@click.option("--markdown", "markdown_path", metavar="PATH", help="Write a Markdown file to PATH.")
@click.option("--history-url", callback=_history_url, metavar="URL",
              help="The history store: postgresql://..., sqlite:///path or a path (default: the config's "
                   "drills.history_url, else $XDG_STATE_HOME/doops/drills.db).")
@click.option("--title", metavar="TEXT", help="The report's title (default: 'DR drill report').")
@click.pass_obj
def report(app: Cli, runbook: str | None, since: float, html_path: str | None, markdown_path: str | None,
           history_url: str | None, title: str | None) -> DrillReportResult:
    """Write the evidence of the drills run since --since: per runbook a chart of each objective (RTO, RPO)
    against its target, the runs (when, where, who, outcome, each objective measured vs target) and each
    run's timeline (every step: start, duration, status, error).

    RUNBOOK narrows it to one runbook (its name or its file). The HTML page is self-contained: no script and
    nothing fetched when it is opened (archive it, attach it to a ticket). The file is written atomically.
    Exit 0 written (also when no drill ran: the report says so); 3 history unreachable; 4 bad input.

    \b
    Example:
      doops drill report --since 90d --html drills.html
      doops drill report restore-weekly --since 365d --markdown evidence/restore.md
    """
    if (html_path is None) == (markdown_path is None):
        raise UsageError("give exactly one of --html PATH and --markdown PATH",
                         hint="e.g. --html drills.html")
    fmt, option, path = ("html", "--html", html_path) if html_path else ("markdown", "--markdown", markdown_path)
    assert path is not None
    target = writable_target(path, option)
    from doops import __version__
    from doops.drill import report as reports
    from doops.drill.history import open_history

    url = history_url or app.platform.config.drills.resolved_history_url()
    now = datetime.now(UTC)
    start = now - timedelta(seconds=since)
    with open_history(url) as store:
        runs = store.runs(runbook, start, None)
    heading = title or "DR drill report" + (f": {runbook}" if runbook else "")
    kwargs: dict[str, Any] = {"title": heading, "generated_at": now, "since": start, "version": __version__}
    text = reports.html_report(runs, **kwargs) if fmt == "html" else reports.markdown_report(runs, **kwargs)
    reports.write_atomically(target, text)
    result = DrillReportResult(path=str(target), format=fmt, runs=len(runs),
                               runbooks=sorted({r.runbook for r in runs}), since=start, generated_at=now)
    render(result, app.output, DRILL_REPORT)
    return result
