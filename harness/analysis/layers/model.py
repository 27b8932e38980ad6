"""The entries of a layer tar and what is kept of one layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

FILE, LINK, SYMLINK, DIR, WHITEOUT, OPAQUE, OTHER = (
    "file", "hardlink", "symlink", "dir", "whiteout", "opaque", "other")
FILE_KINDS = (FILE, LINK)  # what shows a regular file's bytes


class Entry(NamedTuple):
    """One member of a layer tar. Paths are relative to the root, without a leading '/'.

    A whiteout's path is the path it deletes; an opaque marker's is the directory it
    empties. `target` is a link's target (a hard link's as a root-relative path);
    `digest` an xxh3-128 of a regular file's content (duplicates are found by it)."""
    path: str
    kind: str
    size: int = 0
    mode: int = 0
    target: str = ""
    digest: bytes = b""


@dataclass
class LayerIndex:
    """Everything kept about one layer: its entries, never file contents (except the
    package databases, small and needed whole), and its sizes."""
    diff_id: str
    entries: list[Entry]
    captured: dict[str, bytes]
    tar_bytes: int  # the uncompressed layer tar's length
    blob_bytes: int  # the archive member's length: tar_bytes, or the compressed blob's
    media_type: str  # of the blob as the archive holds it (tar, tar+gzip, tar+zstd)
    compressed_estimate_bytes: int | None = None
    compressed_sampled_bytes: int | None = None  # bytes of the tar the estimate compressed

    def summary(self, app_dir: str = "/app") -> dict:
        """The layer's figures. `size_bytes` counts what Docker's graph-driver store counts
        on disk: regular files (a hard link once) and symlinks by their target's length.
        It is split by path: `node_modules_bytes` anything with a node_modules directory in
        its path, `app_bytes` the rest under `app_dir`, `other_bytes` everything else."""
        app = app_dir.strip("/")
        app_prefix = app + "/" if app else ""
        files = links = modules = in_app = file_count = whiteouts = 0
        for e in self.entries:
            if e.kind == FILE:
                size = e.size
                files += size
                file_count += 1
            elif e.kind == SYMLINK:
                size = len(e.target.encode("utf-8", "surrogateescape"))
                links += size
            else:
                file_count += e.kind == LINK
                whiteouts += e.kind in (WHITEOUT, OPAQUE)
                continue
            if "/node_modules/" in f"/{e.path}/":
                modules += size
            elif e.path.startswith(app_prefix):
                in_app += size
        size = files + links
        sampled = self.compressed_sampled_bytes
        return {
            "diff_id": self.diff_id,
            "size_bytes": size,
            "files_bytes": files,
            "tar_bytes": self.tar_bytes,
            "blob_bytes": self.blob_bytes,
            "media_type": self.media_type,
            "file_count": file_count,
            "whiteout_count": whiteouts,
            "compressed_estimate_bytes": self.compressed_estimate_bytes,
            "compressed_estimate_sampled": None if sampled is None else sampled < self.tar_bytes,
            "compressed_estimate_fraction": (None if sampled is None else
                                             sampled / self.tar_bytes if self.tar_bytes else 1.0),
            "node_modules_bytes": modules,
            "app_bytes": in_app,
            "other_bytes": size - modules - in_app,
        }
