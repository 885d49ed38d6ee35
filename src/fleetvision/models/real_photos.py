"""Real-photo check: labelled plate boxes in, an aggregate report out (pure numpy/pandas; no Spark).

The project's models are trained on renders; ``benchmarks/bench_real_dev.py`` scores a small set of real
photos (``../shared/realdev``: front or rear views of cars, one labelled licence plate each, regions
``eu`` and ``br``) exactly as the scoring job does and hands the per-photo results to this module, which
turns them into the report. Everything here is data in, data out: reading ``plates.csv`` into normalised
truth boxes, IoU against the predicted boxes, and aggregating the report dict overall and per region.

Box frame: the scoring decoder squashes the whole photo to S x S (no letterbox, aspect ratio not kept)
and the scoring job writes the model's ``plate_box`` unchanged (after
:func:`fleetvision.scoring.tags.validate_outputs` clips it to [0, 1] and orders its corners). A box
normalised to the model's square input is therefore normalised to the original photo, so truth boxes
are compared in that frame: ``x / width``, ``y / height`` of the photo as stored (the set has no EXIF
rotation; :func:`size_mismatches` checks the decoder saw the same size).

The photos are licensed for evaluation only: the report holds aggregates, never file names, plate
texts or anything else taken from a single photo.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fleetvision.models.eval_metrics import box_iou

logger = logging.getLogger(__name__)

REGIONS: tuple[str, ...] = ("eu", "br")
"""Plate regions of the set, in report order."""

PLATES_COLUMNS: tuple[str, ...] = (
    "file",
    "region",
    "width",
    "height",
    "plate_x",
    "plate_y",
    "plate_w",
    "plate_h",
    "plate_text",
)
"""Columns of ``plates.csv`` (box in pixels of the stored file: top-left x, y, then width, height)."""

BOX_COLUMNS: tuple[str, ...] = ("x0", "y0", "x1", "y1")
"""The normalised truth box columns :func:`read_plate_truth` adds."""

PHOTO_COLUMNS: tuple[str, ...] = (
    "region",
    "decode_status",
    "plate_score",
    "plate_iou",
    "angle",
    "angle_score",
    "shot_group",
    "banner_score",
    "banner_flag",
    "body_type",
)
"""Per-photo columns :func:`summarise_photos` needs (one row per photo of the set)."""

IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.3)
QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
SCORE_BIN_EDGES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
"""Histogram bins for scores in [0, 1]: ten bins of 0.1, the last one closed (1.0 falls in [0.9, 1.0])."""
NOT_EXTERIOR = "(none: not exterior)"
"""Body type label of photos the scoring job gives no body type (the shot is not exterior)."""

_PIXEL_SLACK = 1.0  # a labeller's box may overhang the frame by a pixel


def read_plate_truth(path: str | Path) -> pd.DataFrame:
    """Read ``plates.csv`` and add each plate box normalised to its photo.

    Args:
        path: The CSV (columns :data:`PLATES_COLUMNS`; extra columns are kept).

    Returns:
        One row per photo in file order, the CSV's columns plus ``x0, y0, x1, y1`` (float64 in [0, 1]:
        the box divided by the photo's width and height, clipped to the frame).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A column is missing, the file is empty, a file name repeats, a region is not one of
            :data:`REGIONS`, a size or box is not a positive number, or a box lies outside its photo.
            The message names the column or the offending files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"plate labels not found: {path}")
    truth = pd.read_csv(path, dtype={"file": str, "region": str, "plate_text": str}, keep_default_na=False)
    missing = [c for c in PLATES_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected {list(PLATES_COLUMNS)}")
    if truth.empty:
        raise ValueError(f"{path}: no rows")
    repeated = sorted(set(truth.loc[truth["file"].duplicated(), "file"]))
    if repeated:
        raise ValueError(f"{path}: file(s) listed more than once: {repeated[:5]}")
    bad_region = sorted(set(truth["region"]) - set(REGIONS))
    if bad_region:
        raise ValueError(f"{path}: column 'region' has {bad_region}; expected one of {list(REGIONS)}")
    numeric = ("width", "height", "plate_x", "plate_y", "plate_w", "plate_h")
    for col in numeric:
        try:
            truth[col] = pd.to_numeric(truth[col], errors="raise").astype(np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: column {col!r} is not numeric: {e}") from e
    values = truth[list(numeric)].to_numpy()
    nonpositive = (
        ~np.isfinite(values).all(axis=1)
        | (truth[["width", "height", "plate_w", "plate_h"]] <= 0).any(axis=1).to_numpy()
    )
    if nonpositive.any():
        raise ValueError(f"{path}: non-positive or missing size/box for {truth.loc[nonpositive, 'file'].tolist()[:5]}")
    x0, y0 = truth["plate_x"], truth["plate_y"]
    x1, y1 = x0 + truth["plate_w"], y0 + truth["plate_h"]
    outside = (
        (x0 < -_PIXEL_SLACK)
        | (y0 < -_PIXEL_SLACK)
        | (x1 > truth["width"] + _PIXEL_SLACK)
        | (y1 > truth["height"] + _PIXEL_SLACK)
    )
    if outside.any():
        raise ValueError(f"{path}: plate box outside the photo for {truth.loc[outside, 'file'].tolist()[:5]}")
    truth["width"] = truth["width"].astype(np.int64)
    truth["height"] = truth["height"].astype(np.int64)
    truth["x0"] = np.clip(x0 / truth["width"], 0.0, 1.0)
    truth["y0"] = np.clip(y0 / truth["height"], 0.0, 1.0)
    truth["x1"] = np.clip(x1 / truth["width"], 0.0, 1.0)
    truth["y1"] = np.clip(y1 / truth["height"], 0.0, 1.0)
    return truth.reset_index(drop=True)


def truth_boxes(truth: pd.DataFrame) -> np.ndarray:
    """The normalised truth boxes of :func:`read_plate_truth` as float64 ``[N, 4]`` (x0, y0, x1, y1)."""
    missing = [c for c in BOX_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"truth frame lacks box column(s) {missing} (read it with read_plate_truth)")
    return truth[list(BOX_COLUMNS)].to_numpy(dtype=np.float64)


def select_spread(n: int, limit: int | None) -> np.ndarray:
    """Indices of ``limit`` rows spread evenly over ``n`` (all rows when ``limit`` is None or >= ``n``).

    The CSV is sorted by region, so an even spread gives a small run photos of every region.

    Raises:
        ValueError: ``limit`` is below 1.
    """
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def plate_ious(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of each predicted box with its truth box, row by row; a row with no prediction (NaN) scores 0.

    Args:
        predicted: ``[N, 4]`` (x0, y0, x1, y1) normalised, NaN where the photo had no prediction
            (it failed to decode).
        truth: ``[N, 4]`` in the same frame.

    Raises:
        ValueError: The shapes differ or are not ``[N, 4]``.
    """
    predicted, truth = np.asarray(predicted, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if predicted.ndim != 2 or predicted.shape[1:] != (4,) or predicted.shape != truth.shape:
        raise ValueError(f"plate_ious needs two [N, 4] arrays, got {predicted.shape} and {truth.shape}")
    known = np.isfinite(predicted).all(axis=1)
    ious = np.zeros(len(predicted), dtype=np.float64)
    ious[known] = box_iou(predicted[known], truth[known])
    return ious


def size_mismatches(truth: pd.DataFrame, widths: Sequence[Any], heights: Sequence[Any]) -> list[int]:
    """Row positions where the decoder's photo size differs from the labelled one (or is unknown).

    A mismatch means the truth box is not in the frame the model saw (an EXIF rotation, a re-encoded
    file), so its IoU would mean nothing.
    """
    if len(widths) != len(truth) or len(heights) != len(truth):
        raise ValueError(f"{len(widths)} widths / {len(heights)} heights for {len(truth)} labelled photos")
    bad = []
    for i, (w, h, tw, th) in enumerate(zip(widths, heights, truth["width"], truth["height"])):
        if pd.isna(w) or pd.isna(h) or int(w) != int(tw) or int(h) != int(th):
            bad.append(i)
    return bad


def score_distribution(values: Sequence[float] | np.ndarray | pd.Series) -> dict[str, Any]:
    """Where scores in [0, 1] fall: count, mean, quantiles and a 10-bin histogram (missing values skipped).

    Returns:
        ``{"n", "n_missing", "mean", "quantiles": {"p05": ..., ...}, "histogram": {"edges", "counts"}}``;
        mean and quantiles are None when no value is known.
    """
    arr = np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), dtype=np.float64)
    known = arr[np.isfinite(arr)]
    counts, _ = np.histogram(np.clip(known, 0.0, 1.0), bins=np.asarray(SCORE_BIN_EDGES))
    return {
        "n": len(known),
        "n_missing": int(len(arr) - len(known)),
        "mean": _round(known.mean()) if len(known) else None,
        "quantiles": {
            f"p{round(q * 100):02d}": (_round(np.quantile(known, q)) if len(known) else None) for q in QUANTILES
        },
        "histogram": {"edges": list(SCORE_BIN_EDGES), "counts": [int(c) for c in counts]},
    }


def label_distribution(labels: Sequence[Any] | pd.Series, *, missing: str = "(none)") -> dict[str, dict[str, Any]]:
    """Count and share of each label, most frequent first (ties by name); null labels count as ``missing``."""
    series = pd.Series(labels, dtype=object)
    series = series.where(series.notna(), missing).astype(str)
    n = len(series)
    counts = series.value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {label: {"count": int(c), "share": _round(c / n)} for label, c in ordered}


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def _share(mask: pd.Series | np.ndarray, n: int) -> float | None:
    return _round(np.count_nonzero(np.asarray(mask, dtype=bool)) / n) if n else None


def _group_summary(photos: pd.DataFrame, plate_threshold: float, banner_threshold: float) -> dict[str, Any]:
    n = len(photos)
    score = pd.to_numeric(photos["plate_score"], errors="coerce").to_numpy(dtype=np.float64)
    present = np.nan_to_num(score, nan=-1.0) >= plate_threshold  # no prediction: not found
    iou = pd.to_numeric(photos["plate_iou"], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    exterior = (photos["shot_group"] == "exterior").to_numpy(dtype=bool)
    banner = pd.array(photos["banner_flag"], dtype="boolean").fillna(False).to_numpy(dtype=bool)
    plate: dict[str, Any] = {
        "threshold": plate_threshold,
        "recall": _share(present, n),
        "iou_mean": _round(iou.mean()) if n else None,
        "iou_median": _round(np.median(iou)) if n else None,
    }
    for t in IOU_THRESHOLDS:
        plate[f"iou{round(t * 100)}_rate"] = _share(iou >= t, n)
    plate["present_and_iou50_rate"] = _share(present & (iou >= 0.5), n)
    plate["presence_score"] = score_distribution(score)
    plate["iou"] = score_distribution(iou)
    return {
        "n": n,
        "n_failed_decode": int((photos["decode_status"] != "ok").sum()),
        "plate": plate,
        "shot": {
            "exterior_rate": _share(exterior, n),
            "groups": label_distribution(photos["shot_group"]),
            "top1_classes": label_distribution(photos["angle"]),
            "top1_probability": score_distribution(photos["angle_score"]),
        },
        "banner": {
            "threshold": banner_threshold,
            "flagged_rate": _share(banner, n),
            "score": score_distribution(photos["banner_score"]),
        },
        "body": {"types": label_distribution(photos["body_type"], missing=NOT_EXTERIOR)},
    }


def summarise_photos(photos: pd.DataFrame, *, plate_threshold: float, banner_threshold: float) -> dict[str, Any]:
    """The real-photo report: every figure overall and for each region.

    Every photo of the set shows a plate and a car's front or rear, so: plate recall is the share whose
    presence score reaches ``plate_threshold``; IoU is taken whatever the presence score (0 for a photo
    without a prediction); the exterior rate is the share whose top-1 shot class is in the exterior
    group. The photos carry no dealer banners, so ``banner.flagged_rate`` is a false-positive rate on
    clean real photos.

    Args:
        photos: One row per photo with the columns :data:`PHOTO_COLUMNS` (as the scoring job's
            prediction fields name them, plus ``region`` and ``plate_iou``).
        plate_threshold: The scoring job's plate threshold (``scoring.plate_threshold``).
        banner_threshold: The scoring job's banner threshold (``scoring.banner_threshold``), recorded
            next to the flagged rate (the flag itself is ``banner_flag``).

    Returns:
        ``{"overall": {...}, "by_region": {"eu": {...}, "br": {...}}}``; a region without photos is left out.

    Raises:
        ValueError: A column is missing, the frame is empty, or a region is unknown.
    """
    missing = [c for c in PHOTO_COLUMNS if c not in photos.columns]
    if missing:
        raise ValueError(f"per-photo results lack column(s) {missing}; expected {list(PHOTO_COLUMNS)}")
    if photos.empty:
        raise ValueError("per-photo results are empty: nothing to summarise")
    unknown = sorted(set(photos["region"]) - set(REGIONS))
    if unknown:
        raise ValueError(f"per-photo results have unknown region(s) {unknown}; expected {list(REGIONS)}")
    return {
        "overall": _group_summary(photos, plate_threshold, banner_threshold),
        "by_region": {
            region: _group_summary(photos[photos["region"] == region], plate_threshold, banner_threshold)
            for region in REGIONS
            if (photos["region"] == region).any()
        },
    }
