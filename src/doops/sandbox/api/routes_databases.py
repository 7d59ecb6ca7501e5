"""/v2/databases routes (not paginated, per the spec)."""

from __future__ import annotations

import base64

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import REDIS_ENGINES, Cluster, iso
from doops.sandbox.api.routing import Context, Response, Router

D = "/v2/databases/{database_cluster_uuid}"
EVICTION_POLICIES = ("noeviction", "allkeys_lru", "allkeys_random", "volatile_lru", "volatile_random",
                     "volatile_ttl")


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
    """PUT .../firewall: replace all rules; 204. A rule of a type outside the spec's enum, an IPv6 or malformed
    address, an unknown app or over 100 rules is a 422 and changes nothing."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    rules = ctx.json_body().get("rules")
    if not isinstance(rules, list):
        raise ApiError.unprocessable("rules must be a list of {type, value} objects")
    ctx.world.set_firewall(c, rules)
    return Response(204)


def list_pools(ctx: Context) -> Response:
    """GET .../pools: each pool's connection is its PgBouncer's (database = the pool's name)."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"pools": [ctx.world.pool_json(c, p) for p in c.pools]})


def get_pool(ctx: Context) -> Response:
    """GET .../pools/{pool_name}."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"pool": ctx.world.pool_json(c, ctx.world.pool(c, ctx.params["pool_name"]))})


def list_users(ctx: Context) -> Response:
    """GET .../users."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"users": ctx.world.users_json(c)})


def get_user(ctx: Context) -> Response:
    """GET .../users/{username}."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    user = next((u for u in ctx.world.users_json(c) if u["name"] == ctx.params["username"]), None)
    if user is None:
        raise ApiError.not_found()
    return Response(200, {"user": user})


def list_dbs(ctx: Context) -> Response:
    """GET .../dbs."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"dbs": [{"name": n} for n in c.db_names]})


def get_db(ctx: Context) -> Response:
    """GET .../dbs/{database_name}."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    if ctx.params["database_name"] not in c.db_names:
        raise ApiError.not_found()
    return Response(200, {"db": {"name": ctx.params["database_name"]}})


def get_config(ctx: Context) -> Response:
    """GET .../config."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"config": ctx.world.cluster_config(c)})


def list_options(ctx: Context) -> Response:
    """GET /v2/databases/options."""
    return Response(200, ctx.world.database_options())


def get_metrics_credentials(ctx: Context) -> Response:
    """GET /v2/databases/metrics/credentials: the account's basic-auth pair for every metrics endpoint."""
    username, password = ctx.world.db_backend.metrics_credentials()
    return Response(200, {"credentials": {"basic_auth_username": username, "basic_auth_password": password}})


def put_metrics_credentials(ctx: Context) -> Response:
    """PUT /v2/databases/metrics/credentials: 204; the endpoints check the new pair at once."""
    creds = ctx.json_body().get("credentials")
    if not isinstance(creds, dict):
        raise ApiError.bad_request("credentials must be an object")
    username, password = creds.get("basic_auth_username"), creds.get("basic_auth_password")
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise ApiError.unprocessable("basic_auth_username and basic_auth_password are required")
    ctx.world.db_backend.set_metrics_credentials(username, password)
    return Response(204)


def list_events(ctx: Context) -> Response:
    """GET .../events."""
    c = ctx.world.cluster(ctx.params["database_cluster_uuid"])
    return Response(200, {"events": [dict(e) for e in reversed(c.events)]})


def get_ca(ctx: Context) -> Response:
    """GET .../ca: base64 of the PEM of the CA that signed the servers' certificates, as DigitalOcean returns it."""
    ctx.world.cluster(ctx.params["database_cluster_uuid"])
    pem = ctx.world.db_backend.ca_certificate()
    if pem is None:
        raise ApiError.not_found("this cluster has no CA certificate")
    return Response(200, {"ca": {"certificate": base64.b64encode(pem.encode()).decode()}})


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
    ctx.world.db_backend.set_eviction_policy(c.name, policy)  # the real server first: if it fails, nothing changes
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
    router.add("GET", "/v2/databases/options", list_options)
    router.add("GET", "/v2/databases/metrics/credentials", get_metrics_credentials)
    router.add("PUT", "/v2/databases/metrics/credentials", put_metrics_credentials)
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
    router.add("GET", D + "/pools/{pool_name}", get_pool)
    router.add("GET", D + "/users", list_users)
    router.add("GET", D + "/users/{username}", get_user)
    router.add("GET", D + "/dbs", list_dbs)
    router.add("GET", D + "/dbs/{database_name}", get_db)
    router.add("GET", D + "/config", get_config)
    router.add("GET", D + "/events", list_events)
    router.add("GET", D + "/ca", get_ca)
    router.add("GET", D + "/eviction_policy", get_eviction)
    router.add("PUT", D + "/eviction_policy", put_eviction)
    router.add("PUT", D + "/maintenance", put_maintenance)
    router.add("PUT", D + "/install_update", install_update)
