"""The synthetic inventory: listings, their photos (files or inline bytes) and the ground truth.

Planning is pure and cheap: :func:`plan_listing` and :func:`plan_photos` turn (seed, listing index)
into a listing and its photo plans, so the day-to-day churn (:mod:`fleetvision.synth.evolve`) can
re-derive any listing's car without reading it back. Rendering (:func:`render_plans`) is the costly
part: it runs in worker processes, one photo per task, each photo from its own random stream, so
the bytes do not depend on the worker count or order.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from fleetvision.synth.catalog import BODY_MIX, MODELS, TRIMS
from fleetvision.synth.files import BAD_KINDS, FileSpec, bad_file_bytes, encode_photo, sample_file_spec
from fleetvision.synth.photo_spec import PhotoSpec, dealer_name, pick_paint, sample_spec
from fleetvision.synth.render import render_photo
from fleetvision.synth.rng import derive_rng, weighted_choice
from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)  # day 0 of every synthetic inventory (never the clock)
LISTINGS_PER_DEALER = 12
DEALER_BANNER_RATE = 0.55
PRIVATE_BANNER_RATE = 0.02
RENDER_MAX_SIDE = 1600  # larger files are rendered at this long side and scaled up on encoding
STOCK_SHOTS = ("keys", "service_book")


def day_time(day: int) -> datetime:
    """Midnight UTC of synthetic day ``day``."""
    return BASE_TIME + timedelta(days=int(day))


@dataclass(frozen=True)
class InventorySettings:
    """What planning needs from the config (copied out, so workers never see the config object)."""

    seed: int
    n_listings: int
    min_photos: int = 3
    max_photos: int = 40
    dealer_share: float = 0.4
    bad_file_rate: float = 0.02
    bad_kinds: tuple[tuple[str, float], ...] = tuple((k, 1.0) for k in BAD_KINDS)
    driver_side: str = "right"
    plate_style: str = "AU"
    photo_scale: float = 1.0  # < 1 shrinks every file (quick demos and tests)

    def __post_init__(self) -> None:
        if self.n_listings < 1:
            raise ValueError(f"n_listings must be >= 1, got {self.n_listings}")
        if not 1 <= self.min_photos <= self.max_photos:
            raise ValueError(f"need 1 <= min_photos <= max_photos, got {self.min_photos}..{self.max_photos}")
        if not 0 < self.photo_scale <= 1:
            raise ValueError(f"photo_scale must be in (0, 1], got {self.photo_scale}")
        unknown = [k for k, _ in self.bad_kinds if k not in BAD_KINDS]
        if unknown:
            raise ValueError(f"synth.bad_kinds has unknown kinds {unknown}; known: {', '.join(BAD_KINDS)}")

    @property
    def n_dealers(self) -> int:
        return max(2, math.ceil(self.n_listings * self.dealer_share / LISTINGS_PER_DEALER))


@dataclass(frozen=True)
class ListingPlan:
    """One listing: what the seller declares, plus the car's look (not stored in the tables)."""

    index: int
    listing_id: str
    make: str
    model: str
    year: int
    body_type: str
    seller_type: str
    seller_id: str
    status: str
    updated_at: datetime
    paint: tuple[int, int, int]
    trim: tuple[int, int, int]
    background: str
    plates: bool
    plate_seed: int

    def row(self) -> dict[str, Any]:
        """The ``listings`` table row."""
        return {k: getattr(self, k) for k in ("listing_id", "make", "model", "year", "body_type", "seller_type",
                                              "seller_id", "status", "updated_at")}


@dataclass(frozen=True)
class PhotoPlan:
    """One row of ``listing_images`` and how to make its file (shared photos share ``photo_id``)."""

    image_id: str
    listing_id: str
    photo_id: str
    position: int
    spec: PhotoSpec
    file: FileSpec
    bad_kind: str | None
    updated_at: datetime


