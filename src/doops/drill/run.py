"""`doops drill run`: runbooks run as drills, one at a time per platform, each recorded, pushed and reported.

A drill is a runbook run (``doops.runbook.engine.run_runbook``) plus what makes it evidence:

- everything is checked before the first request: each runbook found, loaded and validated, its inputs typed
  (the ``drills.schedules`` inputs are defaults ``--input`` overrides), the schedule's objective overrides
  applied (they replace the runbook's targets: the schedule is the policy), report paths writable, the
  history URL and Pushgateway URL well formed;
- one drill at a time per platform (per API host): an ``flock`` on a file in the state dir, released by the
  kernel when its holder exits however it exits; the file says who holds it (pid, host, user, runbook, since);
- each run is recorded in the history (``DrillRun``; an interrupted run too, as interrupted), then its metrics
  pushed (a failed push is a warning: the drill ran and is recorded), then its reports written.

``drill_run(platform, options, *, confirm, events, cancel, registry)`` is an operation like any other
(``doops.ops.seam``); it never prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from doops.drill.model import DrillRun, ObjectiveMeasure
from doops.errors import DoopsError, UsageError
from doops.ops.seam import Cancel, Emitter, EventSink, Level, Outcome, wait_until

if TYPE_CHECKING:
    from doops.config import Config, DrillSchedule
    from doops.drill.history import History
    from doops.platform import Platform
    from doops.runbook.model import Runbook
    from doops.runbook.validate import Catalog

OPERATION = "drill"
RUNBOOK_PLACEHOLDER = "{runbook}"
NOT_RUN = "not_run"


@dataclass
class DrillRunOptions:
    runbooks: list[str]  # files, or names (``name:`` or file stem) under runbooks/ and runbooks.paths
    inputs: dict[str, str] = field(default_factory=dict)  # --input: override the schedule's inputs
    reports: list[tuple[str, Path]] = field(default_factory=list)  # (format, path); {runbook} in the path
    pushgateway_url: str | None = None  # None: drills.pushgateway_url; neither: no push
    history_url: str | None = None  # None: drills.history_url, $DOOPS_DRILL_HISTORY_URL, the local SQLite file
    wait_lock: float | None = None  # seconds to wait for another drill on this platform; None: refuse at once


@dataclass
class DrillOutcome:
    """One runbook's drill: what the history recorded, whether its metrics were pushed, which reports."""

    runbook: str
    file: str
    outcome: str  # the runbook result's outcome; "not_run" when an earlier drill was interrupted
    success: bool
    objectives: list[ObjectiveMeasure] = field(default_factory=list)
    history_id: str | None = None  # the DrillRun's id in the history (None: not recorded)
    pushed: bool = False
    reports: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    duration_seconds: float | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class DrillRunResult:
    drills: list[DrillOutcome]
    outcome: Outcome
    message: str
    history: str  # the store's URL, masked
    pushgateway: str | None  # masked; None: no push configured
    api_host: str
    lock_holder: str | None = None  # who held the drill lock when this run was refused
    warnings: list[str] = field(default_factory=list)
    hint: str | None = None


@dataclass
class _Prepared:
    rb: Runbook
    inputs: dict[str, Any]  # as given (schedule defaults, then --input): the engine types them again
    reports: list[tuple[str, Path]]
    overrides: dict[str, float]


# -- finding runbooks ----------------------------------------------------------------------------------------


def runbook_dirs(config: Config) -> list[Path]:
    """``./runbooks`` then the config's ``runbooks.paths`` (relative to the config file), as `runbook list`."""
    base = Path(config.source).parent if config.source else Path(".")
    dirs = [Path("runbooks")]
    dirs += [p if p.is_absolute() else base / p for p in (Path(x).expanduser() for x in config.runbooks.paths)]
    return list(dict.fromkeys(dirs))


