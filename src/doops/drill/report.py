"""`doops drill report`: the evidence an auditor asks for, as one HTML page or one Markdown file.

What ran (runbook, file, inputs), when (start, end, each step's start and duration), against what (host, API,
sandbox or not), by whom, and what it measured (each objective against its target). Per runbook, the HTML
page carries a chart of every objective over time against its target, drawn by matplotlib as inline SVG:
no script, no network when it is viewed (a report is read offline, archived, attached to a ticket), and a
Content-Security-Policy that forbids loading anything at all.

``html_report`` and ``markdown_report`` are pure (runs in, text out); matplotlib is imported only when a chart
is drawn, so no other command pays for it. ``write_atomically`` is the one I/O here: a reader never sees half
a report.
"""

from __future__ import annotations

import html
import io
import os
import re
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from doops.drill.model import DrillRun, ObjectiveMeasure
from doops.masking import mask

# Objectives drawn and tabled first, in this order; any other objective a runbook measures follows by name.
PRIMARY_OBJECTIVES = ("rto", "rpo")
MEASURED_COLOR = "#1f5fbf"  # the measured line; the browser test looks for this colour in the screenshot
TARGET_COLOR = "#2e8b57"
FAILED_COLOR = "#d62728"


# -- the data both formats show ------------------------------------------------------------------------------


@dataclass
class ObjectiveTrend:
    """One objective of one runbook across the runs: what an auditor compares with the target."""

    name: str
    target_seconds: float | None  # the latest run's target
    measured: list[float]
    met: int
    missed: int
    not_measured: int

    @property
    def p50(self) -> float | None:
        return statistics.median(self.measured) if self.measured else None


@dataclass
class RunbookSection:
    runbook: str
    runs: list[DrillRun]  # oldest first
    objectives: list[str]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.runs if r.success)

    @property
    def last_success(self) -> datetime | None:
        return max((r.started_at for r in self.runs if r.success), default=None)

    def trend(self, name: str) -> ObjectiveTrend:
        found = [o for o in (r.objective(name) for r in self.runs) if o is not None]
        target = next((o.target_seconds for o in reversed(found) if o.target_seconds is not None), None)
        return ObjectiveTrend(name, target, [o.measured_seconds for o in found if o.measured_seconds is not None],
                              met=sum(1 for o in found if o.met is True),
                              missed=sum(1 for o in found if o.met is False),
                              not_measured=sum(1 for o in found if o.measured_seconds is None))


def sections(runs: Iterable[DrillRun]) -> list[RunbookSection]:
    """Runs grouped by runbook (by name), each group oldest first."""
    groups: dict[str, list[DrillRun]] = {}
    for run in runs:
        groups.setdefault(run.runbook, []).append(run)
    out = []
    for name in sorted(groups):
        group = sorted(groups[name], key=lambda r: r.started_at)
        out.append(RunbookSection(name, group, objective_names(group)))
    return out


def objective_names(runs: Sequence[DrillRun]) -> list[str]:
    seen = {o.name for r in runs for o in r.objectives}
    return [n for n in PRIMARY_OBJECTIVES if n in seen] + sorted(seen - set(PRIMARY_OBJECTIVES))


# -- text shared by both formats -----------------------------------------------------------------------------


def stamp(t: datetime | None) -> str:
    """UTC to the millisecond: an auditor lines these up with other systems' logs."""
    if t is None:
        return "-"
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def measure_text(o: ObjectiveMeasure | None) -> str:
    if o is None:
        return "-"
    verdict = {True: "met", False: "MISSED", None: "not measured"}[o.met]
    return f"{seconds(o.measured_seconds)} / {seconds(o.target_seconds)} ({verdict})"


def where_text(run: DrillRun) -> str:
    api = run.api_host or "-"
    return f"{run.host or '-'} → {api}" + (" (sandbox)" if run.sandbox else "")


def inputs_text(run: DrillRun) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(run.inputs.items())) or "-"


