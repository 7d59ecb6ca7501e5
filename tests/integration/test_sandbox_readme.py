"""The sandbox as the README and env.sh promise it, in a real shell: one sandbox for the whole module.

It runs without Prometheus (``DOOPS_PROMETHEUS_BIN=none``), like a machine where it is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from doops.sandbox import control
from tests.helpers import run_doops

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent  # .venv/bin: where `doops` is installed
CLEARED = ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN", "DIGITALOCEAN_CONTEXT", "DIGITALOCEAN_API_URL",
           "DOOPS_CONFIG", "DOOPS_SANDBOX_DIR", "PROMETHEUS_URL", "AWS_ENDPOINT_URL_S3")


@dataclass
class Shell:
    root: Path

    def env(self, home: str) -> dict[str, str]:
        """A login-like environment: its own HOME and XDG dirs, `doops` on PATH, no doops state inherited."""
        h = self.root / home
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        env.update(HOME=str(h), XDG_STATE_HOME=str(h / ".local" / "state"), XDG_CONFIG_HOME=str(h / ".config"),
                   PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", DOOPS_PROMETHEUS_BIN="none")
        return env

    @property
    def sandbox_dir(self) -> Path:
        """The default sandbox dir of the "user" HOME: where the Quickstart's `doops sandbox up` starts it."""
        return self.root / "user" / ".local" / "state" / "doops" / "sandbox"

    def run(self, script: str, home: str = "user", cwd: str = "elsewhere") -> subprocess.CompletedProcess[str]:
        (self.root / home).mkdir(exist_ok=True)
        (self.root / cwd).mkdir(exist_ok=True)
        return subprocess.run(["bash", "-c", script], env=self.env(home), cwd=self.root / cwd,
                              capture_output=True, text=True, timeout=300)

    def up(self) -> None:
        """Start the module's sandbox when a test runs on its own (`up` on a running one is a no-op)."""
        out = self.run(f"doops sandbox up --dir '{self.sandbox_dir}' >/dev/null")
        assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def shell() -> Iterator[Shell]:
    # Not under pytest's tmp dir (see conftest.sandbox_root): the database user must reach the sandbox.
    root = Path(tempfile.mkdtemp(prefix="doops-readme-"))
    sh = Shell(root)
    try:
        yield sh
    finally:
        control.stop(sh.sandbox_dir, keep=False)
        shutil.rmtree(root, ignore_errors=True)


def quickstart_sandbox_lines() -> list[str]:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"## Quickstart\s*```sh\n(.*?)\n```", readme, re.S)
    assert m, "no Quickstart block in README.md"
    lines = [line for line in m.group(1).splitlines() if line.startswith("doops sandbox ")]
    assert len(lines) >= 2 and lines[0].startswith("doops sandbox up"), lines
    return lines


def test_readme_quickstart_sandbox_lines_run_as_written(shell: Shell) -> None:
    lines = quickstart_sandbox_lines()
    script = "".join(f'{line}\necho "@@rc=$?"\n' for line in lines) + 'echo "@@dir=$DOOPS_SANDBOX_DIR"\n'
    out = shell.run(script)
    codes = [int(c) for c in re.findall(r"^@@rc=(\d+)$", out.stdout, re.M)]
    assert len(codes) == len(lines), out.stdout + out.stderr
    assert codes[0] == 0, f"{lines[0]!r} failed: {out.stderr}"
    assert f"@@dir={shell.sandbox_dir}" in out.stdout, "the sandbox env is not in the shell after the first line"
    assert "no sandbox running" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    # `fault db-lag ... && doops status databases`: the fault applied, then status judged (0, 1 or 2)
    assert codes[1] in (0, 1, 2), f"{lines[1]!r} exited {codes[1]}: {out.stderr}"
    assert "learnhub-db-ams3" in out.stdout
    status = run_doops(["-o", "json", "sandbox", "status", "--dir", str(shell.sandbox_dir)])
    assert {"kind": "db-lag", "server": "learnhub-db-ams3"} in status.json["faults"]


def test_env_sh_points_every_sandbox_command_at_its_dir(shell: Shell) -> None:
    """`up --dir D && . D/env.sh`, then sandbox commands without --dir, from another HOME and directory."""
    d = shell.sandbox_dir
    out = shell.run(f"doops sandbox up --dir '{d}' >/dev/null && . '{d}/env.sh' "
                    "&& doops sandbox fault db-lag learnhub-db-ams3 && doops sandbox status",
                    home="another-user", cwd="another-dir")
    assert out.returncode == 0, out.stderr
    assert "no sandbox running" not in out.stderr
    assert "db-lag" in out.stdout and "postgres:learnhub-db" in out.stdout and str(d) in out.stdout
    assert not (shell.root / "another-user" / ".local" / "state" / "doops").exists(), "used the default dir"
    cleared = shell.run(f". '{d}/env.sh' && doops sandbox fault clear >/dev/null && doops -o json sandbox status",
                        home="another-user", cwd="another-dir")
    assert cleared.returncode == 0, cleared.stderr
    assert '"faults": []' in cleared.stdout


def test_sandbox_without_prometheus_leaves_it_out(shell: Shell) -> None:
    """No Prometheus: the sandbox's config and env.sh do not name one, so `doops status` does not warn for it."""
    shell.up()
    d = shell.sandbox_dir
    config = yaml.safe_load((d / control.CONFIG_FILE).read_text())
    assert "prometheus" not in config
    env = control.read_env_file(d / control.ENV_FILE)
    assert "PROMETHEUS_URL" not in env and env["DOOPS_SANDBOX_DIR"] == str(d)
    state = control.running_state(d)
    assert state is not None and state["prometheus_url"] is None
    assert any("prometheus" in note for note in state["notes"])
    res = run_doops(["-o", "json", "status"], env=env, secrets=(env["DIGITALOCEAN_ACCESS_TOKEN"],))
    assert "Traceback" not in res.stderr
    prom = [(c["check"], c["status"]) for c in res.json["checks"] if c["component"] == "prometheus"]
    assert prom == [("configured", "skipped")], prom  # shown, not a finding
    assert res.json["overall"] == "ok" and res.exit_code == 0, res.json
