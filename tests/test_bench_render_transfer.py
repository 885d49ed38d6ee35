"""The render-transfer benchmark's parts (benchmarks/bench_render_transfer.py): the runs themselves need the
real dev photos, someone's labels of them and minutes of rendering, so they stay outside CI."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from script_modules import script_module


@pytest.fixture(scope="module")
def bench():
    with script_module("benchmarks/bench_render_transfer.py") as module:
        yield module


def test_backbones_are_named_with_an_optional_input_size(bench):
    assert bench.parse_backbones("efficientnet_lite0@224, efficientnet_lite2,efficientnet_lite1@240,", 192) == [
        ("efficientnet_lite0", 224), ("efficientnet_lite2", 192), ("efficientnet_lite1", 240)]
    with pytest.raises(ValueError):
        bench.parse_backbones("efficientnet_lite0@big", 224)


def test_rendered_photos_are_cached_once_and_read_back_byte_for_byte(bench, tmp_path, monkeypatch):
    first = bench.cached_photos("painter", 1, 5, tmp_path)
    assert len(first["photos"]) == 5 and first["view"].tolist() == [0, 1, 2, 3, 4]
    for data in first["photos"]:
        assert Image.open(io.BytesIO(data)).format == "JPEG"

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered again although the set is cached")

    monkeypatch.setattr(bench, "render_set", no_rendering)
    again = bench.cached_photos("painter", 1, 5, tmp_path)
    assert again["photos"] == first["photos"] and again["body"].tolist() == first["body"].tolist()
    with pytest.raises(AssertionError, match="rendered again"):
        bench.cached_photos("painter", 1, 6, tmp_path)  # another seed is another set


def _features(rng: np.random.Generator, labels: np.ndarray, signal: float) -> np.ndarray:
    x = rng.normal(size=(len(labels), 16))
    x[np.arange(len(labels)), labels] += signal
    return x.astype(np.float32)


def test_the_probe_reports_every_l2_and_scores_the_real_photos(bench):
    rng = np.random.default_rng(0)
    names = ["sedan", "hatch", "suv", "wagon", "ute", "van", "coupe"]

    def photos(n: int, signal: float, unlabelled: int = 0) -> dict[str, np.ndarray]:
        view, body = rng.integers(0, 5, n), rng.integers(0, 7, n)
        f = _features(rng, view, signal) + _features(rng, body + 5, signal)
        data = {"f": f, "mirrored": f.copy(), "view": view, "body": body, "render_s": np.array(2.0 * n)}
        data["view"][:unlabelled] = -1
        return data

    sets = {"pbr": photos(300, 6.0), "painter": photos(300, 6.0)}
    real = photos(80, 6.0, unlabelled=10)
    out = bench.probe(sets, real, names, [1e-3, 1e-1])
    pbr = out["pbr"]
    assert pbr["photos"] == 300 and pbr["render_seconds_per_photo"] == 2.0
    assert pbr["real_view"]["n"] == 70 and pbr["real_body"]["n"] == 80  # the unclear views are left out
    assert set(pbr["by_l2"]) == {"0.001", "0.1"}
    for at in pbr["by_l2"].values():
        assert at["real_view_accuracy"] > 0.9 and at["real_body_balanced_accuracy"] > 0.9
        assert at["painter_renders_view_accuracy"] > 0.9
    # features that say nothing give a chance-level answer, not a good one
    noise = {"pbr": photos(300, 0.0), "painter": photos(300, 0.0)}
    chance = bench.probe(noise, photos(200, 0.0), names, [1e-3])["pbr"]["by_l2"]["0.001"]
    assert chance["real_view_accuracy"] < 0.45
