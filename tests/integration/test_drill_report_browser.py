"""The HTML drill report opened in a real headless browser (Debian's chromium): the chart is drawn.

The unit tests read the page as text; only a browser says whether the inline SVG renders: the DOM holds the
plotted lines and the screenshot holds their colour, and the same page without its chart does not.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from doops.drill.report import FAILED_COLOR, MEASURED_COLOR, TARGET_COLOR, html_report
from tests.helpers import run_doops
from tests.unit.test_drill_report import make_run

pytestmark = [pytest.mark.integration]

WINDOW = (1200, 1600)


def chromium() -> str:
    """The browser, or a failure naming the script that installs it (skipped only with DOOPS_ALLOW_SKIP=1,
    like the other system servers' tests)."""
    given = os.environ.get("DOOPS_CHROMIUM_BIN")
    found = given if given and os.access(given, os.X_OK) else shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if found:
        return found
    reason = "no chromium (Debian package `chromium`): run `bash scripts/install-system-deps.sh` as root"
    if os.environ.get("DOOPS_ALLOW_SKIP") == "1":
        pytest.skip(reason)
    pytest.fail(reason + ", or set DOOPS_CHROMIUM_BIN; DOOPS_ALLOW_SKIP=1 skips", pytrace=False)


def browse(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "chromium-profile"
    return subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp)}, check=False)


def screenshot(page: Path, tmp: Path) -> dict[tuple[int, int, int], int]:
    """Pixel counts by colour of the page as chromium draws it."""
    from PIL import Image  # matplotlib depends on Pillow

    png = tmp / (page.stem + ".png")
    out = browse(page, tmp, f"--screenshot={png}")
    assert out.returncode == 0 and png.exists(), out.stderr[-2000:]
    with Image.open(png) as im:
        assert im.size == WINDOW
        colors = im.convert("RGB").getcolors(WINDOW[0] * WINDOW[1])
        assert colors is not None  # None only past maxcolors, and there are no more colours than pixels
        return {cast("tuple[int, int, int]", c): n for n, c in colors}  # RGB: each colour is an (r, g, b)


def near(colors: dict[tuple[int, int, int], int], hex_color: str, tolerance: int = 24) -> int:
    """Pixels within ``tolerance`` of a colour per channel (anti-aliasing blends the edges of a line)."""
    want = tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return sum(n for c, n in colors.items() if all(abs(a - b) <= tolerance for a, b in zip(c, want, strict=True)))


@pytest.fixture
def report(tmp_path: Path) -> Path:
    base = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
    runs = [make_run(d, rto, rpo, ok=ok, base=base, error=None if ok else "replica lag 6s <script>x</script>")
            for d, rto, rpo, ok in ((0, 31.0, 1.0, True), (7, 44.5, 2.0, True), (14, 72.0, 6.0, False),
                                    (21, 40.0, 1.5, True), (28, 36.0, 0.8, True))]
    page = tmp_path / "drills.html"
    page.write_text(html_report(runs, title="DR drills", generated_at=base + timedelta(days=30)))
    return page


def test_chart_is_in_the_browsers_dom(report: Path, tmp_path: Path) -> None:
    out = browse(report, tmp_path, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    dom = out.stdout
    for gid in ("chart-0-rto-measured", "chart-0-rto-target", "chart-0-rpo-measured", "chart-0-rpo-target"):
        group = re.search(rf'<g id="{gid}"[^>]*>(.*?)</g>', dom, re.S)
        # a line through the runs: a path moving to one point and drawing to others
        assert group and re.search(r'<path[^>]* d="M\s*[\d.]+\s+[\d.]+\s+L\s*[\d.]+', group.group(1)), gid
    failed = re.search(r'<g id="chart-0-rto-failed">(.*?)</g>', dom, re.S)
    assert failed, "no failed-run marks"
    marker = re.search(r'<use xlink:href="#([^"]+)" x="[\d.]+" y="[\d.]+"', failed.group(1))
    assert marker and f'id="{marker.group(1)}"' in dom  # a red cross placed on the chart, its shape defined
    assert "<script" not in dom  # the error's markup stayed text
    assert "replica lag 6s &lt;script&gt;x&lt;/script&gt;" in dom


def test_chart_is_drawn_in_the_screenshot(report: Path, tmp_path: Path) -> None:
    colors = screenshot(report, tmp_path)
    assert len(colors) > 50, "the screenshot is (nearly) one colour: nothing rendered"
    # Lines two pixels wide over ~750 px for each of two panels: far more than a thousand pixels; the target's
    # dashed line and the failed run's red cross are drawn too.
    assert near(colors, MEASURED_COLOR) > 1000, near(colors, MEASURED_COLOR)
    assert near(colors, TARGET_COLOR) > 300, near(colors, TARGET_COLOR)
    assert near(colors, FAILED_COLOR, tolerance=40) > 20, near(colors, FAILED_COLOR, tolerance=40)

    # The same page without its charts has none of the line colour: the count above is the chart's.
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<svg.*?</svg>", "", report.read_text(), flags=re.S))
    assert near(screenshot(bare, tmp_path), MEASURED_COLOR) < 50


def test_the_command_writes_a_page_the_browser_draws(tmp_path: Path) -> None:
    from doops.drill.history import open_history

    db = tmp_path / "history.db"
    base = datetime.now(UTC) - timedelta(days=20)
    with open_history(str(db)) as store:
        for day, rto in ((0, 30.0), (5, 50.0), (10, 41.0)):
            store.record(make_run(day, rto, base=base))
    page = tmp_path / "out" / "report.html"
    page.parent.mkdir()
    res = run_doops(["-o", "json", "drill", "report", "--history-url", str(db), "--html", str(page)])
    assert res.exit_code == 0 and res.json["runs"] == 3, res.stderr
    assert near(screenshot(page, tmp_path), MEASURED_COLOR) > 1000
