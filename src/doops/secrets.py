"""Masking of secrets in everything doops prints, logs or writes.

Known secrets (the token in use, database and Spaces passwords) are registered at run time; patterns catch
the rest (URIs with passwords, bearer headers, DigitalOcean token shapes).
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host  ->  scheme://user:***@host
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)([^@\s]+)(@)"), r"\1" + MASK + r"\3"),
    (re.compile(r"(?i)(authorization:\s*bearer\s+|bearer\s+)([A-Za-z0-9._~+/=-]+)"), r"\1" + MASK),
    (re.compile(r"\b(do[por]_v1_)[a-f0-9]{16,}\b"), r"\1" + MASK),
    (re.compile(r"(?i)(password=)([^\s&]+)"), r"\1" + MASK),
    (re.compile(r"(?i)(\"?(?:password|secret_key|secret_access_key|access_token)\"?\s*[:=]\s*\"?)([^\"\s,}]+)"),
     r"\1" + MASK),
]

_lock = threading.Lock()
_known: set[str] = set()


def register(secret: str | None) -> None:
    """Remember a secret value so it is masked wherever it appears, whatever the context."""
    if secret and len(secret) >= 4:
        with _lock:
            _known.add(secret)


def mask(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class MaskingFilter(logging.Filter):
    """Applied to doops's log handler: the formatted message is masked before it reaches stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        record.msg = mask(msg)
        record.args = None
        return True
