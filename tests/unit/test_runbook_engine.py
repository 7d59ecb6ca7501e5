"""The runbook engine on a fake clock with a fake registry: waits, expectations, rollbacks, objectives,
dry runs, requirements and secrets. No real operation, probe or server is involved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from doops.errors import UsageError
from doops.ops.seam import Cancel, FakeClock, Level, Outcome, RecordingSink, Waited, wait_until
from doops.platform import Platform
from doops.runbook.engine import RunbookResult, plan_runbook, run_runbook
from doops.runbook.expect import judge
from doops.runbook.model import MISSING, Expect, Runbook
from doops.runbook.registry import Action, ActionResult, Param, Probe, ProbeError, StepContext
from doops.runbook.report import render as render_report
from doops.runbook.validate import Catalog, check_text


class Fakes:
    """A registry of fake actions and probes that record their calls and move the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.values: dict[str, list[Any]] = {}  # probe key -> values returned in turn (the last one repeats)
        self.reads: dict[str, int] = {}
        self.on_act: Callable[[StepContext], None] | None = None

    def act(self, ctx: StepContext, params: dict[str, Any]) -> ActionResult:
        self.calls.append(("fake.act", params, ctx.dry_run))
        ctx.events(_event(ctx, f"acting on {params.get('target')}"))
        if self.on_act is not None:
            self.on_act(ctx)
        self.clock.advance(params.get("takes", 1.0))
        return ActionResult(ok=True, outputs={"echo": params, "count": 3, "lag": params.get("lag", 0.5),
                                              "primary": {"name": "db-ams3"}},
                            outcome="dry_run" if ctx.dry_run else "ok")

    def fail(self, ctx: StepContext, params: dict[str, Any]) -> ActionResult:
        self.calls.append(("fake.fail", params, ctx.dry_run))
        self.clock.advance(2.0)
        return ActionResult(ok=False, outputs={}, outcome="verification_failed", error="boom: it broke")

    def slow(self, ctx: StepContext, params: dict[str, Any]) -> ActionResult:
        """An operation waiting on its own (a promotion that never completes) until its cancel is set."""
        self.calls.append(("fake.slow", params, ctx.dry_run))
        waited: Waited[object] = wait_until(lambda: None, timeout=3600, clock=self.clock, cancel=ctx.cancel,
                                            interval=1.0)
        return ActionResult(ok=False, outputs={}, outcome="interrupted" if waited.cancelled else "ok",
                            error="gave up waiting" if waited.cancelled else None)

    def read(self, ctx: StepContext, params: dict[str, Any]) -> Any:
        key = params["key"]
        n = self.reads.get(key, 0)
        self.reads[key] = n + 1
        seq = self.values.get(key, [None])
        value = seq[min(n, len(seq) - 1)]
        if isinstance(value, Exception):
            raise value
        return value

    def catalog(self) -> Catalog:
        return Catalog(
            actions={
                "fake.act": Action("fake.act", (Param("target"), Param("takes", "number"), Param("lag", "number"),
                                                Param("password", secret=True)), self.act,
                                   outputs=("echo", "count", "lag", "primary")),
                "fake.fail": Action("fake.fail", (Param("target"),), self.fail, outputs=()),
                "fake.slow": Action("fake.slow", (), self.slow),
                "fake.read_only": Action("fake.read_only", (Param("target"),), self.act, destructive=False,
                                         outputs=("echo",)),
            },
            probes={"fake.probe": Probe("fake.probe", (Param("key", required=True), Param("note")), self.read)},
        )


def _event(ctx: StepContext, message: str) -> Any:
    from doops.ops.seam import Event

    return Event(ctx.platform.clock.now(), "fake", "act", message, Level.STEP)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fakes(clock: FakeClock) -> Fakes:
    return Fakes(clock)


def platform(clock: FakeClock, api: str = "http://127.0.0.1:9") -> Platform:
    return Platform(api_url=api, clock=clock)


def load(text: str, fakes: Fakes) -> Runbook:
    checked = check_text(text, "test.yaml", catalog=fakes.catalog())
    assert not checked.problems, [str(p) for p in checked.problems]
    assert checked.runbook is not None
    return checked.runbook


