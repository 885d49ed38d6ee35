"""The real-photo check: plates.csv -> truth boxes, IoU, the report; and the benchmark on 5 real photos."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from script_modules import script_module

from fleetvision.models.real_photos import (
    NOT_EXTERIOR,
    PHOTO_COLUMNS,
    plate_ious,
    read_plate_truth,
    score_distribution,
    select_spread,
    size_mismatches,
    summarise_photos,
    truth_boxes,
)

ROOT = Path(__file__).resolve().parents[1]
REAL_DEV = ROOT.parent / "shared" / "realdev"
HEADER = "file,region,width,height,plate_x,plate_y,plate_w,plate_h,plate_text\n"


def _csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "plates.csv"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_truth_boxes_are_normalised_to_the_photo(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["a.jpg,eu,200,100,50.0,20.0,100.0,40.0,AB123", "b.jpg,br,1000,500,0,450,250,50,XYZ0001"])
    truth = read_plate_truth(path)
    assert list(truth["file"]) == ["a.jpg", "b.jpg"]
    np.testing.assert_allclose(truth_boxes(truth), [[0.25, 0.2, 0.75, 0.6], [0.0, 0.9, 0.25, 1.0]])
    assert truth["plate_text"].tolist() == ["AB123", "XYZ0001"]


@pytest.mark.parametrize(
    ("rows", "header", "match"),
    [
        (["a.jpg,eu,200,100,5,5,10,10"], HEADER.replace(",plate_text", ""), r"missing column\(s\) \['plate_text'\]"),
        (["a.jpg,us,200,100,5,5,10,10,X"], HEADER, r"region.*'us'"),
        (["a.jpg,eu,200,100,5,5,10,10,X", "a.jpg,eu,200,100,5,5,10,10,X"], HEADER, r"more than once.*a\.jpg"),
        (["a.jpg,eu,200,100,5,5,0,10,X"], HEADER, r"non-positive.*a\.jpg"),
        (["a.jpg,eu,200,100,150,5,60,10,X"], HEADER, r"outside the photo.*a\.jpg"),
        (["a.jpg,eu,wide,100,5,5,10,10,X"], HEADER, r"column 'width' is not numeric"),
        ([], HEADER, r"no rows"),
    ],
)
def test_bad_plate_labels_are_refused_by_name(tmp_path: Path, rows: list[str], header: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_plate_truth(_csv(tmp_path, rows, header))


def test_missing_labels_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"plates\.csv"):
        read_plate_truth(tmp_path / "plates.csv")


def test_iou_row_by_row_and_no_prediction_scores_zero() -> None:
    truth = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 0.4, 0.4], [0.1, 0.1, 0.2, 0.2]])
    pred = np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.0, 0.75, 0.5], [0.6, 0.6, 0.8, 0.8], [np.nan] * 4])
    np.testing.assert_allclose(plate_ious(pred, truth), [1.0, 1 / 3, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        plate_ious(pred[:, :3], truth[:, :3])


def test_select_spread_reaches_both_ends() -> None:
    assert select_spread(10, None).tolist() == list(range(10))
    assert select_spread(10, 50).tolist() == list(range(10))
    assert select_spread(223, 5).tolist() == [0, 56, 111, 166, 222]
    with pytest.raises(ValueError, match="at least 1"):
        select_spread(10, 0)


def test_size_mismatches_flag_other_sizes_and_unknown(tmp_path: Path) -> None:
    truth = read_plate_truth(_csv(tmp_path, ["a.jpg,eu,200,100,5,5,10,10,X", "b.jpg,eu,300,100,5,5,10,10,Y"]))
    assert size_mismatches(truth, [200, 300], [100, 100]) == []
    assert size_mismatches(truth, [100, None], [200, 100]) == [0, 1]


def test_score_distribution_bins_quantiles_and_missing() -> None:
    dist = score_distribution([0.0, 0.05, 0.5, 1.0, None, float("nan")])
    assert dist["n"] == 4 and dist["n_missing"] == 2
    assert dist["histogram"]["counts"] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 1]  # 1.0 falls in the last bin
    assert dist["mean"] == pytest.approx(0.3875)
    assert dist["quantiles"]["p50"] == pytest.approx(0.275)
    assert score_distribution([])["mean"] is None


def _photos() -> pd.DataFrame:
    """Four photos: eu found + well boxed, eu missed, br found + poorly boxed, br failed to decode."""
    return pd.DataFrame(
        {
            "region": ["eu", "eu", "br", "br"],
            "decode_status": ["ok", "ok", "ok", "error"],
            "plate_score": [0.9, 0.2, 0.5, np.nan],
            "plate_iou": [0.7, 0.6, 0.35, 0.0],
            "angle": ["full_front", "dashboard", "full_rear", None],
            "angle_score": [0.8, 0.4, 0.6, np.nan],
            "shot_group": ["exterior", "interior", "exterior", None],
            "banner_score": [0.1, 0.7, 0.2, np.nan],
            "banner_flag": pd.array([False, True, False, pd.NA], dtype="boolean"),
            "body_type": ["sedan", None, "suv", None],
        }
    )


def test_report_overall_and_per_region() -> None:
    report = summarise_photos(_photos(), plate_threshold=0.5, banner_threshold=0.5)
    overall, eu, br = report["overall"], report["by_region"]["eu"], report["by_region"]["br"]
    assert overall["n"] == 4 and overall["n_failed_decode"] == 1
    plate = overall["plate"]
    assert plate["recall"] == 0.5  # 0.9 and 0.5 reach the threshold; the failed photo counts as missed
    assert plate["iou_mean"] == pytest.approx(0.4125) and plate["iou_median"] == pytest.approx(0.475)
    assert plate["iou50_rate"] == 0.5 and plate["iou30_rate"] == 0.75
    assert plate["present_and_iou50_rate"] == 0.25
    assert plate["presence_score"]["n_missing"] == 1
    assert overall["shot"]["exterior_rate"] == 0.5
    assert overall["shot"]["top1_classes"]["full_front"] == {"count": 1, "share": 0.25}
    assert overall["shot"]["groups"]["exterior"]["count"] == 2
    assert overall["banner"]["flagged_rate"] == 0.25
    assert overall["body"]["types"][NOT_EXTERIOR]["count"] == 2
    assert eu["n"] == 2 and eu["plate"]["recall"] == 0.5 and eu["plate"]["present_and_iou50_rate"] == 0.5
    assert br["plate"]["recall"] == 0.5 and br["plate"]["iou50_rate"] == 0.0 and br["plate"]["iou30_rate"] == 0.5
    json.dumps(report)  # plain JSON types only


def test_report_refuses_bad_frames() -> None:
    with pytest.raises(ValueError, match=r"lack column\(s\) \['plate_iou'\]"):
        summarise_photos(_photos().drop(columns="plate_iou"), plate_threshold=0.5, banner_threshold=0.5)
    with pytest.raises(ValueError, match="empty"):
        summarise_photos(_photos().iloc[:0], plate_threshold=0.5, banner_threshold=0.5)
    with pytest.raises(ValueError, match=r"unknown region\(s\) \['us'\]"):
        summarise_photos(_photos().assign(region="us"), plate_threshold=0.5, banner_threshold=0.5)
    assert set(PHOTO_COLUMNS) == set(_photos().columns)


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with script_module("benchmarks/bench_real_dev.py") as module:
        yield module


def test_bench_fails_clearly_without_the_photos(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = bench.main(["--photos", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out.json")])
    assert code == 2
    assert "real photos not found" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.skipif(not (REAL_DEV / "plates.csv").is_file(), reason=f"real photos not available at {REAL_DEV}")
def test_bench_scores_five_real_photos(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "real_dev.json"
    assert bench.main(["--limit", "5", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["photos"]["n"] == 5 and result["photos"]["n_size_mismatch"] == 0
    assert set(result["report"]["by_region"]) == {"eu", "br"}  # the spread reaches both regions
    overall = result["report"]["overall"]
    assert overall["n"] == 5 and overall["n_failed_decode"] == 0
    assert 0.0 <= overall["plate"]["iou_mean"] <= 1.0
    assert sum(v["count"] for v in overall["shot"]["top1_classes"].values()) == 5
    assert set(result["models"]["by_task"]) == {"angle", "banner", "plate", "body"}
    assert all(len(m["sha256"]) == 64 for m in result["models"]["by_task"].values())
    assert result["machine"]["cpu_count"] >= 1 and result["timing"]["seconds_per_photo"] > 0
    for key in ("flank_mirror", "flank_mirror_head"):  # as tagged (plate cue) and from the angle head alone
        mirror = result["report"][key]  # label-free: of the photos called 3/4 or side (maybe none)
        assert 0 <= mirror["n"] <= 5 and (mirror["flips"] is None) == (mirror["n"] == 0)
    assert result["scoring"]["plate_flank_strength"] > 0
    text = out.read_text()
    assert ".jpg" not in text  # aggregates only: no file names of the evaluation-only photos
    assert "plate recall" in capsys.readouterr().out


@pytest.mark.skipif(not (REAL_DEV / "plates.csv").is_file(), reason=f"real photos not available at {REAL_DEV}")
def test_bench_scores_views_and_body_from_a_users_own_labels(bench: ModuleType, tmp_path: Path) -> None:
    files = pd.read_csv(REAL_DEV / "plates.csv")["file"].tolist()
    views = tmp_path / "views.csv"  # made-up labels: what is checked is that they are read and counted
    views.write_text("file,view,body,flank\n" + "".join(
        f"{f},full_rear,{'hatch' if i % 2 else 'unclear'},{'left' if i % 2 else 'right'}\n"
        for i, f in enumerate(files)))
    out = tmp_path / "real_dev.json"
    assert bench.main(["--limit", "4", "--views", str(views), "--out", str(out)]) == 0
    labelled = json.loads(out.read_text())["labelled"]
    assert labelled["view"]["n"] == labelled["view"]["front_rear_n"] == 4
    assert sum(sum(row.values()) for row in labelled["view"]["confusion"].values()) == 4
    assert set(labelled["view"]["confusion"]) == {"full_rear"}
    # every labelled head-on rear gives its tail lights, cut beside the plate, scored as detail photos would be
    crops = labelled["lamp_crops"]
    assert 1 <= crops["all"]["n"] <= 8 and set(crops) == {"what", "all", "tail_light"}
    assert sum(crops["all"]["shot_group"].values()) <= 1.0 + 1e-9
    assert 0.0 <= crops["all"]["plate_flagged"] <= 1.0 and 0.0 <= crops["all"]["exact_class"] <= 1.0
    # the plate head's trade between plates found and false plates on those crops, by threshold
    curve = labelled["plate_operating_points"]
    assert curve["n_photos"] == 4 and curve["n_crops"] == crops["all"]["n"]
    at_half = next(p for p in curve["thresholds"] if p["threshold"] == 0.5)  # the scoring job's threshold
    assert at_half["lamp_flagged"] == pytest.approx(crops["all"]["plate_flagged"], abs=1e-4)
    recalls = [p["recall"] for p in curve["thresholds"]]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold never finds more
    assert all(p["lamp_flagged"] <= float(b) for b, p in curve["at_lamp_flagged"].items())
    # and the angle head's trade between exteriors kept and close-ups called detail, by a shift of the detail classes
    groups = labelled["detail_operating_points"]
    assert groups["n_photos"] == 4 and groups["n_crops"] == crops["all"]["n"]
    assert groups["at_shift_0"]["crops_called_detail"] == pytest.approx(crops["all"]["shot_group"]["detail"], abs=1e-4)
    details = [p["crops_called_detail"] for p in groups["by_shift"]]
    assert details == sorted(details)  # readier to say "detail", never fewer crops called so
    for key in ("flank", "flank_head"):  # the flank as tagged and from the angle head alone, on the same photos
        assert labelled[key]["n"] == labelled[key]["mirror"]["n"] == 4
    assert 0 <= labelled["body"]["n"] <= 4 and 0.0 <= labelled["view"]["accuracy"] <= 1.0
    assert ".jpg" not in out.read_text()
