"""Runs status checks: components in parallel, their per-resource calls in one bounded pool.

Collectors (one per component) run in their own threads and may wait; the leaf calls they fan out run
in the bounded pool and never submit to it or wait on other pool tasks, so the pool cannot deadlock, even
with one worker. Data several components
need (the app list, the cluster list) is fetched once and shared.

Every thread is a daemon: when the run's deadline (``--timeout``) passes, status reports what is done and
returns; calls still stuck (a 30 s read, a minute's rate-limit wait) are abandoned and cannot keep the
process alive. Results are recorded as each check finishes, so a component cut short keeps the checks it
completed and the unfinished ones are ``unknown`` with the reason.

Heavy client libraries (psycopg, boto3, prometheus-api-client, croniter) load in one background thread,
:class:`Imports`, while the first API requests wait on the network; a check that needs one waits for it
(``Runner.need``) rather than importing it beside the loader.
"""

from __future__ import annotations

import importlib
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from typing import Any

from doops.errors import DoopsError
from doops.masking import mask
from doops.ops.status.model import CheckResult, Status
from doops.platform import Platform

Verdict = tuple[Status, str, dict[str, Any]]


class DaemonPool(Executor):
    """ThreadPoolExecutor's contract (submit, map, shutdown) on daemon threads.

    Why not ThreadPoolExecutor: its workers are joined at interpreter exit, so one call stuck past the
    deadline would hold the process (and a Nagios check) until it ends.
    """

    def __init__(self, max_workers: int, name: str = "status") -> None:
        self._max = max(1, max_workers)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...],
                                             dict[str, Any]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after the status run ended")
            fut: Future[Any] = Future()
            self._queue.put((fut, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                t.start()
                self._threads.append(t)
        return fut

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.put(None)  # wake the next worker too
                return
            fut, fn, args, kwargs = item
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    fut.set_exception(exc)
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            pending: list[Any] = []
            while True:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in pending:
                if item is not None:
                    item[0].cancel()
        self._queue.put(None)
        if wait:
            for t in threads:
                t.join()


class Imports:
    """Imports libraries one after another in one daemon thread, in the order given.

    Why one thread, in order: imports hold the GIL, so they cannot run in parallel with each other, only with
    network waits; imported from several threads at once they interleave and all finish late (and two threads
    importing packages that import each other can meet an import deadlock). One after another, the first one
    needed is ready first while the rest load.
    """

    def __init__(self, modules: Iterable[str] = (), after: Callable[[], object] | None = None) -> None:
        self.modules = [m for m in dict.fromkeys(modules) if m not in sys.modules]
        self.after = after  # waited for in the loader thread before the first import
        self._done = {m: threading.Event() for m in self.modules}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self.modules and self._thread is None:
                self._thread = threading.Thread(target=self._load, name="status-imports", daemon=True)
                self._thread.start()

    def _load(self) -> None:
        if self.after is not None:
            self.after()
        for module in self.modules:
            try:
                importlib.import_module(module)
            except Exception:  # the check that needs it imports it again and reports the problem
                pass
            finally:
                self._done[module].set()

    def wait(self, module: str) -> None:
        """Until the loader is done with ``module`` (loaded or failed); at once when it does not load it.
        Starts the loader if a check needs a library before the run started it."""
        done = self._done.get(module)
        if done is not None:
            self.start()
            done.wait()


class Runner:
    def __init__(self, app: Platform, concurrency: int = 16, imports: Imports | None = None) -> None:
        self.app = app
        self.imports = imports or Imports()
        self.concurrency = max(1, concurrency)
        self.pool = DaemonPool(self.concurrency)
        self.now = datetime.now(UTC)
        self._shared: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        # What each component has finished so far and what it has started: read at the deadline.
        self.finished: dict[str, list[CheckResult]] = {}
        self.started: dict[str, list[tuple[str, str]]] = {}
        self.abandoned = threading.Event()

    def close(self, wait: bool = True) -> None:
        """End the run; ``wait=False`` at the deadline: stuck calls are abandoned, not waited for, and the
        checks and shared fetches not yet begun never start (no requests for a report already given)."""
        if not wait:
            self.abandoned.set()
        self.pool.shutdown(wait=wait, cancel_futures=not wait)

    def _record(self, result: CheckResult) -> CheckResult:
        with self._lock:
            self.finished.setdefault(result.component, []).append(result)
            started = self.started.get(result.component)
            if started and (result.resource, result.check) in started:
                started.remove((result.resource, result.check))
        return result

    def _start(self, component: str, resource: str, check: str) -> None:
        with self._lock:
            self.started.setdefault(component, []).append((resource, check))

    def unfinished(self, component: str) -> tuple[list[CheckResult], list[tuple[str, str]]]:
        """The checks a component completed and the ones it started but did not finish."""
        with self._lock:
            return list(self.finished.get(component, [])), list(self.started.get(component, []))

    def need(self, module: str) -> None:
        """Call before using a library the background loader may be importing (see :class:`Imports`)."""
        self.imports.wait(module)

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
                if self.abandoned.is_set():
                    raise DoopsError("the status run ended (--timeout) before this was fetched")
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)
        return fut.result()

    def run_check(self, component: str, resource: str, check: str, fn: Callable[[], Verdict]) -> CheckResult:
        """Run one check; whatever goes wrong makes it ``unknown`` for itself only."""
        self._start(component, resource, check)
        started = time.monotonic()
        try:
            if self.abandoned.is_set():
                raise DoopsError("the status run ended (--timeout) before this check began")
            status, summary, details = fn()
        except DoopsError as exc:
            status, summary, details = Status.UNKNOWN, exc.message, {"error": type(exc).__name__}
        except Exception as exc:  # a bug in one check must not hide the others
            status, summary, details = Status.UNKNOWN, f"{type(exc).__name__}: {exc}", {"error": "internal"}
        return self._record(CheckResult(component, resource, check, status, mask(summary), details,
                                        round((time.monotonic() - started) * 1000, 1)))

    def _run_started(self, component: str, resource: str, check: str, fn: Callable[[], Verdict]) -> CheckResult:
        with self._lock:  # fan_out marked it started; run_check marks it again
            started = self.started.get(component)
            if started and (resource, check) in started:
                started.remove((resource, check))
        return self.run_check(component, resource, check, fn)

    def failed(self, component: str, resource: str, check: str, exc: Exception) -> CheckResult:
        """A check that could not run because a call it needed failed: unknown, with the reason."""
        def reraise() -> Verdict:
            raise exc

        return self.run_check(component, resource, check, reraise)

    def verdict(self, component: str, resource: str, check: str, status: Status, summary: str) -> CheckResult:
        """A check whose verdict is already known (a configured resource missing, say)."""
        return self._record(CheckResult(component, resource, check, status, mask(summary)))

    def fan_out(self, jobs: list[tuple[str, str, str, Callable[[], Verdict]]]) -> list[CheckResult]:
        """Run leaf checks in the bounded pool, results in the order given."""
        for component, resource, check, _ in jobs:
            self._start(component, resource, check)  # queued counts as started: unfinished at the deadline
        futures = [self.pool.submit(self._run_started, *job) for job in jobs]
        return [f.result() for f in futures]
