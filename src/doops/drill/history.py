"""The drill history: every drill run recorded, in SQLite (one machine) or PostgreSQL (many machines).

Both stores sit behind one interface, :class:`History`, and give the same answers for the same records
(tests/integration/test_drill_history_pg.py compares them). The schema is versioned: ``schema_version``
holds the version, :data:`MIGRATIONS` are applied in order when a store is opened, each in the transaction
that bumps the version, under a lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) so two drills
opening a fresh store at once migrate it once.

Layout (both stores): ``drill_runs`` one row per run; objectives and steps as JSON text columns (a run is read
whole; trends are computed in Python, identically for both stores). Times are UTC: SQLite keeps them as
fixed-width ISO text (so text order is time order), PostgreSQL as ``timestamptz``.

A history URL with a password is a secret: every message names it masked (``doops.masking``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from doops.drill.model import DrillRun, ObjectiveMeasure, StepSummary
from doops.errors import DoopsError, UnknownStateError, UsageError
from doops.masking import mask

DB_FILE = "drills.db"
BUSY_TIMEOUT_MS = 10_000  # another drill writing the same SQLite file: wait for it rather than fail
PG_CONNECT_TIMEOUT = 10  # seconds
PG_LOCK_KEY = 0x646F6F7073  # "doops": the advisory lock migrations take

# (version, SQLite statements, PostgreSQL statements). Append only: a released migration never changes.
MIGRATIONS: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = [
    (1, (
        """CREATE TABLE drill_runs (
            id TEXT PRIMARY KEY, runbook TEXT NOT NULL, file TEXT NOT NULL,
            started_at TEXT NOT NULL, ended_at TEXT NOT NULL, outcome TEXT NOT NULL,
            success INTEGER NOT NULL, objectives TEXT NOT NULL, steps TEXT NOT NULL, inputs TEXT NOT NULL,
            host TEXT NOT NULL, user_name TEXT NOT NULL, api_host TEXT NOT NULL, sandbox INTEGER NOT NULL)""",
        "CREATE INDEX drill_runs_started ON drill_runs (started_at)",
    ), (
        """CREATE TABLE drill_runs (
            id TEXT PRIMARY KEY, runbook TEXT NOT NULL, file TEXT NOT NULL,
            started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ NOT NULL, outcome TEXT NOT NULL,
            success BOOLEAN NOT NULL, objectives TEXT NOT NULL, steps TEXT NOT NULL, inputs TEXT NOT NULL,
            host TEXT NOT NULL, user_name TEXT NOT NULL, api_host TEXT NOT NULL, sandbox BOOLEAN NOT NULL)""",
        "CREATE INDEX drill_runs_started ON drill_runs (started_at)",
    )),
    # v2: per-runbook reads (history RUNBOOK, last_success, due) use an index; recorded_at says when the
    # store received a run (a CI runner's clock may be off; this is the store's).
    (2, (
        "CREATE INDEX drill_runs_runbook ON drill_runs (runbook, started_at)",
        "ALTER TABLE drill_runs ADD COLUMN recorded_at TEXT",
    ), (
        "CREATE INDEX drill_runs_runbook ON drill_runs (runbook, started_at)",
        "ALTER TABLE drill_runs ADD COLUMN recorded_at TIMESTAMPTZ",
    )),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

COLUMNS = ("id", "runbook", "file", "started_at", "ended_at", "outcome", "success", "objectives", "steps",
           "inputs", "host", "user_name", "api_host", "sandbox")


class HistoryError(DoopsError):
    """The history store cannot be used as it is (a schema newer than this doops, a file it cannot write)."""


class History(Protocol):
    """What `drill run` records into and `history`/`report`/`due`/`status` read from."""

    url: str  # masked: safe to print

    @property
    def version(self) -> int: ...

    def record(self, run: DrillRun) -> None:
        """Store one run; recording the same run (same ``id``) again changes nothing."""

    def runs(self, runbook: str | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[DrillRun]:
        """Runs newest first (by start, then id); ``runbook`` matches the run's name or its file."""

    def last_success(self, runbook: str) -> DrillRun | None: ...

    def runbooks(self) -> list[str]:
        """Every runbook name with at least one run, sorted."""

    def close(self) -> None: ...

    def __enter__(self) -> History: ...

    def __exit__(self, *exc: object) -> None: ...


def default_history_path() -> Path:
    from doops.journal import state_dir

    return state_dir() / DB_FILE


def open_history(url: str | None = None) -> History:
    """The store ``url`` names (``postgresql://``, ``sqlite:///path``, a path), or the default SQLite file.

    Bad URL: UsageError (exit 4); PostgreSQL unreachable: UnknownStateError (exit 3). Either way the message
    names the URL masked.
    """
    if url is None:
        return SqliteHistory(default_history_path())
    from doops.config import history_url_problem

    problem = history_url_problem(url)
    if problem:
        raise UsageError(mask(problem), hint="give postgresql://user@host:5432/db, sqlite:///path or a file path")
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if scheme.lower() in ("postgresql", "postgres"):
            return PostgresHistory(url)
        return SqliteHistory(Path(rest))  # sqlite:///abs/path -> /abs/path
    return SqliteHistory(Path(url[len("sqlite:"):] if url.startswith("sqlite:") else url))


