"""What one photo shows, drawn at random: the :class:`PhotoSpec` behind every synthetic photo.

A spec holds every choice that decides what a photo shows and how it is labelled (shot, car,
surroundings, banner, plate variant, lighting, noise, size); :func:`sample_spec` draws one from a random
generator, with any part pinned (a listing's car, say). :func:`fleetvision.synth.render.render_photo`
turns a spec into pixels plus exact labels. Same spec, same pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from fleetvision.synth.backdrops import BACKGROUNDS
from fleetvision.synth.canvas import RGB
from fleetvision.synth.car_geometry import BODY_SHAPES, YAW_BANDS
from fleetvision.synth.catalog import BODY_MIX, DEALER_SUFFIX, DEALER_WORDS, MODELS, PAINTS, TRIMS
from fleetvision.synth.overlays import BANNER_KINDS, OCCLUDER_KINDS, PLATE_STYLES, WATERMARKS
from fleetvision.synth.rng import derive_rng, weighted_choice
from fleetvision.taxonomy import Taxonomy

PLATE_MODES: dict[str, float] = {"normal": 0.6, "small": 0.12, "steep": 0.1, "hidden": 0.08, "absent": 0.1}
BANNER_MIX: dict[str, float] = {"strip": 0.4, "corner": 0.2, "frame": 0.2, "sticker": 0.2}
NOISE_LEVELS = (0, 2, 3, 4, 6, 8)
# photographic randomisation (domain randomisation for sim-to-real): shares of photos that get each
CROP_RATE = 0.35  # a tighter crop of the render (the car cut by the frame), zoom 1.05-1.6
OCCLUDER_RATE = 0.25  # exteriors: a person, pole, another car's flank or foliage in the foreground
WATERMARK_RATE = 0.55  # a marketplace's small semi-transparent watermark (not a dealer banner)
MOTION_RATE = 0.12  # camera shake
VIGNETTE_RATE = 0.5


@dataclass(frozen=True)
class PhotoSpec:
    """Everything that decides one rendered photo.

    Attributes:
        shot: Taxonomy class name.
        group: ``exterior`` | ``interior`` | ``detail``.
        side: ``driver`` | ``passenger`` | None (the taxonomy's side).
        body_type: The car's body type (drawn on exteriors; labelled only there).
        paint, trim: Body and interior colours.
        driver_side: The market's driver side (``left`` | ``right``).
        plate_style: One of ``PLATE_STYLES`` (``AU``, ``BR``, ``DE``, ``UK``, ``US``).
        size: (width, height) of the upright photo.
        background: ``street`` | ``lot`` | ``showroom`` (exteriors).
        banner: Banner kind or None.
        plate_mode: ``normal`` | ``small`` | ``steep`` | ``hidden`` | ``absent`` for shots that can show
            a plate, ``none`` otherwise.
        scene_seed: Seeds every remaining detail (camera jitter, backdrop, composition).
        gain, contrast: Exposure.
        tint: Colour cast added per channel.
        noise: Sensor-noise sigma (one of ``NOISE_LEVELS``).
        blur: Gaussian blur radius as a share of the long side (0 = sharp).
        make, model, dealer, currency: Text that may appear (badge, banners).
        odometer_km: The odometer reading (instrument cluster).
        plate_seed: Seeds the plate's characters and colours (a listing's photos share it); None uses
            ``scene_seed``.
        saturation: Colour saturation (1 = as rendered).
        white_balance: Per-channel gains (a camera's white balance: warm, cool, green casts).
        vignette: Darkening of the corners (0 = none, 0.5 = corners at half brightness).
        motion_blur: Camera shake, as a share of the long side (0 = none).
        crop: The photo shows the central ``1/crop`` of the render, shifted at random (1 = no crop);
            labels follow the crop.
        occluder: ``person`` | ``pole`` | ``car`` | ``foliage`` in the foreground (exteriors), or None.
        watermark: The marketplace name stamped small and semi-transparent on the photo (not a banner:
            ``has_banner`` stays False), or None.
        yaw_band: How far an exterior's camera yaw strays from its view's: ``narrow`` (the middle of the
            view's band, :data:`~fleetvision.synth.car_geometry.VIEW_YAW_JITTER`) or ``class`` (the whole band
            its label covers, :data:`~fleetvision.synth.car_geometry.CLASS_YAW_JITTER`).
    """

    shot: str
    group: str
    side: str | None
    body_type: str
    paint: RGB
    trim: RGB
    driver_side: str
    plate_style: str
    size: tuple[int, int]
    background: str
    banner: str | None
    plate_mode: str
    scene_seed: int
    gain: float = 1.0
    contrast: float = 1.0
    tint: tuple[int, int, int] = (0, 0, 0)
    noise: int = 0
    blur: float = 0.0
    make: str = "Toyota"
    model: str = "Corolla"
    dealer: str = "Metro Motors"
    currency: str = "$"
    odometer_km: int = 84213
    plate_seed: int | None = None
    saturation: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    vignette: float = 0.0
    motion_blur: float = 0.0
    crop: float = 1.0
    occluder: str | None = None
    watermark: str | None = None
    yaw_band: str = "narrow"


def shot_family(shot: str) -> str:
    """``front_3q_driver`` -> ``front_3q``; ``full_front`` -> ``full_front``."""
    for suffix in ("_driver", "_passenger"):
        if shot.endswith(suffix):
            return shot[: -len(suffix)]
    return shot


def dealer_name(seed: int, dealer_id: str) -> str:
    """A stable dealer name for a dealer id."""
    rng = derive_rng(seed, "dealer-name", dealer_id)
    word = DEALER_WORDS[int(rng.integers(len(DEALER_WORDS)))]
    return f"{word} {DEALER_SUFFIX[int(rng.integers(len(DEALER_SUFFIX)))]}"


def pick_paint(rng: np.random.Generator) -> RGB:
    weights = np.asarray([w for _, w in PAINTS])
    base = PAINTS[int(rng.choice(len(PAINTS), p=weights / weights.sum()))][0]
    jitter = rng.integers(-12, 13, 3)
    return tuple(int(min(255, max(0, c + j))) for c, j in zip(base, jitter))  # type: ignore[return-value]


def sample_spec(
    rng: np.random.Generator,
    taxonomy: Taxonomy,
    shot: str,
    *,
    driver_side: str,
    plate_style: str,
    size: tuple[int, int],
    body_type: str | None = None,
    paint: RGB | None = None,
    trim: RGB | None = None,
    make_model: tuple[str, str] | None = None,
    background: str | None = None,
    banner: str | bool | None = None,
    banner_rate: float = 0.4,
    plate_modes: Mapping[str, float] | None = None,
    dealer: str = "Metro Motors",
    plate_seed: int | None = None,
    yaw_band: str = "narrow",
) -> PhotoSpec:
    """Draw a photo spec for ``shot``; fixed arguments pin parts of it (a listing's car, say).

    Args:
        rng: The photo's own generator.
        taxonomy: The shot taxonomy (``shot`` must be one of its classes).
        shot: The class to render.
        driver_side: ``left`` | ``right`` (``config.market.driver_side``).
        plate_style: One of ``PLATE_STYLES`` (``AU``, ``BR``, ``DE``, ``UK``, ``US``).
        size: (width, height) of the upright photo.
        body_type, paint, trim, make_model, background: Pin the car and surroundings; None draws them.
        banner: A banner kind, ``False`` for none, or None to draw one with probability ``banner_rate``.
        banner_rate: Probability of a banner when ``banner`` is None.
        plate_modes: Weights of the plate variants for shots that can show a plate (default
            ``PLATE_MODES``).
        dealer: Dealer name written on banners.
        plate_seed: Seeds the plate characters (one car, one plate); None: per photo.
        yaw_band: ``narrow`` | ``class`` (:attr:`PhotoSpec.yaw_band`); draws nothing, so the rest of the
            spec is the same either way.

    Raises:
        KeyError: Unknown shot or body type.
        ValueError: Bad driver side, plate style, background, banner kind, size or yaw band.
    """
    cls = taxonomy[shot]
    if driver_side not in ("left", "right"):
        raise ValueError(f"driver_side must be 'left' or 'right', got {driver_side!r}")
    if plate_style not in PLATE_STYLES:
        raise ValueError(f"plate_style must be one of {PLATE_STYLES}, got {plate_style!r}")
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"size must be (width, height) of at least 16 px, got {size!r}")
    if yaw_band not in YAW_BANDS:
        raise ValueError(f"yaw_band must be one of {sorted(YAW_BANDS)}, got {yaw_band!r}")
    if body_type is None:
        body_type = weighted_choice(rng, BODY_MIX)
    if body_type not in BODY_SHAPES:
        raise KeyError(f"unknown body type {body_type!r}; known: {', '.join(BODY_SHAPES)}")
    if paint is None:
        paint = pick_paint(rng)
    if trim is None:
        trim = TRIMS[int(rng.integers(len(TRIMS)))]
    if make_model is None:
        options = MODELS[body_type]
        make_model = options[int(rng.integers(len(options)))]
    if background is None:
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    if banner is None:
        banner = weighted_choice(rng, BANNER_MIX) if rng.random() < banner_rate else None
    elif banner is False:
        banner = None
    elif banner not in BANNER_KINDS:
        raise ValueError(f"banner must be one of {BANNER_KINDS}, False or None, got {banner!r}")
    plate_mode = weighted_choice(rng, dict(plate_modes or PLATE_MODES)) if cls.plate_visible else "none"
    # every lens and resize softens edges a little (0.35-0.75 px, like a downscaled photo: no jagged
    # polygon edges); a quarter of photos are visibly out of focus
    soft = float(rng.uniform(0.35, 0.75)) / max(size)
    blur = float(rng.uniform(0.0025, 0.007)) if rng.random() < 0.25 else soft
    return PhotoSpec(
        shot=shot,
        group=cls.group,
        side=cls.side,
        body_type=body_type,
        paint=paint,
        trim=trim,
        driver_side=driver_side,
        plate_style=plate_style,
        size=(int(size[0]), int(size[1])),
        background=background,
        banner=banner,  # type: ignore[arg-type]
        plate_mode=plate_mode,
        scene_seed=int(rng.integers(0, 2**62)),
        gain=float(rng.uniform(0.72, 1.22)),
        contrast=float(rng.uniform(0.85, 1.15)),
        tint=tuple(int(v) for v in rng.integers(-12, 13, 3)),  # type: ignore[arg-type]
        noise=int(rng.choice(NOISE_LEVELS)),
        blur=blur,
        make=make_model[0],
        model=make_model[1],
        dealer=dealer,
        currency="€" if plate_style == "DE" else "$",
        odometer_km=int(rng.integers(1500, 320000)),
        plate_seed=plate_seed,
        yaw_band=yaw_band,
        **_photographic(rng, cls.group),
    )


def _photographic(rng: np.random.Generator, group: str) -> dict[str, object]:
    """The camera and post-processing draws of one photo (every draw made whatever the outcome)."""
    warmth = float(rng.normal(0.0, 0.06))  # white balance: warm (tungsten, sunset) to cool (shade)
    green = float(rng.normal(0.0, 0.02))  # fluorescent showrooms
    saturation = float(rng.uniform(0.6, 1.3))
    vignette = float(rng.uniform(0.1, 0.45))
    motion = float(rng.uniform(0.004, 0.012))
    crop = float(rng.uniform(1.05, 1.6))
    occluder = OCCLUDER_KINDS[int(rng.integers(len(OCCLUDER_KINDS)))]
    watermark = WATERMARKS[int(rng.integers(len(WATERMARKS)))]
    u = rng.random(5)
    return {
        "white_balance": (round(1.0 + warmth, 3), round(1.0 + green, 3), round(1.0 - warmth, 3)),
        "saturation": saturation,
        "vignette": vignette if u[0] < VIGNETTE_RATE else 0.0,
        "motion_blur": motion if u[1] < MOTION_RATE else 0.0,
        "crop": crop if u[2] < CROP_RATE else 1.0,
        "occluder": occluder if group == "exterior" and u[3] < OCCLUDER_RATE else None,
        "watermark": watermark if u[4] < WATERMARK_RATE else None,
    }


def mirrored_spec(spec: PhotoSpec, taxonomy: Taxonomy) -> PhotoSpec:
    """The same spec for the shot's mirror partner (identity for classes without one)."""
    partner = taxonomy[spec.shot].mirror
    if partner is None:
        return spec
    return replace(spec, shot=partner, side=taxonomy[partner].side)
