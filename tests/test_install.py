"""Installed like any Python tool: the wheel into a fresh virtual environment (not the
checkout's editable install), then `harness list`, `run` on a tiny variant and `report`,
from a temporary directory that holds only a variants/ directory and its context. Every
default path is that directory's: nothing is read from or written into site-packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parent.parent
TINY = "FROM scratch\nCOPY hello.txt /hello.txt\n"
MANIFEST = """\
[[variant]]
name = "tiny"
label = "Tiny (scratch)"
dockerfile = "tiny.Dockerfile"
context = "../app"
runtime = false  # nothing to serve: a scratch image with one file
"""


def _run(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The harness command of a fresh venv with the wheel installed (dependencies from the
    package index pip is configured with)."""
    where = tmp_path_factory.mktemp("install")
    wheel_dir = where / "wheel"
    proc = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir),
                 str(ROOT)], where)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = wheel_dir.glob("*.whl")
    venv = where / "venv"
    proc = _run([sys.executable, "-m", "venv", str(venv)], where)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], where, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return venv / "bin" / "harness"


def test_the_installed_wheel_lists_runs_and_reports_from_any_directory(
        installed, tmp_path, docker_client):
    work = tmp_path / "work"
    (work / "variants").mkdir(parents=True)
    (work / "app").mkdir()
    (work / "app" / "hello.txt").write_text("hello\n")
    (work / "variants" / "tiny.Dockerfile").write_text(TINY)
    (work / "variants" / "variants.toml").write_text(MANIFEST)

    site = _run([str(installed.parent / "python"), "-c",
                 "import harness, pathlib; print(pathlib.Path(harness.__file__).parent)"], work)
    package = Path(site.stdout.strip())
    assert "site-packages" in package.parts and ROOT not in package.parents  # not the checkout

    listed = _run([str(installed), "list", "--json"], work)
    assert listed.returncode == 0, listed.stderr
    assert [v["name"] for v in json.loads(listed.stdout)] == ["tiny"]

    ran = _run([str(installed), "run", "--json", "-r", "1", "-s", "cold", "--no-registry"], work)
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads(ran.stdout)
    try:
        (variant,) = summary["variants"]
        assert variant["status"] == "ok" and variant["size_bytes"] > 0
        run_dir = work / "results" / summary["run_id"]
        assert (work / "results" / "latest").resolve() == run_dir.resolve()
        (run_dir / "index.html").unlink()
        reported = _run([str(installed), "report"], work)  # results/latest, from here
        assert reported.returncode == 0, reported.stderr
        assert (run_dir / "index.html").is_file() and "Tiny (scratch)" in reported.stdout
        assert not any(p.name == "results" for p in package.parent.iterdir())
    finally:
        image = (json.loads((work / "results" / "latest" / "results.json").read_text())
                 ["variants"][0].get("image") or {}).get("id")
        if image:
            docker_client.api.remove_image(image, force=True)
