"""The pools check (PgBouncer's SHOW POOLS) and the cache checks (PING, INFO) of `doops status`, with a mocked
API (respx), fake PgBouncer answers and fake cache probes; and the two clients' own contracts with fakes of
psycopg and redis-py."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx

from doops.clients import cache, pg
from doops.config import parse_config
from doops.errors import UnknownStateError
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
PG_ID, CACHE_ID = "11111111-1111-1111-1111-111111111111", "33333333-3333-3333-3333-333333333333"
PASSWORD = "s3cr3t-db-password"
APP_PASSWORD = "s3cr3t-app-password"
CACHE_PASSWORD = "s3cr3t-cache-password"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SECRETS = (CANARY_TOKEN, PASSWORD, APP_PASSWORD, CACHE_PASSWORD)
CONFIG = """\
databases:
  clusters:
    - name: learnhub-db
      database: learnhub
      user: {user}
  caches:
    - name: learnhub-cache
      eviction_policy: allkeys_lru
{extra}"""


def _pg_cluster() -> dict[str, Any]:
    return {"id": PG_ID, "name": "learnhub-db", "engine": "pg", "version": "16", "region": "nyc3",
            "status": "online", "num_nodes": 1,
            "connection": {"host": "db.example", "port": 25060, "user": "doadmin", "password": PASSWORD,
                           "database": "defaultdb", "ssl": True},
            "maintenance_window": {"pending": False, "description": []}}


def _cache_cluster() -> dict[str, Any]:
    return {"id": CACHE_ID, "name": "learnhub-cache", "engine": "valkey", "version": "8", "region": "nyc3",
            "status": "online", "num_nodes": 1,
            "connection": {"host": "cache.example", "port": 25061, "user": "default", "password": CACHE_PASSWORD,
                           "uri": f"rediss://default:{CACHE_PASSWORD}@cache.example:25061", "ssl": True},
            "maintenance_window": {"pending": False, "description": []}}


def _pool(name: str = "app-pool", size: int = 20, connection: bool = True) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "size": size, "mode": "transaction", "db": "learnhub", "user": "learnhub_app"}
    if connection:  # as DigitalOcean serves pools: the cluster's host, port 25061, database = the pool's name
        p["connection"] = {"host": "db.example", "port": 25061, "user": "learnhub_app", "password": APP_PASSWORD,
                           "database": name, "ssl": True}
    return p


def run_status(tmp_path: Path, component: str, *, pools: list[dict[str, Any]] | None = None, user: str = "doadmin",
               extra: str = "", cache_ca: int = 200) -> Any:
    cfg = tmp_path / "doops.yaml"
    cfg.write_text(CONFIG.format(user=user, extra=extra))
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/databases").respond(200, json={"databases": [_pg_cluster(), _cache_cluster()]})
        backup = {"created_at": (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "size_gigabytes": 0.1}
        router.get(f"/v2/databases/{PG_ID}/backups").respond(200, json={"backups": [backup]})
        router.get(f"/v2/databases/{PG_ID}/replicas").respond(200, json={"replicas": []})
        router.get(f"/v2/databases/{PG_ID}/pools").respond(200, json={"pools": pools or []})
        router.get(f"/v2/databases/{PG_ID}/ca").respond(404, json={"id": "not_found", "message": "no CA"})
        if cache_ca == 200:
            import base64

            router.get(f"/v2/databases/{CACHE_ID}/ca").respond(
                200, json={"ca": {"certificate": base64.b64encode(CA.encode()).decode()}})
        else:
            router.get(f"/v2/databases/{CACHE_ID}/ca").respond(404, json={"id": "not_found", "message": "no CA"})
        router.get(f"/v2/databases/{CACHE_ID}/eviction_policy").respond(200, json={"eviction_policy": "allkeys_lru"})
        res = run_doops(["--config", str(cfg), "status", "-o", "json", component],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}, secrets=SECRETS)
    assert "Traceback" not in res.stderr
    return res


def check(res: Any, resource: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in res.json["checks"] if (c["resource"], c["check"]) == (resource, name))
    return found


# -- pools --------------------------------------------------------------------------------------------------


class Bouncer:
    """Fake PgBouncer answers; records the targets it was asked through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pools: list[pg.PoolUsage] | Exception) -> None:
        self.pools = pools
        self.targets: list[pg.Target] = []
        monkeypatch.setattr(pg, "pgbouncer_pools", self.show)
        monkeypatch.setattr(pg, "usage", lambda target: pg.Usage(5, 100, 3))

    def show(self, target: pg.Target) -> list[pg.PoolUsage]:
        self.targets.append(target)
        if isinstance(self.pools, Exception):
            raise self.pools
        return self.pools


