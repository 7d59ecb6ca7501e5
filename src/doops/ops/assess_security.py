"""Security rules of `doops assess`: database firewalls and private networking, TLS of what users reach,
public Spaces, token and key scope, GDPR erasure. Pure functions of the gathered inputs (ops/assess.py)."""

from __future__ import annotations

import ipaddress
from typing import Any

from doops.ops.assess_model import Findings, Inputs, NotAssessed, Rule, Severity, days
from doops.ops.assess_resilience import CACHE_ENGINES, RESTORE_WINDOW_DAYS

INFO, WARN, CRIT = Severity.INFO, Severity.WARN, Severity.CRIT
MIN_CERT_DAYS = 21  # a certificate with less left is renewed late: warn
CRIT_CERT_DAYS = 7  # a week from an outage: crit
OPEN_PREFIX = 8  # an IPv4 source as wide as a /8 or wider (0.0.0.0/0 above all) is "open"
WRITE_METHODS = {"PUT", "POST", "DELETE"}
READ_ONLY_COMMANDS = "status, assess, exporter"

RULES = [
    Rule("fw.open-source", "security", "firewall", "API", "no 0.0.0.0/0-style trusted source"),
    Rule("fw.sources", "security", "firewall", "API", "trusted sources limited to apps, tags or the VPC"),
    Rule("fw.vpc", "security", "firewall", "API", "clusters in a VPC (private network)"),
    Rule("db.tls-required", "security", "database", "API", "database and cache connections require TLS"),
    Rule("tls.version", "security", "tls", "server", "TLS 1.3 negotiated on every live URL and CDN domain"),
    Rule("tls.certificate", "security", "tls", "server", "certificate trusted with at least 21 days left"),
    Rule("tls.hsts", "security", "tls", "server", "HSTS (Strict-Transport-Security) present"),
    Rule("spaces.public-list", "security", "spaces", "Spaces", "buckets not publicly listable"),
    Rule("spaces.public-uploads", "security", "spaces", "Spaces", "objects under uploads/ not public"),
    Rule("spaces.cors", "security", "spaces", "Spaces", "CORS not * with credentials or writes"),
    Rule("tokens.api-scope", "security", "tokens", "none (the API exposes no token scopes)",
         "a read-only token for read-only tasks"),
    Rule("tokens.spaces-keys", "security", "tokens", "API", "Spaces keys limited to the buckets they need"),
    Rule("gdpr.erasure-drill", "security", "compliance", "runbooks + drill history",
         "the erasure runbook exists and was run in a drill"),
    Rule("gdpr.backup-retention", "security", "compliance", "API", "backup retention stated against erasure"),
]


def _network(value: str) -> Any:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def firewall_rules(inp: Inputs, out: Findings) -> None:
    clusters: Any = []  # stays empty when not assessed (the info says why)
    with out.check("fw.open-source", "*"):
        clusters = inp.get("clusters")
    for c, p in clusters:
        with out.check("fw.open-source", c.name):
            rules = inp.get(f"firewall:{c.id}")
            fix_base = f"doctl databases firewalls replace {c.id} --rule app:APP_ID --rule tag:TAG"
            if not rules:
                out.add("fw.open-source", c.name, CRIT, "no trusted source: the cluster accepts connections from any "
                        "address", {"rules": []}, fix_base)
            wide = []
            for r in rules:
                net = _network(r.value) if r.type == "ip_addr" else None
                if net is not None and net.prefixlen <= (OPEN_PREFIX if net.version == 4 else 32):
                    wide.append(r.value)
            if wide:
                out.add("fw.open-source", c.name, CRIT, "open trusted source " + ", ".join(wide)
                        + ": any address may reach the database", {"open": wide,
                                                                    "rules": [f"{r.type}:{r.value}" for r in rules]},
                        f"remove it: {fix_base} (control panel: Databases > {c.name} > Settings > Trusted sources)")
        with out.check("fw.sources", c.name):
            rules = inp.get(f"firewall:{c.id}")
            public = []
            for r in rules:
                net = _network(r.value) if r.type == "ip_addr" else None
                if net is not None and net.prefixlen > (OPEN_PREFIX if net.version == 4 else 32) and net.is_global:
                    public.append(r.value)
            if public:
                out.add("fw.sources", c.name, WARN, "trusted by public address " + ", ".join(public)
                        + " rather than by app, tag or VPC", {"addresses": public},
                        f"doctl databases firewalls replace {c.id} --rule app:APP_ID (or tag:TAG); reach it "
                        "from elsewhere through the VPC")
        with out.check("fw.vpc", c.name):
            if not p.private_network_uuid:
                out.add("fw.vpc", c.name, WARN, "not in a VPC: clients reach it over the public network",
                        {"private_network_uuid": None}, "migrate it into the apps' VPC: doctl databases migrate "
                        f"{c.id} --region {c.region} --private-network-uuid VPC_ID")
        with out.check("db.tls-required", c.name):
            if p.ssl is None:
                raise NotAssessed("the API gives no connection for it")
            if not p.ssl:
                out.add("db.tls-required", c.name, CRIT, "connections do not require TLS: credentials and data "
                        "cross the network in clear", {"ssl": False},
                        "connect with sslmode=require (verify-full with the cluster's CA: doctl databases "
                        f"connection {c.id}); for a cache, use its rediss:// URI")


