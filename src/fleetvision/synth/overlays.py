"""What lies on top of the scene: licence plates (as textures) and dealer banners (with their coverage).

Plates are drawn as small textures in the market's style and warped onto the plate's projected
quadrilateral by the car renderer. Banners are drawn last, straight onto the photo, into the image
and into a mask at once, so their coverage (the share of pixels they hide) is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from fleetvision.synth.canvas import RGB, ellipse_points, font, shade

PLATE_STYLES = ("AU", "DE", "US")
# physical plate sizes in metres (width, height) per style
PLATE_SIZE_M: dict[str, tuple[float, float]] = {"AU": (0.372, 0.134), "DE": (0.52, 0.11), "US": (0.305, 0.152)}
BANNER_KINDS = ("strip", "corner", "frame", "sticker")

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: plates avoid them
_DIGITS = "0123456789"
_DE_CITIES = ("B", "M", "HH", "K", "F", "S", "DO", "HB", "KA", "MZ", "BN", "LEV")
_US_STATES = ("CALIFORNIA", "TEXAS", "NEW YORK", "FLORIDA", "OHIO", "OREGON")


def _pick(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), n))


def plate_text(rng: np.random.Generator, style: str) -> str:
    """Random plate characters in the style of a market (AU ``ABC12D``, DE ``M AB 1234``, US ``7ABC123``).

    Raises:
        ValueError: ``style`` is not one of ``PLATE_STYLES``.
    """
    if style == "AU":
        if rng.random() < 0.5:
            return _pick(rng, _LETTERS, 3) + _pick(rng, _DIGITS, 2) + _pick(rng, _LETTERS, 1)
        return _pick(rng, _DIGITS, 1) + _pick(rng, _LETTERS, 2) + _pick(rng, _DIGITS, 1) + _pick(rng, _LETTERS, 2)
    if style == "DE":
        city = _DE_CITIES[int(rng.integers(len(_DE_CITIES)))]
        return f"{city} {_pick(rng, _LETTERS, int(rng.integers(1, 3)))} {int(rng.integers(1, 9999))}"
    if style == "US":
        return _pick(rng, _DIGITS, 1) + _pick(rng, _LETTERS, 3) + _pick(rng, _DIGITS, 3)
    raise ValueError(f"plate style must be one of {PLATE_STYLES}, got {style!r}")


@dataclass(frozen=True)
class PlateLook:
    """How one plate is painted: style, characters and colours."""

    style: str
    text: str
    background: RGB
    ink: RGB
    caption: str = ""


def plate_look(rng: np.random.Generator, style: str, text: str) -> PlateLook:
    """Colours and caption for a plate of ``style`` (AU plates vary by state; DE and US are fixed)."""
    if style == "AU":
        options = [((250, 250, 248), (20, 20, 24)), ((250, 214, 40), (15, 15, 15)),
                   ((250, 250, 248), (20, 40, 120)), ((250, 250, 248), (110, 20, 40))]
        bg, ink = options[int(rng.integers(len(options)))]
        return PlateLook(style, text, bg, ink)
    if style == "DE":
        return PlateLook(style, text, (248, 248, 246), (15, 15, 15))
    caption = _US_STATES[int(rng.integers(len(_US_STATES)))]
    return PlateLook(style, text, (245, 245, 250), (25, 35, 110), caption)


def plate_texture(look: PlateLook, height_px: int) -> Image.Image:
    """The plate as a flat RGB image ``height_px`` high, with the style's aspect ratio."""
    w_m, h_m = PLATE_SIZE_M[look.style]
    h = max(8, int(height_px))
    w = max(16, round(h * w_m / h_m))
    img = Image.new("RGB", (w, h), look.background)
    d = ImageDraw.Draw(img)
    border = max(1, h // 18)
    d.rectangle((0, 0, w - 1, h - 1), outline=shade(look.ink, 1.0), width=border)
    x0 = border * 2
    if look.style == "DE":
        strip = round(w * 0.085)
        d.rectangle((border, border, strip, h - border - 1), fill=(20, 50, 160))
        d.text(((border + strip) / 2, h * 0.72), "D", fill=(240, 240, 240), font=font(round(h * 0.3)), anchor="mm")
        x0 = strip + border
    if look.caption:
        d.text((w / 2, h * 0.17), look.caption, fill=(170, 30, 40), font=font(round(h * 0.2)), anchor="mm")
        d.text(((x0 + w) / 2, h * 0.62), look.text, fill=look.ink, font=font(round(h * 0.58)), anchor="mm")
    else:
        size = round(h * (0.74 if look.style == "AU" else 0.8))
        d.text(((x0 + w) / 2, h * 0.53), look.text, fill=look.ink, font=font(size), anchor="mm")
    return img


# ------------------------------------------------------------------------------------------ banners
@dataclass(frozen=True)
class BannerResult:
    """A drawn banner: its kind, the share of the photo it hides, whether it shows a price, its mask."""

    kind: str
    coverage: float
    has_price: bool
    mask: Image.Image


def price_text(rng: np.random.Generator, currency: str = "$") -> str:
    """A price tag such as ``$24,990`` (digits that are not a plate: a hard negative)."""
    price = int(rng.integers(8, 90)) * 1000 - int(rng.choice([10, 10, 500, 0]))
    return f"{price:,} €".replace(",", ".") if currency == "€" else f"{currency}{price:,}"


class _Both:
    """Draws shapes into the photo and the coverage mask at once (text only into the photo)."""

    def __init__(self, image: Image.Image, mask: Image.Image) -> None:
        self.img = ImageDraw.Draw(image)
        self.mask = ImageDraw.Draw(mask)

    def polygon(self, xy: list[tuple[float, float]], fill: RGB) -> None:
        self.img.polygon(xy, fill=fill)
        self.mask.polygon(xy, fill=255)

    def rectangle(self, box: tuple[float, float, float, float], fill: RGB) -> None:
        self.img.rectangle(box, fill=fill)
        self.mask.rectangle(box, fill=255)

    def text(self, xy: tuple[float, float], text: str, fill: RGB, size: float, anchor: str = "mm") -> None:
        self.img.text(xy, text, fill=fill, font=font(round(size)), anchor=anchor)


def _brand_colors(rng: np.random.Generator) -> tuple[RGB, RGB]:
    palette = [((200, 20, 30), (255, 230, 0)), ((10, 50, 140), (255, 255, 255)), ((20, 20, 20), (255, 200, 0)),
               ((0, 120, 70), (255, 255, 255)), ((240, 120, 0), (20, 20, 20)), ((120, 0, 90), (255, 255, 255))]
    return palette[int(rng.integers(len(palette)))]


def draw_banner(
    image: Image.Image, kind: str, rng: np.random.Generator, dealer: str, currency: str = "$"
) -> BannerResult:
    """Draw a dealer overlay of ``kind`` onto ``image`` (in place).

    Args:
        image: The RGB photo.
        kind: ``strip`` (band with name and price), ``corner`` (corner badge), ``frame`` (border with a
            name bar) or ``sticker`` (a starburst with a slogan).
        rng: Drives position, size, colours and text.
        dealer: The dealer's name, written on strips and frames.
        currency: Currency sign for the price text.

    Returns:
        The banner's kind, coverage (0..1), whether a price is shown, and its mask ("L", 255 = covered).

    Raises:
        ValueError: ``kind`` is not one of ``BANNER_KINDS``.
    """
    if kind not in BANNER_KINDS:
        raise ValueError(f"banner kind must be one of {BANNER_KINDS}, got {kind!r}")
    w, h = image.size
    s = min(w, h)
    mask = Image.new("L", (w, h), 0)
    d = _Both(image, mask)
    base, accent = _brand_colors(rng)
    has_price = False
    if kind == "strip":
        bh = h * rng.uniform(0.09, 0.16)
        top = rng.random() < 0.25
        y0, y1 = (0.0, bh) if top else (h - bh, float(h))
        d.rectangle((0, y0, w, y1), base)
        edge = max(2.0, bh * 0.08)
        d.rectangle((0, y1 - edge, w, y1) if top else (0, y0, w, y0 + edge), accent)
        d.text((w * 0.03, (y0 + y1) / 2), dealer, accent, bh * 0.38, anchor="lm")
        d.text((w * 0.97, (y0 + y1) / 2), price_text(rng, currency), (255, 255, 255), bh * 0.55, anchor="rm")
        has_price = True
    elif kind == "corner":
        side = s * rng.uniform(0.2, 0.32)
        corner = int(rng.integers(4))
        cx, cy = (0.0 if corner in (0, 3) else float(w)), (0.0 if corner in (0, 1) else float(h))
        sx, sy = (1 if cx == 0 else -1), (1 if cy == 0 else -1)
        d.polygon([(cx, cy), (cx + sx * side, cy), (cx, cy + sy * side)], base)
        word = ("SALE", "NEW", "HOT", "$$$")[int(rng.integers(4))]
        d.text((cx + sx * side * 0.3, cy + sy * side * 0.3), word, accent, side * 0.2)
    elif kind == "frame":
        t = s * rng.uniform(0.025, 0.05)
        bottom = h * rng.uniform(0.08, 0.13)
        d.rectangle((0, 0, w, t), base)
        d.rectangle((0, 0, t, h), base)
        d.rectangle((w - t, 0, w, h), base)
        d.rectangle((0, h - bottom, w, h), base)
        d.text((w * 0.04, h - bottom / 2), dealer, accent, bottom * 0.4, anchor="lm")
        if rng.random() < 0.8:
            d.text((w * 0.96, h - bottom / 2), price_text(rng, currency), (255, 255, 255), bottom * 0.5, anchor="rm")
            has_price = True
    else:  # sticker
        r = s * rng.uniform(0.11, 0.17)
        cx = w * rng.choice([rng.uniform(0.12, 0.3), rng.uniform(0.7, 0.88)])
        cy = h * rng.uniform(0.14, 0.3)
        n = 28
        ts = np.linspace(0, 2 * math.pi, n, endpoint=False)
        radii = np.where(np.arange(n) % 2 == 0, r, r * 0.82)
        d.polygon([(cx + rr * math.cos(t), cy + rr * math.sin(t)) for t, rr in zip(ts, radii)], accent)
        d.polygon(ellipse_points(cx, cy, r * 0.74, r * 0.74, 28), base)
        slogan = ("DRIVE AWAY", "SALE", "LOW KMS", "1 OWNER", "WARRANTY")[int(rng.integers(5))]
        d.text((cx, cy - r * 0.22), slogan, (255, 255, 255), r * 0.2)
        if rng.random() < 0.7:
            d.text((cx, cy + r * 0.2), price_text(rng, currency), accent, r * 0.3)
            has_price = True
    coverage = float(np.asarray(mask, dtype=np.uint8).mean() / 255.0)
    return BannerResult(kind, coverage, has_price, mask)
