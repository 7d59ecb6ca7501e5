"""Rate limits as DigitalOcean applies them: a per-token sliding hour and minute, and the CDN limits."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one request against a token's budget, with the values for the ratelimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix time the oldest counted request leaves the hour window
    retry_after: int | None = None  # set on burst (per-minute) refusals only

    def headers(self) -> dict[str, str]:
        """The ratelimit-* (and retry-after) headers DigitalOcean sends."""
        out = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset),
        }
        if self.retry_after is not None:
            out["retry-after"] = str(self.retry_after)
        return out


class RateLimiter:
    """Per-key budget of ``per_hour`` requests per sliding hour and ``per_minute`` per sliding minute.

    Only accepted requests are counted (a refused one does not spend budget).
    """

    def __init__(self, per_minute: int, per_hour: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str) -> RateDecision:
        """The current headers without spending anything (for answers that do not count, e.g. 401)."""
        with self._lock:
            now = self._clock()
            hits = self._prune(key, now)
            reset = math.ceil(hits[0] + 3600) if hits else int(now)
            return RateDecision(True, self.per_hour, max(0, self.per_hour - len(hits)), reset)

    def hit(self, key: str, per_minute: int | None = None) -> RateDecision:
        """Count one request for ``key`` if the budget allows it; ``per_minute`` overrides the burst budget."""
        minute_budget = self.per_minute if per_minute is None else per_minute
        with self._lock:
            now = self._clock()
            hits = self._prune(key, now)
            in_minute = [t for t in hits if t > now - 60.0]
            reset = math.ceil(hits[0] + 3600) if hits else int(now)
            if len(hits) >= self.per_hour:
                return RateDecision(False, self.per_hour, 0, reset)
            if len(in_minute) >= minute_budget:
                oldest = in_minute[0] if in_minute else now
                retry = max(1, math.ceil(oldest + 60.0 - now))
                return RateDecision(False, self.per_hour, max(0, self.per_hour - len(hits)), reset, retry)
            hits.append(now)
            reset = math.ceil(hits[0] + 3600)
            return RateDecision(True, self.per_hour, self.per_hour - len(hits), reset)

    def reset(self) -> None:
        """Forget all counted requests."""
        with self._lock:
            self._hits.clear()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - 3600.0:
            hits.popleft()
        return hits


class SlidingWindow:
    """``limit`` units per ``window`` seconds per key (CDN call and purge limits)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._used: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every unit spent (admin reset, faults cleared)."""
        with self._lock:
            self._used.clear()

    def wait(self, key: str, amount: int = 1) -> int | None:
        """Seconds before ``amount`` units fit (``None``: they fit now), without spending anything.

        Lets a caller with several limits check all of them first and spend only when every one allows it.
        """
        with self._lock:
            return self._wait_locked(key, amount, self._clock())

    def acquire(self, key: str, amount: int = 1) -> int | None:
        """Spend ``amount`` units; ``None`` if allowed, else the seconds to wait before retrying."""
        with self._lock:
            now = self._clock()
            wait = self._wait_locked(key, amount, now)
            if wait is None:
                self._used[key].append((now, amount))
            return wait

    def remaining(self, key: str) -> int:
        """Units left in the window now."""
        with self._lock:
            now = self._clock()
            self._wait_locked(key, 0, now)
            return max(0, self.limit - sum(n for _, n in self._used[key]))

    def _wait_locked(self, key: str, amount: int, now: float) -> int | None:
        used = self._used.setdefault(key, deque())
        while used and used[0][0] <= now - self.window:
            used.popleft()
        total = sum(n for _, n in used)
        if total + amount <= self.limit:
            return None
        if not used:  # more than the whole window allows, ever
            return max(1, math.ceil(self.window))
        # wait until enough old units leave the window
        freed = 0
        for ts, n in used:
            freed += n
            if total - freed + amount <= self.limit:
                return max(1, math.ceil(ts + self.window - now))
        return max(1, math.ceil(self.window))


def purge_path(raw: str) -> str:
    """A CDN purge file string as the cache key it names.

    Why one function: the API twin (identical purges) and the edge (what to evict) must agree on when two
    strings are the same file. A leading "/" is optional, URL-encoding is decoded and a query string ignored, as
    the edge's cache key does; ``*`` stays a wildcard.
    """
    path = raw.strip().lstrip("/")
    return unquote(urlsplit("/" + path).path).lstrip("/")


PurgeKey = tuple[str, frozenset[str]]


class PurgesInProgress:
    """Purges still propagating, by endpoint and set of file strings.

    DigitalOcean: "Two identical purge requests cannot be sent at the same time." Identical means the same
    endpoint and the same files once order, duplicates and a leading "/" are ignored; another set is fine.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: dict[PurgeKey, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(endpoint_id: str, files: Iterable[str]) -> PurgeKey:
        """What makes two purges identical."""
        return endpoint_id, frozenset(purge_path(f) for f in files)

    def seconds_left(self, endpoint_id: str, files: Iterable[str]) -> float | None:
        """Seconds until an identical purge in progress ends, or ``None`` when there is none."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            until = self._until.get(self.key(endpoint_id, files))
            return None if until is None else until - now

    def begin(self, endpoint_id: str, files: Iterable[str], duration: float) -> None:
        """Record a purge that propagates for ``duration`` seconds (0: done at once, nothing to record)."""
        if duration <= 0:
            return
        with self._lock:
            self._until[self.key(endpoint_id, files)] = self._clock() + duration

    def active(self) -> int:
        """Purges in progress now."""
        with self._lock:
            self._prune(self._clock())
            return len(self._until)

    def reset(self) -> None:
        """Forget every purge in progress (admin reset, faults cleared)."""
        with self._lock:
            self._until.clear()

    def _prune(self, now: float) -> None:
        for k in [k for k, until in self._until.items() if until <= now]:
            del self._until[k]
