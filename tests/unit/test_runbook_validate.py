"""`doops runbook validate|plan|run|list` on broken and good files, through the CLI: every problem at
FILE:LINE:COL, exit 4, nothing sent; and the JSON Schema and format tables shipped in docs/ are current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import respx

from doops.runbook import registry
from doops.runbook.registry import Action, ActionResult, Param, Probe, StepContext
from tests.helpers import CANARY_TOKEN, run_doops

ROOT = Path(__file__).resolve().parents[2]
CALLS: list[str] = []


def _act(ctx: StepContext, params: dict[str, Any]) -> ActionResult:
    CALLS.append(f"act:{params.get('target')}:{'dry' if ctx.dry_run else 'real'}")
    return ActionResult(ok=True, outputs={"new_primary": {"name": "db-ams3"}, "data_loss_seconds": 0.4})


ACTIONS = {
    "db.failover": Action("db.failover", (Param("region", required=True, choices=("ams3", "fra1")),
                                          Param("accept_data_loss", "boolean")), _act,
                          outputs=("new_primary", "data_loss_seconds")),
    "sandbox.fault": Action("sandbox.fault", (Param("fault", required=True), Param("target")), _act),
}
PROBES = {
    "sql": Probe("sql", (Param("cluster", required=True), Param("query", required=True)), lambda c, p: 1),
    "http": Probe("http", (Param("url", required=True), Param("timeout", "duration")),
                  lambda c, p: {"status": 200, "body": "ok", "headers": {}, "json": None}),
}


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "actions", lambda: ACTIONS)
    monkeypatch.setattr(registry, "probes", lambda: PROBES)
    CALLS.clear()


GOOD = """version: 1
name: db-regional-failover
description: Lose the primary's region; promote the replica.
inputs:
  region: {type: string, default: ams3}
objectives:
  rto: {target: 2m, from: inject.started, to: api-ok.ended}
  rpo: {target: 1s, value: "${{ steps.failover.outputs.data_loss_seconds }}"}
steps:
  - id: inject
    action: sandbox.fault
    with: {fault: db-stop, target: learnhub-db}
  - id: failover
    action: db.failover
    with: {region: "${{ inputs.region }}", accept_data_loss: true}
  - id: api-ok
    wait_until:
      probe: sql
      with: {cluster: "${{ steps.failover.outputs.new_primary.name }}", query: "select 1"}
      expect: {equals: 1}
    timeout: 90s
rollbacks:
  - action: sandbox.fault
    with: {fault: clear}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def validate(*files: str) -> Any:
    return run_doops(["runbook", "validate", *files])


def test_a_good_runbook_validates(tmp_path: Path) -> None:
    res = validate(write(tmp_path, "good.yaml", GOOD))
    assert res.exit_code == 0, res.stderr
    assert "valid runbook 'db-regional-failover'" in res.stdout


def test_bad_yaml_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    f = write(tmp_path, "bad.yaml", "version: 1\nname: x\nsteps: [\n  - a: 1\n")
    res = validate(f)
    assert res.exit_code == 4
    assert f"{f}:4:3: invalid YAML" in res.stderr
    assert f"{f}:4:3" in res.stdout


def test_an_unknown_action_names_its_position_and_the_known_ones(tmp_path: Path) -> None:
    f = write(tmp_path, "a.yaml", "version: 1\nname: x\nsteps:\n  - id: a\n    action: db.explode\n")
    res = run_doops(["-o", "json", "runbook", "validate", f])
    assert res.exit_code == 4
    problems = res.json["files"][0]["problems"]
    assert problems == [{"file": f, "line": 5, "col": 13,
                         "message": "step 'a': unknown action 'db.explode' (known: db.failover, sandbox.fault)"}]


def test_an_undefined_reference_is_caught(tmp_path: Path) -> None:
    f = write(tmp_path, "r.yaml", GOOD.replace("${{ inputs.region }}", "${{ inputs.zone }}"))
    res = validate(f)
    assert res.exit_code == 4
    assert f"{f}:15:" in res.stdout and "undefined input 'zone' (declared: region)" in res.stdout


