"""Typed models of DigitalOcean answers, built once from pydo's dicts in the client layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Account:
    uuid: str
    email: str
    status: str
    droplet_limit: int | None = None
    team: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Account:
        a = d.get("account", d)
        team = a.get("team") or {}
        return cls(
            uuid=str(a.get("uuid", "")),
            email=str(a.get("email", "")),
            status=str(a.get("status", "")),
            droplet_limit=a.get("droplet_limit"),
            team=team.get("name") if isinstance(team, dict) else None,
        )


@dataclass
class Connection:
    """A database connection object. ``password`` is kept for connecting, never rendered."""

    host: str
    port: int
    user: str
    database: str
    ssl: bool = True
    password: str = field(default="", repr=False)

    @classmethod
    def from_api(cls, d: dict[str, Any] | None) -> Connection | None:
        if not d:
            return None
        from doops import secrets

        password = str(d.get("password") or "")
        secrets.register(password)
        return cls(
            host=str(d.get("host", "")),
            port=int(d.get("port") or 25060),
            user=str(d.get("user", "")),
            database=str(d.get("database", "")),
            ssl=bool(d.get("ssl", True)),
            password=password,
        )

    def to_data(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "database": self.database, "ssl": self.ssl}


@dataclass
class DatabaseReplica:
    id: str
    name: str
    region: str
    status: str
    size: str = ""
    created_at: datetime | None = None
    connection: Connection | None = None
    private_connection: Connection | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseReplica:
        return cls(
            id=str(d.get("id", "")),
            name=str(d.get("name", "")),
            region=str(d.get("region", "")),
            status=str(d.get("status", "")),
            size=str(d.get("size", "")),
            created_at=parse_time(d.get("created_at")),
            connection=Connection.from_api(d.get("connection")),
            private_connection=Connection.from_api(d.get("private_connection")),
        )


@dataclass
class DatabaseCluster:
    id: str
    name: str
    engine: str
    version: str
    region: str
    status: str
    num_nodes: int
    size: str = ""
    tags: list[str] = field(default_factory=list)
    db_names: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    connection: Connection | None = None
    maintenance_pending: bool = False
    maintenance_description: list[str] = field(default_factory=list)
    eviction_policy: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseCluster:
        mw = d.get("maintenance_window") or {}
        return cls(
            id=str(d.get("id", "")),
            name=str(d.get("name", "")),
            engine=str(d.get("engine", "")),
            version=str(d.get("version", "")),
            region=str(d.get("region", "")),
            status=str(d.get("status", "")),
            num_nodes=int(d.get("num_nodes") or 0),
            size=str(d.get("size", "")),
            tags=list(d.get("tags") or []),
            db_names=list(d.get("db_names") or []),
            created_at=parse_time(d.get("created_at")),
            connection=Connection.from_api(d.get("connection")),
            maintenance_pending=bool(mw.get("pending", False)),
            maintenance_description=list(mw.get("description") or []),
        )


@dataclass
class DatabaseBackup:
    created_at: datetime | None
    size_gigabytes: float

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> DatabaseBackup:
        return cls(created_at=parse_time(d.get("created_at")), size_gigabytes=float(d.get("size_gigabytes") or 0))
