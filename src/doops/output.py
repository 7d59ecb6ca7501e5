"""Transitional: the renderer lives in doops.cli.render, plain data in doops.serialize (removed once the
sandbox's result types have moved to views)."""

from doops.cli.render import FORMATS, OutputOptions, TableSection, View, check_columns, render, select_columns
from doops.serialize import to_data

__all__ = ["FORMATS", "OutputOptions", "TableSection", "View", "check_columns", "render", "select_columns",
           "to_data"]
