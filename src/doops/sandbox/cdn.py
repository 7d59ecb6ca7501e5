"""CDN twin: a caching HTTP reverse proxy per CDN endpoint, in front of a Spaces (S3) bucket.

Why boto3 to the origin rather than anonymous HTTP: moto's server routes requests by their signature,
and objects need not be public-read; a signed GetObject always works.

Cache policy (documented because `doops cdn` checks it):
- cache key = URL path without query string, leading "/" stripped (``/static/app.css`` -> ``static/app.css``);
- effective TTL = min(endpoint ttl, object's ``s-maxage`` or else ``max-age``); objects with
  ``no-store``, ``no-cache`` or ``private`` are never cached; the TTL is evaluated at lookup time, so
  changing ``ttl`` applies to entries already cached;
- the object's Cache-Control, Content-Type, ETag and Last-Modified pass through on hits and misses, GET and
  HEAD; ``X-Cache: HIT|MISS`` and ``Age`` (seconds in cache) are added; 404s and origin errors (502) are not
  cached;
- ``purge(files, delay)`` evicts when the purge has propagated, ``delay`` seconds later (0: at once); until
  then the cached (stale) copy is still served as a HIT, as a real edge does while a purge propagates. The
  deadline is checked at each lookup, so no timer thread outlives the proxy. File strings name cache keys as
  ``doops.sandbox.api.limits.purge_path`` reads them (leading "/" optional, URL-encoding decoded): exact path,
  ``dir/*`` (everything under dir/), ``*`` (everything); any other pattern with ``*`` is matched with fnmatch;
  a path not cached is no error. Purge rate limits and identical purges live in the API twin.

Ranges (video seeking): one byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) is a 206 with
``Content-Range``; past the end it is a 416 with ``Content-Range: bytes */size``; several ranges, another unit or
a malformed header are ignored (200, the whole object), as RFC 9110 allows. A hit cuts the range from the
cached object; a miss asks the origin for only those bytes (S3 GetObject ``Range``) and caches nothing unless
they are the whole object. ``If-Range`` (strong ETag or Last-Modified) sends the whole object when it no longer
matches; HEAD ignores Range. Every object found carries ``Accept-Ranges: bytes``.

Connections: HTTP/1.1, kept alive between requests (``loopback.KeepAliveHandler``).
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from doops.sandbox.api.limits import purge_path
from doops.sandbox.loopback import KeepAliveHandler, LoopbackServer
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


@dataclass(frozen=True)
class _Fetched:
    """What the origin sent: the object (or the bytes of a range) and, for a range, its Content-Range."""

    entry: _Entry
    content_range: str | None = None


Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class ByteRange:
    """One range of a ``Range: bytes=...`` header: ``first-last``, ``first-`` (last None) or ``-suffix``."""

    first: int | None
    last: int | None

    def header(self) -> str:
        """The range as a Range header value (for the origin)."""
        if self.first is None:
            return f"bytes=-{self.last}"
        return f"bytes={self.first}-" + ("" if self.last is None else str(self.last))

    def span(self, size: int) -> tuple[int, int] | None:
        """(start, end inclusive) of an object of ``size`` bytes, or None when unsatisfiable (a 416)."""
        if self.first is None:
            suffix = int(self.last or 0)
            if suffix == 0 or size == 0:
                return None
            return max(0, size - suffix), size - 1
        if self.first >= size:
            return None
        return self.first, size - 1 if self.last is None else min(self.last, size - 1)


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.I)


def parse_range(value: str | None) -> ByteRange | None:
    """The single byte range a Range header asks for; None when absent, malformed, not in bytes or several
    ranges (RFC 9110 lets a server ignore those and send the whole object, which the twin does)."""
    if not value:
        return None
    m = _RANGE.match(value)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first = int(m.group(1)) if m.group(1) else None
    last = int(m.group(2)) if m.group(2) else None
    if first is not None and last is not None and last < first:
        return None
    return ByteRange(first, last)


def _if_range_holds(if_range: str, headers: dict[str, str]) -> bool:
    """If-Range: the range applies only while the validator still names this version (strong ETag or the
    exact Last-Modified date); otherwise the whole object is sent."""
    value = if_range.strip()
    if value.startswith(("\"", "W/")):
        return not value.startswith("W/") and value == headers.get("ETag")
    last_modified = headers.get("Last-Modified")
    if not last_modified:
        return False
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False


def _not_satisfiable(size: int | None, cache: str) -> Answer:
    headers = {"Content-Type": "text/plain", "X-Cache": cache, "Accept-Ranges": "bytes"}
    if size is not None:
        headers["Content-Range"] = f"bytes */{size}"
    return 416, headers, b"Range Not Satisfiable\n"


class _Server(ThreadingHTTPServer):
    proxy: CdnProxy


class _Handler(KeepAliveHandler):
    server: _Server
    server_version = "doops-cdn-twin"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        self.drain_body()
        status, headers, body = self.server.proxy.handle(
            self.path, self.headers.get("If-None-Match"), range_header=self.headers.get("Range"),
            if_range=self.headers.get("If-Range"), head=head)
        self.reply(status, headers, body, head=head)

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.origin_endpoint_url = origin_endpoint_url
        self.bucket = bucket
        self.ttl = ttl
        self._client = s3_client(origin_endpoint_url, access_key, secret_key, region)
        self._lock = threading.Lock()
        self._cache: dict[str, _Entry] = {}
        self._clock = clock
        self._generation = 0  # bumped by an eviction: a fetch started before it must not re-fill
        self._pending: list[tuple[float, tuple[str, ...]]] = []  # purges propagating: (deadline, files)
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
        """Stop serving and close the listening socket and every open connection."""
        self._server.stop()

    def open_connections(self) -> int:
        """Client connections open now (kept-alive ones included)."""
        return self._server.open_connections()

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

    def _store(self, key: str, entry: _Entry, generation: int) -> None:
        with self._lock:
            self._misses += 1
            if self._effective_ttl(entry) > 0 and generation == self._generation:
                self._cache[key] = entry

    def handle(self, path: str, if_none_match: str | None = None, *, range_header: str | None = None,
               if_range: str | None = None, head: bool = False) -> Answer:
        """Serve one request from cache or origin: (status, headers, body). A single byte range is served as a
        206 (a 416 when it lies past the end); HEAD ignores Range, as RFC 9110 asks."""
        key = self._key(path)
        wanted = None if head else parse_range(range_header)
        now = self._clock()
        with self._lock:
            self._apply_due(now)
            entry = self._cache.get(key)
            if entry is not None and not self._fresh(entry, now):
                del self._cache[key]
                entry = None
            generation = self._generation
            if entry is not None:
                self._hits += 1
        if entry is not None:
            headers = {**entry.headers, "X-Cache": "HIT", "Age": str(int(now - entry.stored_at))}
        elif wanted is not None and not if_range:
            return self._ranged_miss(key, wanted, generation, if_none_match)
        else:
            fetched = self._fetch(key)
            if not isinstance(fetched, _Fetched):
                return fetched
            entry = fetched.entry
            self._store(key, entry, generation)
            headers = {**entry.headers, "X-Cache": "MISS", "Age": "0"}
        headers["Accept-Ranges"] = "bytes"
        if if_none_match and entry.headers.get("ETag") and if_none_match.strip() == entry.headers["ETag"]:
            return 304, headers, b""
        if wanted is not None and (not if_range or _if_range_holds(if_range, entry.headers)):
            span = wanted.span(len(entry.body))
            if span is None:
                return _not_satisfiable(len(entry.body), headers["X-Cache"])
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{len(entry.body)}"
            return 206, headers, entry.body[start:end + 1]
        return 200, headers, entry.body

    def _ranged_miss(self, key: str, wanted: ByteRange, generation: int,
                     if_none_match: str | None) -> Answer:
        """A range not in cache: only those bytes are asked of the origin (S3 GetObject with Range), as an edge
        streaming a large video does; the cache is filled only when the range turns out to be the whole object."""
        fetched = self._fetch(key, wanted)
        if not isinstance(fetched, _Fetched):
            return fetched
        entry, content_range = fetched.entry, fetched.content_range
        headers = {**entry.headers, "X-Cache": "MISS", "Age": "0", "Accept-Ranges": "bytes"}
        m = re.match(r"bytes (\d+)-(\d+)/(\d+)", content_range or "")
        whole = content_range is None or (m is not None and int(m.group(1)) == 0
                                          and int(m.group(2)) + 1 == int(m.group(3)))
        if whole:
            self._store(key, entry, generation)
        else:
            with self._lock:
                self._misses += 1
        if if_none_match and entry.headers.get("ETag") and if_none_match.strip() == entry.headers["ETag"]:
            return 304, headers, b""
        if content_range is None:  # the origin ignored the range: cut it here
            span = wanted.span(len(entry.body))
            if span is None:
                return _not_satisfiable(len(entry.body), "MISS")
            content_range = f"bytes {span[0]}-{span[1]}/{len(entry.body)}"
            return 206, {**headers, "Content-Range": content_range}, entry.body[span[0]:span[1] + 1]
        return 206, {**headers, "Content-Range": content_range}, entry.body

    def _fetch(self, key: str, wanted: ByteRange | None = None) -> _Fetched | Answer:
        """The object from the origin (with ``wanted``, only those bytes and the origin's Content-Range), or an
        answer to send as is (404, 416, 502)."""
        if not key:
            return 404, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Not Found\n"
        kw: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if wanted is not None:
            kw["Range"] = wanted.header()
        try:
            obj = self._client.get_object(**kw)
            body = obj["Body"].read()
        except self._client.exceptions.NoSuchKey:
            return 404, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Not Found\n"
        except Exception as exc:
            error = getattr(exc, "response", {}).get("Error", {})
            code = error.get("Code")
            if code in ("NoSuchKey", "404"):
                return 404, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Not Found\n"
            if code == "InvalidRange":
                size = error.get("ActualObjectSize")
                return _not_satisfiable(int(size) if str(size or "").isdigit() else None, "MISS")
            log.warning("cdn origin fetch %s/%s failed: %s", self.bucket, key, exc)
            return 502, {"Content-Type": "text/plain", "X-Cache": "MISS"}, b"Bad Gateway\n"
        headers = {hdr: str(obj[field]) for field, hdr in _PASS_HEADERS if obj.get(field)}
        if obj.get("LastModified"):
            headers["Last-Modified"] = obj["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
        entry = _Entry(body=body, headers=headers, stored_at=self._clock(),
                       max_age=cache_control_max_age(obj.get("CacheControl")))
        partial = wanted is not None and obj.get("ResponseMetadata", {}).get("HTTPStatusCode") == 206
        return _Fetched(entry, obj.get("ContentRange") if partial else None)

    def purge(self, files: list[str], delay: float = 0.0) -> int:
        """Evict the entries ``files`` name once ``delay`` seconds have passed (0: now).

        Returns how many were evicted now (0 for a purge still propagating); ``stats()["purged"]`` counts
        them all."""
        if delay > 0:
            with self._lock:
                self._pending.append((self._clock() + delay, tuple(files)))
            log.info("cdn %s purge %s: in progress for %ss", self.bucket, files, delay)
            return 0
        with self._lock:
            removed = self._evict(files)
        log.info("cdn %s purge %s: %d evicted", self.bucket, files, removed)
        return removed

    def purges_in_progress(self) -> int:
        """Purges accepted whose files are still served from cache."""
        with self._lock:
            self._apply_due(self._clock())
            return len(self._pending)

    def _apply_due(self, now: float) -> None:
        """Evict for every purge whose time has come (caller holds the lock)."""
        due = [files for deadline, files in self._pending if deadline <= now]
        if not due:
            return
        self._pending = [(deadline, files) for deadline, files in self._pending if deadline > now]
        for files in due:
            removed = self._evict(list(files))
            log.info("cdn %s purge %s propagated: %d evicted", self.bucket, list(files), removed)

    def _evict(self, files: list[str]) -> int:
        """Drop the entries ``files`` name; returns how many (caller holds the lock)."""
        removed = 0
        self._generation += 1
        for raw in files:
            pattern = purge_path(raw)
            if pattern == "*":
                doomed = list(self._cache)
            elif pattern.endswith("/*") and "*" not in pattern[:-2]:
                doomed = [k for k in self._cache if k.startswith(pattern[:-1])]
            elif "*" in pattern:
                doomed = [k for k in self._cache if fnmatch.fnmatchcase(k, pattern)]
            else:
                doomed = [pattern] if pattern in self._cache else []
            for k in doomed:
                del self._cache[k]
            removed += len(doomed)
        self._purged += removed
        return removed

    def cached_paths(self) -> list[str]:
        """Fresh cache keys (paths without the leading '/'), sorted; expired and purged entries are dropped."""
        now = self._clock()
        with self._lock:
            self._apply_due(now)
            for k in [k for k, e in self._cache.items() if not self._fresh(e, now)]:
                del self._cache[k]
            return sorted(self._cache)

    def stats(self) -> dict[str, int]:
        """Hit/miss/eviction counters and purges in progress (for the API twin and drills)."""
        with self._lock:
            self._apply_due(self._clock())
            return {"hits": self._hits, "misses": self._misses, "purged": self._purged,
                    "entries": len(self._cache), "purging": len(self._pending)}
