"""`doops drill report`: the evidence pages (HTML with charts, Markdown) and the command that writes them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from doops.drill.model import DrillRun, ObjectiveMeasure, StepSummary
from doops.drill.report import html_report, markdown_report, write_atomically
from tests.helpers import run_doops

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
XSS = "<script>alert(1)</script>"


def make_run(day: int, rto: float | None, rpo: float | None = 1.0, *, ok: bool = True,
             runbook: str = "db-failover", error: str | None = None, base: datetime = T0,
             **extra: object) -> DrillRun:
    start = base + timedelta(days=day)
    rto_s = rto if rto is not None else 0.0
    steps = [
        StepSummary("promote", "action", "failover_db", "passed", start, start + timedelta(seconds=rto_s), rto_s),
        StepSummary("verify", "probe", "sql", "passed" if ok else "failed", start + timedelta(seconds=rto_s),
                    start + timedelta(seconds=rto_s + 2.5), 2.5, error),
    ]
    objectives = [ObjectiveMeasure("rto", 60.0, rto, None if rto is None else rto <= 60),
                  ObjectiveMeasure("rpo", 5.0, rpo, None if rpo is None else rpo <= 5)]
    fields: dict[str, object] = {
        "runbook": runbook, "file": "runbooks/db-failover.yaml", "started_at": start,
        "ended_at": start + timedelta(seconds=rto_s + 5), "outcome": "ok" if ok else "verification_failed",
        "success": ok, "objectives": objectives, "steps": steps, "inputs": {"region": "ams3"}, "host": "ci-runner-7",
        "user": "sre-bot", "api_host": "api.example.test", "sandbox": True, **extra}
    return DrillRun(**fields)  # type: ignore[arg-type]


RUNS = [make_run(0, 31.25), make_run(7, 44.5), make_run(14, 72.0, 6.0, ok=False, error="replica lag 6s"),
        make_run(21, 40.0)]


# -- Markdown --------------------------------------------------------------------------------------------------


def test_markdown_has_the_runs_table_objectives_and_each_timeline() -> None:
    md = markdown_report(RUNS, title="Q4 drills", generated_at=NOW)
    assert md.startswith("# Q4 drills\n")
    assert "## Runbook db-failover" in md and "3/4 passed (75%)" in md
    header = "| started (UTC) | duration | where (host → API) | who | outcome | success | rto | rpo |"
    assert header in md
    # the failed run: when, where, who, outcome, each objective measured vs target and the verdict
    assert ("| 2026-11-15T03:00:00.000Z | 77.00 s | ci-runner-7 → api.example.test (sandbox) | sre-bot | "
            "verification\\_failed | NO | 72.00 s / 60.00 s (MISSED) | 6.00 s / 5.00 s (MISSED) |") in md
    # the trend per objective: target, p50, max, last, counts
    assert "| rto | 60.00 s | 42.25 s | 72.00 s | 40.00 s | 3 met, 1 missed, 0 not measured |" in md
    # one timeline per run, each step with its offset from the run's start, duration and error
    assert md.count("#### 2026-11-") == 4
    assert ("| 2 | verify | probe | sql | failed | 2026-11-15T03:01:12.000Z | +72.00 s | 2.50 s | replica lag 6s |"
            in md)
    assert "- inputs: region=ams3" in md and f"- run id: {RUNS[0].id}" in md


def test_markdown_cells_cannot_break_the_table_or_inject_html() -> None:
    run = make_run(0, 10.0, ok=False, runbook=f"evil{XSS}", error="a | b\nc `code` [x](http://x)")
    md = markdown_report([run], title="t", generated_at=NOW)
    assert "<script>" not in md and "&lt;script&gt;" in md
    row = next(line for line in md.splitlines() if line.startswith("| 2 | verify"))
    assert len(re.split(r"(?<!\\)\|", row)) == 9 + 2  # still nine cells: the pipe in the error is escaped
    assert "a \\| b c \\`code\\` \\[x\\](http://x)" in row


def test_a_run_that_measured_nothing_says_so() -> None:
    md = markdown_report([make_run(0, None, None, ok=False)], title="t", generated_at=NOW)
    assert "- / 60.00 s (not measured)" in md and "0 met, 0 missed, 1 not measured" in md
    bare = make_run(0, 5.0, objectives=[])
    assert "These runs measured no objective." in markdown_report([bare], title="t", generated_at=NOW)
    page = html_report([bare], title="t", generated_at=NOW)
    assert "These runs measured no objective." in page and "<svg" not in page


def test_no_runs_is_a_report_that_says_no_drill_ran() -> None:
    assert "**No drill ran in this period.**" in markdown_report([], title="t", generated_at=NOW)
    assert "No drill ran in this period." in html_report([], title="t", generated_at=NOW, since=NOW)


# -- HTML ------------------------------------------------------------------------------------------------------


def test_html_escapes_runbook_names_step_errors_inputs_and_title() -> None:
    run = make_run(0, 12.0, ok=False, runbook=f"cdn{XSS}", error=f"boom {XSS}", inputs={"note": XSS})
    page = html_report([run, *RUNS], title=f"T{XSS}", generated_at=NOW)
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title (twice), runbook, error, input
    assert 'Content-Security-Policy" content="default-src \'none\'' in page


def test_html_has_a_chart_per_runbook_with_measured_target_and_failed_runs() -> None:
    page = html_report([*RUNS, make_run(3, 20.0, runbook="restore-weekly")], title="t", generated_at=NOW)
    assert page.count("<svg") == 2
    for gid in ("chart-0-rto-measured", "chart-0-rto-target", "chart-0-rpo-measured", "chart-0-rpo-target",
                "chart-0-rto-failed", "chart-0-rpo-failed", "chart-1-rto-measured", "chart-1-rto-target"):
        assert f'id="{gid}"' in page, gid
    assert 'id="chart-1-rto-failed"' not in page  # restore-weekly never failed
    measured = re.search(r'<g id="chart-0-rto-measured">(.*?)</g>', page, re.S)
    assert measured and "<path" in measured.group(1)
    assert page.count('<tr class="failed">') == 1


def test_html_ids_are_unique_so_two_charts_do_not_share_clip_paths_or_markers() -> None:
    page = html_report([*RUNS, make_run(3, 20.0, runbook="restore-weekly")], title="t", generated_at=NOW)
    ids = re.findall(r'\bid="([^"]+)"', page)
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, sorted(dupes)[:5]


def test_html_is_offline_nothing_is_fetched_when_it_is_opened() -> None:
    page = html_report(RUNS, title="t", generated_at=NOW)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<(script|link|iframe|object|embed|img)\b", page, re.I)
    assert "@import" not in page and "url(http" not in page


def test_html_is_the_same_for_the_same_runs() -> None:
    """An archived report can be regenerated and compared: no timestamps or random ids in the chart."""
    assert html_report(RUNS, title="t", generated_at=NOW) == html_report(RUNS, title="t", generated_at=NOW)


def test_secrets_in_inputs_and_errors_are_masked_in_both_formats() -> None:
    token = "dop_v1_" + "ab" * 32
    run = make_run(0, 12.0, ok=False, error=f"connect postgresql://doadmin:s3cretpw@db:25060 with {token}",
                   inputs={"dsn": "postgresql://u:hunter22@h/db"})
    for text in (html_report([run], title="t", generated_at=NOW), markdown_report([run], title="t",
                                                                                  generated_at=NOW)):
        assert "s3cretpw" not in text and "hunter22" not in text and token not in text
        assert "doadmin:***@db" in text or "doadmin:\\*\\*\\*@db" in text  # Markdown escapes the stars


def test_chart_text_is_not_read_as_mathtext() -> None:
    """matplotlib reads $...$ as TeX: an objective named so must be drawn as is, not fail the report."""
    run = make_run(0, 12.0)
    run.objectives.append(ObjectiveMeasure("cost $x^2$ {", 10.0, 3.0, True))
    page = html_report([run], title="t", generated_at=NOW)
    assert "cost $x^2$ {" in page


# -- writing ---------------------------------------------------------------------------------------------------


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "r.html"
    target.parent.mkdir()
    target.write_text("old")
    write_atomically(target, "new")
    assert target.read_text() == "new" and [p.name for p in target.parent.iterdir()] == ["r.html"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_write_atomically_keeps_the_old_report_when_writing_fails(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out" / "r.html"
    target.parent.mkdir()
    target.write_text("old")

    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space"):
        write_atomically(target, "new")
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["r.html"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- the command -----------------------------------------------------------------------------------------------


@pytest.fixture
def history(tmp_path: Path) -> Path:
    from doops.drill.history import open_history

    db = tmp_path / "history.db"
    base = datetime.now(UTC) - timedelta(days=30)  # --since counts back from now
    with open_history(str(db)) as store:
        for day, rto, ok in ((0, 31.0, True), (7, 44.5, True), (14, 72.0, False), (21, 40.0, True)):
            store.record(make_run(day, rto, ok=ok, base=base))
        store.record(make_run(1, 20.0, runbook="restore-weekly", base=base))
        store.record(make_run(-400, 50.0, runbook="restore-weekly", base=base))  # long ago: outside 90d
    return db


def test_report_writes_html_and_renders_what_it_wrote(tmp_path: Path, history: Path) -> None:
    out = tmp_path / "drills.html"
    res = run_doops(["-o", "json", "drill", "report", "--history-url", str(history), "--html", str(out)])
    assert res.exit_code == 0, res.stderr
    assert res.json["path"] == str(out) and res.json["format"] == "html"
    assert res.json["runs"] == 5 and res.json["runbooks"] == ["db-failover", "restore-weekly"]
    page = out.read_text()
    assert page.count("<svg") == 2 and "Runbook restore-weekly" in page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".drills")] == []


def test_report_narrows_to_one_runbook_and_period(tmp_path: Path, history: Path) -> None:
    out = tmp_path / "r.md"
    res = run_doops(["-o", "json", "drill", "report", "restore-weekly", "--since", "500d",
                     "--history-url", str(history), "--markdown", str(out)])
    assert res.exit_code == 0, res.stderr
    assert res.json["runs"] == 2 and res.json["runbooks"] == ["restore-weekly"]
    md = out.read_text()
    assert "## Runbook db-failover" not in md and md.count("#### ") == 2 and "DR drill report: restore-weekly" in md


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one of --html PATH and --markdown PATH"),
    (["--html", "{d}/a.html", "--markdown", "{d}/a.md"], "give exactly one of --html PATH and --markdown PATH"),
    (["--html", "{d}/missing/a.html"], "directory {d}/missing does not exist"),
    (["--markdown", "{d}"], "is a directory"),
    (["--html", "{d}/a.html", "--since", "0d"], "must be greater than zero"),
    (["--html", "{d}/a.html", "--since", "ninety"], "invalid duration"),
    (["--html", "{d}/a.html", "--history-url", "mysql://h/db"], "unsupported history URL scheme"),
])
def test_bad_input_is_one_line_exit_4_and_opens_no_history(tmp_path: Path, args: list[str], message: str) -> None:
    default_store = tmp_path / "home" / ".local" / "state" / "doops" / "drills.db"
    res = run_doops(["drill", "report", *(a.replace("{d}", str(tmp_path)) for a in args)])
    assert res.exit_code == 4, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message.replace("{d}", str(tmp_path)) in lines[0], res.stderr
    assert not default_store.exists(), "the history was opened before the options were checked"
    assert res.stdout == ""


def test_unwritable_directory_is_refused_before_the_history_is_read(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """As root every directory is writable, so the check's answer is faked for the report's directory."""
    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    store = tmp_path / "h.db"
    res = run_doops(["drill", "report", "--history-url", str(store), "--html", str(locked / "r.html")])
    assert res.exit_code == 4 and "is not writable by this user" in res.stderr
    assert not store.exists()


def test_only_drill_report_loads_matplotlib() -> None:
    """matplotlib costs ~0.5 s to import: `doops --help`, `doops drill --help` and the report's own help must
    not pay for it (the chart imports it when drawing)."""
    code = ("import sys; from doops.cli import cli; "
            "[cli.main(a, standalone_mode=False) for a in (['--help'], ['drill', '--help'], "
            "['drill', 'report', '--help'])]; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
