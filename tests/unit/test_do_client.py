from __future__ import annotations

import httpx
import pytest
import respx

from doops.clients.do import DOClient, check_api_url
from doops.clients.http import RateLimiter, ResilientHttp
from doops.errors import ApiError, ApiNotFound, ApiUnavailable, UsageError

API = "https://api.digitalocean.com"


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(clock: FakeClock | None = None, api: str = API) -> DOClient:
    clock = clock or FakeClock()
    http = ResilientHttp(sleep=clock.sleep, clock=clock.time,
                         limiter=RateLimiter(clock=clock.time, sleep=clock.sleep))
    return DOClient("dop_v1_test", api, http)


def test_pagination_three_pages() -> None:
    with respx.mock(base_url=API) as router:
        def page(request: httpx.Request) -> httpx.Response:
            n = int(request.url.params["page"])
            assert request.url.params["per_page"] == "200"
            links = {"pages": {"next": f"{API}/v2/apps?page={n + 1}&per_page=200"}} if n < 3 else {"pages": {}}
            apps = [{"id": f"app-{n}-{i}", "spec": {"name": f"a{n}{i}"}} for i in range(2)]
            return httpx.Response(200, json={"apps": apps, "links": links, "meta": {"total": 6}})

        route = router.get("/v2/apps").mock(side_effect=page)
        items = make_client().paginate("apps.list", "apps")
    assert route.call_count == 3
    assert [a["id"] for a in items] == [f"app-{n}-{i}" for n in (1, 2, 3) for i in range(2)]


def test_404_returned_as_dict_becomes_error() -> None:
    with respx.mock(base_url=API) as router:
        router.get("/v2/databases/nope").respond(
            404, json={"id": "not_found", "message": "The resource you were accessing could not be found.",
                       "request_id": "r-404"})
        with pytest.raises(ApiNotFound) as info:
            make_client().get_database_cluster("nope")
    err = info.value
    assert (err.status, err.error_id, err.request_id) == (404, "not_found", "r-404")
    assert "could not be found" in str(err) and "None" not in str(err)


def test_429_with_retry_after_then_success() -> None:
    clock = FakeClock()
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").mock(side_effect=[
            httpx.Response(429, json={"id": "too_many_requests", "message": "API Rate limit exceeded."},
                           headers={"retry-after": "7"}),
            httpx.Response(200, json={"account": {"uuid": "u", "email": "e", "status": "active"}}),
        ])
        account = make_client(clock).account()
    assert account.uuid == "u"
    assert len(clock.sleeps) == 1 and 7 <= clock.sleeps[0] <= 7.2


def test_ratelimit_zero_waits_until_reset() -> None:
    clock = FakeClock()
    reset = clock.now + 42
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(
            200, json={"account": {"uuid": "u", "email": "e", "status": "active"}},
            headers={"ratelimit-limit": "250", "ratelimit-remaining": "0", "ratelimit-reset": str(int(reset))})
        client = make_client(clock)
        client.account()
        assert clock.sleeps == []
        client.account()
    assert clock.sleeps == [pytest.approx(42)]


def test_low_budget_spreads_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock.time, sleep=clock.sleep, low_water=10)
    limiter.update(httpx.Headers({"ratelimit-remaining": "5", "ratelimit-reset": str(clock.now + 50)}))
    assert limiter.delay() == pytest.approx(10)
    limiter.update(httpx.Headers({"ratelimit-remaining": "100", "ratelimit-reset": str(clock.now + 50)}))
    assert limiter.delay() == 0


def test_500_three_times_then_success() -> None:
    clock = FakeClock()
    with respx.mock(base_url=API) as router:
        route = router.get("/v2/account").mock(side_effect=[
            httpx.Response(500, json={"id": "server_error", "message": "boom"}),
            httpx.Response(500, json={"id": "server_error", "message": "boom"}),
            httpx.Response(500, json={"id": "server_error", "message": "boom"}),
            httpx.Response(200, json={"account": {"uuid": "u", "email": "e", "status": "active"}}),
        ])
        assert make_client(clock).account().uuid == "u"
    assert route.call_count == 4 and len(clock.sleeps) == 3
    assert clock.sleeps[0] < clock.sleeps[2] + 1  # backoff grows (with jitter)