def run(text: str, fakes: Fakes, *, inputs: dict[str, Any] | None = None, dry_run: bool = False,
        cancel: Cancel | None = None, confirm: Callable[[str], bool] = lambda q: True,
        api: str = "http://127.0.0.1:9") -> RunbookResult:
    return run_runbook(platform(fakes.clock, api), load(text, fakes), inputs or {}, dry_run=dry_run, confirm=confirm,
                       events=RecordingSink(), cancel=cancel or Cancel(), registry=fakes.catalog())


def statuses(records: list[Any]) -> dict[str, str]:
    return {r.id: r.status for r in records}


HEAD = "version: 1\nname: t\n"


# -- waits --------------------------------------------------------------------------------------------------


def test_wait_until_times_out_on_the_fake_clock_with_the_last_value(fakes: Fakes, clock: FakeClock) -> None:
    fakes.values["replica"] = [0]
    res = run(HEAD + """steps:
  - id: wait
    wait_until: {probe: fake.probe, with: {key: replica}, expect: {equals: 1}}
    timeout: 90s
    interval: 1s
""", fakes)
    step = res.steps[0]
    assert step.status == "failed" and res.outcome is Outcome.VERIFICATION_FAILED
    assert "timed out after 90.0s" in (step.error or "") and "got 0, expected equals 1" in (step.error or "")
    assert step.duration_seconds == pytest.approx(90.0)
    assert fakes.reads["replica"] == 91  # tried at 0 s and every second until 90 s, no more
    assert step.outputs == {"value": 0}


def test_wait_until_polls_through_probe_errors_until_the_expectation_holds(fakes: Fakes) -> None:
    fakes.values["db"] = [ProbeError("connection refused"), 0, 0, 1]
    res = run(HEAD + """steps:
  - id: wait
    wait_until: {probe: fake.probe, with: {key: db}, expect: {equals: 1}}
    interval: 5s
""", fakes)
    assert res.outcome is Outcome.OK and res.steps[0].status == "ok"
    assert res.steps[0].outputs == {"value": 1}
    assert res.steps[0].duration_seconds == pytest.approx(15.0)


def test_an_action_that_outlives_its_timeout_is_stopped_and_fails(fakes: Fakes) -> None:
    res = run(HEAD + """steps:
  - id: hang
    action: fake.slow
    timeout: 30s
""", fakes)
    assert res.steps[0].status == "failed" and "timed out after 30.0s" in (res.steps[0].error or "")
    assert res.steps[0].duration_seconds == pytest.approx(30.0)
    assert res.outcome is Outcome.VERIFICATION_FAILED


def test_a_pause_waits_on_the_platform_clock(fakes: Fakes, clock: FakeClock) -> None:
    res = run(HEAD + "steps:\n  - id: p\n    pause: 2m\n", fakes)
    assert res.steps[0].status == "ok" and clock.monotonic() == pytest.approx(120.0)


# -- expectations -------------------------------------------------------------------------------------------


HTTP = {"status": 200, "headers": {}, "body": '{"status": "ok", "checks": [{"name": "db", "lag": 3}]}', "json": None}


@pytest.mark.parametrize(("expect", "value", "ok"), [
    (Expect(equals=1), 1, True),
    (Expect(equals=1), 1.0, True),
    (Expect(equals=1), 2, False),
    (Expect(equals="ok"), "ok", True),
    (Expect(in_=["online", "ok"]), "ok", True),
    (Expect(in_=["online", "ok"]), "down", False),
    (Expect(has_range=True, range_min=0, range_max=5), 3, True),
    (Expect(has_range=True, range_min=0, range_max=5), 6, False),
    (Expect(has_range=True, range_max=5), "4.5", True),
    (Expect(has_range=True, range_min=0), "n/a", False),
    (Expect(regex=r"^v\d+\.\d+"), "v1.42-rc", True),
    (Expect(regex=r"^v\d+\.\d+"), "latest", False),
    (Expect(status=[200]), HTTP, True),
    (Expect(status=[500, 503]), HTTP, False),
    (Expect(status=[200]), 200, False),  # not an HTTP value
    (Expect(jsonpath="$.status", equals="ok"), HTTP, True),
    (Expect(jsonpath="$.checks[0].lag", has_range=True, range_max=2), HTTP, False),
    (Expect(jsonpath="$.checks[?(@.name == 'db')].lag", equals=3), HTTP, True),
    (Expect(jsonpath="$.missing"), HTTP, False),
    (Expect(regex='"status": "ok"'), HTTP, True),  # without jsonpath an HTTP probe's body is judged
    (Expect(status=[200], jsonpath="$.status", in_=["ok"]), HTTP, True),
])
def test_each_expectation_form(expect: Expect, value: Any, ok: bool) -> None:
    verdict = judge(expect, value)
    assert verdict.ok is ok, verdict.detail


