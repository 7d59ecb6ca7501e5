"""How each result looks as tables. Operations return data; these functions lay it out for people, and each
``View`` declares the columns ``--format`` may name (checked when the command starts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from doops.cli.render import TableSection, View
from doops.units import format_bytes

STATUS_STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red", "unknown": "magenta", "skipped": "dim"}


def stamp(t: datetime | None) -> str | None:
    """Millisecond UTC timestamps: an RTO of 0.20 s beside times to the second says nothing."""
    return None if t is None else t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lag_text(value: Any) -> Any:
    if isinstance(value, dict) and {"bytes", "seconds"} <= set(value):
        b = value["bytes"]
        return f"{'?' if b is None else format_bytes(int(b))}, {value['seconds'] or 0:.1f}s behind"
    return value


# -- failover db ---------------------------------------------------------------------------------------------


def _precheck_mark(p: Any) -> str:
    if p.ok:
        return "ok"
    return "FAIL" if p.blocking else "no (info)"


def _failover_tables(r: Any) -> list[TableSection]:
    sections = [TableSection(
        title=f"pre-checks: promote {r.replica} ({r.region}) of {r.cluster}",
        columns=["check", "ok", "value", "detail"],
        rows=[[p.name, _precheck_mark(p), lag_text(p.value), p.detail] for p in r.prechecks],
        styles={"ok": "green", "FAIL": "bold red", "no (info)": "yellow"},
    )]
    for title, members in (("topology before", r.topology_before), ("topology after", r.topology_after)):
        if members:
            sections.append(TableSection(
                title=title, columns=["member", "region", "role", "status", "host", "lag"],
                rows=[[m.member, m.region, m.role, m.status, m.host, lag_text(m.lag) if m.lag else ""]
                      for m in members]))
    t = r.timings
    rows: list[list[Any]] = [["outcome", r.state]]
    if r.promoted_at is not None:
        rows.append(["promoted at", stamp(r.promoted_at)])
    if not r.dry_run:
        rows += [["promote sent", stamp(t.promote_sent)], ["API online", stamp(t.api_online)],
                 ["writable", stamp(t.writable)],
                 ["RTO", f"{r.rto_seconds:.2f}s" if r.rto_seconds is not None else "unknown"],
                 ["RTO target", f"{r.rto_target_seconds:.0f}s"],
                 ["met", "-" if r.met is None else ("yes" if r.met else "NO")]]
        if r.new_primary:
            rows.append(["new primary", f"{r.new_primary.name} {r.new_primary.host}:{r.new_primary.port}"])
        if r.data_loss:
            rows.append(["heartbeat rows missing", r.data_loss.get("heartbeat_rows_missing")])
    sections.append(TableSection(title="result", columns=["field", "value"], rows=rows,
                                 styles={"NO": "bold red", "yes": "green"}))
    if r.warnings:
        sections.append(TableSection(title="warnings", columns=["warning"], rows=[[w] for w in r.warnings]))
    if r.next_steps:
        sections.append(TableSection(title="next steps: what to repoint", columns=["step"],
                                     rows=[[s] for s in r.next_steps]))
    return sections


FAILOVER = View(("check", "ok", "value", "detail", "member", "region", "role", "status", "host", "lag", "field",
                 "warning", "step"), _failover_tables)


# -- status --------------------------------------------------------------------------------------------------


def _status_tables(report: Any) -> list[TableSection]:
    """One table per component, the worst component first and the worst checks first within it."""
    from doops.ops.status.model import COMPONENTS, Status, worst

    by_comp: dict[str, list[Any]] = {}
    for c in report.checks:
        by_comp.setdefault(c.component, []).append(c)
    order = sorted(by_comp, key=lambda k: (-worst([c.status for c in by_comp[k]]).rank, COMPONENTS.index(k)
                                            if k in COMPONENTS else 99))
    sections = []
    for comp in order:
        rows = sorted(by_comp[comp], key=lambda c: (-c.status.rank, c.resource, c.check))
        status = worst([c.status for c in rows])
        if all(c.status is Status.SKIPPED for c in rows):
            status = Status.SKIPPED
        sections.append(TableSection(
            title=f"{comp}: {status.value}",
            columns=["status", "resource", "check", "summary", "ms"],
            rows=[[c.status.value, c.resource, c.check, c.summary, round(c.duration_ms)] for c in rows],
            styles=STATUS_STYLES,
        ))
    sections.append(TableSection(
        title="", columns=["overall", "checks", "api_requests", "duration_ms"],
        rows=[[report.overall.value, len(report.checks), report.api_requests, round(report.duration_ms)]],
        styles=STATUS_STYLES,
    ))
    return sections


STATUS = View(("status", "resource", "check", "summary", "ms", "overall", "checks", "api_requests", "duration_ms"),
              _status_tables)


# -- auth status ---------------------------------------------------------------------------------------------


def _auth_tables(a: Any) -> list[TableSection]:
    rows: list[list[Any]] = [
        ["source", a.source],
        ["why", a.reason or "-"],
        ["context", a.context or "-"],
        ["config", a.config_path or "-"],
        ["api", a.api_url],
        ["account", a.account.email],
        ["status", a.account.status],
        ["team", a.account.team or "-"],
    ]
    rows += [["warning", w] for w in a.warnings]
    return [TableSection(columns=["field", "value"], rows=rows)]


AUTH = View(("field", "value"), _auth_tables)


# -- audit ---------------------------------------------------------------------------------------------------


def _audit_tables(log: Any) -> list[TableSection]:
    columns = ["time", "action", "outcome", "target", "api_host", "sandbox", "account", "user"]
    return [TableSection(
        title=f"audit journal {log.path}" + (f" ({log.unreadable_lines} unreadable lines skipped)"
                                            if log.unreadable_lines else ""),
        columns=columns,
        rows=[[stamp(e.time), e.action, e.outcome, e.target, e.api_host, e.sandbox, e.account, e.user]
              for e in log.entries],
        styles={"refused": "yellow", "failed": "bold red", "promoted": "green", "verified": "green"})]


AUDIT = View(("time", "action", "outcome", "target", "api_host", "sandbox", "account", "user"), _audit_tables)


# -- sandbox status ------------------------------------------------------------------------------------------


def _fault_detail(f: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("kind", "id") and v not in (None, ""))


def _sandbox_tables(st: Any) -> list[TableSection]:
    rows = [[c.name, c.kind, c.region or "-", c.pid, c.port, "ok" if c.healthy else "DOWN"] for c in st.components]
    sections = [TableSection(columns=["name", "kind", "region", "pid", "port", "health"], rows=rows,
                             title=f"sandbox {st.dir}: {'running' if st.running else 'not running'}",
                             styles={"ok": "green", "DOWN": "bold red"})]
    if st.faults:
        sections.append(TableSection(columns=["fault", "detail"], title="active faults",
                                     rows=[[f.get("kind"), _fault_detail(f)] for f in st.faults]))
    return sections


SANDBOX_STATUS = View(("name", "kind", "region", "pid", "port", "health", "fault", "detail"), _sandbox_tables)


# -- db pitr / db backups ------------------------------------------------------------------------------------


def both_zones(t: datetime | None) -> str | None:
    """A time in UTC and in this machine's local zone: the SRE reads the second, the API gets the first."""
    if t is None:
        return None
    local = t.astimezone()
    return f"{stamp(t)} (local {local:%Y-%m-%d %H:%M:%S %Z})"


