"""`doops status databases` after a failover, with a mocked API and mocked server probes: the promoted
cluster is judged as the primary, two writable primaries of one lineage are a split-brain crit, and the
config still naming the old topology is a warn with the exact change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx

from doops.clients import pg
from doops.clients.do import DOClient
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
OLD, NEW = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
PASSWORD = "s3cr3t-db-password"  # a fake, checked for leaks
CONFIG = """\
databases:
  primary: learnhub-db
  clusters:
    - name: learnhub-db
      database: learnhub
      user: doadmin
      replicas: [{replicas}]
"""


def _conn(host: str) -> dict[str, Any]:
    return {"host": host, "port": 25060, "user": "doadmin", "password": PASSWORD, "database": "defaultdb",
            "ssl": True}


def _cluster(cid: str, name: str, region: str, host: str) -> dict[str, Any]:
    return {"id": cid, "name": name, "engine": "pg", "version": "16", "region": region, "status": "online",
            "num_nodes": 1, "size": "db-s-1vcpu-1gb", "connection": _conn(host),
            "maintenance_window": {"pending": False, "description": []}}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Servers:
    """Fake server probes keyed by host: what pg_is_in_recovery() and transaction_read_only would say."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, states: dict[str, str]) -> None:
        self.states = states
        self.targets: list[pg.Target] = []
        monkeypatch.setattr(pg, "usage", self.usage)
        monkeypatch.setattr(pg, "writability", self.writability)
        monkeypatch.setattr(pg, "pgbouncer_pools", lambda target: [pg.PoolUsage("app", 10)])

    def _check(self, target: pg.Target) -> None:
        self.targets.append(target)
        if self.states[target.host] == "refused":
            from doops.errors import UnknownStateError

            raise UnknownStateError(f"cannot connect to {target.masked()}: Connection refused")

    def usage(self, target: pg.Target) -> pg.Usage:
        self._check(target)
        return pg.Usage(5, 100, 3)

    def writability(self, target: pg.Target) -> pg.Writability:
        self._check(target)
        state = self.states[target.host]
        return pg.Writability(in_recovery=state == "recovery", read_only=state in ("recovery", "read-only"))


def run_status(tmp_path: Path, router: respx.Router, *, replicas: list[dict[str, Any]] | None = None,
               standalone: bool = True, events: list[dict[str, Any]] | None = None,
               config_replicas: str = "learnhub-db-ams3",
               new_backups: list[dict[str, Any]] | None = None) -> tuple[Any, dict[str, Any]]:
    """Mock the API for one run of `status databases`; returns (result, routes)."""
    clusters = [_cluster(OLD, "learnhub-db", "nyc3", "old.db")]
    if standalone:
        clusters.append(_cluster(NEW, "learnhub-db-ams3", "ams3", "new.db"))
    backup = [{"created_at": _iso(datetime.now(UTC) - timedelta(hours=2)), "size_gigabytes": 0.1}]
    routes = {
        "list": router.get("/v2/databases").respond(200, json={"databases": clusters}),
        "old_backups": router.get(f"/v2/databases/{OLD}/backups").respond(200, json={"backups": backup}),
        "old_pools": router.get(f"/v2/databases/{OLD}/pools").respond(200, json={"pools": []}),
        "old_replicas": router.get(f"/v2/databases/{OLD}/replicas").respond(200, json={"replicas": replicas or []}),
        "events": router.get(f"/v2/databases/{OLD}/events").respond(200, json={"events": events or []}),
        "new_backups": router.get(f"/v2/databases/{NEW}/backups").respond(
            200, json={"backups": new_backups or []}),
        "new_pools": router.get(f"/v2/databases/{NEW}/pools").respond(200, json={"pools": [
            {"name": "app", "size": 10, "mode": "transaction", "db": "learnhub",
             "connection": {**_conn("new.db"), "port": 25061, "database": "app"}}]}),
        "new_replicas": router.get(f"/v2/databases/{NEW}/replicas").respond(200, json={"replicas": []}),
        "new_events": router.get(f"/v2/databases/{NEW}/events").respond(200, json={"events": []}),
        # No CA from the API: sslmode auto connects with require (the fake servers take any mode).
        "old_ca": router.get(f"/v2/databases/{OLD}/ca").respond(404, json={"id": "not_found", "message": "no CA"}),
        "new_ca": router.get(f"/v2/databases/{NEW}/ca").respond(404, json={"id": "not_found", "message": "no CA"}),
    }
    cfg = tmp_path / "doops.yaml"
    cfg.write_text(CONFIG.format(replicas=config_replicas))
    res = run_doops(["--config", str(cfg), "status", "-o", "json", "databases"],
                    env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}, secrets=(CANARY_TOKEN, PASSWORD))
    return res, routes


