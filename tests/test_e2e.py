"""End to end: real variants of the sample app, through the CLI, on stand-in or real bases."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

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


def harness(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, cwd=ROOT, **kw)


def _digests(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_real_variants_and_a_dropped_in_sixth(docker_client, tmp_path, standins_built):
    vdir = tmp_path / "variants"
    shutil.copytree(ROOT / "variants", vdir)
    (vdir / "variants.toml").write_text((vdir / "variants.toml").read_text().replace(
        'context = "../sample_app"', f'context = "{ROOT / "sample_app"}"'))
    (vdir / "mine.Dockerfile").write_text(SIXTH)
    before = _digests(vdir)
    app_before = _digests(ROOT / "sample_app")

    listed = harness("list", "--variants-dir", str(vdir))
    assert listed.returncode == 0, listed.stderr
    assert "mine (discovered)" in listed.stdout and "three-stage" in listed.stdout

    out = tmp_path / "results"
    proc = harness("run", "multistage-alpine", "multistage-distroless", "mine", "--repeat", "1",
                   "--variants-dir", str(vdir), "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = out / "latest"
    record = json.loads((run_dir / "results.json").read_text())
    assert [v["name"] for v in record["variants"]] == ["multistage-alpine", "multistage-distroless", "mine"]
    for v in record["variants"]:
        assert v["status"] == "ok", v
        attrs = docker_client.api.inspect_image(v["image"]["id"])
        assert v["image"]["size_bytes"] == attrs["Size"]
        assert v["image"]["layer_count"] == len(attrs["RootFS"]["Layers"])
        assert len(v["build"]["samples_seconds"]) == 1
        for f in v["froms"]:  # every FROM says what it asked for and what it got
            assert f["kind"] == "stage" or f["image_id"], f
    distroless = record["variants"][1]
    final = [f for f in distroless["froms"] if f["final"]][0]
    assert final["requested"] == "gcr.io/distroless/nodejs20-debian12"
    table = (run_dir / "table.md").read_text()
    summary = table.split("\n\n")[0]  # the size table; the contents table follows it
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "Approach" not in line]
    assert len(rows) == 3 and "| mine " in rows[2]
    assert "What ships in each image" in table  # the layer analysis ran for every variant
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
