"""Valkey/Redis I/O with redis-py: what the cache server itself says (latency, memory, evictions, clients).

Managed Valkey speaks TLS only, as user ``default`` with a password. The server is verified against the
cluster's CA when the API gives one, else against the system trust store; never unverified. Only ``PING``
and ``INFO`` are sent: DigitalOcean does not allow ``CONFIG`` on managed caches, and status only reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from doops import masking
from doops.clients.models import Connection
from doops.errors import UnknownStateError


@dataclass
class CacheTarget:
    """Where and how to connect. The password is registered as a secret and never rendered."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca_pem: str | None = None  # the cluster's CA from the API; None: the system trust store
    timeout: float = 3.0

    @classmethod
    def from_connection(cls, conn: Connection, *, ca_pem: str | None = None, timeout: float = 3.0) -> CacheTarget:
        masking.register(conn.password)
        return cls(conn.host, conn.port, conn.user or "default", conn.password, ca_pem, timeout)

    def masked(self) -> str:
        return f"rediss://{self.user}:***@{self.host}:{self.port}"


@dataclass
class CacheProbe:
    latency_ms: float  # one PING on an open connection: the round trip, without TLS and AUTH
    used_memory: int
    maxmemory: int  # 0: no limit
    maxmemory_policy: str | None
    evicted_keys: int  # since the server started (or its stats were reset)
    connected_clients: int
    maxclients: int | None  # INFO has it since Redis 7 / Valkey
    version: str | None

    @property
    def memory_ratio(self) -> float | None:
        return self.used_memory / self.maxmemory if self.maxmemory else None

    @property
    def clients_ratio(self) -> float | None:
        return self.connected_clients / self.maxclients if self.maxclients else None


class Refused(UnknownStateError):
    """Nothing listens there: an answer about the server, not a failure to measure."""


def probe(target: CacheTarget) -> CacheProbe:
    """Connect (TLS, AUTH), time one PING, read INFO; errors name the masked target, never the password."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs: dict[str, Any] = {
        "host": target.host, "port": target.port, "username": target.user, "password": target.password,
        "ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
        "socket_timeout": target.timeout, "socket_connect_timeout": target.timeout,
        "retry": Retry(NoBackoff(), 0),  # one attempt: a status check has a deadline, the next run retries
        "client_name": "doops",
    }
    if target.ca_pem:
        kwargs["ssl_ca_data"] = target.ca_pem
    client = redis.Redis(**kwargs)
    try:
        client.ping()  # connects: TLS handshake and AUTH are not latency
        started = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - started) * 1000
        info: dict[str, Any] = client.info()
    except (redis.RedisError, OSError) as exc:
        text = masking.mask(_first_line(exc))
        cls = Refused if "refused" in text.lower() else UnknownStateError
        raise cls(f"cannot query {target.masked()}: {text}") from None
    finally:
        client.close()
    return CacheProbe(
        latency_ms=round(latency, 2),
        used_memory=int(info.get("used_memory") or 0),
        maxmemory=int(info.get("maxmemory") or 0),
        maxmemory_policy=info.get("maxmemory_policy"),
        evicted_keys=int(info.get("evicted_keys") or 0),
        connected_clients=int(info.get("connected_clients") or 0),
        maxclients=int(info["maxclients"]) if info.get("maxclients") else None,
        version=str(info["redis_version"]) if info.get("redis_version") else None,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _client(target: CacheTarget) -> Any:
    """A redis-py client with the same TLS and AUTH as ``probe``; one attempt per call."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs: dict[str, Any] = {
        "host": target.host, "port": target.port, "username": target.user, "password": target.password,
        "ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
        "socket_timeout": target.timeout, "socket_connect_timeout": target.timeout,
        "retry": Retry(NoBackoff(), 0), "client_name": "doops", "decode_responses": True,
    }
    if target.ca_pem:
        kwargs["ssl_ca_data"] = target.ca_pem
    return redis.Redis(**kwargs)


def _failed(target: CacheTarget, exc: BaseException) -> UnknownStateError:
    text = masking.mask(_first_line(exc))
    cls = Refused if "refused" in text.lower() else UnknownStateError
    return cls(f"cannot query {target.masked()}: {text}")


def glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern: an id holding ``*`` must not widen a delete."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def scan_keys(target: CacheTarget, pattern: str, limit: int) -> tuple[list[str], bool]:
    """Keys matching ``pattern``, found with SCAN (never KEYS, which blocks the server for the whole keyspace),
    at most ``limit``; the flag says more matched."""
    import redis

    client = _client(target)
    found: list[str] = []
    seen: set[str] = set()
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            if key in seen:  # SCAN may return a key twice while the table rehashes
                continue
            seen.add(key)
            found.append(str(key))
            if len(found) > limit:
                return found[:limit], True
    except (redis.RedisError, OSError) as exc:
        raise _failed(target, exc) from None
    finally:
        client.close()
    return found, False


def existing(target: CacheTarget, keys: list[str]) -> list[str]:
    """The ones of ``keys`` that exist now."""
    import redis

    if not keys:
        return []
    client = _client(target)
    try:
        pipe = client.pipeline(transaction=False)
        for k in keys:
            pipe.exists(k)
        answers = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        raise _failed(target, exc) from None
    finally:
        client.close()
    return [k for k, n in zip(keys, answers, strict=True) if n]


def delete_keys(target: CacheTarget, keys: list[str], batch: int = 500) -> int:
    """DEL ``keys``, ``batch`` a command; how many existed (and are gone)."""
    import redis

    if not keys:
        return 0
    client = _client(target)
    n = 0
    try:
        for i in range(0, len(keys), batch):
            n += int(client.delete(*keys[i:i + batch]))
    except (redis.RedisError, OSError) as exc:
        raise _failed(target, exc) from None
    finally:
        client.close()
    return n
