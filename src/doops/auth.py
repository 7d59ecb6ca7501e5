"""Token resolution, compatible with doctl.

Order: --access-token, DIGITALOCEAN_ACCESS_TOKEN, DIGITALOCEAN_TOKEN, then doctl's config file
(``access-token`` is context "default", ``auth-contexts`` holds the others, ``context`` the current one).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from doops import secrets
from doops.errors import AuthError, ConfigError

log = logging.getLogger(__name__)


@dataclass
class TokenSource:
    """Where the token came from. ``token`` is never rendered (see ``to_data``)."""

    source: str  # "flag", "env:DIGITALOCEAN_ACCESS_TOKEN", "doctl-config"
    context: str | None
    path: str | None
    token: str
    warnings: list[str]

    def to_data(self) -> dict[str, object]:
        return {"source": self.source, "context": self.context, "config_path": self.path}


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


def resolve_token(flag_token: str | None = None, context: str | None = None) -> TokenSource:
    """Find the token; AuthError (exit 3) names every place looked at when there is none."""
    context = context or os.environ.get("DIGITALOCEAN_CONTEXT") or None
    if flag_token:
        secrets.register(flag_token)
        return TokenSource("flag", context, None, flag_token, [])
    for var in ("DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN"):
        value = os.environ.get(var)
        if value:
            secrets.register(value)
            return TokenSource(f"env:{var}", context, None, value, [])
    for path in doctl_config_paths():
        if path.is_file():
            return _from_doctl_config(path, context)
    raise AuthError(
        "no DigitalOcean token found (looked at --access-token, DIGITALOCEAN_ACCESS_TOKEN, "
        "DIGITALOCEAN_TOKEN and doctl's config.yaml)",
        hint="set DIGITALOCEAN_ACCESS_TOKEN, pass --access-token, or run `doctl auth init`",
    )


def _from_doctl_config(path: Path, context: str | None) -> TokenSource:
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
    secrets.register(str(token))
    for w in warnings:
        log.warning(w)
    return TokenSource("doctl-config", ctx, str(path), str(token), warnings)
