"""Task models on a frozen pretrained backbone: nested heads, composition, and one backbone pass for all.

With a pretrained backbone (EfficientNet-Lite, :mod:`fleetvision.models.efficientnet_lite`) every task
model has the same shape::

    image uint8 [N, S, S, 3] -> to_float -> backbone (nested model, frozen) -> head_<task> (nested model)

Each head is a model of its own that takes only the feature maps it reads (:data:`HEAD_INPUTS`), so:

* heads train on cached backbone features (:mod:`fleetvision.models.feature_training`): the backbone
  runs once per training photo, not once per epoch;
* a task model can be registered, evaluated and promoted alone, exactly as before;
* at scoring time :func:`fuse_task_models` groups the task models whose backbones hold the same weights
  and builds one model per group: one backbone pass per photo for all of their heads. Models on other
  backbones (the older MobileNetV3 models, whose heads are flat layers) run unfused, with a log line;
* the starter models ship as heads only (:func:`save_head`), a few hundred KB each; the backbone is
  rebuilt from the installed weights package when they are registered (:func:`load_starter_task_model`);
* the backbone's last MBConv blocks and its head conv can be fine-tuned after the heads
  (``models.finetune_blocks``): :func:`backbone_top` is that part as a model of its own, sharing the
  backbone's layers, trained on the cached map that enters it (:data:`TOP_INPUT`). Its batch-norm
  layers stay frozen. The task models of one run then share the fine-tuned backbone and still fuse.

Heads use the same layers as :mod:`fleetvision.models.architecture` (split-pooled angle, avg+max pooled
banner, soft-argmax plate box, body branch), with the plate box on the stride-8 grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fleetvision.models.architecture import _heads
from fleetvision.models.efficientnet_lite import converted_weights, pretrained_backbone
from fleetvision.models.plate_head import with_peak_box
from fleetvision.models.spec import PRETRAINED_BACKBONES, TASK_OUTPUTS, TrainSpec

logger = logging.getLogger(__name__)

FEATURE_MAPS: tuple[str, ...] = ("stride4", "stride8", "stride16", "stride32")
"""The backbone's outputs, in order."""
HEAD_INPUTS: dict[str, tuple[str, ...]] = {
    "angle": ("stride32",),
    "banner": ("stride32",),
    "plate": ("stride8", "stride16"),
    "body": ("stride16", "stride32"),
}
"""The feature maps each task's head reads."""
TOP_INPUT = "top_input"
"""The cached map that enters :func:`backbone_top` (fine-tuning the backbone's last blocks)."""
HEAD_FILE = "head.keras"
MODEL_FILE = "model.keras"
BACKBONE_FILE = "backbone.json"
CARD_FILE = "metrics.json"  # a saved model's card: metrics, spec, command, run (written by train and soup)


def is_pretrained(backbone: str) -> bool:
    """True for a backbone whose weights come from a package (frozen, heads trained on its features)."""
    return backbone in PRETRAINED_BACKBONES


def head_name(task: str) -> str:
    return f"head_{task}"


def feature_maps_for(tasks: Sequence[str]) -> tuple[str, ...]:
    """The feature maps that the heads of ``tasks`` read, in backbone order."""
    wanted = {m for t in tasks for m in HEAD_INPUTS[t]}
    return tuple(m for m in FEATURE_MAPS if m in wanted)


def build_head(
    spec: TrainSpec, task: str, shapes: Mapping[str, tuple[int, ...]], n_classes: int, n_body_types: int
) -> keras.Model:
    """One task's head: its feature maps in (as :data:`HEAD_INPUTS`), its outputs (a dict) out."""
    inputs = {name: keras.Input(shape=tuple(shapes[name]), name=name) for name in HEAD_INPUTS[task]}
    outputs = _heads(
        dataclasses.replace(spec, tasks=(task,)),
        None,
        inputs.get("stride8"),
        inputs.get("stride16"),
        inputs.get("stride32"),
        n_classes,
        n_body_types,
    )
    return keras.Model([inputs[n] for n in HEAD_INPUTS[task]], outputs, name=head_name(task))


