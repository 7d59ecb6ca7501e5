"""`doops exporter`: serve `doops status` as Prometheus metrics until SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders

MIN_INTERVAL = 1.0


def _interval(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    seconds = duration(ctx, param, value)
    if seconds is not None and seconds < MIN_INTERVAL:
        raise click.BadParameter(f"{value!r} is shorter than {MIN_INTERVAL:g}s")
    return seconds


def _share(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 < value <= 1:
        raise click.BadParameter(f"{value:g} is not within (0, 1]: give a share such as 0.5")
    return value


@renders(text="metrics over HTTP (/metrics)")
@click.command("exporter")
@click.argument("components", nargs=-1, metavar="[COMPONENT]...")
@click.option("--listen", default="127.0.0.1:9877", show_default=True, metavar="HOST:PORT",
              help="Address to serve /metrics and /healthz on.")
@click.option("--interval", default="60s", show_default=True, metavar="DURATION", callback=_interval,
              help="Evaluate this often; stretched so the API calls stay within --budget-share.")
@click.option("--budget-share", type=float, default=None, callback=_share, metavar="SHARE",
              help="Share of the token's 250 requests/min the exporter may use (default: the config's "
                   "exporter.budget_share, else 0.5).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=16, show_default=True,
              help="Checks run in parallel within an evaluation.")
@click.option("--timeout", default="50s", show_default=True, metavar="DURATION", callback=duration,
              help="An evaluation ends by then: checks not done are unknown, with the reason.")
@click.pass_obj
def exporter(app: Cli, components: tuple[str, ...], listen: str, interval: float, budget_share: float | None,
             concurrency: int, timeout: float) -> int:
    """Evaluate the checks of `doops status` on a schedule and serve them as Prometheus metrics.

    COMPONENT narrows as for `doops status`. /metrics shows the latest evaluation (a scrape never calls the
    API); /healthz answers 200 while the last evaluation is within three intervals, else 503. Evaluations
    never overlap. SIGTERM or Ctrl-C stops it within a second, exit 0. Nothing is printed on stdout; one
    line on stderr says where it listens. Metrics: docs/exporter.md.

    \b
    Example:
      doops exporter
      doops exporter --listen 127.0.0.1:9877 --interval 2m databases spaces
    """
    from doops.exporter_http import ExporterServer, parse_listen, serve
    from doops.ops.exporter import ExporterOptions, budget_share_of, platform_exporter
    from doops.ops.status import validate_components

    chosen = validate_components(components)
    host, port = parse_listen(listen)
    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4)
    share = budget_share_of(app.platform, budget_share)
    app.platform.check_inputs()  # a malformed token or API URL: exit 4 before any request
    options = ExporterOptions(components=chosen, interval=interval, budget_share=share, concurrency=concurrency,
                              timeout=timeout)
    ex = platform_exporter(app.platform, options)
    server = ExporterServer(ex, host, port)  # a taken port is exit 4 here, before the first evaluation
    scope = "all components" if not components else ", ".join(chosen)
    click.echo(f"doops: exporter serving {server.url}/metrics ({scope}; every {interval:g}s or slower, at most "
               f"{share:.0%} of the API budget)", err=True)
    previous = _install_stop(ex.stop)
    try:
        serve(ex, server)
    finally:
        _restore(previous)
    return 0


def _install_stop(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and SIGINT set the stop event (only the main thread may install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, on_signal)
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
