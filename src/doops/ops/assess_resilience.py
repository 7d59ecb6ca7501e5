"""Resilience rules of `doops assess` and the per-objective table: can the deployment, as it stands, recover
within each objective? Pure functions of the gathered inputs (ops/assess.py reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from doops.ops.assess_model import Findings, Inputs, NotAssessed, Rule, Severity, days
from doops.units import format_duration

INFO, WARN, CRIT = Severity.INFO, Severity.WARN, Severity.CRIT
RESTORE_WINDOW_DAYS = 7  # DigitalOcean keeps PostgreSQL backups (the point-in-time window) 7 days
CACHE_ENGINES = ("redis", "valkey")
PITR_ACTION, DB_FAILOVER_ACTION, APP_FAILOVER_ACTION = "db.pitr", "db.failover", "app.failover"

RULES = [
    Rule("db.ha-standby", "resilience", "database", "API", "at least one standby node (HA) in the cluster"),
    Rule("db.cross-region-replica", "resilience", "database", "API", "a read replica in another region"),
    Rule("db.replica-lag", "resilience", "database", "server", "replica lag within the database RPO"),
    Rule("db.backups", "resilience", "database", "API", "backups present"),
    Rule("db.restore-window", "resilience", "database", "API", "point-in-time restore window of at least 7 days"),
    Rule("db.pitr-drill", "resilience", "database", "drill history", "a PITR drill run within its schedule"),
    Rule("db.pools", "resilience", "database", "API", "connection pools configured"),
    Rule("db.connection-headroom", "resilience", "database", "server", "connection headroom on the primary"),
    Rule("compute.instances", "resilience", "compute", "API", "every service with at least 2 instances"),
    Rule("compute.health-check", "resilience", "compute", "API", "a health check on every service"),
    Rule("compute.deploy-alerts", "resilience", "compute", "API", "an alert on failed deployments"),
    Rule("compute.standby-region", "resilience", "compute", "API", "a standby app in another region"),
    Rule("compute.dns-failover", "resilience", "compute", "API + config", "a DNS record ready to switch"),
    Rule("storage.replica", "resilience", "storage", "config + Spaces", "a replica bucket, gap within storage_rpo"),
    Rule("storage.lifecycle", "resilience", "storage", "Spaces", "lifecycle rules for uploads"),
    Rule("storage.versioning", "resilience", "storage", "Spaces", "versioning (deletions recoverable)"),
    Rule("dns.failover-ttl", "resilience", "dns", "API + config", "failover records' TTL within dns_rto"),
    Rule("dns.soa-ns", "resilience", "dns", "API", "SOA present and at least two NS records"),
    Rule("monitoring.uptime", "resilience", "monitoring", "API", "an Uptime check on every live URL"),
    Rule("monitoring.alert-coverage", "resilience", "monitoring", "API", "CPU, memory, disk alerts on every cluster"),
    Rule("monitoring.replica-lag-alert", "resilience", "monitoring", "Prometheus", "an alert on replica lag"),
    Rule("monitoring.drills-overdue", "resilience", "monitoring", "drill history", "scheduled drills not overdue"),
]


def pg_clusters(inp: Inputs) -> list[tuple[Any, Any]]:
    return [(c, p) for c, p in inp.get("clusters") if c.engine not in CACHE_ENGINES]


def status_check(inp: Inputs, component: str, resource: str, check: str) -> Any:
    """A check `doops status` ran in this assessment (server measurements); NotAssessed when it could not."""
    results = inp.get(f"status:{component}")
    found = next((c for c in results if c.resource == resource and c.check == check), None)
    if found is None:
        raise NotAssessed(f"status measured no {check} for {resource}")
    if found.status.value in ("unknown", "skipped"):
        raise NotAssessed(f"{check} of {resource} could not be measured: {found.summary}")
    return found


def _foreign_replicas(inp: Inputs, cluster: Any) -> list[Any]:
    return [r for r in inp.get(f"replicas:{cluster.id}") if r.region and r.region != cluster.region]


def database_rules(inp: Inputs, out: Findings) -> None:
    cfg = inp.config
    rpo = float(cfg.objectives.database_rpo)
    clusters: Any = []  # stays empty when not assessed (the info says why)
    with out.check("db.ha-standby", "*"):
        clusters = pg_clusters(inp)
    for c, _ in clusters:
        with out.check("db.ha-standby", c.name):
            if c.num_nodes < 2:
                out.add("db.ha-standby", c.name, WARN, f"{c.num_nodes} node: no standby to fail over to in {c.region}",
                        {"num_nodes": c.num_nodes, "region": c.region},
                        f"add a standby node: doctl databases resize {c.id} --num-nodes 2 --size {c.size or 'SIZE'}")
        with out.check("db.cross-region-replica", c.name):
            replicas = inp.get(f"replicas:{c.id}")
            foreign = _foreign_replicas(inp, c)
            if not foreign:
                out.add("db.cross-region-replica", c.name, CRIT,
                        f"no read replica outside {c.region}: a regional outage loses the database",
                        {"region": c.region, "replicas": [f"{r.name} ({r.region})" for r in replicas]},
                        f"doctl databases replica create {c.id} {c.name}-ams3 {c.size or 'SIZE'} --region ams3")
        for rep in _safe(lambda c=c: _foreign_replicas(inp, c)):
            with out.check("db.replica-lag", rep.name):
                check = status_check(inp, "databases", rep.name, "replica")
                lag = float(check.details.get("lag_seconds") or 0.0)
                ev = {"lag_seconds": lag, "lag_bytes": check.details.get("lag_bytes"), "database_rpo_seconds": rpo}
                limit = float(cfg.thresholds.replica_lag_seconds)
                if lag > rpo:
                    out.add("db.replica-lag", rep.name, CRIT, f"replica {lag:.1f}s behind: beyond the database RPO "
                            f"of {format_duration(rpo)}", ev, "find what slows replay (long queries on the replica, "
                            "network, I/O); doops status databases shows the lag live")
                elif lag > limit:
                    out.add("db.replica-lag", rep.name, WARN, f"replica {lag:.1f}s behind (threshold "
                            f"{format_duration(limit)})", ev, "see doops status databases; check replay on the replica")
        with out.check("db.backups", c.name):
            backups = [b for b in inp.get(f"backups:{c.id}") if b.created_at]
            if not backups:
                out.add("db.backups", c.name, CRIT, "no backup: neither restore nor point-in-time recovery is possible",
                        {"backups": 0}, f"check the cluster's backups: doctl databases backups {c.id}; open a "
                        "support ticket if none appear within a day")
        with out.check("db.restore-window", c.name):
            backups = [b for b in inp.get(f"backups:{c.id}") if b.created_at]
            if backups:
                oldest = min(b.created_at for b in backups)
                window = (inp.now - oldest).total_seconds()
                age = (inp.now - c.created_at).total_seconds() if c.created_at else None
                ev = {"window_days": days(window), "oldest_backup": oldest, "backups": len(backups),
                      "cluster_age_days": days(age) if age is not None else None, "required_days": RESTORE_WINDOW_DAYS}
                if window < (RESTORE_WINDOW_DAYS - 1) * 86400:
                    young = age is not None and age < RESTORE_WINDOW_DAYS * 86400
                    out.add("db.restore-window", c.name, INFO if young else WARN,
                            f"restore window {days(window)} days, not {RESTORE_WINDOW_DAYS}"
                            + (" (the cluster is younger)" if young else ": backups are missing"), ev,
                            f"doctl databases backups {c.id}: DigitalOcean keeps {RESTORE_WINDOW_DAYS} days; "
                            "a shorter window means backups failed or were lost")
        with out.check("db.pools", c.name):
            if not inp.get(f"pools:{c.id}"):
                out.add("db.pools", c.name, WARN, "no connection pool: every client holds a server connection",
                        {"pools": 0}, f"doctl databases pool create {c.id} app-pool --db defaultdb --mode transaction "
                        "--size 20 --user doadmin, and point apps at it")
        with out.check("db.connection-headroom", c.name):
            check = status_check(inp, "databases", c.name, "connections")
            ratio = float(check.details.get("ratio") or 0.0)
            ev = {k: check.details.get(k) for k in ("connections", "max_connections", "reserved", "ratio")}
            th = cfg.thresholds
            if ratio >= th.connection_usage_warn:
                out.add("db.connection-headroom", c.name, CRIT if ratio >= th.connection_usage_crit else WARN,
                        f"{ratio:.0%} of the primary's connections in use: a failover's reconnect storm will not fit",
                        ev, "route clients through a connection pool (doctl databases pool create) or resize the "
                        "cluster for more connections")
    pitr_rule(inp, out, clusters)


def _safe(fn: Any) -> list[Any]:
    try:
        return list(fn())
    except NotAssessed:
        return []


def _runs_with(inp: Inputs, action: str) -> list[Any]:
    return [r for r in inp.get("drill_runs") if any(s.name == action for s in r.steps)]


def pitr_rule(inp: Inputs, out: Findings, clusters: list[tuple[Any, Any]]) -> None:
    if not clusters:
        return
    with out.check("db.pitr-drill", "drills"):
        runs = _runs_with(inp, PITR_ACTION)
        names = {r.runbook for r in runs} | {r.file for r in runs}
        schedules = [s for s in inp.config.drills.schedules
                     if s.runbook in names or any(w in s.runbook for w in ("pitr", "restore"))]
        ok = [r for r in runs if r.success]
        ev: dict[str, Any] = {"runs": len(runs), "last_success": ok[0].started_at if ok else None,
                              "scheduled": [s.runbook for s in schedules]}
        fix = ("schedule the restore drill: add drills.schedules: [{runbook: db-restore-drill, cron: '0 3 * * 1'}] "
               "and run doops drill schedule")
        if not schedules:
            out.add("db.pitr-drill", "drills", WARN, "no PITR drill scheduled" + (
                f" (last success {ok[0].started_at:%Y-%m-%d})" if ok else ", and none ever succeeded"), ev, fix)
            return
        due = inp.get("drill_due")
        for s in schedules:
            d = due.get(s.runbook)
            if d is not None and d.state.value != "ok":
                ev.update({"runbook": s.runbook, "cron": s.cron, "state": d.state.value})
                out.add("db.pitr-drill", s.runbook, WARN, f"PITR drill {d.state.value}: {d.reason}", ev,
                        f"doops drill run {s.runbook}")


def compute_rules(inp: Inputs, out: Findings) -> None:
    apps: Any = []  # stays empty when not assessed (the info says why)
    with out.check("compute.instances", "*"):
        apps = inp.get("apps")
    cfg = inp.config
    records = {r.app: r for r in cfg.dns.failover_records if r.app}
    for app, posture in apps:
        running = [c for c in posture.components if c.instance_count is not None]
        with out.check("compute.instances", app.name):
            single = [c for c in running if (c.instance_count or 0) < 2]
            if single:
                out.add("compute.instances", app.name, WARN,
                        "single instance: " + ", ".join(f"{c.name} x{c.instance_count}" for c in single)
                        + " (a deploy or a crash is downtime)",
                        {c.name: c.instance_count for c in running},
                        f"set instance_count: 2 for {', '.join(c.name for c in single)} in the app spec: "
                        f"doctl apps update {app.id} --spec app.yaml (control panel: Settings > Resources)")
        with out.check("compute.health-check", app.name):
            blind = [c.name for c in posture.components if c.kind == "service" and not c.health_check]
            if blind:
                out.add("compute.health-check", app.name, WARN, "no health check on " + ", ".join(blind)
                        + ": a broken instance keeps receiving traffic", {"services": blind},
                        f"add health_check: {{http_path: /healthz}} to each service: doctl apps update {app.id} "
                        "--spec app.yaml")
        with out.check("compute.deploy-alerts", app.name):
            if "DEPLOYMENT_FAILED" not in app.alert_rules:
                out.add("compute.deploy-alerts", app.name, WARN, "no alert on failed deployments",
                        {"alerts": app.alert_rules}, "add alerts: [{rule: DEPLOYMENT_FAILED}] to the app spec: "
                        f"doctl apps update {app.id} --spec app.yaml")
        if not running:
            continue  # a static site is served from the edge: no region to lose
        standby = standby_of(apps, app, posture)
        with out.check("compute.standby-region", app.name):
            if standby is None:
                out.add("compute.standby-region", app.name, WARN,
                        f"no standby app outside {app.region}: a regional outage stops {app.name}",
                        {"region": app.region, "services": [c.name for c in running]},
                        "deploy the same spec in another region (doctl apps create --spec app.yaml with region: "
                        "ams) and keep it warm")
        if standby is None:
            continue
        with out.check("compute.dns-failover", app.name):
            record = records.get(app.name) or records.get(standby.name)
            if record is None:
                out.add("compute.dns-failover", app.name, WARN,
                        f"standby {standby.name} exists but no DNS failover record fronts {app.name}",
                        {"standby": standby.name, "standby_region": standby.region},
                        "add dns.failover_records: [{domain: ..., name: api, app: " + app.name
                        + "}] to the config and a CNAME at DigitalOcean DNS (doctl compute domain records create)")
            else:
                found = inp.get(f"dns:{record.domain}:{record.name}:{record.type}")
                if not found:
                    out.add("compute.dns-failover", app.name, CRIT,
                            f"failover record {record.name}.{record.domain} ({record.type}) not found",
                            {"record": f"{record.name}.{record.domain}"},
                            f"doctl compute domain records create {record.domain} --record-type {record.type} "
                            f"--record-name {record.name} --record-data HOST. --record-ttl 60")


def standby_of(apps: list[tuple[Any, Any]], app: Any, posture: Any) -> Any:
    """Another app in another region deploying the same repository (or the same services): the standby."""
    names = {c.name for c in posture.components if c.instance_count is not None}
    for other, op in apps:
        if other.id == app.id or not other.region or other.region == app.region:
            continue
        same_repo = posture.repo is not None and op.repo == posture.repo
        same_services = names and names == {c.name for c in op.components if c.instance_count is not None}
        if same_repo or same_services:
            return other
    return None


def storage_rules(inp: Inputs, out: Findings) -> None:
    cfg = inp.config
    rpo = float(cfg.objectives.storage_rpo)
    buckets: Any = []  # stays empty when not assessed (the info says why)
    with out.check("storage.replica", "*"):
        buckets = inp.get("buckets")
    replicas = {b.replica for b in buckets if b.replica}
    for b in buckets:
        if b.name in replicas:
            continue
        with out.check("storage.replica", b.name):
            if not b.replica:
                out.add("storage.replica", b.name, CRIT, "no replica bucket: a regional outage loses its objects",
                        {"region": b.region}, "create a bucket in another region, replicate to it (rclone sync or "
                        "the app's dual write) and set spaces.buckets[].replica in the config")
            else:
                check = status_check(inp, "spaces", b.name, "replication")
                oldest = float(check.details.get("oldest_at_risk_seconds") or 0.0)
                if oldest > rpo:
                    out.add("storage.replica", b.name, CRIT, f"{b.replica} lacks objects written "
                            f"{format_duration(oldest)} ago: beyond the storage RPO of {format_duration(rpo)}",
                            {"oldest_at_risk_seconds": oldest, "storage_rpo_seconds": rpo,
                             "bytes_at_risk": check.details.get("bytes_at_risk"),
                             "compared": check.details.get("compared")},
                            f"is replication to {b.replica} running? doops spaces gap {b.name} lists what is missing")
        with out.check("storage.lifecycle", b.name):
            have = inp.get(f"lifecycle:{b.name}")
            want = b.lifecycle_prefixes or ["uploads/"]
            missing = [p for p in want if not any(p.startswith(h) for h in have)]
            if missing:
                out.add("storage.lifecycle", b.name, WARN, "no lifecycle rule on " + ", ".join(missing)
                        + ": abandoned uploads and old versions grow forever", {"rules": have, "wanted": want},
                        f"s3cmd setlifecycle lifecycle.xml s3://{b.name} (a rule expiring {missing[0]} after N days)")
        with out.check("storage.versioning", b.name):
            state = inp.get(f"versioning:{b.name}")
            if state != "Enabled":
                out.add("storage.versioning", b.name, WARN, "versioning off: a deleted or overwritten object "
                        "cannot be recovered", {"versioning": state or "never enabled"},
                        f"aws s3api put-bucket-versioning --bucket {b.name} --versioning-configuration Status=Enabled "
                        "--endpoint-url https://REGION.digitaloceanspaces.com")


def dns_rules(inp: Inputs, out: Findings) -> None:
    cfg = inp.config
    rto = float(cfg.objectives.dns_rto)
    with out.check("dns.failover-ttl", "*"):
        if not cfg.dns.failover_records:
            raise NotAssessed("no dns.failover_records in the config",
                              "name the records that front apps under dns.failover_records")
    for rec in cfg.dns.failover_records:
        name = f"{rec.name}.{rec.domain}" if rec.name != "@" else rec.domain
        with out.check("dns.failover-ttl", name):
            found = inp.get(f"dns:{rec.domain}:{rec.name}:{rec.type}")
            if not found:
                out.add("dns.failover-ttl", name, CRIT, f"failover record {name} ({rec.type}) not found", {},
                        f"doctl compute domain records create {rec.domain} --record-type {rec.type} --record-name "
                        f"{rec.name} --record-data HOST. --record-ttl {int(rto)}")
                continue
            ttl = max(r.ttl for r in found)
            if ttl > rto:
                out.add("dns.failover-ttl", name, CRIT, f"TTL {ttl}s: resolvers keep the old answer longer than the "
                        f"DNS RTO of {format_duration(rto)}", {"ttl": ttl, "dns_rto_seconds": rto},
                        f"doctl compute domain records update {rec.domain} --record-id {found[0].id} "
                        f"--record-ttl {int(rto)}")
    for domain in sorted({r.domain for r in cfg.dns.failover_records}):
        with out.check("dns.soa-ns", domain):
            ns = inp.get(f"dns:{domain}:NS")
            soa = inp.get(f"dns:{domain}:SOA")
            ev = {"ns": sorted(r.data for r in ns), "soa": bool(soa)}
            if len(ns) < 2 or not soa:
                out.add("dns.soa-ns", domain, WARN, ("no SOA record" if not soa else f"{len(ns)} NS record(s): "
                        "one name server is a single point of failure"), ev,
                        f"keep DigitalOcean's ns1/ns2/ns3.digitalocean.com as NS of {domain} (doctl compute domain "
                        "records list) and delegate to all of them at the registrar")


def monitoring_rules(inp: Inputs, out: Findings) -> None:
    apps: Any = []
    checks: Any = None  # both read, or no app judged (the info says why)
    with out.check("monitoring.uptime", "*"):
        apps = inp.get("apps")
        checks = inp.get("uptime_checks")
    for app, _ in apps if checks is not None else []:
        if not app.live_url:
            continue
        with out.check("monitoring.uptime", app.name):
            host = urlsplit(app.live_url).netloc
            covered = [c for c in checks if c.enabled and (urlsplit(c.target).netloc == host
                                                           or c.target.rstrip("/") == app.live_url.rstrip("/"))]
            if not covered:
                out.add("monitoring.uptime", app.name, WARN, f"no enabled Uptime check on {app.live_url}",
                        {"live_url": app.live_url, "checks": len(checks)},
                        f"doctl monitoring uptime create {app.name} --target {app.live_url}")
    clusters: Any = []
    policies: Any = None  # both read, or no cluster judged (the info says why)
    with out.check("monitoring.alert-coverage", "*"):
        clusters = inp.get("clusters")
        policies = inp.get("alert_policies")
    for c, _ in clusters if policies is not None else []:
        with out.check("monitoring.alert-coverage", c.name):
            have = {p.type.rsplit("/", 1)[-1] for p in policies if p.enabled and c.id in p.entities}
            want = ["cpu_alerts", "memory_utilization_alerts"]
            if c.engine not in CACHE_ENGINES:
                want.append("disk_utilization_alerts")
            missing = [w for w in want if w not in have]
            if missing:
                out.add("monitoring.alert-coverage", c.name, WARN, "no enabled alert policy for "
                        + ", ".join(m.replace("_alerts", "").replace("_utilization", "") for m in missing),
                        {"have": sorted(have), "missing": missing},
                        f"doctl monitoring alert create --type v1/dbaas/alerts/{missing[0]} --entities {c.id} "
                        "--compare GreaterThan --value 80 --window 5m --emails ...")
    with out.check("monitoring.replica-lag-alert", "*"):
        with_replicas = [c for c, _ in pg_clusters(inp) if _safe(lambda c=c: inp.get(f"replicas:{c.id}"))]
        if with_replicas:
            rules = inp.get("prometheus_rules")
            lag = [name for name, expr in rules if "lag" in expr.lower() or "lag" in name.lower()]
            if not lag:
                out.add("monitoring.replica-lag-alert", ", ".join(c.name for c in with_replicas), WARN,
                        "no alerting rule on replica lag (DigitalOcean Monitoring has no replica-lag alert type)",
                        {"prometheus_alert_rules": len(rules)},
                        "load config/prometheus/doops.rules.yml (doops exporter metrics) into Prometheus")
    due: Any = {}  # stays empty when not assessed (the info says why)
    with out.check("monitoring.drills-overdue", "*"):
        if not inp.config.drills.schedules:
            raise NotAssessed("no drills scheduled (drills.schedules in the config)",
                              "schedule the runbooks as drills: docs/drills.md")
        due = inp.get("drill_due")
    for name, d in sorted(due.items()):
        with out.check("monitoring.drills-overdue", name):
            if d.state.value != "ok":
                out.add("monitoring.drills-overdue", name, CRIT if d.state.value == "failed" else WARN,
                        f"drill {d.state.value}: {d.reason}", {"cron": d.cron, "last_success": d.last_success},
                        f"doops drill run {name}")


def resilience_rules(inp: Inputs, out: Findings) -> None:
    for fn in (database_rules, compute_rules, storage_rules, dns_rules, monitoring_rules):
        fn(inp, out)


# -- the per-objective table ----------------------------------------------------------------------------------


@dataclass
class ObjectiveRow:
    objective: str  # compute | database | storage | dns
    target: str  # "RTO 2m"
    achievable: str  # yes | no | unproven | unknown
    supports: str  # what the deployment has and measured, or why not


def _span(seconds: float) -> str:
    """Objectives as people state them: "2 min", "60 s"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def _last_measure(inp: Inputs, action: str, objective: str) -> tuple[float | None, Any]:
    """The newest successful drill with ``action``: the step's duration and the objective measured."""
    try:
        runs = [r for r in _runs_with(inp, action) if r.success]
    except NotAssessed:
        return None, None
    if not runs:
        return None, None
    run = runs[0]
    step = next((s for s in run.steps if s.name == action), None)
    measure = run.objective(objective)
    return (step.duration_seconds if step else None), (measure.measured_seconds if measure else None)


