"""Pid files: every pid a sandbox records, written, read and acted on here only.

A recorded pid is only signalled while the process is still the one recorded (its command line says
so), so a recycled pid is never hit. The records, all under the sandbox DIR:

- ``supervisor.pid``: the supervisor (plain pid); it is ours when its command line names the supervisor
  module and DIR.
- ``pids/<name>.json``: a child process such as Prometheus, PgBouncer or the cache (``{"pid", "marker"}``);
  ours while the marker is in its command line. The Prometheus runner also keeps its own plain
  ``prom/prometheus.pid``, to stop what a crashed run of it left (:func:`stop_stale`).
- ``pg/pids/<server>.pid``: a postmaster of the PostgreSQL fleet (``{"pid", "name", "data_dir",
  "socket_dir"}``); ours when it is a postgres process on that data directory, stopped with its children.

Light imports only: `doops sandbox status` and `down` read these without loading the servers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doops.ops import seam

log = logging.getLogger(__name__)

SUPERVISOR_PID_FILE = "supervisor.pid"
SUPERVISOR_MODULE = "doops.sandbox.supervisor"
CHILDREN_DIR = "pids"
PG_DIR = "pg"  # the PostgreSQL fleet's base directory in DIR
PG_PIDS_DIR = "pids"  # in the fleet's base directory


# -- reading and writing -------------------------------------------------------------------------------


def write_pid(path: Path, pid: int) -> None:
    """A plain pid file (the pid and a newline)."""
    path.write_text(f"{pid}\n")


def read_pid(path: Path) -> int | None:
    """The pid in a plain pid file, or None when there is none (or it is not a number)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a record."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- processes -----------------------------------------------------------------------------------------


def cmdline_args(pid: int) -> list[str]:
    """The process' arguments; empty when it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def cmdline(pid: int) -> str:
    """The process' command line as one string; empty when it is gone (or a zombie)."""
    return " ".join(cmdline_args(pid))


