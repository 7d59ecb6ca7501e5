"""`doops failover app --region R`: repoint the record that fronts an app at its standby in region R, verify
it at every authoritative name server, reach the standby through the new name, measure both RTOs.

Which app and record: ``--app`` (default: the app of the one ``dns.failover_records`` entry), ``--record``
(default: that app's failover record). The standby: the app named ``<app>-<region>`` (``learnhub-api-ams3``),
else the one app whose name starts with ``<app>-`` and whose App Platform region (slug ``ams`` or one of its
data centers, ``ams3``) is R. When the app itself runs in R, the record goes back to it (failing back).

One write: ``PUT /v2/domains/{domain}/records/{id}`` with the standby's default ingress host (with the final
dot DigitalOcean requires). A record already pointing there is only verified (safe re-run, no PUT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doops import journal
from doops.clients import dns
from doops.clients.models import AppEndpoint, DomainRecord
from doops.config import DnsRecordConfig
from doops.errors import ApiError, DoopsError, UsageError
from doops.ops.audit import Identity
from doops.ops.dns_check import ask_all, health_path, health_url, host_of, record_fqdn, resolves
from doops.ops.seam import Cancel, Emitter, EventSink, Level, Outcome, ignore, wait_until
from doops.platform import Platform
from doops.serialize import to_data

OPERATION = "failover app"


@dataclass
class AppFailoverOptions:
    region: str
    app: str | None = None
    record: str | None = None  # fully qualified (api.learnhub.example) or relative to its domain (api)
    timeout_seconds: float = 300.0
    dry_run: bool = False


@dataclass
class Precheck:
    name: str
    ok: bool
    detail: str
    blocking: bool = True

    @property
    def refuses(self) -> bool:
        return self.blocking and not self.ok


@dataclass
class RecordChange:
    domain: str
    name: str  # fully qualified, no final dot
    type: str
    ttl: int | None = None
    old: str | None = None
    new: str | None = None
    id: int | None = None


@dataclass
class NameServer:
    server: str
    answer: list[str] | None = None
    ttl: int | None = None
    changed_at: datetime | None = None
    error: str | None = None


@dataclass
class AppTimings:
    requested: datetime | None = None
    dns_switched: datetime | None = None
    standby_verified: datetime | None = None


@dataclass
class AppFailoverResult:
    app: str
    standby: str
    region: str
    record: RecordChange
    dns_rto_target_seconds: float
    compute_rto_target_seconds: float
    dry_run: bool = False
    outcome: Outcome = Outcome.OK
    message: str = ""
    hint: str | None = None
    already_pointing: bool = False
    prechecks: list[Precheck] = field(default_factory=list)
    nameservers: list[NameServer] = field(default_factory=list)
    timings: AppTimings = field(default_factory=AppTimings)
    standby_url: str | None = None
    dns_switched_seconds: float | None = None
    clients_switched_by_seconds: float | None = None
    met: bool | None = None
    warnings: list[str] = field(default_factory=list)
    audit_file: str = ""

    def to_data(self) -> dict[str, Any]:
        data = {f: to_data(getattr(self, f)) for f in (
            "app", "standby", "region", "record", "nameservers", "timings", "dns_switched_seconds",
            "dns_rto_target_seconds", "clients_switched_by_seconds", "compute_rto_target_seconds", "met",
            "warnings")}
        data["outcome"] = self.outcome.value
        data.update({f: to_data(getattr(self, f)) for f in (
            "message", "dry_run", "already_pointing", "prechecks", "standby_url")})
        return data

    def end(self, outcome: Outcome, message: str, hint: str | None = None) -> AppFailoverResult:
        self.outcome, self.message, self.hint = outcome, message, hint
        return self


# -- choosing what to act on (bad input: UsageError, nothing sent but reads) ----------------------------------


def pick_record(platform: Platform, opts: AppFailoverOptions) -> DnsRecordConfig:
    records = platform.config.dns.failover_records
    listing = ", ".join(f"{record_fqdn(r).rstrip('.')} (app {r.app or '?'})" for r in records) or "none"
    if opts.record:
        wanted = dns.fqdn(opts.record)
        match = [r for r in records if record_fqdn(r) == wanted
                 or dns.fqdn(f"{opts.record.rstrip('.')}.{r.domain}") == record_fqdn(r)]
        if not match:
            raise UsageError(f"record {opts.record!r} is not one of the config's dns.failover_records",
                             hint=f"failover records: {listing}")
        if opts.app and match[0].app and match[0].app != opts.app:
            raise UsageError(f"record {opts.record} fronts app {match[0].app}, not {opts.app}",
                             hint=f"failover records: {listing}")
        return match[0]
    match = [r for r in records if r.app == opts.app] if opts.app else list(records)
    if not match:
        raise UsageError("no failover record" + (f" for app {opts.app}" if opts.app else "") + " in the config",
                         hint="add it under dns.failover_records ({domain, name, type, app}); "
                              f"failover records: {listing}")
    if len(match) > 1:
        raise UsageError(f"{len(match)} failover records" + (f" for app {opts.app}" if opts.app else "")
                         + ": name one", hint=f"pass --record or --app: {listing}")
    return match[0]


def find_standby(apps: list[AppEndpoint], primary: AppEndpoint, region: str) -> AppEndpoint:
    """``<app>-<region>``, else the one ``<app>-*`` app in the region (slug or data center); the app itself
    when it runs in the region (failing back)."""
    if primary.in_region(region):
        return primary
    prefix = primary.name + "-"
    family = [a for a in apps if a.name.startswith(prefix) and a.id != primary.id]
    exact = [a for a in family if a.name == f"{primary.name}-{region}"]
    if exact:
        return exact[0]
    here = [a for a in family if a.in_region(region)]
    if len(here) == 1:
        return here[0]
    if len(here) > 1:
        raise UsageError(f"{len(here)} standbys of {primary.name} in {region}: "
                         + ", ".join(a.name for a in here),
                         hint=f"name the standby {primary.name}-{region}, or keep one per region")
    regions = sorted({dc for a in family for dc in (a.data_centers or [a.region])})
    where = ", ".join(f"{a.name} ({', '.join(a.data_centers or [a.region])})" for a in family) or "none"
    raise UsageError(f"no standby of {primary.name} in region {region}",
                     hint=f"regions with one: {', '.join(regions) or 'none'} (standbys: {where})")


# -- the operation -------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, platform: Platform, opts: AppFailoverOptions, emit: Emitter, cancel: Cancel,
                 lookup: dns.Lookup) -> None:
        self.platform, self.opts, self.emit, self.cancel, self.lookup = platform, opts, emit, cancel, lookup
        self.clock = platform.clock
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = Identity.of(self.platform)
        return self._identity

    def audit(self, result: AppFailoverResult) -> AppFailoverResult:
        result.audit_file = str(journal.audit(OPERATION, result.to_data(), platform=self.identity))
        return result


def failover_app(platform: Platform, opts: AppFailoverOptions, *, confirm: Callable[[str], bool],
                 events: EventSink = ignore, cancel: Cancel | None = None,
                 lookup: dns.Lookup | None = None) -> AppFailoverResult:
    """Check, plan, confirm, PUT the record, verify at every name server, reach the standby, measure.
    Bad input raises UsageError before any write; every other ending is the result's ``outcome``."""
    if not opts.region.strip():
        raise UsageError("empty --region", hint="pass a region with a standby, e.g. --region ams3")
    run = _Run(platform, opts, Emitter(OPERATION, events, platform.clock), cancel or Cancel(), lookup or dns.query)
    rec_cfg = pick_record(platform, opts)
    app_name = opts.app or rec_cfg.app
    if not app_name:
        raise UsageError(f"failover record {record_fqdn(rec_cfg).rstrip('.')} names no app",
                         hint="set its app: in dns.failover_records, or pass --app")
    apps = platform.do.list_app_endpoints()
    primary = next((a for a in apps if a.name == app_name or a.id == app_name), None)
    if primary is None:
        raise UsageError(f"app {app_name!r} not found", hint="apps: " + (", ".join(a.name for a in apps) or "none"))
    standby = find_standby(apps, primary, opts.region)
    if not standby.ingress_host:
        raise UsageError(f"standby {standby.name} has no default ingress host yet",
                         hint="wait for its first deployment to be ACTIVE")
    objectives = platform.config.objectives
    fq = record_fqdn(rec_cfg).rstrip(".")
    result = AppFailoverResult(primary.name, standby.name, opts.region,
                               RecordChange(rec_cfg.domain, fq, rec_cfg.type.upper(),
                                            new=standby.ingress_host + "."),
                               float(objectives.dns_rto), float(objectives.compute_rto), dry_run=opts.dry_run)
    run.emit("resolve", f"record {fq} {rec_cfg.type}, app {primary.name} ({primary.region}), "
                        f"standby {standby.name} ({', '.join(standby.data_centers or [standby.region])})")
    try:
        with journal.exclusive(f"failover-app-{run.identity.key(fq)}"):
            return _locked(run, rec_cfg, standby, apps, result, confirm)
    except journal.LockHeld as held:
        result.prechecks = [Precheck("no other failover", False, f"a doops failover of {fq} is running "
                                                                  f"({held.holder})")]
        return run.audit(result.end(Outcome.REFUSED, f"another doops failover of {fq} is running ({held.holder})",
                                    "wait for it; the lock ends with its process"))


