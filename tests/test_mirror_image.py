"""What the heads say about the photo's mirror image (``fleetvision.scoring.mirror_image``) and where scoring uses it.

Tier 1 (no Spark): the flank split on hand-made softmaxes (pairs keep their mass, unsided classes and a head
that already answers the mirror image mirrored are left alone, a lean to one flank cancels, the mirror
image's answer is the photo's mirrored), the plate presence's mean, the outputs' checks, the tags with each
setting on and off under both driver sides, and the prediction cache key. The model side (the scoring
model's ``angle_mirror`` and ``plate_presence_mirror``) is tested in ``test_pretrained_backbone.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.config import ScoringConfig
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.mirror_image import (
    ANGLE_MIRROR,
    PLATE_PRESENCE_MIRROR,
    fold_mirror_image,
    mirror_flank,
    mirror_presence,
)
from fleetvision.scoring.tags import as_tagged, prediction_cache_key, tag_rows, validate_outputs, with_mirror_image
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()
NAMES = list(TAX.flank_names)
PERM = np.asarray(TAX.flip_permutation)
SIDED = np.arange(len(PERM)) != PERM


def _angle(weights: dict[str, float]) -> np.ndarray:
    """One softmax row: the named flank classes' weights, the rest spread thinly, normalised."""
    row = np.full(len(NAMES), 0.01)
    for name, w in weights.items():
        row[NAMES.index(name)] = w
    return (row / row.sum())[None, :]


def _p(row: np.ndarray, name: str) -> float:
    return float(row[0, NAMES.index(name)])


def test_pairs_keep_their_mass_and_unsided_classes_stay_the_heads() -> None:
    photo = _angle({"front_3q_right": 0.5, "front_3q_left": 0.1, "full_front": 0.2, "dashboard": 0.05})
    mirror = _angle({"front_3q_right": 0.2, "front_3q_left": 0.3, "full_front": 0.4, "wheel": 0.1})
    out = mirror_flank(photo, mirror, TAX)
    assert out.dtype == np.float32 and out.shape == photo.shape
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[:, ~SIDED], photo[:, ~SIDED], rtol=1e-6)  # the mirror's full_front is not read
    np.testing.assert_allclose(out + out[:, PERM], photo + photo[:, PERM], rtol=1e-6)  # each pair's mass
    # the split: the photo's right flank with the mirror image's left, against the photo's left with its right
    right = _p(photo, "front_3q_right") + _p(mirror, "front_3q_left")
    left = _p(photo, "front_3q_left") + _p(mirror, "front_3q_right")
    pair = _p(photo, "front_3q_right") + _p(photo, "front_3q_left")
    assert _p(out, "front_3q_right") == pytest.approx(pair * right / (right + left), rel=1e-5)


def test_a_head_that_answers_the_mirror_image_mirrored_is_left_alone() -> None:
    photo = _angle({"rear_3q_left": 0.6, "rear_3q_right": 0.1, "side_left": 0.1})
    np.testing.assert_allclose(mirror_flank(photo, photo[:, PERM], TAX), photo, rtol=1e-6)


def test_a_lean_to_one_flank_cancels() -> None:
    """A head that says "right" more than it should, on the photo and on its mirror image alike, gives an
    even split where it cannot tell, and the flank that the two answers agree on where it can."""
    leaning = _angle({"front_3q_right": 0.6, "front_3q_left": 0.2})
    out = mirror_flank(leaning, leaning, TAX)
    assert _p(out, "front_3q_right") == pytest.approx(_p(out, "front_3q_left"), rel=1e-6)
    # the left flank, seen as such by both passes but with the same lean: now called left
    photo = _angle({"front_3q_right": 0.45, "front_3q_left": 0.35})
    mirror = _angle({"front_3q_right": 0.75, "front_3q_left": 0.05})  # the mirror image: a right flank
    out = mirror_flank(photo, mirror, TAX)
    assert _p(photo, "front_3q_right") > _p(photo, "front_3q_left")
    assert _p(out, "front_3q_left") > _p(out, "front_3q_right")


def test_the_mirror_image_gets_the_other_flank() -> None:
    rng = np.random.default_rng(4)
    photo, mirror = rng.dirichlet(np.ones(len(NAMES)), 5), rng.dirichlet(np.ones(len(NAMES)), 5)
    a, b = mirror_flank(photo, mirror, TAX), mirror_flank(mirror, photo, TAX)
    split_a = a / (a + a[:, PERM])
    split_b = b / (b + b[:, PERM])
    np.testing.assert_allclose(split_a[:, SIDED], split_b[:, PERM][:, SIDED], rtol=1e-5)


def test_shapes_are_checked() -> None:
    row = _angle({})
    with pytest.raises(ValueError, match="must both be"):
        mirror_flank(row, np.vstack([row, row]), TAX)
    with pytest.raises(ValueError, match="must both be"):
        mirror_flank(row[:, :5], row[:, :5], TAX)


