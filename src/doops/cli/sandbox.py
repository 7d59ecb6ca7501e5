"""`doops sandbox`: a local DigitalOcean twin with real PostgreSQL, S3, CDN and apps."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.render import render
from doops.cli.views import SANDBOX_STATUS
from doops.errors import UsageError
from doops.ops.sandbox import FaultApplied, SandboxUp
from doops.sandbox import faults_spec as faults
from doops.sandbox.control import Stopped

DIR_HELP = "Sandbox directory (default $DOOPS_SANDBOX_DIR, set by env.sh, else $XDG_STATE_HOME/doops/sandbox)."
dir_option = click.option("--dir", "dir_", metavar="DIR", help=DIR_HELP)


def _dir(path: str | None) -> Path:
    from doops.sandbox.control import resolve_dir

    return resolve_dir(path)


@click.group()
def sandbox() -> None:
    """Run a local DigitalOcean twin: real PostgreSQL primary and replicas, S3, CDN, apps.

    \b
    Example:
      doops sandbox up --dir /tmp/sb && . /tmp/sb/env.sh
      doops status
      doops sandbox fault db-lag learnhub-db-ams3
      doops sandbox down --dir /tmp/sb
    """


@renders(SandboxUp, table=False)
@sandbox.command("up")
@dir_option
@click.option("--scenario", metavar="FILE", help="Scenario YAML merged onto the default (PLATFORM.md).")
@click.option("--latency", type=click.IntRange(0, 60_000), metavar="MS", help="API latency to add to every call.")
@click.option("--ttl", default="4h", show_default=True, callback=duration,
              help="Stop by itself after this long (0 = never), so none is left running by accident.")
@click.option("--exporter", "with_exporter", is_flag=True,
              help="Also run `doops exporter` on the sandbox, scraped by its Prometheus (job \"doops\").")
@click.pass_obj
def up(app: Cli, dir_: str | None, scenario: str | None, latency: int | None, ttl: float,
       with_exporter: bool) -> None:
    """Start the sandbox detached, wait until ready, print its env.sh.

    Writes DIR/env.sh (export lines for DIGITALOCEAN_API_URL, DIGITALOCEAN_ACCESS_TOKEN, DOOPS_CONFIG,
    DOOPS_SANDBOX_DIR, AWS_ENDPOINT_URL_S3, the Spaces keys and, when Prometheus runs, PROMETHEUS_URL) and
    DIR/doops.yaml. Once env.sh is sourced, every `doops sandbox` command acts on DIR without --dir. On a
    running sandbox it says so and exits 0.

    \b
    Example:
      eval "$(doops sandbox up --dir /tmp/sb)"
    """
    from doops.ops import sandbox as ops

    d = _dir(dir_)
    with _progress(app, f"starting sandbox in {d}"), _exporter_switch(with_exporter):
        result = ops.up(d, scenario, latency, ttl)
    if result.already_running:
        click.echo(f"doops: sandbox already running in {d}", err=True)
    else:
        click.echo(f"doops: sandbox ready in {result.ready_seconds:.1f}s ({d})", err=True)
    for note in result.notes:
        click.echo(f"doops: note: {note}", err=True)
    if app.output.fmt == "table":
        sys.stdout.write(result.env)
    else:
        render(result, app.output)


@contextlib.contextmanager
def _exporter_switch(on: bool) -> Iterator[None]:
    """The supervisor inherits this process's environment: DOOPS_SANDBOX_EXPORTER=1 asks it for the exporter."""
    from doops.sandbox.supervisor import EXPORTER_ENV

    if not on:
        yield
        return
    before = os.environ.get(EXPORTER_ENV)
    os.environ[EXPORTER_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(EXPORTER_ENV, None)
        else:
            os.environ[EXPORTER_ENV] = before


@renders(text="shell text (env.sh)")
@sandbox.command("env")
@dir_option
def env(dir_: str | None) -> None:
    """Print the running sandbox's env.sh.

    \b
    Example:
      eval "$(doops sandbox env)"
    """
    from doops.ops import sandbox as ops

    sys.stdout.write(ops.env(_dir(dir_)))


@renders(SANDBOX_STATUS)
@sandbox.command("status")
@dir_option
@click.pass_obj
def status(app: Cli, dir_: str | None) -> None:
    """Each process of the sandbox: kind, pid, port, health, and the active faults.

    Exit 0 when running and healthy, 1 when a component is down, 3 when no sandbox runs in DIR (one error
    line on stderr, nothing on stdout).

    \b
    Example:
      doops sandbox status
    """
    from doops.errors import ExitCode
    from doops.ops import sandbox as ops

    result = ops.status(_dir(dir_), require=True)
    render(result, app.output, SANDBOX_STATUS)
    if not all(c.healthy for c in result.components):
        raise click.exceptions.Exit(ExitCode.WARNING)


@renders(Stopped)
@sandbox.command("down")
@dir_option
@click.option("--keep", is_flag=True, help="Keep the data directory (databases, logs).")
@click.pass_obj
def down(app: Cli, dir_: str | None, keep: bool) -> None:
    """Stop every process the sandbox started and remove its data (unless --keep).

    Works after a crash of the sandbox too: leftover processes are found by their pid files.

    \b
    Example:
      doops sandbox down --dir /tmp/sb
    """
    from doops.ops import sandbox as ops

    render(ops.down(_dir(dir_), keep), app.output)


@sandbox.group("fault")
def fault() -> None:
    """Inject faults into the running sandbox (see `doops sandbox fault clear`).

    \b
    Example:
      doops sandbox fault http-error --status 503 --rate 1 --route '/v2/apps*'
    """


def _apply(app: Cli, dir_: str | None, spec: faults.FaultSpec) -> None:
    from doops.ops import sandbox as ops

    render(ops.fault(_dir(dir_), spec), app.output)


@renders(FaultApplied)
@fault.command("latency")
@click.option("--ms", type=click.IntRange(0, 60_000), required=True, help="Milliseconds to add.")
@click.option("--route", metavar="GLOB", help="Only API paths matching this glob, e.g. '/v2/apps*'.")
@dir_option
@click.pass_obj
def latency(app: Cli, ms: int, route: str | None, dir_: str | None) -> None:
    """Add latency to API answers.

    \b
    Example:
      doops sandbox fault latency --ms 200 --route '/v2/databases*'
    """
    _apply(app, dir_, faults.Latency(ms, route))


@renders(FaultApplied)
@fault.command("http-error")
@click.option("--status", "status_", type=click.IntRange(400, 599), required=True, help="HTTP status to answer.")
@click.option("--rate", type=click.FloatRange(0, 1), default=1.0, show_default=True, help="Share of requests.")
@click.option("--route", metavar="GLOB", help="Only API paths matching this glob.")
@dir_option
@click.pass_obj
def http_error(app: Cli, status_: int, rate: float, route: str | None, dir_: str | None) -> None:
    """Answer API requests with an error (DigitalOcean's error body).

    \b
    Example:
      doops sandbox fault http-error --status 503 --route '/v2/apps*'
    """
    _apply(app, dir_, faults.HttpError(status_, rate, route))


@renders(FaultApplied)
@fault.command("throttle")
@click.option("--per-minute", type=click.IntRange(0, 100_000), required=True, help="Per-token budget per minute.")
@dir_option
@click.pass_obj
def throttle(app: Cli, per_minute: int, dir_: str | None) -> None:
    """Lower the API rate limit.

    \b
    Example:
      doops sandbox fault throttle --per-minute 10
    """
    _apply(app, dir_, faults.Throttle(per_minute))


@renders(FaultApplied)
@fault.command("db-stop")
@click.argument("cluster")
@dir_option
@click.pass_obj
def db_stop(app: Cli, cluster: str, dir_: str | None) -> None:
    """Kill the primary server of a database cluster (a crash).

    \b
    Example:
      doops sandbox fault db-stop learnhub-db
    """
    _apply(app, dir_, faults.DbStop(cluster))


@renders(FaultApplied)
@fault.command("db-lag")
@click.argument("replica")
@dir_option
@click.pass_obj
def db_lag(app: Cli, replica: str, dir_: str | None) -> None:
    """Pause WAL replay on a standby or read replica, so it falls behind.

    \b
    Example:
      doops sandbox fault db-lag learnhub-db-ams3
    """
    _apply(app, dir_, faults.DbLag(replica))


@renders(FaultApplied)
@fault.command("app-unhealthy")
@click.argument("app_name", metavar="APP")
@click.option("--component", metavar="C", help="Only this component (default: all).")
@dir_option
@click.pass_obj
def app_unhealthy(app: Cli, app_name: str, component: str | None, dir_: str | None) -> None:
    """Make an app's live server fail its health check (503 on /healthz).

    \b
    Example:
      doops sandbox fault app-unhealthy learnhub-api --component ws
    """
    _apply(app, dir_, faults.AppUnhealthy(app_name, component))


@renders(FaultApplied)
@fault.command("bad-release")
@click.argument("app_name", metavar="APP")
@dir_option
@click.pass_obj
def bad_release(app: Cli, app_name: str, dir_: str | None) -> None:
    """Make APP's next deployment a bad release: it goes ACTIVE, but its live server fails its health paths
    (503) and App Platform health reports no replica ready until a rollback (or `fault clear`) replaces it.

    \b
    Example:
      doops sandbox fault bad-release learnhub-api
      doops app redeploy learnhub-api --yes        # ACTIVE, then unhealthy
      doops app rollback learnhub-api --yes        # back to the release before it, verified
    """
    _apply(app, dir_, faults.BadRelease(app_name))


@renders(FaultApplied)
@fault.command("tls")
@click.argument("app_name", metavar="APP")
@click.option("--max-version", type=click.Choice(faults.Tls.MAX_VERSIONS),
              help="Highest TLS version the HTTPS live URL offers (1.2: a TLS 1.3 handshake is refused).")
@click.option("--expires-in", metavar="DURATION", callback=duration,
              help="Serve a certificate (same CA) that expires this long from now, e.g. 5d.")
@click.option("--no-hsts", is_flag=True, help="Answer HTTPS without the Strict-Transport-Security header.")
@dir_option
@click.pass_obj
def tls(app: Cli, app_name: str, max_version: str | None, expires_in: float | None, no_hsts: bool,
        dir_: str | None) -> None:
    """Degrade APP's HTTPS live URL (`apps_tls` in the sandbox state): offer only TLS 1.2, serve a certificate
    about to expire, or drop HSTS. A second tls fault on APP replaces the first; `fault clear` restores TLS 1.3,
    the normal certificate and HSTS.

    \b
    Example:
      doops sandbox fault tls learnhub-api --max-version 1.2 --expires-in 5d --no-hsts
    """
    if max_version is None and expires_in is None and not no_hsts:
        raise UsageError("sandbox fault tls needs at least one of --max-version, --expires-in, --no-hsts",
                         hint="e.g. doops sandbox fault tls APP --max-version 1.2")
    if expires_in is not None and expires_in > 825 * 86400:
        raise click.BadParameter("at most 825d (the longest a server certificate may be valid)",
                                 param_hint="--expires-in")
    _apply(app, dir_, faults.Tls(app_name, max_version, expires_in, not no_hsts))


@renders(FaultApplied)
@fault.command("spaces-replication")
@click.argument("action", type=click.Choice(faults.SpacesReplication.ACTIONS))
@dir_option
@click.pass_obj
def spaces_replication(app: Cli, action: str, dir_: str | None) -> None:
    """Pause or resume replication from learnhub-media to learnhub-media-ams3.

    \b
    Example:
      doops sandbox fault spaces-replication pause
    """
    _apply(app, dir_, faults.SpacesReplication(action))


@renders(FaultApplied)
@fault.command("clear")
@dir_option
@click.pass_obj
def clear(app: Cli, dir_: str | None) -> None:
    """Remove every fault (a killed database server stays stopped).

    \b
    Example:
      doops sandbox fault clear
    """
    _apply(app, dir_, faults.Clear())


class _progress:
    """A spinner on stderr when it is a terminal; silent otherwise."""

    def __init__(self, app: Cli, text: str) -> None:
        self.text = text
        self.status: Any = None
        self.enabled = sys.stderr.isatty()

    def __enter__(self) -> _progress:
        if self.enabled:
            from rich.console import Console

            self.status = Console(stderr=True).status(self.text)
            self.status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)
