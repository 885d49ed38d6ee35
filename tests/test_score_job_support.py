"""Stand-ins and tiny inventories for the scoring-job tests (no tests here).

* :class:`OracleModels`: a picklable model loader whose models answer from a lookup keyed by the
  decoded pixels (so they are "right" wherever the test knows the truth), logging every call so a
  test can count what was inferred.
* :func:`write_inventory`: a few listings of small JPEGs (inline or by uri), one photo re-used across
  two listings, and one bad file of each kind, with the ground truth.

The module is pickled by value (``register_pickle_by_value``) so Spark's Python workers, which cannot
import test modules, can still unpickle the stand-ins.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pyspark import cloudpickle

from fleetvision import decode, photo_uris
from fleetvision.taxonomy import Taxonomy

cloudpickle.register_pickle_by_value(sys.modules[__name__])

BAD_KIND_CODES = {
    "empty": "empty",
    "truncated": "truncated",
    "not_image": "not_image",
    "bomb": "too_many_pixels",
    "missing_uri": "unreadable_uri",
}
TASKS = ("angle", "banner", "plate", "body")
RUN_COLUMNS = ("run_id", "scored_at", "computed_at", "created_at")


@dataclass(frozen=True)
class StandInModelSet:
    """What the scoring job needs of a resolved model set."""

    model_set_id: str = "standin-1"
    versions: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(TASKS, "1"))


@dataclass(frozen=True)
class Truth:
    angle: str
    has_banner: bool
    plate_present: bool
    body_type: str


def pixel_key(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


class OracleModels:
    """Model loader: four models that look the truth up by the decoded pixels.

    Unknown pixels get class 0 with low confidence. Each model call appends ``<task> <rows>`` to
    ``<log_dir>/calls-<pid>.log`` when ``log_dir`` is set; each load appends ``load 1`` and
    ``threads <TF_NUM_INTRAOP_THREADS>`` (0 when unset), what the worker's TensorFlow would get.
    """

    def __init__(self, truth: Mapping[str, Truth], taxonomy: Taxonomy, log_dir: str | None = None) -> None:
        self.truth = dict(truth)
        # Workers cache models by this key: a different truth is a different "model", and so is one that logs
        # its calls elsewhere (else a worker kept from an earlier test would log this test's calls there).
        self.cache_key = "oracle-" + hashlib.sha1(repr((sorted(self.truth.items()), log_dir)).encode()).hexdigest()[:12]
        self.names = taxonomy.names
        self.body_types = taxonomy.body_types
        self.log_dir = log_dir

    def __call__(self, model_set: Any) -> dict[str, Any]:
        if self.log_dir:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
            with open(Path(self.log_dir) / f"calls-{os.getpid()}.log", "a") as f:
                f.write(f"load 1\nthreads {os.environ.get('TF_NUM_INTRAOP_THREADS', '0')}\n")

        def lookup(batch: np.ndarray) -> list[Truth | None]:
            return [self.truth.get(pixel_key(img)) for img in batch]

        def log(task: str, n: int) -> None:
            if self.log_dir:
                Path(self.log_dir).mkdir(parents=True, exist_ok=True)
                with open(Path(self.log_dir) / f"calls-{os.getpid()}.log", "a") as f:
                    f.write(f"{task} {n}\n")

        def angle(batch: np.ndarray) -> dict[str, np.ndarray]:
            log("angle", len(batch))
            out = np.full((len(batch), len(self.names)), 0.02 / (len(self.names) - 1), dtype=np.float32)
            for i, t in enumerate(lookup(batch)):
                out[i, self.names.index(t.angle) if t else 0] = 0.98
            return {"angle": out}

        def banner(batch: np.ndarray) -> dict[str, np.ndarray]:
            log("banner", len(batch))
            return {"banner": np.array([[0.9 if t and t.has_banner else 0.1] for t in lookup(batch)], np.float32)}

        def plate(batch: np.ndarray) -> dict[str, np.ndarray]:
            log("plate", len(batch))
            truths = lookup(batch)
            presence = np.array([[0.9 if t and t.plate_present else 0.1] for t in truths], np.float32)
            box = np.tile(np.array([[0.4, 0.7, 0.6, 0.8]], np.float32), (len(batch), 1))
            return {"plate_presence": presence, "plate_box": box}

        def body(batch: np.ndarray) -> dict[str, np.ndarray]:
            log("body", len(batch))
            out = np.full((len(batch), len(self.body_types)), 0.04 / (len(self.body_types) - 1), np.float32)
            for i, t in enumerate(lookup(batch)):
                out[i, self.body_types.index(t.body_type) if t else 0] = 0.96
            return {"body": out}

        return {"angle": angle, "banner": banner, "plate": plate, "body": body}


def inferred_rows(log_dir: Path, what: str = "angle") -> int:
    """Photos the oracle's angle model saw (or, with ``what="load"``, model loads), over all workers."""
    total = 0
    for p in log_dir.glob("calls-*.log"):
        for line in p.read_text().splitlines():
            task, n = line.split()
            if task == what:
                total += int(n)
    return total


