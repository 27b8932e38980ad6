"""What every command shares: the consoles, option types, defaults and error exits."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from harness.errors import EngineUnavailable, ExitCode, HarnessError

# Relative to where the command runs, like any tool installed with pip: a checkout's
# `make bench` runs in its root, a team's project in its own.
DEFAULT_VARIANTS = Path("variants")
DEFAULT_OUT = Path("results")

# Piped output (CI logs, files) gets room for wide tables instead of rich's 80 columns, and
# no hard wrapping: `harness report RUN > report.md` keeps each table row on one line.
out = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160,
              soft_wrap=not sys.stderr.isatty())

VariantsDir = Annotated[Path, typer.Option(
    "--variants-dir", "-d", help="Directory of Dockerfiles (+ optional variants.toml).")]
ContextDir = Annotated[Path | None, typer.Option(
    "--context", "-c", help="Build context for every variant (default: the manifest's, else "
                            "../sample_app).")]
OutDir = Annotated[Path, typer.Option(
    "--out", "-o", help="The results directory: run directories and history.jsonl.")]
# `--run RUN` in every command: a run directory (or its results.json), or a run id, found
# under ./results.
RUN_HELP = "a run directory (or its results.json), or a run id under ./results"


def find_run(value: str | Path, out_dir: Path = DEFAULT_OUT) -> Path | None:
    """The run directory (or results.json) that `value` names, or None when there is none."""
    path = Path(value)
    if path.exists():
        return path
    under = out_dir / str(value)
    return under if (under / "results.json").is_file() else None


def run_path(value: str | Path, out_dir: Path = DEFAULT_OUT) -> Path:
    """Like find_run, for a command that needs the run: no such run is bad input (exit 2)."""
    found = find_run(value, out_dir)
    if found is None:
        raise fail(f"no run {value}: not a directory, nor a run id under {out_dir}/")
    return found


def fail(message: str, code: int = ExitCode.BAD_INPUT) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(int(code))


def fail_for(exc: HarnessError) -> typer.Exit:
    """The one-line error of a HarnessError: no engine (4), else bad input (2)."""
    return fail(str(exc), ExitCode.NO_ENGINE if isinstance(exc, EngineUnavailable)
                else ExitCode.BAD_INPUT)


def spinner() -> Progress:
    """A transient status line on stderr: what is being done, and for how long."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=err, transient=True)


def load_warned(variants_dir: Path, context: Path | None, names: list[str] | None = None):
    """The variants selected, and (kept for the settings a run records) no warnings: the
    manifest is read strictly, so a bad one is a HarnessError before anything is built."""
    from harness.bench.variants import load_variants_strict, select

    if context is not None and not context.is_dir():
        raise HarnessError(f"--context {context}: no such directory")
    return select(load_variants_strict(variants_dir, context), names or []), []


def load(variants_dir: Path, context: Path | None, names: list[str] | None = None):
    return load_warned(variants_dir, context, names)[0]
