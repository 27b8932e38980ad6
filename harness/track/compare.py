"""Compare two measurements of a variant: sizes exactly, build times with a significance test.

Records in, rows and text out; nothing here touches Docker or prints. `history.regressions`
walks a variant's runs with the same `row`, so `harness compare` and `harness history`
always agree on what counts as a change.

Build times follow asv: a change is called only when the ratio of medians exceeds a factor
AND a Mann-Whitney U test on the raw samples is significant. The test is plain Python (exact
permutation distribution, ties included) rather than scipy: it is a few dozen lines, and scipy
would be the harness's largest dependency for one function.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.model import HISTORY_BASE_KEYS, HistoryEntry, Run, VariantResult
from harness.report.formatting import causes, run_of
from harness.report.units import human_seconds, human_size, percent_change, signed_bytes

DEFAULT_FACTOR = 1.10
# Builds are slow, so runs carry few samples; 0.05 lets 4 samples a side (min p = 0.029) show
# a change, where asv's 0.002 would need 7. The factor guards against calling tiny shifts.
DEFAULT_ALPHA = 0.05
EXACT_MAX_N = 40  # up to this many samples in all the p-value is exact; beyond, normal approx.

SLOWER, FASTER = "slower", "faster"
SAME = "within threshold"
UNSURE = "not significant"
APART = "not compared"  # different machines: their build times say nothing about each other


# Mann-Whitney U -------------------------------------------------------------------------

@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of the first sample: pairs (x, y) with x > y, a tie counting one half
    p: float  # two-sided
    exact: bool


def mann_whitney_u(a: list[float], b: list[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test of samples `a` and `b` (each at least one value)."""
    if not a or not b:
        raise ValueError("Mann-Whitney U needs at least one value in each sample")
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    values = list(a) + list(b)
    if len(values) <= EXACT_MAX_N:
        return MannWhitney(u, _exact_p(_doubled_midranks(values), len(a)), True)
    return MannWhitney(u, _normal_p(u, len(a), len(b), values), False)


def min_p(m: int, n: int) -> float:
    """The smallest two-sided p-value samples of sizes m and n can reach (no ties)."""
    return min(1.0, 2 / math.comb(m + n, m))


def _doubled_midranks(values: list[float]) -> list[int]:
    """Ranks (1-based, ties sharing their mean), doubled so that they stay integers."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and values[order[j]] == values[order[i]]:
            j += 1
        for k in order[i:j]:
            ranks[k] = (i + 1) + j  # 2 * mean of the ranks i+1 .. j
        i = j
    return ranks


def _exact_p(ranks2: list[int], m: int) -> float:
    """P(|W - E[W]| >= |w - E[W]|) over all ways to pick the first sample's m ranks."""
    counts: list[dict[int, int]] = [{} for _ in range(m + 1)]
    counts[0][0] = 1
    for r in ranks2:  # subset-sum counting, largest size first so each rank is used once
        for k in range(m, 0, -1):
            for s, c in counts[k - 1].items():
                counts[k][s + r] = counts[k].get(s + r, 0) + c
    mean2 = m * (len(ranks2) + 1)
    observed = abs(sum(ranks2[:m]) - mean2)
    extreme = sum(c for s, c in counts[m].items() if abs(s - mean2) >= observed)
    return extreme / math.comb(len(ranks2), m)


def _normal_p(u: float, m: int, n: int, values: list[float]) -> float:
    """Normal approximation with tie correction and continuity correction."""
    total = m + n
    ties = sum(t**3 - t for t in _tie_sizes(values))
    var = m * n / 12 * ((total + 1) - ties / (total * (total - 1)))
    if var <= 0:
        return 1.0
    z = max(0.0, abs(u - m * n / 2) - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(z / math.sqrt(2)))


def _tie_sizes(values: list[float]) -> list[int]:
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return list(counts.values())


# Build time verdict ---------------------------------------------------------------------

@dataclass(frozen=True)
class TimeChange:
    scenario: str
    before_median: float
    after_median: float
    ratio: float  # after / before
    n_before: int
    n_after: int
    p_value: float | None  # None: no test was run (within threshold, or n too small)
    verdict: str  # SLOWER | FASTER | SAME | UNSURE | APART
    note: str

    @property
    def called(self) -> bool:
        return self.verdict in (SLOWER, FASTER)

    def text(self) -> str:
        return (f"{human_seconds(self.before_median)} → {human_seconds(self.after_median)} "
                f"(×{self.ratio:.2f}, n={self.n_before}/{self.n_after}): {self.verdict}"
                + (f", {self.note}" if self.note else ""))


