"""The CLI's global contract: exit codes, one-line errors, lazy imports, generated docs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import respx

from doops.docgen import generate
from tests.helpers import CANARY_TOKEN, run_doops

ROOT = Path(__file__).resolve().parents[2]


def test_help_needs_no_token_or_config() -> None:
    res = run_doops(["--help"], env={"DOOPS_CONFIG": "/nonexistent/doops.yaml"})
    assert res.exit_code == 0 and "auth" in res.stdout


def test_help_does_not_import_heavy_clients() -> None:
    code = ("import sys; from doops.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('pydo', 'boto3', 'psycopg', 'prometheus_api_client', 'rich', 'httpx') "
            "if m in sys.modules]\nprint('HEAVY=' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("HEAVY=")


def test_click_usage_error_is_exit_4_one_line() -> None:
    res = run_doops(["--output", "xml", "auth", "status"])
    assert res.exit_code == 4
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doops: error:") and "xml" in lines[0]


def test_unknown_command_is_exit_4() -> None:
    res = run_doops(["frobnicate"])
    assert res.exit_code == 4 and "frobnicate" in res.stderr


def test_explicit_missing_config_is_exit_4(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with respx.mock(base_url="https://api.digitalocean.com", assert_all_called=False):
        res = run_doops(["--config", str(missing), "auth", "status"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4 and str(missing) in res.stderr


def test_unknown_table_column_is_exit_4_before_the_request() -> None:
    with respx.mock(base_url="https://api.digitalocean.com", assert_all_called=False) as router:
        account = router.get("/v2/account").respond(
            200, json={"account": {"uuid": "u", "email": "e", "status": "active"}})
        res = run_doops(["--format", "field,nope", "auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4 and "nope" in res.stderr and "valid columns: field,value" in res.stderr
    assert account.call_count == 0


def test_table_yaml_no_header() -> None:
    with respx.mock(base_url="https://api.digitalocean.com") as router:
        router.get("/v2/account").respond(200, json={"account": {"uuid": "u", "email": "sre@x", "status": "active"}})
        env = {"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}
        table = run_doops(["--no-color", "auth", "status"], env=env)
        plain = run_doops(["--no-header", "--format", "value", "auth", "status"], env=env)
        yaml_out = run_doops(["-o", "yaml", "auth", "status"], env=env)
    assert "FIELD" in table.stdout and "sre@x" in table.stdout
    assert "FIELD" not in plain.stdout and "sre@x\n" in plain.stdout
    assert "email: sre@x" in yaml_out.stdout


def test_canary_token_never_leaks_with_debug() -> None:
    """--debug traces every request; the token must still be masked everywhere."""
    env = {"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}
    with respx.mock(base_url="https://api.digitalocean.com") as router:
        router.get("/v2/account").respond(401, json={"id": "unauthorized", "message": f"bad {CANARY_TOKEN}"})
        res = run_doops(["--debug", "auth", "status"], env=env)
    assert res.exit_code == 3
    assert "HTTP GET https://api.digitalocean.com/v2/account -> 401" in res.stderr
    assert "Bearer ***" in res.stderr
    # run_doops asserted the canary is absent from stdout and stderr


def test_docs_cli_md_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == generate(), "docs/cli.md is stale: run `python -m doops.docgen > docs/cli.md`"


def test_python_dash_m_works() -> None:
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "doops", "--version"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "doops" in out.stdout


def test_traceback_only_with_debug(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    plain = run_doops(["--config", missing, "status"])
    traced = run_doops(["--debug", "--config", missing, "status"])
    assert plain.exit_code == traced.exit_code == 4
    assert "Traceback" not in plain.stderr and "Traceback" in traced.stderr
