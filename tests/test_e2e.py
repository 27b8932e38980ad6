"""End to end: real variants of the sample app, through the CLI, on stand-in or real bases."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, leftovers

from harness.analysis import sizes
from harness.engine import private as private_engine

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SIXTH = """\
# A user's own variant, dropped in without a manifest entry.
FROM node:20-alpine AS build
WORKDIR /app
COPY package*.json ./
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev

FROM gcr.io/distroless/nodejs20-debian12
WORKDIR /app
COPY --from=build /app/dist ./dist
COPY --from=build /app/node_modules ./node_modules
CMD ["dist/index.js"]
"""
BROKEN = """\
# Dropped in too, and broken: its build script does not exist.
FROM node:20-alpine
WORKDIR /app
COPY package.json ./
RUN npm run no-such-script
"""


def harness(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, **kw)


def _digests(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_real_variants_a_dropped_in_sixth_and_a_broken_one(docker_client, tmp_path, standins_built):
    vdir = tmp_path / "variants"
    shutil.copytree(ROOT / "variants", vdir)
    (vdir / "variants.toml").write_text((vdir / "variants.toml").read_text().replace(
        'context = "../sample_app"', f'context = "{ROOT / "sample_app"}"'))
    (vdir / "mine.Dockerfile").write_text(SIXTH)
    (vdir / "broken.Dockerfile").write_text(BROKEN)
    before = _digests(vdir)
    app_before = _digests(ROOT / "sample_app")

    listed = harness("list", "--variants-dir", str(vdir))
    assert listed.returncode == 0, listed.stderr
    assert "mine (discovered)" in listed.stdout and "three-stage" in listed.stdout

    out = tmp_path / "results"
    proc = harness("run", "multistage-alpine", "multistage-distroless", "mine", "broken",
                   "--repeat", "1", "--scenario", "cold", "--variants-dir", str(vdir), "--out", str(out))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # one variant failed
    assert "Traceback" not in proc.stderr
    run_dir = out / "latest"
    record = json.loads((run_dir / "results.json").read_text())
    assert record["finished_utc"]  # complete, not a partial record
    # The manifest's variants first, then the dropped-in files by name.
    assert [v["name"] for v in record["variants"]] == ["multistage-alpine", "multistage-distroless",
                                                        "broken", "mine"]
    broken = record["variants"].pop(2)
    assert broken["status"] == "failed" and "\n" not in broken["error"], broken
    assert "no-such-script" in broken["error"] + " ".join(broken.get("log_tail") or [])
    assert "broken: failed" in proc.stdout + proc.stderr
    for v in record["variants"]:
        assert v["status"] == "ok", v
        attrs = docker_client.api.inspect_image(v["image"]["id"])
        # The final size is the layers' file bytes on every engine; the engine's .Size is kept.
        assert v["image"]["inspect_size_bytes"] == attrs["Size"]
        assert v["image"]["size_bytes"] == v["contents"]["layers_size_bytes"] and v["image"]["size_basis"] == "layers"
        if sizes.store_kind(record["engine"]) == "graph":
            assert v["image"]["size_bytes"] == attrs["Size"]
        assert v["image"]["layer_count"] == len(attrs["RootFS"]["Layers"])
        assert len(v["build"]["samples_seconds"]) == 1
        for f in v["froms"]:  # every FROM says what it asked for and what it got
            assert f["kind"] == "stage" or f["image_id"], f
        # It serves: started with its own CMD, port on 127.0.0.1, and it answered.
        assert v["runtime"]["status"] == "ok", v["runtime"]
        assert 0 < v["runtime"]["seconds_to_healthy"] < 30
        assert json.loads(v["runtime"]["root_body"])["endpoints"]
        # A real registry stored it: exact compressed size, push and pull timed, image back.
        reg = v["registry"]
        assert "error" not in reg, reg
        assert reg["compressed_bytes"] == sum(reg["layer_sizes"]) > 0
        assert len(reg["layer_sizes"]) == v["image"]["layer_count"]
        assert reg["push_seconds"] > 0 and reg["pull_seconds"] > 0
        assert abs(reg["estimate_error_pct"]) < 2
        assert v["image"]["compressed_size_bytes"] == reg["compressed_bytes"]
        assert v["image"]["tag"] in attrs["RepoTags"]  # restored after the pull, same id
        if private_engine.missing() is None:  # root with dockerd: the pull of an empty host
            assert reg["cold_pull_layers_present"] == 0 and reg["cold_pull_seconds"] > 0, reg
    same = record["runtime_comparison"]
    assert sorted(same["same"]) == sorted(v["name"] for v in record["variants"]), same
    assert "serve the same GET /" in (run_dir / "report.md").read_text()
    labelled = docker_client.api.containers(all=True, filters={"label": f"io.harness.run={record['run_id']}"})
    assert labelled == []  # the runtime checks' containers are gone
    distroless = record["variants"][1]
    final = [f for f in distroless["froms"] if f["final"]][0]
    assert final["requested"] == "gcr.io/distroless/nodejs20-debian12"
    table = (run_dir / "table.md").read_text()
    summary = table.split("\n\n")[0]  # the size table; the contents table follows it
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "Approach" not in line]
    assert len(rows) == 4 and "| mine " in rows[3]
    assert "| broken " in rows[2] and "**failed**" in rows[2]
    assert "What ships in each image" in (run_dir / "report.md").read_text()  # layers read
    for v in record["variants"]:
        assert v["contents"]["files_bytes"] > 0 and "error" not in v["contents"]
    if final["standin"]:
        assert "distroless/nodejs20-debian12*" in table and "(*) `gcr.io/distroless" in table
    assert f"wrote {run_dir.resolve()}" in proc.stdout or "wrote" in proc.stdout

    # the variant files and the app are untouched
    assert _digests(vdir) == before
    assert _digests(ROOT / "sample_app") == app_before

    # the user's own variant is not the bench's: its image goes, by id
    docker_client.api.remove_image(record["variants"][2]["image"]["id"], force=True)

    # the report regenerates the same table with no engine at all
    (run_dir / "table.md").unlink()
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": "/usr/bin:/bin"}
    regen = harness("report", str(run_dir), env=env)
    assert regen.returncode == 0, regen.stderr
    assert (run_dir / "table.md").read_text() == table


def test_three_stage_source_change_rebuilds_less_than_cold(docker_client, tmp_path, standins_built):
    """The article's claim for the deps stage, measured: an app edit skips npm ci."""
    from harness.bench import runner
    from harness.bench.variants import load_variants, select

    app_before = _digests(ROOT / "sample_app")
    variants = select(load_variants(ROOT / "variants"), ["three-stage"])
    opts = runner.RunOptions(repeat=1, out=tmp_path / "out", analyze=False,
                             scenarios=("cold", "source-change"))
    _, record_run, code = runner.execute(docker_client, variants, opts)
    record = record_run.to_json()  # as results.json stores it
    entry = record["variants"][0]
    assert code == 0, entry.get("error")
    cold, source = entry["build"]["scenarios"]["cold"], entry["build"]["scenarios"]["source-change"]
    assert source["steps_rebuilt"] < cold["steps_rebuilt"] == cold["steps_total"]
    assert source["changed"].startswith("src/index.ts")
    assert source["samples_seconds"][0] < cold["samples_seconds"][0]
    assert _digests(ROOT / "sample_app") == app_before
    assert leftovers(docker_client, record["run_id"], [entry["image"]["id"]]) == []
