"""`doops failover app` on a fresh sandbox: time from the record's PUT to every authoritative name server
answering the new target (DNS RTO) and to the standby answering through it, against the objectives; failing
over to ams3 and back to nyc3, N times each (median).

Run: python benchmarks/app_failover.py [N]   (default 5)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path


def sandbox_env(d: Path) -> dict[str, str]:
    from doops.sandbox.control import read_env_file

    return {**os.environ, **read_env_file(d / "env.sh")}


def seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="doops-bench-appfo-") as tmp:
        d = Path(tmp) / "sb"
        subprocess.run([sys.executable, "-m", "doops", "sandbox", "up", "--dir", str(d)], check=True,
                       capture_output=True)
        env = {**sandbox_env(d), "XDG_STATE_HOME": str(Path(tmp) / "state")}
        Path(env["XDG_STATE_HOME"]).mkdir()
        figures: dict[str, dict[str, list[float]]] = {}
        targets: dict[str, float] = {}
        try:
            print(f"{'direction':>10} {'run':>4} {'DNS switched':>13} {'standby ok':>11} {'clients by':>11}  outcome")
            for i in range(runs):
                for region in ("ams3", "nyc3"):
                    res = subprocess.run([sys.executable, "-m", "doops", "-o", "json", "failover", "app", "--region",
                                          region, "--yes"], env=env, capture_output=True, text=True)
                    out = json.loads(res.stdout)
                    t = out["timings"]
                    healthy = seconds(t["requested"], t["standby_verified"])
                    f = figures.setdefault(region, {"dns": [], "healthy": [], "clients": []})
                    f["dns"].append(out["dns_switched_seconds"])
                    f["healthy"].append(healthy)
                    f["clients"].append(out["clients_switched_by_seconds"])
                    targets = {"dns": out["dns_rto_target_seconds"], "compute": out["compute_rto_target_seconds"]}
                    print(f"{'-> ' + region:>10} {i + 1:>4} {out['dns_switched_seconds']:>12.3f}s {healthy:>10.3f}s "
                          f"{out['clients_switched_by_seconds']:>10.1f}s  {out['outcome']} (exit {res.returncode})")
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)
    for region, f in figures.items():
        dns, healthy, clients = (statistics.median(f[k]) for k in ("dns", "healthy", "clients"))
        print(f"median -> {region}: DNS switched {dns:.3f}s (objective {targets['dns']:g}s: "
              f"{'met' if dns <= targets['dns'] else 'MISSED'}), standby healthy through the name {healthy:.3f}s, "
              f"clients switched by {clients:.1f}s (objective {targets['compute']:g}s: "
              f"{'met' if clients <= targets['compute'] else 'MISSED'})")
    print("DNS switched is the twin's authoritative server answering at once; clients by = that + the old TTL (60s)")


if __name__ == "__main__":
    main()
