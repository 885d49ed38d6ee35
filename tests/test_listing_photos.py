"""One listing's photos prepared once for completeness and the hero pick (tier 1, no Spark session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tag_rows import frame, photo

from fleetvision.config import load_config
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.completeness import completeness, predicted_body_type
from fleetvision.scoring.hero import gallery_order, hero_row, pick_hero
from fleetvision.scoring.listing_photos import listing_photos
from fleetvision.taxonomy import Taxonomy


def test_rows_are_checked_deduplicated_and_put_in_the_sellers_order(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = [
        photo(taxonomy, "b", "full_front", content_hash="h1"),
        photo(taxonomy, "a", "full_rear", content_hash="h1"),  # same bytes as b, later in the order
        photo(taxonomy, "c", "dashboard", ok=False, content_hash="h2"),
        photo(taxonomy, "d", "wheel", content_hash="h2"),  # its twin failed: not a duplicate
        photo(taxonomy, "e", "side_driver", banner=True),
        photo(taxonomy, "b", "boot", content_hash="h3"),  # b again: the last row wins
    ]
    tags = frame(rows)
    tags["position"] = [0, 1, 2, 3, None, 0]  # e has no position: last
    tags.loc[len(tags)] = {**photo(taxonomy, "x", "full_front"), "image_id": None, "position": 9}  # dropped
    p = listing_photos(tags, rules)
    assert list(p.image_id) == ["b", "a", "c", "d", "e"]  # b's last row (position 0) wins
    assert list(p.angle) == ["boot", "full_rear", None, "wheel", "side_driver"]
    assert p.position.tolist() == [0.0, 1.0, 2.0, 3.0, np.inf]
    assert p.ok.tolist() == [True, True, False, True, True]
    assert p.duplicate.tolist() == [False, False, False, False, False]  # b's hash is h3 now
    assert p.banner.tolist() == [False, False, False, False, True]
    assert np.isnan(p.quality[2]) and not np.isnan(p.quality[[0, 1, 3, 4]]).any()
    assert p.usable.tolist() == [True, True, False, True, True]
    assert p.error_code is not None and p.error_code[2] == "truncated"


def test_ties_on_position_go_by_image_id_and_duplicates_follow_that_order(
    taxonomy: Taxonomy, rules: ScoringRules
) -> None:
    tags = frame([photo(taxonomy, i, "full_front", content_hash="same") for i in ("z", "m", "a")])
    tags["position"] = 4
    p = listing_photos(tags, rules)
    assert list(p.image_id) == ["a", "m", "z"]
    assert p.duplicate.tolist() == [False, True, True]


def test_nulls_of_every_kind_read_as_none_and_false(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    tags = frame([photo(taxonomy, "i0", "full_front"), photo(taxonomy, "i1", "dashboard")])
    tags["banner_flag"] = pd.array([pd.NA, True], dtype="boolean")
    tags["plate_flag"] = [None, np.nan]
    tags["angle"] = [np.nan, "dashboard"]
    tags = tags.drop(columns=["error_code"])
    p = listing_photos(tags, rules)
    assert p.banner.tolist() == [False, True] and p.plate.tolist() == [False, False]
    assert p.angle[0] is None and p.error_code is None


def test_bad_input_is_named(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    with pytest.raises(TypeError, match="pandas DataFrame"):
        listing_photos([photo(taxonomy, "i0", "full_front")], rules)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lack column\(s\) \['angle', 'shot_group'\]"):
        listing_photos(frame([photo(taxonomy, "i0", "full_front")]).drop(columns=["angle", "shot_group"]), rules)
    tags = frame([photo(taxonomy, "i0", "full_front")])
    tags["banner_flag"] = ["yes"]
    with pytest.raises(TypeError):
        listing_photos(tags, rules)


def test_body_vote_sums_exactly_and_breaks_ties_alphabetically(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    # 0.1 + 0.2 + 0.3 summed left to right is 0.6000000000000001, above 0.3 + 0.3; the vote is a tie
    scores = {"w1": ("wagon", 0.1), "w2": ("wagon", 0.2), "w3": ("wagon", 0.3), "s1": ("sedan", 0.3),
              "s2": ("sedan", 0.3)}
    tags = frame([photo(taxonomy, i, "side_driver", body=b, body_score=s) for i, (b, s) in scores.items()])
    low = ScoringRules.from_config(load_config(overrides=["scoring.body_min_score=0"], environ={}).scoring, taxonomy)
    assert predicted_body_type(listing_photos(tags, low), low) == ("sedan", 0.5)


def test_prepared_photos_give_the_same_rows(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = [photo(taxonomy, f"i{k}", s, banner=k == 1, content_hash="h" if k in (2, 3) else None)
            for k, s in enumerate(("front_3q_driver", "full_front", "dashboard", "wheel", "side_passenger"))]
    tags = frame(rows)
    p = listing_photos(tags, rules)
    listing = {"listing_id": "L1", "body_type": "sedan"}
    assert completeness(listing, tags, taxonomy, rules, photos=p) == completeness(listing, tags, taxonomy, rules)
    assert hero_row(tags, taxonomy, rules, photos=p) == hero_row(tags, taxonomy, rules)
    assert pick_hero(tags, taxonomy, rules, photos=p) == pick_hero(tags, taxonomy, rules)
    assert gallery_order(tags, taxonomy, rules, photos=p) == gallery_order(tags, taxonomy, rules)
    assert gallery_order(tags, taxonomy, rules).duplicates_removed == ["i3"]
