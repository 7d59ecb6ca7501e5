"""`doops db pitr` on one sandbox: restore time against the WAL written after the base backup, and the restore
point's distance from the target (RPO). The twin's restore is real (base backup + archived WAL replayed to
recovery_target_time), so more WAL to replay must take longer.

Run: python benchmarks/pitr.py [MB,MB,...]   (default 10,100,500)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sandbox_env(d: Path) -> dict[str, str]:
    from doops.sandbox.control import read_env_file

    return {**os.environ, **read_env_file(d / "env.sh")}


def primary_uri(env: dict[str, str]) -> str:
    import httpx

    h = {"Authorization": f"Bearer {env['DIGITALOCEAN_ACCESS_TOKEN']}"}
    dbs = httpx.get(env["DIGITALOCEAN_API_URL"] + "/v2/databases", headers=h, timeout=10).json()["databases"]
    return str(next(d for d in dbs if d["name"] == "learnhub-db")["connection"]["uri"])


def write_mb(uri: str, mb: int) -> float:
    """Write about ``mb`` MB of rows (so as much WAL) to the primary; returns the seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("create table if not exists bench_wal (id bigserial primary key, pad text not null)")
        for _ in range(mb):  # 1 MB a statement: 1,000 rows of 1 kB
            conn.execute("insert into bench_wal (pad) select repeat(md5(random()::text), 32) "
                         "from generate_series(1, 1000)")
    return time.perf_counter() - started


def wal_bytes(uri: str) -> int:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute("select pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    sizes = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "10,100,500").split(",")]
    with tempfile.TemporaryDirectory(prefix="doops-bench-pitr-") as tmp:
        d = Path(tmp) / "sb"
        subprocess.run([sys.executable, "-m", "doops", "sandbox", "up", "--dir", str(d)], check=True,
                       capture_output=True)
        env = sandbox_env(d)
        uri = primary_uri(env)
        try:
            print(f"{'written':>9} {'WAL to replay':>14} {'restore':>9} {'RPO':>7}  outcome")
            start = wal_bytes(uri)  # about where the base backup taken at start-up ends
            for mb in sizes:
                took = write_mb(uri, mb)
                wal = wal_bytes(uri) - start  # a restore to now replays everything since the base backup
                res = subprocess.run([sys.executable, "-m", "doops", "-o", "json", "db", "pitr", "--latest", "--yes",
                                      "--cleanup", "--timeout", "30m"], env=env, capture_output=True, text=True)
                out = json.loads(res.stdout)
                rpo = out.get("rpo_seconds")
                print(f"{mb:>6} MB {wal / 2**20:>11.0f} MB {out['restore_seconds'] or 0:>8.1f}s "
                      f"{rpo if rpo is not None else float('nan'):>6.2f}s  {out['outcome']} (writing took {took:.1f}s)")
        finally:
            subprocess.run([sys.executable, "-m", "doops", "sandbox", "down", "--dir", str(d)], capture_output=True)
    print("restore time should grow with the WAL to replay; RPO stays within a heartbeat (1 s) of the target")


if __name__ == "__main__":
    main()
