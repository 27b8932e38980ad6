"""`harness clean`: only what the harness labelled goes, one run or all of them.

The engine tests run on a private engine: cleaning "all runs" on the shared engine would
take other tests' (and people's) labelled images with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import build_tiny, require
from docker.errors import APIError, ImageNotFound, NotFound

from harness.engine import cleanup

BUSYBOX = Path("/bin/busybox")
RUN, VARIANT = "io.harness.run", "io.harness.variant"


def _build(client, tmp_path: Path, dockerfile: str, tag: str | None = None,
           run: str | None = None) -> str:
    labels = {RUN: run, VARIANT: "v"} if run else None
    return build_tiny(client, tmp_path, dockerfile, tag, busybox=True, labels=labels)


def _step(name: str) -> str:
    return f'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "touch", "/{name}"]\n'


def _exists(api, image: str) -> bool:
    try:
        api.inspect_image(image)
        return True
    except ImageNotFound:
        return False


def _volumes(api) -> set[str]:
    return {v["Name"] for v in api.volumes().get("Volumes") or []}


@pytest.mark.engine
def test_clean_one_run_then_all(private_engine, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client = private_engine.client()
    api = client.api
    final_a = _build(client, tmp_path, _step("a"), "harness-bench/a:latest", run="run-a")
    api.tag(final_a, "extra/a", "1")  # a second tag: every tag goes
    other_a = _build(client, tmp_path, _step("a2"), None, run="run-a")  # an untagged one
    final_b = _build(client, tmp_path, _step("b"), "harness-bench/b:latest", run="run-b")
    plain = _build(client, tmp_path, _step("plain"), "plain:1")
    container = api.create_container(final_a, command=["/bin/busybox", "true"],
                                     labels={RUN: "run-a"})["Id"]
    api.create_volume("vol-a", labels={RUN: "run-a"})
    api.create_volume("vol-b", labels={RUN: "run-b"})
    api.create_volume("vol-plain")

    found = cleanup.find(client, "run-a")
    assert [c["id"] for c in found["containers"]] == [container]
    assert {i["id"] for i in found["images"]} == {final_a, other_a}
    assert sorted(next(i for i in found["images"] if i["id"] == final_a)["tags"]) == [
        "extra/a:1", "harness-bench/a:latest"]
    assert [v["name"] for v in found["volumes"]] == ["vol-a"]
    assert {i["id"] for i in cleanup.find(client, None)["images"]} == {final_a, other_a, final_b}

    result = cleanup.remove(client, "run-a", keep_final=False)
    assert result["errors"] == []
    assert result["removed"] == {"containers": 1, "images": 2, "networks": 0, "volumes": 1}
    assert cleanup.summary_lines(result) == [
        "removed 1 container, 2 images, 0 networks, 1 volume of run run-a"]
    assert api.containers(all=True) == []
    assert not _exists(api, final_a) and not _exists(api, other_a)
    assert not _exists(api, "extra/a:1")
    assert _exists(api, final_b) and _exists(api, "harness-bench/b:latest")
    assert _exists(api, plain) and _exists(api, "plain:1")
    assert _volumes(api) == {"vol-b", "vol-plain"}
    # The classic builder's step images of the removed ones went with them: no dangling.
    assert api.images(filters={"dangling": True}, quiet=True) == []

    result = cleanup.remove(client, None, keep_final=False)
    assert result["errors"] == [] and result["removed"]["images"] == 1
    assert cleanup.summary_lines(result)[0].endswith("of every run")
    assert not _exists(api, final_b)
    assert _exists(api, plain) and _exists(api, "plain:1")  # never labelled: untouched
    assert _volumes(api) == {"vol-plain"}

    again = cleanup.remove(client, None, keep_final=False)
    assert again["removed"] == dict.fromkeys(cleanup.KINDS, 0)
    assert cleanup.summary_lines(again) == [
        "nothing to remove for every run (no object labelled io.harness.run)"]


@pytest.mark.engine
def test_keep_final_and_never_force(private_engine, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client = private_engine.client()
    api = client.api
    final = _build(client, tmp_path, _step("f"), "harness-bench/f:latest", run="run-c")
    repetition = _build(client, tmp_path, _step("r"), None, run="run-c")
    used = _build(client, tmp_path, _step("u"), "harness-bench-old/u:1", run="run-c")
    # Somebody's image on top of one of the run's. Labels are inherited, so it says
    # which run it belongs to itself: another one.
    child = _build(client, tmp_path, 'FROM harness-bench-old/u:1\nLABEL io.harness.run=mine\n'
                   'RUN ["/bin/busybox", "true"]\n', "mine:1")

    result = cleanup.remove(client, "run-c", keep_final=True)
    assert result["kept"] == ["harness-bench/f:latest"]
    assert _exists(api, final) and not _exists(api, repetition)
    # The parent of another run's image is untagged but stays (never forced), and says why.
    assert _exists(api, used) and not _exists(api, "harness-bench-old/u:1")
    assert _exists(api, child) and _exists(api, "mine:1")
    assert result["removed"]["images"] == 1
    assert len(result["errors"]) == 1
    error = result["errors"][0]
    assert error.startswith(f"image {used.split(':')[1][:12]} (harness-bench-old/u:1): ")
    assert "\n" not in error
    lines = cleanup.summary_lines(result)
    assert lines[0] == "removed 0 containers, 1 image, 0 networks, 0 volumes of run run-c"
    assert lines[1] == "kept 1 final image: harness-bench/f:latest"
    assert lines[2] == "1 object could not be removed:"
    assert lines[3] == "  " + error

    # Without keep_final the final image goes too.
    result = cleanup.remove(client, "run-c", keep_final=False)
    assert not _exists(api, final)
    assert _exists(api, child)


class FakeAPI:
    """Just enough of docker's APIClient for remove(): records the calls it gets."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.present = {"sha256:" + "1" * 64, "sha256:" + "2" * 64}

    def containers(self, all, filters):
        assert filters == {"label": "io.harness.run=r1"}
        return [{"Id": "c" * 64, "Names": ["/bench"], "Labels": {RUN: "r1"}}]

    def images(self, all, filters):
        return [{"Id": "sha256:" + "1" * 64, "RepoTags": ["<none>:<none>"], "Created": 1,
                 "Labels": {RUN: "r1"}},
                {"Id": "sha256:" + "2" * 64, "RepoTags": ["x/y:1"], "Created": 2,
                 "Labels": {RUN: "r1"}}]

    def networks(self, filters):
        return [{"Id": "n" * 64, "Name": "bench-net", "Labels": {RUN: "r1"}}]

    def volumes(self, filters):
        return {"Volumes": [{"Name": "gone-already", "Labels": {RUN: "r1"}},
                            {"Name": "in-use", "Labels": {RUN: "r1"}}]}

    def remove_container(self, cid, force, v):
        self.calls.append(("container", cid, force))

    def remove_image(self, ref):
        self.calls.append(("image", ref))
        if ref == "x/y:1":
            self.present.discard("sha256:" + "2" * 64)  # the last tag takes the image

    def inspect_image(self, ref):
        if ref not in self.present:
            raise NotFound("no such image")
        return {"Id": ref, "Parent": ""}

    def remove_network(self, nid):
        self.calls.append(("network", nid))

    def remove_volume(self, name):
        self.calls.append(("volume", name))
        if name == "gone-already":
            raise NotFound("no such volume")
        raise APIError("remove in-use: volume is in use - [abc]\nsecond line")


