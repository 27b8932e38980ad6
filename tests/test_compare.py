import csv
import io
import json
import math

import pytest
from records import make_record, make_variant

from harness import migrations
from harness.errors import HarnessError
from harness.model import Run
from harness.track import compare
from harness.track.compare import (
    APART,
    FASTER,
    SAME,
    SLOWER,
    UNSURE,
    compare_variants,
    mann_whitney_u,
    time_change,
    to_csv,
    to_json,
    to_markdown,
)

FAST = (60.0, 61.0, 59.0, 60.5, 59.5)
SLOW = (75.0, 76.0, 74.0, 75.5, 74.5)


def typed(record: dict) -> Run:
    """The typed run of a tests/records.py dict, as the code under test takes it."""
    return Run.from_json(migrations.migrate(record))


# Mann-Whitney U, against values computed by hand ------------------------------------------

def test_fully_separated_samples_reach_the_smallest_p():
    # all 3 of a below all of b: U = 0; 2 of the C(6,3) = 20 orderings are as extreme
    r = mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert (r.u, r.exact) == (0.0, True)
    assert math.isclose(r.p, 2 / 20)
    assert math.isclose(mann_whitney_u([1, 2, 3, 4], [5, 6, 7, 8]).p, 2 / 70)
    assert math.isclose(mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]).p, 2 / 252)


def test_ties_use_midranks_exactly():
    # values 1 2 2 3 -> midranks 1 2.5 2.5 4; a = {1, 2} has W = 3.5, E[W] = 5.
    # The 6 ways to pick 2 ranks give W = 3.5 3.5 5 5 6.5 6.5: 4 of 6 are >= 1.5 from 5.
    r = mann_whitney_u([1, 2], [2, 3])
    assert r.u == 0.5  # (2, 2) counts one half
    assert math.isclose(r.p, 4 / 6)


def test_one_overlap():
    # a = {1, 2, 4}, b = {3, 5, 6}: ranks of a 1 2 4, W = 7, E[W] = 10.5, |dev| = 3.5.
    # Subsets of {1..6} of size 3 with sum <= 7 or >= 14: {123}=6 {124}=7 {456}=15 {356}=14.
    r = mann_whitney_u([1, 2, 4], [3, 5, 6])
    assert r.u == 1.0
    assert math.isclose(r.p, 4 / 20)


def test_identical_samples_and_symmetry():
    assert mann_whitney_u([5, 5, 5], [5, 5, 5]).p == 1.0
    a, b = [3.1, 2.7, 4.4, 3.9], [5.0, 2.9, 6.1]
    ab, ba = mann_whitney_u(a, b), mann_whitney_u(b, a)
    assert ab.u + ba.u == len(a) * len(b)
    assert math.isclose(ab.p, ba.p)


def test_large_samples_use_the_normal_approximation():
    a, b = list(range(25)), list(range(100, 125))
    r = mann_whitney_u(a, b)
    assert not r.exact and r.u == 0
    sigma = math.sqrt(25 * 25 * 51 / 12)
    assert math.isclose(r.p, math.erfc((312.5 - 0.5) / sigma / math.sqrt(2)))
    assert r.p < 1e-8


def test_empty_sample_is_refused():
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


# Build-time verdicts -----------------------------------------------------------------------

def test_a_30_percent_step_is_flagged_with_three_samples():
    """A rank test cannot reach p < 0.05 with 3 samples a side; every sample apart by more
    than the spread and the noise floor still calls the change, in both directions."""
    before, after = [60.0, 61.0, 59.0], [78.0, 79.2, 77.1]  # +30 %
    t = time_change("cold", before, after)
    assert t.verdict == SLOWER and t.p_value is None and math.isclose(t.ratio, 78 / 60)
    assert "every sample slower" in t.note and "×1.10" in t.note  # the smallest detectable
    assert time_change("cold", after, before).verdict == FASTER


