"""One listing's photos, checked and normalised once for the listing-level scores.

:func:`listing_photos` turns a listing's ``image_tags`` rows (a pandas frame, as the listing stage gives
them) into a :class:`ListingPhotos`: plain numpy columns in the seller's order, with the facts every
listing-level function needs worked out once (decoded, exact duplicate, banner, plate, quality).
Completeness (:mod:`fleetvision.scoring.completeness`) and the hero pick and gallery order
(:mod:`fleetvision.scoring.hero`) both read it, so a listing is prepared once, not once per function.

Why numpy and not a frame: a listing has a handful of photos, and on frames that small every pandas
operation costs its fixed overhead (0.1-1 ms). Preparing and scoring a listing with frames, three times
over, took 25.3 ms a listing; this way it takes 5.0 (``benchmarks/bench_listing_stage.py``, docs/runbook.md,
*The listing stage*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleetvision.quality import QualityThresholds, image_quality

REQUIRED_TAG_COLUMNS: tuple[str, ...] = (
    "image_id",
    "position",
    "content_hash",
    "decode_status",
    "angle",
    "angle_score",
    "shot_group",
    "banner_flag",
    "banner_score",
    "plate_flag",
    "body_type",
    "body_score",
    "sharpness",
    "brightness",
)
"""The ``image_tags`` columns the listing-level functions read."""


def is_missing(value: object) -> bool:
    """True for None, NaN, NaT and pandas' NA; False for anything else (lists and strings included)."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def flags(series: pd.Series) -> np.ndarray:
    """A nullable boolean column as a numpy bool array, null read as False.

    Raises:
        TypeError: A value is not a boolean (or 0/1, or null).
    """
    return pd.array(series.astype(object), dtype="boolean").fillna(False).to_numpy(dtype=bool)


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)


@dataclass(frozen=True, eq=False)
class ListingPhotos:
    """One listing's photos, one array element per photo, in the seller's order.

    Attributes:
        image_id: object; every id distinct, never null.
        position: float64; the seller's position, ``inf`` where it is missing.
        ok: bool; the photo decoded (``decode_status == "ok"``).
        duplicate: bool; decoded with the same ``content_hash`` as an earlier decoded photo.
        banner: bool; ``banner_flag``, null read as False.
        plate: bool; ``plate_flag``, null read as False.
        quality: float64 0-1 (:func:`fleetvision.quality.image_quality`); NaN where not decoded.
        angle: object; the shot class name, or None.
        angle_score: float64; NaN where missing.
        shot_group: object; exterior, interior, detail, or None.
        body_type: object; or None.
        body_score: float64; NaN where missing.
        error_code: object, or None where the frame has no ``error_code`` column.
    """

    image_id: np.ndarray
    position: np.ndarray
    ok: np.ndarray
    duplicate: np.ndarray
    banner: np.ndarray
    plate: np.ndarray
    quality: np.ndarray
    angle: np.ndarray
    angle_score: np.ndarray
    shot_group: np.ndarray
    body_type: np.ndarray
    body_score: np.ndarray
    error_code: np.ndarray | None

    def __len__(self) -> int:
        return len(self.image_id)

    @property
    def usable(self) -> np.ndarray:
        """Decoded and not an exact duplicate: the photos that count."""
        return self.ok & ~self.duplicate


def listing_photos(tags: pd.DataFrame, thresholds: QualityThresholds) -> ListingPhotos:
    """Check and normalise one listing's ``image_tags`` rows.

    Rows with a null ``image_id`` (a listing without photos, from a left join) are dropped, a repeated
    ``image_id`` keeps its last row, and photos are sorted by position (missing last) then image_id.
    A photo is a duplicate when it decoded and an earlier decoded photo (in that order) has the same
    non-null ``content_hash``.

    Args:
        tags: The listing's rows (columns ``REQUIRED_TAG_COLUMNS``; ``error_code`` optional).
        thresholds: The quality thresholds (``ScoringRules`` has them).

    Raises:
        TypeError: ``tags`` is not a DataFrame, or a flag column holds something other than booleans.
        ValueError: Required columns are missing (the message lists them).
    """
    if not isinstance(tags, pd.DataFrame):
        raise TypeError(f"tags must be a pandas DataFrame of image_tags rows, got {type(tags).__name__}")
    missing = [c for c in REQUIRED_TAG_COLUMNS if c not in tags.columns]
    if missing:
        raise ValueError(f"image_tags rows lack column(s) {missing}")
    df = tags[tags["image_id"].notna()].drop_duplicates(subset="image_id", keep="last")
    ids = df["image_id"].to_numpy(dtype=object)
    position = _numbers(df["position"])
    position[np.isnan(position)] = np.inf
    order = np.array(sorted(range(len(ids)), key=lambda i: (position[i], ids[i])), dtype=np.int64)

    def column(name: str) -> np.ndarray:  # object values, every kind of null as None
        values = df[name].to_numpy(dtype=object)[order]
        return np.array([None if is_missing(v) else v for v in values], dtype=object)

    ok = (df["decode_status"] == "ok").to_numpy(dtype=bool)[order]
    hashes = column("content_hash")
    duplicate = np.zeros(len(order), dtype=bool)
    seen: set[object] = set()
    for i, h in enumerate(hashes):
        if ok[i] and not is_missing(h):
            duplicate[i] = h in seen
            seen.add(h)
    quality = image_quality(_numbers(df["sharpness"])[order], _numbers(df["brightness"])[order], thresholds)
    return ListingPhotos(
        image_id=ids[order],
        position=position[order],
        ok=ok,
        duplicate=duplicate,
        banner=flags(df["banner_flag"])[order],
        plate=flags(df["plate_flag"])[order],
        quality=np.where(ok, quality, np.nan),
        angle=column("angle"),
        angle_score=_numbers(df["angle_score"])[order],
        shot_group=column("shot_group"),
        body_type=column("body_type"),
        body_score=_numbers(df["body_score"])[order],
        error_code=column("error_code") if "error_code" in df.columns else None,
    )
