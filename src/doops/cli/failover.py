"""`doops failover db`: promote a read replica safely, prove it takes writes, measure the RTO."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, past_time, renders
from doops.cli.progress import StderrSink, cancel_on_interrupt
from doops.cli.render import TableSection, View, render
from doops.cli.views import FAILOVER

if TYPE_CHECKING:
    from doops.ops.failover import FailoverResult
    from doops.ops.failover_app import AppFailoverResult


def _max_lag(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    """--max-lag 2MiB --max-lag 10s: a size needs a byte unit (B, kB, KiB, MB, MiB...), a duration ms/s/m/h.

    Sizes and durations follow the one rule of doops.units: greater than zero."""
    import re

    from doops.units import parse_duration, parse_size

    out: dict[str, float] = {}
    for v in values:
        text = v.strip()
        try:
            if re.fullmatch(r"\d+(\.\d+)?\s*(ms|s|m|h)", text):
                out["seconds"] = parse_duration(text)
            elif re.fullmatch(r"\d+(\.\d+)?\s*([kKmMgG]i?)?[bB]", text):
                out["bytes"] = float(parse_size(text))
            else:
                raise ValueError(f"{v!r} is neither a size (e.g. 1MiB, 512kB) nor a duration (e.g. 5s, 500ms)")
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return out


@click.group()
def failover() -> None:
    """Fail over a component to its standby in another region."""


@renders(FAILOVER)
@failover.command("db")
@click.argument("cluster", required=False)
@click.option("--region", required=True, help="Region of the read replica to promote (e.g. ams3).")
@click.option("--replica", metavar="NAME", help="The replica, when the region has more than one.")
@click.option("--max-lag", "max_lag", multiple=True, callback=_max_lag, metavar="SIZE|DURATION",
              help="Refuse when the replica is further behind (default: the config's thresholds, which "
                   "`doops status` judges by, 1MiB and 5s; repeat for both).")
@click.option("--accept-data-loss", is_flag=True,
              help="Promote even when the lag is over the limit or cannot be measured (primary down).")
@click.option("--rto", callback=duration, metavar="DURATION",
              help="Recovery time objective to meet (default: the config's objectives.database_rto, 2m).")
@click.option("--timeout", default="10m", show_default=True, callback=duration, metavar="DURATION",
              help="How long to wait for the new primary to take writes.")
@click.option("--detected-at", callback=past_time, metavar="TIME",
              help="When the failure was detected (RFC 3339, not in the future): the RTO is measured from it.")
@click.option("--dry-run", is_flag=True, help="Run every pre-check, print the plan, send no write.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_obj
def db(app: Cli, cluster: str | None, region: str, replica: str | None, max_lag: dict[str, float],
       accept_data_loss: bool, rto: float | None, timeout: float, detected_at: datetime | None, dry_run: bool,
       yes: bool) -> FailoverResult:
    """Promote the read replica of CLUSTER in REGION to a standalone primary, and prove it takes writes.

    Pre-checks (replica online, primary reachable, lag measured on the servers within --max-lag, no other
    failover running), a topology table, a confirmation naming cluster and replica, then
    one PUT .../promote; doops polls the API and the server until the new primary accepts a write and
    reports RTO = writable - promote sent. Exit 0 done and RTO met, 2 refused, failed or RTO missed,
    4 bad input (also: no terminal and no --yes), 130 interrupted. Every run, dry or real, is audited in
    $XDG_STATE_HOME/doops/audit.jsonl. Run again after an interruption: it verifies and reports.

    \b
    Example:
      doops failover db --region ams3 --dry-run
      doops failover db learnhub-db --region ams3 --yes -o json
      doops failover db --region ams3 --accept-data-loss --yes   # primary down
    """
    from doops.errors import UsageError
    from doops.ops.failover import FailoverOptions
    from doops.ops.failover import failover as run

    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4) before anything runs
    opts = FailoverOptions(
        cluster=cluster, region=region, replica=replica,
        max_lag_bytes=int(max_lag["bytes"]) if "bytes" in max_lag else None,
        max_lag_seconds=max_lag.get("seconds"),
        accept_data_loss=accept_data_loss, rto_seconds=rto, timeout_seconds=timeout,
        dry_run=dry_run, detected_at=detected_at,
    )
    if not (yes or dry_run or sys.stdin.isatty()):
        # Decided before anything is sent: a script that forgot --yes must not half-run.
        raise UsageError("refusing to promote without confirmation: no terminal to ask on",
                         hint="pass --yes, or --dry-run to see the plan")

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    with cancel_on_interrupt() as cancel:
        result = run(app.platform, opts, confirm=confirm, events=StderrSink(app.output.color), cancel=cancel)
    render(result, app.output, FAILOVER)
    return result


# -- failover app ---------------------------------------------------------------------------------------------


def _app_failover_tables(r: Any) -> list[TableSection]:
    from doops.cli.views import stamp

    rc = r.record
    sections = [TableSection(
        title=f"pre-checks: {rc.name} -> {r.standby} ({r.region})", columns=["check", "ok", "detail"],
        rows=[[p.name, "ok" if p.ok else ("FAIL" if p.blocking else "no (warn)"), p.detail] for p in r.prechecks],
        styles={"ok": "green", "FAIL": "bold red", "no (warn)": "yellow"})]
    if r.nameservers:
        sections.append(TableSection(
            title="authoritative name servers", columns=["server", "answer", "ttl", "changed_at"],
            rows=[[n.server, ", ".join(n.answer or []) or n.error or "-", n.ttl, stamp(n.changed_at)]
                  for n in r.nameservers]))
    t = r.timings
    rows: list[list[Any]] = [
        ["outcome", r.outcome.value], ["app", r.app], ["standby", r.standby],
        ["record", f"{rc.name} {rc.type} TTL {rc.ttl if rc.ttl is not None else '?'}s"],
        ["old", rc.old], ["new", rc.new]]
    if r.already_pointing:
        rows.append(["already pointing", "yes: verified only, nothing sent"])
    if not r.dry_run:
        rows += [["requested", stamp(t.requested)], ["dns switched", stamp(t.dns_switched)],
                 ["standby verified", stamp(t.standby_verified)], ["standby url", r.standby_url],
                 ["DNS RTO", "-" if r.dns_switched_seconds is None else f"{r.dns_switched_seconds:.2f}s"],
                 ["DNS RTO target", f"{r.dns_rto_target_seconds:g}s"],
                 ["clients switched by", "-" if r.clients_switched_by_seconds is None
                  else f"{r.clients_switched_by_seconds:.0f}s (DNS + old TTL)"],
                 ["compute RTO target", f"{r.compute_rto_target_seconds:g}s"],
                 ["met", "-" if r.met is None else ("yes" if r.met else "NO")]]
    sections.append(TableSection(title="result", columns=["field", "value"], rows=rows,
                                 styles={"NO": "bold red", "yes": "green"}))
    if r.warnings:
        sections.append(TableSection(title="warnings", columns=["warning"], rows=[[w] for w in r.warnings]))
    return sections


APP_FAILOVER = View(("check", "ok", "detail", "server", "answer", "ttl", "changed_at", "field", "value", "warning"),
                    _app_failover_tables)


@renders(APP_FAILOVER)
@failover.command("app")
@click.option("--region", required=True, help="Region of the standby app: a data center (ams3) or an App "
                                              "Platform region slug (ams).")
@click.option("--app", "app_name", metavar="APP", help="The app whose record moves (default: the app of the "
                                                       "config's one dns.failover_records entry).")
@click.option("--record", metavar="NAME", help="The failover record, e.g. api.learnhub.example (default: the "
                                               "app's one failover record).")
@click.option("--timeout", default="5m", show_default=True, callback=duration, metavar="DURATION",
              help="How long to wait for every name server to answer the new value and the standby to answer.")
@click.option("--dry-run", is_flag=True, help="Run every pre-check, print the plan, send no write.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_obj
def app_cmd(app: Cli, region: str, app_name: str | None, record: str | None, timeout: float, dry_run: bool,
            yes: bool) -> AppFailoverResult:
    """Repoint the app's DNS record at its standby in REGION, verified at every authoritative name server.

    The standby is the app named APP-REGION (learnhub-api-ams3), else the one APP-* app whose App Platform
    region or data centers include REGION. Pre-checks: the standby's deployment is ACTIVE and its health path
    answers 200, the record exists, its TTL is at most objectives.dns_rto (else a warning: clients cache the old
    answer that long). Then one PUT of the record to the standby's default ingress host; doops asks every
    name server of dns.nameservers (never a caching resolver) until each answers it, and requests the standby
    through the new name. RTO two ways: DNS switched (PUT to last server answering) against
    objectives.dns_rto, clients switched by (plus the old TTL) against objectives.compute_rto. A record
    already pointing at the standby is only verified. Exit 0 done and met, 2 refused, not verified or
    objective missed, 4 bad input (unknown app, no standby in REGION; nothing sent), 130 interrupted.

    \b
    Example:
      doops failover app --region ams3 --dry-run
      doops failover app --region ams3 --yes -o json
      doops failover app --app learnhub-api --record api.learnhub.example --region nyc3 --yes   # back
    """
    from doops.errors import UsageError
    from doops.ops.failover_app import AppFailoverOptions, failover_app

    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4) before anything runs
    opts = AppFailoverOptions(region=region.strip(), app=app_name, record=record, timeout_seconds=timeout,
                              dry_run=dry_run)
    if not opts.region:
        raise click.BadParameter("empty region", param_hint="--region")
    if not (yes or dry_run or sys.stdin.isatty()):
        raise UsageError("refusing to repoint DNS without confirmation: no terminal to ask on",
                         hint="pass --yes, or --dry-run to see the plan")

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    with cancel_on_interrupt() as cancel:
        result = failover_app(app.platform, opts, confirm=confirm, events=StderrSink(app.output.color),
                              cancel=cancel)
    render(result, app.output, APP_FAILOVER)
    return result
