"""DigitalOcean's OpenAPI contract for tests: the committed extract and request/response checks against it.

``tests/data/do-openapi-extract.json`` is a schema-only extract of the official spec (made by
``scripts/extract_openapi.py`` from ``../shared/do-openapi/``) holding every operation the API twin serves
and doops calls, so the contract tests run from any clone. Use it to check that what a test sends or
answers is what the real API accepts or answers:

    spec = load_spec()
    template, params = match_path(spec, "GET", "/v2/databases/1b3c.../replicas")
    check_request(spec, "GET", template, params, query={}, body=None)
    check_response(spec, "GET", template, httpx_response)

To list everything wrong with requests rather than assert the first problem (what the ``spec_checked``
integration tests do with the twin's request log, see tests/integration/conftest.py):

    request_problems(spec, "POST", "/v2/databases/1b3c.../replicas", query={}, body=b"{}")
    sent_problems(spec, [SentRequest("GET", "/v2/databases", {"per_page": ["200"]}), ...])
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

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


# -- every request a test sent: problems listed, not asserted one at a time ------------------------------------

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
EXTRACT_HINT = ("tests/data/do-openapi-extract.json (if ../shared/do-openapi has it, "
                "scripts/extract_openapi.py adds what src/doops calls)")


@dataclass(frozen=True)
class SentRequest:
    """One request as the API twin logged it, with its body when the test process saw it go out.

    The twin's log holds method, path, query and status but never a body; requests sent from the test
    process (doops run in-process, the tests' own httpx calls) are tapped for theirs. ``body_seen`` is False
    for the others (doops run as a subprocess): their body cannot be checked.
    """

    method: str
    path: str
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    body: bytes | None = None
    body_seen: bool = True
    content_type: str | None = None
    status: int | None = None
    request_id: str | None = None

    def describe(self) -> str:
        """``POST /v2/x?a=1 (HTTP 422, request id ...)``: enough to find it in the twin's log."""
        query = urlencode([(k, v) for k, vs in self.query.items() for v in vs])
        where = f"{self.method.upper()} {self.path}" + (f"?{query}" if query else "")
        extra = [x for x in (f"HTTP {self.status}" if self.status is not None else "",
                             f"request id {self.request_id}" if self.request_id else "") if x]
        return where + (f" ({', '.join(extra)})" if extra else "")


def resolve_operation(spec: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, str]] | str:
    """The operation's path template and path parameters, or why there is none (unknown path, bad method).

    Literal segments win over parameters, like :func:`match_path`; unlike it, this never raises.
    """
    path = path.split("?", 1)[0].rstrip("/") or "/"
    found: list[tuple[int, str, dict[str, str]]] = []
    for template in spec["paths"]:
        names = re.findall(r"\{([^}/]+)\}", template)
        pattern = "^" + re.sub(r"\\\{[^}/]+\\\}", "([^/]+)", re.escape(template)) + "$"
        m = re.match(pattern, path)
        if m:
            found.append((len(names), template, {n: unquote(v) for n, v in zip(names, m.groups(), strict=True)}))
    if not found:
        return f"{path} matches no path of {EXTRACT_HINT}"
    found.sort(key=lambda f: (f[0], f[1]))
    for _, template, params in found:
        if method.lower() in spec["paths"][template]:
            return template, params
    documented = sorted({m.upper() for _, t, _ in found for m in spec["paths"][t] if m in METHODS})
    return f"{method.upper()} is not an operation of {found[0][1]} (documented: {', '.join(documented)})"


def _from_text(value: str, schema: dict[str, Any]) -> Any:
    """A path or query string as the type its schema names; left a string when it is not one (so it fails)."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def schema_errors(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Every way ``value`` fails ``schema`` as a client may send it (write semantics), one line each."""
    validator = OAS30WriteValidator(schema, format_checker=oas30_format_checker)
    out: dict[str, None] = {}  # ordered, once each (allOf branches repeat their parent's "required")
    for err in sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]):
        loc = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        msg = err.message if len(err.message) <= 200 else err.message[:197] + "..."
        out[f"{where}{loc}: {msg}"] = None
    return list(out)


