"""Scenario: the description of the world the twin starts with (a YAML file).

The default scenario ships next to this package (``sandbox/default_scenario.yaml``). A user scenario is
merged onto it: settings maps (``durations``, ``limits``, ``tokens``, ``scale``, ``account``) key by key,
everything else (resource lists) replaced whole. That keeps small scenario files small.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULT_SCENARIO_PATH = Path(__file__).resolve().parent.parent / "default_scenario.yaml"
_MERGED_MAPS = ("durations", "limits", "tokens", "scale", "account")


@dataclass
class Durations:
    """How long state changes take, in seconds."""

    cluster_create: float = 0.3
    replica_create: float = 0.3
    deployment_phase: float = 0.3


@dataclass
class Limits:
    """Per-token API limits (DigitalOcean's documented values by default)."""

    per_minute: int = 250
    per_hour: int = 5000
    cdn_calls: int = 5
    cdn_calls_window: float = 10.0
    cdn_purge_files: int = 50
    cdn_purge_window: float = 20.0
    # Seconds a purge is in progress: the edge serves the cached copy until then, and an identical purge is
    # refused meanwhile (DigitalOcean's purges are not instant). 0 = evicted at once.
    cdn_purge_propagation: float = 1.0


_LIMIT_TYPES = {f.name: f.type for f in fields(Limits)}


def _limit(name: str, value: Any) -> Any:
    """A limits value as its field's type; an unknown name is passed on as is for Limits() to refuse."""
    kind = _LIMIT_TYPES.get(name)
    if kind is None:
        return value
    number = float(value) if kind == "float" else int(value)
    if number < 0:
        raise ValueError(f"limits.{name} must be >= 0, not {value}")
    return number


@dataclass
class Scenario:
    """A parsed scenario: typed settings plus the raw resource description (``data``)."""

    name: str
    data: dict[str, Any]
    durations: Durations = field(default_factory=Durations)
    limits: Limits = field(default_factory=Limits)
    tokens: dict[str, str] = field(default_factory=dict)  # label -> token
    scale: dict[str, int] = field(default_factory=dict)
    source: Path | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: Path | None = None) -> Scenario:
        """Build from an already merged mapping; unknown settings keys are an error (typos matter)."""
        dur = raw.get("durations") or {}
        lim = raw.get("limits") or {}
        try:
            durations = Durations(**{k: float(v) for k, v in dur.items()})
            limits = Limits(**{k: _limit(k, v) for k, v in lim.items()})
        except TypeError as exc:
            raise ValueError(f"scenario {source or ''}: unknown setting: {exc}") from exc
        tokens = {str(k): str(v) for k, v in (raw.get("tokens") or {}).items()}
        scale = {str(k): int(v) for k, v in (raw.get("scale") or {}).items()}
        unknown = set(scale) - {"apps", "cdn_endpoints", "uptime_checks", "alert_policies"}
        if unknown:
            raise ValueError(f"scenario: cannot scale {sorted(unknown)} (API-only resources only)")
        return cls(str(raw.get("name", "custom")), raw, durations, limits, tokens, scale, source)

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """A copy with ``overrides`` merged on (same rules as a scenario file)."""
        return Scenario.from_dict(merge_scenarios(self.data, overrides), self.source)


def merge_scenarios(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` onto ``base`` (settings maps key by key, the rest replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in _MERGED_MAPS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"scenario {path}: top level must be a mapping")
    return raw


def load_scenario(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load the default scenario, merged with the file at ``path`` and then ``overrides`` if given."""
    data = _read_yaml(DEFAULT_SCENARIO_PATH)
    source: Path | None = DEFAULT_SCENARIO_PATH
    if path is not None:
        source = Path(path)
        data = merge_scenarios(data, _read_yaml(source))
        log.info("scenario loaded from %s", source)
    if overrides:
        data = merge_scenarios(data, overrides)
    return Scenario.from_dict(data, source)
