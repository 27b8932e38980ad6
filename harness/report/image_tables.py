"""Shipping, runtime and where the bytes go: the registry's exact compressed size and
pull, what each variant serves, and each image's bytes by origin and by layer."""

from __future__ import annotations

import re

import pandas as pd

from harness.model import (
    FAILED_AT_RUNTIME,
    MEASURED,
    NOT_CHECKED,
    RUNNING,
    AttributedLayer,
    Registry,
    Run,
    RuntimeCheck,
    VariantResult,
)
from harness.report.formatting import (
    as_lines,
    compressed_estimate,
    estimate_error_pct,
    exact_compressed,
    is_measured,
    markdown_table,
    section_lines,
    variant_cell,
    variant_ref,
)
from harness.report.units import human_seconds, human_size, signed_percent

# ---------------------------------------------------------------------------- shipping

def _pull_note(reg: Registry | None) -> str:
    if reg is None:
        return ""
    if reg.error:
        return f"registry: {reg.error}"
    notes = []
    if reg.image_removed_before_pull is False:
        notes.append("the image could not be removed before the pull (still in use): "
                     "the pull time is not a download time")
    present, total = reg.pull_layers_present, reg.pull_layers
    if present:
        rest = f", only {total - present} downloaded" if total is not None else ""
        notes.append(f"not a cold-host pull: {present} of {total if total is not None else '?'} "
                     f"layers were already on the engine{rest}")
    elif present == 0 and reg.pull_seconds is not None:
        notes.append("every layer downloaded")
    if reg.cold_pull_error:
        notes.append(f"cold pull: {reg.cold_pull_error}")
    elif reg.cold_pull_layers_present:  # an empty engine should have had none
        notes.append(f"cold pull found {reg.cold_pull_layers_present} layers present")
    return "; ".join(notes)


def shipping_table(run: Run) -> pd.DataFrame | None:
    """What a registry stores and how long moving the image takes."""
    variants = [v for v in run.variants if is_measured(v)]
    if not any(v.registry is not None or exact_compressed(v) is not None for v in variants):
        return None
    data = []
    for v in variants:
        reg = v.registry or Registry()  # not pushed: every figure of it "–"
        present, total = reg.pull_layers_present, reg.pull_layers
        error = estimate_error_pct(v)
        data.append({
            "Variant": variant_cell(v),
            "Compressed (registry, exact)": human_size(exact_compressed(v)),
            "Estimate (gzip -6)": human_size(compressed_estimate(v)),
            "Estimate error": "–" if error is None else signed_percent(error / 100, 1),
            "Push": human_seconds(reg.push_seconds),
            "Pull": human_seconds(reg.pull_seconds),
            "Layers present at pull": ("–" if present is None else
                                       f"{present} of {total if total is not None else '?'}"),
            "Cold pull": human_seconds(reg.cold_pull_seconds),
            "Note": _pull_note(v.registry),
        })
    return pd.DataFrame(data)


SHIPPING_NOTE = (
    "Compressed: the bytes of the layer blobs a registry stores for the image (pushed to a "
    "loopback registry), exact. Estimate: gzip level 6 of each layer, as the layer analysis "
    "computes it; its error is (estimate − exact) / exact. Pull: the image's tags are "
    "removed, then it is pulled back from the registry; layers still on the engine (its base "
    "image, layers shared with other variants) are not downloaded again, so where any were "
    "present this is not the pull of a cold host. Cold pull: the same image pulled from the "
    "same registry into an empty engine of the harness's own (a second dockerd on an empty "
    "data root, removed after the run): every layer downloaded, unpacked and registered, as "
    "on a host that has none of them; the registry is on loopback, so this is the pull's "
    "cost without a network, the floor of a deploy.")


def shipping_lines(run: Run) -> list[str]:
    servers = sorted({v.registry.server for v in run.variants
                      if v.registry is not None and v.registry.server})
    served = f" The registry was {' and '.join(servers)}." if servers else ""
    return section_lines("Shipping", shipping_table(run), SHIPPING_NOTE + served)


# ---------------------------------------------------------------------------- runtime

def serving(run: Run) -> dict[str, tuple[str, str | None]]:
    """Variant name -> ("reference" | "same" | "different" | "not serving", reason)."""
    comp = run.runtime_comparison
    out: dict[str, tuple[str, str | None]] = {}
    if comp is None:
        return out
    for name in comp.not_serving:
        out[str(name)] = ("not serving", None)
    for item in comp.different:
        out[str(item.name)] = ("different", item.reason)
    for name in comp.same:
        out[str(name)] = ("same", None)
    if comp.reference:
        out[str(comp.reference)] = ("reference", None)
    return out


def _serving_cell(state: tuple[str, str | None] | None) -> str:
    if state is None:
        return "–"
    kind, reason = state
    if kind == "different":
        return "differs" + (f": {reason}" if reason else "")
    return {"reference": "reference", "same": "same", "not serving": "not serving"}[kind]


