"""``fleetvision group-head --views DIR --groups DIR [--cabin DIR] --out DIR [--register] [--no-eval]``.

Joins two trained angle heads on the same backbone into one angle model
(:func:`fleetvision.models.group_head.with_group_head`): ``--views`` gives the angle softmax (view, flank
and class within each shot group), ``--groups`` the shot group (``angle_group``: its softmax summed per
group), and scoring takes each from its own head (:mod:`fleetvision.scoring.shot_groups`). Typically
``--views`` is a soup of a recipe that is best at views and flanks and ``--groups`` a soup of one trained
with close-ups of car parts (``docs/models.md``, *The shot group from a head of its own*). With ``--cabin``,
the probability of an interior comes from that head instead and ``--groups`` splits the rest between
exterior and detail (a head trained with path-traced cabins; *Path-traced interiors*).

Either folder is one that ``train --out`` or ``soup --out`` wrote (``DIR/angle/head.keras``) or the task's
folder itself. The result is saved to ``--out`` as a model folder, evaluated on the frozen set as
``train`` does, and logged to MLflow (``--register``: a new version of ``fleetvision-angle``, tagged
``source=group-head``). Its model card keeps the view head's recipe (``spec``) and names every head.
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
from fleetvision.models.head_soup import SoupError

logger = logging.getLogger(__name__)

TASK = "angle"


def needs_spark(args: argparse.Namespace) -> bool:
    """Spark reads the frozen evaluation set; ``--no-eval`` needs none."""
    return not args.no_eval


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--views", type=Path, required=True,
                        help="the angle head whose softmax is kept: DIR/angle/head.keras or DIR/head.keras")
    parser.add_argument("--groups", type=Path, required=True,
                        help="the angle head that decides the shot group (exterior, interior, detail)")
    parser.add_argument("--cabin", type=Path, default=None,
                        help="the angle head that says whether a photo is an interior (--groups then splits the "
                             "rest between exterior and detail)")
    parser.add_argument("--out", type=Path, required=True,
                        help="save OUT/angle/head.keras + backbone.json + metrics.json")
    parser.add_argument("--register", action="store_true", help="register the result as fleetvision-angle")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation on the frozen set")


def _described(folder: Path, card: dict[str, Any]) -> dict[str, Any]:
    """One joined head as its own card describes it (a soup's with its members)."""
    keys = ("command", "mlflow_run_id", "metrics", "spec", "eval_fingerprint", "train_rows", "soup_of")
    return {key: card[key] for key in keys if key in card} | {"folder": str(folder)}


def group_head_card(cards: list[dict[str, Any]], folders: list[Path], metrics: dict[str, float], eval_set: Any,
                    command: str, run_id: str) -> dict[str, Any]:
    """The joined model's card: the view head's recipe and training rows, its own metrics, and every head."""
    views, groups = cards[0], cards[1]
    return {
        "task": TASK,
        "metrics": metrics,
        "eval_set": eval_set.description if eval_set is not None else None,
        "eval_fingerprint": eval_set.fingerprint if eval_set is not None else None,
        "train_rows": views.get("train_rows"),
        "trained_with": views.get("trained_with"),
        "spec": views["spec"],
        "command": command,
        "mlflow_run_id": run_id,
        "view_head": _described(folders[0], views),
        "group_head": _described(folders[1], groups),
    } | ({"cabin_head": _described(folders[2], cards[2])} if len(cards) > 2 else {})


def command_line(args: argparse.Namespace) -> str:
    """The ``fleetvision group-head`` command that reproduces this one (recorded in the card and the run)."""
    parts = ["fleetvision", "group-head", *common_words(args)]
    parts += ["--views", str(args.views), "--groups", str(args.groups)]
    parts += ["--cabin", str(args.cabin)] if args.cabin is not None else []
    parts += ["--out", str(args.out)]
    parts += ["--register"] if args.register else []
    parts += ["--no-eval"] if args.no_eval else []
    return " ".join(shlex.quote(p) for p in parts)


def main(spark: SparkSession | None, config: Config, args: argparse.Namespace) -> int:
    """Run the job; 0 on success, 2 when the heads cannot be joined or the backbone is not installed."""
    from fleetvision.models.group_head import GroupHeadError, with_group_head
    from fleetvision.models.head_release import read_heads, release_head, release_problem
    from fleetvision.taxonomy import load_taxonomy

    try:
        inputs = [args.views, args.groups] + ([args.cabin] if args.cabin is not None else [])
        folders, heads, cards, backbone = read_heads(inputs, TASK)
        joined = with_group_head(heads[0], heads[1], load_taxonomy(), heads[2] if len(heads) > 2 else None)
        problem = release_problem(args.out, TASK, folders, backbone)
    except (SoupError, GroupHeadError, OSError, ValueError, KeyError) as e:
        problem = str(e)
    if problem:
        logger.error("fleetvision group-head: %s", problem)
        return ExitCode.USAGE
    command = command_line(args)
    released = release_head(
        spark,
        config,
        TASK,
        joined,
        backbone,
        out=args.out,
        evaluate=not args.no_eval,
        register=args.register,
        job="group-head",
        command=command,
        params={
            "view_head": str(folders[0]),
            "group_head": str(folders[1]),
            "view_head_run": str(cards[0].get("mlflow_run_id")),
            "group_head_run": str(cards[1].get("mlflow_run_id")),
        } | ({"cabin_head": str(folders[2]), "cabin_head_run": str(cards[2].get("mlflow_run_id"))}
             if len(folders) > 2 else {}),
        card=lambda metrics, eval_set, run_id: group_head_card(cards, folders, metrics, eval_set, command, run_id),
    )
    evaluated = ", ".join(f"{k}={v:.4f}" for k, v in sorted(released.metrics.items())) or "not evaluated"
    logger.info("angle views from %s, shot groups from %s%s -> %s (run %s%s): %s", folders[0], folders[1],
                f" (interiors from {folders[2]})" if len(folders) > 2 else "", released.folder, released.run_id,
                f", version {released.version}" if released.version else "", evaluated)
    return ExitCode.OK
