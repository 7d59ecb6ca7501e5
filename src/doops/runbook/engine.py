"""Running a runbook: pre-flight, steady state, steps, objectives, rollbacks; a plan without running.

``run_runbook(platform, runbook, inputs, *, dry_run, confirm, events, cancel, registry)`` is an operation
like any other (``doops.ops.seam``): it returns a ``RunbookResult`` whose ``outcome`` is an ``Outcome``, emits
events to a sink, and every wait (``wait_until`` steps, pauses, an action's own waits) runs on
``platform.clock`` and ends at once on a cancel. Bad input (invalid inputs, an unset environment variable, a
``requires: [sandbox]`` runbook against a real API) raises ``UsageError`` before anything is sent.

Order: inputs typed, environment read, requirements checked, destructive steps confirmed once; steady state
checked (a failure refuses the run: nothing changed); steps in order; objectives measured; rollbacks when a
step failed, the run was cancelled, or an objective was missed with ``rollback_on_breach``; steady state
checked again. ``--dry-run``: steady state is checked, actions run in their own dry-run mode, probe, wait and
pause steps are skipped, nothing is rolled back and no objective is measured.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from doops.errors import DoopsError, UsageError
from doops.ops.seam import (
    Cancel,
    Cancelled,
    Clock,
    Emitter,
    Event,
    EventSink,
    Level,
    Outcome,
    RecordingSink,
    wait_until,
)
from doops.runbook import refs
from doops.runbook.expect import judge
from doops.runbook.loader import Problem, RunbookInvalid
from doops.runbook.model import Objective, Runbook, Step
from doops.runbook.registry import ActionResult, ProbeError, StepContext
from doops.runbook.validate import Catalog, convert_param, env_refs, parse_inputs
from doops.units import format_duration, parse_duration

if TYPE_CHECKING:
    from doops.platform import Platform

OPERATION = "runbook"
SECRET_MASK = refs.SECRET_MASK


# -- results -----------------------------------------------------------------------------------------------


@dataclass
class StepRecord:
    """One step as it ran. ``status``: ok | failed | interrupted | skipped | dry_run."""

    id: str
    kind: str
    name: str
    status: str = "skipped"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    events: list[Event] = field(default_factory=list)
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "dry_run", "skipped")


@dataclass
class ObjectiveRecord:
    name: str
    kind: str  # time | value
    target_seconds: float
    measured_seconds: float | None
    met: bool | None  # None: not measured (dry run)
    detail: str = ""


@dataclass
class SteadyState:
    before: list[StepRecord] = field(default_factory=list)
    after: list[StepRecord] = field(default_factory=list)


@dataclass
class RunbookResult:
    """What a run did. Its plain form (``to_data``: the JSON result and every report) never holds a secret:
    values read from ``env`` and secret inputs are replaced by ``***`` wherever they appear."""

    runbook: str
    file: str
    inputs: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome
    steady_state: SteadyState
    steps: list[StepRecord]
    rollbacks: list[StepRecord]
    objectives: list[ObjectiveRecord]
    message: str = ""
    dry_run: bool = False
    _secrets: set[str] = field(default_factory=set, repr=False)

    def to_data(self) -> dict[str, Any]:
        from doops.serialize import to_data

        data = {f.name: to_data(getattr(self, f.name)) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        return scrub(data, self._secrets)


@dataclass
class PlanStep:
    section: str  # steady_state | steps | rollbacks
    id: str
    kind: str
    name: str
    destructive: bool
    with_: dict[str, Any]
    expect: str | None
    timeout_seconds: float | None
    on_failure: str
    description: str = ""

    def to_data(self) -> dict[str, Any]:
        from doops.serialize import to_data

        return {"section": self.section, "id": self.id, "kind": self.kind, "name": self.name,
                "destructive": self.destructive, "with": to_data(self.with_), "expect": self.expect,
                "timeout_seconds": self.timeout_seconds, "on_failure": self.on_failure,
                "description": self.description}


@dataclass
class RunbookPlan:
    """What ``run`` would do, with every reference it can know resolved: step outputs show as
    ``<steps.ID.outputs.PATH>``, ``config.apps.NAME.live_url`` as ``<config...>``, environment values as
    ``***``. Nothing is sent to compute it."""

    runbook: str
    file: str
    description: str
    requires: list[str]
    api: str
    sandbox: bool
    inputs: dict[str, Any]
    steps: list[PlanStep]
    destructive: list[str]
    objectives: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)  # references that cannot be resolved yet


def scrub(data: Any, secrets: set[str]) -> Any:
    """``data`` with every secret value replaced by ``***`` (in strings, keys and nested containers)."""
    live = sorted((s for s in secrets if s), key=len, reverse=True)
    if not live:
        return data

    def one(v: Any) -> Any:
        if isinstance(v, str):
            for s in live:
                if s in v:
                    v = v.replace(s, SECRET_MASK)
            return v
        if isinstance(v, dict):
            return {one(k): one(x) for k, x in v.items()}
        if isinstance(v, list):
            return [one(x) for x in v]
        return v

    return one(data)


# -- a cancel with a deadline ------------------------------------------------------------------------------


class StepCancel(Cancel):
    """A step's cancel token: set when the run is cancelled, or when the step's timeout passes on the platform
    clock, so an operation's own waits (``wait_until`` checks ``cancelled``) end at the step's deadline, on a
    fake clock too."""

    def __init__(self, parent: Cancel, clock: Clock, timeout: float | None) -> None:
        super().__init__()
        self.parent, self.clock = parent, clock
        self.deadline = None if timeout is None else clock.monotonic() + timeout

    @property
    def timed_out(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    @property
    def cancelled(self) -> bool:
        if self._event.is_set():
            return True
        if self.parent.cancelled:
            self.reason = self.parent.reason
            return True
        if self.timed_out:
            self.reason = "step timed out"
            return True
        return False

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> bool:
        if self.deadline is not None:
            seconds = min(seconds, max(self.deadline - self.clock.monotonic(), 0.0))
        self.parent.wait(seconds)
        return self.cancelled


# -- the run -----------------------------------------------------------------------------------------------


def is_sandbox(platform: Platform) -> bool:
    """The API is a doops sandbox when its endpoint is a loopback host (as ``ops.audit.Identity`` tells);
    read from the URL alone, so a refusal sends nothing."""
    from doops.clients.do import is_loopback_host

    url = platform.resolved_api_url()
    return is_loopback_host(urlsplit(url).hostname or "")


def destructive_steps(runbook: Runbook, catalog: Catalog) -> list[Step]:
    """The steps (rollbacks too) whose action may change the platform: listed and confirmed before a run."""
    out = []
    for step in [*runbook.steps, *runbook.rollbacks]:
        action = catalog.actions.get(step.name) if step.kind == "action" else None
        if action is not None and action.destructive:
            out.append(step)
    return out


def check_requirements(platform: Platform, runbook: Runbook) -> None:
    if "sandbox" in runbook.requires and not is_sandbox(platform):
        host = urlsplit(platform.resolved_api_url()).netloc
        raise UsageError(f"runbook {runbook.name!r} requires a doops sandbox, but the API is {host}: refusing "
                         "to run (nothing was sent)",
                         hint="start one with `doops sandbox up` and `eval \"$(doops sandbox env)\"`")


def check_environment(runbook: Runbook) -> dict[str, str]:
    """Every ``env.NAME`` the runbook reads must be set before it starts (never half-way through)."""
    from doops.config import env

    values: dict[str, str] = {}
    missing = []
    for name in env_refs(runbook):
        value = env(name)
        if value is None:
            missing.append(name)
        else:
            values[name] = value
    if missing:
        raise RunbookInvalid([Problem(runbook.file, 1, 1, f"environment variable {name} is not set (the runbook "
                                      f"reads ${{{{ env.{name} }}}})") for name in missing])
    return values


def run_runbook(platform: Platform, runbook: Runbook, inputs: dict[str, Any], *, dry_run: bool = False,
                confirm: Callable[[str], bool], events: EventSink, cancel: Cancel | None = None,
                registry: Catalog | None = None) -> RunbookResult:
    """Run ``runbook`` (already validated, e.g. by ``validate.load``) with ``inputs`` (``--input`` text or typed
    values). See the module docstring for the order of things."""
    catalog = registry or Catalog.default()
    typed = parse_inputs(runbook, inputs)
    check_requirements(platform, runbook)
    env_values = check_environment(runbook)
    return _Run(platform, runbook, typed, env_values, catalog, dry_run, confirm, events, cancel or Cancel()).run()


class _Run:
    def __init__(self, platform: Platform, rb: Runbook, inputs: dict[str, Any], env_values: dict[str, str],
                 catalog: Catalog, dry_run: bool, confirm: Callable[[str], bool], events: EventSink,
                 cancel: Cancel) -> None:
        from doops import masking

        self.platform, self.rb, self.catalog, self.dry_run = platform, rb, catalog, dry_run
        self.confirm, self.sink, self.cancel = confirm, events, cancel
        self.clock = platform.clock
        self.emit = Emitter(OPERATION, events, self.clock)
        secret_inputs = frozenset(k for k, s in rb.inputs.items() if s.secret)
        self.scope = refs.Scope(inputs=inputs, config=None, env=env_values.get, app_lookup=self._app,
                                secret_inputs=secret_inputs, placeholders=dry_run)
        self.secrets: set[str] = set(env_values.values())
        self.secrets |= {str(v) for k, v in inputs.items() if k in secret_inputs and v not in (None, "")}
        for s in self.secrets:
            masking.register(s)
        self.created: list[dict[str, Any]] = []
        self.markers: dict[str, float] = {}
        self.marker_times: dict[str, datetime] = {}
        self._apps: dict[str, Any] = {}
        self.result = RunbookResult(
            runbook=rb.name, file=rb.file,
            inputs={k: (SECRET_MASK if k in secret_inputs else v) for k, v in inputs.items()},
            started_at=self.clock.now(), ended_at=None, outcome=Outcome.OK, steady_state=SteadyState(),
            steps=[], rollbacks=[], objectives=[], dry_run=dry_run, _secrets=self.secrets)

    # -- references needing the API ------------------------------------------------------------------------

    def _app(self, name: str) -> Any:
        if name not in self._apps:
            self._apps[name] = next((a for a in self.platform.do.list_apps() if a.name == name or a.id == name),
                                    None)
        return self._apps[name]

    # -- the whole run -------------------------------------------------------------------------------------

    def run(self) -> RunbookResult:
        res, rb = self.result, self.rb
        self.scope.config = self.platform.config
        destructive = destructive_steps(rb, self.catalog)
        if destructive and not self.dry_run:
            names = ", ".join(f"{s.id} ({s.name})" for s in destructive)
            host = urlsplit(self.platform.resolved_api_url()).netloc
            if not self.confirm(f"Run runbook {rb.name!r} against {host}? It changes things in: {names}"):
                return self.finish(Outcome.DECLINED, "declined: nothing was run")
        self.emit("start", f"runbook {rb.name}: {len(rb.steps)} step(s)" + (" (dry run)" if self.dry_run else ""),
                  steps=len(rb.steps))

        # steady state before: a failure refuses the run; nothing has changed yet
        for step in rb.steady_state:
            rec = self.run_step(step, "steady_state")
            res.steady_state.before.append(rec)
            if rec.status == "interrupted":
                return self.finish(Outcome.INTERRUPTED, "interrupted during the steady-state checks: nothing was "
                                   "changed")
            if not rec.ok:
                return self.finish(Outcome.REFUSED, f"steady state does not hold before the run: {rec.id}: "
                                   f"{rec.error}; nothing was changed")

        # the steps
        failed: StepRecord | None = None
        interrupted: StepRecord | None = None
        stop = False
        for step in rb.steps:
            if stop or self.cancel.cancelled:
                res.steps.append(StepRecord(step.id, step.kind, step.name, description=step.description))
                if self.cancel.cancelled and interrupted is None:
                    interrupted = res.steps[-1]
                continue
            rec = self.run_step(step, "steps")
            res.steps.append(rec)
            if rec.status == "interrupted":
                interrupted, stop = rec, True
            elif rec.status == "failed":
                failed = failed or rec
                stop = step.on_failure == "abort"

        # objectives
        res.objectives = [self.measure(obj) for obj in rb.objectives]
        missed = [o for o in res.objectives if o.met is False]

        # rollbacks
        reason = ("interrupted" if interrupted else "a step failed" if failed else
                  "an objective was missed" if missed and rb.rollback_on_breach else "")
        if reason and rb.rollbacks and not self.dry_run:
            self.emit("rollback", f"rolling back ({reason}): {len(rb.rollbacks)} step(s)", Level.WARN)
            self.run_rollbacks()
        rollback_failed = [r for r in res.rollbacks if r.status == "failed"]

        # steady state after
        if not interrupted and not self.dry_run:
            for step in rb.steady_state:
                res.steady_state.after.append(self.run_step(step, "steady_state"))
        after_failed = next((r for r in res.steady_state.after if not r.ok), None)

        tail = ""
        if res.rollbacks:
            tail = f"; rollbacks: {len(res.rollbacks) - len(rollback_failed)} ok, {len(rollback_failed)} failed"
        if interrupted:
            return self.finish(Outcome.INTERRUPTED, f"interrupted at step {interrupted.id}{tail}")
        if failed:
            return self.finish(Outcome.VERIFICATION_FAILED, f"step {failed.id} failed: {failed.error}{tail}")
        if after_failed:
            return self.finish(Outcome.VERIFICATION_FAILED,
                               f"steady state does not hold after the run: {after_failed.id}: {after_failed.error}")
        if missed:
            text = "; ".join(f"{o.name} {o.detail}" for o in missed)
            return self.finish(Outcome.OBJECTIVE_MISSED, f"objective missed: {text}{tail}")
        if self.dry_run:
            return self.finish(Outcome.DRY_RUN, f"dry run of {rb.name}: {len(rb.steps)} step(s) planned, "
                               "steady state holds")
        met = ", ".join(f"{o.name} {o.detail}" for o in res.objectives)
        return self.finish(Outcome.OK, f"{rb.name}: {len(rb.steps)} step(s) passed" + (f"; {met}" if met else ""))

    def run_rollbacks(self) -> None:
        saved = self.cancel
        self.cancel = Cancel()  # rollbacks run after Ctrl-C too; a second Ctrl-C interrupts them at once
        try:
            for step in self.rb.rollbacks:
                self.result.rollbacks.append(self.run_step(step, "rollbacks"))
        finally:
            self.cancel = saved

    def finish(self, outcome: Outcome, message: str) -> RunbookResult:
        res = self.result
        res.outcome, res.message, res.ended_at = outcome, message, self.clock.now()
        level = Level.DONE if outcome in (Outcome.OK, Outcome.DRY_RUN) else Level.FAIL
        self.emit("end", f"{outcome.value}: {message}", level)
        return res

    # -- one step ------------------------------------------------------------------------------------------

    def clocks(self) -> str:
        """The objective clocks running now: started, not yet stopped."""
        parts = []
        for obj in self.rb.objectives:
            if obj.kind != "time":
                continue
            start, end = self.bounds(obj)
            if start in self.markers and end not in self.markers:
                elapsed = self.clock.monotonic() - self.markers[start]
                parts.append(f"{obj.name} {format_duration(elapsed)} of {format_duration(obj.target_seconds)}")
        return ("  [" + ", ".join(parts) + "]") if parts else ""

    def run_step(self, step: Step, section: str) -> StepRecord:
        rec = StepRecord(step.id, step.kind, step.name, status="running", started_at=self.clock.now(),
                         description=step.description)
        t0 = self.clock.monotonic()
        if section == "steps":
            self.markers[f"{step.id}.started"] = t0
        label = f"{step.id} ({step.kind}{'' if step.kind == 'pause' else ' ' + step.name})"
        self.emit(section, f"{label}: started{self.clocks()}", Level.STEP, step=step.id, state="started")
        recorder = RecordingSink()

        def tee(event: Event) -> None:
            recorder(event)
            self.sink(dataclasses.replace(event, message=f"  {step.id}: {event.message}"))

        try:
            self.execute(step, rec, tee, section)
        except Cancelled:
            rec.status, rec.error = "interrupted", self.cancel.reason or "interrupted"
        except RunbookInvalid as exc:
            rec.status, rec.error = "failed", exc.message
        except DoopsError as exc:
            rec.status, rec.error = "failed", exc.message
        except Exception as exc:  # an operation's bug must fail the step (and roll back), not the whole run
            rec.status, rec.error = "failed", f"{type(exc).__name__}: {exc}"
        rec.events = recorder.events
        rec.ended_at = self.clock.now()
        rec.duration_seconds = round(self.clock.monotonic() - t0, 6)
        if section == "steps" and rec.status != "interrupted":
            self.markers[f"{step.id}.ended"] = self.clock.monotonic()
        if rec.outputs:
            self.scope.outputs[step.id] = rec.outputs
        level = {"ok": Level.OK, "dry_run": Level.OK, "skipped": Level.STEP}.get(rec.status, Level.FAIL)
        tail = f": {rec.error}" if rec.error else ""
        self.emit(section, f"{label}: {rec.status} in {format_duration(rec.duration_seconds)}{tail}{self.clocks()}",
                  level, step=step.id, state=rec.status, elapsed=rec.duration_seconds)
        return rec

    def params(self, step: Step) -> dict[str, Any]:
        """The step's ``with``, references resolved, converted to each parameter's type, defaults filled in."""
        entry = (self.catalog.actions.get(step.name) if step.kind == "action" else self.catalog.probes.get(step.name))
        if entry is None:
            raise UsageError(f"unknown {step.kind} {step.name!r}")
        try:
            resolved = self.scope.resolve(step.with_)
        except refs.RefError as exc:
            raise UsageError(str(exc)) from None
        out: dict[str, Any] = {}
        for p in entry.params:
            if p.name in resolved:
                value = resolved[p.name]
                if self.dry_run and isinstance(value, str) and value.startswith("<") and value.endswith(">"):
                    out[p.name] = value  # a placeholder for an output a dry run did not produce
                    continue
                try:
                    out[p.name] = convert_param(p, value)
                except ValueError as exc:
                    raise UsageError(f"with.{p.name}: {exc}") from None
                if p.secret and isinstance(out[p.name], str):
                    self.secrets.add(out[p.name])
            elif p.default is not None:
                out[p.name] = p.default
        return out

    def context(self, cancel: Cancel, sink: EventSink) -> StepContext:
        return StepContext(platform=self.platform, dry_run=self.dry_run, confirm=lambda question: True,
                           events=sink, cancel=cancel, created=self.created)

    def execute(self, step: Step, rec: StepRecord, sink: EventSink, section: str) -> None:
        if step.kind == "pause":
            seconds = step.pause_seconds or 0.0
            if self.dry_run:
                rec.status = "skipped"
                return
            self.clock.sleep(seconds, self.cancel)
            if self.cancel.cancelled:
                raise Cancelled(self.cancel.reason)
            rec.status, rec.outputs = "ok", {"seconds": seconds}
            return
        if self.dry_run and section == "steps" and step.kind != "action":
            rec.status = "skipped"  # a check of what the actions would have done: nothing to see in a dry run
            return
        params = self.params(step)
        if step.kind == "action":
            self.run_action(step, rec, params, sink)
        elif step.kind == "probe":
            self.run_probe(step, rec, params, sink)
        else:
            self.run_wait(step, rec, params, sink)

    def run_action(self, step: Step, rec: StepRecord, params: dict[str, Any], sink: EventSink) -> None:
        action = self.catalog.actions[step.name]
        timeout = step.timeout or self.rb.timeout
        cancel = StepCancel(self.cancel, self.clock, timeout)
        try:
            result = action.run(self.context(cancel, sink), params)
        except Cancelled:
            if self.cancel.cancelled:
                raise
            rec.status, rec.error = "failed", f"timed out after {format_duration(timeout)}"
            return
        if not isinstance(result, ActionResult):
            raise TypeError(f"action {step.name} returned {type(result).__name__}, not an ActionResult")
        from doops.serialize import to_data

        rec.outputs = to_data(result.outputs) or {}
        if self.cancel.cancelled:
            rec.status, rec.error = "interrupted", self.cancel.reason or result.error or "interrupted"
        elif cancel.timed_out and not result.ok:
            rec.status, rec.error = "failed", f"timed out after {format_duration(timeout)}" + (
                f": {result.error}" if result.error else "")
        elif result.outcome == Outcome.INTERRUPTED.value:
            rec.status, rec.error = "interrupted", result.error or "interrupted"
        elif not result.ok:
            rec.status, rec.error = "failed", result.error or f"{step.name} ended {result.outcome}"
        elif cancel.timed_out:
            rec.status, rec.error = "failed", f"took longer than its timeout of {format_duration(timeout)}"
        else:
            rec.status = "dry_run" if self.dry_run or result.outcome == Outcome.DRY_RUN.value else "ok"

    def run_probe(self, step: Step, rec: StepRecord, params: dict[str, Any], sink: EventSink) -> None:
        probe = self.catalog.probes[step.name]
        try:
            value = probe.read(self.context(self.cancel, sink), params)
        except ProbeError as exc:
            rec.status, rec.error = "failed", f"{step.name} probe could not read: {exc}"
            return
        rec.outputs = {"value": _plain(value)}
        verdict = judge(self.expect(step), value)
        rec.status, rec.error = ("ok", None) if verdict.ok else ("failed", verdict.detail)

    def expect(self, step: Step) -> Any:
        """The step's expectation with references in ``equals``/``in``/``regex`` resolved (literally in a regex)."""
        ex = step.expect
        if ex is None:
            return None
        try:
            equals = self.scope.resolve(ex.equals) if isinstance(ex.equals, str | list | dict) else ex.equals
            in_ = self.scope.resolve(ex.in_) if ex.in_ is not None else None
            regex = self.scope.resolve_pattern(ex.regex) if isinstance(ex.regex, str) else ex.regex
            return dataclasses.replace(ex, equals=equals, in_=in_, regex=regex)
        except refs.RefError as exc:
            raise UsageError(f"expect: {exc}") from None

    def run_wait(self, step: Step, rec: StepRecord, params: dict[str, Any], sink: EventSink) -> None:
        probe = self.catalog.probes[step.name]
        timeout = step.timeout or self.rb.timeout
        interval = step.interval or self.rb.interval
        expectation = self.expect(step)
        emit = Emitter(step.name, sink, self.clock)
        last: dict[str, Any] = {"detail": "", "value": None}
        ctx = self.context(self.cancel, sink)

        def poll() -> tuple[Any] | None:
            value = probe.read(ctx, params)
            verdict = judge(expectation, value)
            last["value"] = value
            if verdict.detail != last["detail"]:
                last["detail"] = verdict.detail
                emit("poll", verdict.detail, Level.OK if verdict.ok else Level.STEP)
            return (value,) if verdict.ok else None

        waited = wait_until(poll, timeout=timeout, clock=self.clock, cancel=self.cancel, interval=interval,
                            max_interval=interval, backoff=1.0, errors=(ProbeError,))
        if waited.cancelled:
            raise Cancelled(self.cancel.reason or "interrupted")
        if waited.timed_out:
            why = last["detail"] if last["value"] is not None or not waited.last_error else waited.last_error
            rec.status = "failed"
            rec.error = (f"timed out after {format_duration(timeout)} ({waited.attempts} tries): "
                         f"{why or 'never true'}")
            if last["value"] is not None:
                rec.outputs = {"value": _plain(last["value"])}
            return
        assert waited.value is not None
        rec.status, rec.outputs = "ok", {"value": _plain(waited.value[0])}

    # -- objectives ----------------------------------------------------------------------------------------

    def bounds(self, obj: Objective) -> tuple[str, str]:
        steps = self.rb.steps
        first = next((s for s in steps if s.kind == "action"), steps[0] if steps else None)
        start = obj.from_ or (f"{first.id}.started" if first else "")
        end = obj.to or (f"{steps[-1].id}.ended" if steps else "")
        return start, end

    def measure(self, obj: Objective) -> ObjectiveRecord:
        target = obj.target_seconds
        if self.dry_run:
            return ObjectiveRecord(obj.name, obj.kind, target, None, None, "dry run: not measured")
        if obj.kind == "time":
            start, end = self.bounds(obj)
            missing = [m for m in (start, end) if m not in self.markers]
            if missing:
                return ObjectiveRecord(obj.name, obj.kind, target, None, False,
                                       f"not measured: {' and '.join(missing)} never happened")
            measured = max(self.markers[end] - self.markers[start], 0.0)
        else:
            try:
                measured = seconds_of(self.scope.resolve(obj.value))
            except (refs.RefError, ValueError) as exc:
                return ObjectiveRecord(obj.name, obj.kind, target, None, False, f"not measured: {exc}")
        measured = round(float(measured), 6)
        met = measured <= target
        detail = f"{format_duration(measured)} {'<=' if met else '>'} {format_duration(target)}"
        return ObjectiveRecord(obj.name, obj.kind, target, measured, met, detail)


