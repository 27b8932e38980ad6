"""`harness list`: the variants and whether the base images they need are present."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.common import (
    DEFAULT_VARIANTS,
    ContextDir,
    VariantsDir,
    err,
    fail,
    fail_for,
    load,
    out,
)
from harness.errors import ExitCode, HarnessError


def list_cmd(
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    context: ContextDir = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list on stdout (notes and errors on stderr).")] = False,
) -> None:
    """The variants: files, labels, targets, the base images they need and whether each is present."""
    from harness import engine
    from harness.bases import standins
    from harness.bench import runner

    try:
        variants = load(variants_dir, context)
    except HarnessError as exc:
        raise fail_for(exc) from None
    try:
        client = engine.connect()
    except HarnessError as exc:
        client = None
        err.print(f"[yellow]note:[/] {exc}; base presence unknown", highlight=False)
    recipes = standins.load_recipes()
    table = Table(title=f"Variants in {variants_dir}")
    for col in ("#", "Name", "Approach", "Dockerfile", "Target", "Base images"):
        table.add_column(col)
    broken, rows = [], []
    for i, v in enumerate(variants, 1):
        p = runner.plan(v)
        if p.problem:
            broken.append(f"{v.name}: {p.problem}")
        bases = {ref: _presence(client, ref, recipes) for ref in dict.fromkeys(p.refs)}
        rows.append({"name": v.name, "label": v.label, "dockerfile": str(v.dockerfile),
                     "context": str(v.context), "target": v.target, "in_manifest": v.in_manifest,
                     "bases": bases, "problem": p.problem})
        bases_text = p.problem or "\n".join(
            f"{ref} ({presence})" for ref, presence in bases.items()) or "scratch"
        table.add_row(str(i), v.name + ("" if v.in_manifest else " (discovered)"), v.label,
                      v.dockerfile.name, v.target or "(last stage)", bases_text)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        out.print(table)
    if broken:  # each named, then a non-zero exit: a script can stop before a long bench
        for line in broken:
            err.print(f"[bold red]error:[/] {line}", highlight=False)
        raise fail(f"{len(broken)} variant(s) cannot be built", ExitCode.FAILED)


def _presence(client, ref: str, recipes) -> str:
    from docker.errors import ImageNotFound

    from harness.bases import families, standins

    if client is None:
        return "unknown"
    try:
        client.api.inspect_image(ref)
        return "present"
    except ImageNotFound:
        pass
    recipe, why_not = families.find(recipes, ref)
    if recipe is None:
        return f"missing, {why_not}"
    return "stand-in present" if standins.existing_standin(client, recipe) else "missing; stand-in can be built"
