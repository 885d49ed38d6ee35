"""Operating points of the yes/no heads (banner, plate presence), set on the validation split.

Scoring flags a photo when a score reaches its configured threshold (``scoring.banner_threshold``,
``scoring.plate_threshold``, both 0.5). After training, :func:`balanced_threshold` finds on the
``val`` split the threshold where precision and recall are balanced (the largest min(precision,
recall)), and :func:`shift_sigmoid_bias` moves the head's bias so that this point lands on the
configured threshold: ``sigmoid(z - logit(t) + logit(T)) >= T`` exactly when ``sigmoid(z) >= t``.
The ranking of photos (and so any precision/recall curve) does not change; only where the flag flips.
The frozen evaluation set is never used for this.
"""

from __future__ import annotations

import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

MIN_EACH_CLASS = 20
THRESHOLD_RANGE = (0.05, 0.95)


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def balanced_threshold(scores: np.ndarray, truth: np.ndarray) -> float | None:
    """The score threshold with the largest min(precision, recall) (ties: the one nearest 0.5).

    Args:
        scores: Probabilities, one per photo.
        truth: 0/1 labels.

    Returns:
        The threshold, or None when there are fewer than 20 photos of either class.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth).reshape(-1).astype(bool)
    if truth.sum() < MIN_EACH_CLASS or (~truth).sum() < MIN_EACH_CLASS:
        return None
    lo, hi = THRESHOLD_RANGE
    candidates = np.unique(np.clip(np.concatenate([scores, [0.5]]), lo, hi))
    best, best_key = 0.5, (-1.0, 0.0)
    n_pos = truth.sum()
    for t in candidates:
        flag = scores >= t
        tp = float(np.sum(flag & truth))
        precision = tp / max(flag.sum(), 1)
        recall = tp / n_pos
        key = (min(precision, recall), -abs(t - 0.5))
        if key > best_key:
            best, best_key = float(t), key
    return best


def shift_softmax_prior(layer: object, train_share: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Re-weight a softmax Dense layer's classes from the training mix to the deployment mix.

    A classifier trained on a class mix ``train_share`` estimates ``p(class | photo)`` under that mix;
    where the classes come in the proportions ``prior`` the right answer is proportional to
    ``p(class | photo) * prior / train_share`` (label shift). Adding ``log(prior / train_share)`` to
    the layer's bias does exactly that inside the softmax, so the saved model needs no extra step.

    Args:
        layer: A ``keras.layers.Dense`` with a softmax activation and a bias, one unit per class.
        train_share: Share of each class among the training rows (> 0 each).
        prior: Share of each class where the model is used (> 0 each).

    Returns:
        The per-class log shift added to the bias.

    Raises:
        ValueError: The layer has no bias of the right width, or a share is not positive.
    """
    bias = getattr(layer, "bias", None)
    train_share, prior = np.asarray(train_share, np.float64), np.asarray(prior, np.float64)
    if bias is None or tuple(bias.shape) != train_share.shape or train_share.shape != prior.shape:
        raise ValueError(
            f"layer {getattr(layer, 'name', layer)!r} has no bias of width {train_share.shape} (prior {prior.shape})"
        )
    if (train_share <= 0).any() or (prior <= 0).any():
        raise ValueError(f"class shares must be positive: train {train_share.tolist()}, prior {prior.tolist()}")
    shift = np.log(prior / prior.sum()) - np.log(train_share / train_share.sum())
    bias.assign(bias.numpy() + shift.astype(bias.numpy().dtype))
    return shift


def shift_sigmoid_bias(layer: object, found: float, target: float) -> float:
    """Move a sigmoid Dense layer's bias so that score ``found`` becomes score ``target``.

    Args:
        layer: A ``keras.layers.Dense`` with one unit and a sigmoid activation.
        found: The threshold found on validation data.
        target: The threshold scoring uses.

    Returns:
        The logit shift applied (subtracted from the bias).

    Raises:
        ValueError: The layer has no bias or more than one unit.
    """
    bias = getattr(layer, "bias", None)
    if bias is None or tuple(bias.shape) != (1,):
        raise ValueError(f"layer {getattr(layer, 'name', layer)!r} is not a one-unit Dense layer with a bias")
    shift = _logit(found) - _logit(target)
    bias.assign(bias.numpy() - shift)
    return shift
