"""The listing stage's batch function, without Spark: listings split across Arrow batches (tier 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from tag_rows import frame, photo

from fleetvision.scoring import ScoringRules
from fleetvision.scoring.listing_stage import LISTING_RESULT_SCHEMA, listing_result_fn, listing_results_fn
from fleetvision.taxonomy import Taxonomy

WHEN = datetime(2026, 12, 5, tzinfo=UTC)
SHOTS = ("front_3q_driver", "full_rear", "dashboard", "wheel", "side_passenger", "boot")


def joined_rows(taxonomy: Taxonomy) -> pd.DataFrame:
    """Five listings' rows sorted by listing, as the stage hands them over (one has no photos)."""
    parts = []
    for i, n in enumerate((3, 1, 6, 0, 4)):
        lid = f"L{i}"
        if n == 0:
            tags = frame([photo(taxonomy, "x", "wheel", listing_id=lid)]).assign(image_id=None)
        else:
            tags = frame([photo(taxonomy, f"{lid}-{k}", SHOTS[k % len(SHOTS)], listing_id=lid, banner=k == 2,
                                ok=k != 3) for k in range(n)])
        parts.append(tags.assign(listing_body_type="sedan", listing_seller_type="dealer"))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("batch_rows", [1, 2, 5, 7, 100])
def test_batches_give_one_row_per_listing_as_the_group_function_does(
    taxonomy: Taxonomy, rules: ScoringRules, batch_rows: int
) -> None:
    rows = joined_rows(taxonomy)
    per_listing = pd.concat(
        [listing_result_fn(taxonomy, rules, "r", WHEN)(g) for _, g in rows.groupby("listing_id", sort=True)],
        ignore_index=True,
    )
    batches = [rows.iloc[i : i + batch_rows] for i in range(0, len(rows), batch_rows)]
    got = pd.concat(list(listing_results_fn(taxonomy, rules, "r", WHEN)(iter(batches))), ignore_index=True)
    assert got["listing_id"].tolist() == ["L0", "L1", "L2", "L3", "L4"]
    assert list(got.columns) == [f.name for f in LISTING_RESULT_SCHEMA.fields]
    pd.testing.assert_frame_equal(got, per_listing)
    assert got.loc[3, "n_photos"] == 0 and got.loc[2, "n_failed"] == 1


def test_rows_out_of_order_are_refused(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    rows = joined_rows(taxonomy)
    shuffled = pd.concat([rows[rows.listing_id == "L2"], rows[rows.listing_id != "L2"]], ignore_index=True)
    with pytest.raises(ValueError, match="not sorted by listing_id: 'L0' came after 'L2'"):
        list(listing_results_fn(taxonomy, rules, "r", WHEN)(iter([shuffled])))
    split = pd.concat([rows[rows.listing_id == "L0"].iloc[:1], rows[rows.listing_id == "L1"],
                       rows[rows.listing_id == "L0"].iloc[1:]], ignore_index=True)
    with pytest.raises(ValueError, match="'L0' came after 'L1'"):
        list(listing_results_fn(taxonomy, rules, "r", WHEN)(iter([split])))


def test_no_rows_no_results(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    empty = joined_rows(taxonomy).iloc[:0]
    assert list(listing_results_fn(taxonomy, rules, "r", WHEN)(iter([empty, empty]))) == []
