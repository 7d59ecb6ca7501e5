from __future__ import annotations

from pathlib import Path

import pytest

from doops import journal
from tests.helpers import run_doops


@pytest.mark.parametrize("value", ["lots", "5", "1x"])
def test_max_lag_needs_a_unit(value: str) -> None:
    res = run_doops(["failover", "db", "--region", "ams3", "--max-lag", value])
    assert res.exit_code == 4 and value in res.stderr


def test_lock_lives_with_its_holder(isolated_env: Path) -> None:
    with journal.exclusive("failover-x"), pytest.raises(journal.LockHeld) as info, journal.exclusive("failover-x"):
        pass
    assert "pid" in info.value.holder
    with journal.exclusive("failover-x"):  # released with the first holder
        pass


def test_audit_masks_secrets(isolated_env: Path) -> None:
    path = journal.audit("t", {"dsn": "postgres://doadmin:hunter2secret@h:1/db"})
    assert "hunter2secret" not in path.read_text() and "doadmin:***@" in path.read_text()
