"""What an image's layers hold, read from one pass over its `docker save` stream.

The stream is parsed as it arrives (tarfile in "r|" mode, each layer.tar read as a
nested stream): nothing is written to disk and memory grows with the number of
files, never with their bytes. Each layer is named by its diff id, the sha256 of
its layer.tar computed on the way, and stacked in the order of `RootFS.Layers`.

Sizes. The engine (`docker history`, `docker image inspect` Size) counts a layer as
what its directory holds on disk: regular files, hard links once, and symlinks by
the length of their target. `size_bytes` counts the same way; `files_bytes` counts
regular files only (dive's figure); `tar_bytes` is the length of the layer.tar.

Waste. A file copy is wasted when no visible path reaches it any more: a later
layer overwrote its path, or deleted it (`.wh.<name>`), or hid its directory
(`.wh..wh..opq`). `wasted_bytes` sums those copies; the copy still visible is never
counted. So `files_bytes + wasted_bytes == layers_files_bytes` and
`efficiency = files_bytes / layers_files_bytes`: the share of the bytes shipped that
the final filesystem shows (1.0 when nothing is wasted).

dive (0.13) works differently, on the leaf nodes of each layer's tree: every path
that is a leaf in two or more layers adds ALL its copies to `wastedBytes`, the kept
one included (dive issue 684); a whiteout adds 0 for a file, the deleted subtree for
a directory, and opaque markers are ignored. Its score is the sum over paths of the
smallest copy divided by the sum of all copies. `dive_wasted_bytes` and
`dive_efficiency` reproduce both on the same layers, to check against dive itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, NamedTuple

import docker
import xxhash
from zlib_ng import zlib_ng

from .errors import HarnessError

GZIP_LEVEL = 6  # what the engine pushes with: Go's compress/gzip default
GZIP_FRAMING_BYTES = 18  # gzip header (10) and trailer (8) around the deflate stream
DEFLATE_WINDOW_BYTES = 32 * 1024
BLOCK_BYTES = 1 << 20  # unit of work for the compressing threads
TAR_BUFSIZE = 64 * 1024  # larger buffers make tarfile's stream copy more per small read
READ_BYTES = 128 * 1024  # 1 MiB reads cost 60 % more CPU: large allocations and copies
CAPTURE_LIMIT_BYTES = 16 << 20
APK_DB = "lib/apk/db/installed"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_DIR = "var/lib/dpkg/status.d"  # distroless: one file per package
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PACKAGE_MANAGERS = {"apk": ("apk",), "dpkg": ("dpkg",), "apt": ("apt-get", "apt"),
                    "npm": ("npm",), "yarn": ("yarn",), "pnpm": ("pnpm",)}
TOP_PATHS = 10
SYMLINK_HOPS = 40  # Linux's limit
_PACKAGE_JSON = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/.@][^/]*/package\.json$")

FILE, LINK, SYMLINK, DIR, WHITEOUT, OPAQUE, OTHER = (
    "file", "hardlink", "symlink", "dir", "whiteout", "opaque", "other")


class Entry(NamedTuple):
    """One member of a layer tar. Paths are relative to the root, without a leading '/'.

    A whiteout's path is the path it deletes; an opaque marker's is the directory it
    empties. `target` is a link's target (a hard link's as a root-relative path)."""
    path: str
    kind: str
    size: int = 0
    mode: int = 0
    target: str = ""
    digest: bytes = b""


@dataclass
class LayerIndex:
    """Everything kept about one layer: file metadata, never file contents (except
    the package databases, which are small and needed whole)."""
    diff_id: str
    entries: list[Entry]
    captured: dict[str, bytes]
    tar_bytes: int
    compressed_estimate_bytes: int | None = None

    def summary(self) -> dict:
        files = sum(e.size for e in self.entries if e.kind == FILE)
        links = sum(len(e.target.encode("utf-8", "surrogateescape"))  # as tarfile decoded it
                    for e in self.entries if e.kind == SYMLINK)
        return {
            "diff_id": self.diff_id,
            "size_bytes": files + links,
            "files_bytes": files,
            "tar_bytes": self.tar_bytes,
            "file_count": sum(e.kind in (FILE, LINK) for e in self.entries),
            "whiteout_count": sum(e.kind in (WHITEOUT, OPAQUE) for e in self.entries),
            "compressed_estimate_bytes": self.compressed_estimate_bytes,
        }


# ---------------------------------------------------------------- streaming


class ChunkStream(io.RawIOBase):
    """A readable raw file over an iterator of bytes chunks (the SDK's save stream)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._chunk = b""
        self._pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(READ_BYTES), b""))
        while self._pos >= len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._chunk, self._pos = chunk, 0
        if self._pos == 0 and size >= len(self._chunk):
            data = self._chunk  # the whole chunk: no copy
        else:
            data = self._chunk[self._pos:self._pos + size]
        self._pos += len(data)
        self.bytes_read += len(data)
        return data


