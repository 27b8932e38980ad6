import json

from records import make_record, make_variant

from harness import migrations
from harness.model import Run
from harness.track import history
from harness.track.history import (
    append_run,
    format_changes,
    history_main,
    read_history,
    regressions,
)

DAY1, DAY2, DAY3 = "20240101T000000Z", "20240102T000000Z", "20240103T000000Z"
FAST = (60.0, 61.0, 59.0, 60.5, 59.5)
SLOW = (75.0, 76.0, 74.0, 75.5, 74.5)


def typed(record: dict) -> Run:
    """The typed run of a tests/records.py dict, as the code under test takes it."""
    return Run.from_json(migrations.migrate(record))


def _history(tmp_path, *records):
    path = tmp_path / "history.jsonl"
    for r in records:
        append_run(path, typed(r))
    return path


def test_a_size_change_is_reported_exactly_with_its_base_change(tmp_path):
    day1 = make_record(DAY1, [make_variant("alpine", size=150_000_000),
                              make_variant("node20", base="node:20", size=1_100_000_000)])
    day2 = make_record(DAY2, [
        make_variant("alpine", size=152_500_000, digest="sha256:" + "7" * 64,
                     base_id="sha256:" + "c" * 64),
        make_variant("node20", base="node:20", size=1_100_000_000)])
    entries, problems = read_history(_history(tmp_path, day1, day2))
    assert problems == [] and len(entries) == 4

    (change,) = regressions(entries)
    assert (change.variant, change.what, change.before, change.after, change.worse) == (
        "alpine", "size", 150_000_000, 152_500_000, True)
    assert (change.before_run, change.after_run) == (DAY1, DAY2)
    assert change.detail == "150 MB → 152 MB: +2,500,000 B (+1.67%)"
    assert change.causes == ("base image node:20-alpine changed (bbbbbbbbbbbb → cccccccccccc)",)
    assert format_changes([change]) == [
        f"alpine: {DAY1} → {DAY2}",
        "  size: 150 MB → 152 MB: +2,500,000 B (+1.67%)  [regression]",
        "  changed between the runs: base image node:20-alpine changed "
        "(bbbbbbbbbbbb → cccccccccccc)",
    ]


def test_causes_dockerfile_context_and_unknown(tmp_path):
    day1 = make_record(DAY1, [make_variant("a"), make_variant("b"), make_variant("c"),
                              make_variant("old", dockerfile_sha=None, context_sha=None)])
    day2 = make_record(DAY2, [make_variant("a", layers=9, dockerfile_sha="1" * 64),
                              make_variant("b", size=1, context_sha="2" * 64),
                              make_variant("c", size=2),
                              make_variant("old", size=3, dockerfile_sha=None, context_sha=None)])
    causes = {c.variant: c.causes for c in regressions(read_history(_history(tmp_path, day1, day2))[0])}
    assert causes == {
        "a": ("Dockerfile changed",),
        "b": ("app (build context) changed",),
        "c": ("cause unknown (bases, Dockerfile and context unchanged)",),
        "old": ("cause unknown (bases unchanged; Dockerfile and app (build context) hash "
                "not recorded)",),
    }


def test_build_time_needs_significance_and_the_factor(tmp_path):
    runs = [make_record(DAY1, [make_variant("few", samples=(60.0, 61.0, 59.0)),
                               make_variant("many", samples=FAST)]),
            make_record(DAY2, [make_variant("few", samples=(90.0, 91.0, 89.0)),
                               make_variant("many", samples=SLOW)])]
    changes = {c.variant: c for c in regressions(read_history(_history(tmp_path, *runs))[0])}
    few, many = changes["few"], changes["many"]
    assert few.worse is True and "every sample slower" in few.detail  # 3 samples, +50 %
    assert many.worse is True and many.what == "build time (cold)"
    assert "slower, p=0.0079" in many.detail


def test_failures_are_reported_and_skipped_over(tmp_path):
    runs = [make_record(DAY1, [make_variant("v", size=100)]),
            make_record(DAY2, [make_variant("v", status="failed")]),
            make_record(DAY3, [make_variant("v", size=110)])]
    changes = regressions(read_history(_history(tmp_path, *runs))[0])
    assert [(c.what, c.before_run, c.after_run, c.worse) for c in changes] == [
        ("status", DAY1, DAY2, True), ("status", DAY2, DAY3, False), ("size", DAY1, DAY3, True)]


def test_runs_are_ordered_by_time_not_by_file_order(tmp_path):
    path = _history(tmp_path, make_record(DAY2, [make_variant("v", size=200)]),
                    make_record(DAY1, [make_variant("v", size=100)]))
    (change,) = regressions(read_history(path)[0])
    assert (change.before, change.after) == (100, 200)


