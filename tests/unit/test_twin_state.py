"""World behaviour of the DigitalOcean twin: time-driven states, promote, restore, rollback, scenarios."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from doops.sandbox.api import ConnectionInfo, FakeDatabaseBackend, World, load_scenario
from doops.sandbox.api.errors import ApiError


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
    backend = FakeDatabaseBackend(clock=clock, restore_seconds=5.0)
    backend.clusters["learnhub-db"] = ConnectionInfo("127.0.0.1", 15432, "doadmin", "s3cret", "learnhub")
    backend.replicas[("learnhub-db", "learnhub-db-ams3")] = ConnectionInfo(
        "127.0.0.1", 15433, "doadmin", "s3cret", "learnhub")
    return backend


@pytest.fixture
def world(clock: Clock, db: FakeDatabaseBackend) -> World:
    return World.from_scenario(load_scenario(), db=db, clock=clock)


def test_default_scenario_world(world: World) -> None:
    pg = world.find_cluster_by_name("learnhub-db")
    cache = world.find_cluster_by_name("learnhub-cache")
    assert pg is not None and cache is not None
    assert pg.engine == "pg" and pg.region == "nyc3" and pg.num_nodes == 2 and "learnhub" in pg.db_names
    assert list(pg.replicas) == ["learnhub-db-ams3"] and pg.replicas["learnhub-db-ams3"].region == "ams3"
    assert cache.engine == "valkey" and cache.eviction_policy == "allkeys_lru"
    assert {a.name for a in world.apps.values()} == {"learnhub-api", "learnhub-api-ams3", "learnhub-web"}
    standby = world.find_app_by_name("learnhub-api-ams3")
    assert standby is not None and standby.region == "ams" and [n for n, _, _ in standby.components()] == ["api", "ws"]
    assert world.app_json(standby)["region"]["data_centers"] == ["ams3"]
    assert {s["github"]["repo"] for s in standby.spec["services"]} == {"learnhub/learnhub-api"}
    standby_phases = [world.deployment_phase(standby, d) for d in standby.deployments]
    assert standby_phases[-1] == "ACTIVE" and set(standby_phases[:-1]) == {"SUPERSEDED"}
    api = world.find_app_by_name("learnhub-api")
    assert api is not None and [n for n, _, _ in api.components()] == ["api", "ws"]
    phases = [world.deployment_phase(api, d) for d in api.deployments]
    assert phases[-1] == "ACTIVE" and set(phases[:-1]) == {"SUPERSEDED"}
    ep = next(iter(world.cdn_endpoints.values()))
    assert ep["origin"] == "learnhub-media.nyc3.digitaloceanspaces.com" and ep["ttl"] == 3600
    ns = next(iter(world.namespaces.values()))
    assert ns["label"] == "learnhub-jobs"
    triggers = {t["name"]: world.trigger_json(ns, t) for t in ns["triggers"].values()}
    assert triggers["nightly-digest"]["scheduled_details"]["cron"] == "0 3 * * *"
    assert triggers["expire-sessions"]["scheduled_details"]["cron"] == "*/15 * * * *"
    last = datetime.fromisoformat(triggers["expire-sessions"]["scheduled_runs"]["last_run_at"].replace("Z", "+00:00"))
    assert timedelta(0) <= datetime.fromtimestamp(world.clock(), UTC) - last <= timedelta(minutes=15)
    assert {b["name"] for b in world.buckets} == {"learnhub-media", "learnhub-media-ams3"}
    assert "learnhub.example" in world.domains and world.load_balancers and world.alert_policies
    # the cluster's connection is the backend's real one
    assert world.cluster_json(pg)["connection"]["port"] == 15432


def test_ids_are_stable_across_builds(clock: Clock) -> None:
    a = World.from_scenario(load_scenario(), clock=clock)
    b = World.from_scenario(load_scenario(), clock=clock)
    assert set(a.clusters) == set(b.clusters) and set(a.apps) == set(b.apps)


def test_deployment_walks_its_phases(world: World, clock: Clock) -> None:
    app = world.find_app_by_name("learnhub-api")
    assert app is not None
    old_active = world.active_deployment(app)
    assert old_active is not None
    dep = world.create_deployment(app)
    step = world.durations.deployment_phase
    seen = []
    for k in range(4):
        clock.t = dep.created_at + (k + 0.5) * step  # mid-phase: no float edge effects
        seen.append(world.deployment_phase(app, dep))
        assert world.deployment_phase(app, old_active) == ("ACTIVE" if seen[-1] != "ACTIVE" else "SUPERSEDED")
    assert seen == ["PENDING_BUILD", "BUILDING", "DEPLOYING", "ACTIVE"]
    assert world.in_progress_deployment(app) is None
    assert world.app_json(app)["active_deployment"]["id"] == dep.id


def test_rollback_pins_and_commit_unpins(world: World, clock: Clock) -> None:
    app = world.find_app_by_name("learnhub-web")
    assert app is not None
    target = app.deployments[0]
    assert world.validate_rollback(app, target.id)["valid"] is True
    active = world.active_deployment(app)
    assert active is not None
    assert world.validate_rollback(app, active.id)["error"]["code"] == "incompatible_phase"
    dep = world.rollback(app, target.id)
    assert dep.cloned_from == target.id and app.pinned == dep.id
    with pytest.raises(ApiError) as err:
        world.create_deployment(app)
    assert err.value.status == 400
    world.commit_rollback(app)
    assert app.pinned is None
    with pytest.raises(ApiError):
        world.commit_rollback(app)
    world.create_deployment(app)


def test_promote_makes_a_standalone_cluster(world: World, db: FakeDatabaseBackend) -> None:
    src = world.find_cluster_by_name("learnhub-db")
    assert src is not None
    replica_id = src.replicas["learnhub-db-ams3"].id
    new = world.promote_replica(src, "learnhub-db-ams3")
    assert db.calls[-1] == ("promote", ("learnhub-db", "learnhub-db-ams3"))
    assert "learnhub-db-ams3" not in src.replicas
    assert new.id == replica_id and new.id != src.id and new.name == "learnhub-db-ams3"
    j = world.cluster_json(new)
    assert j["status"] == "online" and j["region"] == "ams3" and j["connection"]["port"] == 15433
    assert world.cluster_status(src) == "online"
    assert any(e["event_type"] == "cluster_master_promotion" for e in new.events)


def test_failed_promote_changes_nothing(world: World, db: FakeDatabaseBackend) -> None:
    db.fail_promote = True
    src = world.find_cluster_by_name("learnhub-db")
    assert src is not None
    before = set(world.clusters)
    with pytest.raises(RuntimeError):
        world.promote_replica(src, "learnhub-db-ams3")
    assert "learnhub-db-ams3" in src.replicas and set(world.clusters) == before


def _restore_body(when: datetime | None, source: str = "learnhub-db") -> dict[str, object]:
    br: dict[str, object] = {"database_name": source}
    if when is not None:
        br["backup_created_at"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"name": "learnhub-db-pitr", "engine": "pg", "num_nodes": 1, "size": "db-s-2vcpu-4gb",
            "region": "nyc3", "backup_restore": br}


def test_pitr_restore_is_creating_until_backend_ready(world: World, db: FakeDatabaseBackend, clock: Clock) -> None:
    now = datetime.fromtimestamp(clock.t, UTC)
    c = world.create_cluster(_restore_body(now - timedelta(hours=3)))
    assert db.calls[-1][0] == "restore" and db.calls[-1][1][0] == "learnhub-db"
    assert world.cluster_status(c) == "creating"
    clock.t += 5.0
    assert world.cluster_status(c) == "online"
    assert world.cluster_json(c)["connection"]["host"] == "127.0.0.1"
    assert c.restored_from == "learnhub-db"


@pytest.mark.parametrize("delta", [timedelta(days=8), timedelta(hours=-1)])
def test_pitr_outside_window_is_422(world: World, clock: Clock, delta: timedelta) -> None:
    now = datetime.fromtimestamp(clock.t, UTC)
    with pytest.raises(ApiError) as err:
        world.create_cluster(_restore_body(now - delta))
    assert err.value.status == 422


def test_pitr_unknown_source_is_404(world: World) -> None:
    with pytest.raises(ApiError) as err:
        world.create_cluster(_restore_body(None, source="nope"))
    assert err.value.status == 404


def test_new_cluster_and_replica_come_online(world: World, clock: Clock) -> None:
    c = world.create_cluster({"name": "scratch", "engine": "pg", "num_nodes": 1, "size": "db-s-1vcpu-1gb",
                              "region": "nyc3"})
    r = world.create_replica(c, {"name": "scratch-ro", "region": "ams3"})
    assert world.cluster_status(c) == "creating" and world.replica_json(c, r)["status"] == "creating"
    clock.t += max(world.durations.cluster_create, world.durations.replica_create)
    assert world.cluster_status(c) == "online" and world.replica_json(c, r)["status"] == "online"
    with pytest.raises(ApiError) as err:
        world.create_replica(c, {"name": "scratch-ro"})
    assert err.value.status == 422


def test_synthetic_backups_cover_the_pitr_window(world: World) -> None:
    cache = world.find_cluster_by_name("learnhub-cache")
    assert cache is not None
    backups = world.backups(cache)
    assert len(backups) == 7
    assert backups[0].created_at > backups[-1].created_at
    assert world.clock() - backups[0].created_at.timestamp() < 86400


def test_scenario_file_merges_and_scales(tmp_path: Path, clock: Clock) -> None:
    f = tmp_path / "big.yaml"
    f.write_text("scale: {apps: 120, cdn_endpoints: 30, uptime_checks: 50, alert_policies: 60}\n"
                 "durations: {deployment_phase: 2}\nlimits: {per_minute: 10}\n")
    sc = load_scenario(f)
    assert sc.durations.deployment_phase == 2.0 and sc.durations.cluster_create == 0.3
    assert sc.limits.per_minute == 10 and sc.limits.per_hour == 5000
    w = World.from_scenario(sc, clock=clock)
    assert (len(w.apps), len(w.cdn_endpoints), len(w.checks), len(w.alert_policies)) == (120, 30, 50, 60)
    assert w.find_app_by_name("learnhub-api") is not None


def test_scenario_rejects_unknown_settings(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("durations: {deployment_phaze: 1}\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_scenario(f)
    f.write_text("scale: {databases: 3}\n")
    with pytest.raises(ValueError, match="cannot scale"):
        load_scenario(f)


def _resource_ids(world: World) -> dict[str, str]:
    """Every id a lock, journal or pending record could be keyed by, named by what it is."""
    ids = {"account": world.account["uuid"], "team": world.account["team"]["uuid"], "vpc": world.vpc_uuid}
    for c in world.clusters.values():
        ids[f"cluster:{c.name}"] = c.id
        ids.update({f"replica:{c.name}/{r.name}": r.id for r in c.replicas.values()})
    for a in world.apps.values():
        ids[f"app:{a.name}"] = a.id
        ids.update({f"deployment:{a.name}/{i}": d.id for i, d in enumerate(a.deployments)})
    ids.update({f"cdn:{ep['origin']}": ep_id for ep_id, ep in world.cdn_endpoints.items()})
    ids.update({f"namespace:{ns['label']}": ns["uuid"] for ns in world.namespaces.values()})
    ids.update({f"check:{c.name}": c.id for c in world.checks.values()})
    ids.update({f"lb:{lb['name']}": lb_id for lb_id, lb in world.load_balancers.items()})
    ids.update({f"alert-policy:{i}": p for i, p in enumerate(world.alert_policies)})
    return ids


def test_id_seed_gives_each_sandbox_its_own_ids(clock: Clock) -> None:
    import uuid

    scenario = load_scenario()
    plain = _resource_ids(World.from_scenario(scenario, clock=clock))
    a = _resource_ids(World.from_scenario(scenario, clock=clock, id_seed="seed-a"))
    b = _resource_ids(World.from_scenario(scenario, clock=clock, id_seed="seed-b"))
    assert set(a) == set(b) == set(plain) and "cluster:learnhub-db" in a and "app:learnhub-api" in a
    assert not set(a.values()) & set(b.values()), "two sandboxes share an id"
    assert not set(a.values()) & set(plain.values()), "a sandbox shares an id with the unseeded world"
    # stable for the sandbox's life: the same seed gives the same ids
    assert _resource_ids(World.from_scenario(scenario, clock=clock, id_seed="seed-a")) == a
    for name, value in a.items():
        if name != "account":  # DigitalOcean's account uuid is 40 hex digits, not a UUID
            assert str(uuid.UUID(value)) == value, f"{name}: {value} is not a uuid"
    assert len(a["account"]) == 40 and int(a["account"], 16) >= 0


def test_scenario_ids_win_over_the_seed(clock: Clock) -> None:
    pinned = "0b5c3a52-2c59-4f0f-9d55-6b1a3c1e0d01"
    dbs = [dict(d) for d in load_scenario().data["databases"]]
    dbs[0] = {**dbs[0], "id": pinned}
    world = World.from_scenario(load_scenario(overrides={"databases": dbs}), clock=clock, id_seed="x")
    assert pinned in world.clusters