def pools_halves(head: keras.Model) -> bool:
    """The head pools the left and right halves of its feature map apart (the ``split`` angle head)."""
    from fleetvision.models.architecture import SPLIT_POOL_SUFFIX

    return any(layer.name.endswith(SPLIT_POOL_SUFFIX) for layer in head.layers)


def _answers_mirror(task: str, head: keras.Model) -> bool:
    """The scoring model runs this head again on the reversed maps (:func:`_attach` with ``mirror``)."""
    return task == "plate" or (task == "angle" and pools_halves(head))


def _attach(
    image: keras.KerasTensor, backbone: keras.Model, heads: Mapping[str, keras.Model], *, mirror: bool = False
) -> dict:
    """The heads on one backbone pass. With ``mirror`` (the scoring model, :func:`fuse_task_models`; never a
    model that is trained or registered), the plate head and an angle head that pools its halves apart also
    answer for the photo's mirror image (``plate_presence_mirror``, ``angle_mirror``: the head again on the
    horizontally reversed maps; :mod:`fleetvision.scoring.mirror_image`), at the cost of a second pass of
    those heads alone."""
    from fleetvision.scoring.mirror_image import MIRROR_OUTPUTS

    x = keras.layers.Rescaling(1.0, name="to_float")(image)
    maps = dict(zip(FEATURE_MAPS, backbone(x), strict=True))
    outputs: dict[str, keras.KerasTensor] = {}
    for task, head in heads.items():
        inputs = [maps[n] for n in HEAD_INPUTS[task]]
        out = head(inputs)
        outputs.update(out if isinstance(out, Mapping) else {TASK_OUTPUTS[task][0]: out})
        if mirror and _answers_mirror(task, head):
            mirrored = head([keras.ops.flip(m, axis=2) for m in inputs])
            mirrored = mirrored if isinstance(mirrored, Mapping) else {TASK_OUTPUTS[task][0]: mirrored}
            outputs.update({MIRROR_OUTPUTS[name]: mirrored[name] for name in MIRROR_OUTPUTS if name in mirrored})
    return outputs


@dataclasses.dataclass
class PretrainedModel:
    """A multi-task model on a frozen pretrained backbone, with its parts.

    Attributes:
        model: image uint8 [N, S, S, 3] -> every head's outputs (the heads' layers are shared with
            ``heads``, so training the heads trains this model).
        backbone: The frozen feature extractor (``backbone``).
        heads: Task -> head model.
        backbone_id: ``<variant>:<digest of the weights file>``.
        packaged_fingerprint: :func:`weights_fingerprint` of the backbone as the package gives it.
    """

    model: keras.Model
    backbone: keras.Model
    heads: dict[str, keras.Model]
    backbone_id: str
    packaged_fingerprint: str = ""

    def backbone_as_packaged(self) -> bool:
        """True while the backbone holds the package's weights (not fine-tuned, nor copied from a model
        that was): only then can a head be saved without its backbone."""
        return weights_fingerprint(self.backbone) == self.packaged_fingerprint

    def heads_model(self, top: keras.Model | None = None) -> keras.Model:
        """The heads alone: the cached feature maps in (a dict by map name), every head's outputs out.

        With ``top`` (:func:`backbone_top`), the stride-32 map is computed by it from the cached
        :data:`TOP_INPUT` instead of read from the cache, so training this model trains ``top`` too.
        """
        names = [n for n in feature_maps_for(tuple(self.heads)) if top is None or n != "stride32"]
        inputs = {n: keras.Input(shape=_map_shape(self.backbone, n), name=n) for n in names}
        maps: dict[str, keras.KerasTensor] = dict(inputs)
        if top is not None:
            inputs[TOP_INPUT] = keras.Input(shape=tuple(int(d) for d in top.inputs[0].shape[1:]), name=TOP_INPUT)
            maps["stride32"] = top(inputs[TOP_INPUT])
        outputs: dict[str, keras.KerasTensor] = {}
        for task, head in self.heads.items():
            outputs.update(head([maps[n] for n in HEAD_INPUTS[task]]))
        return keras.Model(inputs, outputs, name="heads")


