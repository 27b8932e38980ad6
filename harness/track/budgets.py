"""Size and layer budgets per variant, and the check of a run against them.

Where budgets are written (any one TOML file; a directory means its variants.toml):

    [budgets."*"]                      # every variant
    max_size = "1 GB"
    [budgets.multistage-alpine]        # one variant; overrides "*" key by key
    max_size = "200 MB"
    max_layers = 12
    max_growth = "5%"                  # or bytes: "10 MB", 0

    [[variant]]                        # or inside a manifest entry (bench/variants.py must
    name = "three-stage"               # accept the "budget" key for that)
    budget = { max_size = "150 MB" }

Units are exact and written as listed, case included: B; kB or KB = 10^3 B; MB = 10^6;
GB = 10^9; TB = 10^12; KiB = 2^10; MiB = 2^20; GiB = 2^30; TiB = 2^40. A bare number is
bytes. Anything else ("mb", "Mb" - megabits -, "M", "k") is rejected rather than guessed.
`max_size` bounds the uncompressed size, as `docker images` shows it. `max_growth` bounds
the growth over a baseline run, in bytes or percent of the baseline's size.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from harness.bench.variants import MANIFEST, name_from_file
from harness.errors import ExitCode, HarnessError
from harness.model import Run, VariantResult
from harness.report.formatting import run_of
from harness.report.units import human_size

UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
KEYS = ("max_size", "max_layers", "max_growth")
DEFAULT = "*"
_QUANTITY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


@dataclass(frozen=True)
class Limit:
    text: str  # as written, quoted back in messages
    amount: int | None = None  # bytes (sizes, growth) or a count (layers)
    percent: Decimal | None = None  # growth only


Budgets = dict[str, dict[str, Limit]]  # variant name (or "*") -> budget key -> limit


def parse_size(value, where: str) -> int:
    """Bytes from an int or a text such as "200 MB"; HarnessError names `where` and the text."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise HarnessError(f"{where}: {value!r} is not a size (bytes, or a text like \"200 MB\")")
    unit = m[2] or "B"
    if unit not in UNITS:
        raise HarnessError(f"{where}: {value!r}: unknown or ambiguous unit {unit!r} "
                           f"(use {', '.join(UNITS)})")
    amount = Decimal(m[1]) * UNITS[unit]
    if amount != amount.to_integral_value():
        raise HarnessError(f"{where}: {value!r} is not a whole number of bytes")
    return int(amount)


def parse_growth(value, where: str) -> Limit:
    m = _PERCENT.fullmatch(value) if isinstance(value, str) else None
    if m:
        return Limit(value.strip(), percent=Decimal(m[1]))
    return Limit(_written(value), amount=parse_size(value, where))


