"""The shipped runbooks (`runbooks/*.yaml`) against the sandbox, through `doops runbook run FILE --yes -o json`:
each validates, runs green (outcome ok, every step and steady-state check passed, every objective measured and
met, no rollback needed) and leaves what it claims to leave. The fault-injecting drills break the sandbox for
real; db-regional-failover promotes the replica for good, so it gets a sandbox of its own, while
app-regional-failover fails back and runs on the shared one. Also: a JUnit report parsed back, and a dry run of
the GDPR erasure that changes nothing anywhere. The production recover-* runbooks meet their outage as
production would: the test injects the fault from outside first."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from tests.helpers import Result, run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration]

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
# The production runbooks: the recovery a sandbox-only drill rehearses, without injecting anything.
RECOVERY = {"recover-db-region", "recover-app-release", "recover-app-region"}
SHIPPED = {"db-regional-failover", "db-restore-drill", "app-bad-release", "app-regional-failover",
           "storage-replication", "cdn-release", "gdpr-erasure", *RECOVERY}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


# -- helpers ----------------------------------------------------------------------------------------------------


def api(sb: Sandbox, path: str, method: str = "GET") -> Any:
    resp = httpx.request(method, sb.state["api_url"] + path, headers={"Authorization": f"Bearer {sb.token}"},
                         timeout=10)
    resp.raise_for_status()
    return resp.json() if resp.content else None


def cluster(sb: Sandbox, name: str) -> dict[str, Any] | None:
    return next((d for d in api(sb, "/v2/databases")["databases"] if d["name"] == name), None)


def secrets_of(sb: Sandbox) -> tuple[str, ...]:
    passwords = {d["connection"]["password"] for d in api(sb, "/v2/databases")["databases"] if d.get("connection")}
    return (sb.token, sb.env["SPACES_SECRET_ACCESS_KEY"], *passwords)


def run_runbook(sb: Sandbox, name: str, *args: str) -> Result:
    res = run_doops(["runbook", "run", str(RUNBOOKS / f"{name}.yaml"), "--yes", "-o", "json", *args], env=sb.env,
                    secrets=secrets_of(sb))
    assert "Traceback" not in res.stderr
    return res


def assert_green(res: Result, name: str) -> dict[str, Any]:
    """Exit 0, outcome ok, every step and steady-state check ok, every objective measured and met."""
    assert res.exit_code == 0, res.stderr[-3000:]
    out: dict[str, Any] = res.json
    assert out["runbook"] == name and out["outcome"] == "ok" and out["dry_run"] is False, out["message"]
    assert out["steps"] and all(s["status"] == "ok" for s in out["steps"]), [(s["id"], s["status"], s["error"])
                                                                            for s in out["steps"]]
    checks = out["steady_state"]["before"] + out["steady_state"]["after"]
    assert all(c["status"] == "ok" for c in checks), checks
    assert len(out["steady_state"]["after"]) == len(out["steady_state"]["before"])
    assert out["rollbacks"] == []
    for o in out["objectives"]:
        assert o["measured_seconds"] is not None and o["met"] is True, o
        assert 0 <= o["measured_seconds"] <= o["target_seconds"], o
    return out


def step(out: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in out["steps"] if s["id"] == step_id)


def objective(out: dict[str, Any], name: str) -> dict[str, Any]:
    return next(o for o in out["objectives"] if o["name"] == name)


def writes_since(sb: Sandbox, index: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sb.requests()[index:] if r["method"] in WRITES]


def config(sb: Sandbox) -> dict[str, Any]:
    return dict(yaml.safe_load((sb.dir / "doops.yaml").read_text()))


def edge(sb: Sandbox) -> str:
    return str(config(sb)["cdn"][0]["endpoint_url"]).rstrip("/")


def s3(sb: Sandbox, region: str = "nyc3") -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    env = sb.env
    return boto3.client("s3", endpoint_url=config(sb)["spaces"]["endpoint_url"], region_name=region,
                        aws_access_key_id=env["SPACES_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["SPACES_SECRET_ACCESS_KEY"],
                        config=BotoConfig(s3={"addressing_style": "path"}))


def exists(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def db(sb: Sandbox) -> psycopg.Connection[Any]:
    conn = cluster(sb, "learnhub-db")
    assert conn is not None
    c = conn["connection"]
    return psycopg.connect(host=c["host"], port=c["port"], user=c["user"], password=c["password"], dbname="learnhub",
                           sslmode="require", connect_timeout=5, autocommit=True)


def cache(sb: Sandbox) -> Any:
    import redis

    c = cluster(sb, "learnhub-cache")
    assert c is not None
    conn = c["connection"]
    return redis.Redis(host=conn["host"], port=conn["port"], username=conn.get("user") or "default",
                       password=conn["password"], ssl=True, ssl_ca_certs=str(sb.state["ca_cert"]),
                       decode_responses=True, socket_timeout=5)


# -- validate -------------------------------------------------------------------------------------------------


def test_every_shipped_runbook_validates() -> None:
    files = sorted(RUNBOOKS.glob("*.yaml"))
    assert {f.stem for f in files} == SHIPPED
    res = run_doops(["runbook", "validate", *map(str, files), "-o", "json"])
    assert res.exit_code == 0, res.stdout + res.stderr
    files_seen = res.json["files"] if isinstance(res.json, dict) else res.json
    assert {(f["name"], f["valid"], len(f["problems"])) for f in files_seen} == {(n, True, 0) for n in SHIPPED}
    # Each runbook's `name` is its file's name (what `doops runbook list` and reports show).
    for f in files:
        assert yaml.safe_load(f.read_text())["name"] == f.stem


def test_the_production_runbooks_inject_nothing_and_accept_a_real_api() -> None:
    for name in RECOVERY:
        rb = yaml.safe_load((RUNBOOKS / f"{name}.yaml").read_text())
        assert "sandbox" not in (rb.get("requires") or []), name
        steps = rb["steps"] + (rb.get("rollbacks") or []) + (rb.get("steady_state") or [])
        assert not [s["id"] for s in steps if str(s.get("action", "")).startswith("sandbox.")], name


# -- the shared sandbox -----------------------------------------------------------------------------------------


def test_db_restore_drill_restores_verifies_and_deletes_its_cluster(sandbox: Sandbox) -> None:
    res = run_runbook(sandbox, "db-restore-drill")
    out = assert_green(res, "db-restore-drill")
    restored = step(out, "restore")["outputs"]
    name = restored["new_cluster"]["name"]
    assert name.startswith("learnhub-db-pitr-") and restored["met"] is True
    assert all(v["ok"] for v in restored["verification"]), restored["verification"]
    assert step(out, "data-present")["outputs"]["value"] >= 1
    assert step(out, "cleanup")["outputs"]["deleted"] is True
    assert cluster(sandbox, name) is None, "the restored cluster is gone"
    assert cluster(sandbox, "learnhub-db") is not None
    assert {o["name"] for o in out["objectives"]} == {"rto", "rpo"}


@pytest.fixture
def unpinned(sandbox: Sandbox) -> Iterator[Sandbox]:
    """Whatever the test did, the app is left unpinned (a pin would refuse later deploys)."""
    yield sandbox
    app = next(a for a in api(sandbox, "/v2/apps?per_page=200")["apps"] if a["spec"]["name"] == "learnhub-api")
    if app.get("pinned_deployment"):
        api(sandbox, f"/v2/apps/{app['id']}/rollback/commit", "POST")


def test_app_bad_release_is_rolled_back_within_the_compute_objective(unpinned: Sandbox) -> None:
    sb = unpinned
    before = api(sb, "/v2/apps?per_page=200")["apps"]
    good = next(a for a in before if a["spec"]["name"] == "learnhub-api")["active_deployment"]["id"]
    out = assert_green(run_runbook(sb, "app-bad-release"), "app-bad-release")
    release = step(out, "release")["outputs"]
    assert {c["replicas_ready"] for c in release["health"]["components"]} == {0}, "the release was really bad"
    assert step(out, "broken")["outputs"]["value"]["status"] == 503
    rollback = step(out, "rollback")["outputs"]
    assert rollback["from_deployment"] == release["deployment"] and rollback["to_deployment"] == good
    assert rollback["committed"] is True
    rto = objective(out, "rto")
    assert rto["target_seconds"] == 300
    assert httpx.get(sb.state["apps"]["learnhub-api"] + "/api/health", timeout=5).status_code == 200


def test_app_regional_failover_cuts_dns_over_and_fails_back(sandbox: Sandbox) -> None:
    record = next(r for r in api(sandbox, "/v2/domains/learnhub.example/records?per_page=200")["domain_records"]
                  if r["name"] == "api" and r["type"] == "CNAME")
    out = assert_green(run_runbook(sandbox, "app-regional-failover"), "app-regional-failover")
    failover = step(out, "failover")["outputs"]
    assert failover["standby"] == "learnhub-api-ams3" and failover["record"]["old"] == record["data"]
    assert failover["record"]["new"].startswith("learnhub-api-ams3-")
    assert step(out, "outage")["outputs"]["value"]["status"] == 503
    assert step(out, "dns-answers")["outputs"]["value"]["answer"] == [failover["record"]["new"]]
    assert objective(out, "dns")["target_seconds"] == 60 and objective(out, "rto")["target_seconds"] == 300
    assert step(out, "fail-back")["outputs"]["changed"] is True
    after = api(sandbox, f"/v2/domains/learnhub.example/records/{record['id']}")["domain_record"]
    assert after["data"] == record["data"], "failed back: the record points where it pointed"


def test_recover_app_release_rolls_back_a_bad_release_met_from_outside(unpinned: Sandbox) -> None:
    sb = unpinned
    app = next(a for a in api(sb, "/v2/apps?per_page=200")["apps"] if a["spec"]["name"] == "learnhub-api")
    good, live = app["active_deployment"]["id"], sb.state["apps"]["learnhub-api"] + "/api/health"
    sb.fault(kind="bad-release", app="learnhub-api")
    deployed = run_doops(["app", "redeploy", "learnhub-api", "--yes", "--timeout", "4s", "-o", "json"], env=sb.env)
    assert deployed.exit_code == 2 and deployed.json["outcome"] == "verification_failed", deployed.stderr
    wait_for(lambda: httpx.get(live, timeout=5).status_code == 503, 30, "users to meet the bad release")
    out = assert_green(run_runbook(sb, "recover-app-release"), "recover-app-release")
    rollback = step(out, "rollback")["outputs"]
    assert rollback["from_deployment"] == deployed.json["deployment"] and rollback["to_deployment"] == good
    assert rollback["committed"] is True and rollback["met"] is True
    assert objective(out, "rto")["measured_seconds"] == rollback["rto_seconds"]
    assert step(out, "healthy")["outputs"]["value"]["status"] == "ok"
    assert httpx.get(live, timeout=5).status_code == 200


def test_recover_app_region_fails_over_then_back_with_the_same_runbook(sandbox: Sandbox) -> None:
    record = next(r for r in api(sandbox, "/v2/domains/learnhub.example/records?per_page=200")["domain_records"]
                  if r["name"] == "api" and r["type"] == "CNAME")
    sandbox.fault(kind="app-unhealthy", app="learnhub-api")
    out = assert_green(run_runbook(sandbox, "recover-app-region", "--input", "region=ams3"), "recover-app-region")
    failover = step(out, "failover")["outputs"]
    assert failover["standby"] == "learnhub-api-ams3" and failover["record"]["old"] == record["data"]
    assert step(out, "dns-answers")["outputs"]["value"]["answer"] == [failover["record"]["new"]]
    assert objective(out, "dns")["target_seconds"] == 60 and objective(out, "rto")["target_seconds"] == 300
    sandbox.clear()  # the region is healthy again: fail back with the same runbook
    back = assert_green(run_runbook(sandbox, "recover-app-region", "--input", "region=nyc"), "recover-app-region")
    assert step(back, "failover")["outputs"]["standby"] == "learnhub-api"
    after = api(sandbox, f"/v2/domains/learnhub.example/records/{record['id']}")["domain_record"]
    assert after["data"] == record["data"], "failed back: the record points where it pointed"


def test_storage_replication_measures_the_rpo_and_removes_its_canary(sandbox: Sandbox, tmp_path: Path) -> None:
    report = tmp_path / "storage.xml"
    out = assert_green(run_runbook(sandbox, "storage-replication", "--report", f"junit={report}"),
                       "storage-replication")
    write = step(out, "write")["outputs"]
    assert write["stamp"] and write["etag"]
    assert step(out, "replicated")["outputs"]["value"]["etag"] == write["etag"]
    # The sandbox's replicator copies after 2 s: the RPO measured is that delay, not zero.
    rpo = objective(out, "rpo")
    assert 1.5 <= rpo["measured_seconds"] <= 60, rpo
    key = write["key"]
    assert not exists(s3(sandbox), "learnhub-media", key) and not exists(s3(sandbox, "ams3"), "learnhub-media-ams3",
                                                                         key)
    # The JUnit report, parsed back: a testcase per step and per objective, none failed.
    root = ET.parse(report).getroot()
    cases = root.iter("testcase")
    names = {c.get("name") for c in cases}
    assert {"write", "replicated", "remove", "deletion-replicated"} <= names and "rpo" in " ".join(map(str, names))
    for suite in root.iter("testsuite"):
        assert suite.get("failures") in ("0", None) and suite.get("errors") in ("0", None), suite.attrib
    assert not list(root.iter("failure")) and not list(root.iter("error"))


def test_cdn_release_makes_the_edge_serve_the_new_version(sandbox: Sandbox) -> None:
    key = "static/doops-release-canary.txt"
    client = s3(sandbox)
    client.put_object(Bucket="learnhub-media", Key=key, Body=b"previous release\n",
                      CacheControl="public, max-age=31536000, immutable", ContentType="text/plain")
    url = f"{edge(sandbox)}/{key}"
    assert httpx.get(url, timeout=5).text == "previous release\n"
    cached = httpx.get(url, timeout=5)
    assert cached.headers.get("x-cache") == "HIT" and cached.text == "previous release\n"  # what users get
    out = assert_green(run_runbook(sandbox, "cdn-release"), "cdn-release")
    stamp = step(out, "upload")["outputs"]["stamp"]
    purge = step(out, "purge")["outputs"]
    assert [v["state"] for v in purge["verification"]] == ["fresh"]
    now = httpx.get(url, timeout=5)
    assert now.status_code == 200 and stamp in now.text and "previous release" not in now.text


def test_gdpr_erasure_dry_run_changes_nothing_then_the_run_erases_one_learner(sandbox: Sandbox,
                                                                              isolated_env: Path) -> None:
    sb = sandbox
    target, other = 4242, 4243
    with db(sb) as conn:
        conn.execute("create table if not exists public.learners (id bigint primary key, email text not null)")
        conn.execute("create table if not exists public.enrollments (learner_id bigint not null "
                     "references public.learners (id), course text not null)")
        for lid in (target, other):
            conn.execute("delete from public.enrollments where learner_id = %s", (lid,))
            conn.execute("delete from public.learners where id = %s", (lid,))
            conn.execute("insert into public.learners values (%s, %s)", (lid, f"l{lid}@example.com"))
            conn.execute("insert into public.enrollments values (%s, 'video-101'), (%s, 'pdf-7')", (lid, lid))
    client, replica = s3(sb), s3(sb, "ams3")
    keys = {lid: [f"uploads/{lid}/essay.pdf", f"uploads/{lid}/avatar.png"] for lid in (target, other)}
    for lid in (target, other):
        for k in keys[lid]:
            client.put_object(Bucket="learnhub-media", Key=k, Body=f"{lid} {k}".encode())
    wait_for(lambda: all(exists(replica, "learnhub-media-ams3", k) for ks in keys.values() for k in ks), 30,
             "the uploads replicated")
    for k in keys[target]:  # cached at the edge: the erasure must purge them
        assert httpx.get(f"{edge(sb)}/{k}", timeout=5).status_code == 200
    r = cache(sb)
    for lid in (target, other):
        for part in ("session", "profile", "progress:video-101"):
            r.set(f"learner:{lid}:{part}", "x")
    r.set(f"learner:{target}0:session", "x")  # another learner whose id starts with the target's

    def learner_rows(lid: int) -> int:
        with db(sb) as conn:
            row = conn.execute("select (select count(*) from public.learners where id = %s) + (select count(*) "
                               "from public.enrollments where learner_id = %s)", (lid, lid)).fetchone()
        return int(row[0]) if row else -1

    # A dry run: steady state read, every write planned, nothing sent anywhere.
    start = len(sb.requests())
    dry = run_runbook(sb, "gdpr-erasure", "--input", f"learner_id={target}", "--dry-run")
    assert dry.exit_code == 0, dry.stderr[-2000:]
    assert dry.json["outcome"] == "dry_run"
    assert {s["status"] for s in dry.json["steps"] if s["kind"] == "action"} == {"dry_run"}
    assert step(dry.json, "uploads")["outputs"]["matched"] == sorted(keys[target])
    assert step(dry.json, "cache-keys")["outputs"]["matched"] == 3
    assert writes_since(sb, start) == []
    assert learner_rows(target) == 3
    assert all(exists(client, "learnhub-media", k) for k in keys[target])
    assert len(r.keys(f"learner:{target}:*")) == 3

    journal = isolated_env / ".local" / "state" / "doops" / "audit.jsonl"
    seen = len(journal.read_text().splitlines()) if journal.exists() else 0
    out = assert_green(run_runbook(sb, "gdpr-erasure", "--input", f"learner_id={target}"), "gdpr-erasure")
    assert step(out, "enrollments")["outputs"]["rowcount"] == 2
    assert step(out, "learner")["outputs"]["row"] == {"id": target}
    assert sorted(step(out, "uploads")["outputs"]["deleted"]) == sorted(keys[target])
    assert step(out, "cache-keys")["outputs"]["deleted"] == 3
    cdn = step(out, "cdn")["outputs"]
    assert sorted(v["path"] for v in cdn["verification"]) == sorted(keys[target])
    assert {v["state"] for v in cdn["verification"]} == {"missing"}
    # The learner is gone from every store...
    assert learner_rows(target) == 0
    assert not any(exists(c, b, k) for c, b in ((client, "learnhub-media"), (replica, "learnhub-media-ams3"))
                   for k in keys[target])
    assert all(httpx.get(f"{edge(sb)}/{k}", timeout=5).status_code == 404 for k in keys[target])
    assert r.keys(f"learner:{target}:*") == []
    # ...and nobody else lost anything.
    assert learner_rows(other) == 3
    assert all(exists(client, "learnhub-media", k) for k in keys[other])
    assert len(r.keys(f"learner:{other}:*")) == 3 and r.exists(f"learner:{target}0:session") == 1
    # The audit trail: a row in the erasure log, a journal line per write.
    with db(sb) as conn:
        row = conn.execute("select rows_deleted, objects_deleted, cache_keys_deleted from public.gdpr_erasures "
                           "where id = %s", (step(out, "audit-record")["outputs"]["row"]["id"],)).fetchone()
    assert row == (3, 2, 3)
    actions = [json.loads(line)["action"] for line in journal.read_text().splitlines()[seen:]]
    assert actions.count("runbook sql.exec") == 4 and actions.count("runbook s3.delete") == 2
    assert actions.count("runbook cache.delete") == 1 and actions.count("cdn purge") == 2
    r.delete(f"learner:{other}:session", f"learner:{other}:profile", f"learner:{other}:progress:video-101",
             f"learner:{target}0:session")


# -- a sandbox of its own ---------------------------------------------------------------------------------------


def test_db_regional_failover_promotes_the_replica_within_the_objective(fresh_sandbox: Sandbox) -> None:
    """Its own sandbox: the primary is killed and the replica promoted for good."""
    sb = fresh_sandbox
    out = assert_green(run_runbook(sb, "db-regional-failover"), "db-regional-failover")
    failover = step(out, "failover")["outputs"]
    assert failover["new_primary"]["name"] == "learnhub-db-ams3" and failover["met"] is True
    assert step(out, "primary-down")["outputs"]["value"]["status"] in ("crit", "unknown")
    rto, rpo = objective(out, "rto"), objective(out, "rpo")
    assert rto["target_seconds"] == 120 and rpo["target_seconds"] == 5
    assert rpo["measured_seconds"] == step(out, "data-lost")["outputs"]["value"]
    promoted = cluster(sb, "learnhub-db-ams3")
    assert promoted is not None
    c = promoted["connection"]
    with psycopg.connect(host=c["host"], port=c["port"], user=c["user"], password=c["password"],
                         dbname="learnhub", sslmode="require", connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("select pg_is_in_recovery()").fetchone()
    assert row is not None and row[0] is False


def test_recover_db_region_promotes_the_replica_after_a_loss_met_from_outside(fresh_sandbox: Sandbox) -> None:
    """Its own sandbox: the primary is killed from outside, then the production runbook promotes for good."""
    sb = fresh_sandbox
    sb.fault(kind="db-stop", cluster="learnhub-db")
    detected_at = datetime.now(UTC)
    detected = detected_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = assert_green(run_runbook(sb, "recover-db-region", "--input", "region=ams3", "--input",
                                   "accept_data_loss=true", "--input", f"detected_at={detected}"),
                       "recover-db-region")
    failover = step(out, "failover")["outputs"]
    assert failover["new_primary"]["name"] == "learnhub-db-ams3" and failover["met"] is True
    rto = objective(out, "rto")
    assert rto["target_seconds"] == 120 and rto["measured_seconds"] == failover["rto_seconds"]
    writable = datetime.fromisoformat(failover["timings"]["writable"].replace("Z", "+00:00"))
    assert abs((writable - detected_at).total_seconds() - rto["measured_seconds"]) < 0.01  # from detection
    assert failover["next_steps"] and failover["warnings"]  # what to repoint; the old primary to keep fenced
    again = run_runbook(sb, "recover-db-region", "--input", "region=ams3", "--input", "accept_data_loss=true")
    assert again.exit_code == 2 and again.json["outcome"] == "objective_missed"  # verified, RTO not re-invented
    assert step(again.json, "failover")["outputs"]["already_promoted"] is True
    assert step(again.json, "writes-ok")["status"] == "ok"