class _Tap(io.RawIOBase):
    """Reads a layer.tar member and shows every byte to the sinks (diff id, compressor)."""

    def __init__(self, source, sinks: list[Callable[[bytes], object]]):
        self._source = source
        self._sinks = sinks
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        for sink in self._sinks:
            sink(data)
        self.bytes_read += len(data)
        return data

    def drain(self) -> None:
        """Reads what the inner tar parser left (end-of-archive padding): it is hashed too."""
        while self.read(READ_BYTES):
            pass


def _deflated_length(block: bytes, zdict: bytes, final: bool) -> int:
    comp = zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, -15, 8,
                               zlib_ng.Z_DEFAULT_STRATEGY, zdict)
    size = len(comp.compress(block))
    return size + len(comp.flush(zlib_ng.Z_FINISH if final else zlib_ng.Z_SYNC_FLUSH))


class GzipSizer:
    """The length of a layer's gzip stream at level 6, as a registry would store it.

    The layer is cut into blocks compressed on a thread pool (zlib-ng releases the
    GIL), each primed with the 32 KiB before it as pigz does, so one big layer keeps
    every core busy and the length stays within bytes of a serial stream's. Only
    lengths are kept; `slots` bounds the blocks in flight, hence the memory.
    """

    def __init__(self, pool: ThreadPoolExecutor, slots: threading.Semaphore):
        self._pool = pool
        self._slots = slots
        self._pending = bytearray()
        self._tail = b""
        self._futures: list[Future] = []

    def feed(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= BLOCK_BYTES:
            block = bytes(self._pending[:BLOCK_BYTES])
            del self._pending[:BLOCK_BYTES]
            self._submit(block, final=False)

    def finish(self) -> Callable[[], int]:
        """Submits the last block; the returned function waits for the total."""
        self._submit(bytes(self._pending), final=True)
        self._pending = bytearray()
        futures = self._futures
        return lambda: GZIP_FRAMING_BYTES + sum(f.result() for f in futures)

    def _submit(self, block: bytes, final: bool) -> None:
        self._slots.acquire()
        future = self._pool.submit(_deflated_length, block, self._tail, final)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)
        self._tail = block[-DEFLATE_WINDOW_BYTES:]


def _norm(name: str) -> str:
    """A tar member name as a root-relative path: "./usr/bin/" -> "usr/bin"."""
    return posixpath.normpath("/" + name).lstrip("/")


def _entry(member: tarfile.TarInfo) -> Entry | None:
    path = _norm(member.name)
    if not path:
        return None
    head, base = posixpath.split(path)
    if base == ".wh..wh..opq":
        return Entry(head, OPAQUE)
    if base.startswith(".wh."):
        return Entry(posixpath.join(head, base[4:]), WHITEOUT)
    if member.isreg():
        return Entry(path, FILE, member.size, member.mode)
    if member.islnk():
        return Entry(path, LINK, 0, member.mode, _norm(member.linkname))
    if member.issym():
        return Entry(path, SYMLINK, 0, member.mode, member.linkname)
    if member.isdir():
        return Entry(path, DIR, 0, member.mode)
    return Entry(path, OTHER, 0, member.mode)


def _wants_content(path: str, size: int) -> bool:
    return size <= CAPTURE_LIMIT_BYTES and (
        path in (APK_DB, DPKG_STATUS) or path.startswith(DPKG_STATUS_DIR + "/"))


