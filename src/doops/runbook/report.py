"""Reports of a run, written to files: ``json`` (the result as ``-o json`` prints it), ``junit`` (one testcase
per step and per objective, for CI systems) and ``markdown`` (a timeline and the objectives table, for a
post-incident review or an auditor).

Every report is made from ``RunbookResult.to_data()`` (secrets already replaced by ``***``) and masked again
on the way out, like everything doops writes.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from doops.errors import UsageError
from doops.masking import mask

FORMATS = ("json", "junit", "markdown")


def parse_spec(spec: str) -> tuple[str, Path]:
    """``FORMAT=PATH`` from ``--report``: a known format and a path that can be written (its directory exists
    and is writable; an existing file is replaced). Checked before anything runs."""
    fmt, sep, path = spec.partition("=")
    fmt = fmt.strip().lower()
    if not sep or not path.strip():
        raise UsageError(f"--report {spec!r}: expected FORMAT=PATH", hint="e.g. --report junit=drill.xml")
    if fmt not in FORMATS:
        raise UsageError(f"--report {spec!r}: unknown format {fmt!r}", hint="formats: " + ", ".join(FORMATS))
    p = Path(path.strip())
    if p.is_dir():
        raise UsageError(f"--report {spec!r}: {p} is a directory", hint="give a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--report {spec!r}: directory {parent} does not exist", hint="create it first")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"--report {spec!r}: {p} is not writable", hint="choose a path you can write")
    return fmt, p


def render(data: dict[str, Any], fmt: str) -> str:
    """A report of a result's plain data (``RunbookResult.to_data()``) in ``fmt``, masked."""
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    elif fmt == "junit":
        text = junit(data)
    elif fmt == "markdown":
        text = markdown(data)
    else:
        raise UsageError(f"unknown report format {fmt!r}", hint="formats: " + ", ".join(FORMATS))
    return mask(text)


def write(data: dict[str, Any], fmt: str, path: Path) -> None:
    path.write_text(render(data, fmt), encoding="utf-8")


def _events_text(step: dict[str, Any]) -> str:
    return "\n".join(f"{e.get('at', '')} {e.get('level', '')} {e.get('message', '')}" for e in step.get("events") or [])


def junit(data: dict[str, Any]) -> str:
    """JUnit XML: a testsuite per section (steady state before/after, steps, rollbacks, objectives); a failed
    step or missed objective is a <failure>, a skipped one <skipped>, an interrupted one an <error>."""
    suites = ET.Element("testsuites", name=str(data.get("runbook", "")))
    name = str(data.get("runbook", "runbook"))
    sections: list[tuple[str, list[dict[str, Any]]]] = [
        ("steady_state.before", (data.get("steady_state") or {}).get("before") or []),
        ("steps", data.get("steps") or []),
        ("rollbacks", data.get("rollbacks") or []),
        ("steady_state.after", (data.get("steady_state") or {}).get("after") or []),
    ]
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for section, steps in sections:
        if not steps and section != "steps":
            continue
        suite = ET.SubElement(suites, "testsuite", name=f"{name}.{section}")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        elapsed = 0.0
        for step in steps:
            counts["tests"] += 1
            seconds = float(step.get("duration_seconds") or 0.0)
            elapsed += seconds
            case = ET.SubElement(suite, "testcase", classname=f"{name}.{section}", name=str(step.get("id")),
                                 time=f"{seconds:.3f}")
            status = step.get("status")
            message = str(step.get("error") or status)
            if status == "failed":
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=message, type="failed").text = _events_text(step)
            elif status == "interrupted":
                counts["errors"] += 1
                ET.SubElement(case, "error", message=message, type="interrupted").text = _events_text(step)
            elif status == "skipped":
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message="not run")
            elif step.get("events"):
                ET.SubElement(case, "system-out").text = _events_text(step)
        _set_counts(suite, counts, elapsed)
        for k in totals:
            totals[k] += counts[k]
    objectives = data.get("objectives") or []
    if objectives:
        suite = ET.SubElement(suites, "testsuite", name=f"{name}.objectives")
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for obj in objectives:
            counts["tests"] += 1
            measured = obj.get("measured_seconds")
            case = ET.SubElement(suite, "testcase", classname=f"{name}.objectives", name=str(obj.get("name")),
                                 time=f"{float(measured or 0.0):.3f}")
            if obj.get("met") is False:
                counts["failures"] += 1
                ET.SubElement(case, "failure", message=f"{obj.get('name')}: {obj.get('detail')}", type="objective")
            elif obj.get("met") is None:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=str(obj.get("detail") or "not measured"))
            else:
                ET.SubElement(case, "system-out").text = str(obj.get("detail") or "")
        _set_counts(suite, counts, 0.0)
        for k in totals:
            totals[k] += counts[k]
    for k, v in totals.items():
        suites.set(k, str(v))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _set_counts(suite: ET.Element, counts: dict[str, int], elapsed: float) -> None:
    for k, v in counts.items():
        suite.set(k, str(v))
    suite.set("time", f"{elapsed:.3f}")


def _cell(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}s"


def markdown(data: dict[str, Any]) -> str:
    """A timeline (every step in the order it ran, with times and errors) and the objectives table."""
    lines = [f"# Runbook {data.get('runbook')}: {data.get('outcome')}", ""]
    lines += [f"- File: `{data.get('file')}`", f"- Started: {data.get('started_at')}",
              f"- Ended: {data.get('ended_at')}", f"- Outcome: **{data.get('outcome')}**"
              + (" (dry run)" if data.get("dry_run") else "")]
    if data.get("message"):
        lines.append(f"- Summary: {data.get('message')}")
    if data.get("inputs"):
        lines.append("- Inputs: " + ", ".join(f"`{k}={v}`" for k, v in data["inputs"].items()))
    lines += ["", "## Objectives", ""]
    objectives = data.get("objectives") or []
    if objectives:
        lines += ["| objective | target | measured | met |", "| --- | --- | --- | --- |"]
        for o in objectives:
            met = {True: "yes", False: "**NO**", None: "not measured"}[o.get("met")]
            lines.append(f"| {_cell(o.get('name'))} | {_seconds(o.get('target_seconds'))} | "
                         f"{_seconds(o.get('measured_seconds'))} | {met} |")
    else:
        lines.append("No objectives declared.")
    lines += ["", "## Timeline", "", "| started | section | step | kind | status | duration | detail |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    steady = data.get("steady_state") or {}
    for section, steps in (("steady state (before)", steady.get("before") or []), ("steps", data.get("steps") or []),
                           ("rollbacks", data.get("rollbacks") or []),
                           ("steady state (after)", steady.get("after") or [])):
        for s in steps:
            lines.append(f"| {_cell(s.get('started_at'))} | {section} | {_cell(s.get('id'))} | "
                         f"{_cell(s.get('kind'))} {_cell(s.get('name'))} | {_cell(s.get('status'))} | "
                         f"{_seconds(s.get('duration_seconds'))} | {_cell(s.get('error'))} |")
    events = [(s.get("id"), e) for s in [*(steady.get("before") or []), *(data.get("steps") or []),
                                         *(data.get("rollbacks") or [])] for e in s.get("events") or []]
    if events:
        lines += ["", "## Events", ""]
        lines += [f"- {e.get('at')} `{sid}` {e.get('level')}: {_cell(e.get('message'))}" for sid, e in events]
    return "\n".join(lines) + "\n"
