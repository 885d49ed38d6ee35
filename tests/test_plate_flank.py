"""The plate-position flank cue (``fleetvision.scoring.plate_flank``) and where scoring applies it.

Tier 1 (no Spark): the cue on hand-made softmaxes (pairs keep their mass, mirror images get mirrored
answers, no plate means no change, the evidence is bounded), the maximum-likelihood fit recovering known
settings, the tags under both driver sides, the prediction cache key, and the geometry itself checked on
the generator's own 3/4 renders.
"""

from __future__ import annotations

import numpy as np
import pytest

from fleetvision.config import ScoringConfig, load_config
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.plate_flank import PAIR_SIGNS, fit_plate_flank, plate_flank, plate_offset_evidence
from fleetvision.scoring.tags import prediction_cache_key, tag_rows, with_plate_flank
from fleetvision.taxonomy import load_taxonomy

TAX = load_taxonomy()
NAMES = list(TAX.flank_names)


def _angle(weights: dict[str, float]) -> np.ndarray:
    """One softmax row: the named flank classes' weights, the rest spread thinly, normalised."""
    row = np.full(len(NAMES), 0.01)
    for name, w in weights.items():
        row[NAMES.index(name)] = w
    return (row / row.sum())[None, :]


def _box(cx: float) -> np.ndarray:
    return np.array([[cx - 0.05, 0.6, cx + 0.05, 0.65]])


def test_a_plate_left_of_the_middle_means_the_left_flank_in_front_and_the_right_in_rear_3q() -> None:
    even = _angle({"front_3q_left": 0.3, "front_3q_right": 0.3, "rear_3q_left": 0.15, "rear_3q_right": 0.15})
    out = plate_flank(even, np.ones(1), _box(0.25), TAX, 50.0, 0.01)
    assert out[0, NAMES.index("front_3q_left")] > 0.29 > 0.01 > out[0, NAMES.index("front_3q_right")]
    assert out[0, NAMES.index("rear_3q_right")] > 0.14 > 0.01 > out[0, NAMES.index("rear_3q_left")]
    for family in PAIR_SIGNS:  # each pair keeps its mass: the view family's probability does not move
        pair = [NAMES.index(f"{family}_left"), NAMES.index(f"{family}_right")]
        assert out[0, pair].sum() == pytest.approx(even[0, pair].sum(), abs=1e-6)
    untouched = [i for i, n in enumerate(NAMES) if not n.startswith(("front_3q", "rear_3q"))]
    np.testing.assert_allclose(out[0, untouched], even[0, untouched], rtol=1e-6)  # side views included
    assert out.sum() == pytest.approx(1.0, abs=1e-5) and out.dtype == np.float32


def test_the_mirror_image_gets_the_mirrored_answer() -> None:
    rng = np.random.default_rng(3)
    angle = rng.dirichlet(np.ones(len(NAMES)), size=50)
    boxes = np.sort(rng.uniform(0, 1, size=(50, 2)), axis=1)
    box = np.stack([boxes[:, 0], np.full(50, 0.5), boxes[:, 1], np.full(50, 0.55)], axis=1)
    presence = rng.uniform(0, 1, size=50)
    swap = np.array(TAX.flip_permutation)
    mirrored_box = np.stack([1 - box[:, 2], box[:, 1], 1 - box[:, 0], box[:, 3]], axis=1)
    out = plate_flank(angle, presence, box, TAX, 40.0, 0.02)
    mirrored = plate_flank(angle[:, swap], presence, mirrored_box, TAX, 40.0, 0.02)
    np.testing.assert_allclose(mirrored, out[:, swap], atol=1e-6)


def test_no_plate_or_no_strength_changes_nothing_and_the_evidence_is_bounded() -> None:
    angle = _angle({"front_3q_right": 0.6, "front_3q_left": 0.1})
    np.testing.assert_allclose(plate_flank(angle, np.zeros(1), _box(0.1), TAX, 80.0, 0.01), angle, rtol=1e-6)
    np.testing.assert_allclose(plate_flank(angle, np.ones(1), _box(0.1), TAX, 0.0, 0.01), angle, rtol=1e-6)
    far = plate_offset_evidence(np.ones(2), np.vstack([_box(0.95), _box(0.05)]), 1000.0, 0.05)
    np.testing.assert_allclose(far, [np.log(0.95 / 0.05), -np.log(0.95 / 0.05)], rtol=1e-6)
    # a head sure of the wrong flank beyond that bound keeps it; a less sure one follows the plate
    sure = _angle({"front_3q_right": 0.9, "front_3q_left": 0.9 / 400})
    assert plate_flank(sure, np.ones(1), _box(0.1), TAX, 1000.0, 0.05).argmax() == NAMES.index("front_3q_right")
    assert plate_flank(angle, np.ones(1), _box(0.1), TAX, 1000.0, 0.05).argmax() == NAMES.index("front_3q_left")