def _map_shape(backbone: keras.Model, name: str) -> tuple[int, ...]:
    return tuple(int(d) for d in backbone.outputs[FEATURE_MAPS.index(name)].shape[1:])


def backbone_blocks(backbone: keras.Model) -> list[str]:
    """The backbone's MBConv block names (``block0`` ...), input to output."""
    blocks: list[str] = []
    for layer in backbone.layers:
        block = layer.name.split("_", 1)[0]
        if block.startswith("block") and block[5:].isdigit() and block not in blocks:
            blocks.append(block)
    return blocks


def top_input_tensor(backbone: keras.Model, blocks: int) -> keras.KerasTensor:
    """The map that enters the backbone's last ``blocks`` MBConv blocks (the output of the block before).

    Raises:
        ValueError: ``blocks`` is not between 1 and the backbone's number of blocks.
    """
    names = backbone_blocks(backbone)
    if not 1 <= blocks <= len(names):
        raise ValueError(f"finetune_blocks={blocks}: the backbone has {len(names)} MBConv blocks (1-{len(names)})")
    first = names[-blocks] + "_"
    return next(layer for layer in backbone.layers if layer.name.startswith(first)).input


def backbone_top(backbone: keras.Model, blocks: int) -> keras.Model:
    """The backbone's last ``blocks`` MBConv blocks and its head conv, as a model of their own.

    :data:`TOP_INPUT` in, the stride-32 map out. The layers are the backbone's own (not copies), so
    training this model changes the backbone. Every layer but batch norm is made trainable: their
    statistics and scales stay the pretrained ones, as is usual when fine-tuning on a few hundred photos.
    Call :func:`freeze` on it after training.

    Raises:
        ValueError: ``blocks`` out of range (see :func:`top_input_tensor`).
    """
    top = keras.Model(top_input_tensor(backbone, blocks), backbone.outputs[FEATURE_MAPS.index("stride32")],
                      name="backbone_top")
    for layer in top.layers:
        layer.trainable = bool(layer.weights) and not isinstance(layer, keras.layers.BatchNormalization)
    return top


def freeze(model: keras.Model) -> None:
    """Every layer of ``model`` not trainable (after fine-tuning a :func:`backbone_top`; Keras sets its
    sublayers too)."""
    model.trainable = False


def feature_extractor(backbone: keras.Model, maps: Sequence[str], top_blocks: int = 0) -> keras.Model:
    """Float RGB 0-255 in; ``maps`` out, in that order: names of :data:`FEATURE_MAPS`, or :data:`TOP_INPUT`
    (the map that enters the backbone's last ``top_blocks`` blocks).

    Raises:
        ValueError: An unknown map name, or :data:`TOP_INPUT` without ``top_blocks``.
    """
    unknown = [m for m in maps if m not in FEATURE_MAPS and m != TOP_INPUT]
    if unknown or (TOP_INPUT in maps and top_blocks < 1):
        raise ValueError(f"feature_extractor: unknown maps {unknown} or {TOP_INPUT} with top_blocks={top_blocks}")
    if list(maps) == list(FEATURE_MAPS):
        return backbone
    tensors = [top_input_tensor(backbone, top_blocks) if m == TOP_INPUT else backbone.outputs[FEATURE_MAPS.index(m)]
               for m in maps]
    return keras.Model(backbone.inputs[0], tensors, name="feature_extractor")


