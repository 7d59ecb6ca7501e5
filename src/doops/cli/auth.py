"""`doops auth`: which token, from where, and does it work."""

from __future__ import annotations

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.render import render
from doops.cli.views import AUTH


@click.group()
def auth() -> None:
    """Inspect DigitalOcean authentication."""


@renders(AUTH)
@auth.command("status")
@click.pass_obj
def status(app: Cli) -> None:
    """Say which token source and context is used and prove it with GET /v2/account.

    The token itself is never printed. Exit 3 when no token is found or the API refuses it.

    \b
    Example:
      doops auth status
      DIGITALOCEAN_CONTEXT=staging doops -o json auth status
    """
    from doops.ops.auth import auth_status

    render(auth_status(app.platform), app.output, AUTH)
