"""The twin's databases, pools, cache and metrics held to real clients: psql with ``sslmode=verify-full``, psql
through PgBouncer with the pool URI the API gives, redis-cli and redis-py over TLS with a password, httpx on the
metrics endpoint with basic auth and the sandbox CA. Everything a client is given comes from the API, as it would
from DigitalOcean.

One shared sandbox: each test leaves it as it found it (faults cleared by the fixture, credentials and eviction
policy put back, the restored cluster deleted from the API).
"""

from __future__ import annotations

import base64
import re
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doops.sandbox import control
from tests import spec as contract
from tests.helpers import run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

D = "/v2/databases/{database_cluster_uuid}"


class Api:
    """The sandbox's API as a client sees it, plus the CA it serves written to a file for psql/redis-cli/httpx."""

    def __init__(self, sb: Sandbox, tmp: Path) -> None:
        self.sb = sb
        self.client = httpx.Client(base_url=sb.state["api_url"], timeout=30,
                                   headers={"Authorization": f"Bearer {sb.token}"})
        self.tmp = tmp
        self.ca = tmp / "ca.crt"
        self.ca.write_bytes(base64.b64decode(self.get(f"/v2/databases/{self.id('learnhub-db')}/ca")
                                             ["ca"]["certificate"]))

    def get(self, path: str, **kw: Any) -> Any:
        r = self.client.get(path, **kw)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def id(self, name: str) -> str:
        return str(next(c["id"] for c in self.get("/v2/databases")["databases"] if c["name"] == name))

    def cluster(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/v2/databases/{self.id(name)}")["database"])

    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in control.control(self.sb.state, "GET", "/status")["components"] if c["name"] == name)


