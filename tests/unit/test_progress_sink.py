"""The stderr sink: one line per event always; on a terminal, a progress bar for events that carry done/total."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from doops.cli.progress import StderrSink
from doops.ops.seam import Event, Level


def _sink(terminal: bool) -> tuple[StderrSink, io.StringIO]:
    sink = StderrSink(color=False)
    out = io.StringIO()
    sink.console = Console(file=out, force_terminal=terminal, no_color=True, highlight=False, width=100)
    return sink, out


def _event(done: int | None = None, total: int | None = None, level: Level = Level.OK) -> Event:
    data = {} if done is None else {"done": done, "total": total}
    return Event(datetime.now(UTC), "cdn purge", "purge", f"batch {done}", level, data)


def test_progress_events_drive_one_bar_that_goes_away_when_the_work_is_done() -> None:
    sink, out = _sink(terminal=True)
    sink(_event(50, 120))
    bar = sink._bar
    assert bar is not None and bar.tasks[0].completed == 50 and bar.tasks[0].total == 120
    sink(_event(100, 120))
    assert sink._bar is bar and bar.tasks[0].completed == 100  # one bar, advanced
    sink(_event(120, 120))
    assert sink._bar is None
    assert "batch 50" in out.getvalue() and "batch 120" in out.getvalue()


def test_a_failure_or_close_takes_the_bar_away() -> None:
    sink, _ = _sink(terminal=True)
    sink(_event(50, 120))
    sink(Event(datetime.now(UTC), "cdn purge", "purge", "batch 2 refused", Level.FAIL))
    assert sink._bar is None
    sink(_event(50, 120))
    sink.close()
    sink.close()
    assert sink._bar is None


def test_no_bar_when_stderr_is_not_a_terminal() -> None:
    sink, out = _sink(terminal=False)
    sink(_event(50, 120))
    assert sink._bar is None and "batch 50" in out.getvalue()


def test_progress_needs_a_positive_total() -> None:
    assert _event(1, 0).progress is None and _event().progress is None
    assert _event(3, 4).progress == (3.0, 4.0)
