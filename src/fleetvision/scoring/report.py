"""``fleetvision report``: gather one scoring run from the tables and write its HTML page.

:func:`gather_report_inputs` reads the run's rows from ``scoring_runs``, ``image_tags``,
``listing_completeness``, ``hero_images`` and ``listing_images`` and collects samples on the driver (a
few photos per error code and a few hero picks, read with :mod:`fleetvision.decode`) into one
:class:`~fleetvision.scoring.report_html.ReportInputs`; :func:`main` renders it with the pure
:func:`~fleetvision.scoring.report_html.render_report` and writes ``<paths.reports>/run-<run_id>.html``
(or ``--out``).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from fleetvision.decode import make_thumbnail
from fleetvision.exit_codes import ExitCode
from fleetvision.photo_uris import PhotoRoots, photo_bytes
from fleetvision.scoring import COMPONENTS
from fleetvision.scoring.report_html import HEAD_BYTES, ErrorSample, HeroSample, ReportInputs, render_report

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from fleetvision.config import Config

logger = logging.getLogger(__name__)

NEEDS_SPARK = True
THUMB_SIDE = 200
GALLERY_THUMB_SIDE = 72
GALLERY_THUMBS = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--run-id`` (default: the latest run) and ``--out`` (default: ``<paths.reports>/run-<run_id>.html``)."""
    parser.add_argument("--run-id", default=None, help="the run to report (default: the most recent run)")
    parser.add_argument(
        "--out", default=None, metavar="PATH", help="output file (default: <paths.reports>/run-<id>.html)"
    )


def gather_report_inputs(spark: SparkSession, config: Config, run_id: str | None = None) -> ReportInputs | None:
    """Read one run's rows from the tables and collect the report's pieces on the driver.

    Only aggregates and a bounded number of samples (``scoring.report_error_samples`` per error code,
    ``scoring.report_hero_samples`` heroes) reach the driver, plus one float per listing scored.

    Returns:
        The inputs, or None when the run (or any run, without ``run_id``) does not exist.
    """
    from pyspark.sql import functions as F

    from fleetvision.tables import (
        HERO_IMAGES,
        IMAGE_TAGS,
        LISTING_COMPLETENESS,
        LISTING_IMAGES,
        SCORING_RUNS,
        qualified,
    )

    db = config.tables.database
    sc = config.scoring
    remote = config.paths.remote_options
    roots = PhotoRoots(config.paths.photo_root_locations())
    limits = {"max_pixels": sc.max_image_pixels, "max_declared_pixels": sc.max_declared_pixels}
    runs = spark.table(qualified(db, SCORING_RUNS))
    runs = runs.filter(F.col("run_id") == run_id) if run_id else runs.orderBy(F.col("started_at").desc())
    first = runs.limit(1).collect()
    if not first:
        return None
    run = first[0].asDict(recursive=True)
    rid = run["run_id"]

    tags = spark.table(qualified(db, IMAGE_TAGS)).filter(F.col("run_id") == rid)
    images = spark.table(qualified(db, LISTING_IMAGES)).select("image_id", "uri", "content")
    failed = tags.filter(F.col("decode_status") == "error")
    error_counts = {str(row["error_code"]): int(row["count"]) for row in failed.groupBy("error_code").count().collect()}
    error_samples: dict[str, list[ErrorSample]] = {}
    if sc.report_error_samples:
        from pyspark.sql import Window

        ranked = failed.withColumn(
            "_rank", F.row_number().over(Window.partitionBy("error_code").orderBy("image_id"))
        ).filter(F.col("_rank") <= sc.report_error_samples)
        rows = (
            ranked.join(images, "image_id", "left")
            .select("image_id", "listing_id", "error_code", "error_detail", "uri", "content")
            .collect()
        )
        for row in sorted(rows, key=lambda r: (str(r["error_code"]), str(r["image_id"]))):
            data = photo_bytes(row["content"], row["uri"], max_bytes=sc.max_image_bytes, remote=remote, roots=roots)
            thumb = make_thumbnail(data, THUMB_SIDE, **limits) if data else None
            error_samples.setdefault(str(row["error_code"]), []).append(
                ErrorSample(
                    image_id=str(row["image_id"]),
                    thumbnail=thumb,
                    detail=row["error_detail"],
                    uri=row["uri"],
                    head=data[:HEAD_BYTES] if data is not None else None,
                    listing_id=row["listing_id"],
                )
            )

    comp = spark.table(qualified(db, LISTING_COMPLETENESS)).filter(F.col("run_id") == rid)
    score_values = [float(r[0]) for r in comp.select("completeness_score").collect() if r[0] is not None]
    means = comp.agg(*[F.avg(F.col("components").getItem(c)).alias(c) for c in COMPONENTS]).collect()
    component_means = {c: float(means[0][c]) for c in COMPONENTS if means[0][c] is not None} if means else {}
    # numbers vary between listings ("2 photos could not be read"): count reasons by their wording
    reason_rows = (
        comp.select(F.explode("reasons").alias("reason"))
        .select(F.regexp_replace("reason", r"\d+", "N").alias("reason"))
        .groupBy("reason")
        .count()
        .orderBy(F.col("count").desc(), "reason")
        .limit(10)
        .collect()
    )
    top_reasons = [(str(r["reason"]), int(r["count"])) for r in reason_rows]

    hero_samples: list[HeroSample] = []
    if sc.report_hero_samples:
        heroes = (
            spark.table(qualified(db, HERO_IMAGES))
            .filter(F.col("run_id") == rid)
            .orderBy("listing_id")
            .limit(sc.report_hero_samples)
            .join(comp.select("listing_id", "completeness_score"), "listing_id", "left")
            .collect()
        )
        wanted: set[str] = set()
        for h in heroes:
            if h["hero_image_id"]:
                wanted.add(h["hero_image_id"])
            wanted.update((h["gallery_order"] or [])[:GALLERY_THUMBS])
        photo_rows = images.filter(F.col("image_id").isin(sorted(wanted))).collect() if wanted else []
        raw = {
            r["image_id"]: photo_bytes(r["content"], r["uri"], max_bytes=sc.max_image_bytes, remote=remote, roots=roots)
            for r in photo_rows
        }
        for h in sorted(heroes, key=lambda r: str(r["listing_id"])):
            hero_id = h["hero_image_id"]
            gallery = tuple(
                make_thumbnail(raw.get(i), GALLERY_THUMB_SIDE, **limits)
                for i in (h["gallery_order"] or [])[:GALLERY_THUMBS]
            )
            hero_samples.append(
                HeroSample(
                    listing_id=str(h["listing_id"]),
                    thumbnail=make_thumbnail(raw.get(hero_id), THUMB_SIDE, **limits) if hero_id else None,
                    reason=str(h["hero_reason"]),
                    image_id=hero_id,
                    completeness_score=h["completeness_score"],
                    gallery=gallery,
                )
            )
    return ReportInputs(
        run=run,
        error_counts=error_counts,
        error_samples=error_samples,
        score_values=score_values,
        hero_samples=hero_samples,
        component_means=component_means,
        top_reasons=top_reasons,
    )


