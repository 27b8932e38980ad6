"""A run over several engines (`harness run --engine NAME=HOST ...`): each engine measures its
jobs as a run of its own, under the run directory's `engines/NAME/`, and the parts are merged
into the one run the reports read (`harness.bench.merge`), as `harness merge` merges shards.

`compare`: every variant on every engine, one engine after the other, so no two builds
share the machine's cores and build times stay comparable per variant. `spread`: each
variant on one engine, the engines at once, to finish sooner; build times are then compared
only between rows of the same engine (the report groups them so).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import store
from harness.bench import merge, runner
from harness.bench.engine_port import DockerEngine
from harness.bench.options import RunOptions
from harness.bench.shards import Job
from harness.bench.variants import Variant
from harness.engine.client import ENGINE_ERRORS, first_line
from harness.errors import HarnessError
from harness.model import HistoryEntry, Run

COMPARE, SPREAD = "compare", "spread"
MODES = (COMPARE, SPREAD)
PARTS_DIR = "engines"  # <run>/engines/<name>/<part run>/results.json


@dataclass(frozen=True)
class Target:
    """An engine a run measures on: its name and DOCKER_HOST (None: the default one)."""
    name: str
    host: str | None = None


@dataclass
class Part:
    """One engine's share of the run: its run, or why it could not be measured."""
    target: Target
    run: Run | None = None
    error: str | None = None


class PrefixProgress:
    """Another engine's progress in the same stream: every line says which engine."""

    def __init__(self, inner: runner.Progress, name: str):
        self.inner, self.name = inner, name

    def variant(self, name, index, total, repetition, repeat, scenario=None) -> None:
        self.inner.variant(f"{self.name}: {name}", index, total, repetition, repeat, scenario)

    def step(self, text: str) -> None:
        self.inner.step(text)

    def note(self, text: str) -> None:
        self.inner.note(f"{self.name}: {text}")

    def finished(self, name: str, ok: bool, detail: str) -> None:
        self.inner.finished(f"{self.name}: {name}", ok, detail)


Connect = Callable[[Target], object]  # a client of the target's engine, or EngineUnavailable
ProgressFor = Callable[[Target], runner.Progress]


def execute(targets: Sequence[Target], jobs: Sequence[Job], variants: Sequence[Variant],
            opts: RunOptions, mode: str, connect: Connect,
            progress_for: ProgressFor) -> tuple[Path, Run, int]:
    """Measure `jobs` (variant on engine) and merge them into one run under `opts.out`.

    An engine that stops answering loses only its own remaining jobs: what every engine
    measured is kept, and the run exits 1."""
    now = store.utc_now()
    run_dir = store.new_run_dir(opts.out, now)
    parts = _measure_parts(_work(targets, jobs, variants), run_dir, opts, mode, connect,
                           progress_for)
    measured = [p.run for p in parts if p.run is not None]
    errors = [p.error for p in parts if p.error]
    if not measured:
        raise HarnessError("; ".join(errors) or "nothing measured")
    merged = _merged(measured, run_dir, now, opts, mode)
    store.save(run_dir, merged)
    store.append_history(opts.out / store.HISTORY_FILE,
                         [HistoryEntry.of(merged, v) for v in merged.primary().variants])
    failed = bool(errors) or any(v.status != "ok" for v in merged.variants)
    return run_dir, merged, int(failed)


def _work(targets: Sequence[Target], jobs: Sequence[Job],
          variants: Sequence[Variant]) -> list[tuple[Target, list[Variant]]]:
    """Each engine with work, and its variants in the run's order."""
    by_name = {v.name: v for v in variants}
    work = [(t, [by_name[j.variant] for j in jobs if j.engine == t.name]) for t in targets]
    return [(t, vs) for t, vs in work if vs]


def _measure_parts(work, run_dir: Path, opts: RunOptions, mode: str, connect: Connect,
                   progress_for: ProgressFor) -> list[Part]:
    """compare: one engine after the other; spread: the engines at once."""
    def one(pair: tuple[Target, list[Variant]]) -> Part:
        return _measure_part(*pair, run_dir, opts, mode, connect, progress_for)

    if mode == SPREAD and len(work) > 1:
        with ThreadPoolExecutor(max_workers=len(work)) as pool:
            return list(pool.map(one, work))
    return [one(pair) for pair in work]


def _measure_part(target: Target, chosen: list[Variant], run_dir: Path, opts: RunOptions,
                  mode: str, connect: Connect, progress_for: ProgressFor) -> Part:
    """One engine's share, as a run of its own under the run directory."""
    part_opts = dataclasses.replace(
        opts, out=run_dir / PARTS_DIR / target.name,
        selection=dataclasses.replace(opts.selection, names=tuple(v.name for v in chosen)),
        # A part is a run of one engine: `--resume PART` completes it there.
        engines=(f"{target.name}={target.host}",), engines_mode=None,
        cold_pull=opts.cold_pull and mode == COMPARE)  # one empty engine per machine
    try:
        client = connect(target)
        port = DockerEngine(client, host=target.host, name=target.name)
        _, part, _ = runner.execute(client, chosen, part_opts, progress_for(target), port=port)
    except (HarnessError, *ENGINE_ERRORS) as exc:  # an engine that died: keep what it measured
        why = str(exc) if isinstance(exc, HarnessError) else first_line(exc)
        return Part(target, _newest_part(part_opts.out), f"engine {target.name}: {why}")
    return Part(target, part)


def _merged(parts: list[Run], run_dir: Path, now, opts: RunOptions, mode: str) -> Run:
    if len(parts) == 1:
        one = merge.stamped(parts[0])
        merged = dataclasses.replace(one, run_id=run_dir.name, merged_from=[one.run_id])
    else:
        merged = merge.merge(parts, run_id=run_dir.name,
                             created_utc=now.isoformat(timespec="seconds"),
                             order=list(opts.planned))
    settings = dataclasses.replace(merged.settings, engines_mode=mode, shard=opts.shard,
                                   planned=list(opts.planned) or None,
                                   names=list(opts.selection.names) or None)
    return dataclasses.replace(merged, settings=settings)


def _newest_part(out: Path) -> Run | None:
    """What an engine measured before it failed: its part's results.json, if any."""
    try:
        newest = sorted(p for p in out.iterdir() if (p / store.RESULTS_FILE).is_file())
    except OSError:
        return None
    if not newest:
        return None
    try:
        return store.load_run(newest[-1])
    except HarnessError:
        return None

