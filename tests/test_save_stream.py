"""The save stream: harness._drain's chunk decoding and ring against bodies written into a
socket pair (no engine), and save_stream against the SDK's own read on a real image."""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import threading
import time

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
         close_early: bool = False, piece: int = 4096) -> tuple[bytes, bool]:
    """Writes `wire` after its first `prefix_len` bytes into one end of a socket pair, in
    pieces of the given sizes (cycled), and reads the body from a Drain on the other end."""
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
        if close_early:
            theirs.close()

    thread = threading.Thread(target=writer)
    try:
        drain = Drain(ours.fileno(), wire[:prefix_len], True, capacity)
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


def test_close_stops_a_thread_that_waits_for_data_or_for_room():
    require(Drain is not None, "harness._drain not built")
    for send in (b"", b"40\r\n" + b"y" * 64):  # nothing yet; more than the ring holds
        ours, theirs = socket.socketpair()
        try:
            theirs.sendall(send)
            drain = Drain(ours.fileno(), b"", True, 16)
            time.sleep(0.05)
            start = time.perf_counter()
            drain.close()
            assert time.perf_counter() - start < 1.0
            with pytest.raises(ValueError, match="closed"):
                drain.read(1)
        finally:
            ours.close()
            theirs.close()


@pytest.mark.engine
def test_save_stream_gives_the_sdks_bytes(docker_client, standins_built, monkeypatch):
    """Through the Drain (in CI it must be the one used) and through the SDK, the same bytes."""
    image = standins_built["harness-standin/node:20-alpine"].tag
    used = []
    original = save_stream._drained
    monkeypatch.setattr(save_stream, "_drained",
                        lambda api, response: used.append(original(api, response)) or used[-1])
    drained = b"".join(save_stream.save_stream(docker_client, image))
    require(used and used[0] is not None, "the save stream was not drained (no C build, or not a plain socket)")
    expected = b"".join(docker_client.api.get_image(image))
    assert len(drained) == len(expected) and drained == expected


def test_consume_aside_runs_at_a_lower_priority_and_hands_back_its_result_or_error():
    seen = {}

    def consume(pieces):
        tid = threading.get_native_id()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        seen["thread"] = tid
        return b"".join(pieces)

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert save_stream.consume_aside(iter([b"a", b"b", b"c"]), consume) == b"abc"
    assert seen["thread"] != threading.get_native_id()
    if sys.platform.startswith("linux"):
        assert seen["nice"] == min(19, here + save_stream.PARSE_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # this thread's unchanged

    def broken(pieces):
        next(iter(pieces))
        raise ValueError("bad piece")

    closed = []

    def stream():
        try:
            yield from (b"x", b"y")
        finally:
            closed.append(True)

    with pytest.raises(ValueError, match="bad piece"):
        save_stream.consume_aside(stream(), broken)
    assert closed == [True]  # the stream (drain, connection) closed once the parse is over


def test_consume_aside_stops_the_parse_when_the_waiting_thread_is_interrupted():
    """Ctrl-C reaches the waiting thread; the parse stops at its next piece and the stream closes."""
    closed, parsed = [], []

    def stream():
        try:
            for i in range(1000):
                yield b"%d" % i
        finally:
            closed.append(True)

    def slow(pieces):
        for piece in pieces:
            parsed.append(piece)
            time.sleep(0.01)

    timer = threading.Timer(0.1, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        save_stream.consume_aside(stream(), slow)
    timer.join()
    assert closed == [True] and 0 < len(parsed) < 1000
