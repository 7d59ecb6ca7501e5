"""The twin's CDN purge as DigitalOcean's: propagation, identical purges, the limits' 429s, file strings, and the
edge's validators (a fake clock everywhere, no sleeps; the edge in front of a stub origin)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from doops.sandbox.api import FakeCdnBackend, TwinServer, World, load_scenario
from doops.sandbox.api.limits import PurgesInProgress, SlidingWindow, purge_path
from doops.sandbox.api.routes_misc import PropagatingCdnBackend
from doops.sandbox.cdn import CdnProxy
from tests import spec as contract

PURGE = "/v2/cdn/endpoints/{cdn_id}/cache"


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class RecordingBackend:
    """A propagating backend (as the sandbox's proxies): remembers each purge and its delay."""

    purged: list[tuple[str, list[str], float]] = field(default_factory=list)

    def purge(self, endpoint_id: str, files: list[str]) -> None:
        self.purged.append((endpoint_id, list(files), 0.0))

    def purge_after(self, endpoint_id: str, files: list[str], delay: float) -> None:
        self.purged.append((endpoint_id, list(files), delay))


class Twin:
    def __init__(self, limits: dict[str, Any] | None = None, backend: Any = None) -> None:
        self.clock = Clock()
        self.cdn = backend if backend is not None else FakeCdnBackend()
        scenario = load_scenario(overrides={"limits": limits} if limits else None)
        self.world = World.from_scenario(scenario, cdn=self.cdn, clock=self.clock)
        self.server = TwinServer(self.world, admin_secret="adm1n").start()
        self.client = httpx.Client(base_url=self.server.url,
                                   headers={"Authorization": f"Bearer {scenario.tokens['sandbox']}"})
        self.ep = next(iter(self.world.cdn_endpoints))

    def purge(self, files: list[str], ep: str | None = None) -> httpx.Response:
        return self.client.request("DELETE", f"/v2/cdn/endpoints/{ep or self.ep}/cache", json={"files": files})

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def twin() -> Iterator[Twin]:
    t = Twin({"cdn_calls": 1000})
    yield t
    t.close()


def _assert_cdn_429(r: httpx.Response, retry_after: int, reason: str) -> None:
    """A CDN 429 a client can pace itself from: DO's body, retry-after and the ratelimit-* headers."""
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["id"] == "too_many_requests" and reason in body["message"], body
    assert body["request_id"] == r.headers["x-request-id"]
    assert int(r.headers["retry-after"]) == retry_after
    for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert int(r.headers[name]) >= 0, name
    contract.check_response(contract.load_spec(), "DELETE", PURGE, r, success=False,
                            required_headers=contract.RATELIMIT_HEADERS)


# -- the scenario's setting -------------------------------------------------------------------------------------


def test_propagation_defaults_to_one_second_and_is_configurable() -> None:
    assert load_scenario().limits.cdn_purge_propagation == 1.0
    assert load_scenario(overrides={"limits": {"cdn_purge_propagation": "0.25"}}).limits.cdn_purge_propagation == 0.25
    assert load_scenario(overrides={"limits": {"cdn_purge_window": 7}}).limits.cdn_purge_window == 7.0
    with pytest.raises(ValueError, match="cdn_purge_propagation must be >= 0"):
        load_scenario(overrides={"limits": {"cdn_purge_propagation": -1}})
    with pytest.raises(ValueError, match="unknown setting"):
        load_scenario(overrides={"limits": {"cdn_purge_propogation": 1}})


# -- identical purges -------------------------------------------------------------------------------------------


def test_identical_purge_in_progress_is_429_with_the_seconds_left_and_spends_nothing(twin: Twin) -> None:
    files = ["static/app.js", "static/app.css", "pdfs/*"]
    assert twin.purge(files).status_code == 204
    remaining = twin.world.cdn_purges.remaining(f"sandbox/{twin.ep}")
    assert remaining == 50 - 3
    twin.clock.t += 0.2
    # same set: order, duplicates and a leading "/" do not make it another purge
    r = twin.purge(["/pdfs/*", "static/app.css", "static/app.js", "static/app.js"])
    _assert_cdn_429(r, 1, "identical purge")
    assert twin.world.cdn_purges.remaining(f"sandbox/{twin.ep}") == remaining  # no purge budget spent
    assert len(twin.cdn.purged) == 1
    # another set is another purge
    assert twin.purge(["static/app.js", "static/app.css"]).status_code == 204
    assert twin.purge(["static/app.js", "static/app.css", "pdfs/*", "videos/*"]).status_code == 204
    # once the first has propagated, the same set may be sent again
    twin.clock.t += 0.8
    assert twin.purge(files).status_code == 204


def test_identical_purge_of_another_endpoint_is_another_purge() -> None:
    t = Twin({"cdn_calls": 1000})
    try:
        other = dict(t.world.cdn_endpoints[t.ep], id="0c6c4f6e-4b8a-4a4c-9f0e-2d8f3c1b9a77")
        t.world.cdn_endpoints[other["id"]] = other
        assert t.purge(["*"]).status_code == 204
        assert t.purge(["*"], ep=other["id"]).status_code == 204
        assert t.purge(["*"]).status_code == 429
    finally:
        t.close()


def test_propagation_zero_makes_purges_instant() -> None:
    t = Twin({"cdn_calls": 1000, "cdn_purge_propagation": 0})
    try:
        assert [t.purge(["*"]).status_code for _ in range(3)] == [204, 204, 204]
        assert t.world.cdn_in_progress.active() == 0
    finally:
        t.close()


def test_the_edge_is_told_to_evict_after_the_propagation_time() -> None:
    backend = RecordingBackend()
    assert isinstance(backend, PropagatingCdnBackend) and not isinstance(FakeCdnBackend(), PropagatingCdnBackend)
    t = Twin({"cdn_calls": 1000, "cdn_purge_propagation": 2.5}, backend=backend)
    try:
        assert t.purge(["static/*"]).status_code == 204
        assert backend.purged == [(t.ep, ["static/*"], 2.5)]
        t.clock.t += 2.4
        _assert_cdn_429(t.purge(["static/*"]), 1, "in progress")
        t.clock.t += 0.1
        assert t.purge(["static/*"]).status_code == 204
    finally:
        t.close()


def test_clearing_the_limits_ends_the_identical_purge_refusal(twin: Twin) -> None:
    assert twin.purge(["*"]).status_code == 204
    assert twin.purge(["*"]).status_code == 429
    reset = twin.client.request("DELETE", "/_twin/ratelimit", headers={"X-Twin-Admin-Secret": "adm1n"})
    assert reset.status_code == 204
    assert twin.purge(["*"]).status_code == 204


# -- the limits' 429s -------------------------------------------------------------------------------------------


def test_every_cdn_429_carries_retry_after_and_ratelimit_headers() -> None:
    t = Twin({"cdn_calls": 3, "cdn_purge_files": 4, "cdn_purge_propagation": 5})
    try:
        assert t.purge(["a", "b", "c"]).status_code == 204
        _assert_cdn_429(t.purge(["d", "e"]), 20, "1 of 4 left per 20 seconds")  # the file budget
        _assert_cdn_429(t.purge(["a", "b", "c"]), 20, "identical purge")  # both: the longer wait wins
        _assert_cdn_429(t.client.get("/v2/cdn/endpoints"), 10, "3 requests per 10 seconds")  # the call budget
    finally:
        t.close()


def test_a_wildcard_is_one_file_string_against_the_budget(twin: Twin) -> None:
    files = [f"videos/{i}.mp4" for i in range(48)]
    assert twin.purge([*files, "static/*", "*"]).status_code == 204  # 50 strings: exactly the budget
    _assert_cdn_429(twin.purge(["pdfs/*"]), 20, "0 of 50 left")
    twin.clock.t += 20.0
    assert twin.purge(["pdfs/*"]).status_code == 204


def test_path_not_cached_and_every_string_form_are_accepted(twin: Twin) -> None:
    for files in (["never/cached.txt"], ["/static/app.js"], ["static/*"], ["*"], ["a%20b.txt"]):
        assert twin.purge(files).status_code == 204, files
    assert twin.purge([""]).status_code == 400 and twin.purge(["  "]).status_code == 400


def test_purge_path_reads_strings_as_the_edge_keys_them() -> None:
    assert purge_path("/static/app.js") == purge_path("static/app.js") == "static/app.js"
    assert purge_path("/static/*") == "static/*" and purge_path("*") == "*" and purge_path("/*") == "*"
    assert purge_path("/docs/a%20b.pdf") == "docs/a b.pdf" and purge_path("app.js?v=2") == "app.js"
    assert PurgesInProgress.key("e", ["/a", "b", "a"]) == PurgesInProgress.key("e", ["b", "a"])


def test_sliding_window_wait_spends_nothing() -> None:
    clock = Clock()
    w = SlidingWindow(5, 10, clock)
    assert w.acquire("k", 4) is None
    assert w.wait("k", 2) == 10 and w.wait("k", 1) is None and w.remaining("k") == 1
    assert w.acquire("k", 1) is None and w.remaining("k") == 0


# -- the edge ---------------------------------------------------------------------------------------------------


class StubS3:
    """Just enough of boto3's S3 client for the edge: get_object of objects held in a dict."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str, datetime]] = {}
        self.gets = 0

    def put(self, key: str, body: bytes, when: datetime) -> None:
        self.objects[key] = (body, f'"{abs(hash(body)):x}"', when)

    def get_object(self, Bucket: str, Key: str, **kw: Any) -> dict[str, Any]:
        self.gets += 1
        if Key not in self.objects:
            raise self.exceptions.NoSuchKey(Key)
        body, etag, when = self.objects[Key]
        return {"Body": io.BytesIO(body), "ETag": etag, "LastModified": when, "ContentType": "text/plain",
                "CacheControl": "public, max-age=86400", "ResponseMetadata": {"HTTPStatusCode": 200}}


@pytest.fixture
def edge() -> Iterator[tuple[CdnProxy, StubS3, Clock, httpx.Client]]:
    clock = Clock(1000.0)
    proxy = CdnProxy("http://127.0.0.1:1", "learnhub-media", 3600, clock=clock)
    origin = StubS3()
    proxy._client = origin
    proxy.start()
    client = httpx.Client(base_url=proxy.url, timeout=5)
    try:
        yield proxy, origin, clock, client
    finally:
        client.close()
        proxy.stop()


V1 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
V2 = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_a_purge_serves_stale_until_it_has_propagated_then_fresh(edge: tuple[CdnProxy, StubS3, Clock,
                                                                             httpx.Client]) -> None:
    proxy, origin, clock, client = edge
    origin.put("static/app.js", b"v1", V1)
    assert client.get("/static/app.js").headers["x-cache"] == "MISS"
    origin.put("static/app.js", b"v2", V2)
    threads = threading.active_count()
    assert proxy.purge(["/static/app.js"], delay=1.0) == 0
    assert threading.active_count() == threads  # a deadline, no timer thread
    clock.t += 0.5
    stale = client.get("/static/app.js")
    assert (stale.content, stale.headers["x-cache"], stale.headers["age"]) == (b"v1", "HIT", "0")
    assert proxy.purges_in_progress() == 1 and proxy.cached_paths() == ["static/app.js"]
    clock.t += 0.5
    fresh = client.get("/static/app.js")
    assert (fresh.content, fresh.headers["x-cache"]) == (b"v2", "MISS")
    assert proxy.purges_in_progress() == 0 and proxy.stats()["purged"] == 1


def test_purge_without_delay_evicts_at_once(edge: tuple[CdnProxy, StubS3, Clock, httpx.Client]) -> None:
    proxy, origin, _, client = edge
    origin.put("a.txt", b"x", V1)
    client.get("/a.txt")
    assert proxy.purge(["a.txt"]) == 1 and proxy.cached_paths() == []


def test_purge_file_strings_as_digitalocean_defines_them(edge: tuple[CdnProxy, StubS3, Clock,
                                                                     httpx.Client]) -> None:
    proxy, origin, _, client = edge
    keys = ["static/app.js", "static/css/app.css", "staticx/a.js", "docs/a b.pdf", "index.html"]
    for key in keys:
        origin.put(key, key.encode(), V1)

    def fill() -> None:
        for key in keys:
            assert client.get("/" + key.replace(" ", "%20")).status_code == 200

    fill()
    assert proxy.purge(["never/cached.txt", "/"]) == 0  # nothing cached there: no error, nothing evicted
    assert proxy.purge(["/static/app.js"]) == 1  # a leading "/" or not: the same file
    assert proxy.purge(["static/app.js"]) == 0
    fill()
    assert proxy.purge(["static/*"]) == 2  # everything under static/, not staticx/
    assert proxy.cached_paths() == ["docs/a b.pdf", "index.html", "staticx/a.js"]
    assert proxy.purge(["/docs/a%20b.pdf"]) == 1
    fill()
    assert proxy.purge(["*"]) == len(keys) and proxy.cached_paths() == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_edge_passes_etag_and_last_modified_on_hits_and_misses(
        edge: tuple[CdnProxy, StubS3, Clock, httpx.Client], method: str) -> None:
    _, origin, clock, client = edge
    origin.put("static/app.css", b"body{}", V1)
    etag = origin.objects["static/app.css"][1]
    miss = client.request(method, "/static/app.css")
    clock.t += 7.9
    hit = client.request(method, "/static/app.css")
    for r, cache, age in ((miss, "MISS", "0"), (hit, "HIT", "7")):
        assert r.status_code == 200
        assert (r.headers["x-cache"], r.headers["age"]) == (cache, age)
        assert r.headers["etag"] == etag
        assert r.headers["last-modified"] == "Fri, 02 Jan 2026 03:04:05 GMT"
        assert r.headers["content-length"] == "6"
        assert r.content == (b"body{}" if method == "GET" else b"")
    assert origin.gets == 1
