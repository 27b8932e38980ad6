"""What an image's layers hold, read from one pass over its `docker save` stream.

The stream is parsed as it arrives by a push parser (`TarParser`, fed the pieces the
engine sends; each layer.tar parsed by a nested one from 1 MiB blocks): nothing is
written to disk, member data is never copied but for those blocks, and memory grows
with the number of files, never with their bytes. A C thread drains the socket into a
bounded ring (harness.save_stream), and the parse runs on a thread of lower priority:
the engine's export keeps a core and never waits for the parse. What a layer shows on
its own (dive's view of it, its tree as the bottom of a stack) is gathered as its
blocks come, so that little is left after the last byte. Each layer gets the diff id RootFS
gives its position in the save's manifest (the engine verified it while exporting;
`verify_diff_ids` hashes it again) and is stacked in the order of `RootFS.Layers`.

Compressed size. `compressed_estimate_bytes` is what a registry would store: the length
of the layer's gzip stream at level 6. A layer up to SAMPLE_TARGET_BYTES (48 MiB) is
compressed whole (in 1 MiB blocks on a thread pool, each primed with the 32 KiB before
it: within bytes of a serial stream). A larger one is sampled: cut into strata of
`stride` blocks of 32 KiB, with `stride` chosen so that about 24-48 MiB are compressed,
one block per stratum, at a fixed pseudo-random place, is compressed primed with the
32 KiB before it, and the deflated bytes are scaled by the layer's bytes. Evenly spaced
blocks (every n-th) alias with the periodic structure of large binaries: on node's
165 MB layer, every 8th 64 KiB block erred by 1.8 % (rms over offsets), one random block
in every 8 by 1.1 %. Each layer says whether it was sampled and what fraction was
compressed (`compressed_estimate_sampled`, `compressed_estimate_fraction`).

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

import gc
import hashlib
import json
import os
import posixpath
import re
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple
from zlib import adler32

import docker
import xxhash
from xxhash import xxh3_128_digest
from zlib_ng import zlib_ng

from .errors import HarnessError
from .save_stream import save_stream

try:  # the C parse of plain members (harness/_tarscan.c), built at install when a compiler is there
    from . import _tarscan
except ImportError:
    _tarscan = None

GZIP_LEVEL = 6  # what the engine pushes with: Go's compress/gzip default
GZIP_FRAMING_BYTES = 18  # gzip header (10) and trailer (8) around the deflate stream
DEFLATE_WINDOW_BYTES = 32 * 1024
BLOCK_BYTES = 1 << 20  # unit of work: hashed, sized and parsed a block at a time
SAMPLE_BLOCK_BYTES = 32 * 1024  # what a sampled estimate compresses at a time
SAMPLE_TARGET_BYTES = 48 << 20  # a layer up to this is compressed whole; a larger one sampled
READ_BYTES = 128 * 1024
HASH_SLOTS = 16  # blocks queued for the hashing thread
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
_FILE_KINDS = (FILE, LINK)  # what shows a regular file's bytes


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
    compressed_sampled_bytes: int | None = None  # bytes of the layer the estimate compressed
    dive: _DiveLayer | None = None  # dive's view of it, when gathered as it streamed
    file_sizes: dict[str, int] | None = None  # file_sizes(entries), when gathered as it streamed
    dive_leaves: dict[str, int] | None = None  # dive_leaves(dive), likewise

    def summary(self, app_dir: str = "/app") -> dict:
        """The layer's figures. Its `size_bytes` (what the engine counts: regular files, and
        symlinks by their target's length) is split by path: `node_modules_bytes` anything
        with a node_modules directory in its path, `app_bytes` the rest under `app_dir`,
        `other_bytes` everything else; the three add up to `size_bytes`."""
        app = app_dir.strip("/")
        app_prefix = app + "/" if app else ""
        files = links = modules = in_app = 0
        file_count = whiteouts = 0
        for e in self.entries:
            kind = e.kind
            if kind == FILE:
                size = e.size
                files += size
                file_count += 1
            elif kind == SYMLINK:
                size = len(e.target.encode("utf-8", "surrogateescape"))  # as tarfile decoded it
                links += size
            else:
                if kind == LINK:
                    file_count += 1
                elif kind in (WHITEOUT, OPAQUE):
                    whiteouts += 1
                continue
            path = e.path
            if "node_modules" in path and "/node_modules/" in f"/{path}/":
                modules += size
            elif path.startswith(app_prefix):
                in_app += size
        size = files + links
        return {
            "diff_id": self.diff_id,
            "size_bytes": size,
            "files_bytes": files,
            "tar_bytes": self.tar_bytes,
            "file_count": file_count,
            "whiteout_count": whiteouts,
            "compressed_estimate_bytes": self.compressed_estimate_bytes,
            "compressed_estimate_sampled": (None if self.compressed_sampled_bytes is None
                                            else self.compressed_sampled_bytes < self.tar_bytes),
            "compressed_estimate_fraction": (None if self.compressed_sampled_bytes is None else
                                             self.compressed_sampled_bytes / self.tar_bytes
                                             if self.tar_bytes else 1.0),
            "node_modules_bytes": modules,
            "app_bytes": in_app,
            "other_bytes": size - modules - in_app,
        }


# ---------------------------------------------------------------- streaming


class Member(NamedTuple):
    """A tar member's header, with pax and GNU long-name records applied."""
    name: str
    type: bytes  # the one-byte typeflag
    size: int
    mode: int
    linkname: str


Sink = tuple[Callable[[memoryview], object], Callable[[], object] | None]

_ZERO_BLOCK = bytes(512)
_REGULAR_TYPES = frozenset((b"0", b"\0", b"7", b"S"))  # S: old GNU sparse, read as stored
_NO_DATA_TYPES = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))  # their size field is ignored
_EXTENDED_TYPES = frozenset((b"x", b"g", b"L", b"K"))  # pax, pax global, GNU long name/link
# name, mode, size, chksum, typeflag, linkname, magic, prefix (uid, gid, mtime, version,
# uname, gname and device numbers skipped)
_HEADER = struct.Struct("100s8s16x12s12x8sc100s6s2x32x32x8x8x155s12x")


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 (GNU) for large values."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0o377 else value
    text = field.partition(b"\0")[0]
    try:
        return int(text, 8)  # int() skips the spaces some writers pad with
    except ValueError:
        if not text.strip():
            return 0
        raise HarnessError(f"bad number in a tar header: {text[:20]!r}") from None


