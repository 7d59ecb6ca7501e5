"""`doops assess`: can the platform meet its objectives as it is deployed, and where is it exposed?

Read-only. ``gather`` reads what the rules need, in parallel and bounded (the status engine's pool and shared
fetches: the cluster and app lists are read once, and the replica lag, connection headroom and replication gap
are the very checks `doops status` runs); the rules (assess_resilience.py, assess_security.py) are pure
functions of what was read. An input that could not be read makes its rules ``info`` "not assessed".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from doops.errors import UsageError
from doops.ops.assess_model import Finding, Findings, Inputs, Rule, Severity
from doops.ops.assess_resilience import RULES as RESILIENCE_RULES
from doops.ops.assess_resilience import ObjectiveRow, objectives_table, resilience_rules
from doops.ops.assess_security import RULES as SECURITY_RULES
from doops.ops.assess_security import security_rules
from doops.platform import Platform

AREAS = ("resilience", "security")
RULES: dict[str, Rule] = {r.id: r for r in [*RESILIENCE_RULES, *SECURITY_RULES]}
DEFAULT_TIMEOUT = 60.0
DRILL_RUNS_READ = 500


@dataclass
class AssessOptions:
    areas: list[str] = field(default_factory=list)  # empty: both
    fail_on: str = "crit"  # warn | crit
    concurrency: int = 8
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class AssessResult:
    areas: list[str]
    generated_at: datetime
    findings: list[Finding]
    objectives: list[ObjectiveRow]
    rules_evaluated: dict[str, int]
    fail_on: str
    api_requests: int = 0
    duration_ms: float = 0.0

    @property
    def worst(self) -> str:
        ranked = max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)
        return ranked.value if ranked is not None else "none"

    @property
    def failed(self) -> bool:
        """A finding at or above ``fail_on``: exit 2."""
        limit = Severity(self.fail_on).rank
        return any(f.severity.rank >= limit for f in self.findings)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(f.severity is s for f in self.findings) for s in Severity}

    def to_data(self) -> dict[str, Any]:
        from doops.serialize import to_data

        return {"areas": self.areas, "generated_at": to_data(self.generated_at), "worst": self.worst,
                "fail_on": self.fail_on, "failed": self.failed, "counts": self.counts(),
                "findings": [f.to_data() for f in self.findings],
                "objectives": [to_data(o) for o in self.objectives],
                "rules_evaluated": dict(self.rules_evaluated),
                "api_requests": self.api_requests, "duration_ms": self.duration_ms}


def validate(opts: AssessOptions) -> list[str]:
    """The areas asked for; every option checked before any request."""
    chosen = list(dict.fromkeys(a.lower() for a in opts.areas))
    unknown = [a for a in chosen if a not in AREAS]
    if unknown:
        raise UsageError(f"unknown area {unknown[0]!r}", hint="doops assess [resilience|security]...")
    if opts.fail_on not in ("warn", "crit"):
        raise UsageError(f"--fail-on must be warn or crit, not {opts.fail_on!r}", hint="--fail-on warn")
    if opts.concurrency < 1:
        raise UsageError("--concurrency must be at least 1", hint="e.g. 8")
    return chosen or list(AREAS)


def assess(platform: Platform, opts: AssessOptions, *, inputs: Inputs | None = None) -> AssessResult:
    """Gather (unless ``inputs`` are given: tests), judge every rule of the chosen areas, lay out the objectives."""
    areas = validate(opts)
    started = time.monotonic()
    before = platform.do_request_count()
    inp = inputs if inputs is not None else gather(platform, areas, opts.concurrency, opts.timeout)
    out = Findings(RULES)
    if "resilience" in areas:
        resilience_rules(inp, out)
    if "security" in areas:
        security_rules(inp, out)
    order = {s: -s.rank for s in Severity}
    findings = sorted(out.items, key=lambda f: (order[f.severity], f.area, f.rule, f.resource))
    return AssessResult(
        areas=areas, generated_at=inp.now, findings=findings,
        objectives=objectives_table(inp) if "resilience" in areas else [],
        rules_evaluated=out.evaluated, fail_on=opts.fail_on,
        api_requests=platform.do_request_count() - before,
        duration_ms=round((time.monotonic() - started) * 1000, 1))


# -- gathering ------------------------------------------------------------------------------------------------


def gather(platform: Platform, areas: list[str], concurrency: int = 8, timeout: float = DEFAULT_TIMEOUT) -> Inputs:
    """Read everything the chosen areas' rules need: each group in its own thread, their per-resource calls in
    the status engine's bounded pool. Returns by ``timeout``: what is not read by then is "not assessed"."""
    from doops.ops.status.engine import Imports, Runner

    resilience, security = "resilience" in areas, "security" in areas
    inp = Inputs(platform.config, platform.clock.now())
    r = Runner(platform, concurrency, Imports())
    groups: list[tuple[str, Callable[[], None]]] = [
        ("databases", lambda: _databases(r, inp, resilience, security)),
        ("apps", lambda: _apps(r, inp, resilience, security)),
        ("spaces", lambda: _spaces(r, inp, resilience, security)),
        ("drills", lambda: _drills(r, inp, security)),
    ]
    if resilience:
        groups += [("dns", lambda: _dns(r, inp)), ("prometheus", lambda: _prometheus(r, inp))]
    if security:
        groups.append(("keys", lambda: inp.attempt("spaces_keys", platform.do.spaces_keys)))
    threads = []
    for name, fn in groups:
        t = threading.Thread(target=_guard(inp, name, fn), name=f"assess-{name}", daemon=True)
        t.start()
        threads.append(t)
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    finished = not any(t.is_alive() for t in threads)
    r.close(wait=finished)
    if not finished:
        inp.fail("*", f"not read within {timeout:g}s")
    return inp


