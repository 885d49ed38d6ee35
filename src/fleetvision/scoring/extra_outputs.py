"""The scoring model's outputs beyond the tasks' own, and the one order in which they are folded in.

The scoring model (``fleetvision.models.pretrained.fuse_task_models``) may answer, beside the task outputs,
what the angle and plate heads say about the photo's mirror image (:mod:`fleetvision.scoring.mirror_image`)
and an angle model's group head (:mod:`fleetvision.scoring.shot_groups`). Serving passes them through
(:data:`EXTRA_OUTPUTS`), ``tags.validate_outputs`` checks them, and :func:`fold_extra_outputs` folds them
into the task outputs for the tags (``tags.as_tagged``) and the frozen evaluation alike.

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fleetvision.scoring.mirror_image import MIRROR_OUTPUTS, fold_mirror_image
from fleetvision.scoring.shot_groups import ANGLE_GROUP, fold_group_head
from fleetvision.taxonomy import Taxonomy

EXTRA_OUTPUTS: tuple[str, ...] = (*MIRROR_OUTPUTS.values(), ANGLE_GROUP)
"""Outputs a scoring model may give beyond its tasks' own; never required (older and flat models lack them)."""


def fold_extra_outputs(
    outputs: Mapping[str, np.ndarray], taxonomy: Taxonomy, *, flank: bool, plate: bool
) -> dict[str, np.ndarray]:
    """``outputs`` with the extra outputs folded in and dropped: first the mirror image's answers
    (:func:`~fleetvision.scoring.mirror_image.fold_mirror_image` with ``flank`` / ``plate``, the
    ``scoring.flank_symmetry`` / ``plate_symmetry`` settings), then the group head's shot groups
    (:func:`~fleetvision.scoring.shot_groups.fold_group_head`, whenever the outputs hold them)."""
    return fold_group_head(fold_mirror_image(outputs, taxonomy, flank=flank, plate=plate), taxonomy)
