"""The loopback registry as the registry image's container (where the image can be had), and
Debian's binary when it cannot. Every pull here goes to 127.0.0.1: the "registry image" is
built for the test from Debian's docker-registry binary, shaped like the official image
(port 5000, its config under /etc/docker/registry)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import build_tiny, require
from docker.errors import ImageNotFound, NotFound

from harness.engine import registry

pytestmark = pytest.mark.engine

CONFIG = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
"""
REGISTRY_DOCKERFILE = """\
FROM scratch
COPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6
COPY ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
COPY registry /bin/registry
COPY config.yml /etc/docker/registry/config.yml
EXPOSE 5000
ENTRYPOINT ["/bin/registry", "serve", "/etc/docker/registry/config.yml"]
"""
LABEL = "io.harness.run"


def _registry_image(client, tmp_path: Path, janitor: list[str]) -> str:
    binary = shutil.which(registry.BINARY)
    require(binary is not None, "needs Debian's docker-registry (apt-get install docker-registry)")
    ctx = tmp_path / "registry-image"
    ctx.mkdir()
    for name, source in (("registry", binary), ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
                         ("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2")):
        shutil.copy(os.path.realpath(source), ctx / name)
    (ctx / "config.yml").write_text(CONFIG)
    (ctx / "Dockerfile").write_text(REGISTRY_DOCKERFILE)
    image, _ = client.images.build(path=str(ctx), tag="harness-test/registry:2-local", rm=True,
                                   labels={"io.harness.test": "registry"})
    janitor.append(image.id)
    return "harness-test/registry:2-local"


def _gone(client, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except NotFound:
        return True
    return False


def test_the_registry_runs_as_the_images_container_and_goes_by_its_id(
        docker_client, tmp_path, image_janitor):
    image = _registry_image(docker_client, tmp_path, image_janitor)
    tiny = build_tiny(docker_client, tmp_path, "FROM scratch\nCOPY f.txt /\n",
                      files={"f.txt": os.urandom(16).hex()})
    image_janitor.append(tiny)
    reg = registry.start(docker_client, image=image, labels={LABEL: "test-registry"})
    try:
        assert reg.process is None and reg.container is not None
        assert reg.server == f"{image} container" and reg.pulled_image is None
        assert reg.container.labels.get(LABEL) == "test-registry"  # `harness clean` finds it
        seconds = registry.push(docker_client, tiny, reg, "harness-test/tiny", "bench")
        sizes = registry.layer_sizes(reg, "harness-test/tiny", "bench")
        assert seconds > 0 and len(sizes) == 1 and sizes[0] > 0
        container_id = reg.container.id
    finally:
        registry.untag(docker_client, reg, "harness-test/tiny", "bench")
        registry.stop(reg)
    assert _gone(docker_client, container_id)
    docker_client.images.get(image)  # present before: kept


def test_a_registry_image_pulled_for_the_run_is_untagged_again(docker_client, tmp_path,
                                                                image_janitor):
    image = _registry_image(docker_client, tmp_path, image_janitor)
    with registry.running() as source:  # Debian's binary: where the image is pulled from
        ref = f"{source.host}/registry:2"
        registry.push(docker_client, image, source, "registry", "2")  # tags it as `ref`
        docker_client.images.remove(ref)  # so that start() has to pull it
        reg = registry.start(docker_client, image=ref)
        try:
            assert reg.container is not None and reg.pulled_image == ref
        finally:
            container_id = reg.container.id
            registry.stop(reg)
        assert _gone(docker_client, container_id)
        with pytest.raises(ImageNotFound):
            docker_client.images.get(ref)


def test_an_image_that_cannot_be_had_falls_back_to_debians_binary(docker_client):
    require(shutil.which(registry.BINARY) is not None, "needs Debian's docker-registry")
    # Port 1 of the loopback refuses at once: the pull fails without leaving the machine.
    reg = registry.start(docker_client, image="127.0.0.1:1/registry:2")
    try:
        assert reg.container is None and reg.process is not None
        assert reg.server == "Debian's docker-registry"
    finally:
        registry.stop(reg)
    with pytest.raises(registry.HarnessError, match="cannot be pulled.*no `docker-registry`"):
        registry.start(docker_client, image="127.0.0.1:1/registry:2", binary="/nonexistent")
