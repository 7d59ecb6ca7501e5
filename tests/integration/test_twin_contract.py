"""Contract test: every route the DigitalOcean twin serves answers what the official OpenAPI spec says.

For each route listed by the twin's router (so a new route is covered, or this test fails asking for an
example), a fresh twin is started and one valid request is sent. The request is checked against the
spec (path params, query params, JSON body with OpenAPI 3.0 write semantics) and so is the answer
(status documented for the operation, JSON body valid for that status with read semantics, no body where
none is documented, the ratelimit-* headers). Error answers (401, 404, 429) are checked the same way.

The spec is the committed schema-only extract ``tests/data/do-openapi-extract.json`` (see tests/spec.py;
``scripts/extract_openapi.py`` makes it from ``../shared/do-openapi/``), so this runs from any clone.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from doops.sandbox.api import Route, TwinServer, World, build_router, load_scenario
from tests import spec as contract

pytestmark = pytest.mark.integration

TOKEN_LABEL = "sandbox"
RELAXED = {"limits": {"cdn_calls": 10_000, "cdn_purge_files": 10_000}}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return contract.load_spec()


ROUTES = build_router().routes()


def _route_id(r: Route) -> str:
    return f"{r.method} {r.template}"


# -- valid requests for each route ---------------------------------------------------------------------

Setup = Callable[[World, httpx.Client], dict[str, Any]]


def _app(world: World, name: str = "learnhub-api") -> Any:
    app = world.find_app_by_name(name)
    assert app is not None
    return app


def _cluster(world: World, name: str) -> Any:
    c = world.find_cluster_by_name(name)
    assert c is not None
    return c


def default_params(world: World) -> dict[str, str]:
    """A valid value for every path parameter name the routes use."""
    app = _app(world)
    ns = next(iter(world.namespaces.values()))
    check = next(iter(world.checks.values()))
    return {
        "database_cluster_uuid": _cluster(world, "learnhub-db").id,
        "replica_name": "learnhub-db-ams3",
        "id": app.id,
        "app_id": app.id,
        "deployment_id": app.deployments[-1].id,
        "cdn_id": next(iter(world.cdn_endpoints)),
        "namespace_id": ns["namespace"],
        "trigger_name": next(iter(ns["triggers"])),
        "alert_uuid": next(iter(world.alert_policies)),
        "check_id": check.id,
        "alert_id": next(iter(check.alerts)),
        "lb_id": next(iter(world.load_balancers)),
        "domain_name": next(iter(world.domains)),
        "domain_record_id": str(_api_record(world)["id"]),
        "access_key": world.spaces_keys[0]["access_key"],
        "pool_name": "learnhub-pool",
        "username": "learnhub_app",
        "database_name": "learnhub",
    }


def _api_record(world: World) -> dict[str, Any]:
    d = next(iter(world.domains.values()))
    return next(r for r in d["records"] if r["name"] == "api")


def _restore_body(world: World, _c: httpx.Client) -> dict[str, Any]:
    target = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400))
    return {"body": {"name": "learnhub-db-restored", "engine": "pg", "version": "15", "region": "nyc3",
                     "size": "db-s-2vcpu-4gb", "num_nodes": 2,
                     "backup_restore": {"database_name": "learnhub-db", "backup_created_at": target}}}


def _valkey(world: World, _c: httpx.Client) -> dict[str, Any]:
    return {"params": {"database_cluster_uuid": _cluster(world, "learnhub-cache").id}}


def _old_deployment(world: World, _c: httpx.Client) -> dict[str, Any]:
    return {"body": {"deployment_id": _app(world).deployments[0].id}}


def _pinned(world: World, client: httpx.Client) -> dict[str, Any]:
    app = _app(world)
    r = client.post(f"/v2/apps/{app.id}/rollback", json={"deployment_id": app.deployments[0].id})
    assert r.status_code == 200, r.text
    return {}


def _metrics_query(world: World, _c: httpx.Client) -> dict[str, Any]:
    now = int(time.time())
    return {"query": {"app_id": _app(world).id, "app_component": "api", "start": str(now - 3600),
                      "end": str(now)}}


EXAMPLES: dict[str, Setup | dict[str, Any]] = {
    "GET /v2/account": {},
    "GET /v2/regions": {"query": {"page": "1", "per_page": "5"}},
    "GET /v2/databases": {"query": {"tag_name": "learnhub"}},
    "POST /v2/databases": _restore_body,
    "GET /v2/databases/{database_cluster_uuid}": {},
    "DELETE /v2/databases/{database_cluster_uuid}": {},
    "GET /v2/databases/{database_cluster_uuid}/replicas": {},
    "POST /v2/databases/{database_cluster_uuid}/replicas": {
        "body": {"name": "learnhub-db-sfo3", "region": "sfo3", "size": "db-s-2vcpu-4gb"}},
    "GET /v2/databases/{database_cluster_uuid}/replicas/{replica_name}": {},
    "DELETE /v2/databases/{database_cluster_uuid}/replicas/{replica_name}": {},
    "PUT /v2/databases/{database_cluster_uuid}/replicas/{replica_name}/promote": {},
    "GET /v2/databases/{database_cluster_uuid}/backups": {},
    "GET /v2/databases/{database_cluster_uuid}/firewall": {},
    "PUT /v2/databases/{database_cluster_uuid}/firewall": {
        "body": {"rules": [{"type": "ip_addr", "value": "192.0.2.10"}, {"type": "tag", "value": "backend"}]}},
    "GET /v2/databases/{database_cluster_uuid}/pools": {},
    "GET /v2/databases/{database_cluster_uuid}/pools/{pool_name}": {},
    "GET /v2/databases/{database_cluster_uuid}/users": {},
    "GET /v2/databases/{database_cluster_uuid}/users/{username}": {},
    "GET /v2/databases/{database_cluster_uuid}/dbs": {},
    "GET /v2/databases/{database_cluster_uuid}/dbs/{database_name}": {},
    "GET /v2/databases/{database_cluster_uuid}/config": {},
    "GET /v2/databases/options": {},
    "GET /v2/databases/metrics/credentials": {},
    "PUT /v2/databases/metrics/credentials": {
        "body": {"credentials": {"basic_auth_username": "scraper", "basic_auth_password": "a-new-secret-pass"}}},
    "GET /v2/databases/{database_cluster_uuid}/events": {},
    "GET /v2/databases/{database_cluster_uuid}/ca": {},
    "GET /v2/databases/{database_cluster_uuid}/eviction_policy": _valkey,
    "PUT /v2/databases/{database_cluster_uuid}/eviction_policy": lambda w, c: {
        **_valkey(w, c), "body": {"eviction_policy": "volatile_lru"}},
    "PUT /v2/databases/{database_cluster_uuid}/maintenance": {"body": {"day": "friday", "hour": "03:00"}},
    "PUT /v2/databases/{database_cluster_uuid}/install_update": {},
    "GET /v2/apps": {"query": {"page": "1", "per_page": "1"}},
    "GET /v2/apps/{id}": {},
    "GET /v2/apps/{app_id}/deployments": {"query": {"per_page": "2", "page": "2"}},
    "POST /v2/apps/{app_id}/deployments": {"body": {"force_build": True}},
    "GET /v2/apps/{app_id}/deployments/{deployment_id}": {},
    "GET /v2/apps/{app_id}/health": {},
    "POST /v2/apps/{app_id}/rollback": _old_deployment,
    "POST /v2/apps/{app_id}/rollback/validate": _old_deployment,
    "POST /v2/apps/{app_id}/rollback/commit": _pinned,
    "POST /v2/apps/{app_id}/rollback/revert": _pinned,
    "POST /v2/apps/{app_id}/restart": {"body": {"components": ["api"]}},
    "GET /v2/apps/{app_id}/alerts": {},
    "GET /v2/cdn/endpoints": {},
    "GET /v2/cdn/endpoints/{cdn_id}": {},
    "DELETE /v2/cdn/endpoints/{cdn_id}/cache": {"body": {"files": ["videos/intro.mp4", "pdf/*"]}},
    "GET /v2/functions/namespaces": {},
    "GET /v2/functions/namespaces/{namespace_id}": {},
    "GET /v2/functions/namespaces/{namespace_id}/triggers": {},
    "GET /v2/functions/namespaces/{namespace_id}/triggers/{trigger_name}": {},
    "GET /v2/monitoring/alerts": {},
    "GET /v2/monitoring/alerts/{alert_uuid}": {},
    "GET /v2/monitoring/metrics/apps/cpu_percentage": _metrics_query,
    "GET /v2/monitoring/metrics/apps/memory_percentage": _metrics_query,
    "GET /v2/uptime/checks": {},
    "GET /v2/uptime/checks/{check_id}": {},
    "GET /v2/uptime/checks/{check_id}/state": {},
    "GET /v2/uptime/checks/{check_id}/alerts": {},
    "GET /v2/uptime/checks/{check_id}/alerts/{alert_id}": {},
    "GET /v2/spaces/keys": {"query": {"bucket": "learnhub-media"}},
    "GET /v2/load_balancers": {},
    "GET /v2/load_balancers/{lb_id}": {},
    "GET /v2/domains": {},
    "GET /v2/domains/{domain_name}": {},
    "GET /v2/domains/{domain_name}/records": {"query": {"type": "CNAME", "name": "api.learnhub.example"}},
    "POST /v2/domains/{domain_name}/records": {
        "body": {"type": "A", "name": "status", "data": "203.0.113.20", "ttl": 300}},
    "GET /v2/domains/{domain_name}/records/{domain_record_id}": {},
    "PUT /v2/domains/{domain_name}/records/{domain_record_id}": {
        "body": {"type": "CNAME", "data": "learnhub-api-ams3-0a1b2.ondigitalocean.app.", "ttl": 60}},
    "PATCH /v2/domains/{domain_name}/records/{domain_record_id}": {"body": {"type": "CNAME", "ttl": 120}},
    "DELETE /v2/domains/{domain_name}/records/{domain_record_id}": {},
}


# -- spec checks ---------------------------------------------------------------------------------------


def _operation(spec: dict[str, Any], route: Route) -> dict[str, Any]:
    return contract.operation(spec, route.method, route.template)


def _parameters(spec: dict[str, Any], route: Route) -> list[dict[str, Any]]:
    return contract.parameters(spec, route.method, route.template)


def check_request(spec: dict[str, Any], route: Route, params: dict[str, str], query: dict[str, str],
                  body: Any) -> None:
    """The request we send must be one the real API accepts."""
    contract.check_request(spec, route.method, route.template, params, query, body)


def check_response(spec: dict[str, Any], route: Route, resp: httpx.Response, success: bool = True) -> None:
    """The answer must be documented for the operation and match its schema, with the twin's headers."""
    contract.check_response(spec, route.method, route.template, resp, success,
                            required_headers=contract.RATELIMIT_HEADERS)
    if not success:
        assert resp.json()["request_id"] == resp.headers["x-request-id"]


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def twin() -> Iterator[tuple[TwinServer, httpx.Client]]:
    scenario = load_scenario(overrides=RELAXED)
    server = TwinServer(World.from_scenario(scenario)).start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {scenario.tokens[TOKEN_LABEL]}"},
                          timeout=10)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def _example(route: Route, world: World, client: httpx.Client) -> tuple[dict[str, str], dict[str, str], Any]:
    key = _route_id(route)
    assert key in EXAMPLES, f"no contract example for {key}: add one to EXAMPLES"
    ex = EXAMPLES[key]
    got = ex(world, client) if callable(ex) else dict(ex)
    defaults = default_params(world)
    names = [seg[1:-1] for seg in route.template.split("/") if seg.startswith("{")]
    params = {n: defaults[n] for n in names}
    params.update(got.get("params", {}))
    return params, dict(got.get("query", {})), got.get("body")


