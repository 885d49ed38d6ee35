"""Listing completeness: how good a listing's photo set is, as a 0-100 score with reasons.

One listing at a time, from its ``image_tags`` rows and its ``listings`` row, prepared once by
:func:`fleetvision.scoring.listing_photos.listing_photos`; pure numpy and pandas, so it runs unchanged in
a unit test, a notebook or the listing stage's ``mapInPandas`` (:mod:`fleetvision.scoring.listing_stage`).

The score is the weighted mean (x 100) of five components, each 0-1 (weights: ``scoring.completeness_weights``):

- ``required_shots``: share of the required shots (taxonomy ``required: true``, or
  ``scoring.required_shots``) present among the predicted shot labels;
- ``photo_count``: distinct usable photos / ``scoring.target_photos``, capped at 1;
- ``banner_free``: share of distinct usable photos without a dealer banner;
- ``quality``: mean photo quality (:func:`fleetvision.quality.image_quality`);
- ``no_failures``: share of the listing's photos that decoded.

"Usable" photos decoded and are counted once per distinct content (exact duplicates, same
``content_hash``, count once). ``reasons`` says, in words a seller can act on, what would raise the score.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fleetvision.scoring import COMPONENTS, ScoringRules
from fleetvision.scoring.listing_photos import REQUIRED_TAG_COLUMNS, ListingPhotos, is_missing, listing_photos
from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

__all__ = [
    "COMPLETENESS_COLUMNS",
    "LOW_QUALITY",
    "REQUIRED_TAG_COLUMNS",
    "completeness",
    "completeness_frame",
    "predicted_body_type",
    "resolve_listing_id",
    "shot_phrase",
    "typed_frame",
]

COMPLETENESS_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "seller_type",
    "n_photos",
    "n_scored",
    "n_failed",
    "n_exterior",
    "n_interior",
    "n_detail",
    "shots_present",
    "shots_missing",
    "banner_free_share",
    "plate_visible",
    "mean_quality",
    "declared_body_type",
    "predicted_body_type",
    "body_type_mismatch",
    "completeness_score",
    "components",
    "reasons",
    "scorer_version",
    "computed_at",
    "run_id",
)
"""``tables.LISTING_COMPLETENESS`` field names, in table order."""

LOW_QUALITY = 0.5
"""A photo whose quality (0-1) is below this is called out in the reasons as blurry or badly lit."""

_SIDE_WORDS = {"driver": "driver side", "passenger": "passenger side"}


def shot_phrase(name: str) -> str:
    """A shot class in words: ``rear_3q_passenger`` -> ``rear three-quarter (passenger side)``."""
    parts = name.split("_")
    side = parts[-1] if parts[-1] in _SIDE_WORDS else None
    if side:
        parts = parts[:-1]
    words = " ".join("three-quarter" if p == "3q" else p for p in parts)
    return f"{words} ({_SIDE_WORDS[side]})" if side else words


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _listing_fields(listing: Mapping[str, Any] | pd.Series | pd.DataFrame | None) -> dict[str, Any]:
    if listing is None:
        return {}
    if isinstance(listing, pd.DataFrame):
        if len(listing) == 0:
            return {}
        listing = listing.iloc[0]
    if isinstance(listing, pd.Series):
        listing = listing.to_dict()
    if not isinstance(listing, Mapping):
        raise TypeError(f"listing must be a mapping, Series or one-row DataFrame, got {type(listing).__name__}")
    return {k: (None if is_missing(v) else v) for k, v in listing.items()}


def resolve_listing_id(fields: Mapping[str, Any], tags: pd.DataFrame) -> str:
    """The listing id from the listing row, else from ``tags["listing_id"]``.

    Raises:
        ValueError: None can be found, or ``tags`` holds rows of another (or several) listing(s).
    """
    ids = [str(v) for v in pd.unique(tags["listing_id"].dropna())] if "listing_id" in tags.columns else []
    given = fields.get("listing_id")
    if given is not None:
        others = [i for i in ids if i != str(given)]
        if others:
            raise ValueError(f"tags for listing {given!r} include rows of other listing(s) {others[:5]}")
        return str(given)
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise ValueError("no listing_id: pass a listing row, or tags with a listing_id column")
    raise ValueError(f"tags mix several listings {ids[:5]}; completeness is one listing at a time")


def predicted_body_type(photos: ListingPhotos, rules: ScoringRules) -> tuple[str | None, float | None]:
    """Score-weighted vote over decoded exterior photos: ``(body type, share of the vote)``.

    Votes with ``body_score`` below ``rules.body_min_score`` are ignored (a missing score counts as 0);
    duplicates vote once. Ties go to the alphabetically first type.
    """
    scores = np.where(np.isnan(photos.body_score), 0.0, photos.body_score)
    votes: dict[str, list[float]] = {}
    for i in np.flatnonzero(photos.usable & (photos.shot_group == "exterior") & (scores >= rules.body_min_score)):
        if photos.body_type[i] is not None:
            votes.setdefault(str(photos.body_type[i]), []).append(float(scores[i]))
    if not votes:
        return None, None
    sums = {body: math.fsum(v) for body, v in sorted(votes.items())}
    best = max(sums, key=sums.__getitem__)  # the first of equal sums in alphabetical order
    total = math.fsum(sums.values())
    return best, (sums[best] / total if total > 0 else None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def completeness(
    listing: Mapping[str, Any] | pd.Series | pd.DataFrame | None,
    tags: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    run_id: str | None = None,
    computed_at: datetime | pd.Timestamp | None = None,
    photos: ListingPhotos | None = None,
) -> dict[str, Any]:
    """Score one listing's photo set.

    Args:
        listing: The ``listings`` row (``listing_id``, ``body_type`` or ``declared_body_type``,
            ``seller_type``); None when the listing row is unknown (then ``listing_id`` comes from
            ``tags``).
        tags: The listing's ``image_tags`` rows (see ``REQUIRED_TAG_COLUMNS``); may be empty.
        taxonomy: Shot classes and groups.
        rules: Required shots, weights, thresholds.
        run_id: Written to ``run_id``.
        computed_at: Written to ``computed_at``.
        photos: ``tags`` already prepared by :func:`fleetvision.scoring.listing_photos.listing_photos`
            (the listing stage prepares a listing once for completeness and the hero pick); None
            prepares them here.

    Returns:
        A dict with exactly the keys ``COMPLETENESS_COLUMNS``.

    Raises:
        TypeError: ``tags`` or ``listing`` has the wrong type.
        ValueError: Columns are missing, or ``tags`` holds rows of another listing.
    """
    fields = _listing_fields(listing)
    p = listing_photos(tags, rules) if photos is None else photos
    listing_id = resolve_listing_id(fields, tags)
    declared_raw = fields.get("declared_body_type", fields.get("body_type"))
    declared = str(declared_raw).strip().lower() if declared_raw is not None else None
    seller_type = fields.get("seller_type")

    ok, usable = p.ok, p.usable
    n_photos, n_scored = len(p), int(np.count_nonzero(ok))
    n_failed = n_photos - n_scored
    present_set = {str(a) for a in p.angle[ok] if a is not None}
    shots_present = [n for n in taxonomy.names if n in present_set]
    shots_missing = [n for n in rules.required_shots if n not in present_set]

    n_usable = int(np.count_nonzero(usable))
    n_bannered = int(np.count_nonzero(p.banner & usable))
    banner_free_share = (n_usable - n_bannered) / n_usable if n_usable else None
    plate_visible = bool(np.any(p.plate & ok)) if n_scored else None
    quality = p.quality[usable]
    quality = quality[~np.isnan(quality)]
    mean_quality = float(quality.mean()) if quality.size else None
    predicted, _share = predicted_body_type(p, rules)
    comparable = declared is not None and predicted is not None and declared in taxonomy.body_types
    mismatch = (declared != predicted) if comparable else None

    required = rules.required_shots
    components = {
        "required_shots": (len(required) - len(shots_missing)) / len(required) if required else 1.0,
        "photo_count": min(1.0, n_usable / rules.target_photos),
        "banner_free": banner_free_share if banner_free_share is not None else 0.0,
        "quality": mean_quality if mean_quality is not None else 0.0,
        "no_failures": n_scored / n_photos if n_photos else 0.0,
    }
    weights = rules.weights
    total_weight = sum(weights.get(k, 0.0) for k in COMPONENTS)
    score = 100.0 * sum(weights.get(k, 0.0) * components[k] for k in COMPONENTS) / total_weight
    score = round(float(np.clip(score, 0.0, 100.0)), 2)

    reasons = _reasons(
        n_photos=n_photos,
        n_failed=n_failed,
        failed_codes=[] if p.error_code is None else sorted({str(c) for c in p.error_code[~ok] if c is not None}),
        shots_missing=shots_missing,
        n_usable=n_usable,
        n_bannered=n_bannered,
        n_low_quality=int(np.count_nonzero(quality < LOW_QUALITY)),
        n_duplicates=int(np.count_nonzero(p.duplicate)),
        declared=declared,
        predicted=predicted,
        mismatch=bool(mismatch),
        rules=rules,
    )
    row: dict[str, Any] = {
        "listing_id": listing_id,
        "seller_type": None if seller_type is None else str(seller_type),
        "n_photos": n_photos,
        "n_scored": n_scored,
        "n_failed": n_failed,
        "n_exterior": int(np.count_nonzero(ok & (p.shot_group == "exterior"))),
        "n_interior": int(np.count_nonzero(ok & (p.shot_group == "interior"))),
        "n_detail": int(np.count_nonzero(ok & (p.shot_group == "detail"))),
        "shots_present": shots_present,
        "shots_missing": shots_missing,
        "banner_free_share": None if banner_free_share is None else float(banner_free_share),
        "plate_visible": plate_visible,
        "mean_quality": mean_quality,
        "declared_body_type": declared,
        "predicted_body_type": predicted,
        "body_type_mismatch": mismatch,
        "completeness_score": score,
        "components": {k: round(float(v), 4) for k, v in components.items()},
        "reasons": reasons,
        "scorer_version": rules.version,
        "computed_at": computed_at,
        "run_id": run_id,
    }
    return row


def _reasons(
    *,
    n_photos: int,
    n_failed: int,
    failed_codes: Sequence[str],
    shots_missing: Sequence[str],
    n_usable: int,
    n_bannered: int,
    n_low_quality: int,
    n_duplicates: int,
    declared: str | None,
    predicted: str | None,
    mismatch: bool,
    rules: ScoringRules,
) -> list[str]:
    """What a seller can do, most important first."""
    reasons: list[str] = []
    if n_photos == 0:
        return [f"add photos: the listing has none ({rules.target_photos} recommended)"]
    if n_failed:
        codes = ", ".join(failed_codes) if failed_codes else "unreadable"
        if n_failed == n_photos:
            reasons.append(
                f"none of the {_plural(n_photos, 'photo')} could be read ({codes}): upload them again as JPEG or PNG"
            )
        else:
            reasons.append(
                f"{_plural(n_failed, 'photo')} could not be read ({codes}): upload them again as JPEG or PNG"
            )
    for shot in shots_missing:
        phrase = shot_phrase(shot)
        reasons.append(f"add {_article(phrase)} {phrase} photo")
    if n_bannered:
        verb = "has" if n_bannered == 1 else "have"
        reasons.append(
            f"{_plural(n_bannered, 'photo')} {verb} dealer banners or text overlays: add banner-free versions"
        )
    if n_usable < rules.target_photos:
        reasons.append(f"add more photos: {n_usable} of the {rules.target_photos} recommended")
    if n_low_quality:
        verb = "is" if n_low_quality == 1 else "are"
        reasons.append(f"{_plural(n_low_quality, 'photo')} {verb} blurry or badly lit: retake in good light")
    if n_duplicates:
        verb = "is an exact duplicate" if n_duplicates == 1 else "are exact duplicates"
        reasons.append(f"{_plural(n_duplicates, 'photo')} {verb}: remove or replace")
    if mismatch and declared and predicted and rules.body_mismatch_reason:
        reasons.append(f"the photos look like a {predicted} but the listing says {declared}: check the body type")
    return reasons


def typed_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = COMPLETENESS_COLUMNS) -> pd.DataFrame:
    """Completeness rows (with any other columns named in ``columns``) as a frame with the table's types:
    counts as int32, shares and scores as float64, arrays as lists, ``components`` as a dict."""
    frame = pd.DataFrame(list(rows), columns=list(columns))
    for col in ("n_photos", "n_scored", "n_failed", "n_exterior", "n_interior", "n_detail"):
        if col in frame.columns:
            frame[col] = frame[col].astype(np.int32)
    for col in ("banner_free_share", "mean_quality", "completeness_score"):
        if col in frame.columns:
            frame[col] = frame[col].astype(np.float64)
    return frame


def completeness_frame(
    tags: pd.DataFrame,
    listing: Mapping[str, Any] | pd.Series | pd.DataFrame | None,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    run_id: str | None = None,
    computed_at: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`completeness` as a one-row DataFrame in table column order (:func:`typed_frame`)."""
    return typed_frame([completeness(listing, tags, taxonomy, rules, run_id=run_id, computed_at=computed_at)])
