"""Tier 1: 10-way / group / body accuracy at the grain real labels come in (fleetvision.models.coarse_metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.models.coarse_metrics import (
    bucket_of,
    bucket_probabilities,
    coarse_scores,
    group_probabilities,
    ten_way_buckets,
)
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()


def one_hot(*flank_names: str) -> np.ndarray:
    probs = np.zeros((len(flank_names), TAX.num_classes))
    for i, name in enumerate(flank_names):
        probs[i, TAX.flank_names.index(name)] = 1.0
    return probs


def test_ten_way_buckets_are_the_exterior_views_then_interior_and_detail() -> None:
    buckets = ten_way_buckets(TAX)
    assert len(buckets) == 10 and buckets[-2:] == ("interior", "detail")
    assert {"full_front", "side_driver", "side_passenger", "full_rear"} <= set(buckets)
    assert bucket_of("dashboard", TAX) == "interior" and bucket_of("wheel", TAX) == "detail"
    assert bucket_of("rear_3q_driver", TAX) == "rear_3q_driver"


def test_flank_classes_land_in_the_markets_side() -> None:
    buckets = ten_way_buckets(TAX)
    right = bucket_probabilities(one_hot("side_right", "dashboard"), TAX, "right")
    left = bucket_probabilities(one_hot("side_right", "dashboard"), TAX, "left")
    assert buckets[int(right[0].argmax())] == "side_driver"  # the driver sits on the right flank
    assert buckets[int(left[0].argmax())] == "side_passenger"
    assert buckets[int(right[1].argmax())] == buckets[int(left[1].argmax())] == "interior"
    np.testing.assert_allclose(right.sum(axis=1), 1.0)


def test_a_bucket_wins_by_its_summed_probability_not_its_top_class() -> None:
    probs = np.zeros((1, TAX.num_classes))
    probs[0, TAX.flank_names.index("side_right")] = 0.3
    interior = [c.index for c in TAX.classes if c.group == "interior"]
    probs[0, interior] = 0.7 / len(interior)
    assert ten_way_buckets(TAX)[int(bucket_probabilities(probs, TAX, "right")[0].argmax())] == "interior"
    np.testing.assert_allclose(group_probabilities(probs, TAX)[0], [0.3, 0.7, 0.0])


def test_coarse_scores_count_views_groups_sides_and_bodies() -> None:
    probs = one_hot("side_right", "side_right", "front_3q_left", "dashboard", "wheel")
    truth = ["side_driver", "side_passenger", "full_front", "interior", "interior"]
    body = np.eye(len(TAX.body_types))[[0, 1, 2, 0, 0]]
    scores = coarse_scores(
        probs, truth, TAX, "right", body_probs=body, truth_body=[TAX.body_types[0], TAX.body_types[0], None, None, None]
    )
    assert scores["n"] == 5
    assert scores["ten_way_accuracy"] == pytest.approx(2 / 5)  # side_driver and the dashboard
    assert scores["group_accuracy"] == pytest.approx(4 / 5)  # the wheel is a detail, not an interior
    assert scores["mirror_side_accuracy"] == pytest.approx(1 / 2)  # both side views right, one side right
    assert scores["n_body"] == 2 and scores["body_accuracy"] == pytest.approx(1 / 2)
    assert "body_accuracy" not in coarse_scores(probs, truth, TAX, "right")


def test_coarse_scores_refuse_mismatched_or_unknown_inputs() -> None:
    probs = one_hot("side_right")
    with pytest.raises(ValueError, match="1 predictions but 2 truth buckets"):
        coarse_scores(probs, ["interior", "detail"], TAX, "right")
    with pytest.raises(ValueError, match=r"unknown bucket\(s\) \['boot'\]"):
        coarse_scores(probs, ["boot"], TAX, "right")
    with pytest.raises(ValueError, match=r"must be \[N, 27\]"):
        coarse_scores(probs[:, :5], ["interior"], TAX, "right")
    with pytest.raises(ValueError, match=r"unknown body type\(s\) \['tank'\]"):
        coarse_scores(probs, ["interior"], TAX, "right", body_probs=np.ones((1, 7)), truth_body=["tank"])
