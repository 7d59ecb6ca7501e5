"""How doops connects to a managed database: the config's overrides over the API's connection object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doops.clients import pg
from doops.clients.models import DatabaseCluster
from doops.errors import ApiNotFound, ConfigError, UnknownStateError
from doops.platform import Platform

SSLMODES = ("auto", "disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _is_ca(pem: str | None) -> bool:
    return bool(pem) and "-----BEGIN CERTIFICATE-----" in str(pem)


def db_target(app: Platform, cluster: DatabaseCluster, conn: Any,
              ca: Callable[[str], str] | None = None) -> pg.Target:
    """Target for a cluster's (or one of its replicas') connection.

    The config may name the database, user, a password env var and the sslmode. ``auto`` (the default) fetches
    the cluster's CA from the API and verifies the server against it (``verify-full``: the right server, not
    only an encrypted link); when the API has no CA for it, ``require``. ``verify-ca`` / ``verify-full`` always
    fetch it (``ca`` lets a caller memoise that call). The target's ``sslmode`` is the mode actually used.
    """
    if conn is None:
        raise UnknownStateError(f"the API gives no connection for {cluster.name}")
    cfg = app.config.database(cluster.name)
    password = cfg.password() if cfg else None
    sslmode = cfg.sslmode if cfg else "auto"
    if sslmode not in SSLMODES:
        raise ConfigError(f"databases.clusters[{cluster.name}].sslmode: {sslmode!r} is not an sslmode",
                          hint="use one of " + ", ".join(SSLMODES))
    fetch = ca or app.do.database_ca
    ca_pem: str | None = None
    if sslmode == "auto":
        try:
            ca_pem = fetch(cluster.id)
        except ApiNotFound:
            ca_pem = None
        sslmode = "verify-full" if _is_ca(ca_pem) else "require"
        ca_pem = ca_pem if sslmode == "verify-full" else None
    elif sslmode.startswith("verify"):
        ca_pem = fetch(cluster.id)
    return pg.Target.from_connection(conn, dbname=cfg.database if cfg else None, user=cfg.user if cfg else None,
                                     password=password, sslmode=sslmode, ca_pem=ca_pem)