def _locked(run: _Run, rec_cfg: DnsRecordConfig, standby: AppEndpoint, apps: list[AppEndpoint],
            result: AppFailoverResult, confirm: Callable[[str], bool]) -> AppFailoverResult:
    platform, rc = run.platform, result.record
    found = platform.do.list_domain_records(rec_cfg.domain, name=rc.name, rtype=rc.type)
    record: DomainRecord | None = found[0] if found else None
    if record is not None:
        rc.id, rc.ttl, rc.old = record.id, record.ttl, record.data
    result.already_pointing = record is not None and host_of(record.data) == host_of(rc.new or "")
    result.prechecks = _prechecks(run, standby, record, result)
    for p in result.prechecks:
        run.emit("precheck", f"{p.name}: {p.detail}", Level.OK if p.ok else (Level.FAIL if p.blocking else Level.WARN))
    failed = [p for p in result.prechecks if p.refuses]
    if failed:
        names = "; ".join(f"{p.name}: {p.detail}" for p in failed)
        return run.audit(result.end(Outcome.REFUSED, f"failover of {rc.name} to {standby.name} refused, nothing "
                                                     f"sent: {names}", "fix the cause, then run again"))
    assert record is not None
    if result.already_pointing:
        run.emit("resolve", f"{rc.name} already points at {standby.name} ({rc.new}): verifying only, no write")
        if run.opts.dry_run:
            return run.audit(result.end(Outcome.DRY_RUN, "dry run: the record already points at the standby; "
                                                         "nothing was sent"))
        return _verify(run, standby, apps, result, None)
    plan = f"{rc.name} {rc.type} {rc.old} -> {rc.new} (TTL {rc.ttl}s)"
    if run.opts.dry_run:
        run.emit("plan", f"dry run: would PUT {plan}; nothing was sent", Level.DONE)
        return run.audit(result.end(Outcome.DRY_RUN, f"dry run: would repoint {plan}; nothing was sent"))
    question = (f"Repoint {rc.name} from {result.app} ({rc.old}) to the standby {standby.name} in {result.region} "
                f"({rc.new})?")
    if not confirm(question):
        return run.audit(result.end(Outcome.DECLINED, "aborted at the confirmation; nothing was changed"))
    if run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, "interrupted before the PUT; nothing was changed"))
    requested = run.clock.now()
    run.emit("update", f"PUT {plan}")
    body = {"type": record.type, "name": record.name, "data": rc.new, "ttl": record.ttl}
    try:
        platform.do.update_domain_record(rec_cfg.domain, record.id, body)
    except ApiError as exc:
        if exc.status in (401, 403, 422):
            why = ("the token lacks write access to domains" if exc.status != 422 else exc.api_message)
            result.end(Outcome.REFUSED, f"DigitalOcean refused the update of {rc.name} ({exc.status}): {why}; "
                                        "nothing was changed",
                       "use a token with write scope (domain:update)" if exc.status != 422 else None)
            run.emit("update", result.message, Level.FAIL)
            return run.audit(result)
        raise
    result.timings.requested = requested
    run.emit("update", f"record updated (200) at {_stamp(requested)}", Level.OK)
    return _verify(run, standby, apps, result, requested)


