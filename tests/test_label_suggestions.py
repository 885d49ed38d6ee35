"""Which photos ``fleetvision suggest-labels`` picks (pure, no Spark), and coarse angle labels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fleetvision.config import load_config
from fleetvision.label_consensus import (
    Vote,
    allowed_angle_classes,
    angle_label_sets,
    consensus,
    label_vocabulary,
    read_votes,
)
from fleetvision.label_rows import ImportRequest, plan_import
from fleetvision.label_suggestions import (
    SuggestSpec,
    export_jpeg,
    farthest_point_order,
    photo_file_name,
    score_photos,
    select_photos,
)
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def _tag(image_id: str, listing: str, top: list[tuple[str, float]], **kw) -> dict:
    row = {
        "image_id": image_id,
        "listing_id": listing,
        "angle": top[0][0],
        "angle_score": top[0][1],
        "angle_top3": [{"label": lab, "score": s} for lab, s in top],
        "shot_group": "exterior",
        "banner_score": 0.02,
        "plate_score": 0.9,
        "plate_flag": True,
        "body_type": "sedan",
        "body_score": 0.95,
        "declared_body_type": "sedan",
    }
    row.update(kw)
    return row


SURE = [("full_front", 0.97), ("full_rear", 0.02), ("wheel", 0.01)]
UNSURE = [("side_driver", 0.40), ("side_passenger", 0.38), ("full_front", 0.1)]


# ------------------------------------------------------------------------------------- coarse labels
def test_angle_label_sets_cover_classes_groups_and_views() -> None:
    sets = angle_label_sets(TAXONOMY)
    assert sets["boot"] == (TAXONOMY.index("boot"),)
    assert sets["interior"] == tuple(sorted(TAXONOMY.index(n) for n in TAXONOMY.in_group("interior")))
    assert sets["side"] == tuple(sorted((TAXONOMY.index("side_driver"), TAXONOMY.index("side_passenger"))))
    assert set(sets) >= {"front_3q", "rear_3q", "exterior", "detail"}
    assert allowed_angle_classes("Front 3Q", TAXONOMY) == sets["front_3q"]
    assert allowed_angle_classes("suv", TAXONOMY) == ()  # a body type alone: no shot label
    with pytest.raises(KeyError, match="unknown angle label 'spaceship'"):
        allowed_angle_classes("spaceship", TAXONOMY)
    vocab = label_vocabulary("angle", TAXONOMY)
    assert vocab["interior"] == "interior" and vocab["suv"] == "suv" and vocab["side_driver"] == "side_driver"


def _photo(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, "JPEG")


def test_coarse_labels_become_allowed_sets_in_rows(tmp_path: Path) -> None:
    root = tmp_path / "labelled"
    for i, label in enumerate(("interior", "side", "suv", "boot")):
        _photo(root / label / f"p{i}.jpg", i)
    cfg = load_config(overrides=[f"paths.reports={tmp_path / 'r'}"], environ={})
    rows, report = plan_import(ImportRequest(folder=root, task="angle"), cfg, TAXONOMY)
    by = {r["angle"] or r["body_type"]: r for r in rows}
    assert report.accepted == 4
    assert by["interior"]["angle_index"] == -1
    assert by["interior"]["angle_allowed"] == list(angle_label_sets(TAXONOMY)["interior"])
    assert by["side"]["angle_allowed"] == list(angle_label_sets(TAXONOMY)["side"])
    boot = TAXONOMY.index("boot")
    assert (by["boot"]["angle_index"], by["boot"]["angle_allowed"]) == (boot, [boot])
    suv = by["suv"]
    assert (suv["angle"], suv["angle_index"], suv["angle_allowed"]) == (None, -1, [])
    assert suv["body_index"] == TAXONOMY.body_index("suv")


def test_several_labellers_csvs_pool_into_one_consensus(tmp_path: Path) -> None:
    header = "image_id,file,uri,listing_id,suggested_label,reason,labeller,label\n"
    for name, label in (("alice", "interior"), ("bob", "Interior"), ("carol", "boot")):
        (tmp_path / f"{name}.csv").write_text(
            header + f"i1,photos/i1.jpg,,L1,boot,why,,{label}\n" + "i2,photos/i2.jpg,,L1,boot,why,,\n"
        )
    votes = [v for n in ("alice", "bob", "carol") for v in read_votes(tmp_path / f"{n}.csv")]
    assert votes[0] == Vote("photos/i1.jpg", "alice", "interior") and len(votes) == 3  # blank labels: no vote
    result = consensus(votes, label_vocabulary("angle", TAXONOMY), min_votes=2)
    assert result.accepted == {"photos/i1.jpg": ("interior", 2)}


# --------------------------------------------------------------------------------------- selection
def test_uncertain_and_disagreeing_photos_come_first() -> None:
    tags = pd.DataFrame(
        [
            _tag("a", "L1", SURE),
            _tag("b", "L2", UNSURE),
            _tag("c", "L3", SURE, body_type="suv", declared_body_type="sedan"),
            _tag("d", "L4", [("dashboard", 0.95), ("boot", 0.03), ("wheel", 0.01)], shot_group="interior"),
        ]
    )
    scored = score_photos(tags).set_index("image_id")
    assert scored.loc["b", "uncertainty"] > scored.loc["a", "uncertainty"]
    assert scored.loc["c", "disagreements"] == 1 and "listing says sedan" in scored.loc["c", "reason"]
    assert scored.loc["d", "disagreements"] == 1 and "plate flagged on a interior shot" in scored.loc["d", "reason"]
    assert "side_driver 0.40 vs side_passenger 0.38" in scored.loc["b", "reason"]
    picked = select_photos(tags, SuggestSpec(count=2))
    assert set(picked["image_id"]) <= {"b", "c", "d"} and "a" not in set(picked["image_id"])
    assert list(picked["rank"]) == [1, 2]
    assert picked.iloc[0]["suggested_label"] == picked.iloc[0]["angle"]


def test_one_listing_does_not_fill_the_batch() -> None:
    tags = pd.DataFrame(
        [_tag(f"x{i}", "BIG", UNSURE) for i in range(10)] + [_tag(f"y{i}", f"L{i}", SURE) for i in range(5)]
    )
    picked = select_photos(tags, SuggestSpec(count=5, per_listing=2))
    assert len(picked) == 5 and (picked["listing_id"] == "BIG").sum() == 2


def test_diversity_prefers_a_different_photo_over_a_near_copy() -> None:
    feats = np.array([[0.0, 0.0], [0.0, 0.01], [1.0, 1.0]])
    priority = np.array([2.0, 1.9, 1.5])
    assert farthest_point_order(feats, priority, ["a", "b", "c"], 2, per_group=5) == [0, 2]
    assert farthest_point_order(feats, priority, ["a", "a", "a"], 3, per_group=1) == [0]
    assert farthest_point_order(feats[:0], priority[:0], [], 3, per_group=1) == []


def test_selection_is_deterministic_and_validates_its_spec() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(40):
        p = np.sort(rng.dirichlet(np.ones(4)))[::-1]
        rows.append(_tag(f"i{i:02d}", f"L{i % 9}", list(zip(("full_front", "side_driver", "boot"), p[:3]))))
    tags = pd.DataFrame(rows)
    first = select_photos(tags, SuggestSpec(count=8))
    again = select_photos(tags.sample(frac=1.0, random_state=1), SuggestSpec(count=8))
    assert list(first["image_id"]) == list(again["image_id"])
    assert select_photos(tags.iloc[:0], SuggestSpec(count=3)).empty
    with pytest.raises(ValueError, match="count must be >= 1"):
        SuggestSpec(count=0)


def test_export_keeps_jpegs_and_reencodes_the_rest() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    jpeg, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(arr).save(jpeg, "JPEG")
    Image.fromarray(arr).save(png, "PNG")
    assert export_jpeg(jpeg.getvalue()) == jpeg.getvalue()
    out = export_jpeg(png.getvalue())
    assert out is not None and Image.open(io.BytesIO(out)).format == "JPEG"
    assert export_jpeg(b"not a photo") is None
    assert photo_file_name("a/b c:1") == "a_b_c_1.jpg" and photo_file_name("../..") == "photo.jpg"
