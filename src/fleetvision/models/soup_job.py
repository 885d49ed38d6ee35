"""``fleetvision soup <task> --members DIR DIR [...] --out DIR [--register] [--no-eval]``.

Averages the heads of several training runs of one recipe (``train ... --set models.seed=N``, each with
``--out``) into one head (:mod:`fleetvision.models.head_soup`), saves it to ``--out`` as a model folder
(``<out>/<task>/head.keras``, ``backbone.json`` and a model card ``metrics.json`` that names the
members), evaluates it on the frozen set as ``train`` does, and logs it to MLflow (``--register``: a
new version of ``fleetvision-<task>``, tagged ``source=soup``).

A member is a folder that ``train --out`` wrote (``DIR/<task>/head.keras``) or the task's folder
itself (``DIR/head.keras``). Every member must be a head on the same installed backbone, trained by
the same recipe apart from its seed: the job refuses anything else and says which field differs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from fleetvision.cli import common_words
from fleetvision.config import Config
from fleetvision.exit_codes import ExitCode
from fleetvision.models.head_soup import SoupError, check_recipe, soup_heads
from fleetvision.models.spec import TASKS

logger = logging.getLogger(__name__)


def needs_spark(args: argparse.Namespace) -> bool:
    """Spark reads the frozen evaluation set; ``--no-eval`` needs none."""
    return not args.no_eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=TASKS)
    parser.add_argument(
        "--members",
        type=Path,
        nargs="+",
        required=True,
        help="folders of the runs to average: DIR/<task>/head.keras (train --out) or DIR/head.keras",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="save OUT/<task>/head.keras + backbone.json + metrics.json"
    )
    parser.add_argument("--register", action="store_true", help="register the soup as fleetvision-<task>")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation on the frozen set")


def soup_card(
    task: str,
    cards: list[dict[str, Any]],
    folders: list[Path],
    metrics: dict[str, float],
    eval_set: Any,
    command: str,
    run_id: str,
) -> dict[str, Any]:
    """The soup's model card: the members' recipe (``spec.seed`` lists their seeds), its own metrics, and
    each member's folder, seed, run, command and metrics."""
    spec = {**cards[0]["spec"], "seed": [c["spec"].get("seed") for c in cards]}
    return {
        "task": task,
        "metrics": metrics,
        "eval_set": eval_set.description if eval_set is not None else None,
        "eval_fingerprint": eval_set.fingerprint if eval_set is not None else None,
        "train_rows": cards[0].get("train_rows"),
        "trained_with": cards[0].get("trained_with"),
        "spec": spec,
        "command": command,
        "mlflow_run_id": run_id,
        "soup_of": [
            {
                "folder": str(folder),
                "seed": card["spec"].get("seed"),
                "mlflow_run_id": card.get("mlflow_run_id"),
                "command": card.get("command"),
                "metrics": card.get("metrics", {}),
            }
            for folder, card in zip(folders, cards, strict=True)
        ],
    }


def command_line(args: argparse.Namespace) -> str:
    """The ``fleetvision soup`` command that reproduces this one (recorded in the card and the run)."""
    parts = ["fleetvision", "soup", args.task, *common_words(args)]
    parts += ["--members", *map(str, args.members), "--out", str(args.out)]
    parts += ["--register"] if args.register else []
    parts += ["--no-eval"] if args.no_eval else []
    return " ".join(shlex.quote(p) for p in parts)


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 on success, 2 when the members cannot make a soup or the backbone is not installed."""
    from fleetvision.models.head_release import read_heads, release_head, release_problem

    task = args.task
    try:
        folders, heads, cards, backbone = read_heads(list(args.members), task)
        check_recipe([c["spec"] for c in cards], heads)
        soup = soup_heads(heads)
        problem = release_problem(args.out, task, folders, backbone)
    except (SoupError, OSError, ValueError, KeyError) as e:
        problem = str(e)
    if problem:
        logger.error("fleetvision soup: %s", problem)
        return ExitCode.USAGE
    command = command_line(args)
    released = release_head(
        spark,
        config,
        task,
        soup,
        backbone,
        out=args.out,
        evaluate=not args.no_eval,
        register=args.register,
        job="soup",
        command=command,
        params={
            "members": len(folders),
            "member_seeds": ",".join(str(c["spec"].get("seed")) for c in cards),
            "member_runs": ",".join(str(c.get("mlflow_run_id")) for c in cards),
        },
        card=lambda metrics, eval_set, run_id: soup_card(task, cards, folders, metrics, eval_set, command, run_id),
    )
    evaluated = ", ".join(f"{k}={v:.4f}" for k, v in sorted(released.metrics.items())) or "not evaluated"
    logger.info(
        "soup of %d %s heads (seeds %s) -> %s (run %s%s): %s",
        len(folders),
        task,
        ",".join(str(c["spec"].get("seed")) for c in cards),
        released.folder,
        released.run_id,
        f", version {released.version}" if released.version else "",
        evaluated,
    )
    return ExitCode.OK
