"""The twin's code layout: no import circle, concerns behind one front, pid files and signals in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


# -- one wait loop, one time parser ----------------------------------------------------------------------

ALLOW_WAIT = "# own wait:"  # followed by why this loop cannot be doops.ops.seam.wait_until


def _is_call(node: ast.AST, name: str) -> bool:
    """Whether ``node`` is a call of ``name`` (``name(...)`` or ``x.name(...)``)."""
    return isinstance(node, ast.Call) and ((isinstance(node.func, ast.Name) and node.func.id == name)
                                           or (isinstance(node.func, ast.Attribute) and node.func.attr == name))


def _calls(node: ast.AST, name: str) -> bool:
    return any(_is_call(n, name) for n in ast.walk(node))


def _hand_written_waits(source: str) -> list[int]:
    """Lines that poll by hand instead of going through ``seam.wait_until``: ``sleep()`` inside a ``while``, a
    ``while`` comparing ``monotonic()`` (with a deadline), or a deadline computed as ``monotonic() + n``.
    A line with ``# own wait: <why>`` (or its ``while``'s line) is let through."""
    lines = source.splitlines()

    def allowed(*linenos: int) -> bool:
        return any(ALLOW_WAIT in lines[n - 1] and lines[n - 1].split(ALLOW_WAIT, 1)[1].strip() for n in linenos)

    found: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.While):
            for inner in ast.walk(node):
                if (isinstance(inner, ast.expr) and (_is_call(inner, "sleep") or
                                                     (isinstance(inner, ast.Compare) and _calls(inner, "monotonic")))
                        and not allowed(node.lineno, inner.lineno)):
                    found.add(inner.lineno)
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
              and (_calls(node.left, "monotonic") or _calls(node.right, "monotonic")) and not allowed(node.lineno)):
            found.add(node.lineno)
    return sorted(found)


def test_the_wait_scan_finds_each_hand_written_form() -> None:
    forms = {
        "deadline loop": "import time\ndeadline = 0\nwhile time.monotonic() < deadline:\n    pass\n",
        "deadline check in the body": "import time\nwhile True:\n    if time.monotonic() > d:\n        break\n",
        "sleep in a while": "import time\nwhile not done():\n    time.sleep(0.1)\n",
        "bare sleep in a while": "from time import sleep\nwhile not done():\n    sleep(0.1)\n",
        "deadline computed": "import time\ndeadline = time.monotonic() + 10\n",
    }
    for what, source in forms.items():
        assert _hand_written_waits(source), what
    assert not _hand_written_waits("import time\nwhile not stop.is_set():\n    stop.wait(1)\nt = time.monotonic()\n")
    assert not _hand_written_waits("import time\nwhile not done():  # own wait: must outlive a cancel\n"
                                   "    time.sleep(0.1)\n")
    assert _hand_written_waits("import time\nwhile not done():  # own wait:\n    time.sleep(0.1)\n"), \
        "an exception must say why"


def test_every_sandbox_wait_goes_through_the_one_wait_loop() -> None:
    """doops has one poll helper (``doops.ops.seam.wait_until``); the twin's waits use it too."""
    offenders = [f"{path.relative_to(SANDBOX)}:{line}" for path in sorted(SANDBOX.rglob("*.py"))
                 for line in _hand_written_waits(path.read_text())]
    assert not offenders, (f"hand-written wait loops {offenders}: use doops.ops.seam.wait_until "
                           f"(or mark the line '{ALLOW_WAIT} <why>')")


def test_sandbox_times_are_parsed_by_the_one_parser() -> None:
    from doops.sandbox.api.resources import parse_time
    from doops.times import parse_rfc3339

    for path in sorted(SANDBOX.rglob("*.py")):
        text = path.read_text()
        for needle in ("fromisoformat(", "strptime("):
            assert needle not in text, f"{path.relative_to(SANDBOX)} parses times itself: use doops.times"
    for text in ("2026-11-26T05:00:00Z", "2026-11-26 05:00:00", "2026-11-26T07:00:00+02:00"):
        assert parse_time(text) == parse_rfc3339(text)
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("yesterday")


def test_the_fleet_wait_adapter_names_what_it_waited_for() -> None:
    from doops.sandbox.pg_util import wait_until

    calls: list[int] = []

    def never() -> bool:
        calls.append(1)
        return False

    with pytest.raises(TimeoutError, match="timed out after 0s waiting for the slot to go"):
        wait_until(never, 0.05, "the slot to go", interval=0.01)
    assert len(calls) >= 2
    wait_until(lambda: True, 5, "nothing")