def _guard(inp: Inputs, name: str, fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        inp.attempt(f"group:{name}", fn)

    return run


def _leaves(r: Any, jobs: list[Callable[[], Any]]) -> None:
    """Run leaf reads in the bounded pool and wait for them (a group thread, never a pool thread, waits)."""
    for fut in [r.pool.submit(job) for job in jobs]:
        fut.result()


def _databases(r: Any, inp: Inputs, resilience: bool, security: bool) -> None:
    do = r.app.do
    cfg = r.app.config
    pairs = inp.attempt("clusters_all", lambda: do.database_clusters_posture(cfg.discover_tag))
    if pairs is None:
        inp.fail("clusters", *inp.errors["clusters_all"])
        return
    wanted = [c.name for c in cfg.databases.clusters] + [c.name for c in cfg.databases.caches]
    scope = [(c, p) for c, p in pairs if not wanted or c.name in wanted]
    inp.put("clusters", scope)
    r.shared("db_clusters", lambda: [c for c, _ in pairs])  # status's collectors read the same list, not again
    jobs: list[Callable[[], Any]] = []
    for c, _ in scope:
        if security:
            jobs.append(partial(inp.attempt, f"firewall:{c.id}", partial(do.database_firewall, c.id)))
        if c.engine in ("redis", "valkey"):
            continue
        if resilience or security:
            jobs.append(partial(inp.attempt, f"backups:{c.id}", partial(do.list_backups, c.id)))
        if resilience:
            jobs.append(partial(inp.attempt, f"replicas:{c.id}", partial(do.list_replicas, c.id)))
            jobs.append(partial(inp.attempt, f"pools:{c.id}", partial(do.list_pools, c.id)))
    _leaves(r, jobs)
    if resilience:  # replica lag and connection headroom as the servers say, by status's own checks
        from doops.ops.status.checks_data import collect_databases

        inp.attempt("status:databases", lambda: collect_databases(r))


def _apps(r: Any, inp: Inputs, resilience: bool, security: bool) -> None:
    from doops.ops.status.checks_api import apps_in_scope

    do = r.app.do
    pairs = inp.attempt("apps_all", do.apps_posture)
    if pairs is None:
        inp.fail("apps", *inp.errors["apps_all"])
        inp.fail("tls_targets", *inp.errors["apps_all"])
        return
    r.shared("apps", lambda: [a for a, _ in pairs])
    scoped, _ = apps_in_scope(r)
    ids = {a.id for a in scoped}
    inp.put("apps", [(a, p) for a, p in pairs if a.id in ids])
    jobs: list[Callable[[], Any]] = []
    if resilience:
        jobs.append(lambda: inp.attempt("uptime_checks", do.list_uptime_checks))
        jobs.append(lambda: inp.attempt("alert_policies", do.list_alert_policies))
    if security:
        override = r.app.config.tls.urls  # where TLS is served when not at the live URL (the sandbox)
        targets = [(a.name, override.get(a.name) or a.live_url) for a, _ in inp.get("apps")
                   if override.get(a.name) or a.live_url]
        endpoints = inp.attempt("cdn_endpoints", do.list_cdn_endpoints) or []
        targets += [(f"CDN {e.origin}", f"https://{e.custom_domain}") for e in endpoints if e.custom_domain]
        inp.put("tls_targets", targets)
        for _, url in targets:
            jobs.append(partial(_tls, r, inp, url))
    _leaves(r, jobs)


def _tls(r: Any, inp: Inputs, url: str) -> None:
    from doops.clients import tls
    from doops.clients.http import tls_context_trusting
    from doops.clients.web import WebClient

    timeout = float(r.app.config.thresholds.http_timeout)
    ca_file = r.app.config.tls.ca_file
    context = tls_context_trusting(ca_file)
    probe = inp.attempt(f"tls:{url}", lambda: tls.probe(url, timeout=timeout, context=context))
    if probe is not None and not probe.error:
        web = WebClient(timeout, verify=context) if ca_file else r.app.web
        try:
            head = web.get_headers(url)
        finally:
            if web is not r.app.web:
                web.close()
        if head.status is None:
            inp.fail(f"hsts:{url}", f"{url} did not answer: {head.error}")
        else:
            inp.put(f"hsts:{url}", head.header("strict-transport-security"))


UPLOADS_SAMPLE = 5  # object ACLs read under uploads/: each is one request


def _spaces(r: Any, inp: Inputs, resilience: bool, security: bool) -> None:
    from doops.clients import spaces
    from doops.ops.status.checks_storage import collect_spaces

    cfg = r.app.config.spaces
    if not cfg.buckets:
        reason = "no spaces.buckets in the config"
        for key in ("buckets", "bucket_names"):
            inp.fail(key, reason, "list the buckets under spaces.buckets")
        return
    inp.put("buckets", cfg.buckets)
    names = list(dict.fromkeys([b.name for b in cfg.buckets] + [b.replica for b in cfg.buckets if b.replica]))
    regions = {b.name: b.region for b in cfg.buckets}
    regions.update({b.replica: b.replica_region or b.region for b in cfg.buckets if b.replica})
    inp.put("bucket_names", names)

    def client(bucket: str) -> Any:
        region = regions[str(bucket)]
        return r.shared(f"s3:{region}", lambda: spaces.make_client(cfg, region))

    jobs: list[Callable[[], Any]] = []
    for b in cfg.buckets:
        if resilience:
            jobs.append(partial(_s3_read, inp, f"lifecycle:{b.name}", spaces.lifecycle_prefixes, client, b.name))
            jobs.append(partial(_s3_read, inp, f"versioning:{b.name}", spaces.bucket_versioning, client, b.name))
    if security:
        for name in names:
            jobs.append(partial(_s3_read, inp, f"policy:{name}", spaces.bucket_policy, client, name))
            jobs.append(partial(_s3_read, inp, f"acl:{name}", spaces.bucket_acl_public, client, name))
            jobs.append(partial(_s3_read, inp, f"cors:{name}", spaces.bucket_cors, client, name))
            jobs.append(partial(_s3_read, inp, f"upload_acls:{name}", _upload_acls, client, name))
    _leaves(r, jobs)
    if resilience:  # the replication gap as `doops status spaces` measures it
        inp.attempt("status:spaces", lambda: collect_spaces(r))


def _s3_read(inp: Inputs, key: str, read: Callable[[Any, str], Any], client: Callable[[str], Any],
             bucket: str) -> None:
    inp.attempt(key, lambda: read(client(bucket), bucket))


def _upload_acls(client: Any, bucket: str) -> dict[str, list[str]]:
    """What a sample of objects under uploads/ grants the public (each object's ACL is one request)."""
    from doops.clients import spaces

    return {k: spaces.object_acl_public(client, bucket, k)
            for k in spaces.list_keys(client, bucket, "uploads/", UPLOADS_SAMPLE)}


def _dns(r: Any, inp: Inputs) -> None:
    do = r.app.do
    records = r.app.config.dns.failover_records
    jobs: list[Callable[[], Any]] = []
    for rec in records:
        fqdn = rec.domain if rec.name == "@" else f"{rec.name}.{rec.domain}"
        jobs.append(partial(inp.attempt, f"dns:{rec.domain}:{rec.name}:{rec.type}",
                            partial(do.list_domain_records, rec.domain, fqdn, rec.type)))
    for domain in sorted({rec.domain for rec in records}):
        for rtype in ("NS", "SOA"):
            jobs.append(partial(inp.attempt, f"dns:{domain}:{rtype}",
                                partial(do.list_domain_records, domain, rtype=rtype)))
    _leaves(r, jobs)


def _prometheus(r: Any, inp: Inputs) -> None:
    url = r.app.config.prometheus.resolved_url()
    if not url:
        inp.fail("prometheus_rules", "no Prometheus configured (prometheus.url); DigitalOcean Monitoring has no "
                 "replica-lag alert type", "configure prometheus.url and load config/prometheus/doops.rules.yml")
        return

    def rules() -> list[tuple[str, str]]:
        import json

        probe = r.app.web.get(url.rstrip("/") + "/api/v1/rules?type=alert", keep_body=True)
        if probe.status != 200:
            raise RuntimeError(f"Prometheus rules: {probe.status or probe.error}")
        groups = (json.loads(probe.body).get("data") or {}).get("groups") or []
        return [(str(x.get("name", "")), str(x.get("query", ""))) for g in groups for x in g.get("rules") or []]

    inp.attempt("prometheus_rules", rules)


def _drills(r: Any, inp: Inputs, security: bool) -> None:
    from doops.drill.due import judge
    from doops.drill.history import open_history
    from doops.drill.run import runbook_dirs

    cfg = r.app.config
    if security:
        dirs = runbook_dirs(cfg)
        inp.put("runbook_dirs", [str(d) for d in dirs])
        inp.attempt("erasure_runbooks", lambda: _erasure_runbooks(dirs))
    history = inp.attempt("history", lambda: open_history(cfg.drills.resolved_history_url()),
                          "set drills.history_url (docs/drills.md)")
    if history is None:
        for key in ("drill_runs", "drill_due"):
            inp.fail(key, *inp.errors["history"])
        return
    try:
        inp.attempt("drill_runs", lambda: history.runs(limit=DRILL_RUNS_READ))
        inp.attempt("drill_due", lambda: {s.runbook: judge(s, history, inp.now) for s in cfg.drills.schedules})
    finally:
        history.close()
        inp.values.pop("history", None)


def _erasure_runbooks(dirs: list[Path]) -> list[tuple[str, str]]:
    """(name, file) of every runbook about erasure (file or ``name:`` mentions it) in the runbook directories."""
    import yaml

    found = []
    for d in dirs:
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []:
            try:
                doc = yaml.safe_load(f.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError, UnicodeDecodeError):
                continue
            name = str(doc.get("name") or f.stem) if isinstance(doc, dict) else f.stem
            if "erasure" in name.lower() or "erasure" in f.stem.lower():
                found.append((name, str(f)))
    return found
