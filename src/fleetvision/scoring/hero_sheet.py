"""A PNG contact sheet of a run's hero picks (logged to the run's MLflow record)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fleetvision.photo_uris import PhotoRoots
from fleetvision.scoring import work as W
from fleetvision.tables import HERO_IMAGES, LISTING_IMAGES, qualified


def hero_contact_sheet(
    spark: SparkSession,
    db: str,
    affected: DataFrame,
    input_version: int,
    max_pixels: int,
    limit: int,
    thumb: int = 160,
    remote: Mapping[str, Mapping[str, Any]] | None = None,
    roots: PhotoRoots | None = None,
    max_declared_pixels: int | None = None,
    max_bytes: int | None = None,
) -> bytes | None:
    """A PNG grid of the hero picks of up to ``limit`` recomputed listings, captioned; None if none.

    Photo uris are read only inside ``roots`` (a :class:`fleetvision.photo_uris.PhotoRoots`; None: none),
    and only up to ``max_bytes`` (``scoring.max_image_bytes``), as the scoring job reads them.
    """
    from PIL import Image, ImageDraw

    from fleetvision import decode, photo_uris

    if limit < 1:
        return None
    heroes = (
        spark.table(qualified(db, HERO_IMAGES))
        .join(affected, "listing_id", "left_semi")
        .filter(F.col("hero_image_id").isNotNull())
        .orderBy("listing_id")
        .limit(limit)
        .select("listing_id", F.col("hero_image_id").alias("image_id"), "hero_reason")
    )
    images = W.read_version(spark, db, LISTING_IMAGES.name, input_version).select("image_id", "uri", "content")
    rows = heroes.join(images, "image_id").orderBy("listing_id").collect()
    if not rows:
        return None
    cols = min(4, len(rows))
    caption = 28
    sheet = Image.new("RGB", (cols * thumb, math.ceil(len(rows) / cols) * (thumb + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(rows):
        data = photo_uris.photo_bytes(r["content"], r["uri"], max_bytes=max_bytes, remote=remote, roots=roots)
        jpeg = decode.make_thumbnail(data, thumb, max_pixels, max_declared_pixels=max_declared_pixels)
        x, y = (i % cols) * thumb, (i // cols) * (thumb + caption)
        if jpeg is not None:
            with Image.open(io.BytesIO(jpeg)) as im:
                sheet.paste(im.convert("RGB"), (x + (thumb - im.width) // 2, y + (thumb - im.height) // 2))
        draw.text((x + 2, y + thumb + 1), str(r["listing_id"])[:26], fill="black")
        draw.text((x + 2, y + thumb + 13), str(r["hero_reason"] or "")[:26], fill="grey")
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()
