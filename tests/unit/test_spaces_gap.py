"""`doops spaces gap` on a fake S3 client: missing, stale and extra objects, bytes and the oldest age on a fake
clock, the objective, pagination and its bound, bad input before any request, and `doops status spaces`
judging the same comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from doops.clients import spaces
from doops.errors import UnknownStateError, UsageError
from doops.ops.seam import Cancel, FakeClock, Outcome, RecordingSink
from doops.ops.spaces_gap import GapOptions, gap
from doops.platform import Platform
from tests.helpers import run_doops

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
CONFIG = """\
objectives:
  storage_rpo: 60s
spaces:
  buckets:
  - name: media
    region: nyc3
    replica: media-ams3
    replica_region: ams3
    replication_allowance: 5s
  - name: logs
    region: nyc3
"""


class FakeS3:
    """list_objects_v2 over in-memory buckets, paginated like S3 (key order, MaxKeys, continuation tokens)."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, dict[str, Any]]] = {"media": {}, "media-ams3": {}, "logs": {}}
        self.calls: list[dict[str, Any]] = []

    def put(self, bucket: str, key: str, *, etag: str = "e1", size: int = 10, at: datetime = NOW) -> None:
        self.buckets[bucket][key] = {"Key": key, "ETag": f'"{etag}"', "Size": size, "LastModified": at}

    def list_objects_v2(self, *, Bucket: str, MaxKeys: int = 1000, Prefix: str = "",
                        ContinuationToken: str | None = None) -> dict[str, Any]:
        assert 1 <= MaxKeys <= 1000
        self.calls.append({"Bucket": Bucket, "MaxKeys": MaxKeys, "Prefix": Prefix, "Token": ContinuationToken})
        keys = sorted(k for k in self.buckets[Bucket] if k.startswith(Prefix))
        start = int(ContinuationToken or 0)
        page = keys[start:start + MaxKeys]
        more = start + len(page) < len(keys)
        out: dict[str, Any] = {"Contents": [self.buckets[Bucket][k] for k in page], "IsTruncated": more,
                               "KeyCount": len(page)}
        if more:
            out["NextContinuationToken"] = str(start + len(page))
        return out

    def head_bucket(self, *, Bucket: str) -> dict[str, Any]:
        return {}

    def get_bucket_lifecycle_configuration(self, *, Bucket: str) -> dict[str, Any]:
        return {"Rules": []}

    def listed(self, bucket: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["Bucket"] == bucket]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "doops.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3()


def run_gap(config: Path, s3: FakeS3, clock: FakeClock | None = None, **opts: Any) -> Any:
    platform = Platform(config_path=str(config), config_explicit=True, clock=clock or FakeClock(NOW))
    return gap(platform, GapOptions(**opts), s3=lambda region: s3)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_missing_stale_and_extra_with_bytes_and_the_oldest_age(config: Path, s3: FakeS3) -> None:
    s3.put("media", "a.txt", at=ago(500))
    s3.put("media-ams3", "a.txt", at=ago(499))  # in sync
    s3.put("media", "b.txt", size=100, at=ago(30))  # missing
    s3.put("media", "c.txt", etag="new", size=200, at=ago(20))
    s3.put("media-ams3", "c.txt", etag="old", at=ago(50))  # stale: another ETag, older copy
    s3.put("media", "d.txt", etag="multipart-3", at=ago(40))
    s3.put("media-ams3", "d.txt", etag="whole", at=ago(38))  # another ETag but copied after: replicated
    s3.put("media-ams3", "e.txt", size=7, at=ago(300))  # deleted at the primary, not yet in the replica

    r = run_gap(config, s3)
    assert [d.key for d in r.missing] == ["b.txt"]
    assert [(d.key, d.etag, d.replica_etag) for d in r.stale] == [("c.txt", "new", "old")]
    assert [(d.key, d.size, d.age_seconds) for d in r.extra] == [("e.txt", 7, 300.0)]
    assert r.objects_checked == 4 and not r.truncated
    assert r.bytes_at_risk == 300  # extras are not at risk: the primary no longer has them
    assert r.oldest_at_risk_seconds == 30.0 and r.rpo_target_seconds == 60.0
    assert r.met is True and r.outcome is Outcome.OK
    data = r.to_data()
    assert list(data)[:8] == ["bucket", "replica", "prefix", "objects_checked", "truncated", "missing", "stale",
                              "extra"]
    assert data["missing"] == [{"key": "b.txt", "size": 100, "last_modified": "2026-11-26T04:59:30Z",
                                "age_seconds": 30.0}]
    assert data["stale"][0]["etag"] == "new" and data["stale"][0]["replica_etag"] == "old"
    assert "etag" not in data["extra"][0]
    assert {k: data[k] for k in ("bytes_at_risk", "oldest_at_risk_seconds", "rpo_target_seconds", "met",
                                 "outcome")} == {"bytes_at_risk": 300, "oldest_at_risk_seconds": 30.0,
                                                 "rpo_target_seconds": 60.0, "met": True, "outcome": "ok"}


