"""Build scenarios: what changes between the builds that are timed.

- cold: no cache at all (base images present; resolving them is never timed).
- no-change: the same context again, with the cache: the floor of a cached build.
- source-change: one application source file edited, then a cached build.
- dependency-change: package.json and its lock file changed, then a cached build.

Edits happen in a temporary copy of the context, never in the repository. Every edit
carries the run id and a counter, so no two builds (in this run or an earlier one,
whose BuildKit cache may still be there) ever see the same content.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import exclude_paths

from harness.engine.build import dockerignore_patterns
from harness.errors import HarnessError

COLD, NO_CHANGE, SOURCE, DEPENDENCY = "cold", "no-change", "source-change", "dependency-change"
ALL = (COLD, NO_CHANGE, SOURCE, DEPENDENCY)
CACHED = (NO_CHANGE, SOURCE, DEPENDENCY)  # built on the cache the cold build left
DEFAULT_WARMUP = 1  # per cached scenario; a cold build has nothing to warm up

SOURCE_SUFFIXES = {".ts": "//", ".tsx": "//", ".mts": "//", ".cts": "//", ".js": "//",
                   ".mjs": "//", ".cjs": "//", ".jsx": "//", ".py": "#", ".go": "//",
                   ".rb": "#", ".rs": "//", ".java": "//"}
_PRERELEASE = re.compile(r"[-+].*$")


def parse(values: list[str] | None) -> list[str]:
    """`--scenario` values (repeatable, comma-separated, or `all`) in the canonical order."""
    wanted: set[str] = set()
    for value in values or ["all"]:
        for name in (v.strip() for v in value.split(",")):
            if name == "all":
                wanted.update(ALL)
            elif name in ALL:
                wanted.add(name)
            elif name:
                raise HarnessError(f"unknown scenario {name!r}: choose from {', '.join(ALL)} or all")
    return [s for s in ALL if s in wanted]


def warmups(scenario: str, warmup: int | None) -> int:
    """Uncounted builds before the counted ones: none for cold unless asked."""
    if warmup is not None:
        return warmup
    return 0 if scenario == COLD else DEFAULT_WARMUP


def pick_source_file(files: list[str]) -> str | None:
    """The application source file to edit: src/index.* first, else the first under src/,
    else the first source file outside node_modules (paths relative to the context)."""
    sources = sorted(f for f in files if Path(f).suffix in SOURCE_SUFFIXES
                     and "node_modules/" not in f and not f.startswith("test"))
    for preferred in ("src/index.ts", "src/index.js", "src/main.ts", "src/main.js"):
        if preferred in sources:
            return preferred
    under_src = [f for f in sources if f.startswith("src/")]
    return (under_src or sources or [None])[0]


def edit_source(text: str, suffix: str, marker: str) -> str:
    """A comment appended: the file's bytes change, its behaviour does not."""
    return text.rstrip("\n") + f"\n{SOURCE_SUFFIXES[suffix]} {marker}\n"


def bump_version(package_json: str, lock: str | None, tag: str) -> tuple[str, str | None, str]:
    """package.json's version, and the lock's copies of it, set to `<version>-<tag>`.

    npm ci refuses a lock that disagrees with package.json, so both change together,
    as a lock update does; the layers from `COPY package*.json` on are rebuilt."""
    manifest = json.loads(package_json)
    base = _PRERELEASE.sub("", str(manifest.get("version") or "0.0.0"))
    version = f"{base}-{tag}"
    manifest["version"] = version
    new_lock = None
    if lock is not None:
        locked = json.loads(lock)
        locked["version"] = version
        root = (locked.get("packages") or {}).get("")
        if isinstance(root, dict):
            root["version"] = version
        new_lock = json.dumps(locked, indent=2) + "\n"
    return json.dumps(manifest, indent=2) + "\n", new_lock, version


@dataclass
class Change:
    scenario: str
    description: str  # what was edited, for the report


class Workspace:
    """A temporary copy of a build context (only what .dockerignore lets through)."""

    def __init__(self, context_dir: Path, run_id: str):
        self.source = Path(context_dir)
        self.run_id = run_id.replace("-", "")
        self.root = Path(tempfile.mkdtemp(prefix="harness-context-"))
        self.files = sorted(exclude_paths(str(self.source), dockerignore_patterns(self.source)))
        for rel in self.files:
            src, dst = self.source / rel, self.root / rel
            if src.is_symlink() or src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst, follow_symlinks=False)
            elif src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def unavailable(self, scenario: str) -> str | None:
        """Why this scenario cannot be made from this context, if it cannot."""
        if scenario == SOURCE and pick_source_file(self.files) is None:
            return "no application source file in the context"
        if scenario == DEPENDENCY and not (self.root / "package.json").is_file():
            return "no package.json in the context"
        return None

    def change(self, scenario: str) -> Change:
        """Apply the next edit of this scenario to the copy; edits accumulate, each unique."""
        self.count += 1
        tag = f"harness.{self.run_id}.{self.count}"
        if scenario == SOURCE:
            rel = pick_source_file(self.files)
            path = self.root / rel
            path.write_text(edit_source(path.read_text(), path.suffix, f"harness source change {tag}"))
            return Change(scenario, f"{rel} edited (a comment appended)")
        if scenario == DEPENDENCY:
            lock_path = self.root / "package-lock.json"
            lock = lock_path.read_text() if lock_path.is_file() else None
            pkg, new_lock, version = bump_version((self.root / "package.json").read_text(), lock, tag)
            (self.root / "package.json").write_text(pkg)
            if new_lock is not None:
                lock_path.write_text(new_lock)
            files = "package.json and package-lock.json" if new_lock is not None else "package.json"
            return Change(scenario, f"{files}: version set to {version}")
        raise ValueError(f"scenario {scenario} edits nothing")
