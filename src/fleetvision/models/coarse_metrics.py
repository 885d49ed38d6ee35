"""Accuracy at the grain real labels come in: the 10-way shot bucket, the group, the body type.

Real labellers name the exterior view (``side_driver``) but give interiors and details as a group
(``interior``, ``detail``). The real-photo figures are scored at that grain:

* **10-way**: the 8 exterior views (market names) plus ``interior`` plus ``detail``;
* **groups**: ``exterior`` / ``interior`` / ``detail``;
* **body**: the body type of exterior photos.

The angle model answers in flank classes (``side_right``, :mod:`fleetvision.taxonomy`); its
probabilities are summed into the buckets in the market's terms (``driver_side``), so "interior" is the
total probability of the 10 interior classes and a bucket's answer is the bucket with the most mass.
Pure numpy: used by ``benchmarks/bench_label_efficiency.py`` and usable on any model's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleetvision.taxonomy import GROUPS, Taxonomy


def ten_way_buckets(taxonomy: Taxonomy) -> tuple[str, ...]:
    """The 10-way buckets: the exterior classes (market names, taxonomy order), then the non-exterior groups."""
    exterior = tuple(c.name for c in taxonomy.classes if c.group == "exterior")
    return (*exterior, *(g for g in GROUPS if g != "exterior"))


def bucket_of(market_class: str, taxonomy: Taxonomy) -> str:
    """A market class's 10-way bucket: itself for an exterior view, else its group.

    Raises:
        KeyError: Not a class of the taxonomy.
    """
    cls = taxonomy[market_class]
    return cls.name if cls.group == "exterior" else cls.group


def sum_into(probs: np.ndarray, labels: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Sum class probabilities [N, C] into ``names`` [N, len(names)]: class i counts towards ``labels[i]``."""
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(labels), len(names)), dtype=np.float64)
    for i, label in enumerate(labels):
        matrix[i, index[label]] = 1.0
    return np.asarray(probs, dtype=np.float64) @ matrix


def check_angle_probs(angle_probs: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """``angle_probs`` as an array, checked to be [N, number of taxonomy classes].

    Raises:
        ValueError: It is not.
    """
    probs = np.asarray(angle_probs)
    if probs.ndim != 2 or probs.shape[1] != taxonomy.num_classes:
        raise ValueError(f"angle probabilities must be [N, {taxonomy.num_classes}], got shape {probs.shape}")
    return probs


def bucket_probabilities(angle_probs: np.ndarray, taxonomy: Taxonomy, driver_side: str) -> np.ndarray:
    """Flank-class probabilities [N, C] -> 10-way bucket probabilities [N, 10] (:func:`ten_way_buckets` order).

    Raises:
        ValueError: ``angle_probs`` is not [N, C], or a bad ``driver_side``.
    """
    probs = check_angle_probs(angle_probs, taxonomy)
    market = taxonomy.market_names(driver_side)  # softmax index i -> its market name
    return sum_into(probs, [bucket_of(name, taxonomy) for name in market], ten_way_buckets(taxonomy))


def group_probabilities(angle_probs: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Flank-class probabilities [N, C] -> group probabilities [N, 3] (:data:`GROUPS` order).

    Raises:
        ValueError: ``angle_probs`` is not [N, C].
    """
    probs = check_angle_probs(angle_probs, taxonomy)
    return sum_into(probs, [c.group for c in taxonomy.classes], GROUPS)


def coarse_scores(
    angle_probs: np.ndarray,
    truth_buckets: Sequence[str],
    taxonomy: Taxonomy,
    driver_side: str,
    *,
    body_probs: np.ndarray | None = None,
    truth_body: Sequence[str | None] | None = None,
) -> dict[str, float | int]:
    """10-way, group and body accuracy of one model on one labelled set.

    Args:
        angle_probs: The angle model's probabilities [N, C] (flank classes).
        truth_buckets: Each photo's 10-way bucket (:func:`ten_way_buckets`: a market view name,
            ``interior`` or ``detail``).
        taxonomy: The shot classes.
        driver_side: The market the buckets are named in (``market.driver_side``).
        body_probs: The body model's probabilities [N, B] (taxonomy body-type order), or None.
        truth_body: Each photo's body type, None where it has none (interiors, details).

    Returns:
        ``ten_way_accuracy``, ``group_accuracy``, ``n`` and, with body inputs, ``body_accuracy`` and
        ``n_body`` (photos with a body type); ``mirror_side_accuracy``: of the exterior photos of a sided
        view whose view (side ignored) is right, the share whose side is right too.

    Raises:
        ValueError: Lengths differ, or an unknown bucket or body type.
    """
    buckets = ten_way_buckets(taxonomy)
    probs = check_angle_probs(angle_probs, taxonomy)
    if len(truth_buckets) != len(probs):
        raise ValueError(f"coarse_scores: {len(probs)} predictions but {len(truth_buckets)} truth buckets")
    unknown = sorted(set(truth_buckets) - set(buckets))
    if unknown:
        raise ValueError(f"coarse_scores: unknown bucket(s) {unknown}; known: {', '.join(buckets)}")
    out: dict[str, float | int] = {"n": len(probs)}
    if not len(probs):
        return out
    predicted = np.asarray(buckets)[bucket_probabilities(probs, taxonomy, driver_side).argmax(axis=1)]
    truth = np.asarray(truth_buckets)
    out["ten_way_accuracy"] = float(np.mean(predicted == truth))
    group_of = {b: (taxonomy[b].group if b in taxonomy.names else b) for b in buckets}
    predicted_group = np.asarray(GROUPS)[group_probabilities(probs, taxonomy).argmax(axis=1)]
    out["group_accuracy"] = float(np.mean(predicted_group == np.asarray([group_of[b] for b in truth])))
    sided = [i for i, b in enumerate(truth) if b in taxonomy.names and taxonomy[b].mirror is not None]
    same_view = [i for i in sided if predicted[i] in (truth[i], taxonomy[truth[i]].mirror)]
    if same_view:
        out["mirror_side_accuracy"] = float(np.mean([predicted[i] == truth[i] for i in same_view]))
    if body_probs is not None and truth_body is not None:
        body = np.asarray(body_probs)
        if len(body) != len(probs) or len(truth_body) != len(probs):
            raise ValueError("coarse_scores: body_probs, truth_body and angle_probs differ in length")
        types = list(taxonomy.body_types)
        bad = sorted({b for b in truth_body if b is not None and b not in types})
        if bad:
            raise ValueError(f"coarse_scores: unknown body type(s) {bad}; known: {', '.join(types)}")
        known = [i for i, b in enumerate(truth_body) if b is not None]
        out["n_body"] = len(known)
        if known:
            hits = [types[int(body[i].argmax())] == truth_body[i] for i in known]
            out["body_accuracy"] = float(np.mean(hits))
    return out
