"""Build times and the build context: one row per variant x builder x scenario, the
statistics computed from the raw samples, what the cache buys, what .dockerignore saves."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.report.formatting import (
    as_dict,
    as_lines,
    human_seconds,
    human_size,
    percent,
    section_lines,
    short_seconds,
    signed_percent,
    variant_cell,
    variant_ref,
)
from harness.store import MEASURED
from harness.bench.scenarios import ALL as SCENARIOS
from harness.stats import OUTLIER_Z, Summary, summarize

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


def builds(record: dict, variant: dict) -> list[tuple[str, bool, dict]]:
    """(builder, measured, build) for the builder whose image was measured, then every
    other builder the run used (`extra_builds`)."""
    default = (record.get("settings") or {}).get("builder") or "classic"
    out = []
    build = variant.get("build")
    if isinstance(build, dict):
        out.append((variant.get("builder") or build.get("builder") or default, True, build))
    for key, extra in as_dict(variant.get("extra_builds")).items():
        if isinstance(extra, dict):
            out.append((extra.get("builder") or key, False, extra))
    return out


def scenario_tables(record: dict, build: dict) -> dict[str, dict]:
    """Scenario -> its table, cold first: `build.scenarios`, else (an older record) the
    run's one scenario from `build.samples_seconds`."""
    tables = build.get("scenarios")
    if isinstance(tables, dict) and tables:
        found = {name: t if isinstance(t, dict) else {"samples_seconds": list(t or [])}
                 for name, t in tables.items()}
    elif build.get("samples_seconds"):
        name = (record.get("settings") or {}).get("scenario") or "cold"
        found = {name: {k: build.get(k) for k in ("samples_seconds", "warmup_seconds",
                                                  "steps_total", "steps_cached")}}
    else:
        found = {}
    if build.get("primed") and "cold" not in found:
        found = {"cold": {"skipped": "not run: the cache was primed by one untimed build"}, **found}
    return dict(sorted(found.items(), key=lambda kv: _scenario_rank(kv[0])))


def _scenario_rank(name: str) -> int:
    return SCENARIOS.index(name) if name in SCENARIOS else len(SCENARIOS)


def _scenario_row(ident: dict, builder: str, primary: bool, scenario: str, table: dict) -> BuildRow:
    if "skipped" in table:
        return BuildRow(**ident, builder=builder, primary=primary, scenario=scenario,
                        state="skipped", reason=str(table.get("skipped") or "skipped"))
    if table.get("error"):
        return BuildRow(**ident, builder=builder, primary=primary, scenario=scenario,
                        state="error", reason=str(table["error"]),
                        log_tail=tuple(as_lines(table.get("log_tail"))))
    samples = tuple(float(x) for x in table.get("samples_seconds") or [])
    total, cached = table.get("steps_total"), table.get("steps_cached")
    rebuilt = table.get("steps_rebuilt")
    if rebuilt is None and total is not None and cached is not None:
        rebuilt = total - cached
    return BuildRow(**ident, builder=builder, primary=primary, scenario=scenario,
                    state="ok" if samples else "skipped",
                    reason=None if samples else "no samples recorded", samples=samples,
                    warmup=tuple(float(x) for x in table.get("warmup_seconds") or []),
                    steps_total=total, steps_cached=cached, steps_rebuilt=rebuilt,
                    changed=table.get("changed"))


