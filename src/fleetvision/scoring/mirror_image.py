"""What the heads say about a photo's mirror image, read in the same backbone pass, and how scoring uses it.

A photo mirrored is still a photo of the same car: its left flank becomes a right flank, and a plate stays
a plate. The heads are trained for that (flip augmentation, with the taxonomy's flip permutation for the
angle), but on real photos they are not quite consistent, and asking them about the mirror image as well
evens out what is not.

The mirror image costs no second backbone pass. The feature map of a mirrored photo is close to the
photo's own map reversed left to right, so the scoring model runs the angle and plate heads a second time
on the reversed maps (``fleetvision.models.pretrained``, ``_attach(mirror=True)``; for the split angle
head that is its two halves' pools swapped) and returns their answers as :data:`ANGLE_MIRROR` and
:data:`PLATE_PRESENCE_MIRROR`. The heads are small beside the backbone; no cost was measured
(``docs/models.md``, *The photo's mirror image*).

- :func:`mirror_flank` (``scoring.flank_symmetry``): each mirror pair of the angle softmax
  (``front_3q_left``/``front_3q_right``, ...) keeps its total probability, so the view family, the shot
  group and every unsided class are the head's own; only the pair's split between its two flanks is the
  average of the photo's answer and the mirror image's, flanks swapped back. This cancels the angle head's
  lean to "right" on real 3/4 shots. Averaging the whole softmax instead lost real view accuracy (0.769 ->
  0.747: the head's view family on a real photo and on its mirror image differ).
- :func:`mirror_presence` (``scoring.plate_symmetry``): the plate presence is the mean of the two answers;
  the box stays the photo's own. On the real dev set it finds more real plates at the same rate of false
  plates on real lamp close-ups (0.879 -> 0.901 with at most 0.05 of them flagged).

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleetvision.taxonomy import Taxonomy

ANGLE_MIRROR = "angle_mirror"
"""The scoring model's output: the angle head's softmax on the horizontally reversed feature map."""
PLATE_PRESENCE_MIRROR = "plate_presence_mirror"
"""The scoring model's output: the plate head's presence on the horizontally reversed feature maps."""
MIRROR_OUTPUTS: dict[str, str] = {"angle": ANGLE_MIRROR, "plate_presence": PLATE_PRESENCE_MIRROR}
"""Output -> its mirror image's counterpart."""
_TINY = 1e-12


def mirror_flank(angle: np.ndarray, mirrored: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """The angle softmax with each mirror pair's flank split averaged over the photo and its mirror image.

    Args:
        angle: ``[N, C]`` the head's softmax on the photo (flank classes).
        mirrored: ``[N, C]`` its softmax on the mirror image (:data:`ANGLE_MIRROR`), in the mirror image's
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
    sided = np.arange(width) != perm
    average = 0.5 * (angle + mirrored[:, perm])
    pair_mass = angle + angle[:, perm]
    split = average / np.maximum(average + average[:, perm], _TINY)
    return np.where(sided[None, :], pair_mass * split, angle).astype(np.float32)


def mirror_presence(presence: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The plate presence as the mean of the photo's and its mirror image's (:data:`PLATE_PRESENCE_MIRROR`).

    Raises:
        ValueError: The shapes differ.
    """
    presence = np.asarray(presence, dtype=np.float64)
    mirrored = np.asarray(mirrored, dtype=np.float64)
    if presence.shape != mirrored.shape:
        raise ValueError(f"mirror_presence: presence {presence.shape} and mirrored {mirrored.shape} differ")
    return (0.5 * (presence + mirrored)).astype(np.float32)


def fold_mirror_image(
    outputs: Mapping[str, np.ndarray], taxonomy: Taxonomy, *, flank: bool, plate: bool
) -> dict[str, np.ndarray]:
    """``outputs`` with the mirror image's answers folded in: the angle by :func:`mirror_flank` where
    ``flank`` and the outputs hold :data:`ANGLE_MIRROR`, the plate presence by :func:`mirror_presence` where
    ``plate`` and they hold :data:`PLATE_PRESENCE_MIRROR`. The mirror outputs are dropped either way."""
    out = dict(outputs)
    angle_mirror = out.pop(ANGLE_MIRROR, None)
    presence_mirror = out.pop(PLATE_PRESENCE_MIRROR, None)
    if flank and angle_mirror is not None and "angle" in out:
        out["angle"] = mirror_flank(out["angle"], angle_mirror, taxonomy)
    if plate and presence_mirror is not None and "plate_presence" in out:
        out["plate_presence"] = mirror_presence(out["plate_presence"], presence_mirror)
    return out
