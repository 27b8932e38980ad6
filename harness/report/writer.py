"""The one writer of a run's outputs: table.md (the article's table), report.md (the whole
report), results.csv, build_times.csv, the charts
(PNG and SVG) and index.html, every file replaced atomically; and of the results
directory's own trend chart, drawn from the whole history.

Each chart is drawn once, saved beside the page and embedded in it, so index.html shows
exactly the files next to it. The history (for the trend chart) is data passed in; when the
caller passes none, the one beside the run directory is read (results/<run>/ sits beside
results/history.jsonl), so every way of writing a run's outputs draws the same trends.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.model import HistoryEntry, Run
from harness.report import charts, html
from harness.report.build_tables import BUILD_TIMES_CSV
from harness.report.formatting import run_of
from harness.report.markdown import (
    build_times_csv_text,
    csv_text,
    markdown_lines,
    table_lines,
)
from harness.store import RESULTS_FILE, history_beside, load_run, write_atomic

REPORT_MD = "report.md"


@dataclass
class Written:
    table: Path
    csv: Path
    chart: Path
    html: Path
    charts: list[Path]
    build_times_csv: Path | None = None
    report: Path | None = None


def write_outputs(record: Run | dict, run_dir: Path,
                  history: list[HistoryEntry] | None = None) -> Written:
    """(Re)generate every output of the run in `run_dir`; `history` None reads the history
    beside the run directory, [] draws no trend chart. A results.json dict (of any schema
    version this harness reads) is read as the model once, here."""
    run = run_of(record)
    run_dir = Path(run_dir)
    if history is None:
        history = history_beside(run_dir)
    out = Written(run_dir / "table.md", run_dir / "results.csv", run_dir / "sizes.png",
                  run_dir / html.INDEX, [], run_dir / BUILD_TIMES_CSV, run_dir / REPORT_MD)
    write_atomic(out.table, "\n".join(table_lines(run)) + "\n")
    write_atomic(out.report, "\n".join(markdown_lines(run)) + "\n")
    write_atomic(out.csv, csv_text(run.primary()))
    write_atomic(out.build_times_csv, build_times_csv_text(run.primary()))
    entries = html.history_until(run, history)
    images: dict[str, bytes] = {}
    for chart in html.CHARTS:
        fig = chart.draw(run, entries)
        if fig is None:
            continue
        paths = charts.save(fig, run_dir / chart.name)  # PNG first, then SVG
        out.charts += paths
        images[chart.name] = paths[0].read_bytes()
    write_atomic(out.html, html.render(run, run_dir, entries, images=images))
    return out


def write_trends(history: list[HistoryEntry], results_dir: Path) -> list[Path]:
    """The trend chart of the whole history into the results directory (trends.png and
    .svg beside history.jsonl), and the newest run's outputs again so that its index.html
    shows the same trends. Nothing is written for an empty history."""
    if not history:
        return []
    results_dir = Path(results_dir)
    written = charts.save(charts.trends(history), results_dir / "trends")
    latest = results_dir / "latest"
    if (latest / RESULTS_FILE).is_file():
        written += write_outputs(load_run(latest), latest.resolve(), history).charts
    return written
