"""`doops drill schedule`: every target's output parsed back; cron -> OnCalendar against a table (always) and
against systemd-analyze and croniter (where systemd is installed); the token never written."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from croniter import croniter

from doops.drill.schedule import NotExpressible, on_calendar
from tests.helpers import CANARY_TOKEN, run_doops

RUNBOOK = """name: db-restore-drill
description: weekly restore of the primary into a small cluster
steps: []
"""

CONFIG = """drills:
  schedules:
    - runbook: db-restore-drill
      cron: "0 3 * * 1"
      inputs: {size: db-s-1vcpu-1gb}
    - runbook: runbooks/db-failover-drill.yaml
      cron: "30 4 1 * *"
"""

# cron -> OnCalendar= values: written by hand from crontab(5) and systemd.time(7)
ON_CALENDAR = [
    ("0 3 * * 1", ["Mon *-*-* 03:00:00 UTC"]),
    ("*/15 * * * *", ["*-*-* *:00/15:00 UTC"]),
    ("5/15 * * * *", ["*-*-* *:05/15:00 UTC"]),
    ("0 */2 * * *", ["*-*-* 00/2:00:00 UTC"]),
    ("0 0 1 * *", ["*-*-01 00:00:00 UTC"]),
    ("30 2 * * mon-fri", ["Mon..Fri *-*-* 02:30:00 UTC"]),
    ("0 6,18 * * sat,sun", ["Sun,Sat *-*-* 06,18:00:00 UTC"]),
    ("0 0 1-10/3 * *", ["*-*-01,04,07,10 00:00:00 UTC"]),
    ("5 4 * jan-mar,dec 7", ["Sun *-01..03,12-* 04:05:00 UTC"]),
    ("0 0-6 * * *", ["*-*-* 00..06:00:00 UTC"]),
    ("1-5 * * * *", ["*-*-* *:01..05:00 UTC"]),
    ("0 0 * * 0-6", ["*-*-* 00:00:00 UTC"]),
    ("0 0 * * 1-5/2", ["Mon,Wed,Fri *-*-* 00:00:00 UTC"]),
    ("15 10 29 2 *", ["*-02-29 10:15:00 UTC"]),
    ("0 12 * 6-8 fri-sun", ["Sun,Fri,Sat *-06..08-* 12:00:00 UTC"]),
    # both day fields restricted: cron runs on either, so two OnCalendar= lines
    ("0 3 1,15 * 1", ["*-*-01,15 03:00:00 UTC", "Mon *-*-* 03:00:00 UTC"]),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding runbooks/ and doops.yaml, the current directory of the command."""
    root = tmp_path / "ops"
    (root / "runbooks").mkdir(parents=True)
    (root / "runbooks" / "db-restore-drill.yaml").write_text(RUNBOOK)
    (root / "runbooks" / "db-failover-drill.yaml").write_text(RUNBOOK.replace("db-restore", "db-failover"))
    (root / "doops.yaml").write_text(CONFIG)
    monkeypatch.chdir(root)
    return root


def schedule(*args: str, config: bool = False) -> tuple[int, str, str]:
    # the token is in the environment, as it would be on the machine that generates the files
    env = {"DIGITALOCEAN_TOKEN": CANARY_TOKEN, "DIGITALOCEAN_ACCESS_TOKEN": CANARY_TOKEN}
    res = run_doops([*(["--config", "doops.yaml"] if config else []), "drill", "schedule", *args], env=env)
    assert CANARY_TOKEN not in res.stdout and CANARY_TOKEN not in res.stderr
    return res.exit_code, res.stdout, res.stderr


def split_files(text: str) -> dict[str, str]:
    """Split the `# ==> NAME <==` sections of a multi-file output."""
    parts = re.split(r"^(?:---\n)?# ==> (.+?) <==\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


# -- the converter -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cron", "expected"), ON_CALENDAR)
def test_cron_to_on_calendar_table(cron: str, expected: list[str]) -> None:
    assert on_calendar(cron) == expected


@pytest.mark.parametrize("cron", ["0 0 L * *", "0 0 * * 5#2", "0 0 15W * *"])
def test_forms_systemd_cannot_express_are_refused(cron: str) -> None:
    with pytest.raises(NotExpressible, match=re.escape(cron)):
        on_calendar(cron)


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
BASE = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed: OnCalendar checked by the "
                                                     "table only (test_cron_to_on_calendar_table)")
