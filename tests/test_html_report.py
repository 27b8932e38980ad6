"""The one-file HTML report: rendered from the fixture run and opened in a real headless
Chromium (Debian's `chromium`). Needs no Docker engine.

In CI (CI=true) a missing chromium fails the test; elsewhere it skips with the reason.
The screenshot is kept as test-artifacts/report.png (git-ignored) for a person to look at.
"""

from __future__ import annotations

import copy
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, require
from records import as_run, make_full_record

from harness import store as results
from harness.report import build_tables, writer
from harness.report import html as html_report
from harness.track import history

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic"]
WINDOW = (1400, 3000)
ARTIFACTS = ROOT / "test-artifacts"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run_dir(tmp_path: Path) -> tuple[Path, dict]:
    """The fixture run copied to tmp, with a history beside it: an earlier run of the same
    variants on another base image, so that the page has all four charts."""
    results_dir = tmp_path / "results"
    run = results_dir / "20261126T120000Z"
    shutil.copytree(FIXTURES / "run", run)
    record = results.load(run)
    earlier = copy.deepcopy(record)
    earlier.update(run_id="20261120T120000Z", created_utc="2026-11-20T12:00:00+00:00")
    for v in earlier["variants"]:
        for f in v["froms"]:
            f["image_id"] = "sha256:" + "7" * 64
        if v.get("image"):
            v["image"]["size_bytes"] = int(v["image"]["size_bytes"] * 1.05)
    history.append_run(results_dir / history.HISTORY_FILE, earlier)
    history.append_run(results_dir / history.HISTORY_FILE, record)
    return run, record


def _browse(browser: str, tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """One headless Chromium run with a fresh, empty profile."""
    profile = Path(tmp_path) / f"profile-{len(list(Path(tmp_path).glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           "--virtual-time-budget=10000", *args, url],
                          capture_output=True, text=True, timeout=180, check=False)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_page_is_self_contained_and_escaped(tmp_path):
    run, record = _run_dir(tmp_path)
    hostile = copy.deepcopy(record)
    broken = hostile["variants"][2]
    broken["label"] = "<script>alert('label')</script>"
    broken["log_tail"] = ["Step 3/7 : COPY dist ./dist", "<b>COPY failed</b> & more"]
    page = html_report.render(as_run(hostile), run, images={})
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;label&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;COPY failed&lt;/b&gt; &amp; more" in page
    # nothing is fetched: no external URL, stylesheet, script or font; images are data URIs
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert all(src.startswith("data:") for src in re.findall(r'<img[^>]* src="([^"]*)"', page))
    for name in ("results.json", "results.csv", "table.md", "report.md"):
        assert f'<a href="{name}">' in page
    # what the page must say about the run
    for text in ("harness-standin/node:20", "node-20", "Debian bookworm with the buildpack-deps set.",
                 "20.10.24", "overlay2", "fixture-host", "0000000000000000000000000000000000000000",
                 "Base images", "COPY failed: file not found"):
        assert text in page, text


def test_environment_is_in_words_and_units(tmp_path):
    """No record keys and raw byte counts: the scenarios that ran, memory in GB, times."""
    run, record = _run_dir(tmp_path)
    record["settings"].update(scenarios=["cold", "no-change", "source-change"], warmup=1)
    page = html_report.render(as_run(record), run, images={})
    env = page[page.index('<h2 id="environment">'):page.index('<h2 id="files">')]
    for raw in ("memory_bytes", "bases_mode", "cold_pull", "25769803776", "None",
                "scenario</th>"):
        assert raw not in env, raw
    for said in ("<th>Memory</th><td>25.8 GB</td>", "cold, no-change, source-change",
                 "<th>Took</th><td>5 min 0 s</td>", "2026-11-26 12:00:00 UTC",
                 "Docker Engine 20.10.24, overlay2 store", "3 per scenario"):
        assert said in env, said