def test_in_flight_within_the_objective_then_beyond_it(config: Path, s3: FakeS3) -> None:
    s3.put("media", "new.bin", size=5, at=NOW)
    clock = FakeClock(NOW + timedelta(seconds=10))
    r = run_gap(config, s3, clock)
    assert r.oldest_at_risk_seconds == 10.0 and r.met and r.outcome is Outcome.OK
    clock.advance(50)  # 60 s: still at the objective
    assert run_gap(config, s3, clock).outcome is Outcome.OK
    clock.advance(1)
    r = run_gap(config, s3, clock)
    assert r.oldest_at_risk_seconds == 61.0 and r.met is False
    assert r.outcome is Outcome.OBJECTIVE_MISSED and r.outcome.exit_code == 2
    assert "beyond the storage RPO of 60.0s" in r.message and "new.bin" in (r.hint or "")


def test_nothing_at_risk_is_a_zero_rpo(config: Path, s3: FakeS3) -> None:
    s3.put("media", "x", at=ago(9999))
    s3.put("media-ams3", "x", at=ago(9990))
    r = run_gap(config, s3)
    assert (r.missing, r.stale, r.extra, r.bytes_at_risk, r.oldest_at_risk_seconds) == ([], [], [], 0, 0.0)
    assert r.met and r.outcome is Outcome.OK and "holds every object" in r.message


def test_listing_is_paginated_over_several_pages(config: Path, s3: FakeS3) -> None:
    for i in range(2500):
        key = f"k{i:05d}"
        s3.put("media", key, at=ago(100))
        if i != 2400:
            s3.put("media-ams3", key, at=ago(99))
    r = run_gap(config, s3, max_objects=10000)
    assert r.objects_checked == 2500 and not r.truncated
    assert [d.key for d in r.missing] == ["k02400"] and not r.extra
    primary = s3.listed("media")
    assert [c["MaxKeys"] for c in primary] == [1000, 1000, 1000]
    assert [c["Token"] for c in primary] == [None, "1000", "2000"]
    assert len(s3.listed("media-ams3")) == 3 and r.list_requests == 6


def test_max_objects_bounds_the_listing_and_says_truncated(config: Path, s3: FakeS3) -> None:
    for i in range(2500):
        key = f"k{i:05d}"
        s3.put("media", key, at=ago(100))
        if i != 2000:  # past the bound: not seen
            s3.put("media-ams3", key, at=ago(99))
    r = run_gap(config, s3, max_objects=1500)
    assert r.objects_checked == 1500 and r.truncated
    assert r.missing == [] and r.extra == [] and r.outcome is Outcome.OK
    assert [c["MaxKeys"] for c in s3.listed("media")] == [1000, 500]
    assert "first 1500 only, up to k01499" in r.message and "--max-objects" in r.message
    assert r.to_data()["truncated"] is True


def test_default_bound_is_the_buckets_compare_limit(config: Path, s3: FakeS3) -> None:
    for i in range(1200):
        s3.put("media", f"k{i:05d}", at=ago(100))
        s3.put("media-ams3", f"k{i:05d}", at=ago(99))
    r = run_gap(config, s3)
    assert r.objects_checked == 1000 and r.truncated  # compare_limit defaults to 1000