def promotion_events(at: datetime) -> list[dict[str, Any]]:
    """As DigitalOcean answers: newest first, each event naming its own cluster."""
    return [
        {"id": "e2", "cluster_name": "learnhub-db", "event_type": "cluster_master_promotion", "create_time": _iso(at)},
        {"id": "e1", "cluster_name": "learnhub-db", "event_type": "cluster_create",
         "create_time": _iso(at - timedelta(days=3))},
    ]


def by_check(res: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["resource"], c["check"]): c for c in res.json["checks"]}


def test_after_failover_the_promoted_cluster_is_the_primary_and_split_brain_is_crit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    servers = Servers(monkeypatch, {"old.db": "writable", "new.db": "writable"})
    at = datetime.now(UTC) - timedelta(minutes=3)
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, routes = run_status(tmp_path, router, events=promotion_events(at))
    checks = by_check(res)
    # The promoted replica is no longer reported missing...
    assert ("learnhub-db-ams3", "replica") not in checks
    assert not any("not found" in c["summary"] for c in res.json["checks"])
    # ...it is judged as the primary it now is: online, backups, connections, writes.
    for check in ("status", "maintenance", "backups", "connections", "writable"):
        assert checks[("learnhub-db-ams3", check)]["status"] == "ok", checks[("learnhub-db-ams3", check)]
    status = checks[("learnhub-db-ams3", "status")]
    assert "primary promoted from learnhub-db at " + _iso(at) in status["summary"]
    assert status["details"]["role"] == "primary" and status["details"]["promoted_from"] == "learnhub-db"
    backups = checks[("learnhub-db-ams3", "backups")]
    assert backups["summary"].startswith("no backup since the promotion ") and backups["details"]["count"] == 0
    assert "earlier history: learnhub-db's backups" in backups["summary"]
    assert 170 <= backups["details"]["age_seconds"] <= 240
    assert "1 pool(s) of 10" in checks[("learnhub-db-ams3", "connections")]["summary"]
    assert "pg_is_in_recovery() = false" in checks[("learnhub-db-ams3", "writable")]["summary"]
    # Two writable primaries of one lineage.
    split = checks[("learnhub-db", "split-brain")]
    assert split["status"] == "crit"
    assert split["summary"].startswith("split-brain risk: two writable primaries of lineage learnhub-db "
                                       "(learnhub-db, learnhub-db-ams3)")
    assert "fix: repoint apps to learnhub-db-ams3, then fence or delete learnhub-db" in split["summary"]
    # The config still names the old topology: a warn with the exact change.
    cfg = checks[("learnhub-db-ams3", "config")]
    assert cfg["status"] == "warn"
    assert cfg["summary"] == (
        "config names learnhub-db as primary and learnhub-db-ams3 as its replica, but learnhub-db-ams3 was "
        f"promoted at {_iso(at)}: set databases.primary: learnhub-db-ams3 and remove the replica entry "
        "learnhub-db-ams3 from databases.clusters[0].replicas; set databases.clusters[0].name: learnhub-db-ams3 "
        "(its database, user and sslmode now apply to learnhub-db-ams3)")
    assert cfg["details"]["file"] == str(tmp_path / "doops.yaml")
    assert res.json["overall"] == "crit" and res.exit_code == 2
    # The promoted cluster is reached with its lineage's settings (database learnhub), on its own host.
    assert {(t.host, t.dbname) for t in servers.targets} == {("old.db", "learnhub"), ("new.db", "learnhub")}
    # Requests: one events call for the configured primary; the promoted cluster costs backups + pools only.
    assert routes["events"].call_count == 1 and routes["new_events"].call_count == 0
    assert routes["new_replicas"].call_count == 0 and routes["list"].call_count == 1
    assert res.json["api_requests"] == 9  # 7, and one CA fetch per cluster (sslmode auto)


