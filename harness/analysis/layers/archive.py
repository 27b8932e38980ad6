"""The image archive an engine exports (`docker save`), read as one stream, whatever its layout.

Three layouts are met, each with a `manifest.json` whose `Layers` name the members that hold
the layers, bottom first, and whose `Config` names the image config:
- Docker 24 and older: `<dir>/layer.tar`, `<dir>/json`, `<config>.json`; a repeated layer is
  a symlink to the first one's tar.
- Docker 25 and newer (both stores): an OCI image layout (`oci-layout`, `index.json`,
  `blobs/sha256/<digest>`); `manifest.json` points into `blobs/`. The containerd store keeps
  layers compressed, as a registry sent them or, after a build, gzip.
- Podman: `<digest>.tar` for each layer, `<id>.json` for the config.
Members are told apart by their first bytes, not their names: a tar (or an empty one), a
gzip or zstd stream is a layer and is read as it streams (decompressed on the way); anything
else (JSON) is kept whole. The archive is pushed through `tarparse.TarReader` a piece at a
time as the SDK's `get_image` yields it: no file object, no copy of the layers' bytes.
Which blob is which layer is only known from `manifest.json`, which may come last: each
layer is indexed under its member name, and stacked once the stream has ended.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import zstandard
from zlib_ng import zlib_ng

from ...errors import HarnessError
from .tarparse import TarReader

DOCUMENT_LIMIT_BYTES = 64 << 20  # a member that is not a layer and larger is skipped
GZIP, ZSTD, TAR = "tar+gzip", "tar+zstd", "tar"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


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


class Inflater:
    """A layer blob's bytes, fed in pieces, as its uncompressed tar's bytes (`out`)."""

    def __init__(self, kind: str, out: Callable[[memoryview | bytes], object]):
        self.kind, self.out = kind, out
        self._new()

    def _new(self) -> None:
        self._engine = (zlib_ng.decompressobj(wbits=31) if self.kind == GZIP
                        else zstandard.ZstdDecompressor().decompressobj())

    def feed(self, piece) -> None:
        if self.kind == TAR:
            self.out(piece)
            return
        data = bytes(piece)
        while data:
            self.out(self._engine.decompress(data))
            if not self._engine.eof:
                return
            data = self._engine.unused_data  # a stream of several members or frames
            self._new()
            if not data.strip(b"\0"):
                return


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


LayerSink = Callable[[str, int, str], "tuple[Callable[[memoryview], object], Callable[[], object]] | None"]


class _Member:
    """An archive member, told apart by its first bytes: a layer's pieces go to the sink
    `layer(name, size, media type)` gives; anything else small is kept whole."""

    def __init__(self, archive: Archive, name: str, size: int, layer: LayerSink):
        self.archive, self.name, self.size, self.layer = archive, name, size, layer
        self.head = bytearray()
        self.sink = None
        self.kind: str | None = None

    def write(self, piece: memoryview) -> None:
        if self.kind is None:
            self.head += piece
            if len(self.head) >= min(512, self.size):
                self._decide()
        elif self.sink is not None:
            self.sink[0](piece)
        elif self.kind == "document":
            self.head += piece

    def close(self) -> None:
        if self.kind is None:
            self._decide()
        if self.sink is not None:
            self.sink[1]()
        elif self.kind == "document":
            self.archive.documents[self.name] = bytes(self.head)

    def _decide(self) -> None:
        head, self.head = bytes(self.head), bytearray()
        kind = media_type(head[:512])
        if kind is None:
            self.kind = "document" if self.size <= DOCUMENT_LIMIT_BYTES else "skipped"
            self.head += head if self.kind == "document" else b""
            return
        self.kind = kind
        self.archive.layer_members.append(self.name)
        self.sink = self.layer(self.name, self.size, kind)
        if self.sink is not None and head:
            self.sink[0](memoryview(head))


def read_archive(chunks: Iterable[bytes], layer: LayerSink,
                 on_first: Callable[[], None] | None = None) -> tuple[Archive, int]:
    """Stream the archive: each layer's pieces to the sink `layer(name, size, media type)`
    returns (None: skipped), everything small kept. Returns the archive and the bytes streamed."""
    archive = Archive()

    def member(info: tarfile.TarInfo):
        name = posixpath.normpath(info.name)
        if info.issym():
            archive.links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
        elif info.islnk():
            archive.links[name] = posixpath.normpath(info.linkname)
        elif info.isreg():
            got = _Member(archive, name, info.size, layer)
            return got.write, got.close
        return None

    reader = TarReader(member, "image archive")
    streamed = 0
    try:
        for chunk in chunks:
            if not streamed and on_first is not None:
                on_first()
            streamed += len(chunk)
            reader.feed(chunk)
        reader.close()
    except (zlib_ng.error, zstandard.ZstdError) as exc:
        raise HarnessError(f"a layer of the image archive does not decompress: {exc}") from None
    return archive, streamed


def sha256_sink() -> tuple[Callable[[memoryview], None], Callable[[], str]]:
    digest = hashlib.sha256()
    return digest.update, lambda: "sha256:" + digest.hexdigest()
