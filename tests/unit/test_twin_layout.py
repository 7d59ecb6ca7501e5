"""The twin's code layout: no import circle, concerns behind one front, pid files and signals in one module."""

from __future__ import annotations

import ast
from pathlib import Path

from doops.sandbox.api import FakeDatabaseBackend, World, load_scenario

SANDBOX = Path(__file__).resolve().parents[2] / "src" / "doops" / "sandbox"
API = SANDBOX / "api"


def _imports(path: Path) -> set[str]:
    """Every module a file imports (``from a import b`` counts as a and a.b), at any level."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_routes_and_server_import_no_circle() -> None:
    server = _imports(API / "server.py")
    for route in sorted(API.glob("routes_*.py")):
        assert "doops.sandbox.api.server" not in _imports(route), route.name
        assert f"doops.sandbox.api.{route.stem}" in server, f"server.py wires {route.stem}"
    assert "doops.sandbox.api.server" not in _imports(API / "routing.py")


def test_concerns_sit_behind_the_world_front() -> None:
    front = _imports(API / "state.py")
    for concern in ("state_build", "state_databases", "state_apps", "state_monitoring"):
        imported = _imports(API / f"{concern}.py")
        assert f"doops.sandbox.api.{concern}" in front, concern
        assert not imported & {"doops.sandbox.api.state", "doops.sandbox.api.server", "doops.sandbox.api.routing"}, \
            f"{concern} reaches back to the front or the HTTP side"
    assert not _imports(API / "resources.py") & {"doops.sandbox.api.state", "doops.sandbox.api.state_apps",
                                                 "doops.sandbox.api.state_databases"}


def test_concerns_share_the_one_store() -> None:
    world = World.from_scenario(load_scenario(), db=FakeDatabaseBackend(), clock=lambda: 1_790_000_000.0)
    assert world.databases.store is world and world.app_platform.store is world and world.monitoring.store is world
    assert world.monitoring.app_platform is world.app_platform
    src = world.find_cluster_by_name("learnhub-db")
    assert src is not None
    promoted = world.databases.promote_replica(src, "learnhub-db-ams3")
    assert world.clusters[promoted.id] is promoted and world.cluster_json(promoted)["status"] == "online"
    app = world.find_app_by_name("learnhub-api")
    check = next(c for c in world.checks.values() if c.app_name == "learnhub-api")
    assert app is not None and world.check_up(check)
    world.faults.app_unhealthy("learnhub-api")
    assert not world.app_platform.app_healthy(app) and not world.monitoring.check_up(check)


def test_pid_files_are_read_written_and_signalled_in_one_module() -> None:
    for path in sorted(SANDBOX.rglob("*.py")):
        if path.name == "pidfiles.py":
            continue
        text = path.read_text()
        for needle in ("/proc/", "os.kill(", "os.killpg(", "supervisor.pid", "def write_pidfile", "def read_pid"):
            assert needle not in text, f"{path.relative_to(SANDBOX)} has {needle!r}: pid files live in pidfiles.py"
