"""The twin's web side held to what real clients expect: CDN byte ranges and keep-alive, app health paths, Uptime
probed and recorded, deployment step times, a zone file dnspython parses."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dns.rdatatype
import dns.zone
import httpx
import pytest

from doops.sandbox.api import FakeAppBackend, World, load_scenario
from doops.sandbox.api.resources import Check, iso
from doops.sandbox.api.routes_misc import zone_file
from doops.sandbox.api.state_monitoring import THIRTY_DAYS, http_probe
from doops.sandbox.apps import AppFleet, AppServer, Component, components_from_spec
from doops.sandbox.cdn import ByteRange, CdnProxy, parse_range
from tests import spec as contract
from tests.helpers import wait_for

T0 = 1_790_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- CDN: byte ranges ------------------------------------------------------------------------------------------


def test_parse_range_takes_one_byte_range_and_ignores_the_rest() -> None:
    assert parse_range("bytes=0-9") == ByteRange(0, 9)
    assert parse_range("bytes=100-") == ByteRange(100, None)
    assert parse_range("bytes=-5") == ByteRange(None, 5)
    assert parse_range(" bytes = 3 - 4 ") == ByteRange(3, 4)
    for ignored in (None, "", "bytes=0-1,4-5", "items=0-9", "bytes=9-3", "bytes=-", "bytes=a-b", "0-9"):
        assert parse_range(ignored) is None, ignored


def test_byte_range_spans_follow_rfc_9110() -> None:
    assert ByteRange(0, 9).span(100) == (0, 9)
    assert ByteRange(90, 200).span(100) == (90, 99)  # last past the end: up to the end
    assert ByteRange(100, None).span(100) is None  # first at or past the end: 416
    assert ByteRange(None, 5).span(100) == (95, 99)
    assert ByteRange(None, 500).span(100) == (0, 99)  # suffix longer than the object: all of it
    assert ByteRange(None, 0).span(100) is None
    assert ByteRange(0, None).span(0) is None
    assert ByteRange(None, 5).header() == "bytes=-5" and ByteRange(7, None).header() == "bytes=7-"


class FakeOrigin:
    """An S3 client stand-in: GetObject with Range as S3 answers it, every call recorded."""

    class exceptions:  # boto3 names it so
        class NoSuchKey(Exception):
            pass

    class InvalidRange(Exception):
        def __init__(self, size: int) -> None:
            super().__init__("InvalidRange")
            self.response = {"Error": {"Code": "InvalidRange", "ActualObjectSize": str(size)}}

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str | None]] = []

    def get_object(self, Bucket: str, Key: str, Range: str | None = None) -> dict[str, Any]:
        self.calls.append((Key, Range))
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        body = self.objects[Key]
        meta = {"ContentType": "video/mp4", "CacheControl": "public, max-age=600", "ETag": '"v1"',
                "LastModified": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
        if Range is None:
            return {**meta, "Body": io.BytesIO(body), "ResponseMetadata": {"HTTPStatusCode": 200}}
        first, _, last = Range.removeprefix("bytes=").partition("-")
        n = len(body)
        if not first:
            start, end = max(0, n - int(last)), n - 1
        else:
            start, end = int(first), min(int(last), n - 1) if last else n - 1
        if start >= n:
            raise self.InvalidRange(n)
        return {**meta, "Body": io.BytesIO(body[start:end + 1]), "ContentRange": f"bytes {start}-{end}/{n}",
                "ResponseMetadata": {"HTTPStatusCode": 206}}


VIDEO = bytes(range(256)) * 8  # 2048 bytes


@pytest.fixture
def edge() -> Iterator[tuple[CdnProxy, FakeOrigin]]:
    proxy = CdnProxy("http://127.0.0.1:9", "learnhub-media", 3600)
    origin = FakeOrigin({"videos/a.mp4": VIDEO, "videos/b.mp4": VIDEO[:100]})
    proxy._client = origin
    proxy.start()
    yield proxy, origin
    proxy.stop()


def test_cdn_ranges_on_a_miss_ask_the_origin_for_those_bytes_only(edge: tuple[CdnProxy, FakeOrigin]) -> None:
    proxy, origin = edge
    with httpx.Client(base_url=proxy.url) as h:
        r = h.get("/videos/a.mp4", headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and r.content == VIDEO[100:200]
        assert r.headers["content-range"] == "bytes 100-199/2048" and r.headers["content-length"] == "100"
        assert r.headers["x-cache"] == "MISS" and r.headers["accept-ranges"] == "bytes"
        assert origin.calls == [("videos/a.mp4", "bytes=100-199")]
        assert proxy.cached_paths() == []  # a part is not the object
        r = h.get("/videos/b.mp4", headers={"Range": "bytes=500-"})
        assert r.status_code == 416 and r.headers["content-range"] == "bytes */100"
        r = h.get("/videos/b.mp4", headers={"Range": "bytes=0-"})  # the whole object: cached
        assert r.status_code == 206 and r.content == VIDEO[:100] and proxy.cached_paths() == ["videos/b.mp4"]


def test_cdn_ranges_on_a_hit_are_cut_from_the_cache(edge: tuple[CdnProxy, FakeOrigin]) -> None:
    proxy, origin = edge
    with httpx.Client(base_url=proxy.url) as h:
        full = h.get("/videos/a.mp4")
        assert full.status_code == 200 and full.content == VIDEO and full.headers["accept-ranges"] == "bytes"
        calls = len(origin.calls)
        cases = {"bytes=0-0": (VIDEO[:1], "bytes 0-0/2048"), "bytes=-16": (VIDEO[-16:], "bytes 2032-2047/2048"),
                 "bytes=2000-": (VIDEO[2000:], "bytes 2000-2047/2048"),
                 "bytes=2040-9999": (VIDEO[2040:], "bytes 2040-2047/2048")}
        for value, (body, content_range) in cases.items():
            r = h.get("/videos/a.mp4", headers={"Range": value})
            assert (r.status_code, r.headers["x-cache"], r.content, r.headers["content-range"]) == \
                (206, "HIT", body, content_range), value
            assert int(r.headers["content-length"]) == len(body)
        r = h.get("/videos/a.mp4", headers={"Range": "bytes=2048-"})
        assert r.status_code == 416 and r.headers["content-range"] == "bytes */2048" and r.headers["x-cache"] == "HIT"
        r = h.get("/videos/a.mp4", headers={"Range": "bytes=0-1,5-6"})  # several ranges: the whole object
        assert r.status_code == 200 and r.content == VIDEO
        assert len(origin.calls) == calls, "hits must not go to the origin"


def test_cdn_if_range_and_head(edge: tuple[CdnProxy, FakeOrigin]) -> None:
    proxy, _origin = edge
    with httpx.Client(base_url=proxy.url) as h:
        full = h.get("/videos/a.mp4")
        etag, modified = full.headers["etag"], full.headers["last-modified"]
        assert h.get("/videos/a.mp4", headers={"Range": "bytes=0-3", "If-Range": etag}).status_code == 206
        assert h.get("/videos/a.mp4", headers={"Range": "bytes=0-3", "If-Range": modified}).status_code == 206
        stale = h.get("/videos/a.mp4", headers={"Range": "bytes=0-3", "If-Range": '"v0"'})
        assert stale.status_code == 200 and stale.content == VIDEO
        weak = h.get("/videos/a.mp4", headers={"Range": "bytes=0-3", "If-Range": 'W/"v1"'})
        assert weak.status_code == 200
        head = h.head("/videos/a.mp4", headers={"Range": "bytes=0-3"})  # Range is for GET only
        assert head.status_code == 200 and head.headers["content-length"] == str(len(VIDEO)) and head.content == b""
        # a ranged miss with If-Range: fetched whole, then judged
        r = h.get("/videos/b.mp4", headers={"Range": "bytes=0-3", "If-Range": '"v1"'})
        assert r.status_code == 206 and r.content == VIDEO[:4]


def _client_port(r: httpx.Response) -> Any:
    return r.extensions["network_stream"].get_extra_info("client_addr")


def test_cdn_speaks_http_1_1_and_keeps_the_connection(edge: tuple[CdnProxy, FakeOrigin]) -> None:
    proxy, _origin = edge
    with httpx.Client(base_url=proxy.url) as h:
        answers = [h.get("/videos/a.mp4"), h.head("/videos/a.mp4"), h.get("/nope.mp4"),
                   h.get("/videos/a.mp4", headers={"If-None-Match": '"v1"'}),
                   h.get("/videos/a.mp4", headers={"Range": "bytes=1-2"})]
        assert [r.status_code for r in answers] == [200, 200, 404, 304, 206]
        assert {r.http_version for r in answers} == {"HTTP/1.1"}
        assert len({_client_port(r) for r in answers}) == 1, "every answer must come on the one connection"
        assert "content-length" not in answers[3].headers and answers[3].content == b""
        assert proxy.open_connections() == 1


# -- the keep-alive server helper ------------------------------------------------------------------------------


def _read_response(f: Any, head: bool = False) -> tuple[str, dict[str, str], bytes]:
    """One HTTP/1.1 answer read off a socket file by its Content-Length (none read after a HEAD)."""
    status = f.readline().decode().strip()
    headers: dict[str, str] = {}
    while (line := f.readline().decode().strip()):
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    body = b"" if head else f.read(int(headers.get("content-length", "0")))
    return status, headers, body


@pytest.fixture
def app() -> Iterator[AppServer]:
    server = AppServer("learnhub-api", DEFAULT_API).start()
    yield server
    server.stop()


DEFAULT_API = [Component("api", "/api"), Component("ws", "/ws")]


def test_keepalive_frames_every_answer_and_drains_request_bodies(app: AppServer) -> None:
    host, port = app.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        f = s.makefile("rb")
        # a GET with a body, a HEAD and a GET pipelined on one connection: three framed answers
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  b"HEAD /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        first = _read_response(f)
        assert first[0] == "HTTP/1.1 200 OK" and first[2] == b'{"status":"ok"}'
        status, headers, _ = _read_response(f, head=True)
        assert status == "HTTP/1.1 200 OK" and headers["content-length"] == str(len(b'{"status":"ok"}'))
        third = _read_response(f)
        assert third[0] == "HTTP/1.1 404 Not Found" and third[2] == b"not found\n"
        s.sendall(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        refused = _read_response(f)
        assert refused[0].startswith("HTTP/1.1 501") and int(refused[1]["content-length"]) == len(refused[2]) > 0


def test_stop_closes_kept_alive_connections(app: AppServer) -> None:
    host, port = app.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        f = s.makefile("rb")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(f)[0] == "HTTP/1.1 200 OK"
        app.stop()
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            after = f.readline()
        except OSError:
            after = b""
        assert after == b"", "a stopped app must not answer on a connection it kept open"


# -- app servers: the health paths the app spec and the checks name ----------------------------------------


def test_app_server_answers_the_spec_and_check_health_paths(app: AppServer) -> None:
    with httpx.Client(base_url=app.url) as h:
        for path in ("/health", "/api/health", "/ws/health", "/healthz", "/healthz/api", "/", "/api"):
            assert h.get(path).status_code == 200, path
        assert h.get("/apix/health").status_code == 404 and h.get("/api/nope").status_code == 404
        app.set_unhealthy("api")
        codes = {p: h.get(p).status_code for p in ("/api/health", "/ws/health", "/health", "/api", "/ws", "/")}
        assert codes == {"/api/health": 503, "/ws/health": 200, "/health": 503, "/api": 503, "/ws": 200, "/": 503}
        assert h.get("/api/health").json() == {"status": "unhealthy", "unhealthy": ["api"]}
        text = h.get("/metrics").text
        assert 'path="/api/health",code="503"' in text


def test_components_from_the_scenario_route_and_health_check_as_the_app_spec_says() -> None:
    scenario = load_scenario()
    world = World.from_scenario(scenario)
    fleet = AppFleet()
    try:
        for entry in scenario.data["apps"]:
            server = fleet.add_spec(entry)
            app = world.find_app_by_name(entry["name"])
            assert app is not None
            spec = world.app_json(app)["spec"]
            with httpx.Client(base_url=server.url) as h:
                for svc in spec.get("services", []):
                    rule = next(r for r in spec["ingress"]["rules"] if r["component"]["name"] == svc["name"])
                    health = svc["health_check"]["http_path"]
                    assert h.get(health).status_code == 200  # the instance's check
                    assert h.get(rule["match"]["path"]["prefix"] + health).status_code == 200  # through the ingress
                for site in spec.get("static_sites", []):
                    server.set_unhealthy(site["name"])
                    assert h.get("/").status_code == 503
        lb = next(iter(world.load_balancers.values()))
        assert httpx.get(fleet["learnhub-api"].url + lb["health_check"]["path"]).status_code == 200
        # started by name only (as the supervisor does), the default scenario's apps get the same layout
        assert fleet["learnhub-web"].layout == components_from_spec(scenario.data["apps"][1])
    finally:
        fleet.stop()
    named = AppFleet()
    try:
        assert named.add("learnhub-web", ["web"]).layout == [Component("web", "/", None)]
        assert named.add("other", ["web"]).layout == [Component("web", "/web", "/health")]
    finally:
        named.stop()


# -- Uptime: probed, transitions recorded ----------------------------------------------------------------------


@pytest.fixture
def fleet() -> Iterator[AppFleet]:
    f = AppFleet().start_default()
    yield f
    f.stop()


def _world(fleet: AppFleet, clock: Clock) -> World:
    urls = {name: server.url for name, server in fleet.apps.items()}
    return World.from_scenario(load_scenario(), apps=FakeAppBackend(urls=urls), clock=clock)


def _check(world: World, app: str) -> Check:
    return next(c for c in world.checks.values() if c.app_name == app)


def _regions(world: World, c: Check) -> dict[str, Any]:
    return dict(world.check_state(c)["state"]["regions"])


def test_uptime_history_is_recorded_when_it_changes_not_recomputed(fleet: AppFleet) -> None:
    clock = Clock()
    world = _world(fleet, clock)
    check = _check(world, "learnhub-api")
    assert check.target == fleet["learnhub-api"].url + "/api/health"
    first = world.check_state(check)["state"]
    assert "previous_outage" not in first  # none happened
    assert {r["status"] for r in first["regions"].values()} == {"UP"}
    assert {r["status_changed_at"] for r in first["regions"].values()} == {iso(check.created_at)}
    clock.t += 100
    assert world.check_state(check)["state"] == first  # nothing moved with the clock

    fleet["learnhub-api"].set_unhealthy("api")
    clock.t = T0 + 200
    down = _regions(world, check)
    assert {(r["status"], r["status_changed_at"]) for r in down.values()} == {("DOWN", iso(T0 + 200))}
    clock.t = T0 + 260
    assert {r["status_changed_at"] for r in _regions(world, check).values()} == {iso(T0 + 200)}

    fleet["learnhub-api"].set_unhealthy(None, unhealthy=False)
    clock.t = T0 + 300
    state = world.check_state(check)["state"]
    assert {(r["status"], r["status_changed_at"]) for r in state["regions"].values()} == {("UP", iso(T0 + 300))}
    assert state["previous_outage"] == {"region": check.regions[0], "started_at": iso(T0 + 200),
                                        "ended_at": iso(T0 + 300), "duration_seconds": 100}
    percentage = round(100 * (1 - 100 / THIRTY_DAYS), 4)
    assert {r["thirty_day_uptime_percentage"] for r in state["regions"].values()} == {percentage}
    clock.t = T0 + 5000
    assert world.check_state(check)["state"]["previous_outage"]["started_at"] == iso(T0 + 200)
    schema = contract.operation(contract.load_spec(), "GET", "/v2/uptime/checks/{check_id}/state")
    contract.validate_read(schema["responses"]["200"]["content"]["application/json"]["schema"],
                           world.check_state(check))


def test_uptime_follows_what_the_target_answers(fleet: AppFleet) -> None:
    clock = Clock()
    world = _world(fleet, clock)
    api, web = _check(world, "learnhub-api"), _check(world, "learnhub-web")
    fleet["learnhub-api"].set_unhealthy("ws")  # /api/health is the api component's: still 200
    assert world.check_up(api) and httpx.get(api.target).status_code == 200
    world.faults.app_unhealthy("learnhub-api", "ws")  # an API-level fault on the app shows in its checks
    assert not world.check_up(api) and world.check_up(web)
    world.faults.clear()
    fleet["learnhub-web"].set_unhealthy(None)
    assert not world.check_up(web)
    fleet.remove("learnhub-api")  # the app down: nothing answers
    assert {r["status"] for r in _regions(world, api).values()} == {"DOWN"}


def test_the_prober_records_an_outage_nobody_asked_about(fleet: AppFleet) -> None:
    clock = Clock()
    world = _world(fleet, clock)
    check = _check(world, "learnhub-api")
    assert world.monitoring.recorded(check)[0] == "UP"

    def probed(status: str, since: float) -> bool:
        """A probe taken at ``since`` or later is recorded and says ``status``: a probe stamped before the
        clock moved (taken while the test changes the target) can no longer be recorded after it."""
        now, _, probed_at = world.monitoring.recorded(check)
        return now == status and probed_at >= since

    world.monitoring.start_prober(interval=0.02)
    try:
        clock.t = T0 + 50
        wait_for(lambda: probed("UP", T0 + 50), 10, "a probe stamped at the outage's start")
        fleet["learnhub-api"].set_unhealthy(None)
        wait_for(lambda: probed("DOWN", T0 + 50), 10, "the prober to see the outage")
        clock.t = T0 + 70
        wait_for(lambda: probed("DOWN", T0 + 70), 10, "a probe stamped at the recovery")
        fleet["learnhub-api"].set_unhealthy(None, unhealthy=False)
        wait_for(lambda: probed("UP", T0 + 70), 10, "the prober to see the recovery")
    finally:
        world.monitoring.stop_prober()
    clock.t = T0 + 900
    state = world.check_state(check)["state"]
    assert state["previous_outage"]["started_at"] == iso(T0 + 50)
    assert state["previous_outage"]["ended_at"] == iso(T0 + 70)
    assert {r["status_changed_at"] for r in state["regions"].values()} == {iso(T0 + 70)}


def test_targets_off_loopback_are_never_contacted(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the twin must not reach the network")

    monkeypatch.setattr(httpx, "get", no_network)
    monkeypatch.setattr(httpx.Client, "send", no_network)
    assert http_probe("https://learnhub-api-ac011.ondigitalocean.app/api/health") is None
    world = World.from_scenario(load_scenario(), clock=Clock())  # fake app backend: made-up public hosts
    assert world.monitoring._prober is None  # nothing real to watch: no thread
    check = _check(world, "learnhub-api")
    assert world.check_up(check)
    world.faults.app_unhealthy("learnhub-api")
    assert not world.check_up(check)


# -- apps: deployment times -------------------------------------------------------------------------------------


def test_last_deployment_active_at_and_step_times() -> None:
    clock = Clock()
    world = World.from_scenario(load_scenario(overrides={"durations": {"deployment_phase": 60}}), clock=clock)
    app = world.find_app_by_name("learnhub-api")
    assert app is not None
    before = world.app_platform.active_deployment(app)
    assert before is not None
    assert world.app_json(app)["last_deployment_active_at"] == iso(before.created_at + 180)
    for step in world.deployment_json(app, before)["progress"]["steps"]:
        assert step["status"] == "SUCCESS" and step["started_at"] < step["ended_at"]

    dep = world.create_deployment(app)
    clock.t = T0 + 70
    progress = world.deployment_json(app, dep)["progress"]
    assert [(s["name"], s["status"]) for s in progress["steps"]] == \
        [("initialize", "SUCCESS"), ("build", "RUNNING"), ("deploy", "PENDING")]
    assert progress["steps"][0] == {"name": "initialize", "status": "SUCCESS", "started_at": iso(T0),
                                    "ended_at": iso(T0 + 60)}
    assert progress["steps"][1] == {"name": "build", "status": "RUNNING", "started_at": iso(T0 + 60)}
    assert (progress["success_steps"], progress["running_steps"], progress["pending_steps"]) == (1, 1, 1)
    body = {"app": world.app_json(app)}
    assert body["app"]["in_progress_deployment"]["id"] == dep.id
    assert body["app"]["last_deployment_active_at"] == iso(before.created_at + 180)  # not yet the new one
    schema = contract.operation(contract.load_spec(), "GET", "/v2/apps/{id}")
    contract.validate_read(schema["responses"]["200"]["content"]["application/json"]["schema"], body)

    clock.t = T0 + 200
    assert world.app_json(app)["last_deployment_active_at"] == iso(T0 + 180)
    old = world.deployment_json(app, before)
    assert old["phase"] == "SUPERSEDED" and old["phase_last_updated_at"] == iso(T0 + 180)


# -- domains: a real zone file ------------------------------------------------------------------------------------


def test_zone_file_is_a_zone_dnspython_reads() -> None:
    world = World.from_scenario(load_scenario(overrides={"domains": [{
        "name": "learnhub.example", "ttl": 1800, "records": [
            {"type": "A", "name": "@", "data": "203.0.113.10", "ttl": 300},
            {"type": "CNAME", "name": "api", "data": "app:learnhub-api", "ttl": 300},
            {"type": "CNAME", "name": "docs", "data": "www", "ttl": 300},
            {"type": "MX", "name": "@", "data": "mx.learnhub.example", "priority": 10, "ttl": 3600},
            {"type": "TXT", "name": "@", "data": 'v=spf1 -all "quoted"', "ttl": 3600},
            {"type": "TXT", "name": "long", "data": "x" * 300, "ttl": 3600},
            {"type": "SRV", "name": "_sip._tcp", "data": "sip.learnhub.example", "priority": 1, "weight": 5,
             "port": 5060, "ttl": 3600},
            {"type": "CAA", "name": "@", "data": "letsencrypt.org", "flags": 0, "tag": "issue", "ttl": 3600}]}]}),
        clock=Clock())
    domain = world.domains["learnhub.example"]
    text = zone_file(domain)
    assert "\n" + "learnhub.example. 1800 IN NS ns1.digitalocean.com.\n" in text
    zone = dns.zone.from_text(text, origin="learnhub.example.", relativize=False, check_origin=True)
    soa = zone.find_rdataset("learnhub.example.", dns.rdatatype.SOA)[0]
    assert (str(soa.mname), str(soa.rname)) == ("ns1.digitalocean.com.", "hostmaster.learnhub.example.")
    assert (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum) == (int(T0), 10800, 3600, 604800, 1800)
    ns = zone.find_rdataset("learnhub.example.", dns.rdatatype.NS)
    assert sorted(str(r.target) for r in ns) == [f"ns{i}.digitalocean.com." for i in (1, 2, 3)]
    app = world.find_app_by_name("learnhub-api")
    assert app is not None
    cname = zone.find_rdataset("api.learnhub.example.", dns.rdatatype.CNAME)
    assert str(cname[0].target) == app.hostname + "." and cname.ttl == 300
    assert str(zone.find_rdataset("docs.learnhub.example.", "CNAME")[0].target) == "www.learnhub.example."
    mx = zone.find_rdataset("learnhub.example.", "MX")[0]
    assert (mx.preference, str(mx.exchange)) == (10, "mx.learnhub.example.")
    txt = {b"".join(r.strings) for r in zone.find_rdataset("learnhub.example.", "TXT")}
    assert txt == {b'v=spf1 -all "quoted"'}
    assert b"".join(zone.find_rdataset("long.learnhub.example.", "TXT")[0].strings) == b"x" * 300
    srv = zone.find_rdataset("_sip._tcp.learnhub.example.", "SRV")[0]
    assert (srv.priority, srv.weight, srv.port, str(srv.target)) == (1, 5, 5060, "sip.learnhub.example.")
    assert zone.find_rdataset("learnhub.example.", "CAA")[0].value == b"letsencrypt.org"
    # every record the API lists (but its SOA entry, only a TTL) is in the zone
    for r in domain["records"]:
        if r["type"] != "SOA":
            owner = "learnhub.example." if r["name"] == "@" else f"{r['name']}.learnhub.example."
            assert zone.get_rdataset(owner, r["type"]) is not None, r