@dataclass
class Inventory:
    """Planned listings and photos."""

    listings: list[ListingPlan] = field(default_factory=list)
    photos: list[PhotoPlan] = field(default_factory=list)


def listing_id(index: int) -> str:
    return f"L{index:06d}"


def listing_index(lid: str) -> int:
    """``L000123`` -> 123.

    Raises:
        ValueError: Not a generated listing id.
    """
    if not (lid.startswith("L") and lid[1:].isdigit()):
        raise ValueError(f"not a synthetic listing id: {lid!r}")
    return int(lid[1:])


def plan_listing(settings: InventorySettings, index: int, day: int = 0) -> ListingPlan:
    """The listing with ``index``: a pure function of (seed, index); ``day`` only sets its timestamp."""
    rng = derive_rng(settings.seed, "listing", index)
    dealer = rng.random() < settings.dealer_share
    body = weighted_choice(rng, BODY_MIX)
    make, model = MODELS[body][int(rng.integers(len(MODELS[body])))]
    year = int(rng.integers(2008, 2025))
    paint = pick_paint(rng)
    trim = TRIMS[int(rng.integers(len(TRIMS)))]
    seller = f"D{int(rng.integers(settings.n_dealers)):04d}" if dealer else f"P{index:06d}"
    places = ("showroom", "lot", 0.5) if dealer else ("street", "lot", 0.7)
    background = places[0] if rng.random() < places[2] else places[1]
    listed_minutes = int(rng.integers(0, 60 * 24 * 60))
    return ListingPlan(
        index=index,
        listing_id=listing_id(index),
        make=make,
        model=model,
        year=year,
        body_type=body,
        seller_type="dealer" if dealer else "private",
        seller_id=seller,
        status="active",
        updated_at=(day_time(day) - timedelta(minutes=listed_minutes)) if day == 0 else day_time(day),
        paint=paint,
        trim=trim,
        background=background,
        plates=rng.random() >= (0.2 if dealer else 0.05),
        plate_seed=int(rng.integers(0, 2**62)),
    )


def _photo_count(rng: np.random.Generator, s: InventorySettings, dealer: bool, n_required: int) -> int:
    if dealer:
        n = round(rng.normal(18, 7))
        lo = max(s.min_photos, min(n_required, s.max_photos))
    else:
        n = round(rng.gamma(3.0, 2.4))
        lo = s.min_photos
    return int(min(s.max_photos, max(lo, n)))


def _choose_shots(rng: np.random.Generator, taxonomy: Taxonomy, dealer: bool, n: int) -> list[str]:
    names = list(taxonomy.names)
    required = list(taxonomy.required)
    if dealer:
        shots = list(required[:n])
        optional = [c for c in names if c not in required]
        rng.shuffle(optional)
        shots += optional[: max(0, n - len(shots))]
    else:
        keep = {"exterior": 0.8, "interior": 0.55, "detail": 0.5}
        shots = [c for c in required if rng.random() < (0.35 if c == "boot" else keep[taxonomy[c].group])]
        shots = shots[:n]
    weights = np.asarray([3.0 if taxonomy[c].group == "exterior" else 1.0 for c in names])
    while len(shots) < n:
        shots.append(names[int(rng.choice(len(names), p=weights / weights.sum()))])
    return shots


def _order(rng: np.random.Generator, taxonomy: Taxonomy, shots: list[str], dealer: bool) -> list[int]:
    """Display order (indices into ``shots``): near canonical for dealers, looser for private sellers."""
    idx = sorted(range(len(shots)), key=lambda i: (taxonomy.index(shots[i]), i))
    if dealer:
        for _ in range(int(rng.integers(0, 3))):
            if len(idx) > 3:
                j = int(rng.integers(1, len(idx) - 1))
                idx[j], idx[j + 1] = idx[j + 1], idx[j]
        return idx
    if rng.random() < 0.75:
        ext = [i for i in idx if taxonomy[shots[i]].group == "exterior"]
        rest = [i for i in idx if taxonomy[shots[i]].group != "exterior"]
        rng.shuffle(ext)
        rng.shuffle(rest)
        return ext + rest
    rng.shuffle(idx)
    return idx