def _url(route: Route, params: dict[str, str]) -> str:
    path = route.template
    for k, v in params.items():
        path = path.replace("{" + k + "}", v)
    return path


# -- tests ---------------------------------------------------------------------------------------------


def test_every_route_is_a_spec_operation_with_an_example(spec: dict[str, Any]) -> None:
    assert len(ROUTES) >= 50
    for route in ROUTES:
        _operation(spec, route)
        assert _route_id(route) in EXAMPLES, f"no contract example for {_route_id(route)}"
        has_page = any(p["name"] == "page" and p["in"] == "query" for p in _parameters(spec, route))
        assert route.paginated == has_page, f"{_route_id(route)}: paginated={route.paginated}, spec page={has_page}"
    assert not set(EXAMPLES) - {_route_id(r) for r in ROUTES}, "examples for routes the twin does not serve"


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
def test_route_contract(spec: dict[str, Any], twin: tuple[TwinServer, httpx.Client], route: Route) -> None:
    server, client = twin
    params, query, body = _example(route, server.world, client)
    check_request(spec, route, params, query, body)
    resp = client.request(route.method, _url(route, params), params=query or None,
                          content=json.dumps(body) if body is not None else None,
                          headers={"Content-Type": "application/json"} if body is not None else None)
    check_response(spec, route, resp)
    if route.paginated:
        data = resp.json()
        assert "meta" in data and isinstance(data["meta"]["total"], int)
        for link in data["links"].get("pages", {}).values():
            assert link.startswith(server.url + route.template.split("{")[0].rstrip("/"))


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
def test_error_answers_match_spec(spec: dict[str, Any], twin: tuple[TwinServer, httpx.Client],
                                  route: Route) -> None:
    server, client = twin
    params, query, body = _example(route, server.world, client)
    content = json.dumps(body) if body is not None else None
    hdrs = {"Content-Type": "application/json"}

    # 401 without a valid token
    r = httpx.request(route.method, server.url + _url(route, params), params=query or None, content=content,
                      headers={**hdrs, "Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert r.json()["id"] == "unauthorized" and r.json()["message"] == "Unable to authenticate you."
    check_response(spec, route, r, success=False)

    # 404 for an unknown resource (routes with a path parameter that document 404)
    if params and "404" in _operation(spec, route)["responses"]:
        first = next(iter(params))
        schema = next(p["schema"] for p in _parameters(spec, route) if p["name"] == first)
        missing = str(uuid.uuid4()) if schema.get("format") == "uuid" or first.endswith("uuid") else "no-such-thing"
        r = client.request(route.method, _url(route, {**params, first: missing}), params=query or None,
                           content=content, headers=hdrs)
        assert r.status_code == 404, r.text
        assert r.json()["id"] == "not_found"
        check_response(spec, route, r, success=False)

    # 429 once the per-minute budget is spent
    fault = server.world.faults.throttle(0)
    r = client.request(route.method, _url(route, params), params=query or None, content=content, headers=hdrs)
    server.world.faults.remove(fault.id)
    assert r.status_code == 429
    assert r.json() == {"id": "too_many_requests", "message": "API Rate limit exceeded.",
                        "request_id": r.headers["x-request-id"]}
    assert int(r.headers["retry-after"]) >= 1
    check_response(spec, route, r, success=False)


def test_pydo_client_reads_the_twin(twin: tuple[TwinServer, httpx.Client]) -> None:
    """The official client works against the twin (enforce_https=False per call for http://)."""
    import pydo

    server, _ = twin
    token = load_scenario().tokens[TOKEN_LABEL]
    do = pydo.Client(token=token, endpoint=server.url)
    names = [d["name"] for d in do.databases.list_clusters(enforce_https=False)["databases"]]
    assert "learnhub-db" in names and "learnhub-cache" in names
    apps = do.apps.list(enforce_https=False)["apps"]
    assert {a["spec"]["name"] for a in apps} == {"learnhub-api", "learnhub-api-ams3", "learnhub-web"}
