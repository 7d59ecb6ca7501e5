"""`doops app`: roll back a bad release, redeploy, restart components, read the deployment history; every
action followed to ACTIVE, verified where users meet the app, and measured against the compute RTO."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from doops.cli.context import Cli
from doops.cli.params import duration, renders
from doops.cli.progress import StderrSink, cancel_on_interrupt
from doops.cli.render import TableSection, View, render
from doops.cli.views import stamp

if TYPE_CHECKING:
    from doops.ops.app import AppResult


# -- views ----------------------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f}s"


def _result_tables(r: Any) -> list[TableSection]:
    rows: list[list[Any]] = [["action", r.action], ["app", r.app], ["outcome", r.outcome.value]]
    rows += [["from deployment", r.from_deployment or "-"], ["to deployment", r.to_deployment or "-"]]
    if r.deployment and r.deployment != r.to_deployment:
        rows.append(["rollback deployment", r.deployment])
    if r.components:
        rows.append(["components", ", ".join(r.components)])
    if r.force_build:
        rows.append(["force build", "yes"])
    if r.resumed:
        rows.append(["resumed", "yes: followed what an earlier run started"])
    if not r.dry_run and r.timings.requested is not None:
        t = r.timings
        rows += [["requested", stamp(t.requested)], ["active", stamp(t.active) or "-"],
                 ["healthy", stamp(t.healthy) or "-"], ["RTO", _seconds(r.rto_seconds)],
                 ["RTO target", f"{r.rto_target_seconds:.0f}s"],
                 ["met", "-" if r.met is None else ("yes" if r.met else "NO")]]
    if r.action == "rollback" and r.deployment:
        rows += [["committed", "yes" if r.committed else "no"], ["pinned", "yes" if r.pinned else "no"]]
        if r.reverted:
            rows.append(["reverted", f"yes (deployment {r.revert_deployment})"])
    sections = [TableSection(title=f"{r.action} {r.app}", columns=["field", "value"], rows=rows,
                             styles={"NO": "bold red", "yes": "green"})]
    if r.phases:
        sections.append(TableSection(title="phases", columns=["phase", "at"],
                                     rows=[[p.phase, stamp(p.at)] for p in r.phases]))
    if r.health.components:
        sections.append(TableSection(
            title="App Platform health", columns=["component", "state", "replicas"],
            rows=[[c.name, c.state, f"{c.replicas_ready}/{c.replicas_desired}"] for c in r.health.components],
            styles={"HEALTHY": "green", "UNHEALTHY": "bold red"}))
    live = r.health.live_url
    if live.last_status:
        sections.append(TableSection(
            title=f"live URL {live.url} ({live.in_a_row}/{live.required} answers 200 in a row)",
            columns=["path", "status"],
            rows=[[p, s if s is not None else "no answer"] for p, s in live.last_status.items()]))
    if r.warnings:
        sections.append(TableSection(title="warnings", columns=["warning"], rows=[[w] for w in r.warnings]))
    if r.next_steps:
        sections.append(TableSection(title="next steps", columns=["step"], rows=[[s] for s in r.next_steps]))
    return sections


APP_RESULT = View(("field", "value", "phase", "at", "component", "state", "replicas", "path", "status", "warning",
                   "step"), _result_tables)


def _deployments_tables(h: Any) -> list[TableSection]:
    title = f"deployments of {h.app}, newest first" + (f" (pinned to {h.pinned_deployment})"
                                                       if h.pinned_deployment else "")
    return [TableSection(
        title=title, columns=["id", "cause", "phase", "created", "active_for"],
        rows=[[d.id + (" (pinned)" if d.pinned else ""), d.cause, d.phase, stamp(d.created),
               _active_for(d.active_seconds)] for d in h.deployments],
        styles={"ACTIVE": "green", "ERROR": "bold red", "CANCELED": "yellow"})]


def _active_for(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from doops.units import format_duration

    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 7200:
        return f"{seconds / 3600:.1f}h"
    return format_duration(seconds)


DEPLOYMENTS = View(("id", "cause", "phase", "created", "active_for"), _deployments_tables)


# -- commands -------------------------------------------------------------------------------------------------


@click.group()
def app() -> None:
    """App Platform: roll back a bad release, redeploy, restart, history; verified, with compute RTO."""


def _needs_terminal(yes: bool, dry_run: bool, what: str) -> None:
    from doops.errors import UsageError

    if not (yes or dry_run or sys.stdin.isatty()):
        raise UsageError(f"refusing to {what} without confirmation: no terminal to ask on",
                         hint="pass --yes" + (", or --dry-run to see the plan" if what == "roll back" else ""))


def _confirm(yes: bool) -> Any:
    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    return confirm


@renders(APP_RESULT)
@app.command("rollback")
@click.argument("app_name", metavar="APP")
@click.option("--to", "to", metavar="DEPLOYMENT", help="The deployment to roll back to (an id or a unique prefix).")
@click.option("--previous", is_flag=True, help="Roll back to the deployment active before the current one "
                                               "(the default).")
@click.option("--commit/--no-commit", default=True, show_default=True,
              help="Commit the rollback (unpin the app) once it is verified healthy.")
@click.option("--rto", callback=duration, metavar="DURATION",
              help="Compute recovery-time objective (default: the config's objectives.compute_rto, 5m).")
@click.option("--timeout", default="10m", show_default=True, callback=duration, metavar="DURATION",
              help="How long to wait, from the request, for the rollback to be verified healthy.")
@click.option("--dry-run", is_flag=True, help="Find the app and the target and print the plan; send no POST.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation; revert at once if verification fails.")
@click.pass_obj
def rollback_cmd(cli: Cli, app_name: str, to: str | None, previous: bool, commit: bool, rto: float | None,
                 timeout: float, dry_run: bool, yes: bool) -> AppResult:
    """Roll APP back to an earlier deployment, verify it healthy, measure the compute RTO, commit it.

    POST .../rollback/validate first (its warnings are shown; `valid: false` refuses, nothing changed), a
    confirmation naming both deployments, then POST .../rollback. doops follows the new deployment through
    its phases, then verifies: the deployment is ACTIVE, App Platform health has every component's replicas
    ready, and each health path of the live URL (the app spec's health_check.http_path under its route, else
    /) answers 200 three times in a row. Verified: the rollback is committed (--no-commit keeps the app
    pinned). Not verified within --timeout: doops offers to revert it (at once with --yes). RTO is request
    to verified healthy. A re-run while the app is pinned to a rollback follows and verifies that one, never
    sending a second. Exit 0 verified and RTO met; 2 refused, not verified, or RTO missed; 4 bad input (an
    unknown app or deployment); 130 interrupted. Every run is audited.

    \b
    Example:
      doops app rollback learnhub-api --dry-run
      doops app rollback learnhub-api --yes -o json
      doops app rollback learnhub-api --to 3aa4d20e --rto 3m --no-commit
    """
    from doops.errors import UsageError
    from doops.ops.app import RollbackOptions
    from doops.ops.app import rollback as run

    if to is not None and previous:
        raise UsageError("give at most one of --to DEPLOYMENT and --previous", hint="--previous is the default")
    if to is not None and not to.strip():
        raise click.BadParameter("empty deployment id", param_hint="'--to'")
    _ = cli.platform.config  # a missing or invalid explicit config is bad input (exit 4) before anything runs
    _needs_terminal(yes, dry_run, "roll back")
    opts = RollbackOptions(app=app_name, to=to.strip() if to else None, commit=commit, rto_seconds=rto,
                           timeout_seconds=timeout, dry_run=dry_run)
    with cancel_on_interrupt() as cancel:
        result = run(cli.platform, opts, confirm=_confirm(yes), events=StderrSink(cli.output.color), cancel=cancel)
    render(result, cli.output, APP_RESULT)
    return result


@renders(APP_RESULT)
@app.command("redeploy")
@click.argument("app_name", metavar="APP")
@click.option("--force-build", is_flag=True, help="Rebuild from source even if a cached build could be reused.")
@click.option("--rto", callback=duration, metavar="DURATION",
              help="Compute recovery-time objective (default: the config's objectives.compute_rto, 5m).")
@click.option("--timeout", default="10m", show_default=True, callback=duration, metavar="DURATION",
              help="How long to wait, from the request, for the deployment to be verified healthy.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_obj
def redeploy_cmd(cli: Cli, app_name: str, force_build: bool, rto: float | None, timeout: float,
                 yes: bool) -> AppResult:
    """Deploy APP's current spec again (POST .../deployments), follow it and verify it healthy, with its RTO.

    Refused while the app is pinned to a rollback or a deployment is already in progress. Verification as for
    `doops app rollback`. Exit 0 verified and RTO met; 2 refused, not verified or RTO missed; 4 bad input.

    \b
    Example:
      doops app redeploy learnhub-api --yes
      doops app redeploy learnhub-api --force-build --timeout 20m -o json
    """
    from doops.ops.app import RedeployOptions, redeploy

    _ = cli.platform.config
    _needs_terminal(yes, False, "redeploy")
    opts = RedeployOptions(app=app_name, force_build=force_build, rto_seconds=rto, timeout_seconds=timeout)
    with cancel_on_interrupt() as cancel:
        result = redeploy(cli.platform, opts, confirm=_confirm(yes), events=StderrSink(cli.output.color),
                          cancel=cancel)
    render(result, cli.output, APP_RESULT)
    return result


@renders(APP_RESULT)
@app.command("restart")
@click.argument("app_name", metavar="APP")
@click.option("--component", "components", multiple=True, metavar="C",
              help="A component to restart (repeatable; default: every component).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.pass_obj
def restart_cmd(cli: Cli, app_name: str, components: tuple[str, ...], yes: bool) -> AppResult:
    """A rolling restart of APP's components (POST .../restart), followed and verified healthy (10 minutes
    at most), with the time it took against the compute RTO.

    An unknown component is bad input (exit 4), found before anything is sent.

    \b
    Example:
      doops app restart learnhub-api --component ws --yes
      doops app restart learnhub-api --yes -o json
    """
    from doops.ops.app import RestartOptions, restart

    if any(not c.strip() for c in components):
        raise click.BadParameter("empty component name", param_hint="'--component'")
    _ = cli.platform.config
    _needs_terminal(yes, False, "restart")
    opts = RestartOptions(app=app_name, components=[c.strip() for c in components])
    with cancel_on_interrupt() as cancel:
        result = restart(cli.platform, opts, confirm=_confirm(yes), events=StderrSink(cli.output.color),
                         cancel=cancel)
    render(result, cli.output, APP_RESULT)
    return result


@renders(DEPLOYMENTS)
@app.command("deployments")
@click.argument("app_name", metavar="APP")
@click.pass_obj
def deployments_cmd(cli: Cli, app_name: str) -> None:
    """APP's deployment history, newest first: id, cause, phase, created, and how long it was active.

    \b
    Example:
      doops app deployments learnhub-api
      doops app deployments learnhub-api -o json | jq -r '.deployments[1].id'   # the previous one
    """
    from doops.ops.app import deployments

    render(deployments(cli.platform, app_name), cli.output, DEPLOYMENTS)
