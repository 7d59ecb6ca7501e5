"""The seam every operation shares: outcomes as values, typed events, a cancel token, an injectable clock and
the one wait loop.

An operation is ``op(platform, options, *, confirm, events, cancel) -> Result``: the result's ``outcome`` says
how it ended (expected endings are values, not exceptions); exceptions stay for bad input and faults nobody
expected. Events go to a sink: the CLI draws them on stderr, a recording sink keeps them for journals and
drill history. Every wait goes through ``wait_until`` on the platform's clock, so tests run on a fake clock
and Ctrl-C (a cancel) ends a wait at once.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class Outcome(enum.Enum):
    """How an operation ended. The CLI maps it to an exit code in one place (``EXIT_CODES``)."""

    OK = "ok"
    DRY_RUN = "dry_run"
    REFUSED = "refused"  # a pre-check or the API said no; nothing was changed
    DECLINED = "declined"  # the confirmation was answered no; nothing was changed
    OBJECTIVE_MISSED = "objective_missed"  # done and verified, but slower than its objective
    VERIFICATION_FAILED = "verification_failed"  # done, but not proven within the timeout
    INTERRUPTED = "interrupted"  # cancelled; the result says what was already sent

    @property
    def exit_code(self) -> int:
        from doops.errors import ExitCode

        return int({
            Outcome.OK: ExitCode.OK, Outcome.DRY_RUN: ExitCode.OK, Outcome.REFUSED: ExitCode.CRITICAL,
            Outcome.OBJECTIVE_MISSED: ExitCode.CRITICAL, Outcome.VERIFICATION_FAILED: ExitCode.CRITICAL,
            Outcome.DECLINED: ExitCode.INTERRUPTED, Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
        }[self])


class Level(enum.Enum):
    STEP = "step"
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    DONE = "done"


@dataclass(frozen=True)
class Event:
    """One thing an operation did or found, in the order it happened; kept as data, so it can be stored in a
    journal or drill history and replayed."""

    at: datetime
    operation: str
    phase: str
    message: str
    level: Level = Level.STEP
    data: dict[str, Any] = field(default_factory=dict)  # ``done`` and ``total`` (numbers) mark progress

    @property
    def progress(self) -> tuple[float, float] | None:
        """(done, total) when the event reports progress through a known amount of work."""
        done, total = self.data.get("done"), self.data.get("total")
        if isinstance(done, int | float) and isinstance(total, int | float) and total > 0:
            return float(done), float(total)
        return None


EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A sink for callers that want no progress."""


class RecordingSink:
    """Keeps every event (journals, drill history, tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def messages(self, phase: str | None = None) -> list[str]:
        return [e.message for e in self.events if phase is None or e.phase == phase]


class Cancelled(Exception):
    """Raised inside an operation at a cancel point; the operation turns it into ``Outcome.INTERRUPTED``."""


class Cancel:
    """A cancel token: set by the CLI on Ctrl-C (or by a drill runner), checked by operations and waits."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "interrupted") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True at once when cancelled."""
        return self._event.wait(max(seconds, 0.0))


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float, cancel: Cancel | None = None) -> None: ...


class SystemClock:
    """Real time; a sleep ends early when the cancel token is set."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, cancel: Cancel | None = None) -> None:
        if cancel is not None:
            cancel.wait(seconds)
        elif seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """Time that moves only when slept on (tests): a ten-minute timeout takes no real time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        self._elapsed += seconds

    def sleep(self, seconds: float, cancel: Cancel | None = None) -> None:
        self.sleeps.append(seconds)
        if cancel is not None and cancel.cancelled:
            return
        self._elapsed += max(seconds, 0.0)


@dataclass
class Waited(Generic[T]):
    """What a wait ended with: the probe's value when it came true, else why not."""

    value: T | None
    elapsed: float
    attempts: int
    timed_out: bool = False
    cancelled: bool = False
    last_error: str = ""

    @property
    def done(self) -> bool:
        return not (self.timed_out or self.cancelled)


def wait_until(probe: Callable[[], T | None], *, timeout: float, clock: Clock, cancel: Cancel | None = None,
               interval: float = 0.05, max_interval: float = 1.0, backoff: float = 1.5,
               errors: tuple[type[BaseException], ...] = ()) -> Waited[T]:
    """Call ``probe`` until it returns something truthy, fast at first then backing off, within ``timeout``.

    Exceptions of the ``errors`` types count as "not yet" (their message is kept as ``last_error``); any other
    propagates. A cancel ends the wait at once with ``cancelled``; the probe is always tried at least once.
    """
    start = clock.monotonic()
    delay = interval
    attempts = 0
    last_error = ""
    while True:
        if cancel is not None and cancel.cancelled:
            return Waited(None, clock.monotonic() - start, attempts, cancelled=True, last_error=last_error)
        attempts += 1
        try:
            value = probe()
        except errors as exc:
            value, last_error = None, str(getattr(exc, "message", None) or exc)
        if value:
            return Waited(value, clock.monotonic() - start, attempts, last_error=last_error)
        left = timeout - (clock.monotonic() - start)
        if left <= 0:
            return Waited(None, clock.monotonic() - start, attempts, timed_out=True, last_error=last_error)
        clock.sleep(min(delay, left), cancel)
        delay = min(delay * backoff, max_interval)


class Emitter:
    """An operation's handle on its sink: stamps each event with the clock's time and the operation's name."""

    def __init__(self, operation: str, sink: EventSink, clock: Clock) -> None:
        self.operation, self.sink, self.clock = operation, sink, clock

    def __call__(self, phase: str, message: str, level: Level = Level.STEP, **data: Any) -> None:
        self.sink(Event(self.clock.now(), self.operation, phase, message, level, data))
