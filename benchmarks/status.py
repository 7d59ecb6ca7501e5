"""`doops status -o json` against sandboxes with 50 ms of API latency.

Cold start (the figure a monitoring system sees, one fresh process per run): wall time of `doops status -o json`
on the default scenario, median of 5 (min, max), against the target of under 1.0 s. Beside it the import
floor: median of 5 of a process that only imports the modules a full status run loads (recorded from a real
run, in the order it loaded them), with no request and no check: the part of the cold time that no overlap
of imports with network waits can remove (imports hold the GIL).

Then the checks themselves, parallel (default) against sequential (--concurrency 1), on the default and on a
scaled scenario (100 apps, 100 CDN endpoints, 50 uptime checks, 50 alert policies): process wall time and
`duration_ms` of a second run in the same process (as `--watch` and a long-lived monitor see it). Targets:
scaled under 2.5 s and at least 8x faster than sequential.

Run: python benchmarks/status.py            (both scenarios; `--cold-only` for the cold-start figures alone)
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

COLD_TARGET = 1.0  # seconds, cold process, median of 5
COLD_RUNS = 5
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
# Runs `doops status -o json` as the CLI does and writes the names of the modules it loaded, in load order.
RECORD = """
import json, sys
from doops.cli import cli
try:
    cli.main(["status", "-o", "json"], prog_name="doops", standalone_mode=False)
finally:
    with open(sys.argv[1], "w") as f:
        json.dump(list(sys.modules), f)
"""
# Imports those modules and nothing else: no config, no client, no request. The garbage collector is set as
# a status run sets it (off while it loads, objects frozen at exit), and httpx's command line is kept out as
# doops.clients.http keeps it out (it would pull in rich and pygments), so the floor is a lower bound.
FLOOR = """
import atexit, gc, importlib, json, sys
gc.disable()
atexit.register(gc.freeze)
sys.modules["httpx._main"] = None
for name in json.load(open(sys.argv[1])):
    if name in sys.modules or name == "__main__":
        continue
    try:
        importlib.import_module(name)
    except Exception:
        pass
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


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def cold(d: Path) -> dict[str, dict[str, float]]:
    """Cold `doops status -o json` (fresh process each) and the import floor, median of 5 each."""
    env = sandbox_env(d)
    state = json.loads((d / "sandbox.json").read_text())
    reset_budget(state)
    doops(env, "status", "-o", "json")  # warms the sandbox's servers, not doops: each measured run is a new process
    walls: list[float] = []
    for _ in range(COLD_RUNS):
        reset_budget(state)
        started = time.perf_counter()
        out = doops(env, "status", "-o", "json")
        walls.append(time.perf_counter() - started)
        if out.returncode != 0:
            raise SystemExit(f"status exited {out.returncode}: {out.stderr.strip()[:300]}")
    with tempfile.TemporaryDirectory(prefix="doops-bench-") as tmp:
        modules = Path(tmp) / "modules.json"
        reset_budget(state)
        subprocess.run([sys.executable, "-c", RECORD, str(modules)], env=env, capture_output=True, check=True)
        floors: list[float] = []
        for _ in range(COLD_RUNS):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", FLOOR, str(modules)], env=env, check=True)
            floors.append(time.perf_counter() - started)
        bare: list[float] = []
        for _ in range(COLD_RUNS):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.perf_counter() - started)
    return {"wall": spread(walls), "floor": spread(floors), "python": spread(bare)}


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


def scenario(label: str, scenario_text: str | None, with_cold: bool = False,
             cold_only: bool = False) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="doops-bench-") as tmp:
        d = Path(tmp) / "sb"
        args = ["sandbox", "up", "--dir", str(d), "--latency", "50"]
        if scenario_text:
            (Path(tmp) / "scenario.yaml").write_text(scenario_text)
            args += ["--scenario", str(Path(tmp) / "scenario.yaml")]
        subprocess.run([sys.executable, "-m", "doops", *args], check=True, capture_output=True)
        try:
            result: dict[str, dict[str, float]] = {}
            if with_cold:
                c = cold(d)
                result["cold"] = c["wall"]
                result["floor"] = c["floor"]
                result["python"] = c["python"]
            if not cold_only:
                result["parallel"] = measure(d, 16)
                result["sequential"] = measure(d, 1)
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)
    if "cold" in result:
        w, f, p = result["cold"], result["floor"], result["python"]
        print(f"{label}: cold `doops status -o json`: median {w['median']:.2f}s (min {w['min']:.2f}, "
              f"max {w['max']:.2f}) of {COLD_RUNS} fresh processes")
        print(f"{label}: import floor (only the modules a full status loads): median {f['median']:.2f}s "
              f"(min {f['min']:.2f}, max {f['max']:.2f}); python -c pass {p['median']:.3f}s")
        print(f"{label}: above the floor (config, clients, requests, checks, output): "
              f"{w['median'] - f['median']:.2f}s")
    if "parallel" in result:
        par, seq = result["parallel"], result["sequential"]
        print(f"{label}: parallel  wall {par['wall']:.2f}s, checks {par['warm']:.2f}s, "
              f"{par['requests']:.0f} API requests")
        print(f"{label}: sequential wall {seq['wall']:.2f}s, checks {seq['warm']:.2f}s, "
              f"{seq['requests']:.0f} API requests")
        print(f"{label}: speed-up {seq['warm'] / par['warm']:.1f}x (checks), {seq['wall'] / par['wall']:.1f}x (wall)")
    return result


def main() -> None:
    cold_only = "--cold-only" in sys.argv[1:]
    default = scenario("default", None, with_cold=True, cold_only=cold_only)
    wall = default["cold"]["median"]
    floor = default["floor"]["median"]
    print(f"target cold default < {COLD_TARGET:.1f} s (median of {COLD_RUNS}): {wall:.2f}s "
          f"{'met' if wall < COLD_TARGET else 'MISSED'}; import floor {floor:.2f}s"
          + (" (the floor alone is over the target)" if floor >= COLD_TARGET else ""))
    if cold_only:
        return
    print(f"target default checks < 1.0 s: {default['parallel']['warm']:.2f}s "
          f"{'met' if default['parallel']['warm'] < 1.0 else 'MISSED'}")
    scaled = scenario("scaled ", SCALED)
    sp = scaled["sequential"]["warm"] / scaled["parallel"]["warm"]
    print(f"target scaled < 2.5 s and >= 8x: checks {scaled['parallel']['warm']:.2f}s {sp:.1f}x "
          f"({'met' if scaled['parallel']['warm'] < 2.5 and sp >= 8 else 'MISSED'}), "
          f"wall {scaled['parallel']['wall']:.2f}s ({'met' if scaled['parallel']['wall'] < 2.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
