"""``fleetvision suggest-labels``: the photos most worth labelling next, as a folder and a CSV.

Reads the ``image_tags`` rows of the last successful scoring run (``--run-id`` for another run,
``--all`` for every scored photo), joined with the listing's declared body type, picks photos with
:func:`fleetvision.label_suggestions.select_photos`, and writes ``<out>/photos/<image_id>.jpg`` and
``<out>/labels.csv`` (:data:`fleetvision.label_suggestions.CSV_COLUMNS`). Give each labeller a copy
of the CSV (named after them, or fill the ``labeller`` column), then read them back::

    fleetvision import-labels --votes OUT/alice.csv OUT/bob.csv OUT/carol.csv --images-dir OUT

Operating limit: the candidate tags (a few hundred bytes each: scores, top-3, ids) are collected on
the driver; photo bytes only for the picked photos. ``--max-candidates`` bounds the first on a very
large ``--all``.
"""

from __future__ import annotations

import argparse
import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.label_suggestions import (
    CSV_COLUMNS,
    TAG_COLUMNS,
    SuggestSpec,
    export_jpeg,
    photo_file_name,
    select_photos,
)

logger = logging.getLogger(__name__)

NEEDS_SPARK = True
CSV_NAME = "labels.csv"
PHOTOS_DIR = "photos"


@dataclass(frozen=True)
class SuggestResult:
    """What a suggest run wrote.

    Attributes:
        run_id: The scoring run whose tags were read (None with ``--all``).
        candidates: Scored photos considered.
        exported: Photos written to the folder and the CSV.
        unreadable: Picked photos whose bytes could not be read (left out).
        csv_path: The CSV.
    """

    run_id: str | None
    candidates: int
    exported: int
    unreadable: tuple[str, ...]
    csv_path: Path


def suggest_labels(
    spark: SparkSession,
    config: Config,
    spec: SuggestSpec,
    out_dir: Path,
    *,
    run_id: str | None = None,
    all_tags: bool = False,
    max_candidates: int | None = None,
) -> SuggestResult:
    """Pick photos to label from the tags and export them.

    Args:
        spark: The session.
        config: The job configuration (database, photo read limits).
        spec: How many photos and how.
        out_dir: The export folder (created; an existing ``labels.csv`` is replaced).
        run_id: Read this scoring run's tags (default: the last successful run).
        all_tags: Read every ``image_tags`` row instead of one run's.
        max_candidates: Keep a seeded sample of at most this many candidate rows.

    Raises:
        ValueError: No successful scoring run (and neither ``run_id`` nor ``all_tags``).
    """
    from fleetvision.decode import PhotoRoots, photo_bytes
    from fleetvision.scoring.work import last_watermark
    from fleetvision.tables import IMAGE_TAGS, LISTING_IMAGES, LISTINGS, qualified, validate_input_table

    db = config.tables.database
    if not all_tags and run_id is None:
        mark = last_watermark(spark, db)
        if mark is None:
            raise ValueError(f"no successful scoring run in {qualified(db, 'scoring_runs')}; run fleetvision score")
        run_id = mark.run_id
    tags = spark.table(qualified(db, IMAGE_TAGS)).filter(F.col("decode_status") == "ok")
    if not all_tags:
        tags = tags.filter(F.col("run_id") == run_id)
    listings = validate_input_table(spark, db, LISTINGS).select(
        "listing_id", F.col("body_type").alias("declared_body_type")
    )
    frame = tags.join(listings, "listing_id", "left").select(*TAG_COLUMNS)
    if max_candidates is not None:
        frame = frame.orderBy(F.rand(0)).limit(max_candidates)
    candidates = frame.toPandas()
    picked = select_photos(candidates, spec)
    logger.info("suggest-labels: %d candidates from run %s, %d picked", len(candidates), run_id or "(all)", len(picked))

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PHOTOS_DIR).mkdir(exist_ok=True)
    ids = [str(i) for i in picked["image_id"]] if len(picked) else []
    sources: dict[str, tuple[bytes | None, str | None]] = {}
    if ids:
        images = validate_input_table(spark, db, LISTING_IMAGES).filter(F.col("image_id").isin(ids))
        rows = images.select("image_id", "uri", "content").collect()
        sources = {r["image_id"]: (r["content"], r["uri"]) for r in rows}
    sc = config.scoring
    roots = PhotoRoots(config.paths.photo_root_locations())
    unreadable: list[str] = []
    csv_path = out_dir / CSV_NAME
    exported = 0
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for row in picked.to_dict("records"):
            image_id = str(row["image_id"])
            content, uri = sources.get(image_id, (None, None))
            data = photo_bytes(content, uri, max_bytes=sc.max_image_bytes, remote=config.paths.remote_options,
                               roots=roots)
            jpeg = export_jpeg(data, config.models.import_max_side) if data is not None else None
            if jpeg is None:
                unreadable.append(image_id)
                continue
            rel = f"{PHOTOS_DIR}/{photo_file_name(image_id)}"
            (out_dir / rel).write_bytes(jpeg)
            writer.writerow(
                {
                    "image_id": image_id,
                    "file": rel,
                    "uri": uri or "",
                    "listing_id": row["listing_id"],
                    "suggested_label": row["suggested_label"],
                    "reason": row["reason"],
                    "labeller": "",
                    "label": "",
                }
            )
            exported += 1
    return SuggestResult(run_id, len(candidates), exported, tuple(unreadable), csv_path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="export folder: photos/ and labels.csv")
    parser.add_argument("--count", type=int, default=200, help="photos to pick (default 200)")
    parser.add_argument("--per-listing", type=int, default=2, help="at most this many per listing (default 2)")
    parser.add_argument(
        "--pool-factor", type=int, default=5, help="diversity pass over the count x this most urgent (default 5)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run-id", default=None, help="read this scoring run's tags (default: the last successful)")
    which.add_argument("--all", dest="all_tags", action="store_true", help="read every row of image_tags")
    parser.add_argument("--max-candidates", type=int, default=None, help="sample at most this many tag rows")


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job.

    Returns:
        ``ExitCode.OK`` when photos were exported, ``ExitCode.FAILED`` when none, ``ExitCode.USAGE`` on
        bad arguments or no scoring run.

    Raises:
        ValueError: Called without a SparkSession.
    """
    if spark is None:
        raise ValueError("fleetvision suggest-labels needs a SparkSession")
    try:
        spec = SuggestSpec(count=args.count, per_listing=args.per_listing, pool_factor=args.pool_factor)
        result = suggest_labels(
            spark,
            config,
            spec,
            Path(args.out).expanduser().resolve(),
            run_id=args.run_id,
            all_tags=args.all_tags,
            max_candidates=args.max_candidates,
        )
    except ValueError as e:
        logger.error("fleetvision suggest-labels: %s", e)
        return ExitCode.USAGE
    if result.unreadable:
        logger.warning("%d picked photos could not be read: %s", len(result.unreadable), result.unreadable[:10])
    if not result.exported:
        logger.error("suggest-labels: no photos exported (%d candidates)", result.candidates)
        return ExitCode.FAILED
    logger.info(
        "suggest-labels: %d photos in %s; give each labeller a copy, then "
        "fleetvision import-labels --votes <their CSVs> --images-dir %s",
        result.exported,
        result.csv_path,
        result.csv_path.parent,
    )
    return ExitCode.OK
