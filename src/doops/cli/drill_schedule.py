"""`doops drill schedule`: print (or write) the files that run drills on a schedule.

The result is a file's text, so the table form prints it raw; -o json/yaml wrap it as
{target, drills: [{runbook, cron, files: [{name, content}]}]}. Every generated file is parsed back before it
is printed (YAML by yaml.safe_load, crontab lines by croniter, systemd calendars by `systemd-analyze
calendar` where present): a file that does not parse is a bug, never output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from doops.cli.context import Cli
from doops.cli.params import renders
from doops.cli.render import render
from doops.drill.schedule import ScheduleResult
from doops.errors import UsageError

if TYPE_CHECKING:
    from doops.config import Config
    from doops.drill.schedule import DrillSpec

TARGETS = ("cron", "systemd", "kubernetes", "github-actions")
ENV_FILE_TARGETS = ("cron", "systemd")


def _inputs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE (e.g. --input region=ams3)")
        if key in out:
            raise click.BadParameter(f"input {key!r} given twice")
        out[key] = value
    return out


def _cron(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    problem = _cron_problem(value)
    if problem:
        raise click.BadParameter(f"{problem}: write five fields, minute hour day-of-month month day-of-week "
                                 f"(UTC), e.g. '0 3 * * 1' for Mondays at 03:00")
    return " ".join(value.split())


def _cron_problem(expr: str) -> str | None:
    from doops.config import cron_problem

    return cron_problem(expr)


def _dns_label(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    import re

    if value is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?", value):
        raise click.BadParameter(f"{value!r} is not a Kubernetes object name (lower case a-z, 0-9 and -)")
    return value


def _image(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    import re

    if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*", value):
        raise click.BadParameter(f"{value!r} is not an image reference (e.g. registry/doops:0.1.0)")
    return value


@renders(ScheduleResult, table=False)
@click.command("schedule")
@click.argument("runbook", required=False)
@click.option("--all", "all_", is_flag=True, help="Every drill in the config's drills.schedules.")
@click.option("--target", type=click.Choice(TARGETS), required=True, help="What runs the drills.")
@click.option("--cron", callback=_cron, metavar="EXPR",
              help="When RUNBOOK runs: five-field cron, UTC (default: its drills.schedules entry).")
@click.option("--input", "inputs", multiple=True, callback=_inputs, metavar="NAME=VALUE",
              help="A runbook input for RUNBOOK (repeatable; default: its drills.schedules inputs).")
@click.option("--image", callback=_image, metavar="IMAGE",
              help="kubernetes: the image with doops installed (default doops:<this version>).")
@click.option("--secret", callback=_dns_label, metavar="NAME",
              help="kubernetes: the Secret holding the token under key 'token' (default doops-digitalocean).")
@click.option("--config-map", "config_map", callback=_dns_label, metavar="NAME",
              help="kubernetes: the ConfigMap holding doops.yaml and the runbooks (default doops-drills).")
@click.option("--env-file", "env_file", metavar="PATH",
              help="cron/systemd: the file holding DIGITALOCEAN_TOKEN=... (default ~/.config/doops/drill.env "
                   "for cron, /etc/doops/drill.env for systemd).")
@click.option("--out-dir", "out_dir", metavar="DIR", help="Write each file into DIR instead of printing it.")
@click.pass_obj
def schedule(app: Cli, runbook: str | None, all_: bool, target: str, cron: str | None,
             inputs: dict[str, str], image: str | None, secret: str | None, config_map: str | None,
             env_file: str | None, out_dir: str | None) -> None:
    """Print the crontab lines, systemd units, Kubernetes CronJob or GitHub Actions workflow that run a drill
    (`doops drill run RUNBOOK --yes`) on a schedule.

    RUNBOOK is a runbook file or a name under runbooks/ (or the config's runbooks.paths), with --cron; --all
    takes every drill of the config's drills.schedules. The DigitalOcean token is never written: cron and
    systemd read it from an env file, Kubernetes from a Secret, GitHub Actions from secrets.DIGITALOCEAN_TOKEN.
    Every file is parsed back before it is printed. Exit 4 for a bad cron expression, one the target cannot
    express, or a runbook that is not found; nothing is written then.

    \b
    Example:
      doops drill schedule runbooks/db-restore-drill.yaml --cron '0 3 * * 1' --target kubernetes
      doops drill schedule --all --target systemd --out-dir /etc/systemd/system
      doops drill schedule --all --target github-actions --out-dir .github/workflows
    """
    from doops import __version__
    from doops.drill.schedule import NotExpressible, Where, generate

    given = {"image": image, "secret": secret, "config_map": config_map}
    for key, value in given.items():
        if value is not None and target != "kubernetes":
            raise UsageError(f"--{key.replace('_', '-')} applies to --target kubernetes only",
                             hint="drop it, or use --target kubernetes")
    if env_file is not None and target not in ENV_FILE_TARGETS:
        raise UsageError("--env-file applies to --target cron or systemd only",
                         hint="kubernetes reads the token from --secret, github-actions from secrets.")
    if env_file is not None and not os.path.isabs(env_file) and not env_file.startswith("$HOME/"):
        raise UsageError(f"--env-file {env_file!r} is relative: the scheduler runs from another directory",
                         hint="give an absolute path")
    out = _check_out_dir(out_dir) if out_dir is not None else None
    config = app.platform.config
    specs = _specs(config, runbook, all_, cron, inputs)
    where = Where(
        doops=_doops_executable() if target in ENV_FILE_TARGETS else "doops",
        workdir=os.getcwd() if target in ENV_FILE_TARGETS else None,
        config=_config_path(config, target),
        env_file=env_file,
        image=image or f"doops:{__version__}",
        secret=secret or "doops-digitalocean",
        config_map=config_map or "doops-drills",
    )
    try:
        result = generate(target, specs, where)
    except NotExpressible as exc:
        raise UsageError(str(exc), hint="crontab, systemd, Kubernetes and GitHub Actions all read lists, "
                                             "ranges, steps and names") from None
    check_generated(result)
    if target == "github-actions":
        outside = [s.file for s in specs if Path(s.file).is_absolute()]
        if outside:
            raise UsageError(f"runbook {outside[0]} is outside this directory: the workflow sees only the "
                             "repository it runs in", hint="run from the repository root holding the runbooks")
    if out is not None:
        _write(out, result, table=app.output.fmt == "table")
        if app.output.fmt != "table":
            render(result, app.output)
        return
    if app.output.fmt == "table":
        from doops.drill.schedule import as_text

        sys.stdout.write(as_text(result))
        sys.stdout.flush()
    else:
        render(result, app.output)


# -- sources -------------------------------------------------------------------------------------------------


def _specs(config: Config, runbook: str | None, all_: bool, cron: str | None,
           inputs: dict[str, str]) -> list[DrillSpec]:
    from doops.drill.schedule import DrillSpec

    if all_ and runbook:
        raise UsageError("give RUNBOOK or --all, not both", hint="--all schedules every drill of drills.schedules")
    if not all_ and not runbook:
        raise UsageError("no drill named", hint="give RUNBOOK with --cron, or --all for the config's drills.schedules")
    schedules = list(getattr(getattr(config, "drills", None), "schedules", None) or [])
    where = config.source or "the config"
    if all_:
        if cron or inputs:
            raise UsageError("--cron and --input apply to RUNBOOK, not to --all",
                             hint=f"set each drill's cron and inputs in {where} (drills.schedules)")
        if not schedules:
            raise UsageError(f"no drills scheduled in {where}",
                             hint="add drills.schedules: [{runbook: ..., cron: '0 3 * * 1'}] (docs/drills.md)")
        specs = []
        for s in schedules:
            problem = _cron_problem(s.cron)
            if problem:
                raise UsageError(f"{where}: drills.schedules {s.runbook}: {problem}",
                                 hint="five fields, UTC, e.g. '0 3 * * 1'")
            specs.append(DrillSpec(s.runbook, _runbook_file(config, s.runbook), s.cron, dict(s.inputs or {})))
        return _unique(specs)
    assert runbook is not None
    entry = next((s for s in schedules if s.runbook == runbook), None)
    file = _runbook_file(config, runbook)
    if entry is None:
        entry = next((s for s in schedules if _same_file(config, s.runbook, file)), None)
    if cron is None:
        if entry is None:
            raise UsageError(f"no schedule for {runbook}: give --cron",
                             hint="e.g. --cron '0 3 * * 1' (Mondays 03:00 UTC), or add it to drills.schedules")
        cron = entry.cron
    if not inputs and entry is not None:
        inputs = {k: str(v) for k, v in (entry.inputs or {}).items()}
    return [DrillSpec(runbook, file, cron, dict(inputs))]


def _unique(specs: list[DrillSpec]) -> list[DrillSpec]:
    """Two runbooks with the same file stem would share a unit/CronJob name: number the later ones."""
    seen: dict[str, int] = {}
    for spec in specs:
        n = seen.get(spec.name, 0)
        seen[spec.name] = n + 1
        if n:
            spec.name = f"{spec.name}-{n + 1}"
    return specs


def _runbook_dirs(config: Config) -> list[Path]:
    base = Path(config.source).parent if config.source else Path(".")
    dirs = [Path("runbooks")]
    paths = getattr(getattr(config, "runbooks", None), "paths", None) or []
    dirs += [p if p.is_absolute() else base / p for p in (Path(x).expanduser() for x in paths)]
    return dirs


def _runbook_file(config: Config, runbook: str) -> str:
    """The runbook's file as the scheduled command names it: as given when it exists (relative to here or to
    the config file), else the file under runbooks/ named RUNBOOK(.yaml) or whose ``name:`` is RUNBOOK."""
    import yaml

    base = Path(config.source).parent if config.source else None
    for candidate in (Path(runbook), *([base / runbook] if base else [])):
        if candidate.is_file():
            return _here(candidate)
    looked = []
    for d in _runbook_dirs(config):
        looked.append(str(d))
        for ext in (".yaml", ".yml"):
            if (d / f"{runbook}{ext}").is_file():
                return _here(d / f"{runbook}{ext}")
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]) if d.is_dir() else []:
            try:
                doc = yaml.safe_load(f.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError, UnicodeDecodeError):
                continue
            if isinstance(doc, dict) and doc.get("name") == runbook:
                return _here(f)
    raise UsageError(f"runbook {runbook!r} not found (looked for the file and in {', '.join(looked)})",
                     hint="give the runbook's file, or run from the directory holding runbooks/")


def _here(path: Path) -> str:
    """A path relative to this directory when it is inside it (schedules run from here), else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _same_file(config: Config, name: str, file: str) -> bool:
    try:
        return Path(_runbook_file(config, name)).resolve() == Path(file).resolve()
    except UsageError:
        return False


