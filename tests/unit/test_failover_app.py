"""`failover_app()` on a fake clock: API and app health through respx, the name servers a fake lookup that lags
as told. Pre-check refusals, the TTL warning, dry run and a declined confirmation that send no PUT, a re-run
that only verifies, servers converging one by one, a timeout, and bad input (exit 4) that writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from doops.clients.dns import Answer, DnsUnreachable, Rec
from doops.config import Config, DnsConfig, DnsRecordConfig, Objectives
from doops.errors import UsageError
from doops.ops.failover_app import AppFailoverOptions, failover_app
from doops.ops.seam import Cancel, FakeClock, Outcome, RecordingSink
from doops.platform import Platform

API = "https://api.digitalocean.com"
PRIMARY_HOST = "learnhub-api-aaaaa.ondigitalocean.app"
STANDBY_HOST = "learnhub-api-ams3-bbbbb.ondigitalocean.app"
SERVERS = [("ns1.test", 53), ("ns2.test", 53)]
SPEC = {"services": [{"name": "api", "health_check": {"http_path": "/health"}}],
        "ingress": {"rules": [{"component": {"name": "api"}, "match": {"path": {"prefix": "/api"}}}]}}


def app(aid: str, name: str, host: str, slug: str, dcs: list[str], phase: str = "ACTIVE") -> dict[str, Any]:
    return {"id": aid, "spec": {"name": name, **SPEC}, "default_ingress": f"https://{host}",
            "live_url": f"https://{host}", "region": {"slug": slug, "data_centers": dcs},
            "active_deployment": {"id": f"d-{aid}", "phase": phase}}


@dataclass
class World:
    clock: FakeClock
    data: str = PRIMARY_HOST + "."
    ttl: int = 60
    record_exists: bool = True
    standby_phase: str = "ACTIVE"
    standby_health: int = 200
    lag: dict[str, float] = field(default_factory=dict)  # server -> seconds after the PUT it answers the new data
    down: set[str] = field(default_factory=set)
    put_at: float | None = None
    previous: str | None = None
    puts: list[dict[str, Any]] = field(default_factory=list)

    def apps(self) -> list[dict[str, Any]]:
        return [app("a-1", "learnhub-api", PRIMARY_HOST, "nyc", ["nyc1", "nyc3"]),
                app("a-2", "learnhub-api-ams3", STANDBY_HOST, "ams", ["ams3"], self.standby_phase),
                app("a-3", "learnhub-web", "learnhub-web-ccccc.ondigitalocean.app", "nyc", ["nyc1", "nyc3"])]

    def record(self) -> dict[str, Any]:
        return {"id": 42, "type": "CNAME", "name": "api", "data": self.data, "ttl": self.ttl}

    def lookup(self, host: str, port: int, qname: str, qtype: str) -> Answer:
        server = f"{host}:{port}"
        if server in self.down:
            raise DnsUnreachable(f"name server {server} did not answer")
        if qname.startswith("api."):
            data = self.data
            if (self.put_at is not None and self.previous is not None
                    and self.clock.monotonic() - self.put_at < self.lag.get(server, 0.0)):
                data = self.previous
            return Answer(server, qname, qtype, authoritative=True,
                          answer=[Rec("api.learnhub.example.", "CNAME", self.ttl, data)])
        if qname.rstrip(".") in (PRIMARY_HOST, STANDBY_HOST):
            return Answer(server, qname, qtype, authoritative=True, answer=[Rec(qname, "A", 60, "192.0.2.7")])
        return Answer(server, qname, qtype, rcode="NXDOMAIN", authoritative=True)


def config(ttl_objective: float = 60) -> Config:
    return Config(objectives=Objectives(dns_rto=ttl_objective),  # type: ignore[arg-type]
                  dns=DnsConfig(nameservers=[f"{h}:{p}" for h, p in SERVERS],
                                failover_records=[DnsRecordConfig("learnhub.example", "api", "CNAME",
                                                                  "learnhub-api")]))


@pytest.fixture(autouse=True)
def _isolated(isolated_env: Path) -> Iterator[Path]:
    yield isolated_env


@pytest.fixture
def world() -> World:
    return World(FakeClock())


@pytest.fixture
def api(world: World) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/v2/account").respond(200, json={"account": {"uuid": "u", "email": "sre@example.com",
                                                                       "status": "active"}})
        router.get(f"{API}/v2/apps").mock(side_effect=lambda r: httpx.Response(
            200, json={"apps": world.apps(), "links": {}, "meta": {"total": 3}}))

        def records(request: httpx.Request) -> httpx.Response:
            assert request.url.params.get("name") == "api.learnhub.example"
            assert request.url.params.get("type") == "CNAME"
            found = [world.record()] if world.record_exists else []
            return httpx.Response(200, json={"domain_records": found, "links": {}, "meta": {"total": len(found)}})

        router.get(f"{API}/v2/domains/learnhub.example/records").mock(side_effect=records)

        def put(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            world.puts.append(body)
            world.previous, world.data, world.put_at = world.data, body["data"], world.clock.monotonic()
            return httpx.Response(200, json={"domain_record": world.record()})

        router.put(f"{API}/v2/domains/learnhub.example/records/42").mock(side_effect=put)
        router.get(f"https://{STANDBY_HOST}/api/health").mock(
            side_effect=lambda r: httpx.Response(world.standby_health))
        router.get(f"https://{PRIMARY_HOST}/api/health").respond(200)
        yield router


def platform(world: World, **kw: Any) -> Platform:
    p = Platform(access_token="t", api_url=API, clock=world.clock)
    p._config = config(**kw)
    return p


def run(world: World, *, answer: bool = True, sink: RecordingSink | None = None, cancel: Cancel | None = None,
        asked: list[str] | None = None, **opts: Any) -> Any:
    """Run `failover_app` answering ``answer`` to its confirmation; the questions it asks go to ``asked``."""
    questions = asked if asked is not None else []

    def confirm(q: str) -> bool:
        questions.append(q)
        return answer

    return failover_app(platform(world), AppFailoverOptions(**{"region": "ams3", **opts}), confirm=confirm,
                        events=sink or RecordingSink(), cancel=cancel, lookup=world.lookup)


def test_failover_repoints_verifies_every_server_and_measures_both_rtos(world: World, api: respx.MockRouter) -> None:
    world.lag = {"ns1.test:53": 0.5, "ns2.test:53": 3.0}
    questions: list[str] = []
    r = run(world, asked=questions)
    assert r.outcome is Outcome.OK, r.message
    assert world.puts == [{"type": "CNAME", "name": "api", "data": STANDBY_HOST + ".", "ttl": 60}]
    assert "learnhub-api-ams3" in questions[0] and "api.learnhub.example" in questions[0]
    assert (r.record.old, r.record.new, r.record.ttl) == (PRIMARY_HOST + ".", STANDBY_HOST + ".", 60)
    ns1, ns2 = r.nameservers
    assert ns1.changed_at is not None and ns2.changed_at is not None and ns1.changed_at < ns2.changed_at
    assert 3.0 <= r.dns_switched_seconds < 5.0  # the slower server decides
    assert r.clients_switched_by_seconds == pytest.approx(r.dns_switched_seconds + 60)
    assert r.met is True and r.timings.standby_verified >= r.timings.dns_switched
    assert r.standby_url == f"https://{STANDBY_HOST}/api/health"
    data = r.to_data()
    assert {"app", "standby", "record", "nameservers", "timings", "dns_switched_seconds", "dns_rto_target_seconds",
            "clients_switched_by_seconds", "compute_rto_target_seconds", "met", "warnings", "outcome"} <= set(data)


def test_second_run_only_verifies(world: World, api: respx.MockRouter) -> None:
    world.data = STANDBY_HOST + "."
    questions: list[str] = []
    r = run(world, asked=questions)
    assert r.outcome is Outcome.OK and r.already_pointing and world.puts == [] and questions == []
    assert r.dns_switched_seconds is None and r.timings.standby_verified is not None


def test_dry_run_and_declined_send_no_put(world: World, api: respx.MockRouter) -> None:
    assert run(world, dry_run=True).outcome is Outcome.DRY_RUN
    declined = run(world, answer=False)
    assert declined.outcome is Outcome.DECLINED and declined.outcome.exit_code == 130
    assert world.puts == []


@pytest.mark.parametrize(("change", "check"), [
    ({"standby_phase": "DEPLOYING"}, "standby active"),
    ({"standby_health": 503}, "standby healthy"),
    ({"record_exists": False}, "record exists"),
])
def test_precheck_failure_refuses_without_put(world: World, api: respx.MockRouter, change: dict[str, Any],
                                              check: str) -> None:
    for k, v in change.items():
        setattr(world, k, v)
    r = run(world)
    assert r.outcome is Outcome.REFUSED and r.outcome.exit_code == 2 and world.puts == []
    assert [p.name for p in r.prechecks if not p.ok] == [check] and check in r.message


def test_ttl_over_objective_warns_but_proceeds(world: World, api: respx.MockRouter) -> None:
    world.ttl = 3600
    r = run(world)
    assert world.puts and r.warnings and "3600s" in r.warnings[0]
    assert any(p.name == "ttl within DNS objective" and not p.ok and not p.blocking for p in r.prechecks)
    # DNS switched at once, but clients may keep the old answer for an hour: the compute objective is missed
    assert r.clients_switched_by_seconds > 300 and r.met is False and r.outcome is Outcome.OBJECTIVE_MISSED


def test_lagging_server_past_timeout_is_verification_failed(world: World, api: respx.MockRouter) -> None:
    world.lag = {"ns2.test:53": 10_000.0}
    r = run(world, timeout_seconds=30)
    assert r.outcome is Outcome.VERIFICATION_FAILED and r.outcome.exit_code == 2
    assert "ns2.test:53" in r.message and world.puts
    assert r.nameservers[0].changed_at is not None and r.nameservers[1].changed_at is None
    assert world.clock.monotonic() >= 30  # waited on the fake clock, not for real


def test_unreachable_server_is_waited_for_then_counts(world: World, api: respx.MockRouter) -> None:
    world.down = {"ns1.test:53"}
    r = run(world, timeout_seconds=5)
    assert r.outcome is Outcome.VERIFICATION_FAILED and "did not answer" in r.message


def test_cancel_during_wait_is_interrupted(world: World, api: respx.MockRouter) -> None:
    world.lag = {"ns2.test:53": 10_000.0}
    cancel = Cancel()
    sink = RecordingSink()

    def cancelling(event: Any) -> None:
        sink(event)
        if event.phase == "verify":
            cancel.cancel()

    r = failover_app(platform(world), AppFailoverOptions(region="ams3"), confirm=lambda q: True,
                     events=cancelling, cancel=cancel, lookup=world.lookup)
    assert r.outcome is Outcome.INTERRUPTED and "updated" in r.message


@pytest.mark.parametrize(("opts", "needle"), [
    ({"region": "sfo3"}, "no standby of learnhub-api in region sfo3"),
    ({"app": "nope"}, "no failover record for app nope"),
    ({"record": "www.learnhub.example"}, "not one of the config's dns.failover_records"),
])
def test_bad_input_is_usage_error_and_writes_nothing(world: World, api: respx.MockRouter, opts: dict[str, Any],
                                                     needle: str) -> None:
    with pytest.raises(UsageError) as err:
        run(world, **opts)
    assert needle in err.value.message and world.puts == []
    if opts.get("region") == "sfo3":
        assert "ams3" in (err.value.hint or "")  # names the regions that have a standby


def test_slug_selects_the_same_standby(world: World, api: respx.MockRouter) -> None:
    r = run(world, region="ams", dry_run=True)
    assert r.standby == "learnhub-api-ams3" and r.outcome is Outcome.DRY_RUN


def test_fail_back_to_the_app_itself(world: World, api: respx.MockRouter) -> None:
    world.data = STANDBY_HOST + "."
    r = run(world, region="nyc3")
    assert r.outcome is Outcome.OK and r.standby == "learnhub-api"
    assert world.puts and world.puts[0]["data"] == PRIMARY_HOST + "."


def test_several_failover_records_without_choice_is_exit_4(world: World, api: respx.MockRouter) -> None:
    p = platform(world)
    p.config.dns.failover_records.append(DnsRecordConfig("learnhub.example", "www", "CNAME", "learnhub-web"))
    with pytest.raises(UsageError) as err:
        failover_app(p, AppFailoverOptions(region="ams3"), confirm=lambda q: True, lookup=world.lookup)
    assert "2 failover records" in err.value.message and "www.learnhub.example" in (err.value.hint or "")
    assert world.puts == []
