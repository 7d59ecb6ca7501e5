"""The doops config file: platform inventory, thresholds, recovery objectives.

Secrets are never inline: the file names environment variables that hold them. The loader walks the YAML
node tree so every error names the file, the line and the key path.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doops.errors import ConfigError
from doops.units import parse_duration, parse_size

DEFAULT_CONFIG_NAME = "doops.yaml"
MAX_API_URL_LENGTH = 2048


def api_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an API endpoint (one line, never the whole value), or None when it can.

    Why: a 100 kB URL reached httpx and came back as ``internal error: InvalidURL``; whitespace or a control
    character would end up in the request line. Shared by --api-url, DIGITALOCEAN_API_URL and ``api_url``.
    """
    from urllib.parse import urlsplit

    if len(url) > MAX_API_URL_LENGTH:
        return f"API URL is {len(url)} characters long (at most {MAX_API_URL_LENGTH})"
    bad = next((i for i, ch in enumerate(url) if not "\x21" <= ch <= "\x7e"), None)
    if bad is not None:
        return f"API URL contains whitespace, a control or non-ASCII character (character {bad + 1})"
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError for a port that is not a number or out of range
    except ValueError as exc:
        return f"invalid API URL {shorten(url)}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"invalid API URL {shorten(url)}: expected http(s)://host[:port]"
    return None


def shorten(text: str, limit: int = 80) -> str:
    """A value quoted in an error, cut so that one bad input cannot make a screenful."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "doops" / DEFAULT_CONFIG_NAME


class Duration(float):
    """Seconds; written in files as 90s, 2m, 1h."""


class Size(int):
    """Bytes; written in files as 1MiB, 512kB."""


@dataclass
class Objectives:
    """Recovery objectives of PLATFORM.md; drills and failovers are judged against them."""

    compute_rto: Duration = Duration(300)
    database_rto: Duration = Duration(120)
    database_rpo: Duration = Duration(60)  # how far before the asked point a point-in-time restore may land
    storage_rpo: Duration = Duration(60)
    dns_rto: Duration = Duration(60)


@dataclass
class Thresholds:
    replica_lag_bytes: Size = Size(1024 * 1024)
    replica_lag_seconds: Duration = Duration(5)
    backup_max_age: Duration = Duration(86400)
    deployment_stuck_after: Duration = Duration(900)
    connection_usage_warn: float = 0.8
    connection_usage_crit: float = 0.95
    http_timeout: Duration = Duration(5)
    default_health_path: str = "/healthz"  # probed on the live URL of apps the config does not name
    pool_usage_warn: float = 0.8  # PgBouncer server connections busy / pool size
    cache_ping_warn: Duration = Duration(0.1)  # one PING round trip to the cache
    cache_memory_warn: float = 0.8  # used_memory / maxmemory
    cache_memory_crit: float = 0.95
    cache_clients_warn: float = 0.8  # connected_clients / maxclients


@dataclass
class DatabaseConfig:
    name: str
    database: str = "defaultdb"
    user: str | None = None
    password_env: str | None = None  # env var with the password; default: the API's connection object
    sslmode: str = "auto"  # verify-full with the cluster's CA when the API gives one, else require
    heartbeat_table: str | None = None
    replicas: list[str] = field(default_factory=list)

    def password(self) -> str | None:
        """The password from the env var the config names; None: use the API's connection object."""
        return env(self.password_env) if self.password_env else None


@dataclass
class CacheConfig:
    name: str
    eviction_policy: str | None = None


@dataclass
class AppConfig:
    name: str
    health_path: str = "/healthz"


@dataclass
class FunctionsConfig:
    namespace: str


@dataclass
class BucketConfig:
    name: str
    region: str = "nyc3"
    replica: str | None = None
    replica_region: str | None = None
    replication_allowance: Duration = Duration(60)
    lifecycle_prefixes: list[str] = field(default_factory=list)
    compare_limit: int = 1000


@dataclass
class SpacesConfig:
    endpoint_url: str | None = None  # default https://{region}.digitaloceanspaces.com
    access_key_env: str = "SPACES_ACCESS_KEY_ID"
    secret_key_env: str = "SPACES_SECRET_ACCESS_KEY"
    buckets: list[BucketConfig] = field(default_factory=list)

    def endpoint(self, region: str) -> str:
        return self.endpoint_url or env("AWS_ENDPOINT_URL_S3") or f"https://{region}.digitaloceanspaces.com"

    def credentials(self) -> tuple[str | None, str | None]:
        return env(self.access_key_env), env(self.secret_key_env)


@dataclass
class CachePolicy:
    prefix: str
    max_age: Duration


@dataclass
class CdnConfig:
    origin: str
    bucket: str | None = None
    endpoint_url: str | None = None  # where to fetch sampled objects through the CDN
    sample_paths: list[str] = field(default_factory=list)
    cache_policy: list[CachePolicy] = field(default_factory=list)


