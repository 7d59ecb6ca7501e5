"""Option parsers shared by commands: one-line errors (exit 4) naming the accepted forms."""

from __future__ import annotations

import click


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback: '90s', '2m', '1h' -> seconds."""
    if value is None:
        return None
    from doops.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
