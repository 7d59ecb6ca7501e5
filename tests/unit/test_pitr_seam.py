"""`pitr()` on a fake clock with fake clients: the window, refusals that send nothing, timeouts, cancel,
objectives, verification, cleanup and resume, each an outcome value, without a real wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from doops.clients import pg
from doops.clients.models import Account, DatabaseBackup, DatabaseCluster
from doops.config import Config, DatabaseConfig, DatabasesSection
from doops.errors import ApiError, UnknownStateError, UsageError
from doops.ops.pitr import PitrOptions, pitr
from doops.ops.seam import Cancel, FakeClock, Outcome, RecordingSink
from doops.platform import Platform
from doops.times import parse_point_in_time


def cluster(cid: str, name: str, status: str = "online", created: datetime | None = None) -> DatabaseCluster:
    c = DatabaseCluster.from_api({"id": cid, "name": name, "region": "nyc3", "status": status, "num_nodes": 2,
                                  "engine": "pg", "version": "15", "size": "db-s-2vcpu-4gb",
                                  "connection": {"host": f"{name}.db", "port": 25060, "user": "doadmin",
                                                 "password": "pw", "database": "learnhub"}})
    c.created_at = created
    return c


@dataclass
class FakeDo:
    clock: FakeClock
    online_after: float = 30.0
    create_error: ApiError | None = None
    created: dict[str, tuple[DatabaseCluster, float]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    restored_point: datetime | None = None  # what the restore was asked for: the fake data ends there

    def account(self) -> Account:
        return Account("acc", "sre@example.com", "active")

    def list_database_clusters(self) -> list[DatabaseCluster]:
        return [cluster("c-1", "learnhub-db", created=self.clock.now() - timedelta(days=30))] + \
            [c for c, _ in self.created.values()]

    def database_ca(self, cid: str) -> str:
        return ""  # no CA: sslmode auto falls back to require

    def list_backups(self, cid: str) -> list[DatabaseBackup]:
        return [DatabaseBackup(self.clock.now() - timedelta(days=d, hours=1), 1.0) for d in range(9)]

    def create_database_cluster(self, body: dict[str, Any]) -> DatabaseCluster:
        self.calls.append(f"POST {body['name']} {body['backup_restore']['backup_created_at']}")
        if self.create_error:
            raise self.create_error
        from doops.times import parse_rfc3339

        self.restored_point = parse_rfc3339(body["backup_restore"]["backup_created_at"])
        c = cluster("n-1", body["name"], "creating")
        self.created[c.id] = (c, self.clock.monotonic())
        return c

    def get_database_cluster(self, cid: str) -> DatabaseCluster:
        c, at = self.created[cid]
        ready = self.clock.monotonic() - at >= self.online_after
        return cluster(cid, c.name, "online" if ready else "creating")

    def delete_database_cluster(self, cid: str) -> None:
        self.calls.append(f"DELETE {cid}")
        del self.created[cid]


@dataclass
class FakeDb:
    do: FakeDo
    point_lag: float = 0.4  # the restore lands this far before the point
    checks: dict[str, tuple[bool, Any]] = field(default_factory=dict)

    def prove_write_rolled_back(self, t: pg.Target) -> None:
        return None

    def newest_heartbeat(self, t: pg.Target, table: str) -> datetime | None:
        assert self.do.restored_point is not None
        return self.do.restored_point - timedelta(seconds=self.point_lag)

    def check_query(self, t: pg.Target, sql: str) -> tuple[bool, Any]:
        if sql not in self.checks:
            raise UnknownStateError(f'relation "{sql}" does not exist')
        return self.checks[sql]


def setup(**kw: Any) -> tuple[Platform, FakeDo, FakeDb, FakeClock]:
    clock = FakeClock()
    do = FakeDo(clock, **{k: v for k, v in kw.items() if k in ("online_after", "create_error")})
    db = FakeDb(do, **{k: v for k, v in kw.items() if k in ("point_lag", "checks")})
    p = Platform(access_token="t", api_url="https://api.digitalocean.com", clock=clock)
    p._config = Config(databases=DatabasesSection(primary="learnhub-db", clusters=[
        DatabaseConfig("learnhub-db", heartbeat_table="public.doops_heartbeat")]))
    p._do, p._db = do, db  # type: ignore[assignment]
    return p, do, db, clock


def run(p: Platform, db: FakeDb, clock: FakeClock, *, to: str = "-15m", answer: bool = True,
        cancel: Cancel | None = None, **opts: Any) -> Any:
    point = None if opts.get("latest") else parse_point_in_time(to, clock.now())
    sink = RecordingSink()
    return pitr(p, PitrOptions(cluster=None, to=point, **opts), confirm=lambda q: answer, events=sink,
                cancel=cancel), sink


def test_restore_verified_and_measured_on_the_fake_clock(isolated_env: Path) -> None:
    p, do, db, clock = setup(online_after=30)
    result, sink = run(p, db, clock, cleanup=True)
    assert result.outcome is Outcome.OK and result.met is True and result.cleaned_up
    assert 30 <= result.restore_seconds < 40 and result.rpo_seconds == pytest.approx(0.4)
    assert do.calls[0].startswith("POST learnhub-db-pitr-20261126-0445 2026-11-26T04:45:00.000Z")
    assert do.calls[-1] == "DELETE n-1" and do.created == {}
    assert [e.phase for e in sink.events if e.phase == "wait"]  # live progress while waiting


@pytest.mark.parametrize("to, why", [("2099-01-01T00:00:00Z", "in the future"), ("-8d", "before the restore window")])
def test_points_outside_the_window_are_refused_before_any_write(isolated_env: Path, to: str, why: str) -> None:
    p, do, db, clock = setup()
    result, _ = run(p, db, clock, to=to)
    assert result.outcome is Outcome.REFUSED and why in result.message and do.calls == []


def test_name_taken_is_refused(isolated_env: Path) -> None:
    p, do, db, clock = setup()
    result, _ = run(p, db, clock, name="learnhub-db")
    assert result.outcome is Outcome.REFUSED and "name free" in result.message and do.calls == []


def test_declined_and_dry_run_send_nothing(isolated_env: Path) -> None:
    p, do, db, clock = setup()
    assert run(p, db, clock, answer=False)[0].outcome is Outcome.DECLINED
    assert run(p, db, clock, dry_run=True)[0].outcome is Outcome.DRY_RUN
    assert do.calls == []


def test_403_on_the_create_is_a_refusal(isolated_env: Path) -> None:
    p, _, db, clock = setup(create_error=ApiError(403, "forbidden", "not authorized"))
    result, _ = run(p, db, clock)
    assert result.outcome is Outcome.REFUSED and "database:create" in (result.hint or "")


def test_timeout_is_verification_failed_on_the_fake_clock(isolated_env: Path) -> None:
    p, _, db, clock = setup(online_after=10_000)
    result, _ = run(p, db, clock, timeout_seconds=600)
    assert result.outcome is Outcome.VERIFICATION_FAILED and "not online within 10.0m" in result.message
    assert 600 <= clock.monotonic() < 620


def test_rto_and_rpo_objectives(isolated_env: Path) -> None:
    p, _, db, clock = setup(online_after=300)
    slow, _ = run(p, db, clock, cleanup=True)
    assert slow.outcome is Outcome.OBJECTIVE_MISSED and "restore took" in slow.message
    p, _, db, clock = setup(point_lag=90)
    far, _ = run(p, db, clock, cleanup=True, rpo_seconds=60)
    assert far.outcome is Outcome.OBJECTIVE_MISSED and "restore point 90.0s" in far.message


def test_failing_or_broken_verify_sql(isolated_env: Path) -> None:
    p, _, db, clock = setup(checks={"select false": (False, False)})
    result, _ = run(p, db, clock, verify_sql=["select false", "select 1 from nope"], cleanup=True)
    assert result.outcome is Outcome.VERIFICATION_FAILED and result.cleaned_up
    assert [(v.sql, v.ok) for v in result.verification][-2:] == [("select false", False),
                                                                  ("select 1 from nope", False)]


def test_cancel_while_waiting_then_resume_without_a_second_create(isolated_env: Path) -> None:
    p, do, db, clock = setup(online_after=60)
    stop = Cancel()
    orig = clock.sleep

    def sleep(seconds: float, cancel: Cancel | None = None) -> None:
        orig(seconds, cancel)
        if clock.monotonic() > 20:
            stop.cancel()

    clock.sleep = sleep  # type: ignore[method-assign]
    first, _ = run(p, db, clock, cancel=stop)
    assert first.outcome is Outcome.INTERRUPTED and "doctl databases delete n-1" in (first.hint or "")
    clock.sleep = orig  # type: ignore[method-assign]
    again, _ = run(p, db, clock, to="-15m", cleanup=True)  # the same command later: another relative point
    assert again.outcome is Outcome.OK and again.resumed
    assert sum(c.startswith("POST") for c in do.calls) == 1


def test_one_of_to_and_latest_is_required() -> None:
    p, _, _, _ = setup()
    with pytest.raises(UsageError):
        pitr(p, PitrOptions(cluster=None, to=None), confirm=lambda q: True)


def test_relative_and_absolute_points() -> None:
    now = datetime.fromisoformat("2026-11-26T14:00:00+00:00")
    assert parse_point_in_time("-15m", now) == now - timedelta(minutes=15)
    assert parse_point_in_time("2h ago", now) == now - timedelta(hours=2)
    assert parse_point_in_time("2026-11-26T13:01:00Z", now).hour == 13
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_point_in_time("yesterday", now)
