"""`doops sandbox` end to end: up, env, status, faults, down; no process or port left behind."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from doops.sandbox import control
from doops.sandbox.api.resources import stable_id
from tests.helpers import run_doops
from tests.integration.conftest import Sandbox, start_sandbox

pytestmark = pytest.mark.integration


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _processes_mentioning(text: str) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                out.append(int(proc.name))
    return out


def test_env_and_auth_against_sandbox(sandbox: Sandbox) -> None:
    env = sandbox.env
    for key in ("DIGITALOCEAN_API_URL", "DIGITALOCEAN_ACCESS_TOKEN", "DOOPS_CONFIG", "AWS_ENDPOINT_URL_S3",
                "SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY"):
        assert env.get(key), key
    assert env["DIGITALOCEAN_API_URL"].startswith("http://127.0.0.1:")
    res = run_doops(["-o", "json", "auth", "status"], env=env, secrets=(sandbox.token,))
    assert res.exit_code == 0, res.stderr
    assert res.json["account"]["email"] == "sre@learnhub.example"
    printed = run_doops(["sandbox", "env", "--dir", str(sandbox.dir)])
    assert printed.stdout == (sandbox.dir / "env.sh").read_text()


def test_status_lists_every_process(sandbox: Sandbox) -> None:
    res = run_doops(["-o", "json", "sandbox", "status", "--dir", str(sandbox.dir)])
    assert res.exit_code == 0, res.stderr
    names = {c["name"] for c in res.json["components"]}
    assert {"api-twin", "postgres:learnhub-db", "postgres:learnhub-db-ams3", "spaces",
            "app:learnhub-api", "app:learnhub-web", "pgbouncer:learnhub-db", "cache:learnhub-cache",
            "db-metrics:learnhub-db"} <= names
    assert all(c["healthy"] for c in res.json["components"])


def test_config_and_env_name_prometheus_only_when_it_runs(sandbox: Sandbox) -> None:
    import yaml

    runs = sandbox.state["prometheus_url"] is not None
    config = yaml.safe_load((sandbox.dir / control.CONFIG_FILE).read_text())
    assert ("prometheus" in config) == runs
    assert ("PROMETHEUS_URL" in sandbox.env) == runs
    names = {c["name"] for c in control.control(sandbox.state, "GET", "/status")["components"]}
    assert ("prometheus" in names) == runs


def test_up_on_running_sandbox_says_so(sandbox: Sandbox) -> None:
    res = run_doops(["sandbox", "up", "--dir", str(sandbox.dir)])
    assert res.exit_code == 0
    assert "already running" in res.stderr
    assert "DIGITALOCEAN_API_URL" in res.stdout


def test_sandbox_database_is_real_and_replicates(sandbox: Sandbox) -> None:
    conn_info = httpx.get(sandbox.state["api_url"] + "/v2/databases",
                          headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=10).json()
    db = next(d for d in conn_info["databases"] if d["name"] == "learnhub-db")
    uri = db["connection"]["uri"]
    with psycopg.connect(uri, connect_timeout=5) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (False,)
        assert conn.execute("select count(*) > 0 from doops_heartbeat").fetchone() == (True,)
        ssl = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        assert ssl == (True,)


def test_fault_bad_input_is_exit_4(sandbox: Sandbox) -> None:
    res = run_doops(["sandbox", "fault", "db-lag", "no-such-replica", "--dir", str(sandbox.dir)])
    assert res.exit_code == 4 and "learnhub-db-ams3" in res.stderr
    res = run_doops(["sandbox", "fault", "app-unhealthy", "nope", "--dir", str(sandbox.dir)])
    assert res.exit_code == 4 and "learnhub-api" in res.stderr
    res = run_doops(["sandbox", "fault", "http-error", "--status", "200", "--dir", str(sandbox.dir)])
    assert res.exit_code == 4


def test_fault_http_error_and_latency(sandbox: Sandbox) -> None:
    api, headers = sandbox.state["api_url"], {"Authorization": f"Bearer {sandbox.token}"}
    res = run_doops(["sandbox", "fault", "http-error", "--status", "503", "--route", "/v2/apps*",
                     "--dir", str(sandbox.dir)])
    assert res.exit_code == 0, res.stderr
    assert httpx.get(api + "/v2/apps", headers=headers, timeout=10).status_code == 503
    assert httpx.get(api + "/v2/account", headers=headers, timeout=10).status_code == 200
    run_doops(["sandbox", "fault", "clear", "--dir", str(sandbox.dir)])
    assert httpx.get(api + "/v2/apps", headers=headers, timeout=10).status_code == 200
    run_doops(["sandbox", "fault", "latency", "--ms", "300", "--dir", str(sandbox.dir)])
    resp = httpx.get(api + "/v2/account", headers=headers, timeout=10)
    assert resp.elapsed.total_seconds() >= 0.3


def test_fault_app_unhealthy_reaches_live_server_and_api(sandbox: Sandbox) -> None:
    url = sandbox.state["apps"]["learnhub-api"]
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    run_doops(["sandbox", "fault", "app-unhealthy", "learnhub-api", "--component", "ws", "--dir", str(sandbox.dir)])
    assert httpx.get(url + "/healthz", timeout=5).status_code == 503
    status = run_doops(["-o", "json", "sandbox", "status", "--dir", str(sandbox.dir)])
    assert status.exit_code == 1
    assert any(f["kind"] == "app-unhealthy" for f in status.json["faults"])


def test_fault_db_lag_pauses_replay(sandbox: Sandbox) -> None:
    run_doops(["sandbox", "fault", "db-lag", "learnhub-db-ams3", "--dir", str(sandbox.dir)])
    dbs = httpx.get(sandbox.state["api_url"] + "/v2/databases",
                    headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=10).json()["databases"]
    db = next(d for d in dbs if d["name"] == "learnhub-db")
    replicas = httpx.get(sandbox.state["api_url"] + f"/v2/databases/{db['id']}/replicas",
                         headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=10).json()["replicas"]
    uri = next(r for r in replicas if r["name"] == "learnhub-db-ams3")["connection"]["uri"]
    with psycopg.connect(uri, connect_timeout=5, autocommit=True) as conn:
        assert conn.execute("select pg_is_wal_replay_paused()").fetchone() == (True,)


def test_two_sandboxes_side_by_side_and_down_leaves_nothing(sandbox_root: Path) -> None:
    a = start_sandbox(sandbox_root / "side-a")
    try:
        b = start_sandbox(sandbox_root / "side-b")
        try:
            assert a.state["api_url"] != b.state["api_url"]
            assert a.token != b.token
            for sb in (a, b):
                res = run_doops(["-o", "json", "auth", "status"], env=sb.env, secrets=(sb.token,))
                assert res.exit_code == 0, res.stderr
            # each sandbox has its own cluster and app uuids (locks and pending promotions key on them)
            ids = [_cluster_and_app_ids(sb) for sb in (a, b)]
            assert len(ids[0]) >= 4 and not ids[0] & ids[1], ids
            assert a.state["id_seed"] != b.state["id_seed"]
            assert stable_id("database", "learnhub-db", a.state["id_seed"]) in ids[0]
            ports = [c["port"] for c in run_doops(["-o", "json", "sandbox", "status", "--dir", str(b.dir)])
                     .json["components"]]
        finally:
            res = run_doops(["-o", "json", "sandbox", "down", "--dir", str(b.dir)])
            assert res.exit_code == 0 and res.json["was_running"] and res.json["removed"]
        assert not any(_port_open(p) for p in ports)
        assert _processes_mentioning(str(b.dir)) == []
        assert control.running_state(a.dir) is not None, "stopping one sandbox must not touch the other"
    finally:
        control.stop(a.dir, keep=False)
    assert _processes_mentioning(str(a.dir)) == []


def _cluster_and_app_ids(sb: Sandbox) -> set[str]:
    headers = {"Authorization": f"Bearer {sb.token}"}
    dbs = httpx.get(sb.state["api_url"] + "/v2/databases", headers=headers, timeout=10).json()["databases"]
    apps = httpx.get(sb.state["api_url"] + "/v2/apps", headers=headers, timeout=10).json()["apps"]
    return {d["id"] for d in dbs} | {x["id"] for x in apps}


def test_down_after_supervisor_crash_leaves_no_orphan(sandbox_root: Path) -> None:
    import os
    import signal

    from doops.sandbox.pidfiles import pid_alive

    sb = start_sandbox(sandbox_root / "crash")
    # every child process: PostgreSQL servers, PgBouncer, the cache, Prometheus (the rest are supervisor threads)
    children = [c for c in control.control(sb.state, "GET", "/status")["components"] if c["pid"] != sb.state["pid"]]
    kinds = {c["name"].split(":")[0] for c in children}
    assert {"postgres", "pgbouncer", "cache"} <= kinds, kinds
    os.kill(sb.state["pid"], signal.SIGKILL)  # the twin crashes: its children are orphaned
    res = run_doops(["-o", "json", "sandbox", "down", "--dir", str(sb.dir)])
    assert res.exit_code == 0, res.stderr
    assert res.json["killed_orphans"], "down must find the orphans by their pid files"
    assert _processes_mentioning(str(sb.dir)) == []
    assert not [c["name"] for c in children if pid_alive(c["pid"])]
    assert not [c["name"] for c in children if _port_open(c["port"])]


def test_down_without_sandbox_is_exit_4(tmp_path: Path) -> None:
    res = run_doops(["sandbox", "down", "--dir", str(tmp_path / "none")])
    assert res.exit_code == 4 and "no sandbox" in res.stderr


def test_bad_scenario_is_exit_4(tmp_path: Path) -> None:
    res = run_doops(["sandbox", "up", "--dir", str(tmp_path / "x"), "--scenario", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 4 and "nope.yaml" in res.stderr


def test_cli_runs_as_subprocess(sandbox: Sandbox) -> None:
    out = subprocess.run([sys.executable, "-m", "doops", "sandbox", "status", "--dir", str(sandbox.dir)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "postgres:learnhub-db" in out.stdout
