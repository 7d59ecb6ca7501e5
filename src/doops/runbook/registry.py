"""What a runbook step can call: actions (operations, which may change things) and probes (reads).

The seam between the runbook engine and the operations: the engine validates a step's ``with`` against an
entry's ``params``, checks references to its ``outputs`` before anything runs, lists the ``destructive``
actions for confirmation, then calls ``run``/``read`` with the resolved values. Actions call the operations in
``doops.ops`` directly (never the CLI or a subprocess); probes read through ``doops.clients``.

Lookup is lazy (``actions()``/``probes()`` import their modules on first use) so that ``runbook validate``
loads no client library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doops.ops.seam import Cancel, EventSink

if TYPE_CHECKING:
    from doops.platform import Platform

# Parameter types: how the engine checks and converts a resolved value before the call.
#   string, integer, number, boolean; duration ("90s", "2m": converted to float seconds; numbers are seconds);
#   list (a YAML list, items unchecked); object (a mapping, unchecked).
PARAM_TYPES = frozenset({"string", "integer", "number", "boolean", "duration", "list", "object"})


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    secret: bool = False  # never echoed in plans, events, results or reports
    doc: str = ""
    choices: tuple[str, ...] = ()  # allowed values of a string, when the set is closed


@dataclass
class StepContext:
    """What a step runs with. ``created`` lists what this run made (e.g. ``{"kind": "cluster", "id": ...,
    "name": ...}``), so that a cleanup action deletes only those."""

    platform: Platform
    dry_run: bool
    confirm: Callable[[str], bool]
    events: EventSink
    cancel: Cancel
    created: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ActionResult:
    """``ok`` False ends the step as failed (``error`` says why, one line). ``outputs`` are the operation's
    result as plain data (``doops.serialize.to_data``); ``outcome`` is its Outcome value."""

    ok: bool
    outputs: dict[str, Any]
    outcome: str = "ok"
    error: str | None = None


class ProbeError(Exception):
    """A probe could not read its value (connection refused, timeout): a wait keeps polling, a check fails."""


@dataclass(frozen=True)
class Action:
    name: str  # e.g. "db.failover"
    params: tuple[Param, ...]
    run: Callable[[StepContext, dict[str, Any]], ActionResult]
    destructive: bool = True  # listed in the plan and confirmed before the run starts
    outputs: tuple[str, ...] = ()  # the top-level output names (references are checked against them)
    doc: str = ""


@dataclass(frozen=True)
class Probe:
    """A read. ``read`` returns the value expectations judge: for ``http`` a dict ``{status, headers, body,
    json}``; for ``sql`` the first column of the first row; for ``status`` the check's status string with its
    details; and so on (each probe's ``doc`` says)."""

    name: str  # e.g. "http"
    params: tuple[Param, ...]
    read: Callable[[StepContext, dict[str, Any]], Any]
    doc: str = ""


def actions() -> dict[str, Action]:
    from doops.runbook.actions import ACTIONS

    return ACTIONS


def probes() -> dict[str, Probe]:
    from doops.runbook.probes import PROBES

    return PROBES
