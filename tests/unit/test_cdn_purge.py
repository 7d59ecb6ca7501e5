"""`doops cdn purge` on a fake clock: paths, folding, the batching plan and its ETA, pacing within DigitalOcean's
limits, 429s waited out, verification (stale -> fresh, stale after --wait, missing), endpoint resolution, bad
input that sends nothing, dry run, refusal, cancel and the audit line. HTTP (API and CDN edge) through respx;
the origin bucket is a fake."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from doops.config import BucketConfig, CdnConfig, Config, SpacesConfig
from doops.errors import UsageError
from doops.ops import cdn
from doops.ops.cdn import OriginObject, PurgeOptions, normalise_path, plan_files, purge
from doops.ops.seam import Cancel, FakeClock, Level, Outcome, RecordingSink
from doops.platform import Platform
from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
EDGE = "https://edge.test"
EP_ID = "19f06b6a-3ace-4315-b086-499a0e521b76"
OTHER_ID = "0a2b3c4d-0000-4000-8000-000000000002"
ENDPOINT: dict[str, Any] = {"id": EP_ID, "origin": "learnhub-media.nyc3.digitaloceanspaces.com",
            "endpoint": "learnhub-media.nyc3.cdn.digitaloceanspaces.com", "ttl": 3600,
            "custom_domain": "media.learnhub.example", "created_at": "2026-01-01T00:00:00Z"}
OTHER: dict[str, Any] = {"id": OTHER_ID, "origin": "learnhub-assets.ams3.digitaloceanspaces.com",
         "endpoint": "learnhub-assets.ams3.cdn.digitaloceanspaces.com", "ttl": 3600,
         "created_at": "2026-01-01T00:00:00Z"}


# -- a fake world: origin bucket, edge cache and the API -------------------------------------------------------


@dataclass
class World:
    """The origin holds one version per key; the edge keeps what it cached until a purge reaches it
    (``edge_delay`` seconds after the DELETE, as DigitalOcean's edge takes a moment)."""

    clock: FakeClock
    origin: dict[str, str] = field(default_factory=dict)  # key -> etag
    edge: dict[str, str] = field(default_factory=dict)  # key -> etag cached at the edge
    edge_delay: float = 0.0
    purge_reaches_edge: bool = True
    pending: list[tuple[float, list[str]]] = field(default_factory=list)
    deletes: list[tuple[float, list[str]]] = field(default_factory=list)  # (fake time, files) of each DELETE
    cdn_calls: list[float] = field(default_factory=list)  # fake time of each accepted /v2/cdn/endpoints* call
    heads: list[str] = field(default_factory=list)
    sampled: list[str] = field(default_factory=list)

    def apply_purges(self) -> None:
        now = self.clock.monotonic()
        for at, files in list(self.pending):
            if now - at < self.edge_delay:
                continue
            self.pending.remove((at, files))
            for f in files:
                for key in list(self.edge):
                    if f == "*" or key == f or (f.endswith("/*") and key.startswith(f[:-1])):
                        del self.edge[key]

    def serve(self, request: httpx.Request) -> httpx.Response:
        self.apply_purges()
        key = request.url.path.lstrip("/")
        from urllib.parse import unquote

        key = unquote(key)
        if key in self.edge:
            return httpx.Response(200, headers={"ETag": f'"{self.edge[key]}"', "X-Cache": "HIT", "Age": "42"})
        if key not in self.origin:
            return httpx.Response(404, headers={"X-Cache": "MISS"})
        self.edge[key] = self.origin[key]
        return httpx.Response(200, headers={"ETag": f'"{self.origin[key]}"', "X-Cache": "MISS", "Age": "0"})

    # the Origin protocol
    def head(self, key: str) -> OriginObject:
        self.heads.append(key)
        if key not in self.origin:
            return OriginObject(False)
        return OriginObject(True, self.origin[key], datetime(2026, 11, 1, tzinfo=UTC), 10)

    def sample(self, prefix: str, limit: int) -> list[str]:
        self.sampled.append(prefix)
        return sorted(k for k in self.origin if k.startswith(prefix))[:limit]


def config(**kw: Any) -> Config:
    return Config(cdn=[CdnConfig(origin=ENDPOINT["origin"], bucket="learnhub-media", endpoint_url=EDGE)],
                  spaces=SpacesConfig(buckets=[BucketConfig("learnhub-media", "nyc3")]), **kw)


def setup(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[Platform, World, FakeClock]:
    clock = FakeClock()
    world = World(clock, **kw)
    p = Platform(access_token="t", api_url=API, clock=clock)
    p._config = config()
    monkeypatch.setattr(cdn, "open_origin", lambda platform, bucket, region: world)
    return p, world, clock


def mock_api(router: respx.MockRouter, world: World, endpoints: list[dict[str, Any]] | None = None,
             delete: Any = None) -> respx.Route:
    eps = endpoints if endpoints is not None else [ENDPOINT]

    def listing(request: httpx.Request) -> httpx.Response:
        world.cdn_calls.append(world.clock.monotonic())
        return httpx.Response(200, json={"endpoints": eps, "links": {}, "meta": {"total": len(eps)}})

    def purge_route(request: httpx.Request) -> httpx.Response:
        if delete is not None:
            answer = delete(request)
            if answer is not None:
                return answer
        files = json.loads(request.content)["files"]
        world.cdn_calls.append(world.clock.monotonic())
        world.deletes.append((world.clock.monotonic(), files))
        world.pending.append((world.clock.monotonic(), files))
        return httpx.Response(204)

    router.get(f"{API}/v2/account").respond(200, json={"account": {"uuid": "acc-1", "email": "sre@example.com",
                                                                   "status": "active"}})
    router.get(f"{API}/v2/cdn/endpoints").mock(side_effect=listing)
    router.get(f"{API}/v2/cdn/endpoints/{EP_ID}").respond(200, json={"endpoint": ENDPOINT})
    router.route(host="edge.test").mock(side_effect=world.serve)
    return router.delete(url__regex=rf"{API}/v2/cdn/endpoints/[^/]+/cache").mock(side_effect=purge_route)


def run(p: Platform, *paths: str, answer: bool = True, cancel: Cancel | None = None,
        **kw: Any) -> tuple[cdn.PurgeResult, RecordingSink]:
    sink = RecordingSink()
    opts = PurgeOptions(paths=list(paths), first_may_be_endpoint=True, **kw)
    return purge(p, opts, confirm=lambda q: answer, events=sink, cancel=cancel), sink


# -- paths -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, key", [
    ("/static/app.js", "static/app.js"), ("static/app.js", "static/app.js"),
    ("static/my%20file.png", "static/my file.png"), ("static/my file.png", "static/my file.png"),
    ("https://media.learnhub.example/static/app.js?v=3", "static/app.js"), ("static/app.js?v=3", "static/app.js"),
    ("//static/*", "static/*"), ("*", "*"), ("/*", "*"),
])
def test_paths_are_normalised(raw: str, key: str) -> None:
    assert normalise_path(raw) == key


