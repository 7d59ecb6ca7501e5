"""`doops cdn purge` against the sandbox: the CDN twin serves the old copy after the origin changes; a purge
through the API twin (which enforces DigitalOcean's purge limits) makes it fresh, proven by doops's own
verification; a wildcard; 120 paths paced within 50 file strings per 20 s (and folded); a missing object; a dry
run that sends nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import httpx
import pytest

from tests.helpers import Result, run_doops
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

BUCKET = "learnhub-media"


def s3(sb: Sandbox) -> Any:
    sp = sb.state["spaces"]
    return boto3.client("s3", endpoint_url=sp["endpoint_url"], region_name="nyc3",
                        aws_access_key_id=sp["access_key"], aws_secret_access_key=sp["secret_key"])


def edge(sb: Sandbox) -> str:
    urls = list(sb.state["cdn"].values())
    assert len(urls) == 1, sb.state["cdn"]
    return str(urls[0])


def edge_etag(sb: Sandbox, key: str) -> str:
    resp = httpx.get(f"{edge(sb)}/{key}", timeout=10)
    assert resp.status_code == 200, (key, resp.status_code)
    return resp.headers["etag"].strip('"')


def origin_etag(sb: Sandbox, key: str) -> str:
    return str(s3(sb).head_object(Bucket=BUCKET, Key=key)["ETag"]).strip('"')


def purge(sb: Sandbox, *args: str) -> Result:
    res = run_doops(["cdn", "purge", "-o", "json", *args], env=sb.env,
                    secrets=(sb.token, sb.state["spaces"]["secret_key"]))
    assert "Traceback" not in res.stderr
    return res


def deletes_since(sb: Sandbox, index: int) -> list[dict[str, Any]]:
    return [r for r in sb.requests()[index:] if r["method"] == "DELETE"]


def cached(sb: Sandbox, keys: list[str]) -> None:
    """Put every key in the edge's cache (a user fetched it)."""
    with httpx.Client(timeout=10) as client:
        for k in keys:
            assert client.get(f"{edge(sb)}/{k}").status_code == 200


def test_new_version_of_app_js_is_stale_until_purged_then_fresh(sandbox: Sandbox) -> None:
    key = "static/app.js"
    client = s3(sandbox)
    head = client.head_object(Bucket=BUCKET, Key=key)
    cached(sandbox, [key])
    old = edge_etag(sandbox, key)
    client.put_object(Bucket=BUCKET, Key=key, Body=f"console.log('release {uuid.uuid4().hex}')".encode(),
                      CacheControl=head.get("CacheControl", ""), ContentType=head.get("ContentType", "text/javascript"))
    new = origin_etag(sandbox, key)
    assert new != old and edge_etag(sandbox, key) == old, "the edge serves the old copy: stale"

    res = purge(sandbox, key, "--yes")
    assert res.exit_code == 0, res.stderr
    [check] = res.json["verification"]
    assert check["path"] == key and check["fresh"] is True and check["state"] == "fresh"
    assert check["edge_etag"] == check["origin_etag"] == new and check["cache"]
    assert [b["status"] for b in res.json["batches"]] == ["sent"]
    assert edge_etag(sandbox, key) == new


def test_wildcard_purge_makes_a_directory_fresh(sandbox: Sandbox) -> None:
    d = f"static/release-{uuid.uuid4().hex[:8]}"
    keys = [f"{d}/chunk{i}.js" for i in range(3)]
    client = s3(sandbox)
    for k in keys:
        client.put_object(Bucket=BUCKET, Key=k, Body=b"v1", CacheControl="public, max-age=3600")
    cached(sandbox, keys)
    for k in keys:
        client.put_object(Bucket=BUCKET, Key=k, Body=b"v2 " + k.encode(), CacheControl="public, max-age=3600")
    assert all(edge_etag(sandbox, k) != origin_etag(sandbox, k) for k in keys)

    res = purge(sandbox, f"{d}/*", f"{d}/chunk0.js", "--yes")
    assert res.exit_code == 0, res.stderr
    assert res.json["batches"][0]["files"] == [f"{d}/*"], "a path under a wildcard of the request is dropped"
    assert sorted(c["path"] for c in res.json["verification"]) == keys
    assert all(c["fresh"] for c in res.json["verification"])


def test_120_paths_are_paced_within_the_limit_without_a_429_and_folding_is_one_call(sandbox: Sandbox) -> None:
    d = f"bulk-{uuid.uuid4().hex[:8]}"
    keys = [f"{d}/p{i:03}.txt" for i in range(120)]
    client = s3(sandbox)
    for k in keys:
        client.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    start = len(sandbox.requests())
    t0 = time.monotonic()
    res = purge(sandbox, *keys, "--yes")
    elapsed = time.monotonic() - t0
    assert res.exit_code == 0, res.stderr
    assert [len(b["files"]) for b in res.json["batches"]] == [50, 50, 20]
    assert elapsed >= 40, f"50 file strings per 20 s: 120 paths need 40 s at least, took {elapsed:.1f}s"
    sent = deletes_since(sandbox, start)
    assert [r["status"] for r in sent] == [204, 204, 204], "no 429: the pace stayed inside the limit"
    assert all(c["fresh"] for c in res.json["verification"]) and len(res.json["verification"]) == 120

    start = len(sandbox.requests())
    folded = purge(sandbox, *keys, "--fold", "20", "--yes")
    assert folded.exit_code == 0, folded.stderr
    assert folded.json["folded"] == {f"{d}/": 120}
    assert [b["files"] for b in folded.json["batches"]] == [[f"{d}/*"]]
    assert [r["status"] for r in deletes_since(sandbox, start)] == [204]
    assert len(folded.json["verification"]) == 20, "a sample of 20 under the wildcard"
    assert "more than asked" in folded.stderr


def test_a_missing_object_is_reported_missing(sandbox: Sandbox) -> None:
    key = f"static/no-such-{uuid.uuid4().hex[:8]}.js"
    res = purge(sandbox, key, "--yes")
    assert res.exit_code == 0, res.stderr
    [check] = res.json["verification"]
    assert (check["path"], check["state"], check["fresh"], check["origin_etag"]) == (key, "missing", None, None)
    assert "check the path" in res.stderr


def test_dry_run_sends_nothing(sandbox: Sandbox) -> None:
    start = len(sandbox.requests())
    res = purge(sandbox, "learnhub-media", "static/app.js", "static/*", "--dry-run")
    assert res.exit_code == 0, res.stderr
    assert res.json["outcome"] == "dry_run" and res.json["batches"][0]["status"] == "planned"
    assert res.json["batches"][0]["files"] == ["static/*"]
    assert deletes_since(sandbox, start) == []
    assert "ETA" in res.stderr
