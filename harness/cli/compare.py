"""`harness compare`: differences between two runs, or two variants of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import (
    DEFAULT_OUT,
    DEFAULT_VARIANTS,
    RUN_HELP,
    VariantsDir,
    fail_for,
    run_path,
)
from harness.errors import HarnessError


def compare_cmd(
    baseline: Annotated[str, typer.Argument(help=f"A run: {RUN_HELP}; or a variant name with --run.")],
    current: Annotated[str, typer.Argument(help=f"A run: {RUN_HELP}; or a variant name with --run.")],
    run: Annotated[str | None, typer.Option(
        "--run", help=f"Compare two variants of this run ({RUN_HELP}): BASELINE and CURRENT "
                      "are variant names.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md | json | csv")] = "md",
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when CURRENT breaks a budget.")] = False,
    budgets_file: Annotated[Path | None, typer.Option(
        "--budgets", help="A TOML file of [budgets.<variant>] tables (default: "
                          "variants.toml).")] = None,
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    factor: Annotated[float, typer.Option(help="Build-time ratio that counts as a change.")] = 1.10,
    alpha: Annotated[float, typer.Option(help="Significance level for build times.")] = 0.05,
) -> None:
    """A table of differences fit for a pull-request comment; with --check, a CI gate on budgets."""
    from harness.track import compare

    if fmt not in ("md", "json", "csv"):
        raise typer.BadParameter("must be md, json or csv", param_hint="--format")
    try:
        if run is not None:
            from harness import store as results

            rows = compare.compare_variants(results.load(run_path(run, DEFAULT_OUT)), baseline,
                                            current, factor, alpha)
            text, lines, code = compare.FORMATS[fmt](rows), [], 0
        else:
            text, lines, code = compare.compare_main(run_path(baseline, DEFAULT_OUT),
                                                     run_path(current, DEFAULT_OUT), fmt, check,
                                                     budgets_file or variants_dir, factor, alpha)
    except HarnessError as exc:
        raise fail_for(exc) from None
    typer.echo(text)
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)
