"""`doops exporter` as a child of the sandbox supervisor (`doops sandbox up --exporter`).

The same command a user runs, in its own process, with the sandbox's config and token in its environment
(never on its command line), on 127.0.0.1 and a free port; the sandbox's Prometheus scrapes it as job
``doops``, so `doops status prometheus` and the dashboard's queries see doops's own metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from doops.ops import seam
from doops.sandbox.pg_util import free_port

SCRAPE_JOB = "doops"
INTERVAL = "10s"  # fast enough to see a fault within a minute, light on a laptop


class ExporterChild:
    def __init__(self, d: Path, env: dict[str, str], interval: str = INTERVAL) -> None:
        self.dir = d
        self.env = env
        self.interval = interval
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def marker(self) -> str:
        """What its command line holds, for `sandbox down` to find it after a crash."""
        return f"exporter --listen {self.address}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> ExporterChild:
        """Start it and return once /metrics answers (RuntimeError with its log's tail otherwise)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        log_path = self.dir / "exporter.log"
        for attempt in range(3):  # the free port can be taken between probe and bind: retry
            self.port = free_port()
            self._log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the process
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "doops", "exporter", "--listen", self.address, "--interval", self.interval],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"})
            proc = self._proc
            with httpx.Client(timeout=2.0, trust_env=False) as client:

                def up_or_exited(proc: subprocess.Popen[bytes] = proc) -> str | None:
                    if proc.poll() is not None:
                        return "exited"
                    return "up" if client.get(f"{self.url}/metrics").status_code == 200 else None

                waited = seam.wait_until(up_or_exited, timeout=timeout, clock=seam.SystemClock(), interval=0.1,
                                         max_interval=0.2, errors=(httpx.HTTPError,))
            if waited.value == "up":
                return self
            tail = log_path.read_text(errors="replace")[-500:]
            self.stop()
            if waited.value != "exited" or "in use" not in tail or attempt == 2:
                raise RuntimeError(f"doops exporter did not answer on {self.address}: {tail.strip()[-300:]}")
        raise RuntimeError("unreachable")

    def stop(self) -> None:
        """SIGTERM (it stops within a second), SIGKILL after 5 s."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
