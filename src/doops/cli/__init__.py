"""The doops command tree. Thin: parse options, build the context, call one service, render.

Subcommands are imported lazily so ``doops --help`` stays fast and never imports pydo, boto3, psycopg or
prometheus-api-client.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from doops import __version__
from doops.cli.params import check_format, check_table_columns
from doops.cli.render import FORMATS
from doops.errors import DoopsError, ExitCode

# name -> (module, attribute, short help shown by `doops --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "app": ("doops.cli.app", "app", "Roll back, redeploy or restart an app, verified healthy, with compute RTO."),
    "assess": ("doops.cli.assess", "assess", "Can the deployment meet its objectives, and where is it exposed?"),
    "audit": ("doops.cli.audit", "audit", "Read the audit journal: who did what, where, with what outcome."),
    "auth": ("doops.cli.auth", "auth", "Show which DigitalOcean token is used and prove it works."),
    "cdn": ("doops.cli.cdn", "cdn", "Purge CDN paths within DigitalOcean's limits, verified fresh at the edge."),
    "db": ("doops.cli.db", "db", "Point-in-time recovery into a new cluster, verified, with RTO and RPO."),
    "dns": ("doops.cli.dns", "dns", "Check the failover records at the authoritative name servers (Nagios codes)."),
    "drill": ("doops.cli.drill", "drill", "Runbooks as scheduled DR drills: history, trends, reports, metrics."),
    "exporter": ("doops.cli.exporter", "exporter", "Serve `doops status` as Prometheus metrics (/metrics, /healthz)."),
    "failover": ("doops.cli.failover", "failover", "Promote a DB replica, or move an app to its standby region."),
    "runbook": ("doops.cli.runbook", "runbook", "Validate, plan and run YAML recovery runbooks; measure RTO and RPO."),
    "sandbox": ("doops.cli.sandbox", "sandbox", "Run a local DigitalOcean twin with real servers."),
    "spaces": ("doops.cli.spaces", "spaces", "What the replica bucket lacks: the storage RPO right now."),
    "status": ("doops.cli.status", "status", "Health of every platform component (Nagios exit codes)."),
}

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """Loads subcommands on use; also the one place errors become exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attr, _ = COMMANDS[cmd_name]
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            add_output_options(cmd)
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(args) if args is not None else sys.argv[1:]
        code = run_guarded(lambda: super(LazyGroup, self).main(
            args=args, prog_name=prog_name or "doops", complete_var=complete_var, standalone_mode=False, **extra
        ), debug="--debug" in argv)
        if standalone_mode:
            sys.exit(code)
        return code


def _set_output(field: str) -> Any:
    """Callback of an output option given after the command's name; Click calls it whether or not the option
    was given, before the command runs, so the options given before the name are checked here too."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        app = ctx.find_root().obj
        if value is not None and value is not False:
            if field == "columns":
                value = [c for c in str(value).split(",") if c.strip()]
            if field == "color":
                value = False
            setattr(app.output, field, value)
        if field == "fmt":
            check_format(ctx, app.output.fmt)
        elif field == "columns":
            check_table_columns(ctx, app.output.columns)

    return callback


def add_output_options(cmd: click.Command) -> None:
    """Every leaf command also takes -o/--format/--no-header/--no-color after its name
    (`doops status -o json`), overriding the same options given before it.

    The options are checked against what the command renders (declared with ``params.renders``) when the
    command starts, before it sends anything: a bad ``--format`` must never surface after a promotion."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            add_output_options(sub)
        return
    if getattr(cmd, "_doops_output_options", False):
        return
    cmd.params += [
        click.Option(["-o", "--output"], type=click.Choice(list(FORMATS)), default=None,
                     expose_value=False, callback=_set_output("fmt"), help="Result format (as before the command)."),
        click.Option(["--format"], metavar="COL,COL", default=None, expose_value=False,
                     callback=_set_output("columns"), help="Table columns to show, in order."),
        click.Option(["--no-header"], is_flag=True, default=False, expose_value=False,
                     callback=_set_output("no_header"), help="Tables: tab-separated rows without a header."),
        click.Option(["--no-color"], is_flag=True, default=False, expose_value=False,
                     callback=_set_output("color"), help="No colour."),
    ]
    cmd._doops_output_options = True  # type: ignore[attr-defined]


