"""`doops assess` against the real sandbox: healthy is no crit (exit 0); each misconfiguration the twin offers
turns its rule, with evidence and fix, and the exit code; `-o markdown` has the tables. Everything changed is
restored (the shared sandbox's faults are cleared by the fixture; the firewall and bucket policy here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doops.sandbox import control
from tests.helpers import run_doops
from tests.integration.conftest import Sandbox, start_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

SCENARIO = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "single-instance.yaml"


def assess(sb: Sandbox, *args: str) -> Any:
    res = run_doops(["assess", *args], env=sb.env, secrets=(sb.token,))
    return res


def findings(res: Any, rule: str) -> list[dict[str, Any]]:
    return [f for f in json.loads(res.stdout)["findings"] if f["rule"] == rule]


def api(sb: Sandbox, method: str, path: str, body: Any = None) -> Any:
    resp = httpx.request(method, sb.state["api_url"] + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {sb.token}"})
    resp.raise_for_status()
    return resp.json() if resp.content else None


def cluster_id(sb: Sandbox, name: str) -> str:
    return next(str(d["id"]) for d in api(sb, "GET", "/v2/databases")["databases"] if d["name"] == name)


def test_healthy_sandbox_has_no_crit(sandbox: Sandbox) -> None:
    res = assess(sandbox, "-o", "json")
    data = json.loads(res.stdout)
    crit = [(f["rule"], f["resource"], f["summary"]) for f in data["findings"] if f["severity"] == "crit"]
    assert crit == [] and res.exit_code == 0, (crit, res.stderr)
    rows = {o["objective"]: o for o in data["objectives"]}
    assert "cross-region replica learnhub-db-ams3 (ams3) present" in rows["database"]["supports"]
    assert rows["dns"]["achievable"] == "yes" and rows["storage"]["achievable"] == "yes"
    assert not findings(res, "fw.open-source") and not findings(res, "spaces.public-list")
    assert not [f for f in findings(res, "tls.version") if f["severity"] != "info"]
    # TLS was judged where the sandbox serves it (its config's tls.urls), trusting the sandbox CA (tls.ca_file)
    assert not [f for f in data["findings"] if f["rule"] == "tls.certificate" and f["severity"] != "info"]


def test_open_firewall_source_is_crit_and_restored(sandbox: Sandbox) -> None:
    cid = cluster_id(sandbox, "learnhub-db")
    before = api(sandbox, "GET", f"/v2/databases/{cid}/firewall")["rules"]
    opened = [{"type": r["type"], "value": r["value"]} for r in before] + [{"type": "ip_addr", "value": "0.0.0.0/0"}]
    api(sandbox, "PUT", f"/v2/databases/{cid}/firewall", {"rules": opened})
    try:
        res = assess(sandbox, "security", "-o", "json")
    finally:
        api(sandbox, "PUT", f"/v2/databases/{cid}/firewall",
            {"rules": [{"type": r["type"], "value": r["value"]} for r in before]})
    (f,) = [f for f in findings(res, "fw.open-source") if f["resource"] == "learnhub-db"]
    assert f["severity"] == "crit" and f["evidence"]["open"] == ["0.0.0.0/0"]
    assert f"doctl databases firewalls replace {cid}" in f["fix"]
    assert res.exit_code == 2
    assert not [f for f in findings(assess(sandbox, "security", "-o", "json"), "fw.open-source")
                if f["resource"] == "learnhub-db"]


def test_public_bucket_policy_is_crit_and_restored(sandbox: Sandbox) -> None:
    import boto3

    env = sandbox.env
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="nyc3",
                      aws_access_key_id=env["SPACES_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["SPACES_SECRET_ACCESS_KEY"])
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": ["arn:aws:s3:::learnhub-media", "arn:aws:s3:::learnhub-media/*"]}]}
    s3.put_bucket_policy(Bucket="learnhub-media", Policy=json.dumps(policy))
    try:
        res = assess(sandbox, "security", "-o", "json")
    finally:
        s3.delete_bucket_policy(Bucket="learnhub-media")
    (listing,) = [f for f in findings(res, "spaces.public-list") if f["resource"] == "learnhub-media"]
    (uploads,) = [f for f in findings(res, "spaces.public-uploads") if f["resource"] == "learnhub-media"]
    assert listing["severity"] == uploads["severity"] == "crit"
    assert listing["evidence"]["policy_statements"] and "delete-bucket-policy" in listing["fix"]
    assert res.exit_code == 2


@pytest.mark.parametrize(("fault", "rule", "severity", "evidence"), [
    ({"max_version": "1.2"}, "tls.version", "warn", "best_version"),
    ({"expires_in": 5 * 86400}, "tls.certificate", "crit", "days_left"),
    ({"expires_in": 15 * 86400}, "tls.certificate", "warn", "days_left"),
    ({"hsts": False}, "tls.hsts", "warn", "strict_transport_security"),
])
def test_tls_faults_turn_their_rule(sandbox: Sandbox, fault: dict[str, Any], rule: str, severity: str,
                                    evidence: str) -> None:
    url = sandbox.state["apps_tls"]["learnhub-api"]  # where the sandbox serves the app's TLS (config tls.urls)
    sandbox.fault(kind="tls", app="learnhub-api", **fault)
    res = assess(sandbox, "security", "-o", "json")
    got = [f for f in findings(res, rule) if f["resource"] == url]
    assert got and got[0]["severity"] == severity, (url, findings(res, rule))
    assert evidence in got[0]["evidence"] and got[0]["fix"]
    assert res.exit_code == (2 if severity == "crit" else 0)
    assert assess(sandbox, "security", "--fail-on", "warn").exit_code == 2


def test_markdown_report_has_the_tables(sandbox: Sandbox) -> None:
    res = assess(sandbox, "-o", "markdown")
    assert "### findings:" in res.stdout and "### recovery objectives" in res.stdout
    assert "| objective | target | achievable | supports |" in res.stdout
    assert "| database | RTO 2 min, RPO 1 min |" in res.stdout


@pytest.fixture(scope="module")
def single_instance(sandbox_root: Path) -> Iterator[Sandbox]:
    sb = start_sandbox(sandbox_root / "single-instance", str(SCENARIO))
    try:
        yield sb
    finally:
        control.stop(sb.dir, keep=False)


def test_single_instance_is_flagged(single_instance: Sandbox) -> None:
    res = assess(single_instance, "resilience", "-o", "json")
    (f,) = [f for f in findings(res, "compute.instances") if f["resource"] == "learnhub-api"]
    assert f["severity"] == "warn" and f["evidence"] == {"api": 1, "ws": 1}
    assert "instance_count: 2" in f["fix"]
    assert not [f for f in findings(res, "compute.instances") if f["resource"] == "learnhub-api-ams3"]
    assert res.exit_code == 0
    assert assess(single_instance, "resilience", "--fail-on", "warn").exit_code == 2
