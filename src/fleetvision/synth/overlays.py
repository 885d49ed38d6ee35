"""What lies on top of the scene: licence plates (as textures), dealer banners (with their coverage),
foreground occluders and marketplace watermarks.

Plates are drawn as small textures in the market's style and warped onto the plate's projected
quadrilateral by the car renderer. Banners are drawn last, straight onto the photo, into the image
and into a mask at once, so their coverage (the share of pixels they hide) is exact. Occluders
(a passer-by, a pole, another car's flank, foliage) stand between the camera and the car; they return
their outlines so that a plate they hide is not labelled. Watermarks are the small, semi-transparent
site marks real marketplaces stamp on most photos: they are not banners.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from fleetvision.synth.canvas import RGB, defocus, ellipse_points, font, mix, shade

PLATE_STYLES = ("AU", "BR", "DE", "UK", "US")
# physical plate sizes in metres (width, height) per style: Australia, Brazil (Mercosur), Germany (the
# EU's long plate), the United Kingdom, the United States
PLATE_SIZE_M: dict[str, tuple[float, float]] = {
    "AU": (0.372, 0.134), "BR": (0.40, 0.13), "DE": (0.52, 0.11), "UK": (0.52, 0.111), "US": (0.305, 0.152),
}
BANNER_KINDS = ("strip", "corner", "frame", "sticker")

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: plates avoid them
_DIGITS = "0123456789"
_DE_CITIES = ("B", "M", "HH", "K", "F", "S", "DO", "HB", "KA", "MZ", "BN", "LEV")
_US_STATES = ("CALIFORNIA", "TEXAS", "NEW YORK", "FLORIDA", "OHIO", "OREGON")


def _pick(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), n))


def plate_text(rng: np.random.Generator, style: str) -> str:
    """Random plate characters in the style of a market.

    AU ``ABC12D``, BR ``ABC1D23`` (Mercosur), DE ``M AB 1234``, UK ``AB12 CDE``, US ``7ABC123``.

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
    if style == "BR":
        return _pick(rng, _LETTERS, 3) + _pick(rng, _DIGITS, 1) + _pick(rng, _LETTERS, 1) + _pick(rng, _DIGITS, 2)
    if style == "UK":
        return f"{_pick(rng, _LETTERS, 2)}{_pick(rng, _DIGITS, 2)} {_pick(rng, _LETTERS, 3)}"
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
    """Colours and caption for a plate of ``style`` (AU plates vary by state, UK plates are white or yellow)."""
    if style == "AU":
        options = [((250, 250, 248), (20, 20, 24)), ((250, 214, 40), (15, 15, 15)),
                   ((250, 250, 248), (20, 40, 120)), ((250, 250, 248), (110, 20, 40))]
        bg, ink = options[int(rng.integers(len(options)))]
        return PlateLook(style, text, bg, ink)
    if style == "DE":
        return PlateLook(style, text, (248, 248, 246), (15, 15, 15))
    if style == "BR":
        return PlateLook(style, text, (244, 244, 242), (20, 20, 22), "BRASIL")
    if style == "UK":
        bg = (250, 250, 248) if rng.random() < 0.5 else (250, 206, 30)  # front white, rear yellow
        return PlateLook(style, text, bg, (15, 15, 15))
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
    if look.style in ("DE", "UK"):
        strip = round(w * 0.085)
        d.rectangle((border, border, strip, h - border - 1), fill=(20, 50, 160))
        mark = "D" if look.style == "DE" else "UK"
        d.text(((border + strip) / 2, h * 0.72), mark, fill=(240, 240, 240), font=font(round(h * 0.26)), anchor="mm")
        x0 = strip + border
    if look.style == "BR":  # Mercosur: a blue band across the top with the country's name
        band = round(h * 0.24)
        d.rectangle((border, border, w - border - 1, band), fill=(20, 60, 170))
        d.text((w / 2, band / 2 + border / 2), look.caption, fill=(240, 240, 240), font=font(round(band * 0.8)),
               anchor="mm")
        d.text((w / 2, (band + h) / 2), look.text, fill=look.ink, font=font(round(h * 0.6)), anchor="mm")
    elif look.caption:
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


# ---------------------------------------------------------------------------------------- occluders
OCCLUDER_KINDS = ("person", "pole", "car", "foliage")
WATERMARKS = ("carhub", "AutoSpot", "drivemarket.com", "motormart", "wheelfinder", "CarsNow", "autobuy.example",
              "Vroomly")
