"""Runs in (the typed model, harness.model), tables out. Never touches Docker.

Formatting functions return text, lines or DataFrames of text and print nothing; the files
are written by harness.report.writer. The sections live in their own modules (build_tables:
build times and context; image_tables: shipping, runtime and where the bytes go;
formatting: what a variant's result holds); this one holds the summary, what ships and the
security posture, the CSV files, and puts table.md and report.md together.

table.md is the article's table alone (with its notes, stand-ins and engine). What
report.md (and index.html, from the same functions) shows, in order:

- the verdict: the variant to ship and why, and the best variant at each thing;
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

import pandas as pd

from harness.analysis.sizes import STORE_NOTES, engine_label, mb, store_kind
from harness.model import (
    FAILED_AT_RUNTIME,
    MEASURED,
    RUNNING,
    Attribution,
    Build,
    Contents,
    Registry,
    Run,
    RuntimeCheck,
    VariantResult,
)
from harness.report.build_tables import (
    SCENARIOS,
    build_rows,
    build_time_lines,
    builds,
    context_lines,
    scenario_tables,
    variant_build_rows,
)
from harness.report.engines import engine_lines
from harness.report.formatting import (
    STANDIN_MARK,
    contents_of,
    estimate_error_pct,
    exact_compressed,
    final_base,
    label_of,
    markdown_table,
    package_managers,
    run_of,
    short_ref,
    uses_standin,
)
from harness.report.image_tables import bytes_lines, runtime_lines, serving, shipping_lines
from harness.report.units import human_seconds, human_size
from harness.report.verdict import verdict_lines
from harness.stats import summarize

# ---------------------------------------------------------------------------- the frame


def _scenario_columns(run: Run) -> list[str]:
    found = [s for v in run.variants for _, primary, build in builds(run, v)
             if primary for s in scenario_tables(run, build)]
    return list(SCENARIOS) + [s for s in dict.fromkeys(found) if s not in SCENARIOS]


def _scenario_figures(run: Run, variant: VariantResult, scenarios: list[str]) -> dict:
    by_scenario = {r.scenario: r for r in variant_build_rows(run, variant) if r.primary}
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


def _identity(run: Run, v: VariantResult) -> dict:
    build = v.build
    base = final_base(v)
    return {
        "name": v.name,
        "label": label_of(v),
        "status": v.status,
        "error": v.error,
        "builder": v.builder or (build.builder if build else None) or run.settings.builder
        or "classic",
        "base_image": (base.requested if base else None) or "",
        "base_standin": bool(base and base.standin),
        "uses_standin": uses_standin(v),
    }


def _image_figures(v: VariantResult) -> dict:
    image = v.image
    size = image.size_bytes if image else None
    base = final_base(v)
    base_size = base.size_bytes if base else None
    return {
        "image_id": image.id if image else None,
        "size_bytes": size,
        "layer_count": image.layer_count if image else None,
        "history_count": image.history_count if image else None,
        "base_size_bytes": base_size,
        "added_bytes": (size - base_size) if size is not None and base_size is not None else None,
    }


def _build_figures(build: Build | None) -> dict:
    build = build or Build()
    samples = build.samples_seconds
    summary = summarize(samples)
    return {
        "build_samples": len(samples),
        "build_seconds_median": summary.median if summary else None,
        "build_seconds_mad": summary.mad if summary else None,
        "build_seconds_min": summary.min if summary else None,
        "build_seconds_max": summary.max if summary else None,
        "build_steps": build.steps_total,
        "context_bytes": build.context_bytes,
        "context_files": build.context_files,
        "context_seconds": build.context_seconds,
        "context_bytes_without_dockerignore": build.context_bytes_without_dockerignore,
        "context_files_without_dockerignore": build.context_files_without_dockerignore,
    }


def _contents_figures(v: VariantResult) -> dict:
    """What the layer analysis found, None throughout when it did not run or failed."""
    c = contents_of(v)
    known = c is not None
    c = c or Contents()
    return {
        "user": v.image.user if v.image else None,
        "compressed_estimate_bytes": c.compressed_estimate_bytes,
        "file_count": c.file_count,
        "files_bytes": c.files_bytes,
        "wasted_bytes": c.wasted_bytes,
        "efficiency": c.efficiency,
        "duplicate_bytes": c.duplicate_bytes,
        "app_node_modules_bytes": c.app_node_modules_bytes,
        "app_node_modules_package_count": c.app_node_modules_package_count,
        "source_map_bytes": c.source_map_bytes,
        "typescript_source_bytes": c.typescript_source_bytes,
        "has_shell": c.has_shell,
        "os_package_count": c.os_package_count,
        "os_package_db": c.os_package_db,
        "dev_dependencies_shipped": len(c.dev_dependencies_present) if known else None,
        "setuid_file_count": len(c.setuid_files) if known else None,
        "package_managers": package_managers(c if known else None),
    }


def _registry_figures(v: VariantResult) -> dict:
    reg = v.registry or Registry()
    return {
        "compressed_size_bytes": exact_compressed(v),
        "compressed_estimate_error_pct": estimate_error_pct(v),
        "push_seconds": reg.push_seconds,
        "pull_seconds": reg.pull_seconds,
        "pull_layers_present": reg.pull_layers_present,
        "pull_layers": reg.pull_layers,
        "image_removed_before_pull": reg.image_removed_before_pull,
        "cold_pull_seconds": reg.cold_pull_seconds,
        "cold_pull_error": reg.cold_pull_error,
        "registry_error": reg.error,
    }


def _runtime_figures(v: VariantResult, state: tuple[str, str | None] | None) -> dict:
    rt = v.runtime or RuntimeCheck(status="")
    started = v.runtime is not None
    return {
        "runtime_status": rt.status if started else None,
        "runtime_error": rt.error,
        "seconds_to_healthy": rt.seconds_to_healthy,
        "idle_memory_bytes": rt.idle_memory_bytes,
        "memory_basis": rt.memory_basis,
        "root_status": rt.root_status,
        "root_content_type": rt.root_content_type,
        "runtime_user": rt.user,
        "get_root_vs_reference": state[0] if state else None,
        "get_root_difference": state[1] if state else None,
    }


def _attribution_figures(v: VariantResult) -> dict:
    att = v.attribution or Attribution()
    split = att.split
    return {
        "split_base_bytes": split.base_bytes if split else None,
        "split_dependencies_bytes": split.dependencies_bytes if split else None,
        "split_app_bytes": split.app_bytes if split else None,
        "split_other_bytes": split.other_bytes if split else None,
        "empty_history_count": att.empty_history_count,
    }


def frame(run: Run) -> pd.DataFrame:
    """One row per variant, in the run's order, raw numbers with units in their names."""
    scenarios = _scenario_columns(run)
    states = serving(run)
    rows = [{**_identity(run, v), **_image_figures(v), **_build_figures(v.build),
             **_contents_figures(v), **_registry_figures(v),
             **_runtime_figures(v, states.get(v.name)), **_attribution_figures(v),
             **_scenario_figures(run, v, scenarios)}
            for v in run.variants]
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
    if row["status"] == RUNNING:
        return "running"
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


