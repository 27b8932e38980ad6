"""An image's save stream (`GET /images/{id}/get`, what `docker save` writes), in pieces.

The request goes through the SDK. When the connection is a plain socket (the engine's Unix
socket, or TCP without TLS) and harness._drain was built, the body is drained by a C thread
that never takes the GIL (`_drain.c` says why); otherwise the SDK reads it, as
`client.api.get_image` does."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import docker

try:
    from . import _drain
except ImportError:  # built without a C compiler
    _drain = None

PIECE_BYTES = 1 << 20
RING_BYTES = 32 << 20  # what the engine may run ahead of the parse: about 50 ms of the stream
PARSE_NICENESS = 10

T = TypeVar("T")


def save_stream(client: docker.DockerClient, image_id: str) -> Iterator[bytes]:
    """The save stream of `image_id`; the SDK's errors (ImageNotFound, APIError) as it raises them."""
    api = client.api
    # The calls get_image makes (private to the SDK, which uses them the same way everywhere).
    response = api._get(api._url("/images/{0}/get", image_id), stream=True)
    try:
        api._raise_for_status(response)
        api._disable_socket_timeout(api._get_raw_response_socket(response))  # the first byte may take minutes
        drained = _drained(api, response)
        if drained is None:
            yield from response.iter_content(PIECE_BYTES, False)
            return
        try:
            while piece := drained.read(PIECE_BYTES):
                yield piece
            if not drained.finished:
                raise OSError("the save stream ended early")
        finally:
            drained.close()
    finally:
        response.close()  # a body not read by urllib3: the connection is closed, not reused


def _drained(api, response) -> _drain.Drain | None:
    """A Drain on the response's socket, or None where the SDK must read it (no C build,
    TLS, SSH or a named pipe in between, or a client laid out differently)."""
    if _drain is None or not (api.base_url.startswith("http+docker://localhost")
                              or api.base_url.startswith("http://")):
        return None
    try:
        message = response.raw._fp  # http.client's response, its headers read, its body not
        buffered = message.fp  # the socket's buffered reader: may hold the body's first bytes
        fd = buffered.fileno()
    except (AttributeError, OSError):
        return None
    if message.chunk_left is not None or message.length is not None:
        return None  # a body with a length, or one http.client began reading: not the engine's stream
    # peek returns what is buffered without reading, or waits for the first bytes if nothing is.
    prefix = buffered.read(len(buffered.peek()))
    return _drain.Drain(fd, prefix, message.chunked, RING_BYTES)


def consume_aside(stream: Iterator[bytes], consume: Callable[[Iterable[bytes]], T]) -> T:
    """`consume(stream)` on a thread of its own at a lower priority, this thread waiting.

    The engine's export needs a core of its own while it streams. On a small machine a
    parse that takes it slows the stream, though the parse mostly waits for the engine
    anyway. With the parse thread PARSE_NICENESS lower, the node:20 image (2 cores) streamed
    in 2.60 s against 2.93 s (medians of 5 alternating pairs). The first piece is read here,
    so the request and the drain's thread start at this thread's priority.

    An exception here (Ctrl-C) stops the parse at its next piece; the parse's own
    exceptions are raised here."""
    first = next(stream, None)
    stop, done = threading.Event(), threading.Event()
    outcome: dict = {}

    def pieces() -> Iterator[bytes]:
        if first is not None:
            yield first
        for piece in stream:
            if stop.is_set():
                raise KeyboardInterrupt("the analysis was stopped")
            yield piece

    def run() -> None:
        try:
            _lower_priority()
            outcome["value"] = consume(pieces())
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            try:
                getattr(stream, "close", lambda: None)()  # a save stream's drain and connection, now
            finally:
                done.set()

    # Waited for with an Event: a Thread.join that Ctrl-C interrupts marks the thread
    # stopped while it still runs (Python 3.11), and a second join returns at once.
    threading.Thread(target=run, name="save-stream-parse", daemon=True).start()
    try:
        done.wait()
    except BaseException:
        stop.set()
        done.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _lower_priority() -> None:
    """This thread's niceness up by PARSE_NICENESS (per thread on Linux; elsewhere it
    would be the whole process's, so left alone)."""
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + PARSE_NICENESS))
    except OSError:
        pass  # refused (a sandbox): the parse runs at the usual priority
