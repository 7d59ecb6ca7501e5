"""Prometheus twin: run the real `prometheus` binary (if installed) scraping the sandbox's apps.

Why a real binary: `doops` queries Prometheus' HTTP API (targets, alerts, SLO queries) and the sandbox
must answer with the real thing. When no binary is on PATH (or ``DOOPS_PROMETHEUS_BIN=none``),
``find_prometheus()`` returns None and the caller logs it and carries on without Prometheus.

Only the app twins (their /metrics) are scrape targets: the sandbox has no postgres/valkey exporter, so
databases are not scraped. Flags used exist in Prometheus 2.8+ and 3.x (``--config.file``,
``--storage.tsdb.path``, ``--storage.tsdb.retention.time``, ``--web.listen-address``,
``--web.enable-lifecycle``); the Debian package (2.42) is known to work.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from doops.ops import seam
from doops.sandbox import pidfiles

log = logging.getLogger(__name__)


def find_prometheus() -> str | None:
    """Path of the prometheus binary (env DOOPS_PROMETHEUS_BIN, PATH, /usr/bin), or None.

    ``DOOPS_PROMETHEUS_BIN=none`` means "run without Prometheus" even when one is installed (a sandbox
    like a machine without it, for tests and for users who do not want it).
    """
    env = os.environ.get("DOOPS_PROMETHEUS_BIN")
    if env and env.lower() == "none":
        return None
    if env and os.access(env, os.X_OK):
        return env
    found = shutil.which("prometheus")
    if found:
        return found
    for candidate in ("/usr/bin/prometheus", "/usr/local/bin/prometheus"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def prometheus_version(binary: str) -> tuple[int, int, int] | None:
    """Parse `prometheus --version` (e.g. '2.42.0+ds') into a tuple."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SELF_JOB = "prometheus"  # the job of its own /metrics, added to every config it writes

