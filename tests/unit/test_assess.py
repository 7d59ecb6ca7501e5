"""`doops assess`: every rule fires on its misconfiguration with evidence and a fix, and stays quiet on the
healthy case; the per-objective table; --fail-on and exit codes; markdown; bad flags exit 4 before any request.

The rules are pure functions of gathered inputs, so most tests build ``Inputs`` from fakes; the CLI tests run
the whole path against a respx-mocked API."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx

from doops.clients.models import (
    AlertPolicy,
    App,
    DatabaseBackup,
    DatabaseCluster,
    DatabaseReplica,
    DomainRecord,
    UptimeCheck,
)
from doops.clients.posture import AppPosture, ClusterPosture, FirewallRule, ServicePosture, SpacesKey
from doops.clients.tls import TlsProbe
from doops.config import BucketConfig, parse_config
from doops.drill.model import DrillRun, ObjectiveMeasure, StepSummary
from doops.ops.assess import RULES, AssessOptions, assess
from doops.ops.assess_model import Inputs, Severity
from doops.ops.status.model import CheckResult, Status
from doops.platform import Platform
from tests.helpers import CANARY_TOKEN, run_doops

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
API = "https://api.digitalocean.com"


class FakeDue:
    def __init__(self, state: str, reason: str = "") -> None:
        self.state = type("S", (), {"value": state})()
        self.reason = reason or state
        self.cron = "0 3 * * 1"
        self.last_success = None


def _cluster(name: str, cid: str, engine: str = "pg", nodes: int = 2) -> DatabaseCluster:
    return DatabaseCluster(cid, name, engine, "15", "nyc3", "online", nodes, "db-s-2vcpu-4gb",
                           created_at=NOW - timedelta(days=120))


def _app(name: str, aid: str, region: str, services: list[tuple[str, int, bool]], alerts: list[str],
         live: str | None) -> tuple[App, AppPosture]:
    app = App(aid, name, live, region, [s[0] for s in services], alerts, None, None, None, None)
    posture = AppPosture(aid, name, region, live, "learnhub/" + name.split("-")[1],
                         [ServicePosture(n, "service", c, h) for n, c, h in services])
    return app, posture


def _run(runbook: str, action: str, ok: bool = True, rto: float | None = None, days_ago: float = 1) -> DrillRun:
    start = NOW - timedelta(days=days_ago)
    step = StepSummary("s", "action", action, "passed" if ok else "failed", start, start + timedelta(seconds=0.24),
                       0.24)
    objectives = [ObjectiveMeasure("rto", 120, rto, True)] if rto is not None else []
    return DrillRun(runbook, f"runbooks/{runbook}.yaml", start, start + timedelta(seconds=30), "ok" if ok else "x",
                    ok, objectives, [step])


def healthy() -> Inputs:
    """A deployment every rule is happy with."""
    cfg = parse_config("""
objectives: {compute_rto: 5m, database_rto: 2m, database_rpo: 60s, storage_rpo: 60s, dns_rto: 1m}
dns:
  failover_records: [{domain: learnhub.example, name: api, type: CNAME, app: learnhub-api}]
drills:
  schedules:
    - {runbook: db-restore-drill, cron: "0 3 * * 1"}
spaces:
  buckets:
    - {name: learnhub-media, region: nyc3, replica: learnhub-media-ams3, replica_region: ams3,
       lifecycle_prefixes: [uploads/]}
