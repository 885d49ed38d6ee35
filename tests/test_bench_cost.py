"""The cost-against-work benchmark's fit (benchmarks/bench_cost_vs_work.py); the runs themselves are minutes each."""

from __future__ import annotations

import pytest
from script_modules import script_module


@pytest.fixture(scope="module")
def bench():
    with script_module("benchmarks/bench_cost_vs_work.py") as module:
        yield module


def test_the_fit_recovers_a_fixed_cost_and_a_cost_per_photo(bench):
    photos = [1000, 10_000, 50_000]
    fit = bench.fit_fixed_and_per_unit(photos, [40 + 0.05 * p for p in photos])
    assert fit == {"fixed_seconds": 40.0, "seconds_per_unit": 0.05, "r2": 1.0}
    noisy = bench.fit_fixed_and_per_unit([100, 500, 1000], [32.0, 49.0, 71.0])
    assert 25 < noisy["fixed_seconds"] < 35 and 0.03 < noisy["seconds_per_unit"] < 0.05 and noisy["r2"] > 0.98


@pytest.mark.parametrize(
    ("units", "seconds", "message"),
    [([1], [2.0], "at least two"), ([1, 2], [1.0], "unit counts"), ([5, 5], [1.0, 2.0], "same amount")],
)
def test_the_fit_refuses_what_has_no_line(bench, units, seconds, message):
    with pytest.raises(ValueError, match=message):
        bench.fit_fixed_and_per_unit(units, seconds)