def _config_path(config: Config, target: str) -> str | None:
    """DOOPS_CONFIG for the scheduled run: the config this command read (absolute on this machine; relative to
    the repository for GitHub Actions; Kubernetes mounts it from the ConfigMap)."""
    if not config.source:
        return None
    path = Path(config.source).resolve()
    if target == "github-actions":
        try:
            return str(path.relative_to(Path.cwd().resolve()))
        except ValueError:
            return None  # not in the repository: the workflow cannot see it
    if target == "kubernetes":  # only named in the `kubectl create configmap` line
        return _here(path)
    return str(path)


def _doops_executable() -> str:
    """cron and systemd run with a bare PATH: name doops by its absolute path (this installation's)."""
    beside = Path(sys.executable).parent / "doops"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("doops") or "doops"


# -- validation ----------------------------------------------------------------------------------------------


def check_generated(result: ScheduleResult) -> None:
    """Parse every generated file back; a file that does not parse is a bug in the generator, never printed."""
    import configparser

    import yaml
    from croniter import croniter

    for drill in result.drills:
        for f in drill.files:
            if result.target in ("kubernetes", "github-actions"):
                doc = yaml.safe_load(f.content)
                assert isinstance(doc, dict), f"generated {f.name} is not a YAML mapping"
                if result.target == "kubernetes":
                    assert doc["kind"] == "CronJob" and doc["spec"]["concurrencyPolicy"] == "Forbid", f.name
                    assert doc["spec"]["schedule"] == drill.cron, f.name
                else:
                    assert doc["on"]["schedule"][0]["cron"] == drill.cron, f.name
            elif result.target == "cron":
                lines = [ln for ln in f.content.splitlines() if ln and not ln.startswith("#") and "=" not in
                         ln.split(" ", 1)[0]]
                assert lines, f"generated {f.name} has no crontab line"
                for ln in lines:
                    assert croniter.is_valid(" ".join(ln.split()[:5])), f"bad crontab line in {f.name}"
            else:
                parser = configparser.ConfigParser(strict=False, interpolation=None)
                parser.read_string(f.content, source=f.name)
                if f.name.endswith(".timer"):
                    calendars = [ln.split("=", 1)[1] for ln in f.content.splitlines()
                                 if ln.startswith("OnCalendar=")]
                    assert calendars, f"generated {f.name} has no OnCalendar="
                    check_calendars(calendars)


