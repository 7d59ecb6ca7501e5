"""Output options are checked when a command starts, for every command: a bad --format or -o never surfaces
after something was sent or changed (issue: `failover db --yes --format nosuchfield` promoted, then failed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import respx

from doops.cli import COMMANDS, cli
from tests.helpers import CANARY_TOKEN, run_doops

# Arguments that make each leaf command valid apart from the output option under test. A new command
# must be added here: the walk below fails for a leaf it has no arguments for.
SAMPLE_ARGS: dict[str, list[str]] = {
    "app deployments": ["learnhub-api"],
    "app redeploy": ["learnhub-api", "--yes"],
    "app restart": ["learnhub-api", "--component", "api", "--yes"],
    "app rollback": ["learnhub-api", "--yes"],
    "assess": [],
    "audit": [],
    "auth status": [],
    "cdn purge": ["static/app.js", "--yes"],
    "db backups": [],
    "db pitr": ["--latest", "--yes"],
    "dns check": [],
    "drill run": ["runbooks/none.yaml", "--yes"],
    "drill history": ["db-failover", "--since", "30d", "--limit", "5"],
    "drill due": [],
    "drill report": ["--html", "{sb}-report.html", "--history-url", "{sb}-history.db"],
    "drill schedule": ["runbooks/none.yaml", "--cron", "0 3 * * 1", "--target", "kubernetes", "--out-dir", "{sb}"],
    "exporter": ["--listen", "127.0.0.1:9877", "--interval", "60s"],
    "failover db": ["--region", "ams3", "--yes"],
    "failover app": ["--region", "ams3", "--yes"],
    "runbook validate": ["runbooks/none.yaml"],
    "runbook plan": ["runbooks/none.yaml"],
    "runbook run": ["runbooks/none.yaml", "--yes"],
    "runbook list": [],
    "sandbox up": ["--dir", "{sb}"],
    "sandbox env": ["--dir", "{sb}"],
    "sandbox status": ["--dir", "{sb}"],
    "sandbox down": ["--dir", "{sb}"],
    "sandbox fault latency": ["--dir", "{sb}", "--ms", "100"],
    "sandbox fault http-error": ["--dir", "{sb}", "--status", "503"],
    "sandbox fault throttle": ["--dir", "{sb}", "--per-minute", "5"],
    "sandbox fault db-stop": ["--dir", "{sb}", "learnhub-db"],
    "sandbox fault db-lag": ["--dir", "{sb}", "learnhub-db-ams3"],
    "sandbox fault app-unhealthy": ["--dir", "{sb}", "learnhub-api"],
    "sandbox fault bad-release": ["--dir", "{sb}", "learnhub-api"],
    "sandbox fault tls": ["--dir", "{sb}", "learnhub-api", "--max-version", "1.2"],
    "sandbox fault spaces-replication": ["--dir", "{sb}", "pause"],
    "sandbox fault clear": ["--dir", "{sb}"],
    "spaces gap": [],
    "status": [],
}


def leaf_commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        yield from _walk(name, cmd)


def _walk(path: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
    if isinstance(cmd, click.Group):
        for sub_name, sub in cmd.commands.items():
            yield from _walk(f"{path} {sub_name}", sub)
    else:
        yield path, cmd


LEAVES = sorted(path for path, _ in leaf_commands())


def test_every_leaf_command_has_sample_args_and_declares_what_it_renders() -> None:
    assert sorted(SAMPLE_ARGS) == LEAVES, "add the new command to SAMPLE_ARGS"
    for path, cmd in leaf_commands():
        assert hasattr(cmd, "doops_columns"), f"`doops {path}` lacks @renders(...)"


BAD = {
    "leaf --format": lambda p: [*p, "--format", "nosuchfield"],
    "root --format": lambda p: ["--format", "nosuchfield", *p],
    "leaf -o": lambda p: [*p, "-o", "xml"],
    "root -o": lambda p: ["-o", "xml", *p],
}


@pytest.mark.parametrize("how", sorted(BAD))
@pytest.mark.parametrize("path", LEAVES)
def test_bad_output_option_is_exit_4_before_anything_is_sent(path: str, how: str, tmp_path: Path,
                                                              isolated_env: Path) -> None:
    sb = tmp_path / "sb"
    args = [a.replace("{sb}", str(sb)) for a in [*path.split(), *SAMPLE_ARGS[path]]]
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().respond(500, json={"id": "server_error", "message": "must not be called"})
        res = run_doops(BAD[how](args), env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4, (res.exit_code, res.stderr)
    assert catch_all.call_count == 0, f"`doops {path}` sent {catch_all.call_count} request(s) before failing"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doops: error:"), res.stderr
    assert ("nosuchfield" if "format" in how else "xml") in lines[0]
    assert not sb.exists(), "a sandbox was started"
    assert not (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").exists(), "an action was audited"


def test_format_narrows_a_multi_table_result_to_the_tables_that_have_the_columns() -> None:
    from doops.cli.render import TableSection, select_columns

    sections = [TableSection(["check", "ok"], [["a", "ok"]], "pre-checks"),
                TableSection(["member", "role"], [["m", "primary"]], "topology")]
    picked = select_columns(sections, ["ok", "check"])
    assert [s.title for s in picked] == ["pre-checks"] and picked[0].columns == ["ok", "check"]
    assert picked[0].rows == [["ok", "a"]]
