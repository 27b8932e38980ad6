"""`harness report RUN_DIR` writes an index.html that embeds the trend chart whenever a
history lies beside the run directory, checked in a real headless Chromium (as in
test_html_report: a missing chromium skips here and fails in CI). Needs no Docker engine."""

from __future__ import annotations

import copy
import re
import shutil

from conftest import FIXTURES, require
from test_html_report import _browse, _chromium
from typer.testing import CliRunner

from harness import store as results
from harness.cli import app
from harness.track import history

# Marks the <body> with the natural width of the trend chart once the page has loaded.
TREND_PROBE = ("<script>addEventListener('load',()=>{const i=document.querySelector("
               "'#chart-trends img');document.body.dataset.trendsWidth=i?i.naturalWidth:-1;});"
               "</script>")


def _results_with_history(tmp_path):
    """results/<run>/ (the recorded fixture run) beside results/history.jsonl holding three
    runs: two earlier ones, on another base image and a day apart, and the run itself."""
    results_dir = tmp_path / "results"
    run = results_dir / "20261126T120000Z"
    shutil.copytree(FIXTURES / "run", run)
    record = results.load(run)
    for day, grow in ((20, 1.10), (23, 1.05)):
        earlier = copy.deepcopy(record)
        earlier.update(run_id=f"202611{day}T120000Z", created_utc=f"2026-11-{day}T12:00:00+00:00")
        for v in earlier["variants"]:
            for f in v["froms"]:
                f["image_id"] = "sha256:" + str(day % 10) * 64
            if v.get("image"):
                v["image"]["size_bytes"] = int(v["image"]["size_bytes"] * grow)
        history.append_run(results_dir / history.HISTORY_FILE, earlier)
    history.append_run(results_dir / history.HISTORY_FILE, record)
    return run


def test_harness_report_embeds_the_trend_chart_from_the_history_beside_the_run(tmp_path):
    run = _results_with_history(tmp_path)
    assert len(history.read_history(run.parent / history.HISTORY_FILE)[0]) > 3

    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert f"wrote {run / 'trends.png'}" in result.output

    page = (run / "index.html").read_text()
    figure = re.search(r'<figure id="chart-trends">.*?<img [^>]*src="([^"]*)"', page, re.DOTALL)
    assert figure, "index.html has no trend chart"
    assert figure.group(1).startswith("data:image/png;base64,")
    assert (run / "trends.png").exists() and (run / "trends.svg").exists()

    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    probed = run / "probed.html"  # the page as written, plus a probe of the trend chart
    probed.write_text(page.replace("</body>", TREND_PROBE + "</body>"))
    dom = _browse(browser, tmp_path, probed.resolve().as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:2000]
    marks = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert marks.get("ready") == "1", f"the page's load handler did not run: {marks}"
    assert int(marks["images-total"]) == int(marks["images-loaded"]) == 4, marks
    assert int(marks["trends-width"]) > 0, f"the trend chart did not render: {marks}"


def test_without_a_history_the_page_has_no_trend_chart(tmp_path):
    run = tmp_path / "results" / "20261126T120000Z"
    shutil.copytree(FIXTURES / "run", run)
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert 'id="chart-trends"' not in (run / "index.html").read_text()
    assert not (run / "trends.png").exists()


def test_harness_history_redraws_the_newest_runs_page_with_the_trends(tmp_path):
    """`harness history` writes the results directory's trend chart and the newest run's
    outputs again through the same writer, so its index.html shows the same trends."""
    run = _results_with_history(tmp_path)
    results.point_latest(run.parent, run)
    assert not (run / "index.html").exists()

    result = CliRunner().invoke(app, ["history", "--out", str(run.parent)])
    assert result.exit_code in (0, 1), result.output  # 1: a change was found
    assert (run.parent / "trends.png").is_file() and (run.parent / "trends.svg").is_file()
    page = (run / "index.html").read_text()
    assert re.search(r'<figure id="chart-trends">.*?<img [^>]*src="data:image/png', page,
                     re.DOTALL), "the newest run's page lacks the trend chart"
    assert (run / "table.md").is_file() and (run / "trends.png").is_file()
