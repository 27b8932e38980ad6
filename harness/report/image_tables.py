"""Shipping, runtime and where the bytes go: the registry's exact compressed size and
pull, what each variant serves, and each image's bytes by origin and by layer."""

from __future__ import annotations

import re

import pandas as pd

from harness.report.formatting import (
    as_dict,
    as_lines,
    attribution_of,
    compressed_estimate,
    estimate_error_pct,
    exact_compressed,
    human_seconds,
    human_size,
    is_measured,
    markdown_table,
    registry_of,
    runtime_of,
    section_lines,
    signed_percent,
    variant_cell,
    variant_ref,
)
from harness.store import FAILED_AT_RUNTIME, MEASURED

# ---------------------------------------------------------------------------- shipping

def _pull_note(reg: dict) -> str:
    if reg.get("error"):
        return f"registry: {reg['error']}"
    notes = []
    if reg.get("image_removed_before_pull") is False:
        notes.append("the image could not be removed before the pull (still in use): "
                     "the pull time is not a download time")
    present, total = reg.get("pull_layers_present"), reg.get("pull_layers")
    if present:
        rest = f", only {total - present} downloaded" if total is not None else ""
        notes.append(f"not a cold-host pull: {present} of {total if total is not None else '?'} "
                     f"layers were already on the engine{rest}")
    elif present == 0 and reg.get("pull_seconds") is not None:
        notes.append("every layer downloaded")
    if reg.get("cold_pull_error"):
        notes.append(f"cold pull: {reg['cold_pull_error']}")
    elif reg.get("cold_pull_layers_present"):  # an empty engine should have had none
        notes.append(f"cold pull found {reg['cold_pull_layers_present']} layers present")
    return "; ".join(notes)


