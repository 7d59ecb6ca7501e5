"""Spaces (S3) I/O with boto3: reachability, lifecycle rules, the bounded replica comparison, HEAD."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops import masking
from doops.config import SpacesConfig
from doops.errors import ConfigError, UnknownStateError

_session: Any = None
_session_lock = threading.Lock()


def endpoint_for(cfg: SpacesConfig, region: str) -> str:
    return cfg.endpoint(region)


def make_client(cfg: SpacesConfig, region: str) -> Any:
    """A boto3 S3 client for one region; credentials come from the env vars the config names.

    Clients come from one boto3 session per process, made one at a time: boto3 sessions are not thread safe,
    and ``boto3.client`` called from two threads at once can make two default sessions, each scanning
    botocore's data directory and parsing the S3 model again (a quarter of a second of CPU on a cold start).
    The session holds no credentials: each client gets its own.
    """
    key, secret = cfg.credentials()
    if not key or not secret:
        raise ConfigError(
            f"Spaces credentials missing: set {cfg.access_key_env} and {cfg.secret_key_env}",
            hint="create a Spaces key in the control panel, or source the sandbox's env.sh",
        )
    masking.register(secret)
    import boto3.session
    from botocore.config import Config as BotoConfig

    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
            "s3", endpoint_url=endpoint_for(cfg, region), region_name=region,
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=BotoConfig(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"},
                              s3={"addressing_style": "path"}),
        )


def _call(fn: Any, what: str, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise UnknownStateError(f"{what}: {err.get('Code', '?')} {err.get('Message', '')}".strip()) from None
    except BotoCoreError as exc:
        raise UnknownStateError(f"{what}: {masking.mask(str(exc))}") from None


def head_bucket(client: Any, bucket: str) -> None:
    _call(client.head_bucket, f"bucket {bucket} not reachable", Bucket=bucket)


def lifecycle_prefixes(client: Any, bucket: str) -> list[str]:
    """Prefixes with an enabled lifecycle rule ([] when the bucket has none)."""
    from botocore.exceptions import ClientError

    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules") or []
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return []
        raise UnknownStateError(f"lifecycle rules of {bucket}: {exc.response.get('Error', {}).get('Code')}") from None
    out = []
    for r in rules:
        if r.get("Status") != "Enabled":
            continue
        prefix = r.get("Prefix")
        if prefix is None:
            prefix = (r.get("Filter") or {}).get("Prefix", "")
        out.append(str(prefix))
    return out


PAGE = 1000  # the most objects one ListObjectsV2 call returns


@dataclass(frozen=True)
class Listed:
    """One object as a bucket listing shows it."""

    key: str
    etag: str  # without quotes
    size: int
    modified: datetime


@dataclass
class Difference:
    """One object the replica does not match. For ``missing`` and ``stale`` the size, time and age are the
    primary's version (the data at risk, and since when); for ``extra`` they are the replica's copy."""

    key: str
    size: int
    last_modified: datetime
    age_seconds: float
    etag: str | None = None  # stale: the primary's
    replica_etag: str | None = None  # stale: the replica's
    replica_last_modified: datetime | None = None  # stale: when the replica's copy was written


@dataclass
class Comparison:
    """A merge-join of a primary bucket with its replica over one key range: what the replica lacks."""

    compared: int  # objects of the primary compared
    truncated: bool  # the bound was reached before the end of the listing: keys past the range not compared
    missing: list[Difference] = field(default_factory=list)  # in the primary, not in the replica
    stale: list[Difference] = field(default_factory=list)  # in both, the replica's copy another, older version
    extra: list[Difference] = field(default_factory=list)  # in the replica only: a deletion not replicated yet
    requests: int = 0
    last_key: str | None = None  # the last key of the compared range

    @property
    def at_risk(self) -> list[Difference]:
        """What a loss of the primary would lose now, oldest first."""
        return sorted(self.missing + self.stale, key=lambda d: (-d.age_seconds, d.key))

    def older_than(self, seconds: float) -> list[Difference]:
        return [d for d in self.at_risk if d.age_seconds > seconds]


class _Listing:
    """A bucket's objects in key order, fetched a page at a time as the merge-join reaches them, at most
    ``limit`` of them; ``cut`` says the bound stopped it with more objects left."""

    def __init__(self, client: Any, bucket: str, prefix: str, limit: int, check: Callable[[], None]) -> None:
        self.client, self.bucket, self.prefix, self.limit, self.check = client, bucket, prefix, limit, check
        self.buffer: deque[Listed] = deque()
        self.token: str | None = None
        self.more = True
        self.count = 0
        self.requests = 0
        self.cut = False

    def peek(self) -> Listed | None:
        while not self.buffer and self.more:
            if self.count >= self.limit:
                self.cut = True
                return None
            self._fetch()
        return self.buffer[0] if self.buffer else None

    def pop(self) -> Listed:
        return self.buffer.popleft()

    def _fetch(self) -> None:
        self.check()
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": min(PAGE, self.limit - self.count)}
        if self.prefix:
            kwargs["Prefix"] = self.prefix
        if self.token:
            kwargs["ContinuationToken"] = self.token
        page = _call(self.client.list_objects_v2, f"listing {self.bucket}", **kwargs)
        self.requests += 1
        objects = page.get("Contents") or []
        self.count += len(objects)
        self.buffer.extend(Listed(str(o["Key"]), str(o.get("ETag") or "").strip('"'), int(o.get("Size") or 0),
                                  o["LastModified"]) for o in objects)
        self.token = page.get("NextContinuationToken")
        self.more = bool(page.get("IsTruncated") and self.token)


def _age(now: datetime, then: datetime) -> float:
    return max(0.0, round((now - then).total_seconds(), 3))  # a server clock a little ahead is not negative


def compare_replica(primary: Any, bucket: str, replica: Any, replica_bucket: str, *, limit: int, now: datetime,
                    prefix: str = "", check: Callable[[], None] | None = None) -> Comparison:
    """Merge-join the first ``limit`` keys of the primary (under ``prefix``) with the same key range of the
    replica, both listed in key order a page (1,000) at a time as the join reaches them.

    The one comparison behind ``doops spaces gap`` and the replication check of ``doops status spaces``.
    Cost: about ceil(limit/1000) list calls per bucket, whatever the bucket size. The replica may list up to
    a page more than ``limit`` (its extras); when either bound is reached first, the range ends at the last
    key both listings covered and ``truncated`` is set. Stale: another ETag *and* a replica copy older than
    the primary's version; a copy written after the version (a multipart object copied whole gets another
    ETag) holds that version. ``check`` runs before each list call (a cancel point).
    """
    src = _Listing(primary, bucket, prefix, limit, check or (lambda: None))
    dst = _Listing(replica, replica_bucket, prefix, limit + PAGE, check or (lambda: None))
    out = Comparison(compared=0, truncated=False)
    while True:
        a, b = src.peek(), dst.peek()
        if src.cut or dst.cut:
            out.truncated = True
            break
        if a is None and b is None:
            break
        if b is None or (a is not None and a.key < b.key):
            assert a is not None
            src.pop()
            out.compared += 1
            out.last_key = a.key
            out.missing.append(Difference(a.key, a.size, a.modified, _age(now, a.modified)))
        elif a is None or b.key < a.key:
            dst.pop()
            out.extra.append(Difference(b.key, b.size, b.modified, _age(now, b.modified)))
        else:
            src.pop()
            dst.pop()
            out.compared += 1
            out.last_key = a.key
            if a.etag != b.etag and b.modified < a.modified:
                out.stale.append(Difference(a.key, a.size, a.modified, _age(now, a.modified), a.etag, b.etag,
                                            b.modified))
    out.requests = src.requests + dst.requests
    return out


@dataclass
class ObjectHead:
    """What the origin says of one object: what a CDN copy must match to be fresh."""

    key: str
    exists: bool
    etag: str | None = None  # without quotes
    last_modified: datetime | None = None
    size: int | None = None


def head_object(client: Any, bucket: str, key: str) -> ObjectHead:
    """HEAD one object; a missing one is an answer (``exists=False``), not an error."""
    from botocore.exceptions import ClientError

    try:
        resp = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return ObjectHead(key, False)
        raise UnknownStateError(f"HEAD {bucket}/{key}: {code}") from None
    except Exception as exc:  # BotoCoreError: connection refused, timeout
        from botocore.exceptions import BotoCoreError

        if isinstance(exc, BotoCoreError):
            raise UnknownStateError(f"HEAD {bucket}/{key}: {masking.mask(str(exc))}") from None
        raise
    etag = str(resp.get("ETag") or "").strip('"') or None
    return ObjectHead(key, True, etag, resp.get("LastModified"), resp.get("ContentLength"))


def list_keys(client: Any, bucket: str, prefix: str, limit: int) -> list[str]:
    """The first ``limit`` object keys under ``prefix`` (at most one page: 1,000), folder markers left out."""
    page = _call(client.list_objects_v2, f"listing {bucket}/{prefix}*", Bucket=bucket, Prefix=prefix,
                 MaxKeys=max(1, min(limit, 1000)))
    return [str(o["Key"]) for o in page.get("Contents") or [] if not str(o["Key"]).endswith("/")]


def list_prefix(client: Any, bucket: str, prefix: str, limit: int) -> tuple[list[str], bool]:
    """Every key under ``prefix`` (folder markers included: they are objects too), at most ``limit``; the flag
    says more were left. Pages of 1,000, as the listing gives them."""
    keys: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": min(PAGE, limit - len(keys) + 1)}
        if token:
            kwargs["ContinuationToken"] = token
        page = _call(client.list_objects_v2, f"listing {bucket}/{prefix}*", **kwargs)
        keys.extend(str(o["Key"]) for o in page.get("Contents") or [])
        token = page.get("NextContinuationToken")
        if len(keys) > limit:
            return keys[:limit], True
        if not (page.get("IsTruncated") and token):
            return keys, False


@dataclass
class Put:
    """What Spaces answered to a PUT: the new version's ETag (no quotes)."""

    etag: str | None
    version_id: str | None = None


