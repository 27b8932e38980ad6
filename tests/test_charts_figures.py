"""What each chart draws, from records shaped as the runner writes them (and as it soon
will): pure, no engine."""

from __future__ import annotations

import copy

from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from records import as_run, make_record, make_variant

from harness.model import VariantResult
from harness.report import charts
from harness.track import compare

BASE_ID = "sha256:" + "b" * 64


def _history(*entries: tuple[str | None, int, str]) -> list[dict]:
    return [{"id": ident, "size_bytes": size, "created_by": text, "created": None, "comment": ""}
            for ident, size, text in entries]


def _variant(history: list[dict], *, size: int, layers: int, base_layers: int = 2,
             base_size: int = 1000, base_id: str | None = BASE_ID) -> dict:
    return {"name": "v", "label": "V", "dockerfile": "v.Dockerfile", "status": "ok",
            "froms": [{"stage": 0, "from_line": 1, "written": "node:20-alpine",
                       "final": True, "kind": "image", "requested": "node:20-alpine",
                       "image_id": base_id, "size_bytes": base_size, "layer_count": base_layers}],
            "image": {"id": "sha256:" + "0" * 64, "size_bytes": size, "layer_count": layers,
                      "history": history}}


def _typed(variant: dict) -> VariantResult:
    """A bare variant record as the model reads it, inside a minimal run (schema version 1)."""
    return as_run({"schema_version": 1, "run_id": "20261126T120000Z",
                   "created_utc": "2026-11-26T12:00:00+00:00", "harness": {"version": "0.1.0"},
                   "variants": [variant]}).variants[0]


# A classic-builder history: the base's entries (its top named by the base's id), then ours.
HISTORY = _history(
    ("sha256:" + "1" * 64, 600, "/bin/sh -c #(nop) ADD file:aa in / "),
    ("sha256:" + "2" * 64, 0, "/bin/sh -c #(nop)  ENV NODE_VERSION=20"),
    ("sha256:" + "3" * 64, 400, "/bin/sh -c #(nop) COPY dir:bb in / "),
    (BASE_ID, 0, "/bin/sh -c #(nop)  CMD [\"node\"]"),
    ("sha256:" + "4" * 64, 0, "/bin/sh -c #(nop) WORKDIR /app"),  # an empty layer of 0 bytes
    ("sha256:" + "5" * 64, 30, "/bin/sh -c #(nop) COPY multi:cc in ./ "),
    ("sha256:" + "6" * 64, 500, "/bin/sh -c npm ci --omit=dev"),
    ("sha256:" + "7" * 64, 70, "/bin/sh -c #(nop) COPY dir:dd in ./dist "),
    ("sha256:" + "8" * 64, 0, "/bin/sh -c #(nop)  CMD [\"node\" \"dist/index.js\"]"),
)
EXPECTED = {"base image": 1000, "dependencies": 500, "application": 70, "other": 30}


def test_classify_reads_classic_and_buildkit_instructions():
    assert charts.classify("/bin/sh -c npm install") == "dependencies"
    assert charts.classify("RUN /bin/sh -c npm ci --omit=dev # buildkit") == "dependencies"
    assert charts.classify("COPY /app/node_modules ./node_modules # buildkit") == "dependencies"
    assert charts.classify("/bin/sh -c #(nop) COPY dir:ab in . ") == "application"
    assert charts.classify("COPY . . # buildkit") == "application"
    assert charts.classify("COPY /app/dist ./dist # buildkit") == "application"
    assert charts.classify("/bin/sh -c #(nop) COPY multi:ab in ./ ") == "other"
    assert charts.classify("/bin/sh -c #(nop)  USER node") == "other"


def test_composition_finds_the_base_by_its_image_id():
    parts = charts.composition_bytes(_typed(_variant(HISTORY, size=1600, layers=6)))
    assert parts == EXPECTED


