"""`doops drill schedule`: the files that run drills on a schedule (crontab, systemd, Kubernetes, GitHub Actions).

Pure functions, no I/O: the CLI resolves runbooks, validates options and parses every generated file back
before printing. The DigitalOcean token is never written into any file: each target takes it from its own
secret store (an env file, a Kubernetes Secret, a GitHub secret), because a schedule file is committed,
shared and pasted into tickets.

Cron expressions are five fields, UTC, as croniter reads them (the same reading Kubernetes uses): when both
day-of-month and day-of-week are restricted, a day matching either runs the drill.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

TARGETS = ("cron", "systemd", "kubernetes", "github-actions")
TOKEN_VAR = "DIGITALOCEAN_TOKEN"
DEFAULT_SECRET = "doops-digitalocean"  # Kubernetes Secret holding the token under the key "token"
SECRET_KEY = "token"
DEFAULT_CONFIG_MAP = "doops-drills"  # Kubernetes ConfigMap holding doops.yaml and the runbook files
STARTING_DEADLINE_SECONDS = 3600  # a drill missed by more than an hour (controller down) waits for the next slot
JUNIT_REPORT = "drill-report.xml"
K8S_WORKDIR = "/drill"
CRONJOB_NAME_MAX = 52  # Kubernetes appends 11 characters to a CronJob's name for its Jobs

WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
# croniter.expand field ranges: minute, hour, day of month, month, day of week
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
NON_PORTABLE = {"l": "L (last day)", "#": "# (nth weekday)", "w": "W (nearest weekday)", "h": "H (hashed)"}


class NotExpressible(ValueError):
    """A valid cron expression that a target cannot express: refused (exit 4), never approximated."""


@dataclass
class DrillSpec:
    """One drill to schedule: what ``doops drill run`` is given and when."""

    runbook: str  # as the config or the command line names it
    file: str  # the runbook file, as the scheduled command gives it to `doops drill run`
    cron: str
    inputs: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # unit / CronJob / workflow name stem; slug(runbook) when empty

    def __post_init__(self) -> None:
        if not self.name:
            self.name = slug(self.runbook)


@dataclass
class Where:
    """Where the scheduled command runs: doops' executable, the working directory, the config file, the env
    file holding the token (cron, systemd), the image, Secret and ConfigMap (kubernetes)."""

    doops: str = "doops"
    workdir: str | None = None
    config: str | None = None  # DOOPS_CONFIG for the scheduled run (an absolute path), if any
    env_file: str | None = None
    image: str = "doops:latest"
    secret: str = DEFAULT_SECRET
    config_map: str = DEFAULT_CONFIG_MAP


@dataclass
class GeneratedFile:
    name: str
    content: str


@dataclass
class ScheduledDrill:
    runbook: str
    cron: str
    files: list[GeneratedFile]


@dataclass
class ScheduleResult:
    """The ``-o json/yaml`` shape: {target, drills: [{runbook, cron, files: [{name, content}]}]}."""

    target: str
    drills: list[ScheduledDrill]


def slug(runbook: str) -> str:
    """A DNS-1123 label from a runbook name or file: the stem, lower case, [a-z0-9-]."""
    stem = re.sub(r"\.ya?ml$", "", runbook.rstrip("/").rsplit("/", 1)[-1], flags=re.IGNORECASE)
    out = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return (out or "drill")[: CRONJOB_NAME_MAX - len("doops-drill-")].rstrip("-")


def unit_name(spec: DrillSpec) -> str:
    return f"doops-drill-{spec.name}"


# -- cron expressions ----------------------------------------------------------------------------------------


def check_portable(expr: str, target: str) -> None:
    """Refuse croniter's extensions (L, W, #, H) that crontab, Kubernetes and GitHub Actions do not read."""
    lowered = expr.lower()
    for mark, what in NON_PORTABLE.items():
        # names (jan..dec, sun..sat) hold letters too: look at the characters outside them
        stripped = re.sub(r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat", "",
                          lowered)
        if mark in stripped:
            raise NotExpressible(
                f"cron expression {expr!r} uses {what}, which --target {target} cannot express: write the days "
                f"as lists and ranges (e.g. '0 3 * * 1' for every Monday)")