def _prechecks(run: _Run, standby: AppEndpoint, record: DomainRecord | None,
               result: AppFailoverResult) -> list[Precheck]:
    checks: list[Precheck] = []
    platform, rc = run.platform, result.record
    phase = standby.active_phase
    checks.append(Precheck("standby active", phase == "ACTIVE",
                           f"{standby.name}'s active deployment is {phase or 'missing'}"))
    path = health_path(platform, standby)
    url = health_url(standby.ingress_host or "", standby, path)
    probe = platform.web.get(url)
    checks.append(Precheck("standby healthy", probe.status == 200,
                           f"{url} answered {probe.status or probe.error}"))
    if record is None:
        checks.append(Precheck("record exists", False, f"no {rc.type} record {rc.name} in the API"))
        return checks
    checks.append(Precheck("record exists", True, f"{rc.name} {record.type} {record.data} (id {record.id})"))
    objective = result.dns_rto_target_seconds
    ttl_ok = record.ttl <= objective
    checks.append(Precheck("ttl within DNS objective", ttl_ok,
                           f"TTL {record.ttl}s" + ("" if ttl_ok else f" over {objective:g}s: clients cache the old "
                                                                   f"answer for up to {record.ttl}s"),
                           blocking=False))
    if not ttl_ok:
        result.warnings.append(f"TTL {record.ttl}s is over the DNS objective {objective:g}s: clients keep the old "
                               f"answer for up to {record.ttl}s after the change")
    answers = ask_all(platform, run.lookup, rc.name, rc.type)
    down = [a for a in answers if a.answer is None]
    checks.append(Precheck("name servers answer", not down,
                           "; ".join(f"{a.server}: {a.error}" for a in down) if down else
                           f"{len(answers)} authoritative server(s) answer {rc.name}", blocking=False))
    return checks


