"""The one renderer: a result as a table (rich), GitHub-flavoured markdown, JSON or YAML; only the result goes
to stdout.

Operations return dataclasses and know nothing of tables. A ``View`` (``cli/views.py``) says how one result
type looks as tables and which columns ``--format`` may name; JSON and YAML come from ``doops.serialize``
(field names are the contract documented in docs/output.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from doops.errors import UsageError
from doops.masking import mask
from doops.serialize import to_data

FORMATS = ("table", "json", "yaml", "markdown")


@dataclass
class TableSection:
    """One table: a title (may be empty), column names and rows of cells."""

    columns: list[str]
    rows: list[list[Any]]
    title: str = ""
    styles: dict[str, str] = field(default_factory=dict)  # cell text -> rich style


@dataclass(frozen=True)
class View:
    """How a result looks as tables: every column any of its tables may have (what ``--format`` may name,
    checked when the command starts) and the function that lays the tables out."""

    columns: tuple[str, ...]
    tables: Callable[[Any], list[TableSection]]


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
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
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


def _md_cell(value: Any) -> str:
    """A cell of a GitHub-flavoured markdown table: pipes escaped, line breaks as <br> (a raw one ends the row)."""
    text = mask(_cell(value)).replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(text.splitlines()) if "\n" in text or "\r" in text else text


def render_markdown(sections: list[TableSection], opts: OutputOptions, stream: IO[str]) -> None:
    """Each table as a GitHub-flavoured markdown table, its title as a heading: a report to paste into an
    issue, a wiki page or a pull request. ``--format`` narrows the columns as for tables."""
    parts: list[str] = []
    for section in select_columns(sections, opts.columns):
        lines: list[str] = []
        if section.title:
            lines += [f"### {_md_cell(section.title)}", ""]
        lines.append("| " + " | ".join(_md_cell(c) for c in section.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in section.columns) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
        parts.append("\n".join(lines))
    stream.write("\n\n".join(parts) + ("\n" if parts else ""))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def render(result: Any, opts: OutputOptions, view: View | None = None, stream: IO[str] | None = None) -> None:
    """Write ``result`` to stdout in the chosen format; the only writer of results."""
    out = stream or sys.stdout
    if opts.fmt == "json":
        out.write(mask(json.dumps(to_data(result), indent=2, sort_keys=False)) + "\n")
    elif opts.fmt == "yaml":
        import yaml

        out.write(mask(yaml.safe_dump(to_data(result), sort_keys=False, allow_unicode=True)))
    else:
        view = view or KEY_VALUE
        sections = view.tables(result)
        undeclared = {c for s in sections for c in s.columns} - set(view.columns)
        if undeclared:  # a view must declare every column it shows, or --format would refuse it up front
            raise RuntimeError(f"view shows undeclared columns {sorted(undeclared)}")
        if opts.fmt == "markdown":
            render_markdown(sections, opts, out)
        else:
            render_table(sections, opts, out)
    out.flush()


def _key_value(result: Any) -> list[TableSection]:
    data = to_data(result)
    if isinstance(data, dict):
        return [TableSection(columns=["key", "value"], rows=[[k, _flat(v)] for k, v in data.items()])]
    items = data if isinstance(data, list) else [data]
    return [TableSection(columns=["key", "value"], rows=[[str(n), _flat(v)] for n, v in enumerate(items)])]


KEY_VALUE = View(("key", "value"), _key_value)


def _flat(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return v
