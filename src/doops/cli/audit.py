"""`doops audit`: read the audit journal that every acting command appends to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.render import render
from doops.cli.views import AUDIT


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A duration back from now (7d, 12h) or an RFC 3339 time."""
    if value is None:
        return None
    from doops.times import parse_rfc3339
    from doops.units import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a duration back from now (e.g. 7d, 12h) nor an RFC 3339 time") from None


@renders(AUDIT)
@click.command("audit")
@click.option("--operation", metavar="NAME", help="Only this action (e.g. 'failover db'; a prefix matches).")
@click.option("--cluster", metavar="NAME", help="Only entries about this cluster or replica.")
@click.option("--since", callback=_since, metavar="DURATION|TIME", help="Only entries since (7d, or RFC 3339).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N entries.")
@click.pass_obj
def audit(app: Cli, operation: str | None, cluster: str | None, since: datetime | None,
          limit: int | None) -> None:
    """Show the audit journal: every failover (dry, refused or done), who ran it, on which API and account,
    and whether it was a sandbox. Reads $XDG_STATE_HOME/doops/audit.jsonl; sends nothing.

    \b
    Example:
      doops audit --since 7d
      doops audit --operation 'failover db' --cluster learnhub-db -o json
    """
    from doops.ops.audit import AuditQuery, read_audit

    render(read_audit(AuditQuery(action=operation, target=cluster, since=since, limit=limit)), app.output, AUDIT)