def find_runbook(config: Config, ref: str) -> Path:
    """The file ``ref`` names: a path (relative to here or to the config file), else a runbook under the runbook
    directories whose file stem or ``name:`` is ``ref``. UsageError naming where it looked."""
    import yaml

    base = Path(config.source).parent if config.source else None
    for candidate in (Path(ref).expanduser(), *([base / ref] if base else [])):
        if candidate.is_file():
            return candidate
    dirs = runbook_dirs(config)
    for d in dirs:
        for ext in (".yaml", ".yml"):
            if (d / f"{ref}{ext}").is_file():
                return d / f"{ref}{ext}"
    for d in dirs:
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []:
            try:
                doc = yaml.safe_load(f.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError, UnicodeDecodeError):
                continue
            if isinstance(doc, dict) and doc.get("name") == ref:
                return f
    raise UsageError(f"runbook {ref!r} not found (looked for the file, and by name in "
                     f"{', '.join(str(d) for d in dirs)})",
                     hint="give the runbook's file, or its name: from `doops runbook list`")


def schedule_for(config: Config, rb: Runbook, ref: str) -> DrillSchedule | None:
    """The ``drills.schedules`` entry of this runbook: by its name, as given, or naming the same file."""
    drills = config.drills
    entry = drills.schedule(rb.name) or drills.schedule(ref)
    if entry is not None:
        return entry
    here = Path(rb.file).resolve()
    for s in drills.schedules:
        with contextlib.suppress(UsageError):
            if find_runbook(config, s.runbook).resolve() == here:
                return s
    return None


# -- checks before anything is sent --------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "runbook"


def prepare(platform: Platform, options: DrillRunOptions, catalog: Catalog) -> list[_Prepared]:
    """Every runbook loaded, validated, its inputs typed, its overrides and report paths decided; UsageError
    (exit 4) for the first problem. Reads files and the config only: nothing is sent."""
    from doops.runbook.engine import check_environment, check_requirements
    from doops.runbook.validate import load, parse_inputs

    config = platform.config
    where = config.source or "the config"
    if not options.runbooks:
        raise UsageError("no runbook named", hint="e.g. doops drill run runbooks/db-restore-drill.yaml --yes")
    if options.wait_lock is not None and options.wait_lock <= 0:
        raise UsageError(f"--wait-lock must be positive, not {options.wait_lock:g}s", hint="e.g. --wait-lock 10m")
    loaded: list[tuple[str, Runbook]] = []
    seen: dict[Path, str] = {}
    for ref in options.runbooks:
        path = find_runbook(config, ref)
        if path.resolve() in seen:
            raise UsageError(f"runbook {ref!r} is named twice (also as {seen[path.resolve()]!r})",
                             hint="name each runbook once")
        seen[path.resolve()] = ref
        loaded.append((ref, load(path, config=config, catalog=catalog)))

    several = len(loaded) > 1
    declared = {name for _, rb in loaded for name in rb.inputs}
    unknown = [k for k in options.inputs if k not in declared]
    if several and unknown:
        raise UsageError(f"--input {unknown[0]}: none of the runbooks declares it "
                         f"(declared: {', '.join(sorted(declared)) or 'none'})",
                         hint="with several runbooks, each --input goes to the runbooks that declare it")
    for fmt, path in options.reports:
        if several and RUNBOOK_PLACEHOLDER not in path.name:
            raise UsageError(f"--report {fmt}={path}: {len(loaded)} runbooks would write the same file",
                             hint=f"put {RUNBOOK_PLACEHOLDER} in the file name, e.g. "
                                  f"--report {fmt}={path.with_name('{runbook}-' + path.name)}")

    out: list[_Prepared] = []
    report_paths: dict[Path, str] = {}
    for ref, rb in loaded:
        entry = schedule_for(config, rb, ref)
        given: dict[str, Any] = {}
        overrides: dict[str, float] = {}
        if entry is not None:
            stray = [k for k in entry.inputs if k not in rb.inputs]
            if stray:
                raise UsageError(f"{where}: drills.schedules {entry.runbook}: input {stray[0]!r} is not declared by "
                                 f"runbook {rb.name} (declared: {', '.join(rb.inputs) or 'none'})",
                                 hint="fix the schedule's inputs")
            given.update(entry.inputs)
            names = [o.name for o in rb.objectives]
            for name, target in entry.objectives.items():
                if name not in names:
                    raise UsageError(f"{where}: drills.schedules {entry.runbook}: objective {name!r} is not one of "
                                     f"runbook {rb.name}'s objectives ({', '.join(names) or 'none'})",
                                     hint="override only objectives the runbook measures")
                overrides[name] = float(target)
            rb.objectives = [replace(o, target_seconds=overrides[o.name]) if o.name in overrides else o
                             for o in rb.objectives]
        given.update({k: v for k, v in options.inputs.items() if not several or k in rb.inputs})
        parse_inputs(rb, given)  # RunbookInvalid (exit 4) names the input and the fix
        check_requirements(platform, rb)
        check_environment(rb)
        reports = []
        for fmt, path in options.reports:
            concrete = path.with_name(path.name.replace(RUNBOOK_PLACEHOLDER, _safe(rb.name)))
            key = concrete.resolve()
            if key in report_paths:
                raise UsageError(f"--report {fmt}={path}: runbooks {report_paths[key]} and {rb.name} would both "
                                 f"write {concrete}", hint="give the runbooks different names or reports")
            report_paths[key] = rb.name
            reports.append((fmt, concrete))
        out.append(_Prepared(rb, given, reports, overrides))
    return out


