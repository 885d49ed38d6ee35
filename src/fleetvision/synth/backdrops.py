"""Surroundings for exterior shots: street, car lot, showroom.

Drawn in the camera's own frame so the horizon, ground lines and backdrop agree with the view. All
lateral choices are made on a canonical side and multiplied by the mirror sign (textures are flipped
with it), so a view and its mirror get mirrored surroundings.

Photographic rather than cartoon: skies are gradients of real sky colours (clear, hazy, overcast,
golden hour) with soft clouds, building and tree colours are muted, the ground carries a texture
(asphalt, gravel, grass, concrete, polished showroom floor) and the whole backdrop is usually out of
focus (the camera focuses on the car).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from fleetvision.synth.canvas import RGB, defocus, mix, shade, vertical_gradient
from fleetvision.synth.exterior import Camera, Environment, ExteriorView
from fleetvision.synth.rng import derive_rng, derive_seed

BACKGROUNDS = ("street", "lot", "showroom")


class _Horizon:
    """Screen frame along the horizon: ``pt(a, b)`` is ``a`` px along it and ``b`` px above it."""

    def __init__(self, cam: Camera) -> None:
        fh = np.array([cam.fwd[0], cam.fwd[1], 0.0])
        fh /= np.linalg.norm(fh)
        far = cam.pos + 1e5 * fh
        far[2] = 0.0
        self.origin = cam.project(far[None, :])[0]
        c, s = math.cos(cam.roll), math.sin(cam.roll)
        self.along = np.array([c, s])
        self.up = np.array([s, -c])
        self.focal = cam.focal
        self.cam_z = float(cam.pos[2])

    def pt(self, a: float, b: float) -> tuple[float, float]:
        p = self.origin + self.along * a + self.up * b
        return (float(p[0]), float(p[1]))

    def below(self, distance: float) -> float:
        """How far below the horizon (px) the ground lies at ``distance`` metres."""
        return -self.focal * self.cam_z / max(distance, 1e-3)

    def band(self, b0: float, b1: float, span: float) -> list[tuple[float, float]]:
        return [self.pt(-span, b0), self.pt(span, b0), self.pt(span, b1), self.pt(-span, b1)]


def _ground_line(draw: ImageDraw.ImageDraw, cam: Camera, p0: np.ndarray, p1: np.ndarray, width: float,
                 color: RGB, pieces: int = 10) -> None:
    """A painted line on the ground from ``p0`` to ``p1`` (world), skipping the parts behind the camera."""
    d = p1 - p0
    side = np.array([-d[1], d[0], 0.0])
    side = side / (np.linalg.norm(side) + 1e-9) * width / 2
    ts = np.linspace(0.0, 1.0, pieces + 1)[:, None]
    along = p0 + d * ts
    corners = np.concatenate([along - side, along + side])  # [2 (pieces + 1), 3]
    depth = cam.depth(corners)
    xy = cam.project(corners).tolist()
    n = pieces + 1
    for i in range(pieces):
        idx = (i, i + 1, n + i + 1, n + i)
        if min(depth[j] for j in idx) < 0.5:
            continue
        draw.polygon([tuple(xy[j]) for j in idx], fill=color)


TEXTURE_TILE = 384
_CLOUD_LUT = [int(max(0, min(255, (v - 128) * 3.2 - 20))) for v in range(256)]
# real sky colours: (zenith, horizon) per weather, with their share
SKIES: dict[str, tuple[RGB, RGB, float]] = {
    "clear": ((58, 104, 172), (178, 200, 224), 0.4),
    "hazy": ((112, 146, 190), (210, 218, 226), 0.2),
    "overcast": ((148, 152, 160), (206, 208, 210), 0.28),
    "golden": ((82, 112, 164), (236, 204, 166), 0.12),
}


@lru_cache(maxsize=4)
def texture_tile(kind: str) -> Image.Image:
    """A fixed greyscale texture tile around 128: ``fine`` (per-pixel grain), ``blotch`` (soft blotches) or
    ``mixed`` (both: asphalt, fabric, leather).

    Seeded on its own, so photos take offsets into it instead of drawing noise per pixel.
    """
    if kind == "mixed":
        both = 0.8 * (np.asarray(texture_tile("fine"), dtype=np.float64) - 128) + 0.6 * (
            np.asarray(texture_tile("blotch"), dtype=np.float64) - 128)
        return Image.fromarray(np.clip(both / max(both.std(), 1e-6) * 32 + 128, 0, 255).astype(np.uint8), "L")
    rng = np.random.Generator(np.random.PCG64(derive_seed(0, "texture-tile", kind)))
    if kind == "fine":
        noise = rng.normal(0.0, 1.0, (TEXTURE_TILE, TEXTURE_TILE))
    else:
        small = rng.normal(0.0, 1.0, (TEXTURE_TILE // 16, TEXTURE_TILE // 16))
        img = Image.fromarray(np.clip(small * 40 + 128, 0, 255).astype(np.uint8), "L")
        img = img.resize((TEXTURE_TILE, TEXTURE_TILE), Image.Resampling.BICUBIC)
        noise = (np.asarray(img, dtype=np.float64) - 128) / 40 + 0.5 * rng.normal(0.0, 1.0, (TEXTURE_TILE,
                                                                                            TEXTURE_TILE)) * 0.3
    noise = noise / max(noise.std(), 1e-6)
    return Image.fromarray(np.clip(noise * 32 + 128, 0, 255).astype(np.uint8), "L")


def texture_patch(kind: str, size: tuple[int, int], rng: np.random.Generator, ms: float = 1.0,
                  stretch: float = 1.0) -> Image.Image:
    """A ``size`` patch of a texture tile (tiled as needed), flipped when ``ms`` < 0; ``stretch`` > 1 magnifies it."""
    w, h = size
    tile = texture_tile(kind)
    sw, sh = max(1, int(w / stretch)), max(1, int(h / stretch))
    ox, oy = int(rng.integers(0, TEXTURE_TILE)), int(rng.integers(0, TEXTURE_TILE))
    patch = Image.new("L", (sw, sh))
    for y in range(-oy, sh, TEXTURE_TILE):
        for x in range(-ox, sw, TEXTURE_TILE):
            patch.paste(tile, (x, y))
    if (sw, sh) != (w, h):
        patch = patch.resize((w, h), Image.Resampling.BILINEAR)
    if ms < 0:
        patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return patch


@lru_cache(maxsize=128)
def _contrast_lut(amount: float) -> list[int]:
    return [int(max(0, min(255, round(128 + (v - 128) * amount)))) for v in range(256)]


def apply_texture(image: Image.Image, patch: Image.Image, amount: float,
                  mask: Image.Image | None = None) -> Image.Image:
    """``image`` with the texture ``patch`` (L around 128) added at ``amount`` (1 = full contrast), inside ``mask``."""
    grain = patch.point(_contrast_lut(round(amount, 2))).convert("RGB")
    out = ImageChops.add(image, grain, scale=1.0, offset=-128)
    if mask is not None:
        out = Image.composite(out, image, mask)
    return out


def _muted(rng: np.random.Generator, lo: int, hi: int, grey: RGB = (150, 146, 140), amount: float = 0.55) -> RGB:
    return mix(tuple(int(v) for v in rng.integers(lo, hi, 3)), grey, amount)


def _sky(image: Image.Image, hz: _Horizon, rng: np.random.Generator, ms: float) -> tuple[RGB, RGB]:
    names = list(SKIES)
    weather = names[int(rng.choice(len(names), p=np.asarray([SKIES[k][2] for k in names]) / sum(
        SKIES[k][2] for k in names)))]
    zen, hor, _ = SKIES[weather]
    jit = rng.integers(-10, 11, 3)
    zen = tuple(int(min(255, max(0, c + j))) for c, j in zip(zen, jit))
    w, h = image.size
    y_h = float(hz.origin[1])
    ys = np.arange(h, dtype=np.float64)
    t = np.clip((y_h - ys) / max(y_h, 0.6 * h, 1.0), 0.0, 1.0) ** 0.55
    col = np.stack([hor[c] + (zen[c] - hor[c]) * t for c in range(3)], axis=1)
    image.paste(Image.fromarray(np.round(col).astype(np.uint8).reshape(h, 1, 3), "RGB").resize(
        (w, h), Image.Resampling.NEAREST))
    if weather != "clear" or rng.random() < 0.5:  # soft clouds
        clouds = texture_patch("blotch", (w, h), rng, ms, stretch=max(w, h) / 160)
        cover = clouds.point(_CLOUD_LUT)
        white = Image.new("RGB", (w, h), mix(hor, (250, 250, 250), 0.6))
        image.paste(Image.composite(white, image, cover))
    return zen, hor  # type: ignore[return-value]


def _skyline(rng: np.random.Generator, low: float, high: float, bins: int = 48) -> tuple[float, ...]:
    """Elevations (sines) of what stands around the car, per azimuth bin: a blocky, smoothed outline."""
    raw = rng.uniform(low, high, bins // 3).repeat(3)
    smooth = (raw + np.roll(raw, 1) + np.roll(raw, -1)) / 3
    return tuple(round(float(v), 3) for v in smooth)


def _ground_mask(size: tuple[int, int], hz: _Horizon, base: float) -> Image.Image:
    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon(hz.band(base, base - 4 * h, 3.0 * (w + h)), fill=255)
    return mask


def draw_backdrop(image: Image.Image, cam: Camera, view: ExteriorView, ms: float) -> Environment:
    """Paint the surroundings of ``view`` into ``image`` (in place).

    Returns:
        What the car reflects: sky (zenith, horizon) and ground colours.

    Raises:
        ValueError: Unknown background.
    """
    if view.background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {view.background!r}")
    rng = derive_rng(view.scene_seed, "backdrop")
    w, h = image.size
    hz = _Horizon(cam)
    span = 3.0 * (w + h)
    draw = ImageDraw.Draw(image)
    # the backdrop is out of focus in most photos (focus on the car; more so with a long lens)
    focus = float(rng.uniform(0.0, 0.009)) if rng.random() < 0.7 else 0.0
    if view.background == "showroom":
        env = _showroom(image, draw, cam, hz, rng, ms, span)
    else:
        zen, hor = _sky(image, hz, rng, ms)
        draw = ImageDraw.Draw(image)
        if view.background == "street":
            env = _street(image, draw, hz, rng, ms, span, zen, hor)
        else:
            env = _lot(image, draw, cam, hz, rng, ms, span, zen, hor)
    out = defocus(image, focus * max(w, h))
    if out is not image:
        image.paste(out)
    return env


def _street(image: Image.Image, draw: ImageDraw.ImageDraw, hz: _Horizon, rng: np.random.Generator, ms: float,
            span: float, zen: RGB, hor: RGB) -> Environment:
    w, h = image.size
    dist = float(rng.uniform(18.0, 35.0))
    base = hz.below(dist)
    suburb = rng.random() < 0.5  # houses and trees, or a row of shops
    a = -1.5 * w
    while a < 1.5 * w:
        bw = hz.focal * float(rng.uniform(6, 16)) / dist
        bh = hz.focal * float(rng.uniform(3.5, 7) if suburb else rng.uniform(5, 20)) / dist
        col = _muted(rng, 90, 220, (170, 162, 150), 0.6)
        x0, x1 = ms * a, ms * (a + bw)
        draw.polygon([hz.pt(x0, base), hz.pt(x1, base), hz.pt(x1, base + bh), hz.pt(x0, base + bh)], fill=col)
        if suburb:  # a pitched roof
            roof = _muted(rng, 60, 130, (90, 80, 75), 0.5)
            draw.polygon([hz.pt(x0, base + bh), hz.pt(x1, base + bh), hz.pt((x0 + x1) / 2, base + bh * 1.45)],
                         fill=roof)
        win = mix(shade(col, 0.5), hor, 0.25)
        rows, cols = max(1, int(bh / (hz.focal * 3.2 / dist))), max(1, int(bw / (hz.focal * 2.5 / dist)))
        for i in range(rows):
            for j in range(cols):
                u0 = a + bw * (j + 0.25) / cols
                u1 = a + bw * (j + 0.75) / cols
                v0 = base + bh * (i + 0.3) / rows
                v1 = base + bh * (i + 0.75) / rows
                draw.polygon([hz.pt(ms * u0, v0), hz.pt(ms * u1, v0), hz.pt(ms * u1, v1), hz.pt(ms * u0, v1)],
                             fill=win)
        a += bw * float(rng.uniform(1.0, 1.4))
    for _ in range(int(rng.integers(2, 7))):
        a = ms * float(rng.uniform(-1.4, 1.4)) * w
        th = hz.focal * float(rng.uniform(3, 7)) / dist
        trunk = max(1.5, hz.focal * 0.25 / dist)
        draw.polygon([hz.pt(a - trunk, base), hz.pt(a + trunk, base), hz.pt(a + trunk, base + th),
                      hz.pt(a - trunk, base + th)], fill=(62, 54, 46))
        r = hz.focal * float(rng.uniform(1.5, 3.5)) / dist
        green = _muted(rng, 40, 110, (70, 90, 60), 0.4)
        for j in range(4):  # a crown of a few overlapping blobs
            c = hz.pt(a + ms * r * float(rng.uniform(-0.6, 0.6)), base + th + r * float(rng.uniform(-0.3, 0.5)))
            rr = r * float(rng.uniform(0.6, 1.0))
            draw.ellipse((c[0] - rr, c[1] - rr, c[0] + rr, c[1] + rr), fill=shade(green, 0.8 + 0.1 * j))
    walk = hz.below(dist - 4.0)
    pave = _muted(rng, 150, 190, (170, 168, 162), 0.7)
    draw.polygon(hz.band(base, walk, span), fill=pave)
    kerb = max(2.0, 0.012 * h)
    draw.polygon(hz.band(walk, walk - kerb, span), fill=shade(pave, 0.7))
    if rng.random() < 0.3:  # a driveway of pale concrete, or grass verge
        ground = (150, 148, 142) if rng.random() < 0.5 else (78, 98, 58)
    else:
        g = int(rng.integers(62, 100))
        ground = (g, g, g + 3)
    draw.polygon(hz.band(walk - kerb, walk - 4 * h, span), fill=ground)
    grass = ground[1] > ground[0] + 10
    patch = texture_patch("blotch" if grass else "fine", (w, h), rng, ms, stretch=2.0 if grass else 1.0)
    mask = _ground_mask((w, h), hz, base)
    image.paste(apply_texture(image, patch, 0.6 if grass else 0.22, mask))
    return Environment(zen, hor, ground, skyline=_skyline(rng, 0.05, 0.4),
                       scenery=mix(_muted(rng, 60, 160, (110, 105, 100), 0.5), (60, 75, 55), 0.3))


def _lot(image: Image.Image, draw: ImageDraw.ImageDraw, cam: Camera, hz: _Horizon, rng: np.random.Generator,
         ms: float, span: float, zen: RGB, hor: RGB) -> Environment:
    w, h = image.size
    dist = float(rng.uniform(40.0, 70.0))
    base = hz.below(dist)
    green = (int(rng.integers(45, 75)), int(rng.integers(70, 100)), int(rng.integers(40, 65)))
    a = -1.5 * w
    while a < 1.5 * w:
        r = hz.focal * float(rng.uniform(2.5, 5.0)) / dist
        c = hz.pt(ms * a, base + r * 0.8)
        draw.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=shade(green, float(rng.uniform(0.75, 1.1))))
        a += r * 1.3
    if rng.random() < 0.5:  # a dealership building behind the lot
        x0 = ms * float(rng.uniform(-1.0, 0.2)) * w
        bw = ms * float(rng.uniform(0.5, 1.2)) * w
        bh = hz.focal * float(rng.uniform(5, 9)) / dist
        wall = _muted(rng, 150, 240, (200, 200, 198), 0.5)
        draw.polygon([hz.pt(x0, base), hz.pt(x0 + bw, base), hz.pt(x0 + bw, base + bh), hz.pt(x0, base + bh)],
                     fill=wall)
        draw.polygon([hz.pt(x0, base), hz.pt(x0 + bw, base), hz.pt(x0 + bw, base + bh * 0.55),
                      hz.pt(x0, base + bh * 0.55)], fill=mix((40, 55, 70), hor, 0.35))
    surface = int(rng.integers(3))  # asphalt, gravel, concrete
    tar = int(rng.integers(68, 100))
    ground: RGB = ((tar, tar, tar + 2), (int(tar * 1.35), int(tar * 1.25), int(tar * 1.1)),
                   (tar + 60, tar + 58, tar + 54))[surface]
    draw.polygon(hz.band(base, base - 4 * h, span), fill=ground)
    for i in range(5):
        b0 = base + (hz.below(4.0) - base) * i / 5
        b1 = base + (hz.below(4.0) - base) * (i + 1) / 5
        draw.polygon(hz.band(b0, b1 if i < 4 else b1 - 4 * h, span), fill=shade(ground, 1.0 - 0.03 * i))
    for k in range(-3, 4):
        a = ms * (k * 0.4 * w + float(rng.uniform(-30, 30)))
        ph = hz.focal * 8.0 / dist
        draw.line([hz.pt(a, base), hz.pt(a, base + ph)], fill=(130, 130, 132), width=max(1, w // 500))
    if surface != 1:  # painted bays (not on gravel)
        line = (205, 205, 198) if rng.random() < 0.7 else (210, 185, 60)
        for y in (1.45, 4.25, 7.05):
            for sgn in (1, -1):
                _ground_line(draw, cam, np.array([-2.9, ms * sgn * y, 0.0]), np.array([2.9, ms * sgn * y, 0.0]), 0.1,
                             line)
        _ground_line(draw, cam, np.array([-2.9, -8.0, 0.0]), np.array([-2.9, 8.0, 0.0]), 0.1, line, pieces=16)
    mask = _ground_mask((w, h), hz, base)
    amount = (0.3, 0.55, 0.22)[surface]  # grain with oil stains and patches
    patch = texture_patch("mixed", (w, h), rng, ms, stretch=1.0 if surface != 1 else 1.6)
    image.paste(apply_texture(image, patch, amount, mask))
    return Environment(zen, hor, ground, skyline=_skyline(rng, 0.02, 0.16), scenery=shade(green, 0.8))


def _showroom(image: Image.Image, draw: ImageDraw.ImageDraw, cam: Camera, hz: _Horizon, rng: np.random.Generator,
              ms: float, span: float) -> Environment:
    w, h = image.size
    wall = tuple(int(v) for v in rng.integers(195, 245, 3))
    wall = mix(wall, (232, 232, 230), 0.6)
    image.paste(vertical_gradient((w, h), [shade(wall, 0.86), wall, shade(wall, 1.03)]))
    floor_kind = int(rng.integers(3))  # polished grey, light tiles, dark gloss
    floor = (mix(wall, (120, 120, 125), float(rng.uniform(0.3, 0.6))), mix(wall, (200, 198, 192), 0.5),
             (58, 58, 62))[floor_kind]
    base = hz.below(float(rng.uniform(9.0, 14.0)))
    if rng.random() < 0.5:  # glass frontage: the street outside, bright
        outside = mix((175, 195, 215), wall, 0.3)
        a0 = ms * float(rng.uniform(-1.2, -0.2)) * w
        a1 = a0 + ms * float(rng.uniform(0.6, 1.5)) * w
        draw.polygon([hz.pt(a0, base), hz.pt(a1, base), hz.pt(a1, base + 0.8 * h), hz.pt(a0, base + 0.8 * h)],
                     fill=outside)
        for k in range(6):
            a = a0 + (a1 - a0) * k / 5
            draw.line([hz.pt(a, base), hz.pt(a, base + 0.8 * h)], fill=(70, 72, 76), width=max(1, w // 200))
    draw.polygon(hz.band(base, base - 4 * h, span), fill=floor)
    for i in range(6):  # floor shading, darker toward the camera
        b0 = base + (hz.below(3.0) - base) * i / 6
        b1 = base + (hz.below(3.0) - base) * (i + 1) / 6
        draw.polygon(hz.band(b0, b1 if i < 5 else b1 - 4 * h, span), fill=shade(floor, 1.0 - 0.035 * i))
    draw.polygon(hz.band(base, base + max(2.0, 0.01 * h), span), fill=shade(wall, 0.7))
    for k in range(-3, 4):  # ceiling lights and their reflections in the floor
        a = ms * (k * w * 0.28 + float(rng.uniform(-20, 20)))
        top = hz.pt(a, base + 0.9 * h)
        r = 0.03 * w
        draw.ellipse((top[0] - r, top[1] - r * 0.5, top[0] + r, top[1] + r * 0.5), fill=(255, 255, 245))
        refl = hz.pt(a, base - 0.12 * h)
        draw.ellipse((refl[0] - r * 0.4, refl[1] - r * 1.6, refl[0] + r * 0.4, refl[1] + r * 1.6),
                     fill=mix(floor, (255, 255, 250), 0.14 if floor_kind != 1 else 0.08))
    if floor_kind == 1:
        grid = float(rng.uniform(0.6, 1.2))
        off = float(rng.uniform(0, grid))
        for k in range(-10, 11):
            y = k * grid + off
            _ground_line(draw, cam, np.array([-12.0, ms * y, 0.0]), np.array([12.0, ms * y, 0.0]), 0.012,
                         shade(floor, 0.9), pieces=12)
            _ground_line(draw, cam, np.array([y, -12.0, 0.0]), np.array([y, 12.0, 0.0]), 0.012, shade(floor, 0.9),
                         pieces=12)
    mask = _ground_mask((w, h), hz, base)
    patch = texture_patch("blotch", (w, h), rng, ms, stretch=2.5)
    image.paste(apply_texture(image, patch, 0.18, mask))
    return Environment(shade(wall, 1.05), wall, shade(floor, 0.9), skyline=_skyline(rng, 0.25, 0.6),
                       scenery=shade(wall, 0.78))