def _hash_content(tar: tarfile.TarFile, member: tarfile.TarInfo, keep: bool) -> tuple[bytes, bytes]:
    """The file's content hash, and its content when `keep`. xxh3-128 runs at ~10 GB/s
    here against blake2b's 0.8: blake2b cost a quarter of the parse time."""
    digest = xxhash.xxh3_128()
    kept = []
    with tar.extractfile(member) as f:
        for chunk in iter(lambda: f.read(READ_BYTES), b""):
            digest.update(chunk)
            if keep:
                kept.append(chunk)
    return digest.digest(), b"".join(kept)


def read_layer(fileobj) -> tuple[list[Entry], dict[str, bytes]]:
    """The entries of one layer tar read as a stream, and the package databases' contents."""
    entries: list[Entry] = []
    captured: dict[str, bytes] = {}
    with tarfile.open(fileobj=fileobj, mode="r|", bufsize=TAR_BUFSIZE) as tar:
        for member in tar:
            entry = _entry(member)
            if entry is None:
                continue
            if entry.kind == FILE and entry.size:
                keep = _wants_content(entry.path, entry.size)
                digest, content = _hash_content(tar, member, keep)
                entry = entry._replace(digest=digest)
                if keep:
                    captured[entry.path] = content
            entries.append(entry)
    return entries, captured


@dataclass
class _Scan:
    """What one pass over a save stream found, by layer directory."""
    layers: dict[str, LayerIndex] = field(default_factory=dict)  # by diff id
    dir_diff_ids: dict[str, str] = field(default_factory=dict)  # save dir -> diff id
    pending_sizes: dict[str, Callable[[], int]] = field(default_factory=dict)
    manifest: list | None = None
    cache_hits: int = 0


def _layer_dir(name: str) -> str | None:
    """The directory of a `<dir>/layer.tar` member (the 20.10 save format)."""
    head, base = posixpath.split(_norm(name))
    return head if base == "layer.tar" and head else None


def _scan_stream(stream: ChunkStream, known: dict[str, LayerIndex],
                 new_sizer: Callable[[], GzipSizer] | None) -> _Scan:
    scan = _Scan()
    with tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFSIZE) as outer:
        for member in outer:
            if _norm(member.name) == "manifest.json":
                scan.manifest = json.load(outer.extractfile(member))
                continue
            layer_dir = _layer_dir(member.name)
            if layer_dir is None or not member.isreg():
                continue  # a symlinked layer.tar repeats a diff id already in the stream
            cached = known.get(layer_dir)
            if cached is not None:  # skipped unread: the manifest check below vouches for it
                scan.layers[cached.diff_id] = cached
                scan.dir_diff_ids[layer_dir] = cached.diff_id
                scan.cache_hits += 1
                continue
            _scan_layer(outer.extractfile(member), layer_dir, scan, new_sizer)
    return scan


def _scan_layer(source, layer_dir: str, scan: _Scan, new_sizer) -> None:
    sha = hashlib.sha256()
    sinks = [sha.update]
    sizer = new_sizer() if new_sizer else None
    if sizer:
        sinks.append(sizer.feed)
    tap = _Tap(source, sinks)
    entries, captured = read_layer(tap)
    tap.drain()
    diff_id = "sha256:" + sha.hexdigest()
    scan.layers[diff_id] = LayerIndex(diff_id, entries, captured, tap.bytes_read)
    scan.dir_diff_ids[layer_dir] = diff_id
    if sizer:
        scan.pending_sizes[diff_id] = sizer.finish()


def _check_manifest(scan: _Scan, diff_ids: list[str]) -> dict[str, str]:
    """Every layer directory the manifest lists, with the diff id RootFS gives its position.

    Checks that each layer read (or taken from the cache) is the one RootFS names there."""
    if not scan.manifest:
        raise HarnessError("the save stream has no manifest.json")
    paths = scan.manifest[0]["Layers"]
    if len(paths) != len(diff_ids):
        raise HarnessError(f"manifest lists {len(paths)} layers, RootFS {len(diff_ids)}")
    dirs = {}
    for path, diff_id in zip(paths, diff_ids):
        layer_dir = _layer_dir(path)
        seen = scan.dir_diff_ids.get(layer_dir)
        if seen is not None and seen != diff_id:
            raise HarnessError(f"save directory {layer_dir} holds {seen}, RootFS says {diff_id}")
        dirs[layer_dir] = diff_id
    missing = set(diff_ids) - scan.layers.keys()
    if missing:
        raise HarnessError(f"layers missing from the save stream: {sorted(missing)}")
    return dirs