def render_size(file_size: tuple[int, int]) -> tuple[int, int]:
    """The size to draw at: the file's, or smaller for big files (scaled up on encoding)."""
    w, h = file_size
    k = min(1.0, RENDER_MAX_SIDE / max(w, h))
    return max(16, round(w * k)), max(16, round(h * k))


def photo_plan(
    settings: InventorySettings,
    taxonomy: Taxonomy,
    listing: ListingPlan,
    shot: str,
    photo_id: str,
    image_id: str,
    position: int,
    updated_at: datetime,
    *,
    allow_bad: bool = True,
    banner: str | bool | None = None,
) -> PhotoPlan:
    """Plan one photo of ``listing`` (its randomness comes from ``(seed, photo_id)`` only)."""
    rng = derive_rng(settings.seed, "photo", photo_id)
    fspec = sample_file_spec(rng)
    if settings.photo_scale < 1:
        w, h = (max(32, round(v * settings.photo_scale)) for v in fspec.size)
        fspec = replace(fspec, size=(w, h))
    dealer = listing.seller_type == "dealer"
    spec = sample_spec(
        rng, taxonomy, shot,
        driver_side=settings.driver_side, plate_style=settings.plate_style, size=render_size(fspec.size),
        body_type=listing.body_type, paint=listing.paint, trim=listing.trim, make_model=(listing.make, listing.model),
        background=listing.background if rng.random() < 0.9 else None,
        banner=banner, banner_rate=DEALER_BANNER_RATE if dealer else PRIVATE_BANNER_RATE,
        plate_modes=None if listing.plates else {"absent": 1.0},
        dealer=dealer_name(settings.seed, listing.seller_id) if dealer else "",
        plate_seed=listing.plate_seed,
    )
    bad = None
    if allow_bad and rng.random() < settings.bad_file_rate:
        bad = weighted_choice(rng, dict(settings.bad_kinds))
    return PhotoPlan(image_id, listing.listing_id, photo_id, position, spec, fspec, bad, updated_at)


def plan_photos(settings: InventorySettings, taxonomy: Taxonomy, listing: ListingPlan) -> list[PhotoPlan]:
    """The listing's photos in display order (positions 1..n), dealer stock photos included."""
    rng = derive_rng(settings.seed, "photos", listing.index)
    dealer = listing.seller_type == "dealer"
    n = _photo_count(rng, settings, dealer, len(taxonomy.required))
    stock: list[int] = []
    if dealer:
        k = int(listing.seller_id[1:])
        stock = [s for s in range(1 + k % 2) if rng.random() < 0.7]
        # the full shot set comes first; stock photos only where there is room for them
        stock = stock[: max(0, settings.max_photos - len(taxonomy.required))]
        n = min(settings.max_photos, max(n, len(taxonomy.required) + len(stock)))
    shots = _choose_shots(rng, taxonomy, dealer, n - len(stock))
    order = _order(rng, taxonomy, shots, dealer)
    plans: list[PhotoPlan] = []
    for pos, i in enumerate(order, start=1):
        image_id = f"{listing.listing_id}-{i:02d}"
        plans.append(photo_plan(settings, taxonomy, listing, shots[i], image_id, image_id, pos, listing.updated_at))
    for s in stock:
        photo_id = f"{listing.seller_id}-S{s}"
        srng = derive_rng(settings.seed, "stock", photo_id)
        shot = STOCK_SHOTS[int(srng.integers(len(STOCK_SHOTS)))]
        # the dealer's promo photo: the same spec (hence the same bytes) in every listing that uses it
        stock_listing = replace(listing, paint=pick_paint(srng), trim=TRIMS[int(srng.integers(len(TRIMS)))],
                                make="Dealer", model="Stock", plate_seed=0, plates=False, body_type="sedan",
                                background="showroom", listing_id=listing.listing_id)
        plan = photo_plan(settings, taxonomy, stock_listing, shot, photo_id, f"{listing.listing_id}-S{s}", 0,
                          listing.updated_at, allow_bad=False, banner=("frame", "sticker")[s % 2])
        at = len(plans) if srng.random() < 0.7 else int(rng.integers(1, len(plans) + 1))
        plans.insert(at, plan)
    return [replace(p, position=pos) for pos, p in enumerate(plans, start=1)]


