"""Against the real engine, with tiny images built FROM scratch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.analysis import sizes
from harness.bench import runner
from harness.bench.variants import load_variants

pytestmark = pytest.mark.engine


def _write(tmp_path, files: dict[str, str], manifest: str | None = None):
    vdir = tmp_path / "variants"
    ctx = tmp_path / "ctx"
    vdir.mkdir()
    ctx.mkdir()
    (ctx / "payload.bin").write_bytes(b"x" * 123_457)
    (ctx / "small.txt").write_text("hello\n")
    (ctx / "ignored.log").write_text("never sent\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    for name, text in files.items():
        (vdir / name).write_text(text)
    if manifest:
        (vdir / "variants.toml").write_text(manifest)
    return vdir, ctx


def _run(docker_client, tmp_path, vdir, ctx, repeat=2):
    variants = load_variants(vdir, ctx)
    opts = runner.RunOptions(repeat=repeat, out=tmp_path / "results", bases_mode="present")
    run_dir, record_run, code = runner.execute(docker_client, variants, opts)
    record = record_run.to_json()  # as results.json stores it
    return run_dir, record, code


def _cleanup(docker_client, record, janitor):
    for v in record["variants"]:
        if v.get("image"):
            janitor.append(v["image"]["id"])


def test_size_and_layers_equal_image_inspect(docker_client, tmp_path, image_janitor):
    vdir, ctx = _write(tmp_path, {
        "two.Dockerfile": "FROM scratch\nCOPY payload.bin /data/\nCOPY small.txt /data/\nLABEL a=b\n",
        "one.Dockerfile": "FROM scratch AS base\nCOPY small.txt /\nFROM base\nCOPY payload.bin /\n",
    })
    run_dir, record, code = _run(docker_client, tmp_path, vdir, ctx)
    _cleanup(docker_client, record, image_janitor)
    assert code == 0, record["variants"]
    by_name = {v["name"]: v for v in record["variants"]}
    for v in record["variants"]:
        img = v["image"]
        attrs = docker_client.api.inspect_image(img["id"])
        # The engine's own figures are kept as it gives them; the size is the layers' file
        # bytes (harness.analysis.sizes), which is the engine's .Size on a graph-driver store.
        assert img["inspect_size_bytes"] == attrs["Size"] and img["size_basis"] == "layers"
        if sizes.store_kind(record["engine"]) == "graph":
            assert img["size_bytes"] == attrs["Size"]
        assert img["layer_count"] == len(attrs["RootFS"]["Layers"])
        assert len(v["build"]["samples_seconds"]) == 2
        hist = docker_client.api.history(img["id"])
        assert [h["Size"] for h in reversed(hist)] == [h.get("engine_size_bytes", h["size_bytes"])
                                                       for h in img["history"]]
        assert sum(h["size_bytes"] for h in img["history"]) == img["size_bytes"]
    # Independent of the engine: what we wrote is what is stored.
    assert by_name["two"]["image"]["size_bytes"] == 123_457 + 6
    assert by_name["two"]["image"]["layer_count"] == 2
    assert by_name["one"]["image"]["layer_count"] == 2
    # .dockerignore applied: payload, small, .dockerignore and the Dockerfile itself are sent.
    assert by_name["two"]["build"]["context_files"] == 4
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["variants"][0]["status"] == "ok"
    assert saved["schema_version"] == 2 and saved["engine"]["api_version"]


def test_broken_variant_is_reported_and_others_still_run(docker_client, tmp_path, image_janitor):
    vdir, ctx = _write(tmp_path, {
        "a-good.Dockerfile": "FROM scratch\nCOPY small.txt /\n",
        "b-missing-file.Dockerfile": "FROM scratch\nCOPY not-there.txt /\n",
        "c-bad-target.Dockerfile": "FROM scratch AS one\nCOPY small.txt /\n",
        "d-unknown-base.Dockerfile": "FROM harness-test/no-such-image:0\n",
        "e-syntax.Dockerfile": "FROM scratch\nFLY away\n",
    }, manifest='[[variant]]\nname = "c-bad-target"\ndockerfile = "c-bad-target.Dockerfile"\ntarget = "two"\n')
    run_dir, record, code = _run(docker_client, tmp_path, vdir, ctx, repeat=1)
    _cleanup(docker_client, record, image_janitor)
    assert code == 1
    status = {v["name"]: (v["status"], v.get("error") or "") for v in record["variants"]}
    assert status["a-good"][0] == "ok"
    assert status["b-missing-file"][0] == "failed" and "not-there.txt" in status["b-missing-file"][1]
    assert "target stage 'two' not found" in status["c-bad-target"][1]
    err = status["d-unknown-base"][1]
    assert "not present locally" in err and "no stand-in recipe" in err or "not pulled" in err
    assert "unknown instruction" in status["e-syntax"][1].lower()
    for v in record["variants"]:
        assert "\n" not in (v.get("error") or "")


def test_cli_run_and_report_without_engine(docker_client, tmp_path, image_janitor):
    vdir, ctx = _write(tmp_path, {"only.Dockerfile": "FROM scratch\nCOPY small.txt /\n"})
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--repeat", "1",
                           "--scenario", "cold", "--no-runtime", "--no-registry",
                           "--variants-dir", str(vdir), "--context", str(ctx), "--out", str(out),
                           "--bases", "present"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    latest = out / "latest"
    record = json.loads((latest / "results.json").read_text())
    image_janitor.append(record["variants"][0]["image"]["id"])
    table = (latest / "table.md").read_text()
    assert "| only " in table and "SI units" in table
    assert (latest / "sizes.png").stat().st_size > 1000
    # Regenerate with no engine reachable at all.
    env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock", "PATH": "/usr/bin:/bin"}
    (latest / "table.md").unlink()
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(latest)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (latest / "table.md").read_text() == table
