"""Charts of a run and of the history: a `Run` (or history entries) in, matplotlib figures out.

Every function here is pure: it draws a Figure and returns it; `save` is the only function
that writes files (PNG and SVG, atomically). Every axis says its unit, and wherever a bar
or a point stands on a stand-in base image it is hatched and the figure carries a note.

- `sizes`: the article's table as bars, with the share saved against the first variant.
- `composition`: each final image split into base image, dependencies, application, other.
- `build_times`: every build-time sample over a box per variant and scenario, per builder.
- `trends`: size and median cold build time per variant over the history.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.analysis.sizes import engine_label
from harness.model import (
    FAILED_AT_RUNTIME,
    OK,
    RUNNING,
    Build,
    FromLine,
    HistoryEntry,
    HistoryStep,
    Run,
    SizeSplit,
    VariantResult,
)
from harness.report import formatting
from harness.report.units import human_seconds, human_size
from harness.stats import summarize
from harness.store import write_atomic

MB = 1e6  # SI, like `docker images`
DPI = 110
WIDTH = 11.0  # inches: 1210 px at DPI, the width of the HTML report's column

STANDIN_HATCH = "//"
STANDIN_NOTE = ("{how}: built on a locally built stand-in for {refs}, not the registry's "
                "image; its size and build time only approximate the real one's.")
FAILED_COLOUR = "#c44e52"
FIRST_COLOUR = "#8c6bb1"  # the variant every other one is measured against
BAR_COLOUR = "#4c72b0"
COMPRESSED_COLOUR = "#a6bddb"

PARTS = ("base image", "dependencies", "application", "other")
COLOURS = {"base image": "#9e9e9e", "dependencies": "#dd8452", "application": "#55a868",
           "other": "#4c72b0"}
# Each part's field of the runner's `attribution.split` (a model.SizeSplit).
ATTRIBUTION_KEYS = {"base image": "base_bytes", "dependencies": "dependencies_bytes",
                    "application": "app_bytes", "other": "other_bytes"}

SCENARIO_COLOURS = ("#c44e52", "#4c72b0", "#55a868", "#dd8452", "#8172b3", "#937860")
SCENARIO_NOTES = {"cold": "cold: no build cache, base images present",
                  "no-change": "no-change: cache, nothing changed",
                  "source-change": "source-change: cache, one source file edited",
                  "dependency-change": "dependency-change: cache, package.json and its lock changed",
                  "warm": "warm: full cache, nothing changed",
                  "code-change": "code-change: cache, one source file changed",
                  "deps-change": "deps-change: cache, package.json changed"}

# A history entry above the base, by the instruction that made it (classic builder:
# "/bin/sh -c #(nop) COPY dir:<hash> in ./dist"; BuildKit: "COPY /app/dist ./dist # buildkit").
_DEPS = re.compile(r"\bnpm (ci|install|i|prune)\b|\byarn( install)?\b|\bpnpm\b|node_modules")
_APP = re.compile(r"\bnpm run build\b|\btsc\b|\bdist\b|\bCOPY (--\S+ )*\. (\.|/app)?/?$"
                  r"|\bCOPY dir:\S+ in (\.|/app)?/?$")


# ---------------------------------------------------------------------------- saving

def save(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg, each atomically; close the figure; return both."""
    stem = Path(stem)
    out = []
    for fmt in ("png", "svg"):
        path = stem.with_name(f"{stem.name}.{fmt}")
        write_atomic(path, png_bytes(fig) if fmt == "png" else _render(fig, "svg"))
        out.append(path)
    plt.close(fig)
    return out


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes (what the HTML report embeds)."""
    return _render(fig, "png")


def _render(fig, fmt: str) -> bytes:
    buf = io.BytesIO()
    # No date and a fixed salt for the SVG's ids: the same record gives the same bytes.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "harness"}):
        fig.savefig(buf, format=fmt, metadata=metadata)
    return buf.getvalue()


# ---------------------------------------------------------------------------- helpers

def _label(variant: VariantResult) -> str:
    return variant.label or variant.name


def _standin_refs(variants: list[VariantResult]) -> list[str]:
    return sorted({f.requested for v in variants for f in v.froms if f.standin and f.requested})


def _footnote(fig, lines: list[str]) -> float:
    """Notes under the axes; returns the share of the figure height they take."""
    lines = [part for line in lines if line for part in textwrap.wrap(line, 175)]
    if not lines:
        return 0.0
    height = fig.get_figheight()
    step = 0.17 / height  # one line of 8 pt text, in figure coordinates
    for i, line in enumerate(reversed(lines)):
        fig.text(0.01, 0.012 + i * step, line, fontsize=8, style="italic", color="#333333")
    return 0.02 + len(lines) * step


def _standin_note(variants: list[VariantResult],
                  how: str = f"Hatched ({formatting.STANDIN_MARK})") -> str:
    refs = _standin_refs(variants)
    if not refs:
        return ""
    return STANDIN_NOTE.format(how=how, refs=", ".join(refs))


def _finish(fig, notes: list[str], top: float = 1.0, right: float = 1.0) -> None:
    bottom = _footnote(fig, notes)
    fig.tight_layout(rect=(0, bottom, right, top))


def _megabytes(ax, axis: str = "x") -> None:
    fmt = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}")
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def _engine_label(run: Run) -> str:
    # harness.analysis.sizes reads the engine as a dict of the model's fields.
    return engine_label(run.engine)


def _base_cell(variant: VariantResult) -> str:
    """The runtime base image as the table's Base column writes it (markdown.base_cell)."""
    base = formatting.final_base(variant)
    ref = formatting.short_ref(base.requested) if base is not None and base.requested else "–"
    return ref + (formatting.STANDIN_MARK if formatting.uses_standin(variant) else "")


