"""Spaces and CDN checks: buckets, lifecycle, replication, CDN origin and cache policy."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from doops.clients import spaces
from doops.config import BucketConfig, CdnConfig
from doops.ops.status.engine import Runner, Verdict
from doops.ops.status.model import CheckResult, Status
from doops.units import format_duration

OK, WARN, CRIT, UNKNOWN = Status.OK, Status.WARN, Status.CRIT, Status.UNKNOWN


def collect_spaces(r: Runner) -> list[CheckResult]:
    cfg = r.app.config.spaces
    if not cfg.buckets:
        return [r.verdict("spaces", "*", "configured", Status.SKIPPED,
                          "not configured (no spaces.buckets in the config): not checked")]
    jobs: list[Any] = []
    for b in cfg.buckets:
        jobs.append(("spaces", b.name, "reachable", partial(_reachable, r, b.name, b.region)))
        if b.lifecycle_prefixes:
            jobs.append(("spaces", b.name, "lifecycle", partial(_lifecycle, r, b)))
        if b.replica:
            jobs.append(("spaces", b.replica, "reachable",
                         partial(_reachable, r, str(b.replica), b.replica_region or b.region)))
            jobs.append(("spaces", b.name, "replication", partial(_replication, r, b)))
    return r.fan_out(jobs)


def _client(r: Runner, region: str) -> Any:
    def make() -> Any:
        r.need("boto3")
        return spaces.make_client(r.app.config.spaces, region)

    return r.shared(f"s3:{region}", make)


def _reachable(r: Runner, bucket: str, region: str) -> Verdict:
    spaces.head_bucket(_client(r, region), bucket)
    return OK, f"reachable in {region}", {"region": region}


def _lifecycle(r: Runner, b: BucketConfig) -> Verdict:
    have = spaces.lifecycle_prefixes(_client(r, b.region), b.name)
    missing = [p for p in b.lifecycle_prefixes if p not in have]
    if missing:
        return WARN, "no lifecycle rule on " + ", ".join(missing), {"rules": have}
    return OK, "lifecycle rules on " + ", ".join(b.lifecycle_prefixes), {"rules": have}


def _replication(r: Runner, b: BucketConfig) -> Verdict:
    """The comparison of ``doops spaces gap`` (one merge-join, clients.spaces.compare_replica), judged against
    the bucket's replication allowance: what is missing or stale for longer is data at risk."""
    cmp = spaces.compare_replica(_client(r, b.region), b.name, _client(r, b.replica_region or b.region),
                                 str(b.replica), limit=b.compare_limit, now=r.now)
    allowance = float(b.replication_allowance)
    missing = [d.key for d in cmp.missing if d.age_seconds > allowance]
    stale = [d.key for d in cmp.stale if d.age_seconds > allowance]
    in_flight = len(cmp.missing) + len(cmp.stale) - len(missing) - len(stale)
    at_risk = cmp.at_risk
    details = {"compared": cmp.compared, "truncated": cmp.truncated, "missing": missing[:20],
               "stale": stale[:20], "in_flight": in_flight, "extra": [d.key for d in cmp.extra][:20],
               "bytes_at_risk": sum(d.size for d in at_risk),
               "oldest_at_risk_seconds": at_risk[0].age_seconds if at_risk else 0.0,
               "allowance_seconds": b.replication_allowance, "list_requests": cmp.requests}
    scope = f"{cmp.compared} objects" + (" (first window only)" if cmp.truncated else "")
    if missing or stale:
        return (CRIT, f"{len(missing)} missing and {len(stale)} stale in {b.replica} older than "
                      f"{format_duration(allowance)} (data at risk); compared {scope}", details)
    return OK, f"{b.replica} in sync for {scope}, {in_flight} in flight", details


MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)


def collect_cdn(r: Runner) -> list[CheckResult]:
    try:
        endpoints = r.app.do.list_cdn_endpoints()
    except Exception as exc:
        return [r.failed("cdn", "*", "list", exc)]
    by_origin = {e.origin: e for e in endpoints}
    cfgs = r.app.config.cdn or [CdnConfig(origin=e.origin) for e in endpoints]
    jobs: list[Any] = []
    for c in cfgs:
        ep = by_origin.get(c.origin)
        jobs.append(("cdn", c.origin, "endpoint", partial(_endpoint, c, ep)))
        if ep is not None:
            base = c.endpoint_url or f"https://{ep.custom_domain or ep.endpoint}"
            for path in c.sample_paths:
                jobs.append(("cdn", f"{c.origin}/{path}", "cache-control", partial(_cache_control, r, c, base, path)))
    return r.fan_out(jobs)


def _endpoint(c: CdnConfig, ep: Any) -> Verdict:
    if ep is None:
        return CRIT, f"no CDN endpoint for origin {c.origin}", {}
    details = {"id": ep.id, "endpoint": ep.endpoint, "ttl": ep.ttl}
    if c.bucket and not c.origin.startswith(c.bucket + "."):
        return CRIT, f"origin {c.origin} is not bucket {c.bucket}", details
    return OK, f"endpoint {ep.endpoint} (ttl {ep.ttl}s)", details


def _cache_control(r: Runner, c: CdnConfig, base: str, path: str) -> Verdict:
    url = f"{base.rstrip('/')}/{path.lstrip('/')}"
    resp = r.app.web.head(url)
    if resp.status is None:
        return UNKNOWN, f"{url}: {resp.error}", {"url": url}
    cc = resp.header("cache-control")
    details = {"url": url, "status": resp.status, "cache_control": cc, "x_cache": resp.header("x-cache") or None}
    if resp.status >= 400:
        return WARN, f"{url} answered {resp.status}", details
    policy = next((p for p in sorted(c.cache_policy, key=lambda p: -len(p.prefix)) if path.startswith(p.prefix)), None)
    if policy is None:
        return OK, f"Cache-Control: {cc or '-'} (no policy for this path)", details
    m = MAX_AGE.search(cc)
    got = int(m.group(1)) if m else None
    want = int(policy.max_age)
    details["expected_max_age"] = want
    if got != want:
        return WARN, f"max-age {got}, policy wants {want} for {policy.prefix}", details
    return OK, f"max-age {got} as the policy for {policy.prefix} asks", details
