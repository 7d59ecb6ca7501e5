"""Spaces twin: a real S3-protocol server (moto) on loopback, seeded with learnhub course content.

Why moto's ThreadedMotoServer: it speaks the S3 wire protocol well enough for boto3 (buckets, objects,
Cache-Control, lifecycle rules, copy) and runs as a thread inside the sandbox supervisor.

Caveats that matter to callers:
- moto keeps its backends in process-global state: two SpacesTwin instances in one process share buckets.
  ``stop()`` therefore deletes the buckets it created, so a later twin in the same process starts clean;
  run one twin per process at a time.
- moto accepts any credentials; access_key/secret_key are used by the clients but not enforced.
- Lifecycle rules are stored and readable, but moto never expires objects.
- Bucket policies, ACLs (bucket and object), CORS rules and versioning are stored and read back as S3 does
  (GetBucketPolicy, GetBucketAcl, GetObjectAcl, GetBucketCors, GetBucketVersioning), but moto enforces none of
  them: an anonymous GET works on a private bucket too, and every answer carries
  ``Access-Control-Allow-Origin: *`` whatever the CORS rules say. Judge a bucket by what the Get calls return.
- By default both buckets are private (owner FULL_CONTROL only, no policy, no CORS rules) and versioned
  (``VERSIONED``: a deleted or overwritten upload can be recovered; replication needs it on both sides).

Cross-region replication is emulated by ``SpacesReplicator``: a thread polling both buckets
(list_objects_v2, paginated) and copying new/changed objects after ``delay`` seconds. Deletes ARE
replicated by default (``replicate_deletes=True``) so that the replica mirrors the primary; pass False to
keep deleted objects in the replica (the AWS-CRR default behaviour).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

log = logging.getLogger(__name__)

PRIMARY_BUCKET = "learnhub-media"
PRIMARY_REGION = "nyc3"
REPLICA_BUCKET = "learnhub-media-ams3"
REPLICA_REGION = "ams3"

CACHE_STATIC = "public, max-age=31536000, immutable"
CACHE_API = "public, max-age=300"
CACHE_MEDIA = "public, max-age=86400"

VERSIONED = (PRIMARY_BUCKET, REPLICA_BUCKET)  # versioning Enabled at start (see the module docstring)

UPLOADS_LIFECYCLE_RULE: dict[str, Any] = {
    "ID": "expire-uploads",
    "Filter": {"Prefix": "uploads/"},
    "Status": "Enabled",
    "Expiration": {"Days": 30},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
}


@dataclass(frozen=True)
class SeedObject:
    """One object of the default scenario's course content."""

    key: str
    body: bytes
    content_type: str
    cache_control: str | None = None


SEED_OBJECTS: tuple[SeedObject, ...] = (
    SeedObject("videos/intro-to-python/lesson-01.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2048,
               "video/mp4", CACHE_MEDIA),
    SeedObject("videos/intro-to-python/lesson-02.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 2048,
               "video/mp4", CACHE_MEDIA),
    SeedObject("videos/data-science-101/lesson-01.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x02" * 2048,
               "video/mp4", CACHE_MEDIA),
    SeedObject("pdfs/intro-to-python/syllabus.pdf", b"%PDF-1.4\n% learnhub syllabus\n%%EOF\n",
               "application/pdf", CACHE_MEDIA),
    SeedObject("pdfs/data-science-101/handout-01.pdf", b"%PDF-1.4\n% learnhub handout\n%%EOF\n",
               "application/pdf", CACHE_MEDIA),
    SeedObject("static/app.css", b"body{font-family:sans-serif}\n", "text/css", CACHE_STATIC),
    SeedObject("static/app.js", b"console.log('learnhub');\n", "application/javascript", CACHE_STATIC),
    SeedObject("static/logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>\n", "image/svg+xml",
               CACHE_STATIC),
    SeedObject("api/courses.json", b'{"courses":["intro-to-python","data-science-101"]}',
               "application/json", CACHE_API),
    SeedObject("api/catalog.json", b'{"catalog":{"count":2}}', "application/json", CACHE_API),
    SeedObject("uploads/user-1001/avatar.png", b"\x89PNG\r\n\x1a\nlearnhub-avatar", "image/png"),
    SeedObject("uploads/user-1002/assignment-01.pdf", b"%PDF-1.4\n% assignment\n%%EOF\n",
               "application/pdf"),
)