@pytest.mark.parametrize("raw, why", [
    ("static/*.js", "wildcard"), ("st*tic/a.js", "wildcard"), ("/", "names no file"), ("  ", "empty"),
    ("static/a\x01.js", "control character"), ("a/" + "x" * 1100, "longer than"),
])
def test_bad_paths_are_usage_errors(raw: str, why: str) -> None:
    with pytest.raises(UsageError) as info:
        normalise_path(raw)
    assert why in info.value.message


def test_duplicates_and_paths_under_a_wildcard_of_the_same_request_are_dropped() -> None:
    paths = [normalise_path(p) for p in ["static/a.js", "/static/a.js", "img/x.png", "static/*", "static/sub/b.js",
                                         "static/sub/*", "img/x.png", "static%2Fc.js"]]
    files, folded, dropped = plan_files(paths, None)
    assert files == ["img/x.png", "static/*"] and folded == {}
    assert sorted(dropped) == ["static/a.js", "static/c.js", "static/sub/*", "static/sub/b.js"]
    assert plan_files(["a.js", "*", "b/c.js"], None)[0] == ["*"]


def test_fold_purges_a_directory_when_more_than_n_paths_share_it() -> None:
    paths = [f"static/f{i}.js" for i in range(30)] + ["img/a.png", "img/b.png", "robots.txt"] + \
        [f"r{i}.txt" for i in range(30)]
    files, folded, _ = plan_files(paths, 20)
    assert folded == {"static/": 30}
    assert files[0] == "static/*" and "img/a.png" in files and "img/b.png" in files
    assert "*" not in files and "robots.txt" in files, "root files are never folded into '*'"
    assert plan_files(paths, 30)[1] == {}, "exactly N paths: not more than N, not folded"


