"""`doops cdn`: purge CDN paths within DigitalOcean's limits and prove the edge serves the new files."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.progress import StderrSink, cancel_on_interrupt
from doops.cli.render import TableSection, View, render

if TYPE_CHECKING:
    from doops.ops.cdn import PurgeResult


def _purge_tables(r: Any) -> list[TableSection]:
    from doops.cli.views import stamp

    ep = r.endpoint
    rows: list[list[Any]] = []
    if ep is not None:
        rows += [["endpoint", f"{ep.endpoint} ({ep.id})"], ["origin", ep.origin]]
        if ep.custom_domain:
            rows.append(["custom domain", ep.custom_domain])
    rows += [["paths asked", r.requested], ["file strings", len(r.files)]]
    rows += [["folded", f"{d}* stands for {n} paths (everything under {d} is purged)"] for d, n in r.folded.items()]
    if r.dropped:
        rows.append(["under a wildcard", f"{len(r.dropped)} path(s) not sent"])
    rows += [["batches", len(r.batches)], ["ETA", f"{r.eta_seconds:.1f}s"],
             ["duration", f"{r.duration_seconds:.1f}s"], ["outcome", r.outcome.value]]
    sections = [TableSection(title="cdn purge", columns=["field", "value"], rows=rows,
                             styles={"ok": "green", "dry_run": "cyan"})]
    sections.append(TableSection(
        title="batches", columns=["batch", "files", "sent_at", "status"],
        rows=[[n, _files(b.files), stamp(b.sent_at) if b.sent_at else f"+{b.planned_offset:.1f}s (plan)", b.status]
              for n, b in enumerate(r.batches, 1)],
        styles={"sent": "green", "refused": "bold red", "not sent": "yellow"}))
    if r.verification:
        sections.append(TableSection(
            title="verification: the edge against the origin",
            columns=["path", "state", "edge_etag", "origin_etag", "cache", "url"],
            rows=[[c.path, c.state, c.edge_etag, c.origin_etag, c.cache, c.url] for c in r.verification],
            styles={"fresh": "green", "stale": "bold red", "error": "bold red", "missing": "yellow"}))
    return sections


def _files(files: list[str]) -> str:
    head = ", ".join(files[:3])
    return f"{len(files)}: {head}" + (", ..." if len(files) > 3 else "")


PURGE = View(("field", "value", "batch", "files", "sent_at", "status", "path", "state", "edge_etag", "origin_etag",
              "cache", "url"), _purge_tables)


@click.group()
def cdn() -> None:
    """The CDN in front of Spaces: purges that prove the edge serves the new files."""


def _read_paths(source: str) -> list[str]:
    """--from-file: one path a line; blank lines and lines starting with # are skipped."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}",
                                 param_hint="--from-file") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@renders(PURGE)
@cdn.command("purge")
@click.argument("args", nargs=-1, metavar="[ENDPOINT] PATH...")
@click.option("--all", "purge_all", is_flag=True, help="Purge everything cached ('*'); asks first.")
@click.option("--from-file", "from_file", metavar="FILE|-", help="Read paths from FILE (one a line), or stdin with -.")
@click.option("--fold", type=click.IntRange(min=1), metavar="N",
              help="Where more than N paths share a directory, purge dir/* instead (faster; purges more).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Fetch each purged file through the CDN and compare it with the origin.")
@click.option("--wait", "wait", default="60s", show_default=True, callback=duration, metavar="DURATION",
              help="How long stale files are checked again before verification fails.")
@click.option("--dry-run", is_flag=True, help="Resolve the endpoint and print the plan and ETA; purge nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_obj
def purge_cmd(app: Cli, args: tuple[str, ...], purge_all: bool, from_file: str | None, fold: int | None,
              verify: bool, wait: float, dry_run: bool, yes: bool) -> PurgeResult:
    """Purge PATHs from a CDN endpoint within DigitalOcean's limits, then prove the edge serves the new files.

    ENDPOINT is an endpoint's id, origin, hostname, custom domain or bucket name; leave it out when the
    account has one endpoint. PATHs: leading / optional, URL-encoding normalised, duplicates and paths under
    a wildcard of the same request dropped; 'dir/*' purges a directory, '*' (or --all) everything.
    DigitalOcean allows 50 file strings per 20 s per endpoint and 5 CDN calls per 10 s: doops sends batches
    at that pace (the ETA is shown first; 10,000 paths take over an hour unless --fold folds them) and waits
    out any 429. Verification GETs each purged file (up to 20 sampled under each wildcard) through the CDN
    and HEADs it at the origin: the same ETag (or Last-Modified and length) is fresh. Exit 0 all fresh,
    2 a file still stale after --wait or a batch refused, 4 bad input, 130 interrupted. Every run is audited.

    \b
    Example:
      doops cdn purge static/app.js static/app.css
      doops cdn purge learnhub-media 'static/*' --wait 2m
      doops cdn purge --from-file changed.txt --fold 20 --yes -o json
      doops cdn purge --all --dry-run
    """
    from doops.errors import UsageError
    from doops.ops.cdn import PurgeOptions
    from doops.ops.cdn import purge as run

    paths = list(args)
    if from_file is not None:
        if from_file == "-" and not (yes or dry_run):
            raise UsageError("paths come from stdin: no terminal is left to confirm on",
                             hint="pass --yes, or --dry-run to see the plan")
        paths += _read_paths(from_file)
    if not paths and not purge_all:
        raise UsageError("no path to purge", hint="give PATH..., --from-file FILE, or --all")
    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4) before anything runs
    if not (yes or dry_run or sys.stdin.isatty()):
        raise UsageError("refusing to purge without confirmation: no terminal to ask on",
                         hint="pass --yes, or --dry-run to see the plan")
    # With --from-file only a positional argument may name the endpoint, never the file's first line.
    opts = PurgeOptions(paths=paths, first_may_be_endpoint=bool(args), purge_all=purge_all, fold=fold, verify=verify,
                        wait_seconds=wait, dry_run=dry_run)

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    sink = StderrSink(app.output.color)
    with cancel_on_interrupt() as cancel:
        try:
            result = run(app.platform, opts, confirm=confirm, events=sink, cancel=cancel)
        finally:
            sink.close()  # the progress bar, if a terminal showed one
    render(result, app.output, PURGE)
    return result
