"""The request checker of the ``spec_checked`` integration tests can fail: it rejects each kind of invalid
request (unknown path, wrong method, bad or unknown parameters, bad, missing or unwanted bodies), names the
request, and sees what the twin logged and the bodies that left the process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from doops.sandbox.api import TwinServer, World, load_scenario
from tests import spec as contract
from tests.integration.conftest import BodyTap, spec_report

UUID = "9cc10173-e9ea-4176-9dbc-a4cee4c4ff30"
REPLICAS = f"/v2/databases/{UUID}/replicas"
EVICTION = f"/v2/databases/{UUID}/eviction_policy"
PROMOTE = f"/v2/databases/{UUID}/replicas/learnhub-db-ams3/promote"
CPU = "/v2/monitoring/metrics/apps/cpu_percentage"


def problems(method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             content_type: str | None = "application/json") -> list[str]:
    raw = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return contract.request_problems(contract.load_spec(), method, path, query, raw, content_type=content_type)


def one(found: list[str], *needles: str) -> str:
    assert len(found) == 1, found
    for needle in needles:
        assert needle in found[0], found
    return found[0]


@pytest.mark.parametrize(("method", "path", "query", "body"), [
    ("GET", "/v2/databases", None, None),
    ("GET", "/v2/databases", {"tag_name": ["production"]}, None),
    ("GET", f"/v2/databases/{UUID}/", None, None),
    ("GET", "/v2/apps", {"page": "2", "per_page": "200", "with_projects": "true"}, None),
    ("GET", "/v2/apps/a1/deployments", {"deployment_types": ["MANUAL", "AUTO_ROLLBACK"]}, None),
    ("GET", "/v2/domains/learnhub.example/records", {"type": "CNAME"}, None),
    ("GET", CPU, {"app_id": "a1", "start": "1790000000", "end": "1790003600"}, None),
    ("PUT", PROMOTE, None, None),
    ("POST", REPLICAS, None, {"name": "learnhub-db-fra1", "size": "db-s-1vcpu-1gb", "region": "fra1"}),
    ("POST", REPLICAS, None, None),  # the body is optional there
    ("PUT", EVICTION, None, {"eviction_policy": "allkeys_lru"}),
    ("POST", "/v2/apps/a1/rollback/commit", None, None),  # a literal segment, not {deployment_id}
])
def test_valid_requests_pass(method: str, path: str, query: dict[str, Any] | None, body: Any) -> None:
    assert problems(method, path, query, body) == []


def test_unknown_path() -> None:
    one(problems("GET", "/v2/databasez"), "/v2/databasez matches no path", "extract_openapi.py")
    one(problems("GET", f"/v2/databases/{UUID}/nope"), "matches no path")


def test_bad_method() -> None:
    one(problems("PATCH", "/v2/databases"), "PATCH is not an operation of /v2/databases",
        "documented: GET, POST")
    one(problems("DELETE", PROMOTE), "DELETE is not an operation of", "documented: PUT")


def test_missing_required_query_parameters() -> None:
    found = problems("GET", CPU, {"app_id": "a1"})
    assert found == ["required query parameter end missing", "required query parameter start missing"]


def test_unknown_query_parameter() -> None:
    # GET /v2/databases is not paginated on DigitalOcean: per_page is not one of its parameters.
    one(problems("GET", "/v2/databases", {"per_page": "200"}),
        "query parameter per_page is not documented for GET /v2/databases (documented: tag_name)")
    one(problems("GET", f"{REPLICAS}", {"page": "1"}), "query parameter page is not documented",
        "(documented: none)")


@pytest.mark.parametrize(("query", "needle"), [
    ({"per_page": "lots"}, "query parameter per_page: 'lots' is not of type 'integer'"),
    ({"per_page": "500"}, "query parameter per_page: 500 is greater than the maximum of 200"),
    ({"page": "0"}, "query parameter page: 0 is less than the minimum of 1"),
    ({"with_projects": "yes"}, "query parameter with_projects: 'yes' is not of type 'boolean'"),
    ({"page": ["1", "2"]}, "query parameter page given 2 times"),
])
def test_query_parameter_of_the_wrong_type_or_range(query: dict[str, Any], needle: str) -> None:
    one(problems("GET", "/v2/apps", query), needle)


def test_query_parameter_outside_its_enum() -> None:
    one(problems("GET", "/v2/domains/learnhub.example/records", {"type": "BOGUS"}),
        "query parameter type: 'BOGUS' is not one of")
    one(problems("GET", "/v2/apps/a1/deployments", {"deployment_types": ["MANUAL", "NIGHTLY"]}),
        "query parameter deployment_types[1]: 'NIGHTLY' is not one of")


def test_path_parameter_of_the_wrong_format() -> None:
    one(problems("GET", "/v2/databases/learnhub-db"), "path parameter database_cluster_uuid",
        "'learnhub-db' is not a 'uuid'")


def test_missing_required_body_field() -> None:
    # The failover write probe sends exactly this: an empty object where name and size are required.
    found = problems("POST", REPLICAS, body={})
    assert found == ["body: 'name' is a required property", "body: 'size' is a required property"]
    one(problems("PUT", EVICTION, body={"policy": "allkeys_lru"}), "body: 'eviction_policy' is a required property")


def test_missing_required_body() -> None:
    one(problems("PUT", EVICTION), "the operation requires a JSON body and none was sent")
    one(problems("PUT", EVICTION, body=b""), "requires a JSON body")


def test_body_field_of_the_wrong_type_or_enum() -> None:
    one(problems("POST", REPLICAS, body={"name": 7, "size": "db-s-1vcpu-1gb"}), "body.name: 7 is not of type 'string'")
    one(problems("POST", REPLICAS, body={"name": "r", "size": "s", "tags": ["a", 1]}),
        "body.tags[1]: 1 is not of type 'string'")
    one(problems("PUT", EVICTION, body={"eviction_policy": "lru"}), "body.eviction_policy: 'lru' is not one of")
    one(problems("POST", REPLICAS, body={"name": "r", "size": "s", "id": UUID}), "body.id", "read-only")


def test_body_where_none_is_allowed() -> None:
    one(problems("PUT", PROMOTE, body={}), "the operation documents no request body, yet 2 bytes were sent")
    one(problems("GET", "/v2/databases", body={"tag_name": "x"}), "documents no request body")


def test_body_that_is_not_json_or_not_sent_as_json() -> None:
    one(problems("PUT", EVICTION, body=b"eviction_policy=allkeys_lru"), "the body is not JSON")
    one(problems("PUT", EVICTION, body={"eviction_policy": "allkeys_lru"}, content_type="text/plain"),
        "Content-Type is 'text/plain', not application/json")


def test_an_unseen_body_is_not_judged_but_the_rest_is() -> None:
    spec = contract.load_spec()
    assert contract.request_problems(spec, "PUT", EVICTION, body=None, body_seen=False) == []
    assert contract.request_problems(spec, "PUT", PROMOTE, {"x": "1"}, b"{}", body_seen=False) == [
        f"query parameter x is not documented for PUT {contract.resolve_operation(spec, 'PUT', PROMOTE)[0]} "
        "(documented: none)"]


def test_every_problem_of_a_request_is_listed_on_one_line_naming_it() -> None:
    sent = [contract.SentRequest("GET", "/v2/databases", {}, status=200, request_id="r0"),
            contract.SentRequest("POST", REPLICAS, {"dry": ["1"]}, b"{}", status=422, request_id="r1")]
    lines = contract.sent_problems(contract.load_spec(), sent)
    assert lines == [f"POST {REPLICAS}?dry=1 (HTTP 422, request id r1): query parameter dry is not documented "
                     "for POST /v2/databases/{database_cluster_uuid}/replicas (documented: none); "
                     "body: 'name' is a required property; body: 'size' is a required property"]


# -- the wiring of the integration check: the twin's log joined with the bodies tapped in this process -------


@pytest.fixture
def twin() -> Iterator[TwinServer]:
    scenario = load_scenario()
    server = TwinServer(World.from_scenario(scenario), admin_secret="adm1n").start()
    yield server
    server.stop()


def test_tap_joins_bodies_to_the_twin_log_and_reports_the_invalid_request(twin: TwinServer) -> None:
    token = twin.world.scenario.tokens["sandbox"]
    tap = BodyTap()
    with pytest.MonkeyPatch.context() as mp, httpx.Client(
            base_url=twin.url, headers={"Authorization": f"Bearer {token}"}) as client:
        tap.install(mp)
        cluster = client.get("/v2/databases").json()["databases"][0]["id"]
        client.get("/v2/databases", params={"tag_name": "production"})
        probe = client.post(f"/v2/databases/{cluster}/replicas", json={})
        client.get("/v2/regions", params={"per_page": 200})
        client.get("/_twin/requests", headers={"X-Twin-Admin-Secret": "adm1n"})  # admin: exempt
    logged = twin.world.request_log()
    assert [e["path"] for e in logged][-1] == "/v2/regions"
    assert probe.headers["x-request-id"] in tap.bodies and tap.bodies[probe.headers["x-request-id"]][0] == b"{}"
    report = spec_report(logged, tap)
    assert len(report) == 1, report
    assert report[0].startswith(f"POST /v2/databases/{cluster}/replicas (HTTP ")
    assert f"request id {probe.headers['x-request-id']}" in report[0]
    assert "body: 'name' is a required property" in report[0]
    # A log entry whose body this process did not see (a subprocess's): checked without its body.
    unseen = spec_report([{**logged[-2], "request_id": "elsewhere"}], tap)
    assert unseen == []
    bad_query = spec_report([{**logged[-1], "query": {"colour": ["red"]}}], tap)
    assert len(bad_query) == 1 and "query parameter colour is not documented for GET /v2/regions" in bad_query[0]