def test_noise_within_the_spread_is_not_flagged_with_three_samples():
    assert time_change("cold", [60.0, 75.0, 59.0], [70.0, 80.0, 69.0]).verdict == UNSURE
    t = time_change("cold", [60.0, 62.0, 58.0], [64.0, 65.0, 66.5])  # apart, only +8 %
    assert t.verdict == SAME
    wide = time_change("cold", [10.0, 14.0, 6.0], [14.5, 15.0, 15.5])  # apart, within spread
    assert wide.verdict == UNSURE and "×1.82" in wide.note  # 1 + (8 s spread + 0.2 s) / 10 s


def test_sub_second_jitter_is_not_a_change():
    t = time_change("cold", [0.04, 0.04, 0.04], [0.06, 0.06, 0.06])  # +50 %, 20 ms
    assert t.verdict == UNSURE


def test_five_separated_samples_are_called_slower_or_faster():
    t = time_change("cold", list(FAST), list(SLOW))
    assert t.verdict == SLOWER and math.isclose(t.p_value, 2 / 252)
    assert time_change("cold", list(SLOW), list(FAST)).verdict == FASTER


def test_within_factor_is_not_tested_and_overlap_is_not_significant():
    assert time_change("cold", list(FAST), [x * 1.05 for x in FAST]).verdict == SAME
    t = time_change("cold", [60.0, 90.0, 61.0, 88.0, 62.0], [70.0, 89.0, 71.0, 87.0, 72.0])
    assert t.verdict == UNSURE and t.p_value is not None and t.p_value >= 0.05


# compare and its formats ------------------------------------------------------------------

def _two_runs():
    before = make_record("20240101T000000Z", [
        make_variant("grows", size=150_000_000, layers=8),
        make_variant("shrinks", size=300_000_000, compressed=100_000_000),
        make_variant("same"),
        make_variant("dropped"),
    ])
    after = make_record("20240102T000000Z", [
        make_variant("grows", size=155_000_000, layers=9, base_id="sha256:" + "f" * 64,
                     digest="sha256:" + "9" * 64),
        make_variant("shrinks", size=250_000_000),
        make_variant("same"),
        make_variant("new"),
    ])
    after["variants"][1]["compressed"] = {"registry_bytes": 80_000_000}
    return before, after


def _table_rows(md: str) -> dict[str, str]:
    body = [line for line in md.splitlines() if line.startswith("| ") and "`" in line]
    return {line.split("`")[1]: line for line in body}


def test_markdown_has_one_row_per_variant_and_the_right_arrows():
    before, after = _two_runs()
    md = to_markdown(compare.compare(typed(before), typed(after)))
    assert md.splitlines()[0] == "### Image comparison: `20240101T000000Z` → `20240102T000000Z`"
    rows = _table_rows(md)
    assert list(rows) == ["grows", "shrinks", "same", "new", "dropped"]
    assert "150 MB → 155 MB" in rows["grows"] and "↑ +5 MB (+3.3%)" in rows["grows"]
    assert "8 → 9 (↑ +1)" in rows["grows"]
    assert "base image node:20-alpine changed (bbbbbbbbbbbb → ffffffffffff)" in rows["grows"]
    assert "300 MB → 250 MB | ↓ -50 MB (-16.7%)" in rows["shrinks"]
    assert "100 MB → 80 MB, ↓ -20 MB (-20.0%)" in rows["shrinks"]  # compressed, either key
    assert "60.0 s → 60.0 s +0.0% (ratio within ×1.1)" in rows["grows"]
    assert "↑" not in rows["same"] and "↓" not in rows["same"]
    assert "| added |" in rows["new"] and "| removed |" in rows["dropped"]


def test_rows_carry_exact_figures_and_causes():
    before, after = _two_runs()
    grows = compare.compare(typed(before), typed(after))[0]
    assert grows.pair("size_bytes") == (150_000_000, 155_000_000)
    assert grows.causes == ("base image node:20-alpine changed (bbbbbbbbbbbb → ffffffffffff)",)
    assert [t.verdict for t in grows.times] == [SAME]
    assert compare.compare(typed(before), typed(after))[2].changed is False


