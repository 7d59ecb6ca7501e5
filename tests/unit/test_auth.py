from __future__ import annotations

import os
from collections.abc import Iterator
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
def api() -> Iterator[respx.MockRouter]:
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


# Malformed tokens: exit 4, one line, before any request, and no part of the token in the output.

TAIL = "TAILSECRETPART"


@pytest.mark.parametrize("token", [
    f"dop_v1_abc\n{TAIL}", f"dop_v1_abc {TAIL}", f"dop_v1_abc\t{TAIL}", f"dop_v1_abc\x01{TAIL}",
    f"dop_v1_abcé{TAIL}", f"dop_v1_abc{TAIL}\n", "dop_v1_" + TAIL * 80,
])
@pytest.mark.parametrize("where", ["flag", "env", "doctl"])
def test_malformed_token_is_exit_4_and_never_echoed(api: respx.MockRouter, isolated_env: Path, token: str,
                                                    where: str) -> None:
    args, env = ["auth", "status"], {}
    if where == "flag":
        args = ["--access-token", token, *args]
    elif where == "env":
        env = {"DIGITALOCEAN_ACCESS_TOKEN": token}
    else:
        import yaml

        write_doctl(isolated_env, yaml.safe_dump({"access-token": token}))
    res = run_doops(args, env=env, secrets=(TAIL, "dop_v1_abc"))
    assert res.exit_code == 4, res.stderr
    assert res.stderr.startswith("doops: error: the token from ") and res.stderr.count("\n") == 1
    assert not api.calls  # refused before any request
    assert res.stdout == ""


def test_malformed_token_in_status_is_exit_4_not_unknown() -> None:
    res = run_doops(["status", "cache"], env={"DIGITALOCEAN_ACCESS_TOKEN": f"abc\n{TAIL}"}, secrets=(TAIL,))
    assert res.exit_code == 4 and "contains a newline" in res.stderr and res.stdout == ""


@pytest.mark.parametrize("url, problem", [
    ("https://" + "a" * 100_000 + ".example", "characters long"),
    ("https://api.digitalocean.com/v2 x", "whitespace"),
    ("https://api.digitalocean.com:99999", "port"),
    ("api.digitalocean.com", "expected http(s)://host"),
])
def test_bad_api_url_is_exit_4_one_short_line(api: respx.MockRouter, url: str, problem: str) -> None:
    for args, env in ((["--api-url", url], {}), ([], {"DIGITALOCEAN_API_URL": url})):
        for cmd in (["auth", "status"], ["status", "cache"]):
            res = run_doops([*args, *cmd], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN, **env})
            assert res.exit_code == 4, (cmd, res.stderr[:300])
            assert problem in res.stderr and res.stderr.count("\n") == 1 and len(res.stderr) < 400
    assert not api.calls


def test_bad_api_url_in_config_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "doops.yaml"
    cfg.write_text("discover_tag: x\napi_url: 'https://api example.com'\n")
    res = run_doops(["--config", str(cfg), "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 4
    assert f"{cfg}:2: key 'api_url': API URL contains whitespace" in res.stderr


def test_huge_token_never_reaches_the_api_as_a_431(api: respx.MockRouter) -> None:
    res = run_doops(["auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": "a" * 100_000}, secrets=("a" * 50,))
    assert res.exit_code == 4 and "100000 characters long" in res.stderr and res.stderr.count("\n") == 1
    assert not api.calls


# An explicit context wins over the token variables, and auth status says which token and why.

def _contexts(home: Path) -> None:
    write_doctl(home, "access-token: dop_v1_default0000\ncontext: default\n"
                      "auth-contexts:\n  prod: dop_v1_prod00000000\n  staging: dop_v1_staging000000\n")


def test_explicit_context_beats_token_variable(api: respx.MockRouter, isolated_env: Path) -> None:
    _contexts(isolated_env)
    res = run_doops(["--context", "prod", "-o", "json", "auth", "status"],
                    env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}, secrets=(CANARY_TOKEN, "dop_v1_prod00000000"))
    assert res.exit_code == 0, res.stderr
    assert _bearer(api.calls.last.request) == "Bearer dop_v1_prod00000000"
    assert (res.json["source"], res.json["context"]) == ("doctl-config", "prod")
    assert "--context prod" in res.json["reason"]
    assert "DIGITALOCEAN_ACCESS_TOKEN (set but not used)" in res.json["reason"]


def test_context_variable_beats_token_variable_too(api: respx.MockRouter, isolated_env: Path) -> None:
    _contexts(isolated_env)
    res = run_doops(["-o", "json", "auth", "status"], secrets=("dop_v1_staging000000",),
                    env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN, "DIGITALOCEAN_CONTEXT": "staging"})
    assert _bearer(api.calls.last.request) == "Bearer dop_v1_staging000000"
    assert res.json["context"] == "staging" and "DIGITALOCEAN_CONTEXT=staging" in res.json["reason"]


def test_env_token_reports_no_context_and_why(api: respx.MockRouter, isolated_env: Path) -> None:
    _contexts(isolated_env)
    res = run_doops(["auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 0, res.stderr
    rows = dict(line.split(None, 1) for line in res.stdout.splitlines()[2:] if line.strip())
    assert rows["source"].strip() == "env:DIGITALOCEAN_ACCESS_TOKEN" and rows["context"].strip() == "-"
    assert "DIGITALOCEAN_ACCESS_TOKEN is set" in rows["why"]


def test_access_token_and_context_flags_conflict(api: respx.MockRouter, isolated_env: Path) -> None:
    _contexts(isolated_env)
    res = run_doops(["--access-token", CANARY_TOKEN, "--context", "prod", "auth", "status"])
    assert res.exit_code == 4 and "both name a token" in res.stderr
    assert not api.calls


def test_access_token_flag_beats_context_variable(api: respx.MockRouter, isolated_env: Path) -> None:
    _contexts(isolated_env)
    res = run_doops(["--access-token", CANARY_TOKEN, "-o", "json", "auth", "status"],
                    env={"DIGITALOCEAN_CONTEXT": "prod"})
    assert _bearer(api.calls.last.request) == f"Bearer {CANARY_TOKEN}"
    assert res.json["source"] == "flag" and res.json["context"] is None
    assert "DIGITALOCEAN_CONTEXT=prod not used" in res.json["reason"]


def test_context_without_doctl_config_does_not_fall_back_to_env(api: respx.MockRouter) -> None:
    res = run_doops(["--context", "prod", "auth", "status"], env={"DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN})
    assert res.exit_code == 3 and "--context prod names a doctl context" in res.stderr
    assert not api.calls
