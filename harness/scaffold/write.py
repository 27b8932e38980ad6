"""variants.toml for the generated variants and the app's own Dockerfiles, and writing
the lot into the output directory (never over an existing file without force)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.bench.variants import MANIFEST, name_from_file
from harness.errors import HarnessError
from harness.scaffold.app import DEFAULT_PORT, App
from harness.scaffold.dockerfiles import render, specs
from harness.store import write_atomic


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _own_name(rel: str) -> str:
    path = Path(rel)
    return "yours" if path.name == "Dockerfile" and path.parent == Path(".") else \
        f"yours-{name_from_file(path)}"


def _check_lines(app: App, port: int | None) -> list[str]:
    """The runtime check's keys: written when the app says them, else commented and why."""
    lines = [f"port = {port}"] if port else [
        f"# port = {DEFAULT_PORT}  # not found in the app; the check uses the image's EXPOSE"]
    if app.health_path:
        lines.append(f"health_path = {_toml_str(app.health_path)}")
    else:
        lines.append('# health_path = "/healthz"  # not found in the code; set the route that '
                     'answers 200 when the app is up')
    return lines


def manifest_text(app: App, out: Path) -> str:
    """variants.toml for `out`: the five generated variants, then the app's own Dockerfiles."""
    lines = [f"# Written by `harness init` for {app.name}: {app.manager}, Node.js "
             f"{app.node_major}, build output {app.out_dir or '(no build script)'}.",
             "# The article's five variants adapted to the app, then the app's own Dockerfiles.",
             f"# Measure them: harness run --variants-dir {out}"]
    if app.notes:
        lines.append("# Not read from the app, so assumed (check these):")
        lines += [f"#   - {note}" for note in app.notes]
    lines += ["", f"context = {_toml_str(_rel(app.root, out))}"]
    for spec in specs(app):
        lines += ["", "[[variant]]", f"name = {_toml_str(spec.name)}",
                  f"label = {_toml_str(spec.label)}", f"dockerfile = {_toml_str(spec.filename)}"]
        if spec.target:
            lines.append(f"target = {_toml_str(spec.target)}")
        lines += _check_lines(app, app.port)
    for rel, expose in app.dockerfiles:
        # variants.toml reads a dockerfile path relative to this directory, outside it too.
        lines += ["", "[[variant]]", f"name = {_toml_str(_own_name(rel))}",
                  f"label = {_toml_str('yours: ' + rel)}",
                  f"dockerfile = {_toml_str(_rel(app.root / rel, out))}",
                  *_check_lines(app, expose or app.port)]
    return "\n".join(lines) + "\n"


def files_for(app: App, out: Path) -> dict[str, str]:
    return {**render(app), MANIFEST: manifest_text(app, out)}


def write(app: App, out: Path, force: bool = False) -> list[Path]:
    """Write the Dockerfiles and variants.toml into `out`; the paths written."""
    files = files_for(app, out)
    existing = [name for name in files if (out / name).exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise HarnessError(f"{out} already has {existing[0]}{more}; --force overwrites")
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out}: not a directory")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        write_atomic(out / name, text)
        written.append(out / name)
    return written