def tls_rules(inp: Inputs, out: Findings) -> None:
    targets: Any = []  # stays empty when not assessed (the info says why)
    with out.check("tls.version", "*"):
        targets = inp.get("tls_targets")
    for name, url in targets:
        with out.check("tls.version", url):
            probe = inp.get(f"tls:{url}")
            ev = {"url": url, "best_version": probe.best_version, "accepts_tls12": probe.accepts_tls12}
            fix = (f"{name}: App Platform and the CDN serve TLS 1.3 by default; a custom edge or load balancer in "
                   "front must allow TLS 1.3 (ssl_protocols TLSv1.2 TLSv1.3)")
            if probe.error:
                ev["error"] = probe.error
                out.add("tls.version", url, CRIT, f"no TLS: {probe.error}", ev,
                        f"{name}: serve it over https only (App Platform live URLs are https)")
            elif probe.best_version == "TLSv1.2":
                out.add("tls.version", url, WARN, "TLS 1.2 at best: the server does not offer TLS 1.3", ev, fix)
            elif probe.best_version not in ("TLSv1.3", None):
                out.add("tls.version", url, CRIT, f"{probe.best_version} at best: below TLS 1.2", ev, fix)
        with out.check("tls.certificate", url):
            probe = inp.get(f"tls:{url}")
            if probe.error:
                raise NotAssessed(probe.error)
            left = probe.days_left(inp.now)
            ev = {"url": url, "not_after": probe.not_after, "days_left": round(left, 1) if left is not None else None,
                  "trusted": probe.trusted}
            fix = (f"{name}: renew the certificate (managed certificates renew themselves: check the domain's "
                   "DNS still points at DigitalOcean; control panel: Settings > Domains)")
            if probe.trusted is False:
                ev["verify_error"] = probe.verify_error
                out.add("tls.certificate", url, CRIT, f"certificate not trusted: {probe.verify_error}", ev, fix)
            elif left is not None and left < CRIT_CERT_DAYS:
                out.add("tls.certificate", url, CRIT, f"certificate expires in {left:.1f} days", ev, fix)
            elif left is not None and left < MIN_CERT_DAYS:
                out.add("tls.certificate", url, WARN, f"certificate expires in {left:.1f} days (< {MIN_CERT_DAYS})",
                        ev, fix)
        with out.check("tls.hsts", url):
            probe = inp.get(f"tls:{url}")
            if probe.error:
                raise NotAssessed(probe.error)
            hsts = inp.get(f"hsts:{url}")
            if not hsts or "max-age=0" in hsts.replace(" ", "").lower():
                out.add("tls.hsts", url, WARN, "no Strict-Transport-Security header: a first visit can be "
                        "downgraded to http", {"url": url, "strict_transport_security": hsts or None},
                        f"{name}: send Strict-Transport-Security: max-age=31536000; includeSubDomains (the app's "
                        "response headers, or the CDN/edge in front)")


