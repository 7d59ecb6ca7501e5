"""`doops db`: point-in-time recovery into a new cluster, and the restore window."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.progress import StderrSink, cancel_on_interrupt
from doops.cli.render import render
from doops.cli.views import BACKUPS, PITR

if TYPE_CHECKING:
    from doops.ops.pitr import PitrResult


@click.group()
def db() -> None:
    """Managed PostgreSQL: point-in-time recovery and its restore window."""


def _point(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """--to: RFC 3339 or relative (-15m, 2h ago); a point in the future is refused by the pre-checks with the
    window explained, so only the form is checked here."""
    if value is None:
        return None
    from doops.times import parse_point_in_time

    try:
        return parse_point_in_time(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@renders(PITR)
@db.command("pitr")
@click.argument("cluster", required=False)
@click.option("--to", "to", callback=_point, metavar="TIME",
              help="The point in time: RFC 3339 (2026-11-26T14:01:00Z) or relative (-15m, '2h ago').")
@click.option("--latest", is_flag=True, help="Restore to the newest point the archived WAL reaches (now).")
@click.option("--name", metavar="NEW", help="Name of the new cluster (default <cluster>-pitr-<yyyymmdd-hhmm>).")
@click.option("--region", metavar="REGION", help="Region of the new cluster (default: the source's).")
@click.option("--size", metavar="SLUG", help="Size of the new cluster (default: the source's; smaller for drills).")
@click.option("--nodes", type=click.IntRange(1, 3), help="Node count of the new cluster (default: the source's).")
@click.option("--verify-sql", "verify_sql", multiple=True, metavar="SQL",
              help="A query whose first row's first column must be true or non-zero (repeatable).")
@click.option("--rto", callback=duration, metavar="DURATION",
              help="Restore-time objective (default: the config's objectives.database_rto).")
@click.option("--rpo", callback=duration, metavar="DURATION",
              help="How far before TIME the restore may land (default: objectives.database_rpo).")
@click.option("--timeout", default="60m", show_default=True, callback=duration, metavar="DURATION",
              help="How long to wait for the new cluster to be online.")
@click.option("--cleanup", is_flag=True, help="Delete the restored cluster after verification (drills).")
@click.option("--dry-run", is_flag=True, help="Run every pre-check and print the plan; send no write.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_obj
def pitr(app: Cli, cluster: str | None, to: datetime | None, latest: bool, name: str | None, region: str | None,
         size: str | None, nodes: int | None, verify_sql: tuple[str, ...], rto: float | None, rpo: float | None,
         timeout: float, cleanup: bool, dry_run: bool, yes: bool) -> PitrResult:
    """Restore CLUSTER as it was at TIME into a new cluster, verify it with SQL, measure RTO and RPO.

    Pre-checks (the source exists, TIME inside the restore window, the new name free), a plan with the
    point in UTC and local time and what the new cluster costs while it runs, a confirmation naming them,
    then one POST /v2/databases with backup_restore. doops waits until the cluster is online, connects with
    TLS, proves a write (rolled back), finds the restore point in the heartbeat table and runs each
    --verify-sql. Exit 0 restored, verified and objectives met; 2 refused, verification failed or an
    objective missed; 4 bad input; 130 interrupted (run it again to wait and verify). Every run is audited.

    \b
    Example:
      doops db pitr --to -15m --dry-run
      doops db pitr learnhub-db --to 2026-11-26T14:01:00Z --verify-sql 'select count(*) > 0 from enrollments'
      doops db pitr --latest --size db-s-1vcpu-1gb --cleanup --yes -o json    # a restore drill
    """
    from doops.errors import UsageError
    from doops.ops.pitr import PitrOptions
    from doops.ops.pitr import pitr as run

    if (to is None) == (not latest):
        raise UsageError("give exactly one of --to TIME and --latest", hint="e.g. --to -15m, or --latest")
    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4) before anything runs
    if not (yes or dry_run or sys.stdin.isatty()):
        raise UsageError("refusing to restore without confirmation: no terminal to ask on",
                         hint="pass --yes, or --dry-run to see the plan")
    opts = PitrOptions(cluster=cluster, to=to, latest=latest, name=name, region=region, size=size, nodes=nodes,
                       verify_sql=list(verify_sql), rto_seconds=rto, rpo_seconds=rpo, timeout_seconds=timeout,
                       cleanup=cleanup, dry_run=dry_run)

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    with cancel_on_interrupt() as cancel:
        result = run(app.platform, opts, confirm=confirm, events=StderrSink(app.output.color), cancel=cancel)
    render(result, app.output, PITR)
    return result


@renders(BACKUPS)
@db.command("backups")
@click.argument("cluster", required=False)
@click.pass_obj
def backups_cmd(app: Cli, cluster: str | None) -> None:
    """The restore window of CLUSTER: the oldest and latest point a restore can reach, and its backups.

    \b
    Example:
      doops db backups
      doops db backups learnhub-db -o json
    """
    from doops.ops.pitr import backups

    render(backups(app.platform, cluster), app.output, BACKUPS)
