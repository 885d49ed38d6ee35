"""A maker's or model's lettering, and dealers' stickers, on the path-traced cars' tails (pure numpy/PIL;
Mitsuba only in :func:`lettering_shapes` and :func:`word_shape`).

Real tails carry chrome or black letters beside the lamps: a model name, a trim, an engine size; dealers
stick their name on them. The plate head had never seen either on a car: in session 33, 11 of the 28 real
lamp close-ups it flagged had the box on such words (``docs/models.md``, *Lettering on the tails*). Each
car gets up to two spots between its tail lamps (:func:`rear_lettering_mounts`, drawn with the car's mesh);
each photo draws the words (:func:`lettering_text`) and whether each spot is lettered, from its own random
stream, so nothing else in the photo changes. A badge is a rectangle on the skin whose opacity is the glyphs
(Mitsuba's ``mask``), shaded as chrome or gloss black; a sticker is the words printed on a backing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fleetvision.synth.canvas import font

LETTERING_PROUD_M = 0.004
"""How far the lettering stands out from the skin (metres): in front of it, never inside."""
MAX_CURVE_M = 0.02
"""A spot is lettered only where the skin under it lies within this depth (metres)."""
MAX_SETBACK_M = 0.3
"""... and no further forward than this of the tail's skin at the plate (metres)."""
LETTERED_SHARE = 0.8
"""The chance that a spot is lettered in a photo."""
STICKER_SHARE = 0.2
"""The chance that a lettered spot holds a dealer's sticker (words on a backing) instead of a badge."""
_SYLLABLES = ("ca", "ro", "ve", "ni", "ta", "lo", "mi", "ra", "se", "do", "xi", "ku", "pe", "za", "lu", "go",
              "fi", "no", "ar", "on", "el", "is", "an", "sp", "tr", "qu")
_DEALERS = ("AUTO CENTER", "MOTORS", "VEICULOS", "AUTOHAUS", "CAR STORE", "SEMINOVOS", "MULTIMARCAS",
            "AUTOMOVEIS", "CARS & CO", "AUTO SHOP", "GARAGE", "AUTOS")
"""Words of the kind a dealer's sticker carries (generic: no real dealer's name)."""
_TRIMS = ("GT", "GTI", "TDI", "SE", "LX", "EX", "RS", "ST", "SPORT", "TURBO", "HYBRID", "4x4", "AWD", "CVT",
          "ELITE", "LTZ", "XEI", "FLEX", "16V", "VTEC")


@dataclass(frozen=True)
class LetteringMount:
    """A spot on the tail for one word: its centre on the skin (car frame, metres, ``LETTERING_PROUD_M``
    out towards the rear) and the most room it has (width along y, height along z)."""

    centre: tuple[float, float, float]
    room: tuple[float, float]


def rear_lettering_mounts(end_x: Any, tail_in: float, tail_z: tuple[float, float],
                          plate: tuple[float, float] | None, rng: np.random.Generator) -> tuple[LetteringMount, ...]:
    """Up to two spots on the tail, one either side of the centre line, between the badge and the tail
    lamps, level with the lamps or a little above them, clear of the plate and on the tail's face (not on
    a ute's cab behind its open tray); none without a rear plate mount.

    Args:
        end_x: The skin's ``end_x(end, y, z)`` (:func:`fleetvision.synth.pbr_details.grid_surface`): x of
            the surface at that end, or None where the ray misses it.
        tail_in: The tail lamps' inner edge, |y| (metres).
        tail_z: The tail lamps' bottom and top (metres).
        plate: The tail's skin x where the rear plate is mounted, and the plate's top edge (its tallest
            style); None without a rear plate mount.
        rng: Draws the spots (the car's own stream: the same car always has the same spots).
    """
    if plate is None:
        return ()
    tail_x, plate_top_z = plate
    mounts = []
    for sgn in (1.0, -1.0):
        inner = float(rng.uniform(0.07, 0.14))  # clear of the badge on the centre line
        room_w = min(float(rng.uniform(0.12, 0.3)), 0.92 * tail_in - inner)
        room_h = float(rng.uniform(0.025, 0.05))
        z = float(rng.uniform(tail_z[0], tail_z[1] + 0.05))
        if room_w < 0.06 or z - room_h / 2 < plate_top_z + 0.02:
            continue
        y = sgn * (inner + room_w / 2)
        # the skin under the whole spot: a flat word stands in front of its rearmost point, and a spot
        # where the tail curves more than MAX_CURVE_M under it is left bare (the word would float)
        xs = [end_x("rear", y + dy, z + dz) for dy in (-room_w / 2, 0.0, room_w / 2)
              for dz in (-room_h / 2, room_h / 2)]
        if any(x is None for x in xs) or max(xs) - min(xs) > MAX_CURVE_M or max(xs) > tail_x + MAX_SETBACK_M:
            continue
        mounts.append(LetteringMount((float(min(xs)) - LETTERING_PROUD_M, y, z), (room_w, room_h)))
    return tuple(mounts)