@dataclass
class SloQuery:
    name: str
    query: str
    max: float | None = None
    min: float | None = None


@dataclass
class PrometheusConfig:
    url: str | None = None
    url_env: str = "PROMETHEUS_URL"
    slo_queries: list[SloQuery] = field(default_factory=list)

    def resolved_url(self) -> str | None:
        return self.url or env(self.url_env) or None


DIGITALOCEAN_NAMESERVERS = ("ns1.digitalocean.com", "ns2.digitalocean.com", "ns3.digitalocean.com")
DNS_PORT = 53


def nameserver_problem(value: str) -> str | None:
    """Why ``value`` is not a name server address ``host[:port]`` (``[v6]:port`` for IPv6), or None."""
    import ipaddress
    import re

    host, port = value, ""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return f"{shorten(value)} is not host[:port] ([IPv6]:port for IPv6)"
        port = rest[1:]
        if rest == ":":
            return f"{shorten(value)} has no port after ':'"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{shorten(host)} in brackets is not an IPv6 address"
    elif value.count(":") == 1:
        host, port = value.split(":")
        if not port:
            return f"{shorten(value)} has no port after ':'"
    elif ":" in value:
        try:
            ipaddress.IPv6Address(value)
            return None
        except ValueError:
            return f"{shorten(value)} is not host[:port] ([IPv6]:port for IPv6)"
    if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
        return f"port {shorten(port)} is not a number from 1 to 65535"
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if not value.startswith("[") and not re.fullmatch(rf"{label}(\.{label})*\.?", host):
        return f"{shorten(host)} is not a host name or IP address"
    return None


@dataclass
class DnsRecordConfig:
    """A record that fronts an app: ``doops failover app`` repoints it, ``doops dns check`` judges it."""

    domain: str
    name: str  # relative to the domain, "@" for the apex
    type: str = "CNAME"
    app: str | None = None  # the app the record normally points at


@dataclass
class DnsConfig:
    """Where to ask DNS questions: the zone's authoritative name servers, never a caching resolver, so a change
    is seen as soon as DigitalOcean serves it. ``host[:port]``, port 53 by default."""

    nameservers: list[str] = field(default_factory=lambda: list(DIGITALOCEAN_NAMESERVERS))
    failover_records: list[DnsRecordConfig] = field(default_factory=list)

    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each name server (host without IPv6 brackets)."""
        out: list[tuple[str, int]] = []
        for ns in self.nameservers:
            if ns.startswith("["):
                host, _, rest = ns[1:].partition("]")
                out.append((host, int(rest[1:]) if rest else DNS_PORT))
            elif ns.count(":") == 1:
                host, port = ns.split(":")
                out.append((host, int(port)))
            else:
                out.append((ns, DNS_PORT))
        return out


def env(name: str) -> str | None:
    """The one reader of the environment for what the config points at (passwords, keys, URLs), so that
    operations and clients never reach into ``os.environ`` themselves."""
    return os.environ.get(name) or None


@dataclass
class RunbooksConfig:
    """Where `doops runbook list` looks besides the current directory's ``runbooks/`` (relative paths are
    relative to the config file)."""

    paths: list[str] = field(default_factory=list)


@dataclass
class TlsConfig:
    """Where `doops assess` checks TLS when an app's live URL is not where its TLS is served (the sandbox serves
    HTTPS on ports of its own), and a CA those checks trust besides the system's (the sandbox's). Empty in
    production: App Platform live URLs are https and their certificates publicly trusted."""

    ca_file: str | None = None
    urls: dict[str, str] = field(default_factory=dict)  # app name -> https URL to check instead of its live URL


DEFAULT_DRILL_HISTORY_URL_ENV = "DOOPS_DRILL_HISTORY_URL"


@dataclass
class DrillSchedule:
    """One scheduled drill: a runbook (its ``name:`` or its file), its inputs, when it runs (five-field cron,
    UTC) and overrides of the runbook's objective targets (``rto: 10m``)."""

    runbook: str
    cron: str
    inputs: dict[str, Any] = field(default_factory=dict)
    objectives: dict[str, Duration] = field(default_factory=dict)


@dataclass
class DrillsConfig:
    """Where drill history lives and what is scheduled (docs/drills.md).

    ``history_url``: ``postgresql://user@host/db`` (password from ``PGPASSWORD``/``~/.pgpass``, or the whole
    URL in the env var ``history_url_env`` names: secrets are never inline), ``sqlite:///path`` or a path;
    default SQLite in ``$XDG_STATE_HOME/doops/drills.db``.
    """

    history_url: str | None = None
    history_url_env: str = DEFAULT_DRILL_HISTORY_URL_ENV
    pushgateway_url: str | None = None
    schedules: list[DrillSchedule] = field(default_factory=list)

    def resolved_history_url(self) -> str | None:
        return self.history_url or env(self.history_url_env) or None

    def schedule(self, runbook: str) -> DrillSchedule | None:
        return next((s for s in self.schedules if s.runbook == runbook), None)