def test_a_flood_of_extras_cannot_make_primary_objects_look_missing(config: Path, s3: FakeS3) -> None:
    for i in range(1100):
        s3.put("media-ams3", f"a{i:05d}", at=ago(100))  # deleted at the primary, not yet in the replica
    for i in range(5):
        s3.put("media", f"z{i}", at=ago(100))
        s3.put("media-ams3", f"z{i}", at=ago(99))
    r = run_gap(config, s3, max_objects=10)
    assert r.truncated and r.missing == [] and r.objects_checked == 0
    assert len(r.extra) == 1010  # the replica lists up to a page past the bound, no further


def test_prefix_limits_both_listings(config: Path, s3: FakeS3) -> None:
    s3.put("media", "uploads/a", size=3, at=ago(100))
    s3.put("media", "videos/b", size=4, at=ago(100))
    r = run_gap(config, s3, prefix="uploads/")
    assert [d.key for d in r.missing] == ["uploads/a"] and r.objects_checked == 1 and not r.met
    assert {c["Prefix"] for c in s3.calls} == {"uploads/"}


def test_replica_option_overrides_the_config(config: Path, s3: FakeS3) -> None:
    s3.buckets["media-copy"] = {}
    s3.put("media", "a", at=ago(10))
    s3.put("media-ams3", "a", at=ago(9))
    r = run_gap(config, s3, replica="media-copy")
    assert r.replica == "media-copy" and [d.key for d in r.missing] == ["a"]
    assert {c["Bucket"] for c in s3.calls} == {"media", "media-copy"}


def test_a_cancel_stops_before_the_next_list_call(config: Path, s3: FakeS3) -> None:
    cancel = Cancel()
    cancel.cancel("interrupted (Ctrl-C)")
    platform = Platform(config_path=str(config), config_explicit=True, clock=FakeClock(NOW))
    sink = RecordingSink()
    r = gap(platform, GapOptions(), events=sink, cancel=cancel, s3=lambda region: s3)
    assert r.outcome is Outcome.INTERRUPTED and s3.calls == []
    assert sink.messages("list")  # it said what it was about to compare


def test_an_unreachable_bucket_is_unknown(config: Path) -> None:
    from botocore.exceptions import ClientError

    class Broken(FakeS3):
        def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "ListObjectsV2")

    with pytest.raises(UnknownStateError, match="listing media: NoSuchBucket"):
        run_gap(config, Broken())


# -- bad input: exit 4, one line, before any client is made ---------------------------------------------------


@pytest.fixture
def no_clients(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    monkeypatch.setattr(spaces, "make_client", lambda cfg, region: made.append(region))
    return made


@pytest.mark.parametrize(("config_text", "args", "words"), [
    (CONFIG, ["nosuch"], ["'nosuch' is not in the config", "media, logs"]),
    (CONFIG, ["logs"], ["logs has no replica", "--replica"]),
    (CONFIG, ["media", "--replica", "media"], ["the bucket itself"]),
    (CONFIG, ["--max-objects", "0"], ["--max-objects", "0"]),
    (CONFIG, ["--max-objects", "many"], ["--max-objects", "many"]),
    (CONFIG.replace("  - name: logs\n    region: nyc3\n",
                    "  - name: logs\n    region: nyc3\n    replica: logs-ams3\n"),
     [], ["several buckets have a replica: media, logs", "doops spaces gap BUCKET"]),
    ("spaces:\n  buckets: []\n", [], ["no bucket with a replica", "--replica"]),
])
def test_bad_input_is_exit_4_before_any_request(tmp_path: Path, no_clients: list[str], config_text: str,
                                                 args: list[str], words: list[str]) -> None:
    path = tmp_path / "doops.yaml"
    path.write_text(config_text)
    res = run_doops(["--config", str(path), "spaces", "gap", *args])
    assert res.exit_code == 4, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doops: error:"), res.stderr
    for word in words:
        assert word in lines[0]
    assert no_clients == [] and res.stdout == ""


def test_bad_max_objects_is_refused_by_the_operation_too(config: Path, s3: FakeS3) -> None:
    with pytest.raises(UsageError, match="--max-objects"):
        run_gap(config, s3, max_objects=0)
    assert s3.calls == []


# -- the command, and `doops status spaces` on the same comparison ----------------------------------------------


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch, config: Path, s3: FakeS3) -> dict[str, Any]:
    """The CLI on the fake S3 (real clock: objects are dated from now) and a count of comparisons made."""
    monkeypatch.setattr(spaces, "make_client", lambda cfg, region: s3)
    compared: list[str] = []
    real = spaces.compare_replica

    def spy(*args: Any, **kwargs: Any) -> Any:
        compared.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(spaces, "compare_replica", spy)
    monkeypatch.setenv("SPACES_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", "secret-value")
    return {"env": {"DOOPS_CONFIG": str(config)}, "compared": compared}


