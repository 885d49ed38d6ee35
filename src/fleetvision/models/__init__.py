"""The four photo models (angle, banner, plate, body): architecture, training, evaluation, registry.

Layout:
    spec: the frozen training plan (:class:`TrainSpec`) built from the config, and the task/output names.
    architecture: Keras 3 model builders (backbone + heads; one multi-head model split into four).
    pipeline: tf.data functions (decode, resize, augmentation with label-swapping flips, targets).
    training: compile + fit with masked losses and per-epoch MLflow metrics.
    metrics: pure numpy evaluation (top-1, mirror pairs, precision/recall/IoU, confusion matrices).
    registry: MLflow logging, :func:`~fleetvision.models.registry.resolve_model_set` and the
        per-worker cached :func:`~fleetvision.models.registry.load_models` that scoring uses.
    promotion: the champion/candidate decision.
    train_job, evaluate_job, promote_job: the ``fleetvision train|evaluate|promote`` jobs.
    mirror_study: the mirror-pair experiment behind the table in ``docs/models.md``.

Importing this package does not import TensorFlow; the modules that need it do.
"""

from __future__ import annotations

from fleetvision.models.spec import TASK_OUTPUTS, TASKS

__all__ = ["TASKS", "TASK_OUTPUTS"]
