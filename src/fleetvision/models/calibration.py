"""Operating points of the yes/no heads (banner, plate presence), set on the validation split.

Scoring flags a photo when a score reaches its configured threshold (``scoring.banner_threshold``,
``scoring.plate_threshold``, both 0.5). After training, :func:`balanced_threshold` finds on the
``val`` split the threshold where precision and recall are balanced (the largest min(precision,
recall)), and :func:`shift_sigmoid_bias` moves the head's bias so that this point lands on the
configured threshold: ``sigmoid(z - logit(t) + logit(T)) >= T`` exactly when ``sigmoid(z) >= t``.
The ranking of photos (and so any precision/recall curve) does not change; only where the flag flips.
The frozen evaluation set is never used for this.

The body head is re-weighted the same way, from the training rows' body-type mix to the market's
(``models.body_prior``): :func:`apply_body_prior` adds ``log(prior / train_share)`` to its softmax
bias (:func:`shift_softmax_prior`). Both run after training, before the models are logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from fleetvision.config import Config
    from fleetvision.models.spec import TrainSpec

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


def calibrate_binary_heads(
    model: keras.Model, validation: tf.data.Dataset, spec: TrainSpec, config: Config
) -> dict[str, float]:
    """Put the balanced precision/recall point of each yes/no head at scoring's threshold.

    See the module docstring. Uses the validation split only.

    Returns:
        MLflow params: ``calibration.<output>.val_threshold`` and ``.logit_shift`` per calibrated head.
    """
    from fleetvision.models.pretrained import find_layer

    targets = {"banner": config.scoring.banner_threshold, "plate_presence": config.scoring.plate_threshold}
    heads = [o for o in spec.outputs if o in targets]
    if not heads:
        return {}
    scores: dict[str, list[np.ndarray]] = {o: [] for o in heads}
    truth: dict[str, list[np.ndarray]] = {o: [] for o in heads}
    for images, labels, weights in validation:
        out = model(images, training=False)
        for o in heads:
            known = weights[o].numpy() > 0
            scores[o].append(out[o].numpy().reshape(-1)[known])
            truth[o].append(labels[o].numpy().reshape(-1)[known])
    params: dict[str, float] = {}
    for o in heads:
        found = balanced_threshold(np.concatenate(scores[o]), np.concatenate(truth[o]))
        if found is None:
            logger.info("calibration of %s skipped: too few validation photos of each class", o)
            continue
        shift = shift_sigmoid_bias(find_layer(model, o), found, targets[o])
        params[f"calibration.{o}.val_threshold"] = round(found, 4)
        params[f"calibration.{o}.logit_shift"] = round(shift, 4)
        logger.info("calibrated %s: validation balance point %.3f now scores %.2f", o, found, targets[o])
    return params


def apply_body_prior(
    model: keras.Model, train_frame: Any, config: Config, body_types: Sequence[str]
) -> dict[str, float]:
    """Shift the body head from the training rows' body-type mix to ``models.body_prior``.

    The training set draws body types uniformly (``synth.train_body_mix``) so the rare ones are learnt;
    the inventory does not. Counts come from the training rows Spark read (label -1 = no body label).

    Returns:
        MLflow params ``body_prior.<type>.train_share`` and ``.log_shift``; empty when no prior is set.

    Raises:
        ValueError: The prior names an unknown body type.
    """
    from fleetvision.models.pretrained import find_layer

    prior_cfg = config.models.body_prior
    if not prior_cfg:
        return {}
    unknown = sorted(set(prior_cfg) - set(body_types))
    if unknown:
        raise ValueError(f"models.body_prior names unknown body types {unknown}; known: {list(body_types)}")
    # each row counts by its loss weight (extra datasets mixed in at a lower weight)
    rows = train_frame.filter("body_index >= 0").groupBy("body_index").agg({"row_weight": "sum"}).collect()
    counts = {int(r[0]): float(r[1]) for r in rows}
    train = np.array([counts.get(i, 0.0) for i in range(len(body_types))], np.float64)
    if (train == 0).any():
        missing = [b for i, b in enumerate(body_types) if train[i] == 0]
        logger.warning("models.body_prior not applied: no training rows of body type(s) %s", missing)
        return {}
    prior = np.array([prior_cfg.get(b, 0.0) for b in body_types], np.float64)
    prior = np.where(prior > 0, prior, 1e-3)  # a type the market never shows is rare, not impossible
    shift = shift_softmax_prior(find_layer(model, "body"), train / train.sum(), prior)
    logger.info("body head re-weighted to models.body_prior: log shifts %s",
                {b: round(float(s), 3) for b, s in zip(body_types, shift, strict=True)})
    params: dict[str, float] = {}
    for i, b in enumerate(body_types):
        params[f"body_prior.{b}.train_share"] = round(float(train[i] / train.sum()), 4)
        params[f"body_prior.{b}.log_shift"] = round(float(shift[i]), 4)
    return params
