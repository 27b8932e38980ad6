"""A timed build through the Docker SDK's streaming build API (the classic builder).

The build context is packed before the clock starts, so the build time is the
engine's work on a context it already has, and the context is measured on its own.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, IO

import docker
from docker.utils import build as docker_build

from .errors import BuildFailed

LOG_TAIL = 20
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_STEP_IMAGE = re.compile(r"^ ?---> ([0-9a-f]{12})$")  # the image a step produced


@dataclass
class Context:
    """A packed build context, ready to send."""
    fileobj: IO[bytes]
    size_bytes: int
    file_count: int
    seconds: float
    dockerfile_name: str
    sha256: str  # of the files' names and contents (not mtimes): same app, same hash

    def close(self) -> None:
        self.fileobj.close()


def dockerignore_patterns(context_dir: Path) -> list[str]:
    """The .dockerignore patterns, read as docker-py reads them."""
    path = context_dir / ".dockerignore"
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pack_context(context_dir: Path, dockerfile_text: str, dockerfile_name: str) -> Context:
    """Tar the context after .dockerignore, with the (possibly rewritten) Dockerfile added.

    The Dockerfile travels inside the context under its own name, so the variant's file
    on disk is never modified and may live outside the context.
    """
    start = time.perf_counter()
    fileobj = docker_build.tar(
        str(context_dir),
        exclude=dockerignore_patterns(context_dir),
        dockerfile=(dockerfile_name, dockerfile_text),
    )
    seconds = time.perf_counter() - start
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    files, digest = _content_digest(fileobj, skip={dockerfile_name, ".dockerignore"})
    fileobj.seek(0)
    return Context(fileobj, size, files, seconds, dockerfile_name, digest)


def _content_digest(fileobj: IO[bytes], skip: set[str]) -> tuple[int, str]:
    """Count the files sent and hash what matters for a rebuild: paths and bytes.

    The Dockerfile and .dockerignore are skipped: the Dockerfile has its own hash and
    docker-py rewrites .dockerignore when it adds the Dockerfile.
    """
    digest = hashlib.sha256()
    files = 0
    with tarfile.open(fileobj=fileobj, mode="r") as tf:
        for member in tf:
            if not member.isfile():
                continue
            files += 1
            if member.name in skip:
                continue
            digest.update(member.name.encode() + b"\0")
            with tf.extractfile(member) as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return files, digest.hexdigest()


@dataclass
class BuildOutcome:
    image_id: str
    seconds: float
    steps_total: int
    steps_cached: int
    log_tail: list[str] = field(default_factory=list)
    step_images: list[str] = field(default_factory=list)  # short ids, in build order


def build_image(
    client: docker.DockerClient,
    context: Context,
    *,
    tag: str,
    target: str | None,
    build_args: dict[str, str],
    nocache: bool,
    labels: dict[str, str] | None = None,
    on_line: Callable[[str], None] = lambda line: None,
    timeout: float | None = None,
    made: list[str] | None = None,
) -> BuildOutcome:
    """Build and time one image; raise BuildFailed with the engine's message and log tail.

    Each step image's short id is appended to `made` as the stream announces it, so the
    caller can remove them even when the build is interrupted half-way.
    """
    tail: deque[str] = deque(maxlen=LOG_TAIL)
    image_id = None
    steps_total = steps_cached = 0
    step_images: list[str] = [] if made is None else made
    error = None
    context.fileobj.seek(0)
    start = time.perf_counter()
    stream = client.api.build(
        fileobj=context.fileobj,
        custom_context=True,
        dockerfile=context.dockerfile_name,
        tag=tag,
        target=target,
        buildargs=build_args or None,
        nocache=nocache,
        rm=True,
        forcerm=True,
        decode=True,
        labels=labels,
        timeout=timeout,
    )
    for chunk in stream:
        if "error" in chunk or "errorDetail" in chunk:
            error = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
            break
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
        text = chunk.get("stream")
        if not text:
            continue
        for line in text.splitlines():
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            m = _STEP.match(line)
            if m:
                steps_total += 1
                on_line(f"step {m.group(1)}/{m.group(2)}: {m.group(3)}")
            elif line.strip() == "---> Using cache":
                steps_cached += 1
            else:
                img = _STEP_IMAGE.match(line)
                if img:
                    step_images.append(img.group(1))
    seconds = time.perf_counter() - start
    if error:
        raise BuildFailed(_one_line(error), list(tail), step_images)
    if not image_id:
        raise BuildFailed("the engine reported no image id", list(tail), step_images)
    return BuildOutcome(image_id, seconds, steps_total, steps_cached, list(tail), step_images)


def _one_line(message: str) -> str:
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    return " ".join(lines)[:400] if lines else "build failed"

