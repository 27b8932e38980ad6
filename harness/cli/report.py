"""`harness report`: regenerate a run's outputs from its results.json."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.common import DEFAULT_OUT, RUN_HELP, fail_for, out, run_path
from harness.errors import HarnessError


def report_cmd(
    run: Annotated[str | None, typer.Argument(help=f"A run: {RUN_HELP} (default: results/latest).")] = None,
) -> None:
    """Regenerate a run's table.md, report.md, CSVs, charts and index.html from its results.json; print report.md. Needs no engine."""  # noqa: E501
    from harness import store as results
    from harness.report.markdown import markdown_lines
    from harness.report.writer import write_outputs

    run_dir = run_path(run, DEFAULT_OUT) if run is not None else DEFAULT_OUT / "latest"
    try:
        record = results.load_run(run_dir)
    except HarnessError as exc:
        raise fail_for(exc) from None
    target = run_dir if run_dir.is_dir() else run_dir.parent
    written = write_outputs(record, target)
    out.print("\n".join(markdown_lines(record)), highlight=False, markup=False)
    out.print()
    for path in (written.table, written.report, written.csv, written.build_times_csv, *written.charts, written.html):
        out.print(f"wrote {path}", highlight=False)