def resolve_urls(platform: Platform, options: DrillRunOptions) -> tuple[str | None, str | None]:
    """(history URL, Pushgateway URL) from the options, then the config; their form checked (UsageError)."""
    from doops.config import history_url_problem
    from doops.drill.metrics import check_pushgateway_url
    from doops.masking import mask

    drills = platform.config.drills
    history_url = options.history_url or drills.resolved_history_url()
    if history_url is not None:
        problem = history_url_problem(history_url)
        if problem:
            raise UsageError(mask(problem), hint="give postgresql://user@host:5432/db, sqlite:///path or a file path")
    push = options.pushgateway_url or drills.pushgateway_url
    return history_url, (check_pushgateway_url(push) if push else None)


# -- the lock ------------------------------------------------------------------------------------------------


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class DrillLock:
    """One drill at a time per platform: ``flock`` on ``$XDG_STATE_HOME/doops/locks/drill-<api host key>.lock``
    (beside the failover locks of ``doops.journal``), released by the kernel when the holder exits, however it
    exits. While held, the file says who holds it as JSON (pid, host, user, runbook, since), rewritten as each
    runbook starts, so a refused second drill can name its holder."""

    def __init__(self, api_host: str) -> None:
        from doops.journal import platform_key, state_dir

        locks = state_dir() / "locks"
        locks.mkdir(exist_ok=True)
        self.path = locks / f"drill-{platform_key(api_host, 'drill')}.lock"
        self._fh: IO[str] | None = None
        self.since: datetime | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def try_acquire(self, runbook: str, now: datetime) -> str | None:
        """None when taken now; else who holds it, as one line."""
        fh: IO[str] = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            text = fh.read()
            fh.close()
            return describe_holder(text)
        except BaseException:
            fh.close()
            raise
        self._fh, self.since = fh, now
        self.note(runbook)
        return None

    def note(self, runbook: str) -> None:
        """Say which runbook the holder is running now (one write, so a reader never sees half of it)."""
        if self._fh is None or self.since is None:
            return
        record = {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(), "runbook": runbook,
                  "since": _stamp(self.since)}
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(json.dumps(record))
        self._fh.flush()

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def describe_holder(text: str) -> str:
    """``pid 4242 on ci-7 (user sre), drill db-restore since 2026-11-26T05:00:00Z`` from the lock file."""
    try:
        rec = json.loads(text)
    except ValueError:
        return text.strip() or "another process (it has not said who yet)"
    if not isinstance(rec, dict):
        return "another process"
    return (f"pid {rec.get('pid', '?')} on {rec.get('host', '?')} (user {rec.get('user', '?')}), drill "
            f"{rec.get('runbook', '?')} since {rec.get('since', '?')}")


