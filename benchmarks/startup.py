"""Cold-start time of `doops --help` against `python -c pass`, median of 10 runs.

Target: `doops --help` under 0.25 s on the 2-core reference machine.
Run: python benchmarks/startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_runtime(cmd: list[str], runs: int = 10) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    base = median_runtime([sys.executable, "-c", "pass"])
    doops = median_runtime([sys.executable, "-m", "doops", "--help"])
    print(f"python -c pass : {base * 1000:7.1f} ms (median of 10)")
    print(f"doops --help   : {doops * 1000:7.1f} ms (median of 10)")
    print(f"doops overhead : {(doops - base) * 1000:7.1f} ms")
    print(f"target < 250 ms: {'met' if doops < 0.25 else 'MISSED'}")


if __name__ == "__main__":
    main()
