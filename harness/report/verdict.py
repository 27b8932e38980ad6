"""The answer first: which variant to ship, and which is best at what (pure).

The pick is the smallest final image among the variants that were built and serve like the
reference (every built one when no runtime check ran); the findings beside it name the best
variant on each axis a reader weighs against size: compressed size, rebuild after a source
change, cold pull, running as a non-root user. Measured on stand-in bases, a pick says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness.model import OK, Run, VariantResult
from harness.report.formatting import uses_standin
from harness.report.units import human_seconds, human_size

ROOT_USERS = ("", "root", "0", "0:0", "root:root")


@dataclass(frozen=True)
class Finding:
    what: str  # "Smallest image"
    label: str  # the variant's label
    value: str  # "45.2 MB"


@dataclass(frozen=True)
class Verdict:
    pick: VariantResult | None
    why: str  # one sentence, plain text
    findings: tuple[Finding, ...]


def candidates(run: Run) -> list[VariantResult]:
    """Built and measured; serving like the reference when the runtime check compared them."""
    built = [v for v in run.variants if v.status == OK and v.image is not None]
    same = set(run.runtime_comparison.same) if run.runtime_comparison else None
    return [v for v in built if same is None or v.name in same or v.runtime is None]


def verdict(run: Run) -> Verdict:
    pool = candidates(run)
    if not pool:
        return Verdict(None, "No variant was built and serves: see the failures below.", ())
    pick = min(pool, key=lambda v: v.image.size_bytes)
    largest = max(pool, key=lambda v: v.image.size_bytes)
    serves = " that still serves the same GET /" if run.runtime_comparison else ""
    why = f"Ship {pick.label}: the smallest image{serves} ({human_size(pick.image.size_bytes)}"
    if largest is not pick and pick.image.size_bytes:
        why += f", {largest.image.size_bytes / pick.image.size_bytes:.1f}x smaller than {largest.label}"
    why += ")."
    if _non_root(pick):
        why += f" It runs as {pick.image.user}."
    if uses_standin(pick):
        why += " Measured on a locally built stand-in base (*): check on the real image."
    return Verdict(pick, why, tuple(f for f in _findings(run, pool) if f is not None))


def verdict_lines(run: Run) -> list[str]:
    """The verdict as Markdown: the sentence, then the best variant at each thing."""
    v = verdict(run)
    lines = [v.why]
    if v.findings:
        lines += ["", "| Best at | Variant | Figure |", "|---|---|---|"]
        lines += [f"| {f.what} | {f.label} | {f.value} |" for f in v.findings]
    return lines


def _findings(run: Run, pool: list[VariantResult]):
    yield _best(pool, "Smallest image", lambda v: v.image.size_bytes, human_size)
    yield _best(pool, "Smallest to pull (compressed)", lambda v: v.compressed_size_bytes,
                human_size)
    yield _best(pool, "Fastest rebuild after a source change",
                lambda v: _median(v, "source-change"), human_seconds)
    yield _best(pool, "Fastest cold pull",
                lambda v: v.registry.cold_pull_seconds if v.registry else None, human_seconds)
    rootless = [v.label for v in pool if _non_root(v)]
    yield Finding("Runs as a non-root user", ", ".join(rootless) if rootless else "none",
                  f"{len(rootless)} of {len(pool)}")
    if run.runtime_comparison:
        same = run.runtime_comparison.same
        yield Finding("Serves the same GET / as the reference",
                      run.runtime_comparison.reference or "–",
                      f"{len(same)} of {sum(v.image is not None for v in run.variants)}")


def _best(pool, what, key, fmt) -> Finding | None:
    scored = [(key(v), v) for v in pool if key(v) is not None]
    if not scored:
        return None
    value, best = min(scored, key=lambda s: s[0])
    return Finding(what, best.label, fmt(value))


def _median(v: VariantResult, scenario: str) -> float | None:
    scen = v.build.scenarios.get(scenario) if v.build and v.build.scenarios else None
    return statistics.median(scen.samples_seconds) if scen and scen.samples_seconds else None


def _non_root(v: VariantResult) -> bool:
    return v.image is not None and (v.image.user or "") not in ROOT_USERS
