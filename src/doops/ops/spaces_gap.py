"""`doops spaces gap`: the storage row of the recovery objectives. What a loss of the primary bucket would lose
right now: its objects the replica bucket lacks (missing) or holds an older version of (stale), their bytes,
and the oldest one's age (the storage RPO right now) against ``objectives.storage_rpo``.

Read-only: two bounded listings merge-joined (``clients.spaces.compare_replica``, the same comparison the
replication check of ``doops status spaces`` judges). Bad input raises UsageError before any request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from doops.clients import spaces
from doops.clients.spaces import Difference
from doops.config import BucketConfig
from doops.errors import UsageError
from doops.ops.seam import Cancel, Cancelled, Emitter, EventSink, Level, Outcome, ignore
from doops.platform import Platform
from doops.serialize import to_data
from doops.units import format_bytes, format_duration

OPERATION = "spaces gap"

S3Factory = Callable[[str], Any]  # region -> S3 client


@dataclass
class GapOptions:
    bucket: str | None = None  # default: the one configured bucket with a replica
    replica: str | None = None  # default: the bucket's configured replica
    prefix: str = ""
    max_objects: int | None = None  # default: the bucket's compare_limit


@dataclass
class Target:
    """The buckets to compare, resolved from the options and the config (no I/O)."""

    bucket: str
    region: str
    replica: str
    replica_region: str
    limit: int


@dataclass
class GapResult:
    bucket: str
    replica: str
    prefix: str
    rpo_target_seconds: float
    objects_checked: int = 0
    truncated: bool = False
    missing: list[Difference] = field(default_factory=list)
    stale: list[Difference] = field(default_factory=list)
    extra: list[Difference] = field(default_factory=list)
    bytes_at_risk: int = 0
    oldest_at_risk_seconds: float = 0.0
    met: bool = True
    list_requests: int = 0
    outcome: Outcome = Outcome.OK
    message: str = ""
    hint: str | None = None

    @property
    def at_risk(self) -> list[Difference]:
        return sorted(self.missing + self.stale, key=lambda d: (-d.age_seconds, d.key))

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {f: to_data(getattr(self, f)) for f in (
            "bucket", "replica", "prefix", "objects_checked", "truncated")}
        data["missing"] = [_item(d) for d in self.missing]
        data["stale"] = [_item(d, etags=True) for d in self.stale]
        data["extra"] = [_item(d) for d in self.extra]
        data.update({f: to_data(getattr(self, f)) for f in (
            "bytes_at_risk", "oldest_at_risk_seconds", "rpo_target_seconds", "met", "list_requests", "message")})
        data["outcome"] = self.outcome.value
        return data


def _item(d: Difference, etags: bool = False) -> dict[str, Any]:
    item = {"key": d.key, "size": d.size, "last_modified": to_data(d.last_modified), "age_seconds": d.age_seconds}
    if etags:
        item.update({"etag": d.etag, "replica_etag": d.replica_etag,
                     "replica_last_modified": to_data(d.replica_last_modified)})
    return item


def resolve(platform: Platform, opts: GapOptions) -> Target:
    """Which buckets, in which regions, how many objects: every option checked before any request."""
    if opts.max_objects is not None and opts.max_objects < 1:
        raise UsageError(f"--max-objects must be a positive number, not {opts.max_objects}", hint="e.g. 5000")
    buckets = platform.config.spaces.buckets
    names = ", ".join(b.name for b in buckets) or "none"
    chosen: BucketConfig | None
    if opts.bucket:
        chosen = next((b for b in buckets if b.name == opts.bucket), None)
        if chosen is None:
            raise UsageError(f"bucket {opts.bucket!r} is not in the config's spaces.buckets",
                             hint=f"configured buckets: {names}")
    else:
        with_replica = [b for b in buckets if b.replica]
        if not with_replica:
            raise UsageError("no bucket with a replica in the config (spaces.buckets[].replica)",
                             hint=f"pass BUCKET and --replica BUCKET (configured buckets: {names})")
        if len(with_replica) > 1:
            raise UsageError("several buckets have a replica: " + ", ".join(b.name for b in with_replica),
                             hint="name one: doops spaces gap BUCKET")
        chosen = with_replica[0]
    replica = opts.replica or chosen.replica
    if not replica:
        raise UsageError(f"bucket {chosen.name} has no replica in the config",
                         hint="pass --replica BUCKET, or set spaces.buckets[].replica")
    if replica == chosen.name:
        raise UsageError(f"--replica {replica} is the bucket itself", hint="name the replica bucket")
    if replica == chosen.replica:
        replica_region = chosen.replica_region or chosen.region
    else:  # another replica: its own entry's region when it has one, else the bucket's
        other = next((b for b in buckets if b.name == replica), None)
        replica_region = other.region if other is not None else chosen.region
    return Target(chosen.name, chosen.region, str(replica), replica_region, opts.max_objects or chosen.compare_limit)


def gap(platform: Platform, opts: GapOptions, *, events: EventSink = ignore, cancel: Cancel | None = None,
        s3: S3Factory | None = None) -> GapResult:
    """Compare the bucket with its replica and judge the oldest object at risk against the storage RPO.

    ``s3`` makes the S3 client of a region (tests give fakes); by default clients.spaces.make_client."""
    target = resolve(platform, opts)
    rpo = float(platform.config.objectives.storage_rpo)
    emit = Emitter(OPERATION, events, platform.clock)
    cancel = cancel or Cancel()
    make = s3 or (lambda region: spaces.make_client(platform.config.spaces, region))
    primary = make(target.region)
    replica = primary if target.replica_region == target.region else make(target.replica_region)
    result = GapResult(target.bucket, target.replica, opts.prefix, rpo)
    where = f" under {opts.prefix!r}" if opts.prefix else ""
    emit("list", f"comparing {target.bucket} ({target.region}) with {target.replica} ({target.replica_region})"
                 f"{where}, up to {target.limit} objects")
    try:
        cmp = spaces.compare_replica(primary, target.bucket, replica, target.replica, limit=target.limit,
                                     now=platform.clock.now(), prefix=opts.prefix, check=cancel.check)
    except Cancelled as exc:
        result.outcome, result.message = Outcome.INTERRUPTED, f"{exc}: nothing compared"
        return result
    at_risk = cmp.at_risk
    result.objects_checked, result.truncated, result.list_requests = cmp.compared, cmp.truncated, cmp.requests
    result.missing, result.stale, result.extra = cmp.missing, cmp.stale, cmp.extra
    result.bytes_at_risk = sum(d.size for d in at_risk)
    result.oldest_at_risk_seconds = at_risk[0].age_seconds if at_risk else 0.0
    result.met = result.oldest_at_risk_seconds <= rpo
    scope = f"{cmp.compared} objects compared" + (
        f" (the first {cmp.compared} only, up to {cmp.last_key}: raise --max-objects or narrow --prefix)"
        if cmp.truncated else "")
    extra = f"; {len(cmp.extra)} deleted at the primary, still in {target.replica}" if cmp.extra else ""
    if not at_risk:
        result.message = f"{target.replica} holds every object of {target.bucket}{where}; {scope}{extra}"
    else:
        result.message = (f"{len(at_risk)} objects ({format_bytes(result.bytes_at_risk)}) of {target.bucket} not in "
                          f"{target.replica} ({len(cmp.missing)} missing, {len(cmp.stale)} stale), the oldest "
                          f"written {format_duration(result.oldest_at_risk_seconds)} ago: "
                          + ("within" if result.met else "beyond")
                          + f" the storage RPO of {format_duration(rpo)}; {scope}{extra}")
    if result.met:
        emit("done", result.message, Level.OK if not cmp.truncated else Level.WARN)
        return result
    # no event: the CLI prints the message of an outcome that is not ok as the error line
    result.outcome = Outcome.OBJECTIVE_MISSED
    result.hint = f"is replication to {target.replica} running? the oldest missing: {at_risk[0].key}"
    return result
