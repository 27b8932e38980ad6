"""What an image's layers hold, read from one pass over the engine's export of it.

`analyze_image` streams `docker save` through the SDK's public `get_image` (nothing written
to disk, memory growing with the number of files, never with their bytes), reads every layer
as it comes (archive: every layout an engine writes; tarparse: the tar reader, fed in
pieces, headers read by the standard library), then stacks the layers in the manifest's
order (filesystem: the merged tree and the waste; contents: what the final filesystem shows)
and, on a thread pool while the stream is read, estimates what a registry would store
(estimate).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import docker

from ...errors import HarnessError
from . import archive
from .contents import describe
from .estimate import GzipSizer
from .filesystem import merge, visible_files, waste
from .model import LayerIndex
from .tarparse import LayerParser

SAVE_CHUNK_BYTES = 1 << 20

__all__ = ["analyze_image", "analyze_archive", "LayerIndex"]


class _Layers:
    """The layers read from one stream, by member name; the gzip estimates pending."""

    def __init__(self, pool: ThreadPoolExecutor | None, slots: threading.Semaphore, verify: bool,
                 known: Callable[[str], bool]):
        self.pool, self.slots, self.verify, self.known = pool, slots, verify, known
        self.read: dict[str, LayerIndex] = {}
        self.sizers: dict[str, GzipSizer] = {}
        self.hashes: dict[str, Callable[[], str]] = {}

    def __call__(self, name: str, size: int, kind: str):
        """The sink of one layer member (None: known from before, skipped)."""
        if self.known(name):
            return None
        parser = LayerParser(f"layer tar {name}")
        sinks = [parser.feed]
        sizer = None
        if self.pool is not None and kind == archive.TAR:
            sizer = GzipSizer(self.pool, self.slots, size)
            sinks.append(sizer.feed)
        if self.verify:
            update, self.hashes[name] = archive.sha256_sink()
            sinks.append(update)
        count = [0]

        def tar_piece(piece) -> None:
            count[0] += len(piece)
            for sink in sinks:
                sink(piece)

        inflater = archive.Inflater(kind, tar_piece)

        def close() -> None:
            parser.close()
            layer = LayerIndex("", parser.entries, parser.captured, count[0], size, kind)
            if sizer is not None:
                sizer.finish()
                self.sizers[name] = sizer
                layer.compressed_sampled_bytes = sizer.sampled
            elif self.pool is not None:  # kept compressed: a registry stores this blob as it is
                layer.compressed_estimate_bytes = size
                layer.compressed_sampled_bytes = count[0]
            self.read[name] = layer
        return inflater.feed, close


def analyze_image(client: docker.DockerClient, image_id: str, **options) -> dict:
    """Everything above about one image, from one pass over its save stream (the SDK's
    public `get_image`); `options` are analyze_archive's."""
    start = time.perf_counter()
    attrs = client.api.inspect_image(image_id)
    return analyze_archive(client.api.get_image(image_id, chunk_size=SAVE_CHUNK_BYTES), attrs,
                           start=start, **options)


