from decimal import Decimal
from pathlib import Path

import pytest
from records import make_record, make_variant

from harness import migrations
from harness.bench.variants import load_variants
from harness.errors import HarnessError
from harness.model import Run
from harness.track import budgets
from harness.track.budgets import (
    Breach,
    Limit,
    check,
    check_main,
    load_budgets,
    parse_size,
    unchecked,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, expected", [
    ("200 MB", 200_000_000), ("200MB", 200_000_000), ("200 MiB", 209_715_200),
    ("1 GiB", 1_073_741_824), ("1 GB", 1_000_000_000), ("1.5 GB", 1_500_000_000),
    ("512 kB", 512_000), ("512 KB", 512_000), ("512 KiB", 524_288), ("100 B", 100),
    ("123", 123), (123, 123), (0, 0), ("0.5 KiB", 512),
])
def test_sizes_are_exact(text, expected):
    assert parse_size(text, "budget x max_size") == expected


@pytest.mark.parametrize("text, why", [
    ("200 mb", "unknown or ambiguous unit 'mb'"), ("200 Mb", "unknown or ambiguous unit 'Mb'"),
    ("2 M", "unknown or ambiguous unit 'M'"), ("1 kib", "unknown or ambiguous unit 'kib'"),
    ("1.5 B", "not a whole number of bytes"), ("0.1 KiB", "not a whole number of bytes"),
    (-1, "is not a size"), (True, "is not a size"), (2.5e8, "is not a size"),
    ("lots", "is not a size"), ("-5 MB", "is not a size"), ("", "is not a size"),
])
def test_bad_sizes_are_one_line_errors_naming_budget_and_text(text, why):
    with pytest.raises(HarnessError) as exc:
        parse_size(text, "budgets.toml: budget 'alpine' max_size")
    message = str(exc.value)
    assert "\n" not in message and why in message
    assert message.startswith(f"budgets.toml: budget 'alpine' max_size: {text!r}")


def test_growth_is_percent_or_bytes():
    assert budgets.parse_growth("5%", "g") == Limit("5%", percent=Decimal("5"))
    assert budgets.parse_growth("2.5 %", "g").percent == Decimal("2.5")
    assert budgets.parse_growth("10 MB", "g") == Limit("10 MB", amount=10_000_000)
    assert budgets.parse_growth(0, "g") == Limit("0 B", amount=0)


