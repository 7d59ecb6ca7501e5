"""`doops dns check` checks on a fake name server and respx: ok, a TTL over the objective (warn), servers that
disagree (warn), a dangling target (crit), a record missing (crit), an insane zone (warn), nothing configured
(skipped), and the same checks as the `dns` component of `doops status`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from doops.clients.dns import Answer, Rec
from doops.config import Config, DnsConfig, DnsRecordConfig
from doops.ops.dns_check import dns_check
from doops.ops.status.model import Status
from doops.platform import Platform

API = "https://api.digitalocean.com"
HOST = "learnhub-api-aaaaa.ondigitalocean.app"
SPEC = {"services": [{"name": "api", "health_check": {"http_path": "/health"}}],
        "ingress": {"rules": [{"component": {"name": "api"}, "match": {"path": {"prefix": "/api"}}}]}}


@dataclass
class Zone:
    data: str = HOST + "."
    ttl: int = 60
    exists: bool = True
    stale: dict[str, str] = field(default_factory=dict)  # server -> other data it answers
    serials: dict[str, int] = field(default_factory=dict)
    ns: list[str] = field(default_factory=lambda: ["ns1.test.", "ns2.test."])

    def lookup(self, host: str, port: int, qname: str, qtype: str) -> Answer:
        server = f"{host}:{port}"
        if qname == "api.learnhub.example.":
            if not self.exists:
                return Answer(server, qname, qtype, rcode="NXDOMAIN", authoritative=True)
            return Answer(server, qname, qtype, authoritative=True,
                          answer=[Rec(qname, "CNAME", self.ttl, self.stale.get(server, self.data))])
        if qname == "learnhub.example." and qtype == "SOA":
            serial = self.serials.get(server, 7)
            return Answer(server, qname, qtype, authoritative=True, answer=[
                Rec(qname, "SOA", 1800, f"ns1.test. hostmaster.learnhub.example. {serial} 10800 3600 604800 1800")])
        if qname == "learnhub.example." and qtype == "NS":
            return Answer(server, qname, qtype, authoritative=True, answer=[Rec(qname, "NS", 1800, n) for n in self.ns])
        if qname == HOST + ".":
            return Answer(server, qname, qtype, authoritative=True, answer=[Rec(qname, "A", 60, "192.0.2.7")])
        return Answer(server, qname, qtype, rcode="NXDOMAIN", authoritative=True)


@pytest.fixture(autouse=True)
def _isolated(isolated_env: Path) -> Iterator[Path]:
    yield isolated_env


@pytest.fixture
def zone() -> Zone:
    return Zone()


@pytest.fixture
def api(zone: Zone) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{API}/v2/apps").respond(200, json={"apps": [
            {"id": "a-1", "spec": {"name": "learnhub-api", **SPEC}, "default_ingress": f"https://{HOST}",
             "live_url": f"https://{HOST}", "region": {"slug": "nyc", "data_centers": ["nyc3"]},
             "active_deployment": {"id": "d", "phase": "ACTIVE"}}], "links": {}})
        router.get(f"{API}/v2/domains/learnhub.example/records").mock(side_effect=lambda r: httpx.Response(
            200, json={"domain_records": [{"id": 42, "type": "CNAME", "name": "api", "data": zone.data,
                                           "ttl": zone.ttl}] if zone.exists else [], "links": {}}))
        router.get(f"https://{HOST}/api/health").respond(200)
        yield router


def platform(records: bool = True, nameservers: list[str] | None = None) -> Platform:
    p = Platform(access_token="t", api_url=API)
    p._config = Config(dns=DnsConfig(
        nameservers=nameservers or ["ns1.test", "ns2.test"],
        failover_records=[DnsRecordConfig("learnhub.example", "api", "CNAME", "learnhub-api")] if records else []))
    return p


def statuses(report: Any) -> dict[str, Status]:
    return {c.check: c.status for c in report.checks}


def test_healthy_record_and_zone_are_ok(zone: Zone, api: respx.MockRouter) -> None:
    report = dns_check(platform(), lookup=zone.lookup)
    assert statuses(report) == {"exists": Status.OK, "ttl": Status.OK, "authoritative": Status.OK,
                                "target": Status.OK, "zone": Status.OK}
    assert report.overall is Status.OK and report.overall.exit_code == 0


def test_ttl_over_objective_warns(zone: Zone, api: respx.MockRouter) -> None:
    zone.ttl = 3600
    report = dns_check(platform(), lookup=zone.lookup)
    assert statuses(report)["ttl"] is Status.WARN and report.overall.exit_code == 1
    assert "3600s" in next(c.summary for c in report.checks if c.check == "ttl")


def test_servers_disagreeing_warn_naming_the_server(zone: Zone, api: respx.MockRouter) -> None:
    zone.stale = {"ns2.test:53": "old-host.example."}
    report = dns_check(platform(), lookup=zone.lookup)
    auth = next(c for c in report.checks if c.check == "authoritative")
    assert auth.status is Status.WARN and "ns2.test:53 answers old-host.example." in auth.summary


def test_dangling_target_is_crit(zone: Zone, api: respx.MockRouter) -> None:
    zone.data = "gone-xxxxx.ondigitalocean.app."
    report = dns_check(platform(), lookup=zone.lookup)
    target = next(c for c in report.checks if c.check == "target")
    assert target.status is Status.CRIT and "dangling" in target.summary and report.overall.exit_code == 2


def test_missing_record_is_crit(zone: Zone, api: respx.MockRouter) -> None:
    zone.exists = False
    report = dns_check(platform(), lookup=zone.lookup)
    assert statuses(report)["exists"] is Status.CRIT and report.overall is Status.CRIT


def test_zone_insane_serials_differ_one_ns_configured_server_not_delegated(zone: Zone, api: respx.MockRouter) -> None:
    zone.serials = {"ns2.test:53": 6}
    zone.ns = ["ns1.test."]
    report = dns_check(platform(), lookup=zone.lookup)
    z = next(c for c in report.checks if c.check == "zone")
    assert z.status is Status.WARN
    assert "serials differ" in z.summary and "1 NS record" in z.summary and "ns2.test" in z.summary


def test_no_failover_records_is_skipped(api: respx.MockRouter) -> None:
    report = dns_check(platform(records=False), lookup=Zone().lookup)
    assert [c.status for c in report.checks] == [Status.SKIPPED] and report.overall.exit_code == 0
    assert not api.calls


def test_status_dns_component_runs_the_same_checks(zone: Zone, api: respx.MockRouter,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.clients import dns as dns_client
    from doops.ops.status import run_status

    monkeypatch.setattr(dns_client, "query", zone.lookup)
    zone.ttl = 3600
    report = run_status(platform(), ["dns"])
    assert {c.check: c.status for c in report.checks}["ttl"] is Status.WARN and report.overall is Status.WARN
    skipped = run_status(platform(records=False), ["dns"])
    assert [c.status for c in skipped.checks] == [Status.SKIPPED]