def test_steady_state_asks_no_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "writable", "rep.db": "recovery"})
    monkeypatch.setattr(pg, "replica_lag", lambda rep, primary: pg.ReplicaLag(True, False, 0, 0.0, "0/1"))
    replica = {"id": "r1", "name": "learnhub-db-ams3", "region": "ams3", "status": "online",
               "connection": _conn("rep.db")}
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, routes = run_status(tmp_path, router, replicas=[replica], standalone=False)
    checks = by_check(res)
    assert checks[("learnhub-db-ams3", "replica")]["status"] == "ok"
    assert routes["events"].call_count == 0
    assert not any(c["check"] in ("split-brain", "config", "writable") for c in res.json["checks"])
    assert res.json["api_requests"] == 5 and res.exit_code == 0  # 4, and the CA fetch (sslmode auto)


def test_old_primary_in_recovery_is_no_split_brain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "recovery", "new.db": "writable"})
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, events=promotion_events(datetime.now(UTC)))
    checks = by_check(res)
    assert checks[("learnhub-db", "split-brain")]["status"] == "ok"
    assert "learnhub-db-ams3 is the only writable primary" in checks[("learnhub-db", "split-brain")]["summary"]
    assert checks[("learnhub-db-ams3", "config")]["status"] == "warn"
    assert res.json["overall"] == "warn" and res.exit_code == 1


def test_old_primary_refusing_connections_is_a_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "refused", "new.db": "writable"})
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, events=promotion_events(datetime.now(UTC)))
    split = by_check(res)[("learnhub-db", "split-brain")]
    assert split["status"] == "warn" and "refuses connections" in split["summary"]
    assert "delete learnhub-db" in split["summary"]


def test_old_primary_soft_fenced_is_a_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "read-only", "new.db": "writable"})
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, events=promotion_events(datetime.now(UTC)))
    split = by_check(res)[("learnhub-db", "split-brain")]
    assert split["status"] == "warn" and "soft-fenced" in split["summary"]


def test_promoted_cluster_still_in_recovery_is_crit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "writable", "new.db": "recovery"})
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, events=promotion_events(datetime.now(UTC)))
    checks = by_check(res)
    assert checks[("learnhub-db-ams3", "writable")]["status"] == "crit"
    assert "still in recovery" in checks[("learnhub-db-ams3", "writable")]["summary"]
    # Only one server takes writes: no split-brain, whatever else is wrong.
    assert checks[("learnhub-db", "split-brain")]["status"] == "ok"


def test_same_name_without_a_promotion_event_stays_replica_not_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "writable", "new.db": "writable"})
    events = [{"id": "e1", "cluster_name": "learnhub-db", "event_type": "cluster_create",
               "create_time": "2026-01-01T00:00:00Z"}]
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, routes = run_status(tmp_path, router, events=events)
    checks = by_check(res)
    rep = checks[("learnhub-db-ams3", "replica")]
    assert rep["status"] == "crit" and "show no cluster_master_promotion" in rep["summary"]
    assert not any(c["check"] in ("split-brain", "config", "writable") for c in res.json["checks"])
    assert routes["events"].call_count == 1


def test_replica_gone_and_no_cluster_of_its_name_is_still_crit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "writable"})
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, routes = run_status(tmp_path, router, standalone=False)
    rep = by_check(res)[("learnhub-db-ams3", "replica")]
    assert rep["status"] == "crit" and rep["summary"] == "replica learnhub-db-ams3 of learnhub-db not found"
    assert routes["events"].call_count == 0


def test_other_replicas_stay_with_the_old_primary_so_the_config_gets_a_new_entry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "writable", "new.db": "writable", "rep.db": "recovery"})
    monkeypatch.setattr(pg, "replica_lag", lambda rep, primary: pg.ReplicaLag(True, False, 0, 0.0, "0/1"))
    sfo = {"id": "r2", "name": "learnhub-db-sfo3", "region": "sfo3", "status": "online", "connection": _conn("rep.db")}
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, replicas=[sfo], config_replicas="learnhub-db-ams3, learnhub-db-sfo3",
                            events=promotion_events(datetime.now(UTC)))
    checks = by_check(res)
    assert checks[("learnhub-db-sfo3", "replica")]["status"] == "ok"
    cfg = checks[("learnhub-db-ams3", "config")]["summary"]
    assert "remove the replica entry learnhub-db-ams3 from databases.clusters[0].replicas" in cfg
    assert "add a databases.clusters entry named learnhub-db-ams3" in cfg


