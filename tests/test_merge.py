"""`harness merge` and the reports of a run of several engines, from recorded runs: pure,
no engine. The engine tests (tests/test_multi_engine.py) merge real runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness import store
from harness.bench import merge
from harness.cli import app
from harness.model import Engine, HarnessInfo, Run
from harness.report import engines
from harness.report.markdown import markdown_lines, table_lines

FIXTURE = Path(__file__).parent / "fixtures" / "run"


def _part(run: Run, run_id: str, names: list[str], engine: str, host: str = "h1",
          shard: str | None = None, **engine_facts) -> Run:
    return dataclasses.replace(
        run, run_id=run_id, variants=[v for v in run.variants if v.name in names],
        machine=dataclasses.replace(run.machine, hostname=host),
        engine=dataclasses.replace(run.engine, name=engine, **engine_facts),
        settings=dataclasses.replace(run.settings, shard=shard,
                                     planned=[v.name for v in run.variants]))


@pytest.fixture
def recorded() -> Run:
    return store.load_run(FIXTURE)


def test_shards_merge_into_the_run_they_were_cut_from(recorded):
    names = [v.name for v in recorded.variants]
    a = _part(recorded, "r1", names[1::2], "default", "ci-1", "2/2")
    b = _part(recorded, "r2", names[0::2], "default", "ci-2", "1/2")
    assert merge.problems([a, b]) == []
    merged = merge.merge([a, b], run_id="m", created_utc=recorded.created_utc, order=names)
    assert [v.name for v in merged.variants] == names
    assert [v.image.size_bytes for v in merged.variants if v.image] == [
        v.image.size_bytes for v in recorded.variants if v.image]
    hosts = {v.name: (v.measured_on.hostname, v.measured_on.shard) for v in merged.variants}
    assert hosts[names[0]] == ("ci-2", "1/2") and hosts[names[1]] == ("ci-1", "2/2")
    assert merged.merged_from == ["r1", "r2"] and merged.primary() is merged
    Run.from_json(merged.to_json())  # fits the model (and so the published schema)
    text = "\n".join(markdown_lines(merged))
    assert "## Where each row was measured" in text and "ci-2" in text and "1/2" in text


def test_refused_merges_say_why_in_one_line(recorded):
    names = [v.name for v in recorded.variants]
    a = _part(recorded, "r1", names[:2], "default")
    assert any("merged with itself" in p for p in merge.problems([a, a]))
    b = _part(recorded, "r2", names[1:3], "default")
    assert any(f"variant {names[1]} on engine default is in runs r1 and r2" in p
               for p in merge.problems([a, b]))
    c = _part(recorded, "r3", names[2:], "default")
    c = dataclasses.replace(c, harness=HarnessInfo(version="9.9.9"))
    assert merge.problems([a, c]) == [
        f"runs r1 and r3: harness {recorded.harness.version} against 9.9.9"]
    assert merge.problems([a, c], force=True) == []
    a = dataclasses.replace(a, variants=[
        dataclasses.replace(v, dockerfile_sha256="1" * 64) for v in a.variants])
    edited = _part(dataclasses.replace(recorded, variants=[
        dataclasses.replace(v, dockerfile_sha256="0" * 64) for v in recorded.variants]),
        "r4", names[:1], "other-engine")
    assert merge.problems([a, edited]) == [
        f"variant {names[0]}: its Dockerfile differs between runs r1 and r4"]


def test_engines_side_by_side_fill_every_cell(recorded):
    names = [v.name for v in recorded.variants if v.image][:3]
    a = _part(recorded, "r1", names, "docker26")
    b = _part(recorded, "r2", names, "docker26-containerd", store="containerd")
    merged = merge.merge([a, b], run_id="m", created_utc=recorded.created_utc)
    assert engines.compared(merged) and merged.engine_names() == ["docker26", "docker26-containerd"]
    assert [v.name for v in merged.primary().variants] == names
    frame = engines.comparison_frame(merged)
    assert len(frame) == 2 * len(names) and not frame.isna().any().any()
    assert list(frame["Engine"][:2]) == ["docker26", "docker26-containerd"]
    why = engines.why_lines(merged)
    assert any("containerd image store" in line and "docker26-containerd" in line for line in why)
    assert engines.chart(merged) is not None
    # The article's table keeps one row per variant: the first engine's.
    text = "\n".join(table_lines(merged)).splitlines()
    assert sum(line.startswith("| ") for line in text) == len(names) + 1


def test_merge_command(recorded, tmp_path):
    names = [v.name for v in recorded.variants]
    dirs = []
    for i, part in enumerate([_part(recorded, "r1", names[:2], "default", shard="1/2"),
                              _part(recorded, "r2", names[2:], "default", shard="2/2")]):
        d = tmp_path / f"shard-{i + 1}" / part.run_id
        d.mkdir(parents=True)
        store.save(d, part)
        dirs.append(d.parent)
    runner = CliRunner()
    got = runner.invoke(app, ["merge", *map(str, dirs), "--out", str(tmp_path / "merged")])
    assert got.exit_code in (0, 1), got.output
    latest = tmp_path / "merged" / "latest"
    merged = store.load_run(latest)
    assert [v.name for v in merged.variants] == names and merged.merged_from == ["r1", "r2"]
    assert (latest / "index.html").is_file() and "provenance" in (latest / "index.html").read_text()
    history = (tmp_path / "merged" / "history.jsonl").read_text().splitlines()
    assert len(history) == len(names)

    again = runner.invoke(app, ["merge", str(dirs[0]), str(dirs[0]), "-o", str(tmp_path / "x")])
    assert again.exit_code == 2 and "merged with itself" in again.output
    empty = tmp_path / "empty"
    empty.mkdir()
    none = runner.invoke(app, ["merge", str(dirs[0]), str(empty), "-o", str(tmp_path / "x")])
    assert none.exit_code == 2 and "no results.json" in none.output
    assert "Traceback" not in none.output
    broken = tmp_path / "broken"
    shutil.copytree(dirs[1], broken)
    (next(broken.iterdir()) / "results.json").write_text(json.dumps({"variants": 3}))
    bad = runner.invoke(app, ["merge", str(dirs[0]), str(broken), "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "results.json" in bad.output
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_engine_descriptions_are_kept_by_name(recorded):
    a = _part(recorded, "r1", [recorded.variants[0].name], "a", server_version="26.1.5")
    b = _part(recorded, "r2", [recorded.variants[0].name], "b", server_version="20.10.24")
    merged = merge.merge([a, b], run_id="m", created_utc=recorded.created_utc)
    assert isinstance(merged.engines["b"], Engine)
    assert merged.on_engine("b").engine.server_version == "20.10.24"


def test_an_incomplete_or_differently_measured_set_is_refused(recorded):
    names = [v.name for v in recorded.variants]
    one = _part(recorded, "r1", names[:1], "default", shard="1/3")
    two = _part(recorded, "r2", names[1:], "default", shard="2/3")
    assert merge.problems([one, two]) == [
        "shard(s) 3/3 missing: the merged run would lack their variants"]
    other = _part(recorded, "r3", names[1:], "default", shard="2/2")
    assert "different splits" in merge.problems([one, other])[0]
    slower = dataclasses.replace(two, settings=dataclasses.replace(two.settings, shard=None,
                                                                    repeat=9))
    first = dataclasses.replace(one, settings=dataclasses.replace(one.settings, shard=None))
    assert merge.problems([first, slower]) == [
        f"runs r1 and r2 were measured differently: repeat {recorded.settings.repeat!r} "
        "against 9"]
    unfinished = dataclasses.replace(first, finished_utc=None)
    assert "did not finish" in merge.problems([unfinished, slower], force=False)[0]
    assert merge.problems([unfinished, slower], force=True) == []
    # Two shards started in the same second: the same run id, but not the same run.
    twin = dataclasses.replace(slower, run_id="r1", settings=first.settings)
    assert merge.problems([first, twin]) == []


def test_primary_keeps_each_variant_from_the_earliest_engine_that_has_it(recorded):
    names = [v.name for v in recorded.variants if v.image][:2]
    a = _part(recorded, "r1", names[:1], "a", server_version="first")
    b = _part(recorded, "r2", names, "b", server_version="second")
    merged = merge.merge([a, b], run_id="m", created_utc=recorded.created_utc)
    primary = merged.primary()
    assert [(v.name, v.engine_name) for v in primary.variants] == [(names[0], "a"),
                                                                    (names[1], "b")]
    c = _part(recorded, "r3", names[:1], "a", server_version="later")
    c = dataclasses.replace(c, variants=[])
    again = merge.merge([a, b, c], run_id="m2", created_utc=recorded.created_utc)
    assert again.engines["a"].server_version == "first"
