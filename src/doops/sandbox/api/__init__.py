"""DigitalOcean API v2 twin: an HTTP server on 127.0.0.1 that answers like the real API.

Typical use::

    world = World.from_scenario(load_scenario(), db=my_db_backend)
    with TwinServer(world) as twin:
        ...  # point the DO client at twin.url with a scenario token
"""

from doops.sandbox.api.backends import (
    AppBackend,
    BackupInfo,
    CdnBackend,
    ConnectionInfo,
    DatabaseBackend,
    FakeAppBackend,
    FakeCdnBackend,
    FakeDatabaseBackend,
)
from doops.sandbox.api.faults import Fault, Faults
from doops.sandbox.api.routing import Route, Router
from doops.sandbox.api.scenario import DEFAULT_SCENARIO_PATH, Durations, Limits, Scenario, load_scenario
from doops.sandbox.api.server import ADMIN_HEADER, TwinServer, build_router
from doops.sandbox.api.state import World

__all__ = [
    "ADMIN_HEADER",
    "DEFAULT_SCENARIO_PATH",
    "AppBackend",
    "BackupInfo",
    "CdnBackend",
    "ConnectionInfo",
    "DatabaseBackend",
    "Durations",
    "FakeAppBackend",
    "FakeCdnBackend",
    "FakeDatabaseBackend",
    "Fault",
    "Faults",
    "Limits",
    "Route",
    "Router",
    "Scenario",
    "TwinServer",
    "World",
    "build_router",
    "load_scenario",
]