def _pax_records(data: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records of a pax extended header."""
    records = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        if length <= 0:
            break
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarParser:
    """A tar archive read from pieces of any size, pushed in with `feed`: no file object, no
    copy of member data.

    For each member, `on_member(member, data)` is called: `data` is the member's whole
    content (a memoryview of the piece fed) when the piece holds all of it, else None, and
    the call may then return a sink, (write, close), that gets the content as it comes in
    slices (or None to skip it).

    Reads ustar and GNU headers, pax (`x`, `g`) path/linkpath/size records and GNU long
    names, the way tarfile does; stops at the first zero block and ignores what follows."""

    def __init__(self, on_member: Callable[[Member, memoryview | None], Sink | None],
                 fast: Callable[[memoryview, int], int] | None = None):
        self._on_member = on_member
        self._fast = fast  # takes what plain members it can from a position, returns where it stopped
        self._header = bytearray()
        self._remaining = 0
        self._pad = 0
        self._write: Callable[[memoryview], object] | None = None
        self._close: Callable[[], object] | None = None
        self._global: dict[str, str] = {}
        self._next: dict[str, str] = {}
        self.done = False

    def feed(self, data) -> None:
        mv = data if isinstance(data, memoryview) else memoryview(data)
        pos, end = 0, len(mv)
        while pos < end:
            if self._remaining:
                take = min(self._remaining, end - pos)
                if self._write is not None:
                    self._write(mv[pos:pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._end_member()
            elif self._pad:
                take = min(self._pad, end - pos)
                pos += take
                self._pad -= take
            elif self.done:
                return
            elif self._header or end - pos < 512:
                take = min(512 - len(self._header), end - pos)
                self._header += mv[pos:pos + take]
                pos += take
                if len(self._header) == 512:
                    block = bytes(self._header)
                    self._header.clear()
                    self._start_member(block, mv, pos)
            else:
                if self._fast is not None and not self._next and not self._global:
                    stop = self._fast(mv, pos)
                    if stop != pos:
                        pos = stop
                        continue
                pos += 512
                self._start_member(mv[pos - 512:pos].tobytes(), mv, pos)

    def finish(self) -> None:
        """Checks that the archive did not stop inside a header or a member's data."""
        if self._remaining or self._header:
            raise HarnessError("a tar stream ends inside a member")

    def _start_member(self, block: bytes, mv: memoryview, pos: int) -> None:
        if block == _ZERO_BLOCK:
            self.done = True
            return
        (name, mode, size, chksum, kind, linkname, magic, prefix) = _HEADER.unpack_from(block)
        # The checksum is the byte sum with its own field read as spaces. Adler-32's low half
        # is 1 + that sum mod 65521, in C: a misaligned read fails it, at a tenth of sum()'s cost.
        stored = _number(chksum)
        if (adler32(block) & 0xFFFF) != (stored + sum(chksum) - 255) % 65521:
            unsigned = sum(block) - sum(chksum) + 256
            if stored != unsigned and stored != unsigned - 256 * sum(
                    b > 127 for b in block[:148] + block[156:]):
                raise HarnessError("bad checksum in a tar header")
        size = _number(size)
        if kind in _EXTENDED_TYPES:
            self._begin(size, *self._extended(kind))
            return
        info = {**self._global, **self._next} if self._global or self._next else None
        self._next = {}
        name = _text(name)
        if magic == b"ustar\0" and prefix[0] and kind != b"S":
            name = _text(prefix) + "/" + name
        linkname = _text(linkname)
        if info:
            name = info.get("path", name)
            linkname = info.get("linkpath", linkname)
            if "size" in info:
                size = int(info["size"])
        if kind == b"\0" and name.endswith("/"):
            kind = b"5"
        if kind in _NO_DATA_TYPES:
            size = 0
        member = Member(name, kind, size, _number(mode), linkname)
        if size and pos + size <= len(mv):
            self._on_member(member, mv[pos:pos + size])
            self._begin(size, None, None)
            return
        sink = self._on_member(member, None)
        write, close = sink if sink is not None else (None, None)
        self._begin(size, write, close)

    def _begin(self, size: int, write, close) -> None:
        self._write, self._close = write, close
        self._remaining = size
        self._pad = -size % 512
        if not size:
            self._end_member()

    def _end_member(self) -> None:
        close = self._close
        self._write = self._close = None
        if close is not None:
            close()

    def _extended(self, kind: bytes) -> Sink:
        data = bytearray()

        def close() -> None:
            if kind == b"x":
                self._next.update(_pax_records(bytes(data)))
            elif kind == b"g":
                self._global.update(_pax_records(bytes(data)))
            else:
                self._next["path" if kind == b"L" else "linkpath"] = _text(bytes(data))
        return data.extend, close


def _deflated_length(block, zdict, final: bool) -> int:
    comp = zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, -15, 8,
                               zlib_ng.Z_DEFAULT_STRATEGY, zdict)
    size = len(comp.compress(block))
    return size + len(comp.flush(zlib_ng.Z_FINISH if final else zlib_ng.Z_SYNC_FLUSH))


def _sampled_length(block, spans: list[tuple[int, int]], tail: bytes) -> int:
    """The deflated length of the spans of `block`, each primed with the 32 KiB before it."""
    total = 0
    for start, end in spans:
        if start >= DEFLATE_WINDOW_BYTES:
            zdict = block[start - DEFLATE_WINDOW_BYTES:start]
        else:
            zdict = (tail + bytes(block[:start]))[-DEFLATE_WINDOW_BYTES:]
        total += _deflated_length(block[start:end], zdict, False)
    return total


