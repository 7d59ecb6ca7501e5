"""/v2/databases routes (not paginated, per the spec)."""

from __future__ import annotations

import base64

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import REDIS_ENGINES, Cluster, iso
from doops.sandbox.api.routing import Context, Response, Router

D = "/v2/databases/{database_cluster_uuid}"
EVICTION_POLICIES = ("noeviction", "allkeys_lru", "allkeys_random", "volatile_lru", "volatile_random",
                     "volatile_ttl")
_FAKE_CA = (
    "-----BEGIN CERTIFICATE-----\nMIIEQTCCAqmgAwIBAgIUdG9vcHMtc2FuZGJveC1kby10d2luLWNhMA0GCSqGSIb3DQEB\n"
    "DAUAMDoxODA2BgNVBAMML2Rvb3BzIHNhbmRib3ggKERpZ2l0YWxPY2VhbiB0d2luKSBQcm9q\n"
    "ZWN0IENBMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAwMDAwMFowOjE4MDYGA1UEAwwv\n-----END CERTIFICATE-----\n"
)


def list_clusters(ctx: Context) -> Response:
    """GET /v2/databases (``tag_name`` filters)."""
    tag = ctx.q("tag_name")
    clusters = [c for c in ctx.world.clusters.values() if not tag or tag in c.tags]
    return Response(200, {"databases": [ctx.world.cluster_json(c) for c in clusters]})


def create_cluster(ctx: Context) -> Response:
    """POST /v2/databases (with ``backup_restore`` = point-in-time restore)."""
    c = ctx.world.create_cluster(ctx.json_body())
    return Response(201, {"database": ctx.world.cluster_json(c)})


def get_cluster(ctx: Context) -> Response:
    """GET /v2/databases/{uuid}."""
    return Response(200, {"database": ctx.world.cluster_json(ctx.world.cluster(ctx.params["database_cluster_uuid"]))})


def delete_cluster(ctx: Context) -> Response:
    """DELETE /v2/databases/{uuid}."""
    ctx.world.delete_cluster(ctx.params["database_cluster_uuid"])
    return Response(204)


def list_replicas(ctx: Context) -> Response:
    """GET .../replicas."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"replicas": [ctx.world.replica_json(c, r) for r in c.replicas.values()]})


def create_replica(ctx: Context) -> Response:
    """POST .../replicas."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    r = ctx.world.create_replica(c, ctx.json_body())
    return Response(201, {"replica": ctx.world.replica_json(c, r)})


def get_replica(ctx: Context) -> Response:
    """GET .../replicas/{name}."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"replica": ctx.world.replica_json(c, ctx.world.replica(c, ctx.params["replica_name"]))})


def delete_replica(ctx: Context) -> Response:
    """DELETE .../replicas/{name}."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    ctx.world.replica(c, ctx.params["replica_name"])
    del c.replicas[ctx.params["replica_name"]]
    return Response(204)


def promote_replica(ctx: Context) -> Response:
    """PUT .../replicas/{name}/promote: 204, no body."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    ctx.world.promote_replica(c, ctx.params["replica_name"])
    return Response(204)


def list_backups(ctx: Context) -> Response:
    """GET .../backups."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    backups = [{"created_at": iso(b.created_at.timestamp()), "size_gigabytes": b.size_gb}
               for b in ctx.world.backups(c)]
    return Response(200, {"backups": backups, "scheduled_backup_time": {
        "backup_hour": c.backup_hour, "backup_minute": 13, "backup_interval_hours": 24}})


def get_firewall(ctx: Context) -> Response:
    """GET .../firewall."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"rules": [dict(r) for r in c.firewall]})


def put_firewall(ctx: Context) -> Response:
    """PUT .../firewall: replace all rules; 204."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    rules = ctx.json_body().get("rules")
    if not isinstance(rules, list):
        raise ApiError.bad_request("rules must be a list")
    ctx.world.set_firewall(c, rules)
    return Response(204)