@pytest.mark.parametrize(("cron", "expected"), ON_CALENDAR)
def test_systemd_fires_exactly_when_croniter_does(cron: str, expected: list[str]) -> None:
    """systemd's own reading of each OnCalendar= gives the same next 12 times as croniter's of the cron line."""
    assert SYSTEMD_ANALYZE is not None
    n = 12
    fired: set[datetime] = set()
    for value in on_calendar(cron):
        proc = subprocess.run(
            [SYSTEMD_ANALYZE, "calendar", f"--iterations={n}", f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC", value],
            capture_output=True, text=True, timeout=30, check=False, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        times = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for t in ELAPSE.findall(proc.stdout)]
        assert len(times) == n, proc.stdout
        fired.update(times)
    it = croniter(cron, BASE)
    assert sorted(fired)[:n] == [it.get_next(datetime) for _ in range(n)]


def test_calendar_check_notes_a_missing_systemd_analyze(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from doops.cli import drill_schedule

    monkeypatch.setattr(drill_schedule.shutil, "which", lambda name: None)
    drill_schedule.check_calendars(["Mon *-*-* 03:00:00 UTC"])
    assert "systemd-analyze not found" in capsys.readouterr().err


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_calendar_check_rejects_what_systemd_rejects() -> None:
    from doops.cli.drill_schedule import check_calendars

    with pytest.raises(AssertionError, match="systemd-analyze rejects"):
        check_calendars(["Mon *-*-* 25:00:00 UTC"])


def test_a_generated_file_that_does_not_parse_is_a_bug_not_output() -> None:
    from doops.cli.drill_schedule import check_generated
    from doops.drill.schedule import GeneratedFile, ScheduledDrill, ScheduleResult

    broken = ScheduleResult("kubernetes", [ScheduledDrill("x", "0 3 * * 1", [GeneratedFile("x.yaml", "a: [1\n")])])
    with pytest.raises(yaml.YAMLError):
        check_generated(broken)
    wrong = ScheduleResult("kubernetes", [ScheduledDrill("x", "0 3 * * 1", [
        GeneratedFile("x.yaml", "kind: CronJob\nspec: {concurrencyPolicy: Allow, schedule: '0 3 * * 1'}\n")])])
    with pytest.raises(AssertionError):
        check_generated(wrong)


# -- each target, parsed back --------------------------------------------------------------------------------


def test_crontab_lines_parse_and_take_the_token_from_an_env_file(project: Path) -> None:
    code, out, err = schedule("runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--input", "size=a b%",
                              "--target", "cron")
    assert code == 0, err
    jobs = [ln for ln in out.splitlines() if ln and not ln.startswith("#") and not ln.startswith("CRON_TZ=")]
    assert len(jobs) == 1
    fields = jobs[0].split()
    assert croniter.is_valid(" ".join(fields[:5])) and " ".join(fields[:5]) == "0 3 * * 1"
    assert "CRON_TZ=UTC" in out.splitlines()
    assert '. "$HOME"/.config/doops/drill.env' in jobs[0]
    assert "drill run runbooks/db-restore-drill.yaml --input 'size=a b\\%' --yes" in jobs[0]
    assert f"cd {project}" in jobs[0]
    assert "DIGITALOCEAN_TOKEN=" not in jobs[0]


def test_systemd_units_parse_with_persistent_timer_and_token_from_env_file(project: Path) -> None:
    code, out, err = schedule("db-restore-drill", "--cron", "0 3 1,15 * mon", "--target", "systemd",
                              "--env-file", "/etc/doops/drill.env")
    assert code == 0, err
    files = split_files(out)
    assert sorted(files) == ["doops-drill-db-restore-drill.service", "doops-drill-db-restore-drill.timer"]
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read_string(files["doops-drill-db-restore-drill.service"])
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["EnvironmentFile"] == "/etc/doops/drill.env"
    assert service["Service"]["ExecStart"].endswith("drill run runbooks/db-restore-drill.yaml --yes")
    assert Path(service["Service"]["ExecStart"].split()[0]).is_absolute()
    timer_text = files["doops-drill-db-restore-drill.timer"]
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read_string(timer_text)
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "doops-drill-db-restore-drill.service"
    assert re.findall(r"^OnCalendar=(.+)$", timer_text, flags=re.MULTILINE) == on_calendar("0 3 1,15 * mon")
    assert "DIGITALOCEAN_TOKEN=" not in "".join(ln for ln in out.splitlines() if not ln.startswith("#"))


def test_kubernetes_cronjob_parses_with_forbid_and_a_secret_reference(project: Path) -> None:
    code, out, err = schedule("runbooks/db-restore-drill.yaml", "--cron", "*/30 2 * * *", "--target", "kubernetes",
                              "--image", "registry.example/ops/doops:0.1.0", "--secret", "do-token")
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "CronJob"
    spec = doc["spec"]
    assert spec["schedule"] == "*/30 2 * * *" and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/ops/doops:0.1.0"
    assert container["command"] == ["doops", "drill", "run", "runbooks/db-restore-drill.yaml", "--yes"]
    token = next(e for e in container["env"] if e["name"] == "DIGITALOCEAN_TOKEN")
    assert token == {"name": "DIGITALOCEAN_TOKEN", "valueFrom": {"secretKeyRef": {"name": "do-token", "key": "token"}}}
    assert all("value" not in e for e in container["env"] if e["name"].startswith("DIGITALOCEAN"))
    items = pod["volumes"][0]["configMap"]["items"]
    assert {"key": "db-restore-drill.yaml", "path": "runbooks/db-restore-drill.yaml"} in items


def test_github_actions_workflow_parses_with_secret_concurrency_and_report_artifact(project: Path) -> None:
    code, out, err = schedule("runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "github-actions")
    assert code == 0, err
    doc = yaml.safe_load(out)
    assert doc["on"]["schedule"] == [{"cron": "0 3 * * 1"}] and "workflow_dispatch" in doc["on"]
    assert doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"] is False
    steps = doc["jobs"]["drill"]["steps"]
    drill = next(s for s in steps if "drill run" in s.get("run", ""))
    assert drill["env"]["DIGITALOCEAN_TOKEN"] == "${{ secrets.DIGITALOCEAN_TOKEN }}"
    assert drill["run"].endswith("--yes --report junit=drill-report.xml")
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "drill-report.xml"


def test_json_wraps_each_drill_with_its_files(project: Path) -> None:
    code, out, err = schedule("runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "systemd",
                              "-o", "json")
    assert code == 0, err
    data = yaml.safe_load(out)
    assert data["target"] == "systemd"
    (drill,) = data["drills"]
    assert drill["cron"] == "0 3 * * 1" and drill["runbook"] == "runbooks/db-restore-drill.yaml"
    assert [f["name"] for f in drill["files"]] == ["doops-drill-db-restore-drill.service",
                                                   "doops-drill-db-restore-drill.timer"]
    assert "OnCalendar=Mon *-*-* 03:00:00 UTC" in drill["files"][1]["content"]


# -- --all from the config -----------------------------------------------------------------------------------


def test_all_from_config_gives_one_cronjob_per_drill(project: Path) -> None:
    code, out, err = schedule("--all", "--target", "kubernetes", config=True)
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [d["metadata"]["name"] for d in docs] == ["doops-drill-db-restore-drill", "doops-drill-db-failover-drill"]
    assert [d["spec"]["schedule"] for d in docs] == ["0 3 * * 1", "30 4 1 * *"]
    restore = docs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert restore["command"] == ["doops", "drill", "run", "runbooks/db-restore-drill.yaml",
                                  "--input", "size=db-s-1vcpu-1gb", "--yes"]
    assert {"name": "DOOPS_CONFIG", "value": "/drill/doops.yaml"} in restore["env"]
    assert all(d["spec"]["concurrencyPolicy"] == "Forbid" for d in docs)


def test_all_from_config_to_out_dir_writes_each_workflow(project: Path) -> None:
    out_dir = project / ".github" / "workflows"
    out_dir.parent.mkdir()
    code, out, err = schedule("--all", "--target", "github-actions", "--out-dir", str(out_dir), config=True)
    assert code == 0, err
    written = sorted(p.name for p in out_dir.iterdir())
    assert written == ["doops-drill-db-failover-drill.yml", "doops-drill-db-restore-drill.yml"]
    for p in out_dir.iterdir():
        text = p.read_text()
        assert CANARY_TOKEN not in text
        assert yaml.safe_load(text)["on"]["schedule"][0]["cron"] in ("0 3 * * 1", "30 4 1 * *")
    assert sorted(Path(line).name for line in out.split()) == written


def test_runbook_takes_its_cron_and_inputs_from_the_config(project: Path) -> None:
    code, out, err = schedule("db-restore-drill", "--target", "cron", config=True)
    assert code == 0, err
    assert "\n0 3 * * 1 " in out and "--input size=db-s-1vcpu-1gb --yes" in out


# -- bad input: exit 4, nothing written ----------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--cron", "0 3 * *"], "has 4 fields"),
    (["--cron", "61 3 * * *"], "61 3 * * *"),
    (["--cron", "0 3 * * 1 2026"], "has 6 fields"),
    (["--cron", "0 0 L * *"], "L (last day)"),
    (["--cron", "0 0 * * 5#2"], "# (nth weekday)"),
])
def test_bad_cron_is_exit_4_naming_it_and_writes_nothing(project: Path, args: list[str], message: str) -> None:
    out_dir = project / "out"
    code, out, err = schedule("runbooks/db-restore-drill.yaml", *args, "--target", "systemd",
                              "--out-dir", str(out_dir))
    assert code == 4, err
    assert message in err and "e.g. '0 3 * * 1'" in err
    assert out == "" and not out_dir.exists()


def test_bad_cron_in_the_config_is_exit_4_naming_the_file(project: Path) -> None:
    (project / "doops.yaml").write_text(CONFIG.replace('"30 4 1 * *"', '"30 4 1 *"'))
    code, out, err = schedule("--all", "--target", "cron", config=True)
    assert code == 4 and out == ""
    assert "doops.yaml" in err and "30 4 1 *" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "cron"], "no drill named"),
    (["runbooks/db-restore-drill.yaml", "--all", "--target", "cron"], "not both"),
    (["runbooks/db-restore-drill.yaml", "--target", "cron"], "give --cron"),
    (["nosuch", "--cron", "0 3 * * 1", "--target", "cron"], "'nosuch' not found"),
    (["--all", "--target", "cron"], "no drills scheduled"),
    (["runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "cron", "--image", "x"],
     "--image applies to --target kubernetes only"),
    (["runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "kubernetes", "--env-file", "/e"],
     "--env-file applies to --target cron or systemd only"),
    (["runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "kubernetes", "--secret", "Bad_Name"],
     "not a Kubernetes object name"),
    (["runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "systemd", "--env-file", "drill.env"],
     "is relative"),
])
def test_bad_options_are_exit_4(project: Path, args: list[str], message: str) -> None:
    (project / "doops.yaml").unlink()  # no config: --all has nothing to schedule
    code, out, err = schedule(*args)
    assert code == 4, err
    assert message in err and out == ""
    assert len(err.strip().splitlines()) == 1


def test_out_dir_that_is_a_file_is_refused_before_anything_is_written(project: Path) -> None:
    (project / "taken").write_text("keep")
    code, out, err = schedule("runbooks/db-restore-drill.yaml", "--cron", "0 3 * * 1", "--target", "kubernetes",
                              "--out-dir", str(project / "taken"))
    assert code == 4 and "not a directory" in err and out == ""
    assert (project / "taken").read_text() == "keep"
