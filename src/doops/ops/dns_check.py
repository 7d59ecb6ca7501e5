"""`doops dns check`: the records that front the apps, judged where clients get them.

For every ``dns.failover_records`` entry of the config (the records `doops failover app` repoints):

- ``exists``: the API holds the record; where it points (the configured app, one of its standbys, or
  neither);
- ``ttl``: at most ``objectives.dns_rto`` (clients cache the old answer for TTL seconds after a change);
- ``authoritative``: every configured name server answers it, authoritatively (AA), with the API's value;
- ``target``: the record's target resolves (at the same servers; a target outside their zones through the
  system resolver) and the app behind it answers its health path with 200;

and for every domain of those records, ``zone``: SOA and NS "sane" (see ``DnsChecker.zone``).

Each check is a ``Verdict`` (status, summary, details), the same the `doops status` engine fans out, so the
``dns`` component of `doops status` (ops/status/checks_dns.py) runs exactly these functions.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from doops.clients import dns
from doops.clients.models import AppEndpoint, DomainRecord
from doops.config import DnsRecordConfig
from doops.errors import DoopsError
from doops.ops.status.model import CheckResult, Status, worst
from doops.platform import Platform

Verdict = tuple[Status, str, dict[str, Any]]
OK, WARN, CRIT, UNKNOWN, SKIPPED = Status.OK, Status.WARN, Status.CRIT, Status.UNKNOWN, Status.SKIPPED
COMPONENT = "dns"


def record_fqdn(rec: DnsRecordConfig) -> str:
    """``api`` in ``learnhub.example`` -> ``api.learnhub.example.`` (``@`` is the apex)."""
    domain = rec.domain.rstrip(".")
    if rec.name in ("@", ""):
        return dns.fqdn(domain)
    return dns.fqdn(rec.name if rec.name.rstrip(".").endswith("." + domain) else f"{rec.name}.{domain}")


def host_of(data: str) -> str:
    return dns.fqdn(data).rstrip(".")


def is_loopback_url(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def health_path(platform: Platform, app: AppEndpoint | None, name: str | None = None) -> str:
    """The config's ``apps[].health_path`` for the app when it names one, else the app spec's health check
    through its ingress route (``/api`` + ``/health``), else the config's default health path."""
    wanted = name or (app.name if app else None)
    for a in platform.config.apps:
        if a.name == wanted:
            return a.health_path
    if app is not None and app.health_paths and app.health_paths != ["/"]:
        return app.health_paths[0]
    return platform.config.thresholds.default_health_path


def health_url(target_host: str, app: AppEndpoint | None, path: str) -> str:
    """Where a client following the record ends up. In production: ``https://<target>/<path>``. In the
    sandbox (the app's live URL is a loopback address: its ingress host resolves to 127.0.0.1 but the live
    server listens on its own port) the app's ``live_url`` with the same path."""
    path = path if path.startswith("/") else "/" + path
    if app is not None and app.live_url and is_loopback_url(app.live_url):
        return app.live_url.rstrip("/") + path
    return f"https://{target_host}{path}"


@dataclass
class ServerAnswer:
    server: str
    answer: dns.Answer | None
    error: str | None = None


def ask_all(platform: Platform, lookup: dns.Lookup, qname: str, qtype: str) -> list[ServerAnswer]:
    """The same question to every configured name server, one answer (or error) each."""
    out: list[ServerAnswer] = []
    for host, port in platform.config.dns.addresses():
        try:
            out.append(ServerAnswer(dns.server_label(host, port), lookup(host, port, dns.fqdn(qname), qtype)))
        except DoopsError as exc:
            out.append(ServerAnswer(dns.server_label(host, port), None, exc.message))
    return out


def resolves(platform: Platform, lookup: dns.Lookup, host: str) -> tuple[list[str], str]:
    """Addresses of ``host``: first at the configured servers (authoritative for the zone, in the sandbox also
    for ``ondigitalocean.app``); when none of them is authoritative for it (REFUSED, no AA), through the system
    resolver. Returns (addresses, how) where how names the source or why nothing was found."""
    answers = ask_all(platform, lookup, host, "A")
    for a in answers:
        if a.answer is not None and a.answer.authoritative:
            if a.answer.rcode == "NXDOMAIN":
                return [], f"NXDOMAIN at {a.server}"
            addrs = a.answer.values("A")
            return addrs, (f"A {', '.join(addrs)} at {a.server}" if addrs else f"no A record at {a.server}")
    try:
        addrs = dns.system_addresses(host.rstrip("."))
    except DoopsError as exc:
        return [], exc.message
    return addrs, f"{', '.join(addrs)} (system resolver)"