# -- encoding shared by both stores ---------------------------------------------------------------------------


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _time_text(t: datetime) -> str:
    """Fixed width, so SQLite's text order is time order."""
    return _utc(t).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _time_value(value: Any) -> datetime:
    return _utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def _opt_time(value: Any) -> datetime | None:
    return _time_value(value) if value is not None else None


def _masked(value: Any) -> Any:
    """Inputs as stored: every string masked (they should arrive masked; a history outlives a mistake)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _encode(run: DrillRun) -> dict[str, Any]:
    steps = [{**asdict(s), "started_at": _time_text(s.started_at) if s.started_at else None,
              "ended_at": _time_text(s.ended_at) if s.ended_at else None} for s in run.steps]
    return {
        "id": run.id, "runbook": run.runbook, "file": run.file, "started_at": _utc(run.started_at),
        "ended_at": _utc(run.ended_at), "outcome": run.outcome, "success": bool(run.success),
        "objectives": json.dumps([asdict(o) for o in run.objectives]), "steps": json.dumps(steps),
        "inputs": json.dumps(_masked(run.inputs), default=str), "host": run.host, "user_name": run.user,
        "api_host": run.api_host, "sandbox": bool(run.sandbox),
    }


def _decode(row: Sequence[Any]) -> DrillRun:
    data = dict(zip(COLUMNS, row, strict=True))
    objectives = [ObjectiveMeasure(o["name"], o.get("target_seconds"), o.get("measured_seconds"), o.get("met"))
                  for o in json.loads(data["objectives"])]
    steps = [StepSummary(s["id"], s["kind"], s["name"], s["status"], _opt_time(s.get("started_at")),
                         _opt_time(s.get("ended_at")), s.get("duration_seconds"), s.get("error"))
             for s in json.loads(data["steps"])]
    return DrillRun(runbook=data["runbook"], file=data["file"], started_at=_time_value(data["started_at"]),
                    ended_at=_time_value(data["ended_at"]), outcome=data["outcome"], success=bool(data["success"]),
                    objectives=objectives, steps=steps, inputs=json.loads(data["inputs"]), host=data["host"],
                    user=data["user_name"], api_host=data["api_host"], sandbox=bool(data["sandbox"]), id=data["id"])


def _newer_than_known(url: str, found: int) -> HistoryError:
    return HistoryError(f"drill history {url} has schema version {found}, newer than this doops knows "
                        f"({SCHEMA_VERSION})", hint="upgrade doops on this machine")


class _Base:
    """What both stores share: the query shape, the context manager."""

    url: str
    _version = 0
    _bytewise = ""  # the collation that orders ids by bytes in both stores (SQLite's default is)

    @property
    def version(self) -> int:
        return self._version

    def __enter__(self) -> History:
        return self  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _select(self, mark: str, runbook: str | None, since: datetime | None, limit: int | None,
                success: bool | None = None) -> tuple[str, list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if runbook is not None:
            where.append(f"(runbook = {mark} OR file = {mark})")
            args += [runbook, runbook]
        if since is not None:
            where.append(f"started_at >= {mark}")
            args.append(self._param_time(since))
        if success is not None:
            where.append(f"success = {mark}")
            args.append(self._param_bool(success))
        sql = f"SELECT {', '.join(COLUMNS)} FROM drill_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY started_at DESC, id {self._bytewise} DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql, args

    def _param_time(self, t: datetime) -> Any:
        return _utc(t)

    def _param_bool(self, b: bool) -> Any:
        return b


class SqliteHistory(_Base):
    """One file, WAL mode (readers never wait for a writer) and a busy timeout (writers queue)."""

    def __init__(self, path: Path, *, upto: int | None = None) -> None:
        self.path = path
        self.url = f"sqlite://{path}" if path.is_absolute() else str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._migrate(SCHEMA_VERSION if upto is None else upto)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open drill history {self.url}: {exc}",
                               hint="check the path is a writable SQLite file (or give --history-url)") from exc

    def _migrate(self, target: int) -> None:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")  # the write lock first: a second opener waits, then sees the new version
        try:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = c.execute("SELECT max(version) FROM schema_version").fetchone()
            found = int(row[0]) if row and row[0] is not None else 0
            if found > SCHEMA_VERSION:
                raise _newer_than_known(self.url, found)
            for version, sqlite_sql, _ in MIGRATIONS:
                if found < version <= target:
                    for statement in sqlite_sql:
                        c.execute(statement)
                    c.execute("DELETE FROM schema_version")
                    c.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                    found = version
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        self._version = found

    def _param_time(self, t: datetime) -> Any:
        return _time_text(t)

    def _param_bool(self, b: bool) -> Any:
        return int(b)

    def record(self, run: DrillRun) -> None:
        data = _encode(run)
        data["started_at"] = _time_text(data["started_at"])
        data["ended_at"] = _time_text(data["ended_at"])
        data["success"] = int(data["success"])
        data["sandbox"] = int(data["sandbox"])
        cols = list(COLUMNS)
        values = [data[c] for c in cols]
        if self._version >= 2:
            cols.append("recorded_at")
            values.append(_time_text(datetime.now(UTC)))
        sql = (f"INSERT INTO drill_runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               "ON CONFLICT (id) DO NOTHING")
        try:
            self._conn.execute(sql, values)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot record the drill run in {self.url}: {exc}") from exc

    def _query(self, sql: str, args: list[Any]) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read drill history {self.url}: {exc}") from exc

    def runs(self, runbook: str | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[DrillRun]:
        return [_decode(r) for r in self._query(*self._select("?", runbook, since, limit))]

    def last_success(self, runbook: str) -> DrillRun | None:
        rows = self._query(*self._select("?", runbook, None, 1, success=True))
        return _decode(rows[0]) if rows else None

    def runbooks(self) -> list[str]:
        return sorted(r[0] for r in self._query("SELECT DISTINCT runbook FROM drill_runs", []))

    def close(self) -> None:
        self._conn.close()


class PostgresHistory(_Base):
    """A shared history for drills run from many machines; each write is one transaction."""

    _bytewise = 'COLLATE "C"'

    def __init__(self, url: str, *, upto: int | None = None) -> None:
        import psycopg

        from doops import masking

        self.url = mask(url)
        try:
            from urllib.parse import unquote, urlsplit

            password = urlsplit(url).password
            if password:
                masking.register(unquote(password))
                masking.register(password)
        except ValueError:
            pass
        try:
            self._conn = psycopg.connect(url, connect_timeout=PG_CONNECT_TIMEOUT, autocommit=True,
                                         application_name="doops-drills")
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UnknownStateError(f"cannot connect to drill history {self.url}: {mask(first)}",
                                    hint="check the URL, that the server is up and the password "
                                         "(PGPASSWORD, ~/.pgpass or the URL in the env var)") from None
        try:
            self._conn.execute("SET TIME ZONE 'UTC'")
            self._migrate(SCHEMA_VERSION if upto is None else upto)
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self, target: int) -> None:
        import psycopg

        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_LOCK_KEY,))
                self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
                found = int(row[0]) if row and row[0] is not None else 0
                if found > SCHEMA_VERSION:
                    raise _newer_than_known(self.url, found)
                for version, _, pg_sql in MIGRATIONS:
                    if found < version <= target:
                        for statement in pg_sql:
                            self._conn.execute(statement)
                        self._conn.execute("DELETE FROM schema_version")
                        self._conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                        found = version
        except psycopg.Error as exc:
            raise HistoryError(f"cannot prepare drill history {self.url}: {mask(str(exc).strip())}",
                               hint="the user needs CREATE on the database's public schema") from None
        self._version = found

    def record(self, run: DrillRun) -> None:
        import psycopg

        data = _encode(run)
        cols = list(COLUMNS)
        values = [data[c] for c in cols]
        if self._version >= 2:
            cols.append("recorded_at")
            values.append(datetime.now(UTC))
        sql = (f"INSERT INTO drill_runs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
               "ON CONFLICT (id) DO NOTHING")
        try:
            with self._conn.transaction():
                self._conn.execute(sql, values)
        except psycopg.Error as exc:
            raise HistoryError(f"cannot record the drill run in {self.url}: {mask(str(exc).strip())}") from None

    def _query(self, sql: str, args: list[Any]) -> list[Any]:
        import psycopg

        try:
            return self._conn.execute(sql, args).fetchall()
        except psycopg.OperationalError as exc:
            raise UnknownStateError(f"cannot read drill history {self.url}: {mask(str(exc).strip())}") from None
        except psycopg.Error as exc:
            raise HistoryError(f"cannot read drill history {self.url}: {mask(str(exc).strip())}") from None

    def runs(self, runbook: str | None = None, since: datetime | None = None,
             limit: int | None = None) -> list[DrillRun]:
        return [_decode(r) for r in self._query(*self._select("%s", runbook, since, limit))]

    def last_success(self, runbook: str) -> DrillRun | None:
        rows = self._query(*self._select("%s", runbook, None, 1, success=True))
        return _decode(rows[0]) if rows else None

    def runbooks(self) -> list[str]:
        return sorted(r[0] for r in self._query("SELECT DISTINCT runbook FROM drill_runs", []))

    def close(self) -> None:
        self._conn.close()
