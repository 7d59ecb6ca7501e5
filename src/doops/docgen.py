"""Generate docs/cli.md from the command tree's --help (a test fails when the file is stale).

Run: python -m doops.docgen > docs/cli.md
"""

from __future__ import annotations

import click

from doops.cli import COMMANDS, cli


def _walk(cmd: click.Command, path: list[str], out: list[str], parent: click.Context | None) -> None:
    # make_context applies context_settings and parents exactly as a real run does (e.g. -h).
    ctx = cmd.make_context(path[-1], [], parent=parent, resilient_parsing=True,
                           terminal_width=100, max_content_width=100)
    out.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`\n")
    out.append("```text\n" + cmd.get_help(ctx).rstrip() + "\n```\n")
    if isinstance(cmd, click.Group):
        names = sorted(COMMANDS) if cmd is cli else cmd.list_commands(ctx)
        for name in names:
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _walk(sub, [*path, name], out, ctx)


def generate() -> str:
    out = ["# doops command reference\n",
           "Generated from `--help` by `python -m doops.docgen > docs/cli.md`; do not edit by hand.\n"]
    _walk(cli, ["doops"], out, None)
    return "\n".join(out)


if __name__ == "__main__":
    print(generate(), end="")
