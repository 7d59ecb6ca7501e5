"""The caching cluster (DigitalOcean's Managed Valkey) as a real server: ``redis-server`` with TLS and a password.

Debian has no Valkey package; Redis 7 speaks the same protocol (Valkey forked from it), so every Valkey client
works. As on DigitalOcean: TLS only (no plain-text port; the certificate is signed by the sandbox CA, for
127.0.0.1 and localhost), user ``default`` with a password (stored in the config as its SHA-256 only, never in
clear), the cluster's eviction policy as ``maxmemory-policy`` (a change through the API is applied to the
server). No persistence.

Files (``<fleet base>/cache/<name>/``, 0700, owned by the server user): ``redis.conf``, ``server.{crt,key}``,
``ca.crt``, ``redis.log``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from doops.sandbox.children import ChildServer, PortTakenError, find_binary, own, private_dir
from doops.sandbox.pg_util import RunAs, free_port
from doops.sandbox.tls import SandboxCA

log = logging.getLogger(__name__)

USER = "default"
# DigitalOcean's policy names (the API's) -> Redis/Valkey's own
POLICIES = {"noeviction": "noeviction", "allkeys_lru": "allkeys-lru", "allkeys_random": "allkeys-random",
            "volatile_lru": "volatile-lru", "volatile_random": "volatile-random", "volatile_ttl": "volatile-ttl"}


def find_redis() -> str:
    """The redis-server binary ($DOOPS_REDIS_BIN, PATH, /usr/bin); ServerNotFoundError names the fix."""
    return find_binary("redis-server", "DOOPS_REDIS_BIN", "redis-server", "/usr/bin/redis-server")


def redis_version(binary: str) -> str:
    """``7.0.15`` from `redis-server --version` (``Redis server v=7.0.15 sha=...``)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15, check=True).stdout
    m = re.search(r"v=(\d+(?:\.\d+)*)", out)
    return m.group(1) if m else out.strip()


class CacheServer:
    """One cache cluster's server."""

    def __init__(self, name: str, base_dir: Path, ca: SandboxCA, run_as: RunAs, password: str, *,
                 eviction_policy: str = "noeviction", engine: str = "valkey", sandbox_dir: Path | None = None,
                 binary: str | None = None) -> None:
        if eviction_policy not in POLICIES:
            raise ValueError(f"eviction policy must be one of {', '.join(POLICIES)}")
        self.name = name
        self.engine = engine  # the API's engine (valkey or redis): names its config keys
        self.dir = base_dir / "cache" / name
        self.ca = ca
        self.run_as = run_as
        self._password = password
        self.eviction_policy = eviction_policy
        self.binary = binary or find_redis()
        self.version = redis_version(self.binary)
        self.port = 0
        self._child = ChildServer(f"cache-{name}", run_as, sandbox_dir)
        self._lock = threading.Lock()

    @property
    def conf_path(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def pid(self) -> int | None:
        return self._child.pid

    @property
    def running(self) -> bool:
        return self._child.running

    @property
    def password(self) -> str:
        return self._password

    def _conf(self) -> str:
        d = self.dir
        digest = hashlib.sha256(self._password.encode()).hexdigest()
        return (
            "# written by doops.sandbox.cache\n"
            f"bind 127.0.0.1\nport 0\ntls-port {self.port}\n"
            f"tls-cert-file {d / 'server.crt'}\ntls-key-file {d / 'server.key'}\ntls-ca-cert-file {d / 'ca.crt'}\n"
            "tls-auth-clients no\ndaemonize no\nsupervised no\n"
            # keep the command line as started: the pid record's marker is the config path in it
            "set-proc-title no\n"
            f"dir {d}\nsave \"\"\nappendonly no\n"
            f"maxmemory 64mb\nmaxmemory-policy {POLICIES[self.eviction_policy]}\n"
            f"user {USER} on #{digest} ~* &* +@all\n"
        )

    def start(self) -> CacheServer:
        """Write the config and start the server; returns once it accepts TLS connections."""
        private_dir(self.dir, self.run_as)
        self.ca.issue(self.dir / "server.crt", self.dir / "server.key")
        shutil.copyfile(self.ca.cert_path, self.dir / "ca.crt")
        own(self.run_as, self.dir / "server.crt", self.dir / "server.key", self.dir / "ca.crt")
        for attempt in range(3):
            self.port = free_port()
            self.conf_path.write_text(self._conf())
            self.conf_path.chmod(0o600)
            own(self.run_as, self.conf_path)
            try:
                self._child.launch([self.binary, str(self.conf_path)], cwd=self.dir, log_path=self.dir / "redis.log",
                                   port=self.port, marker=str(self.conf_path))
                return self
            except PortTakenError:
                if attempt == 2:
                    raise
        return self

    def client(self) -> Any:
        """A redis-py client over TLS, verified against the sandbox CA (hostname included)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, username=USER, password=self._password, ssl=True,
                           ssl_ca_certs=str(self.ca.cert_path), ssl_check_hostname=True, socket_timeout=5,
                           socket_connect_timeout=5)

    def set_eviction_policy(self, policy: str) -> None:
        """Apply a policy the API was given (``CONFIG SET maxmemory-policy``) and keep it for restarts."""
        if policy not in POLICIES:
            raise ValueError(f"eviction policy must be one of {', '.join(POLICIES)}")
        with self._lock:
            client = self.client()
            try:
                client.config_set("maxmemory-policy", POLICIES[policy])
            finally:
                client.close()
            self.eviction_policy = policy

    def live_policy(self) -> str | None:
        """The server's own maxmemory-policy in the API's spelling (None when it does not answer)."""
        import redis

        client = self.client()
        try:
            got = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()
        return next((api for api, own_name in POLICIES.items() if own_name == got), None)

    def stop(self) -> None:
        self._child.stop()
