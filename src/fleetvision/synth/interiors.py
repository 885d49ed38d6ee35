"""Interior and detail shots: 2D compositions, one per class, each with its own random variation.

Each composer draws a full frame on a :class:`~fleetvision.synth.canvas.Canvas` (``u`` across,
``v`` down, the landscape frame about ``[-1, 1] x [-0.75, 0.75]``) and returns the hard negative it
drew, if any (``odometer`` for an odometer readout, a plate look-alike that is not a plate).
Compositions that show the driver's seat put the steering wheel on the market's driver side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleetvision.synth.canvas import RGB, Canvas, ellipse_points, mix, shade


@dataclass(frozen=True)
class DetailContext:
    """What a composition may need to know about the car."""

    paint: RGB
    trim: RGB
    driver_side: str  # left | right
    make: str = "Toyota"
    model: str = "Corolla"
    odometer_km: int = 84213


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> RGB:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _dsign(ctx: DetailContext) -> float:
    """+1 when the driver sits on the right (the wheel appears on the right, looking forward)."""
    return 1.0 if ctx.driver_side == "right" else -1.0


def _wheel(cv: Canvas, cu: float, cvv: float, r: float, trim: RGB, squash: float = 1.0) -> None:
    rim = shade(trim, 0.7)
    cv.ring(cu, cvv, r, r * 0.84, rim, squash=squash)
    cv.ring(cu, cvv, r * 0.97, r * 0.92, shade(trim, 1.3), squash=squash, a0=math.pi * 1.1, a1=math.pi * 1.6, n=8)
    for ang in (math.pi, 0.0, math.pi / 2):
        ex, ey = math.cos(ang) * r * 0.86, math.sin(ang) * r * 0.86 * squash
        nx, ny = -math.sin(ang) * r * 0.1, math.cos(ang) * r * 0.1 * squash
        cv.poly([(cu + nx, cvv + ny), (cu + ex + nx, cvv + ey + ny), (cu + ex - nx, cvv + ey - ny),
                 (cu - nx, cvv - ny)], shade(trim, 0.85))
    cv.ellipse(cu, cvv, r * 0.3, r * 0.24 * squash, shade(trim, 0.8))
    cv.ellipse(cu, cvv, r * 0.09, r * 0.06 * squash, (185, 188, 192))


_TAG_STYLES: tuple[tuple[RGB, RGB], ...] = (((250, 250, 246), (20, 20, 24)), ((250, 214, 40), (15, 15, 15)),
                                            ((245, 245, 250), (25, 35, 110)), ((255, 255, 255), (170, 25, 30)))
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def number_tag(cv: Canvas, rng: np.random.Generator, cu: float, cvv: float, width: float, kind: str) -> str:
    """A plate-like rectangle with characters that is not a plate: a hard negative for the plate model.

    Args:
        cv: The canvas.
        rng: Drives the text and colours.
        cu, cvv: Centre (composition units).
        width: Width (composition units); the height follows the kind's aspect.
        kind: ``price`` (a dealer's price board), ``stock`` (a stock-number sticker or key tag),
            ``vin`` (a compliance plate), ``service`` (a service sticker).

    Returns:
        The hard-negative label: ``price_text`` for prices, ``number_tag`` for the rest.
    """
    bg, ink = _TAG_STYLES[int(rng.integers(len(_TAG_STYLES)))]
    if kind == "vin":
        bg, ink = (200, 202, 205), (30, 30, 34)
    height = width * (0.38 if kind != "service" else 0.8)
    cv.rect(cu - width / 2 - 0.01, cvv - height / 2 - 0.01, cu + width / 2 + 0.01, cvv + height / 2 + 0.01,
            shade(ink, 1.0))
    cv.rect(cu - width / 2, cvv - height / 2, cu + width / 2, cvv + height / 2, bg)
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, 6))
    letters = "".join(_LETTERS[int(i)] for i in rng.integers(0, len(_LETTERS), 3))
    if kind == "price":
        price = int(rng.integers(8, 90)) * 1000 - int(rng.choice([10, 10, 500, 0]))
        cv.text(cu, cvv - height * 0.22, ("DRIVE AWAY", "SPECIAL", "ONLY", "PRICE")[int(rng.integers(4))],
                height * 0.22, ink)
        cv.text(cu, cvv + height * 0.16, f"${price:,}", height * 0.42, ink)
        return "price_text"
    if kind == "service":
        cv.text(cu, cvv - height * 0.3, "NEXT SERVICE", height * 0.14, ink)
        cv.text(cu, cvv, f"{int(rng.integers(10, 300))},000 km", height * 0.2, ink)
        cv.text(cu, cvv + height * 0.28, f"{int(rng.integers(1, 29)):02d}/{int(rng.integers(1, 13)):02d}/"
                f"{int(rng.integers(24, 29))}", height * 0.16, ink)
        return "number_tag"
    text = {"stock": f"{letters[:2]} {digits[:4]}", "vin": f"VIN {letters}{digits}"}.get(kind, letters + digits[:3])
    cv.text(cu, cvv + height * 0.04, text, height * (0.55 if kind == "stock" else 0.3), ink)
    return "number_tag"


def _sky(cv: Canvas, rng: np.random.Generator, v_horizon: float) -> None:
    cv.fill(mix(_rgb(rng, 150, 220), (200, 215, 235), 0.5))
    cv.rect(-3, v_horizon, 3, 3, _rgb(rng, 70, 120))
    x = -2.0
    while x < 2.0:
        wdt = _u(rng, 0.15, 0.45)
        cv.rect(x, v_horizon - _u(rng, 0.05, 0.3), x + wdt, v_horizon, _rgb(rng, 110, 190))
        x += wdt


def dashboard(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    _sky(cv, rng, _u(rng, -0.35, -0.2))
    t = ctx.trim
    top = _u(rng, -0.2, -0.05)
    cv.poly([(u, top + 0.06 * u * u) for u in np.linspace(-2, 2, 9)] + [(2, 2), (-2, 2)], shade(t, 0.9))
    for s in (-1, 1):
        cv.poly([(s * 1.0, -1.0), (s * 1.4, -1.0), (s * 1.4, 0.2), (s * 0.9, top + 0.06)], shade(t, 0.6))
    cv.rect(-0.24, top + 0.12, 0.24, 1.2, shade(t, 1.15))
    cv.rect(-0.19, top + 0.16, 0.19, top + 0.4, (15, 20, 30))
    cv.rect(-0.16, top + 0.19, 0.16, top + 0.37, mix((40, 90, 160), (15, 20, 30), _u(rng, 0.0, 0.6)))
    for k in range(2):
        cv.rect(-0.19 + 0.2 * k, top + 0.46, -0.01 + 0.2 * k, top + 0.58, (20, 20, 22))
        for j in range(4):
            y = top + 0.48 + j * 0.025
            cv.line([(-0.18 + 0.2 * k, y), (-0.02 + 0.2 * k, y)], shade(t, 0.5), 0.008)
    for k in (-1, 0, 1):
        cv.ellipse(k * 0.11, top + 0.7, 0.045, 0.045, (25, 25, 27), outline=(160, 160, 165), width=0.01)
    ds = _dsign(ctx)
    for s in (-1, 1):
        cv.rect(s * 0.92 - 0.09, top + 0.12, s * 0.92 + 0.09, top + 0.24, (22, 22, 24))
    cv.poly([(-ds * 0.35, top + 0.3), (-ds * 0.9, top + 0.3), (-ds * 0.9, top + 0.32), (-ds * 0.35, top + 0.32)],
            shade(t, 0.7))
    wu = ds * _u(rng, 0.5, 0.62)
    cv.ellipse(wu, top + 0.12, 0.28, 0.1, shade(t, 0.5))
    _wheel(cv, wu, top + 0.5, 0.36, t, squash=0.9)
    r = rng.random()
    if r < 0.35:  # the dealer's price board on the dash
        return number_tag(cv, rng, -ds * _u(rng, 0.35, 0.7), top - 0.02, _u(rng, 0.35, 0.55), "price")
    if r < 0.55:  # a service or registration sticker on the windscreen
        return number_tag(cv, rng, -ds * _u(rng, 0.6, 0.9), top - _u(rng, 0.2, 0.35), _u(rng, 0.12, 0.2), "service")
    return None


def steering_wheel(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    t = ctx.trim
    cv.fill(shade(t, 0.55))
    cv.rect(-2, 0.5, 2, 2, shade(t, 0.8))
    for s in (-1, 1):
        cv.ellipse(s * 0.35, -0.55, 0.22, 0.22, (12, 12, 14), outline=(130, 130, 135), width=0.01)
    r = _u(rng, 0.62, 0.75)
    cu, cvv = _u(rng, -0.08, 0.08), _u(rng, 0.0, 0.15)
    _wheel(cv, cu, cvv, r, mix(t, (30, 30, 32), 0.6))
    for s in (-1, 1):
        for k in range(2):
            cv.ellipse(cu + s * r * 0.55, cvv - 0.03 + k * 0.07, 0.025, 0.025, (60, 60, 64))
    cv.ellipse(cu, cvv, r * 0.1, r * 0.06, (200, 200, 205))
    return None


def instrument_cluster(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill((14, 14, 16))
    cv.poly([(u, -0.62 + 0.08 * u * u) for u in np.linspace(-1.6, 1.6, 9)] + [(1.6, -2), (-1.6, -2)],
            shade(ctx.trim, 0.6))
    glow = ((240, 240, 240), (255, 150, 40), (120, 200, 255))[int(rng.integers(3))]
    for s in (-1, 1):
        cu, r = s * 0.55, 0.4
        cv.ellipse(cu, 0.05, r, r, (8, 8, 10), outline=(150, 150, 155), width=0.015)
        for k in range(11):
            a = math.radians(135 + k * 27)
            cv.line([(cu + 0.8 * r * math.cos(a), 0.05 + 0.8 * r * math.sin(a)),
                     (cu + 0.95 * r * math.cos(a), 0.05 + 0.95 * r * math.sin(a))], glow, 0.012)
        a = math.radians(135 + _u(rng, 10, 200))
        cv.line([(cu, 0.05), (cu + 0.78 * r * math.cos(a), 0.05 + 0.78 * r * math.sin(a))], (240, 60, 30), 0.016)
        cv.ellipse(cu, 0.05, 0.05, 0.05, (60, 60, 65))
    light = rng.random() < 0.45
    bg, ink = ((205, 190, 120), (20, 20, 20)) if light else ((20, 28, 40), glow)
    cv.rect(-0.17, 0.12, 0.17, 0.3, bg)
    cv.text(-0.13, 0.21, "ODO", 0.045, ink, anchor="lm")
    cv.text(0.155, 0.21, f"{ctx.odometer_km:06d}", 0.085, ink, anchor="rm")
    cv.rect(-0.1, -0.2, 0.1, 0.0, (20, 28, 40))
    cv.text(0.0, -0.1, f"{int(rng.integers(0, 120))}", 0.12, glow)
    return "odometer"


def centre_console(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    t = ctx.trim
    cv.fill(shade(t, 0.4))
    seat = mix(t, (200, 200, 200), 0.15)
    for s in (-1, 1):
        cv.poly([(s * 0.5, -1.0), (s * 1.6, -1.0), (s * 1.6, 1.0), (s * 0.62, 1.0), (s * 0.55, 0.2)], seat)
        cv.line([(s * 0.75, -1.0), (s * 0.8, 1.0)], shade(seat, 0.75), 0.01)
    cv.poly([(-0.3, -1.0), (0.3, -1.0), (0.46, 1.0), (-0.46, 1.0)], shade(t, 0.8))
    cv.ellipse(0.0, -0.15, 0.15, 0.13, (22, 22, 24))
    for k in range(8):
        a = k * math.pi / 4
        cv.line([(0.0, -0.15), (0.14 * math.cos(a), -0.15 + 0.12 * math.sin(a))], (40, 40, 44), 0.008)
    cv.rect(-0.025, -0.45, 0.025, -0.15, (50, 50, 54))
    cv.ellipse(0.0, -0.47, 0.085, 0.07, mix(t, (190, 190, 195), float(rng.uniform(0.2, 0.8))))
    cv.text(0.2, -0.15, "P\nR\nN\nD", 0.05, (210, 210, 210))
    for s in (-1, 1):
        cv.ellipse(s * 0.13, 0.32, 0.09, 0.09, (15, 15, 17), outline=(110, 110, 115), width=0.01)
    cv.rect(-0.1, 0.6, 0.1, 0.66, (30, 30, 32))
    cv.rect(-0.36, 0.82, 0.36, 1.2, shade(t, 1.1))
    return None


def infotainment_screen(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    t = ctx.trim
    cv.fill(shade(t, 0.7))
    cv.rect(-0.72, -0.45, 0.72, 0.42, (10, 10, 12))
    x0, y0, x1, y1 = -0.66, -0.39, 0.66, 0.36
    mode = int(rng.integers(3))
    if mode == 0:  # map
        cv.rect(x0, y0, x1, y1, (225, 220, 200))
        for _ in range(7):
            p = [(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))) for _ in range(2)]
            cv.line(p, (255, 255, 255) if rng.random() < 0.6 else (250, 200, 60), 0.02)
        cv.rect(x0 + 0.1, y0 + 0.1, x0 + 0.4, y0 + 0.25, (170, 210, 160))
        cv.poly([(0.0, 0.0), (0.05, 0.12), (0.0, 0.09), (-0.05, 0.12)], (30, 110, 230))
        cv.rect(x0, y0, x1, y0 + 0.1, (40, 60, 90))
    elif mode == 1:  # app grid
        cv.rect(x0, y0, x1, y1, (15, 30, 70))
        for i in range(2):
            for j in range(4):
                c = _rgb(rng, 60, 255)
                cv.rect(x0 + 0.1 + j * 0.31, y0 + 0.12 + i * 0.33, x0 + 0.3 + j * 0.31, y0 + 0.32 + i * 0.33, c)
    else:  # media
        cv.rect(x0, y0, x1, y1, (30, 30, 40))
        cv.rect(x0 + 0.08, y0 + 0.1, x0 + 0.5, y0 + 0.52, _rgb(rng, 60, 230))
        cv.rect(x0 + 0.6, y0 + 0.3, x1 - 0.1, y0 + 0.34, (90, 90, 100))
        cv.rect(x0 + 0.6, y0 + 0.3, x0 + 0.6 + _u(rng, 0.1, 0.5), y0 + 0.34, (60, 180, 240))
        for k in range(3):
            cv.ellipse(x0 + 0.7 + k * 0.18, y0 + 0.5, 0.05, 0.05, (220, 220, 230))
    for k in range(5):
        cv.rect(-0.6 + k * 0.25, 0.5, -0.45 + k * 0.25, 0.57, (25, 25, 28))
    cv.ellipse(0.0, 0.7, 0.09, 0.09, (40, 40, 44), outline=(170, 170, 175), width=0.012)
    return None


def _seat_back(cv: Canvas, cu: float, top: float, bottom: float, half: float, color: RGB) -> None:
    cv.poly([(cu - half * 0.85, top), (cu + half * 0.85, top), (cu + half, bottom), (cu - half, bottom)], color)
    for k in (-1, 1):
        cv.line([(cu + k * half * 0.35, top + 0.05), (cu + k * half * 0.4, bottom)], shade(color, 0.75), 0.012)
    cv.rect(cu - half * 0.45, top - 0.24, cu + half * 0.45, top - 0.04, shade(color, 1.05))
    for k in (-1, 1):
        cv.rect(cu + k * half * 0.2 - 0.01, top - 0.05, cu + k * half * 0.2 + 0.01, top + 0.01, (150, 150, 155))


def front_seats(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    _sky(cv, rng, -0.45)
    t = ctx.trim
    cv.rect(-2, -0.35, 2, 2, shade(t, 0.55))
    ds = _dsign(ctx)
    _wheel(cv, ds * 0.45, -0.15, 0.22, t, squash=0.6)
    seat = mix(t, (230, 230, 230), float(rng.uniform(0.0, 0.25)))
    gap = _u(rng, 0.42, 0.5)
    for s in (-1, 1):
        _seat_back(cv, s * gap, _u(rng, -0.12, -0.02), 1.0, 0.36, seat)
    cv.poly([(-0.12, 0.2), (0.12, 0.2), (0.16, 1.0), (-0.16, 1.0)], shade(t, 0.8))
    if rng.random() < 0.3:
        return number_tag(cv, rng, _u(rng, -0.8, 0.8), _u(rng, -0.62, -0.5), _u(rng, 0.25, 0.4), "price")
    return None


def rear_seats(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    t = ctx.trim
    cv.fill(shade(t, 0.5))
    cv.rect(-1.2, -0.75, 1.2, -0.35, mix((200, 210, 225), shade(t, 0.5), 0.3))
    seat = mix(t, (230, 230, 230), float(rng.uniform(0.0, 0.25)))
    cv.poly([(-0.95, -0.3), (0.95, -0.3), (1.0, 0.25), (-1.0, 0.25)], seat)
    for k in (-1, 1):
        cv.line([(k * 0.32, -0.28), (k * 0.33, 0.25)], shade(seat, 0.7), 0.012)
    for k in (-1, 0, 1):
        cv.rect(k * 0.62 - 0.13, -0.5, k * 0.62 + 0.13, -0.32, shade(seat, 1.05))
    cv.poly([(-1.05, 0.25), (1.05, 0.25), (1.15, 0.6), (-1.15, 0.6)], shade(seat, 1.12))
    for k in (-0.5, 0.1, 0.6):
        cv.rect(k - 0.03, 0.2, k + 0.03, 0.3, (20, 20, 22))
    paint = ctx.paint
    cv.poly([(-2, -2), (-0.95, -2), (-1.05, 1.2), (-2, 1.2)], paint)
    cv.poly([(2, -2), (1.0, -2), (1.08, 1.2), (2, 1.2)], shade(paint, 0.8))
    cv.rect(-2, 0.62, 2, 2, shade(t, 0.35))
    return None


def passenger_seat(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    t = ctx.trim
    cv.fill(shade(t, 0.45))
    cv.rect(-2, -2, 2, -0.5, mix((190, 205, 225), shade(t, 0.45), 0.2))
    seat = mix(t, (230, 230, 230), float(rng.uniform(0.0, 0.25)))
    lean = _u(rng, 0.12, 0.25)
    cv.poly([(0.1, 0.35), (0.4, 0.35), (0.4 + lean, -0.35), (0.15 + lean, -0.38)], seat)
    cv.rect(0.2 + lean, -0.58, 0.42 + lean, -0.38, shade(seat, 1.05))
    cv.poly([(-0.6, 0.25), (0.42, 0.25), (0.45, 0.42), (-0.62, 0.45)], shade(seat, 1.1))
    cv.line([(-0.55, 0.33), (0.38, 0.33)], shade(seat, 0.75), 0.01)
    cv.rect(-0.5, 0.45, 0.3, 0.6, (30, 30, 32))
    cv.rect(-2, 0.6, 2, 2, (40, 40, 42))
    paint = ctx.paint
    cv.poly([(-2, -2), (-0.85, -2), (-0.85, 1.2), (-2, 1.2)], paint)
    cv.poly([(2, -2), (0.9, -2), (0.95, 1.2), (2, 1.2)], shade(paint, 0.85))
    cv.poly([(-2, -2), (2, -2), (2, -0.7), (-2, -0.65)], shade(paint, 0.9))
    cv.rect(-0.85, 0.62, 0.95, 0.72, (150, 150, 155))
    return None


def door_trim(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    t = ctx.trim
    panel = mix(t, (200, 200, 200), float(rng.uniform(0.0, 0.2)))
    cv.fill(panel)
    cv.poly([(-2, -2), (2, -2), (2, -0.5), (-2, -0.35)], mix((180, 200, 225), (60, 70, 80), 0.3))
    cv.poly([(-2, -0.35), (2, -0.5), (2, -0.38), (-2, -0.22)], shade(t, 0.6))
    cv.poly([(-1.1, 0.02), (0.9, -0.02), (0.9, 0.12), (-1.1, 0.16)], shade(panel, 1.15))
    cv.ellipse(-0.55, -0.12, 0.12, 0.05, (190, 190, 195))
    cv.ellipse(-0.55, -0.12, 0.08, 0.03, (60, 60, 64))
    for k in range(4):
        cv.rect(0.2 + k * 0.13, 0.03, 0.29 + k * 0.13, 0.09, (20, 20, 22))
    cx, cy, r = _u(rng, 0.25, 0.5), 0.45, 0.2
    cv.ellipse(cx, cy, r, r, (35, 35, 38))
    for i in range(-3, 4):
        for j in range(-3, 4):
            if i * i + j * j <= 10:
                cv.ellipse(cx + i * 0.05, cy + j * 0.05, 0.012, 0.012, (15, 15, 15), n=6)
    cv.rect(-0.9, 0.42, -0.1, 0.62, shade(t, 0.5))
    cv.line([(-1.2, 0.3), (1.2, 0.26)], shade(panel, 0.8), 0.008)
    if rng.random() < 0.3:  # the tyre placard / service sticker on the door
        return number_tag(cv, rng, _u(rng, -1.0, -0.6), _u(rng, 0.5, 0.65), _u(rng, 0.2, 0.3), "service")
    return None


def boot(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill(_rgb(rng, 90, 170))
    cv.rect(-2, 0.5, 2, 2, (80, 80, 82))
    paint = ctx.paint
    cv.poly([(-1.05, -0.45), (1.05, -0.45), (1.1, 0.75), (-1.1, 0.75)], paint)
    cv.poly([(-0.95, -0.75), (0.95, -0.75), (0.85, -0.5), (-0.85, -0.5)], shade(paint, 0.75))
    cv.poly([(-0.9, -0.5), (0.9, -0.5), (0.82, -0.44), (-0.82, -0.44)], (60, 60, 62))
    inside = shade(ctx.trim, 0.45)
    cv.poly([(-0.8, -0.42), (0.8, -0.42), (0.85, 0.4), (-0.85, 0.4)], inside)
    carpet = mix(ctx.trim, (110, 110, 110), 0.5)
    cv.poly([(-0.62, -0.05), (0.62, -0.05), (0.85, 0.4), (-0.85, 0.4)], carpet)
    for s in (-1, 1):
        cv.poly([(s * 0.8, -0.42), (s * 0.62, -0.25), (s * 0.62, -0.05), (s * 0.85, 0.4)], shade(inside, 0.8))
        cv.poly([(s * 1.05, -0.4), (s * 0.88, -0.4), (s * 0.9, -0.1), (s * 1.06, -0.1)], (190, 25, 30))
    cv.rect(-0.6, -0.32, 0.6, -0.06, shade(inside, 1.2))
    if rng.random() < 0.5:
        cv.rect(-0.2, 0.05, 0.25, 0.3, _rgb(rng, 60, 200))
    cv.rect(-1.1, 0.42, 1.1, 0.55, (35, 35, 37))
    if rng.random() < 0.35:  # a stock-number sticker on the boot lid or the bumper
        return number_tag(cv, rng, _u(rng, -0.6, 0.6), _u(rng, 0.44, 0.66), _u(rng, 0.25, 0.4), "stock")
    return None


def engine_bay(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill((38, 38, 40))
    paint = ctx.paint
    cv.poly([(-2, -2), (2, -2), (2, -0.55), (-2, -0.55)], (70, 70, 72))
    for k in range(6):
        cv.line([(-1.5 + k * 0.6, -0.9), (-1.3 + k * 0.6, -0.56)], (55, 55, 58), 0.01)
    for s in (-1, 1):
        cv.poly([(s * 2, -0.6), (s * 0.95, -0.6), (s * 1.0, 1.0), (s * 2, 1.0)], paint)
    cover = (150, 152, 156) if rng.random() < 0.5 else (30, 30, 32)
    cv.rect(-0.45, -0.3, 0.35, 0.25, cover)
    for k in range(3):
        cv.line([(-0.35, -0.15 + k * 0.12), (0.25, -0.15 + k * 0.12)], shade(cover, 0.8), 0.02)
    cv.ellipse(-0.1, -0.38, 0.06, 0.06, (235, 190, 20))
    cv.rect(0.55, -0.25, 0.88, 0.15, (20, 20, 22))
    cv.ellipse(0.62, -0.28, 0.035, 0.025, (200, 30, 30))
    cv.ellipse(0.81, -0.28, 0.035, 0.025, (30, 30, 30), outline=(120, 120, 120), width=0.005)
    cv.rect(-0.88, -0.3, -0.6, 0.05, (220, 220, 210))
    cv.rect(-0.88, -0.15, -0.6, 0.05, (230, 120, 170) if rng.random() < 0.5 else (120, 220, 120))
    cv.ellipse(-0.74, 0.25, 0.06, 0.06, (40, 100, 220))
    cv.line([(-0.5, 0.35), (-0.2, 0.45), (0.3, 0.38), (0.6, 0.3)], (15, 15, 15), 0.045)
    cv.rect(-0.9, 0.5, 0.9, 0.75, (55, 55, 58))
    for k in range(6):
        cv.line([(-0.9, 0.52 + k * 0.04), (0.9, 0.52 + k * 0.04)], (25, 25, 27), 0.01)
    if rng.random() < 0.4:  # the compliance / VIN plate
        return number_tag(cv, rng, _u(rng, -0.3, 0.6), _u(rng, -0.5, -0.38), _u(rng, 0.4, 0.6), "vin")
    return None


def wheel(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill(ctx.paint)
    cv.rect(-2, 0.55, 2, 2, (85, 85, 88))
    cu, cvv, r = _u(rng, -0.1, 0.1), _u(rng, 0.0, 0.08), _u(rng, 0.58, 0.68)
    cv.ellipse(cu, cvv, r * 1.1, r * 1.1, (14, 14, 16))
    cv.rect(-2, cvv + r * 0.98, 2, 2, (85, 85, 88))
    cv.ellipse(cu, cvv, r, r, (28, 28, 30))
    cv.ring(cu, cvv, r * 0.93, r * 0.9, (45, 45, 48))
    rim = (190, 192, 196) if rng.random() < 0.7 else (45, 45, 50)
    rr = r * 0.66
    cv.ellipse(cu, cvv, rr, rr, rim)
    spokes = int(rng.choice([5, 6, 10]))
    for k in range(spokes):
        a0 = k * 2 * math.pi / spokes + 0.3 / spokes * 5
        a1 = a0 + 2 * math.pi / spokes - 1.6 / spokes * 2.2
        pts = ellipse_points(cu, cvv, rr * 0.9, rr * 0.9, 6, a0, a1) + ellipse_points(cu, cvv, rr * 0.35, rr * 0.35,
                                                                                      3, a0, a1)[::-1]
        cv.poly(pts, (70, 70, 74))
    if rng.random() < 0.6:
        cv.rect(cu + rr * 0.35, cvv - rr * 0.35, cu + rr * 0.6, cvv + rr * 0.05, (200, 30, 30))
    cv.ellipse(cu, cvv, rr * 0.28, rr * 0.28, shade(rim, 0.85))
    for k in range(5):
        a = k * 2 * math.pi / 5
        cv.ellipse(cu + rr * 0.2 * math.cos(a), cvv + rr * 0.2 * math.sin(a), 0.018, 0.018, (110, 110, 115), n=8)
    cv.ellipse(cu, cvv, rr * 0.1, rr * 0.1, (30, 30, 35))
    return None


def headlight(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill(ctx.paint)
    flip = 1.0 if rng.random() < 0.5 else -1.0
    cv.poly([(-2, 0.45), (2, 0.35), (2, 2), (-2, 2)], (28, 28, 30))
    for k in range(3):
        cv.line([(flip * 0.2, 0.55 + k * 0.08), (flip * 1.5, 0.5 + k * 0.08)], (80, 80, 84), 0.02)
    pts = [(-0.85, -0.15), (-0.2, -0.35), (0.75, -0.3), (0.85, 0.0), (0.6, 0.2), (-0.7, 0.22)]
    cv.poly([(flip * u, v) for u, v in pts], (60, 62, 66), outline=(200, 200, 205), width=0.015)
    cv.poly([(flip * u, v) for u, v in [(-0.75, -0.12), (-0.2, -0.28), (0.7, -0.24), (0.78, -0.02), (0.55, 0.14),
                                          (-0.62, 0.16)]], (150, 155, 162))
    for k, cu in enumerate((-0.35, 0.2)):
        cv.ellipse(flip * cu, -0.05, 0.16 - 0.02 * k, 0.13, (210, 215, 220))
        cv.ellipse(flip * cu, -0.05, 0.09, 0.08, (245, 248, 255))
        cv.ellipse(flip * (cu - 0.03), -0.08, 0.03, 0.025, (255, 255, 255))
    cv.poly([(flip * u, v) for u, v in [(-0.6, 0.12), (0.55, 0.08), (0.56, 0.12), (-0.6, 0.16)]], (240, 250, 255))
    cv.poly([(flip * u, v) for u, v in [(0.45, -0.22), (0.72, -0.2), (0.75, -0.08), (0.48, -0.1)]], (235, 150, 50))
    return None


def tail_light(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill(ctx.paint)
    flip = 1.0 if rng.random() < 0.5 else -1.0
    cv.line([(flip * -2, -0.4), (flip * 2, -0.5)], shade(ctx.paint, 0.5), 0.012)
    cv.rect(-2, 0.5, 2, 2, shade(ctx.paint, 0.85))
    pts = [(-0.9, -0.25), (0.7, -0.32), (0.85, 0.0), (0.7, 0.3), (-0.85, 0.25)]
    cv.poly([(flip * u, v) for u, v in pts], (110, 10, 15), outline=(40, 40, 40), width=0.012)
    cv.poly([(flip * u, v) for u, v in [(-0.8, -0.18), (0.1, -0.22), (0.1, 0.2), (-0.78, 0.18)]], (210, 25, 30))
    cv.poly([(flip * u, v) for u, v in [(0.15, -0.24), (0.62, -0.27), (0.62, -0.02), (0.15, -0.02)]],
            (235, 140, 40))
    cv.poly([(flip * u, v) for u, v in [(0.15, 0.02), (0.62, 0.02), (0.62, 0.24), (0.15, 0.22)]], (230, 230, 230))
    for k in range(5):
        cv.line([(flip * (-0.75 + k * 0.17), -0.16), (flip * (-0.75 + k * 0.17), 0.16)], (160, 15, 20), 0.015)
    return None


def badge(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    base = ctx.paint
    cv.fill(shade(base, 0.95))
    cv.poly([(-2, -2), (2, -2), (2, -0.45), (-2, -0.4)], shade(base, 1.08))
    cv.line([(-2, 0.55), (2, 0.5)], shade(base, 0.5), 0.012)
    chrome = (205, 208, 214)
    cv.ellipse(0.0, 0.0, 0.55, 0.32, chrome)
    cv.ellipse(0.0, 0.0, 0.48, 0.26, shade(base, 0.6) if rng.random() < 0.5 else (20, 30, 60))
    cv.text(0.0, 0.0, ctx.make.upper(), 0.15, chrome)
    cv.text(0.6, 0.42, ctx.model.upper(), 0.1, chrome, anchor="lm")
    return None


def side_mirror(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    sky = mix(_rgb(rng, 120, 220), (200, 210, 230), 0.5)
    ground = _rgb(rng, 60, 130)
    cv.fill(sky)
    cv.rect(-2, 0.1, 2, 2, ground)
    flip = 1.0 if rng.random() < 0.5 else -1.0
    paint = ctx.paint

    def f(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(flip * u, v) for u, v in pts]

    cv.poly(f([(-2, -2), (-0.55, -2), (-0.4, 1.2), (-2, 1.2)]), (45, 55, 65))  # side window
    cv.poly(f([(-2, 0.25), (-0.35, 0.2), (-0.3, 1.2), (-2, 1.2)]), paint)  # door
    cv.poly(f([(-0.45, 0.0), (-0.05, -0.02), (-0.02, 0.2), (-0.42, 0.24)]), (25, 25, 27))  # mounting arm
    housing = [(-0.15, -0.4), (0.75, -0.48), (0.9, -0.18), (0.85, 0.32), (-0.1, 0.3), (-0.22, 0.0)]
    cv.poly(f(housing), shade(paint, 0.9), outline=(20, 20, 22), width=0.018)
    glass = [(-0.07, -0.31), (0.7, -0.38), (0.8, -0.14), (0.76, 0.23), (-0.03, 0.21), (-0.13, 0.0)]
    cv.poly(f(glass), mix(sky, (255, 255, 255), 0.3), outline=(10, 10, 12), width=0.012)
    # what the mirror shows: the road behind, a following car, the car's own flank at the inner edge
    cv.poly(f([(-0.12, -0.02), (0.78, -0.06), (0.76, 0.23), (-0.03, 0.21)]), shade(ground, 0.8))
    cv.poly(f([(0.3, -0.02), (0.42, -0.03), (0.5, 0.21), (0.2, 0.21)]), (225, 225, 215))
    cv.poly(f([(0.45, -0.12), (0.62, -0.13), (0.63, -0.03), (0.44, -0.02)]), _rgb(rng, 30, 200))
    cv.poly(f([(-0.07, -0.31), (0.08, -0.32), (0.1, 0.21), (-0.03, 0.21)]), shade(paint, 0.75))
    cv.poly(f([(0.55, 0.26), (0.82, 0.22), (0.8, 0.3), (0.55, 0.32)]), (240, 150, 40))  # indicator
    return None


def keys(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    wood = rng.random() < 0.6
    table = _rgb(rng, 120, 170) if not wood else (int(rng.integers(120, 170)), int(rng.integers(80, 110)), 50)
    cv.fill(table)
    if wood:
        for k in range(12):
            v = -0.9 + k * 0.16 + _u(rng, -0.03, 0.03)
            cv.line([(-2, v), (2, v + _u(rng, -0.05, 0.05))], shade(table, 0.85), 0.01)
    n = 1 + int(rng.random() < 0.4)
    for i in range(n):
        cu, cvv = _u(rng, -0.3, 0.1) + i * 0.5, _u(rng, -0.15, 0.15)
        a = _u(rng, -0.6, 0.6)
        c, s = math.cos(a), math.sin(a)

        def rot(pts: list[tuple[float, float]], cu: float = cu, cvv: float = cvv, c: float = c,
                s: float = s) -> list[tuple[float, float]]:
            return [(cu + x * c - y * s, cvv + x * s + y * c) for x, y in pts]

        cv.poly(rot(ellipse_points(0, 0, 0.22, 0.13, 20)), (20, 20, 22))
        for k in range(3):
            cv.poly(rot(ellipse_points(-0.1 + k * 0.1, 0.0, 0.035, 0.035, 10)), (70, 70, 75))
        cv.poly(rot([(0.2, -0.035), (0.62, -0.035), (0.66, 0.0), (0.62, 0.035), (0.2, 0.035)]), (195, 195, 200))
        cv.poly(rot([(0.3, 0.035), (0.36, 0.0), (0.42, 0.035), (0.48, 0.0), (0.54, 0.035)]), table)
        cv.ring(*rot([(-0.3, 0.0)])[0], 0.09, 0.075, (180, 180, 185))
    if rng.random() < 0.5:  # the dealer's key tag with the stock number
        return number_tag(cv, rng, _u(rng, -0.7, -0.35), _u(rng, 0.3, 0.5), _u(rng, 0.3, 0.45), "stock")
    return None


def service_book(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    cv.fill(_rgb(rng, 100, 160))
    closed = rng.random() < 0.3
    brand = ((20, 40, 100), (110, 20, 30), (20, 20, 20))[int(rng.integers(3))]
    if closed:
        cv.rect(-0.45, -0.6, 0.45, 0.6, brand)
        cv.text(0.0, -0.2, "SERVICE", 0.1, (230, 230, 230))
        cv.text(0.0, -0.05, "& WARRANTY", 0.07, (230, 230, 230))
        cv.ellipse(0.0, 0.3, 0.12, 0.08, (200, 200, 205))
        return None
    paper = (245, 243, 235)
    for s in (-1, 1):
        x0, x1 = (-0.92, -0.02) if s < 0 else (0.02, 0.92)
        cv.rect(x0, -0.62, x1, 0.62, paper)
        cv.rect(x0 + 0.05, -0.56, x1 - 0.05, -0.46, brand)
        for k in range(9):
            v = -0.38 + k * 0.11
            cv.line([(x0 + 0.06, v), (x1 - 0.06, v)], (170, 170, 175), 0.006)
        for _ in range(int(rng.integers(1, 3))):
            ink = (40, 60, 170) if rng.random() < 0.6 else (170, 40, 50)
            cu, cvv = _u(rng, x0 + 0.2, x1 - 0.2), _u(rng, -0.2, 0.4)
            cv.ring(cu, cvv, 0.14, 0.12, ink)
            cv.ring(cu, cvv, 0.08, 0.07, ink)
        pts = [(x0 + 0.1 + k * 0.05, 0.5 + 0.03 * math.sin(k * 1.7)) for k in range(8)]
        cv.line(pts, (30, 30, 80), 0.008)
    cv.rect(-0.02, -0.62, 0.02, 0.62, (200, 198, 190))
    return None


def tyre_tread(cv: Canvas, rng: np.random.Generator, ctx: DetailContext) -> str | None:
    rubber = (int(rng.integers(55, 80)),) * 3
    cv.fill(shade(rubber, 0.8))
    for k in range(5):  # the tread's curvature: lighter where it faces the light
        cv.rect(-1.2, -2 + k * 0.4 + 0.8, 1.2, -2 + k * 0.4 + 1.2, shade(rubber, 0.85 + 0.08 * min(k, 4 - k)))
    groove = (8, 8, 9)
    for k in (-1, 1):
        cv.rect(k * 0.35 - 0.05, -2, k * 0.35 + 0.05, 2, groove)
    pitch = _u(rng, 0.18, 0.26)
    style = int(rng.integers(2))
    for i in range(-8, 9):
        v = i * pitch
        if style == 0:
            for s in (-1, 1):
                cv.poly([(s * 0.4, v), (s * 1.3, v + 0.25), (s * 1.3, v + 0.31), (s * 0.4, v + 0.06)], groove)
        else:
            cv.poly([(-1.3, v), (1.3, v + 0.1), (1.3, v + 0.15), (-1.3, v + 0.05)], groove)
        cv.line([(-0.3, v + pitch / 2), (0.3, v + pitch / 2 + 0.02)], shade(rubber, 0.5), 0.008)
    for s in (-1, 1):
        cv.rect(s * 1.15, -2, s * 2.0, 2, shade(rubber, 0.55))
        cv.line([(s * 1.25, -2), (s * 1.25, 2)], shade(rubber, 1.3), 0.01)
    return None


Composer = Callable[[Canvas, np.random.Generator, DetailContext], "str | None"]

COMPOSERS: dict[str, Composer] = {
    "dashboard": dashboard,
    "steering_wheel": steering_wheel,
    "instrument_cluster": instrument_cluster,
    "centre_console": centre_console,
    "infotainment_screen": infotainment_screen,
    "front_seats": front_seats,
    "rear_seats": rear_seats,
    "passenger_seat": passenger_seat,
    "door_trim": door_trim,
    "boot": boot,
    "engine_bay": engine_bay,
    "wheel": wheel,
    "headlight": headlight,
    "tail_light": tail_light,
    "badge": badge,
    "side_mirror": side_mirror,
    "keys": keys,
    "service_book": service_book,
    "tyre_tread": tyre_tread,
}
