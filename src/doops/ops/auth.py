"""Service behind `doops auth status`."""

from __future__ import annotations

from dataclasses import dataclass, field

from doops.clients.models import Account
from doops.platform import Platform


@dataclass
class AuthStatus:
    source: str
    context: str | None
    config_path: str | None
    reason: str
    api_url: str
    account: Account
    warnings: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


def auth_status(app: Platform) -> AuthStatus:
    import time

    src = app.token
    started = time.monotonic()
    account = app.do.account()
    return AuthStatus(
        source=src.source,
        context=src.context,
        config_path=src.path,
        reason=src.reason,
        api_url=app.do.api_url,
        account=account,
        warnings=list(src.warnings),
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
