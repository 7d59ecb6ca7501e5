"""Runbook probes and the sandbox.fault action against a running sandbox: each probe reads a real value through
doops's clients (no fakes), and a fault injected by a step is seen by a probe, then cleared by another step."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from doops.ops.seam import Cancel, RecordingSink
from doops.platform import Platform
from doops.runbook.registry import StepContext, actions, probes
from tests.helpers import wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration]


@pytest.fixture
def ctx(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[StepContext]:
    """A step's context on the sandbox, as `. env.sh && doops runbook run` would make it."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    platform = Platform(config_path=sandbox.env["DOOPS_CONFIG"], config_explicit=True, access_token=sandbox.token,
                        api_url=sandbox.state["api_url"])
    yield StepContext(platform, False, lambda q: True, RecordingSink(), Cancel())
    platform.close()


def _api_live(ctx: StepContext) -> tuple[str, str]:
    from doops.ops.dns_check import health_path

    app = next(a for a in ctx.platform.do.list_app_endpoints() if a.name == "learnhub-api")
    assert app.live_url, app
    return app.live_url.rstrip("/"), health_path(ctx.platform, app)


def test_http_probe_reads_the_apps_health_path(ctx: StepContext) -> None:
    live, path = _api_live(ctx)
    value = probes()["http"].read(ctx, {"url": live + path})
    assert value["status"] == 200, value
    assert isinstance(value["headers"], dict) and isinstance(value["body"], str)


def test_sql_probe_selects_on_the_primary(ctx: StepContext) -> None:
    assert probes()["sql"].read(ctx, {"cluster": "learnhub-db", "query": "select 1"}) == 1
    assert probes()["sql"].read(ctx, {"cluster": "learnhub-db", "query": "select pg_is_in_recovery()"}) is False
    assert probes()["sql"].read(ctx, {"cluster": "learnhub-db", "query": "select 1 where false"}) is None


def test_sql_probe_runs_read_only(ctx: StepContext) -> None:
    from doops.runbook.registry import ProbeError

    with pytest.raises(ProbeError, match="read-only"):
        probes()["sql"].read(ctx, {"cluster": "learnhub-db", "query": "create table runbook_probe_write (id int)"})


def test_status_probe_judges_the_databases(ctx: StepContext) -> None:
    value = probes()["status"].read(ctx, {"component": "databases", "resource": "learnhub-db", "check": "status"})
    assert value["status"] == "ok", value
    assert value["resource"] == "learnhub-db" and value["summary"]
    every = probes()["status"].read(ctx, {"component": "databases"})
    assert len(every["checks"]) > 1 and every["status"] in ("ok", "warn", "unknown", "crit")


def test_prometheus_probe_reads_up(sandbox: Sandbox, ctx: StepContext) -> None:
    assert sandbox.state["prometheus_url"], "the sandbox runs without Prometheus: run scripts/install-system-deps.sh"
    value = wait_for(lambda: probes()["prometheus"].read(ctx, {"query": "max(up)"}), timeout=30,
                     what="a scrape target up in Prometheus")
    assert value == 1.0
    assert probes()["prometheus"].read(ctx, {"query": "1 + 1"}) == 2.0
    assert probes()["prometheus"].read(ctx, {"query": 'up{job="no-such-job"}'}) is None


def test_s3_probe_heads_an_existing_object(ctx: StepContext) -> None:
    from doops.clients import spaces

    client = spaces.make_client(ctx.platform.config.spaces, "nyc3")
    key = spaces.list_keys(client, "learnhub-media", "", 1)[0]
    value = probes()["s3"].read(ctx, {"bucket": "learnhub-media", "key": key})
    assert value["exists"] is True and value["etag"] and value["size"] is not None and value["last_modified"]
    missing = probes()["s3"].read(ctx, {"bucket": "learnhub-media", "key": "no/such/object.txt"})
    assert missing == {"exists": False, "etag": None, "size": None, "last_modified": None}


def test_dns_probe_asks_the_authoritative_server(ctx: StepContext) -> None:
    record = next(r for r in ctx.platform.do.list_domain_records("learnhub.example", name="api.learnhub.example",
                                                                 rtype="CNAME"))
    value = probes()["dns"].read(ctx, {"name": "api.learnhub.example", "type": "CNAME"})
    assert value["answer"] == [record.data.lower()], value
    assert value["ttl"] == record.ttl and all(s["authoritative"] for s in value["servers"])


def test_tcp_probe_connects_to_the_api_port(sandbox: Sandbox, ctx: StepContext) -> None:
    url = urlsplit(sandbox.state["api_url"])
    assert probes()["tcp"].read(ctx, {"host": url.hostname, "port": url.port, "timeout": 2.0}) is True


def test_fault_action_injects_and_clears_a_fault(sandbox: Sandbox, ctx: StepContext) -> None:
    """An app made unhealthy by a step is seen so by the status probe, and healthy again after `fault: clear`."""
    fault = actions()["sandbox.fault"]
    status = probes()["status"]

    def apps_health() -> str:
        return str(status.read(ctx, {"component": "apps", "resource": "learnhub-api", "check": "health"})["status"])

    assert apps_health() == "ok"
    res = fault.run(ctx, {"fault": "app-unhealthy", "target": "learnhub-api", "dir": str(sandbox.dir)})
    assert res.ok and res.outputs["kind"] == "app-unhealthy", res
    wait_for(lambda: apps_health() == "crit", timeout=30, what="learnhub-api judged unhealthy")
    res = fault.run(ctx, {"fault": "clear", "dir": str(sandbox.dir)})
    assert res.ok and res.outputs["kind"] == "clear", res
    wait_for(lambda: apps_health() == "ok", timeout=30, what="learnhub-api healthy again")
