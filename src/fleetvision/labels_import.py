"""``fleetvision import-labels``: your own labelled photos -> the ``training_images`` table.

Two layouts:

* ``--folder PATH``: one sub-folder per label, e.g. ``PATH/boot/*.jpg``, ``PATH/dashboard/*.jpg``.
  Labels are shot classes (``--task angle``, the default), body types (``--task body``),
  ``banner``/``no_banner`` (``--task banner``) or ``plate``/``no_plate`` (``--task plate``: presence
  only; the box stays unknown and does not train the box head).
* ``--votes votes.csv [more.csv ...] --images-dir PATH``: CSVs with columns ``image`` (path relative
  to ``--images-dir``; a ``file`` column, as ``fleetvision suggest-labels`` writes, works too),
  ``labeller``, ``label``: several people's votes (one CSV per labeller works: an empty ``labeller``
  is the CSV's file name). A photo's label counts when at least N labellers agree on it
  (N = ``models.consensus_min_votes``) AND they are a strict majority of the valid votes on that
  photo (:mod:`fleetvision.label_consensus`).

* ``--from-listings``: body-type labels the sellers already gave. Every exterior photo (as the last
  night's ``image_tags`` call it) of a listing gets that listing's declared ``body_type``, within caps
  per listing and per type (:mod:`fleetvision.declared_labels`: which photos, and why). The photos are
  read from ``listing_images`` and written a chunk at a time. ``--audit CSV...``: the labelled sample of
  ``suggest-labels --audit-declared`` (:mod:`fleetvision.declared_audit`): the report gets how often
  sellers declared the wrong type, and the listings found wrong take the labellers' type.

For a folder or votes, the job turns the arguments into an :class:`~fleetvision.label_rows.ImportRequest`,
plans the rows with the pure :func:`~fleetvision.label_rows.plan_import` (checks, upright RGB photos,
stable splits); every source's rows are MERGEd by ``sample_id`` (so an import can be re-run) and a JSON
report lists every photo that was dropped and why.
"""

from __future__ import annotations

import argparse
import csv
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetvision.config import Config
from fleetvision.declared_audit import AuditEstimate, audit_estimate
from fleetvision.declared_labels import SOURCE, TAG_COLUMNS, DeclaredSpec, declared_rows, select_declared
from fleetvision.exit_codes import ExitCode
from fleetvision.label_consensus import TASKS
from fleetvision.label_rows import ImportReport, ImportRequest, plan_import
from fleetvision.taxonomy import Taxonomy, load_taxonomy

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

NEEDS_SPARK = True

_WRITE_CHUNK = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", help="a folder with one sub-folder of photos per label")
    src.add_argument(
        "--votes",
        nargs="+",
        help="CSV(s) of votes: image (or file), labeller, label; several labellers' CSVs are pooled",
    )
    src.add_argument(
        "--from-listings",
        action="store_true",
        help="body types the sellers declared (listings.body_type) on their listings' exterior photos",
    )
    parser.add_argument("--images-dir", help="with --votes: the folder the CSV's image paths are relative to")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="what the labels are (default: angle: a shot class, a group, a view without a side or a body type; "
        "--from-listings: body, the only one it gives)",
    )
    declared = parser.add_argument_group("--from-listings")
    declared.add_argument(
        "--min-exterior",
        type=float,
        default=DeclaredSpec.min_exterior,
        help="least share of the angle model's top-3 probability on exterior classes (default 0.8)",
    )
    declared.add_argument(
        "--per-listing",
        type=int,
        default=DeclaredSpec.per_listing,
        help="at most this many photos of one listing (default 4)",
    )
    declared.add_argument(
        "--per-type",
        type=int,
        default=DeclaredSpec.per_type,
        help="at most this many photos of one body type (default 2000)",
    )
    declared.add_argument(
        "--audit",
        nargs="+",
        type=Path,
        default=None,
        help="labelled CSVs of suggest-labels --audit-declared: report the declared-type error rate; the "
        "listings the labellers found declared wrong take the type they saw",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="dataset name for the rows (default folder:<path>, votes:<csv> or listings:<database>); "
        "train on it with --set models.training_dataset=<name>",
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="report JSON (default <paths.reports>/import-labels-<time>.json)"
    )


