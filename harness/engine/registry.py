"""A throwaway registry on the loopback: what a push stores, and how long push and pull take.

The registry is the distribution registry's own image (`registry:2`, or the image named by
$HARNESS_REGISTRY_IMAGE, e.g. a mirror's) run as a container on the engine measured, its
port published on 127.0.0.1, wherever that image is present or can be pulled. Otherwise it is
the `docker-registry` binary of Debian's package of that name (the same 2.8 line), run with a
config of ours in a temporary directory (never the system service). Either is removed by
`stop`: the container by its id (and the image, when this run pulled it), the process by its
pid. Docker treats 127.0.0.0/8 as an insecure registry by default, so plain HTTP works
without set-up; Podman does not, and is asked for plain HTTP with its API's `tlsVerify=false`.

A push from Docker's containerd image store stores an OCI manifest (or an index of them);
`manifest` accepts every kind and follows an index to the image's own manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from requests.exceptions import RequestException

from harness.engine.client import first_line
from harness.engine.product import PODMAN, product_of
from harness.errors import HarnessError

BINARY = "docker-registry"
IMAGE = "registry:2"  # the distribution registry; $HARNESS_REGISTRY_IMAGE names another
IMAGE_ENV = "HARNESS_REGISTRY_IMAGE"
IMAGE_PORT = "5000/tcp"  # where the image's default config listens
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEXES = ("application/vnd.oci.image.index.v1+json",
           "application/vnd.docker.distribution.manifest.list.v2+json")
CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}/data
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Registry:
    port: int
    server: str  # what serves, in words: "registry:2 container", "Debian's docker-registry 2.8"
    process: subprocess.Popen | None = None  # the binary's process, stopped by its pid
    root: Path | None = None  # the binary's config, log and storage; removed by stop()
    container: object | None = None  # the image's container, removed by its id
    pulled_image: str | None = None  # the reference this run pulled (untagged by stop)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def repository(self, name: str) -> str:
        return f"{self.host}/{name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(client: docker.DockerClient | None = None, *, image: str | None = None,
          binary: str | None = None, labels: dict | None = None,
          timeout: float = 20.0) -> Registry:
    """Starts a registry on a free loopback port; returns once it answers /v2/. The image's
    container on `client`'s engine first, Debian's binary when that cannot be had."""
    reasons = []
    if client is not None:
        try:
            return _start_container(client, image or os.environ.get(IMAGE_ENV) or IMAGE,
                                    labels or {}, timeout)
        except HarnessError as exc:
            reasons.append(str(exc))
    try:
        return _start_binary(binary, timeout)
    except HarnessError as exc:
        reasons.append(str(exc))
    raise HarnessError("no loopback registry: " + "; ".join(reasons))


def _wait(registry: Registry, timeout: float, alive) -> str | None:
    """None once the registry answers /v2/; else why not (it stopped, or took too long)."""
    deadline = time.monotonic() + timeout
    while not _answers(f"{registry.url}/v2/"):
        if not alive():
            return "it stopped"
        if time.monotonic() > deadline:
            return f"no answer within {timeout:.0f} s"
        time.sleep(0.05)
    return None


def _image_here(client: docker.DockerClient, image: str) -> tuple[str, bool]:
    """The registry image's id, pulled when missing: (id, pulled by this run)."""
    try:
        return client.images.get(image).id, False
    except ImageNotFound:
        pass
    try:
        return client.images.pull(image).id, True
    except (APIError, DockerException, RequestException) as exc:
        raise HarnessError(f"the {image} image is not here and cannot be pulled "
                           f"({first_line(exc, 160)})") from None


def _start_container(client: docker.DockerClient, image: str, labels: dict,
                     timeout: float) -> Registry:
    image_id, pulled = _image_here(client, image)
    port = _free_port()
    try:
        container = client.containers.run(image_id, detach=True, labels=labels,
                                           ports={IMAGE_PORT: ("127.0.0.1", port)})
    except (APIError, DockerException, RequestException) as exc:
        if pulled:
            _untag(client, image)
        raise HarnessError(f"the {image} container did not start: {first_line(exc)}") from None
    registry = Registry(port, f"{image} container", container=container,
                        pulled_image=image if pulled else None)

    def alive() -> bool:
        try:
            container.reload()
            return container.status in ("created", "running")
        except (APIError, RequestException):
            return False
    why = _wait(registry, timeout, alive)
    if why is not None:
        try:
            log = container.logs(tail=5).decode(errors="replace").strip()
        except (APIError, RequestException):
            log = ""
        stop(registry)
        raise HarnessError(f"the {image} container on {registry.host} did not answer: {why}"
                           + (f" ({log[-300:]})" if log else ""))
    return registry