def seconds_of(raw: Any) -> float:
    """A value objective's measurement: a number of seconds (0 is fine: no data lost) or a duration text."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"expected a number of seconds, got {raw!r}")
    if isinstance(raw, int | float):
        if raw < 0:
            raise ValueError(f"expected seconds, got the negative {raw!r}")
        return float(raw)
    text = str(raw).strip()
    try:
        return seconds_of(float(text))
    except ValueError:
        pass
    if re.fullmatch(r"0+(\.0+)?\s*(ms|s|m|h|d)?", text):
        return 0.0
    return parse_duration(text)


def _plain(value: Any) -> Any:
    from doops.serialize import to_data

    return to_data(value)


# -- the plan ----------------------------------------------------------------------------------------------


def plan_runbook(platform: Platform, runbook: Runbook, inputs: dict[str, Any], *,
                 registry: Catalog | None = None) -> RunbookPlan:
    """The steps of ``runbook`` with the references that can be known now resolved; sends nothing."""
    catalog = registry or Catalog.default()
    typed = parse_inputs(runbook, inputs)
    secret_inputs = frozenset(k for k, s in runbook.inputs.items() if s.secret)
    scope = refs.Scope(inputs=typed, config=platform.config, secret_inputs=secret_inputs, mask_env=True,
                       placeholders=True)
    destructive = {s.id for s in destructive_steps(runbook, catalog)}
    steps: list[PlanStep] = []
    problems: list[str] = []
    for section, items in (("steady_state", runbook.steady_state), ("steps", runbook.steps),
                           ("rollbacks", runbook.rollbacks)):
        for step in items:
            try:
                resolved = scope.resolve(step.with_)
            except refs.RefError as exc:
                problems.append(f"{step.id}: {exc}")
                resolved = step.with_
            timeout = (step.timeout or runbook.timeout) if step.kind in ("action", "wait_until") else (
                step.pause_seconds if step.kind == "pause" else None)
            steps.append(PlanStep(section, step.id, step.kind, step.name, step.id in destructive, resolved,
                                  step.expect.describe() if step.expect else None, timeout, step.on_failure,
                                  step.description))
    objectives = []
    for obj in runbook.objectives:
        entry: dict[str, Any] = {"name": obj.name, "kind": obj.kind, "target_seconds": obj.target_seconds}
        if obj.kind == "time":
            first = next((s for s in runbook.steps if s.kind == "action"), runbook.steps[0] if runbook.steps else None)
            entry["from"] = obj.from_ or (f"{first.id}.started" if first else None)
            entry["to"] = obj.to or (f"{runbook.steps[-1].id}.ended" if runbook.steps else None)
        else:
            entry["value"] = obj.value
        objectives.append(entry)
    return RunbookPlan(
        runbook=runbook.name, file=runbook.file, description=runbook.description, requires=list(runbook.requires),
        api=urlsplit(platform.resolved_api_url()).netloc, sandbox=is_sandbox(platform),
        inputs={k: (SECRET_MASK if k in secret_inputs else v) for k, v in typed.items()}, steps=steps,
        destructive=[s for s in (st.id for st in steps) if s in destructive], objectives=objectives,
        problems=problems)
