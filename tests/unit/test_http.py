"""The one HTTP path: waits said on stderr, every attempt counted, malformed requests never echoed."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
import respx

from doops.clients.http import RateLimiter, ResilientHttp, WaitNotices
from doops.errors import ApiUnreachable, UsageError
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
ACCOUNT = {"account": {"uuid": "u", "email": "e", "status": "active"}}


class FakeTime:
    """Stands in for the ``time`` module of doops.clients.http: waits are recorded, not slept."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_http(clock: FakeTime, said: list[str]) -> ResilientHttp:
    return ResilientHttp(sleep=clock.sleep, clock=clock.time, notify=said.append,
                         limiter=RateLimiter(clock=clock.time, sleep=clock.sleep))


def get(h: ResilientHttp, path: str = "/v2/account") -> httpx.Response:
    return h.send("GET", API + path, {"Authorization": "Bearer x"}, None)


# Point 13: a wait for the rate limit longer than 2 s is said, once.

def test_reset_wait_is_announced_once() -> None:
    clock = FakeTime()
    said: list[str] = []
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(200, json=ACCOUNT, headers={
            "ratelimit-limit": "5", "ratelimit-remaining": "0", "ratelimit-reset": str(int(clock.now + 50))})
        h = make_http(clock, said)
        get(h)
        assert said == []
        get(h)
    assert clock.sleeps == [pytest.approx(50)]
    assert said == ["waiting 50 s for the API rate limit"]


def test_pacing_wait_is_announced_and_short_waits_are_not() -> None:
    clock = FakeTime()
    said: list[str] = []
    with respx.mock(base_url=API) as router:
        route = router.get("/v2/account")
        route.respond(200, json=ACCOUNT, headers={"ratelimit-remaining": "100",
                                                  "ratelimit-reset": str(int(clock.now + 60))})
        h = make_http(clock, said)
        get(h)
        get(h)
        assert said == []  # a comfortable budget: no wait at all
        route.respond(200, json=ACCOUNT, headers={"ratelimit-remaining": "5",
                                                  "ratelimit-reset": str(int(clock.now + 60))})
        get(h)
        get(h)  # 60 s over 5 requests: a 12 s wait
    assert said == ["waiting 12 s for the API rate limit (5 requests left until the reset)"]


def test_429_retry_after_is_announced() -> None:
    clock = FakeTime()
    said: list[str] = []
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").mock(side_effect=[
            httpx.Response(429, json={"id": "too_many_requests", "message": "slow down"},
                           headers={"retry-after": "30"}),
            httpx.Response(200, json=ACCOUNT)])
        assert get(make_http(clock, said)).status_code == 200
    assert said == ["waiting 30 s for the API rate limit (429 Too Many Requests)"]


def test_short_backoff_is_not_announced() -> None:
    clock = FakeTime()
    said: list[str] = []
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").mock(side_effect=[httpx.Response(503), httpx.Response(200, json=ACCOUNT)])
        get(make_http(clock, said))
    assert len(clock.sleeps) == 1 and clock.sleeps[0] <= 0.5
    assert said == []


def test_threads_waiting_for_the_same_reset_say_it_once() -> None:
    said: list[str] = []
    notices = WaitNotices(said.append, clock=lambda: 1000.0)
    threads = [threading.Thread(target=notices, args=(50.0, "for the API rate limit")) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert said == ["waiting 50 s for the API rate limit"]
    notices(1.5, "for the API rate limit")
    notices(120.0, "for the API rate limit")  # a longer wait than the one already said: said again
    assert said == ["waiting 50 s for the API rate limit", "waiting 120 s for the API rate limit"]


def test_rate_limit_wait_reaches_stderr_of_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.ops.seam import SystemClock

    slept: list[float] = []  # a command's HTTP waits run on its platform's clock: recorded here, not slept
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds, cancel=None: slept.append(seconds))
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").mock(side_effect=[
            httpx.Response(429, json={"id": "too_many_requests", "message": "slow down"},
                           headers={"retry-after": "50"}),
            httpx.Response(200, json=ACCOUNT)])
        res = run_doops(["auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    assert "doops: waiting 50 s for the API rate limit (429 Too Many Requests)\n" in res.stderr
    assert slept and slept[0] >= 50


# Point 14: every attempt counts, also those that timed out or never connected.

@pytest.mark.parametrize("error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_failed_attempts_are_counted(error: Exception) -> None:
    clock = FakeTime()
    with respx.mock(base_url=API) as router:
        route = router.get("/v2/account").mock(side_effect=error)
        h = make_http(clock, [])
        with pytest.raises(ApiUnreachable):
            get(h)
    assert route.call_count == 4
    assert h.stats.requests == 4 and h.stats.count == 1 and h.stats.retries == 3


def test_retries_then_success_are_counted() -> None:
    clock = FakeTime()
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(500),
                                                    httpx.Response(200, json=ACCOUNT)])
        h = make_http(clock, [])
        get(h)
    assert (h.stats.count, h.stats.requests) == (1, 3)


def test_status_reports_timed_out_requests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from doops.ops.seam import SystemClock

    # the backoff between tries runs on the platform's clock: not slept
    monkeypatch.setattr(SystemClock, "sleep", lambda self, seconds, cancel=None: None)
    cfg = tmp_path / "doops.yaml"
    cfg.write_text("functions:\n  - namespace: learnhub-jobs\n")
    with respx.mock(base_url=API) as router:
        router.get("/v2/functions/namespaces").mock(side_effect=httpx.ReadTimeout("slow"))
        res = run_doops(["--config", str(cfg), "status", "-o", "json", "functions"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.json["checks"][0]["status"] == "unknown"
    assert res.json["api_requests"] == 4


# Point 10: a request that cannot be written never shows the header that broke it.

def test_malformed_header_is_not_echoed() -> None:
    """Behind the token check: httpx's own error quotes the header value (``Bearer ***\\nTAIL``)."""
    import socket

    with socket.socket() as listener:  # accepts the connection; the request fails while being written
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v2/account"
        h = make_http(FakeTime(), [])
        with pytest.raises(UsageError) as info:
            h.send("GET", url, {"Authorization": "Bearer abc\nTAILSECRET"}, None)
        h.close()
    assert "TAILSECRET" not in info.value.message and "abc" not in info.value.message
    assert "\n" not in info.value.message and "malformed" in info.value.message
