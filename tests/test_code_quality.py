"""The code stays readable: no function of the package above cyclomatic complexity 20
(radon), and `ruff check` finds nothing (its rules are pyproject.toml's [tool.ruff]).

Pure: no engine. Both tools come with the `test` extra; outside CI a missing tool skips
its test, in CI (CI=true) it fails, so a broken install cannot pass silently.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_COMPLEXITY = 20  # radon's rank C and better; `make lint` and ruff's C901 use the same
LINTED = ("harness", "tests", "benchmarks")


def _require(module: str) -> None:
    """Skip when `module` is not installed, except in CI where that is a failure."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed: pip install -e '.[test]'"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def too_complex(source: str, limit: int = MAX_COMPLEXITY) -> list[tuple[str, int, int]]:
    """(name, line, complexity) of each function, method or class above `limit`, closures
    and inner classes included."""
    from radon.complexity import add_inner_blocks, cc_visit

    return [(block.fullname, block.lineno, block.complexity)
            for block in add_inner_blocks(cc_visit(source)) if block.complexity > limit]


def test_too_complex_finds_a_branchy_function():
    _require("radon")
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(MAX_COMPLEXITY))
    source = f"def branchy(x):\n{branches}    return -1\n\ndef plain(x):\n    return x\n"
    assert too_complex(source) == [("branchy", 1, MAX_COMPLEXITY + 1)]


def test_no_function_above_complexity_20():
    _require("radon")
    found = [f"{path.relative_to(ROOT)}:{line} {name} ({score})"
             for path in sorted((ROOT / "harness").rglob("*.py"))
             for name, line, score in too_complex(path.read_text(encoding="utf-8"))]
    assert not found, f"above cyclomatic complexity {MAX_COMPLEXITY}; split them:\n" + "\n".join(found)


def test_ruff_check_is_clean():
    _require("ruff")
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise"]
    done = subprocess.run([*command, *LINTED], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ruff check {' '.join(LINTED)}:\n{done.stdout}{done.stderr}"


def test_the_readme_is_read_in_five_minutes():
    """The README stays an introduction (under 10 KB); measured tables and methods live in docs/."""
    readme = ROOT / "README.md"
    assert readme.stat().st_size < 10_000, f"README.md is {readme.stat().st_size} bytes"
    for doc in ("docs/results.md", "docs/methodology.md", "docs/results-format.md"):
        assert (ROOT / doc).is_file(), doc
        assert doc in readme.read_text(), f"the README does not point to {doc}"
