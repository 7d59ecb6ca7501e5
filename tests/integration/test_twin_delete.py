"""DELETE /v2/databases/{uuid} destroys the cluster's real servers, as on DigitalOcean: a restored cluster's
PostgreSQL server, a restore still replaying, a promoted replica, and the scenario's primary with its standby,
read replica, PgBouncer and metrics endpoint (and the cache). The API answers 204 at once; the servers go after.

One sandbox of its own for the module: its tests delete the scenario's clusters for good.
"""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from doops.sandbox import control, pidfiles
from tests.helpers import wait_for
from tests.integration.conftest import Sandbox, start_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]


class Api:
    """The sandbox's API as a client sees it, with the CA it serves written to a file."""

    def __init__(self, sb: Sandbox, tmp: Path) -> None:
        self.sb = sb
        self.client = httpx.Client(base_url=sb.state["api_url"], timeout=30,
                                   headers={"Authorization": f"Bearer {sb.token}"})
        self.ca = tmp / "ca.crt"
        self.ca.write_bytes(base64.b64decode(self.get(f"/v2/databases/{self.id('learnhub-db')}/ca")
                                             ["ca"]["certificate"]))

    def get(self, path: str) -> Any:
        r = self.client.get(path)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def id(self, name: str) -> str:
        return str(next(c["id"] for c in self.get("/v2/databases")["databases"] if c["name"] == name))

    def cluster(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/v2/databases/{self.id(name)}")["database"])

    def delete(self, cid: str) -> None:
        r = self.client.delete(f"/v2/databases/{cid}")
        assert r.status_code == 204 and r.content == b"", r.text
        assert self.client.get(f"/v2/databases/{cid}").status_code == 404  # gone from the API at once

    def restore(self, name: str) -> dict[str, Any]:
        body = {"name": name, "engine": "pg", "region": "nyc3", "size": "db-s-1vcpu-1gb", "num_nodes": 1,
                "backup_restore": {"database_name": "learnhub-db"}}
        r = self.client.post("/v2/databases", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json()["database"])

    def wait_online(self, cid: str, what: str) -> dict[str, Any]:
        def online() -> dict[str, Any] | None:
            got = self.get(f"/v2/databases/{cid}")["database"]
            return got if got["status"] == "online" else None

        return dict(wait_for(online, 180, f"{what} to come online"))

    def components(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in control.control(self.sb.state, "GET", "/status")["components"]}


@pytest.fixture(scope="module")
def sb(sandbox_root: Path) -> Iterator[Sandbox]:
    box = start_sandbox(sandbox_root / "twin-delete")
    try:
        yield box
    finally:
        control.stop(box.dir, keep=False)


@pytest.fixture(scope="module")
def api(sb: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    a = Api(sb, tmp_path_factory.mktemp("twin-delete"))
    yield a
    a.client.close()


def verify_full(uri: str, ca: Path) -> str:
    assert "sslmode=require" in uri, uri.split("@")[-1]
    return uri.replace("sslmode=require", f"sslmode=verify-full&sslrootcert={ca}")


def refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def supervisor_log(sb: Sandbox) -> str:
    return (sb.dir / control.LOG_FILE).read_text(errors="replace")


def wait_destroyed(sb: Sandbox, cluster: str) -> None:
    """Until the supervisor says it has destroyed what it ran of the cluster (its last step, after the 204)."""
    wait_for(lambda: f"database cluster {cluster} destroyed" in supervisor_log(sb), 120, f"{cluster} to be destroyed")


def assert_server_destroyed(sb: Sandbox, api: Api, cluster: str, server: str, port: int, pid: int | None) -> None:
    """Poll until the server's port refuses and its process is gone, then check its records and data went too."""
    wait_for(lambda: refuses(port) and not pidfiles.pid_alive(pid), 60, f"{server}'s port and process to go")
    wait_destroyed(sb, cluster)
    pg = sb.dir / pidfiles.PG_DIR
    assert not (pg / pidfiles.PG_PIDS_DIR / f"{server}.pid").exists(), f"{server}'s pid record is left"
    assert not (pg / "data" / server).exists(), f"{server}'s data directory is left"
    assert f"postgres:{server}" not in api.components(), "the sandbox still lists it"


def test_deleting_a_restored_cluster_stops_its_server(sb: Sandbox, api: Api) -> None:
    """Before: the restored server ran until the sandbox stopped; its port kept answering."""
    name = f"del-pitr-{uuid.uuid4().hex[:6]}"
    cid = api.restore(name)["id"]
    conn_info = api.wait_online(cid, name)["connection"]
    port = int(conn_info["port"])
    comp = api.components()[f"postgres:{name}"]
    assert comp["healthy"] and comp["port"] == port and pidfiles.pid_alive(comp["pid"])
    with psycopg.connect(verify_full(conn_info["uri"], api.ca), connect_timeout=10, autocommit=True) as conn:
        assert conn.execute("select count(*) from doops_heartbeat").fetchone()[0] > 0  # type: ignore[index]
        api.delete(cid)
        assert_server_destroyed(sb, api, name, name, port, comp["pid"])
        with pytest.raises(psycopg.OperationalError):
            conn.execute("select 1")  # the session the client held died with the server
    assert not (sb.dir / pidfiles.PG_DIR / "archive" / name).exists()


def test_deleting_a_cluster_being_restored_cancels_the_restore(sb: Sandbox, api: Api) -> None:
    """Deleted while still ``creating``: once before its server exists, once while its server replays WAL. The
    restore stops where it is; nothing of it is left, and it never comes up later.

    The replay takes a fraction of a second, so the delete can land just after the restore finished (the API
    still says ``creating`` for a moment): that cluster is destroyed like any other (checked too) and the phase
    is tried again, up to five times, until a delete lands during the replay."""
    for phase, tries in (("before its server starts", 1), ("while its server replays", 5)):
        for _ in range(tries):
            name = f"del-creating-{uuid.uuid4().hex[:6]}"
            created = api.restore(name)
            port = int(created["connection"]["port"])
            comp: dict[str, Any] = {"pid": None}
            if phase == "while its server replays":
                server = f"postgres:{name}"
                comp = wait_for(lambda: api.components().get(server), 120, f"{name}'s server to start",  # noqa: B023
                                interval=0.01)  # seen at once: its recovery takes a fraction of a second
            assert api.get(f"/v2/databases/{created['id']}")["database"]["status"] == "creating"
            api.delete(created["id"])
            # the destroy thread logs once the restore has ended and the fleet has dropped what it had made
            assert_server_destroyed(sb, api, name, name, port, comp["pid"])
            assert not (sb.dir / pidfiles.PG_DIR / "archive" / name).exists(), phase
            log = supervisor_log(sb)
            if f"restore of learnhub-db into {name} cancelled" in log:
                break
            # not cancelled: only allowed when the restore had already finished as the delete landed
            assert tries > 1 and f"PITR learnhub-db -> {name} at " in log, phase
        else:
            pytest.fail(f"no delete landed {phase} in {tries} tries")
    # the name is free again, and a restore into it works
    again = api.restore(name)
    online = api.wait_online(again["id"], f"a new {name}")
    assert online["connection"]["host"] == "127.0.0.1"
    api.delete(again["id"])


def test_deleting_a_promoted_replica_then_the_primary_cluster_stops_all_their_servers(sb: Sandbox, api: Api) -> None:
    """The promoted replica is a cluster of its own: deleting it leaves learnhub-db running. Deleting learnhub-db
    stops its primary, standby node, read replica, PgBouncer and metrics endpoint; deleting the cache stops it."""
    db = api.cluster("learnhub-db")
    before = api.components()
    r = api.client.put(f"/v2/databases/{db['id']}/replicas/learnhub-db-ams3/promote")
    assert r.status_code == 204, r.text
    promoted = api.cluster("learnhub-db-ams3")
    api.delete(promoted["id"])
    replica = before["postgres:learnhub-db-ams3"]
    assert_server_destroyed(sb, api, "learnhub-db-ams3", "learnhub-db-ams3", replica["port"], replica["pid"])
    assert api.components()["postgres:learnhub-db"]["healthy"]  # the source stays

    # the primary cluster: every server of it, its pool and its metrics endpoint
    added = api.client.post(f"/v2/databases/{db['id']}/replicas",
                            json={"name": "api-only-replica", "size": "db-s-2vcpu-4gb"})
    assert added.status_code == 201  # an API-only replica goes with its cluster, without a server to stop
    pool_port = int(api.get(f"/v2/databases/{db['id']}/pools/learnhub-pool")["pool"]["connection"]["port"])
    metrics = api.cluster("learnhub-db")["metrics_endpoints"][0]
    servers = {n: before[f"postgres:{n}"] for n in ("learnhub-db", "learnhub-db-standby")}
    bouncer, endpoint = before["pgbouncer:learnhub-db"], before["db-metrics:learnhub-db"]
    assert bouncer["port"] == pool_port and endpoint["port"] == metrics["port"]
    api.delete(db["id"])
    for name, comp in servers.items():
        assert_server_destroyed(sb, api, "learnhub-db", name, comp["port"], comp["pid"])
    wait_for(lambda: refuses(pool_port) and not pidfiles.pid_alive(bouncer["pid"]), 30, "PgBouncer to stop")
    wait_for(lambda: refuses(int(metrics["port"])), 30, "the metrics endpoint to close")
    left = api.components()
    assert "pgbouncer:learnhub-db" not in left and "db-metrics:learnhub-db" not in left
    assert not (sb.dir / pidfiles.PG_DIR / "pgbouncer" / "learnhub-db").exists()

    cache = before["cache:learnhub-cache"]
    api.delete(api.id("learnhub-cache"))
    wait_for(lambda: refuses(cache["port"]) and not pidfiles.pid_alive(cache["pid"]), 30, "the cache to stop")
    wait_destroyed(sb, "learnhub-cache")
    left = api.components()
    assert "cache:learnhub-cache" not in left and not (sb.dir / pidfiles.PG_DIR / "cache" / "learnhub-cache").exists()
    assert not any(n.startswith(("postgres:", "pgbouncer:", "db-metrics:")) for n in left), sorted(left)
    assert all(c["healthy"] for c in left.values()), [n for n, c in left.items() if not c["healthy"]]
    assert control.control(sb.state, "GET", "/status")["faults"] == []  # nothing reads as a stopped server
