"""``fleetvision promote <task> --version V``: move the champion alias to a better candidate.

Both the candidate and the current champion are scored now, on the same frozen evaluation set, by
the same code (so stale or differently computed metrics cannot decide). The alias moves only if
:func:`fleetvision.models.promotion_rule.decide` says so; otherwise the job exits 1 and says which metric
fell short. With no champion yet, the candidate becomes champion if it meets ``promote.min_metrics``.
"""

from __future__ import annotations

import argparse
import logging

from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.feed import EmptyDatasetError, EvalSet
from fleetvision.models.frozen_eval import decode_eval_set, evaluate_ref
from fleetvision.models.promotion_rule import PromotionDecision, decide
from fleetvision.models.resolve import ModelNotFoundError
from fleetvision.models.spec import TASKS

logger = logging.getLogger(__name__)

NEEDS_SPARK = True


def needs_spark(args: argparse.Namespace) -> bool:
    """``--starter`` only talks to MLflow: no Spark session (and no JVM start) for it."""
    return not getattr(args, "starter", False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", choices=TASKS)
    parser.add_argument("--version", help="the candidate's registered version")
    parser.add_argument(
        "--starter",
        action="store_true",
        help="register the shipped starter models (paths.starter_models) as champions where a task has none",
    )


def promote_candidate(config: Config, task: str, version: str, eval_set: EvalSet) -> PromotionDecision:
    """Evaluate candidate and champion on ``eval_set``; move the alias if the candidate is as good.

    Returns:
        The decision (the alias has moved iff ``decision.promote``).

    Raises:
        ModelNotFoundError: The candidate version does not exist.
        ValueError: A configured metric does not exist, or an input size mismatch.
    """
    import mlflow

    from fleetvision.models.registration import set_champion
    from fleetvision.models.resolve import resolve_model_ref
    from fleetvision.tracking import configure_mlflow

    candidate = resolve_model_ref(config, task, version=version)
    try:
        champion = resolve_model_ref(config, task, alias=config.mlflow.model_alias)
    except ModelNotFoundError:
        champion = None
    if champion is not None and champion.version == candidate.version:
        logger.info("%s version %s is already @%s", candidate.name, version, config.mlflow.model_alias)
        return PromotionDecision(task, candidate.version, champion.version, ())
    # decoded once for both when they read the same input size (the decode is most of an evaluation's cost)
    decoded = decode_eval_set(eval_set, candidate.input_size, config.scoring.max_image_pixels)
    cand_eval = evaluate_ref(config, candidate, eval_set, decoded=decoded)
    champ_eval = None
    if champion is not None:
        same_size = champion.input_size == candidate.input_size
        champ_eval = evaluate_ref(config, champion, eval_set, decoded=decoded if same_size else None)
    decision = decide(
        task,
        cand_eval.metrics,
        champ_eval.metrics if champ_eval else None,
        config.promote,
        candidate_version=candidate.version,
        champion_version=champion.version if champion else None,
    )
    configure_mlflow(config)
    with mlflow.start_run(run_name=f"promote-{task}-v{candidate.version}"):
        mlflow.set_tags(
            {
                "fleetvision.job": "promote",
                "fleetvision.task": task,
                "fleetvision.decision": "promoted" if decision.promote else "refused",
                "fleetvision.eval_fingerprint": eval_set.fingerprint,
            }
        )
        mlflow.log_params(
            {"candidate_version": candidate.version, "champion_version": champion.version if champion else "none"}
        )
        mlflow.log_metrics({f"candidate.{k}": v for k, v in cand_eval.metrics.items()})
        if champ_eval is not None:
            mlflow.log_metrics({f"champion.{k}": v for k, v in champ_eval.metrics.items()})
        mlflow.log_text(decision.message(), "decision.txt")
    if decision.promote:
        set_champion(config, task, candidate.version)
    return decision


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 promoted (or already champion), 1 refused, 2 bad version or no evaluation set."""
    if getattr(args, "starter", False):
        from fleetvision.models.starter import register_starter_models

        registered = register_starter_models(config)
        for task, version in sorted(registered.items()):
            logger.info("starter model %s registered as version %s, now @%s", task, version, config.mlflow.model_alias)
        if not registered:
            logger.info("every task already has a @%s: starter models not registered", config.mlflow.model_alias)
        return ExitCode.OK
    if args.task is None or args.version is None:
        logger.error("fleetvision promote: give a task and --version, or --starter")
        return ExitCode.USAGE
    if spark is None:
        raise ValueError("fleetvision promote needs a SparkSession")
    from fleetvision.feed import load_eval_set

    try:
        eval_set = load_eval_set(spark, config)
        decision = promote_candidate(config, args.task, str(args.version), eval_set)
    except (ModelNotFoundError, EmptyDatasetError, ValueError) as e:
        logger.error("fleetvision promote: %s", e)
        return ExitCode.USAGE
    if decision.promote:
        logger.info(
            "%s\n-> @%s now points at version %s",
            decision.message(),
            config.mlflow.model_alias,
            decision.candidate_version,
        )
        return ExitCode.OK
    short = ", ".join(dict.fromkeys(c.metric for c in decision.shortfalls))
    logger.error("%s\n-> not promoted: %s fell short", decision.message(), short)
    return ExitCode.FAILED
