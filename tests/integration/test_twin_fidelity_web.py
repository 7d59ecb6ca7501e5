"""The sandbox's web side held to real clients: the CDN edge with byte ranges and kept-alive connections (curl,
httpx), app servers answering the health paths their spec, load balancer and Uptime checks name (httpx), Uptime
probing the live URL and keeping its history, deployment step times, and a zone file dnspython reads.

One shared sandbox (``sandbox``: faults cleared before and after each test); every API request a test makes is
checked against DigitalOcean's OpenAPI spec (``spec_checked``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import dns.rdatatype
import dns.zone
import httpx
import pytest

from doops.times import parse_rfc3339
from tests.helpers import run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]


def _api(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.state["api_url"], headers={"Authorization": f"Bearer {sb.token}"}, timeout=10)


def _edge(sb: Sandbox) -> str:
    urls = list(sb.state["cdn"].values())
    assert len(urls) == 1, sb.state["cdn"]
    return str(urls[0])


def _s3(sb: Sandbox) -> Any:
    sp = sb.state["spaces"]
    return boto3.client("s3", endpoint_url=sp["endpoint_url"], region_name="nyc3",
                        aws_access_key_id=sp["access_key"], aws_secret_access_key=sp["secret_key"])


def _ts(value: str) -> float:
    return parse_rfc3339(value).timestamp()


@pytest.fixture
def video(sandbox: Sandbox) -> Iterator[tuple[str, bytes]]:
    """A fresh object in the CDN's origin bucket (so its first request is a miss), removed afterwards."""
    key = f"videos/fidelity/{uuid.uuid4().hex}.mp4"
    body = bytes(range(256)) * 16  # 4096 bytes
    s3 = _s3(sandbox)
    s3.put_object(Bucket="learnhub-media", Key=key, Body=body, ContentType="video/mp4",
                  CacheControl="public, max-age=86400")
    yield key, body
    s3.delete_object(Bucket="learnhub-media", Key=key)


# -- CDN ------------------------------------------------------------------------------------------------------


def test_cdn_serves_byte_ranges_on_a_miss_and_from_cache(sandbox: Sandbox, video: tuple[str, bytes]) -> None:
    key, body = video
    s3 = _s3(sandbox)
    with httpx.Client(base_url=_edge(sandbox), timeout=10) as edge:
        miss = edge.get(f"/{key}", headers={"Range": "bytes=1000-1999"})
        origin = s3.get_object(Bucket="learnhub-media", Key=key, Range="bytes=1000-1999")
        assert (miss.status_code, miss.headers["x-cache"]) == (206, "MISS")
        assert miss.content == body[1000:2000] == origin["Body"].read()
        assert miss.headers["content-range"] == origin["ContentRange"] == "bytes 1000-1999/4096"
        assert miss.headers["content-length"] == "1000" and miss.headers["accept-ranges"] == "bytes"

        full = edge.get(f"/{key}")
        assert (full.status_code, full.headers["x-cache"], full.content) == (200, "MISS", body)
        for value, (start, end) in {"bytes=0-99": (0, 99), "bytes=-10": (4086, 4095),
                                    "bytes=4000-": (4000, 4095), "bytes=4090-9999": (4090, 4095)}.items():
            hit = edge.get(f"/{key}", headers={"Range": value})
            assert (hit.status_code, hit.headers["x-cache"]) == (206, "HIT"), value
            assert hit.content == body[start:end + 1] and hit.headers["content-range"] == f"bytes {start}-{end}/4096"
        stale = edge.get(f"/{key}", headers={"Range": "bytes=0-9", "If-Range": '"not-this-version"'})
        assert stale.status_code == 200 and stale.content == body
        past = edge.get(f"/{key}", headers={"Range": "bytes=5000-"})
        assert (past.status_code, past.headers["content-range"], past.headers["x-cache"]) == \
            (416, "bytes */4096", "HIT")
        head = edge.head(f"/{key}", headers={"Range": "bytes=0-9"})  # Range is for GET only
        assert head.status_code == 200 and head.headers["content-length"] == "4096"
        _purge(sandbox, key)
        # the purge propagates (limits.cdn_purge_propagation): the cached copy answers until then, then the
        # origin says so on a miss (a 416 is not cached, so polling with it changes nothing)
        def past_end() -> httpx.Response | None:
            r = edge.get(f"/{key}", headers={"Range": "bytes=5000-"})
            return r if r.headers["x-cache"] == "MISS" else None

        past = wait_for(past_end, 10, "the purge to propagate")
        assert (past.status_code, past.headers["content-range"], past.headers["x-cache"]) == \
            (416, "bytes */4096", "MISS")


def _purge(sb: Sandbox, key: str) -> None:
    """Evict one path through the API's purge route (the real caching proxy behind it)."""
    with _api(sb) as api:
        ep = api.get("/v2/cdn/endpoints").json()["endpoints"][0]
        assert api.request("DELETE", f"/v2/cdn/endpoints/{ep['id']}/cache", json={"files": [key]}).status_code == 204