def _parameter_problems(place: str, name: str, values: Sequence[str], schema: dict[str, Any]) -> list[str]:
    where = f"{place} parameter {name}"
    if schema.get("type") == "array":
        items = schema.get("items") or {}
        return schema_errors(schema, [_from_text(v, items) for v in values], where)
    if len(values) != 1:
        return [f"{where} given {len(values)} times, the spec takes one value"]
    return schema_errors(schema, _from_text(values[0], schema), where)


def request_problems(spec: dict[str, Any], method: str, path: str,
                     query: Mapping[str, Sequence[str] | str] | None = None, body: bytes | None = None,
                     body_seen: bool = True, content_type: str | None = None) -> list[str]:
    """Everything that makes this request one the real API would not accept; empty when it is valid.

    Checks: the method and path are an operation of the spec; path parameters and query parameters are
    valid for it (required present, types and enums right, none undocumented); a body is sent only where
    the operation documents one, as JSON that validates against its ``requestBody`` schema (write semantics);
    a required body is not missing. ``body`` is the raw bytes sent (None or empty: no body); with
    ``body_seen`` False nothing is said about the body.
    """
    found = resolve_operation(spec, method, path)
    if isinstance(found, str):
        return [found]
    template, path_params = found
    problems: list[str] = []
    declared: dict[str, dict[str, dict[str, Any]]] = {"path": {}, "query": {}}
    for p in parameters(spec, method, template):
        if p.get("in") in declared:
            declared[p["in"]][p["name"]] = p
    for name in sorted(set(declared["path"]) - set(path_params)):
        problems.append(f"path parameter {name} is documented but not in {template}")
    for name, value in path_params.items():
        if name not in declared["path"]:
            problems.append(f"path parameter {name} of {template} is not documented")
            continue
        problems += _parameter_problems("path", name, [value], declared["path"][name].get("schema") or {})
    given = {k: [v] if isinstance(v, str) else list(v) for k, v in (query or {}).items()}
    for name, p in sorted(declared["query"].items()):
        if p.get("required") and name not in given:
            problems.append(f"required query parameter {name} missing")
    for name, values in given.items():
        if name not in declared["query"]:
            known = ", ".join(sorted(declared["query"])) or "none"
            problems.append(f"query parameter {name} is not documented for {method.upper()} {template} "
                            f"(documented: {known})")
            continue
        problems += _parameter_problems("query", name, values, declared["query"][name].get("schema") or {})
    if body_seen:
        problems += _body_problems(operation(spec, method, template).get("requestBody"), body, content_type)
    return problems


def _body_problems(request_body: dict[str, Any] | None, body: bytes | None, content_type: str | None) -> list[str]:
    if not body:
        if request_body is not None and request_body.get("required"):
            return ["the operation requires a JSON body and none was sent"]
        return []
    if request_body is None:
        return [f"the operation documents no request body, yet {len(body)} bytes were sent"]
    media = request_body.get("content") or {}
    schema = (media.get("application/json") or {}).get("schema")
    if schema is None:
        return [f"the operation takes no JSON body (documented: {', '.join(sorted(media)) or 'none'})"]
    problems = []
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != "application/json":
        problems.append(f"Content-Type is {content_type!r}, not application/json")
    try:
        value = json.loads(body)
    except ValueError:
        return [*problems, "the body is not JSON"]
    return problems + schema_errors(schema, value, "body")


def sent_problems(spec: dict[str, Any], sent: Iterable[SentRequest]) -> list[str]:
    """One line per invalid request: the request, then everything wrong with it."""
    out = []
    for r in sent:
        problems = request_problems(spec, r.method, r.path, r.query, r.body, r.body_seen, r.content_type)
        if problems:
            out.append(f"{r.describe()}: {'; '.join(problems)}")
    return out
