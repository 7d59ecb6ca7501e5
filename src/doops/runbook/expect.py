"""Judging a probe's value against a step's ``expect``: status, jsonpath, equals, in, range, regex.

``status`` reads an HTTP probe's status code. ``jsonpath`` (jsonpath-ng syntax) selects from an HTTP probe's
JSON body, or from the value itself; the other forms then judge what it selected (one match: that value;
several: the list). Without ``jsonpath``, ``equals``/``in``/``range``/``regex`` judge an HTTP probe's body and
any other probe's value. Every form given must hold.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from doops.runbook.model import MISSING, Expect


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str  # why not (or what held), one line, for errors and reports
    subject: Any = None  # what the value forms judged


def is_http(value: Any) -> bool:
    return isinstance(value, dict) and "status" in value and "body" in value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def same(a: Any, b: Any) -> bool:
    """Equality as a runbook author means it: numbers by value (SQL's Decimal 1 equals 1), else ==."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None and not isinstance(a, str) and not isinstance(b, str):
        return na == nb
    return bool(a == b)


def short(value: Any, limit: int = 120) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit] + "...")
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def compile_jsonpath(expr: str) -> Any:
    """The parsed expression; ValueError with the parser's reason (validation reports it at the key)."""
    from jsonpath_ng.ext import parse as jp_parse

    try:
        return jp_parse(expr)
    except Exception as exc:  # jsonpath-ng raises bare Exception subclasses from its lexer and parser
        raise ValueError(f"invalid jsonpath {expr!r}: {exc}") from None


def _json_of(value: Any) -> Any:
    if is_http(value):
        if value.get("json") is not None:
            return value["json"]
        try:
            return json.loads(value.get("body") or "")
        except ValueError:
            return MISSING
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def judge(expect: Expect | None, value: Any) -> Verdict:
    """Whether ``value`` satisfies ``expect`` (None: any value read is fine)."""
    if expect is None:
        return Verdict(True, "read", value)
    if expect.status is not None:
        status = value.get("status") if isinstance(value, dict) else None
        if status is None:
            return Verdict(False, f"expected an HTTP status {expect.status}, but the value has none", value)
        if not any(same(status, s) for s in expect.status):
            want = expect.status[0] if len(expect.status) == 1 else expect.status
            return Verdict(False, f"status {status}, expected {want}", value)
    subject = value.get("body") if is_http(value) else value
    if expect.jsonpath is not None:
        doc = _json_of(value)
        if doc is MISSING:
            return Verdict(False, f"jsonpath {expect.jsonpath}: the body is not JSON", value)
        try:
            found = [m.value for m in compile_jsonpath(expect.jsonpath).find(doc)]
        except ValueError as exc:
            return Verdict(False, str(exc), value)
        if not found:
            return Verdict(False, f"jsonpath {expect.jsonpath} matched nothing", value)
        subject = found[0] if len(found) == 1 else found
    if expect.equals is not MISSING and not same(subject, expect.equals):
        return Verdict(False, f"got {short(subject)}, expected equals {short(expect.equals)}", subject)
    if expect.in_ is not None and not any(same(subject, v) for v in expect.in_):
        return Verdict(False, f"got {short(subject)}, expected one of {short(expect.in_)}", subject)
    if expect.has_range:
        n = _number(subject)
        if n is None:
            return Verdict(False, f"got {short(subject)}, expected a number in range", subject)
        if (expect.range_min is not None and n < expect.range_min) or (
                expect.range_max is not None and n > expect.range_max):
            lo = "" if expect.range_min is None else expect.range_min
            hi = "" if expect.range_max is None else expect.range_max
            return Verdict(False, f"got {n:g}, expected range [{lo}, {hi}]", subject)
    if expect.regex is not None:
        text = subject if isinstance(subject, str) else json.dumps(subject, default=str)
        if re.search(expect.regex, text or "") is None:
            return Verdict(False, f"got {short(subject)}, expected a match of /{expect.regex}/", subject)
    return Verdict(True, expect.describe(), subject)
