"""The DigitalOcean client: the only code that touches pydo.

It turns pydo's mixed return-or-raise behaviour into one contract: a call returns the parsed body of a
2xx answer or raises a doops ApiError carrying DigitalOcean's ``id``, ``message`` and ``request_id``.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from doops.clients.http import ResilientHttp
from doops.clients.models import (
    Account,
    AlertPolicy,
    App,
    AppDeployment,
    AppEndpoint,
    AppInfo,
    CdnEndpoint,
    ComponentHealth,
    ConnectionPool,
    DatabaseBackup,
    DatabaseCluster,
    DatabaseEvent,
    DatabaseReplica,
    Deployment,
    DomainRecord,
    FunctionsNamespace,
    RollbackCheck,
    Trigger,
    UptimeCheck,
)
from doops.errors import ApiError, ApiUnavailable, ApiUnreachable, UsageError, api_error_for

if TYPE_CHECKING:
    from doops.clients.posture import AppPosture, ClusterPosture, FirewallRule, SpacesKey

DEFAULT_API_URL = "https://api.digitalocean.com"
PER_PAGE = 200
MAX_PAGES = 10_000


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str) -> tuple[str, bool]:
    """Validate an endpoint override; returns (url, enforce_https). http:// only for loopback hosts.

    Errors are one line and quote at most the start of the URL (see ``config.api_url_problem``).
    """
    from doops.config import api_url_problem, shorten

    problem = api_url_problem(url)
    if problem:
        raise UsageError(problem, hint="set --api-url, DIGITALOCEAN_API_URL or api_url in the config to "
                                       "https://host[:port] (http:// only for 127.0.0.1)")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http":
        if not is_loopback_host(host):
            raise UsageError(
                f"refusing plain http:// API URL for non-loopback host {shorten(host)}: the token would "
                "travel unencrypted",
                hint="use https://, or http://127.0.0.1:PORT for a local twin",
            )
        return url.rstrip("/"), False
    return url.rstrip("/"), True


def _one_line(text: str, limit: int = 300) -> str:
    """Error text from elsewhere, made safe for our one-line errors: no newlines, bounded length."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _status_line(resp: Any, status: int) -> str:
    """``Request Header Fields Too Large (text/html body not shown)``: all a non-JSON answer may say."""
    reason = str(getattr(resp, "reason", "") or "") if resp is not None else ""
    if not reason:
        from http import HTTPStatus

        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    text = _one_line(reason, 80) or "no error message"
    ctype = ""
    if resp is not None:
        ctype = str(resp.headers.get("content-type") or "").split(";")[0].strip()
    if ctype and ctype != "application/json":
        text += f" ({_one_line(ctype, 60)} body not shown)"
    return text


