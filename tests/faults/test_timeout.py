"""A build that never finishes: --timeout cancels it, the others are measured."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import ancestors, leftovers, require

from harness.bench import runner
from harness.bench.variants import Variant

pytestmark = pytest.mark.engine
BUSYBOX = Path("/bin/busybox")


def test_timeout_fails_the_hung_build_only(docker_client, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    ctx = tmp_path / "c"
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    quick, hung = tmp_path / "quick.Dockerfile", tmp_path / "hung.Dockerfile"
    quick.write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    hung.write_text('FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "600"]\n')
    variants = [Variant(name="t-hung", label="hung", dockerfile=hung, context=ctx),
                Variant(name="t-quick", label="quick", dockerfile=quick, context=ctx)]
    containers_before = {c["Id"] for c in docker_client.api.containers(all=True)}
    images_before = set(docker_client.api.images(all=True, quiet=True))
    opts = runner.RunOptions(repeat=1, out=tmp_path / "out", bases_mode="present", timeout=3,
                             analyze=False)
    start = time.monotonic()
    _, record_run, code = runner.execute(docker_client, variants, opts)
    record = record_run.to_json()  # as results.json stores it
    elapsed = time.monotonic() - start
    status = {v["name"]: v for v in record["variants"]}
    try:
        assert code == 1
        assert status["t-hung"]["status"] == "failed"
        assert status["t-hung"]["error"] == "build failed: timed out after 3 s (--timeout)"
        assert status["t-quick"]["status"] == "ok"
        assert elapsed < 60  # not the 600 s the RUN would take
        time.sleep(1)
        assert {c["Id"] for c in docker_client.api.containers(all=True)} <= containers_before
        assert leftovers(docker_client, record["run_id"], [status["t-quick"]["image"]["id"]]) == []
        images_after = set(docker_client.api.images(all=True, quiet=True))
        assert images_after <= images_before | ancestors(docker_client, status["t-quick"]["image"]["id"])
    finally:
        docker_client.api.remove_image(status["t-quick"]["image"]["id"], force=True)
