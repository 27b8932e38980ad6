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
