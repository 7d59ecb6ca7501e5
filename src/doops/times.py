"""The one parser of RFC 3339 times, for options, API answers and doops's own records."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any


def parse_rfc3339(text: str) -> datetime:
    """A timezone-aware time; a time without an offset is taken as UTC. ValueError names the accepted form."""
    try:
        t = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time (e.g. 2026-11-26T05:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def parse_or_none(value: Any) -> datetime | None:
    """For records and API fields that may be missing or malformed: None rather than an error."""
    if not value or not isinstance(value, str | datetime):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


_RELATIVE = re.compile(r"^\s*(?:-\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)|(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s+ago)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_point_in_time(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, or one relative to ``now``: ``-15m``, ``2h ago``. ValueError names the forms."""
    from datetime import timedelta

    m = _RELATIVE.match(text or "")
    if m:
        amount, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return now - timedelta(seconds=float(amount) * _UNITS[unit])
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither an RFC 3339 time (2026-11-26T14:01:00Z) nor relative "
                         "(-15m, 2h ago)") from None
