"""``fleetvision suggest-labels``: the photos most worth labelling next, as a folder and a CSV.

Reads the ``image_tags`` rows of the last successful scoring run (``--run-id`` for another run,
``--all`` for every scored photo), joined with the listing's declared body type, picks photos with
:func:`fleetvision.label_suggestions.select_photos`, and writes ``<out>/photos/<image_id>.jpg`` and
``<out>/labels.csv`` (:data:`fleetvision.label_suggestions.CSV_COLUMNS`). Give each labeller a copy
of the CSV (named after them, or fill the ``labeller`` column), then read them back::

    fleetvision import-labels --votes OUT/alice.csv OUT/bob.csv OUT/carol.csv --images-dir OUT

``--audit-declared N`` exports a uniform random sample of N listings whose declared body type
``import-labels --from-listings`` would train on, one photo each, instead
(:func:`fleetvision.declared_audit.audit_sample`): labellers write the type they see, and
``import-labels --from-listings --audit <their CSVs>`` estimates how often sellers declare the wrong type
and gives the listings found wrong the type the labellers saw.

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

import pandas as pd
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
    from fleetvision.scoring.work import last_watermark
    from fleetvision.tables import IMAGE_TAGS, LISTINGS, qualified, validate_input_table

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

    exported, unreadable, csv_path = export_photos(spark, config, picked, out_dir)
    return SuggestResult(run_id, len(candidates), exported, unreadable, csv_path)


def audit_declared(
    spark: SparkSession, config: Config, count: int, out_dir: Path, *, min_exterior: float = 0.8, seed: int = 0
) -> SuggestResult:
    """Export a uniform random sample of ``count`` listings whose declared body type the import would take.

    The candidates are the ones ``import-labels --from-listings --min-exterior`` reads
    (:func:`fleetvision.labels_import.declared_candidates`, :func:`~fleetvision.declared_labels.select_declared`);
    each drawn listing comes with the photo that shows its profile most surely (a 3/4 or side view, where a
    labeller can tell a hatch from a sedan; :func:`~fleetvision.declared_audit.audit_sample`).

    Raises:
        ValueError: ``count`` < 1 or ``min_exterior`` outside [0, 1].
    """
    from fleetvision.declared_audit import audit_sample, with_profile
    from fleetvision.declared_labels import DeclaredSpec, select_declared
    from fleetvision.labels_import import declared_candidates
    from fleetvision.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    spec = DeclaredSpec(min_exterior=min_exterior, per_listing=None, per_type=None)  # every listing it would take
    candidates = declared_candidates(spark, config)
    picked, _ = select_declared(candidates, taxonomy, spec)
    sample = audit_sample(with_profile(picked, candidates, taxonomy), count, seed)
    logger.info("suggest-labels --audit-declared: %d listings the import would take, %d drawn",
                picked["listing_id"].nunique() if len(picked) else 0, len(sample))
    exported, unreadable, csv_path = export_photos(spark, config, sample, out_dir)
    return SuggestResult(None, len(candidates), exported, unreadable, csv_path)


def export_photos(
    spark: SparkSession, config: Config, picked: pd.DataFrame, out_dir: Path
) -> tuple[int, tuple[str, ...], Path]:
    """Write the picked photos (``image_id``, ``listing_id``, ``suggested_label``, ``reason``) as
    ``<out>/photos/<image_id>.jpg`` and ``<out>/labels.csv``.

    Returns:
        (photos exported, picked photos that could not be read, the CSV).
    """
    from fleetvision.photo_uris import PhotoRoots, photo_bytes
    from fleetvision.tables import LISTING_IMAGES, validate_input_table

    db = config.tables.database
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
    return exported, tuple(unreadable), csv_path


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
    parser.add_argument(
        "--audit-declared",
        type=int,
        default=None,
        metavar="N",
        help="instead: a uniform random sample of N listings whose declared body type import-labels "
        "--from-listings would take, one photo each, to estimate how often sellers declare the wrong type",
    )
    parser.add_argument(
        "--min-exterior", type=float, default=0.8, help="with --audit-declared: as import-labels (default 0.8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="with --audit-declared: another seed, another sample")


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
    audit = getattr(args, "audit_declared", None)
    try:
        if audit is not None:
            if args.run_id or args.all_tags:
                raise ValueError("--audit-declared reads the tags import-labels --from-listings reads; "
                                 "drop --run-id/--all")
            result = audit_declared(spark, config, audit, Path(args.out).expanduser().resolve(),
                                    min_exterior=args.min_exterior, seed=args.seed)
            return _finish(result, audit=True)
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
    return _finish(result, audit=False)


def _finish(result: SuggestResult, *, audit: bool) -> int:
    if result.unreadable:
        logger.warning("%d picked photos could not be read: %s", len(result.unreadable), result.unreadable[:10])
    if not result.exported:
        logger.error("suggest-labels: no photos exported (%d candidates)", result.candidates)
        return ExitCode.FAILED
    if audit:
        logger.info(
            "suggest-labels --audit-declared: %d listings' photos in %s; labellers write the body type they see "
            "in label (or unclear), then fleetvision import-labels --from-listings --audit <their CSVs>",
            result.exported,
            result.csv_path,
        )
        return ExitCode.OK
    logger.info(
        "suggest-labels: %d photos in %s; give each labeller a copy, then "
        "fleetvision import-labels --votes <their CSVs> --images-dir %s",
        result.exported,
        result.csv_path,
        result.csv_path.parent,
    )
    return ExitCode.OK
