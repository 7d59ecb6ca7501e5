"""App Platform in the twin's world: deployments walking their phases, rollback, restart, component health.

What the spec leaves open (phases, SUPERSEDED, pinning, health) is listed in :mod:`doops.sandbox.api.state`.

A bad release (the ``bad-release`` fault) marks the app's next deployment (any but a rollback) with the fault's
id. The mark follows the release, not the deployment: a restart or redeploy of a marked release is marked, a
rollback carries its target's mark (none, for the release before the bad one), a revert the mark of the
release it restores. While the active deployment carries the mark of a fault still set, every component is
UNHEALTHY with no replica ready, and the live server (which asks :meth:`AppPlatform.bad_release_active`) fails
its health paths; clearing the fault heals it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import APP_REGIONS, App, Deployment, Store, iso

STEP_NAMES = ("initialize", "build", "deploy")  # one per phase before ACTIVE


class AppPlatform:
    """Apps, their deployments and their health, on a world's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def deployment_phase(self, app: App, dep: Deployment) -> str:
        """The deployment's phase now (see doops.sandbox.api.state for SUPERSEDED)."""
        if dep.fixed_phase:
            return dep.fixed_phase
        elapsed = self.store.clock() - dep.created_at
        step = self.store.durations.deployment_phase
        if elapsed < step:
            return "PENDING_BUILD"
        if elapsed < 2 * step:
            return "BUILDING"
        if elapsed < 3 * step:
            return "DEPLOYING"
        active = self.active_deployment(app)
        return "ACTIVE" if active is not None and active.id == dep.id else "SUPERSEDED"

    def _done(self, dep: Deployment) -> bool:
        step = self.store.durations.deployment_phase
        return dep.fixed_phase is None and self.store.clock() - dep.created_at >= 3 * step

    def active_deployment(self, app: App) -> Deployment | None:
        """The newest deployment that finished."""
        done = [d for d in app.deployments if self._done(d)]
        return max(done, key=lambda d: d.created_at) if done else None

    def in_progress_deployment(self, app: App) -> Deployment | None:
        """The newest deployment still on its way."""
        going = [d for d in app.deployments if d.fixed_phase is None and not self._done(d)]
        return max(going, key=lambda d: d.created_at) if going else None

    def deployment(self, app: App, dep_id: str) -> Deployment:
        """The deployment or a 404."""
        for d in app.deployments:
            if d.id == dep_id:
                return d
        raise ApiError.not_found()

    def finished_at(self, dep: Deployment) -> float | None:
        """When the deployment became ACTIVE (None if it has not, or never will)."""
        if dep.fixed_phase is not None:
            return None
        return dep.created_at + 3 * self.store.durations.deployment_phase

    def _superseded_at(self, app: App, dep: Deployment) -> float | None:
        """When a newer deployment became ACTIVE over this one."""
        now = self.store.clock()
        times = [t for d in app.deployments
                 if d.created_at > dep.created_at and (t := self.finished_at(d)) is not None and t <= now]
        return min(times) if times else None

    def _steps(self, dep: Deployment, phase: str) -> list[dict[str, Any]]:
        """The progress steps, each with the times it started and ended: initialize while PENDING_BUILD, build
        while BUILDING, deploy while DEPLOYING. An ERROR deployment failed in its build; a CANCELED one stopped
        after initialize."""
        step = self.store.durations.deployment_phase
        now = self.store.clock()
        out: list[dict[str, Any]] = []
        for i, name in enumerate(STEP_NAMES):
            start, end = dep.created_at + i * step, dep.created_at + (i + 1) * step
            if phase == "ERROR" and name == "build":
                out.append({"name": name, "status": "ERROR", "started_at": iso(start), "ended_at": iso(end),
                            "reason": {"code": "BuildJobFailed", "message": "the build job failed"}})
                continue
            if phase in ("ERROR", "CANCELED") and i > 0:
                out.append({"name": name, "status": "PENDING"})
            elif now >= end or (phase in ("ERROR", "CANCELED") and i == 0):
                out.append({"name": name, "status": "SUCCESS", "started_at": iso(start), "ended_at": iso(end)})
            elif now >= start:
                out.append({"name": name, "status": "RUNNING", "started_at": iso(start)})
            else:
                out.append({"name": name, "status": "PENDING"})
        return out

    def deployment_json(self, app: App, dep: Deployment) -> dict[str, Any]:
        """A deployment as the API shows it."""
        phase = self.deployment_phase(app, dep)
        step = self.store.durations.deployment_phase
        steps = self._steps(dep, phase)
        if phase == "SUPERSEDED":
            changed = self._superseded_at(app, dep) or dep.created_at + 3 * step
        elif phase in ("ERROR", "CANCELED"):
            changed = dep.created_at + (2 if phase == "ERROR" else 1) * step
        else:
            changed = dep.created_at + step * {"PENDING_BUILD": 0, "BUILDING": 1, "DEPLOYING": 2}.get(phase, 3)
        commit = hashlib.sha1(dep.id.encode()).hexdigest()
        count = {s: sum(1 for x in steps if x["status"] == s) for s in ("SUCCESS", "ERROR", "PENDING", "RUNNING")}
        out: dict[str, Any] = {
            "id": dep.id, "cause": dep.cause, "phase": phase, "created_at": iso(dep.created_at),
            "updated_at": iso(changed), "phase_last_updated_at": iso(changed), "spec": dep.spec,
            "tier_slug": "basic",
            "progress": {
                "success_steps": count["SUCCESS"], "total_steps": len(steps), "error_steps": count["ERROR"],
                "pending_steps": count["PENDING"], "running_steps": count["RUNNING"], "steps": steps,
            },
            "services": [{"name": s["name"], "source_commit_hash": commit} for s in dep.spec.get("services", [])],
            "static_sites": [{"name": s["name"], "source_commit_hash": commit}
                             for s in dep.spec.get("static_sites", [])],
        }
        if dep.cloned_from:
            out["cloned_from"] = dep.cloned_from
        return out

    def live_url(self, app: App) -> str:
        """The app's live URL (the backend's real one when it has it)."""
        return self.store.app_backend.live_url(app.name) or f"https://{app.hostname}"

    def app_json(self, app: App) -> dict[str, Any]:
        """An app as the API shows it."""
        label, flag, continent, dcs = APP_REGIONS.get(app.region, (app.region, "us", "North America", []))
        url = self.live_url(app)
        out: dict[str, Any] = {
            "id": app.id, "owner_uuid": self.store.account["uuid"], "spec": app.spec,
            "default_ingress": f"https://{app.hostname}", "created_at": iso(app.created_at),
            "updated_at": iso(app.updated_at), "live_url": url, "live_url_base": url,
            "live_domain": url.split("://", 1)[-1].split("/", 1)[0], "tier_slug": "basic",
            "project_id": self.store.project_id,
            "region": {"slug": app.region, "label": label, "flag": flag, "continent": continent,
                       "data_centers": dcs, "default": app.region == "nyc"},
        }
        active = self.active_deployment(app)
        if active is not None:
            out["active_deployment"] = self.deployment_json(app, active)
        going = self.in_progress_deployment(app)
        if going is not None:
            out["in_progress_deployment"] = self.deployment_json(app, going)
        if app.deployments:
            out["last_deployment_created_at"] = iso(max(d.created_at for d in app.deployments))
        if active is not None:
            # Not in the OpenAPI spec, but in the real answer (godo's App.LastDeploymentActiveAt): when the
            # active deployment became ACTIVE.
            out["last_deployment_active_at"] = iso(self.finished_at(active) or active.created_at)
        if app.pinned:
            out["pinned_deployment"] = self.deployment_json(app, self.deployment(app, app.pinned))
        return out

    def new_deployment(self, app: App, cause: str, spec: dict[str, Any] | None = None,
                       cloned_from: str | None = None, release_of: Deployment | None = None,
                       rollback: bool = False) -> Deployment:
        """Start a deployment of ``spec`` (default: the app's current spec). ``release_of``: the deployment whose
        release it runs (default: the newest), so a bad release's mark follows it; an armed bad-release fault
        marks it unless it is a rollback."""
        now = self.store.clock()
        if release_of is None and app.deployments:
            release_of = max(app.deployments, key=lambda d: d.created_at)
        mark = release_of.bad_release if release_of is not None else None
        if not rollback:
            used = {d.bad_release for d in app.deployments}
            armed = [f for f in self.store.faults.bad_release_ids(app.name) if f not in used]
            mark = armed[0] if armed else mark
        dep = Deployment(str(uuid.uuid4()), now, cause, dict(spec or app.spec), cloned_from, bad_release=mark)
        app.deployments.append(dep)
        app.spec = dict(dep.spec)
        app.updated_at = now
        return dep

    def create_deployment(self, app: App, force_build: bool = False) -> Deployment:
        """POST /v2/apps/{id}/deployments."""
        if app.pinned:
            raise ApiError.bad_request("app is pinned to a rollback deployment; commit or revert it first")
        return self.new_deployment(app, "manual" + (" (force build)" if force_build else ""))

    def validate_rollback(self, app: App, dep_id: str) -> dict[str, Any]:
        """POST .../rollback/validate."""
        target = self.deployment(app, dep_id)
        active = self.active_deployment(app)
        if app.pinned:
            return {"valid": False, "error": {"code": "app_pinned", "message": "app is pinned"}, "warnings": []}
        if target.fixed_phase in ("ERROR", "CANCELED"):
            result = "failed" if target.fixed_phase == "ERROR" else "canceled"
            return {"valid": False, "warnings": [],
                    "error": {"code": "incompatible_result",
                              "message": f'deployment result "{result}" is unsuitable for rollback'}}
        if not self._done(target) or (active is not None and active.id == target.id):
            return {"valid": False, "warnings": [],
                    "error": {"code": "incompatible_phase",
                              "message": f"deployment {dep_id} is not a previous successful deployment"}}
        return {"valid": True, "warnings": []}

    def rollback(self, app: App, dep_id: str, skip_pin: bool = False) -> Deployment:
        """POST .../rollback: a new deployment from the target's spec; pins the app unless skip_pin."""
        verdict = self.validate_rollback(app, dep_id)
        if not verdict["valid"]:
            raise ApiError.bad_request(verdict["error"]["message"])
        target = self.deployment(app, dep_id)
        before = dict(app.spec)
        dep = self.new_deployment(app, f"manual rollback to {dep_id}", target.spec, cloned_from=dep_id,
                                  release_of=target, rollback=True)
        if not skip_pin:
            app.pinned, app.pre_rollback_spec = dep.id, before
        return dep

    def commit_rollback(self, app: App) -> None:
        """POST .../rollback/commit."""
        if not app.pinned:
            raise ApiError.bad_request("no rollback in progress")
        app.pinned, app.pre_rollback_spec = None, None

    def revert_rollback(self, app: App) -> Deployment:
        """POST .../rollback/revert."""
        if not app.pinned:
            raise ApiError.bad_request("no rollback in progress")
        spec = app.pre_rollback_spec or app.spec
        pinned = self.deployment(app, app.pinned)
        before = [d for d in app.deployments if d.created_at < pinned.created_at and self._done(d)]
        app.pinned, app.pre_rollback_spec = None, None
        return self.new_deployment(app, "rollback reverted", spec,
                                   release_of=max(before, key=lambda d: d.created_at) if before else None)

    def restart(self, app: App, components: list[str] | None) -> Deployment:
        """POST .../restart: a rolling restart is a new deployment of the same spec."""
        names = {n for n, _, _ in app.components()}
        unknown = set(components or []) - names
        if unknown:
            raise ApiError.bad_request(f"unknown components: {', '.join(sorted(unknown))}")
        what = ", ".join(components) if components else "all components"
        return self.new_deployment(app, f"app restart ({what})")

    def bad_release_active(self, app: App) -> bool:
        """Whether the active deployment runs a bad release whose fault is still set. Takes no lock (the live
        server asks it from its own threads): it only reads."""
        active = self.active_deployment(app)
        mark = active.bad_release if active is not None else None
        return mark is not None and self.store.faults.is_active(mark)

    def component_healthy(self, app: App, component: str) -> bool:
        """Fault-injected or backend-reported health of one component."""
        if self.store.faults.app_is_unhealthy(app.name, component) or self.bad_release_active(app):
            return False
        return self.store.app_backend.healthy(app.name, component)

    def app_health(self, app: App) -> dict[str, Any]:
        """GET /v2/apps/{id}/health."""
        comps = []
        for name, _kind, desired in app.components():
            ok = self.component_healthy(app, name)
            seed = int(hashlib.sha1(f"{app.id}/{name}".encode()).hexdigest()[:4], 16)
            comps.append({
                "name": name, "state": "HEALTHY" if ok else "UNHEALTHY", "replicas_desired": desired,
                "replicas_ready": desired if ok else 0,
                "cpu_usage_percent": round(12.0 + seed % 20, 2) if ok else 0.0,
                "memory_usage_percent": round(35.0 + seed % 25, 2) if ok else 0.0,
            })
        return {"app_health": {"components": comps, "functions_components": []}}

    def app_healthy(self, app: App) -> bool:
        """Whether every component is healthy."""
        return all(self.component_healthy(app, n) for n, _, _ in app.components())
