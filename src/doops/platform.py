"""The platform an operation acts on: config, clients and clock. Operations take a ``Platform``; CLI output
options never reach them (they live in ``doops.cli.context``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from doops.config import Config, load_config
from doops.ops.seam import Clock, SystemClock

if TYPE_CHECKING:
    from doops.auth import TokenSource
    from doops.clients.do import DOClient
    from doops.clients.pg import Databases
    from doops.clients.web import WebClient


@dataclass
class Platform:
    config_path: str | None = None
    config_explicit: bool = False
    context: str | None = None
    access_token: str | None = None
    api_url: str | None = None
    debug: bool = False
    clock: Clock = field(default_factory=SystemClock)
    _config: Config | None = None
    _token: TokenSource | None = None
    _do: DOClient | None = None
    _web: WebClient | None = None
    _db: Databases | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def config(self) -> Config:
        with self._lock:
            if self._config is None:
                self._config = load_config(self.config_path, explicit=self.config_explicit)
            return self._config

    @property
    def token(self) -> TokenSource:
        with self._lock:
            if self._token is None:
                from doops.auth import resolve_token

                self._token = resolve_token(self.access_token, self.context)
            return self._token

    def resolved_api_url(self) -> str:
        from doops.clients.do import DEFAULT_API_URL

        return self.api_url or self.config.api_url or DEFAULT_API_URL

    @property
    def do(self) -> DOClient:
        """The DigitalOcean client, made once per run (checks running in parallel share it)."""
        with self._lock:
            if self._do is None:
                from doops.clients.do import DOClient, check_api_url
                from doops.clients.http import ResilientHttp

                api_url = self.resolved_api_url()
                check_api_url(api_url)  # a bad URL is bad input (exit 4) even when the token is missing too
                clock = self.clock  # pacing and retry waits run on the platform's clock (a fake one in tests)
                http = ResilientHttp(trace=self.debug, sleep=lambda s: clock.sleep(s),
                                     clock=lambda: clock.now().timestamp())
                self._do = DOClient(self.token.token, api_url, http)
            return self._do

    @property
    def web(self) -> WebClient:
        """Plain HTTP probes of what users hit (live URLs, CDN URLs), shared by parallel checks."""
        with self._lock:
            if self._web is None:
                from doops.clients.web import WebClient

                self._web = WebClient(timeout=float(self.config.thresholds.http_timeout))
            return self._web

    @property
    def db(self) -> Databases:
        """PostgreSQL I/O (connections are opened per call, with fast timeouts)."""
        with self._lock:
            if self._db is None:
                from doops.clients.pg import Databases

                self._db = Databases()
            return self._db

    def check_inputs(self) -> None:
        """Bad input (a malformed API URL or token, an unreadable config) is exit 4 before any request, also
        for commands like status that turn a missing token into unknown checks rather than failing."""
        import contextlib

        from doops.clients.do import check_api_url
        from doops.errors import AuthError

        check_api_url(self.resolved_api_url())
        with contextlib.suppress(AuthError):  # no token or no such context: the checks needing one say so
            _ = self.token

    def do_request_count(self) -> int:
        """HTTP requests sent to the DigitalOcean API so far in this run (every attempt included)."""
        return self._do.http.stats.requests if self._do is not None else 0

    def wait_do_requests(self, at_least: int, timeout: float) -> bool:
        """Until ``at_least`` requests have been sent to the API in this run (False at once when no client has
        been made, or when ``timeout`` passed first)."""
        return self._do is not None and self._do.http.stats.wait_attempts(at_least, timeout)

    def close(self) -> None:
        if self._do is not None:
            self._do.http.close()
        if self._web is not None:
            self._web.close()
