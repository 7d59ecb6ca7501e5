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


def test_tls_section_names_where_tls_is_checked_and_the_ca(tmp_path: Path) -> None:
    cfg = parse_config("tls:\n  ca_file: /x/ca.pem\n  urls: {learnhub-api: 'https://127.0.0.1:8443'}\n", "f.yaml")
    assert cfg.tls.ca_file == "/x/ca.pem" and cfg.tls.urls == {"learnhub-api": "https://127.0.0.1:8443"}
    assert parse_config("", "f.yaml").tls.urls == {}


def test_a_tls_context_trusting_a_private_ca_and_a_bad_ca_file(tmp_path: Path) -> None:
    from doops.clients.http import tls_context, tls_context_trusting
    from doops.errors import UsageError
    from doops.sandbox.tls import SandboxCA

    assert tls_context_trusting(None) is tls_context()
    ca = SandboxCA.create(tmp_path / "ca")
    ctx = tls_context_trusting(str(ca.cert_path))
    assert ctx is not tls_context() and ctx.cert_store_stats()["x509_ca"] >= 1
    with pytest.raises(UsageError, match="CA file"):
        tls_context_trusting(str(tmp_path / "absent.pem"))
