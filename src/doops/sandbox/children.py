"""Child server processes beside PostgreSQL (PgBouncer, the cache): found, started, waited for, stopped.

Each runs as the fleet's server user (never root), in the foreground, on 127.0.0.1 and a port probed free, with
its output in a log file. Its pid is recorded in the sandbox DIR (:func:`doops.sandbox.pidfiles.record_child`,
with its config file's path as the marker), so `doops sandbox down` stops it even after a supervisor crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
from pathlib import Path

from doops.ops import seam
from doops.sandbox import pidfiles
from doops.sandbox.pg_util import RunAs

log = logging.getLogger(__name__)


class ServerNotFoundError(RuntimeError):
    """A system server the sandbox needs is not installed."""


class PortTakenError(RuntimeError):
    """The probed-free port was taken before the server could bind it."""


def find_binary(name: str, env_var: str, package: str, *candidates: str) -> str:
    """The server binary: ``$env_var``, else PATH, else the Debian paths; a clear error naming the fix."""
    env = os.environ.get(env_var)
    if env:
        if os.access(env, os.X_OK):
            return env
        raise ServerNotFoundError(f"{env_var}={env} is not an executable {name}")
    found = shutil.which(name)
    if found:
        return found
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    raise ServerNotFoundError(
        f"{name} not found: run `bash scripts/install-system-deps.sh` (Debian package {package}) "
        f"or point {env_var} at the binary")


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, offset: int = 0, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")[-limit:].strip()
    except OSError:
        return "(no log)"


class ChildServer:
    """One server process: :meth:`launch` starts it and waits until its port answers."""

    def __init__(self, name: str, run_as: RunAs, sandbox_dir: Path | None) -> None:
        self.name = name
        self.run_as = run_as
        self.sandbox_dir = sandbox_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self, argv: list[str], *, cwd: Path, log_path: Path, port: int, marker: str,
               timeout: float = 20.0, env: dict[str, str] | None = None) -> None:
        """Start ``argv`` and wait until 127.0.0.1:port accepts; PortTakenError or RuntimeError (with the log)
        when it exits first, RuntimeError when it never answers. ``env`` is laid over the child's environment
        (this one without PG*/locale variables, LC_ALL=C, HOME the working directory)."""
        offset = log_path.stat().st_size if log_path.exists() else 0
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
        child_env.update({"LC_ALL": "C", "HOME": str(cwd), **(env or {})})
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd,
                                    env=child_env, start_new_session=True, **self.run_as.popen_kwargs())
        self.proc = proc
        if self.sandbox_dir is not None:
            pidfiles.record_child(self.sandbox_dir, self.name, proc.pid, marker)
        waited = seam.wait_until(lambda: proc.poll() is not None or port_open(port, 0.2), timeout=timeout,
                                 clock=seam.SystemClock(), interval=0.02, max_interval=0.1, backoff=1.5)
        if waited.done and proc.poll() is None:
            log.info("%s running on 127.0.0.1:%s pid %s", self.name, port, proc.pid)
            return
        self.stop()
        tail = log_tail(log_path, offset)
        if "in use" in tail.lower():
            raise PortTakenError(f"{self.name}: port {port} taken")
        raise RuntimeError(f"{self.name} did not start on port {port}: {tail}")

    def reload(self) -> None:
        """SIGHUP: the server rereads its config file."""
        if self.running:
            assert self.proc is not None
            import signal

            self.proc.send_signal(signal.SIGHUP)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` s; forget the pid record. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM; killing it", self.name)
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        if self.sandbox_dir is not None:
            pidfiles.forget_child(self.sandbox_dir, self.name)


def private_dir(path: Path, run_as: RunAs) -> Path:
    """A fresh 0700 directory owned by the server user (its config, key, log)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    path.chmod(0o700)
    run_as.chown(path)
    return path


def own(run_as: RunAs, *paths: Path) -> None:
    """Hand files to the server user (keys stay 0600)."""
    for p in paths:
        run_as.chown(p)