# -- the plan and its ETA --------------------------------------------------------------------------------------


def test_plan_of_120_paths_is_three_batches_in_about_40_seconds_and_a_dry_run_sends_no_delete(
        monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _clock = setup(monkeypatch)
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world)
        result, sink = run(p, *[f"static/f{i:03}.js" for i in range(120)], dry_run=True)
    assert result.outcome is Outcome.DRY_RUN and deletes.call_count == 0
    assert [len(b.files) for b in result.batches] == [50, 50, 20]
    assert [b.status for b in result.batches] == ["planned"] * 3
    assert [b.planned_offset for b in result.batches] == [0.0, 20.5, 41.0]
    assert 40 <= result.eta_seconds <= 42
    assert any("ETA 41.0s" in m for m in sink.messages("plan")), sink.messages("plan")


def test_10000_paths_take_over_an_hour_unless_folded(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _ = setup(monkeypatch)
    paths = [f"videos/c{d:03}/p{i:03}.mp4" for d in range(100) for i in range(100)]
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        slow, _ = run(p, *paths, dry_run=True)
        fast, sink = run(p, *paths, dry_run=True, fold=20)
    assert len(slow.batches) == 200 and slow.eta_seconds > 3600
    assert len(fast.batches) == 2 and len(fast.files) == 100 and fast.eta_seconds < 30
    assert fast.folded["videos/c000/"] == 100
    assert any("more than asked" in m for m in sink.messages("plan"))


# -- pacing ----------------------------------------------------------------------------------------------------


def _max_in_window(events: list[tuple[float, int]], window: float) -> int:
    return max(sum(n for u, n in events if t <= u < t + window) for t, _ in events)


def test_120_paths_are_sent_within_both_limits_on_the_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [f"static/f{i:03}.js" for i in range(120)]
    p, world, _clock = setup(monkeypatch, origin={k: "v2" for k in paths}, edge={k: "v1" for k in paths})
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, sink = run(p, *paths)
    assert result.outcome is Outcome.OK, result.message
    assert [len(f) for _, f in world.deletes] == [50, 50, 20]
    assert _max_in_window([(t, len(f)) for t, f in world.deletes], 20.0) <= 50
    assert _max_in_window([(t, 1) for t in world.cdn_calls], 10.0) <= 5
    assert world.deletes[-1][0] - world.deletes[0][0] >= 40, "the limit implies 40 s between the first and last"
    assert [b.status for b in result.batches] == ["sent"] * 3 and all(b.sent_at for b in result.batches)
    assert len(sink.messages("purge")) == 3 and "batch 3/3" in sink.messages("purge")[-1]
    assert all(c.state == "fresh" and c.fresh and c.edge_etag == "v2" for c in result.verification)
    assert len(result.verification) == 120


def test_a_429_with_retry_after_is_waited_out_on_the_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, clock = setup(monkeypatch, origin={"static/app.js": "v2"})
    answers = iter([httpx.Response(429, headers={"retry-after": "7"},
                                   json={"id": "too_many_requests", "message": "API Rate limit exceeded."})])

    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world, delete=lambda r: next(answers, None))
        result, sink = run(p, "static/app.js")
    assert result.outcome is Outcome.OK and deletes.call_count == 2
    assert any(7 <= s <= 7.2 for s in clock.sleeps), clock.sleeps
    assert result.batches[0].status == "sent"
    assert not [e for e in sink.events if e.level is Level.FAIL]


