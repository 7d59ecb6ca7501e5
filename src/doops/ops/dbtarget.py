"""How doops connects to a managed database: the config's overrides over the API's connection object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doops.clients import pg
from doops.clients.models import DatabaseCluster
from doops.errors import UnknownStateError
from doops.platform import Platform


def db_target(app: Platform, cluster: DatabaseCluster, conn: Any,
              ca: Callable[[str], str] | None = None) -> pg.Target:
    """Target for a cluster's (or one of its replicas') connection.

    The config may name the database, user, a password env var and the sslmode; ``verify-full`` fetches the
    cluster's CA from the API (``ca`` lets a caller memoise that call).
    """
    if conn is None:
        raise UnknownStateError(f"the API gives no connection for {cluster.name}")
    cfg = app.config.database(cluster.name)
    password = cfg.password() if cfg else None
    sslmode = cfg.sslmode if cfg else "require"
    ca_pem = (ca or app.do.database_ca)(cluster.id) if sslmode.startswith("verify") else None
    return pg.Target.from_connection(conn, dbname=cfg.database if cfg else None, user=cfg.user if cfg else None,
                                     password=password, sslmode=sslmode, ca_pem=ca_pem)
