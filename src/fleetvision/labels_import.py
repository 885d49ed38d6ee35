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

The job turns the arguments into an :class:`~fleetvision.label_rows.ImportRequest`, plans the rows with
the pure :func:`~fleetvision.label_rows.plan_import` (checks, upright RGB photos, stable splits), MERGEs
them by ``sample_id`` (so an import can be re-run) and writes a JSON report that lists every photo that
was dropped and why.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.label_consensus import TASKS
from fleetvision.label_rows import ImportRequest, plan_import
from fleetvision.taxonomy import load_taxonomy

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
    parser.add_argument("--images-dir", help="with --votes: the folder the CSV's image paths are relative to")
    parser.add_argument(
        "--task",
        choices=TASKS,
        default="angle",
        help="what the labels are (default: angle: a shot class, a group, a view without a side or a body type)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="dataset name for the rows (default folder:<path> or votes:<csv>); "
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
        task=args.task,
        folder=args.folder,
        votes=args.votes or (),
        images_dir=args.images_dir,
        dataset=args.dataset,
    )


def write_rows(spark: SparkSession, config: Config, rows: Sequence[dict[str, Any]], run_id: str) -> None:
    """MERGE the rows into ``training_images`` (created if missing), a chunk at a time."""
    from fleetvision.tables import TRAINING_IMAGES, ensure_table, merge_upsert

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
    try:
        rows, report = plan_import(import_request(args), config, taxonomy)
    except (ValueError, FileNotFoundError) as e:
        logger.error("fleetvision import-labels: %s", e)
        return ExitCode.USAGE
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report_path = args.report or config.paths.resolve("reports") / f"import-labels-{stamp}.json"
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
