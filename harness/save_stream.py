"""An image's save stream (`GET /images/{id}/get`, what `docker save` writes), in pieces.

The request goes through the SDK. When the connection is a plain socket (the engine's Unix
socket, or TCP without TLS) and harness._drain was built, the body is read from the socket
in C, its chunk framing taken out there (`_drain.c` says why); otherwise the SDK reads it,
as `client.api.get_image` does."""

from __future__ import annotations

from collections.abc import Iterator

import docker

try:
    from . import _drain
except ImportError:  # built without a C compiler
    _drain = None

# Small enough that parsing a piece takes less than the engine needs to fill the socket
# (about 220 KiB, 0.4 ms of the stream), so it rarely stops for the parse. On the node:20
# image (2 cores), from the first byte, medians of 3: 256 KiB 2.96 s, 128 KiB 3.11 s, 1 MiB
# 3.57 s; the stream read alone 2.81 s.
PIECE_BYTES = 256 << 10


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
    return _drain.Drain(fd, prefix, message.chunked, PIECE_BYTES)
