"""Token resolution, compatible with doctl.

Order: --access-token; then a named context (--context or DIGITALOCEAN_CONTEXT) from doctl's config file;
then DIGITALOCEAN_ACCESS_TOKEN, DIGITALOCEAN_TOKEN; then doctl's current context (``access-token`` is
context "default", ``auth-contexts`` holds the others, ``context`` the current one).

Why a named context beats the token variables: naming ``--context prod`` and silently getting whatever token
the shell exports is how a command meant for staging runs against production. doctl does the same for
every context but ``default``; doops does it for all of them.

Every token is checked where it is resolved, so every command gets the check before its first request: a
token with whitespace, a control or non-ASCII character or over 1 KB is bad input (exit 4), reported
without any part of the token.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from doops import masking
from doops.errors import AuthError, ConfigError, UsageError

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 1024  # DigitalOcean tokens are 71 characters; anything near 1 KB is a paste gone wrong
TOKEN_VARS = ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN")


@dataclass
class TokenSource:
    """Where the token came from and why that source won. ``token`` is never rendered (see ``to_data``)."""

    source: str  # "flag", "env:DIGITALOCEAN_ACCESS_TOKEN", "doctl-config"
    context: str | None  # the doctl context the token belongs to (None unless source is doctl-config)
    path: str | None
    token: str
    warnings: list[str]
    reason: str = ""

    def to_data(self) -> dict[str, object]:
        return {"source": self.source, "context": self.context, "config_path": self.path, "reason": self.reason}


def doctl_config_paths() -> list[Path]:
    """Where doctl keeps its config, in the order doctl looks."""
    paths: list[Path] = []
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        paths.append(Path(xdg) / "doctl" / "config.yaml")
    home = Path.home()
    paths.append(home / ".config" / "doctl" / "config.yaml")
    if sys.platform == "darwin":
        paths.append(home / "Library" / "Application Support" / "doctl" / "config.yaml")
    return paths


def check_token(token: str, where: str) -> str:
    """The token as an HTTP header can carry it; else UsageError that never shows any of it.

    Why here: a newline in a token made httpx print the header value (the part after the newline unmasked),
    and a 100 kB token came back as DigitalOcean's HTML 431 page.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise UsageError(
            f"the token from {where} is {len(token)} characters long (at most {MAX_TOKEN_LENGTH}; "
            "DigitalOcean tokens are 71)",
            hint="check the value: a whole file or several tokens may have been pasted",
        )
    bad = next((i for i, ch in enumerate(token) if not "\x21" <= ch <= "\x7e"), None)
    if bad is not None:
        ch = token[bad]
        kind = ("a newline" if ch in "\r\n" else "a space" if ch == " " else "a tab" if ch == "\t"
                else "a non-ASCII character" if ord(ch) > 0x7f else "a control character")
        place = "at its end" if bad == len(token) - 1 else "at its start" if bad == 0 else "inside it"
        raise UsageError(
            f"the token from {where} contains {kind} {place} (character {bad + 1} of {len(token)})",
            hint="a token is one word of printable ASCII: remove the stray character",
        )
    return token


def resolve_token(flag_token: str | None = None, context: str | None = None) -> TokenSource:
    """Find the token; AuthError (exit 3) names every place looked at when there is none.

    ``context`` is the --context value (Click also fills it from DIGITALOCEAN_CONTEXT).
    """
    env_context = os.environ.get("DIGITALOCEAN_CONTEXT") or None
    context = context or env_context
    named_by = None
    if context:
        named_by = f"DIGITALOCEAN_CONTEXT={context}" if context == env_context else f"--context {context}"
    env_tokens = [v for v in TOKEN_VARS if os.environ.get(v)]
    if flag_token:
        masking.register(flag_token)
        check_token(flag_token, "--access-token")
        if context and context != env_context:
            raise UsageError(
                f"--access-token and --context {context} both name a token",
                hint="give one of them: --context picks a token from doctl's config",
            )
        reason = "--access-token given: it beats every other source"
        if context:
            reason += f" (DIGITALOCEAN_CONTEXT={context} not used)"
        return TokenSource("flag", None, None, flag_token, [], reason)
    if context:
        paths = [p for p in doctl_config_paths() if p.is_file()]
        if not paths:
            raise AuthError(
                f"{named_by} names a doctl context, but there is no doctl config "
                f"(looked at {', '.join(str(p) for p in doctl_config_paths())})",
                hint="run `doctl auth init --context NAME`, or drop the context to use "
                + (env_tokens[0] if env_tokens else "DIGITALOCEAN_ACCESS_TOKEN"),
            )
        reason = f"{named_by} picks doctl's context {context}"
        if env_tokens:
            reason += f"; a named context beats {' and '.join(env_tokens)} (set but not used)"
        return _from_doctl_config(paths[0], context, reason)
    for var in TOKEN_VARS:
        value = os.environ.get(var)
        if value:
            masking.register(value)
            check_token(value, var)
            reason = f"{var} is set and neither --access-token nor --context was given"
            return TokenSource(f"env:{var}", None, None, value, [], reason)
    for path in doctl_config_paths():
        if path.is_file():
            return _from_doctl_config(path, None, "no --access-token, --context or token variable: "
                                                  "doctl's current context")
    raise AuthError(
        "no DigitalOcean token found (looked at --access-token, DIGITALOCEAN_ACCESS_TOKEN, "
        "DIGITALOCEAN_TOKEN and doctl's config.yaml)",
        hint="set DIGITALOCEAN_ACCESS_TOKEN, pass --access-token, or run `doctl auth init`",
    )


def _from_doctl_config(path: Path, context: str | None, reason: str) -> TokenSource:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read doctl config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"doctl config {path} is not a mapping")
    ctx = context or data.get("context") or "default"
    contexts = data.get("auth-contexts") or {}
    token = data.get("access-token") if ctx == "default" else None
    if not token and isinstance(contexts, dict):
        token = contexts.get(ctx)
    warnings: list[str] = []
    mode = path.stat().st_mode
    if token and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(
            f"{path} holds a token and is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    if not token:
        known = ["default"] if data.get("access-token") else []
        if isinstance(contexts, dict):
            known += [str(k) for k in contexts]
        raise AuthError(
            f"doctl config {path} has no token for context {ctx!r}",
            hint="known contexts: " + (", ".join(known) or "none") + "; pick one with --context",
        )
    masking.register(str(token))
    check_token(str(token), f"doctl config {path} (context {ctx})")
    for w in warnings:
        log.warning(w)
    return TokenSource("doctl-config", ctx, str(path), str(token), warnings, reason)
