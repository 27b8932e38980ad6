"""Progress in a log (no terminal): a line per build with its time, and never a silence
longer than the interval while a build runs. Pure: a fake clock and a short interval."""

from __future__ import annotations

import io
import re
import time

from harness.cli.progress import PlainProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_each_build_is_one_line_with_its_time():
    out, clock = io.StringIO(), Clock()
    p = PlainProgress(out, interval=3600, clock=clock)
    p.variant("api [classic, cold", 0, 2, 1, 3)
    p.step("Step 3/9 : RUN npm ci")
    clock.now = 12.34
    p.variant("api [classic, cold", 0, 2, 2, 3)
    clock.now = 20.0
    p.finished("api", True, "")
    p.note("resolving base image node:22-slim")
    p.close()
    assert out.getvalue().splitlines() == [
        "[1/2] api [classic, cold build 1/3: 12.3 s",
        "[1/2] api [classic, cold build 2/3: 7.7 s",
        "api: ok",
        "resolving base image node:22-slim",
    ]


def test_a_long_step_gets_a_line_every_interval():
    out = io.StringIO()
    p = PlainProgress(out, interval=0.2)
    p.variant("web [classic, cold", 1, 2, 1, 1)
    p.step("Step 5/9 : RUN npm run build")
    time.sleep(0.9)
    p.close()
    beats = [line for line in out.getvalue().splitlines() if line.startswith("  ... ")]
    assert len(beats) >= 3, out.getvalue()
    assert all(re.fullmatch(r"  \.\.\. \[2/2\] web \[classic, cold build 1/1, \d+ s: "
                            r"Step 5/9 : RUN npm run build", b) for b in beats), beats
    assert out.getvalue().splitlines()[-1].startswith("[2/2] web [classic, cold build 1/1: ")