def time_change(scenario: str, before: list[float], after: list[float],
                factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA) -> TimeChange:
    b, a = statistics.median(before), statistics.median(after)
    ratio = a / b if b > 0 else (1.0 if a == b else math.inf)

    def verdict(v: str, note: str, p: float | None = None) -> TimeChange:
        return TimeChange(scenario, b, a, ratio, len(before), len(after), p, v, note)

    if 1 / factor <= ratio <= factor:
        return verdict(SAME, f"ratio within ×{factor:g}")
    if min_p(len(before), len(after)) >= alpha:
        return _few_samples(before, after, ratio, factor, verdict)
    p = mann_whitney_u(before, after).p
    if p >= alpha:
        return verdict(UNSURE, f"p={p:.2g}", p)
    return verdict(SLOWER if ratio > 1 else FASTER, f"p={p:.2g}", p)


# With 3 samples a side a rank test can never reach p < 0.05 (its smallest p is 0.1), so
# at the default --repeat it would never flag anything. Below that n, a change is called
# when every sample of one run lies beyond every sample of the other, by more than the
# noise floor, and the medians differ by more than both the factor and the spread: the
# smallest change that can be told from the noise the samples themselves show.
NOISE_FLOOR_SECONDS = 0.2  # below this, timer and scheduler jitter on a busy runner


def detectable_ratio(before: list[float], factor: float = DEFAULT_FACTOR) -> float:
    """The smallest ratio of medians that few samples can show: the factor, or the spread
    of the earlier samples plus the noise floor, whichever is larger."""
    median = statistics.median(before)
    if median <= 0:
        return math.inf
    spread = max(before) - min(before)
    return max(factor, 1 + (spread + NOISE_FLOOR_SECONDS) / median)


def _few_samples(before: list[float], after: list[float], ratio: float, factor: float,
                 verdict) -> TimeChange:
    least = detectable_ratio(before, factor)
    n = f"n={len(before)}/{len(after)}"
    slower = min(after) - max(before) >= NOISE_FLOOR_SECONDS
    faster = min(before) - max(after) >= NOISE_FLOOR_SECONDS
    if (slower and ratio >= least) or (faster and ratio <= 1 / least):
        return verdict(SLOWER if slower else FASTER,
                       f"every sample {'slower' if slower else 'faster'}, {n} too few for a "
                       f"rank test; changes beyond ×{least:.2f} are detectable here")
    return verdict(UNSURE, f"n too small; at {n} only changes beyond ×{least:.2f} with every "
                           "sample apart are detectable")


# What one run says about one variant -------------------------------------------------------

# The comparable figures of one variant in one run are exactly its history line: one type,
# defined with the history file's format in harness.model.
Facts = HistoryEntry


BASE_KEYS = HISTORY_BASE_KEYS


def facts(run: Run | dict, variant: VariantResult | dict) -> Facts:
    """The comparable figures of `variant` in `run` (dicts, as results.json holds them, are
    converted first): the figures of its history line."""
    if isinstance(run, dict) or isinstance(variant, dict):
        run, variant = _typed_pair(run, variant)
    return HistoryEntry.of(run, variant)


def _typed_pair(run: Run | dict, variant: VariantResult | dict) -> tuple[Run, VariantResult]:
    """Dict arguments as the model; a variant dict is converted inside its record, so that
    a version-1 variant is migrated with it."""
    if isinstance(variant, dict):
        record = run.to_json() if isinstance(run, Run) else run
        variant = run_of({**record, "variants": [variant]}).variants[0]
    return run_of(run), variant


# Rows --------------------------------------------------------------------------------------

MEASURES = (("size_bytes", "size"), ("compressed_size_bytes", "compressed size"),
            ("layer_count", "layers"))


