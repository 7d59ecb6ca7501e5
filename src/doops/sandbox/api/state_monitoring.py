"""Monitoring, Uptime and Functions triggers in the twin's world: what watches the platform and what runs on
its schedule (app metrics, Uptime check state, scheduled trigger runs).

Uptime is probed, not made up: a check whose target is on loopback (an app's live URL in the sandbox) is asked
over HTTP, as DigitalOcean's probes ask the real target: 2xx/3xx is UP, anything else (an error status, a
refused connection, a timeout) is DOWN; an API-level app-unhealthy fault on the check's app also makes it DOWN.
A target off loopback is never contacted (the sandbox reaches no network): an app's check then follows the
app's health in the API, any other check stays UP. Every region shares the one probe.

A state change is recorded when a probe first sees it and kept: ``status_changed_at`` and ``previous_outage``
are history, not recomputed per request. Probes run when the state is asked and, on a world backed by real app
servers, every :data:`PROBE_INTERVAL` seconds in a background thread, so an outage nobody asked about is
recorded too. ``thirty_day_uptime_percentage`` is computed from the recorded outages since the check exists.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from croniter import croniter

from doops.sandbox.api.backends import FakeAppBackend
from doops.sandbox.api.errors import ApiError
from doops.sandbox.api.resources import App, Check, Store, iso
from doops.sandbox.api.state_apps import AppPlatform

log = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0  # seconds between background probes of each check
PROBE_TIMEOUT = 2.0  # a target slower than this is DOWN
THIRTY_DAYS = 30 * 86400
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Probe = Callable[[str], "bool | None"]


_probe_client: httpx.Client | None = None
_probe_client_lock = threading.Lock()


def probe_client() -> httpx.Client:
    """The one client every probe uses. Why not ``httpx.get``: each call builds a new TLS context (the CA
    bundle parsed again, tens of milliseconds of CPU), and the prober asks every check every second: that
    was a third of an idle sandbox's CPU. No keep-alive: each probe connects afresh, as an outside probe does,
    so a server that stopped is seen at once."""
    global _probe_client
    with _probe_client_lock:
        if _probe_client is None:
            _probe_client = httpx.Client(timeout=PROBE_TIMEOUT, follow_redirects=False, trust_env=False,
                                         limits=httpx.Limits(max_keepalive_connections=0))
        return _probe_client


def http_probe(url: str) -> bool | None:
    """Whether ``url`` answers 2xx/3xx; None when it is off loopback (never contacted: the sandbox has no
    network)."""
    if urlsplit(url).hostname not in LOOPBACK_HOSTS:
        return None
    try:
        resp = probe_client().get(url)
    except httpx.HTTPError:
        return False
    return 200 <= resp.status_code < 400


@dataclass
class _Outage:
    started_at: float
    ended_at: float | None = None  # None while it lasts


@dataclass
class _Track:
    """One check's recorded history: its status, when it last changed, its outages."""

    status: str
    changed_at: float
    probed_at: float = float("-inf")
    outages: list[_Outage] = field(default_factory=list)

    def observe(self, up: bool, at: float) -> None:
        """Record one probe's answer, taken at ``at``; a change is stamped with that time."""
        if at < self.probed_at:
            return  # an older probe that finished late
        self.probed_at = at
        status = "UP" if up else "DOWN"
        if status == self.status:
            return
        if status == "DOWN":
            self.outages.append(_Outage(at))
        elif self.outages and self.outages[-1].ended_at is None:
            self.outages[-1].ended_at = at
        self.status, self.changed_at = status, at

    def previous_outage(self) -> _Outage | None:
        """The latest outage that ended."""
        return next((o for o in reversed(self.outages) if o.ended_at is not None), None)

    def uptime_percentage(self, since: float, now: float) -> float:
        """Share of the last 30 days (or of the check's life, if shorter) the target was up."""
        start = max(since, now - THIRTY_DAYS)
        if now <= start:
            return 100.0
        down = sum(max(0.0, min(o.ended_at if o.ended_at is not None else now, now) - max(o.started_at, start))
                   for o in self.outages)
        return round(100.0 * (1.0 - down / (now - start)), 4)


