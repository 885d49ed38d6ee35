"""Keras 3 model builders: a configurable backbone, one head per task, one model per task.

Every model takes ``uint8 [N, S, S, 3]`` RGB and does its own preprocessing, so the same bytes give
the same answer wherever the model runs. Only built-in Keras layers and ``keras.ops`` are used (no
``Lambda``, no custom classes), so a saved ``.keras`` file loads anywhere with plain
``keras.saving.load_model`` in safe mode.

Heads (output names are the contract with scoring, docs/CONTRACTS.md):

* ``angle``: softmax over the taxonomy's classes. The ``split`` head pools the left and right halves
  of the last feature map separately and concatenates them, so "the bonnet is on the left" survives
  pooling; a globally pooled head cannot tell a photo from its mirror image if its features are
  flip-symmetric. ``global`` (one global pool) and ``left_half`` (the model only sees the left half of
  the photo: the old workaround) exist for the comparison in docs/models.md.
* ``banner``: sigmoid [N, 1] from average- and max-pooled features (an overlay can be a thin strip).
* ``plate_presence`` [N, 1] and ``plate_box`` [N, 4]: a plate is a few pixels tall at S=128, so both
  read finer maps than the other heads: presence pools the stride-8 map (fused with the upsampled
  stride-16 map); the box head goes on to a stride-4 grid (32 x 32 cells at S=128). Each cell predicts
  a score and a box (offset of the centre inside the cell, width, height); a softmax over the cells'
  scores weights the cells' boxes (a differentiable "soft argmax", trained by the box loss alone).
  Fixed (non-trainable) Dense layers hold the cell grid and turn centre/size into (x0, y0, x1, y1),
  clipped to [0, 1]. Every plate model cut out for saving or registering (:func:`task_model`,
  ``pretrained.compose_task_model``) reads its box from the 3 x 3 cells around the top score instead
  (the "peak box", models/plate_head.py).
* ``body``: softmax over the body types, from a small branch of its own on the stride-16 map plus the
  pooled stride-32 features. A car's body type is the same in a mirror and at another framing, so
  the exported body model can look several times (``task_model(..., body_views=4)``): the photo, its
  mirror image, a centre crop enlarged back to S x S and that crop's mirror go through the same layers,
  and the last layer is applied to the mean of their feature vectors (the mean of the views' logits).
  The flips, crop and resize are built-in Keras layers and ``keras.ops``, saved and loaded without
  custom code.

:func:`build_multitask_model` builds one shared backbone with the heads of several tasks (trained
together: one pass over the data instead of four); :func:`task_model` cuts out one task's model
(backbone + its head) for registering on its own.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import keras

from fleetvision.models.plate_head import avg_max_pool, plate_heads, with_peak_box
from fleetvision.models.spec import TASK_OUTPUTS, TrainSpec

logger = logging.getLogger(__name__)

# Backbone layers whose outputs are the stride-4, stride-8 and stride-16 feature maps.
_STRIDE4_LAYER = {"mobilenet_v3_small": "expanded_conv_project_bn", "efficientnet_b0": "block2b_add"}
_STRIDE8_LAYER = {"mobilenet_v3_small": "expanded_conv_2_add", "efficientnet_b0": "block3b_add"}
_STRIDE16_LAYER = {"mobilenet_v3_small": "expanded_conv_7_add", "efficientnet_b0": "block5c_add"}
BATCH_NORM_MOMENTUM = 0.9

def build_backbone(spec: TrainSpec, input_shape: tuple[int, int, int]) -> keras.Model:
    """The feature extractor: float RGB in [0, 255] -> (stride-4, stride-8, stride-16, stride-32 maps).

    The keras.applications models carry their own input scaling (``include_preprocessing``), so
    they take raw 0-255 values.

    Args:
        spec: The training spec (backbone name, width multiplier, weights file).
        input_shape: (height, width, 3).

    Returns:
        A Keras model named ``backbone`` with four outputs.

    Raises:
        FileNotFoundError: ``backbone_weights`` names a file that does not exist.
        ValueError: Unknown backbone.
    """
    weights: str | None = None
    if spec.backbone_weights:
        path = Path(spec.backbone_weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"models.backbone_weights: no such file {path} (weights are never downloaded)")
        weights = str(path)
    if spec.backbone == "mobilenet_v3_small":
        base = keras.applications.MobileNetV3Small(
            input_shape=input_shape,
            alpha=spec.backbone_alpha,
            include_top=False,
            weights=weights,
            include_preprocessing=True,
        )
    elif spec.backbone == "efficientnet_b0":
        base = keras.applications.EfficientNetB0(input_shape=input_shape, include_top=False, weights=weights)
    else:
        raise ValueError(f"unknown backbone {spec.backbone!r}; expected mobilenet_v3_small or efficientnet_b0")
    # keras.applications' batch norms keep 99.9% of their running statistics per step (fine for
    # ImageNet's millions of steps); trained from scratch for a few thousand steps they would still
    # hold their initial values at inference. 0.9 forgets the start within ~100 steps.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCH_NORM_MOMENTUM
    stride4 = base.get_layer(_STRIDE4_LAYER[spec.backbone]).output
    stride8 = base.get_layer(_STRIDE8_LAYER[spec.backbone]).output
    stride16 = base.get_layer(_STRIDE16_LAYER[spec.backbone]).output
    return keras.Model(base.inputs, [stride4, stride8, stride16, base.output], name="backbone")


SPLIT_POOL_SUFFIX = "_halves"
""":func:`_split_pool`'s last layer is ``<prefix>_halves``: how a head that pools its halves apart is recognised."""


