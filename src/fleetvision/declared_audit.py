"""How often do sellers declare the wrong body type? A random audit of the declared labels (pure).

The body types sellers declare (``import-labels --from-listings``, :mod:`fleetvision.declared_labels`) are
worth what the declarations are right: on the stand-in domain each 10% of wrong declarations cost about
0.1 of body accuracy with the cross-entropy (docs/models.md, *Declared body types*). Before training on
them, people label a **uniform random** sample of the listings the import would take (one photo each),
which estimates the error rate without bias; the listings they find declared wrong then take the type
the labellers saw. (``suggest-labels``' usual picks favour photos whose predicted type disagrees with the
declared one: good for finding mistakes, biased for counting them.)

1. ``fleetvision suggest-labels --audit-declared N`` exports :func:`audit_sample`: ``N`` listings drawn in
   the order of a stable hash of the listing id, each with the photo that shows its profile best (a 3/4
   or side view, :func:`with_profile`: head-on, a hatch and a sedan look alike), the declared type as
   ``suggested_label`` and ``reason`` :data:`AUDIT_REASON`. Labellers write the body type they
   see in ``label`` (or ``unclear``).
2. ``fleetvision import-labels --from-listings --audit <their CSVs>`` reads the answers with
   :func:`audit_estimate`: the share of audited listings declared wrong with a 95% Wilson interval, and
   the corrections (every exterior photo of such a listing gets the labellers' type).

No Spark here: :mod:`fleetvision.suggest_job` and :mod:`fleetvision.labels_import` read and write.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from fleetvision.declared_labels import exterior_share, stable_hash
from fleetvision.label_consensus import normalise_label
from fleetvision.taxonomy import Taxonomy

AUDIT_REASON = "declared_audit"
"""``reason`` of an audit photo in the suggest-labels CSV."""
UNCLEAR = frozenset({"", "unclear", "unknown", "?"})
"""Labels that say nothing about the body type (left out of the estimate)."""


HEAD_ON = frozenset({"full_front", "full_rear"})
"""Exterior views that hide most of the body's profile (a labeller often cannot tell a hatch from a sedan)."""


