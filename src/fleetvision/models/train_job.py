"""``fleetvision train <task|all> [--quick] [--epochs N] [--register] [--out DIR]``.

Trains the task (or all configured tasks together, on one shared backbone) on the
``training_images`` rows of ``models.training_dataset`` (split ``train``), evaluates on the frozen
set, and logs one model per task to MLflow; ``--register`` also registers each as a new version of
``fleetvision-<task>`` (promotion to champion is a separate step: ``fleetvision promote``).
``--out DIR`` saves ``DIR/<task>/model.keras`` + ``metrics.json`` (how the starter models are made).
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from pyspark.sql import SparkSession

from fleetvision.cli import common_words
from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.feed import EmptyDatasetError
from fleetvision.models.spec import TASKS, TrainSpec, parse_tasks

logger = logging.getLogger(__name__)

NEEDS_SPARK = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", help=f"one of {', '.join(TASKS)}, or 'all' (trained together)")
    parser.add_argument("--quick", action="store_true", help="tiny model, at most 64 rows, 1 epoch (smoke runs)")
    parser.add_argument("--epochs", type=int, default=None, help="overrides models.epochs")
    parser.add_argument("--register", action="store_true", help="register each model as fleetvision-<task>")
    parser.add_argument("--out", type=Path, default=None, help="also save DIR/<task>/model.keras + metrics.json")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation on the frozen set")
    parser.add_argument(
        "--init-from",
        default=None,
        help="start from this model's weights (.keras file, MLflow URI, or a folder of <task>/head.keras "
        "or <task>/model.keras, as the starter models): backbone and same-named heads",
    )


def command_line(args: argparse.Namespace) -> str:
    """The ``fleetvision train`` command that reproduces this run (recorded with the models)."""
    parts = ["fleetvision", "train", args.task, *common_words(args)]
    if args.quick:
        parts.append("--quick")
    if args.epochs is not None:
        parts += ["--epochs", str(args.epochs)]
    if args.register:
        parts.append("--register")
    if args.out is not None:
        parts += ["--out", str(args.out)]
    if args.no_eval:
        parts.append("--no-eval")
    if getattr(args, "init_from", None):
        parts += ["--init-from", str(args.init_from)]
    return " ".join(shlex.quote(p) for p in parts)


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 on success, 2 on bad arguments or no training rows."""
    if spark is None:
        raise ValueError("fleetvision train needs a SparkSession")
    from fleetvision.models.training_run import train_models

    try:
        tasks = parse_tasks(args.task, config.models.tasks)
        spec = TrainSpec.from_config(
            config, tasks, epochs=args.epochs, quick=args.quick, init_from=getattr(args, "init_from", None)
        )
    except ValueError as e:
        logger.error("fleetvision train: %s", e)
        return ExitCode.USAGE
    init = spec.init_from
    if init and "://" not in init and not init.startswith(("models:/", "runs:/")) and not Path(init).exists():
        logger.error("fleetvision train: --init-from: no model file or folder %s", init)
        return ExitCode.USAGE
    command = command_line(args)
    try:
        result = train_models(
            spark, config, spec, register=args.register, out_dir=args.out, evaluate=not args.no_eval, command=command
        )
    except EmptyDatasetError as e:
        logger.error("fleetvision train: %s", e)
        return ExitCode.USAGE
    left_out = ""
    if result.skipped:
        left_out = f"; not trained (no labelled rows): {'+'.join(result.skipped)}"
    if result.carried:
        left_out += f" ({'+'.join(result.carried)} copied to --out from --init-from)"
    logger.info(
        "trained %s in %.0f s (run %s); registered versions: %s%s",
        "+".join(result.trained),
        result.train_seconds,
        result.run_id,
        result.versions or "none (use --register)",
        left_out,
    )
    return ExitCode.OK
