"""Progress of a run, for a person at a terminal and for a log no one watches live.

A terminal gets one overall bar (`BarProgress`): builds done of the total, time elapsed, time
left (from the history's medians when there is one, calibrated by the builds so far) and the
step in progress. A log (a CI job, `harness run > log 2>&1`) gets `PlainProgress`: every
build is one plain line with its time, and while a build runs a line is written at least
every `interval` seconds (30 by default) naming the step it is in, so a log never goes
silent for minutes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import accumulate
from typing import TYPE_CHECKING, TextIO

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

if TYPE_CHECKING:  # the CLI starts without loading the model
    from harness.bench.estimate import Workload


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

    def variant(self, name, index, total, repetition, repeat, scenario=None) -> None:
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


def time_left(elapsed: float, done: float, total: float, from_history: bool) -> float | None:
    """Seconds left, from the expected seconds done and in total: the expectation alone
    before anything is done (None without a history to expect from), then scaled by how
    long the work so far actually took (which also covers the layer analysis, registry and
    runtime check a build time leaves out)."""
    remaining = max(total - done, 0.0)
    if done <= 0:
        return remaining if from_history else None
    return remaining * elapsed / done


def about(seconds: float | None) -> str:
    """A time left as a person says it: "about 12 min left"."""
    if seconds is None:
        return "time left: after a build"
    if seconds < 60:
        return f"about {max(seconds, 1):.0f} s left"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min left"


FIXED_WIDTH = 72  # spinner, bar, "12/60 builds", elapsed, "about 12 min left", gaps


def bar(console) -> Progress:
    """The overall bar's columns: bar, builds done of the total, elapsed, time left, step.
    The counts and times keep their width in a narrow terminal; the step gives way."""
    fixed = Column(no_wrap=True)
    return Progress(SpinnerColumn(), BarColumn(bar_width=20),
                    TextColumn("{task.fields[builds]}", table_column=fixed),
                    TimeElapsedColumn(), TextColumn("{task.fields[left]}", table_column=fixed),
                    TextColumn("{task.description}", markup=False,  # "[classic, cold]" is text
                               table_column=Column(no_wrap=True, overflow="ellipsis")),
                    console=console, transient=True)


class BarProgress:
    """One bar over the whole run. Its unit is an expected second of build (estimate.py),
    so a cold build moves it further than a cached one; a variant that ends early (failed,
    a scenario skipped) moves it to that variant's end."""

    def __init__(self, progress: Progress, plan: list[Workload],
                 clock: Callable[[], float] = time.monotonic):
        self.p, self.plan, self.clock = progress, plan, clock
        self.index = {w.name: i for i, w in enumerate(plan)}
        self.ends = list(accumulate(w.seconds for w in plan))
        self.build_ends = list(accumulate(w.builds for w in plan))
        self.total = self.ends[-1] if plan else 0.0
        self.from_history = any(w.from_history for w in plan)
        self.done = 0.0  # expected seconds of the builds finished
        self.builds = 0
        self.current: float | None = None  # expected seconds of the build in progress
        self.head = ""
        self.started = clock()
        self.task = progress.add_task("starting", total=self.total or None, builds="", left="")
        self._show("starting")

    def _show(self, text: str) -> None:
        # The step gives way in a narrow terminal: the counts and times keep their place.
        room = max(self.p.console.width - FIXED_WIDTH, 12)
        text = text if len(text) <= room else text[:room - 1] + "…"
        left = time_left(self.clock() - self.started, self.done, self.total, self.from_history)
        self.p.update(self.task, completed=self.done, description=text,
                      builds=f"{self.builds}/{self.build_ends[-1] if self.plan else 0} builds",
                      left=about(left))

    def _close_build(self) -> None:
        if self.current is not None:
            self.done += self.current
            self.builds += 1
            self.current = None

    def variant(self, name, index, total, repetition, repeat, scenario=None) -> None:
        self._close_build()
        work = self.plan[index] if 0 <= index < len(self.plan) else None
        self.current = work.seconds_per_build.get(scenario, 0.0) if work and scenario else 0.0
        self.head = f"[{index + 1}/{total}] {name} {repetition}/{repeat}"
        self._show(self.head)

    def step(self, text: str) -> None:
        self._show(f"{self.head}  {text[:60]}" if self.head else text[:80])

    def note(self, text: str) -> None:
        self.p.console.print(text, highlight=False, markup=False)

    def finished(self, name: str, ok: bool, detail: str) -> None:
        self.current = None
        i = self.index.get(name)
        if i is not None:  # every build of the variant is behind us, run or not
            self.done = max(self.done, self.ends[i])
            self.builds = max(self.builds, self.build_ends[i])
        mark = "[green]ok[/]" if ok else f"[red]failed[/]: {detail}"
        self.p.console.print(f"{name}: {mark}", highlight=False)
        self.head = ""
        self._show("")