def summary_notes(run: Run) -> list[str]:
    """The notes under the summary table (markdown; the HTML page renders the same text)."""
    builder = run.settings.builder
    others = [b for b in run.settings.builders or [] if b != builder]
    lines = [*size_lines(run),
             f"Build time: cold builds (no cache, base images already present) with the "
             f"{builder} builder, median ± MAD of the samples"
             + (f" (the {', '.join(others)} builder{'s' if len(others) > 1 else ''} and every "
                "scenario: see the build-time table)" if others else "") + ". "
             "\"Added to base\" is the final size minus the size of the runtime stage's base image."
             + _default_builder_note(run, builder)]
    running = [f"`{v.name}`" for v in run.variants if v.status == RUNNING]
    if running:
        lines.append(f"Still running: {', '.join(running)} (the run is in progress, or its "
                     "process ended before the record was closed: `harness run --resume` "
                     "completes it).")
    if any(v.status == FAILED_AT_RUNTIME for v in run.variants):
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


def standin_notes(run: Run) -> list[str]:
    """One footnote per stand-in base used, naming what it is instead of the real image."""
    lines = []
    for ref, res in sorted(run.bases.items()):
        if not res.standin:
            continue
        node = f", Node.js {res.node_version}" if res.node_version else ""
        lines.append(
            f"({STANDIN_MARK}) `{ref}` could not be pulled here; a local stand-in was used: "
            f"`{res.used_ref}` (recipe `{res.recipe}`{node}). "
            f"{res.standin_description or ''}".rstrip())
    return lines


def failure_lines(df: pd.DataFrame, run: Run | None = None) -> list[str]:
    """Variants that failed (at build or at runtime), and builds or scenarios that failed."""
    out = []
    for _, r in df.iterrows():
        if r["status"] == FAILED_AT_RUNTIME:
            error = str(r["error"] or "failed at runtime")
            error = error if error.startswith("failed at runtime") else f"failed at runtime: {error}"
            out.append(f"- `{r['name']}` {error} (its image was built and measured)")
        elif r["status"] not in ("ok", RUNNING):
            out.append(f"- `{r['name']}` failed: {r['error'] or r['status']}")
    if run is not None:
        for row in build_rows(run):
            if row.state == "failed" and row.primary:
                continue  # the variant's own failure, listed above
            if row.state in ("failed", "error"):
                what = "build" if row.state == "failed" else f"{row.scenario} builds"
                out.append(f"- `{row.name}`: the {row.builder} {what} failed: {row.reason}")
    return out


