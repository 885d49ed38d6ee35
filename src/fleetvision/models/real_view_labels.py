"""A user's own view and body labels of a real-photo set, scored against the models (pure numpy/pandas).

``benchmarks/bench_real_dev.py --views LABELS.csv`` measures the shot and body models on real photos
that someone has labelled by eye: ``file`` (as in the set's ``plates.csv``), ``view`` (one of
:data:`VIEW_FAMILIES` or ``unclear``) and ``body`` (a taxonomy body type or ``unclear``). The set's own
licence may forbid shipping anything derived from its photos, labels included (``../shared/realdev`` does),
so such a file lives outside the repository and the report holds aggregates only.

The view is labelled without a side. An optional ``flank`` column (``left`` | ``right`` | ``unclear`` or
empty) names the car's own flank that a 3/4 or side photo shows: left when the car's nose points to the
photo's left (``docs/models.md``, *Flank classes*). The angle model's flank-class probabilities are
summed into the unsided view families plus the non-exterior groups (:func:`view_family_probabilities`)
and the answer is the family with the most mass, as :mod:`fleetvision.models.coarse_metrics` does for
the 10-way buckets; the flank is the more likely of left and right (:func:`flank_probabilities`).
:func:`mirror_flank_report` needs no labels: it asks whether the flank answer changes when the photo is
mirrored, as it must when the model reads the flank from the car.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from fleetvision.models.coarse_metrics import check_angle_probs, sum_into
from fleetvision.taxonomy import FLANK_SUFFIX, GROUPS, Taxonomy

VIEW_FAMILIES: tuple[str, ...] = ("full_front", "front_3q", "side", "rear_3q", "full_rear")
"""Exterior views without a side, front to rear."""
SIDED_FAMILIES: tuple[str, ...] = ("front_3q", "side", "rear_3q")
"""The views in which a flank shows."""
UNCLEAR = "unclear"
"""The label for "the labeller could not tell": the photo is left out of that figure."""
FRONT, REAR = "front", "rear"
_END = {"full_front": FRONT, "front_3q": FRONT, "rear_3q": REAR, "full_rear": REAR}
_HEAD_ON = {"full_front": True, "full_rear": True, "front_3q": False, "rear_3q": False}


def family_names() -> tuple[str, ...]:
    """The answers of :func:`view_family_probabilities`: the view families, then the non-exterior groups."""
    return (*VIEW_FAMILIES, *(g for g in GROUPS if g != "exterior"))


def family_of(class_name: str, taxonomy: Taxonomy) -> str:
    """A taxonomy class's view family (``rear_3q_driver`` -> ``rear_3q``), or its group if not exterior."""
    cls = taxonomy[class_name]
    if cls.group != "exterior":
        return cls.group
    for suffix in ("_driver", "_passenger"):
        if cls.name.endswith(suffix):
            return cls.name[: -len(suffix)]
    return cls.name


