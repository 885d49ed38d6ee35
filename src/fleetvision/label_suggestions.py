"""Which photos to label next: the pure selection behind ``fleetvision suggest-labels``.

From one night's ``image_tags`` rows (plus the listing's declared body type), each photo gets a
priority and the reasons for it:

* low confidence: the angle's top-1 vs top-2 margin and the entropy of the top-3 (the mass outside
  the top-3 counts as one more outcome); the body score; a banner or plate score near 0.5;
* disagreement between views: the predicted body type is not the listing's declared one (on an
  exterior shot), or a plate is flagged on an interior or detail shot.

Then a greedy farthest-point pass picks ``count`` photos among the most urgent: each step takes the
photo whose priority times its distance (in a vector of the available scores) to the photos already
picked is largest, at most ``per_listing`` from one listing, so one odd listing or one confusing kind
of shot does not fill the batch. Deterministic: ties go to the smaller ``image_id``.

No Spark here: :mod:`fleetvision.suggest_job` reads the tables and writes the folder and CSV.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

TAG_COLUMNS: tuple[str, ...] = (
    "image_id",
    "listing_id",
    "angle",
    "angle_score",
    "angle_top3",
    "shot_group",
    "banner_score",
    "plate_score",
    "plate_flag",
    "body_type",
    "body_score",
    "declared_body_type",
)
"""Columns :func:`select_photos` reads (``image_tags`` plus ``listings.body_type`` as declared)."""

CSV_COLUMNS: tuple[str, ...] = (
    "image_id",
    "file",
    "uri",
    "listing_id",
    "suggested_label",
    "reason",
    "labeller",
    "label",
)
"""The labelling CSV: ``label`` (and ``labeller``, else the CSV's name) is filled by people;
``fleetvision import-labels --votes`` reads it back (``file`` is relative to the export folder)."""

_GROUPS = ("exterior", "interior", "detail")


@dataclass(frozen=True)
class SuggestSpec:
    """How many photos to pick and how.

    Attributes:
        count: Photos to pick.
        per_listing: At most this many from one listing.
        pool_factor: The farthest-point pass looks at the ``count * pool_factor`` most urgent photos.
        disagreement_weight: Priority added per disagreement between views.
    """

    count: int
    per_listing: int = 2
    pool_factor: int = 5
    disagreement_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"suggest-labels: count must be >= 1, got {self.count}")
        if self.per_listing < 1:
            raise ValueError(f"suggest-labels: per_listing must be >= 1, got {self.per_listing}")
        if self.pool_factor < 1:
            raise ValueError(f"suggest-labels: pool_factor must be >= 1, got {self.pool_factor}")
        if self.disagreement_weight < 0:
            raise ValueError(f"suggest-labels: disagreement_weight must be >= 0, got {self.disagreement_weight}")


def _top3(value: Any) -> list[tuple[str, float]]:
    """``angle_top3`` as (label, score) pairs, from Spark Rows, dicts or tuples."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    out = []
    for item in value:
        if item is None:
            continue
        if isinstance(item, Mapping):
            label, score = item.get("label"), item.get("score")
        elif hasattr(item, "asDict"):
            d = item.asDict()
            label, score = d.get("label"), d.get("score")
        else:
            label, score = item[0], item[1]
        if label is not None and score is not None:
            out.append((str(label), float(score)))
    return sorted(out, key=lambda p: -p[1])


def _num(value: Any, default: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else f


def _undecided(score: Any) -> float:
    """1 at 0.5, 0 at 0 or 1; 0 when unknown."""
    return 1.0 - abs(2.0 * _num(score, 0.0) - 1.0) if score is not None else 0.0


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def score_photos(tags: pd.DataFrame, disagreement_weight: float = 1.0) -> pd.DataFrame:
    """Priority and reasons for each photo.

    Args:
        tags: Rows with :data:`TAG_COLUMNS` (missing optional columns read as unknown).
        disagreement_weight: Priority added per disagreement between views.

    Returns:
        ``tags`` with ``margin``, ``entropy``, ``uncertainty``, ``disagreements``, ``priority`` and
        ``reason`` columns added.

    Raises:
        ValueError: ``image_id`` or ``listing_id`` is missing.
    """
    missing = [c for c in ("image_id", "listing_id") if c not in tags.columns]
    if missing:
        raise ValueError(f"score_photos: missing column(s) {missing}")
    margins, entropies, uncertainties, disagreements, reasons = [], [], [], [], []
    for row in tags.to_dict("records"):
        top = _top3(row.get("angle_top3"))
        if not top and row.get("angle") is not None:
            top = [(str(row["angle"]), _num(row.get("angle_score"), 0.0))]
        p = np.array([s for _, s in top], np.float64)
        rest = max(0.0, 1.0 - p.sum())
        dist = np.append(p, rest)
        dist = dist[dist > 0]
        entropy = float(-(dist * np.log(dist)).sum() / math.log(4)) if len(dist) else 1.0
        margin = float(p[0] - (p[1] if len(p) > 1 else 0.0)) if len(p) else 0.0
        body_unsure = 1.0 - _num(row.get("body_score"), 1.0) if _text(row.get("body_type")) else 0.0
        banner_unsure, plate_unsure = _undecided(row.get("banner_score")), _undecided(row.get("plate_score"))
        uncertainty = (1.0 - margin) + entropy + 0.5 * body_unsure + 0.25 * (banner_unsure + plate_unsure)
        why = []
        if top:
            pair = f"{top[0][0]} {top[0][1]:.2f}" + (f" vs {top[1][0]} {top[1][1]:.2f}" if len(top) > 1 else "")
            why.append(f"angle margin {margin:.2f} ({pair})")
        if body_unsure >= 0.5:
            why.append(f"body {row.get('body_type')} at {1 - body_unsure:.2f}")
        if banner_unsure >= 0.6:
            why.append(f"banner score {_num(row.get('banner_score'), 0):.2f}")
        if plate_unsure >= 0.6:
            why.append(f"plate score {_num(row.get('plate_score'), 0):.2f}")
        n_dis = 0
        group, body, declared = _text(row.get("shot_group")), _text(row.get("body_type")), _text(
            row.get("declared_body_type")
        )
        if group == "exterior" and body and declared and body.lower() != declared.lower():
            n_dis += 1
            why.append(f"body {body} but the listing says {declared}")
        if group in ("interior", "detail") and bool(row.get("plate_flag")) and row.get("plate_flag") is not None:
            n_dis += 1
            why.append(f"plate flagged on a {group} shot")
        margins.append(margin)
        entropies.append(entropy)
        uncertainties.append(uncertainty)
        disagreements.append(n_dis)
        reasons.append("; ".join(why) if why else "diversity")
    out = tags.copy()
    out["margin"], out["entropy"], out["uncertainty"] = margins, entropies, uncertainties
    out["disagreements"] = disagreements
    out["priority"] = out["uncertainty"] + disagreement_weight * out["disagreements"]
    out["reason"] = reasons
    return out


def photo_features(tags: pd.DataFrame) -> np.ndarray:
    """A vector per photo from the available scores: the top-3 angle scores spread over the angle
    labels seen, the shot group, banner, plate and body scores, and the body type. float [N, D]."""
    rows = tags.to_dict("records")
    labels = sorted({lab for r in rows for lab, _ in _top3(r.get("angle_top3"))} | {
        str(r["angle"]) for r in rows if _text(r.get("angle"))
    })
    bodies = sorted({str(r["body_type"]) for r in rows if _text(r.get("body_type"))})
    li, bi = {lab: i for i, lab in enumerate(labels)}, {b: i for i, b in enumerate(bodies)}
    width = len(labels) + len(_GROUPS) + 3 + len(bodies)
    feats = np.zeros((len(rows), width), np.float64)
    for n, r in enumerate(rows):
        top = _top3(r.get("angle_top3")) or (
            [(str(r["angle"]), _num(r.get("angle_score"), 1.0))] if _text(r.get("angle")) else []
        )
        for lab, s in top:
            feats[n, li[lab]] = s
        group = _text(r.get("shot_group"))
        if group in _GROUPS:
            feats[n, len(labels) + _GROUPS.index(group)] = 1.0
        base = len(labels) + len(_GROUPS)
        feats[n, base] = _num(r.get("banner_score"), 0.0)
        feats[n, base + 1] = _num(r.get("plate_score"), 0.0)
        feats[n, base + 2] = _num(r.get("body_score"), 0.0)
        body = _text(r.get("body_type"))
        if body in bi:
            feats[n, base + 3 + bi[body]] = 1.0
    return feats


def farthest_point_order(
    features: np.ndarray, priority: np.ndarray, groups: Sequence[str], k: int, per_group: int
) -> list[int]:
    """Greedy pick of up to ``k`` rows: first the most urgent, then each step the row with the
    largest ``priority * (distance to the nearest picked row + 1e-6)``, at most ``per_group`` per group.

    Rows are expected in tie-break order (the first of equals wins).

    Returns:
        Row positions, in the order picked.
    """
    n = len(priority)
    if n == 0 or k <= 0:
        return []
    nearest = np.full(n, np.inf)
    taken = np.zeros(n, bool)
    per: dict[str, int] = {}
    order: list[int] = []
    while len(order) < k:
        eligible = ~taken & np.array([per.get(g, 0) < per_group for g in groups])
        if not eligible.any():
            break
        gain = np.where(np.isinf(nearest), 1.0, nearest + 1e-6) * np.maximum(priority, 1e-9)
        gain = np.where(eligible, gain, -np.inf)
        pick = int(np.argmax(gain))
        order.append(pick)
        taken[pick] = True
        per[groups[pick]] = per.get(groups[pick], 0) + 1
        nearest = np.minimum(nearest, np.linalg.norm(features - features[pick], axis=1))
    return order


def select_photos(tags: pd.DataFrame, spec: SuggestSpec) -> pd.DataFrame:
    """The photos most worth labelling next, most useful first.

    Args:
        tags: One row per scored photo with :data:`TAG_COLUMNS`.
        spec: How many and how.

    Returns:
        The picked rows with ``suggested_label`` (the predicted shot), ``reason``, ``priority`` and
        ``rank`` (1 = first); empty when ``tags`` is.
    """
    if tags.empty:
        return tags.assign(suggested_label=[], reason=[], priority=[], rank=[])
    scored = score_photos(tags, spec.disagreement_weight)
    scored = scored.sort_values(["priority", "image_id"], ascending=[False, True], kind="mergesort")
    pool = scored.head(spec.count * spec.pool_factor).reset_index(drop=True)
    order = farthest_point_order(
        photo_features(pool),
        pool["priority"].to_numpy(np.float64),
        [str(x) for x in pool["listing_id"]],
        spec.count,
        spec.per_listing,
    )
    picked = pool.iloc[order].reset_index(drop=True)
    picked["suggested_label"] = [_text(a) or "" for a in picked.get("angle", pd.Series([None] * len(picked)))]
    picked["rank"] = np.arange(1, len(picked) + 1)
    return picked


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def photo_file_name(image_id: str) -> str:
    """A safe file name for a photo, from its ``image_id`` (unsafe characters become ``_``)."""
    stem = _UNSAFE.sub("_", image_id).strip("._") or "photo"
    return f"{stem[:120]}.jpg"


def export_jpeg(data: bytes, max_side: int = 1024) -> bytes | None:
    """The photo as JPEG for labellers: a JPEG no larger than ``max_side`` is kept byte for byte,
    anything else is decoded (Pillow's decompression-bomb limit on), turned upright and RGB, shrunk
    and re-encoded. None when the bytes are not a readable image."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG" and max(im.size) <= max_side and im.getexif().get(0x0112, 1) == 1:
                return data
            im.load()
            rgb = (ImageOps.exif_transpose(im) or im).convert("RGB")
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            rgb.save(out, "JPEG", quality=92)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
