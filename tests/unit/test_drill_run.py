"""`doops drill run` with a fake registry (no real operation or probe), a SQLite history in tmp and a local HTTP
server standing in for the Pushgateway: recorded, pushed, reported; the lock; bad input; schedule overrides;
interruptions."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from doops.drill.history import SqliteHistory
from doops.drill.run import DrillLock, DrillRunOptions, drill_run
from doops.errors import UsageError
from doops.ops.seam import Cancel, FakeClock, Outcome, RecordingSink
from doops.platform import Platform
from doops.runbook.registry import Action, ActionResult, Param, Probe, StepContext
from doops.runbook.validate import Catalog
from tests.helpers import run_doops

API = "http://127.0.0.1:9"  # never contacted: the fake actions send nothing

ALPHA = """version: 1
name: alpha
inputs:
  takes: {type: number, default: 2}
  mode: {type: string, default: plain}
objectives:
  rto: {target: 10m}
steps:
  - id: act
    action: fake.act
    with: {takes: "${{ inputs.takes }}", mode: "${{ inputs.mode }}"}
  - id: check
    probe: fake.probe
    expect: {equals: 1}
"""

BETA = """version: 1
name: beta
objectives:
  rto: {target: 1m}
steps:
  - id: act
    action: fake.act
    with: {takes: 1}
"""

FAILING = """version: 1
name: failing
steps:
  - id: broken
    action: fake.fail
"""


class Fakes:
    """Fake actions and probes: they move the platform's fake clock and record their calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.on_act: Callable[[StepContext], None] | None = None

    def act(self, ctx: StepContext, params: dict[str, Any]) -> ActionResult:
        self.calls.append(params)
        if self.on_act is not None:
            self.on_act(ctx)
        clock = ctx.platform.clock
        if isinstance(clock, FakeClock):
            clock.advance(float(params.get("takes") or 1))
        return ActionResult(ok=True, outputs={"echo": params})

    def fail(self, ctx: StepContext, params: dict[str, Any]) -> ActionResult:
        self.calls.append({"fail": True})
        return ActionResult(ok=False, outputs={}, outcome="verification_failed", error="boom")

    def catalog(self) -> Catalog:
        return Catalog(
            actions={"fake.act": Action("fake.act", (Param("takes", "number"), Param("mode")), self.act,
                                        outputs=("echo",)),
                     "fake.fail": Action("fake.fail", (), self.fail)},
            probes={"fake.probe": Probe("fake.probe", (), lambda ctx, params: 1)})


