"""The shot group (exterior, interior, detail) from a head of its own, and how scoring uses it.

An angle head has two jobs that pull against each other when trained on renders: the group of a photo
(is this the car, its cabin, or a close-up of a part?) and, within the exterior group, the view and the
flank. Training with path-traced lamp and wheel close-ups teaches the first on real close-ups (real lamp
crops called detail 0.361 -> 0.615) and costs the second (real view accuracy 0.769 -> 0.724; sessions 34-35,
``docs/models.md``). So an angle model may carry a second head for the group alone
(:data:`ANGLE_GROUP`, ``[N, 3]`` in :data:`fleetvision.taxonomy.GROUPS` order; built by
``fleetvision group-head``, :mod:`fleetvision.models.group_head`): an angle head trained for the group
decision, its softmax summed per group, in the same backbone pass.

:func:`compose_groups` keeps each class's share of its group from the angle head and takes each group's
probability from the group head: the group is the group head's, the view, flank and detail class within
it the angle head's. :func:`fold_group_head` applies it where the outputs hold :data:`ANGLE_GROUP` and
drops the output; the tags, the frozen evaluation and the real-photo benchmark all read the composed
angle.

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleetvision.taxonomy import GROUPS, Taxonomy

ANGLE_GROUP = "angle_group"
"""An angle model's optional output: the shot group's probabilities ``[N, len(GROUPS)]`` from a head of its own."""
_TINY = 1e-12


def group_matrix(taxonomy: Taxonomy) -> np.ndarray:
    """``[C, G]`` float64 one-hot: class ``c`` (flank index) belongs to group ``g`` (:data:`GROUPS` order).

    Raises:
        ValueError: A group of no class (a taxonomy without interiors or details cannot take a group head).
    """
    matrix = np.zeros((taxonomy.num_classes, len(GROUPS)))
    for c in taxonomy.classes:
        matrix[c.index, GROUPS.index(c.group)] = 1.0
    empty = [g for g, n in zip(GROUPS, matrix.sum(axis=0), strict=True) if n == 0]
    if empty:
        raise ValueError(f"the taxonomy has no class in group(s) {empty}")
    return matrix


def compose_groups(angle: np.ndarray, groups: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """The angle softmax with each group's total probability taken from ``groups``.

    Args:
        angle: ``[N, C]`` the angle head's softmax.
        groups: ``[N, G]`` the group head's probabilities (:data:`ANGLE_GROUP`).
        taxonomy: Which group each class belongs to.

    Returns:
        ``[N, C]`` float32: ``angle[c] / angle's mass on group(c) * groups[group(c)]``. A group on which the
        angle head puts no mass at all (below 1e-12) shares the group head's probability equally among its
        classes, so every row still sums to ``groups``' sum.

    Raises:
        ValueError: The shapes are not ``[N, C]`` and ``[N, G]`` with the same N.
    """
    angle = np.asarray(angle, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.float64)
    matrix = group_matrix(taxonomy)
    c, g = matrix.shape
    if angle.ndim != 2 or angle.shape[1] != c or groups.shape != (angle.shape[0], g):
        raise ValueError(f"compose_groups: angle {angle.shape} must be [N, {c}] and groups {groups.shape} [N, {g}]")
    mass = angle @ matrix
    empty = mass < _TINY
    share = angle / (np.maximum(mass, _TINY) @ matrix.T)
    even = 1.0 / (matrix.sum(axis=0) @ matrix.T)  # one over the number of classes in each class's group
    within = np.where((empty @ matrix.T) > 0, even[None, :], share)
    return (within * (groups @ matrix.T)).astype(np.float32)


def fold_group_head(outputs: Mapping[str, np.ndarray], taxonomy: Taxonomy) -> dict[str, np.ndarray]:
    """``outputs`` with the angle's groups taken from :data:`ANGLE_GROUP` (:func:`compose_groups`) where both
    are present; :data:`ANGLE_GROUP` is dropped either way."""
    out = dict(outputs)
    groups = out.pop(ANGLE_GROUP, None)
    if groups is not None and "angle" in out:
        out["angle"] = compose_groups(out["angle"], groups, taxonomy)
    return out
