"""`doops status --timeout` and `--watch`: a stuck API call cannot hold the run past its deadline, and
watching prints data (JSON lines, YAML documents) when data was asked for."""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
import yaml

from doops.ops.status.engine import DaemonPool
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
ENV = {"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}
APPS = {"apps": [{"id": "a0", "spec": {"name": "app0"},
                  "active_deployment": {"id": "d0", "phase": "ACTIVE", "created_at": "2026-01-01T00:00:00Z"}}],
        "links": {}, "meta": {"total": 1}}


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test: lets the calls the test left stuck finish."""
    event = threading.Event()
    yield event
    event.set()


def stuck(release: threading.Event, body: dict[str, Any]) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        release.wait(30)
        return httpx.Response(200, json=body)  # a 200, so nothing is retried once the mock is gone

    return answer


def by_check(res: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(c["component"], c["resource"], c["check"]): c for c in res.json["checks"]}


@pytest.mark.parametrize("concurrency", ["16", "1"])
def test_stuck_call_is_unknown_at_the_deadline(release: threading.Event, concurrency: str) -> None:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/apps").respond(200, json=APPS)
        router.get("/v2/apps/a0/health").mock(side_effect=stuck(release, {"app_health": {"components": []}}))
        router.get("/v2/functions/namespaces").respond(200, json={"namespaces": []})
        res = run_doops(["status", "-o", "json", "--timeout", "300ms", "--concurrency", concurrency,
                         "apps", "functions"], env=ENV)
    checks = by_check(res)
    assert checks[("apps", "app0", "health")]["status"] == "unknown"
    assert checks[("apps", "app0", "health")]["summary"] == "not done within 0.3s (--timeout)"
    assert checks[("apps", "app0", "deployment")]["status"] == "ok"  # finished checks are kept
    if concurrency == "16":
        assert checks[("functions", "*", "present")]["status"] == "ok"  # the other component still reports
    else:
        assert checks[("functions", "*", "collect")]["summary"] == "not done within 0.3s (--timeout)"
    assert res.json["overall"] == "unknown" and res.exit_code == 3


def test_stuck_listing_makes_the_component_unknown(release: threading.Event) -> None:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/databases").mock(side_effect=stuck(release, {"databases": []}))
        router.get("/v2/functions/namespaces").respond(200, json={"namespaces": []})
        res = run_doops(["status", "-o", "json", "--timeout", "0.3s", "cache", "functions"], env=ENV)
    checks = by_check(res)
    assert checks[("cache", "*", "collect")] == {
        **checks[("cache", "*", "collect")], "status": "unknown", "summary": "not done within 0.3s (--timeout)"}
    assert checks[("functions", "*", "present")]["status"] == "ok"


def test_timeout_is_validated_and_documented() -> None:
    res = run_doops(["status", "--timeout", "soon"], env=ENV)
    assert res.exit_code == 4 and "--timeout" in res.stderr
    res = run_doops(["status", "--help"])
    assert "--timeout DURATION" in res.stdout and "50s" in res.stdout


def test_abandoned_calls_do_not_keep_the_process_alive() -> None:
    """A ThreadPoolExecutor worker stuck in a call is joined at exit: the process would hang here."""
    code = ("import threading\nfrom doops.ops.status.engine import DaemonPool\n"
            "pool = DaemonPool(2)\nfut = pool.submit(threading.Event().wait)\npool.shutdown(wait=False)\n"
            "print('returned')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "returned\n"


def test_daemon_pool_keeps_the_executor_contract() -> None:
    pool = DaemonPool(2)
    assert list(pool.map(lambda x: x * 2, range(5))) == [0, 2, 4, 6, 8]
    fut = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fut.result(timeout=10)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(print)


# --watch: the interval is optional, and -o json/yaml print data per refresh.

def test_watch_without_a_value_is_every_30s(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_watch(app: Any, components: list[str], every: float, *args: Any, **kwargs: Any) -> None:
        seen.update(components=components, every=every, timeout=kwargs.get("timeout"))

    monkeypatch.setattr("doops.cli.watch.watch_status", fake_watch)
    res = run_doops(["status", "cache", "--watch"], env=ENV)
    assert res.exit_code == 0, res.stderr
    assert seen == {"components": ["cache"], "every": 30.0, "timeout": 50.0}
    res = run_doops(["status", "--watch", "2m", "--timeout", "20s"], env=ENV)
    assert seen["every"] == 120.0 and seen["timeout"] == 20.0


@pytest.mark.parametrize("value, problem", [("cache", "is a component"), ("0.5", "shorter than 1s"),
                                            ("often", "invalid duration")])
def test_watch_bad_interval_is_exit_4(value: str, problem: str) -> None:
    res = run_doops(["status", "--watch", value], env=ENV)
    assert res.exit_code == 4 and problem in res.stderr and res.stderr.count("\n") == 1


def _watch_twice(monkeypatch: pytest.MonkeyPatch, fmt: str) -> tuple[Any, list[float]]:
    from doops.cli import watch

    sleeps: list[float] = []
    monkeypatch.setattr(watch, "watch_status", functools.partial(watch.watch_status, sleep=sleeps.append,
                                                                 refreshes=2))
    with respx.mock(base_url=API) as router:
        router.get("/v2/functions/namespaces").respond(200, json={"namespaces": []})
        res = run_doops(["status", "functions", "--watch", "5", "-o", fmt], env=ENV)
    return res, sleeps


def test_watch_json_prints_one_document_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    res, sleeps = _watch_twice(monkeypatch, "json")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 2
    docs = [json.loads(line) for line in lines]
    assert [d["overall"] for d in docs] == ["ok", "ok"] and docs[0]["checks"][0]["component"] == "functions"
    assert sleeps == [5.0]  # slept between the two refreshes, not after the last


def test_watch_yaml_prints_one_document_per_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    res, _ = _watch_twice(monkeypatch, "yaml")
    assert res.exit_code == 0, res.stderr
    docs = list(yaml.safe_load_all(res.stdout))
    assert len(docs) == 2 and res.stdout.startswith("---") and all(d["overall"] == "ok" for d in docs)


def test_watch_table_redraws(monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.cli.context import Cli
    from doops.cli.watch import watch_status
    from doops.platform import Platform

    out = io.StringIO()
    sleeps: list[float] = []
    with respx.mock(base_url=API) as router:
        router.get("/v2/functions/namespaces").respond(200, json={"namespaces": []})
        monkeypatch.setenv("DIGITALOCEAN_ACCESS_TOKEN", CANARY_TOKEN)
        app = Cli(Platform())
        try:
            watch_status(app, ["functions"], 7, 4, 250, timeout=10, sleep=sleeps.append, refreshes=3, stream=out)
        finally:
            app.close()
    assert sleeps == [7, 7]
    assert "next in 7s" in out.getvalue() and "functions: ok" in out.getvalue()
