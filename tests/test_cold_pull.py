"""The cold pull: an image pushed to a loopback registry, pulled into an empty engine of our
own (a private dockerd), which is gone, with everything it started, once the run closes it."""

from __future__ import annotations

import os
import subprocess

import pytest
from conftest import build_tiny, require

from harness.bench import runner
from harness.engine import private as private_engine
from harness.engine import registry

pytestmark = pytest.mark.engine


def test_cold_pull_downloads_every_layer_and_leaves_nothing(docker_client, tmp_path, image_janitor):
    reason = private_engine.missing()
    require(reason is None, reason or "")
    # Two layers of different content, so a pull that found any present would say so.
    image_id = build_tiny(docker_client, tmp_path, "FROM scratch\nCOPY busybox /bin/busybox\n"
                          "COPY f.txt /\n", busybox=True, files={"f.txt": os.urandom(8).hex()})
    image_janitor.append(image_id)
    services = runner.Services(runner.RunOptions(registry=True, cold_pull=True))
    reg = services.registry()
    assert reg is not None, services.registry_error
    try:
        registry.push(docker_client, image_id, reg, "harness-test/cold", "bench")
        first = runner._cold_pull(services, reg, "harness-test/cold", "bench")
        again = runner._cold_pull(services, reg, "harness-test/cold", "bench")
        cold = services.cold_engine()
        assert cold is not None
        assert cold.api.images(all=True) == []  # removed after each pull: the next is cold too
        root = services.cold_root
    finally:
        registry.untag(docker_client, reg, "harness-test/cold", "bench")
        services.close()
    for pulled in (first, again):
        assert "cold_pull_error" not in pulled, pulled
        assert pulled["cold_pull_layers_present"] == 0
        assert 0 < pulled["cold_pull_seconds"] < 60
    # Nothing of the private engine is left running or on disk.
    assert root is not None and services.cold_root is None
    assert not private_engine.find(containing=str(root))
    assert not root.exists()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f"hcp{os.getpid() % 100000}:" not in links
