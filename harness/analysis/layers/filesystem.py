"""The merged filesystem of a stack of layers, and the bytes no path shows any more.

Each layer's whiteouts act on the layers below (`.wh.<name>` deletes a path, `.wh..wh..opq`
empties a directory), then its entries land. A regular file and its hard links share one
inode: (stack index, path) of the copy whose bytes they show.

Waste: a file copy is wasted when no visible path reaches it any more (a later layer
overwrote its path, deleted it or hid its directory). The copy still visible is never
counted, so `files_bytes + wasted_bytes == layers_files_bytes`, and `efficiency` is the share
of the bytes shipped that the final filesystem shows (1.0 when nothing is wasted).
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .model import DIR, FILE, FILE_KINDS, LINK, OPAQUE, SYMLINK, WHITEOUT, Entry

SYMLINK_HOPS = 40  # Linux's limit
TOP_WASTED = 10


@dataclass(slots=True)  # one per path of the image: no per-object __dict__
class Node:
    entry: Entry | None = None  # None: a directory no layer listed itself
    inode: tuple[int, str] | None = None
    content: Entry | None = None  # the regular-file entry whose bytes this node shows
    children: dict[str, Node] | None = None

    @property
    def kind(self) -> str:
        return self.entry.kind if self.entry else DIR


def lookup(root: Node, path: str) -> Node | None:
    node = root
    for name in path.split("/") if path else ():
        node = node.children.get(name) if node.children else None
        if node is None:
            return None
    return node


def _directory(root: Node, path: str) -> Node:
    """The directory at `path`, made (over whatever was there) if missing."""
    node = root
    for part in path.split("/") if path else ():
        nxt = node.children.get(part)
        if nxt is None or nxt.children is None:
            nxt = node.children[part] = Node(children={})
        node = nxt
    return node


def _whiteouts(root: Node, entries: list[Entry]) -> None:
    for entry in entries:
        if entry.kind == WHITEOUT:
            parent = lookup(root, posixpath.dirname(entry.path))
            if parent is not None and parent.children:
                parent.children.pop(posixpath.basename(entry.path), None)
        elif entry.kind == OPAQUE:
            node = lookup(root, entry.path)
            if node is not None and node.children is not None:
                node.children = {}


def _land(root: Node, index: int, entries: list[Entry]) -> None:
    for entry in entries:
        kind = entry.kind
        if kind in (WHITEOUT, OPAQUE):
            continue
        head, _, name = entry.path.rpartition("/")
        children = _directory(root, head).children
        old = children.get(name)
        if kind == DIR:  # a directory over a directory keeps what it holds
            keep = old.children if old is not None and old.children is not None else {}
            children[name] = Node(entry, children=keep)
        elif kind == FILE:
            children[name] = Node(entry, (index, entry.path), entry)
        elif kind == LINK:
            target = lookup(root, entry.target)
            children[name] = Node(entry, target.inode, target.content) if target else Node(entry)
        else:
            children[name] = Node(entry)


def merge(layers: list[list[Entry]]) -> Node:
    """The final filesystem of the stack, bottom layer first."""
    root = Node(children={})
    for index, entries in enumerate(layers):
        _whiteouts(root, entries)
        _land(root, index, entries)
    return root


def walk(node: Node, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Every path below `node` with its node, depth first (a directory before what it holds)."""
    stack = [(prefix, iter((node.children or {}).items()))]
    while stack:
        base, items = stack[-1]
        for name, child in items:
            path = f"{base}/{name}"
            yield path, child
            if child.children:
                stack.append((path, iter(child.children.items())))
                break
        else:
            stack.pop()


def visible_files(root: Node) -> list[Node]:
    """The regular files and hard links the final filesystem shows, in the order of `walk`."""
    return [node for _, node in walk(root) if node.entry is not None and node.entry.kind in FILE_KINDS]


def waste(layers: list[list[Entry]], files: list[Node]) -> dict:
    """Bytes of copies that no visible path reaches any more, and the biggest of them."""
    every = {(i, e.path): e.size for i, entries in enumerate(layers) for e in entries if e.kind == FILE}
    seen = {node.inode for node in files if node.inode is not None}
    lost = [(size, key) for key, size in every.items() if key not in seen and size]
    total = sum(every.values())
    wasted = sum(size for size, _ in lost)
    return {
        "layers_files_bytes": total,
        "wasted_bytes": wasted,
        "efficiency": (total - wasted) / total if total else 1.0,
        "top_wasted": [{"path": "/" + path, "layer_index": i, "bytes": size}
                       for size, (i, path) in sorted(lost, reverse=True)[:TOP_WASTED]],
    }


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
        node = trail[-1].children.get(name) if trail[-1].children else None
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


def is_file(node: Node | None) -> bool:
    return node is not None and node.kind in FILE_KINDS