@dataclass(frozen=True)
class Row:
    variant: str
    label: str
    baseline: str  # which run (or variant) the `before` side is, for headers
    current: str
    before: Facts | None  # None: the variant was added
    after: Facts | None  # None: the variant was removed
    times: tuple[TimeChange, ...] = ()
    causes: tuple[str, ...] = ()

    @property
    def presence(self) -> str:
        return "added" if self.before is None else "removed" if self.after is None else "both"

    def pair(self, attr: str) -> tuple:
        return (getattr(self.before, attr) if self.before else None,
                getattr(self.after, attr) if self.after else None)

    @property
    def changed(self) -> bool:
        if self.presence != "both":
            return True
        return (any(b != a for b, a in map(self.pair, ("status", *(m for m, _ in MEASURES))))
                or any(t.called for t in self.times))


def row(before: Facts | None, after: Facts | None, baseline: str, current: str,
        factor: float = DEFAULT_FACTOR, alpha: float = DEFAULT_ALPHA,
        variant: str | None = None, label: str | None = None) -> Row:
    side = after or before
    both = before is not None and after is not None
    return Row(variant or side.variant, label or side.label, baseline, current, before, after,
               _times(before, after, factor, alpha) if both else (),
               causes(before, after) if both else ())


def _times(before: Facts, after: Facts, factor: float, alpha: float) -> tuple[TimeChange, ...]:
    out = []
    for scenario, samples in after.build_samples.items():
        old = before.build_samples.get(scenario)
        if not samples or not old:
            continue
        t = time_change(scenario, old, samples, factor, alpha)
        if t.verdict != SAME and before.hostname != after.hostname:
            t = TimeChange(**{**asdict(t), "verdict": APART, "p_value": None,
                              "note": f"different machines ({before.hostname}, {after.hostname})"})
        out.append(t)
    return tuple(out)


def compare(baseline: Run | dict, current: Run | dict, factor: float = DEFAULT_FACTOR,
            alpha: float = DEFAULT_ALPHA) -> list[Row]:
    """One row per variant name: the current run's order, then variants it no longer has."""
    before, after = run_of(baseline).primary(), run_of(current).primary()  # a row per variant
    old = {v.name: facts(before, v) for v in before.variants}
    new = {v.name: facts(after, v) for v in after.variants}
    names = list(new) + [n for n in old if n not in new]
    return [row(old.get(n), new.get(n), before.run_id, after.run_id, factor, alpha)
            for n in names]


def compare_variants(record: Run | dict, a: str, b: str, factor: float = DEFAULT_FACTOR,
                     alpha: float = DEFAULT_ALPHA) -> list[Row]:
    """Variant `a` (as baseline) against variant `b` of the same run: one row."""
    run = run_of(record).primary()  # one row per variant
    by_name = {v.name: v for v in run.variants}
    unknown = [n for n in (a, b) if n not in by_name]
    if unknown:
        raise HarnessError(f"run {run.run_id} has no variant(s) {', '.join(unknown)} "
                           f"(it has: {', '.join(by_name)})")
    fa, fb = facts(run, by_name[a]), facts(run, by_name[b])
    return [row(fa, fb, f"{run.run_id} {a}", f"{run.run_id} {b}", factor, alpha,
                variant=f"{a} → {b}", label=f"{fa.label} → {fb.label}")]


# Formats -----------------------------------------------------------------------------------

def _arrow(before, after) -> str:
    return "↑" if after > before else "↓" if after < before else "="


def _size_cell(r: Row, attr: str) -> str:
    b, a = r.pair(attr)
    if r.presence == "added":
        return human_size(a)
    if r.presence == "removed":
        return human_size(b)
    if b is None and a is None:
        return "–"
    return human_size(b) if a == b else f"{human_size(b)} → {human_size(a)}"


def _delta_cell(r: Row, attr: str) -> str:
    if r.presence != "both":
        return r.presence
    b, a = r.pair(attr)
    if b is None or a is None:
        return "–"
    if a == b:
        return "="
    pct = percent_change(b, a)
    return f"{_arrow(b, a)} {signed_bytes(a - b)}" + (f" ({pct:+.1f}%)" if pct is not None else "")


def _layers_cell(r: Row) -> str:
    b, a = r.pair("layer_count")
    if r.presence != "both" or b is None or a is None or a == b:
        value = b if r.presence == "removed" else a
        return "–" if value is None else str(value)
    return f"{b} → {a} ({_arrow(b, a)} {a - b:+d})"


