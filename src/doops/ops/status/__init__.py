"""`doops status`: one health view of the whole platform."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from doops.errors import UsageError
from doops.ops.status.engine import Imports, Runner
from doops.ops.status.model import COMPONENTS, CheckResult, Status, StatusReport, worst
from doops.ops.status.offload import Child, ChildResult, can_fork, offloadable
from doops.platform import Platform

log = logging.getLogger(__name__)

__all__ = ["COMPONENTS", "Status", "StatusReport", "run_status", "validate_components"]

# component -> (module, function): a collector's module is imported only when its component is chosen.
COLLECTORS: dict[str, tuple[str, str]] = {
    "apps": ("doops.ops.status.checks_api", "collect_apps"),
    "functions": ("doops.ops.status.checks_api", "collect_functions"),
    "databases": ("doops.ops.status.checks_data", "collect_databases"),
    "cache": ("doops.ops.status.checks_data", "collect_cache"),
    "spaces": ("doops.ops.status.checks_storage", "collect_spaces"),
    "cdn": ("doops.ops.status.checks_storage", "collect_cdn"),
    "monitoring": ("doops.ops.status.checks_api", "collect_monitoring"),
    "prometheus": ("doops.ops.status.checks_prom", "collect_prometheus"),
    "dns": ("doops.ops.status.checks_dns", "collect_dns"),
    "drills": ("doops.ops.status.checks_drills", "collect_drills"),
}

# The API call each component starts with (databases and cache share one): pydo and its client are made
# first for these, and the heavy imports wait until these requests have left (FIRST_CALLS_WAIT at most).
FIRST_CALL = {"apps": "apps", "functions": "namespaces", "databases": "clusters", "cache": "clusters",
              "cdn": "cdn", "monitoring": "alert_policies"}
USES_API = frozenset(FIRST_CALL)
FIRST_CALLS_WAIT = 0.5  # seconds: never more, whatever the first calls do

# The other heavy libraries, loaded in the background while the first API requests wait on the network, in
# this order: the checks with the longest network waits after their library loads go first (PostgreSQL:
# connections, then PgBouncer; the cache: TLS, AUTH, PING and INFO; Spaces: its S3 client, then list calls),
# Prometheus' short ones last.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("databases", "psycopg"),
    ("cache", "redis"),
    ("functions", "croniter"),
    ("spaces", "boto3"),
    ("dns", "dns.message"),
    ("prometheus", "prometheus_api_client.prometheus_connect"),
)


def validate_components(names: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(n.lower() for n in names))
    unknown = [n for n in chosen if n not in COLLECTORS]
    if unknown:
        raise UsageError(f"unknown component {unknown[0]!r}", hint="valid components: " + ", ".join(COMPONENTS))
    return chosen or list(COMPONENTS)


def collector(name: str) -> Callable[[Runner], list[CheckResult]]:
    module, function = COLLECTORS[name]
    fn: Callable[[Runner], list[CheckResult]] = getattr(importlib.import_module(module), function)
    return fn


def libraries(app: Platform, chosen: list[str]) -> list[str]:
    """The heavy libraries this run will use: none for a component the config leaves unchecked (no bucket,
    no Prometheus URL), so `doops status` without Spaces never loads boto3."""
    def configured(name: str) -> bool:
        try:
            if name == "spaces":
                return bool(app.config.spaces.buckets)
            if name == "prometheus":
                return bool(app.config.prometheus.resolved_url())
            if name == "dns":
                return bool(app.config.dns.failover_records)
        except Exception:  # a config problem is the collector's to report; load the library as before
            return True
        return True

    return [module for name, module in LIBRARIES if name in chosen and configured(name)]


def prepare_api(app: Platform) -> None:
    """Import pydo and build its client before anything else starts, so the first requests leave first."""
    try:
        app.do.prepare()
    except Exception:  # no token, say: every check that needs the API fails with the reason and reports it
        return


DEFAULT_TIMEOUT = 50.0  # seconds: under the 60 s a Nagios check gets by default


def timeout_reason(timeout: float) -> str:
    return f"not done within {timeout:g}s (--timeout)"


def run_status(app: Platform, components: Iterable[str] = (), concurrency: int = 16,
               timeout: float | None = DEFAULT_TIMEOUT, offload: bool = False) -> StatusReport:
    """Run every check of the chosen components; never raises for a failing check (it becomes unknown).

    Returns by ``timeout`` seconds after it started, whatever the API does: checks not done by then are
    ``unknown`` with the reason, and the threads still waiting are abandoned (daemons, see engine.py).
    ``offload``: a cold process runs the Spaces and Prometheus checks in a forked child (offload.py).
    """
    requested = validate_components(components)
    started = time.monotonic()
    deadline = started + timeout if timeout is not None else None
    child, moved = _start_child(app, requested, concurrency, timeout) if offload else (None, [])
    chosen = [name for name in requested if name not in moved]
    # Cold start: the API client first (on this thread; the TLS context meanwhile on another), then the
    # collectors fire their first requests, then the other libraries load in the background while those
    # requests wait on the network.
    if USES_API.intersection(chosen):
        from doops.clients.http import prepare_tls

        prepare_tls()
    collectors = {name: collector(name) for name in chosen}
    if USES_API.intersection(chosen):
        prepare_api(app)
    requests_before = app.do_request_count()
    # Sequential collectors send their first calls one after another: only the first is waited for.
    first = len({FIRST_CALL[n] for n in chosen if n in FIRST_CALL})
    first = min(first, 1) if concurrency <= 1 else first

    def after_first_calls() -> None:
        if first:
            app.wait_do_requests(requests_before + first, FIRST_CALLS_WAIT)

    imports = Imports(libraries(app, chosen), after=after_first_calls)
    runner = Runner(app, concurrency, imports)
    results: dict[str, list[CheckResult]] = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def collect(name: str) -> None:
        try:
            got = collectors[name](runner)
        except Exception as exc:  # a collector bug must not hide the others
            got = [runner.failed(name, "*", "collect", exc)]
        with lock:
            results[name] = got
            if len(results) == len(chosen):
                all_done.set()

    def sequential() -> None:
        for name in chosen:
            collect(name)

    if not chosen:
        all_done.set()
    # Daemon threads even for --concurrency 1: the deadline must hold whatever a call does.
    if runner.concurrency == 1:
        threading.Thread(target=sequential, name="status", daemon=True).start()
    else:
        for name in chosen:
            threading.Thread(target=collect, args=(name,), name=f"status-{name}", daemon=True).start()
    imports.start()
    finished = all_done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
    runner.close(wait=finished)
    with lock:
        done = dict(results)
    checks: list[CheckResult] = []
    for name in chosen:
        if name in done:
            checks += done[name]
            continue
        assert timeout is not None
        completed, pending = runner.unfinished(name)
        reason = timeout_reason(timeout)
        checks += completed
        checks += [runner.verdict(name, resource, check, Status.UNKNOWN, reason) for resource, check in pending]
        if not pending:
            checks.append(runner.verdict(name, "*", "collect", Status.UNKNOWN, reason))
    api_requests = app.do_request_count() - requests_before
    if child is not None:
        got = child.result(3600.0 if deadline is None else deadline - time.monotonic())
        api_requests += got.api_requests
        theirs = {name: ([runner.verdict(name, "*", "collect", Status.UNKNOWN, got.error)] if got.error
                         else [c for c in got.checks if c.component == name]) for name in moved}
        mine = {name: [c for c in checks if c.component == name] for name in chosen}
        checks = [c for name in requested for c in (theirs[name] if name in theirs else mine[name])]
    return StatusReport(
        overall=worst([c.status for c in checks]),
        generated_at=datetime.now(UTC),
        checks=checks,
        api_requests=api_requests,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )


def _start_child(app: Platform, requested: list[str], concurrency: int,
                 timeout: float | None) -> tuple[Child | None, list[str]]:
    """Fork the child for the components worth one (offload.py): it and what it runs, or (None, [])."""
    if not can_fork():
        return None, []
    moved = offloadable(requested, libraries(app, requested))
    if not moved:
        return None, []
    # The child answers a little before the deadline, so its partial results still arrive.
    limit = None if timeout is None else max(0.1, timeout - min(0.25, timeout / 10))

    def work() -> ChildResult:
        report = run_status(app, moved, concurrency, timeout=limit)
        return ChildResult(checks=report.checks, api_requests=report.api_requests)

    child = Child(work)
    log.debug("status: %s in a child process (pid %d), its libraries loading on another core",
              ", ".join(moved), child.pid)
    return child, moved
