"""The hero photo (the one that leads a listing) and the canonical gallery order.

The shot type drives the pick. Taking "the first banner-free photo" gives heroes of wheels and
dashboards, so candidates are ranked, best first, by:

1. a preferred exterior shot (``scoring.hero_preference``, predicted with at least
   ``scoring.hero_min_angle_score``) without a banner;
2. a preferred shot with a banner;
3. any other shot without a banner, exterior before interior before detail;
4. any other shot with a banner;

then, within a tier, by the position of the shot in the preference list, then by photo quality
(sharpness x exposure), then by the seller's position. Failed decodes are never heroes, and exact
duplicates (same ``content_hash``) count once.

The gallery order is a walk-around of the car (``scoring.gallery_exterior_order``), then the interior,
then details (taxonomy order), with every bannered photo after every banner-free one; the hero leads
when ``scoring.gallery_hero_first``. Failed decodes are left out and duplicates are removed (listed in
``duplicates_removed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from fleetvision.scoring import ScoringRules
from fleetvision.scoring.completeness import resolve_listing_id
from fleetvision.scoring.listing_photos import ListingPhotos, listing_photos
from fleetvision.taxonomy import GROUPS, Taxonomy

logger = logging.getLogger(__name__)

HERO_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "hero_image_id",
    "hero_reason",
    "gallery_order",
    "duplicates_removed",
    "scorer_version",
    "computed_at",
    "run_id",
)
"""``tables.HERO_IMAGES`` field names, in table order."""


@dataclass(frozen=True)
class HeroPick:
    """The hero photo and why it won (``image_id`` None when the listing has no decodable photo)."""

    image_id: str | None
    reason: str


@dataclass(frozen=True)
class GalleryOrder:
    """Image ids in display order, and the exact duplicates left out."""

    order: list[str]
    duplicates_removed: list[str]


@dataclass(frozen=True)
class _Candidate:
    """A decoded, distinct photo of a :class:`ListingPhotos` with what ranks it."""

    image_id: str
    angle: Any
    shot_group: Any
    banner: bool
    preferred: bool
    pref_rank: int
    group_rank: int
    neg_quality: float
    position: float


def _candidates(p: ListingPhotos, rules: ScoringRules) -> list[_Candidate]:
    """The decoded distinct photos, in the seller's order, with their ranking keys."""
    pref_index = {name: i for i, name in enumerate(rules.hero_preference)}
    group_rank = {g: i for i, g in enumerate(GROUPS)}
    out = []
    for i in np.flatnonzero(p.usable):
        angle, score, quality = p.angle[i], p.angle_score[i], p.quality[i]
        preferred = angle in pref_index and (0.0 if np.isnan(score) else score) >= rules.hero_min_angle_score
        out.append(_Candidate(
            image_id=p.image_id[i],
            angle=angle,
            shot_group=p.shot_group[i],
            banner=bool(p.banner[i]),
            preferred=preferred,
            pref_rank=pref_index[angle] if preferred else len(pref_index),
            group_rank=group_rank.get(p.shot_group[i], len(GROUPS)),
            neg_quality=1.0 if np.isnan(quality) else -float(quality),
            position=float(p.position[i]),
        ))
    return out


def _pick(p: ListingPhotos, cand: list[_Candidate], rules: ScoringRules) -> HeroPick:
    """The hero among ``cand`` (:func:`_candidates` of ``p``) and why."""
    if len(p) == 0:
        return HeroPick(None, "no photos")
    if not cand:
        return HeroPick(None, f"no decodable photo (all {len(p)} failed)")
    best = min(cand, key=lambda c: ((0 if c.preferred else 2) + c.banner, c.pref_rank, c.group_rank,
                                    c.neg_quality, c.position, c.image_id))
    angle = str(best.angle) if best.angle is not None else "unknown shot"
    banner_free = not best.banner
    same = sum(1 for c in cand if best.angle is not None and c.angle == best.angle and c.banner == best.banner)
    parts = [angle]
    if best.preferred:
        parts.append("banner-free" if banner_free else "has a banner (no banner-free preferred shot)")
        better = list(rules.hero_preference[: best.pref_rank])
        if better and banner_free:
            bannered_better = sorted(
                {c.angle for c in cand if c.banner and c.preferred} & set(better), key=rules.hero_preference.index
            )
            if bannered_better:
                parts.append(f"preferred over bannered {', '.join(bannered_better)}")
            else:
                parts.append(f"no {' or '.join(better[:3])}{' or other preferred shot' if len(better) > 3 else ''}")
    else:
        group = best.shot_group if best.shot_group is not None else "unknown group"
        parts[0] = f"{angle} ({group})"
        parts.append("no preferred exterior shot")
        parts.append("banner-free" if banner_free else "has a banner")
    if same > 1:
        parts.append(f"best quality of {same}")
    return HeroPick(str(best.image_id), ", ".join(parts))


