"""The report leads with the answer (pure: the recorded runs, no engine, no browser)."""

from __future__ import annotations

from pathlib import Path

from harness import store
from harness.report import html, verdict

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_pick_is_the_smallest_variant_that_serves_like_the_reference():
    run = store.load_run(FIXTURES / "v1_run" / "20261206T225328Z")
    v = verdict.verdict(run)
    assert v.pick.name == "multistage-alpine"  # 153.6 MB; "broken" failed, the others 179 MB
    assert v.why.startswith("Ship Multi-stage (alpine): the smallest image that still serves "
                            "the same GET / (154 MB, 1.2x smaller than")
    assert "stand-in" in v.why  # measured on stand-in bases, and it says so
    found = {f.what: f for f in v.findings}
    assert found["Fastest cold pull"].label == "Multi-stage (alpine)"
    assert found["Serves the same GET / as the reference"].value == "3 of 3"
    assert found["Runs as a non-root user"].value == "0 of 3"


def test_without_runtime_checks_every_built_variant_is_a_candidate():
    run = store.load_run(FIXTURES / "run")
    v = verdict.verdict(run)
    assert v.pick.name == "distroless" and "GET /" not in v.why
    assert "10.8x smaller than" in v.why


def test_the_verdict_comes_before_the_summary_in_index_html():
    run = store.load_run(FIXTURES / "v1_run" / "20261206T225328Z")
    page = html.render(run, None, [], images={})
    assert page.index('id="verdict"') < page.index('id="summary-section"')
    assert "Ship Multi-stage (alpine)" in page
