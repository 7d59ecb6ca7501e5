"""The scenario build: the resources a scenario describes, put into a world's store.

Apps come first (firewall rules, checks, alert policies and DNS records refer to them by name); ids come
from :meth:`Store.new_id`, so they are stable for a world and unique per sandbox; a scenario's explicit
``id``/``uuid`` wins. ``scale`` adds API-only resources for benchmarks.
"""

from __future__ import annotations

import hashlib
from typing import Any

from doops.sandbox.api.resources import REDIS_ENGINES, App, Check, Cluster, Deployment, Replica, Store, iso, region
from doops.sandbox.api.state_apps import AppPlatform
from doops.sandbox.api.state_databases import Databases


def scaled_app(name: str) -> dict[str, Any]:
    """The scenario entry of an app ``scale`` adds: one service ``web`` (routed at ``/web``, health checked on
    ``/health``). The sandbox's one server for every scaled app is started from the same entry."""
    return {"name": name, "region": "nyc", "services": [{"name": "web", "instance_count": 1, "http_port": 8080}],
            "deployments": 1}


class ScenarioBuilder:
    """Fills a store from a scenario's data; firewall rules and live URLs come from their concerns."""

    def __init__(self, store: Store, databases: Databases, app_platform: AppPlatform) -> None:
        self.store = store
        self.databases = databases
        self.app_platform = app_platform

    def build(self, data: dict[str, Any]) -> None:
        """Put every resource ``data`` (a scenario's) describes into the store, then scale it."""
        now = self.store.clock()
        acct = data.get("account") or {}
        email = str(acct.get("email", "sre@learnhub.example"))
        self.store.account = {
            "droplet_limit": 25, "floating_ip_limit": 3, "email": email, "name": acct.get("name", "SRE"),
            "uuid": self.store.hex_id(email), "email_verified": True, "status": "active",
            "status_message": "",
            "team": {"uuid": self.store.new_id("team", str(acct.get("team", "team"))),
                     "name": str(acct.get("team", "My Team"))},
        }
        self.store.project_id = self.store.new_id("project", str(acct.get("team", "team")))
        self.store.vpc_uuid = self.store.new_id("vpc", "default-nyc3")
        # apps first: firewall rules, checks and records refer to them by name
        for spec in data.get("apps") or []:
            self._add_app(spec, now)
        for spec in data.get("databases") or []:
            self._add_cluster_from_scenario(spec, now)
        for spec in data.get("cdn_endpoints") or []:
            self._add_cdn_endpoint(spec, now)
        spaces = data.get("spaces") or {}
        self.store.buckets = [dict(b) for b in spaces.get("buckets") or []]
        for spec in spaces.get("keys") or []:
            self.store.spaces_keys.append({
                "name": spec["name"],
                "access_key": spec.get("access_key") or "DO00" + self.store.hex_id(spec["name"])[:16].upper(),
                "grants": [dict(g) for g in spec.get("grants", [])],
                "created_at": iso(now - 90 * 86400),
            })
        for spec in data.get("functions") or []:
            self._add_namespace(spec, now)
        for spec in data.get("load_balancers") or []:
            self._add_lb(spec, now)
        for i, spec in enumerate(data.get("alert_policies") or []):
            self._add_alert_policy(spec, i)
        for spec in data.get("uptime_checks") or []:
            self._add_check(spec, now)
        for spec in data.get("domains") or []:
            self._add_domain(spec, now)
        self._scale(self.store.scenario.scale, now)

    def _scale(self, scale: dict[str, int], now: float) -> None:
        n = 0
        while len(self.store.apps) < scale.get("apps", 0):
            n += 1
            self._add_app(scaled_app(f"scale-app-{n:03d}"), now)
        n = 0
        while len(self.store.cdn_endpoints) < scale.get("cdn_endpoints", 0):
            n += 1
            self._add_cdn_endpoint({"origin": f"scale-bucket-{n:03d}.nyc3.digitaloceanspaces.com",
                                    "ttl": 3600}, now)
        n = 0
        while len(self.store.checks) < scale.get("uptime_checks", 0):
            n += 1
            self._add_check({"name": f"scale-check-{n:03d}", "target": f"https://scale-{n:03d}.learnhub.example",
                             "regions": ["us_east", "eu_west"]}, now)
        n = 0
        while len(self.store.alert_policies) < scale.get("alert_policies", 0):
            n += 1
            self._add_alert_policy({"type": "v1/dbaas/alerts/cpu_alerts", "entity": "database:learnhub-db",
                                    "compare": "GreaterThan", "value": 70 + n % 25, "window": "5m",
                                    "description": f"scale policy {n:03d}"}, len(self.store.alert_policies))

    def _add_cluster_from_scenario(self, spec: dict[str, Any], now: float) -> Cluster:
        created = now - float(spec.get("age_days", 120)) * 86400
        c = Cluster(
            id=spec.get("id") or self.store.new_id("database", spec["name"]), name=spec["name"],
            engine=spec.get("engine", "pg"), version=str(spec.get("version", "16")),
            region=spec.get("region", "nyc3"), size=spec.get("size", "db-s-1vcpu-1gb"),
            num_nodes=int(spec.get("num_nodes", 1)), storage_size_mib=int(spec.get("storage_size_mib", 10240)),
            created_at=created, ready_at=created, db_names=list(spec.get("db_names", ["defaultdb"])),
            users=list(spec.get("users", ["doadmin"])), tags=list(spec.get("tags", [])),
            eviction_policy=spec.get("eviction_policy"), backup_hour=int(spec.get("backup_hour", 2)),
            private_network_uuid=self.store.vpc_uuid, project_id=self.store.project_id,
        )
        if c.engine in REDIS_ENGINES:
            c.eviction_policy = c.eviction_policy or "noeviction"
            c.db_names, c.users = [], ["default"]
        mw = spec.get("maintenance_window") or {"day": "tuesday", "hour": "04:00:00"}
        c.maintenance = {"day": mw["day"], "hour": str(mw["hour"]), "pending": bool(mw.get("pending", False)),
                         "description": list(mw.get("description", []))}
        c.firewall = [self.databases.firewall_rule(c.id, r, created) for r in spec.get("firewall", [])]
        c.pools = [dict(p) for p in spec.get("pools", [])]
        c.add_event("cluster_create", created)
        for r in spec.get("replicas", []):
            rid = r.get("id") or self.store.new_id("replica", f"{c.name}/{r['name']}")
            c.replicas[r["name"]] = Replica(rid, r["name"], r.get("region", c.region), r.get("size", c.size),
                                            created + 3600, created + 3600, c.storage_size_mib,
                                            list(r.get("tags", [])))
        self.store.clusters[c.id] = c
        return c

    def _add_cdn_endpoint(self, spec: dict[str, Any], now: float) -> dict[str, Any]:
        origin = spec["origin"]
        ep = {
            "id": spec.get("id") or self.store.new_id("cdn", origin), "origin": origin,
            "endpoint": origin.replace(".digitaloceanspaces.com", ".cdn.digitaloceanspaces.com"),
            "created_at": iso(now - 60 * 86400), "ttl": int(spec.get("ttl", 3600)),
        }
        if spec.get("custom_domain"):
            ep["custom_domain"] = spec["custom_domain"]
            ep["certificate_id"] = spec.get("certificate_id") or self.store.new_id("cert", spec["custom_domain"])
        self.store.cdn_endpoints[ep["id"]] = ep
        return ep

    def _app_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        name = spec["name"]
        repo = str(spec.get("repo") or f"learnhub/{name}")  # a standby copy deploys its primary's repository
        out: dict[str, Any] = {"name": name, "region": spec.get("region", "nyc")}
        services = []
        for s in spec.get("services", []):
            svc: dict[str, Any] = {
                "name": s["name"], "instance_count": int(s.get("instance_count", 1)),
                "instance_size_slug": s.get("instance_size_slug", "apps-s-1vcpu-1gb"),
                "http_port": int(s.get("http_port", 8080)), "environment_slug": s.get("environment_slug", "node-js"),
                "github": {"repo": repo, "branch": "main", "deploy_on_push": True},
                "health_check": {"http_path": s.get("health_path", "/health")},
            }
            services.append(svc)
        if services:
            out["services"] = services
        sites = []
        for s in spec.get("static_sites", []):
            sites.append({"name": s["name"], "build_command": "npm run build", "output_dir": "dist",
                          "github": {"repo": repo, "branch": "main", "deploy_on_push": True}})
        if sites:
            out["static_sites"] = sites
        rules = []
        for s in [*spec.get("services", []), *spec.get("static_sites", [])]:
            rules.append({"component": {"name": s["name"]},
                          "match": {"path": {"prefix": s.get("route", "/" + s["name"])}}})
        out["ingress"] = {"rules": rules}
        if spec.get("alerts"):
            # App-level alert rules live in the app spec (as on DigitalOcean), so a list call carries them.
            out["alerts"] = [{"rule": rule, "disabled": False} for rule in spec["alerts"]]
        return out

    def _add_app(self, spec: dict[str, Any], now: float) -> App:
        app_id = spec.get("id") or self.store.new_id("app", spec["name"])
        created = now - 200 * 86400
        app_spec = self._app_spec(spec)
        app = App(app_id, spec["name"], spec.get("region", "nyc"), app_spec, created, now - 86400)
        count = max(1, int(spec.get("deployments", 3)))
        for i in range(count):
            ts = now - (count - i) * 3 * 86400
            app.deployments.append(Deployment(
                self.store.new_id("deployment", f"{app.name}/{i}"), ts,
                f"commit {hashlib.sha1(f'{app.name}{i}'.encode()).hexdigest()[:7]} pushed to github/learnhub/"
                f"{app.name}", dict(app_spec)))
        for rule in spec.get("alerts", []):
            app.alerts.append({
                "id": self.store.new_id("app-alert", f"{app.name}/{rule}"), "phase": "ACTIVE",
                "spec": {"rule": rule, "disabled": False, "operator": "GREATER_THAN" if "UTIL" in rule else
                         "UNSPECIFIED_OPERATOR", "value": 80 if "UTIL" in rule else 0,
                         "window": "FIVE_MINUTES" if "UTIL" in rule else "UNSPECIFIED_WINDOW"},
                "emails": [self.store.account.get("email", "sre@learnhub.example")], "slack_webhooks": [],
            })
        self.store.apps[app.id] = app
        return app

    def _add_namespace(self, spec: dict[str, Any], now: float) -> None:
        nid = spec.get("uuid") or self.store.new_id("fn-namespace", spec["label"])
        ns_name = f"fn-{nid}"
        region = spec.get("region", "nyc1")
        ns = {
            "api_host": f"https://faas-{region}-{nid[:8]}.doserverless.co", "uuid": nid, "namespace": ns_name,
            "label": spec["label"], "region": region, "key": f"dof_v1_{hashlib.sha1(nid.encode()).hexdigest()[:24]}",
            "created_at": iso(now - 100 * 86400), "updated_at": iso(now - 10 * 86400), "triggers": {},
        }
        for t in spec.get("triggers", []):
            ns["triggers"][t["name"]] = {
                "name": t["name"], "function": t["function"], "cron": t["cron"],
                "is_enabled": bool(t.get("enabled", True)), "last_run_ago": t.get("last_run_ago"),
                "created_at": iso(now - 100 * 86400), "updated_at": iso(now - 10 * 86400),
            }
        self.store.namespaces[ns_name] = ns

    def _add_lb(self, spec: dict[str, Any], now: float) -> None:
        lb_id = spec.get("id") or self.store.new_id("lb", spec["name"])
        lb: dict[str, Any] = {
            "id": lb_id, "name": spec["name"], "ip": spec.get("ip", "203.0.113.10"), "ipv6": "",
            "size_unit": 1, "status": "active", "created_at": iso(now - 150 * 86400), "algorithm": "round_robin",
            "forwarding_rules": [
                {"entry_protocol": "https", "entry_port": 443, "target_protocol": "http", "target_port": 8080,
                 "certificate_id": self.store.new_id("cert", spec["name"]), "tls_passthrough": False},
                {"entry_protocol": "http", "entry_port": 80, "target_protocol": "http", "target_port": 8080,
                 "certificate_id": "", "tls_passthrough": False},
            ],
            "health_check": {"protocol": "http", "port": 8080, "path": "/health", "check_interval_seconds": 10,
                             "response_timeout_seconds": 5, "healthy_threshold": 3, "unhealthy_threshold": 5},
            "sticky_sessions": {"type": "none"}, "redirect_http_to_https": True, "enable_proxy_protocol": False,
            "enable_backend_keepalive": False, "http_idle_timeout_seconds": 60, "vpc_uuid": self.store.vpc_uuid,
            "project_id": self.store.project_id, "disable_lets_encrypt_dns_records": False,
            "firewall": {"allow": [], "deny": []}, "network": "EXTERNAL", "network_stack": "IPV4",
            "type": "REGIONAL", "tls_cipher_policy": "DEFAULT",
            "region": region(spec.get("region", "nyc3")),
            "tag": spec.get("tag", ""), "droplet_ids": [],
        }
        self.store.load_balancers[lb_id] = lb

    def _resolve_entity(self, ref: str) -> str:
        kind, _, name = ref.partition(":")
        if kind == "database":
            c = self.store.find_cluster_by_name(name)
            return c.id if c else name
        if kind == "load_balancer":
            for lb in self.store.load_balancers.values():
                if lb["name"] == name:
                    return str(lb["id"])
        if kind == "app":
            a = self.store.find_app_by_name(name)
            return a.id if a else name
        return ref

    def _add_alert_policy(self, spec: dict[str, Any], index: int) -> None:
        entity = self._resolve_entity(str(spec.get("entity", "")))
        pid = spec.get("uuid") or self.store.new_id("alert-policy", f"{index}/{spec['type']}/{entity}")
        what = str(spec["type"]).rsplit("/", 1)[-1].replace("_", " ")
        name = str(spec.get("entity", "")).partition(":")[2]
        self.store.alert_policies[pid] = {
            "uuid": pid, "type": spec["type"],
            "description": spec.get("description") or f"{name}: {what} {spec['compare']} {spec['value']}",
            "compare": spec["compare"], "value": float(spec["value"]), "window": spec.get("window", "5m"),
            "entities": [entity] if entity else [], "tags": list(spec.get("tags", ["learnhub"])),
            "alerts": {"email": [self.store.account["email"]], "slack": []},
            "enabled": bool(spec.get("enabled", True)),
        }

    def _resolve_target(self, target: str) -> tuple[str, str | None]:
        if target.startswith("app:"):
            name = target[4:]
            app = self.store.find_app_by_name(name)
            return (self.app_platform.live_url(app) if app else f"https://{name}.ondigitalocean.app"), name
        return target, None

    def _add_check(self, spec: dict[str, Any], now: float) -> None:
        target, app_name = self._resolve_target(str(spec["target"]))
        if spec.get("path"):
            target = target.rstrip("/") + str(spec["path"])
        cid = spec.get("id") or self.store.new_id("uptime", spec["name"])
        check = Check(cid, spec["name"], spec.get("type", "https" if target.startswith("https") else "http"),
                      target, list(spec.get("regions", ["us_east", "eu_west"])), bool(spec.get("enabled", True)),
                      app_name, now - 90 * 86400)
        for a in spec.get("alerts") or [{"type": "down_global", "period": "2m"},
                                          {"type": "latency", "threshold": 1000, "period": "5m"}]:
            aid = self.store.new_id("uptime-alert", f"{cid}/{a['type']}")
            check.alerts[aid] = {
                "id": aid, "name": a.get("name", f"{check.name} {a['type']}"), "type": a["type"],
                "threshold": int(a.get("threshold", 0)), "comparison": a.get("comparison", "greater_than"),
                "notifications": {"email": [self.store.account["email"]], "slack": []},
                "period": a.get("period", "2m"),
            }
        self.store.checks[cid] = check

    def _add_domain(self, spec: dict[str, Any], now: float) -> None:
        name = spec["name"]
        records = []
        base = [
            {"type": "NS", "name": "@", "data": "ns1.digitalocean.com", "ttl": 1800},
            {"type": "NS", "name": "@", "data": "ns2.digitalocean.com", "ttl": 1800},
            {"type": "NS", "name": "@", "data": "ns3.digitalocean.com", "ttl": 1800},
            {"type": "SOA", "name": "@", "data": "1800", "ttl": 1800},
        ]
        for i, r in enumerate([*base, *spec.get("records", [])]):
            data = str(r["data"])
            if data.startswith("app:"):
                app = self.store.find_app_by_name(data[4:])
                data = f"{app.hostname}." if app else data[4:]
            elif data.startswith("cdn:"):
                ep = next((e for e in self.store.cdn_endpoints.values() if e["origin"] == data[4:]), None)
                data = f"{ep['endpoint']}." if ep else data[4:]
            records.append({
                "id": int(r.get("id", 3_000_000 + int(hashlib.sha1(name.encode()).hexdigest()[:5], 16) + i)),
                "type": r["type"], "name": r["name"], "data": data, "priority": r.get("priority"),
                "port": r.get("port"), "ttl": int(r.get("ttl", 1800)), "weight": r.get("weight"),
                "flags": r.get("flags"), "tag": r.get("tag"),
            })
        # serial: the zone's last change as Unix time, as DigitalOcean numbers its SOA serials
        self.store.domains[name] = {"name": name, "ttl": int(spec.get("ttl", 1800)), "records": records,
                                    "serial": int(spec.get("serial", now))}
