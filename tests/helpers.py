"""In-process runner for doops commands: stdout, stderr, exit code and parsed JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner

from doops.cli import cli

CANARY_TOKEN = "dop_v1_" + "c0ffee" * 10 + "cafe"


@dataclass
class Result:
    stdout: str
    stderr: str
    exit_code: int

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def run_doops(args: list[str], env: dict[str, str] | None = None, input: str | None = None,
              secrets: tuple[str, ...] = (CANARY_TOKEN,)) -> Result:
    """Run doops in-process. Every run also checks that no known secret leaked into its output."""
    runner = CliRunner()
    res = runner.invoke(cli, args, env=env, input=input, catch_exceptions=False)
    result = Result(stdout=res.stdout, stderr=res.stderr, exit_code=res.exit_code)
    for secret in secrets:
        assert secret not in result.stdout, "a secret leaked into stdout"
        assert secret not in result.stderr, "a secret leaked into stderr"
    return result


def wait_for(cond: Any, timeout: float = 30.0, what: str = "condition", interval: float = 0.05) -> Any:
    """Poll ``cond()`` until it returns something truthy; fail after ``timeout`` seconds (no blind sleeps).

    The same wait loop as the operations' (doops.ops.seam.wait_until), on the real clock."""
    from doops.ops.seam import SystemClock, wait_until

    waited = wait_until(cond, timeout=timeout, clock=SystemClock(), interval=interval, max_interval=interval,
                        backoff=1.0)
    if not waited.done:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return waited.value
