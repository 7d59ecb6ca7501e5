"""The twin's managed databases held to what the real servers behind it say (a fake backend stands in for them):
restore connections that never change, versions, standby, pools, users, metrics endpoints, the CA, doctl's routes.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from doops.sandbox.api import ConnectionInfo, FakeDatabaseBackend, TwinServer, World, load_scenario
from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import Cluster
from tests.helpers import wait_for

PRIMARY = ConnectionInfo("127.0.0.1", 15432, "doadmin", "s3cret", "learnhub", True)


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> FakeDatabaseBackend:
    """A backend that runs learnhub-db (primary, standby, pool, app user, metrics endpoint) and the cache."""
    backend = FakeDatabaseBackend(clock=clock, restore_seconds=5.0)
    backend.clusters["learnhub-db"] = PRIMARY
    backend.clusters["learnhub-cache"] = ConnectionInfo("127.0.0.1", 16379, "default", "c4che", "", True)
    backend.replicas[("learnhub-db", "learnhub-db-ams3")] = ConnectionInfo(
        "127.0.0.1", 15433, "doadmin", "s3cret", "learnhub", True)
    backend.standbys["learnhub-db"] = ConnectionInfo("127.0.0.1", 15434, "doadmin", "s3cret", "learnhub", True)
    backend.pools[("learnhub-db", "learnhub-pool")] = ConnectionInfo(
        "127.0.0.1", 16432, "learnhub_app", "app-pw", "learnhub-pool", True)
    backend.passwords[("learnhub-db", "learnhub_app")] = "app-pw"
    backend.versions.update({"pg": "15.18", "valkey": "7.0.15"})
    backend.metrics["learnhub-db"] = ("127.0.0.1", 19273)
    return backend


@pytest.fixture
def world(clock: Clock, db: FakeDatabaseBackend) -> World:
    return World.from_scenario(load_scenario(), db=db, clock=clock)


def _cluster(world: World, name: str) -> Cluster:
    c = world.find_cluster_by_name(name)
    assert c is not None
    return c


def _restore(world: World, clock: Clock, size: str = "db-s-1vcpu-1gb") -> Cluster:
    when = datetime.fromtimestamp(clock.t, UTC) - timedelta(hours=2)
    return world.create_cluster({"name": "learnhub-db-pitr", "engine": "pg", "num_nodes": 1, "size": size,
                                 "region": "nyc3", "backup_restore": {
                                     "database_name": "learnhub-db",
                                     "backup_created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ")}})


def test_restore_answers_its_final_connection_from_the_201(world: World, clock: Clock) -> None:
    """Before: the 201 showed a synthetic ``*.db.ondigitalocean.com`` host and password that later changed."""
    c = _restore(world, clock)
    created = world.cluster_json(c)  # what POST /v2/databases answers
    assert created["status"] == "creating"
    assert created["connection"]["host"] == "127.0.0.1" and created["connection"]["password"] == "s3cret"
    clock.t += 5.0
    online = world.cluster_json(c)
    assert online["status"] == "online"
    assert online["connection"] == created["connection"]
    assert online["private_connection"] == created["private_connection"]


def test_restore_takes_its_size_slugs_storage_and_no_pools(world: World, clock: Clock) -> None:
    """Before: a db-s-1vcpu-1gb restore inherited the source's 61440 MiB (and its pools)."""
    src = _cluster(world, "learnhub-db")
    assert world.cluster_json(src)["storage_size_mib"] == 61440
    c = _restore(world, clock)
    assert world.cluster_json(c)["storage_size_mib"] == 10240
    assert c.pools == [] and [u["name"] for u in world.users_json(c)] == ["doadmin", "learnhub_app"]
    bigger = world.create_cluster({"name": "scratch", "engine": "pg", "num_nodes": 1, "size": "db-s-4vcpu-8gb",
                                   "region": "nyc3"})
    assert world.cluster_json(bigger)["storage_size_mib"] == 140 * 1024


def test_version_is_the_servers_own(world: World) -> None:
    """Before: the API said 16 / 16.4 while the servers ran 15."""
    pg = world.cluster_json(_cluster(world, "learnhub-db"))
    assert (pg["version"], pg["semantic_version"]) == ("15", "15.18")
    cache = world.cluster_json(_cluster(world, "learnhub-cache"))
    assert (cache["version"], cache["semantic_version"]) == ("7", "7.0.15")
    assert world.database_options()["options"]["pg"]["versions"] == ["15"]


def test_version_of_a_cluster_no_server_runs_is_the_scenarios(clock: Clock) -> None:
    world = World.from_scenario(load_scenario(), clock=clock)
    pg = world.cluster_json(_cluster(world, "learnhub-db"))
    assert (pg["version"], pg["semantic_version"]) == ("15", "15.4")


