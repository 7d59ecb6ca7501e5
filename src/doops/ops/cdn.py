"""`doops cdn purge`: purge paths from a CDN endpoint within DigitalOcean's limits, then prove the edge serves
what the origin holds.

DigitalOcean allows 50 purged file strings per 20 s per endpoint (a wildcard is one) and 5 calls to
``/v2/cdn/endpoints*`` per 10 s, and refuses two identical purges at once. doops plans batches that stay
inside both limits (counting its own GET of the endpoints), says the ETA before it starts, and paces every
DELETE on the platform's clock; a 429 that still comes (another client spent the budget) is waited out as the
server asks and the same batch is sent again. Then, for each purged file (a sample of up to 20 under each
wildcard, listed from the origin bucket), it GETs the file through the CDN and HEADs it at the origin: the
same ETag (or Last-Modified and length) is ``fresh``; anything else is ``stale`` and checked again until
``--wait`` ends. A file missing at the origin is ``missing`` when the edge serves nothing either.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from doops import journal
from doops.clients.models import CdnEndpoint
from doops.errors import ApiError, ApiUnreachable, UnknownStateError, UsageError
from doops.ops.audit import Identity
from doops.ops.seam import Cancel, Emitter, EventSink, Level, Outcome, ignore, wait_until
from doops.platform import Platform
from doops.serialize import to_data
from doops.units import format_duration

OPERATION = "cdn purge"

# DigitalOcean's limits (docs of DELETE /v2/cdn/endpoints/{cdn_id}/cache): file strings per endpoint, and all
# /v2/cdn/endpoints* calls together.
FILES_PER_WINDOW = 50
FILES_WINDOW = 20.0
CALLS_PER_WINDOW = 5
CALLS_WINDOW = 10.0
MARGIN = 0.5  # seconds past each window's edge: the server starts counting when a request arrives, not at our send
SAMPLE_PER_WILDCARD = 20
MAX_RATE_LIMITED = 6  # 429s in a row on one batch (after the HTTP client's own retries) before giving up
CHECK_WORKERS = 8
MAX_PATH = 1024  # the longest object key Spaces (S3) accepts
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@dataclass
class PurgeOptions:
    paths: list[str] = field(default_factory=list)
    endpoint: str | None = None  # id, origin, endpoint hostname, custom domain or bucket; None: the only one
    first_may_be_endpoint: bool = False  # the CLI's `[ENDPOINT] PATH...`: paths[0] names an endpoint when it is one
    purge_all: bool = False  # `*`
    fold: int | None = None  # more than this many paths in one directory: purge `dir/*` instead
    verify: bool = True
    wait_seconds: float = 60.0
    dry_run: bool = False


@dataclass
class EndpointRef:
    id: str
    origin: str
    endpoint: str
    custom_domain: str | None


@dataclass
class Batch:
    files: list[str]
    sent_at: datetime | None = None
    status: str = "planned"  # planned, sent, refused, not sent
    planned_offset: float = 0.0  # seconds after the first DELETE, from the plan
    rate_limited: int = 0  # 429s waited out for this batch (never shown as an error)

    def to_data(self) -> dict[str, Any]:
        return {"files": list(self.files), "sent_at": to_data(self.sent_at), "status": self.status}


@dataclass
class Check:
    """One file as the edge serves it against the origin."""

    path: str
    url: str
    state: str = "unchecked"  # fresh, stale, missing (at the origin, and the edge serves nothing), error
    fresh: bool | None = None  # None: missing at the origin (nothing to be fresh), or not checked
    edge_etag: str | None = None
    origin_etag: str | None = None
    cache: str | None = None  # the edge's X-Cache and Age
    edge_status: int | None = None
    detail: str = ""
    sampled_from: str | None = None  # the wildcard it stands for

    def to_data(self) -> dict[str, Any]:
        return {"path": self.path, "url": self.url, "fresh": self.fresh, "state": self.state,
                "edge_etag": self.edge_etag, "origin_etag": self.origin_etag, "cache": self.cache}

    @property
    def settled(self) -> bool:
        return self.state in ("fresh", "missing")


@dataclass
class PurgeResult:
    endpoint: EndpointRef | None
    requested: int
    folded: dict[str, int] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    verification: list[Check] = field(default_factory=list)
    duration_seconds: float = 0.0
    outcome: Outcome = Outcome.OK
    message: str = ""
    hint: str | None = None
    dropped: list[str] = field(default_factory=list)  # paths already under a wildcard of the same request
    eta_seconds: float = 0.0
    verified: bool = False
    dry_run: bool = False
    audit_file: str = ""

    @property
    def files(self) -> list[str]:
        return [f for b in self.batches for f in b.files]

    def to_data(self) -> dict[str, Any]:
        return {"endpoint": to_data(self.endpoint), "requested": self.requested, "folded": dict(self.folded),
                "batches": [b.to_data() for b in self.batches],
                "verification": [c.to_data() for c in self.verification],
                "duration_seconds": self.duration_seconds, "outcome": self.outcome.value}

    def end(self, outcome: Outcome, message: str, hint: str | None = None) -> PurgeResult:
        self.outcome, self.message, self.hint = outcome, message, hint
        return self


# -- paths ---------------------------------------------------------------------------------------------------


def is_wildcard(path: str) -> bool:
    return path == "*" or path.endswith("/*")


def normalise_path(raw: str) -> str:
    """The object key a purge string names: leading ``/`` optional, percent-encoding decoded (``a%20b.png`` and
    ``a b.png`` are one file), a full URL reduced to its path, query and fragment dropped (the CDN's cache key
    has neither). Wildcards as DigitalOcean defines them: ``*`` alone, or ``dir/*``."""
    text = raw.strip()
    if not text:
        raise UsageError("an empty path was given", hint="give object paths such as static/app.js or static/*")
    full_url = re.match(r"^https?://", text, re.I)
    text = urlsplit(text).path if full_url else re.split(r"[?#]", text, maxsplit=1)[0]
    key = unquote(text).lstrip("/")
    shown = raw if len(raw) <= 80 else raw[:80] + "..."
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise UsageError(f"path {shown!r} contains a control character", hint="give the object's key as stored")
    if not key:
        raise UsageError(f"path {shown!r} names no file", hint="use --all (or '*') to purge everything")
    if len(key) > MAX_PATH:
        raise UsageError(f"path {shown!r} is longer than {MAX_PATH} characters", hint="check the path")
    if "*" in key and not (key == "*" or (key.endswith("/*") and "*" not in key[:-2])):
        raise UsageError(f"path {shown!r}: a wildcard may only be '*' alone or end a directory ('dir/*')",
                         hint="purge the directory with dir/*, or list the files")
    return key


def plan_files(paths: list[str], fold: int | None) -> tuple[list[str], dict[str, int], list[str]]:
    """Files to send, what was folded (``dir/`` -> how many paths it stands for) and what a wildcard of the same
    request already covers. Order is kept: the first batch holds what was asked first."""
    files = list(dict.fromkeys(paths))
    folded: dict[str, int] = {}
    if fold is not None:
        per_dir = Counter(p.rsplit("/", 1)[0] for p in files if "/" in p and not is_wildcard(p))
        dirs = {d for d, n in per_dir.items() if n > fold}  # root files are never folded: that would be '*'
        folded = {f"{d}/": per_dir[d] for d in sorted(dirs)}
        out: list[str] = []
        for p in files:
            d = p.rsplit("/", 1)[0] if "/" in p and not is_wildcard(p) else None
            out.append(f"{d}/*" if d in dirs else p)
        files = list(dict.fromkeys(out))
    if "*" in files:
        return ["*"], folded, [p for p in files if p != "*"]
    prefixes = [w[:-1] for w in files if is_wildcard(w)]
    kept: list[str] = []
    dropped: list[str] = []
    for p in files:
        covered = any(p.startswith(prefix) and p != prefix + "*" for prefix in prefixes)
        (dropped if covered else kept).append(p)
    return kept, folded, dropped


# -- pacing --------------------------------------------------------------------------------------------------


class Pacer:
    """DigitalOcean's two CDN limits as sliding windows of what this run sent, to know when the next call may
    go. A call is counted when its answer came back: the server counted it at some point before that."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, int]] = []
        self.files: list[tuple[float, int]] = []

    def record(self, at: float, calls: int = 1, files: int = 0) -> None:
        if calls:
            self.calls.append((at, calls))
        if files:
            self.files.append((at, files))

    def ready_at(self, files: int, now: float) -> float:
        """Earliest time a call purging ``files`` strings keeps inside both limits."""
        return max(now, _earliest(self.calls, 1, CALLS_PER_WINDOW, CALLS_WINDOW, now),
                   _earliest(self.files, files, FILES_PER_WINDOW, FILES_WINDOW, now) if files else now)

    def schedule(self, sizes: list[int], now: float) -> list[float]:
        """When each batch would go if every answer came at once: the plan and its ETA."""
        sim = Pacer()
        sim.calls, sim.files = list(self.calls), list(self.files)
        out, t = [], now
        for n in sizes:
            t = sim.ready_at(n, t)
            sim.record(t, 1, n)
            out.append(t)
        return out


def _earliest(used: list[tuple[float, int]], amount: int, limit: int, window: float, now: float) -> float:
    live = [(ts, n) for ts, n in used if ts + window + MARGIN > now]
    total = sum(n for _, n in live)
    t = now
    for ts, n in live:
        if total + amount <= limit:
            break
        total -= n
        t = max(t, ts + window + MARGIN)
    return t


# -- the origin (Spaces) -------------------------------------------------------------------------------------


@dataclass
class OriginObject:
    exists: bool
    etag: str | None = None
    last_modified: datetime | None = None
    size: int | None = None


class Origin(Protocol):
    def head(self, key: str) -> OriginObject: ...

    def sample(self, prefix: str, limit: int) -> list[str]: ...


class SpacesOrigin:
    """The endpoint's origin bucket through boto3 (clients/spaces.py)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def head(self, key: str) -> OriginObject:
        from doops.clients.spaces import head_object

        h = head_object(self.client, self.bucket, key)
        return OriginObject(h.exists, h.etag, h.last_modified, h.size)

    def sample(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` keys under ``prefix``, spread over the first page (1,000 keys) of the listing."""
        from doops.clients.spaces import list_keys

        keys = list_keys(self.client, self.bucket, prefix, 1000)
        if len(keys) <= limit:
            return keys
        step = len(keys) / limit
        return [keys[int(i * step)] for i in range(limit)]


def open_origin(platform: Platform, bucket: str, region: str) -> Origin:
    """A boto3 client for the origin bucket (no request yet): missing Spaces credentials are bad input here,
    before anything is purged."""
    from doops.clients.spaces import make_client

    return SpacesOrigin(make_client(platform.config.spaces, region), bucket)


# -- the operation -------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, platform: Platform, opts: PurgeOptions, emit: Emitter, cancel: Cancel) -> None:
        self.platform, self.opts, self.emit, self.cancel = platform, opts, emit, cancel
        self.clock = platform.clock
        self.pacer = Pacer()
        self.started = self.clock.monotonic()

    def api_calls(self) -> int:
        http = getattr(self.platform.do, "http", None)
        return int(http.stats.attempts) if http is not None else 0

    def finish(self, result: PurgeResult) -> PurgeResult:
        result.duration_seconds = round(self.clock.monotonic() - self.started, 3)
        record = {**result.to_data(), "message": result.message, "dropped": result.dropped}
        result.audit_file = str(journal.audit(OPERATION, record, platform=Identity.of(self.platform)))
        return result


def purge(platform: Platform, opts: PurgeOptions, *, confirm: Callable[[str], bool], events: EventSink = ignore,
          cancel: Cancel | None = None) -> PurgeResult:
    """Resolve the endpoint, plan batches within the limits, confirm, purge at the planned pace, verify.

    Bad input (options, paths, an unknown endpoint, missing Spaces credentials when verifying) raises
    UsageError before any purge is sent; every other ending is an outcome, audited."""
    if opts.wait_seconds <= 0:
        raise UsageError(f"--wait must be positive, not {opts.wait_seconds:g}s", hint="e.g. --wait 60s")
    if opts.fold is not None and opts.fold < 1:
        raise UsageError(f"--fold must be at least 1, not {opts.fold}", hint="e.g. --fold 20")
    candidate, paths = _split_args(opts)
    run = _Run(platform, opts, Emitter(OPERATION, events, platform.clock), cancel or Cancel())

    ep, candidate_is_path = _resolve(run, opts.endpoint, candidate)
    if candidate_is_path and candidate is not None:
        paths = [normalise_path(candidate), *paths]
    if opts.purge_all:
        paths = ["*"]
    if not paths:
        raise UsageError("no path to purge", hint="give PATH..., --from-file FILE, or --all")
    files, folded, dropped = plan_files(paths, opts.fold)
    result = PurgeResult(EndpointRef(ep.id, ep.origin, ep.endpoint, ep.custom_domain), requested=len(set(paths)),
                         folded=folded, dropped=dropped, dry_run=opts.dry_run)
    result.batches = [Batch(files[i:i + FILES_PER_WINDOW]) for i in range(0, len(files), FILES_PER_WINDOW)]
    now = run.clock.monotonic()
    times = run.pacer.schedule([len(b.files) for b in result.batches], now)
    for b, t in zip(result.batches, times, strict=True):
        b.planned_offset = round(t - times[0], 3)
    result.eta_seconds = round(times[-1] - now, 3)
    _announce_plan(run, ep, result)

    origin: Origin | None = None
    if opts.verify and not opts.dry_run:
        bucket, region = origin_of(platform, ep)
        origin = open_origin(platform, bucket, region)

    if opts.dry_run:
        run.emit("plan", f"dry run: would purge {len(files)} file string(s) in {len(result.batches)} batch(es); "
                 "nothing was sent", Level.DONE)
        return run.finish(result.end(Outcome.DRY_RUN, "dry run: nothing was purged"))
    what = ("EVERYTHING cached ('*')" if files == ["*"] else
            f"{len(files)} file string(s)" + (f" ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})"))
    question = (f"Purge {what} from CDN endpoint {ep.endpoint} (origin {ep.origin}, id {ep.id}) in "
                f"{len(result.batches)} batch(es), about {format_duration(result.eta_seconds)}?")
    if not confirm(question):
        return run.finish(result.end(Outcome.DECLINED, "declined at the confirmation; nothing was purged"))

    stopped = _send(run, ep, result)
    if stopped is not None:
        return run.finish(stopped)
    sent = len(result.files)
    if origin is None:
        run.emit("done", f"purged {sent} file string(s) from {ep.endpoint}; not verified (--no-verify)", Level.DONE)
        return run.finish(result.end(Outcome.OK, f"purged {sent} file string(s) from {ep.endpoint} (not verified)"))
    return run.finish(_verify(run, ep, origin, result))


def _split_args(opts: PurgeOptions) -> tuple[str | None, list[str]]:
    """(the argument that may name an endpoint, the paths, normalised): every path is checked before any
    request, so bad input never costs a call."""
    raw = list(opts.paths)
    candidate: str | None = None
    if opts.first_may_be_endpoint and opts.endpoint is None and raw and (opts.purge_all or len(raw) > 1):
        candidate = raw.pop(0)
    if opts.purge_all and raw:
        raise UsageError("--all purges everything: give no PATH with it", hint="drop --all, or the paths")
    return candidate, [normalise_path(p) for p in raw]


def _describe(ep: CdnEndpoint) -> str:
    extra = f", {ep.custom_domain}" if ep.custom_domain else ""
    return f"{ep.id} ({ep.origin}, {ep.endpoint}{extra})"


def _names(platform: Platform, ep: CdnEndpoint) -> set[str]:
    names = {ep.id.lower(), ep.origin.lower(), ep.endpoint.lower(), ep.origin.split(".", 1)[0].lower()}
    if ep.custom_domain:
        names.add(ep.custom_domain.lower())
    for c in platform.config.cdn:
        if c.origin == ep.origin:
            if c.bucket:
                names.add(c.bucket.lower())
            if c.endpoint_url:
                names.add(c.endpoint_url.lower().rstrip("/"))
    return names


def _resolve(run: _Run, explicit: str | None, candidate: str | None) -> tuple[CdnEndpoint, bool]:
    """The endpoint named by ``explicit`` or ``candidate``, or the only one; (endpoint, candidate is a path)."""
    platform = run.platform
    wanted = explicit or candidate
    before = run.api_calls()
    endpoints: list[CdnEndpoint] | None = None
    if wanted and _UUID.match(wanted.strip()):  # an id: one GET, however many endpoints the account holds
        try:
            endpoints = [platform.do.get_cdn_endpoint(wanted.strip().lower())]
        except ApiError as exc:
            if exc.status != 404:
                raise
    if endpoints is None:
        endpoints = platform.do.list_cdn_endpoints()
    run.pacer.record(run.clock.monotonic(), calls=max(1, run.api_calls() - before))
    listing = "; ".join(_describe(e) for e in endpoints[:10]) + (
        f"; and {len(endpoints) - 10} more" if len(endpoints) > 10 else "")
    if wanted:
        key = re.sub(r"^https?://", "", wanted.strip(), flags=re.I).rstrip("/").lower()
        found = [e for e in endpoints if key in _names(platform, e) or wanted.strip().lower() in _names(platform, e)]
        if len(found) == 1:
            run.emit("resolve", f"CDN endpoint {_describe(found[0])}", Level.OK)
            return found[0], False
        if len(found) > 1:
            raise UsageError(f"{wanted!r} names {len(found)} CDN endpoints", hint=f"give an id: {listing}")
        if explicit is None and len(endpoints) == 1:
            run.emit("resolve", f"CDN endpoint {_describe(endpoints[0])} (the only one)", Level.OK)
            return endpoints[0], True
        raise UsageError(f"unknown CDN endpoint {wanted!r}",
                         hint=f"endpoints: {listing}" if endpoints else "the account has no CDN endpoint")
    if len(endpoints) == 1:
        run.emit("resolve", f"CDN endpoint {_describe(endpoints[0])} (the only one)", Level.OK)
        return endpoints[0], False
    if not endpoints:
        raise UsageError("the account has no CDN endpoint", hint="create one for the Spaces bucket first")
    raise UsageError(f"{len(endpoints)} CDN endpoints: name one as ENDPOINT", hint=f"endpoints: {listing}")


def origin_of(platform: Platform, ep: CdnEndpoint) -> tuple[str, str]:
    """(bucket, region) behind an endpoint: the config's ``cdn[].bucket`` when set, else the origin's name
    (``learnhub-media.nyc3.digitaloceanspaces.com``); the region from ``spaces.buckets`` or the origin."""
    cfg = next((c for c in platform.config.cdn if c.origin == ep.origin), None)
    parts = ep.origin.split(".")
    bucket = (cfg.bucket if cfg and cfg.bucket else None) or parts[0]
    known = next((b for b in platform.config.spaces.buckets if b.name == bucket), None)
    region = known.region if known else (parts[1] if len(parts) > 2 else "nyc3")
    return bucket, region


def edge_base(platform: Platform, ep: CdnEndpoint) -> str:
    """Where users fetch through the CDN: the config's ``cdn[].endpoint_url`` (the sandbox's edge), else the
    custom domain, else the endpoint's hostname; as ``collect_cdn`` does."""
    cfg = next((c for c in platform.config.cdn if c.origin == ep.origin), None)
    base = (cfg.endpoint_url if cfg else None) or f"https://{ep.custom_domain or ep.endpoint}"
    return base.rstrip("/")


def _announce_plan(run: _Run, ep: CdnEndpoint, result: PurgeResult) -> None:
    files = result.files
    wildcards = [f for f in files if is_wildcard(f)]
    run.emit("plan", f"{result.requested} path(s) asked, {len(files)} file string(s) to purge"
             + (f" ({len(wildcards)} wildcard(s), each counted as one)" if wildcards else ""),
             files=len(files), batches=len(result.batches))
    for d, n in result.folded.items():
        run.emit("plan", f"folded {n} paths under {d} into {d}*: this purges everything under {d}, more than asked",
                 Level.WARN, folded=d, count=n)
    if result.dropped:
        run.emit("plan", f"{len(result.dropped)} path(s) already under a wildcard of this request: not sent "
                 f"({', '.join(result.dropped[:3])}{', ...' if len(result.dropped) > 3 else ''})")
    if files == ["*"]:
        run.emit("plan", f"'*' purges everything cached on {ep.endpoint}: the origin takes every request until "
                 "the edge fills again", Level.WARN)
    run.emit("plan", f"{len(result.batches)} batch(es) of at most {FILES_PER_WINDOW} (DigitalOcean allows "
             f"{FILES_PER_WINDOW} file strings per {FILES_WINDOW:.0f} s and {CALLS_PER_WINDOW} CDN calls per "
             f"{CALLS_WINDOW:.0f} s): ETA {format_duration(result.eta_seconds)}"
             + ("" if len(result.batches) < 20 or result.folded else "; --fold N purges dir/* instead and is faster"),
             eta_seconds=result.eta_seconds)


def _send(run: _Run, ep: CdnEndpoint, result: PurgeResult) -> PurgeResult | None:
    """Send each batch when both limits allow it; None when all were accepted, else the ending result."""
    total, done = len(result.batches), 0
    do, clock = run.platform.do, run.clock
    for n, batch in enumerate(result.batches, 1):
        while True:
            wait = run.pacer.ready_at(len(batch.files), clock.monotonic()) - clock.monotonic()
            if wait > 0:
                if wait > 2:
                    run.emit("wait", f"waiting {format_duration(wait)} for the purge limit before batch {n}/{total}",
                             seconds=round(wait, 3))
                clock.sleep(wait, run.cancel)
            if run.cancel.cancelled:
                return _interrupted(result, done)
            batch.sent_at = clock.now()
            before = run.api_calls()
            try:
                do.purge_cdn_cache(ep.id, batch.files)
            except ApiError as exc:
                run.pacer.record(clock.monotonic(), calls=max(1, run.api_calls() - before))
                if exc.status == 429 and batch.rate_limited < MAX_RATE_LIMITED:
                    batch.rate_limited += 1
                    pause = getattr(exc, "retry_after", None)
                    pause = FILES_WINDOW if pause is None else max(float(pause), 1.0)
                    run.emit("wait", f"DigitalOcean asked to wait {format_duration(pause)} (another client spends "
                             f"the same limit); then batch {n}/{total} is sent again", seconds=pause)
                    clock.sleep(pause, run.cancel)
                    continue
                batch.status = "refused"
                return _refused(run, result, n, done, exc.message, exc.status, exc.hint)
            except ApiUnreachable as exc:
                batch.status = "refused"
                return _refused(run, result, n, done, exc.message, None, exc.hint)
            run.pacer.record(clock.monotonic(), calls=max(1, run.api_calls() - before), files=len(batch.files))
            batch.status = "sent"
            done += len(batch.files)
            left = result.batches[n].planned_offset - batch.planned_offset if n < total else 0.0
            nxt = result.batches[-1].planned_offset - batch.planned_offset
            run.emit("purge", f"batch {n}/{total}: {len(batch.files)} file string(s) purged ({done}/"
                     f"{len(result.files)})" + (f", about {format_duration(nxt)} left" if n < total else ""),
                     Level.OK, batch=n, batches=total, purged=done, next_in=round(left, 3),
                     done=done, total=len(result.files))
            break
    return None


def _interrupted(result: PurgeResult, done: int) -> PurgeResult:
    for b in result.batches:
        if b.status == "planned":
            b.status, b.sent_at = "not sent", None
    return result.end(Outcome.INTERRUPTED, f"interrupted: {done} of {len(result.files)} file string(s) were purged",
                      "run the same command again: purging a path twice is harmless")


def _refused(run: _Run, result: PurgeResult, n: int, done: int, why: str, status: int | None,
             hint: str | None) -> PurgeResult:
    for b in result.batches:
        if b.status == "planned":
            b.status, b.sent_at = "not sent", None
    sent = f"{done} file string(s) were purged before it" if done else "nothing was purged"
    run.emit("purge", f"batch {n} refused: {why}", Level.FAIL)
    if status in (401, 403):
        hint = "use a token with write scope for the CDN (cdn:update)"
    return result.end(Outcome.REFUSED, f"batch {n}/{len(result.batches)} refused ({why}); {sent}", hint)


# -- verification --------------------------------------------------------------------------------------------


def _etag(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip().removeprefix("W/").strip('"') or None


def _cache_header(headers: dict[str, str]) -> str | None:
    parts = [headers[h] for h in ("x-cache",) if headers.get(h)]
    if headers.get("age"):
        parts.append(f"age {headers['age']}")
    return ", ".join(parts) or None


def _same_version(edge: dict[str, str], origin: OriginObject) -> bool:
    """ETag when both have one; else Last-Modified (to the second, as HTTP dates are) and length."""
    edge_etag = _etag(edge.get("etag"))
    if edge_etag and origin.etag:
        return edge_etag == origin.etag
    try:
        edge_time = parsedate_to_datetime(edge.get("last-modified", ""))
    except (TypeError, ValueError):
        return False
    if origin.last_modified is None or abs((edge_time - origin.last_modified).total_seconds()) >= 1:
        return False
    length = edge.get("content-length")
    return length is None or origin.size is None or int(length) == origin.size


def _check(run: _Run, origin: Origin, c: Check) -> Check:
    try:
        obj = origin.head(c.path)
    except UnknownStateError as exc:
        c.state, c.fresh, c.detail = "error", False, exc.message
        return c
    probe = run.platform.web.get_headers(c.url)
    c.origin_etag = obj.etag
    c.edge_status = probe.status
    c.edge_etag = _etag(probe.header("etag"))
    c.cache = _cache_header(probe.headers)
    if probe.status is None:
        c.state, c.fresh, c.detail = "error", False, f"the edge did not answer: {probe.error}"
    elif probe.status >= 500:
        c.state, c.fresh, c.detail = "error", False, f"the edge answered {probe.status}"
    elif not obj.exists:
        if probe.status < 400:
            c.state, c.fresh, c.detail = "stale", False, (f"deleted at the origin, still served by the edge "
                                                          f"({probe.status})")
        else:
            c.state, c.fresh, c.detail = "missing", None, f"not at the origin; the edge answers {probe.status}"
    elif probe.status >= 400:
        c.state, c.fresh, c.detail = "stale", False, f"at the origin, but the edge answers {probe.status}"
    elif _same_version(probe.headers, obj):
        c.state, c.fresh, c.detail = "fresh", True, ""
    else:
        c.state, c.fresh, c.detail = "stale", False, "the edge serves another version than the origin"
    return c


def _targets(run: _Run, ep: CdnEndpoint, origin: Origin, files: list[str]) -> list[Check]:
    base = edge_base(run.platform, ep)
    checks: list[Check] = []
    seen: set[str] = set()

    def add(path: str, sampled_from: str | None = None) -> None:
        if path not in seen:
            seen.add(path)
            checks.append(Check(path, f"{base}/{quote(path, safe='/~')}", sampled_from=sampled_from))

    for f in files:
        if not is_wildcard(f):
            add(f)
            continue
        prefix = "" if f == "*" else f[:-1]
        try:
            keys = origin.sample(prefix, SAMPLE_PER_WILDCARD)
        except UnknownStateError as exc:
            checks.append(Check(f, f"{base}/{quote(prefix, safe='/~')}", state="error", fresh=False,
                                detail=f"cannot list the origin to sample it: {exc.message}", sampled_from=f))
            continue
        if not keys:
            run.emit("verify", f"{f}: nothing under it at the origin to sample", Level.WARN)
        for k in keys:
            add(k, f)
    return checks


def _verify(run: _Run, ep: CdnEndpoint, origin: Origin, result: PurgeResult) -> PurgeResult:
    checks = _targets(run, ep, origin, result.files)
    result.verification, result.verified = checks, True
    sampled = sum(1 for c in checks if c.sampled_from)
    run.emit("verify", f"checking {len(checks)} file(s) through the CDN against the origin"
             + (f" ({sampled} sampled under wildcards)" if sampled else "")
             + f", for up to {format_duration(run.opts.wait_seconds)}")
    pool = ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="doops-cdn-verify")
    rounds = 0

    def settled() -> bool:
        nonlocal rounds
        rounds += 1
        todo = [c for c in checks if not c.settled and not is_wildcard(c.path)]  # a wildcard: its listing failed
        list(pool.map(lambda c: _check(run, origin, c), todo))
        left = [c for c in checks if not c.settled and not is_wildcard(c.path)]
        if left and rounds > 1:
            run.emit("verify", f"{len(checks) - len(left)}/{len(checks)} fresh or missing; {len(left)} not yet "
                     f"(e.g. {left[0].path}: {left[0].detail})", stale=len(left))
        return not left

    try:
        waited = wait_until(settled, timeout=run.opts.wait_seconds, clock=run.clock, cancel=run.cancel,
                            interval=0.5, max_interval=5.0)
    finally:
        pool.shutdown(wait=True)
    fresh = [c for c in checks if c.state == "fresh"]
    missing = [c for c in checks if c.state == "missing"]
    bad = [c for c in checks if not c.settled]
    for c in missing:
        run.emit("verify", f"{c.path}: {c.detail}: check the path", Level.WARN, path=c.path)
    for c in bad[:10]:
        run.emit("verify", f"{c.path}: {c.state}: {c.detail} (edge ETag {c.edge_etag or '-'}, origin "
                 f"{c.origin_etag or '-'}, cache {c.cache or '-'})", Level.FAIL, path=c.path)
    sent = len(result.files)
    if waited.cancelled or run.cancel.cancelled:
        return result.end(Outcome.INTERRUPTED, f"interrupted while verifying: {sent} file string(s) were purged, "
                          f"{len(fresh)} of {len(checks)} file(s) proven fresh")
    if bad:
        return result.end(Outcome.VERIFICATION_FAILED,
                          f"{len(bad)} of {len(checks)} file(s) still not fresh after "
                          f"{format_duration(run.opts.wait_seconds)} (e.g. {bad[0].path}: {bad[0].detail})",
                          "purged all the same; check again with a longer --wait, or see the verification table")
    note = f", {len(missing)} missing at the origin" if missing else ""
    result.end(Outcome.OK, f"purged {sent} file string(s) from {ep.endpoint}; {len(fresh)} of {len(checks)} "
               f"file(s) fresh at the edge{note}")
    run.emit("done", result.message, Level.DONE)
    return result

