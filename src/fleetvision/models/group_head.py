"""An angle head that carries a second head for the shot group alone (``angle_group``).

Why and how scoring reads it: :mod:`fleetvision.scoring.shot_groups`. :func:`with_group_head` joins two
trained angle heads of one architecture on the same backbone: the *view head* (its ``angle`` softmax is
kept as it is) and the *group head* (an angle head trained for the group decision, say with close-ups of
car parts; its softmax summed per group is the new ``angle_group`` output). The result is one flat head
(``head_angle``) that pools the feature map once and ends in two dense layers, so it runs on the same
backbone pass, fuses, answers for the mirror image (``angle`` only) and saves like any angle head.

Pure Keras and numpy; the job (:mod:`fleetvision.models.group_head_job`) reads and writes the folders.
"""

from __future__ import annotations

import keras
import numpy as np

from fleetvision.models.head_soup import SoupError, check_same_architecture
from fleetvision.scoring.shot_groups import ANGLE_GROUP, group_matrix
from fleetvision.taxonomy import Taxonomy

GROUP_CLASSES_LAYER = "angle_group_classes"
"""The group head's softmax over the angle classes, inside the joined head; :data:`ANGLE_GROUP` sums it per group."""


class GroupHeadError(ValueError):
    """The two heads cannot be joined (not angle heads of one architecture, or one already joined)."""


def has_group_head(head: keras.Model) -> bool:
    """The head already answers :data:`ANGLE_GROUP`."""
    return any(layer.name in (GROUP_CLASSES_LAYER, ANGLE_GROUP) for layer in head.layers)


def with_group_head(view_head: keras.Model, group_head: keras.Model, taxonomy: Taxonomy) -> keras.Model:
    """One angle head: ``view_head``'s layers and ``angle`` output, and ``angle_group`` = ``group_head``'s
    softmax (its last dense layer, on the same pooled features) summed per shot group.

    Neither input is changed; the result holds copies of ``group_head``'s last-layer weights and shares
    ``view_head``'s layers (save it, or clone it, before training either).

    Raises:
        GroupHeadError: Either head already carries a group head, the two differ in architecture (the
            group head must pool exactly as the view head does: only the last dense layer may differ),
            or the last layer's width is not the taxonomy's.
    """
    for role, head in (("view", view_head), ("group", group_head)):
        if has_group_head(head):
            raise GroupHeadError(f"the {role} head already carries a group head ({ANGLE_GROUP})")
    try:
        check_same_architecture([view_head, group_head])
    except SoupError as e:
        raise GroupHeadError(f"the view and group heads differ: {e}") from e
    names = [layer.name for layer in view_head.layers if layer.weights]
    if names != ["angle"] or [layer.name for layer in group_head.layers if layer.weights] != ["angle"]:
        raise GroupHeadError(f"only angle heads whose one weighted layer is 'angle' can be joined (got {names})")
    view_dense, group_dense = view_head.get_layer("angle"), group_head.get_layer("angle")
    if int(view_dense.units) != taxonomy.num_classes:
        raise GroupHeadError(f"the angle layer has {view_dense.units} units, the taxonomy {taxonomy.num_classes}")
    classes = keras.layers.Dense.from_config({**group_dense.get_config(), "name": GROUP_CLASSES_LAYER})
    matrix = group_matrix(taxonomy).astype("float32")
    summed = keras.layers.Dense(matrix.shape[1], use_bias=False, trainable=False, name=ANGLE_GROUP)
    pooled = view_dense.input  # the view head's pooled features (after its dropout, identity when scoring)
    outputs = {"angle": view_dense.output, ANGLE_GROUP: summed(classes(pooled))}
    joined = keras.Model(view_head.inputs, outputs, name=view_head.name)
    classes.set_weights([np.asarray(w) for w in group_dense.get_weights()])
    summed.set_weights([matrix])
    return joined
