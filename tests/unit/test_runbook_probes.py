"""Runbook probes (doops.runbook.probes): the value each returns for expectations to judge, and a read that
cannot be made as a ProbeError (a wait keeps polling). HTTP through respx, TCP against a local socket, the rest
with their clients monkeypatched."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from doops.clients.dns import Answer, DnsUnreachable, Rec
from doops.clients.prom import PromClient
from doops.clients.spaces import ObjectHead
from doops.config import BucketConfig, Config, DnsConfig, PrometheusConfig, SpacesConfig
from doops.errors import UnknownStateError, UsageError
from doops.ops.seam import Cancel, FakeClock, RecordingSink
from doops.ops.status.model import COMPONENTS, CheckResult, Status, StatusReport
from doops.platform import Platform
from doops.runbook import probes as P
from doops.runbook.registry import PARAM_TYPES, ProbeError, StepContext, probes


def ctx(config: Config | None = None) -> StepContext:
    platform = Platform(access_token="t", clock=FakeClock(), _config=config or Config())
    return StepContext(platform, False, lambda q: True, RecordingSink(), Cancel())


def read(name: str, params: dict[str, Any], c: StepContext | None = None) -> Any:
    return probes()[name].read(c or ctx(), params)


def test_every_probe_is_listed_under_its_name_with_typed_params_and_a_doc() -> None:
    table = probes()
    assert set(table) == {"http", "sql", "status", "prometheus", "s3", "dns", "tcp"}
    for key, probe in table.items():
        assert probe.name == key and probe.doc, key
        for p in probe.params:
            assert p.type in PARAM_TYPES, (key, p.name, p.type)
    assert P.COMPONENTS == COMPONENTS  # written out to keep the status engine unloaded by validate


# -- http -----------------------------------------------------------------------------------------------------


@respx.mock
def test_http_returns_status_headers_body_and_json() -> None:
    route = respx.post("https://api.learnhub.example/healthz").mock(
        return_value=httpx.Response(200, json={"db": "ok", "n": 3}, headers={"X-Served-By": "nyc"}))
    value = read("http", {"url": "https://api.learnhub.example/healthz", "method": "post",
                          "headers": {"X-Check": "runbook"}, "timeout": 2.0})
    assert value["status"] == 200 and value["json"] == {"db": "ok", "n": 3}
    assert value["headers"]["x-served-by"] == "nyc" and '"db"' in value["body"]
    assert route.calls.last.request.headers["x-check"] == "runbook"


@respx.mock
def test_http_answers_any_status_and_a_non_json_body_is_null_json() -> None:
    respx.get("https://api.learnhub.example/").mock(return_value=httpx.Response(503, text="<h1>down</h1>"))
    value = read("http", {"url": "https://api.learnhub.example/"})
    assert (value["status"], value["body"], value["json"]) == (503, "<h1>down</h1>", None)


@respx.mock
def test_http_without_an_answer_is_a_probe_error() -> None:
    respx.get("https://api.learnhub.example/").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ProbeError, match="no answer"):
        read("http", {"url": "https://api.learnhub.example/"})


@respx.mock
def test_http_timeout_is_the_probes_own() -> None:
    seen: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get("timeout"))
        return httpx.Response(204)

    respx.get("https://api.learnhub.example/").mock(side_effect=answer)
    read("http", {"url": "https://api.learnhub.example/", "timeout": 1.5})
    assert seen[-1]["read"] == 1.5 and seen[-1]["connect"] == 1.5


# -- sql ------------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    from dataclasses import dataclass

    @dataclass
    class Target:
        host: str = "h"
        dbname: str = "defaultdb"

    state: dict[str, Any] = {"answer": (True, 1), "queries": []}

    def find_cluster(platform: Any, name: str) -> tuple[Any, list[Any]]:
        if name != "learnhub-db":
            raise UsageError(f"database cluster {name!r} not found")
        cluster = type("C", (), {"name": name, "connection": object()})()
        return cluster, [cluster]

    def first_value(target: Any, query: str) -> tuple[bool, Any]:
        state["queries"].append((target.dbname, query))
        if isinstance(state["answer"], Exception):
            raise state["answer"]
        return state["answer"]

    monkeypatch.setattr("doops.ops.pitr.find_cluster", find_cluster)
    monkeypatch.setattr("doops.ops.dbtarget.db_target", lambda platform, cluster, conn: Target())
    monkeypatch.setattr("doops.clients.pg.first_value", first_value)
    yield state


@pytest.mark.parametrize(("answer", "value"), [
    ((True, 1), 1), ((True, Decimal("42")), 42), ((True, Decimal("1.5")), 1.5), ((True, "ok"), "ok"),
    ((True, datetime(2026, 11, 26, 5, 0, tzinfo=UTC)), "2026-11-26T05:00:00Z"), ((False, None), None),
    ((True, None), None),
])
def test_sql_returns_the_first_column_as_plain_data(fake_pg: dict[str, Any], answer: Any, value: Any) -> None:
    fake_pg["answer"] = answer
    got = read("sql", {"cluster": "learnhub-db", "query": "select 1"})
    assert got == value and type(got) is type(value)
    assert fake_pg["queries"] == [("defaultdb", "select 1")]


def test_sql_database_overrides_the_connections(fake_pg: dict[str, Any]) -> None:
    read("sql", {"cluster": "learnhub-db", "query": "select count(*) from users", "database": "learnhub"})
    assert fake_pg["queries"] == [("learnhub", "select count(*) from users")]


def test_sql_unknown_cluster_or_failed_query_is_a_probe_error(fake_pg: dict[str, Any]) -> None:
    with pytest.raises(ProbeError, match="'learnhub-db-ams3' not found"):
        read("sql", {"cluster": "learnhub-db-ams3", "query": "select 1"})
    fake_pg["answer"] = UnknownStateError("cannot connect to postgres://u:***@h:5432/d")
    with pytest.raises(ProbeError, match="cannot connect"):
        read("sql", {"cluster": "learnhub-db", "query": "select 1"})


# -- status ---------------------------------------------------------------------------------------------------


def _report(*checks: tuple[str, str, str, Status]) -> StatusReport:
    return StatusReport(Status.OK, datetime(2026, 11, 26, tzinfo=UTC),
                        [CheckResult(c, r, k, s, f"{r} {k} {s.value}", {"k": k}) for c, r, k, s in checks], 3, 1.0)


@pytest.fixture
def fake_status(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    report = _report(("databases", "learnhub-db", "replication", Status.WARN),
                     ("databases", "learnhub-db", "connections", Status.OK),
                     ("databases", "learnhub-db-ams3", "replication", Status.CRIT),
                     ("databases", "learnhub-db", "backups", Status.SKIPPED))

    def run_status(platform: Any, components: Any, timeout: float | None = None) -> StatusReport:
        calls.append((list(components), timeout))
        return report

    monkeypatch.setattr("doops.ops.status.run_status", run_status)
    return calls


def test_status_of_one_check_gives_its_status_summary_and_details(fake_status: list[Any]) -> None:
    value = read("status", {"component": "databases", "check": "connections"})
    assert fake_status == [(["databases"], 50.0)]
    assert value == {"status": "ok", "summary": "learnhub-db connections ok", "details": {"k": "connections"},
                     "resource": "learnhub-db", "check": "connections",
                     "checks": [{"resource": "learnhub-db", "check": "connections", "status": "ok"}]}


def test_status_of_several_checks_is_the_worst(fake_status: list[Any]) -> None:
    value = read("status", {"component": "databases", "check": "replication"})
    assert (value["status"], value["resource"]) == ("crit", "learnhub-db-ams3") and len(value["checks"]) == 2
    value = read("status", {"component": "databases", "resource": "learnhub-db"})
    assert (value["status"], value["check"]) == ("warn", "replication")
    assert read("status", {"component": "databases", "check": "backups"})["status"] == "skipped"


def test_status_without_a_matching_check_names_those_there_are(fake_status: list[Any]) -> None:
    with pytest.raises(ProbeError, match=r"no check \*/lag .*learnhub-db/connections"):
        read("status", {"component": "databases", "check": "lag"})


# -- prometheus -----------------------------------------------------------------------------------------------


class FakeProm:
    def __init__(self, result: Any) -> None:
        self.result = result

    def custom_query(self, expr: str) -> Any:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _prom(result: Any) -> PromClient:
    client = PromClient.__new__(PromClient)
    client.url, client._prom = "http://127.0.0.1:9090", FakeProm(result)
    return client


@pytest.mark.parametrize(("result", "value"), [
    ([{"metric": {"job": "api"}, "value": [1700000000.0, "1"]}, {"metric": {}, "value": [0, "0"]}], 1.0),
    ([1700000000.0, "2"], 2.0),  # a scalar expression
    ([], None),
])
def test_prometheus_first_value(result: Any, value: float | None) -> None:
    assert _prom(result).first_value("up") == value


def test_prometheus_probe_reads_the_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(PromClient, "__init__", lambda self, url, timeout=5.0: seen.append(url))
    monkeypatch.setattr(PromClient, "first_value", lambda self, expr: 3.0 if expr == "sum(up)" else None)
    c = ctx(Config(prometheus=PrometheusConfig(url="http://127.0.0.1:9090")))
    assert read("prometheus", {"query": "sum(up)"}, c) == 3.0 and seen == ["http://127.0.0.1:9090"]


def test_prometheus_unconfigured_or_failing_is_a_probe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    with pytest.raises(ProbeError, match="no Prometheus URL"):
        read("prometheus", {"query": "up"})
    monkeypatch.setattr(PromClient, "__init__", lambda self, url, timeout=5.0: None)
    monkeypatch.setattr(PromClient, "first_value",
                        lambda self, expr: (_ for _ in ()).throw(UnknownStateError("Prometheus at x: bad_data")))
    with pytest.raises(ProbeError, match="bad_data"):
        read("prometheus", {"query": "up{"}, ctx(Config(prometheus=PrometheusConfig(url="http://127.0.0.1:1"))))


# -- s3 -------------------------------------------------------------------------------------------------------


def test_s3_heads_the_object_in_the_buckets_region(monkeypatch: pytest.MonkeyPatch) -> None:
    regions: list[str] = []

    def make_client(cfg: Any, region: str) -> str:
        regions.append(region)
        return "s3"

    monkeypatch.setattr("doops.clients.spaces.make_client", make_client)
    heads = {"a.txt": ObjectHead("a.txt", True, "abc", datetime(2026, 11, 26, 5, tzinfo=UTC), 12)}
    monkeypatch.setattr("doops.clients.spaces.head_object",
                        lambda client, bucket, key: heads.get(key, ObjectHead(key, False)))
    c = ctx(Config(spaces=SpacesConfig(buckets=[BucketConfig("learnhub-uploads", "nyc3", "learnhub-uploads-ams3",
                                                             "ams3")])))
    assert read("s3", {"bucket": "learnhub-uploads", "key": "a.txt"}, c) == {
        "exists": True, "etag": "abc", "size": 12, "last_modified": "2026-11-26T05:00:00Z"}
    assert read("s3", {"bucket": "learnhub-uploads-ams3", "key": "b.txt"}, c) == {
        "exists": False, "etag": None, "size": None, "last_modified": None}
    read("s3", {"bucket": "other", "key": "a.txt", "region": "sfo3"}, c)
    assert regions == ["nyc3", "ams3", "sfo3"]


# -- dns ------------------------------------------------------------------------------------------------------


def _dns_ctx() -> StepContext:
    return ctx(Config(dns=DnsConfig(nameservers=["127.0.0.1:5301", "127.0.0.1:5302"])))


def test_dns_answer_when_every_server_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[Any, ...]] = []

    def lookup(host: str, port: int, qname: str, qtype: str) -> Answer:
        asked.append((port, qname.rstrip("."), qtype))
        return Answer(f"{host}:{port}", qname, qtype, authoritative=True,
                      answer=[Rec("api.learnhub.example.", "CNAME", 30 + port % 2, "learnhub-api.example.")])

    monkeypatch.setattr("doops.clients.dns.query", lookup)
    value = read("dns", {"name": "api.learnhub.example", "type": "cname"}, _dns_ctx())
    assert asked == [(5301, "api.learnhub.example", "CNAME"), (5302, "api.learnhub.example", "CNAME")]
    assert value["answer"] == ["learnhub-api.example."] and value["ttl"] == 30 and value["rcode"] == "NOERROR"
    assert [s["server"] for s in value["servers"]] == ["127.0.0.1:5301", "127.0.0.1:5302"]


def test_dns_answer_is_null_when_servers_disagree_or_one_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(host: str, port: int, qname: str, qtype: str) -> Answer:
        if port == 5302 and qtype == "A":
            raise DnsUnreachable("name server 127.0.0.1:5302 did not answer")
        ip = "10.0.0.1" if port == 5301 else "10.0.0.2"
        return Answer(f"{host}:{port}", qname, qtype, authoritative=True, answer=[Rec(qname, qtype, 30, ip)])

    monkeypatch.setattr("doops.clients.dns.query", lookup)
    value = read("dns", {"name": "api.learnhub.example."}, _dns_ctx())
    assert value["answer"] is None and value["servers"][1]["error"] == "name server 127.0.0.1:5302 did not answer"
    assert value["servers"][0]["answer"] == ["10.0.0.1"]
    value = read("dns", {"name": "api.learnhub.example.", "type": "AAAA"}, _dns_ctx())
    assert value["answer"] is None and [s["answer"] for s in value["servers"]] == [["10.0.0.1"], ["10.0.0.2"]]


def test_dns_no_server_answering_is_a_probe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(host: str, port: int, qname: str, qtype: str) -> Answer:
        raise DnsUnreachable(f"name server {host}:{port} refused")

    monkeypatch.setattr("doops.clients.dns.query", lookup)
    with pytest.raises(ProbeError, match=r"5301 refused.*5302 refused"):
        read("dns", {"name": "api.learnhub.example"}, _dns_ctx())


# -- tcp ------------------------------------------------------------------------------------------------------


def test_tcp_true_when_a_local_server_accepts() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted = threading.Event()

    def accept() -> None:
        conn, _ = server.accept()
        accepted.set()
        conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        assert read("tcp", {"host": "127.0.0.1", "port": server.getsockname()[1], "timeout": 2.0}) is True
        assert accepted.wait(5)
    finally:
        server.close()


def test_tcp_false_when_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    assert read("tcp", {"host": "127.0.0.1", "port": port, "timeout": 2.0}) is False


def test_tcp_unresolvable_host_is_a_probe_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def gai(*args: Any, **kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", gai)
    with pytest.raises(ProbeError, match=r"db\.learnhub\.example does not resolve"):
        read("tcp", {"host": "db.learnhub.example", "port": 5432})
