"""`harness init`: the article's five variants for your own app, and a variants.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import err, fail_for, out
from harness.errors import HarnessError


def init_cmd(
    app_dir: Annotated[Path, typer.Argument(
        exists=True, file_okay=False, help="The app: package.json, a lock file, its sources.")],
    out_dir: Annotated[Path, typer.Option(
        "--out", "-o", help="Where to write the five Dockerfiles and variants.toml.")],
    force: Annotated[bool, typer.Option(
        "--force", "-f", help="Overwrite files of the same names in --out.")] = False,
) -> None:
    """Write the article's five variants adapted to APP_DIR (package manager, Node.js major,
    build output, port) and a variants.toml listing them and the app's own Dockerfiles."""
    from harness.scaffold.app import read_app
    from harness.scaffold.write import write

    try:
        app = read_app(app_dir, exclude=out_dir)
        written = write(app, out_dir, force=force)
    except HarnessError as exc:
        raise fail_for(exc) from None
    out.print(f"{app.name}: {app.manager}, Node.js {app.node_major}, build output "
              f"{app.out_dir or '(no build script)'}, port {app.port or 'not found'}",
              highlight=False, markup=False)
    for note in app.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    for rel, _ in app.dockerfiles:
        out.print(f"listed your {rel}", highlight=False, markup=False)
    out.print(f"wrote {len(written)} files to {out_dir}; next: harness run --variants-dir {out_dir}",
              highlight=False, markup=False)
