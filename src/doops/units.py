"""Parsing of durations and sizes given on the command line and in files."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|k|m|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
}


def parse_duration(text: str | float | int) -> float:
    """Seconds from '90', '90s', '2m', '1.5h', '500ms'; ValueError names the accepted forms.

    One rule for every duration doops takes (options and config alike): it must be greater than zero. A zero
    timeout or objective is never what was meant, and silently replacing it with a default hides the mistake.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ValueError(f"invalid duration {text!r}: use a number with ms, s, m, h or d (e.g. 90s, 2m)")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if not seconds > 0:
        raise ValueError(f"duration {text!r} must be greater than zero (e.g. 500ms, 90s, 2m)")
    return seconds


def parse_size(text: str | int) -> int:
    """Bytes from '1048576', '1MiB', '512kB'; like durations, sizes must be greater than zero."""
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise ValueError(f"invalid size {text!r}: use a number with B, kB, KiB, MB, MiB, GB or GiB")
        unit = m.group(2).lower() if m.group(2) else None
        size = int(float(m.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"size {text!r} must be greater than zero (e.g. 512kB, 1MiB)")
    return size


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m"


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
