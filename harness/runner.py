"""A bench run: resolve bases, build and measure each variant, save after each one.

Data flows one way: variants -> bases -> build -> measure -> results. The record is
saved after every variant, so whatever happens next, nothing measured is lost.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import docker
from docker.errors import APIError, DockerException
from requests.exceptions import RequestException

from . import bases, dockerfile, engine, history, layers, results
from .build import build_image, pack_context
from .errors import BuildFailed, HarnessError
from .measure import measure_image
from .variants import Variant

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
    """Run the bench; return the run directory, its record and the exit code."""
    progress = progress or QuietProgress()
    now = results.utc_now()
    settings = {"repeat": opts.repeat, "builder": "classic", "scenario": "cold",
                "bases_mode": opts.bases_mode, **opts.settings}
    record = results.new_record(now, settings, engine.describe(client))
    run_dir = results.new_run_dir(opts.out, now)
    results.save(run_dir, record)

    plans = [plan(v) for v in variants]
    for p in plans:
        for w in p.warnings:
            progress.note(f"warning: {p.variant.name}: {w}")

    layer_cache: dict = {}  # diff id -> layer index, shared: variants share base layers
    resolved: dict[str, bases.Resolution] = {}
    for ref in dict.fromkeys(r for p in plans if not p.problem for r in p.refs):
        progress.note(f"resolving base image {ref}")
        res = bases.resolve(client, ref, mode=opts.bases_mode, log=progress.step)
        resolved[ref] = res
        record["bases"][ref] = res.to_dict()
        progress.note(f"  {ref}: {res.status}" + (f" ({res.used_ref})" if res.standin else "")
                      + (f" — {res.error}" if res.error else ""))
    results.save(run_dir, record)
    _apply_lock(opts, resolved)

    for i, p in enumerate(plans):
        entry = {"name": p.variant.name, "label": p.variant.label,
                 "dockerfile": p.variant.dockerfile.name,
                 "dockerfile_path": str(p.variant.dockerfile),
                 "dockerfile_sha256": hashlib.sha256(p.text.encode()).hexdigest() if p.text else None,
                 "context": str(p.variant.context), "target": p.variant.target,
                 "build_args": p.variant.build_args, "in_manifest": p.variant.in_manifest,
                 "warnings": p.warnings, "froms": _from_records(p, resolved),
                 "status": "running", "error": None}
        record["variants"].append(entry)
        results.save(run_dir, record)  # the variant in flight is on disk too
        try:
            _measure_variant(client, p, entry, resolved, opts, record["run_id"], progress,
                             (i, len(plans)))
            if opts.analyze and entry["status"] == "ok":
                progress.step(f"{p.variant.name}: reading layer contents")
                entry["contents"] = _analyze(client, entry["image"]["id"], p.variant, layer_cache)
        except KeyboardInterrupt:
            if entry["status"] == "running":  # a variant already measured keeps its figures
                entry.update(status="failed", error="interrupted")
            record["finished_utc"] = None
            results.save(run_dir, record)
            raise
        progress.finished(p.variant.name, entry["status"] == "ok",
                          entry.get("error") or "")
        results.save(run_dir, record)

    record["finished_utc"] = results.utc_now().isoformat(timespec="seconds")
    results.save(run_dir, record)
    history.append_run(opts.out / history.HISTORY_FILE, record)
    failed = any(v["status"] != "ok" for v in record["variants"])
    return run_dir, record, 1 if failed else 0


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
    except (HarnessError, APIError, DockerException, RequestException, OSError,
            tarfile.TarError) as exc:
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
                     progress: Progress, position: tuple[int, int]) -> None:
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
    samples: list[float] = []
    build_info: dict = {"samples_seconds": samples, "warmup_seconds": []}
    entry["build"] = build_info
    made: list[str] = []  # every step image our builds produced, to remove the untagged ones
    previous = _tagged(client, v.image_tag)  # an earlier run's image, untagged by this one
    context = pack_context(v.context, text, f".harness.{v.name}.Dockerfile")
    build_info.update(context_bytes=context.size_bytes, context_files=context.file_count,
                      context_seconds=context.seconds)
    entry["context_sha256"] = context.sha256
    image_id = None
    try:
        for rep in range(opts.repeat):
            progress.variant(v.name, position[0], position[1], rep + 1, opts.repeat)
            outcome = build_image(
                client, context, tag=v.image_tag, target=v.target, build_args=v.build_args,
                nocache=True, labels={LABEL_RUN: run_id, LABEL_VARIANT: v.name},
                on_line=progress.step, made=made)
            samples.append(outcome.seconds)
            build_info.update(steps_total=outcome.steps_total, steps_cached=outcome.steps_cached)
            if image_id and image_id != outcome.image_id:
                _remove(client, image_id)  # an earlier repetition's image, now untagged
            image_id = outcome.image_id
        entry["image"] = measure_image(client, image_id)
        entry["image"]["tag"] = v.image_tag
        entry["status"] = "ok"
        entry["error"] = None
    except BuildFailed as exc:
        entry.update(status="failed", error=f"build failed: {exc}", log_tail=exc.log_tail)
    except (APIError, DockerException, RequestException, OSError) as exc:
        entry.update(status="failed", error=f"engine error: {engine.first_line(exc)}")
    except KeyboardInterrupt:
        # The engine cancels the build when we hang up, but its step container holds the
        # last step image for a moment: wait for it rather than leave images behind.
        context.close()
        remove_untagged(client, made, keep=image_id, patience=15.0)
        raise
    finally:
        context.close()
        remove_untagged(client, made, keep=image_id)
        if previous and previous != image_id:
            remove_untagged(client, [previous], keep=image_id, require_label=LABEL_RUN)


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

