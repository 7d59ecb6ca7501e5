"""A fleet of real PostgreSQL servers on 127.0.0.1 for the local DigitalOcean twin.

Every server is a real ``postgres`` process: a primary per cluster (TLS, SCRAM auth, WAL archiving),
streaming standbys/read replicas made with ``pg_basebackup -R``, real promotion, real base backups and
real point-in-time recovery from the WAL archive.

Layout under ``base_dir`` (``tls/``, ``logs/`` and ``pids/`` stay root-owned; the rest is owned by the
unprivileged server user when running as root)::

    data/<server>/                 data directories
    archive/<server>/              WAL archive written by archive_command of that server
    backups/<cluster>/<ts>/        pg_basebackup output (+ <ts>.json metadata)
    logs/<server>.log              server stderr
    pids/<server>.pid              JSON {pid, name, data_dir, socket_dir} (see doops.sandbox.pidfiles)
    tls/server.{crt,key}           the fleet's certificate, signed by the sandbox CA (tls.SandboxCA)

Clients connect over TCP with TLS (``sslmode=verify-full`` with the CA works: the certificate names
127.0.0.1 and localhost) and a SCRAM password; the fleet itself (setup, admin
queries, replication, pg_basebackup) uses a private Unix socket directory (``/tmp/doops-pg-*``, mode 0700,
owned by the server user) with ``trust``, so no password is ever written to disk or to a conninfo.

Permissions: when root, servers and tools run as the ``doops-sandbox`` system user (created with
useradd, else ``nobody``); ``base_dir`` and each ancestor lacking it get ``o+x`` (search, not read) so
that user can reach its directories. Methods are thread safe, so callers may provision in parallel.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from doops.ops import seam
from doops.sandbox.pg_util import (
    PgNotFoundError,
    RunAs,
    dir_size,
    ensure_traversable,
    find_pg_bindir,
    free_port,
    pg_major,
    pg_semver,
    pg_version,
    read_postmaster_status,
    resolve_run_as,
    run_tool,
    scram_verifier,
    terminate_tree,
    wait_until,
)
from doops.sandbox.pidfiles import forget_postmaster, kill_postmasters, record_postmaster
from doops.sandbox.tls import SandboxCA

__all__ = [
    "Backup",
    "NoBaseBackupError",
    "PgFleet",
    "PgNotFoundError",
    "PgServer",
    "ReplicationStatus",
    "find_pg_bindir",
]

log = logging.getLogger(__name__)

ADMIN_USER = "doadmin"
DATABASES = ("learnhub", "defaultdb")
HEARTBEAT_TABLE = "public.doops_heartbeat"
TEMPLATE_REV = "4"  # bump when the template contents change
START_TIMEOUT = 60.0


class NoBaseBackupError(LookupError):
    """PITR asked for a time before the oldest finished base backup."""


@dataclass
class PgServer:
    """One running (or formerly running) postmaster of the fleet."""

    name: str
    cluster: str
    role: str  # primary | standby | replica | former_primary
    port: int
    data_dir: Path
    region: str = ""
    host: str = "127.0.0.1"
    pid: int | None = None
    upstream: str | None = None  # server this one streams from
    slot: str | None = None  # replication slot on the upstream
    state: str = "stopped"  # running | stopped | killed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_dir"] = str(self.data_dir)
        return d


@dataclass(frozen=True)
class Backup:
    """A finished pg_basebackup of a cluster."""

    cluster: str
    id: str
    path: Path
    started_at: dt.datetime
    created_at: dt.datetime  # when the backup finished (restorable from then on)
    size_bytes: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster, "id": self.id, "path": str(self.path), "source": self.source,
            "started_at": self.started_at.isoformat(), "created_at": self.created_at.isoformat(),
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True)
class ReplicationStatus:
    """Replication position of a server, read from the servers themselves."""

    name: str
    upstream: str | None
    in_recovery: bool
    replay_paused: bool
    receive_lsn: str | None
    replay_lsn: str | None
    upstream_lsn: str | None
    lag_bytes: int
    lag_seconds: float
    streaming: bool


@dataclass
class _Restore:
    """A point-in-time restore under way: how to cancel it, when it has finished (cleaned up, if cancelled), and
    what it reads (the source's base backups and WAL archives: a drop of another cluster must leave them)."""

    cancel: seam.Cancel
    source: str
    archives: list[str]
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Heartbeat:
    cluster: str
    thread: threading.Thread
    stop: threading.Event
    stats: dict[str, Any] = field(default_factory=lambda: {"rows": 0, "errors": 0, "last_error": None})


def _q(value: str) -> str:
    """Quote a postgresql.conf string value."""
    return "'" + value.replace("'", "''") + "'"


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.astimezone()  # naive means local time, as in Python


def _verifier(password: str) -> str:
    """What ``ALTER ROLE ... PASSWORD`` is given: a SCRAM verifier, so the clear password never reaches the
    server (an ASCII one; any other is passed as is and hashed by the server)."""
    return scram_verifier(password) if password.isascii() else password


def _slot_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:63]


def _stop_at_exit(ref: weakref.ref[PgFleet]) -> None:
    fleet = ref()
    if fleet is not None:
        fleet.close()


