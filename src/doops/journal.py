"""Where doops keeps state between runs: the audit journal, locks, and records of unfinished actions.

All under ``$XDG_STATE_HOME/doops`` (``~/.local/state/doops``). Nothing written here holds a secret: every
line is masked before it is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from doops.masking import mask
from doops.serialize import to_data


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    d = Path(base) / "doops"
    d.mkdir(parents=True, exist_ok=True)
    return d


def audit_path() -> Path:
    return state_dir() / "audit.jsonl"


def audit(action: str, record: dict[str, Any], platform: Any = None) -> Path:
    """Append one JSON line (who, when, on which platform, what) to the audit journal; returns its path.

    ``platform`` (an ``ops.audit.Identity``) says the API host, the account and whether it was a sandbox.
    """
    path = audit_path()
    entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "user": _user(),
             "host": socket.gethostname(), "action": action,
             "platform": to_data(platform) if platform is not None else None, **to_data(record)}
    line = mask(json.dumps(entry, sort_keys=False))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    return path


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class LockHeld(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """A lock that lives exactly as long as its holder: flock on a file, released by the kernel at exit."""
    locks = state_dir() / "locks"
    locks.mkdir(exist_ok=True)
    path = locks / f"{name}.lock"
    fh: IO[str] = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block's lifetime
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise LockHeld(fh.read().strip() or "another process") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now(UTC).isoformat()}")
        fh.flush()
        yield
    finally:
        fh.close()


def platform_key(api_host: str, resource_id: str) -> str:
    """A file-name-safe key for one resource on one platform (API host + id)."""
    import hashlib
    import re

    digest = hashlib.sha256(f"{api_host}|{resource_id}".encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', resource_id)[:64]}-{digest}"


def pending_path(kind: str, key: str) -> Path:
    d = state_dir() / "pending"
    d.mkdir(exist_ok=True)
    return d / f"{kind}-{key}.json"


def write_pending(kind: str, key: str, record: dict[str, Any]) -> None:
    """Remember an action that was started, so a re-run after an interruption can finish or verify it."""
    path = pending_path(kind, key)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(mask(json.dumps(to_data(record))))
    os.replace(tmp, path)


def read_pending(kind: str, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(pending_path(kind, key).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def clear_pending(kind: str, key: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        pending_path(kind, key).unlink()