_CLOTHES: tuple[RGB, ...] = ((30, 32, 40), (60, 62, 70), (120, 30, 35), (35, 55, 95), (170, 165, 150),
                             (200, 200, 205), (75, 90, 60), (20, 20, 22))
_SKIN: tuple[RGB, ...] = ((235, 200, 170), (200, 150, 115), (150, 100, 70), (95, 65, 45))


def draw_occluder(image: Image.Image, kind: str, rng: np.random.Generator, ms: float = 1.0) -> list[
        list[tuple[float, float]]]:
    """Draw a foreground occluder of ``kind`` onto ``image`` (in place), out of focus like a real one.

    Drawn on the canonical side and flipped when ``ms`` < 0, so a mirrored view gets the mirrored occluder.

    Returns:
        Its outline polygons in image pixels (what it hides).

    Raises:
        ValueError: ``kind`` is not one of ``OCCLUDER_KINDS``.
    """
    if kind not in OCCLUDER_KINDS:
        raise ValueError(f"occluder kind must be one of {OCCLUDER_KINDS}, got {kind!r}")
    w, h = image.size
    layer = Image.new("RGB", (w, h))
    mask = Image.new("L", (w, h), 0)
    d, m = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    polys: list[list[tuple[float, float]]] = []

    def fill(pts: list[tuple[float, float]], color: RGB, outline: bool = True) -> None:
        d.polygon(pts, fill=color)
        m.polygon(pts, fill=255)
        if outline:
            polys.append(pts)

    u = rng.uniform(0.0, 1.0, 6)
    blur = 0.004 + 0.012 * float(u[5])
    if kind == "person":
        ph = h * (0.75 + 0.6 * float(u[0]))  # standing close: head near the top, feet out of frame
        cx = w * (-0.04 + 0.22 * float(u[1]))
        top = h - ph * (0.95 + 0.1 * float(u[2]))
        sh = ph * 0.26  # shoulder half-width
        cloth = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
        skin = _SKIN[int(rng.integers(len(_SKIN)))]
        hr = ph * 0.075
        hy = top + hr
        fill([(cx - sh, hy + hr * 2.1), (cx + sh, hy + hr * 2.1), (cx + sh * 0.9, float(h) + 5),
              (cx - sh * 0.9, float(h) + 5)], cloth)
        fill(ellipse_points(cx, hy + hr * 1.9, sh * 1.02, hr * 0.7, 16, math.pi, 2 * math.pi), cloth)
        fill([(cx - hr * 0.45, hy + hr * 0.6), (cx + hr * 0.45, hy + hr * 0.6), (cx + hr * 0.45, hy + hr * 1.6),
              (cx - hr * 0.45, hy + hr * 1.6)], shade(skin, 0.8))
        fill(ellipse_points(cx, hy, hr * 0.85, hr, 16), skin)
        hair = (30, 24, 20) if rng.random() < 0.8 else (150, 120, 80)
        fill(ellipse_points(cx, hy - hr * 0.35, hr * 0.9, hr * 0.7, 12, math.pi, 2 * math.pi), hair, outline=False)
        d.line([(cx + sh * 0.45, hy + hr * 2.4), (cx + sh * 0.5, float(h))], fill=shade(cloth, 0.6),
               width=max(1, round(sh * 0.06)))
    elif kind == "pole":
        cx = w * (0.04 + 0.92 * float(u[0]))
        pw = w * (0.012 + 0.035 * float(u[1]))
        grey = (int(95 + 80 * u[2]),) * 3
        color = grey if rng.random() < 0.7 else (50, 80, 60)
        fill([(cx - pw / 2, -2.0), (cx + pw / 2, -2.0), (cx + pw / 2, float(h) + 2), (cx - pw / 2, float(h) + 2)],
             color)
        d.polygon([(cx - pw / 2, -2.0), (cx - pw / 6, -2.0), (cx - pw / 6, float(h) + 2), (cx - pw / 2, float(h) + 2)],
                  fill=shade(color, 1.25))  # the lit side of the cylinder
        if rng.random() < 0.4:  # a sign on it
            sy = h * (0.05 + 0.3 * float(u[3]))
            fill([(cx - pw * 3, sy), (cx + pw * 3, sy), (cx + pw * 3, sy + pw * 4), (cx - pw * 3, sy + pw * 4)],
                 ((200, 30, 30), (30, 90, 170), (230, 230, 230))[int(rng.integers(3))])
    elif kind == "car":
        paint = tuple(int(v) for v in rng.integers(20, 220, 3))
        rx, ry = w * (0.22 + 0.2 * float(u[0])), h * (0.35 + 0.3 * float(u[1]))
        cx, cy = -rx * (0.35 + 0.3 * float(u[2])), h * (0.75 + 0.3 * float(u[3]))
        fill(ellipse_points(cx, cy, rx, ry, 28), paint)  # type: ignore[arg-type]
        d.polygon(ellipse_points(cx, cy + ry * 0.35, rx * 0.98, ry * 0.55, 24), fill=shade(paint, 0.6))
        d.polygon(ellipse_points(cx, cy - ry * 0.25, rx * 0.9, ry * 0.35, 24, math.pi, 2 * math.pi),
                  fill=mix(paint, (235, 240, 245), 0.35))  # the sky in its paint
        blur = 0.015 + 0.02 * float(u[5])
    else:  # foliage: a branch hanging into the top of the frame
        green = (int(30 + 40 * u[0]), int(55 + 50 * u[1]), int(25 + 30 * u[2]))
        for _ in range(int(rng.integers(5, 11))):
            bx, by = w * float(rng.uniform(-0.1, 0.45)), h * float(rng.uniform(-0.15, 0.2))
            r = min(w, h) * float(rng.uniform(0.05, 0.14))
            fill(ellipse_points(bx, by, r, r * float(rng.uniform(0.6, 1.0)), 12), shade(green, float(rng.uniform(0.7,
                                                                                                              1.2))))
        blur = 0.01 + 0.015 * float(u[5])
    radius = blur * max(w, h)
    if radius >= 0.5:
        layer, mask = defocus(layer, radius), defocus(mask, radius)
    if ms < 0:
        layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        polys = [[(w - x, y) for x, y in p] for p in polys]
    image.paste(layer, (0, 0), mask)
    return polys


