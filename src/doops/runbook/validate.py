"""A runbook file checked whole before anything runs: every problem collected (not just the first), each at
its ``file:line:col``.

Checked: the YAML, every key against the format (``model.*_KEYS``), each action and probe against the
registry (parameters known, required ones given, types and choices of literal values), durations, and every
``${{ }}`` reference: ``steps.ID.outputs.NAME`` to an earlier step that has that output, ``inputs.NAME``
declared, ``config.PATH`` present in the loaded config (``config.apps.NAME.live_url``, ``id`` and ``region``
come from the API at run time and are only checked for form), ``env.NAME`` well formed. Objective markers
name existing steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from doops.runbook import refs
from doops.runbook.loader import Problem, RunbookInvalid, compose, loc, plain, problem_at, read_text
from doops.runbook.model import (
    EXPECT_KEYS,
    INPUT_KEYS,
    INPUT_TYPES,
    MISSING,
    OBJECTIVE_KEYS,
    ON_FAILURE,
    RANGE_KEYS,
    REQUIRES,
    STEP_KEYS,
    TOP_KEYS,
    WAIT_KEYS,
    Expect,
    InputSpec,
    Key,
    Loc,
    Objective,
    Runbook,
    Step,
)
from doops.runbook.registry import Action, Param, Probe
from doops.units import parse_duration

ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
MARKER = re.compile(r"^(?P<id>[A-Za-z0-9_][A-Za-z0-9_-]*)\.(?P<edge>started|ended)$")
PROBE_OUTPUTS = ("value",)
PAUSE_OUTPUTS = ("seconds",)


@dataclass
class Catalog:
    """The actions and probes a runbook may name. The default reads ``doops.runbook.registry`` on first use;
    tests hand the engine and the validator a catalog of fakes."""

    actions: dict[str, Action] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Catalog:
        from doops.runbook import registry

        return cls(actions=registry.actions(), probes=registry.probes())


@dataclass
class Checked:
    """A file's validation: the runbook when it could be built, and every problem found."""

    file: str
    runbook: Runbook | None
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems and self.runbook is not None

    def or_raise(self) -> Runbook:
        if self.problems or self.runbook is None:
            raise RunbookInvalid(self.problems or [Problem(self.file, 1, 1, "empty runbook")])
        return self.runbook


def check_file(path: str | Path, *, config: Any = None, catalog: Catalog | None = None) -> Checked:
    """Read and check one runbook file (``config``: the loaded doops config, for ``config.PATH`` references;
    None skips those checks)."""
    filename = str(path)
    try:
        text = read_text(path)
    except RunbookInvalid as exc:
        return Checked(filename, None, exc.problems)
    return check_text(text, filename, config=config, catalog=catalog)


def check_text(text: str, filename: str, *, config: Any = None, catalog: Catalog | None = None) -> Checked:
    try:
        node = compose(text, filename)
    except RunbookInvalid as exc:
        return Checked(filename, None, exc.problems)
    builder = _Builder(filename, catalog or Catalog.default(), config)
    runbook = builder.build(node)
    problems = sorted(builder.problems, key=lambda p: (p.line, p.col))
    return Checked(filename, runbook, problems)


def load(path: str | Path, *, config: Any = None, catalog: Catalog | None = None) -> Runbook:
    """The runbook, or ``RunbookInvalid`` (exit 4) carrying every problem."""
    return check_file(path, config=config, catalog=catalog).or_raise()


def _keys(keys: Iterable[Key]) -> str:
    return ", ".join(k.name for k in keys)


