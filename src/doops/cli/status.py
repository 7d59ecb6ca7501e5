"""`doops status`: health of every component, Nagios exit codes."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.render import render
from doops.cli.views import STATUS

DO_PER_MINUTE_BUDGET = 250  # DigitalOcean's documented per-token limit
DEFAULT_WATCH = "30s"
MIN_WATCH = 1.0


_cold = True  # the first run of a process loads the client libraries; later ones (tests, in-process) do not


@contextlib.contextmanager
def cold_start() -> Iterator[None]:
    """The first run of a process loads pydo, boto3, psycopg and prometheus-api-client: about a thousand
    modules whose objects the cyclic garbage collector scans again and again while they load (a tenth of the
    cold start), and once more while Python tears them down at exit (a third of a second). Collection is off
    during that run; after it, what is loaded is frozen (``gc.freeze``: never scanned again; modules live as
    long as the process anyway) and collection is back as it was, so in-process callers keep a normal GC."""
    global _cold
    if not _cold:
        yield
        return
    _cold = False
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def _watch_interval(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """``--watch`` alone is every 30 s; ``--watch 10``/``--watch 2m`` sets it (at least 1 s)."""
    from doops.ops.status.model import COMPONENTS

    if value is not None and value.lower() in COMPONENTS:
        raise click.BadParameter(f"{value!r} is a component, not an interval: put components before --watch, "
                                 "or give the interval (--watch 30s)")
    seconds = duration(ctx, param, value)
    if seconds is not None and seconds < MIN_WATCH:
        raise click.BadParameter(f"{value!r} is shorter than {MIN_WATCH:g}s: redrawing faster tells nothing new")
    return seconds


@renders(STATUS)
@click.command("status")
@click.argument("components", nargs=-1, metavar="[COMPONENT]...")
@click.option("--watch", is_flag=False, flag_value=DEFAULT_WATCH, default=None, metavar="[INTERVAL]",
              callback=_watch_interval,
              help="Redraw every INTERVAL (default 30s; stretched to spend at most half the per-minute API "
                   "budget). With -o json: one JSON document per line per refresh; -o yaml: one --- document "
                   "per refresh.")
@click.option("--timeout", default="50s", show_default=True, metavar="DURATION", callback=duration,
              help="Return by then: checks not done are unknown, with the reason (under Nagios's 60 s).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=16, show_default=True,
              help="Checks run in parallel (1 = sequential).")
@click.pass_obj
def status(app: Cli, components: tuple[str, ...], watch: float | None, timeout: float,
           concurrency: int) -> None:
    """Report the health of every platform component; exit 0 ok, 1 warn, 2 crit, 3 unknown.

    COMPONENT filters: apps, functions, databases, cache, spaces, cdn, dns, monitoring, prometheus, drills.
    Each check is ok, warn, crit or unknown; a check that cannot run is unknown for itself only, and so is
    one not done within --timeout.

    \b
    Example:
      doops status
      doops status databases cdn -o json
      doops status --timeout 20s
      doops status --watch            (every 30s; components go before --watch)
      doops status --watch 10 -o json | jq -c .overall
    """
    from doops.ops.status import run_status, validate_components

    chosen = validate_components(components)
    if watch:
        _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4)
        app.platform.check_inputs()  # a malformed token or API URL is exit 4 before any request
        from doops.cli.watch import watch_status

        watch_status(app, chosen, watch, concurrency, DO_PER_MINUTE_BUDGET, timeout=timeout)
        return
    with cold_start():
        _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4), not an unknown check
        app.platform.check_inputs()  # a malformed token or API URL is exit 4 before any request
        report = run_status(app.platform, chosen, concurrency, timeout=timeout, offload=True)
        render(report, app.output, STATUS)
    raise click.exceptions.Exit(report.overall.exit_code)