def parse_budget(table, where: str) -> dict[str, Limit]:
    if not isinstance(table, dict):
        raise HarnessError(f"{where}: must be a table such as {{ max_size = \"200 MB\" }}")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise HarnessError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    out = {}
    if "max_size" in table:
        v = table["max_size"]
        out["max_size"] = Limit(_written(v), amount=parse_size(v, f"{where} max_size"))
    if "max_layers" in table:
        v = table["max_layers"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise HarnessError(f"{where} max_layers: {v!r} is not a whole number of layers")
        out["max_layers"] = Limit(str(v), amount=v)
    if "max_growth" in table:
        out["max_growth"] = parse_growth(table["max_growth"], f"{where} max_growth")
    return out


def _written(value) -> str:
    return value.strip() if isinstance(value, str) else f"{value:,} B"


def load_budgets(path: Path) -> Budgets:
    """Budgets from a TOML file: [budgets.<name>] tables and manifest entries' `budget`."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such budgets file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path.name}: not valid TOML ({exc})") from None
    tables = data.get("budgets", {})
    if not isinstance(tables, dict):
        raise HarnessError(f"{path.name}: 'budgets' must be tables such as [budgets.\"*\"]")
    out = {name: parse_budget(t, f"{path.name}: budget {name!r}") for name, t in tables.items()}
    entries = data.get("variant", [])
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict) or "budget" not in entry:
            continue
        name = _entry_name(entry, f"{path.name} entry {i + 1}")
        if name in out:
            raise HarnessError(f"{path.name}: budget for {name!r} is given twice")
        out[name] = parse_budget(entry["budget"], f"{path.name}: budget {name!r}")
    return out


def _entry_name(entry: dict, where: str) -> str:
    if entry.get("name"):
        return str(entry["name"])
    if entry.get("dockerfile"):
        return name_from_file(Path(entry["dockerfile"]))
    raise HarnessError(f"{where}: a budget needs the entry's name or dockerfile")


def budget_for(budgets: Budgets, name: str) -> dict[str, Limit]:
    return {**budgets.get(DEFAULT, {}), **budgets.get(name, {})}


# The check ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Breach:
    variant: str
    budget: str  # max_size | max_layers | max_growth
    limit: str
    measured: str

    def line(self) -> str:
        return f"{self.variant}: {self.budget} {self.limit} exceeded: {self.measured}"


    def unchecked_line(self) -> str:
        return f"{self.variant}: {self.budget} {self.limit} not checked: {self.measured}"


BREACH, OK, UNCHECKED = "breach", "ok", "unchecked"


def check(run: Run | dict, budgets: Budgets, baseline: Run | dict | None = None) -> list[Breach]:
    """Every limit a variant of `run` exceeds; a failed build exceeds all of its limits."""
    return [b for result, b in _assess(run_of(run), budgets, _baseline(baseline))
            if result == BREACH]


def unchecked(run: Run | dict, budgets: Budgets, baseline: Run | dict | None = None) -> list[str]:
    """Limits that could not be checked (no baseline, no such variant), one line each."""
    return [b.unchecked_line() for result, b in _assess(run_of(run), budgets, _baseline(baseline))
            if result == UNCHECKED]


def _baseline(baseline: Run | dict | None) -> Run | None:
    return None if baseline is None else run_of(baseline)


def _assess(run: Run, budgets: Budgets, baseline: Run | None) -> list[tuple[str, Breach]]:
    """(BREACH | OK | UNCHECKED, what was compared) for every limit that applies."""
    before = {v.name: v for v in baseline.variants} if baseline else {}
    out = []
    for v in run.variants:
        limits = budget_for(budgets, v.name)
        for key in (k for k in KEYS if k in limits):  # a fixed order, whatever the merge
            result, measured = _MEASURES[key](v, limits[key], before.get(v.name), baseline)
            out.append((result, Breach(v.name, key, limits[key].text, measured)))
    names = {v.name for v in run.variants}
    out += [(UNCHECKED, Breach(name, "budget", "(all limits)", "the run has no such variant"))
            for name in budgets if name != DEFAULT and name not in names]
    return out


def _exact(n: int) -> str:
    return f"{human_size(n)} ({n:,} B)"


def _failed(variant: VariantResult) -> tuple[str, str] | None:
    if variant.status == "ok":
        return None
    return BREACH, f"nothing measured: the build failed ({variant.error or 'no error recorded'})"


def _size_of(variant: VariantResult | None) -> int | None:
    """The uncompressed size budgets bound (`docker images`' figure); None: no image."""
    return variant.image.size_bytes if variant is not None and variant.image else None


def _size(variant: VariantResult, limit: Limit, _before, _baseline) -> tuple[str, str]:
    size = _size_of(variant)
    if size is None:
        return _failed(variant) or (UNCHECKED, "no size recorded")
    return (BREACH if size > limit.amount else OK), _exact(size)


def _layers(variant: VariantResult, limit: Limit, _before, _baseline) -> tuple[str, str]:
    layers = variant.image.layer_count if variant.image else None
    if layers is None:
        return _failed(variant) or (UNCHECKED, "no layer count recorded")
    return (BREACH if layers > limit.amount else OK), f"{layers} layers"


def _growth(variant: VariantResult, limit: Limit, before: VariantResult | None,
            baseline: Run | None) -> tuple[str, str]:
    size = _size_of(variant)
    if size is None:
        return _failed(variant) or (UNCHECKED, "no size recorded")
    if baseline is None:
        return UNCHECKED, "no baseline run given"
    old = _size_of(before)
    if old is None:
        return UNCHECKED, f"baseline {baseline.run_id} has no size for this variant"
    growth = size - old
    allowed = limit.amount if limit.percent is None else Decimal(old) * limit.percent / 100
    pct = f" ({growth / old * 100:+.2f}%)" if old else ""
    measured = f"{growth:+,} B{pct}, {_exact(old)} in {baseline.run_id} → {_exact(size)}"
    return (BREACH if growth > allowed else OK), measured


_MEASURES = {"max_size": _size, "max_layers": _layers, "max_growth": _growth}


def check_main(run: Run | dict, source: Path | None,
               baseline: Run | dict | None = None) -> tuple[list[str], int]:
    """`--check`: (lines, exit code): 3 when a budget is exceeded, 2 when none is defined."""
    if source is None:
        return (["error: --check needs budgets (--budgets FILE or the variants manifest)"],
                ExitCode.BAD_INPUT)
    budgets = load_budgets(source)
    if not budgets:
        return [f"error: --check: no budgets are defined in {source}"], ExitCode.BAD_INPUT
    run = run_of(run).primary()  # several engines: the first one's rows
    outcomes = _assess(run, budgets, _baseline(baseline))
    breaches = [b for result, b in outcomes if result == BREACH]
    lines = [f"budget exceeded: {b.line()}" for b in breaches]
    lines += [f"note: {b.unchecked_line()}" for result, b in outcomes if result == UNCHECKED]
    checked = sum(result != UNCHECKED for result, _ in outcomes)
    if not breaches:
        lines.insert(0, f"budgets met: {checked} limit(s) checked for run {run.run_id}")
    return lines, ExitCode.BUDGET if breaches else ExitCode.OK
