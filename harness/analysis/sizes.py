"""One definition of an image's size, the same on every engine and image store.

`size_bytes`, the headline "Final size": the bytes of the files in the image's layers
(regular files, a hard link once, a symlink by the length of its target), summed over the
layers, counted from the layer tars. The same layers give the same figure on every engine.
It is what `docker image inspect` (`.Size`), `docker history` and `docker images` show on
Docker's graph-driver stores (overlay2, Docker 20.10 to 28 without the containerd store).
Elsewhere the engine's own figures mean something else, and are kept beside it:

- `inspect_size_bytes`, `.Size` as this engine says it. On the containerd image store (the
  default of Docker 29's fresh installs) the content store's bytes: each layer blob as
  stored (gzip-compressed after a build or pull) plus config and manifest. On Podman the
  uncompressed layer tars plus config and manifest.
- `listed_size_bytes`, the SIZE column of `docker images`: on the containerd store the
  content store plus the unpacked snapshots' disk usage (4 KiB blocks).
- `layers_tar_bytes`, the uncompressed layer tars (what each diff id hashes).
- `compressed_size_bytes`, what a registry stores (from the push's manifest).

`docker history` sizes differ the same way (the snapshot's disk usage on the containerd
store, the layer tar on Podman); each history entry gets its layer's file bytes, its
engine figure kept as `engine_size_bytes`, so attribution reads the same on every engine.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.model import Engine

GRAPH_DRIVERS = ("overlay2", "overlay", "aufs", "btrfs", "zfs", "vfs", "devicemapper", "fuse-overlayfs")

STORE_NOTES = {
    "graph": "`docker images` shows the final size itself",
    "containerd": ("`docker images` counts the content store (compressed layer blobs) plus the "
                   "unpacked snapshots, so it shows more than the final size"),
    "podman": "`podman images` counts the uncompressed layer tars plus config and manifest",
}


def _facts(engine: Engine | dict | None) -> dict:
    """The engine as harness.engine.describe writes it: the runner has that dict, the
    reports the typed `model.Engine` of the same fields."""
    if engine is None:
        return {}
    return dataclasses.asdict(engine) if dataclasses.is_dataclass(engine) else engine


def store_kind(engine: Engine | dict | None) -> str:
    """graph (Docker's graph drivers), containerd (Docker's containerd image store) or podman."""
    engine = _facts(engine)
    product = str(engine.get("product") or "")
    if "podman" in product.lower() or "podman" in str(engine.get("os") or "").lower():
        return "podman"
    store = str(engine.get("store") or "")
    driver = str(engine.get("storage_driver") or "")
    if "containerd" in store or driver in ("overlayfs", "stargz", "native") or driver.startswith("io.containerd"):
        return "containerd"
    return "graph"


def engine_independent(image: dict, contents: dict | None, engine: dict | None) -> dict:
    """`image` (measure_image's record) with the size defined above: from the layer analysis
    when it ran, else the engine's `.Size` where that is the same figure (a graph-driver
    store), else the engine's figure marked as such (`size_basis`)."""
    out = dict(image)
    out.setdefault("inspect_size_bytes", image.get("size_bytes"))
    layers = (contents or {}).get("layers") if contents and not contents.get("error") else None
    if layers is not None and len(layers) == image.get("layer_count"):
        out["size_bytes"] = sum(layer["size_bytes"] for layer in layers)
        out["layers_tar_bytes"] = sum(layer["tar_bytes"] for layer in layers)
        out["size_basis"] = "layers"
        out["history"] = _history(image.get("history") or [], layers, contents.get("history_empty_layers"))
    else:
        out["size_bytes"] = out["inspect_size_bytes"]
        out["size_basis"] = "inspect" if store_kind(engine) == "graph" else "inspect (this engine's figure)"
    return out


def _history(history: list[dict], layers: list[dict], empty: list[bool] | None) -> list[dict]:
    """Each entry that made a layer gets that layer's file bytes; an empty one 0. Matched by
    the image config's `empty_layer` flags, which every engine writes; left as the engine
    gave them when the config and the history do not line up."""
    if not empty or len(empty) != len(history) or empty.count(False) != len(layers):
        return history
    sizes = iter(layer["size_bytes"] for layer in layers)
    return [{**h, "engine_size_bytes": h.get("size_bytes"), "size_bytes": 0 if e else next(sizes)}
            for h, e in zip(history, empty)]


def base_size(base: dict, layers: list[dict] | None) -> dict:
    """A FROM record with the base's size the same way: its layers are the image's bottom ones."""
    count = base.get("layer_count")
    if not layers or count is None or count > len(layers) or base.get("size_bytes") is None:
        return base
    return {**base, "engine_size_bytes": base.get("size_bytes"),
            "size_bytes": sum(layer["size_bytes"] for layer in layers[:count])}


def engine_label(engine: Engine | dict | None) -> str:
    """Which engine and store a figure came from, in a few words."""
    engine = _facts(engine)
    kind = store_kind(engine)
    product = engine.get("product") or ("Podman" if kind == "podman" else "Docker Engine")
    store = {"graph": f"{engine.get('storage_driver') or '?'} store",
             "containerd": "containerd image store",
             "podman": f"{engine.get('storage_driver') or '?'} storage"}[kind]
    return f"{product} {engine.get('server_version') or '?'}, {store}"


def mb(size: int | None) -> str:
    """SI units, three significant digits, as `docker images` prints them."""
    if size is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"
