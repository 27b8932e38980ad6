"""`harness engines`: every engine that answers, and what it is."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import err, out
from harness.errors import ExitCode


def engines_cmd(
    engine_specs: Annotated[list[str] | None, typer.Option(
        "--engine", help="Also ask this engine: NAME=DOCKER_HOST (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """Every engine that answers: the default one, the ones `make engines` started, and each --engine; product, versions, image store, builders."""  # noqa: E501
    import json

    from harness import engine

    refs, errors, notes = engine.resolve(engine_specs)
    bad_specs = bool(errors)  # --engine values that are no NAME=DOCKER_HOST
    given = {r.name for r in refs if r.source == "given"}
    found = engine.survey(refs)
    for s in found:
        if s.error:
            # A given engine that does not answer is an error; another one, a note.
            (errors if s.ref.name in given else notes).append(s.error)
    answered = [s for s in found if s.description is not None]
    if as_json:
        typer.echo(json.dumps([engine.summary(s) for s in answered], indent=2))
    elif answered:
        _print_table(answered)
    for line in notes:
        err.print(f"[yellow]note:[/] {line}", highlight=False, soft_wrap=True)
    for line in errors:
        err.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    if bad_specs:
        raise typer.Exit(ExitCode.BAD_INPUT)
    if not answered:
        if not errors:
            err.print(f"[bold red]error:[/] no engine answers; {engine.START_HINT}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.NO_ENGINE)
    raise typer.Exit(ExitCode.FAILED if errors else ExitCode.OK)


def _print_table(answered) -> None:
    from harness.engine.survey import TABLE_COLUMNS, table_row

    table = Table(title="Engines")
    for col in TABLE_COLUMNS:
        table.add_column(col, overflow="fold")
    for s in answered:
        table.add_row(*(str(v) for v in table_row(s)))
    out.print(table)
