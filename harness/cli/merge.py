"""`harness merge`: one run from the runs of several shards, engines or machines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import DEFAULT_OUT, RUN_HELP, OutDir, err, fail, find_run, out
from harness.errors import ExitCode, HarnessError
from harness.model import HistoryEntry

RunsArg = Annotated[list[str], typer.Argument(
    help=f"The runs: each {RUN_HELP}, or a results directory (its newest run).",
    show_default=False)]
ForceOpt = Annotated[bool, typer.Option(
    "--force", "-f", help="Merge runs of different harness versions, Dockerfiles or base "
                          "images anyway (each difference is printed).")]


def merge_cmd(runs: RunsArg, out_dir: OutDir = DEFAULT_OUT, force: ForceOpt = False) -> None:
    """Merge runs into one (shards of a CI matrix, engines, machines): it renders, enters the history and checks budgets like any other run. Needs no engine."""  # noqa: E501
    from harness import store
    from harness.bench import merge
    from harness.report.writer import write_outputs

    parts = [_load(value) for value in runs]
    problems = merge.problems(parts, force=force)
    if problems:
        for line in problems[1:]:
            err.print(f"[bold red]error:[/] {line}", highlight=False)
        hint = "" if force or merge.problems(parts, force=True) else "; --force merges anyway"
        raise fail(problems[0] + hint, ExitCode.BAD_INPUT)
    for line in merge.problems(parts):  # what --force let through
        err.print(f"[yellow]note:[/] merged anyway: {line}", highlight=False)
    now = store.utc_now()
    run_dir = store.new_run_dir(out_dir, now)
    created = min(p.created_utc for p in parts)
    merged = merge.merge(parts, run_id=run_dir.name, created_utc=created,
                         order=_planned(parts))
    store.save(run_dir, merged)
    store.append_history(out_dir / store.HISTORY_FILE,
                         [HistoryEntry.of(merged, v) for v in merged.primary().variants])
    written = write_outputs(merged, run_dir)
    store.point_latest(out_dir, run_dir)
    rows = len(merged.variants)
    out.print(f"merged {len(parts)} runs ({', '.join(p.run_id for p in parts)}): {rows} rows "
              f"on {len(merged.engine_names())} engine(s)", highlight=False)
    for path in (run_dir / store.RESULTS_FILE, written.table, written.report, written.html):
        out.print(f"wrote {path}", highlight=False)
    out.print(f"latest -> {out_dir / 'latest'}", highlight=False)
    failed = any(v.status != "ok" for v in merged.variants)
    raise typer.Exit(ExitCode.FAILED if failed else ExitCode.OK)


def _load(value: str):
    """The run `value` names; a results directory stands for its newest run."""
    from harness import store

    path = find_run(value)
    if path is None:
        raise fail(f"no run {value}: not a directory, nor a run id under {DEFAULT_OUT}/")
    if path.is_dir() and not (path / store.RESULTS_FILE).is_file():
        newest = _newest_run(path)
        if newest is None:
            raise fail(f"{value}: no results.json there, nor a run directory holding one")
        path = newest
    try:
        return store.load_run(path)
    except HarnessError as exc:
        raise fail(str(exc)) from None


def _newest_run(results_dir: Path) -> Path | None:
    latest = results_dir / "latest"
    if (latest / "results.json").is_file():
        return latest
    runs = sorted(p for p in results_dir.iterdir() if (p / "results.json").is_file())
    return runs[-1] if runs else None


def _planned(parts) -> list[str]:
    """Every variant the parts were asked to measure, in the order they were planned."""
    names: list[str] = []
    for p in parts:
        names += p.settings.planned or []
    return list(dict.fromkeys(names))
