"""Records in, tables and charts out. Never touches Docker.

Formatting functions return text, lines or DataFrames of text and print nothing;
`write_report` is the only function here that writes files.

What table.md (and index.html, from the same functions) shows, in order:

- the summary: the article's table (approach, base image, final size) and what the harness
  adds to it (saved against the first variant, added to the base, layers, cold build time);
- build time per variant x builder x scenario: n, median, MAD, mean, stdev, min, max and
  outliers computed here from the raw samples (stored statistics are not trusted), the
  steps each scenario rebuilt, a warning under the table for every row whose MAD is above
  10 % of its median, and per variant what the build cache buys against a cold build;
- the build context: bytes and files sent after .dockerignore, time to pack, and what
  .dockerignore saves;
- shipping: the exact compressed size a registry stores beside the gzip estimate, push
  and pull time, and how many layers were already present when pulling;
- runtime: time to a 200 from /healthz, idle memory, GET / and whether every variant
  serves the same GET / as the reference; variants that failed at runtime with their logs;
- what ships in each image, the security posture, and where the bytes go (base image,
  dependencies, application, other; history entries against real layers).

Two CSV files:

- results.csv: one row per variant, raw numbers with their unit in the column name,
  including the single-valued figures above and, per scenario of the builder whose image
  was measured, the median, MAD, number of samples and steps rebuilt;
- build_times.csv: one row per variant x builder x scenario (skipped and failed scenarios
  included, with their reason): the statistics computed from the samples and the samples
  themselves (space-separated seconds, warm-up builds apart), so the file alone is enough
  to redo the analysis.

Every table that shows a variant's figures marks (`*`) a variant built on a stand-in base.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .results import FAILED_AT_RUNTIME, MEASURED, write_atomic
from .scenarios import ALL as ALL_SCENARIOS
from .stats import OUTLIER_Z, Summary, summarize

SIZE_UNIT_NOTE = ("Sizes are uncompressed, as `docker images` shows them, in SI units "
                  "(1 MB = 1,000,000 bytes).")
STANDIN_MARK = "*"

SCENARIOS = ALL_SCENARIOS
SCENARIO_TEXT = {"cold": "cold", "no-change": "no change", "source-change": "source change",
                 "dependency-change": "dependency change"}
SPREAD_LIMIT = 0.10  # MAD / median above which a row is too noisy to read
SPREAD_WARNING = "spread above 10 % of the median: add repetitions with --repeat"
BUILD_TIMES_CSV = "build_times.csv"


def human_size(n: float | None) -> str:
    """SI units with three significant digits, like `docker images` (1 kB = 1000 B)."""
    if n is None or pd.isna(n):
        return "–"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if abs(n) >= 1 else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.3g} TB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None or pd.isna(s):
        return "–"
    if s < 10:
        return f"{s:.2f} s"
    if s < 100:
        return f"{s:.1f} s"
    return f"{s:.0f} s"


def short_seconds(s: float | None) -> str:
    """Like human_seconds, with milliseconds below one second (packing a small context)."""
    if s is None or pd.isna(s):
        return "–"
    return f"{s * 1000:.0f} ms" if s < 1 else human_seconds(s)


def percent(x: float | None) -> str:
    """A share as "12.3 %" (two decimals close to 100 %, so 99.98 % is not shown as 100 %)."""
    if x is None or pd.isna(x):
        return "–"
    return f"{x * 100:.2f} %" if 0.995 <= abs(x) < 1 else f"{x * 100:.1f} %"


def signed_percent(x: float | None, digits: int = 0) -> str:
    """A change as "−73 %" or "+4 %" (a true minus sign)."""
    if x is None or pd.isna(x):
        return "–"
    text = f"{abs(x) * 100:.{digits}f} %"
    if text.strip("0. %") == "":
        return "±" + text
    return ("−" if x < 0 else "+") + text


def final_base(variant: dict) -> dict | None:
    """The FROM of the stage the image ends with (its runtime base)."""
    froms = variant.get("froms") or []
    final = [f for f in froms if f.get("final")]
    return final[-1] if final else (froms[-1] if froms else None)


def short_ref(ref: str) -> str:
    """How the article names bases: drop the registry host of non-Docker-Hub images."""
    parts = ref.split("/")
    if len(parts) > 2 and ("." in parts[0] or ":" in parts[0]):
        return "/".join(parts[1:])
    return ref


def is_measured(variant: dict) -> bool:
    """The image was built and measured (it may still have failed at runtime)."""
    return variant.get("status") in MEASURED and bool(variant.get("image"))


def uses_standin(variant: dict) -> bool:
    return any(f.get("standin") for f in variant.get("froms") or [])


def variant_cell(variant: dict) -> str:
    """The variant's label, marked when any of its bases was a stand-in."""
    return (variant.get("label") or variant["name"]) + (STANDIN_MARK if uses_standin(variant) else "")