class FakeClient:
    def __init__(self):
        self.api = FakeAPI()


def test_remove_order_counts_and_one_line_errors():
    client = FakeClient()
    result = cleanup.remove(client, "r1", keep_final=False)
    kinds = [call[0] for call in client.api.calls]
    assert kinds == ["container", "image", "image", "network", "volume", "volume"]
    assert client.api.calls[0] == ("container", "c" * 64, True)
    # Newest first; untagged through its tag, then by id only if still there.
    assert client.api.calls[1:3] == [("image", "x/y:1"), ("image", "sha256:" + "1" * 64)]
    assert result["removed"] == {"containers": 1, "images": 2, "networks": 1, "volumes": 1}
    assert result["errors"] == ["volume in-use: remove in-use: volume is in use - [abc]"]


def test_summary_lines_when_only_final_images_stay():
    result = {"run": None, "removed": dict.fromkeys(cleanup.KINDS, 0),
              "kept": ["harness-bench/a:latest", "harness-bench/b:latest"], "errors": []}
    assert cleanup.summary_lines(result) == [
        "removed 0 containers, 0 images, 0 networks, 0 volumes of every run",
        "kept 2 final images: harness-bench/a:latest, harness-bench/b:latest"]


def test_summary_lines_for_an_empty_run():
    result = {"run": "20260101T000000Z", "removed": dict.fromkeys(cleanup.KINDS, 0),
              "kept": [], "errors": []}
    assert cleanup.summary_lines(result) == [
        ("nothing to remove for run 20260101T000000Z "
         "(no object labelled io.harness.run=20260101T000000Z)")]


@pytest.mark.engine
def test_clean_command_on_the_private_engine(private_engine, tmp_path):
    """The CLI end to end: usage errors, then one run's objects removed, by label."""
    import subprocess
    import sys

    from conftest import ROOT

    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    client = private_engine.client()
    mine = _build(client, tmp_path, _step("cli"), "harness-bench/cli:latest", run="run-cli")
    other = _build(client, tmp_path, _step("keep"), "harness-bench/keep:latest", run="run-keep")
    env = {"DOCKER_HOST": private_engine.host, "PATH": "/usr/bin:/bin"}

    def harness(*args):
        return subprocess.run([sys.executable, "-m", "harness", "clean", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, check=False)

    usage = harness()
    assert usage.returncode == 2 and "exactly one of --run RUN or --all" in usage.stderr
    done = harness("--run", "run-cli")
    assert done.returncode == 0, done.stderr
    assert "removed" in done.stdout and "run run-cli" in done.stdout
    assert not _exists(client.api, mine) and _exists(client.api, other)
    again = harness("--run", "run-cli")
    assert again.returncode == 0 and "nothing to remove" in again.stdout
