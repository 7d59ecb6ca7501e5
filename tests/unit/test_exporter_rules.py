"""config/prometheus/doops.rules.yml and scrape.yml: valid for promtool, alerts that fire when they should (and
only then: tests/data/prometheus/doops.rules.test.yml), each naming a shipped runbook that exists.

promtool comes with Debian's prometheus package, which scripts/install-system-deps.sh installs: without it
these tests fail (DOOPS_ALLOW_SKIP=1 turns that into a skip, as for the sandbox's Prometheus).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from doops.ops.status.model import COMPONENTS

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "config" / "prometheus"
RULES = PROM_DIR / "doops.rules.yml"
SCRAPE = PROM_DIR / "scrape.yml"
RULE_TESTS = ROOT / "tests" / "data" / "prometheus" / "doops.rules.test.yml"

ALERTS = {"DoopsCheckCritical", "DoopsReplicaLagOverObjective", "DoopsStorageReplicationBehind",
          "DoopsExporterDown", "DoopsExporterEvaluationFailing"}
SHIPPED_RUNBOOKS = {"db-regional-failover", "db-restore-drill", "app-bad-release", "app-regional-failover",
                    "storage-replication", "cdn-release", "gdpr-erasure", "recover-db-region", "recover-app-release",
                    "recover-app-region"}
# The production runbooks that recover what a sandbox-only drill rehearses (the drill injects its fault).
RECOVERS = {"db-regional-failover": "recover-db-region", "app-bad-release": "recover-app-release",
            "app-regional-failover": "recover-app-region"}

# Every check doops status makes (docs/status.md), and the runbook a crit on it must name (None: no runbook).
CHECKS: dict[str, tuple[str, ...]] = {
    "apps": ("deployment", "health", "live-url"),
    "functions": ("trigger",),
    "databases": ("status", "maintenance", "backups", "connections", "replica", "pools", "writable",
                  "split-brain", "config"),
    "cache": ("status", "eviction-policy", "ping", "memory", "evictions", "clients"),
    "spaces": ("reachable", "lifecycle", "replication"),
    "cdn": ("endpoint", "cache-control"),
    "monitoring": ("alert-policies", "app-alerts", "uptime"),
    "prometheus": ("targets", "alerts", "slo"),
    "dns": ("exists", "ttl", "authoritative", "target", "zone"),
    "drills": ("db-regional-failover-weekly",),
}


def expected_runbook(component: str, check: str) -> str | None:
    if component == "databases":
        return "db-restore-drill" if check == "backups" else "db-regional-failover"
    if component == "apps":
        return "app-regional-failover" if check == "live-url" else "app-bad-release"
    return {"dns": "app-regional-failover", "spaces": "storage-replication", "cdn": "cdn-release"}.get(component)


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


def _rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_rules_pass_promtool_check(promtool: str) -> None:
    out = _run(promtool, "check", "rules", str(RULES), cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in out.stdout + out.stderr


def test_rules_fire_as_the_unit_tests_expect(promtool: str) -> None:
    out = _run(promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    """Each alert of the rules file has a case where it fires and one where nothing is expected of it."""
    cases = [case for group in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in group["alert_rule_test"]]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    silent = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert {r["alert"] for r in _rules()} == ALERTS
    assert firing == ALERTS and silent == ALERTS


def test_each_alert_has_severity_and_names_a_shipped_runbook_that_exists() -> None:
    for rule in _rules():
        name, labels, notes = rule["alert"], rule["labels"], rule["annotations"]
        assert labels["severity"] in ("critical", "warning"), name
        assert notes["runbook"].startswith("doops "), name  # a doops command to run
        assert notes["summary"] and notes["description"], name
        runbook = labels.get("runbook")
        if runbook is None:
            assert "doops runbook run" not in notes["runbook"], name
            continue
        assert runbook in SHIPPED_RUNBOOKS, (name, runbook)
        path = ROOT / "runbooks" / f"{runbook}.yaml"
        assert path.is_file(), f"{name} names runbooks/{runbook}.yaml: missing"
        if "sandbox" in (yaml.safe_load(path.read_text()).get("requires") or []):
            # A drill that injects its fault refuses a real API: the page names the production runbook that does
            # the same recovery, planned first.
            assert f"runbooks/{runbook}.yaml" not in notes["runbook"], (name, notes["runbook"])
            assert f"doops runbook plan runbooks/{RECOVERS[runbook]}.yaml" in notes["runbook"], (name, notes["runbook"])
            assert "then run it with --yes" in notes["runbook"], name
        else:
            assert f"doops runbook run runbooks/{runbook}.yaml" in notes["runbook"], (name, notes["runbook"])


def test_what_an_alert_tells_a_responder_to_run_is_accepted_in_production() -> None:
    """Each `doops runbook run FILE` an annotation names validates without `requires: [sandbox]`."""
    for rule in _rules():
        for file in re.findall(r"doops runbook (?:plan|run) (runbooks/[\w.-]+\.yaml)", rule["annotations"]["runbook"]):
            requires = yaml.safe_load((ROOT / file).read_text()).get("requires") or []
            assert "sandbox" not in requires, (rule["alert"], file)
    named = {r["labels"].get("runbook") for r in _rules()} - {None}
    assert named == SHIPPED_RUNBOOKS - {"gdpr-erasure"} - set(RECOVERS.values())  # every drill is reached
    told = {m for r in _rules() for m in re.findall(r"runbooks/(recover-[\w-]+)\.yaml", r["annotations"]["runbook"])}
    assert told == set(RECOVERS.values())  # and every production recovery runbook is named by some page


def test_only_the_exporter_down_alert_names_a_scrape_job() -> None:
    for rule in _rules():
        names_job = "job" in re.sub(r"\{\{.*?\}\}", "", rule["expr"])
        assert names_job == (rule["alert"] == "DoopsExporterDown"), rule["alert"]


def test_a_crit_on_every_check_of_every_component_fires_once_with_its_runbook(promtool: str,
                                                                              tmp_path: Path) -> None:
    """The DoopsCheckCritical rules split the components between them: no check is missed, none alerts twice."""
    assert set(CHECKS) == set(COMPONENTS)  # a new component must be added here (and maybe to the rules)
    series, expected = [], []
    for component, checks in CHECKS.items():
        for check in checks:
            series.append({"series": f'doops_check_status{{job="doops",instance="127.0.0.1:9877",'
                                     f'component="{component}",resource="r-{check}",check="{check}"}}',
                           "values": "2x10"})
            runbook = expected_runbook(component, check)
            labels = f'component="{component}",check="{check}"' + (f',runbook="{runbook}"' if runbook else "")
            expected.append({"labels": "{" + labels + "}", "value": 1})
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{
            "expr": 'count by (component, check, runbook) (ALERTS{alertname="DoopsCheckCritical",alertstate="firing"})',
            "eval_time": "5m", "exp_samples": expected}]}]}
    (tmp_path / "partition.test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    out = _run(promtool, "test", "rules", "partition.test.yml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


BROKEN = {
    "crit on warn": ('doops_check_status{component="databases",check!="backups"} == 2',
                     'doops_check_status{component="databases",check!="backups"} >= 1'),
    "no wait before a crit pages": ("        for: 2m\n", "        for: 0m\n"),
    "lag objective 120 s": ("doops_db_replica_lag_seconds > 60", "doops_db_replica_lag_seconds > 120"),
    "lag at the objective fires": ("doops_db_replica_lag_seconds > 60", "doops_db_replica_lag_seconds >= 60"),
    "storage RPO 120 s": ("doops_spaces_replication_oldest_at_risk_seconds > 60",
                          "doops_spaces_replication_oldest_at_risk_seconds > 120"),
    "no absent()": ('up{job="doops"} == 0 or absent(up{job="doops"})', 'up{job="doops"} == 0'),
    "any job down": ('up{job="doops"} == 0 or', "up == 0 or"),
    "cache left out": ('component!~"databases|apps|dns|spaces|cdn"',
                       'component!~"databases|apps|dns|spaces|cdn|cache"'),
    "wrong runbook": ("runbook: cdn-release", "runbook: storage-replication"),
}


@pytest.mark.parametrize("wrong", sorted(BROKEN))
def test_rule_tests_catch_a_broken_rule(promtool: str, tmp_path: Path, wrong: str) -> None:
    """The rule tests have teeth: each of these edits of the rules makes them fail."""
    old, new = BROKEN[wrong]
    text = RULES.read_text()
    assert old in text, f"{wrong}: {old!r} is no longer in the rules: update this test"
    (tmp_path / "config" / "prometheus").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "prometheus").mkdir(parents=True)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / "data" / "prometheus" / RULE_TESTS.name)
    (tmp_path / "config" / "prometheus" / RULES.name).write_text(text.replace(old, new))
    out = _run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path / "tests" / "data" / "prometheus")
    assert out.returncode != 0, f"the rule tests passed a broken rule ({wrong})"
    assert "FAILED" in out.stdout + out.stderr


def test_scrape_config_passes_promtool_check(promtool: str) -> None:
    out = _run(promtool, "check", "config", str(SCRAPE), cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 2 rule files found" in out.stdout + out.stderr


def test_scrape_config_scrapes_the_exporter_and_the_pushgateway() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    assert config["rule_files"] == ["doops.rules.yml", "doops-drills.rules.yml"]
    assert all((PROM_DIR / f).is_file() for f in config["rule_files"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {"doops", "pushgateway"}
    doops = jobs["doops"]
    assert doops["scrape_interval"] == "60s" and not doops.get("honor_labels", False)
    assert doops["static_configs"] == [{"targets": ["127.0.0.1:9877"]}]
    assert 'up{job="doops"}' in RULES.read_text()  # the job DoopsExporterDown watches is the one scraped
    assert jobs["pushgateway"]["honor_labels"] is True  # keeps job="doops_drill" for the drill rules
