"""What a registry would store for a layer: the length of its gzip stream at level 6.

The engine pushes each layer gzip-compressed with Go's compress/gzip at its default level;
zlib-ng at level 6 comes within 0.1 % of it, several times faster than zlib. A layer up to
SAMPLE_TARGET_BYTES is compressed whole, in 1 MiB blocks on a thread pool, each primed with
the 32 KiB before it (within bytes of one serial stream). A larger layer is sampled: cut into
strata of `stride` 32 KiB blocks, one block per stratum, at a fixed pseudo-random place,
compressed primed with the 32 KiB before it, the deflated bytes scaled by the layer's bytes.
Evenly spaced blocks alias with the periodic structure of large binaries (on node's 165 MB
layer every 8th block erred by 1.8 %, one random block in every 8 by 1.1 %).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from zlib_ng import zlib_ng

GZIP_LEVEL = 6  # Go's compress/gzip default, what the engine pushes with
GZIP_FRAMING_BYTES = 18  # gzip header (10) and trailer (8) around the deflate stream
WINDOW_BYTES = 32 << 10
WHOLE_BLOCK_BYTES = 1 << 20
SAMPLE_BLOCK_BYTES = 32 << 10
SAMPLE_TARGET_BYTES = 48 << 20  # a layer up to this is compressed whole; a larger one sampled


def _deflated_length(prime: bytes, block: bytes) -> int:
    packer = (zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, -15, zdict=prime) if prime
              else zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, -15))
    return len(packer.compress(block)) + len(packer.flush())


def pick(stratum: int, stride: int) -> int:
    """The block of a stratum that is sampled: fixed, spread, not periodic."""
    x = (stratum * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    return (x ^ (x >> 29)) % stride


class GzipSizer:
    """Fed a layer's bytes in order (`feed`); `total()` is the estimate once all came.
    Blocks are compressed on `pool`; `slots` bounds the blocks waiting, so memory stays flat."""

    def __init__(self, pool: ThreadPoolExecutor, slots: threading.Semaphore, size: int):
        self.pool, self.slots, self.size = pool, slots, size
        if size <= SAMPLE_TARGET_BYTES:
            self.block, self.stride = WHOLE_BLOCK_BYTES, 1
        else:
            self.block = SAMPLE_BLOCK_BYTES
            self.stride = -(-size // SAMPLE_TARGET_BYTES)  # 24-48 MiB compressed
        self.buffer = bytearray()
        self.prime = b""
        self.index = 0
        self.sampled = 0
        self.futures: list[Future] = []

    def feed(self, data) -> None:
        self.buffer += data
        while len(self.buffer) >= self.block:
            self._block(bytes(self.buffer[:self.block]))
            del self.buffer[:self.block]

    def _block(self, block: bytes) -> None:
        stratum, place = divmod(self.index, self.stride)
        if self.stride == 1 or place == pick(stratum, self.stride):
            self.slots.acquire()
            future = self.pool.submit(_deflated_length, self.prime, block)
            future.add_done_callback(lambda _: self.slots.release())
            self.futures.append(future)
            self.sampled += len(block)
        self.prime = block[-WINDOW_BYTES:]
        self.index += 1

    def finish(self) -> None:
        if self.buffer:
            self._block(bytes(self.buffer))
            self.buffer = bytearray()

    def total(self) -> int:
        """The estimated gzip length (waits for the blocks still compressing)."""
        deflated = sum(f.result() for f in self.futures)
        if self.sampled and self.sampled < self.size:
            deflated = round(deflated * self.size / self.sampled)
        return deflated + GZIP_FRAMING_BYTES