class Gateway:
    """A stand-in Pushgateway on 127.0.0.1: records each request, answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str, str]] = []  # method, path, body
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                gateway.requests.append(("PUT", self.path, body))
                self.send_response(gateway.status)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_PUT

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    gw = Gateway()
    yield gw
    gw.close()


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    f = Fakes()
    monkeypatch.setattr(Catalog, "default", classmethod(lambda cls: f.catalog()))  # the CLI's registry too
    return f


@pytest.fixture
def books(tmp_path: Path) -> Path:
    d = tmp_path / "books"
    d.mkdir()
    (d / "alpha.yaml").write_text(ALPHA)
    (d / "beta-drill.yaml").write_text(BETA)  # found by its name: (beta), not its stem
    (d / "failing.yaml").write_text(FAILING)
    return d


def write_config(tmp_path: Path, books: Path, extra: str = "") -> Path:
    cfg = tmp_path / "doops.yaml"
    cfg.write_text(f"runbooks:\n  paths: [{books}]\n" + extra)
    return cfg


def op(tmp_path: Path, fakes: Fakes, books: Path, options: DrillRunOptions, *, extra: str = "",
       clock: FakeClock | None = None, cancel: Cancel | None = None,
       confirm: Callable[[str], bool] = lambda q: True) -> Any:
    platform = Platform(config_path=str(write_config(tmp_path, books, extra)), config_explicit=True, api_url=API,
                        clock=clock or FakeClock())
    options.history_url = options.history_url or str(tmp_path / "drills.db")
    return drill_run(platform, options, confirm=confirm, events=RecordingSink(), cancel=cancel or Cancel(),
                     registry=fakes.catalog())


def history_runs(path: Path) -> list[Any]:
    if not path.exists():
        return []
    with SqliteHistory(path) as h:
        return h.runs()


def cli_env(tmp_path: Path, books: Path, extra: str = "") -> dict[str, str]:
    return {"DOOPS_CONFIG": str(write_config(tmp_path, books, extra)), "DIGITALOCEAN_API_URL": API,
            "DIGITALOCEAN_ACCESS_TOKEN": "dop_v1_" + "0" * 64}


# -- recorded, pushed, reported --------------------------------------------------------------------------------


def test_a_drill_is_recorded_then_pushed_then_reported(tmp_path: Path, fakes: Fakes, books: Path,
                                                       gateway: Gateway) -> None:
    reports = [("json", tmp_path / "drill.json"), ("junit", tmp_path / "drill.xml")]
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"], {"takes": "7"}, reports, pushgateway_url=gateway.url))
    assert res.outcome is Outcome.OK, res.message
    [d] = res.drills
    assert (d.runbook, d.outcome, d.success, d.pushed) == ("alpha", "ok", True, True)
    assert d.reports == [str(p) for _, p in reports]
    [run] = history_runs(tmp_path / "drills.db")
    assert run.id == d.history_id and run.outcome == "ok" and run.success
    rto = run.objective("rto")
    assert rto is not None and rto.measured_seconds == pytest.approx(7.0) and rto.target_seconds == 600 and rto.met
    assert run.sandbox and run.api_host == "127.0.0.1:9" and run.inputs == {"takes": 7.0, "mode": "plain"}
    [(method, path, body)] = gateway.requests
    assert method == "PUT" and path == "/metrics/job/doops_drill/runbook/alpha"
    assert 'doops_drill_success{runbook="alpha"} 1.0' in body
    assert 'doops_drill_objective_seconds{objective="rto",runbook="alpha"} 7.0' in body
    report = json.loads((tmp_path / "drill.json").read_text())
    assert report["runbook"] == "alpha" and [s["id"] for s in report["steps"]] == ["act", "check"]
    assert "<testsuite" in (tmp_path / "drill.xml").read_text()


def test_several_runbooks_run_in_order_each_with_its_report(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    res = op(tmp_path, fakes, books, DrillRunOptions(
        ["beta", str(books / "alpha.yaml"), "failing"], reports=[("markdown", tmp_path / "{runbook}.md")]))
    assert [d.runbook for d in res.drills] == ["beta", "alpha", "failing"]
    assert [d.success for d in res.drills] == [True, True, False]
    assert res.outcome is Outcome.VERIFICATION_FAILED and res.outcome.exit_code == 2
    assert "2/3 drills passed" in res.message and "failing" in res.message
    assert sorted(p.name for p in tmp_path.glob("*.md")) == ["alpha.md", "beta.md", "failing.md"]
    assert sorted(r.runbook for r in history_runs(tmp_path / "drills.db")) == ["alpha", "beta", "failing"]


def test_no_pushgateway_configured_pushes_nothing(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"]))
    assert res.outcome is Outcome.OK and res.pushgateway is None and res.drills[0].pushed is False
    assert res.warnings == []


def test_pushgateway_url_from_the_config(tmp_path: Path, fakes: Fakes, books: Path, gateway: Gateway) -> None:
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"]), extra=f"drills:\n  pushgateway_url: {gateway.url}\n")
    assert res.drills[0].pushed and [r[1] for r in gateway.requests] == ["/metrics/job/doops_drill/runbook/alpha"]


def test_a_failed_push_is_a_warning_and_keeps_the_exit_code(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    refusing = Gateway(status=500)
    try:
        res = run_doops(["-o", "json", "drill", "run", "alpha", "--yes", "--pushgateway", refusing.url,
                         "--history-url", str(tmp_path / "drills.db")], env=cli_env(tmp_path, books))
    finally:
        refusing.close()
    assert res.exit_code == 0, res.stderr
    assert len(refusing.requests) == 1
    out = res.json
    assert out["drills"][0]["pushed"] is False and out["drills"][0]["history_id"]
    assert "refused the drill metrics: HTTP 500" in out["warnings"][0]
    assert "refused the drill metrics: HTTP 500" in res.stderr  # the warning on stderr too
    assert len(history_runs(tmp_path / "drills.db")) == 1


# -- the lock ----------------------------------------------------------------------------------------------------


def test_a_second_drill_on_the_same_platform_is_exit_2_naming_the_holder(tmp_path: Path, fakes: Fakes,
                                                                         books: Path, gateway: Gateway) -> None:
    holder = DrillLock("127.0.0.1:9")
    assert holder.try_acquire("db-restore-drill", FakeClock().now()) is None
    try:
        res = run_doops(["drill", "run", "alpha", "--yes", "--pushgateway", gateway.url,
                         "--history-url", str(tmp_path / "drills.db")], env=cli_env(tmp_path, books))
    finally:
        holder.release()
    assert res.exit_code == 2, res.stderr
    import os
    import socket

    for part in (f"pid {os.getpid()}", socket.gethostname(), "drill db-restore-drill", "since 2026-11-26T05:00:00Z"):
        assert part in res.stderr, (part, res.stderr)
    assert fakes.calls == [] and gateway.requests == [] and history_runs(tmp_path / "drills.db") == []
    # the lock died with its holder: the same drill now runs
    again = run_doops(["drill", "run", "alpha", "--yes", "--history-url", str(tmp_path / "drills.db")],
                      env=cli_env(tmp_path, books))
    assert again.exit_code == 0, again.stderr


def test_another_platform_has_its_own_lock(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    holder = DrillLock("api.digitalocean.com")
    assert holder.try_acquire("other", FakeClock().now()) is None
    try:
        res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"]))
    finally:
        holder.release()
    assert res.outcome is Outcome.OK


class ReleasingClock(FakeClock):
    """A fake clock whose ``n``-th sleep releases a lock: the other drill ends while this one waits."""

    def __init__(self, lock: DrillLock, n: int) -> None:
        super().__init__()
        self.lock, self.n = lock, n

    def sleep(self, seconds: float, cancel: Cancel | None = None) -> None:
        super().sleep(seconds, cancel)
        if len(self.sleeps) == self.n:
            self.lock.release()


def test_wait_lock_waits_for_the_other_drill_on_the_platform_clock(tmp_path: Path, fakes: Fakes,
                                                                   books: Path) -> None:
    holder = DrillLock("127.0.0.1:9")
    assert holder.try_acquire("other", FakeClock().now()) is None
    clock = ReleasingClock(holder, 3)
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"], wait_lock=600), clock=clock)
    assert res.outcome is Outcome.OK and len(clock.sleeps) == 3 and fakes.calls


def test_wait_lock_gives_up_after_its_duration(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    holder = DrillLock("127.0.0.1:9")
    assert holder.try_acquire("other", FakeClock().now()) is None
    clock = FakeClock()
    try:
        res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"], wait_lock=60), clock=clock)
    finally:
        holder.release()
    assert res.outcome is Outcome.REFUSED and "(waited 60s)" in res.message and "drill other" in res.message
    assert sum(clock.sleeps) == pytest.approx(60) and fakes.calls == []
    assert [d.outcome for d in res.drills] == ["not_run"]


# -- bad input ---------------------------------------------------------------------------------------------------


BAD = {
    "unknown runbook": (["nosuch"], "runbook 'nosuch' not found"),
    "undeclared input": (["alpha", "--input", "nope=1"], "declares no input 'nope'"),
    "mistyped input": (["alpha", "--input", "takes=soon"], "--input takes: expected a number"),
    "input for none of several": (["alpha", "beta", "--input", "nope=1"], "none of the runbooks declares it"),
    "report dir missing": (["alpha", "--report", "json={tmp}/no/such/dir/r.json"], "does not exist"),
    "report without {runbook}": (["alpha", "beta", "--report", "json={tmp}/r.json"], "would write the same file"),
    "report format": (["alpha", "--report", "pdf={tmp}/r.pdf"], "unknown format 'pdf'"),
    "pushgateway scheme": (["alpha", "--pushgateway", "ftp://127.0.0.1:1"], "must be http:// or https://"),
    "history scheme": (["alpha", "--history-url", "mysql://h/db"], "unsupported history URL scheme"),
    "wait-lock": (["alpha", "--wait-lock", "0s"], "--wait-lock"),
    "same runbook twice": (["alpha", "{books}/alpha.yaml"], "named twice"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_exit_4_and_nothing_is_run_recorded_or_pushed(case: str, tmp_path: Path, fakes: Fakes,
                                                                   books: Path, gateway: Gateway,
                                                                   isolated_env: Path) -> None:
    args, expected = BAD[case]
    args = [a.replace("{tmp}", str(tmp_path)).replace("{books}", str(books)) for a in args]
    if "--pushgateway" not in args:
        args += ["--pushgateway", gateway.url]
    res = run_doops(["drill", "run", *args, "--yes"], env=cli_env(tmp_path, books))
    assert res.exit_code == 4, (res.exit_code, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("doops: error:") and expected in lines[0], res.stderr
    assert fakes.calls == [] and gateway.requests == []
    state = isolated_env / ".local" / "state" / "doops"
    assert not (state / "drills.db").exists(), "the default history was opened"
    assert not list(tmp_path.glob("*.json"))


def test_destructive_drill_without_a_terminal_or_yes_is_refused(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    res = run_doops(["drill", "run", "alpha", "--history-url", str(tmp_path / "drills.db")],
                    env=cli_env(tmp_path, books))
    assert res.exit_code == 4 and "without confirmation" in res.stderr and "alpha: act" in res.stderr
    assert fakes.calls == [] and not (tmp_path / "drills.db").exists()


def test_schedule_naming_an_objective_the_runbook_lacks_is_bad_input(tmp_path: Path, fakes: Fakes,
                                                                     books: Path) -> None:
    extra = "drills:\n  schedules:\n    - {runbook: alpha, cron: '0 3 * * 1', objectives: {rpo: 5s}}\n"
    with pytest.raises(UsageError, match="objective 'rpo' is not one of runbook alpha's objectives"):
        op(tmp_path, fakes, books, DrillRunOptions(["alpha"]), extra=extra)
    assert fakes.calls == [] and not (tmp_path / "drills.db").exists()


# -- drills.schedules ----------------------------------------------------------------------------------------------


def test_schedule_overrides_targets_and_gives_default_inputs(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    extra = ("drills:\n  schedules:\n"
             "    - {runbook: alpha, cron: '0 3 * * 1', inputs: {takes: 9, mode: scheduled}, objectives: {rto: 5s}}\n")
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"]), extra=extra)
    assert fakes.calls[-1] == {"takes": 9.0, "mode": "scheduled"}  # the schedule's inputs
    assert res.outcome is Outcome.OBJECTIVE_MISSED and res.outcome.exit_code == 2
    rto = res.drills[0].objectives[0]
    assert (rto.target_seconds, rto.measured_seconds, rto.met) == (5.0, 9.0, False)  # 5s, not the runbook's 10m
    assert history_runs(tmp_path / "drills.db")[0].objective("rto").target_seconds == 5.0

    # --input overrides the schedule's input; the other schedule input stays
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha"], {"takes": "3"}), extra=extra)
    assert fakes.calls[-1] == {"takes": 3.0, "mode": "scheduled"}
    assert res.outcome is Outcome.OK and res.drills[0].objectives[0].met is True


def test_schedule_matched_by_the_runbook_file(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    extra = (f"drills:\n  schedules:\n    - {{runbook: {books}/beta-drill.yaml, cron: '0 3 * * 1', "
             "objectives: {rto: 500ms}}\n")
    res = op(tmp_path, fakes, books, DrillRunOptions(["beta"]), extra=extra)
    assert res.drills[0].objectives[0].target_seconds == 0.5 and res.outcome is Outcome.OBJECTIVE_MISSED


# -- interruptions and declines --------------------------------------------------------------------------------------


def test_an_interrupted_drill_is_recorded_as_interrupted_and_the_rest_do_not_run(
        tmp_path: Path, fakes: Fakes, books: Path, gateway: Gateway) -> None:
    cancel = Cancel()
    fakes.on_act = lambda ctx: cancel.cancel("interrupted (Ctrl-C)")
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha", "beta"], pushgateway_url=gateway.url), cancel=cancel)
    assert res.outcome is Outcome.INTERRUPTED and res.outcome.exit_code == 130
    assert [(d.runbook, d.outcome) for d in res.drills] == [("alpha", "interrupted"), ("beta", "not_run")]
    [run] = history_runs(tmp_path / "drills.db")
    assert (run.runbook, run.outcome, run.success) == ("alpha", "interrupted", False)
    assert [r[1] for r in gateway.requests] == ["/metrics/job/doops_drill/runbook/alpha"]
    assert 'doops_drill_success{runbook="alpha"} 0.0' in gateway.requests[0][2]
    assert len(fakes.calls) == 1  # beta never ran


def test_a_declined_drill_is_not_recorded(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    res = op(tmp_path, fakes, books, DrillRunOptions(["alpha", "beta"]), confirm=lambda q: False)
    assert res.outcome is Outcome.DECLINED and [d.outcome for d in res.drills] == ["declined", "not_run"]
    assert res.drills[0].history_id is None and history_runs(tmp_path / "drills.db") == []


def test_cli_result_lists_each_drill(tmp_path: Path, fakes: Fakes, books: Path) -> None:
    res = run_doops(["-o", "json", "drill", "run", "alpha", "beta", "--yes", "--input", "takes=1",
                     "--history-url", str(tmp_path / "drills.db")], env=cli_env(tmp_path, books))
    assert res.exit_code == 0, res.stderr
    drills = res.json["drills"]
    assert [d["runbook"] for d in drills] == ["alpha", "beta"]
    assert set(drills[0]) >= {"runbook", "file", "outcome", "success", "objectives", "history_id", "pushed", "reports"}
    table = run_doops(["drill", "run", "beta", "--yes", "--history-url", str(tmp_path / "drills.db")],
                      env=cli_env(tmp_path, books))
    assert table.exit_code == 0 and "beta" in table.stdout and "rto" in table.stdout
