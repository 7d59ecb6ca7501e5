"""A drill's result as Prometheus metrics, pushed to a Pushgateway so a failing or overdue drill alerts.

Metrics (gauges, every one labelled ``runbook``; the Pushgateway adds the grouping key's ``job="doops_drill"``):

- ``doops_drill_success``: 1 when the last drill passed (every step passed, every objective met), else 0;
- ``doops_drill_last_run_timestamp_seconds``: when the last drill ended (Unix seconds);
- ``doops_drill_duration_seconds``: how long it ran;
- ``doops_drill_objective_seconds{objective}``: each objective's measured value (absent when not measured);
- ``doops_drill_objective_target_seconds{objective}``: each objective's target (absent when it has none).

Why PUT (``push_to_gateway``) rather than POST (``pushadd_to_gateway``): each runbook has its own group
(grouping key ``job="doops_drill", runbook=<name>``) and a push describes that runbook's last drill whole. PUT
replaces the group, so an objective the last run no longer measured (or a family it did not produce at all)
disappears instead of lingering from an older run and being judged as if current; POST would keep it. Other
runbooks' groups are never touched.

Pushed with httpx rather than urllib (prometheus_client's default handler) so the error body of a refused push
can be reported, and on the same HTTP stack as the rest of doops. The caller decides what a failed push means;
`doops drill run` warns and keeps the drill's exit code (the drill ran and is recorded in its history; the
metrics are its echo), see docs/drills.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import push_to_gateway
from prometheus_client.registry import Collector

from doops import masking
from doops.drill.model import DrillRun
from doops.errors import UnknownStateError, UsageError

JOB = "doops_drill"
DEFAULT_TIMEOUT = 10.0


class MetricsPushError(UnknownStateError):
    """The Pushgateway could not be reached or refused the push; the message names it with secrets masked."""


def mask_url(url: str) -> str:
    """The URL as it may be printed: password masked, query (which could carry a token) dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return masking.mask(url)
    return masking.mask(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))


def check_pushgateway_url(url: str) -> str:
    """The URL to push to (``host:port`` gains ``http://``), or UsageError naming the fix.

    For the caller to run before the drill starts: a bad URL is bad input, found before anything is done.
    """
    text = url.strip()
    if not text:
        raise UsageError("empty Pushgateway URL", hint="write http://HOST:9091 (drills.pushgateway_url or "
                                                         "--pushgateway)")
    if "://" not in text:
        text = "http://" + text
    shown = mask_url(text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise UsageError(f"Pushgateway URL {shown} has an invalid port", hint="write http://HOST:9091") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"Pushgateway URL {shown} must be http:// or https://", hint="write http://HOST:9091")
    if not parts.hostname:
        raise UsageError(f"Pushgateway URL {shown} names no host", hint="write http://HOST:9091")
    if parts.query or parts.fragment:
        raise UsageError(f"Pushgateway URL {shown} has a query or fragment",
                         hint="give the Pushgateway's base URL: http://HOST:9091 (a route prefix path is fine)")
    return text


def drill_families(runs: Iterable[DrillRun]) -> Iterator[Metric]:
    """The latest drill of each runbook as metric families: what a push sends for one run, and what
    `doops exporter` serves for the newest run of each runbook in the history store."""
    success = GaugeMetricFamily("doops_drill_success", "1 when the runbook's last drill passed (steps and "
                                "objectives), else 0", labels=["runbook"])
    last = GaugeMetricFamily("doops_drill_last_run_timestamp_seconds", "When the runbook's last drill ended, "
                             "Unix seconds", labels=["runbook"])
    took = GaugeMetricFamily("doops_drill_duration_seconds", "How long the runbook's last drill ran",
                             labels=["runbook"])
    measured = GaugeMetricFamily("doops_drill_objective_seconds", "Each objective's measured value in the last "
                                 "drill", labels=["runbook", "objective"])
    target = GaugeMetricFamily("doops_drill_objective_target_seconds", "Each objective's target in the last "
                               "drill", labels=["runbook", "objective"])
    for run in sorted(runs, key=lambda r: r.runbook):
        success.add_metric([run.runbook], 1 if run.success else 0)
        last.add_metric([run.runbook], run.ended_at.timestamp())
        took.add_metric([run.runbook], run.duration_seconds)
        for o in run.objectives:
            if o.measured_seconds is not None:
                measured.add_metric([run.runbook, o.name], o.measured_seconds)
            if o.target_seconds is not None:
                target.add_metric([run.runbook, o.name], o.target_seconds)
    yield from (success, last, took, measured, target)


class _Runs(Collector):
    def __init__(self, runs: list[DrillRun]) -> None:
        self.runs = runs

    def collect(self) -> Iterator[Metric]:
        return drill_families(self.runs)


def drill_registry(run: DrillRun) -> CollectorRegistry:
    """A registry holding the metrics of one drill run (also usable with node_exporter's textfile collector)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Runs([run]))
    return registry


def exposition(run: DrillRun) -> str:
    """The text a push sends (Prometheus text format 0.0.4)."""
    return generate_latest(drill_registry(run)).decode()


class _Refused(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class _HttpxHandler:
    """prometheus_client's handler protocol, over httpx: keeps the status and body of a refused push, and the
    group URL prometheus_client built (its label escaping included)."""

    def __init__(self) -> None:
        self.url = ""

    def __call__(self, url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                 data: bytes) -> Callable[[], None]:
        self.url = url

        def handle() -> None:
            resp = httpx.request(method, url, content=data, headers=headers, timeout=timeout)
            if resp.status_code >= 400:
                raise _Refused(resp.status_code, resp.text)

        return handle


def push_drill(run: DrillRun, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """PUT the run's metrics to the Pushgateway at ``url`` (group job="doops_drill", runbook=<name>).

    Returns the group's URL, masked, for the caller to show. UsageError for a bad URL, timeout or a run
    without a runbook name; MetricsPushError (with the URL masked and a hint) when the push fails.
    """
    if timeout <= 0:
        raise UsageError(f"push timeout must be positive, not {timeout}")
    if not run.runbook:
        raise UsageError("a drill run without a runbook name cannot be pushed",
                         hint="the runbook's name: is its metrics' runbook label")
    base = check_pushgateway_url(url)
    shown = mask_url(base)
    handler = _HttpxHandler()
    hint = (f"is a Pushgateway running at {shown}? (check: curl {shown}/-/ready; set drills.pushgateway_url or "
            "--pushgateway); the drill itself ran and is recorded in its history")
    try:
        push_to_gateway(base, job=JOB, registry=drill_registry(run), grouping_key={"runbook": run.runbook},
                        timeout=timeout, handler=handler)
    except _Refused as exc:
        detail = masking.mask(" ".join(exc.body.split())[:200]) or "(no body)"
        raise MetricsPushError(f"the Pushgateway at {shown} refused the drill metrics: HTTP {exc.status}: {detail}",
                               hint=hint) from None
    except httpx.TimeoutException:
        raise MetricsPushError(f"pushing drill metrics to {shown} timed out after {timeout:g}s", hint=hint) from None
    except (httpx.HTTPError, OSError) as exc:
        reason = masking.mask(str(exc)).replace(base, shown) or type(exc).__name__
        raise MetricsPushError(f"cannot push drill metrics to {shown}: {reason}", hint=hint) from None
    return mask_url(handler.url)
