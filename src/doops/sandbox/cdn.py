"""CDN twin: a caching HTTP reverse proxy per CDN endpoint, in front of a Spaces (S3) bucket.

Why boto3 to the origin rather than anonymous HTTP: moto's server routes requests by their signature,
and objects need not be public-read; a signed GetObject always works.

Cache policy (documented because `doops cdn` checks it):
- cache key = URL path without query string, leading "/" stripped (``/static/app.css`` -> ``static/app.css``);
- effective TTL = min(endpoint ttl, object's ``s-maxage`` or else ``max-age``); objects with
  ``no-store``, ``no-cache`` or ``private`` are never cached; the TTL is evaluated at lookup time, so
  changing ``ttl`` applies to entries already cached;
- the object's Cache-Control, Content-Type, ETag and Last-Modified pass through; ``X-Cache: HIT|MISS``
  and ``Age`` are added; 404s and origin errors (502) are not cached;
- ``purge(files)`` evicts at once: exact path, ``dir/*`` (everything under dir/), ``*`` (everything);
  any other pattern with ``*`` is matched with fnmatch. Purge rate limits live in the API twin.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from doops.sandbox.loopback import LoopbackServer
from doops.sandbox.spaces import s3_client

log = logging.getLogger(__name__)

_PASS_HEADERS = (("ContentType", "Content-Type"), ("CacheControl", "Cache-Control"), ("ETag", "ETag"))
_NO_CACHE = re.compile(r"(?:^|[\s,])(no-store|no-cache|private)(?:$|[\s,=])", re.I)


def cache_control_max_age(cache_control: str | None) -> float | None:
    """Seconds a shared cache may keep the object per Cache-Control (s-maxage wins); 0 if uncacheable."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    for directive in ("s-maxage", "max-age"):
        m = re.search(rf"(?:^|[\s,]){directive}\s*=\s*\"?(\d+)", cache_control, re.I)
        if m:
            return float(m.group(1))
    return None


@dataclass
class _Entry:
    body: bytes
    headers: dict[str, str]
    stored_at: float
    max_age: float | None


class _Server(ThreadingHTTPServer):
    proxy: CdnProxy


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "doops-cdn-twin"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        status, headers, body = self.server.proxy.handle(self.path, self.headers.get("If-None-Match"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)) if status != 304 else "0")
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("cdn %s: " + format, self.server.server_address, *args)


class CdnProxy:
    """One CDN endpoint: HTTP server on 127.0.0.1 caching objects of ``bucket`` for ``ttl`` seconds."""

    def __init__(
        self,
        origin_endpoint_url: str,
        bucket: str,
        ttl: float = 3600,
        *,
        access_key: str = "sandbox",
        secret_key: str = "sandbox",
        region: str = "nyc3",
    ) -> None:
        self.origin_endpoint_url = origin_endpoint_url
        self.bucket = bucket
        self.ttl = ttl
        self._client = s3_client(origin_endpoint_url, access_key, secret_key, region)
        self._lock = threading.Lock()
        self._cache: dict[str, _Entry] = {}
        self._generation = 0  # bumped by purge: a fetch started before a purge must not re-fill
        self._hits = 0
        self._misses = 0
        self._purged = 0
        self._server = LoopbackServer(_Handler, f"cdn-{bucket}", proxy=self)
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        """Base URL of the edge (http://127.0.0.1:<port>)."""
        if not self._server.running:
            raise RuntimeError("CdnProxy not started")
        return self._server.url

    def start(self) -> CdnProxy:
        """Bind 127.0.0.1 on a free port and serve in a thread. Returns self."""
        t0 = time.monotonic()
        self._server.start()
        self.start_seconds = time.monotonic() - t0
        log.info("cdn endpoint for %s on %s (ttl %ss)", self.bucket, self.url, self.ttl)
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.stop()

    def __enter__(self) -> CdnProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _key(path: str) -> str:
        return unquote(urlsplit(path).path).lstrip("/")

    def _effective_ttl(self, entry: _Entry) -> float:
        return self.ttl if entry.max_age is None else min(self.ttl, entry.max_age)

    def _fresh(self, entry: _Entry, now: float) -> bool:
        return now - entry.stored_at < self._effective_ttl(entry)

    def handle(self, path: str, if_none_match: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """Serve one request path from cache or origin: (status, headers, body)."""
        key = self._key(path)
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and not self._fresh(entry, now):
                del self._cache[key]
                entry = None
            generation = self._generation
            if entry is not None:
                self._hits += 1
        if entry is not None:
            headers = {**entry.headers, "X-Cache": "HIT", "Age": str(int(now - entry.stored_at))}
        else:
            fetched = self._fetch(key)
            if isinstance(fetched, tuple):
                return fetched
            entry = fetched
            with self._lock:
                self._misses += 1
                if self._effective_ttl(entry) > 0 and generation == self._generation:
                    self._cache[key] = entry
            headers = {**entry.headers, "X-Cache": "MISS", "Age": "0"}
        if if_none_match and entry.headers.get("ETag") and if_none_match.strip() == entry.headers["ETag"]:
            return 304, headers, b""
        return 200, headers, entry.body

    def _fetch(self, key: str) -> _Entry | tuple[int, dict[str, str], bytes]:
        if not key:
            return 404, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Not Found\n"
        try:
            obj = self._client.get_object(Bucket=self.bucket, Key=key)
            body = obj["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return 404, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Not Found\n"
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                return 404, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Not Found\n"
            log.warning("cdn origin fetch %s/%s failed: %s", self.bucket, key, exc)
            return 502, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Bad Gateway\n"
        headers = {hdr: str(obj[field]) for field, hdr in _PASS_HEADERS if obj.get(field)}
        if obj.get("LastModified"):
            headers["Last-Modified"] = obj["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
        return _Entry(body=body, headers=headers, stored_at=time.monotonic(),
                      max_age=cache_control_max_age(obj.get("CacheControl")))

    def purge(self, files: list[str]) -> int:
        """Evict matching entries now; returns how many were evicted. `*`, `dir/*` or exact paths."""
        removed = 0
        with self._lock:
            self._generation += 1
            for raw in files:
                pattern = raw.strip().lstrip("/")
                if pattern in ("*", ""):
                    doomed = list(self._cache)
                elif pattern.endswith("/*") and "*" not in pattern[:-2]:
                    doomed = [k for k in self._cache if k.startswith(pattern[:-1])]
                elif "*" in pattern or "?" in pattern:
                    doomed = [k for k in self._cache if fnmatch.fnmatchcase(k, pattern)]
                else:
                    doomed = [pattern] if pattern in self._cache else []
                for k in doomed:
                    del self._cache[k]
                removed += len(doomed)
            self._purged += removed
        log.info("cdn %s purge %s: %d evicted", self.bucket, files, removed)
        return removed

    def cached_paths(self) -> list[str]:
        """Fresh cache keys (paths without the leading '/'), sorted; expired entries are dropped."""
        now = time.monotonic()
        with self._lock:
            for k in [k for k, e in self._cache.items() if not self._fresh(e, now)]:
                del self._cache[k]
            return sorted(self._cache)

    def stats(self) -> dict[str, int]:
        """Hit/miss/eviction counters (for the API twin and drills)."""
        with self._lock:
            return {"hits": self._hits, "misses": self._misses, "purged": self._purged,
                    "entries": len(self._cache)}
