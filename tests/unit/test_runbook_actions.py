"""Runbook actions (doops.runbook.actions): each maps its step's ``with`` to the operation's options, passes the
run's confirm/events/cancel and dry-run through, and turns the result into outputs; db.delete deletes only what
the run created; sandbox.fault maps every fault kind generically. Operations are monkeypatched: these tests
pin the mapping, the operations have their own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from doops.clients.dns import Answer, Rec
from doops.clients.models import DomainRecord
from doops.config import Config, DnsConfig, DnsRecordConfig
from doops.errors import ApiNotFound, UsageError
from doops.ops.seam import Cancel, FakeClock, Outcome, RecordingSink
from doops.platform import Platform
from doops.runbook import actions as A
from doops.runbook.registry import PARAM_TYPES, StepContext, actions
from doops.sandbox import faults_spec as F


class FakeDo:
    """The DigitalOcean client calls actions make themselves (db.delete, dns.switch)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.records = [DomainRecord(7, "CNAME", "api", "learnhub-api-nyc.ondigitalocean.app.", 30)]
        self.missing: set[str] = set()

    def delete_database_cluster(self, cluster_id: str) -> None:
        self.calls.append(("delete", cluster_id))
        if cluster_id in self.missing:
            raise ApiNotFound(404, "not_found", "no such cluster", None)

    def list_domain_records(self, domain: str, name: str | None = None, rtype: str | None = None) -> list[Any]:
        self.calls.append(("list_records", domain, name, rtype))
        return [r for r in self.records if rtype is None or r.type == rtype]

    def update_domain_record(self, domain: str, record_id: int, body: dict[str, Any]) -> DomainRecord:
        self.calls.append(("update", domain, record_id, body))
        rec = next(r for r in self.records if r.id == record_id)
        rec.data, rec.ttl = body["data"], body["ttl"]
        return rec


def ctx(dry_run: bool = False, confirm: bool = True, config: Config | None = None) -> StepContext:
    platform = Platform(access_token="t", clock=FakeClock(datetime(2026, 11, 26, 5, 0, tzinfo=UTC)),
                        _config=config or Config(), _do=FakeDo())  # type: ignore[arg-type]
    return StepContext(platform, dry_run, lambda q: confirm, RecordingSink(), Cancel())


class Recorder:
    """Stands in for an operation: keeps what it was called with, returns a canned result."""

    def __init__(self, result: Any = None, raises: Exception | None = None) -> None:
        self.result, self.raises = result, raises
        self.calls: list[dict[str, Any]] = []

    def __call__(self, platform: Any, opts: Any, **kw: Any) -> Any:
        self.calls.append({"platform": platform, "opts": opts, **kw})
        if self.raises:
            raise self.raises
        return self.result

    @property
    def opts(self) -> Any:
        return self.calls[-1]["opts"]


# -- the table ------------------------------------------------------------------------------------------------


def test_every_action_is_listed_under_its_name_with_typed_params_and_a_doc() -> None:
    table = actions()
    assert set(table) == {"db.failover", "db.pitr", "db.delete", "cdn.purge", "app.rollback", "app.redeploy",
                          "app.restart", "app.failover", "dns.switch", "sandbox.fault", "s3.put", "s3.delete",
                          "sql.exec", "cache.delete"}
    for key, action in table.items():
        assert action.name == key
        assert action.doc and action.outputs, key
        assert action.destructive, key
        names = [p.name for p in action.params]
        assert len(names) == len(set(names)), key
        for p in action.params:
            assert p.type in PARAM_TYPES, (key, p.name, p.type)
            assert not p.choices or p.type == "string", (key, p.name)


def _sample_results() -> dict[str, Any]:
    from doops.ops.app import AppResult
    from doops.ops.cdn import PurgeResult
    from doops.ops.failover import FailoverResult
    from doops.ops.failover_app import AppFailoverResult, RecordChange
    from doops.ops.pitr import PitrResult
    from doops.ops.sandbox import FaultApplied

    app = AppResult("rollback", "learnhub-api", 300.0, 600.0)
    return {"db.failover": FailoverResult("learnhub-db", "learnhub-db-ams3", "ams3", False, 120.0),
            "db.pitr": PitrResult("learnhub-db", None, False, 120.0, 60.0),
            "cdn.purge": PurgeResult(None, 1), "app.rollback": app, "app.redeploy": app, "app.restart": app,
            "app.failover": AppFailoverResult("a", "b", "ams3", RecordChange("d", "n", "CNAME"), 60.0, 300.0),
            "sandbox.fault": FaultApplied("clear", {})}


@pytest.mark.parametrize("name", ["db.failover", "db.pitr", "cdn.purge", "app.rollback", "app.redeploy",
                                  "app.restart", "app.failover", "sandbox.fault"])
def test_declared_outputs_are_the_result_fields(name: str) -> None:
    """References are checked against ``outputs`` before a run: they must be exactly what the result gives."""
    from doops.serialize import to_data

    assert set(actions()[name].outputs) == set(to_data(_sample_results()[name]))


# -- db.failover ----------------------------------------------------------------------------------------------


def _failover_result(outcome: Outcome = Outcome.OK, message: str = "") -> Any:
    from doops.ops.failover import FailoverResult, NewPrimary

    r = FailoverResult("learnhub-db", "learnhub-db-ams3", "ams3", False, 120.0, outcome=outcome, message=message)
    r.new_primary = NewPrimary("id-1", "learnhub-db-ams3", "10.0.0.9", 25060)
    r.rto_seconds, r.data_loss = 7.5, {"seconds": 0.4}
    return r


