"""PostgreSQL I/O: TLS connections with fast timeouts, replication and usage measured on the servers."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from doops import masking
from doops.clients.models import Connection
from doops.errors import UnknownStateError


@dataclass
class Target:
    """Where and how to connect. The password is registered as a secret and never rendered."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str = "require"
    ca_pem: str | None = None  # for verify-full: the cluster's CA from the API
    connect_timeout: int = 3

    @classmethod
    def from_connection(cls, conn: Connection, *, dbname: str | None = None, user: str | None = None,
                        password: str | None = None, sslmode: str = "require", ca_pem: str | None = None,
                        connect_timeout: int = 3) -> Target:
        pw = password if password is not None else conn.password
        masking.register(pw)
        return cls(conn.host, conn.port, user or conn.user, pw, dbname or conn.database or "defaultdb",
                   sslmode, ca_pem, connect_timeout)

    def masked(self) -> str:
        return f"postgres://{self.user}:***@{self.host}:{self.port}/{self.dbname}?sslmode={self.sslmode}"


@contextmanager
def connect(target: Target, *, autocommit: bool = True, statement_timeout_ms: int = 5000) -> Iterator[Any]:
    """A psycopg connection; failures become UnknownStateError naming the masked target, never the password."""
    import psycopg

    kwargs: dict[str, Any] = {
        "host": target.host, "port": target.port, "user": target.user, "password": target.password,
        "dbname": target.dbname, "sslmode": target.sslmode, "connect_timeout": target.connect_timeout,
        "autocommit": autocommit, "options": f"-c statement_timeout={statement_timeout_ms}",
        "application_name": "doops",
    }
    ca_file = None
    if target.ca_pem and target.sslmode in ("verify-ca", "verify-full"):
        ca_file = tempfile.NamedTemporaryFile("w", suffix=".crt", delete=True)  # noqa: SIM115 - closed below
        ca_file.write(target.ca_pem)
        ca_file.flush()
        kwargs["sslrootcert"] = ca_file.name
    try:
        try:
            conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise UnknownStateError(
                f"cannot connect to {target.masked()}: {masking.mask(_first_line(exc))}"
            ) from None
        try:
            yield conn
        finally:
            conn.close()
    finally:
        if ca_file is not None:
            ca_file.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class ReplicaLag:
    in_recovery: bool
    replay_paused: bool
    lag_bytes: int | None
    lag_seconds: float | None
    replay_lsn: str | None


@dataclass
class Usage:
    connections: int
    max_connections: int
    reserved: int

    @property
    def ratio(self) -> float:
        usable = max(self.max_connections - self.reserved, 1)
        return self.connections / usable


def primary_lsn(target: Target) -> tuple[str, bool]:
    """(current WAL LSN, in_recovery) of a server."""
    with connect(target) as conn:
        row = conn.execute(
            "select case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end::text,"
            " pg_is_in_recovery()"
        ).fetchone()
    return str(row[0]), bool(row[1])


def replica_lag(replica: Target, primary: Target | None) -> ReplicaLag:
    """Lag read on the servers: bytes = primary LSN - replica replay LSN; seconds = replay delay.

    The replay delay is ``now() - pg_last_xact_replay_timestamp()`` when bytes are behind, 0 when caught up
    (an idle primary must not look like lag). Without a reachable primary, bytes are unknown (None).
    """
    with connect(replica) as conn:
        if not _in_recovery(conn):
            return ReplicaLag(False, False, 0, 0.0, None)
        row = conn.execute(
            "select pg_is_wal_replay_paused(), pg_last_wal_replay_lsn()::text,"
            " extract(epoch from now() - pg_last_xact_replay_timestamp())::float8"
        ).fetchone()
    paused, replay_lsn, delay = bool(row[0]), row[1], row[2]
    lag_bytes: int | None = None
    if primary is not None and replay_lsn:
        with connect(primary) as pconn:
            b = pconn.execute(
                "select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", (replay_lsn,)
            ).fetchone()
        lag_bytes = max(int(b[0]), 0) if b and b[0] is not None else None
    seconds: float | None = None
    if lag_bytes == 0:
        seconds = 0.0
    elif delay is not None:
        seconds = max(float(delay), 0.0)
    return ReplicaLag(True, paused, lag_bytes, seconds, replay_lsn)


