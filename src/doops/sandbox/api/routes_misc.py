"""Account, regions, CDN, Functions, Monitoring, Uptime, Spaces keys, load balancers and domains."""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

from doops.sandbox.api.errors import RATE_LIMIT_MESSAGE, ApiError
from doops.sandbox.api.routing import Context, Response, Router
from doops.sandbox.api.state_domains import RECORD_TYPES, owner_fqdn, target_fqdn


def account(ctx: Context) -> Response:
    """GET /v2/account."""
    return Response(200, {"account": dict(ctx.world.account)})


def regions(ctx: Context) -> Response:
    """GET /v2/regions (paginated)."""
    return Response(200, ctx.paginate("regions", ctx.world.regions()))


# -- CDN -----------------------------------------------------------------------------------------------


@runtime_checkable
class PropagatingCdnBackend(Protocol):
    """A CDN backend whose edge evicts purged files only when the purge has propagated (the real proxies)."""

    def purge_after(self, endpoint_id: str, files: list[str], delay: float) -> None:
        """Purge ``files`` from the endpoint's cache ``delay`` seconds from now (0: at once)."""
        ...


def _too_many(reason: str, wait: float) -> ApiError:
    """A CDN 429: DigitalOcean's id and message with the reason, and ``retry-after`` (whole seconds, >= 1).

    The server adds the token's ratelimit-* headers to it, as to every answer."""
    return ApiError(429, f"{RATE_LIMIT_MESSAGE[:-1]}: {reason}.", "too_many_requests", max(1, math.ceil(wait)))


def _cdn_call(ctx: Context) -> None:
    """All /v2/cdn/endpoints* calls together: ``limits.cdn_calls`` per ``cdn_calls_window`` s per token."""
    wait = ctx.world.cdn_calls.acquire(ctx.token_label or "anonymous")
    if wait is not None:
        limits = ctx.world.limits
        raise _too_many(f"CDN endpoints allow {limits.cdn_calls} requests per {limits.cdn_calls_window:g} "
                        "seconds", wait)


def _endpoint(ctx: Context) -> dict[str, Any]:
    ep = ctx.world.cdn_endpoints.get(ctx.params["cdn_id"])
    if ep is None:
        raise ApiError.not_found()
    return ep


def cdn_list(ctx: Context) -> Response:
    """GET /v2/cdn/endpoints."""
    _cdn_call(ctx)
    return Response(200, ctx.paginate("endpoints", [dict(e) for e in ctx.world.cdn_endpoints.values()]))


def cdn_get(ctx: Context) -> Response:
    """GET /v2/cdn/endpoints/{cdn_id}."""
    _cdn_call(ctx)
    return Response(200, {"endpoint": dict(_endpoint(ctx))})


