"""`harness clean`: remove what harness runs left on the engine."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.common import fail_for, out
from harness.errors import HarnessError


def clean_cmd(
    run_id: Annotated[str | None, typer.Option(
        "--run", help="Remove what this run id created (see results/<run>/results.json).")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Remove what every run created.")] = False,
    keep_final: Annotated[bool, typer.Option(
        "--keep-final/--no-keep-final",
        help="Keep the final images harness-bench/<variant>:latest.")] = False,
) -> None:
    """Remove every container, image, network and volume labelled by a harness run."""
    from harness import engine
    from harness.engine import cleanup

    if (run_id is None) == (not all_runs):
        raise typer.BadParameter("give exactly one of --run ID or --all")
    try:
        result = cleanup.remove(engine.connect(), run_id, keep_final=keep_final)
    except HarnessError as exc:
        raise fail_for(exc) from None
    for line in cleanup.summary_lines(result):
        out.print(line, highlight=False, markup=False)
    raise typer.Exit(1 if result.get("errors") else 0)
