"""The angle model predicts the car's flank; tags name driver/passenger side by ``market.driver_side``.

Tier 1 (no Spark): the two vocabularies and their mapping, the invariant that keeps legacy (right-hand
drive) angle models meaning the same classes, and the same model outputs scored for a right-hand-drive
and a left-hand-drive market: tags, completeness and hero picks with mirrored driver/passenger names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tag_rows import GOOD_SHARPNESS

from fleetvision.models.eval_metrics import EvalLabels, evaluate_angle
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.completeness import completeness
from fleetvision.scoring.hero import gallery_order, pick_hero
from fleetvision.scoring.tags import prediction_cache_key, tag_rows
from fleetvision.taxonomy import DRIVER_SIDES, Taxonomy, load_taxonomy

TAX = load_taxonomy()
SIDED = {
    "front_3q_driver": ("front_3q_right", "front_3q_left"),  # market name: (flank under RHD, under LHD)
    "side_driver": ("side_right", "side_left"),
    "rear_3q_driver": ("rear_3q_right", "rear_3q_left"),
    "front_3q_passenger": ("front_3q_left", "front_3q_right"),
    "side_passenger": ("side_left", "side_right"),
    "rear_3q_passenger": ("rear_3q_left", "rear_3q_right"),
}


# ------------------------------------------------------------------------------------- vocabulary
def test_flank_vocabulary_has_the_same_27_entries_with_sided_classes_named_by_flank() -> None:
    assert len(TAX.flank_names) == TAX.num_classes == 27
    for c in TAX.classes:
        if c.side is None:
            assert c.flank_class == c.name and c.flank is None
        else:
            assert c.flank_class == SIDED[c.name][0] and c.flank == c.flank_class.rsplit("_", 1)[1]
    assert len(set(TAX.flank_names)) == 27


def test_legacy_invariant_flank_order_equals_market_order_under_right_hand_drive() -> None:
    """A model trained on right-hand-drive market labels (the starter models) outputs flank classes as is."""
    assert TAX.flank_permutation("right") == tuple(range(27))
    assert TAX.market_names("right") == TAX.names
    for c in TAX.classes:
        if c.side == "driver":
            assert c.flank == "right"  # the driver sits on the car's right in a right-hand-drive car
        elif c.side == "passenger":
            assert c.flank == "left"


@pytest.mark.parametrize("driver_side", DRIVER_SIDES)
def test_market_and_flank_names_round_trip(driver_side: str) -> None:
    for name in TAX.names:
        flank = TAX.market_to_flank(name, driver_side)
        assert TAX.flank_to_market(flank, driver_side) == name
    for flank in TAX.flank_names:
        assert TAX.market_to_flank(TAX.flank_to_market(flank, driver_side), driver_side) == flank
    perm = TAX.flank_permutation(driver_side)
    assert sorted(perm) == list(range(27)) and all(perm[perm[i]] == i for i in range(27))


@pytest.mark.parametrize("market", sorted(SIDED))
def test_driver_side_is_the_right_flank_under_rhd_and_the_left_flank_under_lhd(market: str) -> None:
    rhd, lhd = SIDED[market]
    assert TAX.market_to_flank(market, "right") == rhd
    assert TAX.market_to_flank(market, "left") == lhd
    assert TAX.flank_to_market(rhd, "right") == market == TAX.flank_to_market(lhd, "left")


def test_lhd_labels_map_to_the_correct_flank_index() -> None:
    """A label made for a left-hand-drive market (side_driver) trains the car's left flank."""
    perm = TAX.flank_permutation("left")
    assert TAX.flank_names[perm[TAX.index("side_driver")]] == "side_left"
    assert TAX.flank_names[perm[TAX.index("front_3q_passenger")]] == "front_3q_right"
    assert TAX.flank_names[perm[TAX.index("dashboard")]] == "dashboard"
    # the mirror swap of training flips is the same pair in flank terms
    assert TAX.flank_names[TAX.flip_permutation[TAX.index("side_driver")]] == "side_left"


def test_mapping_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="driver_side must be one of"):
        TAX.market_to_flank("side_driver", "centre")
    with pytest.raises(KeyError, match="unknown flank class 'side_driver'"):
        TAX.flank_to_market("side_driver", "right")
    with pytest.raises(ValueError, match=r"market\.driver_side must be 'left' or 'right'"):
        ScoringRules.default(TAX, driver_side="middle")


