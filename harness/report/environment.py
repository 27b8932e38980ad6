"""The environment of a run in words and units: what the page's Environment section shows.

Pure: the run in, (heading, [(what, value)]) sections out, every value a sentence fragment a
reader can take in without knowing the record's keys ("25.8 GB", not `memory_bytes
25769803776`; the scenarios that ran, not the legacy `scenario` field). A field the run did
not record is left out rather than shown as "None".
"""

from __future__ import annotations

import datetime as dt

from harness.analysis.sizes import engine_label
from harness.model import Engine, Machine, Run, Settings
from harness.report.units import human_size

Section = tuple[str, list[tuple[str, str]]]

BASES_MODES = {
    "auto": "present, else pulled, else a locally built stand-in",
    "pull": "pulled from their registry (no stand-ins)",
    "present": "only those already present (no pull, no stand-ins)",
}


def _yes(value: bool | None, yes: str = "yes", no: str = "no") -> str | None:
    return None if value is None else (yes if value else no)


def _when(text: str | None) -> str | None:
    try:
        return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S UTC") if text else None
    except ValueError:
        return text


def _took(run: Run) -> str | None:
    try:
        start = dt.datetime.fromisoformat(run.created_utc)
        end = dt.datetime.fromisoformat(run.finished_utc or "")
    except (TypeError, ValueError):
        return None
    minutes, seconds = divmod(round((end - start).total_seconds()), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _section(title: str, items: list[tuple[str, str | None]]) -> Section:
    return title, [(what, value) for what, value in items if value not in (None, "")]


def run_section(run: Run) -> Section:
    git = run.harness.git
    return _section("Run", [
        ("Run", run.run_id),
        ("Started", _when(run.created_utc)),
        ("Finished", _when(run.finished_utc) or "not finished (still running, or interrupted)"),
        ("Took", _took(run)),
        ("Harness", run.harness.version),
        ("Git commit", git.commit and (git.commit + (" with uncommitted changes"
                                                     if git.dirty else ""))),
        ("Results format", f"schema version {run.schema_version}"),
    ])


def scenarios_run(run: Run) -> list[str]:
    """The build scenarios this run timed: its setting, else what its variants recorded."""
    if run.settings.scenarios:
        return list(run.settings.scenarios)
    found = [s for v in run.variants if v.build and v.build.scenarios for s in v.build.scenarios]
    return list(dict.fromkeys(found)) or [run.settings.scenario]


def _runtime(s: Settings) -> str:
    if not s.runtime:
        return "off"
    parts = [f"port {s.port}" if s.port else None,
             f"path {s.health_path}" if s.health_path else None,
             f"environment {', '.join(sorted(s.env))}" if s.env else None]
    given = [p for p in parts if p]
    return "on" + (f" ({'; '.join(given)})" if given else " (each variant's own settings)")


def settings_section(run: Run) -> Section:
    s = run.settings
    scenarios = scenarios_run(run)
    warmup = ("1 before each scenario but cold" if s.warmup is None
              else f"{s.warmup} before each scenario but cold")
    return _section("Settings", [
        ("Timed builds", f"{s.repeat} per scenario"),
        ("Scenarios", ", ".join(scenarios)),
        ("Warm-up builds", warmup if scenarios != ["cold"] else None),
        ("Builders", ", ".join(s.builders or [s.builder]) + f" (the image measured: {s.builder})"),
        ("Build timeout", f"{s.timeout} s" if s.timeout else "none"),
        ("Runtime check", _runtime(s)),
        ("Registry push and pull", _yes(s.registry, "on", "off")),
        ("Cold pull into an empty engine", _yes(s.cold_pull and s.registry, "on", "off")),
        ("Base images", BASES_MODES.get(s.bases_mode, s.bases_mode)),
        ("Variants", ", ".join(s.names) if s.names else "all"),
        ("Variants directory", s.variants_dir),
        ("Build context", s.context),
        ("Masked build args", ", ".join(s.secret_args) if s.secret_args else None),
        ("Manifest warnings", "; ".join(s.manifest_warnings) if s.manifest_warnings else None),
    ])


def _api(e: Engine) -> str | None:
    if not e.api_version:
        return None
    more = [f"lowest {e.min_api_version}" if e.min_api_version else None,
            f"client {e.client_api_version}" if e.client_api_version else None]
    more = [m for m in more if m]
    return e.api_version + (f" ({', '.join(more)})" if more else "")


def engine_section(run: Run) -> Section:
    e = run.engine
    can = [what for what, ok in (("build", e.can_build), ("push", e.can_push), ("run", e.can_run))
           if ok is False]
    return _section("Engine", [
        ("Engine", engine_label(e)),
        ("Name", e.name),
        ("Address", e.host),
        ("API version", _api(e)),
        ("Operating system", e.os),
        ("Kernel", e.kernel),
        ("Architecture", e.architecture),
        ("Storage driver", e.storage_driver),
        ("Image store", e.store),
        ("Control groups", f"version {e.cgroup_version}" if e.cgroup_version else None),
        ("CPUs", str(e.engine_cpus) if e.engine_cpus else None),
        ("Memory", human_size(e.engine_memory_bytes) if e.engine_memory_bytes else None),
        ("Builders", ", ".join(e.builders) + (f" (default {e.default_builder})"
                                              if e.default_builder else "")
         if e.builders else None),
        ("BuildKit", f"unavailable: {e.buildkit_unavailable}" if e.buildkit_unavailable else None),
        ("Cannot", ", ".join(can) if can else None),
    ])


def machine_section(run: Run) -> Section:
    m: Machine = run.machine
    return _section("Machine", [
        ("Host name", m.hostname),
        ("Platform", m.platform),
        ("Python", m.python),
        ("CPUs", str(m.cpu_count) if m.cpu_count else None),
        ("Memory", human_size(m.memory_bytes) if m.memory_bytes else None),
    ])


def sections(run: Run) -> list[Section]:
    return [run_section(run), settings_section(run), engine_section(run), machine_section(run)]
