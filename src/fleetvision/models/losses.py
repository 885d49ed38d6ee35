"""Training losses: the partial-label loss, and a body loss that tolerates wrong labels.

The partial-label loss: a label may allow several classes ("exterior", "front_3q" either side).

A labeller who says "interior" allows every interior class; the model is right to put its probability
anywhere among them. The loss is the negative log of the probability the model gives to the allowed
set, ``-log(sum_{c allowed} p_c)``. With one allowed class it is the categorical cross-entropy; with
no allowed class (a row without an angle label) it is 0 and the row does not count.

Targets are float masks ``[N, C]`` (1 = allowed); :func:`fleetvision.label_consensus.angle_label_sets`
makes the sets and :mod:`fleetvision.models.pipeline` turns them into masks.

The generalised cross-entropy (Zhang and Sabuncu, NeurIPS 2018), ``(1 - p_y^q) / q`` for the labelled
class ``y``, is the body head's loss where some labels are wrong (``models.body_loss: gce``: the body
types sellers declare, ``import-labels --from-listings``). As ``q -> 0`` it is the cross-entropy; at
``q = 1`` it is the mean absolute error between the one-hot label and the softmax, which is robust to
flipped labels but slow to fit. Its gradient is the cross-entropy's times ``p_y^q``: a row the model
finds unlikely (a wrong label, once the right ones have been learnt) pulls the head far less than under
the cross-entropy, which gives such rows the most weight of all.

Pure: ``keras.ops`` for training (any Keras backend) and numpy references for tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

Tensor = Any
"""A backend tensor or anything ``keras.ops`` converts (numpy arrays included)."""

EPSILON = 1e-7
"""Probabilities are clipped to [EPSILON, 1] before the log, as Keras' cross-entropy does."""


def partial_label_loss_per_row(allowed_mask: Tensor, probabilities: Tensor) -> Tensor:
    """``-log(sum of the allowed classes' probabilities)`` per row; 0 for a row that allows none.

    The Keras loss of the angle head (rows are also masked by their sample weight).

    Args:
        allowed_mask: float [N, C], 1 where the label allows the class.
        probabilities: float [N, C], softmax outputs.

    Returns:
        float [N].
    """
    mask = ops.cast(allowed_mask, "float32")
    probs = ops.cast(probabilities, "float32")
    allowed = ops.sum(mask * probs, axis=-1)
    labelled = ops.cast(ops.max(mask, axis=-1) > 0, "float32")
    # a row without a label takes log(1) = 0, and no gradient, instead of log(EPSILON)
    safe = ops.where(labelled > 0, ops.clip(allowed, EPSILON, 1.0), ops.ones_like(allowed))
    return -ops.log(safe) * labelled


def partial_label_loss(allowed_mask: Tensor, probabilities: Tensor) -> Tensor:
    """Mean partial-label loss over the labelled rows (rows with an all-zero mask do not count).

    Args:
        allowed_mask: float [N, C], 1 where the label allows the class; a zero row = no label.
        probabilities: float [N, C], softmax outputs.

    Returns:
        A scalar; 0 when no row is labelled.
    """
    per_row = partial_label_loss_per_row(allowed_mask, probabilities)
    labelled = ops.sum(ops.cast(ops.max(ops.cast(allowed_mask, "float32"), axis=-1) > 0, "float32"))
    return ops.sum(per_row) / ops.maximum(labelled, 1.0)


def partial_label_accuracy(allowed_mask: Tensor, probabilities: Tensor) -> Tensor:
    """Per row, 1 when the most probable class is one the label allows (0 for an unlabelled row)."""
    mask = ops.cast(allowed_mask, "float32")
    best = ops.argmax(probabilities, axis=-1)
    return ops.take_along_axis(mask, ops.expand_dims(best, -1), axis=-1)[..., 0]


def partial_label_loss_numpy(allowed_mask: np.ndarray, probabilities: np.ndarray) -> float:
    """Reference for :func:`partial_label_loss` in plain numpy (tests)."""
    mask = np.asarray(allowed_mask, np.float64)
    probs = np.asarray(probabilities, np.float64)
    labelled = mask.max(axis=-1) > 0
    if not labelled.any():
        return 0.0
    allowed = np.clip((mask * probs).sum(axis=-1)[labelled], EPSILON, 1.0)
    return float(-np.log(allowed).mean())


def generalised_cross_entropy_per_row(labels: Tensor, probabilities: Tensor, q: float = 0.7) -> Tensor:
    """``(1 - p_label^q) / q`` per row: the generalised cross-entropy of sparse labels.

    Rows masked by a zero sample weight may carry any valid class index (the pipeline writes 0).

    Args:
        labels: int [N] or [N, 1], the labelled class.
        probabilities: float [N, C], softmax outputs.
        q: In (0, 1]; towards 0 the cross-entropy, 1 the mean absolute error.

    Raises:
        ValueError: ``q`` outside (0, 1].
    """
    if not 0 < q <= 1:
        raise ValueError(f"generalised_cross_entropy: q must be in (0, 1], got {q}")
    index = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
    probs = ops.cast(probabilities, "float32")
    p = ops.clip(ops.take_along_axis(probs, index, axis=-1)[..., 0], EPSILON, 1.0)
    return (1.0 - ops.power(p, q)) / q


def generalised_cross_entropy(q: float) -> Any:
    """A Keras loss (``y_true``, ``y_pred``) -> per-row :func:`generalised_cross_entropy_per_row` at ``q``."""
    if not 0 < q <= 1:
        raise ValueError(f"generalised_cross_entropy: q must be in (0, 1], got {q}")

    def gce(y_true: Tensor, y_pred: Tensor) -> Tensor:
        return generalised_cross_entropy_per_row(y_true, y_pred, q)

    gce.__name__ = f"generalised_cross_entropy_q{q:g}".replace(".", "_")
    return gce


def generalised_cross_entropy_numpy(labels: np.ndarray, probabilities: np.ndarray, q: float) -> np.ndarray:
    """Reference for :func:`generalised_cross_entropy_per_row` in plain numpy (tests)."""
    probs = np.asarray(probabilities, np.float64)
    index = np.asarray(labels, np.int64).reshape(-1)
    p = np.clip(probs[np.arange(len(index)), index], EPSILON, 1.0)
    return (1.0 - p**q) / q
