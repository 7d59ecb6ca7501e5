"""DigitalOcean's OpenAPI contract for tests: the committed extract and request/response checks against it.

``tests/data/do-openapi-extract.json`` is a schema-only extract of the official spec (made by
``scripts/extract_openapi.py`` from ``../shared/do-openapi/``) holding every operation the API twin serves
and doops calls, so the contract tests run from any clone. Use it to check that what a test sends or
answers is what the real API accepts or answers:

    spec = load_spec()
    template, params = match_path(spec, "GET", "/v2/databases/1b3c.../replicas")
    check_request(spec, "GET", template, params, query={}, body=None)
    check_response(spec, "GET", template, httpx_response)
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import httpx
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

EXTRACT_PATH = Path(__file__).resolve().parent / "data" / "do-openapi-extract.json"
RATELIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-request-id")


def _inline(node: Any, components: dict[str, Any], done: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/components/schemas/X"}`` replaced by X (itself inlined)."""
    if isinstance(node, list):
        return [_inline(n, components, done) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) == 1:
        name = ref.rsplit("/", 1)[-1]
        if name not in done:
            done[name] = _inline(components[name], components, done)
        return done[name]
    return {k: _inline(v, components, done) for k, v in node.items()}


@functools.cache
def load_spec(path: Path = EXTRACT_PATH) -> dict[str, Any]:
    """The extract with its shared schemas inlined again (every operation self-contained, like the source).

    Cached: treat the result as read-only.
    """
    with path.open(encoding="utf-8") as fh:
        raw = json.load(fh)
    components = (raw.get("components") or {}).get("schemas") or {}
    return {"openapi": raw.get("openapi"), "info": raw.get("info"), "paths": _inline(raw["paths"], components, {})}


def operation(spec: dict[str, Any], method: str, template: str) -> dict[str, Any]:
    """The spec's operation for ``METHOD /v2/...{param}`` (assertion error naming it if there is none)."""
    item = spec["paths"].get(template)
    assert item is not None, f"{template} is not a path of the DigitalOcean spec"
    op = item.get(method.lower())
    assert op is not None, f"{method.upper()} {template} is not an operation of the DigitalOcean spec"
    return dict(op)


def parameters(spec: dict[str, Any], method: str, template: str) -> list[dict[str, Any]]:
    """Path-level and operation-level parameters of an operation."""
    item = spec["paths"][template]
    return [*item.get("parameters", []), *operation(spec, method, template).get("parameters", [])]


def match_path(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, str]]:
    """The path template a concrete request path matches, and its path parameters.

    Literal segments win over parameters (``/v2/apps/{app_id}/rollback/commit`` before
    ``.../{deployment_id}``), like a router.
    """
    path = path.split("?", 1)[0].rstrip("/") or "/"
    candidates: list[tuple[int, str, dict[str, str]]] = []
    for template, item in spec["paths"].items():
        if method.lower() not in item:
            continue
        names = re.findall(r"\{([^}/]+)\}", template)
        pattern = "^" + re.sub(r"\\\{[^}/]+\\\}", "([^/]+)", re.escape(template)) + "$"
        m = re.match(pattern, path)
        if m:
            candidates.append((len(names), template, dict(zip(names, m.groups(), strict=True))))
    assert candidates, f"{method.upper()} {path} matches no operation of the DigitalOcean spec"
    _, template, params = min(candidates)
    return template, params


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return {"true": True, "false": False}[value]
    if kind == "array":
        return [_coerce(value, schema.get("items", {}))]
    return value


def validate_write(schema: dict[str, Any], value: Any) -> None:
    """``value`` as a client may send it (OpenAPI 3.0 write semantics: readOnly properties not allowed)."""
    OAS30WriteValidator(schema, format_checker=oas30_format_checker).validate(value)


def validate_read(schema: dict[str, Any], value: Any) -> None:
    """``value`` as the API may answer it (read semantics: writeOnly properties not allowed)."""
    OAS30ReadValidator(schema, format_checker=oas30_format_checker).validate(value)


def check_request(spec: dict[str, Any], method: str, template: str, params: dict[str, str],
                  query: dict[str, str], body: Any) -> None:
    """The request must be one the real API accepts: path and query parameters, JSON body."""
    by_place: dict[str, dict[str, dict[str, Any]]] = {"path": {}, "query": {}}
    for p in parameters(spec, method, template):
        if p["in"] in by_place:
            by_place[p["in"]][p["name"]] = p
    assert set(params) == set(by_place["path"]), f"path params {set(params)} != spec {set(by_place['path'])}"
    for name, value in params.items():
        schema = by_place["path"][name]["schema"]
        validate_write(schema, _coerce(value, schema))
    for name, p in by_place["query"].items():
        if p.get("required"):
            assert name in query, f"required query parameter {name} missing"
    for name, value in query.items():
        assert name in by_place["query"], f"query parameter {name} is not documented"
        schema = by_place["query"][name]["schema"]
        validate_write(schema, _coerce(value, schema))
    rb = operation(spec, method, template).get("requestBody")
    if rb is None:
        assert body is None, "the operation documents no request body"
        return
    if rb.get("required"):
        assert body is not None, "the operation requires a request body"
    if body is not None:
        validate_write(rb["content"]["application/json"]["schema"], body)


def check_response(spec: dict[str, Any], method: str, template: str, resp: httpx.Response, success: bool = True,
                   required_headers: tuple[str, ...] = ()) -> None:
    """The answer must be documented for the operation and match its schema (read semantics)."""
    responses = operation(spec, method, template)["responses"]
    status = str(resp.status_code)
    if success:
        assert resp.status_code < 300, f"expected success, got {resp.status_code}: {resp.text}"
        assert status in responses, f"status {status} not documented (documented: {sorted(responses)})"
    documented = responses[status] if status in responses else responses.get("default")
    assert documented is not None, f"status {status} not documented and no default"
    for header in required_headers:
        assert header in resp.headers, f"header {header} missing"
    content = documented.get("content") or {}
    if resp.status_code == 204 or not content:
        if resp.status_code == 204:
            assert resp.content == b"", "204 must have no body"
        elif resp.content:
            assert resp.json() in ({}, None), f"no body documented, got {resp.text[:200]}"
        return
    assert resp.headers["content-type"].startswith("application/json")
    schema = (content.get("application/json") or {}).get("schema")
    assert schema is not None, f"status {status} documents no JSON schema"
    validate_read(schema, resp.json())