class Monitoring:
    """App metrics, Uptime checks and Functions triggers, on a world's store; health comes from App Platform."""

    def __init__(self, store: Store, app_platform: AppPlatform, probe: Probe = http_probe) -> None:
        self.store = store
        self.app_platform = app_platform
        self.probe = probe
        self._tracks: dict[str, _Track] = {}
        self._tracks_lock = threading.Lock()
        self._prober_stop: threading.Event | None = None
        self._prober: threading.Thread | None = None
        if not isinstance(store.app_backend, FakeAppBackend):
            self.start_prober()  # real app servers: watch them from the start, as Uptime does

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

    # -- Uptime -------------------------------------------------------------------------------------------

    def _track(self, c: Check) -> _Track:
        with self._tracks_lock:
            track = self._tracks.get(c.id)
            if track is None:  # a check's history starts UP at its creation
                track = self._tracks[c.id] = _Track("UP", c.created_at)
            return track

    def _fault_covers(self, c: Check) -> bool:
        return c.app_name is not None and self.store.faults.app_is_unhealthy(c.app_name)

    def probe_check(self, c: Check, *, derive: bool = True) -> bool | None:
        """Probe the check's target now and record what it answered; returns whether it is up. A target that
        cannot be probed is derived from the app's API health when ``derive`` (else None, nothing recorded)."""
        at = self.store.clock()
        up = self.probe(c.target)
        if up is None:
            if not derive:
                return None
            app = self.store.find_app_by_name(c.app_name) if c.app_name else None
            up = app is None or self.app_platform.app_healthy(app)
        up = up and not self._fault_covers(c)
        track = self._track(c)
        with self._tracks_lock:
            track.observe(up, at)
        return up

    def probe_all(self) -> int:
        """One background round: probe every enabled check whose target can be probed; returns how many."""
        done = 0
        for c in list(self.store.checks.values()):
            if c.enabled and self.probe_check(c, derive=False) is not None:
                done += 1
        return done

    def start_prober(self, interval: float = PROBE_INTERVAL) -> None:
        """Probe the checks every ``interval`` s in a daemon thread (until :meth:`stop_prober` or this world is
        gone: the thread holds it only weakly)."""
        if self._prober is not None and self._prober.is_alive():
            return
        stop = threading.Event()
        ref = weakref.ref(self)

        def run() -> None:
            while not stop.wait(interval):
                monitoring = ref()
                if monitoring is None:
                    return
                try:
                    monitoring.probe_all()
                except Exception:  # a broken round must not end the watching
                    log.exception("uptime probe round failed")
                del monitoring

        self._prober_stop = stop
        self._prober = threading.Thread(target=run, name="uptime-prober", daemon=True)
        self._prober.start()

    def stop_prober(self) -> None:
        """Stop the background probes (idempotent)."""
        if self._prober_stop is not None:
            self._prober_stop.set()
        if self._prober is not None:
            self._prober.join(timeout=PROBE_TIMEOUT + 1)
            self._prober = None

    def recorded(self, c: Check) -> tuple[str, float, float]:
        """(status, when it last changed, when the latest recorded probe was taken) as recorded, without
        probing."""
        track = self._track(c)
        with self._tracks_lock:
            return track.status, track.changed_at, track.probed_at

    def check_up(self, c: Check) -> bool:
        """Whether the check's target is up now (probed)."""
        return bool(self.probe_check(c))

    def check_state(self, c: Check) -> dict[str, Any]:
        """GET /v2/uptime/checks/{id}/state: the target probed now, on the recorded history."""
        if c.enabled:
            self.probe_check(c)
        track = self._track(c)
        now = self.store.clock()
        with self._tracks_lock:
            status, changed = track.status, track.changed_at
            percentage = track.uptime_percentage(c.created_at, now)
            outage = track.previous_outage()
        regions = {r: {"status": status, "status_changed_at": iso(changed),
                       "thirty_day_uptime_percentage": percentage} for r in c.regions}
        state: dict[str, Any] = {"regions": regions}
        if outage is not None and outage.ended_at is not None:
            state["previous_outage"] = {"region": c.regions[0] if c.regions else "us_east",
                                        "started_at": iso(outage.started_at), "ended_at": iso(outage.ended_at),
                                        # whole seconds, as the two times above show them
                                        "duration_seconds": math.floor(outage.ended_at) - math.floor(outage.started_at)}
        return {"state": state}
