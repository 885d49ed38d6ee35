"""Lamp close-ups cut from real head-on photos beside their plate, and their report (pure; no Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleetvision.models.real_lamp_crops import (
    CROP_COLUMNS,
    CROP_HALF_M,
    LAMP_OFFSET_M,
    LAMP_RISE_M,
    MIN_CROP_PX,
    PLATE_WIDTH_M,
    detail_operating_points,
    lamp_crop_boxes,
    lamp_crop_report,
    plate_operating_points,
)


def _truth(rows: list[tuple[str, int, int, float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["region", "width", "height", "plate_x", "plate_y", "plate_w", "plate_h"])


def test_lamps_sit_either_side_of_the_plate_at_its_scale_and_never_over_it() -> None:
    # an EU rear: a 520 mm plate 260 px wide is 500 px a metre
    truth = _truth([("eu", 2000, 1400, 870.0, 900.0, 260.0, 55.0)])
    boxes = lamp_crop_boxes(truth, ["full_rear"])
    assert list(boxes.columns) == list(CROP_COLUMNS) and len(boxes) == 2
    scale = 260.0 / PLATE_WIDTH_M["eu"]
    cx, cy = 870.0 + 130.0, 900.0 + 27.5 - LAMP_RISE_M["full_rear"] * scale
    for row in boxes.itertuples(index=False):
        assert row.kind == "tail_light" and row.photo == 0
        assert (row.x0 + row.x1) / 2 == pytest.approx(cx + row.side * LAMP_OFFSET_M * scale, abs=1)
        assert (row.y0 + row.y1) / 2 == pytest.approx(cy, abs=1)
        assert row.x1 - row.x0 == pytest.approx(2 * CROP_HALF_M[0] * scale, abs=1)
        # the crop stays clear of the plate's box
        assert row.x1 < 870.0 or row.x0 > 870.0 + 260.0
    assert sorted(boxes["side"]) == [-1, 1]
    # a Brazilian plate is narrower, so the same pixel width means a nearer car: wider crops
    br = lamp_crop_boxes(_truth([("br", 2000, 1400, 870.0, 900.0, 260.0, 85.0)]), ["full_front"])
    assert set(br["kind"]) == {"headlight"}
    assert (br["x1"] - br["x0"]).iloc[0] > (boxes["x1"] - boxes["x0"]).iloc[0]


def test_only_head_on_views_inside_the_frame_and_close_enough_give_crops() -> None:
    truth = _truth([
        ("eu", 2000, 1400, 870.0, 900.0, 260.0, 55.0),   # a rear 3/4: no crop
        ("eu", 2000, 1400, 870.0, 900.0, 260.0, 55.0),   # unlabelled: no crop
        ("eu", 2000, 1400, 10.0, 900.0, 260.0, 55.0),    # plate at the photo's left edge: only the right lamp
        ("eu", 2000, 1400, 990.0, 900.0, 40.0, 9.0),     # a far car: the crop would be under MIN_CROP_PX
    ])
    boxes = lamp_crop_boxes(truth, ["rear_3q", None, "full_rear", "full_rear"])
    assert boxes["photo"].tolist() == [2] and boxes["side"].tolist() == [1]
    assert (boxes["x1"] - boxes["x0"] >= MIN_CROP_PX).all()
    assert lamp_crop_boxes(truth.iloc[:2], ["side", None]).empty
    with pytest.raises(ValueError, match="view labels"):
        lamp_crop_boxes(truth, ["full_rear"])
    with pytest.raises(ValueError, match="region"):
        lamp_crop_boxes(_truth([("us", 10, 10, 1.0, 1.0, 1.0, 1.0)]), ["full_rear"])


def test_the_report_counts_groups_own_class_and_plate_flags_by_kind() -> None:
    kinds = ["tail_light", "tail_light", "tail_light", "headlight"]
    groups = ["exterior", "detail", "detail", None]
    classes = ["full_rear", "tail_light", "headlight", None]
    report = lamp_crop_report(kinds, groups, classes, np.array([True, False, False, False]))
    assert report["all"]["n"] == 4
    tail = report["tail_light"]
    assert tail["n"] == 3 and tail["shot_group"] == {"exterior": 0.3333, "interior": 0.0, "detail": 0.6667}
    assert tail["exact_class"] == 0.3333 and tail["plate_flagged"] == 0.3333
    assert tail["top_classes"]["full_rear"] == 1
    head = report["headlight"]  # not decoded: counted, in no group
    assert head["shot_group"]["detail"] == 0.0 and head["top_classes"] == {"(not decoded)": 1}
    with pytest.raises(ValueError, match="lengths"):
        lamp_crop_report(kinds, groups, classes, [True])


def test_the_plate_operating_curve_reads_recall_and_false_plates_by_threshold() -> None:
    # ten real plates scored 0.05..0.95, IoU 0.6 on the odd ones; ten lamp crops scored 0.0..0.9 (>= 0.5: five)
    scores = np.linspace(0.05, 0.95, 10)
    ious = np.where(np.arange(10) % 2 == 1, 0.6, np.nan)
    crops = np.linspace(0.0, 0.9, 10)
    out = plate_operating_points(scores, ious, crops, thresholds=(0.5,), budgets=(0.0, 0.1, 0.25))
    assert out["n_photos"] == 10 and out["n_crops"] == 10
    assert out["thresholds"] == [{"threshold": 0.5, "recall": 0.5, "found_and_iou50": 0.3, "lamp_flagged": 0.5}]
    # no false plate at all: only a threshold above the top crop (0.9), where one plate (0.95) is still found
    assert out["at_lamp_flagged"]["0"]["recall"] == 0.1 and out["at_lamp_flagged"]["0"]["lamp_flagged"] == 0.0
    # one crop in ten may be flagged: just above the second crop from the top (0.8); plates 0.85 and 0.95 found
    pt = out["at_lamp_flagged"]["0.1"]
    assert pt["lamp_flagged"] == 0.1 and pt["recall"] == 0.2 and 0.8 < pt["threshold"] <= 0.81
    # the budget is a ceiling, never exceeded: 0.25 of ten crops allows two
    assert out["at_lamp_flagged"]["0.25"]["lamp_flagged"] == 0.2
    # an undecoded photo is a plate not found; an undecoded crop is not flagged
    nan_out = plate_operating_points([np.nan, 0.9], [np.nan, 0.7], [np.nan, 0.6], thresholds=(0.5,))
    assert nan_out["thresholds"][0]["recall"] == 0.5 and nan_out["thresholds"][0]["lamp_flagged"] == 0.5
    with pytest.raises(ValueError, match="lengths differ"):
        plate_operating_points([0.5], [0.5, 0.5], [0.1])
    with pytest.raises(ValueError, match="nothing to score"):
        plate_operating_points([0.5], [0.5], [])


def test_the_detail_operating_curve_trades_exteriors_against_close_ups_called_detail() -> None:
    groups = ["exterior", "exterior", "interior", "detail"]
    # photos: sure exteriors, and one that leans to detail; crops: one sure detail, two that lean exterior
    photos = np.array([[0.9, 0.05, 0.03, 0.02], [0.8, 0.1, 0.05, 0.05], [0.45, 0.05, 0.05, 0.45 - 1e-3]])
    crops = np.array([[0.1, 0.0, 0.0, 0.9], [0.5, 0.1, 0.0, 0.4], [0.7, 0.1, 0.0, 0.2]])
    out = detail_operating_points(photos, crops, groups, shifts=(-1.0, 0.0, 0.3, 1.5), floors=(1.0, 0.6, 0.99))
    assert out["n_photos"] == 3 and out["n_crops"] == 3
    assert out["at_shift_0"] == {"shift": 0.0, "exterior_rate": 1.0, "crops_called_detail": round(1 / 3, 4)}
    by = {p["shift"]: p for p in out["by_shift"]}
    assert by[0.3]["crops_called_detail"] == round(2 / 3, 4) and by[0.3]["exterior_rate"] == round(2 / 3, 4)
    assert by[1.5]["crops_called_detail"] == 1.0 and by[-1.0]["exterior_rate"] == 1.0
    # keeping every photo exterior allows no shift beyond 0; giving up the one leaning photo (floor 0.6)
    # allows the largest shift, which calls every crop a detail
    assert out["at_exterior_rate"]["1"]["crops_called_detail"] == round(1 / 3, 4)
    assert out["at_exterior_rate"]["0.99"] == out["at_exterior_rate"]["1"]
    assert out["at_exterior_rate"]["0.6"] == by[1.5]
    assert detail_operating_points(photos, crops, groups, shifts=(1.5,), floors=(1.0,))["at_exterior_rate"]["1"] is None
    with pytest.raises(ValueError, match="do not match"):
        detail_operating_points(photos[:, :3], crops, groups)
    with pytest.raises(ValueError, match="nothing to score"):
        detail_operating_points(photos, crops[:0], groups)
