"""One run from several: the shards of a CI matrix, the engines of one `harness run`, or
runs made on different machines. Pure: typed runs in, a typed run out.

Runs are merged only when they measured the same thing: the same harness, the same
Dockerfile for a variant, the same base images (a digest for a pulled base, the recipe for
a stand-in). Each row keeps where it was measured (`VariantResult.measured_on`); a variant
measured twice on the same engine is refused, since the merged run could not say which
row is the variant's figure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.bench.shards import DEFAULT_ENGINE
from harness.engine.runtime import same_behaviour
from harness.model import (
    NOT_CHECKED,
    BaseResolution,
    Engine,
    MeasuredOn,
    Run,
    RuntimeComparison,
    VariantResult,
)


def engine_name(run: Run) -> str:
    return run.engine.name or DEFAULT_ENGINE


def stamped(run: Run) -> Run:
    """The run with every row saying where it was measured (kept when it already does)."""
    where = MeasuredOn(engine=engine_name(run), hostname=run.machine.hostname,
                       run_id=run.run_id, shard=run.settings.shard)
    return dataclasses.replace(run, variants=[
        v if v.measured_on else dataclasses.replace(v, measured_on=where) for v in run.variants])


def problems(runs: Sequence[Run], *, force: bool = False) -> list[str]:
    """Why these runs cannot be merged, one line each (empty: they can). `force` lets an
    incomplete set of shards, other methods, harnesses, Dockerfiles and bases through; never
    a run given twice or a row measured twice."""
    return [*_fatal(runs), *([] if force else _differences(runs))]


def _identity(run: Run) -> tuple:
    """A run as itself: two shards can start in the same second (the same run id) on
    machines of the same name, but never measure the same rows."""
    return (run.run_id, run.machine.hostname, run.created_utc,
            tuple(sorted((v.name, v.engine_name or "") for v in run.variants)))


def _fatal(runs: Sequence[Run]) -> list[str]:
    out: list[str] = []
    seen: set[tuple] = set()
    for run in runs:
        if _identity(run) in seen:
            out.append(f"run {run.run_id} is given twice (a run cannot be merged with itself)")
        seen.add(_identity(run))
    rows: dict[tuple[str, str], str] = {}
    for run in map(stamped, runs):
        for v in run.variants:
            key = (v.name, v.engine_name or DEFAULT_ENGINE)
            if key in rows and rows[key] != run.run_id:
                out.append(f"variant {v.name} on engine {key[1]} is in runs {rows[key]} and "
                           f"{run.run_id}; measure it in one of them only")
            rows.setdefault(key, run.run_id)
    return out


# What must be alike for two runs' figures to sit in one table.
_METHOD = ("repeat", "scenarios", "warmup", "builders", "build_args", "env", "runtime",
           "registry")


def _differences(runs: Sequence[Run]) -> list[str]:
    out = [*_incomplete(runs), *_against_first(runs), *_sources(runs)]
    return list(dict.fromkeys(out))


def _incomplete(runs: Sequence[Run]) -> list[str]:
    """Shards missing from the set, and parts that did not finish."""
    out = [f"run {r.run_id} did not finish (variants still running: --resume it first)"
           for r in runs if r.finished_utc is None]
    specs = {r.settings.shard for r in runs if r.settings.shard}
    if specs:
        counts = {int(spec.split("/")[1]) for spec in specs}
        if len(counts) > 1:
            out.append(f"the runs are shards of different splits ({', '.join(sorted(specs))})")
        else:
            n = counts.pop()
            missing = [f"{k}/{n}" for k in range(1, n + 1) if f"{k}/{n}" not in specs]
            if missing:
                out.append(f"shard(s) {', '.join(missing)} missing: the merged run would lack "
                           f"their variants")
    return out


def _against_first(runs: Sequence[Run]) -> list[str]:
    """Each run against the first: the harness that measured it, and how."""
    out: list[str] = []
    first = runs[0] if runs else None
    for run in runs[1:]:
        pair = f"runs {first.run_id} and {run.run_id}"
        a, b = first.harness, run.harness
        if a.version != b.version:
            out.append(f"{pair}: harness {a.version} against {b.version}")
        elif a.git.commit and b.git.commit and a.git.commit != b.git.commit:
            out.append(f"{pair}: harness commit {a.git.commit[:12]} against {b.git.commit[:12]}")
        for key in _METHOD:
            was, now = getattr(first.settings, key), getattr(run.settings, key)
            if was != now:
                out.append(f"{pair} were measured differently: {key} {was!r} against {now!r}")
    return out


def _sources(runs: Sequence[Run]) -> list[str]:
    """The same variant built from another Dockerfile, the same base of other content."""
    out: list[str] = []
    dockerfiles: dict[str, tuple[str, str]] = {}
    bases: dict[str, tuple[str, str]] = {}
    for run in runs:
        for v in run.variants:
            if not v.dockerfile_sha256:
                continue
            have = dockerfiles.setdefault(v.name, (v.dockerfile_sha256, run.run_id))
            if have[0] != v.dockerfile_sha256:
                out.append(f"variant {v.name}: its Dockerfile differs between runs {have[1]} "
                           f"and {run.run_id}")
        for ref, res in run.bases.items():
            what = _base_identity(res)
            if what is None:
                continue
            have = bases.setdefault(ref, (what, run.run_id))
            if have[0] != what:
                out.append(f"base {ref}: {have[0]} in run {have[1]}, {what} in run {run.run_id}")
    return out


def _base_identity(res: BaseResolution) -> str | None:
    """What a base is, comparable across engines: a pulled base's digest, a stand-in's
    recipe (its image id differs on every engine that builds it)."""
    if res.standin:
        return f"stand-in of recipe {res.recipe_sha256[:12]}" if res.recipe_sha256 else None
    return f"digest {res.digest}" if res.digest else None


def merge(runs: Sequence[Run], *, run_id: str, created_utc: str,
          order: Sequence[str] = ()) -> Run:
    """The runs as one (check `problems` first). Rows keep their own run's order, sorted by
    `order` (variant names; the first run's order when empty), engine by engine in the
    order the runs name them. The first run gives the settings and the headline engine."""
    parts = [stamped(r) for r in runs]
    first = parts[0]
    engines: dict[str, Engine] = {}
    for run in parts:
        for name, described in (run.engines or {engine_name(run): run.engine}).items():
            engines.setdefault(name, described)  # the first run's description leads
    names = list(dict.fromkeys([*order, *(v.name for r in parts for v in r.variants)]))
    rank = {n: i for i, n in enumerate(names)}
    engine_rank = {n: i for i, n in enumerate(engines)}
    rows = sorted((v for r in parts for v in r.variants),
                  key=lambda v: (rank[v.name], engine_rank.get(v.engine_name, len(engines))))
    bases: dict[str, BaseResolution] = {}
    for run in parts:
        for ref, res in run.bases.items():
            bases.setdefault(ref, res)
    finished = [r.finished_utc for r in parts]
    settings = dataclasses.replace(
        first.settings, shard=None, names=list(order) or first.settings.names,
        engines=list(engines) if len(engines) > 1 else first.settings.engines)
    return Run(run_id=run_id, created_utc=created_utc, harness=first.harness,
               finished_utc=None if None in finished else max(finished),
               machine=first.machine, engine=engines.get(engine_name(first), first.engine),
               settings=settings, bases=bases, variants=rows,
               runtime_comparison=runtime_comparison(rows),
               engines=engines if len(engines) > 1 else None,
               merged_from=[r.run_id for r in parts])


def runtime_comparison(rows: Sequence[VariantResult]) -> RuntimeComparison | None:
    """Whether the variants serve the same GET /, over the first row of each variant."""
    firsts: dict[str, VariantResult] = {}
    for v in rows:
        firsts.setdefault(v.name, v)
    served = [(v.name, dataclasses.asdict(v.runtime)) for v in firsts.values()
              if v.runtime and v.runtime.status != NOT_CHECKED]
    return RuntimeComparison(**same_behaviour(served)) if served else None