def analyze_archive(chunks: Iterable[bytes], attrs: dict, *,
                    app_dev_dependencies: Iterable[str] = frozenset(),
                    estimate_compressed: bool = True, workers: int | None = None,
                    cache: dict[str, LayerIndex] | None = None, app_dir: str = "/app",
                    verify_diff_ids: bool = False, start: float | None = None) -> dict:
    """The analysis of an image archive streamed as `chunks`, `attrs` being the image's
    inspect answer (its id, RootFS diff ids and config env).

    `cache` (archive member name -> LayerIndex), shared across calls on one engine in a run,
    skips layers read before: every layout names a layer's member by its content (OCI,
    Podman) or by its chain (the legacy layout), so the same name holds the same bytes.
    `verify_diff_ids` hashes each uncompressed layer and fails when it is not the diff id
    the image config gives it (the engine checks it as it exports, so off by default)."""
    start = time.perf_counter() if start is None else start
    first_byte: list[float] = []
    diff_ids = list((attrs.get("RootFS") or {}).get("Layers") or [])
    workers = workers or os.cpu_count() or 1
    cache = {} if cache is None else cache
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gzip") if estimate_compressed else None

    def known(name: str) -> bool:
        layer = cache.get(name)
        return layer is not None and (not estimate_compressed or layer.compressed_estimate_bytes is not None)

    layers = _Layers(pool, threading.Semaphore(2 * workers), verify_diff_ids, known)

    try:
        saved, streamed = archive.read_archive(
            chunks, layers,
            on_first=lambda: first_byte.append(time.perf_counter()))
        stream_end = time.perf_counter()
        order = saved.layer_order()
        stack = _stack(order, diff_ids, layers, cache)
        contents = _contents(stack, attrs, app_dir, app_dev_dependencies)
        contents_done = time.perf_counter()
        for name, sizer in layers.sizers.items():
            layers.read[name].compressed_estimate_bytes = sizer.total()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    cache.update(layers.read)
    hits = len(set(order) - set(layers.read))
    history = saved.config().get("history") or []
    contents["history_empty_layers"] = [bool(h.get("empty_layer")) for h in history]
    timings = {
        "first_byte": first_byte[0] - start if first_byte else None,
        "stream_end": stream_end - start,
        "contents_done": contents_done - start,
    }
    return _result(attrs, stack, contents, saved.layout(), streamed, hits, estimate_compressed,
                   verify_diff_ids, workers, app_dir, timings, start)


def _stack(order: list[str], diff_ids: list[str], layers: _Layers,
           cache: dict[str, LayerIndex]) -> list[LayerIndex]:
    """The layers in the manifest's order, each given its diff id; fails when the archive
    and RootFS disagree on the count, a layer is missing, or (verifying) its hash differs."""
    if len(order) != len(diff_ids):
        raise HarnessError(f"the archive's manifest lists {len(order)} layers, RootFS {len(diff_ids)}")
    stack = []
    for name, diff_id in zip(order, diff_ids):
        layer = layers.read.get(name) or cache.get(name)
        if layer is None:
            raise HarnessError(f"the image archive lacks layer {name} ({diff_id[:19]})")
        if name in layers.hashes and layers.hashes[name]() != diff_id:
            raise HarnessError(f"{name} holds {layers.hashes[name]()}, RootFS says {diff_id}")
        layer.diff_id = diff_id
        stack.append(layer)
    return stack


def _contents(stack: list[LayerIndex], attrs: dict, app_dir: str,
              dev_dependencies: Iterable[str]) -> dict:
    """The waste across the stacked layers and what the final filesystem holds."""
    listings = [layer.entries for layer in stack]
    root = merge(listings)
    files = visible_files(root)
    return {
        **waste(listings, files),
        **describe(root, files, [layer.captured for layer in stack], app_dir=app_dir,
                   dev_dependencies=dev_dependencies, env=(attrs.get("Config") or {}).get("Env")),
    }


def _result(attrs: dict, stack: list[LayerIndex], contents: dict, layout: str, streamed: int,
            hits: int, estimated: bool, verified: bool, workers: int, app_dir: str,
            timings: dict, start: float) -> dict:
    per_layer = [layer.summary(app_dir) for layer in stack]
    unique = list({layer.diff_id: layer for layer in stack}.values())  # a repeated layer is pushed once
    sampled = sum(layer.compressed_sampled_bytes or 0 for layer in unique)
    tar_total = sum(layer.tar_bytes for layer in unique)
    end = time.perf_counter()
    return {
        "image_id": attrs["Id"],
        "archive_layout": layout,
        "layer_count": len(stack),
        "layers": per_layer,
        "layers_size_bytes": sum(layer["size_bytes"] for layer in per_layer),
        "layers_tar_bytes": sum(layer["tar_bytes"] for layer in per_layer),
        **contents,
        "compressed_estimate_bytes": (sum(layer["compressed_estimate_bytes"] for layer in per_layer)
                                      if estimated else None),
        "compressed_estimate_sampled": (any(layer["compressed_estimate_sampled"] for layer in per_layer)
                                        if estimated else None),
        "compressed_estimate_fraction": (sampled / tar_total if tar_total else 1.0) if estimated else None,
        "cache_hits": hits,
        "workers": workers,
        "diff_ids_verified": verified,
        "saved_bytes_streamed": streamed,
        "timings": {**timings, "estimate_done": end - start},
        "seconds": end - start,
    }
