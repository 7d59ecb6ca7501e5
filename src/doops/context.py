"""The one context object every command builds its service call from."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from doops.config import Config, load_config
from doops.output import OutputOptions

if TYPE_CHECKING:
    from doops.auth import TokenSource
    from doops.clients.do import DOClient

log = logging.getLogger("doops")


@dataclass
class AppContext:
    config_path: str | None = None
    config_explicit: bool = False
    context: str | None = None
    access_token: str | None = None
    api_url: str | None = None
    output: OutputOptions = field(default_factory=OutputOptions)
    verbose: int = 0
    debug: bool = False
    _config: Config | None = None
    _token: TokenSource | None = None
    _do: DOClient | None = None
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
                self._do = DOClient(self.token.token, api_url, ResilientHttp(trace=self.debug))
            return self._do

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
        """HTTP requests sent to the DigitalOcean API so far in this run (retries included)."""
        return self._do.http.stats.requests if self._do is not None else 0

    def close(self) -> None:
        if self._do is not None:
            self._do.http.close()


def color_enabled(no_color_flag: bool) -> bool:
    return not no_color_flag and "NO_COLOR" not in os.environ