def view_family_probabilities(angle_probs: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Flank-class probabilities [N, C] -> [N, len(family_names())], summed by family.

    Raises:
        ValueError: ``angle_probs`` is not [N, C].
    """
    probs = check_angle_probs(angle_probs, taxonomy)
    return sum_into(probs, [family_of(c.name, taxonomy) for c in taxonomy.classes], family_names())


FLANKS: tuple[str, ...] = ("left", "right")
"""The car's own flanks, in the column order of :func:`flank_probabilities`."""


def flank_probabilities(angle_probs: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """The angle model's flank-class probabilities [N, C] -> [N, 2]: left and right, summed over the
    sided exterior classes (``*_left``, ``*_right`` of ``taxonomy.flank_names``) and normalised over the two;
    a row with no mass on either flank is NaN.

    Raises:
        ValueError: ``angle_probs`` is not [N, C].
    """
    probs = check_angle_probs(angle_probs, taxonomy)
    sides = [next((f for suffix, f in FLANK_SUFFIX.items() if name.endswith(suffix)), "none")
             for name in taxonomy.flank_names]
    summed = sum_into(probs, sides, (*FLANKS, "none"))[:, :2]
    total = summed.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, summed / total, np.nan)


def read_view_labels(path: str | Path, files: Sequence[str], taxonomy: Taxonomy) -> pd.DataFrame:
    """Read a labels CSV and align it to ``files`` (the photos scored, in scoring order).

    Labels of photos not in ``files`` (a run with ``--limit``) are left out.

    Returns:
        One row per entry of ``files``: ``view``, ``body`` and ``flank`` (all None without that optional
        column), None where the photo is unlabelled, labelled ``unclear`` or left empty (flank).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A column is missing, a file repeats, no label names a photo of ``files`` (the wrong
            file?), or a value is unknown; the message names the column and the offending values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"view labels not found: {path}")
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("file", "view", "body") if c not in labels.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected file, view, body")
    repeated = sorted(set(labels.loc[labels["file"].duplicated(), "file"]))
    if repeated:
        raise ValueError(f"{path}: file(s) labelled more than once: {repeated[:5]}")
    if files and not set(labels["file"]) & set(files):
        raise ValueError(f"{path}: none of its {len(labels)} file(s) is a photo of the set, e.g. {list(files)[:3]}")
    if "flank" not in labels.columns:
        labels["flank"] = UNCLEAR
    labels["flank"] = labels["flank"].replace("", UNCLEAR)
    for column, allowed in (("view", VIEW_FAMILIES), ("body", taxonomy.body_types), ("flank", FLANKS)):
        values = labels[column].str.strip().str.lower()
        bad = sorted(set(values) - set(allowed) - {UNCLEAR})
        if bad:
            raise ValueError(f"{path}: column {column!r} has {bad}; expected one of {[*allowed, UNCLEAR]}")
        labels[column] = values.where(values != UNCLEAR, None)
    aligned = labels.set_index("file").reindex(list(files))[["view", "body", "flank"]]
    return aligned.astype(object).where(aligned.notna(), None).reset_index(drop=True)


def _confusion(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, predicted):
        row = table.setdefault(t, {})
        row[p] = row.get(p, 0) + 1
    return {t: dict(sorted(row.items(), key=lambda kv: -kv[1])) for t, row in sorted(table.items())}


def _rate(hits: np.ndarray) -> float | None:
    return round(float(hits.mean()), 4) if len(hits) else None


MIN_CLASS_LABELS = 5
"""A class (a view family, a body type) counts towards a balanced figure with at least this many labels."""


class Recalls(NamedTuple):
    """:func:`class_recalls`' answer."""

    recall: dict[str, float | None]
    """Recall per labelled class."""
    balanced: float | None
    """Mean recall over the classes with :data:`MIN_CLASS_LABELS` labels (None: no such class)."""
    classes_counted: int
    """How many classes the mean is over."""


def class_recalls(truth: np.ndarray, predicted: np.ndarray) -> Recalls:
    """Recall per labelled class, and their mean over the classes with :data:`MIN_CLASS_LABELS` labels.

    A set of real photos is rarely balanced (hatches are most of one market's body types, full rears most
    of a plate benchmark's views), so its accuracy rewards a model that leans to the commonest class; the
    mean recall does not (chance: one over the number of classes counted). A change that moves accuracy
    but not this moved answers between classes rather than getting more of them right.
    """
    recalls = {str(t): _rate(predicted[truth == t] == t) for t in sorted(set(truth.tolist()))}
    counted = [recalls[t] for t in recalls if int((truth == t).sum()) >= MIN_CLASS_LABELS]
    return Recalls(recalls, round(float(np.mean(counted)), 4) if counted else None, len(counted))


def labelled_report(
    family_probs: np.ndarray,
    body_predicted: Sequence[str | None],
    labels: pd.DataFrame,
    flank_probs: np.ndarray | None = None,
) -> dict[str, Any]:
    """View and body accuracy of one model set on the labelled photos.

    Args:
        family_probs: [N, len(family_names())] from :func:`view_family_probabilities`; a photo that
            failed to decode has a NaN row and counts as wrong.
        body_predicted: The body type the job wrote per photo (None: none, e.g. not called exterior).
        labels: :func:`read_view_labels` output, one row per photo.
        flank_probs: [N, 2] from :func:`flank_probabilities` (NaN rows: not decoded, counted wrong);
            with it and flank labels the report has ``flank``.

    Returns:
        ``view``: ``n``, ``accuracy`` (the view family, 5-way among exterior views, any family or group
        may be answered), ``front_rear_accuracy`` (front or rear end, of the photos labelled a front or
        rear view), ``head_on_accuracy`` (of those whose end is right, head-on vs 3/4 right),
        ``balanced_recall``, ``families_counted`` and ``recall`` per family (:func:`class_recalls`),
        ``confusion``; ``body``: ``n``, ``accuracy``, ``majority_share`` (what always answering the commonest
        labelled type scores), ``balanced_recall`` and ``types_counted`` (:func:`class_recalls`), ``recall``
        per type, ``confusion``, ``predicted_share``; ``flank`` (where
        labelled): ``n``, ``accuracy`` (the more likely flank), ``n_view_right`` and
        ``accuracy_when_view_right`` (of the photos whose view family was answered right),
        ``majority_share`` (the share of the commoner label: what always giving one answer scores) and
        ``predicted_right_share``.

    Raises:
        ValueError: Lengths differ.
    """
    probs = np.asarray(family_probs, dtype=np.float64)
    n = len(labels)
    if probs.shape[0] != n or len(body_predicted) != n or (flank_probs is not None and len(flank_probs) != n):
        raise ValueError(
            f"labelled_report: {probs.shape[0]} predictions, {len(body_predicted)} body types, "
            f"{None if flank_probs is None else len(flank_probs)} flank rows, {n} labels"
        )
    names = np.array(family_names(), dtype=object)
    decoded = np.isfinite(probs).all(axis=1)
    predicted = np.where(decoded, names[np.nan_to_num(probs, nan=-1.0).argmax(axis=1)], "(not decoded)")

    view = labels["view"].to_numpy(dtype=object)
    has_view = np.array([v is not None for v in view])
    truth_v, pred_v = view[has_view].astype(str), predicted[has_view].astype(str)
    ends = np.array([t in _END for t in truth_v], dtype=bool)
    end_truth = np.array([_END[t] for t in truth_v[ends]], dtype=object)
    end_pred = np.array([_END.get(p) for p in pred_v[ends]], dtype=object)
    end_right = end_truth == end_pred
    head_truth = np.array([_HEAD_ON[t] for t in truth_v[ends][end_right]], dtype=bool)
    head_pred = np.array([_HEAD_ON[p] for p in pred_v[ends][end_right]], dtype=bool)

    body = labels["body"].to_numpy(dtype=object)
    has_body = np.array([b is not None for b in body])
    truth_b = body[has_body].astype(str)
    pred_b = np.array([p if p is not None else "(none)" for p in np.asarray(body_predicted, dtype=object)[has_body]])
    shares = pd.Series(pred_b, dtype=object).value_counts(normalize=True) if len(pred_b) else pd.Series(dtype=float)
    recalls = class_recalls(truth_b, pred_b)
    view_recalls = class_recalls(truth_v, pred_v)
    report: dict[str, Any] = {
        "view": {
            "n": int(has_view.sum()),
            "accuracy": _rate(truth_v == pred_v),
            "front_rear_n": int(ends.sum()),
            "front_rear_accuracy": _rate(end_right),
            "head_on_accuracy": _rate(head_truth == head_pred),
            "balanced_recall": view_recalls.balanced,
            "families_counted": view_recalls.classes_counted,
            "recall": view_recalls.recall,
            "confusion": _confusion(truth_v.tolist(), pred_v.tolist()),
        },
        "body": {
            "n": int(has_body.sum()),
            "accuracy": _rate(truth_b == pred_b),
            "majority_share": (round(float(pd.Series(truth_b).value_counts().max() / len(truth_b)), 4)
                               if len(truth_b) else None),
            "balanced_recall": recalls.balanced,
            "types_counted": recalls.classes_counted,
            "recall": recalls.recall,
            "confusion": _confusion(truth_b.tolist(), pred_b.tolist()),
            "predicted_share": {str(k): round(float(v), 4) for k, v in shares.items()},
        },
    }
    flank = labels["flank"].to_numpy(dtype=object) if "flank" in labels.columns else np.full(n, None, dtype=object)
    has_flank = np.array([f is not None for f in flank], dtype=bool)
    if flank_probs is not None and has_flank.any():
        fp = np.asarray(flank_probs, dtype=np.float64)[has_flank]
        answered = np.isfinite(fp).all(axis=1)
        pred_f = np.where(answered, np.array(FLANKS, dtype=object)[np.nan_to_num(fp, nan=-1.0).argmax(axis=1)], None)
        truth_f = flank[has_flank]
        hits = pred_f == truth_f
        view_right = (view[has_flank] == predicted[has_flank]) & np.array([v is not None for v in view[has_flank]])
        report["flank"] = {
            "n": int(has_flank.sum()),
            "accuracy": _rate(hits),
            "n_view_right": int(view_right.sum()),
            "accuracy_when_view_right": _rate(hits[view_right]),
            "majority_share": round(max(float(np.mean(truth_f == f)) for f in FLANKS), 4),
            "predicted_right_share": _rate(pred_f == "right"),
        }
    return report


def mirror_flank_report(
    flank_probs: np.ndarray,
    mirrored_flank_probs: np.ndarray,
    family_probs: np.ndarray,
    among: np.ndarray | None = None,
) -> dict[str, Any]:
    """Does the flank answer follow the photo? A label-free check: a mirror image shows the other flank.

    A model that reads the flank from the car must answer the other flank for a photo's mirror image; one
    that leans on a prior answers the same for both. Counted over the photos whose answered view family is
    sided (3/4 or side), or over ``among`` (a boolean mask, e.g. the photos with a flank label).

    Args:
        flank_probs: [N, 2] from :func:`flank_probabilities` for the photos (NaN rows: not decoded).
        mirrored_flank_probs: [N, 2], the same for their left-right mirror images.
        family_probs: [N, len(family_names())] from :func:`view_family_probabilities` for the photos.
        among: Count these photos instead of those called sided.

    Returns:
        ``n``; ``flips`` (the share whose mirror image gets the other flank: 1.0 for a model that
        reads the flank, near 0 for one that always gives the same answer); ``right_share`` and
        ``right_share_mirrored`` (how often "right" is answered for the photos and for their mirrors).

    Raises:
        ValueError: Lengths differ.
    """
    fp = np.asarray(flank_probs, dtype=np.float64)
    mp = np.asarray(mirrored_flank_probs, dtype=np.float64)
    probs = np.asarray(family_probs, dtype=np.float64)
    if not (len(fp) == len(mp) == len(probs)) or (among is not None and len(among) != len(fp)):
        raise ValueError(f"mirror_flank_report: {len(fp)}, {len(mp)} flank rows, {len(probs)} family rows, "
                         f"{None if among is None else len(among)} mask entries")
    answered = np.isfinite(fp).all(axis=1) & np.isfinite(mp).all(axis=1) & np.isfinite(probs).all(axis=1)
    if among is None:
        sided = np.array([family_names().index(f) for f in SIDED_FAMILIES])
        keep = answered & np.isin(probs.argmax(axis=1), sided)  # a NaN row is not answered anyway
    else:
        keep = answered & np.asarray(among, dtype=bool)
    right = FLANKS.index("right")
    orig, mirrored = fp[keep].argmax(axis=1), mp[keep].argmax(axis=1)
    return {"n": int(keep.sum()), "flips": _rate(orig != mirrored),
            "right_share": _rate(orig == right), "right_share_mirrored": _rate(mirrored == right)}
