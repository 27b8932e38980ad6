"""Several engines in one run: the engines side by side per variant, why their figures
differ, and where each row was measured. Pure: a run in, a table, lines or a figure out.

Size here is the one definition that does not depend on the engine (the bytes of the files
in the image's layers); beside it, what that engine's own `docker images` shows, which is
where engines differ by design: the containerd image store counts the content store's
blobs as well as the unpacked layers, Podman the layer tars with config and manifest.
"""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt
import pandas as pd

from harness.analysis.sizes import engine_label, store_kind
from harness.model import Build, Engine, Run, VariantResult
from harness.report.build_tables import builds
from harness.report.charts import DPI, MB, WIDTH
from harness.report.formatting import label_of, markdown_table, scenario_samples
from harness.report.units import human_seconds, human_size

ENGINE_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def compared(run: Run) -> bool:
    """Some variant was measured on two or more engines (`--engines compare`)."""
    seen: dict[str, set[str]] = {}
    for v in run.variants:
        seen.setdefault(v.name, set()).add(v.engine_name or "")
    return any(len(engines) > 1 for engines in seen.values())


def spread(run: Run) -> bool:
    """Rows measured on several engines, each variant on one (`--engines spread`, shards)."""
    return len(run.engine_names()) > 1 and not compared(run)


def _engine(run: Run, v: VariantResult) -> Engine:
    return (run.engines or {}).get(v.engine_name or "", run.engine)


def _cold_median(run: Run, build: Build | None) -> float | None:
    samples = scenario_samples(run, build)
    cold = samples.get("cold") or next((s for s in samples.values() if s), [])
    return statistics.median(cold) if cold else None


def builders(run: Run) -> list[str]:
    names = [run.settings.builder, *(run.settings.builders or [])]
    for v in run.variants:
        names += list(v.extra_builds or {})
    return list(dict.fromkeys(n for n in names if n))


def _build_by(run: Run, v: VariantResult, builder: str) -> Build | None:
    return next((b for name, _, b in builds(run, v) if name == builder), None)


def comparison_frame(run: Run) -> pd.DataFrame:
    """One row per variant and engine, variant by variant: the figures of each engine."""
    rows = []
    for v in sorted(run.variants, key=lambda v: [x.name for x in run.variants].index(v.name)):
        image, reg = v.image, v.registry
        row = {"Variant": label_of(v), "Engine": v.engine_name or "default",
               "Product and store": engine_label(_engine(run, v)),
               "Size": human_size(image.size_bytes) if image else v.status,
               "`docker images` there": human_size(image.listed_size_bytes or image.inspect_size_bytes)
               if image else "–",
               "Layers": image.layer_count if image else "–"}
        for b in builders(run):
            row[f"Build, {b} (cold median)"] = human_seconds(_cold_median(run, _build_by(run, v, b)))
        row["Compressed"] = human_size(v.compressed_size_bytes)
        row["Push"] = human_seconds(reg.push_seconds) if reg and reg.push_seconds else "–"
        row["Pull"] = human_seconds(reg.pull_seconds) if reg and reg.pull_seconds else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def why_lines(run: Run) -> list[str]:
    """Why the engines' figures differ, one line per cause found in this run."""
    by_variant: dict[str, list[VariantResult]] = {}
    for v in run.variants:
        if v.image is not None:
            by_variant.setdefault(v.name, []).append(v)
    kinds = {v.engine_name: store_kind(_engine(run, v)) for vs in by_variant.values() for v in vs}
    lines = _store_lines(kinds)
    for vs in by_variant.values():
        lines += _variant_lines(vs)
    return lines or ["The engines agree on every variant's size and layers."]


def _store_lines(kinds: dict) -> list[str]:
    """What each kind of image store counts in its own size."""
    def named(kind: str) -> str:
        return ", ".join(sorted(str(n) for n, k in kinds.items() if k == kind))
    lines = []
    if "containerd" in kinds.values():
        lines.append("The containerd image store's `docker images` counts the content store's "
                     "blobs (the layers as stored, compressed when pulled) beside the unpacked "
                     f"layers, so it shows more than the files: engine(s) {named('containerd')}.")
    if "podman" in kinds.values():
        lines.append("Podman's size is the layer tars with the image's config and manifest: "
                     f"engine(s) {named('podman')}.")
    return lines