def put_object(client: Any, bucket: str, key: str, body: bytes, *, content_type: str | None = None,
               cache_control: str | None = None) -> Put:
    """One PUT of a whole object (no multipart: runbook canaries and release files are small)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
    if content_type:
        kwargs["ContentType"] = content_type
    if cache_control:
        kwargs["CacheControl"] = cache_control
    resp = _call(client.put_object, f"PUT {bucket}/{key}", **kwargs)
    return Put(str(resp.get("ETag") or "").strip('"') or None, resp.get("VersionId"))


DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes


def delete_objects(client: Any, bucket: str, keys: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Delete ``keys`` with DeleteObjects, 1,000 a call: (keys deleted, [(key, error)] refused). S3 reports a
    key that was not there as deleted: a delete is idempotent."""
    deleted: list[str] = []
    errors: list[tuple[str, str]] = []
    for i in range(0, len(keys), DELETE_BATCH):
        batch = keys[i:i + DELETE_BATCH]
        resp = _call(client.delete_objects, f"DELETE {len(batch)} object(s) of {bucket}", Bucket=bucket,
                     Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False})
        deleted.extend(str(d["Key"]) for d in resp.get("Deleted") or [])
        errors.extend((str(e.get("Key")), f"{e.get('Code', '?')} {e.get('Message', '')}".strip())
                      for e in resp.get("Errors") or [])
    return deleted, errors