def _offset(run: DrillRun, t: datetime | None) -> str:
    return "-" if t is None else f"+{(t - run.started_at).total_seconds():.2f} s"


def _rate(section: RunbookSection) -> str:
    n = len(section.runs)
    return f"{section.passed}/{n} passed ({100 * section.passed / n:.0f}%)" if n else "no runs"


def _summary_rows(section: RunbookSection) -> list[list[str]]:
    rows = []
    for name in section.objectives:
        t = section.trend(name)
        last = section.runs[-1].objective(name)
        rows.append([name, seconds(t.target_seconds), seconds(t.p50),
                     seconds(max(t.measured) if t.measured else None),
                     seconds(last.measured_seconds if last else None),
                     f"{t.met} met, {t.missed} missed, {t.not_measured} not measured"])
    return rows


SUMMARY_COLUMNS = ["objective", "target (latest)", "p50", "max", "last run", "runs"]


def _run_columns(section: RunbookSection) -> list[str]:
    return ["started (UTC)", "duration", "where (host → API)", "who", "outcome", "success", *section.objectives]


def _run_row(section: RunbookSection, run: DrillRun) -> list[str]:
    return [stamp(run.started_at), seconds(run.duration_seconds), where_text(run), run.user or "-", run.outcome,
            "yes" if run.success else "NO", *(measure_text(run.objective(n)) for n in section.objectives)]


STEP_COLUMNS = ["#", "step", "kind", "name", "status", "started (UTC)", "offset", "duration", "error"]


def _step_rows(run: DrillRun) -> list[list[str]]:
    return [[str(n), s.id, s.kind, s.name, s.status, stamp(s.started_at), _offset(run, s.started_at),
             seconds(s.duration_seconds), s.error or ""] for n, s in enumerate(run.steps, 1)]


def _period(runs: Sequence[DrillRun], since: datetime | None, generated_at: datetime) -> str:
    start = since or (min(r.started_at for r in runs) if runs else None)
    return f"{stamp(start) if start else 'the beginning'} to {stamp(generated_at)}"


# -- HTML ----------------------------------------------------------------------------------------------------


def _e(text: object) -> str:
    """Every string that reaches the page: masked, then escaped (quotes too: some land in attributes)."""
    return html.escape(mask(str(text)), quote=True)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#222;max-width:1400px}
