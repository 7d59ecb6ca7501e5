"""The parts of `doops assess` every rule shares: severities, findings, the gathered inputs, the rule table.

Rules are pure functions of :class:`Inputs` (what was read from the API, the servers, Spaces and the drill
history) that add :class:`Finding` values; an input that could not be read (an integration not configured,
a call that failed) makes the rules needing it ``info`` "not assessed: ...", never a finding above info.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops.config import Config


class Severity(enum.Enum):
    INFO = "info"
    WARN = "warn"
    CRIT = "crit"

    @property
    def rank(self) -> int:
        return {"info": 0, "warn": 1, "crit": 2}[self.value]


@dataclass(frozen=True)
class Rule:
    """One rule as docs/assess.md lists it: its stable id, where its input comes from, and why it matters."""

    id: str
    area: str  # resilience | security
    component: str  # database, compute, storage, dns, monitoring, firewall, tls, spaces, tokens, compliance
    source: str  # API | server | Spaces | drill history | config | none
    title: str


@dataclass
class Finding:
    area: str
    resource: str
    rule: str
    severity: Severity
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: str = ""

    def to_data(self) -> dict[str, Any]:
        from doops.serialize import to_data

        return {"area": self.area, "resource": self.resource, "rule": self.rule, "severity": self.severity.value,
                "summary": self.summary, "evidence": to_data(self.evidence), "fix": self.fix}


class NotAssessed(Exception):
    """A rule's input is unavailable: the rule reports ``info`` with this reason (and what would enable it)."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


@dataclass
class Inputs:
    """Everything the rules read, by key, or why it could not be read."""

    config: Config
    now: datetime
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (reason, fix)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value

    def fail(self, key: str, reason: str, fix: str = "") -> None:
        self.errors[key] = (reason, fix)

    def has(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str) -> Any:
        if key in self.values:
            return self.values[key]
        reason, fix = self.errors.get(key, (f"{key} was not read", ""))
        raise NotAssessed(reason, fix)

    def attempt(self, key: str, fn: Any, fix: str = "") -> Any:
        """Read ``key`` with ``fn``; a failure is recorded as the reason the rules needing it are not assessed."""
        from doops.errors import DoopsError
        from doops.masking import mask

        try:
            value = fn()
        except DoopsError as exc:
            self.fail(key, mask(exc.message), fix)
            return None
        except Exception as exc:  # one unreadable input must not hide the others
            self.fail(key, mask(f"{type(exc).__name__}: {exc}"), fix)
            return None
        self.put(key, value)
        return value


class Findings:
    """Collects the findings of a run and which rules were evaluated."""

    def __init__(self, rules: dict[str, Rule]) -> None:
        self.rules = rules
        self.items: list[Finding] = []
        self.evaluated: dict[str, int] = {}  # rule -> (resource) evaluations

    def add(self, rule: str, resource: str, severity: Severity, summary: str, evidence: dict[str, Any] | None = None,
            fix: str = "") -> None:
        self.items.append(Finding(self.rules[rule].area, resource, rule, severity, summary, evidence or {}, fix))

    @contextlib.contextmanager
    def check(self, rule: str, resource: str) -> Iterator[None]:
        """Evaluate ``rule`` for ``resource``; an unavailable input turns into ``info`` "not assessed"."""
        self.evaluated[rule] = self.evaluated.get(rule, 0) + 1
        try:
            yield
        except NotAssessed as exc:
            self.add(rule, resource, Severity.INFO, f"not assessed: {exc.reason}", {}, exc.fix)


def days(seconds: float) -> float:
    return round(seconds / 86400, 2)