def test_promoted_cluster_without_backup_long_after_the_promotion(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "recovery", "new.db": "writable"})
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, events=promotion_events(datetime.now(UTC) - timedelta(hours=30)))
    backups = by_check(res)[("learnhub-db-ams3", "backups")]
    assert backups["status"] == "warn" and "no backup since the promotion" in backups["summary"]


def test_promoted_cluster_with_its_own_backup_is_judged_by_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Servers(monkeypatch, {"old.db": "recovery", "new.db": "writable"})
    old_backup = [{"created_at": _iso(datetime.now(UTC) - timedelta(hours=60)), "size_gigabytes": 0.1}]
    with respx.mock(base_url=API, assert_all_called=False) as router:
        res, _ = run_status(tmp_path, router, events=promotion_events(datetime.now(UTC)), new_backups=old_backup)
    backups = by_check(res)[("learnhub-db-ams3", "backups")]
    assert backups["status"] == "crit" and backups["summary"].startswith("latest backup ")
    assert backups["details"]["count"] == 1


@pytest.mark.parametrize(("events", "status"), [
    ([{"id": "p", "cluster_name": "learnhub-db-ams3", "event_type": "cluster_master_promotion",
       "create_time": _iso(datetime.now(UTC) - timedelta(hours=1))}], "ok"),
    ([{"id": "c", "cluster_name": "learnhub-db-ams3", "event_type": "cluster_create",
       "create_time": _iso(datetime.now(UTC) - timedelta(hours=1))}], "crit"),
])
def test_config_naming_the_promoted_cluster_gives_its_first_backup_the_same_grace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]], status: str) -> None:
    """After the config change the promotion is learnt from the cluster's own events, asked only when it has
    no backup: a fresh promotion is not "no backup" crit; a cluster that was never promoted still is."""
    Servers(monkeypatch, {"new.db": "writable"})
    cfg = tmp_path / "doops.yaml"
    cfg.write_text("databases:\n  primary: learnhub-db-ams3\n  clusters:\n    - name: learnhub-db-ams3\n")
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/databases").respond(200, json={"databases": [
            _cluster(NEW, "learnhub-db-ams3", "ams3", "new.db")]})
        router.get(f"/v2/databases/{NEW}/backups").respond(200, json={"backups": []})
        router.get(f"/v2/databases/{NEW}/pools").respond(200, json={"pools": []})
        router.get(f"/v2/databases/{NEW}/replicas").respond(200, json={"replicas": []})
        own = router.get(f"/v2/databases/{NEW}/events").respond(200, json={"events": events})
        res = run_doops(["--config", str(cfg), "status", "-o", "json", "databases"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}, secrets=(CANARY_TOKEN, PASSWORD))
    backups = by_check(res)[("learnhub-db-ams3", "backups")]
    assert backups["status"] == status and own.call_count == 1
    if status == "ok":
        assert backups["summary"].startswith("no backup since the promotion ")
    else:
        assert backups["summary"] == "no backup"


def test_list_database_events_is_typed_and_newest_first() -> None:
    with respx.mock(base_url=API) as router:
        route = router.get(f"/v2/databases/{OLD}/events").respond(200, json={"events": [
            {"id": "a", "cluster_name": "learnhub-db", "event_type": "cluster_create",
             "create_time": "2026-01-01T00:00:00Z"},
            {"id": "b", "cluster_name": "learnhub-db", "event_type": "cluster_master_promotion",
             "create_time": "2026-02-01T00:00:00Z"},
        ]})
        events = DOClient(CANARY_TOKEN).list_database_events(OLD)
    assert route.call_count == 1
    assert [e.id for e in events] == ["b", "a"]
    assert events[0].event_type == "cluster_master_promotion" and events[0].cluster_name == "learnhub-db"
    assert events[0].create_time == datetime(2026, 2, 1, tzinfo=UTC)
