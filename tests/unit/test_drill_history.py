"""Drill history (SQLite), its migrations, trends and `due`, on known data and a fake clock.

``sample_runs`` is also what tests/integration/test_drill_history_pg.py records in PostgreSQL: the same
records must give the same answers from both stores.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from doops.config import DrillSchedule, parse_config
from doops.drill.due import DueState, due, fire_times, overdue_from
from doops.drill.history import SCHEMA_VERSION, History, HistoryError, SqliteHistory, open_history
from doops.drill.model import DrillRun, ObjectiveMeasure, StepSummary
from doops.drill.trends import percentile, read_history, sparkline, trend, trends
from doops.errors import ConfigError, UsageError
from doops.ops.seam import FakeClock
from doops.serialize import to_data
from tests.helpers import run_doops

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)  # a Monday, 03:00 UTC
RTOS = [40.0, 55.0, 130.0, 60.0, 45.5, 70.0]  # db-failover's measured RTO, oldest first; the third missed 2m


def make_run(runbook: str, started: datetime, rto: float | None, *, ok: bool = True, target: float = 120.0,
             run_id: str | None = None, host: str = "ci-1") -> DrillRun:
    objectives = [ObjectiveMeasure("rto", target, rto, None if rto is None else rto <= target),
                  ObjectiveMeasure("rpo", 1.0, 0.25, True)]
    steps = [StepSummary("inject", "action", "db-stop", "passed", started, started + timedelta(seconds=2), 2.0),
             StepSummary("recover", "wait_until", "db-writable", "passed" if ok else "failed",
                         started + timedelta(seconds=2), started + timedelta(seconds=rto or 5), rto,
                         None if ok else "not writable within 5m")]
    run = DrillRun(runbook=runbook, file=f"runbooks/{runbook}.yaml", started_at=started,
                   ended_at=started + timedelta(seconds=(rto or 5) + 3), outcome="ok" if ok else "failed", success=ok,
                   objectives=objectives, steps=steps, inputs={"region": "ams3", "count": 2}, host=host,
                   user="runner", api_host="api.digitalocean.com")
    if run_id:
        run.id = run_id
    return run


def sample_runs() -> list[DrillRun]:
    """Weekly db-failover drills (one failed: its RTO missed), two restore drills, a cache drill without RTO."""
    runs = []
    for i, rto in enumerate(RTOS):
        runs.append(make_run("db-failover", T0 + timedelta(days=7 * i, microseconds=123456 * i), rto,
                             ok=rto <= 120, run_id=f"dbf-{i}"))
    runs.append(make_run("restore", T0 + timedelta(days=1), 300.0, target=600.0, run_id="rst-0", host="cron-7"))
    runs.append(make_run("restore", T0 + timedelta(days=8), None, ok=False, target=600.0, run_id="rst-1"))
    cache = make_run("cache-flush", T0 + timedelta(days=2), None, run_id="cch-0")
    cache.objectives = []
    runs.append(cache)
    # Two runs starting at the same instant: ordered by id, the same in both stores.
    runs.append(make_run("tie", T0, 10.0, run_id="b-tie"))
    runs.append(make_run("tie", T0, 12.0, run_id="a-tie"))
    return runs


def answers(h: History) -> dict[str, object]:
    """Everything the history and trends answer for sample_runs(): compared across stores."""
    since = T0 + timedelta(days=8)
    return {
        "all": to_data(h.runs()),
        "db": to_data(h.runs("db-failover")),
        "by_file": [r.id for r in h.runs("runbooks/restore.yaml")],
        "since": [r.id for r in h.runs(since=since)],
        "limit": [r.id for r in h.runs("db-failover", limit=2)],
        "since_limit": [r.id for r in h.runs(since=since, limit=3)],
        "last_success": {rb: getattr(h.last_success(rb), "id", None)
                         for rb in ("db-failover", "restore", "cache-flush", "tie", "absent")},
        "runbooks": h.runbooks(),
        "trends": to_data(trends(h.runs())),
        "read_history": to_data(read_history(h, "db-failover", since=since, limit=2))["runs"],
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteHistory]:
    h = SqliteHistory(tmp_path / "drills.db")
    for run in sample_runs():
        h.record(run)
    yield h
    h.close()


# -- the store -----------------------------------------------------------------------------------------------


def test_record_and_read_back_whole(store: SqliteHistory) -> None:
    original = {r.id: r for r in sample_runs()}
    read = store.runs()
    assert len(read) == len(original)
    for run in read:
        assert to_data(run) == to_data(original[run.id])  # every field, times to the microsecond
        assert run.started_at.tzinfo is not None and run.started_at.utcoffset() == timedelta(0)
    assert read[0].steps[1].error is None and read[0].inputs == {"region": "ams3", "count": 2}


def test_newest_first_filters_since_limit(store: SqliteHistory) -> None:
    assert [r.id for r in store.runs("db-failover")] == [f"dbf-{i}" for i in reversed(range(6))]
    assert [r.id for r in store.runs("db-failover", limit=2)] == ["dbf-5", "dbf-4"]
    since = T0 + timedelta(days=14)
    assert {r.id for r in store.runs(since=since)} == {"dbf-2", "dbf-3", "dbf-4", "dbf-5"}
    assert [r.id for r in store.runs("tie")] == ["b-tie", "a-tie"]  # same start: id, bytewise, descending
    assert [r.id for r in store.runs("runbooks/restore.yaml")] == ["rst-1", "rst-0"]  # by file too
    assert store.runs("absent") == []


def test_last_success_and_runbooks(store: SqliteHistory) -> None:
    assert store.last_success("db-failover").id == "dbf-5"  # type: ignore[union-attr]
    assert store.last_success("restore").id == "rst-0"  # type: ignore[union-attr]
    assert store.last_success("absent") is None
    assert store.runbooks() == ["cache-flush", "db-failover", "restore", "tie"]


def test_recording_the_same_run_twice_keeps_one(store: SqliteHistory) -> None:
    store.record(sample_runs()[0])
    assert len(store.runs("db-failover")) == 6


def test_secrets_in_inputs_are_masked_when_stored(tmp_path: Path) -> None:
    run = make_run("x", T0, 1.0)
    run.inputs = {"dsn": "postgresql://doadmin:hunter2secret@db:5432/x", "n": [1, "password=abc123"]}
    with SqliteHistory(tmp_path / "d.db") as h:
        h.record(run)
    raw = sqlite3.connect(tmp_path / "d.db").execute("SELECT inputs FROM drill_runs").fetchone()[0]
    assert "hunter2secret" not in raw and "abc123" not in raw
    assert json.loads(raw)["dsn"] == "postgresql://doadmin:***@db:5432/x"


def test_default_store_is_in_the_state_dir(isolated_env: Path) -> None:
    with open_history(None) as h:
        h.record(make_run("x", T0, 1.0))
    assert (isolated_env / ".local" / "state" / "doops" / "drills.db").exists()


@pytest.mark.parametrize("url", ["sqlite:///{d}/a.db", "{d}/b.db"])
def test_open_history_sqlite_urls(tmp_path: Path, url: str) -> None:
    with open_history(url.format(d=tmp_path)) as h:
        h.record(make_run("x", T0, 1.0))
        assert h.url.endswith(".db") and h.runbooks() == ["x"]


def test_wal_mode_and_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with SqliteHistory(path) as h:
                for i in range(20):
                    h.record(make_run("w", T0 + timedelta(seconds=n * 100 + i), 1.0, run_id=f"w{n}-{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with SqliteHistory(path) as h:
        assert len(h.runs()) == 80
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- migrations ----------------------------------------------------------------------------------------------


def test_v1_database_is_migrated_to_current(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SqliteHistory(path, upto=1) as v1:
        assert v1.version == 1
        v1.record(make_run("old", T0, 42.0, run_id="from-v1"))
    conn = sqlite3.connect(path)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(drill_runs)")}
    assert "recorded_at" not in cols
    conn.close()
    with SqliteHistory(path) as current:
        assert current.version == SCHEMA_VERSION == 2
        assert [r.id for r in current.runs("old")] == ["from-v1"]  # the v1 row survives, readable
        current.record(make_run("new", T0, 1.0, run_id="from-v2"))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(drill_runs)")}
    assert "drill_runs_runbook" in indexes
    recorded = dict(conn.execute("SELECT id, recorded_at FROM drill_runs").fetchall())
    assert recorded["from-v1"] is None and recorded["from-v2"] is not None


def test_reopening_a_current_database_migrates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    SqliteHistory(path).close()
    SqliteHistory(path).close()  # a second CREATE INDEX would raise: nothing is applied twice
    assert sqlite3.connect(path).execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    SqliteHistory(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="schema version 99, newer than this doops knows"):
        SqliteHistory(path)


# -- trends --------------------------------------------------------------------------------------------------


def test_trend_on_known_data(store: SqliteHistory) -> None:
    t = trend("db-failover", store.runs())
    assert (t.runs, t.passed) == (6, 5) and t.pass_rate == pytest.approx(5 / 6)
    # sorted RTOs: 40, 45.5, 55, 60, 70, 130 -> p50 between 55 and 60; p95 at rank 4.75: 70 + .75 * 60
    assert t.rto_p50 == pytest.approx(57.5)
    assert t.rto_p95 == pytest.approx(115.0)
    assert t.rto_max == 130.0 and t.rto_target == 120.0
    assert t.last_success == sample_runs()[5].started_at
    assert t.last_outcome == "ok"
    assert t.sparkline == "▃▄█▄▃▅"  # oldest left; 130 the tallest (scaled 0..max)
    assert [o.name for o in t.objectives] == ["rto", "rpo"] and t.objectives[0].met == 5


def test_trend_without_rto_and_not_measured_runs(store: SqliteHistory) -> None:
    restore = trend("restore", store.runs())
    assert restore.rto_p50 == 300.0 and restore.pass_rate == 0.5 and restore.sparkline == "█·"
    cache = trend("cache-flush", store.runs())
    assert cache.rto_p50 is None and cache.sparkline == "" and cache.pass_rate == 1.0


def test_percentile_and_sparkline_edges() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert sparkline([None, 8.0, 4.0, 0.0]) == "·█▅▁"


def test_read_history_limit_narrows_the_list_not_the_trend(store: SqliteHistory) -> None:
    h = read_history(store, "db-failover", limit=2)
    assert [r.id for r in h.runs] == ["dbf-5", "dbf-4"]
    assert h.trends[0].runs == 6


# -- due -----------------------------------------------------------------------------------------------------

WEEKLY = "0 3 * * 1"  # Mondays 03:00 UTC


def test_fire_times_include_now_exactly() -> None:
    assert fire_times(WEEKLY, T0) == (T0, T0 - timedelta(days=7))
    assert fire_times(WEEKLY, T0 - timedelta(seconds=1)) == (T0 - timedelta(days=7), T0 - timedelta(days=14))
    assert overdue_from(WEEKLY, T0 + timedelta(hours=1)) == T0 + timedelta(days=14)


def test_due_on_a_fake_clock(tmp_path: Path) -> None:
    h = SqliteHistory(tmp_path / "d.db")
    h.record(make_run("weekly", T0 + timedelta(minutes=5), 30.0, run_id="w1"))  # Monday's run, succeeded
    sched = [DrillSchedule(runbook="weekly", cron=WEEKLY)]
    clock = FakeClock(T0 + timedelta(days=3))
    assert due(sched, h, clock).drills[0].state is DueState.OK
    clock.advance(timedelta(days=7).total_seconds())  # next Monday's fire passed, no run: one period of grace
    report = due(sched, h, clock)
    assert report.drills[0].state is DueState.OK and report.exit_code == 0
    assert report.drills[0].overdue_at == T0 + timedelta(days=14)
    clock.advance(timedelta(days=4).total_seconds())  # past the Monday after: a whole period missed
    report = due(sched, h, clock)
    assert report.drills[0].state is DueState.OVERDUE and report.exit_code == 1
    assert "no success since 2026-01-12 03:00Z" in report.drills[0].reason
    # A run now, failed: crit, whatever else
    h.record(make_run("weekly", clock.now(), None, ok=False, run_id="w2"))
    report = due(sched, h, clock)
    assert report.drills[0].state is DueState.FAILED and report.exit_code == 2
    assert report.drills[0].last_success == T0 + timedelta(minutes=5)
    # ...and a success after it: ok again
    h.record(make_run("weekly", clock.now() + timedelta(minutes=1), 20.0, run_id="w3"))
    clock.advance(120)
    assert due(sched, h, clock).drills[0].state is DueState.OK
    h.close()


def test_never_run_is_overdue_and_worst_wins(tmp_path: Path) -> None:
    with SqliteHistory(tmp_path / "d.db") as h:
        h.record(make_run("broken", T0, None, ok=False))
        scheds = [DrillSchedule("never", "0 * * * *"), DrillSchedule("broken", WEEKLY)]
        report = due(scheds, h, FakeClock(T0 + timedelta(hours=1)))
    states = {d.runbook: (d.state, d.reason) for d in report.drills}
    assert states["never"] == (DueState.OVERDUE, "never ran")
    assert states["broken"][0] is DueState.FAILED
    assert report.state is DueState.FAILED and report.exit_code == 2


# -- config --------------------------------------------------------------------------------------------------


def test_drills_config_parses() -> None:
    cfg = parse_config(
        "drills:\n  history_url: postgresql://drills@db.internal:5432/drills\n  schedules:\n"
        "    - runbook: db-failover\n      cron: '0 3 * * 1'\n      inputs: {region: ams3, replicas: [a, b]}\n"
        "      objectives: {rto: 10m}\n", "f.yaml")
    s = cfg.drills.schedules[0]
    assert (s.runbook, s.cron, s.inputs, s.objectives) == ("db-failover", "0 3 * * 1",
                                                          {"region": "ams3", "replicas": ["a", "b"]}, {"rto": 600.0})
    assert cfg.drills.resolved_history_url() == "postgresql://drills@db.internal:5432/drills"
    assert parse_config("", "f.yaml").drills.schedules == []


@pytest.mark.parametrize(("text", "expected"), [
    ("drills:\n  schedules:\n    - runbook: a\n      cron: '61 * * * *'\n",
     "f.yaml:4: key 'drills.schedules[0].cron': invalid cron expression"),
    ("drills:\n  schedules:\n    - runbook: a\n      cron: '0 3 * * 1 5'\n",
     "f.yaml:4: key 'drills.schedules[0].cron': cron expression '0 3 * * 1 5' has 6 fields"),
    ("drills:\n  schedules:\n    - {runbook: a, cron: '@weekly'}\n", "has 1 fields (expected 5)"),
    ("drills:\n  schedules:\n    - {runbook: a, cron: '0 3 * * 1'}\n    - {runbook: a, cron: '0 4 * * 1'}\n",
     "f.yaml:4: key 'drills.schedules[1].runbook': runbook 'a' is scheduled twice"),
    ("drills:\n  schedules:\n    - {runbook: a, cron: '0 3 * * 1', objectives: {rto: soon}}\n",
     "key 'drills.schedules[0].objectives.rto': invalid duration"),
    ("drills:\n  schedules:\n    - {cron: '0 3 * * 1'}\n", "missing required key 'runbook'"),
    ("drills:\n  history_url: mysql://x/y\n", "f.yaml:2: key 'drills.history_url': unsupported history URL scheme"),
    ("drills:\n  history_url: postgresql://u:hunter2pw@h/db\n",
     "f.yaml:2: key 'drills.history_url': the URL holds a password"),
])
def test_drills_config_errors_name_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.yaml")
    assert expected in str(info.value)
    assert "hunter2pw" not in str(info.value) + str(info.value.hint)


def test_history_url_from_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOOPS_DRILL_HISTORY_URL", "postgresql://u:pw@h/db")
    assert parse_config("drills: {}\n").drills.resolved_history_url() == "postgresql://u:pw@h/db"


def test_open_history_bad_url_is_usage_error() -> None:
    with pytest.raises(UsageError, match="unsupported history URL scheme 'mysql'"):
        open_history("mysql://u:secretpw@h/db")


# -- commands ------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("DOOPS_DRILL_HISTORY_URL", raising=False)
    return {"DOOPS_CONFIG": str(tmp_path / "doops.yaml")}


def write_config(env: dict[str, str], text: str) -> None:
    Path(env["DOOPS_CONFIG"]).write_text(text)


def test_history_command_table_and_json(store: SqliteHistory, cli_env: dict[str, str]) -> None:
    write_config(cli_env, "{}\n")
    res = run_doops(["drill", "history", "db-failover", "--since", "3650d", "--history-url", str(store.path)],
                    env=cli_env)
    assert res.exit_code == 0, res.stderr
    assert "rto 2.2m/2.0m MISSED" in res.stdout and "rto 1.2m/2.0m ok" not in res.stdout
    assert "rto 70.0s/2.0m ok; rpo 250ms/1.0s ok" in res.stdout
    assert "runner@ci-1 -> api.digitalocean.com" in res.stdout and "▃▄█▄▃▅" in res.stdout and "83%" in res.stdout
    js = run_doops(["-o", "json", "drill", "history", "--since", "3650d", "--limit", "1",
                    "--history-url", f"sqlite://{store.path}"], env=cli_env).json
    assert [r["id"] for r in js["runs"]] == ["dbf-5"]
    assert {t["runbook"] for t in js["trends"]} == {"db-failover", "restore", "cache-flush", "tie"}


def test_history_command_since_window(store: SqliteHistory, cli_env: dict[str, str]) -> None:
    write_config(cli_env, "{}\n")
    since = (T0 + timedelta(days=28)).isoformat()
    js = run_doops(["-o", "json", "drill", "history", "--since", since, "--history-url", str(store.path)],
                   env=cli_env).json
    assert [r["id"] for r in js["runs"]] == ["dbf-5", "dbf-4"]


@pytest.mark.parametrize(("args", "expected"), [
    (["history", "--since", "yesterday"], "'yesterday' is neither a duration"),
    (["history", "--limit", "0"], "--limit"),
    (["history", "--history-url", "mysql://u:topsecretpw@h/db"], "unsupported history URL scheme"),
    (["due", "--history-url", "redis://u:topsecretpw@h"], "unsupported history URL scheme"),
    (["history", "--history-url", "sqlite:"], "sqlite: URL without a file path"),
    (["history", "--history-url", "sqlite:///"], "sqlite:// URL without a file path"),
])
def test_bad_input_is_exit_4_one_line(args: list[str], expected: str, cli_env: dict[str, str],
                                      isolated_env: Path) -> None:
    res = run_doops(["drill", *args], env=cli_env, secrets=("topsecretpw",))
    assert res.exit_code == 4, res.stderr
    assert expected in res.stderr and "Traceback" not in res.stderr
    assert not (isolated_env / ".local" / "state" / "doops" / "drills.db").exists()


def test_unreachable_postgres_is_exit_3_masked(cli_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_doops(["drill", "history", "--history-url", f"postgresql://u:topsecretpw@127.0.0.1:{port}/db"],
                    env=cli_env, secrets=("topsecretpw",))
    assert res.exit_code == 3, res.stderr
    assert "cannot connect to drill history postgresql://u:***@127.0.0.1" in res.stderr


def test_due_command_exit_codes(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "h.db"
    now = datetime.now(UTC)
    with SqliteHistory(db) as h:
        h.record(make_run("fresh", now - timedelta(minutes=1), 10.0))
        h.record(make_run("bad", now - timedelta(minutes=1), None, ok=False))
    base = f"drills:\n  history_url: {db}\n  schedules:\n    - {{runbook: fresh, cron: '* * * * *'}}\n"
    write_config(cli_env, base)
    ok = run_doops(["-o", "json", "drill", "due"], env=cli_env)
    assert ok.exit_code == 0 and ok.json["drills"][0]["state"] == "ok", ok.stdout
    write_config(cli_env, base + "    - {runbook: never, cron: '0 3 * * 1'}\n")
    warn = run_doops(["drill", "due"], env=cli_env)
    assert warn.exit_code == 1 and "never ran" in warn.stdout
    write_config(cli_env, base + "    - {runbook: bad, cron: '0 3 * * 1'}\n")
    crit = run_doops(["drill", "due"], env=cli_env)
    assert crit.exit_code == 2 and "failed" in crit.stdout


def test_due_without_schedules_is_ok_and_opens_nothing(cli_env: dict[str, str], isolated_env: Path) -> None:
    write_config(cli_env, "{}\n")
    res = run_doops(["drill", "due"], env=cli_env)
    assert res.exit_code == 0 and "no drills scheduled" in res.stdout
    assert not (isolated_env / ".local" / "state" / "doops" / "drills.db").exists()


# -- the status component ------------------------------------------------------------------------------------


def test_status_drills_component(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db = tmp_path / "h.db"
    now = datetime.now(UTC)
    with SqliteHistory(db) as h:
        h.record(make_run("fresh", now - timedelta(minutes=1), 10.0))
        h.record(make_run("bad", now - timedelta(minutes=1), None, ok=False))
    write_config(cli_env, "{}\n")
    skipped = run_doops(["-o", "json", "status", "drills"], env=cli_env)
    assert skipped.exit_code == 0
    assert [(c["check"], c["status"]) for c in skipped.json["checks"]] == [("configured", "skipped")]
    write_config(cli_env, f"drills:\n  history_url: {db}\n  schedules:\n    - {{runbook: fresh, cron: '* * * * *'}}\n"
                          "    - {runbook: never, cron: '0 3 * * 1'}\n    - {runbook: bad, cron: '0 3 * * 1'}\n")
    res = run_doops(["-o", "json", "status", "drills"], env=cli_env)
    got = {c["resource"]: c["status"] for c in res.json["checks"]}
    assert got == {"fresh": "ok", "never": "warn", "bad": "crit"}
    assert res.exit_code == 2 and res.json["api_requests"] == 0


def test_status_drills_unknown_when_the_store_is_unreachable(cli_env: dict[str, str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DOOPS_DRILL_HISTORY_URL", f"postgresql://u:topsecretpw@127.0.0.1:{port}/db")
    write_config(cli_env, "drills:\n  schedules:\n    - {runbook: a, cron: '0 3 * * 1'}\n")
    res = run_doops(["-o", "json", "status", "drills"], env={**cli_env, "DOOPS_DRILL_HISTORY_URL":
                                                             f"postgresql://u:topsecretpw@127.0.0.1:{port}/db"},
                    secrets=("topsecretpw",))
    check = res.json["checks"][0]
    assert (check["resource"], check["status"]) == ("a", "unknown") and res.exit_code == 3
    assert "cannot connect to drill history" in check["summary"]
