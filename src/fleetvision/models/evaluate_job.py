"""``fleetvision evaluate <task> [--version V | --alias A] [--out metrics.json]``.

Scores one registered model version on the frozen evaluation set (``models.eval_dataset`` /
``models.eval_split``: generated with ``synth.eval_seed``, never trained on), the way the nightly job
decodes photos, and writes the metrics as JSON and to MLflow (a run ``evaluate-<task>-v<V>`` with
the confusion matrix and per-class table; the version is tagged ``eval.<metric>``). An angle version
runs beside the plate version at ``mlflow.model_alias``, as the nightly job runs them, and its metrics also
hold ``with_plate_flank.*`` (the angle with the plate-position flank cue; ``evaluated_beside`` names the
plate version).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.feed import EmptyDatasetError
from fleetvision.models.frozen_eval import eval_provenance, evaluate_ref
from fleetvision.models.resolve import ModelNotFoundError
from fleetvision.models.spec import TASKS

logger = logging.getLogger(__name__)

NEEDS_SPARK = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=TASKS)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", default=None, help="registered version to evaluate")
    which.add_argument("--alias", default=None, help="alias to evaluate (default: mlflow.model_alias)")
    parser.add_argument(
        "--out", type=Path, default=None, help="metrics JSON (default: <paths.reports>/evaluate-<task>-v<V>.json)"
    )


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 on success, 2 when the model or the evaluation set does not exist."""
    if spark is None:
        raise ValueError("fleetvision evaluate needs a SparkSession")
    from fleetvision.feed import load_eval_set
    from fleetvision.models.resolve import resolve_model_ref

    try:
        ref = resolve_model_ref(config, args.task, version=args.version, alias=args.alias)
        eval_set = load_eval_set(spark, config)
    except (ModelNotFoundError, EmptyDatasetError, ValueError) as e:
        logger.error("fleetvision evaluate: %s", e)
        return ExitCode.USAGE
    evaluation = evaluate_ref(config, ref, eval_set)
    out = args.out or config.paths.resolve("reports") / f"evaluate-{ref.task}-v{ref.version}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"task": ref.task, "metrics": evaluation.metrics, **eval_provenance(ref, eval_set, evaluation.beside)}
    out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    logger.info("%s: %s -> %s", ref.uri, ", ".join(f"{k}={v:.4f}" for k, v in sorted(evaluation.metrics.items())), out)
    return ExitCode.OK
