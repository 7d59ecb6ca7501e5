from __future__ import annotations

from pathlib import Path

import pytest

from doops.config import load_config, parse_config
from doops.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_parses() -> None:
    cfg = load_config(ROOT / "config" / "doops.example.yaml", explicit=True)
    assert cfg.databases.primary == "learnhub-db"
    assert cfg.objectives.database_rto == 120
    assert cfg.thresholds.replica_lag_bytes == 1024 * 1024


def test_missing_default_is_fine(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.yaml", explicit=False).databases.clusters == []


def test_missing_explicit_names_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_config(tmp_path / "absent.yaml", explicit=True)


@pytest.mark.parametrize(("text", "expected"), [
    ("objectives:\n  database_rto: soon\n", ":2: key 'objectives.database_rto': invalid duration"),
    ("databases:\n  clusters:\n    - name: a\n      nme: b\n", ":4: key 'databases.clusters[0].nme': unknown key"),
    ("apps:\n  - health_path: /x\n", ":2: key 'apps[0]': missing required key 'name'"),
    ("thresholds: [1, 2]\n", ":1: key 'thresholds': expected a mapping"),
    ("objectives: {database_rto: 2m\n", "invalid YAML"),
])
def test_invalid_names_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("f.yaml")
