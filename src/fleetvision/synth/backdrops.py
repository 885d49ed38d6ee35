"""Surroundings for exterior shots: street, car lot, showroom.

Drawn in the camera's own frame so the horizon, ground lines and backdrop agree with the view. All
lateral choices are made on a canonical side and multiplied by the mirror sign, so a view and its
mirror get mirrored surroundings.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from fleetvision.synth.canvas import RGB, mix, shade, vertical_gradient
from fleetvision.synth.exterior import Camera, ExteriorView
from fleetvision.synth.rng import derive_rng

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


def draw_backdrop(image: Image.Image, cam: Camera, view: ExteriorView, ms: float) -> RGB:
    """Paint the surroundings of ``view`` into ``image`` (in place).

    Returns:
        The sky colour near the horizon (glass reflects it).

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
    if view.background == "showroom":
        wall = tuple(int(v) for v in rng.integers(205, 245, 3))
        wall = mix(wall, (235, 235, 235), 0.6)
        image.paste(vertical_gradient((w, h), [shade(wall, 0.9), wall, shade(wall, 1.04)]))
        floor = mix(wall, (120, 120, 125), float(rng.uniform(0.2, 0.6)))
        base = hz.below(float(rng.uniform(9.0, 14.0)))
        draw.polygon(hz.band(base, base - 4 * h, span), fill=floor)
        for i in range(6):  # floor shading, darker toward the camera
            b0 = base + (hz.below(3.0) - base) * i / 6
            b1 = base + (hz.below(3.0) - base) * (i + 1) / 6
            draw.polygon(hz.band(b0, b1 if i < 5 else b1 - 4 * h, span), fill=shade(floor, 1.0 - 0.04 * i))
        draw.polygon(hz.band(base, base + max(2.0, 0.01 * h), span), fill=shade(wall, 0.7))
        panel = hz.focal * float(rng.uniform(2.5, 4.5)) / 12.0
        for k in range(-12, 13):
            a = ms * k * panel
            draw.line([hz.pt(a, base), hz.pt(a, base + 3 * h)], fill=shade(wall, 0.88), width=max(1, w // 400))
        for k in range(-3, 4):
            a = ms * (k * w * 0.28 + float(rng.uniform(-20, 20)))
            top = hz.pt(a, base + 0.9 * h)
            r = 0.03 * w
            draw.ellipse((top[0] - r, top[1] - r * 0.5, top[0] + r, top[1] + r * 0.5), fill=(255, 255, 245))
        grid = 1.2
        off = float(rng.uniform(0, grid))
        for k in range(-8, 9):
            y = k * grid + off
            _ground_line(draw, cam, np.array([-12.0, ms * y, 0.0]), np.array([12.0, ms * y, 0.0]), 0.02,
                         shade(floor, 0.9), pieces=12)
            _ground_line(draw, cam, np.array([y, -12.0, 0.0]), np.array([y, 12.0, 0.0]), 0.02, shade(floor, 0.9),
                         pieces=12)
        return wall

    overcast = rng.random() < 0.35
    sky_top = (150, 155, 165) if overcast else tuple(int(v) for v in (rng.integers(60, 110), rng.integers(120, 160),
                                                                         rng.integers(200, 240)))
    sky_low = mix(sky_top, (235, 235, 235), 0.6)
    image.paste(vertical_gradient((w, h), [sky_top, sky_low, sky_low]))
    if view.background == "street":
        dist = float(rng.uniform(22.0, 35.0))
        base = hz.below(dist)
        a = -1.5 * w
        while a < 1.5 * w:
            bw = hz.focal * float(rng.uniform(6, 16)) / dist
            bh = hz.focal * float(rng.uniform(5, 22)) / dist
            col = tuple(int(v) for v in rng.integers(70, 200, 3))
            x0, x1 = ms * a, ms * (a + bw)
            draw.polygon([hz.pt(x0, base), hz.pt(x1, base), hz.pt(x1, base + bh), hz.pt(x0, base + bh)], fill=col)
            win = shade(col, 0.55)
            rows, cols = max(1, int(bh / (hz.focal * 3.2 / dist))), max(1, int(bw / (hz.focal * 2.5 / dist)))
            for i in range(rows):
                for j in range(cols):
                    u0 = a + bw * (j + 0.25) / cols
                    u1 = a + bw * (j + 0.75) / cols
                    v0 = base + bh * (i + 0.3) / rows
                    v1 = base + bh * (i + 0.75) / rows
                    draw.polygon([hz.pt(ms * u0, v0), hz.pt(ms * u1, v0), hz.pt(ms * u1, v1), hz.pt(ms * u0, v1)],
                                 fill=win)
            a += bw
        walk = hz.below(dist - 4.0)
        draw.polygon(hz.band(base, walk, span), fill=(170, 168, 162))
        draw.polygon(hz.band(walk, walk - max(2.0, 0.012 * h), span), fill=(120, 118, 115))
        road = tuple(int(v) for v in rng.integers(75, 105, 1).repeat(3))
        draw.polygon(hz.band(walk - max(2.0, 0.012 * h), walk - 4 * h, span), fill=road)
        for k in range(int(rng.integers(1, 4))):
            a = ms * float(rng.uniform(-1.2, 1.2)) * w
            tb = base + hz.focal * 0.5 / dist
            th = hz.focal * float(rng.uniform(4, 7)) / dist
            draw.polygon([hz.pt(a - 3, base), hz.pt(a + 3, base), hz.pt(a + 3, base + th), hz.pt(a - 3, base + th)],
                         fill=(80, 60, 40))
            c = hz.pt(a, tb + th)
            r = hz.focal * float(rng.uniform(1.5, 3.0)) / dist
            draw.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=(50 + 10 * k, 110, 50))
        return sky_low
    # lot
    dist = float(rng.uniform(45.0, 70.0))
    base = hz.below(dist)
    green = (int(rng.integers(40, 70)), int(rng.integers(90, 120)), int(rng.integers(40, 70)))
    a = -1.5 * w
    while a < 1.5 * w:
        r = hz.focal * float(rng.uniform(2.5, 5.0)) / dist
        c = hz.pt(ms * a, base + r * 0.8)
        draw.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=shade(green, float(rng.uniform(0.8, 1.1))))
        a += r * 1.3
    draw.polygon(hz.band(base, base - 4 * h, span), fill=(92, 92, 95))
    tar = int(rng.integers(70, 100))
    for i in range(5):
        b0 = base + (hz.below(4.0) - base) * i / 5
        b1 = base + (hz.below(4.0) - base) * (i + 1) / 5
        draw.polygon(hz.band(b0, b1 if i < 4 else b1 - 4 * h, span), fill=(tar - 3 * i, tar - 3 * i, tar - 2 * i))
    for k in range(-3, 4):
        a = ms * (k * 0.4 * w + float(rng.uniform(-30, 30)))
        ph = hz.focal * 8.0 / dist
        draw.line([hz.pt(a, base), hz.pt(a, base + ph)], fill=(150, 150, 150), width=max(1, w // 500))
    line = (225, 225, 215) if rng.random() < 0.7 else (230, 200, 40)
    for y in (1.45, 4.25, 7.05):
        for sgn in (1, -1):
            _ground_line(draw, cam, np.array([-2.9, ms * sgn * y, 0.0]), np.array([2.9, ms * sgn * y, 0.0]), 0.1,
                         line)
    _ground_line(draw, cam, np.array([-2.9, -8.0, 0.0]), np.array([-2.9, 8.0, 0.0]), 0.1, line, pieces=16)
    return sky_low
