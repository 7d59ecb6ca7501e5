"""`doops spaces gap` against the sandbox's S3 twin and its replicator: pause replication, upload 3 objects:
3 at risk, exit 2 once older than the storage RPO; resume: 0 at risk, exit 0. A deletion at the primary while
paused shows as `extra`."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from tests.helpers import Result, run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration]

RPO = 2  # seconds: a small storage objective, so "older than the objective" comes quickly


def gap_env(sb: Sandbox, tmp_path: Path) -> dict[str, str]:
    """The sandbox's env with its doops config copied and objectives.storage_rpo set to RPO."""
    env = sb.env
    cfg = yaml.safe_load(Path(env["DOOPS_CONFIG"]).read_text())
    cfg.setdefault("objectives", {})["storage_rpo"] = f"{RPO}s"
    path = tmp_path / "doops.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return {**env, "DOOPS_CONFIG": str(path)}


def gap(sb: Sandbox, env: dict[str, str], prefix: str) -> Result:
    res = run_doops(["spaces", "gap", "--prefix", prefix, "-o", "json"], env=env,
                    secrets=(sb.token, sb.state["spaces"]["secret_key"]))
    assert "Traceback" not in res.stderr
    assert res.exit_code in (0, 2), res.stderr
    return res


def s3_client(sb: Sandbox) -> Any:
    return boto3.client("s3", endpoint_url=sb.state["spaces"]["endpoint_url"], region_name="nyc3",
                        aws_access_key_id=sb.state["spaces"]["access_key"],
                        aws_secret_access_key=sb.state["spaces"]["secret_key"])


def test_paused_replication_puts_uploads_at_risk_until_resumed(sandbox: Sandbox, tmp_path: Path) -> None:
    env = gap_env(sandbox, tmp_path)
    s3 = s3_client(sandbox)
    prefix = f"gap-test-{uuid.uuid4().hex[:8]}/"
    doomed = f"{prefix}doomed.txt"
    s3.put_object(Bucket="learnhub-media", Key=doomed, Body=b"to be deleted")

    def replicated() -> Result | None:
        res = gap(sandbox, env, prefix)
        return res if res.exit_code == 0 and res.json["objects_checked"] == 1 and not res.json["missing"] else None

    wait_for(replicated, 30, "the first object replicated", interval=0.2)

    sandbox.fault(kind="spaces-replication", action="pause")
    s3.delete_object(Bucket="learnhub-media", Key=doomed)
    bodies = {f"{prefix}lesson-{i}.bin": b"x" * (100 * (i + 1)) for i in range(3)}
    for key, body in bodies.items():
        s3.put_object(Bucket="learnhub-media", Key=key, Body=body)

    res = gap(sandbox, env, prefix)
    data = res.json
    assert sorted(m["key"] for m in data["missing"]) == sorted(bodies)
    assert data["stale"] == [] and data["objects_checked"] == 3 and data["truncated"] is False
    assert data["bytes_at_risk"] == 600
    assert [e["key"] for e in data["extra"]] == [doomed]  # deleted at the primary, not yet in the replica
    assert (data["bucket"], data["replica"], data["rpo_target_seconds"]) == ("learnhub-media",
                                                                               "learnhub-media-ams3", RPO)
    assert res.exit_code == (0 if data["met"] else 2)  # whichever side of 2 s this first run fell on

    def beyond() -> Result | None:
        r = gap(sandbox, env, prefix)
        return r if r.exit_code == 2 else None

    res = wait_for(beyond, 30, "the uploads to be older than the storage RPO", interval=0.2)
    data = res.json
    assert len(data["missing"]) == 3 and data["met"] is False and data["outcome"] == "objective_missed"
    assert data["oldest_at_risk_seconds"] > RPO
    assert "beyond the storage RPO" in res.stderr

    sandbox.fault(kind="spaces-replication", action="resume")

    def caught_up() -> Result | None:
        r = gap(sandbox, env, prefix)
        return r if r.exit_code == 0 and not r.json["missing"] and not r.json["extra"] else None

    res = wait_for(caught_up, 30, "replication to catch up after resume", interval=0.2)
    data = res.json
    assert data["objects_checked"] == 3 and data["bytes_at_risk"] == 0 and data["oldest_at_risk_seconds"] == 0
    assert data["met"] is True and data["outcome"] == "ok"
    for key in bodies:
        s3.delete_object(Bucket="learnhub-media", Key=key)
