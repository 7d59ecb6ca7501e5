"""`doops spaces`: what the replica bucket lacks, and since when (the storage RPO right now)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.progress import StderrSink, cancel_on_interrupt
from doops.cli.render import TableSection, View, render
from doops.cli.views import stamp
from doops.units import format_bytes, format_duration

if TYPE_CHECKING:
    from doops.ops.spaces_gap import GapResult


def _gap_tables(r: Any) -> list[TableSection]:
    checked = f"{r.objects_checked}" + (" (truncated: first window only)" if r.truncated else "")
    rows: list[list[Any]] = [
        ["bucket", r.bucket], ["replica", r.replica], ["prefix", r.prefix or "-"], ["objects checked", checked],
        ["missing", len(r.missing)], ["stale", len(r.stale)], ["extra (deletes not replicated)", len(r.extra)],
        ["bytes at risk", format_bytes(r.bytes_at_risk)],
        ["oldest at risk (RPO now)", format_duration(r.oldest_at_risk_seconds)],
        ["storage RPO target", format_duration(r.rpo_target_seconds)],
        ["met", "yes" if r.met else "NO"], ["outcome", r.outcome.value],
    ]
    columns = ["kind", "key", "size", "last_modified", "age"]

    def row(kind: str, d: Any) -> list[Any]:
        return [kind, d.key, d.size, stamp(d.last_modified), format_duration(d.age_seconds)]

    kinds = {id(d): "stale" for d in r.stale}
    sections = [TableSection(title=f"{r.bucket} -> {r.replica}", columns=["field", "value"], rows=rows,
                             styles={"NO": "bold red", "yes": "green"})]
    if r.at_risk:
        sections.append(TableSection(title="at risk (oldest first)", columns=columns,
                                     rows=[row(kinds.get(id(d), "missing"), d) for d in r.at_risk]))
    if r.extra:
        sections.append(TableSection(title=f"deleted at the primary, still in {r.replica}", columns=columns,
                                     rows=[row("extra", d) for d in r.extra]))
    return sections


GAP = View(("field", "value", "kind", "key", "size", "last_modified", "age"), _gap_tables)


@click.group()
def spaces() -> None:
    """Spaces: what the replica bucket lacks, against the storage RPO."""


@renders(GAP)
@spaces.command("gap")
@click.argument("bucket", required=False)
@click.option("--replica", metavar="BUCKET", help="Replica bucket to compare with (default: the config's replica).")
@click.option("--prefix", default="", metavar="P", help="Compare only keys starting with P.")
@click.option("--max-objects", type=click.IntRange(min=1), metavar="N",
              help="Compare at most N objects of the bucket (default: its compare_limit, 1000).")
@click.pass_obj
def gap_cmd(app: Cli, bucket: str | None, replica: str | None, prefix: str, max_objects: int | None) -> GapResult:
    """Objects of BUCKET its replica lacks (missing) or holds an older version of (stale), their bytes and
    the oldest one's age (the storage RPO right now) against objectives.storage_rpo.

    BUCKET defaults to the one config bucket with a replica. Listings are paginated (1,000 a page) and
    bounded by --max-objects; ETags are compared; deletions not yet replicated are shown apart (extra).
    Exit 0 within the objective, 2 beyond it, 3 a bucket unreachable, 4 bad input.

    \b
    Example:
      doops spaces gap
      doops spaces gap learnhub-media --prefix uploads/ -o json
      doops spaces gap --max-objects 20000 -o json | jq '.oldest_at_risk_seconds'
    """
    from doops.ops.spaces_gap import GapOptions, gap

    opts = GapOptions(bucket=bucket, replica=replica, prefix=prefix, max_objects=max_objects)
    with cancel_on_interrupt() as cancel:
        result = gap(app.platform, opts, events=StderrSink(app.output.color), cancel=cancel)
    render(result, app.output, GAP)
    return result