class _Builder:
    def __init__(self, filename: str, catalog: Catalog, config: Any) -> None:
        self.file = filename
        self.catalog = catalog
        self.config = config
        self.problems: list[Problem] = []

    # -- helpers -------------------------------------------------------------------------------------------

    def err(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(problem_at(node, self.file, message))

    def mapping(self, node: yaml.Node, keys: tuple[Key, ...], what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The mapping's entries by key; unknown, duplicate and missing required keys reported."""
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{what}: expected a mapping with keys {_keys(keys)}")
            return {}
        known = {k.name for k in keys}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            name = knode.value if isinstance(knode, yaml.ScalarNode) else None
            if name is None or name not in known:
                self.err(knode, f"{what}: unknown key {name!r} (valid keys: {_keys(keys)})")
                continue
            if name in out:
                self.err(knode, f"{what}: key {name!r} given twice")
                continue
            out[name] = (knode, vnode)
        for k in keys:
            if k.required and k.name not in out:
                self.err(node, f"{what}: missing required key {k.name!r}")
        return out

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            shape = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            self.err(node, f"{what}: expected a single value, not a {shape}")
            return MISSING
        try:
            return plain(node)
        except yaml.YAMLError as exc:
            self.err(node, f"{what}: {getattr(exc, 'problem', None) or exc}")
            return MISSING

    def value(self, node: yaml.Node, what: str) -> Any:
        try:
            return plain(node)
        except (yaml.YAMLError, TypeError) as exc:
            self.err(node, f"{what}: {getattr(exc, 'problem', None) or exc}")
            return MISSING

    def string(self, node: yaml.Node, what: str) -> str | None:
        v = self.scalar(node, what)
        if v is MISSING:
            return None
        if not isinstance(v, str):
            self.err(node, f"{what}: expected a string, got {v!r}")
            return None
        return v

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        v = self.scalar(node, what)
        if v is MISSING:
            return None
        if not isinstance(v, bool):
            self.err(node, f"{what}: expected true or false, got {v!r}")
            return None
        return v

    def duration(self, node: yaml.Node, what: str) -> float | None:
        v = self.scalar(node, what)
        if v is MISSING:
            return None
        if isinstance(v, str) and "${{" in v:
            self.err(node, f"{what}: a duration cannot be a reference; write it out (e.g. 90s)")
            return None
        try:
            return parse_duration(v)
        except ValueError as exc:
            self.err(node, f"{what}: {exc}")
            return None

    def number(self, node: yaml.Node, what: str) -> float | None:
        v = self.scalar(node, what)
        if v is MISSING:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.err(node, f"{what}: expected a number, got {v!r}")
            return None
        return float(v)

    # -- the runbook ---------------------------------------------------------------------------------------

    def build(self, root: yaml.Node | None) -> Runbook | None:
        if root is None:
            self.err(None, "empty file: a runbook needs version, name and steps")
            return None
        top = self.mapping(root, TOP_KEYS, "runbook")
        if not top:
            return None
        rb = Runbook(name="", file=self.file)
        if "version" in top:
            v = self.scalar(top["version"][1], "version")
            if v is not MISSING and (isinstance(v, bool) or v != 1):
                self.err(top["version"][1], f"version: unsupported format version {v!r} (this doops reads 1)")
        if "name" in top:
            rb.name = self.string(top["name"][1], "name") or ""
        if "description" in top:
            rb.description = self.string(top["description"][1], "description") or ""
        if "requires" in top:
            rb.requires = self.requires(top["requires"][1])
        if "timeout" in top:
            rb.timeout = self.duration(top["timeout"][1], "timeout") or rb.timeout
        if "interval" in top:
            rb.interval = self.duration(top["interval"][1], "interval") or rb.interval
        if "rollback_on_breach" in top:
            rb.rollback_on_breach = bool(self.boolean(top["rollback_on_breach"][1], "rollback_on_breach"))
        if "inputs" in top:
            rb.inputs = self.inputs(top["inputs"][1])
        rb.steady_state = self.steps(top.get("steady_state"), "steady_state", "steady", checks_only=True)
        rb.steps = self.steps(top.get("steps"), "steps", "step")
        rb.rollbacks = self.steps(top.get("rollbacks"), "rollbacks", "rollback")
        if "steps" in top and not rb.steps and isinstance(top["steps"][1], yaml.SequenceNode):
            self.err(top["steps"][1], "steps: a runbook needs at least one step")
        if "objectives" in top:
            rb.objectives = self.objectives(top["objectives"][1])
        self.check_ids(rb)
        self.check_references(rb, top)
        self.check_objectives(rb)
        return rb

    def requires(self, node: yaml.Node) -> list[str]:
        if not isinstance(node, yaml.SequenceNode):
            self.err(node, f"requires: expected a list, e.g. [sandbox] (known: {', '.join(REQUIRES)})")
            return []
        out = []
        for item in node.value:
            v = self.string(item, "requires")
            if v is not None and v not in REQUIRES:
                self.err(item, f"requires: unknown requirement {v!r} (known: {', '.join(REQUIRES)})")
            elif v is not None:
                out.append(v)
        return out

    def inputs(self, node: yaml.Node) -> dict[str, InputSpec]:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, "inputs: expected a mapping of NAME: {type, default, description}")
            return {}
        out: dict[str, InputSpec] = {}
        for knode, vnode in node.value:
            name = self.string(knode, "inputs")
            if name is None:
                continue
            if not ID.match(name):
                self.err(knode, f"inputs: invalid name {name!r} (letters, digits, - and _)")
                continue
            what = f"inputs.{name}"
            spec = InputSpec(name=name, loc=loc(knode, self.file))
            m = self.mapping(vnode, INPUT_KEYS, what)
            if "type" in m:
                t = self.string(m["type"][1], f"{what}.type")
                if t is not None and t not in INPUT_TYPES:
                    self.err(m["type"][1], f"{what}.type: unknown type {t!r} (known: {', '.join(INPUT_TYPES)})")
                elif t is not None:
                    spec.type = t
            if "description" in m:
                spec.description = self.string(m["description"][1], f"{what}.description") or ""
            if "secret" in m:
                spec.secret = bool(self.boolean(m["secret"][1], f"{what}.secret"))
            if "choices" in m:
                spec.choices = tuple(str(c) for c in self.value(m["choices"][1], f"{what}.choices") or ())
            if "default" in m:
                dnode = m["default"][1]
                default = self.scalar(dnode, f"{what}.default")
                if default is not MISSING:
                    try:
                        spec.default = convert_input(spec, default)
                        spec.required = False
                    except ValueError as exc:
                        self.err(dnode, f"{what}.default: {exc}")
            out[name] = spec
        return out

    def steps(self, entry: tuple[yaml.Node, yaml.Node] | None, section: str, prefix: str,
              checks_only: bool = False) -> list[Step]:
        if entry is None:
            return []
        node = entry[1]
        if not isinstance(node, yaml.SequenceNode):
            self.err(node, f"{section}: expected a list of steps")
            return []
        out = []
        for n, item in enumerate(node.value, 1):
            step = self.step(item, f"{section}[{n}]", f"{prefix}-{n}", checks_only)
            if step is not None:
                out.append(step)
        return out

    def step(self, node: yaml.Node, what: str, default_id: str, checks_only: bool) -> Step | None:
        m = self.mapping(node, STEP_KEYS, what)
        if not m and not isinstance(node, yaml.MappingNode):
            return None
        step_id = default_id
        if "id" in m:
            given = self.string(m["id"][1], f"{what}.id")
            if given is not None and not ID.match(given):
                self.err(m["id"][1], f"{what}.id: invalid id {given!r} (letters, digits, - and _)")
            elif given is not None:
                step_id = given
        what = f"step {step_id!r}" if "id" in m else what
        kinds = [k for k in ("action", "probe", "wait_until", "pause") if k in m]
        if len(kinds) != 1:
            self.err(node, f"{what}: give exactly one of action, probe, wait_until, pause"
                     + (f" (got {', '.join(kinds)})" if kinds else ""))
            return None
        kind = kinds[0]
        if checks_only and kind not in ("probe", "wait_until"):
            self.err(m[kind][0], f"{what}: steady_state holds only probe and wait_until checks, not {kind}")
            return None
        step = Step(id=step_id, kind=kind, name=kind if kind == "pause" else "", loc=loc(node, self.file))
        if "description" in m:
            step.description = self.string(m["description"][1], f"{what}.description") or ""
        if "on_failure" in m:
            v = self.string(m["on_failure"][1], f"{what}.on_failure")
            if v is not None and v not in ON_FAILURE:
                self.err(m["on_failure"][1], f"{what}.on_failure: expected abort or continue, got {v!r}")
            elif v is not None:
                step.on_failure = v
        if "timeout" in m:
            step.timeout = self.duration(m["timeout"][1], f"{what}.timeout")
        if "interval" in m:
            step.interval = self.duration(m["interval"][1], f"{what}.interval")
            if kind != "wait_until":
                self.err(m["interval"][0], f"{what}.interval: only a wait_until polls")
        with_node = m.get("with")
        expect_node = m.get("expect")
        if kind == "pause":
            step.pause_seconds = self.duration(m["pause"][1], f"{what}.pause")
            for extra in ("with", "expect"):
                if extra in m:
                    self.err(m[extra][0], f"{what}: a pause takes no {extra!r}")
            return step
        if kind == "wait_until":
            w = self.mapping(m["wait_until"][1], WAIT_KEYS, f"{what}.wait_until")
            for extra in ("with", "expect"):
                if extra in m:
                    self.err(m[extra][0], f"{what}: put {extra!r} inside wait_until")
            name_node = w.get("probe")
            with_node, expect_node = w.get("with"), w.get("expect")
        else:
            name_node = m[kind]
            if kind == "action" and expect_node is not None:
                self.err(expect_node[0], f"{what}: an action takes no expect (check it with a probe step)")
                expect_node = None
        if name_node is None:
            return step
        name = self.string(name_node[1], f"{what}.{'probe' if kind != 'action' else 'action'}")
        if name is None:
            return step
        step.name = name
        entry: Action | Probe | None
        if kind == "action":
            entry = self.catalog.actions.get(name)
            if entry is None:
                self.err(name_node[1], f"{what}: unknown action {name!r} (known: "
                         f"{', '.join(sorted(self.catalog.actions)) or 'none'})")
        else:
            entry = self.catalog.probes.get(name)
            if entry is None:
                self.err(name_node[1], f"{what}: unknown probe {name!r} (known: "
                         f"{', '.join(sorted(self.catalog.probes)) or 'none'})")
        nodes: dict[str, yaml.Node] = {}
        if with_node is not None:
            step.with_, step.with_locs, nodes = self.with_(with_node[1], f"{what}.with")
        if entry is not None:
            self.check_params(step, entry.params, nodes, with_node[1] if with_node else node, what)
        if expect_node is not None:
            step.expect = self.expect(expect_node[1], f"{what}.expect")
        return step

    def with_(self, node: yaml.Node, what: str) -> tuple[dict[str, Any], dict[str, Loc], dict[str, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{what}: expected a mapping of parameter: value")
            return {}, {}, {}
        values: dict[str, Any] = {}
        locs: dict[str, Loc] = {}
        nodes: dict[str, yaml.Node] = {}
        for knode, vnode in node.value:
            key = self.string(knode, what)
            if key is None:
                continue
            if key in values:
                self.err(knode, f"{what}: parameter {key!r} given twice")
                continue
            v = self.value(vnode, f"{what}.{key}")
            if v is MISSING:
                continue
            values[key] = v
            locs[key] = loc(vnode, self.file)
            nodes[key] = vnode
        return values, locs, nodes

    def check_params(self, step: Step, params: tuple[Param, ...], nodes: dict[str, yaml.Node], node: yaml.Node,
                     what: str) -> None:
        by_name = {p.name: p for p in params}
        for key, value in step.with_.items():
            vnode = nodes[key]
            param = by_name.get(key)
            if param is None:
                self.err(vnode, f"{what}: {step.name} has no parameter {key!r} (it takes: "
                         f"{', '.join(by_name) or 'none'})")
                continue
            if refs.find(value):
                try:
                    whole = refs.whole(value)
                except refs.RefError:
                    continue  # reported with the references
                if whole is None and param.type not in ("string", "list", "object"):
                    self.err(vnode, f"{what}.{key}: a {param.type} parameter takes one whole reference, "
                             "not text around one")
                continue
            try:
                convert_param(param, value)
            except ValueError as exc:
                self.err(vnode, f"{what}.{key}: {exc}")
        for p in params:
            if p.required and p.default is None and p.name not in step.with_:
                self.err(node, f"{what}: {step.name} needs parameter {p.name!r}" + (f" ({p.doc})" if p.doc else ""))

    def expect(self, node: yaml.Node, what: str) -> Expect | None:
        m = self.mapping(node, EXPECT_KEYS, what)
        if not m:
            if isinstance(node, yaml.MappingNode):
                self.err(node, f"{what}: give at least one of {_keys(EXPECT_KEYS)}")
            return None
        ex = Expect(loc=loc(node, self.file))
        if "status" in m:
            v = self.value(m["status"][1], f"{what}.status")
            codes = v if isinstance(v, list) else [v]
            if v is not MISSING and all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599
                                        for c in codes) and codes:
                ex.status = list(codes)
            elif v is not MISSING:
                self.err(m["status"][1], f"{what}.status: expected an HTTP status code (100-599) or a list of them")
        if "jsonpath" in m:
            expr = self.string(m["jsonpath"][1], f"{what}.jsonpath")
            if expr is not None:
                from doops.runbook.expect import compile_jsonpath

                try:
                    compile_jsonpath(expr)
                    ex.jsonpath = expr
                except ValueError as exc:
                    self.err(m["jsonpath"][1], f"{what}.jsonpath: {exc}")
        if "equals" in m:
            ex.equals = self.value(m["equals"][1], f"{what}.equals")
        if "in" in m:
            v = self.value(m["in"][1], f"{what}.in")
            if not isinstance(v, list) or not v:
                self.err(m["in"][1], f"{what}.in: expected a non-empty list of accepted values")
            else:
                ex.in_ = v
        if "range" in m:
            r = self.mapping(m["range"][1], RANGE_KEYS, f"{what}.range")
            ex.has_range = True
            if "min" in r:
                ex.range_min = self.number(r["min"][1], f"{what}.range.min")
            if "max" in r:
                ex.range_max = self.number(r["max"][1], f"{what}.range.max")
            if not r:
                if isinstance(m["range"][1], yaml.MappingNode):
                    self.err(m["range"][1], f"{what}.range: give min, max or both")
            elif ex.range_min is not None and ex.range_max is not None and ex.range_min > ex.range_max:
                self.err(m["range"][1], f"{what}.range: min {ex.range_min:g} is above max {ex.range_max:g}")
        if "regex" in m:
            pattern = self.string(m["regex"][1], f"{what}.regex")
            if pattern is not None:
                try:
                    re.compile(pattern)
                    ex.regex = pattern
                except re.error as exc:
                    self.err(m["regex"][1], f"{what}.regex: invalid regular expression: {exc}")
        return ex

    def objectives(self, node: yaml.Node) -> list[Objective]:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, "objectives: expected a mapping, e.g. {rto: {target: 2m}, rpo: {target: 1s, value: ...}}")
            return []
        out = []
        for knode, vnode in node.value:
            name = self.string(knode, "objectives")
            if name is None:
                continue
            what = f"objectives.{name}"
            m = self.mapping(vnode, OBJECTIVE_KEYS, what)
            target = self.duration(m["target"][1], f"{what}.target") if "target" in m else None
            obj = Objective(name=name, kind="value" if "value" in m else "time", target_seconds=target or 0.0,
                            loc=loc(knode, self.file))
            if "value" in m:
                for extra in ("from", "to"):
                    if extra in m:
                        self.err(m[extra][0], f"{what}: {extra!r} is for time objectives; a value objective "
                                 "reads `value`")
                obj.value = self.string(m["value"][1], f"{what}.value")
                if obj.value is not None:
                    try:
                        ref = refs.whole(obj.value)
                    except refs.RefError as exc:
                        self.err(m["value"][1], f"{what}.value: {exc}")
                        ref = None
                        obj.value = None
                    if obj.value is not None and (ref is None or ref.root != "steps"):
                        self.err(m["value"][1], f"{what}.value: expected one reference to a step output, "
                                 "e.g. ${{ steps.failover.outputs.data_loss_seconds }}")
                        obj.value = None
            for edge in ("from", "to"):
                if edge in m:
                    marker = self.string(m[edge][1], f"{what}.{edge}")
                    if marker is not None and not MARKER.match(marker):
                        self.err(m[edge][1], f"{what}.{edge}: expected a marker STEP.started or STEP.ended, "
                                 f"got {marker!r}")
                    elif marker is not None:
                        setattr(obj, "from_" if edge == "from" else "to", marker)
            out.append(obj)
        return out

    # -- cross checks --------------------------------------------------------------------------------------

    def check_ids(self, rb: Runbook) -> None:
        seen: dict[str, Step] = {}
        for step in [*rb.steady_state, *rb.steps, *rb.rollbacks]:
            if step.id in seen:
                self.problems.append(Problem(self.file, step.loc.line if step.loc else 1,
                                             step.loc.col if step.loc else 1, f"step id {step.id!r} is used twice"))
            seen[step.id] = step

    def outputs_of(self, step: Step) -> tuple[str, ...] | None:
        """The output names a step offers; None when unknown (its action or probe is unknown)."""
        if step.kind == "pause":
            return PAUSE_OUTPUTS
        if step.kind == "action":
            action = self.catalog.actions.get(step.name)
            return None if action is None else action.outputs
        return PROBE_OUTPUTS if step.name in self.catalog.probes else None

    def check_references(self, rb: Runbook, top: dict[str, tuple[yaml.Node, yaml.Node]]) -> None:
        steps_before: dict[str, Step] = {}
        all_steps = {s.id: s for s in rb.steps}
        for section, steps in (("steady_state", rb.steady_state), ("steps", rb.steps), ("rollbacks", rb.rollbacks)):
            for step in steps:
                visible = {} if section == "steady_state" else (all_steps if section == "rollbacks" else
                                                                 steps_before)
                for key, value in step.with_.items():
                    where = step.with_locs.get(key) or step.loc
                    self.check_value_refs(value, where, f"step {step.id!r} with.{key}", rb, visible, section,
                                          step.id)
                if step.expect is not None:
                    for attr in ("equals", "in_"):
                        v = getattr(step.expect, attr)
                        if v is not MISSING and v is not None:
                            self.check_value_refs(v, step.expect.loc or step.loc,
                                                  f"step {step.id!r} expect", rb, visible, section, step.id)
                if section == "steps":
                    steps_before[step.id] = step
        for obj in rb.objectives:
            if obj.value:
                self.check_value_refs(obj.value, obj.loc, f"objectives.{obj.name}.value", rb, all_steps,
                                      "objectives")

    def check_value_refs(self, value: Any, where: Any, what: str, rb: Runbook, visible: dict[str, Step],
                         section: str, current: str = "") -> None:
        line, col = (where.line, where.col) if where is not None else (1, 1)
        for ref, _text, error in refs.find(value):
            if ref is None:
                self.problems.append(Problem(self.file, line, col, f"{what}: {error}"))
                continue
            problem = self.ref_problem(ref, rb, visible, section, current)
            if problem:
                self.problems.append(Problem(self.file, line, col, f"{what}: {problem}"))

    def ref_problem(self, ref: refs.Ref, rb: Runbook, visible: dict[str, Step], section: str,
                    current: str = "") -> str | None:
        if ref.root == "inputs":
            name = ref.parts[0]
            if name not in rb.inputs:
                declared = ", ".join(rb.inputs) or "none"
                return f"{ref.text}: undefined input {name!r} (declared: {declared}); declare it under inputs:"
            return None
        if ref.root == "env":
            return None
        if ref.root == "config":
            if self.config is None:
                return None
            try:
                refs.config_value(self.config, ref.parts)
            except refs.DynamicRef:
                return None
            except refs.RefError as exc:
                source = getattr(self.config, "source", None) or "the built-in defaults"
                return f"{ref.text}: {exc} in the config ({source})"
            return None
        step_id = ref.step_id or ""
        if step_id not in visible:
            if section == "steady_state":
                return f"{ref.text}: steady_state checks run before any step; they cannot read step outputs"
            if section == "steps" and step_id == current:
                return f"{ref.text}: a step cannot read its own outputs"
            if step_id in {s.id for s in rb.steps}:
                return f"{ref.text}: step {step_id!r} runs later; a step can only read an earlier step's outputs"
            return f"{ref.text}: undefined step {step_id!r}"
        offered = self.outputs_of(visible[step_id])
        if offered is None:
            return None  # its unknown action or probe is already reported
        first = ref.output_path[0]
        if first not in offered:
            return (f"{ref.text}: step {step_id!r} ({visible[step_id].name}) has no output {first!r} "
                    f"(it has: {', '.join(offered) or 'none'})")
        return None

    def check_objectives(self, rb: Runbook) -> None:
        ids = {s.id for s in rb.steps}
        for obj in rb.objectives:
            for marker in (obj.from_, obj.to):
                if marker is None:
                    continue
                step_id = marker.rsplit(".", 1)[0]
                if step_id not in ids:
                    self.problems.append(Problem(self.file, obj.loc.line if obj.loc else 1,
                                                 obj.loc.col if obj.loc else 1,
                                                 f"objectives.{obj.name}: marker {marker!r} names no step "
                                                 f"(steps: {', '.join(ids) or 'none'})"))


# -- conversions shared with the engine --------------------------------------------------------------------


def convert_param(param: Param, value: Any) -> Any:
    """A resolved value as the parameter's type wants it; ValueError says what was expected."""
    t = param.type
    if value is None:
        raise ValueError("expected a value, got null")
    if t == "string":
        if isinstance(value, dict | list):
            raise ValueError(f"expected a string, got a {'list' if isinstance(value, list) else 'mapping'}")
        text = value if isinstance(value, str) else (str(value).lower() if isinstance(value, bool) else str(value))
        if param.choices and text not in param.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(param.choices)}")
        return text
    if t == "integer":
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and
                                                                     value.strip().lstrip("-").isdigit())):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    if t == "number":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"expected true or false, got {value!r}")
    if t == "duration":
        return parse_duration(value)
    if t == "list":
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r}")
        return value
    if t == "object":
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {value!r}")
        return value
    return value


