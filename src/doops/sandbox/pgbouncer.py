"""Connection pools as DigitalOcean runs them: a real PgBouncer in front of a cluster's primary.

One PgBouncer per cluster serves each of the cluster's pools as its own database entry (the pool's name is
the database name clients ask for, as in DigitalOcean's pool URI), with the pool's mode and size. Clients
connect over TLS (a certificate signed by the sandbox CA, so ``sslmode=verify-full`` works) with SCRAM; the
auth file holds the same SCRAM verifiers the PostgreSQL servers hold (never a password), so PgBouncer logs in
to the primary with the client's own SCRAM proof, over TLS verified against the sandbox CA.

Files (``<fleet base>/pgbouncer/<cluster>/``, 0700, owned by the server user): ``pgbouncer.ini``,
``userlist.txt``, ``server.{crt,key}``, ``ca.crt``, ``pgbouncer.log``.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from doops.sandbox.children import ChildServer, PortTakenError, find_binary, own, private_dir
from doops.sandbox.pg_util import free_port

if TYPE_CHECKING:
    from doops.sandbox.pg import PgFleet

log = logging.getLogger(__name__)

ADMIN_USER = "doadmin"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def find_pgbouncer() -> str:
    """The pgbouncer binary ($DOOPS_PGBOUNCER_BIN, PATH, /usr/sbin); ServerNotFoundError names the fix."""
    return find_binary("pgbouncer", "DOOPS_PGBOUNCER_BIN", "pgbouncer", "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


@dataclass(frozen=True)
class Pool:
    """A connection pool of a cluster: clients ask for database ``name``; PgBouncer serves ``db`` as ``user``."""

    name: str
    db: str
    user: str
    mode: str = "transaction"
    size: int = 10


class PgBouncer:
    """The PgBouncer of one cluster of a :class:`~doops.sandbox.pg.PgFleet`, serving every pool of it."""

    def __init__(self, fleet: PgFleet, cluster: str, pools: list[Pool], *, sandbox_dir: Path | None = None,
                 binary: str | None = None) -> None:
        for p in pools:
            if not _NAME.match(p.name) or not _NAME.match(p.db) or not _NAME.match(p.user):
                raise ValueError(f"pool {p.name!r}: names may hold letters, digits, '_', '.' and '-' only")
            if p.mode not in ("session", "transaction", "statement"):
                raise ValueError(f"pool {p.name!r}: mode must be session, transaction or statement")
        self.fleet = fleet
        self.cluster = cluster
        self.pools = list(pools)
        self.binary = binary or find_pgbouncer()
        self.dir = fleet.base_dir / "pgbouncer" / cluster
        self.port = 0
        self.upstream_port = 0
        self._child = ChildServer(f"pgbouncer-{cluster}", fleet.run_as, sandbox_dir)
        self._lock = threading.Lock()

    @property
    def ini_path(self) -> Path:
        return self.dir / "pgbouncer.ini"

    @property
    def log_path(self) -> Path:
        return self.dir / "pgbouncer.log"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def running(self) -> bool:
        return self._child.running

    def pool(self, name: str) -> Pool | None:
        return next((p for p in self.pools if p.name == name), None)

    def _userlist(self) -> str:
        lines = []
        for user in sorted({ADMIN_USER, *(p.user for p in self.pools)}):
            verifier = self.fleet.verifier(user)
            if verifier is None:
                raise ValueError(f"user {user} has no password on {self.cluster}: create it first (create_role)")
            lines.append(f'"{user}" "{verifier}"')
        return "\n".join(lines) + "\n"

    def _ini(self) -> str:
        d = self.dir
        dbs = "".join(f"{p.name} = host=127.0.0.1 port={self.upstream_port} dbname={p.db} "
                      f"pool_size={p.size} pool_mode={p.mode}\n" for p in self.pools)
        return (
            "; written by doops.sandbox.pgbouncer\n[databases]\n" + dbs + "\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {d / 'userlist.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 10\n"
            f"client_tls_sslmode = require\nclient_tls_cert_file = {d / 'server.crt'}\n"
            f"client_tls_key_file = {d / 'server.key'}\n"
            f"server_tls_sslmode = verify-full\nserver_tls_ca_file = {d / 'ca.crt'}\n"
            f"stats_users = {ADMIN_USER}\n"
            # libpq clients (psycopg's statement_timeout) send these; DigitalOcean's PgBouncer ignores them too
            "ignore_startup_parameters = extra_float_digits,options\n"
            "log_connections = 0\nlog_disconnections = 0\n"
        )

    def _write_config(self) -> None:
        for name, text in (("userlist.txt", self._userlist()), ("pgbouncer.ini", self._ini())):
            path = self.dir / name
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text)
            tmp.chmod(0o600)
            own(self.fleet.run_as, tmp)
            tmp.replace(path)

    def start(self) -> PgBouncer:
        """Write the config and start PgBouncer in front of the cluster's current primary."""
        private_dir(self.dir, self.fleet.run_as)
        self.fleet.ca.issue(self.dir / "server.crt", self.dir / "server.key")
        shutil.copyfile(self.fleet.ca.cert_path, self.dir / "ca.crt")
        own(self.fleet.run_as, self.dir / "server.crt", self.dir / "server.key", self.dir / "ca.crt")
        self.upstream_port = self.fleet.primary(self.cluster).port
        for attempt in range(3):
            self.port = free_port()
            self._write_config()
            try:
                self._child.launch([self.binary, str(self.ini_path)], cwd=self.dir, log_path=self.log_path,
                                   port=self.port, marker=str(self.ini_path))
                return self
            except PortTakenError:
                if attempt == 2:
                    raise
        return self

    def follow_primary(self) -> None:
        """Point the pools at the cluster's current primary if it moved (a failover inside the cluster)."""
        with self._lock:
            try:
                port = self.fleet.primary(self.cluster).port
            except KeyError:
                return
            if port == self.upstream_port or not self.running:
                return
            self.upstream_port = port
            self._write_config()
            self._child.reload()
            log.info("pgbouncer of %s now in front of port %s", self.cluster, port)

    def stop(self) -> None:
        self._child.stop()
