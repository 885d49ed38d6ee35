"""``fleetvision evaluate <task> [--version V | --alias A] [--out metrics.json]``.

Scores one registered model version on the frozen evaluation set (``models.eval_dataset`` /
``models.eval_split``: generated with ``synth.eval_seed``, never trained on), the way the nightly job
decodes photos, and writes the metrics as JSON and to MLflow (a run ``evaluate-<task>-v<V>`` with
the confusion matrix and per-class table; the version is tagged ``eval.<metric>``).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.feed import EmptyDatasetError, EvalSet
from fleetvision.models.metrics import TaskEvaluation
from fleetvision.models.registry import ModelNotFoundError, ModelRef
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


def evaluate_ref(config: Config, ref: ModelRef, eval_set: EvalSet, *, log_to_mlflow: bool = True) -> TaskEvaluation:
    """Evaluate one resolved model version on the frozen set; log a run and tag the version.

    Returns:
        The evaluation.
    """
    import mlflow

    from fleetvision.models.evaluation import evaluate_predictors
    from fleetvision.models.metrics import write_evaluation
    from fleetvision.models.registry import ModelSet, load_models, mlflow_client
    from fleetvision.taxonomy import load_taxonomy
    from fleetvision.tracking import configure_mlflow

    predictors = load_models(ModelSet((ref,)))
    evaluation = evaluate_predictors(
        predictors,
        eval_set,
        load_taxonomy(),
        size=ref.input_size,
        max_pixels=config.scoring.max_image_pixels,
        banner_threshold=config.scoring.banner_threshold,
        plate_threshold=config.scoring.plate_threshold,
    )[ref.task]
    if log_to_mlflow:
        configure_mlflow(config)
        with mlflow.start_run(run_name=f"evaluate-{ref.task}-v{ref.version}"), tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tags(
                {
                    "fleetvision.job": "evaluate",
                    "fleetvision.task": ref.task,
                    "fleetvision.model_uri": ref.uri,
                    "fleetvision.eval_fingerprint": eval_set.fingerprint,
                }
            )
            mlflow.log_params({"model": ref.name, "version": ref.version, "eval_rows": len(eval_set)})
            mlflow.log_metrics({f"eval.{k}": v for k, v in evaluation.metrics.items()})
            write_evaluation(evaluation, Path(tmp), _provenance(ref, eval_set))
            mlflow.log_artifacts(tmp, artifact_path=f"eval/{ref.task}")
        client = mlflow_client(config)
        for k, v in evaluation.metrics.items():
            client.set_model_version_tag(ref.name, ref.version, f"eval.{k}", f"{v:.6g}")
        client.set_model_version_tag(ref.name, ref.version, "eval.fingerprint", eval_set.fingerprint)
    return evaluation


def _provenance(ref: ModelRef, eval_set: EvalSet) -> dict[str, Any]:
    return {
        "model": ref.name,
        "version": ref.version,
        "uri": ref.uri,
        "eval_set": eval_set.description,
        "eval_fingerprint": eval_set.fingerprint,
        "eval_rows": len(eval_set),
    }


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 on success, 2 when the model or the evaluation set does not exist."""
    if spark is None:
        raise ValueError("fleetvision evaluate needs a SparkSession")
    from fleetvision.feed import load_eval_set
    from fleetvision.models.registry import resolve_model_ref

    try:
        ref = resolve_model_ref(config, args.task, version=args.version, alias=args.alias)
        eval_set = load_eval_set(spark, config)
    except (ModelNotFoundError, EmptyDatasetError, ValueError) as e:
        logger.error("fleetvision evaluate: %s", e)
        return 2
    evaluation = evaluate_ref(config, ref, eval_set)
    out = args.out or config.paths.resolve("reports") / f"evaluate-{ref.task}-v{ref.version}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"task": ref.task, "metrics": evaluation.metrics, **_provenance(ref, eval_set)}
    out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    logger.info("%s: %s -> %s", ref.uri, ", ".join(f"{k}={v:.4f}" for k, v in sorted(evaluation.metrics.items())), out)
    return 0