def test_bad_arguments_are_refused_with_their_names() -> None:
    angle = _angle({})
    with pytest.raises(ValueError, match="strength must be"):
        plate_flank(angle, np.ones(1), _box(0.5), TAX, -1.0, 0.0)
    with pytest.raises(ValueError, match="outlier_rate must be"):
        plate_flank(angle, np.ones(1), _box(0.5), TAX, 1.0, 0.5)
    with pytest.raises(ValueError, match=r"plate_box must be \[N, 4\]"):
        plate_flank(angle, np.ones(1), np.zeros((1, 3)), TAX, 1.0, 0.0)
    with pytest.raises(ValueError, match="angle must be"):
        plate_flank(angle[:, :5], np.ones(1), _box(0.5), TAX, 1.0, 0.0)
    with pytest.raises(ValueError, match="1 angle rows but 2 plate rows"):
        plate_flank(angle, np.ones(2), np.vstack([_box(0.5)] * 2), TAX, 1.0, 0.0)
    with pytest.raises(ValueError, match="weights must be"):
        fit_plate_flank(np.zeros(3), np.ones(3), np.ones(3, bool), -np.ones(3))
    with pytest.raises(ValueError, match="3 offsets, 2 presences"):
        fit_plate_flank(np.zeros(3), np.ones(2), np.ones(3, bool))


def test_the_fit_recovers_the_settings_that_drew_the_labels() -> None:
    rng = np.random.default_rng(11)
    n, strength, outlier = 6_000, 30.0, 0.05
    z = rng.uniform(-0.3, 0.3, n)
    presence = rng.choice([0.0, 1.0], size=n, p=[0.2, 0.8])
    p_left = presence * (outlier + (1 - 2 * outlier) / (1 + np.exp(-strength * z))) + (1 - presence) * 0.5
    left = rng.uniform(size=n) < p_left
    got_strength, got_outlier, loss = fit_plate_flank(z, presence, left)
    assert got_strength == pytest.approx(strength, rel=0.2) and got_outlier == pytest.approx(outlier, abs=0.01)
    assert 0 < loss < np.log(2)
    # weights count: the same photos weighed towards pure noise fit a weaker cue
    noise = rng.uniform(size=n) < 0.5
    weak = fit_plate_flank(np.concatenate([z, z]), np.concatenate([presence, presence]),
                           np.concatenate([left, noise]), np.concatenate([np.full(n, 0.1), np.full(n, 0.9)]))
    assert weak[0] < got_strength or weak[1] > got_outlier


@pytest.mark.parametrize("driver_side, expected", [("right", "front_3q_passenger"), ("left", "front_3q_driver")])
def test_tags_follow_the_plate_and_name_the_side_by_market(driver_side: str, expected: str) -> None:
    outputs = {"angle": _angle({"front_3q_right": 0.5, "front_3q_left": 0.3}).astype(np.float32),
               "plate_presence": np.ones((1, 1), np.float32), "plate_box": _box(0.2).astype(np.float32)}
    rules = ScoringRules.default(TAX, driver_side=driver_side)
    assert rules.plate_flank_strength == ScoringConfig().plate_flank_strength > 0
    names = ("angle", "plate_presence", "plate_box")
    assert tag_rows(outputs, TAX, rules, names=names)["angle"].iloc[0] == expected  # the car's left flank
    off = rules.replace(plate_flank_strength=0.0)
    head = tag_rows(outputs, TAX, off, names=names)["angle"].iloc[0]
    assert head == {"right": "front_3q_driver", "left": "front_3q_passenger"}[driver_side]
    assert off.version != rules.version  # written to scorer_version: a changed setting shows
    # without a plate output there is nothing to read: the head's answer stands
    assert with_plate_flank({"angle": outputs["angle"]}, TAX, rules)["angle"] is outputs["angle"]


def test_the_cache_key_keeps_predictions_of_other_cue_settings_apart() -> None:
    assert prediction_cache_key("abc", "right", (0.0, 0.01)) == "abc"  # cue off: keys as before
    on = prediction_cache_key("abc", "right", (52.9, 0.01))
    assert on == "abc+pf52.9/0.01" and on != prediction_cache_key("abc", "right", (20.0, 0.01))
    assert prediction_cache_key("abc", "left", (52.9, 0.01)) == "abc+lhd+pf52.9/0.01"


