"""`doops status` after a real failover in a sandbox of its own: the health view follows the topology.

The twin's promotion is a real ``pg_promote`` of the ams3 replica, and (as on DigitalOcean) nothing fences
the old primary: both servers take writes afterwards, which status must call a split-brain risk.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import Result, run_doops
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def clusters(sb: Sandbox) -> dict[str, dict[str, Any]]:
    resp = httpx.get(sb.state["api_url"] + "/v2/databases", headers={"Authorization": f"Bearer {sb.token}"},
                     timeout=10)
    resp.raise_for_status()
    return {d["name"]: d for d in resp.json()["databases"]}


def secrets_of(sb: Sandbox) -> tuple[str, ...]:
    return (sb.token, *{d["connection"]["password"] for d in clusters(sb).values() if d.get("connection")})


def takes_writes(uri: str) -> bool:
    """Read-only question to the server itself: not in recovery and not read-only by default."""
    with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("select pg_is_in_recovery(), current_setting('transaction_read_only')").fetchone()
    assert row is not None
    return not row[0] and row[1] == "off"


def status(sb: Sandbox) -> Result:
    res = run_doops(["status", "databases", "-o", "json"], env=sb.env, secrets=secrets_of(sb))
    assert "Traceback" not in res.stderr
    return res


def checks_of(res: Result) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["resource"], c["check"]): c for c in res.json["checks"]}


def test_status_after_failover_judges_the_new_primary_and_flags_split_brain(fresh_sandbox: Sandbox) -> None:
    sb = fresh_sandbox
    before = checks_of(status(sb))
    assert before[("learnhub-db-ams3", "replica")]["status"] == "ok"
    assert not any(check in ("split-brain", "writable", "config") for _, check in before)

    failover = run_doops(["failover", "db", "--region", "ams3", "--yes"], env=sb.env, secrets=secrets_of(sb))
    assert failover.exit_code == 0, failover.stderr

    # What the twin now is, asked of the servers directly: two writable primaries of one lineage.
    now = clusters(sb)
    assert "learnhub-db-ams3" in now
    assert takes_writes(now["learnhub-db"]["connection"]["uri"])
    assert takes_writes(now["learnhub-db-ams3"]["connection"]["uri"])

    requests_before = len(sb.requests())
    res = status(sb)
    checks = checks_of(res)
    # The promoted replica is no longer "not found": it is judged as the primary it now is.
    assert ("learnhub-db-ams3", "replica") not in checks
    assert not any("not found" in c["summary"] for c in res.json["checks"]), res.json
    for check in ("status", "backups", "connections", "writable"):
        assert checks[("learnhub-db-ams3", check)]["status"] == "ok", checks[("learnhub-db-ams3", check)]
    assert "primary promoted from learnhub-db at " in checks[("learnhub-db-ams3", "status")]["summary"]
    assert checks[("learnhub-db-ams3", "connections")]["summary"].startswith("primary reachable")
    # The old primary still takes writes: split-brain risk, with the fix.
    split = checks[("learnhub-db", "split-brain")]
    assert split["status"] == "crit"
    assert split["summary"].startswith(
        "split-brain risk: two writable primaries of lineage learnhub-db (learnhub-db, learnhub-db-ams3)")
    assert "fence or delete learnhub-db" in split["summary"]
    # The sandbox's config still names the old topology: a warn naming the exact change.
    cfg = checks[("learnhub-db-ams3", "config")]
    assert cfg["status"] == "warn"
    assert cfg["summary"].startswith(
        "config names learnhub-db as primary and learnhub-db-ams3 as its replica, but learnhub-db-ams3 was "
        "promoted at ")
    assert ": set databases.primary: learnhub-db-ams3 and remove the replica entry learnhub-db-ams3 from " \
           "databases.clusters[0].replicas; set databases.clusters[0].name: learnhub-db-ams3" in cfg["summary"]
    assert res.json["overall"] == "crit" and res.exit_code == 2

    # Status only read: no write to the API, one events call, and both servers still as they were.
    sent = sb.requests()[requests_before:]
    assert [r for r in sent if r["method"] in WRITES] == []
    assert sum(r["path"].endswith("/events") for r in sent) == 1
    assert takes_writes(now["learnhub-db"]["connection"]["uri"])
