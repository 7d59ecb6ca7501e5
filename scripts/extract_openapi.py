#!/usr/bin/env python3
"""Write tests/data/do-openapi-extract.json: the schema-only part of DigitalOcean's OpenAPI spec that doops
and its API twin need, so the contract tests run from a fresh clone without ``../shared``.

Kept: the operations the twin serves (its router's routes) and the ones doops calls (every
``call("group.method")`` / ``paginate("group.method")`` in src/doops, i.e. pydo's operation ids), each with
its path and operation parameters, request body schema and response schemas. Dropped: descriptions,
summaries, titles, examples, ``x-*`` extensions, tags, security, response headers. Schemas that occur more
than once are stored once under ``components/schemas`` and referenced with ``$ref`` (the spec had every
reference inlined; ``tests/spec.py`` inlines them again when it loads the file).

Usage (from the repository root, with the venv that has doops installed):

    .venv/bin/python scripts/extract_openapi.py [--source ../shared/do-openapi/digitalocean-v2-subset.json]

``DOOPS_OPENAPI_SOURCE`` overrides the default source path. ``--check`` exits 1 when the committed extract
differs from what the source gives (tests/unit/test_twin_spec_extract.py does the same).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXTRACT_PATH = REPO / "tests" / "data" / "do-openapi-extract.json"
SOURCE_NAME = "digitalocean-v2-subset.json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Keys that document rather than constrain: dropped wherever they are keywords (not property names).
DROPPED = {"description", "summary", "title", "example", "examples", "externalDocs", "tags", "security",
           "deprecated"}
# A repeated schema is stored once when its JSON is at least this long (small ones cost less inline).
SHARE_MIN_CHARS = 200

_CALL = re.compile(r"""\.(?:call|paginate)\(\s*["']([a-z_]+)\.([a-z_0-9]+)["']""")


def default_source() -> Path:
    env = os.environ.get("DOOPS_OPENAPI_SOURCE")
    return Path(env) if env else REPO.parent / "shared" / "do-openapi" / SOURCE_NAME


def twin_operations() -> set[tuple[str, str]]:
    """(method, path template) of every route the API twin serves."""
    from doops.sandbox.api import build_router

    return {(r.method.lower(), r.template) for r in build_router().routes()}


def doops_operation_ids(src: Path = REPO / "src" / "doops") -> set[str]:
    """Operations doops calls, as pydo names them (``group.method`` -> ``group_method``, see pydo_name)."""
    found: set[str] = set()
    for path in sorted(src.rglob("*.py")):
        found |= {f"{g}_{m}" for g, m in _CALL.findall(path.read_text(encoding="utf-8"))}
    return found


def pydo_name(operation_id: str) -> str:
    """pydo's name for an operation id: ``databases_list_connectionPools`` -> ``databases_list_connection_pools``."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", operation_id).lower()


def _clean_schema(schema: Any) -> Any:
    """A schema without its documentation keywords; property names are kept whatever they are."""
    if isinstance(schema, list):
        return [_clean_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROPPED or key.startswith("x-"):
            continue
        if key == "discriminator" and any(not str(ref).startswith("#")
                                          for ref in (value.get("mapping") or {}).values()):
            # its mapping names the spec's source files (models/*.yml), gone with the inlining: no validator
            # can resolve it, and the anyOf/oneOf it sits on constrains the value without it
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _clean_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _clean_schema(value)
        else:
            out[key] = value  # enum, required, format, pattern, bounds, nullable, readOnly...: as they are
    return out


def _clean_parameter(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if k not in DROPPED and not k.startswith("x-") and k != "schema"}
    if "schema" in p:
        out["schema"] = _clean_schema(p["schema"])
    return out


def _clean_content(content: dict[str, Any]) -> dict[str, Any]:
    return {mt: ({"schema": _clean_schema(body["schema"])} if "schema" in body else {})
            for mt, body in content.items()}


def _clean_operation(op: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.get("operationId")}
    if op.get("parameters"):
        out["parameters"] = [_clean_parameter(p) for p in op["parameters"]]
    if "requestBody" in op:
        rb = op["requestBody"]
        out["requestBody"] = {k: v for k, v in (("required", rb.get("required")),
                                                  ("content", _clean_content(rb.get("content") or {})))
                              if v is not None}
    out["responses"] = {status: ({"content": _clean_content(r["content"])} if r.get("content") else {})
                        for status, r in op.get("responses", {}).items()}
    return out


# -- sharing repeated schemas -----------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _schema_children(schema: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) of every sub-schema directly inside ``schema``."""
    refs: list[tuple[Any, Any]] = []
    for key in ("properties", "patternProperties"):
        if isinstance(schema.get(key), dict):
            refs += [(schema[key], name) for name in schema[key]]
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            refs.append((schema, key))
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            refs += [(schema[key], i) for i in range(len(schema[key]))]
    return refs


def _operation_schemas(paths: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) of every top-level schema of every operation."""
    refs: list[tuple[Any, Any]] = []
    for item in paths.values():
        for key, op in item.items():
            if key == "parameters":
                refs += [(p, "schema") for p in op if "schema" in p]
                continue
            refs += [(p, "schema") for p in op.get("parameters", []) if "schema" in p]
            for content in [op.get("requestBody", {}).get("content", {}),
                            *(r.get("content", {}) for r in op["responses"].values())]:
                refs += [(body, "schema") for body in content.values() if "schema" in body]
    return refs


def _share(paths: dict[str, Any]) -> dict[str, Any]:
    """Replace every repeated, not tiny, schema by a ``$ref`` to one copy in ``components/schemas``."""
    counts: dict[str, int] = {}

    def count(schema: Any) -> None:
        if not isinstance(schema, dict):
            return
        key = _canonical(schema)
        counts[key] = counts.get(key, 0) + 1
        for container, k in _schema_children(schema):
            count(container[k])

    for container, k in _operation_schemas(paths):
        count(container[k])

    components: dict[str, Any] = {}

    def share(schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        key = _canonical(schema)  # of the fully inlined form: the same schema gets the same name everywhere
        for container, k in _schema_children(schema):
            container[k] = share(container[k])
        if counts.get(key, 0) > 1 and len(key) >= SHARE_MIN_CHARS:
            name = "s" + hashlib.sha256(key.encode()).hexdigest()[:12]
            components.setdefault(name, schema)
            return {"$ref": f"#/components/schemas/{name}"}
        return schema

    for container, k in _operation_schemas(paths):
        container[k] = share(container[k])
    return components


def build_extract(spec: dict[str, Any], operations: set[tuple[str, str]], operation_ids: set[str],
                  source_sha256: str = "") -> dict[str, Any]:
    """The extract of ``spec``: the given (method, template) operations plus those with the given ids."""
    import copy

    wanted: dict[str, set[str]] = {}
    for method, template in operations:
        item = spec["paths"].get(template)
        if item is None or method not in item:
            raise SystemExit(f"extract_openapi: {method.upper()} {template} is not an operation of the spec")
        wanted.setdefault(template, set()).add(method)
    found_ids: set[str] = set()
    for template, item in spec["paths"].items():
        for method in METHODS:
            op_id = pydo_name(str((item.get(method) or {}).get("operationId")))
            if op_id in operation_ids:
                wanted.setdefault(template, set()).add(method)
                found_ids.add(op_id)
    missing = operation_ids - found_ids
    if missing:
        raise SystemExit(f"extract_openapi: doops calls operations the spec lacks: {sorted(missing)}")
    paths: dict[str, Any] = {}
    for template in sorted(wanted):
        item = spec["paths"][template]
        out: dict[str, Any] = {}
        if item.get("parameters"):
            out["parameters"] = [_clean_parameter(p) for p in item["parameters"]]
        for method in sorted(wanted[template]):
            out[method] = _clean_operation(item[method])
        paths[template] = copy.deepcopy(out)
    components = _share(paths)
    return {
        "openapi": spec.get("openapi"),
        "info": {
            "title": (spec.get("info") or {}).get("title"),
            "version": (spec.get("info") or {}).get("version"),
            "x-doops-extract": {
                "generated_by": "scripts/extract_openapi.py",
                "source": f"../shared/do-openapi/{SOURCE_NAME}",
                "source_sha256": source_sha256,
                "note": "schema-only extract; descriptions and examples dropped; see the source for them",
            },
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items()))},
    }


def render(extract: dict[str, Any]) -> str:
    """The committed text: sorted keys, one level of indent (readable diffs, small file)."""
    return json.dumps(extract, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def extract_from(source: Path) -> str:
    raw = source.read_bytes()
    spec = json.loads(raw)
    return render(build_extract(spec, twin_operations(), doops_operation_ids(), hashlib.sha256(raw).hexdigest()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=None, help="the full spec (default ../shared/do-openapi)")
    parser.add_argument("--output", type=Path, default=EXTRACT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed extract is stale")
    args = parser.parse_args(argv)
    source = args.source or default_source()
    if not source.is_file():
        print(f"extract_openapi: {source} not found (pass --source or set DOOPS_OPENAPI_SOURCE)", file=sys.stderr)
        return 4
    text = extract_from(source)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"extract_openapi: {args.output} is stale: run scripts/extract_openapi.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"extract_openapi: wrote {args.output} ({len(text) // 1024} KiB, "
          f"{sum(len(m) for m in json.loads(text)['paths'].values())} path entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
