"""Masking of secrets in everything doops prints, logs or writes.

Known secrets (the token in use, database and Spaces passwords) are registered at run time; patterns catch
the rest (URIs with passwords, bearer headers, DigitalOcean token shapes).

Masking runs on every line doops writes, including whatever a user passed in, so it must stay linear in the
length of its input: no pattern may be retried from every position over a long run (see
``benchmarks/masking.py`` for the figures and ``tests/unit/test_secrets.py`` for the shapes that once took
seconds).
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"

# (keywords, pattern, replacement). Every pattern starts with a fixed keyword, so a match can only begin where
# that keyword is, and what follows the keyword is scanned once: linear. A pattern runs only when one of its
# keywords is in the case-folded text. URIs with passwords are handled by ``_mask_uri_passwords``.
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str], str]] = [
    (("bearer",), re.compile(r"(?i)(authorization:\s*bearer\s+|bearer\s+)([A-Za-z0-9._~+/=-]+)"), r"\1" + MASK),
    (("_v1_",), re.compile(r"\b(do[por]_v1_)[a-f0-9]{16,}\b"), r"\1" + MASK),
    (("password=",), re.compile(r"(?i)(password=)([^\s&]+)"), r"\1" + MASK),
    (("password", "secret_key", "secret_access_key", "access_token"),
     re.compile(r"(?i)(\"?(?:password|secret_key|secret_access_key|access_token)\"?\s*[:=]\s*\"?)([^\"\s,}]+)"),
     r"\1" + MASK),
]

# scheme://user:password@host: found from the "://" (a literal), the user part cannot contain ":" or "/",
# so the runs scanned from two different "://" never overlap.
_URI_USER = re.compile(r"://[^:/@\s]+:")
_URI_PASSWORD_END = re.compile(r"[@\s]")

_lock = threading.Lock()
_known: set[str] = set()


def register(secret: str | None) -> None:
    """Remember a secret value so it is masked wherever it appears, whatever the context."""
    if secret and len(secret) >= 4:
        with _lock:
            _known.add(secret)


def _mask_uri_passwords(text: str) -> str:
    """``scheme://user:password@host`` -> ``scheme://user:***@host`` in one left-to-right pass.

    Why not one regex: ``[a-z][a-z0-9+.-]*://...`` retried its scheme at every letter of a long word, and a
    ``[^@\\s]+@`` tail rescans the rest of the line from every ``://``: both quadratic (a 100 kB argument
    took 18 s). Here each stretch of text is scanned a bounded number of times. Any scheme is masked.
    """
    if "://" not in text:
        return text
    parts: list[str] = []
    kept = 0  # text[kept:] is not yet copied to parts
    pos = 0
    while True:
        user = _URI_USER.search(text, pos)
        if user is None:
            break
        end = _URI_PASSWORD_END.search(text, user.end())
        if end is None:
            break  # no "@" before the end: no later "://" can have one either
        if text[end.start()] == "@" and end.start() > user.end():
            parts += (text[kept:user.end()], MASK)
            kept = end.start()
            pos = end.end()
        else:
            # Whitespace (or an empty password) first: every "://" before it fails the same way.
            pos = end.start()
    if not parts:
        return text
    parts.append(text[kept:])
    return "".join(parts)


def mask(text: str) -> str:
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _mask_uri_passwords(text)
    folded = text.casefold()
    for keywords, pattern, repl in _PATTERNS:
        if any(k in folded for k in keywords):
            text = pattern.sub(repl, text)
    return text


class MaskingFilter(logging.Filter):
    """Applied to doops's log handler: the formatted message is masked before it reaches stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        record.msg = mask(msg)
        record.args = None
        return True
