"""One pid-file module: the records a sandbox writes, and stopping only the process a record names."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from doops.sandbox import pidfiles
from tests.helpers import wait_for

SLEEP = "import signal, sys, time\nif 'ignore-term' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
        "print('ready', flush=True)\ntime.sleep(60)"


Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", SLEEP, *args], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def _marker() -> str:
    return f"doops-test-{uuid.uuid4().hex[:8]}"


def test_recorded_child_is_stopped_and_its_record_removed(tmp_path: Path, spawn: Spawn) -> None:
    marker = _marker()
    proc = spawn(marker)
    pidfiles.record_child(tmp_path, "worker", proc.pid, marker)
    record = tmp_path / "pids" / "worker.json"
    assert json.loads(record.read_text()) == {"pid": proc.pid, "marker": marker}
    assert pidfiles.kill_recorded(tmp_path) == [proc.pid]
    assert proc.wait(timeout=10) == -15  # SIGTERM was enough
    assert not record.exists()
    assert pidfiles.kill_recorded(tmp_path) == []  # idempotent


def test_a_pid_whose_command_line_lacks_the_marker_is_never_signalled(
        tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(_marker())
    pidfiles.record_child(tmp_path, "recycled", proc.pid, _marker())  # another process now has this pid
    assert pidfiles.kill_recorded(tmp_path) == []
    assert proc.poll() is None
    assert not (tmp_path / "pids" / "recycled.json").exists()


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path, spawn: Spawn) -> None:
    marker = _marker()
    proc = spawn(marker, "ignore-term")
    pidfiles.record_child(tmp_path, "stubborn", proc.pid, marker)
    assert pidfiles.kill_recorded(tmp_path, grace=0.3) == [proc.pid]
    assert proc.wait(timeout=10) == -9


def test_stop_stale_reads_a_plain_pid_file(tmp_path: Path, spawn: Spawn) -> None:
    marker = _marker()
    other = spawn(_marker())
    path = tmp_path / "prometheus.pid"
    pidfiles.write_pid(path, other.pid)
    assert path.read_text() == f"{other.pid}\n" and pidfiles.read_pid(path) == other.pid
    assert pidfiles.stop_stale(path, marker) is None  # not the process it recorded: left alone
    assert other.poll() is None and not path.exists()
    stale = spawn(marker)
    pidfiles.write_pid(path, stale.pid)
    assert pidfiles.stop_stale(path, marker, grace=5) == stale.pid
    assert stale.wait(timeout=10) == -15 and not path.exists()
    assert pidfiles.stop_stale(path, marker) is None  # no file: nothing to do


def test_live_supervisor_needs_the_module_and_the_dir(tmp_path: Path, spawn: Spawn) -> None:
    assert pidfiles.live_supervisor(tmp_path) is None  # no pid file
    pidfiles.write_supervisor(tmp_path)  # this test process: alive, but not a supervisor
    assert pidfiles.read_pid(tmp_path / pidfiles.SUPERVISOR_PID_FILE) is not None
    assert pidfiles.live_supervisor(tmp_path) is None
    other_dir = spawn(pidfiles.SUPERVISOR_MODULE, str(tmp_path / "other"))
    pidfiles.write_pid(tmp_path / pidfiles.SUPERVISOR_PID_FILE, other_dir.pid)
    assert pidfiles.live_supervisor(tmp_path) is None
    ours = spawn(pidfiles.SUPERVISOR_MODULE, str(tmp_path))
    pidfiles.write_pid(tmp_path / pidfiles.SUPERVISOR_PID_FILE, ours.pid)
    assert pidfiles.live_supervisor(tmp_path) == ours.pid


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: not pidfiles.pid_alive(proc.pid), timeout=10, what="the child to exit")
        assert Path(f"/proc/{proc.pid}").exists()  # not reaped yet: a zombie, and counted as gone
        assert pidfiles.cmdline(proc.pid) == ""
    finally:
        proc.wait(timeout=10)


def test_postmaster_records_and_a_foreign_pid_is_left_alone(tmp_path: Path, spawn: Spawn) -> None:
    proc = spawn(_marker())
    (tmp_path / "pids").mkdir()
    pidfiles.record_postmaster(tmp_path, "c1", proc.pid, tmp_path / "data" / "c1", tmp_path / "sock")
    record = tmp_path / "pids" / "c1.pid"
    assert json.loads(record.read_text()) == {"pid": proc.pid, "name": "c1", "data_dir": str(tmp_path / "data" / "c1"),
                                              "socket_dir": str(tmp_path / "sock")}
    assert pidfiles.kill_postmasters(tmp_path) == []  # not a postgres on that data dir
    assert proc.poll() is None and not record.exists()
    pidfiles.record_postmaster(tmp_path, "c2", proc.pid, tmp_path, tmp_path)
    pidfiles.forget_postmaster(tmp_path, "c2")
    assert not (tmp_path / "pids" / "c2.pid").exists()
