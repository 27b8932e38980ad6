"""Build times and the build context: one row per variant x builder x scenario, the
statistics computed from the raw samples, what the cache buys, what .dockerignore saves."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.model import MEASURED, RUNNING, Build, Run, ScenarioSamples, VariantResult
from harness.report.formatting import as_lines, section_lines, variant_cell, variant_ref
from harness.report.units import (
    human_seconds,
    human_size,
    share_percent,
    short_seconds,
    signed_percent,
)
from harness.stats import OUTLIER_Z, Summary, summarize

# The scenarios in the order harness.bench.scenarios runs them (ALL there; a test keeps the
# two equal): the report reads records and never imports the code that made them.
SCENARIOS = ("cold", "no-change", "source-change", "dependency-change")

SCENARIO_TEXT = {"cold": "cold", "no-change": "no change", "source-change": "source change",
                 "dependency-change": "dependency change"}
SPREAD_LIMIT = 0.10  # MAD / median above which a row is too noisy to read
SPREAD_WARNING = "spread above 10 % of the median: add repetitions with --repeat"
BUILD_TIMES_CSV = "build_times.csv"

# ---------------------------------------------------------------------------- build times

@dataclass(frozen=True)
class BuildRow:
    """One variant x builder x scenario. `state` is "ok" (samples were timed), "skipped"
    (with the reason), "error" (this scenario's builds failed) or "failed" (the whole build
    failed; `scenario` is "–")."""
    name: str
    cell: str  # the variant's label as tables show it (stand-in marked)
    ref: str  # the variant as lines name it (stand-in marked)
    builder: str
    primary: bool  # this builder's image is the one measured
    scenario: str
    state: str
    reason: str | None = None
    samples: tuple[float, ...] = ()
    warmup: tuple[float, ...] = ()
    steps_total: int | None = None
    steps_cached: int | None = None
    steps_rebuilt: int | None = None
    changed: str | None = None
    log_tail: tuple[str, ...] = ()

    @property
    def summary(self) -> Summary | None:
        return summarize(list(self.samples))

    @property
    def noisy(self) -> bool:
        s = self.summary
        return s is not None and s.spread > SPREAD_LIMIT

    @property
    def steps(self) -> str:
        if self.steps_rebuilt is None or self.steps_total is None:
            return "–"
        return f"{self.steps_rebuilt} of {self.steps_total}"

    @property
    def where(self) -> str:
        return f"{self.ref} ({self.builder}, {self.scenario})"


def builds(run: Run, variant: VariantResult) -> list[tuple[str, bool, Build]]:
    """(builder, measured, build) for the builder whose image was measured, then every
    other builder the run used (`extra_builds`)."""
    out = []
    build = variant.build
    if build is not None:
        out.append((variant.builder or build.builder or _default_builder(run), True, build))
    for key, extra in (variant.extra_builds or {}).items():
        out.append((extra.builder or key, False, extra))
    return out


def _default_builder(run: Run) -> str:
    return run.settings.builder or "classic"


@dataclass(frozen=True)
class Skipped:
    """A scenario that was not timed, and why."""
    reason: str


# The runner records a skipped scenario (`{"skipped": reason}`), a failed scenario's log and
# a primed cache; read by attribute so these work whether or not the model carries them yet.
def _skipped(table: ScenarioSamples) -> str | None:
    return getattr(table, "skipped", None)


def _log_tail(table: ScenarioSamples) -> tuple[str, ...]:
    return tuple(as_lines(getattr(table, "log_tail", None)))


def _primed(build: Build) -> bool:
    return bool(getattr(build, "primed", False))


def scenario_tables(run: Run, build: Build) -> dict[str, ScenarioSamples | Skipped]:
    """Scenario -> its samples, cold first: `build.scenarios`, else (an older record) the
    run's one scenario from `build.samples_seconds`."""
    found: dict[str, ScenarioSamples | Skipped]
    if build.scenarios:
        found = {name: Skipped(str(_skipped(t) or "skipped")) if _skipped(t) is not None else t
                 for name, t in build.scenarios.items()}
    elif build.samples_seconds:
        found = {run.settings.scenario or "cold": ScenarioSamples(
            samples_seconds=list(build.samples_seconds),
            warmup_seconds=list(build.warmup_seconds),
            steps_total=build.steps_total, steps_cached=build.steps_cached)}
    else:
        found = {}
    if _primed(build) and "cold" not in found:
        found = {"cold": Skipped("not run: the cache was primed by one untimed build"), **found}
    return dict(sorted(found.items(), key=lambda kv: _scenario_rank(kv[0])))


def _scenario_rank(name: str) -> int:
    return SCENARIOS.index(name) if name in SCENARIOS else len(SCENARIOS)