class ApiRateLimited(ApiUnavailable):
    """A 429 that outlasted the HTTP client's own retries; ``retry_after``: the seconds the server asked for
    (``retry-after`` or until ``ratelimit-reset``), so an operation that paces itself (CDN purges) can wait
    exactly that long and send the same request again."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after
        self.hint = "DigitalOcean is rate limiting; retry later"


class DOClient:
    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, http: ResilientHttp | None = None) -> None:
        self.api_url, self._enforce_https = check_api_url(api_url)
        self._token = token
        self.http = http or ResilientHttp()
        self._pydo: Any = None
        self._lock = threading.Lock()

    @property
    def request_count(self) -> int:
        return self.http.stats.count

    def _client(self) -> Any:
        with self._lock:
            if self._pydo is None:
                import pydo
                from azure.core.pipeline.policies import RetryPolicy
                from pydo._patch import TokenCredentials

                from doops.clients.transport import HttpxTransport

                # pydo's generated client: every operation group doops calls, with the User-Agent pydo.Client
                # sends. pydo.Client adds the inference, agents and gateway surfaces on top (34 more modules
                # imported on a cold start) that doops never uses.
                self._pydo = pydo.GeneratedClient(
                    TokenCredentials(self._token),
                    endpoint=self.api_url,
                    timeout=120,
                    sdk_moniker=f"pydo/{pydo.__version__}",
                    transport=HttpxTransport(self.http),
                    retry_policy=RetryPolicy(retry_total=0),  # retries live in ResilientHttp
                )
            return self._pydo

    def prepare(self) -> None:
        """Import pydo and build its client now (the first call would otherwise): a cold ``doops status``
        does it before anything else so that its first requests leave before the other libraries load."""
        self._client()

    def call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """Run pydo operation ``group.method``; 2xx body back, anything else raised as ApiError."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        group, name = op.split(".", 1)
        fn: Callable[..., Any] = getattr(getattr(self._client(), group), name)

        def keep_status(pipeline_response: Any, deserialized: Any, headers: Any) -> tuple[int, Any, Any]:
            return pipeline_response.http_response.status_code, deserialized, pipeline_response.http_response

        if not self._enforce_https:
            kwargs["enforce_https"] = False  # azure-core reads it per request; only loopback gets here
        try:
            status, body, resp = fn(*args, cls=keep_status, **kwargs)
        except HttpResponseError as exc:
            raise self._error_from_response(exc.response, exc) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ApiUnreachable(
                f"cannot reach the DigitalOcean API at {self.api_url}: {_one_line(str(exc))}") from None
        if status >= 400:
            raise self._error_from_response(resp, None)
        return body

    def _error_from_response(self, resp: Any, exc: Exception | None) -> ApiError:
        """One line from DigitalOcean's JSON error; for any other body (an HTML 431 page from the edge, a
        proxy's text) only the status, its reason and what kind of body it was: never the body itself."""
        status = int(getattr(resp, "status_code", 0) or 0)
        body: Any = None
        try:
            body = json.loads(resp.text()) if resp is not None else None
        except (ValueError, TypeError, AttributeError):
            body = None
        error_id = body.get("id") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if resp is not None and not request_id:
            request_id = resp.headers.get("x-request-id")
        if not isinstance(message, str) or not message.strip():
            message = _status_line(resp, status)
        else:
            message = _one_line(message)
        method = path = ""
        req = getattr(resp, "request", None)
        if req is not None:
            method = str(getattr(req, "method", ""))
            path = urlsplit(str(getattr(req, "url", ""))).path
        if not isinstance(error_id, str):
            error_id = None
        if not isinstance(request_id, str):
            request_id = None
        if status == 429:
            return ApiRateLimited(status, error_id and _one_line(error_id, 80), message,
                                  request_id and _one_line(request_id, 80), method=method, path=_one_line(path, 120),
                                  retry_after=self._server_wait(resp))
        return api_error_for(status, error_id and _one_line(error_id, 80), message,
                             request_id and _one_line(request_id, 80), method=method, path=_one_line(path, 120))

    def _server_wait(self, resp: Any) -> float | None:
        """Seconds a 429 asks us to wait: ``retry-after``, else until ``ratelimit-reset`` (None: not said)."""
        from doops.clients.http import retry_after_seconds

        if resp is None:
            return None
        now = self.http.clock()
        wait = retry_after_seconds(resp.headers.get("retry-after"), now)
        if wait is None and resp.headers.get("ratelimit-reset"):
            try:
                wait = max(0.0, float(resp.headers["ratelimit-reset"]) - now)
            except ValueError:
                wait = None
        return wait

    def paginate(self, op: str, key: str, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list: per_page=200, following links.pages.next."""
        items: list[dict[str, Any]] = []
        page = 1
        for _ in range(MAX_PAGES):
            body = self.call(op, *args, per_page=PER_PAGE, page=page, **kwargs) or {}
            items.extend(body.get(key) or [])
            nxt = ((body.get("links") or {}).get("pages") or {}).get("next")
            if not nxt:
                break
            next_page = int(parse_qs(urlsplit(nxt).query).get("page", ["0"])[0] or 0)
            if next_page <= page:
                break  # a broken link must not loop forever
            page = next_page
        return items

    # Typed calls used by the services. Each converts pydo's dicts once, here.

    def account(self) -> Account:
        return Account.from_api(self.call("account.get"))

    def list_database_clusters(self, tag: str | None = None) -> list[DatabaseCluster]:
        body = self.call("databases.list_clusters", **({"tag_name": tag} if tag else {})) or {}
        return [DatabaseCluster.from_api(d) for d in body.get("databases") or []]

    def get_database_cluster(self, cluster_id: str) -> DatabaseCluster:
        return DatabaseCluster.from_api(self.call("databases.get_cluster", cluster_id)["database"])

    def list_replicas(self, cluster_id: str) -> list[DatabaseReplica]:
        body = self.call("databases.list_replicas", cluster_id) or {}
        return [DatabaseReplica.from_api(d) for d in body.get("replicas") or []]

    def list_backups(self, cluster_id: str) -> list[DatabaseBackup]:
        body = self.call("databases.list_backups", cluster_id) or {}
        return [DatabaseBackup.from_api(d) for d in body.get("backups") or []]

    def list_pools(self, cluster_id: str) -> list[ConnectionPool]:
        body = self.call("databases.list_connection_pools", cluster_id) or {}
        return [ConnectionPool.from_api(d) for d in body.get("pools") or []]

    def eviction_policy(self, cluster_id: str) -> str | None:
        body = self.call("databases.get_eviction_policy", cluster_id) or {}
        return body.get("eviction_policy")

    def database_ca(self, cluster_id: str) -> str:
        import base64

        body = self.call("databases.get_ca", cluster_id) or {}
        return base64.b64decode((body.get("ca") or {}).get("certificate") or "").decode()

    def list_apps(self) -> list[App]:
        return [App.from_api(d) for d in self.paginate("apps.list", "apps")]

    def app_health(self, app_id: str) -> list[ComponentHealth]:
        body = self.call("apps.get_health", app_id) or {}
        return [ComponentHealth.from_api(c) for c in (body.get("app_health") or {}).get("components") or []]

    def latest_deployment(self, app_id: str) -> Deployment | None:
        body = self.call("apps.list_deployments", app_id, per_page=1, page=1) or {}
        deployments = body.get("deployments") or []
        return Deployment.from_api(deployments[0]) if deployments else None

    # App Platform operations (`doops app`): find, follow, roll back, redeploy, restart.

    def find_app(self, name: str) -> AppInfo | None:
        """The app named ``name`` (or with that id), from GET /v2/apps (paginated); None when there is none."""
        for d in self.paginate("apps.list", "apps"):
            if (d.get("spec") or {}).get("name") == name or d.get("id") == name:
                return AppInfo.from_api(d)
        return None

    def get_app(self, app_id: str) -> AppInfo:
        """GET /v2/apps/{id}: the app now (pinned, in-progress and active deployments)."""
        return AppInfo.from_api(self.call("apps.get", app_id)["app"])

    def list_app_deployments(self, app_id: str, limit: int = 50) -> list[AppDeployment]:
        """GET /v2/apps/{id}/deployments, newest first: one page of up to ``limit`` (at most 200)."""
        body = self.call("apps.list_deployments", app_id, per_page=max(1, min(limit, PER_PAGE)), page=1) or {}
        return [AppDeployment.from_api(d) for d in body.get("deployments") or []]

    def get_app_deployment(self, app_id: str, deployment_id: str) -> AppDeployment:
        """GET /v2/apps/{id}/deployments/{deployment_id}."""
        return AppDeployment.from_api(self.call("apps.get_deployment", app_id, deployment_id)["deployment"])

    def validate_app_rollback(self, app_id: str, deployment_id: str) -> RollbackCheck:
        """POST .../rollback/validate: changes nothing; ``valid`` false carries the reason."""
        return RollbackCheck.from_api(self.call("apps.validate_rollback", app_id, {"deployment_id": deployment_id})
                                      or {})

    def rollback_app(self, app_id: str, deployment_id: str) -> AppDeployment:
        """POST .../rollback: a new deployment of the target's release; pins the app until commit or revert.
        Never retried on its own (a second would be refused while pinned): a re-run follows the pinned one."""
        body = self.call("apps.create_rollback", app_id, {"deployment_id": deployment_id, "skip_pin": False})
        return AppDeployment.from_api(body["deployment"])

    def commit_app_rollback(self, app_id: str) -> None:
        """POST .../rollback/commit (200, empty body): keep the rollback and unpin the app."""
        self.call("apps.commit_rollback", app_id)

    def revert_app_rollback(self, app_id: str) -> AppDeployment:
        """POST .../rollback/revert: a new deployment of the release before the rollback; unpins the app."""
        return AppDeployment.from_api(self.call("apps.revert_rollback", app_id)["deployment"])

    def create_app_deployment(self, app_id: str, force_build: bool = False) -> AppDeployment:
        """POST /v2/apps/{id}/deployments with ``force_build``."""
        body = self.call("apps.create_deployment", app_id, {"force_build": force_build})
        return AppDeployment.from_api(body["deployment"])

    def restart_app(self, app_id: str, components: list[str] | None = None) -> AppDeployment:
        """POST /v2/apps/{id}/restart: a rolling restart of ``components`` (every one when None)."""
        body = self.call("apps.restart", app_id, {"components": list(components)} if components else None)
        return AppDeployment.from_api(body["deployment"])

    def list_namespaces(self) -> list[FunctionsNamespace]:
        body = self.call("functions.list_namespaces") or {}
        return [FunctionsNamespace.from_api(d) for d in body.get("namespaces") or []]

    def list_triggers(self, namespace_id: str) -> list[Trigger]:
        body = self.call("functions.list_triggers", namespace_id) or {}
        return [Trigger.from_api(d) for d in body.get("triggers") or []]

    def list_uptime_checks(self) -> list[UptimeCheck]:
        return [UptimeCheck.from_api(d) for d in self.paginate("uptime.list_checks", "checks")]

    def uptime_state(self, check_id: str) -> dict[str, str]:
        """Region -> UP/DOWN."""
        body = self.call("uptime.get_check_state", check_id) or {}
        regions = (body.get("state") or {}).get("regions") or {}
        return {str(r): str((v or {}).get("status", "UNKNOWN")) for r, v in regions.items()}

    def list_alert_policies(self) -> list[AlertPolicy]:
        return [AlertPolicy.from_api(d) for d in self.paginate("monitoring.list_alert_policy", "policies")]

    def list_cdn_endpoints(self) -> list[CdnEndpoint]:
        return [CdnEndpoint.from_api(d) for d in self.paginate("cdn.list_endpoints", "endpoints")]

    def promote_replica(self, cluster_id: str, replica_name: str) -> None:
        """PUT .../replicas/{name}/promote (204). Never retried on its own: the caller verifies instead."""
        self.call("databases.promote_replica", cluster_id, replica_name)

    def list_database_events(self, cluster_id: str) -> list[DatabaseEvent]:
        """GET /v2/databases/{uuid}/events, newest first: how status learns that a replica was promoted."""
        body = self.call("databases.list_events_logs", cluster_id) or {}
        events = [DatabaseEvent.from_api(d) for d in body.get("events") or []]
        return sorted(events, key=lambda e: e.create_time.timestamp() if e.create_time else 0.0, reverse=True)

    def create_database_cluster(self, body: dict[str, Any]) -> DatabaseCluster:
        """POST /v2/databases (201), also a point-in-time restore with ``backup_restore``. Never retried on its
        own (a second create could make a second cluster): the caller finds the cluster by name instead."""
        return DatabaseCluster.from_api(self.call("databases.create_cluster", body)["database"])

    def delete_database_cluster(self, cluster_id: str) -> None:
        """DELETE /v2/databases/{uuid} (204)."""
        self.call("databases.destroy_cluster", cluster_id)

    def get_cdn_endpoint(self, cdn_id: str) -> CdnEndpoint:
        """GET /v2/cdn/endpoints/{cdn_id}: one endpoint by its id (one CDN call, whatever the account holds)."""
        return CdnEndpoint.from_api(self.call("cdn.get_endpoint", cdn_id)["endpoint"])

    def purge_cdn_cache(self, cdn_id: str, files: list[str]) -> None:
        """DELETE /v2/cdn/endpoints/{cdn_id}/cache with ``{"files": [...]}`` (204). DigitalOcean allows 50 file
        strings per 20 s per endpoint and 5 CDN calls per 10 s: the caller paces (``doops.ops.cdn``)."""
        self.call("cdn.purge_cache", cdn_id, {"files": list(files)})

    # DNS failover (`doops failover app`, `doops dns check`): domain records and where apps are reached.

    def list_domain_records(self, domain: str, name: str | None = None,
                            rtype: str | None = None) -> list[DomainRecord]:
        """GET /v2/domains/{domain}/records, filtered by the API: ``name`` is fully qualified
        (``api.example.com``), ``rtype`` one of A, CNAME... (paginated)."""
        filters: dict[str, Any] = {}
        if name:
            filters["name"] = name.rstrip(".")
        if rtype:
            filters["type"] = rtype.upper()
        return [DomainRecord.from_api(d) for d in self.paginate("domains.list_records", "domain_records", domain,
                                                               **filters)]

    def get_domain_record(self, domain: str, record_id: int) -> DomainRecord:
        """GET /v2/domains/{domain}/records/{id}."""
        return DomainRecord.from_api(self.call("domains.get_record", domain, record_id)["domain_record"])

    def update_domain_record(self, domain: str, record_id: int, body: dict[str, Any]) -> DomainRecord:
        """PUT /v2/domains/{domain}/records/{id}; ``type`` is required. Idempotent, but never retried blindly
        here: the caller reads the record back and verifies at the name servers instead."""
        return DomainRecord.from_api(self.call("domains.update_record", domain, record_id, body)["domain_record"])

    def list_app_endpoints(self) -> list[AppEndpoint]:
        """GET /v2/apps (paginated): every app's region, data centers, default ingress host and live URL."""
        return [AppEndpoint.from_api(d) for d in self.paginate("apps.list", "apps")]

    # `doops assess`: how each resource is deployed (clients/posture.py). Read-only calls, each in the spec.

    def database_clusters_posture(self, tag: str | None = None) -> list[tuple[DatabaseCluster, ClusterPosture]]:
        """GET /v2/databases once: each cluster as status sees it and its deployment (nodes, VPC, TLS, rules)."""
        from doops.clients.posture import ClusterPosture

        body = self.call("databases.list_clusters", **({"tag_name": tag} if tag else {})) or {}
        return [(DatabaseCluster.from_api(d), ClusterPosture.from_api(d)) for d in body.get("databases") or []]

    def database_firewall(self, cluster_id: str) -> list[FirewallRule]:
        """GET /v2/databases/{uuid}/firewall (databases_list_firewall_rules): the cluster's trusted sources."""
        from doops.clients.posture import FirewallRule

        body = self.call("databases.list_firewall_rules", cluster_id) or {}
        return [FirewallRule.from_api(r) for r in body.get("rules") or []]

    def apps_posture(self) -> list[tuple[App, AppPosture]]:
        """GET /v2/apps (paginated) once: each app as status sees it and its spec's instances and health checks."""
        from doops.clients.posture import AppPosture

        return [(App.from_api(d), AppPosture.from_api(d)) for d in self.paginate("apps.list", "apps")]

    def spaces_keys(self) -> list[SpacesKey]:
        """GET /v2/spaces/keys (paginated): every Spaces key's name and grants; secrets are never returned."""
        from doops.clients.posture import SpacesKey

        return [SpacesKey.from_api(d) for d in self.paginate("spaces_key.list", "keys")]