def _variant_lines(vs: list[VariantResult]) -> list[str]:
    """Where one variant's images differ between engines: layers, bytes, compression."""
    lines = []
    label = label_of(vs[0])
    sizes = {v.engine_name: v.image.size_bytes for v in vs}
    layers = {v.engine_name: v.image.layer_count for v in vs}
    if len(set(layers.values())) > 1:
        lines.append(f"{label}: the builders made different layers ("
                     + ", ".join(f"{e}: {n}" for e, n in layers.items()) + "), so the sizes "
                     "differ too: a builder's own steps (Podman's, BuildKit's) leave other "
                     "layers than Docker's classic builder.")
    elif len(set(sizes.values())) > 1:
        lines.append(f"{label}: the same layers hold different bytes ("
                     + ", ".join(f"{e}: {human_size(s)}" for e, s in sizes.items())
                     + "): files a build step wrote differ (timestamps, caches).")
    packed = {v.engine_name: v.compressed_size_bytes for v in vs if v.compressed_size_bytes}
    if len(packed) > 1 and max(packed.values()) > 1.01 * min(packed.values()):
        lines.append(f"{label}: the compressed sizes differ by more than 1 % ("
                     + ", ".join(f"{e}: {human_size(s)}" for e, s in packed.items())
                     + "): each engine gzips its layers when it pushes, with its own settings.")
    return lines


def provenance_frame(run: Run) -> pd.DataFrame:
    """Where each row was measured, grouped by engine (build times compare within one)."""
    rows = []
    order = {name: i for i, name in enumerate(run.engine_names())}
    for v in sorted(run.variants, key=lambda v: order.get(v.engine_name or "", len(order))):
        where = v.measured_on
        rows.append({"Engine": v.engine_name or "default",
                     "Product and store": engine_label(_engine(run, v)),
                     "Machine": (where.hostname if where else None) or run.machine.hostname or "–",
                     "Variant": label_of(v),
                     "Build (cold median)": human_seconds(_cold_median(run, v.build)),
                     "Part of run": (where.run_id if where else None) or run.run_id,
                     "Shard": (where.shard if where else None) or "–"})
    return pd.DataFrame(rows)


def has_provenance(run: Run) -> bool:
    return bool(run.merged_from) or any(v.measured_on for v in run.variants)


PROVENANCE_NOTE = ("Rows are grouped by the engine that measured them. Build times depend on "
                   "the machine and engine: compare them only between rows of the same engine.")
COMPARE_NOTE = ("Size: the files in the image's layers, the same definition on every engine. "
                "`docker images` there: that engine's own figure. Build: the median of the "
                "cold builds, each engine measured one after the other on its own.")


def engine_lines(run: Run) -> list[str]:
    """report.md's sections on engines: side by side (compare), where each row was measured."""
    lines: list[str] = []
    if compared(run):
        lines += ["## Engines side by side", "", markdown_table(comparison_frame(run)), "",
                  COMPARE_NOTE, "", "Where the engines disagree:", "",
                  *(f"- {line}" for line in why_lines(run)), ""]
    if has_provenance(run):
        lines += ["## Where each row was measured", "", markdown_table(provenance_frame(run)),
                  "", PROVENANCE_NOTE, ""]
    return lines[:-1] if lines else []


def chart(run: Run):
    """Each variant's size on each engine: the engine-independent size as the bar, the
    engine's own `docker images` figure as a tick on it. None with fewer than two engines."""
    if not compared(run):
        return None
    engines = run.engine_names()
    names = list(dict.fromkeys(v.name for v in run.variants))
    labels = {v.name: label_of(v) for v in run.variants}
    cell = {(v.name, v.engine_name): v for v in run.variants}
    height = 0.8 / len(engines)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.5 * len(names) * len(engines) + 2.2), dpi=DPI)
    for j, engine in enumerate(engines):
        ys, sizes, listed = [], [], []
        for i, name in enumerate(names):
            v = cell.get((name, engine))
            if v is None or v.image is None:
                continue
            y = len(names) - 1 - i + 0.4 - height * (j + 0.5)
            ys.append(y)
            sizes.append(v.image.size_bytes / MB)
            listed.append((v.image.listed_size_bytes or v.image.size_bytes) / MB)
        colour = ENGINE_COLOURS[j % len(ENGINE_COLOURS)]
        ax.barh(ys, sizes, height=height * 0.9, color=colour,
                label=f"{engine}: {engine_label((run.engines or {}).get(engine, run.engine))}")
        ax.scatter(listed, ys, marker="|", s=220, color="black", zorder=3,
                   label="`docker images` on that engine" if j == 0 else None)
        for y, s in zip(ys, sizes):
            ax.text(s, y, f" {s:,.1f} MB", va="center", fontsize=8)
    ax.set_yticks([len(names) - 1 - i for i in range(len(names))])
    ax.set_yticklabels([labels[n] for n in names])
    ax.set_xlabel("MB (SI): files in the image's layers; the tick, that engine's own figure")
    ax.set_xlim(0, max([1.0, *(ax.get_xlim()[1:])]) * 1.12)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8,
              frameon=False)
    fig.tight_layout()
    return fig
