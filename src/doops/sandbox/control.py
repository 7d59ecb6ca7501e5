"""Client side of the sandbox: where it lives, starting it detached, talking to it, stopping it.

The supervisor process (``doops.sandbox.supervisor``) owns every server; this module never imports the
servers themselves, so `doops sandbox status` stays light.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doops.errors import OperationFailed, UnknownStateError, UsageError
from doops.ops import seam
from doops.sandbox.pidfiles import (
    PG_DIR,
    SUPERVISOR_PID_FILE,
    kill_recorded,
    live_supervisor,
    pid_alive,
    stop_supervisor,
)

STATE_FILE = "sandbox.json"
LOG_FILE = "supervisor.log"
ENV_FILE = "env.sh"
CONFIG_FILE = "doops.yaml"


DIR_ENV = "DOOPS_SANDBOX_DIR"  # exported by env.sh, so every later `doops sandbox` command finds its sandbox


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "doops" / "sandbox"


def resolve_dir(path: str | os.PathLike[str] | None) -> Path:
    """``--dir`` if given, else ``$DOOPS_SANDBOX_DIR`` (set by a sourced env.sh), else the default state dir.

    Always absolute: the supervisor and env.sh record it, and a relative one would break from another cwd.
    """
    chosen = path or os.environ.get(DIR_ENV) or default_dir()
    return Path(chosen).expanduser().resolve()


def read_env_file(path: Path) -> dict[str, str]:
    """The variables an env.sh exports (what `. env.sh` would set), for scripts and tests."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            out[key] = value.strip("'")
    return out


def read_state(d: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((d / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def running_state(d: Path) -> dict[str, Any] | None:
    """The state of a live, ready sandbox in ``d``, or None."""
    state = read_state(d)
    if state and state.get("ready") and pid_alive(state.get("pid")):
        return state
    return None


def log_tail(d: Path, lines: int = 5) -> str:
    from doops.masking import mask

    try:
        text = (d / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return mask(" | ".join(text[-lines:]))


@dataclass
class Spawned:
    state: dict[str, Any]
    already_running: bool
    seconds: float


def spawn(d: Path, scenario: str | None, latency_ms: int | None, ttl: float, timeout: float = 120.0) -> Spawned:
    """Start the supervisor detached and wait until it says ready (or died, with its log's last lines)."""
    started = time.monotonic()
    state = running_state(d)
    if state:
        return Spawned(state, True, 0.0)
    if scenario and not Path(scenario).is_file():
        raise UsageError(f"scenario file {scenario} not found", hint="pass an existing YAML file to --scenario")
    cleanup_stale(d)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    for name in (STATE_FILE, ENV_FILE):
        with contextlib.suppress(FileNotFoundError):
            (d / name).unlink()
    cmd = [sys.executable, "-m", "doops.sandbox.supervisor", "--dir", str(d), "--ttl", str(ttl)]
    if scenario:
        cmd += ["--scenario", str(Path(scenario).resolve())]
    if latency_ms:
        cmd += ["--latency", str(latency_ms)]
    with open(d / LOG_FILE, "ab") as log_fh:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log_fh, stderr=log_fh, start_new_session=True, close_fds=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def ready_state() -> dict[str, Any] | None:
        """The state once ready; the side exits (it failed, or exited) raise at once."""
        state = read_state(d)
        if state and state.get("ready"):
            return state
        if state and state.get("error"):
            _reap(proc)
            raise OperationFailed(f"sandbox failed to start: {state['error']}", hint=f"see {d / LOG_FILE}")
        if proc.poll() is not None:
            raise OperationFailed(
                f"sandbox supervisor exited with code {proc.returncode} before it was ready: {log_tail(d)}",
                hint=f"see {d / LOG_FILE}",
            )
        return None

    waited = seam.wait_until(ready_state, timeout=timeout, clock=seam.SystemClock(), interval=0.05,
                             max_interval=0.05, backoff=1.0)
    if waited.value is not None:
        return Spawned(waited.value, False, time.monotonic() - started)
    stop(d, grace=10)
    raise UnknownStateError(f"sandbox not ready after {timeout:.0f}s; stopped it", hint=f"see {d / LOG_FILE}")


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)


def cleanup_stale(d: Path) -> list[int]:
    """Kill whatever a crashed supervisor left behind (postgres, prometheus), by pid file."""
    if live_supervisor(d):
        return []  # alive: not stale
    return kill_recorded(d)


@dataclass
class Stopped:
    dir: str
    was_running: bool
    killed_orphans: list[int]
    removed: bool
    seconds: float


def stop(d: Path, *, keep: bool = True, grace: float = 30.0) -> Stopped:
    """Stop the supervisor (it stops its servers), then kill any orphan by pid file; remove data unless keep."""
    started = time.monotonic()
    was_running = stop_supervisor(d, grace)
    orphans = kill_recorded(d)
    removed = False
    if not keep and d.exists():
        import shutil

        pg = d / PG_DIR
        if pg.is_symlink():  # data kept outside DIR when running as root (see supervisor.pg_base_dir)
            shutil.rmtree(pg.resolve(), ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
        removed = not d.exists()
    else:
        for name in (STATE_FILE, SUPERVISOR_PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
    return Stopped(str(d), was_running, orphans, removed, round(time.monotonic() - started, 3))


def control(state: dict[str, Any], method: str, path: str, body: dict[str, Any] | None = None,
            timeout: float = 30.0) -> Any:
    """Call the supervisor's control server (loopback, admin secret)."""
    import httpx

    url = str(state["control_url"]).rstrip("/") + path
    try:
        resp = httpx.request(method, url, json=body, timeout=timeout,
                             headers={"x-doops-admin": str(state["admin_secret"])})
    except httpx.HTTPError as exc:
        raise UnknownStateError(f"sandbox control at {state['control_url']} unreachable: {exc}") from exc
    data = resp.json() if resp.content else {}
    if resp.status_code >= 400:
        msg = data.get("message") if isinstance(data, dict) else None
        if resp.status_code in (400, 404):
            hint = data.get("hint") if isinstance(data, dict) else None
            raise UsageError(msg or f"sandbox refused {path}", hint=hint)
        raise OperationFailed(msg or f"sandbox control answered {resp.status_code}")
    return data