@dataclass
class DatabasesSection:
    primary: str | None = None
    clusters: list[DatabaseConfig] = field(default_factory=list)
    caches: list[CacheConfig] = field(default_factory=list)


@dataclass
class Config:
    """The whole file. Anything not named is discovered from the API (optionally filtered by tag)."""

    api_url: str | None = None
    discover_tag: str | None = None
    objectives: Objectives = field(default_factory=Objectives)
    thresholds: Thresholds = field(default_factory=Thresholds)
    databases: DatabasesSection = field(default_factory=DatabasesSection)
    apps: list[AppConfig] = field(default_factory=list)
    functions: list[FunctionsConfig] = field(default_factory=list)
    spaces: SpacesConfig = field(default_factory=SpacesConfig)
    cdn: list[CdnConfig] = field(default_factory=list)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    runbooks: RunbooksConfig = field(default_factory=RunbooksConfig)
    drills: DrillsConfig = field(default_factory=DrillsConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    source: str | None = None  # path it was read from, None for built-in defaults

    def database(self, name: str | None = None) -> DatabaseConfig | None:
        wanted = name or self.databases.primary
        for db in self.databases.clusters:
            if db.name == wanted:
                return db
        return None


def load_config(path: str | os.PathLike[str] | None, *, explicit: bool) -> Config:
    """Read the config. A missing default file gives defaults; a missing explicit file is an error."""
    p = Path(path) if path else default_config_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"config file {p} not found", hint="check --config / DOOPS_CONFIG, or remove it")
        return Config()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    cfg = parse_config(text, str(p))
    cfg.source = str(p)
    return cfg


def parse_config(text: str, filename: str = "<config>") -> Config:
    import yaml

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when built in
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{filename}{line}: invalid YAML: {problem}", hint="fix the YAML syntax") from exc
    if node is None:
        return Config()
    cfg = typing.cast(Config, _build(Config, node, filename, ""))
    if cfg.api_url is not None:
        problem = api_url_problem(cfg.api_url)
        if problem:
            key_node = next((k for k, _ in node.value if k.value == "api_url"), None)
            raise _err(filename, key_node, "api_url", problem, hint="use https://host[:port]")
    _check_nameservers(cfg, node, filename)
    _check_drills(cfg, node, filename)
    return cfg


def _child(node: Any, key: str) -> Any:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if k.value == key), None)


def _check_nameservers(cfg: Config, root: Any, filename: str) -> None:
    """Every ``dns.nameservers`` entry is host[:port]; at least one when the key is given."""
    seq = _child(_child(root, "dns"), "nameservers")
    if seq is None:
        return
    if not cfg.dns.nameservers:
        raise _err(filename, seq, "dns.nameservers", "empty list", hint="name at least one name server, "
                   "or leave the key out for DigitalOcean's ns1/ns2/ns3.digitalocean.com")
    for i, (value, item) in enumerate(zip(cfg.dns.nameservers, seq.value, strict=True)):
        problem = nameserver_problem(value)
        if problem:
            raise _err(filename, item, f"dns.nameservers[{i}]", problem,
                       hint="write host or host:port, e.g. ns1.digitalocean.com or 127.0.0.1:5353")


def cron_problem(expr: str) -> str | None:
    """Why ``expr`` is not a five-field cron expression every schedule target accepts, or None.

    Five fields only: croniter also takes a sixth (seconds) and ``@weekly``, which crontab, systemd, a
    Kubernetes CronJob and GitHub Actions do not all understand the same way.
    """
    from croniter import croniter

    fields = expr.split()
    if len(fields) != 5:
        return f"cron expression {shorten(expr)} has {len(fields)} fields (expected 5)"
    try:
        croniter(expr)
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        return f"invalid cron expression {shorten(expr)}: {exc}"
    return None


def history_url_problem(url: str) -> str | None:
    """Why ``url`` cannot name a drill history store, or None: ``postgresql://``/``postgres://``,
    ``sqlite:///path`` or a plain file path."""
    from urllib.parse import urlsplit

    if not url.strip():
        return "empty history URL"
    if len(url) > MAX_API_URL_LENGTH:
        return f"history URL is {len(url)} characters long (at most {MAX_API_URL_LENGTH})"
    if any(not ch.isprintable() for ch in url):
        return "history URL contains a control character"
    if "://" not in url:  # a file path: SQLite
        return "sqlite: URL without a file path" if not url.removeprefix("sqlite:").strip() else None
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        return None if url.split("://", 1)[1].strip("/") else "sqlite:// URL without a file path"
    if scheme not in ("postgresql", "postgres"):
        return f"unsupported history URL scheme {shorten(scheme)} (postgresql:// or sqlite:///path)"
    try:
        _ = urlsplit(url).port
    except ValueError as exc:
        return f"invalid PostgreSQL URL: {exc}"
    return None