def with_profile(picked: pd.DataFrame, tags: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """``picked`` with ``profile``: the share of the tags' top-3 probability on exterior views that show the
    body's profile (3/4 and side views, not :data:`HEAD_ON`), from ``tags``' ``angle_top3`` by ``image_id``."""
    views = frozenset(taxonomy.in_group("exterior")) - HEAD_ON
    share = {str(i): exterior_share(top3, views) for i, top3 in zip(tags["image_id"], tags["angle_top3"], strict=True)}
    return picked.assign(profile=[share.get(str(i), 0.0) for i in picked["image_id"]])


def audit_sample(picked: pd.DataFrame, count: int, seed: int = 0) -> pd.DataFrame:
    """``count`` listings drawn uniformly (a stable hash order of the listing id), one photo each.

    Args:
        picked: Photos the import would take (:func:`fleetvision.declared_labels.select_declared`'s
            ``picked``: ``image_id``, ``listing_id``, ``label``, ``exterior``), optionally with
            ``profile`` (:func:`with_profile`).
        count: Listings to draw (all when there are fewer).
        seed: Salt of the draw (another seed, another sample).

    Returns:
        One row per drawn listing, in draw order: the photo that shows its profile most surely where
        there is a ``profile`` column, then the most surely exterior one (ties to the smaller
        ``image_id``), with ``suggested_label`` (the declared type), ``reason`` (:data:`AUDIT_REASON`)
        and ``rank``. Which photo a listing shows does not change which listings are drawn.

    Raises:
        ValueError: ``count`` < 1, or ``picked`` lacks a column.
    """
    if count < 1:
        raise ValueError(f"audit_sample: count must be at least 1, got {count}")
    missing = [c for c in ("image_id", "listing_id", "label", "exterior") if c not in picked.columns]
    if missing:
        raise ValueError(f"audit_sample: picked lacks columns {missing}")
    if picked.empty:
        return picked.assign(suggested_label=[], reason=[], rank=[])
    order = ["profile", "exterior"] if "profile" in picked.columns else ["exterior"]
    best = (
        picked.sort_values(["listing_id", *order, "image_id"], ascending=[True, *[False] * len(order), True])
        .drop_duplicates("listing_id")
        .assign(_order=lambda f: [stable_hash(str(x), f"audit\n{seed}") for x in f["listing_id"]])
        .sort_values(["_order", "listing_id"])
        .head(count)
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    return best.assign(suggested_label=best["label"], reason=AUDIT_REASON, rank=range(1, len(best) + 1))


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% at z = 1.96); (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class AuditEstimate:
    """What the audit found.

    Attributes:
        audited: Listings with a decided answer (labellers' majority named one body type).
        wrong: Of them, listings whose declared type is not the labellers' answer.
        rate: ``wrong / audited`` (None when nothing was audited).
        low, high: Its 95% Wilson interval.
        undecided: Listings whose labels were all unclear, or tied between types.
        labels_ignored: Labels that are not a body type and not an "unclear" word (typos; each named in
            ``ignored``).
        wrong_listings: The listings found declared wrong, sorted.
        corrections: Listing -> (declared, labelled) for each of them.
        ignored: The ignored labels, as written.
    """

    audited: int
    wrong: int
    rate: float | None
    low: float
    high: float
    undecided: int
    labels_ignored: int
    wrong_listings: tuple[str, ...]
    corrections: dict[str, tuple[str, str]]
    ignored: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["wrong_listings"] = list(self.wrong_listings)
        out["corrections"] = {k: list(v) for k, v in self.corrections.items()}
        out["ignored"] = list(self.ignored)
        return out

    def summary(self) -> str:
        if self.rate is None:
            return f"declared-type audit: no listing decided ({self.undecided} undecided)"
        return (
            f"declared-type audit: {self.wrong} of {self.audited} listings declared the wrong body type "
            f"({self.rate:.1%}, 95% interval {self.low:.1%}-{self.high:.1%}; {self.undecided} undecided)"
        )


def audit_estimate(rows: Iterable[Mapping[str, Any]], taxonomy: Taxonomy) -> AuditEstimate:
    """The declaration error rate from labelled audit rows (one or several labellers' CSVs together).

    Args:
        rows: Dicts with ``listing_id``, ``suggested_label`` (the declared type) and ``label`` (what a
            labeller saw); rows with a ``reason`` other than :data:`AUDIT_REASON` are not audit rows and
            are skipped. Body types match case-insensitively, spaces and hyphens as underscores.
        taxonomy: The body types.

    Raises:
        ValueError: A row lacks ``listing_id`` or ``suggested_label``, or declares a type that is not a
            body type (not a CSV ``suggest-labels --audit-declared`` wrote).
    """
    vocab = {b.lower(): b for b in taxonomy.body_types}

    def body(value: Any) -> str | None:
        return vocab.get(normalise_label(str(value or "")))

    declared: dict[str, str] = {}
    votes: dict[str, Counter[str]] = {}
    ignored: list[str] = []
    for row in rows:
        if row.get("reason") not in (None, "", AUDIT_REASON):
            continue
        listing, said = row.get("listing_id"), row.get("suggested_label")
        if not listing or not said:
            raise ValueError(f"audit row without listing_id or suggested_label: {dict(row)}")
        kind = body(said)
        if kind is None:
            raise ValueError(f"audit row of listing {listing}: suggested_label {said!r} is not a body type")
        declared[str(listing)] = kind
        votes.setdefault(str(listing), Counter())
        label = str(row.get("label") or "").strip()
        if label.lower() in UNCLEAR:
            continue
        seen = body(label)
        if seen is None:
            ignored.append(label)
            continue
        votes[str(listing)][seen] += 1
    wrong: dict[str, tuple[str, str]] = {}
    audited = undecided = 0
    for listing, counts in sorted(votes.items()):
        top = counts.most_common(2)
        if not top or (len(top) == 2 and top[0][1] == top[1][1]):
            undecided += 1
            continue
        audited += 1
        if top[0][0] != declared[listing]:
            wrong[listing] = (declared[listing], top[0][0])
    low, high = wilson_interval(len(wrong), audited)
    return AuditEstimate(
        audited=audited,
        wrong=len(wrong),
        rate=len(wrong) / audited if audited else None,
        low=low,
        high=high,
        undecided=undecided,
        labels_ignored=len(ignored),
        wrong_listings=tuple(sorted(wrong)),
        corrections=wrong,
        ignored=tuple(ignored),
    )
