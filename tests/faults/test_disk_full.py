"""A full disk while saving: a one-line error naming the file and the cause, the previous
results.json whole, no temporary file left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import require

from harness import store as results
from harness.errors import HarnessError


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs of our own, unmounted at the end."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    require(shutil.which("mount") is not None and shutil.which("umount") is not None,
            "needs mount and umount")
    mnt = tmp_path / "full"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)],
                          check=False, capture_output=True, text=True)
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _fill(directory) -> None:
    """Write until the file system refuses another byte (unbuffered: nothing left to flush)."""
    fd = os.open(directory / "ballast", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (4096, 1):  # whole pages, then the last bytes of a partial one
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)


def _record(variants: int) -> dict:
    return {"schema_version": results.SCHEMA_VERSION, "run_id": "20260101T000000Z",
            "created_utc": "2026-01-01T00:00:00+00:00", "harness": {"version": "0.1.0"},
            "variants": [{"name": f"v{i}", "label": f"V{i}", "dockerfile": f"v{i}.Dockerfile",
                          "status": "failed", "log_tail": ["x" * 200] * 5}
                         for i in range(variants)]}


def test_full_disk_keeps_the_previous_results(tiny_fs):
    first = _record(2)
    path = results.save(tiny_fs, first)
    assert results.load_run(path) == results.Run.from_json(first)
    _fill(tiny_fs)

    with pytest.raises(HarnessError) as caught:
        results.save(tiny_fs, _record(50))  # ~50 KB: cannot fit

    message = str(caught.value)
    assert "\n" not in message
    assert str(tiny_fs / results.RESULTS_FILE) in message
    assert "No space left on device" in message
    # the previous file, whole and parseable
    assert results.load_run(path) == results.Run.from_json(first)
    assert json.loads(path.read_text()) == results.Run.from_json(first).to_json()
    leftovers = sorted(p.name for p in tiny_fs.iterdir())
    assert leftovers == ["ballast", results.RESULTS_FILE], "a temporary file was left"
