"""The declared-type audit (pure): a uniform sample of listings, and the error rate from labellers' answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleetvision.declared_audit import AUDIT_REASON, audit_estimate, audit_sample, wilson_interval
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def _picked(n_listings: int, rare_every: int = 10, photos: int = 3) -> pd.DataFrame:
    rows = []
    for i in range(n_listings):
        for k in range(photos):
            rows.append({"image_id": f"L{i:04d}/p{k}", "listing_id": f"L{i:04d}",
                         "label": "van" if i % rare_every == 0 else "sedan", "exterior": 0.8 + 0.05 * ((k + i) % 3)})
    return pd.DataFrame(rows)


def test_audit_sample_draws_listings_uniformly_one_photo_each() -> None:
    picked = _picked(1000)  # 10% vans
    sample = audit_sample(picked, 200)
    assert len(sample) == 200 and sample["listing_id"].is_unique
    assert list(sample["rank"]) == list(range(1, 201))
    assert set(sample["reason"]) == {AUDIT_REASON} and (sample["suggested_label"] == sample["label"]).all()
    # each listing's most surely exterior photo
    best = picked.sort_values("exterior", ascending=False).drop_duplicates("listing_id").set_index("listing_id")
    assert (sample.set_index("listing_id")["exterior"] == best.loc[sample["listing_id"], "exterior"]).all()
    # uniform over listings: the rare type's share is near 10%, not over- or under-sampled
    assert 0.05 < (sample["label"] == "van").mean() < 0.16
    # not the first listings by id: spread over the whole range
    numbers = sample["listing_id"].str[1:].astype(int)
    assert numbers.min() < 100 and numbers.max() > 900
    # stable; another seed, another sample; fewer listings than asked: all of them
    pd.testing.assert_frame_equal(audit_sample(picked, 200), sample)
    assert set(audit_sample(picked, 200, seed=1)["listing_id"]) != set(sample["listing_id"])
    assert len(audit_sample(_picked(7), 50)) == 7
    assert audit_sample(picked.iloc[:0], 5).empty


def test_audit_sample_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="count"):
        audit_sample(_picked(3), 0)
    with pytest.raises(ValueError, match="exterior"):
        audit_sample(_picked(3).drop(columns="exterior"), 2)


def test_wilson_interval() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # it covers the true rate about 95% of the time
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        k = int(rng.binomial(60, 0.08))
        low, high = wilson_interval(k, 60)
        hits += low <= 0.08 <= high
    assert 0.92 < hits / 2000 < 0.99


def _row(listing: str, declared: str, label: str, reason: str = AUDIT_REASON) -> dict[str, str]:
    return {"listing_id": listing, "suggested_label": declared, "label": label, "reason": reason}


def test_audit_estimate_counts_listings_by_the_labellers_majority() -> None:
    rows = [
        _row("A", "sedan", "sedan"),
        _row("B", "sedan", "Hatch"), _row("B", "sedan", "hatch"), _row("B", "sedan", "sedan"),  # 2 to 1: wrong
        _row("C", "SUV", "suv"), _row("C", "SUV", "unclear"),  # right (an unclear vote does not count)
        _row("D", "wagon", "sedan"), _row("D", "wagon", "wagon"),  # a tie: undecided
        _row("E", "ute", ""), _row("E", "ute", "hatchbak"),  # nothing usable: undecided, one typo ignored
        _row("F", "van", "ute", reason="low_confidence"),  # not an audit row
        _row("G", "coupe", "sedan"),
    ]
    estimate = audit_estimate(rows, TAXONOMY)
    assert (estimate.audited, estimate.wrong, estimate.undecided) == (3 + 1, 2, 2)
    assert estimate.rate == pytest.approx(0.5)
    assert estimate.wrong_listings == ("B", "G")
    assert estimate.corrections == {"B": ("sedan", "hatch"), "G": ("coupe", "sedan")}
    assert estimate.labels_ignored == 1 and estimate.ignored == ("hatchbak",)
    assert (estimate.low, estimate.high) == pytest.approx(wilson_interval(2, 4))
    assert "2 of 4 listings" in estimate.summary()
    assert estimate.to_dict()["wrong_listings"] == ["B", "G"]
    nothing = audit_estimate([_row("A", "sedan", "unclear")], TAXONOMY)
    assert nothing.rate is None and nothing.undecided == 1 and "no listing decided" in nothing.summary()


def test_audit_estimate_refuses_rows_that_are_not_an_audit() -> None:
    with pytest.raises(ValueError, match="not a body type"):
        audit_estimate([_row("A", "boot", "sedan")], TAXONOMY)
    with pytest.raises(ValueError, match="without listing_id"):
        audit_estimate([{"suggested_label": "sedan", "label": "sedan"}], TAXONOMY)


def test_audit_sample_shows_each_listing_from_its_profile_where_the_tags_say_where() -> None:
    from fleetvision.declared_audit import with_profile

    picked = pd.DataFrame([
        {"image_id": "a/front", "listing_id": "a", "label": "hatch", "exterior": 0.99},
        {"image_id": "a/side", "listing_id": "a", "label": "hatch", "exterior": 0.90},
        {"image_id": "b/rear", "listing_id": "b", "label": "sedan", "exterior": 0.95},
    ])
    tags = pd.DataFrame([
        {"image_id": "a/front", "angle_top3": [("full_front", 0.9), ("front_3q_driver", 0.09), ("boot", 0.01)]},
        {"image_id": "a/side", "angle_top3": [{"label": "side_driver", "score": 0.6},
                                              {"label": "rear_3q_driver", "score": 0.3}, None]},
        {"image_id": "b/rear", "angle_top3": None},
    ])
    profiled = with_profile(picked, tags, TAXONOMY)
    assert profiled["profile"].tolist() == pytest.approx([0.09, 0.9, 0.0])
    sample = audit_sample(profiled, 5).set_index("listing_id")
    assert sample.loc["a", "image_id"] == "a/side" and sample.loc["b", "image_id"] == "b/rear"
    # without the column, the most surely exterior photo; the listings drawn are the same either way
    plain = audit_sample(picked, 5).set_index("listing_id")
    assert plain.loc["a", "image_id"] == "a/front" and list(plain.index) == list(sample.index)


def test_a_listing_found_wrong_takes_the_labellers_type_on_every_photo() -> None:
    from fleetvision.labels_import import corrected_by_audit

    candidates = pd.DataFrame({"image_id": ["a1", "a2", "b1", "c1"], "listing_id": ["A", "A", "B", "C"],
                               "declared_body_type": ["Sedan", "Sedan", "wagon", None]})
    estimate = audit_estimate([_row("A", "sedan", "hatch"), _row("B", "wagon", "wagon")], TAXONOMY)
    fixed = corrected_by_audit(candidates, estimate)
    assert fixed["declared_body_type"].tolist() == ["hatch", "hatch", "wagon", None]
    assert candidates["declared_body_type"].tolist() == ["Sedan", "Sedan", "wagon", None]  # a copy
    nothing = audit_estimate([_row("B", "wagon", "wagon")], TAXONOMY)
    assert corrected_by_audit(candidates, nothing) is candidates
