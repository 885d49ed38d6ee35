"""One photo from one spec: the pure renderer behind the inventory and the training sets.

A :class:`~fleetvision.synth.photo_spec.PhotoSpec` holds every choice that decides what a photo shows
and how it is labelled (:func:`~fleetvision.synth.photo_spec.sample_spec` draws one);
:func:`render_photo` turns a spec into pixels plus exact labels
(plate box from the plate's projected corners minus whatever hides it, banner coverage from the
banner's own mask). Same spec, same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from fleetvision.synth.backdrops import apply_texture, texture_patch
from fleetvision.synth.canvas import Canvas, defocus
from fleetvision.synth.car_geometry import SHAPE_VARIANTS, VIEW_YAW, YAW_BANDS
from fleetvision.synth.exterior import ExteriorView, mirror_sign, render_exterior
from fleetvision.synth.interiors import COMPOSERS, DetailContext
from fleetvision.synth.overlays import (
    draw_banner,
    draw_occluder,
    draw_watermark,
    plate_look,
    plate_text,
)
from fleetvision.synth.painter_car import CarLook
from fleetvision.synth.photo_spec import NOISE_LEVELS, PhotoSpec, shot_family
from fleetvision.synth.rng import derive_rng, derive_seed

CLOSE_RATE = 0.25  # exterior close-ups: the car spans 1.0-1.5 of the frame's width
# a plate counts as present when at least this share of it is visible and its box is wide enough
PLATE_MIN_VISIBLE = 0.5
PLATE_MIN_WIDTH = 0.015  # of the image width


@dataclass
class RenderedPhoto:
    """A rendered photo and its ground truth (boxes normalised to the upright image)."""

    image: Image.Image
    spec: PhotoSpec
    has_banner: bool
    banner_kind: str | None
    banner_coverage: float
    plate_present: bool
    plate_box: tuple[float, float, float, float] | None
    plate_text: str | None
    hard_negative: str | None

    @property
    def body_type(self) -> str | None:
        """The body-type label: only exterior shots show the body."""
        return self.spec.body_type if self.spec.group == "exterior" else None


def exterior_view(spec: PhotoSpec) -> ExteriorView:
    """The camera and surroundings of an exterior spec.

    Every random number is drawn in the same order whatever the shot, and the side only sets the
    sign of the yaw at the end, so a driver shot and a passenger shot with the same spec are mirrors.
    """
    rng = derive_rng(spec.scene_seed, "view")
    family = shot_family(spec.shot)
    base = VIEW_YAW[family]
    jitter = YAW_BANDS[spec.yaw_band][family]
    j = float(rng.uniform(-jitter, jitter))
    steep_extra = float(rng.uniform(8.0, 14.0))
    pitch = float(rng.uniform(4.0, 14.0))
    steep_pitch = float(rng.uniform(24.0, 32.0))
    distance = float(rng.uniform(5.5, 9.0))
    # share of the width the car spans: real listing photos are framed tight, often cutting the car
    fill = float(rng.uniform(0.6, 1.0))
    small_fill = float(rng.uniform(0.3, 0.42))
    shift = (float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.05, 0.05)))
    roll = float(rng.uniform(-2.5, 2.5))
    light = (float(rng.uniform(-0.7, 0.7)), float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.1, 0.8)))
    occluder = float(rng.uniform(0.25, 0.5))
    random_sign = 1.0 if rng.random() < 0.5 else -1.0
    # lens and camera height: a fifth of photos close up with a wide lens (strong perspective), some
    # from far with a long lens (flat), some crouched low or held high
    lens, wide, tele = float(rng.random()), float(rng.uniform(3.9, 5.5)), float(rng.uniform(9.0, 15.0))
    height, low, high = float(rng.random()), float(rng.uniform(1.0, 4.0)), float(rng.uniform(14.0, 20.0))
    # close-ups: the car overflows the frame, as in many real listing photos (a plate then spans a
    # fifth to a third of the width); drawn last so that the draws above do not move
    close, close_fill = float(rng.random()), float(rng.uniform(1.0, 1.5))
    if spec.plate_mode not in ("steep", "small"):  # those variants set their own camera
        distance = wide if lens < 0.2 else (tele if lens > 0.85 else distance)
        pitch = low if height < 0.12 else (high if height > 0.9 else pitch)
    if spec.plate_mode == "steep":
        if family in ("front_3q", "rear_3q"):
            j = steep_extra if family == "front_3q" else -steep_extra
        else:
            pitch = steep_pitch
    if spec.plate_mode == "small":
        fill = small_fill
    tall_fill = 0.8
    if spec.plate_mode not in ("steep", "small") and close < CLOSE_RATE:
        fill, tall_fill = close_fill, 0.8 * close_fill
    yaw = base + j
    if spec.side is None:
        sign = random_sign
    else:
        physical = spec.driver_side if spec.side == "driver" else ("left" if spec.driver_side == "right" else "right")
        sign = 1.0 if physical == "left" else -1.0  # +y (yaw > 0) is the car's left
    yaw = sign * yaw
    if yaw > 180.0:
        yaw -= 360.0
    return ExteriorView(
        yaw=yaw, pitch=pitch, distance=distance, fill=fill, shift=shift, roll=roll, light=light,
        background=spec.background, scene_seed=spec.scene_seed,
        occluder=occluder if spec.plate_mode == "hidden" else 0.0, tall_fill=tall_fill,
    )


NOISE_TILE = 512


@lru_cache(maxsize=len(NOISE_LEVELS))
def _noise_tile(sigma: int) -> Image.Image:
    """A fixed tile of sensor noise stored as ``128 + noise`` (its own seed, so photos cost no RNG per pixel)."""
    rng = np.random.Generator(np.random.PCG64(derive_seed(0, "noise-tile")))
    noise = np.round(rng.normal(0.0, sigma, (NOISE_TILE, NOISE_TILE, 3))) + 128.0
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), "RGB")


@lru_cache(maxsize=64)
def _tone_lut(gain: float, contrast: float, tint: tuple[int, int, int],
              balance: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> list[int]:
    ramp = np.arange(256, dtype=np.float64)
    out: list[int] = []
    for c in range(3):
        ch = (((ramp - 128.0) * contrast + 128.0) * gain * balance[c]) + tint[c]
        out.extend(np.clip(np.round(ch), 0, 255).astype(int).tolist())
    return out


@lru_cache(maxsize=32)
def _vignette_mask(size: tuple[int, int], strength: float) -> Image.Image:
    """An RGB multiplier: 255 in the centre, ``255 * (1 - strength)`` in the corners (radial falloff)."""
    w, h = size
    sw, sh = max(2, w // 8), max(2, h // 8)  # smooth: computed small, scaled up
    y = np.linspace(-1.0, 1.0, sh)[:, None]
    x = np.linspace(-1.0, 1.0, sw)[None, :]
    r2 = (x * x + y * y) / 2.0
    m = 1.0 - strength * r2 ** 1.4
    small = Image.fromarray(np.clip(m * 255.0, 0, 255).astype(np.uint8), "L")
    return small.resize((w, h), Image.Resampling.BILINEAR).convert("RGB")


def _blur(image: Image.Image, radius: float) -> Image.Image:
    if radius < 1.5:
        return image.filter(ImageFilter.BoxBlur(radius))
    return defocus(image, radius)


def _motion_blur(image: Image.Image, length: float, angle: float) -> Image.Image:
    """Camera shake: the mean of copies shifted along ``angle`` (symmetric taps, so mirroring commutes)."""
    taps = max(2, min(9, round(length)))
    arr = np.asarray(image, dtype=np.uint16)
    h, w = arr.shape[:2]
    pad = math.ceil(length / 2) + 1
    padded = np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    acc = np.zeros_like(arr)
    for k in range(taps):
        t = (k / (taps - 1) - 0.5) * length
        dx, dy = round(t * math.cos(angle)), round(t * math.sin(angle))
        acc += padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
    return Image.fromarray((acc // taps).astype(np.uint8), "RGB")


@dataclass(frozen=True)
class _Crop:
    """A crop of the render scaled back to the photo's size: render pixel ``p`` lands at ``(p - origin) * scale``."""

    box: tuple[int, int, int, int]
    scale: float

    def points(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, dtype=float) - np.array(self.box[:2], dtype=float)) * self.scale

    def polygon(self, poly: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [((x - self.box[0]) * self.scale, (y - self.box[1]) * self.scale) for x, y in poly]


def _crop_box(spec: PhotoSpec, rng: np.random.Generator, ms: float) -> _Crop | None:
    """The crop window (integer pixels, the photo's aspect, mirrored with the view); drawn whatever the spec."""
    w, h = spec.size
    fx, fy = float(rng.uniform(-1.0, 1.0)), float(rng.uniform(-0.6, 1.0))  # rather the top: keep the wheels
    if spec.crop <= 1.0:
        return None
    cw, ch = max(8, round(w / spec.crop)), max(8, round(h / spec.crop))
    x0 = round((w - cw) / 2 * (1 + fx))
    y0 = round((h - ch) / 2 * (1 + fy * 0.8))
    if ms < 0:
        x0 = w - cw - x0
    x0, y0 = min(max(0, x0), w - cw), min(max(0, y0), h - ch)
    return _Crop((x0, y0, x0 + cw, y0 + ch), w / cw)


def _photo_light(image: Image.Image, rng: np.random.Generator, ms: float) -> Image.Image:
    """Interiors and details: light falling off across the frame, soft shadows, the grain of real materials.

    The light (falloff times shadows) is smooth, so it is worked out at most 512 pixels across and
    scaled up once; the grain is added at full resolution.
    """
    w, h = image.size
    angle = float(rng.uniform(0, 2 * math.pi))
    fall = float(rng.uniform(0.1, 0.4))
    grain = float(rng.uniform(0.08, 0.25))
    stretch = float(rng.uniform(1.0, 2.5))
    strength = float(rng.uniform(0.5, 1.1))
    r = max(1, math.ceil(max(w, h) / 512))
    lum = image.convert("L")
    if r > 1:
        lum = lum.reduce(r)
    xs = np.linspace(-1.0, 1.0, 16)[None, :] * ms
    ys = np.linspace(-1.0, 1.0, 12)[:, None]
    g = 1.0 - fall * (0.5 + 0.5 * (xs * math.cos(angle) + ys * math.sin(angle)))
    light = Image.fromarray(np.clip(g * 255, 0, 255).astype(np.uint8), "L").resize(lum.size,
                                                                                     Image.Resampling.BILINEAR)
    light = ImageChops.multiply(light, _shadow_gain(lum, angle, strength))
    if r > 1:
        light = light.resize((w, h), Image.Resampling.BILINEAR)
    image = ImageChops.multiply(image, light.convert("RGB"))
    return apply_texture(image, texture_patch("mixed", (w, h), rng, ms, stretch=stretch), grain)


_SHADOW_GAIN: dict[float, list[int]] = {}


def _shadow_gain(lum: Image.Image, angle: float, strength: float) -> Image.Image:
    """Soft shadows and occlusion, as a gain (L, 255 = lit): a surface next to darker shapes, away from
    the light, darkens.

    The blurred luminance, shifted away from the light, stands for what casts shadows; where the
    neighbourhood is brighter than what falls on it, it lies in that shadow. Both sides are blurred, so
    small bright details (digits, chrome letters) keep their contrast. Cheap and without geometry, it
    turns flat cut-outs into objects that sit on their surfaces.
    """
    w, h = lum.size
    k = max(1, min(w, h) // 64)
    small = lum.reduce(k).filter(ImageFilter.GaussianBlur(2.5))
    local = small.resize((w, h), Image.Resampling.BILINEAR)
    shift = max(1, round(min(w, h) * 0.03))
    casts = ImageChops.offset(local, round(shift * math.cos(angle)), round(shift * math.sin(angle)))
    key = round(strength, 1)
    if key not in _SHADOW_GAIN:
        _SHADOW_GAIN[key] = [max(90, 255 - round(v * 2.2 * key)) for v in range(256)]
    return ImageChops.subtract(local, casts).point(_SHADOW_GAIN[key])


def _postprocess(image: Image.Image, spec: PhotoSpec, rng: np.random.Generator, ms: float = 1.0) -> Image.Image:
    image = image.point(_tone_lut(round(spec.gain, 2), round(spec.contrast, 2), spec.tint,
                                  tuple(round(v, 2) for v in spec.white_balance)))  # type: ignore[arg-type]
    if abs(spec.saturation - 1.0) > 0.02:  # above 1 the blend extrapolates away from grey (clipped)
        image = Image.blend(image.convert("L").convert("RGB"), image, spec.saturation)
    if spec.vignette > 0:
        image = ImageChops.multiply(image, _vignette_mask(image.size, round(spec.vignette, 2)))
    if spec.blur > 0:
        image = _blur(image, spec.blur * max(image.size))
    angle = float(rng.uniform(0.0, math.pi))
    if spec.motion_blur > 0:
        # drawn on the canonical side and mirrored back: a mirrored spec gets the mirrored shake
        flip = ms < 0
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        image = _motion_blur(image, spec.motion_blur * max(image.size), angle)
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if spec.noise:
        w, h = image.size
        tile = _noise_tile(spec.noise)
        ox, oy = int(rng.integers(0, NOISE_TILE)), int(rng.integers(0, NOISE_TILE))
        noise = Image.new("RGB", (w, h))
        for y in range(-oy, h, NOISE_TILE):
            for x in range(-ox, w, NOISE_TILE):
                noise.paste(tile, (x, y))
        image = ImageChops.add(image, noise, scale=1.0, offset=-128)
    return image


def plate_visibility(
    quad: np.ndarray, occluders: list[list[tuple[float, float]]], banner_mask: Image.Image | None,
    size: tuple[int, int]
) -> tuple[float, tuple[int, int, int, int] | None]:
    """Share of the plate that can be seen, and the pixel box (x0, y0, x1, y1 exclusive) of what can."""
    w, h = size
    xs, ys = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
    if area < 1.0:
        return 0.0, None
    x0, y0 = max(0, math.floor(xs.min())), max(0, math.floor(ys.min()))
    x1, y1 = min(w, math.ceil(xs.max()) + 1), min(h, math.ceil(ys.max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return 0.0, None
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    d = ImageDraw.Draw(mask)
    d.polygon([(float(x) - x0, float(y) - y0) for x, y in quad], fill=255)
    full = int(np.count_nonzero(np.asarray(mask)))  # raster area of the whole plate, for a like-for-like ratio
    for poly in occluders:
        d.polygon([(x - x0, y - y0) for x, y in poly], fill=0)
    m = np.asarray(mask) > 0
    if banner_mask is not None:
        m &= np.asarray(banner_mask.crop((x0, y0, x1, y1))) == 0
    rows, cols = np.nonzero(m)
    if rows.size == 0:
        return 0.0, None
    # pixels of the plate cut off by the frame count as hidden
    visible = rows.size / max(area, full, 1)
    return float(visible), (x0 + int(cols.min()), y0 + int(rows.min()), x0 + int(cols.max()) + 1,
                            y0 + int(rows.max()) + 1)


def car_variant(spec: PhotoSpec) -> tuple[int, int]:
    """The car's proportion variant and rim spoke count (one car, one look: keyed like its plate)."""
    rng = derive_rng(spec.scene_seed if spec.plate_seed is None else spec.plate_seed, "car-look")
    variant = int(rng.integers(SHAPE_VARIANTS))
    return variant, (5, 6, 5, 7, 10, 5)[variant % 6]  # tied to the variant: fewer distinct cars to build


def render_photo(spec: PhotoSpec, *, draw_plate: bool = True) -> RenderedPhoto:
    """Render ``spec`` into an upright RGB photo with its labels.

    The scene is rendered, then photographed: cropped (labels follow), partly hidden by a foreground
    occluder (a plate more than half hidden is not labelled), toned, blurred, shaken and noised; a
    dealer banner and a marketplace watermark go on last (the watermark is not a banner).

    Args:
        spec: The photo.
        draw_plate: False renders the very same scene with blank plate holders (paired data for the
            plate model, and the tests' way to find the plate's pixels); the plate is then not labelled.

    Raises:
        ValueError: The spec names a shot no renderer draws.
    """
    rng = derive_rng(spec.scene_seed, "render")
    prng_photo = derive_rng(spec.scene_seed, "photographic")
    w, h = spec.size
    quad = None
    look = None
    occluders: list[list[tuple[float, float]]] = []
    hard_negative = None
    ms = 1.0
    if spec.group == "exterior":
        if shot_family(spec.shot) not in VIEW_YAW:
            raise ValueError(f"no exterior renderer for shot {spec.shot!r}")
        prng = derive_rng(spec.scene_seed if spec.plate_seed is None else spec.plate_seed, "plate")
        text = plate_text(prng, spec.plate_style)
        plook = plate_look(prng, spec.plate_style, text)
        mounted = spec.plate_mode not in ("none", "absent")
        painted = plook if mounted and draw_plate else None
        variant, spokes = car_variant(spec)
        car = CarLook(spec.body_type, spec.paint, spec.driver_side, plate_style=spec.plate_style if mounted else None,
                      front_plate=painted, rear_plate=painted, variant=variant, spokes=spokes)
        view = exterior_view(spec)
        ms = mirror_sign(view.yaw)
        result = render_exterior(car, view, (w, h))
        image, quad, look, occluders = result.image, result.plate_quad, result.plate_look, result.occluders
    else:
        composer = COMPOSERS.get(spec.shot)
        if composer is None:
            raise ValueError(f"no renderer for shot {spec.shot!r}; known: {', '.join(sorted(COMPOSERS))}")
        crng = derive_rng(spec.scene_seed, "canvas")
        image = Image.new("RGB", (w, h))
        cv = Canvas(image, zoom=float(crng.uniform(0.92, 1.2)),
                    offset=(float(crng.uniform(-0.05, 0.05)), float(crng.uniform(-0.05, 0.05))),
                    rotation=math.radians(float(crng.uniform(-5, 5))))
        ctx = DetailContext(spec.paint, spec.trim, spec.driver_side, spec.make, spec.model, spec.odometer_km)
        hard_negative = composer(cv, crng, ctx)
        image = _photo_light(image, derive_rng(spec.scene_seed, "material"), ms)
    crop = _crop_box(spec, prng_photo, ms)
    if crop is not None:
        image = image.resize((w, h), Image.Resampling.BILINEAR, box=crop.box)
        if quad is not None:
            quad = crop.points(quad)
        occluders = [crop.polygon(p) for p in occluders]
    orng = derive_rng(spec.scene_seed, "occluder")
    if spec.occluder is not None:
        occluders = occluders + draw_occluder(image, spec.occluder, orng, ms)
    image = _postprocess(image, spec, rng, ms)
    banner = None
    if spec.banner is not None:
        banner = draw_banner(image, spec.banner, derive_rng(spec.scene_seed, "banner"), spec.dealer, spec.currency)
        if banner.has_price:
            hard_negative = "price_text"
    if spec.watermark is not None:
        draw_watermark(image, spec.watermark, derive_rng(spec.scene_seed, "watermark"), ms)
    plate_present, plate_box, text_out = False, None, None
    if quad is not None and look is not None:
        share, box = plate_visibility(quad, occluders, banner.mask if banner else None, (w, h))
        if box is not None and share >= PLATE_MIN_VISIBLE and (box[2] - box[0]) >= max(4, PLATE_MIN_WIDTH * w):
            plate_present = True
            plate_box = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
            text_out = look.text
    return RenderedPhoto(
        image=image,
        spec=spec,
        has_banner=banner is not None,
        banner_kind=banner.kind if banner else None,
        banner_coverage=banner.coverage if banner else 0.0,
        plate_present=plate_present,
        plate_box=plate_box,
        plate_text=text_out,
        hard_negative=hard_negative,
    )
