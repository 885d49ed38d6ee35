"""Drawing helpers shared by the renderers: fonts, gradients, shapes and a transformed 2D canvas.

Compositions are written in a resolution-independent frame: ``u`` across and ``v`` down, the
landscape frame spanning about ``u in [-1, 1]``, ``v in [-0.75, 0.75]``. A :class:`Canvas` maps that
frame to pixels through a zoom, an offset and a small rotation (the camera jitter of a handheld
photo), so the same composition gives many different photos.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

RGB = tuple[int, int, int]
Point = tuple[float, float]


@lru_cache(maxsize=256)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's embedded font at ``size`` pixels (no system fonts: same glyphs on every machine)."""
    return ImageFont.load_default(size=max(6, int(size)))


def shade(color: Sequence[float], factor: float) -> RGB:
    """``color`` scaled by ``factor`` (lighting), clipped to 0..255."""
    return (
        int(min(255, max(0, color[0] * factor))),
        int(min(255, max(0, color[1] * factor))),
        int(min(255, max(0, color[2] * factor))),
    )


def mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    """Linear blend of two colours: ``t = 0`` gives ``a``, ``t = 1`` gives ``b``."""
    return (
        int(a[0] + (b[0] - a[0]) * t),
        int(a[1] + (b[1] - a[1]) * t),
        int(a[2] + (b[2] - a[2]) * t),
    )


def vertical_gradient(size: tuple[int, int], stops: Sequence[RGB]) -> Image.Image:
    """An RGB image whose colour runs through ``stops`` from top to bottom.

    One column is interpolated, then stretched sideways (a nearest-neighbour stretch: cheap at any size).
    """
    w, h = size
    pos = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, h)
    col = np.stack([np.interp(t, pos, [c[k] for c in stops]) for k in range(3)], axis=1)
    column = Image.fromarray(np.round(col).astype(np.uint8).reshape(h, 1, 3), "RGB")
    return column.resize((w, h), Image.Resampling.NEAREST)


def defocus(image: Image.Image, radius: float) -> Image.Image:
    """A soft, lens-like blur of ``radius`` pixels (shrinks large images first: cheap at any size)."""
    if radius < 0.3:
        return image
    if radius < 2.5:
        return image.filter(ImageFilter.GaussianBlur(radius))
    k = max(2, int(radius / 1.5))
    small = image.reduce(k).filter(ImageFilter.GaussianBlur(radius / k))
    return small.resize(image.size, Image.Resampling.BILINEAR)


def ellipse_points(
    cx: float, cy: float, rx: float, ry: float, n: int = 32, a0: float = 0.0, a1: float = 2 * math.pi, rot: float = 0.0
) -> list[Point]:
    """Points on an ellipse (or an arc of it from angle ``a0`` to ``a1``), optionally rotated."""
    ts = np.linspace(a0, a1, n, endpoint=not math.isclose(a1 - a0, 2 * math.pi))
    xs, ys = rx * np.cos(ts), ry * np.sin(ts)
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        xs, ys = xs * c - ys * s, xs * s + ys * c
    return list(zip((xs + cx).tolist(), (ys + cy).tolist()))


def ring_sector(
    cx: float, cy: float, r_out: float, r_in: float, a0: float, a1: float, n: int = 24, squash: float = 1.0
) -> list[Point]:
    """A thick arc (annulus sector) as one polygon; ``squash`` scales it vertically."""
    outer = ellipse_points(cx, cy, r_out, r_out * squash, n, a0, a1)
    inner = ellipse_points(cx, cy, r_in, r_in * squash, n, a0, a1)
    return outer + inner[::-1]


def perspective_coeffs(dst: Sequence[Point], src: Sequence[Point]) -> tuple[float, ...]:
    """The 8 coefficients Pillow's PERSPECTIVE transform needs to map ``dst`` pixels back onto ``src``.

    Args:
        dst: Four output-image corners.
        src: The matching four corners in the source (texture) image.

    Raises:
        ValueError: The corners are degenerate (three on a line).
    """
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    try:
        sol = np.linalg.solve(np.asarray(rows, dtype=float), np.asarray(rhs, dtype=float))
    except np.linalg.LinAlgError as e:
        raise ValueError(f"degenerate quadrilateral for a perspective warp: {list(dst)}") from e
    return tuple(float(c) for c in sol)