def _scenario_row(ident: dict, builder: str, primary: bool, scenario: str,
                  table: ScenarioSamples | Skipped) -> BuildRow:
    where = {**ident, "builder": builder, "primary": primary, "scenario": scenario}
    if isinstance(table, Skipped):
        return BuildRow(**where, state="skipped", reason=table.reason)
    if table.error:
        return BuildRow(**where, state="error", reason=str(table.error),
                        log_tail=_log_tail(table))
    samples = tuple(float(x) for x in table.samples_seconds)
    total, cached = table.steps_total, table.steps_cached
    rebuilt = table.steps_rebuilt
    if rebuilt is None and total is not None and cached is not None:
        rebuilt = total - cached
    return BuildRow(**where, state="ok" if samples else "skipped",
                    reason=None if samples else "no samples recorded", samples=samples,
                    warmup=tuple(float(x) for x in table.warmup_seconds),
                    steps_total=total, steps_cached=cached, steps_rebuilt=rebuilt,
                    changed=table.changed)


def build_rows(run: Run) -> list[BuildRow]:
    """One row per variant x builder x scenario, in the run's order of variants; within a
    variant, per scenario (cold first), the builders side by side (the measured one first)."""
    rows: list[BuildRow] = []
    for v in run.variants:
        rows += variant_build_rows(run, v)
    return rows


def variant_build_rows(run: Run, v: VariantResult) -> list[BuildRow]:
    """The rows of one variant (see `build_rows`)."""
    ident = {"name": v.name, "cell": variant_cell(v), "ref": variant_ref(v)}
    found = builds(run, v)
    if not found:
        if v.status in (*MEASURED, RUNNING):  # nothing timed yet while running
            return []
        return [BuildRow(**ident, builder=v.builder or _default_builder(run), primary=True,
                         scenario="–", state="failed", reason=v.error or v.status or "not built",
                         log_tail=tuple(as_lines(v.log_tail)))]
    mine: list[tuple[int, int, BuildRow]] = []
    for order, (builder, primary, build) in enumerate(found):
        if build.error:
            mine.append((10_000, order, BuildRow(
                **ident, builder=builder, primary=primary, scenario="–", state="failed",
                reason=str(build.error), log_tail=tuple(as_lines(build.log_tail)))))
            continue
        tables = scenario_tables(run, build) or {"–": Skipped("no samples recorded")}
        for scenario, table in tables.items():
            mine.append((_scenario_rank(scenario), order,
                         _scenario_row(ident, builder, primary, scenario, table)))
    # Scenarios outside the canonical four keep the order they first appear in.
    seen = list(dict.fromkeys(r.scenario for _, _, r in mine))
    mine.sort(key=lambda t: (t[0], seen.index(t[2].scenario), t[1]))
    return [r for _, _, r in mine]


def _note(row: BuildRow) -> str:
    if row.state == "skipped":
        return f"skipped: {row.reason}"
    if row.state in ("error", "failed"):
        reason = row.reason or "failed"
        return reason if reason.startswith(("build failed", "failed")) else f"failed: {reason}"
    return f"changed: {row.changed}" if row.changed else ""


def build_stats_table(run: Run) -> pd.DataFrame | None:
    """Statistics of every variant x builder x scenario, computed from the raw samples."""
    rows = build_rows(run)
    if not rows:
        return None
    data = []
    for r in rows:
        s = r.summary
        data.append({
            "Variant": r.cell, "Builder": r.builder, "Scenario": r.scenario,
            "n": str(s.n) if s else "–",
            "Median": human_seconds(s.median) if s else "–",
            "MAD": human_seconds(s.mad) if s else "–",
            "Mean": human_seconds(s.mean) if s else "–",
            "Stdev": human_seconds(s.stdev) if s else "–",
            "Min": human_seconds(s.min) if s else "–",
            "Max": human_seconds(s.max) if s else "–",
            "Outliers": str(len(s.outliers)) if s else "–",
            "Steps rebuilt": r.steps if r.state == "ok" else "–",
            "Note": _note(r),
        })
    return pd.DataFrame(data)


def spread_warnings(run: Run) -> list[str]:
    """One line per row whose MAD is above 10 % of its median."""
    out = []
    for r in build_rows(run):
        if r.noisy:
            s = r.summary
            out.append(f"- {r.where}: MAD {human_seconds(s.mad)} is {s.spread * 100:.0f} % of "
                       f"the median {human_seconds(s.median)} (n={s.n}) — {SPREAD_WARNING}.")
    return out


def outlier_lines(run: Run) -> list[str]:
    """One line per row with outliers, flagged as hyperfine flags them."""
    out = []
    for r in build_rows(run):
        s = r.summary
        if s is None or not s.outliers:
            continue
        which = ", ".join(f"sample {i + 1}: {human_seconds(r.samples[i])}" for i in s.outliers)
        count = len(s.outliers)
        out.append(f"- {r.where}: {count} statistical outlier{'s' if count > 1 else ''} "
                   f"({which}; modified z-score above {OUTLIER_Z}). Its median is robust to it; "
                   "a quiet machine or more repetitions tell whether it was interference.")
    return out


