"""Listing completeness on hand-made listings (tier 1, no Spark session)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from tag_rows import frame, photo, spark_arrow

from fleetvision.config import ConfigError, ScoringConfig, load_config
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.completeness import (
    COMPLETENESS_COLUMNS,
    REQUIRED_TAG_COLUMNS,
    completeness,
    completeness_frame,
    shot_phrase,
)
from fleetvision.taxonomy import Taxonomy


def full_set(taxonomy: Taxonomy, *, banner: bool, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every required shot plus a few extras: 13 photos."""
    shots = [s for s in (*taxonomy.required, "front_3q_passenger", "wheel", "engine_bay") if s not in skip]
    return [photo(taxonomy, f"i{k}", s, banner=banner, plate=s == "full_rear") for k, s in enumerate(shots)]


DEALER = {"listing_id": "L1", "body_type": "Sedan", "seller_type": "dealer"}
PRIVATE = {"listing_id": "L1", "body_type": "sedan", "seller_type": "private"}


# ------------------------------------------------------------------------------------------ cases
def test_dealer_listing_with_every_shot_and_banners(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(full_set(taxonomy, banner=True))
    row = completeness(DEALER, tags, taxonomy, rules, run_id="r1")
    assert row["shots_missing"] == [] and set(taxonomy.required) <= set(row["shots_present"])
    assert row["n_photos"] == row["n_scored"] == 13 and row["n_failed"] == 0
    assert (row["n_exterior"], row["n_interior"], row["n_detail"]) == (6, 5, 2)
    assert row["banner_free_share"] == 0.0 and row["plate_visible"] is True
    assert row["components"] == {
        "required_shots": 1.0,
        "photo_count": 1.0,
        "banner_free": 0.0,
        "quality": 1.0,
        "no_failures": 1.0,
    }
    assert row["completeness_score"] == pytest.approx(90.0)  # all but the banner-free weight (10)
    assert row["reasons"] == ["13 photos have dealer banners or text overlays: add banner-free versions"]
    assert row["declared_body_type"] == "sedan" and row["body_type_mismatch"] is False
    assert row["seller_type"] == "dealer" and row["run_id"] == "r1" and row["scorer_version"] == rules.version


def test_private_listing_missing_the_boot(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    complete = completeness(PRIVATE, frame(full_set(taxonomy, banner=False)), taxonomy, rules)
    row = completeness(PRIVATE, frame(full_set(taxonomy, banner=False, skip=("boot",))), taxonomy, rules)
    assert complete["completeness_score"] == pytest.approx(100.0) and complete["reasons"] == []
    assert row["shots_missing"] == ["boot"] and "boot" not in row["shots_present"]
    assert row["reasons"][0] == "add a boot photo"
    n_req = len(rules.required_shots)
    assert row["components"]["required_shots"] == pytest.approx((n_req - 1) / n_req, abs=1e-4)
    assert row["components"]["photo_count"] == 1.0
    assert row["completeness_score"] < complete["completeness_score"]


def test_missing_side_specific_shots_read_as_words(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "a", "full_front"), photo(taxonomy, "b", "dashboard")])
    row = completeness(PRIVATE, tags, taxonomy, rules)
    assert "add a front three-quarter (driver side) photo" in row["reasons"]
    assert "add an instrument cluster photo" in row["reasons"]
    assert "add more photos: 2 of the 12 recommended" in row["reasons"]
    assert shot_phrase("rear_3q_passenger") == "rear three-quarter (passenger side)"