@pytest.mark.parametrize(
    ("flank", "message"),
    [
        ("side_left", "needs a flank_class ending _right"),  # a driver-side class must be the RHD right flank
        ("side", "needs a flank_class ending _right"),
    ],
)
def test_taxonomy_rejects_a_flank_order_that_breaks_the_invariant(tmp_path: Path, flank: str, message: str) -> None:
    p = tmp_path / "tax.yaml"
    p.write_text(
        "classes:\n"
        f"  - {{name: side_driver, group: exterior, mirror: side_passenger, plate_visible: false, required: true,"
        f" side: driver, flank_class: {flank}}}\n"
        "  - {name: side_passenger, group: exterior, mirror: side_driver, plate_visible: false, required: true,"
        " side: passenger, flank_class: side_left}\n"
        "body_types: [sedan]\n"
    )
    with pytest.raises(ValueError, match=message):
        load_taxonomy(p)


# ------------------------------------------------------------------- same outputs, both markets
def flank_outputs(taxonomy: Taxonomy, flanks: list[str], second: list[str]) -> dict[str, np.ndarray]:
    """Fixed angle softmax rows: 0.6 on a flank class, 0.3 on a second one, the rest spread."""
    c = taxonomy.num_classes
    angle = np.full((len(flanks), c), 0.1 / (c - 2), np.float32)
    for i, (a, b) in enumerate(zip(flanks, second)):
        angle[i, taxonomy.flank_names.index(a)] = 0.6
        angle[i, taxonomy.flank_names.index(b)] = 0.3
    return {"angle": angle}


PHOTOS = ["front_3q_right", "side_right", "rear_3q_left", "full_front", "dashboard", "boot"]
SECOND = ["front_3q_left", "full_front", "rear_3q_right", "front_3q_right", "steering_wheel", "rear_seats"]


def scored(driver_side: str) -> tuple[pd.DataFrame, ScoringRules]:
    rules = ScoringRules.default(TAX, driver_side=driver_side)
    tags = tag_rows(flank_outputs(TAX, PHOTOS, SECOND), TAX, rules, names=("angle",))
    tags.insert(0, "image_id", [f"i{k}" for k in range(len(tags))])
    tags["listing_id"] = "L1"
    tags["content_hash"] = [f"h{k}" for k in range(len(tags))]
    tags["decode_status"] = "ok"
    tags["error_code"] = None
    tags["banner_flag"] = False
    tags["banner_score"] = 0.1
    tags["plate_flag"] = False
    tags["body_type"] = np.where(tags["shot_group"] == "exterior", "sedan", None)
    tags["body_score"] = np.where(tags["shot_group"] == "exterior", 0.9, np.nan)
    tags["sharpness"] = GOOD_SHARPNESS
    tags["brightness"] = 0.5
    tags["position"] = range(len(tags))
    return tags, rules


def test_the_same_outputs_are_tagged_with_mirrored_sides_in_rhd_and_lhd_markets() -> None:
    rhd, _ = scored("right")
    lhd, _ = scored("left")
    assert list(rhd["angle"]) == [
        "front_3q_driver", "side_driver", "rear_3q_passenger", "full_front", "dashboard", "boot"
    ]
    assert list(lhd["angle"]) == [
        "front_3q_passenger", "side_passenger", "rear_3q_driver", "full_front", "dashboard", "boot"
    ]
    assert [t["label"] for t in rhd["angle_top3"][0]][:2] == ["front_3q_driver", "front_3q_passenger"]
    assert [t["label"] for t in rhd["angle_top3"][2]][:2] == ["rear_3q_passenger", "rear_3q_driver"]
    assert [t["label"] for t in lhd["angle_top3"][0]][:2] == ["front_3q_passenger", "front_3q_driver"]
    assert [t["label"] for t in lhd["angle_top3"][2]][:2] == ["rear_3q_driver", "rear_3q_passenger"]
    np.testing.assert_array_equal(rhd["angle_score"], lhd["angle_score"])
    assert list(rhd["shot_group"]) == list(lhd["shot_group"])