# ---------------------------------------------------------------- the merged filesystem


@dataclass(slots=True)  # one per path of the image: no per-object __dict__
class Node:
    """A path of the merged filesystem. A regular file and its hard links share one
    `inode`, (stack index, path) of the copy whose bytes they show, and its `content`."""
    entry: Entry | None = None  # None: a directory no layer listed itself
    inode: tuple[int, str] | None = None
    content: Entry | None = None
    children: dict[str, "Node"] | None = None

    @property
    def kind(self) -> str:
        return self.entry.kind if self.entry else DIR


def _child(node: Node, name: str) -> Node | None:
    return node.children.get(name) if node.children else None


def _lookup(root: Node, path: str) -> Node | None:
    node = root
    for name in path.split("/") if path else ():
        node = _child(node, name)
        if node is None:
            return None
    return node


def _parent(root: Node, path: str) -> tuple[Node, str]:
    """The directory holding `path` (made if missing), and the last name."""
    *dirs, name = path.split("/")
    node = root
    for part in dirs:
        nxt = _child(node, part)
        if nxt is None or nxt.children is None:
            nxt = Node(children={})
            node.children[part] = nxt
        node = nxt
    return node, name


def _put(root: Node, entry: Entry, index: int) -> None:
    parent, name = _parent(root, entry.path)
    old = parent.children.get(name)
    if entry.kind == DIR:
        children = old.children if old and old.children is not None else {}
        parent.children[name] = Node(entry, children=children)
    elif entry.kind == FILE:
        parent.children[name] = Node(entry, (index, entry.path), entry)
    elif entry.kind == LINK:
        target = _lookup(root, entry.target)
        parent.children[name] = Node(entry, target.inode, target.content) if target else Node(entry)
    else:
        parent.children[name] = Node(entry)


def merge(layers: list[list[Entry]]) -> Node:
    """The final filesystem: each layer's whiteouts act on the layers below, then its entries land."""
    root = Node(children={})
    for index, entries in enumerate(layers):
        for entry in entries:
            if entry.kind == WHITEOUT:
                parent = _lookup(root, posixpath.dirname(entry.path))
                if parent is not None and parent.children:
                    parent.children.pop(posixpath.basename(entry.path), None)
            elif entry.kind == OPAQUE:
                node = _lookup(root, entry.path)
                if node is not None and node.children is not None:
                    node.children = {}
        for entry in entries:
            if entry.kind not in (WHITEOUT, OPAQUE):
                _put(root, entry, index)
    return root