def s3_client(endpoint_url: str, access_key: str, secret_key: str, region: str = PRIMARY_REGION) -> Any:
    """Build a path-style boto3 S3 client for a loopback endpoint (virtual-host style needs DNS)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
                      connect_timeout=5, read_timeout=30),
    )


def list_all_objects(client: Any, bucket: str) -> dict[str, str]:
    """Return {key: etag} for every object of a bucket, following list_objects_v2 pagination."""
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["ETag"]
    return out


def _all_versions(client: Any, bucket: str) -> list[dict[str, str]]:
    """Every object version and delete marker of a bucket, as delete_objects takes them."""
    out: list[dict[str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            out.append({"Key": v["Key"], "VersionId": v["VersionId"]})
    return out


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class ReplicationLag:
    """Snapshot of the replicator: what is still pending and for how long (drives 'replica behind')."""

    source: str
    destination: str
    paused: bool
    delay_seconds: float
    replicate_deletes: bool
    pending_copies: int
    pending_deletes: int
    oldest_pending_seconds: float
    replicated_objects: int
    replicated_deletes: int
    errors: int
    last_error: str | None
    last_poll_at: str | None
    last_replicated_at: str | None
    pending_keys: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        """True when nothing is waiting to be copied or deleted."""
        return self.pending_copies == 0 and self.pending_deletes == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for the API twin and `doops` output)."""
        d = asdict(self)
        d["in_sync"] = self.in_sync
        return d


