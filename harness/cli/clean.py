"""`harness clean`: remove what harness runs left on the engine."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.common import DEFAULT_OUT, RUN_HELP, fail_for, find_run, out
from harness.errors import HarnessError


def _run_id(value: str) -> str:
    """The id of the run `--run` names: read from its directory when there is one (its
    images may outlive it, so a bare id is taken as it is)."""
    from harness import store

    found = find_run(value, DEFAULT_OUT)
    return store.load_run(found).run_id if found is not None else value


def clean_cmd(
    run: Annotated[str | None, typer.Option(
        "--run", help=f"Remove what this run created: {RUN_HELP}.")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Remove what every run created.")] = False,
    keep_final: Annotated[bool, typer.Option(
        "--keep-final/--no-keep-final",
        help="Keep the final images harness-bench/<variant>:latest.")] = False,
) -> None:
    """Remove every container, image, network and volume labelled by a harness run."""
    from harness import engine
    from harness.engine import cleanup

    if (run is None) == (not all_runs):
        raise typer.BadParameter("give exactly one of --run RUN or --all")
    try:
        run_id = _run_id(run) if run is not None else None
        result = cleanup.remove(engine.connect(), run_id, keep_final=keep_final)
    except HarnessError as exc:
        raise fail_for(exc) from None
    for line in cleanup.summary_lines(result):
        out.print(line, highlight=False, markup=False)
    raise typer.Exit(1 if result.get("errors") else 0)
