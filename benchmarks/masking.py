"""Time of ``doops.masking.mask`` on adversarial inputs of 40 kB, 100 kB and 1 MB.

Masking runs on every line doops writes, including arguments a user passed, so it must be linear. The
shapes below are the ones that make a backtracking regex retry from every position: a long word (the old
URI pattern retried its scheme at every letter: 100 kB took 18 s), many ``://user:`` with no ``@`` (a
``[^@\\s]+@`` tail rescans the rest of the line from each), long runs after each keyword.

Target: every shape at 1 MB under 0.5 s on the 2-core reference machine, and 1 MB within 15x of 100 kB
(linear growth is 10x; quadratic would be 100x).
Run: python benchmarks/masking.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

from doops import masking

BUDGET_1MB = 0.5
SIZES = (40_000, 100_000, 1_000_000)


def _fill(unit: str) -> Callable[[int], str]:
    return lambda n: (unit * (n // len(unit) + 1))[:n]


SHAPES: dict[str, Callable[[int], str]] = {
    "one long word": _fill("a"),
    "://user: without @": _fill("://a:"),
    "URIs with passwords": _fill("postgres://doadmin:s3cr3t@db:25060/x "),
    "bearer + spaces": lambda n: "Authorization: Bearer" + " " * (n - 21),
    "password keys": _fill('"password" '),
    "token shapes": _fill("dop_v1_" + "ab" * 12 + "g "),
    "known secret": _fill("hunter2-abcdef "),
}


def timed(text: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        masking.mask(text)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    masking.register("hunter2-abcdef")
    header = f"{'shape':22}" + "".join(f"{n // 1000:>9} kB" for n in SIZES) + "   1MB/100kB"
    print(header)
    worst_1mb = 0.0
    worst_ratio = 0.0
    for name, make in SHAPES.items():
        figures = [timed(make(n)) for n in SIZES]
        ratio = figures[-1] / max(figures[1], 1e-9)
        worst_1mb = max(worst_1mb, figures[-1])
        worst_ratio = max(worst_ratio, ratio)
        print(f"{name:22}" + "".join(f"{t * 1000:9.1f} ms" for t in figures) + f"   {ratio:8.1f}x")
    print(f"slowest 1 MB: {worst_1mb * 1000:.0f} ms; target < {BUDGET_1MB * 1000:.0f} ms: "
          f"{'met' if worst_1mb < BUDGET_1MB else 'MISSED'}")
    print(f"worst growth 100 kB -> 1 MB: {worst_ratio:.1f}x; target < 15x (linear): "
          f"{'met' if worst_ratio < 15 else 'MISSED'}")


if __name__ == "__main__":
    main()
