"""The labelled training and evaluation sets: balanced over shot classes, rows shaped like
``training_images`` (see :data:`fleetvision.tables.TRAINING_IMAGES`).

Pure (no Spark): the models part iterates :func:`training_rows` directly; the generate job writes
the same rows to the ``training_images`` table. Sample ``i`` depends only on (seed, split, i), so
any slice can be rendered on its own (in parallel) and gives the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fleetvision.synth.files import encode_jpeg
from fleetvision.synth.overlays import PLATE_SIZE_M, PLATE_STYLES
from fleetvision.synth.pbr_cabin import CABIN_PARTS
from fleetvision.synth.pbr_camera import DETAIL_PARTS, PlateView, plate_view
from fleetvision.synth.photo_spec import PhotoSpec, sample_spec, shot_family
from fleetvision.synth.render import render_photo
from fleetvision.synth.rng import derive_rng, weighted_choice
from fleetvision.taxonomy import FLANK_SUFFIX, ShotClass, Taxonomy

if TYPE_CHECKING:
    from fleetvision.synth.pbr_scene import PbrPhoto

logger = logging.getLogger(__name__)

# (width, height) per unit long side, with their share: mostly 4:3 landscape, some portrait
ASPECT_MIX: dict[tuple[int, int], float] = {(4, 3): 0.55, (3, 2): 0.15, (16, 9): 0.05, (1, 1): 0.08, (3, 4): 0.17}
TRAIN_BANNER_RATE = 0.4
JPEG_QUALITY = (40, 95)  # marketplaces recompress uploads hard: train on the artefacts too
SOURCE = "synthetic"
CABIN_SAMPLE_FACTOR = 2  # a cabin is lit through its windows: twice the exteriors' samples a pixel


class MarketLike(Protocol):
    """What the training set needs from ``config.market``."""

    driver_side: str
    plate_style: str


def training_size(rng: np.random.Generator, image_size: int) -> tuple[int, int]:
    """A (width, height) whose long side is ``image_size``, drawn from ``ASPECT_MIX``."""
    key = weighted_choice(rng, {f"{a}:{b}": w for (a, b), w in ASPECT_MIX.items()})
    a, b = (int(x) for x in key.split(":"))
    if a >= b:
        return image_size, max(16, round(image_size * b / a))
    return max(16, round(image_size * a / b)), image_size


def class_slots(taxonomy: Taxonomy, exterior_weight: int = 1) -> list[int]:
    """The class indices of one round: every class once, exterior classes ``exterior_weight`` times.

    Exterior shots carry more labels than the rest (body type, and most of the plates and mirror
    pairs), so the training set can hold more of them without unbalancing the angle classes' order.
    """
    if exterior_weight < 1:
        raise ValueError(f"exterior_weight must be >= 1, got {exterior_weight}")
    slots = list(range(taxonomy.num_classes))
    slots += [c.index for c in taxonomy.classes if c.group == "exterior"] * (exterior_weight - 1)
    return slots


def sample_count(taxonomy: Taxonomy, per_class: int, exterior_weight: int = 1) -> int:
    """How many rows :func:`training_rows` yields."""
    return per_class * len(class_slots(taxonomy, exterior_weight))


def training_rows(
    taxonomy: Taxonomy,
    market: MarketLike,
    seed: int,
    per_class: int,
    split: str,
    dataset: str,
    image_size: int = 256,
    *,
    exterior_weight: int = 1,
    body_mix: str = "market",
    plate_styles: Sequence[str] = (),
    pbr_share: float = 0.0,
    pbr_samples: int = 12,
    yaw_band: str = "narrow",
    pbr_detail_share: float = 0.0,
    pbr_cabin_share: float = 0.0,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Render a class-balanced labelled set.

    Rows come class by class in rounds (each round has one photo of every class, in a shuffled
    order), so any prefix is balanced too. About 40% of photos carry a dealer banner; plates appear
    where the shot can show one, sometimes small, steep, partly hidden or absent; instrument clusters
    show odometer digits and banners show prices (hard negatives for the plate model).

    Args:
        taxonomy: The shot classes.
        market: ``driver_side`` and ``plate_style`` (``config.market``).
        seed: Sample ``i`` is a pure function of (seed, split, i).
        per_class: Photos per class.
        split: ``train`` | ``val`` | ``eval`` (stored, and part of the sample's seed).
        dataset: The dataset name stored on each row (e.g. ``synthetic-train-s7``).
        image_size: The long side of each photo, pixels.
        exterior_weight: Exterior classes appear this many times per round (``per_class`` x weight
            photos each); 1 = every class equally often.
        body_mix: ``market`` draws each car's body type from the synthetic market's mix (sedans and
            SUVs common, vans and coupes rare), ``uniform`` draws every body type equally often, so
            the body head sees enough of the rare ones.
        plate_styles: Draw each photo's plate style from these, equally often (its own random stream, so
            the rest of the photo is the same whatever the list); empty: the market's style. Plates of
            every market teach the plate model what a plate is, not what one market's plate looks like.
        pbr_share: The share of exterior rows path-traced by Mitsuba
            (:func:`fleetvision.synth.pbr_scene.render_exterior`: smooth cars, glass, tyres, sky, a
            close phone-like camera) instead of painted (its own random stream per row, so the other rows
            do not change). Those rows carry no banner. 0 = none; needs the ``pbr`` extra when > 0.
        pbr_samples: Samples per pixel of the path-traced rows.
        yaw_band: How far exterior cameras stray from their view's yaw, in both renderers: ``narrow``
            (the middle of each view's band) or ``class`` (the whole band its label covers, so views meet
            as on real photos); :attr:`fleetvision.synth.photo_spec.PhotoSpec.yaw_band`. It draws nothing:
            each row's car, scene and camera are otherwise the same either way.
        pbr_detail_share: The share of the detail rows the path tracer can draw (headlight, tail light, wheel:
            :data:`fleetvision.synth.pbr_camera.DETAIL_PARTS`) drawn by it as close-ups of a path-traced
            car's own part (:func:`~fleetvision.synth.pbr_scene.render_detail`) instead of painted (its own
            random stream per row, so the other rows do not change). 0 = none; needs the ``pbr`` extra when > 0.
        pbr_cabin_share: The share of the interior rows the path tracer can draw
            (:data:`fleetvision.synth.pbr_cabin.CABIN_PARTS`: all but the boot) drawn by it inside a
            path-traced cabin (:func:`~fleetvision.synth.pbr_cabin.render_cabin`) instead of painted flat (its
            own random stream per row). 0 = none; needs the ``pbr`` extra when > 0.
        start, stop: Render only rows ``start..stop-1`` (for parallel workers); default all.

    Yields:
        Dicts with the ``training_images`` columns: sample_id, dataset, split, content (JPEG bytes),
        angle, angle_index, has_banner, plate_present (1, 0, or -1 where a path-traced photo shows a plate
        only in part: :func:`plate_label`), plate_box ([x0, y0, x1, y1] normalised, empty when no plate is
        labelled), body_type (None for interior/detail shots), body_index (-1 then), source.

    Raises:
        ValueError: Non-positive ``per_class``, ``image_size`` or ``exterior_weight``, an unknown
            ``body_mix``, or an empty split/dataset name.
    """
    plans = row_plans(taxonomy, market, seed, per_class, split, image_size, exterior_weight=exterior_weight,
                      body_mix=body_mix, plate_styles=plate_styles, pbr_share=pbr_share, yaw_band=yaw_band,
                      pbr_detail_share=pbr_detail_share, pbr_cabin_share=pbr_cabin_share, start=start, stop=stop)
    if not split or not dataset:
        raise ValueError(f"split and dataset must be non-empty, got split={split!r} dataset={dataset!r}")
    for plan in plans:
        cls, spec = plan.cls, plan.spec
        if plan.traced:
            photo = path_traced(spec, pbr_samples, taxonomy)
            image, has_banner, plate = photo.image, False, photo.plate
            # a detail shot trains no body type, painted or traced
            body = spec.body_type if cls.group == "exterior" else None
        else:
            painted = render_photo(spec)
            image, has_banner, plate = painted.image, painted.has_banner, PlateView(painted.plate_box)
            body = painted.body_type
        yield {
            "sample_id": f"{dataset}/{split}/{plan.index:07d}",
            "dataset": dataset,
            "split": split,
            "content": encode_jpeg(image, plan.quality),
            "angle": cls.name,
            "angle_index": cls.index,
            "has_banner": int(has_banner),
            **plate_label(plate),
            "body_type": body,
            "body_index": taxonomy.body_index(body) if body else -1,
            "source": SOURCE,
        }