class PgFleet:
    """Manage the sandbox PostgreSQL servers under ``base_dir``; see the module docstring."""

    def __init__(self, base_dir: Path, password: str, *, bindir: Path | None = None,
                 ca: SandboxCA | None = None) -> None:
        self.base_dir = Path(base_dir).resolve()
        self._password = password
        # One SCRAM verifier per role, computed once: the servers and PgBouncer's auth file hold the same one,
        # which is what lets PgBouncer log in to the server with the client's own SCRAM proof.
        self._verifiers: dict[str, str] = {ADMIN_USER: _verifier(password)}
        self.bindir = bindir or find_pg_bindir()
        self.version = pg_version(self.bindir)
        self.semver = pg_semver(self.version)
        self.major = pg_major(self.version)
        self.run_as: RunAs = resolve_run_as()
        self._lock = threading.RLock()
        self._servers: dict[str, PgServer] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._primary: dict[str, str] = {}  # cluster -> current primary server
        self._lineage: dict[str, list[str]] = {}  # cluster -> servers whose archives hold its WAL
        self._backups: dict[str, list[Backup]] = {}
        self._heartbeats: dict[str, _Heartbeat] = {}
        self._restores: dict[str, _Restore] = {}  # new cluster -> its restore under way
        self._ports: set[int] = set()
        self._closed = False

        self.base_dir.mkdir(parents=True, exist_ok=True)
        kill_postmasters(self.base_dir)  # leftovers of a crashed supervisor
        ensure_traversable(self.base_dir)
        for sub in ("logs", "pids", "tls"):
            (self.base_dir / sub).mkdir(exist_ok=True)
        for sub in ("data", "archive", "backups"):
            p = self.base_dir / sub
            p.mkdir(exist_ok=True)
            p.chmod(0o700)
            self.run_as.chown(p)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="doops-pg-"))
        self.socket_dir.chmod(0o700)
        self.run_as.chown(self.socket_dir)
        self.ca = ca or SandboxCA.create(self.base_dir / "tls", label=self.base_dir.name)
        self.tls_cert = self.base_dir / "tls" / "server.crt"
        self._tls_key = self.base_dir / "tls" / "server.key"
        self.ca.issue(self.tls_cert, self._tls_key)
        atexit.register(_stop_at_exit, weakref.ref(self))
        log.info("pg fleet at %s using %s (%s) as %s", self.base_dir, self.bindir, self.version, self.run_as.name)

    # ------------------------------------------------------------------ lookups

    @property
    def servers(self) -> dict[str, PgServer]:
        with self._lock:
            return dict(self._servers)

    def get(self, name: str) -> PgServer:
        with self._lock:
            try:
                return self._servers[name]
            except KeyError:
                raise KeyError(f"no PostgreSQL server named {name!r}") from None

    def primary(self, cluster: str) -> PgServer:
        """Current primary of `cluster` (follows promotions)."""
        with self._lock:
            if cluster not in self._primary:
                raise KeyError(f"no PostgreSQL cluster named {cluster!r}")
            return self._servers[self._primary[cluster]]

    def standby(self, cluster: str) -> PgServer | None:
        """A running standby node of `cluster` (not a read replica), if it has one."""
        with self._lock:
            return next((s for s in self._servers.values()
                         if s.cluster == cluster and s.role == "standby" and s.state == "running"), None)

    def verifier(self, user: str) -> str | None:
        """The SCRAM verifier the servers hold for `user` (for PgBouncer's auth file), if the fleet set it."""
        with self._lock:
            return self._verifiers.get(user)

    def reserve_port(self) -> int:
        """A free port kept for a server started later (a restore's port is known when it is asked for)."""
        with self._lock:
            port = free_port(self._ports)
            self._ports.add(port)
            return port

    def release_port(self, port: int) -> None:
        """Give back a port from :meth:`reserve_port` that no server will take."""
        with self._lock:
            if not any(s.port == port and s.state == "running" for s in self._servers.values()):
                self._ports.discard(port)

    def list_backups(self, cluster: str) -> list[Backup]:
        with self._lock:
            return sorted(self._backups.get(cluster, []), key=lambda b: b.created_at)

    def dsn(self, name: str, dbname: str = "learnhub") -> str:
        """Client DSN (TCP, TLS required, password included) for server `name`."""
        srv = self.get(name)
        pw = quote(self._password, safe="")
        return f"postgresql://{ADMIN_USER}:{pw}@{srv.host}:{srv.port}/{dbname}?sslmode=require"

    def masked_dsn(self, name: str, dbname: str = "learnhub") -> str:
        """Same as `dsn` with the password replaced by *** (safe to log/print)."""
        srv = self.get(name)
        return f"postgresql://{ADMIN_USER}:***@{srv.host}:{srv.port}/{dbname}?sslmode=require"

    def connect_admin(self, name: str, dbname: str = "learnhub", timeout: int = 5) -> psycopg.Connection[Any]:
        """Autocommit superuser connection over the fleet's private Unix socket (no password)."""
        return self._connect_srv(self.get(name), dbname, timeout)

    def _connect_srv(self, srv: PgServer, dbname: str, timeout: int = 5) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=str(self.socket_dir), port=srv.port, user=ADMIN_USER, dbname=dbname,
            autocommit=True, connect_timeout=timeout,
        )

    # ------------------------------------------------------------------ template

    def _cache_root(self) -> Path:
        """$DOOPS_PG_CACHE_DIR, else $XDG_CACHE_HOME/doops, else ~/.cache/doops of the *account* (not
        $HOME, which test suites often point at a throwaway dir, forcing a 3-5 s initdb per test)."""
        env = os.environ.get("DOOPS_PG_CACHE_DIR")
        if env:
            return Path(env)
        xdg = os.environ.get("XDG_CACHE_HOME")
        if xdg:
            return Path(xdg) / "doops" / "pg-template"
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "doops" / "pg-template"

    def _template(self) -> Path:
        """An initdb'd, clean-shutdown data dir with doadmin, the databases and the heartbeat table,
        cached per binary version so clusters start by copying instead of running initdb."""
        key = hashlib.sha256(f"{self.version}|{self.bindir}|{TEMPLATE_REV}".encode()).hexdigest()[:16]
        cache = self._cache_root() / key
        if (cache / "complete").exists():
            return cache / "data"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            (cache / ".probe").touch()
        except OSError as exc:  # e.g. a system user without a home directory
            log.info("template cache %s not writable (%s); caching under the base dir", cache, exc)
            cache = self.base_dir / ".pg-template-cache" / key
            cache.mkdir(parents=True, exist_ok=True)
        data = cache / "data"
        with open(cache / ".lock", "w") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            if (cache / "complete").exists():
                return data
            t0 = time.monotonic()
            work = self.base_dir / f".template-{os.getpid()}-{threading.get_ident()}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            self.run_as.chown(work)
            build = work / "data"
            try:
                self._build_template(build)
                shutil.rmtree(data, ignore_errors=True)
                shutil.copytree(build, cache / "data.tmp", symlinks=True)
                (cache / "data.tmp").rename(data)
                (cache / "complete").write_text(self.version + "\n")
            finally:
                shutil.rmtree(work, ignore_errors=True)
                shutil.rmtree(cache / "data.tmp", ignore_errors=True)
            log.info("built PostgreSQL template %s in %.2fs", data, time.monotonic() - t0)
        return data

    def _build_template(self, data: Path) -> None:
        run_tool(
            [str(self.bindir / "initdb"), "-D", str(data), "-U", ADMIN_USER, "-E", "UTF8", "--locale=C",
             "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--wal-segsize=1"],
            self.run_as, cwd=data.parent, timeout=180,
        )
        with open(data / "postgresql.conf", "a") as f:
            f.write("\n# doops sandbox settings (rewritten per server)\ninclude_if_exists = 'doops.conf'\n")
        (data / "pg_hba.conf").write_text(
            "# doops sandbox: trust only on the private 0700 socket dir; TCP needs TLS + SCRAM\n"
            "local     all          all                  trust\n"
            "local     replication  all                  trust\n"
            "hostssl   all          all    127.0.0.1/32  scram-sha-256\n"
            "hostssl   replication  all    127.0.0.1/32  scram-sha-256\n"
        )
        name = f"template-{os.getpid()}"
        srv = PgServer(name=name, cluster=name, role="primary", port=0, data_dir=data)
        self._launch(srv, tcp=False, track=False)
        try:
            with self._connect_srv(srv, "postgres") as conn:
                for db in DATABASES:
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(db), sql.Identifier(ADMIN_USER)))
            with self._connect_srv(srv, "learnhub") as conn:
                conn.execute(
                    f"CREATE TABLE {HEARTBEAT_TABLE} (id bigserial PRIMARY KEY, "
                    "written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                )
        finally:
            self._stop_proc(srv, signal.SIGINT)
        for junk in ("postmaster.opts", "postmaster.pid"):
            (data / junk).unlink(missing_ok=True)
        # after a clean shutdown only the segment holding the checkpoint is needed: drop the
        # recycled ones so every copy of the template is ~20% smaller
        out = run_tool([str(self.bindir / "pg_controldata"), "-D", str(data)], self.run_as, cwd=data.parent)
        m = re.search(r"REDO WAL file:\s*(\S+)", out)
        if m and (data / "pg_wal" / m.group(1)).exists():
            for seg in (data / "pg_wal").iterdir():
                if seg.is_file() and seg.name != m.group(1):
                    seg.unlink()

    # ------------------------------------------------------------------ process management

    def _settings(self, srv: PgServer, tcp: bool, extra: dict[str, str] | None) -> dict[str, str]:
        archive = self.base_dir / "archive" / srv.name
        dest = shlex.quote(str(archive))
        archive_cmd = (
            f"if test -f {dest}/%f; then cmp -s %p {dest}/%f; "
            f"else cp %p {dest}/%f.tmp && mv {dest}/%f.tmp {dest}/%f; fi"
        )
        s = {
            "listen_addresses": _q("127.0.0.1" if tcp else ""),
            "port": str(srv.port),
            "unix_socket_directories": _q(str(self.socket_dir)),
            "unix_socket_permissions": "0700",
            "cluster_name": _q(srv.name),
            "ssl": "on" if tcp else "off",
            "ssl_cert_file": _q("server.crt"),
            "ssl_key_file": _q("server.key"),
            "password_encryption": _q("scram-sha-256"),
            "wal_level": "replica",
            "archive_mode": "on" if tcp else "off",
            "archive_command": _q(archive_cmd),
            "archive_timeout": "60",  # restore_pitr() forces a WAL switch; 1 s would archive 1 MB/s
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "hot_standby_feedback": "on",
            "wal_receiver_status_interval": "1s",
            "wal_retrieve_retry_interval": "500ms",
            "fsync": "off",
            "full_page_writes": "on",
            "shared_buffers": "16MB",
            "max_connections": "40",
            "max_wal_size": "128MB",
            # keep recent WAL: concurrent pg_basebackups' checkpoints must not recycle a segment another
            # backup still has to stream before its temporary slot exists
            "wal_keep_size": "64MB",
            "min_wal_size": "16MB",
            "huge_pages": "off",
            "jit": "off",
            "timezone": _q("UTC"),
            "log_timezone": _q("UTC"),
            "log_line_prefix": _q("%m [%p] %q%u@%d "),
        }
        s.update(extra or {})
        return s

    def _write_conf(self, srv: PgServer, tcp: bool, extra: dict[str, str] | None) -> None:
        body = "".join(f"{k} = {v}\n" for k, v in self._settings(srv, tcp, extra).items())
        conf = srv.data_dir / "doops.conf"
        conf.write_text("# written by doops.sandbox.pg\n" + body)
        self.run_as.chown(conf)

    def _install_tls(self, data: Path) -> None:
        for src, dst, mode in ((self.tls_cert, "server.crt", 0o644), (self._tls_key, "server.key", 0o600)):
            target = data / dst
            shutil.copyfile(src, target)
            target.chmod(mode)
            self.run_as.chown(target)

    def _launch(
        self, srv: PgServer, *, tcp: bool = True, track: bool = True,
        extra: dict[str, str] | None = None, timeout: float = START_TIMEOUT, fixed_port: bool = False,
        cancel: seam.Cancel | None = None,
    ) -> None:
        """Start the postmaster for `srv` and wait until it accepts connections; retries on a port
        clash (the port is only probed free, postgres cannot bind port 0 itself) unless ``fixed_port``
        (a port already given out, as a restore's: it fails rather than move). A ``cancel`` ends the wait
        early (the caller stops the server)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
        env.update({"LC_ALL": "C", "HOME": str(srv.data_dir)})
        log_path = self.base_dir / "logs" / f"{srv.name}.log"
        ensure_traversable(self.base_dir)  # something (e.g. pytest) may have reset an ancestor to 0700
        if not self.socket_dir.is_dir():
            self.socket_dir.mkdir(mode=0o700)
            self.run_as.chown(self.socket_dir)
        for attempt in range(1 if fixed_port else 4):
            with self._lock:
                self._ports.discard(srv.port)
                if not srv.port or attempt:
                    srv.port = free_port(self._ports)
                self._ports.add(srv.port)
            self._write_conf(srv, tcp, extra)
            (srv.data_dir / "postmaster.pid").unlink(missing_ok=True)
            offset = log_path.stat().st_size if log_path.exists() else 0
            with open(log_path, "ab") as logf:
                proc = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(srv.data_dir)],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=srv.data_dir,
                    env=env, start_new_session=True, **self.run_as.popen_kwargs(),
                )
            srv.pid = proc.pid
            with self._lock:
                self._procs[srv.name] = proc
            if track:
                record_postmaster(self.base_dir, srv.name, proc.pid, srv.data_dir, self.socket_dir)

            def ready(proc: subprocess.Popen[bytes] = proc) -> bool:
                st = read_postmaster_status(srv.data_dir)
                return (proc.poll() is not None or (st is not None and st[0] == proc.pid and st[1] == "ready")
                        or (cancel is not None and cancel.cancelled))

            try:
                wait_until(ready, timeout, f"postgres {srv.name} to accept connections")
            except TimeoutError:
                self._stop_proc(srv, signal.SIGKILL)
                raise RuntimeError(f"postgres {srv.name} did not start: {self._log_tail(srv, offset)}") from None
            if proc.poll() is None:
                srv.state = "running"
                log.info("postgres %s (%s) running on 127.0.0.1:%s pid %s", srv.name, srv.role, srv.port, srv.pid)
                return
            tail = self._log_tail(srv, offset)
            srv.state = "stopped"
            forget_postmaster(self.base_dir, srv.name)
            if "could not bind" not in tail and "already in use" not in tail:
                raise RuntimeError(f"postgres {srv.name} exited with {proc.returncode}: {tail}")
            log.info("port %s taken, retrying %s", srv.port, srv.name)
        raise RuntimeError(f"postgres {srv.name}: no free port after retries")

    def _log_tail(self, srv: PgServer, offset: int = 0, limit: int = 3000) -> str:
        try:
            with open(self.base_dir / "logs" / f"{srv.name}.log", "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")[-limit:].strip()
        except OSError:
            return "(no log)"

    def _stop_proc(self, srv: PgServer, sig: int, grace: float = 15.0) -> None:
        """Signal the postmaster (SIGINT fast, SIGQUIT immediate, SIGKILL crash), kill leftovers, reap."""
        with self._lock:
            proc = self._procs.pop(srv.name, None)
        if proc is not None and proc.poll() is None:
            if sig == signal.SIGKILL:
                terminate_tree(proc.pid, str(srv.data_dir), signal.SIGKILL, grace=5)
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    log.warning("postgres %s ignored signal %s; killing it", srv.name, sig)
                    terminate_tree(proc.pid, str(srv.data_dir), signal.SIGKILL, grace=5)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        forget_postmaster(self.base_dir, srv.name)
        with self._lock:
            self._ports.discard(srv.port)
        srv.state = "killed" if sig == signal.SIGKILL else "stopped"

    def _fresh_dir(self, path: Path) -> None:
        if path.exists():
            with self._lock:
                busy = [s.name for s in self._servers.values() if s.data_dir == path and s.state == "running"]
            if busy:
                raise ValueError(f"server {busy[0]} is running in {path}")
            shutil.rmtree(path)

    def _register(self, srv: PgServer) -> None:
        with self._lock:
            old = self._servers.get(srv.name)
            if old is not None and old.state == "running":
                raise ValueError(f"PostgreSQL server {srv.name!r} already exists")
            self._servers[srv.name] = srv

    def _prepare_archive(self, name: str) -> None:
        archive = self.base_dir / "archive" / name
        shutil.rmtree(archive, ignore_errors=True)
        archive.mkdir()
        self.run_as.chown(archive)

    # ------------------------------------------------------------------ public operations

    def start_cluster(self, name: str, region: str = "") -> PgServer:
        """Create and start the primary of a new cluster (from the cached template) and set the
        doadmin password. An existing data dir/archive/backups of the same name are discarded."""
        t0 = time.monotonic()
        template = self._template()
        data = self.base_dir / "data" / name
        with self._lock:
            if name in self._servers and self._servers[name].state == "running":
                raise ValueError(f"PostgreSQL server {name!r} already exists")
        self._fresh_dir(data)
        shutil.copytree(template, data, symlinks=True)
        data.chmod(0o700)
        self.run_as.chown(data, recursive=True)
        self._install_tls(data)
        self._prepare_archive(name)
        shutil.rmtree(self.base_dir / "backups" / name, ignore_errors=True)
        srv = PgServer(name=name, cluster=name, role="primary", port=0, data_dir=data, region=region)
        self._register(srv)
        self._launch(srv)
        with self.connect_admin(name, "postgres") as conn:
            conn.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                sql.Identifier(ADMIN_USER), sql.Literal(self._verifiers[ADMIN_USER])))
        with self._lock:
            self._primary[name] = name
            self._lineage[name] = [name]
            self._backups[name] = []
        log.info("cluster %s started in %.2fs", name, time.monotonic() - t0)
        return srv

    def create_role(self, cluster: str, user: str, password: str, database: str = "learnhub") -> None:
        """A login role on the cluster's primary (replicated to its standbys and replicas) that may use
        `database` and create in its public schema: an application user such as a pool's."""
        verifier = _verifier(password)
        with self.connect_admin(self.primary(cluster).name, database) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(verifier)))
            conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(database), sql.Identifier(user)))
            conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(user)))
        with self._lock:
            self._verifiers[user] = verifier

    def provision(
        self, cluster: str, region: str = "", *, standbys: Sequence[tuple[str, str]] = (),
        replicas: Sequence[tuple[str, str]] = (), base_backup: bool = True,
    ) -> dict[str, PgServer]:
        """start_cluster, then the base backup, standbys and read replicas (name, region) in parallel:
        the fastest way to bring up a whole cluster. Returns the servers by name."""
        primary = self.start_cluster(cluster, region)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"pg-{cluster}") as pool:
            backup = pool.submit(self.take_base_backup, cluster) if base_backup else None
            futures = [pool.submit(self.add_standby, cluster, n, r) for n, r in standbys]
            futures += [pool.submit(self.add_standby, cluster, n, r, replica=True) for n, r in replicas]
            servers = {primary.name: primary} | {s.name: s for s in (f.result() for f in futures)}
            if backup is not None:
                backup.result()
        return servers

    def take_base_backup(self, cluster: str) -> Backup:
        """pg_basebackup of the cluster's current primary into backups/<cluster>/<timestamp>/."""
        srv = self.primary(cluster)
        started = dt.datetime.now(dt.UTC)
        bid = started.strftime("%Y%m%dT%H%M%S%fZ")
        parent = self.base_dir / "backups" / cluster
        parent.mkdir(exist_ok=True)
        self.run_as.chown(parent)
        dest = parent / bid
        ensure_traversable(self.base_dir)
        run_tool(
            [str(self.bindir / "pg_basebackup"), "-D", str(dest), "-h", str(self.socket_dir), "-p", str(srv.port),
             "-U", ADMIN_USER, "-X", "stream", "-c", "fast", "--no-sync", "-l", f"doops {bid}"],
            self.run_as, cwd=self.base_dir,
        )
        backup = Backup(
            cluster=cluster, id=bid, path=dest, started_at=started, created_at=dt.datetime.now(dt.UTC),
            size_bytes=dir_size(dest), source=srv.name,
        )
        (parent / f"{bid}.json").write_text(json.dumps(backup.to_dict(), indent=1))
        with self._lock:
            self._backups.setdefault(cluster, []).append(backup)
        log.info("base backup %s of %s: %d bytes", bid, cluster, backup.size_bytes)
        return backup

    def add_standby(self, cluster: str, name: str, region: str = "", *, replica: bool = False) -> PgServer:
        """Start a real streaming standby of the cluster's primary (pg_basebackup -R with its own
        replication slot). ``replica=True`` marks a read replica: promoting it detaches it into its
        own cluster instead of failing the cluster over. Returns once it is streaming."""
        primary = self.primary(cluster)
        data = self.base_dir / "data" / name
        slot = _slot_name(name)
        with self._lock:
            if name in self._servers and self._servers[name].state == "running":
                raise ValueError(f"PostgreSQL server {name!r} already exists")
        self._fresh_dir(data)
        with self.connect_admin(primary.name, "postgres") as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active", (slot,))
        ensure_traversable(self.base_dir)
        run_tool(
            [str(self.bindir / "pg_basebackup"), "-D", str(data), "-h", str(self.socket_dir),
             "-p", str(primary.port), "-U", ADMIN_USER, "-X", "stream", "-c", "fast", "--no-sync",
             "-R", "-C", "-S", slot],
            self.run_as, cwd=self.base_dir,
        )
        self._install_tls(data)
        self._prepare_archive(name)
        srv = PgServer(
            name=name, cluster=cluster, role="replica" if replica else "standby", port=0, data_dir=data,
            region=region, upstream=primary.name, slot=slot,
        )
        self._register(srv)
        self._launch(srv)
        with self._lock:
            if not replica:
                self._lineage.setdefault(cluster, []).append(name)

        def streaming() -> bool:
            with self.connect_admin(primary.name, "postgres") as conn:
                row = conn.execute(
                    "SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
                    (name,)).fetchone()
            return row is not None

        wait_until(streaming, 30, f"{name} to stream from {primary.name}", interval=0.05)
        return srv

    def promote(self, name: str) -> None:
        """Promote a standby/replica: it becomes writable and stops following its upstream (conninfo
        and slot settings are reset, its slot on the old upstream is dropped when possible)."""
        srv = self.get(name)
        with self.connect_admin(name, "postgres") as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                raise ValueError(f"{name} is not a standby")
            if conn.execute("SELECT pg_is_wal_replay_paused()").fetchone()[0]:  # type: ignore[index]
                conn.execute("SELECT pg_wal_replay_resume()")
            ok = conn.execute("SELECT pg_promote(true, 60)").fetchone()[0]  # type: ignore[index]
            if not ok:
                raise RuntimeError(f"promotion of {name} did not finish within 60s")
            conn.execute("ALTER SYSTEM RESET primary_conninfo")
            conn.execute("ALTER SYSTEM RESET primary_slot_name")
            conn.execute("SELECT pg_reload_conf()")
        old_upstream, slot = srv.upstream, srv.slot
        with self._lock:
            if srv.role == "replica":
                self._lineage[name] = [name, *self._lineage.get(srv.cluster, [])]
                srv.cluster = name
                self._backups.setdefault(name, [])
            else:
                prev = self._servers.get(self._primary.get(srv.cluster, ""))
                if prev is not None and prev is not srv:
                    prev.role = "former_primary"
            self._primary[srv.cluster] = name
            srv.role, srv.upstream, srv.slot = "primary", None, None
        log.info("promoted %s (was following %s)", name, old_upstream)
        if old_upstream and slot:
            self._drop_slot(old_upstream, slot)

    def _drop_slot(self, server: str, slot: str) -> None:
        """Best effort: the old upstream may be dead, or the walsender may linger for a moment."""
        try:
            if self.get(server).state != "running":
                return
            with self.connect_admin(server, "postgres", timeout=2) as conn:
                def dropped() -> bool:
                    row = conn.execute(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        "WHERE slot_name = %s AND NOT active", (slot,)).fetchone()
                    gone = conn.execute(
                        "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
                    return row is not None or gone is None

                wait_until(dropped, 5, f"slot {slot} on {server} to be released", interval=0.1)
        except (psycopg.Error, TimeoutError, KeyError) as exc:
            log.info("could not drop slot %s on %s: %s", slot, server, exc)

    def follow(self, name: str, new_upstream: str) -> None:
        """Repoint a standby/replica at another primary (e.g. after a failover) with a fresh slot."""
        srv, up = self.get(name), self.get(new_upstream)
        slot = _slot_name(name)
        with self.connect_admin(up.name, "postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if not exists:
                conn.execute("SELECT pg_create_physical_replication_slot(%s)", (slot,))
        conninfo = f"host={self.socket_dir} port={up.port} user={ADMIN_USER} application_name={name}"
        with self.connect_admin(name, "postgres") as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(conninfo)))
            conn.execute(sql.SQL("ALTER SYSTEM SET primary_slot_name = {}").format(sql.Literal(slot)))
            conn.execute("SELECT pg_reload_conf()")
        srv.upstream, srv.slot = up.name, slot

    def pause_replay(self, name: str) -> None:
        """Pause WAL replay on a standby (WAL is still received, so lag becomes visible)."""
        with self.connect_admin(name, "postgres") as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self, name: str) -> None:
        with self.connect_admin(name, "postgres") as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def kill(self, name: str) -> None:
        """Simulate a crash: SIGKILL the postmaster and its backends (no shutdown checkpoint)."""
        srv = self.get(name)
        self._stop_proc(srv, signal.SIGKILL)
        log.info("killed postgres %s", name)

    def stop(self, name: str) -> None:
        """Clean (fast) shutdown of one server."""
        self._stop_proc(self.get(name), signal.SIGINT)

    def start(self, name: str) -> PgServer:
        """Restart a stopped or killed server on its data dir (crash recovery happens if needed)."""
        srv = self.get(name)
        if srv.state == "running":
            return srv
        self._launch(srv)
        return srv

    def stop_all(self) -> None:
        """Stop heartbeats and every server (fast shutdown in parallel, SIGKILL after 10 s). Idempotent."""
        self.stop_heartbeat()
        with self._lock:
            running = [s for s in self._servers.values() if s.name in self._procs]
            procs = dict(self._procs)
        for srv in running:
            with contextlib.suppress(ProcessLookupError):
                procs[srv.name].send_signal(signal.SIGINT)
        # Up to 10 s for all of them together, polled as Popen.wait polls (1 ms doubling to 50 ms).
        seam.wait_until(lambda: all(procs[s.name].poll() is not None for s in running), timeout=10,
                        clock=seam.SystemClock(), interval=0.001, max_interval=0.05, backoff=2.0)
        for srv in running:
            self._stop_proc(srv, signal.SIGKILL if procs[srv.name].poll() is None else signal.SIGINT)
            srv.state = "stopped"
        kill_postmasters(self.base_dir)
        if self._closed:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def close(self) -> None:
        """stop_all() and remove the private socket dir."""
        self._closed = True
        self.stop_all()

    def __enter__(self) -> PgFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ status

    def replication_status(self, name: str) -> ReplicationStatus:
        """Lag of `name` behind its upstream, from pg_last_wal_*_lsn() on the standby and
        pg_current_wal_lsn() on the upstream (falls back to received-but-unreplayed WAL)."""
        srv = self.get(name)
        with self.connect_admin(name, "postgres") as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), "
                "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END, "
                "pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                "COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8, "
                "EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')"
            ).fetchone()
        assert row is not None
        in_rec, paused, recv, replay, since_replay, streaming = row
        if not in_rec:
            return ReplicationStatus(name, None, False, False, None, None, None, 0, 0.0, False)
        upstream_lsn: str | None = None
        lag_bytes = 0
        if srv.upstream and self.get(srv.upstream).state == "running" and replay:
            try:
                with self.connect_admin(srv.upstream, "postgres", timeout=2) as conn:
                    r = conn.execute(
                        "SELECT pg_current_wal_lsn()::text, pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)",
                        (replay,)).fetchone()
                assert r is not None
                upstream_lsn, lag_bytes = r[0], max(0, int(r[1]))
            except psycopg.Error:
                upstream_lsn = None
        if upstream_lsn is None and recv and replay:
            with self.connect_admin(name, "postgres") as conn:
                r = conn.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", (recv, replay)).fetchone()
            lag_bytes = max(0, int(r[0])) if r else 0
        lag_seconds = float(since_replay) if lag_bytes > 0 else 0.0
        return ReplicationStatus(
            name, srv.upstream, True, bool(paused), recv, replay, upstream_lsn, lag_bytes, lag_seconds,
            bool(streaming),
        )

    # ------------------------------------------------------------------ PITR

    def restore_pitr(self, source_cluster: str, target_time: dt.datetime, new_name: str,
                     port: int | None = None, cancel: seam.Cancel | None = None) -> PgServer:
        """Point-in-time recovery of `source_cluster` into a NEW server/cluster `new_name`: newest base
        backup finished before `target_time` + WAL from the archive up to `target_time`, then promote.

        ``port`` (from :meth:`reserve_port`): the port the new server must listen on, because its connection
        was already given out; without it a free one is picked. ``cancel`` (also set by :meth:`drop_cluster` of
        `new_name`) stops the restore at its next step, whatever it has reached (the server stopped if it runs,
        its data removed, the port given back), and raises :class:`~doops.ops.seam.Cancelled`."""
        target = _aware(target_time)
        now = dt.datetime.now(dt.UTC)
        if target > now:
            raise ValueError(f"recovery target {target.isoformat()} is in the future")
        restore = _Restore(cancel or seam.Cancel(), source_cluster, [])
        with self._lock:
            if restore.cancel.cancelled:  # dropped before it began: only the port to give back
                if port:
                    self._ports.discard(port)
                restore.cancel.check()
            if new_name in self._restores or (new_name in self._servers and
                                              self._servers[new_name].state == "running"):
                raise ValueError(f"PostgreSQL server {new_name!r} already exists")
            restore.archives = list(self._lineage.get(source_cluster, [source_cluster]))
            self._restores[new_name] = restore
        srv: PgServer | None = None
        data = self.base_dir / "data" / new_name
        touched = False  # whether the data dir and archive of `new_name` are this restore's own yet
        try:
            candidates = [b for b in self.list_backups(source_cluster) if b.created_at <= target]
            if not candidates:
                have = ", ".join(b.created_at.isoformat() for b in self.list_backups(source_cluster)) or "none"
                raise NoBaseBackupError(
                    f"no base backup of {source_cluster!r} finished before {target.isoformat()} (backups: {have})")
            backup = candidates[-1]
            self._flush_archive(source_cluster)
            restore.cancel.check()
            self._fresh_dir(data)
            touched = True
            shutil.copytree(backup.path, data, symlinks=True)
            for junk in ("standby.signal", "postmaster.pid", "postmaster.opts", "backup_manifest"):
                (data / junk).unlink(missing_ok=True)
            (data / "postgresql.auto.conf").write_text("# reset by doops PITR restore\n")
            (data / "recovery.signal").write_text("")
            data.chmod(0o700)
            self.run_as.chown(data, recursive=True)
            self._install_tls(data)
            self._prepare_archive(new_name)
            dirs = " ".join(shlex.quote(str(self.base_dir / "archive" / a)) for a in restore.archives)
            restore_cmd = f'for d in {dirs}; do if test -f "$d/%f"; then exec cp "$d/%f" "%p"; fi; done; exit 1'
            recovery = {
                "restore_command": _q(restore_cmd),
                "recovery_target_time": _q(target.isoformat()),
                "recovery_target_action": _q("promote"),
                "recovery_target_timeline": _q("latest"),
            }
            srv = PgServer(name=new_name, cluster=new_name, role="primary", port=port or 0, data_dir=data)
            with self._lock:  # a drop from here on finds the server and stops it
                restore.cancel.check()
                self._register(srv)
            t0 = time.monotonic()
            self._launch(srv, extra=recovery, timeout=180, fixed_port=port is not None, cancel=restore.cancel)

            def recovered() -> bool:
                restore.cancel.check()
                proc = self._procs.get(new_name)
                if proc is None or proc.poll() is not None:
                    raise RuntimeError(f"PITR server {new_name} exited during recovery: {self._log_tail(srv)}")
                with self.connect_admin(new_name, "postgres") as conn:
                    return not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # type: ignore[index]

            wait_until(recovered, 180, f"{new_name} to finish recovery", interval=0.05)
            self._write_conf(srv, True, None)  # drop the recovery settings for later restarts
            with self.connect_admin(new_name, "postgres") as conn:
                conn.execute("SELECT pg_reload_conf()")
            with self._lock:
                restore.cancel.check()
                self._primary[new_name] = new_name
                self._lineage[new_name] = [new_name]
                self._backups[new_name] = []
        except BaseException as exc:
            if not restore.cancel.cancelled:
                if port:
                    self.release_port(port)
                raise
            self._abandon(new_name, srv, data if touched else None, port)
            log.info("restore of %s into %s cancelled (%s)", source_cluster, new_name, restore.cancel.reason)
            raise seam.Cancelled(restore.cancel.reason) from (None if isinstance(exc, seam.Cancelled) else exc)
        finally:
            with self._lock:
                if self._restores.get(new_name) is restore:
                    del self._restores[new_name]
            restore.done.set()
        log.info("PITR %s -> %s at %s from backup %s in %.2fs", source_cluster, new_name,
                 target.isoformat(), backup.id, time.monotonic() - t0)
        return srv

    def _abandon(self, name: str, srv: PgServer | None, data: Path | None, port: int | None) -> None:
        """What a cancelled restore leaves goes: its server (if started), pid record, port, and (``data``: the
        restore had made them its own) its data and archive."""
        if srv is not None:
            self._stop_proc(srv, signal.SIGQUIT)
            with self._lock:
                if self._servers.get(name) is srv:
                    del self._servers[name]
        if port:
            self.release_port(port)
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(self.base_dir / "archive" / name, ignore_errors=True)

    def drop_cluster(self, cluster: str, timeout: float = 60.0) -> list[str]:
        """Destroy a cluster as DigitalOcean does when it is deleted: its heartbeat and every server of it
        (primary, standby nodes, read replicas, a former primary) stop at once (immediate shutdown), a restore
        into it is cancelled (waiting up to ``timeout`` s for it to clean up), their pid records and ports go,
        their data directories are removed, and so are their WAL archives and the cluster's base backups unless
        another cluster or a restore under way still reads them. A read replica promoted out of it is a cluster
        of its own and stays. Idempotent; returns the servers it stopped."""
        self.stop_heartbeat(cluster)
        with self._lock:
            restore = self._restores.get(cluster)
            if restore is not None:
                restore.cancel.cancel(f"cluster {cluster} dropped")
            doomed = [s for s in self._servers.values() if s.cluster == cluster]
        # replicas and standbys first: their upstream's walsenders then have nobody left to wait for
        for srv in sorted(doomed, key=lambda s: s.role == "primary"):
            self._stop_proc(srv, signal.SIGQUIT)
        if restore is not None and not seam.wait_until(
                restore.done.is_set, timeout=timeout, clock=seam.SystemClock(), interval=0.02, max_interval=0.2).done:
            log.warning("restore into %s did not stop within %.0fs of its cancel", cluster, timeout)
        with self._lock:
            for srv in doomed:
                if self._servers.get(srv.name) is srv:
                    del self._servers[srv.name]
            self._primary.pop(cluster, None)
            self._lineage.pop(cluster, None)
            self._backups.pop(cluster, None)
            still_read = {a for lineage in self._lineage.values() for a in lineage}
            still_read |= {a for r in self._restores.values() for a in r.archives}
            sources = {r.source for r in self._restores.values()}
        for srv in doomed:
            shutil.rmtree(srv.data_dir, ignore_errors=True)
            if srv.name not in still_read:
                shutil.rmtree(self.base_dir / "archive" / srv.name, ignore_errors=True)
        if cluster not in sources:
            shutil.rmtree(self.base_dir / "backups" / cluster, ignore_errors=True)
        names = [s.name for s in doomed]
        log.info("dropped cluster %s: stopped %s", cluster, ", ".join(names) or "no server")
        return names

    def _flush_archive(self, cluster: str) -> None:
        """If the cluster's primary is up, write a commit (so a record after the target exists),
        switch WAL and wait until that segment is archived, so PITR to 'just now' works."""
        try:
            srv = self.primary(cluster)
            if srv.state != "running":
                return
            with self.connect_admin(srv.name, "postgres", timeout=2) as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_current_xact_id()")
                seg = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]  # type: ignore[index]

                def archived() -> bool:
                    row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                    return bool(row and row[0] and row[0] >= seg)

                wait_until(archived, 30, f"WAL {seg} of {cluster} to be archived", interval=0.05)
        except (psycopg.Error, KeyError, TimeoutError) as exc:
            log.warning("could not flush WAL archive of %s: %s", cluster, exc)

    # ------------------------------------------------------------------ heartbeat

    def start_heartbeat(self, cluster: str, interval: float = 1.0) -> dict[str, Any]:
        """Insert one row per `interval` into learnhub.public.doops_heartbeat on the cluster's current
        primary (reconnecting and following promotions). Returns live counters {rows, errors, last_error}."""
        with self._lock:
            if cluster in self._heartbeats:
                return self._heartbeats[cluster].stats
            stop = threading.Event()
            hb = _Heartbeat(cluster, threading.Thread(), stop)
            hb.thread = threading.Thread(
                target=self._heartbeat_loop, args=(hb, interval), name=f"heartbeat-{cluster}", daemon=True)
            self._heartbeats[cluster] = hb
        hb.thread.start()
        return hb.stats

    def _heartbeat_loop(self, hb: _Heartbeat, interval: float) -> None:
        conn: psycopg.Connection[Any] | None = None
        target: str | None = None
        next_tick = time.monotonic()
        while not hb.stop.is_set():
            try:
                primary = self.primary(hb.cluster).name
                if conn is None or target != primary:
                    if conn is not None:
                        conn.close()
                    target = primary
                    conn = psycopg.connect(self.dsn(primary), autocommit=True, connect_timeout=2)
                conn.execute(f"INSERT INTO {HEARTBEAT_TABLE} DEFAULT VALUES")
                hb.stats["rows"] += 1
            except (psycopg.Error, KeyError) as exc:
                hb.stats["errors"] += 1
                hb.stats["last_error"] = type(exc).__name__
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        conn.close()
                conn = None
            next_tick += interval
            hb.stop.wait(max(0.0, next_tick - time.monotonic()))
            next_tick = max(next_tick, time.monotonic() - interval)
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def stop_heartbeat(self, cluster: str | None = None) -> None:
        """Stop the heartbeat of `cluster` (all clusters when None)."""
        with self._lock:
            hbs = [h for c, h in self._heartbeats.items() if cluster in (None, c)]
            for h in hbs:
                del self._heartbeats[h.cluster]
        for h in hbs:
            h.stop.set()
        for h in hbs:
            h.thread.join(10)
