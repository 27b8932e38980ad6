"""Charts beyond the size bars: where the bytes go, build-time spread, trends over history.

Records (or history entries) in, matplotlib figures out; `save` writes PNG and SVG.
Stand-in bases are hatched and noted wherever a bar stands on one.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import compare, report  # noqa: E402
from .results import write_atomic  # noqa: E402
from .stats import summarize  # noqa: E402

PARTS = ("base image", "dependencies", "application", "other")
COLOURS = {"base image": "#8c8c8c", "dependencies": "#dd8452", "application": "#55a868", "other": "#4c72b0"}
STANDIN_NOTE = "Hatched: built on a locally built stand-in base image, not the registry's image."
_DEPS = re.compile(r"npm (ci|install|prune)|yarn( install)?\b|node_modules|pnpm")
_APP = re.compile(r"npm run build|\bdist\b|COPY \. \.|COPY dir:\S+ in \.?/?$|tsc\b")


def save(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg atomically; return both paths."""
    out = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        path = stem.with_suffix(f".{fmt}")
        write_atomic(path, buf.getvalue())
        out.append(path)
    plt.close(fig)
    return out


def sizes(record: dict):
    """Final size per variant, like the article's table, with the share saved against the
    first variant; the compressed (registry) size beside it where it was measured."""
    df = report.frame(record)
    fig, ax = plt.subplots(figsize=(10, 1.0 * max(len(df), 2) + 1.8), dpi=110)
    ys = list(range(len(df)))[::-1]
    ok = [r["status"] == "ok" for _, r in df.iterrows()]
    raw = [(r["size_bytes"] or 0) / 1e6 if good else 0 for good, (_, r) in zip(ok, df.iterrows())]
    packed = [float(c) / 1e6 if good and c is not None and c == c else None
              for good, c in zip(ok, df.get("compressed_estimate_bytes", [None] * len(df)))]
    both = any(p is not None for p in packed)
    height, shift = (0.4, 0.2) if both else (0.7, 0.0)
    bars = ax.barh([y + shift for y in ys], raw, height=height, edgecolor="black", linewidth=0.5,
                   color=["#c44e52" if i == 0 else "#4c72b0" for i in range(len(df))],
                   label="uncompressed (docker images)")
    for bar, (_, r) in zip(bars, df.iterrows()):
        if r["uses_standin"]:
            bar.set_hatch("//")
    if both:
        ax.barh([y - shift for y in ys], [p or 0 for p in packed], height=height, color="#a6bddb",
                edgecolor="black", linewidth=0.5, label="compressed (gzip, as pushed; estimate)")
        for y, p in zip(ys, packed):
            if p:
                ax.text(p + max(raw) * 0.01, y - shift, report.human_size(p * 1e6), va="center", fontsize=8)
    peak = max(raw) if raw else 0
    for y, (_, r), mb, good in zip(ys, df.iterrows(), raw, ok):
        if not good:
            ax.text(peak * 0.01, y, "build failed", va="center", color="#c44e52", fontweight="bold")
            continue
        saved = r.get("saved_vs_first")
        extra = "" if y == ys[0] else (f"  ({saved:.0%} smaller)" if saved and saved > 0 else "")
        ax.text(mb + peak * 0.01, y + shift, report.human_size(r["size_bytes"]) + extra,
                va="center", fontsize=9)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['label']}\n{report._base_cell(r)}" for _, r in df.iterrows()], fontsize=9)
    ax.set_xlim(0, peak * 1.35 if peak else 1)
    ax.set_xlabel("Image size (MB, SI: 1 MB = 10^6 bytes)")
    ax.set_title(f"Final image size per Dockerfile variant — run {record.get('run_id')}")
    ax.grid(axis="x", alpha=0.3)
    if both:
        ax.legend(loc="lower right", fontsize=8)
    if not df.empty and df["uses_standin"].any():
        fig.text(0.01, 0.01, f"Hatched bars ({report.STANDIN_MARK}): built on a locally built "
                 "stand-in base image, not the registry's image (see table.md).", fontsize=8,
                 style="italic")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def classify(created_by: str) -> str:
    """Which part of an image a history entry above the base belongs to."""
    text = created_by.replace("/bin/sh -c #(nop) ", "")
    if _DEPS.search(text):
        return "dependencies"
    if _APP.search(text):
        return "application"
    return "other"


def composition_bytes(variant: dict) -> dict[str, int] | None:
    """Bytes per part, from the history: the base's size, then the entries above it.

    Walking down from the newest entry until the bytes above the base are accounted for
    finds the Dockerfile's own entries without knowing the base's history.
    """
    image = variant.get("image") or {}
    base = report.final_base(variant) or {}
    if not image or base.get("size_bytes") is None:
        return None
    parts = dict.fromkeys(PARTS, 0)
    parts["base image"] = base["size_bytes"]
    remaining = image["size_bytes"] - base["size_bytes"]
    for entry in reversed(image.get("history") or []):
        if remaining <= 0:
            break
        size = min(entry["size_bytes"], remaining)
        parts[classify(entry.get("created_by", ""))] += size
        remaining -= size
    parts["other"] += max(remaining, 0)
    return parts