def run_guarded(fn: Any, debug: bool = False) -> int:
    """Run the command; map every outcome to the exit-code table (docs/exit-codes.md).

    ``debug`` comes from the arguments being run (not sys.argv), so in-process runs trace like real ones.
    """
    debug = debug or os.environ.get("DOOPS_DEBUG") == "1"
    try:
        rv = fn()
        return _exit_code_of(rv)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        _error("interrupted", None)
        return ExitCode.INTERRUPTED
    except click.UsageError as exc:
        # Click's own usage errors are bad input too: exit 4, one line, a hint.
        hint = None
        if exc.ctx is not None:
            hint = f"see `{exc.ctx.command_path} --help`"
        _error(exc.format_message(), hint)
        return ExitCode.USAGE
    except click.ClickException as exc:
        _error(exc.format_message(), None)
        return ExitCode.USAGE
    except DoopsError as exc:
        if debug:
            import traceback

            from doops.masking import mask

            sys.stderr.write(mask(traceback.format_exc()))
        _error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted", None)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.OK
    except Exception as exc:  # the last line of defence: a bug must still not print a traceback
        from doops.masking import mask

        if debug:
            import traceback

            sys.stderr.write(mask(traceback.format_exc()))
        _error(f"internal error: {type(exc).__name__}: {exc}", "re-run with --debug and report it")
        return ExitCode.UNKNOWN


def _exit_code_of(rv: Any) -> int:
    """A command returns an exit code, or an operation's result: its outcome picks the code, and an outcome
    that is not a success says why on stderr (one line, like an error)."""
    outcome = getattr(rv, "outcome", None)
    if outcome is not None and hasattr(outcome, "exit_code"):
        from doops.ops.seam import Outcome

        message = str(getattr(rv, "message", None) or "")
        if outcome not in (Outcome.OK, Outcome.DRY_RUN) and message:
            _error(message, getattr(rv, "hint", None))
        return int(outcome.exit_code)
    return int(rv) if isinstance(rv, int) else 0


def _error(message: str, hint: str | None) -> None:
    from doops.masking import mask

    line = f"doops: error: {message}"
    if hint:
        line += f" (hint: {hint})"
    sys.stderr.write(mask(line.replace("\n", " ")) + "\n")
    sys.stderr.flush()


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.option("--context", "context_name", metavar="NAME", envvar="DIGITALOCEAN_CONTEXT",
              help="doctl auth context to take the token from.")
@click.option("--config", "config_path", metavar="PATH", envvar="DOOPS_CONFIG",
              help="doops config file (env DOOPS_CONFIG; default ~/.config/doops/doops.yaml).")
@click.option("-o", "--output", "output", type=click.Choice(list(FORMATS)), default="table",
              show_default=True, help="Result format.")
@click.option("--format", "columns", metavar="COL,COL", help="Table columns to show, in order.")
@click.option("--no-header", is_flag=True, help="Tables: tab-separated rows without a header.")
@click.option("--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.option("-v", "--verbose", count=True, help="More progress on stderr.")
@click.option("--debug", is_flag=True, help="HTTP trace and tracebacks on stderr, secrets masked.")
@click.option("--api-url", metavar="URL", envvar="DIGITALOCEAN_API_URL",
              help="DigitalOcean API endpoint (env DIGITALOCEAN_API_URL; default https://api.digitalocean.com).")
@click.option("--access-token", metavar="TOKEN", help="API token (prefer DIGITALOCEAN_ACCESS_TOKEN).")
@click.version_option(__version__, prog_name="doops")
@click.pass_context
def cli(ctx: click.Context, context_name: str | None, config_path: str | None, output: str,
        columns: str | None, no_header: bool, no_color: bool, verbose: int, debug: bool,
        api_url: str | None, access_token: str | None) -> None:
    """doops: operate and observe the learnhub platform on DigitalOcean.

    \b
    Examples:
      doops auth status
      doops sandbox up && eval "$(doops sandbox env)"
      doops -o json auth status
    """
    from doops.cli.context import Cli, color_enabled
    from doops.cli.render import OutputOptions
    from doops.logs import setup_logging
    from doops.platform import Platform

    setup_logging(verbose, debug)
    if access_token:
        from doops import masking

        masking.register(access_token)
    app = Cli(
        platform=Platform(config_path=config_path, config_explicit=bool(config_path), context=context_name,
                          access_token=access_token, api_url=api_url, debug=debug),
        output=OutputOptions(
            fmt=output,
            columns=[c for c in columns.split(",") if c.strip()] if columns else None,
            no_header=no_header,
            color=color_enabled(no_color),
        ),
        verbose=verbose,
    )
    ctx.obj = app
    ctx.call_on_close(app.close)


def main() -> None:
    cli.main(prog_name="doops")