def _split_pool(features: keras.KerasTensor, prefix: str) -> keras.KerasTensor:
    """Average-pool the left and right halves of a feature map separately; concatenate.

    With an odd width the middle column belongs to both halves.
    """
    width = int(features.shape[2])
    left_cols, right_start = math.ceil(width / 2), width // 2
    left = keras.layers.Cropping2D(((0, 0), (0, width - left_cols)), name=f"{prefix}_left")(features)
    right = keras.layers.Cropping2D(((0, 0), (right_start, 0)), name=f"{prefix}_right")(features)
    return keras.layers.Concatenate(name=f"{prefix}{SPLIT_POOL_SUFFIX}")(
        [
            keras.layers.GlobalAveragePooling2D(name=f"{prefix}_left_pool")(left),
            keras.layers.GlobalAveragePooling2D(name=f"{prefix}_right_pool")(right),
        ]
    )


def _heads(
    spec: TrainSpec,
    stride4: keras.KerasTensor | None,
    stride8: keras.KerasTensor,
    stride16: keras.KerasTensor,
    stride32: keras.KerasTensor,
    n_classes: int,
    n_body_types: int,
) -> dict[str, keras.KerasTensor]:
    outputs: dict[str, keras.KerasTensor] = {}
    drop = spec.head_dropout
    if "angle" in spec.tasks:
        pooled = (
            _split_pool(stride32, "angle")
            if spec.angle_head == "split"
            else keras.layers.GlobalAveragePooling2D(name="angle_pool")(stride32)
        )
        pooled = keras.layers.Dropout(drop, name="angle_dropout")(pooled)
        outputs["angle"] = keras.layers.Dense(n_classes, activation="softmax", name="angle")(pooled)
    if "banner" in spec.tasks:
        pooled = keras.layers.Dropout(drop, name="banner_dropout")(avg_max_pool(stride32, "banner"))
        outputs["banner"] = keras.layers.Dense(1, activation="sigmoid", name="banner")(pooled)
    if "plate" in spec.tasks:
        outputs["plate_presence"], outputs["plate_box"] = plate_heads(stride4, stride8, stride16, drop)
    if "body" in spec.tasks:
        # a branch of its own on the stride-16 map: body shape, not the shot, decides here
        own = keras.layers.SeparableConv2D(128, 3, padding="same", activation="relu", name="body_conv")(stride16)
        pooled = keras.layers.Concatenate(name="body_features")(
            [avg_max_pool(own, "body_branch"), avg_max_pool(stride32, "body")]
        )
        pooled = keras.layers.Dropout(drop, name="body_dropout")(pooled)
        outputs["body"] = keras.layers.Dense(n_body_types, activation="softmax", name="body")(pooled)
    return outputs


