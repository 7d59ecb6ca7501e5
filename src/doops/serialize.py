"""Plain data (JSON/YAML-able) from results: one conversion shared by the renderer, the audit journal and,
later, drill history, so a result reads the same wherever it is written."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


def to_data(obj: Any) -> Any:
    """Plain JSON-able data from dataclasses, enums, datetimes and containers."""
    if hasattr(obj, "to_data") and not isinstance(obj, type):
        return obj.to_data()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, timedelta):
        return obj.total_seconds()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_data(v) for v in obj]
    return obj