_SAFE_RUN_ID = re.compile(r"[^A-Za-z0-9._-]+")


def report_path(config: Config, run_id: str) -> str:
    """``<paths.reports>/run-<run_id>.html``, the run id made safe for a file name."""
    name = f"run-{_SAFE_RUN_ID.sub('_', run_id)}.html"
    if config.paths.is_remote("reports"):
        return config.paths.reports.rstrip("/") + "/" + name
    return str(config.paths.resolve("reports") / name)


def _write(spark: SparkSession, target: str, text: str) -> None:
    if "://" in target and not target.startswith("file://"):
        # An object store: write through Hadoop's FileSystem, which has the cluster's credentials.
        from fleetvision import hadoop_fs

        hadoop_fs.write_text(spark, target, text)
        return
    local = Path(target[len("file://") :] if target.startswith("file://") else target)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text, encoding="utf-8")


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Render the chosen run's report and write it.

    Returns:
        ``ExitCode.OK`` when written; ``ExitCode.FAILED`` when there is no such run (or no run at all).

    Raises:
        ValueError: Called without a SparkSession.
    """
    if spark is None:
        raise ValueError("fleetvision report needs a SparkSession")
    inputs = gather_report_inputs(spark, config, run_id=args.run_id)
    if inputs is None:
        what = f"run {args.run_id!r}" if args.run_id else "any scoring run"
        logger.error("report: %s not found in %s.scoring_runs", what, config.tables.database)
        return ExitCode.FAILED
    text = render_report(inputs)
    target = args.out or report_path(config, str(inputs.run["run_id"]))
    _write(spark, target, text)
    logger.info("report for run %s written to %s (%d KiB)", inputs.run["run_id"], target, len(text) // 1024)
    return ExitCode.OK