def test_command_json_and_exit_codes(patched: dict[str, Any], s3: FakeS3) -> None:
    now = datetime.now(UTC)
    s3.put("media", "old.bin", size=11, at=now - timedelta(seconds=600))
    s3.put("media", "stale.bin", etag="v2", size=12, at=now - timedelta(seconds=5))
    s3.put("media-ams3", "stale.bin", etag="v1", at=now - timedelta(seconds=700))
    s3.put("media-ams3", "gone.bin", at=now - timedelta(seconds=800))
    res = run_doops(["spaces", "gap", "-o", "json"], env=patched["env"])
    assert res.exit_code == 2, res.stderr
    data = res.json
    assert set(data) >= {"bucket", "replica", "objects_checked", "missing", "stale", "extra", "bytes_at_risk",
                         "oldest_at_risk_seconds", "rpo_target_seconds", "met", "truncated", "outcome"}
    assert (data["bucket"], data["replica"], data["objects_checked"]) == ("media", "media-ams3", 2)
    assert [m["key"] for m in data["missing"]] == ["old.bin"] and data["missing"][0]["size"] == 11
    assert [(s["key"], s["etag"], s["replica_etag"]) for s in data["stale"]] == [("stale.bin", "v2", "v1")]
    assert [e["key"] for e in data["extra"]] == ["gone.bin"]
    assert data["bytes_at_risk"] == 23 and data["oldest_at_risk_seconds"] >= 600
    assert data["met"] is False and data["outcome"] == "objective_missed"
    assert "beyond the storage RPO" in res.stderr.strip().splitlines()[-1]

    s3.buckets["media"].pop("old.bin")
    s3.buckets["media"].pop("stale.bin")
    table = run_doops(["spaces", "gap"], env=patched["env"])
    assert table.exit_code == 0, table.stderr
    assert "deleted at the primary, still in media-ams3" in table.stdout and "gone.bin" in table.stdout
    assert "at risk (oldest first)" not in table.stdout


def test_status_spaces_judges_the_same_comparison(patched: dict[str, Any], s3: FakeS3) -> None:
    now = datetime.now(UTC)
    s3.put("media", "lost.bin", size=9, at=now - timedelta(seconds=120))  # past the 5 s allowance
    s3.put("media", "fresh.bin", size=9, at=now)  # in flight
    s3.put("media-ams3", "gone.bin", at=now - timedelta(seconds=30))
    res = run_doops(["status", "spaces", "-o", "json"], env=patched["env"])
    check = next(c for c in res.json["checks"] if c["check"] == "replication")
    assert check["status"] == "crit" and res.exit_code == 2
    details = check["details"]
    assert details["missing"] == ["lost.bin"] and details["in_flight"] == 1 and details["extra"] == ["gone.bin"]
    assert details["bytes_at_risk"] == 18 and details["oldest_at_risk_seconds"] >= 120
    assert check["summary"].startswith("1 missing and 0 stale in media-ams3 older than 5.0s (data at risk)")
    gap_res = run_doops(["spaces", "gap", "-o", "json"], env=patched["env"])
    assert sorted(m["key"] for m in gap_res.json["missing"]) == ["fresh.bin", "lost.bin"]
    assert patched["compared"] == ["media", "media"]  # one comparison each, the same function
