"""Time for `doops sandbox up` to be ready, median of 3 runs on fresh directories.

Target: under 20 s on the 2-core reference machine. Also prints how long each part took to start (from
the supervisor's own timings) and how long `down` takes.
Run: python benchmarks/sandbox_start.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(runs: int = 3) -> None:
    ups, downs = [], []
    for n in range(runs):
        with tempfile.TemporaryDirectory(prefix="doops-bench-") as tmp:
            d = Path(tmp) / "sb"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "up", "--dir", str(d)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ups.append(time.perf_counter() - started)
            timings = json.loads((d / "sandbox.json").read_text()).get("timings", {})
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            downs.append(time.perf_counter() - started)
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
            print(f"run {n + 1}: up {ups[-1]:.2f}s ({parts}); down {downs[-1]:.2f}s")
    med = statistics.median(ups)
    print(f"sandbox up  : median {med:.2f}s of {runs} (target < 20 s: {'met' if med < 20 else 'MISSED'})")
    print(f"sandbox down: median {statistics.median(downs):.2f}s")


if __name__ == "__main__":
    main()
