"""Runs status checks: components in parallel, their per-resource calls in one bounded pool.

Collectors (one per component) run in their own threads and may wait; the leaf calls they fan out run
in the bounded pool and never submit to it or wait on other pool tasks, so the pool cannot deadlock, even
with one worker. Data several components
need (the app list, the cluster list) is fetched once and shared.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from doops.context import AppContext
from doops.errors import DoopsError
from doops.ops.status.model import CheckResult, Status
from doops.secrets import mask

Verdict = tuple[Status, str, dict[str, Any]]


class Runner:
    def __init__(self, app: AppContext, concurrency: int = 16) -> None:
        self.app = app
        self.concurrency = max(1, concurrency)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="status")
        self.now = datetime.now(UTC)
        self._shared: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._web: Any = None

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self._web is not None:
            self._web.close()

    @property
    def web(self) -> Any:
        """One httpx client for live-URL and CDN probes (not the DigitalOcean API path)."""
        with self._lock:
            if self._web is None:
                import httpx

                timeout = float(self.app.config.thresholds.http_timeout)
                self._web = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
                                         follow_redirects=True)
            return self._web

    def shared(self, key: str, fn: Callable[[], Any]) -> Any:
        """Compute ``fn`` once per run, in the first caller's thread; others wait for it (never the pool)."""
        with self._lock:
            fut = self._shared.get(key)
            owner = fut is None
            if owner:
                fut = Future()
                self._shared[key] = fut
        assert fut is not None
        if owner:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)
        return fut.result()

    def run_check(self, component: str, resource: str, check: str, fn: Callable[[], Verdict]) -> CheckResult:
        """Run one check; whatever goes wrong makes it ``unknown`` for itself only."""
        started = time.monotonic()
        try:
            status, summary, details = fn()
        except DoopsError as exc:
            status, summary, details = Status.UNKNOWN, exc.message, {"error": type(exc).__name__}
        except Exception as exc:  # a bug in one check must not hide the others
            status, summary, details = Status.UNKNOWN, f"{type(exc).__name__}: {exc}", {"error": "internal"}
        return CheckResult(component, resource, check, status, mask(summary), details,
                           round((time.monotonic() - started) * 1000, 1))

    def failed(self, component: str, resource: str, check: str, exc: Exception) -> CheckResult:
        """A check that could not run because a call it needed failed: unknown, with the reason."""
        def reraise() -> Verdict:
            raise exc

        return self.run_check(component, resource, check, reraise)

    def verdict(self, component: str, resource: str, check: str, status: Status, summary: str) -> CheckResult:
        """A check whose verdict is already known (a configured resource missing, say)."""
        return CheckResult(component, resource, check, status, mask(summary))

    def fan_out(self, jobs: list[tuple[str, str, str, Callable[[], Verdict]]]) -> list[CheckResult]:
        """Run leaf checks in the bounded pool, results in the order given."""
        futures = [self.pool.submit(self.run_check, *job) for job in jobs]
        return [f.result() for f in futures]
