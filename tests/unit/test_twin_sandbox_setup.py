"""Sandbox plumbing without starting one: which DIR a command acts on, the config it writes, system servers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from doops.config import parse_config
from doops.sandbox import control
from doops.sandbox.prom import find_prometheus
from doops.sandbox.supervisor import Supervisor, sandbox_config
from tests.helpers import run_doops

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-system-deps.sh"


# -- DIR: --dir, then $DOOPS_SANDBOX_DIR (env.sh exports it), then the default state dir -----------------


def test_dir_defaults_to_doops_sandbox_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(control.DIR_ENV, raising=False)
    assert control.resolve_dir(None) == control.default_dir().resolve()
    monkeypatch.setenv(control.DIR_ENV, str(tmp_path / "sb"))
    assert control.resolve_dir(None) == tmp_path / "sb"
    assert control.resolve_dir(str(tmp_path / "other")) == tmp_path / "other"  # --dir wins
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(control.DIR_ENV, "rel")
    assert control.resolve_dir(None) == tmp_path / "rel"  # absolute, as env.sh and the supervisor record it


def test_every_sandbox_command_reads_doops_sandbox_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sb = tmp_path / "sb"
    sb.mkdir()
    monkeypatch.setenv(control.DIR_ENV, str(sb))
    for args in (["sandbox", "env"], ["sandbox", "fault", "clear"], ["sandbox", "fault", "db-lag", "r"],
                 ["sandbox", "status"]):
        res = run_doops(args)
        assert str(sb) in res.stderr, (args, res.stderr)
        assert "/.local/state/" not in res.stderr, (args, res.stderr)
    down = run_doops(["-o", "json", "sandbox", "down", "--keep"])
    assert down.exit_code == 0 and down.json["dir"] == str(sb)


def test_status_without_sandbox_is_one_line_and_exit_3(tmp_path: Path) -> None:
    res = run_doops(["sandbox", "status", "--dir", str(tmp_path / "none")])
    assert res.exit_code == 3  # documented: 3 when not running
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("doops: error: no sandbox running in ") and "hint:" in lines[0]
    json_res = run_doops(["-o", "json", "sandbox", "status", "--dir", str(tmp_path / "none")])
    assert json_res.exit_code == 3 and json_res.stdout == "" and len(json_res.stderr.splitlines()) == 1


# -- the doops config a sandbox writes ---------------------------------------------------------------------


def _state(prometheus_url: str | None) -> dict[str, Any]:
    return {"api_url": "http://127.0.0.1:1", "prometheus_url": prometheus_url,
            "spaces": {"endpoint_url": "http://127.0.0.1:2"}, "cdn": {"ep1": "http://127.0.0.1:3"}}


def test_config_names_prometheus_only_when_it_runs() -> None:
    origins = {"ep1": "learnhub-media.nyc3.digitaloceanspaces.com"}
    without = sandbox_config(_state(None), origins)
    assert "prometheus" not in without
    with_prom = sandbox_config(_state("http://127.0.0.1:9090"), origins)
    assert with_prom["prometheus"]["url_env"] == "PROMETHEUS_URL" and with_prom["prometheus"]["slo_queries"]
    for cfg in (without, with_prom):  # both are valid doops configs
        parsed = parse_config(yaml.safe_dump(cfg), "doops.yaml")
        assert parsed.cdn[0].bucket == "learnhub-media"


def test_config_leaves_sslmode_to_the_default_so_doops_verifies_the_server() -> None:
    """Before: the sandbox config pinned sslmode: require, so doops never checked the server's certificate."""
    cfg = sandbox_config(_state(None), {"ep1": "learnhub-media.nyc3.digitaloceanspaces.com"})
    assert "sslmode" not in cfg["databases"]["clusters"][0]
    assert parse_config(yaml.safe_dump(cfg), "doops.yaml").databases.clusters[0].sslmode == "auto"


def test_doops_prometheus_bin_none_runs_without_prometheus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOOPS_PROMETHEUS_BIN", "none")
    assert find_prometheus() is None


def test_each_supervisor_has_its_own_id_seed(tmp_path: Path) -> None:
    seeds = {Supervisor(tmp_path, None, 0, 0).id_seed for _ in range(3)}
    assert len(seeds) == 3 and all(len(s) == 32 for s in seeds)


# -- system servers: one script for the README's test command and CI ---------------------------------------


def _block(readme: str, marker: str) -> str:
    m = re.search(rf"<!-- {marker} -->\s*```sh\n(.*?)\n```", readme, re.S)
    assert m, f"no {marker} block in README.md"
    return m.group(1)


def test_readme_test_command_and_ci_install_system_servers_with_the_script() -> None:
    readme = (REPO / "README.md").read_text()
    assert _block(readme, "test-command").startswith("bash scripts/install-system-deps.sh && ")
    assert "scripts/install-system-deps.sh" in readme.split("## Quickstart")[0].split("<!-- test-command -->")[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/install-system-deps.sh" in ci
    assert "apt-get" not in ci, "CI installs system packages through the script only"


def test_install_script_without_root_names_what_is_missing(tmp_path: Path) -> None:
    """With installing off, it changes nothing, exits 0 and names exactly what the sandbox would miss."""
    from doops.sandbox.cache import find_redis
    from doops.sandbox.children import ServerNotFoundError
    from doops.sandbox.pg_util import PgNotFoundError, find_pg_bindir
    from doops.sandbox.pgbouncer import find_pgbouncer

    overrides = ("DOOPS_PROMETHEUS_BIN", "DOOPS_PG_BINDIR", "DOOPS_PGBOUNCER_BIN", "DOOPS_REDIS_BIN")
    env = {k: v for k, v in os.environ.items() if k not in overrides}
    out = subprocess.run(["bash", str(INSTALL_SCRIPT)], env={**env, "DOOPS_NO_SYSTEM_INSTALL": "1"},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) <= 1
    try:
        find_pg_bindir()
        pg_missing = False
    except PgNotFoundError:
        pg_missing = True
    prom_missing = find_prometheus() is None

    def missing(find: Any) -> bool:
        try:
            find()
        except ServerNotFoundError:
            return True
        return False

    said = lines[0] if lines else ""
    assert ("postgresql" in said) == pg_missing and ("prometheus" in said) == prom_missing, said
    assert ("pgbouncer" in said) == missing(find_pgbouncer), said
    assert ("redis-server" in said) == missing(find_redis), said
    if said:
        assert said.startswith("install-system-deps: missing") and "README" in said