def test_failover_maps_params_to_options_and_result_to_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_failover_result())
    monkeypatch.setattr("doops.ops.failover.failover", op)
    c = ctx()
    res = A.ACTIONS["db.failover"].run(c, {"region": "ams3", "accept_data_loss": True, "max_lag_seconds": "5s",
                                           "max_lag_bytes": 1024, "timeout": 90.0, "rto": 120,
                                           "detected_at": "2026-11-26T04:59:00Z", "replica": "learnhub-db-ams3"})
    o = op.opts
    assert (o.region, o.replica, o.cluster, o.accept_data_loss) == ("ams3", "learnhub-db-ams3", None, True)
    assert (o.max_lag_seconds, o.max_lag_bytes, o.timeout_seconds, o.rto_seconds) == (5.0, 1024, 90.0, 120.0)
    assert o.detected_at == datetime(2026, 11, 26, 4, 59, tzinfo=UTC) and o.dry_run is False
    call = op.calls[-1]
    assert call["platform"] is c.platform and call["events"] is c.events and call["cancel"] is c.cancel
    assert call["confirm"] is c.confirm
    assert res.ok and res.outcome == "ok" and res.error is None
    assert res.outputs["new_primary"] == {"id": "id-1", "name": "learnhub-db-ams3", "host": "10.0.0.9",
                                          "port": 25060}
    assert res.outputs["rto_seconds"] == 7.5 and res.outputs["result"] == "ok"


def test_a_failover_refusal_names_the_step_parameter_not_the_cli_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    message = ("failover of learnhub-db refused, nothing sent: replica lag: primary down: lag cannot be measured, "
               "so data loss is unknown; pass --accept-data-loss to promote anyway")
    monkeypatch.setattr("doops.ops.failover.failover", Recorder(_failover_result(Outcome.REFUSED, message)))
    res = A.ACTIONS["db.failover"].run(ctx(), {"region": "ams3"})
    assert not res.ok and res.outcome == "refused" and res.error is not None
    assert "--accept-data-loss" not in res.error
    assert res.error.endswith("pass accept_data_loss: true (the step's parameter) to promote anyway")


def test_failover_defaults_when_only_the_region_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_failover_result())
    monkeypatch.setattr("doops.ops.failover.failover", op)
    A.ACTIONS["db.failover"].run(ctx(), {"region": "ams3"})
    o = op.opts
    assert (o.accept_data_loss, o.max_lag_bytes, o.max_lag_seconds, o.rto_seconds, o.timeout_seconds) == \
        (False, None, None, None, 600.0)


def test_dry_run_passes_through_and_a_dry_run_outcome_is_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_failover_result(Outcome.DRY_RUN, "dry run"))
    monkeypatch.setattr("doops.ops.failover.failover", op)
    res = A.ACTIONS["db.failover"].run(ctx(dry_run=True), {"region": "ams3"})
    assert op.opts.dry_run is True
    assert res.ok and res.outcome == "dry_run"
    # The same outcome when the run was not a dry run is not what was asked for.
    res = A.ACTIONS["db.failover"].run(ctx(dry_run=False), {"region": "ams3"})
    assert not res.ok and res.outcome == "dry_run"


@pytest.mark.parametrize("outcome", [Outcome.OBJECTIVE_MISSED, Outcome.REFUSED, Outcome.VERIFICATION_FAILED,
                                     Outcome.DECLINED, Outcome.INTERRUPTED])
def test_any_outcome_but_ok_fails_the_step_with_its_message(monkeypatch: pytest.MonkeyPatch,
                                                            outcome: Outcome) -> None:
    monkeypatch.setattr("doops.ops.failover.failover", Recorder(_failover_result(outcome, f"ended {outcome}")))
    res = A.ACTIONS["db.failover"].run(ctx(), {"region": "ams3"})
    assert not res.ok and res.outcome == outcome.value and res.error == f"ended {outcome}"
    assert res.outputs["new_primary"]["name"] == "learnhub-db-ams3"  # what it did is still there


def test_bad_input_found_at_run_time_is_a_refused_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("doops.ops.failover.failover",
                        Recorder(raises=UsageError("no replica of learnhub-db in region fra1", hint="replicas: x")))
    res = A.ACTIONS["db.failover"].run(ctx(), {"region": "fra1"})
    assert (res.ok, res.outcome, res.outputs) == (False, "refused", {})
    assert res.error == "no replica of learnhub-db in region fra1 (replicas: x)"


def test_bad_detected_at_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_failover_result())
    monkeypatch.setattr("doops.ops.failover.failover", op)
    res = A.ACTIONS["db.failover"].run(ctx(), {"region": "ams3", "detected_at": "yesterday-ish"})
    assert not res.ok and res.outcome == "refused" and "detected_at" in (res.error or "")
    assert op.calls == []


# -- db.pitr and db.delete ------------------------------------------------------------------------------------


def _pitr_result(outcome: Outcome = Outcome.OK, cleaned: bool = False, made: bool = True) -> Any:
    from doops.ops.pitr import NewCluster, PitrResult

    r = PitrResult("learnhub-db", datetime(2026, 11, 26, 4, 45, tzinfo=UTC), False, 120.0, 60.0, outcome=outcome)
    if made:
        r.new_cluster = NewCluster("c-new", "learnhub-db-pitr", "nyc3", "db-s-1vcpu-1gb", "h", 25060)
    r.cleaned_up, r.rpo_seconds = cleaned, 0.8
    return r


def test_pitr_maps_params_and_records_the_cluster_it_created(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_pitr_result())
    monkeypatch.setattr("doops.ops.pitr.pitr", op)
    c = ctx()
    res = A.ACTIONS["db.pitr"].run(c, {"to": "-15m", "name": "learnhub-db-pitr", "verify_sql": "select 1",
                                       "nodes": 1, "rto": "2m", "rpo": 60, "timeout": 900.0})
    o = op.opts
    assert o.to == datetime(2026, 11, 26, 4, 45, tzinfo=UTC) and o.latest is False  # on the platform's clock
    assert (o.name, o.verify_sql, o.nodes, o.rto_seconds, o.rpo_seconds, o.timeout_seconds, o.cleanup) == \
        ("learnhub-db-pitr", ["select 1"], 1, 120.0, 60.0, 900.0, False)
    assert res.ok and res.outputs["new_cluster"]["name"] == "learnhub-db-pitr" and res.outputs["rpo_seconds"] == 0.8
    assert c.created == [{"kind": "cluster", "id": "c-new", "name": "learnhub-db-pitr"}]


