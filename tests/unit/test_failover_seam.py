"""`failover()` as a library call on a fake clock with fake clients: every ending is an outcome value, every
wait is on the injected clock (a ten-minute timeout takes no real time), events are typed and recorded."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from doops import journal
from doops.clients import pg
from doops.clients.models import Account, DatabaseCluster, DatabaseEvent, DatabaseReplica
from doops.config import Config, DatabasesSection, Duration, Objectives
from doops.errors import ApiError, UnknownStateError
from doops.ops.failover import FailoverOptions, failover
from doops.ops.seam import Cancel, FakeClock, Level, Outcome, RecordingSink, wait_until
from doops.platform import Platform

CONN = {"host": "db.example", "port": 25060, "user": "doadmin", "password": "pw-secret", "database": "defaultdb"}


def cluster(cid: str, name: str, region: str) -> DatabaseCluster:
    return DatabaseCluster.from_api({"id": cid, "name": name, "region": region, "status": "online", "num_nodes": 2,
                                     "engine": "pg", "connection": {**CONN, "host": f"{name}.db"}})


@dataclass
class FakeDo:
    """The DigitalOcean calls failover makes, answering like the API would."""

    clock: FakeClock
    online_after: float = 1.0  # seconds after the promote that the API shows the new cluster online
    promote_error: ApiError | None = None
    promoted_at: float | None = None
    calls: list[str] = field(default_factory=list)

    def account(self) -> Account:
        return Account("acc-uuid", "sre@example.com", "active")

    def database_ca(self, cid: str) -> str:
        return ""  # no CA: sslmode auto falls back to require

    def list_database_clusters(self) -> list[DatabaseCluster]:
        out = [cluster("c-1", "learnhub-db", "nyc3")]
        if self.promoted_at is not None:
            out.append(cluster("r-1", "learnhub-db-ams3", "ams3"))
        return out

    def list_replicas(self, cid: str) -> list[DatabaseReplica]:
        if self.promoted_at is not None:
            return []
        return [DatabaseReplica.from_api({"id": "r-1", "name": "learnhub-db-ams3", "region": "ams3",
                                          "status": "online", "connection": {**CONN, "host": "replica.db"}})]

    def promote_replica(self, cid: str, name: str) -> None:
        self.calls.append(f"PUT promote {name}")
        if self.promote_error is not None:
            raise self.promote_error
        self.promoted_at = self.clock.monotonic()

    def get_database_cluster(self, cid: str) -> DatabaseCluster:
        self.calls.append(f"GET {cid}")
        if cid == "r-1":
            c = cluster("r-1", "learnhub-db-ams3", "ams3")
            ready = self.promoted_at is not None and self.clock.monotonic() - self.promoted_at >= self.online_after
            c.status = "online" if ready else "creating"
            return c
        return cluster("c-1", "learnhub-db", "nyc3")

    def list_database_events(self, cid: str) -> list[DatabaseEvent]:
        if self.promoted_at is None:
            return []
        at = self.clock.now() - timedelta(seconds=self.clock.monotonic() - self.promoted_at)
        return [DatabaseEvent("e", cid, "cluster_master_promotion", at)]


@dataclass
class FakeDb:
    """The servers: the replica takes writes ``writable_after`` seconds after the promote."""

    do: FakeDo
    writable_after: float = 2.0
    primary_down: bool = False
    lag_bytes: int = 0

    def primary_lsn(self, t: pg.Target) -> tuple[str, bool]:
        if self.primary_down and t.host == "learnhub-db.db":
            raise UnknownStateError(f"cannot connect to {t.masked()}")
        return "0/1", False

    def replica_lag(self, replica: pg.Target, primary: pg.Target | None) -> pg.ReplicaLag:
        return pg.ReplicaLag(True, False, self.lag_bytes, 0.0, "0/1")

    def prove_write(self, t: pg.Target, table: str) -> None:
        p = self.do.promoted_at
        if p is None or self.do.clock.monotonic() - p < self.writable_after:
            raise UnknownStateError(f"{t.masked()} is still in recovery")

    def heartbeat_last_id(self, *a: Any) -> int:
        return 0

    def heartbeat_rows_after(self, *a: Any) -> int:
        return 0


def platform(clock: FakeClock, do: FakeDo, db: FakeDb, rto: float = 120) -> Platform:
    p = Platform(access_token="t", api_url="https://api.digitalocean.com", clock=clock)
    p._config = Config(databases=DatabasesSection(primary="learnhub-db"),
                       objectives=Objectives(database_rto=Duration(rto)))
    p._do, p._db = do, db  # type: ignore[assignment]
    return p


def setup(**kw: Any) -> tuple[Platform, FakeDo, FakeDb, FakeClock]:
    clock = FakeClock()
    do = FakeDo(clock, **{k: v for k, v in kw.items() if k in ("online_after", "promote_error")})
    db = FakeDb(do, **{k: v for k, v in kw.items() if k in ("writable_after", "primary_down", "lag_bytes")})
    return platform(clock, do, db, kw.get("rto", 120)), do, db, clock


def run(p: Platform, *, answer: bool = True, cancel: Cancel | None = None, **opts: Any) -> Any:
    sink = RecordingSink()
    result = failover(p, FailoverOptions(cluster=None, region="ams3", **opts), confirm=lambda q: answer,
                      events=sink, cancel=cancel)
    return result, sink


def test_promotion_verified_on_the_fake_clock(isolated_env: Path) -> None:
    p, do, _, clock = setup(writable_after=2.0)
    result, sink = run(p)
    assert result.outcome is Outcome.OK and result.state == "promoted"
    assert result.rto_seconds == pytest.approx(2.0, abs=0.5) and result.met is True
    assert clock.sleeps and sum(clock.sleeps) == pytest.approx(clock.monotonic())  # only the fake clock waited
    assert [e.phase for e in sink.events][:2] == ["resolve", "precheck"]
    assert all(e.operation == "failover db" and e.at.tzinfo is not None for e in sink.events)
    assert sink.events[-1].level is Level.DONE and sink.events[-1].data["rto_seconds"] == result.rto_seconds
    assert do.calls[0] == "PUT promote learnhub-db-ams3"


def test_rto_missed_is_an_outcome_not_an_exception(isolated_env: Path) -> None:
    p, _, _, _ = setup(writable_after=200.0, rto=120)
    result, _ = run(p)
    assert result.outcome is Outcome.OBJECTIVE_MISSED and result.state == "promoted" and result.met is False
    assert result.rto_seconds is not None and result.rto_seconds >= 200
    assert "missed the target of 120s" in result.message and result.outcome.exit_code == 2


def test_poll_timeout_is_verification_failed(isolated_env: Path) -> None:
    p, _, _, clock = setup(writable_after=10_000.0)
    result, _ = run(p, timeout_seconds=600)
    assert result.outcome is Outcome.VERIFICATION_FAILED and result.state == "failed"
    assert "no a write accepted within 10.0m" in result.message and "still in recovery" in result.message
    assert 600 <= clock.monotonic() < 602  # the timeout is honoured on the injected clock


def test_lock_held_is_refused_and_nothing_is_sent(isolated_env: Path) -> None:
    p, do, _, _ = setup()
    with journal.exclusive(f"failover-{platform_key('c-1')}"):
        result, _ = run(p)
    assert result.outcome is Outcome.REFUSED and "another doops failover" in result.message
    assert not any(c.startswith("PUT") for c in do.calls)


def test_declined_confirmation_changes_nothing(isolated_env: Path) -> None:
    p, do, _, _ = setup()
    result, _ = run(p, answer=False)
    assert result.outcome is Outcome.DECLINED and result.state == "aborted" and result.outcome.exit_code == 130
    assert do.calls == []


def test_403_on_the_promote_is_a_refusal_naming_the_scope(isolated_env: Path) -> None:
    err = ApiError(403, "forbidden", "You are not authorized to perform this operation", method="PUT",
                   path="/v2/databases/c-1/replicas/learnhub-db-ams3/promote")
    p, do, _, _ = setup(promote_error=err)
    result, sink = run(p)
    assert result.outcome is Outcome.REFUSED and result.state == "refused"
    assert "write access to databases" in result.message and "database:update" in (result.hint or "")
    assert do.calls == ["PUT promote learnhub-db-ams3"]  # the promote is the first and only write
    assert journal.read_pending("failover", platform_key("c-1")) is None
    assert sink.events[-1].level is Level.FAIL


def platform_key(cid: str) -> str:
    from doops.ops.audit import Identity

    return Identity("api.digitalocean.com", False).key(cid)


def test_lag_over_the_config_threshold_refuses_without_a_request(isolated_env: Path) -> None:
    p, do, _, _ = setup(lag_bytes=50 * 1024 * 1024)
    result, _ = run(p)
    assert result.outcome is Outcome.REFUSED and "replica lag" in result.message and do.calls == []
    accepted, _ = run(p, accept_data_loss=True)
    assert accepted.outcome is Outcome.OK


def test_cancel_during_the_wait_reports_what_was_sent(isolated_env: Path) -> None:
    p, _, _, clock = setup(writable_after=10_000.0)
    stop = Cancel()
    orig = clock.sleep

    def sleep_then_cancel(seconds: float, cancel: Cancel | None = None) -> None:
        orig(seconds, cancel)
        if clock.monotonic() > 5:
            stop.cancel()

    clock.sleep = sleep_then_cancel  # type: ignore[method-assign]
    result, _ = run(p, cancel=stop)
    assert result.outcome is Outcome.INTERRUPTED and "interrupted after promoting" in result.message
    assert "run the same command again" in (result.hint or "") and clock.monotonic() < 10
    assert journal.read_pending("failover", platform_key("c-1")) is not None  # a re-run verifies


def test_second_run_verifies_and_invents_no_rto(isolated_env: Path) -> None:
    p, do, _, clock = setup()
    first, _ = run(p)
    assert first.outcome is Outcome.OK
    clock.advance(3600)
    again, sink = run(p)
    assert again.outcome is Outcome.OK and again.state == "verified" and again.rto_seconds is None
    assert again.promoted_at is not None and "already promoted" in sink.messages("resolve")[0]
    assert do.calls.count("PUT promote learnhub-db-ams3") == 1


def test_wait_until_backs_off_and_respects_cancel() -> None:
    clock = FakeClock()
    seen: list[float] = []

    def never() -> object | None:
        seen.append(clock.monotonic())
        return None

    waited = wait_until(never, timeout=3.0, clock=clock, interval=0.1, max_interval=1.0)
    assert waited.timed_out and not waited.done and waited.attempts == len(seen)
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert gaps[0] == pytest.approx(0.1) and max(gaps) <= 1.0 and gaps == sorted(gaps)
    cancel = Cancel()
    cancel.cancel()
    assert wait_until(lambda: None, timeout=60, clock=clock, cancel=cancel).cancelled


def test_a_cancel_during_the_last_probe_still_stops_the_run(isolated_env: Path) -> None:
    """Ctrl-C while the write is being proved: the run stops there and says so, rather than going on to
    more (slow) API calls; the pending record stays, so a re-run verifies."""
    p, _, db, _ = setup(writable_after=0.0)
    cancel = Cancel()
    proved = db.prove_write

    def prove_then_cancel(t: pg.Target, table: str) -> None:
        proved(t, table)
        cancel.cancel()

    db.prove_write = prove_then_cancel  # type: ignore[method-assign]
    result, _ = run(p, cancel=cancel)
    assert result.outcome is Outcome.INTERRUPTED and result.outcome.exit_code == 130
    assert result.topology_after == [] and result.warnings == []
    assert journal.read_pending("failover", platform_key("c-1")) is not None