def test_standby_connection_is_the_running_standby(world: World, db: FakeDatabaseBackend) -> None:
    """Before: standby_connection repeated the primary's connection."""
    c = _cluster(world, "learnhub-db")
    j = world.cluster_json(c)
    assert j["connection"]["port"] == 15432 and j["standby_connection"]["port"] == 15434
    assert j["standby_private_connection"] == j["standby_connection"]
    del db.standbys["learnhub-db"]  # no standby runs: none is listed rather than a made-up one
    assert "standby_connection" not in world.cluster_json(c)


def test_metrics_endpoint_is_the_real_one(world: World, db: FakeDatabaseBackend) -> None:
    """Before: 127.0.0.1:9273, where nothing listens."""
    assert world.cluster_json(_cluster(world, "learnhub-db"))["metrics_endpoints"] == [
        {"host": "127.0.0.1", "port": 19273}]
    assert "metrics_endpoints" not in world.cluster_json(_cluster(world, "learnhub-cache"))  # real, has none
    scratch = world.create_cluster({"name": "scratch", "engine": "pg", "num_nodes": 1, "size": "db-s-1vcpu-1gb",
                                    "region": "nyc3"})
    synthetic = world.cluster_json(scratch)["metrics_endpoints"][0]
    assert synthetic["host"].endswith(".db.ondigitalocean.com")


def test_pool_connection_is_its_pgbouncer(world: World) -> None:
    """Before: the pool's URI was the raw PostgreSQL port with doadmin and the pool as a database."""
    c = _cluster(world, "learnhub-db")
    pool = world.pool_json(c, world.pool(c, "learnhub-pool"))
    assert pool["user"] == "learnhub_app" and pool["db"] == "learnhub" and pool["mode"] == "transaction"
    assert pool["connection"]["port"] == 16432 and pool["connection"]["user"] == "learnhub_app"
    assert pool["connection"]["uri"] == "postgresql://learnhub_app:app-pw@127.0.0.1:16432/learnhub-pool?sslmode=require"
    with pytest.raises(ApiError) as err:
        world.pool(c, "no-such-pool")
    assert err.value.status == 404


def test_users_show_the_servers_passwords(world: World) -> None:
    c = _cluster(world, "learnhub-db")
    assert {u["name"]: (u["role"], u["password"]) for u in world.users_json(c)} == {
        "doadmin": ("primary", "s3cret"), "learnhub_app": ("normal", "app-pw")}


def test_promoted_replica_has_no_pools(world: World) -> None:
    src = _cluster(world, "learnhub-db")
    new = world.promote_replica(src, "learnhub-db-ams3")
    assert new.pools == [] and src.pools


# -- over HTTP: the CA, doctl's routes, metrics credentials, eviction policy ---------------------------------------


class Twin:
    def __init__(self, db: FakeDatabaseBackend) -> None:
        scenario = load_scenario()
        self.world = World.from_scenario(scenario, db=db)
        self.server = TwinServer(self.world).start()
        self.client = httpx.Client(base_url=self.server.url, timeout=10,
                                   headers={"Authorization": f"Bearer {scenario.tokens['sandbox']}"})

    def id(self, name: str) -> str:
        c = self.world.find_cluster_by_name(name)
        assert c is not None
        return c.id

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def twin(db: FakeDatabaseBackend) -> Iterator[Twin]:
    db.clock = time.time
    t = Twin(db)
    yield t
    t.close()


def test_ca_is_a_whole_certificate(twin: Twin) -> None:
    """Before: a fake, truncated PEM no client could load."""
    from cryptography import x509

    r = twin.client.get(f"/v2/databases/{twin.id('learnhub-db')}/ca")
    assert r.status_code == 200
    cert = x509.load_pem_x509_certificate(base64.b64decode(r.json()["ca"]["certificate"]))
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_doctl_routes_answer(twin: Twin) -> None:
    """Before: users, dbs, config, options and GET pools/{name} were 404."""
    db = twin.id("learnhub-db")
    assert [u["name"] for u in twin.client.get(f"/v2/databases/{db}/users").json()["users"]] == [
        "doadmin", "learnhub_app"]
    assert twin.client.get(f"/v2/databases/{db}/users/learnhub_app").json()["user"]["password"] == "app-pw"
    assert twin.client.get(f"/v2/databases/{db}/users/nobody").status_code == 404
    assert twin.client.get(f"/v2/databases/{db}/dbs").json()["dbs"] == [{"name": "defaultdb"}, {"name": "learnhub"}]
    assert twin.client.get(f"/v2/databases/{db}/dbs/learnhub").json() == {"db": {"name": "learnhub"}}
    assert twin.client.get(f"/v2/databases/{db}/dbs/nope").status_code == 404
    assert twin.client.get(f"/v2/databases/{db}/config").json()["config"]["backup_hour"] == 2
    cache = twin.client.get(f"/v2/databases/{twin.id('learnhub-cache')}/config").json()["config"]
    assert cache["valkey_maxmemory_policy"] == "allkeys_lru" and cache["valkey_ssl"] is True
    options = twin.client.get("/v2/databases/options").json()
    assert options["options"]["valkey"]["versions"] == ["7"]
    assert options["version_availability"]["pg"][0]["end_of_life"] == "2027-11-11T00:00:00Z"
    pool = twin.client.get(f"/v2/databases/{db}/pools/learnhub-pool")
    assert pool.status_code == 200 and pool.json()["pool"]["connection"]["port"] == 16432
    assert twin.client.get(f"/v2/databases/{db}/pools/nope").status_code == 404