# ---------------------------------------------------------------------------- sizes

def compressed_size(variant: VariantResult) -> tuple[int | None, str]:
    """The compressed size and how it was known: measured (the registry's bytes or the
    engine's), else the layer analysis' gzip estimate, else (None, "")."""
    measured = formatting.recorded_compressed(variant)
    if measured is not None:
        return measured, "measured"
    estimate = variant.contents.compressed_estimate_bytes if variant.contents else None
    return (estimate, "estimate") if estimate is not None else (None, "")


def _saved_text(value: float | None, first: float | None) -> str:
    if value is None or not first:
        return ""
    saved = 1 - value / first
    if abs(saved) < 0.005:
        return "same as first"
    return f"−{saved:.0%} vs first" if saved > 0 else f"+{-saved:.0%} vs first"


@dataclass(frozen=True)
class _SizeScale:
    """Where `sizes` puts a variant's bars: their height, how far the two bars of a variant
    sit from its row, the longest bar (MB) and the first variant's sizes (the baseline)."""
    height: float
    shift: float
    peak: float
    first_raw: int | None
    first_packed: int | None


def sizes(run: Run):
    """Final size per variant, like the article's table: one bar per variant in the run's
    order, its size and the share saved against the first variant written beside it; the
    compressed size (as a registry stores it) as a second bar where it is known."""
    variants = run.variants
    raw = [v.image.size_bytes if v.measured else None for v in variants]
    packed = [compressed_size(v) if v.measured else (None, "") for v in variants]
    kinds = {kind for value, kind in packed if value is not None}
    both = bool(kinds)
    rows = max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.62 * rows * (1.5 if both else 1) + 2.2), dpi=DPI)
    ys = list(range(len(variants)))[::-1]
    peak = max([x for x in raw if x] + [p for p, _ in packed if p] + [1]) / MB
    scale = _SizeScale(*((0.38, 0.2) if both else (0.62, 0.0)), peak=peak,
                       first_raw=raw[0] if raw else None,
                       first_packed=packed[0][0] if packed else None)
    for i, (v, y) in enumerate(zip(variants, ys)):
        if v.measured:
            _size_bars(ax, i, v, y, packed[i], scale)
        else:
            _failed_label(ax, v, y, peak)
    _size_axes(ax, run, ys, peak)
    _size_legend(ax, kinds, variants)
    _finish(fig, [_standin_note(variants)])
    return fig