def walk(node: Node, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Every path below `node` with its node, depth first."""
    for name, child in (node.children or {}).items():
        path = f"{prefix}/{name}"
        yield path, child
        if child.children:
            yield from walk(child, path)


def inode_sizes(layers: list[list[Entry]]) -> dict[tuple[int, str], int]:
    """The size of every regular-file copy in the stack, by (stack index, path)."""
    return {(i, e.path): e.size for i, entries in enumerate(layers) for e in entries if e.kind == FILE}


def waste(layers: list[list[Entry]], root: Node) -> dict:
    """Bytes of copies that no visible path reaches any more, and the biggest of them."""
    sizes = inode_sizes(layers)
    visible = {n.inode for _, n in walk(root) if n.inode is not None}
    lost = [(size, key) for key, size in sizes.items() if key not in visible and size]
    total = sum(sizes.values())
    wasted = sum(size for size, _ in lost)
    top = sorted(lost, reverse=True)[:TOP_PATHS]
    return {
        "layers_files_bytes": total,
        "wasted_bytes": wasted,
        "efficiency": (total - wasted) / total if total else 1.0,
        "top_wasted": [{"path": "/" + path, "layer_index": i, "bytes": size}
                       for size, (i, path) in top],
    }


# ---------------------------------------------------------------- dive's accounting


class _DiveLayer(NamedTuple):
    """One layer as dive's tree holds it: path -> (is_dir, size), and its whiteouts.

    Directories dive creates for a path's parents carry an empty payload (not a dir);
    opaque markers are dropped (their directory stays)."""
    nodes: dict[str, tuple[bool, int]]
    whiteouts: list[str]


def _dive_layer(entries: list[Entry]) -> _DiveLayer:
    layer = _DiveLayer({}, [])
    for e in entries:
        head = posixpath.dirname(e.path)
        while head and head not in layer.nodes:
            layer.nodes[head] = (False, 0)
            head = posixpath.dirname(head)
        if e.kind == WHITEOUT:
            layer.whiteouts.append(e.path)
        elif e.kind == OPAQUE:
            if e.path:
                layer.nodes.setdefault(e.path, (False, 0))
        else:
            layer.nodes[e.path] = (e.kind == DIR, e.size)
    return layer


def _dive_leaves(layer: _DiveLayer) -> Iterator[tuple[str, int | None]]:
    """Leaf paths with their size; None for a whiteout (sized against the layers below)."""
    parents = {posixpath.dirname(p) for p in [*layer.nodes, *layer.whiteouts]}
    for path, (_, size) in layer.nodes.items():
        if path not in parents:
            yield path, size
    for path in layer.whiteouts:
        yield path, None


class _DiveStack:
    """The layers below, merged as dive merges them: whiteouts remove a path and what is
    under it, anything else replaces the payload. Children are indexed: a base image's
    `rm -rf` can leave thousands of whiteouts over tens of thousands of paths."""

    def __init__(self):
        self.payload: dict[str, tuple[bool, int]] = {}
        self.children: dict[str, set[str]] = {}

    def stack(self, layer: _DiveLayer) -> None:
        for path in layer.whiteouts:
            for p in [path, *self._below(path)]:
                self.payload.pop(p, None)
                self.children.pop(p, None)
            self.children.get(posixpath.dirname(path), set()).discard(path)
        for path, payload in layer.nodes.items():
            self.payload[path] = payload
            self.children.setdefault(posixpath.dirname(path), set()).add(path)

    def whiteout_size(self, path: str) -> int:
        if not self.payload.get(path, (False, 0))[0]:
            return 0  # a file, or a directory dive made for a path's parents
        return sum(self.payload[p][1] for p in self._below(path))

    def _below(self, path: str) -> Iterator[str]:
        todo = list(self.children.get(path, ()))
        while todo:
            p = todo.pop()
            yield p
            todo.extend(self.children.get(p, ()))


def dive_waste(layers: list[list[Entry]]) -> dict:
    """dive 0.13's wastedBytes and efficiency score, computed as dive does (see the module doc).

    One difference kept on purpose: where dive meets a whiteout for a path no lower
    layer has, it stops reading that layer; here the whiteout counts 0 and reading goes on."""
    copies: dict[str, list[int]] = {}
    below = _DiveStack()
    for entries in layers:
        layer = _dive_layer(entries)
        for path, size in _dive_leaves(layer):
            copies.setdefault(path, []).append(below.whiteout_size(path) if size is None else size)
        below.stack(layer)
    cumulative = sum(sum(sizes) for sizes in copies.values())
    smallest = sum(min(sizes) for sizes in copies.values())
    return {
        "dive_wasted_bytes": sum(sum(s) for s in copies.values() if len(s) > 1),
        "dive_efficiency": smallest / cumulative if cumulative else 1.0,
    }


# ---------------------------------------------------------------- what the final filesystem shows


def resolve(root: Node, path: str) -> Node | None:
    """The node `path` leads to, following symlinks inside the image (as the kernel would)."""
    parts = deque(p for p in path.split("/") if p)
    trail = [root]
    hops = 0
    while parts:
        name = parts.popleft()
        if name == ".":
            continue
        if name == "..":
            if len(trail) > 1:
                trail.pop()
            continue
        node = _child(trail[-1], name)
        if node is None:
            return None
        if node.kind == SYMLINK:
            hops += 1
            if hops > SYMLINK_HOPS:
                return None
            target = node.entry.target
            if target.startswith("/"):
                trail = [root]
            parts.extendleft(reversed([p for p in target.split("/") if p]))
            continue
        trail.append(node)
    return trail[-1]


def _is_file(node: Node | None) -> bool:
    return node is not None and node.kind in (FILE, LINK)


def top_path(path: str, app_dir: str) -> str:
    """The group a visible file counts under: one level below the app directory and
    below /usr (where a Debian base keeps lib, share and local), the top directory elsewhere."""
    for base in (app_dir.rstrip("/"), "/usr"):
        if path.startswith(base + "/"):
            rest = path[len(base) + 1:]
            return f"{base}/{rest.split('/', 1)[0]}"
    return "/" + path.lstrip("/").split("/", 1)[0]


def count_os_packages(db: str, texts: list[bytes]) -> int:
    """Installed packages in dpkg status files (stanzas whose Status is installed, or
    with no Status, as distroless's status.d files are) or apk's installed db (P: lines)."""
    if db == "apk":
        return sum(line.startswith(b"P:") for text in texts for line in text.splitlines())
    count = 0
    for text in texts:
        for stanza in re.split(rb"\n\s*\n", text):
            fields = dict(re.findall(rb"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
            if b"Package" in fields and fields.get(b"Status", b"install ok installed").strip() == b"install ok installed":
                count += 1
    return count


def _package_db(root: Node, captured: list[dict[str, bytes]]) -> tuple[str | None, int | None]:
    """Which package database the image keeps (apk's, or dpkg's status file and the
    status.d directory distroless uses instead), and how many packages it lists."""
    def content(node: Node) -> bytes:
        index, path = node.inode
        return captured[index].get(path, b"")

    apk = _lookup(root, APK_DB)
    if _is_file(apk) and apk.inode:
        return "apk", count_os_packages("apk", [content(apk)])
    status_d = _lookup(root, DPKG_STATUS_DIR)
    nodes = [_lookup(root, DPKG_STATUS), *((status_d.children or {}).values() if status_d else ())]
    texts = [content(node) for node in nodes if _is_file(node) and node.inode]
    if not texts:
        return None, None
    return "dpkg", count_os_packages("dpkg", texts)


def _image_path(config_env: list[str] | None) -> list[str]:
    for item in config_env or []:
        if item.startswith("PATH="):
            return [d for d in item[5:].split(":") if d]
    return DEFAULT_PATH.split(":")


@dataclass
class _Visible:
    """Totals over the visible files, each file's bytes counted once (hard links share them)."""
    app_dir: str
    counts: Counter = field(default_factory=Counter)
    by_top: Counter = field(default_factory=Counter)
    contents: Counter = field(default_factory=Counter)  # (size, digest) -> copies
    setuid: list = field(default_factory=list)
    seen: set = field(default_factory=set)

    def add(self, path: str, node: Node) -> None:
        in_app = path.startswith(f"{self.app_dir}/node_modules/")
        self.counts["file_count"] += 1
        if _PACKAGE_JSON.search(path):
            self.counts["app_packages" if in_app else "other_packages"] += 1
        if node.inode is None or node.inode in self.seen:
            return
        self.seen.add(node.inode)
        size, mode = node.content.size, node.content.mode
        self.counts["files_bytes"] += size
        self.by_top[top_path(path, self.app_dir)] += size
        if size:
            self.contents[(size, node.content.digest)] += 1
        if "/node_modules/" in path:
            self.counts["app_modules_bytes" if in_app else "other_modules_bytes"] += size
        suffix = ".map" if path.endswith(".map") else ".d.ts" if path.endswith(".d.ts") else (
            ".ts" if path.endswith(".ts") else "")
        self.counts[suffix] += size
        if mode & 0o6000:
            self.setuid.append({"path": path, "mode": f"{mode & 0o7777:04o}"})


def describe(root: Node, captured: list[dict[str, bytes]], *, app_dir: str,
             dev_dependencies: Iterable[str], search_path: list[str]) -> dict:
    """The visible files' totals and the facts a reviewer of a Dockerfile asks about."""
    app = app_dir.rstrip("/")
    seen = _Visible(app)
    for path, node in walk(root):
        if _is_file(node):
            seen.add(path, node)
    c = seen.counts
    db, packages = _package_db(root, captured)
    return {
        "file_count": c["file_count"],
        "files_bytes": c["files_bytes"],
        "top_paths": [{"path": p, "bytes": b} for p, b in seen.by_top.most_common(TOP_PATHS)],
        "duplicate_files": sum(n - 1 for n in seen.contents.values()),
        "duplicate_bytes": sum(size * (n - 1) for (size, _), n in seen.contents.items()),
        "node_modules_bytes": c["app_modules_bytes"] + c["other_modules_bytes"],
        "app_node_modules_bytes": c["app_modules_bytes"],
        "other_node_modules_bytes": c["other_modules_bytes"],
        "node_modules_package_count": c["app_packages"] + c["other_packages"],
        "app_node_modules_package_count": c["app_packages"],
        "other_node_modules_package_count": c["other_packages"],
        "dev_dependencies_present": sorted(
            name for name in dev_dependencies
            if _lookup(root, f"{app}/node_modules/{name}".lstrip("/")) is not None),
        "source_map_bytes": c[".map"],
        "typescript_source_bytes": c[".ts"],
        "typescript_declaration_bytes": c[".d.ts"],
        "setuid_files": sorted(seen.setuid, key=lambda f: f["path"]),
        "has_shell": _is_file(resolve(root, "/bin/sh")),
        "package_managers": {
            manager: any(_is_file(resolve(root, f"{d}/{exe}")) for d in search_path for exe in exes)
            for manager, exes in PACKAGE_MANAGERS.items()},
        "os_package_db": db,
        "os_package_count": packages,
    }


# ---------------------------------------------------------------- the entry point


def _known_layers(cache: dict[str, dict] | None, need_estimate: bool) -> dict[str, LayerIndex]:
    """Layers already read in this run, by the save directory they were seen under.

    A save directory's name is a hash of the layer's chain (and, for the top layer, the
    image config), so the same name always holds the same layer."""
    known = {}
    for entry in (cache or {}).values():
        index = entry["index"]
        if need_estimate and index.compressed_estimate_bytes is None:
            continue
        for layer_dir in entry["save_dirs"]:
            known[layer_dir] = index
    return known


def _remember(cache: dict[str, dict] | None, scan: _Scan, dirs: dict[str, str]) -> None:
    if cache is None:
        return
    for layer_dir, diff_id in dirs.items():
        entry = cache.setdefault(diff_id, {"save_dirs": set()})
        entry["index"] = scan.layers[diff_id]
        entry["save_dirs"].add(layer_dir)


def analyze_image(client: docker.DockerClient, image_id: str, *,
                  app_dev_dependencies: set[str] = frozenset(),
                  estimate_compressed: bool = True, workers: int | None = None,
                  cache: dict[str, dict] | None = None, app_dir: str = "/app") -> dict:
    """Everything above about one image, from one pass over its save stream.

    `cache` (diff id -> entry), shared across calls in a run, keeps each layer's file
    index and compressed estimate: a layer seen under the same save directory before
    is skipped unread, neither parsed nor compressed again."""
    start = time.perf_counter()
    attrs = client.api.inspect_image(image_id)
    diff_ids = list(attrs["RootFS"]["Layers"])
    workers = workers or os.cpu_count() or 1
    known = _known_layers(cache, estimate_compressed)
    stream = ChunkStream(client.api.get_image(image_id))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gzip") as pool:
        slots = threading.Semaphore(2 * workers)
        new_sizer = (lambda: GzipSizer(pool, slots)) if estimate_compressed else None
        scan = _scan_stream(stream, known, new_sizer)
        for diff_id, total in scan.pending_sizes.items():
            scan.layers[diff_id].compressed_estimate_bytes = total()
    dirs = _check_manifest(scan, diff_ids)
    _remember(cache, scan, dirs)

    stack = [scan.layers[d] for d in diff_ids]
    listings = [layer.entries for layer in stack]
    root = merge(listings)
    per_layer = [layer.summary() for layer in stack]
    result = {
        "image_id": attrs["Id"],
        "layer_count": len(stack),
        "layers": per_layer,
        "layers_size_bytes": sum(layer["size_bytes"] for layer in per_layer),
        **waste(listings, root),
        **dive_waste(listings),
        **describe(root, [layer.captured for layer in stack], app_dir=app_dir,
                   dev_dependencies=app_dev_dependencies,
                   search_path=_image_path((attrs.get("Config") or {}).get("Env"))),
        "compressed_estimate_bytes": (sum(layer["compressed_estimate_bytes"] for layer in per_layer)
                                      if estimate_compressed else None),
        "cache_hits": scan.cache_hits,
        "workers": workers,
        "saved_bytes_streamed": stream.bytes_read,
    }
    result["seconds"] = time.perf_counter() - start
    return result