def convert_input(spec: InputSpec, value: Any) -> Any:
    """An input's value (from ``--input`` text or a default) as its declared type."""
    converted = convert_param(Param(spec.name, type=spec.type, choices=spec.choices), value)
    return converted


def parse_inputs(rb: Runbook, given: dict[str, str]) -> dict[str, Any]:
    """``--input k=v`` values typed and checked against the runbook's inputs; every problem in one error."""
    problems = []
    out: dict[str, Any] = {}
    for name, text in given.items():
        spec = rb.inputs.get(name)
        if spec is None:
            declared = ", ".join(rb.inputs) or "none"
            problems.append(Problem(rb.file, 1, 1, f"--input {name}: the runbook declares no input {name!r} "
                                    f"(declared: {declared})"))
            continue
        try:
            out[name] = convert_input(spec, text)
        except ValueError as exc:
            at = spec.loc
            problems.append(Problem(rb.file, at.line if at else 1, at.col if at else 1, f"--input {name}: {exc}"))
    for name, spec in rb.inputs.items():
        if name in out:
            continue
        if spec.required:
            at = spec.loc
            problems.append(Problem(rb.file, at.line if at else 1, at.col if at else 1,
                                    f"input {name!r} is required: pass --input {name}=VALUE"))
        else:
            out[name] = spec.default
    if problems:
        raise RunbookInvalid(problems)
    return out


def secret_values(rb: Runbook, inputs: dict[str, Any]) -> list[str]:
    return [str(v) for k, v in inputs.items() if k in rb.inputs and rb.inputs[k].secret and v not in (None, "")]


def env_refs(rb: Runbook) -> list[str]:
    """Every environment variable the runbook reads (checked set before the run starts)."""
    names: list[str] = []
    for step in [*rb.steady_state, *rb.steps, *rb.rollbacks]:
        values: list[Any] = [step.with_]
        if step.expect is not None:
            values += [step.expect.equals if step.expect.equals is not MISSING else None, step.expect.in_]
        for v in values:
            for ref, _, _ in refs.find(v):
                if ref is not None and ref.root == "env" and ref.parts[0] not in names:
                    names.append(ref.parts[0])
    return names

