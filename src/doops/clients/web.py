"""HTTP probes of what users hit (live URLs, health paths, CDN edges): not the DigitalOcean API path.

Answers come back as ``Probe`` values, never as exceptions, so checks and operations judge them without
knowing httpx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Probe:
    url: str
    status: int | None  # None: no answer (``error`` says why)
    headers: dict[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    error: str | None = None
    body: bytes = b""

    @property
    def answered(self) -> bool:
        return self.status is not None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class WebClient:
    """One pooled httpx client with short timeouts, following redirects like a browser."""

    def __init__(self, timeout: float = 5.0, verify: Any = None) -> None:
        """``verify``: an ssl.SSLContext to use instead of the process's (one trusting a private CA)."""
        from doops.clients.http import httpx, tls_context  # httpx without its CLI, the process's TLS context

        self._client = httpx.Client(verify=verify or tls_context(),
                                    timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)), follow_redirects=True)

    def probe(self, method: str, url: str, headers: dict[str, str] | None = None, *, keep_body: bool = False,
              max_body: int = 1 << 20, timeout: float | None = None) -> Probe:
        """``timeout`` (seconds) replaces the client's own for this request (a runbook probe's ``timeout``)."""
        from doops.clients.http import httpx

        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = httpx.Timeout(timeout, connect=min(timeout, 3.0))
        try:
            resp = self._client.request(method, url, headers=headers, **extra)
        except httpx.HTTPError as exc:
            return Probe(url, None, error=type(exc).__name__)
        body = resp.content[:max_body] if keep_body else b""
        return Probe(url, resp.status_code, {k.lower(): v for k, v in resp.headers.items()},
                     round(resp.elapsed.total_seconds() * 1000, 1), body=body)

    def get_headers(self, url: str, headers: dict[str, str] | None = None) -> Probe:
        """GET ``url`` as a user would (a GET, not a HEAD: edges may cache and answer HEAD apart) but read only
        the status and headers, closing before the body: verifying a purged 2 GB video must not download it."""
        import time

        from doops.clients.http import httpx

        started = time.monotonic()
        try:
            with self._client.stream("GET", url, headers=headers) as resp:
                return Probe(url, resp.status_code, {k.lower(): v for k, v in resp.headers.items()},
                             round((time.monotonic() - started) * 1000, 1))
        except httpx.HTTPError as exc:
            return Probe(url, None, error=type(exc).__name__)

    def get(self, url: str, **kw: Any) -> Probe:
        return self.probe("GET", url, **kw)

    def head(self, url: str, **kw: Any) -> Probe:
        return self.probe("HEAD", url, **kw)

    def close(self) -> None:
        self._client.close()

