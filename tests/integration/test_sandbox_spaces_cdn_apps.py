"""Integration tests: Spaces (moto S3 server) + replication, CDN proxy, app servers, Prometheus — all real."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doops.sandbox.apps import AppFleet, AppServer
from doops.sandbox.cdn import CdnProxy, cache_control_max_age
from doops.sandbox.prom import PrometheusRunner, find_prometheus
from doops.sandbox.spaces import (
    CACHE_API,
    CACHE_STATIC,
    PRIMARY_BUCKET,
    REPLICA_BUCKET,
    SpacesTwin,
    list_all_objects,
)

pytestmark = pytest.mark.integration

DELAY = 2.0
ACCESS, SECRET = "DO00SANDBOXACCESS", "sandbox-secret-not-real"
OUR_THREADS = ("spaces-replicator", "cdn-", "app-", "_server_entry")


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll cond() until truthy or fail after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_closed(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) != 0


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.is_alive() and any(p in t.name for p in OUR_THREADS)]


@pytest.fixture(scope="module")
def spaces() -> Iterator[SpacesTwin]:
    twin = SpacesTwin(ACCESS, SECRET, replication_delay=DELAY, poll_interval=0.2).start()
    address = twin.endpoint_url.removeprefix("http://")
    yield twin
    twin.stop()
    assert port_closed(address), "moto S3 port still open after stop()"
    wait_for(lambda: not our_threads(), 10, f"threads to end: {our_threads()}")


def _key(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}.bin"


# ---------------------------------------------------------------- Spaces


def test_seeded_buckets_regions_cache_control_and_lifecycle(spaces: SpacesTwin) -> None:
    c = spaces.client()
    assert c.get_bucket_location(Bucket=PRIMARY_BUCKET)["LocationConstraint"] == "nyc3"
    assert spaces.client("ams3").get_bucket_location(Bucket=REPLICA_BUCKET)["LocationConstraint"] == "ams3"
    keys = list_all_objects(c, PRIMARY_BUCKET)
    for prefix in ("videos/", "pdfs/", "static/", "api/", "uploads/"):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert set(list_all_objects(c, REPLICA_BUCKET)) >= set(keys)
    assert c.head_object(Bucket=PRIMARY_BUCKET, Key="static/app.css")["CacheControl"] == CACHE_STATIC
    assert c.head_object(Bucket=REPLICA_BUCKET, Key="static/app.css")["CacheControl"] == CACHE_STATIC
    assert c.head_object(Bucket=PRIMARY_BUCKET, Key="api/courses.json")["CacheControl"] == CACHE_API
    rules = c.get_bucket_lifecycle_configuration(Bucket=PRIMARY_BUCKET)["Rules"]
    assert [(r["Filter"]["Prefix"], r["Status"]) for r in rules] == [("uploads/", "Enabled")]
    assert rules[0]["Expiration"]["Days"] == 30


def test_replication_copies_after_delay_with_metadata(spaces: SpacesTwin) -> None:
    c = spaces.client()
    key = _key("uploads/replication-test/")
    t0 = time.monotonic()
    c.put_object(Bucket=PRIMARY_BUCKET, Key=key, Body=b"lesson", CacheControl="public, max-age=60")
    assert key not in list_all_objects(c, REPLICA_BUCKET)  # well within the 2 s delay
    wait_for(lambda: key in list_all_objects(c, REPLICA_BUCKET), 15, "replica copy")
    elapsed = time.monotonic() - t0
    assert elapsed >= DELAY - 0.05, f"replicated after {elapsed:.2f}s, before the {DELAY}s delay"
    head = c.head_object(Bucket=REPLICA_BUCKET, Key=key)
    assert head["CacheControl"] == "public, max-age=60"
    assert c.get_object(Bucket=REPLICA_BUCKET, Key=key)["Body"].read() == b"lesson"
    # a change is replicated too
    c.put_object(Bucket=PRIMARY_BUCKET, Key=key, Body=b"lesson v2")
    wait_for(lambda: c.get_object(Bucket=REPLICA_BUCKET, Key=key)["Body"].read() == b"lesson v2", 15,
             "changed object replicated")
    # deletes are replicated (documented choice)
    c.delete_object(Bucket=PRIMARY_BUCKET, Key=key)
    wait_for(lambda: key not in list_all_objects(c, REPLICA_BUCKET), 15, "delete replicated")
    assert spaces.replicator is not None
    lag = spaces.replicator.replication_lag()
    assert lag.replicated_objects >= 2 and lag.replicated_deletes >= 1


def test_pause_stops_replication_and_resume_catches_up(spaces: SpacesTwin) -> None:
    c = spaces.client()
    rep = spaces.replicator
    assert rep is not None
    keys = [_key("videos/paused/") for _ in range(3)]
    rep.pause()
    try:
        for k in keys:
            c.put_object(Bucket=PRIMARY_BUCKET, Key=k, Body=b"v")
        # the replicator has seen them and they are overdue, yet nothing was copied
        wait_for(lambda: (lag := rep.replication_lag()).pending_copies >= 3
                 and lag.oldest_pending_seconds > DELAY + 0.5, 15, "overdue pending copies")
        lag = rep.replication_lag()
        assert lag.paused and not lag.in_sync and set(keys) <= set(lag.pending_keys)
        assert not set(keys) & set(list_all_objects(c, REPLICA_BUCKET))
    finally:
        rep.resume()
    wait_for(lambda: set(keys) <= set(list_all_objects(c, REPLICA_BUCKET)), 15, "catch-up after resume")
    wait_for(lambda: rep.replication_lag().in_sync, 15, "replicator in sync")
    assert rep.replication_lag().to_dict()["in_sync"] is True


# ---------------------------------------------------------------- CDN


@pytest.fixture()
def cdn(spaces: SpacesTwin) -> Iterator[CdnProxy]:
    proxy = CdnProxy(spaces.endpoint_url, PRIMARY_BUCKET, 3600, access_key=ACCESS, secret_key=SECRET).start()
    address = proxy.url.removeprefix("http://")
    yield proxy
    proxy.stop()
    assert port_closed(address)


def test_cache_control_parsing() -> None:
    assert cache_control_max_age(CACHE_STATIC) == 31536000
    assert cache_control_max_age("public, max-age=300, s-maxage=60") == 60
    assert cache_control_max_age("private, max-age=300") == 0
    assert cache_control_max_age(None) is None


def test_cdn_miss_then_hit_passes_cache_control_and_404(cdn: CdnProxy) -> None:
    with httpx.Client(base_url=cdn.url) as h:
        r1 = h.get("/static/app.css")
        assert r1.status_code == 200 and r1.headers["x-cache"] == "MISS"
        assert r1.content == b"body{font-family:sans-serif}\n"
        assert r1.headers["cache-control"] == CACHE_STATIC and r1.headers["content-type"] == "text/css"
        r2 = h.get("/static/app.css")
        assert r2.headers["x-cache"] == "HIT" and r2.content == r1.content
        assert h.head("/static/app.css").headers["x-cache"] == "HIT"
        assert h.head("/api/courses.json").headers["x-cache"] == "MISS"
        assert h.get("/api/courses.json").headers["cache-control"] == CACHE_API
        missing = h.get("/static/nope.css")
        assert missing.status_code == 404
        assert h.get("/static/nope.css").status_code == 404
        assert r2.headers["etag"]
        assert h.get("/static/app.css", headers={"If-None-Match": r2.headers["etag"]}).status_code == 304
    assert cdn.cached_paths() == ["api/courses.json", "static/app.css"]
    assert cdn.stats()["hits"] >= 2


def test_cdn_purge_exact_prefix_and_all(cdn: CdnProxy) -> None:
    paths = ["/static/app.css", "/static/app.js", "/pdfs/intro-to-python/syllabus.pdf", "/api/catalog.json"]
    with httpx.Client(base_url=cdn.url) as h:
        def state(p: str) -> str:
            return h.get(p).headers["x-cache"]

        for p in paths:
            assert state(p) == "MISS"
        assert all(state(p) == "HIT" for p in paths)

        assert cdn.purge(["static/app.css"]) == 1
        assert state("/static/app.css") == "MISS" and state("/static/app.js") == "HIT"

        assert cdn.purge(["/static/*"]) == 2
        assert state("/static/app.css") == "MISS" and state("/static/app.js") == "MISS"
        assert state("/api/catalog.json") == "HIT"

        assert cdn.purge(["*"]) == len(paths)
        assert cdn.cached_paths() == []
        assert all(state(p) == "MISS" for p in paths)


def test_cdn_ttl_expiry_endpoint_ttl_and_object_max_age(spaces: SpacesTwin) -> None:
    c = spaces.client()
    key = _key("api/short-")
    c.put_object(Bucket=PRIMARY_BUCKET, Key=key, Body=b"{}", CacheControl="public, max-age=1")
    short = CdnProxy(spaces.endpoint_url, PRIMARY_BUCKET, ttl=1).start()
    long_ttl = CdnProxy(spaces.endpoint_url, PRIMARY_BUCKET, ttl=3600).start()
    try:
        with httpx.Client() as h:
            # endpoint ttl=1 s bounds a 1-year object
            assert h.get(f"{short.url}/static/logo.svg").headers["x-cache"] == "MISS"
            assert h.get(f"{short.url}/static/logo.svg").headers["x-cache"] == "HIT"
            wait_for(lambda: h.get(f"{short.url}/static/logo.svg").headers["x-cache"] == "MISS", 10,
                     "MISS after endpoint TTL")
            # object max-age=1 bounds a 1-hour endpoint ttl
            assert h.get(f"{long_ttl.url}/{key}").headers["x-cache"] == "MISS"
            assert h.get(f"{long_ttl.url}/{key}").headers["x-cache"] == "HIT"
            wait_for(lambda: h.get(f"{long_ttl.url}/{key}").headers["x-cache"] == "MISS", 10,
                     "MISS after object max-age")
    finally:
        short.stop()
        long_ttl.stop()
        c.delete_object(Bucket=PRIMARY_BUCKET, Key=key)


# ---------------------------------------------------------------- Apps

_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                     r"[-+]?([0-9.]+(e[-+]?[0-9]+)?|Inf|NaN)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Minimal exposition-format check: every line is a comment or a valid sample; returns samples."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert _SAMPLE.match(line), f"bad metrics line: {line!r}"
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    return samples


@pytest.fixture()
def fleet() -> Iterator[AppFleet]:
    f = AppFleet().start_default()
    addresses = [a.address for a in f.apps.values()]
    yield f
    f.stop()
    assert all(port_closed(a) for a in addresses)


def test_app_health_toggles_and_metrics(fleet: AppFleet) -> None:
    api: AppServer = fleet["learnhub-api"]
    with httpx.Client(base_url=api.url) as h:
        assert h.get("/").status_code == 200 and "learnhub-api" in h.get("/").text
        assert h.get("/healthz").json() == {"status": "ok"}
        api.set_unhealthy("ws")
        r = h.get("/healthz")
        assert r.status_code == 503 and r.json() == {"status": "unhealthy", "unhealthy": ["ws"]}
        assert h.get("/healthz/api").status_code == 200 and h.get("/healthz/ws").status_code == 503
        assert api.component_health() == {"api": True, "ws": False}
        api.set_replicas("api", 3)
        text = h.get("/metrics").text
        samples = parse_metrics(text)
        assert "# TYPE http_request_duration_seconds histogram" in text
        assert samples['learnhub_component_up{app="learnhub-api",component="ws"}'] == 0
        assert samples['learnhub_component_up{app="learnhub-api",component="api"}'] == 1
        assert samples['learnhub_component_replicas{app="learnhub-api",component="api"}'] == 3
        assert samples['learnhub_app_healthy{app="learnhub-api"}'] == 0
        assert samples['http_requests_total{app="learnhub-api",method="GET",path="/healthz",code="503"}'] == 1
        count = samples['http_request_duration_seconds_count{app="learnhub-api",path="/healthz"}']
        inf = 'http_request_duration_seconds_bucket{app="learnhub-api",path="/healthz",le="+Inf"}'
        assert count == samples[inf]
        assert count == 2
        api.set_unhealthy(None, unhealthy=False)
        assert h.get("/healthz").status_code == 200
        api.set_unhealthy(None)
        assert h.get("/healthz").json()["unhealthy"] == ["api", "ws"]
    web = fleet["learnhub-web"]
    assert httpx.get(f"{web.url}/healthz").status_code == 200  # other app unaffected
    assert set(fleet.scrape_targets()) == {"learnhub-api", "learnhub-web"}


def test_servers_stop_cleanly_no_port_or_thread_left(spaces: SpacesTwin) -> None:
    fleet = AppFleet().start_default()
    proxy = CdnProxy(spaces.endpoint_url, PRIMARY_BUCKET, 60).start()
    addresses = [a.address for a in fleet.apps.values()] + [proxy.url.removeprefix("http://")]
    names = {f"app-{n}" for n in fleet.apps} | {f"cdn-{PRIMARY_BUCKET}"}
    for a in addresses:
        assert httpx.get(f"http://{a}/healthz").status_code in (200, 404)
    fleet.stop()
    proxy.stop()
    assert all(port_closed(a) for a in addresses)
    wait_for(lambda: not names & {t.name for t in threading.enumerate()}, 10, "server threads to end")


# ---------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_apps(fleet: AppFleet, tmp_path: Path) -> None:
    if find_prometheus() is None:
        reason = "no prometheus binary on PATH (apt-get install prometheus)"
        if os.environ.get("DOOPS_ALLOW_SKIP") == "1":
            pytest.skip(reason)
        pytest.fail(reason + "; set DOOPS_ALLOW_SKIP=1 to skip")
    fleet["learnhub-api"].set_unhealthy("ws")
    prom = PrometheusRunner(tmp_path / "prom", fleet.scrape_targets(), scrape_interval=1.0).start()
    address = prom.url.removeprefix("http://")
    pid = prom.pid
    try:
        assert prom.pid_path.read_text().strip() == str(pid)

        def all_up() -> bool:
            res = prom.query('up{job=~"learnhub-.*"}')
            return len(res) == 2 and all(r["value"][1] == "1" for r in res)

        wait_for(all_up, 30, "prometheus to scrape both apps with up == 1")
        targets = {t["labels"]["job"]: t["health"] for t in prom.active_targets()}
        assert targets["learnhub-api"] == "up" and targets["learnhub-web"] == "up"
        res = prom.query('learnhub_component_up{app="learnhub-api"}')
        assert {r["metric"]["component"]: r["value"][1] for r in res} == {"api": "1", "ws": "0"}
    finally:
        prom.stop()
    assert port_closed(address)
    assert not prom.pid_path.exists()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
