"""Monitoring, Uptime and Functions triggers in the twin's world: what watches the platform and what runs on
its schedule (app metrics, Uptime check state, scheduled trigger runs).
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import App, Check, Store, iso
from doops.sandbox.api.state_apps import AppPlatform


class Monitoring:
    """App metrics, Uptime checks and Functions triggers, on a world's store; health comes from App Platform."""

    def __init__(self, store: Store, app_platform: AppPlatform) -> None:
        self.store = store
        self.app_platform = app_platform

    def app_metrics(self, app: App, component: str | None, start: int, end: int, kind: str) -> dict[str, Any]:
        """GET /v2/monitoring/metrics/apps/{cpu,memory}_percentage: synthetic matrix series."""
        if end < start:
            raise ApiError.bad_request("end must not be before start")
        step = max(300, math.ceil((end - start) / 300))
        result = []
        for name, _kind, _desired in app.components():
            if component and name != component:
                continue
            ok = self.app_platform.component_healthy(app, name)
            seed = int(hashlib.sha1(f"{app.id}/{name}/{kind}".encode()).hexdigest()[:4], 16) % 20
            base = 15.0 + seed if kind == "cpu" else 40.0 + seed
            values: list[list[int | str]] = []
            t = start - start % step
            while t <= end:
                v = base + 8.0 * math.sin(t / 3600.0) if ok else 0.0
                values.append([t, f"{max(v, 0.0):.3f}"])
                t += step
            result.append({"metric": {"app_component": name, "app_uuid": app.id}, "values": values})
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def namespace(self, ns_id: str) -> dict[str, Any]:
        """The namespace (by its ``fn-...`` id or uuid) or a 404."""
        namespaces = self.store.namespaces
        ns = namespaces.get(ns_id) or next((n for n in namespaces.values() if n["uuid"] == ns_id), None)
        if ns is None:
            raise ApiError.not_found()
        return ns

    @staticmethod
    def namespace_json(ns: dict[str, Any]) -> dict[str, Any]:
        """A namespace as the API shows it."""
        return {k: v for k, v in ns.items() if k != "triggers"}

    def trigger_json(self, ns: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
        """A SCHEDULED trigger with plausible last and next runs."""
        now = datetime.fromtimestamp(self.store.clock(), UTC)
        it = croniter(t["cron"], now)
        nxt = it.get_next(datetime)
        prev = croniter(t["cron"], now).get_prev(datetime)
        last = prev + timedelta(seconds=2)
        if t.get("last_run_ago") is not None:
            last = now - timedelta(seconds=float(t["last_run_ago"]))
        if last > now:
            last = prev
        return {
            "namespace": ns["namespace"], "name": t["name"], "function": t["function"], "type": "SCHEDULED",
            "is_enabled": t["is_enabled"], "created_at": t["created_at"], "updated_at": t["updated_at"],
            "scheduled_details": {"cron": t["cron"], "body": {}},
            "scheduled_runs": {"last_run_at": last.strftime("%Y-%m-%dT%H:%M:%SZ") if t["is_enabled"] else None,
                               "next_run_at": nxt.strftime("%Y-%m-%dT%H:%M:%SZ") if t["is_enabled"] else None},
        }

    def check(self, check_id: str) -> Check:
        """The check or a 404."""
        c = self.store.checks.get(check_id)
        if c is None:
            raise ApiError.not_found()
        return c

    @staticmethod
    def check_json(c: Check) -> dict[str, Any]:
        """An Uptime check as the API shows it."""
        return {"id": c.id, "name": c.name, "type": c.type, "target": c.target, "regions": list(c.regions),
                "enabled": c.enabled}

    def check_up(self, c: Check) -> bool:
        """Whether the check's target is up (only app targets can go down in the twin)."""
        if c.app_name is None:
            return True
        app = self.store.find_app_by_name(c.app_name)
        return app is None or self.app_platform.app_healthy(app)

    def check_state(self, c: Check) -> dict[str, Any]:
        """GET /v2/uptime/checks/{id}/state."""
        up = self.check_up(c)
        now = self.store.clock()
        changed = iso(now - 5 * 86400) if up else iso(now - 30)
        regions = {r: {"status": "UP" if up else "DOWN", "status_changed_at": changed,
                       "thirty_day_uptime_percentage": 99.98 if up else 99.2} for r in c.regions}
        return {"state": {"regions": regions, "previous_outage": {
            "region": c.regions[0] if c.regions else "us_east", "started_at": iso(now - 12 * 86400),
            "ended_at": iso(now - 12 * 86400 + 240), "duration_seconds": 240}}}