def variant_ref(variant: dict) -> str:
    """How lines under a table name a variant: `name`, marked when on a stand-in."""
    return f"`{variant['name']}`" + (STANDIN_MARK if uses_standin(variant) else "")


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _tail(value) -> list[str]:
    if not value:
        return []
    return [str(x) for x in value] if isinstance(value, (list, tuple)) else str(value).splitlines()


def _contents(variant: dict) -> dict:
    contents = _dict(variant.get("contents"))
    return {} if contents.get("error") else contents


def _registry(variant: dict) -> dict:
    return _dict(variant.get("registry"))


def _runtime(variant: dict) -> dict:
    return _dict(variant.get("runtime"))


def _attribution(variant: dict) -> dict:
    return _dict(variant.get("attribution"))


def exact_compressed(variant: dict) -> int | None:
    """The compressed size a registry stores, when it was measured."""
    image = _dict(variant.get("image"))
    for value in (image.get("compressed_size_bytes"), _registry(variant).get("compressed_bytes"),
                  _dict(variant.get("compressed")).get("registry_bytes")):
        if value is not None:
            return value
    return None


def compressed_estimate(variant: dict) -> int | None:
    value = _registry(variant).get("estimate_bytes")
    return value if value is not None else _contents(variant).get("compressed_estimate_bytes")


def estimate_error_pct(variant: dict) -> float | None:
    """(estimate − exact) / exact, in percent: as recorded, else computed from both sizes."""
    stored = _registry(variant).get("estimate_error_pct")
    if stored is not None:
        return float(stored)
    exact, estimate = exact_compressed(variant), compressed_estimate(variant)
    if exact and estimate is not None:
        return 100.0 * (estimate - exact) / exact
    return None


def package_managers(contents: dict) -> str | None:
    found = contents.get("package_managers")
    if not isinstance(found, dict):
        return None
    return ", ".join(name for name, present in found.items() if present) or "none"


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
    for key, extra in _dict(variant.get("extra_builds")).items():
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
                        log_tail=tuple(_tail(table.get("log_tail"))))
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
                                     log_tail=tuple(_tail(v.get("log_tail")))))
            continue
        mine: list[tuple[int, int, BuildRow]] = []
        for order, (builder, primary, build) in enumerate(found):
            if build.get("error"):
                mine.append((10_000, order, BuildRow(
                    **ident, builder=builder, primary=primary, scenario="–", state="failed",
                    reason=str(build["error"]), log_tail=tuple(_tail(build.get("log_tail"))))))
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
    table = build_stats_table(record)
    if table is None:
        return []
    lines = ["## Build time per variant, builder and scenario", "", markdown_table(table), "",
             BUILD_TIMES_NOTE]
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
    return _dict(variant.get("build"))


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
    table = context_table(record)
    if table is None:
        return []
    return ["## Build context", "", markdown_table(table), "", CONTEXT_NOTE]


# ---------------------------------------------------------------------------- shipping

def _pull_note(reg: dict) -> str:
    if reg.get("error"):
        return f"registry: {reg['error']}"
    notes = []
    if reg.get("image_removed_before_pull") is False:
        notes.append("the image could not be removed before the pull (still in use): "
                     "the pull time is not a download time")
    present, total = reg.get("pull_layers_present"), reg.get("pull_layers")
    if present:
        rest = f", only {total - present} downloaded" if total is not None else ""
        notes.append(f"not a cold-host pull: {present} of {total if total is not None else '?'} "
                     f"layers were already on the engine{rest}")
    elif present == 0 and reg.get("pull_seconds") is not None:
        notes.append("every layer downloaded")
    return "; ".join(notes)


def shipping_table(record: dict) -> pd.DataFrame | None:
    """What a registry stores and how long moving the image takes."""
    variants = [v for v in record.get("variants") or [] if is_measured(v)]
    if not any(v.get("registry") or exact_compressed(v) is not None for v in variants):
        return None
    data = []
    for v in variants:
        reg = _registry(v)
        present, total = reg.get("pull_layers_present"), reg.get("pull_layers")
        error = estimate_error_pct(v)
        data.append({
            "Variant": variant_cell(v),
            "Compressed (registry, exact)": human_size(exact_compressed(v)),
            "Estimate (gzip -6)": human_size(compressed_estimate(v)),
            "Estimate error": "–" if error is None else signed_percent(error / 100, 1),
            "Push": human_seconds(reg.get("push_seconds")),
            "Pull": human_seconds(reg.get("pull_seconds")),
            "Layers present at pull": ("–" if present is None else
                                       f"{present} of {total if total is not None else '?'}"),
            "Note": _pull_note(reg),
        })
    return pd.DataFrame(data)


