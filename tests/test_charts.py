"""Charts from records and history: pure, no engine."""

from __future__ import annotations

import shutil

from conftest import FIXTURES
from records import as_run, make_record, make_variant

from harness import store as results
from harness.model import VariantResult
from harness.report import charts, writer
from harness.track import compare


def _typed(variant: dict) -> VariantResult:
    """A bare variant record as the model reads it, inside a minimal run (schema version 1)."""
    return as_run({"schema_version": 1, "run_id": "20261126T120000Z",
                   "created_utc": "2026-11-26T12:00:00+00:00", "harness": {"version": "0.1.0"},
                   "variants": [variant]}).variants[0]


def test_history_entries_are_classified_by_instruction():
    assert charts.classify("/bin/sh -c npm ci --omit=dev") == "dependencies"
    assert charts.classify("/bin/sh -c #(nop) COPY dir:0a1b in ./node_modules ") == "dependencies"
    assert charts.classify("/bin/sh -c #(nop) COPY dir:0a1b in ./dist ") == "application"
    assert charts.classify("/bin/sh -c npm run build") == "application"
    assert charts.classify("/bin/sh -c #(nop) WORKDIR /app") == "other"


def test_composition_adds_up_to_the_image_size():
    variant = {
        "name": "v", "label": "V", "dockerfile": "v.Dockerfile", "status": "ok",
        "froms": [{"stage": 0, "from_line": 1, "written": "node:20", "final": True,
                   "size_bytes": 1000, "requested": "node:20"}],
        "image": {"id": "sha256:" + "0" * 64, "size_bytes": 1600, "layer_count": 4, "history": [
            {"created_by": "base layer", "size_bytes": 1000},
            {"created_by": "/bin/sh -c npm ci", "size_bytes": 450},
            {"created_by": "/bin/sh -c #(nop) COPY dir:ab in ./dist ", "size_bytes": 100},
            {"created_by": "/bin/sh -c #(nop) COPY multi:cd in ./ ", "size_bytes": 50},
        ]},
    }
    parts = charts.composition_bytes(_typed(variant))
    assert parts == {"base image": 1000, "dependencies": 450, "application": 100, "other": 50}
    assert sum(parts.values()) == 1600


def test_report_writes_every_chart_as_png_and_svg(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    written = writer.write_outputs(results.load(run), run)
    names = sorted(p.name for p in written.charts)
    assert names == sorted(f"{n}.{ext}" for n in ("sizes", "composition", "build_times")
                           for ext in ("png", "svg"))
    for path in written.charts:
        assert path.stat().st_size > 5_000


def test_trends_mark_base_and_dockerfile_changes(tmp_path):
    one = make_record("20261101T000000Z", [make_variant("a", size=100_000_000, samples=[10, 11, 12])])
    two = make_record("20261102T000000Z", [make_variant("a", size=120_000_000, samples=[10, 11, 12],
                                                        base_id="sha256:" + "9" * 64)])
    entries = [compare.facts(r, r["variants"][0]) for r in (one, two)]
    assert any(c.startswith("base image") for c in compare.causes(*entries))
    fig = charts.trends(entries)
    size_axis = fig.axes[0]
    # one line for the variant, one marker for the base change on each panel
    assert len(size_axis.lines) == 1 and len(size_axis.collections) == 1
    paths = charts.save(fig, tmp_path / "trends")
    assert [p.suffix for p in paths] == [".png", ".svg"]
