"""A timed build through the Docker SDK's streaming build API (the classic builder).

The build context is packed before the clock starts, so the build time is the
engine's work on a context it already has, and the context is measured on its own.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tarfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker
from docker.utils import build as docker_build

from harness.errors import BuildFailed, one_line

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


def context_paths(context_dir: Path, dockerignore: bool = True) -> set[str]:
    """The files and directories of the context (relative paths) a build is sent, after
    .dockerignore as docker-py applies it; with `dockerignore=False`, every one of them."""
    patterns = dockerignore_patterns(context_dir) if dockerignore else []
    return set(docker_build.exclude_paths(str(context_dir), patterns))


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

    Each step image this build made is appended to `made` (short id) as the stream
    announces it, so the caller can remove them even when the build is interrupted
    half-way; images served from the cache are not: they may be another build's. `timeout` bounds
    the whole build: at the deadline the connection is closed, which makes the engine
    cancel the build, and BuildFailed says so.
    """
    progress = _Progress(labels, on_line, [] if made is None else made)
    context.fileobj.seek(0)
    start = time.perf_counter()
    with _deadline(client, timeout) as expired:
        try:
            for chunk in _build_stream(client, context, tag, target, build_args, nocache, labels):
                if not progress.feed(chunk):
                    break
        except Exception:
            if not expired.is_set():
                raise
        if expired.is_set():
            raise BuildFailed(f"timed out after {timeout:g} s (--timeout)", list(progress.tail),
                              progress.step_images)
    seconds = time.perf_counter() - start
    if progress.error:
        raise BuildFailed(one_line(progress.error) or "build failed", list(progress.tail), progress.step_images)
    if not progress.image_id:
        raise BuildFailed("the engine reported no image id", list(progress.tail), progress.step_images)
    return BuildOutcome(progress.image_id, seconds, progress.steps_total, progress.steps_cached,
                        list(progress.tail), progress.step_images)


@dataclass
class _Progress:
    """What the classic builder's stream has said so far, fed one decoded chunk at a time."""
    labels: dict[str, str] | None
    on_line: Callable[[str], None]
    step_images: list[str]  # the caller's `made` list itself, so it sees each as it comes
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    image_id: str | None = None
    error: str | None = None
    steps_total: int = 0
    steps_cached: int = 0
    counted: bool = False  # the current step is the Dockerfile's own (see _counts)
    from_cache: bool = False  # the current step was served from the cache

    def feed(self, chunk: dict) -> bool:
        """Take one chunk; False once the engine reported an error (the build is over)."""
        if "error" in chunk or "errorDetail" in chunk:
            self.error = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
            return False
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = aux["ID"]
        for line in (chunk.get("stream") or "").splitlines():
            line = line.rstrip()
            if line:
                self._line(line)
        return True

    def _line(self, line: str) -> None:
        self.tail.append(line)
        m = _STEP.match(line)
        if m:
            self.counted = _counts(m.group(3), self.labels)
            self.steps_total += self.counted
            self.on_line(f"step {m.group(1)}/{m.group(2)}: {m.group(3)}")
        elif line.strip() == "---> Using cache":
            self.steps_cached += self.counted
            self.from_cache = True
        else:
            img = _STEP_IMAGE.match(line)
            if img and not self.from_cache:  # a cached image may be another build's
                self.step_images.append(img.group(1))
            self.from_cache = self.from_cache and not img


def _counts(instruction: str, labels: dict[str, str] | None) -> bool:
    """A step of the Dockerfile's own: FROM is resolved, never built or cached, and the
    LABEL steps the engine appends for our labels are the harness's, not the Dockerfile's."""
    word, _, rest = instruction.partition(" ")
    if word.upper() == "FROM":
        return False
    return not (word.upper() == "LABEL" and labels
                and any(rest.startswith(f"{key}=") for key in labels))


def _build_stream(client, context: Context, tag, target, build_args, nocache, labels):
    return client.api.build(
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
    )


@contextmanager
def _deadline(client, timeout: float | None) -> Iterator[threading.Event]:
    """Close the build's HTTP response at the deadline; the engine then cancels the build.

    The SDK hides the response inside its stream, so a session hook catches it."""
    expired = threading.Event()
    if not timeout:
        yield expired
        return
    caught: list = []

    def hook(response, *args, **kwargs) -> None:
        caught.append(response)

    def fire() -> None:
        expired.set()
        for response in caught:
            _hang_up(client, response)

    client.api.hooks["response"].append(hook)
    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
        client.api.hooks["response"].remove(hook)


def _hang_up(client, response) -> None:
    """Shut the socket down under a blocked read (closing the response alone waits for it)."""
    try:
        raw = client.api._get_raw_response_socket(response)
        getattr(raw, "_sock", raw).shutdown(socket.SHUT_RDWR)  # SocketIO wraps the socket
    except (AttributeError, OSError):
        pass
    response.close()



def measure_unignored(context_dir: Path, dockerfile_text: str, dockerfile_name: str) -> tuple[int, int]:
    """Bytes and files the context would send without .dockerignore (never built)."""
    with docker_build.tar(str(context_dir), exclude=None,
                          dockerfile=(dockerfile_name, dockerfile_text)) as fileobj:
        size = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(0)
        with tarfile.open(fileobj=fileobj, mode="r") as tf:
            files = sum(1 for m in tf if m.isfile())
    return size, files
