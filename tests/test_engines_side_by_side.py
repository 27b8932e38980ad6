"""The engines of `scripts/engines.sh`, side by side with the default engine.

`make engines` starts four engines, each on a socket, data root and bridge of its own, and
writes each one's DOCKER_HOST URL to $HARNESS_STATE/engines/NAME/host. Here: the default engine
(docker.from_env()) still builds and runs a build step while they run (a second engine started
with `--bridge none` once deleted the first one's docker0), and each of the four answers, is
the engine its name says, and builds, inspects and saves the same two-COPY FROM scratch image
through the Docker SDK. Every image made here is removed again, by id.
"""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import docker
import pytest
from conftest import require
from docker.errors import DockerException, NotFound
from requests.exceptions import RequestException

ENGINES = ("docker20", "docker26", "docker26-containerd", "podman")
STATE = Path(os.environ.get("HARNESS_STATE") or "/var/tmp/harness")
PAYLOAD = random.Random(20261206).randbytes(1_000_000)  # incompressible, the same every run
TWO_COPY = "FROM scratch\nCOPY f /a\nCOPY f /b\n"


def _context(files: dict[str, bytes], dockerfile: str) -> io.BytesIO:
    """A build context as an in-memory tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {**files, "Dockerfile": dockerfile.encode()}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _build(client: docker.DockerClient, files: dict[str, bytes], dockerfile: str) -> str:
    """Build through the SDK (the classic builder); the image id, or the build's error."""
    image_id = None
    log = []
    for chunk in client.api.build(fileobj=_context(files, dockerfile), custom_context=True,
                                  rm=True, forcerm=True, nocache=True, decode=True):
        if "error" in chunk or "errorDetail" in chunk:
            pytest.fail(f"build failed: {chunk.get('error') or chunk.get('errorDetail')}\n"
                        + "".join(log)[-2000:])
        if isinstance(chunk.get("aux"), dict) and chunk["aux"].get("ID"):
            image_id = chunk["aux"]["ID"]
        if "stream" in chunk:
            log.append(chunk["stream"])
            line = chunk["stream"].strip()
            if image_id is None and line.startswith("Successfully built "):
                image_id = line.split()[-1]
    assert image_id, "the build gave no image id:\n" + "".join(log)[-2000:]
    return client.api.inspect_image(image_id)["Id"]


def _remove(client: docker.DockerClient, image_id: str) -> None:
    """Remove an image and the intermediate images of its build, by id (a classic builder
    prunes untagged parents itself; Podman keeps its build's intermediate images apart)."""
    ids = [image_id]
    try:
        history = client.api.history(image_id)
    except DockerException:
        history = []
    for entry in history:  # "<missing>" for a layer with no image; Podman omits "sha256:"
        hexid = (entry.get("Id") or "").removeprefix("sha256:")
        if len(hexid) == 64 and all(c in "0123456789abcdef" for c in hexid):
            ids.append("sha256:" + hexid)
    for one in dict.fromkeys(ids):
        try:
            client.api.remove_image(one, force=True)
        except NotFound:
            pass


def _host(name: str) -> str | None:
    path = STATE / "engines" / name / "host"
    return path.read_text().strip() if path.is_file() else None


@pytest.fixture(params=ENGINES)
def engine(request):
    """(name, client) of one started engine; missing: skipped, or a failure in CI."""
    name = request.param
    host = _host(name)
    require(host is not None,
            f"engine {name} not started: no {STATE / 'engines' / name / 'host'} (run `make engines`)")
    client = docker.DockerClient(base_url=host, timeout=300)
    try:
        ok = client.ping()
    except (DockerException, RequestException, OSError) as exc:
        ok, reason = False, f"engine {name} at {host} does not answer: {exc}"
    else:
        reason = f"engine {name} at {host} does not answer"
    if not ok:
        client.close()
        require(False, reason)
    yield name, client
    client.close()


def test_default_engine_still_builds_and_runs_a_step(docker_client):
    require(Path("/bin/busybox").is_file(), "needs /bin/busybox (Debian: busybox-static)")
    image_id = _build(docker_client, {"busybox": Path("/bin/busybox").read_bytes(), "f": b"x\n"},
                      "FROM scratch\nCOPY busybox /bin/busybox\nCOPY f /f\n"
                      'RUN ["/bin/busybox", "cp", "/f", "/g"]\n')
    try:
        assert len(docker_client.api.inspect_image(image_id)["RootFS"]["Layers"]) == 3
    finally:
        _remove(docker_client, image_id)


def test_engine_is_what_its_name_says(engine):
    name, client = engine
    version, info = client.version(), client.info()
    components = {c.get("Name"): c.get("Version", "") for c in version.get("Components") or []}
    driver_status = {k: v for k, v in info.get("DriverStatus") or []}
    if name == "podman":
        assert "Podman Engine" in components, components
    else:
        assert "Podman Engine" not in components, components
        assert version["Version"].startswith("20.10." if name == "docker20" else "26."), version
    if name == "docker26-containerd":
        assert driver_status.get("driver-type") == "io.containerd.snapshotter.v1", info.get("DriverStatus")
    elif name in ("docker20", "docker26"):
        assert info["Driver"] == "overlay2", info["Driver"]
    assert info["DockerRootDir"].startswith(str(STATE / "engines" / name) + "/"), info["DockerRootDir"]


def test_engine_builds_two_copies_from_scratch(engine):
    name, client = engine
    image_id = _build(client, {"f": PAYLOAD}, TWO_COPY)
    try:
        image = client.api.inspect_image(image_id)
        assert len(image["RootFS"]["Layers"]) == 2, image["RootFS"]
        # .Size differs by store (overlay2: the files' bytes; containerd: its content store's
        # blobs; Podman: the layer tars and its metadata), but never below the files' bytes.
        assert 2_000_000 <= image["Size"] < 2_100_000, (name, image["Size"])
        sizes = [h["Size"] for h in client.api.history(image_id)]
        assert sum(1 for size in sizes if size >= 1_000_000) == 2, (name, sizes)
        with tarfile.open(fileobj=io.BytesIO(b"".join(client.api.get_image(image_id))), mode="r:") as saved:
            names = saved.getnames()
        assert "manifest.json" in names, (name, names[:20])
    finally:
        _remove(client, image_id)
    with pytest.raises(NotFound):
        client.api.inspect_image(image_id)


def test_engine_runs_a_build_step(engine):
    require(Path("/bin/busybox").is_file(), "needs /bin/busybox (Debian: busybox-static)")
    name, client = engine
    image_id = _build(client, {"busybox": Path("/bin/busybox").read_bytes()},
                      "FROM scratch\nCOPY busybox /bin/busybox\n"
                      'RUN ["/bin/busybox", "mkdir", "/made-by-run"]\n')
    try:
        assert len(client.api.inspect_image(image_id)["RootFS"]["Layers"]) == 2
    finally:
        _remove(client, image_id)