def _ok(record: dict) -> list[dict]:
    return [v for v in record.get("variants", []) if v.get("status") == "ok"]


def _standin(variant: dict) -> bool:
    return any(f.get("standin") for f in variant.get("froms") or [])


def composition(record: dict):
    variants = [v for v in _ok(record) if composition_bytes(v)]
    fig, ax = plt.subplots(figsize=(10, 0.7 * max(len(variants), 2) + 2), dpi=110)
    ys = list(range(len(variants)))[::-1]
    left = [0.0] * len(variants)
    for part in PARTS:
        widths = [composition_bytes(v)[part] / 1e6 for v in variants]
        bars = ax.barh(ys, widths, left=left, color=COLOURS[part], label=part, edgecolor="black",
                       linewidth=0.4)
        for bar, v in zip(bars, variants):
            if part == "base image" and _standin(v):
                bar.set_hatch("//")
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(ys)
    ax.set_yticklabels([v.get("label") or v["name"] for v in variants], fontsize=9)
    ax.set_xlabel("Bytes in the final image (MB, SI; uncompressed)")
    ax.set_title(f"Where the bytes go — run {record.get('run_id')}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    if any(_standin(v) for v in variants):
        fig.text(0.01, 0.01, STANDIN_NOTE, fontsize=8, style="italic")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def build_times(record: dict):
    """Every sample as a dot over a box per variant: the spread is visible, not hidden."""
    variants = [v for v in _ok(record) if (v.get("build") or {}).get("samples_seconds")]
    fig, ax = plt.subplots(figsize=(10, 0.7 * max(len(variants), 2) + 2), dpi=110)
    data = [v["build"]["samples_seconds"] for v in variants]
    ys = list(range(1, len(variants) + 1))[::-1]
    if data:
        ax.boxplot(data, positions=ys, orientation="horizontal", widths=0.5, showfliers=False)
        for y, samples in zip(ys, data):
            ax.scatter(samples, [y] * len(samples), color="#c44e52", zorder=3, s=18)
            ax.text(max(samples), y + 0.3, f"median {summarize(samples).median:.1f} s", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([(v.get("label") or v["name"]) + ("*" if _standin(v) else "") for v in variants],
                       fontsize=9)
    builder = (record.get("settings") or {}).get("builder", "classic")
    ax.set_xlabel(f"Cold build time (seconds, {builder} builder, no cache)")
    ax.set_title(f"Build time per variant, every sample — run {record.get('run_id')}")
    ax.grid(axis="x", alpha=0.3)
    if any(_standin(v) for v in variants):
        fig.text(0.01, 0.01, "* built on a locally built stand-in base image", fontsize=8, style="italic")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def trends(entries: list[compare.Facts]):
    """Size and median cold build time over time; base changes and Dockerfile changes marked."""
    fig, (ax_size, ax_time) = plt.subplots(2, 1, figsize=(11, 8), dpi=110, sharex=True)
    by_variant: dict[str, list[compare.Facts]] = {}
    for e in sorted(entries, key=lambda e: e.created_utc):
        if e.status == "ok":
            by_variant.setdefault(e.variant, []).append(e)
    for name, runs in by_variant.items():
        when = [e.when for e in runs]
        sizes = [(e.size_bytes or 0) / 1e6 for e in runs]
        medians = [summarize(e.build_samples.get("cold") or []).median
                   if e.build_samples.get("cold") else float("nan") for e in runs]
        line, = ax_size.plot(when, sizes, marker="o", label=runs[-1].label or name)
        ax_time.plot(when, medians, marker="o", color=line.get_color())
        for before, after in zip(runs, runs[1:]):
            why = compare.causes(before, after)
            base_changed = any(c.startswith(("base image", "FROM ")) for c in why)
            dockerfile_changed = "Dockerfile changed" in why
            for ax, y in ((ax_size, sizes), (ax_time, medians)):
                i = runs.index(after)
                if base_changed:
                    ax.scatter([after.when], [y[i]], marker="^", s=120, facecolors="none",
                               edgecolors="black", zorder=4)
                if dockerfile_changed:
                    ax.scatter([after.when], [y[i]], marker="s", s=120, facecolors="none",
                               edgecolors="red", zorder=4)
    ax_size.set_ylabel("Final size (MB, SI)")
    ax_time.set_ylabel("Median cold build (s)")
    ax_time.set_xlabel("Run time (UTC)")
    ax_size.set_title("Trends over history (▲ base image changed, ■ Dockerfile changed)")
    ax_size.legend(fontsize=8)
    for ax in (ax_size, ax_time):
        ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