def test_page_opens_in_chromium_with_every_image_and_one_row_per_variant(tmp_path):
    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    run, record = _run_dir(tmp_path)
    page = writer.write_outputs(as_run(record), run)
    assert page.html == run / "index.html"
    assert sorted(p.name for p in page.charts) == sorted(
        f"{n}.{ext}" for n in ("sizes", "composition", "build_times", "trends") for ext in ("png", "svg"))
    url = page.html.resolve().as_uri()

    dom = _browse(browser, tmp_path, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:2000]
    marks = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert marks.get("ready") == "1", f"the page's load handler did not run: {marks}"
    assert int(marks["images-total"]) == 4  # sizes, composition, build times, trends
    assert int(marks["images-loaded"]) == 4, f"images that did not decode: {marks}"
    assert int(marks["summary-rows"]) == len(record["variants"])
    summary = re.search(r'<table[^>]*id="summary"[^>]*>.*?<tbody>(.*?)</tbody>', dom.stdout, re.DOTALL)
    labels = re.findall(r"<tr>\s*<td>([^<]*)</td>", summary.group(1))
    assert labels == [v["label"] for v in record["variants"]]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = _browse(browser, tmp_path, url, f"--screenshot={shot}",
                   f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _png_size(shot) == WINDOW and shot.stat().st_size > 50_000
    shutil.copy(page.html, ARTIFACTS / "report.html")


@pytest.mark.parametrize("which", ["fixture", "full", "v1"])
def test_page_leads_with_the_answer_in_chromium(tmp_path, which):
    """At 1400 px wide: the verdict and the first chart (the sizes) end within the first
    1,200 px, and no table is wider than the page's column (wide ones wrap)."""
    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    if which == "fixture":
        run, record = _run_dir(tmp_path)
    elif which == "full":
        record = make_full_record()
        run = tmp_path / "results" / record["run_id"]
        run.mkdir(parents=True)
    else:
        run = tmp_path / "v1"
        shutil.copytree(FIXTURES / "v1_run" / "20261206T225328Z", run)
        record = results.load(run)
    page = writer.write_outputs(as_run(record), run, history=None if which == "fixture" else [])
    url = page.html.resolve().as_uri()
    dom = _browse(browser, tmp_path, url, "--dump-dom", "--window-size=1400,1200")
    assert dom.returncode == 0, dom.stderr[-2000:]
    marks = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', re.search(r"<body([^>]*)>", dom.stdout).group(1)))
    assert marks.get("ready") == "1", marks
    assert 0 < int(marks["verdict-end"]) <= 1200, marks
    assert 0 < int(marks["first-chart-end"]) <= 1200, marks
    assert re.findall(r'<figure id="chart-([a-z_]+)"', dom.stdout)[0] == "sizes"
    assert marks["wide-tables"] == "", f"tables wider than the page: {marks['wide-tables']}"
    assert int(marks["column"]) > 1100  # measured at 1400 px, not a narrow default window
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"report-top-{which}.png"
    shot.unlink(missing_ok=True)
    proc = _browse(browser, tmp_path, url, f"--screenshot={shot}", "--window-size=1400,1200",
                   "--hide-scrollbars")
    assert proc.returncode == 0 and _png_size(shot) == (1400, 1200), proc.stderr[-2000:]


# ---------------------------------------------------------------- the runner's full record


def _table_rows(page: str, table_id: str) -> list[str]:
    body = re.search(rf'<table id="{table_id}"[^>]*>.*?<tbody>(.*?)</tbody>', page, re.DOTALL)
    assert body, table_id
    return re.findall(r"<tr[^>]*>.*?</tr>", body.group(1), re.DOTALL)


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]


