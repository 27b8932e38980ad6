"""The engine dies mid-build: the variant in flight fails with the cause, what was measured
is kept, the run exits 1; `--resume` on the same run directory completes it."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import require

from harness.bench import runner
from harness.bench.variants import Variant
from harness.track import history

pytestmark = pytest.mark.engine
BUSYBOX = Path("/bin/busybox")


def _variants(tmp_path: Path) -> list[Variant]:
    ctx = tmp_path / "c"
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    files = {
        "a-first": "FROM scratch\nCOPY busybox /bin/busybox\n",
        "b-slow": 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "8"]\n',
        "c-last": 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "touch", "/x"]\n',
    }
    out = []
    for name, text in files.items():
        path = tmp_path / f"{name}.Dockerfile"
        path.write_text(text)
        out.append(Variant(name=name, label=name, dockerfile=path, context=ctx))
    return out


def _kill_when_building(engine, run_root: Path, variant: str) -> threading.Thread:
    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for results_file in run_root.glob("2*/results.json"):
                try:
                    record = json.loads(results_file.read_text())
                except ValueError:
                    continue
                if any(v["name"] == variant and v["status"] == "running" for v in record["variants"]):
                    time.sleep(2)  # inside its RUN step
                    engine.kill()
                    return
            time.sleep(0.1)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_engine_killed_mid_build_then_resume(private_engine, tmp_path):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    variants = _variants(tmp_path)
    out = tmp_path / "out"
    opts = runner.RunOptions(repeat=1, out=out, bases_mode="present", analyze=False)
    killer = _kill_when_building(private_engine, out, "b-slow")
    run_dir, record_run, code = runner.execute(private_engine.client(), variants, opts)
    record = record_run.to_json()  # as results.json stores it
    killer.join(timeout=5)
    status = {v["name"]: v for v in record["variants"]}
    assert code == 1
    assert status["a-first"]["status"] == "ok"
    assert status["b-slow"]["status"] == "failed"
    assert "the engine stopped answering" in status["b-slow"]["error"]
    assert status["c-last"]["status"] == "failed"
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["variants"][0]["image"]["id"] == status["a-first"]["image"]["id"]
    first_image = status["a-first"]["image"]["id"]
    first_samples = status["a-first"]["build"]["samples_seconds"]

    private_engine.start()
    resumed = runner.RunOptions(repeat=1, out=out, bases_mode="present", analyze=False,
                                resume=run_dir)
    run_dir2, record2_run, code2 = runner.execute(private_engine.client(), variants, resumed)
    record2 = record2_run.to_json()  # as results.json stores it
    assert run_dir2 == run_dir and code2 == 0
    again = {v["name"]: v for v in record2["variants"]}
    assert [v["name"] for v in record2["variants"]] == ["a-first", "b-slow", "c-last"]
    assert all(v["status"] == "ok" for v in record2["variants"])
    # The variant measured before the crash is kept as it was, not rebuilt.
    assert again["a-first"]["image"]["id"] == first_image
    assert again["a-first"]["build"]["samples_seconds"] == first_samples
    assert again["b-slow"]["previous_attempt"]["status"] == "failed"
    assert record2["run_id"] == record["run_id"] and record2["resumed_utc"]
    # The history holds one line per variant of the run: the completed ones.
    entries, problems = history.read_history(out / history.HISTORY_FILE)
    assert problems == []
    assert sorted((e.variant, e.status) for e in entries) == [
        ("a-first", "ok"), ("b-slow", "ok"), ("c-last", "ok")]
