"""The command line: the typer app; each command lives in a module of its own and only
turns its options into the arguments of the code it calls."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from harness import __version__
from harness.cli.bases import bases_cmd
from harness.cli.clean import clean_cmd
from harness.cli.common import err, out
from harness.cli.compare import compare_cmd
from harness.cli.engines import engines_cmd
from harness.cli.history import history_cmd
from harness.cli.init import init_cmd
from harness.cli.listing import list_cmd
from harness.cli.merge import merge_cmd
from harness.cli.report import report_cmd
from harness.cli.run import run_cmd
from harness.errors import HarnessError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Build every Dockerfile variant of an app, measure each image, compare them.")

# In the order `harness --help` lists them.
for _name, _command in (("list", list_cmd), ("run", run_cmd), ("clean", clean_cmd),
                        ("report", report_cmd), ("bases", bases_cmd), ("engines", engines_cmd),
                        ("history", history_cmd), ("compare", compare_cmd),
                        ("merge", merge_cmd), ("init", init_cmd)):
    app.command(_name)(_command)


def _version(value: bool) -> None:
    if value:
        out.print(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Which Dockerfile should I ship? Measure them all."""


def main() -> None:
    try:
        app()
    except HarnessError as exc:  # a domain error that escaped a command: still one line
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