def test_a_failed_expectation_says_what_was_seen_and_expected() -> None:
    assert judge(Expect(status=[200]), {**HTTP, "status": 503}).detail == "status 503, expected 200"
    assert "matched nothing" in judge(Expect(jsonpath="$.nope"), HTTP).detail
    assert judge(Expect(equals=MISSING), 5).ok


def test_a_probe_step_fails_when_its_expectation_does_not_hold(fakes: Fakes) -> None:
    fakes.values["health"] = [{**HTTP, "status": 503}]
    res = run(HEAD + """steps:
  - id: check
    probe: fake.probe
    with: {key: health}
    expect: {status: 200}
""", fakes)
    assert res.steps[0].status == "failed" and res.steps[0].error == "status 503, expected 200"


# -- outputs and references ---------------------------------------------------------------------------------


def test_outputs_flow_to_later_steps_whole_references_keep_their_type(fakes: Fakes) -> None:
    fakes.values["k"] = [3]
    res = run(HEAD + """inputs:
  region: {type: string, default: ams3}
steps:
  - id: first
    action: fake.act
    with: {target: "db-${{ inputs.region }}"}
  - id: second
    action: fake.act
    with: {target: "${{ steps.first.outputs.primary.name }}/x", takes: "${{ steps.first.outputs.count }}"}
  - id: check
    probe: fake.probe
    with: {key: k}
    expect: {equals: "${{ steps.first.outputs.count }}"}
""", fakes, inputs={"region": "fra1"})
    assert res.outcome is Outcome.OK, res.message
    assert fakes.calls[0][1]["target"] == "db-fra1"
    assert fakes.calls[1][1] == {"target": "db-ams3/x", "takes": 3.0}
    assert res.inputs == {"region": "fra1"}


def test_a_reference_in_a_regex_is_resolved_and_matched_literally(fakes: Fakes) -> None:
    fakes.values["etag"] = ['"a.c" fresh']
    text = HEAD + """inputs:
  tag: {type: string, default: a.c}
steps:
  - id: check
    probe: fake.probe
    with: {key: etag}
    expect: {regex: '^"${{ inputs.tag }}" fresh$'}
"""
    assert run(text, fakes).outcome is Outcome.OK
    fakes.values["etag"] = ['"abc" fresh']  # the "." of the value is literal: "abc" must not match "a.c"
    res = run(text, fakes)
    assert res.steps[0].status == "failed" and "a\\.c" in (res.steps[0].error or "")


def test_a_reference_to_a_missing_output_is_caught_at_validation(fakes: Fakes) -> None:
    checked = check_text(HEAD + """steps:
  - id: first
    action: fake.act
    with: {target: "${{ steps.first.outputs.count }}"}
  - id: second
    action: fake.act
    with: {target: "${{ steps.first.outputs.nosuch }}", lag: "${{ steps.third.outputs.value }}"}
  - id: third
    probe: fake.probe
    with: {key: "${{ steps.second.outputs.echo.target }}"}
""", "t.yaml", catalog=fakes.catalog())
    messages = [str(p) for p in checked.problems]
    assert any(m.startswith("t.yaml:6:") and "a step cannot read its own outputs" in m for m in messages), messages
    assert any(m.startswith("t.yaml:9:") and "has no output 'nosuch'" in m and "it has: echo, count, lag, primary" in m
               for m in messages), messages
    assert any(m.startswith("t.yaml:9:") and "step 'third' runs later" in m for m in messages), messages
    assert len(messages) == 3  # steps.second.outputs.echo is fine


