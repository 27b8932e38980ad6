"""One layer tar, read with the standard library's tar reader as a stream: its entries,
each regular file's content hash, and the package databases' contents."""

from __future__ import annotations

import posixpath
import tarfile
from typing import BinaryIO

import xxhash

from ...errors import HarnessError
from .model import DIR, FILE, LINK, OPAQUE, OTHER, SYMLINK, WHITEOUT, Entry

# tarfile's stream reader slices its buffer at every read, so a larger buffer costs more per
# header; 64 KiB measured best on the node:20 image's layers (see benchmarks/RESULTS.md).
TAR_BUFFER_BYTES = 64 << 10
READ_BYTES = 1 << 20  # file contents are hashed this much at a time: memory stays flat
CAPTURE_LIMIT_BYTES = 16 << 20
APK_DB = "lib/apk/db/installed"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_DIR = "var/lib/dpkg/status.d"  # distroless: one file per package


def norm(name: str) -> str:
    """A tar member name as a root-relative path: "./usr/bin/" -> "usr/bin"."""
    return posixpath.normpath("/" + name).lstrip("/")


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


def read_layer(fileobj: BinaryIO) -> tuple[list[Entry], dict[str, bytes], int]:
    """The entries of the layer tar `fileobj` reads, the package databases' contents, and
    where the tar reader stopped: the end-of-archive blocks, or a header it could not read
    (the caller checks that only zeros follow). A truncated tar is a HarnessError."""
    entries: list[Entry] = []
    captured: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r|", bufsize=TAR_BUFFER_BYTES) as tar:
            for member in tar:
                digest = b""
                if member.isreg() and member.size:
                    keep = wants_content(norm(member.name), member.size)
                    digest = _hash(tar.extractfile(member), captured if keep else None, member)
                entry = entry_of(member, digest)
                if entry is not None:
                    entries.append(entry)
            end = tar.offset
    except (tarfile.TarError, EOFError) as exc:
        raise HarnessError(f"unreadable layer tar: {exc}") from None
    return entries, captured, end


def _hash(data: BinaryIO, captured: dict[str, bytes] | None, member: tarfile.TarInfo) -> bytes:
    digest = xxhash.xxh3_128()  # ~7 GB/s here; duplicates need no cryptographic hash
    kept = []
    got = 0
    while piece := data.read(READ_BYTES):
        digest.update(piece)
        got += len(piece)
        if captured is not None:
            kept.append(piece)
    if got != member.size:
        raise tarfile.ReadError(f"{member.name}: {got} of {member.size} bytes")
    if captured is not None:
        captured[norm(member.name)] = b"".join(kept)
    return digest.digest()