def test_metrics_credentials_get_and_put(twin: Twin, db: FakeDatabaseBackend) -> None:
    got = twin.client.get("/v2/databases/metrics/credentials").json()["credentials"]
    assert (got["basic_auth_username"], got["basic_auth_password"]) == db.credentials
    r = twin.client.put("/v2/databases/metrics/credentials",
                        json={"credentials": {"basic_auth_username": "scraper", "basic_auth_password": "pw-2"}})
    assert r.status_code == 204 and db.credentials == ("scraper", "pw-2")
    bad = twin.client.put("/v2/databases/metrics/credentials", json={"credentials": {"basic_auth_username": "x"}})
    assert bad.status_code == 422 and db.credentials == ("scraper", "pw-2")


def test_eviction_policy_reaches_the_server_first(twin: Twin, db: FakeDatabaseBackend) -> None:
    cache = twin.id("learnhub-cache")
    r = twin.client.put(f"/v2/databases/{cache}/eviction_policy", json={"eviction_policy": "volatile_ttl"})
    assert r.status_code == 204
    assert db.calls[-1] == ("set_eviction_policy", ("learnhub-cache", "volatile_ttl"))

    def refuse(cluster_name: str, policy: str) -> None:
        raise RuntimeError("server down")

    db.set_eviction_policy = refuse  # type: ignore[method-assign]
    r = twin.client.put(f"/v2/databases/{cache}/eviction_policy", json={"eviction_policy": "noeviction"})
    assert r.status_code == 500
    assert twin.client.get(f"/v2/databases/{cache}/eviction_policy").json()["eviction_policy"] == "volatile_ttl"


# -- DELETE: the backend destroys what it runs of the cluster -------------------------------------------------------


def test_delete_has_the_backend_drop_the_cluster(twin: Twin, db: FakeDatabaseBackend) -> None:
    """Before: DELETE removed the cluster from the API only; its real servers ran until the sandbox stopped."""
    cid = twin.id("learnhub-db")
    r = twin.client.delete(f"/v2/databases/{cid}")
    assert r.status_code == 204 and r.content == b""
    assert ("drop", ("learnhub-db",)) in db.calls
    assert twin.client.get(f"/v2/databases/{cid}").status_code == 404
    # its replica, standby and pool went with it; the cache is another cluster and stays
    assert db.connection("learnhub-db") is None and db.connection("learnhub-db", "learnhub-db-ams3") is None
    assert db.standby_connection("learnhub-db") is None and db.pool_connection("learnhub-db", "learnhub-pool") is None
    assert db.connection("learnhub-cache") is not None
    assert twin.client.delete(f"/v2/databases/{cid}").status_code == 404
    assert [c for c in db.calls if c[0] == "drop"] == [("drop", ("learnhub-db",))]


def test_delete_of_a_restore_under_way_cancels_it(world: World, clock: Clock, db: FakeDatabaseBackend) -> None:
    c = _restore(world, clock)
    assert world.cluster_json(c)["status"] == "creating"
    world.delete_cluster(c.id)
    assert db.calls[-1] == ("drop", ("learnhub-db-pitr",))
    clock.t += 60.0  # long past the restore's end: a restore left running would now answer
    assert db.connection("learnhub-db-pitr") is None and world.find_cluster_by_name("learnhub-db-pitr") is None


def test_a_failed_drop_is_a_500_and_the_cluster_stays(twin: Twin, db: FakeDatabaseBackend) -> None:
    def refuse(cluster_name: str) -> None:
        raise RuntimeError("cannot stop the server")

    db.drop = refuse  # type: ignore[method-assign]
    cid = twin.id("learnhub-db")
    assert twin.client.delete(f"/v2/databases/{cid}").status_code == 500
    assert twin.client.get(f"/v2/databases/{cid}").json()["database"]["status"] == "online"


