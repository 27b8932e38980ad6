"""The one-file HTML report, opened in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

from harness import report, results

from conftest import FIXTURES, ROOT, require

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-quic"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_page_loads_every_image_and_lists_every_variant(tmp_path):
    browser = _chromium()
    require(browser is not None, "needs Debian's chromium")
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    record = results.load(run)
    written = report.write_report(record, run)
    page = written.html.read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: no network
    url = written.html.resolve().as_uri()

    def chromium(*args: str) -> subprocess.CompletedProcess:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        profile.mkdir()
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               "--virtual-time-budget=5000", *args, url],
                              capture_output=True, text=True, timeout=120)

    dom = chromium("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    total = int(re.search(r'data-images-total="(\d+)"', body).group(1))
    loaded = int(re.search(r'data-images-loaded="(\d+)"', body).group(1))
    assert total >= 1 and loaded == total
    summary = re.search(r'<table id="summary">.*?<tbody>(.*?)</tbody>', dom.stdout, re.S).group(1)
    assert summary.count("<tr>") == len(record["variants"])

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "report.png"
    shot.unlink(missing_ok=True)
    proc = chromium(f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