def test_a_missing_input_and_a_bad_input_type_are_exit_4_before_anything_runs(fakes: Fakes) -> None:
    text = HEAD + """inputs:
  count: {type: integer}
steps:
  - action: fake.act
"""
    with pytest.raises(UsageError, match="input 'count' is required"):
        run(text, fakes)
    with pytest.raises(UsageError, match="expected an integer"):
        run(text, fakes, inputs={"count": "three"})
    with pytest.raises(UsageError, match="declares no input 'other'"):
        run(text, fakes, inputs={"count": "3", "other": "x"})
    assert fakes.calls == []


# -- failures, rollbacks, cancel ----------------------------------------------------------------------------


ROLLBACK_RUNBOOK = HEAD + """steps:
  - id: inject
    action: fake.act
    with: {target: db}
  - id: break
    action: fake.fail
  - id: after
    action: fake.act
    with: {target: never}
rollbacks:
  - id: undo
    action: fake.act
    with: {target: undo}
  - id: undo-fails
    action: fake.fail
  - id: undo-still
    action: fake.act
    with: {target: undo2}
"""


def test_a_failed_step_aborts_the_rest_and_every_rollback_runs(fakes: Fakes) -> None:
    res = run(ROLLBACK_RUNBOOK, fakes)
    assert statuses(res.steps) == {"inject": "ok", "break": "failed", "after": "skipped"}
    assert statuses(res.rollbacks) == {"undo": "ok", "undo-fails": "failed", "undo-still": "ok"}
    assert [c[1].get("target") for c in fakes.calls if c[0] == "fake.act"] == ["db", "undo", "undo2"]
    assert res.outcome is Outcome.VERIFICATION_FAILED and res.outcome.exit_code == 2
    assert res.message.startswith("step break failed: boom: it broke") and "rollbacks: 2 ok, 1 failed" in res.message


def test_on_failure_continue_runs_the_next_step_but_the_run_still_fails(fakes: Fakes) -> None:
    res = run(HEAD + """steps:
  - id: flaky
    action: fake.fail
    on_failure: continue
  - id: next
    action: fake.act
""", fakes)
    assert statuses(res.steps) == {"flaky": "failed", "next": "ok"}
    assert res.outcome is Outcome.VERIFICATION_FAILED


def test_ctrl_c_during_a_step_interrupts_then_runs_the_rollbacks(fakes: Fakes) -> None:
    cancel = Cancel()

    def press_ctrl_c(ctx: StepContext) -> None:
        fakes.on_act = None
        cancel.cancel("interrupted (Ctrl-C)")

    fakes.on_act = press_ctrl_c
    res = run(HEAD + """steps:
  - id: first
    action: fake.act
    with: {target: a}
  - id: wait
    action: fake.slow
  - id: last
    action: fake.act
rollbacks:
  - id: undo
    action: fake.act
    with: {target: undo}
""", fakes, cancel=cancel)
    assert statuses(res.steps) == {"first": "interrupted", "wait": "skipped", "last": "skipped"}
    assert statuses(res.rollbacks) == {"undo": "ok"}
    assert res.outcome is Outcome.INTERRUPTED and res.outcome.exit_code == 130
    assert "fake.slow" not in [c[0] for c in fakes.calls]


def test_ctrl_c_inside_a_wait_ends_it_at_once(fakes: Fakes, clock: FakeClock) -> None:
    cancel = Cancel()
    fakes.values["k"] = [0]

    def probe_cancels(ctx: StepContext, params: dict[str, Any]) -> Any:
        if clock.monotonic() >= 10:
            cancel.cancel("interrupted (Ctrl-C)")
        return 0

    catalog = fakes.catalog()
    catalog.probes["fake.probe"] = Probe("fake.probe", (Param("key"),), probe_cancels)
    rb = check_text(HEAD + """steps:
  - id: wait
    wait_until: {probe: fake.probe, with: {key: k}, expect: {equals: 1}}
    timeout: 10m
rollbacks:
  - action: fake.act
""", "t.yaml", catalog=catalog).or_raise()
    res = run_runbook(platform(clock), rb, {}, confirm=lambda q: True, events=RecordingSink(), cancel=cancel,
                      registry=catalog)
    assert res.steps[0].status == "interrupted" and res.outcome is Outcome.INTERRUPTED
    assert res.steps[0].duration_seconds is not None and res.steps[0].duration_seconds < 12
    assert statuses(res.rollbacks) == {"rollback-1": "ok"}


