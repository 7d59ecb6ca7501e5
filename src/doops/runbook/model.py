"""A runbook as typed data, and the one table of its keys.

The key tables (``TOP_KEYS``, ``STEP_KEYS``...) are the single source of the format: the validator checks
files against them, ``doops.runbook.schema`` turns them into the JSON Schema editors use, and the format
reference in docs/runbooks.md is generated from them. A key added here is documented and schema'd at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
DEFAULT_TIMEOUT = 600.0  # a step's timeout when neither the step nor the runbook gives one
DEFAULT_INTERVAL = 1.0  # how often a wait_until polls when neither the step nor the runbook says
STEP_KINDS = ("action", "probe", "wait_until", "pause")
ON_FAILURE = ("abort", "continue")
INPUT_TYPES = ("string", "integer", "number", "boolean", "duration")
REQUIRES = ("sandbox",)
MISSING: Any = object()  # an expectation key that was not given (``equals: null`` is a real expectation)


@dataclass(frozen=True)
class Key:
    """One key of a mapping in the format: its JSON Schema type (or a ``#/$defs/...`` reference), what it means,
    whether it must be present, and its closed set of values when there is one."""

    name: str
    type: str
    doc: str
    required: bool = False
    enum: tuple[Any, ...] = ()
    default: Any = None


DURATION_DOC = "a duration: 90s, 2m, 1h, 500ms, or a number of seconds"

TOP_KEYS: tuple[Key, ...] = (
    Key("version", "integer", "Format version; only 1 exists.", required=True, enum=(FORMAT_VERSION,)),
    Key("name", "string", "The runbook's name (shown by `doops runbook list`, in results and reports).",
        required=True),
    Key("description", "string", "One or two sentences: what failure this recovers from, what it proves."),
    Key("requires", "array:string", "`[sandbox]`: refuse to run (exit 4, nothing sent) unless the API is a doops "
        "sandbox (a loopback endpoint). For runbooks that inject faults.", enum=REQUIRES),
    Key("inputs", "#/$defs/inputs", "Values given with `--input NAME=VALUE`, typed; referenced as "
        "`${{ inputs.NAME }}`."),
    Key("objectives", "#/$defs/objectives", "What is measured and judged: `rto` (time between two step "
        "markers), `rpo` (a value from a step's outputs), or any other name of either form."),
    Key("steady_state", "array:#/$defs/check", "Probe checks (`probe` or `wait_until`) run before the steps (a "
        "failure refuses the run) and again after them."),
    Key("steps", "array:#/$defs/step", "What the runbook does, in order.", required=True),
    Key("rollbacks", "array:#/$defs/step", "Steps run after a failed step, after Ctrl-C, or after a missed "
        "objective when `rollback_on_breach` is true. Every rollback runs even if one fails."),
    Key("timeout", "duration", "Default timeout of each `action` and `wait_until` step.", default="10m"),
    Key("interval", "duration", "Default polling interval of each `wait_until`.", default="1s"),
    Key("rollback_on_breach", "boolean", "Run the rollbacks when an objective is missed.", default=False),
)

INPUT_KEYS: tuple[Key, ...] = (
    Key("type", "string", "How `--input` values are converted and checked.", enum=INPUT_TYPES, default="string"),
    Key("default", "any", "The value when `--input` does not give one; without it the input is required."),
    Key("description", "string", "What the input is for (shown by `plan`)."),
    Key("secret", "boolean", "Never echoed: masked in plans, results and reports.", default=False),
    Key("choices", "array:string", "The allowed values, when the set is closed."),
)

STEP_KEYS: tuple[Key, ...] = (
    Key("id", "string", "Unique name: referenced by `${{ steps.ID.outputs.PATH }}` and objective markers "
        "(`ID.started`, `ID.ended`). Default `step-N` (`rollback-N`, `steady-N`)."),
    Key("description", "string", "What the step is for (plans, reports)."),
    Key("action", "string", "An operation to run (`db.failover`, `cdn.purge`...: see Steps); `with` gives its "
        "parameters."),
    Key("probe", "string", "A read (`http`, `sql`...: see Steps), checked once against `expect`."),
    Key("wait_until", "#/$defs/wait", "A probe polled every `interval` until `expect` holds, within `timeout`."),
    Key("pause", "duration", "Wait this long (on the platform clock; Ctrl-C ends it)."),
    Key("with", "object", "The action's or probe's parameters; values may hold `${{ }}` references."),
    Key("expect", "#/$defs/expect", "What a `probe` step's value must satisfy."),
    Key("timeout", "duration", "How long an `action` or `wait_until` may take (default: the runbook's)."),
    Key("interval", "duration", "Polling interval of a `wait_until` (default: the runbook's)."),
    Key("on_failure", "string", "`abort`: stop the steps and roll back; `continue`: go on with the next step "
        "(the run still fails).", enum=ON_FAILURE, default="abort"),
)

WAIT_KEYS: tuple[Key, ...] = (
    Key("probe", "string", "The probe to poll.", required=True),
    Key("with", "object", "Its parameters."),
    Key("expect", "#/$defs/expect", "What must become true.", required=True),
)

EXPECT_KEYS: tuple[Key, ...] = (
    Key("status", "integer|array:integer", "HTTP probes: the status code, or a list of accepted codes."),
    Key("jsonpath", "string", "JSONPath (jsonpath-ng syntax, e.g. `$.checks[0].status`) into the value: an HTTP "
        "probe's JSON body, else the value itself; the other expectations then judge what it selects."),
    Key("equals", "any", "The value equals this (numbers compare as numbers: 1 equals 1.0)."),
    Key("in", "array:any", "The value is one of these."),
    Key("range", "#/$defs/range", "A number within `{min, max}` (both inclusive, either optional)."),
    Key("regex", "string", "A regular expression found in the value (as text; an HTTP probe's body)."),
)

RANGE_KEYS: tuple[Key, ...] = (
    Key("min", "number", "Lowest accepted value (inclusive)."),
    Key("max", "number", "Highest accepted value (inclusive)."),
)

OBJECTIVE_KEYS: tuple[Key, ...] = (
    Key("target", "duration", "The objective: measured must be at most this.", required=True),
    Key("from", "string", "Time objectives: the marker the clock starts at, `ID.started` or `ID.ended` "
        "(default: the first action's start)."),
    Key("to", "string", "Time objectives: the marker the clock stops at (default: the last step's end)."),
    Key("value", "string", "Value objectives (e.g. RPO): one reference to a step output holding seconds, "
        "`${{ steps.ID.outputs.PATH }}`."),
)


@dataclass(frozen=True)
class Loc:
    """Where a node is in its file: 1-based line and column, as editors count."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class InputSpec:
    name: str
    type: str = "string"
    default: Any = None
    required: bool = True
    description: str = ""
    secret: bool = False
    choices: tuple[str, ...] = ()
    loc: Loc | None = None


@dataclass
class Expect:
    equals: Any = MISSING
    in_: list[Any] | None = None
    range_min: float | None = None
    range_max: float | None = None
    has_range: bool = False
    regex: str | None = None
    status: list[int] | None = None
    jsonpath: str | None = None
    loc: Loc | None = None

    def describe(self) -> str:
        """The expectation in one line (errors, plans, reports)."""
        parts = []
        if self.status is not None:
            parts.append("status " + "|".join(str(s) for s in self.status))
        if self.jsonpath:
            parts.append(f"jsonpath {self.jsonpath}")
        if self.equals is not MISSING:
            parts.append(f"equals {self.equals!r}")
        if self.in_ is not None:
            parts.append(f"in {self.in_!r}")
        if self.has_range:
            parts.append(f"range [{'' if self.range_min is None else self.range_min}, "
                         f"{'' if self.range_max is None else self.range_max}]")
        if self.regex is not None:
            parts.append(f"regex {self.regex!r}")
        return ", ".join(parts) or "a value"


@dataclass
class Step:
    """One step. ``kind`` is action | probe | wait_until | pause; ``name`` the action or probe ("pause" for a
    pause). ``with_`` keeps ``${{ }}`` references unresolved: the engine resolves them just before the step."""

    id: str
    kind: str
    name: str
    with_: dict[str, Any] = field(default_factory=dict)
    expect: Expect | None = None
    timeout: float | None = None
    interval: float | None = None
    pause_seconds: float | None = None
    on_failure: str = "abort"
    description: str = ""
    loc: Loc | None = None
    with_locs: dict[str, Loc] = field(default_factory=dict)


@dataclass
class Objective:
    """``kind`` "time": measured between two markers (``from_``/``to``, None: the defaults); "value": read from
    ``value`` (one reference) after the steps."""

    name: str
    kind: str
    target_seconds: float
    from_: str | None = None
    to: str | None = None
    value: str | None = None
    loc: Loc | None = None


@dataclass
class Runbook:
    name: str
    file: str
    version: int = FORMAT_VERSION
    description: str = ""
    requires: list[str] = field(default_factory=list)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    objectives: list[Objective] = field(default_factory=list)
    steady_state: list[Step] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    rollbacks: list[Step] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    interval: float = DEFAULT_INTERVAL
    rollback_on_breach: bool = False

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)
