"""Run models on the frozen evaluation set the way the nightly job would, then measure them.

Photos are decoded by the scoring decoder (:func:`fleetvision.decode.decode_batch`), not the training
pipeline, so the numbers are the ones production gets. Photos that fail to decode are counted
(``n_failed_decode``) and left out of the metrics (:mod:`fleetvision.models.eval_metrics`).
:func:`evaluate_predictors` takes predict functions (a training run's models);
:func:`evaluate_ref` a registered version, whose run and tags it records in MLflow (the evaluate and
promote jobs); an angle version is run beside the plate champion (:func:`flank_cue_partner`), so its
evaluation also holds the ``with_plate_flank.*`` figures the nightly tags will have.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetvision._typing import PredictFn
from fleetvision.decode import decode_batch
from fleetvision.feed import EvalSet
from fleetvision.models.eval_metrics import TaskEvaluation, evaluate_task, write_evaluation
from fleetvision.scoring.extra_outputs import fold_extra_outputs
from fleetvision.scoring.plate_flank import plate_flank
from fleetvision.taxonomy import Taxonomy

if TYPE_CHECKING:
    from fleetvision.config import Config
    from fleetvision.models.resolve import ModelRef

logger = logging.getLogger(__name__)

FLANK_CUE_METRICS: tuple[str, ...] = ("top1", "mirror_pair_accuracy", "mirror_swap_rate")
"""Angle metrics also reported with the plate-position flank cue applied (:func:`evaluate_predictors`)."""


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
    flank_cue: tuple[float, float] = (0.0, 0.0),
    flank_symmetry: bool = False,
    plate_symmetry: bool = False,
) -> dict[str, TaskEvaluation]:
    """Evaluate each task's predictor on the set.

    Args:
        predictors: Task -> predict function (uint8 batch -> outputs), e.g. from
            :func:`fleetvision.models.serving.load_models`. Tasks that share one function (a fused
            model answering several heads) are predicted once.
        eval_set: The frozen evaluation set.
        taxonomy: The shot taxonomy.
        size: Model input size S.
        max_pixels: Decoder pixel limit (``scoring.max_image_pixels``).
        banner_threshold: ``scoring.banner_threshold``.
        plate_threshold: ``scoring.plate_threshold``.
        decoded: Already decoded (batch, ok mask), to decode once for several models.
        flank_cue: ``config.scoring.flank_cue`` (strength, outlier rate). With a strength
            above 0 and both an angle and a plate predictor, the angle evaluation also gets
            ``with_plate_flank.<metric>`` for :data:`FLANK_CUE_METRICS`: the angle softmax as the job
            tags it (:func:`fleetvision.scoring.plate_flank.plate_flank`); its own metrics stay the
            model's alone.
        flank_symmetry, plate_symmetry: ``config.scoring.flank_symmetry`` / ``plate_symmetry``: where the
            predictors also answer for the mirror image (``angle_mirror``, ``plate_presence_mirror``), the
            angle is evaluated with its flank split from both and the plate with their mean presence
            (:mod:`fleetvision.scoring.mirror_image`), as the job tags them. An angle model with a group
            head (``angle_group``) is evaluated with its groups from it (:mod:`fleetvision.scoring.shot_groups`),
            as the job tags it, whatever these settings.

    Returns:
        Task -> evaluation; each carries ``n_failed_decode``.
    """
    images, ok = decoded if decoded is not None else decode_eval_set(eval_set, size, max_pixels)
    labels = eval_set.labels.subset(ok)
    results: dict[str, TaskEvaluation] = {}
    predicted: dict[int, dict[str, np.ndarray]] = {}
    for task, predict in predictors.items():
        if id(predict) not in predicted:
            predicted[id(predict)] = fold_extra_outputs(
                predict_in_batches(predict, images), taxonomy, flank=flank_symmetry, plate=plate_symmetry
            )
        outputs = predicted[id(predict)]
        evaluation = evaluate_task(
            task, outputs, labels, taxonomy, banner_threshold=banner_threshold, plate_threshold=plate_threshold
        )
        evaluation.metrics["n_failed_decode"] = float((~ok).sum())
        results[task] = evaluation
    strength, outlier_rate = flank_cue
    if strength > 0 and "angle" in results and "plate" in predictors:
        angle, plate = predicted[id(predictors["angle"])], predicted[id(predictors["plate"])]
        informed = plate_flank(angle["angle"], plate["plate_presence"], plate["plate_box"], taxonomy, strength,
                               outlier_rate)
        cued = evaluate_task("angle", {"angle": informed}, labels, taxonomy, banner_threshold=banner_threshold,
                             plate_threshold=plate_threshold)
        results["angle"].metrics.update({f"with_plate_flank.{k}": cued.metrics[k] for k in FLANK_CUE_METRICS})
    for task, evaluation in results.items():
        logger.info("eval %s: %s", task, ", ".join(f"{k}={v:.4f}" for k, v in sorted(evaluation.metrics.items())))
    return results


def evaluate_as_scored(
    predictors: Mapping[str, PredictFn],
    eval_set: EvalSet,
    taxonomy: Taxonomy,
    config: Config,
    *,
    size: int,
    decoded: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, TaskEvaluation]:
    """:func:`evaluate_predictors` with the nightly job's decoder limit, thresholds and flank cues from
    ``config.scoring`` (what training, soups and ``evaluate`` all score by)."""
    return evaluate_predictors(
        predictors,
        eval_set,
        taxonomy,
        size=size,
        max_pixels=config.scoring.max_image_pixels,
        banner_threshold=config.scoring.banner_threshold,
        plate_threshold=config.scoring.plate_threshold,
        decoded=decoded,
        flank_cue=config.scoring.flank_cue,
        flank_symmetry=config.scoring.flank_symmetry,
        plate_symmetry=config.scoring.plate_symmetry,
    )


def evaluate_ref(config: Config, ref: ModelRef, eval_set: EvalSet, *, log_to_mlflow: bool = True,
                 decoded: tuple[np.ndarray, np.ndarray] | None = None) -> TaskEvaluation:
    """Evaluate one resolved model version on the frozen set; log a run and tag the version.

    Args:
        decoded: The set already decoded at ``ref.input_size`` (:func:`decode_eval_set`), to decode once
            for several versions.

    Returns:
        The evaluation.

    Raises:
        ValueError: ``decoded`` holds photos of another size than the model reads.
    """
    if decoded is not None and decoded[0].shape[1:3] != (ref.input_size, ref.input_size):
        raise ValueError(f"decoded photos are {decoded[0].shape[1:3]}, {ref.name} v{ref.version} reads "
                         f"{ref.input_size} x {ref.input_size}")
    import mlflow

    from fleetvision.models.resolve import ModelSet, mlflow_client
    from fleetvision.models.serving import load_models, per_task
    from fleetvision.taxonomy import load_taxonomy
    from fleetvision.tracking import configure_mlflow

    partner = flank_cue_partner(config, ref)
    predictors = per_task(load_models(ModelSet((ref,) if partner is None else (ref, partner))))
    evaluation = evaluate_as_scored(predictors, eval_set, load_taxonomy(), config, size=ref.input_size,
                                    decoded=decoded)[ref.task]
    if partner is not None:
        evaluation.beside = (partner.uri,)
    if log_to_mlflow:
        configure_mlflow(config)
        with mlflow.start_run(run_name=f"evaluate-{ref.task}-v{ref.version}"), tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tags(
                {
                    "fleetvision.job": "evaluate",
                    "fleetvision.task": ref.task,
                    "fleetvision.model_uri": ref.uri,
                    "fleetvision.eval_fingerprint": eval_set.fingerprint,
                }
            )
            mlflow.log_params({"model": ref.name, "version": ref.version, "eval_rows": len(eval_set)})
            if partner is not None:
                mlflow.set_tag("fleetvision.evaluated_beside", partner.uri)
            mlflow.log_metrics({f"eval.{k}": v for k, v in evaluation.metrics.items()})
            write_evaluation(evaluation, Path(tmp), eval_provenance(ref, eval_set, evaluation.beside))
            mlflow.log_artifacts(tmp, artifact_path=f"eval/{ref.task}")
        client = mlflow_client(config)
        for k, v in evaluation.metrics.items():
            client.set_model_version_tag(ref.name, ref.version, f"eval.{k}", f"{v:.6g}")
        client.set_model_version_tag(ref.name, ref.version, "eval.fingerprint", eval_set.fingerprint)
    return evaluation


def flank_cue_partner(config: Config, ref: ModelRef) -> ModelRef | None:
    """The plate version an angle version is evaluated beside, for its ``with_plate_flank.*`` figures.

    The nightly job tags the angle with the plate-position flank cue (``scoring.plate_flank_strength``
    above 0), reading the plate model it runs beside; the plate version at ``mlflow.model_alias`` is that
    model. None for other tasks, with the cue off, or when no such plate version resolves (the angle
    is then evaluated alone, and says so in the log).
    """
    from fleetvision.models.resolve import ModelNotFoundError, resolve_model_ref

    if ref.task != "angle" or config.scoring.plate_flank_strength <= 0:
        return None
    try:
        plate = resolve_model_ref(config, "plate")
    except (ModelNotFoundError, ValueError) as e:
        logger.info("evaluating %s without the plate flank cue: no plate model to run beside it (%s)", ref.uri, e)
        return None
    if plate.input_size != ref.input_size:
        logger.info("evaluating %s without the plate flank cue: %s takes %d px, the angle model %d px",
                    ref.uri, plate.uri, plate.input_size, ref.input_size)
        return None
    return plate


def eval_provenance(ref: ModelRef, eval_set: EvalSet, beside: tuple[str, ...] = ()) -> dict[str, Any]:
    """Which model version was evaluated on which frozen set (written beside its metrics), and, under
    ``evaluated_beside``, the other versions some figures read (:attr:`TaskEvaluation.beside`)."""
    provenance: dict[str, Any] = {
        "model": ref.name,
        "version": ref.version,
        "uri": ref.uri,
        "eval_set": eval_set.description,
        "eval_fingerprint": eval_set.fingerprint,
        "eval_rows": len(eval_set),
    }
    if beside:
        provenance["evaluated_beside"] = list(beside)
    return provenance