def cdn_purge(ctx: Context) -> Response:
    """DELETE /v2/cdn/endpoints/{cdn_id}/cache {"files": [...]}: 204, or 429 past a limit.

    Every limit is checked before any is spent, so a refused purge spends no purge budget (the call itself
    counts against the call limit, as any /v2/cdn/endpoints* call). ``retry-after`` is the longest wait of
    those that refused, so one retry after it can succeed. The purge is then in progress for
    ``limits.cdn_purge_propagation`` seconds: the edge evicts when it ends, and an identical purge is refused
    until then.
    """
    _cdn_call(ctx)
    world = ctx.world
    ep = _endpoint(ctx)
    files = ctx.json_body().get("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f.strip() for f in files):
        raise ApiError.bad_request("files must be a non-empty list of paths")
    ep_id = str(ep["id"])
    budget_key = f"{ctx.token_label}/{ep_id}"
    limits = world.limits
    busy = world.cdn_in_progress.seconds_left(ep_id, files)
    budget_wait = world.cdn_purges.wait(budget_key, len(files))
    reasons: list[str] = []
    if busy is not None:
        reasons.append(f"an identical purge of this endpoint is still in progress ({math.ceil(busy)} s left); "
                       "two identical purge requests cannot be sent at the same time")
    if budget_wait is not None:
        reasons.append(f"{len(files)} file strings asked, {world.cdn_purges.remaining(budget_key)} of "
                       f"{limits.cdn_purge_files} left per {limits.cdn_purge_window:g} seconds on this endpoint")
    if reasons:
        raise _too_many("; ".join(reasons), max(busy or 0.0, float(budget_wait or 0)))
    world.cdn_purges.acquire(budget_key, len(files))  # fits: checked above, under the world lock
    delay = limits.cdn_purge_propagation
    backend = world.cdn_backend
    if isinstance(backend, PropagatingCdnBackend):
        backend.purge_after(ep_id, list(files), delay)
    else:
        backend.purge(ep_id, list(files))
    world.cdn_in_progress.begin(ep_id, files, delay)  # after the edge's deadline: never ends before it
    return Response(204)


# -- Functions -----------------------------------------------------------------------------------------


def fn_namespaces(ctx: Context) -> Response:
    """GET /v2/functions/namespaces (not paginated)."""
    return Response(200, {"namespaces": [ctx.world.namespace_json(n) for n in ctx.world.namespaces.values()]})


def fn_namespace(ctx: Context) -> Response:
    """GET /v2/functions/namespaces/{namespace_id}."""
    return Response(200, {"namespace": ctx.world.namespace_json(ctx.world.namespace(ctx.params["namespace_id"]))})


def fn_triggers(ctx: Context) -> Response:
    """GET .../triggers (not paginated)."""
    ns = ctx.world.namespace(ctx.params["namespace_id"])
    return Response(200, {"triggers": [ctx.world.trigger_json(ns, t) for t in ns["triggers"].values()]})


def fn_trigger(ctx: Context) -> Response:
    """GET .../triggers/{trigger_name}."""
    ns = ctx.world.namespace(ctx.params["namespace_id"])
    t = ns["triggers"].get(ctx.params["trigger_name"])
    if t is None:
        raise ApiError.not_found()
    return Response(200, {"trigger": ctx.world.trigger_json(ns, t)})


# -- Monitoring ----------------------------------------------------------------------------------------


def alert_policies(ctx: Context) -> Response:
    """GET /v2/monitoring/alerts."""
    return Response(200, ctx.paginate("policies", [dict(p) for p in ctx.world.alert_policies.values()]))


def alert_policy(ctx: Context) -> Response:
    """GET /v2/monitoring/alerts/{alert_uuid}."""
    p = ctx.world.alert_policies.get(ctx.params["alert_uuid"])
    if p is None:
        raise ApiError.not_found()
    return Response(200, {"policy": dict(p)})


def _app_metrics(ctx: Context, kind: str) -> Response:
    app_id, start, end = ctx.q("app_id"), ctx.q("start"), ctx.q("end")
    if not app_id or not start or not end:
        raise ApiError.bad_request("app_id, start and end are required")
    try:
        t0, t1 = int(float(start)), int(float(end))
    except ValueError as exc:
        raise ApiError.bad_request("start and end must be Unix timestamps") from exc
    app = ctx.world.apps.get(app_id)
    if app is None:
        return Response(200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
    return Response(200, ctx.world.app_metrics(app, ctx.q("app_component"), t0, t1, kind))


def app_cpu(ctx: Context) -> Response:
    """GET /v2/monitoring/metrics/apps/cpu_percentage."""
    return _app_metrics(ctx, "cpu")


def app_memory(ctx: Context) -> Response:
    """GET /v2/monitoring/metrics/apps/memory_percentage."""
    return _app_metrics(ctx, "memory")


# -- Uptime --------------------------------------------------------------------------------------------


def checks(ctx: Context) -> Response:
    """GET /v2/uptime/checks."""
    return Response(200, ctx.paginate("checks", [ctx.world.check_json(c) for c in ctx.world.checks.values()]))


def check(ctx: Context) -> Response:
    """GET /v2/uptime/checks/{check_id}."""
    return Response(200, {"check": ctx.world.check_json(ctx.world.check(ctx.params["check_id"]))})


def check_state(ctx: Context) -> Response:
    """GET /v2/uptime/checks/{check_id}/state."""
    return Response(200, ctx.world.check_state(ctx.world.check(ctx.params["check_id"])))


def check_alerts(ctx: Context) -> Response:
    """GET /v2/uptime/checks/{check_id}/alerts."""
    c = ctx.world.check(ctx.params["check_id"])
    return Response(200, ctx.paginate("alerts", [dict(a) for a in c.alerts.values()]))


def check_alert(ctx: Context) -> Response:
    """GET /v2/uptime/checks/{check_id}/alerts/{alert_id}."""
    c = ctx.world.check(ctx.params["check_id"])
    a = c.alerts.get(ctx.params["alert_id"])
    if a is None:
        raise ApiError.not_found()
    return Response(200, {"alert": dict(a)})


# -- Spaces keys, load balancers, domains --------------------------------------------------------------


def spaces_keys(ctx: Context) -> Response:
    """GET /v2/spaces/keys (filters: name, bucket, permission)."""
    keys = ctx.world.spaces_keys
    name, bucket, perm = ctx.q("name"), ctx.q("bucket"), ctx.q("permission")
    if name:
        keys = [k for k in keys if name in k["name"]]
    if bucket:
        keys = [k for k in keys if any(g["bucket"] in (bucket, "") for g in k["grants"])]
    if perm:
        keys = [k for k in keys if any(g["permission"] == perm for g in k["grants"])]
    return Response(200, ctx.paginate("keys", [dict(k) for k in keys]))


def load_balancers(ctx: Context) -> Response:
    """GET /v2/load_balancers."""
    return Response(200, ctx.paginate("load_balancers", [dict(lb) for lb in ctx.world.load_balancers.values()]))


def load_balancer(ctx: Context) -> Response:
    """GET /v2/load_balancers/{lb_id}."""
    lb = ctx.world.load_balancers.get(ctx.params["lb_id"])
    if lb is None:
        raise ApiError.not_found()
    return Response(200, {"load_balancer": dict(lb)})


def _domain(ctx: Context) -> dict[str, Any]:
    return ctx.world.dns.domain(ctx.params["domain_name"])


# SOA timers DigitalOcean writes (refresh, retry, expire; the minimum is the domain's TTL) and its name servers.
SOA_TIMERS = (10800, 3600, 604800)
_NAME_TYPES = frozenset({"CNAME", "NS", "MX", "SRV", "PTR"})


def _target(data: str, origin: str) -> str:
    """A host name a record points at, as the zone file writes it (a bare label stays relative)."""
    if data not in ("@", "") and "." not in data:
        return data
    return target_fqdn(data, origin)


def _txt(data: str) -> str:
    """TXT data as quoted strings of at most 255 characters each (as a zone file needs them)."""
    if data.startswith('"') and data.endswith('"') and len(data) > 1:
        return data
    chunks = [data[i:i + 255] for i in range(0, max(len(data), 1), 255)]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def _rdata(r: dict[str, Any], origin: str) -> str:
    rtype, data = str(r["type"]).upper(), str(r["data"])
    if rtype == "TXT":
        return _txt(data)
    if rtype == "MX":
        return f"{r.get('priority') or 0} {_target(data, origin)}"
    if rtype == "SRV":
        return f"{r.get('priority') or 0} {r.get('weight') or 0} {r.get('port') or 0} {_target(data, origin)}"
    if rtype == "CAA":
        return f"{r.get('flags') or 0} {r.get('tag') or 'issue'} {_txt(data)}"
    if rtype in _NAME_TYPES:
        return _target(data, origin)
    return data


def zone_file(d: dict[str, Any]) -> str:
    """The domain as an RFC 1035 zone file, in DigitalOcean's layout: ``$ORIGIN``, ``$TTL``, the SOA (primary
    name server, ``hostmaster.<domain>``, serial, refresh, retry, expire, minimum), then every record with fully
    qualified names. The SOA is written from the domain, not from the records list's ``SOA`` entry (whose data,
    as on DigitalOcean, is only its TTL)."""
    origin = str(d["name"]).rstrip(".")
    ns = [r for r in d["records"] if str(r["type"]).upper() == "NS" and r["name"] in ("@", "")]
    mname = _target(str(ns[0]["data"]), origin) if ns else "ns1.digitalocean.com."
    refresh, retry, expire = SOA_TIMERS
    lines = [f"$ORIGIN {origin}.", f"$TTL {d['ttl']}",
             f"{origin}. IN SOA {mname} hostmaster.{origin}. {d.get('serial', 1)} {refresh} {retry} {expire} "
             f"{d['ttl']}"]
    lines += [f"{owner_fqdn(str(r['name']), origin)} {r['ttl']} IN {str(r['type']).upper()} {_rdata(r, origin)}"
              for r in d["records"] if str(r["type"]).upper() != "SOA"]
    return "\n".join(lines) + "\n"


def _domain_json(d: dict[str, Any]) -> dict[str, Any]:
    return {"name": d["name"], "ttl": d["ttl"], "zone_file": zone_file(d)}


def domains(ctx: Context) -> Response:
    """GET /v2/domains."""
    return Response(200, ctx.paginate("domains", [_domain_json(d) for d in ctx.world.domains.values()]))


def domain(ctx: Context) -> Response:
    """GET /v2/domains/{domain_name}."""
    return Response(200, {"domain": _domain_json(_domain(ctx))})


def domain_records(ctx: Context) -> Response:
    """GET /v2/domains/{domain_name}/records (filters: ``name``, a fully qualified name; ``type``)."""
    d = _domain(ctx)
    recs = d["records"]
    name, rtype = ctx.q("name"), ctx.q("type")
    if rtype and rtype not in RECORD_TYPES:
        raise ApiError.bad_request(f"type must be one of {', '.join(RECORD_TYPES)}")
    if name:
        wanted = name.rstrip(".").lower() + "."
        recs = [r for r in recs if owner_fqdn(str(r["name"]), d["name"]).lower() == wanted]
    if rtype:
        recs = [r for r in recs if r["type"] == rtype]
    return Response(200, ctx.paginate("domain_records", [dict(r) for r in recs]))


def domain_record(ctx: Context) -> Response:
    """GET /v2/domains/{domain_name}/records/{domain_record_id}."""
    d = _domain(ctx)
    return Response(200, {"domain_record": dict(ctx.world.dns.record(d, ctx.params["domain_record_id"]))})


def domain_record_create(ctx: Context) -> Response:
    """POST /v2/domains/{domain_name}/records: 201."""
    d = _domain(ctx)
    return Response(201, {"domain_record": dict(ctx.world.dns.create(d, ctx.json_body()))})


def domain_record_update(ctx: Context) -> Response:
    """PUT and PATCH /v2/domains/{domain_name}/records/{domain_record_id}: the named attributes change."""
    d = _domain(ctx)
    rec = ctx.world.dns.record(d, ctx.params["domain_record_id"])
    return Response(200, {"domain_record": dict(ctx.world.dns.update(d, rec, ctx.json_body()))})


def domain_record_delete(ctx: Context) -> Response:
    """DELETE /v2/domains/{domain_name}/records/{domain_record_id}: 204."""
    d = _domain(ctx)
    ctx.world.dns.delete(d, ctx.world.dns.record(d, ctx.params["domain_record_id"]))
    return Response(204)


def register(router: Router) -> None:
    """Add the remaining routes."""
    router.add("GET", "/v2/account", account)
    router.add("GET", "/v2/regions", regions, paginated=True)
    router.add("GET", "/v2/cdn/endpoints", cdn_list, paginated=True)
    router.add("GET", "/v2/cdn/endpoints/{cdn_id}", cdn_get)
    router.add("DELETE", "/v2/cdn/endpoints/{cdn_id}/cache", cdn_purge)
    router.add("GET", "/v2/functions/namespaces", fn_namespaces)
    router.add("GET", "/v2/functions/namespaces/{namespace_id}", fn_namespace)
    router.add("GET", "/v2/functions/namespaces/{namespace_id}/triggers", fn_triggers)
    router.add("GET", "/v2/functions/namespaces/{namespace_id}/triggers/{trigger_name}", fn_trigger)
    router.add("GET", "/v2/monitoring/alerts", alert_policies, paginated=True)
    router.add("GET", "/v2/monitoring/alerts/{alert_uuid}", alert_policy)
    router.add("GET", "/v2/monitoring/metrics/apps/cpu_percentage", app_cpu)
    router.add("GET", "/v2/monitoring/metrics/apps/memory_percentage", app_memory)
    router.add("GET", "/v2/uptime/checks", checks, paginated=True)
    router.add("GET", "/v2/uptime/checks/{check_id}", check)
    router.add("GET", "/v2/uptime/checks/{check_id}/state", check_state)
    router.add("GET", "/v2/uptime/checks/{check_id}/alerts", check_alerts, paginated=True)
    router.add("GET", "/v2/uptime/checks/{check_id}/alerts/{alert_id}", check_alert)
    router.add("GET", "/v2/spaces/keys", spaces_keys, paginated=True)
    router.add("GET", "/v2/load_balancers", load_balancers, paginated=True)
    router.add("GET", "/v2/load_balancers/{lb_id}", load_balancer)
    router.add("GET", "/v2/domains", domains, paginated=True)
    router.add("GET", "/v2/domains/{domain_name}", domain)
    router.add("GET", "/v2/domains/{domain_name}/records", domain_records, paginated=True)
    router.add("POST", "/v2/domains/{domain_name}/records", domain_record_create)
    router.add("GET", "/v2/domains/{domain_name}/records/{domain_record_id}", domain_record)
    router.add("PUT", "/v2/domains/{domain_name}/records/{domain_record_id}", domain_record_update)
    router.add("PATCH", "/v2/domains/{domain_name}/records/{domain_record_id}", domain_record_update)
    router.add("DELETE", "/v2/domains/{domain_name}/records/{domain_record_id}", domain_record_delete)