def _expand(expr: str) -> tuple[list[list[Any]], dict[int, Any]]:
    from croniter import croniter

    expanded, nth = croniter.expand(expr)
    return [list(f) for f in expanded], dict(nth or {})


def _compress(values: list[int], lo: int, hi: int, fmt: str = "{:02d}") -> str:
    """Values of one field as systemd writes them: ``*``, ``start/step``, or a list of values and ranges."""
    vals = sorted(set(values))
    if vals == list(range(lo, hi + 1)):
        return "*"
    if len(vals) >= 3:
        step = vals[1] - vals[0]
        if step > 1 and vals == list(range(vals[0], hi + 1, step)):
            return f"{fmt.format(vals[0])}/{step}"
    parts: list[str] = []
    run: list[int] = []
    for v in [*vals, None]:
        if run and v is not None and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            if len(run) >= 3:
                parts.append(f"{fmt.format(run[0])}..{fmt.format(run[-1])}")
            else:
                parts.extend(fmt.format(x) for x in run)
        run = [v] if v is not None else []
    return ",".join(parts)


def _weekdays(values: list[int]) -> str:
    vals = sorted(set(values))
    parts: list[str] = []
    run: list[int] = []
    for v in [*vals, None]:
        if run and v is not None and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            if len(run) >= 3:
                parts.append(f"{WEEKDAYS[run[0]]}..{WEEKDAYS[run[-1]]}")
            else:
                parts.extend(WEEKDAYS[x] for x in run)
        run = [v] if v is not None else []
    return ",".join(parts)


def on_calendar(expr: str) -> list[str]:
    """systemd ``OnCalendar=`` values for a five-field cron expression (UTC), matching exactly the times
    croniter gives; two values when both day fields are restricted (cron then runs on either).

    Raises ``NotExpressible`` for L/W/#/H, which systemd cannot express the way cron means them."""
    check_portable(expr, "systemd")
    fields, nth = _expand(expr)
    if nth or any(v == "l" for f in fields for v in f):
        raise NotExpressible(f"cron expression {expr!r} uses L or #, which systemd cannot express")

    def part(i: int) -> str:
        lo, hi = FIELD_RANGES[i]
        return "*" if fields[i] == ["*"] else _compress([int(v) for v in fields[i]], lo, hi)

    minute, hour, dom, month = part(0), part(1), part(2), part(3)
    dow = None if fields[4] == ["*"] else _weekdays([int(v) % 7 for v in fields[4]])
    if dow is not None and len(set(int(v) % 7 for v in fields[4])) == 7:
        dow = None
    clock = f"{hour}:{minute}:00 UTC"
    if dom != "*" and dow is not None:  # cron: either day field matches
        return [f"*-{month}-{dom} {clock}", f"{dow} *-{month}-* {clock}"]
    prefix = f"{dow} " if dow is not None else ""
    return [f"{prefix}*-{month}-{dom} {clock}"]


# -- the command each schedule runs --------------------------------------------------------------------------


def drill_argv(spec: DrillSpec, *, doops: str = "doops", report: str | None = None) -> list[str]:
    """``doops drill run FILE [--input k=v]... --yes [--report junit=PATH]``."""
    argv = [doops, "drill", "run", spec.file]
    for key, value in spec.inputs.items():
        argv += ["--input", f"{key}={_scalar(value)}"]
    argv.append("--yes")
    if report:
        argv += ["--report", f"junit={report}"]
    return argv


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


TOKEN_FROM = {"systemd": "the EnvironmentFile= below", "kubernetes": "the Secret below (secretKeyRef)",
              "github-actions": f"secrets.{TOKEN_VAR}"}


def _header(target: str) -> list[str]:
    return [f"# Generated by `doops drill schedule --target {target}`. Cron times are UTC.",
            f"# The DigitalOcean token is never written here: {TOKEN_VAR} comes from "
            f"{TOKEN_FROM.get(target, 'the environment')}."]


# -- targets -------------------------------------------------------------------------------------------------


