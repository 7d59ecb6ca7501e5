"""Pid files of every process a sandbox started, so nothing outlives a crashed supervisor.

Each record is ``DIR/pids/<name>.json`` (or the PostgreSQL fleet's own ``pg/pids``): pid plus a marker to
recognise the process (its command line must contain the marker), so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path


def record(d: Path, name: str, pid: int, marker: str) -> None:
    pids = d / "pids"
    pids.mkdir(parents=True, exist_ok=True)
    (pids / f"{name}.json").write_text(json.dumps({"pid": pid, "marker": marker}))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_recorded(d: Path, grace: float = 5.0) -> list[int]:
    """Kill every recorded process still alive (idempotent). Returns the pids it had to kill."""
    killed: list[int] = []
    pids_dir = d / "pids"
    if pids_dir.is_dir():
        for f in sorted(pids_dir.glob("*.json")):
            try:
                rec = json.loads(f.read_text())
                pid, marker = int(rec["pid"]), str(rec["marker"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if marker and marker in _cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                    killed.append(pid)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and _cmdline(pid):
                    time.sleep(0.05)
                if marker in _cmdline(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
    pg_dir = d / "pg"
    if pg_dir.is_dir():
        from doops.sandbox.pg_util import kill_from_pidfiles

        killed += kill_from_pidfiles(pg_dir)
    return killed
