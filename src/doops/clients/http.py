"""The one HTTP path to the DigitalOcean API: timeouts, rate-limit pacing, retries, masked tracing.

pydo speaks azure-core; :class:`doops.clients.transport.HttpxTransport` hands its requests to
:class:`ResilientHttp`, so pydo's traffic, respx in tests and the debug trace all meet httpx here.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

# httpx's own command line (httpx._main) imports rich and pygments on `import httpx`: a tenth of a second of a
# cold `doops status -o json` for a CLI doops never runs. Blocked for the first import only; `httpx.main` then
# is httpx's stub, and importing httpx._main later still works.
_SKIP_HTTPX_CLI = "httpx" not in sys.modules and "httpx._main" not in sys.modules
if _SKIP_HTTPX_CLI:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
try:
    import httpx
finally:
    if _SKIP_HTTPX_CLI and sys.modules.get("httpx._main", False) is None:
        del sys.modules["httpx._main"]

from doops import masking  # noqa: E402
from doops.errors import ApiUnreachable, UsageError  # noqa: E402

log = logging.getLogger("doops.http")

_tls: dict[tuple[str | None, str | None], Future[ssl.SSLContext]] = {}
_tls_lock = threading.Lock()


def _tls_future() -> Future[ssl.SSLContext]:
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _tls_lock:
        fut = _tls.get(key)
        if fut is None:
            fut = _tls[key] = Future()

            def make() -> None:
                try:
                    fut.set_result(httpx.create_ssl_context(verify=True, trust_env=True))
                except BaseException as exc:
                    fut.set_exception(exc)

            threading.Thread(target=make, name="doops-tls", daemon=True).start()
        return fut


def tls_context() -> ssl.SSLContext:
    """The TLS context httpx makes for ``verify=True``, made once per process and shared by every client (the
    API's and the probes'): parsing the CA bundle costs about 50 ms each time. Keyed by SSL_CERT_FILE and
    SSL_CERT_DIR, which httpx honours, so a changed trust store is never ignored."""
    return _tls_future().result()


def tls_context_trusting(ca_file: str | None) -> ssl.SSLContext:
    """The process's context, or (``ca_file`` given) a new one that also trusts that CA: for probes of servers a
    private CA signs (the sandbox's live URLs), never for the API."""
    if not ca_file:
        return tls_context()
    ctx = httpx.create_ssl_context(verify=True, trust_env=True)
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot read the CA file {ca_file}: {exc}", hint="fix tls.ca_file in the config") from None
    return ctx


def prepare_tls() -> None:
    """Start making the TLS context in the background: OpenSSL parses the CA bundle without holding the GIL,
    so on a cold start it overlaps the imports that follow instead of adding to them."""
    _tls_future()

ANNOUNCE_AFTER = 2.0  # seconds: any longer pause is said on stderr, so a silent wait is never a mystery


def announce(message: str) -> None:
    """Default way a pause reaches the user: a warning-level record that the doops log handler prints as
    ``doops: waiting 50 s for the API rate limit`` (see ``doops.logs``), on every command."""
    log.warning(message, extra={"notice": True})


class WaitNotices:
    """Says each pause longer than ``ANNOUNCE_AFTER`` once: threads that wait for the same reset (16
    checks at a time) give one line, not sixteen."""

    def __init__(self, emit: Callable[[str], None] | None = None, clock: Callable[[], float] | None = None,
                 threshold: float = ANNOUNCE_AFTER) -> None:
        self.emit = emit or announce
        self.clock = clock or time.monotonic
        self.threshold = threshold
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, seconds: float, why: str, *, kind: str = "ratelimit") -> None:
        if seconds <= self.threshold:
            return
        now = self.clock()
        with self._lock:
            if now + seconds <= self._until.get(kind, float("-inf")) + 1.0:
                return  # another thread already said it for (about) this wait
            self._until[kind] = now + seconds
        self.emit(f"waiting {seconds:.0f} s {why}")

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

    # Looked up when the limiter is made, so tests can swap this module's ``time`` for a fake clock.
    clock: Callable[[], float] = field(default_factory=lambda: time.time)
    sleep: Callable[[float], None] = field(default_factory=lambda: time.sleep)
    low_water: int = 10
    max_wait: float = 60.0
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    notices: WaitNotices | None = None
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
            left = self.remaining
            log.info("rate limit: %s requests left, waiting %.1fs", left, wait)
            if self.notices is not None:
                self.notices(wait, "for the API rate limit" + (f" ({left} requests left until the reset)"
                                                              if left else ""))
            self.sleep(wait)
            with self._lock:
                if self.remaining is not None and self.remaining <= 0:
                    self.remaining = None  # the window reset; the next answer tells the truth
        with self._lock:
            if self.remaining is not None:
                self.remaining -= 1


