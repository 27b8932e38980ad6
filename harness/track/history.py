"""An append-only history of every variant of every run: `results/history.jsonl`.

One JSON line per variant per run (`compare.Facts` plus the schema version). Lines are only
ever appended, whole, with one write and an fsync, so a crash leaves at most one truncated
last line; readers report such a line and skip it. Appending a run twice adds nothing.

`regressions` compares each run of a variant with the previous one, using the same rows as
`harness compare`: any size or layer change is reported exactly, a build-time change only
when it is both beyond the factor and significant.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from harness.track import compare
from harness import store as results
from harness.track.compare import DEFAULT_ALPHA, DEFAULT_FACTOR, Facts
from harness.errors import HarnessError
from harness.report.markdown import human_size

HISTORY_FILE = "history.jsonl"
SCHEMA_VERSION = 1  # bump when the keys of compare.Facts change


# Writing ----------------------------------------------------------------------------------

def history_line(entry: Facts) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **entry.to_dict()})


def append_run(history_path: Path, record: dict) -> int:
    """Append the run's variants not yet in the history; return how many lines were added."""
    path = Path(history_path)
    present = {(e.run_id, e.variant): e.status for e in read_history(path)[0]}
    new = [f for f in (compare.facts(record, v) for v in record.get("variants", []))
           if (f.run_id, f.variant) not in present or _completes(present[f.run_id, f.variant], f)]
    if not new:
        return 0
    data = "".join(history_line(f) + "\n" for f in new).encode()
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


def backfill(history_path: Path, results_dir: Path) -> list[str]:
    """Append every run directory under `results_dir` (oldest first); one line per run."""
    lines = []
    for run_dir in sorted(p for p in Path(results_dir).iterdir()
                          if p.is_dir() and not p.is_symlink()):
        if not (run_dir / results.RESULTS_FILE).exists():
            continue
        try:
            added = append_run(history_path, results.load(run_dir))
        except HarnessError as exc:
            lines.append(f"skipped: {exc}")
            continue
        lines.append(f"{run_dir.name}: {added} line(s) appended")
    return lines


# Reading ----------------------------------------------------------------------------------

def read_history(path: Path) -> tuple[list[Facts], list[str]]:
    """The entries in file order, and one problem line per line that was skipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"{path}: cannot read ({exc.strerror or exc})"]
    entries: list[Facts] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], tuple[int, int]] = {}  # key -> (line number, index in entries)
    for lineno, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        entry, cause = _parse(line)
        key = (entry.run_id, entry.variant) if entry is not None else None
        if key in seen:
            earlier_line, index = seen[key]
            if _completes(entries[index].status, entry):
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


def _completes(earlier_status: str | None, later: Facts) -> bool:
    """A later line of the same run and variant replaces a failed one: `--resume` measured it."""
    return earlier_status not in ("ok",) and later.status in ("ok", "failed-at-runtime") \
        and later.status != earlier_status


def _parse(line: bytes) -> tuple[Facts | None, str | None]:
    try:
        d = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError:
        return None, "not valid JSON (a truncated line?)"
    if not isinstance(d, dict):
        return None, "not a JSON object"
    if d.get("schema_version") != SCHEMA_VERSION:
        return None, (f"schema version {d.get('schema_version')!r} is not one this harness "
                      f"reads ({SCHEMA_VERSION})")
    try:
        return Facts.from_dict(d), None
    except ValueError as exc:
        return None, str(exc)


# Regressions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    variant: str
    before_run: str
    after_run: str
    what: str  # "size", "compressed size", "layers", "status", "build time (<scenario>)"
    before: float | int | str | None
    after: float | int | str | None
    worse: bool | None  # None: a build-time change that could not be called either way
    detail: str
    causes: tuple[str, ...]


def by_variant(entries: list[Facts]) -> dict[str, list[Facts]]:
    """Each variant's runs, oldest first."""
    out: dict[str, list[Facts]] = {}
    for e in entries:
        out.setdefault(e.variant, []).append(e)
    return {name: sorted(runs, key=lambda e: (e.when, e.run_id)) for name, runs in out.items()}


def regressions(entries: list[Facts], factor: float = DEFAULT_FACTOR,
                alpha: float = DEFAULT_ALPHA) -> list[Change]:
    """Every change between consecutive runs of each variant; `worse` tells regressions.

    A run that failed is reported against the run before it; the next successful run is
    measured against the last successful one.
    """
    changes = []
    for runs in by_variant(entries).values():
        previous = last_ok = None
        for entry in runs:
            if previous is not None and entry.status != previous.status:
                changes.append(_status_change(previous, entry))
            if entry.status == "ok":
                if last_ok is not None:
                    changes += _changes(compare.row(last_ok, entry, last_ok.run_id, entry.run_id,
                                                    factor, alpha))
                last_ok = entry
            previous = entry
    return changes


def _status_change(before: Facts, after: Facts) -> Change:
    return Change(after.variant, before.run_id, after.run_id, "status", before.status,
                  after.status, after.status != "ok", f"{before.status} → {after.status}",
                  compare.causes(before, after))


def _changes(r: compare.Row) -> list[Change]:
    out = []
    for attr, what in compare.MEASURES:
        b, a = r.pair(attr)
        if b is None or a is None or a == b:
            continue
        pct = compare.percent(b, a)
        delta = f"{a - b:+,}" + ("" if attr == "layer_count" else " B")
        shown = (f"{b} → {a}" if attr == "layer_count" else f"{human_size(b)} → {human_size(a)}")
        detail = f"{shown}: {delta}" + (f" ({pct:+.2f}%)" if pct is not None else "")
        out.append(Change(r.variant, r.baseline, r.current, what, b, a, a > b, detail, r.causes))
    for t in r.times:
        if t.verdict == compare.SAME:
            continue
        worse = True if t.verdict == compare.SLOWER else False if t.verdict == compare.FASTER else None
        out.append(Change(r.variant, r.baseline, r.current, f"build time ({t.scenario})",
                          t.before_median, t.after_median, worse, t.text(), r.causes))
    return out


def format_changes(changes: list[Change]) -> list[str]:
    """pyperf-style lines: a head per variant and pair of runs, one line per change."""
    if not changes:
        return ["No change between consecutive runs of any variant."]
    lines: list[str] = []
    for (variant, before, after), group in groupby(
            changes, key=lambda c: (c.variant, c.before_run, c.after_run)):
        group = list(group)
        lines.append(f"{variant}: {before} → {after}")
        lines += [f"  {c.what}: {c.detail}{_TAGS[c.worse]}" for c in group]
        lines.append(f"  changed between the runs: {'; '.join(group[0].causes)}")
    return lines


_TAGS = {True: "  [regression]", False: "  [improvement]", None: ""}


def history_main(history_path: Path, factor: float = DEFAULT_FACTOR,
                 alpha: float = DEFAULT_ALPHA) -> tuple[list[str], int]:
    """`harness history`: (lines, exit code); 1 when a variant's latest run regressed."""
    entries, problems = read_history(history_path)
    lines = [f"warning: {p}" for p in problems]
    if not entries:
        return lines + [f"{history_path}: no history yet (each `harness run` appends to it)"], 0
    runs = by_variant(entries)
    changes = regressions(entries, factor, alpha)
    lines += [f"{len(entries)} entries: {len(runs)} variant(s), "
              f"{len({e.run_id for e in entries})} run(s)"] + format_changes(changes)
    latest = {name: r[-1].run_id for name, r in runs.items()}
    code = 1 if any(c.worse and c.after_run == latest[c.variant] for c in changes) else 0
    return lines, code
