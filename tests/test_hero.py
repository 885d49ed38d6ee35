"""Hero picks and gallery order on hand-made listings (tier 1, no Spark session)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from tag_rows import frame, photo

from fleetvision.config import ScoringConfig
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.hero import HERO_COLUMNS, gallery_order, hero_frame, pick_hero
from fleetvision.taxonomy import Taxonomy


# --------------------------------------------------------------------------------------------- hero
def test_shot_type_beats_the_first_banner_free_photo(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(
        [
            photo(taxonomy, "wheel", "wheel"),
            photo(taxonomy, "dash", "dashboard"),
            photo(taxonomy, "side", "side_driver", banner=True),
            photo(taxonomy, "f3q", "front_3q_driver"),
        ]
    )
    hero = pick_hero(tags, taxonomy, rules)
    assert hero.image_id == "f3q"
    assert hero.reason == "front_3q_driver, banner-free"


def test_quality_breaks_ties_within_a_shot(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(
        [
            photo(taxonomy, "soft", "front_3q_driver", sharpness=0.001),
            photo(taxonomy, "sharp", "front_3q_driver", sharpness=0.02),
            photo(taxonomy, "dark", "front_3q_driver", sharpness=0.02, brightness=0.03),
        ]
    )
    hero = pick_hero(tags, taxonomy, rules)
    assert hero.image_id == "sharp" and hero.reason == "front_3q_driver, banner-free, best quality of 3"


def test_banner_free_preferred_shot_beats_a_bannered_better_one(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "f3q", "front_3q_driver", banner=True), photo(taxonomy, "sp", "side_passenger")])
    hero = pick_hero(tags, taxonomy, rules)
    assert hero.image_id == "sp"
    assert hero.reason == "side_passenger, banner-free, preferred over bannered front_3q_driver"


def test_lower_preference_names_what_was_missing(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "rear", "full_rear"), photo(taxonomy, "front", "full_front")])
    hero = pick_hero(tags, taxonomy, rules)
    assert hero.image_id == "front"
    assert hero.reason == "full_front, banner-free, no front_3q_driver or front_3q_passenger"


def test_dealer_listing_with_banners_everywhere(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(
        [
            photo(taxonomy, "a", "dashboard", banner=True),
            photo(taxonomy, "b", "full_rear", banner=True),
            photo(taxonomy, "c", "front_3q_passenger", banner=True),
        ]
    )
    hero = pick_hero(tags, taxonomy, rules)
    assert hero.image_id == "c"
    assert hero.reason == "front_3q_passenger, has a banner (no banner-free preferred shot)"


def test_an_uncertain_label_does_not_count_as_preferred(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "maybe", "front_3q_driver", angle_score=0.2), photo(taxonomy, "ff", "full_front")])
    assert pick_hero(tags, taxonomy, rules).image_id == "ff"
    relaxed = rules.replace(hero_min_angle_score=0.1)
    assert pick_hero(tags, taxonomy, relaxed).image_id == "maybe"


def test_without_exterior_shots_interior_beats_detail(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(
        [
            photo(taxonomy, "w", "wheel"),
            photo(taxonomy, "d", "dashboard", banner=True),
            photo(taxonomy, "s", "front_seats"),
        ]
    )
    hero = pick_hero(tags, taxonomy, rules)
    assert hero.image_id == "s"
    assert hero.reason == "front_seats (interior), no preferred exterior shot, banner-free"


def test_preference_comes_from_config(taxonomy: Taxonomy) -> None:
    rules = ScoringRules.from_config(ScoringConfig(hero_preference=("full_rear", "full_front")), taxonomy)
    tags = frame([photo(taxonomy, "f", "full_front"), photo(taxonomy, "r", "full_rear")])
    assert pick_hero(tags, taxonomy, rules).image_id == "r"


def test_failed_and_empty_listings_have_no_hero(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    failed = frame([photo(taxonomy, "x", None, ok=False), photo(taxonomy, "y", None, ok=False)])
    assert pick_hero(failed, taxonomy, rules) == pick_hero(failed, taxonomy, rules)
    hero = pick_hero(failed, taxonomy, rules)
    assert hero.image_id is None and hero.reason == "no decodable photo (all 2 failed)"
    empty = failed.iloc[0:0]
    assert pick_hero(empty, taxonomy, rules).reason == "no photos"
    assert gallery_order(empty, taxonomy, rules).order == []


# ------------------------------------------------------------------------------------------ gallery
def test_gallery_walks_around_then_interior_then_details_banners_last(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(
        [
            photo(taxonomy, "wheel", "wheel"),
            photo(taxonomy, "boot", "boot"),
            photo(taxonomy, "rear", "full_rear"),
            photo(taxonomy, "bad", None, ok=False),
            photo(taxonomy, "dash", "dashboard"),
            photo(taxonomy, "f3qp", "front_3q_passenger"),
            photo(taxonomy, "front_b", "full_front", banner=True),
            photo(taxonomy, "f3qd", "front_3q_driver"),
            photo(taxonomy, "sd", "side_driver"),
            photo(taxonomy, "seats_b", "front_seats", banner=True),
        ]
    )
    got = gallery_order(tags, taxonomy, rules)
    assert got.order == [
        "f3qd",  # hero, and the start of the walk-around
        "f3qp",
        "rear",
        "sd",
        "dash",  # interior in taxonomy order
        "boot",
        "wheel",  # then details
        "front_b",  # bannered photos last, in the same canonical order
        "seats_b",
    ]
    assert "bad" not in got.order and got.duplicates_removed == []


def test_hero_leads_the_gallery_when_configured(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "ff", "full_front"), photo(taxonomy, "sp", "side_passenger")])
    # prefer a side view as hero: it moves to the front; without hero_first the walk-around order stays
    prefs = rules.replace(hero_preference=("side_passenger", "full_front"))
    assert gallery_order(tags, taxonomy, prefs).order == ["sp", "ff"]
    assert gallery_order(tags, taxonomy, prefs.replace(gallery_hero_first=False)).order == ["ff", "sp"]


def test_exact_duplicates_are_removed_and_listed(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame(
        [
            photo(taxonomy, "a1", "front_3q_driver", content_hash="A"),
            photo(taxonomy, "b", "boot"),
            photo(taxonomy, "a2", "front_3q_driver", content_hash="A"),
            photo(taxonomy, "a3", "front_3q_driver", content_hash="A"),
            photo(taxonomy, "e1", None, ok=False, content_hash="E"),
            photo(taxonomy, "e2", None, ok=False, content_hash="E"),
        ]
    )
    got = gallery_order(tags, taxonomy, rules)
    assert got.order == ["a1", "b"]  # the first copy is kept
    assert got.duplicates_removed == ["a2", "a3"]  # failed copies are failures, not duplicates
    assert pick_hero(tags, taxonomy, rules).reason == "front_3q_driver, banner-free"  # counted once


def test_hero_frame_matches_the_table_and_converts_to_arrow(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    from pyspark.sql.pandas.types import _create_converter_from_pandas, to_arrow_type

    from fleetvision.tables import HERO_IMAGES

    assert list(HERO_COLUMNS) == HERO_IMAGES.schema.fieldNames()
    tags = frame([photo(taxonomy, "x", "boot"), photo(taxonomy, "y", "full_front")])
    when = pd.Timestamp("2025-01-02", tz="UTC")
    out = hero_frame(tags, taxonomy, rules, run_id="r1", computed_at=when)
    assert list(out.columns) == list(HERO_COLUMNS) and len(out) == 1
    arrays = []
    for field in HERO_IMAGES.schema.fields:
        conv = _create_converter_from_pandas(field.dataType, timezone="UTC", error_on_duplicated_field_names=False)
        arrays.append(pa.Array.from_pandas(conv(out[field.name]), type=to_arrow_type(field.dataType)))
    row = pa.Table.from_arrays(arrays, names=HERO_IMAGES.schema.fieldNames()).to_pylist()[0]
    assert row["listing_id"] == "L1" and row["hero_image_id"] == "y" and row["gallery_order"] == ["y", "x"]
    assert row["scorer_version"] == rules.version and row["duplicates_removed"] == []
    with pytest.raises(ValueError, match="include rows of other listing"):
        hero_frame(tags, taxonomy, rules, listing_id="L2")
