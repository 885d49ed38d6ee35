"""The shot group from a head of its own (``fleetvision.scoring.shot_groups``) and where scoring uses it.

Tier 1 (no Spark, no model): the composition on hand-made softmaxes (each group's mass is the group head's,
each class's share of its group the angle head's; a group the angle head leaves empty), the checks, the
tags and the frozen evaluation's fold. The model side (``fleetvision.models.group_head``, the job) is tested
in ``test_group_head.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.scoring import ScoringRules
from fleetvision.scoring.shot_groups import ANGLE_GROUP, compose_groups, fold_group_head, group_matrix
from fleetvision.scoring.tags import OPTIONAL_OUTPUTS, as_tagged, tag_rows, validate_outputs
from fleetvision.taxonomy import GROUPS, load_taxonomy

TAX = load_taxonomy()
NAMES = list(TAX.flank_names)
GROUP_OF = np.array([GROUPS.index(c.group) for c in TAX.classes])


def _in_group(group: int) -> np.ndarray:
    return np.equal(GROUP_OF, group)


def _angle(weights: dict[str, float], rest: float = 0.01) -> np.ndarray:
    row = np.full(len(NAMES), rest)
    for name, w in weights.items():
        row[NAMES.index(name)] = w
    return (row / row.sum())[None, :]


def test_the_group_matrix_follows_the_taxonomy() -> None:
    matrix = group_matrix(TAX)
    assert matrix.shape == (TAX.num_classes, 3) and (matrix.sum(axis=1) == 1).all()
    assert matrix[NAMES.index("full_rear"), GROUPS.index("exterior")] == 1
    assert matrix[NAMES.index("dashboard"), GROUPS.index("interior")] == 1
    assert matrix[NAMES.index("tail_light"), GROUPS.index("detail")] == 1


def test_groups_are_the_group_heads_and_shares_within_them_the_angle_heads() -> None:
    angle = np.vstack([
        _angle({"full_rear": 0.6, "rear_3q_right": 0.2, "tail_light": 0.1, "headlight": 0.05}),
        _angle({"dashboard": 0.5, "front_seats": 0.3, "side_left": 0.1}),
    ])
    groups = np.array([[0.3, 0.1, 0.6], [0.05, 0.9, 0.05]])
    out = compose_groups(angle, groups, TAX)
    assert out.dtype == np.float32 and out.shape == angle.shape
    np.testing.assert_allclose(out @ group_matrix(TAX), groups, atol=1e-6)  # each group's mass: the group head's
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    for g in range(3):  # within a group, the classes keep the angle head's proportions
        members = _in_group(g)
        np.testing.assert_allclose(out[:, members] / out[:, members].sum(axis=1, keepdims=True),
                                   angle[:, members] / angle[:, members].sum(axis=1, keepdims=True), rtol=1e-5)
    # the first photo was the angle head's full rear; the group head says detail: the angle head's best detail
    assert NAMES[int(out[0].argmax())] == "tail_light" and NAMES[int(angle[0].argmax())] == "full_rear"
    # a group head that agrees with the angle head changes nothing
    np.testing.assert_allclose(compose_groups(angle, angle @ group_matrix(TAX), TAX), angle, rtol=1e-5)


def test_a_group_the_angle_head_leaves_empty_is_shared_evenly() -> None:
    angle = np.zeros((1, len(NAMES)))
    angle[0, NAMES.index("full_front")] = 1.0
    out = compose_groups(angle, np.array([[0.5, 0.0, 0.5]]), TAX)
    details = _in_group(GROUPS.index("detail"))
    np.testing.assert_allclose(out[0, details], 0.5 / details.sum(), rtol=1e-6)
    assert out[0, NAMES.index("full_front")] == pytest.approx(0.5) and np.isfinite(out).all()


def test_shapes_are_checked() -> None:
    angle = _angle({"full_rear": 0.5})
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        compose_groups(angle, np.array([[0.5, 0.5]]), TAX)
    with pytest.raises(ValueError, match=r"\[N, 27\]"):
        compose_groups(angle[:, :5], np.array([[0.5, 0.25, 0.25]]), TAX)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        compose_groups(np.vstack([angle, angle]), np.array([[0.5, 0.25, 0.25]]), TAX)


def test_validation_keeps_the_group_output_and_refuses_a_bad_one() -> None:
    angle = _angle({"full_rear": 0.5}).astype(np.float32)
    groups = np.array([[0.2, 0.1, 0.7]], np.float32)
    assert ANGLE_GROUP in OPTIONAL_OUTPUTS
    checked = validate_outputs({"angle": angle, ANGLE_GROUP: groups}, 1, TAX, names=("angle",))
    assert set(checked) == {"angle", ANGLE_GROUP}
    with pytest.raises(ValueError, match=ANGLE_GROUP):
        validate_outputs({"angle": angle, ANGLE_GROUP: groups[:, :2]}, 1, TAX, names=("angle",))
    with pytest.raises(ValueError, match="sums to"):
        validate_outputs({"angle": angle, ANGLE_GROUP: groups * 0.5}, 1, TAX, names=("angle",))


@pytest.mark.parametrize("driver_side", ["right", "left"])
def test_tags_take_the_group_from_the_group_head(driver_side: str) -> None:
    """The angle head calls a lamp close-up a full rear; the group head says detail."""
    angle = _angle({"full_rear": 0.55, "tail_light": 0.3, "rear_3q_right": 0.1}).astype(np.float32)
    rules = ScoringRules.default(TAX, driver_side=driver_side)
    plain = tag_rows({"angle": angle}, TAX, rules, names=("angle",))
    assert plain["shot_group"].iloc[0] == "exterior" and plain["angle"].iloc[0] == "full_rear"
    outputs = {"angle": angle, ANGLE_GROUP: np.array([[0.2, 0.05, 0.75]], np.float32)}
    tagged = tag_rows(outputs, TAX, rules, names=("angle",))
    assert tagged["shot_group"].iloc[0] == "detail" and tagged["angle"].iloc[0] == "tail_light"
    assert ANGLE_GROUP not in as_tagged(outputs, TAX, rules)  # folded in, never a column
    # a group head that keeps the exterior keeps the angle head's view, named by market
    outputs[ANGLE_GROUP] = np.array([[0.9, 0.05, 0.05]], np.float32)
    assert tag_rows(outputs, TAX, rules, names=("angle",))["angle"].iloc[0] == "full_rear"


def test_the_fold_drops_the_output_and_needs_the_angle() -> None:
    groups = np.array([[0.2, 0.1, 0.7]])
    assert fold_group_head({"banner": np.zeros((1, 1)), ANGLE_GROUP: groups}, TAX).keys() == {"banner"}
    angle = _angle({"full_rear": 0.5})
    assert fold_group_head({"angle": angle}, TAX)["angle"] is angle