def pid_alive(pid: int | None) -> bool:
    """Whether the process exists and is not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _wait_for(gone: Callable[[], bool], grace: float) -> None:
    """Up to ``grace`` s for a signalled process to go, checked every 50 ms (doops's one wait loop)."""
    seam.wait_until(gone, timeout=grace, clock=seam.SystemClock(), interval=0.05, max_interval=0.05, backoff=1.0)


def stop(pid: int, is_ours: Callable[[], bool], grace: float) -> bool:
    """SIGTERM the process while it is ours, wait up to ``grace`` s for it to go, then SIGKILL.

    Returns whether it was signalled (False: not ours, or already gone).
    """
    if not is_ours():
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    _wait_for(lambda: not is_ours(), grace)
    if is_ours():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def _has_markers(pid: int, markers: tuple[str, ...]) -> Callable[[], bool]:
    """A check that the process still is the one recorded: its command line holds every (non-empty) marker."""

    def check() -> bool:
        cmd = cmdline(pid)
        return bool(cmd and markers) and all(m and m in cmd for m in markers)

    return check


def stop_stale(path: Path, *markers: str, grace: float = 15.0) -> int | None:
    """Stop the process a plain pid file names if its command line still has every marker; remove the file.

    Returns the pid it stopped, if any.
    """
    pid = read_pid(path)
    stopped = pid is not None and stop(pid, _has_markers(pid, markers), grace)
    path.unlink(missing_ok=True)
    return pid if stopped else None


# -- the supervisor ------------------------------------------------------------------------------------


def write_supervisor(d: Path) -> None:
    """Record this process as DIR's supervisor."""
    write_pid(d / SUPERVISOR_PID_FILE, os.getpid())


def live_supervisor(d: Path) -> int | None:
    """The pid of DIR's supervisor when it runs: alive, and its command line names the module and DIR."""
    pid = read_pid(d / SUPERVISOR_PID_FILE)
    if not pid or not pid_alive(pid):
        return None
    args = cmdline_args(pid)
    return pid if SUPERVISOR_MODULE in args and str(d) in args else None


def stop_supervisor(d: Path, grace: float) -> bool:
    """SIGTERM DIR's supervisor (it stops its servers), wait up to ``grace`` s, then SIGKILL its whole process
    group. Returns whether one was running."""
    pid = live_supervisor(d)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_for(lambda: not pid_alive(pid), grace)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return True


# -- child processes -----------------------------------------------------------------------------------


def record_child(d: Path, name: str, pid: int, marker: str) -> None:
    """Record a child process (its command line must contain ``marker`` for it to be stopped later)."""
    pids = d / CHILDREN_DIR
    pids.mkdir(parents=True, exist_ok=True)
    _write_json(pids / f"{name}.json", {"pid": pid, "marker": marker})


def forget_child(d: Path, name: str) -> None:
    """Drop a child's record once it has stopped."""
    (d / CHILDREN_DIR / f"{name}.json").unlink(missing_ok=True)


def _kill_children(d: Path, grace: float) -> list[int]:
    killed: list[int] = []
    pids_dir = d / CHILDREN_DIR
    if not pids_dir.is_dir():
        return killed
    for f in sorted(pids_dir.glob("*.json")):
        rec = _read_json(f) or {}
        try:
            pid, marker = int(rec["pid"]), str(rec["marker"])
        except (KeyError, TypeError, ValueError):
            pid, marker = 0, ""
        if pid and marker and stop(pid, _has_markers(pid, (marker,)), grace):
            killed.append(pid)
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    return killed


def kill_recorded(d: Path, grace: float = 5.0) -> list[int]:
    """Stop every recorded child process and postmaster of DIR still alive (idempotent).

    Returns the pids it had to stop.
    """
    killed = _kill_children(d, grace)
    pg_dir = d / PG_DIR
    if pg_dir.is_dir():
        killed += kill_postmasters(pg_dir)
    return killed


# -- PostgreSQL postmasters ----------------------------------------------------------------------------


def record_postmaster(base_dir: Path, name: str, pid: int, data_dir: Path, socket_dir: Path) -> None:
    """Record a postmaster the fleet in ``base_dir`` started, so :func:`kill_postmasters` can clean up after a
    supervisor crash."""
    _write_json(base_dir / PG_PIDS_DIR / f"{name}.pid",
                {"pid": pid, "name": name, "data_dir": str(data_dir), "socket_dir": str(socket_dir)})


def forget_postmaster(base_dir: Path, name: str) -> None:
    """Drop a postmaster's record once it has stopped."""
    (base_dir / PG_PIDS_DIR / f"{name}.pid").unlink(missing_ok=True)


def kill_postmasters(base_dir: Path) -> list[int]:
    """Stop every postmaster recorded under ``base_dir/pids`` (immediate shutdown, then SIGKILL) and
    remove the pid files and socket dirs. Idempotent; returns the pids that were signalled."""
    import shutil

    from doops.sandbox.pg_util import terminate_tree  # psutil: only when there is a fleet to stop

    pid_dir = Path(base_dir) / PG_PIDS_DIR
    killed: list[int] = []
    if not pid_dir.is_dir():
        return killed
    for f in sorted(pid_dir.glob("*.pid")):
        info = _read_json(f) or {}
        try:
            pid, data_dir = int(info["pid"]), str(info["data_dir"])
        except (KeyError, TypeError, ValueError):
            f.unlink(missing_ok=True)
            continue
        if terminate_tree(pid, data_dir):
            killed.append(pid)
            log.info("killed leftover postmaster %s (%s)", pid, info.get("name"))
        sock = info.get("socket_dir")
        if sock and Path(sock).name.startswith("doops-pg-"):
            shutil.rmtree(sock, ignore_errors=True)
        f.unlink(missing_ok=True)
    return killed
