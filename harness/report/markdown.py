"""Records in, tables and charts out. Never touches Docker.

Formatting functions return text, lines or DataFrames of text and print nothing;
`write_report` is the only function here that writes files. The sections live in their
own modules (build_tables: build times and context; image_tables: shipping, runtime and
where the bytes go; formatting: units and what a variant's record holds); this one holds
the summary, what ships and the security posture, the CSV files, and puts table.md together.

What table.md (and index.html, from the same functions) shows, in order:

- the summary: the article's table (approach, base image, final size) and what the harness
  adds to it (saved against the first variant, added to the base, layers, cold build time);
- build time per variant x builder x scenario: n, median, MAD, mean, stdev, min, max and
  outliers computed here from the raw samples (stored statistics are not trusted), the
  steps each scenario rebuilt, a warning under the table for every row whose MAD is above
  10 % of its median, and per variant what the build cache buys against a cold build;
- the build context: bytes and files sent after .dockerignore, time to pack, and what
  .dockerignore saves;
- shipping: the exact compressed size a registry stores beside the gzip estimate, push
  and pull time, and how many layers were already present when pulling;
- runtime: time to a 200 from /healthz, idle memory, GET / and whether every variant
  serves the same GET / as the reference; variants that failed at runtime with their logs;
- what ships in each image, the security posture, and where the bytes go (base image,
  dependencies, application, other; history entries against real layers).

Two CSV files:

- results.csv: one row per variant, raw numbers with their unit in the column name,
  including the single-valued figures above and, per scenario of the builder whose image
  was measured, the median, MAD, number of samples and steps rebuilt;
- build_times.csv: one row per variant x builder x scenario (skipped and failed scenarios
  included, with their reason): the statistics computed from the samples and the samples
  themselves (space-separated seconds, warm-up builds apart), so the file alone is enough
  to redo the analysis.

Every table that shows a variant's figures marks (`*`) a variant built on a stand-in base.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.report.build_tables import (
    BUILD_TIMES_CSV,
    SCENARIOS,
    build_rows,
    build_time_lines,
    builds,
    context_lines,
    scenario_tables,
)
from harness.report.formatting import (
    STANDIN_MARK,
    as_dict,
    attribution_of,
    contents_of,
    estimate_error_pct,
    exact_compressed,
    final_base,
    human_seconds,
    human_size,
    markdown_table,
    package_managers,
    registry_of,
    runtime_of,
    short_ref,
    uses_standin,
)
from harness.report.image_tables import bytes_lines, runtime_lines, serving, shipping_lines
from harness.store import FAILED_AT_RUNTIME, MEASURED, write_atomic
from harness.stats import summarize
from harness.analysis.sizes import engine_label, size_lines


# ---------------------------------------------------------------------------- the frame

# Figures from the layer analysis (harness/analysis/layers) carried into the table and CSV.
CONTENT_COLUMNS = ("compressed_estimate_bytes", "file_count", "files_bytes", "wasted_bytes",
                   "efficiency", "duplicate_bytes", "app_node_modules_bytes",
                   "app_node_modules_package_count", "source_map_bytes",
                   "typescript_source_bytes", "has_shell", "os_package_count", "os_package_db")


def _scenario_columns(record: dict) -> list[str]:
    found = [s for v in record.get("variants") or [] for builder, primary, build in builds(record, v)
             if primary for s in scenario_tables(record, build)]
    return list(SCENARIOS) + [s for s in dict.fromkeys(found) if s not in SCENARIOS]


def _scenario_figures(record: dict, variant: dict, scenarios: list[str]) -> dict:
    primary = [r for r in build_rows({**record, "variants": [variant]}) if r.primary]
    by_scenario = {r.scenario: r for r in primary}
    out = {}
    for scenario in scenarios:
        r = by_scenario.get(scenario)
        s = r.summary if r is not None else None
        key = scenario.replace("-", "_")
        out[f"{key}_samples"] = s.n if s else None
        out[f"{key}_seconds_median"] = s.median if s else None
        out[f"{key}_seconds_mad"] = s.mad if s else None
        out[f"{key}_steps_rebuilt"] = r.steps_rebuilt if r is not None and s else None
    return out


def frame(record: dict) -> pd.DataFrame:
    """One row per variant, in the run's order, raw numbers with units in their names."""
    rows = []
    scenarios = _scenario_columns(record)
    states = serving(record)
    default_builder = (record.get("settings") or {}).get("builder") or "classic"
    for v in record.get("variants", []):
        image = v.get("image") or {}
        build = v.get("build") or {}
        samples = build.get("samples_seconds") or []
        summary = summarize(samples)
        base = final_base(v) or {}
        size = image.get("size_bytes")
        base_size = base.get("size_bytes")
        contents = contents_of(v)
        reg, rt, att = registry_of(v), runtime_of(v), attribution_of(v)
        split = as_dict(att.get("split"))
        state = states.get(v["name"])
        rows.append({
            "name": v["name"],
            "label": v.get("label") or v["name"],
            "status": v.get("status"),
            "error": v.get("error"),
            "builder": v.get("builder") or build.get("builder") or default_builder,
            "base_image": base.get("requested") or base.get("stage_base") or "",
            "base_standin": bool(base.get("standin")),
            "uses_standin": uses_standin(v),
            "image_id": image.get("id"),
            "size_bytes": size,
            "layer_count": image.get("layer_count"),
            "history_count": image.get("history_count"),
            "base_size_bytes": base_size,
            "added_bytes": (size - base_size) if size is not None and base_size is not None else None,
            "build_samples": len(samples),
            "build_seconds_median": summary.median if summary else None,
            "build_seconds_mad": summary.mad if summary else None,
            "build_seconds_min": summary.min if summary else None,
            "build_seconds_max": summary.max if summary else None,
            "build_steps": build.get("steps_total"),
            "context_bytes": build.get("context_bytes"),
            "context_files": build.get("context_files"),
            "context_seconds": build.get("context_seconds"),
            "context_bytes_without_dockerignore": build.get("context_bytes_without_dockerignore"),
            "context_files_without_dockerignore": build.get("context_files_without_dockerignore"),
            "user": image.get("user") if image else None,
            **{key: contents.get(key) for key in CONTENT_COLUMNS},
            "dev_dependencies_shipped": (len(contents["dev_dependencies_present"])
                                         if "dev_dependencies_present" in contents else None),
            "setuid_file_count": (len(contents["setuid_files"])
                                  if "setuid_files" in contents else None),
            "package_managers": package_managers(contents),
            "compressed_size_bytes": exact_compressed(v),
            "compressed_estimate_error_pct": estimate_error_pct(v),
            "push_seconds": reg.get("push_seconds"),
            "pull_seconds": reg.get("pull_seconds"),
            "pull_layers_present": reg.get("pull_layers_present"),
            "pull_layers": reg.get("pull_layers"),
            "image_removed_before_pull": reg.get("image_removed_before_pull"),
            "cold_pull_seconds": reg.get("cold_pull_seconds"),
            "cold_pull_error": reg.get("cold_pull_error"),
            "registry_error": reg.get("error"),
            "runtime_status": rt.get("status"),
            "runtime_error": rt.get("error"),
            "seconds_to_healthy": rt.get("seconds_to_healthy"),
            "idle_memory_bytes": rt.get("idle_memory_bytes"),
            "memory_basis": rt.get("memory_basis"),
            "root_status": rt.get("root_status"),
            "root_content_type": rt.get("root_content_type"),
            "runtime_user": rt.get("user"),
            "get_root_vs_reference": state[0] if state else None,
            "get_root_difference": state[1] if state else None,
            "split_base_bytes": split.get("base_bytes"),
            "split_dependencies_bytes": split.get("dependencies_bytes"),
            "split_app_bytes": split.get("app_bytes"),
            "split_other_bytes": split.get("other_bytes"),
            "empty_history_count": att.get("empty_history_count"),
            **_scenario_figures(record, v, scenarios),
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        first = df["size_bytes"].iloc[0]
        df["saved_vs_first"] = [
            (1 - s / first) if first and s is not None and not pd.isna(s) else None
            for s in df["size_bytes"]
        ]
    return df


# ---------------------------------------------------------------------------- summary

def _measured_row(row: pd.Series) -> bool:
    return row["status"] in MEASURED


def base_cell(row: pd.Series) -> str:
    ref = short_ref(row["base_image"]) if row["base_image"] else "–"
    return ref + (STANDIN_MARK if row["base_standin"] or row["uses_standin"] else "")


def _size_cell(row: pd.Series) -> str:
    if not _measured_row(row):
        return "**failed**"
    if row["status"] == FAILED_AT_RUNTIME:
        return f"{human_size(row['size_bytes'])} (**failed at runtime**)"
    return human_size(row["size_bytes"])


def _time_cell(row: pd.Series) -> str:
    med = row["build_seconds_median"]
    if med is None or pd.isna(med):
        return "–"
    text = human_seconds(med)
    if row["build_samples"] > 1:
        text += f" ± {human_seconds(row['build_seconds_mad'])} (n={row['build_samples']})"
    return text


def _saved_cell(row: pd.Series, index: int) -> str:
    saved = row.get("saved_vs_first")
    if not _measured_row(row) or saved is None or pd.isna(saved):
        return "–"
    if index == 0:
        return "baseline"
    return f"−{saved:.0%}" if saved >= 0 else f"+{-saved:.0%}"


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """The article's table (Approach, Base Image, Final Size) plus what the harness adds."""
    return pd.DataFrame({
        "Approach": df["label"],
        "Base Image": df.apply(base_cell, axis=1),
        "Final Size": df.apply(_size_cell, axis=1),
        "vs first": [_saved_cell(r, i) for i, (_, r) in enumerate(df.iterrows())],
        "Added to base": [human_size(r["added_bytes"]) if _measured_row(r) else "–"
                          for _, r in df.iterrows()],
        "Layers": [str(int(r["layer_count"])) if _measured_row(r) and not pd.isna(r["layer_count"])
                   else "–" for _, r in df.iterrows()],
        "Build time (median)": df.apply(_time_cell, axis=1),
    })


def summary_notes(record: dict) -> list[str]:
    """The notes under the summary table (markdown; the HTML page renders the same text)."""
    settings = record.get("settings") or {}
    builder = settings.get("builder", "classic")
    others = [b for b in settings.get("builders") or [] if b != builder]
    lines = [*size_lines(record),
             f"Build time: cold builds (no cache, base images already present) with the "
             f"{builder} builder, median ± MAD of the samples"
             + (f" (the {', '.join(others)} builder{'s' if len(others) > 1 else ''} and every "
                "scenario: see the build-time table)" if others else "") + ". "
             "\"Added to base\" is the final size minus the size of the runtime stage's base image."
             + _default_builder_note(record, builder)]
    if any(v.get("status") == FAILED_AT_RUNTIME for v in record.get("variants") or []):
        lines.append("Failed at runtime: the image was built and measured (its figures are "
                     "real) but did not serve; see Runtime.")
    return lines


def _yes_no(value) -> str:
    return "–" if value is None or (isinstance(value, float) and pd.isna(value)) else ("yes" if value else "no")


def _opt_size(value) -> str:
    return "–" if value is None or pd.isna(value) else human_size(value)


def _opt_int(value) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def contents_table(df: pd.DataFrame) -> pd.DataFrame | None:
    """What ships in each image: the questions a reviewer asks after the size."""
    if "compressed_estimate_bytes" not in df or df["compressed_estimate_bytes"].isna().all():
        return None
    return pd.DataFrame({
        "Approach": [label + (STANDIN_MARK if standin else "")
                     for label, standin in zip(df["label"], df["uses_standin"])],
        "Compressed (est.)": [_opt_size(x) for x in df["compressed_estimate_bytes"]],
        "App node_modules": [
            "–" if pd.isna(b) else f"{human_size(b)} ({int(n)} pkgs)"
            for b, n in zip(df["app_node_modules_bytes"], df["app_node_modules_package_count"])],
        "devDeps shipped": [_opt_int(x) for x in df["dev_dependencies_shipped"]],
        "Source maps + .ts": [
            "–" if pd.isna(a) else human_size(a + (b or 0))
            for a, b in zip(df["source_map_bytes"], df["typescript_source_bytes"])],
        "Wasted": [_opt_size(x) for x in df["wasted_bytes"]],
        "Efficiency": ["–" if pd.isna(x) else f"{x:.1%}" for x in df["efficiency"]],
    })


def _runs_as(row: pd.Series) -> str:
    if not _measured_row(row):
        return "–"
    user = row["user"]
    if user is None or (isinstance(user, float) and pd.isna(user)):
        user = row["runtime_user"]
        if user is None or (isinstance(user, float) and pd.isna(user)):
            return "–"
    return str(user) if str(user) not in ("", "0", "root", "0:0") else "root"


def security_table(df: pd.DataFrame) -> pd.DataFrame | None:
    """Who the process runs as and what an attacker would find in the image."""
    if df.empty:
        return None
    known = df[["user", "runtime_user", "has_shell", "package_managers", "os_package_count",
                "setuid_file_count"]]
    if known.isna().all().all():
        return None
    return pd.DataFrame({
        "Approach": [label + (STANDIN_MARK if standin else "")
                     for label, standin in zip(df["label"], df["uses_standin"])],
        "Runs as": [_runs_as(r) for _, r in df.iterrows()],
        "Shell": [_yes_no(x) for x in df["has_shell"]],
        "Package managers": ["–" if x is None or pd.isna(x) else x for x in df["package_managers"]],
        "OS packages": ["–" if pd.isna(n) else f"{int(n)}" + (f" ({db})" if isinstance(db, str) and db else "")
                        for n, db in zip(df["os_package_count"], df["os_package_db"])],
        "Setuid files": [_opt_int(x) for x in df["setuid_file_count"]],
    })


CONTENTS_NOTE = ("Compressed: gzip level 6 of each layer, as a registry stores it (estimate). "
                 "Wasted: bytes of files that a later layer overwrote or deleted (the kept copy "
                 "is not counted); efficiency = visible bytes / bytes in all layers.")

SECURITY_NOTE = ("Runs as: the image's USER (root when none is set). Shell: /bin/sh exists. "
                 "Package managers: apk, dpkg, apt, npm, yarn or pnpm found on the image's PATH. "
                 "OS packages: entries in the OS package database. Setuid files: files with the "
                 "setuid or setgid bit.")


def standin_notes(record: dict) -> list[str]:
    """One footnote per stand-in base used, naming what it is instead of the real image."""
    lines = []
    for ref, res in sorted((record.get("bases") or {}).items()):
        if not res.get("standin"):
            continue
        node = f", Node.js {res['node_version']}" if res.get("node_version") else ""
        lines.append(
            f"({STANDIN_MARK}) `{ref}` could not be pulled here; a local stand-in was used: "
            f"`{res.get('used_ref')}` (recipe `{res.get('recipe')}`{node}). "
            f"{res.get('standin_description') or ''}".rstrip())
    return lines


def failure_lines(df: pd.DataFrame, record: dict | None = None) -> list[str]:
    """Variants that failed (at build or at runtime), and builds or scenarios that failed."""
    out = []
    for _, r in df.iterrows():
        if r["status"] == FAILED_AT_RUNTIME:
            error = str(r["error"] or "failed at runtime")
            error = error if error.startswith("failed at runtime") else f"failed at runtime: {error}"
            out.append(f"- `{r['name']}` {error} (its image was built and measured)")
        elif r["status"] != "ok":
            out.append(f"- `{r['name']}` failed: {r['error'] or r['status']}")
    if record is not None:
        for row in build_rows(record):
            if row.state == "failed" and row.primary:
                continue  # the variant's own failure, listed above
            if row.state in ("failed", "error"):
                what = "build" if row.state == "failed" else f"{row.scenario} builds"
                out.append(f"- `{row.name}`: the {row.builder} {what} failed: {row.reason}")
    return out


def markdown_lines(record: dict) -> list[str]:
    df = frame(record)
    if df.empty:
        return ["No variants were measured."]
    lines = [markdown_table(summary_table(df)), ""] + summary_notes(record)
    notes = standin_notes(record)
    if notes:
        lines += [""] + notes
    for section in (build_time_lines(record), context_lines(record), shipping_lines(record),
                    runtime_lines(record)):
        if section:
            lines += [""] + section
    contents = contents_table(df)
    if contents is not None:
        lines += ["", "## What ships in each image", "",
                  "Read from the layers of `docker save`:", "",
                  markdown_table(contents), "",
                  CONTENTS_NOTE]
    security = security_table(df)
    if security is not None:
        lines += ["", "## Security posture", "", markdown_table(security), "", SECURITY_NOTE]
    section = bytes_lines(record)
    if section:
        lines += [""] + section
    fails = failure_lines(df, record)
    if fails:
        lines += ["", "Failures:"] + fails
    engine = record.get("engine") or {}
    machine = record.get("machine") or {}
    lines += ["", (f"Run {record.get('run_id')} on {machine.get('hostname')} "
                   f"({machine.get('cpu_count')} CPUs), {engine_label(engine)} "
                   f"(API {engine.get('api_version')}).")]
    return lines


def _default_builder_note(record: dict, builder: str) -> str:
    """Which builder `docker build` uses on this engine, when the run timed another."""
    default = (record.get("engine") or {}).get("default_builder")
    if not default or default == builder or (default == "buildah" and builder == "classic"):
        return ""
    return (f" On this engine `docker build` uses {'BuildKit' if default == 'buildkit' else default} "
            f"by default (`--builder both` times it beside the {builder} builder).")


def _raw_values(df: pd.DataFrame) -> pd.DataFrame:
    """Integer columns of a frame whose ints pandas made floats (a missing value among them)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == float and out[col].notna().any() \
                and all(float(x).is_integer() for x in out[col].dropna()) \
                and (col.endswith(("_bytes", "_count", "_files", "_samples", "_steps_rebuilt",
                                   "_layers", "_status", "_shipped", "_present", "_dockerignore"))
                     or col in ("layer_count", "history_count", "build_steps", "file_count",
                                "pull_layers", "pull_layers_present", "steps_total",
                                "steps_cached", "steps_rebuilt", "n")):
            out[col] = out[col].astype("Int64")
    return out


def csv_text(record: dict) -> str:
    """results.csv: one row per variant."""
    buf = io.StringIO()
    _raw_values(frame(record)).to_csv(buf, index=False)
    return buf.getvalue()


BUILD_TIMES_COLUMNS = (
    "variant", "uses_standin", "builder", "measured_builder", "scenario", "state", "reason",
    "n", "median_seconds", "mad_seconds", "mean_seconds", "stdev_seconds", "min_seconds",
    "max_seconds", "spread", "noisy", "outlier_count", "outlier_indices", "steps_total",
    "steps_cached", "steps_rebuilt", "changed", "samples_seconds", "warmup_seconds")


def build_times_frame(record: dict) -> pd.DataFrame:
    """build_times.csv: one row per variant x builder x scenario, statistics and samples."""
    standins = {v["name"]: uses_standin(v) for v in record.get("variants") or []}
    rows = []
    for r in build_rows(record):
        s = r.summary
        rows.append({
            "variant": r.name, "uses_standin": standins.get(r.name, False),
            "builder": r.builder, "measured_builder": r.primary, "scenario": r.scenario,
            "state": r.state, "reason": r.reason,
            "n": s.n if s else 0,
            "median_seconds": s.median if s else None, "mad_seconds": s.mad if s else None,
            "mean_seconds": s.mean if s else None, "stdev_seconds": s.stdev if s else None,
            "min_seconds": s.min if s else None, "max_seconds": s.max if s else None,
            "spread": s.spread if s else None, "noisy": r.noisy,
            "outlier_count": len(s.outliers) if s else None,
            "outlier_indices": " ".join(str(i) for i in s.outliers) if s else "",
            "steps_total": r.steps_total, "steps_cached": r.steps_cached,
            "steps_rebuilt": r.steps_rebuilt, "changed": r.changed,
            "samples_seconds": " ".join(repr(x) for x in r.samples),
            "warmup_seconds": " ".join(repr(x) for x in r.warmup),
        })
    return pd.DataFrame(rows, columns=list(BUILD_TIMES_COLUMNS))


def build_times_csv_text(record: dict) -> str:
    buf = io.StringIO()
    _raw_values(build_times_frame(record)).to_csv(buf, index=False)
    return buf.getvalue()


def history_entries(results_dir: Path) -> list:
    """The history beside a run directory, if any (damaged lines are skipped here and
    reported by `harness history`)."""
    from harness.track.history import HISTORY_FILE, read_history

    path = results_dir / HISTORY_FILE
    return read_history(path)[0] if path.exists() else []


@dataclass
class Written:
    table: Path
    csv: Path
    chart: Path
    html: Path
    charts: list[Path]
    build_times_csv: Path | None = None


def write_report(record: dict, run_dir: Path) -> Written:
    """(Re)generate table.md, results.csv, build_times.csv, the charts and index.html."""
    from harness.report import charts
    from harness.report import html as html_report  # both render from this module's tables

    out = Written(run_dir / "table.md", run_dir / "results.csv", run_dir / "sizes.png",
                  run_dir / "index.html", [], run_dir / BUILD_TIMES_CSV)
    write_atomic(out.table, "\n".join(markdown_lines(record)) + "\n")
    write_atomic(out.csv, csv_text(record))
    write_atomic(out.build_times_csv, build_times_csv_text(record))
    for name, draw in (("sizes", charts.sizes), ("composition", charts.composition),
                       ("build_times", charts.build_times)):
        out.charts += charts.save(draw(record), run_dir / name)
    entries = history_entries(run_dir.parent)
    if entries:
        out.charts += charts.save(charts.trends(entries), run_dir / "trends")
    write_atomic(out.html, html_report.render(record, run_dir))
    return out
