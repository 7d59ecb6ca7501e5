"""`doops cdn purge` on a fresh sandbox: paths purged per second against DigitalOcean's ceiling.

DigitalOcean allows 50 file strings per 20 s per endpoint: 2.5 paths/s unfolded in the long run (the first batch
of 50 goes at once, so a short run looks faster). With ``--fold`` a directory of any size is one file string.
The twin enforces the same limits, so the figures are what a real account would see, apart from network time.

Run: python benchmarks/cdn_purge.py [N]   (default 120)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

CEILING = 50 / 20.0  # paths per second, unfolded


def sandbox_env(d: Path) -> dict[str, str]:
    from doops.sandbox.control import read_env_file

    return {**os.environ, **read_env_file(d / "env.sh")}


def upload(env: dict[str, str], keys: list[str]) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="nyc3",
                      aws_access_key_id=env["SPACES_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["SPACES_SECRET_ACCESS_KEY"])
    for k in keys:
        s3.put_object(Bucket="learnhub-media", Key=k, Body=k.encode())


def run_purge(env: dict[str, str], keys: list[str], *extra: str) -> tuple[float, dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(keys) + "\n")
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "doops", "-o", "json", "cdn", "purge", "--from-file", fh.name,
                          "--yes", *extra], env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    os.unlink(fh.name)
    if res.returncode != 0:
        raise SystemExit(f"doops cdn purge failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    return took, json.loads(res.stdout)


def steady_rate(out: dict) -> float | None:
    """Paths per second in the long run: what went out before the last batch, over the time from the first
    batch to the last (each batch opens the next 20 s window, so this is what the limit governs)."""
    sent = [(datetime.fromisoformat(b["sent_at"].replace("Z", "+00:00")), len(b["files"])) for b in out["batches"]]
    if len(sent) < 2:
        return None
    span = (sent[-1][0] - sent[0][0]).total_seconds()
    return sum(n for _, n in sent[:-1]) / span if span > 0 else None


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    keys = [f"bench/dir{i // 100:03}/p{i:05}.txt" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="doops-bench-cdn-") as tmp:
        d = Path(tmp) / "sb"
        subprocess.run([sys.executable, "-m", "doops", "sandbox", "up", "--dir", str(d)], check=True,
                       capture_output=True)
        env = sandbox_env(d)
        try:
            upload(env, keys)
            took, out = run_purge(env, keys, "--no-verify")
            steady = steady_rate(out)
            print(f"unfolded: {n} paths in {len(out['batches'])} batches, {took:.1f}s wall "
                  f"({out['duration_seconds']:.1f}s in the operation): {n / took:.2f} paths/s overall"
                  + (f", {steady:.2f} paths/s in the long run (first to last batch)" if steady else "")
                  + f" (ceiling {CEILING:.1f} paths/s)")
            took_f, out_f = run_purge(env, keys, "--no-verify", "--fold", "20")
            strings = sum(len(b["files"]) for b in out_f["batches"])
            print(f"folded (--fold 20): {n} paths as {strings} file string(s) in {len(out_f['batches'])} batch(es), "
                  f"{took_f:.1f}s wall: {n / took_f:.1f} paths/s ({len(out_f['folded'])} directories folded)")
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)
    print(f"unfolded, the long-run rate cannot beat {CEILING:.1f} paths/s (50 file strings per 20 s per endpoint); "
          "the first batch goes at once, so short runs read faster")


if __name__ == "__main__":
    main()
