"""`doops status`: health of every component, Nagios exit codes."""

from __future__ import annotations

import click

from doops.context import AppContext
from doops.output import render

DO_PER_MINUTE_BUDGET = 250  # DigitalOcean's documented per-token limit


@click.command("status")
@click.argument("components", nargs=-1, metavar="[COMPONENT]...")
@click.option("--watch", type=click.FloatRange(min=1), metavar="SECS",
              help="Redraw every SECS seconds (stretched to spend at most half the per-minute API budget).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=16, show_default=True,
              help="Checks run in parallel (1 = sequential).")
@click.pass_obj
def status(app: AppContext, components: tuple[str, ...], watch: float | None, concurrency: int) -> None:
    """Report the health of every platform component; exit 0 ok, 1 warn, 2 crit, 3 unknown.

    COMPONENT filters: apps, functions, databases, cache, spaces, cdn, monitoring, prometheus.
    Each check is ok, warn, crit or unknown; a check that cannot run is unknown for itself only.

    \b
    Example:
      doops status
      doops status databases cdn -o json
      doops status --watch 30
    """
    from doops.ops.status import run_status, validate_components

    chosen = validate_components(components)
    _ = app.config  # a missing or invalid explicit config is bad input (exit 4), not an unknown check
    if watch:
        from doops.cli.watch import watch_status

        watch_status(app, chosen, watch, concurrency, DO_PER_MINUTE_BUDGET)
        return
    report = run_status(app, chosen, concurrency)
    render(report, app.output)
    raise click.exceptions.Exit(report.overall.exit_code)
