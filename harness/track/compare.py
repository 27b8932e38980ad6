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
import datetime as dt
import io
import json
import math
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from harness.errors import HarnessError
from harness.report.markdown import human_seconds, human_size

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
        return verdict(UNSURE, "n too small")
    p = mann_whitney_u(before, after).p
    if p >= alpha:
        return verdict(UNSURE, f"p={p:.2g}", p)
    return verdict(SLOWER if ratio > 1 else FASTER, f"p={p:.2g}", p)


# What one run says about one variant -------------------------------------------------------

@dataclass(frozen=True)
class Facts:
    """The comparable figures of one variant in one run; also the body of a history line."""
    run_id: str
    created_utc: str
    hostname: str | None
    git_commit: str | None
    git_dirty: bool | None
    variant: str
    label: str
    status: str | None
    dockerfile_sha256: str | None
    context_sha256: str | None
    size_bytes: int | None
    layer_count: int | None
    compressed_size_bytes: int | None
    build_samples: dict[str, list[float]]  # scenario -> every sample, in seconds
    bases: list[dict]  # per FROM of an image: stage, requested, image_id, digest, standin, final

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_utc)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Facts:
        """Facts from their dict form; ValueError names what is missing or malformed."""
        missing = [f.name for f in fields(cls) if f.name not in d]
        if missing:
            raise ValueError(f"missing key(s) {', '.join(missing)}")
        facts = cls(**{f.name: d[f.name] for f in fields(cls)})
        problem = facts._problem()
        if problem:
            raise ValueError(problem)
        return facts

    def _problem(self) -> str | None:
        for name in ("run_id", "created_utc", "variant"):
            if not isinstance(getattr(self, name), str):
                return f"{name} is not a string"
        try:
            if self.when.tzinfo is None:
                return f"created_utc {self.created_utc!r} has no time zone"
        except ValueError:
            return f"created_utc {self.created_utc!r} is not an ISO 8601 time"
        for name in ("size_bytes", "layer_count", "compressed_size_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return f"{name} is not an integer"
        if not isinstance(self.build_samples, dict) or not all(
                isinstance(s, list) and all(_is_number(x) for x in s)
                for s in self.build_samples.values()):
            return "build_samples is not a mapping of scenario to a list of seconds"
        if not isinstance(self.bases, list) or not all(
                isinstance(b, dict) and isinstance(b.get("requested"), str) for b in self.bases):
            return "bases is not a list of FROM records"
        return None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def facts(record: dict, variant: dict) -> Facts:
    image = variant.get("image") or {}
    harness = record.get("harness") or {}
    git = harness.get("git") or {}
    return Facts(
        run_id=record["run_id"], created_utc=record["created_utc"],
        hostname=(record.get("machine") or {}).get("hostname"),
        git_commit=git.get("commit"), git_dirty=git.get("dirty"),
        variant=variant["name"], label=variant.get("label") or variant["name"],
        status=variant.get("status"),
        dockerfile_sha256=variant.get("dockerfile_sha256"),
        context_sha256=variant.get("context_sha256"),
        size_bytes=image.get("size_bytes"), layer_count=image.get("layer_count"),
        compressed_size_bytes=compressed_size(variant),
        build_samples=build_samples(record, variant),
        bases=[{k: f.get(k) for k in ("stage", "requested", "image_id", "digest", "standin", "final")}
               for f in variant.get("froms") or [] if f.get("image_id") or f.get("digest")],
    )


def compressed_size(variant: dict) -> int | None:
    """The compressed size under either key the runner may write, else None."""
    image = variant.get("image") or {}
    compressed = variant.get("compressed") or {}
    value = image.get("compressed_size_bytes")
    return value if value is not None else compressed.get("registry_bytes")


def build_samples(record: dict, variant: dict) -> dict[str, list[float]]:
    """Raw samples per scenario: `build.scenarios` when present, else the run's one scenario."""
    build = variant.get("build") or {}
    scenarios = build.get("scenarios")
    if isinstance(scenarios, dict):
        return {name: _samples(s) for name, s in scenarios.items()}
    scenario = (record.get("settings") or {}).get("scenario") or "cold"
    return {scenario: list(build.get("samples_seconds") or [])}


def _samples(scenario) -> list[float]:
    """A scenario is either its list of samples or a table with `samples_seconds`."""
    if isinstance(scenario, dict):
        scenario = scenario.get("samples_seconds")
    return list(scenario or [])


# Why two runs differ --------------------------------------------------------------------

def causes(before: Facts, after: Facts) -> tuple[str, ...]:
    """What changed between two runs: bases, Dockerfile, context; else why we cannot say."""
    found = _base_changes(before.bases, after.bases)
    unrecorded = []
    for key, what in (("dockerfile_sha256", "Dockerfile"), ("context_sha256", "app (build context)")):
        old, new = getattr(before, key), getattr(after, key)
        if old is None or new is None:
            unrecorded.append(what)
        elif old != new:
            found.append(f"{what} changed")
    if found:
        return tuple(found)
    if unrecorded:
        return (f"cause unknown (bases unchanged; {' and '.join(unrecorded)} hash not recorded)",)
    return ("cause unknown (bases, Dockerfile and context unchanged)",)


def _base_changes(before: list[dict], after: list[dict]) -> list[str]:
    old = {b["requested"]: b for b in before}
    new = {b["requested"]: b for b in after}
    out = [f"FROM {ref} removed" for ref in old if ref not in new]
    for ref, b in new.items():
        a = old.get(ref)
        if a is None:
            out.append(f"FROM {ref} added")
            continue
        digests_differ = a.get("digest") and b.get("digest") and a["digest"] != b["digest"]
        if a.get("image_id") != b.get("image_id") or digests_differ:
            standin = ("" if bool(a.get("standin")) == bool(b.get("standin"))
                       else ", now a stand-in" if b.get("standin") else ", no longer a stand-in")
            out.append(f"base image {ref} changed ({_short(a)} → {_short(b)}{standin})")
    return out


def _short(base: dict) -> str:
    ident = base.get("image_id") or base.get("digest") or "?"
    return ident.split(":", 1)[-1][:12]


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


def compare(baseline_record: dict, current_record: dict, factor: float = DEFAULT_FACTOR,
            alpha: float = DEFAULT_ALPHA) -> list[Row]:
    """One row per variant name: the current run's order, then variants it no longer has."""
    old = {v["name"]: facts(baseline_record, v) for v in baseline_record.get("variants", [])}
    new = {v["name"]: facts(current_record, v) for v in current_record.get("variants", [])}
    names = list(new) + [n for n in old if n not in new]
    return [row(old.get(n), new.get(n), baseline_record["run_id"], current_record["run_id"],
                factor, alpha) for n in names]


def compare_variants(record: dict, a: str, b: str, factor: float = DEFAULT_FACTOR,
                     alpha: float = DEFAULT_ALPHA) -> list[Row]:
    """Variant `a` (as baseline) against variant `b` of the same run: one row."""
    by_name = {v["name"]: v for v in record.get("variants", [])}
    unknown = [n for n in (a, b) if n not in by_name]
    if unknown:
        raise HarnessError(f"run {record.get('run_id')} has no variant(s) {', '.join(unknown)} "
                           f"(it has: {', '.join(by_name)})")
    fa, fb = facts(record, by_name[a]), facts(record, by_name[b])
    run = record["run_id"]
    return [row(fa, fb, f"{run} {a}", f"{run} {b}", factor, alpha,
                variant=f"{a} → {b}", label=f"{fa.label} → {fb.label}")]


# Formats -----------------------------------------------------------------------------------

def signed_bytes(delta: int) -> str:
    return ("+" if delta >= 0 else "-") + human_size(abs(delta))


def percent(before: float, after: float) -> float | None:
    return (after - before) / before * 100 if before else None


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
    pct = percent(b, a)
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
            out[attr].update(delta=a - b if both else None, pct=percent(b, a) if both else None)
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
    from harness.track import budgets
    from harness import store as results

    if fmt not in FORMATS:
        raise HarnessError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    before, after = results.load(baseline), results.load(current)
    text = FORMATS[fmt](compare(before, after, factor, alpha))
    if not check:
        return text, [], 0
    lines, code = budgets.check_main(after, budgets_source, baseline=before)
    return text, lines, code
