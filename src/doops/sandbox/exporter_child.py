"""`doops exporter` as a child of the sandbox supervisor (`doops sandbox up --exporter`).

The same command a user runs, in its own process, with the sandbox's config and token in its environment
(never on its command line), on 127.0.0.1 and a free port; the sandbox's Prometheus scrapes it as job
``doops``, so `doops status prometheus` and the dashboard's queries see doops's own metrics.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from doops.sandbox.children import ChildServer, PortTakenError
from doops.sandbox.pg_util import RunAs, free_port

SCRAPE_JOB = "doops"
INTERVAL = "10s"  # fast enough to see a fault within a minute, light on a laptop


class ExporterChild:
    """`doops exporter` as a ChildServer: started, waited for, recorded for `sandbox down`, stopped."""

    def __init__(self, d: Path, env: dict[str, str], interval: str = INTERVAL,
                 sandbox_dir: Path | None = None) -> None:
        self.dir = d
        self.env = env
        self.interval = interval
        self.port = 0
        # As this user, not the servers' one: it reads this user's drill history, as `doops exporter` would.
        me = RunAs(os.geteuid(), os.getegid(), str(os.geteuid()))
        self._child = ChildServer("exporter", me, sandbox_dir)

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
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def running(self) -> bool:
        return self._child.running

    def start(self, timeout: float = 30.0) -> ExporterChild:
        """Start it and return once it listens (RuntimeError with its log's tail otherwise)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PYTHONUNBUFFERED": "1"}
        if "HOME" in os.environ:
            env["HOME"] = os.environ["HOME"]  # its drill history and audit journal where the user's are
        for attempt in range(3):  # the free port can be taken between probe and bind: retry
            self.port = free_port()
            try:
                self._child.launch([sys.executable, "-m", "doops", "exporter", "--listen", self.address,
                                    "--interval", self.interval], cwd=self.dir, log_path=self.dir / "exporter.log",
                                   port=self.port, marker=self.marker, timeout=timeout, env=env)
                return self
            except PortTakenError:
                if attempt == 2:
                    raise
        return self

    def stop(self) -> None:
        """SIGTERM (it stops within a second), SIGKILL after 5 s."""
        self._child.stop(grace=5.0)
