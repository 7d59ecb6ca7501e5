"""Service behind `doops auth status`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from doops.clients.models import Account
from doops.context import AppContext
from doops.output import TableSection


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

    TABLE_COLUMNS: ClassVar[tuple[str, ...]] = ("field", "value")

    def table_sections(self) -> list[TableSection]:
        rows: list[list[Any]] = [
            ["source", self.source],
            ["why", self.reason or "-"],
            ["context", self.context or "-"],
            ["config", self.config_path or "-"],
            ["api", self.api_url],
            ["account", self.account.email],
            ["status", self.account.status],
            ["team", self.account.team or "-"],
        ]
        rows += [["warning", w] for w in self.warnings]
        return [TableSection(columns=["field", "value"], rows=rows)]


def auth_status(app: AppContext) -> AuthStatus:
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