def build_rows(record: dict) -> list[BuildRow]:
    """One row per variant x builder x scenario, in the run's order of variants; within a
    variant, per scenario (cold first), the builders side by side (the measured one first)."""
    default = (record.get("settings") or {}).get("builder") or "classic"
    rows: list[BuildRow] = []
    for v in record.get("variants") or []:
        ident = {"name": v["name"], "cell": variant_cell(v), "ref": variant_ref(v)}
        found = builds(record, v)
        if not found:
            if v.get("status") not in MEASURED:
                rows.append(BuildRow(**ident, builder=v.get("builder") or default, primary=True,
                                     scenario="–", state="failed",
                                     reason=v.get("error") or v.get("status") or "not built",
                                     log_tail=tuple(as_lines(v.get("log_tail")))))
            continue
        mine: list[tuple[int, int, BuildRow]] = []
        for order, (builder, primary, build) in enumerate(found):
            if build.get("error"):
                mine.append((10_000, order, BuildRow(
                    **ident, builder=builder, primary=primary, scenario="–", state="failed",
                    reason=str(build["error"]), log_tail=tuple(as_lines(build.get("log_tail"))))))
                continue
            tables = scenario_tables(record, build) or {"–": {"skipped": "no samples recorded"}}
            for scenario, table in tables.items():
                mine.append((_scenario_rank(scenario), order,
                             _scenario_row(ident, builder, primary, scenario, table)))
        # Scenarios outside the canonical four keep the order they first appear in.
        seen = list(dict.fromkeys(r.scenario for _, _, r in mine))
        mine.sort(key=lambda t: (t[0], seen.index(t[2].scenario), t[1]))
        rows += [r for _, _, r in mine]
    return rows


def _note(row: BuildRow) -> str:
    if row.state == "skipped":
        return f"skipped: {row.reason}"
    if row.state in ("error", "failed"):
        reason = row.reason or "failed"
        return reason if reason.startswith(("build failed", "failed")) else f"failed: {reason}"
    return f"changed: {row.changed}" if row.changed else ""


def build_stats_table(record: dict) -> pd.DataFrame | None:
    """Statistics of every variant x builder x scenario, computed from the raw samples."""
    rows = build_rows(record)
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


def spread_warnings(record: dict) -> list[str]:
    """One line per row whose MAD is above 10 % of its median."""
    out = []
    for r in build_rows(record):
        if r.noisy:
            s = r.summary
            out.append(f"- {r.where}: MAD {human_seconds(s.mad)} is {s.spread * 100:.0f} % of "
                       f"the median {human_seconds(s.median)} (n={s.n}) — {SPREAD_WARNING}.")
    return out


def outlier_lines(record: dict) -> list[str]:
    """One line per row with outliers, flagged as hyperfine flags them."""
    out = []
    for r in build_rows(record):
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


def cache_lines(record: dict) -> list[str]:
    """Per variant and builder: what each cached scenario rebuilt and cost against cold."""
    rows = build_rows(record)
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


def build_time_lines(record: dict) -> list[str]:
    lines = section_lines("Build time per variant, builder and scenario", build_stats_table(record),
                          BUILD_TIMES_NOTE)
    if not lines:
        return []
    warnings = spread_warnings(record)
    if warnings:
        lines += ["", "Too noisy to read:"] + warnings
    outliers = outlier_lines(record)
    if outliers:
        lines += ["", "Outliers:"] + outliers
    cache = cache_lines(record)
    if cache:
        lines += ["", ("What the build cache buys (median ± MAD, against the cold build "
                       "with the same builder):")] + cache
    return lines


# ---------------------------------------------------------------------------- build context

def _primary_build(variant: dict) -> dict:
    return as_dict(variant.get("build"))


def context_table(record: dict) -> pd.DataFrame | None:
    """The build context sent, and what .dockerignore keeps out of it."""
    data = []
    for v in record.get("variants") or []:
        build = _primary_build(v)
        if not build:
            continue
        sent, files = build.get("context_bytes"), build.get("context_files")
        bare, bare_files = (build.get("context_bytes_without_dockerignore"),
                            build.get("context_files_without_dockerignore"))
        saves = "–"
        if sent is not None and bare is not None:
            saves = human_size(bare - sent) + (f" ({percent((bare - sent) / bare)} of the bytes)"
                                               if bare else "")
            if files is not None and bare_files is not None:
                saves += f", {bare_files - files:,} files"
        data.append({
            "Variant": variant_cell(v),
            "Sent (after .dockerignore)": human_size(sent),
            "Files sent": "–" if files is None else f"{files:,}",
            "Packed in": short_seconds(build.get("context_seconds")),
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


def context_lines(record: dict) -> list[str]:
    return section_lines("Build context", context_table(record), CONTEXT_NOTE)