def test_append_is_idempotent_and_only_appends(tmp_path):
    day1 = make_record(DAY1, [make_variant("a"), make_variant("b")])
    path = _history(tmp_path, day1)
    first = path.read_bytes()
    assert append_run(path, typed(day1)) == 0
    assert path.read_bytes() == first
    assert append_run(path, typed(make_record(DAY2, [make_variant("a")]))) == 1
    assert path.read_bytes().startswith(first)
    line = json.loads(path.read_text().splitlines()[0])
    assert line["schema_version"] == history.SCHEMA_VERSION
    assert (line["run_id"], line["variant"], line["hostname"]) == (DAY1, "a", "bench-1")
    assert line["build_samples"] == {"cold": [60.0, 61.0, 59.5]}
    assert line["bases"][0]["requested"] == "node:20-alpine"


def test_truncated_line_and_unknown_schema_are_reported_and_skipped(tmp_path):
    path = _history(tmp_path, make_record(DAY1, [make_variant("v", size=100)]))
    future = json.loads(path.read_text()) | {"schema_version": 99, "run_id": "X"}
    with open(path, "a") as fh:
        fh.write(json.dumps(future) + "\n")
        fh.write('{"schema_version": 1, "run_id": "2024')  # a writer that crashed
    # the next append starts on a fresh line: the fragment stays one reported line
    assert append_run(path, typed(make_record(DAY2, [make_variant("v", size=120)]))) == 1

    entries, problems = read_history(path)
    assert [e.run_id for e in entries] == [DAY1, DAY2]
    assert problems == [
        f"{path}:2: schema version 99 is not one this harness reads (1); skipped",
        f"{path}:3: not valid JSON (a truncated line?); skipped",
    ]
    lines, code = history_main(path)
    assert lines[:2] == [f"warning: {p}" for p in problems]
    assert code == 1  # the latest run grew


def test_malformed_lines_never_raise(tmp_path):
    path = tmp_path / "history.jsonl"
    run = typed(make_record(DAY1, [make_variant("v")]))
    good = history.history_line(history.compare.facts(run, run.variants[0]))
    bad_size = json.loads(good) | {"size_bytes": "big", "run_id": "r2"}
    no_zone = json.loads(good) | {"created_utc": "2024-01-01T00:00:00", "run_id": "r3"}
    path.write_bytes(b"\n".join([good.encode(), good.encode(), b"[1, 2]", b"\xff\xfe",
                                 json.dumps(bad_size).encode(), json.dumps(no_zone).encode(),
                                 b'{"schema_version": 1}', b""]))
    entries, problems = read_history(path)
    assert len(entries) == 1
    causes = [p.split(": ", 1)[1] for p in problems]
    assert causes == ["duplicate of line 1; skipped", "not a JSON object; skipped",
                      "not UTF-8 text; skipped", "size_bytes is not an integer; skipped",
                      "created_utc '2024-01-01T00:00:00' has no time zone; skipped",
                      causes[-1]]
    assert causes[-1].startswith("missing key(s) run_id, created_utc")


def test_history_main_exit_codes(tmp_path):
    missing = tmp_path / "none.jsonl"
    assert history_main(missing) == ([f"{missing}: no history yet (each `harness run` appends "
                                      "to it)"], 0)
    path = _history(tmp_path, make_record(DAY1, [make_variant("v", size=200)]),
                    make_record(DAY2, [make_variant("v", size=100)]))
    lines, code = history_main(path)
    assert code == 0 and "[improvement]" in lines[2]
    assert lines[0] == "2 entries: 1 variant(s), 2 run(s)"


def test_backfill_appends_every_run_directory(tmp_path):
    results_dir = tmp_path / "results"
    for run_id, size in ((DAY1, 100), (DAY2, 100)):
        (results_dir / run_id).mkdir(parents=True)
        (results_dir / run_id / "results.json").write_text(
            json.dumps(make_record(run_id, [make_variant("v", size=size)])))
    (results_dir / "broken").mkdir()
    (results_dir / "broken" / "results.json").write_text("{")
    (results_dir / "latest").symlink_to(DAY2)
    path = results_dir / "history.jsonl"
    lines = history.backfill(path, results_dir)
    assert lines[:2] == [f"{DAY1}: 1 line(s) appended", f"{DAY2}: 1 line(s) appended"]
    assert lines[2].startswith("skipped: ") and "broken" in lines[2]
    assert history.backfill(path, results_dir)[:2] == [f"{DAY1}: 0 line(s) appended",
                                                      f"{DAY2}: 0 line(s) appended"]
