"""Splitting a run's work into shards: `--shard K/N` measures the K-th of N parts.

A job is one variant on one engine (by the engine's name, so a shard measured on another
machine's engine of that name is the same job). The assignment is a pure function of the
jobs, N and the history's medians: every machine computes the same one, and every job is in
exactly one shard. With history, the slowest jobs go first, each to the shard with the least
work so far (longest processing time first); without, jobs are dealt round by count.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_ENGINE = "default"  # the engine DOCKER_HOST (or the default socket) reaches
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, order=True)
class Job:
    variant: str
    engine: str


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as the user writes it
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse(spec: str) -> Shard:
    """`K/N` with 1 <= K <= N; ValueError (one line naming the spec) otherwise."""
    m = _SPEC.match(spec or "")
    if not m:
        raise ValueError(f"--shard {spec}: expected K/N, e.g. 1/2 (the first of two shards)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1:
        raise ValueError(f"--shard {spec}: the number of shards must be at least 1")
    if not 1 <= k <= n:
        raise ValueError(f"--shard {spec}: K must be between 1 and {n}")
    return Shard(k, n)


def jobs_of(variants: Iterable[str], engines: Iterable[str]) -> list[Job]:
    """Every variant on every engine, in a fixed order."""
    engines = list(dict.fromkeys(engines))
    return [Job(v, e) for v in dict.fromkeys(variants) for e in engines]


def weights_from_history(entries: Iterable) -> dict[str, float]:
    """Each variant's median cold build in seconds, from history entries (any engine)."""
    samples: dict[str, list[float]] = {}
    for e in entries:
        cold = (e.build_samples or {}).get("cold") or []
        samples.setdefault(e.variant, []).extend(cold)
    return {name: statistics.median(s) for name, s in samples.items() if s}


def assign(jobs: Sequence[Job], count: int,
           weights: dict[str, float] | None = None) -> list[list[Job]]:
    """The jobs of each of `count` shards (index 0 is shard 1/N), each list in job order.

    Balanced by `weights` (seconds per variant) when every job's variant has one, else by
    count. Ties go to the lowest shard, so the result depends only on the arguments."""
    if count < 1:
        raise ValueError("at least one shard")
    unique = sorted(set(jobs))
    weights = weights or {}
    shards: list[list[Job]] = [[] for _ in range(count)]
    if unique and all(j.variant in weights for j in unique):
        load = [0.0] * count
        for job in sorted(unique, key=lambda j: (-weights[j.variant], j)):
            at = min(range(count), key=lambda i: (load[i], len(shards[i]), i))
            shards[at].append(job)
            load[at] += weights[job.variant]
    else:
        for i, job in enumerate(unique):
            shards[i % count].append(job)
    order = {job: i for i, job in enumerate(jobs)}
    return [sorted(s, key=lambda j: order[j]) for s in shards]


def select(jobs: Sequence[Job], shard: Shard,
           weights: dict[str, float] | None = None) -> list[Job]:
    """The jobs of `shard`."""
    return assign(jobs, shard.count, weights)[shard.index - 1]


def spread(variants: Sequence[str], engines: Sequence[str],
           weights: dict[str, float] | None = None) -> list[Job]:
    """`--engines spread`: each variant on one engine, balanced as `assign` balances shards."""
    engines = list(dict.fromkeys(engines))
    parts = assign([Job(v, "") for v in dict.fromkeys(variants)], len(engines), weights)
    by_variant = {job.variant: engines[i] for i, part in enumerate(parts) for job in part}
    return [Job(v, by_variant[v]) for v in dict.fromkeys(variants)]