def test_declining_the_confirmation_runs_nothing(fakes: Fakes) -> None:
    questions: list[str] = []

    def decline(q: str) -> bool:
        questions.append(q)
        return False

    fakes.values["k"] = [1]
    res = run(HEAD + """steady_state:
  - probe: fake.probe
    with: {key: k}
steps:
  - id: harmless
    action: fake.read_only
  - id: harmful
    action: fake.act
""", fakes, confirm=decline)
    assert res.outcome is Outcome.DECLINED and fakes.calls == [] and fakes.reads == {}
    assert len(questions) == 1 and "harmful (fake.act)" in questions[0] and "harmless" not in questions[0]


def test_a_failing_steady_state_refuses_the_run_before_any_step(fakes: Fakes) -> None:
    fakes.values["k"] = [0]
    res = run(HEAD + """steady_state:
  - id: healthy
    probe: fake.probe
    with: {key: k}
    expect: {equals: 1}
steps:
  - action: fake.act
rollbacks:
  - action: fake.act
""", fakes)
    assert res.outcome is Outcome.REFUSED and fakes.calls == []
    assert "steady state does not hold before the run: healthy" in res.message
    assert res.steps == [] and res.rollbacks == []


def test_steady_state_is_checked_again_after_the_steps(fakes: Fakes) -> None:
    fakes.values["k"] = [1, 0]
    res = run(HEAD + """steady_state:
  - id: healthy
    probe: fake.probe
    with: {key: k}
    expect: {equals: 1}
steps:
  - action: fake.act
""", fakes)
    assert [r.status for r in res.steady_state.before] == ["ok"]
    assert [r.status for r in res.steady_state.after] == ["failed"]
    assert res.outcome is Outcome.VERIFICATION_FAILED and "after the run" in res.message


# -- objectives ---------------------------------------------------------------------------------------------


OBJECTIVES = HEAD + """objectives:
  rto: {target: 2m, from: inject.started, to: ok.ended}
  rpo: {target: 1s, value: "${{ steps.failover.outputs.lag }}"}
  total: {target: 10m}
steps:
  - id: inject
    action: fake.act
    with: {takes: 10}
  - id: failover
    action: fake.act
    with: {takes: "${{ inputs.promote }}", lag: "${{ inputs.lag }}"}
  - id: ok
    pause: 5s
inputs:
  promote: {type: number}
  lag: {type: number, default: 0.2}
rollback_on_breach: true
rollbacks:
  - id: undo
    action: fake.act
"""


def test_objectives_are_measured_between_markers_and_met(fakes: Fakes) -> None:
    res = run(OBJECTIVES, fakes, inputs={"promote": "60"})
    objectives = {o.name: o for o in res.objectives}
    assert objectives["rto"].measured_seconds == pytest.approx(75.0) and objectives["rto"].met is True
    assert objectives["rpo"].measured_seconds == pytest.approx(0.2) and objectives["rpo"].met is True
    assert objectives["total"].measured_seconds == pytest.approx(75.0)  # first action started to last step ended
    assert res.outcome is Outcome.OK and res.rollbacks == []


def test_a_missed_objective_is_exit_2_and_rolls_back_with_rollback_on_breach(fakes: Fakes) -> None:
    res = run(OBJECTIVES, fakes, inputs={"promote": "200", "lag": "3"})
    objectives = {o.name: o for o in res.objectives}
    assert objectives["rto"].measured_seconds == pytest.approx(215.0) and objectives["rto"].met is False
    assert objectives["rpo"].met is False and objectives["rpo"].target_seconds == 1.0
    assert res.outcome is Outcome.OBJECTIVE_MISSED and res.outcome.exit_code == 2
    assert statuses(res.rollbacks) == {"undo": "ok"}
    assert "rto 3.6m > 2.0m" in res.message


def test_an_objective_whose_marker_never_happened_is_missed(fakes: Fakes) -> None:
    res = run(HEAD + """objectives:
  rto: {target: 2m, from: a.started, to: b.ended}
steps:
  - id: a
    action: fake.fail
  - id: b
    action: fake.act
""", fakes)
    assert res.objectives[0].met is False and res.objectives[0].measured_seconds is None
    assert "b.ended never happened" in res.objectives[0].detail