class SpacesReplicator:
    """Background thread replicating source -> destination bucket with a delay, like async CRR."""

    def __init__(
        self,
        client: Any,
        source: str,
        destination: str,
        *,
        delay: float = 2.0,
        poll_interval: float = 0.25,
        replicate_deletes: bool = True,
    ) -> None:
        self._client = client
        self.source = source
        self.destination = destination
        self.delay = delay
        self.poll_interval = poll_interval
        self.replicate_deletes = replicate_deletes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        # key -> (action, first_seen_monotonic, source_etag or "")
        self._pending: dict[str, tuple[str, float, str]] = {}
        self._copied: dict[str, str] = {}  # key -> source etag last copied
        self._replicated = 0
        self._deleted = 0
        self._errors = 0
        self._last_error: str | None = None
        self._last_poll: float | None = None
        self._last_replicated: float | None = None

    def start(self) -> None:
        """Start polling; idempotent."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"spaces-replicator-{self.source}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one in-flight tick)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def pause(self) -> None:
        """Stop copying (changes are still observed, so lag keeps growing) — drills 'replication broken'."""
        with self._lock:
            self._paused = True
        log.info("replication %s -> %s paused", self.source, self.destination)

    def resume(self) -> None:
        """Resume copying; everything overdue is copied on the next poll."""
        with self._lock:
            self._paused = False
        log.info("replication %s -> %s resumed", self.source, self.destination)

    @property
    def paused(self) -> bool:
        """Whether copying is paused."""
        with self._lock:
            return self._paused

    def replication_lag(self) -> ReplicationLag:
        """Summary of pending work as of the last poll."""
        now = time.monotonic()
        with self._lock:
            copies = [k for k, (a, _, _) in self._pending.items() if a == "copy"]
            deletes = [k for k, (a, _, _) in self._pending.items() if a == "delete"]
            oldest = max((now - first for _, first, _ in self._pending.values()), default=0.0)
            return ReplicationLag(
                source=self.source, destination=self.destination, paused=self._paused,
                delay_seconds=self.delay, replicate_deletes=self.replicate_deletes,
                pending_copies=len(copies), pending_deletes=len(deletes),
                oldest_pending_seconds=round(oldest, 3), replicated_objects=self._replicated,
                replicated_deletes=self._deleted, errors=self._errors, last_error=self._last_error,
                last_poll_at=_iso(self._last_poll), last_replicated_at=_iso(self._last_replicated),
                pending_keys=sorted(copies + deletes),
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:  # the server may be going away; keep the thread alive
                with self._lock:
                    self._errors += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                log.warning("replication poll failed: %s", exc)
            self._stop.wait(self.poll_interval)

    def _tick(self) -> None:
        src = list_all_objects(self._client, self.source)
        dst = list_all_objects(self._client, self.destination)
        now = time.monotonic()
        wanted: dict[str, tuple[str, str]] = {}
        for key, etag in src.items():
            if key in dst and (dst[key] == etag or self._copied.get(key) == etag):
                continue
            wanted[key] = ("copy", etag)
        if self.replicate_deletes:
            for key in dst.keys() - src.keys():
                wanted[key] = ("delete", "")
        with self._lock:
            self._pending = {
                k: (action, self._pending[k][1] if k in self._pending else now, etag)
                for k, (action, etag) in wanted.items()
            }
            self._last_poll = time.time()
            if self._paused:
                return
            due = [(k, a, e) for k, (a, first, e) in self._pending.items() if now - first >= self.delay]
        for key, action, etag in due:
            if self._stop.is_set():
                return
            try:
                if action == "copy":
                    self._client.copy_object(Bucket=self.destination, Key=key,
                                             CopySource={"Bucket": self.source, "Key": key},
                                             MetadataDirective="COPY")
                else:
                    self._client.delete_object(Bucket=self.destination, Key=key)
            except Exception as exc:
                with self._lock:
                    self._errors += 1
                    self._last_error = f"{action} {key}: {type(exc).__name__}: {exc}"
                log.warning("replication %s of %s failed: %s", action, key, exc)
                continue
            with self._lock:
                self._pending.pop(key, None)
                if action == "copy":
                    self._copied[key] = etag
                    self._replicated += 1
                else:
                    self._copied.pop(key, None)
                    self._deleted += 1
                self._last_replicated = time.time()


class SpacesTwin:
    """moto S3 server on 127.0.0.1 seeded with the learnhub buckets, plus the ams3 replicator."""

    buckets: dict[str, str] = {PRIMARY_BUCKET: PRIMARY_REGION, REPLICA_BUCKET: REPLICA_REGION}

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        replication_delay: float = 2.0,
        poll_interval: float = 0.25,
        replicate_deletes: bool = True,
        seed: bool = True,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.seed = seed
        self._replication_kw: dict[str, Any] = {"delay": replication_delay, "poll_interval": poll_interval,
                                                "replicate_deletes": replicate_deletes}
        self._server: Any = None
        self._endpoint: str | None = None
        self.replicator: SpacesReplicator | None = None
        self.start_seconds: float | None = None

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:<port> of the S3 server."""
        if self._endpoint is None:
            raise RuntimeError("SpacesTwin not started")
        return self._endpoint

    def client(self, region: str = PRIMARY_REGION) -> Any:
        """A boto3 S3 client for this server (one per region: bucket creation checks the region)."""
        return s3_client(self.endpoint_url, self.access_key, self.secret_key, region)

    def start(self) -> SpacesTwin:
        """Start the server, create and seed the buckets, start replication. Returns self."""
        from moto.server import ThreadedMotoServer  # heavy import (~0.4 s): only when used

        t0 = time.monotonic()
        wz = logging.getLogger("werkzeug")
        if wz.level == logging.NOTSET:  # werkzeug otherwise logs every request to stderr
            wz.setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint = f"http://{host}:{port}"
        try:
            for bucket, region in self.buckets.items():
                self._create_bucket(bucket, region)
                if bucket in VERSIONED:
                    self.client(region).put_bucket_versioning(
                        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            if self.seed:
                self.seed_content()
            self.replicator = SpacesReplicator(self.client(), PRIMARY_BUCKET, REPLICA_BUCKET,
                                               **self._replication_kw)
            self.replicator.start()
        except Exception:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        log.info("spaces twin on %s (started in %.2fs)", self._endpoint, self.start_seconds)
        return self

    def _create_bucket(self, bucket: str, region: str) -> None:
        c = self.client(region)
        try:
            c.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        except c.exceptions.BucketAlreadyOwnedByYou:
            log.warning("bucket %s already exists in this process's moto state; reusing it", bucket)

    def seed_content(self) -> None:
        """Put the course content in both buckets (replica starts in sync) and the uploads/ lifecycle rule."""
        for bucket, region in self.buckets.items():
            c = self.client(region)
            for obj in SEED_OBJECTS:
                kw: dict[str, Any] = {"Bucket": bucket, "Key": obj.key, "Body": obj.body,
                                      "ContentType": obj.content_type}
                if obj.cache_control:
                    kw["CacheControl"] = obj.cache_control
                c.put_object(**kw)
        self.client().put_bucket_lifecycle_configuration(
            Bucket=PRIMARY_BUCKET, LifecycleConfiguration={"Rules": [UPLOADS_LIFECYCLE_RULE]})

    def stop(self) -> None:
        """Stop replication, drop our buckets from moto's global state, stop the server (port closed)."""
        if self.replicator is not None:
            self.replicator.stop()
            self.replicator = None
        if self._server is None:
            return
        if self._endpoint is not None:
            for bucket, region in self.buckets.items():
                try:
                    c = self.client(region)
                    objects = _all_versions(c, bucket)  # a versioned bucket is empty only without versions
                    for i in range(0, len(objects), 1000):
                        c.delete_objects(Bucket=bucket, Delete={"Objects": objects[i:i + 1000]})
                    c.delete_bucket(Bucket=bucket)
                except Exception as exc:
                    log.debug("cleanup of bucket %s skipped: %s", bucket, exc)
        self._server.stop()
        self._server = None
        self._endpoint = None

    def __enter__(self) -> SpacesTwin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