class _Fleet:
    """Just what PgDatabaseBackend asks of a PgFleet for a restore and a drop; a restore runs until cancelled."""

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.restores: dict[str, str] = {}  # new name -> how it ended
        self.released: list[int] = []

    def reserve_port(self) -> int:
        return 15999

    def release_port(self, port: int) -> None:
        self.released.append(port)

    def restore_pitr(self, source: str, when: datetime, new_name: str, *, port: int, cancel: Any) -> None:
        from doops.ops import seam

        self.restores[new_name] = "replaying"
        wait_for(lambda: cancel.cancelled, 10, "the restore's cancel")
        self.restores[new_name] = "cancelled"
        raise seam.Cancelled(cancel.reason)

    def drop_cluster(self, cluster: str) -> list[str]:
        self.dropped.append(cluster)
        return [cluster]

    def primary(self, cluster: str) -> Any:
        raise KeyError(cluster)

    def get(self, name: str) -> Any:
        raise KeyError(name)

    def standby(self, cluster: str) -> None:
        return None


class _Stoppable:
    def __init__(self, path: Path) -> None:
        self.dir = path
        self.dir.mkdir()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_real_backend_drop_cancels_a_restore_and_stops_pools_off_the_request_thread(tmp_path: Path) -> None:
    """The adapter's drop returns at once; its thread cancels the restore, stops the cluster's PgBouncer (gone from
    the supervisor's map at once) and its metrics endpoint, then has the fleet destroy the servers."""
    from doops.sandbox.adapters import PgDatabaseBackend

    fleet = _Fleet()
    bouncer = _Stoppable(tmp_path / "bouncer")
    bouncers: dict[str, Any] = {"restored": bouncer}
    metrics = type("M", (), {"dropped": [], "drop": lambda self, c: self.dropped.append(c),
                             "credentials": None})()
    backend = PgDatabaseBackend(fleet, "pw", bouncers=bouncers, metrics=metrics)  # type: ignore[arg-type]
    planned = backend.restore("learnhub-db", None, "restored")
    assert planned.port == 15999
    wait_for(lambda: fleet.restores.get("restored") == "replaying", 10, "the restore to start")
    assert backend.connection("restored") is None  # creating
    backend.drop("restored")
    assert "restored" not in bouncers  # the sandbox's status no longer lists it
    assert backend.connection("restored") is None and backend.user_password("restored", "doadmin") is None
    wait_for(lambda: fleet.dropped == ["restored"] and not backend._dropping, 10, "the drop to finish")
    assert fleet.restores["restored"] == "cancelled"
    assert bouncer.stopped and not bouncer.dir.exists() and metrics.dropped == ["restored"]
    backend.drop("restored")  # a name nothing runs any more: the fleet is asked again, harmlessly
    wait_for(lambda: not backend._dropping, 10, "the second drop to finish")
    assert fleet.dropped == ["restored", "restored"] and fleet.restores["restored"] == "cancelled"


# -- the supervisor starts each app with its spec's routes and health paths -----------------------------------------


def test_supervisor_starts_apps_from_their_spec(tmp_path: Path) -> None:
    """Before: the supervisor started apps by component name, so another scenario's routes and health paths were
    ``/<component>`` and ``/health`` whatever its spec said."""
    from doops.sandbox.supervisor import SCALED_APPS_SERVER, Supervisor

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "scale: {apps: 2}\n"
        "apps:\n"
        "  - name: shop\n"
        "    services:\n"
        "      - {name: backend, route: /v1, health_path: /ready}\n"
        "    static_sites:\n"
        "      - {name: site, route: /}\n"
        "    workers:\n"
        "      - {name: mailer}\n")
    sup = Supervisor(tmp_path, str(scenario), 0, 0)
    sup._start_apps(load_scenario(str(scenario)))
    try:
        shop = sup.apps["shop"]
        assert shop.health_urls() == {"backend": "/v1/ready"}
        with httpx.Client(base_url=shop.url, timeout=5) as http:
            assert http.get("/v1/ready").status_code == 200
            assert http.get("/v1/").text == "shop/backend: ok\n"
            assert http.get("/").text == "shop/site: ok\n"
            assert http.get("/mailer").status_code == 404  # a worker takes no traffic
            shop.set_unhealthy("backend")
            assert http.get("/v1/ready").status_code == 503 and http.get("/ready").status_code == 503
        scaled = sup.apps[SCALED_APPS_SERVER]  # laid out as the scaled apps' own spec
        assert scaled.health_urls() == {"web": "/web/health"} and scaled.components == ["web"]
    finally:
        sup.apps.stop()
