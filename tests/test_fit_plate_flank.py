"""The plate-flank fit (benchmarks/fit_plate_flank.py) end to end on a tiny set: painted and path-traced
3/4 renders, the starter models, the fit, the synthetic eval effect, and the cache read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from script_modules import script_module


@pytest.fixture(scope="module")
def fit():
    with script_module("benchmarks/fit_plate_flank.py") as module:
        yield module


def test_a_tiny_fit_writes_its_settings_and_effects(fit, tmp_path, monkeypatch, capsys):
    out, cache = tmp_path / "fit.json", tmp_path / "cache"
    args = ["--painter", "16", "--pbr", "2", "--eval-per-class", "1", "--workers", "1", "--cache", str(cache),
            "--out", str(out)]
    assert fit.main(args) == 0
    result = json.loads(out.read_text())
    assert result["config"] == {"scoring.plate_flank_strength": result["fit"]["strength"],
                                "scoring.plate_flank_outlier_rate": result["fit"]["outlier_rate"]}
    assert 1.0 <= result["fit"]["strength"] <= 400.0 and 0.0 <= result["fit"]["outlier_rate"] <= 0.2
    assert set(result["by_renderer"]) == {"painter", "pbr"}
    painter = result["by_renderer"]["painter"]
    assert painter["photos"] == 16 and 0.0 <= painter["flank_head"] <= 1.0 and 0.0 <= painter["flank_with_cue"] <= 1.0
    assert set(painter["own_fit"]) == {"strength", "outlier_rate", "mean_log_loss"}
    assert result["eval_set"]["photos"] == 27  # one per class, as generate --eval-set draws them
    for name in ("head", "with_cue"):
        assert 0.0 <= result["eval_set"][name]["mirror_pair_accuracy"] <= 1.0
    assert "fitted on renders" in capsys.readouterr().out

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered again although the set is cached")

    monkeypatch.setattr(fit, "render_one", no_rendering)
    again = fit.rendered_set("painter", 16, 24, cache, 1)
    assert len(again["photos"]) == 16 and set(again["flank_class"]) == {
        "front_3q_left", "front_3q_right", "rear_3q_left", "rear_3q_right"}


def test_signed_offsets_say_left_where_the_geometry_does(fit):
    boxes = np.array([[0.1, 0.5, 0.2, 0.6], [0.1, 0.5, 0.2, 0.6], [0.8, 0.5, 0.9, 0.6]])
    z, three = fit.signed_offsets(boxes, ["front_3q_left", "rear_3q_left", "side_left"])
    assert z[0] > 0 > z[1] and z[2] == 0 and three.tolist() == [True, True, False]