class DnsChecker:
    """The checks, with what they share (the apps and each record from the API) fetched once, thread-safe:
    `doops status` runs the checks in parallel."""

    def __init__(self, platform: Platform, lookup: dns.Lookup | None = None) -> None:
        self.platform = platform
        self.lookup: dns.Lookup = lookup or dns.query
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}

    def _shared(self, key: str, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = fn()
            return self._cache[key]

    def apps(self) -> list[AppEndpoint]:
        return list(self._shared("apps", self.platform.do.list_app_endpoints))

    def api_record(self, rec: DnsRecordConfig) -> DomainRecord | None:
        name = record_fqdn(rec)

        def fetch() -> DomainRecord | None:
            found = self.platform.do.list_domain_records(rec.domain, name=name.rstrip("."), rtype=rec.type)
            return found[0] if found else None

        found: DomainRecord | None = self._shared(f"record:{name}:{rec.type}", fetch)
        return found

    # -- per record ------------------------------------------------------------------------------------------

    def exists(self, rec: DnsRecordConfig) -> Verdict:
        r = self.api_record(rec)
        name = record_fqdn(rec).rstrip(".")
        if r is None:
            return CRIT, f"no {rec.type} record {name} in the API", {}
        details: dict[str, Any] = {"id": r.id, "data": r.data, "ttl": r.ttl}
        if rec.type.upper() != "CNAME" or not rec.app:
            return OK, f"{rec.type} {r.data}", details
        target = host_of(r.data)
        try:
            by_host = {a.ingress_host: a for a in self.apps() if a.ingress_host}
        except DoopsError as exc:  # which app it points at is a note here; `target` follows it for real
            details["apps"] = exc.message
            return OK, f"CNAME {r.data} (apps not listed: {exc.message})", details
        app = by_host.get(target)
        details["points_at_app"] = app.name if app else None
        if app is not None and app.name == rec.app:
            return OK, f"CNAME {r.data} (app {rec.app})", details
        if app is not None and app.name.startswith(rec.app + "-"):
            return WARN, f"CNAME {r.data}: failed over to the standby {app.name}, not {rec.app}", details
        if app is not None:
            return WARN, f"CNAME {r.data} is app {app.name}'s, not {rec.app}'s", details
        return WARN, f"CNAME {r.data} is no app's default ingress (expected {rec.app}'s)", details

    def ttl(self, rec: DnsRecordConfig) -> Verdict:
        r = self.api_record(rec)
        objective = float(self.platform.config.objectives.dns_rto)
        if r is None:
            return UNKNOWN, "no record to judge", {}
        details = {"ttl": r.ttl, "dns_rto_seconds": objective}
        if r.ttl > objective:
            return WARN, (f"TTL {r.ttl}s over the DNS objective {objective:g}s: after a change, clients keep the "
                          f"old answer for up to {r.ttl}s; lower it to {objective:g}s or less"), details
        return OK, f"TTL {r.ttl}s within the DNS objective {objective:g}s", details

    def authoritative(self, rec: DnsRecordConfig) -> Verdict:
        r = self.api_record(rec)
        name = record_fqdn(rec)
        answers = ask_all(self.platform, self.lookup, name, rec.type)
        expected = dns.fqdn(r.data) if r is not None and rec.type.upper() in ("CNAME", "NS", "MX") else (
            r.data if r is not None else None)
        servers: list[dict[str, Any]] = []
        bad: list[str] = []
        down: list[str] = []
        values: set[tuple[str, ...]] = set()
        for a in answers:
            if a.answer is None:
                down.append(a.server)
                servers.append({"server": a.server, "answer": None, "ttl": None, "error": a.error})
                continue
            got = a.answer.values(rec.type, name)
            values.add(tuple(got))
            servers.append({"server": a.server, "answer": got, "ttl": a.answer.ttl(rec.type),
                            "rcode": a.answer.rcode, "aa": a.answer.authoritative})
            if not a.answer.authoritative:
                bad.append(f"{a.server} not authoritative (AA unset, {a.answer.rcode})")
            elif expected is not None and got != [expected]:
                bad.append(f"{a.server} answers {', '.join(got) or a.answer.rcode}")
        details = {"expected": expected, "servers": servers}
        if down and len(down) == len(answers):
            return CRIT, f"no name server answered: {answers[0].error}", details
        if r is not None and not any(s.get("answer") for s in servers):
            return CRIT, f"no name server answers {name} {rec.type}: " + "; ".join(bad), details
        problems = bad + [f"{s} did not answer" for s in down]
        if problems:
            return WARN, "; ".join(problems) + f" (API: {expected})", details
        return OK, f"{len(answers)} name server(s) answer {', '.join(next(iter(values)))} authoritatively", details

    def target(self, rec: DnsRecordConfig) -> Verdict:
        r = self.api_record(rec)
        if r is None:
            return UNKNOWN, "no record to follow", {}
        if rec.type.upper() != "CNAME":
            return OK, f"{rec.type} record: no target to follow", {}
        target = host_of(r.data)
        addrs, how = resolves(self.platform, self.lookup, target)
        details: dict[str, Any] = {"target": target, "addresses": addrs, "resolved": how}
        if not addrs:
            return CRIT, f"target {target} does not resolve: {how} (a dangling record)", details
        app = next((a for a in self.apps() if a.ingress_host == target), None)
        url = health_url(target, app, health_path(self.platform, app, None if app else rec.app))
        probe = self.platform.web.get(url)
        details.update({"url": url, "http_status": probe.status, "app": app.name if app else None})
        if probe.status != 200:
            return CRIT, f"{target} resolves ({how}) but {url} answered {probe.status or probe.error}", details
        return OK, f"{target} resolves ({how}); {url} answered 200", details

    # -- per zone --------------------------------------------------------------------------------------------

    def zone(self, domain: str) -> Verdict:
        """"Sane": every server answers the apex SOA authoritatively, with a serial above 0, the same serial at
        every server (else a change is still spreading); the apex NS set has at least two names (RFC 1034) and
        contains the SOA's primary name server; configured name servers given by name are all in the NS set
        (doops asks the servers the zone is delegated to; addresses, as in the sandbox, are not compared)."""
        apex = dns.fqdn(domain)
        soa = ask_all(self.platform, self.lookup, apex, "SOA")
        ns = ask_all(self.platform, self.lookup, apex, "NS")
        problems: list[str] = []
        serials: dict[str, int] = {}
        mnames: set[str] = set()
        for a in soa:
            if a.answer is None:
                problems.append(f"{a.server}: {a.error}")
                continue
            recs = a.answer.records("SOA", apex)
            if not a.answer.authoritative or not recs:
                problems.append(f"{a.server}: no authoritative SOA ({a.answer.rcode})")
                continue
            fields = recs[0].value.split()
            mnames.add(fields[0])
            serials[a.server] = int(fields[2])
        ns_names: set[str] = set()
        for a in ns:
            if a.answer is not None and a.answer.authoritative:
                ns_names |= set(a.answer.values("NS", apex))
        details: dict[str, Any] = {"serials": serials, "ns": sorted(ns_names), "soa_primary": sorted(mnames)}
        if not serials:
            return CRIT, f"no authoritative SOA for {domain}: " + "; ".join(problems), details
        warn: list[str] = list(problems)
        if any(s <= 0 for s in serials.values()):
            warn.append("SOA serial 0")
        if len(set(serials.values())) > 1:
            warn.append("serials differ between servers (a change still spreading): "
                        + ", ".join(f"{k} {v}" for k, v in serials.items()))
        if len(ns_names) < 2:
            warn.append(f"{len(ns_names)} NS record(s) at the apex (at least 2 expected)")
        if mnames and ns_names and not mnames & ns_names:
            warn.append(f"SOA primary {', '.join(sorted(mnames))} is not among the NS records")
        named = [h for h, _ in self.platform.config.dns.addresses() if not _is_address(h)]
        missing = [h for h in named if dns.fqdn(h) not in ns_names]
        if missing:
            warn.append(f"configured name server(s) {', '.join(missing)} not in the zone's NS records")
        if warn:
            return WARN, "; ".join(warn), details
        serial = next(iter(serials.values()))
        return OK, f"SOA serial {serial} at {len(serials)} server(s); NS {', '.join(sorted(ns_names))}", details

    # -- every check, as (resource, check, function) ---------------------------------------------------------

    def jobs(self) -> list[tuple[str, str, Callable[[], Verdict]]]:
        out: list[tuple[str, str, Callable[[], Verdict]]] = []
        domains: list[str] = []
        for rec in self.platform.config.dns.failover_records:
            name = record_fqdn(rec).rstrip(".")
            out += [(name, "exists", lambda rec=rec: self.exists(rec)),  # type: ignore[misc]
                    (name, "ttl", lambda rec=rec: self.ttl(rec)),  # type: ignore[misc]
                    (name, "authoritative", lambda rec=rec: self.authoritative(rec)),  # type: ignore[misc]
                    (name, "target", lambda rec=rec: self.target(rec))]  # type: ignore[misc]
            if rec.domain.rstrip(".").lower() not in domains:
                domains.append(rec.domain.rstrip(".").lower())
        out += [(d, "zone", lambda d=d: self.zone(d)) for d in domains]  # type: ignore[misc]
        return out


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


NOT_CONFIGURED = "not configured (no dns.failover_records in the config): not checked"


@dataclass
class DnsCheckReport:
    overall: Status
    checks: list[CheckResult]
    nameservers: list[str]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def run_check(check: Callable[[], Verdict], resource: str, name: str) -> CheckResult:
    """One check; an error it raises is its own ``unknown`` (with the reason), never the others'."""
    import time

    started = time.monotonic()
    try:
        status, summary, details = check()
    except DoopsError as exc:
        status, summary, details = UNKNOWN, exc.message, {}
    return CheckResult(COMPONENT, resource, name, status, summary, details,
                       round((time.monotonic() - started) * 1000, 1))


def dns_check(platform: Platform, *, lookup: dns.Lookup | None = None) -> DnsCheckReport:
    """Every check of every failover record and zone; Nagios status in ``overall``."""
    servers = list(platform.config.dns.nameservers)
    if not platform.config.dns.failover_records:
        skipped = CheckResult(COMPONENT, "*", "configured", SKIPPED, NOT_CONFIGURED)
        return DnsCheckReport(Status.OK, [skipped], servers)
    checker = DnsChecker(platform, lookup)
    checks = [run_check(fn, resource, name) for resource, name, fn in checker.jobs()]
    return DnsCheckReport(worst([c.status for c in checks]), checks, servers)