def _pitr_tables(r: Any) -> list[TableSection]:
    sections = []
    if r.prechecks:
        sections.append(TableSection(
            title=f"pre-checks: restore {r.source}", columns=["check", "ok", "value", "detail"],
            rows=[[p.name, _precheck_mark(p), p.value, p.detail] for p in r.prechecks],
            styles={"ok": "green", "FAIL": "bold red", "no (info)": "yellow"}))
    if r.plan is not None:
        p = r.plan
        cost = f"{p.monthly_usd:.2f} USD a month while it runs" if p.monthly_usd is not None else "unknown"
        sections.append(TableSection(title="plan", columns=["field", "value"], rows=[
            ["source", p.source], ["point in time", both_zones(p.point_in_time)], ["new cluster", p.name],
            ["size", f"{p.size} x{p.nodes}"], ["region", p.region], ["engine", f"{p.engine} {p.version}"],
            ["cost", cost]]))
    rows: list[list[Any]] = [["outcome", r.outcome.value]]
    if not r.dry_run:
        t = r.timings
        rows += [["requested", stamp(t.requested)], ["online", stamp(t.online)], ["verified", stamp(t.verified)],
                 ["restore time", f"{r.restore_seconds:.1f}s" if r.restore_seconds is not None else "unknown"],
                 ["RTO target", f"{r.rto_target_seconds:.0f}s"],
                 ["restore point", stamp(r.restore_point)],
                 ["RPO", f"{r.rpo_seconds:.1f}s" if r.rpo_seconds is not None else "unknown"],
                 ["RPO target", f"{r.rpo_target_seconds:.0f}s"],
                 ["met", "-" if r.met is None else ("yes" if r.met else "NO")]]
        if r.new_cluster is not None:
            rows.append(["new cluster", f"{r.new_cluster.name} {r.new_cluster.host}:{r.new_cluster.port}"])
        if r.connection:
            rows.append(["connection", r.connection])
        rows.append(["cleaned up", "yes" if r.cleaned_up else "no"])
    sections.append(TableSection(title="result", columns=["field", "value"], rows=rows,
                                 styles={"NO": "bold red", "yes": "green"}))
    if r.verification:
        sections.append(TableSection(title="verification", columns=["check", "ok", "value"],
                                     rows=[[v.sql, "ok" if v.ok else "FAIL", v.result] for v in r.verification],
                                     styles={"ok": "green", "FAIL": "bold red"}))
    if r.next_steps:
        sections.append(TableSection(title="next steps", columns=["step"], rows=[[s] for s in r.next_steps]))
    return sections


PITR = View(("check", "ok", "value", "detail", "field", "step"), _pitr_tables)


def _backups_tables(b: Any) -> list[TableSection]:
    w = b.window
    return [
        TableSection(title=f"restore window of {b.cluster} (backups kept {b.retention_days} days)",
                     columns=["field", "value"],
                     rows=[["oldest point", both_zones(w.oldest) or "none: no backup yet"],
                           ["latest point", both_zones(w.latest)], ["backups", len(w.backups)],
                           ["cluster created", stamp(b.created_at)]]),
        TableSection(title="backups", columns=["backup"], rows=[[stamp(t)] for t in w.backups]),
    ]


BACKUPS = View(("field", "value", "backup"), _backups_tables)
