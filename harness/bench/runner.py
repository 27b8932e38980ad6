"""A bench run: resolve bases, build and measure each variant, save after each one.

Data flows one way: variants -> bases -> build -> measure -> results. The record is
saved after every variant, so whatever happens next, nothing measured is lost.

The steps: plan (parse each Dockerfile), resolve (the bases, once each), build (every
builder and scenario), measure (the image kept), analyse (contents, attribution, runtime,
registry), finish (close the record, append to the history). Every engine operation goes
through an EnginePort (harness.bench.engine_port): the Docker SDK's by default.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import docker
import urllib3.exceptions
from requests.exceptions import ConnectionError as RequestsConnectionError

from harness import engine, stats
from harness import store as results
from harness.analysis import attribution, dockerfile, secrets, sizes
from harness.bases import resolve as bases
from harness.bench import scenarios

# Services, _cold_pull and remove_untagged lived here; re-exported for their callers.
from harness.bench.engine_port import (  # noqa: F401
    DockerEngine,
    EnginePort,
    Services,
    _cold_pull,
    remove_untagged,
)
from harness.bench.options import RunOptions, probe_for, settings_json  # noqa: F401
from harness.bench.variants import MANIFEST, Variant, with_build_args
from harness.engine import runtime
from harness.engine.build import (
    BuildOutcome,
    Context,
    context_paths,
    measure_unignored,
    pack_context,
)
from harness.errors import BuildFailed, HarnessError
from harness.model import FAILED_AT_RUNTIME, MEASURED, NOT_CHECKED, HistoryEntry, Run

LABEL_RUN = "io.harness.run"
LABEL_VARIANT = "io.harness.variant"


class Progress(Protocol):
    def variant(self, name: str, index: int, total: int, repetition: int, repeat: int,
                scenario: str | None = None) -> None: ...
    def step(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def finished(self, name: str, ok: bool, detail: str) -> None: ...


class QuietProgress:
    def variant(self, *args, **kwargs) -> None: ...
    def step(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def finished(self, *args) -> None: ...


@dataclass
class Plan:
    """What a variant needs before it can be built: parsed stages and its base references."""
    variant: Variant
    text: str = ""
    parsed: dockerfile.Dockerfile | None = None
    stages: list[dockerfile.Stage] = field(default_factory=list)
    problem: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def refs(self) -> list[str]:
        return [s.base for s in self.stages if s.needs_resolution]


def plan(variant: Variant) -> Plan:
    p = Plan(variant, problem=variant.problem)
    if p.problem:
        return p
    try:
        p.text = variant.dockerfile.read_text()
        p.parsed = dockerfile.parse(p.text, variant.build_args)
        p.stages = p.parsed.stages_for(variant.target)
    except (OSError, UnicodeDecodeError) as exc:
        p.problem = f"cannot read {variant.dockerfile.name}: {exc}"
    except ValueError as exc:
        p.problem = f"{variant.dockerfile.name}: {exc}"
    found = dockerfile.problems(p.parsed) if p.parsed is not None else []
    if not found and p.stages:
        found = _missing_sources(p)
    if found:
        p.problem = f"{variant.dockerfile.name}: " + "; ".join(found)
    if p.parsed is not None:
        undeclared = sorted(set(variant.build_args) - p.parsed.declared_args)
        if undeclared:
            p.warnings.append(f"build arg(s) {', '.join(undeclared)} not declared by any ARG "
                              f"in {variant.dockerfile.name}; the engine ignores them")
    return p


def _missing_sources(p: Plan) -> list[str]:
    """COPY sources the context will not hold, before any build (the whole context is
    walked only when something is missing from what is sent)."""
    context = p.variant.context
    if not context.is_dir():
        return []  # the manifest check names a missing context
    try:
        sent = context_paths(context)
        found = dockerfile.copy_source_problems(p.stages, sent, sent)
        if found:
            found = dockerfile.copy_source_problems(p.stages, sent,
                                                    context_paths(context, dockerignore=False))
    except OSError:
        return []  # unreadable parts: the build itself says what
    return found


def _from_records(p: Plan, resolved: dict[str, bases.Resolution]) -> list[dict]:
    final = p.stages[-1].index if p.stages else -1
    out = []
    for s in p.stages:
        rec = {"stage": s.index, "stage_name": s.name, "from_line": s.from_line,
               "written": s.base_raw, "requested": s.base, "final": s.index == final,
               "kind": "scratch" if s.is_scratch else "stage" if s.base_is_stage else "image"}
        r = resolved.get(s.base) if s.needs_resolution else None
        if r is not None:
            rec.update(status=r.status, image_id=r.image_id, digest=r.digest,
                       standin=r.standin, used_ref=r.used_ref, size_bytes=r.size_bytes,
                       layer_count=r.layer_count)
        out.append(rec)
    return out


def execute(client: docker.DockerClient | None, variants: list[Variant], opts: RunOptions,
            progress: Progress | None = None,
            port: EnginePort | None = None) -> tuple[Path, Run, int]:
    """Run the bench; return the run directory, the typed run and the exit code.

    With `opts.resume`, the run directory given is completed: variants already measured
    (and whose image is still on the engine) are kept as they are, the rest are built.
    `port`: the engine's operations (default: `client`'s, through the Docker SDK)."""
    port = port if port is not None else DockerEngine(client)
    variants = with_build_args(variants, opts.build_args)
    secret_values = _secret_values(variants, opts)
    progress = progress or QuietProgress()
    progress = MaskedProgress(progress, secret_values) if secret_values else progress
    run = _open_run(port, opts, secret_values)
    run.save()
    plans = _plan_all(variants, progress)
    resolved = _resolve_bases(port, [p for p in plans if p.variant.name not in run.done],
                              opts, run, progress)
    _apply_lock(opts, resolved)
    _measure_all(port, plans, resolved, opts, run, progress)
    return _finish(run, opts)


@dataclass
class _Run:
    """The run in progress: where it is saved, its record, the variants kept on --resume."""
    run_dir: Path
    record: dict
    done: dict[str, dict]
    secret_values: list[str]

    def masked(self) -> dict:
        return secrets.mask_record(self.record, self.secret_values)

    def save(self) -> None:
        results.save(self.run_dir, self.masked())


def _secret_values(variants: list[Variant], opts: RunOptions) -> list[str]:
    """Secret build args' values, and secret environment variables' (a container's env)."""
    pairs = [*opts.env.items(), *(kv for v in variants
                                  for kv in (*v.build_args.items(), *v.env.items()))]
    return sorted({value for key, value in pairs
                   if value and secrets.is_secret(key, opts.secret_args)})


def _open_run(port: EnginePort, opts: RunOptions, secret_values: list[str]) -> _Run:
    """A new run directory and record, or the one to complete on --resume."""
    if opts.resume is not None:
        record = results.load(opts.resume)
        done = _still_measured(port, record)
        record["resumed_utc"] = [*record.get("resumed_utc", []),
                                 results.utc_now().isoformat(timespec="seconds")]
        return _Run(opts.resume, record, done, secret_values)
    now = results.utc_now()
    record = results.new_record(now, settings_json(opts), port.describe())
    return _Run(results.new_run_dir(opts.out, now), record, {}, secret_values)


def _plan_all(variants: list[Variant], progress: Progress) -> list[Plan]:
    plans = [plan(v) for v in variants]
    for p in plans:
        for w in p.warnings:
            progress.note(f"warning: {p.variant.name}: {w}")
    for p in plans:  # all at once, before the first build; the other variants still run
        if p.problem:
            progress.note(f"error: {p.variant.name}: {p.problem}; it will not be built")
    return plans


def _resolve_bases(port: EnginePort, todo: list[Plan], opts: RunOptions, run: _Run,
                   progress: Progress) -> dict[str, bases.Resolution]:
    """Each base image the variants still to build name, once; recorded in the run."""
    resolved: dict[str, bases.Resolution] = {}
    for ref in dict.fromkeys(r for p in todo if not p.problem for r in p.refs):
        progress.note(f"resolving base image {ref}")
        res = port.resolve_base(ref, mode=opts.bases_mode, log=progress.step)
        resolved[ref] = res
        run.record["bases"][ref] = res.to_dict()
        progress.note(f"  {ref}: {res.status}" + (f" ({res.used_ref})" if res.standin else "")
                      + (f" — {res.error}" if res.error else ""))
    run.save()
    return resolved


def _new_entry(p: Plan, resolved: dict[str, bases.Resolution], opts: RunOptions,
               old: dict | None) -> dict:
    """A variant's record before its build; `old`: its entry from the run resumed."""
    entry = {"name": p.variant.name, "label": p.variant.label,
             "dockerfile": p.variant.dockerfile.name,
             "dockerfile_path": str(p.variant.dockerfile),
             "dockerfile_sha256": hashlib.sha256(p.text.encode()).hexdigest() if p.text else None,
             "context": str(p.variant.context), "target": p.variant.target,
             "build_args": secrets.mask_args(p.variant.build_args, opts.secret_args),
             "in_manifest": p.variant.in_manifest,
             "warnings": p.warnings, "froms": _from_records(p, resolved),
             "builder": opts.builders[0], "status": "running", "error": None}
    if old is not None:
        entry["previous_attempt"] = {k: old.get(k) for k in ("status", "error")}
    return entry


def _measure_all(port: EnginePort, plans: list[Plan], resolved: dict[str, bases.Resolution],
                 opts: RunOptions, run: _Run, progress: Progress) -> None:
    """Every variant in order, the record saved before and after each one."""
    layer_cache: dict = {}  # archive member -> layer index, shared: variants share base layers
    services = Services(opts, run.record.get("engine"), labels={LABEL_RUN: run.record["run_id"]})
    old_entries = {v.get("name"): v for v in run.record["variants"]}
    run.record["variants"] = []
    try:
        for i, p in enumerate(plans):
            if p.variant.name in run.done:
                run.record["variants"].append(run.done[p.variant.name])
                progress.note(f"{p.variant.name}: already measured in this run, kept")
                continue
            entry = _new_entry(p, resolved, opts, old_entries.get(p.variant.name))
            run.record["variants"].append(entry)
            run.save()  # the variant in flight is on disk too
            try:
                _measure_variant(port, p, entry, resolved, opts, run.record["run_id"], progress,
                                 (i, len(plans)), services, layer_cache)
            except KeyboardInterrupt:
                # Unfinished (figures already measured stay in the entry): --resume redoes it.
                entry.update(status="failed", error="interrupted")
                run.record["finished_utc"] = None
                run.save()
                raise
            progress.finished(p.variant.name, entry["status"] == "ok",
                              entry.get("error") or "")
            run.save()
    finally:
        services.close()


def _finish(run: _Run, opts: RunOptions) -> tuple[Path, Run, int]:
    """Compare what the images served, close the record, append it to the history."""
    record = run.record
    served = [(v["name"], v["runtime"]) for v in record["variants"]
              if v.get("runtime") and v["runtime"].get("status") != NOT_CHECKED]
    if served:
        record["runtime_comparison"] = runtime.same_behaviour(served)
    record["finished_utc"] = results.utc_now().isoformat(timespec="seconds")
    run.save()
    typed = Run.from_json(run.masked())
    results.append_history(opts.out / results.HISTORY_FILE,
                           [HistoryEntry.of(typed, v) for v in typed.variants])
    failed = any(v["status"] != "ok" for v in record["variants"])
    return run.run_dir, typed, 1 if failed else 0


class MaskedProgress:
    """Build output can echo a secret build arg; nothing printed shows its value."""

    def __init__(self, inner: Progress, values: list[str]):
        self.inner, self.values = inner, values

    def variant(self, *args, **kwargs) -> None:
        self.inner.variant(*args, **kwargs)

    def step(self, text: str) -> None:
        self.inner.step(secrets.mask_text(text, self.values))

    def note(self, text: str) -> None:
        self.inner.note(secrets.mask_text(text, self.values))

    def finished(self, name: str, ok: bool, detail: str) -> None:
        self.inner.finished(name, ok, secrets.mask_text(detail, self.values))


def _still_measured(port: EnginePort, record: dict) -> dict[str, dict]:
    """Variants of a run to keep on --resume: measured, and their image still there."""
    kept = {}
    for v in record.get("variants") or []:
        image_id = (v.get("image") or {}).get("id")
        if v.get("status") in MEASURED and image_id and port.exists(image_id):
            kept[v["name"]] = v
    return kept


def dev_dependencies(context: Path) -> set[str]:
    """The app's devDependencies, to tell whether any shipped in the final image."""
    try:
        manifest = json.loads((context / "package.json").read_text())
    except (OSError, ValueError):
        return set()
    return set((manifest.get("devDependencies") or {}).keys())


def _analyze(port: EnginePort, image_id: str, variant: Variant, cache: dict) -> dict:
    """Layer contents; a failure here is recorded but never loses the size measured."""
    try:
        return port.analyze(image_id, cache=cache,
                            app_dev_dependencies=dev_dependencies(variant.context))
    except (HarnessError, tarfile.TarError, *engine.ENGINE_ERRORS) as exc:
        return {"error": f"layer analysis failed: {engine.first_line(exc)}"}


def _apply_lock(opts: RunOptions, resolved: dict[str, bases.Resolution]) -> None:
    if opts.bases_lock is None:
        return
    usable = {k: r for k, r in resolved.items() if r.image_id}
    if opts.bases_lock.exists() and not opts.update_lock:
        problems = bases.check_lock(opts.bases_lock, usable)
        if problems:
            raise HarnessError(f"bases differ from the lock {opts.bases_lock}: "
                               + "; ".join(problems) + " (use --update-lock to accept them)")
    else:
        bases.write_lock(opts.bases_lock, usable)


def _measure_variant(port: EnginePort, p: Plan, entry: dict, resolved, opts: RunOptions,
                     run_id: str, progress: Progress, position: tuple[int, int],
                     services: Services, layer_cache: dict) -> None:
    problem = _cannot_build(p, resolved)
    if problem:
        entry.update(status="failed", error=problem)
        return
    labels = {LABEL_RUN: run_id, LABEL_VARIANT: p.variant.name}
    _build_variant(port, p, entry, resolved, opts, labels, progress, position)
    if entry["status"] != "ok":
        return
    _after_build(port, p, entry, opts, labels, progress, services, layer_cache)


def _cannot_build(p: Plan, resolved: dict[str, bases.Resolution]) -> str | None:
    """Why the variant is not built at all: its Dockerfile, or a base that is missing."""
    if p.problem:
        return p.problem
    missing = [resolved[r] for r in p.refs if resolved[r].image_id is None]
    if missing:
        return "; ".join(r.error or r.requested for r in missing)
    return None


def _build_variant(port: EnginePort, p: Plan, entry: dict, resolved, opts: RunOptions,
                   labels: dict, progress: Progress, position: tuple[int, int]) -> None:
    """Build with every builder and measure the image kept; a failure is the entry's."""
    v = p.variant
    # Stand-ins are substituted in a copy handed to the engine; the file on disk stays as is.
    swaps = {s.index: resolved[s.base].used_ref for s in p.stages
             if s.needs_resolution and resolved[s.base].used_ref != s.base}
    text = dockerfile.rewrite_from(p.text, swaps)
    entry["dockerfile_rewritten"] = bool(swaps)
    previous = port.tagged(v.image_tag)  # an earlier run's image, untagged by this one
    name = f".harness.{v.name}.Dockerfile"
    job = BuildJob(port, p, text, name, labels, opts, progress, position)
    try:
        job.context = pack_context(v.context, text, name)
        entry["context_sha256"] = job.context.sha256
        image_id = _build_all(port, job, entry, opts)
        entry["image"] = port.measure(image_id)
        entry["image"]["tag"] = v.image_tag
        entry["status"] = "ok"
        entry["error"] = None
    except BuildFailed as exc:
        entry.update(status="failed", error=f"build failed: {exc}", log_tail=exc.log_tail)
    except engine.ENGINE_ERRORS as exc:
        entry.update(status="failed", error=_engine_error(exc))
    except KeyboardInterrupt:
        # The engine cancels the build when we hang up, but its step container holds the
        # last step image for a moment: wait for it rather than leave images behind.
        job.clean(patience=15.0)
        raise
    finally:
        # A failed or cancelled build's step container may hold its image for a moment.
        job.clean(patience=0.0 if entry["status"] == "ok" else 15.0)
        if previous and previous != job.keep:  # job.keep: the primary builder's image
            port.remove_untagged([previous], keep=job.keep, require_label=LABEL_RUN)


def _build_all(port: EnginePort, job: BuildJob, entry: dict, opts: RunOptions) -> str | None:
    """Each builder's builds; the first builder's image is the one kept and measured, the
    others' failures are recorded beside it."""
    image_id = None
    for n, builder in enumerate(opts.builders):
        primary = n == 0
        try:
            info, final = job.run(builder, tag=job.p.variant.image_tag if primary else None)
        except BuildFailed as exc:
            if primary:
                raise
            entry.setdefault("extra_builds", {})[builder] = {
                "builder": builder, "error": f"build failed: {exc}", "log_tail": exc.log_tail}
            continue
        if primary:
            entry["build"] = info
            image_id = final
            job.keep = final
        else:
            info["image"] = _brief(port.measure(final))
            entry.setdefault("extra_builds", {})[builder] = info
    return image_id


def _after_build(port: EnginePort, p: Plan, entry: dict, opts: RunOptions, labels: dict,
                 progress: Progress, services: Services, layer_cache: dict) -> None:
    """What is read from the built image: contents, where the bytes came from, whether
    it serves, what a registry stores. None of it can lose the size already measured."""
    v, image_id = p.variant, entry["image"]["id"]
    try:
        if opts.analyze:
            progress.step(f"{v.name}: reading layer contents")
            entry["contents"] = _analyze(port, image_id, v, layer_cache)
        _same_size_everywhere(entry, services.engine)
        entry["attribution"] = _attribute(port, p, entry)
        if opts.runtime:
            _check_runtime(port, v, entry, opts, labels, progress)
        if opts.registry:
            progress.step(f"{v.name}: pushing to and pulling from a loopback registry")
            estimate = (entry.get("contents") or {}).get("compressed_estimate_bytes")
            entry["registry"] = port.publish(services, image_id, v.image_tag, estimate)
            exact = entry["registry"].get("compressed_bytes")
            if exact is not None:
                entry["image"]["compressed_size_bytes"] = exact
        if not opts.keep_images:
            port.remove(v.image_tag)
    except engine.ENGINE_ERRORS as exc:
        entry.update(status="failed", error=_engine_error(exc))


def _check_runtime(port: EnginePort, v: Variant, entry: dict, opts: RunOptions, labels: dict,
                   progress: Progress) -> None:
    """Start the image and check that it serves; `runtime = false` is "not checked", never
    a failure."""
    probe = probe_for(v, opts)
    if probe is None:
        entry["runtime"] = {"status": NOT_CHECKED,
                            "skipped": f"runtime = false in {MANIFEST} for this variant"}
        return
    progress.step(f"{v.name}: starting the image to check that it serves")
    entry["runtime"] = port.runtime_check(entry["image"]["id"], labels=labels, probe=probe)
    if entry["runtime"].get("status") != "ok":
        entry.update(status=FAILED_AT_RUNTIME,
                     error=f"failed at runtime: {entry['runtime'].get('error')}")


def _same_size_everywhere(entry: dict, engine_facts: dict) -> None:
    """The image's and its base's size as harness.analysis.sizes defines it, the engine's kept."""
    contents = entry.get("contents")
    entry["image"] = sizes.engine_independent(entry["image"], contents, engine_facts)
    if entry["image"].get("size_basis") == "layers":
        entry["froms"] = [sizes.base_size(f, contents["layers"]) if f.get("final") else f
                          for f in entry.get("froms") or []]


def _engine_error(exc: BaseException) -> str:
    if isinstance(exc, (RequestsConnectionError, urllib3.exceptions.HTTPError,
                        http.client.HTTPException, ConnectionError)):
        return f"engine error: the engine stopped answering ({engine.first_line(exc)})"
    return f"engine error: {engine.first_line(exc)}"


def _brief(image: dict) -> dict:
    return {k: image.get(k) for k in ("id", "size_bytes", "layer_count", "history_count")}


def _attribute(port: EnginePort, p: Plan, entry: dict) -> dict | None:
    """Each layer of the final image, to the instruction and stage that made it."""
    final = next((f for f in entry.get("froms") or [] if f.get("final")), None)
    base_history = 0
    if final and final.get("image_id"):
        base_history = port.base_history(final["image_id"])
        if base_history is None:
            return None
    return attribution.attribute(entry["image"], entry.get("contents"), base_history, p.stages)


def _made_by(outcome: BuildOutcome, builder: str) -> bool:
    """Whether the build made its image, rather than finding it whole in the cache (then
    it may be another build's, not ours to remove)."""
    if builder == "classic":
        short = outcome.image_id.replace("sha256:", "")[:12]
        return short in outcome.step_images
    return outcome.steps_cached < outcome.steps_total


class BuildJob:
    """One variant's builds: per builder, the scenarios in order, every sample timed.

    Everything the builds make besides the image kept is removed by id at the end."""

    def __init__(self, port: EnginePort, p: Plan, text: str, dockerfile_name: str,
                 labels: dict, opts: RunOptions, progress: Progress,
                 position: tuple[int, int]):
        self.port, self.p, self.text, self.name = port, p, text, dockerfile_name
        self.labels, self.opts, self.progress, self.position = labels, opts, progress, position
        self.context: Context | None = None
        self.made: list[str] = []  # classic step images, from the build stream
        self.produced: list[str] = []  # the image of every build
        self.keep: str | None = None

    def run(self, builder: str, tag: str | None) -> tuple[dict, str]:
        v, opts = self.p.variant, self.opts
        if builder == "classic":
            reason = dockerfile.needs_buildkit(self.p.text)
            if reason:
                raise BuildFailed(f"needs BuildKit: {reason}; run with --builder buildkit")
        info: dict = {"builder": builder, "samples_seconds": [], "warmup_seconds": [],
                      "context_bytes": self.context.size_bytes,
                      "context_files": self.context.file_count,
                      "context_seconds": self.context.seconds, "scenarios": {}}
        bare = measure_unignored(v.context, self.text, self.name)
        info.update(context_bytes_without_dockerignore=bare[0],
                    context_files_without_dockerignore=bare[1])
        wanted = opts.scenarios
        if scenarios.COLD in wanted:
            cold = self._scenario(builder, scenarios.COLD, tag, lambda: (self.context, None))
            info["scenarios"][scenarios.COLD] = cold
            final = cold.pop("_final")
        else:  # the cached scenarios need a cache: one build primes it, untimed
            final = self._build(builder, self.context, tag, nocache=False).image_id
            info["primed"] = True
        info["samples_seconds"] = info["scenarios"].get(scenarios.COLD, {}).get("samples_seconds", [])
        info["warmup_seconds"] = info["scenarios"].get(scenarios.COLD, {}).get("warmup_seconds", [])
        if scenarios.COLD in info["scenarios"]:
            for key in ("steps_total", "steps_cached"):
                info[key] = info["scenarios"][scenarios.COLD][key]
        cached = [s for s in scenarios.CACHED if s in wanted]
        if cached:
            with scenarios.Workspace(v.context, self.labels[LABEL_RUN]) as ws:
                for scenario in cached:
                    info["scenarios"][scenario] = self._cached_scenario(builder, scenario, ws)
        return info, final

    def _cached_scenario(self, builder: str, scenario: str, ws: scenarios.Workspace) -> dict:
        if scenario == scenarios.NO_CHANGE:
            return self._scenario(builder, scenario, None, lambda: (self.context, None))
        reason = ws.unavailable(scenario)
        if reason:
            return {"skipped": reason}

        def edited():
            change = ws.change(scenario)
            return pack_context(ws.root, self.text, self.name), change.description
        try:
            return self._scenario(builder, scenario, None, edited)
        except BuildFailed as exc:  # the cold build worked: keep it, say what did not
            return {"error": f"build failed: {exc}", "log_tail": exc.log_tail}

    def _scenario(self, builder: str, scenario: str, tag: str | None, make_context) -> dict:
        warm = scenarios.warmups(scenario, self.opts.warmup)
        out: dict = {"samples_seconds": [], "warmup_seconds": []}
        total = warm + self.opts.repeat
        for k in range(total):
            counted = k >= warm
            self.progress.variant(f"{self.p.variant.name} [{builder}, {scenario}"
                                  + ("" if counted else ", warm-up") + "]",
                                  self.position[0], self.position[1],
                                  k - warm + 1 if counted else k + 1,
                                  self.opts.repeat if counted else warm, scenario=scenario)
            context, change = make_context()
            try:
                outcome = self._build(builder, context, tag, nocache=scenario == scenarios.COLD)
            finally:
                if context is not self.context:
                    context.close()
            (out["samples_seconds"] if counted else out["warmup_seconds"]).append(outcome.seconds)
            out.update(steps_total=outcome.steps_total, steps_cached=outcome.steps_cached,
                       steps_rebuilt=outcome.steps_total - outcome.steps_cached)
            if change:
                out["changed"] = change
            out["_final"] = outcome.image_id
        summary = stats.summarize(out["samples_seconds"])
        out["stats"] = summary.to_dict() if summary else None
        if scenario != scenarios.COLD:
            out.pop("_final")
        return out

    def _build(self, builder: str, context: Context, tag: str | None, nocache: bool) -> BuildOutcome:
        p = self.p
        outcome = self.port.build(builder, context, tag=tag, target=p.variant.target,
                                  build_args=p.variant.build_args, nocache=nocache,
                                  labels=self.labels, on_line=self.progress.step,
                                  timeout=self.opts.timeout, made=self.made)
        if _made_by(outcome, builder):
            self.produced.append(outcome.image_id)
        return outcome

    def clean(self, patience: float = 0.0) -> None:
        if self.context is not None:
            self.context.close()
        produced = [i for i in self.produced if i != self.keep]
        self.port.remove_untagged([*self.made, *produced], keep=self.keep, patience=patience)
        self.made.clear()
        self.produced = [i for i in self.produced if i == self.keep]
