"""Cold start of `doops status`: what it imports, in which order and on which thread.

Each scenario runs in a fresh interpreter (a subprocess), as a monitoring system starts doops: only there is
`sys.modules` empty enough to tell what a run loads. The DigitalOcean API is respx; Spaces and Prometheus
point at a stub server on 127.0.0.1 (an unknown bucket for S3, empty answers for Prometheus).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CANARY_TOKEN

# Runs `doops <argv>` in this fresh interpreter and prints what it loaded, and when (as JSON).
DRIVER = r'''
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

events = []  # (kind, name, thread): in the order they happened
WATCHED = {"pydo", "psycopg", "boto3", "prometheus_api_client.prometheus_connect", "croniter", "rich", "redis"}
TOP = ("psycopg", "boto3", "botocore", "prometheus_api_client", "requests", "croniter", "rich", "pygments",
       "pydo", "doops", "redis")

class Recorder:
    """First in sys.meta_path: sees every import as it starts (import statements and import_module alike)."""
    def find_spec(self, name, path=None, target=None):
        if name in WATCHED and not any(e[1] == name for e in events):
            events.append(("import", name, threading.current_thread().name))
        return None
sys.meta_path.insert(0, Recorder())

class Stub(BaseHTTPRequestHandler):
    def _answer(self):
        if self.path.startswith("/api/v1/"):  # Prometheus: nothing up, nothing firing
            body = b'{"status":"success","data":{"activeTargets":[],"resultType":"vector","result":[]}}'
            self.send_response(200)
        else:  # S3: no such bucket
            body = b""
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_HEAD = do_POST = _answer
    def log_message(self, *args):
        pass

stub = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
threading.Thread(target=stub.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{stub.server_address[1]}"
os.environ["PROMETHEUS_URL"] = url
os.environ["AWS_ENDPOINT_URL_S3"] = url

from doops.cli import cli
import doops.clients.http  # httpx as the command loads it (respx below needs it first)
from doops.clients.http import RequestStats

sent = RequestStats.attempt
def attempt(self):
    events.append(("request", "", threading.current_thread().name))  # before the count others wait for
    sent(self)
RequestStats.attempt = attempt

import respx
LISTS = {"/v2/apps": "apps", "/v2/functions/namespaces": "namespaces", "/v2/databases": "databases",
         "/v2/cdn/endpoints": "endpoints", "/v2/monitoring/alerts": "policies", "/v2/uptime/checks": "checks"}
with respx.mock(base_url="https://api.digitalocean.com", assert_all_called=False) as api:
    # DRIVER_CACHE: one Valkey cluster whose server refuses connections (its checks run up to the probe).
    CACHE = [{"id": "c1", "name": "cache", "engine": "valkey", "status": "online", "num_nodes": 1,
              "connection": {"host": "127.0.0.1", "port": 9, "user": "default", "password": "pw-canary"}}]
    def answer(request):
        key = LISTS.get(request.url.path, "items")
        items = CACHE if key == "databases" and os.environ.get("DRIVER_CACHE") else []
        return __import__("httpx").Response(200, json={key: items})
    api.get(path__regex=r"^/v2/").mock(side_effect=answer)
    code = cli.main(sys.argv[1:], prog_name="doops", standalone_mode=False)
    paths = sorted({c.request.url.path for c in api.calls})
print("RESULT=" + json.dumps({"code": code, "events": events, "paths": paths,
                              "loaded": sorted(m for m in sys.modules if m.split(".")[0] in TOP)}))
'''
HEAVY = ("psycopg", "redis", "boto3", "prometheus_api_client.prometheus_connect", "croniter")
CONFIG = """\
spaces:
  access_key_env: SPACES_ACCESS_KEY_ID
  secret_key_env: SPACES_SECRET_ACCESS_KEY
  buckets:
  - name: media
    region: nyc3
prometheus:
  url_env: PROMETHEUS_URL
