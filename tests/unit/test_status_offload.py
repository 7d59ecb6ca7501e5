"""The forked child of a cold `doops status` (ops/status/offload.py): results back, failures as reasons."""

from __future__ import annotations

import os
import sys
import time

import pytest

from doops.ops.status.model import CheckResult, Status
from doops.ops.status.offload import Child, ChildResult, offloadable

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: POSIX only, where doops offloads")


def test_the_childs_checks_come_back_whole() -> None:
    check = CheckResult("spaces", "learnhub-assets", "replication", Status.WARN, "3 objects at risk",
                        {"in_flight": 3, "missing": ["a/b.png"]}, 12.5)
    got = Child(lambda: ChildResult(checks=[check], api_requests=2)).result(30)
    assert got.error is None
    assert got.checks == [check] and got.api_requests == 2


def test_a_failing_child_is_a_reason_not_a_crash() -> None:
    def work() -> ChildResult:
        raise RuntimeError("boto3 exploded")

    got = Child(work).result(30)
    assert got.checks == [] and got.error == "RuntimeError: boto3 exploded"


def test_a_child_that_dies_says_how() -> None:
    def work() -> ChildResult:
        os._exit(3)

    got = Child(work).result(30)
    assert got.error is not None and "exit 3" in got.error


def test_a_child_past_the_deadline_is_killed() -> None:
    def work() -> ChildResult:
        while True:  # never answers
            time.sleep(1)

    child = Child(work)
    got = child.result(0.3)
    assert got.error is not None and "deadline" in got.error
    with pytest.raises(ChildProcessError):  # already reaped: no zombie left behind
        os.waitpid(child.pid, os.WNOHANG)


def test_only_cold_libraries_are_worth_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    needed = ["psycopg", "boto3", "prometheus_api_client.prometheus_connect"]
    monkeypatch.delitem(sys.modules, "boto3", raising=False)
    monkeypatch.delitem(sys.modules, "prometheus_api_client", raising=False)
    assert offloadable(["apps", "spaces", "prometheus"], needed) == ["spaces", "prometheus"]
    assert offloadable(["spaces"], ["psycopg"]) == []  # no bucket configured: nothing to load
    monkeypatch.setitem(sys.modules, "boto3", sys)  # loaded already (a second run, the exporter)
    assert offloadable(["spaces", "prometheus"], needed) == ["prometheus"]