def test_progress_shows_each_step_and_the_running_objective_clock(fakes: Fakes) -> None:
    sink = RecordingSink()
    rb = load(OBJECTIVES, fakes)
    run_runbook(platform(fakes.clock), rb, {"promote": "60"}, confirm=lambda q: True, events=sink,
                registry=fakes.catalog())
    lines = sink.messages()
    assert "failover (action fake.act): ok in 60.0s  [rto 70.0s of 2.0m, total 70.0s of 10.0m]" in lines
    assert "  inject: acting on None" in lines  # the operation's own events, under its step


# -- dry run, requirements, secrets -------------------------------------------------------------------------


def test_dry_run_checks_steady_state_and_runs_actions_in_their_dry_run_mode(fakes: Fakes) -> None:
    fakes.values["k"] = [1]
    res = run(HEAD + """steady_state:
  - probe: fake.probe
    with: {key: k}
    expect: {equals: 1}
objectives:
  rto: {target: 1m}
steps:
  - id: act
    action: fake.act
  - id: wait
    wait_until: {probe: fake.probe, with: {key: "${{ steps.act.outputs.echo.nothing }}"}, expect: {equals: 1}}
  - id: next
    action: fake.act
    with: {target: "${{ steps.act.outputs.primary.name }}"}
rollbacks:
  - action: fake.act
""", fakes, dry_run=True)
    assert res.outcome is Outcome.DRY_RUN and res.outcome.exit_code == 0
    assert [c[2] for c in fakes.calls] == [True, True]
    assert statuses(res.steps) == {"act": "dry_run", "wait": "skipped", "next": "dry_run"}
    assert fakes.reads == {"k": 1} and res.rollbacks == [] and res.steady_state.after == []
    assert res.objectives[0].met is None


def test_requires_sandbox_is_refused_against_a_real_api_before_anything_runs(fakes: Fakes) -> None:
    fakes.values["k"] = [1]
    text = HEAD + """requires: [sandbox]
steady_state:
  - probe: fake.probe
    with: {key: k}
steps:
  - action: fake.act
"""
    with pytest.raises(UsageError, match=r"requires a doops sandbox, but the API is api\.digitalocean\.com"):
        run(text, fakes, api="https://api.digitalocean.com")
    assert fakes.calls == [] and fakes.reads == {}
    assert run(text, fakes, api="http://127.0.0.1:8080").outcome is Outcome.OK


SECRET = "s3cr3t-Pa55word-from-env"


def test_secrets_from_env_never_reach_the_result_or_a_report(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    res = run(HEAD + """steps:
  - id: act
    action: fake.act
    with: {target: "user:${{ env.DB_PASSWORD }}", password: "${{ env.DB_PASSWORD }}"}
  - id: fails
    action: fake.fail
    with: {target: "${{ steps.act.outputs.echo.target }}"}
""", fakes)
    assert fakes.calls[0][1]["password"] == SECRET  # the action got the real value
    data = res.to_data()
    text = json.dumps(data)
    assert SECRET not in text and "user:***" in text
    for fmt in ("json", "junit", "markdown"):
        assert SECRET not in render_report(data, fmt), fmt


def test_an_unset_environment_variable_is_exit_4_before_anything_runs(fakes: Fakes) -> None:
    with pytest.raises(UsageError, match="environment variable NOPE_NOT_SET is not set"):
        run(HEAD + "steps:\n  - action: fake.act\n    with: {target: '${{ env.NOPE_NOT_SET }}'}\n", fakes)
    assert fakes.calls == []


def test_the_plan_resolves_what_it_can_and_masks_env(fakes: Fakes, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("TOKEN_X", SECRET)
    rb = load(HEAD + """inputs:
  region: {default: ams3}
steps:
  - id: a
    action: fake.act
    with: {target: "${{ inputs.region }}:${{ env.TOKEN_X }}"}
  - id: b
    action: fake.read_only
    with: {target: "${{ steps.a.outputs.primary.name }}"}
""", fakes)
    plan = plan_runbook(platform(fakes.clock), rb, {}, registry=fakes.catalog())
    assert [s.with_ for s in plan.steps] == [{"target": "ams3:***"}, {"target": "<steps.a.outputs.primary.name>"}]
    assert plan.destructive == ["a"] and plan.sandbox is True and fakes.calls == []