def _time_cell(r: Row) -> str:
    if not r.times:
        return "–"
    many = len(r.times) > 1
    parts = []
    for t in r.times:
        pct = (t.ratio - 1) * 100
        head = f"{t.scenario}: " if many else ""
        mark = "↑ " if t.verdict == SLOWER else "↓ " if t.verdict == FASTER else ""
        why = t.note if t.verdict == SAME else f"{t.verdict}, {t.note}"
        parts.append(f"{head}{human_seconds(t.before_median)} → {human_seconds(t.after_median)} "
                     f"{mark}{pct:+.1f}% ({why})")
    return "; ".join(parts)


def _status_cell(r: Row) -> str | None:
    """The size cell of a row where a side failed to build."""
    b, a = r.pair("status")
    if "failed" not in (b, a):
        return None
    return {("ok", "failed"): "**now fails**", ("failed", "ok"): "builds again"}.get((b, a), "failed")


def to_markdown(rows: list[Row]) -> str:
    if not rows:
        return "No variants to compare."
    lines = [f"### Image comparison: `{rows[0].baseline}` → `{rows[0].current}`", "",
             "| Variant | Size | Δ size | Compressed | Layers | Build time (median) | Changed |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        failed = _status_cell(r)
        cells = [f"{r.label} (`{r.variant}`)", failed or _size_cell(r, "size_bytes"),
                 "–" if failed else _delta_cell(r, "size_bytes"),
                 _compressed_cell(r), _layers_cell(r), _time_cell(r),
                 "; ".join(r.causes) if r.changed and r.presence == "both" else ""]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Sizes are uncompressed, as `docker images` shows them, in SI units "
              "(1 MB = 1,000,000 bytes). A build-time change is called only when the ratio of "
              "medians exceeds the threshold and a Mann-Whitney U test on the samples is significant."]
    return "\n".join(lines)


def _compressed_cell(r: Row) -> str:
    b, a = r.pair("compressed_size_bytes")
    if b is None and a is None:
        return "–"
    if r.presence != "both" or b is None or a is None or a == b:
        return _size_cell(r, "compressed_size_bytes")
    return f"{_size_cell(r, 'compressed_size_bytes')}, {_delta_cell(r, 'compressed_size_bytes')}"


def row_dict(r: Row) -> dict:
    out = {"variant": r.variant, "label": r.label, "presence": r.presence}
    for attr in ("status", *(m for m, _ in MEASURES)):
        b, a = r.pair(attr)
        out[attr] = {"before": b, "after": a}
        if attr != "status":
            both = b is not None and a is not None
            out[attr].update(delta=a - b if both else None, pct=percent_change(b, a) if both else None)
    out["build"] = [asdict(t) for t in r.times]
    out["causes"] = list(r.causes)
    return out


def to_json(rows: list[Row]) -> str:
    return json.dumps({"baseline": rows[0].baseline if rows else None,
                       "current": rows[0].current if rows else None,
                       "rows": [row_dict(r) for r in rows]}, indent=2) + "\n"


def to_csv(rows: list[Row]) -> str:
    flat = [_flatten(row_dict(r)) for r in rows]
    columns = list(dict.fromkeys(k for f in flat for k in f))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def _flatten(d: dict) -> dict:
    out = {}
    for key, value in d.items():
        if key == "build":
            for t in value:
                out.update({f"build_{t['scenario']}_{k}": v for k, v in t.items() if k != "scenario"})
        elif key == "causes":
            out[key] = "; ".join(value)
        elif isinstance(value, dict):
            out.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


FORMATS = {"md": to_markdown, "json": to_json, "csv": to_csv}


def compare_main(baseline: Path, current: Path, fmt: str = "md", check: bool = False,
                 budgets_source: Path | None = None, factor: float = DEFAULT_FACTOR,
                 alpha: float = DEFAULT_ALPHA) -> tuple[str, list[str], int]:
    """`harness compare`: (the comparison text, budget-check lines, exit code).

    The text goes to stdout; the check lines to stderr, so json and csv stay parseable.
    A bad file or budget raises HarnessError (one line).
    """
    from harness import store as results
    from harness.track import budgets

    if fmt not in FORMATS:
        raise HarnessError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    before, after = results.load_run(baseline), results.load_run(current)
    text = FORMATS[fmt](compare(before, after, factor, alpha))
    if not check:
        return text, [], 0
    lines, code = budgets.check_main(after, budgets_source, baseline=before)
    return text, lines, code