def test_429s_beyond_the_http_retries_resend_the_batch_and_never_surface(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _clock = setup(monkeypatch, origin={"static/app.js": "v2"})
    limited = [httpx.Response(429, headers={"retry-after": "3"},
                              json={"id": "too_many_requests", "message": "API Rate limit exceeded."})] * 5
    answers = iter(limited)
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world, delete=lambda r: next(answers, None))
        result, sink = run(p, "static/app.js")
    assert result.outcome is Outcome.OK, result.message
    assert deletes.call_count == 6 and len(world.deletes) == 1
    assert result.batches[0].rate_limited == 1 and result.batches[0].status == "sent"
    assert any("asked to wait" in m for m in sink.messages("wait"))


# -- verification ----------------------------------------------------------------------------------------------


def test_stale_at_first_then_fresh_within_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _clock = setup(monkeypatch, origin={"static/app.js": "v2"}, edge={"static/app.js": "v1"},
                            edge_delay=3.0)
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, sink = run(p, "static/app.js")
    assert result.outcome is Outcome.OK, result.message
    [c] = result.verification
    assert (c.state, c.fresh, c.edge_etag, c.origin_etag) == ("fresh", True, "v2", "v2")
    assert c.url == f"{EDGE}/static/app.js" and c.cache == "MISS, age 0"
    assert any("not yet" in m for m in sink.messages("verify")), "the stale first look is reported"


def test_stale_after_wait_is_verification_failed_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, clock = setup(monkeypatch, origin={"static/app.js": "v2"}, edge={"static/app.js": "v1"},
                            edge_delay=10_000)
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, _ = run(p, "static/app.js", wait_seconds=30)
    assert result.outcome is Outcome.VERIFICATION_FAILED and result.outcome.exit_code == 2
    [c] = result.verification
    assert (c.state, c.fresh, c.edge_etag, c.origin_etag, c.cache) == ("stale", False, "v1", "v2", "HIT, age 42")
    assert clock.monotonic() >= 30 and "static/app.js" in result.message


def test_missing_at_the_origin_is_reported_and_a_deleted_file_still_served_is_stale(
        monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _clock = setup(monkeypatch, origin={"static/app.js": "v2"}, edge={"takedown.png": "v1"},
                            edge_delay=10_000)
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, sink = run(p, "static/app.js", "no/such.png", wait_seconds=5)
        assert result.outcome is Outcome.OK
        missing = next(c for c in result.verification if c.path == "no/such.png")
        assert (missing.state, missing.fresh) == ("missing", None)
        assert any("no/such.png" in m and "check the path" in m for m in sink.messages("verify"))
        takedown, _ = run(p, "takedown.png", wait_seconds=5)
    assert takedown.outcome is Outcome.VERIFICATION_FAILED
    assert takedown.verification[0].state == "stale" and "deleted at the origin" in takedown.verification[0].detail


def test_a_wildcard_is_verified_on_a_sample_listed_from_the_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    origin = {f"static/f{i:02}.js": "v2" for i in range(30)} | {"img/a.png": "v1"}
    p, world, _clock = setup(monkeypatch, origin=origin, edge=dict.fromkeys(origin, "v1"), edge_delay=1.0)
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, _ = run(p, "static/*")
    assert result.outcome is Outcome.OK and world.deletes[0][1] == ["static/*"]
    assert world.sampled == ["static/"] and len(result.verification) == 20
    assert all(c.path.startswith("static/") and c.fresh for c in result.verification)
    assert world.edge["img/a.png"] == "v1", "a file outside the wildcard stays cached"


# -- endpoints -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [EP_ID, ENDPOINT["origin"], ENDPOINT["endpoint"], "media.learnhub.example",
                                  "learnhub-media", f"https://{ENDPOINT['endpoint']}/"])
