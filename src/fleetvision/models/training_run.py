"""One training run: feed -> fit -> evaluate on the frozen set -> log (and register) each task's model.

The tasks of a run share one backbone and are trained together in one pass over the data (one
multi-head model), then cut into one model per task, each logged and registered on its own as
``fleetvision-<task>``. Training a single task is the same code with one head.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from pyspark.sql import SparkSession

from fleetvision.config import Config
from fleetvision.feed import EmptyDatasetError, EvalSet, labelled_counts, load_eval_set, tf_examples, training_frame
from fleetvision.models.architecture import (
    build_multitask_model,
    initialise_from_models,
    load_init_models,
    task_model,
)
from fleetvision.models.calibration import apply_body_prior, calibrate_binary_heads
from fleetvision.models.eval_metrics import TaskEvaluation, write_evaluation
from fleetvision.models.feature_training import cache_key, cached_features, feature_dataset
from fleetvision.models.fit import fit
from fleetvision.models.frozen_eval import decode_eval_set, evaluate_as_scored
from fleetvision.models.pipeline import AUGMENTATION, training_dataset
from fleetvision.models.pretrained import (
    BACKBONE_FILE,
    CARD_FILE,
    HEAD_FILE,
    TOP_INPUT,
    PretrainedModel,
    backbone_top,
    build_pretrained_model,
    compose_task_model,
    feature_maps_for,
    freeze,
    is_pretrained,
    save_head,
    weights_fingerprint,
)
from fleetvision.models.registration import log_task_model
from fleetvision.models.serving import fused_predictors, per_task, predict_fn_for
from fleetvision.models.spec import TrainSpec, feature_passes_for
from fleetvision.models.starter import STARTER_FILE, save_task_model
from fleetvision.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        run_id: The MLflow run.
        train_seconds: Wall time of ``fit`` (data feed included).
        total_seconds: Wall time of the whole run (feed, fit, evaluation, logging).
        n_train: Training rows.
        history: Keras history.
        metrics: Task -> evaluation metrics on the frozen set (empty when there was none).
        versions: Task -> registered version (when registering).
        saved: Task -> saved ``.keras`` path (when ``out_dir`` was given).
        trained: The tasks trained and logged.
        skipped: Tasks asked for but left out: no training row labels them (:func:`labelled_tasks_only`).
        carried: Skipped tasks copied unchanged from the ``--init-from`` folder into ``out_dir``
            (:func:`carry_over`), so the folder stays a whole model set.
    """

    run_id: str
    train_seconds: float
    total_seconds: float
    n_train: int
    history: dict[str, list[float]]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    saved: dict[str, str] = field(default_factory=dict)
    trained: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()