@pytest.fixture(scope="module")
def api(shared_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    a = Api(shared_sandbox, tmp_path_factory.mktemp("fidelity"))
    yield a
    a.client.close()


def verify_full(uri: str, ca: Path) -> str:
    """A connection URI from the API with the strictest TLS: the server's certificate checked against ``ca``
    and its name against the host."""
    assert "sslmode=require" in uri, uri.split("@")[-1]
    return uri.replace("sslmode=require", f"sslmode=verify-full&sslrootcert={ca}")


def psql(uri: str, sql: str) -> str:
    out = subprocess.run(["psql", uri, "-XAt", "-F", "|", "-c", sql], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin:/usr/local/bin", "PGCONNECT_TIMEOUT": "10"})
    assert out.returncode == 0, f"psql to {uri.split('@')[-1]}: {out.stderr.strip()}"
    return out.stdout.strip()


def psql_fails(uri: str, sql: str = "select 1") -> str:
    out = subprocess.run(["psql", uri, "-XAtc", sql], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin:/usr/local/bin", "PGCONNECT_TIMEOUT": "10"})
    assert out.returncode != 0, f"psql to {uri.split('@')[-1]} should have failed"
    return out.stderr


def redis_cli(uri: str, ca: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["redis-cli", "--tls", "--cacert", str(ca), "-u", uri, "--no-auth-warning", *args],
                          capture_output=True, text=True, timeout=30)


# -- PostgreSQL: the CA, verify-full, the standby, the version -------------------------------------------------------


def test_ca_signs_the_servers_and_psql_verifies_full(sandbox: Sandbox, api: Api) -> None:
    """Before: /ca was a truncated fake and the servers' certificate self-signed, so verify-full was impossible."""
    assert api.ca.read_text() == Path(sandbox.state["ca_cert"]).read_text()
    db = api.cluster("learnhub-db")
    conn = db["connection"]
    assert psql(verify_full(conn["uri"], api.ca), "select inet_server_port()") == str(conn["port"])
    # localhost is in the certificate too
    assert psql(verify_full(conn["uri"].replace("127.0.0.1", "localhost"), api.ca), "select 1") == "1"
    # the check is real: another CA's certificate does not verify these servers
    from doops.sandbox.tls import SandboxCA

    other = SandboxCA.create(api.tmp / "other-ca")
    assert "certificate verify failed" in psql_fails(verify_full(conn["uri"], other.cert_path))


def test_standby_connection_is_the_running_standby(sandbox: Sandbox, api: Api) -> None:
    """Before: standby_connection repeated the primary's host and port."""
    db = api.cluster("learnhub-db")
    standby = db["standby_connection"]
    assert standby["port"] != db["connection"]["port"]
    assert standby["port"] == api.component("postgres:learnhub-db-standby")["port"]
    assert psql(verify_full(standby["uri"], api.ca), "select pg_is_in_recovery()") == "t"
    assert db["standby_private_connection"] == standby


def test_api_reports_the_version_the_servers_run(sandbox: Sandbox, api: Api) -> None:
    """Before: the API said 16 / 16.4 while the servers ran 15."""
    db = api.cluster("learnhub-db")
    server_version = psql(verify_full(db["connection"]["uri"], api.ca), "show server_version").split()[0]
    assert db["semantic_version"] == server_version and db["version"] == server_version.split(".")[0]
    assert api.get("/v2/databases/options")["options"]["pg"]["versions"] == [db["version"]]


def test_doops_connects_with_verify_full_by_default(sandbox: Sandbox, api: Api) -> None:
    """The sandbox config names no sslmode: doops fetches the cluster's CA and verifies the server (auto)."""
    from doops.clients import pg
    from doops.ops.dbtarget import db_target
    from doops.platform import Platform

    platform = Platform(config_path=sandbox.env["DOOPS_CONFIG"], config_explicit=True, access_token=sandbox.token,
                        api_url=sandbox.state["api_url"])
    cluster = next(c for c in platform.do.list_database_clusters() if c.name == "learnhub-db")
    target = db_target(platform, cluster, cluster.connection)
    assert target.sslmode == "verify-full" and target.ca_pem == api.ca.read_text()
    assert pg.writability(target).writable
    res = run_doops(["status", "databases", "-o", "json"], env=sandbox.env, secrets=(sandbox.token,))
    checks = {(c["resource"], c["check"]): c["status"] for c in res.json["checks"]}
    assert checks[("learnhub-db", "connections")] == "ok", res.json


# -- pools: a real PgBouncer -----------------------------------------------------------------------------------------


def test_pool_uri_works_through_pgbouncer(sandbox: Sandbox, api: Api) -> None:
    """Before: the pool URI named the pool as a database on the raw PostgreSQL port (FATAL: database does not
    exist), and GET .../pools/{name} was a 404."""
    cid = api.id("learnhub-db")
    db = api.cluster("learnhub-db")
    listed = api.get(f"/v2/databases/{cid}/pools")["pools"]
    assert [p["name"] for p in listed] == ["learnhub-pool"]
    pool = api.get(f"/v2/databases/{cid}/pools/learnhub-pool")["pool"]
    assert pool == listed[0]
    conn = pool["connection"]
    assert (conn["user"], conn["database"]) == ("learnhub_app", "learnhub-pool")
    assert conn["port"] == api.component("pgbouncer:learnhub-db")["port"] != db["connection"]["port"]
    got = psql(verify_full(conn["uri"], api.ca), "select current_user, current_database(), inet_server_port()")
    assert got == f"learnhub_app|learnhub|{db['connection']['port']}"  # through PgBouncer, to the primary
    # the pool's mode and size are PgBouncer's own (doadmin may read its SHOW commands, as stats user)
    admin = re.sub(r"/learnhub\?", "/pgbouncer?", db["connection"]["uri"]).replace(
        f":{db['connection']['port']}/", f":{conn['port']}/")
    pools = psql(verify_full(admin, api.ca), "show databases")
    row = next(line.split("|") for line in pools.splitlines() if line.startswith("learnhub-pool|"))
    assert "transaction" in row and str(pool["size"]) in row
    assert api.client.get(f"/v2/databases/{cid}/pools/no-such-pool").status_code == 404


def test_users_are_real_roles(sandbox: Sandbox, api: Api) -> None:
    """The pool's user exists on the primary with the password the API shows."""
    cid = api.id("learnhub-db")
    db = api.cluster("learnhub-db")
    user = api.get(f"/v2/databases/{cid}/users/learnhub_app")["user"]
    assert user in api.get(f"/v2/databases/{cid}/users")["users"]
    uri = (f"postgresql://learnhub_app:{user['password']}@127.0.0.1:{db['connection']['port']}/learnhub"
           "?sslmode=require")
    assert psql(verify_full(uri, api.ca), "select current_user") == "learnhub_app"
    wrong = uri.replace(user["password"], "not-the-password")
    assert "password authentication failed" in psql_fails(verify_full(wrong, api.ca))


# -- the cache: a real server with TLS and a password ----------------------------------------------------------------


def test_cache_is_real_with_tls_and_a_password(sandbox: Sandbox, api: Api) -> None:
    """Before: learnhub-cache existed only in the API."""
    import redis

    cache = api.cluster("learnhub-cache")
    conn = cache["connection"]
    assert conn["uri"].startswith("rediss://default:") and conn["ssl"] is True
    assert conn["port"] == api.component("cache:learnhub-cache")["port"]
    ping = redis_cli(conn["uri"], api.ca, "PING")
    assert ping.stdout.strip() == "PONG", ping.stderr
    info = redis_cli(conn["uri"], api.ca, "INFO", "server").stdout
    assert f"redis_version:{cache['semantic_version']}" in info and cache["version"] == cache["semantic_version"][0]
    wrong = redis_cli(conn["uri"].replace(conn["password"], "wrong"), api.ca, "PING")
    assert "PONG" not in wrong.stdout and "WRONGPASS" in wrong.stdout + wrong.stderr
    plain = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(conn["port"]), "-a", conn["password"],
                            "--no-auth-warning", "PING"], capture_output=True, text=True, timeout=30)
    assert "PONG" not in plain.stdout  # TLS only, as on DigitalOcean
    client = redis.Redis.from_url(conn["uri"], ssl_ca_certs=str(api.ca), socket_timeout=10)
    try:
        assert client.ping() is True
        assert client.info("server")["redis_version"] == cache["semantic_version"]
        key = f"fidelity:{uuid.uuid4().hex}"
        assert client.set(key, "1", ex=60) and client.get(key) == b"1"
        client.delete(key)
    finally:
        client.close()


def test_eviction_policy_set_through_the_api_reaches_the_server(sandbox: Sandbox, api: Api) -> None:
    import redis

    cid = api.id("learnhub-cache")
    conn = api.cluster("learnhub-cache")["connection"]
    before = api.get(f"/v2/databases/{cid}/eviction_policy")["eviction_policy"]
    client = redis.Redis.from_url(conn["uri"], ssl_ca_certs=str(api.ca), socket_timeout=10)
    try:
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == before.replace("_", "-")
        r = api.client.put(f"/v2/databases/{cid}/eviction_policy", json={"eviction_policy": "volatile_ttl"})
        assert r.status_code == 204, r.text
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "volatile-ttl"
        assert api.get(f"/v2/databases/{cid}/config")["config"]["valkey_maxmemory_policy"] == "volatile_ttl"
    finally:
        api.client.put(f"/v2/databases/{cid}/eviction_policy", json={"eviction_policy": before})
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == before.replace("_", "-")
        client.close()


# -- the metrics endpoint: the primary's own statistics over HTTPS with basic auth -----------------------------------


def _samples(text: str, name: str) -> dict[str, float]:
    """{labels: value} of one metric in Prometheus text."""
    out = {}
    for m in re.finditer(rf"^{name}\{{(.*?)\}} (\S+)$", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def test_metrics_endpoint_serves_the_primarys_statistics(sandbox: Sandbox, api: Api) -> None:
    """Before: metrics_endpoints advertised 127.0.0.1:9273, where nothing listened."""
    db = api.cluster("learnhub-db")
    (endpoint,) = db["metrics_endpoints"]
    url = f"https://{endpoint['host']}:{endpoint['port']}/metrics"
    creds = api.get("/v2/databases/metrics/credentials")["credentials"]
    auth = (creds["basic_auth_username"], creds["basic_auth_password"])
    with httpx.Client(verify=ssl.create_default_context(cafile=str(api.ca)), timeout=30) as http:
        assert http.get(url).status_code == 401
        assert http.get(url, auth=(auth[0], "wrong")).status_code == 401
        assert http.get(url.replace("/metrics", "/other"), auth=auth).status_code == 404
        r = http.get(url, auth=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert _samples(r.text, "pg_up") == {'cluster="learnhub-db"': 1.0}
        primary = verify_full(db["connection"]["uri"], api.ca)
        assert _samples(r.text, "pg_settings_max_connections") == {
            'cluster="learnhub-db"': float(psql(primary, "show max_connections"))}
        commits = _samples(r.text, "pg_stat_database_xact_commit_total")
        assert commits['cluster="learnhub-db",datname="learnhub"'] > 0  # the heartbeat commits every second
        lag = _samples(r.text, "pg_replication_lag_bytes")
        assert {re.search(r'application_name="([^"]+)"', k).group(1) for k in lag} == {  # type: ignore[union-attr]
            "learnhub-db-standby", "learnhub-db-ams3"}

        # lag the replica for real: its lag in bytes grows on the endpoint, the standby's does not
        sandbox.fault(kind="db-lag", replica="learnhub-db-ams3")
        table = f"fidelity_pad_{uuid.uuid4().hex[:8]}"
        psql(primary, f"create table {table} as select g, repeat('x', 500) as pad from generate_series(1, 2000) g")
        try:
            def replica_lag() -> float | None:
                got = _samples(http.get(url, auth=auth).text, "pg_replication_lag_bytes")
                value = next(v for k, v in got.items() if 'application_name="learnhub-db-ams3"' in k)
                return value if value > 500_000 else None

            assert wait_for(replica_lag, 30, "the replica's lag to show on the metrics endpoint") > 500_000
        finally:
            psql(primary, f"drop table {table}")

        # new credentials apply at once; the old ones stop working
        new = {"basic_auth_username": "scraper-" + uuid.uuid4().hex[:6], "basic_auth_password": uuid.uuid4().hex}
        assert api.client.put("/v2/databases/metrics/credentials", json={"credentials": new}).status_code == 204
        try:
            assert http.get(url, auth=auth).status_code == 401
            assert http.get(url, auth=(new["basic_auth_username"], new["basic_auth_password"])).status_code == 200
        finally:
            put_back = {"basic_auth_username": auth[0], "basic_auth_password": auth[1]}
            assert api.client.put("/v2/databases/metrics/credentials",
                                  json={"credentials": put_back}).status_code == 204
        assert http.get(url, auth=auth).status_code == 200


# -- PITR: the connection given at creation is the one that works ----------------------------------------------------


def test_restored_cluster_connects_with_its_201_connection(sandbox: Sandbox, api: Api) -> None:
    """Before: the 201 answered a synthetic *.db.ondigitalocean.com host and another password; a client that kept
    it could never connect. Also: the restored db-s-1vcpu-1gb cluster inherited the source's storage."""
    name = f"fidelity-pitr-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "engine": "pg", "region": "nyc3", "size": "db-s-1vcpu-1gb", "num_nodes": 1,
            "backup_restore": {"database_name": "learnhub-db"}}
    r = api.client.post("/v2/databases", json=body)
    assert r.status_code == 201, r.text
    created = r.json()["database"]
    cid = created["id"]
    try:
        assert created["status"] == "creating" and created["storage_size_mib"] == 10 * 1024
        kept = created["connection"]

        def online() -> dict[str, Any] | None:
            got = api.get(f"/v2/databases/{cid}")["database"]
            return got if got["status"] == "online" else None

        now = wait_for(online, 180, f"{name} to come online")
        assert now["connection"] == kept and now["private_connection"] == created["private_connection"]
        assert int(psql(verify_full(kept["uri"], api.ca), "select count(*) from doops_heartbeat")) > 0
        assert psql(verify_full(kept["uri"], api.ca), "select pg_is_in_recovery()") == "f"
        assert api.get(f"/v2/databases/{cid}/pools")["pools"] == []
    finally:
        api.client.delete(f"/v2/databases/{cid}")


# -- doctl's routes, with real values, valid against the spec --------------------------------------------------------


def test_doctl_routes_answer_from_the_servers_and_match_the_spec(sandbox: Sandbox, api: Api) -> None:
    """Before: users (list, get), dbs (list, get), config get and /v2/databases/options were 404."""
    spec = contract.load_spec()
    db, cache = api.id("learnhub-db"), api.id("learnhub-cache")
    primary = verify_full(api.cluster("learnhub-db")["connection"]["uri"], api.ca)
    routes = [
        ("GET", D, {"database_cluster_uuid": db}),
        ("GET", D, {"database_cluster_uuid": cache}),
        ("GET", D + "/pools", {"database_cluster_uuid": db}),
        ("GET", D + "/pools/{pool_name}", {"database_cluster_uuid": db, "pool_name": "learnhub-pool"}),
        ("GET", D + "/users", {"database_cluster_uuid": db}),
        ("GET", D + "/users/{username}", {"database_cluster_uuid": db, "username": "doadmin"}),
        ("GET", D + "/dbs", {"database_cluster_uuid": db}),
        ("GET", D + "/dbs/{database_name}", {"database_cluster_uuid": db, "database_name": "learnhub"}),
        ("GET", D + "/config", {"database_cluster_uuid": db}),
        ("GET", D + "/config", {"database_cluster_uuid": cache}),
        ("GET", D + "/ca", {"database_cluster_uuid": db}),
        ("GET", "/v2/databases/options", {}),
        ("GET", "/v2/databases/metrics/credentials", {}),
    ]
    answers: dict[tuple[str, str], Any] = {}
    for method, template, params in routes:
        path = template
        for k, v in params.items():
            path = path.replace("{" + k + "}", v)
        resp = api.client.request(method, path)
        contract.check_response(spec, method, template, resp)
        answers[(template, params.get("database_cluster_uuid", ""))] = resp.json()
    names = {d["name"] for d in answers[(D + "/dbs", db)]["dbs"]}
    on_server = set(psql(primary, "select datname from pg_database where not datistemplate").split())
    assert names <= on_server and {"learnhub", "defaultdb"} <= names
    config = answers[(D + "/config", db)]["config"]
    assert config["max_connections"] == int(psql(primary, "show max_connections"))
    assert config["timezone"] == psql(primary, "show timezone")
    assert answers[(D + "/config", cache)]["config"]["valkey_maxmemory_policy"] == "allkeys_lru"
    doadmin = answers[(D + "/users/{username}", db)]["user"]
    assert doadmin["role"] == "primary" and doadmin["password"] == api.cluster("learnhub-db")["connection"]["password"]
    assert api.client.get(f"/v2/databases/{db}/users/nobody").status_code == 404
    assert api.client.get(f"/v2/databases/{db}/dbs/nope").status_code == 404