class PrometheusRunner:
    """A prometheus process on 127.0.0.1 with its config, TSDB, log and pid file under ``data_dir``."""

    def __init__(
        self,
        data_dir: str | Path,
        scrape_targets: dict[str, list[str]],
        *,
        scrape_interval: float = 1.0,
        binary: str | None = None,
        ready_timeout: float = 60.0,
        job_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if not 1.0 <= scrape_interval <= 5.0:
            raise ValueError("scrape_interval must be within 1-5 s")
        self.data_dir = Path(data_dir)
        self.scrape_targets = {job: list(t) for job, t in scrape_targets.items()}
        # per job, more scrape_config keys: the Pushgateway's job needs honor_labels (the pushed job/instance)
        self.job_options = {job: dict(o) for job, o in (job_options or {}).items()}
        self.scrape_interval = scrape_interval
        self.binary = binary or find_prometheus()
        self.ready_timeout = ready_timeout
        self.port: int | None = None
        self.version: tuple[int, int, int] | None = None
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: Any = None

    @property
    def config_path(self) -> Path:
        """prometheus.yml written by the runner."""
        return self.data_dir / "prometheus.yml"

    @property
    def pid_path(self) -> Path:
        """Pid file of the running prometheus."""
        return self.data_dir / "prometheus.pid"

    @property
    def log_path(self) -> Path:
        """Prometheus' own stdout/stderr."""
        return self.data_dir / "prometheus.log"

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        if self.port is None:
            raise RuntimeError("prometheus not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid of the running process."""
        return self._proc.pid if self._proc is not None else None

    @property
    def job_names(self) -> set[str]:
        """Every job the config scrapes: those of scrape_targets and, once started, its own (SELF_JOB)."""
        return set(self.scrape_targets) | ({SELF_JOB} if self.port is not None else set())

    def render_config(self) -> dict[str, Any]:
        """The prometheus.yml content: one job per entry of scrape_targets plus self-scrape."""
        interval = f"{int(self.scrape_interval * 1000)}ms"
        timeout = f"{int(self.scrape_interval * 800)}ms"
        jobs = [{"job_name": job, "metrics_path": "/metrics", **self.job_options.get(job, {}),
                 "static_configs": [{"targets": targets}]}
                for job, targets in sorted(self.scrape_targets.items())]
        if self.port is not None and SELF_JOB not in self.scrape_targets:
            jobs.append({"job_name": SELF_JOB,
                         "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]})
        return {"global": {"scrape_interval": interval, "scrape_timeout": timeout,
                           "evaluation_interval": interval,
                           "external_labels": {"environment": "sandbox"}},
                "scrape_configs": jobs}

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".yml.tmp")
        tmp.write_text(yaml.safe_dump(self.render_config(), sort_keys=False))
        tmp.replace(self.config_path)

    def _reap_stale(self) -> None:
        """Stop a prometheus a previous (crashed) run of this runner left behind, identified by pid file."""
        pid = pidfiles.stop_stale(self.pid_path, "prometheus", str(self.config_path))
        if pid is not None:
            log.warning("stopped stale prometheus pid %d from a previous run", pid)

    def start(self) -> PrometheusRunner:
        """Write the config, start prometheus, wait for /-/ready. Returns self."""
        if self.binary is None:
            raise FileNotFoundError("no prometheus binary on PATH (install the 'prometheus' package)")
        t0 = time.monotonic()
        self.version = prometheus_version(self.binary)
        self._reap_stale()
        last_error = "not started"
        for _attempt in range(3):  # the free port can be taken between probe and bind: retry
            self.port = _free_port()
            self._write_config()
            args = [self.binary, f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                    "--log.level=warn"]
            if self.version is None or self.version >= (2, 8, 0):
                args.append("--storage.tsdb.retention.time=1d")
            self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
            self._proc = subprocess.Popen(args, stdout=self._log_fh, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.data_dir)
            pidfiles.write_pid(self.pid_path, self._proc.pid)
            ok, last_error = self._wait_ready()
            if ok:
                self.start_seconds = time.monotonic() - t0
                log.info("prometheus %s on %s (pid %d, ready in %.2fs)",
                         ".".join(map(str, self.version or ())), self.url, self._proc.pid, self.start_seconds)
                return self
            self.stop()
            if "address already in use" not in last_error:
                break
        raise RuntimeError(f"prometheus did not become ready: {last_error}")

    def _wait_ready(self) -> tuple[bool, str]:
        """(ready, why not): polls /-/ready every 0.1 s, and stops early when the process exits."""
        proc = self._proc
        assert proc is not None
        with httpx.Client(timeout=2.0) as client:

            def ready_or_exited() -> str | None:
                if proc.poll() is not None:
                    return "exited"
                return "ready" if client.get(f"{self.url}/-/ready").status_code == 200 else None

            waited = seam.wait_until(ready_or_exited, timeout=self.ready_timeout, clock=seam.SystemClock(),
                                     interval=0.1, max_interval=0.1, backoff=1.0, errors=(httpx.HTTPError,))
        if waited.value == "ready":
            return True, ""
        if waited.value == "exited":
            return False, f"exited with {proc.returncode}: {self._log_tail()}"
        return False, f"timeout after {self.ready_timeout}s: {self._log_tail()}"

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def set_targets(self, scrape_targets: dict[str, list[str]]) -> None:
        """Replace the scrape targets and hot-reload the config (POST /-/reload)."""
        self.scrape_targets = {job: list(t) for job, t in scrape_targets.items()}
        self._write_config()
        if self._proc is not None:
            httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query via the HTTP API; returns the result vector."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        return list(r.json()["data"]["result"])

    def active_targets(self) -> list[dict[str, Any]]:
        """/api/v1/targets activeTargets (job, health, lastError...)."""
        r = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10)
        r.raise_for_status()
        return list(r.json()["data"]["activeTargets"])

    def stop(self) -> None:
        """SIGTERM, wait up to 15 s, then SIGKILL; remove the pid file."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    log.warning("prometheus pid %d ignored SIGTERM; killing", self._proc.pid)
                    self._proc.kill()
                    self._proc.wait(timeout=5)
            self._proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> PrometheusRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