def test_pitr_records_a_cluster_left_by_a_failed_verification_but_not_a_cleaned_up_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    c = ctx()
    monkeypatch.setattr("doops.ops.pitr.pitr", Recorder(_pitr_result(Outcome.VERIFICATION_FAILED)))
    res = A.ACTIONS["db.pitr"].run(c, {"latest": True})
    assert not res.ok and [x["id"] for x in c.created] == ["c-new"]
    monkeypatch.setattr("doops.ops.pitr.pitr", Recorder(_pitr_result(Outcome.VERIFICATION_FAILED)))
    A.ACTIONS["db.pitr"].run(c, {"latest": True})
    assert len(c.created) == 1  # the same cluster (a resumed run) is recorded once
    c2 = ctx()
    monkeypatch.setattr("doops.ops.pitr.pitr", Recorder(_pitr_result(cleaned=True)))
    assert A.ACTIONS["db.pitr"].run(c2, {"latest": True, "cleanup": True}).ok
    assert c2.created == []


def test_pitr_needs_exactly_one_of_to_and_latest(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_pitr_result())
    monkeypatch.setattr("doops.ops.pitr.pitr", op)
    for params in ({}, {"to": "-5m", "latest": True}):
        res = A.ACTIONS["db.pitr"].run(ctx(), params)
        assert not res.ok and res.outcome == "refused" and "exactly one of to and latest" in (res.error or "")
    assert op.calls == []


def test_delete_refuses_a_cluster_this_run_did_not_create() -> None:
    c = ctx()
    c.created.append({"kind": "cluster", "id": "c-new", "name": "learnhub-db-pitr"})
    res = A.ACTIONS["db.delete"].run(c, {"cluster": "learnhub-db"})
    assert not res.ok and res.outcome == "refused"
    assert "did not create" in (res.error or "") and "learnhub-db-pitr" in (res.error or "")
    assert c.platform.do.calls == []  # type: ignore[attr-defined]


def test_delete_removes_only_the_created_cluster_by_id_once() -> None:
    c = ctx()
    c.created.append({"kind": "cluster", "id": "c-new", "name": "learnhub-db-pitr"})
    res = A.ACTIONS["db.delete"].run(c, {"cluster": "learnhub-db-pitr"})
    assert res.ok and res.outputs == {"id": "c-new", "name": "learnhub-db-pitr", "deleted": True,
                                      "already_gone": False}
    assert c.platform.do.calls == [("delete", "c-new")]  # type: ignore[attr-defined]
    again = A.ACTIONS["db.delete"].run(c, {"cluster": "c-new"})
    assert not again.ok and "already deleted" in (again.error or "")
    assert len(c.platform.do.calls) == 1  # type: ignore[attr-defined]


def test_delete_dry_run_and_declined_send_nothing_and_a_gone_cluster_is_ok() -> None:
    for c, outcome in ((ctx(dry_run=True), "dry_run"), (ctx(confirm=False), "declined")):
        c.created.append({"kind": "cluster", "id": "c-new", "name": "n"})
        res = A.ACTIONS["db.delete"].run(c, {"cluster": "n"})
        assert res.outcome == outcome and res.ok is (outcome == "dry_run")
        assert c.platform.do.calls == []  # type: ignore[attr-defined]
    c = ctx()
    c.created.append({"kind": "cluster", "id": "c-gone", "name": "n"})
    c.platform.do.missing.add("c-gone")  # type: ignore[attr-defined]
    res = A.ACTIONS["db.delete"].run(c, {"cluster": "n"})
    assert res.ok and res.outputs["already_gone"] is True


# -- cdn.purge ------------------------------------------------------------------------------------------------


