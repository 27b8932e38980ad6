"""`harness bases`: how each base image resolves; builds the missing stand-ins."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import (
    DEFAULT_VARIANTS,
    ContextDir,
    VariantsDir,
    fail,
    fail_for,
    load,
    out,
    spinner,
)
from harness.errors import ExitCode, HarnessError


def bases_cmd(
    refs_given: Annotated[list[str] | None, typer.Argument(
        metavar="REFS", help="Base images to show (or pull, or build), e.g. node:22-slim; "
                                  "default: those the variants name.")] = None,
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    context: ContextDir = None,
    build: Annotated[bool, typer.Option("--build", help="Build the stand-ins that are missing.")] = False,
    pull: Annotated[bool, typer.Option("--pull", help="Pull the base images that are missing.")] = False,
    bases_mode: Annotated[str | None, typer.Option(
        "--bases", help="auto | pull | present (default: present; auto with --build)")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list on stdout (notes and errors on stderr).")] = False,
) -> None:
    """How each base image the variants name resolves; it only looks, unless --pull pulls the
    missing ones or --build makes the missing stand-ins."""
    from harness import engine
    from harness.bases import resolve as bases
    from harness.bases import standins
    from harness.bench import runner

    try:
        variants = [] if refs_given else load(variants_dir, context)
        client = engine.connect()
    except HarnessError as exc:
        raise fail_for(exc) from None
    if bases_mode is None:  # a show command: nothing is pulled or built unless asked
        bases_mode = "auto" if build else "pull" if pull else "present"
    refs = list(dict.fromkeys(refs_given or (r for v in variants for r in runner.plan(v).refs)))
    recipes = standins.load_recipes()
    if build and not refs_given:  # the stand-ins that have recipes, even when no variant names them
        refs += [r.stands_in_for for r in recipes.values() if r.stands_in_for not in refs]
    table = Table(title="Base images")
    for col in ("Requested", "Resolves", "Image id", "Digest", "Size", "Stand-in"):
        table.add_column(col, overflow="fold")
    missing, found = 0, []
    with _progress() as shown:
        for ref in refs:
            shown(f"resolving {ref}", True)
            res = bases.resolve(client, ref, mode=bases_mode, build=build, recipes=recipes,
                                log=lambda line, ref=ref: shown(f"{ref}: {line[:80]}", False))
            shown(f"{ref}: {res.status}" + (f" ({res.seconds:.0f} s)" if res.seconds >= 1 else ""),
                  True)
            missing += res.image_id is None
            found.append(res.to_dict())
            table.add_row(*_row(ref, res))
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    else:
        out.print(table)
    if missing:
        hint = "" if build else "; `harness bases --pull` pulls them, `--build` builds stand-ins"
        raise fail(f"{missing} base image(s) unresolved{hint}", ExitCode.FAILED)


@contextmanager
def _progress():
    """`shown(text, line)`: in a terminal a transient status line; in a log (CI) `line`
    texts as lines of their own and the others as the step a line every 30 s names, so a
    stand-in build of minutes never leaves the log silent."""
    if sys.stderr.isatty():
        with spinner() as bar:
            task = bar.add_task("resolving", total=None)
            yield lambda text, line: bar.update(task, description=text)
        return
    from harness.cli.progress import PlainProgress

    plain = PlainProgress(sys.stderr)
    try:
        yield lambda text, line: plain.note(text) if line else plain.step(text)
    finally:
        plain.close()


def _row(ref: str, res) -> tuple[str, ...]:
    from harness.report.units import human_size

    standin = (f"{res.used_ref} (recipe {res.recipe}, stands in for {ref}; "
               f"{res.standin_description})") if res.standin else "no"
    return (ref, res.status + (f" ({res.seconds:.1f} s)" if res.seconds >= 0.05 else ""),
            (res.image_id or "–").replace("sha256:", "")[:12], res.digest or "–",
            human_size(res.size_bytes) if res.size_bytes else "–",
            standin if not res.error else res.error)
