"""`doops db pitr` against the sandbox: a real restore (base backup + archived WAL + recovery_target_time) into
a new server, verified by SQL, with RTO and RPO measured; refusals that send nothing; resume; cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.helpers import Result, run_doops, wait_for
from tests.integration.conftest import Sandbox

pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def api(sb: Sandbox, path: str) -> dict:
    r = httpx.get(sb.state["api_url"] + path, headers={"Authorization": f"Bearer {sb.token}"}, timeout=10)
    r.raise_for_status()
    return dict(r.json())


def clusters(sb: Sandbox) -> list[dict]:
    return list(api(sb, "/v2/databases")["databases"])


def primary_uri(sb: Sandbox) -> str:
    return str(next(d for d in clusters(sb) if d["name"] == "learnhub-db")["connection"]["uri"])


def secrets(sb: Sandbox) -> tuple[str, ...]:
    return (sb.token, *{d["connection"]["password"] for d in clusters(sb) if d.get("connection")})


def pitr(sb: Sandbox, *args: str) -> Result:
    res = run_doops(["db", "pitr", "-o", "json", *args], env=sb.env, secrets=secrets(sb))
    assert "Traceback" not in res.stderr
    return res


def writes_since(sb: Sandbox, index: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sb.requests()[index:] if r["method"] in WRITES]


def stamp(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def mark(uri: str, note: str) -> datetime:
    """A marker row, committed; returns the server's commit time."""
    with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
        conn.execute("create table if not exists pitr_markers (note text primary key, at timestamptz not null "
                     "default clock_timestamp())")
        row = conn.execute("insert into pitr_markers (note) values (%s) returning at", (note,)).fetchone()
    assert row is not None
    return row[0].astimezone(UTC)


@pytest.fixture(scope="module")
def pitr_sandbox(sandbox_root: Path) -> Iterator[Sandbox]:
    from doops.sandbox import control
    from tests.integration.conftest import start_sandbox

    sb = start_sandbox(sandbox_root / "pitr")
    yield sb
    control.stop(sb.dir, keep=False)


def test_restore_to_a_point_between_two_markers(pitr_sandbox: Sandbox, isolated_env: Path) -> None:
    sb = pitr_sandbox
    uri = primary_uri(sb)
    first = mark(uri, "first")
    wait_for(lambda: datetime.now(UTC) > first + timedelta(seconds=3), 10, "3 s to pass", interval=0.2)
    second = mark(uri, "second")
    point = first + timedelta(seconds=1)
    assert point < second
    res = pitr(sb, "--to", stamp(point), "--yes", "--name", "learnhub-db-pitr-markers",
               "--verify-sql", "select count(*) = 1 from pitr_markers where note = 'first'",
               "--verify-sql", "select count(*) = 0 from pitr_markers where note = 'second'", "--cleanup")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["outcome"] == "ok" and out["met"] is True and out["cleaned_up"] is True
    assert [v["ok"] for v in out["verification"]] == [True, True, True, True]
    restore_point = datetime.fromisoformat(out["restore_point"].replace("Z", "+00:00"))
    assert restore_point <= point + timedelta(seconds=1) and 0 <= out["rpo_seconds"] <= out["rpo_target_seconds"]
    t = out["timings"]
    assert t["requested"] <= t["online"] <= t["verified"] and 0 < out["restore_seconds"] < 120
    assert out["new_cluster"]["name"] == "learnhub-db-pitr-markers" and out["new_cluster"]["port"] > 0
    assert "learnhub-db-pitr-markers" not in {d["name"] for d in clusters(sb)}  # cleaned up
    assert "restored at" in res.stderr and "(local " not in res.stdout  # JSON carries UTC only
    audit = (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").read_text()
    assert '"action": "db pitr"' in audit and all(s not in audit for s in secrets(sb))


def test_latest_with_cleanup_leaves_no_cluster_and_no_server(pitr_sandbox: Sandbox) -> None:
    sb = pitr_sandbox
    before = {d["name"] for d in clusters(sb)}
    res = pitr(sb, "--latest", "--yes", "--size", "db-s-1vcpu-1gb", "--cleanup")
    assert res.exit_code == 0, res.stderr
    out = res.json
    assert out["rpo_seconds"] is not None and out["rpo_seconds"] < 10
    assert {d["name"] for d in clusters(sb)} == before
    port = out["new_cluster"]["port"]

    def refused() -> bool:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", connect_timeout=1):
                return False
        except psycopg.OperationalError:
            return True

    wait_for(refused, 20, "the restored server to stop after --cleanup", interval=0.2)


@pytest.mark.parametrize("to, why", [
    ("2999-01-01T00:00:00Z", "in the future"),
    ("2020-01-01T00:00:00Z", "before the restore window"),
])
def test_points_outside_the_window_are_refused_with_nothing_sent(pitr_sandbox: Sandbox, to: str, why: str) -> None:
    sb = pitr_sandbox
    start = len(sb.requests())
    res = pitr(sb, "--to", to, "--yes")
    assert res.exit_code == 2 and why in res.stderr, res.stderr
    assert res.json["outcome"] == "refused" and writes_since(sb, start) == []


def test_malformed_time_and_options_are_bad_input(pitr_sandbox: Sandbox) -> None:
    sb = pitr_sandbox
    start = len(sb.requests())
    for args in (["--to", "yesterday-ish"], ["--to", "-5s", "--latest"], [], ["--latest", "--timeout", "0"],
                 ["--latest", "--format", "nosuchfield"]):
        res = run_doops(["db", "pitr", *args, "--yes"], env=sb.env, secrets=(sb.token,))
        assert res.exit_code == 4 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
    assert sb.requests()[start:] == []


def test_failing_verify_sql_is_exit_2(pitr_sandbox: Sandbox) -> None:
    res = pitr(pitr_sandbox, "--latest", "--yes", "--cleanup",
               "--verify-sql", "select count(*) > 0 from pitr_markers where note = 'never written'")
    assert res.exit_code == 2, res.stderr
    assert res.json["outcome"] == "verification_failed" and res.json["verification"][-1]["ok"] is False
    assert res.json["cleaned_up"] is True


def test_interrupted_restore_is_resumed(pitr_sandbox: Sandbox) -> None:
    sb = pitr_sandbox
    sb.fault(kind="latency", ms=2000, route="GET /v2/databases/*")
    start = len(sb.requests())
    env = {**os.environ, **sb.env}
    proc = subprocess.Popen([sys.executable, "-m", "doops", "-o", "json", "db", "pitr", "--to", "-2s", "--yes"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(w.startswith("POST /v2/databases") for w in writes_since(sb, start)), 60,
                 "the restore request")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "run the same command again" in err and "doctl databases delete" in err and "Traceback" not in err
    sb.clear()
    mid = len(sb.requests())
    res = pitr(sb, "--to", "-2s", "--yes", "--cleanup")  # the same command, later: the same cluster, resumed
    assert res.exit_code == 0, res.stderr
    assert res.json["resumed"] is True and res.json["cleaned_up"] is True
    assert not any(w == "POST /v2/databases" for w in writes_since(sb, mid)), "a resumed run creates nothing"


def test_backups_shows_the_window(pitr_sandbox: Sandbox) -> None:
    res = run_doops(["db", "backups", "-o", "json"], env=pitr_sandbox.env, secrets=(pitr_sandbox.token,))
    assert res.exit_code == 0, res.stderr
    w = res.json["window"]
    assert w["oldest"] is not None and w["oldest"] <= w["latest"] and len(w["backups"]) >= 1
