"""`doops status`: one health view of the whole platform."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from doops.errors import UsageError
from doops.ops.status.checks_api import collect_apps, collect_functions, collect_monitoring
from doops.ops.status.checks_data import collect_cache, collect_databases
from doops.ops.status.checks_prom import collect_prometheus
from doops.ops.status.checks_storage import collect_cdn, collect_spaces
from doops.ops.status.engine import Runner
from doops.ops.status.model import COMPONENTS, CheckResult, Status, StatusReport, worst
from doops.platform import Platform

__all__ = ["COMPONENTS", "Status", "StatusReport", "run_status", "validate_components"]

COLLECTORS: dict[str, Callable[[Runner], list[CheckResult]]] = {
    "apps": collect_apps,
    "functions": collect_functions,
    "databases": collect_databases,
    "cache": collect_cache,
    "spaces": collect_spaces,
    "cdn": collect_cdn,
    "monitoring": collect_monitoring,
    "prometheus": collect_prometheus,
}


def validate_components(names: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(n.lower() for n in names))
    unknown = [n for n in chosen if n not in COLLECTORS]
    if unknown:
        raise UsageError(f"unknown component {unknown[0]!r}", hint="valid components: " + ", ".join(COMPONENTS))
    return chosen or list(COMPONENTS)


# Heavy client libraries each component needs. Imported one after another before the checks start:
# imported concurrently from many threads they contend for the GIL and import locks and take twice as long.
IMPORTS: dict[str, tuple[str, ...]] = {
    "apps": ("pydo", "httpx"), "functions": ("pydo", "croniter"), "databases": ("pydo", "psycopg"),
    "cache": ("pydo",), "spaces": ("boto3",), "cdn": ("pydo", "httpx"), "monitoring": ("pydo",),
    "prometheus": ("prometheus_api_client",),
}


def _preload(chosen: list[str]) -> None:
    import importlib

    for module in dict.fromkeys(m for name in chosen for m in IMPORTS[name]):
        with contextlib.suppress(ImportError):  # the check that needs it reports the problem
            importlib.import_module(module)


DEFAULT_TIMEOUT = 50.0  # seconds: under the 60 s a Nagios check gets by default


def timeout_reason(timeout: float) -> str:
    return f"not done within {timeout:g}s (--timeout)"


def run_status(app: Platform, components: Iterable[str] = (), concurrency: int = 16,
               timeout: float | None = DEFAULT_TIMEOUT) -> StatusReport:
    """Run every check of the chosen components; never raises for a failing check (it becomes unknown).

    Returns by ``timeout`` seconds after it started, whatever the API does: checks not done by then are
    ``unknown`` with the reason, and the threads still waiting are abandoned (daemons, see engine.py).
    """
    chosen = validate_components(components)
    started = time.monotonic()
    deadline = started + timeout if timeout is not None else None
    _preload(chosen)
    requests_before = app.do_request_count()
    runner = Runner(app, concurrency)
    results: dict[str, list[CheckResult]] = {}
    lock = threading.Lock()
    all_done = threading.Event()

    def collect(name: str) -> None:
        try:
            got = COLLECTORS[name](runner)
        except Exception as exc:  # a collector bug must not hide the others
            got = [runner.failed(name, "*", "collect", exc)]
        with lock:
            results[name] = got
            if len(results) == len(chosen):
                all_done.set()

    def sequential() -> None:
        for name in chosen:
            collect(name)

    # Daemon threads even for --concurrency 1: the deadline must hold whatever a call does.
    if runner.concurrency == 1:
        threading.Thread(target=sequential, name="status", daemon=True).start()
    else:
        for name in chosen:
            threading.Thread(target=collect, args=(name,), name=f"status-{name}", daemon=True).start()
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
    return StatusReport(
        overall=worst([c.status for c in checks]),
        generated_at=datetime.now(UTC),
        checks=checks,
        api_requests=app.do_request_count() - requests_before,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