def import_request(args: argparse.Namespace) -> ImportRequest:
    """The command line's :class:`ImportRequest` (``--report`` stays with the job: where, not what).

    Raises:
        ValueError: A bad combination of arguments (named).
    """
    return ImportRequest(
        task=args.task or "angle",
        folder=args.folder,
        votes=args.votes or (),
        images_dir=args.images_dir,
        dataset=args.dataset,
    )


def write_rows(spark: SparkSession, config: Config, rows: Sequence[dict[str, Any]], run_id: str) -> None:
    """MERGE the rows into ``training_images`` (created if missing), a chunk at a time."""
    from fleetvision.delta_writes import merge_upsert
    from fleetvision.tables import TRAINING_IMAGES, ensure_table

    ensure_table(spark, config.tables.database, TRAINING_IMAGES)
    for start in range(0, len(rows), _WRITE_CHUNK):
        df = spark.createDataFrame(list(rows[start : start + _WRITE_CHUNK]), schema=TRAINING_IMAGES.schema)
        merge_upsert(spark, config.tables.database, TRAINING_IMAGES, df, run_id=run_id)


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job.

    Returns:
        ``ExitCode.OK`` when photos were imported, ``ExitCode.FAILED`` when none passed,
        ``ExitCode.USAGE`` on bad arguments or files (nothing written).

    Raises:
        ValueError: Called without a SparkSession.
    """
    if spark is None:
        raise ValueError("fleetvision import-labels needs a SparkSession")
    taxonomy = load_taxonomy()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_path = args.report or config.paths.resolve("reports") / f"import-labels-{stamp}.json"
    if getattr(args, "from_listings", False):
        return _main_from_listings(spark, config, args, taxonomy, report_path, run_id=f"import-labels-{stamp}")
    try:
        rows, report = plan_import(import_request(args), config, taxonomy)
    except (ValueError, FileNotFoundError) as e:
        logger.error("fleetvision import-labels: %s", e)
        return ExitCode.USAGE
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.to_json())
    for d in report.dropped[:20]:
        logger.info("dropped %s: %s %s", d.image, d.reason, d.detail)
    if not rows:
        logger.error("%s; nothing written. Report: %s", report.summary(), report_path)
        return ExitCode.FAILED
    write_rows(spark, config, rows, run_id=f"import-labels-{stamp}")
    logger.info(
        "%s. Written to %s.training_images (dataset %r). Report: %s",
        report.summary(),
        config.tables.database,
        report.dataset,
        report_path,
    )
    return ExitCode.OK


def _main_from_listings(
    spark: SparkSession, config: Config, args: argparse.Namespace, taxonomy: Taxonomy, report_path: Path, run_id: str
) -> int:
    """``--from-listings``: pick the photos, then read, convert and MERGE them a chunk at a time."""
    if getattr(args, "task", None) not in (None, "body"):
        logger.error("fleetvision import-labels: --from-listings gives body-type labels only, not --task %s", args.task)
        return ExitCode.USAGE
    if getattr(args, "images_dir", None):
        logger.error("fleetvision import-labels: --images-dir goes with --votes, not --from-listings")
        return ExitCode.USAGE
    try:
        spec = DeclaredSpec(min_exterior=args.min_exterior, per_listing=args.per_listing, per_type=args.per_type)
    except ValueError as e:
        logger.error("fleetvision import-labels: %s", e)
        return ExitCode.USAGE
    dataset = args.dataset or f"listings:{config.tables.database}"
    audit_files = getattr(args, "audit", None)
    try:
        audit = read_audit(audit_files, taxonomy) if audit_files else None
    except (OSError, ValueError) as e:
        logger.error("fleetvision import-labels --audit: %s", e)
        return ExitCode.USAGE
    candidates = declared_candidates(spark, config)
    if audit is not None:
        logger.info("%s", audit.summary())
        if audit.rate is not None and audit.rate >= 0.2:
            logger.warning(
                "sellers declared the wrong body type on %.0f%% of the audited listings; unaudited listings keep "
                "their mistakes, and on the stand-in domain 30%% wrong cost ~0.1 of body accuracy even with "
                "models.body_loss=gce (docs/models.md, Declared body types)", 100 * audit.rate)
        candidates = corrected_by_audit(candidates, audit)
    picked, dropped = select_declared(candidates, taxonomy, spec)
    logger.info(
        "import-labels --from-listings: %d exterior photos with a declared body type, %d picked",
        len(candidates),
        len(picked),
    )
    report = ImportReport(task="body", dataset=dataset, source=SOURCE, dropped=list(dropped),
                          audit=audit.to_dict() if audit is not None else None)
    for start in range(0, len(picked), _WRITE_CHUNK):
        chunk = picked.iloc[start : start + _WRITE_CHUNK]
        contents = declared_photo_bytes(spark, config, list(chunk["image_id"]))
        rows = declared_rows(chunk, contents, taxonomy, config, report)
        if rows:
            write_rows(spark, config, rows, run_id=run_id)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(report.to_json())
    if not report.accepted:
        logger.error("%s; nothing written. Report: %s", report.summary(), report_path)
        return ExitCode.FAILED
    logger.info(
        "%s. Written to %s.training_images (dataset %r). Report: %s. Some sellers declare the wrong type: "
        "train with the loss that tolerates it, fleetvision train body --init-from <models> "
        "--set models.training_dataset=%s --set models.body_loss=gce (docs/models.md, Declared body types)",
        report.summary(),
        config.tables.database,
        dataset,
        report_path,
        dataset,
    )
    return ExitCode.OK


def corrected_by_audit(candidates: Any, audit: AuditEstimate) -> Any:
    """The candidates with the labellers' body type on every photo of a listing the audit found declared
    wrong (they saw one photo of the car; the others show the same car). The report keeps what was declared
    (``audit.corrections``)."""
    if not audit.corrections:
        return candidates
    seen = {listing: labelled for listing, (_, labelled) in audit.corrections.items()}
    fixed = candidates["listing_id"].map(seen)
    return candidates.assign(declared_body_type=fixed.where(fixed.notna(), candidates["declared_body_type"]))


def read_audit(paths: Sequence[Path], taxonomy: Taxonomy) -> AuditEstimate:
    """The audit estimate from labelled ``suggest-labels --audit-declared`` CSVs, pooled (several labellers).

    Raises:
        OSError: A CSV cannot be read.
        ValueError: A CSV lacks the audit columns or declares a type that is not a body type.
    """
    rows: list[dict[str, str]] = []
    for path in paths:
        with Path(path).open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"listing_id", "suggested_label", "label"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: not an audit CSV of suggest-labels --audit-declared (no {sorted(missing)})")
            rows.extend(reader)
    return audit_estimate(rows, taxonomy)


def declared_candidates(spark: SparkSession, config: Config) -> Any:
    """``image_tags`` rows of decoded exterior photos with their listing's declared body type (pandas).

    Only the columns :func:`~fleetvision.declared_labels.select_declared` reads reach the driver; photos
    that are not exterior or whose listing declares no body type are left in the warehouse.
    """
    from pyspark.sql import functions as F

    from fleetvision.tables import IMAGE_TAGS, LISTINGS, qualified, validate_input_table

    db = config.tables.database
    tags = spark.table(qualified(db, IMAGE_TAGS)).filter(
        (F.col("decode_status") == "ok") & (F.col("shot_group") == "exterior")
    )
    listings = (
        validate_input_table(spark, db, LISTINGS)
        .select("listing_id", F.col("body_type").alias("declared_body_type"))
        .filter(F.col("declared_body_type").isNotNull())
    )
    return tags.join(listings, "listing_id").select(*TAG_COLUMNS).toPandas()


def declared_photo_bytes(spark: SparkSession, config: Config, image_ids: list[str]) -> dict[str, bytes | None]:
    """The bytes of these photos (inline, else read at their uri inside ``paths.photos``; None: unreadable)."""
    from pyspark.sql import functions as F

    from fleetvision.photo_uris import PhotoRoots, photo_bytes
    from fleetvision.tables import LISTING_IMAGES, validate_input_table

    images = validate_input_table(spark, config.tables.database, LISTING_IMAGES).filter(
        F.col("image_id").isin(image_ids)
    )
    roots = PhotoRoots(config.paths.photo_root_locations())
    return {
        r["image_id"]: photo_bytes(
            r["content"],
            r["uri"],
            max_bytes=config.scoring.max_image_bytes,
            remote=config.paths.remote_options,
            roots=roots,
        )
        for r in images.select("image_id", "uri", "content").toLocalIterator()
    }
