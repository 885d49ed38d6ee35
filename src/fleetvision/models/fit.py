"""Compile and fit: masked multi-output losses, a warm-up + cosine schedule, per-epoch MLflow metrics."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from fleetvision.models.losses import (
    generalised_cross_entropy,
    partial_label_accuracy,
    partial_label_loss_per_row,
)
from fleetvision.models.spec import TrainSpec

logger = logging.getLogger(__name__)

_EPS = 1e-7


def box_iou_terms(y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """IoU and generalised IoU of (x0, y0, x1, y1) boxes, per row."""
    tx0, ty0, tx1, ty1 = tf.unstack(tf.cast(y_true, tf.float32), axis=-1)
    px0, py0, px1, py1 = tf.unstack(tf.cast(y_pred, tf.float32), axis=-1)
    iw = tf.maximum(0.0, tf.minimum(px1, tx1) - tf.maximum(px0, tx0))
    ih = tf.maximum(0.0, tf.minimum(py1, ty1) - tf.maximum(py0, ty0))
    inter = iw * ih
    area_p = tf.maximum(0.0, px1 - px0) * tf.maximum(0.0, py1 - py0)
    area_t = tf.maximum(0.0, tx1 - tx0) * tf.maximum(0.0, ty1 - ty0)
    union = area_p + area_t - inter + _EPS
    iou = inter / union
    hull = (tf.maximum(px1, tx1) - tf.minimum(px0, tx0)) * (tf.maximum(py1, ty1) - tf.minimum(py0, ty0)) + _EPS
    return iou, iou - (hull - union) / hull


def plate_box_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-row box loss: (1 - GIoU) + 5 x mean |corner error|.

    GIoU optimises the reported metric (IoU) directly and still has a gradient when boxes do not
    overlap; the L1 term steadies the start of training. Rows without a plate are masked by their
    sample weight (see :func:`fleetvision.models.pipeline.targets`).
    """
    _, giou = box_iou_terms(y_true, y_pred)
    l1 = tf.reduce_mean(tf.abs(tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)), axis=-1)
    return (1.0 - giou) + 5.0 * l1


def plate_box_iou(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-row IoU, as a (weighted) training metric."""
    iou, _ = box_iou_terms(y_true, y_pred)
    return iou


_LOSSES: dict[str, Any] = {
    # the angle target is the allowed-class mask: a coarse label ("interior") allows several classes
    "angle": partial_label_loss_per_row,
    "banner": "binary_crossentropy",
    "plate_presence": "binary_crossentropy",
    "plate_box": plate_box_loss,
    "body": "sparse_categorical_crossentropy",
}
_METRICS: dict[str, list[Any]] = {
    "angle": [partial_label_accuracy],
    "banner": ["binary_accuracy"],
    "plate_presence": ["binary_accuracy"],
    "plate_box": [plate_box_iou],
    "body": ["sparse_categorical_accuracy"],
}


def losses_for(spec: TrainSpec) -> dict[str, Any]:
    """The loss of each output ``spec`` trains: :data:`_LOSSES`, the body's as ``spec.body_loss`` says."""
    losses = {o: _LOSSES[o] for o in spec.outputs}
    if "body" in losses and spec.body_loss == "gce":
        losses["body"] = generalised_cross_entropy(spec.body_loss_q)
    return losses


def learning_rate_schedule(spec: TrainSpec, total_steps: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up over ~5% of the steps to ``spec.learning_rate``, then cosine decay to 1% of it."""
    total_steps = max(2, int(total_steps))
    warmup = max(1, int(0.05 * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=spec.learning_rate * 0.05,
        decay_steps=max(1, total_steps - warmup),
        alpha=0.01,
        warmup_target=spec.learning_rate,
        warmup_steps=warmup,
    )


def compile_model(model: keras.Model, spec: TrainSpec, steps_per_epoch: int) -> None:
    """Compile with one masked loss per output of ``spec`` (AdamW, warm-up + cosine schedule)."""
    outputs = spec.outputs
    schedule = learning_rate_schedule(spec, steps_per_epoch * spec.epochs)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=spec.weight_decay)
    model.compile(
        optimizer=optimizer,
        loss=losses_for(spec),
        loss_weights={o: float(spec.loss_weights.get(o, 1.0)) for o in outputs},
        weighted_metrics={o: _METRICS[o] for o in outputs},
    )


class EpochMetricsLogger(keras.callbacks.Callback):
    """Logs each epoch's Keras metrics (and its duration) to the active MLflow run, and to ``logging``."""

    def __init__(self, prefix: str = "train.") -> None:
        super().__init__()
        self.prefix = prefix
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        import mlflow

        values = {f"{self.prefix}{k}": float(v) for k, v in (logs or {}).items() if _finite(v)}
        values[f"{self.prefix}epoch_seconds"] = time.perf_counter() - self._started
        logger.info(
            "epoch %d: %s",
            epoch + 1,
            ", ".join(f"{k.removeprefix(self.prefix)}={v:.4f}" for k, v in sorted(values.items())),
        )
        if mlflow.active_run() is not None:
            mlflow.log_metrics(values, step=epoch + 1)


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def fit(
    model: keras.Model,
    spec: TrainSpec,
    train: tf.data.Dataset,
    steps_per_epoch: int,
    *,
    validation: tf.data.Dataset | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    metrics_prefix: str = "train.",
) -> dict[str, list[float]]:
    """Compile ``model`` for ``spec`` and train it.

    Args:
        model: From :func:`fleetvision.models.architecture.build_multitask_model`.
        spec: The training spec.
        train: Batched (image, targets, weights), one pass per epoch.
        steps_per_epoch: Batches per epoch (for the learning-rate schedule).
        validation: Optional batched validation data.
        callbacks: Extra Keras callbacks (an :class:`EpochMetricsLogger` is always added).
        metrics_prefix: Prefix of the per-epoch MLflow metrics (a second phase logs under its own).

    Returns:
        The Keras history (metric name -> one value per epoch).
    """
    compile_model(model, spec, steps_per_epoch)
    history = model.fit(
        train,
        epochs=spec.epochs,
        validation_data=validation,
        callbacks=[EpochMetricsLogger(metrics_prefix), *callbacks],
        shuffle=False,  # the tf.data pipeline shuffles
        verbose=0,
    )
    return {k: [float(x) for x in v] for k, v in history.history.items()}
