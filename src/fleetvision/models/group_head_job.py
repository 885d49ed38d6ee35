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


def head_roles(args: argparse.Namespace) -> dict[str, Path]:
    """The heads to join by role, in :func:`~fleetvision.models.group_head.with_group_head`'s order:
    ``view_head``, ``group_head`` and, with ``--cabin``, ``cabin_head``."""
    roles = {"view_head": args.views, "group_head": args.groups}
    return roles | ({"cabin_head": args.cabin} if args.cabin is not None else {})


def group_head_card(roles: list[str], cards: list[dict[str, Any]], folders: list[Path], metrics: dict[str, float],
                    eval_set: Any, command: str, run_id: str) -> dict[str, Any]:
    """The joined model's card: the view head's recipe and training rows, its own metrics, and every head
    under its role (``roles``, in the order of ``cards`` and ``folders``)."""
    views = cards[0]
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
    } | {role: _described(folder, card) for role, folder, card in zip(roles, folders, cards, strict=True)}


def command_line(args: argparse.Namespace) -> str:
    """The ``fleetvision group-head`` command that reproduces this one (recorded in the card and the run)."""
    parts = ["fleetvision", "group-head", *common_words(args)]
    flags = {"view_head": "--views", "group_head": "--groups", "cabin_head": "--cabin"}
    parts += [word for role, folder in head_roles(args).items() for word in (flags[role], str(folder))]
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
        roles = head_roles(args)
        folders, heads, cards, backbone = read_heads(list(roles.values()), TASK)
        joined = with_group_head(*heads[:2], load_taxonomy(), *heads[2:])
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
        params={role: str(folder) for role, folder in zip(roles, folders, strict=True)}
        | {f"{role}_run": str(card.get("mlflow_run_id")) for role, card in zip(roles, cards, strict=True)},
        card=lambda metrics, eval_set, run_id: group_head_card(list(roles), cards, folders, metrics, eval_set,
                                                               command, run_id),
    )
    evaluated = ", ".join(f"{k}={v:.4f}" for k, v in sorted(released.metrics.items())) or "not evaluated"
    joined_from = ", ".join(f"{role} {folder}" for role, folder in zip(roles, folders, strict=True))
    logger.info("angle model joined from %s -> %s (run %s%s): %s", joined_from, released.folder, released.run_id,
                f", version {released.version}" if released.version else "", evaluated)
    return ExitCode.OK
