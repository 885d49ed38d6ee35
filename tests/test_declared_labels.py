"""Body labels from the sellers' declared body types: which photos, and the rows they become (no Spark)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fleetvision.config import load_config
from fleetvision.declared_labels import (
    CONFLICTING,
    NOT_EXTERIOR,
    OVER_CAP,
    SOURCE,
    DeclaredSpec,
    declared_rows,
    exterior_share,
    select_declared,
)
from fleetvision.label_consensus import DUPLICATE, MISSING_FILE, NOT_IMAGE, UNKNOWN_LABEL
from fleetvision.label_rows import ImportReport
from fleetvision.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
EXTERIOR_TOP = [("side_driver", 0.5), ("front_3q_driver", 0.3), ("boot", 0.15)]  # 0.8 on exterior classes


def _tag(
    image_id: str,
    listing_id: str,
    declared: str | None,
    *,
    top=EXTERIOR_TOP,
    group="exterior",
    status="ok",
    content_hash: str | None = None,
) -> dict:
    return {
        "image_id": image_id,
        "listing_id": listing_id,
        "content_hash": content_hash or f"h-{image_id}",
        "decode_status": status,
        "shot_group": group,
        "angle_top3": [{"label": lab, "score": s} for lab, s in top],
        "declared_body_type": declared,
    }


def _reasons(dropped) -> dict[str, str]:
    return {d.image: d.reason for d in dropped}


def _jpeg(seed: int, size=(90, 60)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_exterior_share_sums_the_top3_on_exterior_classes() -> None:
    exterior = frozenset(TAXONOMY.in_group("exterior"))
    assert "boot" not in exterior and "side_driver" in exterior
    assert exterior_share([{"label": "side_driver", "score": 0.5}, {"label": "boot", "score": 0.4}], exterior) == 0.5
    assert exterior_share([("full_rear", 0.25), ("rear_3q_passenger", 0.5), None], exterior) == 0.75
    assert exterior_share(None, exterior) == 0.0
    assert exterior_share([{"label": "full_front", "score": None}], exterior) == 0.0


def test_only_sure_exterior_photos_with_a_known_declared_type_are_picked() -> None:
    tags = pd.DataFrame(
        [
            _tag("a1", "A", "sedan"),
            _tag("a2", "A", "sedan", top=[("side_driver", 0.5), ("boot", 0.3), ("dashboard", 0.2)]),  # 0.5
            _tag("a3", "A", "sedan", group="interior", top=[("dashboard", 0.9)]),
            _tag("a4", "A", "sedan", status="error"),
            _tag("b1", "B", " SUV "),  # spelled loosely: still suv
            _tag("c1", "C", "spaceship"),
            _tag("d1", "D", None),
        ]
    )
    picked, dropped = select_declared(tags, TAXONOMY, DeclaredSpec(min_exterior=0.8))
    assert picked[["image_id", "listing_id", "label"]].values.tolist() == [["a1", "A", "sedan"], ["b1", "B", "suv"]]
    assert picked["exterior"].tolist() == pytest.approx([0.8, 0.8])
    assert _reasons(dropped) == {
        "a2": NOT_EXTERIOR,
        "a3": NOT_EXTERIOR,
        "a4": NOT_EXTERIOR,
        "c1": UNKNOWN_LABEL,
        "d1": UNKNOWN_LABEL,
    }
    assert "spaceship" in next(d.detail for d in dropped if d.image == "c1")
    # a looser threshold takes the unsure exterior photo too; never the interior or the failed decode
    loose, _ = select_declared(tags, TAXONOMY, DeclaredSpec(min_exterior=0.5))
    assert set(loose["image_id"]) == {"a1", "a2", "b1"}


def test_copies_of_one_photo_count_once_and_conflicting_declarations_drop_them_all() -> None:
    tags = pd.DataFrame(
        [
            _tag("x2", "X", "hatch", content_hash="same"),
            _tag("x1", "Y", "hatch", content_hash="same"),  # the same photo in another hatch listing
            _tag("z1", "Z", "hatch", content_hash="dealer-stock"),
            _tag("z2", "W", "wagon", content_hash="dealer-stock"),  # the same photo declared as a wagon
        ]
    )
    picked, dropped = select_declared(tags, TAXONOMY, DeclaredSpec())
    assert picked["image_id"].tolist() == ["x1"]  # the lowest image_id of the copies
    assert _reasons(dropped) == {"x2": DUPLICATE, "z1": CONFLICTING, "z2": CONFLICTING}


def test_caps_per_listing_and_per_type_keep_the_surest_photos_and_whole_listings() -> None:
    rows = []
    for listing in ("L1", "L2", "L3", "L4"):
        for k, share in enumerate((0.95, 0.85, 0.99)):
            top = [("side_driver", share), ("boot", 1 - share)]
            rows.append(_tag(f"{listing}-{k}", listing, "ute", top=top))
    rows.append(_tag("V-0", "V", "van"))
    tags = pd.DataFrame(rows)
    spec = DeclaredSpec(per_listing=2, per_type=5, seed=3)
    picked, dropped = select_declared(tags, TAXONOMY, spec)
    utes = picked[picked["label"] == "ute"]
    # two per listing (the most surely exterior: k=2 then k=0), listing by listing up to 5 photos: 2 + 2 + 1
    assert len(utes) == 5
    per_listing = utes.groupby("listing_id")["image_id"].apply(sorted).to_dict()
    full = [lst for lst, ids in per_listing.items() if len(ids) == 2]
    assert len(full) == 2 and all(per_listing[lst] == [f"{lst}-0", f"{lst}-2"] for lst in full)
    assert picked[picked["label"] == "van"]["image_id"].tolist() == ["V-0"]  # a rare type is not crowded out
    reasons = _reasons(dropped)
    assert all(reasons[f"{lst}-1"] == OVER_CAP for lst in ("L1", "L2", "L3", "L4"))
    assert sum(1 for r in reasons.values() if r == OVER_CAP) == 4 + 3
    # the draw is stable: the same listings come out of the same call
    again, _ = select_declared(tags.sample(frac=1.0, random_state=1), TAXONOMY, spec)
    assert again["image_id"].tolist() == picked["image_id"].tolist()
    # no caps (None): every photo that passed the filters, none dropped as over a cap
    uncapped, dropped = select_declared(tags, TAXONOMY, DeclaredSpec(per_listing=None, per_type=None))
    assert len(uncapped) == 4 * 3 + 1 and OVER_CAP not in _reasons(dropped).values()
    only_listing, _ = select_declared(tags, TAXONOMY, DeclaredSpec(per_listing=None, per_type=5))
    assert len(only_listing[only_listing["label"] == "ute"]) == 5


def test_spec_and_columns_are_checked() -> None:
    with pytest.raises(ValueError, match="min_exterior"):
        DeclaredSpec(min_exterior=1.5)
    with pytest.raises(ValueError, match="per_type"):
        DeclaredSpec(per_type=0)
    with pytest.raises(ValueError, match="declared_body_type"):
        select_declared(
            pd.DataFrame([_tag("a", "A", "sedan")]).drop(columns="declared_body_type"), TAXONOMY, DeclaredSpec()
        )


def test_rows_carry_the_body_label_and_share_a_split_per_listing(tmp_path) -> None:
    config = load_config(overrides=["models.import_max_side=64", "models.import_eval_fraction=0.5"], environ={})
    picked = pd.DataFrame(
        {
            "image_id": ["p1", "p2", "p3", "p4", "p5"],
            "listing_id": ["A", "A", "B", "B", "C"],
            "label": ["sedan", "sedan", "van", "van", "coupe"],
            "exterior": [0.9] * 5,
        }
    )
    truncated = _jpeg(3, size=(200, 150))[:300]  # a real JPEG cut short
    contents = {"p1": _jpeg(1), "p2": _jpeg(2, size=(300, 100)), "p3": truncated, "p4": _jpeg(4), "p5": None}
    report = ImportReport(task="body", dataset="listings:test", source=SOURCE)
    rows = declared_rows(picked, contents, TAXONOMY, config, report)
    assert [r["body_type"] for r in rows] == ["sedan", "sedan", "van"]
    assert {d.image: d.reason for d in report.dropped} == {"p3": NOT_IMAGE, "p5": MISSING_FILE}
    assert all(r["source"] == SOURCE and r["dataset"] == "listings:test" for r in rows)
    assert all(r["body_index"] == TAXONOMY.body_index(r["body_type"]) for r in rows)
    assert all(r["angle_allowed"] == [] and r["angle_index"] == -1 and r["has_banner"] == -1 for r in rows)
    by_id = dict(zip(["p1", "p2", "p4"], rows, strict=True))
    assert by_id["p1"]["split"] == by_id["p2"]["split"]  # one car, one side of the split
    assert max(Image.open(io.BytesIO(bytes(by_id["p2"]["content"]))).size) <= 64  # shrunk like any import
    assert len({r["sample_id"] for r in rows}) == 3
    assert report.accepted == 3 and report.by_label == {"sedan": 2, "van": 1} and sum(report.by_split.values()) == 3
