"""The ``dns`` section of the doops config: which name servers to ask (authoritative ones), which records front
an app; and the section a sandbox writes for its own DNS server."""

from __future__ import annotations

import pytest
import yaml

from doops.config import DIGITALOCEAN_NAMESERVERS, parse_config
from doops.errors import ConfigError
from doops.sandbox.supervisor import sandbox_config


def test_default_asks_digitalocean_name_servers_on_port_53() -> None:
    cfg = parse_config("")
    assert cfg.dns.nameservers == list(DIGITALOCEAN_NAMESERVERS) and cfg.dns.failover_records == []
    assert cfg.dns.addresses() == [(f"ns{i}.digitalocean.com", 53) for i in (1, 2, 3)]


def test_host_port_forms_and_failover_records() -> None:
    cfg = parse_config("dns:\n  nameservers: ['127.0.0.1:5353', ns1.digitalocean.com, '[::1]:5300', '::1']\n"
                       "  failover_records:\n    - {domain: learnhub.example, name: api, app: learnhub-api}\n")
    assert cfg.dns.addresses() == [("127.0.0.1", 5353), ("ns1.digitalocean.com", 53), ("::1", 5300), ("::1", 53)]
    (rec,) = cfg.dns.failover_records
    assert (rec.domain, rec.name, rec.type, rec.app) == ("learnhub.example", "api", "CNAME", "learnhub-api")


@pytest.mark.parametrize(("text", "expected"), [
    ("dns:\n  nameservers: []\n", "f.yaml:2: key 'dns.nameservers': empty list"),
    ("dns:\n  nameservers:\n    - ns1.digitalocean.com\n    - 'bad host'\n",
     "f.yaml:4: key 'dns.nameservers[1]': 'bad host' is not a host name or IP address"),
    ("dns:\n  nameservers: ['127.0.0.1:99999']\n", "key 'dns.nameservers[0]': port '99999' is not a number"),
    ("dns:\n  nameservers: ['127.0.0.1:']\n", "key 'dns.nameservers[0]': '127.0.0.1:' has no port"),
    ("dns:\n  nameservers: ['[::1']\n", "key 'dns.nameservers[0]': '[::1' is not host[:port]"),
    ("dns:\n  nameserver: [a]\n", "f.yaml:2: key 'dns.nameserver': unknown key"),
    ("dns:\n  failover_records:\n    - {name: api}\n", "missing required key 'domain'"),
])
def test_bad_dns_section_names_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "f.yaml")
    assert expected in str(err.value)


def test_sandbox_config_names_its_dns_server_and_the_api_record() -> None:
    state = {"api_url": "http://127.0.0.1:1", "prometheus_url": None, "spaces": {"endpoint_url": "http://127.0.0.1:2"},
             "cdn": {}, "dns": {"nameservers": ["127.0.0.1:5399"]}}
    cfg = parse_config(yaml.safe_dump(sandbox_config(state, {})), "doops.yaml")
    assert cfg.dns.addresses() == [("127.0.0.1", 5399)]
    records = [(r.domain, r.name, r.app) for r in cfg.dns.failover_records]
    assert records == [("learnhub.example", "api", "learnhub-api")]
    assert "dns" not in sandbox_config({**state, "dns": None}, {})  # no server: production defaults stay
