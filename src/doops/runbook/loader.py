"""Read a runbook file into YAML nodes that keep their line and column, so every problem the validator finds
names ``file:line:col`` (PyYAML's composer does the parsing; nothing here parses YAML by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from doops.errors import UsageError
from doops.runbook.model import Loc

MAX_FILE_BYTES = 1024 * 1024  # a runbook is a page or two; a megabyte is a mistake, not a runbook


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a runbook, where it is."""

    file: str
    line: int
    col: int
    message: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_data(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message}


class RunbookInvalid(UsageError):
    """A runbook (or the inputs given to it) is invalid: exit 4, nothing ran. ``problems`` holds every one."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        more = len(problems) - 1
        hint = (f"{more} more problem{'s' if more > 1 else ''}: `doops runbook validate {first.file}` lists all"
                if more else "fix the runbook; `doops runbook validate FILE` checks it")
        super().__init__(str(first), hint=hint)
        self.problems = problems


def loc(node: yaml.Node, filename: str) -> Loc:
    mark = node.start_mark
    return Loc(filename, mark.line + 1, mark.column + 1)


def problem_at(node: yaml.Node | None, filename: str, message: str) -> Problem:
    if node is None:
        return Problem(filename, 1, 1, message)
    where = loc(node, filename)
    return Problem(filename, where.line, where.col, message)


def read_text(path: str | Path) -> str:
    """The file's text; a missing, unreadable or oversized file is bad input naming the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RunbookInvalid([Problem(str(path), 1, 1, f"file is {size} bytes (at most {MAX_FILE_BYTES})")])
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookInvalid([Problem(str(path), 1, 1, "no such file")]) from None
    except IsADirectoryError:
        raise RunbookInvalid([Problem(str(path), 1, 1, "is a directory, not a runbook file")]) from None
    except UnicodeDecodeError as exc:
        raise RunbookInvalid([Problem(str(path), 1, 1, f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise RunbookInvalid([Problem(str(path), 1, 1, f"cannot read: {exc.strerror}")]) from None


def compose(text: str, filename: str) -> yaml.Node | None:
    """The node tree of one YAML document; bad YAML is a ``RunbookInvalid`` at the line and column PyYAML
    stopped at. Several documents in one file are refused (a runbook is one document)."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.composer.ComposerError as exc:
        if "single document" in str(exc.context or ""):
            mark = exc.problem_mark
            line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            raise RunbookInvalid([Problem(filename, line, col, "several YAML documents: a runbook is one")]) from None
        raise _yaml_problem(exc, filename) from None
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, filename) from None


def _yaml_problem(exc: yaml.YAMLError, filename: str) -> RunbookInvalid:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return RunbookInvalid([Problem(filename, line, col, text)])


def plain(node: yaml.Node) -> Any:
    """The Python value of a node (what ``yaml.safe_load`` would give for it)."""
    return yaml.SafeLoader("").construct_document(node)
