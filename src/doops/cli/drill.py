"""`doops drill`: runbooks run as scheduled DR drills, recorded, trended, reported, scheduled, pushed as metrics.

Each subcommand lives in its own module (``cli/drill_*.py``) and is added below; those modules import their
operations lazily, so `doops drill --help` loads no client library.
"""

from __future__ import annotations

import click


@click.group()
def drill() -> None:
    """Scheduled DR drills: runbook runs with history, trends, reports, schedules and metrics."""


# Subcommands (one line each, in this order: run, history, due, report, schedule).
from doops.cli.drill_run import run  # noqa: E402

drill.add_command(run)

from doops.cli.drill_history import due, history  # noqa: E402

drill.add_command(history)
drill.add_command(due)

from doops.cli.drill_report import report  # noqa: E402

drill.add_command(report)

from doops.cli.drill_schedule import schedule  # noqa: E402

drill.add_command(schedule)