def _get_root(rt: RuntimeCheck) -> str:
    if rt.root_status is None:
        return "–"
    kind = rt.root_content_type
    return f"{rt.root_status}" + (f" ({kind})" if kind else "")


BODY_EXCERPT = 80


def body_excerpt(body) -> str:
    if body is None:
        return "–"
    text = " ".join(str(body).split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT - 1] + "…"


def _started(run: Run) -> list[tuple[VariantResult, RuntimeCheck]]:
    """The variants whose container was started, with what their runtime check found."""
    return [(v, v.runtime) for v in run.variants
            if v.runtime is not None and v.runtime.status != NOT_CHECKED]


def _not_checked(run: Run) -> list[VariantResult]:
    """The variants not started on purpose (`runtime = false`)."""
    return [v for v in run.variants if v.runtime is not None and v.runtime.status == NOT_CHECKED]


def _default_probe(rt: RuntimeCheck) -> bool:
    """Checked as every run did before probes were configurable: a 200 from /healthz."""
    return (rt.health_source in (None, "http") and rt.health_path in (None, "/healthz")
            and rt.status != NOT_CHECKED)


def _checked_by(rt: RuntimeCheck) -> str:
    if rt.status == NOT_CHECKED:
        return "not checked"
    if rt.health_source == "healthcheck":
        return "HEALTHCHECK" + (f" ({rt.engine_health})" if rt.engine_health else "")
    return f"GET {rt.health_path or '/healthz'}"


def runtime_table(run: Run, *, body: bool = False) -> pd.DataFrame | None:
    """Each variant checked or not checked: healthy after, idle memory, GET / and how it
    compares. "Checked by" only when some variant was not checked the default way."""
    rows = [(v, v.runtime) for v in run.variants if v.runtime is not None]
    if not rows:
        return None
    states = serving(run)
    default = all(_default_probe(rt) for _, rt in rows)
    data = []
    for v, rt in rows:
        row = {"Variant": variant_cell(v),
               "Status": "not checked" if rt.status == NOT_CHECKED else rt.status or "–"}
        if not default:
            row["Checked by"] = _checked_by(rt)
        row.update({
            "/healthz 200 after" if default else "Healthy after":
                human_seconds(rt.seconds_to_healthy),
            "Idle memory": human_size(rt.idle_memory_bytes),
            "GET /": _get_root(rt),
            "Same GET / as the reference": _serving_cell(states.get(v.name)),
        })
        if body:
            row["GET / body (start)"] = body_excerpt(rt.root_body)
        data.append(row)
    return pd.DataFrame(data)


class _Names:
    """How the runtime statement names a variant, and why one does not serve."""

    def __init__(self, run: Run):
        self.by_name = {v.name: v for v in run.variants}

    def ref(self, name: str) -> str:
        v = self.by_name.get(name)
        return variant_ref(v) if v is not None else f"`{name}`"

    def silent(self, name: str) -> str:
        v = self.by_name.get(name)
        error = v.runtime.error if v is not None and v.runtime is not None else None
        return f"- {self.ref(name)} does not serve" + (f": {error}" if error else "")


def runtime_statement(run: Run) -> list[str]:
    """Plainly: do all variants serve the same GET /, and if not, which differ and why."""
    if not _started(run) and not _not_checked(run):
        return []
    names = _Names(run)
    comp = run.runtime_comparison
    if not _started(run):
        lines = []
    elif comp is None:
        lines = ["GET / was not compared across the variants in this run."]
    elif not comp.reference:
        silent = [str(n) for n in comp.not_serving]
        lines = [f"None of the {len(silent)} variants started serves GET /:"]
        lines += [names.silent(n) for n in silent]
    else:
        lines = _compared_lines(serving(run), comp.reference, names)
    for v in run.variants:
        if v.runtime is None:
            why = ("still running" if v.status == RUNNING else
                   "its build failed" if v.status not in MEASURED else "not checked")
            lines.append(f"- {variant_ref(v)} was not started: {why}.")
        elif v.runtime.status == NOT_CHECKED:
            why = f" ({v.runtime.skipped})" if v.runtime.skipped else ""
            lines.append(f"- {variant_ref(v)} was not started: not checked{why}.")
    return lines


def _compared_lines(states: dict[str, tuple[str, str | None]], reference: str,
                    names: _Names) -> list[str]:
    """The statement when a reference served: all the same, or which differ and why."""
    same = [n for n, (k, _) in states.items() if k in ("reference", "same")]
    different = [(n, r) for n, (k, r) in states.items() if k == "different"]
    silent = [n for n, (k, _) in states.items() if k == "not serving"]
    total = len(same) + len(different) + len(silent)
    if not different and not silent:
        return [f"All {total} variants serve the same GET / (status, content type "
                f"and body, compared with {names.ref(reference)})." if total > 1 else
                f"Only {names.ref(reference)} served: there is nothing to compare its GET / with."]
    lines = [f"{len(same)} of {total} variants serve the same GET / as the "
             f"reference {names.ref(reference)}:"]
    lines += [f"- {names.ref(n)} serves a different GET /: {r or 'no reason recorded'}"
              for n, r in different]
    return lines + [names.silent(n) for n in silent]


