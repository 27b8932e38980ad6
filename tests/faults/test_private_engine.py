"""The private engine fixture: builds, dies on kill(), comes back on start() with its
images, and leaves nothing behind, even when killed mid-build."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import build_tiny, require

from harness.engine import ENGINE_ERRORS
from harness.errors import BuildFailed

pytestmark = pytest.mark.engine
BUSYBOX = Path("/bin/busybox")
# What a build raises when its engine dies: the harness's, the SDK's, requests', urllib3's.
ENGINE_GONE = (BuildFailed, *ENGINE_ERRORS)


def _build(client, tmp_path: Path, dockerfile: str, tag: str | None = None) -> str:
    return build_tiny(client, tmp_path, dockerfile, tag, busybox=True)


def test_kill_and_restart_keep_the_images(private_engine, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    assert private_engine.host == f"unix://{private_engine.sock}"
    assert len(str(private_engine.exec_root / "containerd" / "containerd.sock.ttrpc")) < 108
    client = private_engine.client()
    assert client.api.images(quiet=True) == []  # its own data root: empty
    assert client.info()["DockerRootDir"] == str(private_engine.data_root)
    image_id = _build(client, tmp_path, 'FROM scratch\nCOPY busybox /bin/busybox\n'
                      'RUN ["/bin/busybox", "touch", "/built"]\n', tag="pe-probe:1")

    pid, containerd = private_engine.pid, private_engine.containerd_pid
    assert pid and containerd and containerd != pid
    private_engine.kill()
    assert not os.path.exists(f"/proc/{pid}")  # reaped: our child
    assert private_engine.processes() == []  # containerd went with it
    with pytest.raises(requests.exceptions.ConnectionError):
        client.api.ping()

    private_engine.start()
    assert private_engine.pid != pid
    again = private_engine.client()
    assert again.api.inspect_image("pe-probe:1")["Id"] == image_id
    # And it builds again, on top of what survived.
    assert _build(again, tmp_path, "FROM pe-probe:1\nRUN [\"/bin/busybox\", \"true\"]\n")


def test_close_after_a_kill_mid_build_leaves_nothing(private_engine, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client = private_engine.client()
    failure: list[BaseException] = []

    def slow_build():
        try:
            _build(client, tmp_path, 'FROM scratch\nCOPY busybox /bin/busybox\n'
                   'RUN ["/bin/busybox", "sleep", "300"]\n')
        except ENGINE_GONE as exc:  # the engine vanished under the stream
            failure.append(exc)

    thread = threading.Thread(target=slow_build, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not client.api.containers(filters={"status": "running"}):
        assert time.monotonic() < deadline, "the RUN step never started"
        time.sleep(0.2)
    private_engine.kill()
    thread.join(timeout=30)
    assert failure, "the build did not fail when its engine died"
    shims = private_engine.processes()
    assert shims, "a killed engine's shim is expected to outlive it"
    cgroups = private_engine.container_cgroups()
    assert cgroups, "the RUN step's container has cgroups"

    private_engine.close()
    assert private_engine.processes() == []
    assert all(not os.path.exists(f"/proc/{pid}") or _zombie(pid) for pid in shims)
    assert private_engine.mounts() == []
    assert not any(path.exists() for path in cgroups)
    assert not private_engine.root.exists()


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] == "Z"


def test_restart_after_a_kill_mid_build(private_engine, tmp_path):
    """What a resumed run meets: the engine comes back, the build's container stopped."""
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client = private_engine.client()
    base = _build(client, tmp_path, "FROM scratch\nCOPY busybox /bin/busybox\n", tag="pe-base:1")
    thread = threading.Thread(target=_swallow, args=(lambda: _build(
        client, tmp_path, 'FROM pe-base:1\nRUN ["/bin/busybox", "sleep", "300"]\n'),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not client.api.containers(filters={"status": "running"}):
        assert time.monotonic() < deadline, "the RUN step never started"
        time.sleep(0.2)
    private_engine.kill()
    thread.join(timeout=30)

    started = time.monotonic()
    private_engine.start()  # stops the orphaned RUN container first (up to 10 s)
    assert time.monotonic() - started < 60
    again = private_engine.client()
    assert again.api.containers(filters={"status": "running"}) == []
    assert again.api.inspect_image("pe-base:1")["Id"] == base
    assert _build(again, tmp_path, 'FROM pe-base:1\nRUN ["/bin/busybox", "true"]\n')


def _swallow(build) -> None:
    try:
        build()
    except ENGINE_GONE:
        pass