def test_purge_maps_params(monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.ops.cdn import PurgeResult

    op = Recorder(PurgeResult(None, 2, duration_seconds=1.5))
    monkeypatch.setattr("doops.ops.cdn.purge", op)
    res = A.ACTIONS["cdn.purge"].run(ctx(dry_run=True), {"paths": ["static/app.js", "img/*"], "endpoint": "cdn1",
                                                         "fold": 10, "verify": False, "wait": "30s"})
    o = op.opts
    assert (o.paths, o.endpoint, o.purge_all, o.fold, o.verify, o.wait_seconds, o.dry_run) == \
        (["static/app.js", "img/*"], "cdn1", False, 10, False, 30.0, True)
    assert res.ok and res.outputs["requested"] == 2 and res.outputs["duration_seconds"] == 1.5
    A.ACTIONS["cdn.purge"].run(ctx(), {"paths": "index.html", "all": False})
    assert op.opts.paths == ["index.html"] and op.opts.wait_seconds == 60.0


# -- apps -----------------------------------------------------------------------------------------------------


def _app_result(action: str) -> Any:
    from doops.ops.app import AppResult

    r = AppResult(action, "learnhub-api", 300.0, 600.0, deployment="d-new", to_deployment="d-good")
    r.rto_seconds = 42.0
    return r


def test_rollback_maps_params(monkeypatch: pytest.MonkeyPatch) -> None:
    op = Recorder(_app_result("rollback"))
    monkeypatch.setattr("doops.ops.app.rollback", op)
    res = A.ACTIONS["app.rollback"].run(ctx(dry_run=True), {"app": "learnhub-api", "to": " d-good ",
                                                            "commit": False, "rto": "5m", "timeout": 120.0})
    o = op.opts
    assert (o.app, o.to, o.commit, o.rto_seconds, o.timeout_seconds, o.dry_run) == \
        ("learnhub-api", "d-good", False, 300.0, 120.0, True)
    assert res.ok and res.outputs["to_deployment"] == "d-good" and res.outputs["rto_seconds"] == 42.0


def test_redeploy_and_restart_map_params(monkeypatch: pytest.MonkeyPatch) -> None:
    redeploy, restart = Recorder(_app_result("redeploy")), Recorder(_app_result("restart"))
    monkeypatch.setattr("doops.ops.app.redeploy", redeploy)
    monkeypatch.setattr("doops.ops.app.restart", restart)
    assert A.ACTIONS["app.redeploy"].run(ctx(), {"app": "learnhub-api", "force_build": True}).ok
    assert (redeploy.opts.app, redeploy.opts.force_build, redeploy.opts.timeout_seconds) == \
        ("learnhub-api", True, 600.0)
    res = A.ACTIONS["app.restart"].run(ctx(), {"app": "learnhub-api", "components": [" api ", "ws"], "rto": 60})
    assert (restart.opts.components, restart.opts.rto_seconds) == (["api", "ws"], 60.0)
    assert res.outputs["deployment"] == "d-new"


def test_redeploy_and_restart_dry_runs_read_the_app_and_send_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.clients.models import AppInfo

    app = AppInfo.__new__(AppInfo)
    app.id, app.name, app.components = "app-1", "learnhub-api", ["api", "ws"]
    monkeypatch.setattr("doops.ops.app.find_app", lambda platform, name: app)
    sent = Recorder(_app_result("restart"))
    monkeypatch.setattr("doops.ops.app.redeploy", sent)
    monkeypatch.setattr("doops.ops.app.restart", sent)
    res = A.ACTIONS["app.restart"].run(ctx(dry_run=True), {"app": "learnhub-api", "components": ["ws"]})
    assert res.ok and res.outcome == "dry_run" and res.outputs["components"] == ["ws"]
    assert res.outputs["dry_run"] is True and "restart ws of learnhub-api" in res.outputs["message"]
    res = A.ACTIONS["app.redeploy"].run(ctx(dry_run=True), {"app": "learnhub-api"})
    assert res.ok and res.outcome == "dry_run" and res.outputs["rto_target_seconds"] == 300.0
    bad = A.ACTIONS["app.restart"].run(ctx(dry_run=True), {"app": "learnhub-api", "components": ["db"]})
    assert not bad.ok and bad.outcome == "refused" and "no component 'db'" in (bad.error or "")
    assert sent.calls == []


def test_app_failover_maps_params(monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.ops.failover_app import AppFailoverResult, RecordChange

    result = AppFailoverResult("learnhub-api", "learnhub-api-ams3", "ams3",
                               RecordChange("learnhub.example", "api.learnhub.example", "CNAME", new="x."), 60, 300)
    result.dns_switched_seconds = 1.25
    op = Recorder(result)
    monkeypatch.setattr("doops.ops.failover_app.failover_app", op)
    res = A.ACTIONS["app.failover"].run(ctx(), {"region": " ams3 ", "record": "api", "timeout": "1m"})
    o = op.opts
    assert (o.region, o.app, o.record, o.timeout_seconds, o.dry_run) == ("ams3", None, "api", 60.0, False)
    assert res.ok and res.outputs["standby"] == "learnhub-api-ams3" and res.outputs["dns_switched_seconds"] == 1.25


# -- dns.switch -----------------------------------------------------------------------------------------------


def _dns_config() -> Config:
    return Config(dns=DnsConfig(nameservers=["127.0.0.1:5353"],
                                failover_records=[DnsRecordConfig("learnhub.example", "api", "CNAME", "learnhub-api")]))


def _serving(values: dict[str, str]) -> Any:
    """A name server answering the record's current value (from the fake API), authoritatively."""

    def lookup(host: str, port: int, qname: str, qtype: str) -> Answer:
        value = values["now"]
        return Answer(f"{host}:{port}", qname, qtype, authoritative=True,
                      answer=[Rec("api.learnhub.example.", "CNAME", 30, value)])

    return lookup


def test_dns_switch_updates_the_record_and_waits_for_the_name_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    c = ctx(config=_dns_config())
    served = {"now": "learnhub-api-nyc.ondigitalocean.app."}
    do = c.platform.do

    def lookup(host: str, port: int, qname: str, qtype: str) -> Answer:
        if c.platform.clock.monotonic() >= 2.0:  # the server picks the change up two (fake) seconds later
            served["now"] = do.records[0].data  # type: ignore[attr-defined]
        return _serving(served)(host, port, qname, qtype)

    monkeypatch.setattr("doops.clients.dns.query", lookup)
    res = A.ACTIONS["dns.switch"].run(c, {"name": "api.learnhub.example", "value": "learnhub-api-ams3.example",
                                          "timeout": 60.0})
    assert res.ok, res.error
    assert ("update", "learnhub.example", 7, {"type": "CNAME", "name": "api", "data": "learnhub-api-ams3.example.",
                                              "ttl": 30}) in do.calls  # type: ignore[attr-defined]
    assert res.outputs["old"] == "learnhub-api-nyc.ondigitalocean.app." and res.outputs["changed"] is True
    assert res.outputs["domain"] == "learnhub.example" and 2.0 <= res.outputs["switched_seconds"] < 5.0
    assert res.outputs["nameservers"] == [{"server": "127.0.0.1:5353", "answer": ["learnhub-api-ams3.example."],
                                           "error": None}]


def test_dns_switch_times_out_naming_the_lagging_server_and_dry_run_sends_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("doops.clients.dns.query", _serving({"now": "old.example."}))
    c = ctx(config=_dns_config())
    res = A.ACTIONS["dns.switch"].run(c, {"name": "api.learnhub.example", "value": "new.example", "timeout": 10})
    assert not res.ok and res.outcome == "verification_failed"
    assert "127.0.0.1:5353 (old.example.)" in (res.error or "")
    dry = ctx(dry_run=True, config=_dns_config())
    res = A.ACTIONS["dns.switch"].run(dry, {"name": "api.learnhub.example", "value": "new.example"})
    assert res.ok and res.outcome == "dry_run" and res.outputs["new"] == "new.example."
    assert [x[0] for x in dry.platform.do.calls] == ["list_records"]  # type: ignore[attr-defined]


def test_dns_switch_of_a_record_pointing_there_already_only_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("doops.clients.dns.query", _serving({"now": "learnhub-api-nyc.ondigitalocean.app."}))
    c = ctx(config=_dns_config())
    res = A.ACTIONS["dns.switch"].run(c, {"name": "api.learnhub.example.",
                                          "value": "LEARNHUB-API-NYC.ondigitalocean.app"})
    assert res.ok and res.outputs["changed"] is False
    assert [x[0] for x in c.platform.do.calls] == ["list_records"]  # type: ignore[attr-defined]


def test_dns_switch_of_an_unknown_record_is_refused() -> None:
    c = ctx(config=_dns_config())
    c.platform.do.records = []  # type: ignore[attr-defined]
    res = A.ACTIONS["dns.switch"].run(c, {"name": "www.learnhub.example", "value": "x.example"})
    assert not res.ok and res.outcome == "refused" and "no CNAME record www.learnhub.example" in (res.error or "")


# -- sandbox.fault --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "spec"), [
    ({"fault": "db-stop", "target": "learnhub-db"}, F.DbStop("learnhub-db")),
    ({"fault": "db-stop", "cluster": "learnhub-db"}, F.DbStop("learnhub-db")),
    ({"fault": "db-lag", "target": "learnhub-db-ams3"}, F.DbLag("learnhub-db-ams3")),
    ({"fault": "app-unhealthy", "app": "learnhub-api", "component": "api"}, F.AppUnhealthy("learnhub-api", "api")),
    ({"fault": "bad-release", "target": "learnhub-api"}, F.BadRelease("learnhub-api")),
    ({"fault": "spaces-replication", "action": "pause"}, F.SpacesReplication("pause")),
    ({"fault": "latency", "ms": 250, "route": "/v2/apps*"}, F.Latency(250, "/v2/apps*")),
    ({"fault": "http-error", "status": 503, "rate": 0.5}, F.HttpError(503, 0.5)),
    ({"fault": "throttle", "per_minute": 10}, F.Throttle(10)),
    ({"fault": "clear"}, F.Clear()),
])
def test_fault_params_map_to_the_typed_spec(params: dict[str, Any], spec: F.FaultSpec) -> None:
    assert A.fault_spec(params) == spec


