"""What `doops assess` looks at, on the real sandbox: database and cache firewalls (PUT an open source, and
back), the buckets' policies, ACLs, CORS and versioning through S3 (made public, and back), the apps' HTTPS live
URLs (sandbox CA, TLS 1.3 and 1.2, HSTS) and the tls fault end to end through the CLI. Every test restores what
it changed on the shared sandbox."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from doops.sandbox.spaces import PRIMARY_BUCKET, REPLICA_BUCKET, s3_client
from tests.helpers import run_doops
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def _api(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.state["api_url"], headers={"Authorization": f"Bearer {sb.token}"}, timeout=10)


def _clusters(api: httpx.Client) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in api.get("/v2/databases").json()["databases"]}


def _rules(api: httpx.Client, cid: str) -> list[dict[str, Any]]:
    r = api.get(f"/v2/databases/{cid}/firewall")
    assert r.status_code == 200, r.text
    return list(r.json()["rules"])


# -- firewalls ---------------------------------------------------------------------------------------------


def test_firewalls_have_no_open_source_and_an_open_one_shows_until_put_back(sandbox: Sandbox) -> None:
    with _api(sandbox) as api:
        clusters = _clusters(api)
        apps = {a["spec"]["name"]: a["id"] for a in api.get("/v2/apps").json()["apps"]}
        for name in ("learnhub-db", "learnhub-cache"):
            c = clusters[name]
            assert c["private_network_uuid"] and c["private_connection"]["host"]
            rules = _rules(api, c["id"])
            assert {(r["type"], r["value"]) for r in rules} == {
                ("app", apps["learnhub-api"]), ("app", apps["learnhub-api-ams3"]), ("tag", "learnhub-api")}
        cid = clusters["learnhub-db"]["id"]
        before = _rules(api, cid)
        keep = [{k: r[k] for k in ("type", "value", "description") if k in r} for r in before]
        try:
            r = api.put(f"/v2/databases/{cid}/firewall",
                        json={"rules": [*keep, {"type": "ip_addr", "value": "0.0.0.0/0"}]})
            assert r.status_code == 204, r.text
            assert ("ip_addr", "0.0.0.0/0") in {(x["type"], x["value"]) for x in _rules(api, cid)}
            cluster = api.get(f"/v2/databases/{cid}").json()["database"]
            assert ("ip_addr", "0.0.0.0/0") in {(x["type"], x["value"]) for x in cluster["rules"]}
        finally:
            assert api.put(f"/v2/databases/{cid}/firewall", json={"rules": keep}).status_code == 204
        after = _rules(api, cid)
        assert [(x["type"], x["value"]) for x in after] == [(x["type"], x["value"]) for x in before]


def test_a_bad_firewall_rule_is_refused_and_changes_nothing(sandbox: Sandbox) -> None:
    with _api(sandbox) as api:
        cid = _clusters(api)["learnhub-cache"]["id"]
        before = _rules(api, cid)
        r = api.put(f"/v2/databases/{cid}/firewall", json={"rules": [{"type": "ip_addr", "value": "2001:db8::/32"}]})
        assert r.status_code == 422 and "IPv6" in r.json()["message"]
        assert _rules(api, cid) == before


# -- Spaces ------------------------------------------------------------------------------------------------


def _s3(sb: Sandbox) -> Any:
    s = sb.state["spaces"]
    return s3_client(s["endpoint_url"], s["access_key"], s["secret_key"])


def _error_code(call: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(**kw)
    return str(err.value.response["Error"]["Code"])


@pytest.mark.parametrize("bucket", [PRIMARY_BUCKET, REPLICA_BUCKET])
def test_buckets_are_private_by_default_and_versioned(sandbox: Sandbox, bucket: str) -> None:
    s3 = _s3(sandbox)
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"] and grants[0]["Grantee"]["Type"] == "CanonicalUser"
    assert _error_code(s3.get_bucket_policy, Bucket=bucket) == "NoSuchBucketPolicy"
    assert _error_code(s3.get_bucket_cors, Bucket=bucket) == "NoSuchCORSConfiguration"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    upload = "uploads/user-1001/avatar.png"
    assert all(g["Grantee"].get("URI") != ALL_USERS for g in s3.get_object_acl(Bucket=bucket, Key=upload)["Grants"])


def test_a_public_policy_acl_and_cors_read_back_until_removed(sandbox: Sandbox) -> None:
    s3 = _s3(sandbox)
    b = PRIMARY_BUCKET
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                                                      "Resource": f"arn:aws:s3:::{b}"}]}
    upload = "uploads/user-1002/assignment-01.pdf"
    try:
        s3.put_bucket_policy(Bucket=b, Policy=json.dumps(policy))
        assert json.loads(s3.get_bucket_policy(Bucket=b)["Policy"])["Statement"][0]["Principal"] == "*"
        assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
        s3.put_bucket_acl(Bucket=b, ACL="public-read")
        assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in \
            s3.get_bucket_acl(Bucket=b)["Grants"]
        s3.put_object_acl(Bucket=b, Key=upload, ACL="public-read")
        assert any(g["Grantee"].get("URI") == ALL_USERS for g in s3.get_object_acl(Bucket=b, Key=upload)["Grants"])
        s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["Authorization"]}]})
        assert s3.get_bucket_cors(Bucket=b)["CORSRules"][0]["AllowedOrigins"] == ["*"]
    finally:
        s3.delete_bucket_policy(Bucket=b)
        s3.put_bucket_acl(Bucket=b, ACL="private")
        s3.put_object_acl(Bucket=b, Key=upload, ACL="private")
        s3.delete_bucket_cors(Bucket=b)
    assert _error_code(s3.get_bucket_policy, Bucket=b) == "NoSuchBucketPolicy"
    assert all(g["Grantee"].get("URI") != ALL_USERS for g in s3.get_bucket_acl(Bucket=b)["Grants"])
    assert all(g["Grantee"].get("URI") != ALL_USERS for g in s3.get_object_acl(Bucket=b, Key=upload)["Grants"])
    assert _error_code(s3.get_bucket_cors, Bucket=b) == "NoSuchCORSConfiguration"


# -- TLS on live URLs --------------------------------------------------------------------------------------


def _handshake(url: str, cafile: str, *, max_version: ssl.TLSVersion | None = None,
               min_version: ssl.TLSVersion | None = None) -> tuple[str, dict[str, Any]]:
    ctx = ssl.create_default_context(cafile=cafile)
    if max_version is not None:
        ctx.maximum_version = max_version
    if min_version is not None:
        ctx.minimum_version = min_version
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls:
        return str(tls.version()), dict(tls.getpeercert() or {})


def _days_left(cert: dict[str, Any]) -> float:
    end = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)
    return (end - dt.datetime.now(dt.UTC)).total_seconds() / 86400


def _hsts(url: str, cafile: str) -> str | None:
    r = httpx.get(url + "/api/health", verify=ssl.create_default_context(cafile=cafile), timeout=5)
    assert r.status_code == 200
    return r.headers.get("strict-transport-security")


def test_every_app_serves_https_with_the_sandbox_ca_beside_its_http_live_url(sandbox: Sandbox) -> None:
    cafile = sandbox.env["DOOPS_CA_FILE"]
    assert cafile == sandbox.state["ca_cert"]
    tls, plain = sandbox.state["apps_tls"], sandbox.state["apps"]
    assert set(tls) == set(plain) >= {"learnhub-api", "learnhub-web", "learnhub-api-ams3"}
    with _api(sandbox) as api:
        apps = api.get("/v2/apps").json()["apps"]
    ingress = {a["spec"]["name"]: urlsplit(a["default_ingress"]).hostname for a in apps}
    assert {a["spec"]["name"]: a["live_url"] for a in apps} == plain  # the API's live URLs stay the HTTP ones
    for name, url in tls.items():
        assert url.startswith("https://127.0.0.1:") and httpx.get(plain[name] + "/healthz").status_code == 200
        version, cert = _handshake(url, cafile)
        assert version == "TLSv1.3" and _days_left(cert) > 800
        assert ("DNS", ingress[name]) in cert["subjectAltName"]
        assert _handshake(url, cafile, max_version=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
        r = httpx.get(url + "/healthz", verify=ssl.create_default_context(cafile=cafile), timeout=5)
        assert r.status_code == 200 and r.headers["strict-transport-security"] == "max-age=31536000"


def test_tls_fault_offers_only_tls12_an_expiring_certificate_no_hsts_and_clear_restores(sandbox: Sandbox) -> None:
    cafile, url = sandbox.env["DOOPS_CA_FILE"], sandbox.state["apps_tls"]["learnhub-api"]
    other = sandbox.state["apps_tls"]["learnhub-api-ams3"]
    res = run_doops(["sandbox", "fault", "tls", "learnhub-api", "--max-version", "1.2", "--expires-in", "5d",
                     "--no-hsts", "--dir", str(sandbox.dir), "-o", "json"])
    assert res.exit_code == 0, res.stderr
    assert res.json["applied"]["max_version"] == "1.2" and res.json["applied"]["url"] == url
    with pytest.raises(ssl.SSLError):
        _handshake(url, cafile, min_version=ssl.TLSVersion.TLSv1_3)
    version, cert = _handshake(url, cafile, max_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and 4.9 < _days_left(cert) <= 5.0
    assert _handshake(url, cafile)[0] == "TLSv1.2"  # the best the server offers now
    assert _hsts(url, cafile) is None
    assert _handshake(other, cafile)[0] == "TLSv1.3" and _hsts(other, cafile)  # only that app
    status = run_doops(["sandbox", "status", "--dir", str(sandbox.dir), "-o", "json"])
    assert {"kind": "tls", "app": "learnhub-api", "max_version": "1.2", "hsts": False}.items() <= next(
        f for f in status.json["faults"] if f["kind"] == "tls").items()

    cleared = run_doops(["sandbox", "fault", "clear", "--dir", str(sandbox.dir)])
    assert cleared.exit_code == 0, cleared.stderr
    version, cert = _handshake(url, cafile, min_version=ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3" and _days_left(cert) > 800
    assert _hsts(url, cafile) == "max-age=31536000"


def test_tls_fault_on_an_unknown_app_is_exit_4_naming_the_apps(sandbox: Sandbox) -> None:
    res = run_doops(["sandbox", "fault", "tls", "nope", "--no-hsts", "--dir", str(sandbox.dir)])
    assert res.exit_code == 4 and "learnhub-api" in res.stderr
