"""Option parsers shared by commands: one-line errors (exit 4) naming the accepted forms, all decided while
Click parses, that is before a command sends anything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import click

from doops.cli.render import FORMATS, View
from doops.errors import UsageError

C = TypeVar("C", bound=click.Command)
CLOCK_SKEW = timedelta(seconds=5)  # a time "now" from another machine's clock may be a little ahead of ours


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback: '90s', '2m', '1h' -> seconds; zero and negative durations are bad input."""
    if value is None:
        return None
    from doops.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def past_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Click callback: an RFC 3339 time that has already happened (a detection time, a start)."""
    if value is None:
        return None
    from doops.times import parse_rfc3339

    try:
        when = parse_rfc3339(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    now = datetime.now(UTC)
    if when > now + CLOCK_SKEW:
        raise click.BadParameter(
            f"{value!r} is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ}): give the time it happened")
    return when


def renders(view: View | type | None = None, *, table: bool = True, text: str | None = None) -> Callable[[C], C]:
    """Declare what a command renders, so that its output options are checked when it starts.

    ``view``: the ``View`` of its result (its columns are what ``--format`` may name); a plain record renders
    as key/value. ``table=False``: the table form is not a table (shell text), so ``--format`` does not apply.
    ``text``: the command prints only this text (e.g. "shell text (env.sh)"): neither -o json/yaml nor
    ``--format`` apply.
    """

    def mark(cmd: C) -> C:
        columns: tuple[str, ...] = ()
        if table and text is None:
            if isinstance(view, View):
                columns = view.columns
            else:
                columns = tuple(getattr(view, "TABLE_COLUMNS", ("key", "value")))
        cmd.doops_columns = columns  # type: ignore[attr-defined]
        cmd.doops_formats = ("table",) if text else FORMATS  # type: ignore[attr-defined]
        cmd.doops_text = text  # type: ignore[attr-defined]
        return cmd

    return mark


def command_path(ctx: click.Context) -> str:
    """`doops failover db`, whatever name the root was invoked under."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["doops", *reversed(names)])


def check_format(ctx: click.Context, fmt: str) -> None:
    allowed: tuple[str, ...] = getattr(ctx.command, "doops_formats", FORMATS)
    text = getattr(ctx.command, "doops_text", None)
    if text and fmt != "table":
        raise UsageError(f"`{command_path(ctx)}` prints {text} only: -o {fmt} does not apply", hint="drop -o")
    if fmt not in allowed:
        raise UsageError(f"`{command_path(ctx)}` prints {' or '.join(allowed)} only, not {fmt}",
                         hint="-o " + "|".join(allowed))


def check_table_columns(ctx: click.Context, wanted: list[str] | None) -> None:
    if not wanted:
        return
    from doops.cli.render import check_columns

    valid: tuple[str, ...] | None = getattr(ctx.command, "doops_columns", None)
    if valid is None:
        raise UsageError(f"`{command_path(ctx)}` does not declare its table columns (a bug)", hint="report it")
    if not valid:
        raise UsageError(f"`{command_path(ctx)}` prints no table: --format {','.join(wanted)} does not apply",
                         hint="drop --format")
    check_columns(wanted, valid)


