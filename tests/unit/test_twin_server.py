"""The DigitalOcean twin over HTTP: auth, errors, pagination, rate limits, CDN limits, faults, admin."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doops.sandbox.api import ADMIN_HEADER, FakeCdnBackend, TwinServer, World, load_scenario


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Twin:
    """A started twin, a clock, a client with the sandbox token and the fake CDN backend."""

    def __init__(self, overrides: dict[str, Any] | None = None, log_path: Path | None = None) -> None:
        self.clock = Clock()
        self.cdn = FakeCdnBackend()
        scenario = load_scenario(overrides=overrides)
        self.token = scenario.tokens["sandbox"]
        self.world = World.from_scenario(scenario, cdn=self.cdn, clock=self.clock)
        self.server = TwinServer(self.world, admin_secret="adm1n", request_log_path=log_path).start()
        self.client = httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {self.token}"})

    def close(self) -> None:
        self.client.close()
        self.server.stop()

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.client.request(method, path, headers={ADMIN_HEADER: "adm1n"}, **kw)


@pytest.fixture
def twin() -> Iterator[Twin]:
    t = Twin()
    yield t
    t.close()


def _api_app(t: Twin) -> str:
    app = t.world.find_app_by_name("learnhub-api")
    assert app is not None
    return app.id


def test_binds_loopback_on_a_free_port(twin: Twin) -> None:
    assert twin.server.url.startswith("http://127.0.0.1:") and twin.server.port > 0
    with pytest.raises(ValueError):
        TwinServer(twin.world, host="0.0.0.0")


def test_401_without_valid_token(twin: Twin) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {twin.token}"}):
        r = httpx.get(twin.server.url + "/v2/account", headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert body["id"] == "unauthorized" and body["message"] == "Unable to authenticate you."
        assert body["request_id"] == r.headers["x-request-id"]
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(r.headers)
    assert twin.client.get("/v2/account").status_code == 200


def test_tokens_are_configurable_and_labelled(twin: Twin) -> None:
    server = TwinServer(twin.world, tokens={"ci": "tok-ci"}).start()
    try:
        assert httpx.get(server.url + "/v2/account", headers={"Authorization": "Bearer tok-ci"}).status_code == 200
        assert httpx.get(server.url + "/v2/account",
                         headers={"Authorization": f"Bearer {twin.token}"}).status_code == 401
    finally:
        server.stop()
    assert twin.world.requests[-2].token == "ci" and twin.world.requests[-1].token is None


def test_404_and_405_use_do_error_body(twin: Twin) -> None:
    r = twin.client.get("/v2/databases/4d4a1f7e-0000-4000-8000-000000000000")
    assert r.status_code == 404 and r.json()["id"] == "not_found" and "request_id" in r.json()
    r = twin.client.post("/v2/account")
    assert r.status_code == 405 and r.json()["id"] == "method_not_allowed"
    r = twin.client.request("PUT", f"/v2/databases/{next(iter(twin.world.clusters))}/firewall", content=b"{no")
    assert r.status_code == 400 and r.json()["id"] == "bad_request"


def test_pagination_links_and_meta() -> None:
    t = Twin(overrides={"scale": {"apps": 250}})
    try:
        r = t.client.get("/v2/apps", params={"per_page": 100, "page": 2})
        body = r.json()
        assert len(body["apps"]) == 100 and body["meta"]["total"] == 250
        pages = body["links"]["pages"]
        base = t.server.url + "/v2/apps?"
        assert pages == {"first": base + "page=1&per_page=100", "prev": base + "page=1&per_page=100",
                         "next": base + "page=3&per_page=100", "last": base + "page=3&per_page=100"}
        last = t.client.get(pages["last"]).json()
        assert len(last["apps"]) == 50 and set(last["links"]["pages"]) == {"first", "prev"}
        first = t.client.get("/v2/apps").json()
        assert len(first["apps"]) == 20 and set(first["links"]["pages"]) == {"next", "last"}
        assert len(t.client.get("/v2/apps", params={"per_page": 1000}).json()["apps"]) == 200
        assert t.client.get("/v2/apps", params={"page": 99}).json()["apps"] == []
        assert t.client.get("/v2/apps", params={"page": "x"}).status_code == 400
        names = []
        url: str | None = "/v2/apps?per_page=200"
        while url:
            page = t.client.get(url).json()
            names += [a["spec"]["name"] for a in page["apps"]]
            url = page["links"].get("pages", {}).get("next")
        assert len(names) == len(set(names)) == 250
    finally:
        t.close()


def test_single_page_has_empty_links_and_databases_unpaginated(twin: Twin) -> None:
    body = twin.client.get("/v2/cdn/endpoints").json()
    assert body["links"] == {} and body["meta"] == {"total": 1}
    dbs = twin.client.get("/v2/databases").json()
    assert set(dbs) == {"databases"}


def test_rate_limit_budget_headers_and_429() -> None:
    t = Twin(overrides={"limits": {"per_minute": 3, "per_hour": 100}})
    try:
        remaining = [int(t.client.get("/v2/account").headers["ratelimit-remaining"]) for _ in range(3)]
        assert remaining == [99, 98, 97]
        r = t.client.get("/v2/account")
        assert r.status_code == 429
        assert r.json() == {"id": "too_many_requests", "message": "API Rate limit exceeded.",
                            "request_id": r.headers["x-request-id"]}
        assert int(r.headers["retry-after"]) == 60 and r.headers["ratelimit-limit"] == "100"
        assert int(r.headers["ratelimit-reset"]) == int(t.clock.t + 3600)
        t.clock.t += 61
        assert t.client.get("/v2/account").status_code == 200
    finally:
        t.close()


def test_hourly_limit_429_has_no_retry_after() -> None:
    t = Twin(overrides={"limits": {"per_minute": 100, "per_hour": 2}})
    try:
        assert t.client.get("/v2/account").status_code == 200
        assert t.client.get("/v2/account").status_code == 200
        r = t.client.get("/v2/account")
        assert r.status_code == 429 and "retry-after" not in r.headers
        assert r.headers["ratelimit-remaining"] == "0"
    finally:
        t.close()


def test_cdn_call_limit_5_per_10s(twin: Twin) -> None:
    codes = [twin.client.get("/v2/cdn/endpoints").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    twin.clock.t += 10.5
    assert twin.client.get("/v2/cdn/endpoints").status_code == 200


def test_cdn_purge_limit_50_files_per_20s() -> None:
    t = Twin(overrides={"limits": {"cdn_calls": 100}})
    try:
        ep = next(iter(t.world.cdn_endpoints))
        files = [f"videos/{i}.mp4" for i in range(30)]
        r = t.client.request("DELETE", f"/v2/cdn/endpoints/{ep}/cache", json={"files": files})
        assert r.status_code == 204 and r.content == b""
        assert t.cdn.purged == [(ep, files)]
        r = t.client.request("DELETE", f"/v2/cdn/endpoints/{ep}/cache", json={"files": files})
        assert r.status_code == 429 and r.json()["id"] == "too_many_requests"
        assert int(r.headers["retry-after"]) == 20
        assert len(t.cdn.purged) == 1
        r = t.client.request("DELETE", f"/v2/cdn/endpoints/{ep}/cache", json={"files": ["*"] * 20})
        assert r.status_code == 204
        t.clock.t += 20.5
        assert t.client.request("DELETE", f"/v2/cdn/endpoints/{ep}/cache",
                                json={"files": files}).status_code == 204
        r = t.client.request("DELETE", f"/v2/cdn/endpoints/{ep}/cache", json={"files": []})
        assert r.status_code == 400
    finally:
        t.close()


def test_deployment_progression_over_http(twin: Twin) -> None:
    app_id = _api_app(twin)
    r = twin.client.post(f"/v2/apps/{app_id}/deployments", json={})
    dep = r.json()["deployment"]
    assert r.status_code == 200 and dep["phase"] == "PENDING_BUILD"
    step = twin.world.durations.deployment_phase
    start = twin.clock.t
    phases = []
    for k in range(4):
        twin.clock.t = start + (k + 0.5) * step
        phases.append(twin.client.get(f"/v2/apps/{app_id}/deployments/{dep['id']}").json()["deployment"]["phase"])
    assert phases == ["PENDING_BUILD", "BUILDING", "DEPLOYING", "ACTIVE"]
    app = twin.client.get(f"/v2/apps/{app_id}").json()["app"]
    assert app["active_deployment"]["id"] == dep["id"] and "in_progress_deployment" not in app
    listed = twin.client.get(f"/v2/apps/{app_id}/deployments").json()["deployments"]
    assert listed[0]["id"] == dep["id"] and {d["phase"] for d in listed[1:]} == {"SUPERSEDED"}


def test_promote_over_http(twin: Twin) -> None:
    src = twin.world.find_cluster_by_name("learnhub-db")
    assert src is not None
    r = twin.client.put(f"/v2/databases/{src.id}/replicas/learnhub-db-ams3/promote")
    assert r.status_code == 204 and r.content == b""
    replicas = twin.client.get(f"/v2/databases/{src.id}/replicas").json()["replicas"]
    assert replicas == []
    dbs = {d["name"]: d for d in twin.client.get("/v2/databases").json()["databases"]}
    assert dbs["learnhub-db-ams3"]["status"] == "online" and dbs["learnhub-db-ams3"]["region"] == "ams3"
    assert twin.client.put(f"/v2/databases/{src.id}/replicas/learnhub-db-ams3/promote").status_code == 404


def test_fault_http_error_and_latency(twin: Twin) -> None:
    f = twin.world.faults.http_error(503, rate=1.0, route="/v2/databases*")
    r = twin.client.get("/v2/databases")
    assert r.status_code == 503 and r.json()["id"] == "service_unavailable"
    assert twin.client.get("/v2/account").status_code == 200
    twin.world.faults.remove(f.id)
    twin.world.faults.http_error(500, rate=1.0, route="PUT /v2/databases/*")
    assert twin.client.get("/v2/databases").status_code == 200
    twin.world.faults.clear()
    twin.world.faults.latency(300, route="/v2/account")
    started = time.monotonic()
    assert twin.client.get("/v2/account").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    twin.client.get("/v2/regions")
    assert time.monotonic() - started < 0.3


def test_fault_throttle(twin: Twin) -> None:
    twin.world.faults.throttle(2)
    codes = [twin.client.get("/v2/account").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    twin.world.faults.clear()
    assert twin.client.get("/v2/account").status_code == 200


def test_fault_app_unhealthy_shows_in_health_and_uptime(twin: Twin) -> None:
    app_id = _api_app(twin)
    check = next(c for c in twin.world.checks.values() if c.app_name == "learnhub-api")
    twin.world.faults.app_unhealthy("learnhub-api", "ws")
    comps = {c["name"]: c for c in twin.client.get(f"/v2/apps/{app_id}/health").json()["app_health"]["components"]}
    assert comps["ws"]["state"] == "UNHEALTHY" and comps["ws"]["replicas_ready"] == 0
    assert comps["api"]["state"] == "HEALTHY" and comps["api"]["replicas_ready"] == comps["api"]["replicas_desired"]
    state = twin.client.get(f"/v2/uptime/checks/{check.id}/state").json()["state"]["regions"]
    assert {s["status"] for s in state.values()} == {"DOWN"}
    twin.world.faults.clear()
    state = twin.client.get(f"/v2/uptime/checks/{check.id}/state").json()["state"]["regions"]
    assert {s["status"] for s in state.values()} == {"UP"}


def test_admin_routes_need_secret_and_manage_faults(twin: Twin) -> None:
    assert twin.client.get("/_twin/state").status_code == 403
    assert twin.client.get("/_twin/state", headers={ADMIN_HEADER: "nope"}).status_code == 403
    state = twin.admin("GET", "/_twin/state").json()
    assert {c["name"] for c in state["clusters"]} == {"learnhub-db", "learnhub-cache"}
    r = twin.admin("POST", "/_twin/faults", json={"kind": "http-error", "status": 500, "rate": 1,
                                                  "route": "/v2/account"})
    assert r.status_code == 201
    assert twin.client.get("/v2/account").status_code == 500
    assert [f["kind"] for f in twin.admin("GET", "/_twin/faults").json()["faults"]] == ["http-error"]
    assert twin.admin("POST", "/_twin/faults", json={"kind": "bogus"}).status_code == 400
    assert twin.admin("DELETE", f"/_twin/faults/{r.json()['fault']['id']}").status_code == 204
    assert twin.client.get("/v2/account").status_code == 200
    twin.admin("POST", "/_twin/faults", json={"kind": "app-unhealthy", "app": "learnhub-web"})
    assert twin.admin("GET", "/_twin/state").json()["apps"][1]["healthy"] is False
    assert twin.admin("DELETE", "/_twin/faults").status_code == 204
    assert twin.admin("GET", "/_twin/faults").json() == {"faults": []}


def test_request_log_records_reads_and_never_tokens(tmp_path: Path) -> None:
    log_path = tmp_path / "requests.jsonl"
    t = Twin(log_path=log_path)
    try:
        t.client.get("/v2/databases", params={"tag_name": "learnhub"})
        t.admin("GET", "/_twin/state")  # admin calls are not logged
        log = t.admin("GET", "/_twin/requests").json()["requests"]
        assert [(e["method"], e["path"], e["status"], e["token"]) for e in log] == [
            ("GET", "/v2/databases", 200, "sandbox")]
        assert log[0]["query"] == {"tag_name": ["learnhub"]}
        lines = [json.loads(x) for x in log_path.read_text().splitlines()]
        assert lines == log
        assert t.token not in log_path.read_text()
        assert not [e for e in log if e["method"] != "GET"]  # a dry run proves it sent no write like this
        cid = next(iter(t.world.clusters))
        t.client.put(f"/v2/databases/{cid}/maintenance", json={"day": "monday", "hour": "02:00"})
        assert t.admin("GET", "/_twin/requests?since=1").json()["requests"][0]["method"] == "PUT"
        assert t.admin("DELETE", "/_twin/requests").status_code == 204
        assert t.admin("GET", "/_twin/requests").json()["requests"] == []
    finally:
        t.close()
