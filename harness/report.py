"""Records in, tables and charts out. Never touches Docker.

Formatting functions return text or lines and print nothing; `write_report` is the
only function here that writes files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .results import write_atomic
from .stats import summarize

SIZE_UNIT_NOTE = ("Sizes are uncompressed, as `docker images` shows them, in SI units "
                  "(1 MB = 1,000,000 bytes).")
STANDIN_MARK = "*"


def human_size(n: float | None) -> str:
    """SI units with three significant digits, like `docker images` (1 kB = 1000 B)."""
    if n is None or pd.isna(n):
        return "–"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if abs(n) >= 1 else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.3g} TB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None or pd.isna(s):
        return "–"
    if s < 10:
        return f"{s:.2f} s"
    if s < 100:
        return f"{s:.1f} s"
    return f"{s:.0f} s"


def final_base(variant: dict) -> dict | None:
    """The FROM of the stage the image ends with (its runtime base)."""
    froms = variant.get("froms") or []
    final = [f for f in froms if f.get("final")]
    return final[-1] if final else (froms[-1] if froms else None)


def short_ref(ref: str) -> str:
    """How the article names bases: drop the registry host of non-Docker-Hub images."""
    parts = ref.split("/")
    if len(parts) > 2 and ("." in parts[0] or ":" in parts[0]):
        return "/".join(parts[1:])
    return ref


# Figures from the layer analysis (harness/layers.py) carried into the table and CSV.
CONTENT_COLUMNS = ("compressed_estimate_bytes", "file_count", "files_bytes", "wasted_bytes",
                   "efficiency", "duplicate_bytes", "app_node_modules_bytes",
                   "app_node_modules_package_count", "source_map_bytes",
                   "typescript_source_bytes", "has_shell", "os_package_count")


def frame(record: dict) -> pd.DataFrame:
    """One row per variant, in the run's order, raw numbers with units in their names."""
    rows = []
    for v in record.get("variants", []):
        image = v.get("image") or {}
        build = v.get("build") or {}
        samples = build.get("samples_seconds") or []
        summary = summarize(samples)
        base = final_base(v) or {}
        uses_standin = any(f.get("standin") for f in v.get("froms") or [])
        size = image.get("size_bytes")
        base_size = base.get("size_bytes")
        contents = v.get("contents") or {}
        rows.append({
            "name": v["name"],
            "label": v.get("label") or v["name"],
            "status": v.get("status"),
            "error": v.get("error"),
            "base_image": base.get("requested") or base.get("stage_base") or "",
            "base_standin": bool(base.get("standin")),
            "uses_standin": uses_standin,
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
            "user": image.get("user") if image else None,
            **{key: contents.get(key) for key in CONTENT_COLUMNS},
            "dev_dependencies_shipped": (len(contents["dev_dependencies_present"])
                                         if "dev_dependencies_present" in contents else None),
            "setuid_file_count": (len(contents["setuid_files"])
                                  if "setuid_files" in contents else None),
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        first = df["size_bytes"].iloc[0]
        df["saved_vs_first"] = [
            (1 - s / first) if first and s is not None and not pd.isna(s) else None
            for s in df["size_bytes"]
        ]
    return df


def _base_cell(row: pd.Series) -> str:
    ref = short_ref(row["base_image"]) if row["base_image"] else "–"
    return ref + (STANDIN_MARK if row["base_standin"] or row["uses_standin"] else "")


def _size_cell(row: pd.Series) -> str:
    if row["status"] != "ok":
        return "**failed**"
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
    if row["status"] != "ok" or saved is None or pd.isna(saved):
        return "–"
    if index == 0:
        return "baseline"
    return f"−{saved:.0%}" if saved >= 0 else f"+{-saved:.0%}"


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """The article's table (Approach, Base Image, Final Size) plus what the harness adds."""
    return pd.DataFrame({
        "Approach": df["label"],
        "Base Image": df.apply(_base_cell, axis=1),
        "Final Size": df.apply(_size_cell, axis=1),
        "vs first": [_saved_cell(r, i) for i, (_, r) in enumerate(df.iterrows())],
        "Added to base": [human_size(r["added_bytes"]) if r["status"] == "ok" else "–"
                          for _, r in df.iterrows()],
        "Layers": [str(int(r["layer_count"])) if r["status"] == "ok" and not pd.isna(r["layer_count"]) else "–"
                   for _, r in df.iterrows()],
        "Build time (median)": df.apply(_time_cell, axis=1),
    })


def _yes_no(value) -> str:
    return "–" if value is None or (isinstance(value, float) and pd.isna(value)) else ("yes" if value else "no")


def _opt_size(value) -> str:
    return "–" if value is None or pd.isna(value) else human_size(value)


def contents_table(df: pd.DataFrame) -> pd.DataFrame | None:
    """What ships in each image: the questions a reviewer asks after the size."""
    if "compressed_estimate_bytes" not in df or df["compressed_estimate_bytes"].isna().all():
        return None
    return pd.DataFrame({
        "Approach": df["label"],
        "Compressed (est.)": [_opt_size(x) for x in df["compressed_estimate_bytes"]],
        "App node_modules": [
            "–" if pd.isna(b) else f"{human_size(b)} ({int(n)} pkgs)"
            for b, n in zip(df["app_node_modules_bytes"], df["app_node_modules_package_count"])],
        "devDeps shipped": ["–" if pd.isna(x) else str(int(x)) for x in df["dev_dependencies_shipped"]],
        "Source maps + .ts": [
            "–" if pd.isna(a) else human_size(a + (b or 0))
            for a, b in zip(df["source_map_bytes"], df["typescript_source_bytes"])],
        "Wasted": [_opt_size(x) for x in df["wasted_bytes"]],
        "Efficiency": ["–" if pd.isna(x) else f"{x:.1%}" for x in df["efficiency"]],
        "Runs as": ["–" if r["status"] != "ok" else (r["user"] or "root") for _, r in df.iterrows()],
        "Shell": [_yes_no(x) for x in df["has_shell"]],
        "OS packages": ["–" if pd.isna(x) else str(int(x)) for x in df["os_package_count"]],
    })


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


def failure_lines(df: pd.DataFrame) -> list[str]:
    return [f"- `{r['name']}` failed: {r['error'] or r['status']}" for _, r in df.iterrows() if r["status"] != "ok"]


def markdown_lines(record: dict) -> list[str]:
    df = frame(record)
    if df.empty:
        return ["No variants were measured."]
    settings = record.get("settings") or {}
    lines = [summary_table(df).to_markdown(index=False), "", SIZE_UNIT_NOTE]
    lines.append(
        f"Build time: cold builds (no cache, base images already present) with the "
        f"{settings.get('builder', 'classic')} builder, median ± MAD of the samples. "
        f"\"Added to base\" is the final size minus the size of the runtime stage's base image.")
    contents = contents_table(df)
    if contents is not None:
        lines += ["", "What ships in each image (read from the layers of `docker save`):", "",
                  contents.to_markdown(index=False), "",
                  "Compressed: gzip level 6 of each layer, as a registry stores it (estimate). "
                  "Wasted: bytes of files that a later layer overwrote or deleted (the kept copy "
                  "is not counted); efficiency = visible bytes / bytes in all layers."]
    notes = standin_notes(record)
    if notes:
        lines += [""] + notes
    fails = failure_lines(df)
    if fails:
        lines += ["", "Failures:"] + fails
    engine = record.get("engine") or {}
    machine = record.get("machine") or {}
    lines += ["", f"Run {record.get('run_id')} on {machine.get('hostname')} "
                  f"({machine.get('cpu_count')} CPUs), Docker Engine {engine.get('server_version')} "
                  f"(API {engine.get('api_version')}, {engine.get('storage_driver')})."]
    return lines


def csv_text(record: dict) -> str:
    df = frame(record)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def history_entries(results_dir: Path) -> list:
    """The history beside a run directory, if any (damaged lines are skipped here and
    reported by `harness history`)."""
    from .history import HISTORY_FILE, read_history

    path = results_dir / HISTORY_FILE
    return read_history(path)[0] if path.exists() else []


@dataclass
class Written:
    table: Path
    csv: Path
    chart: Path
    html: Path
    charts: list[Path]


def write_report(record: dict, run_dir: Path) -> Written:
    """(Re)generate table.md, results.csv, sizes.png and index.html from a record."""
    from . import charts, html_report  # both render from this module's tables

    out = Written(run_dir / "table.md", run_dir / "results.csv", run_dir / "sizes.png",
                  run_dir / "index.html", [])
    write_atomic(out.table, "\n".join(markdown_lines(record)) + "\n")
    write_atomic(out.csv, csv_text(record))
    for name, draw in (("sizes", charts.sizes), ("composition", charts.composition),
                       ("build_times", charts.build_times)):
        out.charts += charts.save(draw(record), run_dir / name)
    entries = history_entries(run_dir.parent)
    if entries:
        out.charts += charts.save(charts.trends(entries), run_dir / "trends")
    write_atomic(out.html, html_report.render(record, run_dir))
    return out