def test_validate_outputs_checks_and_keeps_the_mirror_output_where_there_is_one() -> None:
    angle = _angle({"side_right": 0.7}).astype(np.float32)
    kept = validate_outputs({"angle": angle, ANGLE_MIRROR: angle}, 1, TAX, names=("angle",))
    assert set(kept) == {"angle", ANGLE_MIRROR}
    assert set(validate_outputs({"angle": angle}, 1, TAX, names=("angle",))) == {"angle"}  # optional
    with pytest.raises(ValueError, match=ANGLE_MIRROR):
        validate_outputs({"angle": angle, ANGLE_MIRROR: angle[:, :5]}, 1, TAX, names=("angle",))
    with pytest.raises(ValueError, match="sums to"):
        validate_outputs({"angle": angle, ANGLE_MIRROR: angle * 0.5}, 1, TAX, names=("angle",))


@pytest.mark.parametrize("driver_side, expected", [("right", "side_passenger"), ("left", "side_driver")])
def test_tags_read_the_flank_from_both_and_name_the_side_by_market(driver_side: str, expected: str) -> None:
    """The head leans to the right flank; its answer on the mirror image says the photo shows the left."""
    photo = _angle({"side_right": 0.5, "side_left": 0.4}).astype(np.float32)
    mirror = _angle({"side_right": 0.8, "side_left": 0.1}).astype(np.float32)
    rules = ScoringRules.default(TAX, driver_side=driver_side)
    assert rules.flank_symmetry and ScoringConfig().flank_symmetry  # on by default
    outputs = {"angle": photo, ANGLE_MIRROR: mirror}
    assert tag_rows(outputs, TAX, rules, names=("angle",))["angle"].iloc[0] == expected  # the car's left flank
    off = rules.replace(flank_symmetry=False)
    head = tag_rows(outputs, TAX, off, names=("angle",))["angle"].iloc[0]
    assert head == {"right": "side_driver", "left": "side_passenger"}[driver_side]
    assert off.version != rules.version  # written to scorer_version: a changed setting shows
    # the mirror output never reaches the tags, whatever the setting; without it the head's answer stands
    assert ANGLE_MIRROR not in as_tagged(outputs, TAX, off)
    assert with_mirror_image({"angle": photo}, TAX, rules)["angle"] is photo


def test_the_plate_presence_is_the_mean_of_both_answers_and_the_box_the_photos() -> None:
    presence, mirrored = np.array([[0.9], [0.6], [0.1]]), np.array([[0.7], [0.2], [0.1]])
    np.testing.assert_allclose(mirror_presence(presence, mirrored), [[0.8], [0.4], [0.1]], rtol=1e-6)
    with pytest.raises(ValueError, match="differ"):
        mirror_presence(presence, mirrored[:2])
    box = np.array([[0.1, 0.6, 0.3, 0.7], [0.5, 0.5, 0.6, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32)
    outputs = {"plate_presence": presence.astype(np.float32), "plate_box": box,
               PLATE_PRESENCE_MIRROR: mirrored.astype(np.float32)}
    rules = ScoringRules.default(TAX)
    assert rules.plate_symmetry and ScoringConfig().plate_symmetry  # on by default
    names = ("plate_presence", "plate_box")
    on = tag_rows(outputs, TAX, rules, names=names)
    off = tag_rows(outputs, TAX, rules.replace(plate_symmetry=False), names=names)
    np.testing.assert_allclose(on["plate_score"].astype(float), [0.8, 0.4, 0.1], rtol=1e-5)
    np.testing.assert_allclose(off["plate_score"].astype(float), [0.9, 0.6, 0.1], rtol=1e-5)
    assert on["plate_flag"].tolist() == [True, False, False] and off["plate_flag"].tolist() == [True, True, False]
    assert on["plate_box"].iloc[0] == pytest.approx(box[0].tolist())  # the photo's own box
    # each setting folds in its own output only
    both = {"angle": _angle({"side_right": 0.6}), ANGLE_MIRROR: _angle({"side_right": 0.6}),
            "plate_presence": presence, PLATE_PRESENCE_MIRROR: mirrored}
    folded = fold_mirror_image(both, TAX, flank=False, plate=True)
    assert set(folded) == {"angle", "plate_presence"} and folded["angle"] is both["angle"]
    assert fold_mirror_image(both, TAX, flank=True, plate=False)["plate_presence"] is presence


def test_the_cache_key_keeps_predictions_of_every_setting_apart() -> None:
    assert prediction_cache_key("abc", "right") == "abc"  # settings off: keys as before
    assert prediction_cache_key("abc", "right", (0.0, 0.0), True) == "abc+fs"
    assert prediction_cache_key("abc", "right", (0.0, 0.0), False, True) == "abc+ps"
    assert prediction_cache_key("abc", "left", (52.9, 0.01), True, True) == "abc+lhd+pf52.9/0.01+fs+ps"
