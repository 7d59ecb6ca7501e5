"""config/prometheus/doops-drills.rules.yml: valid rules (`promtool check rules`) that fire when they should
(`promtool test rules` on tests/data/prometheus/doops-drills.rules.test.yml).

promtool comes with Debian's prometheus package, which scripts/install-system-deps.sh installs: without it
these tests fail (DOOPS_ALLOW_SKIP=1 turns that into a skip, as for the sandbox's Prometheus).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "doops-drills.rules.yml"
RULE_TESTS = ROOT / "tests" / "data" / "prometheus" / "doops-drills.rules.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or next((p for p in ("/usr/bin/promtool",) if os.access(p, os.X_OK)), None)
    if found is None:
        reason = ("promtool not found: run `bash scripts/install-system-deps.sh` as root (Debian package "
                  "prometheus)")
        if os.environ.get("DOOPS_ALLOW_SKIP") == "1":
            pytest.skip(reason)
        pytest.fail(reason + "; set DOOPS_ALLOW_SKIP=1 to skip")
    return found


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, cwd=cwd)


def test_rules_pass_promtool_check(promtool: str) -> None:
    out = _run(promtool, "check", "rules", str(RULES), cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 2 rules found" in out.stdout + out.stderr


def test_rules_fire_as_the_unit_tests_expect(promtool: str) -> None:
    out = _run(promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_each_alert_has_severity_and_a_doops_command() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert set(rules) == {"DoopsDrillFailing", "DoopsDrillOverdue"}
    assert rules["DoopsDrillFailing"]["labels"]["severity"] == "critical"
    assert rules["DoopsDrillOverdue"]["labels"]["severity"] == "warning"
    for rule in rules.values():
        assert rule["annotations"]["runbook"].count("doops drill run {{ $labels.runbook }}") == 1


def test_rule_tests_catch_a_wrong_threshold(promtool: str, tmp_path: Path) -> None:
    """The rule tests have teeth: an Overdue threshold of 9 days (or a Failing rule on success == 1) fails them."""
    (tmp_path / "config" / "prometheus").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "prometheus").mkdir(parents=True)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / "data" / "prometheus" / RULE_TESTS.name)
    text = RULES.read_text()
    for wrong in (text.replace("> 8 * 24 * 3600", "> 9 * 24 * 3600"),
                  text.replace('{job="doops_drill"} == 0', '{job="doops_drill"} == 1')):
        assert wrong != text
        (tmp_path / "config" / "prometheus" / RULES.name).write_text(wrong)
        out = _run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path / "tests" / "data" / "prometheus")
        assert out.returncode != 0, "the rule tests passed a broken rule"
        assert "FAILED" in out.stdout + out.stderr
