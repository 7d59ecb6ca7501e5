"""/v2/apps routes: apps, deployments, health, rollback, restart, app alerts."""

from __future__ import annotations

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import App
from doops.sandbox.api.routing import Context, Response, Router


def _app(ctx: Context, key: str = "app_id") -> App:
    return ctx.world.app(ctx.params[key])


def list_apps(ctx: Context) -> Response:
    """GET /v2/apps (paginated)."""
    apps = sorted(ctx.world.apps.values(), key=lambda a: a.name)
    return Response(200, ctx.paginate("apps", [ctx.world.app_json(a) for a in apps]))


def get_app(ctx: Context) -> Response:
    """GET /v2/apps/{id} (``?name=`` looks the app up by name when the id is unknown)."""
    world = ctx.world
    app = world.apps.get(ctx.params["id"])
    if app is None:
        name = ctx.q("name") or ctx.params["id"]
        app = world.find_app_by_name(name)
    if app is None:
        raise ApiError.not_found()
    return Response(200, {"app": world.app_json(app)})


def list_deployments(ctx: Context) -> Response:
    """GET .../deployments (newest first, paginated)."""
    app = _app(ctx)
    deps = sorted(app.deployments, key=lambda d: d.created_at, reverse=True)
    return Response(200, ctx.paginate("deployments", [ctx.world.deployment_json(app, d) for d in deps]))


def create_deployment(ctx: Context) -> Response:
    """POST .../deployments."""
    app = _app(ctx)
    dep = ctx.world.create_deployment(app, bool(ctx.json_body().get("force_build", False)))
    return Response(200, {"deployment": ctx.world.deployment_json(app, dep)})


def get_deployment(ctx: Context) -> Response:
    """GET .../deployments/{deployment_id}."""
    app = _app(ctx)
    dep = ctx.world.deployment(app, ctx.params["deployment_id"])
    return Response(200, {"deployment": ctx.world.deployment_json(app, dep)})


def health(ctx: Context) -> Response:
    """GET /v2/apps/{app_id}/health."""
    return Response(200, ctx.world.app_health(_app(ctx)))


def _deployment_id(ctx: Context) -> str:
    dep_id = ctx.json_body().get("deployment_id")
    if not isinstance(dep_id, str) or not dep_id:
        raise ApiError.bad_request("deployment_id is required")
    return dep_id


def rollback(ctx: Context) -> Response:
    """POST .../rollback."""
    app = _app(ctx)
    dep = ctx.world.rollback(app, _deployment_id(ctx), bool(ctx.json_body().get("skip_pin", False)))
    return Response(200, {"deployment": ctx.world.deployment_json(app, dep)})


def validate_rollback(ctx: Context) -> Response:
    """POST .../rollback/validate."""
    return Response(200, ctx.world.validate_rollback(_app(ctx), _deployment_id(ctx)))


def commit_rollback(ctx: Context) -> Response:
    """POST .../rollback/commit: 200 with an empty body (the spec documents no content)."""
    ctx.world.commit_rollback(_app(ctx))
    return Response(200, {})


def revert_rollback(ctx: Context) -> Response:
    """POST .../rollback/revert."""
    app = _app(ctx)
    dep = ctx.world.revert_rollback(app)
    return Response(200, {"deployment": ctx.world.deployment_json(app, dep)})


def restart(ctx: Context) -> Response:
    """POST .../restart."""
    app = _app(ctx)
    comps = ctx.json_body().get("components")
    if comps is not None and not (isinstance(comps, list) and all(isinstance(c, str) for c in comps)):
        raise ApiError.bad_request("components must be a list of component names")
    dep = ctx.world.restart(app, comps or None)
    return Response(200, {"deployment": ctx.world.deployment_json(app, dep)})


def list_alerts(ctx: Context) -> Response:
    """GET .../alerts (App Platform alerts)."""
    return Response(200, {"alerts": [dict(a) for a in _app(ctx).alerts]})


def register(router: Router) -> None:
    """Add the app routes."""
    a = "/v2/apps/{app_id}"
    router.add("GET", "/v2/apps", list_apps, paginated=True)
    router.add("GET", "/v2/apps/{id}", get_app)
    router.add("GET", a + "/deployments", list_deployments, paginated=True)
    router.add("POST", a + "/deployments", create_deployment)
    router.add("GET", a + "/deployments/{deployment_id}", get_deployment)
    router.add("GET", a + "/health", health)
    router.add("POST", a + "/rollback", rollback)
    router.add("POST", a + "/rollback/validate", validate_rollback)
    router.add("POST", a + "/rollback/commit", commit_rollback)
    router.add("POST", a + "/rollback/revert", revert_rollback)
    router.add("POST", a + "/restart", restart)
    router.add("GET", a + "/alerts", list_alerts)
