"""Drill history in PostgreSQL (the sandbox's own primary): the same records give the same answers as SQLite,
migrations run there too, and the URL's password never shows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from doops.drill.history import SCHEMA_VERSION, PostgresHistory, SqliteHistory, open_history
from tests.helpers import run_doops
from tests.integration.conftest import Sandbox
from tests.unit.test_drill_history import T0, answers, make_run, sample_runs

pytestmark = [pytest.mark.integration]

DB = "doops_drills_test"


def admin_uri(sb: Sandbox) -> str:
    """The primary's doadmin connection, as the sandbox's API gives it (doadmin is the cluster's superuser)."""
    r = httpx.get(sb.state["api_url"] + "/v2/databases", headers={"Authorization": f"Bearer {sb.token}"},
                  timeout=10)
    r.raise_for_status()
    return str(next(d for d in r.json()["databases"] if d["name"] == "learnhub-db")["connection"]["uri"])


def with_database(uri: str, dbname: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture
def pg_url(sandbox: Sandbox) -> Iterator[str]:
    """A database of its own on the sandbox primary, dropped afterwards."""
    admin = admin_uri(sandbox)
    with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    try:
        yield with_database(admin, DB)
    finally:
        with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


def test_postgres_and_sqlite_give_the_same_answers(pg_url: str, tmp_path: Path) -> None:
    runs = sample_runs()
    with open_history(pg_url) as pg, SqliteHistory(tmp_path / "drills.db") as lite:
        assert isinstance(pg, PostgresHistory) and pg.version == SCHEMA_VERSION
        for run in runs:
            pg.record(run)
            lite.record(run)
        pg.record(runs[0])  # recorded twice: still one
        from_pg, from_sqlite = answers(pg), answers(lite)
    assert from_pg == from_sqlite
    assert len(from_pg["all"]) == len(runs)  # type: ignore[arg-type]
    assert from_pg["runbooks"] == ["cache-flush", "db-failover", "restore", "tie"]
    assert from_pg["limit"] == ["dbf-5", "dbf-4"]


def test_v1_postgres_database_is_migrated(pg_url: str) -> None:
    with PostgresHistory(pg_url, upto=1) as v1:
        assert v1.version == 1
        v1.record(make_run("old", T0, 42.0, run_id="from-v1"))
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        cols = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'drill_runs'")}
        assert "recorded_at" not in cols
    with PostgresHistory(pg_url) as current:
        assert current.version == SCHEMA_VERSION == 2
        assert [r.id for r in current.runs("old")] == ["from-v1"]
        current.record(make_run("new", T0, 1.0, run_id="from-v2"))
    with PostgresHistory(pg_url) as again:  # nothing applied twice
        assert again.version == 2
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'drill_runs_runbook'").fetchone()
        recorded: dict[str, object] = dict(conn.execute("SELECT id, recorded_at FROM drill_runs").fetchall())
    assert recorded["from-v1"] is None and recorded["from-v2"] is not None


def test_two_openers_of_a_fresh_database_migrate_once(pg_url: str) -> None:
    import threading

    errors: list[BaseException] = []

    def opener() -> None:
        try:
            with open_history(pg_url) as h:
                h.record(make_run("c", T0, 1.0, run_id=uuid.uuid4().hex))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_history(pg_url) as h:
        assert len(h.runs("c")) == 4


def test_history_command_against_postgres_masks_the_password(pg_url: str, sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    password = urlsplit(pg_url).password
    assert password
    with open_history(pg_url) as h:
        for run in sample_runs():
            h.record(run)
    env = {"DOOPS_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("{}\n")
    res = run_doops(["drill", "history", "db-failover", "--since", "3650d", "--history-url", pg_url], env=env,
                    secrets=(password,))
    assert res.exit_code == 0, res.stderr
    assert "db-failover" in res.stdout and "▃▄█▄▃▅" in res.stdout and ":***@" in res.stdout
    wrong = pg_url.replace(password, "not-the-password")
    bad = run_doops(["drill", "history", "--history-url", wrong], env=env, secrets=(password, "not-the-password"))
    assert bad.exit_code == 3 and "cannot connect to drill history" in bad.stderr
