"""Rendering from a fixture results.json: pure, no engine."""

import copy
import math
import shutil
from io import StringIO

import pandas as pd
import pytest
from conftest import FIXTURES
from records import as_run, make_full_record, make_record, make_variant

from harness import store as results
from harness.errors import HarnessError
from harness.report import build_tables, image_tables, units, writer
from harness.report import markdown as report


@pytest.fixture
def record():
    return results.load_run(FIXTURES / "run")


def test_human_size_is_si_like_docker_images():
    assert units.human_size(1_240_000_000) == "1.24 GB"
    assert units.human_size(182_000_000) == "182 MB"
    assert units.human_size(999) == "999 B"
    assert units.human_size(1000) == "1 kB"
    assert units.human_size(None) == "–"


def test_table_has_one_row_per_variant_in_order(record):
    lines = report.table_lines(record)
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
    assert "Final size: the bytes of the files in the image's layers" in text
    assert "(*) `node:20` could not be pulled here; a local stand-in was used: `harness-standin/node:20`" in text
    full = "\n".join(report.markdown_lines(record))
    assert "`broken` failed: build failed: COPY failed" in full
    # table.md is the article's table alone; report.md leads with the verdict, then holds it
    assert "## " not in text and text.splitlines()[-1].startswith("Run ")
    assert full.startswith("# Which Dockerfile to ship") and "\nShip Multi-stage (distroless)" in full
    assert lines[0] in full


def test_csv_has_raw_numbers(record):
    df = pd.read_csv(StringIO(report.csv_text(record)))
    assert list(df["name"]) == ["single", "distroless", "broken"]
    assert df.loc[0, "size_bytes"] == 1_240_000_000
    assert df.loc[0, "build_seconds_median"] == 62.0
    assert df.loc[1, "added_bytes"] == 115_300_000 - 105_000_000
    assert bool(df.loc[0, "uses_standin"]) and not bool(df.loc[1, "uses_standin"])