def objectives_table(inp: Inputs) -> list[ObjectiveRow]:
    o = inp.config.objectives
    return [_database_row(inp, float(o.database_rto), float(o.database_rpo)), _compute_row(inp, float(o.compute_rto)),
            _storage_row(inp, float(o.storage_rpo)), _dns_row(inp, float(o.dns_rto))]


def _database_row(inp: Inputs, rto: float, rpo: float) -> ObjectiveRow:
    target = f"RTO {_span(rto)}, RPO {_span(rpo)}"
    try:
        clusters = pg_clusters(inp)
    except NotAssessed as exc:
        return ObjectiveRow("database", target, "unknown", f"not assessed: {exc.reason}")
    if not clusters:
        return ObjectiveRow("database", target, "unknown", "no PostgreSQL cluster found")
    parts, verdict = [], "yes"
    for c, _ in clusters:
        try:
            foreign = _foreign_replicas(inp, c)
        except NotAssessed as exc:
            parts.append(f"{c.name}: replicas not read ({exc.reason})")
            verdict = "unknown"
            continue
        if not foreign:
            parts.append(f"{c.name}: no read replica outside {c.region}: a regional loss is a restore from backup")
            verdict = "no"
            continue
        text = f"{c.name}: cross-region replica {foreign[0].name} ({foreign[0].region}) present"
        try:
            lag = float(status_check(inp, "databases", foreign[0].name, "replica").details.get("lag_seconds") or 0)
            text += f", lag {lag:.1f} s"
            if lag > rpo:
                verdict = "no"
                text += f" (beyond the RPO of {_span(rpo)})"
        except NotAssessed:
            text += ", lag not measured"
        step, measured = _last_measure(inp, DB_FAILOVER_ACTION, "rto")
        if step is not None or measured is not None:
            text += f", promote measured at {step or measured:.2f} s in the last drill"
            if measured is not None and measured > rto:
                verdict = "no"
                text += f", recovery {measured:.0f} s beyond the RTO"
        elif verdict == "yes":
            verdict = "unproven"
            text += ", promotion never measured in a drill"
        parts.append(text)
    suffix = f" -> {_span(rto)} achievable" if verdict == "yes" else ""
    return ObjectiveRow("database", target, verdict, "; ".join(parts) + suffix)


