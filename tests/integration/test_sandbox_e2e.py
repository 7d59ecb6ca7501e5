"""The sandbox through its DigitalOcean API, as doops and users meet it: real promotion, real PITR, real
CDN purge, and each fault doing what it says."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import boto3
import httpx
import psycopg
import pytest

from tests.helpers import run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = pytest.mark.integration


class Api:
    def __init__(self, sb: Sandbox) -> None:
        self.base = sb.state["api_url"]
        self.headers = {"Authorization": f"Bearer {sb.token}"}

    def get(self, path: str) -> Any:
        resp = httpx.get(self.base + path, headers=self.headers, timeout=15)
        resp.raise_for_status()
        return resp.json()

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(method, self.base + path, headers=self.headers, json=body, timeout=30)

    def cluster(self, name: str) -> dict[str, Any]:
        return next(d for d in self.get("/v2/databases")["databases"] if d["name"] == name)


def test_promote_via_api_makes_standby_writable(fresh_sandbox: Sandbox) -> None:
    api = Api(fresh_sandbox)
    db = api.cluster("learnhub-db")
    replica = api.get(f"/v2/databases/{db['id']}/replicas/learnhub-db-ams3")["replica"]
    uri = replica["connection"]["uri"]
    with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (True,)
    resp = api.request("PUT", f"/v2/databases/{db['id']}/replicas/learnhub-db-ams3/promote")
    assert resp.status_code == 204 and resp.content == b""

    def writable() -> bool:
        with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
            if conn.execute("select pg_is_in_recovery()").fetchone() != (False,):
                return False
            conn.execute("create table if not exists promoted_probe (v text)")
            token = uuid.uuid4().hex
            conn.execute("insert into promoted_probe values (%s)", (token,))
            return conn.execute("select count(*) from promoted_probe where v = %s", (token,)).fetchone() == (1,)

    assert wait_for(writable, 30, "promoted replica to accept writes")
    promoted = api.cluster("learnhub-db-ams3")
    assert promoted["status"] == "online" and promoted["region"] == "ams3"
    names = [r["name"] for r in api.get(f"/v2/databases/{db['id']}/replicas")["replicas"]]
    assert "learnhub-db-ams3" not in names


def test_pitr_via_api_has_heartbeats_up_to_target_and_none_after(fresh_sandbox: Sandbox) -> None:
    api = Api(fresh_sandbox)
    db = api.cluster("learnhub-db")
    src_uri = db["connection"]["uri"]

    def heartbeats_after_backup() -> bool:
        with psycopg.connect(src_uri, connect_timeout=5) as conn:
            row = conn.execute("select count(*) from doops_heartbeat").fetchone()
            return bool(row and row[0] >= 3)

    wait_for(heartbeats_after_backup, 30, "heartbeat rows")
    with psycopg.connect(src_uri, connect_timeout=5) as conn:
        now = conn.execute("select clock_timestamp()").fetchone()
    assert now is not None
    target: dt.datetime = now[0].astimezone(dt.UTC)
    # Let rows after the target be written, so "none after" can fail.
    wait_for(lambda: _max_heartbeat(src_uri) > target + dt.timedelta(seconds=2), 30, "rows after target")
    body = {"name": "learnhub-db-restored", "engine": "pg", "version": db["version"], "region": "nyc3",
            "size": db["size"], "num_nodes": 1,
            "backup_restore": {"database_name": "learnhub-db",
                               "backup_created_at": target.isoformat().replace("+00:00", "Z")}}
    resp = api.request("POST", "/v2/databases", body)
    assert resp.status_code == 201, resp.text
    restored_id = resp.json()["database"]["id"]
    assert resp.json()["database"]["status"] == "creating"
    restored = wait_for(lambda: (c := api.get(f"/v2/databases/{restored_id}")["database"])["status"] == "online"
                        and c, 90, "restored cluster online")
    with psycopg.connect(restored["connection"]["uri"], connect_timeout=5) as conn:
        newest = conn.execute("select max(written_at) from doops_heartbeat").fetchone()
        assert newest is not None and newest[0] <= target, "a row after the target survived the restore"
        assert target - newest[0] < dt.timedelta(seconds=3), "rows just before the target are missing"
        before = conn.execute("select count(*) from doops_heartbeat where written_at <= %s", (target,)).fetchone()
    with psycopg.connect(src_uri, connect_timeout=5) as conn:
        expected = conn.execute("select count(*) from doops_heartbeat where written_at <= %s",
                                (target,)).fetchone()
    assert before == expected


def _max_heartbeat(uri: str) -> dt.datetime:
    with psycopg.connect(uri, connect_timeout=5) as conn:
        row = conn.execute("select max(written_at) from doops_heartbeat").fetchone()
    assert row is not None
    return row[0]


def test_cdn_purge_via_api_turns_hit_into_miss(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    ep = api.get("/v2/cdn/endpoints")["endpoints"][0]
    proxy = sandbox.state["cdn"][ep["id"]]
    httpx.get(proxy + "/static/app.js", timeout=5)
    assert httpx.get(proxy + "/static/app.js", timeout=5).headers["x-cache"] == "HIT"
    resp = api.request("DELETE", f"/v2/cdn/endpoints/{ep['id']}/cache", {"files": ["static/*"]})
    assert resp.status_code == 204
    # A purge takes effect at the edge after about a second, as DigitalOcean's does (routes_cdn.py).
    wait_for(lambda: httpx.get(proxy + "/static/app.js", timeout=5).headers["x-cache"] == "MISS", timeout=10,
             what="a MISS once the purge has reached the edge", interval=0.1)


def test_cdn_purge_limits_are_enforced(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    ep = api.get("/v2/cdn/endpoints")["endpoints"][0]
    statuses = [api.request("DELETE", f"/v2/cdn/endpoints/{ep['id']}/cache",
                            {"files": [f"videos/{i}.mp4"]}).status_code for i in range(6)]
    assert 429 in statuses and statuses[0] == 204


def test_throttle_fault_gives_429_with_retry_after(sandbox: Sandbox) -> None:
    run_doops(["sandbox", "fault", "throttle", "--per-minute", "2", "--dir", str(sandbox.dir)])
    api = Api(sandbox)
    answers = [api.request("GET", "/v2/account") for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["id"] == "too_many_requests" and "retry-after" in limited[0].headers


def test_db_stop_kills_the_primary(fresh_sandbox: Sandbox) -> None:
    api = Api(fresh_sandbox)
    uri = api.cluster("learnhub-db")["connection"]["uri"]
    with psycopg.connect(uri, connect_timeout=5):
        pass
    res = run_doops(["sandbox", "fault", "db-stop", "learnhub-db", "--dir", str(fresh_sandbox.dir)])
    assert res.exit_code == 0, res.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=3)


def test_spaces_replication_pause_and_resume(sandbox: Sandbox) -> None:
    s3 = boto3.client("s3", endpoint_url=sandbox.state["spaces"]["endpoint_url"], region_name="nyc3",
                      aws_access_key_id=sandbox.state["spaces"]["access_key"],
                      aws_secret_access_key=sandbox.state["spaces"]["secret_key"])

    def in_replica(key: str) -> bool:
        return "Contents" in s3.list_objects_v2(Bucket="learnhub-media-ams3", Prefix=key)

    run_doops(["sandbox", "fault", "spaces-replication", "pause", "--dir", str(sandbox.dir)])
    key = f"uploads/e2e-{uuid.uuid4().hex}.txt"
    s3.put_object(Bucket="learnhub-media", Key=key, Body=b"x")
    status = run_doops(["-o", "json", "sandbox", "status", "--dir", str(sandbox.dir)])
    assert any(f["kind"] == "spaces-replication" for f in status.json["faults"])
    # While paused the object stays missing well past the normal 2 s delay: wait until the replicator has
    # seen it as overdue, then check it was still not copied.
    wait_for(lambda: _overdue(sandbox), 20, "replicator to report the object overdue")
    assert not in_replica(key)
    run_doops(["sandbox", "fault", "spaces-replication", "resume", "--dir", str(sandbox.dir)])
    wait_for(lambda: in_replica(key), 20, "replication to catch up")


def _overdue(sandbox: Sandbox) -> bool:
    from doops.sandbox import control

    data = control.control(sandbox.state, "GET", "/status")
    return any(f.get("kind") == "spaces-replication" and f.get("overdue", 0) > 0 for f in data["faults"])