def test_duplicates_count_once(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = [photo(taxonomy, f"d{k}", "full_front", content_hash="same") for k in range(4)]
    rows.append(photo(taxonomy, "x", "boot"))
    row = completeness(PRIVATE, frame(rows), taxonomy, rules)
    assert row["n_photos"] == row["n_scored"] == 5  # every image has its row
    assert row["components"]["photo_count"] == pytest.approx(2 / 12, abs=1e-4)  # but only 2 distinct photos
    assert "3 photos are exact duplicates: remove or replace" in row["reasons"]


def test_failed_photos_lower_the_score_and_are_named(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = full_set(taxonomy, banner=False)
    rows += [photo(taxonomy, "bad1", None, ok=False, code="not_image"), photo(taxonomy, "bad2", None, ok=False)]
    row = completeness(PRIVATE, frame(rows), taxonomy, rules)
    assert (row["n_photos"], row["n_scored"], row["n_failed"]) == (15, 13, 2)
    assert row["components"]["no_failures"] == pytest.approx(13 / 15, abs=1e-4)
    assert row["reasons"][0] == "2 photos could not be read (not_image, truncated): upload them again as JPEG or PNG"


def test_all_failed_listing(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = [photo(taxonomy, f"b{k}", None, ok=False, code=c) for k, c in enumerate(["empty", "truncated", "empty"])]
    row = completeness(PRIVATE, frame(rows), taxonomy, rules)
    assert (row["n_photos"], row["n_scored"], row["n_failed"]) == (3, 0, 3)
    assert row["completeness_score"] == 0.0
    assert row["banner_free_share"] is None and row["mean_quality"] is None and row["plate_visible"] is None
    assert row["predicted_body_type"] is None and row["body_type_mismatch"] is None
    assert row["shots_present"] == [] and row["shots_missing"] == list(rules.required_shots)
    assert (
        row["reasons"][0] == "none of the 3 photos could be read (empty, truncated): upload them again as JPEG or PNG"
    )


@pytest.mark.parametrize(
    "tags",
    [
        pd.DataFrame(columns=["listing_id", *REQUIRED_TAG_COLUMNS]),
        # a listing without photos, as a left join of listings to image_tags gives it: one row, null image_id
        pd.DataFrame(
            [
                {
                    "listing_id": "L1",
                    "image_id": None,
                    "position": None,
                    "content_hash": None,
                    "decode_status": None,
                    "angle": None,
                    "angle_score": None,
                    "shot_group": None,
                    "banner_flag": None,
                    "banner_score": None,
                    "plate_flag": None,
                    "body_type": None,
                    "body_score": None,
                    "sharpness": None,
                    "brightness": None,
                }
            ]
        ),
    ],
)
def test_empty_listing(taxonomy: Taxonomy, rules: ScoringRules, tags: pd.DataFrame) -> None:
    row = completeness(PRIVATE, tags, taxonomy, rules)
    assert row["n_photos"] == 0 and row["completeness_score"] == 0.0
    assert row["reasons"] == ["add photos: the listing has none (12 recommended)"]


def test_body_type_is_a_score_weighted_vote_over_exterior_shots(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = [
        photo(taxonomy, "a", "full_front", body="sedan", body_score=0.35),
        photo(taxonomy, "b", "side_driver", body="sedan", body_score=0.35),
        photo(taxonomy, "c", "full_rear", body="suv", body_score=0.95),
        photo(taxonomy, "d", "side_passenger", body="van", body_score=0.2),  # below body_min_score: no vote
    ]
    row = completeness(PRIVATE, frame(rows), taxonomy, rules)
    assert row["predicted_body_type"] == "suv"  # a plain majority would say sedan
    assert row["body_type_mismatch"] is True
    # the column is written; sellers are told only where the body model is trusted (scoring.body_mismatch_reason)
    assert not rules.body_mismatch_reason and not any("body type" in r for r in row["reasons"])
    told = completeness(PRIVATE, frame(rows), taxonomy, rules.replace(body_mismatch_reason=True))
    assert "the photos look like a suv but the listing says sedan: check the body type" in told["reasons"]
    same = {k: v for k, v in row.items() if k not in ("reasons", "scorer_version")}
    assert {k: v for k, v in told.items() if k in same} == same
    assert told["scorer_version"] != row["scorer_version"]  # a rule change: the next run rescores listings
    heavy = rules.replace(body_min_score=0.0)
    rows.append(photo(taxonomy, "e", "rear_3q_driver", body="sedan", body_score=0.3))
    assert completeness(PRIVATE, frame(rows), taxonomy, heavy)["predicted_body_type"] == "sedan"


def test_unknown_or_missing_declared_body_type_is_not_a_mismatch(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "a", "full_front", body="suv")])
    odd = completeness({**PRIVATE, "body_type": "convertible"}, tags, taxonomy, rules)
    assert odd["predicted_body_type"] == "suv" and odd["body_type_mismatch"] is None
    none = completeness(None, tags, taxonomy, rules)
    assert none["listing_id"] == "L1" and none["declared_body_type"] is None and none["seller_type"] is None


def test_weights_come_from_config(taxonomy: Taxonomy) -> None:
    cfg = ScoringConfig(completeness_weights={"required_shots": 1.0})
    rules = ScoringRules.from_config(cfg, taxonomy)
    tags = frame(full_set(taxonomy, banner=True, skip=("boot", "dashboard")))
    row = completeness(DEALER, tags, taxonomy, rules)
    n_req = len(rules.required_shots)
    assert row["completeness_score"] == pytest.approx(100 * (n_req - 2) / n_req, abs=0.01)


def test_required_shots_override_and_validation(taxonomy: Taxonomy) -> None:
    rules = ScoringRules.from_config(ScoringConfig(required_shots=("boot", "passenger_seat")), taxonomy)
    row = completeness(PRIVATE, frame([photo(taxonomy, "a", "boot")]), taxonomy, rules)
    assert row["shots_missing"] == ["passenger_seat"] and row["reasons"][0] == "add a passenger seat photo"
    with pytest.raises(ValueError, match=r"scoring.required_shots: \['bonnet'\] are not taxonomy classes"):
        ScoringRules.from_config(ScoringConfig(required_shots=("boot", "bonnet")), taxonomy)
    with pytest.raises(ValueError, match=r"gallery_exterior_order.*exterior"):
        ScoringRules.from_config(ScoringConfig(gallery_exterior_order=("boot",)), taxonomy)
    with pytest.raises(ConfigError, match="completeness_weights"):
        load_config(overrides=["scoring.completeness_weights={colour: 1}"], environ={})


def test_rules_version_is_stable_and_tracks_changes(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    assert ScoringRules.default(taxonomy).version == rules.version
    assert rules.replace(target_photos=20).version != rules.version
    with pytest.raises(TypeError, match="no field"):
        rules.replace(colour=1)


def test_bad_inputs_name_the_problem(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "a", "boot")])
    with pytest.raises(ValueError, match=r"lack column\(s\) \['sharpness'\]"):
        completeness(PRIVATE, tags.drop(columns=["sharpness"]), taxonomy, rules)
    with pytest.raises(ValueError, match="include rows of other listing"):
        completeness({**PRIVATE, "listing_id": "L2"}, tags, taxonomy, rules)
    with pytest.raises(TypeError, match="DataFrame"):
        completeness(PRIVATE, tags.to_dict("records"), taxonomy, rules)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- frame
def test_frame_matches_the_table_and_converts_to_arrow(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    from fleetvision.tables import LISTING_COMPLETENESS

    assert list(COMPLETENESS_COLUMNS) == LISTING_COMPLETENESS.schema.fieldNames()
    when = pd.Timestamp("2025-01-02 03:04:05", tz="UTC")
    tags = frame(full_set(taxonomy, banner=False, skip=("boot",)))
    # applyInPandas hands over the joined rows: the listing's fields ride along on every row
    out = completeness_frame(tags, pd.DataFrame([PRIVATE]), taxonomy, rules, run_id="r9", computed_at=when)
    assert list(out.columns) == list(COMPLETENESS_COLUMNS) and len(out) == 1
    table = spark_arrow(out, LISTING_COMPLETENESS.schema)
    got = table.to_pylist()[0]
    assert got["shots_missing"] == ["boot"] and got["n_photos"] == 12 and got["run_id"] == "r9"
    assert dict(got["components"])["required_shots"] == pytest.approx(out["components"][0]["required_shots"])
    no_rows = tags.iloc[0:0]
    empty = completeness_frame(no_rows, PRIVATE, taxonomy, rules, run_id="r9", computed_at=when)
    assert spark_arrow(empty, LISTING_COMPLETENESS.schema).to_pylist()[0]["banner_free_share"] is None
