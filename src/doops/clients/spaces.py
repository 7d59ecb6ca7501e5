"""Spaces (S3) I/O with boto3: reachability, lifecycle rules, bounded replica comparison."""

from __future__ import annotations

import threading
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


@dataclass
class ObjectInfo:
    etag: str
    modified: datetime


@dataclass
class Comparison:
    compared: int
    truncated: bool
    missing: list[str] = field(default_factory=list)  # older than the allowance and absent in the replica
    stale: list[str] = field(default_factory=list)  # older than the allowance, replica has another version
    in_flight: int = 0  # newer than the allowance, not yet replicated (fine)
    requests: int = 0


def list_window(
    client: Any, bucket: str, limit: int, last_key: str | None = None
) -> tuple[dict[str, ObjectInfo], bool, int]:
    """Up to ``limit`` objects in key order (paginated by 1000), stopping past ``last_key`` when given."""
    out: dict[str, ObjectInfo] = {}
    token: str | None = None
    requests = 0
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": min(1000, max(limit - len(out), 1))}
        if token:
            kwargs["ContinuationToken"] = token
        page = _call(client.list_objects_v2, f"listing {bucket}", **kwargs)
        requests += 1
        for obj in page.get("Contents") or []:
            key = obj["Key"]
            if last_key is not None and key > last_key:
                return out, False, requests
            out[key] = ObjectInfo(str(obj.get("ETag", "")), obj["LastModified"])
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return out, False, requests
        if last_key is None and len(out) >= limit:
            return out, True, requests


def compare_replica(primary: Any, bucket: str, replica: Any, replica_bucket: str, *, limit: int,
                    allowance: float, now: datetime) -> Comparison:
    """Merge-join the first ``limit`` keys of the primary with the same key range of the replica.

    Cost: ceil(limit/1000) list calls per bucket, whatever the bucket size; objects past the window are
    not compared (``truncated``).
    """
    src, truncated, n1 = list_window(primary, bucket, limit)
    last = max(src) if src else ""
    dst, _, n2 = list_window(replica, replica_bucket, limit + 1000, last_key=last) if src else ({}, False, 0)
    result = Comparison(compared=len(src), truncated=truncated, requests=n1 + n2)
    for key, info in src.items():
        age = (now - info.modified).total_seconds()
        other = dst.get(key)
        if other is not None and other.etag == info.etag:
            continue
        if age <= allowance:
            result.in_flight += 1
        elif other is None:
            result.missing.append(key)
        else:
            result.stale.append(key)
    return result
