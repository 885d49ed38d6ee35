"""The flank of a sided shot read from the photo and from its mirror image, with one backbone pass.

A photo of a car's left flank, mirrored, is a photo of a right flank. The angle head is trained for that
(flip augmentation with the taxonomy's flip permutation), but on real photos it leans: it answered "right"
on most real 3/4 shots whatever their flank (``docs/models.md``, *The flank from the plate's position*).
Asking the head about the photo's mirror image as well, and averaging the two answers with the mirror's
classes swapped back, cancels any such lean by construction.

The mirror image costs no second backbone pass: the split angle head pools the left and right halves of
the backbone's last feature map apart (``fleetvision.models.architecture``), and the feature map of a
mirrored photo is close to the mirrored feature map, whose halves' pools are the photo's own, swapped.
So the scoring model runs the head a second time on the horizontally reversed map and returns that as
``angle_mirror`` (:data:`MIRROR_OUTPUT`; ``fleetvision.models.pretrained``); the head is a 2,560 x 27
dense layer, so this costs nothing measurable.

:func:`mirror_flank` then keeps the head's own answer for everything but the flank: each mirror pair
(``front_3q_left``/``front_3q_right``, ...) keeps its total probability, so the view family, the shot
group and every unsided class are the head's own, and only the pair's split between its two flanks is
the average of the photo's and the mirror image's. Averaging the whole softmax instead lost real view
accuracy (0.769 -> 0.747: the head's view family on a real photo and on its mirror image differ), while
this split alone named the real flank better (0.789 -> 0.842 of 19; docs/models.md, *The flank from the
photo and its mirror image*). Pure numpy.
"""

from __future__ import annotations

import numpy as np

from fleetvision.taxonomy import Taxonomy

MIRROR_OUTPUT = "angle_mirror"
"""The scoring model's output: the angle head's softmax on the horizontally reversed feature map."""
_TINY = 1e-12


def mirror_flank(angle: np.ndarray, mirrored: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """The angle softmax with each mirror pair's flank split averaged over the photo and its mirror image.

    Args:
        angle: ``[N, C]`` the head's softmax on the photo (flank classes).
        mirrored: ``[N, C]`` its softmax on the mirror image (:data:`MIRROR_OUTPUT`), in the mirror image's
            own classes (its ``front_3q_left`` is the photo's ``front_3q_right``).
        taxonomy: The flip permutation pairs the classes.

    Returns:
        ``[N, C]`` float32: unsided classes as in ``angle``; for a pair (c, c') the pair's mass
        ``angle[c] + angle[c']`` split as ``(angle[c] + mirrored[c']) / 2`` is to ``(angle[c'] + mirrored[c]) / 2``.

    Raises:
        ValueError: The shapes differ or do not have the taxonomy's width.
    """
    angle = np.asarray(angle, dtype=np.float64)
    mirrored = np.asarray(mirrored, dtype=np.float64)
    width = taxonomy.num_classes
    if angle.shape != mirrored.shape or angle.ndim != 2 or angle.shape[1] != width:
        raise ValueError(f"mirror_flank: angle {angle.shape} and mirrored {mirrored.shape} must both be [N, {width}]")
    perm = np.asarray(taxonomy.flip_permutation)
    sided = perm != np.arange(width)
    average = 0.5 * (angle + mirrored[:, perm])
    pair_mass = angle + angle[:, perm]
    split = average / np.maximum(average + average[:, perm], _TINY)
    return np.where(sided[None, :], pair_mass * split, angle).astype(np.float32)