def plan_inventory(settings: InventorySettings, taxonomy: Taxonomy) -> Inventory:
    """Plan ``settings.n_listings`` listings and their photos (no pixels yet)."""
    inv = Inventory()
    for i in range(settings.n_listings):
        listing = plan_listing(settings, i)
        inv.listings.append(listing)
        inv.photos.extend(plan_photos(settings, taxonomy, listing))
    return inv


# ------------------------------------------------------------------------------------------ render
@dataclass(frozen=True)
class RenderedFile:
    """What rendering one photo produced: its labels, and its bytes when kept inline."""

    photo_id: str
    labels: dict[str, Any]
    uri: str
    content: bytes | None


def photo_uri(photos_dir: Path, plan: PhotoPlan) -> str:
    """Where the photo's file lives (``file:///abs/path``); a ``missing_uri`` photo points nowhere."""
    if plan.bad_kind == "missing_uri":
        return (photos_dir / "missing" / f"{plan.photo_id}.jpg").resolve().as_uri()
    ext = "png" if plan.bad_kind == "bomb" else ("jpg" if plan.bad_kind else plan.file.extension)
    return (photos_dir / f"{plan.photo_id}.{ext}").resolve().as_uri()


def render_file(plan: PhotoPlan, photos_dir: str | None, keep_bytes: bool) -> RenderedFile:
    """Render, encode (or break) and write one photo; returns its ground-truth labels.

    Args:
        plan: The photo.
        photos_dir: Folder to write the file to; None writes nothing.
        keep_bytes: Return the bytes (inline content mode).
    """
    folder = Path(photos_dir) if photos_dir else Path(".")
    uri = photo_uri(folder, plan)
    photo = render_photo(plan.spec)
    data: bytes | None = encode_photo(photo.image, plan.file)
    fspec = plan.file
    labels: dict[str, Any] = {
        "photo_id": plan.photo_id,
        "angle": plan.spec.shot,
        "shot_group": plan.spec.group,
        "body_type": photo.body_type,
        "has_banner": photo.has_banner,
        "banner_kind": photo.banner_kind,
        "banner_coverage": round(photo.banner_coverage, 5),
        "plate_present": photo.plate_present,
        "plate_box": [float(v) for v in photo.plate_box] if photo.plate_box else None,
        "plate_text": photo.plate_text,
        "hard_negative": photo.hard_negative,
        "bad_kind": None,
        "file_format": fspec.fmt,
        "width": fspec.size[0],
        "height": fspec.size[1],
        "exif_orientation": fspec.orientation,
        "color_mode": fspec.color_mode,
        "jpeg_quality": fspec.quality if fspec.fmt == "JPEG" else None,
    }
    if plan.bad_kind:
        good = data if fspec.fmt == "JPEG" else encode_photo(photo.image, replace(fspec, fmt="JPEG", orientation=1,
                                                                                  color_mode="RGB"))
        data = bad_file_bytes(plan.bad_kind, good, derive_rng(plan.spec.scene_seed, "bad"))
        declared = {"truncated": ("JPEG", fspec.size), "bomb": ("PNG", (30_000, 30_000))}.get(plan.bad_kind)
        labels.update({k: None for k in ("angle", "shot_group", "body_type", "has_banner", "banner_kind",
                                         "banner_coverage", "plate_present", "plate_box", "plate_text",
                                         "hard_negative", "exif_orientation", "color_mode", "jpeg_quality")})
        labels.update(bad_kind=plan.bad_kind, file_format=declared[0] if declared else None,
                      width=declared[1][0] if declared else None, height=declared[1][1] if declared else None)
    labels["byte_size"] = len(data) if data is not None else None
    if photos_dir and data is not None:
        path = Path(uri[len("file://"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half a file (truncated files are cut on purpose)
    return RenderedFile(plan.photo_id, labels, uri, data if keep_bytes else None)


def _render_chunk(args: tuple[list[PhotoPlan], str | None, bool]) -> list[RenderedFile]:
    plans, photos_dir, keep = args
    return [render_file(p, photos_dir, keep) for p in plans]


def resolve_workers(workers: int) -> int:
    """``synth.workers``: 0 means one per available core."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if workers:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class RenderStats:
    """Throughput of one rendering pass."""

    photos: int
    seconds: float
    workers: int

    @property
    def per_second_per_core(self) -> float:
        return self.photos / max(self.seconds, 1e-9) / self.workers


def render_plans(
    plans: Iterable[PhotoPlan],
    photos_dir: Path | None,
    keep_bytes: bool,
    workers: int = 0,
    chunk: int = 16,
    on_chunk: Callable[[list[RenderedFile]], None] | None = None,
) -> tuple[dict[str, RenderedFile], RenderStats]:
    """Render every distinct photo once (shared photos by ``photo_id``), in worker processes.

    Args:
        plans: Photo plans (several may share a photo_id: rendered once).
        photos_dir: Folder for the files; None keeps only bytes.
        keep_bytes: Keep each file's bytes (inline mode).
        workers: Processes; 0 = one per core, 1 = in this process.
        chunk: Photos per task.
        on_chunk: Called in this process with each task's rendered files once they are written, in
            photo_id order (a journal of finished photos, so a killed run can resume).

    Returns:
        photo_id -> rendered file, and the throughput.

    Operating limits: with ``keep_bytes`` every file's bytes are held in memory at once (about
    100 KB a photo); the uri mode keeps only labels.
    """
    unique: dict[str, PhotoPlan] = {}
    for p in plans:
        unique.setdefault(p.photo_id, p)
    todo = sorted(unique.values(), key=lambda p: p.photo_id)
    n_workers = min(resolve_workers(workers), max(1, len(todo) // chunk))
    folder = str(photos_dir) if photos_dir else None
    if photos_dir:
        photos_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    out: dict[str, RenderedFile] = {}
    tasks = [(todo[i : i + chunk], folder, keep_bytes) for i in range(0, len(todo), chunk)]
    def done(batch: list[RenderedFile]) -> None:
        for r in batch:
            out[r.photo_id] = r
        if on_chunk is not None:
            on_chunk(batch)

    if n_workers <= 1:
        for t in tasks:
            done(_render_chunk(t))
    else:
        # spawn, not fork: the driver may hold a JVM gateway and threads
        with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
            for batch in pool.map(_render_chunk, tasks):
                done(batch)
    stats = RenderStats(len(todo), time.perf_counter() - start, n_workers)
    logger.info("rendered %d photos in %.1fs on %d workers: %.1f photos/s/core", stats.photos, stats.seconds,
                stats.workers, stats.per_second_per_core)
    return out, stats


def image_rows(plans: Sequence[PhotoPlan], files: dict[str, RenderedFile], inline: bool) -> list[dict[str, Any]]:
    """``listing_images`` rows for ``plans``."""
    rows = []
    for p in plans:
        f = files[p.photo_id]
        rows.append({"image_id": p.image_id, "listing_id": p.listing_id, "position": p.position, "uri": f.uri,
                     "content": f.content if inline and p.bad_kind != "missing_uri" else None,
                     "updated_at": p.updated_at})
    return rows


def label_rows(plans: Sequence[PhotoPlan], files: dict[str, RenderedFile]) -> list[dict[str, Any]]:
    """``image_labels`` rows for ``plans``."""
    return [{"image_id": p.image_id, "listing_id": p.listing_id, **files[p.photo_id].labels} for p in plans]