h1{font-size:1.6rem}h2{font-size:1.3rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.5rem}
h3{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}
tr.failed td{background:#fdecea}.meta{color:#555}.chart svg{max-width:100%;height:auto}
"""


def html_report(runs: Sequence[DrillRun], *, title: str, generated_at: datetime, since: datetime | None = None,
                version: str = "") -> str:
    """The page: per runbook a chart of each objective against its target, a summary, a table of the runs and
    each run's timeline. Self-contained and script-free (a CSP forbids loading anything)."""
    groups = sections(runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Drill runs from {_e(_period(runs, since, generated_at))}: {len(runs)} run(s) of '
        f"{len(groups)} runbook(s). Generated {_e(stamp(generated_at))}"
        + (f" by doops {_e(version)}" if version else "") + ". Times are UTC.</p>",
    ]
    if not groups:
        parts.append("<p><strong>No drill ran in this period.</strong></p>")
    for n, section in enumerate(groups):
        parts.append(f'<section id="runbook-{n}"><h2>Runbook {_e(section.runbook)}</h2>')
        parts.append(f'<p class="meta">{_e(_rate(section))}; last success: '
                     f"{_e(stamp(section.last_success) if section.last_success else 'never')}.</p>")
        if section.objectives:
            parts.append(f'<figure class="chart" id="chart-{n}">{chart_svg(section, f"chart-{n}")}'
                         f"<figcaption>Measured {_e(', '.join(section.objectives))} per run against the target; "
                         "failed runs marked in red.</figcaption></figure>")
            parts.append(_table(SUMMARY_COLUMNS, _summary_rows(section), "summary"))
        else:
            parts.append("<p>These runs measured no objective.</p>")
        parts.append("<h3>Runs</h3>")
        head = "".join(f"<th>{_e(c)}</th>" for c in _run_columns(section))
        body = "".join(
            ("<tr>" if r.success else '<tr class="failed">')
            + "".join(f"<td>{_e(c)}</td>" for c in _run_row(section, r)) + "</tr>" for r in section.runs)
        parts.append(f'<table class="runs"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
        parts.append("<h3>Timelines</h3>")
        for run in section.runs:
            parts.append(f'<h4 id="run-{_e(run.id)}">{_e(stamp(run.started_at))}: {_e(run.outcome)}'
                         f"{'' if run.success else ' (failed)'}</h4>")
            parts.append(_table(["field", "value"], [
                ["run id", run.id], ["runbook file", run.file or "-"], ["inputs", inputs_text(run)],
                ["where (host → API)", where_text(run)], ["who", run.user or "-"],
                ["started", stamp(run.started_at)], ["ended", stamp(run.ended_at)],
                ["duration", seconds(run.duration_seconds)],
                *[[f"objective {o.name}", measure_text(o)] for o in run.objectives]], "run"))
            if run.steps:
                parts.append(_table(STEP_COLUMNS, _step_rows(run), "timeline"))
            else:
                parts.append("<p>No step recorded.</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def chart_svg(section: RunbookSection, chart_id: str) -> str:
    """One panel per objective: measured seconds per run (line and points), the target as a dashed step line
    (targets change), failed runs as red crosses and a red band. Inline SVG, text kept as text.

    Groups carry ids (``<chart_id>-<objective>-measured`` / ``-target`` / ``-failed``) so a test can find the
    plotted lines in the browser's DOM. matplotlib's own ids are salted with ``chart_id``: two charts on one
    page never share one, and the same runs always give the same SVG.
    """
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    names = section.objectives
    times = [r.started_at for r in section.runs]
    pad = max((times[-1] - times[0]) * 0.04, timedelta(hours=12))  # one run still gets a readable axis
    left, right = times[0] - pad, times[-1] + pad
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": chart_id, "font.size": 9}):
        fig = Figure(figsize=(9, 2.4 * len(names) + 0.4), layout="constrained")
        axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
        for ax, name in zip(axes, names, strict=True):
            measures = [r.objective(name) for r in section.runs]
            xs = [t for t, o in zip(times, measures, strict=True) if o and o.measured_seconds is not None]
            ys = [o.measured_seconds for o in measures if o and o.measured_seconds is not None]
            (line,) = ax.plot(xs, ys, marker="o", color=MEASURED_COLOR, linewidth=2, label="measured")
            line.set_gid(f"{chart_id}-{_slug(name)}-measured")
            tx = [t for t, o in zip(times, measures, strict=True) if o and o.target_seconds is not None]
            ty = [o.target_seconds for o in measures if o and o.target_seconds is not None]
            if tx:  # held to the right edge: the target in force after the last run, visible for one run too
                tx, ty = [*tx, right], [*ty, ty[-1]]
                (target,) = ax.step(tx, ty, where="post", linestyle="--", color=TARGET_COLOR, linewidth=1.5,
                                    label="target")
                target.set_gid(f"{chart_id}-{_slug(name)}-target")
            failed = [(t, o) for t, o, r in zip(times, measures, section.runs, strict=True) if not r.success]
            for t, _ in failed:
                ax.axvline(t, color=FAILED_COLOR, alpha=0.15, linewidth=6)
            fx = [t for t, o in failed if o and o.measured_seconds is not None]
            fy = [o.measured_seconds for _, o in failed if o and o.measured_seconds is not None]
            if fx:
                marks = ax.scatter(fx, fy, marker="x", s=80, linewidths=2, color=FAILED_COLOR, zorder=4,
                                   label="failed run")
                marks.set_gid(f"{chart_id}-{_slug(name)}-failed")
            ax.set_title(mask(name.upper() if name in PRIMARY_OBJECTIVES else name), loc="left",
                         parse_math=False)
            ax.set_ylabel("seconds")
            ax.margins(y=0.12)
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best", fontsize=8)
        axes[-1].set_xlim(left, right)
        locator = mdates.AutoDateLocator()
        axes[-1].xaxis.set_major_locator(locator)
        axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE: this SVG lives inside HTML
    return _own_ids(svg, f"{chart_id}-")


_ID_USE = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def _own_ids(svg: str, prefix: str) -> str:
    """matplotlib numbers its ids per figure (``figure_1``, ``axes_1``, ``line2d_1``): two charts on a page
    would share them, and a ``url(#...)`` in one would resolve in the other. Each id, and every reference to
    it, gets the chart's prefix."""
    ids = {i for i in re.findall(r'\bid="([^"]+)"', svg) if not i.startswith(prefix)}

    def own(m: re.Match[str]) -> str:
        return m.group(1) + (prefix + m.group(2) if m.group(2) in ids else m.group(2))

    return _ID_USE.sub(own, svg)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()) or "objective"


# -- Markdown ------------------------------------------------------------------------------------------------

_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|#!"})


def _md(text: object) -> str:
    """A cell or line of Markdown: masked, markup characters escaped, HTML made inert, one line."""
    masked = mask(str(text)).replace("\r", " ").replace("\n", " ")
    return html.escape(masked, quote=False).translate(_MD_SPECIAL)


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(_md(c) for c in columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(_md(c) for c in row) + " |" for row in rows), ""]


def markdown_report(runs: Sequence[DrillRun], *, title: str, generated_at: datetime,
                    since: datetime | None = None, version: str = "") -> str:
    """The same evidence as the HTML page, as tables (no chart: the per-objective summary gives the trend)."""
    groups = sections(runs)
    lines = [f"# {_md(title)}", "",
             f"Drill runs from {_md(_period(runs, since, generated_at))}: {len(runs)} run(s) of {len(groups)} "
             f"runbook(s). Generated {_md(stamp(generated_at))}" + (f" by doops {_md(version)}" if version else "")
             + ". Times are UTC.", ""]
    if not groups:
        lines += ["**No drill ran in this period.**", ""]
    for section in groups:
        lines += [f"## Runbook {_md(section.runbook)}", "",
                  f"{_md(_rate(section))}; last success: "
                  f"{_md(stamp(section.last_success) if section.last_success else 'never')}.", ""]
        if section.objectives:
            lines += _md_table(SUMMARY_COLUMNS, _summary_rows(section))
        else:
            lines += ["These runs measured no objective.", ""]
        lines += ["### Runs", "", *_md_table(_run_columns(section), [_run_row(section, r) for r in section.runs])]
        lines += ["### Timelines", ""]
        for run in section.runs:
            lines += [f"#### {_md(stamp(run.started_at))}: {_md(run.outcome)}{'' if run.success else ' (failed)'}",
                      "",
                      f"- run id: {_md(run.id)}", f"- runbook file: {_md(run.file or '-')}",
                      f"- inputs: {_md(inputs_text(run))}", f"- where (host → API): {_md(where_text(run))}",
                      f"- who: {_md(run.user or '-')}",
                      f"- started {_md(stamp(run.started_at))}, ended {_md(stamp(run.ended_at))}, "
                      f"duration {_md(seconds(run.duration_seconds))}",
                      *(f"- objective {_md(o.name)}: {_md(measure_text(o))}" for o in run.objectives), ""]
            lines += _md_table(STEP_COLUMNS, _step_rows(run)) if run.steps else ["No step recorded.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# -- writing -------------------------------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename over it: a reader (a browser, a CI artifact upload) sees the old
    report or the new one, never half of one. The file gets the mode a plain ``open`` would give it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