SHIPPING_NOTE = (
    "Compressed: the bytes of the layer blobs a registry stores for the image (pushed to a "
    "loopback registry), exact. Estimate: gzip level 6 of each layer, as the layer analysis "
    "computes it; its error is (estimate − exact) / exact. Pull: the image's tags are "
    "removed, then it is pulled back from the registry; layers still on the engine (its base "
    "image, layers shared with other variants) are not downloaded again, so where any were "
    "present this is not the pull of a cold host.")


def shipping_lines(record: dict) -> list[str]:
    table = shipping_table(record)
    if table is None:
        return []
    return ["## Shipping", "", markdown_table(table), "", SHIPPING_NOTE]


# ---------------------------------------------------------------------------- runtime

def serving(record: dict) -> dict[str, tuple[str, str | None]]:
    """Variant name -> ("reference" | "same" | "different" | "not serving", reason)."""
    comp = _dict(record.get("runtime_comparison"))
    out: dict[str, tuple[str, str | None]] = {}
    ref = comp.get("reference")
    for name in comp.get("not_serving") or []:
        out[str(name)] = ("not serving", None)
    for item in comp.get("different") or []:
        if isinstance(item, dict):
            out[str(item.get("name"))] = ("different", item.get("reason"))
        else:
            out[str(item)] = ("different", None)
    for name in comp.get("same") or []:
        out[str(name)] = ("same", None)
    if ref:
        out[str(ref)] = ("reference", None)
    return out


def _serving_cell(state: tuple[str, str | None] | None) -> str:
    if state is None:
        return "–"
    kind, reason = state
    if kind == "different":
        return "differs" + (f": {reason}" if reason else "")
    return {"reference": "reference", "same": "same", "not serving": "not serving"}[kind]


def _get_root(rt: dict) -> str:
    status = rt.get("root_status")
    if status is None:
        return "–"
    kind = rt.get("root_content_type")
    return f"{status}" + (f" ({kind})" if kind else "")


BODY_EXCERPT = 80


def body_excerpt(body) -> str:
    if body is None:
        return "–"
    text = " ".join(str(body).split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT - 1] + "…"


def runtime_table(record: dict, *, body: bool = False) -> pd.DataFrame | None:
    """Each started variant: healthy after, idle memory, GET / and how it compares."""
    started = [v for v in record.get("variants") or [] if isinstance(v.get("runtime"), dict)]
    if not started:
        return None
    states = serving(record)
    data = []
    for v in started:
        rt = _runtime(v)
        row = {
            "Variant": variant_cell(v),
            "Status": rt.get("status") or "–",
            "/healthz 200 after": human_seconds(rt.get("seconds_to_healthy")),
            "Idle memory": human_size(rt.get("idle_memory_bytes")),
            "GET /": _get_root(rt),
            "Same GET / as the reference": _serving_cell(states.get(v["name"])),
        }
        if body:
            row["GET / body (start)"] = body_excerpt(rt.get("root_body"))
        data.append(row)
    return pd.DataFrame(data)


def runtime_statement(record: dict) -> list[str]:
    """Plainly: do all variants serve the same GET /, and if not, which differ and why."""
    variants = record.get("variants") or []
    started = [v for v in variants if isinstance(v.get("runtime"), dict)]
    if not started:
        return []
    by_name = {v["name"]: v for v in variants}

    def ref(name: str) -> str:
        return variant_ref(by_name[name]) if name in by_name else f"`{name}`"

    comp = _dict(record.get("runtime_comparison"))
    lines = []
    reference = comp.get("reference")
    if not comp:
        lines.append("GET / was not compared across the variants in this run.")
    elif not reference:
        silent = [str(n) for n in comp.get("not_serving") or []]
        lines.append(f"None of the {len(silent)} variants started serves GET /:")
        for n in silent:
            error = _runtime(by_name.get(n, {})).get("error")
            lines.append(f"- {ref(n)} does not serve" + (f": {error}" if error else ""))
    else:
        states = serving(record)
        same = [n for n, (k, _) in states.items() if k in ("reference", "same")]
        different = [(n, r) for n, (k, r) in states.items() if k == "different"]
        silent = [n for n, (k, _) in states.items() if k == "not serving"]
        total = len(same) + len(different) + len(silent)
        if not different and not silent:
            lines.append(f"All {total} variants serve the same GET / (status, content type "
                         f"and body, compared with {ref(reference)})." if total > 1 else
                         f"Only {ref(reference)} served: there is nothing to compare its GET / with.")
        else:
            lines.append(f"{len(same)} of {total} variants serve the same GET / as the "
                         f"reference {ref(reference)}:")
            lines += [f"- {ref(n)} serves a different GET /: {r or 'no reason recorded'}"
                      for n, r in different]
            for n in silent:
                error = _runtime(by_name.get(n, {})).get("error")
                lines.append(f"- {ref(n)} does not serve" + (f": {error}" if error else ""))
    for v in variants:
        if isinstance(v.get("runtime"), dict):
            continue
        why = "its build failed" if v.get("status") not in MEASURED else "not checked"
        lines.append(f"- {variant_ref(v)} was not started: {why}.")
    return lines