def runtime_conditions(run: Run) -> str:
    """How the containers ran, in one sentence."""
    started = [rt for _, rt in _started(run)]
    limits = list(dict.fromkeys(
        ", ".join(f"{k} {val}" for k, val in rt.limits.items())
        for rt in started if rt.limits))
    bases = list(dict.fromkeys(str(rt.memory_basis) for rt in started if rt.memory_basis))
    if all(_default_probe(rt) for rt in started):
        healthy = ("/healthz 200 after: seconds from starting the container to the first 200 "
                   "from /healthz")
    else:
        healthy = ("healthy after: seconds from starting the container to the engine's "
                   "\"healthy\" for an image with a HEALTHCHECK, else to the first expected "
                   "answer from the health path (GET …)")
    parts = [f"{healthy}; idle memory: read once it was healthy and idle"
             + (f" ({'; '.join(bases)})" if bases else "")]
    if limits:
        parts.append(f"containers ran with the limits {' / '.join(limits)}")
    return "; ".join(parts) + "."


def runtime_failures(run: Run) -> list[tuple[VariantResult, str, list[str]]]:
    """(variant, error, last log lines) of every started variant that did not serve."""
    out = []
    for v in run.variants:
        rt = v.runtime
        if v.status == FAILED_AT_RUNTIME or (rt is not None
                                             and rt.status not in ("ok", NOT_CHECKED)):
            error = (rt.error if rt else None) or v.error or "failed at runtime"
            out.append((v, str(error), as_lines(rt.logs_tail if rt else None)))
    return out


def fence_for(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in the lines it encloses."""
    longest = max([len(run) for line in lines for run in re.findall(r"`+", line)] + [0])
    return "`" * max(3, longest + 1)


def runtime_lines(run: Run) -> list[str]:
    table = runtime_table(run)
    if table is None:
        return []
    lines = ["## Runtime", ""] + runtime_statement(run)
    lines += ["", markdown_table(table)]
    lines += ["", runtime_conditions(run)] if _started(run) else []
    for v, error, logs in runtime_failures(run):
        lines += ["", (f"{variant_ref(v)} failed at runtime: {error}. Its image was built "
                       "and measured: its sizes stand.")]
        if logs:
            fence = fence_for(logs)
            lines += ["", "Last lines of its log:", "", fence, *logs, fence]
    return lines


# ---------------------------------------------------------------------------- bytes

def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


def bytes_table(run: Run) -> pd.DataFrame | None:
    """Where the bytes of each final image go, from the layer attribution."""
    variants = [v for v in run.variants if is_measured(v)]
    if not any(v.attribution is not None for v in variants):
        return None
    data = []
    for v in variants:
        att = v.attribution
        split = att.split if att is not None else None
        parts = ([split.dependencies_bytes, split.app_bytes, split.other_bytes] if split
                 else [None, None, None])
        by_stage = (att.by_stage if att is not None else None) or {}
        data.append({
            "Variant": variant_cell(v),
            "Base image": human_size(split.base_bytes if split else None),
            "Dependencies (node_modules)": human_size(parts[0]),
            "App": human_size(parts[1]),
            "Other": human_size(parts[2]),
            "Above the base": "–" if None in parts else human_size(sum(parts)),
            "History entries": _count(att.history_count if att else None),
            "Layers": _count(att.layer_count if att else None),
            "Empty entries": _count(att.empty_history_count if att else None),
            "By stage (above the base)": ", ".join(f"{stage} {human_size(b)}"
                                                   for stage, b in by_stage.items()) or "–",
        })
    return pd.DataFrame(data)


BYTES_NOTE = (
    "Each layer of the final image is attributed to the base image or to the instruction "
    "and stage that made it (a `COPY --from=X` layer counts for stage X); the bytes of the "
    "layers above the base are split into node_modules (dependencies), the application "
    "directory's other files (app) and everything else. History entries that made no layer "
    "(ENV, CMD, USER, …) are the empty entries: `docker history` lists more entries than "
    "the image has layers.")


def _layer_row(layer: AttributedLayer) -> dict[str, str]:
    return {
        "#": str(layer.index),
        "Source": "base image" if layer.source == "base" else "instruction",
        "Instruction": layer.instruction or "–",
        "Stage": "–" if layer.stage is None else str(layer.stage),
        "From stage": "–" if layer.from_stage is None else str(layer.from_stage),
        "Size": human_size(layer.size_bytes),
        "node_modules": human_size(layer.node_modules_bytes),
        "App": human_size(layer.app_bytes),
        "Other": human_size(layer.other_bytes),
    }


def layer_table(variant: VariantResult) -> pd.DataFrame | None:
    """Every layer of one variant's image, with the instruction and stage that made it."""
    layers = variant.attribution.layers if variant.attribution is not None else None
    if not layers:
        return None
    return pd.DataFrame([_layer_row(layer) for layer in layers])


def bytes_lines(run: Run) -> list[str]:
    return section_lines("Where the bytes go", bytes_table(run), BYTES_NOTE)
