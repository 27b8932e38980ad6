"""An image's save stream (`GET /images/{id}/get`, what `docker save` writes), in pieces.

When the connection is a plain socket (the engine's Unix socket, or TCP without TLS) and
harness._drain was built, the request goes out as HTTP/1.0 on a connection the SDK opens,
and the body is read from the socket in C (`_drain.c` says why). Asked so, the engine sends
the body as it is, without HTTP/1.1's chunks, and ends it by closing the connection: on the
node:20 image it spent 0.73 s of CPU on the stream instead of 0.82-1.02 (strace of a save: a 32
KiB chunk takes it three writes to the socket, one of them the framing's few bytes, against
one unframed), and the stream is received straight into the pieces. The tar's end-of-archive
blocks and its manifest tell a whole stream from a cut one. Otherwise the SDK asks and reads
it, as `client.api.get_image` does (its errors, ImageNotFound and the rest, are raised so
in every case).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

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
    url = api._url("/images/{0}/get", image_id)
    unframed = _unframed(api, url)
    if unframed is not None:
        sock, response = unframed
        try:
            drained = _drained(response)
            if drained is None:  # not the body the engine sends for a save: http.client reads it
                yield from iter(lambda: response.read(PIECE_BYTES), b"")
            else:
                yield from _pieces(drained)
        finally:
            response.close()
            sock.close()
        return
    # The calls get_image makes (private to the SDK, which uses them the same way everywhere).
    response = api._get(url, stream=True)
    try:
        api._raise_for_status(response)
        api._disable_socket_timeout(api._get_raw_response_socket(response))  # the first byte may take minutes
        drained = _drained(response.raw._fp) if _plain(api) else None
        if drained is None:
            yield from response.iter_content(PIECE_BYTES, False)
        else:
            yield from _pieces(drained)
    finally:
        response.close()  # a body not read by urllib3: the connection is closed, not reused


def _plain(api) -> bool:
    """Whether the SDK's connection is a plain socket: the engine's Unix socket, or TCP
    without TLS (not SSH, a named pipe or TLS), and the C reader was built."""
    return _drain is not None and (api.base_url.startswith("http+docker://localhost")
                                   or api.base_url.startswith("http://"))


def _unframed(api, url: str) -> tuple[socket.socket, http.client.HTTPResponse] | None:
    """The save request sent as HTTP/1.0 on a new connection of the SDK's own pool, and the
    engine's 200 response, its headers read; None where the SDK must ask (not a plain
    socket, a client laid out differently, or any other answer than a 200: the SDK's
    request then raises its error)."""
    if not _plain(api):
        return None
    try:
        conn = api.get_adapter(url).get_connection(url)._new_conn()
    except AttributeError:
        return None
    conn._http_vsn, conn._http_vsn_str = 10, "HTTP/1.0"  # http.client's own switch
    target = urlsplit(url)
    # Connection: close is what HTTP/1.0 means without a length; the session's keep-alive would contradict it.
    headers = {k: v for k, v in api.headers.items() if k.lower() != "connection"}
    sock = None
    try:
        # http.client's request and response, not urllib3's wrappers around them.
        http.client.HTTPConnection.request(conn, "GET", target.path + (f"?{target.query}" if target.query else ""),
                                           headers=headers)
        sock = conn.sock  # the response, which the connection hands it to, keeps it open
        response = http.client.HTTPConnection.getresponse(conn)
    except BaseException:
        conn.close()
        if sock is not None:
            sock.close()
        raise
    if response.status != 200:
        response.close()
        sock.close()
        conn.close()
        return None
    sock.settimeout(None)  # the SDK's timeout was for the headers, as in its own save
    return sock, response


def _pieces(drained: _drain.Drain) -> Iterator[bytes]:
    try:
        while piece := drained.read(PIECE_BYTES):
            yield piece
        if not drained.finished:
            raise OSError("the save stream ended early")
    finally:
        drained.close()


def _drained(message: http.client.HTTPResponse) -> _drain.Drain | None:
    """A Drain on the socket of http.client's `message` (its headers read, its body not),
    or None where it cannot be read so."""
    try:
        buffered = message.fp  # the socket's buffered reader: may hold the body's first bytes
        fd = buffered.fileno()
    except (AttributeError, OSError):
        return None
    if message.length is not None or (message.chunked and message.chunk_left is not None):
        return None  # a body with a length, or chunks http.client began reading: not the engine's stream
    # peek returns what is buffered without reading, or waits for the first bytes if nothing is.
    prefix = buffered.read(len(buffered.peek()))
    return _drain.Drain(fd, prefix, message.chunked, PIECE_BYTES)
