"""Integration tests for the sandbox PostgreSQL fleet: real servers, real replication, real PITR."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from doops.sandbox.pg import NoBaseBackupError, PgFleet, find_pg_bindir
from doops.sandbox.pg_util import PgNotFoundError
from doops.sandbox.pidfiles import kill_postmasters as kill_from_pidfiles

pytestmark = pytest.mark.integration

PASSWORD = "sandbox-pw-" + uuid.uuid4().hex[:8]
CLUSTER = "learnhub-db"
STANDBY = "learnhub-db-standby"
REPLICA = "learnhub-db-ams3"


def _require_pg() -> None:
    try:
        find_pg_bindir()
    except PgNotFoundError as exc:
        if os.environ.get("DOOPS_ALLOW_SKIP") == "1":
            pytest.skip(str(exc))
        pytest.fail(f"PostgreSQL binaries are required for these tests: {exc}")


def poll(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Return the first truthy value of pred() or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def fleet_processes(base: Path) -> list[psutil.Process]:
    """Live (non-zombie) processes whose cwd is inside `base` (postgres chdirs into its data dir)."""
    found = []
    prefix = str(base.resolve())
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.cwd().startswith(prefix):
                found.append(p)
        except (psutil.Error, OSError):
            continue
    return found


def _teardown(fleet: PgFleet) -> None:
    try:
        fleet.close()
    finally:
        kill_from_pidfiles(fleet.base_dir)
    poll(lambda: not fleet_processes(fleet.base_dir), 15, "fleet processes to exit")


def q(fleet: PgFleet, name: str, query: str, params: tuple[Any, ...] = (), db: str = "learnhub") -> list[Any]:
    with fleet.connect_admin(name, db) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def base_root() -> Iterator[Path]:
    """Scratch root outside pytest's tmp tree: pytest resets /tmp/pytest-of-<user> to 0700 whenever a
    session starts, which would cut the unprivileged postgres user off from its data dirs."""
    root = Path(tempfile.mkdtemp(prefix="doops-pgtest-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet(base_root: Path) -> Iterator[PgFleet]:
    """Shared fleet: primary + backup + standby + read replica + heartbeat (non-destructive tests)."""
    _require_pg()
    f = PgFleet(base_root / "shared", PASSWORD)
    try:
        t0 = time.monotonic()
        f.start_cluster(CLUSTER, "fra1")
        f.take_base_backup(CLUSTER)
        f.add_standby(CLUSTER, STANDBY, "fra1")
        f.add_standby(CLUSTER, REPLICA, "ams3", replica=True)
        f.startup_seconds = time.monotonic() - t0  # type: ignore[attr-defined]
        f.start_heartbeat(CLUSTER)
        yield f
    finally:
        _teardown(f)


@pytest.fixture
def fresh_fleet(base_root: Path) -> Iterator[Callable[[], PgFleet]]:
    """Factory for a private fleet (destructive tests); everything is torn down even on failure."""
    _require_pg()
    made: list[PgFleet] = []

    def make() -> PgFleet:
        f = PgFleet(Path(tempfile.mkdtemp(prefix="fleet-", dir=base_root)), PASSWORD)
        made.append(f)
        f.start_cluster("c1", "fra1")
        f.add_standby("c1", "c1-standby", "fra1")
        return f

    try:
        yield make
    finally:
        for f in made:
            _teardown(f)


# ----------------------------------------------------------------------------- shared fleet


def test_startup_is_fast_and_servers_run_unprivileged(fleet: PgFleet) -> None:
    assert fleet.startup_seconds < 20  # type: ignore[attr-defined]
    for name in (CLUSTER, STANDBY, REPLICA):
        srv = fleet.get(name)
        assert srv.state == "running" and srv.pid
        proc = psutil.Process(srv.pid)
        assert proc.is_running()
        if os.geteuid() == 0:
            assert proc.uids().real != 0, f"{name} runs as root"
    assert (fleet.base_dir / "pids" / f"{CLUSTER}.pid").exists()
    assert fleet.get(REPLICA).role == "replica" and fleet.get(STANDBY).role == "standby"


def test_tls_and_scram_password(fleet: PgFleet) -> None:
    dsn = fleet.dsn(CLUSTER)
    assert "sslmode=require" in dsn
    masked = fleet.masked_dsn(CLUSTER)
    assert PASSWORD not in masked and "doadmin:***@127.0.0.1" in masked
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("learnhub", "doadmin")
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname='doadmin'").fetchone() == (True,)
    with psycopg.connect(fleet.dsn(CLUSTER, "defaultdb"), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("defaultdb",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn.replace("sslmode=require", "sslmode=disable"), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn.replace(PASSWORD, "wrong-password"), connect_timeout=5)
    # no clear password in the data dirs' config (replication uses the private socket)
    for name in (CLUSTER, STANDBY):
        for conf in ("postgresql.auto.conf", "doops.conf", "postgresql.conf"):
            assert PASSWORD not in (fleet.get(name).data_dir / conf).read_text()


def test_standby_streams_rows(fleet: PgFleet) -> None:
    marker = uuid.uuid4().hex
    q(fleet, CLUSTER, "CREATE TABLE IF NOT EXISTS stream_items (id serial PRIMARY KEY, v text)")
    q(fleet, CLUSTER, "INSERT INTO stream_items (v) VALUES (%s)", (marker,))
    for name in (STANDBY, REPLICA):
        def streamed(n: str = name) -> list[Any]:
            return q(fleet, n, "SELECT 1 FROM stream_items WHERE v = %s", (marker,))

        poll(streamed, 15, f"row on {name}")
        assert q(fleet, name, "SELECT pg_is_in_recovery()") == [(True,)]
        st = fleet.replication_status(name)
        assert st.in_recovery and st.upstream == CLUSTER and st.streaming
    slots = {r[0] for r in q(fleet, CLUSTER, "SELECT slot_name FROM pg_replication_slots WHERE active")}
    assert {"learnhub_db_standby", "learnhub_db_ams3"} <= slots
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        q(fleet, STANDBY, "INSERT INTO stream_items (v) VALUES ('x')")


def test_heartbeat_writes_on_primary(fleet: PgFleet) -> None:
    before = q(fleet, CLUSTER, "SELECT count(*) FROM doops_heartbeat")[0][0]
    poll(lambda: q(fleet, CLUSTER, "SELECT count(*) FROM doops_heartbeat")[0][0] >= before + 2, 10,
         "two new heartbeat rows")


def test_pause_replay_makes_lag_grow(fleet: PgFleet) -> None:
    marker = uuid.uuid4().hex
    q(fleet, CLUSTER, "CREATE TABLE IF NOT EXISTS lag_items (id serial PRIMARY KEY, v text)")
    poll(lambda: q(fleet, REPLICA, "SELECT to_regclass('lag_items') IS NOT NULL")[0][0], 15, "table on replica")
    fleet.pause_replay(REPLICA)
    try:
        poll(lambda: fleet.replication_status(REPLICA).replay_paused, 10, "replay paused")
        q(fleet, CLUSTER, "INSERT INTO lag_items (v) SELECT %s FROM generate_series(1, 2000)", (marker,))
        first = poll(lambda: (s := fleet.replication_status(REPLICA)).lag_bytes > 0 and s, 10, "lag > 0")
        q(fleet, CLUSTER, "INSERT INTO lag_items (v) SELECT %s FROM generate_series(1, 2000)", (marker,))
        poll(lambda: fleet.replication_status(REPLICA).lag_bytes > first.lag_bytes, 10, "lag to grow")
        assert q(fleet, REPLICA, "SELECT count(*) FROM lag_items WHERE v = %s", (marker,)) == [(0,)]
        later = poll(lambda: (s := fleet.replication_status(REPLICA)).lag_seconds > 0 and s, 10, "lag seconds")
        assert later.replay_paused and later.receive_lsn != later.replay_lsn
        # the other standby is not paused and keeps up
        poll(lambda: q(fleet, STANDBY, "SELECT count(*) FROM lag_items WHERE v = %s", (marker,)) == [(4000,)],
             15, "standby to replay")
    finally:
        fleet.resume_replay(REPLICA)
    poll(lambda: q(fleet, REPLICA, "SELECT count(*) FROM lag_items WHERE v = %s", (marker,)) == [(4000,)],
         15, "replica to catch up")
    poll(lambda: fleet.replication_status(REPLICA).lag_bytes == 0 or None, 15, "lag back to 0")


def test_base_backups_are_listed(fleet: PgFleet) -> None:
    backups = fleet.list_backups(CLUSTER)
    assert backups, "the fixture took a base backup"
    b = fleet.take_base_backup(CLUSTER)
    assert fleet.list_backups(CLUSTER)[-1] == b and len(fleet.list_backups(CLUSTER)) == len(backups) + 1
    assert b.path.is_dir() and (b.path / "PG_VERSION").exists() and (b.path / "backup_label").exists()
    assert b.size_bytes > 1_000_000 and b.started_at <= b.created_at and b.source == CLUSTER
    assert b.path.parent == fleet.base_dir / "backups" / CLUSTER


def test_pitr_restores_heartbeat_up_to_target(fleet: PgFleet) -> None:
    def hb_max() -> dt.datetime | None:
        return q(fleet, CLUSTER, "SELECT max(written_at) FROM doops_heartbeat")[0][0]

    first = fleet.list_backups(CLUSTER)[0]
    poll(lambda: (m := hb_max()) and m > first.created_at + dt.timedelta(seconds=3), 20,
         "3 s of heartbeats after the first backup")
    target = dt.datetime.now(dt.UTC)
    poll(lambda: (m := hb_max()) and m > target + dt.timedelta(seconds=1.5), 20, "heartbeats after target")

    srv = fleet.restore_pitr(CLUSTER, target, "learnhub-db-pitr")
    assert srv.role == "primary" and srv.port != fleet.get(CLUSTER).port
    restored_max, restored_ids = q(fleet, srv.name, "SELECT max(written_at), array_agg(id) FROM doops_heartbeat")[0]
    assert restored_max is not None and restored_max <= target
    assert restored_max > target - dt.timedelta(seconds=2.5), "rows just before the target are missing"
    expected = {r[0] for r in q(fleet, CLUSTER, "SELECT id FROM doops_heartbeat WHERE written_at <= %s",
                                (target - dt.timedelta(seconds=0.5),))}
    assert expected and expected <= set(restored_ids)
    after = q(fleet, CLUSTER, "SELECT count(*) FROM doops_heartbeat WHERE written_at > %s", (target,))[0][0]
    assert after >= 1  # the primary does have newer rows, the restore must not
    assert q(fleet, srv.name, "SELECT pg_is_in_recovery()") == [(False,)]
    q(fleet, srv.name, "INSERT INTO doops_heartbeat DEFAULT VALUES")
    with psycopg.connect(fleet.dsn(srv.name), connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM doops_heartbeat WHERE written_at > %s", (target,)).fetchone() == (1,)
    fleet.stop(srv.name)
    assert fleet.get(srv.name).state == "stopped"


def test_pitr_before_first_backup_is_rejected(fleet: PgFleet) -> None:
    too_early = fleet.list_backups(CLUSTER)[0].started_at - dt.timedelta(minutes=5)
    with pytest.raises(NoBaseBackupError, match="no base backup"):
        fleet.restore_pitr(CLUSTER, too_early, "learnhub-db-too-early")
    assert "learnhub-db-too-early" not in fleet.servers


# ----------------------------------------------------------------------------- destructive


def test_promotion_makes_standby_writable_and_detached(fresh_fleet: Callable[[], PgFleet]) -> None:
    f = fresh_fleet()
    q(f, "c1", "CREATE TABLE items (id serial PRIMARY KEY, v text)")
    q(f, "c1", "INSERT INTO items (v) VALUES ('before')")
    poll(lambda: q(f, "c1-standby", "SELECT 1 FROM items WHERE v='before'"), 15, "row on standby")

    f.promote("c1-standby")
    assert q(f, "c1-standby", "SELECT pg_is_in_recovery()") == [(False,)]
    with psycopg.connect(f.dsn("c1-standby"), connect_timeout=5, autocommit=True) as conn:
        conn.execute("INSERT INTO items (v) VALUES ('after-promote')")
        assert conn.execute("SELECT count(*) FROM items WHERE v='after-promote'").fetchone() == (1,)
    assert f.primary("c1").name == "c1-standby" and f.get("c1").role == "former_primary"
    assert f.get("c1-standby").upstream is None
    # detached: no WAL receiver, the old primary has no walsender/slot for it, and new writes don't flow
    assert q(f, "c1-standby", "SELECT count(*) FROM pg_stat_wal_receiver") == [(0,)]
    poll(lambda: q(f, "c1", "SELECT count(*) FROM pg_stat_replication") == [(0,)], 10, "walsender gone")
    assert q(f, "c1", "SELECT count(*) FROM pg_replication_slots") == [(0,)]
    q(f, "c1", "INSERT INTO items (v) VALUES ('old-primary-only')")
    assert q(f, "c1-standby", "SELECT count(*) FROM items WHERE v='old-primary-only'") == [(0,)]
    assert f.replication_status("c1-standby").in_recovery is False


def test_kill_primary_refuses_connections_and_heartbeat_follows_failover(
    fresh_fleet: Callable[[], PgFleet],
) -> None:
    f = fresh_fleet()
    f.add_standby("c1", "c1-replica", "ams3", replica=True)
    stats = f.start_heartbeat("c1")
    poll(lambda: stats["rows"] >= 2, 10, "heartbeats on c1")
    pid = f.get("c1").pid
    assert pid is not None
    f.kill("c1")
    assert f.get("c1").state == "killed"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f.dsn("c1"), connect_timeout=3)
    assert not (f.base_dir / "pids" / "c1.pid").exists()
    poll(lambda: stats["errors"] >= 1, 10, "heartbeat to notice the crash")

    f.promote("c1-standby")
    rows = stats["rows"]
    poll(lambda: stats["rows"] >= rows + 2, 10, "heartbeat to resume on the promoted standby")
    newest = q(f, "c1-standby", "SELECT max(written_at) FROM doops_heartbeat")[0][0]
    assert newest > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)

    # the read replica lost its upstream; repoint it at the new primary (timeline switch over streaming)
    f.follow("c1-replica", "c1-standby")
    poll(lambda: q(f, "c1-replica", "SELECT max(written_at) FROM doops_heartbeat")[0][0] >= newest, 20,
         "replica to replay the new primary's heartbeats")
    poll(lambda: f.replication_status("c1-replica").streaming, 10, "replica streaming from new primary")
    assert f.get("c1-replica").upstream == "c1-standby"

    # a killed server comes back with crash recovery
    f.start("c1")
    assert q(f, "c1", "SELECT 1", db="postgres") == [(1,)]


def test_kill_from_pidfiles_after_supervisor_crash(base_root: Path) -> None:
    _require_pg()
    base = base_root / "crashed"
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from doops.sandbox.pg import PgFleet
        f = PgFleet(Path({str(base)!r}), "pw-crash")
        f.start_cluster("c1")
        f.add_standby("c1", "c1-standby")
        print("READY", flush=True)
        os._exit(0)  # a crash: no atexit, no cleanup
    """)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert "READY" in out.stdout, out.stderr[-3000:]
        pidfiles = sorted((base / "pids").glob("*.pid"))
        assert sorted(p.stem for p in pidfiles) == ["c1", "c1-standby"]
        assert len(fleet_processes(base)) >= 4, "orphaned postmasters and their children should be alive"

        killed = kill_from_pidfiles(base)
        assert len(killed) == 2
        poll(lambda: not fleet_processes(base), 15, "no postgres of the crashed fleet left")
        assert not list((base / "pids").glob("*.pid"))
        assert kill_from_pidfiles(base) == []  # idempotent
    finally:
        kill_from_pidfiles(base)


def test_provision_brings_up_cluster_in_parallel(base_root: Path) -> None:
    _require_pg()
    f = PgFleet(Path(tempfile.mkdtemp(prefix="prov-", dir=base_root)), PASSWORD)
    try:
        t0 = time.monotonic()
        servers = f.provision("p1", "fra1", standbys=[("p1-standby", "fra1")], replicas=[("p1-ams3", "ams3")])
        assert time.monotonic() - t0 < 20
        assert set(servers) == {"p1", "p1-standby", "p1-ams3"}
        assert len(f.list_backups("p1")) == 1
        names = {r[0] for r in q(f, "p1", "SELECT application_name FROM pg_stat_replication WHERE state='streaming'")}
        assert names == {"p1-standby", "p1-ams3"}
    finally:
        _teardown(f)