def _failed_label(ax, variant: VariantResult, y: float, peak: float) -> None:
    if variant.status == RUNNING:  # a run in progress (or one whose process died)
        ax.text(peak * 0.01, y, "running", va="center", color="#59636e", fontsize=9)
        return
    error = str(variant.error or "build failed")
    error = error if error.startswith(("build failed", "failed")) else f"failed: {error}"
    error = error if len(error) <= 80 else error[:79] + "…"
    ax.text(peak * 0.01, y, error,
            va="center", color=FAILED_COLOUR, fontweight="bold", fontsize=9, clip_on=True)


def _size_bars(ax, i: int, variant: VariantResult, y: float,
               packed: tuple[int | None, str], scale: _SizeScale) -> None:
    """The i-th variant's bar and text: its size, then its compressed size where known."""
    hatch = STANDIN_HATCH if formatting.uses_standin(variant) else None
    size = variant.image.size_bytes
    colour = FIRST_COLOUR if i == 0 else BAR_COLOUR
    ax.barh(y + scale.shift, size / MB, height=scale.height, color=colour, edgecolor="black",
            linewidth=0.5, hatch=hatch)
    text = human_size(size) + "   " + ("first (baseline)" if i == 0
                                      else _saved_text(size, scale.first_raw))
    if variant.status == FAILED_AT_RUNTIME:
        text += "   (failed at runtime)"
    ax.text(size / MB + scale.peak * 0.01, y + scale.shift, text, va="center", fontsize=9,
            fontweight="bold" if i else None)
    value, kind = packed
    if value is None:
        return
    ax.barh(y - scale.shift, value / MB, height=scale.height, color=COMPRESSED_COLOUR,
            edgecolor="black", linewidth=0.5, hatch=hatch)
    note = "" if i == 0 else "   " + _saved_text(value, scale.first_packed)
    ax.text(value / MB + scale.peak * 0.01, y - scale.shift,
            f"{human_size(value)} compressed"
            + (" (est.)" if kind == "estimate" else "") + note, va="center", fontsize=8)


def _size_axes(ax, run: Run, ys: list[int], peak: float) -> None:
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{_label(v)}\n{_base_cell(v)}" for v in run.variants], fontsize=9)
    ax.set_ylim(-0.6, len(run.variants) - 0.4)
    ax.set_xlim(0, peak * 1.38)
    _megabytes(ax)
    ax.set_xlabel("Image size (MB; SI units, 1 MB = 1,000,000 bytes)")
    ax.set_ylabel("Variant (runtime base image)")
    ax.set_title(f"Final image size per Dockerfile variant — run {run.run_id}\n"
                 f"{_engine_label(run)}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def _size_legend(ax, kinds: set[str], variants: list[VariantResult]) -> None:
    handles = [Patch(facecolor=FIRST_COLOUR, edgecolor="black", label="first variant (the baseline)"),
               Patch(facecolor=BAR_COLOUR, edgecolor="black", label="uncompressed, as `docker images` shows")]
    if kinds:
        how = ("gzip estimate of the layers" if kinds == {"estimate"}
               else "as the registry stores it" if kinds == {"measured"}
               else "registry bytes, or gzip estimate (est.)")
        handles.append(Patch(facecolor=COMPRESSED_COLOUR, edgecolor="black",
                             label=f"compressed, {how}"))
    if _standin_refs(variants):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=STANDIN_HATCH,
                             label="on a stand-in base image"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.95)


# ---------------------------------------------------------------------------- composition

def classify(created_by: str) -> str:
    """Which part of an image a history entry above the base belongs to."""
    text = created_by.replace("/bin/sh -c #(nop) ", "").replace("# buildkit", "").strip()
    if _DEPS.search(text):
        return "dependencies"
    if _APP.search(text):
        return "application"
    return "other"