def _pick(stratum: int, stride: int) -> int:
    """A fixed pseudo-random position in a stratum of `stride` sample blocks (an integer hash:
    the same layer always gets the same sample)."""
    h = (stratum * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    h = ((h ^ (h >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    return (h ^ (h >> 16)) % stride


class GzipSizer:
    """The length of a layer's gzip stream at level 6, as a registry would store it.

    Whole (`stride` 1): the layer is cut into 1 MiB blocks compressed on a thread pool
    (zlib-ng releases the GIL), each primed with the 32 KiB before it as pigz does, so the
    length stays within bytes of a serial stream's. Sampled (a layer over
    SAMPLE_TARGET_BYTES): the layer is cut into strata of `stride` blocks of 32 KiB and one
    block per stratum, at a fixed pseudo-random place, is compressed the same way (primed
    with the 32 KiB before it); the estimate scales their deflated bytes by the layer's
    bytes. Only lengths are kept; `slots` bounds the blocks in flight, hence the memory.
    """

    def __init__(self, pool: ThreadPoolExecutor, slots: threading.Semaphore,
                 expected_bytes: int | None = None):
        self._pool = pool
        self._slots = slots
        self.stride = 1 if not expected_bytes or expected_bytes <= SAMPLE_TARGET_BYTES else (
            -(-expected_bytes // SAMPLE_TARGET_BYTES))
        self._pending = bytearray()
        self._tail = b""
        self._futures: list[Future] = []
        self.total_bytes = 0
        self.sampled_bytes = 0

    def feed(self, data) -> None:
        if not self._pending and len(data) == BLOCK_BYTES:
            self._block(data, final=False)
            return
        self._pending += data
        while len(self._pending) >= BLOCK_BYTES:
            block = bytes(self._pending[:BLOCK_BYTES])
            del self._pending[:BLOCK_BYTES]
            self._block(block, final=False)

    def finish(self) -> Callable[[], int]:
        """Submits the last block; the returned function waits for the estimate."""
        self._block(bytes(self._pending), final=True)
        self._pending = bytearray()
        futures, total, sampled = self._futures, self.total_bytes, self.sampled_bytes
        if self.stride == 1:
            return lambda: GZIP_FRAMING_BYTES + sum(f.result() for f in futures)
        return lambda: GZIP_FRAMING_BYTES + round(sum(f.result() for f in futures) * total / sampled)

    def _block(self, block, final: bool) -> None:
        start, n = self.total_bytes, len(block)
        if self.stride == 1:
            self._submit(_deflated_length, block, self._tail, final)
            self.sampled_bytes += n
        else:
            stride, unit = self.stride, SAMPLE_BLOCK_BYTES
            first, last = start // unit, (start + n - 1) // unit
            spans = []
            for stratum in range(first // stride, last // stride + 1):
                k = stratum * stride + _pick(stratum, stride)
                if first <= k <= last:
                    lo, hi = k * unit - start, min((k + 1) * unit - start, n)
                    spans.append((lo, hi))
                    self.sampled_bytes += hi - lo
            if spans:
                self._submit(_sampled_length, block, spans, self._tail)
        self.total_bytes += n
        self._tail = (self._tail + bytes(block[-DEFLATE_WINDOW_BYTES:]))[-DEFLATE_WINDOW_BYTES:]

    def _submit(self, fn, *args) -> None:
        self._slots.acquire()
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)


class _Hasher:
    """The sha256 of a stream of blocks, updated in order on the hashing thread (hashlib
    releases the GIL on large buffers), so the parse goes on meanwhile."""

    def __init__(self, pool: ThreadPoolExecutor, slots: threading.Semaphore):
        self._pool, self._slots = pool, slots
        self._sha = hashlib.sha256()
        self._last: Future | None = None

    def update(self, block) -> None:
        self._slots.acquire()
        self._last = self._pool.submit(self._sha.update, block)
        self._last.add_done_callback(lambda _: self._slots.release())

    def hexdigest(self) -> str:
        if self._last is not None:
            self._last.result()  # one worker: every earlier update is done too
        return self._sha.hexdigest()


def _norm(name: str) -> str:
    """A tar member name as a root-relative path: "./usr/bin/" -> "usr/bin"."""
    if "//" in name or "/." in name or name.startswith("."):
        return posixpath.normpath("/" + name).lstrip("/")
    return name.strip("/")  # nothing to normalise (the usual case): the fast way


def _entry(member: Member, digest: bytes = b"") -> Entry | None:
    path = _norm(member.name)
    if not path:
        return None
    head, _, base = path.rpartition("/")
    if base[:4] == ".wh.":
        if base == ".wh..wh..opq":
            return Entry(head, OPAQUE)
        return Entry(f"{head}/{base[4:]}" if head else base[4:], WHITEOUT)
    kind = member.type
    if kind in _REGULAR_TYPES:
        return Entry(path, FILE, member.size, member.mode, "", digest)
    if kind == b"5":
        return Entry(path, DIR, 0, member.mode)
    if kind == b"2":
        return Entry(path, SYMLINK, 0, member.mode, member.linkname)
    if kind == b"1":
        return Entry(path, LINK, 0, member.mode, _norm(member.linkname))
    return Entry(path, OTHER, 0, member.mode)


_KINDS = (FILE, LINK, SYMLINK, DIR, OTHER)  # the order _tarscan.scan takes them in
_KEPT = (APK_DB.encode(), DPKG_STATUS.encode())  # prefixes of every path _wants_content keeps


def _wants_content(path: str, size: int) -> bool:
    return size <= CAPTURE_LIMIT_BYTES and (
        path in (APK_DB, DPKG_STATUS) or path.startswith(DPKG_STATUS_DIR + "/"))


class _LayerParser:
    """The entries of one layer tar and the package databases' contents, from its bytes.

    Each regular file's content is hashed (xxh3-128, ~7 GB/s here against blake2b's 0.8)
    to find duplicates."""

    def __init__(self, fast: bool = True):
        self.entries: list[Entry] = []
        self.captured: dict[str, bytes] = {}
        self.open = 0  # 1 while the last entry's member streams: its digest is not final
        scan = _tarscan.scan if fast and _tarscan is not None else None
        self.parser = TarParser(self._member, None if scan is None else (
            lambda mv, pos: scan(mv, pos, self.entries, xxh3_128_digest, Entry, _KINDS, _KEPT)))

    def _member(self, member: Member, data: memoryview | None) -> Sink | None:
        whole = data is not None and member.type in _REGULAR_TYPES  # the usual case: no streaming state
        entry = _entry(member, xxh3_128_digest(data) if whole else b"")
        if entry is None:
            return None
        entries = self.entries
        keep = entry.kind == FILE and _wants_content(entry.path, entry.size)
        if whole or entry.kind != FILE or not entry.size:
            entries.append(entry)
            if whole and keep:
                self.captured[entry.path] = bytes(data)
            return None
        index = len(entries)
        entries.append(entry)
        self.open = 1
        digest = xxhash.xxh3_128()
        if not keep:
            def close() -> None:
                entries[index] = entry._replace(digest=digest.digest())
                self.open = 0
            return digest.update, close
        kept: list[bytes] = []

        def write_kept(piece) -> None:
            digest.update(piece)
            kept.append(bytes(piece))

        def close_kept() -> None:
            entries[index] = entry._replace(digest=digest.digest())
            self.captured[entry.path] = b"".join(kept)
            self.open = 0
        return write_kept, close_kept


def read_layer(fileobj) -> tuple[list[Entry], dict[str, bytes]]:
    """The entries of one layer tar read from a file object, and the package databases' contents."""
    layer = _LayerParser()
    for piece in iter(lambda: fileobj.read(READ_BYTES), b""):
        layer.parser.feed(piece)
    layer.parser.finish()
    return layer.entries, layer.captured


class _LayerReader:
    """One layer.tar as the save stream brings it: parsed piece by piece as it comes (here),
    and cut into 1 MiB blocks for what wants whole blocks: the diff id's hash when asked
    (hashing thread) and the size estimate (gzip threads)."""

    def __init__(self, hasher: _Hasher | None, sizer: GzipSizer | None, facts: _LayerFacts | None = None):
        self.layer = _LayerParser()
        self.facts = _LayerFacts() if facts is None else facts
        self.hasher = hasher
        self.sizer = sizer
        self.blocks = hasher is not None or sizer is not None
        self.tar_bytes = 0
        self.estimate: Callable[[], int] | None = None
        self.leaves: dict[str, int] | None = None  # dive_leaves, once the layer is read
        self._pending: list = []
        self._pending_bytes = 0

    def write(self, piece: memoryview) -> None:
        self.layer.parser.feed(piece)
        self.facts.take(self.layer.entries, self.layer.open)
        self.tar_bytes += len(piece)
        if self.blocks:
            self._pending.append(piece)
            self._pending_bytes += len(piece)
            if self._pending_bytes >= BLOCK_BYTES:
                self._flush(final=False)

    def close(self) -> None:
        if self.blocks:
            self._flush(final=True)
        self.layer.parser.finish()
        self.facts.take(self.layer.entries, 0)
        self.leaves = dive_leaves(self.facts.dive)
        if self.sizer is not None:
            self.estimate = self.sizer.finish()

    def _flush(self, final: bool) -> None:
        pending = self._pending
        if not pending:
            return
        data = memoryview(pending[0] if len(pending) == 1 else b"".join(pending))
        end = len(data) if final else len(data) - len(data) % BLOCK_BYTES
        for start in range(0, end, BLOCK_BYTES):
            block = data[start:start + BLOCK_BYTES]
            if self.hasher is not None:
                self.hasher.update(block)
            if self.sizer is not None:
                self.sizer.feed(block)
        rest = data[end:]
        self._pending = [rest] if len(rest) else []
        self._pending_bytes = len(rest)


class _Stacker:
    """The merge, done as the stream comes: a layer read is merged as soon as the layer
    below it is (its v1 json, before its layer.tar, names that one), so after the stream
    only the layers that came before the one below them are left. The order is checked
    against the manifest at the end (stacked)."""

    def __init__(self, parents: dict[str, str], app: str, paths: dict[str, tuple]):
        self.parents = parents  # the _Scan's: v1 parent id by save directory
        self.app = app
        self.paths = paths
        self.waiting: dict[str, tuple[str, list[Entry], _LayerFacts | None]] = {}  # by parent id
        self.merged: list[str] = []  # save directories, in stack order
        self.root: Node | None = None
        self.visible: _Visible | None = None

    def ready(self, layer_dir: str, entries: list[Entry], facts: _LayerFacts | None) -> None:
        """A layer read whole (`facts`: what was gathered as it streamed, None from the cache)."""
        parent = self.parents.get(layer_dir)
        if parent is None:
            return  # its json was not read: left for after the stream
        self.waiting[parent] = (layer_dir, entries, facts)
        while (layer := self.waiting.pop(self.merged[-1] if self.merged else "", None)) is not None:
            layer_dir, entries, facts = layer
            index = len(self.merged)
            if index == 0 and facts is not None and facts.root is not None:
                self.root, self.visible = facts.root, facts.visible  # built as it streamed
            else:
                if index == 0:
                    self.root, self.visible = Node(children={}), _Visible(self.app, self.paths)
                _whiteouts(self.root, entries, self.visible)
                _land(self.root, {"": self.root}, index, entries, self.visible)
            self.merged.append(layer_dir)

    def stacked(self, order: list[str]) -> int:
        """How many of the stack's layers, in the manifest's `order` of save directories, are merged."""
        done = len(self.merged)
        return done if self.merged == order[:done] else 0


@dataclass
class _Scan:
    """What one pass over a save stream found: layers read (by save directory, until the
    manifest names them) and layers taken from the cache."""
    readers: list[tuple[str, _LayerReader]] = field(default_factory=list)
    cached: dict[str, LayerIndex] = field(default_factory=dict)  # by save directory
    layers: dict[str, LayerIndex] = field(default_factory=dict)  # by diff id, once resolved
    paths: dict[str, tuple] = field(default_factory=dict)  # _path_facts of the layers read
    parents: dict[str, str] = field(default_factory=dict)  # v1 parent id by save directory
    stacker: _Stacker | None = None
    pending_sizes: dict[str, Callable[[], int]] = field(default_factory=dict)
    manifest: list | None = None
    bytes_read: int = 0
    first_byte_at: float | None = None
    end_at: float | None = None


def _layer_dir(name: str) -> str | None:
    """The directory of a `<dir>/layer.tar` member (the 20.10 save format)."""
    head, base = posixpath.split(_norm(name))
    return head if base == "layer.tar" and head else None


def _scan_stream(chunks: Iterable[bytes], known: dict[str, LayerIndex],
                 new_hasher: Callable[[], _Hasher] | None,
                 new_sizer: Callable[[int], GzipSizer] | None, app: str = "/app") -> _Scan:
    """Reads the save stream. Layers get their diff ids afterwards, from the manifest.
    `app`: the app directory, without a trailing '/', for the visible files' totals."""
    scan = _Scan()
    scan.stacker = stacker = _Stacker(scan.parents, app, scan.paths)

    def on_member(member: Member, whole: memoryview | None) -> Sink | None:
        name = _norm(member.name)
        if name == "manifest.json":
            if whole is not None:
                scan.manifest = json.loads(bytes(whole))
                return None
            data = bytearray()
            return data.extend, lambda: setattr(scan, "manifest", json.loads(bytes(data)))
        layer_dir, base = posixpath.split(name)
        if base == "json" and layer_dir:  # the layer's v1 config, before its layer.tar
            def parent(data) -> None:
                try:  # a bottom layer has none
                    scan.parents[layer_dir] = json.loads(bytes(data)).get("parent") or ""
                except (ValueError, AttributeError):
                    pass  # only a hint: without it the layer's tree is built anyway, and merged after the stream
            if whole is not None:
                return parent(whole)
            data = bytearray()
            return data.extend, lambda: parent(data)
        if base != "layer.tar" or not layer_dir or member.type not in _REGULAR_TYPES:
            return None  # a symlinked layer.tar repeats a layer already in the stream
        cached = known.get(layer_dir)
        if cached is not None:  # skipped unread: the manifest check vouches for it
            scan.cached[layer_dir] = cached
            stacker.ready(layer_dir, cached.entries, None)
            return None
        reader = _LayerReader(new_hasher() if new_hasher else None,
                              new_sizer(member.size) if new_sizer else None,
                              _LayerFacts(not scan.parents.get(layer_dir), scan.paths, app))
        scan.readers.append((layer_dir, reader))

        def close() -> None:
            reader.close()
            stacker.ready(layer_dir, reader.layer.entries, reader.facts)
        if whole is not None:  # a small layer.tar within one piece of the stream
            reader.write(whole)
            close()
            return None
        return reader.write, close

    outer = TarParser(on_member)
    for chunk in chunks:
        if scan.first_byte_at is None:
            scan.first_byte_at = time.perf_counter()
        scan.bytes_read += len(chunk)
        outer.feed(chunk)
    outer.finish()
    if not outer.done:  # an unframed body (save_stream) ends where the connection does
        raise HarnessError("the save stream ends before its tar does")
    scan.end_at = time.perf_counter()
    return scan


def _resolve(scan: _Scan, diff_ids: list[str]) -> dict[str, str]:
    """Every layer directory the manifest lists, with the diff id RootFS gives its position;
    the layers read get those diff ids (checked against their own sha256 when hashed)."""
    if not scan.manifest:
        raise HarnessError("the save stream has no manifest.json")
    paths = scan.manifest[0]["Layers"]
    if len(paths) != len(diff_ids):
        raise HarnessError(f"manifest lists {len(paths)} layers, RootFS {len(diff_ids)}")
    dirs: dict[str, str] = {}
    for path, diff_id in zip(paths, diff_ids, strict=True):
        layer_dir = _layer_dir(path)
        if dirs.setdefault(layer_dir, diff_id) != diff_id:
            raise HarnessError(f"save directory {layer_dir} is listed for {dirs[layer_dir]} and {diff_id}")
    for layer_dir, index in scan.cached.items():
        if dirs.get(layer_dir, index.diff_id) != index.diff_id:
            raise HarnessError(f"save directory {layer_dir} held {index.diff_id} before, "
                               f"RootFS says {dirs[layer_dir]}")
        scan.layers[index.diff_id] = index
    for layer_dir, reader in scan.readers:
        diff_id = dirs.get(layer_dir)
        if diff_id is None:
            continue  # not part of this image's stack
        if reader.hasher is not None:
            seen = "sha256:" + reader.hasher.hexdigest()
            if seen != diff_id:
                raise HarnessError(f"save directory {layer_dir} holds {seen}, RootFS says {diff_id}")
        scan.layers[diff_id] = LayerIndex(diff_id, reader.layer.entries, reader.layer.captured,
                                          reader.tar_bytes, dive=reader.facts.dive,
                                          file_sizes=reader.facts.sizes, dive_leaves=reader.leaves)
        if reader.estimate is not None:
            scan.pending_sizes[diff_id] = reader.estimate
            scan.layers[diff_id].compressed_sampled_bytes = reader.sizer.sampled_bytes
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
    children: dict[str, Node] | None = None

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


def _directory(root: Node, path: str, visible: _Visible | None = None) -> Node:
    """The directory at `path`, made (over whatever was there) if missing."""
    node = root
    for part in path.split("/") if path else ():
        nxt = _child(node, part)
        if nxt is None or nxt.children is None:
            if nxt is not None and visible is not None:
                visible.drop_tree(nxt)
            nxt = Node(children={})
            node.children[part] = nxt
        node = nxt
    return node


def _whiteouts(root: Node, entries: list[Entry], visible: _Visible | None = None) -> None:
    """A layer's whiteouts and opaque markers, acting on the layers below."""
    for entry in entries:
        if entry.kind == WHITEOUT:
            parent = _lookup(root, posixpath.dirname(entry.path))
            if parent is not None and parent.children:
                gone = parent.children.pop(posixpath.basename(entry.path), None)
                if gone is not None and visible is not None:
                    visible.drop_tree(gone)
        elif entry.kind == OPAQUE:
            node = _lookup(root, entry.path)
            if node is not None and node.children is not None:
                if visible is not None:
                    for child in node.children.values():
                        visible.drop_tree(child)
                node.children = {}


def _land(root: Node, dirs: dict[str, Node], index: int, entries: list[Entry],
          visible: _Visible | None = None) -> dict[str, Node]:
    """A layer's entries (not its whiteouts) onto the tree, the layer at `index` of the stack.

    `dirs` holds the directories found or made for the layer's entries so far, by path: each
    entry's parent is one lookup. A directory that replaces one keeps its children's dict,
    so what is remembered stays live; anything else that replaces a directory forgets it
    all. Returned, to go on with the layer's next entries. `visible` is told what shows
    and what no longer does."""
    for entry in entries:
        kind = entry.kind
        if kind == WHITEOUT or kind == OPAQUE:
            continue
        path = entry.path
        head, _, name = path.rpartition("/")
        parent = dirs.get(head)
        if parent is None:
            parent = dirs[head] = _directory(root, head, visible)
        children = parent.children
        old = children.get(name)
        if kind == DIR:
            node = children[name] = Node(
                entry, children=old.children if old and old.children is not None else {})
            dirs[path] = node
            if old is not None and old.children is None and visible is not None:
                visible.drop_tree(old)
            continue
        if old is not None:
            if old.children is not None:
                dirs = {"": root}
            if visible is not None:
                visible.drop_tree(old)
        if kind == FILE:
            node = children[name] = Node(entry, (index, path), entry)
        elif kind == LINK:
            target = _lookup(root, entry.target)
            node = children[name] = Node(entry, target.inode, target.content) if target else Node(entry)
        else:
            children[name] = Node(entry)
            continue
        if visible is not None:
            visible.add(node)
    return dirs


def merge(layers: list[list[Entry]], bottom: Node | None = None, visible: _Visible | None = None,
          done: int | None = None) -> Node:
    """The final filesystem: each layer's whiteouts act on the layers below, then its entries land.

    `bottom`: the tree of the first `done` layers (default 1) when it was built already
    (as the stream came); it is built on, not copied (and `visible` has counted them).
    `visible` is kept up to date."""
    root = Node(children={}) if bottom is None else bottom
    done = (0 if bottom is None else 1) if done is None else done
    for index, entries in enumerate(layers[done:], done):
        _whiteouts(root, entries, visible)
        _land(root, {"": root}, index, entries, visible)
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


def inode_sizes(layers: list[list[Entry]]) -> dict[tuple[int, str], int]:
    """The size of every regular-file copy in the stack, by (stack index, path)."""
    return {(i, path): size for i, entries in enumerate(layers) for path, size in file_sizes(entries).items()}


def file_sizes(entries: list[Entry]) -> dict[str, int]:
    """A layer's regular files' sizes by path (a path held twice: its last copy)."""
    return {e.path: e.size for e in entries if e.kind == FILE}


def visible_files(root: Node) -> list[Node]:
    """The regular files and hard links the final filesystem shows, in the order of `walk`:
    the one walk of the tree that `waste` and `describe` share. A file's node sits at its
    entry's path, so no path is built (a tenth of the time after the stream)."""
    files = []
    stack = [iter((root.children or {}).values())]
    while stack:
        for node in stack[-1]:
            entry = node.entry
            if entry is not None and entry.kind in _FILE_KINDS:
                files.append(node)
            if node.children:
                stack.append(iter(node.children.values()))
                break
        else:
            stack.pop()
    return files


def waste(layers: list[list[Entry]], root: Node, files: list[Node] | None = None,
          visible: _Visible | None = None, sizes: list[dict[str, int] | None] | None = None) -> dict:
    """Bytes of copies that no visible path reaches any more, and the biggest of them.

    The copies lost: `visible`'s when given (kept by the merge), sized by each layer's
    `sizes` (its file_sizes where gathered already, None: worked out here); else those of
    the stack not among the visible `files` (or a walk's)."""
    if visible is not None:
        sizes = [file_sizes(entries) if known is None else known
                 for entries, known in zip(layers, sizes or [None] * len(layers), strict=True)]
        total = sum(sum(layer.values()) for layer in sizes)
        lost = [(size, key) for key in visible.lost if (size := sizes[key[0]].get(key[1]))]
    else:
        every = inode_sizes(layers)
        seen = {n.inode for n in (visible_files(root) if files is None else files) if n.inode is not None}
        lost = [(size, key) for key, size in every.items() if key not in seen and size]
        total = sum(every.values())
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
    """One layer as dive's tree holds it: path -> (is_dir, size), its whiteouts, and the
    paths that are some node's parent (so not leaves).

    Directories dive creates for a path's parents carry an empty payload (not a dir);
    opaque markers are dropped (their directory stays)."""
    nodes: dict[str, tuple[bool, int]]
    whiteouts: list[str]
    parents: set[str]


def _dive_layer(entries: list[Entry]) -> _DiveLayer:
    return _dive_add(_DiveLayer({}, [], set()), entries)


def _dive_add(layer: _DiveLayer, entries: list[Entry]) -> _DiveLayer:
    """`layer` with more of its entries, in their order in the tar."""
    nodes, whiteouts, parents = layer
    for e in entries:
        path = e.path
        head = path.rpartition("/")[0]
        parents.add(head)
        while head and head not in nodes:
            nodes[head] = (False, 0)
            head = head.rpartition("/")[0]
            parents.add(head)
        kind = e.kind
        if kind == WHITEOUT:
            whiteouts.append(path)
        elif kind == OPAQUE:
            if path:
                nodes.setdefault(path, (False, 0))
        else:
            nodes[path] = (kind == DIR, e.size)
    return layer


class _LayerFacts:
    """What one layer shows on its own, whatever its place in the stack, gathered block by
    block as it streams in rather than after the last byte: dive's view of it, and its
    filesystem as the bottom of a stack, with its visible files' totals (the merge starts
    from both when it is; built only for a layer that may be: `tree`). Done between reads,
    it fills the parse's waits for the engine."""

    def __init__(self, tree: bool = True, paths: dict[str, tuple] | None = None, app: str = "/app"):
        """`app`: the app directory, without a trailing '/'."""
        self.dive = _DiveLayer({}, [], set())
        self.paths = {} if paths is None else paths  # _path_facts by path, shared by the stream's layers
        self.root = Node(children={}) if tree else None
        self.visible = _Visible(app, self.paths) if tree else None
        self.sizes: dict[str, int] = {}  # file_sizes of the entries taken
        self._dirs: dict[str, Node] = {"": self.root}
        self._taken = 0

    def take(self, entries: list[Entry], still_open: int) -> None:
        """The entries not taken yet, but for the last `still_open` (a member that is still
        streaming: its digest is not known yet)."""
        end = len(entries) - still_open
        if end > self._taken:
            new = entries[self._taken:end]
            self._taken = end
            _dive_add(self.dive, new)
            self.sizes.update(file_sizes(new))
            paths = self.paths
            for e in new:
                if e.kind in _FILE_KINDS and e.path not in paths:
                    paths[e.path] = _path_facts(e.path)
            if self.root is not None:
                self._dirs = _land(self.root, self._dirs, 0, new, self.visible)  # whiteouts: none below the bottom


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
            self.children.get(path.rpartition("/")[0], set()).discard(path)
        for path, payload in layer.nodes.items():
            self.payload[path] = payload
            self.children.setdefault(path.rpartition("/")[0], set()).add(path)

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


def dive_leaves(layer: _DiveLayer) -> dict[str, int]:
    """A layer's leaves as dive counts them: its nodes that are no other node's parent, by path."""
    parents = layer.parents
    return {path: size for path, (_, size) in layer.nodes.items() if path not in parents}


def dive_waste(layers: list[list[Entry]], dive_layers: list[_DiveLayer | None] | None = None,
               leaves: list[dict[str, int] | None] | None = None) -> dict:
    """dive 0.13's wastedBytes and efficiency score, computed as dive does (see the module doc).
    `dive_layers`: each layer's _DiveLayer where it was gathered already (None: made here);
    `leaves`: its dive_leaves, likewise.

    A path's copies are its leaves in every layer, and its whiteouts (sized by what they
    remove from the layers below: the only use of the merged stack, so it is kept only up
    to the last layer with a whiteout). Only the sums and the smallest copy of each path
    count, not the order: the paths with more than one copy (few) are found by set
    operations on the layers' leaves, and only they are gone through one by one.

    One difference kept on purpose: where dive meets a whiteout for a path no lower
    layer has, it stops reading that layer; here the whiteout counts 0 and reading goes on."""
    n = len(layers)
    dive_layers = [known or _dive_layer(entries)
                   for entries, known in zip(layers, dive_layers or [None] * n, strict=True)]
    leaves = [dive_leaves(layer) if known is None else known
              for layer, known in zip(dive_layers, leaves or [None] * n, strict=True)]
    stacked = max((i for i, layer in enumerate(dive_layers) if layer.whiteouts), default=0)
    below = _DiveStack()
    removed: dict[str, list[int]] = {}  # a whiteout's path -> what each of its whiteouts removes
    seen: set[str] = set()
    several: set[str] = set()  # paths with more than one copy
    for index, (layer, own) in enumerate(zip(dive_layers, leaves)):
        several |= seen & own.keys()
        seen |= own.keys()
        for path in layer.whiteouts:
            several.add(path) if path in seen else seen.add(path)
            removed.setdefault(path, []).append(below.whiteout_size(path))
        if index < stacked:
            below.stack(layer)
    cumulative = sum(sum(own.values()) for own in leaves) + sum(sum(sizes) for sizes in removed.values())
    wasted = spared = 0  # spared: all copies of a path but its smallest
    for path in several:
        sizes = [own[path] for own in leaves if path in own] + removed.get(path, [])
        wasted += sum(sizes)
        spared += sum(sizes) - min(sizes)
    return {
        "dive_wasted_bytes": wasted,
        "dive_efficiency": (cumulative - spared) / cumulative if cumulative else 1.0,
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
    return node is not None and node.kind in _FILE_KINDS


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
            fields = dict(re.findall(rb"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
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


def _path_facts(path: str) -> tuple[bool, str, str, bool]:
    """What the visible files' totals ask of a root-relative path, whatever the app directory:
    whether it is a package's package.json, its suffix of interest, its directory (with a
    leading '/'), and whether it is under some node_modules."""
    full = "/" + path
    return (full.endswith("/package.json") and _PACKAGE_JSON.search(full) is not None,
            ".d.ts" if full.endswith(".d.ts") else ".ts" if full.endswith(".ts") else
            ".map" if full.endswith(".map") else "",
            full.rpartition("/")[0], "/node_modules/" in full)


class _Visible:
    """The visible files' totals, kept as the merge adds file nodes and drops them (written
    over, deleted, or under a directory something replaced), so that nothing walks the final
    tree after the stream: the bottom layer's part is counted as its tree is built, while
    the stream comes. Each inode's bytes count once, under the first of its visible paths
    to be added (in walk order, when added from a walk).

    Bytes by top path are summed by directory and grouped once per directory at the end: a
    file's group depends only on its directory, except directly under the app directory,
    /usr or the root, where the file is its own group. `paths`: _path_facts by path, shared
    with the stream's layers (worked out here when missing)."""

    def __init__(self, app: str, paths: dict[str, tuple] | None = None):
        self.app = app
        self.paths = {} if paths is None else paths
        self.app_modules = f"{app}/node_modules/"[1:]  # root-relative, as entry paths are
        self.shallow = {app, "/usr", ""}
        self.nodes: dict[tuple[int, str], list[Node]] = {}  # inode -> its visible nodes, the first counted
        self.lost: set[tuple[int, str]] = set()  # inodes no visible path reaches any more
        self.file_count = self.app_packages = self.other_packages = 0
        self.files_bytes = self.app_modules_bytes = self.other_modules_bytes = 0
        self.suffix_bytes: Counter = Counter()
        self.by_file: dict[str, list[int]] = {}  # group -> [bytes, inodes], files in a shallow directory
        self.by_dir: dict[str, list[int]] = {}  # directory -> [bytes, inodes], the others
        self.contents: dict[tuple[int, bytes], int] = {}  # (size, digest) -> copies
        self.duplicate_files = self.duplicate_bytes = 0  # copies beyond each content's first
        self.setuid: dict[tuple[int, str], dict] = {}

    def _facts(self, path: str) -> tuple:
        facts = self.paths.get(path)
        if facts is None:
            facts = self.paths[path] = _path_facts(path)
        return facts

    def _path_counts(self, node: Node, sign: int) -> tuple:
        """The counts by path (files, package.json files) for `node`; its path's facts."""
        path = node.entry.path
        facts = self._facts(path)
        self.file_count += sign
        if facts[0]:
            if facts[3] and path.startswith(self.app_modules):
                self.app_packages += sign
            else:
                self.other_packages += sign
        return facts

    def add(self, node: Node) -> None:
        """A regular file or hard link now visible."""
        facts = self._path_counts(node, 1)
        inode = node.inode
        if inode is None:
            return
        nodes = self.nodes.get(inode)
        if nodes is None:
            self.nodes[inode] = [node]
            self._count(node, facts, 1)
            if self.lost:
                self.lost.discard(inode)  # a path a layer's tar holds twice: the second copy
        else:
            nodes.append(node)

    def drop(self, node: Node) -> None:
        """A regular file or hard link no longer visible; its inode's bytes move to the next
        of its paths, or go."""
        facts = self._path_counts(node, -1)
        inode = node.inode
        if inode is None:
            return
        nodes = self.nodes[inode]
        if nodes[0] is node:
            self._count(node, facts, -1)
            del nodes[0]
            if nodes:
                self._count(nodes[0], self._facts(nodes[0].entry.path), 1)
            else:
                del self.nodes[inode]
                self.lost.add(inode)
        else:
            del nodes[next(i for i, n in enumerate(nodes) if n is node)]

    def drop_tree(self, node: Node) -> None:
        """`node` and everything under it, no longer visible."""
        todo = [node]
        while todo:
            n = todo.pop()
            if n.entry is not None and n.entry.kind in _FILE_KINDS:
                self.drop(n)
            if n.children:
                todo.extend(n.children.values())

    def _count(self, node: Node, facts: tuple, sign: int) -> None:
        path = node.entry.path
        _, suffix, head, in_modules = facts
        content = node.content
        size = content.size
        if head in self.shallow:
            groups, key = self.by_file, top_path("/" + path, self.app)
        else:
            groups, key = self.by_dir, head
        group = groups.get(key)
        if group is None:
            group = groups[key] = [0, 0]
        group[0] += sign * size
        group[1] += sign
        if content.mode & 0o6000:
            if sign > 0:
                self.setuid[node.inode] = {"path": "/" + path, "mode": f"{content.mode & 0o7777:04o}"}
            else:
                del self.setuid[node.inode]
        if not size:
            return
        self.files_bytes += sign * size
        key = (size, content.digest)
        had = self.contents.get(key, 0)
        copies = had + sign
        if copies:
            self.contents[key] = copies
        else:
            del self.contents[key]
        if max(had, copies) > 1:  # a copy beyond the first came or went
            self.duplicate_files += sign
            self.duplicate_bytes += sign * size
        if in_modules and path.startswith(self.app_modules):
            self.app_modules_bytes += sign * size
        elif in_modules:
            self.other_modules_bytes += sign * size
        if suffix:
            self.suffix_bytes[suffix] += sign * size

    def totals(self) -> tuple[Counter, Counter, list]:
        """Counts (duplicate files and bytes among them), bytes by top path, and the
        setuid/setgid files."""
        by_top: Counter = Counter()
        for key, (size, inodes) in self.by_file.items():
            if inodes:
                by_top[key] += size
        for head, (size, inodes) in self.by_dir.items():
            if inodes:
                by_top[top_path(head, self.app)] += size
        counts = Counter(self.suffix_bytes)
        counts.update(file_count=self.file_count, app_packages=self.app_packages,
                      other_packages=self.other_packages, files_bytes=self.files_bytes,
                      app_modules_bytes=self.app_modules_bytes, other_modules_bytes=self.other_modules_bytes,
                      duplicate_files=self.duplicate_files, duplicate_bytes=self.duplicate_bytes)
        return counts, by_top, list(self.setuid.values())


def _visible_totals(files: list[Node], app: str,
                    paths: dict[str, tuple] | None = None) -> tuple[Counter, Counter, list]:
    """_Visible's totals of `files` (in walk order)."""
    visible = _Visible(app, paths)
    for node in files:
        visible.add(node)
    return visible.totals()


def describe(root: Node, captured: list[dict[str, bytes]], *, app_dir: str,
             dev_dependencies: Iterable[str], search_path: list[str],
             files: list[Node] | None = None, paths: dict[str, tuple] | None = None,
             visible: _Visible | None = None) -> dict:
    """The visible files' totals and the facts a reviewer of a Dockerfile asks about.
    The totals: `visible`'s when given (kept by the merge), else those of `files` (or of a walk)."""
    app = app_dir.rstrip("/")
    c, by_top, setuid = visible.totals() if visible is not None else _visible_totals(
        visible_files(root) if files is None else files, app, paths)
    db, packages = _package_db(root, captured)
    return {
        "file_count": c["file_count"],
        "files_bytes": c["files_bytes"],
        "top_paths": [{"path": p, "bytes": b} for p, b in by_top.most_common(TOP_PATHS)],
        "duplicate_files": c["duplicate_files"],
        "duplicate_bytes": c["duplicate_bytes"],
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
        "setuid_files": sorted(setuid, key=lambda f: f["path"]),
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


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block, then as it was.

    An analysis makes one object per tar entry and per path (about 100,000 for a 1 GB
    image), all kept until it ends: the collector would walk them again at every full
    collection and find nothing, a fifth of the time after the stream (0.77 s -> 0.58 s
    on the node:20 image)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@collector_paused()  # a context manager made by contextmanager also decorates
def analyze_image(client: docker.DockerClient, image_id: str, *,
                  app_dev_dependencies: Iterable[str] = frozenset(),
                  estimate_compressed: bool = True, workers: int | None = None,
                  cache: dict[str, dict] | None = None, app_dir: str = "/app",
                  verify_diff_ids: bool = False) -> dict:
    """Everything above about one image, from one pass over its save stream.

    `cache` (diff id -> entry), shared across calls in a run, keeps each layer's file
    index and compressed estimate: a layer seen under the same save directory before
    is skipped unread, neither parsed nor compressed again.

    Each layer read gets the diff id RootFS gives its position in the manifest. The engine
    checks every layer.tar against its diff id as it exports it (the layer store's verified
    reader), so hashing it again here is off by default; `verify_diff_ids` hashes each one
    (sha256, on a thread of its own) and fails on a mismatch.

    The stream is read in C (save_stream) and parsed a piece at a time as it comes, each
    layer's own facts with it (_LayerFacts), while
    the estimate is compressed on `workers` threads; the merged filesystem is worked out
    while the last blocks are compressed."""
    start = time.perf_counter()
    attrs = client.api.inspect_image(image_id)
    diff_ids = list(attrs["RootFS"]["Layers"])
    workers = workers or os.cpu_count() or 1
    known = _known_layers(cache, estimate_compressed)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gzip")
    hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
    try:
        slots, hash_slots = threading.Semaphore(2 * workers), threading.Semaphore(HASH_SLOTS)
        scan = _scan_stream(
            save_stream(client, image_id), known,
            (lambda: _Hasher(hashing, hash_slots)) if verify_diff_ids else None,
            (lambda size: GzipSizer(pool, slots, size)) if estimate_compressed else None,
            app_dir.rstrip("/"))
        dirs = _resolve(scan, diff_ids)
        stack = [scan.layers[d] for d in diff_ids]
        listings = [layer.entries for layer in stack]
        done = scan.stacker.stacked([_layer_dir(path) for path in scan.manifest[0]["Layers"]])
        if done:  # the layers merged as they streamed, their visible files counted
            visible = scan.stacker.visible
            root = merge(listings, scan.stacker.root, visible, done)
        else:
            visible = _Visible(app_dir.rstrip("/"), scan.paths)
            root = merge(listings, None, visible)
        contents = {
            **waste(listings, root, visible=visible, sizes=[layer.file_sizes for layer in stack]),
            **dive_waste(listings, [layer.dive for layer in stack], [layer.dive_leaves for layer in stack]),
            **describe(root, [layer.captured for layer in stack], app_dir=app_dir, visible=visible,
                       dev_dependencies=app_dev_dependencies,
                       search_path=_image_path((attrs.get("Config") or {}).get("Env"))),
        }
        contents_done = time.perf_counter()
        for diff_id, total in scan.pending_sizes.items():
            scan.layers[diff_id].compressed_estimate_bytes = total()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        hashing.shutdown(wait=True, cancel_futures=True)
    _remember(cache, scan, dirs)

    per_layer = [layer.summary(app_dir) for layer in stack]
    unique = list({layer.diff_id: layer for layer in stack}.values())  # a repeated layer is pushed once
    sampled = sum(layer.compressed_sampled_bytes or 0 for layer in unique)
    tar_total = sum(layer.tar_bytes for layer in unique)
    result = {
        "image_id": attrs["Id"],
        "layer_count": len(stack),
        "layers": per_layer,
        "layers_size_bytes": sum(layer["size_bytes"] for layer in per_layer),
        **contents,
        "compressed_estimate_bytes": (sum(layer["compressed_estimate_bytes"] for layer in per_layer)
                                      if estimate_compressed else None),
        "compressed_estimate_sampled": (any(layer["compressed_estimate_sampled"] for layer in per_layer)
                                        if estimate_compressed else None),
        "compressed_estimate_fraction": ((sampled / tar_total if tar_total else 1.0)
                                         if estimate_compressed else None),
        "cache_hits": len(scan.cached),
        "workers": workers,
        "diff_ids_verified": verify_diff_ids,
        "saved_bytes_streamed": scan.bytes_read,
    }
    end = time.perf_counter()
    result["timings"] = {  # seconds from the start: where the time went
        "first_byte": None if scan.first_byte_at is None else scan.first_byte_at - start,
        "stream_end": scan.end_at - start,
        "contents_done": contents_done - start,
        "estimate_done": end - start,
    }
    result["seconds"] = end - start
    return result