def crontab(spec: DrillSpec, where: Where) -> GeneratedFile:
    """A crontab block: the line sources the env file (``DIGITALOCEAN_TOKEN=...``, mode 600) so the token
    stays out of the crontab, which ``crontab -l`` shows to anyone at the terminal."""
    check_portable(spec.cron, "cron")
    env_file = where.env_file or "$HOME/.config/doops/drill.env"
    steps = [f"set -a && . {_sh_path(env_file)} && set +a"]
    if where.workdir:
        steps.append(f"cd {shlex.quote(where.workdir)}")
    run = shlex.join(drill_argv(spec, doops=where.doops))
    if where.config:
        run = f"DOOPS_CONFIG={shlex.quote(where.config)} {run}"
    steps.append(run)
    line = " && ".join(steps).replace("%", r"\%")  # cron turns an unescaped % into a newline
    text = "\n".join([
        f"# doops drill {spec.runbook}: {spec.cron} (UTC); {TOKEN_VAR} from {env_file}",
        "CRON_TZ=UTC",
        f"{spec.cron} {line}",
    ]) + "\n"
    return GeneratedFile("doops-drills.crontab", text)


def _sh_path(path: str) -> str:
    """Quote a path for sh but keep a leading $HOME expandable."""
    if path.startswith("$HOME/"):
        return '"$HOME"/' + shlex.quote(path[len("$HOME/"):])
    return shlex.quote(path)