def runtime_base(variant: VariantResult) -> FromLine | None:
    """The image the final stage starts from, following `FROM <stage>` back to an image
    (or scratch)."""
    base = formatting.final_base(variant)
    by_name = {f.stage_name: f for f in variant.froms if f.stage_name}
    seen = set()
    while base is not None and base.kind == "stage" and base.requested not in seen:
        seen.add(base.requested)
        base = by_name.get(base.requested)
    return base


def base_entries(history: list[HistoryStep], base: FromLine, image_layers: int | None = None) -> int:
    """How many of the (oldest-first) history entries belong to the base image.

    We do not store the base's own history, so the boundary is found from what we have,
    the most exact evidence first:

    1. `docker history` names each entry by the image it produced when that image is in
       the engine; the base was (we built on it), so the entry whose id is the base's image
       id is its top. Exact, and what real runs use.
    2. Else count layers: `froms[final].layer_count` is how many layers the base has, and
       the entries that made a layer map 1:1 onto `image.layers`. Which entries made a layer
       is not recorded (a WORKDIR can make an empty one), so this is used only when the
       entries with bytes are exactly as many as the image's layers.
    3. Else the shortest prefix whose sizes add up to the base's size (the sizes of an
       image's entries add up to its size exactly).
    """
    if base.kind == "scratch":
        return 0
    if base.image_id:
        for i in range(len(history) - 1, -1, -1):
            if history[i].id == base.image_id:
                return i + 1
    layer_count = base.layer_count
    sized = [i for i, e in enumerate(history) if e.size_bytes]
    if layer_count is not None and layer_count <= len(sized) and len(sized) == image_layers:
        return sized[layer_count - 1] + 1 if layer_count else 0
    target, total = base.size_bytes or 0, 0
    for i, entry in enumerate(history):
        if total >= target:
            return i
        total += entry.size_bytes or 0
    return len(history)


def _attributed_split(variant: VariantResult) -> SizeSplit | None:
    """The runner's split of the image (`attribution.split`) when every part of it is known."""
    split = variant.attribution.split if variant.attribution is not None else None
    if split is not None and all(getattr(split, k) is not None for k in ATTRIBUTION_KEYS.values()):
        return split
    return None


def composition_bytes(variant: VariantResult) -> dict[str, int] | None:
    """Bytes per part of the final image: the runner's attribution where it recorded one
    with every part known, else derived from the history (see `base_entries`); None when
    neither is known."""
    image = variant.image
    attribution = _attributed_split(variant)
    if attribution is not None:
        return {part: int(getattr(attribution, key) or 0) for part, key in ATTRIBUTION_KEYS.items()}
    base = runtime_base(variant)
    if image is None or image.size_bytes is None or base is None:
        return None
    base_size = 0 if base.kind == "scratch" else base.size_bytes
    if base_size is None:
        return None
    start = base_entries(image.history, base, image.layer_count)
    parts = dict.fromkeys(PARTS, 0)
    parts["base image"] = base_size
    for entry in image.history[start:]:
        parts[classify(entry.created_by or "")] += entry.size_bytes or 0
    # What the history does not account for (none recorded, or rounding) counts as other,
    # so the bar always ends at the image's size.
    parts["other"] += max(image.size_bytes - sum(parts.values()), 0)
    return parts


def composition(run: Run):
    """One stacked bar per variant: base image, dependencies, application output, other."""
    variants = run.variants
    parts = [composition_bytes(v) if v.measured else None for v in variants]
    rows = max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.62 * rows + 2.4), dpi=DPI)
    ys = list(range(len(variants)))[::-1]
    peak = max([sum(p.values()) for p in parts if p] + [1]) / MB
    for v, y, p in zip(variants, ys, parts):
        if p is None:
            why = "build failed" if not v.measured else "no size recorded"
            ax.text(peak * 0.01, y, why, va="center", color=FAILED_COLOUR, fontweight="bold", fontsize=9)
        else:
            _composition_bar(ax, v, y, p, peak)
    _composition_axes(ax, run, ys, peak)
    _finish(fig, [_composition_method(variants, parts), _standin_note(variants)])
    return fig