""")
    inp = Inputs(cfg, NOW)
    db, cache = _cluster("learnhub-db", "db1"), _cluster("learnhub-cache", "c1", "valkey", 1)
    inp.put("clusters", [(db, ClusterPosture("db1", "learnhub-db", "pg", "nyc3", 2, "vpc-1", True, True)),
                         (cache, ClusterPosture("c1", "learnhub-cache", "valkey", "nyc3", 1, "vpc-1", True, False))])
    inp.put("replicas:db1", [DatabaseReplica("r1", "learnhub-db-ams3", "ams3", "online")])
    inp.put("backups:db1", [DatabaseBackup(NOW - timedelta(days=d, hours=10), 1.0) for d in range(7)])
    inp.put("pools:db1", ["learnhub-pool"])
    inp.put("firewall:db1", [FirewallRule("app", "app-1"), FirewallRule("ip_addr", "10.10.0.0/16")])
    inp.put("firewall:c1", [FirewallRule("tag", "learnhub")])
    inp.put("status:databases", [
        CheckResult("databases", "learnhub-db-ams3", "replica", Status.OK, "lag", {"lag_seconds": 0.3,
                                                                                    "lag_bytes": 100}),
        CheckResult("databases", "learnhub-db", "connections", Status.OK, "ok",
                    {"connections": 10, "max_connections": 100, "reserved": 3, "ratio": 0.1})])
    api = _app("learnhub-api", "a1", "nyc", [("api", 2, True), ("ws", 2, True)],
               ["DEPLOYMENT_FAILED"], "https://learnhub-api.example")
    standby = _app("learnhub-api-ams3", "a2", "ams", [("api", 2, True), ("ws", 2, True)],
                   ["DEPLOYMENT_FAILED"], "https://learnhub-api-ams3.example")
    inp.put("apps", [api, standby])
    inp.put("uptime_checks", [UptimeCheck("u1", "api", "https://learnhub-api.example/api/health", True, []),
                              UptimeCheck("u2", "api3", "https://learnhub-api-ams3.example/", True, [])])
    inp.put("alert_policies", [AlertPolicy(f"p{t}", f"v1/dbaas/alerts/{t}", True, ["db1", "c1"], [])
                               for t in ("cpu_alerts", "memory_utilization_alerts", "disk_utilization_alerts")])
    inp.put("prometheus_rules", [("DoopsReplicaLagHigh", "doops_replica_lag_seconds > 5")])
    inp.put("drill_runs", [_run("db-restore-drill", "db.pitr"), _run("db-regional-failover", "db.failover", rto=30),
                           _run("app-regional-failover", "app.failover", rto=40),
                           _run("gdpr-erasure", "sql.exec")])
    inp.put("drill_due", {"db-restore-drill": FakeDue("ok")})
    inp.put("buckets", cfg.spaces.buckets)
    inp.put("bucket_names", ["learnhub-media", "learnhub-media-ams3"])
    inp.put("status:spaces", [CheckResult("spaces", "learnhub-media", "replication", Status.OK, "in sync",
                                          {"oldest_at_risk_seconds": 0.0, "compared": 10})])
    inp.put("lifecycle:learnhub-media", ["uploads/"])
    inp.put("versioning:learnhub-media", "Enabled")
    for b in ("learnhub-media", "learnhub-media-ams3"):
        inp.put(f"policy:{b}", None)
        inp.put(f"acl:{b}", [])
        inp.put(f"cors:{b}", [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}])
        inp.put(f"upload_acls:{b}", {"uploads/a.png": []})
    inp.put("dns:learnhub.example:api:CNAME", [DomainRecord(7, "CNAME", "api", "learnhub-api.example.", 60)])
    inp.put("dns:learnhub.example:NS", [DomainRecord(i, "NS", "@", f"ns{i}.digitalocean.com.", 1800)
                                        for i in (1, 2, 3)])
    inp.put("dns:learnhub.example:SOA", [DomainRecord(9, "SOA", "@", "1800", 1800)])
    targets = [("learnhub-api", "https://learnhub-api.example"), ("learnhub-api-ams3", "https://learnhub-api-ams3.example")]
    inp.put("tls_targets", targets)
    for _, url in targets:
        inp.put(f"tls:{url}", TlsProbe(url, "h", 443, "https", "TLSv1.3", True, True, None, NOW + timedelta(days=80)))
        inp.put(f"hsts:{url}", "max-age=31536000; includeSubDomains")
    inp.put("spaces_keys", [SpacesKey("media-rw", "AK1", [("learnhub-media", "readwrite")]),
                            SpacesKey("ro", "AK2", [("", "read")])])
    inp.put("erasure_runbooks", [("gdpr-erasure", "runbooks/gdpr-erasure.yaml")])
    inp.put("runbook_dirs", ["runbooks"])
    return inp


ALWAYS_INFO = {"tokens.api-scope", "gdpr.backup-retention"}  # statements, not findings of a misconfiguration


def run(inp: Inputs, *areas: str, fail_on: str = "crit") -> Any:
    platform = Platform(_config=inp.config)
    return assess(platform, AssessOptions(areas=list(areas), fail_on=fail_on), inputs=inp)


def by_rule(result: Any, rule: str) -> list[Any]:
    return [f for f in result.findings if f.rule == rule]


def test_healthy_deployment_has_no_finding_but_the_standing_statements() -> None:
    result = run(healthy())
    assert {f.rule for f in result.findings} == ALWAYS_INFO, [(f.rule, f.summary) for f in result.findings]
    assert all(f.severity is Severity.INFO for f in result.findings)
    assert not result.failed
    assert set(result.rules_evaluated) == set(RULES), set(RULES) - set(result.rules_evaluated)


def test_token_scope_is_info_and_never_probed_with_a_write() -> None:
    (f,) = by_rule(run(healthy(), "security"), "tokens.api-scope")
    assert f.severity is Severity.INFO and "cannot tell without a write" in f.summary
    assert "read-only token" in f.fix and "status, assess, exporter" in f.fix


# (rule, how to break the healthy inputs, expected severity, a word of the evidence, a word of the fix)
def _set(key: str, value: Any) -> Any:
    return lambda inp: inp.put(key, value)


def _single_node(inp: Inputs) -> None:
    inp.values["clusters"][0][0].num_nodes = 1


def _single_instance(inp: Inputs) -> None:
    inp.values["apps"][0][1].components[0].instance_count = 1


def _no_health_check(inp: Inputs) -> None:
    inp.values["apps"][0][1].components[1].health_check = False


def _no_deploy_alert(inp: Inputs) -> None:
    inp.values["apps"][0][0].alert_rules = []


def _no_standby(inp: Inputs) -> None:
    inp.values["apps"] = inp.values["apps"][:1]


def _no_replica_bucket(inp: Inputs) -> None:
    inp.put("buckets", [BucketConfig("learnhub-media", "nyc3")])


def _no_vpc(inp: Inputs) -> None:
    inp.values["clusters"][0][1].private_network_uuid = ""


def _no_tls_db(inp: Inputs) -> None:
    inp.values["clusters"][1][1].ssl = False


def _tls(**kw: Any) -> Any:
    def apply(inp: Inputs) -> None:
        probe = inp.values["tls:https://learnhub-api.example"]
        for k, v in kw.items():
            setattr(probe, k, v)
    return apply


def _drill_overdue(inp: Inputs) -> None:
    inp.put("drill_due", {"db-restore-drill": FakeDue("overdue", "no success since 2026-02-23 03:00Z")})


def _no_pitr_schedule(inp: Inputs) -> None:
    inp.config.drills.schedules = []


def _dns_record_missing(inp: Inputs) -> None:
    inp.put("dns:learnhub.example:api:CNAME", [])


def _uptime_missing(inp: Inputs) -> None:
    inp.put("uptime_checks", inp.values["uptime_checks"][1:])


def _failed_drill(inp: Inputs) -> None:
    inp.put("drill_due", {"db-restore-drill": FakeDue("failed", "last run failed")})


CASES: list[tuple[str, Any, Severity, str, str]] = [
    ("db.ha-standby", _single_node, Severity.WARN, "num_nodes", "--num-nodes 2"),
    ("db.cross-region-replica", _set("replicas:db1", []), Severity.CRIT, "region", "replica create"),
    ("db.replica-lag", _set("status:databases", [
        CheckResult("databases", "learnhub-db-ams3", "replica", Status.CRIT, "", {"lag_seconds": 90.0}),
        CheckResult("databases", "learnhub-db", "connections", Status.OK, "", {"ratio": 0.1})]),
     Severity.CRIT, "lag_seconds", "replay"),
    ("db.backups", _set("backups:db1", []), Severity.CRIT, "backups", "doctl databases backups"),
    ("db.restore-window", _set("backups:db1", [DatabaseBackup(NOW - timedelta(hours=3), 1.0)]), Severity.WARN,
     "window_days", "7 days"),
    ("db.pitr-drill", _drill_overdue, Severity.WARN, "state", "doops drill run"),
    ("db.pitr-drill", _no_pitr_schedule, Severity.WARN, "scheduled", "drills.schedules"),
    ("db.pools", _set("pools:db1", []), Severity.WARN, "pools", "pool create"),
    ("db.connection-headroom", _set("status:databases", [
        CheckResult("databases", "learnhub-db-ams3", "replica", Status.OK, "", {"lag_seconds": 0.1}),
        CheckResult("databases", "learnhub-db", "connections", Status.CRIT, "", {"ratio": 0.97, "connections": 97})]),
     Severity.CRIT, "ratio", "pool"),
    ("compute.instances", _single_instance, Severity.WARN, "api", "instance_count: 2"),
    ("compute.health-check", _no_health_check, Severity.WARN, "services", "health_check"),
    ("compute.deploy-alerts", _no_deploy_alert, Severity.WARN, "alerts", "DEPLOYMENT_FAILED"),
    ("compute.standby-region", _no_standby, Severity.WARN, "region", "another region"),
    ("compute.dns-failover", _dns_record_missing, Severity.CRIT, "record", "records create"),
    ("storage.replica", _no_replica_bucket, Severity.CRIT, "region", "replica"),
    ("storage.replica", _set("status:spaces", [CheckResult("spaces", "learnhub-media", "replication", Status.CRIT,
                                                           "", {"oldest_at_risk_seconds": 600.0})]),
     Severity.CRIT, "oldest_at_risk_seconds", "doops spaces gap"),
    ("storage.lifecycle", _set("lifecycle:learnhub-media", []), Severity.WARN, "wanted", "setlifecycle"),
    ("storage.versioning", _set("versioning:learnhub-media", ""), Severity.WARN, "versioning", "put-bucket-versioning"),
    ("dns.failover-ttl", _set("dns:learnhub.example:api:CNAME", [DomainRecord(7, "CNAME", "api", "x.", 3600)]),
     Severity.CRIT, "ttl", "--record-ttl 60"),
    ("dns.soa-ns", _set("dns:learnhub.example:NS", [DomainRecord(1, "NS", "@", "ns1.", 1800)]), Severity.WARN,
     "ns", "ns1/ns2/ns3"),
    ("monitoring.uptime", _uptime_missing, Severity.WARN, "live_url", "uptime create"),
    ("monitoring.alert-coverage", _set("alert_policies", []), Severity.WARN, "missing", "alert create"),
    ("monitoring.replica-lag-alert", _set("prometheus_rules", []), Severity.WARN, "prometheus_alert_rules",
     "doops.rules.yml"),
    ("monitoring.drills-overdue", _failed_drill, Severity.CRIT, "cron", "doops drill run"),
    ("fw.open-source", _set("firewall:db1", [FirewallRule("ip_addr", "0.0.0.0/0")]), Severity.CRIT, "open",
     "firewalls replace"),
    ("fw.open-source", _set("firewall:c1", []), Severity.CRIT, "rules", "firewalls replace"),
    ("fw.sources", _set("firewall:db1", [FirewallRule("ip_addr", "52.10.20.30")]), Severity.WARN, "addresses",
     "app:APP_ID"),
    ("fw.vpc", _no_vpc, Severity.WARN, "private_network_uuid", "private-network-uuid"),
    ("db.tls-required", _no_tls_db, Severity.CRIT, "ssl", "rediss"),
    ("tls.version", _tls(best_version="TLSv1.2"), Severity.WARN, "best_version", "TLS 1.3"),
    ("tls.version", _tls(best_version="TLSv1.1"), Severity.CRIT, "best_version", "TLS 1.3"),
    ("tls.version", _tls(error="http:// URL: no TLS"), Severity.CRIT, "error", "https"),
    ("tls.certificate", _tls(not_after=NOW + timedelta(days=5)), Severity.CRIT, "days_left", "renew"),
    ("tls.certificate", _tls(not_after=NOW + timedelta(days=15)), Severity.WARN, "days_left", "renew"),
    ("tls.certificate", _tls(trusted=False, verify_error="certificate has expired"), Severity.CRIT, "verify_error",
     "renew"),
    ("tls.hsts", _set("hsts:https://learnhub-api.example", ""), Severity.WARN, "strict_transport_security",
     "Strict-Transport-Security"),
    ("spaces.public-list", _set("policy:learnhub-media", {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"],
         "Resource": "arn:aws:s3:::learnhub-media"}]}),
     Severity.CRIT, "policy_statements", "delete-bucket-policy"),
    ("spaces.public-list", _set("acl:learnhub-media", ["AllUsers:READ"]), Severity.CRIT, "acl_public",
     "File Listing"),
    ("spaces.public-uploads", _set("policy:learnhub-media", {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::learnhub-media/*"}]}), Severity.CRIT, "policy_statements", "put-object-acl"),
    ("spaces.public-uploads", _set("upload_acls:learnhub-media", {"uploads/a.png": ["AllUsers:READ"]}),
     Severity.CRIT, "public_objects", "put-object-acl"),
    ("spaces.cors", _set("cors:learnhub-media", [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PUT"]}]),
     Severity.WARN, "rules", "AllowedOrigins"),
    ("tokens.spaces-keys", _set("spaces_keys", [SpacesKey("all", "AK3", [("", "readwrite")])]), Severity.WARN,
     "grants", "doctl spaces keys update"),
    ("gdpr.erasure-drill", _set("erasure_runbooks", []), Severity.WARN, "looked_in", "gdpr-erasure.yaml"),
    ("gdpr.erasure-drill", _set("drill_runs", []), Severity.WARN, "runs", "doops drill run"),
]


@pytest.mark.parametrize(("rule", "breaks", "severity", "evidence", "fix"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_fires_on_its_misconfiguration(rule: str, breaks: Any, severity: Severity, evidence: str,
                                                 fix: str) -> None:
    inp = healthy()
    breaks(inp)
    found = [f for f in by_rule(run(inp), rule) if f.severity is not Severity.INFO]
    assert found, f"{rule} did not fire"
    f = found[0]
    assert f.severity is severity, (f.severity, f.summary)
    assert evidence in f.evidence, f.evidence
    assert fix in f.fix, f.fix
    assert f.area == RULES[rule].area


def test_every_rule_has_a_misconfiguration_case() -> None:
    silent = {"tokens.api-scope", "gdpr.backup-retention"}
    assert {c[0] for c in CASES} | silent == set(RULES)


def test_an_unavailable_input_is_info_not_assessed_never_above_info() -> None:
    inp = healthy()
    for key in list(inp.values):
        if key.startswith(("tls:", "policy:", "firewall:", "status:")) or key in ("apps", "drill_runs"):
            del inp.values[key]
            inp.fail(key, "Spaces credentials missing")
    result = run(inp)
    skipped = [f for f in result.findings if f.summary.startswith("not assessed")]
    assert {f.rule for f in skipped} >= {"tls.version", "spaces.public-list", "fw.open-source", "db.replica-lag",
                                         "compute.instances", "gdpr.erasure-drill"}
    assert all(f.severity is Severity.INFO for f in skipped)
    assert not result.failed


def test_areas_filter_the_rules() -> None:
    inp = healthy()
    inp.put("firewall:db1", [FirewallRule("ip_addr", "0.0.0.0/0")])
    _single_node(inp)
    res = run(inp, "resilience")
    assert {f.area for f in res.findings} == {"resilience"} and res.objectives
    sec = run(inp, "security")
    assert {f.area for f in sec.findings} == {"security"} and sec.objectives == []


def test_fail_on_warn_and_crit() -> None:
    inp = healthy()
    _single_node(inp)  # a warn only
    assert not run(copy.deepcopy(inp)).failed
    assert run(copy.deepcopy(inp), fail_on="warn").failed
    inp.put("replicas:db1", [])  # a crit
    assert run(inp).failed


def test_objectives_table_healthy_and_broken() -> None:
    rows = {o.objective: o for o in run(healthy()).objectives}
    assert rows["database"].achievable == "yes"
    assert "cross-region replica learnhub-db-ams3 (ams3) present, lag 0.3 s" in rows["database"].supports
    assert "promote measured at 0.24 s in the last drill -> 2 min achievable" in rows["database"].supports
    assert rows["compute"].achievable == "yes" and "standby learnhub-api-ams3" in rows["compute"].supports
    assert rows["storage"].achievable == "yes" and "current gap" in rows["storage"].supports
    assert rows["dns"].achievable == "yes" and "TTL 60 s" in rows["dns"].supports
    inp = healthy()
    inp.put("replicas:db1", [])
    inp.put("dns:learnhub.example:api:CNAME", [DomainRecord(7, "CNAME", "api", "x.", 3600)])
    _no_replica_bucket(inp)
    _no_standby(inp)
    rows = {o.objective: o for o in run(inp).objectives}
    assert rows["database"].achievable == "no" and "no read replica outside nyc3" in rows["database"].supports
    assert rows["dns"].achievable == "no" and rows["storage"].achievable == "no"
    assert rows["compute"].achievable == "no"
    inp = healthy()
    inp.put("drill_runs", [])
    assert {o.objective: o for o in run(inp).objectives}["database"].achievable == "unproven"


# -- the command, against a mocked API ------------------------------------------------------------------------


def _cfg(tmp_path: Path) -> str:
    p = tmp_path / "doops.yaml"
    p.write_text(f"drills:\n  history_url: sqlite:///{tmp_path}/drills.db\n")
    return str(p)


def _mock_api(router: respx.Router, *, open_firewall: bool = False) -> None:
    router.get("/v2/databases").respond(200, json={"databases": [{
        "id": "db1", "name": "learnhub-db", "engine": "pg", "version": "15", "region": "nyc3", "status": "online",
        "num_nodes": 1, "private_network_uuid": "", "connection": {"host": "127.0.0.1", "port": 1, "ssl": True}}]})
    rules = [{"type": "ip_addr", "value": "0.0.0.0/0"}] if open_firewall else [{"type": "app", "value": "a1"}]
    router.get("/v2/databases/db1/firewall").respond(200, json={"rules": rules})
    router.get("/v2/databases/db1/backups").respond(200, json={"backups": []})
    router.get("/v2/databases/db1/replicas").respond(200, json={"replicas": []})
    router.get("/v2/databases/db1/pools").respond(200, json={"pools": []})
    router.get("/v2/apps").respond(200, json={"apps": [], "links": {}, "meta": {"total": 0}})
    router.get("/v2/uptime/checks").respond(200, json={"checks": [], "links": {}, "meta": {"total": 0}})
    router.get("/v2/monitoring/alerts").respond(200, json={"policies": [], "links": {}, "meta": {"total": 0}})
    router.get("/v2/cdn/endpoints").respond(200, json={"endpoints": [], "links": {}, "meta": {"total": 0}})
    router.get("/v2/spaces/keys").respond(200, json={"keys": [
        {"name": "all", "access_key": "AK", "grants": [{"bucket": "", "permission": "fullaccess"}]}],
        "links": {}, "meta": {"total": 1}})


def test_command_json_exit_codes_and_no_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    with respx.mock(base_url=API, assert_all_called=False) as router:
        _mock_api(router, open_firewall=True)
        res = run_doops(["--config", _cfg(tmp_path), "assess", "security", "-o", "json"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
        methods = {c.request.method for c in router.calls}
    assert methods == {"GET"}, methods
    assert res.exit_code == 2, res.stderr
    rules = {(f["rule"], f["severity"]) for f in res.json["findings"]}
    assert ("fw.open-source", "crit") in rules and ("tokens.spaces-keys", "warn") in rules
    f = next(f for f in res.json["findings"] if f["rule"] == "fw.open-source")
    assert f["evidence"]["open"] == ["0.0.0.0/0"] and "doctl databases firewalls replace db1" in f["fix"]
    assert res.json["failed"] is True and res.json["counts"]["crit"] >= 1
    with respx.mock(base_url=API, assert_all_called=False) as router:
        _mock_api(router)
        res = run_doops(["--config", _cfg(tmp_path), "assess", "security"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stdout + res.stderr  # warns only, --fail-on crit
    with respx.mock(base_url=API, assert_all_called=False) as router:
        _mock_api(router)
        res = run_doops(["--config", _cfg(tmp_path), "assess", "security", "--fail-on", "warn"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 2


def test_command_markdown_report_has_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    with respx.mock(base_url=API, assert_all_called=False) as router:
        _mock_api(router)
        res = run_doops(["--config", _cfg(tmp_path), "assess", "-o", "markdown"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert "### findings:" in res.stdout and "### recovery objectives" in res.stdout
    assert "| severity | area | rule | resource | summary | evidence | fix |" in res.stdout
    assert "| objective | target | achievable | supports |" in res.stdout
    assert "| crit | resilience | db.cross-region-replica | learnhub-db |" in res.stdout
    assert res.exit_code == 2


@pytest.mark.parametrize("args", [["assess", "nope"], ["assess", "--fail-on", "info"], ["assess", "-o", "xml"],
                                  ["assess", "--concurrency", "0"], ["assess", "--timeout", "soon"],
                                  ["assess", "--format", "nosuchcolumn"]])
def test_bad_flags_exit_4_before_any_request(args: list[str]) -> None:
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().respond(500)
        res = run_doops(args, env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4, res.stderr
    assert catch_all.call_count == 0
    assert res.stderr.startswith("doops: error:") and len(res.stderr.strip().splitlines()) == 1


def test_docs_list_every_rule_with_source() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "assess.md").read_text()
    for rule in RULES.values():
        line = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{rule.id}` |")), None)
        assert line is not None, f"docs/assess.md lacks {rule.id}"
        assert rule.source in line and rule.area in line


def test_markdown_renderer_tables_and_escaping() -> None:
    import io

    from doops.cli.render import OutputOptions, TableSection, View, render

    view = View(("name", "value"), lambda r: [TableSection(["name", "value"], [["a|b", "x\ny"], ["c", None]],
                                                           title="first"),
                                              TableSection(["name"], [["d"]])])
    out = io.StringIO()
    render(object(), OutputOptions(fmt="markdown"), view, out)
    assert out.getvalue() == ("### first\n\n| name | value |\n| --- | --- |\n| a\\|b | x<br>y |\n| c | - |\n\n"
                              "| name |\n| --- |\n| d |\n")
    narrowed = io.StringIO()
    render(object(), OutputOptions(fmt="markdown", columns=["value"]), view, narrowed)
    assert narrowed.getvalue() == "### first\n\n| value |\n| --- |\n| x<br>y |\n| - |\n"

