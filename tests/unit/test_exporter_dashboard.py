"""config/grafana/doops-dashboard.json: an importable dashboard whose every query uses only the metrics doops
publishes (issue 16's list, ISSUE_METRICS), like the alert rules. That the queries parse and return data is
checked against the sandbox's Prometheus in tests/integration/test_dashboard_queries.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "config" / "grafana" / "doops-dashboard.json"
RULE_FILES = (ROOT / "config" / "prometheus" / "doops.rules.yml",
              ROOT / "config" / "prometheus" / "doops-drills.rules.yml")

# The metric names doops exporter and `doops drill run` publish (issue 16): nothing else may be queried.
ISSUE_METRICS = (
    "doops_check_status", "doops_check_duration_seconds", "doops_check_last_run_timestamp_seconds",
    "doops_db_replica_lag_seconds", "doops_db_replica_lag_bytes", "doops_db_connections_used_ratio",
    "doops_spaces_replication_objects_at_risk", "doops_spaces_replication_oldest_at_risk_seconds",
    "doops_cdn_cache_policy_ok", "doops_uptime_up", "doops_api_requests_total", "doops_api_budget_used_ratio",
    "doops_exporter_last_evaluation_success",
    "doops_drill_success", "doops_drill_last_run_timestamp_seconds", "doops_drill_duration_seconds",
    "doops_drill_objective_seconds", "doops_drill_objective_target_seconds",
)
# Prometheus' own series the rules may use besides (DoopsExporterDown watches the scrape).
PROMETHEUS_METRICS = ("up",)

# What the Grafana variables stand for when a query is sent to Prometheus as is (every value: "All").
GRAFANA_BUILTINS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels in order, those inside collapsed rows too."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def variable_query(var: dict[str, Any]) -> str:
    query = var.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable, with Grafana's variables filled in.

    A variable's ``label_values(metric, label)`` becomes ``count by (label) (metric)``: what it lists.
    """
    values = {f"${v['name']}": v.get("allValue") or ".*" for v in dashboard["templating"]["list"]}
    values.update(GRAFANA_BUILTINS)
    out: list[tuple[str, str]] = []
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} target {target['refId']}", str(target["expr"])))
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = variable_query(var)
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", query)
        out.append((f"variable ${var['name']}", f"count by ({m.group(2)}) ({m.group(1)})" if m else query))
    filled = []
    for where, expr in out:
        for name in sorted(values, key=len, reverse=True):  # $runbook_x before $runbook
            expr = expr.replace(name, values[name])
        filled.append((where, expr))
    return filled


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (good enough for the expressions shipped here)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    names = set(re.findall(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return {n for n in names if n.lower() not in _KEYWORDS}


def test_metric_names_are_found_in_promql() -> None:
    """The extractor itself: it finds what a query selects and nothing of its syntax."""
    expr = ('sum by (status) (rate(doops_api_requests_total{status=~"4.."}[5m])) / on(job) group_left '
            'max without(instance) (up{job="doops"}) or vector(0) > bool 1 unless time() - x_total offset 5m')
    assert metric_names(expr) == {"doops_api_requests_total", "up", "x_total"}


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    d = load()
    assert d["uid"] == "doops-platform-status" and d["id"] is None and d["title"]
    assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"]
    assert d["__inputs"][0]["type"] == "datasource" and d["__inputs"][0]["pluginId"] == "prometheus"
    assert isinstance(d["schemaVersion"], int)
    required = {r["id"] for r in d["__requires"] if r["type"] == "panel"}
    used = {p["type"] for p in all_panels(d["panels"]) if p["type"] != "row"}
    assert used <= required, used - required


def test_ids_and_uids_are_unique() -> None:
    d = load()
    ids = [p["id"] for p in all_panels(d["panels"])]
    assert len(ids) == len(set(ids)), ids
    uids = [d["uid"]] + [str(o["uid"]) for o in _walk(d) if isinstance(o, dict) and "uid" in o
                         and o is not d and o.get("uid") != "${DS_PROMETHEUS}" and o.get("type") != "grafana"]
    assert len(uids) == len(set(uids)), uids
    names = [v["name"] for v in d["templating"]["list"]]
    assert len(names) == len(set(names)), names


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _walk(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk(value)


def test_every_panel_has_the_datasource_input_and_targets() -> None:
    d = load()
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    panels = [p for p in all_panels(d["panels"]) if p["type"] != "row"]
    assert len(panels) >= 10
    for panel in panels:
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source and target["expr"].strip(), panel["title"]
        assert panel.get("description"), f"panel {panel['title']!r} says nothing about what it shows"
    for var in d["templating"]["list"]:
        assert var["datasource"] == source, var["name"]


def test_dashboard_shows_what_the_issue_asks() -> None:
    """Status grid with ok/warn/crit/unknown, replica lag in seconds and bytes, the storage gap against its RPO,
    the API budget, drill RTO against targets."""
    d = load()
    by_title = {p["title"]: p for p in all_panels(d["panels"])}
    grid = by_title["Status grid"]
    assert grid["type"] == "state-timeline" and grid["targets"][0]["expr"].startswith("doops_check_status")
    mapping = grid["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {k: v["text"] for k, v in mapping.items()} == {"0": "ok", "1": "warn", "2": "crit", "3": "unknown"}
    exprs = " ".join(t["expr"] for p in by_title.values() for t in p.get("targets", []))
    for metric in ISSUE_METRICS:
        assert metric in exprs, f"{metric} is on no panel"
    rpo = by_title["Oldest object at risk vs storage RPO"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert rpo[-1]["value"] == 60  # the storage RPO line, as in DoopsStorageReplicationBehind
    lag = by_title["Replica lag (seconds)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert lag[-1]["value"] == 60  # the database RPO line, as in DoopsReplicaLagOverObjective
    rto = by_title["Drill RTO against target"]["targets"]
    assert "doops_drill_objective_seconds" in rto[0]["expr"]
    assert "doops_drill_objective_target_seconds" in rto[1]["expr"]


def test_no_query_leaves_a_grafana_variable_unfilled() -> None:
    for where, expr in dashboard_exprs(load()):
        assert "$" not in expr, f"{where}: {expr}"


def test_dashboard_and_rules_use_only_the_issues_metrics() -> None:
    allowed = set(ISSUE_METRICS)
    for where, expr in dashboard_exprs(load()):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        assert names <= allowed, f"{where}: {sorted(names - allowed)} not published by doops"
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names = metric_names(rule["expr"])
                assert names and names <= allowed | set(PROMETHEUS_METRICS), (path.name, rule["alert"], names)
