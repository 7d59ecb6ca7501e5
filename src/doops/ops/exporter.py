"""`doops exporter`: the judgement of `doops status`, evaluated on a schedule and kept as metrics.

One background thread evaluates (never two at once: a slow evaluation delays the next, and the metrics get
older, which ``doops_check_last_run_timestamp_seconds`` shows); a scrape only reads the latest snapshot, so
it never causes an API call. The pace is stretched so an evaluation's API requests stay under a share of the
token's per-minute budget. Library only: no printing, no sockets (the HTTP side is doops.exporter_http);
waits go through an injectable clock so unit tests run on fake time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doops.errors import UsageError
from doops.ops.status.model import CheckResult, Status, StatusReport

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from doops.drill.model import DrillRun
    from doops.platform import Platform

PER_MINUTE_BUDGET = 250  # DigitalOcean's documented requests per minute per token
DEFAULT_BUDGET_SHARE = 0.5
DEFAULT_INTERVAL = 60.0
HEALTHY_INTERVALS = 3  # /healthz fails once the last evaluation is older than this many intervals

# ``skipped`` (an integration the config does not name) is not exported: it judges nothing, and a value for it
# would either look like ok or raise an alert about something nobody asked to check.
STATUS_VALUE = {Status.OK: 0, Status.WARN: 1, Status.CRIT: 2, Status.UNKNOWN: 3}


def budget_share_of(platform: Platform, given: float | None) -> float:
    """The share of the token's budget the exporter may use: ``--budget-share``, else the config's
    ``exporter.budget_share`` (when the config knows that section), else half."""
    share = given
    if share is None:
        section = getattr(platform.config, "exporter", None)
        share = getattr(section, "budget_share", None) if section is not None else None
    share = DEFAULT_BUDGET_SHARE if share is None else float(share)
    if not 0 < share <= 1:
        raise UsageError(f"budget share {share:g} is not within (0, 1]",
                         hint="give a share of the token's per-minute budget, e.g. 0.5")
    return share


def stretched_interval(interval: float, requests: int, share: float,
                       per_minute: int = PER_MINUTE_BUDGET) -> float:
    """At least ``interval``; longer when ``requests`` per evaluation would spend more than ``share`` of the
    per-minute budget: interval = max(interval, requests / (share * per_minute / 60))."""
    allowed_per_second = share * per_minute / 60.0
    return max(interval, requests / allowed_per_second if allowed_per_second > 0 else interval)


@dataclass
class Snapshot:
    """What one finished evaluation found: the checks and the latest drill of each runbook."""

    checks: list[CheckResult]
    finished_at: float  # Unix seconds
    duration_seconds: float
    api_requests: int
    drills: list[DrillRun] = field(default_factory=list)


class ApiStatusCounter:
    """Answers of the DigitalOcean API by HTTP status, counted for the life of the process (every attempt,
    retries included; requests that got no answer are not counted: their checks say unknown)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, status: int | str) -> None:
        with self._lock:
            key = str(status)
            self.counts[key] = self.counts.get(key, 0) + 1

    def hook(self, response: Any) -> None:
        """An httpx response hook (``client.event_hooks["response"]``)."""
        self.count(response.status_code)

    def items(self) -> list[tuple[str, int]]:
        with self._lock:
            return sorted(self.counts.items())

    def install(self, platform: Platform) -> bool:
        """Count the answers of the platform's API client (False when it cannot be made, e.g. no token: the
        checks say so themselves)."""
        try:
            hooks = platform.do.http.client.event_hooks
        except Exception:
            return False
        hooks.setdefault("response", []).append(self.hook)
        platform.do.http.client.event_hooks = hooks
        return True


def latest_drills(platform: Platform) -> list[DrillRun]:
    """The newest run of each runbook in the drill history store (none when there is no store yet: the
    default SQLite file is not created just to read it)."""
    from doops.drill.history import default_history_path, open_history

    url = platform.config.drills.resolved_history_url()
    if url is None and not default_history_path().exists():
        return []
    with open_history(url) as history:
        out = []
        for runbook in history.runbooks():
            runs = history.runs(runbook, limit=1)
            if runs:
                out.append(runs[0])
        return out


