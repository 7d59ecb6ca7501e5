"""Cold start on two cores: the Spaces and Prometheus checks in a forked child process.

Why: a cold ``doops status`` spends most of its time importing libraries, and imports hold the GIL, so in
one process they cannot overlap each other, only network waits (engine.Imports). boto3 and
prometheus-api-client (with requests) are needed only by the ``spaces`` and ``prometheus`` components, which
send no DigitalOcean API request; forked before anything else starts, a child imports them and runs those two
components on the second core while this process imports pydo, httpx and psycopg and runs the rest.

Only for a cold process (the libraries not yet loaded) with no other thread running (forking a process with
threads can copy a held lock); otherwise, or where ``os.fork`` does not exist, the components run here as
before. The child reports through a pipe (pickled check results) and leaves with ``os._exit``: no atexit
handler, no buffered output flushed twice. A child that dies or does not answer by the deadline makes its
checks ``unknown`` with the reason, never the run fail.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from doops.ops.status.model import CheckResult

# The components a child can take, and the library each would make this process import. They send no API
# request. Measured and slower: a second child for the cache and DNS checks, forked once pydo is loaded (1.38 s
# against 1.22 s: three busy processes on two cores), or those two in this child (1.5-1.7 s: it then loads
# pydo too and becomes the longer path).
OFFLOADABLE = {"spaces": "boto3", "prometheus": "prometheus_api_client"}


def offloadable(chosen: list[str], needed: list[str]) -> list[str]:
    """The chosen components worth a child: their library is needed and not loaded yet."""
    return [c for c in chosen if c in OFFLOADABLE and any(m.split(".")[0] == OFFLOADABLE[c] for m in needed)
            and OFFLOADABLE[c] not in sys.modules]


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


@dataclass
class ChildResult:
    checks: list[CheckResult] = field(default_factory=list)
    api_requests: int = 0
    error: str | None = None  # why there are no checks


class Child:
    """A forked process running ``work`` (which returns a ChildResult); ``result`` collects it."""

    def __init__(self, work: Callable[[], ChildResult]) -> None:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_fd)
            code = 0
            try:
                try:
                    got = work()
                except BaseException as exc:  # reported, then the parent judges the checks unknown
                    got = ChildResult(error=f"{type(exc).__name__}: {exc}")
                data = pickle.dumps(got)
                with os.fdopen(write_fd, "wb") as out:
                    out.write(data)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write_fd)
        self.pid = pid
        self._read_fd = read_fd  # read in result(), with the deadline

    def result(self, timeout: float) -> ChildResult:
        """The child's result, or an error saying why there is none; the child is reaped either way."""
        deadline = time.monotonic() + max(0.0, timeout)
        data = bytearray()
        with os.fdopen(self._read_fd, "rb", buffering=0) as src:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([src], [], [], left)[0]:
                    self._kill()
                    return ChildResult(error="the checks' worker process did not answer before the deadline")
                chunk = src.read(65536)
                if not chunk:
                    break
                data += chunk
        _, status = os.waitpid(self.pid, 0)
        try:
            got = pickle.loads(bytes(data))
        except Exception:
            return ChildResult(error=f"the checks' worker process ended without a result "
                                     f"(exit {os.waitstatus_to_exitcode(status)})")
        if not isinstance(got, ChildResult):
            return ChildResult(error="the checks' worker process sent something unexpected")
        return got

    def _kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