def test_cdn_keeps_one_connection_for_curl(sandbox: Sandbox, video: tuple[str, bytes]) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed to hold the CDN to a real HTTP client (apt-get install curl)"
    url = f"{_edge(sandbox)}/{video[0]}"
    out = subprocess.run([curl, "--http1.1", "-sS", "-H", "Range: bytes=0-15", "-o", "/dev/null", "-o", "/dev/null",
                          "-o", "/dev/null", "-w", "%{num_connects} %{http_code} %{http_version} %{size_download}\n",
                          url, url, url], capture_output=True, text=True, timeout=30, check=True)
    # three transfers, one TCP connection: the 2nd and 3rd reuse it (num_connects 0)
    assert out.stdout.splitlines() == ["1 206 1.1 16", "0 206 1.1 16", "0 206 1.1 16"], out


def test_cdn_keeps_one_connection_for_httpx(sandbox: Sandbox, video: tuple[str, bytes]) -> None:
    key, _ = video
    with httpx.Client(base_url=_edge(sandbox), timeout=10) as edge:
        answers = [edge.get(f"/{key}"), edge.head(f"/{key}"), edge.get("/videos/no-such-video.mp4"),
                   edge.get(f"/{key}", headers={"Range": "bytes=-1"})]
        etag = answers[0].headers["etag"]
        answers.append(edge.get(f"/{key}", headers={"If-None-Match": etag}))
        # the local address of the socket each answer came on: one socket for all
        ports = {r.extensions["network_stream"].get_extra_info("client_addr") for r in answers}
    assert [r.status_code for r in answers] == [200, 200, 404, 206, 304]
    assert {r.http_version for r in answers} == {"HTTP/1.1"}
    assert len(ports) == 1, f"the edge must keep the connection: {ports}"


# -- apps: the health paths -----------------------------------------------------------------------------------


def _apps(sb: Sandbox) -> dict[str, dict[str, Any]]:
    with _api(sb) as api:
        return {a["spec"]["name"]: a for a in api.get("/v2/apps").json()["apps"]}


def test_app_servers_answer_the_health_paths_spec_load_balancer_and_checks_name(sandbox: Sandbox) -> None:
    apps = _apps(sandbox)
    with httpx.Client(timeout=5) as h:
        for name, app in apps.items():
            live = app["live_url"].rstrip("/")
            assert live == sandbox.state["apps"][name]
            assert h.get(live + "/healthz").status_code == 200
            for svc in app["spec"].get("services", []):
                path = svc["health_check"]["http_path"]
                prefix = next(r["match"]["path"]["prefix"] for r in app["spec"]["ingress"]["rules"]
                              if r["component"]["name"] == svc["name"])
                assert h.get(live + path).status_code == 200, (name, path)  # App Platform's probe of the instance
                assert h.get(live + prefix.rstrip("/") + path).json() == {"status": "ok"}  # through the ingress
        with _api(sandbox) as api:
            lb = api.get("/v2/load_balancers").json()["load_balancers"][0]
            checks = api.get("/v2/uptime/checks").json()["checks"]
            assert h.get(apps["learnhub-api"]["live_url"].rstrip("/") + lb["health_check"]["path"]).status_code == 200
            for check in checks:
                assert h.get(check["target"]).status_code == 200, check
                regions = api.get(f"/v2/uptime/checks/{check['id']}/state").json()["state"]["regions"]
                assert {r["status"] for r in regions.values()} == {"UP"}, check


# -- Uptime: probed, with a history -----------------------------------------------------------------------------


def _check(api: httpx.Client, live_url: str) -> dict[str, Any]:
    return next(c for c in api.get("/v2/uptime/checks").json()["checks"] if c["target"].startswith(live_url))


def _state(api: httpx.Client, check_id: str) -> dict[str, Any]:
    return dict(api.get(f"/v2/uptime/checks/{check_id}/state").json()["state"])


def _one(values: dict[str, dict[str, Any]], key: str) -> Any:
    seen = {v[key] for v in values.values()}
    assert len(seen) == 1, f"regions disagree on {key}: {seen}"
    return seen.pop()


def test_uptime_follows_the_app_unhealthy_fault_and_keeps_its_history(sandbox: Sandbox) -> None:
    live = sandbox.state["apps"]["learnhub-api"]
    with _api(sandbox) as api:
        check = _check(api, live)
        t_fault = time.time()
        res = run_doops(["sandbox", "fault", "app-unhealthy", "learnhub-api", "--component", "api",
                         "--dir", str(sandbox.dir)])
        assert res.exit_code == 0, res.stderr
        assert httpx.get(check["target"], timeout=5).status_code == 503  # what any client of the app sees
        down = _state(api, check["id"])["regions"]
        assert _one(down, "status") == "DOWN"
        changed = _ts(_one(down, "status_changed_at"))
        assert int(t_fault) - 1 <= changed <= time.time() + 1
        wait_for(lambda: time.time() >= changed + 2.5, 10, "the clock to move on")
        assert _one(_state(api, check["id"])["regions"], "status_changed_at") == \
            _one(down, "status_changed_at"), "the outage start must not move"
        status = run_doops(["status", "monitoring", "-o", "json"], env=sandbox.env, secrets=(sandbox.token,))
        uptime = next(c for c in status.json["checks"] if c["resource"] == "uptime:learnhub-api")
        assert uptime["status"] == "crit" and "DOWN" in uptime["summary"]

        sandbox.clear()
        up = _state(api, check["id"])
        assert _one(up["regions"], "status") == "UP"
        ended = _one(up["regions"], "status_changed_at")
        assert up["previous_outage"]["started_at"] == _one(down, "status_changed_at")
        assert up["previous_outage"]["ended_at"] == ended
        assert up["previous_outage"]["duration_seconds"] == round(_ts(ended) - changed)
        assert _one(up["regions"], "thirty_day_uptime_percentage") < 100.0


