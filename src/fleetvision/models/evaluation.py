"""Score a model on the frozen evaluation set the way the nightly job would, then measure it.

Photos are decoded by the scoring decoder (:func:`fleetvision.decode.decode_batch`), not the training
pipeline, so the numbers are the ones production gets. Photos that fail to decode are counted
(``n_failed_decode``) and left out of the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from fleetvision.decode import decode_batch
from fleetvision.feed import EvalSet
from fleetvision.models.metrics import TaskEvaluation, evaluate_task
from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], dict[str, np.ndarray]]


def decode_eval_set(eval_set: EvalSet, size: int, max_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode every photo of the set with the scoring decoder.

    Returns:
        (uint8 [n_ok, S, S, 3], bool mask [N] of the photos that decoded).
    """
    batch, photos = decode_batch(list(eval_set.contents), size, max_pixels)
    ok = np.array([p.ok for p in photos], dtype=bool)
    if not ok.all():
        codes = sorted({str(p.error_code) for p in photos if not p.ok})
        logger.warning("eval set: %d of %d photos failed to decode (%s)", int((~ok).sum()), len(ok), ", ".join(codes))
    return batch, ok


def predict_in_batches(predict: PredictFn, images: np.ndarray, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Run ``predict`` over ``images`` in batches and concatenate each output."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        for name, value in predict(images[start : start + batch_size]).items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in parts.items()}


def evaluate_predictors(
    predictors: Mapping[str, PredictFn],
    eval_set: EvalSet,
    taxonomy: Taxonomy,
    *,
    size: int,
    max_pixels: int,
    banner_threshold: float,
    plate_threshold: float,
    decoded: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, TaskEvaluation]:
    """Evaluate each task's predictor on the set.

    Args:
        predictors: Task -> predict function (uint8 batch -> outputs), e.g. from
            :func:`fleetvision.models.registry.load_models`. Tasks that share one function (a fused
            model answering several heads) are predicted once.
        eval_set: The frozen evaluation set.
        taxonomy: The shot taxonomy.
        size: Model input size S.
        max_pixels: Decoder pixel limit (``scoring.max_image_pixels``).
        banner_threshold: ``scoring.banner_threshold``.
        plate_threshold: ``scoring.plate_threshold``.
        decoded: Already decoded (batch, ok mask), to decode once for several models.

    Returns:
        Task -> evaluation; each carries ``n_failed_decode``.
    """
    images, ok = decoded if decoded is not None else decode_eval_set(eval_set, size, max_pixels)
    labels = eval_set.labels.subset(ok)
    results: dict[str, TaskEvaluation] = {}
    predicted: dict[int, dict[str, np.ndarray]] = {}
    for task, predict in predictors.items():
        if id(predict) not in predicted:
            predicted[id(predict)] = predict_in_batches(predict, images)
        outputs = predicted[id(predict)]
        evaluation = evaluate_task(
            task, outputs, labels, taxonomy, banner_threshold=banner_threshold, plate_threshold=plate_threshold
        )
        evaluation.metrics["n_failed_decode"] = float((~ok).sum())
        results[task] = evaluation
        logger.info("eval %s: %s", task, ", ".join(f"{k}={v:.4f}" for k, v in sorted(evaluation.metrics.items())))
    return results
