"""`doops status --watch`: redraw in place, within half the per-minute API budget.

Tables redraw in place (rich Live); ``-o json`` writes one JSON document per line per refresh (JSON lines,
for ``jq -c`` or a log shipper) and ``-o yaml`` one ``---`` document per refresh: never a table when a
script asked for data.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from typing import IO

from doops.cli.context import Cli
from doops.cli.render import OutputOptions, render
from doops.cli.views import STATUS
from doops.masking import mask
from doops.serialize import to_data


def min_interval(requests_per_run: int, per_minute_budget: int) -> float:
    """Seconds between runs so that watching spends at most half the per-minute budget."""
    return 60.0 * requests_per_run / max(per_minute_budget / 2, 1)


def watch_status(app: Cli, components: list[str], every: float, concurrency: int, budget: int, *,
                 timeout: float | None = None, sleep: Callable[[float], None] = time.sleep,
                 refreshes: int | None = None, stream: IO[str] | None = None) -> None:
    """Refresh until interrupted (or ``refreshes`` times: tests inject that and ``sleep``)."""
    from doops.ops.status import DEFAULT_TIMEOUT, run_status

    out = stream or sys.stdout
    limit = timeout if timeout is not None else DEFAULT_TIMEOUT
    fmt = app.output.fmt
    if fmt in ("json", "yaml"):
        n = 0
        while True:
            report = run_status(app.platform, components, concurrency, timeout=limit)
            data = to_data(report)
            if fmt == "json":
                out.write(mask(json.dumps(data, separators=(",", ":"))) + "\n")
            else:
                import yaml

                out.write(mask(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, explicit_start=True)))
            out.flush()
            n += 1
            if refreshes is not None and n >= refreshes:
                return
            sleep(max(every, min_interval(report.api_requests, budget)))

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(file=out, no_color=not app.output.color)
    n = 0
    with Live(console=console, auto_refresh=False, redirect_stderr=False) as live:
        while True:
            report = run_status(app.platform, components, concurrency, timeout=limit)
            buf = io.StringIO()
            render(report, OutputOptions(fmt="table", columns=app.output.columns, no_header=app.output.no_header,
                                         color=False), STATUS, buf)
            interval = max(every, min_interval(report.api_requests, budget))
            footer = f"\n{report.generated_at:%H:%M:%S}Z  next in {interval:.0f}s"
            if interval > every:
                footer += f" (stretched from {every:.0f}s: {report.api_requests} API calls per run)"
            live.update(Text(buf.getvalue() + footer), refresh=True)
            n += 1
            if refreshes is not None and n >= refreshes:
                return
            sleep(interval)
