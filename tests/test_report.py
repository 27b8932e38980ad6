"""Rendering from a fixture results.json: pure, no engine."""

import shutil

import pandas as pd
import pytest

from harness import report, results
from harness.errors import HarnessError

from conftest import FIXTURES


@pytest.fixture
def record():
    return results.load(FIXTURES / "run")


def test_human_size_is_si_like_docker_images():
    assert report.human_size(1_240_000_000) == "1.24 GB"
    assert report.human_size(182_000_000) == "182 MB"
    assert report.human_size(999) == "999 B"
    assert report.human_size(1000) == "1 kB"
    assert report.human_size(None) == "–"


def test_table_has_one_row_per_variant_in_order(record):
    lines = report.markdown_lines(record)
    table = lines[0].splitlines()
    assert table[0].startswith("| Approach") and "Base Image" in table[0] and "Final Size" in table[0]
    assert "Layers" in table[0] and "Build time (median)" in table[0]
    rows = table[2:]
    assert [r.split("|")[1].strip() for r in rows] == [
        "Single stage (node:20)", "Multi-stage (distroless)", "Broken one"]
    # stand-in base marked; the real one not; short name for a non-Hub registry
    assert "| node:20*" in rows[0]
    assert "| distroless/nodejs20-debian12 " in rows[1]
    assert "1.24 GB" in rows[0] and "115 MB" in rows[1] and "**failed**" in rows[2]
    assert "−91%" in rows[1]  # 1 - 115.3/1240
    assert "62.00 s" not in rows[0] and "62.0 s ± 2.00 s (n=3)" in rows[0]
    text = "\n".join(lines)
    assert report.SIZE_UNIT_NOTE in text
    assert "(*) `node:20` could not be pulled here; a local stand-in was used: `harness-standin/node:20`" in text
    assert "`broken` failed: build failed: COPY failed" in text


def test_csv_has_raw_numbers(record):
    from io import StringIO

    df = pd.read_csv(StringIO(report.csv_text(record)))
    assert list(df["name"]) == ["single", "distroless", "broken"]
    assert df.loc[0, "size_bytes"] == 1_240_000_000
    assert df.loc[0, "build_seconds_median"] == 62.0
    assert df.loc[1, "added_bytes"] == 115_300_000 - 105_000_000
    assert bool(df.loc[0, "uses_standin"]) and not bool(df.loc[1, "uses_standin"])


def test_report_files_regenerate_identically(record, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    first = report.write_report(results.load(run), run)
    table = first.table.read_text()
    assert first.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report.write_report(results.load(run), run)
    assert first.table.read_text() == table


def test_bad_results_files_are_one_line_errors(tmp_path):
    (tmp_path / "results.json").write_text('{"schema_version": 1, "variants": [')
    with pytest.raises(HarnessError, match="not a readable results file"):
        results.load(tmp_path)
    (tmp_path / "results.json").write_text('{"schema_version": 99, "variants": []}')
    with pytest.raises(HarnessError, match="schema version 99"):
        results.load(tmp_path)
