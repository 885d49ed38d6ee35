"""Real detail shots cut from real exterior photos: lamp close-ups placed by the plate (pure numpy/pandas).

The real dev set (``../shared/realdev``) holds only front and rear views, so nothing there measures what
the models make of a real *detail* photo: a marketplace's headlight, tail-light or wheel close-ups. A head-on
photo of a car's end shows its lamps at known places relative to its plate: a plate is 0.52 m wide in
Europe and 0.40 m in Brazil, so its box gives the photo's scale, and a car's lamps sit about 0.62 m either
side of its centre line, a little above the plate. :func:`lamp_crop_boxes` cuts a square-ish box there
(0.56 m wide, 0.45 m tall) from each labelled head-on front (headlights) or rear (tail lights); the box
never reaches the plate. The crops are close-ups of real lamps on real paint, some with a badge or a
neighbour's flank in them and a few that miss the lamp (a high-mounted tail light, a steep camera): a
stand-in for real detail shots, not a labelled set of them, and lower in resolution than a phone's
close-up (the lamps here are 120-600 px wide).

:func:`lamp_crop_report` aggregates what the models called them: the shot group (a detail photo should be
``detail``; an exterior view answer is the failure that matters to a marketplace), the exact class, and
how often a plate is flagged on a photo that holds none (issue 10's goal: at most 0.05 on interior and
detail photos). ``benchmarks/bench_real_dev.py --views FILE`` runs it. Aggregates only, never a crop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

PLATE_WIDTH_M: dict[str, float] = {"eu": 0.52, "br": 0.40}
"""A plate's width by the set's region (EU 520 x 110 mm, Brazil's Mercosur 400 x 130 mm)."""
LAMP_OFFSET_M = 0.62
"""A lamp's centre from the car's centre line, metres (a 1.7-1.8 m wide car's lamps)."""
LAMP_RISE_M: dict[str, float] = {"full_rear": 0.22, "full_front": 0.18}
"""How far above the plate's centre the lamp's centre sits, metres."""
CROP_HALF_M = (0.28, 0.225)
"""Half the crop's width and height, metres."""
MIN_CROP_PX = 120
"""Crops narrower than this (far-off cars) are left out: a detail photo is a close-up."""
KIND_OF_VIEW: dict[str, str] = {"full_rear": "tail_light", "full_front": "headlight"}
"""The lamp a head-on view shows, by its view label (the taxonomy's detail class names)."""

CROP_COLUMNS: tuple[str, ...] = ("photo", "kind", "side", "x0", "y0", "x1", "y1")
"""Columns of :func:`lamp_crop_boxes`' frame: the photo's row in ``truth``, the lamp's detail class, the
side of the photo (-1 left, +1 right) and the crop box in pixels of the stored photo."""


def lamp_crop_boxes(truth: pd.DataFrame, views: Sequence[str | None]) -> pd.DataFrame:
    """Crop boxes of the lamps either side of the plate on every head-on front and rear view.

    Args:
        truth: ``plates.csv`` as :func:`fleetvision.models.real_photos.read_plate_truth` reads it (region,
            width, height, plate_x, plate_y, plate_w, plate_h in pixels).
        views: The view label (without side) of each row of ``truth``, or None; only ``full_front`` and
            ``full_rear`` rows give crops.

    Returns:
        One row per crop (:data:`CROP_COLUMNS`), boxes wholly inside the photo and at least
        :data:`MIN_CROP_PX` wide; empty when no row qualifies.

    Raises:
        ValueError: ``views`` is not one per row, or a region has no plate width.
    """
    if len(views) != len(truth):
        raise ValueError(f"{len(views)} view labels for {len(truth)} photos")
    unknown = sorted(set(truth["region"]) - set(PLATE_WIDTH_M))
    if unknown:
        raise ValueError(f"no plate width for region(s) {unknown}; known: {sorted(PLATE_WIDTH_M)}")
    rows: list[tuple[Any, ...]] = []
    for i, (view, row) in enumerate(zip(views, truth.itertuples(index=False))):
        if view not in KIND_OF_VIEW:
            continue
        scale = float(row.plate_w) / PLATE_WIDTH_M[str(row.region)]  # pixels a metre on the car's end
        cx = float(row.plate_x) + float(row.plate_w) / 2
        cy = float(row.plate_y) + float(row.plate_h) / 2 - LAMP_RISE_M[str(view)] * scale
        half_w, half_h = CROP_HALF_M[0] * scale, CROP_HALF_M[1] * scale
        if 2 * half_w < MIN_CROP_PX:
            continue
        for side in (-1, 1):
            x = cx + side * LAMP_OFFSET_M * scale
            box = (round(x - half_w), round(cy - half_h), round(x + half_w), round(cy + half_h))
            if box[0] < 0 or box[1] < 0 or box[2] > int(row.width) or box[3] > int(row.height):
                continue
            rows.append((i, KIND_OF_VIEW[str(view)], side, *box))
    return pd.DataFrame(rows, columns=list(CROP_COLUMNS))


def lamp_crop_report(
    kinds: Sequence[str],
    shot_groups: Sequence[str | None],
    classes: Sequence[str | None],
    plate_flags: Sequence[bool] | np.ndarray,
) -> dict[str, Any]:
    """What the models called the lamp crops, overall and by kind.

    Args:
        kinds: Each crop's detail class (``headlight`` / ``tail_light``).
        shot_groups: The shot group the scoring job wrote for it (None: not decoded).
        classes: The shot class it wrote.
        plate_flags: Whether the job flagged a plate on it (``plate_flag``: presence >= ``scoring.plate_threshold``).

    Returns:
        ``{"all": {...}, "<kind>": {...}}``, each with ``n``, the share in each shot group, ``exact_class``
        (the crop's own detail class) and ``plate_flagged``; ``top_classes``: the five most common answers.

    Raises:
        ValueError: The sequences differ in length.
    """
    n = len(kinds)
    if not (len(shot_groups) == len(classes) == len(plate_flags) == n):
        raise ValueError(f"lengths differ: {n} kinds, {len(shot_groups)} groups, {len(classes)} classes, "
                         f"{len(plate_flags)} plate flags")
    kinds_a = np.asarray(kinds, dtype=object)
    groups = np.asarray([g if g is not None else "(not decoded)" for g in shot_groups], dtype=object)
    answers = np.asarray([c if c is not None else "(not decoded)" for c in classes], dtype=object)
    flagged = np.asarray(plate_flags, dtype=bool)

    def part(mask: np.ndarray) -> dict[str, Any]:
        m = int(mask.sum())
        if not m:
            return {"n": 0}
        shares = {g: round(float((groups[mask] == g).mean()), 4) for g in ("exterior", "interior", "detail")}
        return {
            "n": m,
            "shot_group": shares,
            "exact_class": round(float((answers[mask] == kinds_a[mask]).mean()), 4),
            "plate_flagged": round(float(flagged[mask].mean()), 4),
            "top_classes": {c: k for c, k in Counter(answers[mask].tolist()).most_common(5)},
        }

    report = {"all": part(np.ones(n, dtype=bool))}
    for kind in sorted(set(kinds_a.tolist())):
        report[kind] = part(kinds_a == kind)
    return report


OPERATING_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Plate thresholds at which :func:`plate_operating_points` reports recall and false plates."""
FLAG_BUDGETS: tuple[float, ...] = (0.05, 0.09)
"""False-plate rates on the lamp close-ups at which two heads are compared: issue 10's goal on detail photos
(0.05) and session 33's ship rule (0.09)."""


def plate_operating_points(plate_scores: Sequence[float], plate_ious: Sequence[float], crop_scores: Sequence[float],
                           thresholds: Sequence[float] = OPERATING_THRESHOLDS,
                           budgets: Sequence[float] = FLAG_BUDGETS) -> dict[str, Any]:
    """How a plate head trades real plates found against false plates on the lamp close-ups, threshold by
    threshold: the scoring job's one threshold (``scoring.plate_threshold``) gives one point of this curve,
    and a head that only shifts its scores moves along it. Comparing heads at the same false-plate rate
    (``at_lamp_flagged``) tells a better head from one that is merely less (or more) ready to say "plate".

    Args:
        plate_scores: The presence score of each real photo, every one of which shows a plate (NaN: not
            decoded, counts as not found).
        plate_ious: The IoU of each photo's predicted box with its labelled one (NaN counts as 0).
        crop_scores: The presence score of each lamp close-up, none of which shows a plate (NaN: not flagged).
        thresholds: Where to read the curve.
        budgets: False-plate rates to compare at: for each, the lowest threshold among the crops' own scores
            (and 1.0) whose flagged share stays within it, and the recall there.

    Returns:
        ``{"thresholds": [{threshold, recall, found_and_iou50, lamp_flagged}], "at_lamp_flagged": {budget:
        {threshold, recall, found_and_iou50, lamp_flagged}}, "n_photos", "n_crops"}``.

    Raises:
        ValueError: Score and IoU lengths differ, or nothing to score.
    """
    # a NaN score is never found nor flagged: below every threshold
    scores = np.nan_to_num(np.asarray(plate_scores, dtype=float), nan=-1.0)
    ious = np.nan_to_num(np.asarray(plate_ious, dtype=float), nan=0.0)
    crops = np.nan_to_num(np.asarray(crop_scores, dtype=float), nan=-1.0)
    if len(scores) != len(ious):
        raise ValueError(f"lengths differ: {len(scores)} plate scores, {len(ious)} IoUs")
    if not len(scores) or not len(crops):
        raise ValueError(f"nothing to score: {len(scores)} photos, {len(crops)} crops")

    def point(t: float) -> dict[str, float]:
        found = scores >= t
        return {"threshold": float(t), "recall": round(float(found.mean()), 4),
                "found_and_iou50": round(float((found & (ious >= 0.5)).mean()), 4),
                "lamp_flagged": round(float((crops >= t).mean()), 4)}

    # flagged share falls as the threshold rises: the lowest candidate within a budget wins (a threshold just
    # above a crop's score leaves that crop out: nextafter)
    candidates = np.nextafter(np.unique(np.concatenate([crops[crops >= 0], [1.0]])), 2.0)
    flagged = (crops[None, :] >= candidates[:, None]).mean(axis=1)
    at_budget = {f"{budget:g}": point(candidates[flagged <= budget].min()) for budget in budgets}
    return {"thresholds": [point(t) for t in thresholds], "at_lamp_flagged": at_budget,
            "n_photos": len(scores), "n_crops": len(crops)}


DETAIL_SHIFTS: tuple[float, ...] = tuple(round(float(x), 2) + 0.0 for x in np.arange(-3.0, 3.001, 0.05))
"""Logit shifts of the detail classes at which :func:`detail_operating_points` reads the angle head."""
EXTERIOR_FLOORS: tuple[float, ...] = (0.95, 0.90)
"""Shares of the real exteriors called exterior at which two angle heads are compared: session 33's rule
(0.95) and issue 10's goal for the three groups (0.90)."""


def detail_operating_points(photo_probs: np.ndarray, crop_probs: np.ndarray, groups: Sequence[str],
                            shifts: Sequence[float] = DETAIL_SHIFTS,
                            floors: Sequence[float] = EXTERIOR_FLOORS) -> dict[str, Any]:
    """How an angle head trades real exteriors called exterior against real lamp close-ups called detail,
    the plate curve's counterpart (:func:`plate_operating_points`): adding ``shift`` to the log-probability
    of every detail class makes the head readier (> 0) or slower (< 0) to say "detail", and a head that is only
    readier moves along this curve. Comparing heads at one exterior rate (``at_exterior_rate``) tells a better
    head from a readier one.

    Args:
        photo_probs: The angle head's class probabilities [N, C] on real exterior photos.
        crop_probs: The same on the lamp close-ups [M, C].
        groups: Each class's group (``exterior``, ``interior``, ``detail``), in the probabilities' order.
        shifts: The logit shifts to read.
        floors: Exterior rates to compare at: for each, the shift among ``shifts`` that calls the most close-ups
            a detail while at least that share of the photos stays exterior.

    Returns:
        ``{"by_shift": [{shift, exterior_rate, crops_called_detail}], "at_shift_0": {...}, "at_exterior_rate":
        {floor: {...} or None when no shift keeps that many}, "n_photos", "n_crops"}``.

    Raises:
        ValueError: Shapes disagree with ``groups``, or nothing to score.
    """
    photo_probs, crop_probs = np.asarray(photo_probs, float), np.asarray(crop_probs, float)
    group_a = np.asarray(groups, dtype=object)
    if photo_probs.ndim != 2 or crop_probs.ndim != 2 or photo_probs.shape[1] != len(group_a) \
            or crop_probs.shape[1] != len(group_a):
        raise ValueError(f"probabilities {photo_probs.shape} / {crop_probs.shape} do not match {len(group_a)} classes")
    if not len(photo_probs) or not len(crop_probs):
        raise ValueError(f"nothing to score: {len(photo_probs)} photos, {len(crop_probs)} crops")
    detail = (group_a == "detail").astype(float)
    photo_log, crop_log = (np.log(np.clip(p, 1e-12, 1.0)) for p in (photo_probs, crop_probs))

    def point(shift: float) -> dict[str, float]:
        photos_called = group_a[np.argmax(photo_log + shift * detail, axis=1)]
        crops_called = group_a[np.argmax(crop_log + shift * detail, axis=1)]
        return {"shift": float(shift), "exterior_rate": round(float((photos_called == "exterior").mean()), 4),
                "crops_called_detail": round(float((crops_called == "detail").mean()), 4)}

    curve = [point(s) for s in shifts]
    at_floor: dict[str, Any] = {}
    for floor in floors:
        kept = [p for p in curve if p["exterior_rate"] >= floor]
        best = max(kept, key=lambda p: (p["crops_called_detail"], p["exterior_rate"])) if kept else None
        at_floor[f"{floor:g}"] = best
    return {"by_shift": curve, "at_shift_0": point(0.0), "at_exterior_rate": at_floor,
            "n_photos": len(photo_probs), "n_crops": len(crop_probs)}
