"""Body-type labels that sellers already gave: the listing's declared body type on its exterior photos (pure).

Every listing declares its body type (``listings.body_type``); every exterior photo of the listing shows
that car. So the warehouse holds, for free, a body label on most of the inventory's exterior photos:
noisy (a seller picks the wrong type now and then, a photo may show a neighbour's car) but real photos
of the marketplace's own cars, in numbers no labeller would reach. ``fleetvision import-labels
--from-listings`` (:mod:`fleetvision.labels_import`) turns them into ``training_images`` rows for the
body head; this module decides which photos, from one frame of ``image_tags`` rows joined with the
declared type, with no Spark:

* the photo decoded (``decode_status`` ok) and the last night's tags call it **exterior** with at least
  ``min_exterior`` of the angle model's top-3 probability on exterior classes (interiors and details
  show no body type; an unsure group call is left out);
* the declared type is one of the taxonomy's body types (case and spaces ignored; anything else is
  dropped as ``unknown_label``, with what was declared);
* one row per photo content: copies of one photo in listings that declare **different** types are all
  dropped (``conflicting_declared_types``); otherwise the lowest ``image_id`` stays (the others:
  ``duplicate``);
* at most ``per_listing`` photos of one listing (its most surely exterior ones), so a listing with 40
  photos does not outweigh 10 listings of the same type;
* at most ``per_type`` photos of one body type, taken listing by listing in the order of a stable hash
  of the listing id (only the last listing taken may be cut), so the common types do not drown the
  rare ones.

The split (train/val/eval) is drawn from the **listing** id, so all photos of one car land on the same
side. The labels are the sellers' and are not checked against the model: a filter on the model's
agreement would keep only what it already believes. Fine-tune from them like any import
(``fleetvision train body --set models.training_dataset=<dataset> --init-from ...``); judge the
result on photos labelled by people, not on more declared labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fleetvision.config import Config
from fleetvision.label_consensus import DUPLICATE, MISSING_FILE, UNKNOWN_LABEL, Dropped
from fleetvision.label_rows import ImportReport, Labelled, build_rows, prepare_bytes
from fleetvision.taxonomy import Taxonomy

SOURCE = "listing_declared"
"""``training_images.source`` of the rows."""
CONFLICTING = "conflicting_declared_types"
NOT_EXTERIOR = "not_exterior"
OVER_CAP = "over_cap"
TAG_COLUMNS = (
    "image_id",
    "listing_id",
    "content_hash",
    "decode_status",
    "shot_group",
    "angle_top3",
    "declared_body_type",
)
"""Columns :func:`select_declared` reads (``image_tags`` joined with ``listings.body_type`` as declared)."""


@dataclass(frozen=True)
class DeclaredSpec:
    """Which photos to take.

    Attributes:
        min_exterior: Least share of the angle model's top-3 probability on exterior classes.
        per_listing: At most this many photos of one listing; None: no cap (the audit's draw).
        per_type: At most this many photos of one body type; None: no cap.
        seed: Salt of the stable draw of listings when a type is over ``per_type``.

    Raises:
        ValueError: ``min_exterior`` outside [0, 1], or a cap below 1.
    """

    min_exterior: float = 0.8
    per_listing: int | None = 4
    per_type: int | None = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_exterior <= 1.0:
            raise ValueError(f"min_exterior must be in [0, 1], got {self.min_exterior}")
        for name in ("per_listing", "per_type"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def exterior_share(top3: Any, exterior: frozenset[str]) -> float:
    """The probability the tags' top-3 classes put on exterior classes (0 for no top-3)."""
    if top3 is None:
        return 0.0
    total = 0.0
    for entry in top3:
        if entry is None:
            continue
        label, score = (entry.get("label"), entry.get("score")) if isinstance(entry, Mapping) else entry
        if label in exterior and score is not None:
            total += float(score)
    return total


def stable_hash(key: str, seed: int | str) -> int:
    """A stable pseudo-random number for ``key`` under ``seed`` (a draw order that survives re-runs)."""
    return int(hashlib.sha256(f"{seed}\n{key}".encode()).hexdigest()[:12], 16)


def select_declared(tags: pd.DataFrame, taxonomy: Taxonomy, spec: DeclaredSpec) -> tuple[pd.DataFrame, list[Dropped]]:
    """The photos to label with their listing's declared body type, and every photo left out and why.

    Args:
        tags: One row per photo with :data:`TAG_COLUMNS`.
        taxonomy: Body types and which shot classes are exterior.
        spec: The thresholds and caps.

    Returns:
        ``(picked, dropped)``: ``picked`` has ``image_id``, ``listing_id``, ``label`` (a taxonomy body
        type) and ``exterior`` (the share above), ordered by ``image_id``; ``dropped`` names every other
        photo (reasons :data:`NOT_EXTERIOR`, ``unknown_label``, :data:`CONFLICTING`, ``duplicate``,
        :data:`OVER_CAP`).

    Raises:
        ValueError: ``tags`` lacks a column of :data:`TAG_COLUMNS`.
    """
    missing = [c for c in TAG_COLUMNS if c not in tags.columns]
    if missing:
        raise ValueError(f"tags lack columns {missing}")
    exterior_names = frozenset(taxonomy.in_group("exterior"))
    vocab = {b.lower(): b for b in taxonomy.body_types}
    dropped: list[Dropped] = []
    rows: list[dict[str, Any]] = []
    for r in tags.sort_values("image_id", kind="stable").to_dict("records"):
        image_id = str(r["image_id"])
        share = exterior_share(r["angle_top3"], exterior_names)
        if r["decode_status"] != "ok" or r["shot_group"] != "exterior" or share < spec.min_exterior:
            dropped.append(Dropped(image_id, NOT_EXTERIOR, f"{r['shot_group']} ({share:.2f} exterior)"))
            continue
        declared = r["declared_body_type"]
        label = vocab.get(" ".join(str(declared).split()).lower()) if isinstance(declared, str) else None
        if label is None:
            dropped.append(Dropped(image_id, UNKNOWN_LABEL, f"declared body type {declared!r}"))
            continue
        rows.append(
            {
                "image_id": image_id,
                "listing_id": str(r["listing_id"]),
                "content_hash": r["content_hash"],
                "label": label,
                "exterior": share,
            }
        )
    # one row per photo content; copies under different declared types say nothing
    by_hash: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_hash.setdefault(row["content_hash"] or f"id:{row['image_id']}", []).append(row)
    unique: list[dict[str, Any]] = []
    for copies in by_hash.values():
        labels = {c["label"] for c in copies}
        if len(labels) > 1:
            dropped.extend(Dropped(c["image_id"], CONFLICTING, f"copies declared {sorted(labels)}") for c in copies)
            continue
        unique.append(copies[0])  # rows are in image_id order: the lowest id
        dropped.extend(Dropped(c["image_id"], DUPLICATE, f"same bytes as {copies[0]['image_id']}") for c in copies[1:])
    # at most per_listing photos of a listing: its most surely exterior ones
    by_listing: dict[str, list[dict[str, Any]]] = {}
    for row in unique:
        by_listing.setdefault(row["listing_id"], []).append(row)
    per_type: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for listing_id, photos in by_listing.items():
        photos.sort(key=lambda p: (-p["exterior"], p["image_id"]))
        cut = len(photos) if spec.per_listing is None else spec.per_listing
        kept, extra = photos[:cut], photos[cut:]
        dropped.extend(Dropped(p["image_id"], OVER_CAP, f"over {spec.per_listing} a listing") for p in extra)
        per_type.setdefault(kept[0]["label"], []).append((listing_id, kept))
    # at most per_type photos of a type: listing by listing in a stable pseudo-random order (the last cut)
    picked: list[dict[str, Any]] = []
    for label, listings in per_type.items():
        listings.sort(key=lambda item: (stable_hash(item[0], spec.seed), item[0]))
        count = 0
        for _, photos in listings:
            take = photos if spec.per_type is None else photos[: max(0, spec.per_type - count)]
            picked.extend(take)
            count += len(take)
            dropped.extend(
                Dropped(p["image_id"], OVER_CAP, f"over {spec.per_type} {label} photos") for p in photos[len(take) :]
            )
    frame = pd.DataFrame(picked, columns=["image_id", "listing_id", "content_hash", "label", "exterior"])
    frame = frame.drop(columns="content_hash").sort_values("image_id", kind="stable").reset_index(drop=True)
    return frame, sorted(dropped, key=lambda d: d.image)


def declared_rows(
    picked: pd.DataFrame,
    contents: Mapping[str, bytes | None],
    taxonomy: Taxonomy,
    config: Config,
    report: ImportReport,
) -> list[dict[str, Any]]:
    """``training_images`` rows (task ``body``) for the picked photos, given each photo's bytes.

    Args:
        picked: :func:`select_declared`'s ``picked``.
        contents: ``image_id`` -> the photo's bytes (None or absent: it could not be read).
        taxonomy: The body types.
        config: ``models.import_max_side``, ``import_eval_fraction`` and ``import_val_fraction`` apply.
        report: The import's report (``task`` body, ``source`` :data:`SOURCE`, the dataset): its counts
            are added to and photos that could not be read or decoded go to its ``dropped``, so the
            chunks of one import share it.

    Returns:
        The rows (:func:`~fleetvision.label_rows.build_rows`; the split is drawn from the listing id, so a
        car's photos share it).
    """
    items = [
        Labelled(str(r["image_id"]), None, str(r["label"]), split_key=str(r["listing_id"]))
        for r in picked.to_dict("records")
    ]

    def read(item: Labelled) -> tuple[bytes | None, str]:
        data = contents.get(item.image)
        if data is None:
            return None, f"{MISSING_FILE}: the photo's bytes could not be read"
        return prepare_bytes(data, config.models.import_max_side)

    return build_rows(items, "body", taxonomy, config, report, read=read)
