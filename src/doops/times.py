"""The one parser of RFC 3339 times, for options, API answers and doops's own records."""

from __future__ import annotations

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
