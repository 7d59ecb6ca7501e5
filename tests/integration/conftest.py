"""Fixtures that start real sandboxes. Each one is stopped at teardown, whatever the test did.

Tests marked ``spec_checked`` (``pytestmark = [pytest.mark.integration, pytest.mark.spec_checked]``) also
have every request the API twin logged while they ran checked against DigitalOcean's OpenAPI spec (the
extract in tests/data, see tests/spec.py): doops's own and the test's. Only ``/_twin/*`` admin routes are
exempt (the twin does not log them). The twin logs no bodies, so bodies are tapped where they leave the test
process (httpx's transport) and joined to the log by the twin's ``x-request-id``; the body of a request sent
by a subprocess is not checked.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from doops.ops import sandbox as ops
from doops.sandbox import control
from tests import spec as contract

SPEC_CHECKED = "spec_checked"


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

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The twin's request log from entry ``since`` on: method, path, query, status, request id (no body)."""
        resp = httpx.get(self.state["api_url"] + "/_twin/requests", params={"since": since} if since else None,
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


# -- spec_checked: every request a test caused must be one DigitalOcean's API accepts --------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SPEC_CHECKED}: every request the API twin logs during the test must "
                                       "validate against the DigitalOcean OpenAPI extract (tests/spec.py)")


class BodyTap:
    """Bodies of the requests this process sends, by the ``x-request-id`` the twin answered with.

    Patched into ``httpx.HTTPTransport`` (under doops's pydo transport and the tests' httpx calls alike), so it
    sees the bytes that went on the wire, from every thread.
    """

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[bytes, str | None]] = {}
        self._lock = threading.Lock()

    def install(self, mp: pytest.MonkeyPatch) -> None:
        send = httpx.HTTPTransport.handle_request
        tap = self

        def handle_request(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            resp = send(transport, request)
            rid = resp.headers.get("x-request-id")
            if rid:
                try:
                    body = request.content
                except httpx.RequestNotRead:  # a streamed body: not seen, so not checked
                    return resp
                with tap._lock:
                    tap.bodies[rid] = (body, request.headers.get("content-type"))
            return resp

        mp.setattr(httpx.HTTPTransport, "handle_request", handle_request)

    def sent(self, entry: dict[str, Any]) -> contract.SentRequest:
        """A twin log entry as a request to check, with its body when this process sent it."""
        rid = entry.get("request_id")
        seen = self.bodies.get(rid) if rid else None
        return contract.SentRequest(
            method=entry["method"], path=entry["path"], query=entry.get("query") or {},
            body=seen[0] if seen else None, body_seen=seen is not None, content_type=seen[1] if seen else None,
            status=entry.get("status"), request_id=rid)


def spec_report(logged: list[dict[str, Any]], tap: BodyTap) -> list[str]:
    """The invalid requests among those logged (``/_twin/*`` exempt), one line each."""
    sent = [tap.sent(e) for e in logged if not e["path"].startswith("/_twin")]
    return contract.sent_problems(contract.load_spec(), sent)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """For ``spec_checked`` tests: the twin's log of the test's run, every request checked against the spec.

    The check covers the call phase (the test body and what it runs), on every sandbox the test uses. An
    invalid request fails the test, naming the request and what is wrong with it; when the test failed on
    its own, the findings are added to its report instead of hiding its error.
    """
    if item.get_closest_marker(SPEC_CHECKED) is None:
        return (yield)
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    sandboxes = list({id(v): v for v in funcargs.values() if isinstance(v, Sandbox)}.values())
    if not sandboxes:  # a check that sees nothing must not pass for one that found nothing wrong
        pytest.fail(f"{item.nodeid} is marked {SPEC_CHECKED} but uses no sandbox fixture", pytrace=False)
    starts = [len(sb.requests()) for sb in sandboxes]
    tap = BodyTap()
    failed = False
    with pytest.MonkeyPatch.context() as mp:
        tap.install(mp)
        try:
            return (yield)
        except BaseException:
            failed = True
            raise
        finally:
            mp.undo()
            try:
                problems = [p for sb, start in zip(sandboxes, starts, strict=True)
                            for p in spec_report(sb.requests(since=start), tap)]
            except Exception as exc:  # the twin gone with the test's failure: keep that failure in front
                if not failed:
                    raise
                problems = [f"cannot read the twin's request log: {exc}"]
            if problems:
                text = (f"{len(problems)} request(s) the DigitalOcean API would not accept "
                        f"(checked against {contract.EXTRACT_PATH.name}):\n  " + "\n  ".join(problems))
                if failed:
                    item.add_report_section("call", "spec", text)
                else:
                    pytest.fail(text, pytrace=False)
