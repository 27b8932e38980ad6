"""Tar archives read as they stream, a piece at a time, without copying their data.

`TarReader` is fed the pieces of an archive in order (the engine's save stream, or one of
its layers) and hands each member's data to the sink its caller gives it, as memoryview
slices of the pieces: nothing is copied but a header cut between two pieces. Each 512-byte
header is read by the standard library (`tarfile.TarInfo.frombuf`); pax records and GNU
long names, which Go's tar writer (the engine's) uses for long paths, are applied here.
A file object would cost a copy per layer of every byte and a call per 512-byte header:
on the node:20 image's 1.2 GB and 42,802 entries that made the parse several times the read.

`LayerParser` is the sink of one layer: its entries, each regular file's content hash and
the package databases' contents.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable
from typing import BinaryIO

import xxhash

from ...errors import HarnessError
from .model import DIR, FILE, LINK, OPAQUE, OTHER, SYMLINK, WHITEOUT, Entry

BLOCK = 512
CAPTURE_LIMIT_BYTES = 16 << 20
EXTENDED_LIMIT_BYTES = 1 << 20  # a pax or GNU long-name record is a few hundred bytes
APK_DB = "lib/apk/db/installed"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_DIR = "var/lib/dpkg/status.d"  # distroless: one file per package
_ZEROS = bytes(BLOCK)
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_NO_DATA = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE,
            tarfile.FIFOTYPE)  # their size field means nothing

Sink = tuple[Callable[[memoryview], object], Callable[[], object]]


class TarReader:
    """An archive fed in pieces; `on_member(info)` returns a sink (write, close) for a
    member's data, or None to skip it. `close()` fails unless the archive ended."""

    def __init__(self, on_member: Callable[[tarfile.TarInfo], Sink | None], what: str = "tar"):
        self.on_member = on_member
        self.what = what
        self.ended = False
        self._header = bytearray()
        self._left = 0  # data bytes of the current member still to come
        self._pad = 0  # padding after them
        self._sink: Sink | None = None
        self._extended: tuple[bytes, bytearray] | None = None  # (type, data so far)
        self._pending: dict[str, str] = {}  # pax records for the next member

    def feed(self, data) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end and not self.ended:
            if self._left:
                take = min(self._left, end - pos)
                self._data(view[pos:pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._member_end()
            elif self._pad:
                take = min(self._pad, end - pos)
                pos += take
                self._pad -= take
            elif self._header or end - pos < BLOCK:
                take = min(BLOCK - len(self._header), end - pos)
                self._header += view[pos:pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    block = bytes(self._header)
                    self._header.clear()
                    self._start(block)
            else:
                self._start(bytes(view[pos:pos + BLOCK]))
                pos += BLOCK

    def close(self) -> None:
        if not self.ended:
            where = "inside a member" if self._left or self._header else "before its end"
            raise HarnessError(f"the {self.what} ends {where} (cut short?)")

    def _start(self, block: bytes) -> None:
        if block == _ZEROS:
            self.ended = True  # the end-of-archive blocks; what follows is padding
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise HarnessError(f"the {self.what} has a corrupt header: {exc}") from None
        if info.type in _EXTENDED:
            if info.size > EXTENDED_LIMIT_BYTES:
                raise HarnessError(f"the {self.what} has a {info.size}-byte extended header")
            self._extended = (info.type, bytearray())
            self._begin(info.size)
            return
        self._apply(info)
        size = 0 if info.type in _NO_DATA else info.size
        self._sink = self.on_member(info)
        self._begin(size)

    def _begin(self, size: int) -> None:
        self._left = size
        self._pad = -size % BLOCK
        if not size:
            self._member_end()

    def _data(self, piece: memoryview) -> None:
        if self._extended is not None:
            self._extended[1].extend(piece)
        elif self._sink is not None:
            self._sink[0](piece)

    def _member_end(self) -> None:
        if self._extended is not None:
            kind, data = self._extended
            self._extended = None
            if kind == tarfile.XHDTYPE:
                self._pending.update(_pax_records(bytes(data)))
            elif kind == tarfile.GNUTYPE_LONGNAME:
                self._pending["path"] = _text(data)
            elif kind == tarfile.GNUTYPE_LONGLINK:
                self._pending["linkpath"] = _text(data)
            return  # a global pax header (g) changes nothing we read
        if self._sink is not None:
            self._sink[1]()
            self._sink = None

    def _apply(self, info: tarfile.TarInfo) -> None:
        pending, self._pending = self._pending, {}
        if "path" in pending:
            info.name = pending["path"]
        if "linkpath" in pending:
            info.linkname = pending["linkpath"]
        if "size" in pending:
            info.size = int(pending["size"])


def _text(data: bytes | bytearray) -> str:
    return bytes(data).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    """A pax header's records ("LENGTH KEY=VALUE\\n", LENGTH counting the whole record)."""
    out, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        if length <= 0:
            break
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def norm(name: str) -> str:
    """A tar member name as a root-relative path: "./usr/bin/" -> "usr/bin"."""
    if "//" in name or "/." in name or name.startswith("."):
        return posixpath.normpath("/" + name).lstrip("/")
    return name.strip("/")  # nothing to normalise (the usual case): the fast way


def wants_content(path: str, size: int) -> bool:
    return size <= CAPTURE_LIMIT_BYTES and (
        path in (APK_DB, DPKG_STATUS) or path.startswith(DPKG_STATUS_DIR + "/"))


def entry_of(member: tarfile.TarInfo, digest: bytes = b"") -> Entry | None:
    path = norm(member.name)
    if not path:
        return None
    head, _, base = path.rpartition("/")
    if base.startswith(".wh."):
        if base == ".wh..wh..opq":
            return Entry(head, OPAQUE)
        return Entry(f"{head}/{base[4:]}" if head else base[4:], WHITEOUT)
    mode = member.mode
    if member.isreg():
        return Entry(path, FILE, member.size, mode, "", digest)
    if member.isdir():
        return Entry(path, DIR, 0, mode)
    if member.issym():
        return Entry(path, SYMLINK, 0, mode, member.linkname)
    if member.islnk():
        return Entry(path, LINK, 0, mode, norm(member.linkname))
    return Entry(path, OTHER, 0, mode)


class LayerParser:
    """One layer tar, fed in pieces: its entries (each regular file's content hashed with
    xxh3-128, ~7 GB/s here: duplicates need no cryptographic hash) and the package databases."""

    def __init__(self, what: str = "layer tar"):
        self.entries: list[Entry] = []
        self.captured: dict[str, bytes] = {}
        self.reader = TarReader(self._member, what)
        self.feed = self.reader.feed
        self.close = self.reader.close

    def _member(self, info: tarfile.TarInfo) -> Sink | None:
        if not (info.isreg() and info.size):
            entry = entry_of(info)
            if entry is not None:
                self.entries.append(entry)
            return None
        digest = xxhash.xxh3_128()
        kept: list[bytes] | None = [] if wants_content(norm(info.name), info.size) else None

        def write(piece: memoryview) -> None:
            digest.update(piece)
            if kept is not None:
                kept.append(bytes(piece))

        def close() -> None:
            entry = entry_of(info, digest.digest())
            if entry is not None:
                self.entries.append(entry)
                if kept is not None:
                    self.captured[entry.path] = b"".join(kept)
        return write, close


def read_layer(fileobj: BinaryIO, piece_bytes: int = 1 << 20) -> tuple[list[Entry], dict[str, bytes]]:
    """The entries of the layer tar `fileobj` reads, and the package databases' contents."""
    layer = LayerParser()
    while piece := fileobj.read(piece_bytes):
        layer.feed(piece)
    layer.close()
    return layer.entries, layer.captured
