"""A bench run: resolve bases, build and measure each variant, save after each one.

Data flows one way: variants -> bases -> build -> measure -> results. The record is
saved after every variant, so whatever happens next, nothing measured is lost.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

import docker
import urllib3.exceptions
from docker.errors import APIError
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import RequestException

from harness.analysis import layers, sizes
from harness import engine, stats
from harness.analysis import attribution
from harness.bases import resolve as bases
from harness.analysis import dockerfile
from harness.track import history
from harness.engine import private as private_engine
from harness.engine import registry
from harness import store as results
from harness.engine import runtime
from harness.bench import scenarios
from harness.analysis import secrets
from harness.engine.build import (
    BuildOutcome,
    Context,
    build_image,
    measure_unignored,
    pack_context,
)
from harness.engine.buildkit import build_image_buildkit
from harness.errors import BuildFailed, HarnessError
from harness.engine.inspect import measure_image
from harness.store import FAILED_AT_RUNTIME, MEASURED
from harness.bench.variants import Variant

LABEL_RUN = "io.harness.run"
LABEL_VARIANT = "io.harness.variant"


class Progress(Protocol):
    def variant(self, name: str, index: int, total: int, repetition: int, repeat: int) -> None: ...
    def step(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def finished(self, name: str, ok: bool, detail: str) -> None: ...


class QuietProgress:
    def variant(self, *args) -> None: ...
    def step(self, text: str) -> None: ...
    def note(self, text: str) -> None: ...
    def finished(self, *args) -> None: ...


@dataclass
class RunOptions:
    repeat: int = 3
    out: Path = Path("results")
    bases_mode: str = "auto"
    bases_lock: Path | None = None
    update_lock: bool = False
    analyze: bool = True  # read each image's layers: contents, waste, compressed estimate
    scenarios: tuple[str, ...] = (scenarios.COLD,)  # the CLI's default is all four
    warmup: int | None = None  # uncounted builds per scenario (None: 1, none for cold)
    builders: tuple[str, ...] = ("classic",)  # the first one's image is the one measured
    timeout: float | None = None  # seconds per build
    runtime: bool = False  # start each image and check that it serves
    registry: bool = False  # push to and pull from a loopback registry: exact compressed size
    cold_pull: bool = False  # with registry: also pull into an empty engine of our own
    keep_images: bool = True  # keep each variant's final image after the run
    secret_args: tuple[str, ...] = ()  # masked too, besides harness.secrets.SECRET_WORDS
    resume: Path | None = None  # a run directory to complete instead of starting a new one
    settings: dict = field(default_factory=dict)  # extra settings to record (paths given)


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
    if p.parsed is not None:
        undeclared = sorted(set(variant.build_args) - p.parsed.declared_args)
        if undeclared:
            p.warnings.append(f"build arg(s) {', '.join(undeclared)} not declared by any ARG "
                              f"in {variant.dockerfile.name}; the engine ignores them")
    return p


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


def execute(client: docker.DockerClient, variants: list[Variant], opts: RunOptions,
            progress: Progress | None = None) -> tuple[Path, dict, int]:
    """Run the bench; return the run directory, its record and the exit code.

    With `opts.resume`, the run directory given is completed: variants already measured
    (and whose image is still on the engine) are kept as they are, the rest are built."""
    progress = progress or QuietProgress()
    secret_values = sorted({value for v in variants for key, value in v.build_args.items()
                            if value and secrets.is_secret(key, opts.secret_args)})
    progress = MaskedProgress(progress, secret_values) if secret_values else progress
    if opts.resume is not None:
        run_dir, record = opts.resume, results.load(opts.resume)
        done = _still_measured(client, record)
        record["resumed_utc"] = [*record.get("resumed_utc", []),
                                 results.utc_now().isoformat(timespec="seconds")]
    else:
        now = results.utc_now()
        settings = {"repeat": opts.repeat, "builder": opts.builders[0],
                    "builders": list(opts.builders), "scenario": opts.scenarios[0],
                    "scenarios": list(opts.scenarios), "warmup": opts.warmup,
                    "timeout": opts.timeout, "runtime": opts.runtime, "registry": opts.registry,
                    "cold_pull": opts.cold_pull,
                    "bases_mode": opts.bases_mode, **opts.settings}
        record = results.new_record(now, settings, engine.describe(client))
        run_dir = results.new_run_dir(opts.out, now)
        done = {}

    def save() -> None:
        results.save(run_dir, secrets.mask_record(record, secret_values))

    save()
    plans = [plan(v) for v in variants]
    for p in plans:
        for w in p.warnings:
            progress.note(f"warning: {p.variant.name}: {w}")

    layer_cache: dict = {}  # archive member -> layer index, shared: variants share base layers
    resolved: dict[str, bases.Resolution] = {}
    todo = [p for p in plans if p.variant.name not in done]
    for ref in dict.fromkeys(r for p in todo if not p.problem for r in p.refs):
        progress.note(f"resolving base image {ref}")
        res = bases.resolve(client, ref, mode=opts.bases_mode, log=progress.step)
        resolved[ref] = res
        record["bases"][ref] = res.to_dict()
        progress.note(f"  {ref}: {res.status}" + (f" ({res.used_ref})" if res.standin else "")
                      + (f" — {res.error}" if res.error else ""))
    save()
    _apply_lock(opts, resolved)

    services = Services(opts, record.get("engine"))
    old_entries = {v.get("name"): v for v in record["variants"]}
    record["variants"] = []
    try:
        for i, p in enumerate(plans):
            if p.variant.name in done:
                record["variants"].append(done[p.variant.name])
                progress.note(f"{p.variant.name}: already measured in this run, kept")
                continue
            entry = {"name": p.variant.name, "label": p.variant.label,
                     "dockerfile": p.variant.dockerfile.name,
                     "dockerfile_path": str(p.variant.dockerfile),
                     "dockerfile_sha256": hashlib.sha256(p.text.encode()).hexdigest() if p.text else None,
                     "context": str(p.variant.context), "target": p.variant.target,
                     "build_args": secrets.mask_args(p.variant.build_args, opts.secret_args),
                     "in_manifest": p.variant.in_manifest,
                     "warnings": p.warnings, "froms": _from_records(p, resolved),
                     "builder": opts.builders[0], "status": "running", "error": None}
            if p.variant.name in old_entries:
                entry["previous_attempt"] = {k: old_entries[p.variant.name].get(k)
                                             for k in ("status", "error")}
            record["variants"].append(entry)
            save()  # the variant in flight is on disk too
            try:
                _measure_variant(client, p, entry, resolved, opts, record["run_id"], progress,
                                 (i, len(plans)), services, layer_cache)
            except KeyboardInterrupt:
                # Unfinished (figures already measured stay in the entry): --resume redoes it.
                entry.update(status="failed", error="interrupted")
                record["finished_utc"] = None
                save()
                raise
            progress.finished(p.variant.name, entry["status"] == "ok",
                              entry.get("error") or "")
            save()
    finally:
        services.close()

    served = [(v["name"], v["runtime"]) for v in record["variants"] if v.get("runtime")]
    if served:
        record["runtime_comparison"] = runtime.same_behaviour(served)
    record["finished_utc"] = results.utc_now().isoformat(timespec="seconds")
    save()
    history.append_run(opts.out / history.HISTORY_FILE, secrets.mask_record(record, secret_values))
    failed = any(v["status"] != "ok" for v in record["variants"])
    return run_dir, secrets.mask_record(record, secret_values), 1 if failed else 0


class MaskedProgress:
    """Build output can echo a secret build arg; nothing printed shows its value."""

    def __init__(self, inner: Progress, values: list[str]):
        self.inner, self.values = inner, values

    def variant(self, *args) -> None:
        self.inner.variant(*args)

    def step(self, text: str) -> None:
        self.inner.step(secrets.mask_text(text, self.values))

    def note(self, text: str) -> None:
        self.inner.note(secrets.mask_text(text, self.values))

    def finished(self, name: str, ok: bool, detail: str) -> None:
        self.inner.finished(name, ok, secrets.mask_text(detail, self.values))


def _still_measured(client, record: dict) -> dict[str, dict]:
    """Variants of a run to keep on --resume: measured, and their image still there."""
    kept = {}
    for v in record.get("variants") or []:
        image_id = (v.get("image") or {}).get("id")
        if v.get("status") in MEASURED and image_id and _exists(client, image_id):
            kept[v["name"]] = v
    return kept


def _exists(client, image_id: str) -> bool:
    try:
        client.api.inspect_image(image_id)
        return True
    except (APIError, RequestException):
        return False


class Services:
    """The run's shared helpers, started on first use and stopped at the end: the
    loopback registry and the empty engine cold pulls go to."""

    def __init__(self, opts: RunOptions, engine_facts: dict | None = None):
        self.engine = engine_facts or {}  # engine.describe's: which store sizes come from
        self.opts = opts
        self._registry: registry.Registry | None = None
        self.registry_error: str | None = None
        self._cold: private_engine.PrivateEngine | None = None
        self._cold_client: docker.DockerClient | None = None
        self.cold_error: str | None = None

    def registry(self) -> registry.Registry | None:
        if self._registry is None and self.registry_error is None:
            try:
                self._registry = registry.start()
            except HarnessError as exc:
                self.registry_error = str(exc)
        return self._registry

    def cold_engine(self) -> docker.DockerClient | None:
        """A client of a private dockerd with an empty data root (harness.private_engine)."""
        if self._cold is None and self.cold_error is None:
            self.cold_error = private_engine.missing()
            if self.cold_error is None:
                try:
                    self._cold = private_engine.start(bridge="hcp", subnet="10.213.78.1/24")
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    self.cold_error = f"the empty engine did not start: {engine.first_line(exc)}"
                else:
                    self._cold_client = self._cold.client(timeout=600)
        return self._cold_client

    @property
    def cold_root(self) -> Path | None:
        """The empty engine's directory, while it runs."""
        return self._cold.root if self._cold is not None else None

    def close(self) -> None:
        try:
            if self._cold is not None:
                self._cold.close()  # closes its clients too
                self._cold, self._cold_client = None, None
        finally:
            if self._registry is not None:
                registry.stop(self._registry)
                self._registry = None


