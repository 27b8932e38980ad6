"""Progress for logs that no one watches live: a CI job, `harness run > log 2>&1`.

A terminal gets rich's status line (cli/run.py). Without one, every build is one plain line
with its time, and while a build runs a line is written at least every `interval` seconds
(30 by default) naming the step it is in, so a log never goes silent for minutes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO


class PlainProgress:
    def __init__(self, stream: TextIO, interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self.head: str | None = None  # the build in progress
        self.started = self.last_line = clock()
        self.last_step = ""
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.beat = threading.Thread(target=self._heartbeat, daemon=True)
        self.beat.start()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_line = self.clock()

    def _close_build(self) -> None:
        if self.head is not None:
            self._print(f"{self.head}: {self.clock() - self.started:.1f} s")
            self.head = None

    def variant(self, name, index, total, repetition, repeat) -> None:
        with self.lock:
            self._close_build()
            self.head = f"[{index + 1}/{total}] {name} build {repetition}/{repeat}"
            self.started, self.last_step = self.clock(), ""

    def step(self, text: str) -> None:
        with self.lock:
            self.last_step = " ".join(text.split())[:100]

    def note(self, text: str) -> None:
        with self.lock:
            self._close_build()
            self._print(text)

    def finished(self, name: str, ok: bool, detail: str) -> None:
        with self.lock:
            self._close_build()
            self._print(f"{name}: ok" if ok else f"{name}: failed: {detail}")

    def close(self) -> None:
        self.done.set()
        with self.lock:
            self._close_build()

    def _heartbeat(self) -> None:
        while not self.done.wait(self.interval / 4):
            with self.lock:
                if self.clock() - self.last_line >= self.interval:
                    what = self.head or "working"
                    step = f": {self.last_step}" if self.last_step else ""
                    self._print(f"  ... {what}, {self.clock() - self.started:.0f} s{step}")
