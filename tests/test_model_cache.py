"""The worker's one model cache is bounded (tier 1: stand-in loaders, no TensorFlow, no MLflow)."""

from __future__ import annotations

import numpy as np
import pytest
from test_score_job_support import StandInModelSet

from fleetvision.models import serving
from fleetvision.scoring import udf


@pytest.fixture(autouse=True)
def _fresh_cache():
    serving.clear_model_cache()
    yield
    serving.clear_model_cache()


def _predict(batch: np.ndarray) -> dict[str, np.ndarray]:
    return {"banner": np.zeros((len(batch), 1), np.float32)}


def test_model_cache_keeps_at_most_max_entries_and_drops_the_least_recently_used() -> None:
    cache = serving.ModelCache(max_entries=2)
    loads: list[str] = []

    def loader(name: str):
        def load():
            loads.append(name)
            return {name: _predict}

        return load

    a = cache.get_or_load("a", loader("a"))
    cache.get_or_load("b", loader("b"))
    assert cache.get_or_load("a", loader("a")) is a  # a hit: "a" is now the most recently used
    cache.get_or_load("c", loader("c"))  # over the bound: "b" goes, not "a"
    assert len(cache) == 2 and cache.keys() == ["a", "c"]
    assert "b" not in cache
    cache.get_or_load("b", loader("b"))  # loaded again
    assert loads == ["a", "b", "c", "b"]
    assert len(cache) == 2 and cache.keys() == ["c", "b"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_model_cache_rejects_a_bad_bound(bad) -> None:
    with pytest.raises(ValueError, match="max_entries must be a positive int"):
        serving.ModelCache(max_entries=bad)


def test_worker_models_stay_bounded_across_many_model_sets() -> None:
    calls: list[str] = []

    def loader(model_set):
        calls.append(model_set.model_set_id)
        return {"banner": _predict}

    n = serving.MAX_CACHED_MODEL_SETS + 3
    for i in range(n):
        udf.worker_models(StandInModelSet(model_set_id=f"set-{i}"), loader)
    assert len(serving.MODEL_CACHE) == serving.MAX_CACHED_MODEL_SETS
    # the newest sets are still loaded; the oldest was dropped and loads again
    udf.worker_models(StandInModelSet(model_set_id=f"set-{n - 1}"), loader)
    udf.worker_models(StandInModelSet(model_set_id="set-0"), loader)
    assert calls == [f"set-{i}" for i in range(n)] + ["set-0"]
    assert len(serving.MODEL_CACHE) == serving.MAX_CACHED_MODEL_SETS