# ------------------------------------------------------------------------------------- inventory
def photo_bytes(seed: int, angle_index: int, banner: bool, size: tuple[int, int] = (96, 72)) -> bytes:
    """A small JPEG whose pixels are unique to ``seed`` (so the oracle can tell photos apart)."""
    rng = np.random.default_rng(seed)
    base = np.array([(angle_index * 37) % 256, (seed * 53) % 256, (angle_index * 11 + seed) % 256], np.float32)
    img = np.clip(base + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    if banner:
        img[: size[1] // 5] = (200, 20, 20)
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=85)
    return out.getvalue()


def bad_bytes(kind: str) -> bytes | None:
    if kind == "empty":
        return b""
    if kind == "truncated":
        return photo_bytes(999, 1, False)[:300]
    if kind == "not_image":
        return b"<html>this is not a photo</html>" * 4
    if kind == "bomb":
        out = io.BytesIO()
        Image.new("1", (8000, 6000)).save(out, format="PNG")
        return out.getvalue()
    if kind == "missing_uri":
        return None
    raise ValueError(kind)


@dataclass
class Inventory:
    """What :func:`write_inventory` wrote, for the test's expectations."""

    truth_by_image: dict[str, Truth]
    bad_kind_by_image: dict[str, str]
    pixel_truth: dict[str, Truth]
    listing_ids: list[str]
    photos_dir: Path
    next_seed: int = 10_000
    rows: list[dict[str, Any]] = field(default_factory=list)


EXTERIOR = ("front_3q_driver", "full_front", "side_driver", "full_rear", "rear_3q_passenger")
INTERIOR = ("dashboard", "front_seats", "rear_seats", "boot", "instrument_cluster")


def make_photo_row(
    inv: Inventory,
    taxonomy: Taxonomy,
    listing_id: str,
    image_id: str,
    position: int,
    angle: str,
    banner: bool,
    body_type: str,
    inline: bool,
    size: int,
    max_pixels: int,
    seed: int,
) -> dict[str, Any]:
    data = photo_bytes(seed, taxonomy.index(angle), banner)
    truth = Truth(angle=angle, has_banner=banner, plate_present=taxonomy[angle].plate_visible, body_type=body_type)
    decoded = decode.decode_photo(data, size, max_pixels)
    assert decoded.ok, decoded.error_detail
    inv.pixel_truth[pixel_key(decoded.array)] = truth
    inv.truth_by_image[image_id] = truth
    return _row(inv, listing_id, image_id, position, data, inline)


def _row(inv: Inventory, listing_id: str, image_id: str, position: int, data: bytes | None, inline: bool) -> dict:
    uri = None
    content = None
    if inline and data is not None:
        content = bytearray(data)
    else:
        path = inv.photos_dir / f"{image_id}.img"
        if data is not None:
            path.write_bytes(data)
        uri = path.as_uri()
    return {
        "image_id": image_id,
        "listing_id": listing_id,
        "position": position,
        "uri": uri,
        "content": content,
        "updated_at": datetime(2026, 1, 1),
    }


def write_inventory(
    spark: Any,
    database: str,
    photos_dir: Path,
    taxonomy: Taxonomy,
    *,
    n_listings: int = 6,
    size: int = 128,
    max_pixels: int = 40_000_000,
    with_bad: bool = True,
) -> Inventory:
    """Listings L000.. with 4-6 photos each (uri for even listings, inline for odd), bad files in L000.

    The first photo of L001 has the same bytes as the first photo of L000 (a re-used photo).
    """
    from fleetvision import tables

    photos_dir.mkdir(parents=True, exist_ok=True)
    inv = Inventory({}, {}, {}, [], photos_dir)
    listings = []
    rows: list[dict[str, Any]] = []
    seed = 1
    for li in range(n_listings):
        lid = f"L{li:03d}"
        body = taxonomy.body_types[li % len(taxonomy.body_types)]
        seller = "dealer" if li % 2 == 0 else "private"
        listings.append((lid, "Toyota", "Camry", 2020, body, seller, f"S{li % 3}", "active", datetime(2026, 1, 1)))
        inv.listing_ids.append(lid)
        shots = [*EXTERIOR[: 2 + li % 3], *INTERIOR[: 2 + (li + 1) % 2]]
        for pos, angle in enumerate(shots):
            seed += 1
            banner = seller == "dealer" and pos == 0
            # the first photo of L001 re-uses the bytes of L000's first photo
            use_seed = 2 if (li == 1 and pos == 0) else seed  # L000-00 has seed 2
            dup = li == 1 and pos == 0
            use_angle = shots[0] if dup else angle
            rows.append(
                make_photo_row(
                    inv,
                    taxonomy,
                    lid,
                    f"{lid}-{pos:02d}",
                    pos,
                    use_angle,
                    True if dup else banner,
                    taxonomy.body_types[0] if dup else body,
                    inline=li % 2 == 1,
                    size=size,
                    max_pixels=max_pixels,
                    seed=use_seed,
                )
            )
    if with_bad:
        for k, kind in enumerate(BAD_KIND_CODES):
            image_id = f"L000-bad-{kind}"
            inv.bad_kind_by_image[image_id] = kind
            rows.append(_row(inv, "L000", image_id, 20 + k, bad_bytes(kind), inline=False))
    inv.rows = rows
    inv.next_seed = seed + 1000
    tables.ensure_database(spark, database)
    spark.createDataFrame(listings, tables.LISTINGS.schema).write.format("delta").saveAsTable(
        tables.qualified(database, tables.LISTINGS)
    )
    tables.ensure_table(spark, database, tables.LISTING_IMAGES)
    spark.createDataFrame(rows, tables.LISTING_IMAGES.schema).write.format("delta").mode("append").saveAsTable(
        tables.qualified(database, tables.LISTING_IMAGES)
    )
    return inv


def table_rows(spark: Any, name: str, drop: tuple[str, ...] = RUN_COLUMNS) -> list[tuple]:
    """A table's rows without the columns that only say which run wrote them, sorted."""
    df = spark.table(name)
    df = df.drop(*[c for c in drop if c in df.columns])
    return sorted((tuple(_freeze(v) for v in r) for r in df.collect()), key=repr)


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if hasattr(v, "asDict"):
        return tuple(sorted((k, _freeze(x)) for k, x in v.asDict().items()))
    if isinstance(v, float):
        return round(v, 5)
    return v


@dataclass(frozen=True)
class Evolution:
    """What :func:`evolve_inventory` changed."""

    changed_images: frozenset[str]  # inserted or updated: must be tagged again
    new_bytes: frozenset[str]  # of those, images whose bytes the models have not seen
    deleted_images: frozenset[str]
    recomputed_listings: frozenset[str]  # active listings touched by a change
    removed_listings: frozenset[str]  # listings that stopped being active


def evolve_inventory(spark: Any, database: str, inv: Inventory, taxonomy: Taxonomy, *, size: int = 128) -> Evolution:
    """One day of change, by hand: a photo deleted, one replaced, one moved, new photos, a new listing,
    and a listing sold. Three Delta commits on ``listing_images``, one on ``listings``."""
    from delta.tables import DeltaTable

    from fleetvision import tables

    images = tables.qualified(database, tables.LISTING_IMAGES)
    DeltaTable.forName(spark, images).delete("image_id = 'L002-01'")
    seed = inv.next_seed
    upserts = [
        make_photo_row(inv, taxonomy, "L003", "L003-00", 0, "boot", False, "suv", True, size, 40_000_000, seed + 1),
        make_photo_row(inv, taxonomy, "L005", "L005-09", 9, "wheel", False, "suv", False, size, 40_000_000, seed + 2),
    ]
    moved = next(r for r in inv.rows if r["image_id"] == "L004-02")
    upserts.append({**moved, "position": 7})
    for pos, angle in enumerate(("front_3q_driver", "side_driver", "dashboard")):
        upserts.append(
            make_photo_row(
                inv,
                taxonomy,
                "L006",
                f"L006-{pos:02d}",
                pos,
                angle,
                False,
                "ute",
                pos % 2 == 0,
                size,
                40_000_000,
                seed + 10 + pos,
            )
        )
    source = spark.createDataFrame(upserts, tables.LISTING_IMAGES.schema)
    (
        DeltaTable.forName(spark, images)
        .alias("t")
        .merge(source.alias("s"), "t.image_id = s.image_id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    listings = tables.qualified(database, tables.LISTINGS)
    DeltaTable.forName(spark, listings).update("listing_id = 'L001'", {"status": "'sold'"})
    spark.createDataFrame(
        [("L006", "Ford", "Ranger", 2022, "ute", "private", "S9", "active", datetime(2026, 1, 2))],
        tables.LISTINGS.schema,
    ).write.format("delta").mode("append").saveAsTable(listings)
    inv.next_seed = seed + 100
    changed = frozenset(r["image_id"] for r in upserts)
    return Evolution(
        changed_images=changed,
        new_bytes=changed - {"L004-02"},
        deleted_images=frozenset({"L002-01"}),
        recomputed_listings=frozenset({"L002", "L003", "L004", "L005", "L006"}),
        removed_listings=frozenset({"L001"}),
    )


def synth_config(config: Any, n_listings: int = 10, **synth: Any) -> Any:
    """A test config for the synthetic generator: few, small photos, bad files likely, one render process."""
    settings = {
        "n_listings": n_listings,
        "min_photos": 4,
        "max_photos": 10,
        "bad_file_rate": 0.06,
        "photo_scale": 0.35,
        "workers": 1,
        "evolve_rate": 0.3,
        **synth,
    }
    scoring = config.scoring.model_copy(update={"max_decode_error_rate": 0.3, "min_scored_share": 0.7})
    return config.model_copy(update={"synth": config.synth.model_copy(update=settings), "scoring": scoring})


def truth_from_labels(spark: Any, config: Any, taxonomy: Taxonomy) -> dict[str, Truth]:
    """The oracle's lookup for a generated inventory: decoded pixels -> ``image_labels`` truth."""
    from fleetvision import tables

    db = config.tables.database
    rows = (
        spark.table(tables.qualified(db, tables.LISTING_IMAGES))
        .join(spark.table(tables.qualified(db, tables.IMAGE_LABELS)).drop("listing_id"), "image_id")
        .filter("bad_kind IS NULL")
        .select("uri", "content", "angle", "has_banner", "plate_present", "body_type")
        .collect()
    )
    truth: dict[str, Truth] = {}
    for r in rows:
        photo = decode.decode_source(
            bytes(r["content"]) if r["content"] is not None else None,
            r["uri"],
            config.models.input_size,
            config.scoring.max_image_pixels,
            roots=photo_uris.PhotoRoots(config.paths.photo_root_locations()),
        )
        if photo.ok:
            body = r["body_type"] if r["body_type"] in taxonomy.body_types else taxonomy.body_types[0]
            truth[pixel_key(photo.array)] = Truth(r["angle"], bool(r["has_banner"]), bool(r["plate_present"]), body)
    return truth