"""


def run_cold(tmp_path: Path, *args: str, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    config = tmp_path / "doops.yaml"
    config.write_text(CONFIG)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN,
           "DOOPS_CONFIG": str(config), "SPACES_ACCESS_KEY_ID": "key", "SPACES_SECRET_ACCESS_KEY": "secret-value",
           **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}, **(extra_env or {})}
    out = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, env=env,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, f"no result (exit {out.returncode}): {out.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT="):])
    return result


def test_status_cdn_imports_only_what_cdn_needs(tmp_path: Path) -> None:
    got = run_cold(tmp_path, "status", "cdn", "-o", "json")
    assert got["code"] == 0 and got["paths"] == ["/v2/cdn/endpoints"]
    loaded = set(got["loaded"])
    assert "pydo" in loaded  # the run did use the API client
    unwanted = {"psycopg", "boto3", "botocore", "prometheus_api_client", "requests", "croniter", "redis",
                "rich", "pygments",  # httpx's own CLI, not needed for JSON
                "pydo.agents",  # pydo.Client's agents/inference/gateway surfaces doops never calls
                "doops.clients.pg", "doops.clients.cache", "doops.ops.status.checks_data",
                "doops.ops.status.checks_prom", "doops.ops.status.checks_api"}
    assert sorted(loaded & unwanted) == []


def test_full_status_sends_its_first_requests_before_the_heavy_imports(tmp_path: Path) -> None:
    got = run_cold(tmp_path, "status", "-o", "json", "--timeout", "30s")
    events = [tuple(e) for e in got["events"]]
    imports = {name: (i, thread) for i, (kind, name, thread) in enumerate(events) if kind == "import"}
    assert "rich" not in imports  # JSON output never loads rich, not even through httpx
    pydo_at = imports["pydo"][0]
    for module in HEAVY:
        at, thread = imports[module]
        # One background thread loads them, one after another, never the checks beside it ...
        assert thread == "status-imports", (module, thread)
        # ... after pydo, and once the first call of every component using the API has left: apps, functions,
        # databases and cache (one shared list), cdn, monitoring.
        sent = [e for e in events[:at] if e[0] == "request"]
        assert at > pydo_at and len(sent) >= 5, (module, events)
    assert sorted(HEAVY, key=lambda m: imports[m][0]) == ["psycopg", "redis", "croniter", "boto3",
                                                         "prometheus_api_client.prometheus_connect"]
    assert got["code"] == 3  # the stub's unknown bucket: unknown, the run reported


def test_redis_loads_only_for_the_cache_and_in_the_background(tmp_path: Path) -> None:
    got = run_cold(tmp_path, "status", "databases", "-o", "json")
    assert "redis" not in got["loaded"] and "doops.clients.cache" not in got["loaded"]
    cached = run_cold(tmp_path, "status", "cache", "-o", "json", extra_env={"DRIVER_CACHE": "1"})
    imports = {name: thread for kind, name, thread in cached["events"] if kind == "import"}
    # The cache checks wait for the loader rather than importing redis beside it; psycopg is never loaded.
    assert imports["redis"] == "status-imports" and "psycopg" not in cached["loaded"]
    assert "doops.clients.cache" in cached["loaded"]
    assert cached["code"] == 2  # the probe did run: a refused connection is a crit ping


def test_httpx_command_line_still_imports_after_doops_loaded_httpx() -> None:
    code = ("import sys, doops.clients.http as h\n"
            "assert 'rich' not in sys.modules and h.httpx.__name__ == 'httpx'\n"
            "import httpx._main\n"
            "print('CLI=' + str('rich' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "CLI=True"


def test_clients_share_one_tls_context(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import httpx

    from doops.clients import http
    from doops.clients.web import WebClient

    made: list[Any] = []
    real = httpx.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    monkeypatch.setattr(http, "_tls", {}, raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    clients: list[http.ResilientHttp | WebClient] = [http.ResilientHttp(), http.ResilientHttp(), WebClient()]
    assert len(made) == 1 and made[0] == {"verify": True, "trust_env": True}
    # A trust store named in the environment is honoured as httpx honours it: a context of its own.
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    clients.append(http.ResilientHttp())
    assert len(made) == 2
    for c in clients:
        c.close()


def test_concurrent_spaces_clients_come_from_one_boto3_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    import boto3.session

    from doops.clients import spaces
    from doops.config import SpacesConfig

    made: list[int] = []
    real_init = boto3.session.Session.__init__

    def slow_init(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(1)
        time.sleep(0.2)  # widens the window in which a second thread would make a second session
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", slow_init)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setattr(spaces, "_session", None, raising=False)
    monkeypatch.setenv("SPACES_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", "secret-value")
    cfg = SpacesConfig(endpoint_url="http://127.0.0.1:9")
    clients: dict[str, Any] = {}
    threads = [threading.Thread(target=lambda r=r: clients.__setitem__(r, spaces.make_client(cfg, r)))
               for r in ("nyc3", "ams3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(clients) == ["ams3", "nyc3"] and len(made) == 1
    assert clients["nyc3"].meta.region_name == "nyc3" and clients["ams3"].meta.region_name == "ams3"


LOADED: list[tuple[str, str]] = []  # (module, thread) appended by the modules the next test writes


def test_background_imports_load_in_order_on_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.ops.status.engine import Imports

    for name in ("doops_slow_a", "doops_slow_b"):
        (tmp_path / f"{name}.py").write_text(
            f"import sys, threading\nsys.modules[{__name__!r}].LOADED.append(({name!r}, "
            "threading.current_thread().name))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    LOADED.clear()
    seen = LOADED
    gate = threading.Event()
    imports = Imports(["doops_slow_a", "doops_slow_b", "json"], after=gate.wait)
    assert imports.modules == ["doops_slow_a", "doops_slow_b"]  # what is loaded already is not waited for
    imports.wait("json")  # not the loader's: returns at once
    imports.start()
    assert seen == []  # the loader waits for its gate (the run's first API calls)
    gate.set()
    imports.wait("doops_slow_b")
    assert seen == [("doops_slow_a", "status-imports"), ("doops_slow_b", "status-imports")]
    for name in ("doops_slow_a", "doops_slow_b"):
        sys.modules.pop(name, None)


def test_first_run_collects_no_garbage_while_loading_and_restores_the_gc(monkeypatch: pytest.MonkeyPatch) -> None:
    from doops.cli import status as status_cli

    monkeypatch.setattr(status_cli, "_cold", True)
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    try:
        with status_cli.cold_start():
            assert not gc.isenabled()
        assert gc.isenabled() and gc.get_freeze_count() > frozen
        with status_cli.cold_start():  # later runs of the same process load nothing: the GC is left alone
            assert gc.isenabled()
    finally:
        gc.unfreeze()
