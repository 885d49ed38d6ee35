"""Model outputs -> image_tags prediction fields, and the checks before Arrow (tier 1, no Spark session)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tag_rows import spark_arrow

from fleetvision.decode import decode_batch
from fleetvision.scoring import ScoringRules
from fleetvision.scoring.tags import MODEL_COLUMNS, PREDICTION_COLUMNS, prediction_frame, tag_rows, validate_outputs
from fleetvision.taxonomy import Taxonomy

S = 32


def one_hot_outputs(
    taxonomy: Taxonomy,
    angles: list[str],
    bodies: list[str],
    banner: list[float],
    plate: list[float],
    boxes: list[list[float]] | None = None,
) -> dict[str, np.ndarray]:
    """Stand-in model outputs: 0.7 on the named class, the rest spread evenly (rows sum to 1)."""
    n = len(angles)
    c, b = taxonomy.num_classes, len(taxonomy.body_types)
    angle = np.full((n, c), 0.3 / (c - 1), np.float32)
    body = np.full((n, b), 0.4 / (b - 1), np.float32)
    for i, (a, bt) in enumerate(zip(angles, bodies)):
        angle[i, taxonomy.index(a)] = 0.7
        body[i, taxonomy.body_index(bt)] = 0.6
    return {
        "angle": angle,
        "banner": np.array(banner, np.float32)[:, None],
        "plate_presence": np.array(plate, np.float32)[:, None],
        "plate_box": np.array(boxes if boxes is not None else [[0.4, 0.6, 0.6, 0.7]] * n, np.float32),
        "body": body,
    }


# ---------------------------------------------------------------------------------------- tag_rows
def test_tag_rows_labels_scores_top3_and_groups(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    out = one_hot_outputs(taxonomy, ["front_3q_driver", "boot"], ["suv", "suv"], [0.9, 0.1], [0.8, 0.2])
    out["angle"][0] = 0.0
    out["angle"][0, taxonomy.index("front_3q_driver")] = 0.5
    out["angle"][0, taxonomy.index("full_front")] = 0.3
    out["angle"][0, taxonomy.index("side_driver")] = 0.2
    df = tag_rows(out, taxonomy, rules)
    assert list(df.columns) == list(MODEL_COLUMNS) and len(df) == 2
    first = df.iloc[0]
    assert first["angle"] == "front_3q_driver" and first["shot_group"] == "exterior"
    assert first["angle_score"] == pytest.approx(0.5)
    assert [t["label"] for t in first["angle_top3"]] == ["front_3q_driver", "full_front", "side_driver"]
    assert [t["score"] for t in first["angle_top3"]] == pytest.approx([0.5, 0.3, 0.2])
    assert df.iloc[1]["angle"] == "boot" and df.iloc[1]["shot_group"] == "interior"


def test_thresholds_flags_boxes_and_body_only_for_exterior(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    r = rules.replace(banner_threshold=0.5, plate_threshold=0.6)
    out = one_hot_outputs(
        taxonomy,
        ["full_front", "dashboard", "full_rear"],
        ["sedan", "sedan", "ute"],
        [0.5, 0.49, 0.0],
        [0.6, 0.9, 0.59],
    )
    df = tag_rows(out, taxonomy, r)
    assert df["banner_flag"].tolist() == [True, False, False]  # at the threshold counts
    assert df["plate_flag"].tolist() == [True, True, False]
    assert df["plate_box"].iloc[0] == pytest.approx([0.4, 0.6, 0.6, 0.7])
    assert df["plate_box"].iloc[2] is None  # no plate, no box
    assert df["body_type"].tolist() == ["sedan", None, "ute"]  # a dashboard says nothing about the body
    assert df["body_score"].iloc[0] == pytest.approx(0.6) and np.isnan(df["body_score"].iloc[1])


def test_plate_box_is_clipped_and_ordered(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    out = one_hot_outputs(taxonomy, ["full_front"], ["hatch"], [0.0], [0.9], boxes=[[0.7, 1.2, -0.1, 0.5]])
    assert tag_rows(out, taxonomy, rules)["plate_box"].iloc[0] == pytest.approx([0.0, 0.5, 0.7, 1.0])


# --------------------------------------------------------------------------------- validate_outputs
@pytest.fixture()
def good(taxonomy: Taxonomy) -> dict[str, np.ndarray]:
    return one_hot_outputs(taxonomy, ["full_front"] * 3, ["sedan"] * 3, [0.1] * 3, [0.2] * 3)


def test_valid_outputs_pass_and_accept_lists(taxonomy: Taxonomy, good: dict[str, np.ndarray]) -> None:
    checked = validate_outputs({k: v.tolist() for k, v in good.items()}, 3, taxonomy)
    assert {k: v.shape for k, v in checked.items()} == {
        "angle": (3, 27),
        "banner": (3, 1),
        "plate_presence": (3, 1),
        "plate_box": (3, 4),
        "body": (3, 7),
    }
    assert all(v.dtype == np.float32 for v in checked.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.pop("plate_box"), r"lack \['plate_box'\]"),
        (
            lambda o: o.update(angle=o["angle"][:2]),
            r"'angle' has shape \(2, 27\), expected \(3, 27\): .*one row per input",
        ),
        (lambda o: o.update(banner=o["banner"][:, 0]), r"'banner' has shape \(3,\), expected \(3, 1\)"),
        (lambda o: o.update(body=o["body"][:, :6]), r"'body' has shape \(3, 6\), expected \(3, 7\)"),
        (lambda o: o["banner"].__setitem__((1, 0), np.nan), r"'banner' has 1 non-finite"),
        (lambda o: o["plate_presence"].__setitem__((0, 0), 3.2), r"'plate_presence' has values in \[.*3\.2\].*logit"),
        (lambda o: o["angle"].__setitem__((2, 0), 0.9), r"'angle' row 2 sums to .*softmax"),
        (lambda o: o.update(body=np.full((3, 7), "x")), r"'body' has dtype <U1"),
    ],
)
def test_invalid_outputs_raise_naming_the_output(
    taxonomy: Taxonomy, good: dict[str, np.ndarray], change: object, message: str
) -> None:
    change(good)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        validate_outputs(good, 3, taxonomy)


def test_outputs_must_be_a_mapping(taxonomy: Taxonomy) -> None:
    with pytest.raises(TypeError, match="mapping"):
        validate_outputs([np.zeros((1, 27))], 1, taxonomy)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- prediction_frame
def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, "PNG")
    return buf.getvalue()


def test_prediction_frame_one_row_per_photo_failures_null(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    batch, photos = decode_batch([_png((200, 10, 10)), b"", b"<html>", _png((10, 10, 200))], S, 10**6)
    out = one_hot_outputs(taxonomy, ["full_front", "boot"], ["van", "van"], [0.9, 0.1], [0.1, 0.1])
    df = prediction_frame(photos, out, taxonomy, rules, batch=batch)
    assert list(df.columns) == list(PREDICTION_COLUMNS) and len(df) == 4
    assert df["decode_status"].tolist() == ["ok", "error", "error", "ok"]
    assert df["error_code"].tolist() == [None, "empty", "not_image", None]
    assert df["angle"].tolist() == ["full_front", None, None, "boot"]
    assert df["banner_flag"].tolist() == [True, pd.NA, pd.NA, False]
    assert df["width"].tolist() == [40, pd.NA, pd.NA, 40]
    assert df["angle_top3"].iloc[1] is None and len(df["angle_top3"].iloc[3]) == 3
    assert np.isnan(df["sharpness"].iloc[1]) and df["brightness"].iloc[0] > 0
    assert df["sharpness"].iloc[0] == 0.0  # a flat colour


def test_prediction_frame_refuses_outputs_of_the_wrong_length(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    batch, photos = decode_batch([_png((1, 2, 3)), b"", _png((3, 2, 1))], S, 10**6)
    three = one_hot_outputs(taxonomy, ["boot"] * 3, ["van"] * 3, [0.1] * 3, [0.1] * 3)
    with pytest.raises(ValueError, match="one row per input"):
        prediction_frame(photos, three, taxonomy, rules, batch=batch)
    with pytest.raises(ValueError, match="no model outputs"):
        prediction_frame(photos, None, taxonomy, rules)


def test_prediction_frame_when_nothing_decoded(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    batch, photos = decode_batch([None, b"junk"], S, 10**6)
    for outputs in (None, {}):
        df = prediction_frame(photos, outputs, taxonomy, rules, batch=batch)
        assert df["decode_status"].tolist() == ["error", "error"] and df["angle"].isna().all()


def test_prediction_columns_match_the_table_and_convert_to_arrow(taxonomy: Taxonomy, rules: ScoringRules) -> None:
    from pyspark.sql import types as T

    from fleetvision.tables import IMAGE_TAGS

    fields = [f for f in IMAGE_TAGS.schema.fields if f.name in PREDICTION_COLUMNS]
    assert [f.name for f in fields] == list(PREDICTION_COLUMNS)
    batch, photos = decode_batch([_png((9, 9, 9)), None], S, 10**6)
    out = one_hot_outputs(taxonomy, ["side_driver"], ["coupe"], [0.2], [0.9])
    table = spark_arrow(prediction_frame(photos, out, taxonomy, rules, batch=batch), T.StructType(fields))
    rows = table.to_pylist()
    assert rows[0]["angle_top3"][0] == {"label": "side_driver", "score": pytest.approx(0.7)}
    assert rows[0]["plate_box"] == pytest.approx([0.4, 0.6, 0.6, 0.7]) and rows[0]["width"] == 40
    assert rows[1]["angle"] is None and rows[1]["banner_flag"] is None and rows[1]["sharpness"] is None
    assert rows[1]["error_code"] == "empty" and rows[1]["decode_status"] == "error"
