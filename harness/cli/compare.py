"""`harness compare`: differences between two runs, or two variants of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import DEFAULT_VARIANTS, VariantsDir, fail_for
from harness.errors import HarnessError


def compare_cmd(
    baseline: Annotated[Path, typer.Argument(help="A run directory (or results.json), or a variant name with --run.")],
    current: Annotated[Path, typer.Argument(help="A run directory (or results.json), or a variant name with --run.")],
    run_dir: Annotated[Path | None, typer.Option(
        "--run", help="Compare two variants of this run: BASELINE and CURRENT are variant "
                      "names.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md | json | csv")] = "md",
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
        if run_dir is not None:
            from harness import store as results

            rows = compare.compare_variants(results.load(run_dir), str(baseline), str(current),
                                            factor, alpha)
            text, lines, code = compare.FORMATS[fmt](rows), [], 0
        else:
            text, lines, code = compare.compare_main(baseline, current, fmt, check,
                                                     budgets_file or variants_dir, factor, alpha)
    except HarnessError as exc:
        raise fail_for(exc) from None
    typer.echo(text)
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)
