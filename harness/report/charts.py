"""Charts of a run and of the history: records (or history entries) in, matplotlib figures out.

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
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.track import compare
from harness.report import formatting
from harness.report import markdown as report
from harness.store import FAILED_AT_RUNTIME, write_atomic
from harness.analysis.sizes import engine_label
from harness.stats import summarize

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

def _label(variant: dict) -> str:
    return variant.get("label") or variant["name"]


def _standin(variant: dict) -> bool:
    return any(f.get("standin") for f in variant.get("froms") or [])


def _standin_refs(variants: list[dict]) -> list[str]:
    return sorted({f["requested"] for v in variants for f in v.get("froms") or []
                   if f.get("standin") and f.get("requested")})


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


def _standin_note(variants: list[dict], how: str = f"Hatched ({formatting.STANDIN_MARK})") -> str:
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


# ---------------------------------------------------------------------------- sizes

def compressed_size(variant: dict) -> tuple[int | None, str]:
    """The compressed size and how it was known: measured (the registry's bytes or the
    engine's), else the layer analysis' gzip estimate, else (None, "")."""
    measured = compare.compressed_size(variant)
    if measured is not None:
        return measured, "measured"
    estimate = (variant.get("contents") or {}).get("compressed_estimate_bytes")
    return (estimate, "estimate") if estimate is not None else (None, "")


def _saved_text(value: float | None, first: float | None) -> str:
    if value is None or not first:
        return ""
    saved = 1 - value / first
    if abs(saved) < 0.005:
        return "same as first"
    return f"−{saved:.0%} vs first" if saved > 0 else f"+{-saved:.0%} vs first"


def sizes(record: dict):
    """Final size per variant, like the article's table: one bar per variant in the run's
    order, its size and the share saved against the first variant written beside it; the
    compressed size (as a registry stores it) as a second bar where it is known."""
    variants = record.get("variants") or []
    df = report.frame(record)
    ok = [formatting.is_measured(v) for v in variants]
    raw = [(v.get("image") or {}).get("size_bytes") if good else None
           for v, good in zip(variants, ok)]
    packed = [compressed_size(v) if good else (None, "") for v, good in zip(variants, ok)]
    kinds = {kind for value, kind in packed if value is not None}
    both = bool(kinds)
    first_raw = raw[0] if raw else None
    first_packed = packed[0][0] if packed else None

    rows = max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.62 * rows * (1.5 if both else 1) + 2.2), dpi=DPI)
    ys = list(range(len(variants)))[::-1]
    height, shift = (0.38, 0.2) if both else (0.62, 0.0)
    peak = max([x for x in raw if x] + [p for p, _ in packed if p] + [1]) / MB

    for i, (v, y, size, good) in enumerate(zip(variants, ys, raw, ok)):
        hatch = STANDIN_HATCH if _standin(v) else None
        if not good:
            error = str(v.get("error") or "build failed")
            error = error if error.startswith(("build failed", "failed")) else f"failed: {error}"
            error = error if len(error) <= 80 else error[:79] + "…"
            ax.text(peak * 0.01, y, error,
                    va="center", color=FAILED_COLOUR, fontweight="bold", fontsize=9, clip_on=True)
            continue
        colour = FIRST_COLOUR if i == 0 else BAR_COLOUR
        ax.barh(y + shift, size / MB, height=height, color=colour, edgecolor="black",
                linewidth=0.5, hatch=hatch)
        text = formatting.human_size(size) + "   " + ("first (baseline)" if i == 0
                                                   else _saved_text(size, first_raw))
        if v.get("status") == FAILED_AT_RUNTIME:
            text += "   (failed at runtime)"
        ax.text(size / MB + peak * 0.01, y + shift, text, va="center", fontsize=9,
                fontweight="bold" if i else None)
        value, kind = packed[i]
        if value is not None:
            ax.barh(y - shift, value / MB, height=height, color=COMPRESSED_COLOUR,
                    edgecolor="black", linewidth=0.5, hatch=hatch)
            note = "" if i == 0 else "   " + _saved_text(value, first_packed)
            ax.text(value / MB + peak * 0.01, y - shift,
                    f"{formatting.human_size(value)} compressed"
                    + (" (est.)" if kind == "estimate" else "") + note, va="center", fontsize=8)

    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['label']}\n{report.base_cell(r)}" for _, r in df.iterrows()]
                       if not df.empty else [], fontsize=9)
    ax.set_ylim(-0.6, len(variants) - 0.4)
    ax.set_xlim(0, peak * 1.38)
    _megabytes(ax)
    ax.set_xlabel("Image size (MB; SI units, 1 MB = 1,000,000 bytes)")
    ax.set_ylabel("Variant (runtime base image)")
    ax.set_title(f"Final image size per Dockerfile variant — run {record.get('run_id')}\n"
                 f"{engine_label(record.get('engine'))}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(facecolor=FIRST_COLOUR, edgecolor="black", label="first variant (the baseline)"),
               Patch(facecolor=BAR_COLOUR, edgecolor="black", label="uncompressed, as `docker images` shows")]
    if both:
        how = ("gzip estimate of the layers" if kinds == {"estimate"}
               else "as the registry stores it" if kinds == {"measured"}
               else "registry bytes, or gzip estimate (est.)")
        handles.append(Patch(facecolor=COMPRESSED_COLOUR, edgecolor="black",
                             label=f"compressed, {how}"))
    if _standin_refs(variants):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=STANDIN_HATCH,
                             label="on a stand-in base image"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.95)
    _finish(fig, [_standin_note(variants)])
    return fig


# ---------------------------------------------------------------------------- composition

def classify(created_by: str) -> str:
    """Which part of an image a history entry above the base belongs to."""
    text = created_by.replace("/bin/sh -c #(nop) ", "").replace("# buildkit", "").strip()
    if _DEPS.search(text):
        return "dependencies"
    if _APP.search(text):
        return "application"
    return "other"


def runtime_base(variant: dict) -> dict | None:
    """The image the final stage starts from, following `FROM <stage>` back to an image
    (or scratch)."""
    froms = variant.get("froms") or []
    base = formatting.final_base(variant)
    by_name = {f.get("stage_name"): f for f in froms if f.get("stage_name")}
    seen = set()
    while base is not None and base.get("kind") == "stage" and base.get("requested") not in seen:
        seen.add(base.get("requested"))
        base = by_name.get(base.get("requested"))
    return base


def base_entries(history: list[dict], base: dict, image_layers: int | None = None) -> int:
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
    if base.get("kind") == "scratch":
        return 0
    image_id = base.get("image_id")
    if image_id:
        for i in range(len(history) - 1, -1, -1):
            if history[i].get("id") == image_id:
                return i + 1
    layer_count = base.get("layer_count")
    sized = [i for i, e in enumerate(history) if e.get("size_bytes")]
    if layer_count is not None and layer_count <= len(sized) and len(sized) == image_layers:
        return sized[layer_count - 1] + 1 if layer_count else 0
    target, total = base.get("size_bytes") or 0, 0
    for i, entry in enumerate(history):
        if total >= target:
            return i
        total += entry.get("size_bytes") or 0
    return len(history)


def _attributed_split(variant: dict) -> dict | None:
    """The runner's split of the image (`attribution.split`, or the older
    `layers.attribution`) when every part of it is known."""
    for split in ((variant.get("attribution") or {}).get("split"),
                  (variant.get("layers") or {}).get("attribution")):
        if isinstance(split, dict) and all(split.get(k) is not None for k in ATTRIBUTION_KEYS.values()):
            return split
    return None


def composition_bytes(variant: dict) -> dict[str, int] | None:
    """Bytes per part of the final image: the runner's attribution where it recorded one
    with every part known, else derived from the history (see `base_entries`); None when
    neither is known."""
    image = variant.get("image") or {}
    attribution = _attributed_split(variant)
    if attribution is not None:
        return {part: int(attribution[key] or 0) for part, key in ATTRIBUTION_KEYS.items()}
    base = runtime_base(variant)
    if not image or image.get("size_bytes") is None or base is None:
        return None
    base_size = 0 if base.get("kind") == "scratch" else base.get("size_bytes")
    if base_size is None:
        return None
    history = image.get("history") or []
    start = base_entries(history, base, image.get("layer_count"))
    parts = dict.fromkeys(PARTS, 0)
    parts["base image"] = base_size
    for entry in history[start:]:
        parts[classify(entry.get("created_by") or "")] += entry.get("size_bytes") or 0
    # What the history does not account for (none recorded, or rounding) counts as other,
    # so the bar always ends at the image's size.
    parts["other"] += max(image["size_bytes"] - sum(parts.values()), 0)
    return parts


def composition(record: dict):
    """One stacked bar per variant: base image, dependencies, application output, other."""
    variants = record.get("variants") or []
    parts = [composition_bytes(v) if formatting.is_measured(v) else None for v in variants]
    rows = max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.62 * rows + 2.4), dpi=DPI)
    ys = list(range(len(variants)))[::-1]
    peak = max([sum(p.values()) for p in parts if p] + [1]) / MB
    for v, y, p in zip(variants, ys, parts):
        if p is None:
            why = "build failed" if not formatting.is_measured(v) else "no size recorded"
            ax.text(peak * 0.01, y, why, va="center", color=FAILED_COLOUR, fontweight="bold", fontsize=9)
            continue
        left = 0.0
        for part in PARTS:
            width = p[part] / MB
            ax.barh(y, width, left=left, height=0.62, color=COLOURS[part], edgecolor="black",
                    linewidth=0.4, hatch=STANDIN_HATCH if part == "base image" and _standin(v) else None)
            if width >= peak * 0.09:  # label the parts wide enough to hold their size
                ax.text(left + width / 2, y, formatting.human_size(p[part]), ha="center",
                        va="center", fontsize=8, color="black",
                        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
            left += width
        above = left - p["base image"] / MB
        ax.text(left + peak * 0.01, y,
                f"{formatting.human_size(left * MB)}  ({formatting.human_size(above * MB)} above the base)",
                va="center", fontsize=9)
    ax.set_yticks(ys)
    ax.set_yticklabels([_label(v) + (formatting.STANDIN_MARK if _standin(v) else "") for v in variants],
                       fontsize=9)
    ax.set_ylim(-0.6, len(variants) - 0.4)
    ax.set_xlim(0, peak * 1.45)
    _megabytes(ax)
    ax.set_xlabel("Bytes in the final image (MB; SI units; uncompressed)")
    ax.set_ylabel("Variant")
    ax.set_title(f"Where the bytes go — run {record.get('run_id')}")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(facecolor=COLOURS[p], edgecolor="black", label=p) for p in PARTS]
    if _standin_refs(variants):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=STANDIN_HATCH,
                             label="stand-in base image"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.95)
    attributed = any(_attributed_split(v) for v in variants)
    method = ("Split per layer as the runner attributed it." if attributed else
              "Split from `docker history`: the runtime stage's base image, then each layer "
              "above it by its instruction (npm ci/install, node_modules → dependencies; "
              "dist, npm run build, COPY . . → application).")
    unsplit = [_label(v) for v, p in zip(variants, parts) if p is not None
               and not _attributed_split(v)
               and not (v.get("image") or {}).get("history")]
    if unsplit:
        method += (f" No history recorded for {', '.join(unsplit)}: all it adds to its base "
                   "counts as other.")
    _finish(fig, [method, _standin_note(variants)])
    return fig


# ---------------------------------------------------------------------------- build times

def build_series(record: dict) -> list[dict]:
    """One series per built variant, builder and scenario: samples and warm-up samples.

    Reads `build.scenarios = {scenario: {"samples_seconds", "warmup_seconds"}}` where the
    runner wrote it, else `build.samples_seconds` as the run's one scenario; the builder is
    the variant's own `builder`, else the run's. The builds of every other builder
    (`extra_builds`) follow, read the same way."""
    default_builder = (record.get("settings") or {}).get("builder") or "classic"
    out = []
    for v in record.get("variants") or []:
        if not formatting.is_measured(v):
            continue
        builds = [(v.get("builder") or default_builder, v.get("build") or {})]
        builds += [(extra.get("builder") or name, extra)
                   for name, extra in (v.get("extra_builds") or {}).items()
                   if isinstance(extra, dict) and not extra.get("error")]
        for builder, build in builds:
            scenarios = build.get("scenarios")
            for scenario, samples in compare.build_samples(record, {"build": build}).items():
                if not samples:
                    continue
                if isinstance(scenarios, dict):
                    table = scenarios.get(scenario)
                    warmup = table.get("warmup_seconds") if isinstance(table, dict) else None
                else:
                    warmup = build.get("warmup_seconds")
                out.append({"variant": v["name"], "label": _label(v), "standin": _standin(v),
                            "builder": builder, "scenario": scenario,
                            "samples": list(samples), "warmup": list(warmup or [])})
    return out


def _jitter(n: int, width: float = 0.22) -> list[float]:
    """Deterministic offsets that spread n dots across a band (same picture every time)."""
    if n <= 1:
        return [0.0] * n
    return [-width / 2 + width * i / (n - 1) for i in range(n)]


def build_times(record: dict):
    """Every build-time sample as a dot over a box, per variant and scenario: the spread is
    visible, not hidden behind a median. One panel per builder when several were run."""
    series = build_series(record)
    builders = list(dict.fromkeys(s["builder"] for s in series)) or [
        (record.get("settings") or {}).get("builder") or "classic"]
    scenarios = list(dict.fromkeys(s["scenario"] for s in series))
    colour = {sc: SCENARIO_COLOURS[i % len(SCENARIO_COLOURS)] for i, sc in enumerate(scenarios)}
    per_panel = {b: [s for s in series if s["builder"] == b] for b in builders}
    rows = [max(len(per_panel[b]), 1) for b in builders]
    fig, axes = plt.subplots(len(builders), 1, squeeze=False, sharex=True, dpi=DPI,
                             figsize=(WIDTH, 0.5 * sum(rows) + 1.0 * len(builders) + 1.8),
                             gridspec_kw={"height_ratios": rows})
    values = [x for s in series for x in s["samples"] + s["warmup"]]
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 15
    for ax, builder in zip(axes[:, 0], builders):
        panel = per_panel[builder]
        ys = list(range(len(panel)))[::-1]
        if panel:
            ax.boxplot([s["samples"] for s in panel], positions=ys, orientation="horizontal",
                       widths=0.55, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": "#f2f2f2", "edgecolor": "#555555"},
                       medianprops={"color": "black", "linewidth": 1.6})
        for y, s in zip(ys, panel):
            c = colour[s["scenario"]]
            ax.scatter(s["samples"], [y + d for d in _jitter(len(s["samples"]))], s=26, zorder=3,
                       color=c, edgecolor="black", linewidth=0.4,
                       hatch=STANDIN_HATCH * 2 if s["standin"] else None)
            if s["warmup"]:
                ax.scatter(s["warmup"], [y] * len(s["warmup"]), s=26, zorder=3, marker="o",
                           facecolors="none", edgecolors="#777777")
            summary = summarize(s["samples"])
            ax.annotate(f"median {formatting.human_seconds(summary.median)}"
                        + (f" ± {formatting.human_seconds(summary.mad)}, n={summary.n}" if summary.n > 1 else ""),
                        (max(s["samples"] + s["warmup"]), y), xytext=(8, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.set_yticks(ys)
        ax.set_yticklabels([s["label"] + (formatting.STANDIN_MARK if s["standin"] else "")
                            + (f" — {s['scenario']}" if len(scenarios) > 1 else "")
                            for s in panel], fontsize=9)
        ax.set_ylim(-0.7, max(len(panel), 1) - 0.3)
        ax.set_ylabel((f"{builder} builder: " if len(builders) > 1 else "")
                      + ("variant" if len(builders) > 1 else "Variant")
                      + (" — scenario" if len(scenarios) > 1 else ""),
                      fontweight="bold" if len(builders) > 1 else None)
        ax.grid(axis="x", alpha=0.3, which="both")
        ax.set_axisbelow(True)
        if not panel:
            ax.text(0.5, 0.5, "no build-time samples recorded", transform=ax.transAxes,
                    ha="center", va="center", color="#777777")
    bottom = axes[-1, 0]
    if log:
        bottom.set_xscale("log")
        bottom.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    if values:
        # Room on the right for the median labels: about a third of the axis.
        lo, hi = min(values), max(values)
        if log:
            left = lo / 1.3
            bottom.set_xlim(left, hi * (hi / left) ** 0.5)
        else:
            left = max(0.0, lo - (hi - lo) * 0.15 - 0.5)
            bottom.set_xlim(left, hi + (hi - left) * 0.5)
    bottom.set_xlabel("Build time (seconds" + (", log scale" if log else "") + ")")
    one_builder = f", {builders[0]} builder" if len(builders) == 1 else ""
    one_scenario = f" ({scenarios[0]})" if len(scenarios) == 1 else ""
    fig.suptitle(f"Build time{one_scenario} per variant{one_builder}, every sample — run "
                 f"{record.get('run_id')}", fontsize=12)
    handles = [Line2D([], [], marker="o", linestyle="", markerfacecolor=colour[sc],
                      markeredgecolor="black", label=f"sample: {sc}") for sc in scenarios]
    if any(s["warmup"] for s in series):
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none",
                              markeredgecolor="#777777", label="warm-up (not counted)"))
    handles.append(Patch(facecolor="#f2f2f2", edgecolor="#555555",
                         label="box: quartiles, line: median"))
    axes[0, 0].legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                      ncol=len(handles), fontsize=8, frameon=False)
    notes = ["; ".join(SCENARIO_NOTES.get(sc, sc) for sc in scenarios) + "."] if scenarios else []
    standin = [s for s in series if s["standin"]]
    if standin:
        notes.append(_standin_note([v for v in record.get("variants") or []
                                    if v["name"] in {s["variant"] for s in standin}],
                                   how=formatting.STANDIN_MARK))
    _finish(fig, notes)
    return fig


# ---------------------------------------------------------------------------- trends

def _main_scenario(entries: list[compare.Facts]) -> str:
    names = [n for e in entries for n, s in e.build_samples.items() if s]
    return "cold" if "cold" in names or not names else names[0]


def _change_kinds(before: compare.Facts, after: compare.Facts) -> tuple[bool, bool]:
    """(base image changed, Dockerfile changed) between two runs of a variant."""
    why = compare.causes(before, after)
    return (any(c.startswith(("base image ", "FROM ")) for c in why),
            "Dockerfile changed" in why)


def trends(entries: list[compare.Facts]):
    """Final size and median build time per variant over the history (two panels); runs
    whose base image changed and runs whose Dockerfile changed are marked differently."""
    scenario = _main_scenario(entries)
    fig, (ax_size, ax_time) = plt.subplots(2, 1, figsize=(WIDTH, 8), dpi=DPI, sharex=True)
    by_variant: dict[str, list[compare.Facts]] = {}
    for e in sorted(entries, key=lambda e: (e.when, e.run_id)):
        if e.status == "ok":
            by_variant.setdefault(e.variant, []).append(e)
    any_base = any_dockerfile = any_standin = False
    for name, runs in by_variant.items():
        when = [e.when for e in runs]
        sizes_mb = [e.size_bytes / MB if e.size_bytes is not None else float("nan") for e in runs]
        medians = [summarize(e.build_samples.get(scenario) or []).median
                   if e.build_samples.get(scenario) else float("nan") for e in runs]
        label = runs[-1].label or name
        label = label if len(label) <= 30 else label[:29] + "…"
        line, = ax_size.plot(when, sizes_mb, marker="o", markersize=4, label=label)
        ax_time.plot(when, medians, marker="o", markersize=4, color=line.get_color())
        standin = [i for i, e in enumerate(runs) if any(b.get("standin") for b in e.bases)]
        base_changed, dockerfile_changed = [], []
        for i, (before, after) in enumerate(itertools.pairwise(runs), 1):
            base, dockerfile = _change_kinds(before, after)
            if base:
                base_changed.append(i)
            if dockerfile:
                dockerfile_changed.append(i)
        for ax, ys in ((ax_size, sizes_mb), (ax_time, medians)):
            if standin:
                ax.scatter([when[i] for i in standin], [ys[i] for i in standin], s=70, zorder=3,
                           facecolors="white", edgecolors=line.get_color(), hatch=STANDIN_HATCH * 3)
            if base_changed:
                ax.scatter([when[i] for i in base_changed], [ys[i] for i in base_changed],
                           marker="^", s=150, facecolors="none", edgecolors="black",
                           linewidths=1.4, zorder=4)
            if dockerfile_changed:
                ax.scatter([when[i] for i in dockerfile_changed], [ys[i] for i in dockerfile_changed],
                           marker="s", s=150, facecolors="none", edgecolors="#d62728",
                           linewidths=1.4, zorder=4)
        any_base |= bool(base_changed)
        any_dockerfile |= bool(dockerfile_changed)
        any_standin |= bool(standin)
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
    notes = []
    if not (any_base or any_dockerfile):
        notes.append("No base-image or Dockerfile change between consecutive runs of any variant.")
    if any_standin:
        notes.append("Hatched points: built on a locally built stand-in base image, not the "
                     "registry's image.")
    _finish(fig, notes, right=0.84)
    return fig
