"""The label-efficiency benchmark's declared-labels pool (its commands run in the benchmark, not in CI)."""

from __future__ import annotations

import pytest
from script_modules import script_module

TYPES = ["hatch", "sedan", "suv", "van"]


@pytest.fixture(scope="module")
def bench():
    with script_module("benchmarks/bench_label_efficiency.py") as module:
        yield module


def _pool() -> list[dict[str, str]]:
    rows = []
    for k in range(60):
        car, body = f"train-car{k:04d}", TYPES[k % len(TYPES)]
        rows += [{"image": f"{car}/v{v}.jpg", "car": car, "body_type": body} for v in range(6)]
        rows.append({"image": f"{car}/dashboard.jpg", "car": car, "body_type": ""})  # interior: no body type
    return rows


def test_declared_labels_are_per_car_capped_and_noisy_where_asked(bench) -> None:
    pool = _pool()
    truth = {r["car"]: r["body_type"] for r in pool if r["body_type"]}
    clean = bench.declared_rows(pool, 0.0, 4, 0, TYPES)
    assert len(clean) == 60 * 4 and all(r["body_type"] == truth[r["car"]] for r in clean)
    assert all(not r["image"].endswith("dashboard.jpg") for r in clean)

    def wrong_cars(noise: float) -> set[str]:
        rows = bench.declared_rows(pool, noise, 4, 0, TYPES)
        assert [r["image"] for r in rows] == [r["image"] for r in clean]  # the same photos at every level
        by_car: dict[str, set[str]] = {}
        for r in rows:
            by_car.setdefault(r["car"], set()).add(r["body_type"])
        assert all(len(labels) == 1 for labels in by_car.values())  # one declaration a listing
        assert all(labels <= set(TYPES) for labels in by_car.values())
        return {car for car, labels in by_car.items() if labels != {truth[car]}}

    some, more = wrong_cars(0.1), wrong_cars(0.5)
    assert some <= more and 0 < len(some) < len(more) < 60  # a higher level adds wrong cars
    assert bench.declared_dataset(0.1) == "standin-declared-noise010"
    # another seed draws other photos: its own datasets, none a prefix of another (training_dataset is a prefix)
    names = [bench.declared_dataset(0.1), bench.declared_dataset(0.1, 1), bench.declared_dataset(0.3, 1),
             bench.pool_dataset(100), bench.pool_dataset(100, 1), bench.pool_dataset(10, 12), bench.TEST_DATASET]
    assert len(set(names)) == len(names)
    assert not [(a, b) for a in names for b in names if a != b and b.startswith(a)]