def runtime_conditions(record: dict) -> str:
    """How the containers ran, in one sentence."""
    started = [_runtime(v) for v in record.get("variants") or [] if isinstance(v.get("runtime"), dict)]
    limits = list(dict.fromkeys(
        ", ".join(f"{k} {val}" for k, val in _dict(rt.get("limits")).items())
        for rt in started if rt.get("limits")))
    bases = list(dict.fromkeys(str(rt["memory_basis"]) for rt in started if rt.get("memory_basis")))
    parts = ["/healthz 200 after: seconds from starting the container to the first 200 from "
             "/healthz; idle memory: read once it was healthy and idle"
             + (f" ({'; '.join(bases)})" if bases else "")]
    if limits:
        parts.append(f"containers ran with the limits {' / '.join(limits)}")
    return "; ".join(parts) + "."


def runtime_failures(record: dict) -> list[tuple[dict, str, list[str]]]:
    """(variant, error, last log lines) of every started variant that did not serve."""
    out = []
    for v in record.get("variants") or []:
        rt = _runtime(v)
        if v.get("status") == FAILED_AT_RUNTIME or (rt and rt.get("status") not in (None, "ok")):
            error = rt.get("error") or v.get("error") or "failed at runtime"
            out.append((v, str(error), _tail(rt.get("logs_tail"))))
    return out


