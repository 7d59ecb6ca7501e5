"""Services behind `doops sandbox`: typed results, no printing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doops.errors import UnknownStateError, UsageError
from doops.sandbox import control
from doops.sandbox.faults_spec import FaultSpec


@dataclass
class SandboxUp:
    dir: str
    already_running: bool
    ready_seconds: float
    api_url: str
    env_file: str
    env: str
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        # env.sh holds the sandbox's token: json/yaml carry its path, not its text.
        return {"dir": self.dir, "already_running": self.already_running, "ready_seconds": self.ready_seconds,
                "api_url": self.api_url, "env_file": self.env_file, "timings": self.timings, "notes": self.notes}


@dataclass
class Component:
    name: str
    kind: str
    pid: int | None
    port: int | None
    healthy: bool
    region: str = ""


@dataclass
class SandboxStatus:
    dir: str
    running: bool
    api_url: str | None
    components: list[Component]
    faults: list[dict[str, Any]]


@dataclass
class FaultApplied:
    kind: str
    applied: dict[str, Any]
    note: str | None = None


def up(d: Path, scenario: str | None, latency_ms: int | None, ttl: float) -> SandboxUp:
    spawned = control.spawn(d, scenario, latency_ms, ttl)
    state = spawned.state
    env_file = d / control.ENV_FILE
    return SandboxUp(
        dir=str(d), already_running=spawned.already_running,
        ready_seconds=round(spawned.seconds, 2) if not spawned.already_running else 0.0,
        api_url=str(state.get("api_url")), env_file=str(env_file), env=env_file.read_text(),
        timings=dict(state.get("timings") or {}), notes=list(state.get("notes") or []),
    )


NOT_RUNNING_HINT = (f"start one with `doops sandbox up`, or name its directory with --dir or ${control.DIR_ENV} "
                    "(set by `. DIR/env.sh`)")


def require_running(d: Path) -> dict[str, Any]:
    state = control.running_state(d)
    if not state:
        raise UsageError(f"no sandbox running in {d}", hint=NOT_RUNNING_HINT)
    return state


def env(d: Path) -> str:
    require_running(d)
    return (d / control.ENV_FILE).read_text()


def status(d: Path, require: bool = False) -> SandboxStatus:
    """The sandbox's processes; with ``require``, no running sandbox is an error (exit 3: nothing to judge)."""
    state = control.running_state(d)
    if not state:
        if require:
            raise UnknownStateError(f"no sandbox running in {d}", hint=NOT_RUNNING_HINT)
        return SandboxStatus(str(d), False, None, [], [])
    data = control.control(state, "GET", "/status")
    comps = [Component(c["name"], c["kind"], c.get("pid"), c.get("port"), bool(c["healthy"]), c.get("region", ""))
             for c in data["components"]]
    return SandboxStatus(str(d), True, state.get("api_url"), comps, list(data.get("faults") or []))


def down(d: Path, keep: bool) -> control.Stopped:
    if not d.exists():
        raise UsageError(f"no sandbox in {d}",
                         hint=f"pass the --dir given to `doops sandbox up` (or set ${control.DIR_ENV})")
    return control.stop(d, keep=keep)


def fault(d: Path, spec: FaultSpec) -> FaultApplied:
    state = require_running(d)
    data = control.control(state, "POST", "/fault", spec.to_wire())
    return FaultApplied(kind=spec.kind, applied=data.get("applied") or {}, note=data.get("note"))