def shipping_table(record: dict) -> pd.DataFrame | None:
    """What a registry stores and how long moving the image takes."""
    variants = [v for v in record.get("variants") or [] if is_measured(v)]
    if not any(v.get("registry") or exact_compressed(v) is not None for v in variants):
        return None
    data = []
    for v in variants:
        reg = registry_of(v)
        present, total = reg.get("pull_layers_present"), reg.get("pull_layers")
        error = estimate_error_pct(v)
        data.append({
            "Variant": variant_cell(v),
            "Compressed (registry, exact)": human_size(exact_compressed(v)),
            "Estimate (gzip -6)": human_size(compressed_estimate(v)),
            "Estimate error": "–" if error is None else signed_percent(error / 100, 1),
            "Push": human_seconds(reg.get("push_seconds")),
            "Pull": human_seconds(reg.get("pull_seconds")),
            "Layers present at pull": ("–" if present is None else
                                       f"{present} of {total if total is not None else '?'}"),
            "Cold pull": human_seconds(reg.get("cold_pull_seconds")),
            "Note": _pull_note(reg),
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


def shipping_lines(record: dict) -> list[str]:
    return section_lines("Shipping", shipping_table(record), SHIPPING_NOTE)


# ---------------------------------------------------------------------------- runtime

def serving(record: dict) -> dict[str, tuple[str, str | None]]:
    """Variant name -> ("reference" | "same" | "different" | "not serving", reason)."""
    comp = as_dict(record.get("runtime_comparison"))
    out: dict[str, tuple[str, str | None]] = {}
    ref = comp.get("reference")
    for name in comp.get("not_serving") or []:
        out[str(name)] = ("not serving", None)
    for item in comp.get("different") or []:
        if isinstance(item, dict):
            out[str(item.get("name"))] = ("different", item.get("reason"))
        else:
            out[str(item)] = ("different", None)
    for name in comp.get("same") or []:
        out[str(name)] = ("same", None)
    if ref:
        out[str(ref)] = ("reference", None)
    return out


def _serving_cell(state: tuple[str, str | None] | None) -> str:
    if state is None:
        return "–"
    kind, reason = state
    if kind == "different":
        return "differs" + (f": {reason}" if reason else "")
    return {"reference": "reference", "same": "same", "not serving": "not serving"}[kind]


def _get_root(rt: dict) -> str:
    status = rt.get("root_status")
    if status is None:
        return "–"
    kind = rt.get("root_content_type")
    return f"{status}" + (f" ({kind})" if kind else "")


BODY_EXCERPT = 80


def body_excerpt(body) -> str:
    if body is None:
        return "–"
    text = " ".join(str(body).split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT - 1] + "…"


def runtime_table(record: dict, *, body: bool = False) -> pd.DataFrame | None:
    """Each started variant: healthy after, idle memory, GET / and how it compares."""
    started = [v for v in record.get("variants") or [] if isinstance(v.get("runtime"), dict)]
    if not started:
        return None
    states = serving(record)
    data = []
    for v in started:
        rt = runtime_of(v)
        row = {
            "Variant": variant_cell(v),
            "Status": rt.get("status") or "–",
            "/healthz 200 after": human_seconds(rt.get("seconds_to_healthy")),
            "Idle memory": human_size(rt.get("idle_memory_bytes")),
            "GET /": _get_root(rt),
            "Same GET / as the reference": _serving_cell(states.get(v["name"])),
        }
        if body:
            row["GET / body (start)"] = body_excerpt(rt.get("root_body"))
        data.append(row)
    return pd.DataFrame(data)


def runtime_statement(record: dict) -> list[str]:
    """Plainly: do all variants serve the same GET /, and if not, which differ and why."""
    variants = record.get("variants") or []
    started = [v for v in variants if isinstance(v.get("runtime"), dict)]
    if not started:
        return []
    by_name = {v["name"]: v for v in variants}

    def ref(name: str) -> str:
        return variant_ref(by_name[name]) if name in by_name else f"`{name}`"

    comp = as_dict(record.get("runtime_comparison"))
    lines = []
    reference = comp.get("reference")
    if not comp:
        lines.append("GET / was not compared across the variants in this run.")
    elif not reference:
        silent = [str(n) for n in comp.get("not_serving") or []]
        lines.append(f"None of the {len(silent)} variants started serves GET /:")
        for n in silent:
            error = runtime_of(by_name.get(n, {})).get("error")
            lines.append(f"- {ref(n)} does not serve" + (f": {error}" if error else ""))
    else:
        states = serving(record)
        same = [n for n, (k, _) in states.items() if k in ("reference", "same")]
        different = [(n, r) for n, (k, r) in states.items() if k == "different"]
        silent = [n for n, (k, _) in states.items() if k == "not serving"]
        total = len(same) + len(different) + len(silent)
        if not different and not silent:
            lines.append(f"All {total} variants serve the same GET / (status, content type "
                         f"and body, compared with {ref(reference)})." if total > 1 else
                         f"Only {ref(reference)} served: there is nothing to compare its GET / with.")
        else:
            lines.append(f"{len(same)} of {total} variants serve the same GET / as the "
                         f"reference {ref(reference)}:")
            lines += [f"- {ref(n)} serves a different GET /: {r or 'no reason recorded'}"
                      for n, r in different]
            for n in silent:
                error = runtime_of(by_name.get(n, {})).get("error")
                lines.append(f"- {ref(n)} does not serve" + (f": {error}" if error else ""))
    for v in variants:
        if isinstance(v.get("runtime"), dict):
            continue
        why = "its build failed" if v.get("status") not in MEASURED else "not checked"
        lines.append(f"- {variant_ref(v)} was not started: {why}.")
    return lines


def runtime_conditions(record: dict) -> str:
    """How the containers ran, in one sentence."""
    started = [runtime_of(v) for v in record.get("variants") or [] if isinstance(v.get("runtime"), dict)]
    limits = list(dict.fromkeys(
        ", ".join(f"{k} {val}" for k, val in as_dict(rt.get("limits")).items())
        for rt in started if rt.get("limits")))
    bases = list(dict.fromkeys(str(rt["memory_basis"]) for rt in started if rt.get("memory_basis")))
    parts = ["/healthz 200 after: seconds from starting the container to the first 200 from "
             "/healthz; idle memory: read once it was healthy and idle"
             + (f" ({'; '.join(bases)})" if bases else "")]
    if limits:
        parts.append(f"containers ran with the limits {' / '.join(limits)}")
    return "; ".join(parts) + "."


def runtime_failures(record: dict) -> list[tuple[dict, str, list[str]]]:
    """(variant, error, last log lines) of every started variant that did not serve."""
    out = []
    for v in record.get("variants") or []:
        rt = runtime_of(v)
        if v.get("status") == FAILED_AT_RUNTIME or (rt and rt.get("status") not in (None, "ok")):
            error = rt.get("error") or v.get("error") or "failed at runtime"
            out.append((v, str(error), as_lines(rt.get("logs_tail"))))
    return out


def fence_for(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in the lines it encloses."""
    longest = max([len(run) for line in lines for run in re.findall(r"`+", line)] + [0])
    return "`" * max(3, longest + 1)


def runtime_lines(record: dict) -> list[str]:
    table = runtime_table(record)
    if table is None:
        return []
    lines = ["## Runtime", ""] + runtime_statement(record)
    lines += ["", markdown_table(table), "", runtime_conditions(record)]
    for v, error, logs in runtime_failures(record):
        lines += ["", (f"{variant_ref(v)} failed at runtime: {error}. Its image was built "
                       "and measured: its sizes stand.")]
        if logs:
            fence = fence_for(logs)
            lines += ["", "Last lines of its log:", "", fence, *logs, fence]
    return lines


# ---------------------------------------------------------------------------- bytes

def bytes_table(record: dict) -> pd.DataFrame | None:
    """Where the bytes of each final image go, from the layer attribution."""
    variants = [v for v in record.get("variants") or [] if is_measured(v)]
    if not any(attribution_of(v) for v in variants):
        return None
    data = []
    for v in variants:
        att = attribution_of(v)
        split = as_dict(att.get("split"))
        parts = [split.get(k) for k in ("dependencies_bytes", "app_bytes", "other_bytes")]
        by_stage = as_dict(att.get("by_stage"))
        data.append({
            "Variant": variant_cell(v),
            "Base image": human_size(split.get("base_bytes")),
            "Dependencies (node_modules)": human_size(parts[0]),
            "App": human_size(parts[1]),
            "Other": human_size(parts[2]),
            "Above the base": "–" if None in parts else human_size(sum(parts)),
            "History entries": "–" if att.get("history_count") is None else str(att["history_count"]),
            "Layers": "–" if att.get("layer_count") is None else str(att["layer_count"]),
            "Empty entries": ("–" if att.get("empty_history_count") is None
                              else str(att["empty_history_count"])),
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


def layer_table(variant: dict) -> pd.DataFrame | None:
    """Every layer of one variant's image, with the instruction and stage that made it."""
    layers = attribution_of(variant).get("layers")
    if not layers:
        return None
    data = []
    for layer in layers:
        base = layer.get("source") == "base"
        data.append({
            "#": str(layer.get("index", "–")),
            "Source": "base image" if base else "instruction",
            "Instruction": layer.get("instruction") or "–",
            "Stage": "–" if layer.get("stage") is None else str(layer["stage"]),
            "From stage": ("–" if layer.get("from_stage") is None else str(layer["from_stage"])),
            "Size": human_size(layer.get("size_bytes")),
            "node_modules": human_size(layer.get("node_modules_bytes")),
            "App": human_size(layer.get("app_bytes")),
            "Other": human_size(layer.get("other_bytes")),
        })
    return pd.DataFrame(data)


def bytes_lines(record: dict) -> list[str]:
    return section_lines("Where the bytes go", bytes_table(record), BYTES_NOTE)
