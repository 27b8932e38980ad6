"""dive's accounting (0.13), worked out the plain way from layer listings: the oracle the
layer analysis and its tests are checked against, and what `dive --ci --json` reports.

dive works on the leaf nodes of each layer's tree: every path that is a leaf in two or
more layers adds ALL its copies to `wastedBytes`, the kept one included (dive issue 684);
a whiteout adds 0 for a file, the deleted subtree for a directory, and opaque markers are
ignored. Its score is the sum over paths of the smallest copy divided by the sum of all
copies. Where dive meets a whiteout for a path no lower layer has, it stops reading that
layer; here the whiteout counts 0 and reading goes on.
"""

from __future__ import annotations

from harness.analysis.layers.model import DIR, OPAQUE, WHITEOUT, Entry


def dive_layer(entries: list[Entry]) -> tuple[dict[str, tuple[bool, int]], list[str], set[str]]:
    """One layer as dive's tree holds it: path -> (is_dir, size), its whiteouts, and the paths
    that are some node's parent. Directories made for a path's parents carry no payload."""
    nodes: dict[str, tuple[bool, int]] = {}
    whiteouts: list[str] = []
    parents: set[str] = set()
    for e in entries:
        head = e.path.rpartition("/")[0]
        parents.add(head)
        while head and head not in nodes:
            nodes[head] = (False, 0)
            head = head.rpartition("/")[0]
            parents.add(head)
        if e.kind == WHITEOUT:
            whiteouts.append(e.path)
        elif e.kind == OPAQUE:
            if e.path:
                nodes.setdefault(e.path, (False, 0))
        else:
            nodes[e.path] = (e.kind == DIR, e.size)
    return nodes, whiteouts, parents


def dive_waste(stack: list[list[Entry]]) -> dict:
    """dive's wastedBytes and efficiency score of a stack of layer listings."""
    copies: dict[str, list[int]] = {}
    below: dict[str, tuple[bool, int]] = {}
    for entries in stack:
        nodes, whiteouts, parents = dive_layer(entries)
        for path, (_, size) in nodes.items():
            if path not in parents:
                copies.setdefault(path, []).append(size)
        for path in whiteouts:
            removed = 0
            if below.get(path, (False, 0))[0]:
                removed = sum(size for p, (_, size) in below.items() if p.startswith(path + "/"))
            copies.setdefault(path, []).append(removed)
        for path in whiteouts:
            for p in [p for p in below if p == path or p.startswith(path + "/")]:
                del below[p]
        below.update(nodes)
    cumulative = sum(sum(sizes) for sizes in copies.values())
    several = [sizes for sizes in copies.values() if len(sizes) > 1]
    smallest = cumulative - sum(sum(sizes) - min(sizes) for sizes in several)
    return {"dive_wasted_bytes": sum(sum(sizes) for sizes in several),
            "dive_efficiency": smallest / cumulative if cumulative else 1.0}