def pick_hero(
    tags: pd.DataFrame, taxonomy: Taxonomy, rules: ScoringRules, *, photos: ListingPhotos | None = None
) -> HeroPick:
    """Choose a listing's hero photo by shot type, banner, then quality.

    Args:
        tags: The listing's ``image_tags`` rows (see ``listing_photos.REQUIRED_TAG_COLUMNS``).
        taxonomy: Shot classes (for the group of each label).
        rules: ``hero_preference``, ``hero_min_angle_score`` and the quality thresholds.
        photos: ``tags`` already prepared by :func:`listing_photos` (None: prepared here).

    Returns:
        The hero and a reason such as ``"front_3q_driver, banner-free, best quality of 2"``.

    Raises:
        ValueError: Required columns are missing.
    """
    p = listing_photos(tags, rules) if photos is None else photos
    return _pick(p, _candidates(p, rules), rules)


def _gallery(p: ListingPhotos, cand: list[_Candidate], taxonomy: Taxonomy, rules: ScoringRules,
             hero_image_id: str | None) -> GalleryOrder:
    """``cand`` (:func:`_candidates` of ``p``) in display order, and ``p``'s duplicates."""
    duplicates = [str(i) for i in p.image_id[p.ok & p.duplicate]]
    if not cand:
        return GalleryOrder([], duplicates)
    exterior_rank = {name: i for i, name in enumerate(rules.gallery_exterior_order)}

    def class_rank(c: _Candidate) -> int:
        if c.shot_group == "exterior" and c.angle in exterior_rank:
            return exterior_rank[c.angle]
        try:
            return len(exterior_rank) + taxonomy.index(str(c.angle))
        except KeyError:
            return len(exterior_rank) + taxonomy.num_classes

    ordered = sorted(cand, key=lambda c: (int(c.banner), c.group_rank, class_rank(c), c.neg_quality, c.position,
                                          c.image_id))
    order = [str(c.image_id) for c in ordered]
    if rules.gallery_hero_first:
        if hero_image_id is None:
            hero_image_id = _pick(p, cand, rules).image_id
        if hero_image_id is not None and hero_image_id in order:
            order.remove(hero_image_id)
            order.insert(0, hero_image_id)
    return GalleryOrder(order, duplicates)


def gallery_order(
    tags: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    hero_image_id: str | None = None,
    *,
    photos: ListingPhotos | None = None,
) -> GalleryOrder:
    """The listing's photos in canonical display order.

    Args:
        tags: The listing's ``image_tags`` rows.
        taxonomy: Shot classes and their order.
        rules: ``gallery_exterior_order``, ``gallery_hero_first`` and the quality thresholds.
        hero_image_id: The hero (default: :func:`pick_hero`), put first when ``gallery_hero_first``.
        photos: ``tags`` already prepared by :func:`listing_photos` (None: prepared here).

    Returns:
        Image ids in order (failed decodes and duplicates excluded) and the duplicates removed.

    Raises:
        ValueError: Required columns are missing.
    """
    p = listing_photos(tags, rules) if photos is None else photos
    return _gallery(p, _candidates(p, rules), taxonomy, rules, hero_image_id)


def hero_row(
    tags: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    listing_id: str | None = None,
    run_id: str | None = None,
    computed_at: datetime | pd.Timestamp | None = None,
    photos: ListingPhotos | None = None,
) -> dict[str, Any]:
    """One ``hero_images`` row as a dict with exactly the keys ``HERO_COLUMNS``.

    ``photos``: ``tags`` already prepared by :func:`listing_photos` (None: prepared here).

    Raises:
        ValueError: No listing_id (neither given nor in ``tags``), or ``tags`` mixes listings.
    """
    lid = resolve_listing_id({"listing_id": listing_id}, tags)
    p = listing_photos(tags, rules) if photos is None else photos
    cand = _candidates(p, rules)  # ranked once for the hero and the gallery
    hero = _pick(p, cand, rules)
    gallery = _gallery(p, cand, taxonomy, rules, hero.image_id)
    return {
        "listing_id": lid,
        "hero_image_id": hero.image_id,
        "hero_reason": hero.reason,
        "gallery_order": gallery.order,
        "duplicates_removed": gallery.duplicates_removed,
        "scorer_version": rules.version,
        "computed_at": computed_at,
        "run_id": run_id,
    }


def hero_frame(
    tags: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    listing_id: str | None = None,
    run_id: str | None = None,
    computed_at: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`hero_row` as a one-row DataFrame in table column order (for a per-listing ``applyInPandas``)."""
    row = hero_row(tags, taxonomy, rules, listing_id=listing_id, run_id=run_id, computed_at=computed_at)
    return pd.DataFrame([row], columns=list(HERO_COLUMNS))