# `doops assess`: who may read a bucket, from where, and whether deletions can be undone. Reads only.

PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


def _absent(fn: Any, what: str, absent_codes: tuple[str, ...], **kwargs: Any) -> Any:
    """One S3 read where "not set" is an answer (NoSuchBucketPolicy, NoSuchCORSConfiguration): None then."""
    from botocore.exceptions import ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in absent_codes:
            return None
        raise UnknownStateError(f"{what}: {code} {exc.response.get('Error', {}).get('Message', '')}".strip()) from None


def bucket_policy(client: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket policy as a document (None: the bucket has none)."""
    import json

    got = _absent(client.get_bucket_policy, f"policy of {bucket}", ("NoSuchBucketPolicy",), Bucket=bucket)
    if got is None:
        return None
    try:
        doc = json.loads(got.get("Policy") or "{}")
    except ValueError:
        raise UnknownStateError(f"policy of {bucket} is not JSON") from None
    return doc if isinstance(doc, dict) else None


def acl_public(grants: list[dict[str, Any]]) -> list[str]:
    """The permissions an ACL gives to everyone (AllUsers) or to any signed-in account (AuthenticatedUsers)."""
    out = []
    for g in grants:
        uri = str((g.get("Grantee") or {}).get("URI") or "")
        if uri in PUBLIC_GRANTEES:
            out.append(f"{uri.rsplit('/', 1)[-1]}:{g.get('Permission')}")
    return out


def bucket_acl_public(client: Any, bucket: str) -> list[str]:
    """What the bucket's ACL grants the public (``AllUsers:READ`` makes it listable by anyone)."""
    acl = _call(client.get_bucket_acl, f"ACL of {bucket}", Bucket=bucket)
    return acl_public(acl.get("Grants") or [])


def object_acl_public(client: Any, bucket: str, key: str) -> list[str]:
    acl = _call(client.get_object_acl, f"ACL of {bucket}/{key}", Bucket=bucket, Key=key)
    return acl_public(acl.get("Grants") or [])


def bucket_cors(client: Any, bucket: str) -> list[dict[str, Any]]:
    """The bucket's CORS rules ([] when it has none)."""
    got = _absent(client.get_bucket_cors, f"CORS of {bucket}", ("NoSuchCORSConfiguration",), Bucket=bucket)
    return list((got or {}).get("CORSRules") or [])


def bucket_versioning(client: Any, bucket: str) -> str:
    """``Enabled``, ``Suspended`` or ``""`` (never enabled)."""
    return str(_call(client.get_bucket_versioning, f"versioning of {bucket}", Bucket=bucket).get("Status") or "")
