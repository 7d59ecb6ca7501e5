"""The committed OpenAPI extract (tests/data) is current, schema-only, and covers the twin and doops."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from doops.sandbox.api import build_router
from tests import spec as contract

REPO = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    path = REPO / "scripts" / "extract_openapi.py"
    module_spec = importlib.util.spec_from_file_location("extract_openapi", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules.setdefault("extract_openapi", module)
    module_spec.loader.exec_module(module)
    return module


def test_extract_is_current_with_the_shared_spec() -> None:
    """Regenerated in memory from ../shared/do-openapi, the extract equals the committed file.

    The only test allowed to skip: a clone without ../shared cannot regenerate it (the committed extract is
    what the contract tests then use).
    """
    script = _script()
    source = script.default_source()
    if not source.is_file():
        pytest.skip(f"{source} absent: cannot check the extract is current (set DOOPS_OPENAPI_SOURCE)")
    committed = contract.EXTRACT_PATH.read_text(encoding="utf-8")
    assert script.extract_from(source) == committed, (
        "tests/data/do-openapi-extract.json is stale: run `.venv/bin/python scripts/extract_openapi.py`")


def _keyword_keys(node: Any, found: set[str], in_properties: bool = False) -> None:
    """Every key used as a keyword (not as a property name) anywhere in ``node``."""
    if isinstance(node, list):
        for n in node:
            _keyword_keys(n, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if not in_properties:
                found.add(key)
            _keyword_keys(value, found, in_properties=key in ("properties", "patternProperties")
                          and not in_properties)


def test_extract_is_schema_only_and_small() -> None:
    raw = json.loads(contract.EXTRACT_PATH.read_text(encoding="utf-8"))
    keys: set[str] = set()
    _keyword_keys(raw["paths"], keys)
    _keyword_keys(raw["components"], keys)
    assert not keys & {"description", "summary", "example", "examples", "title", "security", "tags"}
    assert not [k for k in keys if k.startswith("x-")]
    assert contract.EXTRACT_PATH.stat().st_size < 400_000
    # a property named like a dropped keyword survives (maintenance windows have a `description` list)
    maintenance = contract.load_spec()["paths"]["/v2/databases/{database_cluster_uuid}"]["get"]
    body = maintenance["responses"]["200"]["content"]["application/json"]["schema"]
    window = body["properties"]["database"]["properties"]["maintenance_window"]["allOf"][0]
    assert window["properties"]["description"]["type"] == "array"


def test_extract_covers_every_twin_route_and_every_call_doops_makes() -> None:
    spec = contract.load_spec()
    for route in build_router().routes():
        contract.operation(spec, route.method, route.template)
    ids = {contract_id for item in spec["paths"].values() for m, op in item.items() if m != "parameters"
           for contract_id in [_script().pydo_name(op["operationId"])]}
    calls = _script().doops_operation_ids()
    assert "databases_promote_replica" in calls and "apps_get_health" in calls
    assert calls <= ids, f"operations doops calls missing from the extract: {sorted(calls - ids)}"


def test_loaded_spec_has_no_references_left() -> None:
    assert '"$ref"' in contract.EXTRACT_PATH.read_text(encoding="utf-8")  # shared schemas are stored once
    assert "$ref" not in json.dumps(contract.load_spec())


def test_match_path_prefers_literal_segments() -> None:
    spec = contract.load_spec()
    assert contract.match_path(spec, "POST", "/v2/apps/a1/rollback/commit") == (
        "/v2/apps/{app_id}/rollback/commit", {"app_id": "a1"})
    assert contract.match_path(spec, "GET", "/v2/databases/c1/replicas/r1?x=1") == (
        "/v2/databases/{database_cluster_uuid}/replicas/{replica_name}",
        {"database_cluster_uuid": "c1", "replica_name": "r1"})
    with pytest.raises(AssertionError, match="matches no operation"):
        contract.match_path(spec, "GET", "/v2/droplets")


def test_check_request_rejects_what_the_api_would() -> None:
    spec = contract.load_spec()
    template = "/v2/databases/{database_cluster_uuid}/replicas"
    uid = "9cc10173-e9ea-4176-9dbc-a4cee4c4ff30"
    contract.check_request(spec, "POST", template, {"database_cluster_uuid": uid}, {},
                           {"name": "r", "size": "db-s-2vcpu-4gb", "region": "ams3"})
    with pytest.raises(Exception, match="size"):  # size is required
        contract.check_request(spec, "POST", template, {"database_cluster_uuid": uid}, {}, {"name": "r"})
    with pytest.raises(AssertionError, match="not documented"):
        contract.check_request(spec, "GET", template, {"database_cluster_uuid": uid}, {"bogus": "1"}, None)
