"""How much work a run is, before it starts: builds per variant and their expected seconds.

Pure. The expected time of a build is the median of that variant's samples in that scenario
in the newest run of the history that has them; without a history, a rough default per
scenario (a cold build is long, a no-change build short), so that the progress bar's share
of a cold build is still larger than a cached one's. The bar (harness.cli.progress)
calibrates its time left against the time the builds so far actually took.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from harness.bench import scenarios
from harness.model import OK, HistoryEntry

# Seconds, on a 2-CPU machine building the sample app: a guess for a first run only.
DEFAULT_SECONDS = {scenarios.COLD: 40.0, scenarios.NO_CHANGE: 2.0, scenarios.SOURCE: 15.0,
                   scenarios.DEPENDENCY: 40.0}


@dataclass(frozen=True)
class Workload:
    """One variant's builds: how many (warm-ups included) and the expected seconds of each
    scenario's build."""
    name: str
    builds: int
    seconds_per_build: dict[str, float]  # scenario -> expected seconds of one build
    counts: dict[str, int]  # scenario -> builds (warm-up and counted, every builder)
    from_history: bool

    @property
    def seconds(self) -> float:
        return sum(self.seconds_per_build[s] * n for s, n in self.counts.items())


def newest_medians(history: Iterable[HistoryEntry]) -> dict[str, dict[str, float]]:
    """variant -> scenario -> median seconds, from the newest successful run that has it."""
    out: dict[str, dict[str, float]] = {}
    for entry in sorted(history, key=lambda e: e.created_utc):
        if entry.status != OK:
            continue
        for scenario, samples in entry.build_samples.items():
            if samples:
                out.setdefault(entry.variant, {})[scenario] = statistics.median(samples)
    return out


def workload(names: list[str], wanted: tuple[str, ...], repeat: int, warmup: int | None,
             builders: int, history: Iterable[HistoryEntry] = ()) -> list[Workload]:
    """The builds each variant will run, in order, weighted by what they took before."""
    medians = newest_medians(history)
    out = []
    for name in names:
        known = medians.get(name, {})
        counts = {s: (scenarios.warmups(s, warmup) + repeat) * builders for s in wanted}
        seconds = {s: known.get(s, DEFAULT_SECONDS.get(s, 30.0)) for s in wanted}
        out.append(Workload(name, sum(counts.values()), seconds, counts,
                            from_history=bool(known)))
    return out