def _start_binary(binary: str | None, timeout: float) -> Registry:
    binary = binary or shutil.which(BINARY)
    if not binary or not os.access(binary, os.X_OK):
        raise HarnessError(f"no `{BINARY}` binary: `apt-get install docker-registry` provides one")
    root = Path(tempfile.mkdtemp(prefix="harness-registry-"))
    port = _free_port()
    config = root / "config.yml"
    config.write_text(CONFIG.format(root=root, port=port))
    with open(root / "registry.log", "wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    registry = Registry(port, f"Debian's {BINARY}", process=process, root=root)
    why = _wait(registry, timeout, lambda: process.poll() is None)
    if why is not None:
        log_text = (root / "registry.log").read_text(errors="replace")[-500:]
        stop(registry)
        raise HarnessError(f"the registry did not start on {registry.host}: {why}: {log_text}")
    return registry


def _untag(client: docker.DockerClient, reference: str) -> None:
    """Removes the reference this run pulled: the image goes with it unless another tag
    (the user's own) still names it."""
    try:
        client.images.remove(reference)
    except (APIError, RequestException):
        pass


def stop(registry: Registry) -> None:
    """Stops this registry: its container (by id, with its storage) and the image when this
    run pulled it, or its own process (by its pid) and its directory."""
    if registry.container is not None:
        client = registry.container.client
        try:
            registry.container.remove(force=True, v=True)
        except (APIError, RequestException):
            pass
        if registry.pulled_image:
            _untag(client, registry.pulled_image)
        registry.container = None
    if registry.process is not None and registry.process.poll() is None:
        registry.process.terminate()
        try:
            registry.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            registry.process.kill()
            registry.process.wait()
    if registry.root is not None:
        shutil.rmtree(registry.root, ignore_errors=True)


@contextmanager
def running(client: docker.DockerClient | None = None, **kwargs) -> Iterator[Registry]:
    registry = start(client, **kwargs)
    try:
        yield registry
    finally:
        stop(registry)


def _consume(stream: Iterator[dict], what: str) -> list[dict]:
    messages = []
    for message in stream:
        if message.get("error"):
            raise HarnessError(f"{what} failed: {message['error']}")
        messages.append(message)
    return messages


def push(client: docker.DockerClient, image_id: str, registry: Registry, name: str,
         tag: str) -> float:
    """Tags the image into the registry and pushes it; returns the push's wall seconds.

    The tag stays: remove it with `untag`."""
    repository = registry.repository(name)
    client.api.tag(image_id, repository, tag)
    start_time = time.perf_counter()
    stream = (_plain_http(client, "push", repository, tag) if is_podman(client)
              else client.api.push(repository, tag=tag, stream=True, decode=True))
    _consume(stream, f"push of {repository}:{tag}")
    return time.perf_counter() - start_time


def is_podman(client: docker.DockerClient) -> bool:
    """Whether the engine is Podman's Docker-compatible service."""
    return product_of(client.version()) == PODMAN


def _plain_http(client: docker.DockerClient, action: str, repository: str, tag: str) -> Iterator[dict]:
    """Podman's push or pull over plain HTTP: its compatible API takes `tlsVerify`, which the
    SDK does not send; asked through the SDK's session, the stream read as the SDK reads it."""
    api = client.api
    path = f"images/{repository}/push"
    params = {"tag": tag, "tlsVerify": "false"}
    if action == "pull":
        # The compatible pull (images/create) ignores tlsVerify in Podman 4; its own
        # endpoint honours it, and streams {"stream"}, {"error"} and {"images"} lines.
        path, params = "libpod/images/pull", {"reference": f"{repository}:{tag}",
                                               "tlsVerify": "false"}
    response = api.post(f"{api.base_url}/v{api.api_version}/{path}", params=params, stream=True,
                        timeout=None)
    response.raise_for_status()
    for line in response.iter_lines():
        if line.strip():
            yield json.loads(line)


@dataclass
class Pulled:
    seconds: float
    layers_present: int  # layers the engine already had ("Already exists"): not downloaded


def pull(client: docker.DockerClient, registry: Registry, name: str, tag: str) -> Pulled:
    """Pulls from the registry; returns wall seconds. Layers already present are not
    downloaded again, so remove the image first for the time of a cold pull."""
    repository = registry.repository(name)
    start_time = time.perf_counter()
    stream = (_plain_http(client, "pull", repository, tag) if is_podman(client)
              else client.api.pull(repository, tag=tag, stream=True, decode=True))
    messages = _consume(stream, f"pull of {repository}:{tag}")
    seconds = time.perf_counter() - start_time
    present = {m.get("id") for m in messages if m.get("status") == "Already exists"}
    return Pulled(seconds, len(present))


def untag(client: docker.DockerClient, registry: Registry, name: str, tag: str) -> None:
    """Removes the tag `push` made; like `docker rmi`, an image left without any tag goes too."""
    client.api.remove_image(f"{registry.repository(name)}:{tag}")


def manifest(registry: Registry, name: str, tag: str) -> dict:
    """The image manifest the registry stores for name:tag (Docker's schema 2 or OCI's); of an
    index, the manifest of the first linux image it lists (attestations are not images)."""
    found = _get_manifest(registry, name, tag)
    if found.get("mediaType") in INDEXES or "manifests" in found:
        images = [m for m in found.get("manifests") or []
                  if (m.get("platform") or {}).get("os", "linux") != "unknown"]
        if not images:
            raise HarnessError(f"{name}:{tag}: the registry's index lists no image")
        found = _get_manifest(registry, name, images[0]["digest"])
    return found


def _get_manifest(registry: Registry, name: str, reference: str) -> dict:
    accept = ", ".join((MANIFEST_V2, OCI_MANIFEST, *INDEXES))
    request = urllib.request.Request(f"{registry.url}/v2/{name}/manifests/{reference}",
                                     headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def layer_sizes(registry: Registry, name: str, tag: str) -> list[int]:
    """The compressed size of each layer as stored, in stack order."""
    return [int(layer["size"]) for layer in manifest(registry, name, tag)["layers"]]
