"""`doops failover db` on fresh sandboxes, 3 runs: how long after the server really became writable doops
reported it (target under 1 s), and the end-to-end RTO (promote sent to writable; target 2 min).

A probe thread polls the replica's server every 10 ms for writability, independently of doops, so the
detection delay is measured against the server itself.
Run: python benchmarks/failover.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path


def sandbox_env(d: Path) -> dict[str, str]:
    from doops.sandbox.control import read_env_file

    return {**os.environ, **read_env_file(d / "env.sh")}


def replica_uri(env: dict[str, str]) -> str:
    import httpx

    h = {"Authorization": f"Bearer {env['DIGITALOCEAN_ACCESS_TOKEN']}"}
    api = env["DIGITALOCEAN_API_URL"]
    db = next(d for d in httpx.get(api + "/v2/databases", headers=h).json()["databases"] if d["name"] == "learnhub-db")
    rep = httpx.get(api + f"/v2/databases/{db['id']}/replicas/learnhub-db-ams3", headers=h).json()["replica"]
    return str(rep["connection"]["uri"])


def probe(uri: str, stop: threading.Event, found: list[datetime]) -> None:
    import psycopg

    while not stop.is_set():
        try:
            with psycopg.connect(uri, connect_timeout=2, autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute("select pg_is_in_recovery()").fetchone()
                    if row is not None and row[0] is False:
                        conn.execute("create table if not exists bench_probe (t timestamptz)")
                        conn.execute("insert into bench_probe values (now())")
                        found.append(datetime.now(UTC))
                        return
                    time.sleep(0.01)
        except Exception:  # connection dropped during promotion: reconnect
            time.sleep(0.01)


def one_run(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="doops-bench-") as tmp:
        d = Path(tmp) / "sb"
        subprocess.run([sys.executable, "-m", "doops", "sandbox", "up", "--dir", str(d)], check=True,
                       capture_output=True)
        try:
            env = sandbox_env(d)
            env["XDG_STATE_HOME"] = tmp
            stop, found = threading.Event(), list[datetime]()
            t = threading.Thread(target=probe, args=(replica_uri(env), stop, found), daemon=True)
            t.start()
            out = subprocess.run([sys.executable, "-m", "doops", "-o", "json", "failover", "db", "--region", "ams3",
                                  "--yes"], env=env, capture_output=True, text=True)
            stop.set()
            t.join(5)
            result = json.loads(out.stdout)
            reported = datetime.fromisoformat(result["timings"]["writable"].replace("Z", "+00:00"))
            detect = (reported - found[0]).total_seconds() if found else float("nan")
            print(f"run {n}: exit {out.returncode}, RTO {result['rto_seconds']:.2f}s, server writable -> doops "
                  f"reported {detect:.3f}s, heartbeat rows missing {result['data_loss'].get('heartbeat_rows_missing')}")
            return detect, float(result["rto_seconds"])
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)


def main() -> None:
    runs = [one_run(n + 1) for n in range(3)]
    detect = statistics.median(r[0] for r in runs)
    rto = statistics.median(r[1] for r in runs)
    print(f"writable -> reported: median {detect:.3f}s (target < 1 s: {'met' if detect < 1 else 'MISSED'})")
    print(f"end-to-end RTO      : median {rto:.2f}s (target < 120 s: {'met' if rto < 120 else 'MISSED'})")


if __name__ == "__main__":
    main()
