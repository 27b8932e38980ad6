"""`harness history`: changes between consecutive runs of each variant."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.common import DEFAULT_OUT, OutDir, fail_for
from harness.errors import HarnessError


def history_cmd(
    out_dir: OutDir = DEFAULT_OUT,
    factor: Annotated[float, typer.Option(
        help="A build-time change counts only beyond this ratio of medians (and when "
             "significant).")] = 1.10,
    alpha: Annotated[float, typer.Option(
        help="Significance level of the Mann-Whitney U test on build-time samples.")] = 0.05,
    import_runs: Annotated[bool, typer.Option(
        "--import", help="First append the run directories under --out that the history "
                         "lacks.")] = False,
) -> None:
    """Changes between consecutive runs of each variant: sizes and layers exactly, build time when significant."""
    from harness.track import history

    path = out_dir / history.HISTORY_FILE
    try:
        if import_runs:
            for line in history.backfill(path, out_dir):
                typer.echo(line)
        lines, code = history.history_main(path, factor, alpha)
    except HarnessError as exc:
        raise fail_for(exc) from None
    typer.echo("\n".join(lines))
    entries = history.read_history(path)[0] if path.exists() else []
    from harness.report import writer

    try:
        written = writer.write_trends(entries, out_dir)
    except HarnessError as exc:  # the newest run's results.json is unreadable
        raise fail_for(exc) from None
    for path in written:
        typer.echo(f"wrote {path}")
    raise typer.Exit(code)