def test_every_fault_kind_and_field_is_a_param() -> None:
    from dataclasses import fields

    params = {p.name: p for p in actions()["sandbox.fault"].params}
    assert set(params["fault"].choices) == {c.kind for c in F.ALL}
    for cls in F.ALL:
        for f in fields(cls):
            assert f.name in params, (cls.kind, f.name)
    assert params["ms"].type == "integer" and params["rate"].type == "number" and params["app"].type == "string"


@pytest.mark.parametrize(("params", "problem"), [
    ({"fault": "db-stop"}, "missing"),
    ({"fault": "db-stop", "target": "a", "ms": 5}, "does not take ms"),
    ({"fault": "clear", "target": "x"}, "takes no target"),
    ({"fault": "spaces-replication", "action": "stop"}, "pause or resume"),
    ({"fault": "volcano"}, "unknown fault 'volcano'"),
    ({"fault": "db-stop", "target": "a", "cluster": "b"}, "disagree"),
])
def test_a_bad_fault_is_refused_and_nothing_is_sent(monkeypatch: pytest.MonkeyPatch, params: dict[str, Any],
                                                    problem: str) -> None:
    sent = Recorder()
    monkeypatch.setattr("doops.ops.sandbox.fault", sent)
    res = A.ACTIONS["sandbox.fault"].run(ctx(), params)
    assert not res.ok and res.outcome == "refused" and problem in (res.error or ""), res.error
    assert sent.calls == []


def test_fault_applies_in_the_sandbox_dir_of_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from doops.ops.sandbox import FaultApplied

    seen: list[tuple[Path, Any]] = []

    def fault(d: Path, spec: Any) -> FaultApplied:
        seen.append((d, spec))
        return FaultApplied(spec.kind, {"cluster": "learnhub-db"})

    monkeypatch.setenv("DOOPS_SANDBOX_DIR", str(tmp_path))
    monkeypatch.setattr("doops.ops.sandbox.fault", fault)
    res = A.ACTIONS["sandbox.fault"].run(ctx(), {"fault": "db-stop", "target": "learnhub-db"})
    assert seen == [(tmp_path, F.DbStop("learnhub-db"))]
    assert res.ok and res.outputs == {"kind": "db-stop", "applied": {"cluster": "learnhub-db"}, "note": None}
    other = tmp_path / "other"
    A.ACTIONS["sandbox.fault"].run(ctx(), {"fault": "clear", "dir": str(other)})
    assert seen[-1] == (other, F.Clear())


def test_fault_dry_run_checks_the_sandbox_runs_and_injects_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    sent = Recorder()
    monkeypatch.setattr("doops.ops.sandbox.fault", sent)
    res = A.ACTIONS["sandbox.fault"].run(ctx(dry_run=True), {"fault": "clear", "dir": str(tmp_path)})
    assert not res.ok and res.outcome == "refused" and "no sandbox running" in (res.error or "")
    monkeypatch.setattr("doops.ops.sandbox.require_running", lambda d: {"api_url": "x"})
    res = A.ACTIONS["sandbox.fault"].run(ctx(dry_run=True), {"fault": "db-stop", "target": "learnhub-db",
                                                             "dir": str(tmp_path)})
    assert res.ok and res.outcome == "dry_run" and res.outputs["kind"] == "db-stop"
    assert sent.calls == []


# -- app.redeploy require_healthy -----------------------------------------------------------------------------


def _bad_release(active: bool) -> Any:
    r = _app_result("redeploy")
    r.outcome, r.message = Outcome.VERIFICATION_FAILED, "deployment d-new is ACTIVE but not healthy"
    r.timings.active = datetime(2026, 11, 26, 5, 0, 5, tzinfo=UTC) if active else None
    return r


def test_redeploy_of_a_known_bad_release_passes_once_active_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("doops.ops.app.redeploy", Recorder(_bad_release(active=True)))
    strict = A.ACTIONS["app.redeploy"].run(ctx(), {"app": "learnhub-api"})
    assert not strict.ok and strict.outcome == "verification_failed" and "not healthy" in (strict.error or "")
    told = A.ACTIONS["app.redeploy"].run(ctx(), {"app": "learnhub-api", "require_healthy": False})
    assert told.ok and told.outcome == "verification_failed" and told.outputs["deployment"] == "d-new"
    monkeypatch.setattr("doops.ops.app.redeploy", Recorder(_bad_release(active=False)))
    never_active = A.ACTIONS["app.redeploy"].run(ctx(), {"app": "learnhub-api", "require_healthy": False})
    assert not never_active.ok, "a deployment that never went ACTIVE fails the step whatever it was told"


# -- s3.put / s3.delete / sql.exec / cache.delete ------------------------------------------------------------