def test_a_bad_duration_is_caught(tmp_path: Path) -> None:
    f = write(tmp_path, "d.yaml", GOOD.replace("timeout: 90s", "timeout: 90 seconds"))
    res = validate(f)
    assert res.exit_code == 4
    assert f"{f}:21:14: step 'api-ok'.timeout: invalid duration '90 seconds'" in res.stderr


def test_every_problem_is_reported_at_once_across_files(tmp_path: Path) -> None:
    broken = (GOOD.replace("timeout: 90s", "timeout: soon")
              .replace("db-stop, target", "db-stop, tagret")
              .replace("region: \"${{ inputs.region }}\"", "region: mars")
              .replace("to: api-ok.ended", "to: api_ok.ended")
              .replace("steps.failover.outputs.new_primary.name", "steps.failover.outputs.new_replica.name")
              .replace("objectives:", "colour: blue\nobjectives:"))
    f1 = write(tmp_path, "one.yaml", broken)
    f2 = write(tmp_path, "two.yaml", "version: 2\nname: x\nsteps:\n  - pause: 0s\n")
    res = run_doops(["-o", "json", "runbook", "validate", f1, f2])
    assert res.exit_code == 4
    messages = [p["message"] for file in res.json["files"] for p in file["problems"]]
    expected = ["unknown key 'colour'", "marker 'api_ok.ended' names no step", "has no parameter 'tagret'",
                "'mars' is not one of ams3, fra1", "has no output 'new_replica'", "invalid duration 'soon'",
                "unsupported format version 2", "must be greater than zero"]
    for text in expected:
        assert any(text in m for m in messages), (text, messages)
    assert len(messages) == len(expected)
    assert "8 problems in 2 runbooks" in res.stderr


def test_a_config_path_is_checked_against_the_loaded_config(tmp_path: Path) -> None:
    cfg = write(tmp_path, "doops.yaml", "databases:\n  clusters:\n    - name: learnhub-db\n")
    ok = GOOD.replace("query: \"select 1\"", "query: \"${{ config.databases.clusters.learnhub-db.database }}\"")
    bad = GOOD.replace("query: \"select 1\"", "query: \"${{ config.databases.clusters.other-db.database }}\"")
    assert run_doops(["--config", cfg, "runbook", "validate", write(tmp_path, "ok.yaml", ok)]).exit_code == 0
    res = run_doops(["--config", cfg, "-o", "json", "runbook", "validate", write(tmp_path, "bad.yaml", bad)])
    assert res.exit_code == 4
    [problem] = res.json["files"][0]["problems"]
    assert (problem["line"], problem["col"]) == (19, 80)  # the query value
    assert "config.databases.clusters has no item named 'other-db' (it has: learnhub-db)" in problem["message"]


