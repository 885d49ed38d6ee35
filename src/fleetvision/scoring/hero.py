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
from fleetvision.scoring.completeness import listing_tags, resolve_listing_id, with_quality
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


def _candidates(tags: pd.DataFrame, rules: ScoringRules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(all rows prepared, decoded distinct rows with ranking columns)``."""
    df = with_quality(listing_tags(tags), rules)
    cand = df[df["is_ok"] & ~df["is_duplicate"]].copy()
    pref_index = {name: i for i, name in enumerate(rules.hero_preference)}
    angle_score = pd.to_numeric(cand["angle_score"], errors="coerce").fillna(0.0)
    cand["preferred"] = cand["angle"].isin(list(pref_index)) & (angle_score >= rules.hero_min_angle_score)
    cand["pref_rank"] = [pref_index[a] if p else len(pref_index) for a, p in zip(cand["angle"], cand["preferred"])]
    group_rank = {g: i for i, g in enumerate(GROUPS)}
    cand["group_rank"] = [group_rank.get(g, len(GROUPS)) for g in cand["shot_group"]]
    cand["tier"] = np.where(cand["preferred"], 0, 2) + cand["banner"].astype(int)
    cand["neg_quality"] = -cand["quality"].fillna(-1.0)
    return df, cand


def _rank_hero(cand: pd.DataFrame) -> pd.DataFrame:
    return cand.sort_values(["tier", "pref_rank", "group_rank", "neg_quality", "_pos", "image_id"], kind="stable")


def pick_hero(tags: pd.DataFrame, taxonomy: Taxonomy, rules: ScoringRules) -> HeroPick:
    """Choose a listing's hero photo by shot type, banner, then quality.

    Args:
        tags: The listing's ``image_tags`` rows (see ``completeness.REQUIRED_TAG_COLUMNS``).
        taxonomy: Shot classes (for the group of each label).
        rules: ``hero_preference``, ``hero_min_angle_score`` and the quality thresholds.

    Returns:
        The hero and a reason such as ``"front_3q_driver, banner-free, best quality of 2"``.

    Raises:
        ValueError: Required columns are missing.
    """
    df, cand = _candidates(tags, rules)
    if df.empty:
        return HeroPick(None, "no photos")
    if cand.empty:
        return HeroPick(None, f"no decodable photo (all {len(df)} failed)")
    ranked = _rank_hero(cand)
    best = ranked.iloc[0]
    angle = str(best["angle"]) if pd.notna(best["angle"]) else "unknown shot"
    banner_free = not bool(best["banner"])
    same = cand[(cand["angle"] == best["angle"]) & (cand["banner"] == best["banner"])]
    parts = [angle]
    if best["preferred"]:
        parts.append("banner-free" if banner_free else "has a banner (no banner-free preferred shot)")
        better = [n for n in rules.hero_preference[: int(best["pref_rank"])]]
        if better and banner_free:
            bannered_better = sorted(
                set(cand.loc[cand["banner"] & cand["preferred"], "angle"]) & set(better),
                key=rules.hero_preference.index,
            )
            if bannered_better:
                parts.append(f"preferred over bannered {', '.join(bannered_better)}")
            else:
                parts.append(f"no {' or '.join(better[:3])}{' or other preferred shot' if len(better) > 3 else ''}")
    else:
        group = best["shot_group"] if pd.notna(best["shot_group"]) else "unknown group"
        parts[0] = f"{angle} ({group})"
        parts.append("no preferred exterior shot")
        parts.append("banner-free" if banner_free else "has a banner")
    if len(same) > 1:
        parts.append(f"best quality of {len(same)}")
    return HeroPick(str(best["image_id"]), ", ".join(parts))


def gallery_order(
    tags: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    hero_image_id: str | None = None,
) -> GalleryOrder:
    """The listing's photos in canonical display order.

    Args:
        tags: The listing's ``image_tags`` rows.
        taxonomy: Shot classes and their order.
        rules: ``gallery_exterior_order``, ``gallery_hero_first`` and the quality thresholds.
        hero_image_id: The hero (default: :func:`pick_hero`), put first when ``gallery_hero_first``.

    Returns:
        Image ids in order (failed decodes and duplicates excluded) and the duplicates removed.

    Raises:
        ValueError: Required columns are missing.
    """
    df, cand = _candidates(tags, rules)
    duplicates = [str(i) for i in df.loc[df["is_ok"] & df["is_duplicate"], "image_id"]]
    if cand.empty:
        return GalleryOrder([], duplicates)
    exterior_rank = {name: i for i, name in enumerate(rules.gallery_exterior_order)}
    class_rank = []
    for angle, group in zip(cand["angle"], cand["shot_group"]):
        if group == "exterior" and angle in exterior_rank:
            class_rank.append(exterior_rank[angle])
        else:
            try:
                class_rank.append(len(exterior_rank) + taxonomy.index(str(angle)))
            except KeyError:
                class_rank.append(len(exterior_rank) + taxonomy.num_classes)
    cand["class_rank"] = class_rank
    cand["banner_rank"] = cand["banner"].astype(int)
    ordered = cand.sort_values(
        ["banner_rank", "group_rank", "class_rank", "neg_quality", "_pos", "image_id"], kind="stable"
    )
    order = [str(i) for i in ordered["image_id"]]
    if rules.gallery_hero_first:
        if hero_image_id is None:
            hero_image_id = pick_hero(tags, taxonomy, rules).image_id
        if hero_image_id is not None and hero_image_id in order:
            order.remove(hero_image_id)
            order.insert(0, hero_image_id)
    return GalleryOrder(order, duplicates)


def hero_row(
    tags: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: ScoringRules,
    *,
    listing_id: str | None = None,
    run_id: str | None = None,
    computed_at: datetime | pd.Timestamp | None = None,
) -> dict[str, Any]:
    """One ``hero_images`` row as a dict with exactly the keys ``HERO_COLUMNS``.

    Raises:
        ValueError: No listing_id (neither given nor in ``tags``), or ``tags`` mixes listings.
    """
    lid = resolve_listing_id({"listing_id": listing_id}, tags)
    hero = pick_hero(tags, taxonomy, rules)
    gallery = gallery_order(tags, taxonomy, rules, hero_image_id=hero.image_id)
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
    """:func:`hero_row` as a one-row DataFrame in table column order (for ``applyInPandas``)."""
    row = hero_row(tags, taxonomy, rules, listing_id=listing_id, run_id=run_id, computed_at=computed_at)
    return pd.DataFrame([row], columns=list(HERO_COLUMNS))