class FakeSpaces:
    """doops.clients.spaces as the s3 actions use it: one dict per bucket."""

    def __init__(self, objects: dict[str, dict[str, bytes]] | None = None) -> None:
        self.objects = objects if objects is not None else {}
        self.calls: list[tuple[Any, ...]] = []
        self.keep: set[str] = set()  # keys a delete reports deleted but that stay (a lying or racing store)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from doops.clients import spaces

        monkeypatch.setattr(spaces, "make_client", lambda cfg, region: region)
        for name in ("put_object", "head_object", "list_prefix", "delete_objects"):
            monkeypatch.setattr(spaces, name, getattr(self, name))

    def put_object(self, client: Any, bucket: str, key: str, body: bytes, **kw: Any) -> Any:
        from doops.clients.spaces import Put

        self.calls.append(("put", client, bucket, key, body, kw))
        self.objects.setdefault(bucket, {})[key] = body
        return Put(f"etag-{len(body)}")

    def head_object(self, client: Any, bucket: str, key: str) -> Any:
        from doops.clients.spaces import ObjectHead

        self.calls.append(("head", bucket, key))
        body = self.objects.get(bucket, {}).get(key)
        return ObjectHead(key, body is not None, f"etag-{len(body)}" if body is not None else None)

    def list_prefix(self, client: Any, bucket: str, prefix: str, limit: int) -> tuple[list[str], bool]:
        self.calls.append(("list", bucket, prefix))
        keys = sorted(k for k in self.objects.get(bucket, {}) if k.startswith(prefix))
        return keys[:limit], len(keys) > limit

    def delete_objects(self, client: Any, bucket: str, keys: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        self.calls.append(("delete", bucket, list(keys)))
        for k in keys:
            if k not in self.keep:
                self.objects.get(bucket, {}).pop(k, None)
        return list(keys), []

    def writes(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] in ("put", "delete")]


class FakeAccountDo(FakeDo):
    """Identity.of (the audit journal's platform line) asks for the account; the cache action for the CA."""

    def account(self) -> Any:
        raise ApiNotFound(404, "not_found", "no account here", None)

    def database_ca(self, cluster_id: str) -> str:
        return "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def wctx(dry_run: bool = False, confirm: bool = True) -> StepContext:
    platform = Platform(access_token="t", clock=FakeClock(datetime(2026, 11, 26, 5, 0, tzinfo=UTC)),
                        _config=Config(), _do=FakeAccountDo())  # type: ignore[arg-type]
    return StepContext(platform, dry_run, lambda q: confirm, RecordingSink(), Cancel())


