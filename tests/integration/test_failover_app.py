"""`doops failover app` and `doops dns check` against the sandbox: the api record moved to the ams3 standby and
seen at the sandbox's authoritative DNS server (asked by the test itself too), a re-run that only verifies,
bad input that sends no write, and `dns check` judging a TTL of an hour and a dangling target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.query
import httpx
import pytest

from tests.helpers import Result, run_doops
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def api(sb: Sandbox, method: str, path: str, **kw: Any) -> Any:
    resp = httpx.request(method, sb.state["api_url"] + path, headers={"Authorization": f"Bearer {sb.token}"},
                         timeout=10, **kw)
    resp.raise_for_status()
    return resp.json()


def api_record(sb: Sandbox) -> dict[str, Any]:
    found = api(sb, "GET", "/v2/domains/learnhub.example/records",
                params={"name": "api.learnhub.example", "type": "CNAME"})["domain_records"]
    assert len(found) == 1
    return dict(found[0])


def ingress_host(sb: Sandbox, name: str) -> str:
    apps = api(sb, "GET", "/v2/apps")["apps"]
    return str(next(a for a in apps if a["spec"]["name"] == name)["default_ingress"]).split("://", 1)[1]


def ask(sb: Sandbox, qname: str, qtype: str = "CNAME") -> tuple[list[str], int, bool]:
    """The sandbox's name server asked directly, over UDP: (values, ttl, AA)."""
    host, port = _nameserver(sb)
    resp = dns.query.udp(dns.message.make_query(qname, qtype), host, port=port, timeout=2)
    values = [rd.to_text() for rrset in resp.answer for rd in rrset]
    ttl = resp.answer[0].ttl if resp.answer else 0
    return values, ttl, bool(resp.flags & dns.flags.AA)


def _nameserver(sb: Sandbox) -> tuple[str, int]:
    import yaml

    cfg = yaml.safe_load(Path(sb.env["DOOPS_CONFIG"]).read_text())
    host, port = str(cfg["dns"]["nameservers"][0]).split(":")
    return host, int(port)


def doops(sb: Sandbox, *args: str) -> Result:
    res = run_doops([*args, "-o", "json"], env=sb.env, secrets=(sb.token,))
    assert "Traceback" not in res.stderr
    return res


def writes_since(sb: Sandbox, index: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sb.requests()[index:] if r["method"] in WRITES]


def test_app_failover_to_ams3_verified_over_the_wire_then_reruns_verify_only(fresh_sandbox: Sandbox,
                                                                               isolated_env: Path) -> None:
    sb = fresh_sandbox
    primary, standby = ingress_host(sb, "learnhub-api"), ingress_host(sb, "learnhub-api-ams3")
    assert ask(sb, "api.learnhub.example") == ([primary + "."], 60, True)
    start = len(sb.requests())
    for bad in (["--region", "sfo3"], ["--region", "ams3", "--app", "nope"], ["--region", "ams3", "--timeout", "0"]):
        res = run_doops(["failover", "app", "--yes", *bad], env=sb.env, secrets=(sb.token,))
        assert res.exit_code == 4 and len(res.stderr.strip().splitlines()) == 1, (bad, res.stderr)
    assert "regions with one: ams3" in run_doops(["failover", "app", "--yes", "--region", "sfo3"], env=sb.env).stderr
    assert writes_since(sb, start) == []

    res = doops(sb, "failover", "app", "--region", "ams3", "--yes")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["outcome"] == "ok" and out["app"] == "learnhub-api" and out["standby"] == "learnhub-api-ams3"
    assert out["record"] == {"domain": "learnhub.example", "name": "api.learnhub.example", "type": "CNAME",
                             "ttl": 60, "old": primary + ".", "new": standby + ".", "id": out["record"]["id"]}
    assert [n["answer"] for n in out["nameservers"]] == [[standby + "."]]
    t = out["timings"]
    assert t["requested"] <= t["dns_switched"] <= t["standby_verified"]
    assert 0 <= out["dns_switched_seconds"] < out["dns_rto_target_seconds"] == 60
    assert out["clients_switched_by_seconds"] == pytest.approx(out["dns_switched_seconds"] + 60)
    assert out["compute_rto_target_seconds"] == 300 and out["met"] is True
    puts = writes_since(sb, start)
    assert puts == [f"PUT /v2/domains/learnhub.example/records/{out['record']['id']}"]
    # Over the wire, asked by the test: the authoritative answer changed, TTL 60, AA set; the target resolves.
    assert ask(sb, "api.learnhub.example") == ([standby + "."], 60, True)
    assert ask(sb, standby, "A")[0] == ["127.0.0.1"]
    assert api_record(sb)["data"] == standby + "."

    again = len(sb.requests())
    res = doops(sb, "failover", "app", "--region", "ams3", "--yes")
    assert res.exit_code == 0 and res.json["already_pointing"] is True and res.json["dns_switched_seconds"] is None
    assert writes_since(sb, again) == []

    check = doops(sb, "dns", "check")  # after a failover: the record points at the standby, a warning
    assert check.exit_code == 1 and check.json["overall"] == "warn"
    assert {c["check"]: c["status"] for c in check.json["checks"]}["exists"] == "warn"

    back = doops(sb, "failover", "app", "--region", "nyc3", "--yes")
    assert back.exit_code == 0 and back.json["standby"] == "learnhub-api"
    assert back.json["record"]["new"] == primary + "."
    assert ask(sb, "api.learnhub.example")[0] == [primary + "."]


def test_dns_check_ok_then_warn_on_long_ttl_then_crit_on_dangling_target(sandbox: Sandbox,
                                                                          isolated_env: Path) -> None:
    sb = sandbox
    rec = api_record(sb)
    path = f"/v2/domains/learnhub.example/records/{rec['id']}"
    res = doops(sb, "dns", "check")
    assert res.exit_code == 0, res.stdout
    assert {(c["check"], c["status"]) for c in res.json["checks"]} == {
        ("exists", "ok"), ("ttl", "ok"), ("authoritative", "ok"), ("target", "ok"), ("zone", "ok")}
    try:
        api(sb, "PUT", path, json={"type": "CNAME", "ttl": 3600})
        res = doops(sb, "dns", "check")
        assert res.exit_code == 1 and {c["check"]: c["status"] for c in res.json["checks"]}["ttl"] == "warn"
        assert ask(sb, "api.learnhub.example")[1] == 3600
        api(sb, "PUT", path, json={"type": "CNAME", "ttl": 60, "data": "gone-00000.ondigitalocean.app."})
        res = doops(sb, "dns", "check")
        assert res.exit_code == 2
        target = next(c for c in res.json["checks"] if c["check"] == "target")
        assert target["status"] == "crit" and "dangling" in target["summary"]
    finally:
        api(sb, "PUT", path, json={"type": "CNAME", "ttl": rec["ttl"], "data": rec["data"]})
    assert api_record(sb)["data"] == rec["data"]