def _composition_bar(ax, variant: VariantResult, y: float, parts: dict[str, int],
                     peak: float) -> None:
    """One variant's stacked bar, its parts' sizes inside and its total beside it."""
    standin = formatting.uses_standin(variant)
    left = 0.0
    for part in PARTS:
        width = parts[part] / MB
        ax.barh(y, width, left=left, height=0.62, color=COLOURS[part], edgecolor="black",
                linewidth=0.4, hatch=STANDIN_HATCH if part == "base image" and standin else None)
        if width >= peak * 0.09:  # label the parts wide enough to hold their size
            ax.text(left + width / 2, y, human_size(parts[part]), ha="center",
                    va="center", fontsize=8, color="black",
                    bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
        left += width
    above = left - parts["base image"] / MB
    ax.text(left + peak * 0.01, y,
            f"{human_size(left * MB)}  ({human_size(above * MB)} above the base)",
            va="center", fontsize=9)


def _composition_axes(ax, run: Run, ys: list[int], peak: float) -> None:
    ax.set_yticks(ys)
    ax.set_yticklabels([formatting.variant_cell(v) for v in run.variants], fontsize=9)
    ax.set_ylim(-0.6, len(run.variants) - 0.4)
    ax.set_xlim(0, peak * 1.45)
    _megabytes(ax)
    ax.set_xlabel("Bytes in the final image (MB; SI units; uncompressed)")
    ax.set_ylabel("Variant")
    ax.set_title(f"Where the bytes go — run {run.run_id}")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(facecolor=COLOURS[p], edgecolor="black", label=p) for p in PARTS]
    if _standin_refs(run.variants):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=STANDIN_HATCH,
                             label="stand-in base image"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.95)


def _composition_method(variants: list[VariantResult],
                        parts: list[dict[str, int] | None]) -> str:
    """The note on how the bars were split, naming the variants with no history."""
    attributed = any(_attributed_split(v) for v in variants)
    method = ("Split per layer as the runner attributed it." if attributed else
              "Split from `docker history`: the runtime stage's base image, then each layer "
              "above it by its instruction (npm ci/install, node_modules → dependencies; "
              "dist, npm run build, COPY . . → application).")
    unsplit = [_label(v) for v, p in zip(variants, parts) if p is not None
               and not _attributed_split(v)
               and not (v.image is not None and v.image.history)]
    if unsplit:
        method += (f" No history recorded for {', '.join(unsplit)}: all it adds to its base "
                   "counts as other.")
    return method


# ---------------------------------------------------------------------------- build times

@dataclass(frozen=True)
class Series:
    """One variant's builds with one builder in one scenario: its samples and warm-up samples."""
    variant: str
    label: str
    standin: bool
    builder: str
    scenario: str
    samples: list[float]
    warmup: list[float]


def build_series(run: Run) -> list[Series]:
    """One series per built variant, builder and scenario: samples and warm-up samples.

    Reads `build.scenarios` where the runner wrote it, else `build.samples_seconds` as the
    run's one scenario; the builder is the variant's own `builder`, else the run's. The
    builds of every other builder (`extra_builds`) follow, read the same way; a failed one
    is left out."""
    default_builder = run.settings.builder or "classic"
    out = []
    for v in run.variants:
        if not v.measured:
            continue
        builds = [(v.builder or default_builder, v.build)]
        builds += [(extra.builder or name, extra)
                   for name, extra in (v.extra_builds or {}).items() if not extra.error]
        for builder, build in builds:
            out += _series_of(run, v, builder, build)
    return out


def _series_of(run: Run, variant: VariantResult, builder: str,
               build: Build | None) -> list[Series]:
    out = []
    for scenario, samples in formatting.scenario_samples(run, build).items():
        if not samples:
            continue
        warmup = (build.scenarios[scenario].warmup_seconds if build.scenarios is not None
                  else build.warmup_seconds)
        out.append(Series(variant.name, _label(variant), formatting.uses_standin(variant),
                          builder, scenario, list(samples), list(warmup or [])))
    return out


