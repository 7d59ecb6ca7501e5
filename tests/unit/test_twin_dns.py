"""The sandbox's authoritative DNS server over the wire (dnspython as the client), and the records write API it
answers from (through the twin's HTTP API)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from doops.sandbox.api import TwinServer, World, load_scenario
from doops.sandbox.dns import APP_TTL, DnsServer
from tests import spec as contract

ZONE = "learnhub.example"
T0 = 1_790_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world() -> World:
    return World.from_scenario(load_scenario(), clock=Clock())


@pytest.fixture
def server(world: World) -> Iterator[DnsServer]:
    with DnsServer(world) as srv:
        yield srv


@pytest.fixture
def api(world: World) -> Iterator[httpx.Client]:
    token = load_scenario().tokens["sandbox"]
    twin = TwinServer(world).start()
    try:
        with httpx.Client(base_url=twin.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
            yield client
    finally:
        twin.stop()


def ask(server: DnsServer, name: str, rtype: str, tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rtype)
    send = dns.query.tcp if tcp else dns.query.udp
    assert server.port is not None
    return send(q, "127.0.0.1", port=server.port, timeout=3)


def answer(resp: dns.message.Message, rtype: str) -> list[tuple[str, int, str]]:
    """(owner, ttl, rdata) of every answer RR of ``rtype``."""
    out = []
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rtype):
            out += [(str(rrset.name), rrset.ttl, r.to_text()) for r in rrset]
    return out


def record(world: World, name: str, rtype: str) -> dict[str, Any]:
    return next(r for r in world.domains[ZONE]["records"] if r["name"] == name and r["type"] == rtype)


def app_host(world: World, name: str) -> str:
    app = world.find_app_by_name(name)
    assert app is not None
    return app.hostname


# -- the server --------------------------------------------------------------------------------------------------


def test_binds_loopback_udp_and_tcp_on_one_free_port(server: DnsServer) -> None:
    assert server.address == f"127.0.0.1:{server.port}" and server.port
    for tcp in (False, True):
        assert ask(server, ZONE, "SOA", tcp=tcp).rcode() == dns.rcode.NOERROR
    assert server.answers()


def test_apex_soa_and_ns_authoritative(server: DnsServer, world: World) -> None:
    resp = ask(server, ZONE, "SOA")
    assert resp.flags & dns.flags.AA and resp.rcode() == dns.rcode.NOERROR
    (rrset,) = resp.answer
    soa = rrset[0]
    d = world.domains[ZONE]
    assert (str(soa.mname), str(soa.rname)) == ("ns1.digitalocean.com.", f"hostmaster.{ZONE}.")
    assert (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum) == (d["serial"], 10800, 3600, 604800,
                                                                              d["ttl"])
    assert rrset.ttl == record(world, "@", "SOA")["ttl"]
    ns = ask(server, ZONE, "NS", tcp=True)
    assert ns.flags & dns.flags.AA
    assert sorted(a[2] for a in answer(ns, "NS")) == [f"ns{i}.digitalocean.com." for i in (1, 2, 3)]


def test_a_record_with_its_real_ttl(server: DnsServer) -> None:
    resp = ask(server, ZONE, "A")
    assert answer(resp, "A") == [(f"{ZONE}.", 300, "203.0.113.10")]


def test_cname_to_the_app_default_ingress_host_ttl_60(server: DnsServer, world: World) -> None:
    host = app_host(world, "learnhub-api")
    resp = ask(server, f"api.{ZONE}", "A")
    assert resp.flags & dns.flags.AA and resp.rcode() == dns.rcode.NOERROR
    assert answer(resp, "CNAME") == [(f"api.{ZONE}.", 60, host + ".")]
    assert answer(resp, "A") == []  # the target is outside the zone: not chased
    # the app zone (sandbox convenience) answers the target: the app's live server listens on 127.0.0.1
    target = ask(server, host, "A")
    assert target.flags & dns.flags.AA and answer(target, "A") == [(host + ".", APP_TTL, "127.0.0.1")]
    standby = app_host(world, "learnhub-api-ams3")
    assert answer(ask(server, standby, "A", tcp=True), "A") == [(standby + ".", APP_TTL, "127.0.0.1")]


def test_cname_in_zone_is_followed_to_its_target(world: World) -> None:
    world = World.from_scenario(load_scenario(overrides={"domains": [{"name": ZONE, "ttl": 1800, "records": [
        {"type": "A", "name": "www", "data": "203.0.113.7", "ttl": 120},
        {"type": "CNAME", "name": "docs", "data": "www", "ttl": 90},
        {"type": "CNAME", "name": "help", "data": "docs.learnhub.example.", "ttl": 45},
        {"type": "CNAME", "name": "gone", "data": "nothing.learnhub.example.", "ttl": 45}]}]}))
    with DnsServer(world) as srv:
        resp = ask(srv, f"help.{ZONE}", "A")
        assert answer(resp, "CNAME") == [(f"help.{ZONE}.", 45, f"docs.{ZONE}."),
                                         (f"docs.{ZONE}.", 90, f"www.{ZONE}.")]
        assert answer(resp, "A") == [(f"www.{ZONE}.", 120, "203.0.113.7")]
        dangling = ask(srv, f"gone.{ZONE}", "A")  # the CNAME, then NXDOMAIN for its in-zone target
        assert dangling.rcode() == dns.rcode.NXDOMAIN and answer(dangling, "CNAME")


def test_unknown_name_in_zone_is_nxdomain_with_soa(server: DnsServer) -> None:
    resp = ask(server, f"nope.{ZONE}", "A")
    assert resp.rcode() == dns.rcode.NXDOMAIN and resp.flags & dns.flags.AA
    assert [rrset.rdtype for rrset in resp.authority] == [dns.rdatatype.SOA] and not resp.answer
    unknown_app = ask(server, "no-such-app-00000.ondigitalocean.app", "A")
    assert unknown_app.rcode() == dns.rcode.NXDOMAIN


def test_known_name_without_that_type_is_nodata(server: DnsServer) -> None:
    resp = ask(server, ZONE, "AAAA")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
    assert [rrset.rdtype for rrset in resp.authority] == [dns.rdatatype.SOA]


def test_names_outside_every_zone_are_refused(server: DnsServer) -> None:
    for name in ("example.com", "learnhub.example.org", "digitalocean.com"):
        resp = ask(server, name, "A")
        assert resp.rcode() == dns.rcode.REFUSED and not resp.flags & dns.flags.AA and not resp.answer


def test_a_record_changed_in_the_world_is_answered_at_once(server: DnsServer, world: World) -> None:
    standby = app_host(world, "learnhub-api-ams3")
    with world.lock:
        world.dns.update(world.domains[ZONE], record(world, "api", "CNAME"),
                         {"type": "CNAME", "data": standby + ".", "ttl": 45})
    for tcp in (False, True):
        assert answer(ask(server, f"api.{ZONE}", "CNAME", tcp=tcp), "CNAME") == [(f"api.{ZONE}.", 45, standby + ".")]


def test_serial_moves_on_with_each_change(server: DnsServer, world: World) -> None:
    before = ask(server, ZONE, "SOA").answer[0][0].serial
    with world.lock:
        world.dns.update(world.domains[ZONE], record(world, "@", "A"), {"type": "A", "ttl": 600})
    assert ask(server, ZONE, "SOA").answer[0][0].serial > before
    assert answer(ask(server, ZONE, "A"), "A") == [(f"{ZONE}.", 600, "203.0.113.10")]


def test_stop_closes_both_sockets(world: World) -> None:
    srv = DnsServer(world).start()
    port = srv.port
    assert port is not None
    srv.stop()
    assert not srv.running
    with pytest.raises((OSError, dns.exception.Timeout)):
        dns.query.tcp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1", port=port, timeout=1)


# -- the records API the server answers from ----------------------------------------------------------------------


def _schema(method: str, template: str, status: str) -> Any:
    op = contract.operation(contract.load_spec(), method, template)
    return op["responses"][status]["content"]["application/json"]["schema"]


RECORD = "/v2/domains/{domain_name}/records/{domain_record_id}"


def test_put_then_get_record_and_dns_sees_it(api: httpx.Client, server: DnsServer, world: World) -> None:
    rec = record(world, "api", "CNAME")
    standby = app_host(world, "learnhub-api-ams3")
    resp = api.put(f"/v2/domains/{ZONE}/records/{rec['id']}", json={"type": "CNAME", "data": standby + "."})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    contract.validate_read(_schema("PUT", RECORD, "200"), body)
    assert body["domain_record"] == {**rec, "data": standby + ".", "ttl": 60}  # ttl kept: not in the body
    got = api.get(f"/v2/domains/{ZONE}/records/{rec['id']}").json()
    assert got == body
    assert answer(ask(server, f"api.{ZONE}", "A"), "CNAME") == [(f"api.{ZONE}.", 60, standby + ".")]


def test_patch_changes_only_what_it_names(api: httpx.Client, world: World) -> None:
    rec = dict(record(world, "api", "CNAME"))
    resp = api.patch(f"/v2/domains/{ZONE}/records/{rec['id']}", json={"type": "CNAME", "ttl": 30})
    assert resp.status_code == 200 and resp.json()["domain_record"] == {**rec, "ttl": 30}


def test_create_and_delete_record(api: httpx.Client, server: DnsServer, world: World) -> None:
    resp = api.post(f"/v2/domains/{ZONE}/records", json={"type": "A", "name": "status", "data": "203.0.113.20"})
    assert resp.status_code == 201, resp.text
    created = resp.json()["domain_record"]
    contract.validate_read(_schema("POST", "/v2/domains/{domain_name}/records", "201"), resp.json())
    ids = [r["id"] for r in world.domains[ZONE]["records"]]
    assert created["id"] == max(ids) and len(set(ids)) == len(ids) and created["ttl"] == 1800
    assert answer(ask(server, f"status.{ZONE}", "A"), "A") == [(f"status.{ZONE}.", 1800, "203.0.113.20")]
    assert api.delete(f"/v2/domains/{ZONE}/records/{created['id']}").status_code == 204
    assert ask(server, f"status.{ZONE}", "A").rcode() == dns.rcode.NXDOMAIN
    assert api.get(f"/v2/domains/{ZONE}/records/{created['id']}").status_code == 404


def test_list_filters_by_fqdn_name_and_type(api: httpx.Client) -> None:
    recs = api.get(f"/v2/domains/{ZONE}/records", params={"name": f"api.{ZONE}"}).json()["domain_records"]
    assert [(r["name"], r["type"]) for r in recs] == [("api", "CNAME")]
    apex = api.get(f"/v2/domains/{ZONE}/records", params={"name": ZONE, "type": "NS"}).json()["domain_records"]
    assert len(apex) == 3 and {r["name"] for r in apex} == {"@"}
    assert api.get(f"/v2/domains/{ZONE}/records", params={"name": "api"}).json()["domain_records"] == []
    bad = api.get(f"/v2/domains/{ZONE}/records", params={"type": "SPF"})
    assert bad.status_code == 400 and bad.json()["id"] == "bad_request"


@pytest.mark.parametrize(("method", "body", "words"), [
    ("PUT", {"data": "x."}, "type is required"),
    ("PUT", {"type": "CNAME", "data": "learnhub-api-ams3.ondigitalocean.app"}, "Data needs to end with a dot (.)"),
    ("PUT", {"type": "CNAME", "ttl": 10}, "ttl must be at least 30"),
    ("PUT", {"type": "CNAME", "ttl": "60"}, "ttl must be an integer"),
    ("PUT", {"type": "CNAME", "data": "bad host.example."}, "not a valid host name"),
    ("PATCH", {"type": "A", "data": "learnhub.example."}, "must be an IPv4 address"),
    ("PATCH", {"type": "WHAT"}, "not supported"),
    ("POST", {"type": "A", "name": "x"}, "data is required"),
    ("POST", {"type": "A", "name": "api", "data": "203.0.113.9"}, "cannot share the name"),
    ("POST", {"type": "SOA", "name": "@", "data": "1800"}, "SOA record cannot be created"),
    ("POST", {"type": "MX", "name": "@", "data": "mx.learnhub.example."}, "priority is required"),
    ("POST", {"type": "A", "name": "a.", "data": "203.0.113.9"}, "must be @ or a host name"),
])
def test_invalid_records_are_422_and_change_nothing(api: httpx.Client, world: World, method: str,
                                                    body: dict[str, Any], words: str) -> None:
    before = [dict(r) for r in world.domains[ZONE]["records"]]
    serial = world.domains[ZONE]["serial"]
    rec = record(world, "api", "CNAME")
    path = f"/v2/domains/{ZONE}/records" + ("" if method == "POST" else f"/{rec['id']}")
    resp = api.request(method, path, json=body)
    assert resp.status_code == 422, resp.text
    err = resp.json()
    assert err["id"] == "unprocessable_entity" and words in err["message"]
    assert world.domains[ZONE]["records"] == before and world.domains[ZONE]["serial"] == serial


def test_unknown_record_or_domain_is_404(api: httpx.Client, world: World) -> None:
    rec = record(world, "api", "CNAME")
    for path in (f"/v2/domains/{ZONE}/records/1", f"/v2/domains/{ZONE}/records/abc",
                 f"/v2/domains/nope.example/records/{rec['id']}"):
        resp = api.put(path, json={"type": "CNAME", "ttl": 60})
        assert resp.status_code == 404 and resp.json()["id"] == "not_found"


def test_soa_only_ttl_changes_and_never_deleted(api: httpx.Client, world: World) -> None:
    soa = record(world, "@", "SOA")
    path = f"/v2/domains/{ZONE}/records/{soa['id']}"
    assert api.put(path, json={"type": "SOA", "ttl": 900}).json()["domain_record"]["ttl"] == 900
    assert api.put(path, json={"type": "SOA", "data": "1"}).status_code == 422
    assert api.delete(path).status_code == 422
