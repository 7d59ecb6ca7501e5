"""`doops failover db` against the sandbox: a real promotion of a real standby, refusals that send
nothing, data-loss acceptance, dry runs, interruption and re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.helpers import Result, run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def secrets_of(sb: Sandbox) -> tuple[str, ...]:
    dbs = httpx.get(sb.state["api_url"] + "/v2/databases", headers={"Authorization": f"Bearer {sb.token}"},
                    timeout=10).json()["databases"]
    passwords = tuple({d["connection"]["password"] for d in dbs if d.get("connection")})
    return (sb.token, *passwords)


def failover(sb: Sandbox, *args: str) -> Result:
    res = run_doops(["failover", "db", "--region", "ams3", "-o", "json", *args], env=sb.env, secrets=secrets_of(sb))
    assert "Traceback" not in res.stderr
    return res


def api_writes_since(sb: Sandbox, index: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sb.requests()[index:] if r["method"] in WRITES]


def replica_uri(sb: Sandbox, name: str = "learnhub-db-ams3") -> str:
    h = {"Authorization": f"Bearer {sb.token}"}
    dbs = httpx.get(sb.state["api_url"] + "/v2/databases", headers=h, timeout=10).json()["databases"]
    db = next(d for d in dbs if d["name"] == "learnhub-db")
    rep = httpx.get(sb.state["api_url"] + f"/v2/databases/{db['id']}/replicas/{name}", headers=h, timeout=10)
    return str(rep.json()["replica"]["connection"]["uri"])


def in_recovery(uri: str) -> bool:
    with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("select pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def test_real_promotion_takes_writes_and_measures_rto(fresh_sandbox: Sandbox, isolated_env: Path) -> None:
    sb = fresh_sandbox
    uri = replica_uri(sb)
    assert in_recovery(uri)
    # Output options are checked before anything is sent: a bad --format with --yes promotes nothing.
    secrets = secrets_of(sb)
    start = len(sb.requests())
    for bad in (["--format", "nosuchfield"], ["--timeout", "0"], ["--rto", "0s"],
                ["--detected-at", "2999-01-01T00:00:00Z"]):
        res = run_doops(["failover", "db", "--region", "ams3", "--yes", *bad], env=sb.env, secrets=secrets)
        assert res.exit_code == 4 and len(res.stderr.strip().splitlines()) == 1, (bad, res.stderr)
    assert sb.requests()[start:] == [] and in_recovery(uri)
    res = failover(sb, "--yes")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["outcome"] == "promoted" and out["dry_run"] is False
    assert out["cluster"] == "learnhub-db" and out["replica"] == "learnhub-db-ams3" and out["region"] == "ams3"
    assert all(p["ok"] for p in out["prechecks"])
    assert {p["name"] for p in out["prechecks"]} == {"replica online", "primary reachable", "replica lag",
                                                     "no other failover"}
    assert out["result"] == "ok"
    t = out["timings"]
    assert t["promote_sent"] <= t["api_online"] and t["promote_sent"] <= t["writable"]
    assert 0 < out["rto_seconds"] < out["rto_target_seconds"] == 120 and out["met"] is True
    assert out["new_primary"]["name"] == "learnhub-db-ams3" and out["new_primary"]["port"] > 0
    assert isinstance(out["data_loss"]["heartbeat_rows_missing"], int)
    # The server itself: writable, detached, with doops's canary row.
    assert not in_recovery(uri)
    with psycopg.connect(uri, connect_timeout=5) as conn:
        row = conn.execute("select count(*) from doops_canary").fetchone()
        assert row is not None and row[0] >= 1
    # Progress went to stderr, the result alone to stdout; the audit has the run, without secrets.
    assert "promote accepted" in res.stderr
    audit = (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").read_text()
    entry = json.loads(audit.strip().splitlines()[-1])
    assert entry["action"] == "failover db" and entry["outcome"] == "promoted" and entry["user"]
    assert entry["platform"]["sandbox"] is True and entry["platform"]["api_host"].startswith("127.0.0.1:")
    assert entry["platform"]["account_uuid"] and entry["platform"]["account_email"]
    for secret in secrets_of(sb):
        assert secret not in audit
    # DigitalOcean does not fence the old primary: the result says so, and what to repoint.
    assert any("split-brain risk: learnhub-db still accepts writes" in w for w in out["warnings"])
    assert any("Repoint application connection strings" in step for step in out["next_steps"])
    assert "split-brain risk" in res.stderr
    table = run_doops(["audit", "--operation", "failover db", "--cluster", "learnhub-db"], env=sb.env)
    assert table.exit_code == 0 and "promoted" in table.stdout and "127.0.0.1" in table.stdout
    # Running it again: the replica was already promoted; say when, verify only, and invent no RTO.
    mid = len(sb.requests())
    again = failover(sb, "--yes")
    assert again.exit_code == 0, again.stderr
    assert again.json["outcome"] == "verified" and again.json["already_promoted"] is True
    assert again.json["promoted_at"] is not None and again.json["rto_seconds"] is None and again.json["met"] is None
    assert "already promoted at" in again.stderr
    named = failover(sb, "--yes", "--replica", "learnhub-db-ams3")
    assert named.exit_code == 0 and named.json["rto_seconds"] is None and named.json["outcome"] == "verified"
    assert api_writes_since(sb, mid) == [], "a re-run only verifies"


def test_db_lag_refuses_and_sends_nothing(sandbox: Sandbox) -> None:
    sandbox.fault(kind="db-lag", replica="learnhub-db-ams3")
    uri = replica_uri(sandbox)

    def behind() -> bool:
        with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute("select extract(epoch from now() - pg_last_xact_replay_timestamp())").fetchone()
        return bool(row and row[0] and row[0] > 6)

    wait_for(behind, 30, "replica to fall more than 5 s behind", interval=0.25)
    start = len(sandbox.requests())
    res = failover(sandbox, "--yes")
    assert res.exit_code == 2, res.stderr
    assert res.json["outcome"] == "refused"
    lag = next(p for p in res.json["prechecks"] if p["name"] == "replica lag")
    assert lag["ok"] is False and lag["value"]["seconds"] > 5
    assert "refused, nothing sent" in res.stderr
    assert api_writes_since(sandbox, start) == []
    assert in_recovery(uri)


def test_dry_run_sends_no_write(sandbox: Sandbox, isolated_env: Path) -> None:
    uri = replica_uri(sandbox)
    start = len(sandbox.requests())
    res = failover(sandbox, "--dry-run")
    assert res.exit_code == 0, res.stderr
    assert res.json["dry_run"] is True and res.json["outcome"] == "planned"
    assert res.json["timings"] == {"promote_sent": None, "api_online": None, "writable": None}
    assert res.json["topology_before"][0]["member"] == "learnhub-db"
    assert api_writes_since(sandbox, start) == []
    assert in_recovery(uri)
    audit = (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").read_text().strip().splitlines()
    assert json.loads(audit[-1])["dry_run"] is True


def test_db_stop_needs_accept_data_loss(fresh_sandbox: Sandbox) -> None:
    sb = fresh_sandbox
    sb.fault(kind="db-stop", cluster="learnhub-db")
    start = len(sb.requests())
    refused = failover(sb, "--yes")
    assert refused.exit_code == 2
    assert "--accept-data-loss" in refused.stderr
    assert api_writes_since(sb, start) == []
    res = failover(sb, "--yes", "--accept-data-loss")
    assert res.exit_code == 0, res.stderr
    assert res.json["outcome"] == "promoted" and res.json["met"] is True
    primary = next(p for p in res.json["prechecks"] if p["name"] == "primary reachable")
    assert primary["value"] == "no" and primary["ok"] is False and primary["blocking"] is False
    # The outage began before the promote: the RTO measured from it is short of the truth; say so.
    assert any("--detected-at" in w for w in res.json["warnings"])
    assert any("learnhub-db is unreachable now" in w for w in res.json["warnings"])
    assert res.json["data_loss"]["heartbeat_rows_missing"] is None  # the old primary cannot be asked
    assert not in_recovery(replica_uri_promoted(sb))


def replica_uri_promoted(sb: Sandbox) -> str:
    dbs = httpx.get(sb.state["api_url"] + "/v2/databases", headers={"Authorization": f"Bearer {sb.token}"},
                    timeout=10).json()["databases"]
    return str(next(d for d in dbs if d["name"] == "learnhub-db-ams3")["connection"]["uri"])


def test_interrupt_after_promote_then_rerun_verifies(fresh_sandbox: Sandbox) -> None:
    sb = fresh_sandbox
    # Slow reads of single clusters: the run is still polling for the new primary when interrupted.
    sb.fault(kind="latency", ms=3000, route="GET /v2/databases/*")
    start = len(sb.requests())
    env = {**os.environ, **sb.env}
    proc = subprocess.Popen([sys.executable, "-m", "doops", "-o", "json", "failover", "db", "--region", "ams3",
                             "--yes"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(w.startswith("PUT ") for w in api_writes_since(sb, start)), 60, "the promote call")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again" in err and "Traceback" not in err
    sb.fault(kind="clear")
    mid = len(sb.requests())
    res = failover(sb, "--yes")
    assert res.exit_code == 0, res.stderr
    assert res.json["already_promoted"] is True and res.json["outcome"] == "verified"
    assert res.json["timings"]["promote_sent"] is not None and res.json["timings"]["writable"] is not None
    assert api_writes_since(sb, mid) == [], "a re-run only verifies"


def test_bad_inputs(sandbox: Sandbox) -> None:
    res = run_doops(["failover", "db", "--region", "sfo3", "--yes"], env=sandbox.env, secrets=(sandbox.token,))
    assert res.exit_code == 4 and "learnhub-db-ams3 (ams3)" in res.stderr
    res = run_doops(["failover", "db", "nope-db", "--region", "ams3", "--yes"], env=sandbox.env,
                    secrets=(sandbox.token,))
    assert res.exit_code == 4 and "nope-db" in res.stderr and "learnhub-db" in res.stderr
    start = len(sandbox.requests())
    res = run_doops(["failover", "db", "--region", "ams3"], env=sandbox.env, secrets=(sandbox.token,))
    assert res.exit_code == 4 and "--yes" in res.stderr
    assert api_writes_since(sandbox, start) == []
    res = run_doops(["failover", "db", "--region", "ams3", "--max-lag", "lots"], env=sandbox.env)
    assert res.exit_code == 4 and "lots" in res.stderr


def test_read_only_token_is_refused_by_the_promote_itself(sandbox: Sandbox) -> None:
    """No probe: the promote is the first write, and a read-only token's 403 changes nothing."""
    env = {**sandbox.env, "DIGITALOCEAN_ACCESS_TOKEN": sandbox.state["readonly_token"]}
    uri = replica_uri(sandbox)
    start = len(sandbox.requests())
    res = run_doops(["failover", "db", "--region", "ams3", "--yes", "-o", "json"], env=env,
                    secrets=(sandbox.state["readonly_token"],))
    assert res.exit_code == 2, res.stderr
    assert res.json["outcome"] == "refused" and res.json["result"] == "refused"
    assert "write access to databases" in res.stderr and "database:update" in res.stderr
    writes = api_writes_since(sandbox, start)
    assert len(writes) == 1 and writes[0].endswith("/replicas/learnhub-db-ams3/promote"), writes
    assert in_recovery(uri)