def _compute_row(inp: Inputs, rto: float) -> ObjectiveRow:
    target = f"RTO {_span(rto)}"
    try:
        apps = inp.get("apps")
    except NotAssessed as exc:
        return ObjectiveRow("compute", target, "unknown", f"not assessed: {exc.reason}")
    parts, verdict = [], "yes"
    for app, posture in apps:
        running = [c for c in posture.components if c.instance_count is not None]
        if not running:
            continue
        min_instances = min(c.instance_count or 0 for c in running)
        standby = standby_of(apps, app, posture)
        text = f"{app.name}: {min_instances}+ instances per service"
        if standby is None:
            text += f", no standby outside {app.region}"
            verdict = "no"
        else:
            text += f", standby {standby.name} ({standby.region})"
        if min_instances < 2 and verdict == "yes":
            verdict = "unproven"
        parts.append(text)
    _, measured = _last_measure(inp, APP_FAILOVER_ACTION, "rto")
    if measured is not None:
        parts.append(f"app failover measured at {measured:.1f} s in the last drill")
        if measured > rto:
            verdict = "no"
    elif verdict == "yes":
        verdict = "unproven"
        parts.append("app failover never measured in a drill")
    if not parts:
        return ObjectiveRow("compute", target, "unknown", "no app with running services found")
    suffix = f" -> {_span(rto)} achievable" if verdict == "yes" else ""
    return ObjectiveRow("compute", target, verdict, "; ".join(parts) + suffix)