def test_endpoint_named_by_id_origin_hostname_custom_domain_or_bucket(monkeypatch: pytest.MonkeyPatch,
                                                                      name: str) -> None:
    p, world, _ = setup(monkeypatch)
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world, endpoints=[ENDPOINT, OTHER])
        result, _ = run(p, name, "static/app.js", verify=False)
    assert result.outcome is Outcome.OK and result.endpoint is not None and result.endpoint.id == EP_ID
    assert deletes.calls.last.request.url.path == f"/v2/cdn/endpoints/{EP_ID}/cache"
    assert json.loads(deletes.calls.last.request.content) == {"files": ["static/app.js"]}


def test_endpoint_omitted_when_there_is_one_and_the_first_path_is_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _ = setup(monkeypatch)
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, _ = run(p, "static/a.js", "static/b.js", verify=False)
    assert world.deletes[0][1] == ["static/a.js", "static/b.js"]
    assert result.endpoint is not None and result.endpoint.id == EP_ID


def test_unknown_endpoint_lists_the_endpoints_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _ = setup(monkeypatch)
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world, endpoints=[ENDPOINT, OTHER])
        with pytest.raises(UsageError) as info:
            run(p, "nosuch-bucket", "static/a.js")
        with pytest.raises(UsageError) as several:
            run(p, "static/a.js")
    assert "unknown CDN endpoint 'nosuch-bucket'" in info.value.message
    assert EP_ID in str(info.value.hint) and OTHER_ID in str(info.value.hint)
    assert "name one" in several.value.message and deletes.call_count == 0


# -- refusal, cancel, audit ------------------------------------------------------------------------------------


def test_a_refused_batch_is_refused_exit_2_and_the_rest_not_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, _ = setup(monkeypatch)
    answers = iter([None, httpx.Response(403, json={"id": "forbidden", "message": "You do not have access."})])
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world, delete=lambda r: next(answers, None))
        result, _ = run(p, *[f"static/f{i:03}.js" for i in range(120)], verify=False)
    assert result.outcome is Outcome.REFUSED and result.outcome.exit_code == 2
    assert [b.status for b in result.batches] == ["sent", "refused", "not sent"]
    assert "50 file string(s) were purged before it" in result.message and "write scope" in str(result.hint)


def test_cancel_during_the_pacing_wait_reports_what_was_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    p, world, clock = setup(monkeypatch)
    cancel = Cancel()
    real_sleep = clock.sleep

    def sleep(seconds: float, c: Cancel | None = None) -> None:
        if seconds > 10:  # the 20 s purge-limit wait: Ctrl-C
            cancel.cancel()
        real_sleep(seconds, c)

    monkeypatch.setattr(clock, "sleep", sleep)
    with respx.mock(assert_all_called=False) as router:
        mock_api(router, world)
        result, _ = run(p, *[f"static/f{i:03}.js" for i in range(120)], verify=False, cancel=cancel)
    assert result.outcome is Outcome.INTERRUPTED and len(world.deletes) == 1
    assert [b.status for b in result.batches] == ["sent", "not sent", "not sent"]
    assert "50 of 120" in result.message


def test_declined_sends_nothing_and_every_run_is_audited(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    p, world, _ = setup(monkeypatch, origin={"static/app.js": "v2"})
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world)
        declined, _ = run(p, "static/app.js", answer=False)
        _done, _ = run(p, "static/app.js")
    assert declined.outcome is Outcome.DECLINED and deletes.call_count == 1
    lines = (isolated_env / ".local" / "state" / "doops" / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["action"], r["outcome"]) for r in records] == [("cdn purge", "declined"), ("cdn purge", "ok")]
    assert records[1]["endpoint"]["id"] == EP_ID and records[1]["batches"][0]["files"] == ["static/app.js"]
    assert records[1]["platform"]["account_email"] == "sre@example.com"
    from doops.ops.audit import AuditQuery, read_audit

    log = read_audit(AuditQuery(action="cdn purge"))
    assert [e.target for e in log.entries] == [ENDPOINT["endpoint"]] * 2  # `doops audit` names the endpoint


