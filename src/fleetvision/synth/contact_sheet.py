"""The contact sheet: one photo per shot class, the mirror pairs, banner kinds and plate variants.

A human check that every class is recognisable and driver/passenger views are mirrors (each pair is
shown with the driver view flipped next to it). Plate tiles outline the labelled plate box in green.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from fleetvision.synth.canvas import font
from fleetvision.synth.photo_spec import PhotoSpec, mirrored_spec, sample_spec
from fleetvision.synth.render import RenderedPhoto, render_photo
from fleetvision.synth.rng import derive_rng
from fleetvision.synth.training_set import MarketLike
from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

TILE = (256, 192)
CAPTION = 22
COLUMNS = 9


def _spec(taxonomy: Taxonomy, market: MarketLike, seed: int, shot: str, key: str, clean: bool = True,
          **kw: object) -> PhotoSpec:
    rng = derive_rng(seed, "contact-sheet", key)
    spec = sample_spec(rng, taxonomy, shot, driver_side=market.driver_side,
                       plate_style=kw.pop("plate_style", market.plate_style),  # type: ignore[arg-type]
                       size=TILE, **kw)  # type: ignore[arg-type]
    if clean:
        spec = replace(spec, gain=1.0, contrast=1.0, tint=(0, 0, 0), noise=0, blur=0.0, saturation=1.0,
                       white_balance=(1.0, 1.0, 1.0), vignette=0.0, motion_blur=0.0, crop=1.0, occluder=None,
                       watermark=None)
    return spec


def _tile(photo: RenderedPhoto | Image.Image, caption: str, box: bool = False) -> Image.Image:
    image = photo.image.copy() if isinstance(photo, RenderedPhoto) else photo.copy()
    if box and isinstance(photo, RenderedPhoto) and photo.plate_box:
        w, h = image.size
        x0, y0, x1, y1 = photo.plate_box
        ImageDraw.Draw(image).rectangle((x0 * w - 2, y0 * h - 2, x1 * w + 1, y1 * h + 1), outline=(0, 255, 0),
                                        width=2)
    tile = Image.new("RGB", (TILE[0], TILE[1] + CAPTION), (250, 250, 250))
    tile.paste(image, (0, 0))
    ImageDraw.Draw(tile).text((TILE[0] / 2, TILE[1] + CAPTION / 2), caption, fill=(20, 20, 20), font=font(14),
                              anchor="mm")
    return tile


def build_contact_sheet(taxonomy: Taxonomy, market: MarketLike, seed: int = 7) -> Image.Image:
    """Render the contact sheet.

    Args:
        taxonomy: The shot classes.
        market: ``driver_side`` and ``plate_style``.
        seed: Picks the cars and scenes.

    Returns:
        An RGB image (9 tiles across).
    """
    sections: list[tuple[str, list[Image.Image]]] = []
    classes = []
    for name in taxonomy.names:
        spec = _spec(taxonomy, market, seed, name, name, banner=False, plate_modes={"normal": 1.0})
        classes.append(_tile(render_photo(spec), name))
    sections.append((f"Shot classes ({taxonomy.num_classes}); market driver side: {market.driver_side}", classes))

    mirrors = []
    for driver, passenger in taxonomy.mirror_pairs:
        spec = _spec(taxonomy, market, seed, driver, f"mirror-{driver}", banner=False, plate_modes={"normal": 1.0})
        a = render_photo(spec)
        b = render_photo(mirrored_spec(spec, taxonomy))
        mirrors += [_tile(a, driver), _tile(b, passenger), _tile(ImageOps.mirror(a.image), f"{driver} flipped")]
    sections.append(("Mirror pairs: driver | passenger | driver flipped (same scene)", mirrors))

    extras = []
    for kind, shot in (("strip", "front_3q_driver"), ("corner", "side_passenger"), ("frame", "full_front"),
                       ("sticker", "rear_3q_passenger")):
        photo = render_photo(_spec(taxonomy, market, seed, shot, f"banner-{kind}", banner=kind))
        extras.append(_tile(photo, f"banner {kind} {photo.banner_coverage:.0%}"))
    photo = render_photo(_spec(taxonomy, market, seed, "instrument_cluster", "hard-odo", banner=False))
    extras.append(_tile(photo, "hard negative: odometer"))
    for name in ("dashboard", "wheel", "boot", "engine_bay"):
        spec = _spec(taxonomy, market, seed, name, f"noisy-{name}", clean=False, banner=False)
        extras.append(_tile(render_photo(spec), f"{name} (noise/light)"))
    sections.append(("Banners (coverage), hard negatives, photographic variation", extras))

    varied = []
    shots = ("front_3q_driver", "side_passenger", "full_rear", "rear_3q_driver", "full_front", "front_3q_passenger",
             "dashboard", "boot", "keys", "engine_bay", "door_trim", "front_seats", "side_driver", "full_rear",
             "instrument_cluster", "rear_3q_passenger", "front_3q_driver", "wheel")
    for i, shot in enumerate(shots):
        spec = _spec(taxonomy, market, seed, shot, f"varied-{i}", clean=False, banner=False)
        photo = render_photo(spec)
        what = [k for k, on in (("crop", spec.crop > 1), ("shake", spec.motion_blur > 0),
                                ("mark", spec.watermark), (spec.occluder or "", spec.occluder),
                                (photo.hard_negative or "", photo.hard_negative)) if on]
        varied.append(_tile(photo, f"{shot[:14]} {' '.join(what)}", box=True))
    sections.append(("Photographic randomisation as trained on (crop, occluder, watermark = banner 0, shake, "
                     "light, hard negatives)", varied))

    plates = []
    for mode, shot in (("normal", "full_rear"), ("small", "front_3q_driver"), ("steep", "rear_3q_passenger"),
                       ("steep", "full_front"), ("hidden", "full_rear"), ("absent", "full_front")):
        photo = render_photo(_spec(taxonomy, market, seed, shot, f"plate-{mode}-{shot}", banner=False,
                                   plate_modes={mode: 1.0}))
        plates.append(_tile(photo, f"plate {mode}: {'box' if photo.plate_present else 'none'}", box=True))
    for style in ("AU", "DE", "US"):
        photo = render_photo(_spec(taxonomy, market, seed, "full_rear", f"plate-style-{style}", banner=False,
                                   plate_modes={"normal": 1.0}, plate_style=style))
        plates.append(_tile(photo, f"plate style {style}", box=True))
    sections.append(("Plates: labelled box in green (variants and market styles)", plates))

    header = 30
    tw, th = TILE[0], TILE[1] + CAPTION
    height = sum(header + th * ((len(tiles) + COLUMNS - 1) // COLUMNS) for _, tiles in sections)
    sheet = Image.new("RGB", (tw * COLUMNS, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for title, tiles in sections:
        draw.text((8, y + header / 2), title, fill=(0, 0, 0), font=font(20), anchor="lm")
        y += header
        for i, t in enumerate(tiles):
            sheet.paste(t, ((i % COLUMNS) * tw, y + (i // COLUMNS) * th))
        y += th * ((len(tiles) + COLUMNS - 1) // COLUMNS)
    return sheet


def save_contact_sheet(path: Path, taxonomy: Taxonomy, market: MarketLike, seed: int = 7) -> Path:
    """Render the contact sheet and save it as PNG at ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    build_contact_sheet(taxonomy, market, seed).save(path, "PNG", optimize=True)
    logger.info("contact sheet written to %s", path)
    return path
