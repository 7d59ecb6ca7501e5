"""Logging to stderr, masked. stdout is reserved for results."""

from __future__ import annotations

import logging
import sys

from doops.masking import MaskingFilter


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Looks up sys.stderr at emit time so test runners that swap it still capture the logs."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _Formatter(logging.Formatter):
    """``doops: WARNING: ...`` for logs; a notice (``extra={"notice": True}``, e.g. a rate-limit wait) is
    said plainly: ``doops: waiting 50 s for the API rate limit``."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "notice", False):
            return f"doops: {record.getMessage()}"
        return super().format(record)


def setup_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger("doops")
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = _StderrHandler()
    handler.addFilter(MaskingFilter())
    handler.setFormatter(_Formatter("doops: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