def test_budget_file_with_default_and_override(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text('[budgets."*"]\nmax_size = "1 GB"\nmax_layers = 20\n'
                    '[budgets.alpine]\nmax_size = "200 MiB"\nmax_growth = "5%"\n')
    loaded = load_budgets(path)
    assert budgets.budget_for(loaded, "alpine") == {
        "max_size": Limit("200 MiB", amount=209_715_200), "max_layers": Limit("20", amount=20),
        "max_growth": Limit("5%", percent=Decimal(5))}
    assert budgets.budget_for(loaded, "other")["max_size"].amount == 1_000_000_000


def test_manifest_budgets_by_entry_name_or_file(tmp_path):
    (tmp_path / "variants.toml").write_text(
        '[[variant]]\nname = "alpine"\ndockerfile = "a.Dockerfile"\n'
        'budget = { max_size = "200 MB", max_layers = 12 }\n'
        '[[variant]]\ndockerfile = "three-stage.Dockerfile"\nbudget = { max_size = 5 }\n'
        '[[variant]]\ndockerfile = "plain.Dockerfile"\n')
    loaded = load_budgets(tmp_path)  # a directory means its variants.toml
    assert loaded == {"alpine": {"max_size": Limit("200 MB", amount=200_000_000),
                                 "max_layers": Limit("12", amount=12)},
                      "three-stage": {"max_size": Limit("5 B", amount=5)}}


def test_top_level_budgets_in_the_manifest_need_no_change_to_variants(tmp_path):
    (tmp_path / "a.Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "variants.toml").write_text(
        'context = "."\n[[variant]]\nname = "a"\ndockerfile = "a.Dockerfile"\n'
        '[budgets.a]\nmax_size = "1 MB"\n')
    assert [v.name for v in load_variants(tmp_path)] == ["a"]
    assert load_budgets(tmp_path)["a"]["max_size"].amount == 1_000_000


def test_the_projects_manifest_loads():
    assert isinstance(load_budgets(ROOT / "variants"), dict)


@pytest.mark.parametrize("toml, why", [
    ('[budgets.a]\nmax_sise = "1 MB"\n', "budget 'a': unknown key(s) max_sise"),
    ('[budgets.a]\nmax_size = "1 Mb"\n', "budget 'a' max_size: '1 Mb': unknown or ambiguous"),
    ('[budgets.a]\nmax_layers = "12"\n', "budget 'a' max_layers: '12' is not a whole number"),
    ('[budgets.a]\nmax_growth = "5 pct"\n', "budget 'a' max_growth: '5 pct'"),
    ('budgets = 3\n', "'budgets' must be tables"),
    ('[budgets]\na = 3\n', "budget 'a': must be a table"),
    ('[budgets.a\n', "not valid TOML"),
    ('[budgets.a]\nmax_size = 1\n[[variant]]\nname = "a"\nbudget = {max_size = 2}\n',
     "budget for 'a' is given twice"),
])
def test_bad_budget_files_are_one_line_errors(tmp_path, toml, why):
    path = tmp_path / "b.toml"
    path.write_text(toml)
    with pytest.raises(HarnessError) as exc:
        load_budgets(path)
    assert why in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(HarnessError, match="no such budgets file"):
        load_budgets(tmp_path / "missing.toml")


def typed(record: dict) -> Run:
    """The typed run of a tests/records.py dict, as the code under test takes it."""
    return Run.from_json(migrations.migrate(record))


def _run(run_id="20240102T000000Z", **sizes):
    return typed(make_record(run_id, [make_variant(n, size=s, layers=10)
                                      for n, s in sizes.items()]))


def test_check_names_variant_budget_limit_and_measure():
    rules = {"*": {"max_layers": Limit("12", amount=12)},
             "big": {"max_size": Limit("200 MB", amount=200_000_000),
                     "max_layers": Limit("9", amount=9)}}
    assert check(_run(big=200_000_000, small=1), rules) == [
        Breach("big", "max_layers", "9", "10 layers")]  # equal to the limit is within it
    assert [b.line() for b in check(_run(big=200_000_001), rules)] == [
        "big: max_size 200 MB exceeded: 200 MB (200,000,001 B)",
        "big: max_layers 9 exceeded: 10 layers"]


def test_growth_against_a_baseline():
    rules = {"a": {"max_growth": Limit("5%", percent=Decimal(5))},
             "b": {"max_growth": Limit("1 MB", amount=1_000_000)}}
    baseline = _run("20240101T000000Z", a=100_000_000, b=100_000_000)
    current = _run(a=105_000_000, b=101_000_001)
    (breach,) = check(current, rules, baseline)
    assert breach.line() == ("b: max_growth 1 MB exceeded: +1,000,001 B (+1.00%), "
                             "100 MB (100,000,000 B) in 20240101T000000Z → 101 MB (101,000,001 B)")
    assert check(_run(a=105_000_001), rules, baseline)[0].variant == "a"
    assert check(current, rules) == []
    assert unchecked(current, rules) == ["a: max_growth 5% not checked: no baseline run given",
                                         "b: max_growth 1 MB not checked: no baseline run given"]


def test_a_failed_build_breaches_its_budgets_and_typos_are_noted():
    record = typed(make_record("20240101T000000Z", [make_variant("v", status="failed")]))
    rules = {"v": {"max_size": Limit("1 GB", amount=10**9)}, "vv": {}}
    (breach,) = check(record, rules)
    assert breach.measured.startswith("nothing measured: the build failed (build failed: npm ci")
    assert unchecked(record, rules) == [
        "vv: budget (all limits) not checked: the run has no such variant"]


def test_check_main_exit_codes(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text('[budgets."*"]\nmax_size = "200 MB"\n')
    assert check_main(_run(a=1), path) == (["budgets met: 1 limit(s) checked for run "
                                            "20240102T000000Z"], 0)
    lines, code = check_main(_run(a=300_000_000), path)
    assert code == 3 and lines == ["budget exceeded: a: max_size 200 MB exceeded: "
                                   "300 MB (300,000,000 B)"]
    path.write_text("")
    assert check_main(_run(a=1), path)[1] == 2
    assert check_main(_run(a=1), None)[1] == 2