def lettering_text(rng: np.random.Generator) -> str:
    """A made-up model name (``Ravelo``, ``ZANIS``), a model code (``C3``, ``X20``), a trim (``GTI``) or an
    engine size (``1.6``, ``2.0 TDI``)."""
    kind = rng.random()
    if kind < 0.4:
        word = "".join(str(s) for s in rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
        return word.upper() if rng.random() < 0.4 else word.capitalize()
    if kind < 0.6:
        letter = chr(65 + int(rng.integers(26)))
        return f"{letter}{int(rng.integers(1, 100)) if rng.random() < 0.5 else int(rng.integers(1, 10))}"
    if kind < 0.8:
        return str(rng.choice(_TRIMS))
    size = f"{int(rng.integers(1, 4))}.{int(rng.integers(0, 10))}"
    return size if rng.random() < 0.5 else f"{size} {rng.choice(_TRIMS)}"


def lettering_mask(text: str, height_px: int = 48) -> np.ndarray:
    """The glyphs of ``text`` as opacity (float32 [H, W] in 0..1, H = ``height_px``), cropped to the ink."""
    face = font(int(height_px * 1.3))
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=face)
    image = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(image).text((-left, -top), text, fill=255, font=face)
    image = image.crop(image.getbbox() or (0, 0, 1, 1))
    scale = height_px / image.height
    image = image.resize((max(1, round(image.width * scale)), height_px), Image.Resampling.LANCZOS)
    return np.asarray(image, np.float32) / 255.0


def lettering_shapes(mi: Any, mounts: tuple[LetteringMount, ...], to_world: Any, rng: np.random.Generator,
                     chrome: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """Mitsuba scene entries for the words on a car's ``mounts``: each spot lettered with
    ``LETTERED_SHARE``, the word fitted into its room (height first, narrower where it is long), chrome
    (``chrome``) or, on one car in four, gloss black; one word in five (``STICKER_SHARE``) is a dealer's sticker
    instead: words on a coloured backing, a little taller than the spot, as real dealers stick on the tail."""
    black = {"type": "principled", "base_color": {"type": "rgb", "value": [0.02, 0.02, 0.02]}, "roughness": 0.1}
    material = chrome if rng.random() < 0.75 else black
    shapes = {}
    for i, mount in enumerate(mounts):
        if rng.random() >= LETTERED_SHARE:
            continue
        if rng.random() < STICKER_SHARE:  # a margin round the words, on a backing of its own colour
            mask = np.pad(lettering_mask(str(rng.choice(_DEALERS))), ((6, 6), (10, 10)))
            shapes[f"{prefix}-lettering{i}"] = word_shape(mi, mount, to_world, mask, backing=sticker_colours(rng),
                                                          grow=1.4)
        else:
            shapes[f"{prefix}-lettering{i}"] = word_shape(mi, mount, to_world, lettering_mask(lettering_text(rng)),
                                                          material=material)
    return shapes


def end_face_place(mi: Any, to_world: Any, centre: Any, end: str, size: tuple[float, float]) -> Any:
    """The ``to_world`` of a Mitsuba rectangle ``size`` (width, height; metres) centred on ``centre`` (car
    frame) and standing on the car's ``end`` face (``front`` | ``rear``), facing out of it: a plate or a
    word. The rectangle's v axis runs upwards as a camera facing that end sees it, so a bitmap on it reads
    right way up with its rows flipped (``tests/test_pbr_details.py``, ``tests/test_pbr_lettering.py``)."""
    t = mi.ScalarTransform4f
    sgn = 1.0 if end == "front" else -1.0
    return to_world @ t().translate([float(v) for v in centre]).rotate([0, 0, 1], 90 * sgn) \
        .rotate([1, 0, 0], 90).scale([size[0] / 2, size[1] / 2, 1.0])


def word_shape(mi: Any, mount: LetteringMount, to_world: Any, mask: np.ndarray, *,
               material: dict[str, Any] | None = None, backing: tuple[np.ndarray, np.ndarray] | None = None,
               grow: float = 1.0) -> dict[str, Any]:
    """One word on ``mount`` as a Mitsuba rectangle facing the car's rear, reading left to right as the
    camera behind the car sees it, as tall as the room allows (``grow`` times it) and narrower where the
    word is long. The glyphs ``mask`` (:func:`lettering_mask`) are either the opacity of ``material`` (a
    badge) or the ink on a ``backing`` (its colour and the ink's, linear RGB: a sticker)."""
    aspect = mask.shape[1] / mask.shape[0]
    h = min(mount.room[1] * grow, mount.room[0] / aspect)
    place = end_face_place(mi, to_world, mount.centre, "rear", (h * aspect, h))
    if backing is not None:
        colour, ink = backing
        rgb = colour[None, None, :] * (1 - mask[..., None]) + ink[None, None, :] * mask[..., None]
        bsdf = {"type": "principled", "roughness": 0.3,
                "base_color": {"type": "bitmap", "bitmap": mi.Bitmap(np.ascontiguousarray(rgb[::-1], np.float32))}}
    else:
        opacity = mi.Bitmap(np.ascontiguousarray(mask[::-1, :, None]))
        bsdf = {"type": "mask", "opacity": {"type": "bitmap", "bitmap": opacity, "raw": True}, "material": material}
    return {"type": "rectangle", "to_world": place, "bsdf": bsdf}


def sticker_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dealer sticker's backing and ink (linear RGB): white, black or a strong colour behind white or
    black words."""
    kind = rng.random()
    if kind < 0.35:
        backing = np.full(3, 0.85)
    elif kind < 0.6:
        backing = np.full(3, 0.02)
    else:
        backing = np.asarray(rng.dirichlet([0.5, 0.5, 0.5]) * rng.uniform(0.4, 0.9), float)
    ink = np.full(3, 0.02) if backing.mean() > 0.4 else np.full(3, 0.85)
    return backing, ink