def _jitter(n: int, width: float = 0.22) -> list[float]:
    """Deterministic offsets that spread n dots across a band (same picture every time)."""
    if n <= 1:
        return [0.0] * n
    return [-width / 2 + width * i / (n - 1) for i in range(n)]


def build_times(run: Run):
    """Every build-time sample as a dot over a box, per variant and scenario: the spread is
    visible, not hidden behind a median. One panel per builder when several were run."""
    series = build_series(run)
    builders = list(dict.fromkeys(s.builder for s in series)) or [
        run.settings.builder or "classic"]
    scenarios = list(dict.fromkeys(s.scenario for s in series))
    colour = {sc: SCENARIO_COLOURS[i % len(SCENARIO_COLOURS)] for i, sc in enumerate(scenarios)}
    per_panel = {b: [s for s in series if s.builder == b] for b in builders}
    rows = [max(len(per_panel[b]), 1) for b in builders]
    fig, axes = plt.subplots(len(builders), 1, squeeze=False, sharex=True, dpi=DPI,
                             figsize=(WIDTH, 0.5 * sum(rows) + 1.0 * len(builders) + 1.8),
                             gridspec_kw={"height_ratios": rows})
    values = [x for s in series for x in s.samples + s.warmup]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 15
    for ax, builder in zip(axes[:, 0], builders):
        _draw_samples(ax, per_panel[builder], colour)
        _label_panel(ax, per_panel[builder], builder, len(builders) > 1, len(scenarios) > 1)
    _time_axis(axes[-1, 0], values, log)
    one_builder = f", {builders[0]} builder" if len(builders) == 1 else ""
    one_scenario = f" ({scenarios[0]})" if len(scenarios) == 1 else ""
    fig.suptitle(f"Build time{one_scenario} per variant{one_builder}, every sample — run "
                 f"{run.run_id}", fontsize=12)
    _build_legend(axes[0, 0], scenarios, colour, any(s.warmup for s in series))
    _finish(fig, _build_notes(run, series, scenarios))
    return fig


def _draw_samples(ax, panel: list[Series], colour: dict[str, str]) -> None:
    """A box per series, its samples as dots over it, its warm-ups as rings, its median."""
    ys = list(range(len(panel)))[::-1]
    if panel:
        ax.boxplot([s.samples for s in panel], positions=ys, orientation="horizontal",
                   widths=0.55, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#f2f2f2", "edgecolor": "#555555"},
                   medianprops={"color": "black", "linewidth": 1.6})
    for y, s in zip(ys, panel):
        ax.scatter(s.samples, [y + d for d in _jitter(len(s.samples))], s=26, zorder=3,
                   color=colour[s.scenario], edgecolor="black", linewidth=0.4,
                   hatch=STANDIN_HATCH * 2 if s.standin else None)
        if s.warmup:
            ax.scatter(s.warmup, [y] * len(s.warmup), s=26, zorder=3, marker="o",
                       facecolors="none", edgecolors="#777777")
        summary = summarize(s.samples)
        # In a column at the panel's right edge (x in axes units, y in data units): beside
        # the last dot it read as the label of a slow warm-up build.
        ax.annotate(f"median {human_seconds(summary.median)}"
                    + (f" ± {human_seconds(summary.mad)}, n={summary.n}" if summary.n > 1 else ""),
                    (0.995, y), xycoords=ax.get_yaxis_transform(), ha="right", va="center",
                    fontsize=8)


def _label_panel(ax, panel: list[Series], builder: str, several_builders: bool,
                 several_scenarios: bool) -> None:
    """A panel's rows and axis label; the builder is named when there are several panels."""
    ys = list(range(len(panel)))[::-1]
    ax.set_yticks(ys)
    ax.set_yticklabels([s.label + (formatting.STANDIN_MARK if s.standin else "")
                        + (f" — {s.scenario}" if several_scenarios else "")
                        for s in panel], fontsize=9)
    ax.set_ylim(-0.7, max(len(panel), 1) - 0.3)
    ax.set_ylabel((f"{builder} builder: variant" if several_builders else "Variant")
                  + (" — scenario" if several_scenarios else ""),
                  fontweight="bold" if several_builders else None)
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_axisbelow(True)
    if not panel:
        ax.text(0.5, 0.5, "no build-time samples recorded", transform=ax.transAxes,
                ha="center", va="center", color="#777777")