def _public(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("AWS")
    values = principal if isinstance(principal, list) else [principal]
    return statement.get("Effect") == "Allow" and "*" in values


def _actions(statement: dict[str, Any]) -> set[str]:
    acts = statement.get("Action") or []
    return {str(a).lower() for a in (acts if isinstance(acts, list) else [acts])}


def _resources(statement: dict[str, Any]) -> list[str]:
    res = statement.get("Resource") or []
    return [str(r) for r in (res if isinstance(res, list) else [res])]


def public_statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    stmts = (policy or {}).get("Statement") or []
    return [s for s in (stmts if isinstance(stmts, list) else [stmts]) if isinstance(s, dict) and _public(s)]


def spaces_rules(inp: Inputs, out: Findings) -> None:
    buckets: Any = []  # stays empty when not assessed (the info says why)
    with out.check("spaces.public-list", "*"):
        buckets = inp.get("bucket_names")
    for bucket in buckets:
        fix_policy = (f"remove the public statement: aws s3api delete-bucket-policy --bucket {bucket} --endpoint-url "
                      "https://REGION.digitaloceanspaces.com (control panel: Spaces > bucket > Settings > "
                      "File Listing: Restricted)")
        with out.check("spaces.public-list", bucket):
            policy = inp.get(f"policy:{bucket}")
            acl = inp.get(f"acl:{bucket}")
            listing = [s for s in public_statements(policy)
                       if _actions(s) & {"s3:listbucket", "s3:*", "*"}]
            acl_read = [g for g in acl if g.split(":", 1)[1] in ("READ", "FULL_CONTROL")]
            if listing or acl_read:
                out.add("spaces.public-list", bucket, CRIT, "anyone can list the bucket's keys",
                        {"policy_statements": listing, "acl_public": acl_read}, fix_policy)
        with out.check("spaces.public-uploads", bucket):
            policy = inp.get(f"policy:{bucket}")
            reading = [s for s in public_statements(policy) if _actions(s) & {"s3:getobject", "s3:*", "*"}
                       and any(r.endswith(f"{bucket}/*") or f"{bucket}/uploads" in r or r == "*"
                               for r in _resources(s))]
            objects = inp.get(f"upload_acls:{bucket}")
            public_objects = [k for k, grants in objects.items() if grants]
            if reading or public_objects:
                out.add("spaces.public-uploads", bucket, CRIT, "objects under uploads/ are readable by anyone",
                        {"policy_statements": reading, "public_objects": public_objects[:10]},
                        fix_policy + "; make objects private: aws s3api put-object-acl --acl private --key KEY")
        with out.check("spaces.cors", bucket):
            risky = []
            for rule in inp.get(f"cors:{bucket}"):
                origins = rule.get("AllowedOrigins") or []
                methods = {str(m).upper() for m in rule.get("AllowedMethods") or []}
                headers = {str(h).lower() for h in rule.get("AllowedHeaders") or []}
                if "*" in origins and (methods & WRITE_METHODS or headers & {"*", "authorization", "cookie"}):
                    risky.append(rule)
            if risky:
                out.add("spaces.cors", bucket, WARN, "CORS allows any origin (*) to send credentials or write",
                        {"rules": risky}, f"name the app's origins in AllowedOrigins: s3cmd setcors cors.xml "
                        f"s3://{bucket} (control panel: Spaces > bucket > Settings > CORS)")


def token_rules(inp: Inputs, out: Findings) -> None:
    with out.check("tokens.api-scope", "api-token"):
        out.add("tokens.api-scope", "api-token", INFO,
                "cannot tell without a write: the API exposes no token scopes (and doops never probes with a write)",
                {"read_only_commands": READ_ONLY_COMMANDS},
                f"use a read-only token for {READ_ONLY_COMMANDS} (control panel: API > Tokens > Generate, "
                "scope Read Only or custom read scopes)")
    keys: Any = []  # stays empty when not assessed (the info says why)
    with out.check("tokens.spaces-keys", "*"):
        keys = inp.get("spaces_keys")
    for key in keys:
        with out.check("tokens.spaces-keys", key.name):
            broad = [(b or "*", p) for b, p in key.grants
                     if p == "fullaccess" or (not b and p in ("readwrite", "fullaccess"))]
            if broad:
                out.add("tokens.spaces-keys", key.name, WARN, "key can write to "
                        + ", ".join(f"{b} ({p})" for b, p in broad) + ": more than one bucket's worth",
                        {"grants": [{"bucket": b or "*", "permission": p} for b, p in key.grants]},
                        f"limit it to the buckets it needs: doctl spaces keys update {key.access_key or key.name} "
                        "--grants 'bucket=NAME;permission=readwrite' (control panel: Spaces > Access Keys)")


def gdpr_rules(inp: Inputs, out: Findings) -> None:
    with out.check("gdpr.erasure-drill", "erasure"):
        files = inp.get("erasure_runbooks")
        if not files:
            out.add("gdpr.erasure-drill", "erasure", WARN, "no erasure runbook: a GDPR deletion request has no "
                    "tested procedure", {"looked_in": inp.get("runbook_dirs")},
                    "write runbooks/gdpr-erasure.yaml (rows, uploads, CDN copies, cache) and doops runbook validate it")
        else:
            names = {n for n, _ in files} | {f for _, f in files}
            runs = [r for r in inp.get("drill_runs") if r.runbook in names or r.file in names]
            ok = [r for r in runs if r.success]
            if not ok:
                out.add("gdpr.erasure-drill", files[0][0], WARN, "the erasure runbook never succeeded in a drill",
                        {"runbooks": [f for _, f in files], "runs": len(runs)}, f"doops drill run {files[0][0]}")
    clusters: Any = []  # stays empty when not assessed (the info says why)
    with out.check("gdpr.backup-retention", "*"):
        clusters = inp.get("clusters")
    for c, _ in clusters:
        if c.engine in CACHE_ENGINES:
            continue
        with out.check("gdpr.backup-retention", c.name):
            backups = [b for b in inp.get(f"backups:{c.id}") if b.created_at]
            window = days((inp.now - min(b.created_at for b in backups)).total_seconds()) if backups else 0.0
            out.add("gdpr.backup-retention", c.name, INFO,
                    f"erased rows stay in backups for up to {RESTORE_WINDOW_DAYS} days (restore window now "
                    f"{window} days) and in replicas until replayed: state it in the erasure promise",
                    {"retention_days": RESTORE_WINDOW_DAYS, "window_days": window},
                    "say in the privacy notice that erasure reaches backups within 7 days; never restore a backup "
                    "without re-running the erasure log")


def security_rules(inp: Inputs, out: Findings) -> None:
    for fn in (firewall_rules, tls_rules, spaces_rules, token_rules, gdpr_rules):
        fn(inp, out)