def test_completeness_and_hero_follow_the_market_driver_side() -> None:
    listing = {"listing_id": "L1", "body_type": "sedan", "seller_type": "private"}
    rhd_tags, rhd_rules = scored("right")
    lhd_tags, lhd_rules = scored("left")
    rhd = completeness(listing, rhd_tags, TAX, rhd_rules, run_id="r")
    lhd = completeness(listing, lhd_tags, TAX, lhd_rules, run_id="r")
    # required: front_3q_driver, side_driver, rear_3q_passenger (plus unsided shots)
    assert {"front_3q_driver", "side_driver", "rear_3q_passenger"} <= set(rhd["shots_present"])
    assert {"front_3q_driver", "side_driver", "rear_3q_passenger"} <= set(lhd["shots_missing"])
    assert {"front_3q_passenger", "side_passenger", "rear_3q_driver"} <= set(lhd["shots_present"])
    assert rhd["scorer_version"] != lhd["scorer_version"]
    # hero_preference starts front_3q_driver, front_3q_passenger: the same photo wins in both markets
    assert pick_hero(rhd_tags, TAX, rhd_rules).image_id == pick_hero(lhd_tags, TAX, lhd_rules).image_id == "i0"
    assert pick_hero(lhd_tags, TAX, lhd_rules).reason.startswith("front_3q_passenger")
    # the gallery (hero first, then the walk-around from the driver-side front corner): sides in market order
    rhd_gallery = gallery_order(rhd_tags, TAX, rhd_rules, "i0").order
    lhd_gallery = gallery_order(lhd_tags, TAX, lhd_rules, "i0").order
    assert rhd_gallery[:4] == ["i0", "i3", "i2", "i1"]  # front_3q_driver, full_front, rear_3q_passenger, side_driver
    assert lhd_gallery[:4] == ["i0", "i3", "i1", "i2"]  # front_3q_passenger, full_front, side_passenger, rear_3q_driver


def test_prediction_cache_key_keeps_markets_apart() -> None:
    assert prediction_cache_key("abc123", "right") == "abc123"  # rows cached before flank classes stay valid
    assert prediction_cache_key("abc123", "left") != "abc123"
    with pytest.raises(ValueError, match="driver_side"):
        prediction_cache_key("abc123", "up")


def test_angle_evaluation_names_flank_classes() -> None:
    truth = np.array([TAX.index("side_driver"), TAX.index("side_passenger")])  # flank indices: right, left
    probs = np.full((2, 27), 0.0, np.float32)
    probs[0, truth[0]] = probs[1, truth[0]] = 1.0
    labels = EvalLabels(
        angle_index=truth,
        has_banner=np.full(2, -1),
        plate_present=np.full(2, -1),
        box=np.zeros((2, 4), np.float32),
        box_known=np.zeros(2, np.int64),
        body_index=np.full(2, -1),
    )
    ev = evaluate_angle(probs, labels, TAX)
    assert ev.class_names == TAX.flank_names and "side_right" in set(ev.per_class["class"])
    assert ev.metrics["mirror_accuracy.side"] == 0.5 and ev.metrics["mirror_swap_rate"] == 0.5


# ------------------------------------------------------------- the starter angle model, both markets
def test_starter_angle_model_tags_a_right_flank_photo_by_market() -> None:
    """Right-flank photos (a right-hand-drive car's driver side, a left-hand-drive car's passenger side):
    the starter model (trained for right-hand drive) calls them right flank, and the tags say driver
    side under ``driver_side=right`` and passenger side under ``left``."""
    from fleetvision.decode import decode_photo
    from fleetvision.models.pretrained import load_saved_task_model
    from fleetvision.models.serving import predict_fn_for
    from fleetvision.synth.files import encode_jpeg
    from fleetvision.synth.photo_spec import sample_spec
    from fleetvision.synth.render import render_photo
    from fleetvision.synth.rng import derive_rng

    model = load_saved_task_model(Path(__file__).resolve().parents[1] / "models/starter/angle", "angle")
    size = int(model.input_shape[1])
    shots = [("right", "side_driver"), ("right", "front_3q_driver"), ("left", "side_passenger"),
             ("left", "front_3q_passenger")]
    batch = []
    for k, (driver_side, shot) in enumerate(shots):
        rng = derive_rng(5, "flank-test", k)
        spec = sample_spec(rng, TAX, shot, driver_side=driver_side, plate_style="AU", size=(256, 192), banner=False)
        photo = decode_photo(encode_jpeg(render_photo(spec).image), size, 1 << 26)
        batch.append(photo.array)
    outputs = predict_fn_for(model, size)(np.stack(batch))
    flanks = [TAX.flank_names[i] for i in np.argmax(outputs["angle"], axis=1)]
    assert flanks == ["side_right", "front_3q_right", "side_right", "front_3q_right"]
    rhd = tag_rows(outputs, TAX, ScoringRules.default(TAX, driver_side="right"), names=("angle",))
    lhd = tag_rows(outputs, TAX, ScoringRules.default(TAX, driver_side="left"), names=("angle",))
    assert list(rhd["angle"]) == ["side_driver", "front_3q_driver"] * 2
    assert list(lhd["angle"]) == ["side_passenger", "front_3q_passenger"] * 2
