"""Ctrl-C and SIGTERM mid-build: partial results kept, nothing left on the engine."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, require

from harness.engine import private as private_engine

pytestmark = pytest.mark.engine
BUSYBOX = Path("/bin/busybox")


def _state(client) -> tuple[set[str], set[str]]:
    dangling = set(client.api.images(filters={"dangling": True}, quiet=True))
    containers = {c["Id"] for c in client.api.containers(all=True)}
    return dangling, containers


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_build_keeps_results_and_cleans_up(docker_client, tmp_path, sig, code):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    vdir, ctx = tmp_path / "v", tmp_path / "c"
    vdir.mkdir()
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    (vdir / "a-quick.Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    (vdir / "b-slow.Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "120"]\n')
    before = _state(docker_client)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--repeat", "1", "--no-analyze",
         "--scenario", "cold", "--no-runtime", "--no-registry",
         "--variants-dir", str(vdir), "--context", str(ctx), "--out", str(tmp_path / "out")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the slow variant's build is under way
        runs = [p for p in (tmp_path / "out").glob("2*") if (p / "results.json").exists()]
        if runs:
            run_dir = runs[0]
            names = [v["name"] for v in json.loads((run_dir / "results.json").read_text())["variants"]]
            if "b-slow" in names:
                break
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == code, err[-2000:]
    assert "partial results saved" in err
    record = json.loads((run_dir / "results.json").read_text())
    status = {v["name"]: (v["status"], v.get("error")) for v in record["variants"]}
    assert status["a-quick"][0] == "ok"  # measured before the signal: kept
    assert status["b-slow"] == ("failed", "interrupted")
    quick_image = record["variants"][0]["image"]["id"]
    try:
        dangling, containers = _state(docker_client)
        assert dangling <= before[0], "the interrupted build left images behind"
        assert containers <= before[1], "the interrupted build left a container behind"
    finally:
        docker_client.api.remove_image(quick_image, force=True)


def _registries() -> set[int]:
    """Pids of docker-registry processes (to compare before and after)."""
    return set(private_engine.find(("docker-registry",)))


def _private_engines() -> set[int]:
    """Pids of the dockerd the cold pull starts (its data root is under an `hcp-` directory)."""
    return set(private_engine.find(("dockerd",), "/hcp-"))


def test_sigint_during_the_runtime_check_leaves_no_container_or_registry(docker_client, tmp_path):
    """Ctrl-C after a push (the registry is up) and during a runtime check (a container
    is up): both are gone afterwards, and the variant measured first is kept."""
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    require(shutil.which("docker-registry") is not None, "needs Debian's docker-registry")
    vdir, ctx = tmp_path / "v", tmp_path / "c"
    vdir.mkdir()
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    # Both serve nothing: a's check fails at once (exits), b's keeps polling until Ctrl-C.
    (vdir / "a-exits.Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n')
    (vdir / "b-hangs.Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "sleep", "300"]\n')
    registries_before, engines_before = _registries(), _private_engines()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "--repeat", "1", "--no-analyze",
         "--scenario", "cold", "--variants-dir", str(vdir), "--context", str(ctx),
         "--out", str(tmp_path / "out")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir, run_id = None, None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait for b's runtime container
        runs = [p for p in (tmp_path / "out").glob("2*") if (p / "results.json").exists()]
        if runs:
            run_dir = runs[0]
            run_id = json.loads((run_dir / "results.json").read_text())["run_id"]
            up = docker_client.api.containers(filters={"label": [f"io.harness.run={run_id}",
                                                                 "io.harness.variant=b-hangs"]})
            if up:
                break
        time.sleep(0.2)
    assert run_id, "the run never started b's runtime check"
    assert _registries() - registries_before, "the registry should be up after a's push"
    cold = private_engine.missing() is None  # root with dockerd: a's cold pull started one
    if cold:
        assert _private_engines() - engines_before, "the cold pull's engine should be up"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    record = json.loads((run_dir / "results.json").read_text())
    try:
        assert proc.returncode == 130, err[-2000:]
        status = {v["name"]: v for v in record["variants"]}
        assert status["a-exits"]["status"] == "failed-at-runtime"
        assert status["a-exits"]["registry"]["compressed_bytes"] > 0
        assert status["b-hangs"]["status"] == "failed" and status["b-hangs"]["error"] == "interrupted"
        left = docker_client.api.containers(all=True, filters={"label": f"io.harness.run={run_id}"})
        assert left == [], "the runtime check's container is still there"
        assert not (_registries() - registries_before), "the loopback registry is still running"
        assert not (_private_engines() - engines_before), "the cold pull's dockerd is still running"
        if cold:
            assert status["a-exits"]["registry"]["cold_pull_layers_present"] == 0
    finally:
        for v in record["variants"]:
            if v.get("image"):
                docker_client.api.remove_image(v["image"]["id"], force=True)
