"""Rate limiter and sliding-window limits of the DigitalOcean twin (fake clock, no sleeps)."""

from __future__ import annotations

from doops.sandbox.api.limits import RateLimiter, SlidingWindow


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_minute_budget_refuses_with_retry_after_then_recovers() -> None:
    clock = Clock()
    rl = RateLimiter(per_minute=250, per_hour=5000, clock=clock)
    for i in range(250):
        d = rl.hit("tok")
        assert d.allowed and d.remaining == 5000 - (i + 1)
        clock.t += 0.1
    refused = rl.hit("tok")
    assert not refused.allowed
    assert refused.retry_after is not None and 1 <= refused.retry_after <= 60
    assert refused.headers()["retry-after"] == str(refused.retry_after)
    assert refused.remaining == 4750  # a refused request spends nothing
    clock.t += refused.retry_after
    assert rl.hit("tok").allowed


def test_hour_budget_refuses_without_retry_after() -> None:
    clock = Clock()
    rl = RateLimiter(per_minute=1000, per_hour=10, clock=clock)
    first = clock.t
    for _ in range(10):
        assert rl.hit("tok").allowed
        clock.t += 61
    refused = rl.hit("tok")
    assert not refused.allowed and refused.retry_after is None
    assert "retry-after" not in refused.headers()
    assert refused.reset == int(first + 3600)
    clock.t = first + 3600.5
    assert rl.hit("tok").allowed


def test_budgets_are_per_token_and_headers_are_strings() -> None:
    clock = Clock()
    rl = RateLimiter(per_minute=1, per_hour=5000, clock=clock)
    assert rl.hit("a").allowed
    assert not rl.hit("a").allowed
    d = rl.hit("b")
    assert d.allowed
    assert d.headers() == {"ratelimit-limit": "5000", "ratelimit-remaining": "4999",
                           "ratelimit-reset": str(int(clock.t + 3600))}


def test_minute_override_tightens_budget() -> None:
    rl = RateLimiter(per_minute=250, per_hour=5000, clock=Clock())
    assert rl.hit("t", per_minute=1).allowed
    assert not rl.hit("t", per_minute=1).allowed
    assert rl.hit("t").allowed


def test_sliding_window_amounts() -> None:
    clock = Clock()
    w = SlidingWindow(limit=50, window=20, clock=clock)
    assert w.acquire("ep", 30) is None
    clock.t += 5
    wait = w.acquire("ep", 30)
    assert wait == 15
    clock.t += 15
    assert w.acquire("ep", 30) is None
    assert w.acquire("other", 50) is None
    assert w.acquire("big", 51) == 20