def dev_dependencies(context: Path) -> set[str]:
    """The app's devDependencies, to tell whether any shipped in the final image."""
    try:
        manifest = json.loads((context / "package.json").read_text())
    except (OSError, ValueError):
        return set()
    return set((manifest.get("devDependencies") or {}).keys())


def _analyze(client, image_id: str, variant: Variant, cache: dict) -> dict:
    """Layer contents; a failure here is recorded but never loses the size measured."""
    try:
        return layers.analyze_image(client, image_id, cache=cache,
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


def _measure_variant(client, p: Plan, entry: dict, resolved, opts: RunOptions, run_id: str,
                     progress: Progress, position: tuple[int, int], services: Services,
                     layer_cache: dict) -> None:
    v = p.variant
    if p.problem:
        entry.update(status="failed", error=p.problem)
        return
    missing = [resolved[r] for r in p.refs if resolved[r].image_id is None]
    if missing:
        entry.update(status="failed", error="; ".join(r.error or r.requested for r in missing))
        return
    # Stand-ins are substituted in a copy handed to the engine; the file on disk stays as is.
    swaps = {s.index: resolved[s.base].used_ref for s in p.stages
             if s.needs_resolution and resolved[s.base].used_ref != s.base}
    text = dockerfile.rewrite_from(p.text, swaps)
    entry["dockerfile_rewritten"] = bool(swaps)
    labels = {LABEL_RUN: run_id, LABEL_VARIANT: v.name}
    previous = _tagged(client, v.image_tag)  # an earlier run's image, untagged by this one
    name = f".harness.{v.name}.Dockerfile"
    job = BuildJob(client, p, text, name, labels, opts, progress, position)
    image_id = None
    try:
        job.context = pack_context(v.context, text, name)
        entry["context_sha256"] = job.context.sha256
        for n, builder in enumerate(opts.builders):
            primary = n == 0
            try:
                info, final = job.run(builder, tag=v.image_tag if primary else None)
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
                info["image"] = _brief(measure_image(client, final))
                entry.setdefault("extra_builds", {})[builder] = info
        entry["image"] = measure_image(client, image_id)
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
        if previous and previous != image_id:
            remove_untagged(client, [previous], keep=image_id, require_label=LABEL_RUN)
    if entry["status"] != "ok":
        return
    _after_build(client, p, entry, opts, labels, progress, services, layer_cache)


def _after_build(client, p: Plan, entry: dict, opts: RunOptions, labels: dict,
                 progress: Progress, services: Services, layer_cache: dict) -> None:
    """What is read from the built image: contents, where the bytes came from, whether
    it serves, what a registry stores. None of it can lose the size already measured."""
    v, image_id = p.variant, entry["image"]["id"]
    try:
        if opts.analyze:
            progress.step(f"{v.name}: reading layer contents")
            entry["contents"] = _analyze(client, image_id, v, layer_cache)
        _same_size_everywhere(entry, services.engine)
        entry["attribution"] = _attribute(client, p, entry)
        if opts.runtime:
            progress.step(f"{v.name}: starting the image to check that it serves")
            entry["runtime"] = runtime.check(client, image_id, labels=labels)
            if entry["runtime"].get("status") != "ok":
                entry.update(status=FAILED_AT_RUNTIME,
                             error=f"failed at runtime: {entry['runtime'].get('error')}")
        if opts.registry:
            progress.step(f"{v.name}: pushing to and pulling from a loopback registry")
            entry["registry"] = _publish(client, services, image_id, v, entry)
            exact = entry["registry"].get("compressed_bytes")
            if exact is not None:
                entry["image"]["compressed_size_bytes"] = exact
        if not opts.keep_images:
            _remove(client, v.image_tag)
    except engine.ENGINE_ERRORS as exc:
        entry.update(status="failed", error=_engine_error(exc))


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


def _attribute(client, p: Plan, entry: dict) -> dict | None:
    """Each layer of the final image, to the instruction and stage that made it."""
    final = next((f for f in entry.get("froms") or [] if f.get("final")), None)
    base_history = 0
    if final and final.get("image_id"):
        try:
            base_history = len(client.api.history(final["image_id"]))
        except (APIError, RequestException):
            return None
    return attribution.attribute(entry["image"], entry.get("contents"), base_history, p.stages)


def _publish(client, services: Services, image_id: str, v: Variant, entry: dict) -> dict:
    """Push to the loopback registry (exact compressed sizes, push time), then remove
    the local image and pull it back (pull time); the image keeps its tags and id."""
    reg = services.registry()
    if reg is None:
        return {"error": services.registry_error}
    name, tag = v.image_tag.split(":")[0], "bench"
    out: dict = {}
    try:
        out["push_seconds"] = registry.push(client, image_id, reg, name, tag)
        sizes = registry.layer_sizes(reg, name, tag)
        out.update(layer_sizes=sizes, compressed_bytes=sum(sizes))
        estimate = (entry.get("contents") or {}).get("compressed_estimate_bytes")
        if estimate:
            out["estimate_bytes"] = estimate
            out["estimate_error_pct"] = round(100.0 * (estimate - sum(sizes)) / sum(sizes), 3)
        tags = client.api.inspect_image(image_id).get("RepoTags") or []
        for t in tags:
            client.api.remove_image(t, noprune=False)
        out["image_removed_before_pull"] = not _exists(client, image_id)
        pulled = registry.pull(client, reg, name, tag)
        out.update(pull_seconds=pulled.seconds, pull_layers_present=pulled.layers_present,
                   pull_layers=len(sizes))
        for t in tags:
            if not t.startswith(reg.host + "/"):
                repo, _, t_tag = t.rpartition(":")
                client.api.tag(image_id, repo, t_tag)
    except (HarnessError, APIError, RequestException, OSError) as exc:
        out["error"] = engine.first_line(exc)
    else:
        if services.opts.cold_pull:
            out.update(_cold_pull(services, reg, name, tag))
    finally:
        try:
            registry.untag(client, reg, name, tag)
        except (APIError, RequestException):
            pass
    return out


def _cold_pull(services: Services, reg: registry.Registry, name: str, tag: str) -> dict:
    """The pull of a host that has none of the image's layers: into the empty engine, then
    the image is removed there (by id) so that the next variant's pull is cold too."""
    cold = services.cold_engine()
    if cold is None:
        return {"cold_pull_error": f"not measured: {services.cold_error}"}
    try:
        pulled = registry.pull(cold, reg, name, tag)
        cold.api.remove_image(f"{reg.repository(name)}:{tag}", force=True)
    except (HarnessError, APIError, RequestException, OSError) as exc:
        return {"cold_pull_error": engine.first_line(exc)}
    return {"cold_pull_seconds": pulled.seconds, "cold_pull_layers_present": pulled.layers_present}


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

    def __init__(self, client, p: Plan, text: str, dockerfile_name: str, labels: dict,
                 opts: RunOptions, progress: Progress, position: tuple[int, int]):
        self.client, self.p, self.text, self.name = client, p, text, dockerfile_name
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
                                  self.opts.repeat if counted else warm)
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
        fn = build_image_buildkit if builder == "buildkit" else partial(build_image, self.client)
        p = self.p
        outcome = fn(context, tag=tag, target=p.variant.target, build_args=p.variant.build_args,
                     nocache=nocache, labels=self.labels, on_line=self.progress.step,
                     timeout=self.opts.timeout, made=self.made)
        if _made_by(outcome, builder):
            self.produced.append(outcome.image_id)
        return outcome

    def clean(self, patience: float = 0.0) -> None:
        if self.context is not None:
            self.context.close()
        produced = [i for i in self.produced if i != self.keep]
        remove_untagged(self.client, [*self.made, *produced], keep=self.keep, patience=patience)
        self.made.clear()
        self.produced = [i for i in self.produced if i == self.keep]