def build_multitask_model(spec: TrainSpec, n_classes: int, n_body_types: int) -> keras.Model:
    """One backbone shared by the heads of ``spec.tasks``; outputs a dict keyed by output name.

    Args:
        spec: The training spec.
        n_classes: Number of shot classes (the angle softmax width).
        n_body_types: Number of body types (the body softmax width).

    Returns:
        The model: input ``image`` uint8 [N, S, S, 3]; outputs as in ``spec.outputs``. With a pretrained
        backbone, its heads are nested (:func:`fleetvision.models.pretrained.build_pretrained_model`).
    """
    from fleetvision.models.pretrained import build_pretrained_model, is_pretrained

    if is_pretrained(spec.backbone):
        return build_pretrained_model(spec, n_classes, n_body_types).model
    keras.utils.set_random_seed(spec.seed)
    size = spec.input_size
    image = keras.Input(shape=(size, size, 3), dtype="uint8", name="image")
    # Rescaling casts uint8 to float (scale 1: the backbones scale 0-255 themselves).
    x = keras.layers.Rescaling(1.0, name="to_float")(image)
    width = size
    if spec.angle_head == "left_half":
        width = math.ceil(size / 2)
        x = keras.layers.Cropping2D(((0, 0), (0, size - width)), name="left_half")(x)
    stride4, stride8, stride16, stride32 = build_backbone(spec, (size, width, 3))(x)
    outputs = _heads(spec, stride4, stride8, stride16, stride32, n_classes, n_body_types)
    name = "fleetvision_" + "_".join(spec.tasks)
    return keras.Model(image, outputs, name=name)


def task_model(model: keras.Model, task: str, *, body_views: int = 1, body_zoom: float = 0.88) -> keras.Model:
    """Cut one task's model (backbone + head) out of a multi-task model.

    The result shares layers (and so weights) with ``model``; saving it writes only what it uses.

    Args:
        model: A model from :func:`build_multitask_model`.
        task: ``angle``, ``banner``, ``plate`` or ``body``.
        body_views: For ``body``: 1, 2 or 4 views of each photo (see :func:`multi_view_body`).
            Ignored for the other tasks: a mirror changes the angle label, and banner and plate meet
            their targets with one view.
        body_zoom: For ``body`` with 4 views: the centre crop's side, as a share of the photo's.

    Returns:
        A model with input uint8 [N, S, S, 3] and a dict of this task's outputs.

    Raises:
        ValueError: The model has no head for the task, or ``body_views``/``body_zoom`` is invalid.
    """
    if task not in TASK_OUTPUTS:
        raise ValueError(f"unknown model task {task!r}; expected one of {', '.join(TASK_OUTPUTS)}")
    from fleetvision.models.pretrained import compose_task_model, nested_backbone, nested_head

    head = nested_head(model, task)
    if head is not None:  # a pretrained backbone's nested head: one view, whatever body_views says
        return compose_task_model(nested_backbone(model), head, task)
    names = TASK_OUTPUTS[task]
    layer_names = {layer.name for layer in model.layers}
    missing = [n for n in names if n not in layer_names]
    if missing:
        raise ValueError(f"model {model.name!r} has no output(s) {missing} for task {task!r}")
    if task == "body" and body_views != 1:
        return multi_view_body(model, body_views, body_zoom)
    outputs = {n: model.get_layer(n).output for n in names}
    cut = keras.Model(model.inputs, outputs, name=f"fleetvision_{task}")
    return with_peak_box(cut) if task == "plate" else cut


