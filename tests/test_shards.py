"""`--shard K/N`: the assignment is deterministic, covers every job exactly once, and is
balanced (by the history's medians when there are some). Pure: no engine."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.bench import shards
from harness.bench.shards import Job

names = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=8)
variants = st.lists(names, min_size=0, max_size=12, unique=True)
engines = st.lists(names, min_size=1, max_size=4, unique=True)
counts = st.integers(min_value=1, max_value=7)


@settings(max_examples=300, deadline=None)
@given(variants, engines, counts, st.data())
def test_every_job_in_exactly_one_shard_the_same_every_time(vs, es, n, data):
    weights = data.draw(st.one_of(st.none(), st.fixed_dictionaries(
        {v: st.floats(min_value=0.1, max_value=600, allow_nan=False) for v in vs})))
    jobs = shards.jobs_of(vs, es)
    parts = shards.assign(jobs, n, weights)
    assert len(parts) == n
    flat = [j for part in parts for j in part]
    assert sorted(flat) == sorted(jobs) and len(set(flat)) == len(flat)
    # Deterministic: the same arguments in another order give the same shards.
    assert shards.assign(list(reversed(jobs)), n, weights) == [
        sorted(p, key=lambda j: list(reversed(jobs)).index(j)) for p in parts]
    assert [shards.select(jobs, shards.Shard(k, n), weights) for k in range(1, n + 1)] == parts
    if not weights:  # by count: no shard has two more jobs than another
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1, max_value=1000, allow_nan=False), min_size=1,
                max_size=12), counts)
def test_balanced_by_medians_within_the_longest_job(seconds, n):
    weights = {f"v{i}": s for i, s in enumerate(seconds)}
    parts = shards.assign(shards.jobs_of(weights, ["e"]), n, weights)
    loads = [sum(weights[j.variant] for j in p) for p in parts]
    # Longest-first greedy: the busiest shard exceeds the idlest by at most one job.
    assert max(loads) - min(loads) <= max(seconds) + 1e-9


def test_history_moves_a_slow_variant_to_a_shard_of_its_own():
    jobs = shards.jobs_of(["a", "b", "c", "d"], ["default"])
    by_count = shards.assign(jobs, 2)
    assert [[j.variant for j in p] for p in by_count] == [["a", "c"], ["b", "d"]]
    weighted = shards.assign(jobs, 2, {"a": 300.0, "b": 10.0, "c": 12.0, "d": 11.0})
    assert [[j.variant for j in p] for p in weighted] == [["a"], ["b", "c", "d"]]


@pytest.mark.parametrize("spec, problem", [
    ("3/2", "K must be between 1 and 2"), ("0/2", "K must be between 1 and 2"),
    ("1/0", "at least 1"), ("a/b", "expected K/N"), ("2", "expected K/N"), ("", "expected K/N")])
def test_bad_shard_specs_are_one_line(spec, problem):
    with pytest.raises(ValueError) as exc:
        shards.parse(spec)
    assert problem in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"--shard {spec}:")


def test_spread_puts_each_variant_on_one_engine():
    jobs = shards.spread(["a", "b", "c"], ["x", "y"])
    assert [j.variant for j in jobs] == ["a", "b", "c"]
    assert {j.engine for j in jobs} == {"x", "y"}
    assert jobs == shards.spread(["a", "b", "c"], ["x", "y"])
    assert shards.parse(" 2 / 3 ") == shards.Shard(2, 3) and str(shards.Shard(2, 3)) == "2/3"
    assert Job("a", "x") < Job("b", "a")
