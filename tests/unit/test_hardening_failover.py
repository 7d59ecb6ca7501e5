"""Issue-8 hardening of `doops failover db` and the audit journal that need no server: one rule for durations
and sizes, times in the past only, per-platform keys, human table values, `doops audit`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import respx

from doops import journal
from doops.cli.render import OutputOptions, render
from doops.cli.views import FAILOVER
from doops.ops.audit import AuditQuery, Identity, read_audit
from doops.ops.failover import FailoverResult, Precheck, Timings
from doops.units import parse_duration, parse_size
from tests.helpers import CANARY_TOKEN, run_doops

ENV = {"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}


@pytest.mark.parametrize("args", [
    ["--timeout", "0"], ["--timeout", "0s"], ["--rto", "0"], ["--rto", "0ms"], ["--max-lag", "0"],
    ["--max-lag", "0s"], ["--max-lag", "0B"], ["--timeout", "-5s"], ["--rto", "-1"],
])
def test_zero_and_negative_durations_and_sizes_are_bad_input_before_any_request(args: list[str]) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.route().respond(500)
        res = run_doops(["failover", "db", "--region", "ams3", "--yes", *args], env=ENV)
    assert res.exit_code == 4 and route.call_count == 0
    assert len(res.stderr.strip().splitlines()) == 1 and args[0] in res.stderr


def test_one_rule_for_durations_and_sizes_in_options_and_config() -> None:
    for bad in ("0", "0s", 0, 0.0, "-1s"):
        with pytest.raises(ValueError, match=r"greater than zero|invalid duration"):
            parse_duration(bad)
    with pytest.raises(ValueError, match="greater than zero"):
        parse_size("0MiB")
    assert parse_duration("500ms") == 0.5 and parse_size("1KiB") == 1024


def test_config_zero_objective_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "doops.yaml"
    cfg.write_text("objectives:\n  database_rto: 0s\n")
    res = run_doops(["--config", str(cfg), "failover", "db", "--region", "ams3", "--dry-run"], env=ENV)
    assert res.exit_code == 4 and "database_rto" in res.stderr and "greater than zero" in res.stderr


def test_detected_at_in_the_future_is_refused() -> None:
    later = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with respx.mock(assert_all_called=False) as router:
        route = router.route().respond(500)
        res = run_doops(["failover", "db", "--region", "ams3", "--yes", "--detected-at", later], env=ENV)
    assert res.exit_code == 4 and "in the future" in res.stderr and route.call_count == 0
    bad = run_doops(["failover", "db", "--region", "ams3", "--detected-at", "yesterday"], env=ENV)
    assert bad.exit_code == 4 and "RFC 3339" in bad.stderr


def test_locks_and_pending_records_are_per_platform(isolated_env: Path) -> None:
    a = Identity("127.0.0.1:4001", True).key("9cc10173-e9ea-4176-9dbc-a4cee4c4ff30")
    b = Identity("127.0.0.1:4002", True).key("9cc10173-e9ea-4176-9dbc-a4cee4c4ff30")
    real = Identity("api.digitalocean.com", False).key("9cc10173-e9ea-4176-9dbc-a4cee4c4ff30")
    assert len({a, b, real}) == 3 and all("/" not in k for k in (a, b, real))
    journal.write_pending("failover", a, {"replica": "r1"})
    assert journal.read_pending("failover", b) is None and journal.read_pending("failover", a) == {"replica": "r1"}
    with journal.exclusive(f"failover-{a}"), journal.exclusive(f"failover-{b}"):
        pass  # two platforms' locks do not collide


def _result(**kw: object) -> FailoverResult:
    base = FailoverResult(
        "learnhub-db", "learnhub-db-ams3", "ams3", False, 120.0, state="promoted",
        prechecks=[Precheck("primary reachable", False, "no", "cannot connect", blocking=False),
                   Precheck("replica lag", True, {"bytes": 2048, "seconds": 0.25}, "ok")],
        timings=Timings(promote_sent=datetime(2026, 11, 26, 5, 0, 0, 123000, tzinfo=UTC),
                        writable=datetime(2026, 11, 26, 5, 0, 0, 323000, tzinfo=UTC)),
        rto_seconds=0.2, met=True,
        warnings=["split-brain risk: learnhub-db still accepts writes"], next_steps=["Repoint the apps."])
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def test_failover_table_shows_human_values(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    out = io.StringIO()
    render(_result(), OutputOptions(color=False), FAILOVER, out)
    text = out.getvalue()
    assert "{'bytes'" not in text and "2.0 KiB, 0.2s behind" in text
    assert "05:00:00.123Z" in text and "05:00:00.323Z" in text  # milliseconds beside an RTO of 0.20s
    assert "no (info)" in text and "ok  primary reachable" not in text  # a down primary does not read "ok"
    assert "split-brain risk" in text and "Repoint the apps." in text


def test_failover_json_has_warnings_next_steps_and_unknown_rto() -> None:
    import io

    out = io.StringIO()
    render(_result(rto_seconds=None, met=None), OutputOptions(fmt="json"), FAILOVER, out)
    data = json.loads(out.getvalue())
    assert data["rto_seconds"] is None and data["met"] is None
    assert data["warnings"] and data["next_steps"] == ["Repoint the apps."]
    assert data["prechecks"][0]["blocking"] is False
    text = io.StringIO()
    render(_result(rto_seconds=None, met=None), OutputOptions(color=False), FAILOVER, text)
    import re

    assert re.search(r"RTO\s+unknown", text.getvalue())


def test_audit_lines_say_which_platform_and_doops_audit_reads_them(isolated_env: Path) -> None:
    prod = Identity("api.digitalocean.com", False, "acc-1", "sre@example.com")
    twin = Identity("127.0.0.1:4001", True, "acc-2", "sandbox@example.com")
    journal.audit("failover db", {"cluster": "learnhub-db", "replica": "learnhub-db-ams3", "outcome": "promoted"},
                  platform=prod)
    journal.audit("failover db", {"cluster": "other-db", "outcome": "refused"}, platform=twin)
    journal.audit_path().open("a").write("not json\n")
    log = read_audit(AuditQuery())
    assert [e.sandbox for e in log.entries] == [False, True] and log.unreadable_lines == 1
    assert log.entries[0].api_host == "api.digitalocean.com" and log.entries[0].account == "sre@example.com"
    assert [e.outcome for e in read_audit(AuditQuery(target="learnhub-db")).entries] == ["promoted"]
    assert read_audit(AuditQuery(since=datetime.now(UTC) + timedelta(hours=1))).entries == []
    res = run_doops(["audit", "--cluster", "other-db", "-o", "json"])
    assert res.exit_code == 0 and [r["outcome"] for r in res.json] == ["refused"]
    assert res.json[0]["platform"] == {"api_host": "127.0.0.1:4001", "sandbox": True, "account_uuid": "acc-2",
                                       "account_email": "sandbox@example.com"}
    table = run_doops(["audit", "--no-color"])
    assert "api.digitalocean.com" in table.stdout and "1 unreadable lines skipped" in table.stdout
    assert run_doops(["audit", "--since", "soon"]).exit_code == 4
    assert run_doops(["audit", "--limit", "0"]).exit_code == 4


def test_identity_marks_loopback_apis_as_sandbox() -> None:
    from doops.platform import Platform

    with respx.mock(assert_all_called=False) as router:
        router.get("http://127.0.0.1:4999/v2/account").respond(
            200, json={"account": {"uuid": "u-1", "email": "e@x", "status": "active"}})
        app = Platform(access_token=CANARY_TOKEN, api_url="http://127.0.0.1:4999")
        ident = Identity.of(app)
    assert ident.sandbox is True and ident.api_host == "127.0.0.1:4999" and ident.account_uuid == "u-1"