# -- the operation -------------------------------------------------------------------------------------------


def drill_run(platform: Platform, options: DrillRunOptions, *, confirm: Callable[[str], bool], events: EventSink,
              cancel: Cancel | None = None, registry: Catalog | None = None) -> DrillRunResult:
    """Run each runbook of ``options`` as a drill, in order. Bad input raises UsageError before anything is sent
    or written; an unreachable PostgreSQL history raises UnknownStateError before the drill starts (a drill that
    cannot be recorded is not evidence). Every other ending is the result's ``outcome``."""
    from doops.drill.history import open_history
    from doops.drill.metrics import mask_url
    from doops.masking import mask
    from doops.runbook.validate import Catalog

    catalog = registry or Catalog.default()
    cancel = cancel or Cancel()
    emit = Emitter(OPERATION, events, platform.clock)
    prepared = prepare(platform, options, catalog)
    history_url, push_url = resolve_urls(platform, options)
    api_host = urlsplit(platform.resolved_api_url()).netloc
    history = open_history(history_url)
    try:
        result = DrillRunResult(drills=[], outcome=Outcome.OK, message="", history=history.url,
                                pushgateway=mask_url(push_url) if push_url else None, api_host=api_host)
        lock = DrillLock(api_host)
        holder = _acquire(lock, prepared[0].rb.name, options.wait_lock, platform, emit, cancel)
        if holder is not None:
            result.drills = [_not_run(p) for p in prepared]
            if cancel.cancelled:
                return _end(result, Outcome.INTERRUPTED, "interrupted while waiting for the drill lock: nothing ran")
            result.lock_holder = holder
            waited = f" (waited {options.wait_lock:g}s)" if options.wait_lock else ""
            result.hint = ("wait for it (the lock ends with its process), or pass --wait-lock DURATION"
                           if not options.wait_lock else "wait for it: the lock ends with its process")
            emit("lock", f"another drill is running against {api_host}: {holder}", Level.FAIL)
            return _end(result, Outcome.REFUSED, f"another drill is running against {api_host}{waited}: {holder}; "
                        "nothing ran")
        try:
            for i, p in enumerate(prepared):
                if cancel.cancelled:
                    result.drills += [_not_run(q) for q in prepared[i:]]
                    break
                lock.note(p.rb.name)
                drill = _one(platform, p, history, push_url, confirm, events, cancel, catalog, emit)
                result.drills.append(drill)
                result.warnings += drill.warnings
                if drill.outcome in (Outcome.INTERRUPTED.value, Outcome.DECLINED.value):
                    result.drills += [_not_run(q) for q in prepared[i + 1:]]
                    break
        finally:
            lock.release()
    finally:
        history.close()
    return _judge(result, mask)


def _acquire(lock: DrillLock, runbook: str, wait: float | None, platform: Platform, emit: Emitter,
             cancel: Cancel) -> str | None:
    """Take the lock (waiting up to ``wait`` seconds on the platform clock); None when taken, else the holder."""
    holder = lock.try_acquire(runbook, platform.clock.now())
    if holder is None or not wait:
        return holder
    from doops.units import format_duration

    emit("lock", f"waiting up to {format_duration(wait)} for the drill running now: {holder}")
    last = [holder]

    def probe() -> bool:
        found = lock.try_acquire(runbook, platform.clock.now())
        if found is not None:
            last[0] = found
        return found is None

    waited = wait_until(probe, timeout=wait, clock=platform.clock, cancel=cancel, interval=0.2, max_interval=2.0)
    return None if waited.done else last[0]


def _not_run(p: _Prepared) -> DrillOutcome:
    return DrillOutcome(p.rb.name, p.rb.file, NOT_RUN, False,
                        [ObjectiveMeasure(o.name, o.target_seconds, None, None) for o in p.rb.objectives],
                        message="not run")


