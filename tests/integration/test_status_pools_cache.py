"""`doops status` pools and cache checks against the sandbox's real PgBouncer and Redis: measured values on a
healthy sandbox, clients waiting on a full pool, and a cache filled past its maxmemory."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.helpers import Result, run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]


def status(sb: Sandbox, *components: str) -> Result:
    res = run_doops(["status", "-o", "json", *components], env=sb.env, secrets=(sb.token,))
    assert "Traceback" not in res.stderr
    return res


def checks(res: Result) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["resource"], c["check"]): c for c in res.json["checks"]}


def api(sb: Sandbox, path: str) -> Any:
    resp = httpx.get(sb.state["api_url"] + path, headers={"Authorization": f"Bearer {sb.token}"}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def cluster(sb: Sandbox, engine: tuple[str, ...]) -> dict[str, Any]:
    return next(d for d in api(sb, "/v2/databases")["databases"] if d["engine"] in engine)


def ca_file(sb: Sandbox, cluster_id: str, tmp_path: Path) -> str:
    pem = base64.b64decode(api(sb, f"/v2/databases/{cluster_id}/ca")["ca"]["certificate"]).decode()
    path = tmp_path / f"{cluster_id}.crt"
    path.write_text(pem)
    return str(path)


@pytest.fixture
def cache_client(sandbox: Sandbox, tmp_path: Path) -> Iterator[redis.Redis]:
    """A client of the sandbox's cache as an application has it: the API's connection and CA."""
    c = cluster(sandbox, ("valkey", "redis"))
    conn = c["connection"]
    client = redis.Redis(host=conn["host"], port=conn["port"], username=conn["user"], password=conn["password"],
                         ssl=True, ssl_ca_certs=ca_file(sandbox, c["id"], tmp_path), socket_timeout=5)
    yield client
    client.close()


def test_default_sandbox_pools_and_cache_are_measured_and_ok(sandbox: Sandbox) -> None:
    res = status(sandbox, "databases", "cache")
    got = checks(res)
    pools = got[("learnhub-db", "pools")]
    assert pools["status"] == "ok", pools
    # Measured by PgBouncer itself: its own pool size and client/server counts, not the API's numbers.
    assert pools["details"]["source"] == "pgbouncer"
    pool = pools["details"]["pools"]["learnhub-pool"]
    assert pool["size"] == 20 and pool["cl_waiting"] == 0 and "sv_active" in pool
    assert pools["summary"].startswith("learnhub-pool: ")
    for check in ("ping", "memory", "evictions", "clients", "eviction-policy", "status"):
        assert got[("learnhub-cache", check)]["status"] == "ok", got[("learnhub-cache", check)]
    ping = got[("learnhub-cache", "ping")]["details"]
    assert 0 < ping["latency_ms"] < 100 and ping["version"].startswith("7.")
    memory = got[("learnhub-cache", "memory")]["details"]
    assert memory["maxmemory"] == 64 * 1024 * 1024 and 0 < memory["used_memory"] < memory["maxmemory"]
    assert memory["policy"] == "allkeys-lru"  # the server's own spelling: read from INFO, not the API
    clients = got[("learnhub-cache", "clients")]["details"]
    assert clients["connected_clients"] >= 1 and clients["maxclients"] >= clients["connected_clients"]
    assert res.exit_code == 0


def test_clients_waiting_on_a_full_pool_turn_the_pool_check_warn(sandbox: Sandbox, tmp_path: Path) -> None:
    c = cluster(sandbox, ("pg",))
    pool = next(p for p in api(sandbox, f"/v2/databases/{c['id']}/pools")["pools"] if p["name"] == "learnhub-pool")
    conn = pool["connection"]
    kwargs = {"host": conn["host"], "port": conn["port"], "user": conn["user"], "password": conn["password"],
              "dbname": conn["database"], "sslmode": "verify-full", "sslrootcert": ca_file(sandbox, c["id"], tmp_path),
              "connect_timeout": 5, "prepare_threshold": None}
    size = int(pool["size"])
    waited: list[Any] = []
    with ExitStack() as stack:
        # A transaction-mode pool gives a server to a client for the length of a transaction: `size` open
        # transactions take every server, and one more client's query waits for one.
        holders = [stack.enter_context(psycopg.connect(**kwargs)) for _ in range(size)]
        for h in holders:
            h.execute("select 1")  # opens the transaction (psycopg is not in autocommit)
        waiter = stack.enter_context(psycopg.connect(**kwargs))
        thread = threading.Thread(target=lambda: waited.append(waiter.execute("select 42").fetchone()), daemon=True)
        thread.start()

        def full() -> Any:
            res = status(sandbox, "databases")
            check = checks(res)[("learnhub-db", "pools")]
            return res if check["status"] == "warn" else None

        res = wait_for(full, 30, "the pool check to see a waiting client", interval=0.5)
        check = checks(res)[("learnhub-db", "pools")]
        measured = check["details"]["pools"]["learnhub-pool"]
        assert measured["cl_waiting"] >= 1 and measured["sv_active"] == size, measured
        assert "learnhub-pool: 20/20 servers busy" in check["summary"] and "1 waiting" in check["summary"]
        assert res.exit_code == 1
        for h in holders:
            h.rollback()  # servers go back to the pool: the waiting client gets one
        thread.join(30)
        assert waited == [(42,)]
        waiter.rollback()

    def drained() -> Any:
        res = status(sandbox, "databases")
        return res if checks(res)[("learnhub-db", "pools")]["status"] == "ok" else None

    res = wait_for(drained, 30, "the pool check back to ok", interval=0.5)
    assert checks(res)[("learnhub-db", "pools")]["details"]["pools"]["learnhub-pool"]["cl_waiting"] == 0


def test_cache_filled_past_maxmemory_turns_memory_and_evictions_warn(sandbox: Sandbox,
                                                                     cache_client: redis.Redis) -> None:
    r = cache_client
    saved = r.config_get("maxmemory")["maxmemory"]
    assert saved is not None
    prefix = f"doops-test:{uuid.uuid4().hex}:"
    try:
        used = int(r.info("memory")["used_memory"])
        limit = used + 2 * 1024 * 1024
        r.config_set("maxmemory", str(limit))
        value = b"x" * 10_000
        pipe = r.pipeline(transaction=False)
        for i in range(400):  # 4 MB into 2 MB of room: allkeys-lru evicts
            pipe.set(f"{prefix}{i}", value)
        pipe.execute()
        assert int(r.info("stats")["evicted_keys"]) > 0
        res = status(sandbox, "cache")
        got = checks(res)
        memory, evictions = got[("learnhub-cache", "memory")], got[("learnhub-cache", "evictions")]
        assert memory["status"] in ("warn", "crit") and memory["details"]["maxmemory"] == limit, memory
        assert memory["details"]["ratio"] >= 0.8
        assert evictions["status"] == "warn" and evictions["details"]["evicted_keys"] > 0, evictions
        assert "evicted since the server started (policy allkeys-lru)" in evictions["summary"]
        assert res.exit_code in (1, 2)
    finally:
        r.config_set("maxmemory", saved)
        for key in r.scan_iter(match=prefix + "*", count=1000):
            r.delete(key)
        r.config_resetstat()  # evicted_keys back to 0 for the other tests of the shared sandbox
    res = status(sandbox, "cache")
    assert [c["check"] for c in res.json["checks"] if c["status"] != "ok"] == [], res.json
