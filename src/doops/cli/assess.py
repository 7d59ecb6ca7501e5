"""`doops assess`: resilience and security posture, and what each recovery objective can count on."""

from __future__ import annotations

import json
from typing import Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.render import TableSection, View, render

SEVERITY_STYLES = {"crit": "bold red", "warn": "yellow", "info": "dim", "yes": "green", "no": "bold red",
                   "unproven": "yellow", "unknown": "magenta"}


def _evidence(ev: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str) if isinstance(v, dict | list) else v}" for k, v in ev.items())


def _assess_tables(r: Any) -> list[TableSection]:
    counts = r.counts()
    sections = [TableSection(
        title=f"findings: {counts['crit']} crit, {counts['warn']} warn, {counts['info']} info "
              f"({', '.join(r.areas)}; {sum(r.rules_evaluated.values())} rule evaluations)",
        columns=["severity", "area", "rule", "resource", "summary", "evidence", "fix"],
        rows=[[f.severity.value, f.area, f.rule, f.resource, f.summary, _evidence(f.evidence), f.fix]
              for f in r.findings],
        styles=SEVERITY_STYLES)]
    if r.objectives:
        sections.append(TableSection(
            title="recovery objectives: what the deployment supports",
            columns=["objective", "target", "achievable", "supports"],
            rows=[[o.objective, o.target, o.achievable, o.supports] for o in r.objectives],
            styles=SEVERITY_STYLES))
    return sections


ASSESS = View(("severity", "area", "rule", "resource", "summary", "evidence", "fix", "objective", "target",
               "achievable", "supports"), _assess_tables)


@renders(ASSESS)
@click.command("assess")
@click.argument("areas", nargs=-1, metavar="[resilience|security]...")
@click.option("--fail-on", type=click.Choice(["warn", "crit"]), default="crit", show_default=True,
              help="Exit 2 when a finding is at or above this severity.")
@click.option("--timeout", default="60s", show_default=True, metavar="DURATION",
              callback=duration,
              help="Return by then: what is not read is 'not assessed'.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Reads in parallel.")
@click.pass_obj
def assess(app: Cli, areas: tuple[str, ...], fail_on: str, timeout: float, concurrency: int) -> None:
    """Can the platform meet its objectives as it is deployed, and where is it exposed?

    Each finding: area, resource, rule (stable id, see docs/assess.md), severity (info|warn|crit), the
    measured evidence and a one-line fix. Then one row per recovery objective (compute, database, storage,
    DNS): what the deployment supports, or why not. A rule whose input is not configured or not readable is
    info "not assessed". Read-only: no request changes anything.
    Exit 0 when no finding is at or above --fail-on (default crit), 2 otherwise, 4 bad input.

    \b
    Example:
      doops assess
      doops assess security --fail-on warn
      doops assess -o markdown > posture.md
      doops assess -o json | jq '.findings[] | select(.severity == "crit")'
    """
    from doops.ops.assess import AssessOptions, assess, validate

    opts = AssessOptions(areas=list(areas), fail_on=fail_on, concurrency=concurrency, timeout=timeout)
    validate(opts)  # bad areas are exit 4 before any request
    _ = app.platform.config  # a missing or invalid explicit config is bad input (exit 4)
    app.platform.check_inputs()
    result = assess(app.platform, opts)
    render(result, app.output, ASSESS)
    raise click.exceptions.Exit(2 if result.failed else 0)
