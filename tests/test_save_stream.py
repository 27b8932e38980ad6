"""The save stream: harness._drain's chunk decoding against bodies written into a socket
pair (no engine), and save_stream against the SDK's own read on a real image."""

from __future__ import annotations

import random
import signal
import socket
import threading
import time

import docker
import pytest
from conftest import require

from harness import save_stream

Drain = save_stream._drain.Drain if save_stream._drain is not None else None


def test_drain_is_built():
    """Optional at install (like the C scan), but a CI install without it reads the stream
    through the SDK, with the engine waiting on the parse: fail there, not silently."""
    require(Drain is not None, "harness._drain not built (no C compiler at install)")


def chunked(body: bytes, sizes: list[int], *, extension: bytes = b"", trailer: bytes = b"") -> bytes:
    """`body` in HTTP/1.1 chunks of the given sizes (cycled), then the last chunk and trailer."""
    out, i, k = [], 0, 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        k += 1
        out.append(b"%x%s\r\n%s\r\n" % (len(body[i:i + n]), extension, body[i:i + n]))
        i += n
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def feed(wire: bytes, splits: list[int], *, prefix_len: int = 0, capacity: int = 1 << 16,
         close_early: bool = False, piece: int = 4096, framed: bool = True) -> tuple[bytes, bool]:
    """Writes `wire` after its first `prefix_len` bytes into one end of a socket pair, in
    pieces of the given sizes (cycled), and reads the body from a Drain on the other end
    (`framed`: in HTTP/1.1 chunks; else the body as it is, ended by closing)."""
    require(Drain is not None, "harness._drain not built")
    ours, theirs = socket.socketpair()
    drain = None

    def writer():
        i, k = prefix_len, 0
        while i < len(wire):
            n = splits[k % len(splits)]
            theirs.sendall(wire[i:i + n])
            i += n
            k += 1
        if close_early or not framed:
            theirs.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=writer)
    try:
        drain = Drain(ours.fileno(), wire[:prefix_len], framed, capacity)
        thread.start()
        got = []
        while data := drain.read(piece):
            got.append(data)
        return b"".join(got), drain.finished
    finally:
        thread.join()
        if drain is not None:
            drain.close()
        ours.close()
        theirs.close()


def test_a_chunked_body_comes_out_whole_however_it_is_cut():
    body = random.Random(7).randbytes(300_000)
    wire = chunked(body, [32768, 1, 4095, 70000], extension=b";name=value", trailer=b"X-Trailer: 1\r\n")
    for splits, prefix_len, capacity in (([len(wire)], 0, 1 << 20), ([1, 2, 3, 5, 7], 9, 97),
                                         ([65536], 100, 1 << 16), ([1000, 33000], 0, 5000)):
        got, finished = feed(wire, splits, prefix_len=prefix_len, capacity=capacity)
        assert got == body, (splits, prefix_len, capacity)
        assert finished


def test_an_unframed_body_comes_out_whole_and_ends_where_the_connection_does():
    """HTTP/1.0's body (save_stream asks for it): received straight into the pieces."""
    body = random.Random(8).randbytes(300_000)
    for splits, prefix_len, capacity, piece in (([len(body)], 0, 1 << 20, 1 << 20), ([1, 2, 3, 5, 7], 9, 97, 50),
                                                ([65536], 100, 1 << 16, 4096), ([1000, 33000], 70_000, 5000, 5000)):
        got, finished = feed(body, splits, prefix_len=prefix_len, capacity=capacity, piece=piece, framed=False)
        assert got == body, (splits, prefix_len, capacity, piece)
        assert finished


def test_uppercase_hex_and_bare_line_feeds_are_read():
    wire = b"A\nabcdefghij\n1A\r\n" + b"k" * 26 + b"\r\n0\n\n"
    got, finished = feed(wire, [3])
    assert got == b"abcdefghij" + b"k" * 26 and finished


def test_a_connection_closed_mid_body_is_an_error_not_an_end():
    wire = chunked(b"x" * 10_000, [4096])
    with pytest.raises(OSError, match="closed the connection before the end"):
        feed(wire[:5000], [1000], close_early=True)


def test_a_malformed_chunk_size_is_an_error():
    with pytest.raises(OSError, match="malformed chunk size"):
        feed(b"zz\r\nabc\r\n0\r\n\r\n", [100])
    with pytest.raises(OSError, match="no line end after a chunk"):
        feed(b"3\r\nabcdef\r\n0\r\n\r\n", [100])


def test_a_read_waits_for_data_without_the_gil_and_lets_ctrl_c_in():
    """While the engine exports, nothing comes for seconds: the wait must leave other
    threads running and stop for Ctrl-C within a tick; a closed Drain reads no more."""
    require(Drain is not None, "harness._drain not built")
    ours, theirs = socket.socketpair()
    try:
        drain = Drain(ours.fileno(), b"", True, 16)
        ticks = []
        ticker = threading.Thread(target=lambda: [ticks.append(time.sleep(0.01)) for _ in range(20)])
        ticker.start()
        timer = threading.Timer(0.3, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
        timer.start()
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt):
            drain.read(8)
        assert 0.3 <= time.perf_counter() - start < 1.0
        ticker.join()
        timer.join()
        assert len(ticks) == 20  # ran while read waited
        theirs.sendall(b"3\r\nabc\r\n")  # less than the read wants: it goes on waiting
        timer = threading.Timer(0.3, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            drain.read(8)
        timer.join()
        theirs.sendall(b"2\r\nde\r\n0\r\n\r\n")
        assert drain.read(8) == b"abcde" and drain.finished  # the interrupted reads lost nothing
        drain.close()
        with pytest.raises(ValueError, match="closed"):
            drain.read(1)
    finally:
        ours.close()
        theirs.close()


@pytest.mark.engine
def test_save_stream_gives_the_sdks_bytes(docker_client, standins_built, monkeypatch):
    """Asked as HTTP/1.0 and read through the Drain (in CI both must be the way it goes),
    the same bytes as the SDK's own read; an image that is not there, the SDK's error."""
    image = standins_built["harness-standin/node:20-alpine"].tag
    used = []
    original = save_stream._drained
    monkeypatch.setattr(save_stream, "_drained",
                        lambda message: used.append((message.version, message.chunked, original(message))) or used[-1][2])
    drained = b"".join(save_stream.save_stream(docker_client, image))
    require(used and used[0][2] is not None, "the save stream was not drained (no C build, or not a plain socket)")
    assert used[0][:2] == (10, False)  # unframed: the engine answered the HTTP/1.0 request so
    expected = b"".join(docker_client.api.get_image(image))
    assert len(drained) == len(expected) and drained == expected
    with pytest.raises(docker.errors.NotFound):
        list(save_stream.save_stream(docker_client, "harness-test/no-such-image:1"))
