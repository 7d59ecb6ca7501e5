"""Transitional alias while `doops sandbox` moves to doops.cli.context (removed once it has)."""

from doops.cli.context import Cli as AppContext
from doops.cli.context import color_enabled

__all__ = ["AppContext", "color_enabled"]