def _plus_minus(s: Summary) -> str:
    return human_seconds(s.median) + (f" ± {human_seconds(s.mad)}" if s.n > 1 else "")


def cache_lines(run: Run) -> list[str]:
    """Per variant and builder: what each cached scenario rebuilt and cost against cold."""
    rows = build_rows(run)
    out = []
    keys = list(dict.fromkeys((r.name, r.builder) for r in rows))
    for name, builder in keys:
        mine = {r.scenario: r for r in rows if (r.name, r.builder) == (name, builder)}
        cold = mine.get("cold")
        cold_summary = cold.summary if cold is not None and cold.state == "ok" else None
        clauses = []
        for scenario in ("source-change", "dependency-change", "no-change"):
            r = mine.get(scenario)
            if r is None:
                continue
            text = SCENARIO_TEXT[scenario]
            if r.state == "skipped":
                clauses.append(f"{text} skipped ({r.reason})")
                continue
            if r.state != "ok":
                clauses.append(f"{text} failed ({r.reason})")
                continue
            s = r.summary
            clause = text + (f" rebuilt {r.steps_rebuilt} of {r.steps_total} steps, "
                             if r.steps != "–" else ": ") + _plus_minus(s)
            if cold_summary is not None and cold_summary.median:
                clause += (f" vs {_plus_minus(cold_summary)} cold "
                           f"({signed_percent(s.median / cold_summary.median - 1)})")
            clauses.append(clause)
        if not clauses:
            continue
        ref = next(r.ref for r in rows if r.name == name)
        line = f"- {ref} ({builder}): " + "; ".join(clauses)
        if cold_summary is None:
            why = cold.reason if cold is not None and cold.reason else "cold was not timed"
            line += f" (no cold build to compare with: {why})"
        out.append(line + ".")
    return out


BUILD_TIMES_NOTE = (
    "Statistics computed from the raw samples of each variant x builder x scenario: median "
    "and MAD (median absolute deviation, unscaled), mean and sample standard deviation, "
    f"extremes, and outliers (modified z-score above {OUTLIER_Z}, as hyperfine flags them). "
    "Warm-up builds are not counted. Steps rebuilt: build steps that did not come from the "
    "cache, of all steps. cold: no cache, base images present; no change: the same context "
    "again, on the cache; source change: one application source file edited; dependency "
    "change: package.json and its lock file changed. Every row is also in build_times.csv, "
    "with its samples.")


def build_time_lines(run: Run) -> list[str]:
    lines = section_lines("Build time per variant, builder and scenario", build_stats_table(run),
                          BUILD_TIMES_NOTE)
    if not lines:
        return []
    warnings = spread_warnings(run)
    if warnings:
        lines += ["", "Too noisy to read:"] + warnings
    outliers = outlier_lines(run)
    if outliers:
        lines += ["", "Outliers:"] + outliers
    cache = cache_lines(run)
    if cache:
        lines += ["", ("What the build cache buys (median ± MAD, against the cold build "
                       "with the same builder):")] + cache
    return lines


# ---------------------------------------------------------------------------- build context

def context_table(run: Run) -> pd.DataFrame | None:
    """The build context sent, and what .dockerignore keeps out of it."""
    data = []
    for v in run.variants:
        build = v.build
        if build is None:
            continue
        sent, files = build.context_bytes, build.context_files
        bare, bare_files = (build.context_bytes_without_dockerignore,
                            build.context_files_without_dockerignore)
        saves = "–"
        if sent is not None and bare is not None:
            saves = human_size(bare - sent) + (f" ({share_percent((bare - sent) / bare)} of the bytes)"
                                               if bare else "")
            if files is not None and bare_files is not None:
                saves += f", {bare_files - files:,} files"
        data.append({
            "Variant": variant_cell(v),
            "Sent (after .dockerignore)": human_size(sent),
            "Files sent": "–" if files is None else f"{files:,}",
            "Packed in": short_seconds(build.context_seconds),
            "Without .dockerignore": human_size(bare),
            "Files without": "–" if bare_files is None else f"{bare_files:,}",
            ".dockerignore saves": saves,
        })
    if not data or all(d["Sent (after .dockerignore)"] == "–" for d in data):
        return None
    return pd.DataFrame(data)


CONTEXT_NOTE = ("Sent: the tar stream the engine receives, after .dockerignore; packed in: "
                "the time to make it (not part of the build time). Without .dockerignore: "
                "the same context with no .dockerignore, counted, not sent.")


def context_lines(run: Run) -> list[str]:
    return section_lines("Build context", context_table(run), CONTEXT_NOTE)
