"""`doops status -o json` against sandboxes with 50 ms of API latency: wall time and API requests,
parallel (default) against sequential (--concurrency 1), on the default and on a scaled scenario.

Targets: default scenario under 1.0 s; scaled (100 apps, 100 CDN endpoints, 50 uptime checks, 50 alert
policies) under 2.5 s and at least 8x faster than sequential.

Two figures per run: the process wall time (Python start and the cold import of pydo, boto3, psycopg:
about 1 s of CPU on this machine) and the time of the checks themselves (`duration_ms` of a second run
in the same process, as `--watch` and a long-lived monitor see it).
Run: python benchmarks/status.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCALED = "scale: {apps: 100, cdn_endpoints: 100, uptime_checks: 50, alert_policies: 50}\n"
WARM = """
import json, os, sys, time, httpx
from doops.platform import Platform
from doops.ops.status import run_status
app = Platform(config_path=os.environ["DOOPS_CONFIG"], config_explicit=True)
c = int(sys.argv[1])
run_status(app, concurrency=c)
httpx.delete(sys.argv[2], headers={"X-Twin-Admin-Secret": sys.argv[3]}).raise_for_status()
app._do.http.limiter.remaining = None  # the budget was just reset
t = time.perf_counter(); r = run_status(app, concurrency=c)
print(json.dumps({"seconds": time.perf_counter() - t, "api_requests": r.api_requests, "overall": r.overall.value}))
"""


def sandbox_env(d: Path) -> dict[str, str]:
    from doops.sandbox.control import read_env_file

    return {**os.environ, **read_env_file(d / "env.sh")}


def doops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doops", *args], env=env, capture_output=True, text=True)


def reset_budget(state: dict[str, str]) -> None:
    """A fresh rate-limit budget per run (the twin's admin route; faults such as --latency stay)."""
    import httpx

    httpx.delete(state["api_url"] + "/_twin/ratelimit", headers={"X-Twin-Admin-Secret": state["admin_secret"]},
                 timeout=10).raise_for_status()


def measure(d: Path, concurrency: int, runs: int = 3) -> dict[str, float]:
    env = sandbox_env(d)
    state = json.loads((d / "sandbox.json").read_text())
    walls, reqs, warm = [], [], []
    for _ in range(runs):
        reset_budget(state)
        started = time.perf_counter()
        out = doops(env, "status", "-o", "json", "--concurrency", str(concurrency))
        walls.append(time.perf_counter() - started)
        reqs.append(json.loads(out.stdout)["api_requests"])
    for _ in range(runs):
        reset_budget(state)
        out2 = subprocess.run([sys.executable, "-c", WARM, str(concurrency), state["api_url"] + "/_twin/ratelimit",
                               state["admin_secret"]], env=env, capture_output=True, text=True, check=True)
        warm.append(json.loads(out2.stdout)["seconds"])
    return {"wall": statistics.median(walls), "warm": statistics.median(warm), "requests": statistics.median(reqs)}


def scenario(label: str, scenario_text: str | None) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="doops-bench-") as tmp:
        d = Path(tmp) / "sb"
        args = ["sandbox", "up", "--dir", str(d), "--latency", "50"]
        if scenario_text:
            (Path(tmp) / "scenario.yaml").write_text(scenario_text)
            args += ["--scenario", str(Path(tmp) / "scenario.yaml")]
        subprocess.run([sys.executable, "-m", "doops", *args], check=True, capture_output=True)
        try:
            par = measure(d, 16)
            seq = measure(d, 1)
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)
    print(f"{label}: parallel  wall {par['wall']:.2f}s, checks {par['warm']:.2f}s, {par['requests']:.0f} API requests")
    print(f"{label}: sequential wall {seq['wall']:.2f}s, checks {seq['warm']:.2f}s, {seq['requests']:.0f} API requests")
    print(f"{label}: speed-up {seq['warm'] / par['warm']:.1f}x (checks), {seq['wall'] / par['wall']:.1f}x (wall)")
    return {"parallel": par, "sequential": seq}


def main() -> None:
    default = scenario("default", None)
    scaled = scenario("scaled ", SCALED)
    print(f"target default < 1.0 s: checks {'met' if default['parallel']['warm'] < 1.0 else 'MISSED'}, "
          f"wall {'met' if default['parallel']['wall'] < 1.0 else 'MISSED'}")
    sp = scaled["sequential"]["warm"] / scaled["parallel"]["warm"]
    print(f"target scaled < 2.5 s and >= 8x: checks {scaled['parallel']['warm']:.2f}s {sp:.1f}x "
          f"({'met' if scaled['parallel']['warm'] < 2.5 and sp >= 8 else 'MISSED'}), "
          f"wall {scaled['parallel']['wall']:.2f}s ({'met' if scaled['parallel']['wall'] < 2.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
