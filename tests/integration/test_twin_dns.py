"""The sandbox's authoritative DNS server and standby app, on a running sandbox: a record changed through the
API is answered over the wire at once with its TTL; the standby app (learnhub-api-ams3) is live and ACTIVE."""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest
import yaml

from doops.config import parse_config
from doops.sandbox import control
from tests.helpers import run_doops
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

ZONE = "learnhub.example"


def _api(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sandbox.state["api_url"], timeout=10,
                        headers={"Authorization": f"Bearer {sandbox.token}"})


def _nameserver(sandbox: Sandbox) -> tuple[str, int]:
    (ns,) = sandbox.state["dns"]["nameservers"]
    host, port = ns.rsplit(":", 1)
    return host, int(port)


def _ask(sandbox: Sandbox, name: str, rtype: str, tcp: bool = False) -> dns.message.Message:
    host, port = _nameserver(sandbox)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(dns.message.make_query(name, rtype), host, port=port, timeout=3)


def _cname(resp: dns.message.Message) -> list[tuple[str, int]]:
    return [(r.to_text(), rrset.ttl) for rrset in resp.answer if rrset.rdtype == dns.rdatatype.CNAME
            for r in rrset]


def _apps(client: httpx.Client) -> dict[str, dict[str, Any]]:
    resp = client.get("/v2/apps", params={"per_page": 200})
    resp.raise_for_status()
    return {a["spec"]["name"]: a for a in resp.json()["apps"]}


def test_config_and_status_name_the_dns_server(sandbox: Sandbox) -> None:
    cfg = parse_config((sandbox.dir / control.CONFIG_FILE).read_text(encoding="utf-8"))
    assert cfg.dns.nameservers == sandbox.state["dns"]["nameservers"]
    assert cfg.dns.addresses() == [_nameserver(sandbox)]
    assert [(r.domain, r.name, r.type, r.app) for r in cfg.dns.failover_records] == [
        (ZONE, "api", "CNAME", "learnhub-api")]
    status = control.control(sandbox.state, "GET", "/status")
    dns_comp = next(c for c in status["components"] if c["name"] == "dns")
    assert dns_comp["healthy"] is True and dns_comp["port"] == _nameserver(sandbox)[1]
    raw = yaml.safe_load((sandbox.dir / control.CONFIG_FILE).read_text(encoding="utf-8"))
    assert raw["dns"]["nameservers"] == [f"127.0.0.1:{_nameserver(sandbox)[1]}"]
    res = run_doops(["-o", "json", "sandbox", "status", "--dir", str(sandbox.dir)])
    assert res.exit_code == 0, res.stderr
    listed = {c["name"]: c for c in res.json["components"]}
    assert listed["dns"]["healthy"] and listed["app:learnhub-api-ams3"]["healthy"]


def test_record_put_through_the_api_is_answered_over_dns_at_once(sandbox: Sandbox) -> None:
    with _api(sandbox) as client:
        apps = _apps(client)
        primary = apps["learnhub-api"]["default_ingress"].removeprefix("https://") + "."
        standby = apps["learnhub-api-ams3"]["default_ingress"].removeprefix("https://") + "."
        recs = client.get(f"/v2/domains/{ZONE}/records", params={"name": f"api.{ZONE}", "type": "CNAME"})
        (rec,) = recs.json()["domain_records"]
        assert (rec["data"], rec["ttl"]) == (primary, 60)
        assert _cname(_ask(sandbox, f"api.{ZONE}", "A")) == [(primary, 60)]
        try:
            put = client.put(f"/v2/domains/{ZONE}/records/{rec['id']}",
                             json={"type": "CNAME", "data": standby, "ttl": 45})
            assert put.status_code == 200, put.text
            for tcp in (False, True):  # no wait: the server reads the API's state at each query
                resp = _ask(sandbox, f"api.{ZONE}", "A", tcp=tcp)
                assert resp.flags & dns.flags.AA and resp.rcode() == dns.rcode.NOERROR
                assert _cname(resp) == [(standby, 45)]
            target = _ask(sandbox, standby, "A")
            assert [r.to_text() for rrset in target.answer for r in rrset] == ["127.0.0.1"]
        finally:
            restored = client.put(f"/v2/domains/{ZONE}/records/{rec['id']}",
                                  json={"type": "CNAME", "data": rec["data"], "ttl": rec["ttl"]})
            assert restored.status_code == 200, restored.text
        assert _cname(_ask(sandbox, f"api.{ZONE}", "A")) == [(primary, 60)]
        assert _ask(sandbox, "example.com", "A").rcode() == dns.rcode.REFUSED


def test_standby_app_is_active_and_its_live_url_answers(sandbox: Sandbox) -> None:
    with _api(sandbox) as client:
        apps = _apps(client)
        standby, primary = apps["learnhub-api-ams3"], apps["learnhub-api"]
        assert standby["region"]["slug"] == "ams" and "ams3" in standby["region"]["data_centers"]
        assert standby["active_deployment"]["phase"] == "ACTIVE"
        assert standby["live_url"] != primary["live_url"]
        health = client.get(f"/v2/apps/{standby['id']}/health").json()["app_health"]["components"]
        assert {c["name"]: c["state"] for c in health} == {"api": "HEALTHY", "ws": "HEALTHY"}
    services = standby["spec"]["services"]
    rule = {r["component"]["name"]: r["match"]["path"]["prefix"] for r in standby["spec"]["ingress"]["rules"]}
    for svc in services:
        url = standby["live_url"].rstrip("/") + rule[svc["name"]] + svc["health_check"]["http_path"]
        assert httpx.get(url, timeout=5).status_code == 200, url
    assert sandbox.state["apps"]["learnhub-api-ams3"] == standby["live_url"].rstrip("/")
