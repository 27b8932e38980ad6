"""Numbers as a person reads them: sizes, durations and percentages. Pure functions, shared
by the report and harness.track (which may import this module and nothing else of the report
but formatting)."""

from __future__ import annotations

import pandas as pd


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


def share_percent(x: float | None) -> str:
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


def percent_change(before: float, after: float) -> float | None:
    """How far `after` moved from `before`, in percent of `before` (None from zero)."""
    return (after - before) / before * 100 if before else None


def signed_bytes(delta: int) -> str:
    return ("+" if delta >= 0 else "-") + human_size(abs(delta))