def _time_axis(ax, values: list[float], log: bool) -> None:
    """The shared time axis (the bottom panel's): log scale over a wide range."""
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    if values:
        # Room on the right for the median labels: about a third of the axis.
        lo, hi = min(values), max(values)
        if log:
            left = lo / 1.3
            ax.set_xlim(left, hi * (hi / left) ** 0.5)
        else:
            left = max(0.0, lo - (hi - lo) * 0.15 - 0.5)
            ax.set_xlim(left, hi + (hi - left) * 0.5)
    ax.set_xlabel("Build time (seconds" + (", log scale" if log else "") + ")")


def _build_legend(ax, scenarios: list[str], colour: dict[str, str], warmup: bool) -> None:
    handles = [Line2D([], [], marker="o", linestyle="", markerfacecolor=colour[sc],
                      markeredgecolor="black", label=f"sample: {sc}") for sc in scenarios]
    if warmup:
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
                              markeredgecolor="#777777", label="warm-up (not counted)"))
    handles.append(Patch(facecolor="#f2f2f2", edgecolor="#555555",
                         label="box: quartiles, line: median"))
    # Three to a row: six entries in one row ran past the figure's right edge.
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=min(len(handles), 3), fontsize=8, frameon=False)


def _build_notes(run: Run, series: list[Series], scenarios: list[str]) -> list[str]:
    notes = ["; ".join(SCENARIO_NOTES.get(sc, sc) for sc in scenarios) + "."] if scenarios else []
    standin = {s.variant for s in series if s.standin}
    if standin:
        notes.append(_standin_note([v for v in run.variants if v.name in standin],
                                   how=formatting.STANDIN_MARK))
    return notes


# ---------------------------------------------------------------------------- trends

def _main_scenario(entries: list[HistoryEntry]) -> str:
    names = [n for e in entries for n, s in e.build_samples.items() if s]
    return "cold" if "cold" in names or not names else names[0]


def _change_kinds(before: HistoryEntry, after: HistoryEntry) -> tuple[bool, bool]:
    """(base image changed, Dockerfile changed) between two runs of a variant."""
    why = formatting.causes(before, after)
    return (any(c.startswith(("base image ", "FROM ")) for c in why),
            "Dockerfile changed" in why)


@dataclass(frozen=True)
class _Marks:
    """Which of a variant's runs (indexes, oldest first) get a mark in the trend chart."""
    standin: list[int]
    base_changed: list[int]
    dockerfile_changed: list[int]


def _marks(runs: list[HistoryEntry]) -> _Marks:
    # `bases` of a history entry are plain dicts (its own format, see model.HistoryEntry).
    standin = [i for i, e in enumerate(runs) if any(b.get("standin") for b in e.bases)]
    base_changed, dockerfile_changed = [], []
    for i, (before, after) in enumerate(itertools.pairwise(runs), 1):
        base, dockerfile = _change_kinds(before, after)
        if base:
            base_changed.append(i)
        if dockerfile:
            dockerfile_changed.append(i)
    return _Marks(standin, base_changed, dockerfile_changed)