def _systemd_quote(arg: str) -> str:
    """One ExecStart= argument: double-quoted when needed; % and $ escaped so systemd expands nothing."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd(spec: DrillSpec, where: Where) -> list[GeneratedFile]:
    """A oneshot ``.service`` with the token from ``EnvironmentFile=`` and a ``.timer`` with
    ``Persistent=true``, so a drill missed while the machine was off runs when it is back."""
    calendars = on_calendar(spec.cron)
    name = unit_name(spec)
    env_file = where.env_file or "/etc/doops/drill.env"
    service = [
        *_header("systemd"),
        f"# {TOKEN_VAR}=... lives in {env_file} (mode 600), or use LoadCredential= and export it in a wrapper.",
        "[Unit]",
        f"Description=doops drill {spec.runbook}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"EnvironmentFile={env_file}",
    ]
    if where.config:
        service.append(f"Environment={_systemd_quote('DOOPS_CONFIG=' + where.config)}")
    if where.workdir:
        service.append(f"WorkingDirectory={where.workdir}")
    service.append("ExecStart=" + " ".join(_systemd_quote(a) for a in drill_argv(spec, doops=where.doops)))
    timer = [
        *_header("systemd"),
        "[Unit]",
        f"Description=Schedule of doops drill {spec.runbook} (cron {spec.cron}, UTC)",
        "",
        "[Timer]",
        *(f"OnCalendar={c}" for c in calendars),
        "Persistent=true",
        f"Unit={name}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return [GeneratedFile(f"{name}.service", "\n".join(service) + "\n"),
            GeneratedFile(f"{name}.timer", "\n".join(timer) + "\n")]


def kubernetes(spec: DrillSpec, where: Where) -> GeneratedFile:
    """A batch/v1 CronJob: never two runs at once, no retries (a drill is not retried blindly: it may have
    acted), the token from a Secret, the runbook and doops.yaml from a ConfigMap."""
    import yaml

    check_portable(spec.cron, "kubernetes")
    name = unit_name(spec)
    runbook_file = spec.file.rsplit("/", 1)[-1]
    labels = {"app.kubernetes.io/name": "doops", "app.kubernetes.io/component": "drill",
              "doops/runbook": spec.name}
    env: list[dict[str, Any]] = [
        {"name": TOKEN_VAR, "valueFrom": {"secretKeyRef": {"name": where.secret, "key": SECRET_KEY}}}]
    items = [{"key": runbook_file, "path": f"runbooks/{runbook_file}"}]
    if where.config:  # the doops config travels in the ConfigMap too (history URL, objectives, pushgateway)
        env.append({"name": "DOOPS_CONFIG", "value": f"{K8S_WORKDIR}/doops.yaml"})
        items.insert(0, {"key": "doops.yaml", "path": "doops.yaml"})
    k8s_spec = DrillSpec(spec.runbook, f"runbooks/{runbook_file}", spec.cron, spec.inputs, spec.name)
    doc = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "schedule": spec.cron,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "drill",
                            "image": where.image,
                            "workingDir": K8S_WORKDIR,
                            "command": drill_argv(k8s_spec),
                            "env": env,
                            "volumeMounts": [{"name": "drill", "mountPath": K8S_WORKDIR, "readOnly": True}],
                        }],
                        "volumes": [{"name": "drill", "configMap": {
                            "name": where.config_map,
                            "items": items,
                        }}],
                    },
                },
            }},
        },
    }
    head = "\n".join([
        *_header("kubernetes"),
        f"# kubectl create secret generic {where.secret} --from-literal={SECRET_KEY}=\"${TOKEN_VAR}\"",
        f"# kubectl create configmap {where.config_map}"
        + (f" --from-file=doops.yaml={where.config}" if where.config else "") + f" --from-file={spec.file}",
        "#   (one ConfigMap for every scheduled drill: add each runbook with another --from-file)",
    ]) + "\n"
    return GeneratedFile(f"{name}.yaml", head + yaml.safe_dump(doc, sort_keys=False, width=120))


def github_actions(spec: DrillSpec, where: Where) -> GeneratedFile:
    """A workflow: the schedule plus a manual trigger, one drill at a time across every drill workflow (they
    share a concurrency group, queued rather than cancelled), the JUnit report kept as an artifact."""
    import yaml

    check_portable(spec.cron, "github-actions")
    name = unit_name(spec)
    run_env: dict[str, str] = {TOKEN_VAR: f"${{{{ secrets.{TOKEN_VAR} }}}}"}
    if where.config:
        run_env["DOOPS_CONFIG"] = where.config
    doc = {
        "name": f"doops drill {spec.runbook}",
        "on": {"schedule": [{"cron": spec.cron}], "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "concurrency": {"group": "doops-drill", "cancel-in-progress": False},
        "jobs": {"drill": {
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 180,
            "steps": [
                {"uses": "actions/checkout@v4"},
                {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
                {"name": "Install doops", "run": "python -m pip install ."},
                {"name": f"Drill {spec.runbook}", "env": run_env,
                 "run": shlex.join(drill_argv(spec, report=JUNIT_REPORT))},
                {"name": "Keep the JUnit report", "if": "always()", "uses": "actions/upload-artifact@v4",
                 "with": {"name": f"{name}-report", "path": JUNIT_REPORT, "if-no-files-found": "warn"}},
            ],
        }},
    }
    return GeneratedFile(f"{name}.yml", "\n".join(_header("github-actions")) + "\n"
                         + yaml.safe_dump(doc, sort_keys=False, width=120))


def generate(target: str, specs: list[DrillSpec], where: Where) -> ScheduleResult:
    """Every drill's files for one target; raises NotExpressible before anything is produced."""
    drills = []
    for spec in specs:
        if target == "cron":
            files = [crontab(spec, where)]
        elif target == "systemd":
            files = systemd(spec, where)
        elif target == "kubernetes":
            files = [kubernetes(spec, where)]
        elif target == "github-actions":
            files = [github_actions(spec, where)]
        else:
            raise ValueError(f"unknown target {target!r}")
        drills.append(ScheduledDrill(spec.runbook, spec.cron, files))
    return ScheduleResult(target, drills)


def as_text(result: ScheduleResult) -> str:
    """The table form: the files' text. One crontab; YAML targets as one multi-document stream; several files
    each under a ``# ==> NAME <==`` line so they are easy to split."""
    files = [f for d in result.drills for f in d.files]
    if result.target == "cron":
        return "\n".join(f.content for f in files)
    if len(files) == 1:
        return files[0].content
    sep = "---\n" if result.target in ("kubernetes", "github-actions") else ""
    return "\n".join(f"{sep if n else ''}# ==> {f.name} <==\n{f.content}" for n, f in enumerate(files))


def out_files(result: ScheduleResult) -> list[GeneratedFile]:
    """What ``--out-dir`` writes: one crontab for every drill, else each drill's files."""
    if result.target == "cron":
        return [GeneratedFile("doops-drills.crontab", as_text(result))]
    return [f for d in result.drills for f in d.files]
