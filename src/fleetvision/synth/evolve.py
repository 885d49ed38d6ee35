"""One day of marketplace churn, planned as data (no Spark): what to add, remove, replace and edit.

:func:`plan_day` looks at the current listings and photos and picks ``rate`` of the active listings
to change (sold, edited, photos added, photos removed, photos re-shot) plus a few new listings.
Every choice comes from ``(seed, "evolve", day, listing)``, so the same day on the same inventory
always changes the same things. The job applies the plan as Delta MERGEs and returns the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from fleetvision.synth.inventory import (
    InventorySettings,
    ListingPlan,
    PhotoPlan,
    day_time,
    listing_index,
    photo_plan,
    plan_listing,
    plan_photos,
)
from fleetvision.synth.rng import derive_rng, weighted_choice
from fleetvision.taxonomy import Taxonomy

ACTIONS: dict[str, float] = {
    "sold": 0.2, "edited": 0.2, "photos_added": 0.25, "photos_removed": 0.15, "photos_replaced": 0.2,
}
NEW_LISTING_SHARE = 0.3  # new listings per changed listing


@dataclass
class DayChange:
    """A planned day of churn and the report of it."""

    day: int
    listing_rows: list[dict[str, Any]] = field(default_factory=list)  # full rows to upsert (changed + new)
    new_listings: list[ListingPlan] = field(default_factory=list)
    added: list[PhotoPlan] = field(default_factory=list)  # new rows (existing and new listings)
    replaced: list[PhotoPlan] = field(default_factory=list)  # same image_id, new photo
    removed: list[str] = field(default_factory=list)  # image_ids
    removed_from: set[str] = field(default_factory=set)  # their listing ids
    sold: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """What changed, as counts and ids (sorted)."""
        ids = {
            "listings_added": sorted(p.listing_id for p in self.new_listings),
            "listings_sold": sorted(self.sold),
            "listings_edited": sorted(self.edited),
            "images_added": sorted(p.image_id for p in self.added),
            "images_removed": sorted(self.removed),
            "images_replaced": sorted(p.image_id for p in self.replaced),
        }
        changed = {r["listing_id"] for r in self.listing_rows} | {p.listing_id for p in self.added + self.replaced}
        changed |= self.removed_from
        return {"day": self.day, "counts": {k: len(v) for k, v in ids.items()},
                "listings_changed": sorted(changed), **ids}


def _t(day: int, rng_minutes: int) -> datetime:
    return day_time(day) + timedelta(minutes=rng_minutes)


def plan_day(
    settings: InventorySettings,
    taxonomy: Taxonomy,
    listings: Sequence[Mapping[str, Any]],
    images: Sequence[Mapping[str, Any]],
    day: int,
    rate: float,
    angles: Mapping[str, str | None] | None = None,
) -> DayChange:
    """Plan day ``day``'s churn on an inventory.

    Args:
        settings: The inventory's settings (seed, listing count it was made with, market).
        taxonomy: Shot classes.
        listings: Current ``listings`` rows (all columns).
        images: Current ``listing_images`` rows (image_id, listing_id, position at least).
        day: The day number (1 for the first day after generation).
        rate: Share of active listings to change (``synth.evolve_rate``).
        angles: image_id -> shot (from ``image_labels``) so a re-shot photo keeps its shot.

    Returns:
        The plan; ``report()`` lists every changed id.

    Raises:
        ValueError: ``rate`` outside 0..1 or ``day`` < 1.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"evolve rate must be within 0..1, got {rate}")
    if day < 1:
        raise ValueError(f"day must be >= 1 (day 0 is the generated inventory), got {day}")
    change = DayChange(day)
    rng = derive_rng(settings.seed, "evolve", day)
    active = sorted(r["listing_id"] for r in listings if r.get("status") == "active")
    by_listing: dict[str, list[Mapping[str, Any]]] = {}
    for img in images:
        by_listing.setdefault(str(img["listing_id"]), []).append(img)
    rows = {str(r["listing_id"]): dict(r) for r in listings}
    k = min(len(active), round(rate * len(active)))
    chosen = sorted(active[int(i)] for i in rng.choice(len(active), size=k, replace=False)) if k else []
    angles = angles or {}
    for lid in chosen:
        lrng = derive_rng(settings.seed, "evolve", day, lid)
        action = weighted_choice(lrng, ACTIONS)
        when = _t(day, int(lrng.integers(0, 24 * 60)))
        have = sorted(by_listing.get(lid, []), key=lambda r: (r.get("position") or 0, r["image_id"]))
        if action in ("photos_removed", "photos_replaced") and len(have) < 2:
            action = "photos_added"
        if action == "sold":
            change.listing_rows.append({**rows[lid], "status": "sold", "updated_at": when})
            change.sold.append(lid)
        elif action == "edited":
            year = int(rows[lid].get("year") or 2015)
            change.listing_rows.append({**rows[lid], "year": year + (1 if lrng.random() < 0.5 else -1),
                                        "updated_at": when})
            change.edited.append(lid)
        elif action == "photos_removed":
            n = min(len(have) - 1, int(lrng.integers(1, 3)))
            for i in sorted(lrng.choice(len(have), size=n, replace=False)):
                change.removed.append(str(have[int(i)]["image_id"]))
                change.removed_from.add(lid)
        else:
            plan = plan_listing(settings, listing_index(lid))
            plan = _declared(plan, rows[lid])
            if action == "photos_added":
                shown = {angles.get(str(r["image_id"])) for r in have}
                missing = [c for c in taxonomy.required if c not in shown]
                top = max([int(r.get("position") or 0) for r in have] or [0])
                for j in range(int(lrng.integers(1, 4))):
                    shot = missing[j] if j < len(missing) else taxonomy.names[int(lrng.integers(taxonomy.num_classes))]
                    pid = f"{lid}-d{day}-{j:02d}"
                    change.added.append(photo_plan(settings, taxonomy, plan, shot, pid, pid, top + j + 1, when))
            else:  # re-shot photos: same row, new file
                n = min(len(have), int(lrng.integers(1, 3)))
                for i in sorted(lrng.choice(len(have), size=n, replace=False)):
                    old = have[int(i)]
                    shot = angles.get(str(old["image_id"])) or taxonomy.names[int(lrng.integers(taxonomy.num_classes))]
                    pid = f"{old['image_id']}-r{day}"
                    change.replaced.append(photo_plan(settings, taxonomy, plan, shot, pid, str(old["image_id"]),
                                                      int(old.get("position") or 0), when))
    n_new = round(len(chosen) * NEW_LISTING_SHARE)
    top_index = max([listing_index(lid) for lid in rows] or [-1])
    for j in range(n_new):
        plan = plan_listing(settings, top_index + 1 + j, day=day)
        change.new_listings.append(plan)
        change.listing_rows.append(plan.row())
        change.added.extend(plan_photos(settings, taxonomy, plan))
    return change


def _declared(plan: ListingPlan, row: Mapping[str, Any]) -> ListingPlan:
    """The planned car, with what the table says now (an edit may have changed the declared fields)."""
    return replace(plan, make=row.get("make") or plan.make, model=row.get("model") or plan.model,
                   seller_type=row.get("seller_type") or plan.seller_type,
                   seller_id=row.get("seller_id") or plan.seller_id)
