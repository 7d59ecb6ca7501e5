"""The one HTTP path to the DigitalOcean API: timeouts, rate-limit pacing, retries, masked tracing.

pydo speaks azure-core; :class:`doops.clients.transport.HttpxTransport` hands its requests to
:class:`ResilientHttp`, so pydo's traffic, respx in tests and the debug trace all meet httpx here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from doops import secrets
from doops.errors import ApiUnreachable

log = logging.getLogger("doops.http")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    attempts: int = 4  # first try + 3 retries
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    max_wait: float = 60.0  # never wait longer than this for one retry or a rate-limit reset


@dataclass
class RateLimiter:
    """Reads ratelimit-* headers and paces requests before the budget is gone.

    Below ``low_water`` remaining requests, the rest of the window is spread evenly over what is left; at 0
    it waits until the reset time.
    """

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    low_water: int = 10
    max_wait: float = 60.0
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, headers: httpx.Headers) -> None:
        try:
            remaining = headers.get("ratelimit-remaining")
            reset = headers.get("ratelimit-reset")
            limit = headers.get("ratelimit-limit")
            with self._lock:
                if remaining is not None:
                    self.remaining = int(remaining)
                if reset is not None:
                    self.reset_at = float(reset)
                if limit is not None:
                    self.limit = int(limit)
        except ValueError:
            log.debug("ignoring malformed ratelimit headers")

    def delay(self) -> float:
        """Seconds to wait before the next request (0 when the budget is comfortable)."""
        with self._lock:
            if self.remaining is None or self.reset_at is None:
                return 0.0
            until_reset = self.reset_at - self.clock()
            if until_reset <= 0:
                return 0.0
            if self.remaining <= 0:
                return min(until_reset, self.max_wait)
            if self.remaining < self.low_water:
                return min(until_reset / self.remaining, self.max_wait)
            return 0.0

    def acquire(self) -> None:
        wait = self.delay()
        if wait > 0:
            log.info("rate limit: %s requests left, waiting %.1fs", self.remaining, wait)
            self.sleep(wait)
            with self._lock:
                if self.remaining is not None and self.remaining <= 0:
                    self.remaining = None  # the window reset; the next answer tells the truth
        with self._lock:
            if self.remaining is not None:
                self.remaining -= 1


@dataclass
class RequestStats:
    count: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, retries: int = 0) -> None:
        with self._lock:
            self.count += 1
            self.retries += retries

    @property
    def requests(self) -> int:
        """Every HTTP request sent: calls plus their retries."""
        return self.count + self.retries


def retry_after_seconds(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            return None


class ResilientHttp:
    """httpx client with DigitalOcean's manners; thread safe, shared by every call of one run."""

    def __init__(
        self,
        *,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        trace: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_connections: int = 16,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self.trace = trace
        self.sleep = sleep
        self.clock = clock
        self.stats = RequestStats()
        self.client = httpx.Client(
            timeout=timeout or httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def send(self, method: str, url: str, headers: dict[str, str], content: bytes | None) -> httpx.Response:
        """Send with pacing and retries; returns the last answer (errors are the caller's to judge)."""
        method = method.upper()
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            started = time.monotonic()
            try:
                resp = self.client.request(method, url, headers=headers, content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never reached the server: safe to retry for every method.
                if attempt < self.retry.attempts:
                    self._backoff(attempt, None, f"{method} {_path(url)}: {type(exc).__name__}")
                    continue
                raise ApiUnreachable(
                    f"cannot reach the DigitalOcean API at {_origin(url)}: {exc}",
                    hint="check --api-url / DIGITALOCEAN_API_URL and the network",
                ) from exc
            except httpx.TimeoutException as exc:
                if method in IDEMPOTENT and attempt < self.retry.attempts:
                    self._backoff(attempt, None, f"{method} {_path(url)}: timeout")
                    continue
                raise ApiUnreachable(
                    f"DigitalOcean API timed out on {method} {_path(url)}",
                    hint="retry; if it persists check the API status",
                ) from exc
            except httpx.HTTPError as exc:
                raise ApiUnreachable(f"HTTP error talking to {_origin(url)}: {exc}") from exc
            elapsed = time.monotonic() - started
            self.limiter.update(resp.headers)
            self._trace(method, url, headers, resp, elapsed, attempt)
            retryable = resp.status_code in RETRY_STATUSES and (method in IDEMPOTENT or resp.status_code == 429)
            if retryable and attempt < self.retry.attempts:
                resp.read()
                wait = retry_after_seconds(resp.headers.get("retry-after"), self.clock())
                if wait is None and resp.status_code == 429:
                    reset = resp.headers.get("ratelimit-reset")
                    if reset:
                        try:
                            wait = max(0.0, float(reset) - self.clock())
                        except ValueError:
                            wait = None
                self._backoff(attempt, wait, f"{method} {_path(url)} answered {resp.status_code}")
                continue
            self.stats.add(retries=attempt - 1)
            return resp

    def _backoff(self, attempt: int, server_wait: float | None, why: str) -> None:
        if server_wait is not None:
            wait = min(server_wait, self.retry.max_wait) + random.uniform(0, 0.1)
        else:
            ceiling = min(self.retry.backoff_cap, self.retry.backoff_base * (2 ** (attempt - 1)))
            wait = random.uniform(ceiling / 2, ceiling)
        log.info("%s; retry %d in %.2fs", why, attempt, wait)
        self.sleep(wait)

    def _trace(
        self, method: str, url: str, headers: dict[str, str], resp: httpx.Response, elapsed: float, attempt: int
    ) -> None:
        if not self.trace:
            return
        shown = {k: ("Bearer ***" if k.lower() == "authorization" else v) for k, v in headers.items()}
        rl = {k: v for k, v in resp.headers.items() if k.lower().startswith("ratelimit") or k == "retry-after"}
        log.debug(
            secrets.mask(
                f"HTTP {method} {url} -> {resp.status_code} in {elapsed * 1000:.0f}ms "
                f"(attempt {attempt}) request-headers={shown} ratelimit={rl} request_id="
                f"{resp.headers.get('x-request-id', '-')}"
            )
        )


def _path(url: str) -> str:
    return urlsplit(url).path


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
