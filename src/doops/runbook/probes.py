"""The probes a runbook step reads: each returns the value its expectations judge, through ``doops.clients``.

Why values rather than verdicts: the runbook says what must hold (``equals``, ``range``, ``status``,
``jsonpath``...), so a probe only reads. A probe that cannot read (refused, timed out, unknown cluster) raises
``ProbeError``: a ``wait_until`` keeps polling, a plain check fails with that one line. Client libraries are
imported when a probe runs, so ``runbook validate`` loads none of them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from doops.errors import DoopsError
from doops.runbook.actions import seconds, with_defaults
from doops.runbook.registry import Param, Probe, ProbeError, StepContext
from doops.serialize import to_data


def _plain(value: Any) -> Any:
    """JSON-able and comparable with YAML: ``select 1`` is 1, ``select 1.5::numeric`` 1.5, a time its ISO form."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return to_data(value)


# -- http ----------------------------------------------------------------------------------------------------

HTTP_PARAMS = (
    Param("url", required=True, doc="the URL to request"),
    Param("method", default="GET", doc="the HTTP method", choices=("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")),
    Param("headers", "object", default={}, doc="request headers"),
    Param("timeout", "duration", default=5.0, doc="per request"),
)


def read_http(ctx: StepContext, params: dict[str, Any]) -> Any:
    p = with_defaults(HTTP_PARAMS, params)
    headers = {str(k): str(v) for k, v in (p["headers"] or {}).items()}
    got = ctx.platform.web.probe(str(p["method"]).upper(), str(p["url"]), headers or None, keep_body=True,
                                 timeout=seconds(p["timeout"]) or 5.0)
    if got.status is None:
        raise ProbeError(f"{p['url']}: no answer ({got.error})")
    body = got.body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body.strip() else None
    except ValueError:
        parsed = None
    return {"status": got.status, "headers": dict(got.headers), "body": body, "json": parsed}


# -- sql -----------------------------------------------------------------------------------------------------

SQL_PARAMS = (
    Param("cluster", required=True, doc="cluster name or id (its connection as `doops status` makes it)"),
    Param("query", required=True, doc="SQL run in a read-only transaction"),
    Param("database", doc="the database to connect to (default: the config's, else the API's)"),
)


def read_sql(ctx: StepContext, params: dict[str, Any]) -> Any:
    from dataclasses import replace

    from doops.clients import pg
    from doops.ops.dbtarget import db_target
    from doops.ops.pitr import find_cluster

    p = with_defaults(SQL_PARAMS, params)
    try:
        cluster, _ = find_cluster(ctx.platform, str(p["cluster"]))
        target = db_target(ctx.platform, cluster, cluster.connection)
        if p["database"]:
            target = replace(target, dbname=str(p["database"]))
        found, value = pg.first_value(target, str(p["query"]))
    except DoopsError as exc:
        raise ProbeError(exc.message) from None
    return _plain(value) if found else None


# -- status --------------------------------------------------------------------------------------------------

# doops.ops.status.model.COMPONENTS, written out: importing that package loads the status engine (a unit test
# keeps the two equal).
COMPONENTS = ("apps", "functions", "databases", "cache", "spaces", "cdn", "monitoring", "prometheus", "dns",
              "drills")
STATUS_PARAMS = (
    Param("component", required=True, doc="a component of `doops status`", choices=COMPONENTS),
    Param("check", doc="one check of it (e.g. replication, connections); default: every check"),
    Param("resource", doc="one resource (e.g. learnhub-db); default: every resource"),
    Param("timeout", "duration", default=50.0, doc="for the whole status run"),
)


def read_status(ctx: StepContext, params: dict[str, Any]) -> Any:
    from doops.ops.status import run_status

    p = with_defaults(STATUS_PARAMS, params)
    component, check, resource = str(p["component"]), p["check"], p["resource"]
    try:
        report = run_status(ctx.platform, [component], timeout=seconds(p["timeout"]) or 50.0)
    except DoopsError as exc:
        raise ProbeError(exc.message) from None
    found = [c for c in report.checks if c.component == component and (check is None or c.check == check)
             and (resource is None or c.resource == resource)]
    if not found:
        seen = sorted({f"{c.resource}/{c.check}" for c in report.checks if c.component == component})
        wanted = "/".join(str(x) for x in (resource or "*", check or "*"))
        raise ProbeError(f"status {component} has no check {wanted} (has: {', '.join(seen) or 'none'})")
    pick = max(found, key=lambda c: c.status.rank)  # the worst; skipped only when every one is
    return {"status": pick.status.value, "summary": pick.summary,
            "details": to_data(pick.details), "resource": pick.resource, "check": pick.check,
            "checks": [{"resource": c.resource, "check": c.check, "status": c.status.value} for c in found]}


# -- prometheus ----------------------------------------------------------------------------------------------

PROMETHEUS_PARAMS = (Param("query", required=True, doc="a PromQL instant query"),)


def read_prometheus(ctx: StepContext, params: dict[str, Any]) -> Any:
    from doops.clients.prom import PromClient

    url = ctx.platform.config.prometheus.resolved_url()
    if not url:
        raise ProbeError("no Prometheus URL: set prometheus.url in the config or $PROMETHEUS_URL")
    try:
        return PromClient(url, float(ctx.platform.config.thresholds.http_timeout)).first_value(str(params["query"]))
    except DoopsError as exc:
        raise ProbeError(exc.message) from None


# -- s3 ------------------------------------------------------------------------------------------------------