def multi_view_body(model: keras.Model, views: int, zoom: float = 0.88) -> keras.Model:
    """The body model that answers from several views of each photo.

    Views: 2 = the photo and its left-right mirror image; 4 = those and a centre crop (equal margins
    of ``round(S x (1 - zoom) / 2)``, enlarged back to S x S, bilinear, rounded to uint8) and its
    mirror. The set of views of a mirrored photo is the mirror of the photo's set, so the answer does
    not change when the photo is mirrored. Every view goes through the same backbone and body branch
    (``body_view``, up to the pooled ``body_features``); the trained ``body`` layer is applied to the
    mean of the views' feature vectors, which equals the mean of their logits since the layer is linear
    before its softmax. ``views`` times the body model's compute; no new weights. docs/models.md has
    the accuracy and cost of each choice.

    Args:
        model: A model with the body head (from :func:`build_multitask_model`, or a one-view body model).
        views: 2 or 4.
        zoom: The centre crop's side as a share of the photo's side (4 views), in [0.5, 1).

    Returns:
        ``fleetvision_body``: uint8 [N, S, S, 3] -> ``{"body": [N, n_body_types]}``.

    Raises:
        ValueError: ``views`` is not 2 or 4, or ``zoom`` is outside [0.5, 1).
    """
    if views not in (2, 4):
        raise ValueError(f"body views must be 1, 2 or 4, got {views}")
    if not 0.5 <= zoom < 1:
        raise ValueError(f"body zoom must be in [0.5, 1), got {zoom}")
    view = _body_view(model)
    spec = model.inputs[0]
    height, width = int(spec.shape[1]), int(spec.shape[2])
    image = keras.Input(shape=(height, width, 3), dtype=spec.dtype, name="image")
    shown = [image, keras.ops.flip(image, axis=2)]  # [N, H, W, C]: axis 2 is left-right
    if views == 4:
        # equal margins on both sides, so the views of a mirrored photo are the mirrored views
        top, left = round(height * (1 - zoom) / 2), round(width * (1 - zoom) / 2)
        cropped = keras.layers.Cropping2D(((top, top), (left, left)), name="body_zoom_crop")(image)
        enlarged = keras.layers.Resizing(height, width, interpolation="bilinear", name="body_zoom_resize")(cropped)
        zoomed = keras.ops.cast(keras.ops.round(keras.ops.clip(enlarged, 0, 255)), spec.dtype)
        shown += [zoomed, keras.ops.flip(zoomed, axis=2)]
    features = keras.layers.Average(name="body_view_average")([view(x) for x in shown])
    return keras.Model(image, {"body": model.get_layer("body")(features)}, name="fleetvision_body")


def with_body_views(model: keras.Model, views: int, zoom: float = 0.88) -> keras.Model:
    """The same body model (same weights) answering from ``views`` views: 1, 2 or 4.

    Takes a one-view body model (or a multi-task model with the body head) or a multi-view one, so a
    trained model's views can be changed without training, e.g. to trade accuracy for speed.

    Raises:
        ValueError: ``views`` or ``zoom`` is invalid, or the model has no body head.
    """
    if "body" not in {layer.name for layer in model.layers}:
        raise ValueError(f"model {model.name!r} has no body head")
    if views != 1:
        return multi_view_body(model, views, zoom)
    spec = model.inputs[0]
    image = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="image")
    return keras.Model(image, {"body": model.get_layer("body")(_body_view(model)(image))}, name="fleetvision_body")


def _body_view(model: keras.Model) -> keras.Model:
    """Photo -> pooled body features: a multi-view model's nested ``body_view``, else cut from ``model``."""
    if "body_view" in {layer.name for layer in model.layers}:
        return model.get_layer("body_view")
    return keras.Model(model.inputs, model.get_layer("body_features").output, name="body_view")


def load_model_file(source: str) -> keras.Model:
    """A model from a ``.keras`` file or an MLflow model URI (``models:/...``, ``runs:/...``, ``file://...``).

    Raises:
        FileNotFoundError: A local path that does not exist.
    """
    if _is_uri(source):
        import mlflow.keras

        return mlflow.keras.load_model(source, load_model_kwargs={"compile": False})
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    return keras.saving.load_model(path, compile=False)


def _is_uri(source: str) -> bool:
    return "://" in source or source.startswith(("models:/", "runs:/"))