def draw_watermark(image: Image.Image, name: str, rng: np.random.Generator, ms: float = 1.0) -> None:
    """Stamp a marketplace watermark: small, semi-transparent text with a mark, in a corner or faint in the centre.

    Its position is mirrored with ``ms`` (the text itself reads the right way, as on a real photo).
    """
    w, h = image.size
    where = int(rng.choice(4, p=[0.45, 0.2, 0.15, 0.2]))  # bottom-right, bottom-left, top-left, centre
    size = h * float(rng.uniform(0.035, 0.06)) * (2.2 if where == 3 else 1.0)
    alpha = float(rng.uniform(0.12, 0.25) if where == 3 else rng.uniform(0.3, 0.7))
    color = (255, 255, 255) if rng.random() < 0.8 else (20, 20, 20)
    with_mark = rng.random() < 0.6
    f = font(round(size))
    text_w = f.getlength(name) if hasattr(f, "getlength") else size * 0.6 * len(name)
    mark = size * 1.1 if with_mark else 0.0
    total = text_w + mark + (size * 0.3 if with_mark else 0.0)
    margin = h * 0.03
    if where == 0:
        x, y = w - margin - total, h - margin - size
    elif where == 1:
        x, y = margin, h - margin - size
    elif where == 2:
        x, y = margin, margin
    else:
        x, y = (w - total) / 2, (h - size) / 2
    if ms < 0:
        x = w - x - total
    # drawn into a mask just big enough for it (cheap at any photo size), then blended at ``alpha``
    ox, oy = max(0, math.floor(x - 2)), max(0, math.floor(y - size * 0.4))
    bw, bh = min(w, math.ceil(x + total + 4)) - ox, min(h, math.ceil(y + size * 1.5)) - oy
    if bw < 1 or bh < 1:
        return
    mask = Image.new("L", (bw, bh), 0)
    md = ImageDraw.Draw(mask)
    a = round(255 * alpha)
    x, y = x - ox, y - oy
    if with_mark:
        md.ellipse((x, y - size * 0.05, x + mark, y + mark - size * 0.05), fill=a)
        md.text((x + mark / 2, y + mark / 2 - size * 0.05), name[0].upper(), fill=0, font=font(round(size * 0.8)),
                anchor="mm")
    md.text((x + mark + (size * 0.3 if with_mark else 0.0), y + size / 2), name, fill=a, font=f, anchor="lm")
    image.paste(color, (ox, oy, ox + bw, oy + bh), mask)
