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


# ---------------------------------------------------------------- the terminal's overall bar

def _entry(variant: str, samples: dict, when: str = "2026-12-01T00:00:00+00:00"):
    from harness.model import HistoryEntry

    return HistoryEntry(run_id="r", created_utc=when, hostname="h", git_commit=None,
                        git_dirty=None, variant=variant, label=variant, status="ok",
                        dockerfile_sha256=None, context_sha256=None, size_bytes=1,
                        layer_count=1, compressed_size_bytes=None, build_samples=samples,
                        bases=[])


def test_workload_counts_builds_and_weighs_them_by_the_newest_medians():
    from harness.bench.estimate import DEFAULT_SECONDS, workload

    history = [_entry("a", {"cold": [100.0, 120.0, 110.0]}, "2026-11-01T00:00:00+00:00"),
               _entry("a", {"cold": [50.0, 70.0, 60.0], "no-change": [1.0, 3.0, 2.0]})]
    a, b = workload(["a", "b"], ("cold", "no-change"), repeat=3, warmup=None, builders=2,
                    history=history)
    assert a.counts == {"cold": 6, "no-change": 8}  # (0 + 3) and (1 warm-up + 3), two builders
    assert a.builds == 14 and a.from_history and not b.from_history
    assert a.seconds_per_build == {"cold": 60.0, "no-change": 2.0}  # the newest run's medians
    assert a.seconds == 6 * 60.0 + 8 * 2.0
    assert b.seconds_per_build["cold"] == DEFAULT_SECONDS["cold"]


def test_time_left_uses_the_history_then_what_the_builds_took():
    from harness.cli.progress import about, time_left

    assert time_left(0, 0, 600, from_history=True) == 600  # the history's word, at first
    assert time_left(0, 0, 600, from_history=False) is None  # nothing to go by yet
    assert time_left(200, 100, 600, from_history=True) == 1000  # twice as slow as expected
    assert about(None) == "time left: after a build"
    assert about(30) == "about 30 s left" and about(720) == "about 12 min left"
    assert about(3 * 3600 + 600) == "about 3 h 10 min left"


def test_the_bar_counts_builds_and_jumps_past_a_variant_that_ended_early():
    from rich.console import Console

    from harness.bench.estimate import workload
    from harness.cli.progress import BarProgress, bar

    history = [_entry("a", {"cold": [60.0]}), _entry("b", {"cold": [30.0]})]
    plan = workload(["a", "b"], ("cold",), repeat=2, warmup=None, builders=1, history=history)
    clock = Clock()
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    with bar(console) as shown:
        p = BarProgress(shown, plan, clock=clock)
        task = shown.tasks[0]
        assert task.total == 180 and task.fields["builds"] == "0/4 builds"
        assert task.fields["left"] == "about 3 min left"
        p.variant("a [classic, cold]", 0, 2, 1, 2, scenario="cold")
        clock.now = 120.0  # twice as slow as the history says
        p.variant("a [classic, cold]", 0, 2, 2, 2, scenario="cold")
        assert (task.completed, task.fields["builds"]) == (60, "1/4 builds")
        assert task.fields["left"] == "about 4 min left"  # 120 expected s left, at half speed
        p.finished("a", True, "")
        assert (task.completed, task.fields["builds"]) == (120, "2/4 builds")
        p.variant("b [classic, cold]", 1, 2, 1, 2, scenario="cold")
        p.finished("b", False, "build failed")  # its second build never ran
        assert (task.completed, task.fields["builds"]) == (180, "4/4 builds")
    printed = console.file.getvalue()
    assert "a: ok" in printed and "b: failed: build failed" in printed


def test_the_bar_keeps_its_counts_in_a_narrow_terminal_and_the_steps_brackets():
    import re

    from rich.console import Console

    from harness.bench.estimate import workload
    from harness.cli.progress import BarProgress, bar

    for width in (80, 140):
        console = Console(file=io.StringIO(), width=width, force_terminal=True)
        with bar(console) as shown:
            p = BarProgress(shown, workload(list("abcde"), ("cold",), 1, None, 1))
            p.variant("single-node20 [classic, cold]", 0, 5, 1, 1, scenario="cold")
            p.step("Step 6/10 : RUN npm run build, and a long tail that cannot fit anywhere")
            shown.refresh()
        line = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", console.file.getvalue().split("\r\x1b[2K")[-2])
        assert len(line) <= width, line
        assert "0/5 builds" in line and "time left: after a build" in line, line
        assert ("[1/5] single-node20 [classic, cold] 1/1" in line) == (width == 140), line