def test_full_record_page_has_every_section_with_its_figures():
    record = make_full_record()
    page = html_report.render(as_run(record), None, images={})
    assert f'content="{html_report.CSP}"' in page
    for anchor in ("build-times-section", "context-section", "shipping-section",
                   "runtime-section", "contents", "security-section", "bytes-section"):
        assert f'id="{anchor}"' in page and f'href="#{anchor}"' in page, anchor
    # build times: one row per variant x builder x scenario, the noisy ones highlighted
    rows = _table_rows(page, "build-times")
    assert len(rows) == len(build_tables.build_rows(as_run(record))) == 22
    noisy = [_cells(r)[:3] for r in rows if 'class="noisy"' in r]
    assert noisy == [["Single stage (node:20)*", "classic", "no-change"],
                     ["Three stage (alpine)", "buildkit", "source-change"]]
    deps = next(_cells(r) for r in rows
                if _cells(r)[:3] == ["Three stage (alpine)", "classic", "dependency-change"])
    assert deps[3:12] == ["4", "11.5 s", "1.00 s", "15.8 s", "9.54 s", "10.0 s", "30.0 s", "1", "6 of 9"]
    assert page.count(build_tables.SPREAD_WARNING) == 2
    assert ("source change rebuilt 4 of 9 steps, 12.3 s ± 0.30 s vs 46.0 s ± 1.00 s cold "
            "(−73 %)") in page
    # context, shipping
    assert _cells(_table_rows(page, "context")[1])[-1] == "182 MB (99.98 % of the bytes), 9,500 files"
    three = _cells(_table_rows(page, "shipping")[1])
    assert three[1:7] == ["45 MB", "44.1 MB", "−2.0 %", "3.10 s", "1.90 s", "5 of 8"]
    assert three[7] == "–" and "not a cold-host pull" in three[8]
    # runtime: the plain statement, the table, the failed variant's log
    assert "2 of 3 variants serve the same GET / as the reference <code>single</code>*:" in page
    single = _cells(_table_rows(page, "runtime")[0])
    assert single[:6] == ["Single stage (node:20)*", "ok", "1.25 s", "48.5 MB",
                          "200 (application/json; charset=utf-8)", "reference"]
    assert "Error: Cannot find module &#x27;/app/dist/index.js&#x27;" in page
    assert '115 MB <span class="failed">(failed at runtime)</span>' in page
    # security posture and where the bytes go, with a per-layer table per variant
    assert _cells(_table_rows(page, "security")[0]) == [
        "Single stage (node:20)*", "root", "yes", "dpkg, apt, npm, yarn", "412 (dpkg)", "3"]
    assert _cells(_table_rows(page, "bytes")[1])[1:5] == ["40 MB", "5 MB", "300 kB", "1.7 MB"]
    layers = [_cells(r) for r in _table_rows(page, "layers-three-stage")]
    assert len(layers) == 8
    assert layers[5][2:6] == ["COPY --from=deps /app/node_modules ./node_modules", "runner", "deps", "5 MB"]
    # failures: the other builder's and the scenario's build logs
    assert "the buildkit build failed" in page and "#9 ERROR: process" in page
    assert "the classic no-change builds failed" in page
    assert '<a href="build_times.csv">' in page


def test_full_record_page_escapes_what_the_containers_said():
    record = make_full_record()
    hostile = "</td><script>alert('body')</script><img src=x onerror=alert(1)>"
    record["variants"][1]["runtime"]["root_body"] = hostile
    record["variants"][1]["runtime"]["root_content_type"] = "text/html<b>"
    record["variants"][2]["runtime"]["logs_tail"] = ["<script>alert('log')</script>"]
    record["variants"][1]["attribution"]["layers"][7]["instruction"] = "RUN echo '<iframe>'"
    record["runtime_comparison"] = {"reference": "single", "same": [], "not_serving": ["distroless"],
                                    "different": [{"name": "three-stage", "reason": f"body: {hostile}"}]}
    page = html_report.render(as_run(record), None, images={})
    for raw in ("<script>alert(", "<img src=x", "text/html<b>", "<iframe>"):
        assert raw not in page, raw
    assert "&lt;/td&gt;&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;log&#x27;)&lt;/script&gt;" in page
    assert "serves a different GET /: body: &lt;/td&gt;&lt;script&gt;" in page
    assert not re.search(r"https?://", page)
    assert page.count("<script>") == 1  # the page's own load handler only


def test_full_record_page_opens_in_chromium(tmp_path):
    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    record = make_full_record()
    run = tmp_path / "results" / record["run_id"]
    run.mkdir(parents=True)
    page = writer.write_outputs(as_run(record), run, history=[])
    dom = _browse(browser, tmp_path, page.html.resolve().as_uri(), "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    marks = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert marks.get("ready") == "1", marks
    assert int(marks["images-total"]) == int(marks["images-loaded"]) == 3
    assert int(marks["summary-rows"]) == 4
