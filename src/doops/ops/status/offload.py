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
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from doops.ops.status.model import CheckResult

# The components a child can take, and the library each would make this process import.
OFFLOADABLE = {"spaces": "boto3", "prometheus": "prometheus_api_client"}


def offloadable(chosen: list[str], needed: list[str]) -> list[str]:
    """The chosen components worth a child: their library is needed and not loaded yet."""
    return [c for c in chosen if c in OFFLOADABLE and any(m.startswith(OFFLOADABLE[c]) for m in needed)
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
        self._read_fd = read_fd
        self._data = bytearray()
        self._reader = threading.Thread(target=self._read, name="status-child", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with os.fdopen(self._read_fd, "rb") as src:
            while chunk := src.read(65536):
                self._data += chunk

    def result(self, timeout: float) -> ChildResult:
        """The child's result, or an error saying why there is none; the child is reaped either way."""
        self._reader.join(max(0.0, timeout))
        if self._reader.is_alive():
            self._kill()
            return ChildResult(error="the checks' worker process did not answer before the deadline")
        _, status = os.waitpid(self.pid, 0)
        try:
            got = pickle.loads(bytes(self._data))
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
