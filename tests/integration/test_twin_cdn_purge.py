"""The sandbox's CDN purge as DigitalOcean's, through the real API twin, edge and S3 origin: a purge is in
progress for ``limits.cdn_purge_propagation`` seconds (stale first, then fresh), an identical purge meanwhile is a
429 a client can pace itself from, and a wildcard purges a whole directory.

The shared sandbox (faults and limits cleared before and after each test); each test works on objects of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from doops.sandbox.api import load_scenario
from tests.helpers import wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

BUCKET = "learnhub-media"
PROPAGATION = load_scenario().limits.cdn_purge_propagation


def _api(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.state["api_url"], headers={"Authorization": f"Bearer {sb.token}"}, timeout=10)


def _edge(sb: Sandbox) -> httpx.Client:
    urls = list(sb.state["cdn"].values())
    assert len(urls) == 1, sb.state["cdn"]
    return httpx.Client(base_url=str(urls[0]), timeout=10)


def _s3(sb: Sandbox) -> Any:
    sp = sb.state["spaces"]
    return boto3.client("s3", endpoint_url=sp["endpoint_url"], region_name="nyc3",
                        aws_access_key_id=sp["access_key"], aws_secret_access_key=sp["secret_key"])


@pytest.fixture
def folder(sandbox: Sandbox) -> Iterator[str]:
    """A directory of the origin bucket no other test uses (its objects removed afterwards)."""
    prefix = f"static/purge-{uuid.uuid4().hex[:8]}/"
    yield prefix
    s3 = _s3(sandbox)
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


def _put(s3: Any, key: str, body: bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/javascript",
                  CacheControl="public, max-age=86400")
    return str(s3.head_object(Bucket=BUCKET, Key=key)["ETag"])


def _purge(api: httpx.Client, ep: str, files: list[str]) -> httpx.Response:
    return api.request("DELETE", f"/v2/cdn/endpoints/{ep}/cache", json={"files": files})


def test_purge_serves_stale_until_propagated_then_fresh_and_refuses_an_identical_one(
        sandbox: Sandbox, folder: str) -> None:
    assert PROPAGATION > 0
    s3, key = _s3(sandbox), folder + "app.js"
    old_etag = _put(s3, key, b"console.log(1)")
    start = len(sandbox.requests())
    with _api(sandbox) as api, _edge(sandbox) as edge:
        ep = api.get("/v2/cdn/endpoints").json()["endpoints"][0]["id"]
        first = edge.get("/" + key)
        assert (first.headers["x-cache"], first.headers["etag"]) == ("MISS", old_etag)
        new_etag = _put(s3, key, b"console.log(2)")
        cached = edge.get("/" + key)  # the origin changed; the edge keeps its copy until ttl or purge
        assert (cached.content, cached.headers["x-cache"], cached.headers["etag"]) == \
            (b"console.log(1)", "HIT", old_etag)

        sent = time.monotonic()
        assert _purge(api, ep, ["/" + key]).status_code == 204
        refused = _purge(api, ep, [key, key])  # the same file: identical while the first is in progress
        assert refused.status_code == 429, refused.text
        assert refused.json()["id"] == "too_many_requests" and "identical purge" in refused.json()["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= PROPAGATION + 1
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(refused.headers)

        seen: list[tuple[float, bytes, str, str]] = []

        def fresh() -> bool:
            r = edge.get("/" + key)
            seen.append((time.monotonic() - sent, r.content, r.headers["x-cache"], r.headers["etag"]))
            return r.content == b"console.log(2)"

        wait_for(fresh, 10 + PROPAGATION, "the edge to serve the new version", interval=0.05)
        stale = [s for s in seen if s[1] == b"console.log(1)"]
        assert stale and all(s[2:] == ("HIT", old_etag) for s in stale), seen  # stale first, from cache
        assert seen[-1][2:] == ("MISS", new_etag) and seen[-1][0] >= PROPAGATION, seen  # then fresh
    purges = [r for r in sandbox.requests(since=start) if r["method"] == "DELETE"]
    assert [r["status"] for r in purges] == [204, 429]


def test_wildcard_purges_the_directory_and_a_path_not_cached_is_fine(sandbox: Sandbox, folder: str) -> None:
    s3 = _s3(sandbox)
    keys = [folder + "a.js", folder + "sub/b.css"]
    for k in keys:
        _put(s3, k, b"v1")
    with _api(sandbox) as api, _edge(sandbox) as edge:
        ep = api.get("/v2/cdn/endpoints").json()["endpoints"][0]["id"]
        for k in keys:
            edge.get("/" + k)
            _put(s3, k, b"v2")
            assert edge.get("/" + k).headers["x-cache"] == "HIT"
        assert _purge(api, ep, [folder + "*", folder + "never-cached.js"]).status_code == 204
        for k in keys:
            wait_for(lambda k=k: edge.get("/" + k).content == b"v2", 10 + PROPAGATION, f"{k} purged by {folder}*")