def _one(platform: Platform, p: _Prepared, history: History, push_url: str | None, confirm: Callable[[str], bool],
         events: EventSink, cancel: Cancel, catalog: Catalog, emit: Emitter) -> DrillOutcome:
    """One drill: run, record, push, report. Recording, pushing and writing reports never change its outcome:
    their failures are warnings (the events say what happened)."""
    from doops.drill.metrics import push_drill
    from doops.masking import mask
    from doops.runbook.engine import is_sandbox, run_runbook
    from doops.runbook.report import write

    if p.overrides:
        text = ", ".join(f"{k} {v:g}s" for k, v in p.overrides.items())
        emit("objectives", f"{p.rb.name}: targets from drills.schedules: {text}")
    res = run_runbook(platform, p.rb, p.inputs, dry_run=False, confirm=confirm, events=events, cancel=cancel,
                      registry=catalog)
    data = res.to_data()
    run = DrillRun.from_runbook(data, host=socket.gethostname(), user=_user(),
                                api_host=urlsplit(platform.resolved_api_url()).netloc, sandbox=is_sandbox(platform))
    drill = DrillOutcome(run.runbook, run.file, run.outcome, run.success, run.objectives, started_at=run.started_at,
                         duration_seconds=run.duration_seconds, message=res.message)
    if res.outcome is Outcome.DECLINED:  # nothing ran: not a drill, not recorded, not pushed
        return drill

    def warn(text: str) -> None:
        text = mask(text)
        drill.warnings.append(text)
        emit("warning", text, Level.WARN)

    try:
        history.record(run)
        drill.history_id = run.id
        emit("record", f"{run.runbook}: recorded as {run.outcome} in {history.url} (id {run.id})", Level.OK)
    except DoopsError as exc:
        warn(f"{run.runbook}: not recorded in the drill history: {exc.message}")
    except Exception as exc:  # a store failing mid-write must not lose the metrics and reports below
        warn(f"{run.runbook}: not recorded in the drill history: {type(exc).__name__}: {exc}")
    if push_url:
        try:
            group = push_drill(run, push_url)
            drill.pushed = True
            emit("metrics", f"{run.runbook}: metrics pushed to {group}", Level.OK)
        except DoopsError as exc:
            warn(f"{run.runbook}: {exc.message} (the exit code is the drill's)")
    for fmt, path in p.reports:
        try:
            write(data, fmt, path)
            drill.reports.append(str(path))
        except OSError as exc:
            warn(f"{run.runbook}: report {fmt} not written to {path}: {exc.strerror or exc}")
    return drill


def _end(result: DrillRunResult, outcome: Outcome, message: str) -> DrillRunResult:
    result.outcome, result.message = outcome, message
    return result


def _judge(result: DrillRunResult, mask: Callable[[str], str]) -> DrillRunResult:
    """The whole command's outcome: interrupted (or declined) over failed over ok; the message counts them."""
    ran = [d for d in result.drills if d.outcome != NOT_RUN]
    passed = [d for d in ran if d.success]
    stopped = next((d for d in ran if d.outcome in (Outcome.INTERRUPTED.value, Outcome.DECLINED.value)), None)
    failed = [d for d in ran if not d.success and d is not stopped]
    count = f"{len(passed)}/{len(result.drills)} drill{'s' if len(result.drills) != 1 else ''} passed"
    tail = f"; {len(result.warnings)} warning(s)" if result.warnings else ""
    if stopped is not None:
        return _end(result, Outcome(stopped.outcome), mask(f"{count}; {stopped.runbook}: {stopped.message}{tail}"))
    if failed:
        first = failed[0]
        outcome = Outcome(first.outcome) if first.outcome in {o.value for o in Outcome} else Outcome.VERIFICATION_FAILED
        if outcome is Outcome.OK:  # passed its steps but an objective was not met
            outcome = Outcome.OBJECTIVE_MISSED
        names = ", ".join(f"{d.runbook} ({d.outcome})" for d in failed)
        return _end(result, outcome, mask(f"{count}; failed: {names}: {first.message}{tail}"))
    return _end(result, Outcome.OK, mask(f"{count}{tail}"))
