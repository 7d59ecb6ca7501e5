"""`doops dns check`: the failover records judged at the authoritative name servers (Nagios exit codes)."""

from __future__ import annotations

from typing import Any

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.render import TableSection, View, render

STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red", "unknown": "magenta", "skipped": "dim"}


def _dns_tables(report: Any) -> list[TableSection]:
    rows = sorted(report.checks, key=lambda c: (-c.status.rank, c.resource, c.check))
    return [
        TableSection(title=f"dns: {report.overall.value} (name servers: {', '.join(report.nameservers)})",
                     columns=["status", "resource", "check", "summary", "ms"],
                     rows=[[c.status.value, c.resource, c.check, c.summary, round(c.duration_ms)] for c in rows],
                     styles=STYLES),
        TableSection(title="", columns=["overall", "checks"], rows=[[report.overall.value, len(report.checks)]],
                     styles=STYLES),
    ]


DNS_CHECK = View(("status", "resource", "check", "summary", "ms", "overall", "checks"), _dns_tables)


@click.group()
def dns() -> None:
    """DNS of the records that front the apps, asked at the authoritative name servers."""


@renders(DNS_CHECK)
@dns.command("check")
@click.pass_obj
def check(app: Cli) -> None:
    """Judge every dns.failover_records entry and its zone; exit 0 ok, 1 warn, 2 crit, 3 unknown.

    Per record: it exists in the API (and whether it points at its app or a standby), its TTL is within
    objectives.dns_rto, every name server of dns.nameservers answers it authoritatively with the API's value,
    its target resolves and the app behind it answers its health path with 200. Per zone: SOA and NS sane
    (authoritative SOA with the same serial everywhere, at least two NS names including the SOA's primary,
    configured name servers given by name among them). No failover records: skipped, exit 0.

    \b
    Example:
      doops dns check
      doops dns check -o json | jq '.checks[] | select(.status != "ok")'
    """
    from doops.ops.dns_check import dns_check

    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4)
    app.platform.check_inputs()  # a malformed token or API URL is exit 4 before any request
    report = dns_check(app.platform)
    render(report, app.output, DNS_CHECK)
    raise click.exceptions.Exit(report.overall.exit_code)
