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
import json
import logging
import shlex
from pathlib import Path
from typing import Any

import numpy as np
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


def member_folder(path: Path, task: str) -> Path:
    """The folder holding a member's head: ``path/<task>`` when it is a model set, else ``path``.

    Raises:
        SoupError: Neither holds ``head.keras``, ``backbone.json`` and ``metrics.json``.
    """
    from fleetvision.models.pretrained import BACKBONE_FILE, CARD_FILE, HEAD_FILE

    for folder in (path / task, path):
        if (folder / HEAD_FILE).is_file():
            missing = [f for f in (BACKBONE_FILE, CARD_FILE) if not (folder / f).is_file()]
            if missing:
                raise SoupError(f"member {folder} has a {HEAD_FILE} but no {', '.join(missing)}")
            return folder
    raise SoupError(
        f"member {path}: no {HEAD_FILE} in it or in {path / task} (a soup averages pretrained-backbone "
        "heads; a whole model.keras is not one)"
    )


def read_members(paths: list[Path], task: str) -> tuple[list[Path], list[Any], list[dict[str, Any]], dict[str, Any]]:
    """The members' folders, heads, model cards and their one backbone identity (``backbone.json``).

    Raises:
        SoupError: A member is missing, of another task, or on another backbone or input size.
    """
    import keras

    from fleetvision.models.pretrained import BACKBONE_FILE, CARD_FILE, HEAD_FILE

    folders = [member_folder(p, task) for p in paths]
    backbones = [json.loads((f / BACKBONE_FILE).read_text()) for f in folders]
    if any(b != backbones[0] for b in backbones):
        raise SoupError(f"the members are heads on different backbones: {backbones}")
    cards = [json.loads((f / CARD_FILE).read_text()) for f in folders]
    for folder, card in zip(folders, cards, strict=True):
        if card.get("task") != task or not isinstance(card.get("spec"), dict):
            raise SoupError(
                f"member {folder}: its model card is not a trained {task} head's (task "
                f"{card.get('task')!r}, spec {'present' if 'spec' in card else 'missing'})"
            )
    heads = [keras.saving.load_model(f / HEAD_FILE, compile=False) for f in folders]
    return folders, heads, cards, backbones[0]


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
    import mlflow

    from fleetvision.feed import EmptyDatasetError, load_eval_set
    from fleetvision.models.efficientnet_lite import converted_weights
    from fleetvision.models.frozen_eval import decode_eval_set, evaluate_as_scored
    from fleetvision.models.pretrained import CARD_FILE, MODEL_FILE, load_starter_task_model, write_head
    from fleetvision.models.registration import log_task_model
    from fleetvision.models.serving import predict_fn_for
    from fleetvision.models.training_run import log_evaluations
    from fleetvision.taxonomy import load_taxonomy
    from fleetvision.tracking import configure_mlflow

    if spark is None and not args.no_eval:
        raise ValueError("fleetvision soup needs a SparkSession to evaluate (or --no-eval)")
    task = args.task
    try:
        folders, heads, cards, backbone = read_members(list(args.members), task)
        check_recipe([c["spec"] for c in cards], heads)
        soup = soup_heads(heads)
        installed = converted_weights(backbone["variant"]).digest
    except (SoupError, OSError, ValueError, KeyError) as e:
        logger.error("fleetvision soup: %s", e)
        return ExitCode.USAGE
    if installed != backbone["weights_digest"]:
        logger.error(
            "fleetvision soup: the members were trained on %s weights %s, the installed package holds %s: "
            "install the pinned package version",
            backbone["variant"],
            backbone["weights_digest"],
            installed,
        )
        return ExitCode.USAGE
    out = args.out / task
    if any(out.resolve() == f.resolve() for f in folders):
        logger.error("fleetvision soup: --out %s would overwrite a member: write the soup to a folder of its own", out)
        return ExitCode.USAGE
    for stale in (CARD_FILE, MODEL_FILE):  # what was here before would describe, or be read as, another model
        (out / stale).unlink(missing_ok=True)
    write_head(soup, out, backbone)
    model = load_starter_task_model(out, task)  # the soup on the installed backbone, as scoring will load it
    size = int(backbone["input_size"])
    taxonomy = load_taxonomy()
    eval_set, evaluations = None, {}
    example = np.zeros((1, size, size, 3), dtype=np.uint8)
    if not args.no_eval:
        try:
            eval_set = load_eval_set(spark, config)
        except EmptyDatasetError as e:
            logger.warning("no frozen evaluation set, the soup is not evaluated: %s", e)
    command = command_line(args)
    configure_mlflow(config)
    with mlflow.start_run(run_name=f"soup-{task}") as run:
        mlflow.set_tags({"fleetvision.job": "soup", "fleetvision.tasks": task, "fleetvision.command": command})
        mlflow.log_params(
            {
                "members": len(folders),
                "member_seeds": ",".join(str(c["spec"].get("seed")) for c in cards),
                "member_runs": ",".join(str(c.get("mlflow_run_id")) for c in cards),
                "backbone": f"{backbone['variant']}:{backbone['weights_digest']}",
                "input_size": size,
            }
        )
        if eval_set is not None:
            decoded = decode_eval_set(eval_set, size, config.scoring.max_image_pixels)
            if len(decoded[0]):
                example = decoded[0][:1]
            predictors = {task: predict_fn_for(model, size)}
            evaluations = evaluate_as_scored(predictors, eval_set, taxonomy, config, size=size, decoded=decoded)
            log_evaluations(evaluations, eval_set)
            mlflow.set_tag("fleetvision.eval_fingerprint", eval_set.fingerprint)
        metrics = evaluations[task].metrics if task in evaluations else {}
        _, version = log_task_model(
            model,
            config,
            task,
            example=example,
            register=args.register,
            source="soup",
            taxonomy_version=taxonomy.version,
            metrics=metrics or None,
            extra_tags={"fleetvision.train_run_id": run.info.run_id},
        )
        card = soup_card(task, cards, folders, metrics, eval_set, command, run.info.run_id)
        (out / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    evaluated = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "not evaluated"
    logger.info(
        "soup of %d %s heads (seeds %s) -> %s (run %s%s): %s",
        len(folders),
        task,
        ",".join(str(c["spec"].get("seed")) for c in cards),
        out,
        run.info.run_id,
        f", version {version}" if version else "",
        evaluated,
    )
    return ExitCode.OK
