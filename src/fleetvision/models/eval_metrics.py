"""Evaluation of model outputs against labels: pure numpy/pandas (no TensorFlow, no Spark).

Metric names (all "higher is better", in [0, 1]) per task:

* angle: in the model's flank classes (``taxonomy.flank_names``: the labels arrive as flank indices from
  :func:`fleetvision.feed.training_frame`). ``top1``, ``top3``, ``macro_f1``, ``mirror_pair_accuracy``
  (top-1 on photos whose true class has a mirror partner: the left/right flank shots),
  ``mirror_accuracy.<pair>`` (the same for one pair, e.g. ``mirror_accuracy.side``),
  ``mirror_swap_rate`` (share of mirror-pair photos predicted as the partner: lower is better,
  reported, never compared), ``n``.
* banner: ``precision``, ``recall``, ``f1``, ``accuracy``, ``n``.
* plate: ``precision``, ``recall``, ``f1`` (presence at the scoring threshold), ``mean_iou`` (over photos
  that have a plate with a known box, whatever the presence score), ``iou50_rate`` (share of those with
  IoU >= 0.5), ``n``, ``n_with_plate``.
* body: ``accuracy`` and ``macro_recall`` on exterior shots (rows with a body label), ``n``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fleetvision.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

LOWER_IS_BETTER = frozenset({"mirror_swap_rate"})
COUNT_METRICS = frozenset({"n", "n_with_plate", "n_failed_decode"})


@dataclass(frozen=True)
class EvalLabels:
    """Labels of an evaluation set, one entry per photo (-1 = unknown).

    Attributes:
        angle_index: int [N].
        has_banner: int [N] (1, 0, -1).
        plate_present: int [N] (1, 0, -1).
        box: float [N, 4] (x0, y0, x1, y1) normalised; meaningful where ``box_known``.
        box_known: int [N] (1 when the plate box is known).
        body_index: int [N] (-1 on interior/detail shots).
    """

    angle_index: np.ndarray
    has_banner: np.ndarray
    plate_present: np.ndarray
    box: np.ndarray
    box_known: np.ndarray
    body_index: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.angle_index)
        for name in ("has_banner", "plate_present", "box", "box_known", "body_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"EvalLabels.{name} has {len(getattr(self, name))} rows, angle_index has {n}")
        if self.box.ndim != 2 or self.box.shape[1] != 4:
            raise ValueError(f"EvalLabels.box must be [N, 4], got {self.box.shape}")

    def __len__(self) -> int:
        return len(self.angle_index)

    def subset(self, mask: np.ndarray) -> EvalLabels:
        """The rows where ``mask`` is True."""
        return EvalLabels(**{k: np.asarray(getattr(self, k))[mask] for k in self.__dataclass_fields__})


@dataclass
class TaskEvaluation:
    """One task's metrics and the tables behind them.

    Attributes:
        task: The task.
        metrics: Metric name -> value.
        per_class: Per-class table (angle, body), or None.
        confusion: Confusion matrix (rows: truth, columns: prediction), or None.
        class_names: Row/column names of ``confusion``.
        beside: URIs of the other registered versions some of the figures were computed with (an angle
            version's ``with_plate_flank.*`` figures read the plate version it ran beside).
    """

    task: str
    metrics: dict[str, float]
    per_class: pd.DataFrame | None = None
    confusion: np.ndarray | None = None
    class_names: tuple[str, ...] = field(default_factory=tuple)
    beside: tuple[str, ...] = ()


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def _per_class_table(truth: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    k = len(names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (truth, pred), 1)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    table = pd.DataFrame({"class": list(names), "support": support, "precision": precision, "recall": recall, "f1": f1})
    return table, cm


def evaluate_angle(probs: np.ndarray, labels: EvalLabels, taxonomy: Taxonomy) -> TaskEvaluation:
    """Top-1/top-3, macro F1 and mirror-pair accuracy of the angle softmax, in flank classes.

    ``labels.angle_index`` holds flank-class indices (as the feed delivers them); the per-class table
    and confusion matrix name the flank classes (``side_right``, ...).
    """
    keep = labels.angle_index >= 0
    probs, truth = np.asarray(probs)[keep], labels.angle_index[keep].astype(np.int64)
    if probs.ndim != 2 or probs.shape[1] != taxonomy.num_classes:
        raise ValueError(f"angle output must be [N, {taxonomy.num_classes}], got {probs.shape}")
    pred = probs.argmax(axis=1)
    top3 = np.argsort(-probs, axis=1)[:, :3]
    table, cm = _per_class_table(truth, pred, taxonomy.flank_names)
    mirrored = np.array([c.mirror is not None for c in taxonomy.classes])
    partner = np.array(taxonomy.flip_permutation)
    on_pairs = mirrored[truth] if len(truth) else np.zeros(0, dtype=bool)
    present = table["support"].to_numpy() > 0
    metrics = {
        "top1": float((pred == truth).mean()) if len(truth) else 0.0,
        "top3": float((top3 == truth[:, None]).any(axis=1).mean()) if len(truth) else 0.0,
        "macro_f1": float(table["f1"].to_numpy()[present].mean()) if present.any() else 0.0,
        "mirror_pair_accuracy": float((pred[on_pairs] == truth[on_pairs]).mean()) if on_pairs.any() else 0.0,
        "mirror_swap_rate": float((pred[on_pairs] == partner[truth[on_pairs]]).mean()) if on_pairs.any() else 0.0,
        "n": float(len(truth)),
    }
    for driver, passenger in taxonomy.mirror_pairs:
        on_pair = (truth == taxonomy.index(driver)) | (truth == taxonomy.index(passenger))
        if on_pair.any():
            family = taxonomy[driver].flank_class.rsplit("_", 1)[0]  # front_3q_right -> front_3q
            metrics[f"mirror_accuracy.{family}"] = float((pred[on_pair] == truth[on_pair]).mean())
    return TaskEvaluation("angle", metrics, table, cm, taxonomy.flank_names)


def _binary(scores: np.ndarray, truth: np.ndarray, threshold: float) -> dict[str, float]:
    flag = np.asarray(scores).reshape(-1) >= threshold
    truth = truth.astype(bool)
    tp = float(np.sum(flag & truth))
    fp = float(np.sum(flag & ~truth))
    fn = float(np.sum(~flag & truth))
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _safe_div(2 * precision * recall, precision + recall),
        "accuracy": float((flag == truth).mean()) if len(truth) else 0.0,
        "n": float(len(truth)),
    }


def evaluate_banner(scores: np.ndarray, labels: EvalLabels, threshold: float) -> TaskEvaluation:
    """Precision, recall and F1 of the banner flag at ``threshold``."""
    keep = labels.has_banner >= 0
    return TaskEvaluation("banner", _binary(np.asarray(scores).reshape(-1)[keep], labels.has_banner[keep], threshold))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (x0, y0, x1, y1) boxes, row by row."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def evaluate_plate(presence: np.ndarray, boxes: np.ndarray, labels: EvalLabels, threshold: float) -> TaskEvaluation:
    """Presence precision/recall at ``threshold`` (photos without plates included) and box IoU."""
    keep = labels.plate_present >= 0
    metrics = _binary(np.asarray(presence).reshape(-1)[keep], labels.plate_present[keep], threshold)
    with_box = (labels.plate_present == 1) & (labels.box_known == 1)
    ious = box_iou(np.asarray(boxes)[with_box], labels.box[with_box])
    metrics["mean_iou"] = float(ious.mean()) if len(ious) else 0.0
    metrics["iou50_rate"] = float((ious >= 0.5).mean()) if len(ious) else 0.0
    metrics["n_with_plate"] = float(with_box.sum())
    return TaskEvaluation("plate", metrics)


def evaluate_body(probs: np.ndarray, labels: EvalLabels, taxonomy: Taxonomy) -> TaskEvaluation:
    """Accuracy of the body softmax on rows with a body label (exterior shots)."""
    keep = labels.body_index >= 0
    probs, truth = np.asarray(probs)[keep], labels.body_index[keep].astype(np.int64)
    if probs.ndim != 2 or probs.shape[1] != len(taxonomy.body_types):
        raise ValueError(f"body output must be [N, {len(taxonomy.body_types)}], got {probs.shape}")
    pred = probs.argmax(axis=1)
    table, cm = _per_class_table(truth, pred, taxonomy.body_types)
    present = table["support"].to_numpy() > 0
    metrics = {
        "accuracy": float((pred == truth).mean()) if len(truth) else 0.0,
        "macro_recall": float(table["recall"].to_numpy()[present].mean()) if present.any() else 0.0,
        "n": float(len(truth)),
    }
    return TaskEvaluation("body", metrics, table, cm, taxonomy.body_types)


def evaluate_task(
    task: str,
    outputs: Mapping[str, np.ndarray],
    labels: EvalLabels,
    taxonomy: Taxonomy,
    *,
    banner_threshold: float = 0.5,
    plate_threshold: float = 0.5,
) -> TaskEvaluation:
    """Dispatch to the task's evaluation.

    Args:
        task: ``angle``, ``banner``, ``plate`` or ``body``.
        outputs: The model's outputs (Keras output name -> array), one row per label row.
        labels: The labels.
        taxonomy: The shot taxonomy.
        banner_threshold: Flag threshold for the banner score (``scoring.banner_threshold``).
        plate_threshold: Flag threshold for the plate presence score (``scoring.plate_threshold``).

    Raises:
        ValueError: Unknown task, a missing output, or rows that do not match the labels.
    """
    needed = {"angle": ("angle",), "banner": ("banner",), "plate": ("plate_presence", "plate_box"), "body": ("body",)}
    if task not in needed:
        raise ValueError(f"unknown model task {task!r}")
    for name in needed[task]:
        if name not in outputs:
            raise ValueError(f"{task} evaluation needs model output {name!r}; got {sorted(outputs)}")
        if len(outputs[name]) != len(labels):
            raise ValueError(f"model output {name!r} has {len(outputs[name])} rows for {len(labels)} labels")
    if task == "angle":
        return evaluate_angle(outputs["angle"], labels, taxonomy)
    if task == "banner":
        return evaluate_banner(outputs["banner"], labels, banner_threshold)
    if task == "plate":
        return evaluate_plate(outputs["plate_presence"], outputs["plate_box"], labels, plate_threshold)
    return evaluate_body(outputs["body"], labels, taxonomy)


def plot_confusion(cm: np.ndarray, names: tuple[str, ...], title: str, path: Path) -> Path:
    """Write a confusion matrix (rows: truth, normalised per row) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    side = max(4.0, 0.35 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=5,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_evaluation(evaluation: TaskEvaluation, out_dir: Path, extra: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``metrics.json`` (+ ``per_class.csv`` and ``confusion.png`` where they exist) to ``out_dir``.

    Returns:
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    payload = {"task": evaluation.task, "metrics": evaluation.metrics, **(dict(extra) if extra else {})}
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    written.append(metrics_path)
    if evaluation.per_class is not None:
        table_path = out_dir / "per_class.csv"
        evaluation.per_class.to_csv(table_path, index=False, float_format="%.4f")
        written.append(table_path)
    if evaluation.confusion is not None:
        written.append(
            plot_confusion(
                evaluation.confusion, evaluation.class_names, f"{evaluation.task}: confusion", out_dir / "confusion.png"
            )
        )
    return written