def test_composition_counts_base_layers_when_every_layer_has_bytes():
    history = [dict(e, id="<missing>") for e in HISTORY if e["size_bytes"]]  # no ids, no empty layers
    variant = _variant(history, size=1600, layers=5, base_size=999_999)  # a size that would mislead
    parts = charts.composition_bytes(_typed(variant))
    assert parts["dependencies"] == 500 and parts["application"] == 70 and parts["other"] == 30


def test_composition_falls_back_to_the_base_size():
    history = [dict(e, id="<missing>") for e in HISTORY]  # an empty WORKDIR layer: counts mislead
    parts = charts.composition_bytes(_typed(_variant(history, size=1600, layers=6, base_id=None)))
    assert parts == EXPECTED


def test_composition_follows_from_stage_and_prefers_the_attribution():
    variant = _variant(HISTORY, size=1600, layers=6)
    variant["froms"] = [dict(variant["froms"][0], final=False, stage_name="base"),
                        {"stage": 1, "from_line": 8, "written": "base", "final": True,
                         "kind": "stage", "requested": "base", "stage_name": "runner"}]
    assert charts.composition_bytes(_typed(variant)) == EXPECTED
    variant["attribution"] = {"split": {"base_bytes": 1, "dependencies_bytes": 2,
                                        "app_bytes": 3, "other_bytes": 4}}
    assert charts.composition_bytes(_typed(variant)) == {"base image": 1, "dependencies": 2,
                                                 "application": 3, "other": 4}


def _hatched(ax) -> int:
    return sum(1 for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch())


def test_sizes_draws_compressed_bars_only_where_measured():
    record = make_record("20261126T120000Z", [
        make_variant("single", size=1_000_000_000, standin=True),
        make_variant("multi", size=150_000_000),
        make_variant("broken", status="failed")])
    fig = charts.sizes(as_run(record))
    ax = fig.axes[0]
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 2  # one bar per built variant
    assert _hatched(ax) == 1  # the stand-in
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "first (baseline)" in texts and "−85% vs first" in texts and "build failed" in texts
    assert "MB" in ax.get_xlabel() and ax.get_title()
    assert any("stand-in" in t.get_text() for t in fig.texts)

    measured = copy.deepcopy(record)
    measured["variants"][0]["image"]["compressed_size_bytes"] = 400_000_000
    measured["variants"][1]["compressed"] = {"registry_bytes": 50_000_000}
    ax = charts.sizes(as_run(measured)).axes[0]
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 4
    assert "50 MB compressed   −88% vs first" in " ".join(t.get_text() for t in ax.texts)


def test_build_times_reads_scenarios_and_draws_a_panel_per_builder():
    record = make_record("20261126T120000Z", [make_variant("a"), make_variant("b")])
    fig = charts.build_times(as_run(record))
    assert len(fig.axes) == 1
    assert "seconds" in fig.axes[0].get_xlabel()
    dots = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert sum(len(c.get_offsets()) for c in dots) == 6  # every sample

    for v in record["variants"]:
        v["build"]["scenarios"] = {"cold": {"samples_seconds": [60.0, 61.0], "warmup_seconds": [70.0]},
                                   "warm": {"samples_seconds": [2.0, 2.1, 2.2], "warmup_seconds": []}}
    record["variants"][1]["builder"] = "buildkit"
    series = charts.build_series(as_run(record))
    assert [(s.variant, s.builder, s.scenario) for s in series] == [
        ("a", "classic", "cold"), ("a", "classic", "warm"),
        ("b", "buildkit", "cold"), ("b", "buildkit", "warm")]
    assert series[0].warmup == [70.0]
    fig = charts.build_times(as_run(record))
    assert len(fig.axes) == 2  # one panel per builder
    assert "log scale" in fig.axes[-1].get_xlabel()
    assert {t.get_text() for t in fig.axes[0].get_yticklabels()} == {"A — cold", "A — warm"}
    assert fig.axes[1].get_ylabel().startswith("buildkit builder")