def test_report_files_regenerate_identically(record, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    first = writer.write_outputs(results.load(run), run)
    table = first.table.read_text()
    assert first.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    writer.write_outputs(results.load(run), run)
    assert first.table.read_text() == table


def test_bad_results_files_are_one_line_errors(tmp_path):
    (tmp_path / "results.json").write_text('{"schema_version": 1, "variants": [')
    with pytest.raises(HarnessError, match="not a readable results file"):
        results.load(tmp_path)
    (tmp_path / "results.json").write_text('{"schema_version": 99, "variants": []}')
    with pytest.raises(HarnessError, match="schema version 99"):
        results.load(tmp_path)


# ---------------------------------------------------------------- the runner's full record


@pytest.fixture
def full():
    return make_full_record()


def md_table(lines: list[str], first_header: str) -> list[dict]:
    """The markdown table whose header starts with `first_header`, as one dict per row."""
    text = next(line for line in lines if line.startswith(f"| {first_header}"))
    rows = [[c.strip() for c in row.strip().strip("|").split(" | ")] for row in text.splitlines()]
    return [dict(zip(rows[0], r)) for r in rows[2:]]


def rows_of(table: list[dict], label: str) -> list[dict]:
    return [r for r in table if r.get("Variant", r.get("Approach")) == label]


def test_build_statistics_are_computed_from_the_raw_samples(full):
    rows = {(r.name, r.builder, r.scenario): r for r in build_tables.build_rows(as_run(full))}
    deps = rows[("three-stage", "classic", "dependency-change")]
    s = deps.summary
    assert deps.samples == (10.0, 11.0, 12.0, 30.0)
    assert (s.n, s.median, s.mad, s.mean, s.min, s.max) == (4, 11.5, 1.0, 15.75, 10.0, 30.0)
    assert math.isclose(s.stdev, math.sqrt(272.75 / 3))
    assert s.outliers == (3,) and not deps.noisy  # 1.0 / 11.5 = 8.7 %
    assert deps.steps == "6 of 9"
    # the stored statistics said median 999: the report recomputes
    assert rows[("three-stage", "classic", "source-change")].summary.median == 12.3

    lines = report.markdown_lines(as_run(full))
    table = md_table(lines, "Variant                 | Builder")
    row = next(r for r in rows_of(table, "Three stage (alpine)")
               if (r["Builder"], r["Scenario"]) == ("classic", "dependency-change"))
    assert row == {"Variant": "Three stage (alpine)", "Builder": "classic",
                   "Scenario": "dependency-change", "n": "4", "Median": "11.5 s", "MAD": "1.00 s",
                   "Mean": "15.8 s", "Stdev": "9.54 s", "Min": "10.0 s", "Max": "30.0 s",
                   "Outliers": "1", "Steps rebuilt": "6 of 9",
                   "Note": "changed: package.json and package-lock.json: version bumped"}
    assert "999" not in "\n".join(lines)
    text = "\n".join(lines)
    assert ("- `three-stage` (classic, dependency-change): 1 statistical outlier (sample 4: "
            "30.0 s; modified z-score above 3.5)") in text


def test_every_builder_and_scenario_has_a_row_with_the_builder_named(full):
    table = md_table(report.markdown_lines(as_run(full)), "Variant                 | Builder")
    three = [(r["Builder"], r["Scenario"]) for r in rows_of(table, "Three stage (alpine)")]
    assert three == [("classic", "cold"), ("buildkit", "cold"), ("classic", "no-change"),
                     ("buildkit", "no-change"), ("classic", "source-change"),
                     ("buildkit", "source-change"), ("classic", "dependency-change"),
                     ("buildkit", "dependency-change")]
    assert all(r["Builder"] in ("classic", "buildkit") for r in table)
    skipped = rows_of(table, "Three stage (alpine)")[-1]
    assert skipped["Note"] == "skipped: no package-lock.json in the context" and skipped["n"] == "–"
    failed_builder = [r for r in rows_of(table, "Single stage (node:20)*") if r["Builder"] == "buildkit"]
    assert len(failed_builder) == 1 and failed_builder[0]["Note"].startswith("build failed: failed to solve")
    error = next(r for r in rows_of(table, "Distroless") if r["Scenario"] == "no-change"
                 and r["Builder"] == "classic")
    assert error["Note"] == "build failed: no space left on device" and error["Median"] == "–"
    broken = rows_of(table, "Broken one")
    assert len(broken) == 1 and broken[0]["Note"] == "build failed: COPY failed: file not found"


def test_spread_warning_appears_exactly_for_the_noisy_rows(full):
    lines = report.markdown_lines(as_run(full))
    warned = [line for line in lines if build_tables.SPREAD_WARNING in line]
    assert warned == [
        ("- `single`* (classic, no-change): MAD 0.50 s is 33 % of the median 1.50 s (n=3) — "
         "spread above 10 % of the median: add repetitions with --repeat."),
        ("- `three-stage` (buildkit, source-change): MAD 1.00 s is 20 % of the median 5.00 s "
         "(n=3) — spread above 10 % of the median: add repetitions with --repeat.")]
    assert [(r.name, r.builder, r.scenario) for r in build_tables.build_rows(as_run(full)) if r.noisy] == [
        ("single", "classic", "no-change"), ("three-stage", "buildkit", "source-change")]
    quiet = copy.deepcopy(full)
    quiet["variants"][0]["build"]["scenarios"]["no-change"]["samples_seconds"] = [1.5, 1.55, 1.6]
    assert len([line for line in report.markdown_lines(as_run(quiet)) if build_tables.SPREAD_WARNING in line]) == 1


def test_what_the_cache_buys_per_variant_and_builder(full):
    text = "\n".join(report.markdown_lines(as_run(full)))
    assert ("- `three-stage` (classic): source change rebuilt 4 of 9 steps, 12.3 s ± 0.30 s vs "
            "46.0 s ± 1.00 s cold (−73 %); dependency change rebuilt 6 of 9 steps, 11.5 s ± 1.00 s "
            "vs 46.0 s ± 1.00 s cold (−75 %); no change rebuilt 0 of 9 steps, 2.10 s ± 0.10 s vs "
            "46.0 s ± 1.00 s cold (−95 %).") in text
    assert ("- `three-stage` (buildkit): source change rebuilt 3 of 9 steps, 5.00 s ± 1.00 s vs "
            "41.0 s ± 1.00 s cold (−88 %); dependency change skipped (no package-lock.json in "
            "the context);") in text
    assert "no change failed (build failed: no space left on device)" in text
    assert "- `single`* (classic): source change rebuilt 3 of 7 steps" in text

    primed = copy.deepcopy(full)
    build = primed["variants"][1]["build"]
    del build["scenarios"]["cold"]
    build.update(primed=True, samples_seconds=[])
    lines = build_tables.cache_lines(as_run(primed))
    line = next(x for x in lines if x.startswith("- `three-stage` (classic)"))
    assert line.endswith("(no cold build to compare with: not run: the cache was primed by one "
                         "untimed build).")
    assert "source change rebuilt 4 of 9 steps, 12.3 s ± 0.30 s;" in line
    cold = next(r for r in build_tables.build_rows(as_run(primed))
                if (r.name, r.builder, r.scenario) == ("three-stage", "classic", "cold"))
    assert cold.state == "skipped"


def test_build_context_and_what_dockerignore_saves(full):
    table = md_table(report.markdown_lines(as_run(full)), "Variant                 | Sent")
    assert rows_of(table, "Three stage (alpine)") == [{
        "Variant": "Three stage (alpine)", "Sent (after .dockerignore)": "41 kB", "Files sent": "12",
        "Packed in": "12 ms", "Without .dockerignore": "182 MB", "Files without": "9,512",
        ".dockerignore saves": "182 MB (99.98 % of the bytes), 9,500 files"}]
    assert [r["Variant"] for r in table] == ["Single stage (node:20)*", "Three stage (alpine)", "Distroless"]


def test_shipping_exact_beside_estimate_and_honest_pulls(full):
    lines = report.markdown_lines(as_run(full))
    table = md_table(lines, "Variant                 | Compressed")
    single, three, distroless = table
    assert (single["Compressed (registry, exact)"], single["Estimate (gzip -6)"],
            single["Estimate error"], single["Push"], single["Pull"],
            single["Layers present at pull"]) == ("400 MB", "404 MB", "+1.0 %", "12.5 s", "8.25 s", "0 of 12")
    assert single["Variant"] == "Single stage (node:20)*"
    assert (three["Compressed (registry, exact)"], three["Estimate error"], three["Pull"],
            three["Layers present at pull"]) == ("45 MB", "−2.0 %", "1.90 s", "5 of 8")
    assert three["Note"] == ("not a cold-host pull: 5 of 8 layers were already on the engine, "
                             "only 3 downloaded; cold pull: not measured: a private dockerd needs root")
    assert (single["Cold pull"], three["Cold pull"]) == ("9.50 s", "–")
    assert "Cold pull: the same image pulled from the same registry into an empty engine" in "\n".join(lines)
    assert distroless["Note"] == "registry: push failed: connection refused"
    assert distroless["Estimate (gzip -6)"] == "41 MB" and distroless["Push"] == "–"


def test_runtime_states_plainly_who_serves_the_same_get_root(full):
    lines = report.markdown_lines(as_run(full))
    text = "\n".join(lines)
    assert "2 of 3 variants serve the same GET / as the reference `single`*:" in lines
    assert ("- `distroless` does not serve: no 200 from /healthz within 30 s (the container "
            "exited with 1)") in lines
    assert "- `broken` was not started: its build failed." in lines
    table = md_table(lines, "Variant                 | Status")
    assert table[0] == {"Variant": "Single stage (node:20)*", "Status": "ok",
                        "/healthz 200 after": "1.25 s", "Idle memory": "48.5 MB",
                        "GET /": "200 (application/json; charset=utf-8)",
                        "Same GET / as the reference": "reference"}
    assert table[1]["Same GET / as the reference"] == "same" and table[1]["Idle memory"] == "41.2 MB"
    assert table[2]["Status"] == "failed" and table[2]["Same GET / as the reference"] == "not serving"
    # failed at runtime: sizes still shown, the error and the end of its log stated
    summary = md_table(lines, "Approach")
    assert rows_of(summary, "Distroless")[0]["Final Size"] == "115 MB (**failed at runtime**)"
    assert rows_of(summary, "Distroless")[0]["Layers"] == "9"
    assert ("`distroless` failed at runtime: no 200 from /healthz within 30 s (the container "
            "exited with 1). Its image was built and measured: its sizes stand.") in text
    assert "```\nnode:internal/modules/cjs/loader:1228\nError: Cannot find module '/app/dist/index.js'\n```" in text
    assert "containers ran with the limits memory 512m, pids 256" in text
    assert "idle memory: read once it was healthy and idle (usage - inactive_file (cgroup v2))" in text

    same = copy.deepcopy(full)
    same["variants"][2]["runtime"].update(status="ok", error=None, root_status=200)
    same["runtime_comparison"] = {"reference": "single",
                                  "same": ["single", "three-stage", "distroless"],
                                  "different": [], "not_serving": []}
    assert ("All 3 variants serve the same GET / (status, content type and body, compared "
            "with `single`*).") in report.markdown_lines(as_run(same))

    differ = copy.deepcopy(same)
    differ["runtime_comparison"] = {"reference": "single", "same": ["single", "three-stage"],
                                    "different": [{"name": "distroless",
                                                   "reason": "JSON body differs in hello"}],
                                    "not_serving": []}
    lines = report.markdown_lines(as_run(differ))
    assert "2 of 3 variants serve the same GET / as the reference `single`*:" in lines
    assert "- `distroless` serves a different GET /: JSON body differs in hello" in lines
    assert md_table(lines, "Variant                 | Status")[2]["Same GET / as the reference"] == \
        "differs: JSON body differs in hello"

    nobody = copy.deepcopy(full)
    nobody["variants"][0]["runtime"].update(status="failed", error="exited with 1")
    nobody["runtime_comparison"] = {"reference": None, "same": [], "different": [],
                                    "not_serving": ["single", "three-stage", "distroless"]}
    lines = report.markdown_lines(as_run(nobody))
    assert "None of the 3 variants started serves GET /:" in lines
    assert "- `single`* does not serve: exited with 1" in lines


def test_security_posture_in_table_csv(full):
    lines = report.markdown_lines(as_run(full))
    table = md_table(lines, "Approach                | Runs as")
    assert table[:3] == [
        {"Approach": "Single stage (node:20)*", "Runs as": "root", "Shell": "yes",
         "Package managers": "dpkg, apt, npm, yarn", "OS packages": "412 (dpkg)", "Setuid files": "3"},
        {"Approach": "Three stage (alpine)", "Runs as": "node", "Shell": "yes",
         "Package managers": "apk", "OS packages": "15 (apk)", "Setuid files": "0"},
        {"Approach": "Distroless", "Runs as": "nonroot", "Shell": "no",
         "Package managers": "none", "OS packages": "14 (dpkg)", "Setuid files": "0"}]
    df = pd.read_csv(StringIO(report.csv_text(as_run(full))))
    assert list(df["user"].fillna("")) == ["", "node", "nonroot", ""]
    assert list(df["has_shell"][:3]) == [True, True, False]
    assert list(df["package_managers"][:3]) == ["dpkg, apt, npm, yarn", "apk", "none"]
    assert list(df["os_package_count"][:3]) == [412, 15, 14]
    assert list(df["setuid_file_count"][:3]) == [3, 0, 0]


def test_where_the_bytes_go(full):
    table = md_table(report.markdown_lines(as_run(full)), "Variant                 | Base image")
    assert rows_of(table, "Three stage (alpine)") == [{
        "Variant": "Three stage (alpine)", "Base image": "40 MB",
        "Dependencies (node_modules)": "5 MB", "App": "300 kB", "Other": "1.7 MB",
        "Above the base": "7 MB", "History entries": "14", "Layers": "8", "Empty entries": "6",
        "By stage (above the base)": "runner 1.7 MB, deps 5 MB, build 300 kB"}]
    assert set(rows_of(table, "Distroless")[0].values()) == {"Distroless", "–"}
    layers = image_tables.layer_table(as_run(full).variants[1])
    assert len(layers) == 8
    copy_deps = layers.iloc[5].to_dict()
    assert copy_deps == {"#": "5", "Source": "instruction",
                         "Instruction": "COPY --from=deps /app/node_modules ./node_modules",
                         "Stage": "runner", "From stage": "deps", "Size": "5 MB",
                         "node_modules": "5 MB", "App": "0 B", "Other": "0 B"}
    assert layers.iloc[0]["Source"] == "base image" and layers.iloc[0]["Stage"] == "–"


def test_standin_mark_on_every_table_of_a_variants_figures(full):
    lines = report.markdown_lines(as_run(full))
    for header in ("Variant                 | Builder", "Variant                 | Sent",
                   "Variant                 | Compressed", "Variant                 | Status",
                   "Approach                | Compressed", "Approach                | Runs as",
                   "Variant                 | Base image"):
        first = md_table(lines, header)[0]
        assert first.get("Variant", first.get("Approach")) == "Single stage (node:20)*", header
    assert md_table(lines, "Approach")[0]["Base Image"] == "node:20*"


def test_results_csv_gains_the_single_valued_figures(full):
    df = pd.read_csv(StringIO(report.csv_text(as_run(full))))
    assert list(df["name"]) == ["single", "three-stage", "distroless", "broken"]
    single, three, distroless = (df.iloc[i] for i in range(3))
    assert single["compressed_size_bytes"] == 400_000_000 and three["compressed_size_bytes"] == 45_000_000
    assert single["compressed_estimate_error_pct"] == 1.0 and three["compressed_estimate_error_pct"] == -2.0
    assert (three["push_seconds"], three["pull_seconds"], three["pull_layers_present"],
            three["pull_layers"]) == (3.1, 1.9, 5, 8)
    assert distroless["registry_error"] == "push failed: connection refused"
    assert (single["seconds_to_healthy"], single["idle_memory_bytes"], single["root_status"]) == (1.25, 48_500_000, 200)
    assert single["get_root_vs_reference"] == "reference" and distroless["get_root_vs_reference"] == "not serving"
    assert distroless["status"] == "failed-at-runtime" and distroless["size_bytes"] == 115_300_000
    assert (three["split_base_bytes"], three["split_dependencies_bytes"], three["split_app_bytes"],
            three["split_other_bytes"]) == (40_000_000, 5_000_000, 300_000, 1_700_000)
    assert three["context_bytes_without_dockerignore"] == 182_000_000
    assert three["context_files_without_dockerignore"] == 9_512
    # per scenario of the measured (classic) builder, from the raw samples
    assert (three["dependency_change_samples"], three["dependency_change_seconds_median"],
            three["dependency_change_seconds_mad"], three["dependency_change_steps_rebuilt"]) == (4, 11.5, 1.0, 6)
    assert three["source_change_seconds_median"] == 12.3
    assert three["no_change_seconds_median"] == 2.1
    assert pd.isna(distroless["no_change_seconds_median"])  # that scenario failed
    assert three["builder"] == "classic"


def test_build_times_csv_has_every_builder_and_scenario_with_its_samples(full, tmp_path):
    written = writer.write_outputs(as_run(full), tmp_path)
    assert written.build_times_csv == tmp_path / "build_times.csv"
    df = pd.read_csv(written.build_times_csv, dtype={
        "outlier_indices": str, "samples_seconds": str, "warmup_seconds": str})
    assert len(df) == len(build_tables.build_rows(as_run(full))) == 22
    assert set(df["builder"]) == {"classic", "buildkit"}
    deps = df[(df["variant"] == "three-stage") & (df["builder"] == "classic")
              & (df["scenario"] == "dependency-change")].iloc[0]
    assert (deps["n"], deps["median_seconds"], deps["mad_seconds"], deps["outlier_count"]) == (4, 11.5, 1.0, 1)
    assert str(deps["outlier_indices"]) == "3" and deps["samples_seconds"] == "10.0 11.0 12.0 30.0"
    assert deps["warmup_seconds"] == "14.0" and deps["steps_rebuilt"] == 6
    assert bool(deps["measured_builder"]) and not bool(deps["noisy"])
    noisy = df[df["noisy"]]
    assert sorted(zip(noisy["variant"], noisy["builder"], noisy["scenario"])) == [
        ("single", "classic", "no-change"), ("three-stage", "buildkit", "source-change")]
    skipped = df[(df["state"] == "skipped")].iloc[0]
    assert skipped["reason"] == "no package-lock.json in the context" and skipped["n"] == 0
    failed = df[(df["variant"] == "single") & (df["builder"] == "buildkit")].iloc[0]
    assert failed["state"] == "failed" and failed["scenario"] == "–"
    assert (tmp_path / "table.md").read_text().startswith("| Approach")


def test_old_records_still_render_with_dashes(record):
    lines = report.markdown_lines(record)
    text = "\n".join(lines)
    table = md_table(lines, "Variant                  | Builder")
    assert [(r["Variant"], r["Builder"], r["Scenario"], r["Median"], r["Steps rebuilt"])
            for r in table] == [
        ("Single stage (node:20)*", "classic", "cold", "62.0 s", "7 of 7"),
        ("Multi-stage (distroless)", "classic", "cold", "30.0 s", "7 of 7"),
        ("Broken one*", "classic", "–", "–", "–")]  # its base was the stand-in too
    context = md_table(lines, "Variant                  | Sent")
    assert context[0]["Without .dockerignore"] == "–" and context[0][".dockerignore saves"] == "–"
    for absent in ("## Shipping", "## Runtime", "## Where the bytes go", "## Security posture",
                   "What the build cache buys", build_tables.SPREAD_WARNING):
        assert absent not in text
    df = pd.read_csv(StringIO(report.csv_text(record)))
    assert df["cold_seconds_median"].tolist()[:2] == [62.0, 30.0]
    assert df["compressed_size_bytes"].isna().all() and df["runtime_status"].isna().all()
    old = make_record("20240101T000000Z", [make_variant("a", samples=(10, 11, 12, 30))])
    assert build_tables.build_rows(as_run(old))[0].summary.outliers == (3,)
    assert "| A " in report.table_lines(as_run(old))[0]


def test_markdown_cells_keep_pipes_and_line_breaks_inside(full):
    full["variants"][1]["label"] = "Three | stage\nalpine"
    table = md_table(report.markdown_lines(as_run(full)), "Approach")
    assert table[1]["Approach"] == "Three \\| stage alpine"


def test_the_report_orders_scenarios_as_the_bench_runs_them():
    from harness.bench import scenarios

    assert build_tables.SCENARIOS == scenarios.ALL


def test_a_variant_in_flight_is_running_not_failed(tmp_path):
    """A results.json read while the run goes on (or after its process died) holds the
    variant in flight as "running": no size yet, and no failure."""
    from harness.report import html

    busy = make_variant("busy", status="running")
    busy.pop("build")
    busy["error"] = None
    run = as_run(make_record("20261201T000000Z", [make_variant("done"), busy]))
    table = report.table_lines(run)
    row = [line for line in table[0].splitlines() if line.startswith("| Busy ")][0]
    assert "| running " in row and "failed" not in row
    text = "\n".join(report.markdown_lines(run))
    assert "Still running: `busy`" in text and "`busy` failed" not in text
    assert [r.name for r in build_tables.build_rows(run)] == ["done"]
    page = html.render(run, tmp_path, images={})
    assert "1 still running" in page and "failed</strong>" not in page
    assert "busy</code>): " not in page  # not under Failures