def _verify(run: _Run, standby: AppEndpoint, apps: list[AppEndpoint], result: AppFailoverResult,
            requested: datetime | None) -> AppFailoverResult:
    """Ask every name server until each answers the new value (its first such answer timed), then reach the
    standby through the new name's target, within one ``--timeout``."""
    platform, clock, rc = run.platform, run.clock, result.record
    want = dns.fqdn(rc.new or "")
    servers = {dns.server_label(h, p): NameServer(dns.server_label(h, p)) for h, p in platform.config.dns.addresses()}
    result.nameservers = list(servers.values())
    started = clock.monotonic()

    def all_changed() -> bool:
        for a in ask_all(platform, run.lookup, rc.name, rc.type):
            ns = servers[a.server]
            if ns.changed_at is not None:
                continue
            if a.answer is None:
                ns.error = a.error
                continue
            ns.answer, ns.ttl, ns.error = a.answer.values(rc.type, rc.name), a.answer.ttl(rc.type), None
            if not a.answer.authoritative:
                ns.error = f"not authoritative (AA unset, {a.answer.rcode})"
            elif ns.answer == [want]:
                ns.changed_at = clock.now()
                run.emit("verify", f"{ns.server} answers {want} (TTL {ns.ttl}s)", Level.OK)
        return all(ns.changed_at is not None for ns in servers.values())

    waited = wait_until(all_changed, timeout=run.opts.timeout_seconds, clock=clock, cancel=run.cancel)
    if waited.cancelled or run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, f"interrupted while verifying {rc.name}"
                                    + (" (the record was updated)" if requested else ""),
                                    "run the same command again: it only verifies"))
    if not waited.done:
        lagging = ", ".join(f"{n.server} ({', '.join(n.answer or []) or n.error or 'no answer'})"
                            for n in servers.values() if n.changed_at is None)
        return run.audit(result.end(Outcome.VERIFICATION_FAILED,
                                    f"{rc.name} updated, but not every name server answers {want} within "
                                    f"{run.opts.timeout_seconds:g}s: {lagging}",
                                    "run the same command again to keep verifying; see `doops dns check`"))
    switched = max(n.changed_at for n in servers.values() if n.changed_at is not None)
    result.timings.dns_switched = switched
    if requested is not None:
        result.dns_switched_seconds = round((switched - requested).total_seconds(), 3)
        result.clients_switched_by_seconds = round(result.dns_switched_seconds + float(rc.ttl or 0), 3)
    # Through the new name: the target resolves at the same servers, and the app behind it answers.
    target = want.rstrip(".")
    app = next((a for a in apps if a.ingress_host == target), standby)
    url = health_url(target, app, health_path(platform, app))
    result.standby_url = url
    errors: list[str] = []

    def reachable() -> bool:
        addrs, how = resolves(platform, run.lookup, target)
        if not addrs:
            errors.append(f"{target}: {how}")
            return False
        probe = platform.web.get(url)
        if probe.status == 200:
            return True
        errors.append(f"{url} answered {probe.status or probe.error}")
        return False

    left = max(run.opts.timeout_seconds - (clock.monotonic() - started), 0.0)
    reached = wait_until(reachable, timeout=left, clock=clock, cancel=run.cancel, errors=(DoopsError,))
    if reached.cancelled or run.cancel.cancelled:
        return run.audit(result.end(Outcome.INTERRUPTED, f"interrupted while reaching {standby.name} through "
                                                         f"{rc.name}", "run the same command again: it only verifies"))
    if not reached.done:
        return run.audit(result.end(Outcome.VERIFICATION_FAILED,
                                    f"every name server answers {target}, but {standby.name} did not answer through "
                                    f"it within the timeout: {errors[-1] if errors else reached.last_error}",
                                    "see `doops status apps` and `doops dns check`"))
    result.timings.standby_verified = clock.now()
    run.emit("verify", f"{standby.name} answers 200 through {rc.name} ({url})", Level.OK)
    for w in result.warnings:
        run.emit("verify", w, Level.WARN)
    if result.dns_switched_seconds is None:
        return run.audit(result.end(Outcome.OK, f"{rc.name} already points at {standby.name}, answered by every "
                                                "name server; verified, nothing sent"))
    dns_met = result.dns_switched_seconds <= result.dns_rto_target_seconds
    clients_met = (result.clients_switched_by_seconds or 0.0) <= result.compute_rto_target_seconds
    result.met = dns_met and clients_met
    figures = (f"DNS switched in {result.dns_switched_seconds:.2f}s (target {result.dns_rto_target_seconds:g}s), "
               f"clients by {result.clients_switched_by_seconds:.0f}s (target {result.compute_rto_target_seconds:g}s)")
    if not result.met:
        return run.audit(result.end(Outcome.OBJECTIVE_MISSED, f"{rc.name} now points at {standby.name}, but "
                                                              f"{figures}", "lower the record's TTL; see timings"))
    result.end(Outcome.OK, f"{rc.name} now points at {standby.name}; {figures}")
    run.emit("done", result.message, Level.DONE, dns_switched_seconds=result.dns_switched_seconds)
    return run.audit(result)


def _stamp(t: datetime | None) -> str | None:
    from doops.ops.failover import format_stamp

    return format_stamp(t)