def _probes(live: str, path: str, code: int) -> float:
    text = httpx.get(live + "/metrics", timeout=5).text
    needle = f'http_requests_total{{app="learnhub-api",method="GET",path="{path}",code="{code}"}} '
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(needle)), 0.0)


def test_uptime_records_an_outage_nobody_asked_about(sandbox: Sandbox) -> None:
    live = sandbox.state["apps"]["learnhub-api"]
    with _api(sandbox) as api:
        check = _check(api, live)
        path = check["target"][len(live):]
        asked = len(sandbox.requests())
        failed_probes = _probes(live, path, 503)  # the counter is cumulative: earlier tests' outages are in it
        t_fault = time.time()
        sandbox.fault(kind="app-unhealthy", app="learnhub-api")
        # Uptime's own probes reach the app (its request counter says so) while nobody asks the API
        wait_for(lambda: _probes(live, path, 503) > failed_probes, 15, "Uptime's probe to see the 503")
        healthy_probes = _probes(live, path, 200)
        sandbox.clear()
        t_clear = time.time()
        wait_for(lambda: _probes(live, path, 200) > healthy_probes, 15, "Uptime's probe to see the recovery")
        assert not [r for r in sandbox.requests(since=asked) if "/uptime/" in r["path"]]
        wait_for(lambda: time.time() >= t_clear + 2, 10, "the clock to move on")
        state = _state(api, check["id"])
    outage = state["previous_outage"]
    assert int(t_fault) - 1 <= _ts(outage["started_at"]) <= t_clear + 1
    assert _ts(outage["started_at"]) <= _ts(outage["ended_at"]) <= t_clear + 2
    assert _one(state["regions"], "status") == "UP"
    assert _one(state["regions"], "status_changed_at") == outage["ended_at"]


# -- apps: deployment times -------------------------------------------------------------------------------------


def test_apps_say_when_their_deployment_went_active_and_when_each_step_ran(sandbox: Sandbox) -> None:
    for name, app in _apps(sandbox).items():
        active = app["active_deployment"]
        went_active = app["last_deployment_active_at"]
        assert not went_active.startswith("0001"), name
        steps = active["progress"]["steps"]
        assert steps and all(s["status"] == "SUCCESS" and s["started_at"] <= s["ended_at"] for s in steps), steps
        assert max(s["ended_at"] for s in steps) == went_active == active["phase_last_updated_at"]
        assert active["created_at"] <= min(s["started_at"] for s in steps)
        assert _ts(went_active) >= _ts(app["last_deployment_created_at"])


# -- DNS --------------------------------------------------------------------------------------------------------


def test_zone_file_is_a_real_zone_with_every_record(sandbox: Sandbox) -> None:
    with _api(sandbox) as api:
        domain = api.get("/v2/domains/learnhub.example").json()["domain"]
        records = api.get("/v2/domains/learnhub.example/records").json()["domain_records"]
        apps = {a["spec"]["name"]: a for a in api.get("/v2/apps").json()["apps"]}
    zone = dns.zone.from_text(domain["zone_file"], origin="learnhub.example.", relativize=False)
    soa = zone.find_rdataset("learnhub.example.", dns.rdatatype.SOA)[0]
    assert str(soa.mname) == "ns1.digitalocean.com." and str(soa.rname) == "hostmaster.learnhub.example."
    assert soa.serial > 0 and (soa.refresh, soa.retry, soa.expire, soa.minimum) == (10800, 3600, 604800,
                                                                                     domain["ttl"])
    for r in records:
        if r["type"] == "SOA":
            continue
        owner = "learnhub.example." if r["name"] == "@" else f"{r['name']}.learnhub.example."
        rdataset = zone.find_rdataset(owner, r["type"])
        assert rdataset.ttl == r["ttl"], r
        texts = {rd.to_text() for rd in rdataset}
        if r["type"] in ("NS", "CNAME"):
            assert r["data"].rstrip(".") + "." in texts, (r, texts)
        elif r["type"] == "TXT":
            assert f'"{r["data"]}"' in texts, (r, texts)
        else:
            assert r["data"] in texts, (r, texts)
    api_cname = zone.find_rdataset("api.learnhub.example.", "CNAME")[0]
    assert str(api_cname.target) == apps["learnhub-api"]["default_ingress"].removeprefix("https://") + "."
