"""The sandbox's Prometheus Pushgateway: the real `prometheus-pushgateway` binary, where drills push metrics.

Why a real one: `doops drill run --pushgateway` pushes with prometheus_client exactly as it would to a
production Pushgateway, and the sandbox's Prometheus scrapes it (``honor_labels: true``, so the pushed
``job="doops_drill"`` and ``runbook`` labels survive), so the alert rules can be tried end to end.

Runs as the fleet's server user on 127.0.0.1 and a port probed free (:class:`~doops.sandbox.children.ChildServer`).
Persistence goes to a file in its own directory (``<fleet base>/pushgateway/pushgateway.data``), never
Debian's default ``/var/lib/prometheus/pushgateway.data``; that path is also the pid record's marker. When no
binary is installed (or ``DOOPS_PUSHGATEWAY_BIN=none``), :func:`find_pushgateway` returns None and the
supervisor notes it and carries on, as it does without Prometheus.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx

from doops.ops import seam
from doops.sandbox.children import ChildServer, PortTakenError, ServerNotFoundError, private_dir
from doops.sandbox.pg_util import RunAs, free_port

log = logging.getLogger(__name__)

ENV_VAR = "DOOPS_PUSHGATEWAY_BIN"
SCRAPE_JOB = "pushgateway"  # the sandbox Prometheus' job scraping it


def find_pushgateway() -> str | None:
    """The binary ($DOOPS_PUSHGATEWAY_BIN, PATH, /usr/bin), or None when absent or ``DOOPS_PUSHGATEWAY_BIN=none``.

    A variable naming something that is not executable is a mistake worth saying: ServerNotFoundError.
    """
    env = os.environ.get(ENV_VAR)
    if env and env.lower() == "none":
        return None
    if env:
        if os.access(env, os.X_OK):
            return env
        raise ServerNotFoundError(f"{ENV_VAR}={env} is not an executable Pushgateway")
    for name in ("prometheus-pushgateway", "pushgateway"):  # Debian's name, then the release tarball's
        found = shutil.which(name)
        if found:
            return found
    for candidate in ("/usr/bin/prometheus-pushgateway", "/usr/local/bin/pushgateway"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def pushgateway_version(binary: str) -> str | None:
    """``1.5.1`` from `prometheus-pushgateway --version` (``pushgateway, version 1.5.1 (branch: ...``)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\d+(?:\.\d+)*)", out.stdout + out.stderr)
    return m.group(1) if m else None


class Pushgateway:
    """One Pushgateway process, its persistence file and log in ``base_dir/pushgateway``."""

    def __init__(self, base_dir: Path, run_as: RunAs, *, sandbox_dir: Path | None = None,
                 binary: str | None = None) -> None:
        found = binary or find_pushgateway()
        if found is None:
            raise ServerNotFoundError(
                "prometheus-pushgateway not found: run `bash scripts/install-system-deps.sh` "
                f"(Debian package prometheus-pushgateway) or point {ENV_VAR} at the binary")
        self.binary = found
        self.dir = base_dir / "pushgateway"
        self.run_as = run_as
        self.port = 0
        self.version: str | None = None
        self._child = ChildServer("pushgateway", run_as, sandbox_dir)

    @property
    def data_path(self) -> Path:
        return self.dir / "pushgateway.data"

    @property
    def log_path(self) -> Path:
        return self.dir / "pushgateway.log"

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("pushgateway not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def running(self) -> bool:
        return self._child.running

    def start(self, ready_timeout: float = 20.0) -> Pushgateway:
        """Start it and return once ``/-/ready`` answers 200 (a port that accepts is not yet a ready API)."""
        self.version = pushgateway_version(self.binary)
        private_dir(self.dir, self.run_as)
        for attempt in range(3):  # the free port can be taken between probe and bind: retry
            self.port = free_port()
            argv = [self.binary, f"--web.listen-address=127.0.0.1:{self.port}",
                    f"--persistence.file={self.data_path}", "--log.level=warn"]
            try:
                self._child.launch(argv, cwd=self.dir, log_path=self.log_path, port=self.port,
                                   marker=str(self.data_path), timeout=ready_timeout)
                break
            except PortTakenError:
                if attempt == 2:
                    raise
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            waited = seam.wait_until(lambda: client.get(f"{self.url}/-/ready").status_code == 200,
                                     timeout=ready_timeout, clock=seam.SystemClock(), interval=0.05,
                                     max_interval=0.2, errors=(httpx.HTTPError,))
        if not waited.done:
            self.stop()
            raise RuntimeError(f"pushgateway on port {self.port} never answered /-/ready")
        log.info("pushgateway %s on %s (pid %s)", self.version or "?", self.url, self.pid)
        return self

    def stop(self) -> None:
        self._child.stop()