def build_pretrained_model(spec: TrainSpec, n_classes: int, n_body_types: int) -> PretrainedModel:
    """The frozen pretrained backbone with one nested head per task of ``spec``.

    Raises:
        ValueError: ``spec.backbone`` is not a pretrained backbone.
        ModuleNotFoundError: The backbone's weights package is not installed.
    """
    if not is_pretrained(spec.backbone):
        raise ValueError(f"{spec.backbone!r} is not a pretrained backbone ({', '.join(PRETRAINED_BACKBONES)})")
    keras.utils.set_random_seed(spec.seed)
    size = spec.input_size
    backbone, backbone_id = pretrained_backbone(spec.backbone, (size, size, 3))
    backbone.trainable = False
    shapes = {n: _map_shape(backbone, n) for n in FEATURE_MAPS}
    heads = {t: build_head(spec, t, shapes, n_classes, n_body_types) for t in spec.tasks}
    image = keras.Input(shape=(size, size, 3), dtype="uint8", name="image")
    model = keras.Model(image, _attach(image, backbone, heads), name="fleetvision_" + "_".join(spec.tasks))
    return PretrainedModel(model, backbone, heads, backbone_id, weights_fingerprint(backbone))


def compose_task_model(backbone: keras.Model, head: keras.Model, task: str) -> keras.Model:
    """``image -> backbone -> head``: one task's model, registrable on its own.

    A plate head gets the peak box (:func:`fleetvision.models.plate_head.with_peak_box`): the graph
    that is saved, registered and scored is the one measured.
    """
    if task == "plate":
        head = with_peak_box(head)
    height, width = (int(d) for d in backbone.inputs[0].shape[1:3])
    image = keras.Input(shape=(height, width, 3), dtype="uint8", name="image")
    return keras.Model(image, _attach(image, backbone, {task: head}), name=f"fleetvision_{task}")


def nested_head(model: keras.Model, task: str) -> keras.Model | None:
    """The nested ``head_<task>`` of a task model, or None (a model with flat head layers)."""
    for layer in model.layers:
        if layer.name == head_name(task) and isinstance(layer, keras.Model):
            return layer
    return None


def nested_backbone(model: keras.Model) -> keras.Model | None:
    for layer in model.layers:
        if layer.name == "backbone" and isinstance(layer, keras.Model):
            return layer
    return None


def find_layer(model: keras.Model, name: str) -> keras.Layer:
    """A layer by name, looking inside nested heads too (``banner`` inside ``head_banner``).

    Raises:
        ValueError: No such layer.
    """
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model) and layer.name.startswith("head_"):
            try:
                return find_layer(layer, name)
            except ValueError:
                continue
    raise ValueError(f"model {model.name!r} has no layer {name!r}")


