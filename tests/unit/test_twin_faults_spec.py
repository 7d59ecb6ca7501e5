"""Typed fault specs: one class per kind, the control API's JSON unchanged, dispatch on the class."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from doops.sandbox import faults_spec as fs
from doops.sandbox.api import Faults
from doops.sandbox.supervisor import Supervisor

# What `doops sandbox fault ...` sent to the supervisor before the specs were typed, kind by kind.
WIRE: list[tuple[fs.FaultSpec, dict[str, Any]]] = [
    (fs.Latency(200, "/v2/databases*"), {"kind": "latency", "ms": 200, "route": "/v2/databases*"}),
    (fs.Latency(5), {"kind": "latency", "ms": 5, "route": None}),
    (fs.HttpError(503, 0.5, "/v2/apps*"), {"kind": "http-error", "status": 503, "rate": 0.5, "route": "/v2/apps*"}),
    (fs.Throttle(10), {"kind": "throttle", "per_minute": 10}),
    (fs.DbStop("learnhub-db"), {"kind": "db-stop", "cluster": "learnhub-db"}),
    (fs.DbLag("learnhub-db-ams3"), {"kind": "db-lag", "replica": "learnhub-db-ams3"}),
    (fs.AppUnhealthy("learnhub-api", "ws"), {"kind": "app-unhealthy", "app": "learnhub-api", "component": "ws"}),
    (fs.AppUnhealthy("learnhub-api"), {"kind": "app-unhealthy", "app": "learnhub-api", "component": None}),
    (fs.BadRelease("learnhub-api"), {"kind": "bad-release", "app": "learnhub-api"}),
    (fs.Tls("learnhub-api", "1.2"), {"kind": "tls", "app": "learnhub-api", "max_version": "1.2", "expires_in": None,
                                     "hsts": True}),
    (fs.SpacesReplication("pause"), {"kind": "spaces-replication", "action": "pause"}),
    (fs.Clear(), {"kind": "clear"}),
]


@pytest.mark.parametrize(("spec", "wire"), WIRE, ids=[w["kind"] for _, w in WIRE])
def test_wire_format_is_the_control_api_json_and_round_trips(spec: fs.FaultSpec, wire: dict[str, Any]) -> None:
    assert spec.to_wire() == wire
    assert list(spec.to_wire()) == list(wire)  # same key order as before
    assert fs.from_wire(wire) == spec


def test_every_kind_has_a_spec_class_and_the_cli_kinds_match() -> None:
    assert [c.kind for c in fs.ALL] == ["latency", "http-error", "throttle", "db-stop", "db-lag", "app-unhealthy",
                                        "bad-release", "tls", "spaces-replication", "clear"]
    assert {type(s) for s, _ in WIRE} == set(fs.ALL)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: fs.Latency(-1), "latency must be >= 0 ms"),
    (lambda: fs.HttpError(200), "http-error status must be 4xx or 5xx"),
    (lambda: fs.HttpError(500, 1.5), "rate must be within 0..1"),
    (lambda: fs.Throttle(-1), "per_minute must be >= 0"),
    (lambda: fs.SpacesReplication("stop"), "spaces-replication needs action pause or resume"),
])
def test_a_spec_checks_its_values_when_made(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(("wire", "message"), [
    ({"kind": "latency"}, "fault latency: missing 'ms'"),
    ({"kind": "db-stop"}, "fault db-stop: missing 'cluster'"),
    ({"kind": "latency", "ms": None}, "fault latency: int()"),
    ({"kind": "spaces-replication"}, "spaces-replication needs action pause or resume"),
    ({"kind": "bad-release"}, "fault bad-release: missing 'app'"),
    ({"kind": "bogus"}, "unknown fault kind 'bogus' (one of latency, http-error, throttle, db-stop, db-lag, "
                        "app-unhealthy, bad-release, tls, spaces-replication, clear)"),
])
def test_from_wire_names_what_is_wrong(wire: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        fs.from_wire(wire)
    assert str(err.value).startswith(message)


def test_the_twin_applies_its_own_kinds_only() -> None:
    faults = Faults()
    fault = faults.add({"kind": "http-error", "status": 503, "route": "/v2/apps*"})
    assert fault.spec == fs.HttpError(503, 1.0, "/v2/apps*")
    assert fault.to_dict() == {"id": fault.id, "kind": "http-error", "status": 503, "rate": 1.0, "route": "/v2/apps*"}
    assert faults.error_status("GET", "/v2/apps") == 503 and faults.error_status("GET", "/v2/account") is None
    with pytest.raises(ValueError, match="unknown fault kind 'db-stop' \\(one of latency, http-error, throttle, "
                                         "app-unhealthy, bad-release\\)"):
        faults.add({"kind": "db-stop", "cluster": "learnhub-db"})
    with pytest.raises(ValueError, match="unknown fault kind 'clear'"):
        faults.add_spec(fs.Clear())
    assert faults.list() == [fault]


def test_supervisor_has_one_handler_per_spec_class(tmp_path: Path) -> None:
    handlers = Supervisor(tmp_path, None, 0, 0)._fault_handlers
    assert set(handlers) == set(fs.ALL)


def test_specs_module_is_light() -> None:
    """The CLI imports it: it must not pull in the twin, the servers or an HTTP client."""
    code = ("import sys; import doops.sandbox.faults_spec\n"
            "print(sorted(m for m in sys.modules if m.startswith(('doops.sandbox.api', 'httpx', 'yaml', 'psycopg'))"
            " or m in ('doops.sandbox.supervisor', 'doops.sandbox.control')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
