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

from harness import history, html_report, results

from conftest import FIXTURES, ROOT, require

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
                          capture_output=True, text=True, timeout=180)


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
    page = html_report.render(hostile, run, images={})
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;label&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;COPY failed&lt;/b&gt; &amp; more" in page
    # nothing is fetched: no external URL, stylesheet, script or font; images are data URIs
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert all(src.startswith("data:") for src in re.findall(r'<img[^>]* src="([^"]*)"', page))
    for name in ("results.json", "results.csv", "table.md"):
        assert f'<a href="{name}">' in page
    # what the page must say about the run
    for text in ("harness-standin/node:20", "node-20", "Debian bookworm with the buildpack-deps set.",
                 "20.10.24", "overlay2", "fixture-host", "0000000000000000000000000000000000000000",
                 "bases_mode", "COPY failed: file not found"):
        assert text in page, text


def test_page_opens_in_chromium_with_every_image_and_one_row_per_variant(tmp_path):
    browser = _chromium()
    require(browser is not None, "needs Debian's chromium (apt-get install -y chromium)")
    run, record = _run_dir(tmp_path)
    page = html_report.write(record, run)
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
    summary = re.search(r'<table[^>]*id="summary"[^>]*>.*?<tbody>(.*?)</tbody>', dom.stdout, re.S)
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