def test_trends_mark_base_changes_and_dockerfile_changes_differently():
    runs = [make_record("20261101T000000Z", [make_variant("a")]),
            make_record("20261102T000000Z", [make_variant("a", base_id="sha256:" + "9" * 64)]),
            make_record("20261103T000000Z", [make_variant("a", base_id="sha256:" + "9" * 64,
                                                          dockerfile_sha="e" * 64)])]
    entries = [compare.facts(r, r["variants"][0]) for r in runs]
    fig = charts.trends(entries)
    size_axis, time_axis = fig.axes
    assert "MB" in size_axis.get_ylabel() and "(s)" in time_axis.get_ylabel()
    # ▲ on the second run (its base changed), ■ on the third (its Dockerfile changed)
    assert len(size_axis.collections) == 2
    base_mark, dockerfile_mark = size_axis.collections
    assert len(base_mark.get_offsets()) == len(dockerfile_mark.get_offsets()) == 1
    assert base_mark.get_offsets()[0][0] < dockerfile_mark.get_offsets()[0][0]
    assert tuple(base_mark.get_edgecolor()[0]) != tuple(dockerfile_mark.get_edgecolor()[0])
    assert base_mark.get_paths()[0].vertices.tolist() != dockerfile_mark.get_paths()[0].vertices.tolist()


def test_charts_read_the_runners_full_record():
    from records import make_full_record

    record = make_full_record()
    # composition: the attribution's split where every part is known, else the history
    three = as_run(record).variants[1]
    assert charts.composition_bytes(three) == {"base image": 40_000_000, "dependencies": 5_000_000,
                                               "application": 300_000, "other": 1_700_000}
    partial = copy.deepcopy(record)
    partial["variants"][1]["attribution"]["split"]["app_bytes"] = None  # contents unknown: not a usable split
    assert charts.composition_bytes(as_run(partial).variants[1]) != charts.composition_bytes(three)
    # failed at runtime: its image was built and measured, so it is drawn
    ax = charts.sizes(as_run(record)).axes[0]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "115 MB   −91% vs first   (failed at runtime)" in texts
    assert "build failed: COPY failed" in texts
    # build times: every builder's scenarios, the failed builder left out
    series = charts.build_series(as_run(record))
    keys = {(s.variant, s.builder, s.scenario) for s in series}
    assert ("three-stage", "buildkit", "source-change") in keys
    assert ("distroless", "classic", "cold") in keys
    assert not any(v == "single" and b == "buildkit" for v, b, _ in keys)
    assert ("three-stage", "buildkit", "dependency-change") not in keys  # skipped
    assert ("distroless", "classic", "no-change") not in keys  # failed
    fig = charts.build_times(as_run(record))
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel().startswith("buildkit builder")
    assert any("source-change: cache, one source file edited" in t.get_text() for t in fig.texts)


def _outside(fig) -> list[str]:
    """What reaches past the figure's edges once drawn: its tight bounding box (every drawn
    artist, legends and labels included) against the figure, then the texts to blame."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tight, (w, h) = fig.get_tightbbox(renderer), fig.get_size_inches()
    if tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= w + 0.01 and tight.y1 <= h + 0.01:
        return []
    box = fig.bbox
    return [t.get_text() or "?" for t in fig.findobj(Text) if t.get_visible() and t.get_text()
            and not box.contains(*t.get_window_extent(renderer).min)] or [f"{tight} > {w}x{h}"]


def test_build_times_legend_and_labels_stay_inside_the_figure():
    """Four scenarios, warm-ups and a box: the legend and every median label inside the
    figure; a median label sits clear of the warm-up ring (the slow first build)."""
    import matplotlib.pyplot as plt
    from records import make_full_record

    run = as_run(make_full_record())
    fig = charts.build_times(run)
    try:
        assert _outside(fig) == []
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            rings = [c for c in ax.collections if isinstance(c, PathCollection)
                     and len(c.get_facecolors()) == 0]
            labels = [t for t in ax.texts if t.get_text().startswith("median ")]
            for label in labels:
                extent = label.get_window_extent(renderer)
                for ring in rings:
                    for x, y in ax.transData.transform(ring.get_offsets()):
                        assert not extent.expanded(1.0, 1.0).contains(x, y), label.get_text()
    finally:
        plt.close(fig)
