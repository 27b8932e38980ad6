"""How the report names variants and what it reads from a variant's result (numbers are
written by harness.report.units): shared by the Markdown, HTML and chart renderers, and by
harness.track, which compares what is read here. Everything reads the typed model
(harness.model); `run_of` turns a results.json dict into it at the entry points."""

from __future__ import annotations

import pandas as pd

from harness import migrations
from harness.model import Build, Contents, FromLine, Run, VariantResult

STANDIN_MARK = "*"


def run_of(record: Run | dict) -> Run:
    """The typed run of a record of any schema version this harness reads (a Run as is)."""
    return record if isinstance(record, Run) else Run.from_json(migrations.migrate(record))


def final_base(variant: VariantResult) -> FromLine | None:
    """The FROM of the stage the image ends with (its runtime base)."""
    froms = variant.froms
    final = [f for f in froms if f.final]
    return final[-1] if final else (froms[-1] if froms else None)


def short_ref(ref: str) -> str:
    """How the article names bases: drop the registry host of non-Docker-Hub images."""
    parts = ref.split("/")
    if len(parts) > 2 and ("." in parts[0] or ":" in parts[0]):
        return "/".join(parts[1:])
    return ref


def is_measured(variant: VariantResult) -> bool:
    """The image was built and measured (it may still have failed at runtime)."""
    return variant.measured


def uses_standin(variant: VariantResult) -> bool:
    return any(f.standin for f in variant.froms)


def label_of(variant: VariantResult) -> str:
    return variant.label or variant.name


def variant_cell(variant: VariantResult) -> str:
    """The variant's label, marked when any of its bases was a stand-in."""
    return label_of(variant) + (STANDIN_MARK if uses_standin(variant) else "")


def variant_ref(variant: VariantResult) -> str:
    """How lines under a table name a variant: `name`, marked when on a stand-in."""
    return f"`{variant.name}`" + (STANDIN_MARK if uses_standin(variant) else "")


def as_lines(value) -> list[str]:
    if not value:
        return []
    return [str(x) for x in value] if isinstance(value, (list, tuple)) else str(value).splitlines()


def contents_of(variant: VariantResult) -> Contents | None:
    """The layer analysis, None when it did not run or failed."""
    contents = variant.contents
    return None if contents is None or contents.error else contents


def exact_compressed(variant: VariantResult) -> int | None:
    """The compressed size a registry stores, when it was measured."""
    recorded = recorded_compressed(variant)
    if recorded is not None:
        return recorded
    return variant.registry.compressed_bytes if variant.registry else None


def compressed_estimate(variant: VariantResult) -> int | None:
    value = variant.registry.estimate_bytes if variant.registry else None
    if value is not None:
        return value
    contents = contents_of(variant)
    return contents.compressed_estimate_bytes if contents else None


def recorded_compressed(variant: VariantResult) -> int | None:
    """The compressed size recorded with the image, else None (what `harness compare` and the
    history compare; `exact_compressed` also reads the push)."""
    return variant.image.compressed_size_bytes if variant.image else None


def estimate_error_pct(variant: VariantResult) -> float | None:
    """(estimate − exact) / exact, in percent: as recorded, else computed from both sizes."""
    stored = variant.registry.estimate_error_pct if variant.registry else None
    if stored is not None:
        return float(stored)
    exact, estimate = exact_compressed(variant), compressed_estimate(variant)
    if exact and estimate is not None:
        return 100.0 * (estimate - exact) / exact
    return None


def build_samples(run: Run, variant: VariantResult) -> dict[str, list[float]]:
    """Raw samples per scenario of the variant's measured build."""
    return variant.build_samples(run.settings.scenario)


def scenario_samples(run: Run, build: Build | None) -> dict[str, list[float]]:
    """Raw samples per scenario of one build (`Build.samples_by_scenario`)."""
    if build is None:
        return {run.settings.scenario or "cold": []}
    return build.samples_by_scenario(run.settings.scenario)


def causes(before, after) -> tuple[str, ...]:
    """What changed between two runs of a variant: bases, Dockerfile, context; else why we
    cannot say. `before` and `after` are anything with `bases`, `dockerfile_sha256` and
    `context_sha256` (a harness.model.HistoryEntry)."""
    found = _base_changes(before.bases, after.bases)
    unrecorded = []
    for key, what in (("dockerfile_sha256", "Dockerfile"), ("context_sha256", "app (build context)")):
        old, new = getattr(before, key), getattr(after, key)
        if old is None or new is None:
            unrecorded.append(what)
        elif old != new:
            found.append(f"{what} changed")
    if found:
        return tuple(found)
    if unrecorded:
        return (f"cause unknown (bases unchanged; {' and '.join(unrecorded)} hash not recorded)",)
    return ("cause unknown (bases, Dockerfile and context unchanged)",)


def _base_changes(before: list[dict], after: list[dict]) -> list[str]:
    old = {b["requested"]: b for b in before}
    new = {b["requested"]: b for b in after}
    out = [f"FROM {ref} removed" for ref in old if ref not in new]
    for ref, b in new.items():
        a = old.get(ref)
        if a is None:
            out.append(f"FROM {ref} added")
            continue
        digests_differ = a.get("digest") and b.get("digest") and a["digest"] != b["digest"]
        if a.get("image_id") != b.get("image_id") or digests_differ:
            standin = ("" if bool(a.get("standin")) == bool(b.get("standin"))
                       else ", now a stand-in" if b.get("standin") else ", no longer a stand-in")
            out.append(f"base image {ref} changed ({_short_id(a)} → {_short_id(b)}{standin})")
    return out


def _short_id(base: dict) -> str:
    ident = base.get("image_id") or base.get("digest") or "?"
    return ident.split(":", 1)[-1][:12]


def package_managers(contents: Contents | None) -> str | None:
    found = contents.package_managers if contents else None
    if found is None:
        return None
    return ", ".join(name for name, present in found.items() if present) or "none"


def section_lines(title: str, table: pd.DataFrame | None, note: str) -> list[str]:
    """A Markdown section: heading, table, note; nothing when there is no table."""
    if table is None:
        return []
    return [f"## {title}", "", markdown_table(table), "", note]


def markdown_table(df: pd.DataFrame) -> str:
    """A DataFrame of text as a markdown table; a `|` or a line break in a cell stays in it."""
    def cell(x):
        return " ".join(x.replace("|", "\\|").split()) if isinstance(x, str) else x
    return df.apply(lambda col: col.map(cell)).to_markdown(index=False)