S3_PARAMS = (
    Param("bucket", required=True, doc="the bucket"),
    Param("key", required=True, doc="the object's key"),
    Param("region", doc="the bucket's region (default: its spaces.buckets entry, else nyc3)"),
)


def _bucket_region(ctx: StepContext, bucket: str) -> str:
    for b in ctx.platform.config.spaces.buckets:
        if b.name == bucket:
            return b.region
        if b.replica == bucket:
            return b.replica_region or b.region
    return "nyc3"


def read_s3(ctx: StepContext, params: dict[str, Any]) -> Any:
    from doops.clients import spaces

    p = with_defaults(S3_PARAMS, params)
    bucket = str(p["bucket"])
    region = str(p["region"] or _bucket_region(ctx, bucket))
    try:
        head = spaces.head_object(spaces.make_client(ctx.platform.config.spaces, region), bucket, str(p["key"]))
    except DoopsError as exc:
        raise ProbeError(exc.message) from None
    return {"exists": head.exists, "etag": head.etag, "size": head.size, "last_modified": to_data(head.last_modified)}


# -- dns -----------------------------------------------------------------------------------------------------

DNS_PARAMS = (
    Param("name", required=True, doc="the name to ask for"),
    Param("type", default="A", doc="the record type", choices=("A", "AAAA", "CNAME", "TXT", "NS", "SOA", "MX")),
)


def read_dns(ctx: StepContext, params: dict[str, Any]) -> Any:
    from doops.clients import dns
    from doops.ops.dns_check import ask_all

    p = with_defaults(DNS_PARAMS, params)
    name, rtype = str(p["name"]), str(p["type"]).upper()
    servers: list[dict[str, Any]] = []
    for a in ask_all(ctx.platform, dns.query, name, rtype):
        if a.answer is None:
            servers.append({"server": a.server, "answer": None, "ttl": None, "rcode": None, "authoritative": False,
                            "error": a.error})
        else:
            servers.append({"server": a.server, "answer": a.answer.values(rtype, name), "ttl": a.answer.ttl(rtype),
                            "rcode": a.answer.rcode, "authoritative": a.answer.authoritative, "error": None})
    if not servers:
        raise ProbeError("no name servers configured (dns.nameservers)")
    if all(s["error"] for s in servers):
        raise ProbeError("; ".join(f"{s['server']}: {s['error']}" for s in servers))
    answers = [s["answer"] for s in servers]
    agree = all(s["error"] is None and s["authoritative"] for s in servers) and all(a == answers[0] for a in answers)
    ttls = [s["ttl"] for s in servers if s["ttl"] is not None]
    return {"answer": answers[0] if agree else None, "ttl": min(ttls) if ttls else None,
            "rcode": servers[0]["rcode"] if agree else None, "servers": servers}


# -- tcp -----------------------------------------------------------------------------------------------------

TCP_PARAMS = (
    Param("host", required=True, doc="host name or address"),
    Param("port", "integer", required=True, doc="TCP port"),
    Param("timeout", "duration", default=3.0, doc="connect timeout"),
)


def read_tcp(ctx: StepContext, params: dict[str, Any]) -> Any:
    from doops.clients.net import tcp_connects

    p = with_defaults(TCP_PARAMS, params)
    try:
        return tcp_connects(str(p["host"]), int(p["port"]), seconds(p["timeout"]) or 3.0)
    except DoopsError as exc:
        raise ProbeError(exc.message) from None


# -- the table -----------------------------------------------------------------------------------------------

_ALL = (
    Probe("http", HTTP_PARAMS, read_http,
          doc="An HTTP request. Value: {status: int, headers: {lower-case name: value}, body: str (up to 1 MiB), "
              "json: the body parsed as JSON, else null}. No answer (refused, timeout): a probe error."),
    Probe("sql", SQL_PARAMS, read_sql,
          doc="A read-only query on a cluster. Value: the first column of the first row (numbers as int or "
              "float, times as RFC 3339 strings), null when no row. Cannot connect or SQL error: a probe error."),
    Probe("status", STATUS_PARAMS, read_status,
          doc="The `doops status` checks of one component. Value: {status: ok|warn|unknown|crit|skipped (the "
              "worst of the matching checks), summary, details, resource, check (of the worst one), checks: "
              "[{resource, check, status}]}. No matching check: a probe error."),
    Probe("prometheus", PROMETHEUS_PARAMS, read_prometheus,
          doc="A PromQL instant query. Value: a number: a scalar's value or the first sample's; null when the "
              "result is empty. Prometheus unreachable or a bad query: a probe error."),
    Probe("s3", S3_PARAMS, read_s3,
          doc="HEAD of one Spaces object. Value: {exists: bool, etag: str (no quotes) | null, size: int | null, "
              "last_modified: RFC 3339 | null}. A missing object is exists: false, not an error."),
    Probe("dns", DNS_PARAMS, read_dns,
          doc="The question at every configured authoritative name server (dns.nameservers). Value: {answer: "
              "sorted values (names lower case with the final dot) when every server answers the same, "
              "authoritatively, else null; ttl: the lowest; rcode; servers: [{server, answer, ttl, rcode, "
              "authoritative, error}]}. No server answers: a probe error."),
    Probe("tcp", TCP_PARAMS, read_tcp,
          doc="A TCP connect. Value: true when accepted, false when refused, timed out or unreachable. A host "
              "name that does not resolve: a probe error."),
)

PROBES: dict[str, Probe] = {p.name: p for p in _ALL}