def table_lines(record: Run | dict) -> list[str]:
    """table.md, as lines: the article's table alone, with what its figures mean, the
    stand-ins it was measured on and the engine (an entry point: a results.json dict is
    read as the model)."""
    run = run_of(record).primary()
    df = frame(run)
    if df.empty:
        return ["No variants were measured."]
    return _article_table(run, df) + ["", run_line(run)]


def _article_table(run: Run, df: pd.DataFrame) -> list[str]:
    """The article's table, what its figures mean and the stand-ins it was measured on:
    table.md's body, and report.md's first section."""
    lines = [markdown_table(summary_table(df)), ""] + summary_notes(run)
    notes = standin_notes(run)
    return lines + ([""] + notes if notes else [])


def markdown_lines(record: Run | dict) -> list[str]:
    """report.md, as lines: the verdict, then the article's table and every section of the
    page (an entry point: a results.json dict is read as the model)."""
    full = run_of(record)
    run = full.primary()  # the tables keyed by variant: one row per variant
    df = frame(run)
    if df.empty:
        return ["No variants were measured."]
    lines = [f"# Which Dockerfile to ship: run {run.run_id}", "", *verdict_lines(run), "",
             "## Sizes", "", *_article_table(run, df)]
    for section in (engine_lines(full), build_time_lines(run), context_lines(run), shipping_lines(run),
                    runtime_lines(run)):
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
    section = bytes_lines(run)
    if section:
        lines += [""] + section
    fails = failure_lines(df, run)
    if fails:
        lines += ["", "Failures:"] + fails
    lines += ["", run_line(run)]
    return lines


def run_line(run: Run) -> str:
    """The last line of table.md: which run, on which machine and engine."""
    return (f"Run {run.run_id} on {run.machine.hostname} ({run.machine.cpu_count} CPUs), "
            f"{engine_label(run.engine)} (API {run.engine.api_version}).")


def size_lines(run: Run) -> list[str]:
    """What "Final size" means and what this engine's own figures would have shown."""
    kind = store_kind(run.engine)
    lines = [("Final size: the bytes of the files in the image's layers, uncompressed, the same on "
              "every engine (what `docker images` shows on Docker's overlay2 store), in SI units "
              f"(1 MB = 1,000,000 bytes). Measured on {engine_label(run.engine)}.")]
    images = [(v.label or v.name, v.image) for v in run.variants if v.image is not None]
    differ = [(label, image) for label, image in images
              if image.listed_size_bytes not in (None, image.size_bytes)]
    if kind != "graph" or differ:
        shown = ", ".join(f"{label} {mb(image.listed_size_bytes)} (final size {mb(image.size_bytes)})"
                          for label, image in differ[:3])
        lines.append(f"On this engine {STORE_NOTES[kind]}" + (f": {shown}." if shown else "."))
    if any(image.size_basis not in (None, "layers", "inspect") for _, image in images):
        lines.append("A size marked by its basis was not read from the layers (the layer analysis "
                     "failed or was off): it is this engine's own figure.")
    return lines


def _default_builder_note(run: Run, builder: str) -> str:
    """Which builder `docker build` uses on this engine, when the run timed another."""
    default = run.engine.default_builder
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


def csv_text(run: Run) -> str:
    """results.csv: one row per variant."""
    buf = io.StringIO()
    _raw_values(frame(run)).to_csv(buf, index=False)
    return buf.getvalue()


BUILD_TIMES_COLUMNS = (
    "variant", "uses_standin", "builder", "measured_builder", "scenario", "state", "reason",
    "n", "median_seconds", "mad_seconds", "mean_seconds", "stdev_seconds", "min_seconds",
    "max_seconds", "spread", "noisy", "outlier_count", "outlier_indices", "steps_total",
    "steps_cached", "steps_rebuilt", "changed", "samples_seconds", "warmup_seconds")


def build_times_frame(run: Run) -> pd.DataFrame:
    """build_times.csv: one row per variant x builder x scenario, statistics and samples."""
    standins = {v.name: uses_standin(v) for v in run.variants}
    rows = []
    for r in build_rows(run):
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


def build_times_csv_text(run: Run) -> str:
    buf = io.StringIO()
    _raw_values(build_times_frame(run)).to_csv(buf, index=False)
    return buf.getvalue()