def trends(entries: list[HistoryEntry]):
    """Final size and median build time per variant over the history (two panels); runs
    whose base image changed and runs whose Dockerfile changed are marked differently."""
    scenario = _main_scenario(entries)
    fig, (ax_size, ax_time) = plt.subplots(2, 1, figsize=(WIDTH, 8), dpi=DPI, sharex=True)
    by_variant: dict[str, list[HistoryEntry]] = {}
    for e in sorted(entries, key=lambda e: (e.when, e.run_id)):
        if e.status == OK:
            by_variant.setdefault(e.variant, []).append(e)
    marks = [_trend_lines(ax_size, ax_time, name, runs, scenario)
             for name, runs in by_variant.items()]
    any_change = any(m.base_changed or m.dockerfile_changed for m in marks)
    any_standin = any(m.standin for m in marks)
    _trend_axes(ax_size, ax_time, scenario, by_variant)
    _trend_legends(ax_size, ax_time, any_standin)
    notes = []
    if not any_change:
        notes.append("No base-image or Dockerfile change between consecutive runs of any variant.")
    if any_standin:
        notes.append("Hatched points: built on a locally built stand-in base image, not the "
                     "registry's image.")
    _finish(fig, notes, right=0.84)
    return fig


def _trend_lines(ax_size, ax_time, name: str, runs: list[HistoryEntry], scenario: str) -> _Marks:
    """One variant's size and median build time over its runs, with their marks."""
    when = [e.when for e in runs]
    sizes_mb = [e.size_bytes / MB if e.size_bytes is not None else float("nan") for e in runs]
    medians = [summarize(e.build_samples.get(scenario) or []).median
               if e.build_samples.get(scenario) else float("nan") for e in runs]
    label = runs[-1].label or name
    label = label if len(label) <= 30 else label[:29] + "…"
    line, = ax_size.plot(when, sizes_mb, marker="o", markersize=4, label=label)
    ax_time.plot(when, medians, marker="o", markersize=4, color=line.get_color())
    marks = _marks(runs)
    for ax, ys in ((ax_size, sizes_mb), (ax_time, medians)):
        _draw_marks(ax, when, ys, marks, line.get_color())
    return marks


def _draw_marks(ax, when: list[dt.datetime], ys: list[float], marks: _Marks, colour) -> None:
    def at(indexes: list[int]) -> tuple[list, list]:
        return [when[i] for i in indexes], [ys[i] for i in indexes]

    if marks.standin:
        ax.scatter(*at(marks.standin), s=70, zorder=3,
                   facecolors="white", edgecolors=colour, hatch=STANDIN_HATCH * 3)
    if marks.base_changed:
        ax.scatter(*at(marks.base_changed),
                   marker="^", s=150, facecolors="none", edgecolors="black",
                   linewidths=1.4, zorder=4)
    if marks.dockerfile_changed:
        ax.scatter(*at(marks.dockerfile_changed),
                   marker="s", s=150, facecolors="none", edgecolors="#d62728",
                   linewidths=1.4, zorder=4)


def _trend_axes(ax_size, ax_time, scenario: str, by_variant: dict[str, list[HistoryEntry]]) -> None:
    ax_size.set_ylabel("Final size (MB; SI, uncompressed)")
    _megabytes(ax_size, "y")
    ax_time.set_ylabel(f"Median {scenario} build time (s)")
    ax_time.set_xlabel("Run started (UTC)")
    ax_size.set_title("Image size and build time over the history")
    for ax in (ax_size, ax_time):
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax_time.xaxis.set_major_locator(locator)
    ax_time.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    times = sorted({e.when for runs in by_variant.values() for e in runs})
    if len(times) == 1 or (times and times[-1] - times[0] < dt.timedelta(hours=2)):
        ax_time.set_xlim(times[0] - dt.timedelta(hours=12), times[-1] + dt.timedelta(hours=12))


def _trend_legends(ax_size, ax_time, any_standin: bool) -> None:
    variant_legend = ax_size.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                                    title="Variant", title_fontsize=8)
    ax_size.add_artist(variant_legend)
    marks = [Line2D([], [], marker="^", linestyle="", markersize=10, markerfacecolor="none",
                    markeredgecolor="black", label="base image changed"),
             Line2D([], [], marker="s", linestyle="", markersize=10, markerfacecolor="none",
                    markeredgecolor="#d62728", label="Dockerfile changed")]
    if any_standin:
        marks.append(Patch(facecolor="white", edgecolor="black", hatch=STANDIN_HATCH * 3,
                           label="on a stand-in base"))
    ax_time.legend(handles=marks, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                   title="Marks", title_fontsize=8)
