"""`doops exporter` on the scaled scenario: evaluation time, API calls per evaluation, and memory (RSS) over
1,000 evaluations (no growth expected), plus the time a scrape takes.

The evaluations run through the library (doops.ops.exporter) back to back: the interval's wait is a fake one
that returns at once, so 1,000 evaluations take 1,000 evaluation times, not 1,000 minutes. The twin's rate
limit is reset after each evaluation (untimed), as the stretched interval would: back to back, thirty
evaluations would spend the token's 5,000 requests an hour and the rest would time the twin's rate limit.
A sandbox of the scaled scenario (100 apps, 100 CDN endpoints, 50 uptime checks, 50 alert policies) is
started in a temp dir and stopped at the end.

Run: python benchmarks/exporter.py [--evaluations 1000]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

SCALED = "scale: {apps: 100, cdn_endpoints: 100, uptime_checks: 50, alert_policies: 50}\n"

LOOP = r"""
import json, os, statistics, sys, time
import httpx
from prometheus_client import CollectorRegistry, generate_latest
from doops.ops.exporter import ExporterOptions, Waiter, platform_exporter
from doops.ops.status import COMPONENTS
from doops.platform import Platform

class NoWait(Waiter):
    def wait(self, seconds):  # the interval passes at once: back-to-back evaluations
        return self.stop.is_set()

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

n, api_url, admin_secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
app = Platform(config_path=os.environ["DOOPS_CONFIG"], config_explicit=True)
ex = platform_exporter(app, ExporterOptions(components=list(COMPONENTS), interval=0.0), waiter=NoWait())
registry = CollectorRegistry(auto_describe=False)
registry.register(ex)
times, requests, rss = [], [], {}
marks = {1, 10, 100, n // 2, n}
for i in range(1, n + 1):
    t0 = time.perf_counter()
    ex.evaluate_once()
    times.append(time.perf_counter() - t0)
    requests.append(ex.last_requests)
    # A fresh budget for the next one (untimed): the interval would give it one; back to back, 30 evaluations
    # would spend the token's 5,000 requests an hour and the rest would measure the twin's rate limit.
    httpx.delete(api_url + "/_twin/ratelimit", headers={"X-Twin-Admin-Secret": admin_secret},
                 timeout=10).raise_for_status()
    if i in marks:
        rss[i] = rss_mib()
first10, last10 = statistics.median(times[:10]), statistics.median(times[-10:])
t0 = time.perf_counter()
for _ in range(20):
    text = generate_latest(registry)
scrape = (time.perf_counter() - t0) / 20
times.sort()
print(json.dumps({"n": n, "median": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))],
                  "max": times[-1], "requests_median": statistics.median(requests), "requests_max": max(requests),
                  "rss": rss, "scrape": scrape, "scrape_bytes": len(text), "failures": ex.failures,
                  "interval": ex.interval, "first10": first10, "last10": last10}))
"""


def main() -> None:
    n = 1000
    if "--evaluations" in sys.argv:
        n = int(sys.argv[sys.argv.index("--evaluations") + 1])
    from doops.sandbox.control import read_env_file

    # SIGTERM (a timeout) ends like Ctrl-C: the finally below stops the sandbox
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("benchmark stopped by SIGTERM"))

    with tempfile.TemporaryDirectory(prefix="doops-bench-exporter-") as tmp:
        d = Path(tmp) / "sb"
        scenario = Path(tmp) / "scaled.yaml"
        scenario.write_text(SCALED)
        subprocess.run([sys.executable, "-m", "doops", "sandbox", "up", "--dir", str(d), "--scenario", str(scenario)],
                       check=True, capture_output=True)
        try:
            env = {**os.environ, **read_env_file(d / "env.sh")}
            state = json.loads((d / "sandbox.json").read_text())
            out = subprocess.run([sys.executable, "-c", LOOP, str(n), state["api_url"], state["admin_secret"]],
                                 env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"benchmark failed: {out.stderr[-2000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)
    rss = {int(k): v for k, v in r["rss"].items()}
    first, tenth, last = rss[min(rss)], rss.get(10, rss[min(rss)]), rss[max(rss)]
    print(f"scaled: {r['n']} evaluations: median {r['median']:.2f}s, p95 {r['p95']:.2f}s, max {r['max']:.2f}s "
          f"({r['failures']} failed); median of the first 10 {r['first10']:.2f}s, of the last 10 {r['last10']:.2f}s")
    print(f"scaled: API calls per evaluation: median {r['requests_median']:.0f}, max {r['requests_max']}; "
          f"interval stretched to {r['interval']:.0f}s at half of 250/min")
    print("scaled: RSS " + ", ".join(f"after {k}: {v:.1f} MiB" for k, v in sorted(rss.items()))
          + f"; growth after the 10th evaluation: {last - tenth:+.1f} MiB (after the 1st: {last - first:+.1f} MiB)")
    print(f"scaled: one scrape (exposition of the snapshot): {r['scrape'] * 1000:.1f} ms, "
          f"{r['scrape_bytes'] / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