def weights_fingerprint(model: keras.Model) -> str:
    """SHA-256 (16 hex digits) of a model's weights: equal for two copies of the same backbone."""
    digest = hashlib.sha256()
    for w in model.weights:
        arr = np.ascontiguousarray(keras.ops.convert_to_numpy(w))
        digest.update(str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def fuse_task_models(
    models: Mapping[str, keras.Model], *, mirror: bool = True
) -> list[tuple[tuple[str, ...], keras.Model]]:
    """Group task models by backbone weights; one model per group, running its backbone once.

    Args:
        models: Task -> task model (as registered).
        mirror: Also give the heads' answers for the photo's mirror image (:func:`_attach`; what scoring
            runs); False only to measure what they cost (``benchmarks/bench_model_cost.py``).

    Returns:
        (tasks, model) pairs: a fused model answers every output of its tasks; a model that cannot be
        fused (flat heads, or the only one on its backbone) is returned as it is, except a plate head or an
        angle head that pools its halves apart, which is rebuilt alone to answer for the mirror image too
        (:func:`_attach`).
    """
    groups: dict[str, list[str]] = {}
    alone: list[tuple[tuple[str, ...], keras.Model]] = []
    for task, model in models.items():
        backbone = nested_backbone(model)
        if backbone is None or nested_head(model, task) is None:
            alone.append(((task,), model))
            continue
        groups.setdefault(weights_fingerprint(backbone), []).append(task)
    if alone and groups:
        logger.info(
            "models %s have no shared pretrained backbone and run unfused (one backbone pass each)",
            ", ".join(t for ts, _ in alone for t in ts),
        )
    fused: list[tuple[tuple[str, ...], keras.Model]] = []
    for fingerprint, tasks in groups.items():
        if len(tasks) == 1 and not (mirror and _answers_mirror(tasks[0], nested_head(models[tasks[0]], tasks[0]))):
            fused.append(((tasks[0],), models[tasks[0]]))
            continue
        first = models[tasks[0]]
        height, width = (int(d) for d in first.inputs[0].shape[1:3])
        image = keras.Input(shape=(height, width, 3), dtype="uint8", name="image")
        heads = {t: nested_head(models[t], t) for t in tasks}
        outputs = _attach(image, nested_backbone(first), heads, mirror=mirror)
        model = keras.Model(image, outputs, name="fleetvision_fused")
        logger.info("fused %s on one backbone (%s): one backbone pass per photo", "+".join(tasks), fingerprint)
        fused.append((tuple(tasks), model))
    if len(groups) > 1:
        logger.info("task models use %d different backbones: %d backbone passes per photo", len(groups), len(groups))
    return [*fused, *alone]


def save_head(model: keras.Model, task: str, folder: Path, backbone_id: str) -> Path:
    """Save a task model's head (``head.keras``) and its backbone's identity (``backbone.json``).

    The backbone's weights are not saved: they come from the installed weights package.

    Raises:
        ValueError: The model has no nested head for ``task``.
    """
    head = nested_head(model, task)
    if head is None:
        raise ValueError(f"model {model.name!r} has no nested head for {task!r}: not a pretrained-backbone model")
    variant, _, digest = backbone_id.partition(":")
    size = int(model.inputs[0].shape[1])
    return write_head(head, folder, {"variant": variant, "weights_digest": digest, "input_size": size})


def write_head(head: keras.Model, folder: Path, backbone: Mapping[str, Any]) -> Path:
    """Write ``head.keras`` and ``backbone.json`` (``variant``, ``weights_digest``, ``input_size``) to ``folder``:
    the layout :func:`load_starter_task_model` reads. Returns the head's path."""
    from fleetvision.models.starter import save_task_model

    folder.mkdir(parents=True, exist_ok=True)
    (folder / BACKBONE_FILE).write_text(json.dumps(dict(backbone), indent=2) + "\n")
    return save_task_model(head, folder / HEAD_FILE)


def load_starter_task_model(folder: Path, task: str) -> keras.Model:
    """A task model from a saved head and the installed backbone weights it was trained on.

    Raises:
        FileNotFoundError: ``head.keras`` or ``backbone.json`` is missing.
        ValueError: The installed weights package differs from the one the head was trained on.
    """
    meta_path, head_path = folder / BACKBONE_FILE, folder / HEAD_FILE
    for path in (meta_path, head_path):
        if not path.is_file():
            raise FileNotFoundError(f"starter model for {task!r}: no {path}")
    meta = json.loads(meta_path.read_text())
    variant, digest, size = meta["variant"], meta["weights_digest"], int(meta["input_size"])
    installed = converted_weights(variant).digest
    if installed != digest:
        raise ValueError(
            f"starter head {head_path} was trained on {variant} weights {digest}, but the installed package "
            f"holds {installed}: install the pinned package version"
        )
    backbone, _ = pretrained_backbone(variant, (size, size, 3))
    backbone.trainable = False
    head = keras.saving.load_model(head_path, compile=False)
    return compose_task_model(backbone, head, task)


def load_saved_task_model(folder: Path, task: str) -> keras.Model:
    """A task model saved in ``folder``: a head (``head.keras`` + ``backbone.json``) or a whole ``model.keras``.

    Raises:
        FileNotFoundError: Neither layout is there.
    """
    if (folder / HEAD_FILE).is_file():
        return load_starter_task_model(folder, task)
    whole = folder / MODEL_FILE
    if whole.is_file():
        return keras.saving.load_model(whole, compile=False)
    raise FileNotFoundError(f"no {task!r} model in {folder}: expected {HEAD_FILE} (+ {BACKBONE_FILE}) or {MODEL_FILE}")


def saved_model_file(folder: Path) -> Path:
    """The file that identifies the model saved in ``folder`` (its head, or the whole model)."""
    return folder / HEAD_FILE if (folder / HEAD_FILE).is_file() else folder / MODEL_FILE