def fence_for(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in the lines it encloses."""
    longest = max([len(run) for line in lines for run in re.findall(r"`+", line)] + [0])
    return "`" * max(3, longest + 1)


def runtime_lines(record: dict) -> list[str]:
    table = runtime_table(record)
    if table is None:
        return []
    lines = ["## Runtime", ""] + runtime_statement(record)
    lines += ["", markdown_table(table), "", runtime_conditions(record)]
    for v, error, logs in runtime_failures(record):
        lines += ["", (f"{variant_ref(v)} failed at runtime: {error}. Its image was built "
                       "and measured: its sizes stand.")]
        if logs:
            fence = fence_for(logs)
            lines += ["", "Last lines of its log:", "", fence, *logs, fence]
    return lines


# ---------------------------------------------------------------------------- bytes

def bytes_table(record: dict) -> pd.DataFrame | None:
    """Where the bytes of each final image go, from the layer attribution."""
    variants = [v for v in record.get("variants") or [] if is_measured(v)]
    if not any(_attribution(v) for v in variants):
        return None
    data = []
    for v in variants:
        att = _attribution(v)
        split = _dict(att.get("split"))
        parts = [split.get(k) for k in ("dependencies_bytes", "app_bytes", "other_bytes")]
        by_stage = _dict(att.get("by_stage"))
        data.append({
            "Variant": variant_cell(v),
            "Base image": human_size(split.get("base_bytes")),
            "Dependencies (node_modules)": human_size(parts[0]),
            "App": human_size(parts[1]),
            "Other": human_size(parts[2]),
            "Above the base": "–" if None in parts else human_size(sum(parts)),
            "History entries": "–" if att.get("history_count") is None else str(att["history_count"]),
            "Layers": "–" if att.get("layer_count") is None else str(att["layer_count"]),
            "Empty entries": ("–" if att.get("empty_history_count") is None
                              else str(att["empty_history_count"])),
            "By stage (above the base)": ", ".join(f"{stage} {human_size(b)}"
                                                   for stage, b in by_stage.items()) or "–",
        })
    return pd.DataFrame(data)


BYTES_NOTE = (
    "Each layer of the final image is attributed to the base image or to the instruction "
    "and stage that made it (a `COPY --from=X` layer counts for stage X); the bytes of the "
    "layers above the base are split into node_modules (dependencies), the application "
    "directory's other files (app) and everything else. History entries that made no layer "
    "(ENV, CMD, USER, …) are the empty entries: `docker history` lists more entries than "
    "the image has layers.")


def layer_table(variant: dict) -> pd.DataFrame | None:
    """Every layer of one variant's image, with the instruction and stage that made it."""
    layers = _attribution(variant).get("layers")
    if not layers:
        return None
    data = []
    for layer in layers:
        base = layer.get("source") == "base"
        data.append({
            "#": str(layer.get("index", "–")),
            "Source": "base image" if base else "instruction",
            "Instruction": layer.get("instruction") or "–",
            "Stage": "–" if layer.get("stage") is None else str(layer["stage"]),
            "From stage": ("–" if layer.get("from_stage") is None else str(layer["from_stage"])),
            "Size": human_size(layer.get("size_bytes")),
            "node_modules": human_size(layer.get("node_modules_bytes")),
            "App": human_size(layer.get("app_bytes")),
            "Other": human_size(layer.get("other_bytes")),
        })
    return pd.DataFrame(data)


def bytes_lines(record: dict) -> list[str]:
    table = bytes_table(record)
    if table is None:
        return []
    return ["## Where the bytes go", "", markdown_table(table), "", BYTES_NOTE]


# ---------------------------------------------------------------------------- the frame

# Figures from the layer analysis (harness/layers.py) carried into the table and CSV.
CONTENT_COLUMNS = ("compressed_estimate_bytes", "file_count", "files_bytes", "wasted_bytes",
                   "efficiency", "duplicate_bytes", "app_node_modules_bytes",
                   "app_node_modules_package_count", "source_map_bytes",
                   "typescript_source_bytes", "has_shell", "os_package_count", "os_package_db")


def _scenario_columns(record: dict) -> list[str]:
    found = [s for v in record.get("variants") or [] for builder, primary, build in builds(record, v)
             if primary for s in scenario_tables(record, build)]
    return list(SCENARIOS) + [s for s in dict.fromkeys(found) if s not in SCENARIOS]


def _scenario_figures(record: dict, variant: dict, scenarios: list[str]) -> dict:
    primary = [r for r in build_rows({**record, "variants": [variant]}) if r.primary]
    by_scenario = {r.scenario: r for r in primary}
    out = {}
    for scenario in scenarios:
        r = by_scenario.get(scenario)
        s = r.summary if r is not None else None
        key = scenario.replace("-", "_")
        out[f"{key}_samples"] = s.n if s else None
        out[f"{key}_seconds_median"] = s.median if s else None
        out[f"{key}_seconds_mad"] = s.mad if s else None
        out[f"{key}_steps_rebuilt"] = r.steps_rebuilt if r is not None and s else None
    return out


def frame(record: dict) -> pd.DataFrame:
    """One row per variant, in the run's order, raw numbers with units in their names."""
    rows = []
    scenarios = _scenario_columns(record)
    states = serving(record)
    default_builder = (record.get("settings") or {}).get("builder") or "classic"
    for v in record.get("variants", []):
        image = v.get("image") or {}
        build = v.get("build") or {}
        samples = build.get("samples_seconds") or []
        summary = summarize(samples)
        base = final_base(v) or {}
        size = image.get("size_bytes")
        base_size = base.get("size_bytes")
        contents = _contents(v)
        reg, rt, att = _registry(v), _runtime(v), _attribution(v)
        split = _dict(att.get("split"))
        state = states.get(v["name"])
        rows.append({
            "name": v["name"],
            "label": v.get("label") or v["name"],
            "status": v.get("status"),
            "error": v.get("error"),
            "builder": v.get("builder") or build.get("builder") or default_builder,
            "base_image": base.get("requested") or base.get("stage_base") or "",
            "base_standin": bool(base.get("standin")),
            "uses_standin": uses_standin(v),
            "image_id": image.get("id"),
            "size_bytes": size,
            "layer_count": image.get("layer_count"),
            "history_count": image.get("history_count"),
            "base_size_bytes": base_size,
            "added_bytes": (size - base_size) if size is not None and base_size is not None else None,
            "build_samples": len(samples),
            "build_seconds_median": summary.median if summary else None,
            "build_seconds_mad": summary.mad if summary else None,
            "build_seconds_min": summary.min if summary else None,
            "build_seconds_max": summary.max if summary else None,
            "build_steps": build.get("steps_total"),
            "context_bytes": build.get("context_bytes"),
            "context_files": build.get("context_files"),
            "context_seconds": build.get("context_seconds"),
            "context_bytes_without_dockerignore": build.get("context_bytes_without_dockerignore"),
            "context_files_without_dockerignore": build.get("context_files_without_dockerignore"),
            "user": image.get("user") if image else None,
            **{key: contents.get(key) for key in CONTENT_COLUMNS},
            "dev_dependencies_shipped": (len(contents["dev_dependencies_present"])
                                         if "dev_dependencies_present" in contents else None),
            "setuid_file_count": (len(contents["setuid_files"])
                                  if "setuid_files" in contents else None),
            "package_managers": package_managers(contents),
            "compressed_size_bytes": exact_compressed(v),
            "compressed_estimate_error_pct": estimate_error_pct(v),
            "push_seconds": reg.get("push_seconds"),
            "pull_seconds": reg.get("pull_seconds"),
            "pull_layers_present": reg.get("pull_layers_present"),
            "pull_layers": reg.get("pull_layers"),
            "image_removed_before_pull": reg.get("image_removed_before_pull"),
            "registry_error": reg.get("error"),
            "runtime_status": rt.get("status"),
            "runtime_error": rt.get("error"),
            "seconds_to_healthy": rt.get("seconds_to_healthy"),
            "idle_memory_bytes": rt.get("idle_memory_bytes"),
            "memory_basis": rt.get("memory_basis"),
            "root_status": rt.get("root_status"),
            "root_content_type": rt.get("root_content_type"),
            "runtime_user": rt.get("user"),
            "get_root_vs_reference": state[0] if state else None,
            "get_root_difference": state[1] if state else None,
            "split_base_bytes": split.get("base_bytes"),
            "split_dependencies_bytes": split.get("dependencies_bytes"),
            "split_app_bytes": split.get("app_bytes"),
            "split_other_bytes": split.get("other_bytes"),
            "empty_history_count": att.get("empty_history_count"),
            **_scenario_figures(record, v, scenarios),
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        first = df["size_bytes"].iloc[0]
        df["saved_vs_first"] = [
            (1 - s / first) if first and s is not None and not pd.isna(s) else None
            for s in df["size_bytes"]
        ]
    return df


# ---------------------------------------------------------------------------- summary

def _measured_row(row: pd.Series) -> bool:
    return row["status"] in MEASURED


def _base_cell(row: pd.Series) -> str:
    ref = short_ref(row["base_image"]) if row["base_image"] else "–"
    return ref + (STANDIN_MARK if row["base_standin"] or row["uses_standin"] else "")


def _size_cell(row: pd.Series) -> str:
    if not _measured_row(row):
        return "**failed**"
    if row["status"] == FAILED_AT_RUNTIME:
        return f"{human_size(row['size_bytes'])} (**failed at runtime**)"
    return human_size(row["size_bytes"])


def _time_cell(row: pd.Series) -> str:
    med = row["build_seconds_median"]
    if med is None or pd.isna(med):
        return "–"
    text = human_seconds(med)
    if row["build_samples"] > 1:
        text += f" ± {human_seconds(row['build_seconds_mad'])} (n={row['build_samples']})"
    return text


def _saved_cell(row: pd.Series, index: int) -> str:
    saved = row.get("saved_vs_first")
    if not _measured_row(row) or saved is None or pd.isna(saved):
        return "–"
    if index == 0:
        return "baseline"
    return f"−{saved:.0%}" if saved >= 0 else f"+{-saved:.0%}"


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """The article's table (Approach, Base Image, Final Size) plus what the harness adds."""
    return pd.DataFrame({
        "Approach": df["label"],
        "Base Image": df.apply(_base_cell, axis=1),
        "Final Size": df.apply(_size_cell, axis=1),
        "vs first": [_saved_cell(r, i) for i, (_, r) in enumerate(df.iterrows())],
        "Added to base": [human_size(r["added_bytes"]) if _measured_row(r) else "–"
                          for _, r in df.iterrows()],
        "Layers": [str(int(r["layer_count"])) if _measured_row(r) and not pd.isna(r["layer_count"])
                   else "–" for _, r in df.iterrows()],
        "Build time (median)": df.apply(_time_cell, axis=1),
    })


def summary_notes(record: dict) -> list[str]:
    """The notes under the summary table (markdown; the HTML page renders the same text)."""
    settings = record.get("settings") or {}
    builder = settings.get("builder", "classic")
    others = [b for b in settings.get("builders") or [] if b != builder]
    lines = [SIZE_UNIT_NOTE,
             f"Build time: cold builds (no cache, base images already present) with the "
             f"{builder} builder, median ± MAD of the samples"
             + (f" (the {', '.join(others)} builder{'s' if len(others) > 1 else ''} and every "
                "scenario: see the build-time table)" if others else "") + ". "
             "\"Added to base\" is the final size minus the size of the runtime stage's base image."]
    if any(v.get("status") == FAILED_AT_RUNTIME for v in record.get("variants") or []):
        lines.append("Failed at runtime: the image was built and measured (its figures are "
                     "real) but did not serve; see Runtime.")
    return lines


def _yes_no(value) -> str:
    return "–" if value is None or (isinstance(value, float) and pd.isna(value)) else ("yes" if value else "no")


def _opt_size(value) -> str:
    return "–" if value is None or pd.isna(value) else human_size(value)


def _opt_int(value) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def contents_table(df: pd.DataFrame) -> pd.DataFrame | None:
    """What ships in each image: the questions a reviewer asks after the size."""
    if "compressed_estimate_bytes" not in df or df["compressed_estimate_bytes"].isna().all():
        return None
    return pd.DataFrame({
        "Approach": [label + (STANDIN_MARK if standin else "")
                     for label, standin in zip(df["label"], df["uses_standin"])],
        "Compressed (est.)": [_opt_size(x) for x in df["compressed_estimate_bytes"]],
        "App node_modules": [
            "–" if pd.isna(b) else f"{human_size(b)} ({int(n)} pkgs)"
            for b, n in zip(df["app_node_modules_bytes"], df["app_node_modules_package_count"])],
        "devDeps shipped": [_opt_int(x) for x in df["dev_dependencies_shipped"]],
        "Source maps + .ts": [
            "–" if pd.isna(a) else human_size(a + (b or 0))
            for a, b in zip(df["source_map_bytes"], df["typescript_source_bytes"])],
        "Wasted": [_opt_size(x) for x in df["wasted_bytes"]],
        "Efficiency": ["–" if pd.isna(x) else f"{x:.1%}" for x in df["efficiency"]],
    })


def _runs_as(row: pd.Series) -> str:
    if not _measured_row(row):
        return "–"
    user = row["user"]
    if user is None or (isinstance(user, float) and pd.isna(user)):
        user = row["runtime_user"]
        if user is None or (isinstance(user, float) and pd.isna(user)):
            return "–"
    return str(user) if str(user) not in ("", "0", "root", "0:0") else "root"


def security_table(df: pd.DataFrame) -> pd.DataFrame | None:
    """Who the process runs as and what an attacker would find in the image."""
    if df.empty:
        return None
    known = df[["user", "runtime_user", "has_shell", "package_managers", "os_package_count",
                "setuid_file_count"]]
    if known.isna().all().all():
        return None
    return pd.DataFrame({
        "Approach": [label + (STANDIN_MARK if standin else "")
                     for label, standin in zip(df["label"], df["uses_standin"])],
        "Runs as": [_runs_as(r) for _, r in df.iterrows()],
        "Shell": [_yes_no(x) for x in df["has_shell"]],
        "Package managers": ["–" if x is None or pd.isna(x) else x for x in df["package_managers"]],
        "OS packages": ["–" if pd.isna(n) else f"{int(n)}" + (f" ({db})" if isinstance(db, str) and db else "")
                        for n, db in zip(df["os_package_count"], df["os_package_db"])],
        "Setuid files": [_opt_int(x) for x in df["setuid_file_count"]],
    })


CONTENTS_NOTE = ("Compressed: gzip level 6 of each layer, as a registry stores it (estimate). "
                 "Wasted: bytes of files that a later layer overwrote or deleted (the kept copy "
                 "is not counted); efficiency = visible bytes / bytes in all layers.")

SECURITY_NOTE = ("Runs as: the image's USER (root when none is set). Shell: /bin/sh exists. "
                 "Package managers: apk, dpkg, apt, npm, yarn or pnpm found on the image's PATH. "
                 "OS packages: entries in the OS package database. Setuid files: files with the "
                 "setuid or setgid bit.")


def standin_notes(record: dict) -> list[str]:
    """One footnote per stand-in base used, naming what it is instead of the real image."""
    lines = []
    for ref, res in sorted((record.get("bases") or {}).items()):
        if not res.get("standin"):
            continue
        node = f", Node.js {res['node_version']}" if res.get("node_version") else ""
        lines.append(
            f"({STANDIN_MARK}) `{ref}` could not be pulled here; a local stand-in was used: "
            f"`{res.get('used_ref')}` (recipe `{res.get('recipe')}`{node}). "
            f"{res.get('standin_description') or ''}".rstrip())
    return lines


def failure_lines(df: pd.DataFrame, record: dict | None = None) -> list[str]:
    """Variants that failed (at build or at runtime), and builds or scenarios that failed."""
    out = []
    for _, r in df.iterrows():
        if r["status"] == FAILED_AT_RUNTIME:
            error = str(r["error"] or "failed at runtime")
            error = error if error.startswith("failed at runtime") else f"failed at runtime: {error}"
            out.append(f"- `{r['name']}` {error} (its image was built and measured)")
        elif r["status"] != "ok":
            out.append(f"- `{r['name']}` failed: {r['error'] or r['status']}")
    if record is not None:
        for row in build_rows(record):
            if row.state == "failed" and row.primary:
                continue  # the variant's own failure, listed above
            if row.state in ("failed", "error"):
                what = "build" if row.state == "failed" else f"{row.scenario} builds"
                out.append(f"- `{row.name}`: the {row.builder} {what} failed: {row.reason}")
    return out


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame of text as a markdown table; a `|` or a line break in a cell stays in it."""
    def cell(x):
        return " ".join(x.replace("|", "\\|").split()) if isinstance(x, str) else x
    return df.apply(lambda col: col.map(cell)).to_markdown(index=False)


def markdown_lines(record: dict) -> list[str]:
    df = frame(record)
    if df.empty:
        return ["No variants were measured."]
    lines = [markdown_table(summary_table(df)), ""] + summary_notes(record)
    notes = standin_notes(record)
    if notes:
        lines += [""] + notes
    for section in (build_time_lines(record), context_lines(record), shipping_lines(record),
                    runtime_lines(record)):
        if section:
            lines += [""] + section
    contents = contents_table(df)
    if contents is not None:
        lines += ["", "## What ships in each image", "",
                  "Read from the layers of `docker save`:", "",
                  markdown_table(contents), "",
                  CONTENTS_NOTE]
    security = security_table(df)
    if security is not None:
        lines += ["", "## Security posture", "", markdown_table(security), "", SECURITY_NOTE]
    section = bytes_lines(record)
    if section:
        lines += [""] + section
    fails = failure_lines(df, record)
    if fails:
        lines += ["", "Failures:"] + fails
    engine = record.get("engine") or {}
    machine = record.get("machine") or {}
    lines += ["", (f"Run {record.get('run_id')} on {machine.get('hostname')} "
                   f"({machine.get('cpu_count')} CPUs), Docker Engine {engine.get('server_version')} "
                   f"(API {engine.get('api_version')}, {engine.get('storage_driver')}).")]
    return lines


def _raw_values(df: pd.DataFrame) -> pd.DataFrame:
    """Integer columns of a frame whose ints pandas made floats (a missing value among them)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == float and out[col].notna().any() \
                and all(float(x).is_integer() for x in out[col].dropna()) \
                and (col.endswith(("_bytes", "_count", "_files", "_samples", "_steps_rebuilt",
                                   "_layers", "_status", "_shipped", "_present", "_dockerignore"))
                     or col in ("layer_count", "history_count", "build_steps", "file_count",
                                "pull_layers", "pull_layers_present", "steps_total",
                                "steps_cached", "steps_rebuilt", "n")):
            out[col] = out[col].astype("Int64")
    return out


def csv_text(record: dict) -> str:
    """results.csv: one row per variant."""
    buf = io.StringIO()
    _raw_values(frame(record)).to_csv(buf, index=False)
    return buf.getvalue()


BUILD_TIMES_COLUMNS = (
    "variant", "uses_standin", "builder", "measured_builder", "scenario", "state", "reason",
    "n", "median_seconds", "mad_seconds", "mean_seconds", "stdev_seconds", "min_seconds",
    "max_seconds", "spread", "noisy", "outlier_count", "outlier_indices", "steps_total",
    "steps_cached", "steps_rebuilt", "changed", "samples_seconds", "warmup_seconds")


def build_times_frame(record: dict) -> pd.DataFrame:
    """build_times.csv: one row per variant x builder x scenario, statistics and samples."""
    standins = {v["name"]: uses_standin(v) for v in record.get("variants") or []}
    rows = []
    for r in build_rows(record):
        s = r.summary
        rows.append({
            "variant": r.name, "uses_standin": standins.get(r.name, False),
            "builder": r.builder, "measured_builder": r.primary, "scenario": r.scenario,
            "state": r.state, "reason": r.reason,
            "n": s.n if s else 0,
            "median_seconds": s.median if s else None, "mad_seconds": s.mad if s else None,
            "mean_seconds": s.mean if s else None, "stdev_seconds": s.stdev if s else None,
            "min_seconds": s.min if s else None, "max_seconds": s.max if s else None,
            "spread": s.spread if s else None, "noisy": r.noisy,
            "outlier_count": len(s.outliers) if s else None,
            "outlier_indices": " ".join(str(i) for i in s.outliers) if s else "",
            "steps_total": r.steps_total, "steps_cached": r.steps_cached,
            "steps_rebuilt": r.steps_rebuilt, "changed": r.changed,
            "samples_seconds": " ".join(repr(x) for x in r.samples),
            "warmup_seconds": " ".join(repr(x) for x in r.warmup),
        })
    return pd.DataFrame(rows, columns=list(BUILD_TIMES_COLUMNS))


def build_times_csv_text(record: dict) -> str:
    buf = io.StringIO()
    _raw_values(build_times_frame(record)).to_csv(buf, index=False)
    return buf.getvalue()


def history_entries(results_dir: Path) -> list:
    """The history beside a run directory, if any (damaged lines are skipped here and
    reported by `harness history`)."""
    from .history import HISTORY_FILE, read_history

    path = results_dir / HISTORY_FILE
    return read_history(path)[0] if path.exists() else []


@dataclass
class Written:
    table: Path
    csv: Path
    chart: Path
    html: Path
    charts: list[Path]
    build_times_csv: Path | None = None


def write_report(record: dict, run_dir: Path) -> Written:
    """(Re)generate table.md, results.csv, build_times.csv, the charts and index.html."""
    from . import charts, html_report  # both render from this module's tables

    out = Written(run_dir / "table.md", run_dir / "results.csv", run_dir / "sizes.png",
                  run_dir / "index.html", [], run_dir / BUILD_TIMES_CSV)
    write_atomic(out.table, "\n".join(markdown_lines(record)) + "\n")
    write_atomic(out.csv, csv_text(record))
    write_atomic(out.build_times_csv, build_times_csv_text(record))
    for name, draw in (("sizes", charts.sizes), ("composition", charts.composition),
                       ("build_times", charts.build_times)):
        out.charts += charts.save(draw(record), run_dir / name)
    entries = history_entries(run_dir.parent)
    if entries:
        out.charts += charts.save(charts.trends(entries), run_dir / "trends")
    write_atomic(out.html, html_report.render(record, run_dir))
    return out
