"""`doops runbook`: validate, plan, run and list YAML recovery runbooks (the engine is doops.runbook)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.render import TableSection, View, render

if TYPE_CHECKING:
    from doops.runbook.engine import RunbookPlan, RunbookResult


@click.group()
def runbook() -> None:
    """YAML runbooks: recover step by step, verify, roll back, measure RTO and RPO (docs/runbooks.md)."""


# -- results of validate and list ----------------------------------------------------------------------------


@dataclass
class FileCheck:
    file: str
    name: str | None
    valid: bool
    problems: list[Any] = field(default_factory=list)


@dataclass
class Validation:
    files: list[FileCheck]

    @property
    def problem_count(self) -> int:
        return sum(len(f.problems) for f in self.files)


@dataclass
class ListedRunbook:
    file: str
    name: str | None
    description: str
    requires: list[str]
    destructive: list[str]
    valid: bool
    problems: int = 0


@dataclass
class RunbookList:
    searched: list[str]
    runbooks: list[ListedRunbook]


# -- views ---------------------------------------------------------------------------------------------------


def _validation_tables(v: Validation) -> list[TableSection]:
    rows: list[list[Any]] = []
    for f in v.files:
        if not f.problems:
            rows.append([f.file, "ok", f"valid runbook {f.name!r}"])
        for p in f.problems:
            rows.append([p.where, "error", p.message])
    return [TableSection(columns=["where", "result", "message"], rows=rows,
                         styles={"ok": "green", "error": "bold red"})]


VALIDATION = View(("where", "result", "message"), _validation_tables)


def _with_text(values: dict[str, Any]) -> str:
    import json

    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in values.items())


def _plan_tables(p: RunbookPlan) -> list[TableSection]:
    from doops.units import format_duration

    head: list[list[Any]] = [["runbook", p.runbook], ["file", p.file], ["description", p.description],
                             ["api", f"{p.api} ({'a doops sandbox' if p.sandbox else 'not a sandbox'})"]]
    if p.requires:
        head.append(["requires", ", ".join(p.requires)])
    if p.inputs:
        head.append(["inputs", _with_text(p.inputs)])
    head.append(["destructive", ", ".join(p.destructive) or "none"])
    sections = [TableSection(title="plan", columns=["field", "value"], rows=head)]
    sections.append(TableSection(
        title="steps", columns=["section", "step", "kind", "name", "destructive", "with", "expect", "timeout"],
        rows=[[s.section, s.id, s.kind, s.name, s.destructive, _with_text(s.with_), s.expect,
               format_duration(s.timeout_seconds) if s.timeout_seconds else None] for s in p.steps],
        styles={"yes": "yellow"}))
    if p.objectives:
        sections.append(TableSection(
            title="objectives", columns=["objective", "target", "measured between"],
            rows=[[o["name"], format_duration(o["target_seconds"]),
                   f"{o.get('from')} -> {o.get('to')}" if o["kind"] == "time" else o.get("value")]
                  for o in p.objectives]))
    if p.problems:
        sections.append(TableSection(title="unresolved", columns=["problem"], rows=[[x] for x in p.problems]))
    return sections


PLAN = View(("field", "value", "section", "step", "kind", "name", "destructive", "with", "expect", "timeout",
             "objective", "target", "measured between", "problem"), _plan_tables)

STATUS_STYLES = {"ok": "green", "dry_run": "green", "failed": "bold red", "interrupted": "yellow",
                 "skipped": "dim", "yes": "green", "NO": "bold red"}


def _result_tables(r: RunbookResult) -> list[TableSection]:
    data = r.to_data()  # secrets already replaced
    rows: list[list[Any]] = []
    steady = data["steady_state"]
    for section, steps in (("before", steady["before"]), ("steps", data["steps"]),
                           ("rollbacks", data["rollbacks"]), ("after", steady["after"])):
        for s in steps:
            rows.append([section, s["id"], f"{s['kind']} {s['name']}" if s["kind"] != "pause" else "pause",
                         s["status"], s["duration_seconds"], s["error"]])
    sections = [TableSection(title=f"runbook {data['runbook']}" + (" (dry run)" if data["dry_run"] else ""),
                             columns=["section", "step", "kind", "status", "seconds", "error"], rows=rows,
                             styles=STATUS_STYLES)]
    if data["objectives"]:
        sections.append(TableSection(
            title="objectives", columns=["objective", "target", "measured", "met"],
            rows=[[o["name"], o["target_seconds"], o["measured_seconds"],
                   "-" if o["met"] is None else ("yes" if o["met"] else "NO")] for o in data["objectives"]],
            styles=STATUS_STYLES))
    sections.append(TableSection(title="", columns=["field", "value"], rows=[
        ["outcome", data["outcome"]], ["started", data["started_at"]], ["ended", data["ended_at"]],
        ["message", data["message"]]]))
    return sections


RESULT = View(("section", "step", "kind", "status", "seconds", "error", "objective", "target", "measured", "met",
               "field", "value"), _result_tables)


def _list_tables(rl: RunbookList) -> list[TableSection]:
    return [TableSection(
        title="runbooks in " + ", ".join(rl.searched),
        columns=["name", "file", "requires", "destructive", "valid", "description"],
        rows=[[r.name, r.file, r.requires, r.destructive or "none",
               "yes" if r.valid else f"NO ({r.problems} problem{'s' if r.problems != 1 else ''})", r.description]
              for r in rl.runbooks],
        styles={"yes": "green"})]


LIST = View(("name", "file", "requires", "destructive", "valid", "description"), _list_tables)


# -- option parsers ------------------------------------------------------------------------------------------


def _inputs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE (e.g. --input region=ams3)")
        if key in out:
            raise click.BadParameter(f"input {key!r} given twice")
        out[key] = value
    return out


def _reports(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, Path]]:
    from doops.runbook.report import parse_spec

    out = [parse_spec(v) for v in values]
    paths = [p.resolve() for _, p in out]
    if len(set(paths)) != len(paths):
        raise click.BadParameter("two reports name the same file")
    return out


def _write_reports(result: RunbookResult, reports: list[tuple[str, Path]]) -> None:
    from doops.runbook.report import write

    data = result.to_data()
    for fmt, path in reports:
        write(data, fmt, path)


# -- commands ------------------------------------------------------------------------------------------------


@renders(VALIDATION)
@runbook.command("validate")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.pass_obj
def validate_cmd(app: Cli, files: tuple[str, ...]) -> None:
    """Check runbook files without running anything: every problem, each at FILE:LINE:COL.

    Checks the YAML, every key, actions and probes and their parameters, durations, and every ${{ }}
    reference (an earlier step's output, a declared input, a path in the config). Exit 0 all valid, 4 any
    problem (all of them listed).

    \b
    Example:
      doops runbook validate runbooks/*.yaml
    """
    from doops.errors import UsageError
    from doops.runbook.validate import Catalog, check_file

    config = app.platform.config
    catalog = Catalog.default()
    checks = []
    for f in files:
        c = check_file(f, config=config, catalog=catalog)
        checks.append(FileCheck(f, c.runbook.name if c.runbook else None, c.ok, c.problems))
    result = Validation(checks)
    render(result, app.output, VALIDATION)
    if result.problem_count:
        bad = sum(1 for c in checks if not c.valid)
        raise UsageError(f"{result.problem_count} problem{'s' if result.problem_count > 1 else ''} in {bad} "
                         f"runbook{'s' if bad > 1 else ''}; the first: {checks_first(checks)}",
                         hint="fix them and validate again")


def checks_first(checks: list[FileCheck]) -> str:
    return next(str(p) for c in checks for p in c.problems)


@renders(PLAN)
@runbook.command("plan")
@click.argument("file", metavar="FILE")
@click.option("--input", "inputs", multiple=True, callback=_inputs, metavar="NAME=VALUE",
              help="A value for one of the runbook's inputs (repeatable).")
@click.pass_obj
def plan_cmd(app: Cli, file: str, inputs: dict[str, str]) -> None:
    """Show what `run` would do: the steps with every reference resolved that can be known now, the
    destructive steps, the objectives. Runs nothing and sends nothing.

    Outputs of earlier steps show as <steps.ID.outputs.PATH>; environment values as ***.

    \b
    Example:
      doops runbook plan runbooks/db-regional-failover.yaml --input region=ams3
    """
    from doops.runbook.engine import plan_runbook
    from doops.runbook.validate import Catalog, load

    catalog = Catalog.default()
    rb = load(file, config=app.platform.config, catalog=catalog)
    render(plan_runbook(app.platform, rb, inputs, registry=catalog), app.output, PLAN)


@renders(RESULT)
@runbook.command("run")
@click.argument("file", metavar="FILE")
@click.option("--input", "inputs", multiple=True, callback=_inputs, metavar="NAME=VALUE",
              help="A value for one of the runbook's inputs (repeatable).")
@click.option("--dry-run", is_flag=True,
              help="Check the steady state and run each action in its own dry-run mode; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before the destructive steps (for scripts).")
@click.option("--report", "reports", multiple=True, callback=_reports, metavar="FORMAT=PATH",
              help="Also write a report: json, junit or markdown (repeatable).")
@click.pass_obj
def run_cmd(app: Cli, file: str, inputs: dict[str, str], dry_run: bool, yes: bool,
            reports: list[tuple[str, Path]]) -> RunbookResult:
    """Run a runbook: steady state, steps, objectives, rollbacks; progress on stderr, the result on stdout.

    Before anything runs: the runbook is validated, inputs typed, environment variables it reads checked
    set, `requires: [sandbox]` checked against the API, and the destructive steps listed and confirmed once.
    Exit 0 every step passed and every objective met; 2 a step failed, the steady state did not hold or an
    objective was missed; 4 an invalid runbook or input; 130 interrupted (Ctrl-C: rollbacks ran first).

    \b
    Example:
      doops runbook run runbooks/db-regional-failover.yaml --dry-run
      doops runbook run runbooks/db-restore-drill.yaml --yes --report junit=drill.xml --report markdown=drill.md
    """
    from doops.cli.progress import StderrSink, cancel_on_interrupt
    from doops.errors import UsageError
    from doops.runbook.engine import check_requirements, destructive_steps, run_runbook
    from doops.runbook.validate import Catalog, load, parse_inputs

    catalog = Catalog.default()
    rb = load(file, config=app.platform.config, catalog=catalog)
    parse_inputs(rb, inputs)  # bad inputs are exit 4 before the confirmation question
    check_requirements(app.platform, rb)
    destructive = destructive_steps(rb, catalog)
    if destructive and not (yes or dry_run or sys.stdin.isatty()):
        raise UsageError(f"refusing to run {len(destructive)} destructive step(s) "
                         f"({', '.join(s.id for s in destructive)}) without confirmation: no terminal to ask on",
                         hint="pass --yes, or --dry-run to check without changing anything")

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    sink = StderrSink(app.output.color)
    try:
        with cancel_on_interrupt() as cancel:
            result = run_runbook(app.platform, rb, inputs, dry_run=dry_run, confirm=confirm, events=sink,
                                 cancel=cancel, registry=catalog)
    finally:
        sink.close()
    _write_reports(result, reports)
    render(result, app.output, RESULT)
    return result


@renders(LIST)
@runbook.command("list")
@click.pass_obj
def list_cmd(app: Cli) -> None:
    """The runbooks in ./runbooks/ and in the config's runbooks.paths: name, requirements, destructive steps.

    \b
    Example:
      doops runbook list
    """
    from doops.runbook.engine import destructive_steps
    from doops.runbook.validate import Catalog, check_file

    config = app.platform.config
    dirs = [Path("runbooks")]
    base = Path(config.source).parent if config.source else Path(".")
    dirs += [p if p.is_absolute() else base / p for p in (Path(x).expanduser() for x in config.runbooks.paths)]
    catalog = Catalog.default()
    seen: set[Path] = set()
    listed = []
    for d in dirs:
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            c = check_file(f, config=config, catalog=catalog)
            rb = c.runbook
            listed.append(ListedRunbook(
                file=str(f), name=rb.name if rb else None, description=rb.description if rb else "",
                requires=list(rb.requires) if rb else [],
                destructive=[f"{s.id} ({s.name})" for s in destructive_steps(rb, catalog)] if rb else [],
                valid=c.ok, problems=len(c.problems)))
    render(RunbookList([str(d) for d in dict.fromkeys(dirs)], listed), app.output, LIST)
