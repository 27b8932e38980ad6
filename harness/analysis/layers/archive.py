"""The image archive an engine exports (`docker save`), read as one stream, whatever its layout.

Three layouts are met, each with a `manifest.json` whose `Layers` name the members that hold
the layers, bottom first, and whose `Config` names the image config:
- Docker 24 and older: `<dir>/layer.tar`, `<dir>/json`, `<config>.json`; a repeated layer is
  a symlink to the first one's tar.
- Docker 25 and newer (both stores): an OCI image layout (`oci-layout`, `index.json`,
  `blobs/sha256/<digest>`); `manifest.json` points into `blobs/`. On the containerd store a
  pulled layer may be kept as the registry sent it: gzip or zstd.
- Podman: `<digest>.tar` for each layer, `<id>.json` for the config.
Members are told apart by their first bytes, not their names: a tar (or an empty one), a
gzip or zstd stream is a layer and is read as it streams; anything else (JSON) is kept whole.
Which blob is which layer is only known from `manifest.json`, which may come last: each
layer is indexed under its member name, and stacked once the stream has ended.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
import io
import json
import posixpath
import tarfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

from ...errors import HarnessError

STREAM_BUFFER_BYTES = 1 << 20
DOCUMENT_LIMIT_BYTES = 64 << 20  # a member that is not a layer and larger is skipped
GZIP, ZSTD, TAR = "tar+gzip", "tar+zstd", "tar"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class IterReader(io.RawIOBase):
    """A binary file object over an iterator of bytes (the SDK's chunks of a stream)."""

    def __init__(self, chunks: Iterable[bytes], on_first: Callable[[], None] | None = None):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._rest = memoryview(b"")
        self._on_first = on_first
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if self._on_first is not None:
                self._on_first()
                self._on_first = None
            self._rest = memoryview(chunk)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        self.bytes_read += n
        return n


class Tee(io.RawIOBase):
    """Reads `source` and shows every byte read to `sinks` (hash, gzip estimate), counting
    them; the last bytes are kept to check what follows a tar's end (`zeros_from`)."""

    RECENT_BYTES = 1 << 20  # more than the tar reader reads ahead

    def __init__(self, source: BinaryIO, sinks: list[Callable[[memoryview], object]]):
        self._source = source
        self._sinks = sinks
        self._recent: deque[tuple[int, bytes]] = deque()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._recent.append((self.count, data))
            while self._recent[0][0] + len(self._recent[0][1]) < self.count - self.RECENT_BYTES:
                self._recent.popleft()
        self.count += n
        view = memoryview(buffer)[:n]
        for sink in self._sinks:
            sink(view)
        return n

    def zeros_from(self, offset: int) -> bool:
        """Whether every byte from `offset` to the end is zero (a tar's end-of-archive blocks
        and padding), reading to the end. The standard tar reader stops quietly at a header it
        cannot read; this tells that from a whole tar."""
        if self._recent and offset < self._recent[0][0]:
            return False
        ok = all(not chunk[max(0, offset - start):].strip(b"\0") for start, chunk in self._recent)
        while piece := self.read(STREAM_BUFFER_BYTES):
            ok = ok and not piece.strip(b"\0")
        return ok


def media_type(head: bytes) -> str | None:
    """A layer's media type from its first bytes; None for anything that is not a layer."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC):
        return ZSTD
    if len(head) >= 512 and (head[257:262] == b"ustar" or _header_checksum_ok(head[:512])):
        return TAR
    if len(head) >= 512 and not any(head[:512]):  # an empty tar: only the end-of-archive blocks
        return TAR
    return None


def _header_checksum_ok(block: bytes) -> bool:
    """A v7 tar header (no ustar magic) is known by its checksum."""
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:])


def decompressed(fileobj: BinaryIO, kind: str) -> BinaryIO:
    if kind == GZIP:
        return gzip.GzipFile(fileobj=fileobj, mode="rb")
    if kind == ZSTD:
        return zstandard.ZstdDecompressor().stream_reader(fileobj, read_across_frames=True)
    return fileobj


@dataclass
class Archive:
    """What the stream held besides the layers: its small documents, its links, and the
    member names of the layers read (or skipped as known), in stream order."""
    documents: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    layer_members: list[str] = field(default_factory=list)

    def resolve(self, name: str) -> str:
        name = posixpath.normpath(name)
        for _ in range(40):
            target = self.links.get(name)
            if target is None:
                return name
            name = target
        raise HarnessError(f"the image archive's links loop at {name}")

    def layout(self) -> str:
        """Which of the layouts above the archive has."""
        if "oci-layout" in self.documents or any(n.startswith("blobs/") for n in self.layer_members):
            return "oci"
        if any(n.endswith("/layer.tar") for n in self.layer_members):
            return "docker-legacy"
        return "podman" if self.layer_members else "empty"

    def manifest(self) -> dict:
        """The first image of `manifest.json`, the one member every layout has."""
        raw = self.documents.get("manifest.json")
        if raw is None:
            raise HarnessError("the image archive has no manifest.json (the stream was cut short?)")
        images = json.loads(raw)
        if not images:
            raise HarnessError("the image archive's manifest.json lists no image")
        return images[0]

    def layer_order(self) -> list[str]:
        """The layers' member names, bottom first."""
        return [self.resolve(name) for name in self.manifest().get("Layers") or []]

    def config(self) -> dict:
        name = self.resolve(self.manifest().get("Config") or "")
        raw = self.documents.get(name)
        return json.loads(raw) if raw else {}


LayerReader = Callable[[str, tarfile.TarInfo, BinaryIO, str], None]


def read_archive(chunks: Iterable[bytes], read_layer: LayerReader,
                 skip: Callable[[str], bool] = lambda name: False,
                 on_first: Callable[[], None] | None = None) -> tuple[Archive, int]:
    """Stream the archive: each layer member to `read_layer(name, member, fileobj, media_type)`
    unless `skip(name)`, everything small kept. Returns the archive and the bytes streamed."""
    source = IterReader(chunks, on_first)
    archive = Archive()
    stream = io.BufferedReader(source, STREAM_BUFFER_BYTES)
    try:
        with tarfile.open(fileobj=stream, mode="r|", bufsize=STREAM_BUFFER_BYTES) as outer:
            for member in outer:
                name = posixpath.normpath(member.name)
                if member.issym():
                    archive.links[name] = posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), member.linkname))
                    continue
                if member.islnk():
                    archive.links[name] = posixpath.normpath(member.linkname)
                    continue
                if not member.isreg():
                    continue
                data = outer.extractfile(member)
                head = data.peek(512)[:512] if member.size else b""
                kind = media_type(head)
                if kind is not None:
                    archive.layer_members.append(name)
                    if not skip(name):
                        read_layer(name, member, data, kind)
                elif member.size <= DOCUMENT_LIMIT_BYTES:
                    archive.documents[name] = data.read()
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError) as exc:
        raise HarnessError(f"unreadable image archive: {exc}") from None
    return archive, source.bytes_read


def sha256_sink() -> tuple[Callable[[memoryview], None], Callable[[], str]]:
    digest = hashlib.sha256()
    return digest.update, lambda: "sha256:" + digest.hexdigest()
