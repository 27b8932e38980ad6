"""Runs on disk: one schema-versioned `results.json` per run directory.

Every write goes to a temporary file in the same directory and is then renamed, so a
crash or a full disk leaves the previous file whole. Raw samples are stored; statistics
are computed when reading.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import tempfile
from pathlib import Path

from harness import __version__, migrations
from harness.errors import HarnessError
from harness.model import SCHEMA_VERSION, HistoryEntry, ModelError, Run

RESULTS_FILE = "results.json"
HISTORY_FILE = "history.jsonl"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace `path` with `data` so that a reader only ever sees a whole file."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise HarnessError(f"could not write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only mount: the old file is still whole
        Path(tmp).unlink(missing_ok=True)
        raise HarnessError(f"could not write {path}: {exc.strerror or exc}; "
                           f"the previous {path.name} is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(out: Path, now: dt.datetime) -> Path:
    """A fresh directory named by the UTC time; a suffix keeps two runs in one second apart."""
    out.mkdir(parents=True, exist_ok=True)
    base = run_id(now)
    for i in range(100):
        path = out / (base if i == 0 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise HarnessError(f"cannot create a run directory under {out}")


def point_latest(out: Path, run_dir: Path) -> None:
    """Make `out/latest` a relative symlink to the run, replaced atomically."""
    link = out / "latest"
    tmp = out / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def git_state(root: Path = PROJECT_ROOT) -> dict:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def machine() -> dict:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = None
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": mem,
    }


def new_record(now: dt.datetime, settings: dict, engine: dict) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id(now),
        "created_utc": now.isoformat(timespec="seconds"),
        "finished_utc": None,
        "harness": {"version": __version__, "git": git_state()},
        "machine": machine(),
        "engine": engine,
        "settings": settings,
        "bases": {},
        "variants": [],
    }


def save(run_dir: Path, record: dict | Run) -> Path:
    """Write the run's results.json, checked against the model first: a writer that puts a
    wrong key or type in the record fails here, in the tests, not in a reader months later."""
    run = record if isinstance(record, Run) else _checked(record, run_dir / RESULTS_FILE)
    path = run_dir / RESULTS_FILE
    write_atomic(path, json.dumps(run.to_json(), indent=2, sort_keys=False) + "\n")
    return path


def load_run(path: Path) -> Run:
    """Read a run (a directory or its results.json) of any schema version this harness
    knows, as the typed model; a bad file is a one-line HarnessError."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such results file") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(record, dict):
        raise HarnessError(f"{path}: not a results record")
    if not isinstance(record.get("variants"), list):
        raise HarnessError(f"{path}: truncated or incomplete (no variants list)")
    try:
        return Run.from_json(migrations.migrate(record))
    except ModelError as exc:
        raise HarnessError(f"{path}: {exc}") from None


def load(path: Path) -> dict:
    """A run as the current schema's dict (`load_run(path).to_json()`)."""
    return load_run(path).to_json()


def _checked(record: dict, path: Path) -> Run:
    try:
        return Run.from_json(record)
    except ModelError as exc:
        raise HarnessError(f"{path}: the record does not fit schema version "
                           f"{SCHEMA_VERSION}: {exc}") from None


# ------------------------------------------------ the history file beside the runs
# Readers never raise on a bad line: it is reported and skipped (a writer that crashed leaves
# at most one truncated last line). A later line of the same run and variant replaces a failed
# one (the run was completed with `--resume`); any other repeat is reported as a duplicate.

def completes(earlier_status: str | None, later) -> bool:
    """A later line of the same run and variant replaces a failed one: `--resume` measured it."""
    return earlier_status not in ("ok",) and later.status in ("ok", "failed-at-runtime") \
        and later.status != earlier_status


def read_history(path: Path) -> tuple[list[HistoryEntry], list[str]]:
    """The entries in file order, and one problem line per line that was skipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot read ({exc.strerror or exc})"]
    entries: list[HistoryEntry] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], tuple[int, int]] = {}  # key -> (line number, index in entries)
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            entry, cause = HistoryEntry.from_json(line), None
        except ValueError as exc:
            entry, cause = None, str(exc)
        key = (entry.run_id, entry.variant) if entry is not None else None
        if key in seen:
            earlier_line, index = seen[key]
            if completes(entries[index].status, entry):
                entries[index] = entry  # the run was completed with --resume
                seen[key] = (lineno, index)
                continue
            entry, cause = None, f"duplicate of line {earlier_line}"
        if entry is None:
            problems.append(f"{path}:{lineno}: {cause}; skipped")
            continue
        seen[key] = (lineno, len(entries))
        entries.append(entry)
    return entries, problems


def history_beside(run_dir: Path) -> list[HistoryEntry]:
    """The history of the results directory holding `run_dir` (results/<run>/ beside
    results/history.jsonl), if any; damaged lines are skipped here and reported by
    `harness history`."""
    return read_history(Path(run_dir).parent / HISTORY_FILE)[0]


def append_history(path: Path, entries: list[HistoryEntry]) -> int:
    """Append the entries not yet in the history file (a failed variant's line is replaced
    by a later one that completes it); return how many lines were added. One unbuffered
    write and an fsync, so a crash leaves at most one truncated last line."""
    present = {(e.run_id, e.variant): e.status for e in read_history(path)[0]}
    new = [e for e in entries
           if (e.run_id, e.variant) not in present or completes(present[e.run_id, e.variant], e)]
    if not new:
        return 0
    data = "".join(e.to_json() + "\n" for e in new).encode()
    if _ends_mid_line(path):
        data = b"\n" + data  # keep a crashed writer's fragment on its own (reported) line
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab", buffering=0) as fh:  # unbuffered: one write() call per attempt
        written = 0
        while written < len(data):
            written += fh.write(data[written:])
        os.fsync(fh.fileno())
    return len(new)


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False
