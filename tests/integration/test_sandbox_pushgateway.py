"""The sandbox's Pushgateway: a real `prometheus-pushgateway` that `doops drill` pushes to, scraped by the
sandbox's Prometheus (honor_labels), named in env.sh, the sandbox's config and `doops sandbox status`.

Without the binary (or Prometheus) these tests fail naming the install script; DOOPS_ALLOW_SKIP=1 makes that a
skip, the convention of the sandbox's Prometheus tests.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from doops.config import parse_config
from doops.drill.metrics import push_drill
from doops.drill.model import DrillRun, ObjectiveMeasure
from doops.sandbox import control
from doops.sandbox.pushgateway import Pushgateway, find_pushgateway
from tests.helpers import run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration]

INSTALL = "run `bash scripts/install-system-deps.sh` as root"


def _require(what: str, present: bool) -> None:
    if present:
        return
    reason = f"the sandbox runs without {what}: {INSTALL}"
    if os.environ.get("DOOPS_ALLOW_SKIP") == "1":
        pytest.skip(reason)
    pytest.fail(reason + "; set DOOPS_ALLOW_SKIP=1 to skip")


def _run(runbook: str, *, success: bool, rto: float) -> DrillRun:
    ended = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return DrillRun(runbook=runbook, file=f"{runbook}.yaml", started_at=ended - dt.timedelta(seconds=42),
                    ended_at=ended, outcome="ok" if success else "objective_missed", success=success,
                    objectives=[ObjectiveMeasure("rto", 60.0, rto, rto <= 60.0)], sandbox=True)


def _query(prom_url: str, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=10)
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])


@pytest.fixture
def runbook(sandbox: Sandbox) -> Iterator[str]:
    """A runbook name of this test's own; its group is deleted from the shared sandbox's Pushgateway after."""
    name = f"it-{uuid.uuid4().hex[:8]}"
    yield name
    url = sandbox.state.get("pushgateway_url")
    if url:
        httpx.delete(f"{url}/metrics/job/doops_drill/runbook/{name}", timeout=10)


def test_sandbox_runs_a_pushgateway_named_everywhere(sandbox: Sandbox) -> None:
    url = sandbox.state.get("pushgateway_url")
    _require("a Pushgateway (Debian package prometheus-pushgateway)", bool(url))
    assert url and url.startswith("http://127.0.0.1:")
    assert sandbox.env["DOOPS_PUSHGATEWAY_URL"] == url
    config_text = (sandbox.dir / control.CONFIG_FILE).read_text()
    assert yaml.safe_load(config_text)["drills"] == {"pushgateway_url": url}
    assert parse_config(config_text, "doops.yaml").drills.pushgateway_url == url  # the config doops reads
    res = run_doops(["-o", "json", "sandbox", "status", "--dir", str(sandbox.dir)])
    assert res.exit_code == 0, res.stderr
    row = next((c for c in res.json["components"] if c["name"] == "pushgateway"), None)
    assert row is not None, res.json["components"]
    assert row["healthy"] is True and row["port"] == int(url.rsplit(":", 1)[1])
    assert httpx.get(f"{url}/-/ready", timeout=5).status_code == 200


def test_pushed_drill_reaches_prometheus_with_its_labels(sandbox: Sandbox, runbook: str) -> None:
    url, prom = sandbox.state.get("pushgateway_url"), sandbox.state.get("prometheus_url")
    _require("a Pushgateway (Debian package prometheus-pushgateway)", bool(url))
    _require("Prometheus (Debian package prometheus)", bool(prom))
    assert url and prom

    push_drill(_run(runbook, success=True, rto=31.5), url)
    selector = f'{{runbook="{runbook}"}}'

    def scraped(expected: str) -> list[dict[str, Any]] | None:
        result = _query(prom, f"doops_drill_success{selector}")
        return result if result and result[0]["value"][1] == expected else None

    first = wait_for(lambda: scraped("1"), 30, f"Prometheus to scrape doops_drill_success{selector} == 1")
    assert len(first) == 1
    assert first[0]["metric"]["job"] == "doops_drill"  # honor_labels: the pushed job, not the scrape job's
    rto = _query(prom, f'doops_drill_objective_seconds{{runbook="{runbook}",objective="rto"}}')
    assert [r["value"][1] for r in rto] == ["31.5"]

    # the next drill fails: its push replaces the group, and Prometheus sees the failure
    push_drill(_run(runbook, success=False, rto=75.0), url)
    wait_for(lambda: scraped("0"), 30, f"Prometheus to scrape doops_drill_success{selector} == 0")
    rto = _query(prom, f'doops_drill_objective_seconds{{runbook="{runbook}",objective="rto"}}')
    assert [r["value"][1] for r in rto] == ["75"]


def test_pushgateway_starts_and_stops_on_its_own(tmp_path: Path) -> None:
    from doops.sandbox.pg_util import resolve_run_as

    _require("a Pushgateway (Debian package prometheus-pushgateway)", find_pushgateway() is not None)
    base = tmp_path / "base"
    base.mkdir()
    base.chmod(0o711)  # the server user (as root: an unprivileged one) must reach its directory
    tmp_path.chmod(0o711)
    gw = Pushgateway(base, resolve_run_as(), sandbox_dir=tmp_path).start()
    try:
        pid = gw.pid
        assert pid is not None and gw.running
        assert str(gw.data_path) in Path(f"/proc/{pid}/cmdline").read_text()  # persistence in its own dir
        assert (tmp_path / "pids" / "pushgateway.json").exists()  # `down` finds it after a crash
        assert httpx.get(f"{gw.url}/-/ready", timeout=5).status_code == 200
    finally:
        gw.stop()
    assert not gw.running
    assert not (tmp_path / "pids" / "pushgateway.json").exists()


def test_without_the_binary_the_sandbox_says_so_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.sandbox.supervisor import Supervisor, sandbox_config

    monkeypatch.setenv("DOOPS_PUSHGATEWAY_BIN", "none")
    sup = Supervisor(tmp_path, None, 0, 60)
    sup.base_dir = tmp_path
    sup._start_pushgateway()
    assert sup.pushgateway is None
    assert any("prometheus-pushgateway not found" in n and "install-system-deps.sh" in n for n in sup.notes)

    monkeypatch.setenv("DOOPS_PUSHGATEWAY_BIN", str(tmp_path / "missing"))
    sup._start_pushgateway()
    assert sup.pushgateway is None
    assert "is not an executable Pushgateway" in sup.notes[-1]

    state = {"api_url": "http://127.0.0.1:1", "cdn": {}, "spaces": {"endpoint_url": "http://127.0.0.1:2"},
             "prometheus_url": None, "pushgateway_url": None}
    assert "drills" not in sandbox_config(state, {})  # no config naming a Pushgateway that does not run