@dataclass
class RequestStats:
    """``count``: calls of ``send``; ``attempts``: HTTP requests sent, every try counted whether it was
    answered, timed out or never connected (a run that sent 4 requests that all timed out sent 4)."""

    count: int = 0
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: threading.Condition = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._sent = threading.Condition(self._lock)

    def call(self) -> None:
        with self._lock:
            self.count += 1

    def attempt(self) -> None:
        with self._lock:
            self.attempts += 1
            self._sent.notify_all()

    def wait_attempts(self, at_least: int, timeout: float) -> bool:
        """Until ``at_least`` requests have been sent in all (False when ``timeout`` passed first)."""
        with self._sent:
            return self._sent.wait_for(lambda: self.attempts >= at_least, timeout)

    @property
    def retries(self) -> int:
        return max(0, self.attempts - self.count)

    @property
    def requests(self) -> int:
        """Every HTTP request sent: calls plus their retries, failed ones included."""
        return self.attempts


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
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        max_connections: int = 16,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        sleep = sleep or time.sleep
        clock = clock or time.time
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self.notices = WaitNotices(notify, clock)
        if self.limiter.notices is None:
            self.limiter.notices = self.notices
        self.trace = trace
        self.sleep = sleep
        self.clock = clock
        self.stats = RequestStats()
        self.client = httpx.Client(
            verify=tls_context(),
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
        self.stats.call()
        while True:
            attempt += 1
            self.limiter.acquire()
            started = time.monotonic()
            self.stats.attempt()
            try:
                resp = self.client.request(method, url, headers=headers, content=content)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never reached the server: safe to retry for every method.
                if attempt < self.retry.attempts:
                    self._backoff(attempt, None, f"{method} {_path(url)}: {type(exc).__name__}")
                    continue
                raise ApiUnreachable(
                    f"cannot reach the DigitalOcean API at {_origin(url)}: {_short(str(exc))}",
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
            except (httpx.LocalProtocolError, httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError) as exc:
                # The request could not even be written: a header or the URL is malformed. The error text
                # quotes the offending value, which may be the token: it is not shown, not even masked.
                raise UsageError(
                    f"cannot send {method} {_short(_path(url))}: a header or the URL is malformed "
                    f"({type(exc).__name__}; the value is not shown)",
                    hint="check the token and --api-url / DIGITALOCEAN_API_URL",
                ) from None
            except httpx.HTTPError as exc:
                raise ApiUnreachable(
                    f"HTTP error talking to {_origin(url)}: {type(exc).__name__}: {_short(str(exc))}"
                ) from exc
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
                self._backoff(attempt, wait, f"{method} {_path(url)} answered {resp.status_code}",
                              rate_limited=resp.status_code == 429)
                continue
            return resp

    def _backoff(self, attempt: int, server_wait: float | None, why: str, *, rate_limited: bool = False) -> None:
        if server_wait is not None:
            wait = min(server_wait, self.retry.max_wait) + random.uniform(0, 0.1)
        else:
            ceiling = min(self.retry.backoff_cap, self.retry.backoff_base * (2 ** (attempt - 1)))
            wait = random.uniform(ceiling / 2, ceiling)
        log.info("%s; retry %d in %.2fs", why, attempt, wait)
        if rate_limited:
            self.notices(wait, "for the API rate limit (429 Too Many Requests)")
        else:
            self.notices(wait, f"before retry {attempt} ({_short(why)})", kind="retry")
        self.sleep(wait)

    def _trace(
        self, method: str, url: str, headers: dict[str, str], resp: httpx.Response, elapsed: float, attempt: int
    ) -> None:
        if not self.trace:
            return
        shown = {k: ("Bearer ***" if k.lower() == "authorization" else v) for k, v in headers.items()}
        rl = {k: v for k, v in resp.headers.items() if k.lower().startswith("ratelimit") or k == "retry-after"}
        log.debug(
            masking.mask(
                f"HTTP {method} {url} -> {resp.status_code} in {elapsed * 1000:.0f}ms "
                f"(attempt {attempt}) request-headers={shown} ratelimit={rl} request_id="
                f"{resp.headers.get('x-request-id', '-')}"
            )
        )


def _path(url: str) -> str:
    return urlsplit(url).path


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