def test_the_generators_3q_renders_put_the_plate_where_the_cue_expects_it() -> None:
    """The convention the cue encodes, checked on the painter's own ground truth (no model)."""
    from fleetvision.synth.photo_spec import sample_spec
    from fleetvision.synth.render import render_photo
    from fleetvision.synth.rng import derive_rng

    agree = []
    for i in range(32):
        shot = ("front_3q_driver", "front_3q_passenger", "rear_3q_driver", "rear_3q_passenger")[i % 4]
        spec = sample_spec(derive_rng(7, "plate-flank-test", i), TAX, shot, driver_side="right", plate_style="AU",
                           size=(288, 216), banner=False, plate_modes={"normal": 1.0})
        box = render_photo(spec).plate_box
        if box is None:
            continue
        flank = TAX.market_to_flank(shot, "right")
        offset = PAIR_SIGNS[flank.rsplit("_", 1)[0]] * ((box[0] + box[2]) / 2 - 0.5)
        agree.append((offset > 0) == flank.endswith("_left"))
    assert len(agree) >= 24 and np.mean(agree) >= 0.9


def test_the_frozen_evaluation_reports_the_angle_with_the_cue_beside_the_models_own() -> None:
    """``evaluate_predictors`` on stand-in predictors: a head that cannot tell the flanks apart, a plate
    head that puts the plate where the geometry says; the model's own top-1 stays, the cue's is reported."""
    import io

    from PIL import Image

    from fleetvision.feed import EvalSet
    from fleetvision.models.eval_metrics import EvalLabels
    from fleetvision.models.frozen_eval import FLANK_CUE_METRICS, evaluate_predictors

    classes = ["front_3q_left", "front_3q_right", "rear_3q_left", "rear_3q_right"] * 2
    centre = {"front_3q_left": 0.2, "front_3q_right": 0.8, "rear_3q_left": 0.8, "rear_3q_right": 0.2}
    n = len(classes)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buffer, format="JPEG")

    def fused(batch: np.ndarray) -> dict[str, np.ndarray]:
        rows = len(batch)
        angle = np.vstack([_angle({c.rsplit("_", 1)[0] + "_left": 0.4, c.rsplit("_", 1)[0] + "_right": 0.41})
                           for c in classes[:rows]])
        return {"angle": angle.astype(np.float32), "plate_presence": np.ones((rows, 1), np.float32),
                "plate_box": np.vstack([_box(centre[c]) for c in classes[:rows]]).astype(np.float32)}

    labels = EvalLabels(np.array([NAMES.index(c) for c in classes]), np.full(n, -1), np.ones(n, int),
                        np.vstack([_box(centre[c]) for c in classes]), np.ones(n, int), np.full(n, -1))
    eval_set = EvalSet(tuple(f"s{i}" for i in range(n)), (buffer.getvalue(),) * n, labels, "stand-in", "f")
    kwargs = {"size": 32, "max_pixels": 1 << 20, "banner_threshold": 0.5, "plate_threshold": 0.5}
    predictors = {"angle": fused, "plate": fused}
    plain = evaluate_predictors(predictors, eval_set, TAX, **kwargs)
    cued = evaluate_predictors(predictors, eval_set, TAX, flank_cue=(33.78, 0.007), **kwargs)
    assert plain["angle"].metrics["top1"] == cued["angle"].metrics["top1"] == 0.5  # always "right"
    assert not any(k.startswith("with_plate_flank.") for k in plain["angle"].metrics)
    assert cued["angle"].metrics["with_plate_flank.top1"] == cued["angle"].metrics[
        "with_plate_flank.mirror_pair_accuracy"] == 1.0
    assert {f"with_plate_flank.{k}" for k in FLANK_CUE_METRICS} <= set(cued["angle"].metrics)
    angle_only = evaluate_predictors({"angle": fused}, eval_set, TAX, flank_cue=(33.78, 0.007), **kwargs)
    assert "with_plate_flank.top1" not in angle_only["angle"].metrics  # no plate model: nothing to read


def test_the_cue_setting_is_one_pair_for_scoring_training_and_evaluation(taxonomy) -> None:
    config = load_config(environ={}, overrides=["scoring.plate_flank_strength=12.5",
                                                "scoring.plate_flank_outlier_rate=0.02"])
    rules = ScoringRules.from_config(config.scoring, taxonomy)
    assert config.scoring.flank_cue == rules.flank_cue == (12.5, 0.02)
    default = load_config(environ={}).scoring
    assert default.flank_cue == (default.plate_flank_strength, default.plate_flank_outlier_rate)
    assert default.plate_flank_strength > 0  # on by default: tags, train all and evaluate angle read it