def test_json_and_csv_have_a_row_per_variant():
    before, after = _two_runs()
    rows = compare.compare(typed(before), typed(after))
    data = json.loads(to_json(rows))
    assert (data["baseline"], data["current"]) == ("20240101T000000Z", "20240102T000000Z")
    grows = data["rows"][0]
    assert grows["size_bytes"] == {"before": 150_000_000, "after": 155_000_000,
                                   "delta": 5_000_000, "pct": pytest.approx(10 / 3)}
    assert grows["build"][0]["scenario"] == "cold"
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["variant"] for r in table] == ["grows", "shrinks", "same", "new", "dropped"]
    assert table[0]["size_bytes_delta"] == "5000000"
    assert table[3]["presence"] == "added" and table[0]["build_cold_verdict"] == SAME


def test_a_significant_slowdown_shows_in_markdown():
    before = make_record("20240101T000000Z", [make_variant("v", samples=FAST)])
    after = make_record("20240102T000000Z", [make_variant("v", samples=SLOW)])
    row = _table_rows(to_markdown(compare.compare(typed(before), typed(after))))["v"]
    assert "↑ +25.0% (slower, p=0.0079)" in row


def test_build_times_of_different_machines_are_not_compared():
    before = make_record("20240101T000000Z", [make_variant("v", samples=FAST)], hostname="a")
    after = make_record("20240102T000000Z", [make_variant("v", samples=SLOW)], hostname="b")
    (t,) = compare.compare(typed(before), typed(after))[0].times
    assert t.verdict == APART and t.note == "different machines (a, b)"


def test_failed_variant_is_marked():
    before = make_record("20240101T000000Z", [make_variant("v")])
    after = make_record("20240102T000000Z", [make_variant("v", status="failed")])
    assert "**now fails**" in _table_rows(to_markdown(compare.compare(typed(before), typed(after))))["v"]


def test_compare_two_variants_of_one_run():
    record = make_record("20240101T000000Z", [
        make_variant("single", size=1_100_000_000, layers=12, base="node:20", dockerfile_sha="1" * 64),
        make_variant("multi", size=180_000_000, layers=9, dockerfile_sha="2" * 64),
    ])
    (row,) = compare_variants(typed(record), "single", "multi")
    assert row.variant == "single → multi"
    assert row.pair("size_bytes") == (1_100_000_000, 180_000_000)
    assert "FROM node:20 removed" in row.causes and "Dockerfile changed" in row.causes
    assert "`20240101T000000Z single` → `20240101T000000Z multi`" in to_markdown([row])
    with pytest.raises(HarnessError, match="no variant.*nope"):
        compare_variants(typed(record), "single", "nope")


def test_scenarios_are_read_when_the_record_has_them():
    v = make_variant("v")
    # (a bare list of samples per scenario, which no runner wrote, does not fit the model)
    v["build"]["scenarios"] = {"cold": {"samples_seconds": [60.0, 61.0]},
                               "warm": {"samples_seconds": [5.0, 5.1]}}
    run = typed(make_record("20240101T000000Z", [v]))
    f = compare.facts(run, run.variants[0])
    assert f.build_samples == {"cold": [60.0, 61.0], "warm": [5.0, 5.1]}


def test_compare_main_keeps_machine_formats_clean(tmp_path):
    before, after = _two_runs()
    for name, rec in (("a", before), ("b", after)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(rec))
    (tmp_path / "budgets.toml").write_text('[budgets.grows]\nmax_growth = "1%"\n')
    text, lines, code = compare.compare_main(tmp_path / "a", tmp_path / "b", "json", check=True,
                                             budgets_source=tmp_path / "budgets.toml")
    assert json.loads(text)["rows"] and code == 3  # a broken budget
    assert lines[0].startswith("budget exceeded: grows: max_growth 1% exceeded: +5,000,000 B")
    with pytest.raises(HarnessError, match="unknown format"):
        compare.compare_main(tmp_path / "a", tmp_path / "b", "xml")


def test_cli_compares_two_variants_of_one_run():
    import subprocess
    import sys

    from conftest import FIXTURES, ROOT

    proc = subprocess.run([sys.executable, "-m", "harness", "compare", "single", "distroless",
                           "--run", str(FIXTURES / "run"), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    import json

    rows = json.loads(proc.stdout)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert len(rows) == 1
    text = json.dumps(rows[0])
    assert "1240000000" in text and "115300000" in text
