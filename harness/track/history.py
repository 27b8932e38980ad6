"""An append-only history of every variant of every run: `results/history.jsonl`.

One JSON line per variant per run (a `harness.model.HistoryEntry`, what `harness compare`
compares, plus the schema version; `harness.store.read_history` reads it, for the trend
chart too). Lines are only ever appended, whole, with one write and an fsync, so a
crash leaves at most one truncated last line; readers report such a line and skip it.
Appending a run twice adds nothing.

`regressions` compares each run of a variant with the previous one, using the same rows as
`harness compare`: any size or layer change is reported exactly, a build-time change only
when it is both beyond the factor and significant.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from harness import store as results
from harness.errors import HarnessError
from harness.model import HISTORY_SCHEMA_VERSION as SCHEMA_VERSION  # noqa: F401  (re-exported)
from harness.model import HistoryEntry, Run
from harness.report.formatting import run_of
from harness.report.units import human_size, percent_change
from harness.store import HISTORY_FILE, completes, read_history  # noqa: F401  (re-exported)
from harness.track import compare
from harness.track.compare import DEFAULT_ALPHA, DEFAULT_FACTOR, Facts

# Writing ----------------------------------------------------------------------------------

def history_line(facts: Facts) -> str:
    """The line of `facts` in history.jsonl, without its newline."""
    return facts.to_json()


def run_entries(run: Run | dict) -> list[HistoryEntry]:
    """The history lines of a run, one per variant, in the run's order."""
    run = run_of(run).primary()  # one line per variant, as `harness compare` reads them
    return [HistoryEntry.of(run, v) for v in run.variants]


def append_run(history_path: Path, run: Run | dict) -> int:
    """Append the run's variants not yet in the history; return how many lines were added."""
    return results.append_history(Path(history_path), run_entries(run))


def backfill(history_path: Path, results_dir: Path) -> list[str]:
    """Append every run directory under `results_dir` (oldest first); one line per run."""
    lines = []
    for run_dir in sorted(p for p in Path(results_dir).iterdir()
                          if p.is_dir() and not p.is_symlink()):
        if not (run_dir / results.RESULTS_FILE).exists():
            continue
        try:
            added = append_run(history_path, results.load_run(run_dir))
        except HarnessError as exc:
            lines.append(f"skipped: {exc}")
            continue
        lines.append(f"{run_dir.name}: {added} line(s) appended")
    return lines


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


def by_variant(entries: list[HistoryEntry]) -> dict[str, list[HistoryEntry]]:
    """Each variant's runs, oldest first."""
    out: dict[str, list[HistoryEntry]] = {}
    for e in entries:
        out.setdefault(e.variant, []).append(e)
    return {name: sorted(runs, key=lambda e: (e.when, e.run_id)) for name, runs in out.items()}


def regressions(entries: list[HistoryEntry], factor: float = DEFAULT_FACTOR,
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
                    changes += _changes(compare.row(
                        last_ok, entry,
                        last_ok.run_id, entry.run_id, factor, alpha))
                last_ok = entry
            previous = entry
    return changes


def _status_change(before: HistoryEntry, after: HistoryEntry) -> Change:
    return Change(after.variant, before.run_id, after.run_id, "status", before.status,
                  after.status, after.status != "ok", f"{before.status} → {after.status}",
                  compare.causes(before, after))


def _changes(r: compare.Row) -> list[Change]:
    out = []
    for attr, what in compare.MEASURES:
        b, a = r.pair(attr)
        if b is None or a is None or a == b:
            continue
        pct = percent_change(b, a)
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
