"""The wheel carries everything the harness reads at run time (pure: no engine)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_every_stand_in_recipe_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    recipes = ROOT / "harness" / "bases" / "recipes"
    wanted = {str(p.relative_to(ROOT)) for p in recipes.rglob("*") if p.is_file()
              and "__pycache__" not in p.parts}
    assert wanted and not wanted - packed, sorted(wanted - packed)
