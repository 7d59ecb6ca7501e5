"""``${{ }}`` references: found in any string of a runbook, checked before anything runs, resolved just before
the step that holds them.

A string that is exactly one reference keeps the referenced value's type (``"${{ steps.x.outputs.count }}"``
is the integer); references embedded in text are turned into text (``"${{ x }}/healthz"``).

Roots: ``steps.ID.outputs.PATH`` (an earlier step's outputs), ``inputs.NAME``, ``config.PATH`` (the loaded
doops config; see ``config_value``) and ``env.NAME`` (an environment variable, always treated as a secret).
PATH segments are separated by dots; a number selects a list item.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REF = re.compile(r"\$\{\{\s*([^{}]*?)\s*\}\}")
ROOTS = ("steps", "inputs", "config", "env")
SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
SECRET_MASK = "***"
# Config paths whose values only the API knows (the config file names the app, DigitalOcean gives its URL):
# read once per run, never at validate or plan time.
DYNAMIC_APP_FIELDS = ("live_url", "id", "region")


@dataclass(frozen=True)
class Ref:
    text: str  # the whole ``${{ ... }}``
    expr: str  # what is inside
    root: str
    parts: tuple[str, ...]

    @property
    def step_id(self) -> str | None:
        return self.parts[0] if self.root == "steps" and self.parts else None

    @property
    def output_path(self) -> tuple[str, ...]:
        """``steps.ID.outputs.a.b`` -> (a, b)."""
        return self.parts[2:] if self.root == "steps" else ()


class RefError(Exception):
    """A reference that cannot be resolved (now): the message says which and why, in one line."""


def parse(expr: str, text: str | None = None) -> Ref:
    """One expression (the inside of ``${{ }}``); RefError names what is wrong with its form."""
    text = text if text is not None else "${{ " + expr + " }}"
    if not expr:
        raise RefError(f"empty reference {text}")
    if not all(SEGMENT.match(p) for p in expr.split(".")) or ".." in expr or expr.endswith("."):
        raise RefError(f"invalid reference {text}: write ROOT.PATH with dot-separated names, e.g. inputs.region")
    root, *parts = expr.split(".")
    if root not in ROOTS:
        raise RefError(f"unknown reference root {root!r} in {text}: use steps, inputs, config or env")
    if not parts:
        raise RefError(f"incomplete reference {text}: name what {root} holds, e.g. {root}.NAME")
    if root == "steps" and (len(parts) < 3 or parts[1] != "outputs"):
        raise RefError(f"invalid reference {text}: write steps.ID.outputs.NAME")
    if root in ("inputs", "env") and len(parts) != 1:
        raise RefError(f"invalid reference {text}: write {root}.NAME")
    return Ref(text, expr, root, tuple(parts))


def find(value: Any) -> list[tuple[Ref | None, str, str]]:
    """Every reference in ``value`` (strings inside lists and mappings too) as (ref, text, error): ref None and
    error set for a malformed one."""
    out: list[tuple[Ref | None, str, str]] = []
    if isinstance(value, str):
        for m in REF.finditer(value):
            try:
                out.append((parse(m.group(1), m.group(0)), m.group(0), ""))
            except RefError as exc:
                out.append((None, m.group(0), str(exc)))
        if "${{" in REF.sub("", value):
            out.append((None, value, "unclosed reference: write ${{ ROOT.PATH }}"))
    elif isinstance(value, dict):
        for v in value.values():
            out += find(v)
    elif isinstance(value, list):
        for v in value:
            out += find(v)
    return out


def whole(value: Any) -> Ref | None:
    """The reference when ``value`` is exactly one ``${{ }}`` and nothing else."""
    if isinstance(value, str):
        m = REF.fullmatch(value.strip())
        if m:
            return parse(m.group(1), m.group(0))
    return None


def walk(value: Any, path: tuple[str, ...], what: str) -> Any:
    """``value`` followed along ``path`` (mapping keys, list indexes, dataclass fields)."""
    for n, seg in enumerate(path):
        here = ".".join((what, *path[:n]))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            if not hasattr(value, seg) or seg.startswith("_"):
                raise RefError(f"{here} has no {seg!r}")
            value = getattr(value, seg)
        elif isinstance(value, dict):
            if seg not in value:
                keys = ", ".join(sorted(str(k) for k in value)[:12])
                raise RefError(f"{here} has no {seg!r}" + (f" (it has: {keys})" if keys else " (it is empty)"))
            value = value[seg]
        elif isinstance(value, list):
            if not seg.isdigit() or int(seg) >= len(value):
                raise RefError(f"{here} is a list of {len(value)}: {seg!r} is not an index into it")
            value = value[int(seg)]
        else:
            raise RefError(f"{here} is {type(value).__name__}, not a mapping: cannot take {seg!r}")
    return value


def config_value(config: Any, parts: tuple[str, ...], app_lookup: Callable[[str], Any] | None = None) -> Any:
    """``config.PATH``: the config file's fields; in its lists of named things (``apps``,
    ``databases.clusters``, ``databases.caches``, ``spaces.buckets``, ``functions``) a segment names an item.
    ``config.apps.NAME.live_url`` (and ``id``, ``region``) come from the API through ``app_lookup``: with none
    (validate, plan) a RefError says so; ``DynamicRef`` tells the two apart."""
    if len(parts) == 3 and parts[0] == "apps" and parts[2] in DYNAMIC_APP_FIELDS:
        if app_lookup is None:
            raise DynamicRef(f"config.{'.'.join(parts)} is read from the API at run time")
        app = app_lookup(parts[1])
        if app is None:
            raise RefError(f"config.apps.{parts[1]}: no app named {parts[1]!r} on this account")
        return getattr(app, parts[2])
    value: Any = config
    for n, seg in enumerate(parts):
        if isinstance(value, list) and not seg.isdigit():
            named = [v for v in value if getattr(v, "name", None) == seg or getattr(v, "namespace", None) == seg]
            if not named:
                here = ".".join(("config", *parts[:n]))
                names = ", ".join(str(getattr(v, "name", getattr(v, "namespace", "?"))) for v in value)
                raise RefError(f"{here} has no item named {seg!r}" + (f" (it has: {names})" if names else
                                                                      " (the config lists none)"))
            value = named[0]
            continue
        value = walk(value, (seg,), ".".join(("config", *parts[:n])))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        from doops.serialize import to_data

        value = to_data(value)
    return value


class DynamicRef(RefError):
    """A config path only the API can answer: fine at validation, resolved at run time."""


@dataclass
class Scope:
    """What references resolve against. ``outputs`` grows as steps end. ``mask_env``: env references become
    ``***`` (plans). ``placeholders``: a reference to a step output that does not exist yet becomes
    ``<steps.ID.outputs.PATH>`` instead of an error (plans and dry runs). Secret values met while resolving
    are added to ``secrets`` so the caller can keep them out of everything it writes."""

    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: Any = None
    env: Callable[[str], str | None] = lambda name: None
    app_lookup: Callable[[str], Any] | None = None
    secret_inputs: frozenset[str] = frozenset()
    mask_env: bool = False
    placeholders: bool = False
    secrets: set[str] = field(default_factory=set)

    def lookup(self, ref: Ref) -> Any:
        if ref.root == "inputs":
            name = ref.parts[0]
            if name not in self.inputs:
                raise RefError(f"{ref.text}: no input {name!r}")
            value = self.inputs[name]
            if name in self.secret_inputs:
                if self.mask_env:
                    return SECRET_MASK
                if isinstance(value, str):
                    self.secrets.add(value)
            return value
        if ref.root == "env":
            if self.mask_env:
                return SECRET_MASK
            value = self.env(ref.parts[0])
            if value is None:
                raise RefError(f"{ref.text}: environment variable {ref.parts[0]} is not set")
            self.secrets.add(value)
            return value
        if ref.root == "config":
            try:
                return config_value(self.config, ref.parts, self.app_lookup)
            except DynamicRef:
                if self.placeholders:
                    return f"<{ref.expr}>"
                raise
        step_id = ref.parts[0]
        if step_id not in self.outputs:
            if self.placeholders:
                return f"<{ref.expr}>"
            raise RefError(f"{ref.text}: step {step_id!r} has not produced outputs (it did not run, or failed)")
        try:
            return walk(self.outputs[step_id], ref.output_path, f"steps.{step_id}.outputs")
        except RefError:
            if self.placeholders:
                return f"<{ref.expr}>"
            raise

    def resolve(self, value: Any) -> Any:
        """``value`` with every reference replaced (recursively in lists and mappings)."""
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, str) or "${{" not in value:
            return value
        ref = whole(value)
        if ref is not None:
            return self.lookup(ref)
        return REF.sub(lambda m: as_text(self.lookup(parse(m.group(1), m.group(0)))), value)


    def resolve_pattern(self, pattern: str) -> str:
        """A regular expression with each reference replaced by its value matched literally (re.escape), so an
        ETag or a path from an earlier step cannot change what the pattern means."""
        return REF.sub(lambda m: re.escape(as_text(self.lookup(parse(m.group(1), m.group(0))))), pattern)


def as_text(value: Any) -> str:
    """How a value reads inside a string: JSON for containers and booleans, nothing for null."""
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)