def _in_recovery(conn: Any) -> bool:
    row = conn.execute("select pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def usage(target: Target) -> Usage:
    with connect(target) as conn:
        row = conn.execute(
            "select (select count(*) from pg_stat_activity where backend_type = 'client backend'),"
            " current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
        ).fetchone()
    return Usage(int(row[0]), int(row[1]), int(row[2]))


@dataclass
class Writability:
    """Whether a server takes writes, learnt without writing: status never changes what it judges."""

    in_recovery: bool
    read_only: bool  # default_transaction_read_only for a new session: a soft fence a session can lift

    @property
    def writable(self) -> bool:
        return not self.in_recovery and not self.read_only


def writability(target: Target) -> Writability:
    with connect(target) as conn:
        row = conn.execute("select pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'").fetchone()
    return Writability(bool(row and row[0]), bool(row and row[1]))


def _table(name: str) -> Any:
    """A configured table name (``schema.table`` or ``table``) as a quoted identifier: never string formatting."""
    from psycopg import sql

    parts = [p for p in name.split(".") if p]
    if not 1 <= len(parts) <= 2:
        raise UnknownStateError(f"invalid table name {name!r}: use table or schema.table")
    return sql.Identifier(*parts)


def prove_write(target: Target, table: str) -> None:
    """The server itself takes a write: not in recovery, and a canary row written in a transaction reads back."""
    import uuid

    from psycopg import sql

    token = uuid.uuid4().hex
    ident = _table(table)
    with connect(target, autocommit=False) as conn:
        row = conn.execute("select pg_is_in_recovery()").fetchone()
        if not row or row[0]:
            conn.rollback()
            raise UnknownStateError(f"{target.masked()} is still in recovery")
        conn.execute(sql.SQL("create table if not exists {} (id bigserial primary key, "
                             "written_at timestamptz not null default clock_timestamp(), token text not null)")
                     .format(ident))
        conn.execute(sql.SQL("insert into {} (token) values (%s)").format(ident), (token,))
        conn.commit()
        back = conn.execute(sql.SQL("select count(*) from {} where token = %s").format(ident), (token,)).fetchone()
        conn.commit()
    if not back or back[0] != 1:
        raise UnknownStateError(f"canary written to {target.masked()} did not read back")


def heartbeat_last_id(target: Target, table: str, before: Any) -> int:
    """The newest heartbeat row a server holds that was written at or before ``before``."""
    from psycopg import sql

    with connect(target) as conn:
        row = conn.execute(sql.SQL("select coalesce(max(id), 0) from {} where written_at <= %s")
                           .format(_table(table)), (before,)).fetchone()
    return int(row[0]) if row else 0


def heartbeat_rows_after(target: Target, table: str, before: Any, after_id: int) -> int:
    """Heartbeat rows written at or before ``before`` with an id above ``after_id`` (rows another server lacks)."""
    from psycopg import sql

    with connect(target) as conn:
        row = conn.execute(sql.SQL("select count(*) from {} where written_at <= %s and id > %s")
                           .format(_table(table)), (before, after_id)).fetchone()
    return int(row[0]) if row else 0


def prove_write_rolled_back(target: Target) -> None:
    """A server answers, is not in recovery and takes a write in a transaction that is then rolled back: proof
    without leaving anything behind (a restored cluster is checked, not changed)."""
    with connect(target, autocommit=False) as conn:
        row = conn.execute("select pg_is_in_recovery()").fetchone()
        if not row or row[0]:
            conn.rollback()
            raise UnknownStateError(f"{target.masked()} is in recovery")
        conn.execute("create temporary table doops_probe (id int)")
        conn.execute("insert into doops_probe values (1)")
        back = conn.execute("select count(*) from doops_probe").fetchone()
        conn.rollback()
    if not back or back[0] != 1:
        raise UnknownStateError(f"a write to {target.masked()} did not read back")


def newest_heartbeat(target: Target, table: str) -> Any:
    """The time of the newest heartbeat row a server holds (None when the table is empty)."""
    from psycopg import sql

    with connect(target) as conn:
        row = conn.execute(sql.SQL("select max(written_at) from {}").format(_table(table))).fetchone()
    return row[0] if row else None


def first_value(target: Target, query: str) -> tuple[bool, Any]:
    """(a row came back, its first column) of an SRE's own SQL, run in a read-only transaction so that a check
    or a runbook probe cannot change the cluster it reads. A SQL error is an UnknownStateError (one line)."""
    import psycopg

    with connect(target, autocommit=False) as conn:
        try:
            conn.execute("set transaction read only")
            cur = conn.execute(query)  # an SRE's own SQL, in a read-only transaction
            row = cur.fetchone() if cur.description else None
        except psycopg.Error as exc:
            conn.rollback()
            raise UnknownStateError(f"{_first_line(exc)}") from None
        conn.rollback()
    return (False, None) if row is None else (True, row[0])


def check_query(target: Target, query: str) -> tuple[bool, Any]:
    """An SRE's check: the first column of the first row must be true or non-zero. Run read-only, so a check
    cannot change the cluster it checks."""
    found, value = first_value(target, query)
    if not found:
        return False, "no row"
    ok = bool(value) if isinstance(value, bool | int | float) else value not in (None, "", "0", "f", "false")
    return ok, value


@dataclass
class Executed:
    """What one write did: rows it touched, the first row it returned (``RETURNING``), and whether it was
    committed (a write touching more rows than allowed is rolled back)."""

    rowcount: int
    row: dict[str, Any] | None
    committed: bool


def execute(target: Target, statement: str, params: Any = None, *, max_rows: int | None = None,
            statement_timeout_ms: int = 60_000) -> Executed:
    """Run one write statement in its own transaction: committed when it touched at most ``max_rows`` rows,
    else rolled back (a WHERE clause wider than meant changes nothing). ``params`` go to the server as
    parameters (``%(name)s``), never into the text. A SQL error is an UnknownStateError (one line), rolled back."""
    import psycopg

    with connect(target, autocommit=False, statement_timeout_ms=statement_timeout_ms) as conn:
        try:
            cur = conn.execute(statement, params or None)
            rowcount = int(cur.rowcount) if cur.rowcount is not None and cur.rowcount >= 0 else 0
            row = None
            if cur.description:
                first = cur.fetchone()
                if first is not None:
                    row = {d.name: v for d, v in zip(cur.description, first, strict=False)}
        except psycopg.Error as exc:
            conn.rollback()
            raise UnknownStateError(masking.mask(_first_line(exc))) from None
        if max_rows is not None and rowcount > max_rows:
            conn.rollback()
            return Executed(rowcount, row, False)
        conn.commit()
    return Executed(rowcount, row, True)


@dataclass
class PoolUsage:
    """One PgBouncer pool as PgBouncer itself counts it (``SHOW POOLS`` summed over its users, with
    ``SHOW DATABASES``' size): what clients are waiting for, not what the API was told."""

    name: str  # the database clients ask for: the pool's name
    size: int | None  # PgBouncer's pool_size for it; None when PgBouncer does not serve it
    cl_active: int = 0
    cl_waiting: int = 0
    sv_active: int = 0
    sv_idle: int = 0
    sv_other: int = 0  # used, tested, logging in
    maxwait_seconds: float = 0.0
    mode: str | None = None

    @property
    def servers(self) -> int:
        return self.sv_active + self.sv_idle + self.sv_other

    @property
    def ratio(self) -> float:
        """Server connections busy right now against the pool's size."""
        return self.sv_active / self.size if self.size else 0.0


PGBOUNCER_DB = "pgbouncer"  # PgBouncer's admin console: SHOW commands for stats users


@contextmanager
def _pgbouncer(target: Target) -> Iterator[Any]:
    """A connection to PgBouncer's admin console.

    Why not :func:`connect`: the console speaks only the simple-query protocol (``prepare_threshold=None``,
    autocommit) and a real PgBouncer refuses startup parameters it does not know, such as ``options``.
    """
    import psycopg

    kwargs: dict[str, Any] = {
        "host": target.host, "port": target.port, "user": target.user, "password": target.password,
        "dbname": PGBOUNCER_DB, "sslmode": target.sslmode, "connect_timeout": target.connect_timeout,
        "autocommit": True, "prepare_threshold": None,
    }
    ca_file = None
    if target.ca_pem and target.sslmode in ("verify-ca", "verify-full"):
        ca_file = tempfile.NamedTemporaryFile("w", suffix=".crt", delete=True)  # noqa: SIM115 - closed below
        ca_file.write(target.ca_pem)
        ca_file.flush()
        kwargs["sslrootcert"] = ca_file.name
    shown = replace(target, dbname=PGBOUNCER_DB).masked()
    try:
        try:
            conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise UnknownStateError(f"cannot connect to {shown}: {masking.mask(_first_line(exc))}") from None
        try:
            yield conn
        except psycopg.Error as exc:
            raise UnknownStateError(f"{shown}: {masking.mask(_first_line(exc))}") from None
        finally:
            conn.close()
    finally:
        if ca_file is not None:
            ca_file.close()


def _rows(conn: Any, command: str) -> list[dict[str, Any]]:
    cur = conn.execute(command)
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]


