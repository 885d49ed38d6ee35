"""An angle head that carries a second head for the shot group alone (``angle_group``).

Why and how scoring reads it: :mod:`fleetvision.scoring.shot_groups`. :func:`with_group_head` joins two
trained angle heads of one architecture on the same backbone: the *view head* (its ``angle`` softmax is
kept as it is) and the *group head* (an angle head trained for the group decision, say with close-ups of
car parts; its softmax summed per group is the new ``angle_group`` output). The result is one flat head
(``head_angle``) that pools the feature map once and ends in two dense layers, so it runs on the same
backbone pass, fuses, answers for the mirror image (``angle`` only) and saves like any angle head.

A third angle head, the *cabin head*, may answer one part of the group question (:func:`with_group_head`'s
``cabin_head``): the probability that the photo is an interior is the cabin head's, and the group head
only splits the rest between exterior and detail. A head trained with path-traced cabins knows cabins, and
the group head keeps the exterior-or-detail split it was validated on (``docs/models.md``, *Path-traced
interiors*). Every step is a built-in Keras layer with fixed weights (no custom code to trust on loading).

Pure Keras and numpy; the job (:mod:`fleetvision.models.group_head_job`) reads and writes the folders.
"""

from __future__ import annotations

import keras
import numpy as np

from fleetvision.models.head_soup import SoupError, check_same_architecture
from fleetvision.scoring.shot_groups import ANGLE_GROUP, group_matrix
from fleetvision.taxonomy import GROUPS, Taxonomy

GROUP_CLASSES_LAYER = "angle_group_classes"
"""The group head's softmax over the angle classes, inside the joined head; :data:`ANGLE_GROUP` sums it per group."""
CABIN_CLASSES_LAYER = "angle_cabin_classes"
"""The cabin head's softmax over the angle classes, inside a joined head that has one."""
_JOINED_LAYERS = (GROUP_CLASSES_LAYER, CABIN_CLASSES_LAYER, ANGLE_GROUP)


class GroupHeadError(ValueError):
    """The two heads cannot be joined (not angle heads of one architecture, or one already joined)."""


def has_group_head(head: keras.Model) -> bool:
    """The head already answers :data:`ANGLE_GROUP`."""
    return any(layer.name in _JOINED_LAYERS for layer in head.layers)


def with_group_head(view_head: keras.Model, group_head: keras.Model, taxonomy: Taxonomy,
                    cabin_head: keras.Model | None = None) -> keras.Model:
    """One angle head: ``view_head``'s layers and ``angle`` output, and ``angle_group`` = ``group_head``'s
    softmax (its last dense layer, on the same pooled features) summed per shot group.

    With ``cabin_head``, ``angle_group`` is instead ``[(1 - c) e, c, (1 - c) d]``: ``c`` the cabin head's
    interior probability, ``e`` and ``d`` the group head's exterior and detail shares of what it does not
    call interior (its softmax over the exterior and detail classes alone: its interior logits masked).

    Neither input is changed; the result holds copies of ``group_head``'s (and ``cabin_head``'s) last-layer
    weights and shares ``view_head``'s layers (save it, or clone it, before training either).

    Raises:
        GroupHeadError: A head already carries a group head, the heads differ in architecture (the group
            and cabin heads must pool exactly as the view head does: only the last dense layer may differ),
            or the last layer's width is not the taxonomy's.
    """
    heads = [("view", view_head), ("group", group_head)] + ([("cabin", cabin_head)] if cabin_head is not None else [])
    for role, head in heads:
        if has_group_head(head):
            raise GroupHeadError(f"the {role} head already carries a group head ({ANGLE_GROUP})")
    try:
        check_same_architecture([head for _, head in heads])
    except SoupError as e:
        raise GroupHeadError(f"the view, group and cabin heads differ: {e}") from e
    for role, head in heads:
        names = [layer.name for layer in head.layers if layer.weights]
        if names != ["angle"]:
            raise GroupHeadError(f"only angle heads whose one weighted layer is 'angle' can be joined "
                                 f"({role}: {names})")
    view_dense = view_head.get_layer("angle")
    if int(view_dense.units) != taxonomy.num_classes:
        raise GroupHeadError(f"the angle layer has {view_dense.units} units, the taxonomy {taxonomy.num_classes}")
    pooled = view_dense.input  # the view head's pooled features (after its dropout, identity when scoring)
    matrix = group_matrix(taxonomy).astype("float32")
    copies: list[tuple[keras.layers.Layer, list[np.ndarray]]] = []

    def copied_classes(head: keras.Model, name: str, activation: str | None = None) -> keras.layers.Dense:
        dense = head.get_layer("angle")
        config = {**dense.get_config(), "name": name}
        if activation is not None:
            config["activation"] = activation
        layer = keras.layers.Dense.from_config(config)
        copies.append((layer, [np.asarray(w) for w in dense.get_weights()]))
        return layer

    def fixed_dense(name: str, kernel: np.ndarray, bias: np.ndarray | None = None) -> keras.layers.Dense:
        layer = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None, trainable=False, name=name)
        copies.append((layer, [kernel.astype("float32")] + ([bias.astype("float32")] if bias is not None else [])))
        return layer

    if cabin_head is None:
        group = fixed_dense(ANGLE_GROUP, matrix)(copied_classes(group_head, GROUP_CLASSES_LAYER)(pooled))
    else:
        interior = GROUPS.index("interior")
        # the group head's logits with its interior classes masked, softmaxed: exterior and detail shares
        logits = copied_classes(group_head, GROUP_CLASSES_LAYER, activation="linear")(pooled)
        masked = fixed_dense("angle_group_masked", np.eye(matrix.shape[0]), -1e4 * matrix[:, interior])(logits)
        shares = fixed_dense("angle_group_shares", matrix)(keras.layers.Softmax(name="angle_group_softmax")(masked))
        cabin = fixed_dense("angle_cabin_groups", matrix)(copied_classes(cabin_head, CABIN_CLASSES_LAYER)(pooled))
        inside = fixed_dense("angle_cabin_interior", np.eye(len(GROUPS))[:, [interior]])(cabin)  # [N, 1]: c
        rest = fixed_dense("angle_cabin_rest", -np.ones((1, len(GROUPS))), np.ones(len(GROUPS)))(inside)  # 1 - c
        at_interior = fixed_dense("angle_cabin_at_interior", np.eye(len(GROUPS))[[interior]])(inside)  # [0, c, 0]
        group = keras.layers.Add(name=ANGLE_GROUP)(
            [keras.layers.Multiply(name="angle_group_outside")([shares, rest]), at_interior])
    joined = keras.Model(view_head.inputs, {"angle": view_dense.output, ANGLE_GROUP: group}, name=view_head.name)
    for layer, weights in copies:
        layer.set_weights(weights)
    return joined
