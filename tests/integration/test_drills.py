"""`doops drill run` against the sandbox: two shipped runbooks run as drills, recorded (and shown by `drill
history` with their measured objectives), pushed to the sandbox's real Pushgateway and scraped from it by its
Prometheus; a concurrent second drill is refused naming the holder, and the holder, interrupted, is recorded as
interrupted.

Without a Pushgateway or Prometheus these tests fail naming the install script; DOOPS_ALLOW_SKIP=1 makes that a
skip (the convention of the sandbox's Prometheus tests).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from doops.drill.run import DrillLock
from tests.helpers import run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ("storage-replication", "cdn-release")  # quick, and neither changes the topology
INSTALL = "run `bash scripts/install-system-deps.sh` as root"


def _require(what: str, present: bool) -> None:
    if present:
        return
    reason = f"the sandbox runs without {what}: {INSTALL}"
    if os.environ.get("DOOPS_ALLOW_SKIP") == "1":
        pytest.skip(reason)
    pytest.fail(reason + "; set DOOPS_ALLOW_SKIP=1 to skip")


def _query(prom_url: str, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=10)
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, where runbooks/ is (RUNBOOK names are found there)."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def pushed_groups(sandbox: Sandbox) -> Iterator[list[str]]:
    """Runbooks whose groups this test pushed: deleted from the shared sandbox's Pushgateway afterwards."""
    names: list[str] = []
    yield names
    url = sandbox.state.get("pushgateway_url")
    for name in names:
        if url:
            httpx.delete(f"{url}/metrics/job/doops_drill/runbook/{name}", timeout=10)


def test_two_drills_are_recorded_pushed_and_scraped(sandbox: Sandbox, here: Path, tmp_path: Path,
                                                    pushed_groups: list[str]) -> None:
    gateway, prom = sandbox.state.get("pushgateway_url"), sandbox.state.get("prometheus_url")
    _require("a Pushgateway (Debian package prometheus-pushgateway)", bool(gateway))
    _require("Prometheus (Debian package prometheus)", bool(prom))
    assert prom is not None
    history = str(tmp_path / "drills.db")
    pushed_groups.extend(DRILLS)
    res = run_doops(["-o", "json", "drill", "run", *DRILLS, "--yes", "--history-url", history,
                     "--report", f"junit={tmp_path}/{{runbook}}.xml"], env=sandbox.env, secrets=(sandbox.token,))
    assert res.exit_code == 0, res.stderr
    drills = {d["runbook"]: d for d in res.json["drills"]}
    assert list(drills) == list(DRILLS)
    for name, d in drills.items():
        assert d["outcome"] == "ok" and d["success"] is True, d
        assert d["pushed"] is True and d["history_id"], d  # the Pushgateway from the sandbox's config
        assert d["reports"] == [f"{tmp_path}/{name}.xml"] and Path(d["reports"][0]).is_file()
        assert d["objectives"] and all(o["measured_seconds"] is not None and o["met"] for o in d["objectives"])
    assert res.json["pushgateway"] == gateway

    # `drill history` shows both, with what each measured
    shown = run_doops(["-o", "json", "drill", "history", "--history-url", history], env=sandbox.env,
                      secrets=(sandbox.token,))
    assert shown.exit_code == 0, shown.stderr
    runs = {r["runbook"]: r for r in shown.json["runs"]}
    assert set(runs) == set(DRILLS)
    for name in DRILLS:
        assert runs[name]["id"] == drills[name]["history_id"] and runs[name]["success"] is True
        assert runs[name]["sandbox"] is True and runs[name]["api_host"] == urlsplit(sandbox.state["api_url"]).netloc
        objective = runs[name]["objectives"][0]
        assert objective["measured_seconds"] == drills[name]["objectives"][0]["measured_seconds"]
    table = run_doops(["drill", "history", "--history-url", history], env=sandbox.env, secrets=(sandbox.token,))
    assert "rpo " in table.stdout and "release " in table.stdout  # objective name, measured/target, verdict

    # the Pushgateway holds each drill's metrics ...
    text = httpx.get(f"{gateway}/metrics", timeout=10).text
    for name in DRILLS:
        assert f'doops_drill_success{{instance="",job="doops_drill",runbook="{name}"}} 1' in text, text[-2000:]
    # ... and the sandbox's Prometheus scrapes them from it
    for name in DRILLS:
        found = wait_for(lambda n=name: _query(prom, f'doops_drill_success{{runbook="{n}"}}'), timeout=60,
                         what=f"doops_drill_success{{runbook={name!r}}} in Prometheus")
        assert found[0]["value"][1] == "1" and found[0]["metric"]["job"] == "doops_drill"
        measured = wait_for(lambda n=name: _query(prom, f'doops_drill_objective_seconds{{runbook="{n}"}}'),
                            timeout=60, what=f"doops_drill_objective_seconds of {name} in Prometheus")
        expected = drills[name]["objectives"][0]["measured_seconds"]
        assert float(measured[0]["value"][1]) == pytest.approx(expected)


PAUSING = """version: 1
name: it-pausing-drill
description: Holds the drill lock of the sandbox's API for a long while (a Ctrl-C ends it).
objectives:
  rto: {target: 10m}
steps:
  - id: hold
    pause: 10m
"""


def test_a_concurrent_second_drill_is_refused_naming_the_holder(sandbox: Sandbox, here: Path,
                                                                tmp_path: Path) -> None:
    book = tmp_path / "pausing.yaml"
    book.write_text(PAUSING)
    history = str(tmp_path / "drills.db")
    env = {**os.environ, **sandbox.env}
    first = subprocess.Popen(  # a drill of its own process, holding the lock while it pauses
        [sys.executable, "-m", "doops", "drill", "run", str(book), "--yes", "--history-url", history,
         "--pushgateway", "http://127.0.0.1:9"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    lock = DrillLock(urlsplit(sandbox.state["api_url"]).netloc)

    def holder() -> dict[str, Any] | None:
        try:
            rec = json.loads(lock.path.read_text())
        except (OSError, ValueError):
            return None
        return rec if rec.get("pid") == first.pid and rec.get("runbook") == "it-pausing-drill" else None

    try:
        held = wait_for(holder, timeout=60, what="the first drill to take the lock")
        assert first.poll() is None
        second = run_doops(["drill", "run", "storage-replication", "--yes", "--history-url", history],
                           env=sandbox.env, secrets=(sandbox.token,))
        assert second.exit_code == 2, second.stderr
        for part in (f"pid {first.pid}", held["host"], "drill it-pausing-drill", f"since {held['since']}"):
            assert part in second.stderr, (part, second.stderr)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGINT)  # Ctrl-C: the pause ends at once, the drill is recorded
        try:
            _, err = first.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            first.kill()  # our own child, by its handle
            first.communicate()
            raise
    assert first.returncode == 130, err
    shown = run_doops(["-o", "json", "drill", "history", "--history-url", history], env=sandbox.env,
                      secrets=(sandbox.token,))
    runs = shown.json["runs"]
    assert [(r["runbook"], r["outcome"], r["success"]) for r in runs] == [("it-pausing-drill", "interrupted", False)]
    assert "storage-replication" not in {r["runbook"] for r in runs}  # the refused drill ran nothing