def test_plan_shows_resolved_steps_and_sends_nothing(tmp_path: Path) -> None:
    f = write(tmp_path, "good.yaml", GOOD)
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().respond(500)
        res = run_doops(["-o", "json", "runbook", "plan", f, "--input", "region=fra1"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    assert catch_all.call_count == 0 and CALLS == []
    steps = {s["id"]: s for s in res.json["steps"]}
    assert steps["failover"]["with"] == {"region": "fra1", "accept_data_loss": True}
    assert steps["api-ok"]["with"]["cluster"] == "<steps.failover.outputs.new_primary.name>"
    assert res.json["destructive"] == ["inject", "failover", "rollback-1"]


def test_run_with_an_invalid_runbook_or_input_is_exit_4_and_runs_nothing(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", GOOD.replace("timeout: 90s", "timeout: forever"))
    res = run_doops(["runbook", "run", bad, "--yes"])
    assert res.exit_code == 4 and "invalid duration 'forever'" in res.stderr and CALLS == []
    good = write(tmp_path, "good.yaml", GOOD)
    res = run_doops(["runbook", "run", good, "--yes", "--input", "zone=ams3"])
    assert res.exit_code == 4 and "the runbook declares no input 'zone' (declared: region)" in res.stderr
    res = run_doops(["runbook", "run", good, "--yes", "--input", "region"])
    assert res.exit_code == 4 and "expected NAME=VALUE" in res.stderr
    assert CALLS == []


def test_run_refuses_a_bad_report_before_anything_runs(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", GOOD)
    for spec, text in ((f"pdf={tmp_path}/r.pdf", "unknown format 'pdf'"),
                       (f"junit={tmp_path}/no/such/dir/r.xml", "does not exist"),
                       ("junit", "expected FORMAT=PATH")):
        res = run_doops(["runbook", "run", good, "--yes", "--report", spec])
        assert res.exit_code == 4 and text in res.stderr, res.stderr
    assert CALLS == []


def test_run_without_a_terminal_or_yes_is_exit_4(tmp_path: Path) -> None:
    res = run_doops(["runbook", "run", write(tmp_path, "good.yaml", GOOD)],
                    env={"DIGITALOCEAN_API_URL": "http://127.0.0.1:9"})
    assert res.exit_code == 4 and "no terminal to ask on" in res.stderr and "--yes" in res.stderr
    assert CALLS == []


def test_requires_sandbox_against_the_real_api_is_exit_4_and_sends_nothing(tmp_path: Path) -> None:
    f = write(tmp_path, "s.yaml", GOOD.replace("inputs:", "requires: [sandbox]\ninputs:"))
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().respond(500)
        res = run_doops(["runbook", "run", f, "--yes"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4 and "requires a doops sandbox" in res.stderr
    assert catch_all.call_count == 0 and CALLS == []


def test_run_on_a_sandbox_writes_the_result_and_reports(tmp_path: Path) -> None:
    f = write(tmp_path, "good.yaml", GOOD)
    junit, md = tmp_path / "r.xml", tmp_path / "r.md"
    res = run_doops(["-o", "json", "runbook", "run", f, "--yes", "--report", f"junit={junit}",
                     "--report", f"markdown={md}"], env={"DIGITALOCEAN_API_URL": "http://127.0.0.1:9"})
    assert res.exit_code == 0, res.stderr
    assert res.json["outcome"] == "ok"
    assert [s["status"] for s in res.json["steps"]] == ["ok", "ok", "ok"]
    assert {o["name"]: o["met"] for o in res.json["objectives"]} == {"rto": True, "rpo": True}
    assert CALLS == ["act:learnhub-db:real", "act:None:real"]
    assert "api-ok (wait_until sql): ok" in res.stderr  # live progress, one line per step
    assert junit.read_text().startswith("<?xml") and "| rpo |" in md.read_text()


def test_list_reads_runbooks_and_the_config_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runbooks").mkdir()
    write(tmp_path / "runbooks", "db.yaml", GOOD)
    extra = tmp_path / "more"
    extra.mkdir()
    write(extra, "broken.yml", "version: 1\nname: broken\nsteps: []\n")
    cfg = write(tmp_path, "doops.yaml", "runbooks:\n  paths: [more]\n")
    res = run_doops(["--config", cfg, "-o", "json", "runbook", "list"])
    assert res.exit_code == 0, res.stderr
    books = {b["name"]: b for b in res.json["runbooks"]}
    assert books["db-regional-failover"]["destructive"] == ["inject (sandbox.fault)", "failover (db.failover)",
                                                            "rollback-1 (sandbox.fault)"]
    assert books["db-regional-failover"]["valid"] is True
    assert books["broken"]["valid"] is False and books["broken"]["problems"] == 1


def test_the_shipped_schema_and_format_tables_are_current() -> None:
    from doops.runbook.schema import DOC_PATH, SCHEMA_PATH, schema_text, with_tables

    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), "run: python -m doops.runbook.schema"
    doc = DOC_PATH.read_text(encoding="utf-8")
    assert with_tables(doc) == doc, "run: python -m doops.runbook.schema"


def test_the_schema_accepts_a_good_runbook_and_rejects_a_misspelt_key() -> None:
    import jsonschema
    import yaml

    schema = json.loads((ROOT / "docs" / "runbook.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(GOOD))) == []
    bad = yaml.safe_load(GOOD.replace("on_failure", "x").replace("    timeout: 90s", "    timout: 90s"))
    assert any("timout" in e.message for e in validator.iter_errors(bad))
