"""`doops status --watch`: redraw in place, within half the per-minute API budget."""

from __future__ import annotations

import io
import sys
import time

from doops.context import AppContext
from doops.output import OutputOptions, render


def min_interval(requests_per_run: int, per_minute_budget: int) -> float:
    """Seconds between runs so that watching spends at most half the per-minute budget."""
    return 60.0 * requests_per_run / max(per_minute_budget / 2, 1)


def watch_status(app: AppContext, components: list[str], every: float, concurrency: int, budget: int) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from doops.ops.status import run_status

    console = Console(file=sys.stdout, no_color=not app.output.color)
    with Live(console=console, auto_refresh=False, redirect_stderr=False) as live:
        while True:
            report = run_status(app, components, concurrency)
            buf = io.StringIO()
            render(report, OutputOptions(fmt="table", columns=app.output.columns, no_header=app.output.no_header,
                                         color=False), buf)
            interval = max(every, min_interval(report.api_requests, budget))
            footer = f"\n{report.generated_at:%H:%M:%S}Z  next in {interval:.0f}s"
            if interval > every:
                footer += f" (stretched from {every:.0f}s: {report.api_requests} API calls per run)"
            live.update(Text(buf.getvalue() + footer), refresh=True)
            time.sleep(interval)
