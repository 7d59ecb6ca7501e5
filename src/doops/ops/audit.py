"""The audit journal as an operation: who acted on which platform (API host, account, sandbox or not), and
reading it back (`doops audit`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from doops import journal
from doops.errors import ApiError, DoopsError
from doops.times import parse_or_none

if TYPE_CHECKING:
    from doops.platform import Platform


@dataclass
class Identity:
    """Which platform an action was taken on, so a sandbox drill and a production failover read apart."""

    api_host: str
    sandbox: bool
    account_uuid: str | None = None
    account_email: str | None = None

    @classmethod
    def of(cls, app: Platform) -> Identity:
        """One GET /v2/account; an account that cannot be read leaves those fields empty, never fails the run."""
        from doops.clients.do import is_loopback_host

        url = app.resolved_api_url()
        parts = urlsplit(url)
        host = parts.hostname or url
        ident = cls(api_host=parts.netloc or host, sandbox=is_loopback_host(host))
        try:
            account = app.do.account()
        except (ApiError, DoopsError):
            return ident
        ident.account_uuid, ident.account_email = account.uuid or None, account.email or None
        return ident

    def key(self, resource_id: str) -> str:
        """Locks and pending records are per platform: two sandboxes, or a sandbox and a real account, may
        hold resources with the same id."""
        return journal.platform_key(self.api_host, resource_id)


@dataclass
class AuditEntry:
    time: datetime | None
    action: str
    outcome: str | None
    target: str | None
    api_host: str | None
    sandbox: bool | None
    account: str | None
    user: str | None
    record: dict[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        return self.record


@dataclass
class AuditLog:
    path: str
    entries: list[AuditEntry]
    unreadable_lines: int = 0

    def to_data(self) -> list[dict[str, Any]]:
        return [e.record for e in self.entries]


@dataclass
class AuditQuery:
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    limit: int | None = None


def read_audit(query: AuditQuery) -> AuditLog:
    """Entries of the journal, oldest first, that match every filter given."""
    path = journal.audit_path()
    entries: list[AuditEntry] = []
    bad = 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(rec, dict):
            bad += 1
            continue
        entry = _entry(rec)
        if query.action and not (entry.action or "").startswith(query.action):
            continue
        if query.target and query.target not in (rec.get("cluster"), rec.get("replica"), entry.target):
            continue
        if query.since and (entry.time is None or entry.time < query.since):
            continue
        entries.append(entry)
    if query.limit is not None:
        entries = entries[-query.limit:]
    return AuditLog(str(path), entries, bad)


def _target(rec: dict[str, Any]) -> str | None:
    """What the action was done to: a cluster, an app, a CDN endpoint's host name, a bucket."""
    for key in ("cluster", "app", "bucket"):
        if isinstance(rec.get(key), str) and rec[key]:
            return str(rec[key])
    endpoint = rec.get("endpoint")
    if isinstance(endpoint, dict):
        return str(endpoint.get("endpoint") or endpoint.get("id") or "") or None
    return str(endpoint) if isinstance(endpoint, str) and endpoint else None


def _entry(rec: dict[str, Any]) -> AuditEntry:
    raw = rec.get("platform")
    platform: dict[str, Any] = raw if isinstance(raw, dict) else {}
    target = _target(rec)
    if rec.get("replica"):
        target = f"{target} -> {rec['replica']}"
    return AuditEntry(
        time=parse_or_none(rec.get("time")), action=str(rec.get("action", "")), outcome=rec.get("outcome"),
        target=target, api_host=platform.get("api_host"), sandbox=platform.get("sandbox"),
        account=platform.get("account_email") or platform.get("account_uuid"), user=rec.get("user"), record=rec)
