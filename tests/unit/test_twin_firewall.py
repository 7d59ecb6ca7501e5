"""Database and cache firewalls (trusted sources) in the twin: GET/PUT .../firewall as the spec describes them,
the spec's rule types and value forms checked (a 422 changes nothing), and a default scenario whose sources are
the apps and a tag only, in a VPC, so a healthy sandbox has no open source."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from doops.sandbox.api import TwinServer, World, load_scenario


class Clock:
    def __init__(self, t: float = 1_790_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Twin:
    def __init__(self) -> None:
        scenario = load_scenario()
        self.clock = Clock()
        self.world = World.from_scenario(scenario, clock=self.clock)
        self.server = TwinServer(self.world).start()
        self.client = httpx.Client(base_url=self.server.url,
                                   headers={"Authorization": f"Bearer {scenario.tokens['sandbox']}"})

    def cluster_id(self, name: str) -> str:
        c = self.world.find_cluster_by_name(name)
        assert c is not None
        return c.id

    def app_id(self, name: str) -> str:
        a = self.world.find_app_by_name(name)
        assert a is not None
        return a.id

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def twin() -> Iterator[Twin]:
    t = Twin()
    yield t
    t.close()


def _rules(twin: Twin, cluster: str) -> list[dict[str, Any]]:
    r = twin.client.get(f"/v2/databases/{twin.cluster_id(cluster)}/firewall")
    assert r.status_code == 200, r.text
    return list(r.json()["rules"])


@pytest.mark.parametrize("cluster", ["learnhub-db", "learnhub-cache"])
def test_default_rules_are_the_apps_and_a_tag_with_no_ip_range(twin: Twin, cluster: str) -> None:
    rules = _rules(twin, cluster)
    assert sorted((r["type"], r["value"]) for r in rules) == sorted([
        ("app", twin.app_id("learnhub-api")), ("app", twin.app_id("learnhub-api-ams3")), ("tag", "learnhub-api")])
    cid = twin.cluster_id(cluster)
    for r in rules:  # the fields the spec's example shows
        assert r["cluster_uuid"] == cid and r["uuid"] and r["created_at"].endswith("Z")
    assert not any(r["type"] == "ip_addr" for r in rules)


@pytest.mark.parametrize("cluster", ["learnhub-db", "learnhub-cache"])
def test_clusters_are_in_the_vpc_with_a_private_connection(twin: Twin, cluster: str) -> None:
    body = twin.client.get(f"/v2/databases/{twin.cluster_id(cluster)}").json()["database"]
    assert body["private_network_uuid"] == twin.world.vpc_uuid and len(body["private_network_uuid"]) == 36
    assert body["private_connection"]["host"] and body["private_connection"]["ssl"] is True
    assert [(r["type"], r["value"]) for r in body["rules"]] == [(r["type"], r["value"]) for r in _rules(twin, cluster)]


def test_put_replaces_the_rules_and_get_and_the_cluster_show_them(twin: Twin) -> None:
    cid = twin.cluster_id("learnhub-db")
    before = len(twin.client.get(f"/v2/databases/{cid}/events").json()["events"])
    new = [{"type": "ip_addr", "value": "0.0.0.0/0", "description": "open to the world"},
           {"type": "droplet", "value": "163973392"},
           {"type": "k8s", "value": "ff2a6c52-5a44-4b63-b99c-0e98e7a63d61"},
           {"type": "app", "value": twin.app_id("learnhub-web")}]
    r = twin.client.put(f"/v2/databases/{cid}/firewall", json={"rules": new})
    assert r.status_code == 204 and r.content == b""
    got = _rules(twin, "learnhub-db")
    assert [(g["type"], g["value"]) for g in got] == [(n["type"], n["value"]) for n in new]
    assert got[0]["description"] == "open to the world"
    cluster = twin.client.get(f"/v2/databases/{cid}").json()["database"]
    assert [r["value"] for r in cluster["rules"]] == [n["value"] for n in new]
    events = twin.client.get(f"/v2/databases/{cid}/events").json()["events"]
    assert len(events) == before + 1 and events[0]["event_type"] == "cluster_update"


def test_an_app_rule_may_name_the_app_and_the_api_holds_its_id(twin: Twin) -> None:
    cid = twin.cluster_id("learnhub-cache")
    r = twin.client.put(f"/v2/databases/{cid}/firewall", json={"rules": [{"type": "app", "value": "learnhub-api"}]})
    assert r.status_code == 204
    assert [(g["type"], g["value"]) for g in _rules(twin, "learnhub-cache")] == [("app", twin.app_id("learnhub-api"))]


def test_an_empty_list_removes_every_rule(twin: Twin) -> None:
    cid = twin.cluster_id("learnhub-db")
    assert twin.client.put(f"/v2/databases/{cid}/firewall", json={"rules": []}).status_code == 204
    assert _rules(twin, "learnhub-db") == []


@pytest.mark.parametrize(("rules", "problem"), [
    ([{"type": "cidr", "value": "10.0.0.0/8"}], "rule type 'cidr' is not one of"),
    ([{"type": "ip_addr"}], "each rule needs type and value"),
    (["10.0.0.1"], "each rule needs type and value"),
    ([{"type": "ip_addr", "value": "not-an-ip"}], "is not an IPv4 address or CIDR range"),
    ([{"type": "ip_addr", "value": "10.0.0.0/33"}], "is not an IPv4 address or CIDR range"),
    ([{"type": "ip_addr", "value": "2001:db8::1"}], "IPv6 addresses cannot be added"),
    ([{"type": "ip_addr", "value": ""}], "must be a non-empty string"),
    ([{"type": "tag", "value": 5}], "must be a non-empty string"),
    ([{"type": "droplet", "value": "web-1"}], "is not a Droplet id"),
    ([{"type": "k8s", "value": "cluster-1"}], "is not a Kubernetes cluster id"),
    ([{"type": "tag", "value": "has space"}], "is not a tag name"),
    ([{"type": "app", "value": "no-such-app"}], "no app 'no-such-app'"),
    ([{"type": "tag", "value": f"t{i}"} for i in range(101)], "at most 100 rules"),
    ("ip_addr:0.0.0.0/0", "rules must be a list"),
])
def test_a_bad_rule_is_a_422_and_changes_nothing(twin: Twin, rules: Any, problem: str) -> None:
    cid = twin.cluster_id("learnhub-db")
    before = _rules(twin, "learnhub-db")
    # a good rule first: the whole PUT is refused, not applied up to the bad one
    body = {"rules": [{"type": "ip_addr", "value": "0.0.0.0/0"}, *rules] if isinstance(rules, list) else rules}
    r = twin.client.put(f"/v2/databases/{cid}/firewall", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["id"] == "unprocessable_entity" and problem in r.json()["message"]
    assert _rules(twin, "learnhub-db") == before


def test_unknown_cluster_is_a_404(twin: Twin) -> None:
    r = twin.client.put("/v2/databases/9cc10173-e9ea-4176-9dbc-a4cee4c4ff30/firewall", json={"rules": []})
    assert r.status_code == 404