def audit_lines(home: Path) -> list[dict[str, Any]]:
    import json

    path = home / ".local" / "state" / "doops" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_s3_put_writes_reads_back_and_audits(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    fake = FakeSpaces()
    fake.install(monkeypatch)
    res = A.ACTIONS["s3.put"].run(wctx(), {"bucket": "learnhub-media", "key": "static/app.js", "body": "x = 1",
                                           "cache_control": "public, max-age=60"})
    assert res.ok and res.outcome == "ok", res
    put = fake.writes()[0]
    assert put[2:5] == ("learnhub-media", "static/app.js", b"x = 1")
    assert put[5] == {"content_type": "text/javascript", "cache_control": "public, max-age=60"}
    assert res.outputs["etag"] == "etag-5" and res.outputs["region"] == "nyc3" and res.outputs["stamp"] is None
    assert [a["action"] for a in audit_lines(isolated_env)] == ["runbook s3.put"]


def test_s3_put_stamp_makes_every_run_a_new_version(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSpaces()
    fake.install(monkeypatch)
    first = A.ACTIONS["s3.put"].run(wctx(), {"bucket": "b", "key": "k.txt", "body": "canary", "stamp": True})
    second = A.ACTIONS["s3.put"].run(wctx(), {"bucket": "b", "key": "k.txt", "body": "canary", "stamp": True})
    assert first.ok and second.ok
    stamp = first.outputs["stamp"]
    assert stamp.startswith("2026-11-26T05:00:00") and stamp != second.outputs["stamp"]
    assert fake.writes()[0][4] == f"canary\n{stamp}\n".encode()


def test_s3_put_reads_a_file_and_refuses_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeSpaces()
    fake.install(monkeypatch)
    f = tmp_path / "app.css"
    f.write_bytes(b"body{}")
    assert A.ACTIONS["s3.put"].run(wctx(), {"bucket": "b", "key": "static/app.css", "file": str(f)}).ok
    assert fake.writes()[0][4] == b"body{}" and fake.writes()[0][5]["content_type"] == "text/css"
    for bad, words in (({"body": "a", "file": str(f)}, "exactly one of body and file"),
                       ({}, "exactly one of body and file"),
                       ({"file": str(tmp_path / "nope")}, "cannot read file"),
                       ({"body": "a", "key": "/abs"}, "not starting with '/'")):
        res = A.ACTIONS["s3.put"].run(wctx(), {"bucket": "b", "key": "k", **bad})
        assert not res.ok and res.outcome == "refused" and words in (res.error or ""), (bad, res)
    assert len(fake.writes()) == 1, "bad input sends nothing"


def test_s3_put_dry_run_and_decline_send_nothing(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    fake = FakeSpaces()
    fake.install(monkeypatch)
    dry = A.ACTIONS["s3.put"].run(wctx(dry_run=True), {"bucket": "b", "key": "k", "body": "x"})
    assert dry.ok and dry.outcome == "dry_run" and dry.outputs["etag"] is None
    no = A.ACTIONS["s3.put"].run(wctx(confirm=False), {"bucket": "b", "key": "k", "body": "x"})
    assert not no.ok and no.outcome == "declined"
    assert fake.calls == [] and audit_lines(isolated_env) == []


def test_s3_put_that_does_not_read_back_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSpaces()
    fake.install(monkeypatch)
    from doops.clients import spaces

    monkeypatch.setattr(spaces, "head_object", lambda c, b, k: spaces.ObjectHead(k, True, "another-etag"))
    res = A.ACTIONS["s3.put"].run(wctx(), {"bucket": "b", "key": "k", "body": "x"})
    assert not res.ok and res.outcome == "verification_failed" and "does not read back" in (res.error or "")


def _uploads() -> dict[str, dict[str, bytes]]:
    return {"learnhub-media": {"uploads/42/a.pdf": b"a", "uploads/42/b.png": b"bb", "uploads/421/c.pdf": b"c",
                               "static/app.js": b"js"}}


def test_s3_delete_by_prefix_deletes_only_under_it_and_verifies(monkeypatch: pytest.MonkeyPatch,
                                                               isolated_env: Path) -> None:
    fake = FakeSpaces(_uploads())
    fake.install(monkeypatch)
    res = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", "prefix": "uploads/42/"})
    assert res.ok and res.outcome == "ok", res
    assert res.outputs["deleted"] == ["uploads/42/a.pdf", "uploads/42/b.png"] and res.outputs["deleted_count"] == 2
    assert res.outputs["remaining"] == [] and res.outputs["cdn_prefix"] == "uploads/42/*"
    assert res.outputs["cdn_paths"] == ["uploads/42/a.pdf", "uploads/42/b.png"]
    assert sorted(fake.objects["learnhub-media"]) == ["static/app.js", "uploads/421/c.pdf"]
    assert [a["action"] for a in audit_lines(isolated_env)] == ["runbook s3.delete"]
    # Nothing under the prefix: nothing deleted, and the wildcard is what a CDN should still purge.
    again = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", "prefix": "uploads/42/"})
    assert again.ok and again.outputs["deleted"] == [] and again.outputs["cdn_paths"] == ["uploads/42/*"]


def test_s3_delete_that_leaves_objects_behind_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSpaces(_uploads())
    fake.keep = {"uploads/42/b.png"}
    fake.install(monkeypatch)
    res = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", "prefix": "uploads/42/"})
    assert not res.ok and res.outcome == "verification_failed"
    assert res.outputs["remaining"] == ["uploads/42/b.png"] and "still there" in (res.error or "")
    keys = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", "keys": ["uploads/42/b.png"]})
    assert not keys.ok and keys.outputs["remaining"] == ["uploads/42/b.png"]


def test_s3_delete_refuses_the_whole_bucket_and_too_many_sending_no_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSpaces(_uploads())
    fake.install(monkeypatch)
    for bad, words in (({"prefix": ""}, "whole bucket"), ({"prefix": "/"}, "whole bucket"),
                       ({"prefix": "uploads/", "keys": ["a"]}, "exactly one of keys and prefix"),
                       ({}, "exactly one of keys and prefix"), ({"prefix": "x/", "max_objects": 0}, "at least 1")):
        res = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", **bad})
        assert not res.ok and res.outcome == "refused" and words in (res.error or ""), (bad, res)
    many = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", "prefix": "uploads/", "max_objects": 2})
    assert not many.ok and many.outcome == "refused" and "more than 2" in (many.error or "")
    assert fake.writes() == [] and len(fake.objects["learnhub-media"]) == 4


def test_s3_delete_dry_run_lists_and_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSpaces(_uploads())
    fake.install(monkeypatch)
    res = A.ACTIONS["s3.delete"].run(wctx(dry_run=True), {"bucket": "learnhub-media", "prefix": "uploads/42/"})
    assert res.ok and res.outcome == "dry_run"
    assert res.outputs["matched"] == ["uploads/42/a.pdf", "uploads/42/b.png"] and res.outputs["deleted"] == []
    assert fake.writes() == [] and len(fake.objects["learnhub-media"]) == 4


def _fake_cluster(monkeypatch: pytest.MonkeyPatch, name: str = "learnhub-db", engine: str = "pg") -> None:
    from doops.clients.models import Connection, DatabaseCluster

    c = DatabaseCluster(id="c-1", name=name, engine=engine, version="15", region="nyc3", status="online",
                        num_nodes=1, connection=Connection(host="127.0.0.1", port=5432, user="doadmin",
                                                           database="defaultdb", password="pw-secret"))
    monkeypatch.setattr("doops.ops.pitr.find_cluster", lambda platform, wanted: (c, [c]))


def _plain_target(platform: Any, cluster: Any, conn: Any) -> Any:
    from doops.clients.pg import Target

    return Target.from_connection(conn, sslmode="require")


class FakeExec:
    def __init__(self, rowcount: int = 1, row: dict[str, Any] | None = None) -> None:
        self.rowcount, self.row = rowcount, row
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, target: Any, statement: str, params: Any = None, *, max_rows: int | None = None,
                 statement_timeout_ms: int = 60_000) -> Any:
        from doops.clients.pg import Executed

        self.calls.append((target.dbname, statement, params, max_rows, statement_timeout_ms))
        return Executed(self.rowcount, self.row, max_rows is None or self.rowcount <= max_rows)


def test_sql_exec_sends_params_apart_and_returns_the_row(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    from decimal import Decimal

    _fake_cluster(monkeypatch)
    ex = FakeExec(1, {"id": Decimal(42), "at": datetime(2026, 11, 26, 5, 0, tzinfo=UTC)})
    monkeypatch.setattr("doops.clients.pg.execute", ex)
    monkeypatch.setattr("doops.ops.dbtarget.db_target", _plain_target)
    res = A.ACTIONS["sql.exec"].run(wctx(), {"cluster": "learnhub-db", "database": "learnhub", "timeout": "5s",
                                             "statement": "delete from t where id = %(id)s returning id, now() at",
                                             "params": {"id": 42}, "max_rows": 1})
    assert res.ok and res.outcome == "ok", res
    assert ex.calls == [("learnhub", "delete from t where id = %(id)s returning id, now() at", {"id": 42}, 1, 5000)]
    assert res.outputs["rowcount"] == 1 and res.outputs["committed"] is True
    assert res.outputs["row"] == {"id": 42, "at": "2026-11-26T05:00:00Z"}
    line = audit_lines(isolated_env)[-1]
    assert line["action"] == "runbook sql.exec" and line["params"] == {"id": 42} and "pw-secret" not in str(line)


def test_sql_exec_over_max_rows_is_rolled_back_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch)
    monkeypatch.setattr("doops.clients.pg.execute", FakeExec(7))
    monkeypatch.setattr("doops.ops.dbtarget.db_target", _plain_target)
    res = A.ACTIONS["sql.exec"].run(wctx(), {"cluster": "learnhub-db", "statement": "delete from t", "max_rows": 1})
    assert not res.ok and res.outcome == "refused" and res.outputs["committed"] is False
    assert "touched 7 row(s), more than max_rows 1: rolled back" in (res.error or "")


def test_sql_exec_dry_run_and_bad_input_send_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch)
    ex = FakeExec()
    monkeypatch.setattr("doops.clients.pg.execute", ex)
    dry = A.ACTIONS["sql.exec"].run(wctx(dry_run=True), {"cluster": "learnhub-db", "statement": "delete from t"})
    assert dry.ok and dry.outcome == "dry_run" and dry.outputs["rowcount"] is None
    for bad, words in (({"statement": "  "}, "needs a statement"), ({"params": [1, 2]}, "must be a mapping"),
                       ({"max_rows": -1}, "0 or more")):
        res = A.ACTIONS["sql.exec"].run(wctx(), {"cluster": "learnhub-db", "statement": "delete from t", **bad})
        assert not res.ok and res.outcome == "refused" and words in (res.error or ""), (bad, res)
    assert ex.calls == []


class FakeCache:
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.scans: list[str] = []
        self.deleted: list[list[str]] = []
        self.sticky: set[str] = set()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from doops.clients import cache

        monkeypatch.setattr(cache, "scan_keys", self.scan_keys)
        monkeypatch.setattr(cache, "delete_keys", self.delete_keys)
        monkeypatch.setattr(cache, "existing", lambda t, keys: [k for k in keys if k in self.keys])

    def scan_keys(self, target: Any, pattern: str, limit: int) -> tuple[list[str], bool]:
        import re

        self.scans.append(pattern)
        # SCAN MATCH's glob: * and ? wild, a backslash makes the next character literal
        rx = "".join(re.escape(tok[1]) if tok.startswith("\\") else ".*" if tok == "*" else "." if tok == "?"
                     else re.escape(tok) for tok in re.findall(r"\\.|.", pattern))
        found = sorted(k for k in self.keys if re.fullmatch(rx, k))
        return found[:limit], len(found) > limit

    def delete_keys(self, target: Any, keys: list[str]) -> int:
        self.deleted.append(list(keys))
        gone = [k for k in keys if k in self.keys and k not in self.sticky]
        self.keys -= set(gone)
        return len([k for k in keys if k in self.keys or k in gone])


def test_cache_delete_by_literal_prefix_escapes_glob_characters(monkeypatch: pytest.MonkeyPatch,
                                                                isolated_env: Path) -> None:
    _fake_cluster(monkeypatch, "learnhub-cache", "valkey")
    fake = FakeCache({"learner:42:session", "learner:42:profile", "learner:420:session", "learner:4*:x"})
    fake.install(monkeypatch)
    res = A.ACTIONS["cache.delete"].run(wctx(), {"cache": "learnhub-cache", "prefix": "learner:42:"})
    assert res.ok and res.outcome == "ok", res
    assert fake.scans[0] == "learner:42:*" and res.outputs["deleted"] == 2 and res.outputs["remaining"] == []
    assert fake.keys == {"learner:420:session", "learner:4*:x"}
    star = A.ACTIONS["cache.delete"].run(wctx(), {"cache": "learnhub-cache", "prefix": "learner:4*:"})
    assert star.outputs["pattern"] == "learner:4\\*:*" and star.outputs["keys"] == ["learner:4*:x"]
    assert fake.keys == {"learner:420:session"}, "a * in an id is a literal, not a wildcard"
    assert [a["action"] for a in audit_lines(isolated_env)] == ["runbook cache.delete"] * 2


def test_cache_delete_refuses_everything_too_many_and_ambiguous_input(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, "learnhub-cache", "valkey")
    fake = FakeCache({f"learner:1:{i}" for i in range(5)})
    fake.install(monkeypatch)
    for bad, words in (({"pattern": "*"}, "matches every key"), ({"pattern": "**"}, "matches every key"),
                       ({}, "exactly one of keys, prefix and pattern"),
                       ({"prefix": "a:", "keys": ["b"]}, "exactly one of keys, prefix and pattern"),
                       ({"prefix": "learner:1:", "max_keys": 3}, "more than 3 key(s)")):
        res = A.ACTIONS["cache.delete"].run(wctx(), {"cache": "learnhub-cache", **bad})
        assert not res.ok and res.outcome == "refused" and words in (res.error or ""), (bad, res)
    assert fake.deleted == [] and len(fake.keys) == 5


def test_cache_delete_dry_run_deletes_nothing_and_leftovers_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cluster(monkeypatch, "learnhub-cache", "valkey")
    fake = FakeCache({"learner:7:a", "learner:7:b"})
    fake.install(monkeypatch)
    dry = A.ACTIONS["cache.delete"].run(wctx(dry_run=True), {"cache": "learnhub-cache", "prefix": "learner:7:"})
    assert dry.ok and dry.outcome == "dry_run" and dry.outputs["matched"] == 2 and fake.deleted == []
    fake.sticky = {"learner:7:b"}  # written again between the delete and the check
    res = A.ACTIONS["cache.delete"].run(wctx(), {"cache": "learnhub-cache", "keys": ["learner:7:a", "learner:7:b"]})
    assert not res.ok and res.outcome == "verification_failed" and res.outputs["remaining"] == ["learner:7:b"]


def test_new_write_actions_declare_the_outputs_they_give(monkeypatch: pytest.MonkeyPatch) -> None:
    """References are checked against ``outputs`` before a run: each key a run gives is declared."""
    FakeSpaces(_uploads()).install(monkeypatch)
    put = A.ACTIONS["s3.put"].run(wctx(), {"bucket": "b", "key": "k", "body": "x"})
    delete = A.ACTIONS["s3.delete"].run(wctx(), {"bucket": "learnhub-media", "prefix": "uploads/42/"})
    assert set(put.outputs) == set(A.S3_PUT_OUTPUTS) and set(delete.outputs) == set(A.S3_DELETE_OUTPUTS)
    _fake_cluster(monkeypatch)
    monkeypatch.setattr("doops.clients.pg.execute", FakeExec())
    monkeypatch.setattr("doops.ops.dbtarget.db_target", _plain_target)
    sql = A.ACTIONS["sql.exec"].run(wctx(), {"cluster": "learnhub-db", "statement": "delete from t"})
    assert set(sql.outputs) == set(A.SQL_EXEC_OUTPUTS)
    _fake_cluster(monkeypatch, "learnhub-cache", "valkey")
    FakeCache({"a:1"}).install(monkeypatch)
    cache = A.ACTIONS["cache.delete"].run(wctx(), {"cache": "learnhub-cache", "prefix": "a:"})
    assert set(cache.outputs) == set(A.CACHE_DELETE_OUTPUTS)
