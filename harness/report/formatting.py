"""How the report writes numbers and names variants, and what it reads from a variant's
record: text in, text out, shared by the Markdown, HTML and chart renderers."""

from __future__ import annotations

import pandas as pd

from harness.store import MEASURED

STANDIN_MARK = "*"


def human_size(n: float | None) -> str:
    """SI units with three significant digits, like `docker images` (1 kB = 1000 B)."""
    if n is None or pd.isna(n):
        return "–"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if abs(n) >= 1 else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.3g} TB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None or pd.isna(s):
        return "–"
    if s < 10:
        return f"{s:.2f} s"
    if s < 100:
        return f"{s:.1f} s"
    return f"{s:.0f} s"


def short_seconds(s: float | None) -> str:
    """Like human_seconds, with milliseconds below one second (packing a small context)."""
    if s is None or pd.isna(s):
        return "–"
    return f"{s * 1000:.0f} ms" if s < 1 else human_seconds(s)


def percent(x: float | None) -> str:
    """A share as "12.3 %" (two decimals close to 100 %, so 99.98 % is not shown as 100 %)."""
    if x is None or pd.isna(x):
        return "–"
    return f"{x * 100:.2f} %" if 0.995 <= abs(x) < 1 else f"{x * 100:.1f} %"


def signed_percent(x: float | None, digits: int = 0) -> str:
    """A change as "−73 %" or "+4 %" (a true minus sign)."""
    if x is None or pd.isna(x):
        return "–"
    text = f"{abs(x) * 100:.{digits}f} %"
    if text.strip("0. %") == "":
        return "±" + text
    return ("−" if x < 0 else "+") + text


def final_base(variant: dict) -> dict | None:
    """The FROM of the stage the image ends with (its runtime base)."""
    froms = variant.get("froms") or []
    final = [f for f in froms if f.get("final")]
    return final[-1] if final else (froms[-1] if froms else None)


def short_ref(ref: str) -> str:
    """How the article names bases: drop the registry host of non-Docker-Hub images."""
    parts = ref.split("/")
    if len(parts) > 2 and ("." in parts[0] or ":" in parts[0]):
        return "/".join(parts[1:])
    return ref


def is_measured(variant: dict) -> bool:
    """The image was built and measured (it may still have failed at runtime)."""
    return variant.get("status") in MEASURED and bool(variant.get("image"))


def uses_standin(variant: dict) -> bool:
    return any(f.get("standin") for f in variant.get("froms") or [])


def variant_cell(variant: dict) -> str:
    """The variant's label, marked when any of its bases was a stand-in."""
    return (variant.get("label") or variant["name"]) + (STANDIN_MARK if uses_standin(variant) else "")


def variant_ref(variant: dict) -> str:
    """How lines under a table name a variant: `name`, marked when on a stand-in."""
    return f"`{variant['name']}`" + (STANDIN_MARK if uses_standin(variant) else "")


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_lines(value) -> list[str]:
    if not value:
        return []
    return [str(x) for x in value] if isinstance(value, (list, tuple)) else str(value).splitlines()


def contents_of(variant: dict) -> dict:
    contents = as_dict(variant.get("contents"))
    return {} if contents.get("error") else contents


def registry_of(variant: dict) -> dict:
    return as_dict(variant.get("registry"))


def runtime_of(variant: dict) -> dict:
    return as_dict(variant.get("runtime"))


def attribution_of(variant: dict) -> dict:
    return as_dict(variant.get("attribution"))


def exact_compressed(variant: dict) -> int | None:
    """The compressed size a registry stores, when it was measured."""
    image = as_dict(variant.get("image"))
    for value in (image.get("compressed_size_bytes"), registry_of(variant).get("compressed_bytes"),
                  as_dict(variant.get("compressed")).get("registry_bytes")):
        if value is not None:
            return value
    return None


def compressed_estimate(variant: dict) -> int | None:
    value = registry_of(variant).get("estimate_bytes")
    return value if value is not None else contents_of(variant).get("compressed_estimate_bytes")


def estimate_error_pct(variant: dict) -> float | None:
    """(estimate − exact) / exact, in percent: as recorded, else computed from both sizes."""
    stored = registry_of(variant).get("estimate_error_pct")
    if stored is not None:
        return float(stored)
    exact, estimate = exact_compressed(variant), compressed_estimate(variant)
    if exact and estimate is not None:
        return 100.0 * (estimate - exact) / exact
    return None


def package_managers(contents: dict) -> str | None:
    found = contents.get("package_managers")
    if not isinstance(found, dict):
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