def test_pool_measured_by_pgbouncer_is_ok_and_asked_as_the_admin_user(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bouncer = Bouncer(monkeypatch, [pg.PoolUsage("app-pool", 20, cl_active=7, sv_active=3, sv_idle=2,
                                                 mode="transaction")])
    # The config connects as an application user: PgBouncer's stats user is the cluster's admin user.
    res = run_status(tmp_path, "databases", pools=[_pool()], user="learnhub_app")
    pools = check(res, "learnhub-db", "pools")
    assert pools["status"] == "ok", pools
    assert pools["summary"] == "app-pool: 3/20 servers busy, 7 clients active, 0 waiting"
    assert pools["details"]["source"] == "pgbouncer"
    assert pools["details"]["pools"]["app-pool"]["servers"] == 5
    [target] = bouncer.targets
    assert (target.host, target.port, target.user, target.password) == ("db.example", 25061, "doadmin", PASSWORD)
    # The connections check still lists the pools, from the same (single) pools call.
    assert "1 pool(s) of 20" in check(res, "learnhub-db", "connections")["summary"]


def test_waiting_clients_turn_the_pool_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Bouncer(monkeypatch, [pg.PoolUsage("app-pool", 20, cl_active=20, cl_waiting=4, sv_active=20,
                                       maxwait_seconds=2.5)])
    res = run_status(tmp_path, "databases", pools=[_pool()])
    pools = check(res, "learnhub-db", "pools")
    assert pools["status"] == "warn"
    assert pools["summary"].startswith("app-pool: 20/20 servers busy, 20 clients active, 4 waiting (longest 2.5s)")
    assert "pool full" in pools["summary"]
    assert res.exit_code == 1


def test_pool_usage_against_the_configured_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Bouncer(monkeypatch, [pg.PoolUsage("app-pool", 20, cl_active=17, sv_active=17)])
    busy = check(run_status(tmp_path, "databases", pools=[_pool()]), "learnhub-db", "pools")
    assert busy["status"] == "warn" and busy["details"]["pools"]["app-pool"]["ratio"] == 0.85  # default 0.8
    raised = run_status(tmp_path, "databases", pools=[_pool()], extra="thresholds:\n  pool_usage_warn: 0.9\n")
    assert check(raised, "learnhub-db", "pools")["status"] == "ok"


def test_pgbouncer_unreachable_is_unknown_with_the_api_numbers(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    Bouncer(monkeypatch, UnknownStateError("cannot connect to postgres://doadmin:***@db.example:25061/pgbouncer: "
                                           "Connection refused"))
    res = run_status(tmp_path, "databases", pools=[_pool(size=25)])
    pools = check(res, "learnhub-db", "pools")
    assert pools["status"] == "unknown"
    assert pools["summary"].startswith("PgBouncer not reachable (cannot connect to")
    assert pools["summary"].endswith("the API lists 1 pool(s) of 25 connections")
    assert pools["details"]["source"] == "api" and pools["details"]["pools"]["app-pool"]["size"] == 25


def test_pool_the_api_lists_but_pgbouncer_does_not_serve_is_crit(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    Bouncer(monkeypatch, [pg.PoolUsage("app-pool", 20)])
    res = run_status(tmp_path, "databases", pools=[_pool(), _pool("reporting")])
    pools = check(res, "learnhub-db", "pools")
    assert pools["status"] == "crit"
    assert "reporting: not served by PgBouncer" in pools["summary"]
    assert "app-pool: 0/20 servers busy" in pools["summary"]


def test_pool_without_a_connection_and_no_pools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bouncer = Bouncer(monkeypatch, [])
    res = run_status(tmp_path, "databases", pools=[_pool(connection=False)])
    assert check(res, "learnhub-db", "pools")["status"] == "unknown"
    assert "the API gives no connection for the pools" in check(res, "learnhub-db", "pools")["summary"]
    none = run_status(tmp_path, "databases", pools=[])
    assert check(none, "learnhub-db", "pools")["status"] == "ok"
    assert check(none, "learnhub-db", "pools")["summary"] == "no connection pools"
    assert bouncer.targets == []  # nothing to ask PgBouncer about


class FakeCursor:
    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.description = [type("Col", (), {"name": c})() for c in columns]
        self.rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


POOL_COLUMNS = ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
                "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
                "maxwait", "maxwait_us", "pool_mode"]


def test_pgbouncer_pools_sums_users_and_takes_sizes_from_show_databases(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {
        "SHOW DATABASES": FakeCursor(["name", "host", "port", "database", "pool_size", "pool_mode"], [
            ("app-pool", "10.0.0.1", 25060, "learnhub", 20, "transaction"),
            ("idle-pool", "10.0.0.1", 25060, "learnhub", 5, "session"),
            ("pgbouncer", None, 25061, "pgbouncer", 2, "statement")]),
        "SHOW POOLS": FakeCursor(POOL_COLUMNS, [
            ("app-pool", "learnhub_app", 10, 2, 0, 0, 8, 0, 0, 1, 1, 0, 0, 1, 500000, "transaction"),
            ("app-pool", "doadmin", 3, 1, 0, 0, 4, 0, 0, 0, 0, 0, 1, 0, 200000, "transaction"),
            ("pgbouncer", "pgbouncer", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "statement")]),
    }
    sent: list[str] = []

    class Conn:
        def execute(self, command: str) -> FakeCursor:
            sent.append(command)
            return answers[command]

    @contextmanager
    def fake(target: pg.Target) -> Any:
        yield Conn()

    monkeypatch.setattr(pg, "_pgbouncer", fake)
    got = {u.name: u for u in pg.pgbouncer_pools(pg.Target("h", 25061, "doadmin", "pw", "x"))}
    assert sorted(got) == ["app-pool", "idle-pool"]  # PgBouncer's own console left out
    app = got["app-pool"]
    assert (app.size, app.cl_active, app.cl_waiting, app.sv_active, app.sv_idle, app.sv_other) == (20, 13, 3, 12, 1, 2)
    assert app.maxwait_seconds == 1.5 and app.ratio == 12 / 20
    idle = got["idle-pool"]  # no client yet: no SHOW POOLS row, but served
    assert (idle.size, idle.cl_active, idle.mode) == (5, 0, "session")
    assert sent == ["SHOW DATABASES", "SHOW POOLS"]


def test_pgbouncer_console_connection_uses_simple_queries_and_no_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    seen: dict[str, Any] = {}

    def refuse(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise psycopg.OperationalError(f"connection failed: password={PASSWORD} rejected")

    monkeypatch.setattr(psycopg, "connect", refuse)
    target = pg.Target("db.example", 25061, "doadmin", PASSWORD, "learnhub", "verify-full", CA)
    with pytest.raises(UnknownStateError) as info:
        pg.pgbouncer_pools(target)
    assert seen["dbname"] == "pgbouncer" and seen["prepare_threshold"] is None and seen["autocommit"] is True
    assert "options" not in seen  # a real PgBouncer refuses startup parameters it does not know
    assert seen["sslmode"] == "verify-full" and seen["sslrootcert"]
    assert "postgres://doadmin:***@db.example:25061/pgbouncer" in info.value.message
    assert PASSWORD not in info.value.message


# -- cache --------------------------------------------------------------------------------------------------


def _probe(**over: Any) -> cache.CacheProbe:
    values: dict[str, Any] = {"latency_ms": 0.8, "used_memory": 10 * 1024**2, "maxmemory": 100 * 1024**2,
                              "maxmemory_policy": "allkeys-lru", "evicted_keys": 0, "connected_clients": 12,
                              "maxclients": 10000, "version": "7.2.4"}
    values.update(over)
    return cache.CacheProbe(**values)


class Probes:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, answer: cache.CacheProbe | Exception) -> None:
        self.answer = answer
        self.targets: list[cache.CacheTarget] = []
        monkeypatch.setattr(cache, "probe", self.probe)

    def probe(self, target: cache.CacheTarget) -> cache.CacheProbe:
        self.targets.append(target)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def cache_checks(res: Any) -> dict[str, tuple[str, str]]:
    return {c["check"]: (c["status"], c["summary"]) for c in res.json["checks"] if c["component"] == "cache"}


def test_healthy_cache_probed_once_with_the_clusters_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probes = Probes(monkeypatch, _probe())
    res = run_status(tmp_path, "cache")
    got = cache_checks(res)
    assert got["ping"] == ("ok", "PING 0.8ms")
    assert got["memory"] == ("ok", "10.0 MiB of 100.0 MiB used (10%)")
    assert got["evictions"] == ("ok", "no key evicted")
    assert got["clients"] == ("ok", "12/10000 clients connected (0%)")
    assert got["eviction-policy"][0] == "ok" and got["status"][0] == "ok"
    [target] = probes.targets  # one connection answers the four checks
    assert (target.host, target.port, target.user, target.password) == ("cache.example", 25061, "default",
                                                                         CACHE_PASSWORD)
    assert target.ca_pem == CA and res.exit_code == 0
    assert res.json["api_requests"] == 3  # list, eviction policy, CA


def test_cache_without_a_ca_from_the_api_uses_the_default_trust_store(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    probes = Probes(monkeypatch, _probe())
    run_status(tmp_path, "cache", cache_ca=404)
    assert [t.ca_pem for t in probes.targets] == [None]


@pytest.mark.parametrize(("probe", "check", "status", "summary"), [
    (_probe(used_memory=85 * 1024**2), "memory", "warn", "85.0 MiB of 100.0 MiB used (85%)"),
    (_probe(used_memory=99 * 1024**2), "memory", "crit", "99.0 MiB of 100.0 MiB used (99%)"),
    (_probe(used_memory=90 * 1024**2, maxmemory_policy="noeviction"), "memory", "warn",
     "90.0 MiB of 100.0 MiB used (90%): policy noeviction, writes fail once full"),
    (_probe(maxmemory=0), "memory", "warn",
     "10.0 MiB used, no maxmemory: eviction never happens, memory grows until the node runs out"),
    (_probe(evicted_keys=42), "evictions", "warn",
     "42 key(s) evicted since the server started (policy allkeys-lru): the working set does not fit in maxmemory"),
    (_probe(connected_clients=9000), "clients", "warn", "9000/10000 clients connected (90%)"),
    (_probe(maxclients=None), "clients", "ok", "12 client(s) connected (the server does not report maxclients)"),
    (_probe(latency_ms=250.0), "ping", "warn", "PING 250.0ms (limit 100ms)"),
])
def test_cache_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe: cache.CacheProbe, check: str,
                        status: str, summary: str) -> None:
    Probes(monkeypatch, probe)
    got = cache_checks(run_status(tmp_path, "cache"))
    assert got[check] == (status, summary)
    assert all(s == "ok" for name, (s, _) in got.items() if name != check), got


def test_cache_thresholds_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Probes(monkeypatch, _probe(latency_ms=30.0, used_memory=60 * 1024**2, connected_clients=5500))
    extra = ("thresholds:\n  cache_ping_warn: 20ms\n  cache_memory_warn: 0.5\n  cache_memory_crit: 0.55\n"
             "  cache_clients_warn: 0.5\n")
    got = cache_checks(run_status(tmp_path, "cache", extra=extra))
    assert got["ping"] == ("warn", "PING 30.0ms (limit 20ms)")
    assert got["memory"][0] == "crit" and got["clients"][0] == "warn"


def test_cache_refusing_connections_is_crit_and_the_rest_unknown(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    Probes(monkeypatch, cache.Refused("cannot query rediss://default:***@cache.example:25061: Connection refused."))
    res = run_status(tmp_path, "cache")
    got = cache_checks(res)
    assert got["ping"][0] == "crit" and got["ping"][1].startswith("cache not accepting connections: cannot query")
    for name in ("memory", "evictions", "clients"):
        assert got[name][0] == "unknown" and "Connection refused" in got[name][1]
    assert res.exit_code == 2


def test_cache_probe_verifies_tls_and_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    import redis

    made: list[dict[str, Any]] = []

    class FakeRedis:
        def __init__(self, **kwargs: Any) -> None:
            made.append(kwargs)
            self.pings = 0

        def ping(self) -> bool:
            self.pings += 1
            return True

        def info(self) -> dict[str, Any]:
            return {"used_memory": 1000, "maxmemory": 4000, "maxmemory_policy": "allkeys-lru", "evicted_keys": 3,
                    "connected_clients": 2, "maxclients": 100, "redis_version": "7.0.15"}

        def close(self) -> None:
            pass

    monkeypatch.setattr(redis, "Redis", FakeRedis)
    target = cache.CacheTarget("cache.example", 25061, "default", CACHE_PASSWORD, CA)
    got = cache.probe(target)
    assert (got.used_memory, got.maxmemory, got.evicted_keys, got.connected_clients, got.maxclients) == (
        1000, 4000, 3, 2, 100)
    assert got.memory_ratio == 0.25 and got.version == "7.0.15" and got.latency_ms >= 0
    kw = made[0]
    assert kw["ssl"] is True and kw["ssl_cert_reqs"] == "required" and kw["ssl_check_hostname"] is True
    assert kw["ssl_ca_data"] == CA and kw["socket_timeout"] <= 5 and kw["socket_connect_timeout"] <= 5
    assert CACHE_PASSWORD not in repr(target) and CACHE_PASSWORD not in target.masked()
    cache.probe(cache.CacheTarget("cache.example", 25061, "default", CACHE_PASSWORD))
    assert "ssl_ca_data" not in made[1] and made[1]["ssl_cert_reqs"] == "required"  # default trust store

    class Failing(FakeRedis):
        def ping(self) -> bool:
            raise redis.AuthenticationError(f"invalid password {CACHE_PASSWORD}")

    from doops import masking

    masking.register(CACHE_PASSWORD)
    monkeypatch.setattr(redis, "Redis", Failing)
    with pytest.raises(UnknownStateError) as info:
        cache.probe(target)
    assert not isinstance(info.value, cache.Refused)
    assert info.value.message.startswith("cannot query rediss://default:***@cache.example:25061: ")
    assert CACHE_PASSWORD not in info.value.message


def test_threshold_defaults_and_parsing() -> None:
    th = parse_config("thresholds:\n  cache_ping_warn: 250ms\n  pool_usage_warn: 0.5\n").thresholds
    assert th.cache_ping_warn == 0.25 and th.pool_usage_warn == 0.5
    d = parse_config("").thresholds
    assert (d.pool_usage_warn, d.cache_ping_warn, d.cache_memory_warn, d.cache_memory_crit,
            d.cache_clients_warn) == (0.8, 0.1, 0.8, 0.95, 0.8)
