"""The twin's bad-release fault: the app's next deployment goes ACTIVE but fails its health checks (App Platform
health and the live server), a rollback to the release before it heals the app, and clearing the fault does
too. The mark follows the release: a restart of it stays bad, a revert brings it back."""

from __future__ import annotations

import httpx
import pytest

from doops.sandbox.api import World, load_scenario
from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import App
from doops.sandbox.apps import AppServer, Component


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(clock: Clock) -> World:
    return World.from_scenario(load_scenario(), clock=clock)


def api_app(world: World) -> App:
    app = world.find_app_by_name("learnhub-api")
    assert app is not None
    return app


def healthy(world: World, app: App) -> bool:
    comps = world.app_health(app)["app_health"]["components"]
    return all(c["state"] == "HEALTHY" and c["replicas_ready"] == c["replicas_desired"] for c in comps)


def settle(world: World, clock: Clock) -> None:
    clock.t += 3 * world.durations.deployment_phase + 0.01


def test_next_deployment_goes_active_but_unhealthy_and_a_rollback_fixes_it(world: World, clock: Clock) -> None:
    app = api_app(world)
    good = world.active_deployment(app)
    assert good is not None and healthy(world, app)
    world.faults.bad_release("learnhub-api")
    assert healthy(world, app)  # armed, not yet deployed
    bad = world.create_deployment(app)
    assert healthy(world, app)  # still building: the good release serves
    settle(world, clock)
    assert world.deployment_phase(app, bad) == "ACTIVE" and not healthy(world, app)
    assert {c["replicas_ready"] for c in world.app_health(app)["app_health"]["components"]} == {0}
    assert world.validate_rollback(app, good.id)["valid"] is True
    rolled = world.rollback(app, good.id)
    assert not healthy(world, app)  # until the rollback is ACTIVE
    settle(world, clock)
    assert world.deployment_phase(app, rolled) == "ACTIVE" and healthy(world, app)
    world.commit_rollback(app)
    assert healthy(world, app)
    # the fault marked one deployment only: the next one is good
    world.create_deployment(app)
    settle(world, clock)
    assert healthy(world, app)


def test_the_mark_follows_the_release_restart_stays_bad_revert_brings_it_back(world: World, clock: Clock) -> None:
    app = api_app(world)
    good = world.active_deployment(app)
    assert good is not None
    world.faults.bad_release("learnhub-api")
    world.create_deployment(app)
    settle(world, clock)
    world.restart(app, ["ws"])
    settle(world, clock)
    assert not healthy(world, app)  # a restart of the bad release is the bad release
    world.rollback(app, good.id)
    settle(world, clock)
    assert healthy(world, app)
    world.revert_rollback(app)
    settle(world, clock)
    assert not healthy(world, app)  # revert redeploys the release from before the rollback


def test_clearing_the_fault_heals_the_active_bad_release(world: World, clock: Clock) -> None:
    app = api_app(world)
    world.faults.bad_release("learnhub-api")
    world.create_deployment(app)
    settle(world, clock)
    assert not healthy(world, app)
    world.faults.clear()
    assert healthy(world, app)


def test_other_apps_are_untouched(world: World, clock: Clock) -> None:
    web = world.find_app_by_name("learnhub-web")
    assert web is not None
    world.faults.bad_release("learnhub-api")
    world.create_deployment(web)
    settle(world, clock)
    assert healthy(world, web)


def test_the_live_server_fails_its_health_paths_while_the_release_is_broken() -> None:
    broken = {"now": False}
    with AppServer("learnhub-api", [Component("api", "/api"), Component("ws", "/ws")]) as server:
        server.release_broken = lambda: broken["now"]
        assert httpx.get(server.url + "/api/health").status_code == 200
        broken["now"] = True
        assert httpx.get(server.url + "/api/health").status_code == 503
        assert httpx.get(server.url + "/ws/health").status_code == 503
        assert "learnhub_app_healthy{app=\"learnhub-api\"} 0" in httpx.get(server.url + "/metrics").text
        assert server.toggled_unhealthy() == []  # not an app-unhealthy fault: `sandbox status` lists it apart
        broken["now"] = False
        assert httpx.get(server.url + "/api/health").status_code == 200


def test_validate_names_a_failed_deployment_incompatible_result(world: World) -> None:
    app = api_app(world)
    dep = world.create_deployment(app)
    dep.fixed_phase = "ERROR"
    verdict = world.validate_rollback(app, dep.id)
    assert verdict["valid"] is False and verdict["error"]["code"] == "incompatible_result"
    with pytest.raises(ApiError):
        world.rollback(app, dep.id)