def pgbouncer_pools(target: Target) -> list[PoolUsage]:
    """Every database PgBouncer serves at ``target``'s host and port, with its clients and servers.

    ``SHOW DATABASES`` gives each pool's size (a pool nobody connected to yet has no ``SHOW POOLS`` row);
    ``SHOW POOLS`` gives one row per (database, user), summed here. PgBouncer's own console is left out.
    """
    with _pgbouncer(target) as conn:
        databases = _rows(conn, "SHOW DATABASES")
        pools = _rows(conn, "SHOW POOLS")
    out: dict[str, PoolUsage] = {}
    for d in databases:
        name = str(d.get("name"))
        if name != PGBOUNCER_DB:
            out[name] = PoolUsage(name, int(d.get("pool_size") or 0), mode=d.get("pool_mode"))
    for p in pools:
        name = str(p.get("database"))
        if name == PGBOUNCER_DB:
            continue
        u = out.setdefault(name, PoolUsage(name, None))
        u.cl_active += int(p.get("cl_active") or 0)
        u.cl_waiting += int(p.get("cl_waiting") or 0)
        u.sv_active += int(p.get("sv_active") or 0)
        u.sv_idle += int(p.get("sv_idle") or 0)
        u.sv_other += sum(int(p.get(k) or 0) for k in ("sv_used", "sv_tested", "sv_login"))
        wait = float(p.get("maxwait") or 0) + float(p.get("maxwait_us") or 0) / 1e6
        u.maxwait_seconds = max(u.maxwait_seconds, wait)
        u.mode = u.mode or p.get("pool_mode")
    return list(out.values())


class Databases:
    """The PostgreSQL calls operations make, as one object a platform holds (tests give a fake)."""

    primary_lsn = staticmethod(primary_lsn)
    replica_lag = staticmethod(replica_lag)
    writability = staticmethod(writability)
    prove_write = staticmethod(prove_write)
    heartbeat_last_id = staticmethod(heartbeat_last_id)
    heartbeat_rows_after = staticmethod(heartbeat_rows_after)
    usage = staticmethod(usage)
    prove_write_rolled_back = staticmethod(prove_write_rolled_back)
    newest_heartbeat = staticmethod(newest_heartbeat)
    check_query = staticmethod(check_query)
    pgbouncer_pools = staticmethod(pgbouncer_pools)