def warp_onto(image: Image.Image, texture: Image.Image, quad: Sequence[Point]) -> None:
    """Paste ``texture`` into ``image`` so its corners land on ``quad`` (TL, TR, BR, BL), in place."""
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    x1, y1 = min(image.width, math.ceil(max(xs))), min(image.height, math.ceil(max(ys)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return
    tw, th = texture.size
    local = [(x - x0, y - y0) for x, y in quad]
    try:
        coeffs = perspective_coeffs(local, [(0, 0), (tw, 0), (tw, th), (0, th)])
    except ValueError:
        return
    patch = texture.transform((x1 - x0, y1 - y0), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon(local, fill=255)
    image.paste(patch, (x0, y0), mask)


class Canvas:
    """A 2D drawing surface in composition coordinates (see the module docstring).

    Args:
        image: The RGB image to draw on (in place).
        zoom: Scale; 1.0 makes ``u in [-1, 1]`` span the image's long side.
        offset: Where the frame's origin lands, as a fraction of the image size (0, 0 = centre).
        rotation: Camera roll in radians.
    """

    def __init__(
        self, image: Image.Image, zoom: float = 1.0, offset: Point = (0.0, 0.0), rotation: float = 0.0
    ) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        w, h = image.size
        self.scale = max(w, h) / 2.0 * zoom
        self.cx = w / 2.0 + offset[0] * w
        self.cy = h / 2.0 + offset[1] * h
        self._cos, self._sin = math.cos(rotation), math.sin(rotation)

    def pt(self, u: float, v: float) -> Point:
        """Pixel position of composition point ``(u, v)``."""
        x, y = u * self.scale, v * self.scale
        return (self.cx + x * self._cos - y * self._sin, self.cy + x * self._sin + y * self._cos)

    def px(self, length: float) -> float:
        """A composition length in pixels."""
        return length * self.scale

    def fill(self, color: RGB) -> None:
        self.draw.rectangle((0, 0, self.image.width, self.image.height), fill=color)

    def poly(self, pts: Sequence[Point], fill: RGB, outline: RGB | None = None, width: float = 0.0) -> None:
        xy = [self.pt(u, v) for u, v in pts]
        self.draw.polygon(xy, fill=fill)
        if outline is not None and width > 0:
            self.draw.line([*xy, xy[0]], fill=outline, width=max(1, round(self.px(width))))

    def rect(self, u0: float, v0: float, u1: float, v1: float, fill: RGB, outline: RGB | None = None,
             width: float = 0.0) -> None:
        self.poly([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], fill, outline, width)

    def ellipse(self, cu: float, cv: float, ru: float, rv: float, fill: RGB, rot: float = 0.0, n: int = 32,
                outline: RGB | None = None, width: float = 0.0) -> None:
        self.poly(ellipse_points(cu, cv, ru, rv, n, rot=rot), fill, outline, width)

    def ring(self, cu: float, cv: float, r_out: float, r_in: float, fill: RGB, squash: float = 1.0,
             a0: float = 0.0, a1: float = 2 * math.pi, n: int = 24) -> None:
        """A thick ring (drawn as sectors, so what is inside it stays visible)."""
        span = a1 - a0
        parts = 2 if span > math.pi else 1
        for k in range(parts):
            b0 = a0 + span * k / parts
            b1 = a0 + span * (k + 1) / parts
            self.poly(ring_sector(cu, cv, r_out, r_in, b0, b1, n, squash), fill)

    def line(self, pts: Sequence[Point], fill: RGB, width: float) -> None:
        self.draw.line([self.pt(u, v) for u, v in pts], fill=fill, width=max(1, round(self.px(width))))

    def text(self, u: float, v: float, text: str, size: float, fill: RGB, anchor: str = "mm") -> None:
        """Text of height ``size`` (composition units) centred on ``(u, v)``; not rotated with the frame."""
        self.draw.text(self.pt(u, v), text, fill=fill, font=font(round(self.px(size))), anchor=anchor)