@dataclass(frozen=True)
class RowPlan:
    """One training row before it is drawn (:func:`row_plans`)."""

    index: int  # the sample's number in its split
    cls: ShotClass
    spec: PhotoSpec
    quality: int  # JPEG quality
    traced: bool  # path-traced (:func:`path_traced`); else painted (:func:`fleetvision.synth.render.render_photo`)


def row_plans(
    taxonomy: Taxonomy,
    market: MarketLike,
    seed: int,
    per_class: int,
    split: str,
    image_size: int = 256,
    *,
    exterior_weight: int = 1,
    body_mix: str = "market",
    plate_styles: Sequence[str] = (),
    pbr_share: float = 0.0,
    yaw_band: str = "narrow",
    pbr_detail_share: float = 0.0,
    pbr_cabin_share: float = 0.0,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[RowPlan]:
    """What :func:`training_rows` draws, row by row, without drawing it (the same arguments): each row's
    class, photo spec, JPEG quality and renderer. Cheap: a set's labels that come from its scenes' geometry
    can be recomputed from it without rendering (:func:`traced_plate`).

    Raises:
        ValueError: As :func:`training_rows`.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32, got {image_size}")
    if not split:
        raise ValueError(f"split must be non-empty, got {split!r}")
    if body_mix not in ("market", "uniform"):
        raise ValueError(f"body_mix must be 'market' or 'uniform', got {body_mix!r}")
    if not 0.0 <= pbr_share <= 1.0:
        raise ValueError(f"pbr_share must be within 0..1, got {pbr_share}")
    if not 0.0 <= pbr_detail_share <= 1.0:
        raise ValueError(f"pbr_detail_share must be within 0..1, got {pbr_detail_share}")
    if not 0.0 <= pbr_cabin_share <= 1.0:
        raise ValueError(f"pbr_cabin_share must be within 0..1, got {pbr_cabin_share}")
    # the classes path-traced as their own subject, each share with its own random stream
    traced_subjects = [(DETAIL_PARTS, "train-pbr-detail", pbr_detail_share),
                       (CABIN_PARTS, "train-pbr-cabin", pbr_cabin_share)]
    unknown = sorted(set(plate_styles) - set(PLATE_STYLES))
    if unknown:
        raise ValueError(f"plate_styles must be among {PLATE_STYLES}, got {unknown}")
    slots = class_slots(taxonomy, exterior_weight)
    n_slots = len(slots)
    total = per_class * n_slots
    stop = total if stop is None else min(stop, total)
    order_cache: dict[int, np.ndarray] = {}
    for i in range(max(0, start), stop):
        round_no, slot = divmod(i, n_slots)
        if round_no not in order_cache:
            order_cache.clear()
            order_cache[round_no] = derive_rng(seed, "train-order", split, round_no).permutation(n_slots)
        cls = taxonomy.classes[slots[int(order_cache[round_no][slot])]]
        rng = derive_rng(seed, "train", split, i)
        size = training_size(rng, image_size)
        body_type = None
        if body_mix == "uniform":
            body_type = taxonomy.body_types[int(rng.integers(len(taxonomy.body_types)))]
        plate_style = market.plate_style
        if plate_styles:
            plate_style = plate_styles[int(derive_rng(seed, "train-plate", split, i).integers(len(plate_styles)))]
        spec = sample_spec(rng, taxonomy, cls.name, driver_side=market.driver_side, plate_style=plate_style,
                           size=size, banner_rate=TRAIN_BANNER_RATE, body_type=body_type, yaw_band=yaw_band)
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        traced = (
            (cls.group == "exterior" and pbr_share > 0 and derive_rng(seed, "train-pbr", split, i).random() < pbr_share)
            or any(share > 0 and cls.name in names and derive_rng(seed, stream, split, i).random() < share
                   for names, stream, share in traced_subjects))
        yield RowPlan(i, cls, spec, quality, traced)


def plate_label(plate: PlateView) -> dict[str, Any]:
    """A plate label as ``training_images`` columns: ``plate_present`` 1 with its box, 0 (no plate), or -1
    (unknown: a plate partly in view, :attr:`~fleetvision.synth.pbr_camera.PlateView.unsure`) with no box."""
    present = 1 if plate.box is not None else (-1 if plate.unsure else 0)
    return {"plate_present": present, "plate_box": [float(v) for v in plate.box] if plate.box else []}


def path_traced(spec: PhotoSpec, samples: int, taxonomy: Taxonomy, *, denoise: bool = True) -> PbrPhoto:
    """The spec's exterior, or close-up of one of the car's parts (``pbr_camera.DETAIL_PARTS``), path-traced
    (:func:`fleetvision.synth.pbr_scene.render_shot`), or its interior shot inside a path-traced cabin
    (``pbr_cabin.CABIN_PARTS``: :func:`fleetvision.synth.pbr_cabin.render_cabin`, at
    :data:`CABIN_SAMPLE_FACTOR` times the samples: a cabin is lit through its windows and noisier), with its
    labels (no banner: the path tracer draws none). ``denoise=False`` leaves the path-tracing grain in
    (comparisons only)."""
    from fleetvision.synth.pbr_scene import PbrPhoto, render_shot

    if spec.shot in CABIN_PARTS:
        from fleetvision.synth.pbr_cabin import render_cabin

        image, plate = render_cabin(spec.shot, spec.body_type, spec.driver_side, spec.scene_seed, spec.size,
                                    trim_rgb=spec.trim, odometer_km=spec.odometer_km,
                                    samples=CABIN_SAMPLE_FACTOR * samples, denoise=denoise)
        return PbrPhoto(image, None, plate)

    plate_seed = spec.scene_seed if spec.plate_seed is None else spec.plate_seed
    return render_shot(_subject(spec), _flank(spec, taxonomy), spec.body_type, spec.scene_seed, spec.size,
                       paint_rgb=spec.paint, plate_style=spec.plate_style, plate_seed=plate_seed, samples=samples,
                       denoise=denoise, yaw_band=spec.yaw_band)


def traced_plate(spec: PhotoSpec, taxonomy: Taxonomy) -> PlateView:
    """The plate label :func:`path_traced` gives the spec's photo, from the scene's geometry alone: no render."""
    from fleetvision.synth.pbr_scene import shot_scene

    if spec.shot in CABIN_PARTS:
        return PlateView(None)  # a cabin holds no plate
    car, camera, _ = shot_scene(_subject(spec), _flank(spec, taxonomy), spec.body_type, spec.scene_seed, spec.size,
                                spec.yaw_band)
    return plate_view(car, camera, PLATE_SIZE_M[spec.plate_style])


def _subject(spec: PhotoSpec) -> str:
    """What the path tracer draws for ``spec``: the car's part for a traced close-up, else the view family."""
    return spec.shot if spec.shot in DETAIL_PARTS else shot_family(spec.shot)


def _flank(spec: PhotoSpec, taxonomy: Taxonomy) -> str | None:
    """The car's flank a sided exterior view of ``spec`` sees: the taxonomy's own market -> flank mapping."""
    flank_class = taxonomy.market_to_flank(spec.shot, spec.driver_side)
    return next((flank for suffix, flank in FLANK_SUFFIX.items() if flank_class.endswith(suffix)), None)


class _Market:
    """A picklable stand-in for ``config.market`` inside worker processes."""

    def __init__(self, driver_side: str, plate_style: str) -> None:
        self.driver_side = driver_side
        self.plate_style = plate_style


def _render_slice(args: tuple[Any, str, str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One worker's rows: ``(taxonomy, driver_side, plate_style, training_rows' other arguments)``."""
    taxonomy, driver_side, plate_style, kwargs = args
    return list(training_rows(taxonomy, _Market(driver_side, plate_style), **kwargs))


def render_training_set(
    taxonomy: Taxonomy,
    market: MarketLike,
    seed: int,
    per_class: int,
    split: str,
    dataset: str,
    image_size: int = 256,
    workers: int = 0,
    chunk: int = 64,
    *,
    exterior_weight: int = 1,
    body_mix: str = "market",
    plate_styles: Sequence[str] = (),
    pbr_share: float = 0.0,
    pbr_samples: int = 12,
    yaw_band: str = "narrow",
    pbr_detail_share: float = 0.0,
    pbr_cabin_share: float = 0.0,
) -> list[dict[str, Any]]:
    """All rows of :func:`training_rows`, rendered in worker processes (same rows, same order).

    Operating limits: every row's JPEG bytes are held in memory (about 10-20 KB each at 256 px). A
    path-traced row (``pbr_share``) costs ~0.7-1.3 s of one core at 288 x 216, a painted one ~0.05 s.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from fleetvision.synth.inventory import resolve_workers

    total = sample_count(taxonomy, per_class, exterior_weight)
    bounds = [(i, min(total, i + chunk)) for i in range(0, total, chunk)]
    n_workers = min(resolve_workers(workers), len(bounds))
    common = {"seed": seed, "per_class": per_class, "split": split, "dataset": dataset, "image_size": image_size,
              "exterior_weight": exterior_weight, "body_mix": body_mix, "plate_styles": tuple(plate_styles),
              "pbr_share": pbr_share, "pbr_samples": pbr_samples, "yaw_band": yaw_band,
              "pbr_detail_share": pbr_detail_share, "pbr_cabin_share": pbr_cabin_share}
    args = [(taxonomy, market.driver_side, market.plate_style, {**common, "start": a, "stop": b}) for a, b in bounds]
    if n_workers <= 1:
        return [row for a in args for row in _render_slice(a)]
    with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
        return [row for part in pool.map(_render_slice, args) for row in part]