def _remove(client, image_id: str) -> bool:
    try:
        client.api.remove_image(image_id, force=False, noprune=False)
        return True
    except (APIError, RequestException):
        return False  # still used by a tag, a child or a container: leave it, never force


def _tagged(client, tag: str) -> str | None:
    try:
        return client.api.inspect_image(tag)["Id"]
    except (APIError, RequestException):
        return None


def remove_untagged(client, step_images: list[str], keep: str | None,
                    require_label: str | None = None, patience: float = 0.0) -> None:
    """Drop the untagged images our own builds made (other stages, earlier repetitions).

    Only ids read from our build streams are touched, never a prune, so another build
    on the same engine keeps its images. Removing a leaf also removes its untagged
    parents; a parent with children refuses, which is fine.
    """
    keep_short = (keep or "").replace("sha256:", "")[:12]
    pending = [s for s in reversed(step_images) if s.replace("sha256:", "")[:12] != keep_short]
    deadline = time.monotonic() + patience
    while pending:
        pending = [s for s in pending if not _remove_if_ours(client, s, require_label)]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def _remove_if_ours(client, short: str, require_label: str | None) -> bool:
    """True when the image is gone (or is not ours to remove)."""
    try:
        attrs = client.api.inspect_image(short)
    except (APIError, RequestException):
        return True  # already gone with a child removed before it
    tags = [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    if tags or (require_label is not None and require_label not in labels):
        return True
    try:
        client.api.remove_image(attrs["Id"], force=False, noprune=False)
        return True
    except APIError as exc:
        # Only a container still using it is worth waiting for; children are final.
        return "container" not in str(exc.explanation or exc)
    except RequestException:
        return True