def check_calendars(calendars: list[str]) -> None:
    """`systemd-analyze calendar` on each OnCalendar= value where systemd is installed (a note otherwise)."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        click.echo("doops: note: systemd-analyze not found: OnCalendar= not checked by systemd", err=True)
        return
    for value in calendars:
        try:
            proc = subprocess.run([binary, "calendar", value], capture_output=True, text=True, timeout=15,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            click.echo(f"doops: note: systemd-analyze could not run ({exc}): OnCalendar= not checked", err=True)
            return
        if proc.returncode != 0:
            raise AssertionError(f"systemd-analyze rejects OnCalendar={value}: {proc.stderr.strip()}")


def _check_out_dir(out_dir: str) -> Path:
    """--out-dir: an existing writable directory, or a new one whose parent exists; decided before anything
    is generated or written."""
    path = Path(out_dir).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"--out-dir {out_dir}: not a directory", hint="name a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"--out-dir {out_dir}: not writable", hint="name a directory you can write to")
    else:
        parent = path.parent
        if not parent.is_dir():
            raise UsageError(f"--out-dir {out_dir}: {parent} does not exist", hint="create it first")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"--out-dir {out_dir}: cannot create it in {parent}", hint="check permissions")
    return path


def _write(out: Path, result: ScheduleResult, *, table: bool) -> None:
    from doops.drill.schedule import out_files

    files = out_files(result)
    out.mkdir(exist_ok=True)
    for f in files:
        target = out / f.name
        tmp = out / f".{f.name}.tmp"
        tmp.write_text(f.content, encoding="utf-8")
        os.replace(tmp, target)
        if table:
            sys.stdout.write(f"{target}\n")
        else:
            click.echo(f"doops: wrote {target}", err=True)
    sys.stdout.flush()