def test_500_forever_is_unknown_not_failed() -> None:
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(503, json={"id": "service_unavailable", "message": "down"})
        with pytest.raises(ApiUnavailable) as info:
            make_client().account()
    assert info.value.exit_code == 3


def test_post_500_is_not_retried() -> None:
    with respx.mock(base_url=API) as router:
        route = router.post("/v2/databases").respond(500, json={"id": "server_error", "message": "boom"})
        with pytest.raises(ApiError):
            make_client().call("databases.create_cluster", {"name": "x", "engine": "pg", "num_nodes": 1,
                                                            "region": "nyc3", "size": "db-s-1vcpu-1gb"})
    assert route.call_count == 1


def test_post_429_is_retried() -> None:
    with respx.mock(base_url=API) as router:
        route = router.post("/v2/databases").mock(side_effect=[
            httpx.Response(429, json={"id": "too_many_requests", "message": "API Rate limit exceeded."},
                           headers={"retry-after": "1"}),
            httpx.Response(201, json={"database": {"id": "d", "name": "x"}}),
        ])
        body = make_client().call("databases.create_cluster", {"name": "x", "engine": "pg", "num_nodes": 1,
                                                               "region": "nyc3", "size": "db-s-1vcpu-1gb"})
    assert route.call_count == 2 and body["database"]["id"] == "d"


def test_connection_refused_is_unreachable() -> None:
    clock = FakeClock()
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(Exception) as info:
            make_client(clock).account()
    assert getattr(info.value, "exit_code", None) == 3


def test_http_endpoint_only_for_loopback() -> None:
    assert check_api_url("http://127.0.0.1:8080") == ("http://127.0.0.1:8080", False)
    assert check_api_url("https://api.digitalocean.com/") == ("https://api.digitalocean.com", True)
    with pytest.raises(UsageError):
        check_api_url("http://api.example.com")


def test_loopback_http_sends_bearer() -> None:
    with respx.mock(base_url="http://127.0.0.1:9999") as router:
        route = router.get("/v2/account").respond(200, json={"account": {"uuid": "u", "email": "e",
                                                                         "status": "active"}})
        make_client(api="http://127.0.0.1:9999").account()
    assert route.calls.last.request.headers["authorization"] == "Bearer dop_v1_test"


HTML_431 = ("<html>\r\n<head><title>431 Request Header Fields Too Large</title></head>\r\n<body>\r\n"
            "<center><h1>431 Request Header Fields Too Large</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
            "</body>\r\n</html>\r\n")


def test_html_error_page_becomes_one_line() -> None:
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(431, text=HTML_431, headers={"content-type": "text/html"})
        with pytest.raises(ApiError) as info:
            make_client().account()
    text = str(info.value)
    assert "\n" not in text and "<" not in text and "cloudflare" not in text
    assert text == ("DigitalOcean API GET /v2/account answered 431: Request Header Fields Too Large "
                    "(text/html body not shown)")


def test_html_error_page_on_the_command_line() -> None:
    from tests.helpers import CANARY_TOKEN, run_doops

    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(431, text=HTML_431, headers={"content-type": "text/html; charset=utf-8"})
        res = run_doops(["auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "<" not in res.stderr
    assert "answered 431: Request Header Fields Too Large (text/html body not shown)" in res.stderr


def test_json_error_message_is_kept_but_flattened() -> None:
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(400, json={"id": "bad_request", "message": "line one\nline two"})
        with pytest.raises(ApiError) as info:
            make_client().account()
    assert info.value.api_message == "line one line two" and info.value.error_id == "bad_request"


@pytest.mark.parametrize("url", ["https://" + "a" * 5000 + ".com", "https://api.example.com\n", "https://a b",
                                 "https://api.example.com:http", "ftp://api.example.com", "https://"])
def test_api_url_checks_are_one_short_line(url: str) -> None:
    with pytest.raises(UsageError) as info:
        check_api_url(url)
    assert "\n" not in info.value.message and len(info.value.message) < 200