def _check_drills(cfg: Config, root: Any, filename: str) -> None:
    """``drills``: the history URL is one doops can open and holds no password (the file names env vars
    for secrets); every schedule's cron expression parses; a runbook is scheduled once."""
    section = _child(root, "drills")
    if section is None:
        return
    url = cfg.drills.history_url
    if url is not None:
        from urllib.parse import urlsplit

        key = _child(section, "history_url")
        problem = history_url_problem(url)
        if problem:
            raise _err(filename, key, "drills.history_url", problem,
                       hint="write postgresql://user@host:5432/db or sqlite:///path/drills.db")
        if "://" in url and url.split("://", 1)[0].lower().startswith("postgres") and urlsplit(url).password:
            raise _err(filename, key, "drills.history_url", "the URL holds a password (secrets are never inline)",
                       hint=f"drop the password and set PGPASSWORD or ~/.pgpass, or put the whole URL in "
                            f"${cfg.drills.history_url_env} (drills.history_url_env)")
    seq = _child(section, "schedules")
    seen: set[str] = set()
    for i, sched in enumerate(cfg.drills.schedules):
        item = seq.value[i] if seq is not None else None
        problem = cron_problem(sched.cron)
        if problem:
            raise _err(filename, _child(item, "cron") or item, f"drills.schedules[{i}].cron", problem,
                       hint="five fields: minute hour day-of-month month day-of-week (UTC), e.g. '0 3 * * 1'")
        if not sched.runbook.strip():
            raise _err(filename, _child(item, "runbook") or item, f"drills.schedules[{i}].runbook",
                       "empty runbook", hint="name the runbook (its name: or its file)")
        if sched.runbook in seen:
            raise _err(filename, _child(item, "runbook") or item, f"drills.schedules[{i}].runbook",
                       f"runbook {shorten(sched.runbook)} is scheduled twice",
                       hint="one schedule per runbook: history, due and metrics are kept by runbook")
        seen.add(sched.runbook)


def _err(filename: str, node: Any, key: str, problem: str, hint: str | None = None) -> ConfigError:
    line = node.start_mark.line + 1 if node is not None else 0
    where = f"{filename}:{line}" if line else filename
    return ConfigError(f"{where}: key '{key or '<root>'}': {problem}", hint=hint)


def _plain(node: Any) -> Any:
    """The plain value of a composed node (the safe constructor, without serializing and parsing again)."""
    from yaml.constructor import SafeConstructor

    return SafeConstructor().construct_document(node)


def _build(tp: Any, node: Any, filename: str, key: str) -> Any:
    import yaml

    if tp is Any:  # free-form values (drill inputs): plain YAML data
        return _plain(node)
    origin = typing.get_origin(tp)
    if origin is dict:
        _, value_tp = typing.get_args(tp)
        if not isinstance(node, yaml.MappingNode):
            raise _err(filename, node, key, "expected a mapping")
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise _err(filename, knode, key, "expected a plain key")
            out[str(knode.value)] = _build(value_tp, vnode, filename, f"{key}.{knode.value}")
        return out
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return None
        return _build(args[0], node, filename, key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(node, yaml.SequenceNode):
            raise _err(filename, node, key, "expected a list")
        return [_build(item_tp, item, filename, f"{key}[{i}]") for i, item in enumerate(node.value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(node, yaml.MappingNode):
            raise _err(filename, node, key, "expected a mapping")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.name != "source"}
        kwargs: dict[str, Any] = {}
        for knode, vnode in node.value:
            name = knode.value
            sub = f"{key}.{name}" if key else name
            if name not in fields:
                raise _err(filename, knode, sub, "unknown key", hint="valid keys: " + ", ".join(fields))
            kwargs[name] = _build(hints[name], vnode, filename, sub)
        missing = [
            n for n, f in fields.items()
            if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise _err(filename, node, key, f"missing required key '{missing[0]}'")
        return typing.cast(Any, tp)(**kwargs)
    if not isinstance(node, yaml.ScalarNode):
        raise _err(filename, node, key, f"expected a {getattr(tp, '__name__', tp)} value")
    value = _plain(node)
    try:
        if tp is Duration:
            return Duration(parse_duration(value))
        if tp is Size:
            return Size(parse_size(value))
        if tp is bool:
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, got {value!r}")
            return float(value)
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
            return value
        if tp is str:
            if value is None or isinstance(value, dict | list):
                raise ValueError("expected a string")
            return str(value)
    except ValueError as exc:
        raise _err(filename, node, key, str(exc)) from exc
    return value