def list_pools(ctx: Context) -> Response:
    """GET .../pools (connections point at the cluster with the pool as database)."""
    world = ctx.world
    c = world.cluster(ctx.params["database_cluster_uuid"])
    pools = []
    for p in c.pools:
        conn = world.cluster_json(c)["connection"]
        pool_conn = {**conn, "database": p["name"],
                     "uri": conn["uri"].replace(f"/{conn['database']}?", f"/{p['name']}?")}
        pools.append({"name": p["name"], "mode": p.get("mode", "transaction"), "size": int(p.get("size", 10)),
                      "db": p.get("db", "defaultdb"), "user": p.get("user", "doadmin"),
                      "connection": pool_conn, "private_connection": dict(pool_conn)})
    return Response(200, {"pools": pools})


def list_events(ctx: Context) -> Response:
    """GET .../events."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"events": [dict(e) for e in reversed(c.events)]})


def get_ca(ctx: Context) -> Response:
    """GET .../ca: base64 of the PEM, as DigitalOcean returns it."""
    ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"ca": {"certificate": base64.b64encode(_FAKE_CA.encode()).decode()}})


def _redis_cluster(ctx: Context) -> Cluster:
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    if c.engine not in REDIS_ENGINES:
        raise ApiError.unprocessable("eviction policy is only available for Redis and Valkey clusters")
    return c


def get_eviction(ctx: Context) -> Response:
    """GET .../eviction_policy."""
    return Response(200, {"eviction_policy": _redis_cluster(ctx).eviction_policy or "noeviction"})


def put_eviction(ctx: Context) -> Response:
    """PUT .../eviction_policy: 204."""
    c = _redis_cluster(ctx)
    policy = ctx.json_body().get("eviction_policy")
    if policy not in EVICTION_POLICIES:
        raise ApiError.unprocessable(f"eviction_policy must be one of {', '.join(EVICTION_POLICIES)}")
    c.eviction_policy = policy
    c.add_event("cluster_update", ctx.world.clock())
    return Response(204)


def put_maintenance(ctx: Context) -> Response:
    """PUT .../maintenance: set the window; 204."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    body = ctx.json_body()
    day, hour = body.get("day"), body.get("hour")
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if not isinstance(day, str) or day.lower() not in days or not isinstance(hour, str):
        raise ApiError.unprocessable("day must be a weekday name and hour a time like 04:00")
    c.maintenance = {**c.maintenance, "day": day.lower(), "hour": hour if hour.count(":") == 2 else hour + ":00"}
    return Response(204)


def install_update(ctx: Context) -> Response:
    """PUT .../install_update: apply pending maintenance now; 204."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    c.maintenance = {**c.maintenance, "pending": False, "description": []}
    c.add_event("cluster_maintenance_perform", ctx.world.clock())
    return Response(204)


def register(router: Router) -> None:
    """Add the database routes."""
    router.add("GET", "/v2/databases", list_clusters)
    router.add("POST", "/v2/databases", create_cluster)
    router.add("GET", D, get_cluster)
    router.add("DELETE", D, delete_cluster)
    router.add("GET", D + "/replicas", list_replicas)
    router.add("POST", D + "/replicas", create_replica)
    router.add("GET", D + "/replicas/{replica_name}", get_replica)
    router.add("DELETE", D + "/replicas/{replica_name}", delete_replica)
    router.add("PUT", D + "/replicas/{replica_name}/promote", promote_replica)
    router.add("GET", D + "/backups", list_backups)
    router.add("GET", D + "/firewall", get_firewall)
    router.add("PUT", D + "/firewall", put_firewall)
    router.add("GET", D + "/pools", list_pools)
    router.add("GET", D + "/events", list_events)
    router.add("GET", D + "/ca", get_ca)
    router.add("GET", D + "/eviction_policy", get_eviction)
    router.add("PUT", D + "/eviction_policy", put_eviction)
    router.add("PUT", D + "/maintenance", put_maintenance)
    router.add("PUT", D + "/install_update", install_update)