def _storage_row(inp: Inputs, rpo: float) -> ObjectiveRow:
    target = f"RPO {_span(rpo)}"
    try:
        buckets = inp.get("buckets")
    except NotAssessed as exc:
        return ObjectiveRow("storage", target, "unknown", f"not assessed: {exc.reason}")
    replicas = {b.replica for b in buckets if b.replica}
    parts, verdict = [], "yes"
    for b in buckets:
        if b.name in replicas:
            continue
        if not b.replica:
            parts.append(f"{b.name}: no replica bucket")
            verdict = "no"
            continue
        try:
            oldest = float(status_check(inp, "spaces", b.name, "replication").details.get("oldest_at_risk_seconds")
                           or 0.0)
        except NotAssessed as exc:
            parts.append(f"{b.name}: replica {b.replica}, gap not measured ({exc.reason})")
            verdict = "unknown" if verdict == "yes" else verdict
            continue
        parts.append(f"{b.name}: replica {b.replica}, current gap {_span(oldest)}")
        if oldest > rpo:
            verdict = "no"
    suffix = f" -> {_span(rpo)} achievable" if verdict == "yes" else ""
    return ObjectiveRow("storage", target, verdict, "; ".join(parts) + suffix)


def _dns_row(inp: Inputs, rto: float) -> ObjectiveRow:
    target = f"RTO {_span(rto)}"
    records = inp.config.dns.failover_records
    if not records:
        return ObjectiveRow("dns", target, "unknown", "not assessed: no dns.failover_records in the config")
    parts, verdict = [], "yes"
    for rec in records:
        name = f"{rec.name}.{rec.domain}"
        try:
            found = inp.get(f"dns:{rec.domain}:{rec.name}:{rec.type}")
        except NotAssessed as exc:
            parts.append(f"{name}: not read ({exc.reason})")
            verdict = "unknown"
            continue
        if not found:
            parts.append(f"{name}: record missing")
            verdict = "no"
            continue
        ttl = max(r.ttl for r in found)
        parts.append(f"{name}: TTL {ttl} s")
        if ttl > rto:
            verdict = "no"
    _, measured = _last_measure(inp, "dns.switch", "dns")
    if measured is not None:
        parts.append(f"cutover measured at {measured:.1f} s in the last drill")
        if measured > rto:
            verdict = "no"
    suffix = f" -> {_span(rto)} achievable" if verdict == "yes" else ""
    return ObjectiveRow("dns", target, verdict, "; ".join(parts) + suffix)
