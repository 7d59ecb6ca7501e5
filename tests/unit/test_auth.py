from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import respx

from tests.helpers import CANARY_TOKEN, run_doops

API = "https://api.digitalocean.com"
ACCOUNT = {"account": {"uuid": "u-1", "email": "sre@learnhub.example", "status": "active", "droplet_limit": 25,
                       "email_verified": True, "status_message": "", "floating_ip_limit": 3}}


def _bearer(request: httpx.Request) -> str:
    return request.headers.get("authorization", "")


@pytest.fixture
def api() -> respx.MockRouter:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/v2/account").respond(200, json=ACCOUNT)
        yield router


def write_doctl(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / ".config" / "doctl" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_env_token(api: respx.MockRouter) -> None:
    res = run_doops(["-o", "json", "auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    assert res.json["source"] == "env:DIGITALOCEAN_ACCESS_TOKEN"
    assert res.json["account"]["email"] == "sre@learnhub.example"
    assert _bearer(api.calls.last.request) == f"Bearer {CANARY_TOKEN}"


def test_second_env_var(api: respx.MockRouter) -> None:
    res = run_doops(["-o", "json", "auth", "status"], env={"DIGITALOCEAN_TOKEN": CANARY_TOKEN})
    assert res.json["source"] == "env:DIGITALOCEAN_TOKEN"


def test_flag_beats_env(api: respx.MockRouter) -> None:
    res = run_doops(["--access-token", CANARY_TOKEN, "-o", "json", "auth", "status"],
                    env={"DIGITALOCEAN_ACCESS_TOKEN": "dop_v1_other"})
    assert res.json["source"] == "flag"
    assert _bearer(api.calls.last.request) == f"Bearer {CANARY_TOKEN}"


def test_doctl_config_contexts(api: respx.MockRouter, isolated_env: Path) -> None:
    write_doctl(isolated_env, f"access-token: dop_v1_default0000\ncontext: staging\n"
                              f"auth-contexts:\n  staging: {CANARY_TOKEN}\n  prod: dop_v1_prod00000000\n")
    res = run_doops(["-o", "json", "auth", "status"])
    assert res.exit_code == 0, res.stderr
    assert res.json["source"] == "doctl-config" and res.json["context"] == "staging"
    assert _bearer(api.calls.last.request) == f"Bearer {CANARY_TOKEN}"
    res = run_doops(["--context", "default", "-o", "json", "auth", "status"], secrets=("dop_v1_default0000",))
    assert _bearer(api.calls.last.request) == "Bearer dop_v1_default0000"
    res = run_doops(["-o", "json", "auth", "status"], env={"DIGITALOCEAN_CONTEXT": "prod"},
                    secrets=("dop_v1_prod00000000",))
    assert res.json["context"] == "prod"


def test_doctl_unknown_context(isolated_env: Path) -> None:
    write_doctl(isolated_env, "access-token: dop_v1_default0000\n")
    res = run_doops(["--context", "nope", "auth", "status"])
    assert res.exit_code == 3
    assert "no token for context 'nope'" in res.stderr and "known contexts: default" in res.stderr


def test_doctl_config_permission_warning(api: respx.MockRouter, isolated_env: Path) -> None:
    path = write_doctl(isolated_env, f"access-token: {CANARY_TOKEN}\n", mode=0o644)
    res = run_doops(["-o", "json", "auth", "status"])
    assert res.exit_code == 0
    assert f"chmod 600 {path}" in res.stderr
    assert res.json["warnings"]


def test_xdg_config_home(api: respx.MockRouter, isolated_env: Path, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "doctl").mkdir(parents=True)
    (xdg / "doctl" / "config.yaml").write_text(f"access-token: {CANARY_TOKEN}\n")
    res = run_doops(["-o", "json", "auth", "status"], env={"XDG_CONFIG_HOME": str(xdg)})
    assert res.json["config_path"] == str(xdg / "doctl" / "config.yaml")


def test_no_token_exit_3() -> None:
    res = run_doops(["auth", "status"])
    assert res.exit_code == 3
    assert res.stderr.startswith("doops: error: no DigitalOcean token found")
    assert "Traceback" not in res.stderr
    assert res.stdout == ""


def test_401_gives_exit_3_and_do_message() -> None:
    with respx.mock(base_url=API) as router:
        router.get("/v2/account").respond(
            401, json={"id": "unauthorized", "message": "Unable to authenticate you.", "request_id": "req-401"})
        res = run_doops(["auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 3
    assert "Unable to authenticate you." in res.stderr and "req-401" in res.stderr
    assert "Traceback" not in res.stderr