def load_init_models(source: str) -> list[keras.Model]:
    """The models ``--init-from`` names: one model, or every task model of a folder.

    Args:
        source: A ``.keras`` file or MLflow model URI (one model, :func:`load_model_file`); a folder of
            task models, ``<task>/head.keras`` + ``backbone.json`` (heads on a pretrained backbone) or
            ``<task>/model.keras`` (the starter models' layout); or one task's folder.

    Raises:
        FileNotFoundError: Nothing there, or a folder that holds no task model (the message names the
            layout it expects).
    """
    path = Path(source).expanduser()
    if _is_uri(source) or not path.is_dir():
        return [load_model_file(source)]
    from fleetvision.models.pretrained import HEAD_FILE, MODEL_FILE, load_saved_task_model
    from fleetvision.models.spec import TASKS

    def holds_model(folder: Path) -> bool:
        return (folder / HEAD_FILE).is_file() or (folder / MODEL_FILE).is_file()

    if holds_model(path) and path.name in TASKS:
        return [load_saved_task_model(path, path.name)]
    folders = [path / t for t in TASKS if holds_model(path / t)]
    if not folders:
        raise FileNotFoundError(
            f"no task models in {path}: expected <task>/{HEAD_FILE} (+ backbone.json) or <task>/{MODEL_FILE} "
            f"for a task of {', '.join(TASKS)}"
        )
    return [load_saved_task_model(folder, folder.name) for folder in folders]


def initialise_from_models(model: keras.Model, sources: list[keras.Model]) -> list[str]:
    """:func:`initialise_from` each source in turn (a folder's task models); the layers copied, sorted.

    Raises:
        ValueError: ``sources`` is empty, or a source has no matching backbone.
    """
    if not sources:
        raise ValueError("initialise_from_models: no source models")
    return sorted({name for source in sources for name in initialise_from(model, source)})


def initialise_from(model: keras.Model, source: keras.Model) -> list[str]:
    """Copy the weights of every top-level layer of ``source`` whose name and shapes match ``model``'s.

    The backbone is one top-level layer (``backbone``), so a model trained for any task hands over its
    whole feature extractor; heads of the same name (``body``, ``body_conv``, ...) come along. The
    layers of a nested view (the multi-view body model's ``body_view``) count as top-level, and so
    does a nested head (``head_angle`` of a pretrained-backbone model) as a whole, beside its layers. A
    nested head of ``model`` that does not match as a whole (an angle head started from one that carries a
    group head, ``fleetvision.models.group_head``, or the other way round) gets its matching layers one by one.

    Returns:
        The names of the layers copied.

    Raises:
        ValueError: Nothing matched (not a FleetVision model, or another backbone or input size).
    """
    theirs = _named_layers(source)
    copied = []
    for layer in model.layers:
        if _copy_matching(layer, theirs.get(layer.name)):
            copied.append(layer.name)
        elif isinstance(layer, keras.Model) and layer.name.startswith("head_"):
            inner = [sub.name for sub in layer.layers if _copy_matching(sub, theirs.get(sub.name))]
            copied += [f"{layer.name}/{name}" for name in inner]
            source_head = theirs.get(layer.name)
            left = [sub.name for sub in getattr(source_head, "layers", []) if sub.weights and sub.name not in inner]
            if inner and left:
                logger.warning(
                    "initialising %s from %s: its layers %s have no counterpart and are not carried (a group or "
                    "cabin head, angle_group: join them again after training with fleetvision group-head)",
                    layer.name, source.name, ", ".join(left),
                )
    if "backbone" not in copied:
        raise ValueError(
            f"cannot initialise {model.name!r} from {source.name!r}: no matching backbone "
            "(another backbone, width multiplier or input size?)"
        )
    logger.info("initialised %d layers of %s from %s: %s", len(copied), model.name, source.name, ", ".join(copied))
    return copied


def _copy_matching(layer: keras.Layer, other: keras.Layer | None) -> bool:
    """Copy ``other``'s weights into ``layer`` where both hold weights of the same number and shapes."""
    if other is None or not layer.weights:
        return False
    mine, given = layer.get_weights(), other.get_weights()
    if len(mine) != len(given) or any(a.shape != b.shape for a, b in zip(mine, given, strict=True)):
        return False
    layer.set_weights(given)
    return True


def _named_layers(model: keras.Model) -> dict[str, keras.Layer]:
    """``model``'s layers by name, looking inside nested models other than the backbone."""
    named: dict[str, keras.Layer] = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name != "backbone":
            named.update(_named_layers(layer))
            named.setdefault(layer.name, layer)  # a nested head (head_angle) also matches as a whole
        else:
            named[layer.name] = layer
    return named