def log_evaluations(evaluations: Mapping[str, TaskEvaluation], eval_set: EvalSet, prefix: str = "eval") -> None:
    """Log each task's evaluation to the active MLflow run: ``<prefix>.<task>.<metric>`` metrics and its
    files (metrics, per-class table, confusion matrix) under ``<prefix>/<task>``."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        for task, evaluation in evaluations.items():
            mlflow.log_metrics({f"{prefix}.{task}.{k}": v for k, v in evaluation.metrics.items()})
            out = Path(tmp) / task
            write_evaluation(
                evaluation, out, {"eval_set": eval_set.description, "eval_fingerprint": eval_set.fingerprint}
            )
            mlflow.log_artifacts(str(out), artifact_path=f"{prefix}/{task}")


def labelled_tasks_only(spec: TrainSpec, counts: Mapping[str, int]) -> tuple[TrainSpec, tuple[str, ...]]:
    """``spec`` without the tasks that have no labelled training row, and those tasks.

    A run on imported labels (angle and body, say) trains and logs only the heads its rows teach: the
    others would train on nothing (every loss weight 0) and be logged as new versions identical to where
    they started, or, with ``models.finetune_blocks``, go stale on the fine-tuned backbone. Their
    current models stay in service. When no task has a label, ``spec`` is returned as it is (the run
    then finds no rows and says so).
    """
    skipped = tuple(t for t in spec.tasks if counts.get(t, 0) == 0)
    if not skipped or len(skipped) == len(spec.tasks):
        return spec, ()
    kept = tuple(t for t in spec.tasks if t not in skipped)
    logger.warning(
        "no labelled training row for %s: not trained or logged in this run (their current models stay); "
        "training %s",
        ", ".join(skipped),
        "+".join(kept),
    )
    return replace(spec, tasks=kept), skipped


def carry_over(init_from: str | None, out_dir: Path, tasks: Sequence[str]) -> tuple[str, ...]:
    """Copy ``tasks`` unchanged from the ``--init-from`` folder into ``out_dir``; the tasks copied.

    A run that leaves tasks out (:func:`labelled_tasks_only`) still writes a whole model set to
    ``--out``: what it trained, and for the rest the models it started from, as they were (their own
    ``metrics.json`` with them). ``--init-from`` a single model or an MLflow URI has no task folders to
    copy; a task the folder lacks is left out (both logged).
    """
    if not tasks:
        return ()
    source = Path(init_from).expanduser() if init_from else None  # a model URI or file is no folder
    copied = []
    for task in tasks:
        folder = source / task if source is not None and source.is_dir() else None
        if folder is None or not any((folder / f).is_file() for f in (HEAD_FILE, STARTER_FILE)):
            continue
        if folder.resolve() != (out_dir / task).resolve():
            shutil.rmtree(out_dir / task, ignore_errors=True)
            shutil.copytree(folder, out_dir / task)
        copied.append(task)
    if copied:
        logger.info("--out %s: %s copied unchanged from --init-from %s", out_dir, ", ".join(copied), init_from)
    earlier = [t for t in tasks if t not in copied and (out_dir / t).is_dir()]
    missing = [t for t in tasks if t not in copied and t not in earlier]
    if earlier:
        logger.warning("--out %s: %s not trained in this run; the folder keeps what an earlier run saved there",
                       out_dir, ", ".join(earlier))
    if missing:
        logger.warning("--out %s holds no %s: not trained in this run, and no --init-from folder of them to copy",
                       out_dir, ", ".join(missing))
    return tuple(copied)


def train_models(
    spark: SparkSession,
    config: Config,
    spec: TrainSpec,
    *,
    register: bool = False,
    out_dir: Path | None = None,
    evaluate: bool = True,
    command: str = "",
    run_name: str | None = None,
    validate: bool = True,
) -> TrainResult:
    """Train the tasks of ``spec`` together and log one model per task to MLflow.

    Args:
        spark: The session (reads ``training_images``).
        config: The job configuration.
        spec: The training plan.
        register: Register each task's model as a new version of ``fleetvision-<task>``.
        out_dir: Also save ``<out_dir>/<task>/model.keras`` and ``metrics.json`` (starter models).
        evaluate: Evaluate on the frozen set (``models.eval_dataset``/``eval_split``) when it exists.
        command: The command line, recorded with the run and the saved metrics.
        run_name: MLflow run name (default ``train-<tasks>``).
        validate: Score the ``val`` split (when it has rows) after every epoch (``val_*`` metrics).

    Returns:
        The :class:`TrainResult`.

    Raises:
        EmptyDatasetError: No training rows.
        TableContractError: ``training_images`` is missing or malformed.
    """
    import mlflow

    from fleetvision.tracking import configure_mlflow

    started = time.perf_counter()
    taxonomy = load_taxonomy()
    configure_mlflow(config)
    train_frame = training_frame(
        spark,
        config,
        splits=("train",),
        dataset_prefix=spec.training_dataset,
        max_rows=spec.max_train_rows,
        seed=spec.seed,
        tasks=spec.tasks,
        extra_datasets=spec.extra_datasets,
        extra_max_rows=spec.extra_max_rows,
    )
    spec, skipped = labelled_tasks_only(spec, labelled_counts(train_frame, spec.tasks))
    val_frame = (
        training_frame(spark, config, splits=("val",), dataset_prefix=spec.training_dataset, tasks=spec.tasks)
        if validate
        else None
    )
    eval_set: EvalSet | None = None
    if evaluate:
        try:
            eval_set = load_eval_set(spark, config, dataset_prefix=spec.eval_dataset, split=spec.eval_split)
        except EmptyDatasetError as e:
            logger.warning("no frozen evaluation set, training without evaluation: %s", e)

    with mlflow.start_run(run_name=run_name or f"train-{'-'.join(spec.tasks)}") as run:
        mlflow.set_tags(
            {
                "fleetvision.job": "train",
                "fleetvision.tasks": ",".join(spec.tasks),
                "fleetvision.command": command,
                "fleetvision.quick": str(spec.quick),
                "fleetvision.skipped_tasks": ",".join(skipped),
            }
        )
        mlflow.log_params(
            {
                **spec.params(),
                "taxonomy_version": taxonomy.version,
                "platform": platform.platform(),
                "python": platform.python_version(),
            }
        )
        try:
            with contextlib.ExitStack() as stack:
                source, n_train = stack.enter_context(tf_examples(spark, train_frame, config))
                steps = math.ceil(n_train / spec.batch_size)
                # the row count is known (Spark counted it): tell tf.data, so Keras knows the epoch length
                dataset = training_dataset(source, spec, taxonomy.flip_permutation).apply(
                    tf.data.experimental.assert_cardinality(steps)
                )
                validation, n_val = None, 0
                if val_frame is not None and val_frame.limit(1).count():
                    val_source, n_val = stack.enter_context(tf_examples(spark, val_frame, config))
                    validation = training_dataset(val_source, spec, taxonomy.flip_permutation, augment=False).apply(
                        tf.data.experimental.assert_cardinality(math.ceil(n_val / spec.batch_size))
                    )
                pretrained: PretrainedModel | None = None
                if is_pretrained(spec.backbone):
                    pretrained = build_pretrained_model(spec, taxonomy.num_classes, len(taxonomy.body_types))
                    model = pretrained.model
                    mlflow.log_param("backbone_id", pretrained.backbone_id)
                    # `auto` resolved on the counted rows; the model card's spec holds the number used
                    spec = replace(spec, feature_passes=feature_passes_for(spec.feature_passes, n_train))
                    mlflow.log_param("feature_passes_used", spec.feature_passes)
                else:
                    model = build_multitask_model(spec, taxonomy.num_classes, len(taxonomy.body_types))
                if spec.init_from:
                    copied = initialise_from_models(model, load_init_models(spec.init_from))
                    mlflow.log_param("init_layers", ",".join(copied))
                mlflow.log_params(
                    {"n_train": n_train, "n_val": n_val, "steps_per_epoch": steps, "params": model.count_params()}
                )
                logger.info(
                    "training %s on %d rows (%d validation): %d epochs x %d steps, %d parameters",
                    "+".join(spec.tasks),
                    n_train,
                    n_val,
                    spec.epochs,
                    steps,
                    model.count_params(),
                )
                fit_started = time.perf_counter()
                if pretrained is not None:
                    history = _fit_heads_on_features(pretrained, spec, config, train_frame, dataset, validation)
                else:
                    history = fit(model, spec, dataset, steps, validation=validation)
                train_seconds = time.perf_counter() - fit_started
                if validation is not None:
                    calibration = calibrate_binary_heads(model, validation, spec, config)
                    if calibration:
                        mlflow.log_params(calibration)
                if "body" in spec.outputs:
                    prior_params = apply_body_prior(model, train_frame, config, taxonomy.body_types)
                    if prior_params:
                        mlflow.log_params(prior_params)
        except EmptyDatasetError as e:
            raise EmptyDatasetError(
                f"no training rows in {config.tables.database}.training_images with dataset starting "
                f"{spec.training_dataset!r} and split 'train'"
            ) from e
        mlflow.log_metric("train_seconds", train_seconds)
        logger.info("trained in %.1f s", train_seconds)

        if pretrained is not None:
            models = {t: compose_task_model(pretrained.backbone, pretrained.heads[t], t) for t in spec.tasks}
        else:
            models = {
                task: task_model(model, task, body_views=spec.body_views, body_zoom=spec.body_zoom)
                for task in spec.tasks
            }
        metrics: dict[str, dict[str, float]] = {}
        example = np.zeros((1, spec.input_size, spec.input_size, 3), dtype=np.uint8)
        if eval_set is not None:
            decoded = decode_eval_set(eval_set, spec.input_size, config.scoring.max_image_pixels)
            if len(decoded[0]):
                example = decoded[0][:1]
            if pretrained is not None:  # every head on one backbone pass, as the nightly job runs them
                predictors = per_task(fused_predictors(models, spec.input_size))
            else:
                predictors = {t: predict_fn_for(m, spec.input_size) for t, m in models.items()}
            evaluations = evaluate_as_scored(predictors, eval_set, taxonomy, config, size=spec.input_size,
                                             decoded=decoded)
            log_evaluations(evaluations, eval_set)
            metrics = {t: e.metrics for t, e in evaluations.items()}
            mlflow.set_tag("fleetvision.eval_fingerprint", eval_set.fingerprint)

        result = TrainResult(
            run.info.run_id, train_seconds, 0.0, n_train, history, metrics, trained=spec.tasks, skipped=skipped
        )
        for task, task_keras in models.items():
            _, version = log_task_model(
                task_keras,
                config,
                task,
                example=example,
                register=register,
                source="train",
                taxonomy_version=taxonomy.version,
                metrics=metrics.get(task),
                extra_tags={"fleetvision.train_run_id": run.info.run_id},
            )
            if version is not None:
                result.versions[task] = version
        result.total_seconds = time.perf_counter() - started
        mlflow.log_metric("total_seconds", result.total_seconds)
        if out_dir is not None:
            heads_only = pretrained is not None and pretrained.backbone_as_packaged()
            for task, task_keras in models.items():
                if pretrained is not None and heads_only:  # the head only: the backbone is the package's
                    path = save_head(task_keras, task, out_dir / task, pretrained.backbone_id)
                else:  # the whole model: an end-to-end or fine-tuned backbone is not the package's
                    for stale in (HEAD_FILE, BACKBONE_FILE):  # a head saved here before would be read first
                        (out_dir / task / stale).unlink(missing_ok=True)
                    path = save_task_model(task_keras, out_dir / task / STARTER_FILE)
                result.saved[task] = str(path)
                _write_model_card(out_dir / task / CARD_FILE, task, spec, result, eval_set, command)
            result.carried = carry_over(spec.init_from, out_dir, skipped)
    logger.info("run %s: %s", result.run_id, json.dumps({"versions": result.versions, "metrics": result.metrics}))
    return result


def _write_model_card(
    path: Path, task: str, spec: TrainSpec, result: TrainResult, eval_set: EvalSet | None, command: str
) -> None:
    payload: dict[str, Any] = {
        "task": task,
        "metrics": result.metrics.get(task, {}),
        "eval_set": eval_set.description if eval_set else None,
        "eval_fingerprint": eval_set.fingerprint if eval_set else None,
        "train_rows": result.n_train,
        "train_seconds_all_tasks": round(result.train_seconds, 1),
        "trained_with": list(spec.tasks),
        "spec": spec.params(),
        "command": command,
        "mlflow_run_id": result.run_id,
        "final_epoch": {k: v[-1] for k, v in result.history.items() if v},
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _fit_heads_on_features(
    pretrained: PretrainedModel,
    spec: TrainSpec,
    config: Config,
    train_frame: Any,
    dataset: tf.data.Dataset,
    validation: tf.data.Dataset | None,
) -> dict[str, list[float]]:
    """Train the heads of a frozen pretrained backbone on its cached features (one backbone pass a row).

    The cache key holds the backbone's weights, the input size, the augmentation (seed, flips, passes)
    and a digest of the training rows' content and labels, so any change to them extracts anew.
    """
    from pyspark.sql import functions as F

    maps = feature_maps_for(spec.tasks)
    if spec.finetune_blocks and "stride32" not in maps:
        logger.warning("models.finetune_blocks=%d ignored: the heads of %s read no map those blocks make "
                       "(the plate head reads stride 8 and 16); the backbone stays frozen", spec.finetune_blocks,
                       "+".join(spec.tasks))
        spec = replace(spec, finetune_blocks=0)
    if spec.finetune_blocks:
        maps = (*maps, TOP_INPUT)
    count, digest = train_frame.agg(F.count(F.lit(1)), F.expr("bit_xor(xxhash64(*))")).first()
    key = cache_key(
        backbone=pretrained.backbone_id,
        # the weights as they are: --init-from a fine-tuned model changes them
        weights=weights_fingerprint(pretrained.backbone),
        top_blocks=spec.finetune_blocks,
        size=spec.input_size,
        seed=spec.seed,
        flip_mode=spec.flip_mode,
        augmentation=AUGMENTATION,
        passes=spec.feature_passes,
        rows=int(count),
        content=int(digest or 0),
        outputs=spec.outputs,
    )
    root = config.paths.resolve("artifacts") / "feature_cache"
    train = cached_features(root / f"train-{key}", pretrained.backbone, dataset, maps, passes=spec.feature_passes,
                            top_blocks=spec.finetune_blocks)
    val = None
    if validation is not None:
        val = cached_features(root / f"val-{key}", pretrained.backbone, validation, maps,
                              top_blocks=spec.finetune_blocks)
    steps = -(-len(train) // spec.batch_size)

    def phase(model: Any, phase_spec: TrainSpec, prefix: str) -> dict[str, list[float]]:
        names = [i.name for i in model.inputs]
        train_data = feature_dataset(train, spec.batch_size, shuffle=True, seed=spec.seed, maps=names)
        val_data = None if val is None else feature_dataset(val, spec.batch_size, shuffle=False, maps=names)
        return fit(model, phase_spec, train_data, steps, validation=val_data, metrics_prefix=prefix)

    logger.info("training heads %s on %d cached feature rows, %d steps an epoch", "+".join(spec.tasks), len(train),
                steps)
    history = phase(pretrained.heads_model(), spec, "train.")
    if spec.finetune_blocks:
        top = backbone_top(pretrained.backbone, spec.finetune_blocks)
        logger.info("fine-tuning the backbone's last %d blocks (%d weights) with the heads: %d epochs at %g",
                    spec.finetune_blocks, top.count_params(), spec.finetune_epochs, spec.finetune_learning_rate)
        try:
            tuned = phase(
                pretrained.heads_model(top),
                replace(spec, epochs=spec.finetune_epochs, learning_rate=spec.finetune_learning_rate),
                "finetune.",
            )
        finally:
            freeze(top)
        history.update({f"finetune_{k}": v for k, v in tuned.items()})
    return history
