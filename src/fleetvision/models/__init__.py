"""The four photo models (angle, banner, plate, body): architecture, training, evaluation, serving.

Layout:
    spec: the frozen training plan (:class:`TrainSpec`) built from the config, and the task/output names.
    architecture, pretrained, plate_head, efficientnet_lite: Keras 3 model builders (backbone + heads;
        one multi-head model split into four).
    torch_weights: reads the pretrained backbone's PyTorch weights without torch.
    pipeline: tf.data functions (decode, resize, augmentation with label-swapping flips, targets).
    losses: the partial-label loss of the angle head.
    fit: compile + fit (losses per output, learning-rate schedule, per-epoch MLflow metrics).
    feature_training: heads trained on cached features of the frozen pretrained backbone.
    calibration: after training, the yes/no heads' operating points and the body head's prior.
    training_run: one training run (feed, fit, calibrate, evaluate, log and register each task's model).
    eval_metrics: pure numpy evaluation (top-1, mirror pairs, precision/recall/IoU, confusion matrices).
    coarse_metrics: accuracy at the grain real labels come in (shot bucket, group, body type).
    real_photos: the real-photo check of the plate boxes.
    frozen_eval: models or registered versions run on the frozen evaluation set and measured.
    promotion_rule: the champion/candidate decision.
    resolve: resolving a model alias to a frozen :class:`~fleetvision.models.resolve.ModelSet` on the driver.
    serving: loading and predicting on the worker (the one bounded model cache).
    registration: logging task models to MLflow, registering them, the champion alias.
    starter: the starter models shipped in the package (saving and registering them).
    train_job, evaluate_job, promote_job: the ``fleetvision train|evaluate|promote`` jobs.
    mirror_study: the mirror-pair experiment behind the table in ``docs/models.md``.

Importing this package does not import TensorFlow; the modules that need it do.
"""

from __future__ import annotations

from fleetvision.models.spec import TASK_OUTPUTS, TASKS

__all__ = ["TASKS", "TASK_OUTPUTS"]
