"""Reports of a run: JUnit parsed back (one testcase per step and per objective), markdown with the
objectives table and a timeline, JSON equal to the result."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from doops.errors import UsageError
from doops.ops.seam import Cancel, FakeClock, Outcome, RecordingSink
from doops.platform import Platform
from doops.runbook.engine import RunbookResult, run_runbook
from doops.runbook.report import parse_spec, render, write
from doops.runbook.validate import check_text
from tests.unit.test_runbook_engine import Fakes

RUNBOOK = """version: 1
name: drill
objectives:
  rto: {target: 1m, from: inject.started, to: check.ended}
  rpo: {target: 1s, value: "${{ steps.inject.outputs.lag }}"}
steps:
  - id: inject
    action: fake.act
    with: {takes: 90, lag: 0.5}
  - id: check
    probe: fake.probe
    with: {key: k}
    expect: {equals: 1}
  - id: broken
    action: fake.fail
    on_failure: continue
  - id: never
    pause: 1s
rollbacks:
  - id: undo
    action: fake.act
"""


@pytest.fixture
def result() -> RunbookResult:
    clock = FakeClock()
    fakes = Fakes(clock)
    fakes.values["k"] = [1]
    rb = check_text(RUNBOOK, "drill.yaml", catalog=fakes.catalog()).or_raise()
    return run_runbook(Platform(api_url="http://127.0.0.1:9", clock=clock), rb, {}, confirm=lambda q: True,
                       events=RecordingSink(), cancel=Cancel(), registry=fakes.catalog())


def test_junit_has_one_testcase_per_step_and_objective_and_parses_back(result: RunbookResult) -> None:
    assert result.outcome is Outcome.VERIFICATION_FAILED
    root = ET.fromstring(render(result.to_data(), "junit"))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"drill.steps", "drill.rollbacks", "drill.objectives"}
    steps = {c.get("name"): c for c in suites["drill.steps"].findall("testcase")}
    assert list(steps) == ["inject", "check", "broken", "never"]
    assert steps["inject"].find("failure") is None and float(steps["inject"].get("time", "0")) == 90.0
    failure = steps["broken"].find("failure")
    assert failure is not None and failure.get("message") == "boom: it broke"
    assert steps["never"].find("failure") is None and steps["never"].find("skipped") is None  # ran after continue
    objectives = {c.get("name"): c for c in suites["drill.objectives"].findall("testcase")}
    assert objectives["rto"].find("failure") is not None  # 90 s > 1 m
    assert objectives["rpo"].find("failure") is None
    assert suites["drill.steps"].get("tests") == "4" and suites["drill.steps"].get("failures") == "1"
    assert root.get("tests") == "7" and root.get("failures") == "2"


def test_junit_marks_skipped_and_interrupted_steps() -> None:
    data = {"runbook": "r", "steps": [
        {"id": "a", "status": "interrupted", "error": "interrupted (Ctrl-C)", "duration_seconds": 1.0, "events": []},
        {"id": "b", "status": "skipped", "error": None, "duration_seconds": None, "events": []}],
        "objectives": [{"name": "rto", "met": None, "detail": "dry run: not measured", "measured_seconds": None}]}
    root = ET.fromstring(render(data, "junit"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["a"].find("error") is not None and cases["b"].find("skipped") is not None
    assert cases["rto"].find("skipped") is not None
    assert root.get("errors") == "1" and root.get("skipped") == "2"


def test_markdown_has_the_objectives_table_and_a_timeline(result: RunbookResult) -> None:
    text = render(result.to_data(), "markdown")
    assert "| objective | target | measured | met |" in text
    assert "| rto | 60.00s | 90.00s | **NO** |" in text
    assert "| rpo | 1.00s | 0.50s | yes |" in text
    timeline = text.split("## Timeline", 1)[1]
    order = [line.split("|")[3].strip() for line in timeline.splitlines() if line.startswith("| 20")]
    assert order == ["inject", "check", "broken", "never", "undo"]
    assert "boom: it broke" in timeline


def test_json_report_is_the_result(result: RunbookResult, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write(result.to_data(), "json", path)
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(result.to_data()))
    assert set(data) >= {"runbook", "file", "inputs", "started_at", "ended_at", "outcome", "steady_state", "steps",
                         "rollbacks", "objectives"}
    assert set(data["steps"][0]) >= {"id", "kind", "name", "status", "started_at", "ended_at", "duration_seconds",
                                     "outputs", "error", "events"}


def test_report_spec_is_checked(tmp_path: Path) -> None:
    assert parse_spec(f"JUnit={tmp_path}/x.xml") == ("junit", tmp_path / "x.xml")
    with pytest.raises(UsageError, match="unknown format 'html'"):
        parse_spec(f"html={tmp_path}/x.html")
    with pytest.raises(UsageError, match="is a directory"):
        parse_spec(f"json={tmp_path}")
