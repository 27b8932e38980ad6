"""The typed model, schema version 2, the migration of version-1 runs and the published schema.

Pure tests: no engine. The two version-1 runs are the recorded fixture (`fixtures/run`) and a
real run of the harness before the model existed (`fixtures/v1_run`, four variants on Docker
26 with the containerd store, its history beside it); `*-expected-v1/` hold the table.md,
results.csv and build_times.csv that version of the harness rendered from them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from harness import migrations, model, store
from harness.cli import app
from harness.errors import HarnessError

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = Path(__file__).parent.parent / "docs" / "schema" / "results.schema.json"
V1_RUNS = {"run": FIXTURES / "run", "v1_run": FIXTURES / "v1_run" / "20261206T225328Z"}


def _v1(name: str) -> dict:
    return json.loads((V1_RUNS[name] / "results.json").read_text())


def test_the_published_schema_is_the_models():
    assert json.loads(SCHEMA.read_text()) == model.results_schema(), (
        "docs/schema/results.schema.json is stale: `make schema` rewrites it")


@pytest.mark.parametrize("name", sorted(V1_RUNS))
def test_a_version_1_run_loads_as_version_2(name):
    raw = _v1(name)
    assert raw["schema_version"] == 1
    run = store.load_run(V1_RUNS[name])
    assert run.schema_version == 2
    assert [v.name for v in run.variants] == [v["name"] for v in raw["variants"]]
    for v, old in zip(run.variants, raw["variants"]):
        assert v.status == old["status"]
        if old.get("image"):
            assert v.image.size_bytes == old["image"]["size_bytes"]
            assert v.image.layer_count == old["image"]["layer_count"]
    jsonschema.validate(run.to_json(), json.loads(SCHEMA.read_text()))


def test_the_real_version_1_run_keeps_every_measurement():
    run = store.load_run(V1_RUNS["v1_run"])
    alpine = run.variant("multistage-alpine")
    assert alpine.build.scenarios["cold"].samples_seconds
    assert alpine.contents.layers[0].diff_id.startswith("sha256:")
    assert alpine.attribution.split.base_bytes > 0
    assert alpine.registry.compressed_bytes == alpine.compressed_size_bytes > 0
    assert alpine.runtime.status == "ok"
    assert run.bases["node:20-alpine"].standin
    assert run.engine.store.startswith("containerd")


def test_a_round_trip_changes_nothing():
    run = store.load_run(V1_RUNS["v1_run"])
    assert model.Run.from_json(run.to_json()) == run


def test_the_legacy_compressed_key_becomes_the_images():
    raw = _v1("run")
    raw["variants"][0].pop("registry", None)
    raw["variants"][0]["image"].pop("compressed_size_bytes", None)
    raw["variants"][0]["compressed"] = {"registry_bytes": 1234}
    run = model.Run.from_json(migrations.migrate(raw))
    assert run.variants[0].image.compressed_size_bytes == 1234
    assert run.variants[0].compressed_size_bytes == 1234


@pytest.mark.parametrize("name", sorted(V1_RUNS))
def test_a_version_1_run_renders_the_same_table(tmp_path, name):
    """`harness report` on a version-1 run writes the CSVs it wrote before, and the report it
    wrote as table.md (report.md now, under the verdict; table.md is its first table)."""
    run_dir = tmp_path / "run"
    shutil.copytree(V1_RUNS[name], run_dir)
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    expected = FIXTURES / f"{name}-expected-v1"
    for file in ("results.csv", "build_times.csv"):
        assert (run_dir / file).read_text() == (expected / file).read_text(), file
    before = (expected / "table.md").read_text()
    assert (run_dir / "report.md").read_text().endswith("## Sizes\n\n" + before)
    table = (run_dir / "table.md").read_text().splitlines()
    assert before.startswith("\n".join(table[:-1])) and before.endswith(table[-1] + "\n")


def test_a_wrong_type_is_one_line_naming_the_field(tmp_path):
    raw = _v1("run")
    raw["variants"][0]["image"]["size_bytes"] = "big"
    (tmp_path / "results.json").write_text(json.dumps(raw))
    with pytest.raises(HarnessError) as caught:
        store.load_run(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "variants.0.image.size_bytes" in message


def test_an_unknown_version_is_refused(tmp_path):
    raw = _v1("run")
    raw["schema_version"] = 99
    (tmp_path / "results.json").write_text(json.dumps(raw))
    with pytest.raises(HarnessError, match="schema version 99"):
        store.load_run(tmp_path)


def test_a_writer_with_a_misspelt_key_fails_at_save(tmp_path):
    record = store.load(V1_RUNS["run"])
    record["variants"][0]["imgae"] = {}
    with pytest.raises(HarnessError, match="imgae"):
        store.save(tmp_path, record)
    assert not (tmp_path / "results.json").exists()


def test_the_model_is_frozen():
    run = store.load_run(V1_RUNS["run"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.variants[0].status = "failed"  # type: ignore[misc]


def test_the_documented_pandas_columns_exist(tmp_path, monkeypatch):
    """docs/results-format.md's snippet runs on a real run, and every column it names exists."""
    import re

    doc = (Path(__file__).parent.parent / "docs" / "results-format.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    run_dir = tmp_path / "results" / "latest"
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(store.load(V1_RUNS["v1_run"])))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102  (our own documentation)
    table = scope["table"]
    assert list(table["name"]) == ["multistage-alpine", "multistage-distroless", "broken", "mine"]
    assert table["image.size_bytes"].notna().sum() == 3  # "broken" failed to build
    documented = re.findall(r"^\| `([a-z_.]+)`", doc, re.M)
    columns = set(scope["df"].columns)
    missing = [c for c in documented if c not in columns and not c.startswith("extra_builds")]
    assert not missing, missing


def test_early_version_1_shapes_are_read():
    """Two shapes the old readers tolerated: the split under `layers.attribution` and a
    scenario stored as a bare list of seconds."""
    raw = _v1("run")
    v = raw["variants"][0]
    v.pop("attribution", None)
    v["layers"] = {"attribution": {"base_bytes": 10, "dependencies_bytes": 20}}
    v["build"]["scenarios"] = {"warm": [5.0, 5.1]}
    run = model.Run.from_json(migrations.migrate(raw))
    assert run.variants[0].attribution.split.dependencies_bytes == 20
    assert run.variants[0].build.scenarios["warm"].samples_seconds == [5.0, 5.1]


def test_harness_report_on_a_wrong_typed_results_json_says_one_line(tmp_path):
    raw = _v1("run")
    raw["variants"][0]["image"]["layer_count"] = "nine"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code != 0 and result.exception is None or isinstance(
        result.exception, SystemExit)
    assert "variants.0.image.layer_count" in result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.output