# -- the command -----------------------------------------------------------------------------------------------


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "doops.yaml"
    path.write_text(f"cdn:\n  - origin: {ENDPOINT['origin']}\n    bucket: learnhub-media\n"
                    f"    endpoint_url: {EDGE}\n")
    return str(path)


@pytest.mark.parametrize("args, why", [
    (["--fold", "0", "static/a.js"], "--fold"), (["--fold", "many", "static/a.js"], "--fold"),
    (["--wait", "0s", "static/a.js"], "--wait"), (["--wait", "soon", "static/a.js"], "--wait"),
    (["static/*.js"], "wildcard"), ([], "no path"), (["--all", "learnhub-media", "static/a.js"], "--all"),
    (["--from-file", "/nonexistent/paths.txt"], "cannot read"),
])
def test_bad_options_are_exit_4_with_nothing_sent(tmp_path: Path, args: list[str], why: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        catch_all = router.route().respond(500, json={"id": "server_error", "message": "must not be called"})
        res = run_doops(["--config", write_config(tmp_path), "cdn", "purge", "--yes", *args],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4, (res.exit_code, res.stderr)
    assert catch_all.call_count == 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("doops: error:") and why in lines[0], res.stderr


def test_cli_unknown_endpoint_is_exit_4_listing_the_endpoints(tmp_path: Path) -> None:
    world = World(FakeClock())
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world, endpoints=[ENDPOINT, OTHER])
        res = run_doops(["--config", write_config(tmp_path), "cdn", "purge", "nosuch", "static/a.js", "--yes"],
                        env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4 and deletes.call_count == 0
    assert "unknown CDN endpoint 'nosuch'" in res.stderr and EP_ID in res.stderr and OTHER_ID in res.stderr


def test_cli_dry_run_json_has_the_documented_shape_and_sends_no_delete(tmp_path: Path) -> None:
    world = World(FakeClock())
    paths = tmp_path / "paths.txt"
    paths.write_text("# changed in release 42\n/static/app.js\n\nstatic/app.css\nstatic/app.js\n")
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world)
        res = run_doops(["--config", write_config(tmp_path), "cdn", "purge", "--from-file", str(paths),
                         "--dry-run", "-o", "json"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    assert deletes.call_count == 0
    data = res.json
    assert list(data) == ["endpoint", "requested", "folded", "batches", "verification", "duration_seconds",
                          "outcome"]
    assert data["endpoint"] == {"id": EP_ID, "origin": ENDPOINT["origin"], "endpoint": ENDPOINT["endpoint"],
                                "custom_domain": "media.learnhub.example"}
    assert data["requested"] == 2 and data["outcome"] == "dry_run"
    assert data["batches"] == [{"files": ["static/app.js", "static/app.css"], "sent_at": None, "status": "planned"}]
    assert "ETA" in res.stderr


def test_cli_purge_and_verify_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(FakeClock(), origin={"static/app.js": "v2"}, edge={"static/app.js": "v2"})
    monkeypatch.setattr(cdn, "open_origin", lambda platform, bucket, region: world)
    with respx.mock(assert_all_called=False) as router:
        deletes = mock_api(router, world)
        res = run_doops(["--no-color", "--config", write_config(tmp_path), "cdn", "purge", "static/app.js",
                         "--yes"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    assert deletes.call_count == 1 and "fresh" in res.stdout and "batch 1/1" in res.stderr


def test_without_an_etag_the_same_last_modified_and_length_is_fresh() -> None:
    from doops.ops.cdn import _same_version

    when = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    origin = OriginObject(True, None, when, 10)
    same = {"last-modified": "Sun, 01 Nov 2026 12:00:00 GMT", "content-length": "10"}
    assert _same_version(same, origin)
    assert not _same_version({**same, "content-length": "11"}, origin)
    assert not _same_version({**same, "last-modified": "Sun, 01 Nov 2026 11:59:00 GMT"}, origin)
    assert not _same_version({"etag": '"a"'}, OriginObject(True, "b", when, 10))
    assert _same_version({"etag": 'W/"b"'}, OriginObject(True, "b", when, 10))