@dataclass
class ExporterOptions:
    components: list[str]
    interval: float = DEFAULT_INTERVAL
    budget_share: float = DEFAULT_BUDGET_SHARE
    per_minute_budget: int = PER_MINUTE_BUDGET
    concurrency: int = 16
    timeout: float | None = None  # per evaluation; None: run_status's default


class Waiter:
    """How the loop waits: real time on an Event by default; tests pass a fake one."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when asked to stop (at once, whatever is left of the wait)."""
        return self.stop.wait(max(0.0, seconds))


class Exporter:
    """The evaluation loop and its latest snapshot. ``evaluate`` returns a StatusReport (run_status on the
    platform by default); ``drills`` the latest drill runs. Thread safe: the HTTP side reads while the loop
    writes."""

    def __init__(self, options: ExporterOptions, evaluate: Callable[[], StatusReport],
                 drills: Callable[[], list[DrillRun]] | None = None, waiter: Waiter | None = None,
                 api_statuses: ApiStatusCounter | None = None) -> None:
        self.options = options
        self._evaluate = evaluate
        self._drills = drills or (lambda: [])
        self.waiter = waiter or Waiter()
        self.api_statuses = api_statuses or ApiStatusCounter()
        self._lock = threading.Lock()
        self.snapshot: Snapshot | None = None
        self.started_at = self.waiter.monotonic()
        self.started_wall = self.waiter.wall()
        self.evaluations = 0
        self.failures = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_success: bool | None = None
        self.last_error = ""
        self.last_finished: float | None = None  # monotonic, of the last evaluation (success or not)
        self.last_duration = 0.0
        self.last_requests = 0
        self.interval = options.interval
        self.drill_error = ""

    @property
    def stop(self) -> threading.Event:
        return self.waiter.stop

    # -- the loop ----------------------------------------------------------------------------------

    def evaluate_once(self) -> None:
        """One evaluation; never raises (a failure keeps the previous snapshot and says so in a metric)."""
        w = self.waiter
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = w.monotonic()
        snapshot: Snapshot | None = None
        error = ""
        try:
            report = self._evaluate()
            drills: list[DrillRun] = []
            drill_error = ""
            try:
                drills = self._drills()
            except Exception as exc:  # the history store is one source among others: keep the checks
                drill_error = f"{type(exc).__name__}: {exc}"
            snapshot = Snapshot(checks=list(report.checks), finished_at=w.wall(),
                                duration_seconds=w.monotonic() - started, api_requests=report.api_requests,
                                drills=drills)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        finished = w.monotonic()
        with self._lock:
            self.in_flight -= 1
            self.evaluations += 1
            self.last_finished = finished
            self.last_duration = finished - started
            if snapshot is not None:
                self.snapshot = snapshot
                self.last_requests = snapshot.api_requests
                self.last_success = True
                self.last_error = ""
                self.drill_error = drill_error
                self.interval = stretched_interval(self.options.interval, snapshot.api_requests,
                                                   self.options.budget_share, self.options.per_minute_budget)
            else:
                self.failures += 1
                self.last_success = False
                self.last_error = error

    def run(self, max_evaluations: int | None = None) -> None:
        """Evaluate every interval until stopped; each run starts an interval after the previous one started,
        or right after it ended when it took longer (never two at once)."""
        n = 0
        while not self.stop.is_set():
            started = self.waiter.monotonic()
            self.evaluate_once()
            n += 1
            if max_evaluations is not None and n >= max_evaluations:
                return
            if self.waiter.wait(max(0.0, started + self.interval - self.waiter.monotonic())):
                return

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="doops-exporter", daemon=True)
        thread.start()
        return thread

    # -- health --------------------------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        """Healthy while the last successful evaluation (before the first: the start) is within three intervals."""
        with self._lock:
            now = self.waiter.monotonic()
            limit = HEALTHY_INTERVALS * self.interval
            if self.snapshot is None:
                age = now - self.started_at
                ok = age <= limit
                why = "no evaluation finished yet" + (f" ({self.last_error})" if self.last_error else "")
                return ok, f"{why}; started {age:.0f}s ago (limit {limit:.0f}s)"
            age = self.waiter.wall() - self.snapshot.finished_at
            ok = age <= limit
            text = f"last evaluation finished {age:.0f}s ago (limit {limit:.0f}s)"
            if self.last_success is False:
                text += f"; the latest failed: {self.last_error}"
            return ok, text

    # -- metrics -------------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """Metric families from the latest snapshot (prometheus_client's Collector protocol)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from doops.drill.metrics import drill_families

        with self._lock:
            snap = self.snapshot
            evaluations, failures = self.evaluations, self.failures
            in_flight, success = self.in_flight, self.last_success
            duration, interval, requests = self.last_duration, self.interval, self.last_requests
            last_wall = snap.finished_at if snap else None
        opts = self.options

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        status = gauge("doops_check_status", "Each check's verdict: 0 ok, 1 warn, 2 crit, 3 unknown "
                       "(skipped checks are not exported)", ["component", "resource", "check"])
        took = gauge("doops_check_duration_seconds", "How long each check took in the last evaluation",
                     ["component", "resource", "check"])
        last = gauge("doops_check_last_run_timestamp_seconds", "When each check was last judged, Unix seconds",
                     ["component", "resource", "check"])
        if snap is not None:
            for c in snap.checks:
                if c.status not in STATUS_VALUE:
                    continue
                labels = [c.component, c.resource, c.check]
                status.add_metric(labels, STATUS_VALUE[c.status])
                took.add_metric(labels, c.duration_ms / 1000.0)
                last.add_metric(labels, snap.finished_at)
        yield from (status, took, last)
        yield from measured_families(snap.checks if snap else [])
        yield from drill_families(snap.drills if snap else [])

        api = CounterMetricFamily("doops_api_requests", "Answers of the DigitalOcean API by HTTP status "
                                  "(every attempt, retries included)", labels=["status"])
        for code, n in self.api_statuses.items():
            api.add_metric([code], n)
        yield api
        per_minute = requests * 60.0 / interval if interval > 0 else 0.0
        # One unlabelled sample each (``value=`` adds it; None: the family without a sample).
        yield from (
            GaugeMetricFamily("doops_api_budget_used_ratio", "Share of the token's per-minute API budget the "
                              "exporter uses at its current pace (requests per evaluation over the interval)",
                              value=per_minute / opts.per_minute_budget),
            GaugeMetricFamily("doops_api_budget_share_ratio", "Share of the per-minute API budget the exporter "
                              "may use", value=opts.budget_share),
            GaugeMetricFamily("doops_exporter_api_requests_per_evaluation", "API requests the last evaluation "
                              "sent", value=requests),
            GaugeMetricFamily("doops_exporter_interval_seconds", "Seconds between evaluations, stretched for the "
                              "budget", value=interval),
            CounterMetricFamily("doops_exporter_evaluations", "Evaluations finished (failed ones too)",
                                value=evaluations),
            CounterMetricFamily("doops_exporter_evaluation_failures", "Evaluations that failed as a whole",
                                value=failures),
            GaugeMetricFamily("doops_exporter_evaluation_seconds", "How long the last evaluation took",
                              value=duration),
            GaugeMetricFamily("doops_exporter_evaluations_in_flight", "Evaluations running now (never more "
                              "than 1)", value=in_flight),
            GaugeMetricFamily("doops_exporter_last_evaluation_success", "1 when the last evaluation finished, 0 "
                              "when it failed as a whole (a failing check is not a failed evaluation)",
                              value=None if success is None else (1 if success else 0)),
            GaugeMetricFamily("doops_exporter_last_evaluation_timestamp_seconds",
                              "When the last successful evaluation finished, Unix seconds", value=last_wall),
        )

    def describe(self) -> list[Metric]:
        """Nothing: registering must not collect (that would read before the first evaluation)."""
        return []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def measured_families(checks: list[CheckResult]) -> Iterator[Metric]:
    """The numbers the checks measured, as gauges (from each check's ``details``)."""
    from prometheus_client.core import GaugeMetricFamily

    lag_s = GaugeMetricFamily("doops_db_replica_lag_seconds", "Replica replay lag behind its primary, seconds "
                              "(databases/replica)", labels=["resource", "region"])
    lag_b = GaugeMetricFamily("doops_db_replica_lag_bytes", "Replica WAL lag behind its primary, bytes "
                              "(databases/replica)", labels=["resource", "region"])
    conns = GaugeMetricFamily("doops_db_connections_used_ratio", "Primary connections used over those "
                              "available to clients (databases/connections)", labels=["resource"])
    at_risk = GaugeMetricFamily("doops_spaces_replication_objects_at_risk", "Objects the replica bucket lacks "
                                "or holds stale, in flight included (spaces/replication)", labels=["resource"])
    oldest = GaugeMetricFamily("doops_spaces_replication_oldest_at_risk_seconds", "Age of the oldest object "
                               "the replica lacks or holds stale; 0 when in sync (spaces/replication)",
                               labels=["resource"])
    cdn = GaugeMetricFamily("doops_cdn_cache_policy_ok", "1 when a sampled CDN path's Cache-Control is what "
                            "its policy asks, else 0; absent when unknown (cdn/cache-control)",
                            labels=["resource"])
    uptime = GaugeMetricFamily("doops_uptime_up", "1 when the Uptime check is UP in the region, else 0 "
                               "(monitoring/uptime)", labels=["check", "region"])
    for c in checks:
        d = c.details or {}
        key = (c.component, c.check)
        if key == ("databases", "replica"):
            region = str(d.get("region") or "")
            for fam, name in ((lag_s, "lag_seconds"), (lag_b, "lag_bytes")):
                v = _num(d.get(name))
                if v is not None:
                    fam.add_metric([c.resource, region], v)
        elif key == ("databases", "connections"):
            v = _num(d.get("ratio"))
            if v is not None:
                conns.add_metric([c.resource], v)
        elif key == ("spaces", "replication") and "in_flight" in d:
            count = _num(d.get("objects_at_risk"))
            if count is None:  # lists of those older than the allowance (first 20 each) plus those in flight
                count = float(len(d.get("missing") or []) + len(d.get("stale") or []) + int(d.get("in_flight") or 0))
            at_risk.add_metric([c.resource], count)
            age = _num(d.get("oldest_at_risk_seconds"))
            if age is not None:
                oldest.add_metric([c.resource], age)
        elif key == ("cdn", "cache-control") and c.status in (Status.OK, Status.WARN):
            cdn.add_metric([c.resource], 1 if c.status is Status.OK else 0)
        elif key == ("monitoring", "uptime"):
            name = c.resource.split(":", 1)[1] if c.resource.startswith("uptime:") else c.resource
            for region, state in sorted((d.get("regions") or {}).items()):
                uptime.add_metric([name, str(region)], 1 if str(state).upper() == "UP" else 0)
    yield from (lag_s, lag_b, conns, at_risk, oldest, cdn, uptime)


def platform_exporter(platform: Platform, options: ExporterOptions, waiter: Waiter | None = None) -> Exporter:
    """An exporter evaluating ``doops status`` on the platform, counting the API's answers by status."""
    from doops.ops.status import run_status

    counter = ApiStatusCounter()
    counter.install(platform)

    def evaluate() -> StatusReport:
        if options.timeout is None:
            return run_status(platform, options.components, options.concurrency)
        return run_status(platform, options.components, options.concurrency, timeout=options.timeout)

    return Exporter(options, evaluate, drills=lambda: latest_drills(platform), waiter=waiter,
                    api_statuses=counter)
