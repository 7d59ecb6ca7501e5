"""Progress for people: operation events drawn on stderr, and Ctrl-C turned into a cancel.

stdout carries only the result; every event is one line on stderr.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from doops.ops.seam import Cancel, Event, Level

MARKS = {Level.OK: ("ok", "green"), Level.FAIL: ("FAIL", "bold red"), Level.WARN: ("WARN", "yellow"),
         Level.STEP: ("..", "cyan"), Level.DONE: ("done", "green")}


class StderrSink:
    """An event sink that prints one line per event on stderr, secrets masked. On a terminal, events that
    report progress (``done``/``total``) also drive one progress bar under the lines, until the work is done."""

    def __init__(self, color: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, no_color=not color, highlight=False, soft_wrap=True)
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, event: Event) -> None:
        from rich.markup import escape

        from doops.masking import mask

        mark, style = MARKS.get(event.level, ("-", ""))
        self.console.print(f"[{style}]{mark:>4}[/] {escape(mask(event.message))}")
        progress = event.progress
        if progress is not None and self.console.is_terminal:
            self._advance(event.phase, *progress)
        elif self._bar is not None and progress is None and event.level in (Level.DONE, Level.FAIL):
            self.close()

    def _advance(self, phase: str, done: float, total: float) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self._bar is None:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(phase, total=total)
        self._bar.update(self._task, completed=done, total=total)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Take the bar off the terminal (idempotent)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None


@contextlib.contextmanager
def cancel_on_interrupt() -> Iterator[Cancel]:
    """The first Ctrl-C cancels the operation (it stops at its next cancel point and reports what it did); a
    second one interrupts at once."""
    cancel = Cancel()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel("interrupted (Ctrl-C)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)
