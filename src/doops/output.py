"""One renderer for every result: table (rich), json, yaml.

Services return dataclasses. Each result type says how it looks as a table through ``table_sections()``;
json and yaml come from ``to_data()`` (a dataclass converted to plain types; field names are the contract
documented in docs/output.md). Only the result goes to stdout.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from doops.errors import UsageError
from doops.secrets import mask

FORMATS = ("table", "json", "yaml")


@dataclass
class TableSection:
    """One table: a title (may be empty), column names and rows of cells."""

    columns: list[str]
    rows: list[list[Any]]
    title: str = ""
    styles: dict[str, str] = field(default_factory=dict)  # cell text -> rich style


@runtime_checkable
class Renderable(Protocol):
    def table_sections(self) -> list[TableSection]: ...


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


@dataclass
class OutputOptions:
    fmt: str = "table"
    columns: list[str] | None = None
    no_header: bool = False
    color: bool = True


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def check_columns(wanted: Sequence[str] | None, valid: Sequence[str]) -> None:
    """``--format COL,COL`` against the columns a command can show: an unknown one is bad input (exit 4),
    decided when the command starts, before anything is sent."""
    known = {c.lower() for c in valid}
    for col in wanted or ():
        if col.strip().lower() not in known:
            raise UsageError(f"unknown column {col!r} for --format",
                             hint="valid columns: " + ",".join(dict.fromkeys(valid)))


def select_columns(sections: list[TableSection], wanted: Sequence[str] | None) -> list[TableSection]:
    """Apply ``--format COL,COL`` to every table of a result: each keeps the named columns it has, in the order
    given; a table with none of them is left out (a multi-table result is narrowed to what was asked for)."""
    if not wanted:
        return sections
    check_columns(wanted, [c for s in sections for c in s.columns])
    out = []
    for section in sections:
        index = {c.lower(): i for i, c in enumerate(section.columns)}
        picked = [index[k] for k in (w.strip().lower() for w in wanted) if k in index]
        if picked:
            out.append(TableSection(columns=[section.columns[i] for i in picked],
                                    rows=[[row[i] for i in picked] for row in section.rows],
                                    title=section.title, styles=section.styles))
    return out


def render_table(sections: list[TableSection], opts: OutputOptions, stream: IO[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(
        file=stream,
        no_color=not opts.color,
        highlight=False,
        soft_wrap=True,
        width=200 if not stream.isatty() else None,
    )
    for n, section in enumerate(select_columns(sections, opts.columns)):
        if opts.no_header:
            # Script-friendly: tab separated, no decoration.
            for row in section.rows:
                stream.write(mask("\t".join(_cell(c) for c in row)) + "\n")
            continue
        table = Table(
            title=section.title or None,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
        )
        for col in section.columns:
            table.add_column(col.upper(), overflow="fold")
        for row in section.rows:
            cells = []
            for c in row:
                text = mask(_cell(c))
                style = section.styles.get(text)
                cells.append(f"[{style}]{_escape(text)}[/]" if style and opts.color else _escape(text))
            table.add_row(*cells)
        if n:
            console.print()
        console.print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def render(result: Any, opts: OutputOptions, stream: IO[str] | None = None) -> None:
    """Write ``result`` to stdout in the chosen format; the only writer of results."""
    out = stream or sys.stdout
    if opts.fmt == "json":
        out.write(mask(json.dumps(to_data(result), indent=2, sort_keys=False)) + "\n")
    elif opts.fmt == "yaml":
        import yaml

        out.write(mask(yaml.safe_dump(to_data(result), sort_keys=False, allow_unicode=True)))
    else:
        sections = (
            result.table_sections() if isinstance(result, Renderable) else [_generic_section(to_data(result))]
        )
        render_table(sections, opts, out)
    out.flush()


def _generic_section(data: Any) -> TableSection:
    if isinstance(data, dict):
        return TableSection(columns=["key", "value"], rows=[[k, _flat(v)] for k, v in data.items()])
    if isinstance(data, list) and data and isinstance(data[0], dict):
        cols = list(data[0].keys())
        return TableSection(columns=cols, rows=[[_flat(r.get(c)) for c in cols] for r in data])
    return TableSection(columns=["value"], rows=[[_flat(v)] for v in (data if isinstance(data, list) else [data])])


def _flat(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return v
