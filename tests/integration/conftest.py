"""Fixtures that start real sandboxes. Each one is stopped at teardown, whatever the test did."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from doops.ops import sandbox as ops
from doops.sandbox import control


@dataclass
class Sandbox:
    dir: Path
    state: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        """The variables of env.sh, for run_doops(env=...)."""
        return control.read_env_file(self.dir / control.ENV_FILE)

    @property
    def token(self) -> str:
        return str(self.state["token"])

    def fault(self, **spec: Any) -> Any:
        return control.control(self.state, "POST", "/fault", spec)

    def clear(self) -> None:
        self.fault(kind="clear")

    def requests(self) -> list[dict[str, Any]]:
        import httpx

        resp = httpx.get(self.state["api_url"] + "/_twin/requests",
                         headers={"X-Twin-Admin-Secret": self.state["admin_secret"]}, timeout=10)
        resp.raise_for_status()
        return list(resp.json()["requests"])


def start_sandbox(d: Path, scenario: str | None = None, latency: int | None = None) -> Sandbox:
    result = ops.up(d, scenario, latency, ttl=1800)
    state = control.running_state(d)
    assert state is not None, f"sandbox in {d} not running after up: {result}"
    return Sandbox(d, state)


@pytest.fixture(scope="session")
def sandbox_root() -> Iterator[Path]:
    # Not under pytest's tmp dir: pytest resets it to 0700 at each session start, which would cut the
    # unprivileged database user off from a sandbox still running in an overlapping session.
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="doops-it-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_sandbox(sandbox_root: Path) -> Iterator[Sandbox]:
    """One default sandbox for the read-only tests of a session."""
    sb = start_sandbox(sandbox_root / "shared")
    try:
        yield sb
    finally:
        control.stop(sb.dir, keep=os.environ.get("DOOPS_KEEP_SANDBOX") == "1")


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox with every fault cleared before and after the test."""
    shared_sandbox.clear()
    yield shared_sandbox
    shared_sandbox.clear()


@pytest.fixture
def fresh_sandbox(sandbox_root: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox of its own, for tests that change it for good (promotion, killed servers)."""
    d = sandbox_root / request.node.name[:40]
    sb = start_sandbox(d)
    try:
        yield sb
    finally:
        control.stop(sb.dir, keep=False)
